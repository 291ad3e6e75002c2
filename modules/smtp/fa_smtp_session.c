/*
 * A session's life: accept, the connection limit and the connect phase,
 * the greeting (after smtp_greeting_delay, refusing early talkers), the
 * loop that reads commands and message data, replies, timeouts, STARTTLS,
 * and the end.
 *
 * The loop (fa_smtp_process) reads while the output queue is below its
 * high water mark, so a client that never reads its replies cannot make
 * the server queue without bound; it stops when a command hands the
 * session to something that answers later (a hook, the password check,
 * the store): the state is BUSY, input waits in the socket, and that
 * something calls fa_smtp_continue().  Replies are flushed when the input
 * runs dry, so pipelined commands get their replies in one write.
 */

#include "fa_smtp_int.h"
#include "fa_auth_login.h"

static void fa_smtp_process(fa_smtp_session_t *s);
static void fa_smtp_tls_done(fa_connection_t *c, fa_int_t rc);

const char *
fa_smtp_protocol_name(fa_smtp_session_t *s)
{
    static const char *const  names[] = {
        "SMTP", "ESMTP", "ESMTPS", "ESMTPS", "ESMTPA", "ESMTPA", "ESMTPSA", "ESMTPSA"
    };

    if (s->role == FA_SMTP_ROLE_LMTP) {
        return "LMTP";
    }
    /* RFC 3848: with TLS "S", with AUTH "A" */
    return names[(s->esmtp ? 1 : 0) | (s->c->ssl ? 2 : 0) | (s->user.len ? 4 : 0)];
}

fa_int_t
fa_smtp_reply(fa_smtp_session_t *s, fa_uint_t code, const char *fmt, ...)
{
    char     buf[1024];
    size_t   n;
    va_list  args;

    n = fa_snprintf(buf, sizeof(buf), "%03u ", (unsigned) code);
    va_start(args, fmt);
    n += fa_vsnprintf(buf + n, sizeof(buf) - n - 2, fmt, args);
    va_end(args);
    buf[n++] = '\r';
    buf[n++] = '\n';
    return fa_conn_write(s->c, buf, n);
}

/* a handler's answer, or the default code and text when it gave none */
fa_int_t
fa_smtp_reply_answer(fa_smtp_session_t *s, const fa_smtp_answer_t *a, fa_uint_t code,
    const char *text)
{
    fa_uint_t  c = a && a->code >= 200 && a->code <= 599 ? a->code : code;

    if (a && a->text.len) {
        /* one line: a hook's text never breaks the protocol (and has no NUL to stop at) */
        size_t n = 0;
        while (n < a->text.len && a->text.data[n] != '\r' && a->text.data[n] != '\n') {
            n++;
        }
        return fa_smtp_reply(s, c, "%.*s", (int) n, a->text.data);
    }
    return fa_smtp_reply(s, c, "%s", text);
}

/* a client mistake: after max_errors of them, the session ends */
void
fa_smtp_error(fa_smtp_session_t *s)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    if (++p->errors >= (fa_uint_t) p->conf->max_errors && !p->closing) {
        fa_log_error(FA_LOG_INFO, s->c->log, 0, "too many errors (%lu), disconnecting",
                     (unsigned long) p->errors);
        fa_smtp_count_reject("errors");
        fa_smtp_reply(s, 421, "4.7.0 %.*s Error: too many errors",
                      (int) p->conf->hostname.len, p->conf->hostname.data);
        p->closing = 1;
    }
}


/* ---- transactions ---- */

fa_int_t
fa_smtp_txn_begin(fa_smtp_session_t *s)
{
    static uint32_t   seq;
    fa_smtp_txn_t    *t;
    fa_pool_t        *pool = fa_pool_create(4096, s->c->log);

    if (pool == NULL || (t = fa_pcalloc(pool, sizeof(*t))) == NULL) {
        if (pool) {
            fa_pool_destroy(pool);
        }
        return FA_ERROR;
    }
    t->pool = pool;
    if (fa_array_init(&t->rcpts, pool, 4, sizeof(fa_smtp_rcpt_t)) != FA_OK
        || fa_array_init(&t->headers, pool, 16, sizeof(fa_smtp_header_t)) != FA_OK
        || fa_array_init(&t->added, pool, 2, sizeof(fa_smtp_header_t)) != FA_OK)
    {
        fa_pool_destroy(pool);
        return FA_ERROR;
    }
    /* time, session and a per-worker sequence: unique across workers and restarts */
    fa_snprintf(t->id, sizeof(t->id), "%08lX%06lX%04X", (unsigned long) time(NULL),
                (unsigned long) (s->c->id & 0xffffff), (unsigned) (seq++ & 0xffff));
    t->start = fa_current_msec;
    s->txn = t;
    fa_smtp_priv(s)->size_limit = fa_smtp_priv(s)->conf->max_message_size;
    return FA_OK;
}

