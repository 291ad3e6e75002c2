/*
 * Connections (see fa_connection.h): fixed slots per worker, closing, the
 * chunked write queue and plain socket I/O.  The reader lives in
 * fa_conn_reader.c.
 *
 * Memory is bounded by design.  The writer holds only what the protocol
 * queued, in malloc'd chunks (not pool memory, which would only be given
 * back at close) freed as soon as they are sent; the protocol is told to
 * stop producing (out.high_water) and when to resume (drain_handler).
 */

#include "fa_core.h"

#define FA_CONNECTIONS_DEFAULT   512
#define FA_WRITER_HIGH_WATER     (256 * 1024)
#define FA_WRITER_LOW_WATER      (32 * 1024)
#define FA_CLOSING_DRAIN_MAX     (64 * 1024)

static fa_connection_t  *fa_conns;
static fa_event_t       *fa_conn_events;
static fa_connection_t  *fa_conn_free_list;
static fa_uint_t         fa_conn_used;
static fa_uint_t         fa_conn_total;      /* worker_connections */
static fa_uint_t         fa_conn_untouched;  /* slots from here on were never used */
static fa_queue_t        fa_conn_active_q = { &fa_conn_active_q, &fa_conn_active_q };

static void fa_conn_out_free(fa_connection_t *c);

/* slots */

fa_int_t
fa_connections_init(fa_cycle_t *cycle, fa_uint_t n)
{
    fa_log_t         *log = (cycle && cycle->log) ? cycle->log : &fa_log_stderr;
    n = n ? n : FA_CONNECTIONS_DEFAULT;
    if (fa_conn_used) {
        fa_log_error(FA_LOG_ALERT, log, 0, "%lu connections still open",
                     (unsigned long) fa_conn_used);
        return FA_ERROR;
    }
    free(fa_conns);
    free(fa_conn_events);
    fa_conns = NULL;
    fa_conn_events = NULL;
    fa_conn_free_list = NULL;

    if (n > SIZE_MAX / (2 * sizeof(fa_connection_t))) {
        fa_log_error(FA_LOG_EMERG, log, 0, "worker_connections %lu is too large",
                     (unsigned long) n);
        return FA_ERROR;
    }
    fa_conns = fa_calloc(n * sizeof(fa_connection_t), log);
    fa_conn_events = fa_calloc(2 * n * sizeof(fa_event_t), log);
    if (fa_conns == NULL || fa_conn_events == NULL) {
        free(fa_conns);
        free(fa_conn_events);
        fa_conns = NULL;
        fa_conn_events = NULL;
        return FA_ERROR;
    }

    /*
     * Slots are set up on first use, not here: the arrays come from calloc,
     * whose large blocks are fresh zero pages, so worker_connections slots
     * that never see a client cost address space, not memory.
     */
    fa_conn_total = n;
    fa_conn_untouched = 0;
    fa_queue_init(&fa_conn_active_q);
    return FA_OK;
}

static void
fa_connection_setup(fa_connection_t *c, int fd, fa_log_t *log)
{
    fa_event_t  *rev = c->read, *wev = c->write;
    unsigned     instance = c->instance;

    memset(c, 0, sizeof(fa_connection_t));
    memset(rev, 0, sizeof(fa_event_t));
    memset(wev, 0, sizeof(fa_event_t));

    c->read = rev;
    c->write = wev;
    c->instance = !instance;         /* events queued for the previous user are stale */
    c->fd = fd;
    c->id = fa_stats_next_session_id();
    c->start_msec = fa_current_msec;
    c->recv = fa_unix_recv;
    c->send = fa_unix_send;

    c->log_storage = *log;
    c->log = &c->log_storage;
    c->log->handler = fa_conn_log_handler;
    c->log->data = c;
    c->log->session = c->id;

    rev->data = c;
    rev->log = c->log;
    wev->data = c;
    wev->log = c->log;
    wev->write = 1;
    wev->handler = fa_conn_write_handler;

    c->in.size = FA_READER_DEFAULT_SIZE;
    c->in.max_line = FA_READER_DEFAULT_SIZE - 2;
    c->out.high_water = FA_WRITER_HIGH_WATER;
    c->out.low_water = FA_WRITER_LOW_WATER;
}

