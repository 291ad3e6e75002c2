/*
 * Changes to a selected mailbox: store, copy and move, expunge.  Each is a
 * write op: it runs in the writer thread, in the batch's transaction, and
 * completes once durable.  Every change takes a new MODSEQ from the mailbox
 * (one per changed message, one per expunge), so "changed since" is a
 * range of the modseq and expunged databases.
 *
 * Copies share the body (its reference count grows); a move keeps the body
 * and the GUID and leaves a tombstone in the source, like an expunge.
 * Quotas count messages, so a copy is charged, a move is not.
 */

#include "fa_lmdb.h"

typedef struct {
    uint32_t             uid;
    fa_lmdb_msg_rec_t    rec;
} fa_lmdb_hit_t;

typedef struct {
    fa_lmdb_hit_t       *hit;
    fa_uint_t            n, size;
    uint32_t             require;         /* flags a message must have to be taken */
    uint64_t             bytes;
} fa_lmdb_hits_t;

typedef struct {
    fa_lmdb_op_t         op;
    uint64_t             box_id;
    fa_str_t             user;
    fa_str_t             dest;
    fa_uid_set_t         uids;
    fa_store_request_t   req;
    fa_pool_t           *pool;
    fa_lmdb_fn_pt        cb;
    void                *data;
    unsigned             all:1;           /* expunge: every \Deleted message */
    unsigned             move:1;
    unsigned             modified:1;      /* store: UNCHANGEDSINCE failed for some */
    /* results, allocated by the writer, copied to the pool on delivery */
    fa_message_meta_t   *metas;
    uint32_t            *src, *dst;
    fa_uint_t            n;
    uint32_t             uidvalidity;
    uint64_t             highestmodseq;
} fa_lmdb_change_op_t;

static fa_int_t
fa_lmdb_hits_add(void *data, uint32_t uid, MDB_val *val)
{
    fa_lmdb_hits_t  *h = data;
    fa_lmdb_hit_t   *hit;

    if (h->n == h->size) {
        h->size = h->size ? h->size * 2 : 64;
        hit = realloc(h->hit, h->size * sizeof(fa_lmdb_hit_t));
        if (hit == NULL) {
            return FA_LMDB_FAILED;
        }
        h->hit = hit;
    }
    hit = &h->hit[h->n];
    fa_lmdb_msg_decode(val, &hit->rec);
    if ((hit->rec.flags & h->require) != h->require) {
        return FA_OK;
    }
    hit->uid = uid;
    h->bytes += hit->rec.size;
    h->n++;
    return FA_OK;
}

static void
fa_lmdb_change_reset(fa_lmdb_op_t *op)
{
    fa_lmdb_change_op_t  *c = (fa_lmdb_change_op_t *) op;

    free(c->metas);
    free(c->src);
    free(c->dst);
    c->metas = NULL;
    c->src = c->dst = NULL;
    c->n = 0;
    c->modified = 0;
}

/* one allocation: the op, then copies of the user, DEST, the ranges and keywords */
static fa_lmdb_change_op_t *
fa_lmdb_change_op(fa_mailbox_t *box, const fa_uid_set_t *uids, const fa_str_t *dest,
    const fa_store_request_t *req, fa_pool_t *pool, fa_lmdb_fn_pt cb, void *data)
{
    fa_lmdb_change_op_t  *c;
    size_t                size = sizeof(*c) + box->user.len + (dest ? dest->len : 0);
    fa_uint_t             nranges = uids ? uids->nranges : 0, nkw = req ? req->nkeywords : 0;
    u_char               *p;

    size += nranges * sizeof(fa_uid_range_t) + nkw * sizeof(fa_str_t) + 16;
    for (fa_uint_t i = 0; i < nkw; i++) {
        size += req->keywords[i].len;
    }
    c = (fa_lmdb_change_op_t *) fa_lmdb_op_alloc(box->lm, size);
    if (c == NULL) {
        return NULL;
    }
    c->box_id = box->id;
    c->pool = pool;
    c->cb = cb;
    c->data = data;
    c->all = uids == NULL;
    c->op.reset = fa_lmdb_change_reset;
    c->uids.ranges = (fa_uid_range_t *) fa_align((uintptr_t) (c + 1), 8);
    c->uids.nranges = nranges;
    if (nranges) {
        memcpy(c->uids.ranges, uids->ranges, nranges * sizeof(fa_uid_range_t));
    }
    c->req.keywords = (fa_str_t *) (c->uids.ranges + nranges);
    p = (u_char *) (c->req.keywords + nkw);
    if (req) {
        c->req.mode = req->mode;
        c->req.flags = req->flags;
        c->req.unchangedsince = req->unchangedsince;
        c->req.nkeywords = nkw;
        for (fa_uint_t i = 0; i < nkw; i++) {
            c->req.keywords[i].data = memcpy(p, req->keywords[i].data, req->keywords[i].len);
            c->req.keywords[i].len = req->keywords[i].len;
            p += req->keywords[i].len;
        }
    }
    c->user.data = memcpy(p, box->user.data, box->user.len);
    c->user.len = box->user.len;
    p += box->user.len;
    if (dest) {
        fa_lmdb_name_norm(dest, p, &c->dest);
    }
    return c;
}

