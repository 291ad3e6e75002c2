/*
 * Event loop: stale events after a handler closes (and even reuses) another
 * connection of the same batch, posted events, cross-thread notify, and a
 * level-triggered listener.
 */

#include "fa_core.h"
#include "fa_test.h"
#include <pthread.h>

__attribute__((weak)) void fa_ssl_free_connection(fa_connection_t *c) { (void) c; }

static fa_core_conf_t  ccf = { .worker_connections = 8 };
static fa_cycle_t      cycle = { .log = &fa_log_stderr, .core_conf = &ccf };

static void
guard_handler(fa_event_t *ev)
{
    (void) ev;
}

/* one loop iteration that never sleeps longer than 200 ms */
static void
loop_once(void)
{
    fa_event_t  guard = { .handler = guard_handler };

    fa_event_add_timer(&guard, 200);
    fa_event_process(&cycle);
    fa_event_del_timer(&guard);
}

static fa_connection_t *
pair_conn(int *peer)
{
    int               sv[2];
    fa_connection_t  *c;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == -1) {
        exit(2);
    }
    *peer = sv[1];
    c = fa_connection_get(sv[0], &fa_log_stderr);
    if (c == NULL || fa_event_add_conn(c) != FA_OK) {
        exit(2);
    }
    return c;
}

/* stale events */

static fa_connection_t  *conn_a, *conn_b, *conn_new;
static int               peer_new, calls_a, calls_new;

static void
new_read_handler(fa_event_t *ev)
{
    (void) ev;
    calls_new++;
}

/* whichever of A and B runs first closes the other and takes its slot */
static void
killer_read_handler(fa_event_t *ev)
{
    fa_connection_t  *self = ev->data;
    fa_connection_t  *other = (self == conn_a) ? conn_b : conn_a;

    calls_a++;
    if (conn_new != NULL) {
        return;
    }
    fa_conn_close(other);
    conn_new = pair_conn(&peer_new);
    conn_new->read->handler = new_read_handler;
}

static void
test_stale(void)
{
    int  pa, pb;

    conn_a = pair_conn(&pa);
    conn_b = pair_conn(&pb);
    conn_a->read->handler = killer_read_handler;
    conn_b->read->handler = killer_read_handler;
    loop_once();                     /* the initial EPOLLOUT edges */
    calls_a = 0;

    /* both readable in the same batch */
    ok(write(pa, "x", 1) == 1 && write(pb, "y", 1) == 1, "both peers write");
    loop_once();

    is_int(calls_a, 1, "only the first handler ran, not the closed one's");
    ok(conn_new != NULL, "a new connection was made in the batch");
    ok(conn_new == conn_a || conn_new == conn_b, "and it reused the closed slot");
    is_int(calls_new, 0, "the stale event did not reach the new connection");

    ok(write(peer_new, "z", 1) == 1, "the new peer writes");
    loop_once();
    is_int(calls_new, 1, "the new connection gets its own events");

    fa_connections_close_all();
    is_int(fa_connections_active(), 0, "close_all closed everything");
    close(pa);
    close(pb);
    close(peer_new);
}

/* posted events */

static int  posted_runs;

static void
repost_handler(fa_event_t *ev)
{
    posted_runs++;
    fa_event_post(ev);               /* must wait for the next iteration */
}

static void
test_posted(void)
{
    fa_event_t  ev = { .handler = repost_handler };

    fa_event_post(&ev);
    fa_event_post(&ev);
    ok(ev.posted, "posted");
    fa_event_process_posted();
    is_int(posted_runs, 1, "posting twice runs once; a re-post waits");
    ok(ev.posted, "re-posted by its handler");
    fa_event_process(&cycle);        /* must not sleep: something is posted */
    is_int(posted_runs, 2, "the loop ran it without blocking");
    fa_event_delete_posted(&ev);
    fa_event_process_posted();
    is_int(posted_runs, 2, "deleted posted event does not run");
}

/* notify */

static int  notified;

static void
notify_handler(void *data)
{
    notified += *(int *) data;
}

static void *
notify_thread(void *arg)
{
    for (int i = 0; i < 100; i++) {
        fa_notify_send(arg);
    }
    return NULL;
}

static void
test_notify(void)
{
    fa_notify_t  n;
    int          one = 1;
    pthread_t    t;

    ok(fa_notify_init(&n, notify_handler, &one, &fa_log_stderr) == FA_OK, "notify init");
    pthread_create(&t, NULL, notify_thread, &n);
    pthread_join(t, NULL);
    for (int i = 0; i < 5 && notified == 0; i++) {
        loop_once();
    }
    is_int(notified, 1, "a hundred sends from a thread, one wake-up");
    loop_once();
    is_int(notified, 1, "and nothing more");
    fa_notify_done(&n);
}

/* listener */

static int  accepts;

static void
accept_handler(fa_event_t *ev)
{
    fa_listening_t  *ls = ev->data;
    int              fd = accept4(ls->fd, NULL, NULL, SOCK_NONBLOCK);

    if (fd != -1) {
        accepts++;
        close(fd);
    }
}

static void
test_listen(void)
{
    fa_listening_t      ls;
    struct sockaddr_in  sin = { .sin_family = AF_INET };
    socklen_t           len = sizeof(sin);
    int                 cl;

    memset(&ls, 0, sizeof(ls));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ls.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    bind(ls.fd, (struct sockaddr *) &sin, sizeof(sin));
    listen(ls.fd, 16);
    getsockname(ls.fd, (struct sockaddr *) &sin, &len);
    ls.event.data = &ls;
    ls.event.accept = 1;
    ls.event.handler = accept_handler;

    ok(fa_event_add_listen(&ls, &ls.event) == FA_OK, "listener added");
    cl = socket(AF_INET, SOCK_STREAM, 0);
    connect(cl, (struct sockaddr *) &sin, sizeof(sin));
    for (int i = 0; i < 5 && accepts == 0; i++) {
        loop_once();
    }
    is_int(accepts, 1, "accepted through the loop");
    ok(fa_event_del_listen(&ls, &ls.event) == FA_OK, "listener removed");
    close(cl);
    cl = socket(AF_INET, SOCK_STREAM, 0);
    connect(cl, (struct sockaddr *) &sin, sizeof(sin));
    loop_once();
    is_int(accepts, 1, "no accept once removed");
    close(cl);
    close(ls.fd);
}

int
main(void)
{
    if (fa_event_init(&cycle) != FA_OK) {
        return 2;
    }
    test_stale();
    test_posted();
    test_notify();
    test_listen();
    fa_event_done(&cycle);
    return done_testing();
}
