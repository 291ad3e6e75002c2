/*
 * Private to the LMDB storage backend (modules/lmdb): the per-process state,
 * the record layouts, and what the files of the backend share.
 *
 * Files
 *   fa_lmdb_module.c   descriptor, directives, the backend table, open/close
 *   fa_lmdb_env.c      the environment: directories, read transactions, map
 *                      growth and adoption of a map another process grew
 *   fa_lmdb_writer.c   the writer thread, group commit, op life cycle
 *   fa_lmdb_db.c       keys, users, mailbox names and states, keywords, bodies
 *   fa_lmdb_msg.c      message records, the MODSEQ index, walking a UID set
 *   fa_lmdb_mailbox.c  namespace: list, create, subscribe, status, quota
 *   fa_lmdb_tree.c     namespace: delete and rename, which work on subtrees
 *   fa_lmdb_append.c   streaming appends, inline bodies and blob files
 *   fa_lmdb_message.c  selected mailboxes: open, fetch_meta, bodies,
 *                      changes_since
 *   fa_lmdb_change.c   store, copy/move, expunge
 *   fa_lmdb_watch.c    change notification within and across processes
 *   fa_lmdb_check.c    facteurctl check: verify the whole store, repair;
 *                      the op, the walk reading everything, the run
 *   fa_lmdb_check_fix.c  ... comparing what the walk read, repairing
 *                      (fa_lmdb_check.h: what the two files share)
 *
 * Databases (one environment, "path"; keys are big-endian so that LMDB's
 * byte order is numeric order and one mailbox is one key range):
 *
 *   meta       "version", "next_user", "next_box"   counters (u64)
 *   users      user name                            fa_lmdb_user_rec_t
 *   mailboxes  user id, name key                    fa_lmdb_name_rec_t + full name
 *   boxes      mailbox id                           fa_lmdb_box_rec_t (counters)
 *   messages   mailbox id, UID                      fa_lmdb_msg_rec_t + strings
 *   modseq     mailbox id, MODSEQ                   UID (u32)
 *   expunged   mailbox id, MODSEQ                   UIDs (u32 array, ascending)
 *   refs       body id                              fa_lmdb_ref_rec_t
 *   bodies     body id                              inline body bytes
 *   keywords   mailbox id                           names, NUL separated
 *
 * A mailbox's name maps to its id; everything else hangs off the id, so a
 * rename rewrites only the name records and a handle of a selected mailbox
 * stays valid across a rename (and goes NOTFOUND when it is deleted, even
 * if the name is created again: the new mailbox has a new id).
 *
 * Records are host-order C structs with a version field: LMDB files are not
 * portable across byte orders anyway, and a struct read is one memcpy.
 */

#ifndef FA_LMDB_H
#define FA_LMDB_H

#include "fa_core.h"
#include "fa_storage.h"
#include <lmdb.h>
#include <pthread.h>

#define FA_LMDB_RECORD_V1     1
#define FA_LMDB_BODY_ID_LEN   16
#define FA_LMDB_GUID_LEN      (FA_LMDB_BODY_ID_LEN * 2)
#define FA_LMDB_KEYWORDS_MAX  64          /* bits of fa_message_meta_t.keywords */
#define FA_LMDB_USER_MAX      400         /* bytes of a user name: an LMDB key */
#define FA_LMDB_NAME_KEY_MAX  448         /* longer names are keyed by prefix + hash */

/* internal results of a step inside the writer's transaction */
#define FA_LMDB_RETRY         -200        /* MDB_MAP_FULL: grow the map, replay */
#define FA_LMDB_FAILED        -201        /* an LMDB error: the transaction is lost */
#define FA_LMDB_NOUSER        -202        /* a read found no namespace: make it first */

enum {
    FA_LMDB_META, FA_LMDB_USERS, FA_LMDB_NAMES, FA_LMDB_BOXES, FA_LMDB_MESSAGES,
    FA_LMDB_MODSEQ, FA_LMDB_EXPUNGED, FA_LMDB_REFS, FA_LMDB_BODIES, FA_LMDB_KEYWORDS,
    FA_LMDB_NDBS
};

