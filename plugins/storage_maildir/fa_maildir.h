/*
 * The Maildir++ storage backend: the storage contract (fa_storage.h) on a
 * tree of Maildir++ directories that Dovecot and mutt read too.  Built out
 * of tree against the installed headers; README in plugins/ says how.
 *
 * Layout, under the "path" of the storage block:
 *
 *   PATH/DOMAIN/LOCAL/Maildir/           the user "local@domain"; INBOX
 *       cur/ new/ tmp/                   INBOX's messages
 *       .Sent/  .Work.2024/              other mailboxes ("Work/2024"), each
 *           cur/ new/ tmp/ maildirfolder   with cur/ new/ tmp/
 *       subscriptions                    Dovecot's format, version 2
 *       maildirsize                      Maildir++ quota
 *       facteur-uidvalidity              last UIDVALIDITY handed out
 *   PATH/_nodomain/USER/Maildir/         a user name without "@"
 *
 * Folder names: each level is encoded in IMAP modified UTF-7 (what Dovecot
 * writes by default), with ".", "\" and a leading "~" escaped as "\2e",
 * "\5c", "\7e" first, as Dovecot's listescape plugin does: Dovecot with
 * "separator = /" and "listescape_char = \\" sees the same names.
 *
 * Messages: "<secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<vsize>:2,<flags>"
 * with the flags D F P R S T and the keywords a..z (their names are in the
 * folder's dovecot-keywords, so at most 26 per mailbox).  A message without
 * flags stays in new/; any flag moves it to cur/.  The file's mtime is the
 * internal date.
 *
 * Per folder:
 *   dovecot-uidlist      UIDs, Dovecot's version 3: "3 V<uidvalidity>
 *                        N<uidnext> G<guid>", then "<uid> [ext] :<base>"
 *   dovecot-uidlist.lock the dotlock every writer takes, ours and Dovecot's
 *   dovecot-keywords     "<index> <name>" lines
 *   facteur-state        what Maildir++ has no place for: MODSEQ, expunges
 *                        and special-use (format in fa_maildir_index.c)
 *   facteur-cache        ENVELOPE, BODYSTRUCTURE, BODY and the part table of
 *                        each message, computed at append (fa_maildir_meta.c)
 *
 * Namespace: creating "a/b/c" creates "a" and "a/b" too; a deleted mailbox
 * whose children remain is listed \Noselect (Maildir++ lists the parents of
 * every folder); a \Noselect name cannot be deleted while it has children.
 *
 * Concurrency: every change takes the folder's dotlock, reads the uidlist
 * and the state again, applies itself, makes the files durable, unlocks.
 * Readers take no lock; what they find changed by another writer (a file
 * renamed by mutt, a delivery by Dovecot) is folded in by the next writer,
 * or by the reader itself when the lock is free.
 *
 * This first version does its disk work synchronously in the calling
 * worker (fsync included) and completes through a posted event: a
 * production backend would hand the work to fa_thread_pool and keep the
 * loop free.
 */

#ifndef FA_MAILDIR_H
#define FA_MAILDIR_H

#include "fa_core.h"
#include "fa_storage.h"
#include <ctype.h>
#include <dirent.h>

#define FA_MAILDIR_KEYWORDS_MAX    26       /* 'a' .. 'z' in file names */
#define FA_MAILDIR_LOCK_STALE      120      /* seconds, as Dovecot's dotlocks */
#define FA_MAILDIR_EXPUNGES_KEPT   10000    /* changes_since says too_old beyond */
#define FA_MAILDIR_UIDLIST         "dovecot-uidlist"
#define FA_MAILDIR_KEYWORDS        "dovecot-keywords"
#define FA_MAILDIR_STATE           "facteur-state"

typedef struct {
    fa_str_t      path;
    fa_msec_t     lock_timeout;     /* waiting for another writer's dotlock */
} fa_maildir_conf_t;

typedef struct fa_maildir_watcher_s  fa_maildir_watcher_t;

/* per process: st->data */
typedef struct {
    fa_storage_t          *st;
    fa_maildir_conf_t     *conf;
    fa_log_t              *log;
    char                   host[128];   /* "/" and ":" escaped, for file names */
    uint32_t               seq;         /* Q<n>: unique names within the process */
    fa_maildir_watcher_t  *watcher;     /* started by the first watch */
} fa_maildir_t;

