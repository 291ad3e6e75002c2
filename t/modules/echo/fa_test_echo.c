/*
 * fa_test_echo: a tiny line protocol for the integration tests (t/echo.t,
 * t/reload.t, t/process.t, t/modules.t).  It is never installed; it exists
 * to drive the core's connection layer for real -- the line reader, counted
 * reads, the write queue and its backpressure, idle timeouts, implicit TLS,
 * STARTTLS and the busy refusal -- without depending on a mail protocol.
 *
 *   echo {
 *       server {
 *           listen 127.0.0.1:8025;
 *           listen 127.0.0.1:8465 ssl;
 *           echo_greeting "echo ready";     # default
 *           echo_timeout 60s;               # idle timeout, default
 *           echo_max_line 1000;             # default
 *           echo_starttls off;              # default; on: offer STARTTLS
 *       }
 *   }
 *
 * The session:
 *
 *   on connect     "+OK <greeting> <pid>"   (the worker's pid, so tests can
 *                                            tell workers and generations apart)
 *   QUIT           "+OK bye", close once the reply is sent
 *   STARTTLS       "+OK begin TLS", then TLS once the reply is flushed; what
 *                  the client pipelined after STARTTLS is discarded by the core
 *   LITERAL n      read exactly n bytes in counted mode, then
 *                  "+OK got n bytes sum=<sum of the byte values mod 2^32>"
 *   INFO           "+OK tls=<0|1> proto=<TLS version or -> sni=<name or ->"
 *   anything else  "+OK echo <line>"
 *   bare LF        "-ERR bare LF";   over-long line: "-ERR line too long"
 *   idle timeout   "-ERR timeout", close
 *
 * Commands are processed only while the output queue is below its high water
 * mark; above it the session stops reading and resumes from drain_handler,
 * so a client that never reads cannot make the server queue without bound.
 *
 * TLS settings (ssl_certificate, ...) are the core's, found through
 * fa_ssl_for_scope() for a server with an "ssl" listener or echo_starttls on.
 */

#include "fa_core.h"

#define FA_TEST_ECHO_DEFAULT_GREETING  "echo ready"
#define FA_TEST_ECHO_DEFAULT_TIMEOUT   60000
#define FA_TEST_ECHO_DEFAULT_MAX_LINE  1000
#define FA_TEST_ECHO_MAX_LITERAL       (1024 * 1024 * 1024)
#define FA_TEST_ECHO_HIGH_WATER        (64 * 1024)
#define FA_TEST_ECHO_LOW_WATER         (16 * 1024)

/*
 * TLS helpers are weak references: the module still loads into a facteur
 * whose TLS layer lacks one of them; STARTTLS and "ssl" listeners then
 * report that TLS is unavailable instead of the whole module failing to load.
 */
#pragma weak fa_ssl_for_scope
#pragma weak fa_ssl_protocol
#pragma weak fa_ssl_servername
#pragma weak fa_conn_starttls

typedef struct {
    fa_str_t      greeting;
    fa_msec_t     timeout;
    size_t        max_line;
    fa_int_t      starttls;
    fa_array_t   *listen;      /* of fa_listen_opt_t; this scope's own */
    fa_ssl_t     *ssl;         /* for STARTTLS; NULL if no certificate */
} fa_test_echo_conf_t;

typedef struct {
    fa_connection_t      *c;
    fa_test_echo_conf_t  *conf;
    size_t                literal_size;
    size_t                literal_left;
    uint32_t              literal_sum;
    unsigned              in_process:1;   /* guards against re-entry from drain */
    unsigned              blocked:1;      /* stopped reading: output above high water */
    unsigned              tls_wait:1;     /* STARTTLS reply queued, TLS not begun */
    unsigned              quit:1;
} fa_test_echo_session_t;

