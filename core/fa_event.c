/*
 * The event loop (see fa_event.h): one epoll instance per worker process.
 *
 * Connections are registered once, edge-triggered, for both directions:
 * no epoll_ctl() per state change, and a handler that consumes until EAGAIN
 * never misses an edge.  Listening sockets are level-triggered with
 * EPOLLEXCLUSIVE: every worker polls the same fds, and the kernel wakes one
 * of them per incoming connection instead of all (the thundering herd).
 *
 * epoll_event.data.ptr is tagged in its low bits:
 *   bit 0  a bare fa_event_t (listener, notify) rather than a connection
 *   bit 1  for a connection, its instance bit when it was registered
 *
 * Stale events: a handler may close a connection whose event is still
 * waiting further down the same batch, and an accept later in the batch may
 * even reuse the slot.  Unregistering (fa_event_del_conn, which
 * fa_conn_close calls) blanks the rest of the batch for that connection;
 * the instance bit and the fd == -1 check are the second line of defence.
 */

#include "fa_core.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>

#define FA_EVENT_BATCH         512

#define FA_EVENT_TAG_PLAIN     0x1
#define FA_EVENT_TAG_INSTANCE  0x2
#define FA_EVENT_TAG_MASK      0x3

_Static_assert(_Alignof(fa_connection_t) >= 4, "tag bits need 4-byte alignment");
_Static_assert(_Alignof(fa_event_t) >= 4, "tag bits need 4-byte alignment");

fa_queue_t  fa_posted_events = { &fa_posted_events, &fa_posted_events };

static int                 fa_epoll_fd = -1;
static struct epoll_event  fa_event_list[FA_EVENT_BATCH];
static int                 fa_event_nready;   /* entries in the batch */
static int                 fa_event_cur;      /* entry being dispatched */

static void fa_event_dispatch(struct epoll_event *ee);
static void fa_notify_read_handler(fa_event_t *ev);

fa_int_t
fa_event_init(fa_cycle_t *cycle)
{
    fa_log_t   *log = (cycle && cycle->log) ? cycle->log : &fa_log_stderr;
    fa_uint_t   n = 0;

    if (fa_epoll_fd == -1) {
        fa_epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (fa_epoll_fd == -1) {
            fa_log_error(FA_LOG_EMERG, log, errno, "epoll_create1() failed");
            return FA_ERROR;
        }
    }
    fa_time_update();

    if (cycle && cycle->core_conf) {
        n = cycle->core_conf->worker_connections;
    }
    if (fa_connections_init(cycle, n) != FA_OK) {
        fa_event_done(cycle);
        return FA_ERROR;
    }
    return FA_OK;
}

void
fa_event_done(fa_cycle_t *cycle)
{
    (void) cycle;

    if (fa_epoll_fd != -1) {
        close(fa_epoll_fd);
        fa_epoll_fd = -1;
    }
}

/* blank what is left of the current batch for one registration */
static void
fa_event_forget(uintptr_t key)
{
    uintptr_t  p;

    for (int i = fa_event_cur + 1; i < fa_event_nready; i++) {
        p = (uintptr_t) fa_event_list[i].data.ptr;
        if ((p & ~(uintptr_t) FA_EVENT_TAG_INSTANCE) == key) {
            fa_event_list[i].data.ptr = NULL;
        }
    }
}

fa_int_t
fa_event_add_conn(fa_connection_t *c)
{
    struct epoll_event  ee;

    if (c->read->active) {
        return FA_OK;
    }
    ee.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ee.data.ptr = (void *) ((uintptr_t) c | (c->instance ? FA_EVENT_TAG_INSTANCE : 0));

    if (epoll_ctl(fa_epoll_fd, EPOLL_CTL_ADD, c->fd, &ee) == -1) {
        fa_log_error(FA_LOG_ALERT, c->log, errno, "epoll_ctl(ADD, %d) failed", c->fd);
        return FA_ERROR;
    }
    c->read->active = 1;
    c->write->active = 1;
    return FA_OK;
}

/*
 * Explicit removal even though close() would do it: a copy of the fd in
 * another process (a fork without exec) would keep the registration, and
 * with it events for a slot that is no longer this connection.
 */
fa_int_t
fa_event_del_conn(fa_connection_t *c)
{
    fa_int_t  rc = FA_OK;

    fa_event_forget((uintptr_t) c);

    if (c->read->active && c->fd != -1
        && epoll_ctl(fa_epoll_fd, EPOLL_CTL_DEL, c->fd, NULL) == -1)
    {
        fa_log_error(FA_LOG_ALERT, c->log, errno, "epoll_ctl(DEL, %d) failed", c->fd);
        rc = FA_ERROR;
    }
    c->read->active = 0;
    c->write->active = 0;
    return rc;
}

