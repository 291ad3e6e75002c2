/*
 * Connections: a socket with its two events, a pool, a buffered reader and
 * a write queue.  Protocols never call read(2)/write(2) themselves; they use
 *
 *   fa_conn_read_line()   line mode: CRLF (or bare LF, reported) terminated,
 *                         bounded by reader.max_line; an over-long line is
 *                         discarded up to its end and reported, so the
 *                         protocol answers its "line too long" error and
 *                         keeps serving
 *   fa_conn_read_bytes()  counted mode: literals, BDAT chunks, message data
 *   fa_conn_write()       queue output; fa_conn_flush() sends what it can,
 *                         the rest goes out on write events
 *
 * Reader buffer: allocated when data arrives, released when the session has
 * consumed everything (fa_conn_reader_release), so an idle connection holds
 * no buffer.  Invariant: the reader returns FA_AGAIN only after the socket
 * itself said EAGAIN, so with edge-triggered events nothing is ever stranded
 * in the kernel or in the TLS layer.
 *
 * Backpressure: fa_conn_out_pending() says how much output is queued; a
 * protocol stops producing above out.high_water.  When the queue drains
 * below out.low_water, c->drain_handler is called (if set).
 */

#ifndef FA_CONNECTION_H
#define FA_CONNECTION_H

#define FA_READER_DEFAULT_SIZE   4096
#define FA_WRITER_CHUNK_SIZE     4096

typedef ssize_t (*fa_recv_pt)(fa_connection_t *c, u_char *buf, size_t size);
typedef ssize_t (*fa_send_pt)(fa_connection_t *c, const u_char *buf, size_t size);

typedef struct {
    u_char      *start;          /* NULL while released */
    u_char      *pos;            /* first unconsumed byte */
    u_char      *last;           /* end of data */
    u_char      *end;            /* end of buffer */
    size_t       size;           /* buffer size to allocate (>= max_line + 2) */
    size_t       max_line;       /* line mode limit, excluding CRLF */
    size_t       scanned;        /* bytes of the current line already scanned */
    unsigned     discarding:1;   /* inside an over-long line */
} fa_reader_t;

typedef struct {
    fa_str_t     text;           /* without the terminator */
    unsigned     bare_lf:1;      /* ended with LF not preceded by CR */
    unsigned     too_long:1;     /* exceeded max_line; text is empty */
} fa_line_t;

typedef struct fa_out_chunk_s  fa_out_chunk_t;
struct fa_out_chunk_s {
    fa_out_chunk_t  *next;
    size_t           pos;        /* sent up to here */
    size_t           last;       /* filled up to here */
    size_t           size;
    u_char           data[];
};

typedef struct {
    fa_out_chunk_t  *head;
    fa_out_chunk_t  *tail;
    size_t           pending;    /* bytes queued, not yet sent */
    size_t           high_water; /* producers stop above this */
    size_t           low_water;  /* drain_handler called below this */
} fa_writer_t;

typedef void (*fa_conn_handler_pt)(fa_connection_t *c);
typedef void (*fa_conn_status_pt)(fa_connection_t *c, fa_int_t rc);

struct fa_connection_s {
    void               *data;        /* the protocol session */
    fa_event_t         *read;
    fa_event_t         *write;
    int                 fd;

    fa_recv_pt          recv;
    fa_send_pt          send;

    fa_listening_t     *listening;
    struct sockaddr_storage sockaddr;
    socklen_t           socklen;
    char                addr_text[FA_SOCKADDR_STRLEN];  /* "127.0.0.1" */
    uint64_t            id;          /* session id, "*id" in the log */

    fa_pool_t          *pool;
    fa_log_t           *log;
    fa_log_t            log_storage;

    fa_ssl_conn_t      *ssl;
    fa_reader_t         in;
    fa_writer_t         out;
    fa_conn_handler_pt  drain_handler;
    fa_conn_status_pt   tls_handler;  /* STARTTLS / implicit TLS completion */

    uint64_t            bytes_in;
    uint64_t            bytes_out;
    fa_msec_t           start_msec;

    fa_queue_t          link;        /* in the worker's active or idle list */
    fa_connection_t    *next_free;

    unsigned            error:1;
    unsigned            closing:1;   /* close after the queue drains */
    unsigned            destroyed:1;
    /*
     * idle: nothing in progress that a close would cut (an HTTP keep-alive
     * connection between requests), so a quitting worker may close it.  Mail
     * sessions never set it: a reload must not cut a session in progress.
     */
    unsigned            idle:1;
    unsigned            unix_socket:1;
    unsigned            instance:1;  /* flipped at each reuse of the slot: stale epoll events */
};

/* connection slots: a fixed array per worker, worker_connections long */
fa_int_t fa_connections_init(fa_cycle_t *cycle, fa_uint_t n);
fa_connection_t *fa_connection_get(int fd, fa_log_t *log);    /* NULL if none free */
void fa_connection_free(fa_connection_t *c);
fa_uint_t fa_connections_active(void);
void fa_connections_close_idle(void);       /* quitting worker: drop idle sessions */
void fa_connections_close_all(void);        /* fast stop */

void fa_conn_close(fa_connection_t *c);     /* now: frees the pool, the slot */
void fa_conn_close_after_flush(fa_connection_t *c);  /* send queued output, then close */

/* reader */
fa_int_t fa_conn_read_line(fa_connection_t *c, fa_line_t *line);
fa_int_t fa_conn_read_bytes(fa_connection_t *c, size_t want, fa_str_t *chunk);
void fa_conn_unread(fa_connection_t *c, size_t n);   /* give back a chunk's tail */
void fa_conn_reader_discard(fa_connection_t *c);   /* drop unread input */
void fa_conn_reader_release(fa_connection_t *c);   /* free the buffer if empty */
fa_int_t fa_conn_fill(fa_connection_t *c);         /* read more from the socket */

/* writer */
fa_int_t fa_conn_write(fa_connection_t *c, const void *data, size_t len);
fa_int_t fa_conn_printf(fa_connection_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
fa_int_t fa_conn_flush(fa_connection_t *c);        /* FA_OK all sent, FA_AGAIN, FA_ERROR */
#define fa_conn_out_pending(c)  ((c)->out.pending)
void fa_conn_write_handler(fa_event_t *wev);       /* default write event handler */

/* raw socket I/O, used as c->recv / c->send on plain connections */
ssize_t fa_unix_recv(fa_connection_t *c, u_char *buf, size_t size);
ssize_t fa_unix_send(fa_connection_t *c, const u_char *buf, size_t size);

/*
 * STARTTLS: discards every byte the client sent before the handshake (the
 * reader buffer), then handshakes without blocking and calls
 * handler(c, FA_OK | FA_ERROR).  The protocol sends its "ready to start TLS"
 * reply first and calls this once that reply is flushed.
 */
fa_int_t fa_conn_starttls(fa_connection_t *c, fa_ssl_t *ssl, fa_conn_status_pt handler);

/* log context for connections: ", client: ADDR, while ACTION" */
size_t fa_conn_log_handler(fa_log_t *log, char *buf, size_t len);

#endif /* FA_CONNECTION_H */
