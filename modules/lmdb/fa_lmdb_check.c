/*
 * facteurctl check: verify the whole store and, with FA_CHECK_REPAIR, make
 * it consistent again (docs/storage.md, "Checking the store").
 *
 * The walk reads every database into memory (users, mailbox names and
 * records, messages, the MODSEQ index, tombstones, keyword tables, body
 * references, inline bodies) and lists blobs/; then it compares what each
 * record says with what the messages say, body by body, message by
 * message, mailbox by mailbox and user by user, and reports each
 * disagreement as one line.  This file holds the op, the findings, the walk
 * and the run; the comparing and repairing is in fa_lmdb_check_fix.c, and
 * what the two share is in fa_lmdb_check.h.
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

#include "fa_lmdb_check.h"
#include <dirent.h>
#include <sys/file.h>

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
void
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
void
fa_lmdb_ck_wrote(fa_lmdb_check_op_t *ck, fa_int_t rc)
{
    if (rc != FA_OK && ck->rc == FA_OK) {
        ck->rc = rc == FA_LMDB_RETRY ? FA_LMDB_RETRY : FA_LMDB_FAILED;
    }
}

void
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

void
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

fa_lmdb_ck_user_t *
fa_lmdb_ck_user(fa_lmdb_check_op_t *ck, uint64_t id)
{
    fa_lmdb_ck_user_t  key;

    key.rec.id = id;
    return ck->users.n ? bsearch(&key, ck->users.elts, ck->users.n, sizeof(key),
                                 fa_lmdb_ck_user_cmp) : NULL;
}

/* the mailbox ID; with ADD, made (with no record) when missing */
fa_lmdb_ck_box_t *
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
size_t
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
fa_lmdb_ck_body_t *
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
const char *
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

/* ---- the check ---- */

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
