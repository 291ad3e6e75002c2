/*
 * Logins from Lua: the auth module's login source (fa_auth_login.h).
 *
 *   lua_auth FILE;     custom authentication for SMTP AUTH, IMAP and POP3,
 *                      asked before the directory:
 *
 *       return function(login, password, client)   -- client.protocol, client.ip
 *           if login == "robot" and password == "s3cret" then
 *               return facteur.accept("robot@example.org")   -- the mailbox user
 *           end
 *           return nil          -- nothing to say: the directory decides
 *       end
 *
 *     login and password are what the client sent (the login not
 *     normalised); client.protocol is "smtp", "imap" or "pop3", client.ip
 *     the client's address.  accept([user]) logs in as user, else as the
 *     login, which must then be an enabled user of the directory: a name
 *     that is not an address or no user's is refused as a temporary failure
 *     and logged (a disabled user: like a wrong password).  reject() and
 *     disconnect() refuse like a wrong password (delayed, counted); defer(),
 *     an error, the budget exceeded or any other result are a temporary
 *     failure.  Codes and texts are not used: each protocol has its answers.
 *
 *   lua_hook login FILE;   (imap, pop3, domain) after a login succeeded,
 *                          before the session is in
 *   lua_hook logout FILE;  (imap, pop3, domain) when a logged-in session
 *                          ends: LOGOUT/QUIT, a dropped client, a timeout
 *
 *       return function(client)      -- client.protocol, client.ip, client.user
 *
 *     client.user is the account, "local@domain" (after lua_auth's
 *     mapping).  A login hook's reject() or disconnect() refuses like a
 *     wrong password, defer() or an error is a temporary failure; nil or
 *     accept() goes on to the next hook.  What a logout hook returns is not
 *     used.  Neither runs for SMTP AUTH: that is the smtp auth phase.
 *
 * A domain's login and logout hooks run for its users, over IMAP and POP3.
 */

#include "fa_lua_int.h"
#include "fa_auth_login.h"

/* one login on its way through lua_auth, or the login or logout hooks */
typedef struct {
    fa_auth_login_t   *h;               /* NULL for logout: nobody waits */
    fa_lua_call_t     *call;
    fa_uint_t          phase;           /* FA_LUA_LOGIN, FA_LUA_LOGOUT, or auth */
    fa_uint_t          next;            /* the next hook to look at */
    char               protocol[8];
    char               ip[64];
    char               user[FA_AUTH_ADDRESS_MAX + 1];
    char               login[128];      /* lua_auth's, for messages (escaped) */
} fa_lua_login_t;

#define FA_LUA_AUTH  2                  /* lua_auth, beside FA_LUA_LOGIN/LOGOUT */

static u_char  fa_lua_auth_user[FA_AUTH_ADDRESS_MAX + 1];

static fa_lua_login_t *
fa_lua_login_new(fa_auth_login_t *h, fa_uint_t phase, const fa_auth_client_t *client,
    const fa_str_t *user, fa_log_t *log)
{
    fa_lua_login_t  *l = fa_calloc(sizeof(*l), log);

    if (l == NULL) {
        return NULL;
    }
    l->h = h;
    l->phase = phase;
    fa_snprintf(l->protocol, sizeof(l->protocol), "%s", client->protocol);
    fa_snprintf(l->ip, sizeof(l->ip), "%s", client->ip ? client->ip : "");
    if (user) {
        fa_snprintf(l->user, sizeof(l->user), "%.*s", (int) user->len, user->data);
    }
    return l;
}

static void
fa_lua_push_client(lua_State *co, fa_lua_login_t *l)
{
    lua_createtable(co, 0, 3);
    lua_pushstring(co, l->protocol);
    lua_setfield(co, -2, "protocol");
    lua_pushstring(co, l->ip);
    lua_setfield(co, -2, "ip");
    if (l->user[0]) {
        lua_pushstring(co, l->user);
        lua_setfield(co, -2, "user");
    }
}


/* ---- lua_auth ---- */

/*
 * The verdict of lua_auth as the auth module wants it; the call is freed.
 * The user accept() names is checked by the auth module (an enabled user
 * of the directory); here only that it fits, rather than cut to a name
 * that might be someone else's.
 */
