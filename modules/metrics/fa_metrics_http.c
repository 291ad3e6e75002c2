/*
 * A small HTTP/1.x server for the metrics endpoint, over the core reader
 * and writer.
 *
 * The request line and each header are lines of at most 8 KB (bare LF
 * accepted, as HTTP allows), at most 100 headers.  A request body is never
 * read: a request that announces one is answered and the connection closed,
 * since we could not find where the next request starts.  Anything
 * malformed gets 400 and a close; over-long lines 414 or 431.
 *
 * The page is rendered once per request into a private buffer, so the
 * Content-Length is exact even while other workers update counters, and it
 * is queued in pieces that respect the writer's high water mark.
 */

#include "fa_metrics.h"
#include <openssl/crypto.h>

#define FA_METRICS_WRITE_PIECE  (64 * 1024)
#define FA_METRICS_TYPE         "text/plain; version=0.0.4; charset=utf-8"

#ifndef FA_LUA_NAME
#define FA_LUA_NAME  "none"
#endif

typedef enum {
    FA_METRICS_REQUEST_LINE = 0,
    FA_METRICS_HEADERS
} fa_metrics_state_e;

typedef struct {
    fa_connection_t     *connection;
    fa_metrics_conf_t   *conf;
    fa_metrics_state_e   state;
    fa_uint_t            nheaders;
    unsigned             get:1;          /* GET or HEAD */
    unsigned             head:1;
    unsigned             found:1;        /* the path is /metrics */
    unsigned             http11:1;
    unsigned             host:1;
    unsigned             keep_alive:1;   /* "Connection: keep-alive" */
    unsigned             close:1;        /* close after this response */
    u_char              *page;           /* being queued; malloc'd */
    size_t               page_pos;
    size_t               page_len;
} fa_metrics_session_t;

typedef struct {
    const fa_stat_t  *all[FA_STATS_MAX];
    fa_uint_t         n;
    size_t            size;              /* upper bound of the rendering */
} fa_metrics_snapshot_t;

static void fa_metrics_http_read_handler(fa_event_t *rev);
static void fa_metrics_http_process(fa_metrics_session_t *s);

/* ---- rendering the page ---- */

static int
fa_metrics_collect(const fa_stat_t *st, void *data)
{
    fa_metrics_snapshot_t  *snap = data;

    if (snap->n == FA_STATS_MAX) {
        return 1;
    }
    snap->all[snap->n++] = st;
    /* HELP and TYPE lines, the help escaped, the sample line with its value */
    snap->size += 3 * strlen(st->name) + 2 * strlen(st->help) + strlen(st->labels)
                  + 64 + FA_INT64_LEN;
    return 0;
}

/* families together, as the format requires; creation order within one */
static int
fa_metrics_cmp(const void *a, const void *b)
{
    const fa_stat_t  *x = *(const fa_stat_t * const *) a;
    const fa_stat_t  *y = *(const fa_stat_t * const *) b;
    int               c = strcmp(x->name, y->name);

    return c ? c : (x > y) - (x < y);
}

/* HELP text and label values: backslash, double quote (labels) and newline */
static size_t
fa_metrics_escape(char *dst, size_t size, const char *src, int quote)
{
    size_t  n = 0;

    for (; *src && n + 3 <= size; src++) {
        if (*src == '\\' || *src == '\n' || (quote && *src == '"')) {
            dst[n++] = '\\';
            dst[n++] = *src == '\n' ? 'n' : *src;
        } else {
            dst[n++] = *src;
        }
    }
    dst[n] = '\0';
    return n;
}

static size_t
fa_metrics_render_stat(char *p, size_t room, const fa_stat_t *st, int first)
{
    char    help[2 * FA_STATS_HELP_MAX + 1];
    size_t  n = 0;

    if (first) {
        fa_metrics_escape(help, sizeof(help), st->help, 0);
        n += fa_snprintf(p, room, "# HELP %s %s\n# TYPE %s %s\n", st->name, help,
                         st->name, st->type == FA_STATS_COUNTER ? "counter" : "gauge");
    }
    n += fa_snprintf(p + n, room - n, "%s%s%s%s %" PRId64 "\n", st->name,
                     st->labels[0] ? "{" : "", st->labels, st->labels[0] ? "}" : "",
                     (int64_t) fa_stat_value(st));
    return n;
}

