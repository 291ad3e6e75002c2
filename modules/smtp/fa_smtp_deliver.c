/*
 * Delivery: once the data phases and the route phase are done, every
 * recipient becomes one or more destinations -- a user's mailbox (aliases
 * expanded, "user+detail" filed into the folder "detail" when it exists)
 * or the outbound queue -- and the message is appended to each, with a
 * Return-Path and a Received header in front.
 *
 * All appends are committed at once, so the store's group commit takes
 * them (and other sessions' messages) in one sync; the client hears 250
 * only when every commit said the message is durable.  For SMTP, when
 * some destinations failed and others succeeded, the failed recipients go
 * to the outbound queue (to be retried or bounced there) before the 250:
 * nothing is lost and nothing is delivered twice.  When that is not
 * possible the answer is 451 and the client retries.  LMTP answers each
 * recipient on its own.
 *
 * A delivery outlives its session if the client goes away while commits
 * are in flight: the state the callbacks touch is malloc'd and freed by
 * the last one.
 *
 * The queue is the INBOX of the store account "_queue" (an account name
 * without "@", which no directory user can have).  Each entry starts
 * with its envelope:
 *
 *   X-Facteur-Queue: QID; from=<a@b>; nrcpt=2; ret=FULL; envid=xtext
 *   X-Facteur-Rcpt: <c@d>; notify=SUCCESS,FAILURE; orcpt=rfc822;c@d; reason=...
 */

#include "fa_smtp_int.h"
#include "fa_auth_directory.h"
#include "fa_auth_login.h"

#define FA_SMTP_COPY_CHUNK  65536

typedef struct fa_smtp_delivery_s  fa_smtp_delivery_t;

typedef struct {
    fa_str_t             address;       /* where the queue will send it */
    fa_uint_t            rcpt;          /* the envelope recipient it came from */
} fa_smtp_queued_t;

typedef struct {
    fa_smtp_delivery_t  *dl;
    fa_str_t             user;          /* FA_SMTP_QUEUE_USER: the queue */
    fa_str_t             mailbox;
    fa_storage_t        *store;         /* the user's domain's, or the default */
    fa_array_t           rcpts;         /* fa_uint_t: indexes of txn->rcpts */
    fa_array_t           queued;        /* fa_smtp_queued_t (the queue only) */
    fa_int_t             rc;
} fa_smtp_dest_t;

struct fa_smtp_delivery_s {
    fa_smtp_session_t   *s;             /* NULL once the session went */
    fa_uint_t            pending;       /* commits in flight */
    fa_array_t           dests;         /* fa_smtp_dest_t */
    fa_pool_t           *pool;          /* the delivery's own */
    fa_uint_t            first;         /* the first destination of this round */
    unsigned             requeue:1;     /* the second round: failed ones to the queue */
};

static void fa_smtp_deliver_finish(fa_smtp_delivery_t *dl);


/* ---- destinations ---- */

static fa_smtp_dest_t *
fa_smtp_dest(fa_smtp_delivery_t *dl, const fa_str_t *user, const fa_str_t *mailbox)
{
    fa_smtp_dest_t  *d = dl->dests.elts;

    for (fa_uint_t i = dl->first; i < dl->dests.nelts; i++) {
        if (fa_str_equal(&d[i].user, user) && fa_str_equal(&d[i].mailbox, mailbox)) {
            return &d[i];                /* one copy per mailbox, whoever asked */
        }
    }
    d = fa_array_push(&dl->dests);
    if (d == NULL || fa_array_init(&d->rcpts, dl->pool, 2, sizeof(fa_uint_t)) != FA_OK
        || fa_array_init(&d->queued, dl->pool, 2, sizeof(fa_smtp_queued_t)) != FA_OK)
    {
        return NULL;
    }
    d->dl = dl;
    d->user = *user;
    d->mailbox = *mailbox;
    return d;
}

