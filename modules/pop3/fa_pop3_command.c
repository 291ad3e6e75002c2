/*
 * Reading a command, and the AUTHORIZATION state: CAPA, USER/PASS, AUTH
 * PLAIN (with an initial response), STLS, QUIT.  Passwords only over TLS
 * unless auth_plaintext is on; they are checked off the loop
 * (fa_auth_login), failures answered after auth_failure_delay times their
 * number, and after max_auth_failures the session ends.
 *
 * After a login, the IN-USE lock: an flock on a file per user in
 * pop3_lock_path, across every worker, let go by the kernel however the
 * session ends.  The same file's time says when the user last logged in,
 * for LOGIN-DELAY.
 */

#include "fa_pop3_int.h"
#include "fa_auth_login.h"
#include "fa_auth_sasl.h"
#include "fa_auth_quota.h"
#include <sys/file.h>

static fa_int_t
fa_pop3_login_allowed(fa_pop3_session_t *s)
{
    return s->c->ssl != NULL || s->conf->auth_plaintext == 1;
}

fa_int_t
fa_pop3_capa(fa_pop3_session_t *s)
{
    fa_connection_t  *c = s->c;

    fa_pop3_ok(s, "Capability list follows");
    fa_conn_printf(c, "TOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
    if (s->state == FA_POP3_AUTHORIZATION) {
        if (s->conf->ssl && c->ssl == NULL) {
            fa_conn_printf(c, "STLS\r\n");
        }
        if (fa_pop3_login_allowed(s)) {
            fa_conn_printf(c, "USER\r\nSASL PLAIN\r\n");
        }
    }
    if (s->conf->expire == -1) {
        fa_conn_printf(c, "EXPIRE NEVER\r\n");
    } else if (s->conf->expire >= 0) {
        fa_conn_printf(c, "EXPIRE %ld\r\n", (long) s->conf->expire);
    }
    if (s->conf->login_delay) {
        fa_conn_printf(c, "LOGIN-DELAY %ld\r\n", (long) (s->conf->login_delay / 1000));
    }
    return fa_conn_printf(c, "IMPLEMENTATION Facteur\r\n.\r\n");
}


/* ---- the IN-USE lock and LOGIN-DELAY ---- */

void
fa_pop3_unlock(fa_pop3_session_t *s)
{
    if (s->lock_fd != -1) {
        close(s->lock_fd);               /* the flock goes with it */
        s->lock_fd = -1;
    }
}

/* the user's lock file: pop3_lock_path/ADDRESS.lock, odd bytes as %XX */
static fa_int_t
fa_pop3_lock_file(fa_pop3_session_t *s, char *path, size_t size)
{
    size_t  n = fa_snprintf(path, size, "%.*s/", (int) s->conf->lock_path.len,
                            s->conf->lock_path.data);

    for (size_t i = 0; i < s->user_len && n + 8 < size; i++) {
        u_char ch = (u_char) s->user[i];
        n += strchr("abcdefghijklmnopqrstuvwxyz0123456789.@_+-", ch) && ch
             ? fa_snprintf(path + n, size - n, "%c", ch)
             : fa_snprintf(path + n, size - n, "%%%02X", ch);
    }
    fa_snprintf(path + n, size - n, ".lock");
    return FA_OK;
}

fa_int_t
fa_pop3_lock(fa_pop3_session_t *s)
{
    char             path[PATH_MAX];
    struct stat      sb;
    struct timespec  now;
    int              fd;

    fa_pop3_lock_file(s, path, sizeof(path));
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd == -1 && errno == ENOENT
        && (mkdir((char *) s->conf->lock_path.data, 0750) == 0 || errno == EEXIST))
    {                                    /* EEXIST: another worker made it first */
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    }
    if (fd == -1) {
        fa_log_error(FA_LOG_ERR, s->c->log, errno, "pop3: open(\"%s\") failed", path);
        return FA_ERROR;
    }
    if (s->conf->lock && flock(fd, LOCK_EX | LOCK_NB) == -1) {
        close(fd);
        return errno == EWOULDBLOCK ? FA_BUSY : FA_ERROR;
    }
    clock_gettime(CLOCK_REALTIME, &now);
    if (s->conf->login_delay && fstat(fd, &sb) == 0 && sb.st_size > 0
        && (now.tv_sec - sb.st_mtim.tv_sec) * 1000
           + (now.tv_nsec - sb.st_mtim.tv_nsec) / 1000000 < s->conf->login_delay)
    {
        close(fd);
        return FA_DECLINED;              /* too soon after the last login */
    }
    if (ftruncate(fd, 0) == 0 && write(fd, "x", 1) == 1) {
        /* its time is the last login's now; the byte says one happened */
    }
    s->lock_fd = fd;
    return FA_OK;
}