/* the changed op's UID set, or every message */
static const fa_uid_set_t *
fa_lmdb_change_set(fa_lmdb_change_op_t *c)
{
    return c->all ? NULL : &c->uids;
}

/* ---- store ---- */

static fa_int_t
fa_lmdb_store_bits(fa_lmdb_change_op_t *c, fa_lmdb_keywords_t *kw, uint64_t *bits)
{
    *bits = 0;
    for (fa_uint_t i = 0; i < c->req.nkeywords; i++) {
        fa_int_t id = fa_lmdb_keyword_id(kw, &c->req.keywords[i], c->req.mode != FA_STORE_REMOVE);
        if (id == -2) {
            return FA_STORAGE_INVALID;     /* no room for another keyword */
        }
        if (id >= 0) {
            *bits |= (uint64_t) 1 << id;
        }
    }
    return FA_OK;
}

static void
fa_lmdb_store_new(fa_lmdb_change_op_t *c, uint64_t bits, const fa_lmdb_msg_rec_t *old,
    fa_lmdb_msg_rec_t *rec)
{
    uint32_t  flags = c->req.flags & 0x1f;

    *rec = *old;
    switch (c->req.mode) {
    case FA_STORE_REPLACE:
        rec->flags = (uint16_t) flags;
        rec->keywords = bits;
        break;
    case FA_STORE_ADD:
        rec->flags |= (uint16_t) flags;
        rec->keywords |= bits;
        break;
    case FA_STORE_REMOVE:
        rec->flags &= (uint16_t) ~flags;
        rec->keywords &= ~bits;
        break;
    }
}

static void
fa_lmdb_store_result(fa_message_meta_t *m, uint32_t uid, const fa_lmdb_msg_rec_t *rec,
    uint32_t extra)
{
    memset(m, 0, sizeof(*m));
    m->uid = uid;
    m->flags = rec->flags | extra;
    m->keywords = rec->keywords;
    m->modseq = rec->modseq;
    m->size = rec->size;
    m->internal_date = (time_t) rec->internal_date;
}

/* one message: skipped (UNCHANGEDSINCE), unchanged, or rewritten with a new MODSEQ */
static fa_int_t
fa_lmdb_store_one(fa_lmdb_change_op_t *c, MDB_txn *txn, fa_lmdb_box_rec_t *box,
    fa_lmdb_hit_t *hit, uint64_t bits, fa_message_meta_t *m)
{
    fa_lmdb_msg_rec_t  rec;
    u_char             kbuf[12];
    MDB_val            key = fa_lmdb_key_uid(kbuf, c->box_id, hit->uid), old;
    fa_int_t           rc;

    if (c->req.unchangedsince && hit->rec.modseq > c->req.unchangedsince) {
        c->modified = 1;
        fa_lmdb_store_result(m, hit->uid, &hit->rec, FA_FLAG_MODIFIED);
        return FA_OK;
    }
    fa_lmdb_store_new(c, bits, &hit->rec, &rec);
    if (rec.flags == hit->rec.flags && rec.keywords == hit->rec.keywords) {
        fa_lmdb_store_result(m, hit->uid, &rec, 0);
        return FA_OK;                      /* no change, no new MODSEQ */
    }
    rec.modseq = ++box->highestmodseq;
    fa_lmdb_box_count(box, hit->rec.flags, 0, -1);
    fa_lmdb_box_count(box, rec.flags, 0, 1);
    fa_lmdb_store_result(m, hit->uid, &rec, 0);
    rc = fa_lmdb_get(c->op.lm, txn, FA_LMDB_MESSAGES, &key, &old);
    return rc == FA_OK ? fa_lmdb_msg_put(c->op.lm, txn, c->box_id, hit->uid, &rec, &old) : rc;
}

