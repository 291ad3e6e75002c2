/*
 * Change notification with inotify.
 *
 * A watched folder's new/ and cur/ (deliveries, flag renames, expunges)
 * and the folder itself (the uidlist and state written at the end of every
 * change) are watched on one inotify descriptor per process.  A thread
 * blocks reading it and wakes the loop through fa_notify (the loop's event
 * API registers connections, not arbitrary descriptors); the loop then
 * calls the watches of the directories that moved.  Calls may be spurious
 * (a change of ours, a temporary file), never missed for writers on this
 * host.  A Maildir on NFS shared by several hosts would need polling too:
 * inotify does not see other hosts' changes.
 */

#include "fa_maildir.h"
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

#define FA_MAILDIR_FIRED_MAX  1024

#define FA_MAILDIR_WATCH_FILES  (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE \
                                 | IN_DELETE_SELF | IN_MOVE_SELF)
#define FA_MAILDIR_WATCH_INDEX  (IN_MOVED_TO | IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF)

struct fa_storage_watch_s {
    fa_maildir_watcher_t  *w;
    fa_storage_watch_pt    cb;
    void                  *data;
    int                    wd[3];        /* the folder, new/, cur/ */
    unsigned               fired:1;
    fa_storage_watch_t    *next;
};

struct fa_maildir_watcher_s {
    fa_maildir_t          *md;
    int                    ifd;
    int                    stopfd;
    pthread_t              thread;
    pthread_mutex_t        lock;
    int                    fired[FA_MAILDIR_FIRED_MAX];   /* wds, under lock */
    size_t                 nfired;
    unsigned               overflow:1;   /* too many to tell apart: call them all */
    fa_notify_t            notify;
    fa_storage_watch_t    *watches;
};

/* in the thread: remember which wds moved, wake the loop once per batch */
static void
fa_maildir_watch_note(fa_maildir_watcher_t *w, const u_char *buf, ssize_t n)
{
    const struct inotify_event  *ev;
    int                          wake;

    pthread_mutex_lock(&w->lock);
    wake = w->nfired == 0 && !w->overflow;
    for (ssize_t off = 0; off < n; off += (ssize_t) sizeof(*ev) + ev->len) {
        ev = (const struct inotify_event *) (buf + off);
        size_t i = 0;
        while (i < w->nfired && w->fired[i] != ev->wd) {
            i++;
        }
        if ((ev->mask & IN_Q_OVERFLOW) || (i == w->nfired && i == FA_MAILDIR_FIRED_MAX)) {
            w->overflow = 1;
        } else if (i == w->nfired) {
            w->fired[w->nfired++] = ev->wd;
        }
    }
    pthread_mutex_unlock(&w->lock);
    if (wake) {
        fa_notify_send(&w->notify);
    }
}

static void *
fa_maildir_watch_thread(void *arg)
{
    fa_maildir_watcher_t  *w = arg;
    struct pollfd          pfd[2];
    u_char                 buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    ssize_t                n;

    pfd[0].fd = w->ifd;
    pfd[0].events = POLLIN;
    pfd[1].fd = w->stopfd;
    pfd[1].events = POLLIN;
    for ( ;; ) {
        if (poll(pfd, 2, -1) < 0 && errno != EINTR) {
            break;
        }
        if (pfd[1].revents) {
            break;
        }
        while ((n = read(w->ifd, buf, sizeof(buf))) > 0) {
            fa_maildir_watch_note(w, buf, n);
        }
    }
    return NULL;
}

/* in the loop: call every watch whose directories moved */
static void
fa_maildir_watch_dispatch(void *data)
{
    fa_maildir_watcher_t  *w = data;
    fa_storage_watch_t    *x;
    int                    fired[FA_MAILDIR_FIRED_MAX], all;
    size_t                 n;

    pthread_mutex_lock(&w->lock);
    n = w->nfired;
    memcpy(fired, w->fired, n * sizeof(int));
    all = w->overflow;
    w->nfired = 0;
    w->overflow = 0;
    pthread_mutex_unlock(&w->lock);

    for (x = w->watches; x; x = x->next) {
        for (size_t i = 0; i < n && !x->fired; i++) {
            x->fired = fired[i] == x->wd[0] || fired[i] == x->wd[1] || fired[i] == x->wd[2];
        }
        x->fired |= (unsigned) all;
    }
    /* a callback may unwatch any watch: start over after each call */
    for (x = w->watches; x; ) {
        if (!x->fired) {
            x = x->next;
            continue;
        }
        x->fired = 0;
        x->cb(x->data);
        x = w->watches;
    }
}

