/*
 * A POP3 session's life: the greeting, the loop that reads commands and
 * streams RETR and TOP out, replies, timeouts, STLS and the end.
 *
 * Commands are read while the output queue is below its high water mark
 * (PIPELINING: replies go out in order, flushed when the input runs dry);
 * a message being sent is read from the store 64 KB at a time, only as
 * fast as the client takes it, so a client that never reads costs a
 * bounded amount of memory.  A command that waits for the store or the
 * password check sets busy; input then waits in the socket.
 *
 * The session struct is malloc'd: it outlives the connection while a store
 * call is pending (fa_pop3_call / fa_pop3_answered), as IMAP's does.
 */

#include "fa_pop3_int.h"
#include "fa_auth_login.h"

static void fa_pop3_process(fa_pop3_session_t *s);
static void fa_pop3_tls_done(fa_connection_t *c, fa_int_t rc);

static fa_int_t
fa_pop3_vreply(fa_pop3_session_t *s, const char *status, const char *fmt, va_list args)
{
    char    buf[1024];
    size_t  n = fa_snprintf(buf, sizeof(buf), "%s", status);

    n += fa_vsnprintf(buf + n, sizeof(buf) - n - 2, fmt, args);
    buf[n++] = '\r';
    buf[n++] = '\n';
    return fa_conn_write(s->c, buf, n);
}

fa_int_t
fa_pop3_ok(fa_pop3_session_t *s, const char *fmt, ...)
{
    va_list   args;
    fa_int_t  rc;

    va_start(args, fmt);
    rc = fa_pop3_vreply(s, "+OK ", fmt, args);
    va_end(args);
    return rc;
}

fa_int_t
fa_pop3_err(fa_pop3_session_t *s, const char *fmt, ...)
{
    va_list   args;
    fa_int_t  rc;

    va_start(args, fmt);
    rc = fa_pop3_vreply(s, "-ERR ", fmt, args);
    va_end(args);
    return rc;
}

void
fa_pop3_logout_line(fa_pop3_session_t *s, const char *why)
{
    fa_auth_client_t  client = { "pop3", s->c->addr_text };
    fa_str_t          user = { s->user_len, (u_char *) s->user };

    if (s->user_len == 0) {
        return;
    }
    /* the logout hooks, now: user_len = 0 below keeps the cleanup from it */
    fa_auth_logout(&client, &user);
    fa_log_error(FA_LOG_INFO, s->c->log, 0, "pop3 logout: %s, user=<%s>, retr=%lu/%llu, "
                 "del=%lu/%lu, in=%llu, out=%llu, session=%.3fs", why, s->user,
                 (unsigned long) s->retrieved, (unsigned long long) s->retrieved_bytes,
                 (unsigned long) s->deleted, (unsigned long) s->n,
                 (unsigned long long) s->c->bytes_in, (unsigned long long) s->c->bytes_out,
                 (double) (fa_current_msec - s->login_msec) / 1000.0);
    s->user_len = 0;
}


/* ---- store calls that may outlive the connection ---- */

static void
fa_pop3_release(fa_pop3_session_t *s)
{
    fa_pop3_maildrop_close(s);
    fa_pop3_unlock(s);
    free(s);
}

fa_int_t
fa_pop3_call(fa_pop3_session_t *s, fa_int_t rc)
{
    s->in_flight += rc == FA_AGAIN;
    return rc;
}

int
fa_pop3_answered(fa_pop3_session_t *s)
{
    s->in_flight--;
    if (!s->gone) {
        return 0;
    }
    if (s->in_flight == 0) {
        fa_pop3_release(s);
    }
    return 1;
}


/* ---- the loop ---- */

static void
fa_pop3_wait(fa_pop3_session_t *s)
{
    fa_connection_t  *c = s->c;

    fa_event_add_timer(c->read, s->conf->timeout);
    if (!s->busy && !s->blocked && s->stream == NULL) {
        c->log->action = "waiting for a command";
        fa_conn_reader_release(c);
    }
}

static void
fa_pop3_after(fa_pop3_session_t *s, fa_int_t rc)
{
    fa_connection_t  *c = s->c;

    if (rc == FA_ERROR) {
        fa_pop3_logout_line(s, "error");
        fa_conn_close(c);
        return;
    }
    if (s->closing || rc == FA_DONE) {
        /* a dropped connection deletes nothing: only QUIT does (UPDATE) */
        fa_pop3_logout_line(s, rc == FA_DONE ? "disconnected" : "logout");
        fa_conn_close_after_flush(c);
        return;
    }
    if (fa_conn_flush(c) == FA_ERROR) {
        fa_pop3_logout_line(s, "disconnected");
        fa_conn_close(c);
        return;
    }
    if (s->tls_wait) {
        if (fa_conn_out_pending(c) == 0) {
            s->tls_wait = 0;
            c->log->action = "in the TLS handshake";
            (void) fa_conn_starttls(c, s->conf->ssl, fa_pop3_tls_done);
        }
        return;
    }
    fa_pop3_wait(s);
}

static fa_int_t
fa_pop3_step(fa_pop3_session_t *s)
{
    fa_line_t  line;
    fa_int_t   rc;

    if (s->stream) {
        s->c->log->action = "sending a message";
        return fa_pop3_stream(s);
    }
    rc = fa_conn_read_line(s->c, &line);
    if (rc != FA_OK) {
        return rc;
    }
    s->c->log->action = "processing a command";
    return fa_pop3_command(s, &line);
}

