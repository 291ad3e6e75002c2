/*
 * The writer thread and the life of an operation (see fa_lmdb.h).
 *
 * Group commit: the loop queues write operations and returns FA_AGAIN; the
 * writer takes everything queued, syncs the blob files those appends wrote,
 * opens one write transaction (only this thread ever waits for LMDB's
 * writer lock, which another process's writer may hold), applies every
 * operation, commits once, and posts the whole batch back to the loop with
 * one eventfd write.  While a batch is being synced the next accumulates,
 * so the batch grows with the load by itself.
 *
 * An operation validates before it changes anything, so one that fails
 * (over quota, no such mailbox) leaves the transaction as it found it and
 * the others still commit.  When LMDB itself fails inside an operation the
 * transaction is lost: the batch is replayed without that operation.  When
 * the map is full the writer doubles it and replays the whole batch.
 *
 * The blob lock (flock on blobs/, across processes): a batch whose appends
 * rename files into blobs/ holds it shared from the renames to the end of
 * its commit, and a batch that lists blobs/ to find orphans (a check's
 * repair) holds it exclusive.  So a file renamed for a commit still to come
 * is never taken for an orphan, and the lock is always taken before LMDB's
 * writer lock, never while holding it.
 */

#include "fa_lmdb.h"
#include <signal.h>
#include <sys/file.h>

#define FA_LMDB_BATCH_OPS    1024
#define FA_LMDB_BATCH_BYTES  (64 * 1024 * 1024)   /* inline bodies: dirty pages */
#define FA_LMDB_TRIES        32

struct fa_lmdb_writer_s {
    fa_lmdb_t          *lm;
    pthread_t           thread;
    pthread_mutex_t     lock;
    pthread_cond_t      cond;
    fa_lmdb_op_t       *queue, *queue_tail;
    fa_lmdb_op_t       *done, *done_tail;
    fa_notify_t         notify;
    uint64_t            batches, ops;      /* written by the thread, read at stop */
    unsigned            stopping:1;
};

static void fa_lmdb_op_posted(fa_event_t *ev);

fa_lmdb_op_t *
fa_lmdb_op_alloc(fa_lmdb_t *lm, size_t size)
{
    fa_lmdb_op_t  *op = fa_calloc(size, lm->log);

    if (op == NULL) {
        return NULL;
    }
    op->lm = lm;
    op->event.data = op;
    op->event.handler = fa_lmdb_op_posted;
    op->event.log = lm->log;
    fa_queue_insert_tail(&lm->live, &op->live);
    return op;
}

static void
fa_lmdb_op_unlinks_free(fa_lmdb_op_t *op)
{
    fa_lmdb_unlink_t  *u, *next;

    for (u = op->unlinks; u; u = next) {
        next = u->next;
        free(u);
    }
    op->unlinks = NULL;
}

void
fa_lmdb_op_free(fa_lmdb_op_t *op)
{
    if (op->reset) {
        op->reset(op);
    }
    if (op->destroy) {
        op->destroy(op);
    }
    fa_lmdb_op_unlinks_free(op);
    fa_event_delete_posted(&op->event);
    fa_queue_remove(&op->live);
    free(op);
}

/* a read finished in the loop: its callback runs from the loop, not from inside the call */
fa_int_t
fa_lmdb_op_post(fa_lmdb_op_t *op)
{
    fa_event_post(&op->event);
    return FA_AGAIN;
}

static void
fa_lmdb_op_posted(fa_event_t *ev)
{
    fa_lmdb_op_t  *op = ev->data;

    op->deliver(op);
    fa_lmdb_op_free(op);
}

void
fa_lmdb_op_changed(fa_lmdb_op_t *op, uint64_t box_id)
{
    if (op->changed[0] == 0 || op->changed[0] == box_id) {
        op->changed[0] = box_id;
    } else {
        op->changed[1] = box_id;
    }
}

