/*
 * A small pool of threads for work that would stall the event loop: password
 * hashing (tens of milliseconds), file work that can block on a slow disk.
 *
 * A task's work() runs in a pool thread and must not touch the loop's state
 * (connections, timers, pools not owned by the task); its done() runs
 * afterwards in the loop thread, posted through an eventfd, where it may
 * resume the session.  Tasks run in FIFO order; a full queue refuses new
 * tasks (FA_BUSY) rather than growing without bound.
 */

#ifndef FA_THREAD_POOL_H
#define FA_THREAD_POOL_H

typedef struct fa_thread_pool_s  fa_thread_pool_t;
typedef struct fa_task_s         fa_task_t;

struct fa_task_s {
    void       (*work)(fa_task_t *task);     /* in a pool thread */
    void       (*done)(fa_task_t *task);     /* in the loop thread */
    void        *data;
    fa_task_t   *next;                        /* owned by the pool while queued */
};

fa_thread_pool_t *fa_thread_pool_create(fa_uint_t threads, fa_uint_t max_queue,
    fa_log_t *log);
fa_int_t fa_thread_pool_post(fa_thread_pool_t *tp, fa_task_t *task);  /* FA_OK, FA_BUSY */
/* stop the threads after the queued tasks; done() of finished tasks still runs */
void fa_thread_pool_destroy(fa_thread_pool_t *tp);

#endif /* FA_THREAD_POOL_H */
