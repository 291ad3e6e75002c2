/*
 * Timers: a binary min-heap of events ordered by absolute expiry
 * (ev->timer_key, on the monotonic clock).  Each event remembers its slot in
 * ev->timer_index, so deleting or moving an armed timer is O(log n) without
 * a search: a worker with ten thousand sessions re-arms a timeout on every
 * command, and a heap keeps that cheap.
 *
 * One heap per process (one loop per worker), hence the static state.
 */

#include "fa_core.h"

#define FA_TIMER_HEAP_MIN  64

static fa_event_t  **fa_timer_heap;
static fa_uint_t     fa_timer_n;
static fa_uint_t     fa_timer_nalloc;

/*
 * Set while fa_event_expire_timers() runs.  A handler that re-arms itself
 * with 0 ms would otherwise expire again in the same pass, forever.
 */
static int           fa_timer_expiring;

static void
fa_timer_place(fa_event_t *ev, fa_uint_t i)
{
    fa_timer_heap[i] = ev;
    ev->timer_index = i;
}

static void
fa_timer_sift_up(fa_uint_t i)
{
    fa_event_t  *ev = fa_timer_heap[i];
    fa_uint_t    parent;

    while (i > 0) {
        parent = (i - 1) / 2;
        if (fa_timer_heap[parent]->timer_key <= ev->timer_key) {
            break;
        }
        fa_timer_place(fa_timer_heap[parent], i);
        i = parent;
    }
    fa_timer_place(ev, i);
}

static void
fa_timer_sift_down(fa_uint_t i)
{
    fa_event_t  *ev = fa_timer_heap[i];
    fa_uint_t    child;

    for ( ;; ) {
        child = 2 * i + 1;
        if (child >= fa_timer_n) {
            break;
        }
        if (child + 1 < fa_timer_n
            && fa_timer_heap[child + 1]->timer_key < fa_timer_heap[child]->timer_key)
        {
            child++;
        }
        if (ev->timer_key <= fa_timer_heap[child]->timer_key) {
            break;
        }
        fa_timer_place(fa_timer_heap[child], i);
        i = child;
    }
    fa_timer_place(ev, i);
}

/* after a key changed in place: it moves one way or the other */
static void
fa_timer_fix(fa_uint_t i)
{
    if (i > 0 && fa_timer_heap[(i - 1) / 2]->timer_key > fa_timer_heap[i]->timer_key) {
        fa_timer_sift_up(i);
    } else {
        fa_timer_sift_down(i);
    }
}

static fa_int_t
fa_timer_grow(void)
{
    fa_uint_t     n;
    fa_event_t  **heap;

    n = fa_timer_nalloc ? fa_timer_nalloc * 2 : FA_TIMER_HEAP_MIN;
    heap = realloc(fa_timer_heap, n * sizeof(fa_event_t *));
    if (heap == NULL) {
        return FA_ERROR;
    }
    fa_timer_heap = heap;
    fa_timer_nalloc = n;
    return FA_OK;
}

void
fa_event_add_timer(fa_event_t *ev, fa_msec_t ms)
{
    if (ms < 0) {
        ms = 0;
    }
    if (ms == 0 && fa_timer_expiring) {
        ms = 1;
    }

    /* arming a timer means any earlier timeout has been dealt with */
    ev->timedout = 0;

    if (ev->timer_set) {
        /* re-arming moves the timer: the common "reset the idle timeout" case */
        ev->timer_key = fa_current_msec + ms;
        fa_timer_fix(ev->timer_index);
        return;
    }

    if (fa_timer_n == fa_timer_nalloc && fa_timer_grow() != FA_OK) {
        /*
         * Out of memory: a lost timer would leave a session hanging for
         * ever, so report it loudly; the session still works otherwise.
         */
        fa_log_error(FA_LOG_ALERT, ev->log ? ev->log : &fa_log_stderr, errno,
                     "timer heap allocation failed, timer not set");
        return;
    }

    ev->timer_key = fa_current_msec + ms;
    ev->timer_set = 1;
    fa_timer_heap[fa_timer_n] = ev;
    ev->timer_index = fa_timer_n++;
    fa_timer_sift_up(ev->timer_index);
}

void
fa_event_del_timer(fa_event_t *ev)
{
    fa_uint_t    i = ev->timer_index;
    fa_event_t  *last;

    if (!ev->timer_set) {
        return;
    }
    ev->timer_set = 0;

    if (i >= fa_timer_n || fa_timer_heap[i] != ev) {
        /* a corrupted index must never become a wild write */
        fa_log_error(FA_LOG_ALERT, ev->log ? ev->log : &fa_log_stderr, 0,
                     "timer index %lu is stale", (unsigned long) i);
        return;
    }

    last = fa_timer_heap[--fa_timer_n];
    if (last != ev) {
        fa_timer_place(last, i);
        fa_timer_fix(i);
    }
}

fa_msec_t
fa_event_timer_next(void)
{
    fa_msec_t  left;

    if (fa_timer_n == 0) {
        return -1;
    }
    left = fa_timer_heap[0]->timer_key - fa_current_msec;
    return left > 0 ? left : 0;
}

/*
 * Always look at the root again after a handler ran: the handler may have
 * added, moved or deleted any timer, including ones that were due.
 */
void
fa_event_expire_timers(void)
{
    fa_event_t  *ev;

    fa_timer_expiring = 1;

    while (fa_timer_n > 0 && fa_timer_heap[0]->timer_key <= fa_current_msec) {
        ev = fa_timer_heap[0];
        fa_event_del_timer(ev);
        ev->timedout = 1;
        if (ev->handler) {
            ev->handler(ev);
        }
    }

    fa_timer_expiring = 0;
}

fa_uint_t
fa_event_timers_pending(int include_cancelable)
{
    fa_uint_t  n = 0;

    if (include_cancelable) {
        return fa_timer_n;
    }
    /* only a quitting worker asks this, once per loop iteration */
    for (fa_uint_t i = 0; i < fa_timer_n; i++) {
        if (!fa_timer_heap[i]->cancelable) {
            n++;
        }
    }
    return n;
}

/* first cancelable timer at or after *from, in heap order */
static fa_event_t *
fa_timer_find_cancelable(fa_uint_t *from)
{
    for (fa_uint_t i = *from; i < fa_timer_n; i++) {
        if (fa_timer_heap[i]->cancelable) {
            *from = i;
            return fa_timer_heap[i];
        }
    }
    return NULL;
}

/*
 * A quitting worker fires every cancelable timer now, so their owners
 * (idle sessions, caches) finish instead of keeping the process alive.
 *
 * Deleting slot i moves the last element into it, possibly upwards where
 * the scan has already been, so the scan repeats until a pass finds
 * nothing.  We never keep pointers across a handler call: a handler may
 * free other events.  The budget stops a handler that re-arms a
 * cancelable timer from looping for ever; such a timer just stays armed.
 */
void
fa_event_cancel_timers(void)
{
    fa_event_t  *ev;
    fa_uint_t    i, budget = fa_timer_n;
    int          found;

    do {
        found = 0;
        i = 0;
        while (budget > 0 && (ev = fa_timer_find_cancelable(&i)) != NULL) {
            found = 1;
            budget--;
            fa_event_del_timer(ev);
            ev->timedout = 1;
            if (ev->handler) {
                ev->handler(ev);
            }
        }
    } while (found && budget > 0);
}