/* a blob to remove once the batch committed: its last reference went */
fa_int_t
fa_lmdb_op_unlink(fa_lmdb_op_t *op, const u_char *id, int on_success)
{
    fa_lmdb_unlink_t  *u = fa_calloc(sizeof(fa_lmdb_unlink_t), op->lm->log);

    if (u == NULL) {
        return FA_LMDB_FAILED;
    }
    memcpy(u->id, id, FA_LMDB_BODY_ID_LEN);
    u->on_success = on_success ? 1 : 0;
    u->next = op->unlinks;
    op->unlinks = u;
    return FA_OK;
}

/* ---- the thread ---- */

static fa_int_t
fa_lmdb_batch_try(fa_lmdb_t *lm, fa_lmdb_op_t *batch)
{
    MDB_txn       *txn;
    fa_lmdb_op_t  *op;

    if (fa_lmdb_write_begin(lm, &txn) != FA_OK) {
        return FA_ERROR;
    }
    for (op = batch; op; op = op->next) {
        if (op->skip) {
            continue;
        }
        if (op->reset) {
            op->reset(op);
        }
        fa_lmdb_op_unlinks_free(op);
        op->changed[0] = op->changed[1] = 0;
        op->rc = op->apply(op, txn);
        if (op->rc == FA_LMDB_RETRY || op->rc == FA_LMDB_FAILED) {
            fa_int_t rc = op->rc;
            fa_lmdb_write_end(lm, txn, 0);
            if (rc == FA_LMDB_FAILED) {
                op->rc = FA_ERROR;
                op->skip = 1;
            }
            return rc;
        }
    }
    return fa_lmdb_write_end(lm, txn, 1);
}

static void
fa_lmdb_batch_fail(fa_lmdb_op_t *batch, fa_int_t rc)
{
    for (fa_lmdb_op_t *op = batch; op; op = op->next) {
        if (!op->skip) {
            op->rc = rc;
            op->skip = 1;
        }
    }
}

/* the blob files of this batch's appends are on disk before the index is */
static void
fa_lmdb_batch_prepare(fa_lmdb_t *lm, fa_lmdb_op_t *batch)
{
    fa_lmdb_op_t  *op;
    int            renamed = 0;

    for (op = batch; op; op = op->next) {
        if (op->prepare && !op->skip) {
            op->rc = op->prepare(op);
            if (op->rc != FA_OK) {
                op->skip = 1;
            } else {
                renamed = 1;
            }
        }
    }
    if (renamed && fsync(lm->blobs_fd) == -1) {
        fa_log_error(FA_LOG_CRIT, lm->log, errno, "lmdb storage: fsync(\"%s\") failed",
                     lm->blobs);
        for (op = batch; op; op = op->next) {
            if (op->prepare && !op->skip) {
                op->rc = FA_ERROR;
                op->skip = 1;
            }
        }
    }
}

static void
fa_lmdb_batch_finish(fa_lmdb_t *lm, fa_lmdb_op_t *batch)
{
    char        path[PATH_MAX];
    uint64_t    ids[2 * 64];
    fa_uint_t   n = 0;

    for (fa_lmdb_op_t *op = batch; op; op = op->next) {
        for (fa_lmdb_unlink_t *u = op->unlinks; u; u = u->next) {
            if (u->on_success == (op->rc == FA_OK)) {
                fa_lmdb_blob_path(lm, u->id, path, sizeof(path));
                if (unlink(path) == -1 && errno != ENOENT) {
                    fa_log_error(FA_LOG_WARN, lm->log, errno, "lmdb storage: unlink(\"%s\") "
                                 "failed", path);
                }
            }
        }
        for (int i = 0; i < 2 && op->rc == FA_OK; i++) {
            if (op->changed[i]) {
                ids[n++] = op->changed[i];
            }
            if (n == fa_nelems(ids)) {
                fa_lmdb_notify_bump(lm, ids, n);
                n = 0;
            }
        }
    }
    if (n) {
        fa_lmdb_notify_bump(lm, ids, n);
    }
}

/* the ops that would add data fail: the map is full and may not grow */
static int
fa_lmdb_batch_refuse(fa_lmdb_op_t *batch)
{
    int  n = 0;

    for (fa_lmdb_op_t *op = batch; op; op = op->next) {
        if (op->grows && !op->skip) {
            op->rc = FA_STORAGE_NOSPACE;
            op->skip = 1;
            n++;
        }
    }
    return n;
}