/* where a mailbox lives */
typedef struct {
    char          *root;       /* the user's Maildir */
    char          *dir;        /* the folder: root, or root/.NAME */
    unsigned       inbox:1;
} fa_maildir_loc_t;

/* one message as a view of the folder sees it */
typedef struct {
    uint32_t       uid;
    uint32_t       flags;      /* FA_FLAG_* */
    uint64_t       keywords;   /* bit i: dovecot-keywords index i */
    uint64_t       modseq;
    uint64_t       size;
    char          *file;       /* "cur/NAME" or "new/NAME" */
    size_t         base_len;   /* NAME up to ":" */
    char          *info;       /* after ":2,", "" in new/ */
    char          *ext;        /* the uidlist record's extension fields, or NULL */
    unsigned       changed:1;  /* needs a state line at the next commit */
} fa_maildir_msg_t;

typedef struct {
    uint32_t       uid;
    uint64_t       modseq;
} fa_maildir_expunge_t;

/*
 * A folder as read at one moment: the uidlist, the keywords, the state and
 * the files merged.  Changes are made to the view, then written by
 * fa_maildir_view_commit under the lock.
 */
typedef struct {
    fa_pool_t     *pool;
    char          *dir;
    uint32_t       uidvalidity;        /* 0: no uidlist yet */
    uint32_t       uidnext;
    char           guid[33];           /* the mailbox GUID, hex */
    char          *hdr_ext;            /* unknown uidlist header fields */
    uint64_t       highestmodseq;
    uint64_t       expunge_floor;      /* expunges up to here are forgotten */
    uint32_t       special_use;
    fa_array_t     msgs;               /* fa_maildir_msg_t, by UID */
    fa_array_t     expunges;           /* fa_maildir_expunge_t, by MODSEQ */
    char          *keywords[FA_MAILDIR_KEYWORDS_MAX];
    fa_array_t     fresh;              /* char *: files the uidlist does not know */
    fa_array_t     gone;               /* uint32_t: UIDs whose file is gone */

    fa_uint_t      uidlist_new_from;   /* msgs from here are not in the uidlist */
    fa_uint_t      expunges_new_from;  /* expunges from here are not in the state */
    fa_uint_t      state_lines;        /* lines in the state file as read */
    fa_uint_t      nrecs;              /* records in the uidlist as read */
    unsigned       dirty:1;            /* disagrees with the disk: fix under lock */
    unsigned       partial:1;          /* index files only: appends, never rewrites */
    unsigned       missing:1;          /* a uidlist record without its file */
    unsigned       uidlist_rewrite:1;
    unsigned       state_rewrite:1;
    unsigned       keywords_changed:1;
    unsigned       uidlist_append_ok:1;
    unsigned       state_append_ok:1;
} fa_maildir_view_t;

/* the metadata strings of a message (fa_maildir_meta.c) */
#define FA_MAILDIR_META_ENVELOPE       0
#define FA_MAILDIR_META_BODYSTRUCTURE  1
#define FA_MAILDIR_META_BODY           2
#define FA_MAILDIR_META_MIME           3

typedef struct {
    fa_str_t       f[4];
    unsigned       present:1;        /* computed (a MIME module is there) */
} fa_maildir_meta_t;

typedef struct {
    const char        *base;
    size_t             base_len;
    fa_uint_t          seq;           /* position in the file: the later wins */
    fa_maildir_meta_t  meta;
} fa_maildir_cache_rec_t;

/* facteur-cache as read, by base */
typedef struct {
    fa_pool_t     *pool;
    ino_t          ino;
    off_t          size;
    fa_array_t     recs;              /* fa_maildir_cache_rec_t */
} fa_maildir_cache_t;

/* a selected mailbox (fa_storage.h's opaque handle) */
struct fa_mailbox_s {
    fa_maildir_t        *md;
    fa_pool_t           *pool;          /* the handle's own */
    fa_str_t             user;
    fa_str_t             name;
    fa_maildir_loc_t     loc;
    fa_maildir_view_t   *view;          /* the latest read, in its own pool */
    fa_maildir_cache_t  *cache;         /* facteur-cache, read when first needed */
};

