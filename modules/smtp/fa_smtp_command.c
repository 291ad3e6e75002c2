/*
 * Commands: the table, and the handlers of the session and envelope
 * commands (HELO/EHLO/LHLO, MAIL, RCPT, RSET, NOOP, QUIT, VRFY, HELP,
 * STARTTLS).  AUTH is in fa_smtp_auth.c, DATA and BDAT in fa_smtp_data.c.
 *
 * Each handler checks the state (503 out of sequence), parses (501, 555),
 * then runs its phase chain; the continuation replies.  Client mistakes
 * are counted towards max_errors.
 */

#include "fa_smtp_int.h"
#include "fa_auth_directory.h"

#define FA_SMTP_PARAMS_MAX  10

typedef fa_int_t (*fa_smtp_cmd_pt)(fa_smtp_session_t *s, fa_str_t *arg);

typedef struct {
    const char       *name;
    fa_smtp_cmd_pt    handler;
    unsigned          lmtp:1;      /* allowed in LMTP */
    unsigned          smtp:1;      /* allowed in SMTP */
} fa_smtp_cmd_t;

/* a reply to a client mistake, counted */
static fa_int_t
fa_smtp_bad(fa_smtp_session_t *s, fa_uint_t code, const char *text)
{
    fa_int_t  rc = fa_smtp_reply(s, code, "%s", text);

    fa_smtp_error(s);
    return rc;
}

static const fa_str_t *
fa_smtp_host(fa_smtp_session_t *s)
{
    return &fa_smtp_priv(s)->conf->hostname;
}


/* ---- HELO, EHLO, LHLO ---- */

static void
fa_smtp_ehlo_reply(fa_smtp_session_t *s)
{
    fa_smtp_priv_t   *p = fa_smtp_priv(s);
    fa_connection_t  *c = s->c;
    const fa_str_t   *h = fa_smtp_host(s);

    fa_conn_printf(c, "250-%.*s\r\n250-PIPELINING\r\n250-SIZE %zu\r\n", (int) h->len,
                   h->data, p->conf->max_message_size);
    if (p->conf->ssl && c->ssl == NULL && s->role != FA_SMTP_ROLE_LMTP) {
        fa_conn_printf(c, "250-STARTTLS\r\n");
    }
    if (fa_smtp_auth_offered(s)) {
        fa_conn_printf(c, "250-AUTH PLAIN LOGIN\r\n");
    }
    fa_conn_printf(c, "250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n"
                   "250-CHUNKING\r\n250 DSN\r\n");
}

static void
fa_smtp_helo_done(fa_smtp_session_t *s, fa_smtp_answer_t *a)
{
    if (a->verdict == FA_SMTP_REJECT || a->verdict == FA_SMTP_DEFER
        || a->verdict == FA_SMTP_DISCONNECT)
    {
        fa_smtp_count_reject("helo");
        fa_smtp_reply_answer(s, a, a->verdict == FA_SMTP_REJECT ? 550 : 450,
                             a->verdict == FA_SMTP_REJECT ? "5.7.1 HELO refused"
                                                          : "4.7.1 Try again later");
        s->helo.len = 0;
        fa_smtp_priv(s)->closing = a->verdict == FA_SMTP_DISCONNECT;
    } else if (s->esmtp) {
        fa_smtp_ehlo_reply(s);
    } else {
        fa_smtp_reply(s, 250, "%.*s", (int) fa_smtp_host(s)->len, fa_smtp_host(s)->data);
    }
    fa_smtp_continue(s);
}

static fa_int_t
fa_smtp_hello(fa_smtp_session_t *s, fa_str_t *arg, int esmtp)
{
    u_char  *copy = fa_smtp_priv(s)->helo;

    while (arg->len && arg->data[arg->len - 1] == ' ') {
        arg->len--;
    }
    if (arg->len == 0 || arg->len > FA_SMTP_HELO_MAX || memchr(arg->data, ' ', arg->len)) {
        return fa_smtp_bad(s, 501, "5.5.4 Syntax: EHLO hostname");
    }
    fa_smtp_txn_end(s);                      /* RFC 5321 4.1.4: an implicit RSET */
    /* the session's own buffer: a client may say EHLO as often as it likes */
    memcpy(copy, arg->data, arg->len);
    copy[arg->len] = '\0';
    s->helo.data = copy;
    s->helo.len = arg->len;
    s->esmtp = esmtp;
    fa_smtp_phase_run(s, FA_SMTP_PHASE_HELO, fa_smtp_helo_done);
    return FA_OK;
}

