/*
 * Connection reader over a non-blocking socketpair: line mode (CRLF, bare
 * LF, lines split across writes, over-long lines), counted mode, EOF and
 * EAGAIN.
 */

#include "fa_core.h"
#include "fa_test.h"

__attribute__((weak)) void fa_ssl_free_connection(fa_connection_t *c) { (void) c; }

static int  peer;

static void
put(const char *s, size_t n)
{
    while (n > 0) {
        ssize_t  w = write(peer, s, n);

        if (w <= 0) {
            perror("write");
            exit(2);
        }
        s += w;
        n -= (size_t) w;
    }
}

#define PUT(s)  put(s, sizeof(s) - 1)

static int
line_is(fa_line_t *l, const char *s)
{
    return l->text.len == strlen(s) && memcmp(l->text.data, s, l->text.len) == 0;
}

static fa_connection_t *
new_conn(void)
{
    int               sv[2];
    fa_connection_t  *c;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1) {
        perror("socketpair");
        exit(2);
    }
    peer = sv[1];
    c = fa_connection_get(sv[0], &fa_log_stderr);
    if (c == NULL) {
        exit(2);
    }
    return c;
}

static void
test_lines(void)
{
    fa_connection_t  *c = new_conn();
    fa_line_t         l;

    is_int(fa_conn_read_line(c, &l), FA_AGAIN, "nothing there: FA_AGAIN");
    ok(c->read->ready == 0, "EAGAIN cleared ready");

    PUT("EHLO a.example\r\nMAIL FROM:<x>\r\n");
    is_int(fa_conn_read_line(c, &l), FA_OK, "first line");
    ok(line_is(&l, "EHLO a.example") && !l.bare_lf && !l.too_long, "CRLF stripped");
    is_int(fa_conn_read_line(c, &l), FA_OK, "second line from the same read");
    ok(line_is(&l, "MAIL FROM:<x>"), "second line text");
    is_int(fa_conn_read_line(c, &l), FA_AGAIN, "then FA_AGAIN");

    PUT("RCPT ");
    is_int(fa_conn_read_line(c, &l), FA_AGAIN, "partial line: FA_AGAIN");
    PUT("TO:<y");
    is_int(fa_conn_read_line(c, &l), FA_AGAIN, "still partial");
    ok(c->in.scanned == 10, "scanned bytes remembered (%zu)", c->in.scanned);
    PUT(">\r");
    is_int(fa_conn_read_line(c, &l), FA_AGAIN, "CR alone does not end a line");
    PUT("\n");
    is_int(fa_conn_read_line(c, &l), FA_OK, "line split across four writes");
    ok(line_is(&l, "RCPT TO:<y>") && !l.bare_lf, "joined text");

    PUT("DATA\nx\ry\r\n\r\n\n");
    is_int(fa_conn_read_line(c, &l), FA_OK, "bare LF line");
    ok(line_is(&l, "DATA") && l.bare_lf, "bare_lf reported");
    is_int(fa_conn_read_line(c, &l), FA_OK, "line with a lone CR");
    ok(line_is(&l, "x\ry") && !l.bare_lf, "a CR not before LF stays in the text");
    is_int(fa_conn_read_line(c, &l), FA_OK, "empty CRLF line");
    ok(l.text.len == 0 && !l.bare_lf && !l.too_long, "empty, not bare");
    is_int(fa_conn_read_line(c, &l), FA_OK, "empty bare LF line");
    ok(l.text.len == 0 && l.bare_lf, "empty, bare");
    is_int(fa_conn_read_line(c, &l), FA_AGAIN, "drained");

    fa_conn_reader_release(c);
    ok(c->in.start == NULL, "release frees an empty buffer");

    PUT("QUIT\r\nhalf a li");
    is_int(fa_conn_read_line(c, &l), FA_OK, "line before EOF");
    ok(line_is(&l, "QUIT"), "QUIT");
    shutdown(peer, SHUT_WR);
    is_int(fa_conn_read_line(c, &l), FA_DONE, "EOF: FA_DONE, partial line dropped");
    is_int(fa_conn_read_line(c, &l), FA_DONE, "and FA_DONE again");

    close(peer);
    fa_conn_close(c);
}

