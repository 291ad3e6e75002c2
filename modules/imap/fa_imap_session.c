/*
 * An IMAP session's life: the greeting, collecting a command (its lines
 * and literals, bounded), running it, replies, timeouts, STARTTLS, and
 * the end.
 *
 * Collecting: a line that ends with a literal announcement "{n}" gets a
 * "+" continuation (not for LITERAL+ "{n+}") and the n bytes follow into
 * the command buffer; the whole command is at most FA_IMAP_COMMAND_MAX.
 * APPEND's message literal is the exception: it streams into the store
 * (fa_imap_append.c) and never sits in memory.  A literal that is too big
 * is refused before a byte of it is read when the client waits for "+";
 * a non-synchronizing one is read and dropped, or, past any reasonable
 * size, answered with BYE.
 *
 * Running: a command's handler answers now (FA_OK) or later (FA_AGAIN,
 * then fa_imap_done()); meanwhile input waits in the socket.  Output is
 * produced while the queue is below its high water mark; a long command
 * (FETCH of many messages) parks with fa_imap_wait_drain() and goes on
 * when the client has read, so a client that never reads costs a bounded
 * amount of memory.
 */

#include "fa_imap_int.h"
#include "fa_auth_login.h"

#define FA_IMAP_LITERAL_DISCARD_MAX  (64 * 1024 * 1024)

static void fa_imap_process(fa_imap_session_t *s);
static void fa_imap_tls_done(fa_connection_t *c, fa_int_t rc);


/* ---- output ---- */

fa_int_t
fa_imap_write(fa_imap_session_t *s, const void *data, size_t len)
{
    return fa_conn_write(s->c, data, len);
}

fa_int_t
fa_imap_send(fa_imap_session_t *s, const char *fmt, ...)
{
    char     buf[4096];
    size_t   n;
    va_list  args;

    va_start(args, fmt);
    n = fa_vsnprintf(buf, sizeof(buf) - 2, fmt, args);
    va_end(args);
    buf[n++] = '\r';
    buf[n++] = '\n';
    return fa_conn_write(s->c, buf, n);
}

fa_int_t
fa_imap_tagged(fa_imap_session_t *s, const char *status, const char *fmt, ...)
{
    char             buf[4096];
    size_t           n;
    va_list          args;
    const fa_str_t  *tag = s->cmd ? &s->cmd->parsed.tag : NULL;

    n = fa_snprintf(buf, sizeof(buf) - 2, "%.*s %s ", tag ? (int) tag->len : 1,
                    tag ? (char *) tag->data : "*", status);
    va_start(args, fmt);
    n += fa_vsnprintf(buf + n, sizeof(buf) - 2 - n, fmt, args);
    va_end(args);
    buf[n++] = '\r';
    buf[n++] = '\n';
    return fa_conn_write(s->c, buf, n);
}

fa_int_t
fa_imap_bad(fa_imap_session_t *s, const char *text)
{
    return fa_imap_tagged(s, "BAD", "%s", text);
}

int
fa_imap_output_full(fa_imap_session_t *s)
{
    return fa_conn_out_pending(s->c) > s->c->out.high_water;
}

void
fa_imap_logout_line(fa_imap_session_t *s, const char *why)
{
    fa_auth_client_t  client;

    if (s->user.len == 0) {
        return;
    }
    /* the logout hooks, now: user.len = 0 below keeps the cleanup from it */
    client.protocol = "imap";
    client.ip = s->c->addr_text;
    fa_auth_logout(&client, &s->user);
    fa_log_error(FA_LOG_INFO, s->c->log, 0, "imap logout: %s, user=<%.*s>, commands=%llu, "
                 "in=%llu, out=%llu, session=%.3fs", why, (int) s->user.len, s->user.data,
                 (unsigned long long) s->commands, (unsigned long long) s->c->bytes_in,
                 (unsigned long long) s->c->bytes_out,
                 (double) (fa_current_msec - s->login_msec) / 1000.0);
    s->user.len = 0;
}


/* ---- the running command ---- */

static void
fa_imap_cmd_free(fa_imap_session_t *s)
{
    s->appending = 0;
    if (s->cmd) {
        fa_pool_destroy(s->cmd->pool);
        s->cmd = NULL;
    }
}

static void
fa_imap_input_reset(fa_imap_session_t *s)
{
    s->len = 0;
    s->literal_left = 0;
    s->input = FA_IMAP_IN_COMMAND;
}

/* a command that answered later is over: its reply is written */
void
fa_imap_done(fa_imap_session_t *s)
{
    fa_imap_cmd_free(s);
    fa_imap_input_reset(s);
    if (!s->in_process) {
        fa_imap_process(s);
    }
}