fa_connection_t *
fa_connection_get(int fd, fa_log_t *log)
{
    fa_connection_t  *c = fa_conn_free_list;

    if (c) {
        fa_conn_free_list = c->next_free;
    } else if (fa_conn_untouched < fa_conn_total) {
        c = &fa_conns[fa_conn_untouched];
        c->read = &fa_conn_events[2 * fa_conn_untouched];
        c->write = &fa_conn_events[2 * fa_conn_untouched + 1];
        fa_conn_untouched++;
    } else {
        return NULL;
    }
    fa_connection_setup(c, fd, log ? log : &fa_log_stderr);

    c->pool = fa_pool_create(FA_POOL_DEFAULT_SIZE, c->log);
    if (c->pool == NULL) {
        c->fd = -1;
        c->destroyed = 1;
        c->next_free = fa_conn_free_list;
        fa_conn_free_list = c;
        return NULL;
    }

    fa_queue_insert_tail(&fa_conn_active_q, &c->link);
    fa_conn_used++;
    if (fa_core_stats.active) {
        fa_stat_inc(fa_core_stats.active);
    }
    return c;
}

/*
 * Give the slot back without closing the fd (the caller owns it, e.g. when
 * setting up an accepted socket failed).  The pool goes with the slot.
 */
void
fa_connection_free(fa_connection_t *c)
{
    fa_pool_t  *pool;

    if (c->destroyed) {
        return;
    }
    c->destroyed = 1;                /* a pool cleanup re-entering close is a no-op */
    fa_queue_remove(&c->link);

    pool = c->pool;
    c->pool = NULL;
    fa_pool_destroy(pool);

    /* after the cleanups: they might have touched the events */
    fa_event_del_timer(c->read);
    fa_event_del_timer(c->write);
    fa_event_delete_posted(c->read);
    fa_event_delete_posted(c->write);
    fa_conn_reader_discard(c);
    fa_conn_reader_release(c);
    fa_conn_out_free(c);

    c->fd = -1;
    c->data = NULL;
    c->next_free = fa_conn_free_list;
    fa_conn_free_list = c;
    fa_conn_used--;
    if (fa_core_stats.active) {
        fa_stat_dec(fa_core_stats.active);
    }
}

fa_uint_t
fa_connections_active(void)
{
    return fa_conn_used;
}

/*
 * Walk a private copy of the active list: closing one connection may close
 * others (pool cleanups), and removing any of them from whichever list holds
 * it is safe with an intrusive queue.
 */
void
fa_connections_close_idle(void)
{
    fa_queue_t        batch, *q;
    fa_connection_t  *c;

    if (fa_queue_empty(&fa_conn_active_q)) {
        return;
    }
    batch.next = fa_conn_active_q.next;
    batch.prev = fa_conn_active_q.prev;
    batch.next->prev = &batch;
    batch.prev->next = &batch;
    fa_queue_init(&fa_conn_active_q);

    while (!fa_queue_empty(&batch)) {
        q = fa_queue_head(&batch);
        fa_queue_remove(q);
        fa_queue_insert_tail(&fa_conn_active_q, q);
        c = fa_queue_data(q, fa_connection_t, link);
        if (c->idle) {
            fa_conn_close(c);
        }
    }
}

void
fa_connections_close_all(void)
{
    while (!fa_queue_empty(&fa_conn_active_q)) {
        fa_conn_close(fa_queue_data(fa_queue_head(&fa_conn_active_q),
                                    fa_connection_t, link));
    }
}

/* closing */

void
fa_conn_close(fa_connection_t *c)
{
    int  fd = c->fd;

    if (c->destroyed) {
        return;
    }
    fa_event_del_conn(c);
    fa_event_del_timer(c->read);
    fa_event_del_timer(c->write);
    fa_event_delete_posted(c->read);
    fa_event_delete_posted(c->write);
    c->read->closed = 1;
    c->write->closed = 1;

    if (c->ssl) {
        fa_ssl_free_connection(c);
        c->ssl = NULL;
    }

    c->fd = -1;
    /* on Linux the fd is released even when close() reports EINTR */
    if (fd != -1 && close(fd) == -1 && errno != EINTR) {
        fa_log_error(FA_LOG_ALERT, c->log, errno, "close(%d) failed", fd);
    }
    fa_connection_free(c);
}