static fa_int_t
fa_lmdb_store_apply(fa_lmdb_op_t *op, MDB_txn *txn)
{
    fa_lmdb_change_op_t  *c = (fa_lmdb_change_op_t *) op;
    fa_lmdb_hits_t        h = { NULL, 0, 0, 0, 0 };
    fa_lmdb_keywords_t    kw;
    fa_lmdb_box_rec_t     box;
    uint64_t              bits = 0, seq;
    fa_int_t              rc;

    rc = fa_lmdb_box_get(op->lm, txn, c->box_id, &box);
    if (rc != FA_OK) {
        return rc;
    }
    seq = box.highestmodseq;
    rc = fa_lmdb_keywords_get(op->lm, txn, c->box_id, &kw);
    if (rc == FA_OK) {
        rc = fa_lmdb_store_bits(c, &kw, &bits);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_msg_each(op->lm, txn, c->box_id, fa_lmdb_change_set(c),
                              fa_lmdb_hits_add, &h);
    }
    if (rc == FA_OK && h.n) {
        c->metas = fa_alloc(h.n * sizeof(fa_message_meta_t), op->lm->log);
        rc = c->metas ? FA_OK : FA_LMDB_FAILED;
    }
    for (fa_uint_t i = 0; rc == FA_OK && i < h.n; i++) {
        rc = fa_lmdb_store_one(c, txn, &box, &h.hit[i], bits, &c->metas[c->n++]);
    }
    if (rc == FA_OK && box.highestmodseq != seq) {
        rc = fa_lmdb_box_put(op->lm, txn, c->box_id, &box);
        fa_lmdb_op_changed(op, c->box_id);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_keywords_put(op->lm, txn, c->box_id, &kw);
    }
    fa_lmdb_keywords_free(&kw);
    free(h.hit);
    return rc;
}

static void
fa_lmdb_store_deliver(fa_lmdb_op_t *op)
{
    fa_lmdb_change_op_t  *c = (fa_lmdb_change_op_t *) op;
    fa_message_meta_t    *m = NULL;
    fa_int_t              rc = op->rc;

    if (rc == FA_OK && c->n) {
        m = fa_palloc(c->pool, c->n * sizeof(fa_message_meta_t));
        if (m == NULL) {
            rc = FA_ERROR;
        } else {
            memcpy(m, c->metas, c->n * sizeof(fa_message_meta_t));
        }
    }
    if (rc == FA_OK && c->modified) {
        rc = FA_STORAGE_MODIFIED;
    }
    ((fa_storage_meta_pt) c->cb)(c->data, rc, m, m ? c->n : 0);
}

/*
 * The results are every message of the set, with its flags after the store
 * (MODSEQ new where it changed); with UNCHANGEDSINCE, those left unchanged
 * because they were modified since carry FA_FLAG_MODIFIED and the status is
 * FA_STORAGE_MODIFIED, the others being stored all the same (RFC 7162).
 */
fa_int_t
fa_lmdb_store(fa_mailbox_t *box, const fa_uid_set_t *uids, const fa_store_request_t *req,
    fa_pool_t *pool, fa_storage_meta_pt cb, void *data)
{
    fa_lmdb_change_op_t  *c;

    if (uids == NULL) {
        return FA_STORAGE_INVALID;
    }
    for (fa_uint_t i = 0; i < req->nkeywords; i++) {
        if (req->keywords[i].len == 0 || memchr(req->keywords[i].data, 0, req->keywords[i].len)) {
            return FA_STORAGE_INVALID;
        }
    }
    c = fa_lmdb_change_op(box, uids, NULL, req, pool, (fa_lmdb_fn_pt) cb, data);
    if (c == NULL) {
        return FA_ERROR;
    }
    c->op.apply = fa_lmdb_store_apply;
    c->op.deliver = fa_lmdb_store_deliver;
    return fa_lmdb_op_submit(&c->op);
}

/* ---- expunge ---- */

