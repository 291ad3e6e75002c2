/*
 * facteurctl check: verify the whole store and, with FA_CHECK_REPAIR, make
 * it consistent again (docs/storage.md, "Checking the store").
 *
 * The walk reads every database into memory (users, mailbox names and
 * records, messages, the MODSEQ index, tombstones, keyword tables, body
 * references, inline bodies) and lists blobs/; then it compares what each
 * record says with what the messages say, body by body, message by
 * message, mailbox by mailbox and user by user, and reports each
 * disagreement as one line.
 *
 * Without repair the walk is one read transaction in the caller's thread:
 * LMDB readers never wait for writers, so the server goes on undisturbed.
 * With repair it is a write op like any other (fa_lmdb_writer.c): the
 * writer thread runs the walk and the repairs in its write transaction,
 * which serializes with every other process's writer, so what it
 * recomputes is what it writes.  Blob files go after the commit (the op's
 * unlinks), and watchers of the mailboxes it changed are told.
 *
 * Orphan files: an append renames its file into blobs/ before the commit
 * that references it.  Both modes list blobs/ holding the blob lock
 * exclusive (appends hold it shared from rename to commit) and take their
 * snapshot of the databases before they release it, so a file counts as
 * an orphan only when no commit still to come will reference it.
 *
 * What is repaired, and what is only reported, is listed in
 * docs/storage.md; in short, anything whose repair would lose nothing that
 * is still readable, and the index entries of content already lost.
 */

#include "fa_lmdb.h"
#include <dirent.h>
#include <sys/file.h>

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

/* ---- bookkeeping ---- */

static void *
fa_lmdb_vec_push(fa_lmdb_check_op_t *ck, fa_lmdb_vec_t *v, size_t elt)
{
    void  *p;

    if (v->n == v->size) {
        size_t size = v->size ? v->size * 2 : 64;
        p = realloc(v->elts, size * elt);
        if (p == NULL) {
            ck->rc = FA_LMDB_FAILED;
            return NULL;
        }
        v->elts = p;
        v->size = size;
    }
    p = (u_char *) v->elts + v->n++ * elt;
    memset(p, 0, elt);
    return p;
}