/* fa_maildir_module.c: completions posted to the loop */
typedef enum {
    FA_MAILDIR_DONE_LIST, FA_MAILDIR_DONE_STATUS, FA_MAILDIR_DONE_OPEN,
    FA_MAILDIR_DONE_META, FA_MAILDIR_DONE_APPEND, FA_MAILDIR_DONE_COPY,
    FA_MAILDIR_DONE_CHANGES, FA_MAILDIR_DONE_QUOTA
} fa_maildir_done_kind_t;

typedef struct {
    fa_event_t               ev;
    fa_maildir_done_kind_t   kind;
    void                   (*cb)(void);    /* the caller's, of the kind's type */
    void                    *data;
    fa_int_t                 rc;
    fa_maildir_view_t       *view;     /* results point into it: freed after */
    union {
        struct { fa_mailbox_info_t *boxes; fa_uint_t n; }  list;
        fa_mailbox_status_t                               status;
        struct { fa_mailbox_t *box; fa_mailbox_status_t st; }  open;
        struct { fa_message_meta_t *msgs; fa_uint_t n; }   meta;
        fa_append_result_t                                append;
        struct { uint32_t uidvalidity; fa_uid_set_t *src, *dst; }  copy;
        fa_mailbox_changes_t                             *changes;
        fa_quota_t                                        quota;
    } r;
} fa_maildir_done_t;

extern fa_module_t  fa_storage_maildir_module;

#define fa_maildir_cb(f)  ((void (*)(void)) (f))
fa_maildir_done_t *fa_maildir_done(fa_maildir_t *md, fa_maildir_done_kind_t kind,
    void (*cb)(void), void *data);
fa_int_t fa_maildir_post(fa_maildir_done_t *d, fa_int_t rc);   /* FA_AGAIN */
fa_int_t fa_maildir_sys_error(fa_maildir_t *md, int err, const char *what,
    const char *path);

/* fa_maildir_path.c: users, mailbox names and folders */
fa_int_t fa_maildir_locate(fa_maildir_t *md, const fa_str_t *user, const fa_str_t *name,
    fa_pool_t *pool, fa_maildir_loc_t *loc);
fa_int_t fa_maildir_user_root(fa_maildir_t *md, const fa_str_t *user, fa_pool_t *pool,
    char **root);
char *fa_maildir_join(fa_pool_t *pool, const char *a, const char *b);

/* fa_maildir_file.c: message file names, flags, unique names */
void fa_maildir_name_parse(fa_maildir_msg_t *m, char *file);
uint32_t fa_maildir_info_flags(const char *info, uint64_t *keywords);
char *fa_maildir_info_make(fa_pool_t *pool, uint32_t flags, uint64_t keywords,
    const char *old);
char *fa_maildir_unique(fa_maildir_t *md, fa_pool_t *pool);
fa_str_t fa_maildir_msg_guid(fa_maildir_msg_t *m);
uint64_t fa_maildir_name_size(const char *name, size_t len, char key);

/* fa_maildir_fs.c: locks and durable files */
typedef struct {
    char          *p;
    size_t         n;
    size_t         size;
    int            failed;
} fa_maildir_buf_t;

