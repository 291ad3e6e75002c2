/*
 * smtp_load: an SMTP load generator for t/bench/smtp.sh (not a test).
 *
 *   smtp_load [-H host] -p port [-s sessions] [-n messages per session]
 *       [-c messages per connection] [-r rcpt,rcpt...] [-t seconds cap]
 *       [-f sender] [-P]
 *
 * One thread per session, plain blocking sockets.  A connection: greeting,
 * EHLO, then -c times MAIL, RCPT (each recipient), DATA, the message, and
 * QUIT.  With -P (when the server offers PIPELINING) MAIL, the RCPTs and
 * DATA go in one write.  The message is fixed: 4096 bytes, a Subject
 * header, CRLF line ends, lines starting with "." (sent dot-stuffed).
 *
 * Every reply code is checked: an unexpected one (or an I/O error) fails
 * the message and drops the connection, the session goes on with a new one,
 * and the first few are printed.  No message starts after -t seconds.
 * Printed: messages sent, accepted (250 after the data) and failed,
 * seconds, accepted messages/s, the latency of a message (from its MAIL,
 * or from connect for the first of a connection, to that 250) p50, p99,
 * max, and this process's CPU time.  Exit status 1 when a message or a QUIT
 * failed or nothing was accepted.  Build: cc -O2 -pthread smtp_load.c
 */

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MSG_SIZE     4096
#define MAX_RCPTS    16
#define MAX_SHOWN    5
#define IO_TIMEOUT   30

static const char  *host = "127.0.0.1", *port, *sender = "load@bench.test";
static char        *rcpts[MAX_RCPTS];
static int          nrcpts, sessions = 1, per_session = 100, per_conn = 1, pipelining;
static double       cap = 60, start;
static char         wire[2 * MSG_SIZE];    /* the dot-stuffed message and "." */
static size_t       wire_len;

static pthread_mutex_t  lock = PTHREAD_MUTEX_INITIALIZER;
static int              shown;

typedef struct {
    pthread_t   tid;
    int         id, fd, pipe_ok;
    long        sent, ok, failed, quits;   /* quits: failed QUITs */
    double     *lat;                     /* seconds, one per accepted message */
    char        buf[8192];
    size_t      len;                     /* bytes in buf */
    char        last[256];               /* the last reply line read */
} session_t;

static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
make_message(void)
{
    char    msg[MSG_SIZE + 1];
    size_t  n, i;

    n = snprintf(msg, sizeof(msg), "From: <%s>\r\nTo: <%s>\r\n"
                 "Subject: smtp_load benchmark message\r\n"
                 "Message-ID: <fixed@bench.test>\r\nMIME-Version: 1.0\r\n"
                 "Content-Type: text/plain; charset=us-ascii\r\n\r\n", sender, rcpts[0]);
    for (i = 0; MSG_SIZE - n > 100; i++) {
        /* 74 bytes a line; every 8th line starts with a dot */
        n += (size_t) snprintf(msg + n, sizeof(msg) - n, "%s%04zu the quick brown fox "
                               "jumps over the lazy dog, 0123456789 abcdefghij\r\n",
                               i % 8 == 7 ? "." : "x", i);
    }
    /* a last line pads the message to exactly MSG_SIZE bytes */
    memset(msg + n, 'z', MSG_SIZE - n - 2);
    memcpy(msg + MSG_SIZE - 2, "\r\n", 2);
    n = MSG_SIZE;
    for (i = 0; i < n; i++) {
        if (msg[i] == '.' && (i == 0 || msg[i - 1] == '\n')) {
            wire[wire_len++] = '.';       /* dot-stuffing */
        }
        wire[wire_len++] = msg[i];
    }
    memcpy(wire + wire_len, ".\r\n", 3);
    wire_len += 3;
}