fa_int_t
fa_event_add_listen(fa_listening_t *ls, fa_event_t *ev)
{
    struct epoll_event  ee;
    int                 rc;

    ee.events = EPOLLIN | EPOLLEXCLUSIVE;
    ee.data.ptr = (void *) ((uintptr_t) ev | FA_EVENT_TAG_PLAIN);

    rc = epoll_ctl(fa_epoll_fd, EPOLL_CTL_ADD, ls->fd, &ee);
    if (rc == -1 && errno == EINVAL) {
        /* kernels before 4.5: a thundering herd is better than no listener */
        ee.events = EPOLLIN;
        rc = epoll_ctl(fa_epoll_fd, EPOLL_CTL_ADD, ls->fd, &ee);
    }
    if (rc == -1) {
        fa_log_error(FA_LOG_ALERT, ev->log ? ev->log : &fa_log_stderr, errno,
                     "epoll_ctl(ADD, %d) for a listener failed", ls->fd);
        return FA_ERROR;
    }
    ev->active = 1;
    return FA_OK;
}

fa_int_t
fa_event_del_listen(fa_listening_t *ls, fa_event_t *ev)
{
    fa_event_forget((uintptr_t) ev | FA_EVENT_TAG_PLAIN);
    ev->active = 0;
    ev->ready = 0;

    if (epoll_ctl(fa_epoll_fd, EPOLL_CTL_DEL, ls->fd, NULL) == -1) {
        fa_log_error(FA_LOG_ALERT, ev->log ? ev->log : &fa_log_stderr, errno,
                     "epoll_ctl(DEL, %d) for a listener failed", ls->fd);
        return FA_ERROR;
    }
    return FA_OK;
}

fa_int_t
fa_event_add_fd(int fd, fa_event_t *ev, int want_write)
{
    struct epoll_event  ee;

    ee.events = EPOLLIN | (want_write ? EPOLLOUT : 0);
    ee.data.ptr = (void *) ((uintptr_t) ev | FA_EVENT_TAG_PLAIN);
    if (epoll_ctl(fa_epoll_fd, ev->active ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ee) == -1) {
        fa_log_error(FA_LOG_ALERT, ev->log ? ev->log : &fa_log_stderr, errno,
                     "epoll_ctl(%s, %d) failed", ev->active ? "MOD" : "ADD", fd);
        return FA_ERROR;
    }
    ev->active = 1;
    ev->write = want_write ? 1 : 0;
    return FA_OK;
}

fa_int_t
fa_event_del_fd(int fd, fa_event_t *ev)
{
    fa_event_forget((uintptr_t) ev | FA_EVENT_TAG_PLAIN);
    if (!ev->active) {
        return FA_OK;
    }
    ev->active = 0;
    ev->ready = 0;
    if (epoll_ctl(fa_epoll_fd, EPOLL_CTL_DEL, fd, NULL) == -1) {
        fa_log_error(FA_LOG_ALERT, ev->log ? ev->log : &fa_log_stderr, errno,
                     "epoll_ctl(DEL, %d) failed", fd);
        return FA_ERROR;
    }
    return FA_OK;
}

void
fa_event_process(fa_cycle_t *cycle)
{
    fa_msec_t  timer;
    int        n, err;

    timer = fa_event_timer_next();
    if (!fa_queue_empty(&fa_posted_events)) {
        timer = 0;                       /* posted work runs without sleeping */
    } else if (timer > INT_MAX) {
        timer = INT_MAX;
    }

    /*
     * Workers keep their signals blocked and let them in only while waiting
     * here, atomically: a signal can never slip between the caller's flag
     * checks and the wait (see fa_process.c).
     */
    sigset_t  waitmask;

    sigemptyset(&waitmask);
    n = epoll_pwait(fa_epoll_fd, fa_event_list, FA_EVENT_BATCH, (int) timer, &waitmask);
    err = errno;
    fa_time_update();

    if (n == -1) {
        if (err != EINTR) {              /* EINTR is a signal: the caller checks flags */
            fa_log_error(FA_LOG_ALERT, (cycle && cycle->log) ? cycle->log : &fa_log_stderr,
                         err, "epoll_pwait() failed");
        }
        n = 0;
    }

    fa_event_nready = n;
    for (fa_event_cur = 0; fa_event_cur < n; fa_event_cur++) {
        fa_event_dispatch(&fa_event_list[fa_event_cur]);
    }
    fa_event_nready = 0;
    fa_event_cur = 0;

    fa_event_expire_timers();
    fa_event_process_posted();
}

static int
fa_event_conn_gone(fa_connection_t *c, unsigned instance)
{
    return c->fd == -1 || c->destroyed || c->instance != instance;
}