static fa_int_t
fa_smtp_dest_add(fa_smtp_delivery_t *dl, const fa_str_t *user, const fa_str_t *mailbox,
    fa_uint_t rcpt, const fa_str_t *queued)
{
    fa_smtp_dest_t    *d = fa_smtp_dest(dl, user, mailbox);
    fa_uint_t         *r;
    fa_smtp_queued_t  *q;

    if (d == NULL) {
        return FA_ERROR;
    }
    r = d->rcpts.elts;
    if (d->rcpts.nelts == 0 || r[d->rcpts.nelts - 1] != rcpt) {
        if ((r = fa_array_push(&d->rcpts)) == NULL) {
            return FA_ERROR;
        }
        *r = rcpt;
    }
    if (queued) {
        if ((q = fa_array_push(&d->queued)) == NULL) {
            return FA_ERROR;
        }
        q->address = *queued;
        q->rcpt = rcpt;
    }
    return FA_OK;
}

static fa_int_t
fa_smtp_queue_add(fa_smtp_delivery_t *dl, fa_uint_t rcpt, const fa_str_t *address)
{
    static const fa_str_t  queue = fa_string(FA_SMTP_QUEUE_USER);
    static const fa_str_t  inbox = fa_string("INBOX");

    return fa_smtp_dest_add(dl, &queue, &inbox, rcpt, address);
}