static fa_int_t
fa_maildir_watcher_start(fa_maildir_t *md)
{
    fa_maildir_watcher_t  *w = fa_calloc(sizeof(fa_maildir_watcher_t), md->log);
    sigset_t               all, old;
    int                    err;

    if (w == NULL) {
        return FA_ERROR;
    }
    w->md = md;
    w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&w->lock, NULL);
    if (w->ifd == -1 || w->stopfd == -1
        || fa_notify_init(&w->notify, fa_maildir_watch_dispatch, w, md->log) != FA_OK)
    {
        fa_log_error(FA_LOG_ERR, md->log, errno, "maildir: cannot set up inotify");
        goto failed;
    }
    /* signals are the loop thread's business: the watcher must never take one */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    err = pthread_create(&w->thread, NULL, fa_maildir_watch_thread, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        fa_log_error(FA_LOG_ERR, md->log, err, "maildir: pthread_create() failed");
        fa_notify_done(&w->notify);
        goto failed;
    }
    md->watcher = w;
    return FA_OK;

failed:
    if (w->ifd != -1) {
        close(w->ifd);
    }
    if (w->stopfd != -1) {
        close(w->stopfd);
    }
    pthread_mutex_destroy(&w->lock);
    free(w);
    return FA_ERROR;
}

void
fa_maildir_watcher_stop(fa_maildir_t *md)
{
    fa_maildir_watcher_t  *w = md->watcher;
    fa_storage_watch_t    *x, *next;
    uint64_t               one = 1;

    if (w == NULL) {
        return;
    }
    if (write(w->stopfd, &one, sizeof(one)) == sizeof(one)) {
        pthread_join(w->thread, NULL);
    }
    fa_notify_done(&w->notify);
    close(w->ifd);
    close(w->stopfd);
    pthread_mutex_destroy(&w->lock);
    for (x = w->watches; x; x = next) {
        next = x->next;
        free(x);
    }
    free(w);
    md->watcher = NULL;
}

fa_int_t
fa_maildir_watch(fa_storage_t *st, const fa_str_t *user, const fa_str_t *mailbox,
    fa_storage_watch_pt cb, void *data, fa_storage_watch_t **out)
{
    fa_maildir_t        *md = st->data;
    fa_pool_t           *pool = fa_pool_create(1024, md->log);
    fa_maildir_loc_t     loc;
    fa_storage_watch_t  *x = NULL;
    fa_int_t             rc;
    const char          *subs[3] = { "", "new", "cur" };

    if (pool == NULL) {
        return FA_ERROR;
    }
    rc = fa_maildir_locate(md, user, mailbox, pool, &loc);
    if (rc == FA_OK && md->watcher == NULL) {
        rc = fa_maildir_watcher_start(md);
    }
    if (rc == FA_OK && (x = fa_calloc(sizeof(fa_storage_watch_t), md->log)) == NULL) {
        rc = FA_ERROR;
    }
    for (int i = 0; rc == FA_OK && i < 3; i++) {
        char *path = i ? fa_maildir_join(pool, loc.dir, subs[i]) : loc.dir;
        x->wd[i] = inotify_add_watch(md->watcher->ifd, path,
                                     i ? FA_MAILDIR_WATCH_FILES : FA_MAILDIR_WATCH_INDEX);
        if (x->wd[i] == -1) {
            rc = errno == ENOENT ? FA_STORAGE_NOTFOUND
                 : fa_maildir_sys_error(md, errno, "inotify_add_watch()", path);
        }
    }
    fa_pool_destroy(pool);
    if (rc != FA_OK) {
        /* a wd added already may be shared with another watch: left in place */
        free(x);
        return rc;
    }
    x->w = md->watcher;
    x->cb = cb;
    x->data = data;
    x->next = md->watcher->watches;
    md->watcher->watches = x;
    *out = x;
    return FA_OK;
}

/* a wd is removed from inotify only when no other watch uses it */
void
fa_maildir_unwatch(fa_storage_watch_t *x)
{
    fa_maildir_watcher_t  *w;
    fa_storage_watch_t   **pp, *o;

    if (x == NULL) {
        return;
    }
    w = x->w;
    for (pp = &w->watches; *pp && *pp != x; pp = &(*pp)->next) {
        /* find it */
    }
    if (*pp) {
        *pp = x->next;
    }
    for (int i = 0; i < 3; i++) {
        int shared = 0;
        for (o = w->watches; o && !shared; o = o->next) {
            shared = o->wd[0] == x->wd[i] || o->wd[1] == x->wd[i] || o->wd[2] == x->wd[i];
        }
        if (!shared) {
            inotify_rm_watch(w->ifd, x->wd[i]);
        }
    }
    free(x);
}
