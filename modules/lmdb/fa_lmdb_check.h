/*
 * Private to facteurctl check of the LMDB backend (docs/storage.md,
 * "Checking the store"): the in-memory copy of the store that the check
 * builds and the helpers its two files share.  Nothing else includes this.
 *
 *   fa_lmdb_check.c      the op, findings and recorded repairs, lookups,
 *                        the walk (every database into memory, blobs/
 *                        listed), the run, fa_lmdb_check()
 *   fa_lmdb_check_fix.c  comparing and repairing: bodies, messages,
 *                        mailboxes, users, the id counters, stale keys
 */

#ifndef FA_LMDB_CHECK_H
#define FA_LMDB_CHECK_H

#include "fa_lmdb.h"

#define FA_LMDB_CK_NONE  ((size_t) -1)
#define FA_LMDB_CK_LABEL (FA_MAILBOX_NAME_MAX + FA_LMDB_USER_MAX + 64)

typedef struct fa_lmdb_found_s  fa_lmdb_found_t;
struct fa_lmdb_found_s {
    fa_lmdb_found_t      *next;
    fa_uint_t             level;
    char                  text[];
};

typedef struct fa_lmdb_drop_s  fa_lmdb_drop_t;
struct fa_lmdb_drop_s {                   /* a key to delete: damaged or stale */
    fa_lmdb_drop_t       *next;
    int                   db;
    size_t                len;
    u_char                key[];
};

typedef struct {
    void                 *elts;
    size_t                n, size;
} fa_lmdb_vec_t;

typedef struct {
    uint64_t              messages, unseen, deleted, size;
} fa_lmdb_count_t;

typedef struct {
    char                 *name;           /* NUL-terminated copy of the key */
    fa_lmdb_user_rec_t    rec;
    fa_lmdb_count_t       seen;           /* every readable message of its mailboxes */
    fa_lmdb_count_t       kept;           /* those a repair keeps */
    uint32_t              uidv_seen;      /* the greatest UIDVALIDITY of its mailboxes */
    uint32_t              uidvalidity;    /* ... including those a repair makes */
    unsigned              foreign:1;      /* a mailbox left alone: no quota check */
} fa_lmdb_ck_user_t;

typedef struct {
    uint64_t              user_id;
    fa_str_t              name;           /* malloc'd */
} fa_lmdb_ck_name_t;

typedef struct {
    uint64_t              id;
    fa_lmdb_box_rec_t     rec;
    size_t                rec_len;        /* 0: no record at all */
    size_t                name;           /* its first name, or FA_LMDB_CK_NONE */
    uint32_t              nnames;
    uint32_t              nmsgs;          /* message records, damaged ones too */
    fa_lmdb_count_t       seen, kept;
    uint32_t              max_uid;
    uint64_t              max_modseq;     /* of its messages */
    uint64_t              max_tomb;       /* of its expunge records */
    unsigned              has_rec:1;      /* a readable record of version 1 */
    unsigned              foreign:1;      /* a record of another version: left alone */
    unsigned              skip_counts:1;  /* a message of another version */
} fa_lmdb_ck_box_t;

typedef struct {
    uint64_t              box;
    uint32_t              uid;
    uint32_t              len;            /* of the value */
    uint16_t              flags;
    uint16_t              version;
    uint64_t              modseq;
    uint64_t              size;
    u_char                body[FA_LMDB_BODY_ID_LEN];
    unsigned              damaged:1;      /* shorter than a record */
    unsigned              foreign:1;      /* another version */
    unsigned              bad_tail:1;     /* the strings do not fit */
    unsigned              indexed:1;      /* its MODSEQ entry exists */
    unsigned              drop:1;
    unsigned              renumber:1;
} fa_lmdb_ck_msg_t;