static fa_int_t
fa_smtp_cmd_ehlo(fa_smtp_session_t *s, fa_str_t *arg)
{
    return fa_smtp_hello(s, arg, 1);
}

static fa_int_t
fa_smtp_cmd_helo(fa_smtp_session_t *s, fa_str_t *arg)
{
    return fa_smtp_hello(s, arg, 0);
}


/* ---- MAIL ---- */

/*
 * One MAIL parameter into the transaction: FA_OK, FA_DECLINED for a known
 * keyword with a bad value (501), FA_ABORT for an unknown keyword (555).
 */
static fa_int_t
fa_smtp_mail_param(fa_smtp_txn_t *t, const fa_smtp_param_t *pr)
{
    const fa_str_t  *v = &pr->value;
    int64_t          size;

    if (fa_str_eq(&pr->name, "SIZE")) {
        size = fa_atoi(v->data, v->len);         /* -1: empty, not digits, too big */
        if (size < 0) {
            return FA_DECLINED;
        }
        t->size_param = (uint64_t) size;
    } else if (fa_str_eq(&pr->name, "BODY")) {
        if (!fa_str_eqi(v, "7BIT") && !fa_str_eqi(v, "8BITMIME")) {
            return FA_DECLINED;
        }
        t->body_8bit = fa_str_eqi(v, "8BITMIME");
    } else if (fa_str_eq(&pr->name, "SMTPUTF8")) {
        if (v->len) {
            return FA_DECLINED;
        }
        t->smtputf8 = 1;
    } else if (fa_str_eq(&pr->name, "RET")) {
        if (!fa_str_eqi(v, "FULL") && !fa_str_eqi(v, "HDRS")) {
            return FA_DECLINED;
        }
        t->ret = *v;
    } else if (fa_str_eq(&pr->name, "ENVID")) {
        return v->len && v->len <= 100 ? fa_smtp_xtext_decode(t->pool, v, &t->envid)
                                       : FA_DECLINED;
    } else if (fa_str_eq(&pr->name, "AUTH")) {
        return v->len ? FA_OK : FA_DECLINED;     /* RFC 4954 5: ignored, we trust no one */
    } else {
        return FA_ABORT;
    }
    return FA_OK;
}

/* the reply to a parameter refused with rc (FA_DECLINED or FA_ABORT) */
static void
fa_smtp_param_refused(fa_smtp_session_t *s, const fa_smtp_param_t *pr, fa_int_t rc)
{
    if (rc == FA_ABORT) {
        fa_smtp_reply(s, 555, "5.5.4 Unsupported parameter \"%.*s\"",
                      (int) fa_min(pr->name.len, 64), pr->name.data);
    } else {
        fa_smtp_reply(s, 501, "5.5.4 Bad %.*s parameter",
                      (int) fa_min(pr->name.len, 64), pr->name.data);
    }
    fa_smtp_error(s);
}

static fa_int_t
fa_smtp_mail_params(fa_smtp_session_t *s, const fa_str_t *rest)
{
    fa_smtp_param_t  pr[FA_SMTP_PARAMS_MAX];
    fa_uint_t        n;
    fa_int_t         rc;

    rc = fa_smtp_parse_params(s->txn->pool, rest, pr, FA_SMTP_PARAMS_MAX, &n);
    if (rc != FA_OK) {
        return rc == FA_ERROR ? FA_ERROR
               : (fa_smtp_bad(s, 501, "5.5.4 Syntax error in parameters"), FA_DECLINED);
    }
    for (fa_uint_t i = 0; i < n; i++) {
        rc = fa_smtp_mail_param(s->txn, &pr[i]);
        if (rc == FA_ERROR) {
            return FA_ERROR;
        }
        if (rc != FA_OK) {
            fa_smtp_param_refused(s, &pr[i], rc);
            return FA_DECLINED;
        }
    }
    return FA_OK;
}