static fa_int_t
fa_lmdb_expunge_apply(fa_lmdb_op_t *op, MDB_txn *txn)
{
    fa_lmdb_change_op_t  *c = (fa_lmdb_change_op_t *) op;
    fa_lmdb_hits_t        h = { NULL, 0, 0, FA_FLAG_DELETED, 0 };
    fa_lmdb_box_rec_t     box;
    fa_lmdb_user_rec_t    u;
    fa_int_t              rc;

    rc = fa_lmdb_box_get(op->lm, txn, c->box_id, &box);
    if (rc == FA_OK) {
        rc = fa_lmdb_user_get(op->lm, txn, &c->user, &u);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_msg_each(op->lm, txn, c->box_id, fa_lmdb_change_set(c),
                              fa_lmdb_hits_add, &h);
    }
    if (rc == FA_OK && h.n) {
        c->src = fa_alloc(h.n * sizeof(uint32_t), op->lm->log);
        rc = c->src ? FA_OK : FA_LMDB_FAILED;
    }
    for (fa_uint_t i = 0; rc == FA_OK && i < h.n; i++) {
        c->src[c->n++] = h.hit[i].uid;
        fa_lmdb_box_count(&box, h.hit[i].rec.flags, h.hit[i].rec.size, -1);
        u.bytes_used -= fa_min(u.bytes_used, h.hit[i].rec.size);
        u.messages_used -= u.messages_used ? 1 : 0;
        rc = fa_lmdb_msg_remove(op, txn, c->box_id, h.hit[i].uid, &h.hit[i].rec);
    }
    if (rc == FA_OK && h.n) {
        rc = fa_lmdb_tombstone(op->lm, txn, c->box_id, &box, c->src, c->n);
        if (rc == FA_OK) {
            rc = fa_lmdb_box_put(op->lm, txn, c->box_id, &box);
        }
        if (rc == FA_OK) {
            rc = fa_lmdb_user_put(op->lm, txn, &c->user, &u);
        }
        fa_lmdb_op_changed(op, c->box_id);
    }
    c->highestmodseq = box.highestmodseq;
    free(h.hit);
    return rc;
}

static void
fa_lmdb_expunge_deliver(fa_lmdb_op_t *op)
{
    fa_lmdb_change_op_t   *c = (fa_lmdb_change_op_t *) op;
    fa_mailbox_changes_t  *ch = NULL;
    fa_int_t               rc = op->rc;

    if (rc == FA_OK) {
        ch = fa_pcalloc(c->pool, sizeof(fa_mailbox_changes_t));
        if (ch && c->n) {
            ch->expunged = fa_palloc(c->pool, c->n * sizeof(uint32_t));
        }
        if (ch == NULL || (c->n && ch->expunged == NULL)) {
            rc = FA_ERROR;
            ch = NULL;
        } else {
            if (c->n) {                  /* nothing expunged: no array to copy into */
                memcpy(ch->expunged, c->src, c->n * sizeof(uint32_t));
            }
            ch->nexpunged = c->n;
            ch->highestmodseq = c->highestmodseq;
        }
    }
    ((fa_storage_changes_pt) c->cb)(c->data, rc, ch);
}

/* UIDS NULL: every \Deleted message; else the \Deleted ones in UIDS (UID EXPUNGE) */
fa_int_t
fa_lmdb_expunge(fa_mailbox_t *box, const fa_uid_set_t *uids, fa_pool_t *pool,
    fa_storage_changes_pt cb, void *data)
{
    fa_lmdb_change_op_t  *c;

    c = fa_lmdb_change_op(box, uids, NULL, NULL, pool, (fa_lmdb_fn_pt) cb, data);
    if (c == NULL) {
        return FA_ERROR;
    }
    c->op.apply = fa_lmdb_expunge_apply;
    c->op.deliver = fa_lmdb_expunge_deliver;
    return fa_lmdb_op_submit(&c->op);
}

/* ---- copy and move ---- */

typedef struct {
    fa_lmdb_box_rec_t    src, dst;
    fa_lmdb_box_rec_t   *dbox;            /* &src when copying into the same mailbox */
    fa_lmdb_keywords_t   skw, dkw;
    fa_lmdb_keywords_t  *dkwp;
    fa_lmdb_user_rec_t   user;
    uint64_t             dest_id;
    fa_lmdb_hits_t       h;
} fa_lmdb_copy_ctx_t;

