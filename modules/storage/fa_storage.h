/*
 * The storage contract: what a mail store implements, and all that the
 * protocol modules (SMTP delivery, IMAP, POP3) and facteurctl may assume.
 * docs/storage.md explains the semantics and the LMDB backend's design.
 *
 * Shape
 *   Every operation that may touch a disk or a network takes a completion
 *   callback and returns FA_AGAIN (the callback will run later, from the
 *   worker's event loop) or the final status (FA_OK or an error below: the
 *   callback is then NOT called).  An embedded backend may finish at once;
 *   a network backend (PostgreSQL, an object store) never blocks the loop.
 *   Callbacks always run in the loop thread that made the call.
 *
 * Durability
 *   append_commit, store, copy, move and expunge complete with FA_OK only
 *   when the change is durable: a crash (SIGKILL, power loss) after the
 *   callback never loses it.  Backends batch many sessions' changes into one
 *   sync (group commit) to be fast without breaking this.
 *
 * Many writers
 *   Several workers, and later several nodes, write the same mailboxes.  No
 *   caller may cache a mailbox's contents without a watch (fa_storage_watch)
 *   that tells it when another writer changed it; MODSEQ orders changes.
 *
 * Versions
 *   A backend is a module of kind FA_MODULE_STORAGE whose ctx points at a
 *   fa_storage_backend_t; abi must equal FA_STORAGE_ABI_VERSION.  New
 *   operations are added at the end, taken from the spare slots so that
 *   the struct keeps its size, and a NULL operation means "not supported"
 *   (the caller answers a protocol error, never crashes).  Added so far:
 *   check (facteurctl check), NULL when the backend cannot check itself.
 */

#ifndef FA_STORAGE_H
#define FA_STORAGE_H

#include "fa_core.h"

#define FA_STORAGE_ABI_VERSION   1

/* errors, beyond FA_OK / FA_AGAIN / FA_ERROR (an internal, logged failure) */
#define FA_STORAGE_NOTFOUND     -100   /* no such user, mailbox or UID */
#define FA_STORAGE_EXISTS       -101   /* mailbox name taken */
#define FA_STORAGE_OVERQUOTA    -102   /* the user's quota would be exceeded */
#define FA_STORAGE_NOSPACE      -103   /* the disk or the map is full: temporary */
#define FA_STORAGE_TEMPFAIL     -104   /* try again later (busy, unreachable) */
#define FA_STORAGE_MODIFIED     -105   /* UNCHANGEDSINCE check failed */
#define FA_STORAGE_CORRUPT      -106   /* the store is damaged: facteurctl check */
#define FA_STORAGE_INVALID      -107   /* bad name or argument from the caller */

/* system flags; keywords are strings, mapped to per-mailbox ids by the backend */
#define FA_FLAG_SEEN        0x01
#define FA_FLAG_ANSWERED    0x02
#define FA_FLAG_FLAGGED     0x04
#define FA_FLAG_DELETED     0x08
#define FA_FLAG_DRAFT       0x10
#define FA_FLAG_RECENT      0x20   /* session-derived; never stored */
#define FA_FLAG_MODIFIED    0x40   /* in store's results only: this message was
                                      left unchanged, UNCHANGEDSINCE failed */

/* special-use (RFC 6154) */
#define FA_USE_ALL          0x01
#define FA_USE_ARCHIVE      0x02
#define FA_USE_DRAFTS       0x04
#define FA_USE_FLAGGED      0x08
#define FA_USE_JUNK         0x10
#define FA_USE_SENT         0x20
#define FA_USE_TRASH        0x40

#define FA_MAILBOX_SEPARATOR   '/'
#define FA_MAILBOX_NAME_MAX    1024     /* bytes of UTF-8, whole path */
#define FA_MAILBOX_DEPTH_MAX   32
#define FA_KEYWORDS_MAX        128      /* per mailbox */

