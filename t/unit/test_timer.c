/*
 * Timer heap: order, deletion from the middle, re-arming, cancelable timers,
 * and handlers that change the heap while it is being expired.
 */

#include "fa_core.h"
#include "fa_test.h"

/* TLS is linked in the full build; a weak stub lets this test link alone */
__attribute__((weak)) void fa_ssl_free_connection(fa_connection_t *c) { (void) c; }

#define NTIMERS  10000

static fa_event_t  events[NTIMERS];
static fa_msec_t   last_key;
static int         fired, out_of_order, not_timedout;

static void
order_handler(fa_event_t *ev)
{
    if (ev->timer_key < last_key) {
        out_of_order++;
    }
    if (!ev->timedout || ev->timer_set) {
        not_timedout++;
    }
    last_key = ev->timer_key;
    fired++;
    ev->data = (void *) 1;           /* mark as fired */
}

static void
test_order(void)
{
    fa_uint_t  deleted = 0;

    fa_current_msec = 1000;
    srand(42);
    for (int i = 0; i < NTIMERS; i++) {
        events[i].handler = order_handler;
        events[i].data = NULL;
        fa_event_add_timer(&events[i], rand() % 100000);
    }
    is_int(fa_event_timers_pending(1), NTIMERS, "10000 timers armed");

    /* delete every third one: they come from all over the heap */
    for (int i = 0; i < NTIMERS; i += 3) {
        fa_event_del_timer(&events[i]);
        deleted++;
    }
    is_int(fa_event_timers_pending(1), NTIMERS - deleted, "deleted ones are gone");
    ok(fa_event_timer_next() >= 0, "next timer is known");

    /* advance the clock in steps, as the loop does */
    last_key = 0;
    while (fa_event_timers_pending(1) > 0) {
        fa_current_msec += 997;
        fa_event_expire_timers();
    }
    is_int(fired, NTIMERS - deleted, "every armed timer fired once");
    is_int(out_of_order, 0, "timers fired in expiry order");
    is_int(not_timedout, 0, "handlers saw timedout=1 and timer_set=0");

    int wrong = 0;
    for (int i = 0; i < NTIMERS; i++) {
        if ((i % 3 == 0) != (events[i].data == NULL)) {
            wrong++;
        }
    }
    is_int(wrong, 0, "deleted timers never fired");
    is_int(fa_event_timer_next(), -1, "no timer left");
}

static int  count_a;

static void
count_handler(fa_event_t *ev)
{
    (void) ev;
    count_a++;
}

static void
test_readd(void)
{
    fa_event_t  a = { .handler = count_handler }, b = { .handler = count_handler };

    fa_current_msec = 5000;
    fa_event_add_timer(&a, 1000);
    fa_event_add_timer(&b, 500);
    fa_event_add_timer(&a, 10);               /* moves, does not duplicate */
    is_int(fa_event_timers_pending(1), 2, "re-adding keeps one entry");
    is_int(fa_event_timer_next(), 10, "re-added timer is now first");

    fa_event_add_timer(&a, 2000);             /* and moves back down */
    is_int(fa_event_timer_next(), 500, "moved down again");

    fa_current_msec += 600;
    count_a = 0;
    fa_event_expire_timers();
    is_int(count_a, 1, "only the due timer fired");
    ok(b.timedout && !a.timedout, "timedout set on the expired one only");
    ok(a.timer_set && !b.timer_set, "timer_set tracks the heap");

    fa_current_msec += 5000;
    fa_event_expire_timers();
    is_int(count_a, 2, "the moved timer fired once, at its new time");

    fa_event_del_timer(&a);                   /* deleting an unarmed one is harmless */
    is_int(fa_event_timers_pending(1), 0, "heap empty");
}

/* a handler that re-arms itself for 0 ms must not loop within one pass */
static int  rearm_count;

static void
rearm_handler(fa_event_t *ev)
{
    if (++rearm_count < 1000) {
        fa_event_add_timer(ev, 0);
    }
}

/* a handler that deletes another due timer */
static fa_event_t  victim = { .handler = count_handler };

static void
killer_handler(fa_event_t *ev)
{
    (void) ev;
    fa_event_del_timer(&victim);
}

static void
test_handlers_change_heap(void)
{
    fa_event_t  r = { .handler = rearm_handler }, k = { .handler = killer_handler };

    fa_current_msec = 100000;
    rearm_count = 0;
    fa_event_add_timer(&r, 0);
    fa_event_expire_timers();
    is_int(rearm_count, 1, "a 0 ms re-arm waits for the next pass");
    ok(r.timer_set, "and stays armed");
    fa_current_msec += 1;
    fa_event_expire_timers();
    is_int(rearm_count, 2, "it fires on the next pass");
    fa_event_del_timer(&r);

    count_a = 0;
    fa_event_add_timer(&k, 10);
    fa_event_add_timer(&victim, 20);
    fa_current_msec += 100;
    fa_event_expire_timers();
    is_int(count_a, 0, "a timer deleted by an earlier handler does not fire");
    is_int(fa_event_timers_pending(1), 0, "heap empty after the pass");
}

static int  cancel_fired, cancel_timedout;

static void
cancel_handler(fa_event_t *ev)
{
    cancel_fired++;
    cancel_timedout += ev->timedout;
}

static void
test_cancelable(void)
{
    static fa_event_t  ev[100];

    fa_current_msec = 200000;
    for (int i = 0; i < 100; i++) {
        ev[i].handler = cancel_handler;
        ev[i].cancelable = (i % 2 == 0);
        fa_event_add_timer(&ev[i], 60000 + i * 7 % 13);
    }
    is_int(fa_event_timers_pending(1), 100, "100 armed");
    is_int(fa_event_timers_pending(0), 50, "50 of them keep the worker alive");

    fa_event_cancel_timers();
    is_int(cancel_fired, 50, "cancel fired every cancelable timer");
    is_int(cancel_timedout, 50, "with timedout set");
    is_int(fa_event_timers_pending(1), 50, "the others stay armed");
    is_int(fa_event_timers_pending(0), 50, "none of them cancelable");

    for (int i = 0; i < 100; i++) {
        fa_event_del_timer(&ev[i]);
    }
    is_int(fa_event_timers_pending(1), 0, "all deleted");
}

int
main(void)
{
    test_order();
    test_readd();
    test_handlers_change_heap();
    test_cancelable();
    return done_testing();
}