/*
 * While the map is full, adding ops are refused at once, so that whatever
 * room is left (and the reserve) serves the ops that free space; the map
 * is no longer full once a sixteenth of it is free again.
 */
static void
fa_lmdb_batch_check_full(fa_lmdb_t *lm, fa_lmdb_op_t *batch)
{
    if (lm->full && fa_lmdb_free_bytes(lm) > lm->map_size / 16) {
        lm->full = 0;
    }
    if (lm->full) {
        fa_lmdb_batch_refuse(batch);
    }
}

static fa_int_t
fa_lmdb_batch_grow(fa_lmdb_t *lm, fa_lmdb_op_t *batch)
{
    fa_int_t  rc = fa_lmdb_grow(lm, 0);

    if (rc != FA_STORAGE_NOSPACE) {
        return rc;
    }
    lm->full = 1;
    if (fa_lmdb_batch_refuse(batch)) {
        return FA_OK;                     /* replay what is left, in the same map */
    }
    return fa_lmdb_grow(lm, 1);
}

fa_int_t
fa_lmdb_blobs_lock(int fd, int how)
{
    int  rc;

    do {
        rc = flock(fd, how);
    } while (rc == -1 && errno == EINTR);
    return rc == 0 ? FA_OK : FA_ERROR;
}

/* the blob lock this batch needs (see the top): 0, LOCK_SH or LOCK_EX */
static int
fa_lmdb_batch_lock(fa_lmdb_t *lm, fa_lmdb_op_t *batch)
{
    int  how = 0;

    for (fa_lmdb_op_t *op = batch; op; op = op->next) {
        if (op->sweeps) {
            how = LOCK_EX;
        } else if (op->prepare && how == 0) {
            how = LOCK_SH;
        }
    }
    if (how && fa_lmdb_blobs_lock(lm->blobs_fd, how) != FA_OK) {
        fa_log_error(FA_LOG_CRIT, lm->log, errno, "lmdb storage: flock(\"%s\") failed",
                     lm->blobs);
        for (fa_lmdb_op_t *op = batch; op; op = op->next) {
            if (op->sweeps || op->prepare) {
                op->rc = FA_ERROR;
                op->skip = 1;
            }
        }
        return 0;
    }
    return how;
}

static void
fa_lmdb_batch_run(fa_lmdb_t *lm, fa_lmdb_op_t *batch)
{
    fa_int_t  rc = FA_ERROR;
    int       locked = fa_lmdb_batch_lock(lm, batch);

    fa_lmdb_batch_prepare(lm, batch);
    fa_lmdb_batch_check_full(lm, batch);
    for (int tries = 0; tries < FA_LMDB_TRIES; tries++) {
        rc = fa_lmdb_batch_try(lm, batch);
        if (rc == FA_LMDB_RETRY) {
            rc = fa_lmdb_batch_grow(lm, batch);
            if (rc != FA_OK) {
                break;
            }
            continue;
        }
        if (rc != FA_LMDB_FAILED) {
            break;                        /* committed, or the commit failed */
        }
    }
    if (rc != FA_OK) {
        fa_lmdb_batch_fail(batch, rc == FA_LMDB_RETRY || rc == FA_LMDB_FAILED
                                  ? FA_ERROR : rc);
    }
    fa_lmdb_batch_finish(lm, batch);     /* a sweep's unlinks, still under the lock */
    if (locked) {
        fa_lmdb_blobs_lock(lm->blobs_fd, LOCK_UN);
    }
}

/* up to FA_LMDB_BATCH_OPS operations or _BYTES of inline bodies; the rest waits */
static fa_lmdb_op_t *
fa_lmdb_writer_take(fa_lmdb_writer_t *w)
{
    fa_lmdb_op_t  *batch = w->queue, *last = w->queue;
    size_t         bytes = last->weight;
    fa_uint_t      n = 1;

    while (last->next && n < FA_LMDB_BATCH_OPS && bytes + last->next->weight
           <= FA_LMDB_BATCH_BYTES)
    {
        last = last->next;
        bytes += last->weight;
        n++;
    }
    w->queue = last->next;
    if (w->queue == NULL) {
        w->queue_tail = NULL;
    }
    last->next = NULL;
    w->batches++;
    w->ops += n;
    return batch;
}