static fa_int_t
fa_lmdb_copy_load(fa_lmdb_change_op_t *c, MDB_txn *txn, fa_lmdb_copy_ctx_t *x)
{
    fa_lmdb_t           *lm = c->op.lm;
    fa_lmdb_name_rec_t   n;
    fa_int_t             rc;

    rc = fa_lmdb_box_get(lm, txn, c->box_id, &x->src);
    if (rc == FA_OK) {
        rc = fa_lmdb_user_get(lm, txn, &c->user, &x->user);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_name_get(lm, txn, x->src.user_id, &c->dest, &n);
        if (rc == FA_OK && (n.flags & FA_LMDB_BOX_NOSELECT)) {
            rc = FA_STORAGE_NOTFOUND;
        }
        rc = rc == FA_STORAGE_INVALID ? FA_STORAGE_NOTFOUND : rc;
    }
    if (rc != FA_OK) {
        return rc;
    }
    x->dest_id = n.id;
    x->dbox = n.id == c->box_id ? &x->src : &x->dst;
    x->dkwp = n.id == c->box_id ? &x->skw : &x->dkw;
    if (x->dbox == &x->dst) {
        rc = fa_lmdb_box_get(lm, txn, n.id, &x->dst);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_keywords_get(lm, txn, c->box_id, &x->skw);
    }
    if (rc == FA_OK && x->dkwp == &x->dkw) {
        rc = fa_lmdb_keywords_get(lm, txn, n.id, &x->dkw);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_msg_each(lm, txn, c->box_id, &c->uids, fa_lmdb_hits_add, &x->h);
    }
    return rc;
}

/* keywords by name from the source's table to the destination's (dropped if full) */
static uint64_t
fa_lmdb_copy_keywords(fa_lmdb_copy_ctx_t *x, uint64_t bits)
{
    uint64_t  out = 0;

    if (x->dkwp == &x->skw) {
        return bits;
    }
    for (fa_uint_t i = 0; i < x->skw.n; i++) {
        if (bits & ((uint64_t) 1 << i)) {
            fa_int_t id = fa_lmdb_keyword_id(&x->dkw, &x->skw.names[i], 1);
            out |= id >= 0 ? (uint64_t) 1 << id : 0;
        }
    }
    return out;
}

static fa_int_t
fa_lmdb_copy_one(fa_lmdb_change_op_t *c, MDB_txn *txn, fa_lmdb_copy_ctx_t *x,
    fa_lmdb_hit_t *hit)
{
    fa_lmdb_t          *lm = c->op.lm;
    fa_lmdb_msg_rec_t   rec = hit->rec;
    u_char              kbuf[12];
    MDB_val             key = fa_lmdb_key_uid(kbuf, c->box_id, hit->uid), src;
    uint32_t            uid = x->dbox->uidnext++;
    fa_int_t            rc;

    rec.keywords = fa_lmdb_copy_keywords(x, hit->rec.keywords);
    rec.modseq = ++x->dbox->highestmodseq;
    fa_lmdb_box_count(x->dbox, rec.flags, rec.size, 1);
    c->src[c->n] = hit->uid;
    c->dst[c->n++] = uid;

    rc = fa_lmdb_get(lm, txn, FA_LMDB_MESSAGES, &key, &src);
    if (rc == FA_OK) {
        rc = fa_lmdb_msg_add_from(lm, txn, x->dest_id, uid, &rec, &src);
    }
    if (rc != FA_OK) {
        return rc;
    }
    if (!c->move) {
        return fa_lmdb_body_ref(&c->op, txn, rec.body_id, 1);
    }
    /* moved: the body changes hands, the source keeps a tombstone */
    fa_lmdb_box_count(&x->src, hit->rec.flags, hit->rec.size, -1);
    return fa_lmdb_msg_del(lm, txn, c->box_id, hit->uid, hit->rec.modseq);
}

static fa_int_t
fa_lmdb_copy_check(fa_lmdb_change_op_t *c, fa_lmdb_copy_ctx_t *x)
{
    fa_lmdb_user_rec_t  *u = &x->user;

    if (!c->move && ((u->bytes_limit && u->bytes_used + x->h.bytes > u->bytes_limit)
                     || (u->messages_limit && u->messages_used + x->h.n > u->messages_limit)))
    {
        return FA_STORAGE_OVERQUOTA;
    }
    if ((uint64_t) x->dbox->uidnext + x->h.n >= UINT32_MAX) {
        return FA_STORAGE_NOSPACE;
    }
    c->src = fa_alloc(x->h.n * sizeof(uint32_t), c->op.lm->log);
    c->dst = fa_alloc(x->h.n * sizeof(uint32_t), c->op.lm->log);
    return c->src && c->dst ? FA_OK : FA_LMDB_FAILED;
}