static fa_int_t
fa_lua_auth_verdict(fa_lua_call_t *call, const char *login, fa_str_t *user)
{
    size_t    len = strlen(call->text);
    fa_int_t  rc;

    user->len = 0;
    if (call->rc != FA_OK) {
        rc = FA_ERROR;
    } else if (call->verdict == FA_SMTP_CONTINUE) {
        rc = FA_DONE;
    } else if (call->verdict == FA_SMTP_ACCEPT && len > FA_AUTH_ADDRESS_MAX) {
        fa_log_error(FA_LOG_ERR, call->log, 0, "lua_auth %s: accept() of \"%s\" names a "
                     "user of %s%lu bytes, longer than any address: refused",
                     (char *) call->hook->file.data, login,
                     len + 1 >= sizeof(call->text) ? "at least " : "",
                     (unsigned long) len);
        rc = FA_ERROR;
    } else if (call->verdict == FA_SMTP_ACCEPT) {
        memcpy(fa_lua_auth_user, call->text, len);
        user->len = len;
        user->data = fa_lua_auth_user;
        rc = FA_OK;
    } else if (call->verdict == FA_SMTP_REJECT || call->verdict == FA_SMTP_DISCONNECT) {
        rc = FA_DECLINED;
    } else if (call->verdict == FA_SMTP_DEFER) {
        rc = FA_ERROR;
    } else {
        fa_log_error(FA_LOG_ERR, call->log, 0, "lua_auth %s: a login is answered with "
                     "accept, reject, defer, disconnect or nothing", (char *) call->hook->file.data);
        rc = FA_ERROR;
    }
    fa_lua_call_free(call);
    return rc;
}

static void
fa_lua_auth_done(fa_lua_call_t *call)
{
    fa_lua_login_t   *l = call->data;
    fa_auth_login_t  *h = l->h;
    fa_str_t          user;
    fa_int_t          rc = fa_lua_auth_verdict(call, l->login, &user);

    free(l);
    fa_auth_source_done(h, rc, &user);
}

static fa_int_t
fa_lua_auth_check(fa_auth_login_t *h, const fa_auth_client_t *client, const fa_str_t *login,
    const fa_str_t *password, fa_log_t *log, fa_str_t *user, void **state)
{
    fa_lua_conf_t   *conf = fa_lua_main_conf();
    fa_lua_login_t  *l;
    fa_lua_call_t   *call;
    fa_int_t         rc;

    if (!conf->has_auth) {
        return FA_DONE;
    }
    if (conf->auth.ref == LUA_NOREF || (l = fa_lua_login_new(h, FA_LUA_AUTH, client, NULL, log))
                                       == NULL)
    {
        return FA_ERROR;
    }
    call = fa_lua_call_new(&conf->auth, conf->auth.ref, log, fa_lua_auth_done, l);
    if (call == NULL) {
        free(l);
        return FA_ERROR;
    }
    l->call = call;
    /* for log lines: the client's bytes, control characters escaped */
    fa_log_printable((char *) login->data, fa_min(login->len, 64), l->login, sizeof(l->login));
    lua_pushlstring(call->co, (char *) login->data, login->len);
    lua_pushlstring(call->co, (char *) password->data, password->len);
    fa_lua_push_client(call->co, l);
    if (fa_lua_call_start(call, 3) == FA_AGAIN) {
        *state = l;
        return FA_AGAIN;
    }
    rc = fa_lua_auth_verdict(call, l->login, user);
    free(l);
    return rc;
}


/* ---- login and logout hooks ---- */

static int
fa_lua_login_applies(const fa_lua_hook_t *hk, const fa_lua_login_t *l)
{
    const char  *at;

    if (hk->phase != l->phase) {
        return 0;
    }
    switch (hk->proto) {
    case FA_LUA_IMAP:    return strcmp(l->protocol, "imap") == 0;
    case FA_LUA_POP3:    return strcmp(l->protocol, "pop3") == 0;
    case FA_LUA_MAILBOX:
        at = strrchr(l->user, '@');
        return (strcmp(l->protocol, "imap") == 0 || strcmp(l->protocol, "pop3") == 0)
               && at && strlen(at + 1) == hk->domain.len
               && strncasecmp(at + 1, (char *) hk->domain.data, hk->domain.len) == 0;
    default:             return 0;
    }
}

static void fa_lua_login_done(fa_lua_call_t *call);

/*
 * A login or logout hook's verdict for the auth module.  disconnect()
 * refuses like reject() (it never lets anyone in); discard() and
 * quarantine() mean nothing here: a mistake of the script, so a temporary
 * failure, as for an error.  A logout hook's verdict is not used.
 */