static void
fa_smtp_mail_done(fa_smtp_session_t *s, fa_smtp_answer_t *a)
{
    if (a->verdict == FA_SMTP_REJECT || a->verdict == FA_SMTP_DEFER
        || a->verdict == FA_SMTP_DISCONNECT)
    {
        fa_smtp_count_reject("mail");
        fa_smtp_reply_answer(s, a, a->verdict == FA_SMTP_REJECT ? 550 : 451,
                             a->verdict == FA_SMTP_REJECT ? "5.7.1 Sender refused"
                                                          : "4.7.1 Try again later");
        fa_smtp_txn_end(s);
        fa_smtp_priv(s)->closing = a->verdict == FA_SMTP_DISCONNECT;
    } else {
        fa_smtp_reply(s, 250, "2.1.0 Ok");
    }
    fa_smtp_continue(s);
}

/* "FROM:" or "TO:" (case-insensitive); arg moves past it */
static int
fa_smtp_keyword(fa_str_t *arg, const char *kw)
{
    size_t  n = strlen(kw);

    if (arg->len < n || strncasecmp((char *) arg->data, kw, n) != 0) {
        return 0;
    }
    arg->data += n;
    arg->len -= n;
    return 1;
}

static fa_int_t
fa_smtp_cmd_mail(fa_smtp_session_t *s, fa_str_t *arg)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);
    const char      *why;
    fa_str_t         rest;
    fa_int_t         rc;

    if (s->helo.len == 0) {
        return fa_smtp_bad(s, 503, "5.5.1 Error: send HELO/EHLO first");
    }
    if (s->txn) {
        return fa_smtp_bad(s, 503, "5.5.1 Error: nested MAIL command");
    }
    if (s->role == FA_SMTP_ROLE_SUBMISSION && s->user.len == 0) {
        fa_smtp_count_reject("auth_required");
        return fa_smtp_bad(s, 530, "5.7.0 Authentication required");
    }
    if (!fa_smtp_keyword(arg, "FROM:")) {
        return fa_smtp_bad(s, 501, "5.5.4 Syntax: MAIL FROM:<address>");
    }
    if (fa_smtp_txn_begin(s) != FA_OK) {
        return FA_ERROR;
    }
    /*
     * 8-bit is allowed in the path only with the SMTPUTF8 parameter, which
     * comes after it: parse the path as UTF-8, check once the parameters
     * are known (a look ahead for the word would find it inside the path).
     */
    rc = fa_smtp_parse_path(s->txn->pool, arg, 1, 1, &s->txn->from, &rest, &why);
    if (rc == FA_ERROR) {
        return FA_ERROR;
    }
    if (rc != FA_OK) {
        fa_smtp_txn_end(s);
        return fa_smtp_bad(s, 501, "5.1.7 Bad sender address syntax");
    }
    rc = fa_smtp_mail_params(s, &rest);
    if (rc != FA_OK) {
        fa_smtp_txn_end(s);
        return rc == FA_ERROR ? FA_ERROR : FA_OK;
    }
    if (!s->txn->smtputf8
        && fa_smtp_has_8bit(s->txn->from.address.data, s->txn->from.address.len))
    {
        fa_smtp_txn_end(s);
        return fa_smtp_bad(s, 553, "5.6.7 8-bit address without SMTPUTF8");
    }
    if (s->txn->size_param > p->conf->max_message_size) {
        fa_smtp_txn_end(s);
        fa_smtp_count_reject("size");
        return fa_smtp_reply(s, 552, "5.3.4 Message size exceeds fixed limit");
    }
    fa_smtp_phase_run(s, FA_SMTP_PHASE_MAIL, fa_smtp_mail_done);
    return FA_OK;
}


/* ---- RCPT ---- */

/* one RCPT parameter, answered as fa_smtp_mail_param() */
static fa_int_t
fa_smtp_rcpt_param(fa_smtp_txn_t *t, const fa_smtp_param_t *pr, fa_smtp_rcpt_t *r)
{
    if (fa_str_eq(&pr->name, "NOTIFY")) {
        if (pr->value.len == 0) {
            return FA_DECLINED;
        }
        r->notify = pr->value;
        return FA_OK;
    }
    if (fa_str_eq(&pr->name, "ORCPT")) {
        return pr->value.len && pr->value.len <= 500
               ? fa_smtp_xtext_decode(t->pool, &pr->value, &r->orcpt) : FA_DECLINED;
    }
    return FA_ABORT;
}