/* name record flags */
#define FA_LMDB_BOX_SUBSCRIBED  0x01
#define FA_LMDB_BOX_NOSELECT    0x02      /* a parent left by a delete: no id */

/* body kinds */
#define FA_LMDB_BODY_INLINE   1
#define FA_LMDB_BODY_BLOB     2

typedef struct {                          /* users: name -> */
    uint32_t    version;
    uint32_t    last_uidvalidity;         /* a new mailbox's is greater */
    uint64_t    id;
    uint64_t    bytes_limit;              /* 0: unlimited */
    uint64_t    messages_limit;
    uint64_t    bytes_used;
    uint64_t    messages_used;
} fa_lmdb_user_rec_t;

typedef struct {                          /* mailboxes: user id, name key -> */
    uint64_t    id;                       /* 0 when NOSELECT */
    uint32_t    special_use;
    uint32_t    flags;                    /* FA_LMDB_BOX_* */
    /* followed by the full name */
} fa_lmdb_name_rec_t;

typedef struct {                          /* boxes: mailbox id -> */
    uint32_t    version;
    uint32_t    uidvalidity;
    uint32_t    uidnext;
    uint32_t    messages;
    uint32_t    unseen;
    uint32_t    deleted;
    uint64_t    highestmodseq;
    uint64_t    size;
    uint64_t    user_id;
    uint64_t    expunge_floor;            /* expunges before it are forgotten */
} fa_lmdb_box_rec_t;

typedef struct {                          /* messages: mailbox id, UID -> */
    uint16_t    version;
    uint16_t    flags;                    /* FA_FLAG_*, never \Recent */
    uint32_t    reserved;
    uint64_t    keywords;
    uint64_t    modseq;
    uint64_t    size;
    int64_t     internal_date;
    u_char      body_id[FA_LMDB_BODY_ID_LEN];
    uint32_t    lens[6];                  /* the strings that follow, in order: */
} fa_lmdb_msg_rec_t;                      /* guid, envelope, bodystructure, body,
                                             mime, headers */

typedef struct {                          /* refs: body id -> */
    uint32_t    refs;                     /* messages sharing the body */
    uint32_t    kind;                     /* FA_LMDB_BODY_* */
    uint64_t    size;
} fa_lmdb_ref_rec_t;

typedef struct {
    fa_str_t    text;                     /* NUL-separated names, as stored */
    fa_str_t    names[FA_LMDB_KEYWORDS_MAX];
    fa_uint_t   n;
    unsigned    dirty:1;
} fa_lmdb_keywords_t;

typedef struct {
    fa_str_t    path;
    size_t      map_size;
    size_t      max_map_size;
    size_t      inline_max;
} fa_lmdb_conf_t;

typedef void (*fa_lmdb_fn_pt)(void);     /* a caller's callback, cast back on delivery */

typedef struct fa_lmdb_s         fa_lmdb_t;
typedef struct fa_lmdb_op_s      fa_lmdb_op_t;
typedef struct fa_lmdb_writer_s  fa_lmdb_writer_t;
typedef struct fa_lmdb_notify_s  fa_lmdb_notify_t;

/* a blob file to remove once the batch's fate is known */
typedef struct fa_lmdb_unlink_s  fa_lmdb_unlink_t;
struct fa_lmdb_unlink_s {
    fa_lmdb_unlink_t  *next;
    unsigned           on_success:1;      /* else: when the op failed */
    u_char             id[FA_LMDB_BODY_ID_LEN];
};

/*
 * An operation: reads are run in the loop and delivered through a posted
 * event; writes are queued to the writer thread, applied inside its batch
 * transaction, and delivered through fa_notify once the batch is durable.
 */