void
fa_imap_read_line(fa_imap_session_t *s, fa_imap_line_pt fn)
{
    s->cmd->on_line = fn;
    s->input = FA_IMAP_IN_LINE;
}

void
fa_imap_read_stream(fa_imap_session_t *s, uint64_t size, fa_imap_stream_pt fn)
{
    s->cmd->on_stream = fn;
    s->literal_left = size;
    s->input = FA_IMAP_IN_STREAM;
}

/* call fn when the output has room (now, if it has): long commands go on there */
void
fa_imap_wait_drain(fa_imap_session_t *s, fa_imap_resume_pt fn)
{
    s->cmd->on_drain = fn;
    s->input = FA_IMAP_IN_BUSY;
}

/* a command that went to the store came back: let the loop go on */
void
fa_imap_wake(fa_imap_session_t *s)
{
    if (!s->in_process) {
        fa_imap_process(s);
    }
}

static fa_int_t
fa_imap_dispatch(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    const fa_imap_cmd_def_t  *def = fa_imap_command_find(&cmd->parsed.name);
    fa_uint_t                 need;

    if (def == NULL || (cmd->parsed.uid && !(def->flags & FA_IMAP_UID_OK))) {
        return fa_imap_bad(s, "Unknown command");
    }
    need = s->state == FA_IMAP_NOT_AUTHENTICATED ? FA_IMAP_NOT_AUTH_OK
         : s->state == FA_IMAP_AUTHENTICATED ? FA_IMAP_AUTH_OK : FA_IMAP_SELECTED_OK;
    if (!(def->flags & need)) {
        return fa_imap_bad(s, s->state == FA_IMAP_NOT_AUTHENTICATED
                              ? "Not logged in" : s->state == FA_IMAP_AUTHENTICATED
                              ? "No mailbox selected" : "Not allowed now");
    }
    cmd->def = def;
    s->commands++;
    fa_imap_count_command(def->stat ? def->stat : def->name);
    return def->handler(s, cmd);
}

static fa_imap_cmd_t *
fa_imap_cmd_new(fa_imap_session_t *s)
{
    /* small: IDLE keeps its command for as long as the client idles */
    fa_pool_t      *pool = fa_pool_create(1024, s->c->log);
    fa_imap_cmd_t  *cmd = pool ? fa_pcalloc(pool, sizeof(*cmd)) : NULL;

    if (cmd == NULL) {
        if (pool) {
            fa_pool_destroy(pool);
        }
        return NULL;
    }
    cmd->pool = pool;
    return cmd;
}

/* the collected command: parse it and run it */
static fa_int_t
fa_imap_run(fa_imap_session_t *s)
{
    const char  *why;
    fa_int_t     rc;

    if (s->cmd == NULL && (s->cmd = fa_imap_cmd_new(s)) == NULL) {
        return FA_ERROR;
    }
    if (s->cmd->data && s->cmd->parsed.name.len) {
        /* APPEND after its last message literal: the rest of its line */
        rc = s->cmd->def->handler(s, s->cmd);
    } else {
        rc = fa_imap_parse(s->cmd->pool, s->buf, s->len, &s->cmd->parsed, &why);
        if (rc == FA_ERROR) {
            return FA_ERROR;
        }
        rc = rc == FA_OK ? fa_imap_dispatch(s, s->cmd)
             : s->cmd->parsed.tag.len ? fa_imap_bad(s, why)
             : fa_imap_send(s, "* BAD %s", why);
    }
    if (rc == FA_AGAIN) {
        if (s->cmd && s->input == FA_IMAP_IN_COMMAND) {
            s->input = FA_IMAP_IN_BUSY;  /* (unless it ended already: fa_imap_done) */
        }
        return FA_OK;
    }
    fa_imap_cmd_free(s);
    fa_imap_input_reset(s);
    return rc == FA_ERROR ? FA_ERROR : FA_OK;
}


/* ---- collecting a command ---- */

