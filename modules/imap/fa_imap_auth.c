/*
 * LOGIN and AUTHENTICATE PLAIN (with SASL-IR).  Before TLS both are
 * refused (LOGINDISABLED, [PRIVACYREQUIRED]) unless auth_plaintext is on.
 * The password is checked off the loop (fa_auth_login); a failure is
 * answered after auth_failure_delay times the number of failures, and
 * after max_auth_failures the session ends.  The first login of a user
 * with nothing but INBOX makes the default special-use folders.
 */

#include "fa_imap_int.h"
#include "fa_auth_login.h"
#include "fa_auth_sasl.h"
#include "fa_auth_quota.h"

static const struct {
    const char  *name;
    uint32_t     use;
} fa_imap_default_folders[] = {
    { "Drafts", FA_USE_DRAFTS }, { "Sent", FA_USE_SENT }, { "Trash", FA_USE_TRASH },
    { "Junk", FA_USE_JUNK }, { "Archive", FA_USE_ARCHIVE },
};

typedef struct {
    fa_uint_t   pending;                /* folder creations in flight */
} fa_imap_login_state_t;

int
fa_imap_login_allowed(fa_imap_session_t *s)
{
    return s->c->ssl != NULL || s->conf->auth_plaintext == 1 || s->c->unix_socket;
}

void
fa_imap_auth_cancel(fa_imap_session_t *s)
{
    if (s->login) {
        fa_auth_login_cancel(s->login);
        s->login = NULL;
    }
}

static void
fa_imap_auth_fail_answer(fa_event_t *ev)
{
    fa_imap_session_t  *s = ev->data;

    ev->timedout = 0;
    if ((fa_int_t) s->auth_failures >= s->conf->max_auth_failures) {
        fa_imap_send(s, "* BYE Too many authentication failures");
        s->closing = 1;
    }
    fa_imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
    fa_imap_done(s);
}

/* the answer waits, longer with each failure: guessing gets slow */
static void
fa_imap_auth_failed(fa_imap_session_t *s)
{
    s->auth_failures++;
    fa_stat_inc(fa_imap_stat_login_failures);
    fa_log_error(FA_LOG_INFO, s->c->log, 0, "imap login failed (%lu)",
                 (unsigned long) s->auth_failures);
    s->delay.handler = fa_imap_auth_fail_answer;
    fa_event_add_timer(&s->delay,
                       fa_max(s->conf->auth_failure_delay * (fa_msec_t) s->auth_failures, 1));
}

static void
fa_imap_logged_in(fa_imap_session_t *s)
{
    s->state = FA_IMAP_AUTHENTICATED;
    s->login_msec = fa_current_msec;
    fa_stat_inc(fa_imap_stat_logins);
    fa_log_error(FA_LOG_INFO, s->c->log, 0, "imap login: user=<%.*s>, method=%s, tls=%s",
                 (int) s->user.len, s->user.data, s->cmd->def->name,
                 s->c->ssl ? fa_ssl_protocol(s->c) : "none");
    fa_imap_capability_line(s, 0);
    fa_imap_done(s);
}

static void
fa_imap_folder_made(void *data, fa_int_t rc)
{
    fa_imap_session_t      *s = data;
    fa_imap_login_state_t  *ls = s->cmd->data;

    if (rc != FA_OK && rc != FA_STORAGE_EXISTS) {
        fa_log_error(FA_LOG_WARN, s->c->log, 0, "imap: a default folder for %.*s could not "
                     "be made: %s", (int) s->user.len, s->user.data, fa_storage_strerror(rc));
    }
    if (--ls->pending == 0) {
        fa_imap_logged_in(s);
    }
}

static void
fa_imap_folder_made_cb(void *data, fa_int_t rc)
{
    if (!fa_imap_answered(data)) {
        fa_imap_folder_made(data, rc);
    }
}