static size_t
fa_metrics_render_process(char *p, size_t room)
{
    char    version[64], openssl[64], lua[64];
    time_t  now = fa_time_now ? fa_time_now : time(NULL);

    fa_metrics_escape(version, sizeof(version), FA_VERSION, 1);
    fa_metrics_escape(openssl, sizeof(openssl), OpenSSL_version(OPENSSL_VERSION_STRING), 1);
    fa_metrics_escape(lua, sizeof(lua), FA_LUA_NAME, 1);
    return fa_snprintf(p, room,
        "# HELP facteur_uptime_seconds Seconds since the master process started.\n"
        "# TYPE facteur_uptime_seconds gauge\n"
        "facteur_uptime_seconds %ld\n"
        "# HELP facteur_build_info Version and libraries of this build.\n"
        "# TYPE facteur_build_info gauge\n"
        "facteur_build_info{version=\"%s\",openssl=\"%s\",lua=\"%s\"} 1\n",
        (long) (now - fa_stats_start_time()), version, openssl, lua);
}

/* the whole page into a malloc'd buffer: *len bytes, NULL on no memory */
static u_char *
fa_metrics_render(fa_log_t *log, size_t *len)
{
    fa_metrics_snapshot_t  *snap;
    char                   *page;
    size_t                  n = 0, room;

    snap = fa_alloc(sizeof(fa_metrics_snapshot_t), log);
    if (snap == NULL) {
        return NULL;
    }
    snap->n = 0;
    snap->size = 1024;                      /* uptime and build_info */
    fa_stats_each(fa_metrics_collect, snap);
    qsort(snap->all, snap->n, sizeof(snap->all[0]), fa_metrics_cmp);

    room = snap->size;
    page = fa_alloc(room, log);
    if (page) {
        for (fa_uint_t i = 0; i < snap->n; i++) {
            n += fa_metrics_render_stat(page + n, room - n, snap->all[i],
                     i == 0 || strcmp(snap->all[i]->name, snap->all[i - 1]->name) != 0);
        }
        n += fa_metrics_render_process(page + n, room - n);
    }
    free(snap);
    *len = n;
    return (u_char *) page;
}

/* ---- responses ---- */

static const char *
fa_metrics_http_date(void)
{
    static char    date[40];
    static time_t  cached = -1;
    time_t         now = fa_time_now ? fa_time_now : time(NULL);
    struct tm      tm;

    if (now != cached) {
        gmtime_r(&now, &tm);
        strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached = now;
    }
    return date;
}

static const char *
fa_metrics_http_reason(fa_uint_t status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    default:  return "Internal Server Error";
    }
}

static fa_int_t
fa_metrics_http_header(fa_metrics_session_t *s, fa_uint_t status, size_t length)
{
    const char  *conn = "";

    if (s->close) {
        conn = "Connection: close\r\n";
    } else if (!s->http11) {
        conn = "Connection: keep-alive\r\n";
    }
    return fa_conn_printf(s->connection,
        "HTTP/1.1 %lu %s\r\nServer: facteur\r\nDate: %s\r\nContent-Type: %s\r\n"
        "Content-Length: %zu\r\n%s%s\r\n",
        (unsigned long) status, fa_metrics_http_reason(status), fa_metrics_http_date(),
        status == 200 ? FA_METRICS_TYPE : "text/plain; charset=utf-8", length,
        status == 405 ? "Allow: GET, HEAD\r\n" : "", conn);
}

/* queue the page in pieces: FA_OK when all of it is queued, FA_AGAIN, FA_ERROR */
static fa_int_t
fa_metrics_http_send_page(fa_metrics_session_t *s)
{
    fa_connection_t  *c = s->connection;
    size_t            n;

    while (s->page_pos < s->page_len) {
        if (fa_conn_out_pending(c) >= c->out.high_water) {
            if (fa_conn_flush(c) == FA_ERROR) {
                return FA_ERROR;
            }
            if (fa_conn_out_pending(c) >= c->out.high_water) {
                return FA_AGAIN;            /* the drain handler resumes us */
            }
        }
        n = fa_min(s->page_len - s->page_pos, (size_t) FA_METRICS_WRITE_PIECE);
        if (fa_conn_write(c, s->page + s->page_pos, n) != FA_OK) {
            return FA_ERROR;
        }
        s->page_pos += n;
    }
    free(s->page);
    s->page = NULL;
    return FA_OK;
}

