/*
 * imap_load: the IMAP benchmark's client (t/bench/imap.sh), plain
 * blocking sockets, no library.
 *
 *   imap_load run HOST PORT USER PASS MAILBOX COMMAND [REPEAT]
 *       log in, SELECT MAILBOX (timed), run COMMAND (timed) REPEAT times;
 *       prints "select_ms", then per run "ms bytes lines"
 *   imap_load status HOST PORT USER PASS MAILBOX REPEAT
 *       log in, STATUS MAILBOX (MESSAGES UNSEEN UIDNEXT) REPEAT times: ms each
 *   imap_load idle HOST PORT USER PASS COUNT
 *       COUNT sessions log in, SELECT INBOX and IDLE (100 at a time); prints
 *       "ready" and waits until standard input closes, then says DONE to all
 *
 * Every tagged reply must be OK; anything else stops it with exit 1.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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
    fprintf(stderr, "imap_load: %s: %s\n", what, errno ? strerror(errno) : "unexpected");
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
conn_send(conn_t *c, const char *s)
{
    size_t   n = strlen(s), off = 0;
    ssize_t  w;

    while (off < n) {
        w = write(c->fd, s + off, n - off);
        if (w <= 0) {
            die("write");
        }
        off += (size_t) w;
    }
}

/* one line (without CRLF) into line; literals in it are skipped over by the caller */
static size_t
conn_line(conn_t *c, char *line, size_t size, size_t *bytes)
{
    for ( ;; ) {
        char *lf = memchr(c->buf + c->pos, '\n', c->len - c->pos);
        if (lf) {
            size_t n = (size_t) (lf - (c->buf + c->pos)) + 1;
            size_t k = n < size ? n : size - 1;
            memcpy(line, c->buf + c->pos, k);
            line[k] = '\0';
            c->pos += n;
            *bytes += n;
            return n;
        }
        if (c->pos > 0) {
            memmove(c->buf, c->buf + c->pos, c->len - c->pos);
            c->len -= c->pos;
            c->pos = 0;
        }
        if (c->len == BUF_SIZE) {
            die("line too long");
        }
        ssize_t r = read(c->fd, c->buf + c->len, BUF_SIZE - c->len);
        if (r <= 0) {
            die("read");
        }
        c->len += (size_t) r;
    }
}

/* skip n bytes of a literal */
static void
conn_skip(conn_t *c, size_t n, size_t *bytes)
{
    while (n) {
        if (c->pos == c->len) {
            ssize_t r = read(c->fd, c->buf, BUF_SIZE);
            if (r <= 0) {
                die("read");
            }
            c->pos = 0;
            c->len = (size_t) r;
        }
        size_t k = c->len - c->pos < n ? c->len - c->pos : n;
        c->pos += k;
        n -= k;
        *bytes += k;
    }
}

/* read to the tagged reply of TAG; counts bytes and untagged lines */
static void
conn_tagged(conn_t *c, const char *tag, size_t *bytes, size_t *lines)
{
    char    line[8192];
    size_t  tl = strlen(tag), n;

    for ( ;; ) {
        n = conn_line(c, line, sizeof(line), bytes);
        (*lines)++;
        if (strncmp(line, tag, tl) == 0 && line[tl] == ' ') {
            if (strncmp(line + tl + 1, "OK", 2) != 0) {
                fprintf(stderr, "imap_load: %s", line);
                exit(1);
            }
            return;
        }
        /* a line that ends with {n}: n bytes of literal, then the line goes on */
        for ( ;; ) {
            size_t k = strlen(line);
            char *brace = strrchr(line, '{');
            if (n != k || k < 4 || strcmp(line + k - 3, "}\r\n") != 0 || brace == NULL) {
                break;
            }
            conn_skip(c, strtoul(brace + 1, NULL, 10), bytes);
            n = conn_line(c, line, sizeof(line), bytes);
        }
    }
}

static void
login(conn_t *c, const char *user, const char *pass, size_t *bytes)
{
    char    cmd[512];
    size_t  lines = 0;

    conn_line(c, cmd, sizeof(cmd), bytes);           /* the greeting */
    snprintf(cmd, sizeof(cmd), "L LOGIN \"%s\" \"%s\"\r\n", user, pass);
    conn_send(c, cmd);
    conn_tagged(c, "L", bytes, &lines);
}

