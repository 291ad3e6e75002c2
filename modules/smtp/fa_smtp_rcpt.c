/*
 * Recipients: is a domain local, may this client send there, and where
 * does an address go (a user's mailbox, an alias's targets, the queue).
 *
 * The relay rule comes first and no hook can change it: a recipient in a
 * domain that is not local is accepted only from a client that
 * authenticated or connects from relay_from ("unix:" there for the
 * clients of a unix socket), and never over LMTP.  Local parts carrying
 * routing characters ("%", "!", or an "@" inside quotes) are relay
 * attempts too, refused the same way, so "user%elsewhere@local" can never
 * leave through us.
 *
 * Lookups are LMDB reads of microseconds, done in the loop.
 */

#include "fa_smtp_int.h"
#include "fa_auth_directory.h"
#include "fa_auth_login.h"

fa_int_t
fa_smtp_is_local_domain(const fa_str_t *domain)
{
    fa_auth_dir_t  *d = fa_auth_worker_dir();
    fa_int_t        rc;

    if (d == NULL) {
        return FA_ERROR;
    }
    rc = fa_auth_domain_exists(d, domain);
    return rc == FA_OK ? FA_OK : rc == FA_AUTH_NOTFOUND ? FA_DECLINED : FA_ERROR;
}

static fa_int_t
fa_smtp_refuse(fa_smtp_session_t *s, fa_smtp_answer_t *a, fa_uint_t code,
    const char *reason, const char *fmt, const fa_smtp_addr_t *addr)
{
    u_char  *text = fa_pnalloc(s->txn->pool, 512);

    if (text == NULL) {
        return FA_ERROR;
    }
    a->verdict = code >= 500 ? FA_SMTP_REJECT : FA_SMTP_DEFER;
    a->code = code;
    a->text.data = text;
    a->text.len = fa_snprintf((char *) text, 512, fmt, (int) fa_min(addr->address.len, 300),
                              addr->address.data);
    fa_smtp_count_reject(reason);
    return FA_DECLINED;
}

static int
fa_smtp_routing_chars(const fa_str_t *local)
{
    return memchr(local->data, '%', local->len) || memchr(local->data, '!', local->len)
           || memchr(local->data, '@', local->len);
}

/* "<postmaster>" without a domain is the server's postmaster (RFC 5321 4.5.1) */
static void
fa_smtp_rcpt_postmaster(fa_smtp_session_t *s, fa_smtp_rcpt_t *r)
{
    if (r->addr.domain.len == 0) {
        r->addr.domain = fa_smtp_priv(s)->conf->hostname;
    }
}

static fa_int_t
fa_smtp_rcpt_local(fa_smtp_session_t *s, fa_smtp_rcpt_t *r, fa_smtp_answer_t *a)
{
    fa_auth_resolved_t  res;
    fa_str_t            full;
    fa_int_t            rc;

    full.len = r->addr.local.len + 1 + r->addr.domain.len;
    full.data = fa_pnalloc(s->txn->pool, full.len + 1);
    if (full.data == NULL) {
        return FA_ERROR;
    }
    fa_snprintf((char *) full.data, full.len + 1, "%.*s@%.*s", (int) r->addr.local.len,
                r->addr.local.data, (int) r->addr.domain.len, r->addr.domain.data);
    rc = fa_auth_resolve(fa_auth_worker_dir(), &full, s->txn->pool, &res);
    if (rc == FA_AUTH_NOTFOUND || rc == FA_AUTH_INVALID) {
        if (fa_smtp_domain_unknown_users(s, &r->addr.domain) == FA_SMTP_UNKNOWN_ACCEPT) {
            r->route = FA_SMTP_ROUTE_QUEUE;      /* for a bounce, later */
            fa_str_set(&r->reason, "unknown user");
            return FA_OK;
        }
        return fa_smtp_refuse(s, a, 550, "unknown_user",
                              "5.1.1 <%.*s>: Recipient address rejected: User unknown",
                              &r->addr);
    }
    if (rc != FA_OK) {
        return fa_smtp_refuse(s, a, 451, "lookup_failure",
                              "4.3.0 <%.*s>: Temporary lookup failure", &r->addr);
    }
    r->route = FA_SMTP_ROUTE_LOCAL;
    if (res.kind == FA_AUTH_RESOLVED_USER) {
        r->user = res.user;
        if (res.detail.len) {
            /* filed in that folder if it exists; its case is the sender's */
            u_char *plus = memchr(r->addr.local.data, '+', r->addr.local.len);
            r->mailbox.data = plus ? plus + 1 : res.detail.data;
            r->mailbox.len = plus ? (size_t) (r->addr.local.data + r->addr.local.len - plus - 1)
                                  : res.detail.len;
        } else {
            fa_str_set(&r->mailbox, "INBOX");
        }
    }
    /* an alias: user stays empty, its targets are expanded at delivery */
    return FA_OK;
}

