/*
 * The maildrop (INBOX) in the TRANSACTION and UPDATE states: STAT, LIST,
 * UIDL, RETR, TOP, DELE, RSET, NOOP, QUIT.
 *
 * At login the messages are listed once (UID, size, date: no metadata
 * strings) and numbered 1..n; DELE only marks.  QUIT stores \Deleted on
 * the marked messages and expunges exactly those UIDs: the deletions take
 * effect then and only then, and an IMAP session on INBOX hears them as
 * EXPUNGE.  With pop3_expire 0, what was retrieved goes too; with N days,
 * what was retrieved and arrived more than N days ago.
 *
 * RETR and TOP stream: 64 KB read from the store, dot-stuffed, bare LF
 * made CRLF, queued, and no more until the client has read it.
 */

#include "fa_pop3_int.h"

static u_char  fa_pop3_in[FA_POP3_CHUNK];
static u_char  fa_pop3_out[2 * FA_POP3_CHUNK + 8];


/* ---- opening ---- */

static void
fa_pop3_logged_in(fa_pop3_session_t *s)
{
    uint64_t  size = 0;

    for (fa_uint_t i = 0; i < s->n; i++) {
        size += s->msgs[i].size;
    }
    s->state = FA_POP3_TRANSACTION;
    s->login_msec = fa_current_msec;
    fa_stat_inc(fa_pop3_stat_logins);
    fa_log_error(FA_LOG_INFO, s->c->log, 0, "pop3 login: user=<%s>, tls=%s, messages=%lu",
                 s->user, s->c->ssl ? fa_ssl_protocol(s->c) : "none", (unsigned long) s->n);
    fa_pop3_ok(s, "Logged in, %lu messages (%llu octets)", (unsigned long) s->n,
               (unsigned long long) size);
}

static void
fa_pop3_failed_open(fa_pop3_session_t *s, fa_int_t rc)
{
    fa_log_error(FA_LOG_ERR, s->c->log, 0, "pop3: INBOX of %s cannot be read: %s", s->user,
                 fa_storage_strerror(rc));
    fa_pop3_maildrop_close(s);
    fa_pop3_unlock(s);
    s->user_len = 0;
    fa_pop3_err(s, "[SYS/TEMP] The mailbox cannot be read now");
}

static void
fa_pop3_listed(void *data, fa_int_t rc, fa_mailbox_changes_t *ch)
{
    fa_pop3_session_t  *s = data;

    if (fa_pop3_answered(s)) {
        return;
    }
    if (rc == FA_OK && ch->nchanged) {
        s->msgs = fa_pcalloc(s->pool, ch->nchanged * sizeof(fa_pop3_msg_t));
        rc = s->msgs ? FA_OK : FA_ERROR;
    }
    for (fa_uint_t i = 0; rc == FA_OK && i < ch->nchanged; i++) {
        s->msgs[i].uid = ch->changed[i].uid;
        s->msgs[i].size = ch->changed[i].size;
        s->msgs[i].internal_date = ch->changed[i].internal_date;
    }
    if (rc == FA_OK) {
        s->n = ch->nchanged;
        fa_pop3_logged_in(s);
    } else {
        fa_pop3_failed_open(s, rc);
    }
    fa_pop3_continue(s);
}

static void
fa_pop3_opened(void *data, fa_int_t rc, fa_mailbox_t *box, fa_mailbox_status_t *st)
{
    fa_pop3_session_t  *s = data;

    if (fa_pop3_answered(s)) {
        return;
    }
    if (rc == FA_STORAGE_NOTFOUND) {
        fa_pop3_logged_in(s);            /* no INBOX yet: an empty maildrop */
        fa_pop3_continue(s);
        return;
    }
    if (rc == FA_OK) {
        s->box = box;
        s->uidvalidity = st->uidvalidity;
        rc = fa_pop3_call(s, s->store->backend->changes_since(box, 0, s->pool, fa_pop3_listed,
                                                              s));
        if (rc == FA_AGAIN) {
            return;
        }
    }
    fa_pop3_failed_open(s, rc);
    fa_pop3_continue(s);
}