struct fa_lmdb_op_s {
    fa_lmdb_t          *lm;
    /* writer thread: validate, then change; FA_OK, a storage error (and
       nothing changed), FA_LMDB_RETRY or FA_LMDB_FAILED */
    fa_int_t          (*apply)(fa_lmdb_op_t *op, MDB_txn *txn);
    /* writer thread, before the blob files are synced (appends) */
    fa_int_t          (*prepare)(fa_lmdb_op_t *op);
    /* loop: a read; FA_OK (results ready), FA_LMDB_NOUSER or an error */
    fa_int_t          (*run)(fa_lmdb_op_t *op);
    /* loop: call the caller back with op->rc and the results */
    void              (*deliver)(fa_lmdb_op_t *op);
    /* frees what apply allocated; before each replay and at the end */
    void              (*reset)(fa_lmdb_op_t *op);
    /* releases what the op owns (files); the op itself is freed after */
    void              (*destroy)(fa_lmdb_op_t *op);
    fa_int_t            rc;
    fa_lmdb_op_t       *next;             /* writer queue, done list */
    fa_queue_t          live;             /* lm->live, until freed */
    fa_event_t          event;            /* a read's posted delivery */
    uint64_t            changed[2];       /* mailbox ids for the watchers */
    fa_lmdb_unlink_t   *unlinks;
    size_t              weight;           /* bytes it adds to a batch */
    unsigned            skip:1;           /* failed: left out of replays */
    unsigned            grows:1;          /* adds data: refused when the map is full */
    unsigned            sweeps:1;         /* lists blobs/: the batch holds the blob
                                             lock exclusive (fa_lmdb_writer.c) */
};

struct fa_lmdb_s {
    fa_storage_t       *st;
    fa_lmdb_conf_t     *conf;
    fa_log_t           *log;
    MDB_env            *env;
    MDB_dbi             dbi[FA_LMDB_NDBS];
    MDB_txn            *rtxn;             /* the loop's read txn, reset between uses */
    pthread_rwlock_t    map_lock;         /* exclusive while the map is remapped */
    size_t              map_size;
    int                 full;             /* writer: the map may not grow, adding ops
                                             are refused until room is free again */
    char               *path;             /* NUL-terminated */
    char               *blobs;            /* path/blobs */
    char               *tmp;              /* path/blobs/tmp */
    int                 blobs_fd;         /* for fsync after renames */
    pid_t               pid;
    fa_lmdb_writer_t   *writer;           /* started by the first write */
    fa_queue_t          live;             /* ops not yet delivered */
    fa_lmdb_notify_t   *notify;           /* watchers, NULL until the first watch */
};

/* fa_storage_t's opaque handles */
struct fa_mailbox_s {
    fa_lmdb_t          *lm;
    uint64_t            user_id;
    uint64_t            id;
    uint32_t            uidvalidity;
    fa_str_t            user;
    fa_str_t            name;
};

struct fa_msg_stream_s {
    int                 fd;               /* a blob, or -1 */
    uint64_t            size;
    u_char             *data;             /* an inline body, copied */
};

/* fa_lmdb_module.c */
extern fa_module_t  fa_lmdb_module;
extern const fa_storage_backend_t  fa_lmdb_backend;

/* fa_lmdb_env.c */
fa_int_t fa_lmdb_env_open(fa_lmdb_t *lm);
void fa_lmdb_env_close(fa_lmdb_t *lm);
fa_int_t fa_lmdb_read_begin(fa_lmdb_t *lm, MDB_txn **txn);
void fa_lmdb_read_end(fa_lmdb_t *lm);
fa_int_t fa_lmdb_write_begin(fa_lmdb_t *lm, MDB_txn **txn);   /* takes map_lock shared */
fa_int_t fa_lmdb_write_end(fa_lmdb_t *lm, MDB_txn *txn, int commit);
fa_int_t fa_lmdb_grow(fa_lmdb_t *lm, int reserve);   /* FA_OK or FA_STORAGE_NOSPACE */
size_t fa_lmdb_free_bytes(fa_lmdb_t *lm);
fa_int_t fa_lmdb_error(fa_lmdb_t *lm, int rc, const char *what);
void fa_lmdb_blob_path(fa_lmdb_t *lm, const u_char *id, char *buf, size_t size);
void fa_lmdb_hex(const u_char *id, size_t n, char *out);

