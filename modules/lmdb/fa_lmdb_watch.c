/*
 * Change notification across the processes that share one store.
 *
 * PATH/notify is a small shared file, mapped by every process that opens
 * the store: a table of generation counters, indexed by a hash of the
 * mailbox id, and a table of the pids of processes that have watchers.
 * After each commit the writer thread increments the counters of the
 * mailboxes the batch changed, then sends a one-byte datagram to the
 * abstract Unix socket of each registered process ("facteur-lmdb-DEV-INO-
 * PID").  A process compares the counters its watchers saw with the table
 * when a datagram arrives, when its own writer's batch completes, and at
 * least every 500 ms while it has watchers: datagrams are only a hint, so a
 * lost one delays a notification, never loses it.  Two mailboxes sharing a
 * counter make spurious calls, which the contract allows.
 */

#include "fa_lmdb.h"
#include <sys/mman.h>

#define FA_LMDB_GEN_SLOTS    4096         /* a power of two */
#define FA_LMDB_PROC_SLOTS   256
#define FA_LMDB_SHM_MAGIC    0x46614e31   /* "FaN1" */
#define FA_LMDB_POLL_MS      500

typedef struct {
    uint32_t     magic;
    uint32_t     version;
    uint32_t     procs[FA_LMDB_PROC_SLOTS];   /* pids with watchers, 0: free */
    uint64_t     gen[FA_LMDB_GEN_SLOTS];
} fa_lmdb_shm_t;

struct fa_lmdb_notify_s {
    fa_lmdb_t          *lm;
    fa_lmdb_shm_t      *shm;
    int                 send_fd;          /* unbound datagram socket, writer thread */
    char                prefix[64];       /* abstract name without the pid */
    int                 proc_slot;        /* -1: not registered */
    fa_listening_t      recv;             /* only .fd: the loop polls it, level-triggered */
    fa_event_t          recv_event;
    fa_event_t          timer;
    fa_queue_t          watchers;
    fa_uint_t           nwatchers;
    unsigned            checking:1;
};

struct fa_storage_watch_s {
    fa_lmdb_notify_t     *n;
    uint64_t              box_id;
    uint32_t              slot;
    uint64_t              seen;
    fa_storage_watch_pt   cb;
    void                 *data;
    fa_queue_t            link;
    unsigned              dead:1;         /* unwatched during a check */
};

static uint32_t
fa_lmdb_gen_slot(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (uint32_t) id & (FA_LMDB_GEN_SLOTS - 1);
}

