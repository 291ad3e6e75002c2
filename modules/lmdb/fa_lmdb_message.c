/*
 * A selected mailbox: opening it, metadata, bodies, and what changed since
 * a MODSEQ.  All are reads in the loop's read transaction; the results go
 * into the caller's pool and the callback runs from a posted event.
 *
 * A handle holds the mailbox's id, not its name: it survives a rename, and
 * once the mailbox is deleted every call on it answers NOTFOUND (a mailbox
 * created again under the same name is another mailbox).
 */

#include "fa_lmdb.h"

typedef struct {
    fa_lmdb_op_t           op;
    fa_mailbox_t          *box;
    fa_str_t               user;
    fa_str_t               name;
    fa_pool_t             *pool;
    fa_lmdb_fn_pt          cb;
    void                  *data;
    fa_mailbox_status_t    status;
    fa_array_t             msgs;          /* fa_message_meta_t, in pool */
    fa_mailbox_changes_t   changes;
} fa_lmdb_box_op_t;

static fa_lmdb_box_op_t *
fa_lmdb_box_op(fa_lmdb_t *lm, size_t extra, fa_pool_t *pool, fa_lmdb_fn_pt cb, void *data)
{
    fa_lmdb_box_op_t  *b = (fa_lmdb_box_op_t *) fa_lmdb_op_alloc(lm, sizeof(*b) + extra);

    if (b) {
        b->pool = pool;
        b->cb = cb;
        b->data = data;
    }
    return b;
}

/* ---- open ---- */

static fa_int_t
fa_lmdb_open_run(fa_lmdb_op_t *op)
{
    fa_lmdb_box_op_t   *b = (fa_lmdb_box_op_t *) op;
    fa_lmdb_box_rec_t   rec;
    fa_mailbox_t       *box;
    uint64_t            user_id, id;
    MDB_txn            *txn;
    fa_int_t            rc;

    if (fa_lmdb_read_begin(op->lm, &txn) != FA_OK) {
        return FA_ERROR;
    }
    rc = fa_lmdb_box_lookup(op->lm, txn, &b->user, &b->name, &user_id, &id, &rec);
    if (rc == FA_OK) {
        rc = fa_lmdb_status_fill(op->lm, txn, id, &rec, b->pool, &b->status);
    }
    fa_lmdb_read_end(op->lm);
    if (rc != FA_OK) {
        return rc;
    }
    box = fa_pcalloc(b->pool, sizeof(fa_mailbox_t));
    if (box == NULL) {
        return FA_ERROR;
    }
    box->lm = op->lm;
    box->user_id = user_id;
    box->id = id;
    box->uidvalidity = rec.uidvalidity;
    box->user.len = b->user.len;
    box->user.data = fa_pstrdup(b->pool, &b->user);
    box->name.len = b->name.len;
    box->name.data = fa_pstrdup(b->pool, &b->name);
    b->box = box;
    return box->user.data && box->name.data ? FA_OK : FA_ERROR;
}

static void
fa_lmdb_open_deliver(fa_lmdb_op_t *op)
{
    fa_lmdb_box_op_t  *b = (fa_lmdb_box_op_t *) op;

    ((fa_storage_open_pt) b->cb)(b->data, op->rc, op->rc == FA_OK ? b->box : NULL,
                                 op->rc == FA_OK ? &b->status : NULL);
}

fa_int_t
fa_lmdb_mailbox_open(fa_storage_t *st, const fa_str_t *user, const fa_str_t *name,
    fa_pool_t *pool, fa_storage_open_pt cb, void *data)
{
    fa_lmdb_box_op_t  *b;
    u_char            *p;

    if (user->len == 0 || user->len > FA_LMDB_USER_MAX || memchr(user->data, 0, user->len)
        || fa_storage_mailbox_name_valid(name) != FA_OK)
    {
        return FA_STORAGE_INVALID;
    }
    b = fa_lmdb_box_op(st->data, user->len + name->len, pool, (fa_lmdb_fn_pt) cb, data);
    if (b == NULL) {
        return FA_ERROR;
    }
    p = (u_char *) (b + 1);
    b->user.data = memcpy(p, user->data, user->len);
    b->user.len = user->len;
    fa_lmdb_name_norm(name, p + user->len, &b->name);
    b->op.run = fa_lmdb_open_run;
    b->op.deliver = fa_lmdb_open_deliver;
    return fa_lmdb_read_start(&b->op, &b->user);
}

