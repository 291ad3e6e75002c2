/*
 * The SMTP bridge: one handler on each phase chain that has Lua hooks
 * runs them in configuration order, each in its own coroutine, until one
 * returns a verdict.  A hook applies to a session by where it was
 * declared (smtp: MX and submission, lmtp: LMTP, domain: every role) and,
 * for a domain's hooks, when the phase is about that domain: the login's
 * domain at auth, the sender's at mail, the recipient's at rcpt, and any
 * recipient's in the data phases and at route.  Connect and helo know no
 * domain: only global hooks run there.
 *
 * A hook that waits (DNS, sleep) makes the handler answer WAIT; the
 * coroutine's last resume finishes the hook and the chain goes on from
 * there, then fa_smtp_resume() gives the session its answer.
 *
 * Verdicts: accept, reject, defer and disconnect are the chain's.
 * discard before data_end, and quarantine at any phase, are remembered and
 * applied at route: discard drops every copy, quarantine files every local
 * copy in the folder.  A hook that failed (an error, its budget, a bad
 * verdict) is a 451 4.3.0 for what the phase was doing, never an accept.
 */

#include "fa_lua_int.h"
#include "fa_smtp.h"
#include "fa_storage.h"

static fa_smtp_verdict_t fa_lua_smtp_handler(fa_smtp_session_t *s, fa_smtp_phase_t phase,
    void *data, fa_smtp_answer_t *answer);
static void fa_lua_smtp_done(fa_lua_call_t *call);

static fa_str_t  fa_lua_smtp_failed = fa_string("4.3.0 Temporary policy failure, try again later");

fa_int_t
fa_lua_smtp_register(fa_conf_t *cf, fa_lua_conf_t *conf)
{
    fa_lua_hook_t  *h = conf->hooks ? conf->hooks->elts : NULL;
    unsigned        phases = 0;

    for (fa_uint_t i = 0; h && i < conf->hooks->nelts; i++) {
        if (h[i].proto == FA_LUA_SMTP || h[i].proto == FA_LUA_LMTP
            || h[i].proto == FA_LUA_ANY_SMTP)
        {
            phases |= 1u << h[i].phase;
        }
    }
    if (phases == 0) {
        return FA_OK;
    }
    phases |= 1u << FA_SMTP_PHASE_ROUTE;         /* where quarantine and discard land */
    for (fa_uint_t p = 0; p < FA_SMTP_NPHASES; p++) {
        if ((phases & (1u << p))
            && fa_smtp_handler_add(cf, (fa_smtp_phase_t) p, fa_lua_smtp_handler, conf) != FA_OK)
        {
            return FA_ERROR;
        }
    }
    return FA_OK;
}


/* ---- which hooks apply ---- */

static int
fa_lua_smtp_role_ok(const fa_lua_hook_t *h, fa_smtp_session_t *s)
{
    switch (h->proto) {
    case FA_LUA_SMTP:     return s->role != FA_SMTP_ROLE_LMTP;
    case FA_LUA_LMTP:     return s->role == FA_SMTP_ROLE_LMTP;
    case FA_LUA_ANY_SMTP: return 1;
    default:              return 0;
    }
}

static int
fa_lua_same_domain(const fa_str_t *a, const fa_str_t *b)
{
    return a->len == b->len && strncasecmp((char *) a->data, (char *) b->data, a->len) == 0;
}

static int
fa_lua_domain_of(const fa_str_t *address, const fa_str_t *domain)
{
    u_char  *at = address->len ? memrchr(address->data, '@', address->len) : NULL;
    size_t   len = at ? (size_t) (address->data + address->len - at - 1) : 0;

    return at && len == domain->len && strncasecmp((char *) at + 1, (char *) domain->data,
                                                   len) == 0;
}