static fa_int_t
fa_lua_login_rc(fa_lua_call_t *call, fa_uint_t phase)
{
    if (call->rc != FA_OK) {
        return FA_ERROR;
    }
    switch (call->verdict) {
    case FA_SMTP_CONTINUE:
    case FA_SMTP_ACCEPT:
        return FA_OK;
    case FA_SMTP_REJECT:
    case FA_SMTP_DISCONNECT:
        return FA_DECLINED;
    case FA_SMTP_DEFER:
        return FA_ERROR;
    default:
        if (phase == FA_LUA_LOGIN) {
            fa_log_error(FA_LOG_ERR, call->log, 0, "lua hook %s: a login is answered with "
                         "accept, reject, defer, disconnect or nothing",
                         (char *) call->hook->file.data);
        }
        return FA_ERROR;
    }
}

/* the hooks from l->next on: FA_OK all passed, FA_AGAIN one waits, else refused */
static fa_int_t
fa_lua_login_run(fa_lua_login_t *l, fa_log_t *log)
{
    fa_lua_conf_t  *conf = fa_lua_main_conf();
    fa_lua_hook_t  *hk = conf && conf->hooks ? conf->hooks->elts : NULL;
    fa_lua_call_t  *call;
    fa_int_t        rc;

    while (hk && l->next < conf->hooks->nelts) {
        fa_lua_hook_t *h = &hk[l->next++];
        if (!fa_lua_login_applies(h, l)) {
            continue;
        }
        call = h->ref == LUA_NOREF ? NULL
               : fa_lua_call_new(h, h->ref, log, fa_lua_login_done, l);
        if (call == NULL) {
            return FA_ERROR;
        }
        l->call = call;
        fa_lua_push_client(call->co, l);
        if (fa_lua_call_start(call, 1) == FA_AGAIN) {
            return FA_AGAIN;
        }
        l->call = NULL;
        rc = fa_lua_login_rc(call, l->phase);
        fa_lua_call_free(call);
        if (rc != FA_OK && l->phase == FA_LUA_LOGIN) {
            return rc;
        }
    }
    return FA_OK;
}

static void
fa_lua_login_done(fa_lua_call_t *call)
{
    fa_lua_login_t  *l = call->data;
    fa_log_t        *log = call->log;
    fa_int_t         rc;

    l->call = NULL;
    rc = fa_lua_login_rc(call, l->phase);
    fa_lua_call_free(call);
    if (rc == FA_OK || l->phase == FA_LUA_LOGOUT) {
        rc = fa_lua_login_run(l, log);
        if (rc == FA_AGAIN) {
            return;
        }
    }
    if (l->h) {
        fa_auth_source_done(l->h, rc, NULL);
    }
    free(l);
}

static fa_int_t
fa_lua_login_admit(fa_auth_login_t *h, const fa_auth_client_t *client, const fa_str_t *user,
    fa_log_t *log, void **state)
{
    fa_lua_login_t  *l = fa_lua_login_new(h, FA_LUA_LOGIN, client, user, log);
    fa_int_t         rc;

    if (l == NULL) {
        return FA_ERROR;
    }
    rc = fa_lua_login_run(l, log);
    if (rc == FA_AGAIN) {
        *state = l;
        return FA_AGAIN;
    }
    free(l);
    return rc;
}

/* the session went: no answer will be wanted */
static void
fa_lua_login_cancel(void *state)
{
    fa_lua_login_t  *l = state;

    if (l) {
        fa_lua_call_cancel(l->call);
        free(l);
    }
}

/* logout hooks outlive the session: they own their copies and log to the cycle */
static void
fa_lua_logout(const fa_auth_client_t *client, const fa_str_t *user)
{
    fa_lua_login_t  *l = fa_lua_login_new(NULL, FA_LUA_LOGOUT, client, user, fa_cycle->log);

    if (l && fa_lua_login_run(l, fa_cycle->log) != FA_AGAIN) {
        free(l);
    }
}

static const fa_auth_source_t  fa_lua_auth_source = {
    fa_lua_auth_check, fa_lua_login_admit, fa_lua_login_cancel, fa_lua_logout
};

/* in each worker whose configuration has lua_auth or login/logout hooks */
void
fa_lua_auth_start(fa_lua_conf_t *conf)
{
    fa_lua_hook_t  *h = conf->hooks ? conf->hooks->elts : NULL;
    int             used = conf->has_auth;

    for (fa_uint_t i = 0; h && i < conf->hooks->nelts; i++) {
        used |= h[i].proto == FA_LUA_IMAP || h[i].proto == FA_LUA_POP3
                || h[i].proto == FA_LUA_MAILBOX;
    }
    fa_auth_source_set(used ? &fa_lua_auth_source : NULL);
}