fa_int_t
fa_pop3_maildrop_open(fa_pop3_session_t *s)
{
    fa_str_t  user = { s->user_len, (u_char *) s->user }, inbox = fa_string("INBOX");
    fa_int_t  rc;

    s->busy = 1;
    rc = fa_pop3_call(s, s->store->backend->mailbox_open(s->store, &user, &inbox, s->pool,
                                                         fa_pop3_opened, s));
    if (rc == FA_AGAIN) {
        return FA_AGAIN;
    }
    if (rc == FA_STORAGE_NOTFOUND) {
        fa_pop3_logged_in(s);
    } else {
        fa_pop3_failed_open(s, rc);
    }
    return rc;
}

void
fa_pop3_maildrop_close(fa_pop3_session_t *s)
{
    if (s->box) {
        s->store->backend->mailbox_close(s->box);
        s->box = NULL;
    }
    if (s->pool) {
        fa_pool_destroy(s->pool);
        s->pool = NULL;
    }
    s->msgs = NULL;
    s->n = 0;
}


/* ---- message numbers ---- */

/* "3" -> the message, not deleted; NULL (and the -ERR written) otherwise */
static fa_pop3_msg_t *
fa_pop3_msg(fa_pop3_session_t *s, const fa_str_t *arg)
{
    int64_t  n = arg->len && arg->len <= 10 ? fa_atoi(arg->data, arg->len) : -1;

    if (n < 1 || (uint64_t) n > s->n) {
        fa_pop3_err(s, "No such message");
        return NULL;
    }
    if (s->msgs[n - 1].deleted) {
        fa_pop3_err(s, "Message %lu is deleted", (unsigned long) n);
        return NULL;
    }
    return &s->msgs[n - 1];
}

static fa_int_t
fa_pop3_stat(fa_pop3_session_t *s)
{
    fa_uint_t  count = 0;
    uint64_t   size = 0;

    for (fa_uint_t i = 0; i < s->n; i++) {
        if (!s->msgs[i].deleted) {
            count++;
            size += s->msgs[i].size;
        }
    }
    return fa_pop3_ok(s, "%lu %llu", (unsigned long) count, (unsigned long long) size);
}

/* LIST and UIDL, for one message or all */
static fa_int_t
fa_pop3_listing(fa_pop3_session_t *s, fa_str_t *arg, int uidl)
{
    fa_pop3_msg_t  *m;

    if (arg->len) {
        if ((m = fa_pop3_msg(s, arg)) == NULL) {
            return FA_OK;
        }
        return uidl ? fa_pop3_ok(s, "%lu %08x%08x", (unsigned long) (m - s->msgs + 1),
                                 (unsigned) m->uid, (unsigned) s->uidvalidity)
                    : fa_pop3_ok(s, "%lu %llu", (unsigned long) (m - s->msgs + 1),
                                 (unsigned long long) m->size);
    }
    fa_pop3_ok(s, "%s", uidl ? "Unique IDs follow" : "Scan list follows");
    for (fa_uint_t i = 0; i < s->n; i++) {
        if (s->msgs[i].deleted) {
            continue;
        }
        if (uidl) {
            fa_conn_printf(s->c, "%lu %08x%08x\r\n", (unsigned long) i + 1,
                           (unsigned) s->msgs[i].uid, (unsigned) s->uidvalidity);
        } else {
            fa_conn_printf(s->c, "%lu %llu\r\n", (unsigned long) i + 1,
                           (unsigned long long) s->msgs[i].size);
        }
    }
    return fa_conn_write(s->c, ".\r\n", 3);
}


/* ---- RETR and TOP ---- */

/* one chunk, dot-stuffed and CRLF; TOP stops after its body lines */
static size_t
fa_pop3_transform(fa_pop3_session_t *s, const u_char *in, size_t n, int *end)
{
    size_t  o = 0;

    for (size_t i = 0; i < n; i++) {
        u_char ch = in[i];
        if (s->line_start) {
            if (s->top_lines == 0 && s->in_body) {
                *end = 1;
                return o;
            }
            s->empty_line = ch == '\r' || ch == '\n';
            if (ch == '.') {
                fa_pop3_out[o++] = '.';
            }
        }
        if (ch == '\n' && !s->cr) {
            fa_pop3_out[o++] = '\r';             /* a bare LF becomes CRLF */
        }
        fa_pop3_out[o++] = ch;
        s->cr = ch == '\r';
        s->line_start = ch == '\n';
        if (ch == '\n') {
            if (s->in_body && s->top_lines > 0) {
                s->top_lines--;
            } else if (!s->in_body && s->empty_line) {
                s->in_body = 1;                  /* the blank line after the header */
            }
        }
    }
    return o;
}