/* ---- logging in ---- */

void
fa_pop3_auth_cancel(fa_pop3_session_t *s)
{
    if (s->auth) {
        fa_auth_login_cancel(s->auth);
        s->auth = NULL;
    }
}

static void
fa_pop3_fail_answer(fa_event_t *ev)
{
    fa_pop3_session_t  *s = ev->data;

    ev->timedout = 0;
    if ((fa_int_t) s->auth_failures >= s->conf->max_auth_failures) {
        fa_pop3_err(s, "[AUTH] Authentication failed, too many failures: closing");
        s->closing = 1;
    } else {
        fa_pop3_err(s, "[AUTH] Authentication failed");
    }
    fa_pop3_continue(s);
}

static void
fa_pop3_failed(fa_pop3_session_t *s)
{
    s->auth_failures++;
    fa_stat_inc(fa_pop3_stat_login_failures);
    fa_log_error(FA_LOG_INFO, s->c->log, 0, "pop3 login failed (%lu)",
                 (unsigned long) s->auth_failures);
    s->busy = 1;
    s->delay.handler = fa_pop3_fail_answer;
    fa_event_add_timer(&s->delay,
                       fa_max(s->conf->auth_failure_delay * (fa_msec_t) s->auth_failures, 1));
}

/* then the maildrop is opened (fa_pop3_maildrop.c answers) */
static void
fa_pop3_quota_done(void *data, fa_int_t rc)
{
    fa_pop3_session_t  *s = data;

    if (fa_pop3_answered(s)) {
        return;
    }
    if (rc != FA_OK) {
        fa_log_error(FA_LOG_WARN, s->c->log, 0, "pop3: the quota of %s could not be "
                     "applied: %s", s->user, fa_storage_strerror(rc));
    }
    if (fa_pop3_maildrop_open(s) != FA_AGAIN) {
        fa_pop3_continue(s);
    }
}

static void
fa_pop3_locked_in(fa_pop3_session_t *s)
{
    fa_auth_dir_t   *d = fa_auth_worker_dir();
    fa_str_t         user = { s->user_len, (u_char *) s->user };
    fa_auth_user_t   u;
    fa_int_t         rc = FA_OK;

    if (d && s->pool && fa_auth_user_get(d, &user, s->pool, &u) == FA_OK) {
        rc = fa_pop3_call(s, fa_auth_quota_sync(fa_cycle, s->store, &u, fa_pop3_quota_done, s));
    }
    if (rc == FA_AGAIN) {
        return;
    }
    if (fa_pop3_maildrop_open(s) != FA_AGAIN) {
        fa_pop3_continue(s);
    }
}