static void
test_too_long(void)
{
    fa_connection_t  *c = new_conn();
    fa_line_t         l;
    char              big[FA_READER_DEFAULT_SIZE * 5];
    int               too_long = 0, lines = 0, again = 0;
    fa_int_t          rc;

    memset(big, 'A', sizeof(big));
    PUT("NOOP\r\n");
    put(big, 3000);

    is_int(fa_conn_read_line(c, &l), FA_OK, "line before the long one");
    is_int(fa_conn_read_line(c, &l), FA_AGAIN, "long line incomplete");

    /* the rest of the long line arrives in pieces, then a good line */
    put(big, sizeof(big) - 3000);
    for (int i = 0; i < 10; i++) {
        while ((rc = fa_conn_read_line(c, &l)) == FA_OK) {
            lines++;
            too_long += l.too_long;
        }
        again += (rc == FA_AGAIN);
        if (i == 3) {
            put(big, 5000);
            PUT("\r\nHELP me\r\n");
        }
    }
    ok(again > 0, "FA_AGAIN while the long line streams in");
    is_int(too_long, 1, "over-long line reported once");
    is_int(lines, 2, "then the next line");
    ok(line_is(&l, "HELP me") && !l.too_long, "next line read fine");
    ok((size_t) (c->in.end - c->in.start) == FA_READER_DEFAULT_SIZE,
       "buffer did not grow");

    /* exactly max_line fits; one more does not, with CRLF or bare LF */
    memset(big, 'B', sizeof(big));
    put(big, c->in.max_line);
    PUT("\r\n");
    is_int(fa_conn_read_line(c, &l), FA_OK, "max_line line");
    ok(l.text.len == c->in.max_line && !l.too_long, "exactly max_line is fine");
    put(big, c->in.max_line);
    PUT("\r");
    is_int(fa_conn_read_line(c, &l), FA_AGAIN, "max_line and CR: waits for LF");
    PUT("\n");
    is_int(fa_conn_read_line(c, &l), FA_OK, "then LF");
    ok(l.text.len == c->in.max_line && !l.too_long, "not too long");
    put(big, c->in.max_line + 1);
    PUT("\r\n");
    is_int(fa_conn_read_line(c, &l), FA_OK, "max_line + 1 with CRLF");
    ok(l.too_long && l.text.len == 0, "is too long");
    put(big, c->in.max_line + 1);
    PUT("\n");
    is_int(fa_conn_read_line(c, &l), FA_OK, "max_line + 1 with LF");
    ok(l.too_long, "is too long too");
    PUT("OK\r\n");
    is_int(fa_conn_read_line(c, &l), FA_OK, "and recovery");
    ok(line_is(&l, "OK"), "text OK");

    close(peer);
    fa_conn_close(c);
}

static void
test_counted(void)
{
    fa_connection_t  *c = new_conn();
    fa_line_t         l;
    fa_str_t          chunk;
    static char       data[10000], got[10000];
    size_t            n = 0;
    fa_int_t          rc;

    for (size_t i = 0; i < sizeof(data); i++) {
        data[i] = (char) ('a' + i % 26);
    }
    PUT("BDAT 10000\r\n");
    put(data, 4000);

    is_int(fa_conn_read_line(c, &l), FA_OK, "command line");
    ok(line_is(&l, "BDAT 10000"), "BDAT");

    while (n < sizeof(data)) {
        rc = fa_conn_read_bytes(c, sizeof(data) - n, &chunk);
        if (rc == FA_AGAIN) {
            put(data + 4000, 6000);
            continue;
        }
        if (rc != FA_OK || chunk.len == 0 || chunk.len > sizeof(data) - n) {
            break;
        }
        memcpy(got + n, chunk.data, chunk.len);
        n += chunk.len;
    }
    is_int(n, sizeof(data), "counted mode read everything across buffer refills");
    ok(memcmp(got, data, sizeof(data)) == 0, "bytes intact");

    PUT("12345NEXT\r\n");
    is_int(fa_conn_read_bytes(c, 5, &chunk), FA_OK, "short count");
    ok(chunk.len == 5 && memcmp(chunk.data, "12345", 5) == 0, "exactly want bytes");
    is_int(fa_conn_read_line(c, &l), FA_OK, "back to line mode");
    ok(line_is(&l, "NEXT"), "line after counted bytes");

    PUT("junk before TLS\r\n");
    is_int(fa_conn_read_bytes(c, 4, &chunk), FA_OK, "some buffered input");
    fa_conn_reader_discard(c);
    is_int(fa_conn_read_bytes(c, 4, &chunk), FA_AGAIN, "discard dropped it");

    close(peer);
    is_int(fa_conn_read_bytes(c, 4, &chunk), FA_DONE, "EOF in counted mode");
    fa_conn_close(c);
}