static fa_int_t
fa_pop3_stream_end(fa_pop3_session_t *s)
{
    s->store->backend->message_close(s->stream);
    s->stream = NULL;
    if (!s->line_start) {
        fa_conn_write(s->c, "\r\n", 2);
    }
    return fa_conn_write(s->c, ".\r\n", 3);
}

static void
fa_pop3_read_ready(void *data, fa_int_t rc)
{
    fa_pop3_session_t  *s = data;

    (void) rc;
    if (!fa_pop3_answered(s)) {
        fa_pop3_continue(s);             /* read again: the data is there now */
    }
}

/* more of the message, until the output is full or the message ends */
fa_int_t
fa_pop3_stream(fa_pop3_session_t *s)
{
    ssize_t  n;
    size_t   o;
    int      end = 0;

    while (fa_conn_out_pending(s->c) <= s->c->out.high_water) {
        n = s->store->backend->message_read(s->stream, s->offset, fa_pop3_in,
                                            sizeof(fa_pop3_in), fa_pop3_read_ready, s);
        if (n == FA_AGAIN) {
            fa_pop3_call(s, FA_AGAIN);
            s->busy = 1;
            return FA_OK;
        }
        if (n < 0) {
            fa_log_error(FA_LOG_ERR, s->c->log, 0, "pop3: reading a message of %s failed",
                         s->user);
            return FA_ERROR;             /* the client cannot be told in the middle */
        }
        if (n == 0) {
            return fa_pop3_stream_end(s);
        }
        s->offset += (uint64_t) n;
        o = fa_pop3_transform(s, fa_pop3_in, (size_t) n, &end);
        s->retrieved_bytes += o;
        fa_stat_add(fa_pop3_stat_bytes, (int64_t) o);
        if (fa_conn_write(s->c, fa_pop3_out, o) == FA_ERROR) {
            return FA_ERROR;
        }
        if (end) {
            return fa_pop3_stream_end(s);
        }
    }
    return FA_OK;                        /* the loop flushes; drain brings us back */
}

static fa_int_t
fa_pop3_send(fa_pop3_session_t *s, fa_pop3_msg_t *m, int64_t lines)
{
    if (s->store->backend->message_open(s->box, m->uid, &s->stream) != FA_OK) {
        s->stream = NULL;
        return fa_pop3_err(s, "[SYS/TEMP] The message cannot be read now");
    }
    s->offset = 0;
    s->top_lines = lines;
    s->line_start = 1;
    s->in_body = 0;
    s->cr = 0;
    if (lines < 0) {
        m->retrieved = 1;
        s->retrieved++;
    }
    fa_stat_inc(fa_pop3_stat_retr);
    return fa_pop3_ok(s, "%llu octets", (unsigned long long) m->size);
}

static fa_int_t
fa_pop3_top(fa_pop3_session_t *s, fa_str_t *arg)
{
    u_char         *sp = memchr(arg->data, ' ', arg->len);
    fa_str_t        num = { sp ? (size_t) (sp - arg->data) : 0, arg->data };
    int64_t         lines = sp ? fa_atoi(sp + 1, arg->len - num.len - 1) : -1;
    fa_pop3_msg_t  *m;

    if (sp == NULL || lines < 0) {
        return fa_pop3_err(s, "Syntax: TOP message lines");
    }
    if ((m = fa_pop3_msg(s, &num)) == NULL) {
        return FA_OK;
    }
    return fa_pop3_send(s, m, lines);
}


/* ---- UPDATE ---- */

/* deleted now: the marked ones, and with pop3_expire what was retrieved */
static int
fa_pop3_goes(fa_pop3_session_t *s, const fa_pop3_msg_t *m)
{
    time_t  now = time(NULL);

    return m->deleted
           || (m->retrieved && s->conf->expire >= 0
               && now - m->internal_date >= (time_t) s->conf->expire * 86400);
}