void
fa_lmdb_mailbox_close(fa_mailbox_t *box)
{
    (void) box;                            /* everything is in the caller's pool */
}

/* ---- metadata ---- */

typedef struct {
    fa_array_t  *msgs;
    fa_pool_t   *pool;
    int          strings;
} fa_lmdb_meta_ctx_t;

static fa_int_t
fa_lmdb_meta_one(void *data, uint32_t uid, MDB_val *val)
{
    fa_lmdb_meta_ctx_t  *ctx = data;
    fa_message_meta_t   *m = fa_array_push(ctx->msgs);

    if (m == NULL) {
        return FA_ERROR;
    }
    return fa_lmdb_msg_meta(val, uid, ctx->pool, m, ctx->strings);
}

static void
fa_lmdb_meta_deliver(fa_lmdb_op_t *op)
{
    fa_lmdb_box_op_t  *b = (fa_lmdb_box_op_t *) op;

    ((fa_storage_meta_pt) b->cb)(b->data, op->rc, op->rc == FA_OK ? b->msgs.elts : NULL,
                                 op->rc == FA_OK ? b->msgs.nelts : 0);
}

fa_int_t
fa_lmdb_fetch_meta(fa_mailbox_t *box, const fa_uid_set_t *uids, fa_pool_t *pool,
    fa_storage_meta_pt cb, void *data)
{
    fa_lmdb_t           *lm = box->lm;
    fa_lmdb_box_op_t    *b;
    fa_lmdb_box_rec_t    rec;
    fa_lmdb_meta_ctx_t   ctx;
    MDB_txn             *txn;
    fa_int_t             rc;

    b = fa_lmdb_box_op(lm, 0, pool, (fa_lmdb_fn_pt) cb, data);
    if (b == NULL) {
        return FA_ERROR;
    }
    b->op.deliver = fa_lmdb_meta_deliver;
    if (fa_array_init(&b->msgs, pool, 16, sizeof(fa_message_meta_t)) != FA_OK
        || fa_lmdb_read_begin(lm, &txn) != FA_OK)
    {
        fa_lmdb_op_free(&b->op);
        return FA_ERROR;
    }
    ctx.msgs = &b->msgs;
    ctx.pool = pool;
    ctx.strings = 1;
    rc = fa_lmdb_box_get(lm, txn, box->id, &rec);
    if (rc == FA_OK) {
        rc = fa_lmdb_msg_each(lm, txn, box->id, uids, fa_lmdb_meta_one, &ctx);
    }
    fa_lmdb_read_end(lm);
    if (rc != FA_OK) {
        fa_lmdb_op_free(&b->op);
        return rc == FA_LMDB_FAILED ? FA_ERROR : rc;
    }
    return fa_lmdb_op_post(&b->op);
}

/* ---- bodies ---- */

static fa_int_t
fa_lmdb_body_open(fa_lmdb_t *lm, MDB_txn *txn, const u_char *id, fa_msg_stream_t *m)
{
    fa_lmdb_ref_rec_t   ref;
    MDB_val             key = { FA_LMDB_BODY_ID_LEN, (void *) id }, val;
    char                path[PATH_MAX];
    fa_int_t            rc;

    rc = fa_lmdb_get(lm, txn, FA_LMDB_REFS, &key, &val);
    if (rc != FA_OK || val.mv_size < sizeof(ref)) {
        return rc == FA_LMDB_FAILED ? FA_ERROR : FA_STORAGE_CORRUPT;
    }
    memcpy(&ref, val.mv_data, sizeof(ref));
    if (ref.kind == FA_LMDB_BODY_BLOB) {
        fa_lmdb_blob_path(lm, id, path, sizeof(path));
        m->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (m->fd == -1) {
            fa_log_error(FA_LOG_CRIT, lm->log, errno, "lmdb storage: open(\"%s\") failed",
                         path);
            return errno == ENOENT ? FA_STORAGE_CORRUPT : FA_ERROR;
        }
        return FA_OK;
    }
    rc = fa_lmdb_get(lm, txn, FA_LMDB_BODIES, &key, &val);
    if (rc != FA_OK || val.mv_size != m->size) {
        return rc == FA_LMDB_FAILED ? FA_ERROR : FA_STORAGE_CORRUPT;
    }
    /* copied: the stream outlives the read transaction */
    m->data = fa_alloc(val.mv_size ? val.mv_size : 1, lm->log);
    if (m->data == NULL) {
        return FA_ERROR;
    }
    memcpy(m->data, val.mv_data, val.mv_size);
    return FA_OK;
}