void
fa_smtp_txn_end(fa_smtp_session_t *s)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    fa_smtp_deliver_cancel(s);
    if (s->txn) {
        fa_pool_destroy(s->txn->pool);     /* the spool's file and memory with it */
        s->txn = NULL;
    }
    s->rcpt = NULL;
    free(p->hbuf);
    p->hbuf = NULL;
    p->hlen = p->hsize = 0;
    p->chunk_left = 0;
    p->rcpt_seen = p->bdat_last = p->data_error = p->in_headers = p->bare_newline = 0;
    p->has_nul = p->too_big = 0;
}


/* ---- the loop ---- */

static void
fa_smtp_wait(fa_smtp_session_t *s)
{
    fa_smtp_priv_t   *p = fa_smtp_priv(s);
    fa_connection_t  *c = s->c;

    fa_event_add_timer(c->read, p->conf->timeout);
    if (p->state == FA_SMTP_ST_COMMAND && !p->blocked) {
        c->log->action = "waiting for a command";
        fa_conn_reader_release(c);       /* an idle session holds no buffer */
    }
}

static void
fa_smtp_begin_tls(fa_smtp_session_t *s)
{
    fa_smtp_priv(s)->tls_wait = 0;
    s->c->log->action = "in the TLS handshake";
    (void) fa_conn_starttls(s->c, fa_smtp_priv(s)->conf->ssl, fa_smtp_tls_done);
}

static void
fa_smtp_after(fa_smtp_session_t *s, fa_int_t rc)
{
    fa_smtp_priv_t   *p = fa_smtp_priv(s);
    fa_connection_t  *c = s->c;

    if (rc == FA_ERROR) {
        fa_conn_close(c);
        return;
    }
    if (p->quit || p->closing || rc == FA_DONE) {
        if (rc == FA_DONE && s->txn && p->state != FA_SMTP_ST_COMMAND) {
            fa_log_error(FA_LOG_INFO, c->log, 0, "client closed the connection in the "
                         "middle of a message: nothing stored");
        }
        fa_conn_close_after_flush(c);
        return;
    }
    if (fa_conn_flush(c) == FA_ERROR) {
        fa_conn_close(c);
        return;
    }
    if (p->tls_wait) {
        if (fa_conn_out_pending(c) == 0) {
            fa_smtp_begin_tls(s);
        }
        return;
    }
    fa_smtp_wait(s);
}

static fa_int_t
fa_smtp_step(fa_smtp_session_t *s)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);
    fa_line_t        line;
    fa_int_t         rc;

    switch (p->state) {
    case FA_SMTP_ST_DATA:
    case FA_SMTP_ST_BDAT:
        s->c->log->action = "reading message data";
        return fa_smtp_data_read(s);
    case FA_SMTP_ST_COMMAND:
    case FA_SMTP_ST_AUTH:
        rc = fa_conn_read_line(s->c, &line);
        if (rc != FA_OK) {
            return rc;
        }
        s->c->log->action = "processing a command";
        return p->state == FA_SMTP_ST_AUTH ? fa_smtp_auth_line(s, &line)
                                           : fa_smtp_command(s, &line);
    default:
        return FA_AGAIN;                 /* greeting or busy: input waits */
    }
}

static void
fa_smtp_process(fa_smtp_session_t *s)
{
    fa_smtp_priv_t   *p = fa_smtp_priv(s);
    fa_connection_t  *c = s->c;
    fa_int_t          rc = FA_OK;

    if (p->in_process) {
        return;
    }
    p->in_process = 1;
    for ( ;; ) {
        /*
         * A reply that ends the session (221, 421) or starts TLS may come
         * from a callback (the auth failure delay, a hook that waited):
         * what the client pipelined behind it is not read any more.
         */
        if (p->quit || p->closing || p->tls_wait) {
            rc = FA_OK;
            break;
        }
        if (fa_conn_out_pending(c) > c->out.high_water) {
            if (fa_conn_flush(c) == FA_ERROR) {
                rc = FA_ERROR;
                break;
            }
            if (fa_conn_out_pending(c) > c->out.high_water) {
                p->blocked = 1;           /* resumed by fa_smtp_drain */
                c->log->action = "waiting for the client to read";
                rc = FA_AGAIN;
                break;
            }
        }
        p->blocked = 0;
        if (p->state == FA_SMTP_ST_BUSY || p->state == FA_SMTP_ST_GREETING) {
            rc = FA_AGAIN;
            break;
        }
        rc = fa_smtp_step(s);
        if (rc != FA_OK) {
            break;
        }
    }
    p->in_process = 0;
    fa_smtp_after(s, rc);
}

