/*
 * pop3_load: the POP3 benchmark's client (t/bench/pop3.sh), plain blocking
 * sockets, no library.
 *
 *   pop3_load retr HOST PORT USER PASS COUNT [WINDOW]
 *       log in (USER/PASS), then RETR messages 1..n of the maildrop, round
 *       and round, COUNT times: one at a time (send RETR, read to the final
 *       ".") without WINDOW, or pipelined with it (WINDOW RETRs written at
 *       once, WINDOW / 2 more each time half of them are answered); QUIT.
 *       Prints "ms MS bytes BYTES messages COUNT" for the RETRs alone.
 *
 * Every reply must be +OK, and every message end with CRLF "." CRLF;
 * anything else stops it with exit 1.
 */

#define _GNU_SOURCE                      /* memmem */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE  (1024 * 1024)

typedef struct {
    int      fd;
    char    *buf;
    size_t   pos, len;
} conn_t;

static double
now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void
die(const char *what)
{
    fprintf(stderr, "pop3_load: %s: %s\n", what, errno ? strerror(errno) : "unexpected");
    exit(1);
}

static int
conn_open(conn_t *c, const char *host, int port)
{
    struct sockaddr_in  sa;
    int                 one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short) port);
    inet_pton(AF_INET, host, &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->pos = c->len = 0;
    return 0;
}

static void
conn_send(conn_t *c, const char *s, size_t n)
{
    size_t   off = 0;
    ssize_t  w;

    while (off < n) {
        w = write(c->fd, s + off, n - off);
        if (w <= 0) {
            die("write");
        }
        off += (size_t) w;
    }
}

/* more input at the end of the buffer (what was consumed is moved out first) */
static void
conn_fill(conn_t *c)
{
    ssize_t  r;

    if (c->pos > 0) {
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    if (c->len == BUF_SIZE) {
        die("line too long");
    }
    r = read(c->fd, c->buf + c->len, BUF_SIZE - c->len);
    if (r <= 0) {
        die("read");
    }
    c->len += (size_t) r;
}

/* one reply line, which must be +OK */
static void
conn_ok(conn_t *c, size_t *bytes)
{
    char  *lf;

    while ((lf = memchr(c->buf + c->pos, '\n', c->len - c->pos)) == NULL) {
        conn_fill(c);
    }
    if (strncmp(c->buf + c->pos, "+OK", 3) != 0) {
        *lf = '\0';
        fprintf(stderr, "pop3_load: %s\n", c->buf + c->pos);
        exit(1);
    }
    *bytes += (size_t) (lf + 1 - (c->buf + c->pos));
    c->pos = (size_t) (lf + 1 - c->buf);
}

/* the rest of a multi-line reply, to CRLF "." CRLF (the reply is a message: not empty) */
static void
conn_block(conn_t *c, size_t *bytes)
{
    size_t  scanned = c->pos;
    char   *end;

    for ( ;; ) {
        end = c->len - scanned >= 5
              ? memmem(c->buf + scanned, c->len - scanned, "\r\n.\r\n", 5) : NULL;
        if (end) {
            end += 5;
            *bytes += (size_t) (end - (c->buf + c->pos));
            c->pos = (size_t) (end - c->buf);
            return;
        }
        /* nothing consumed yet: account for what is passed over, keep 4 bytes */
        if (c->len - c->pos > 4) {
            *bytes += c->len - c->pos - 4;
            c->pos = c->len - 4;
        }
        conn_fill(c);
        scanned = c->pos;
    }
}

static size_t
retr_cmds(char *out, long first, long count, long n)
{
    size_t  len = 0;

    for (long i = first; i < first + count; i++) {
        len += (size_t) sprintf(out + len, "RETR %ld\r\n", 1 + i % n);
    }
    return len;
}

static int
retr(char **argv, int argc)
{
    conn_t  c = { 0, malloc(BUF_SIZE), 0, 0 };
    size_t  bytes = 0, len;
    long    count = atol(argv[5]), window = argc > 6 ? atol(argv[6]) : 0, n, sent, done;
    char    cmd[1024], *cmds;
    double  t0;

    if (c.buf == NULL || conn_open(&c, argv[1], atoi(argv[2])) < 0) {
        die("connect");
    }
    conn_ok(&c, &bytes);                                  /* the greeting */
    len = (size_t) snprintf(cmd, sizeof(cmd), "USER %s\r\nPASS %s\r\nSTAT\r\n", argv[3],
                            argv[4]);
    conn_send(&c, cmd, len);
    conn_ok(&c, &bytes);
    conn_ok(&c, &bytes);
    while (memchr(c.buf + c.pos, '\n', c.len - c.pos) == NULL) {
        conn_fill(&c);
    }
    n = strtol(c.buf + c.pos + 4, NULL, 10);              /* "+OK n size" */
    conn_ok(&c, &bytes);
    if (n <= 0) {
        fprintf(stderr, "pop3_load: the maildrop of %s is empty\n", argv[3]);
        return 1;
    }
    cmds = malloc((size_t) (window > 0 ? window : 1) * 32);
    bytes = 0;
    t0 = now_ms();
    if (window <= 0) {
        for (long i = 0; i < count; i++) {
            len = retr_cmds(cmds, i, 1, n);
            conn_send(&c, cmds, len);
            conn_ok(&c, &bytes);
            conn_block(&c, &bytes);
        }
    } else {
        sent = window < count ? window : count;
        conn_send(&c, cmds, retr_cmds(cmds, 0, sent, n));
        for (done = 0; done < count; done++) {
            conn_ok(&c, &bytes);
            conn_block(&c, &bytes);
            if (sent - done - 1 <= window / 2 && sent < count) {
                long more = window - (sent - done - 1);
                more = more < count - sent ? more : count - sent;
                conn_send(&c, cmds, retr_cmds(cmds, sent, more, n));
                sent += more;
            }
        }
    }
    printf("ms %.2f bytes %zu messages %ld\n", now_ms() - t0, bytes, count);
    conn_send(&c, "QUIT\r\n", 6);
    conn_ok(&c, &bytes);
    close(c.fd);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc >= 7 && strcmp(argv[1], "retr") == 0) {
        return retr(argv + 1, argc - 1);
    }
    fprintf(stderr, "usage: pop3_load retr HOST PORT USER PASS COUNT [WINDOW]\n");
    return 2;
}