static socklen_t
fa_lmdb_sock_name(fa_lmdb_notify_t *n, pid_t pid, struct sockaddr_un *sa)
{
    int  len;

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    len = (int) fa_snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1, "%s%d", n->prefix,
                            (int) pid);
    return (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

static fa_int_t
fa_lmdb_shm_map(fa_lmdb_notify_t *n, fa_lmdb_t *lm)
{
    char         path[PATH_MAX];
    struct stat  sb;
    int          fd;
    void        *p;

    fa_snprintf(path, sizeof(path), "%s/notify", lm->path);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd == -1 || fstat(fd, &sb) == -1
        || ((size_t) sb.st_size < sizeof(fa_lmdb_shm_t)
            && ftruncate(fd, sizeof(fa_lmdb_shm_t)) == -1))
    {
        fa_log_error(FA_LOG_EMERG, lm->log, errno, "lmdb storage: \"%s\" failed", path);
        if (fd != -1) {
            close(fd);
        }
        return FA_ERROR;
    }
    p = mmap(NULL, sizeof(fa_lmdb_shm_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        fa_log_error(FA_LOG_EMERG, lm->log, errno, "lmdb storage: mmap(\"%s\") failed", path);
        return FA_ERROR;
    }
    n->shm = p;
    /* a new file is zeros: whoever comes first stamps it, harmlessly twice */
    n->shm->magic = FA_LMDB_SHM_MAGIC;
    n->shm->version = 1;
    fa_snprintf(n->prefix, sizeof(n->prefix), "facteur-lmdb-%lx-%lx-",
                (unsigned long) sb.st_dev, (unsigned long) sb.st_ino);
    return FA_OK;
}

fa_int_t
fa_lmdb_notify_open(fa_lmdb_t *lm)
{
    fa_lmdb_notify_t  *n = fa_calloc(sizeof(fa_lmdb_notify_t), lm->log);

    if (n == NULL) {
        return FA_ERROR;
    }
    n->lm = lm;
    n->proc_slot = -1;
    n->recv.fd = -1;
    fa_queue_init(&n->watchers);
    n->send_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (n->send_fd == -1 || fa_lmdb_shm_map(n, lm) != FA_OK) {
        if (n->send_fd != -1) {
            close(n->send_fd);
        }
        free(n);
        return FA_ERROR;
    }
    lm->notify = n;
    return FA_OK;
}

/* ---- the writer's side ---- */

static void
fa_lmdb_notify_wake(fa_lmdb_notify_t *n)
{
    struct sockaddr_un  sa;
    socklen_t           len;
    uint32_t            pid;
    char                one = 1;

    for (int i = 0; i < FA_LMDB_PROC_SLOTS; i++) {
        pid = __atomic_load_n(&n->shm->procs[i], __ATOMIC_ACQUIRE);
        if (pid == 0 || (pid_t) pid == n->lm->pid) {
            continue;                      /* our own loop hears from the writer */
        }
        len = fa_lmdb_sock_name(n, (pid_t) pid, &sa);
        if (sendto(n->send_fd, &one, 1, MSG_DONTWAIT, (struct sockaddr *) &sa, len) == -1
            && errno == ECONNREFUSED)
        {
            /* nobody bound: a process that died without unregistering */
            __atomic_compare_exchange_n(&n->shm->procs[i], &pid, 0, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE);
        }
    }
}

/* writer thread, after a commit: the mailboxes IDS changed */
void
fa_lmdb_notify_bump(fa_lmdb_t *lm, const uint64_t *ids, fa_uint_t n)
{
    fa_lmdb_notify_t  *nt = lm->notify;

    if (nt == NULL || n == 0) {
        return;
    }
    for (fa_uint_t i = 0; i < n; i++) {
        __atomic_add_fetch(&nt->shm->gen[fa_lmdb_gen_slot(ids[i])], 1, __ATOMIC_RELEASE);
    }
    fa_lmdb_notify_wake(nt);
}

/* ---- the loop's side ---- */

static uint64_t
fa_lmdb_gen(fa_lmdb_notify_t *n, uint32_t slot)
{
    return __atomic_load_n(&n->shm->gen[slot], __ATOMIC_ACQUIRE);
}

void
fa_lmdb_notify_check(fa_lmdb_t *lm)
{
    fa_lmdb_notify_t    *n = lm->notify;
    fa_storage_watch_t  *w;
    fa_queue_t          *q, *next;
    uint64_t             g;

    if (n == NULL || n->nwatchers == 0 || n->checking) {
        return;
    }
    n->checking = 1;
    for (q = fa_queue_head(&n->watchers); q != fa_queue_sentinel(&n->watchers); q = next) {
        w = fa_queue_data(q, fa_storage_watch_t, link);
        g = fa_lmdb_gen(n, w->slot);
        if (!w->dead && g != w->seen) {
            w->seen = g;
            w->cb(w->data);                /* may unwatch any watcher: marked dead */
        }
        next = fa_queue_next(q);
    }
    n->checking = 0;
    for (q = fa_queue_head(&n->watchers); q != fa_queue_sentinel(&n->watchers); q = next) {
        next = fa_queue_next(q);
        w = fa_queue_data(q, fa_storage_watch_t, link);
        if (w->dead) {
            fa_queue_remove(q);
            free(w);
        }
    }
}

static void
fa_lmdb_notify_recv(fa_event_t *ev)
{
    fa_lmdb_notify_t  *n = ev->data;
    char               buf[64];

    while (recv(n->recv.fd, buf, sizeof(buf), MSG_DONTWAIT) > 0) { /* drain */ }
    fa_lmdb_notify_check(n->lm);
}

static void
fa_lmdb_notify_poll(fa_event_t *ev)
{
    fa_lmdb_notify_t  *n = ev->data;

    fa_lmdb_notify_check(n->lm);
    if (n->nwatchers && !n->timer.timer_set) {
        fa_event_add_timer(&n->timer, FA_LMDB_POLL_MS);
    }
}

/* a slot in the shared table, so that writers elsewhere send us datagrams */
static void
fa_lmdb_notify_register(fa_lmdb_notify_t *n)
{
    uint32_t  pid = (uint32_t) n->lm->pid, cur;

    for (int pass = 0; pass < 2 && n->proc_slot == -1; pass++) {
        for (int i = 0; i < FA_LMDB_PROC_SLOTS; i++) {
            cur = __atomic_load_n(&n->shm->procs[i], __ATOMIC_ACQUIRE);
            /* the second pass takes the slots of dead processes */
            if ((cur == 0 || (pass && kill((pid_t) cur, 0) == -1 && errno == ESRCH))
                && __atomic_compare_exchange_n(&n->shm->procs[i], &cur, pid, 0,
                                               __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
            {
                n->proc_slot = i;
                return;
            }
        }
    }
    fa_log_error(FA_LOG_INFO, n->lm->log, 0, "lmdb storage: no wake-up slot left, "
                 "watchers poll every %d ms", FA_LMDB_POLL_MS);
}

static void
fa_lmdb_notify_listen(fa_lmdb_notify_t *n)
{
    struct sockaddr_un  sa;
    socklen_t           len = fa_lmdb_sock_name(n, n->lm->pid, &sa);
    int                 fd;

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1 || bind(fd, (struct sockaddr *) &sa, len) == -1) {
        fa_log_error(FA_LOG_WARN, n->lm->log, errno, "lmdb storage: wake-up socket failed, "
                     "watchers poll every %d ms", FA_LMDB_POLL_MS);
        if (fd != -1) {
            close(fd);
        }
        return;
    }
    n->recv.fd = fd;
    n->recv_event.data = n;
    n->recv_event.handler = fa_lmdb_notify_recv;
    n->recv_event.log = n->lm->log;
    if (fa_event_add_listen(&n->recv, &n->recv_event) != FA_OK) {
        close(fd);
        n->recv.fd = -1;
        return;
    }
    fa_lmdb_notify_register(n);
}

static void
fa_lmdb_notify_quiet(fa_lmdb_notify_t *n)
{
    if (n->proc_slot != -1) {
        __atomic_store_n(&n->shm->procs[n->proc_slot], 0, __ATOMIC_RELEASE);
        n->proc_slot = -1;
    }
    if (n->recv.fd != -1) {
        fa_event_del_listen(&n->recv, &n->recv_event);
        close(n->recv.fd);
        n->recv.fd = -1;
    }
    if (n->timer.timer_set) {
        fa_event_del_timer(&n->timer);
    }
}

fa_int_t
fa_lmdb_watch(fa_storage_t *st, const fa_str_t *user, const fa_str_t *mailbox,
    fa_storage_watch_pt cb, void *data, fa_storage_watch_t **out)
{
    fa_lmdb_t           *lm = st->data;
    fa_lmdb_notify_t    *n = lm->notify;
    fa_lmdb_box_rec_t    box;
    fa_storage_watch_t  *w;
    u_char               buf[FA_MAILBOX_NAME_MAX];
    fa_str_t             name;
    uint64_t             user_id, id;
    MDB_txn             *txn;
    fa_int_t             rc;

    if (fa_lmdb_name_norm(mailbox, buf, &name) != FA_OK) {
        return FA_STORAGE_INVALID;
    }
    if (fa_lmdb_read_begin(lm, &txn) != FA_OK) {
        return FA_ERROR;
    }
    rc = fa_lmdb_box_find(lm, txn, user, &name, &user_id, &id, &box);
    fa_lmdb_read_end(lm);
    if (rc != FA_OK) {
        return rc == FA_LMDB_FAILED ? FA_ERROR : rc;
    }
    w = fa_calloc(sizeof(fa_storage_watch_t), lm->log);
    if (w == NULL) {
        return FA_ERROR;
    }
    w->n = n;
    w->box_id = id;
    w->slot = fa_lmdb_gen_slot(id);
    w->seen = fa_lmdb_gen(n, w->slot);
    w->cb = cb;
    w->data = data;
    fa_queue_insert_tail(&n->watchers, &w->link);
    if (n->nwatchers++ == 0) {
        n->timer.data = n;
        n->timer.handler = fa_lmdb_notify_poll;
        n->timer.log = lm->log;
        n->timer.cancelable = 1;           /* never keeps a quitting worker alive */
        fa_event_add_timer(&n->timer, FA_LMDB_POLL_MS);
        if (n->recv.fd == -1) {
            fa_lmdb_notify_listen(n);
        }
    }
    *out = w;
    return FA_OK;
}

void
fa_lmdb_unwatch(fa_storage_watch_t *w)
{
    fa_lmdb_notify_t  *n = w->n;

    if (w->dead) {
        return;
    }
    if (--n->nwatchers == 0) {
        fa_lmdb_notify_quiet(n);
    }
    if (n->checking) {
        w->dead = 1;                       /* freed when the check is over */
        return;
    }
    fa_queue_remove(&w->link);
    free(w);
}

void
fa_lmdb_notify_close(fa_lmdb_t *lm)
{
    fa_lmdb_notify_t  *n = lm->notify;

    if (n == NULL) {
        return;
    }
    fa_lmdb_notify_quiet(n);
    while (!fa_queue_empty(&n->watchers)) {
        fa_queue_t *q = fa_queue_head(&n->watchers);
        fa_queue_remove(q);
        free(fa_queue_data(q, fa_storage_watch_t, link));
    }
    munmap(n->shm, sizeof(fa_lmdb_shm_t));
    close(n->send_fd);
    free(n);
    lm->notify = NULL;
}