/* a user with nothing but INBOX gets Drafts, Sent, Trash, Junk and Archive */
static void
fa_imap_folders_listed(void *data, fa_int_t rc, fa_mailbox_info_t *boxes, fa_uint_t n)
{
    fa_imap_session_t      *s = data;
    fa_imap_login_state_t  *ls;
    fa_storage_t           *st = s->store;

    if (fa_imap_answered(s)) {
        return;
    }
    ls = s->cmd->data;

    if (rc != FA_OK || n > 1 || (n == 1 && !fa_str_eqi(&boxes[0].name, "INBOX"))) {
        fa_imap_logged_in(s);
        return;
    }
    ls->pending = 1;
    for (size_t i = 0; i < fa_nelems(fa_imap_default_folders); i++) {
        fa_str_t name = { strlen(fa_imap_default_folders[i].name),
                          (u_char *) fa_imap_default_folders[i].name };
        fa_int_t r = fa_imap_call(s, st->backend->mailbox_create(st, &s->user, &name,
                                                                 fa_imap_default_folders[i].use,
                                                                 fa_imap_folder_made_cb, s));
        ls->pending += r == FA_AGAIN;
    }
    fa_imap_folder_made(s, FA_OK);      /* the one held while starting them */
}

/* then the default folders, for a new user */
static void
fa_imap_quota_synced(void *data, fa_int_t rc)
{
    fa_imap_session_t  *s = data;
    fa_storage_t       *st = s->store;

    if (rc != FA_OK && rc != FA_AGAIN) {
        fa_log_error(FA_LOG_WARN, s->c->log, 0, "imap: the quota of %.*s could not be "
                     "applied: %s", (int) s->user.len, s->user.data, fa_storage_strerror(rc));
    }
    if (rc == FA_AGAIN) {
        return;                          /* called again when the store answers */
    }
    if (!s->conf->default_folders || (s->cmd->data = fa_pcalloc(s->cmd->pool,
                                       sizeof(fa_imap_login_state_t))) == NULL
        || fa_imap_call(s, st->backend->mailbox_list(st, &s->user, s->cmd->pool,
                                                     fa_imap_folders_listed, s)) != FA_AGAIN)
    {
        fa_imap_logged_in(s);
    }
}

static void
fa_imap_quota_synced_cb(void *data, fa_int_t rc)
{
    if (!fa_imap_answered(data)) {
        fa_imap_quota_synced(data, rc);
    }
}

/* the store's quota limits made the user's (fa_auth_quota.h): FA_AGAIN or done */
static fa_int_t
fa_imap_quota_start(fa_imap_session_t *s)
{
    fa_auth_dir_t   *d = fa_auth_worker_dir();
    fa_auth_user_t   u;

    if (d == NULL || fa_auth_user_get(d, &s->user, s->cmd->pool, &u) != FA_OK) {
        return FA_OK;
    }
    return fa_imap_call(s, fa_auth_quota_sync(fa_cycle, s->store, &u, fa_imap_quota_synced_cb,
                                              s));
}

static void
fa_imap_login_checked(void *data, fa_int_t rc, const fa_str_t *user)
{
    fa_imap_session_t  *s = data;
    fa_storage_t       *st;

    s->login = NULL;
    if (rc == FA_DECLINED) {
        fa_imap_auth_failed(s);
        return;
    }
    if (rc != FA_OK || (st = fa_storage_for_user(fa_cycle, user)) == NULL) {
        fa_imap_tagged(s, "NO", "[UNAVAILABLE] Temporary authentication failure");
        fa_imap_done(s);
        return;
    }
    s->user.data = fa_pnalloc(s->c->pool, user->len + 1);
    if (s->user.data == NULL) {
        fa_conn_close(s->c);
        return;
    }
    memcpy(s->user.data, user->data, user->len);
    s->user.data[user->len] = '\0';
    s->user.len = user->len;
    s->store = st;
    fa_imap_quota_synced(s, fa_imap_quota_start(s));
}