/*
 * While closing, input is read and thrown away: closing a socket with unread
 * data makes the kernel send a RST, which can destroy our last reply (the
 * "221 bye") before the client reads it.  The discarding is bounded.
 */
static void
fa_conn_closing_read_handler(fa_event_t *rev)
{
    fa_connection_t  *c = rev->data;
    u_char            buf[4096];
    ssize_t           n;

    if (rev->timedout) {
        fa_conn_close(c);
        return;
    }
    for (size_t total = 0; total < FA_CLOSING_DRAIN_MAX; total += (size_t) n) {
        n = c->recv(c, buf, sizeof(buf));
        if (n == FA_AGAIN || n == 0) {
            return;                  /* after EOF the peer may still be reading */
        }
        if (n < 0) {
            fa_conn_close(c);
            return;
        }
    }
    fa_conn_close(c);                /* a flood while we say goodbye */
}

void
fa_conn_close_after_flush(fa_connection_t *c)
{
    if (c->destroyed) {
        return;
    }
    c->closing = 1;
    c->drain_handler = NULL;         /* the session produces nothing more */
    c->read->handler = fa_conn_closing_read_handler;
    c->write->handler = fa_conn_write_handler;

    if (fa_conn_flush(c) != FA_AGAIN) {
        fa_conn_close(c);
    }
}

/* writer */

static fa_out_chunk_t *
fa_conn_out_chunk(fa_connection_t *c, size_t want)
{
    fa_out_chunk_t  *ch;
    size_t           size = fa_max(want, (size_t) FA_WRITER_CHUNK_SIZE);

    if (size > SIZE_MAX - sizeof(fa_out_chunk_t)) {
        return NULL;
    }
    ch = fa_alloc(sizeof(fa_out_chunk_t) + size, c->log);
    if (ch == NULL) {
        return NULL;
    }
    ch->next = NULL;
    ch->pos = 0;
    ch->last = 0;
    ch->size = size;
    if (c->out.tail) {
        c->out.tail->next = ch;
    } else {
        c->out.head = ch;
    }
    c->out.tail = ch;
    return ch;
}

static void
fa_conn_out_free(fa_connection_t *c)
{
    fa_out_chunk_t  *ch, *next;

    for (ch = c->out.head; ch; ch = next) {
        next = ch->next;
        free(ch);
    }
    c->out.head = NULL;
    c->out.tail = NULL;
    c->out.pending = 0;
}

fa_int_t
fa_conn_write(fa_connection_t *c, const void *data, size_t len)
{
    const u_char    *p = data;
    fa_out_chunk_t  *t;
    size_t           n;

    if (c->fd == -1 || c->error) {
        return FA_ERROR;
    }
    while (len > 0) {
        t = c->out.tail;
        if (t == NULL || t->last == t->size) {
            t = fa_conn_out_chunk(c, len);
            if (t == NULL) {
                c->error = 1;        /* half a reply queued: the stream is lost */
                return FA_ERROR;
            }
        }
        n = fa_min(len, t->size - t->last);
        memcpy(t->data + t->last, p, n);
        t->last += n;
        c->out.pending += n;
        p += n;
        len -= n;
    }
    return FA_OK;
}

fa_int_t
fa_conn_printf(fa_connection_t *c, const char *fmt, ...)
{
    fa_out_chunk_t  *t = c->out.tail;
    size_t           room = t ? t->size - t->last : 0;
    char             stack[1024], *buf;
    va_list          args;
    fa_int_t         rc;
    int              n;

    if (c->fd == -1 || c->error) {
        return FA_ERROR;
    }

    /* the common case: a short reply formatted in place */
    va_start(args, fmt);
    n = vsnprintf(room ? (char *) t->data + t->last : stack,
                  room ? room : sizeof(stack), fmt, args);
    va_end(args);
    if (n < 0) {
        return FA_ERROR;
    }
    if (room && (size_t) n < room) {
        t->last += (size_t) n;
        c->out.pending += (size_t) n;
        return FA_OK;
    }

    /* too long for the tail chunk: format whole into a temporary buffer */
    buf = ((size_t) n < sizeof(stack)) ? stack : fa_alloc((size_t) n + 1, c->log);
    if (buf == NULL) {
        c->error = 1;
        return FA_ERROR;
    }
    if (room || buf != stack) {      /* else the first pass already wrote it */
        va_start(args, fmt);
        vsnprintf(buf, (size_t) n + 1, fmt, args);
        va_end(args);
    }
    rc = fa_conn_write(c, buf, (size_t) n);
    if (buf != stack) {
        free(buf);
    }
    return rc;
}