typedef struct fa_storage_s          fa_storage_t;
typedef struct fa_storage_backend_s  fa_storage_backend_t;
typedef struct fa_mailbox_s          fa_mailbox_t;      /* backend-private */
typedef struct fa_append_s           fa_append_t;       /* backend-private */
typedef struct fa_msg_stream_s       fa_msg_stream_t;   /* backend-private */
typedef struct fa_storage_watch_s    fa_storage_watch_t;

/*
 * A configured store, one per "storage NAME { ... }" block, opened per
 * process.  The block's scope kind is "storage:NAME": a backend module
 * declares its directives with scopes "storage:NAME" and finds its settings
 * in st->conf (its module's struct in force in that scope, defaults applied
 * even when the block is empty).
 */
struct fa_storage_s {
    const fa_storage_backend_t  *backend;
    const fa_module_t           *module;    /* the backend's module */
    void                        *conf;      /* that module's conf for the block */
    void                        *data;      /* the backend's per-process state */
    fa_str_t                     name;      /* "lmdb", "maildir" */
    fa_conf_scope_t             *scope;
    fa_cycle_t                  *cycle;
    fa_log_t                    *log;
};

typedef struct {
    fa_str_t      name;            /* full path, '/' separated, UTF-8 */
    uint32_t      special_use;     /* FA_USE_* */
    unsigned      subscribed:1;
    unsigned      noselect:1;      /* exists only as a parent */
    unsigned      has_children:1;
} fa_mailbox_info_t;

typedef struct {
    uint32_t      uidvalidity;
    uint32_t      uidnext;
    uint32_t      messages;
    uint32_t      unseen;          /* messages without \Seen */
    uint32_t      deleted;         /* messages with \Deleted */
    uint64_t      highestmodseq;
    uint64_t      size;            /* octets of all messages */
    uint32_t      first_unseen_uid;
    fa_str_t     *keywords;        /* the keyword table: bit i of a message's */
    fa_uint_t     nkeywords;       /* keywords is keywords[i] */
} fa_mailbox_status_t;

/* one message's cached metadata, computed once at append (see fa_mime.h) */
typedef struct {
    uint32_t      uid;
    uint32_t      flags;           /* FA_FLAG_* */
    uint64_t      keywords;        /* bit i: keyword id i of the mailbox */
    uint64_t      modseq;
    uint64_t      size;            /* octets of the stored message */
    time_t        internal_date;
    fa_str_t      guid;            /* stable across copy/move, for POP3 UIDL and dedup */
    fa_str_t      envelope;        /* IMAP ENVELOPE, rendered */
    fa_str_t      bodystructure;   /* IMAP BODYSTRUCTURE (extended), rendered */
    fa_str_t      body;            /* IMAP BODY (non-extended), rendered */
    fa_str_t      mime;            /* serialized part table: section offsets */
    fa_str_t      headers;         /* cached header fields for SEARCH/SORT/THREAD */
} fa_message_meta_t;

/* a UID set as sorted, disjoint, inclusive ranges */
typedef struct {
    uint32_t      first;
    uint32_t      last;
} fa_uid_range_t;

typedef struct {
    fa_uid_range_t  *ranges;
    fa_uint_t        nranges;
} fa_uid_set_t;

typedef enum {
    FA_STORE_REPLACE,
    FA_STORE_ADD,
    FA_STORE_REMOVE
} fa_store_mode_t;

typedef struct {
    fa_store_mode_t  mode;
    uint32_t         flags;
    fa_str_t        *keywords;     /* added to the mailbox's table when needed */
    fa_uint_t        nkeywords;
    uint64_t         unchangedsince;  /* 0: no CONDSTORE check */
} fa_store_request_t;

/* what changed in a mailbox since a MODSEQ (IDLE, CONDSTORE, QRESYNC) */
typedef struct {
    fa_message_meta_t  *changed;   /* flags or keywords changed, or appended */
    fa_uint_t           nchanged;
    uint32_t           *expunged;  /* sorted UIDs */
    fa_uint_t           nexpunged;
    uint64_t            highestmodseq;
    unsigned            too_old:1; /* expunges before modseq are forgotten: resync */
    fa_str_t           *keywords;  /* the keyword table now (it only grows) */
    fa_uint_t           nkeywords;
} fa_mailbox_changes_t;