/* a phase, the password check or the store answered: read input again */
void
fa_smtp_continue(fa_smtp_session_t *s)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    if (p->state == FA_SMTP_ST_BUSY) {
        p->state = FA_SMTP_ST_COMMAND;
    }
    if (!p->in_process) {
        fa_smtp_process(s);
    }
}

static void
fa_smtp_timed_out(fa_smtp_session_t *s)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    fa_log_error(FA_LOG_INFO, s->c->log, 0, "client timed out");
    if (p->blocked) {
        fa_conn_close(s->c);             /* it does not read: no goodbye */
        return;
    }
    fa_smtp_reply(s, 421, "4.4.2 %.*s Error: timeout exceeded",
                  (int) p->conf->hostname.len, p->conf->hostname.data);
    fa_conn_close_after_flush(s->c);
}

static void
fa_smtp_early_talker(fa_smtp_session_t *s)
{
    fa_log_error(FA_LOG_INFO, s->c->log, 0, "client talked before the greeting");
    fa_smtp_count_reject("early_talker");
    fa_event_del_timer(&fa_smtp_priv(s)->delay);
    fa_smtp_reply(s, 554, "5.5.0 %.*s Error: talked before the greeting",
                  (int) fa_smtp_priv(s)->conf->hostname.len,
                  fa_smtp_priv(s)->conf->hostname.data);
    fa_conn_close_after_flush(s->c);
}

/*
 * The peer sent its FIN and left nothing to read: it is gone, rather than
 * half-closed behind pipelined commands.  Over TLS the bytes are records
 * (a close_notify, say): the next read tells.
 */
static int
fa_smtp_client_gone(fa_connection_t *c)
{
    char     ch;
    ssize_t  n;

    if (c->ssl) {
        return 0;
    }
    n = recv(c->fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void
fa_smtp_read_handler(fa_event_t *rev)
{
    fa_connection_t    *c = rev->data;
    fa_smtp_session_t  *s = c->data;
    fa_smtp_priv_t     *p = fa_smtp_priv(s);

    if (rev->timedout) {
        rev->timedout = 0;
        if (p->state == FA_SMTP_ST_BUSY) {
            fa_event_add_timer(rev, p->conf->timeout);   /* we are the slow one */
            return;
        }
        fa_smtp_timed_out(s);
        return;
    }
    if (p->tls_wait) {
        return;                          /* input after STARTTLS waits for TLS */
    }
    if (p->waiting && rev->eof && fa_smtp_client_gone(c)) {
        /* a hook waits (DNS, a sleep) for an answer nobody will read: stop it now */
        fa_log_error(FA_LOG_INFO, c->log, 0, "client closed the connection while a %s "
                     "hook waited", fa_smtp_phase_name(p->phase));
        fa_conn_close(c);
        return;
    }
    if (p->state == FA_SMTP_ST_GREETING) {
        fa_int_t rc = fa_conn_fill(c);
        if (rc == FA_OK) {
            fa_smtp_early_talker(s);
        } else if (rc == FA_DONE || rc == FA_ERROR) {
            fa_conn_close(c);
        }
        return;
    }
    fa_smtp_process(s);
}

static void
fa_smtp_write_handler(fa_event_t *wev)
{
    fa_connection_t    *c = wev->data;
    fa_smtp_session_t  *s = c->data;
    unsigned            tls_wait = fa_smtp_priv(s)->tls_wait;

    fa_conn_write_handler(wev);
    if (!tls_wait || c->destroyed || c->error || c->data != s) {
        return;
    }
    if (fa_conn_out_pending(c) == 0) {
        fa_smtp_begin_tls(s);
    }
}

static void
fa_smtp_drain(fa_connection_t *c)
{
    fa_smtp_session_t  *s = c->data;
    fa_smtp_priv_t     *p = fa_smtp_priv(s);

    if (p->blocked && !p->in_process) {
        fa_smtp_process(s);
    }
}

static void
fa_smtp_set_handlers(fa_connection_t *c)
{
    c->read->handler = fa_smtp_read_handler;
    c->write->handler = fa_smtp_write_handler;
    c->drain_handler = fa_smtp_drain;
}

/* RFC 3207: after the handshake the session starts over, EHLO first */
static void
fa_smtp_tls_done(fa_connection_t *c, fa_int_t rc)
{
    fa_smtp_session_t  *s = c->data;

    if (rc != FA_OK) {
        fa_log_error(FA_LOG_INFO, c->log, 0, "STARTTLS handshake failed");
        fa_conn_close(c);
        return;
    }
    fa_smtp_txn_end(s);
    s->helo.len = 0;
    s->esmtp = 0;
    /* a login made in clear is forgotten too (RFC 3207 4.2): what came
       before the handshake may have been a man in the middle's */
    s->user.len = 0;
    fa_smtp_priv(s)->state = FA_SMTP_ST_COMMAND;
    fa_smtp_set_handlers(c);
    fa_smtp_process(s);
}


/* ---- start and end ---- */

static void
fa_smtp_cleanup(void *data)
{
    fa_smtp_session_t  *s = data;
    fa_smtp_priv_t     *p = fa_smtp_priv(s);

    fa_smtp_phase_cancel(s);
    fa_smtp_auth_cancel(s);
    fa_smtp_txn_end(s);
    if (p->delay.timer_set) {
        fa_event_del_timer(&p->delay);
    }
    fa_smtp_limit_leave(p->ip_slot);
    p->ip_slot = NULL;
}

static void
fa_smtp_greet(fa_smtp_session_t *s)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    fa_smtp_reply(s, 220, "%.*s %s Facteur", (int) p->conf->hostname.len,
                  p->conf->hostname.data, s->role == FA_SMTP_ROLE_LMTP ? "LMTP" : "ESMTP");
    p->state = FA_SMTP_ST_COMMAND;
    fa_smtp_process(s);
}

static void
fa_smtp_delay_handler(fa_event_t *ev)
{
    fa_smtp_session_t  *s = ev->data;

    ev->timedout = 0;
    if (fa_smtp_priv(s)->state == FA_SMTP_ST_GREETING) {
        fa_smtp_greet(s);
    }
}

static void
fa_smtp_connect_done(fa_smtp_session_t *s, fa_smtp_answer_t *a)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    if (a->verdict == FA_SMTP_REJECT || a->verdict == FA_SMTP_DEFER
        || a->verdict == FA_SMTP_DISCONNECT)
    {
        fa_smtp_count_reject("connect");
        fa_smtp_reply_answer(s, a, a->verdict == FA_SMTP_REJECT ? 554 : 421,
                             a->verdict == FA_SMTP_REJECT ? "5.7.1 Access denied"
                                                          : "4.3.0 Try again later");
        p->closing = 1;
        fa_smtp_after(s, FA_OK);
        return;
    }
    p->state = FA_SMTP_ST_GREETING;
    if (p->conf->greeting_delay > 0 && s->role != FA_SMTP_ROLE_LMTP) {
        s->c->log->action = "delaying the greeting";
        fa_event_add_timer(&p->delay, p->conf->greeting_delay);
        fa_event_add_timer(s->c->read, p->conf->timeout);
        return;
    }
    fa_smtp_greet(s);
}