static int
fa_lua_smtp_domain_ok(const fa_lua_hook_t *h, fa_smtp_session_t *s, fa_smtp_phase_t phase)
{
    fa_smtp_rcpt_t  *r;

    if (h->domain.len == 0) {
        return 1;
    }
    switch (phase) {
    case FA_SMTP_PHASE_AUTH:
        return fa_lua_domain_of(&s->user, &h->domain);
    case FA_SMTP_PHASE_MAIL:
        return s->txn && fa_lua_same_domain(&s->txn->from.domain, &h->domain);
    case FA_SMTP_PHASE_RCPT:
        return s->rcpt && fa_lua_same_domain(&s->rcpt->addr.domain, &h->domain);
    case FA_SMTP_PHASE_DATA_HEADERS:
    case FA_SMTP_PHASE_DATA_END:
    case FA_SMTP_PHASE_ROUTE:
        r = s->txn ? s->txn->rcpts.elts : NULL;
        for (fa_uint_t i = 0; r && i < s->txn->rcpts.nelts; i++) {
            if (!r[i].removed && fa_lua_same_domain(&r[i].addr.domain, &h->domain)) {
                return 1;
            }
        }
        return 0;
    default:
        return 0;
    }
}


/* ---- the session's state ---- */

static void
fa_lua_smtp_cleanup(void *data)
{
    fa_lua_smtp_t  *st = data;
    lua_State      *L = fa_lua_state();

    if (st->call) {
        fa_lua_call_cancel(st->call);
        st->call = NULL;
    }
    if (L && st->vars_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, st->vars_ref);
    }
}

static fa_lua_smtp_t *
fa_lua_smtp_state(fa_smtp_session_t *s)
{
    fa_lua_smtp_t  *st = fa_smtp_get_ctx(s, &fa_lua_module);

    if (st) {
        return st;
    }
    st = fa_pcalloc(s->c->pool, sizeof(*st));
    if (st == NULL || fa_pool_cleanup_add(s->c->pool, fa_lua_smtp_cleanup, st) == NULL
        || fa_smtp_set_ctx(s, &fa_lua_module, st) != FA_OK)
    {
        return NULL;
    }
    st->s = s;
    st->vars_ref = LUA_NOREF;
    return st;
}


/* ---- verdicts into answers ---- */

/* the script's text, made safe for a reply line: printable, with a status code */
static fa_str_t
fa_lua_smtp_text(fa_lua_smtp_t *st, const char *text, const char *status)
{
    fa_pool_t  *pool = st->s->txn ? st->s->txn->pool : st->s->c->pool;
    size_t      n = strlen(text), len;
    int         has_status = n >= 5 && text[0] >= '2' && text[0] <= '5' && text[1] == '.';
    fa_str_t    out = fa_null_string;

    if (n == 0) {
        return out;                               /* the phase's default */
    }
    out.data = fa_pnalloc(pool, n + 8);
    if (out.data == NULL) {
        return out;
    }
    len = has_status ? 0 : (size_t) fa_snprintf((char *) out.data, 8, "%s ", status);
    for (size_t i = 0; i < n; i++) {
        u_char  ch = (u_char) text[i];
        out.data[len++] = ch < ' ' || ch == 0x7f ? ' ' : ch;   /* no CR LF injection */
    }
    out.len = len;
    return out;
}

/* a greeting is 220, 421 or 554 (RFC 5321 4.3.2): 451 is for the commands */
static fa_uint_t
fa_lua_smtp_fail_code(fa_uint_t phase)
{
    return phase == FA_SMTP_PHASE_CONNECT ? 421 : 451;
}

static fa_smtp_verdict_t
fa_lua_smtp_fail(fa_lua_call_t *call, fa_smtp_answer_t *a, const char *why)
{
    fa_lua_smtp_t  *st = call->data;

    if (why) {
        fa_log_error(FA_LOG_ERR, call->log, 0, "lua hook %s failed: %s",
                     (char *) call->hook->file.data, why);
    }
    a->verdict = FA_SMTP_DEFER;
    a->code = fa_lua_smtp_fail_code(st->phase);
    a->text = fa_lua_smtp_failed;
    return FA_SMTP_DEFER;
}

/* remember a folder or a discard for route; NULL folder: discard */
static void
fa_lua_smtp_remember(fa_lua_smtp_t *st, const char *folder)
{
    fa_snprintf(st->later_id, sizeof(st->later_id), "%s", st->s->txn ? st->s->txn->id : "");
    fa_snprintf(st->quarantine, sizeof(st->quarantine), "%s", folder ? folder : "");
    st->discard = folder == NULL;
    st->later = 1;
}