/*
 * A domain's relay rules.  "relay_to SMARTHOST;" makes a domain we relay
 * for (a backup MX, an internal host behind us): its mail is taken from
 * anyone, like a local domain's, and queued for that smarthost.
 * FA_OK routed, FA_DECLINED not a relay domain.
 */
static fa_int_t
fa_smtp_rcpt_relay_domain(fa_smtp_session_t *s, fa_smtp_rcpt_t *r)
{
    fa_smtp_conf_t  *d = fa_smtp_domain_conf(&r->addr.domain);

    if (d == NULL || d->relay_to.len == 0 || s->role == FA_SMTP_ROLE_LMTP
        || fa_smtp_routing_chars(&r->addr.local))
    {
        return FA_DECLINED;
    }
    if (fa_smtp_relay_reason(s->txn->pool, &d->relay_to, &r->reason) != FA_OK) {
        return FA_ERROR;
    }
    r->route = FA_SMTP_ROUTE_QUEUE;
    return FA_OK;
}

/*
 * "relay_outbound off;" in the domain of the authenticated user: its users
 * send to local domains only (a relay_from network still relays).
 */
static int
fa_smtp_user_may_relay(fa_smtp_session_t *s)
{
    u_char          *at;
    fa_str_t         domain;
    fa_smtp_conf_t  *d;

    if (s->relay_client || s->user.len == 0
        || (at = memrchr(s->user.data, '@', s->user.len)) == NULL)
    {
        return 1;
    }
    domain.data = at + 1;
    domain.len = s->user.data + s->user.len - domain.data;
    d = fa_smtp_domain_conf(&domain);
    return d == NULL || d->relay_outbound != 0;
}

/*
 * Decide a new recipient's route, or refuse it: FA_OK, or FA_DECLINED with
 * the reply in *a (code and text), or FA_ERROR.
 */
fa_int_t
fa_smtp_rcpt_resolve(fa_smtp_session_t *s, fa_smtp_rcpt_t *r, fa_smtp_answer_t *a)
{
    int       may_relay = s->role != FA_SMTP_ROLE_LMTP && (s->user.len || s->relay_client);
    fa_int_t  local, rc;

    fa_smtp_rcpt_postmaster(s, r);
    local = fa_smtp_is_local_domain(&r->addr.domain);
    if (local == FA_ERROR) {
        return fa_smtp_refuse(s, a, 451, "lookup_failure",
                              "4.3.0 <%.*s>: Temporary lookup failure", &r->addr);
    }
    if (local != FA_OK && (rc = fa_smtp_rcpt_relay_domain(s, r)) != FA_DECLINED) {
        return rc;
    }
    if (local != FA_OK && may_relay && !fa_smtp_user_may_relay(s)) {
        fa_log_error(FA_LOG_INFO, s->c->log, 0, "relay denied by relay_outbound: <%.*s>",
                     (int) fa_min(r->addr.address.len, 300), r->addr.address.data);
        return fa_smtp_refuse(s, a, 550, "relay",
                              "5.7.1 <%.*s>: Relay access denied: this domain's users "
                              "send to local domains only", &r->addr);
    }
    if (local != FA_OK || fa_smtp_routing_chars(&r->addr.local)) {
        if (!may_relay) {
            fa_log_error(FA_LOG_INFO, s->c->log, 0, "relay denied: <%.*s>",
                         (int) fa_min(r->addr.address.len, 300), r->addr.address.data);
            return s->role == FA_SMTP_ROLE_LMTP
                   ? fa_smtp_refuse(s, a, 550, "relay",
                                    "5.7.1 <%.*s>: Relay access denied (LMTP delivers "
                                    "to local domains only)", &r->addr)
                   : fa_smtp_refuse(s, a, 554, "relay",
                                    "5.7.1 <%.*s>: Relay access denied", &r->addr);
        }
        if (local != FA_OK) {
            r->route = FA_SMTP_ROUTE_QUEUE;
            return FA_OK;
        }
    }
    return fa_smtp_rcpt_local(s, r, a);
}


