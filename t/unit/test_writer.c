/*
 * Connection writer: a peer that does not read makes flush return FA_AGAIN
 * with the right amount pending; once the peer reads, the event loop drains
 * the queue through write events and calls drain_handler, and every byte
 * arrives in order.
 */

#include "fa_core.h"
#include "fa_test.h"

__attribute__((weak)) void fa_ssl_free_connection(fa_connection_t *c) { (void) c; }

#define TOTAL  (4 * 1024 * 1024)

static int     drained;
static size_t  drained_at;

static void
drain_handler(fa_connection_t *c)
{
    drained++;
    drained_at = fa_conn_out_pending(c);
}

static void
guard_handler(fa_event_t *ev)
{
    (void) ev;                       /* only bounds epoll_wait */
}

/* the byte at stream offset i */
static u_char
pattern(size_t i)
{
    return (u_char) ((i * 7 + i / 4096) & 0xff);
}

static size_t
peer_read(int fd, u_char *into, size_t have, size_t cap)
{
    ssize_t  n;

    while (have < cap && (n = read(fd, into + have, cap - have)) > 0) {
        have += (size_t) n;
    }
    return have;
}

int
main(void)
{
    fa_core_conf_t    ccf = { .worker_connections = 16 };
    fa_cycle_t        cycle = { .log = &fa_log_stderr, .core_conf = &ccf };
    fa_event_t        guard = { .handler = guard_handler };
    fa_connection_t  *c;
    static u_char     block[65536];
    u_char           *got;
    size_t            queued = 0, have = 0, sent_before;
    int               sv[2], bad, rounds;
    fa_int_t          rc;

    ok(fa_event_init(&cycle) == FA_OK, "event loop initialised");
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1) {
        return 2;
    }
    c = fa_connection_get(sv[0], &fa_log_stderr);
    ok(c != NULL, "connection slot");
    ok(fa_event_add_conn(c) == FA_OK, "registered with epoll");
    c->drain_handler = drain_handler;

    /* queue 4 MB in mixed pieces: write() and printf() */
    while (queued < TOTAL) {
        size_t  n = fa_min(sizeof(block), (size_t) TOTAL - queued);

        for (size_t i = 0; i < n; i++) {
            block[i] = pattern(queued + i);
        }
        if (queued % (5 * sizeof(block)) == 0 && n >= 3) {
            /* printf the first three bytes of this block */
            rc = fa_conn_printf(c, "%c%c%c", block[0], block[1], block[2]);
            rc |= fa_conn_write(c, block + 3, n - 3);
        } else {
            rc = fa_conn_write(c, block, n);
        }
        if (rc != FA_OK) {
            break;
        }
        queued += n;
    }
    is_int(fa_conn_out_pending(c), TOTAL, "4 MB queued");

    rc = fa_conn_flush(c);
    is_int(rc, FA_AGAIN, "peer not reading: flush says FA_AGAIN");
    sent_before = (size_t) c->bytes_out;
    ok(sent_before > 0 && sent_before < TOTAL, "part was sent (%zu)", sent_before);
    is_int(fa_conn_out_pending(c), TOTAL - sent_before, "pending is what was not sent");
    ok(c->write->ready == 0, "EAGAIN cleared write ready");
    is_int(drained, 0, "no drain yet");

    /* now the peer reads; the loop must push the rest from write events */
    got = malloc(TOTAL);
    for (rounds = 0; rounds < 10000 && have < TOTAL; rounds++) {
        have = peer_read(sv[1], got, have, TOTAL);
        fa_event_add_timer(&guard, 1000);
        fa_event_process(&cycle);
    }
    fa_event_del_timer(&guard);
    is_int(have, TOTAL, "peer received everything");
    is_int(fa_conn_out_pending(c), 0, "queue empty");
    ok(c->out.head == NULL && c->out.tail == NULL, "sent chunks freed");
    is_int(c->bytes_out, TOTAL, "bytes_out counted");
    is_int(drained, 1, "drain_handler called once");
    ok(drained_at < c->out.low_water, "below low_water when called");

    bad = 0;
    for (size_t i = 0; i < TOTAL; i++) {
        if (got[i] != pattern(i)) {
            bad++;
            break;
        }
    }
    is_int(bad, 0, "bytes intact and in order");

    /* a long printf goes through the temporary buffer */
    rc = fa_conn_printf(c, "%05000d|%s", 7, "end");
    is_int(rc, FA_OK, "long printf");
    is_int(fa_conn_out_pending(c), 5004, "long printf queued whole");
    is_int(fa_conn_flush(c), FA_OK, "flushed at once");
    have = peer_read(sv[1], got, 0, TOTAL);
    ok(have == 5004 && memcmp(got + 4999, "7|end", 5) == 0, "long printf intact");

    /* close after flush: output first, then the peer sees EOF */
    fa_conn_write(c, "221 bye\r\n", 9);
    fa_conn_close_after_flush(c);
    is_int(fa_connections_active(), 0, "closed once flushed");
    have = peer_read(sv[1], got, 0, TOTAL);
    ok(have == 9 && memcmp(got, "221 bye\r\n", 9) == 0, "last reply delivered");
    ok(read(sv[1], got, 1) == 0, "then EOF");

    close(sv[1]);

    /* close after flush with a peer that is slow: closes from the write event */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1) {
        return 2;
    }
    c = fa_connection_get(sv[0], &fa_log_stderr);
    fa_event_add_conn(c);
    memset(block, 'q', sizeof(block));
    for (int i = 0; i < 32; i++) {
        fa_conn_write(c, block, sizeof(block));
    }
    fa_conn_close_after_flush(c);
    is_int(fa_connections_active(), 1, "still open while output is queued");
    have = 0;
    for (rounds = 0; rounds < 10000 && fa_connections_active() > 0; rounds++) {
        have = peer_read(sv[1], got, have, TOTAL);
        fa_event_add_timer(&guard, 1000);
        fa_event_process(&cycle);
    }
    fa_event_del_timer(&guard);
    have = peer_read(sv[1], got, have, TOTAL);
    is_int(have, 32 * sizeof(block), "everything delivered before the close");
    is_int(fa_connections_active(), 0, "closed by the write event");
    close(sv[1]);

    /* close_idle closes idle sessions only */
    {
        fa_connection_t  *conn[4];
        int               peers[4];

        for (int i = 0; i < 4; i++) {
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv);
            conn[i] = fa_connection_get(sv[0], &fa_log_stderr);
            conn[i]->idle = (i % 2 == 0);
            peers[i] = sv[1];
        }
        fa_connections_close_idle();
        is_int(fa_connections_active(), 2, "close_idle closed the two idle ones");
        ok(conn[1]->fd != -1 && conn[3]->fd != -1, "busy ones still open");
        fa_connections_close_all();
        is_int(fa_connections_active(), 0, "close_all closed the rest");
        for (int i = 0; i < 4; i++) {
            close(peers[i]);
        }
    }

    free(got);
    fa_event_done(&cycle);
    return done_testing();
}