static fa_int_t
fa_imap_buf_add(fa_imap_session_t *s, const u_char *p, size_t n)
{
    if (s->len + n > FA_IMAP_COMMAND_MAX) {
        return FA_DECLINED;
    }
    if (s->len + n > s->size) {
        size_t size = fa_min(fa_max(s->size * 2, s->len + n + 256), (size_t) FA_IMAP_COMMAND_MAX);
        u_char *b = realloc(s->buf, size);
        if (b == NULL) {
            return FA_ERROR;
        }
        s->buf = b;
        s->size = size;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return FA_OK;
}

/* the tag of the command being collected, for a BAD before it is parsed */
static fa_str_t
fa_imap_buf_tag(fa_imap_session_t *s)
{
    fa_str_t  tag = { 0, s->buf };
    u_char   *sp = s->buf ? memchr(s->buf, ' ', s->len) : NULL;

    if (sp && sp - s->buf <= FA_IMAP_TAG_MAX) {
        tag.len = (size_t) (sp - s->buf);
    }
    return tag;
}

static fa_int_t
fa_imap_refuse_command(fa_imap_session_t *s, const char *text)
{
    fa_str_t  tag = fa_imap_buf_tag(s);
    fa_int_t  rc;

    rc = tag.len ? fa_imap_send(s, "%.*s BAD %s", (int) tag.len, tag.data, text)
                 : fa_imap_send(s, "* BAD %s", text);
    s->len = 0;
    return rc;
}

/* is the command being collected an APPEND (its literals may be messages)? */
static int
fa_imap_buf_is_append(fa_imap_session_t *s)
{
    fa_str_t  tag = fa_imap_buf_tag(s);

    return tag.len && s->len >= tag.len + 8
           && strncasecmp((char *) s->buf + tag.len, " APPEND ", 8) == 0;
}

static fa_int_t
fa_imap_literal(fa_imap_session_t *s, uint64_t size, int sync, int binary)
{
    fa_int_t  rc;

    if (s->appending || fa_imap_buf_is_append(s)) {
        rc = fa_imap_append_literal(s, size, sync, binary);
        if (rc != FA_DECLINED) {
            return rc;                 /* streaming, or refused (it answered) */
        }
    }
    if (size + s->len > FA_IMAP_COMMAND_MAX) {
        if (sync) {
            return fa_imap_refuse_command(s, "[TOOBIG] Literal too big");
        }
        if (size > FA_IMAP_LITERAL_DISCARD_MAX) {
            fa_imap_send(s, "* BYE [TOOBIG] Literal too big");
            s->closing = 1;
            return FA_OK;
        }
        fa_imap_refuse_command(s, "[TOOBIG] Literal too big");
        s->literal_left = size;
        s->input = FA_IMAP_IN_DISCARD;
        return FA_OK;
    }
    if (sync) {
        fa_imap_send(s, "+ Ready for literal data");
    }
    s->literal_left = size;
    s->input = FA_IMAP_IN_LITERAL;
    return FA_OK;
}

static fa_int_t
fa_imap_command_line(fa_imap_session_t *s, fa_line_t *line)
{
    uint64_t  size;
    int       sync, binary;
    fa_int_t  rc;

    if (line->too_long) {
        fa_log_error(FA_LOG_INFO, s->c->log, 0, "client sent a line over %d bytes",
                     FA_IMAP_LINE_MAX);
        return fa_imap_refuse_command(s, "Line too long");
    }
    rc = fa_imap_buf_add(s, line->text.data, line->text.len);
    if (rc != FA_OK) {
        return rc == FA_ERROR ? FA_ERROR : fa_imap_refuse_command(s, "Command too long");
    }
    rc = fa_imap_literal_at_end(line->text.data, line->text.len, &size, &sync, &binary);
    if (rc == FA_ERROR) {
        return fa_imap_refuse_command(s, "Invalid literal size");
    }
    if (rc == FA_DECLINED) {
        return fa_imap_run(s);          /* the command is complete */
    }
    if (fa_imap_buf_add(s, (u_char *) "\r\n", 2) != FA_OK) {
        return fa_imap_refuse_command(s, "Command too long");
    }
    return fa_imap_literal(s, size, sync, binary);
}

/* literal bytes: into the command, to a stream, or dropped */
static fa_int_t
fa_imap_literal_bytes(fa_imap_session_t *s)
{
    fa_str_t  chunk;
    fa_int_t  rc;

    rc = fa_conn_read_bytes(s->c, (size_t) fa_min(s->literal_left, (uint64_t) SIZE_MAX),
                            &chunk);
    if (rc != FA_OK) {
        return rc;
    }
    s->literal_left -= chunk.len;
    switch (s->input) {
    case FA_IMAP_IN_LITERAL:
        if (fa_imap_buf_add(s, chunk.data, chunk.len) != FA_OK) {
            return FA_ERROR;
        }
        break;
    case FA_IMAP_IN_STREAM:
        rc = s->cmd->on_stream(s, chunk.data, chunk.len, s->literal_left == 0);
        if (rc != FA_OK) {
            return rc;
        }
        break;
    default:
        break;
    }
    if (s->literal_left == 0 && s->input != FA_IMAP_IN_BUSY) {
        s->input = FA_IMAP_IN_COMMAND;  /* the command's line goes on */
    }
    return FA_OK;
}

static fa_int_t
fa_imap_step(fa_imap_session_t *s)
{
    fa_line_t  line;
    fa_int_t   rc;

    switch (s->input) {
    case FA_IMAP_IN_LITERAL:
    case FA_IMAP_IN_STREAM:
    case FA_IMAP_IN_DISCARD:
        s->c->log->action = "reading a literal";
        return fa_imap_literal_bytes(s);
    case FA_IMAP_IN_COMMAND:
    case FA_IMAP_IN_LINE:
        rc = fa_conn_read_line(s->c, &line);
        if (rc != FA_OK) {
            return rc;
        }
        s->c->log->action = "processing a command";
        if (s->input == FA_IMAP_IN_LINE) {
            return s->cmd->on_line(s, &line);
        }
        return fa_imap_command_line(s, &line);
    default:
        return FA_AGAIN;
    }
}


/* ---- the loop ---- */

static void
fa_imap_wait(fa_imap_session_t *s)
{
    fa_connection_t  *c = s->c;

    fa_event_add_timer(c->read, s->conf->timeout);
    if ((s->input == FA_IMAP_IN_COMMAND || s->input == FA_IMAP_IN_LINE) && s->len == 0
        && !s->blocked)
    {
        /* an idle session (IDLE included) holds no buffers: thousands wait */
        c->log->action = s->idling ? "idling" : "waiting for a command";
        fa_conn_reader_release(c);
        free(s->buf);
        s->buf = NULL;
        s->size = 0;
    }
}

static void
fa_imap_begin_tls(fa_imap_session_t *s)
{
    s->tls_wait = 0;
    s->c->log->action = "in the TLS handshake";
    (void) fa_conn_starttls(s->c, s->conf->ssl, fa_imap_tls_done);
}

static void
fa_imap_after(fa_imap_session_t *s, fa_int_t rc)
{
    fa_connection_t  *c = s->c;

    if (rc == FA_ERROR) {
        fa_imap_logout_line(s, "error");
        fa_conn_close(c);
        return;
    }
    if (s->closing || rc == FA_DONE) {
        fa_imap_logout_line(s, rc == FA_DONE ? "disconnected" : "logout");
        fa_conn_close_after_flush(c);
        return;
    }
    if (fa_conn_flush(c) == FA_ERROR) {
        fa_imap_logout_line(s, "disconnected");
        fa_conn_close(c);
        return;
    }
    if (s->tls_wait) {
        if (fa_conn_out_pending(c) == 0) {
            fa_imap_begin_tls(s);
        }
        return;
    }
    fa_imap_wait(s);
}

static void
fa_imap_process(fa_imap_session_t *s)
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
                s->blocked = 1;          /* fa_imap_drain goes on */
                c->log->action = "waiting for the client to read";
                rc = FA_AGAIN;
                break;
            }
        }
        s->blocked = 0;
        if (s->input == FA_IMAP_IN_BUSY) {
            if (s->cmd == NULL || s->cmd->on_drain == NULL) {
                rc = FA_AGAIN;           /* the store or a timer will wake us */
                break;
            }
            /* a long command (FETCH) produces more now that there is room */
            fa_imap_resume_pt fn = s->cmd->on_drain;
            s->cmd->on_drain = NULL;
            rc = fn(s);
            if (rc == FA_OK) {
                fa_imap_cmd_free(s);     /* it wrote its tagged reply */
                fa_imap_input_reset(s);
            } else if (rc != FA_AGAIN) {
                break;
            }
            continue;
        }
        rc = fa_imap_step(s);
        if (rc != FA_OK || s->closing || s->tls_wait) {
            break;
        }
    }
    s->in_process = 0;
    fa_imap_after(s, rc);
}