typedef struct {
    u_char                id[FA_LMDB_BODY_ID_LEN];
    fa_lmdb_ref_rec_t     ref;
    uint32_t              ref_len;
    uint32_t              nmsgs;          /* readable messages that use it */
    uint64_t              msg_size;       /* what they say */
    uint64_t              inline_size;
    uint64_t              file_size;
    uint64_t              actual;         /* the size of the copy that is read */
    unsigned              used:1;         /* a slot of the table in use */
    unsigned              has_ref:1;
    unsigned              has_inline:1;
    unsigned              has_file:1;
    unsigned              sizes_differ:1; /* its messages disagree on the size */
    unsigned              lost:1;
    unsigned              damaged:1;
    uint32_t              kind;           /* where it is read from, once decided */
} fa_lmdb_ck_body_t;

typedef struct {
    u_char                id[FA_LMDB_BODY_ID_LEN];
    uint64_t              size;
} fa_lmdb_ck_file_t;

typedef struct {
    fa_lmdb_op_t          op;
    fa_storage_report_pt  report;
    fa_storage_done_pt    cb;
    void                 *data;
    unsigned              repair:1;
    /* the walk's state: made by each run, freed by reset */
    MDB_txn              *txn;
    fa_int_t              rc;             /* FA_LMDB_RETRY or _FAILED once one failed */
    fa_lmdb_vec_t         users, names, boxes, msgs, files, changed;
    fa_lmdb_ck_body_t    *bodies;         /* open addressing, by body id */
    size_t                nbodies, cap;
    fa_lmdb_drop_t       *drops;
    fa_lmdb_found_t      *found, **last;
    uint64_t              max_user, max_box;
    uint64_t              leftover_box;   /* the last mailbox reported for leftovers */
    int                   leftover_db;
} fa_lmdb_check_op_t;

#define fa_lmdb_ck_users(ck)   ((fa_lmdb_ck_user_t *) (ck)->users.elts)
#define fa_lmdb_ck_names(ck)   ((fa_lmdb_ck_name_t *) (ck)->names.elts)
#define fa_lmdb_ck_boxes(ck)   ((fa_lmdb_ck_box_t *) (ck)->boxes.elts)
#define fa_lmdb_ck_msgs(ck)    ((fa_lmdb_ck_msg_t *) (ck)->msgs.elts)
#define fa_lmdb_ck_files(ck)   ((fa_lmdb_ck_file_t *) (ck)->files.elts)

/* fa_lmdb_check.c: findings and repairs; FIXABLE 1 (a repair fixes it),
 * 0 (it cannot), -1 (information) */
void fa_lmdb_ck_find(fa_lmdb_check_op_t *ck, int fixable, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fa_lmdb_ck_wrote(fa_lmdb_check_op_t *ck, fa_int_t rc);
void fa_lmdb_ck_del(fa_lmdb_check_op_t *ck, int db, const u_char *key, size_t len);
void fa_lmdb_ck_changed(fa_lmdb_check_op_t *ck, uint64_t id);

/* fa_lmdb_check.c: lookups in what the walk read */
fa_lmdb_ck_user_t *fa_lmdb_ck_user(fa_lmdb_check_op_t *ck, uint64_t id);
fa_lmdb_ck_box_t *fa_lmdb_ck_box(fa_lmdb_check_op_t *ck, uint64_t id, int add);
size_t fa_lmdb_ck_msg_at(fa_lmdb_check_op_t *ck, uint64_t box, uint32_t uid);
fa_lmdb_ck_body_t *fa_lmdb_ck_body(fa_lmdb_check_op_t *ck, const u_char *id, int add);
const char *fa_lmdb_ck_label(fa_lmdb_check_op_t *ck, const fa_lmdb_ck_box_t *b, char *buf,
    size_t size);

/* fa_lmdb_check_fix.c: the steps of a run after the walk, in this order */
void fa_lmdb_ck_drops(fa_lmdb_check_op_t *ck);
void fa_lmdb_ck_meta(fa_lmdb_check_op_t *ck, const char *name, uint64_t max, const char *what);
void fa_lmdb_ck_bodies(fa_lmdb_check_op_t *ck);
void fa_lmdb_ck_messages(fa_lmdb_check_op_t *ck);
void fa_lmdb_ck_mailboxes(fa_lmdb_check_op_t *ck);
void fa_lmdb_ck_all_users(fa_lmdb_check_op_t *ck);

#endif /* FA_LMDB_CHECK_H */