static fa_int_t
fa_smtp_rcpt_params(fa_smtp_session_t *s, const fa_str_t *rest, fa_smtp_rcpt_t *r)
{
    fa_smtp_param_t  pr[FA_SMTP_PARAMS_MAX];
    fa_uint_t        n;
    fa_int_t         rc;

    rc = fa_smtp_parse_params(s->txn->pool, rest, pr, FA_SMTP_PARAMS_MAX, &n);
    if (rc != FA_OK) {
        return rc == FA_ERROR ? FA_ERROR
               : (fa_smtp_bad(s, 501, "5.5.4 Syntax error in parameters"), FA_DECLINED);
    }
    for (fa_uint_t i = 0; i < n; i++) {
        rc = fa_smtp_rcpt_param(s->txn, &pr[i], r);
        if (rc == FA_ERROR) {
            return FA_ERROR;
        }
        if (rc != FA_OK) {
            fa_smtp_param_refused(s, &pr[i], rc);
            return FA_DECLINED;
        }
    }
    return FA_OK;
}

static void
fa_smtp_rcpt_done(fa_smtp_session_t *s, fa_smtp_answer_t *a)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);
    fa_smtp_rcpt_t  *r = s->rcpt, *slot;

    s->rcpt = NULL;
    if (a->verdict == FA_SMTP_REJECT || a->verdict == FA_SMTP_DEFER
        || a->verdict == FA_SMTP_DISCONNECT)
    {
        fa_smtp_count_reject("rcpt");
        fa_smtp_reply_answer(s, a, a->verdict == FA_SMTP_REJECT ? 550 : 450,
                             a->verdict == FA_SMTP_REJECT ? "5.7.1 Recipient refused"
                                                          : "4.7.1 Try again later");
        p->closing = a->verdict == FA_SMTP_DISCONNECT;
    } else if ((slot = fa_array_push(&s->txn->rcpts)) == NULL) {
        fa_smtp_reply(s, 451, "4.3.0 Error: out of memory");
    } else {
        *slot = *r;
        if (r->route == FA_SMTP_ROUTE_LOCAL) {
            p->size_limit = fa_min(p->size_limit, fa_smtp_domain_max_size(s, &r->addr.domain));
        }
        fa_smtp_reply(s, 250, "2.1.5 Ok");
    }
    fa_smtp_continue(s);
}

/* how many accepted recipients are in this domain */
static fa_int_t
fa_smtp_rcpts_in(fa_smtp_txn_t *t, const fa_str_t *domain)
{
    fa_smtp_rcpt_t  *r = t->rcpts.elts;
    fa_int_t         n = 0;

    for (fa_uint_t i = 0; i < t->rcpts.nelts; i++) {
        n += fa_str_equal(&r[i].addr.domain, domain);
    }
    return n;
}

static fa_int_t
fa_smtp_rcpt_check(fa_smtp_session_t *s, fa_smtp_rcpt_t *r)
{
    fa_smtp_priv_t    *p = fa_smtp_priv(s);
    fa_smtp_answer_t   a;
    fa_int_t           rc;

    if ((fa_int_t) s->txn->rcpts.nelts >= p->conf->max_recipients
        || fa_smtp_rcpts_in(s->txn, &r->addr.domain)
           >= fa_smtp_domain_max_recipients(s, &r->addr.domain))
    {
        fa_smtp_count_reject("recipients");
        return fa_smtp_bad(s, 452, "4.5.3 Error: too many recipients"), FA_DECLINED;
    }
    memset(&a, 0, sizeof(a));
    rc = fa_smtp_rcpt_resolve(s, r, &a);
    if (rc == FA_ERROR) {
        return FA_ERROR;
    }
    if (rc != FA_OK) {
        fa_smtp_reply_answer(s, &a, a.code, "");
        fa_smtp_error(s);
        return FA_DECLINED;
    }
    if (s->txn->size_param > fa_smtp_domain_max_size(s, &r->addr.domain)) {
        fa_smtp_count_reject("size");
        return fa_smtp_bad(s, 552, "5.3.4 Message size exceeds the recipient's limit"),
               FA_DECLINED;
    }
    return FA_OK;
}

