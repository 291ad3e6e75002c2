/*
 * The thread pool (see fa_thread_pool.h).  Two queues under one mutex: tasks
 * waiting for a thread, and tasks finished and waiting for the loop.  The
 * eventfd is written once per batch of completions, not once per task.
 */

#include "fa_core.h"
#include <pthread.h>

struct fa_thread_pool_s {
    pthread_mutex_t   lock;
    pthread_cond_t    cond;
    fa_task_t        *waiting, *waiting_tail;
    fa_task_t        *finished, *finished_tail;
    fa_uint_t         queued;          /* waiting + running */
    fa_uint_t         max_queue;
    fa_uint_t         nthreads;
    pthread_t        *threads;
    unsigned          stopping:1;
    fa_notify_t       notify;
    fa_log_t         *log;
};

static void
fa_task_append(fa_task_t **head, fa_task_t **tail, fa_task_t *t)
{
    t->next = NULL;
    if (*tail) {
        (*tail)->next = t;
    } else {
        *head = t;
    }
    *tail = t;
}

static void *
fa_thread_pool_main(void *arg)
{
    fa_thread_pool_t  *tp = arg;
    fa_task_t         *t;
    int                wake;

    pthread_mutex_lock(&tp->lock);
    for ( ;; ) {
        while (tp->waiting == NULL && !tp->stopping) {
            pthread_cond_wait(&tp->cond, &tp->lock);
        }
        if (tp->waiting == NULL) {
            break;                        /* stopping, and nothing left to do */
        }
        t = tp->waiting;
        tp->waiting = t->next;
        if (tp->waiting == NULL) {
            tp->waiting_tail = NULL;
        }
        pthread_mutex_unlock(&tp->lock);

        t->work(t);

        pthread_mutex_lock(&tp->lock);
        wake = tp->finished == NULL;      /* the loop is not already told */
        fa_task_append(&tp->finished, &tp->finished_tail, t);
        if (wake) {
            fa_notify_send(&tp->notify);
        }
    }
    pthread_mutex_unlock(&tp->lock);
    return NULL;
}

/* in the loop: run done() of everything finished so far */
static void
fa_thread_pool_completions(void *data)
{
    fa_thread_pool_t  *tp = data;
    fa_task_t         *t, *next;

    pthread_mutex_lock(&tp->lock);
    t = tp->finished;
    tp->finished = tp->finished_tail = NULL;
    for (fa_task_t *c = t; c; c = c->next) {
        tp->queued--;
    }
    pthread_mutex_unlock(&tp->lock);

    for ( ; t; t = next) {
        next = t->next;                   /* done() may free or reuse the task */
        t->done(t);
    }
}

fa_thread_pool_t *
fa_thread_pool_create(fa_uint_t threads, fa_uint_t max_queue, fa_log_t *log)
{
    fa_thread_pool_t  *tp = fa_calloc(sizeof(fa_thread_pool_t), log);

    if (tp == NULL) {
        return NULL;
    }
    tp->log = log;
    tp->max_queue = max_queue ? max_queue : 1024;
    tp->threads = fa_calloc((threads ? threads : 1) * sizeof(pthread_t), log);
    if (tp->threads == NULL
        || fa_notify_init(&tp->notify, fa_thread_pool_completions, tp, log) != FA_OK)
    {
        free(tp->threads);
        free(tp);
        return NULL;
    }
    pthread_mutex_init(&tp->lock, NULL);
    pthread_cond_init(&tp->cond, NULL);

    /*
     * Pool threads take no signals: HUP, QUIT, TERM must reach the loop
     * thread, whose epoll_pwait is what wakes on them.  A thread inherits
     * the creator's mask, so block everything around pthread_create.
     */
    sigset_t  all, saved;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    for (fa_uint_t i = 0; i < (threads ? threads : 1); i++) {
        if (pthread_create(&tp->threads[i], NULL, fa_thread_pool_main, tp) != 0) {
            fa_log_error(FA_LOG_ALERT, log, errno, "pthread_create() failed");
            break;
        }
        tp->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (tp->nthreads == 0) {
        fa_thread_pool_destroy(tp);
        return NULL;
    }
    return tp;
}

fa_int_t
fa_thread_pool_post(fa_thread_pool_t *tp, fa_task_t *task)
{
    pthread_mutex_lock(&tp->lock);
    if (tp->queued >= tp->max_queue || tp->stopping) {
        pthread_mutex_unlock(&tp->lock);
        return FA_BUSY;
    }
    tp->queued++;
    fa_task_append(&tp->waiting, &tp->waiting_tail, task);
    pthread_cond_signal(&tp->cond);
    pthread_mutex_unlock(&tp->lock);
    return FA_OK;
}

void
fa_thread_pool_destroy(fa_thread_pool_t *tp)
{
    pthread_mutex_lock(&tp->lock);
    tp->stopping = 1;
    pthread_cond_broadcast(&tp->cond);
    pthread_mutex_unlock(&tp->lock);
    for (fa_uint_t i = 0; i < tp->nthreads; i++) {
        pthread_join(tp->threads[i], NULL);
    }
    fa_thread_pool_completions(tp);      /* the last done()s, in this thread */
    fa_notify_done(&tp->notify);
    pthread_mutex_destroy(&tp->lock);
    pthread_cond_destroy(&tp->cond);
    free(tp->threads);
    free(tp);
}