typedef struct {
    uint64_t      bytes_used;
    uint64_t      bytes_limit;     /* 0: unlimited */
    uint64_t      messages_used;
    uint64_t      messages_limit;
} fa_quota_t;

typedef struct {
    uint32_t      flags;
    fa_str_t     *keywords;
    fa_uint_t     nkeywords;
    time_t        internal_date;   /* 0: now */
    uint64_t      size_hint;       /* 0: unknown; lets a backend refuse early on quota */
    fa_str_t      guid;            /* empty: the backend makes one */
} fa_append_request_t;

typedef struct {
    uint32_t      uidvalidity;
    uint32_t      uid;
    uint64_t      modseq;
} fa_append_result_t;

/*
 * Callbacks: data is the caller's; results live in the caller's pool, or,
 * for calls that take no pool (mailbox_status, quota_get), are valid only
 * during the callback: copy what you keep.  mailbox_open's status (its
 * keyword table included) is valid only during the callback too; the box
 * until mailbox_close.
 */
typedef void (*fa_storage_done_pt)(void *data, fa_int_t rc);
typedef void (*fa_storage_list_pt)(void *data, fa_int_t rc, fa_mailbox_info_t *boxes,
    fa_uint_t n);
typedef void (*fa_storage_status_pt)(void *data, fa_int_t rc, fa_mailbox_status_t *st);
typedef void (*fa_storage_open_pt)(void *data, fa_int_t rc, fa_mailbox_t *box,
    fa_mailbox_status_t *st);
typedef void (*fa_storage_meta_pt)(void *data, fa_int_t rc, fa_message_meta_t *msgs,
    fa_uint_t n);
typedef void (*fa_storage_append_pt)(void *data, fa_int_t rc, fa_append_result_t *res);
typedef void (*fa_storage_copy_pt)(void *data, fa_int_t rc, uint32_t uidvalidity,
    fa_uid_set_t *src, fa_uid_set_t *dst);          /* for UIDPLUS COPYUID */
typedef void (*fa_storage_changes_pt)(void *data, fa_int_t rc, fa_mailbox_changes_t *ch);
typedef void (*fa_storage_quota_pt)(void *data, fa_int_t rc, fa_quota_t *q);
typedef void (*fa_storage_watch_pt)(void *data);    /* "this mailbox changed" */

/*
 * check: one call per finding, in the loop thread, before the completion
 * (never from inside the call).  Without FA_CHECK_REPAIR every finding is
 * FA_CHECK_PROBLEM; with it, FA_CHECK_REPAIRED (the store is consistent
 * again there, even when content was lost: the text says so) or
 * FA_CHECK_UNREPAIRED.  FA_CHECK_INFO lines are not problems (what was
 * checked).  TEXT is one line, without its end, valid during the call.
 */
#define FA_CHECK_REPAIR       0x01   /* flag: repair what can be repaired */

#define FA_CHECK_INFO         0
#define FA_CHECK_PROBLEM      1
#define FA_CHECK_REPAIRED     2
#define FA_CHECK_UNREPAIRED   3

typedef void (*fa_storage_report_pt)(void *data, fa_uint_t level, const char *text);

/*
 * The operations.  "user" is the canonical account name from the auth
 * directory (lower-case "local@domain"); the backend creates a user's
 * namespace on first use.  "pool" is where results are allocated; it must
 * outlive the callback.
 */
struct fa_storage_backend_s {
    fa_uint_t     abi;             /* FA_STORAGE_ABI_VERSION */
    const char   *name;            /* selected by "storage NAME { ... }" */

    /* per process: open after fork (workers) or in facteurctl; close at exit */
    fa_int_t (*open)(fa_storage_t *st, fa_cycle_t *cycle);
    void     (*close)(fa_storage_t *st);