static void
fa_pop3_checked(void *data, fa_int_t rc, const fa_str_t *user)
{
    fa_pop3_session_t  *s = data;

    s->auth = NULL;
    if (rc == FA_DECLINED) {
        fa_pop3_failed(s);
        return;
    }
    if (rc != FA_OK || user->len >= sizeof(s->user)
        || (s->store = fa_storage_for_user(fa_cycle, user)) == NULL)
    {
        fa_pop3_err(s, "[SYS/TEMP] Temporary authentication failure");
        fa_pop3_continue(s);
        return;
    }
    memcpy(s->user, user->data, user->len);
    s->user[user->len] = '\0';
    s->user_len = user->len;
    rc = fa_pop3_lock(s);
    if (rc != FA_OK) {
        fa_pop3_err(s, "%s", rc == FA_BUSY ? "[IN-USE] Mailbox is locked by another session"
                    : rc == FA_DECLINED ? "[LOGIN-DELAY] Logged in too recently"
                    : "[SYS/TEMP] Cannot lock the mailbox");
        s->user_len = 0;
        fa_pop3_continue(s);
        return;
    }
    s->pool = fa_pool_create(4096, s->c->log);
    if (s->pool == NULL) {
        fa_pop3_unlock(s);
        s->user_len = 0;
        fa_pop3_err(s, "[SYS/TEMP] Out of memory");
        fa_pop3_continue(s);
        return;
    }
    fa_pop3_locked_in(s);
}

static fa_int_t
fa_pop3_check(fa_pop3_session_t *s, fa_str_t *login, fa_str_t *password)
{
    fa_auth_client_t  client = { "pop3", s->c->addr_text };
    fa_auth_login_t  *h = NULL;
    fa_int_t          rc;

    rc = fa_auth_login(&client, login, password, s->c->log, fa_pop3_checked, s, &h);
    explicit_bzero(password->data, password->len);
    if (rc == FA_AGAIN) {
        s->auth = h;
        s->busy = 1;
        return FA_OK;
    }
    return fa_pop3_err(s, "[SYS/TEMP] Temporary authentication failure");
}

static fa_int_t
fa_pop3_sasl_plain(fa_pop3_session_t *s, fa_pool_t *pool, const fa_str_t *b64)
{
    fa_str_t  authzid, authcid, password;

    if (fa_sasl_plain_decode(pool, b64, &authzid, &authcid, &password) != FA_OK) {
        return fa_pop3_err(s, "[AUTH] Invalid SASL response");
    }
    if (authzid.len && !(authzid.len == authcid.len
                         && strncasecmp((char *) authzid.data, (char *) authcid.data,
                                        authzid.len) == 0))
    {
        explicit_bzero(password.data, password.len);
        fa_pop3_failed(s);               /* no acting as someone else */
        return FA_OK;
    }
    return fa_pop3_check(s, &authcid, &password);
}

/* decoded in a pool of its own, freed at once: responses may come forever */
static fa_int_t
fa_pop3_sasl_response(fa_pop3_session_t *s, const fa_str_t *b64)
{
    fa_pool_t  *pool;
    fa_int_t    rc;

    if (b64->len == 1 && b64->data[0] == '*') {
        return fa_pop3_err(s, "Authentication aborted");
    }
    if ((pool = fa_pool_create(1024, s->c->log)) == NULL) {
        return fa_pop3_err(s, "[SYS/TEMP] Out of memory");
    }
    rc = fa_pop3_sasl_plain(s, pool, b64);
    fa_pool_destroy(pool);
    return rc;
}

static fa_int_t
fa_pop3_auth(fa_pop3_session_t *s, fa_str_t *arg)
{
    u_char    *sp = memchr(arg->data, ' ', arg->len);
    fa_str_t   mech = { sp ? (size_t) (sp - arg->data) : arg->len, arg->data };
    fa_str_t   ir = { sp ? arg->len - mech.len - 1 : 0, sp ? sp + 1 : NULL };

    if (arg->len == 0) {
        fa_pop3_ok(s, "Methods follow");
        return fa_conn_printf(s->c, "PLAIN\r\n.\r\n");
    }
    if (!fa_str_eqi(&mech, "PLAIN")) {
        return fa_pop3_err(s, "Unsupported authentication mechanism");
    }
    if (!fa_pop3_login_allowed(s)) {
        return fa_pop3_err(s, "[AUTH] Plaintext authentication is disabled without TLS");
    }
    if (ir.len) {
        fa_str_t empty = fa_string("");
        return fa_pop3_sasl_response(s, ir.len == 1 && ir.data[0] == '=' ? &empty : &ir);
    }
    s->sasl_wait = 1;
    return fa_conn_printf(s->c, "+ \r\n");
}

