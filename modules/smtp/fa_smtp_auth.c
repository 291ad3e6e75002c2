/*
 * AUTH PLAIN and LOGIN (RFC 4954, 4616), with an initial response or
 * through 334 challenges.  Offered only over TLS unless auth_plaintext is
 * on; never in LMTP.  The password is checked off the loop
 * (fa_auth_login); a success runs the auth phase, whose hooks may still
 * refuse it.  Failures are answered after auth_failure_delay times their
 * number, and after max_auth_failures the session ends.
 */

#include "fa_smtp_int.h"
#include "fa_auth_login.h"
#include "fa_auth_sasl.h"

#define FA_SMTP_MECH_PLAIN   1
#define FA_SMTP_MECH_LOGIN   2

int
fa_smtp_auth_offered(fa_smtp_session_t *s)
{
    return s->role != FA_SMTP_ROLE_LMTP
           && (s->c->ssl != NULL || fa_smtp_priv(s)->conf->auth_plaintext == 1);
}

void
fa_smtp_auth_cancel(fa_smtp_session_t *s)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    if (p->login) {
        fa_auth_login_cancel(p->login);
        p->login = NULL;
    }
}

static void
fa_smtp_auth_wipe(fa_str_t *secret)
{
    if (secret->data) {
        explicit_bzero(secret->data, secret->len);
    }
}

/* the failure's answer, after the delay */
static void
fa_smtp_auth_resume(fa_event_t *ev)
{
    fa_smtp_session_t  *s = ev->data;
    fa_smtp_priv_t     *p = fa_smtp_priv(s);

    ev->timedout = 0;
    fa_smtp_reply(s, p->delayed_code, "%s", p->delayed_text);
    if ((fa_int_t) p->auth_failures >= p->conf->max_auth_failures) {
        fa_smtp_reply(s, 421, "4.7.0 %.*s Error: too many authentication failures",
                      (int) p->conf->hostname.len, p->conf->hostname.data);
        p->closing = 1;
    }
    fa_smtp_continue(s);
}

static void
fa_smtp_auth_failed(fa_smtp_session_t *s, fa_uint_t code, const char *text)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    p->auth_failures++;
    fa_smtp_count_reject("auth");
    fa_log_error(FA_LOG_INFO, s->c->log, 0, "authentication failed (%lu)",
                 (unsigned long) p->auth_failures);
    /* the answer waits, longer with each failure: guessing gets slow */
    p->delayed_code = code;
    p->delayed_text = text;
    p->state = FA_SMTP_ST_BUSY;
    p->delay.handler = fa_smtp_auth_resume;
    fa_event_add_timer(&p->delay,
                       fa_max(p->conf->auth_failure_delay * (fa_msec_t) p->auth_failures, 1));
}

/* a hook's text for the delayed answer: one line, in the session's pool */
static const char *
fa_smtp_auth_hook_text(fa_smtp_session_t *s, const fa_smtp_answer_t *a, const char *def)
{
    size_t   n = 0;
    char    *text;

    if (a->text.len == 0 || (text = fa_pnalloc(s->c->pool, a->text.len + 1)) == NULL) {
        return def;
    }
    /* up to the first line end: the text is a fa_str_t, no NUL to stop a strcspn */
    while (n < a->text.len && a->text.data[n] != '\r' && a->text.data[n] != '\n') {
        n++;
    }
    memcpy(text, a->text.data, n);
    text[n] = '\0';
    return text;
}

static void
fa_smtp_auth_phase_done(fa_smtp_session_t *s, fa_smtp_answer_t *a)
{
    int  defer = a->verdict == FA_SMTP_DEFER;

    if (a->verdict == FA_SMTP_DISCONNECT) {
        /* the hook wants the client gone: no delay, no second try */
        s->user.len = 0;
        fa_smtp_count_reject("auth");
        fa_smtp_reply_answer(s, a, 421, "4.7.0 Closing connection");
        fa_smtp_priv(s)->closing = 1;
        fa_smtp_continue(s);
        return;
    }
    if (a->verdict == FA_SMTP_REJECT || defer) {
        /* a refusal by a hook is a failure like a wrong password, in its own words */
        s->user.len = 0;
        fa_smtp_auth_failed(s, a->code >= 400 && a->code <= 599 ? a->code : defer ? 454 : 535,
                            fa_smtp_auth_hook_text(s, a, defer
                                ? "4.7.0 Temporary authentication failure"
                                : "5.7.8 Authentication credentials invalid"));
        return;
    }
    fa_log_error(FA_LOG_INFO, s->c->log, 0, "authenticated as %.*s", (int) s->user.len,
                 s->user.data);
    fa_smtp_reply(s, 235, "2.7.0 Authentication successful");
    fa_smtp_continue(s);
}

static void
fa_smtp_auth_checked(void *data, fa_int_t rc, const fa_str_t *user)
{
    fa_smtp_session_t  *s = data;
    fa_smtp_priv_t     *p = fa_smtp_priv(s);

    p->login = NULL;
    if (rc == FA_OK) {
        s->user.data = fa_pnalloc(s->c->pool, user->len + 1);
        if (s->user.data == NULL) {
            fa_conn_close(s->c);
            return;
        }
        memcpy(s->user.data, user->data, user->len);
        s->user.data[user->len] = '\0';
        s->user.len = user->len;
        fa_smtp_phase_run(s, FA_SMTP_PHASE_AUTH, fa_smtp_auth_phase_done);
        return;
    }
    if (rc == FA_DECLINED) {
        fa_smtp_auth_failed(s, 535, "5.7.8 Authentication credentials invalid");
        return;
    }
    fa_smtp_reply(s, 454, "4.7.0 Temporary authentication failure");
    fa_smtp_continue(s);
}