static void *fa_test_echo_create_conf(fa_conf_t *cf);
static char *fa_test_echo_merge_conf(fa_conf_t *cf, void *parent, void *child);
static fa_int_t fa_test_echo_init_conf(fa_conf_t *cf);
static char *fa_test_echo_listen(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static void fa_test_echo_init_session(fa_connection_t *c);
static void fa_test_echo_process(fa_test_echo_session_t *s);

static const fa_command_t  fa_test_echo_commands[] = {
    { "echo", "main", FA_CONF_BLOCK | FA_CONF_NOARGS, fa_conf_set_block, 0, NULL },
    { "server", "echo", FA_CONF_BLOCK | FA_CONF_NOARGS | FA_CONF_MULTI, fa_conf_set_block,
      0, NULL },
    { "listen", "echo.server", FA_CONF_1MORE | FA_CONF_MULTI, fa_test_echo_listen, 0, NULL },
    { "echo_greeting", "echo echo.server", FA_CONF_TAKE1, fa_conf_set_str,
      offsetof(fa_test_echo_conf_t, greeting), NULL },
    { "echo_timeout", "echo echo.server", FA_CONF_TAKE1, fa_conf_set_msec,
      offsetof(fa_test_echo_conf_t, timeout), NULL },
    { "echo_max_line", "echo echo.server", FA_CONF_TAKE1, fa_conf_set_size,
      offsetof(fa_test_echo_conf_t, max_line), NULL },
    { "echo_starttls", "echo echo.server", FA_CONF_FLAG, fa_conf_set_flag,
      offsetof(fa_test_echo_conf_t, starttls), NULL },
    fa_null_command
};

fa_module_t  fa_test_echo_module = {
    FA_MODULE_V1, "test_echo", FA_MODULE_PROTOCOL, fa_test_echo_commands,
    fa_test_echo_create_conf, fa_test_echo_merge_conf, fa_test_echo_init_conf,
    NULL, NULL, NULL, NULL, FA_MODULE_SPARE
};


/* configuration */

static void *
fa_test_echo_create_conf(fa_conf_t *cf)
{
    fa_test_echo_conf_t  *conf;

    conf = fa_pcalloc(cf->pool, sizeof(fa_test_echo_conf_t));
    if (conf == NULL) {
        return NULL;
    }
    conf->timeout = FA_CONF_UNSET_MSEC;
    conf->max_line = FA_CONF_UNSET_SIZE;
    conf->starttls = FA_CONF_UNSET;
    return conf;
}

static char *
fa_test_echo_merge_conf(fa_conf_t *cf, void *parent, void *child)
{
    fa_test_echo_conf_t  *prev = parent, *conf = child, unset;

    (void) cf;
    if (prev == NULL) {
        memset(&unset, 0, sizeof(unset));
        unset.timeout = FA_CONF_UNSET_MSEC;
        unset.max_line = FA_CONF_UNSET_SIZE;
        unset.starttls = FA_CONF_UNSET;
        prev = &unset;
    }
    fa_conf_merge_str(conf->greeting, prev->greeting, FA_TEST_ECHO_DEFAULT_GREETING);
    fa_conf_merge_msec(conf->timeout, prev->timeout, FA_TEST_ECHO_DEFAULT_TIMEOUT);
    fa_conf_merge_size(conf->max_line, prev->max_line, FA_TEST_ECHO_DEFAULT_MAX_LINE);
    fa_conf_merge_value(conf->starttls, prev->starttls, 0);
    return FA_CONF_OK;
}

static char *
fa_test_echo_listen(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_test_echo_conf_t  *ecf = conf;
    fa_listen_opt_t      *opt;

    (void) cmd;
    if (ecf->listen == NULL) {
        ecf->listen = fa_array_create(cf->pool, 2, sizeof(fa_listen_opt_t));
        if (ecf->listen == NULL) {
            return FA_CONF_ERROR;
        }
    }
    opt = fa_array_push(ecf->listen);
    if (opt == NULL) {
        return FA_CONF_ERROR;
    }
    /* cf->args[0] is "listen" itself */
    return fa_listen_parse(cf, &cf->args[1], cf->nargs - 1, opt);
}

/* errors found after parsing point at the server block */
static fa_int_t
fa_test_echo_scope_error(fa_conf_t *cf, fa_conf_scope_t *scope, const char *msg)
{
    cf->file = scope->file;
    cf->line = scope->line;
    fa_conf_error(cf, "%s", msg);
    return FA_ERROR;
}

static fa_int_t
fa_test_echo_add_server(fa_cycle_t *cycle, fa_conf_scope_t *scope, void *data)
{
    fa_conf_t            *cf = data;
    fa_test_echo_conf_t  *conf = fa_scope_conf(scope, fa_test_echo_module);
    fa_listen_opt_t      *opt;
    fa_listening_t       *ls;
    fa_uint_t             tls;

    (void) cycle;
    if (conf == NULL || conf->listen == NULL) {
        return fa_test_echo_scope_error(cf, scope, "no \"listen\" in the echo server");
    }
    opt = conf->listen->elts;
    tls = conf->starttls == 1;
    for (fa_uint_t i = 0; i < conf->listen->nelts; i++) {
        tls |= opt[i].ssl;
    }
    if (tls) {
        if (fa_ssl_for_scope == NULL) {
            return fa_test_echo_scope_error(cf, scope, "this facteur has no TLS");
        }
        cf->file = scope->file;       /* so its errors point at this server */
        cf->line = scope->line;
        conf->ssl = fa_ssl_for_scope(cf, scope);
        if (conf->ssl == NULL) {
            return FA_ERROR;          /* it said why */
        }
    }
    for (fa_uint_t i = 0; i < conf->listen->nelts; i++) {
        ls = fa_listen_add(cf, &opt[i], "echo", fa_test_echo_init_session, conf);
        if (ls == NULL) {
            return FA_ERROR;
        }
        fa_str_set(&ls->busy_reply, "-ERR busy\r\n");
        ls->handshake_timeout = conf->timeout;
        if (opt[i].ssl) {
            ls->ssl = conf->ssl;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_test_echo_init_conf(fa_conf_t *cf)
{
    return fa_conf_each_scope(cf->cycle, "echo.server", fa_test_echo_add_server, cf);
}


/* session */

static void
fa_test_echo_wait(fa_test_echo_session_t *s)
{
    fa_connection_t  *c = s->c;

    fa_event_add_timer(c->read, s->conf->timeout);
    if (s->literal_left == 0 && !s->blocked) {
        /* not c->idle: like a mail session, a reload must not cut it */
        c->log->action = "waiting for a command";
        fa_conn_reader_release(c);
    }
}

static fa_int_t
fa_test_echo_literal(fa_test_echo_session_t *s, fa_str_t *arg)
{
    fa_connection_t  *c = s->c;
    int64_t           n;

    n = fa_atoi(arg->data, arg->len);
    if (n < 0 || n > FA_TEST_ECHO_MAX_LITERAL) {
        return fa_conn_printf(c, "-ERR bad literal size\r\n");
    }
    s->literal_size = (size_t) n;
    s->literal_left = (size_t) n;
    s->literal_sum = 0;
    if (n == 0) {
        return fa_conn_printf(c, "+OK got 0 bytes sum=0\r\n");
    }
    c->log->action = "reading a literal";
    return FA_OK;
}

static fa_int_t
fa_test_echo_info(fa_test_echo_session_t *s)
{
    fa_connection_t  *c = s->c;
    const char       *proto = NULL, *sni = NULL;

    if (c->ssl) {
        proto = fa_ssl_protocol ? fa_ssl_protocol(c) : NULL;
        sni = fa_ssl_servername ? fa_ssl_servername(c) : NULL;
    }
    return fa_conn_printf(c, "+OK tls=%d proto=%s sni=%s\r\n", c->ssl != NULL,
                          proto ? proto : "-", sni ? sni : "-");
}

static fa_int_t
fa_test_echo_command(fa_test_echo_session_t *s, fa_line_t *line)
{
    fa_connection_t  *c = s->c;
    fa_str_t         *l = &line->text, arg;

    if (line->too_long) {
        fa_log_error(FA_LOG_INFO, c->log, 0, "client sent a line longer than %zu bytes",
                     s->conf->max_line);
        return fa_conn_printf(c, "-ERR line too long\r\n");
    }
    if (line->bare_lf) {
        return fa_conn_printf(c, "-ERR bare LF\r\n");
    }
    if (fa_str_eqi(l, "QUIT")) {
        s->quit = 1;
        return fa_conn_printf(c, "+OK bye\r\n");
    }
    if (fa_str_eqi(l, "STARTTLS")) {
        if (c->ssl) {
            return fa_conn_printf(c, "-ERR TLS already active\r\n");
        }
        if (s->conf->ssl == NULL || fa_conn_starttls == NULL) {
            return fa_conn_printf(c, "-ERR TLS not available\r\n");
        }
        s->tls_wait = 1;
        return fa_conn_printf(c, "+OK begin TLS\r\n");
    }
    if (fa_str_eqi(l, "INFO")) {
        return fa_test_echo_info(s);
    }
    if (l->len > 8 && strncasecmp((char *) l->data, "LITERAL ", 8) == 0) {
        arg.data = l->data + 8;
        arg.len = l->len - 8;
        return fa_test_echo_literal(s, &arg);
    }
    return fa_conn_printf(c, "+OK echo %.*s\r\n", (int) l->len, l->data);
}

/* returns FA_OK to go on, or the reader's FA_AGAIN, FA_DONE, FA_ERROR */
static fa_int_t
fa_test_echo_read_literal(fa_test_echo_session_t *s)
{
    fa_connection_t  *c = s->c;
    fa_str_t          chunk;
    fa_int_t          rc;

    rc = fa_conn_read_bytes(c, s->literal_left, &chunk);
    if (rc != FA_OK) {
        return rc;
    }
    for (size_t i = 0; i < chunk.len; i++) {
        s->literal_sum += chunk.data[i];
    }
    s->literal_left -= fa_min(chunk.len, s->literal_left);
    if (s->literal_left == 0) {
        return fa_conn_printf(c, "+OK got %zu bytes sum=%" PRIu32 "\r\n",
                              s->literal_size, s->literal_sum);
    }
    return FA_OK;
}

static fa_int_t
fa_test_echo_read_command(fa_test_echo_session_t *s)
{
    fa_line_t  line;
    fa_int_t   rc;

    rc = fa_conn_read_line(s->c, &line);
    if (rc != FA_OK) {
        return rc;
    }
    s->c->log->action = "processing a command";
    return fa_test_echo_command(s, &line);
}

static void
fa_test_echo_tls_done(fa_connection_t *c, fa_int_t rc);

static void
fa_test_echo_begin_tls(fa_test_echo_session_t *s)
{
    fa_connection_t  *c = s->c;

    s->tls_wait = 0;
    c->log->action = "in the TLS handshake";
    /* it calls fa_test_echo_tls_done, now or when the handshake ends */
    (void) fa_conn_starttls(c, s->conf->ssl, fa_test_echo_tls_done);
}

/* after every step that queued output: send, then decide how to go on */
static void
fa_test_echo_after(fa_test_echo_session_t *s, fa_int_t rc)
{
    fa_connection_t  *c = s->c;

    if (rc == FA_ERROR) {
        fa_conn_close(c);
        return;
    }
    if (s->quit || rc == FA_DONE) {
        fa_conn_close_after_flush(c);      /* QUIT, or the client closed its side */
        return;
    }
    if (fa_conn_flush(c) == FA_ERROR) {
        fa_conn_close(c);
        return;
    }
    if (s->tls_wait) {
        if (fa_conn_out_pending(c) == 0) {
            fa_test_echo_begin_tls(s);
        }
        return;                   /* else fa_test_echo_write_handler begins TLS */
    }
    fa_test_echo_wait(s);
}

static void
fa_test_echo_process(fa_test_echo_session_t *s)
{
    fa_connection_t  *c = s->c;
    fa_int_t          rc = FA_OK;

    if (s->in_process) {
        return;
    }
    s->in_process = 1;
    for ( ;; ) {
        if (fa_conn_out_pending(c) > c->out.high_water) {
            if (fa_conn_flush(c) == FA_ERROR) {
                rc = FA_ERROR;
                break;
            }
            if (fa_conn_out_pending(c) > c->out.high_water) {
                s->blocked = 1;   /* resumed by fa_test_echo_drain */
                c->log->action = "waiting for the client to read";
                rc = FA_AGAIN;
                break;
            }
        }
        s->blocked = 0;
        rc = s->literal_left ? fa_test_echo_read_literal(s) : fa_test_echo_read_command(s);
        if (rc != FA_OK || s->quit || s->tls_wait) {
            break;                /* STARTTLS: pipelined input is not ours to read */
        }
    }
    s->in_process = 0;
    fa_test_echo_after(s, rc);
}

static void
fa_test_echo_read_handler(fa_event_t *rev)
{
    fa_connection_t         *c = rev->data;
    fa_test_echo_session_t  *s = c->data;

    if (rev->timedout) {
        rev->timedout = 0;
        fa_log_error(FA_LOG_INFO, c->log, 0, "client timed out");
        if (s->blocked) {
            fa_conn_close(c);     /* it does not read: no point in saying goodbye */
            return;
        }
        fa_conn_printf(c, "-ERR timeout\r\n");
        fa_conn_close_after_flush(c);
        return;
    }
    if (s->tls_wait) {
        return;                   /* input after STARTTLS waits for the handshake */
    }
    fa_test_echo_process(s);
}

static void
fa_test_echo_write_handler(fa_event_t *wev)
{
    fa_connection_t         *c = wev->data;
    fa_test_echo_session_t  *s = c->data;
    unsigned                 tls_wait = s->tls_wait;

    fa_conn_write_handler(wev);
    /* the core may have closed the connection (write error, or closing) */
    if (!tls_wait || c->destroyed || c->error || c->data != s) {
        return;
    }
    if (fa_conn_out_pending(c) == 0) {
        fa_test_echo_begin_tls(s);
    }
}

static void
fa_test_echo_drain(fa_connection_t *c)
{
    fa_test_echo_session_t  *s = c->data;

    if (s->blocked && !s->in_process) {
        fa_test_echo_process(s);
    }
}

static void
fa_test_echo_set_handlers(fa_connection_t *c)
{
    c->read->handler = fa_test_echo_read_handler;
    c->write->handler = fa_test_echo_write_handler;
    c->drain_handler = fa_test_echo_drain;
}

static void
fa_test_echo_tls_done(fa_connection_t *c, fa_int_t rc)
{
    fa_test_echo_session_t  *s = c->data;

    if (rc != FA_OK) {
        fa_log_error(FA_LOG_INFO, c->log, 0, "STARTTLS handshake failed");
        fa_conn_close(c);
        return;
    }
    /* the session goes on where it was: waiting for a command, now over TLS */
    fa_test_echo_set_handlers(c);
    fa_test_echo_process(s);
}

static void
fa_test_echo_init_session(fa_connection_t *c)
{
    fa_test_echo_conf_t     *conf = c->listening->ctx;
    fa_test_echo_session_t  *s;

    s = fa_pcalloc(c->pool, sizeof(fa_test_echo_session_t));
    if (s == NULL) {
        fa_conn_close(c);
        return;
    }
    s->c = c;
    s->conf = conf;
    c->data = s;

    c->in.max_line = conf->max_line;
    c->in.size = fa_max(conf->max_line + 2, (size_t) FA_READER_DEFAULT_SIZE);
    if (c->out.high_water == 0) {
        c->out.high_water = FA_TEST_ECHO_HIGH_WATER;
        c->out.low_water = FA_TEST_ECHO_LOW_WATER;
    }
    fa_test_echo_set_handlers(c);

    if (fa_conn_printf(c, "+OK %.*s %d\r\n", (int) conf->greeting.len,
                       conf->greeting.data, (int) getpid()) == FA_ERROR)
    {
        fa_conn_close(c);
        return;
    }
    fa_test_echo_process(s);
}