/* an alias's targets, recursively: local users, or the queue for the others */
static fa_int_t
fa_smtp_expand(fa_smtp_delivery_t *dl, fa_smtp_session_t *s, const fa_str_t *address,
    const fa_str_t *folder, fa_uint_t rcpt, fa_uint_t depth, fa_uint_t *count)
{
    static const fa_str_t  inbox = fa_string("INBOX");
    fa_auth_resolved_t     res;
    fa_int_t               rc;

    if (depth > FA_SMTP_ALIAS_DEPTH || ++*count > FA_SMTP_EXPAND_MAX) {
        fa_log_error(FA_LOG_WARN, s->c->log, 0, "alias <%.*s>: nested too deep or too "
                     "many targets: not expanded further", (int) address->len, address->data);
        return FA_OK;
    }
    rc = fa_auth_resolve(fa_auth_worker_dir(), address, dl->pool, &res);
    if (rc == FA_AUTH_NODOMAIN) {
        return fa_smtp_queue_add(dl, rcpt, address);          /* forwarded */
    }
    if (rc == FA_AUTH_NOTFOUND || rc == FA_AUTH_INVALID) {
        fa_log_error(FA_LOG_WARN, s->c->log, 0, "alias target <%.*s> does not exist",
                     (int) address->len, address->data);
        return FA_OK;
    }
    if (rc != FA_OK) {
        return FA_ERROR;
    }
    if (res.kind == FA_AUTH_RESOLVED_USER) {
        /* a folder a hook chose for the alias (txn:deliver, quarantine) wins */
        return fa_smtp_dest_add(dl, &res.user, folder ? folder : res.detail.len ? &res.detail
                                : &inbox, rcpt, NULL);
    }
    for (fa_uint_t i = 0; i < res.ntargets; i++) {
        if (fa_smtp_expand(dl, s, &res.targets[i], folder, rcpt, depth + 1, count) != FA_OK) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_smtp_plan(fa_smtp_delivery_t *dl, fa_smtp_session_t *s)
{
    fa_smtp_rcpt_t  *r = s->txn->rcpts.elts;
    fa_uint_t        count = 0;
    fa_str_t         full;
    fa_int_t         rc = FA_OK;

    for (fa_uint_t i = 0; rc == FA_OK && i < s->txn->rcpts.nelts; i++) {
        switch (r[i].route) {
        case FA_SMTP_ROUTE_DISCARD:
            break;
        case FA_SMTP_ROUTE_QUEUE:
            rc = fa_smtp_queue_add(dl, i, &r[i].addr.address);
            break;
        case FA_SMTP_ROUTE_LOCAL:
            if (r[i].user.len) {
                rc = fa_smtp_dest_add(dl, &r[i].user, &r[i].mailbox, i, NULL);
                break;
            }
            full.len = r[i].addr.local.len + 1 + r[i].addr.domain.len;
            full.data = fa_pnalloc(dl->pool, full.len + 1);
            if (full.data == NULL) {
                return FA_ERROR;
            }
            fa_snprintf((char *) full.data, full.len + 1, "%.*s@%.*s",
                        (int) r[i].addr.local.len, r[i].addr.local.data,
                        (int) r[i].addr.domain.len, r[i].addr.domain.data);
            rc = fa_smtp_expand(dl, s, &full, r[i].mailbox.len ? &r[i].mailbox : NULL, i, 0,
                                &count);
            break;
        }
    }
    return rc;
}


/* ---- what goes in front of the message ---- */

static size_t
fa_smtp_xtext(const fa_str_t *in, char *out, size_t size)
{
    size_t  n = 0;

    for (size_t i = 0; i < in->len && n + 4 < size; i++) {
        u_char ch = in->data[i];
        if (ch < 0x21 || ch > 0x7e || ch == '+' || ch == '=' || ch == ';') {
            n += fa_snprintf(out + n, size - n, "+%02X", ch);
        } else {
            out[n++] = (char) ch;
        }
    }
    out[n] = '\0';
    return n;
}

/* the envelope lines of a queue entry */
static fa_int_t
fa_smtp_queue_envelope(fa_smtp_session_t *s, fa_smtp_dest_t *d, fa_append_t *a)
{
    const fa_storage_backend_t  *b = d->store->backend;
    fa_smtp_txn_t               *t = s->txn;
    fa_smtp_rcpt_t              *r = t->rcpts.elts;
    fa_smtp_queued_t            *q = d->queued.elts;
    char                         line[2048], x[512];
    size_t                       n;
    fa_int_t                     rc;

    n = fa_snprintf(line, sizeof(line), "X-Facteur-Queue: %s; from=<%.*s>; nrcpt=%lu",
                    t->id, (int) t->from.address.len, t->from.address.data,
                    (unsigned long) d->queued.nelts);
    if (t->ret.len) {
        n += fa_snprintf(line + n, sizeof(line) - n, "; ret=%.*s", (int) t->ret.len,
                         t->ret.data);
    }
    if (t->envid.len) {
        fa_smtp_xtext(&t->envid, x, sizeof(x));
        n += fa_snprintf(line + n, sizeof(line) - n, "; envid=%s", x);
    }
    n += fa_snprintf(line + n, sizeof(line) - n, "\r\n");
    rc = b->append_write(a, (u_char *) line, n);
    for (fa_uint_t i = 0; rc == FA_OK && i < d->queued.nelts; i++) {
        fa_smtp_rcpt_t *er = &r[q[i].rcpt];       /* DSN parameters come from it */
        n = fa_snprintf(line, sizeof(line), "X-Facteur-Rcpt: <%.*s>",
                        (int) fa_min(q[i].address.len, 300), q[i].address.data);
        if (er->notify.len) {
            n += fa_snprintf(line + n, sizeof(line) - n, "; notify=%.*s",
                             (int) er->notify.len, er->notify.data);
        }
        if (er->orcpt.len) {
            fa_smtp_xtext(&er->orcpt, x, sizeof(x));
            n += fa_snprintf(line + n, sizeof(line) - n, "; orcpt=%s", x);
        }
        if (er->reason.len) {
            n += fa_snprintf(line + n, sizeof(line) - n, "; reason=%.*s",
                             (int) er->reason.len, er->reason.data);
        }
        n += fa_snprintf(line + n, sizeof(line) - n, "\r\n");
        rc = b->append_write(a, (u_char *) line, n);
    }
    return rc;
}

/* "Received:" (RFC 5321 4.4), with the TLS version and cipher when there was TLS */
static size_t
fa_smtp_received(fa_smtp_session_t *s, char *buf, size_t size)
{
    fa_smtp_txn_t   *t = s->txn;
    fa_smtp_rcpt_t  *r = t->rcpts.elts;
    const fa_str_t  *host = &fa_smtp_priv(s)->conf->hostname;
    char             date[64];
    struct tm        tm;
    time_t           now = time(NULL);
    size_t           n;

    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
    n = fa_snprintf(buf, size, "Received: from %.*s ([%s])\r\n\tby %.*s (Facteur) with %s "
                    "id %s", (int) fa_min(s->helo.len, 255), s->helo.data,
                    s->c->addr_text, (int) host->len, host->data,
                    fa_smtp_protocol_name(s), t->id);
    if (s->c->ssl) {
        n += fa_snprintf(buf + n, size - n, "\r\n\t(using %s with cipher %s)",
                         fa_ssl_protocol(s->c), fa_ssl_cipher(s->c));
    }
    if (t->rcpts.nelts == 1) {
        n += fa_snprintf(buf + n, size - n, "\r\n\tfor <%.*s>",
                         (int) fa_min(r[0].addr.address.len, 300), r[0].addr.address.data);
    }
    n += fa_snprintf(buf + n, size - n, "; %s\r\n", date);
    return n;
}


/* ---- appends ---- */

static void
fa_smtp_dest_committed(void *data, fa_int_t rc, fa_append_result_t *res)
{
    fa_smtp_dest_t      *d = data;
    fa_smtp_delivery_t  *dl = d->dl;

    (void) res;
    d->rc = rc;
    if (--dl->pending == 0) {
        fa_smtp_deliver_finish(dl);
    }
}

static fa_int_t
fa_smtp_write_message(fa_smtp_session_t *s, fa_smtp_dest_t *d, fa_append_t *a,
    const u_char *head, size_t hlen)
{
    const fa_storage_backend_t  *b = d->store->backend;
    static u_char                buf[FA_SMTP_COPY_CHUNK];
    char                         rp[512];
    uint64_t                     off = 0;
    ssize_t                      n;
    fa_int_t                     rc;

    if (d->queued.nelts) {
        rc = fa_smtp_queue_envelope(s, d, a);
    } else {
        size_t l = fa_snprintf(rp, sizeof(rp), "Return-Path: <%.*s>\r\n",
                               (int) fa_min(s->txn->from.address.len, 300),
                               s->txn->from.address.data);
        rc = b->append_write(a, (u_char *) rp, l);
    }
    rc = rc ? rc : b->append_write(a, head, hlen);
    while (rc == FA_OK && (n = fa_smtp_spool_read(s->txn->spool, off, buf, sizeof(buf))) > 0) {
        rc = b->append_write(a, buf, (size_t) n);
        off += (uint64_t) n;
    }
    return rc == FA_OK && off == fa_smtp_spool_size(s->txn->spool) ? FA_OK
           : rc ? rc : FA_ERROR;
}

/*
 * A destination that turned out to be the same mailbox as an earlier one
 * of this round: its recipients join that one (whose commit may be in
 * flight: their result is its result).  FA_DECLINED if there is none.
 */
static fa_int_t
fa_smtp_dest_merge(fa_smtp_dest_t *d)
{
    fa_smtp_delivery_t  *dl = d->dl;
    fa_smtp_dest_t      *all = dl->dests.elts;
    fa_uint_t           *r = d->rcpts.elts, *slot;

    for (fa_smtp_dest_t *o = all + dl->first; o < d; o++) {
        if (fa_str_equal(&o->user, &d->user) && fa_str_equal(&o->mailbox, &d->mailbox)) {
            for (fa_uint_t i = 0; i < d->rcpts.nelts; i++) {
                if ((slot = fa_array_push(&o->rcpts)) == NULL) {
                    return FA_ERROR;
                }
                *slot = r[i];
            }
            d->rcpts.nelts = 0;
            return FA_OK;
        }
    }
    return FA_DECLINED;
}

/* begin, write and commit one destination; FA_AGAIN while its commit runs */
static fa_int_t
fa_smtp_dest_start(fa_smtp_session_t *s, fa_smtp_dest_t *d, const u_char *head,
    size_t hlen)
{
    fa_storage_t         *st = fa_storage_for_user(fa_cycle, &d->user);
    fa_append_request_t   req;
    fa_append_t          *a = NULL;
    fa_str_t              inbox = fa_string("INBOX");
    fa_int_t              rc;

    if (st == NULL) {
        return FA_STORAGE_TEMPFAIL;
    }
    d->store = st;
    memset(&req, 0, sizeof(req));
    req.size_hint = hlen + fa_smtp_spool_size(s->txn->spool) + 256;
    rc = st->backend->append_begin(st, &d->user, &d->mailbox, &req, &a);
    if (rc == FA_STORAGE_NOTFOUND && !fa_str_equal(&d->mailbox, &inbox)) {
        d->mailbox = inbox;              /* "+detail" with no such folder: INBOX */
        if (fa_smtp_dest_merge(d) == FA_OK) {
            return FA_DONE;              /* that INBOX gets one copy, for both */
        }
        rc = st->backend->append_begin(st, &d->user, &d->mailbox, &req, &a);
    }
    if (rc != FA_OK) {
        return rc;
    }
    rc = fa_smtp_write_message(s, d, a, head, hlen);
    if (rc != FA_OK) {
        st->backend->append_abort(a);
        return rc;
    }
    return st->backend->append_commit(a, fa_smtp_dest_committed, d);
}

/* Received + the header block, rendered once for every destination */
static u_char *
fa_smtp_head(fa_smtp_session_t *s, fa_pool_t *pool, size_t *len)
{
    char     rcv[2048];
    size_t   r = fa_smtp_received(s, rcv, sizeof(rcv));
    size_t   h = fa_smtp_headers_render(s->txn, NULL, 0);
    u_char  *out = fa_pnalloc(pool, r + h + 1);

    if (out == NULL) {
        return NULL;
    }
    memcpy(out, rcv, r);
    fa_smtp_headers_render(s->txn, out + r, h);
    *len = r + h;
    return out;
}

static void
fa_smtp_start_all(fa_smtp_delivery_t *dl)
{
    fa_smtp_session_t  *s = dl->s;
    fa_smtp_dest_t     *d = dl->dests.elts;
    size_t              hlen = 0;
    u_char             *head = fa_smtp_head(s, dl->pool, &hlen);

    dl->pending = 1;                     /* held until every append is started */
    for (fa_uint_t i = 0; i < dl->dests.nelts; i++) {
        d[i].rc = head ? fa_smtp_dest_start(s, &d[i], head, hlen) : FA_ERROR;
        if (d[i].rc == FA_AGAIN) {
            dl->pending++;
        }
    }
    if (--dl->pending == 0) {
        fa_smtp_deliver_finish(dl);
    }
}

void
fa_smtp_deliver(fa_smtp_session_t *s)
{
    fa_smtp_priv_t      *p = fa_smtp_priv(s);
    fa_pool_t           *pool = fa_pool_create(4096, s->c->log);
    fa_smtp_delivery_t  *dl = pool ? fa_pcalloc(pool, sizeof(*dl)) : NULL;

    s->c->log->action = "delivering a message";
    if (dl == NULL || fa_array_init(&dl->dests, pool, 4, sizeof(fa_smtp_dest_t)) != FA_OK) {
        if (pool) {
            fa_pool_destroy(pool);
        }
        fa_smtp_reply(s, 451, "4.3.0 Error: out of memory");
        fa_smtp_txn_end(s);
        fa_smtp_continue(s);
        return;
    }
    dl->pool = pool;
    dl->s = s;
    p->delivery = dl;
    if (fa_smtp_plan(dl, s) != FA_OK) {
        fa_smtp_dest_t *d = dl->dests.elts;
        for (fa_uint_t i = 0; i < dl->dests.nelts; i++) {
            d[i].rc = FA_STORAGE_TEMPFAIL;
        }
        dl->dests.nelts = 0;
        dl->pending = 0;
        fa_smtp_reply(s, 451, "4.3.0 Error: temporary lookup failure");
        fa_smtp_txn_end(s);
        fa_smtp_continue(s);
        return;
    }
    fa_smtp_start_all(dl);
}


/* ---- the answers ---- */

/* a recipient's result: the worst of its destinations */
static fa_int_t
fa_smtp_rcpt_result(fa_smtp_delivery_t *dl, fa_uint_t rcpt)
{
    fa_smtp_dest_t  *d = dl->dests.elts;
    fa_int_t         rc = FA_OK;

    for (fa_uint_t i = 0; i < dl->dests.nelts; i++) {
        fa_uint_t *r = d[i].rcpts.elts;
        for (fa_uint_t j = 0; j < d[i].rcpts.nelts; j++) {
            if (r[j] == rcpt && d[i].rc != FA_OK && d[i].rc != FA_DONE) {
                rc = rc == FA_OK || d[i].rc != FA_STORAGE_OVERQUOTA ? d[i].rc : rc;
            }
        }
    }
    return rc;
}

static void
fa_smtp_log_sent(fa_smtp_session_t *s)
{
    fa_smtp_txn_t   *t = s->txn;
    fa_smtp_rcpt_t  *r = t->rcpts.elts;
    char             to[1024] = "(none)";
    size_t           n = 0;

    for (fa_uint_t i = 0; i < t->rcpts.nelts && n + 8 < sizeof(to); i++) {
        if (r[i].removed) {
            continue;                              /* a hook took it out */
        }
        n += fa_snprintf(to + n, sizeof(to) - n, "%s<%.*s>", n ? "," : "",
                         (int) fa_min(r[i].addr.address.len, 300), r[i].addr.address.data);
    }
    /* hooks that removed every recipient: accepted, and delivered nowhere */
    fa_log_error(FA_LOG_NOTICE, s->c->log, 0, "%s: from=<%.*s>, to=%s, size=%llu, tls=%s, "
                 "delay=%.3f, status=%s", t->id, (int) fa_min(t->from.address.len, 300),
                 t->from.address.data, to, (unsigned long long) t->size,
                 s->c->ssl ? fa_ssl_protocol(s->c) : "none",
                 (double) (fa_current_msec - t->start) / 1000.0, n ? "sent" : "discarded");
    fa_stat_inc(fa_smtp_stat_messages);
    fa_stat_add(fa_smtp_stat_bytes, (int64_t) t->size);
    fa_stat_add(fa_smtp_stat_rcpts, (int64_t) t->rcpts.nelts);
}

static void
fa_smtp_reply_rcpt(fa_smtp_session_t *s, fa_smtp_rcpt_t *r, fa_int_t rc)
{
    if (rc == FA_OK) {
        fa_smtp_reply(s, 250, "2.0.0 <%.*s> Ok: queued as %s",
                      (int) fa_min(r->addr.address.len, 300), r->addr.address.data, s->txn->id);
    } else if (rc == FA_STORAGE_OVERQUOTA) {
        fa_smtp_count_reject("quota");
        fa_smtp_reply(s, 552, "5.2.2 <%.*s> Mailbox full",
                      (int) fa_min(r->addr.address.len, 300), r->addr.address.data);
    } else {
        fa_smtp_reply(s, 451, "4.3.0 <%.*s> Error: cannot store the message, try again later",
                      (int) fa_min(r->addr.address.len, 300), r->addr.address.data);
    }
}

/* SMTP, some destinations failed: their recipients go to the queue; 0 if none */
static int
fa_smtp_requeue(fa_smtp_delivery_t *dl)
{
    fa_smtp_session_t  *s = dl->s;
    fa_smtp_dest_t     *d = dl->dests.elts;
    fa_smtp_rcpt_t     *r = s->txn->rcpts.elts;
    fa_uint_t           ok = 0, failed = 0, n = dl->dests.nelts;

    for (fa_uint_t i = 0; i < n; i++) {
        ok += d[i].rc == FA_OK || d[i].rc == FA_DONE;
        failed += d[i].rc != FA_OK && d[i].user.len && d[i].queued.nelts == 0;
    }
    if (dl->requeue || ok == 0 || failed == 0 || failed + ok != n) {
        return 0;                        /* nothing delivered, or a queue entry failed */
    }
    dl->requeue = 1;
    dl->first = n;                       /* new queue destination, not an old one */
    for (fa_uint_t i = 0; i < n; i++) {
        d = dl->dests.elts;
        if (d[i].rc == FA_OK || d[i].rc == FA_DONE) {
            continue;
        }
        fa_uint_t *ri = d[i].rcpts.elts;
        for (fa_uint_t j = 0; j < d[i].rcpts.nelts; j++) {
            fa_str_set(&r[ri[j]].reason, "local delivery failed");
            if (fa_smtp_queue_add(dl, ri[j], &r[ri[j]].addr.address) != FA_OK) {
                return 0;
            }
        }
        d = dl->dests.elts;
        d[i].rc = FA_OK;                 /* now the queue's business */
    }
    d = dl->dests.elts;
    dl->pending = 1;
    for (fa_uint_t i = n; i < dl->dests.nelts; i++) {
        size_t hlen;
        u_char *head = fa_smtp_head(s, dl->pool, &hlen);
        d[i].rc = head ? fa_smtp_dest_start(s, &d[i], head, hlen) : FA_ERROR;
        dl->pending += d[i].rc == FA_AGAIN;
    }
    if (--dl->pending == 0) {
        fa_smtp_deliver_finish(dl);
    }
    return 1;
}

static void
fa_smtp_deliver_finish(fa_smtp_delivery_t *dl)
{
    fa_smtp_session_t  *s = dl->s;
    fa_smtp_rcpt_t     *r;
    fa_int_t            worst = FA_OK;

    if (s == NULL) {
        fa_pool_destroy(dl->pool);       /* the client left; the mail is stored */
        return;
    }
    r = s->txn->rcpts.elts;
    if (s->role != FA_SMTP_ROLE_LMTP && fa_smtp_requeue(dl)) {
        return;                          /* finish again when the queue has them */
    }
    for (fa_uint_t i = 0; i < s->txn->rcpts.nelts; i++) {
        fa_int_t rc = fa_smtp_rcpt_result(dl, i);
        if (s->role == FA_SMTP_ROLE_LMTP && !r[i].added) {
            fa_smtp_reply_rcpt(s, &r[i], rc);       /* one per RCPT the client gave */
        }
        worst = worst != FA_OK ? worst : rc;
    }
    if (s->role != FA_SMTP_ROLE_LMTP) {
        if (worst == FA_OK) {
            fa_smtp_reply(s, 250, "2.0.0 Ok: queued as %s", s->txn->id);
        } else if (worst == FA_STORAGE_OVERQUOTA) {
            fa_smtp_count_reject("quota");
            fa_smtp_reply(s, 552, "5.2.2 Mailbox full");
        } else {
            fa_smtp_reply(s, 451, "4.3.0 Error: cannot store the message, try again later");
        }
    }
    if (worst == FA_OK || s->role == FA_SMTP_ROLE_LMTP) {
        fa_smtp_log_sent(s);
    }
    fa_smtp_priv(s)->delivery = NULL;
    fa_pool_destroy(dl->pool);
    fa_smtp_txn_end(s);
    fa_smtp_continue(s);
}

/* the session ends (or RSETs) with commits in flight: they finish without it */
void
fa_smtp_deliver_cancel(fa_smtp_session_t *s)
{
    fa_smtp_priv_t      *p = fa_smtp_priv(s);
    fa_smtp_delivery_t  *dl = p->delivery;

    if (dl) {
        dl->s = NULL;
        p->delivery = NULL;
    }
}