/* a finding: FIXABLE 1 (a repair fixes it), 0 (it cannot), -1 (information) */
static void __attribute__((format(printf, 3, 4)))
fa_lmdb_ck_find(fa_lmdb_check_op_t *ck, int fixable, const char *fmt, ...)
{
    fa_lmdb_found_t  *f;
    va_list           args;
    int               n;

    va_start(args, fmt);
    n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    f = n < 0 ? NULL : malloc(sizeof(*f) + (size_t) n + 1);
    if (f == NULL) {
        ck->rc = FA_LMDB_FAILED;
        return;
    }
    va_start(args, fmt);
    vsnprintf(f->text, (size_t) n + 1, fmt, args);
    va_end(args);
    for (char *p = f->text; *p; p++) {     /* one line, whatever a damaged name holds */
        if ((u_char) *p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    f->level = fixable < 0 ? FA_CHECK_INFO : !ck->repair ? FA_CHECK_PROBLEM
               : fixable ? FA_CHECK_REPAIRED : FA_CHECK_UNREPAIRED;
    f->next = NULL;
    *ck->last = f;
    ck->last = &f->next;
}

/* an LMDB status of a repair: anything but RETRY loses the transaction */
static void
fa_lmdb_ck_wrote(fa_lmdb_check_op_t *ck, fa_int_t rc)
{
    if (rc != FA_OK && ck->rc == FA_OK) {
        ck->rc = rc == FA_LMDB_RETRY ? FA_LMDB_RETRY : FA_LMDB_FAILED;
    }
}

static void
fa_lmdb_ck_del(fa_lmdb_check_op_t *ck, int db, const u_char *key, size_t len)
{
    MDB_val  k = { len, (void *) key };

    if (ck->repair && ck->rc == FA_OK) {
        fa_lmdb_ck_wrote(ck, fa_lmdb_del(ck->op.lm, ck->txn, db, &k));
    }
}

/* a key to delete once the cursors are closed */
static void
fa_lmdb_ck_drop(fa_lmdb_check_op_t *ck, int db, const MDB_val *key)
{
    fa_lmdb_drop_t  *d = malloc(sizeof(*d) + key->mv_size);

    if (d == NULL) {
        ck->rc = FA_LMDB_FAILED;
        return;
    }
    d->db = db;
    d->len = key->mv_size;
    memcpy(d->key, key->mv_data, key->mv_size);
    d->next = ck->drops;
    ck->drops = d;
}

static void
fa_lmdb_ck_changed(fa_lmdb_check_op_t *ck, uint64_t id)
{
    uint64_t  *p = fa_lmdb_vec_push(ck, &ck->changed, sizeof(uint64_t));

    if (p) {
        *p = id;
    }
}

/* ---- lookups ---- */

static int
fa_lmdb_ck_user_cmp(const void *a, const void *b)
{
    uint64_t  x = ((const fa_lmdb_ck_user_t *) a)->rec.id;
    uint64_t  y = ((const fa_lmdb_ck_user_t *) b)->rec.id;

    return (x > y) - (x < y);
}

static fa_lmdb_ck_user_t *
fa_lmdb_ck_user(fa_lmdb_check_op_t *ck, uint64_t id)
{
    fa_lmdb_ck_user_t  key;

    key.rec.id = id;
    return ck->users.n ? bsearch(&key, ck->users.elts, ck->users.n, sizeof(key),
                                 fa_lmdb_ck_user_cmp) : NULL;
}

/* the mailbox ID; with ADD, made (with no record) when missing */
static fa_lmdb_ck_box_t *
fa_lmdb_ck_box(fa_lmdb_check_op_t *ck, uint64_t id, int add)
{
    fa_lmdb_ck_box_t  *b = ck->boxes.elts;
    size_t             lo = 0, hi = ck->boxes.n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b[mid].id < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < ck->boxes.n && b[lo].id == id) {
        return &b[lo];
    }
    if (!add || fa_lmdb_vec_push(ck, &ck->boxes, sizeof(*b)) == NULL) {
        return NULL;
    }
    b = ck->boxes.elts;
    memmove(&b[lo + 1], &b[lo], (ck->boxes.n - 1 - lo) * sizeof(*b));
    memset(&b[lo], 0, sizeof(*b));
    b[lo].id = id;
    b[lo].name = FA_LMDB_CK_NONE;
    ck->max_box = fa_max(ck->max_box, id);
    return &b[lo];
}

/* the messages are in key order: (mailbox, UID) ascending */
static size_t
fa_lmdb_ck_msg_at(fa_lmdb_check_op_t *ck, uint64_t box, uint32_t uid)
{
    fa_lmdb_ck_msg_t  *m = ck->msgs.elts;
    size_t             lo = 0, hi = ck->msgs.n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m[mid].box < box || (m[mid].box == box && m[mid].uid < uid)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static fa_lmdb_ck_msg_t *
fa_lmdb_ck_msg(fa_lmdb_check_op_t *ck, uint64_t box, uint32_t uid)
{
    size_t             i = fa_lmdb_ck_msg_at(ck, box, uid);
    fa_lmdb_ck_msg_t  *m = ck->msgs.elts;

    return i < ck->msgs.n && m[i].box == box && m[i].uid == uid ? &m[i] : NULL;
}

static size_t
fa_lmdb_ck_hash(const u_char *id)
{
    return (size_t) ((fa_lmdb_get64(id) ^ fa_lmdb_get64(id + 8)) * 0x9e3779b97f4a7c15ULL);
}

static fa_int_t
fa_lmdb_ck_bodies_grow(fa_lmdb_check_op_t *ck)
{
    size_t              cap = ck->cap ? ck->cap * 2 : 1024, j;
    fa_lmdb_ck_body_t  *t = calloc(cap, sizeof(fa_lmdb_ck_body_t));

    if (t == NULL) {
        ck->rc = FA_LMDB_FAILED;
        return FA_ERROR;
    }
    for (size_t i = 0; i < ck->cap; i++) {
        if (ck->bodies[i].used) {
            for (j = fa_lmdb_ck_hash(ck->bodies[i].id) & (cap - 1); t[j].used;
                 j = (j + 1) & (cap - 1)) { /* void */ }
            t[j] = ck->bodies[i];
        }
    }
    free(ck->bodies);
    ck->bodies = t;
    ck->cap = cap;
    return FA_OK;
}

/* the body ID; with ADD, made when missing (pointers are valid until the next add) */
static fa_lmdb_ck_body_t *
fa_lmdb_ck_body(fa_lmdb_check_op_t *ck, const u_char *id, int add)
{
    fa_lmdb_ck_body_t  *b;

    if (add && (ck->nbodies + 1) * 2 > ck->cap && fa_lmdb_ck_bodies_grow(ck) != FA_OK) {
        return NULL;
    }
    if (ck->cap == 0) {
        return NULL;
    }
    for (size_t i = fa_lmdb_ck_hash(id) & (ck->cap - 1); ; i = (i + 1) & (ck->cap - 1)) {
        b = &ck->bodies[i];
        if (!b->used) {
            if (!add) {
                return NULL;
            }
            b->used = 1;
            memcpy(b->id, id, FA_LMDB_BODY_ID_LEN);
            ck->nbodies++;
            return b;
        }
        if (memcmp(b->id, id, FA_LMDB_BODY_ID_LEN) == 0) {
            return b;
        }
    }
}

/* a mailbox that exists in some way other than its leftovers */
static int
fa_lmdb_ck_box_exists(const fa_lmdb_ck_box_t *b)
{
    return b && (b->rec_len || b->nnames || b->nmsgs);
}

/* "mailbox 12 (alice@example.org INBOX)", for the reports */
static const char *
fa_lmdb_ck_label(fa_lmdb_check_op_t *ck, const fa_lmdb_ck_box_t *b, char *buf, size_t size)
{
    const fa_lmdb_ck_name_t  *n = b->name != FA_LMDB_CK_NONE ? &fa_lmdb_ck_names(ck)[b->name]
                                                             : NULL;
    uint64_t                  uid = b->has_rec ? b->rec.user_id : n ? n->user_id : 0;
    fa_lmdb_ck_user_t        *u = uid ? fa_lmdb_ck_user(ck, uid) : NULL;
    char                      who[FA_LMDB_USER_MAX + 32];

    if (u) {
        fa_snprintf(who, sizeof(who), "%s", u->name);
    } else {
        fa_snprintf(who, sizeof(who), "user id %" PRIu64, uid);
    }
    if (n) {
        fa_snprintf(buf, size, "mailbox %" PRIu64 " (%s %.*s)", b->id, who, (int) n->name.len,
                    n->name.data);
    } else if (uid) {
        fa_snprintf(buf, size, "mailbox %" PRIu64 " (%s, no name)", b->id, who);
    } else {
        fa_snprintf(buf, size, "mailbox %" PRIu64, b->id);
    }
    return buf;
}

/* ---- the walk: every database into memory ---- */

typedef void (*fa_lmdb_ck_each_pt)(fa_lmdb_check_op_t *ck, MDB_val *key, MDB_val *val);

static void
fa_lmdb_ck_each(fa_lmdb_check_op_t *ck, int db, fa_lmdb_ck_each_pt fn)
{
    MDB_cursor  *c;
    MDB_val      key, val;
    int          rc;

    if (ck->rc != FA_OK) {
        return;
    }
    rc = mdb_cursor_open(ck->txn, ck->op.lm->dbi[db], &c);
    if (rc != 0) {
        fa_lmdb_error(ck->op.lm, rc, "mdb_cursor_open()");
        ck->rc = FA_LMDB_FAILED;
        return;
    }
    while (ck->rc == FA_OK && (rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) == 0) {
        fn(ck, &key, &val);
    }
    mdb_cursor_close(c);
    if (ck->rc == FA_OK && rc != MDB_NOTFOUND) {
        fa_lmdb_error(ck->op.lm, rc, "mdb_cursor_get()");
        ck->rc = FA_LMDB_FAILED;
    }
}

static void
fa_lmdb_ck_user_one(fa_lmdb_check_op_t *ck, MDB_val *key, MDB_val *val)
{
    fa_lmdb_ck_user_t   *u;
    fa_lmdb_user_rec_t   rec;
    int                  len = (int) key->mv_size;

    if (val->mv_size < sizeof(rec)) {
        fa_lmdb_ck_find(ck, 0, "user \"%.*s\": damaged record (%zu bytes)", len,
                        (char *) key->mv_data, val->mv_size);
        return;
    }
    memcpy(&rec, val->mv_data, sizeof(rec));
    if (rec.version != FA_LMDB_RECORD_V1) {
        fa_lmdb_ck_find(ck, 0, "user \"%.*s\": a record of unknown version %u", len,
                        (char *) key->mv_data, rec.version);
        return;
    }
    u = fa_lmdb_vec_push(ck, &ck->users, sizeof(*u));
    if (u == NULL || (u->name = malloc(key->mv_size + 1)) == NULL) {
        ck->rc = FA_LMDB_FAILED;
        return;
    }
    memcpy(u->name, key->mv_data, key->mv_size);
    u->name[key->mv_size] = '\0';
    u->rec = rec;
    ck->max_user = fa_max(ck->max_user, rec.id);
}

static void
fa_lmdb_ck_users_sort(fa_lmdb_check_op_t *ck)
{
    fa_lmdb_ck_user_t  *u = ck->users.elts;

    if (ck->users.n) {
        qsort(u, ck->users.n, sizeof(*u), fa_lmdb_ck_user_cmp);
    }
    for (size_t i = 1; i < ck->users.n; i++) {
        if (u[i].rec.id == u[i - 1].rec.id) {
            fa_lmdb_ck_find(ck, 0, "users \"%s\" and \"%s\" have the same id %" PRIu64,
                            u[i - 1].name, u[i].name, u[i].rec.id);
        }
    }
}

static void
fa_lmdb_ck_box_one(fa_lmdb_check_op_t *ck, MDB_val *key, MDB_val *val)
{
    fa_lmdb_ck_box_t  *b;

    if (key->mv_size != 8) {
        fa_lmdb_ck_find(ck, 1, "a mailbox record with a damaged key (%zu bytes)", key->mv_size);
        fa_lmdb_ck_drop(ck, FA_LMDB_BOXES, key);
        return;
    }
    b = fa_lmdb_ck_box(ck, fa_lmdb_get64(key->mv_data), 1);
    if (b == NULL) {
        return;
    }
    b->rec_len = val->mv_size;
    if (val->mv_size < sizeof(b->rec)) {
        return;                            /* damaged: reported with the mailbox */
    }
    memcpy(&b->rec, val->mv_data, sizeof(b->rec));
    b->has_rec = b->rec.version == FA_LMDB_RECORD_V1;
    b->foreign = !b->has_rec;
}

static void
fa_lmdb_ck_name_one(fa_lmdb_check_op_t *ck, MDB_val *key, MDB_val *val)
{
    fa_lmdb_name_rec_t   rec;
    fa_lmdb_ck_name_t   *n;
    fa_lmdb_ck_box_t    *b;
    uint64_t             user;
    fa_str_t             name;

    if (key->mv_size < 9) {
        fa_lmdb_ck_find(ck, 1, "a mailbox name with a damaged key (%zu bytes)", key->mv_size);
        fa_lmdb_ck_drop(ck, FA_LMDB_NAMES, key);
        return;
    }
    user = fa_lmdb_get64(key->mv_data);
    if (val->mv_size < sizeof(rec)) {
        fa_lmdb_ck_find(ck, 1, "user id %" PRIu64 ": a damaged mailbox name record (%zu "
                        "bytes)", user, val->mv_size);
        fa_lmdb_ck_drop(ck, FA_LMDB_NAMES, key);
        return;
    }
    memcpy(&rec, val->mv_data, sizeof(rec));
    name.len = val->mv_size - sizeof(rec);
    name.data = (u_char *) val->mv_data + sizeof(rec);
    if (rec.flags & FA_LMDB_BOX_NOSELECT) {
        return;                            /* a parent only: no mailbox behind it */
    }
    if (rec.id == 0) {
        fa_lmdb_ck_find(ck, 0, "user id %" PRIu64 ": mailbox name \"%.*s\" has no mailbox id",
                        user, (int) name.len, name.data);
        return;
    }
    n = fa_lmdb_vec_push(ck, &ck->names, sizeof(*n));
    if (n == NULL || (n->name.data = malloc(name.len ? name.len : 1)) == NULL) {
        ck->rc = FA_LMDB_FAILED;
        return;
    }
    memcpy(n->name.data, name.data, name.len);
    n->name.len = name.len;
    n->user_id = user;
    b = fa_lmdb_ck_box(ck, rec.id, 1);
    if (b) {
        b->nnames++;
        b->name = b->name == FA_LMDB_CK_NONE ? ck->names.n - 1 : b->name;
    }
}

/* the strings after the record fit in the value */
static int
fa_lmdb_ck_tail_fits(const fa_lmdb_msg_rec_t *rec, size_t len)
{
    uint64_t  total = 0;

    for (int i = 0; i < 6; i++) {
        total += rec->lens[i];
    }
    return total <= len - sizeof(*rec);
}

static void
fa_lmdb_ck_msg_one(fa_lmdb_check_op_t *ck, MDB_val *key, MDB_val *val)
{
    fa_lmdb_msg_rec_t   rec;
    fa_lmdb_ck_msg_t   *m;
    fa_lmdb_ck_box_t   *b;
    fa_lmdb_ck_body_t  *body;

    if (key->mv_size != 12) {
        fa_lmdb_ck_find(ck, 1, "a message record with a damaged key (%zu bytes)", key->mv_size);
        fa_lmdb_ck_drop(ck, FA_LMDB_MESSAGES, key);
        return;
    }
    m = fa_lmdb_vec_push(ck, &ck->msgs, sizeof(*m));
    if (m == NULL) {
        return;
    }
    m->box = fa_lmdb_get64(key->mv_data);
    m->uid = fa_lmdb_get32((u_char *) key->mv_data + 8);
    m->len = (uint32_t) val->mv_size;
    m->damaged = val->mv_size < sizeof(rec);
    if (!m->damaged) {
        memcpy(&rec, val->mv_data, sizeof(rec));
        m->version = rec.version;
        m->flags = rec.flags;
        m->modseq = rec.modseq;
        m->size = rec.size;
        memcpy(m->body, rec.body_id, FA_LMDB_BODY_ID_LEN);
        m->foreign = rec.version != FA_LMDB_RECORD_V1;
        m->bad_tail = !m->foreign && !fa_lmdb_ck_tail_fits(&rec, val->mv_size);
    }
    b = fa_lmdb_ck_box(ck, m->box, 1);
    if (b) {
        b->nmsgs++;
        b->max_uid = fa_max(b->max_uid, m->uid);
    }
    /* a body is counted even for a record of another version: never freed under it */
    body = m->damaged ? NULL : fa_lmdb_ck_body(ck, m->body, 1);
    if (body) {
        body->sizes_differ |= body->nmsgs && body->msg_size != m->size;
        body->msg_size = m->size;
        body->nmsgs++;
    }
}

static void
fa_lmdb_ck_modseq_one(fa_lmdb_check_op_t *ck, MDB_val *key, MDB_val *val)
{
    char               label[FA_LMDB_CK_LABEL];
    fa_lmdb_ck_box_t  *b;
    fa_lmdb_ck_msg_t  *m;
    uint64_t           box, seq;
    uint32_t           uid;

    if (key->mv_size != 16 || val->mv_size != sizeof(uid)) {
        fa_lmdb_ck_find(ck, 1, "a damaged MODSEQ index entry (%zu, %zu bytes)", key->mv_size,
                        val->mv_size);
        fa_lmdb_ck_drop(ck, FA_LMDB_MODSEQ, key);
        return;
    }
    box = fa_lmdb_get64(key->mv_data);
    seq = fa_lmdb_get64((u_char *) key->mv_data + 8);
    memcpy(&uid, val->mv_data, sizeof(uid));
    b = fa_lmdb_ck_box(ck, box, 0);
    if (b && b->foreign) {
        return;
    }
    m = fa_lmdb_ck_msg(ck, box, uid);
    if (m && !m->damaged && m->modseq == seq) {
        m->indexed = 1;
        return;
    }
    if (b) {
        fa_lmdb_ck_label(ck, b, label, sizeof(label));
    } else {
        fa_snprintf(label, sizeof(label), "mailbox %" PRIu64, box);
    }
    if (m && !m->damaged) {
        fa_lmdb_ck_find(ck, 1, "%s: stale MODSEQ index entry %" PRIu64 " for UID %u, whose "
                        "MODSEQ is %" PRIu64, label, seq, uid, m->modseq);
    } else {
        fa_lmdb_ck_find(ck, 1, "%s: stale MODSEQ index entry %" PRIu64 " for UID %u, which "
                        "does not exist", label, seq, uid);
    }
    fa_lmdb_ck_drop(ck, FA_LMDB_MODSEQ, key);
}

/* tombstones and keyword tables of a mailbox of which nothing else is left */
static int
fa_lmdb_ck_leftover(fa_lmdb_check_op_t *ck, int db, MDB_val *key, const char *what)
{
    uint64_t           box = fa_lmdb_get64(key->mv_data);
    fa_lmdb_ck_box_t  *b = fa_lmdb_ck_box(ck, box, 0);

    if (fa_lmdb_ck_box_exists(b)) {
        return 0;
    }
    if (box != ck->leftover_box || db != ck->leftover_db) {
        fa_lmdb_ck_find(ck, 1, "%s of mailbox %" PRIu64 ", which does not exist", what, box);
        ck->leftover_box = box;
        ck->leftover_db = db;
    }
    fa_lmdb_ck_drop(ck, db, key);
    return 1;
}

static void
fa_lmdb_ck_expunged_one(fa_lmdb_check_op_t *ck, MDB_val *key, MDB_val *val)
{
    fa_lmdb_ck_box_t  *b;

    (void) val;
    if (key->mv_size != 16) {
        fa_lmdb_ck_find(ck, 1, "an expunge record with a damaged key (%zu bytes)", key->mv_size);
        fa_lmdb_ck_drop(ck, FA_LMDB_EXPUNGED, key);
        return;
    }
    if (fa_lmdb_ck_leftover(ck, FA_LMDB_EXPUNGED, key, "expunge records")) {
        return;
    }
    b = fa_lmdb_ck_box(ck, fa_lmdb_get64(key->mv_data), 0);
    b->max_tomb = fa_max(b->max_tomb, fa_lmdb_get64((u_char *) key->mv_data + 8));
}

static void
fa_lmdb_ck_keywords_one(fa_lmdb_check_op_t *ck, MDB_val *key, MDB_val *val)
{
    (void) val;
    if (key->mv_size != 8) {
        fa_lmdb_ck_find(ck, 1, "a keyword table with a damaged key (%zu bytes)", key->mv_size);
        fa_lmdb_ck_drop(ck, FA_LMDB_KEYWORDS, key);
        return;
    }
    fa_lmdb_ck_leftover(ck, FA_LMDB_KEYWORDS, key, "the keyword table");
}

static void
fa_lmdb_ck_ref_one(fa_lmdb_check_op_t *ck, MDB_val *key, MDB_val *val)
{
    fa_lmdb_ck_body_t  *b;

    if (key->mv_size != FA_LMDB_BODY_ID_LEN) {
        fa_lmdb_ck_find(ck, 1, "a body reference with a damaged key (%zu bytes)", key->mv_size);
        fa_lmdb_ck_drop(ck, FA_LMDB_REFS, key);
        return;
    }
    b = fa_lmdb_ck_body(ck, key->mv_data, 1);
    if (b) {
        b->has_ref = 1;
        b->ref_len = (uint32_t) val->mv_size;
        if (val->mv_size >= sizeof(b->ref)) {
            memcpy(&b->ref, val->mv_data, sizeof(b->ref));
        }
    }
}

static void
fa_lmdb_ck_inline_one(fa_lmdb_check_op_t *ck, MDB_val *key, MDB_val *val)
{
    fa_lmdb_ck_body_t  *b;

    if (key->mv_size != FA_LMDB_BODY_ID_LEN) {
        fa_lmdb_ck_find(ck, 1, "an inline body with a damaged key (%zu bytes)", key->mv_size);
        fa_lmdb_ck_drop(ck, FA_LMDB_BODIES, key);
        return;
    }
    b = fa_lmdb_ck_body(ck, key->mv_data, 1);
    if (b) {
        b->has_inline = 1;
        b->inline_size = val->mv_size;
    }
}

/* a blob file's name: the body id in lower-case hex, nothing else */
static int
fa_lmdb_ck_unhex(const char *name, u_char *id)
{
    static const char  hex[] = "0123456789abcdef";
    const char        *hi, *lo;

    if (strlen(name) != FA_LMDB_GUID_LEN) {
        return 0;
    }
    for (int i = 0; i < FA_LMDB_BODY_ID_LEN; i++) {
        hi = name[2 * i] ? strchr(hex, name[2 * i]) : NULL;
        lo = name[2 * i + 1] ? strchr(hex, name[2 * i + 1]) : NULL;
        if (hi == NULL || lo == NULL) {
            return 0;
        }
        id[i] = (u_char) ((hi - hex) << 4 | (lo - hex));
    }
    return 1;
}

/* blobs/, before the snapshot, holding the blob lock exclusive (see the top) */
static fa_int_t
fa_lmdb_ck_list(fa_lmdb_check_op_t *ck)
{
    fa_lmdb_t          *lm = ck->op.lm;
    DIR                *d = opendir(lm->blobs);
    struct dirent      *e;
    struct stat         sb;
    fa_lmdb_ck_file_t  *f;
    u_char              id[FA_LMDB_BODY_ID_LEN];

    if (d == NULL) {
        fa_log_error(FA_LOG_ERR, lm->log, errno, "lmdb storage: opendir(\"%s\") failed",
                     lm->blobs);
        return FA_ERROR;
    }
    while (ck->rc == FA_OK && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0
            || fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
        {
            continue;
        }
        if (strcmp(e->d_name, "tmp") == 0 && S_ISDIR(sb.st_mode)) {
            continue;                      /* appends in progress; cleaned at open */
        }
        if (!S_ISREG(sb.st_mode) || !fa_lmdb_ck_unhex(e->d_name, id)) {
            fa_lmdb_ck_find(ck, 0, "blobs/%s is not a body file", e->d_name);
            continue;
        }
        f = fa_lmdb_vec_push(ck, &ck->files, sizeof(*f));
        if (f) {
            memcpy(f->id, id, FA_LMDB_BODY_ID_LEN);
            f->size = (uint64_t) sb.st_size;
        }
    }
    closedir(d);
    return ck->rc == FA_OK ? FA_OK : FA_ERROR;
}

static void
fa_lmdb_ck_walk(fa_lmdb_check_op_t *ck)
{
    fa_lmdb_ck_file_t  *f;
    fa_lmdb_ck_body_t  *b;

    fa_lmdb_ck_each(ck, FA_LMDB_USERS, fa_lmdb_ck_user_one);
    fa_lmdb_ck_users_sort(ck);
    fa_lmdb_ck_each(ck, FA_LMDB_BOXES, fa_lmdb_ck_box_one);
    fa_lmdb_ck_each(ck, FA_LMDB_NAMES, fa_lmdb_ck_name_one);
    fa_lmdb_ck_each(ck, FA_LMDB_MESSAGES, fa_lmdb_ck_msg_one);
    fa_lmdb_ck_each(ck, FA_LMDB_MODSEQ, fa_lmdb_ck_modseq_one);
    fa_lmdb_ck_each(ck, FA_LMDB_EXPUNGED, fa_lmdb_ck_expunged_one);
    fa_lmdb_ck_each(ck, FA_LMDB_KEYWORDS, fa_lmdb_ck_keywords_one);
    fa_lmdb_ck_each(ck, FA_LMDB_REFS, fa_lmdb_ck_ref_one);
    fa_lmdb_ck_each(ck, FA_LMDB_BODIES, fa_lmdb_ck_inline_one);
    for (size_t i = 0; ck->rc == FA_OK && i < ck->files.n; i++) {
        f = &fa_lmdb_ck_files(ck)[i];
        b = fa_lmdb_ck_body(ck, f->id, 1);
        if (b) {
            b->has_file = 1;
            b->file_size = f->size;
        }
    }
}

/* ---- bodies: references, copies, files ---- */

static int
fa_lmdb_ck_body_cmp(const void *a, const void *b)
{
    return memcmp((*(fa_lmdb_ck_body_t *const *) a)->id, (*(fa_lmdb_ck_body_t *const *) b)->id,
                  FA_LMDB_BODY_ID_LEN);
}

/* a body no message uses: its reference, its inline copy, its file go */
static void
fa_lmdb_ck_body_unused(fa_lmdb_check_op_t *ck, fa_lmdb_ck_body_t *b, const char *hex)
{
    char    what[160];
    size_t  n = 0;

    what[0] = '\0';
    if (b->has_ref) {
        n += fa_snprintf(what + n, sizeof(what) - n, "a reference record");
    }
    if (b->has_inline) {
        n += fa_snprintf(what + n, sizeof(what) - n, "%san inline copy of %" PRIu64 " bytes",
                         n ? ", " : "", b->inline_size);
    }
    if (b->has_file) {
        fa_snprintf(what + n, sizeof(what) - n, "%sa file of %" PRIu64 " bytes",
                    n ? ", " : "", b->file_size);
    }
    fa_lmdb_ck_find(ck, 1, "body %s is used by no message (%s)", hex, what);
    if (b->has_ref) {
        fa_lmdb_ck_del(ck, FA_LMDB_REFS, b->id, FA_LMDB_BODY_ID_LEN);
    }
    if (b->has_inline) {
        fa_lmdb_ck_del(ck, FA_LMDB_BODIES, b->id, FA_LMDB_BODY_ID_LEN);
    }
    if (b->has_file && ck->repair && ck->rc == FA_OK) {
        fa_lmdb_ck_wrote(ck, fa_lmdb_op_unlink(&ck->op, b->id, 1));   /* after the commit */
    }
}

static const char *
fa_lmdb_ck_kind(uint32_t kind)
{
    return kind == FA_LMDB_BODY_INLINE ? "inline" : kind == FA_LMDB_BODY_BLOB ? "a file"
           : "of no known kind";
}

/* its reference record against what is there; 1 when it must be written again */
static int
fa_lmdb_ck_body_ref(fa_lmdb_check_op_t *ck, fa_lmdb_ck_body_t *b, const char *hex, int ref_ok)
{
    int  fix = 0;

    if (!b->has_ref) {
        fa_lmdb_ck_find(ck, 1, "body %s (%s, %" PRIu64 " bytes) has no reference record, %u "
                        "messages use it", hex, fa_lmdb_ck_kind(b->kind), b->actual, b->nmsgs);
        return 1;
    }
    if (!ref_ok) {
        fa_lmdb_ck_find(ck, 1, "body %s: damaged reference record (%u bytes)", hex, b->ref_len);
        return 1;
    }
    if (b->ref.kind != b->kind) {
        fa_lmdb_ck_find(ck, 1, "body %s: its reference record says %s, the body is %s", hex,
                        fa_lmdb_ck_kind(b->ref.kind), fa_lmdb_ck_kind(b->kind));
        fix = 1;
    }
    if (b->ref.refs != b->nmsgs) {
        fa_lmdb_ck_find(ck, 1, "body %s: reference count %u, but %u messages use it", hex,
                        b->ref.refs, b->nmsgs);
        fix = 1;
    }
    if (b->ref.size != b->actual) {
        fa_lmdb_ck_find(ck, 1, "body %s: its reference record says %" PRIu64 " bytes, the "
                        "body has %" PRIu64, hex, b->ref.size, b->actual);
        fix = 1;
    }
    return fix;
}

static void
fa_lmdb_ck_body_used(fa_lmdb_check_op_t *ck, fa_lmdb_ck_body_t *b, const char *hex)
{
    MDB_val            key = { FA_LMDB_BODY_ID_LEN, b->id }, val;
    fa_lmdb_ref_rec_t  ref;
    int                ref_ok, fix;

    ref_ok = b->has_ref && b->ref_len >= sizeof(b->ref)
             && (b->ref.kind == FA_LMDB_BODY_INLINE || b->ref.kind == FA_LMDB_BODY_BLOB);
    b->kind = ref_ok ? b->ref.kind : 0;
    if (!(b->kind == FA_LMDB_BODY_INLINE ? b->has_inline : b->has_file)) {
        b->kind = b->has_inline ? FA_LMDB_BODY_INLINE : b->has_file ? FA_LMDB_BODY_BLOB : 0;
    }
    if (b->kind == 0) {
        b->lost = 1;                       /* reported with each of its messages */
        if (b->has_ref) {
            fa_lmdb_ck_del(ck, FA_LMDB_REFS, b->id, FA_LMDB_BODY_ID_LEN);
        }
        return;
    }
    b->actual = b->kind == FA_LMDB_BODY_INLINE ? b->inline_size : b->file_size;
    b->damaged = b->actual != b->msg_size || b->sizes_differ;
    fix = fa_lmdb_ck_body_ref(ck, b, hex, ref_ok);
    if (b->kind == FA_LMDB_BODY_BLOB && b->has_inline) {
        fa_lmdb_ck_find(ck, 1, "body %s: an inline copy nobody reads (%" PRIu64 " bytes)", hex,
                        b->inline_size);
        fa_lmdb_ck_del(ck, FA_LMDB_BODIES, b->id, FA_LMDB_BODY_ID_LEN);
    }
    if (b->kind == FA_LMDB_BODY_INLINE && b->has_file) {
        fa_lmdb_ck_find(ck, 1, "body %s: a file nobody reads (blobs/%s)", hex, hex);
        if (ck->repair && ck->rc == FA_OK) {
            fa_lmdb_ck_wrote(ck, fa_lmdb_op_unlink(&ck->op, b->id, 1));
        }
    }
    if (fix && ck->repair && ck->rc == FA_OK) {
        ref.refs = b->nmsgs;
        ref.kind = b->kind;
        ref.size = b->actual;
        val.mv_size = sizeof(ref);
        val.mv_data = &ref;
        fa_lmdb_ck_wrote(ck, fa_lmdb_put(ck->op.lm, ck->txn, FA_LMDB_REFS, &key, &val));
    }
}

static void
fa_lmdb_ck_bodies(fa_lmdb_check_op_t *ck)
{
    fa_lmdb_ck_body_t  **all;
    char                 hex[FA_LMDB_GUID_LEN + 1];
    size_t               n = 0;

    if (ck->nbodies == 0) {
        return;
    }
    all = malloc(ck->nbodies * sizeof(*all));
    if (all == NULL) {
        ck->rc = FA_LMDB_FAILED;
        return;
    }
    for (size_t i = 0; i < ck->cap; i++) {
        if (ck->bodies[i].used) {
            all[n++] = &ck->bodies[i];
        }
    }
    qsort(all, n, sizeof(*all), fa_lmdb_ck_body_cmp);      /* reports in a stable order */
    for (size_t i = 0; i < n && ck->rc == FA_OK; i++) {
        fa_lmdb_hex(all[i]->id, FA_LMDB_BODY_ID_LEN, hex);
        if (all[i]->nmsgs == 0) {
            fa_lmdb_ck_body_unused(ck, all[i], hex);
        } else {
            fa_lmdb_ck_body_used(ck, all[i], hex);
        }
    }
    free(all);
}

/* ---- messages ---- */

static void
fa_lmdb_ck_count(fa_lmdb_count_t *c, const fa_lmdb_ck_msg_t *m)
{
    c->messages++;
    c->unseen += (m->flags & FA_FLAG_SEEN) ? 0 : 1;
    c->deleted += (m->flags & FA_FLAG_DELETED) ? 1 : 0;
    c->size += m->size;
}

/* the message record goes, with its MODSEQ entry; the tombstone comes with the mailbox */
static void
fa_lmdb_ck_msg_drop(fa_lmdb_check_op_t *ck, fa_lmdb_ck_msg_t *m)
{
    u_char  kbuf[16];

    m->drop = 1;
    fa_lmdb_key_uid(kbuf, m->box, m->uid);
    fa_lmdb_ck_del(ck, FA_LMDB_MESSAGES, kbuf, 12);
    if (m->indexed) {
        fa_lmdb_key_seq(kbuf, m->box, m->modseq);
        fa_lmdb_ck_del(ck, FA_LMDB_MODSEQ, kbuf, 16);
    }
}

static void
fa_lmdb_ck_lost(fa_lmdb_check_op_t *ck, fa_lmdb_ck_msg_t *m, const fa_lmdb_ck_body_t *b,
    const char *label)
{
    char  hex[FA_LMDB_GUID_LEN + 1];
    int   ref_ok = b && b->has_ref && b->ref_len >= sizeof(b->ref);

    fa_lmdb_hex(m->body, FA_LMDB_BODY_ID_LEN, hex);
    fa_lmdb_ck_find(ck, 1, "%s: UID %u: its body %s is missing (%s), the message is lost%s",
                    label, m->uid, hex,
                    !ref_ok ? "nothing of it is left"
                    : b->ref.kind == FA_LMDB_BODY_BLOB ? "no file in blobs/"
                    : "no inline copy", ck->repair ? "; its record is dropped" : "");
    fa_lmdb_ck_msg_drop(ck, m);
}

static void
fa_lmdb_ck_msg_check(fa_lmdb_check_op_t *ck, fa_lmdb_ck_box_t *bx, fa_lmdb_ck_msg_t *m)
{
    char                label[FA_LMDB_CK_LABEL], hex[FA_LMDB_GUID_LEN + 1];
    fa_lmdb_ck_body_t  *b;

    fa_lmdb_ck_label(ck, bx, label, sizeof(label));
    if (m->foreign) {
        fa_lmdb_ck_find(ck, 0, "%s: UID %u: a record of unknown version %u", label, m->uid,
                        m->version);
        bx->skip_counts = 1;
        return;
    }
    if (m->damaged) {
        fa_lmdb_ck_find(ck, 1, "%s: UID %u: damaged record (%u bytes), the message is lost%s",
                        label, m->uid, m->len, ck->repair ? "; its record is dropped" : "");
        fa_lmdb_ck_msg_drop(ck, m);
        return;
    }
    b = fa_lmdb_ck_body(ck, m->body, 0);
    bx->max_modseq = fa_max(bx->max_modseq, m->modseq);
    fa_lmdb_ck_count(&bx->seen, m);
    if (b == NULL || b->lost) {
        fa_lmdb_ck_lost(ck, m, b, label);
        return;
    }
    if (b->damaged) {
        fa_lmdb_hex(m->body, FA_LMDB_BODY_ID_LEN, hex);
        fa_lmdb_ck_find(ck, 0, "%s: UID %u: its body %s has %" PRIu64 " bytes, the message "
                        "says %" PRIu64 ": the content is damaged", label, m->uid, hex,
                        b->actual, m->size);
    }
    if (m->bad_tail) {
        fa_lmdb_ck_find(ck, 0, "%s: UID %u: its metadata does not fit its record", label,
                        m->uid);
    }
    if (!m->indexed) {
        fa_lmdb_ck_find(ck, 1, "%s: UID %u is missing from the MODSEQ index%s", label, m->uid,
                        ck->repair ? "; it gets a new MODSEQ" : "");
        m->renumber = 1;
    }
    fa_lmdb_ck_count(&bx->kept, m);
}

/* messages of mailboxes that exist only through them, or are of another version, are
   left alone (reported with the mailbox) */
static void
fa_lmdb_ck_messages(fa_lmdb_check_op_t *ck)
{
    fa_lmdb_ck_box_t  *bx = NULL;
    fa_lmdb_ck_msg_t  *m;

    for (size_t i = 0; i < ck->msgs.n && ck->rc == FA_OK; i++) {
        m = &fa_lmdb_ck_msgs(ck)[i];
        if (bx == NULL || bx->id != m->box) {
            bx = fa_lmdb_ck_box(ck, m->box, 0);
        }
        if (bx && !bx->foreign && (bx->has_rec || bx->nnames)) {
            fa_lmdb_ck_msg_check(ck, bx, m);
        }
    }
}

/* ---- mailboxes ---- */

static void
fa_lmdb_ck_counter(fa_lmdb_check_op_t *ck, const char *label, const char *what,
    uint64_t stored, uint64_t counted)
{
    if (stored != counted) {
        fa_lmdb_ck_find(ck, 1, "%s: counter %s is %" PRIu64 ", the messages say %" PRIu64,
                        label, what, stored, counted);
    }
}

/* a message missing from the MODSEQ index gets a new MODSEQ, and its entry */
static void
fa_lmdb_ck_renumber(fa_lmdb_check_op_t *ck, fa_lmdb_ck_msg_t *m, uint64_t seq)
{
    fa_lmdb_t  *lm = ck->op.lm;
    u_char      kbuf[12], sbuf[16], *copy;
    MDB_val     key = fa_lmdb_key_uid(kbuf, m->box, m->uid), skey, val;
    fa_int_t    rc;

    rc = fa_lmdb_get(lm, ck->txn, FA_LMDB_MESSAGES, &key, &val);
    copy = rc == FA_OK ? malloc(val.mv_size) : NULL;
    if (copy == NULL) {
        fa_lmdb_ck_wrote(ck, rc == FA_LMDB_RETRY ? rc : FA_LMDB_FAILED);
        return;
    }
    memcpy(copy, val.mv_data, val.mv_size);
    memcpy(copy + offsetof(fa_lmdb_msg_rec_t, modseq), &seq, sizeof(seq));
    val.mv_data = copy;
    rc = fa_lmdb_put(lm, ck->txn, FA_LMDB_MESSAGES, &key, &val);
    free(copy);
    if (rc == FA_OK) {
        skey = fa_lmdb_key_seq(sbuf, m->box, seq);
        val.mv_size = sizeof(m->uid);
        val.mv_data = &m->uid;
        rc = fa_lmdb_put(lm, ck->txn, FA_LMDB_MODSEQ, &skey, &val);
    }
    fa_lmdb_ck_wrote(ck, rc);
}

/*
 * Write the mailbox's record REC (already corrected): a tombstone for the
 * messages dropped, new MODSEQs for those missing from the index, then the
 * record if anything changed.
 */
static void
fa_lmdb_ck_box_write(fa_lmdb_check_op_t *ck, fa_lmdb_ck_box_t *b, fa_lmdb_box_rec_t *rec,
    int force)
{
    fa_lmdb_ck_msg_t  *m = ck->msgs.elts;
    size_t             first = fa_lmdb_ck_msg_at(ck, b->id, 0), n = 0;
    uint32_t          *uids;

    if (!ck->repair || ck->rc != FA_OK) {
        return;
    }
    uids = malloc((b->nmsgs ? b->nmsgs : 1) * sizeof(uint32_t));
    if (uids == NULL) {
        ck->rc = FA_LMDB_FAILED;
        return;
    }
    for (size_t i = first; i < ck->msgs.n && m[i].box == b->id; i++) {
        if (m[i].drop) {
            uids[n++] = m[i].uid;
        }
    }
    fa_lmdb_ck_wrote(ck, fa_lmdb_tombstone(ck->op.lm, ck->txn, b->id, rec, uids, n));
    free(uids);
    for (size_t i = first; i < ck->msgs.n && m[i].box == b->id && ck->rc == FA_OK; i++) {
        if (m[i].renumber) {
            fa_lmdb_ck_renumber(ck, &m[i], ++rec->highestmodseq);
        }
    }
    if (ck->rc == FA_OK && (force || memcmp(rec, &b->rec, sizeof(*rec)) != 0)) {
        fa_lmdb_ck_wrote(ck, fa_lmdb_box_put(ck->op.lm, ck->txn, b->id, rec));
        fa_lmdb_ck_changed(ck, b->id);
    }
}

/* counters, UIDNEXT and HIGHESTMODSEQ against the messages */
static void
fa_lmdb_ck_box_counters(fa_lmdb_check_op_t *ck, fa_lmdb_ck_box_t *b, const char *label,
    fa_lmdb_box_rec_t *rec)
{
    uint64_t  seq = fa_max(b->max_modseq, b->max_tomb);

    if (!b->skip_counts) {
        fa_lmdb_ck_counter(ck, label, "messages", rec->messages, b->seen.messages);
        fa_lmdb_ck_counter(ck, label, "unseen", rec->unseen, b->seen.unseen);
        fa_lmdb_ck_counter(ck, label, "deleted", rec->deleted, b->seen.deleted);
        fa_lmdb_ck_counter(ck, label, "size", rec->size, b->seen.size);
        rec->messages = (uint32_t) b->kept.messages;
        rec->unseen = (uint32_t) b->kept.unseen;
        rec->deleted = (uint32_t) b->kept.deleted;
        rec->size = b->kept.size;
    }
    if (b->nmsgs && rec->uidnext <= b->max_uid) {
        fa_lmdb_ck_find(ck, 1, "%s: UIDNEXT is %u, but UID %u exists", label, rec->uidnext,
                        b->max_uid);
        rec->uidnext = b->max_uid == UINT32_MAX ? UINT32_MAX : b->max_uid + 1;
    }
    if (rec->highestmodseq < seq) {
        fa_lmdb_ck_find(ck, 1, "%s: HIGHESTMODSEQ is %" PRIu64 ", but MODSEQ %" PRIu64
                        " is taken", label, rec->highestmodseq, seq);
        rec->highestmodseq = seq;
    }
}

/* a name whose mailbox record is gone or damaged: a new record, a new UIDVALIDITY */
static void
fa_lmdb_ck_box_recreate(fa_lmdb_check_op_t *ck, fa_lmdb_ck_box_t *b, fa_lmdb_ck_user_t *u,
    const char *label)
{
    fa_lmdb_box_rec_t  rec;
    uint32_t           now = (uint32_t) time(NULL);

    if (u == NULL) {
        fa_lmdb_ck_find(ck, 0, "%s: %s mailbox record, and its user does not exist", label,
                        b->rec_len ? "a damaged" : "no");
        return;
    }
    fa_lmdb_ck_find(ck, 1, "%s: %s mailbox record%s", label,
                    b->rec_len ? "a damaged" : "no",
                    ck->repair ? "; made again, with a new UIDVALIDITY" : "");
    memset(&rec, 0, sizeof(rec));
    rec.version = FA_LMDB_RECORD_V1;
    rec.uidvalidity = fa_max(now, fa_max(u->rec.last_uidvalidity, u->uidvalidity) + 1);
    rec.uidnext = b->max_uid == UINT32_MAX ? UINT32_MAX : b->max_uid + 1;
    rec.highestmodseq = fa_max(fa_max(b->max_modseq, b->max_tomb), 1);
    rec.user_id = u->rec.id;
    rec.messages = (uint32_t) b->kept.messages;
    rec.unseen = (uint32_t) b->kept.unseen;
    rec.deleted = (uint32_t) b->kept.deleted;
    rec.size = b->kept.size;
    u->uidvalidity = rec.uidvalidity;
    fa_lmdb_ck_box_write(ck, b, &rec, 1);
}

/* a record no name points to: named Recovered/ID, so that its mail can be read */
static void
fa_lmdb_ck_box_relink(fa_lmdb_check_op_t *ck, fa_lmdb_ck_box_t *b, fa_lmdb_ck_user_t *u,
    const char *label)
{
    fa_lmdb_t           *lm = ck->op.lm;
    char                 buf[48];
    fa_str_t             name, user;
    fa_lmdb_name_rec_t   n;
    fa_lmdb_user_rec_t   rec;
    fa_int_t             rc;

    if (u == NULL || !ck->repair) {
        fa_lmdb_ck_find(ck, u != NULL, "%s: no mailbox name points to it", label);
        return;
    }
    name.len = fa_snprintf(buf, sizeof(buf), "Recovered/%" PRIu64, b->id);
    name.data = (u_char *) buf;
    user.len = strlen(u->name);
    user.data = (u_char *) u->name;
    rc = fa_lmdb_name_get(lm, ck->txn, u->rec.id, &name, &n);
    if (rc != FA_STORAGE_NOTFOUND) {
        if (rc == FA_OK || rc == FA_STORAGE_INVALID || rc == FA_STORAGE_CORRUPT) {
            fa_lmdb_ck_find(ck, 0, "%s: no mailbox name points to it, and \"%s\" is taken",
                            label, buf);
        } else {
            fa_lmdb_ck_wrote(ck, rc);
        }
        return;
    }
    fa_lmdb_ck_find(ck, 1, "%s: no mailbox name points to it; named \"%s\"", label, buf);
    rc = fa_lmdb_user_get(lm, ck->txn, &user, &rec);
    if (rc == FA_OK) {
        rc = fa_lmdb_parents_create(lm, ck->txn, &user, &rec, &name);
    }
    if (rc == FA_OK) {
        memset(&n, 0, sizeof(n));
        n.id = b->id;
        rc = fa_lmdb_name_put(lm, ck->txn, u->rec.id, &name, &n);
    }
    fa_lmdb_ck_wrote(ck, rc);
}

static void
fa_lmdb_ck_box_check(fa_lmdb_check_op_t *ck, fa_lmdb_ck_box_t *b)
{
    char                 label[FA_LMDB_CK_LABEL];
    fa_lmdb_ck_name_t   *n = b->name != FA_LMDB_CK_NONE ? &fa_lmdb_ck_names(ck)[b->name]
                                                        : NULL;
    fa_lmdb_ck_user_t   *u;
    fa_lmdb_box_rec_t    rec;
    u_char               kbuf[8];

    fa_lmdb_ck_label(ck, b, label, sizeof(label));
    if (b->foreign) {
        fa_lmdb_ck_find(ck, 0, "%s: a record of unknown version %u", label, b->rec.version);
        u = fa_lmdb_ck_user(ck, b->rec.user_id);
        if (u) {
            u->foreign = 1;
        }
        return;
    }
    if (!b->has_rec && n == NULL) {
        if (b->rec_len) {
            fa_lmdb_ck_find(ck, 1, "%s: a damaged record (%zu bytes) no name points to", label,
                            b->rec_len);
            fa_lmdb_key_id(kbuf, b->id);
            fa_lmdb_ck_del(ck, FA_LMDB_BOXES, kbuf, 8);
        }
        if (b->nmsgs) {
            fa_lmdb_ck_find(ck, 0, "%s does not exist, but %u message records are filed "
                            "under it", label, b->nmsgs);
        }
        return;
    }
    u = fa_lmdb_ck_user(ck, b->has_rec ? b->rec.user_id : n->user_id);
    if (!b->has_rec) {
        fa_lmdb_ck_box_recreate(ck, b, u, label);
    } else {
        if (u == NULL) {
            fa_lmdb_ck_find(ck, 0, "%s: its user (id %" PRIu64 ") does not exist", label,
                            b->rec.user_id);
        }
        if (n == NULL) {
            fa_lmdb_ck_box_relink(ck, b, u, label);
        } else if (b->nnames > 1) {
            fa_lmdb_ck_find(ck, 0, "%s: %u mailbox names point to it", label, b->nnames);
        }
        if (n && n->user_id != b->rec.user_id) {
            fa_lmdb_ck_find(ck, 0, "%s: named by user id %" PRIu64 ", but it belongs to user "
                            "id %" PRIu64, label, n->user_id, b->rec.user_id);
        }
        rec = b->rec;
        fa_lmdb_ck_box_counters(ck, b, label, &rec);
        fa_lmdb_ck_box_write(ck, b, &rec, 0);
    }
    if (u && b->skip_counts) {
        u->foreign = 1;
    } else if (u) {
        u->seen.messages += b->seen.messages;
        u->seen.size += b->seen.size;
        u->kept.messages += b->kept.messages;
        u->kept.size += b->kept.size;
    }
}

static void
fa_lmdb_ck_mailboxes(fa_lmdb_check_op_t *ck)
{
    fa_lmdb_ck_box_t   *b = ck->boxes.elts;
    fa_lmdb_ck_user_t  *u;

    /* a mailbox made again must get a UIDVALIDITY above all of its user's */
    for (size_t i = 0; i < ck->boxes.n; i++) {
        if (b[i].has_rec && (u = fa_lmdb_ck_user(ck, b[i].rec.user_id)) != NULL) {
            u->uidv_seen = fa_max(u->uidv_seen, b[i].rec.uidvalidity);
            u->uidvalidity = u->uidv_seen;
        }
    }
    for (size_t i = 0; i < ck->boxes.n && ck->rc == FA_OK; i++) {
        fa_lmdb_ck_box_check(ck, &b[i]);
    }
}

/* ---- users and the id counters ---- */

static void
fa_lmdb_ck_user_check(fa_lmdb_check_op_t *ck, fa_lmdb_ck_user_t *u)
{
    fa_str_t            name = { strlen(u->name), (u_char *) u->name };
    fa_lmdb_user_rec_t  rec;
    fa_int_t            rc;

    if (!u->foreign) {
        if (u->rec.messages_used != u->seen.messages) {
            fa_lmdb_ck_find(ck, 1, "user \"%s\": quota usage messages is %" PRIu64 ", the "
                            "messages say %" PRIu64, u->name, u->rec.messages_used,
                            u->seen.messages);
        }
        if (u->rec.bytes_used != u->seen.size) {
            fa_lmdb_ck_find(ck, 1, "user \"%s\": quota usage bytes is %" PRIu64 ", the "
                            "messages say %" PRIu64, u->name, u->rec.bytes_used, u->seen.size);
        }
    }
    if (u->rec.last_uidvalidity < u->uidv_seen) {
        fa_lmdb_ck_find(ck, 1, "user \"%s\": last UIDVALIDITY %u, but a mailbox has %u",
                        u->name, u->rec.last_uidvalidity, u->uidv_seen);
    }
    if (!ck->repair || ck->rc != FA_OK) {
        return;
    }
    /* read again: naming a recovered mailbox may have made a parent */
    rc = fa_lmdb_user_get(ck->op.lm, ck->txn, &name, &rec);
    if (rc != FA_OK) {
        fa_lmdb_ck_wrote(ck, rc);
        return;
    }
    u->rec = rec;
    if (!u->foreign) {
        rec.messages_used = u->kept.messages;
        rec.bytes_used = u->kept.size;
    }
    rec.last_uidvalidity = fa_max(rec.last_uidvalidity, u->uidvalidity);
    if (memcmp(&rec, &u->rec, sizeof(rec)) != 0) {
        fa_lmdb_ck_wrote(ck, fa_lmdb_user_put(ck->op.lm, ck->txn, &name, &rec));
    }
}

static void
fa_lmdb_ck_all_users(fa_lmdb_check_op_t *ck)
{
    for (size_t i = 0; i < ck->users.n && ck->rc == FA_OK; i++) {
        fa_lmdb_ck_user_check(ck, &fa_lmdb_ck_users(ck)[i]);
    }
}

/* "next_user" and "next_box" hold the last id given: never below one in use */
static void
fa_lmdb_ck_meta(fa_lmdb_check_op_t *ck, const char *name, uint64_t max, const char *what)
{
    MDB_val   key = { strlen(name), (void *) name }, val;
    uint64_t  v = 0;
    fa_int_t  rc = fa_lmdb_get(ck->op.lm, ck->txn, FA_LMDB_META, &key, &val);
    int       damaged = rc == FA_OK && val.mv_size != sizeof(v);

    if (rc != FA_OK && rc != FA_STORAGE_NOTFOUND) {
        fa_lmdb_ck_wrote(ck, rc);
        return;
    }
    if (rc == FA_OK && !damaged) {
        memcpy(&v, val.mv_data, sizeof(v));
    }
    if (damaged) {
        fa_lmdb_ck_find(ck, 1, "counter %s: damaged (%zu bytes)", name, val.mv_size);
    } else if (v < max) {
        fa_lmdb_ck_find(ck, 1, "counter %s is %" PRIu64 ", but %s %" PRIu64 " exists", name, v,
                        what, max);
    }
    if ((damaged || v < max) && ck->repair && ck->rc == FA_OK) {
        v = fa_max(v, max);
        val.mv_size = sizeof(v);
        val.mv_data = &v;
        fa_lmdb_ck_wrote(ck, fa_lmdb_put(ck->op.lm, ck->txn, FA_LMDB_META, &key, &val));
    }
}

/* ---- the check ---- */

static void
fa_lmdb_ck_drops(fa_lmdb_check_op_t *ck)
{
    for (fa_lmdb_drop_t *d = ck->drops; d && ck->rc == FA_OK; d = d->next) {
        fa_lmdb_ck_del(ck, d->db, d->key, d->len);
    }
}

/*
 * After the walk, every cursor closed: the stale and damaged keys go first
 * (a new MODSEQ entry may take a stale one's key), the id counters are
 * raised before a repair makes a mailbox, then bodies, messages, mailboxes
 * and users, each using what the one before decided.
 */
static void
fa_lmdb_ck_run(fa_lmdb_check_op_t *ck)
{
    fa_lmdb_ck_walk(ck);
    if (ck->rc == FA_OK) {
        fa_lmdb_ck_drops(ck);
        fa_lmdb_ck_meta(ck, "next_user", ck->max_user, "user id");
        fa_lmdb_ck_meta(ck, "next_box", ck->max_box, "mailbox id");
    }
    if (ck->rc == FA_OK) {
        fa_lmdb_ck_bodies(ck);
    }
    if (ck->rc == FA_OK) {
        fa_lmdb_ck_messages(ck);
    }
    if (ck->rc == FA_OK) {
        fa_lmdb_ck_mailboxes(ck);
    }
    if (ck->rc == FA_OK) {
        fa_lmdb_ck_all_users(ck);
    }
    fa_lmdb_ck_find(ck, -1, "checked %zu users, %zu mailboxes, %zu messages, %zu bodies "
                    "(%zu files)", ck->users.n, ck->boxes.n, ck->msgs.n, ck->nbodies,
                    ck->files.n);
}

static void
fa_lmdb_ck_reset(fa_lmdb_op_t *op)
{
    fa_lmdb_check_op_t  *ck = (fa_lmdb_check_op_t *) op;
    fa_lmdb_found_t     *f, *fnext;
    fa_lmdb_drop_t      *d, *dnext;

    for (size_t i = 0; i < ck->users.n; i++) {
        free(fa_lmdb_ck_users(ck)[i].name);
    }
    for (size_t i = 0; i < ck->names.n; i++) {
        free(fa_lmdb_ck_names(ck)[i].name.data);
    }
    free(ck->users.elts);
    free(ck->names.elts);
    free(ck->boxes.elts);
    free(ck->msgs.elts);
    free(ck->files.elts);
    free(ck->changed.elts);
    free(ck->bodies);
    for (f = ck->found; f; f = fnext) {
        fnext = f->next;
        free(f);
    }
    for (d = ck->drops; d; d = dnext) {
        dnext = d->next;
        free(d);
    }
    memset(&ck->txn, 0, sizeof(*ck) - offsetof(fa_lmdb_check_op_t, txn));
    ck->last = &ck->found;
}

/* writer thread: the repair, in the batch's transaction, holding the blob lock */
static fa_int_t
fa_lmdb_ck_apply(fa_lmdb_op_t *op, MDB_txn *txn)
{
    fa_lmdb_check_op_t  *ck = (fa_lmdb_check_op_t *) op;

    fa_lmdb_ck_reset(op);                   /* a replay starts afresh */
    ck->txn = txn;
    if (fa_lmdb_ck_list(ck) != FA_OK) {
        return FA_LMDB_FAILED;
    }
    fa_lmdb_ck_run(ck);
    return ck->rc;
}

/* loop: every finding, then the status; a failed repair changed nothing */
static void
fa_lmdb_ck_deliver(fa_lmdb_op_t *op)
{
    fa_lmdb_check_op_t  *ck = (fa_lmdb_check_op_t *) op;
    fa_uint_t            level;

    for (fa_lmdb_found_t *f = ck->found; f; f = f->next) {
        level = op->rc == FA_OK || f->level == FA_CHECK_INFO ? f->level : FA_CHECK_PROBLEM;
        ck->report(ck->data, level, f->text);
    }
    if (op->rc == FA_OK && ck->changed.n) {
        fa_lmdb_notify_bump(op->lm, ck->changed.elts, (fa_uint_t) ck->changed.n);
    }
    ck->cb(ck->data, op->rc);
}

/*
 * Without repair: one read transaction, now, in the loop.  The blob lock
 * is held (on a descriptor of our own: the writer thread's would share
 * one lock with it) from before the listing until the snapshot is taken.
 */
static fa_int_t
fa_lmdb_ck_read(fa_lmdb_check_op_t *ck)
{
    fa_lmdb_t  *lm = ck->op.lm;
    fa_int_t    rc = FA_ERROR;
    int         fd = open(lm->blobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd == -1 || fa_lmdb_blobs_lock(fd, LOCK_EX) != FA_OK) {
        fa_log_error(FA_LOG_ERR, lm->log, errno, "lmdb storage: locking \"%s\" failed",
                     lm->blobs);
        if (fd != -1) {
            close(fd);
        }
        return FA_ERROR;
    }
    ck->last = &ck->found;
    if (fa_lmdb_ck_list(ck) == FA_OK) {
        rc = fa_lmdb_read_begin(lm, &ck->txn);
    }
    close(fd);                              /* releases the lock */
    if (rc != FA_OK) {
        return FA_ERROR;
    }
    fa_lmdb_ck_run(ck);
    fa_lmdb_read_end(lm);
    ck->txn = NULL;
    return ck->rc == FA_OK ? FA_OK : FA_ERROR;
}

fa_int_t
fa_lmdb_check(fa_storage_t *st, fa_uint_t flags, fa_storage_report_pt report,
    fa_storage_done_pt cb, void *data)
{
    fa_lmdb_check_op_t  *ck;

    if (report == NULL || cb == NULL) {
        return FA_STORAGE_INVALID;
    }
    ck = (fa_lmdb_check_op_t *) fa_lmdb_op_alloc(st->data, sizeof(*ck));
    if (ck == NULL) {
        return FA_ERROR;
    }
    ck->report = report;
    ck->cb = cb;
    ck->data = data;
    ck->repair = (flags & FA_CHECK_REPAIR) ? 1 : 0;
    ck->last = &ck->found;
    ck->op.reset = fa_lmdb_ck_reset;
    ck->op.deliver = fa_lmdb_ck_deliver;
    if (ck->repair) {
        ck->op.apply = fa_lmdb_ck_apply;
        ck->op.sweeps = 1;
        return fa_lmdb_op_submit(&ck->op);
    }
    if (fa_lmdb_ck_read(ck) != FA_OK) {
        fa_lmdb_op_free(&ck->op);
        return FA_ERROR;
    }
    return fa_lmdb_op_post(&ck->op);
}