/* fa_lmdb_writer.c */
fa_lmdb_op_t *fa_lmdb_op_alloc(fa_lmdb_t *lm, size_t size);
void fa_lmdb_op_free(fa_lmdb_op_t *op);
fa_int_t fa_lmdb_op_post(fa_lmdb_op_t *op);          /* a read: deliver later */
fa_int_t fa_lmdb_op_submit(fa_lmdb_op_t *op);        /* a write: to the writer */
void fa_lmdb_op_changed(fa_lmdb_op_t *op, uint64_t box_id);
fa_int_t fa_lmdb_op_unlink(fa_lmdb_op_t *op, const u_char *id, int on_success);
fa_int_t fa_lmdb_blobs_lock(int fd, int how);      /* the blob lock: flock(), EINTR retried */
void fa_lmdb_writer_stop(fa_lmdb_t *lm);
void fa_lmdb_ops_drop(fa_lmdb_t *lm);

/* fa_lmdb_db.c: keys */
MDB_val fa_lmdb_key_id(u_char *buf, uint64_t id);
MDB_val fa_lmdb_key_uid(u_char *buf, uint64_t box, uint32_t uid);
MDB_val fa_lmdb_key_seq(u_char *buf, uint64_t box, uint64_t seq);
MDB_val fa_lmdb_key_name(u_char *buf, uint64_t user, const fa_str_t *name);
uint64_t fa_lmdb_get64(const u_char *p);
uint32_t fa_lmdb_get32(const u_char *p);
#define FA_LMDB_NAME_KEY_SIZE  (8 + FA_LMDB_NAME_KEY_MAX + 1 + 16)

/* fa_lmdb_db.c: records (get: FA_OK, FA_STORAGE_NOTFOUND, FA_LMDB_FAILED) */
fa_int_t fa_lmdb_get(fa_lmdb_t *lm, MDB_txn *txn, int db, MDB_val *key, MDB_val *val);
fa_int_t fa_lmdb_put(fa_lmdb_t *lm, MDB_txn *txn, int db, MDB_val *key, MDB_val *val);
fa_int_t fa_lmdb_del(fa_lmdb_t *lm, MDB_txn *txn, int db, MDB_val *key);
fa_int_t fa_lmdb_user_get(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *user,
    fa_lmdb_user_rec_t *rec);
fa_int_t fa_lmdb_user_put(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *user,
    fa_lmdb_user_rec_t *rec);
fa_int_t fa_lmdb_user_ensure(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *user,
    fa_lmdb_user_rec_t *rec);
fa_int_t fa_lmdb_name_get(fa_lmdb_t *lm, MDB_txn *txn, uint64_t user, const fa_str_t *name,
    fa_lmdb_name_rec_t *rec);
fa_int_t fa_lmdb_name_put(fa_lmdb_t *lm, MDB_txn *txn, uint64_t user, const fa_str_t *name,
    fa_lmdb_name_rec_t *rec);
fa_int_t fa_lmdb_box_get(fa_lmdb_t *lm, MDB_txn *txn, uint64_t id, fa_lmdb_box_rec_t *rec);
fa_int_t fa_lmdb_box_put(fa_lmdb_t *lm, MDB_txn *txn, uint64_t id, fa_lmdb_box_rec_t *rec);
fa_int_t fa_lmdb_box_find(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *user,
    const fa_str_t *name, uint64_t *user_id, uint64_t *box_id, fa_lmdb_box_rec_t *box);
fa_int_t fa_lmdb_box_create(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *username,
    fa_lmdb_user_rec_t *user, const fa_str_t *name, uint32_t special_use, uint32_t flags,
    uint64_t *id);
fa_int_t fa_lmdb_counter_next(fa_lmdb_t *lm, MDB_txn *txn, const char *name, uint64_t *v);
fa_int_t fa_lmdb_keywords_get(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box,
    fa_lmdb_keywords_t *kw);
fa_int_t fa_lmdb_keywords_put(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box,
    fa_lmdb_keywords_t *kw);
fa_int_t fa_lmdb_keyword_id(fa_lmdb_keywords_t *kw, const fa_str_t *name, int add);
void fa_lmdb_keywords_free(fa_lmdb_keywords_t *kw);
fa_int_t fa_lmdb_keywords_copy(fa_lmdb_keywords_t *kw, fa_pool_t *pool, fa_str_t **names,
    fa_uint_t *n);