static fa_int_t
fa_lmdb_copy_save(fa_lmdb_change_op_t *c, MDB_txn *txn, fa_lmdb_copy_ctx_t *x)
{
    fa_lmdb_t  *lm = c->op.lm;
    fa_int_t    rc = FA_OK;

    if (c->move) {
        rc = fa_lmdb_tombstone(lm, txn, c->box_id, &x->src, c->src, c->n);
        fa_lmdb_op_changed(&c->op, c->box_id);
    } else {
        x->user.bytes_used += x->h.bytes;
        x->user.messages_used += x->h.n;
        rc = fa_lmdb_user_put(lm, txn, &c->user, &x->user);
    }
    if (rc == FA_OK && x->dbox == &x->dst) {
        rc = fa_lmdb_box_put(lm, txn, x->dest_id, &x->dst);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_box_put(lm, txn, c->box_id, &x->src);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_keywords_put(lm, txn, x->dest_id, x->dkwp);
    }
    fa_lmdb_op_changed(&c->op, x->dest_id);
    return rc;
}

static fa_int_t
fa_lmdb_copy_apply(fa_lmdb_op_t *op, MDB_txn *txn)
{
    fa_lmdb_change_op_t  *c = (fa_lmdb_change_op_t *) op;
    fa_lmdb_copy_ctx_t    x;
    fa_int_t              rc;

    memset(&x, 0, sizeof(x));
    rc = fa_lmdb_copy_load(c, txn, &x);
    if (rc == FA_OK) {
        c->uidvalidity = x.dbox->uidvalidity;
    }
    if (rc == FA_OK && x.h.n) {
        rc = fa_lmdb_copy_check(c, &x);
        for (fa_uint_t i = 0; rc == FA_OK && i < x.h.n; i++) {
            rc = fa_lmdb_copy_one(c, txn, &x, &x.h.hit[i]);
        }
        if (rc == FA_OK) {
            rc = fa_lmdb_copy_save(c, txn, &x);
        }
    }
    fa_lmdb_keywords_free(&x.skw);
    fa_lmdb_keywords_free(&x.dkw);
    free(x.h.hit);
    return rc;
}

/* ascending UIDs as ranges of consecutive ones */
static fa_int_t
fa_lmdb_uids_to_set(fa_pool_t *pool, const uint32_t *u, fa_uint_t n, fa_uid_set_t *set)
{
    set->nranges = 0;
    set->ranges = fa_palloc(pool, (n ? n : 1) * sizeof(fa_uid_range_t));
    if (set->ranges == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < n; i++) {
        if (set->nranges && set->ranges[set->nranges - 1].last + 1 == u[i]) {
            set->ranges[set->nranges - 1].last = u[i];
        } else {
            set->ranges[set->nranges].first = set->ranges[set->nranges].last = u[i];
            set->nranges++;
        }
    }
    return FA_OK;
}

static void
fa_lmdb_copy_deliver(fa_lmdb_op_t *op)
{
    fa_lmdb_change_op_t  *c = (fa_lmdb_change_op_t *) op;
    fa_uid_set_t          src = { NULL, 0 }, dst = { NULL, 0 };
    fa_int_t              rc = op->rc;

    if (rc == FA_OK && (fa_lmdb_uids_to_set(c->pool, c->src, c->n, &src) != FA_OK
                        || fa_lmdb_uids_to_set(c->pool, c->dst, c->n, &dst) != FA_OK))
    {
        rc = FA_ERROR;
    }
    ((fa_storage_copy_pt) c->cb)(c->data, rc, rc == FA_OK ? c->uidvalidity : 0,
                                 rc == FA_OK ? &src : NULL, rc == FA_OK ? &dst : NULL);
}

/* the UID maps (COPYUID) pair the n-th UID of src with the n-th of dst */
fa_int_t
fa_lmdb_copy(fa_mailbox_t *box, const fa_uid_set_t *uids, const fa_str_t *dest, int move,
    fa_pool_t *pool, fa_storage_copy_pt cb, void *data)
{
    fa_lmdb_change_op_t  *c;

    if (uids == NULL || fa_storage_mailbox_name_valid(dest) != FA_OK) {
        return FA_STORAGE_INVALID;
    }
    c = fa_lmdb_change_op(box, uids, dest, NULL, pool, (fa_lmdb_fn_pt) cb, data);
    if (c == NULL) {
        return FA_ERROR;
    }
    c->move = move ? 1 : 0;
    c->op.grows = !move;
    c->op.apply = fa_lmdb_copy_apply;
    c->op.deliver = fa_lmdb_copy_deliver;
    return fa_lmdb_op_submit(&c->op);
}