static fa_smtp_session_t *
fa_smtp_session_create(fa_connection_t *c, fa_smtp_conf_t *conf)
{
    fa_smtp_session_t   *s = fa_pcalloc(c->pool, sizeof(*s));
    fa_smtp_priv_t      *p = fa_pcalloc(c->pool, sizeof(*p));
    fa_pool_cleanup_t   *cln = fa_pool_cleanup_add(c->pool, fa_smtp_cleanup, s);

    if (s == NULL || p == NULL || cln == NULL) {
        return NULL;
    }
    s->c = c;
    s->priv = p;
    s->role = conf->role;
    p->conf = conf;
    p->main = fa_smtp_main_conf();
    p->state = FA_SMTP_ST_GREETING;
    p->delay.data = s;
    p->delay.handler = fa_smtp_delay_handler;
    p->delay.log = c->log;
    /* a unix socket is no more trusted than TCP: a proxy may stand behind it */
    s->relay_client = fa_smtp_cidr_match(conf->relay_from, (struct sockaddr *) &c->sockaddr);
    c->data = s;
    return s;
}

void
fa_smtp_init_session(fa_connection_t *c)
{
    fa_smtp_conf_t     *conf = c->listening->ctx;
    fa_smtp_session_t  *s = fa_smtp_session_create(c, conf);
    int                 over;

    if (s == NULL) {
        fa_conn_close(c);
        return;
    }
    /* commands are 1000 octets (checked by the command reader); AUTH lines
       may be 12288 (RFC 4954); message data streams through the buffer */
    c->in.max_line = 12288;
    c->in.size = 16384;
    c->out.high_water = FA_SMTP_HIGH_WATER;
    c->out.low_water = FA_SMTP_LOW_WATER;
    fa_smtp_set_handlers(c);

    fa_smtp_priv(s)->ip_slot = fa_smtp_limit_enter(c, conf, &over);
    if (over) {
        fa_log_error(FA_LOG_INFO, c->log, 0, "too many connections from the client's "
                     "address (max_connections_per_ip %ld)",
                     (long) conf->max_connections_per_ip);
        fa_smtp_count_reject("connections_per_ip");
        fa_smtp_reply(s, 421, "4.7.0 %.*s Error: too many connections from your address",
                      (int) conf->hostname.len, conf->hostname.data);
        fa_conn_close_after_flush(c);
        return;
    }
    c->log->action = "in the connect phase";
    fa_smtp_phase_run(s, FA_SMTP_PHASE_CONNECT, fa_smtp_connect_done);
}