static void *
fa_lmdb_writer_main(void *arg)
{
    fa_lmdb_writer_t  *w = arg;
    fa_lmdb_op_t      *batch, *last;
    int                wake;

    pthread_mutex_lock(&w->lock);
    for ( ;; ) {
        while (w->queue == NULL && !w->stopping) {
            pthread_cond_wait(&w->cond, &w->lock);
        }
        if (w->queue == NULL) {
            break;                        /* stopping, and everything is committed */
        }
        batch = fa_lmdb_writer_take(w);
        pthread_mutex_unlock(&w->lock);

        fa_lmdb_batch_run(w->lm, batch);

        for (last = batch; last->next; last = last->next) { /* void */ }
        pthread_mutex_lock(&w->lock);
        wake = w->done == NULL;           /* else the loop is told already */
        if (w->done_tail) {
            w->done_tail->next = batch;
        } else {
            w->done = batch;
        }
        w->done_tail = last;
        if (wake && !w->stopping) {
            fa_notify_send(&w->notify);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* in the loop: deliver every finished operation, then tell the watchers */
static void
fa_lmdb_writer_done(void *data)
{
    fa_lmdb_writer_t  *w = data;
    fa_lmdb_op_t      *op, *next;

    pthread_mutex_lock(&w->lock);
    op = w->done;
    w->done = w->done_tail = NULL;
    pthread_mutex_unlock(&w->lock);

    for ( ; op; op = next) {
        next = op->next;
        op->deliver(op);
        fa_lmdb_op_free(op);
    }
    fa_lmdb_notify_check(w->lm);
}

static fa_int_t
fa_lmdb_writer_start(fa_lmdb_t *lm)
{
    fa_lmdb_writer_t  *w;
    sigset_t           all, old;
    int                err;

    w = fa_calloc(sizeof(fa_lmdb_writer_t), lm->log);
    if (w == NULL) {
        return FA_ERROR;
    }
    w->lm = lm;
    if (fa_notify_init(&w->notify, fa_lmdb_writer_done, w, lm->log) != FA_OK) {
        free(w);
        return FA_ERROR;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);

    /* signals are the loop's business: the thread starts with all blocked */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&w->thread, NULL, fa_lmdb_writer_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        fa_log_error(FA_LOG_ALERT, lm->log, err, "lmdb storage: pthread_create() failed");
        fa_notify_done(&w->notify);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
        free(w);
        return FA_ERROR;
    }
    lm->writer = w;
    return FA_OK;
}

/* FA_AGAIN; on FA_ERROR the op is freed and the callback will not run */
fa_int_t
fa_lmdb_op_submit(fa_lmdb_op_t *op)
{
    fa_lmdb_t         *lm = op->lm;
    fa_lmdb_writer_t  *w;

    if (lm->writer == NULL && fa_lmdb_writer_start(lm) != FA_OK) {
        fa_lmdb_op_free(op);
        return FA_ERROR;
    }
    w = lm->writer;
    op->next = NULL;
    pthread_mutex_lock(&w->lock);
    if (w->queue_tail) {
        w->queue_tail->next = op;
    } else {
        w->queue = op;
    }
    w->queue_tail = op;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return FA_AGAIN;
}

void
fa_lmdb_writer_stop(fa_lmdb_t *lm)
{
    fa_lmdb_writer_t  *w = lm->writer;

    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);

    fa_log_error(FA_LOG_INFO, lm->log, 0, "lmdb storage \"%s\": %" PRIu64 " commits for %"
                 PRIu64 " operations", lm->path, w->batches, w->ops);
    fa_notify_done(&w->notify);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
    lm->writer = NULL;
}

/* at close: what was never delivered is freed without calling back */
void
fa_lmdb_ops_drop(fa_lmdb_t *lm)
{
    while (!fa_queue_empty(&lm->live)) {
        fa_lmdb_op_free(fa_queue_data(fa_queue_head(&lm->live), fa_lmdb_op_t, live));
    }
}