/* hand the credentials to the password check; the reply comes from there */
static fa_int_t
fa_smtp_auth_check(fa_smtp_session_t *s, fa_str_t *login, fa_str_t *password)
{
    fa_auth_client_t         client = { "smtp", s->c->addr_text };
    fa_smtp_priv_t          *p = fa_smtp_priv(s);
    fa_auth_login_t         *h = NULL;
    fa_int_t                 rc;

    p->state = FA_SMTP_ST_BUSY;
    rc = fa_auth_login(&client, login, password, s->c->log, fa_smtp_auth_checked, s, &h);
    fa_smtp_auth_wipe(password);
    if (rc == FA_AGAIN) {
        p->login = h;
        return FA_OK;
    }
    p->state = FA_SMTP_ST_COMMAND;
    return fa_smtp_reply(s, 454, "4.7.0 Temporary authentication failure");
}

static fa_int_t
fa_smtp_auth_plain(fa_smtp_session_t *s, const fa_str_t *b64)
{
    fa_str_t  authzid, authcid, password;

    if (fa_sasl_plain_decode(s->c->pool, b64, &authzid, &authcid, &password) != FA_OK) {
        fa_smtp_priv(s)->state = FA_SMTP_ST_COMMAND;
        fa_smtp_error(s);
        return fa_smtp_reply(s, 501, "5.5.2 Cannot decode the response");
    }
    if (authzid.len && !(authzid.len == authcid.len
                         && strncasecmp((char *) authzid.data, (char *) authcid.data,
                                        authzid.len) == 0))
    {
        fa_smtp_auth_wipe(&password);
        fa_smtp_auth_failed(s, 535, "5.7.8 Authentication credentials invalid");
        return FA_OK;                    /* no acting for someone else */
    }
    return fa_smtp_auth_check(s, &authcid, &password);
}

/* one response line of an exchange in progress */
fa_int_t
fa_smtp_auth_line(fa_smtp_session_t *s, fa_line_t *line)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);
    fa_str_t         decoded;

    if (line->too_long || (line->text.len == 1 && line->text.data[0] == '*')) {
        p->state = FA_SMTP_ST_COMMAND;
        fa_smtp_error(s);
        return fa_smtp_reply(s, 501, "5.7.0 Authentication aborted");
    }
    if (p->auth_mech == FA_SMTP_MECH_PLAIN) {
        return fa_smtp_auth_plain(s, &line->text);
    }
    if (fa_sasl_decode_line(s->c->pool, &line->text, p->auth_step == 0 ? 320 : 511,
                            &decoded) != FA_OK)
    {
        p->state = FA_SMTP_ST_COMMAND;
        fa_smtp_error(s);
        return fa_smtp_reply(s, 501, "5.5.2 Cannot decode the response");
    }
    if (p->auth_step == 0) {
        p->auth_name = decoded;
        p->auth_step = 1;
        return fa_smtp_reply(s, 334, FA_SASL_LOGIN_PASSWORD);
    }
    return fa_smtp_auth_check(s, &p->auth_name, &decoded);
}

static fa_int_t
fa_smtp_auth_start(fa_smtp_session_t *s, fa_uint_t mech, fa_str_t *ir)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);
    fa_line_t        line;

    p->auth_mech = mech;
    p->auth_step = 0;
    p->state = FA_SMTP_ST_AUTH;
    if (ir->len == 0) {
        return fa_smtp_reply(s, 334, "%s", mech == FA_SMTP_MECH_LOGIN
                                           ? FA_SASL_LOGIN_USERNAME : "");
    }
    memset(&line, 0, sizeof(line));
    if (ir->len == 1 && ir->data[0] == '=') {
        line.text.len = 0;               /* "=": an empty initial response */
        line.text.data = ir->data;
    } else {
        line.text = *ir;
    }
    return fa_smtp_auth_line(s, &line);
}

fa_int_t
fa_smtp_auth_command(fa_smtp_session_t *s, fa_str_t *arg)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);
    fa_str_t         mech = *arg, ir = fa_null_string;
    u_char          *sp = memchr(arg->data, ' ', arg->len);

    if (sp) {
        mech.len = (size_t) (sp - arg->data);
        ir.data = sp + 1;
        ir.len = arg->len - mech.len - 1;
    }
    if (s->helo.len == 0 || !s->esmtp) {
        fa_smtp_error(s);
        return fa_smtp_reply(s, 503, "5.5.1 Error: send EHLO first");
    }
    if (s->user.len) {
        fa_smtp_error(s);
        return fa_smtp_reply(s, 503, "5.5.1 Error: already authenticated");
    }
    if (s->txn) {
        fa_smtp_error(s);
        return fa_smtp_reply(s, 503, "5.5.1 Error: AUTH not allowed during a transaction");
    }
    if (!fa_smtp_auth_offered(s)) {
        fa_smtp_error(s);
        return fa_smtp_reply(s, 538, "5.7.11 Encryption required for requested "
                             "authentication mechanism");
    }
    if ((fa_int_t) p->auth_failures >= p->conf->max_auth_failures) {
        return fa_smtp_reply(s, 421, "4.7.0 Error: too many authentication failures");
    }
    if (fa_str_eqi(&mech, "PLAIN")) {
        return fa_smtp_auth_start(s, FA_SMTP_MECH_PLAIN, &ir);
    }
    if (fa_str_eqi(&mech, "LOGIN")) {
        return fa_smtp_auth_start(s, FA_SMTP_MECH_LOGIN, &ir);
    }
    fa_smtp_error(s);
    return fa_smtp_reply(s, 504, "5.5.4 Unrecognized authentication type");
}