void fa_maildir_buf_printf(fa_maildir_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fa_maildir_buf_add(fa_maildir_buf_t *b, const void *data, size_t len);
fa_int_t fa_maildir_lock(fa_maildir_t *md, const char *dir, const char *file);
void fa_maildir_unlock(fa_maildir_t *md, const char *dir, const char *file);
fa_int_t fa_maildir_trylock(fa_maildir_t *md, const char *dir, const char *file);
fa_int_t fa_maildir_fsync_dir(fa_maildir_t *md, const char *dir);
fa_int_t fa_maildir_replace_file(fa_maildir_t *md, const char *dir, const char *file,
    const u_char *data, size_t len);
fa_int_t fa_maildir_append_file(fa_maildir_t *md, const char *dir, const char *file,
    const u_char *data, size_t len, int create);
fa_int_t fa_maildir_read_file(fa_maildir_t *md, fa_pool_t *pool, const char *path,
    fa_str_t *out);
fa_int_t fa_maildir_mkdirs(fa_maildir_t *md, const char *dir, int folder);
fa_int_t fa_maildir_remove_tree(fa_maildir_t *md, const char *path);
fa_int_t fa_maildir_random_hex(char *buf, size_t bytes);

/* fa_maildir_index.c: dovecot-uidlist, dovecot-keywords, facteur-state */
fa_int_t fa_maildir_uidlist_read(fa_maildir_t *md, fa_maildir_view_t *v, fa_array_t *recs);
fa_int_t fa_maildir_keywords_read(fa_maildir_t *md, fa_maildir_view_t *v);
fa_int_t fa_maildir_state_read(fa_maildir_t *md, fa_maildir_view_t *v, fa_array_t *lines);
fa_int_t fa_maildir_index_write(fa_maildir_t *md, fa_maildir_view_t *v);
uint32_t fa_maildir_state_special_use(fa_maildir_t *md, fa_pool_t *pool, const char *dir);

typedef struct {
    uint32_t       uid;
    char          *base;
    size_t         base_len;
    char          *ext;
} fa_maildir_rec_t;

typedef struct {
    uint32_t       uid;
    uint64_t       modseq;
    char          *info;
} fa_maildir_line_t;

/* fa_maildir_sync.c: views */
fa_int_t fa_maildir_view_read(fa_maildir_t *md, const char *dir, fa_maildir_view_t **out);
fa_int_t fa_maildir_view_locked(fa_maildir_t *md, const char *dir, fa_maildir_view_t **out);
fa_int_t fa_maildir_view_for_append(fa_maildir_t *md, const char *dir,
    fa_maildir_view_t **out);
#define fa_maildir_view_commit(md, v)  fa_maildir_index_write(md, v)
void fa_maildir_view_release(fa_maildir_t *md, fa_maildir_view_t *v);   /* unlock, free */
void fa_maildir_view_free(fa_maildir_view_t *v);
fa_maildir_msg_t *fa_maildir_view_find(fa_maildir_view_t *v, uint32_t uid);
int fa_maildir_uid_sort(const void *a, const void *b);     /* qsort of uint32_t */
uint64_t fa_maildir_view_modseq(fa_maildir_view_t *v);
void fa_maildir_view_expunge(fa_maildir_view_t *v, fa_uint_t i, uint64_t modseq);
int fa_maildir_view_keyword(fa_maildir_view_t *v, const fa_str_t *name, int create);
fa_int_t fa_maildir_view_status(fa_maildir_view_t *v, fa_mailbox_status_t *st);
fa_int_t fa_maildir_keyword_table(fa_maildir_view_t *v, fa_pool_t *pool, fa_str_t **table,
    fa_uint_t *n);
fa_int_t fa_maildir_folder_new(fa_maildir_t *md, fa_maildir_loc_t *loc, uint32_t special_use);

/* fa_maildir_mailbox.c: the namespace */
fa_int_t fa_maildir_mailbox_list(fa_storage_t *st, const fa_str_t *user, fa_pool_t *pool,
    fa_storage_list_pt cb, void *data);
fa_int_t fa_maildir_mailbox_create(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *name, uint32_t special_use, fa_storage_done_pt cb, void *data);
fa_int_t fa_maildir_mailbox_delete(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *name, fa_storage_done_pt cb, void *data);
fa_int_t fa_maildir_mailbox_rename(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *from, const fa_str_t *to, fa_storage_done_pt cb, void *data);
fa_int_t fa_maildir_mailbox_subscribe(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *name, int on, fa_storage_done_pt cb, void *data);
fa_int_t fa_maildir_mailbox_status(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *name, fa_storage_status_pt cb, void *data);
uint32_t fa_maildir_uidvalidity_next(fa_maildir_t *md, const char *root);

/* fa_maildir_message.c: a selected mailbox, reads, store, changes */
fa_int_t fa_maildir_mailbox_open(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *name, fa_pool_t *pool, fa_storage_open_pt cb, void *data);
void fa_maildir_mailbox_close(fa_mailbox_t *box);
fa_int_t fa_maildir_fetch_meta(fa_mailbox_t *box, const fa_uid_set_t *uids,
    fa_pool_t *pool, fa_storage_meta_pt cb, void *data);
fa_int_t fa_maildir_message_open(fa_mailbox_t *box, uint32_t uid, fa_msg_stream_t **out);
ssize_t fa_maildir_message_read(fa_msg_stream_t *m, uint64_t offset, u_char *buf,
    size_t len, fa_storage_done_pt cb, void *data);
fa_int_t fa_maildir_message_fd(fa_msg_stream_t *m, int *fd, uint64_t *offset);
void fa_maildir_message_close(fa_msg_stream_t *m);
fa_int_t fa_maildir_store(fa_mailbox_t *box, const fa_uid_set_t *uids,
    const fa_store_request_t *req, fa_pool_t *pool, fa_storage_meta_pt cb, void *data);
fa_int_t fa_maildir_changes_since(fa_mailbox_t *box, uint64_t modseq, fa_pool_t *pool,
    fa_storage_changes_pt cb, void *data);
fa_int_t fa_maildir_box_refresh(fa_mailbox_t *box);
fa_int_t fa_maildir_meta_fill(fa_maildir_view_t *v, fa_maildir_msg_t *m, fa_pool_t *pool,
    const fa_maildir_meta_t *strings, fa_message_meta_t *meta);

/* fa_maildir_append.c */
fa_int_t fa_maildir_append_begin(fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *mailbox, const fa_append_request_t *req, fa_append_t **out);
fa_int_t fa_maildir_append_write(fa_append_t *a, const u_char *data, size_t len);
fa_int_t fa_maildir_append_commit(fa_append_t *a, fa_storage_append_pt cb, void *data);
void fa_maildir_append_abort(fa_append_t *a);
fa_int_t fa_maildir_keywords_resolve(fa_maildir_view_t *v, const fa_str_t *names,
    fa_uint_t n, uint64_t *bits);

/* fa_maildir_copy.c: copy, move, expunge */
fa_int_t fa_maildir_copy(fa_mailbox_t *box, const fa_uid_set_t *uids, const fa_str_t *dest,
    int move, fa_pool_t *pool, fa_storage_copy_pt cb, void *data);
fa_int_t fa_maildir_expunge(fa_mailbox_t *box, const fa_uid_set_t *uids, fa_pool_t *pool,
    fa_storage_changes_pt cb, void *data);

/* fa_maildir_quota.c: maildirsize */
fa_int_t fa_maildir_quota_get(fa_storage_t *st, const fa_str_t *user,
    fa_storage_quota_pt cb, void *data);
fa_int_t fa_maildir_quota_set(fa_storage_t *st, const fa_str_t *user,
    const fa_quota_t *limits, fa_storage_done_pt cb, void *data);
fa_int_t fa_maildir_quota_check(fa_maildir_t *md, const char *root, uint64_t bytes,
    uint64_t messages);
void fa_maildir_quota_add(fa_maildir_t *md, const char *root, int64_t bytes,
    int64_t messages);

/* fa_maildir_meta.c: MIME metadata and facteur-cache */
void *fa_maildir_meta_start(fa_pool_t *pool);
void fa_maildir_meta_feed(void *parser, const u_char *data, size_t len);
fa_int_t fa_maildir_meta_finish(void *parser, fa_pool_t *pool, fa_maildir_meta_t *out);
fa_int_t fa_maildir_cache_refresh(fa_maildir_t *md, const char *dir, fa_maildir_cache_t **c);
void fa_maildir_cache_free(fa_maildir_cache_t *c);
const fa_maildir_meta_t *fa_maildir_cache_find(fa_maildir_cache_t *c, const char *base,
    size_t len);
void fa_maildir_cache_record(fa_maildir_buf_t *b, const char *base, size_t len,
    const fa_maildir_meta_t *m);
fa_int_t fa_maildir_cache_write(fa_maildir_t *md, const char *dir, fa_maildir_buf_t *b);
fa_int_t fa_maildir_cache_get(fa_maildir_t *md, fa_maildir_cache_t *c, fa_maildir_view_t *v,
    fa_maildir_msg_t *m, fa_pool_t *pool, fa_maildir_buf_t *add, fa_maildir_meta_t *out);
fa_int_t fa_maildir_cache_compact(fa_maildir_t *md, fa_maildir_view_t *v);

/* fa_maildir_watch.c: inotify */
fa_int_t fa_maildir_watch(fa_storage_t *st, const fa_str_t *user, const fa_str_t *mailbox,
    fa_storage_watch_pt cb, void *data, fa_storage_watch_t **out);
void fa_maildir_unwatch(fa_storage_watch_t *w);
void fa_maildir_watcher_stop(fa_maildir_t *md);

#endif /* FA_MAILDIR_H */