/* the call's verdict into *a; the call is freed */
/*
 * A verdict without a code gets the phase's usual one (docs/smtp.md): 554
 * and 421 for a greeting, 535 and 454 for AUTH (RFC 4954), 550 and 451
 * elsewhere.
 */
static fa_uint_t
fa_lua_smtp_default_code(fa_smtp_verdict_t v, fa_smtp_phase_t phase, fa_uint_t def)
{
    if (v == FA_SMTP_REJECT) {
        return phase == FA_SMTP_PHASE_CONNECT ? 554 : phase == FA_SMTP_PHASE_AUTH ? 535 : 550;
    }
    if (v == FA_SMTP_DEFER) {
        return phase == FA_SMTP_PHASE_CONNECT ? 421 : phase == FA_SMTP_PHASE_AUTH ? 454 : 451;
    }
    return def;
}

static fa_smtp_verdict_t
fa_lua_smtp_answer(fa_lua_smtp_t *st, fa_lua_call_t *call, fa_smtp_answer_t *a)
{
    static const struct { fa_uint_t lo, hi, def; const char *status; }  codes[] = {
        [FA_SMTP_ACCEPT] = { 200, 299, 0, "2.0.0" },
        [FA_SMTP_REJECT] = { 500, 599, 550, "5.7.1" },
        [FA_SMTP_DEFER] = { 400, 499, 450, "4.7.1" },
        [FA_SMTP_DISCARD] = { 200, 299, 0, "2.0.0" },
        [FA_SMTP_DISCONNECT] = { 400, 599, 421, "4.7.0" },
    };
    fa_smtp_verdict_t  v = (fa_smtp_verdict_t) call->verdict;
    fa_smtp_phase_t    phase = st->phase;
    fa_str_t           folder;

    if (call->rc != FA_OK) {
        v = fa_lua_smtp_fail(call, a, NULL);          /* logged where it failed */
    } else if (call->verdict == FA_LUA_QUARANTINE) {
        folder.data = (u_char *) call->folder;
        folder.len = strlen(call->folder);
        if (fa_storage_mailbox_name_valid(&folder) != FA_OK) {
            v = fa_lua_smtp_fail(call, a, "facteur.quarantine: not a valid folder name");
        } else {
            fa_lua_smtp_remember(st, call->folder);
            v = FA_SMTP_CONTINUE;
        }
    } else if (v == FA_SMTP_DISCARD && phase != FA_SMTP_PHASE_DATA_END
               && phase != FA_SMTP_PHASE_ROUTE)
    {
        fa_lua_smtp_remember(st, NULL);
        v = FA_SMTP_CONTINUE;
    } else if (v != FA_SMTP_CONTINUE) {
        if (call->code && (call->code < codes[v].lo || call->code > codes[v].hi)) {
            char  why[128];
            fa_snprintf(why, sizeof(why), "code %u does not go with %s", (unsigned) call->code,
                        v == FA_SMTP_REJECT ? "reject (5xx)" : v == FA_SMTP_DEFER
                        ? "defer (4xx)" : v == FA_SMTP_DISCONNECT ? "disconnect (4xx or 5xx)"
                        : "accept (2xx)");
            v = fa_lua_smtp_fail(call, a, why);
        } else {
            char  status[8];
            a->verdict = v;
            a->code = call->code ? call->code : fa_lua_smtp_default_code(v, phase, codes[v].def);
            /* the status's class is the code's: disconnect(554, "...") is 5.7.0 */
            fa_snprintf(status, sizeof(status), "%s", codes[v].status);
            status[0] = (char) ('0' + a->code / 100);
            a->text = fa_lua_smtp_text(st, call->text, status);
        }
    }
    fa_lua_call_free(call);
    return v;
}

