/*
 * The connection reader (see fa_connection.h): one buffer per connection,
 * line mode and counted mode over the same bytes, so a protocol can switch
 * from commands to a literal or a BDAT chunk and back without copying.
 *
 * The buffer is never grown.  A line longer than max_line is dropped while
 * it streams in and reported once, so a hostile client cannot make a worker
 * allocate more than in.size per connection, and the session answers "line
 * too long" and goes on.  in.scanned remembers how much of an incomplete
 * line has been searched for LF, so a line trickling in byte by byte costs
 * linear time, not quadratic.
 */

#include "fa_core.h"

static fa_int_t
fa_conn_reader_alloc(fa_connection_t *c)
{
    fa_reader_t  *in = &c->in;
    size_t        size;

    if (in->start) {
        return FA_OK;
    }
    size = fa_max(in->size, in->max_line + 2);
    in->start = fa_alloc(size, c->log);
    if (in->start == NULL) {
        return FA_ERROR;
    }
    in->pos = in->start;
    in->last = in->start;
    in->end = in->start + size;
    in->scanned = 0;
    return FA_OK;
}

static void
fa_conn_reader_free(fa_connection_t *c)
{
    free(c->in.start);
    c->in.start = c->in.pos = c->in.last = c->in.end = NULL;
    c->in.scanned = 0;
    /* in.discarding survives: the rest of an over-long line is still to come */
}

fa_int_t
fa_conn_fill(fa_connection_t *c)
{
    fa_reader_t  *in = &c->in;
    size_t        unread, total = 0;
    ssize_t       n;

    if (fa_conn_reader_alloc(c) != FA_OK) {
        c->error = 1;
        return FA_ERROR;
    }
    if (in->pos > in->start) {
        unread = (size_t) (in->last - in->pos);
        memmove(in->start, in->pos, unread);
        in->pos = in->start;
        in->last = in->start + unread;
    }

    /* edge-triggered: read until EAGAIN or a full buffer, never less */
    while (in->last < in->end) {
        n = c->recv(c, in->last, (size_t) (in->end - in->last));
        if (n > 0) {
            in->last += n;
            total += (size_t) n;
            c->bytes_in += (uint64_t) n;
            continue;
        }
        if (total > 0 && n != FA_ERROR) {
            return FA_OK;            /* EOF or EAGAIN is seen again next time */
        }
        return n == 0 ? FA_DONE : (n == FA_AGAIN ? FA_AGAIN : FA_ERROR);
    }
    return FA_OK;                    /* full: the caller has bytes to consume */
}

/* FA_OK with a line, FA_AGAIN when the buffer holds no complete line */
static fa_int_t
fa_conn_scan_line(fa_connection_t *c, fa_line_t *line)
{
    fa_reader_t  *in = &c->in;
    u_char       *lf;
    size_t        len;

    if (in->start == NULL || in->pos == in->last) {
        return FA_AGAIN;
    }
    lf = memchr(in->pos + in->scanned, '\n', (size_t) (in->last - in->pos) - in->scanned);

    if (lf == NULL) {
        in->scanned = (size_t) (in->last - in->pos);
        /* more than max_line + CR without LF, or nowhere left to put the LF */
        if (in->discarding || in->scanned > in->max_line + 1
            || (in->pos == in->start && in->last == in->end))
        {
            in->discarding = 1;
            in->pos = in->last = in->start;
            in->scanned = 0;
        }
        return FA_AGAIN;
    }

    len = (size_t) (lf - in->pos);
    line->bare_lf = (len == 0 || lf[-1] != '\r');
    line->too_long = 0;
    if (!line->bare_lf) {
        len--;
    }
    line->text.data = in->pos;
    line->text.len = len;

    if (in->discarding || len > in->max_line) {
        line->too_long = 1;
        line->bare_lf = 0;           /* its start is gone: we cannot tell */
        line->text.len = 0;
        in->discarding = 0;
    }
    in->pos = lf + 1;
    in->scanned = 0;
    return FA_OK;
}

/* line->text points into the buffer: valid until the next reader call */
fa_int_t
fa_conn_read_line(fa_connection_t *c, fa_line_t *line)
{
    fa_int_t  rc;

    for ( ;; ) {
        if (fa_conn_scan_line(c, line) == FA_OK) {
            return FA_OK;
        }
        rc = fa_conn_fill(c);
        if (rc == FA_DONE && c->in.start) {
            /* a command without its end is no command */
            c->in.pos = c->in.last;
            c->in.scanned = 0;
            c->in.discarding = 0;
        }
        if (rc != FA_OK) {
            return rc;
        }
    }
}

/*
 * Zero copy: chunk points into the reader buffer and stays valid until the
 * next call to any reader function.
 */
fa_int_t
fa_conn_read_bytes(fa_connection_t *c, size_t want, fa_str_t *chunk)
{
    fa_reader_t  *in = &c->in;
    fa_int_t      rc;
    size_t        n;

    chunk->len = 0;
    chunk->data = NULL;
    if (want == 0) {
        return FA_OK;
    }
    if (in->start == NULL || in->pos == in->last) {
        rc = fa_conn_fill(c);
        if (rc != FA_OK) {
            return rc;
        }
    }
    n = fa_min(want, (size_t) (in->last - in->pos));
    chunk->data = in->pos;
    chunk->len = n;
    in->pos += n;
    in->scanned = in->scanned > n ? in->scanned - n : 0;
    return FA_OK;
}

/*
 * Give back the last n bytes of the chunk fa_conn_read_bytes() just
 * returned, for the next read: a protocol that scans a chunk for its own
 * terminator (SMTP's CRLF.CRLF) leaves what follows for its command reader.
 */
void
fa_conn_unread(fa_connection_t *c, size_t n)
{
    fa_reader_t  *in = &c->in;

    if (in->start && n <= (size_t) (in->pos - in->start)) {
        in->pos -= n;
        in->scanned = 0;
    }
}

void
fa_conn_reader_discard(fa_connection_t *c)
{
    c->in.pos = c->in.last = c->in.start;
    c->in.scanned = 0;
    c->in.discarding = 0;
}

void
fa_conn_reader_release(fa_connection_t *c)
{
    if (c->in.start && c->in.pos == c->in.last) {
        fa_conn_reader_free(c);
    }
}