fa_int_t
fa_lmdb_message_open(fa_mailbox_t *box, uint32_t uid, fa_msg_stream_t **out)
{
    fa_lmdb_t          *lm = box->lm;
    fa_lmdb_msg_rec_t   rec;
    fa_msg_stream_t    *m;
    u_char              kbuf[12];
    MDB_val             key = fa_lmdb_key_uid(kbuf, box->id, uid), val;
    MDB_txn            *txn;
    fa_int_t            rc;

    m = fa_calloc(sizeof(fa_msg_stream_t), lm->log);
    if (m == NULL) {
        return FA_ERROR;
    }
    m->fd = -1;
    if (fa_lmdb_read_begin(lm, &txn) != FA_OK) {
        free(m);
        return FA_ERROR;
    }
    rc = fa_lmdb_get(lm, txn, FA_LMDB_MESSAGES, &key, &val);
    if (rc == FA_OK) {
        fa_lmdb_msg_decode(&val, &rec);
        m->size = rec.size;
        rc = fa_lmdb_body_open(lm, txn, rec.body_id, m);
    }
    fa_lmdb_read_end(lm);
    if (rc != FA_OK) {
        fa_lmdb_message_close(m);
        return rc == FA_LMDB_FAILED ? FA_ERROR : rc;
    }
    *out = m;
    return FA_OK;
}

/* a local file or memory: never FA_AGAIN, so cb is never called */
ssize_t
fa_lmdb_message_read(fa_msg_stream_t *m, uint64_t offset, u_char *buf, size_t len,
    fa_storage_done_pt cb, void *data)
{
    size_t   n;
    ssize_t  r;

    (void) cb;
    (void) data;
    if (offset >= m->size) {
        return 0;
    }
    n = (size_t) fa_min((uint64_t) len, m->size - offset);
    if (m->data) {
        memcpy(buf, m->data + offset, n);
        return (ssize_t) n;
    }
    do {
        r = pread(m->fd, buf, n, (off_t) offset);
    } while (r == -1 && errno == EINTR);
    return r >= 0 ? r : FA_ERROR;
}

fa_int_t
fa_lmdb_message_fd(fa_msg_stream_t *m, int *fd, uint64_t *offset)
{
    if (m->fd == -1) {
        return FA_DECLINED;
    }
    *fd = m->fd;
    *offset = 0;
    return FA_OK;
}

void
fa_lmdb_message_close(fa_msg_stream_t *m)
{
    if (m->fd != -1) {
        close(m->fd);
    }
    free(m->data);
    free(m);
}

/* ---- changes since a MODSEQ ---- */

static fa_int_t
fa_lmdb_uids_push(fa_array_t *a, const u_char *p, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i += 4) {
        uint32_t *u = fa_array_push(a);
        if (u == NULL) {
            return FA_ERROR;
        }
        memcpy(u, p + i, 4);
    }
    return FA_OK;
}

/* every value of DB (MODSEQ or EXPUNGED) after (box, modseq): UIDs */
static fa_int_t
fa_lmdb_seq_scan(fa_lmdb_t *lm, MDB_txn *txn, int db, uint64_t box, uint64_t modseq,
    fa_array_t *uids)
{
    MDB_cursor  *c;
    MDB_val      key, val;
    u_char       kbuf[16];
    fa_int_t     r = FA_OK;
    int          rc;

    rc = mdb_cursor_open(txn, lm->dbi[db], &c);
    if (rc != 0) {
        return fa_lmdb_error(lm, rc, "mdb_cursor_open()");
    }
    key = fa_lmdb_key_seq(kbuf, box, modseq + 1);
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && r == FA_OK) {
        if (key.mv_size != 16 || fa_lmdb_get64(key.mv_data) != box) {
            break;
        }
        r = fa_lmdb_uids_push(uids, val.mv_data, val.mv_size);
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        return fa_lmdb_error(lm, rc, "mdb_cursor_get()");
    }
    return r;
}

static int
fa_lmdb_uid_cmp(const void *a, const void *b)
{
    uint32_t  x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return (x > y) - (x < y);
}

static fa_uint_t
fa_lmdb_uids_sort(uint32_t *u, fa_uint_t n)
{
    fa_uint_t  out = 0;

    qsort(u, n, sizeof(uint32_t), fa_lmdb_uid_cmp);
    for (fa_uint_t i = 0; i < n; i++) {
        if (out == 0 || u[out - 1] != u[i]) {
            u[out++] = u[i];
        }
    }
    return out;
}