fa_int_t fa_lmdb_body_ref(fa_lmdb_op_t *op, MDB_txn *txn, const u_char *id, int delta);

/* fa_lmdb_msg.c: messages */
typedef fa_int_t (*fa_lmdb_msg_each_pt)(void *ctx, uint32_t uid, MDB_val *val);
fa_int_t fa_lmdb_msg_each(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, const fa_uid_set_t *uids,
    fa_lmdb_msg_each_pt fn, void *ctx);
fa_int_t fa_lmdb_msg_add(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, uint32_t uid,
    fa_lmdb_msg_rec_t *rec, const MDB_val *tail);
fa_int_t fa_lmdb_msg_add_from(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, uint32_t uid,
    fa_lmdb_msg_rec_t *rec, const MDB_val *src);
fa_int_t fa_lmdb_msg_del(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, uint32_t uid,
    uint64_t modseq);
fa_int_t fa_lmdb_tombstone(fa_lmdb_t *lm, MDB_txn *txn, uint64_t id, fa_lmdb_box_rec_t *box,
    const uint32_t *uids, fa_uint_t n);
void fa_lmdb_msg_decode(const MDB_val *val, fa_lmdb_msg_rec_t *rec);
fa_int_t fa_lmdb_msg_meta(const MDB_val *val, uint32_t uid, fa_pool_t *pool,
    fa_message_meta_t *meta, int strings);
fa_int_t fa_lmdb_msg_put(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, uint32_t uid,
    const fa_lmdb_msg_rec_t *rec, const MDB_val *old);
fa_int_t fa_lmdb_msg_remove(fa_lmdb_op_t *op, MDB_txn *txn, uint64_t box, uint32_t uid,
    const fa_lmdb_msg_rec_t *rec);
void fa_lmdb_box_count(fa_lmdb_box_rec_t *box, uint32_t flags, uint64_t size, int sign);
fa_int_t fa_lmdb_box_drop(fa_lmdb_op_t *op, MDB_txn *txn, uint64_t id,
    fa_lmdb_user_rec_t *user);

/* fa_lmdb_mailbox.c and fa_lmdb_tree.c */
typedef struct {
    fa_lmdb_op_t           op;
    fa_storage_done_pt     cb;
    void                  *data;
    fa_str_t               user;
    fa_str_t               name;
    fa_str_t               to;
    uint32_t               special_use;
    int                    on;
    fa_quota_t             limits;
} fa_lmdb_ns_op_t;

typedef fa_int_t (*fa_lmdb_name_each_pt)(void *ctx, const fa_str_t *name,
    const fa_lmdb_name_rec_t *rec);

fa_lmdb_ns_op_t *fa_lmdb_ns_op(fa_storage_t *st, const fa_str_t *user, const fa_str_t *name,
    const fa_str_t *to, fa_storage_done_pt cb, void *data);
fa_int_t fa_lmdb_names_each(fa_lmdb_t *lm, MDB_txn *txn, uint64_t user,
    fa_lmdb_name_each_pt fn, void *ctx);
fa_int_t fa_lmdb_parents_create(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *username,
    fa_lmdb_user_rec_t *user, const fa_str_t *name);
fa_int_t fa_lmdb_box_lookup(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *user,
    const fa_str_t *name, uint64_t *user_id, uint64_t *box_id, fa_lmdb_box_rec_t *box);
fa_int_t fa_lmdb_mailbox_list(fa_storage_t *st, const fa_str_t *user, fa_pool_t *pool,
    fa_storage_list_pt cb, void *data);
fa_int_t fa_lmdb_mailbox_create(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *name, uint32_t special_use, fa_storage_done_pt cb, void *data);
fa_int_t fa_lmdb_mailbox_delete(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *name, fa_storage_done_pt cb, void *data);
fa_int_t fa_lmdb_mailbox_rename(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *from, const fa_str_t *to, fa_storage_done_pt cb, void *data);
fa_int_t fa_lmdb_mailbox_subscribe(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *name, int on, fa_storage_done_pt cb, void *data);
fa_int_t fa_lmdb_mailbox_status(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *name, fa_storage_status_pt cb, void *data);
fa_int_t fa_lmdb_quota_get(fa_storage_t *st, const fa_str_t *user,
    fa_storage_quota_pt cb, void *data);