static void
fa_pop3_expunged(void *data, fa_int_t rc, fa_mailbox_changes_t *ch)
{
    fa_pop3_session_t  *s = data;

    if (rc == FA_OK) {
        fa_stat_add(fa_pop3_stat_dele, (int64_t) ch->nexpunged);
    }
    if (fa_pop3_answered(s)) {
        return;
    }
    if (rc == FA_OK) {
        s->deleted = ch->nexpunged;
        fa_pop3_ok(s, "Logging out, %lu messages deleted", (unsigned long) ch->nexpunged);
    } else {
        fa_pop3_err(s, "[SYS/TEMP] Some messages could not be deleted");
    }
    s->closing = 1;
    fa_pop3_continue(s);
}

static void
fa_pop3_flagged(void *data, fa_int_t rc, fa_message_meta_t *msgs, fa_uint_t n)
{
    fa_pop3_session_t  *s = data;

    (void) msgs;
    (void) n;
    if (rc == FA_OK) {
        /* QUIT was said: the expunge goes on even if the client is gone now */
        rc = fa_pop3_call(s, s->store->backend->expunge(s->box, &s->gone_set, s->pool,
                                                        fa_pop3_expunged, s));
    }
    if (fa_pop3_answered(s) || rc == FA_AGAIN) {
        return;
    }
    fa_pop3_err(s, "[SYS/TEMP] The messages could not be deleted");
    s->closing = 1;
    fa_pop3_continue(s);
}

/* QUIT after login: \Deleted on what goes, then expunge exactly those UIDs */
fa_int_t
fa_pop3_update(fa_pop3_session_t *s)
{
    fa_store_request_t  req;
    fa_uid_range_t     *r;
    fa_uint_t           k = 0;
    fa_int_t            rc;

    s->state = FA_POP3_UPDATE;
    r = s->n ? fa_palloc(s->pool, s->n * sizeof(*r)) : NULL;
    for (fa_uint_t i = 0; r && i < s->n; i++) {
        if (fa_pop3_goes(s, &s->msgs[i])) {
            r[k].first = r[k].last = s->msgs[i].uid;
            k++;
        }
    }
    s->closing = 1;
    if (k == 0) {
        return fa_pop3_ok(s, "Logging out");
    }
    s->gone_set.ranges = r;
    s->gone_set.nranges = k;
    memset(&req, 0, sizeof(req));
    req.mode = FA_STORE_ADD;
    req.flags = FA_FLAG_DELETED;
    rc = fa_pop3_call(s, s->store->backend->store(s->box, &s->gone_set, &req, s->pool,
                                                  fa_pop3_flagged, s));
    if (rc == FA_AGAIN) {
        s->closing = 0;                  /* the answer comes first */
        s->busy = 1;
        return FA_OK;
    }
    return fa_pop3_err(s, "[SYS/TEMP] The messages could not be deleted");
}

/* the TRANSACTION state's commands */
fa_int_t
fa_pop3_transaction(fa_pop3_session_t *s, const fa_str_t *cmd, fa_str_t *arg)
{
    fa_pop3_msg_t  *m;

    if (fa_str_eqi(cmd, "STAT")) {
        return fa_pop3_stat(s);
    }
    if (fa_str_eqi(cmd, "LIST") || fa_str_eqi(cmd, "UIDL")) {
        return fa_pop3_listing(s, arg, fa_str_eqi(cmd, "UIDL"));
    }
    if (fa_str_eqi(cmd, "RETR")) {
        return (m = fa_pop3_msg(s, arg)) ? fa_pop3_send(s, m, -1) : FA_OK;
    }
    if (fa_str_eqi(cmd, "TOP")) {
        return fa_pop3_top(s, arg);
    }
    if (fa_str_eqi(cmd, "DELE")) {
        if ((m = fa_pop3_msg(s, arg)) == NULL) {
            return FA_OK;
        }
        m->deleted = 1;
        return fa_pop3_ok(s, "Marked to be deleted");
    }
    if (fa_str_eqi(cmd, "RSET")) {
        for (fa_uint_t i = 0; i < s->n; i++) {
            s->msgs[i].deleted = 0;
        }
        return fa_pop3_ok(s, "Marks removed");
    }
    if (fa_str_eqi(cmd, "NOOP")) {
        return fa_pop3_ok(s, "Nothing done");
    }
    if (fa_str_eqi(cmd, "QUIT")) {
        return fa_pop3_update(s);
    }
    return fa_pop3_err(s, "Unknown command");
}