static fa_int_t
fa_pop3_user(fa_pop3_session_t *s, fa_str_t *arg)
{
    if (!fa_pop3_login_allowed(s)) {
        return fa_pop3_err(s, "[AUTH] Plaintext authentication is disabled without TLS");
    }
    if (arg->len == 0 || arg->len >= sizeof(s->login)) {
        return fa_pop3_err(s, "Syntax: USER name");
    }
    memcpy(s->login, arg->data, arg->len);
    s->login[arg->len] = '\0';
    return fa_pop3_ok(s, "Send your password");
}

static fa_int_t
fa_pop3_pass(fa_pop3_session_t *s, fa_str_t *arg)
{
    char      name[sizeof(s->login)];
    fa_str_t  login = { strlen(s->login), (u_char *) name };

    if (login.len == 0) {
        return fa_pop3_err(s, "USER first");
    }
    if (arg->len == 0) {
        return fa_pop3_err(s, "Syntax: PASS password");
    }
    memcpy(name, s->login, login.len + 1);
    s->login[0] = '\0';                 /* one PASS per USER */
    return fa_pop3_check(s, &login, arg);
}

/* the AUTHORIZATION state's commands */
static fa_int_t
fa_pop3_authorization(fa_pop3_session_t *s, const fa_str_t *cmd, fa_str_t *arg)
{
    if (fa_str_eqi(cmd, "USER")) {
        return fa_pop3_user(s, arg);
    }
    if (fa_str_eqi(cmd, "PASS")) {
        return fa_pop3_pass(s, arg);
    }
    if (fa_str_eqi(cmd, "AUTH")) {
        return fa_pop3_auth(s, arg);
    }
    if (fa_str_eqi(cmd, "STLS")) {
        if (s->conf->ssl == NULL || s->c->ssl) {
            return fa_pop3_err(s, s->c->ssl ? "TLS is already active" : "TLS is not available");
        }
        fa_pop3_ok(s, "Begin TLS negotiation now");
        fa_pop3_starttls(s);
        return FA_OK;
    }
    if (fa_str_eqi(cmd, "QUIT")) {
        s->closing = 1;
        return fa_pop3_ok(s, "Logging out");
    }
    return fa_pop3_err(s, "Unknown command, or not before authentication");
}

fa_int_t
fa_pop3_command(fa_pop3_session_t *s, fa_line_t *line)
{
    fa_str_t  *l = &line->text, cmd, arg;
    size_t     n;

    if (line->too_long) {
        s->sasl_wait = 0;
        return fa_pop3_err(s, "Line too long");
    }
    if (memchr(l->data, '\0', l->len)) {
        s->sasl_wait = 0;
        return fa_pop3_err(s, "NUL byte in command");
    }
    if (s->sasl_wait) {
        s->sasl_wait = 0;
        return fa_pop3_sasl_response(s, l);
    }
    for (n = 0; n < l->len && l->data[n] != ' '; n++) { /* the keyword */ }
    cmd.data = l->data;
    cmd.len = n;
    arg.data = l->data + n + (n < l->len);
    arg.len = l->len - n - (n < l->len);
    if (fa_str_eqi(&cmd, "CAPA")) {
        return fa_pop3_capa(s);
    }
    if (s->state == FA_POP3_AUTHORIZATION) {
        return fa_pop3_authorization(s, &cmd, &arg);
    }
    return fa_pop3_transaction(s, &cmd, &arg);
}