fa_int_t
fa_conn_flush(fa_connection_t *c)
{
    fa_out_chunk_t  *h;
    ssize_t          n;

    if (c->fd == -1 || c->error) {
        return FA_ERROR;
    }
    while ((h = c->out.head) != NULL) {
        if (h->pos < h->last) {
            n = c->send(c, h->data + h->pos, h->last - h->pos);
            if (n == FA_AGAIN) {
                return FA_AGAIN;     /* the write event calls back */
            }
            if (n <= 0) {
                c->error = 1;
                return FA_ERROR;
            }
            h->pos += (size_t) n;
            c->out.pending -= (size_t) n;
            c->bytes_out += (uint64_t) n;
            if (h->pos < h->last) {
                continue;
            }
        }
        /* sent: free it at once, an idle connection keeps no output memory */
        c->out.head = h->next;
        if (c->out.tail == h) {
            c->out.tail = NULL;
        }
        free(h);
    }
    return FA_OK;
}

void
fa_conn_write_handler(fa_event_t *wev)
{
    fa_connection_t  *c = wev->data;
    size_t            before = c->out.pending;
    fa_int_t          rc;

    if (wev->timedout) {
        fa_log_error(FA_LOG_INFO, c->log, ETIMEDOUT, "client timed out while sending");
        fa_conn_close(c);
        return;
    }
    if (c->out.head == NULL && !c->closing) {
        return;                      /* writable, nothing queued */
    }

    rc = fa_conn_flush(c);
    if (rc == FA_ERROR || (rc == FA_OK && c->closing)) {
        fa_conn_close(c);
        return;
    }
    if (c->drain_handler && before >= c->out.low_water
        && c->out.pending < c->out.low_water)
    {
        c->drain_handler(c);
    }
}

/* plain sockets */

ssize_t
fa_unix_recv(fa_connection_t *c, u_char *buf, size_t size)
{
    ssize_t  n;

    for ( ;; ) {
        n = recv(c->fd, buf, size, 0);
        if (n > 0) {
            return n;
        }
        if (n == 0) {
            c->read->eof = 1;
            c->read->ready = 0;
            return 0;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->read->ready = 0;
            return FA_AGAIN;
        }
        c->read->error = 1;
        c->read->ready = 0;
        c->error = 1;
        fa_log_error(FA_LOG_INFO, c->log, errno, "recv() failed");
        return FA_ERROR;
    }
}

ssize_t
fa_unix_send(fa_connection_t *c, const u_char *buf, size_t size)
{
    ssize_t  n;

    for ( ;; ) {
        /* MSG_NOSIGNAL: a peer that went away is an error, not a SIGPIPE */
        n = send(c->fd, buf, size, MSG_NOSIGNAL);
        if (n >= 0) {
            return n;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->write->ready = 0;
            return FA_AGAIN;
        }
        c->write->error = 1;
        c->write->ready = 0;
        c->error = 1;
        fa_log_error(FA_LOG_INFO, c->log, errno, "send() failed");
        return FA_ERROR;
    }
}

/* log context */

size_t
fa_conn_log_handler(fa_log_t *log, char *buf, size_t len)
{
    fa_connection_t  *c = log->data;
    size_t            n = 0;

    if (c && c->addr_text[0]) {
        n += fa_snprintf(buf, len, ", client: %s", c->addr_text);
    }
    if (log->action) {
        n += fa_snprintf(buf + n, len - n, ", while %s", log->action);
    }
    return n;
}