/*
 * Random streams of 'a', CR and LF, written in random pieces, against a
 * reference splitter: line content is what precedes LF minus one CR, and
 * it is too long when that exceeds max_line.
 */
static void
test_random(unsigned seed)
{
    static u_char  stream[200000];
    size_t         n = sizeof(stream), wpos = 0, rpos = 0, want_len, max_line;
    int            mismatch = 0, lines = 0, long_lines = 0, rounds = 0, cr;
    fa_connection_t *c = new_conn();
    fa_line_t      l;
    fa_int_t       rc;
    u_char        *lf;

    srand(seed);
    max_line = 1 + rand() % 300;
    c->in.max_line = max_line;
    c->in.size = 512;
    for (size_t i = 0; i < n; i++) {
        int r = rand() % 1000;
        /* mostly short lines, now and then a long run without LF */
        stream[i] = r < 8 ? '\n' : (r < 12 ? '\r' : 'a');
        if (r == 999) {
            size_t run = (size_t) (rand() % 3000);

            run = fa_min(run, n - i - 1);       /* fa_min evaluates twice */
            memset(stream + i, 'b', run);
            i += run;
        }
    }

    while (rpos < n && rounds++ < 1000000 && !mismatch) {
        if (wpos < n) {
            size_t k = (size_t) (1 + rand() % 700);

            k = fa_min(k, n - wpos);
            put((char *) stream + wpos, k);
            wpos += k;
        }
        while ((rc = fa_conn_read_line(c, &l)) == FA_OK) {
            lf = memchr(stream + rpos, '\n', n - rpos);
            if (lf == NULL) {
                mismatch = 1;
                break;
            }
            want_len = (size_t) (lf - stream - rpos);
            cr = want_len > 0 && lf[-1] == '\r';
            want_len -= cr;
            if (want_len > max_line) {
                long_lines++;
                mismatch |= !l.too_long || l.text.len != 0;
            } else {
                mismatch |= l.too_long || l.bare_lf == cr || l.text.len != want_len
                            || memcmp(l.text.data, stream + rpos, want_len) != 0;
            }
            rpos = (size_t) (lf - stream) + 1;
            lines++;
        }
        if (rc != FA_AGAIN) {
            mismatch = 1;
        }
        if (memchr(stream + rpos, '\n', n - rpos) == NULL && wpos == n) {
            break;                   /* only an unterminated tail is left */
        }
    }
    is_int(mismatch, 0, "random stream %u (max_line %zu): %d lines, %d too long, "
           "as the reference says", seed, max_line, lines, long_lines);
    ok((size_t) (c->in.end - c->in.start) == fa_max((size_t) 512, max_line + 2),
       "buffer never grew");
    close(peer);
    fa_conn_close(c);
}

int
main(void)
{
    fa_time_update();
    if (fa_connections_init(NULL, 8) != FA_OK) {
        return 2;
    }
    test_lines();
    test_too_long();
    test_counted();
    for (unsigned seed = 1; seed <= 5; seed++) {
        test_random(seed);
    }
    is_int(fa_connections_active(), 0, "every slot given back");
    return done_testing();
}