static void
fa_imap_read_handler(fa_event_t *rev)
{
    fa_connection_t    *c = rev->data;
    fa_imap_session_t  *s = c->data;

    if (rev->timedout) {
        rev->timedout = 0;
        if (s->input == FA_IMAP_IN_BUSY && !s->blocked) {
            fa_event_add_timer(rev, s->conf->timeout);   /* we are the slow one */
            return;
        }
        fa_log_error(FA_LOG_INFO, c->log, 0, "client timed out");
        if (!s->blocked) {
            fa_imap_send(s, "* BYE Autologout; idle for too long");
        }
        fa_imap_logout_line(s, "timeout");
        if (s->blocked) {
            fa_conn_close(c);
        } else {
            fa_conn_close_after_flush(c);
        }
        return;
    }
    if (s->tls_wait) {
        return;
    }
    fa_imap_process(s);
}

static void
fa_imap_write_handler(fa_event_t *wev)
{
    fa_connection_t    *c = wev->data;
    fa_imap_session_t  *s = c->data;
    unsigned            tls_wait = s->tls_wait;

    fa_conn_write_handler(wev);
    if (!tls_wait || c->destroyed || c->error || c->data != s) {
        return;
    }
    if (fa_conn_out_pending(c) == 0) {
        fa_imap_begin_tls(s);
    }
}