static void
fa_pop3_process(fa_pop3_session_t *s)
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
                s->blocked = 1;
                c->log->action = "waiting for the client to read";
                rc = FA_AGAIN;
                break;
            }
        }
        s->blocked = 0;
        if (s->busy) {
            rc = FA_AGAIN;
            break;
        }
        if (s->closing) {
            break;                       /* answered last: nothing after it is read */
        }
        rc = fa_pop3_step(s);
        if (rc != FA_OK || s->closing || s->tls_wait) {
            break;
        }
    }
    s->in_process = 0;
    fa_pop3_after(s, rc);
}

void
fa_pop3_continue(fa_pop3_session_t *s)
{
    s->busy = 0;
    if (!s->in_process) {
        fa_pop3_process(s);
    }
}

static void
fa_pop3_read_handler(fa_event_t *rev)
{
    fa_connection_t    *c = rev->data;
    fa_pop3_session_t  *s = c->data;

    if (rev->timedout) {
        rev->timedout = 0;
        if (s->busy && !s->blocked) {
            fa_event_add_timer(rev, s->conf->timeout);     /* we are the slow one */
            return;
        }
        fa_log_error(FA_LOG_INFO, c->log, 0, "client timed out");
        fa_pop3_logout_line(s, "timeout");
        if (s->blocked) {
            fa_conn_close(c);
            return;
        }
        fa_pop3_err(s, "Disconnected for inactivity");
        fa_conn_close_after_flush(c);
        return;
    }
    if (!s->tls_wait) {
        fa_pop3_process(s);
    }
}

static void
fa_pop3_write_handler(fa_event_t *wev)
{
    fa_connection_t    *c = wev->data;
    fa_pop3_session_t  *s = c->data;
    unsigned            tls_wait = s->tls_wait;

    fa_conn_write_handler(wev);
    if (!tls_wait || c->destroyed || c->error || c->data != s) {
        return;
    }
    if (fa_conn_out_pending(c) == 0) {
        s->tls_wait = 0;
        (void) fa_conn_starttls(c, s->conf->ssl, fa_pop3_tls_done);
    }
}

/* the client read: a message being sent goes on, or commands are read again */
static void
fa_pop3_drain(fa_connection_t *c)
{
    fa_pop3_session_t  *s = c->data;

    if ((s->blocked || s->stream) && !s->in_process && !s->busy) {
        fa_pop3_process(s);
    }
}

static void
fa_pop3_set_handlers(fa_connection_t *c)
{
    c->read->handler = fa_pop3_read_handler;
    c->write->handler = fa_pop3_write_handler;
    c->drain_handler = fa_pop3_drain;
}

void
fa_pop3_starttls(fa_pop3_session_t *s)
{
    s->tls_wait = 1;
}

static void
fa_pop3_tls_done(fa_connection_t *c, fa_int_t rc)
{
    fa_pop3_session_t  *s = c->data;

    if (rc != FA_OK) {
        fa_log_error(FA_LOG_INFO, c->log, 0, "STLS handshake failed");
        fa_conn_close(c);
        return;
    }
    s->login[0] = '\0';                  /* nothing said before TLS counts */
    fa_pop3_set_handlers(c);
    fa_pop3_process(s);
}


/* ---- start and end ---- */

static void
fa_pop3_cleanup(void *data)
{
    fa_pop3_session_t  *s = data;

    fa_pop3_auth_cancel(s);
    if (s->delay.timer_set) {
        fa_event_del_timer(&s->delay);
    }
    if (s->stream) {
        s->store->backend->message_close(s->stream);
        s->stream = NULL;
    }
    if (s->user_len) {
        fa_auth_client_t  client = { "pop3", s->c->addr_text };
        fa_str_t          user = { s->user_len, (u_char *) s->user };
        fa_auth_logout(&client, &user);             /* the logout hooks */
    }
    s->c = NULL;
    if (s->in_flight) {
        s->gone = 1;                     /* the store still holds our pool: later */
        return;
    }
    fa_pop3_release(s);
}

void
fa_pop3_init_session(fa_connection_t *c)
{
    fa_pop3_conf_t     *conf = c->listening->ctx;
    fa_pop3_session_t  *s = fa_calloc(sizeof(*s), c->log);

    if (s == NULL || fa_pool_cleanup_add(c->pool, fa_pop3_cleanup, s) == NULL) {
        free(s);
        fa_conn_close(c);
        return;
    }
    s->c = c;
    s->conf = conf;
    s->lock_fd = -1;
    s->delay.data = s;
    s->delay.log = c->log;
    c->data = s;
    c->in.max_line = FA_POP3_LINE_MAX;
    c->in.size = FA_POP3_LINE_MAX + 2;
    c->out.high_water = FA_POP3_HIGH_WATER;
    c->out.low_water = FA_POP3_LOW_WATER;
    fa_pop3_set_handlers(c);
    if (fa_pop3_ok(s, "Facteur ready.") == FA_ERROR) {
        fa_conn_close(c);
        return;
    }
    fa_pop3_process(s);
}
