/*
 * The thread pool: work runs off the loop thread, done() runs in it, every
 * task completes exactly once, a full queue refuses instead of growing, and
 * destroy finishes what was queued.
 */

#include "fa_core.h"
#include "fa_test.h"
#include <pthread.h>

static fa_core_conf_t  ccf = { .worker_connections = 8 };
static fa_cycle_t      cycle = { .log = &fa_log_stderr, .core_conf = &ccf };

typedef struct {
    fa_task_t   task;
    pthread_t   worker;           /* the thread work() ran in */
    int         value;
    int         done;
} job_t;

static pthread_t  loop_thread;
static int        done_in_loop = 1, completed;

static int  signals_blocked = 1;

static void
job_work(fa_task_t *t)
{
    job_t     *j = t->data;
    sigset_t   mask;

    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    if (!sigismember(&mask, SIGHUP) || !sigismember(&mask, SIGTERM)) {
        signals_blocked = 0;               /* a signal could land in this thread */
    }
    j->worker = pthread_self();
    j->value *= 2;
    usleep(1000);                         /* long enough for tasks to overlap */
}

static void
job_done(fa_task_t *t)
{
    job_t  *j = t->data;

    if (!pthread_equal(pthread_self(), loop_thread)) {
        done_in_loop = 0;
    }
    j->done++;
    completed++;
}

static void
job_init(job_t *j, int value)
{
    memset(j, 0, sizeof(*j));
    j->task.work = job_work;
    j->task.done = job_done;
    j->task.data = j;
    j->value = value;
}

int
main(void)
{
    enum { N = 200 };
    static job_t       jobs[N], extra[8];
    fa_thread_pool_t  *tp;
    int                busy = 0, off_loop = 1, doubled = 1, once = 1;

    sigset_t  unblock;

    /* the loop thread takes signals: the pool's threads must not inherit that */
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGHUP);
    sigaddset(&unblock, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
    loop_thread = pthread_self();
    fa_time_update();
    if (fa_event_init(&cycle) != FA_OK) {
        ok(0, "event loop");
        return done_testing();
    }
    tp = fa_thread_pool_create(4, N, &fa_log_stderr);
    ok(tp != NULL, "pool of 4 threads");

    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], i);
        if (fa_thread_pool_post(tp, &jobs[i].task) != FA_OK) {
            busy = -1;
        }
    }
    ok(busy == 0, "%d tasks posted", N);
    job_init(&extra[0], 0);
    ok(fa_thread_pool_post(tp, &extra[0].task) == FA_BUSY,
       "a full queue refuses a task (FA_BUSY)");

    for (int spins = 0; completed < N && spins < 10000; spins++) {
        fa_event_process(&cycle);
    }
    is_int(completed, N, "every task completed");
    for (int i = 0; i < N; i++) {
        off_loop &= !pthread_equal(jobs[i].worker, loop_thread);
        doubled &= jobs[i].value == 2 * i;
        once &= jobs[i].done == 1;
    }
    ok(off_loop, "work ran in pool threads");
    ok(done_in_loop, "done ran in the loop thread");
    ok(signals_blocked, "pool threads block HUP and TERM (they belong to the loop)");
    ok(doubled, "each work ran on its own task");
    ok(once, "each done ran exactly once");

    for (int i = 0; i < 8; i++) {
        job_init(&extra[i], i);
        fa_thread_pool_post(tp, &extra[i].task);
    }
    fa_thread_pool_destroy(tp);
    is_int(completed, N + 8, "destroy finished the queued tasks and ran their done");
    fa_event_done(&cycle);
    return done_testing();
}