/* ---- for hooks (fa_smtp.h) ---- */

/* parse and route ADDRESS into r: as RCPT does, but without the relay rule */
static fa_int_t
fa_smtp_rcpt_route(fa_smtp_session_t *s, fa_smtp_rcpt_t *r, const fa_str_t *address,
    const char **err)
{
    fa_smtp_answer_t  a;
    fa_str_t          path, rest;
    const char       *why = NULL;
    fa_int_t          local, rc;

    *err = "not an address";
    if (address->len == 0 || address->len > 512) {
        return FA_DECLINED;
    }
    path.len = address->len + 2;
    if ((path.data = fa_pnalloc(s->txn->pool, path.len)) == NULL) {
        return FA_ERROR;
    }
    path.data[0] = '<';
    memcpy(path.data + 1, address->data, address->len);
    path.data[path.len - 1] = '>';
    memset(r, 0, sizeof(*r));
    if (fa_smtp_parse_path(s->txn->pool, &path, 0, 1, &r->addr, &rest, &why) != FA_OK
        || rest.len != 0)
    {
        return FA_DECLINED;
    }
    fa_smtp_rcpt_postmaster(s, r);
    local = fa_smtp_is_local_domain(&r->addr.domain);
    if (local == FA_ERROR) {
        *err = "the directory cannot be read";
        return FA_ERROR;
    }
    if (local != FA_OK) {
        r->route = FA_SMTP_ROUTE_QUEUE;           /* the operator's script forwards */
        fa_str_set(&r->reason, "forwarded by a hook");
        return FA_OK;
    }
    memset(&a, 0, sizeof(a));
    rc = fa_smtp_rcpt_local(s, r, &a);
    if (rc == FA_DECLINED) {
        *err = (const char *) a.text.data;        /* the 5.1.1 or 4.3.0 text */
    }
    return rc;
}

fa_smtp_rcpt_t *
fa_smtp_rcpt_add(fa_smtp_session_t *s, const fa_str_t *address, const char **err)
{
    fa_smtp_rcpt_t  r, *slot;

    if (s->txn == NULL) {
        *err = "no transaction";
        return NULL;
    }
    if (fa_smtp_rcpt_route(s, &r, address, err) != FA_OK) {
        return NULL;
    }
    if ((slot = fa_array_push(&s->txn->rcpts)) == NULL) {
        *err = "out of memory";
        return NULL;
    }
    *slot = r;
    slot->added = 1;
    return slot;
}

fa_int_t
fa_smtp_rcpt_rewrite(fa_smtp_session_t *s, fa_smtp_rcpt_t *r, const fa_str_t *address,
    const char **err)
{
    fa_smtp_rcpt_t  n;
    fa_int_t        rc;

    if (s->txn == NULL) {
        *err = "no transaction";
        return FA_ERROR;
    }
    rc = fa_smtp_rcpt_route(s, &n, address, err);
    if (rc == FA_OK) {
        n.notify = r->notify;                      /* DSN stays the client's */
        n.orcpt = r->orcpt;
        n.added = r->added;                        /* LMTP still owes it its reply */
        *r = n;
    }
    return rc;
}

void
fa_smtp_rcpt_remove(fa_smtp_txn_t *t, fa_uint_t i)
{
    fa_smtp_rcpt_t  *r = t->rcpts.elts;

    if (i >= t->rcpts.nelts) {
        return;
    }
    if (!r[i].added) {
        r[i].removed = 1;                  /* the client's: its LMTP reply stays owed */
        r[i].route = FA_SMTP_ROUTE_DISCARD;
        return;
    }
    memmove(&r[i], &r[i + 1], (t->rcpts.nelts - i - 1) * sizeof(*r));
    t->rcpts.nelts--;
}