    /* namespace */
    fa_int_t (*mailbox_list)(fa_storage_t *st, const fa_str_t *user, fa_pool_t *pool,
                             fa_storage_list_pt cb, void *data);
    fa_int_t (*mailbox_create)(fa_storage_t *st, const fa_str_t *user,
                               const fa_str_t *name, uint32_t special_use,
                               fa_storage_done_pt cb, void *data);
    fa_int_t (*mailbox_delete)(fa_storage_t *st, const fa_str_t *user,
                               const fa_str_t *name, fa_storage_done_pt cb, void *data);
    fa_int_t (*mailbox_rename)(fa_storage_t *st, const fa_str_t *user,
                               const fa_str_t *from, const fa_str_t *to,
                               fa_storage_done_pt cb, void *data);
    fa_int_t (*mailbox_subscribe)(fa_storage_t *st, const fa_str_t *user,
                                  const fa_str_t *name, int on,
                                  fa_storage_done_pt cb, void *data);
    fa_int_t (*mailbox_status)(fa_storage_t *st, const fa_str_t *user,
                               const fa_str_t *name, fa_storage_status_pt cb, void *data);

    /* a selected mailbox: a handle for reads and changes, closed by the caller */
    fa_int_t (*mailbox_open)(fa_storage_t *st, const fa_str_t *user,
                             const fa_str_t *name, fa_pool_t *pool,
                             fa_storage_open_pt cb, void *data);
    void     (*mailbox_close)(fa_mailbox_t *box);

    /* reads: metadata of the messages in a UID set (ascending), and bodies */
    fa_int_t (*fetch_meta)(fa_mailbox_t *box, const fa_uid_set_t *uids, fa_pool_t *pool,
                           fa_storage_meta_pt cb, void *data);
    fa_int_t (*message_open)(fa_mailbox_t *box, uint32_t uid, fa_msg_stream_t **out);
    /*
     * Read up to len bytes at offset into buf: returns bytes read, 0 at the
     * end, FA_AGAIN (cb is called when the read can be retried) or an error.
     * message_fd may give a file descriptor and offset for sendfile-style
     * zero copy; FA_DECLINED when the backend cannot.
     */
    ssize_t  (*message_read)(fa_msg_stream_t *m, uint64_t offset, u_char *buf, size_t len,
                             fa_storage_done_pt cb, void *data);
    fa_int_t (*message_fd)(fa_msg_stream_t *m, int *fd, uint64_t *offset);
    void     (*message_close)(fa_msg_stream_t *m);

    /*
     * Streaming append: begin, write chunks, commit (durable) or abort.
     * Commit always consumes the append, whatever it returns; after a
     * failed write, abort (or commit, which then fails).
     */
    fa_int_t (*append_begin)(fa_storage_t *st, const fa_str_t *user,
                             const fa_str_t *mailbox, const fa_append_request_t *req,
                             fa_append_t **out);
    fa_int_t (*append_write)(fa_append_t *a, const u_char *data, size_t len);
    fa_int_t (*append_commit)(fa_append_t *a, fa_storage_append_pt cb, void *data);
    void     (*append_abort)(fa_append_t *a);

    /*
     * Changes, each durable before its callback.  store's results are the
     * messages of the set with their flags after it (a new MODSEQ where
     * they changed; none where nothing changed); with UNCHANGEDSINCE, the
     * ones modified since are left alone, marked FA_FLAG_MODIFIED, and the
     * status is FA_STORAGE_MODIFIED while the others are stored (RFC 7162).
     * expunge removes the \Deleted messages: all of them (uids NULL) or
     * those in the set (UID EXPUNGE).
     */
    fa_int_t (*store)(fa_mailbox_t *box, const fa_uid_set_t *uids,
                      const fa_store_request_t *req, fa_pool_t *pool,
                      fa_storage_meta_pt cb, void *data);
    fa_int_t (*copy)(fa_mailbox_t *box, const fa_uid_set_t *uids, const fa_str_t *dest,
                     int move, fa_pool_t *pool, fa_storage_copy_pt cb, void *data);
    fa_int_t (*expunge)(fa_mailbox_t *box, const fa_uid_set_t *uids,   /* NULL: all \Deleted */
                        fa_pool_t *pool, fa_storage_changes_pt cb, void *data);
    fa_int_t (*changes_since)(fa_mailbox_t *box, uint64_t modseq, fa_pool_t *pool,
                              fa_storage_changes_pt cb, void *data);