fa_int_t fa_lmdb_quota_set(fa_storage_t *st, const fa_str_t *user, const fa_quota_t *limits,
    fa_storage_done_pt cb, void *data);
fa_int_t fa_lmdb_read_start(fa_lmdb_op_t *op, const fa_str_t *user);
fa_int_t fa_lmdb_name_norm(const fa_str_t *in, u_char *buf, fa_str_t *out);
int fa_lmdb_is_inbox(const fa_str_t *name);
fa_int_t fa_lmdb_status_fill(fa_lmdb_t *lm, MDB_txn *txn, uint64_t id,
    const fa_lmdb_box_rec_t *box, fa_pool_t *pool, fa_mailbox_status_t *out);

/* fa_lmdb_append.c */
fa_int_t fa_lmdb_append_begin(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *mailbox, const fa_append_request_t *req, fa_append_t **out);
fa_int_t fa_lmdb_append_write(fa_append_t *a, const u_char *data, size_t len);
fa_int_t fa_lmdb_append_commit(fa_append_t *a, fa_storage_append_pt cb, void *data);
void fa_lmdb_append_abort(fa_append_t *a);
void fa_lmdb_blobs_cleanup(fa_lmdb_t *lm);

/* fa_lmdb_message.c */
fa_int_t fa_lmdb_mailbox_open(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *name, fa_pool_t *pool, fa_storage_open_pt cb, void *data);
void fa_lmdb_mailbox_close(fa_mailbox_t *box);
fa_int_t fa_lmdb_fetch_meta(fa_mailbox_t *box, const fa_uid_set_t *uids, fa_pool_t *pool,
    fa_storage_meta_pt cb, void *data);
fa_int_t fa_lmdb_message_open(fa_mailbox_t *box, uint32_t uid, fa_msg_stream_t **out);
ssize_t fa_lmdb_message_read(fa_msg_stream_t *m, uint64_t offset, u_char *buf, size_t len,
    fa_storage_done_pt cb, void *data);
fa_int_t fa_lmdb_message_fd(fa_msg_stream_t *m, int *fd, uint64_t *offset);
void fa_lmdb_message_close(fa_msg_stream_t *m);
fa_int_t fa_lmdb_changes_since(fa_mailbox_t *box, uint64_t modseq, fa_pool_t *pool,
    fa_storage_changes_pt cb, void *data);

/* fa_lmdb_change.c */
fa_int_t fa_lmdb_store(fa_mailbox_t *box, const fa_uid_set_t *uids,
    const fa_store_request_t *req, fa_pool_t *pool, fa_storage_meta_pt cb, void *data);
fa_int_t fa_lmdb_copy(fa_mailbox_t *box, const fa_uid_set_t *uids, const fa_str_t *dest,
    int move, fa_pool_t *pool, fa_storage_copy_pt cb, void *data);
fa_int_t fa_lmdb_expunge(fa_mailbox_t *box, const fa_uid_set_t *uids, fa_pool_t *pool,
    fa_storage_changes_pt cb, void *data);

/* fa_lmdb_check.c */
fa_int_t fa_lmdb_check(fa_storage_t *st, fa_uint_t flags, fa_storage_report_pt report,
    fa_storage_done_pt cb, void *data);

/* fa_lmdb_watch.c */
fa_int_t fa_lmdb_watch(fa_storage_t *st, const fa_str_t *user, const fa_str_t *mailbox,
    fa_storage_watch_pt cb, void *data, fa_storage_watch_t **out);
void fa_lmdb_unwatch(fa_storage_watch_t *w);
fa_int_t fa_lmdb_notify_open(fa_lmdb_t *lm);
void fa_lmdb_notify_close(fa_lmdb_t *lm);
void fa_lmdb_notify_bump(fa_lmdb_t *lm, const uint64_t *ids, fa_uint_t n);  /* any thread */
void fa_lmdb_notify_check(fa_lmdb_t *lm);                                 /* loop */

#endif /* FA_LMDB_H */