static void
show(session_t *s, const char *fmt, ...)
{
    va_list  ap;

    pthread_mutex_lock(&lock);
    if (shown++ < MAX_SHOWN) {
        fprintf(stderr, "smtp_load: session %d: ", s->id);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    pthread_mutex_unlock(&lock);
}

static int
send_all(session_t *s, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t  w = send(s->fd, p, n, MSG_NOSIGNAL);

        if (w < 0) {                      /* no signals here: no EINTR */
            show(s, "send: %s", strerror(errno));
            return -1;
        }
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

/* read one reply (all its lines); its code, or -1 on I/O error */
static int
read_reply(session_t *s, const char *what)
{
    for (;;) {
        char  *eol = memchr(s->buf, '\n', s->len);

        if (eol != NULL) {
            size_t  line = (size_t) (eol - s->buf) + 1;
            int     more = line > 4 && s->buf[3] == '-';
            int     code = atoi(s->buf);
            size_t  keep = line < sizeof(s->last) ? line : sizeof(s->last) - 1;

            memcpy(s->last, s->buf, keep);
            s->last[keep] = '\0';
            s->last[strcspn(s->last, "\r\n")] = '\0';
            if (strstr(s->last, "PIPELINING") != NULL) {
                s->pipe_ok = 1;           /* in the EHLO reply */
            }
            memmove(s->buf, s->buf + line, s->len - line);
            s->len -= line;
            if (!more) {
                return code;
            }
            continue;
        }
        if (s->len == sizeof(s->buf)) {
            show(s, "%s: reply line too long", what);
            return -1;
        }
        ssize_t  r = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len, 0);

        if (r <= 0) {
            show(s, "%s: %s", what, r == 0 ? "connection closed by the server"
                                           : strerror(errno));
            return -1;
        }
        s->len += (size_t) r;
    }
}

/* read a reply and check its code */
static int
expect(session_t *s, int want, const char *what)
{
    int  code = read_reply(s, what);

    if (code < 0) {
        return -1;
    }
    if (code != want) {
        show(s, "%s: expected %d, got \"%s\"", what, want, s->last);
        return -1;
    }
    return 0;
}

static int
command(session_t *s, const char *cmd, int want, const char *what)
{
    return send_all(s, cmd, strlen(cmd)) == 0 ? expect(s, want, what) : -1;
}

static void
hang_up(session_t *s)
{
    if (s->fd != -1) {
        close(s->fd);
        s->fd = -1;
    }
}

static int
open_conn(session_t *s)
{
    struct addrinfo  hints = { .ai_socktype = SOCK_STREAM }, *ai;
    struct timeval   tv = { IO_TIMEOUT, 0 };
    int              one = 1, rc;

    if ((rc = getaddrinfo(host, port, &hints, &ai)) != 0) {
        show(s, "%s:%s: %s", host, port, gai_strerror(rc));
        return -1;
    }
    s->fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (s->fd == -1 || connect(s->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        show(s, "connect to %s:%s: %s", host, port, strerror(errno));
        freeaddrinfo(ai);
        hang_up(s);
        return -1;
    }
    freeaddrinfo(ai);
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(s->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    s->len = 0;
    s->pipe_ok = 0;
    if (expect(s, 220, "greeting") != 0
        || command(s, "EHLO load.bench.test\r\n", 250, "EHLO") != 0)
    {
        hang_up(s);
        return -1;
    }
    return 0;
}

/* one transaction on an open connection */
static int
send_message(session_t *s)
{
    char        cmd[MAX_RCPTS + 2][300], all[sizeof(cmd)];
    const char *what;
    size_t      len = 0;
    int         i, n = 0, pipe = pipelining && s->pipe_ok;

    snprintf(cmd[n++], sizeof(cmd[0]), "MAIL FROM:<%s> SIZE=%zu\r\n", sender, wire_len);
    for (i = 0; i < nrcpts; i++) {
        snprintf(cmd[n++], sizeof(cmd[0]), "RCPT TO:<%s>\r\n", rcpts[i]);
    }
    snprintf(cmd[n++], sizeof(cmd[0]), "DATA\r\n");
    if (pipe) {                           /* all in one write */
        for (i = 0; i < n; i++) {
            len += (size_t) sprintf(all + len, "%s", cmd[i]);
        }
        if (send_all(s, all, len) != 0) {
            return -1;
        }
    }
    for (i = 0; i < n; i++) {
        what = i == 0 ? "MAIL" : i == n - 1 ? "DATA" : "RCPT";
        if ((!pipe && send_all(s, cmd[i], strlen(cmd[i])) != 0)
            || expect(s, i == n - 1 ? 354 : 250, what) != 0)
        {
            return -1;
        }
    }
    return send_all(s, wire, wire_len) == 0 ? expect(s, 250, "end of data") : -1;
}

static void *
session(void *arg)
{
    session_t  *s = arg;
    long        in_conn = 0;

    s->fd = -1;
    while (s->sent < per_session && now() - start < cap) {
        double  t0 = now();

        s->sent++;
        if (s->fd == -1) {
            in_conn = 0;
        }
        if (s->fd == -1 && open_conn(s) != 0) {
            s->failed++;
            if (s->ok == 0) {
                break;                    /* the server is not there: give up */
            }
            continue;
        }
        if (send_message(s) != 0) {
            s->failed++;
            hang_up(s);
            continue;
        }
        s->lat[s->ok++] = now() - t0;
        if (++in_conn == per_conn || s->sent == per_session) {
            if (command(s, "QUIT\r\n", 221, "QUIT") != 0) {
                s->quits++;               /* the message was stored */
            }
            hang_up(s);
        }
    }
    if (s->fd != -1) {                    /* stopped by the cap */
        command(s, "QUIT\r\n", 221, "QUIT");
        hang_up(s);
    }
    return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}

static void
usage(void)
{
    fprintf(stderr, "usage: smtp_load [-H host] -p port [-s sessions] [-n messages per "
            "session]\n       [-c messages per connection] [-r rcpt,rcpt...] "
            "[-t seconds] [-f sender] [-P]\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    session_t  *ss;
    double     *all, elapsed;
    struct rusage  ru;
    long        sent = 0, ok = 0, failed = 0, quits = 0, k = 0;
    int         opt, i;
    char       *list = "user@bench.test", *tok;

    while ((opt = getopt(argc, argv, "H:p:s:n:c:r:t:f:P")) != -1) {
        switch (opt) {
        case 'H': host = optarg; break;
        case 'p': port = optarg; break;
        case 's': sessions = atoi(optarg); break;
        case 'n': per_session = atoi(optarg); break;
        case 'c': per_conn = atoi(optarg); break;
        case 'r': list = optarg; break;
        case 't': cap = atof(optarg); break;
        case 'f': sender = optarg; break;
        case 'P': pipelining = 1; break;
        default: usage();
        }
    }
    if (port == NULL || optind != argc || sessions < 1 || per_session < 1 || per_conn < 1
        || cap <= 0)
    {
        usage();
    }
    for (tok = strtok(list, ","); tok != NULL && nrcpts < MAX_RCPTS; tok = strtok(NULL, ",")) {
        rcpts[nrcpts++] = tok;
    }
    if (nrcpts == 0) {
        usage();
    }
    make_message();

    ss = calloc((size_t) sessions, sizeof(session_t));
    if (ss == NULL) {
        perror("calloc");
        return 2;
    }
    start = now();
    for (i = 0; i < sessions; i++) {
        ss[i].id = i;
        ss[i].lat = malloc(sizeof(double) * (size_t) per_session);
        if (ss[i].lat == NULL || pthread_create(&ss[i].tid, NULL, session, &ss[i]) != 0) {
            fprintf(stderr, "smtp_load: cannot start session %d\n", i);
            return 2;
        }
    }
    for (i = 0; i < sessions; i++) {
        pthread_join(ss[i].tid, NULL);
        sent += ss[i].sent;
        ok += ss[i].ok;
        failed += ss[i].failed;
        quits += ss[i].quits;
    }
    elapsed = now() - start;
    getrusage(RUSAGE_SELF, &ru);

    all = malloc(sizeof(double) * (size_t) (ok > 0 ? ok : 1));
    for (i = 0; i < sessions; i++) {
        memcpy(all + k, ss[i].lat, sizeof(double) * (size_t) ss[i].ok);
        k += ss[i].ok;
    }
    qsort(all, (size_t) ok, sizeof(double), cmp_double);
#define PCT(p)  (ok > 0 ? all[(size_t) ((ok - 1) * (p))] * 1000 : 0)
    printf("%ld messages sent, %ld accepted, %ld failed in %.2f s: %.1f messages/s\n"
           "latency p50 %.2f ms, p99 %.2f ms, max %.2f ms; client CPU %.2f s\n", sent, ok,
           failed, elapsed, ok / elapsed, PCT(0.50), PCT(0.99), PCT(1.0),
           ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
           + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    if (quits > 0) {
        printf("%ld QUITs failed\n", quits);
    }
    if (shown > MAX_SHOWN) {
        fprintf(stderr, "smtp_load: %d more errors not shown\n", shown - MAX_SHOWN);
    }
    return failed > 0 || quits > 0 || ok == 0 ? 1 : 0;
}