static fa_int_t
fa_smtp_cmd_rcpt(fa_smtp_session_t *s, fa_str_t *arg)
{
    fa_smtp_rcpt_t  *r;
    const char      *why;
    fa_str_t         rest;
    fa_int_t         rc;

    if (s->txn == NULL) {
        return fa_smtp_bad(s, 503, "5.5.1 Error: need MAIL command");
    }
    fa_smtp_priv(s)->rcpt_seen = 1;          /* DATA: 554 from now on, not 503 */
    if (!fa_smtp_keyword(arg, "TO:")) {
        return fa_smtp_bad(s, 501, "5.5.4 Syntax: RCPT TO:<address>");
    }
    if ((r = fa_pcalloc(s->txn->pool, sizeof(*r))) == NULL) {
        return FA_ERROR;
    }
    rc = fa_smtp_parse_path(s->txn->pool, arg, 0, s->txn->smtputf8, &r->addr, &rest, &why);
    if (rc == FA_ERROR) {
        return FA_ERROR;
    }
    if (rc != FA_OK) {
        return strcmp(why, "8bit") == 0
               ? fa_smtp_bad(s, 553, "5.6.7 8-bit address without SMTPUTF8")
               : fa_smtp_bad(s, 501, "5.1.3 Bad recipient address syntax");
    }
    rc = fa_smtp_rcpt_params(s, &rest, r);
    if (rc == FA_OK) {
        rc = fa_smtp_rcpt_check(s, r);
    }
    if (rc != FA_OK) {
        return rc == FA_ERROR ? FA_ERROR : FA_OK;
    }
    s->rcpt = r;
    fa_smtp_phase_run(s, FA_SMTP_PHASE_RCPT, fa_smtp_rcpt_done);
    return FA_OK;
}


/* ---- the small ones ---- */

static fa_int_t
fa_smtp_cmd_rset(fa_smtp_session_t *s, fa_str_t *arg)
{
    (void) arg;
    fa_smtp_txn_end(s);
    return fa_smtp_reply(s, 250, "2.0.0 Ok");
}

static fa_int_t
fa_smtp_cmd_noop(fa_smtp_session_t *s, fa_str_t *arg)
{
    (void) arg;
    return fa_smtp_reply(s, 250, "2.0.0 Ok");
}

static fa_int_t
fa_smtp_cmd_quit(fa_smtp_session_t *s, fa_str_t *arg)
{
    (void) arg;
    fa_smtp_priv(s)->quit = 1;
    return fa_smtp_reply(s, 221, "2.0.0 %.*s closing connection",
                         (int) fa_smtp_host(s)->len, fa_smtp_host(s)->data);
}

static fa_int_t
fa_smtp_cmd_vrfy(fa_smtp_session_t *s, fa_str_t *arg)
{
    (void) arg;
    return fa_smtp_reply(s, 252, "2.0.0 Cannot VRFY user; send mail and see");
}

static fa_int_t
fa_smtp_cmd_help(fa_smtp_session_t *s, fa_str_t *arg)
{
    (void) arg;
    return fa_smtp_reply(s, 214, "2.0.0 See RFC 5321");
}

static fa_int_t
fa_smtp_cmd_starttls(fa_smtp_session_t *s, fa_str_t *arg)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    if (arg->len) {
        return fa_smtp_bad(s, 501, "5.5.4 Syntax: STARTTLS");
    }
    if (s->c->ssl) {
        return fa_smtp_bad(s, 503, "5.5.1 Error: TLS already active");
    }
    if (p->conf->ssl == NULL) {
        return fa_smtp_bad(s, 454, "4.7.0 TLS not available");
    }
    p->tls_wait = 1;
    return fa_smtp_reply(s, 220, "2.0.0 Ready to start TLS");
}

static fa_int_t
fa_smtp_cmd_data(fa_smtp_session_t *s, fa_str_t *arg)
{
    if (arg->len) {
        return fa_smtp_bad(s, 501, "5.5.4 Syntax: DATA");
    }
    return fa_smtp_data_command(s);
}