    /* quota */
    fa_int_t (*quota_get)(fa_storage_t *st, const fa_str_t *user,
                          fa_storage_quota_pt cb, void *data);
    fa_int_t (*quota_set)(fa_storage_t *st, const fa_str_t *user, const fa_quota_t *limits,
                          fa_storage_done_pt cb, void *data);

    /*
     * Notification: cb runs (in the loop) soon after any writer — another
     * session, worker or node — changes the mailbox.  The watcher then asks
     * changes_since.  Spurious calls are allowed; missed ones are not.
     */
    fa_int_t (*watch)(fa_storage_t *st, const fa_str_t *user, const fa_str_t *mailbox,
                      fa_storage_watch_pt cb, void *data, fa_storage_watch_t **out);
    void     (*unwatch)(fa_storage_watch_t *w);

    /*
     * Verify the whole store: every index entry has its body,
     * counters and UIDs agree, nothing is left that nobody references;
     * with FA_CHECK_REPAIR, repair what can be (durable before cb).  Safe
     * while other processes use the store.  cb's status is FA_OK when the
     * check ran to its end, whatever it found (the findings went to
     * report), or an error when it could not.  NULL: not supported.
     */
    fa_int_t (*check)(fa_storage_t *st, fa_uint_t flags, fa_storage_report_pt report,
                      fa_storage_done_pt cb, void *data);

    uintptr_t  spare[7];
};

/*
 * Finding and opening stores.  The first "storage" block is the default.
 * The storage module opens every store in each worker (init_worker) and
 * closes them at exit; facteurctl calls fa_storage_open_all itself.
 */
extern fa_module_t  fa_storage_module;

fa_storage_t *fa_storage_get(fa_cycle_t *cycle, const char *name);   /* NULL name: default */
/* where USER's mail lives: its domain's "storage NAME;", or the default store */
fa_storage_t *fa_storage_for_user(fa_cycle_t *cycle, const fa_str_t *user);
fa_storage_t *fa_storage_nth(fa_cycle_t *cycle, fa_uint_t i);  /* in order; NULL past the end */
fa_int_t fa_storage_open_all(fa_cycle_t *cycle);
void fa_storage_close_all(fa_cycle_t *cycle);

/* helpers every backend and caller shares */
fa_int_t fa_storage_mailbox_name_valid(const fa_str_t *name);   /* FA_OK or FA_STORAGE_INVALID */
int fa_uid_set_contains(const fa_uid_set_t *set, uint32_t uid);
const char *fa_storage_strerror(fa_int_t rc);

/*
 * Mailbox names outside the store (fa_mailbox_name.c).  Modified UTF-7
 * (RFC 3501 5.1.3) to and from UTF-8: FA_STORAGE_INVALID when the input is
 * not what it should be.  A mailbox's Maildir++ folder ("Work/2024.q1" ->
 * ".Work.2024\2eq1", Dovecot's layout with listescape): NULL when the name
 * cannot be a folder; and back: FA_DECLINED when the folder is not one.
 */
fa_int_t fa_mutf7_encode(fa_pool_t *pool, const fa_str_t *utf8, fa_str_t *out);
fa_int_t fa_mutf7_decode(fa_pool_t *pool, const fa_str_t *in, fa_str_t *out);
char *fa_mailbox_to_maildir(fa_pool_t *pool, const fa_str_t *name);
fa_int_t fa_mailbox_from_maildir(fa_pool_t *pool, const char *folder, fa_str_t *name);

#endif /* FA_STORAGE_H */