/* at route, what an earlier hook asked: every copy dropped, or filed in a folder */
static void
fa_lua_smtp_apply_later(fa_lua_smtp_t *st)
{
    fa_smtp_txn_t   *t = st->s->txn;
    fa_smtp_rcpt_t  *r;
    fa_str_t         folder;

    if (!st->later || t == NULL || (st->later_id[0] && strcmp(st->later_id, t->id) != 0)) {
        return;
    }
    /* in the transaction's pool: the delivery may outlive the session */
    folder.len = st->discard ? 0 : strlen(st->quarantine);
    if ((folder.data = fa_pnalloc(t->pool, folder.len + 1)) == NULL) {
        return;
    }
    memcpy(folder.data, st->quarantine, folder.len);
    r = t->rcpts.elts;
    for (fa_uint_t i = 0; i < t->rcpts.nelts; i++) {
        if (st->discard) {
            r[i].route = FA_SMTP_ROUTE_DISCARD;
        } else if (r[i].route == FA_SMTP_ROUTE_LOCAL) {
            r[i].mailbox = folder;
        }
    }
    if (st->later_id[0]) {
        st->later = 0;                     /* the transaction's own: done with it */
    }
}


/* ---- running the chain of hooks ---- */

static fa_smtp_verdict_t
fa_lua_smtp_run(fa_lua_smtp_t *st, fa_smtp_answer_t *a)
{
    fa_lua_conf_t   *conf = st->conf;
    fa_lua_hook_t   *h = conf->hooks->elts;
    fa_lua_call_t   *call;
    fa_smtp_verdict_t v;

    while (st->next < conf->hooks->nelts) {
        fa_lua_hook_t *hk = &h[st->next++];
        if (hk->phase != (fa_uint_t) st->phase || !fa_lua_smtp_role_ok(hk, st->s)
            || !fa_lua_smtp_domain_ok(hk, st->s, st->phase))
        {
            continue;
        }
        call = hk->ref == LUA_NOREF ? NULL
               : fa_lua_call_new(hk, hk->ref, st->s->c->log, fa_lua_smtp_done, st);
        if (call == NULL) {
            a->verdict = FA_SMTP_DEFER;
            a->code = fa_lua_smtp_fail_code(st->phase);
            a->text = fa_lua_smtp_failed;
            return FA_SMTP_DEFER;
        }
        fa_lua_push_session(call->co, st, call);
        fa_lua_push_txn(call->co, st, call);
        if (fa_lua_call_start(call, 2) == FA_AGAIN) {
            st->call = call;
            return FA_SMTP_WAIT;
        }
        v = fa_lua_smtp_answer(st, call, a);
        if (v != FA_SMTP_CONTINUE) {
            return v;
        }
    }
    return FA_SMTP_CONTINUE;
}

static fa_smtp_verdict_t
fa_lua_smtp_finish(fa_lua_smtp_t *st, fa_smtp_verdict_t v)
{
    if (st->phase == FA_SMTP_PHASE_ROUTE
        && (v == FA_SMTP_CONTINUE || v == FA_SMTP_ACCEPT))
    {
        fa_lua_smtp_apply_later(st);
    }
    return v;
}

static fa_smtp_verdict_t
fa_lua_smtp_handler(fa_smtp_session_t *s, fa_smtp_phase_t phase, void *data,
    fa_smtp_answer_t *answer)
{
    fa_lua_smtp_t      *st = fa_lua_smtp_state(s);
    fa_smtp_verdict_t   v;

    if (st == NULL || fa_lua_state() == NULL) {
        answer->code = fa_lua_smtp_fail_code(phase);
        answer->text = fa_lua_smtp_failed;
        return FA_SMTP_DEFER;
    }
    st->conf = data;
    st->phase = phase;
    st->next = 0;
    v = fa_lua_smtp_run(st, answer);
    return v == FA_SMTP_WAIT ? v : fa_lua_smtp_finish(st, v);
}

/* a hook that waited is done: the rest of the chain, then the session's answer */
static void
fa_lua_smtp_done(fa_lua_call_t *call)
{
    fa_lua_smtp_t     *st = call->data;
    fa_smtp_answer_t   a;
    fa_smtp_verdict_t  v;

    st->call = NULL;
    memset(&a, 0, sizeof(a));
    v = fa_lua_smtp_answer(st, call, &a);
    if (v == FA_SMTP_CONTINUE) {
        v = fa_lua_smtp_run(st, &a);
        if (v == FA_SMTP_WAIT) {
            return;
        }
    }
    a.verdict = fa_lua_smtp_finish(st, v);
    fa_smtp_resume(st->s, &a);
}