static fa_int_t
fa_smtp_cmd_bdat(fa_smtp_session_t *s, fa_str_t *arg)
{
    return fa_smtp_bdat_command(s, arg);
}

static fa_int_t
fa_smtp_cmd_auth(fa_smtp_session_t *s, fa_str_t *arg)
{
    return fa_smtp_auth_command(s, arg);
}

static fa_int_t
fa_smtp_cmd_not_here(fa_smtp_session_t *s, fa_str_t *arg)
{
    (void) arg;
    return fa_smtp_bad(s, 502, "5.5.1 Error: command not implemented");
}

static const fa_smtp_cmd_t  fa_smtp_cmds[] = {
    { "EHLO", fa_smtp_cmd_ehlo, 0, 1 },
    { "HELO", fa_smtp_cmd_helo, 0, 1 },
    { "LHLO", fa_smtp_cmd_ehlo, 1, 0 },
    { "MAIL", fa_smtp_cmd_mail, 1, 1 },
    { "RCPT", fa_smtp_cmd_rcpt, 1, 1 },
    { "DATA", fa_smtp_cmd_data, 1, 1 },
    { "BDAT", fa_smtp_cmd_bdat, 1, 1 },
    { "RSET", fa_smtp_cmd_rset, 1, 1 },
    { "NOOP", fa_smtp_cmd_noop, 1, 1 },
    { "QUIT", fa_smtp_cmd_quit, 1, 1 },
    { "VRFY", fa_smtp_cmd_vrfy, 1, 1 },
    { "HELP", fa_smtp_cmd_help, 1, 1 },
    { "STARTTLS", fa_smtp_cmd_starttls, 0, 1 },
    { "AUTH", fa_smtp_cmd_auth, 0, 1 },
    { "EXPN", fa_smtp_cmd_not_here, 1, 1 },
    { "ETRN", fa_smtp_cmd_not_here, 0, 1 },
    { "TURN", fa_smtp_cmd_not_here, 0, 1 },
};

/* a command line: checked, split into the verb and its argument, dispatched */
fa_int_t
fa_smtp_command(fa_smtp_session_t *s, fa_line_t *line)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);
    fa_str_t        *l = &line->text, arg;
    size_t           vlen;

    if (line->too_long || (l->len > FA_SMTP_LINE_MAX
                           && !(l->len > 5 && strncasecmp((char *) l->data, "AUTH ", 5) == 0)))
    {
        fa_smtp_count_reject("line_too_long");
        return fa_smtp_bad(s, 500, "5.5.2 Error: line too long");
    }
    if (line->bare_lf && p->conf->bare_newlines == FA_SMTP_NEWLINE_REJECT) {
        fa_smtp_count_reject("bare_newline");
        return fa_smtp_bad(s, 500, "5.5.2 Error: bare <LF> received");
    }
    if (memchr(l->data, '\r', l->len)) {
        /* never a line end, whatever bare_newlines says: kept, it would
           break a header line (EHLO's name goes into Received) */
        fa_smtp_count_reject("bare_newline");
        return fa_smtp_bad(s, 500, "5.5.2 Error: bare <CR> received");
    }
    if (memchr(l->data, '\0', l->len)) {
        return fa_smtp_bad(s, 500, "5.5.2 Error: NUL byte in command");
    }
    for (vlen = 0; vlen < l->len && l->data[vlen] != ' '; vlen++) { /* the verb */ }
    arg.data = l->data + vlen + (vlen < l->len);
    arg.len = l->len - vlen - (vlen < l->len);
    for (size_t i = 0; i < fa_nelems(fa_smtp_cmds); i++) {
        const fa_smtp_cmd_t *cmd = &fa_smtp_cmds[i];
        if (strlen(cmd->name) != vlen || strncasecmp(cmd->name, (char *) l->data, vlen) != 0) {
            continue;
        }
        if (s->role == FA_SMTP_ROLE_LMTP ? !cmd->lmtp : !cmd->smtp) {
            break;
        }
        return cmd->handler(s, &arg);
    }
    fa_smtp_count_reject("unknown_command");
    return fa_smtp_bad(s, 500, "5.5.2 Error: command not recognized");
}
