/*
 * The event loop: one per worker, edge-triggered epoll, a binary heap of
 * timers, and a queue of posted events run after each poll.
 *
 * A connection registers its fd once (read+write, edge-triggered); the loop
 * sets ev->ready when the kernel says so and calls ev->handler.  A handler
 * consumes until the socket says EAGAIN, which clears ready.  Timers fire by
 * calling the handler with ev->timedout set.  Posting an event (for example
 * to resume a session when a storage callback completed) runs its handler
 * from the loop, never from inside the caller's stack.
 */

#ifndef FA_EVENT_H
#define FA_EVENT_H

typedef void (*fa_event_handler_pt)(fa_event_t *ev);

struct fa_event_s {
    void                *data;        /* usually the fa_connection_t */
    fa_event_handler_pt  handler;
    fa_log_t            *log;

    unsigned             write:1;     /* the write half of a connection */
    unsigned             accept:1;    /* a listening socket */
    unsigned             active:1;    /* registered with epoll */
    unsigned             ready:1;     /* I/O possible without blocking */
    unsigned             eof:1;       /* peer shut down its side */
    unsigned             error:1;
    unsigned             timedout:1;
    unsigned             timer_set:1;
    unsigned             posted:1;
    unsigned             closed:1;
    unsigned             cancelable:1; /* timer does not keep a quitting worker alive */

    fa_msec_t            timer_key;   /* absolute expiry */
    fa_uint_t            timer_index; /* position in the heap */
    fa_queue_t           queue;       /* link in the posted queue */
};

/* loop life cycle, per worker process */
fa_int_t fa_event_init(fa_cycle_t *cycle);
void fa_event_done(fa_cycle_t *cycle);
void fa_event_process(fa_cycle_t *cycle);      /* one iteration: poll, timers, posted */

/* registration: a connection's fd for read and write, edge-triggered */
fa_int_t fa_event_add_conn(fa_connection_t *c);
fa_int_t fa_event_del_conn(fa_connection_t *c);
/* a listening socket: level-triggered, EPOLLEXCLUSIVE among workers */
fa_int_t fa_event_add_listen(fa_listening_t *ls, fa_event_t *ev);
fa_int_t fa_event_del_listen(fa_listening_t *ls, fa_event_t *ev);

/*
 * A foreign fd, one that a library owns (a resolver's sockets):
 * level-triggered, ev->handler runs while it is readable, or writable too
 * with want_write.  Adding it again changes what it waits for.  The owner
 * closes the fd, after fa_event_del_fd.
 */
fa_int_t fa_event_add_fd(int fd, fa_event_t *ev, int want_write);
fa_int_t fa_event_del_fd(int fd, fa_event_t *ev);

/* timers */
void fa_event_add_timer(fa_event_t *ev, fa_msec_t ms);
void fa_event_del_timer(fa_event_t *ev);
fa_msec_t fa_event_timer_next(void);           /* ms until the next one, -1 none */
void fa_event_expire_timers(void);
fa_uint_t fa_event_timers_pending(int include_cancelable);
void fa_event_cancel_timers(void);             /* fire cancelable timers now */

/* posted events */
extern fa_queue_t  fa_posted_events;
void fa_event_post(fa_event_t *ev);
void fa_event_delete_posted(fa_event_t *ev);
void fa_event_process_posted(void);

/*
 * Cross-thread wake-up: an eventfd in the loop.  fa_notify_send() may be
 * called from any thread; the handler runs in the loop thread.
 */
typedef struct {
    int                  fd;
    fa_event_t           event;
    void               (*handler)(void *data);
    void                *data;
} fa_notify_t;

fa_int_t fa_notify_init(fa_notify_t *n, void (*handler)(void *), void *data, fa_log_t *log);
void fa_notify_send(fa_notify_t *n);
void fa_notify_done(fa_notify_t *n);

#endif /* FA_EVENT_H */