/*
 * The request is answered: get ready for the next one, or close.  FA_ABORT
 * means the connection was handed to the closing path (and may be gone).
 */
static fa_int_t
fa_metrics_http_finish(fa_metrics_session_t *s)
{
    fa_connection_t  *c = s->connection;

    if (s->close) {
        fa_conn_close_after_flush(c);
        return FA_ABORT;
    }
    s->state = FA_METRICS_REQUEST_LINE;
    s->nheaders = 0;
    s->get = s->head = s->found = s->http11 = s->host = s->keep_alive = 0;
    c->log->action = "keeping the connection alive";
    fa_event_add_timer(c->read, s->conf->timeout);
    return FA_OK;
}

static fa_int_t
fa_metrics_http_respond(fa_metrics_session_t *s, fa_uint_t status)
{
    const char  *text = fa_metrics_http_reason(status);
    fa_int_t     rc;

    if (fa_metrics_requests) {
        fa_stat_inc(fa_metrics_requests);
    }
    if (status != 200 && status != 404 && status != 405) {
        s->close = 1;                       /* the stream may be out of step */
    }
    if (status == 200) {
        s->page = fa_metrics_render(s->connection->log, &s->page_len);
        if (s->page == NULL) {
            return FA_ERROR;
        }
        s->page_pos = s->head ? s->page_len : 0;
        rc = fa_metrics_http_header(s, status, s->page_len);
        rc = (rc == FA_OK) ? fa_metrics_http_send_page(s) : rc;
        return (rc == FA_OK) ? fa_metrics_http_finish(s) : rc;
    }
    rc = fa_metrics_http_header(s, status, strlen(text) + 1);     /* the reason and LF */
    if (rc == FA_OK && !s->head) {
        rc = fa_conn_printf(s->connection, "%s\n", text);
    }
    return (rc == FA_OK) ? fa_metrics_http_finish(s) : rc;
}

/* ---- parsing ---- */