static fa_int_t
fa_imap_auth_check(fa_imap_session_t *s, fa_str_t *login, fa_str_t *password)
{
    fa_auth_client_t  client = { "imap", s->c->addr_text };
    fa_auth_login_t  *h = NULL;
    fa_int_t          rc;

    if ((fa_int_t) s->auth_failures >= s->conf->max_auth_failures) {
        fa_imap_send(s, "* BYE Too many authentication failures");
        s->closing = 1;
        return fa_imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
    }
    rc = fa_auth_login(&client, login, password, s->c->log, fa_imap_login_checked, s, &h);
    explicit_bzero(password->data, password->len);
    if (rc == FA_AGAIN) {
        s->login = h;
        s->input = FA_IMAP_IN_BUSY;
        return FA_AGAIN;
    }
    return fa_imap_tagged(s, "NO", "[UNAVAILABLE] Temporary authentication failure");
}

fa_int_t
fa_imap_login(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    const fa_str_t  *user, *pass;
    fa_str_t         u, p;

    if (cmd->parsed.nargs != 2 || (user = fa_imap_arg_string(&cmd->parsed.args[0])) == NULL
        || (pass = fa_imap_arg_string(&cmd->parsed.args[1])) == NULL)
    {
        return fa_imap_bad(s, "Syntax: LOGIN user password");
    }
    if (!fa_imap_login_allowed(s)) {
        return fa_imap_tagged(s, "NO", "[PRIVACYREQUIRED] Plaintext authentication is "
                              "disabled without TLS");
    }
    u = *user;
    p = *pass;
    return fa_imap_auth_check(s, &u, &p);
}

static fa_int_t
fa_imap_auth_response(fa_imap_session_t *s, const fa_str_t *b64)
{
    fa_str_t  authzid, authcid, password;

    if (b64->len == 1 && b64->data[0] == '*') {
        return fa_imap_bad(s, "Authentication aborted");
    }
    if (fa_sasl_plain_decode(s->cmd->pool, b64, &authzid, &authcid, &password) != FA_OK) {
        return fa_imap_bad(s, "Invalid SASL response");
    }
    if (authzid.len && !(authzid.len == authcid.len
                         && strncasecmp((char *) authzid.data, (char *) authcid.data,
                                        authzid.len) == 0))
    {
        explicit_bzero(password.data, password.len);
        s->input = FA_IMAP_IN_BUSY;
        fa_imap_auth_failed(s);          /* no acting as someone else */
        return FA_AGAIN;
    }
    return fa_imap_auth_check(s, &authcid, &password);
}

static fa_int_t
fa_imap_auth_line(fa_imap_session_t *s, fa_line_t *line)
{
    fa_int_t  rc;

    if (line->too_long) {
        rc = fa_imap_bad(s, "Response too long");
    } else {
        rc = fa_imap_auth_response(s, &line->text);
    }
    if (rc != FA_AGAIN) {
        fa_imap_done(s);
    }
    return rc == FA_ERROR ? FA_ERROR : FA_OK;
}

fa_int_t
fa_imap_authenticate(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    const fa_str_t  *ir = cmd->parsed.nargs == 2 ? fa_imap_arg_string(&cmd->parsed.args[1])
                                                 : NULL;
    fa_str_t         empty = fa_string("");

    if (cmd->parsed.nargs < 1 || cmd->parsed.nargs > 2
        || cmd->parsed.args[0].type != FA_IMAP_ARG_ATOM || (cmd->parsed.nargs == 2 && !ir))
    {
        return fa_imap_bad(s, "Syntax: AUTHENTICATE mechanism [initial-response]");
    }
    if (!fa_imap_arg_is(&cmd->parsed.args[0], "PLAIN")) {
        return fa_imap_tagged(s, "NO", "Unsupported authentication mechanism");
    }
    if (!fa_imap_login_allowed(s)) {
        return fa_imap_tagged(s, "NO", "[PRIVACYREQUIRED] Plaintext authentication is "
                              "disabled without TLS");
    }
    if (ir) {
        return fa_imap_auth_response(s, ir->len == 1 && ir->data[0] == '=' ? &empty : ir);
    }
    fa_imap_send(s, "+ ");
    fa_imap_read_line(s, fa_imap_auth_line);
    return FA_AGAIN;
}