static void
fa_imap_drain(fa_connection_t *c)
{
    fa_imap_session_t  *s = c->data;

    if ((s->blocked || (s->cmd && s->cmd->on_drain)) && !s->in_process) {
        fa_imap_process(s);
    }
}

static void
fa_imap_set_handlers(fa_connection_t *c)
{
    c->read->handler = fa_imap_read_handler;
    c->write->handler = fa_imap_write_handler;
    c->drain_handler = fa_imap_drain;
}

static void
fa_imap_tls_done(fa_connection_t *c, fa_int_t rc)
{
    fa_imap_session_t  *s = c->data;

    if (rc != FA_OK) {
        fa_log_error(FA_LOG_INFO, c->log, 0, "STARTTLS handshake failed");
        fa_conn_close(c);
        return;
    }
    fa_imap_set_handlers(c);
    fa_imap_input_reset(s);
    fa_imap_process(s);
}

/* STARTTLS said OK: the handshake starts once that reply is out */
void
fa_imap_starttls_begin(fa_imap_session_t *s)
{
    s->tls_wait = 1;
}


/* ---- start and end ---- */

/* the last of it: after the connection, and after every store call answered */
static void
fa_imap_release(fa_imap_session_t *s)
{
    fa_imap_view_free(s);
    fa_imap_cmd_free(s);
    free(s->buf);
    free(s);
}

/* a store call: its callback will get the session (FA_AGAIN: it is counted) */
fa_int_t
fa_imap_call(fa_imap_session_t *s, fa_int_t rc)
{
    s->in_flight += rc == FA_AGAIN;
    return rc;
}

/*
 * The first thing every store callback does: 1 when the client went away
 * meanwhile -- the callback does nothing more, and the last one frees the
 * session.
 */
int
fa_imap_answered(fa_imap_session_t *s)
{
    s->in_flight--;
    if (!s->gone) {
        return 0;
    }
    if (s->in_flight == 0) {
        fa_imap_release(s);
    }
    return 1;
}

static void
fa_imap_cleanup(void *data)
{
    fa_imap_session_t  *s = data;

    if (fa_imap_stat_bytes_in) {
        fa_stat_add(fa_imap_stat_bytes_in, (int64_t) s->c->bytes_in);
        fa_stat_add(fa_imap_stat_bytes_out, (int64_t) s->c->bytes_out);
    }
    fa_imap_auth_cancel(s);
    if (s->delay.timer_set) {
        fa_event_del_timer(&s->delay);
    }
    if (s->view && s->view->watch) {
        s->store->backend->unwatch(s->view->watch);
        s->view->watch = NULL;
    }
    if (s->user.len) {
        fa_auth_client_t  client = { "imap", s->c->addr_text };
        fa_auth_logout(&client, &s->user);          /* the logout hooks */
    }
    s->c = NULL;                        /* the connection and its pool go now */
    s->user.len = 0;
    if (s->in_flight) {
        s->gone = 1;                    /* the store still holds our pools: later */
        return;
    }
    fa_imap_release(s);
}

void
fa_imap_init_session(fa_connection_t *c)
{
    fa_imap_conf_t      *conf = c->listening->ctx;
    fa_imap_session_t   *s = fa_calloc(sizeof(*s), c->log);   /* may outlive c */
    char                 caps[1024];

    if (s == NULL || fa_pool_cleanup_add(c->pool, fa_imap_cleanup, s) == NULL) {
        free(s);
        fa_conn_close(c);
        return;
    }
    s->c = c;
    s->conf = conf;
    s->delay.data = s;
    s->delay.log = c->log;
    c->data = s;
    c->in.max_line = FA_IMAP_LINE_MAX;
    c->in.size = FA_IMAP_LINE_MAX + 2;
    c->out.high_water = FA_IMAP_HIGH_WATER;
    c->out.low_water = FA_IMAP_LOW_WATER;
    fa_imap_set_handlers(c);

    fa_imap_capabilities(s, caps, sizeof(caps));
    if (fa_imap_send(s, "* OK [CAPABILITY %s] Facteur ready.", caps) == FA_ERROR) {
        fa_conn_close(c);
        return;
    }
    fa_imap_process(s);
}