static int
fa_metrics_http_tchar(u_char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
           || (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* the path of an origin-form or absolute-form target, without the query */
static int
fa_metrics_http_is_metrics(const u_char *t, size_t len)
{
    const u_char  *end = t + len, *p;
    size_t         skip = 0;

    if (len > 7 && strncasecmp((char *) t, "http://", 7) == 0) {
        skip = 7;
    } else if (len > 8 && strncasecmp((char *) t, "https://", 8) == 0) {
        skip = 8;
    }
    if (skip) {
        p = memchr(t + skip, '/', len - skip);
        t = p ? p : end;
    }
    for (p = t; p < end && *p != '?'; p++) { /* void */ }
    return p - t == 8 && memcmp(t, "/metrics", 8) == 0;
}

/* "METHOD SP TARGET SP HTTP/1.x": 0 when fine, else the status to answer */
static fa_uint_t
fa_metrics_http_request_line(fa_metrics_session_t *s, const fa_str_t *line)
{
    const u_char  *p = line->data, *end = p + line->len, *m, *t;

    for (m = p; p < end && fa_metrics_http_tchar(*p); p++) { /* void */ }
    if (p == m || p == end || *p != ' ') {
        return 400;
    }
    s->get = (p - m == 3 && memcmp(m, "GET", 3) == 0)
             || (p - m == 4 && memcmp(m, "HEAD", 4) == 0);
    s->head = (p - m == 4 && memcmp(m, "HEAD", 4) == 0);
    for (t = ++p; p < end && *p > ' ' && *p != 0x7f; p++) { /* void */ }
    if (p == t || end - p != 9 || *p != ' ') {
        return 400;
    }
    s->found = fa_metrics_http_is_metrics(t, (size_t) (p - t));
    p++;
    if (memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.'
        || p[7] < '0' || p[7] > '9')
    {
        return 400;
    }
    if (p[5] != '1') {
        return 505;
    }
    s->http11 = (p[7] != '0');
    return 0;
}

static void
fa_metrics_http_connection(fa_metrics_session_t *s, const u_char *v, size_t len)
{
    const u_char  *end = v + len, *tok;
    size_t         n;

    while (v < end) {
        while (v < end && (*v == ' ' || *v == '\t' || *v == ',')) {
            v++;
        }
        for (tok = v; v < end && *v != ',' && *v != ' ' && *v != '\t'; v++) { /* void */ }
        n = (size_t) (v - tok);
        if (n == 5 && strncasecmp((char *) tok, "close", 5) == 0) {
            s->close = 1;
        } else if (n == 10 && strncasecmp((char *) tok, "keep-alive", 10) == 0) {
            s->keep_alive = 1;
        }
    }
}

/* "Name: value": 0 when fine, else the status to answer */
static fa_uint_t
fa_metrics_http_header_line(fa_metrics_session_t *s, const fa_str_t *line)
{
    const u_char  *p = line->data, *end = p + line->len, *v, *ve;
    size_t         n;

    for (; p < end && fa_metrics_http_tchar(*p); p++) { /* void */ }
    if (p == line->data || p == end || *p != ':') {
        return 400;                         /* also obs-fold and "Name :" */
    }
    n = (size_t) (p - line->data);
    for (v = p + 1; v < end && (*v == ' ' || *v == '\t'); v++) { /* void */ }
    for (ve = end; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--) { /* void */ }
    for (const u_char *q = v; q < ve; q++) {
        if ((*q < ' ' && *q != '\t') || *q == 0x7f) {
            return 400;                     /* a CR or NUL smuggled into a value */
        }
    }
    if (n == 4 && strncasecmp((char *) line->data, "host", 4) == 0) {
        if (s->host) {
            return 400;
        }
        s->host = 1;
    } else if (n == 10 && strncasecmp((char *) line->data, "connection", 10) == 0) {
        fa_metrics_http_connection(s, v, (size_t) (ve - v));
    } else if ((n == 17 && strncasecmp((char *) line->data, "transfer-encoding", 17) == 0)
               || (n == 14 && strncasecmp((char *) line->data, "content-length", 14) == 0
                   && !(ve - v == 1 && *v == '0')))
    {
        s->close = 1;                       /* a body we will not read */
    }
    return 0;
}

/* the request is complete: decide the answer */
static fa_int_t
fa_metrics_http_request_done(fa_metrics_session_t *s)
{
    if ((!s->http11 && !s->keep_alive) || fa_worker_exiting) {
        s->close = 1;                       /* a quitting worker keeps nobody */
    }
    if (s->http11 && !s->host) {
        fa_log_error(FA_LOG_INFO, s->connection->log, 0,
                     "client sent an HTTP/1.1 request without \"Host\"");
        return fa_metrics_http_respond(s, 400);
    }
    return fa_metrics_http_respond(s, !s->found ? 404 : !s->get ? 405 : 200);
}

static fa_int_t
fa_metrics_http_start(fa_metrics_session_t *s, fa_line_t *line)
{
    fa_connection_t  *c = s->connection;
    fa_uint_t         status;

    if (line->text.len == 0 && !line->too_long) {
        return FA_OK;                       /* RFC 9112: ignore CRLF before a request */
    }
    c->idle = 0;
    c->log->action = "reading an HTTP request";
    s->close = 0;
    fa_event_add_timer(c->read, s->conf->timeout);
    if (line->too_long) {
        fa_log_error(FA_LOG_INFO, c->log, 0, "client sent a too long request line");
        return fa_metrics_http_respond(s, 414);
    }
    status = fa_metrics_http_request_line(s, &line->text);
    if (status) {
        fa_log_error(FA_LOG_INFO, c->log, 0, "client sent an invalid request line");
        return fa_metrics_http_respond(s, status);
    }
    s->state = FA_METRICS_HEADERS;
    return FA_OK;
}

static fa_int_t
fa_metrics_http_line(fa_metrics_session_t *s, fa_line_t *line)
{
    fa_connection_t  *c = s->connection;

    if (s->state == FA_METRICS_REQUEST_LINE) {
        return fa_metrics_http_start(s, line);
    }
    if (line->text.len == 0 && !line->too_long) {
        return fa_metrics_http_request_done(s);
    }
    if (line->too_long || ++s->nheaders > FA_METRICS_MAX_HEADERS) {
        fa_log_error(FA_LOG_INFO, c->log, 0, "client sent too long or too many headers");
        return fa_metrics_http_respond(s, 431);
    }
    if (fa_metrics_http_header_line(s, &line->text) != 0) {
        fa_log_error(FA_LOG_INFO, c->log, 0, "client sent an invalid header line");
        return fa_metrics_http_respond(s, 400);
    }
    return FA_OK;
}

/* ---- the session ---- */

/* answer every complete request in the buffer, in order, until input runs dry */
static void
fa_metrics_http_process(fa_metrics_session_t *s)
{
    fa_connection_t  *c = s->connection;
    fa_line_t         line;
    fa_int_t          rc = FA_OK;

    if (s->page) {
        rc = fa_metrics_http_send_page(s);
        rc = (rc == FA_OK) ? fa_metrics_http_finish(s) : rc;
    }
    while (rc == FA_OK) {
        /*
         * Pipelining faster than it reads: stop until the writer drains.  The
         * flush may send it all at once, and then no drain event would come.
         */
        if (fa_conn_out_pending(c) >= c->out.high_water) {
            if (fa_conn_flush(c) == FA_ERROR) {
                rc = FA_ERROR;
                break;
            }
            if (fa_conn_out_pending(c) >= c->out.high_water) {
                rc = FA_AGAIN;
                break;
            }
        }
        rc = fa_conn_read_line(c, &line);
        if (rc == FA_OK) {
            rc = fa_metrics_http_line(s, &line);
        }
    }
    if (rc == FA_ABORT) {
        return;                             /* closing after our last answer */
    }
    if (rc == FA_DONE) {                    /* the client hung up */
        fa_conn_close_after_flush(c);
        return;
    }
    if (rc == FA_ERROR || fa_conn_flush(c) == FA_ERROR) {
        fa_conn_close(c);
        return;
    }
    fa_conn_reader_release(c);
    /*
     * Idle (closed at once by a quitting worker) only with nothing half
     * read and nothing left to send, so a graceful stop never cuts an answer.
     */
    c->idle = s->state == FA_METRICS_REQUEST_LINE && s->page == NULL
              && fa_conn_out_pending(c) == 0 && c->in.start == NULL;
    if (c->idle && fa_worker_exiting) {
        fa_conn_close(c);
    }
}

static void
fa_metrics_http_read_handler(fa_event_t *rev)
{
    fa_connection_t       *c = rev->data;
    fa_metrics_session_t  *s = c->data;

    if (rev->timedout) {
        fa_log_error(c->idle ? FA_LOG_DEBUG : FA_LOG_INFO, c->log, 0, "client timed out");
        fa_conn_close(c);
        return;
    }
    fa_metrics_http_process(s);
}

/* called by the writer when the queue fell below its low water mark */
static void
fa_metrics_http_drain(fa_connection_t *c)
{
    fa_metrics_http_process(c->data);
}

static void
fa_metrics_http_cleanup(void *data)
{
    fa_metrics_session_t  *s = data;

    free(s->page);
    s->page = NULL;
}

void
fa_metrics_http_init(fa_connection_t *c)
{
    fa_metrics_session_t  *s;

    s = fa_pcalloc(c->pool, sizeof(fa_metrics_session_t));
    if (s == NULL || fa_pool_cleanup_add(c->pool, fa_metrics_http_cleanup, s) == NULL) {
        fa_conn_close(c);
        return;
    }
    s->connection = c;
    s->conf = c->listening->ctx;
    c->data = s;
    c->in.max_line = FA_METRICS_MAX_LINE;
    c->in.size = FA_METRICS_MAX_LINE + 2;
    c->read->handler = fa_metrics_http_read_handler;
    c->drain_handler = fa_metrics_http_drain;
    c->idle = 1;
    c->log->action = "waiting for an HTTP request";
    fa_event_add_timer(c->read, s->conf->timeout);
    /* after TLS the first request may already sit inside OpenSSL: try now */
    fa_metrics_http_process(s);
}