static fa_int_t
fa_lmdb_changed_meta(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, fa_array_t *uids,
    fa_pool_t *pool, fa_mailbox_changes_t *ch)
{
    fa_uint_t   n = fa_lmdb_uids_sort(uids->elts, uids->nelts);
    uint32_t   *u = uids->elts;
    u_char      kbuf[12];
    MDB_val     key, val;
    fa_int_t    rc;

    ch->changed = fa_palloc(pool, (n ? n : 1) * sizeof(fa_message_meta_t));
    if (ch->changed == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < n; i++) {
        key = fa_lmdb_key_uid(kbuf, box, u[i]);
        rc = fa_lmdb_get(lm, txn, FA_LMDB_MESSAGES, &key, &val);
        if (rc == FA_STORAGE_NOTFOUND) {
            continue;
        }
        if (rc != FA_OK) {
            return FA_ERROR;
        }
        fa_lmdb_msg_meta(&val, u[i], pool, &ch->changed[ch->nchanged++], 0);
    }
    return FA_OK;
}

static fa_int_t
fa_lmdb_changes_read(fa_lmdb_t *lm, MDB_txn *txn, fa_mailbox_t *box, uint64_t modseq,
    fa_pool_t *pool, fa_mailbox_changes_t *ch)
{
    fa_lmdb_box_rec_t   rec;
    fa_lmdb_keywords_t  kw;
    fa_array_t          changed, expunged;
    fa_int_t            rc;

    rc = fa_lmdb_box_get(lm, txn, box->id, &rec);
    if (rc != FA_OK) {
        return rc == FA_LMDB_FAILED ? FA_ERROR : rc;
    }
    ch->highestmodseq = rec.highestmodseq;
    ch->too_old = modseq < rec.expunge_floor;
    if (modseq >= rec.highestmodseq) {
        return FA_OK;                      /* nothing since */
    }
    if (fa_array_init(&changed, pool, 16, sizeof(uint32_t)) != FA_OK
        || fa_array_init(&expunged, pool, 16, sizeof(uint32_t)) != FA_OK
        || fa_lmdb_seq_scan(lm, txn, FA_LMDB_MODSEQ, box->id, modseq, &changed) != FA_OK
        || fa_lmdb_seq_scan(lm, txn, FA_LMDB_EXPUNGED, box->id, modseq, &expunged) != FA_OK
        || fa_lmdb_changed_meta(lm, txn, box->id, &changed, pool, ch) != FA_OK)
    {
        return FA_ERROR;
    }
    ch->expunged = expunged.elts;
    ch->nexpunged = fa_lmdb_uids_sort(expunged.elts, expunged.nelts);
    rc = fa_lmdb_keywords_get(lm, txn, box->id, &kw);
    if (rc == FA_OK) {
        rc = fa_lmdb_keywords_copy(&kw, pool, &ch->keywords, &ch->nkeywords);
    }
    fa_lmdb_keywords_free(&kw);
    return rc == FA_OK ? FA_OK : FA_ERROR;
}

static void
fa_lmdb_changes_deliver(fa_lmdb_op_t *op)
{
    fa_lmdb_box_op_t  *b = (fa_lmdb_box_op_t *) op;

    ((fa_storage_changes_pt) b->cb)(b->data, op->rc, op->rc == FA_OK ? &b->changes : NULL);
}

/* changed messages carry UID, flags, keywords, MODSEQ, size and date (no strings) */
fa_int_t
fa_lmdb_changes_since(fa_mailbox_t *box, uint64_t modseq, fa_pool_t *pool,
    fa_storage_changes_pt cb, void *data)
{
    fa_lmdb_t         *lm = box->lm;
    fa_lmdb_box_op_t  *b;
    MDB_txn           *txn;
    fa_int_t           rc;

    b = fa_lmdb_box_op(lm, 0, pool, (fa_lmdb_fn_pt) cb, data);
    if (b == NULL) {
        return FA_ERROR;
    }
    b->op.deliver = fa_lmdb_changes_deliver;
    if (fa_lmdb_read_begin(lm, &txn) != FA_OK) {
        fa_lmdb_op_free(&b->op);
        return FA_ERROR;
    }
    rc = fa_lmdb_changes_read(lm, txn, box, modseq, pool, &b->changes);
    fa_lmdb_read_end(lm);
    if (rc != FA_OK) {
        fa_lmdb_op_free(&b->op);
        return rc;
    }
    return fa_lmdb_op_post(&b->op);
}