static int
run(char **argv, int argc)
{
    conn_t  c = { 0, malloc(BUF_SIZE), 0, 0 };
    size_t  bytes = 0, lines = 0;
    int     repeat = argc > 7 ? atoi(argv[7]) : 1;
    char    cmd[4096];
    double  t0;

    if (conn_open(&c, argv[1], atoi(argv[2])) < 0) {
        die("connect");
    }
    login(&c, argv[3], argv[4], &bytes);
    snprintf(cmd, sizeof(cmd), "S SELECT \"%s\"\r\n", argv[5]);
    t0 = now_ms();
    conn_send(&c, cmd);
    conn_tagged(&c, "S", &bytes, &lines);
    printf("select_ms %.2f\n", now_ms() - t0);
    for (int i = 0; i < repeat; i++) {
        bytes = lines = 0;
        snprintf(cmd, sizeof(cmd), "R %s\r\n", argv[6]);
        t0 = now_ms();
        conn_send(&c, cmd);
        conn_tagged(&c, "R", &bytes, &lines);
        printf("run_ms %.2f bytes %zu lines %zu\n", now_ms() - t0, bytes, lines);
    }
    return 0;
}

static int
status(char **argv)
{
    conn_t  c = { 0, malloc(BUF_SIZE), 0, 0 };
    size_t  bytes = 0, lines = 0;
    char    cmd[512];
    double  t0;

    if (conn_open(&c, argv[1], atoi(argv[2])) < 0) {
        die("connect");
    }
    login(&c, argv[3], argv[4], &bytes);
    for (int i = 0; i < atoi(argv[6]); i++) {
        snprintf(cmd, sizeof(cmd), "T STATUS \"%s\" (MESSAGES UNSEEN UIDNEXT)\r\n", argv[5]);
        t0 = now_ms();
        conn_send(&c, cmd);
        conn_tagged(&c, "T", &bytes, &lines);
        printf("status_ms %.3f\n", now_ms() - t0);
    }
    return 0;
}

/* COUNT sessions in IDLE; the buffers are small: only short lines come */
static int
idle(char **argv)
{
    int      count = atoi(argv[5]);
    conn_t  *c = calloc((size_t) count, sizeof(conn_t));
    char     cmd[512], line[512];
    size_t   bytes = 0, lines = 0;

    snprintf(cmd, sizeof(cmd), "L LOGIN \"%s\" \"%s\"\r\nS SELECT INBOX\r\nI IDLE\r\n",
             argv[3], argv[4]);
    for (int base = 0; base < count; base += 100) {
        int end = base + 100 < count ? base + 100 : count;
        for (int i = base; i < end; i++) {
            c[i].buf = malloc(65536);
            if (conn_open(&c[i], argv[1], atoi(argv[2])) < 0) {
                die("connect");
            }
            conn_send(&c[i], cmd);
        }
        for (int i = base; i < end; i++) {
            conn_line(&c[i], line, sizeof(line), &bytes);          /* greeting */
            conn_tagged(&c[i], "L", &bytes, &lines);
            conn_tagged(&c[i], "S", &bytes, &lines);
            conn_line(&c[i], line, sizeof(line), &bytes);          /* + idling */
            if (line[0] != '+') {
                fprintf(stderr, "imap_load: IDLE: %s", line);
                return 1;
            }
            free(c[i].buf);
            c[i].buf = NULL;
        }
    }
    printf("ready %d\n", count);
    fflush(stdout);
    while (read(0, line, sizeof(line)) > 0) {
        /* until the script closes our standard input */
    }
    for (int i = 0; i < count; i++) {
        conn_send(&c[i], "DONE\r\nZ LOGOUT\r\n");
        close(c[i].fd);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc >= 7 && strcmp(argv[1], "run") == 0) {
        return run(argv + 1, argc - 1);
    }
    if (argc == 8 && strcmp(argv[1], "status") == 0) {
        return status(argv + 1);
    }
    if (argc == 7 && strcmp(argv[1], "idle") == 0) {
        return idle(argv + 1);
    }
    fprintf(stderr, "usage: imap_load run|status|idle HOST PORT USER PASS ...\n");
    return 2;
}