static void
fa_event_dispatch_conn(fa_connection_t *c, unsigned instance, uint32_t revents)
{
    fa_event_t  *rev = c->read, *wev = c->write;

    if (fa_event_conn_gone(c, instance)) {
        return;
    }
    if (revents & EPOLLERR) {
        rev->error = 1;
        wev->error = 1;
    }
    if (revents & (EPOLLRDHUP | EPOLLHUP)) {
        rev->eof = 1;
    }

    if ((revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && rev->active) {
        rev->ready = 1;
        if (rev->handler) {
            rev->handler(rev);
        }
    }

    /* the read handler may have closed the connection, or closed and reused it */
    if (fa_event_conn_gone(c, instance)) {
        return;
    }

    if ((revents & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && wev->active) {
        wev->ready = 1;
        if (wev->handler) {
            wev->handler(wev);
        }
    }
}

static void
fa_event_dispatch(struct epoll_event *ee)
{
    uintptr_t    p = (uintptr_t) ee->data.ptr;
    fa_event_t  *ev;

    if (p == 0) {
        return;                          /* forgotten: unregistered meanwhile */
    }
    if (p & FA_EVENT_TAG_PLAIN) {
        ev = (fa_event_t *) (p & ~(uintptr_t) FA_EVENT_TAG_MASK);
        if (ev->active && ev->handler) {
            ev->ready = 1;
            ev->handler(ev);
        }
        return;
    }
    fa_event_dispatch_conn((fa_connection_t *) (p & ~(uintptr_t) FA_EVENT_TAG_MASK),
                           (p & FA_EVENT_TAG_INSTANCE) ? 1 : 0, ee->events);
}

/* posted events */

void
fa_event_post(fa_event_t *ev)
{
    if (ev->posted) {
        return;
    }
    ev->posted = 1;
    fa_queue_insert_tail(&fa_posted_events, &ev->queue);
}

void
fa_event_delete_posted(fa_event_t *ev)
{
    if (!ev->posted) {
        return;
    }
    ev->posted = 0;
    fa_queue_remove(&ev->queue);
}

/*
 * Run the events posted so far.  Events posted by these handlers wait for
 * the next iteration (which then polls without sleeping): a handler that
 * keeps re-posting itself cannot starve I/O and timers.
 */
void
fa_event_process_posted(void)
{
    fa_queue_t   batch, *q;
    fa_event_t  *ev;

    if (fa_queue_empty(&fa_posted_events)) {
        return;
    }
    batch.next = fa_posted_events.next;
    batch.prev = fa_posted_events.prev;
    batch.next->prev = &batch;
    batch.prev->next = &batch;
    fa_queue_init(&fa_posted_events);

    while (!fa_queue_empty(&batch)) {
        q = fa_queue_head(&batch);
        ev = fa_queue_data(q, fa_event_t, queue);
        fa_event_delete_posted(ev);
        if (ev->handler) {
            ev->handler(ev);
        }
    }
}

/* cross-thread notification */

fa_int_t
fa_notify_init(fa_notify_t *n, void (*handler)(void *), void *data, fa_log_t *log)
{
    struct epoll_event  ee;

    log = log ? log : &fa_log_stderr;
    memset(&n->event, 0, sizeof(fa_event_t));
    n->handler = handler;
    n->data = data;

    n->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (n->fd == -1) {
        fa_log_error(FA_LOG_ALERT, log, errno, "eventfd() failed");
        return FA_ERROR;
    }

    n->event.data = n;
    n->event.handler = fa_notify_read_handler;
    n->event.log = log;

    ee.events = EPOLLIN;
    ee.data.ptr = (void *) ((uintptr_t) &n->event | FA_EVENT_TAG_PLAIN);
    if (epoll_ctl(fa_epoll_fd, EPOLL_CTL_ADD, n->fd, &ee) == -1) {
        fa_log_error(FA_LOG_ALERT, log, errno, "epoll_ctl(ADD) for eventfd failed");
        close(n->fd);
        n->fd = -1;
        return FA_ERROR;
    }
    n->event.active = 1;
    return FA_OK;
}

/* may run in any thread: only a write(2) on the eventfd */
void
fa_notify_send(fa_notify_t *n)
{
    uint64_t  one = 1;
    ssize_t   r;

    do {
        r = write(n->fd, &one, sizeof(one));
    } while (r == -1 && errno == EINTR);

    /* EAGAIN means the counter is saturated: a wake-up is pending anyway */
}

static void
fa_notify_read_handler(fa_event_t *ev)
{
    fa_notify_t  *n = ev->data;
    uint64_t      count;
    ssize_t       r;

    /* one read resets the counter: many sends, one wake-up */
    do {
        r = read(n->fd, &count, sizeof(count));
    } while (r == -1 && errno == EINTR);

    if (r == (ssize_t) sizeof(count) && n->handler) {
        n->handler(n->data);
    }
}

void
fa_notify_done(fa_notify_t *n)
{
    if (n->fd == -1) {
        return;
    }
    fa_event_forget((uintptr_t) &n->event | FA_EVENT_TAG_PLAIN);
    epoll_ctl(fa_epoll_fd, EPOLL_CTL_DEL, n->fd, NULL);
    close(n->fd);
    n->fd = -1;
    n->event.active = 0;
}
