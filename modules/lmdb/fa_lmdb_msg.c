/*
 * Message records: decoding into fa_message_meta_t, writing with the MODSEQ
 * index kept in step, walking a UID set, removing a message or a whole
 * mailbox.
 *
 * A message value is fa_lmdb_msg_rec_t followed by six strings (GUID,
 * ENVELOPE, BODYSTRUCTURE, BODY, the part table, cached headers) whose
 * lengths the record gives.  Flag changes rewrite the record with the same
 * strings.
 */

#include "fa_lmdb.h"

void
fa_lmdb_msg_decode(const MDB_val *val, fa_lmdb_msg_rec_t *rec)
{
    memset(rec, 0, sizeof(*rec));
    memcpy(rec, val->mv_data, fa_min(val->mv_size, sizeof(*rec)));
}

/* the strings after the record, or an empty value when they do not fit */
static MDB_val
fa_lmdb_msg_tail(const MDB_val *val, const fa_lmdb_msg_rec_t *rec)
{
    MDB_val  tail = { 0, NULL };
    size_t   total = 0;

    if (val->mv_size < sizeof(*rec)) {
        return tail;
    }
    for (int i = 0; i < 6; i++) {
        total += rec->lens[i];
    }
    if (total <= val->mv_size - sizeof(*rec)) {
        tail.mv_size = total;
        tail.mv_data = (u_char *) val->mv_data + sizeof(*rec);
    }
    return tail;
}

fa_int_t
fa_lmdb_msg_meta(const MDB_val *val, uint32_t uid, fa_pool_t *pool, fa_message_meta_t *meta,
    int strings)
{
    fa_lmdb_msg_rec_t   rec;
    MDB_val             tail;
    u_char             *p;
    fa_str_t           *field[6];

    fa_lmdb_msg_decode(val, &rec);
    memset(meta, 0, sizeof(*meta));
    meta->uid = uid;
    meta->flags = rec.flags;
    meta->keywords = rec.keywords;
    meta->modseq = rec.modseq;
    meta->size = rec.size;
    meta->internal_date = (time_t) rec.internal_date;
    if (!strings) {
        return FA_OK;
    }
    tail = fa_lmdb_msg_tail(val, &rec);
    if (tail.mv_data == NULL) {
        return FA_STORAGE_CORRUPT;
    }
    field[0] = &meta->guid;
    field[1] = &meta->envelope;
    field[2] = &meta->bodystructure;
    field[3] = &meta->body;
    field[4] = &meta->mime;
    field[5] = &meta->headers;
    p = tail.mv_data;
    for (int i = 0; i < 6; i++) {
        fa_str_t s = { rec.lens[i], p };
        field[i]->len = s.len;
        field[i]->data = fa_pstrdup(pool, &s);
        if (field[i]->data == NULL) {
            return FA_ERROR;
        }
        p += s.len;
    }
    return FA_OK;
}

/* the record, then TAIL (the strings); written from a copy, since TAIL may
   point at the very value being replaced */
static fa_int_t
fa_lmdb_msg_write(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, uint32_t uid,
    const fa_lmdb_msg_rec_t *rec, const MDB_val *tail)
{
    u_char    stack[2048], *buf = stack, kbuf[12];
    size_t    n = sizeof(*rec) + (tail ? tail->mv_size : 0);
    MDB_val   key = fa_lmdb_key_uid(kbuf, box, uid), val = { n, NULL };
    fa_int_t  rc;

    if (n > sizeof(stack)) {
        buf = fa_alloc(n, lm->log);
        if (buf == NULL) {
            return FA_LMDB_FAILED;
        }
    }
    memcpy(buf, rec, sizeof(*rec));
    if (tail && tail->mv_size) {
        memcpy(buf + sizeof(*rec), tail->mv_data, tail->mv_size);
    }
    val.mv_data = buf;
    rc = fa_lmdb_put(lm, txn, FA_LMDB_MESSAGES, &key, &val);
    if (buf != stack) {
        free(buf);
    }
    return rc;
}

static fa_int_t
fa_lmdb_modseq_move(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, uint32_t uid, uint64_t from,
    uint64_t to)
{
    u_char    kbuf[16];
    MDB_val   key, val = { sizeof(uid), &uid };
    fa_int_t  rc = FA_OK;

    if (from) {
        key = fa_lmdb_key_seq(kbuf, box, from);
        rc = fa_lmdb_del(lm, txn, FA_LMDB_MODSEQ, &key);
    }
    if (rc == FA_OK && to) {
        key = fa_lmdb_key_seq(kbuf, box, to);
        rc = fa_lmdb_put(lm, txn, FA_LMDB_MODSEQ, &key, &val);
    }
    return rc;
}

/*
 * Write a message: new (OLD NULL, REC's strings in TAIL) or changed (OLD
 * is its current value, whose strings are kept).  The MODSEQ index follows.
 */
fa_int_t
fa_lmdb_msg_put(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, uint32_t uid,
    const fa_lmdb_msg_rec_t *rec, const MDB_val *old)
{
    fa_lmdb_msg_rec_t  prev;
    MDB_val            tail = { 0, NULL };
    fa_int_t           rc;
    uint64_t           from = 0;

    if (old) {
        fa_lmdb_msg_decode(old, &prev);
        tail = fa_lmdb_msg_tail(old, &prev);
        from = prev.modseq;
    }
    rc = fa_lmdb_msg_write(lm, txn, box, uid, rec, &tail);
    if (rc == FA_OK && from != rec->modseq) {
        rc = fa_lmdb_modseq_move(lm, txn, box, uid, from, rec->modseq);
    }
    return rc;
}

/* a new message whose strings are GUID only (the metadata is added later) */
fa_int_t
fa_lmdb_msg_add(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, uint32_t uid,
    fa_lmdb_msg_rec_t *rec, const MDB_val *tail)
{
    fa_int_t  rc = fa_lmdb_msg_write(lm, txn, box, uid, rec, tail);

    return rc == FA_OK ? fa_lmdb_modseq_move(lm, txn, box, uid, 0, rec->modseq) : rc;
}

/* a copy of the message SRC (its strings) under a new UID */
fa_int_t
fa_lmdb_msg_add_from(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, uint32_t uid,
    fa_lmdb_msg_rec_t *rec, const MDB_val *src)
{
    fa_lmdb_msg_rec_t  prev;
    MDB_val            tail;

    fa_lmdb_msg_decode(src, &prev);
    tail = fa_lmdb_msg_tail(src, &prev);
    return fa_lmdb_msg_add(lm, txn, box, uid, rec, &tail);
}

/* the message and its MODSEQ entry; the body is the caller's business */
fa_int_t
fa_lmdb_msg_del(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, uint32_t uid, uint64_t modseq)
{
    u_char    kbuf[12];
    MDB_val   key = fa_lmdb_key_uid(kbuf, box, uid);
    fa_int_t  rc = fa_lmdb_del(lm, txn, FA_LMDB_MESSAGES, &key);

    return rc == FA_OK ? fa_lmdb_modseq_move(lm, txn, box, uid, modseq, 0) : rc;
}

/* the message, its MODSEQ entry and its reference to the body */
fa_int_t
fa_lmdb_msg_remove(fa_lmdb_op_t *op, MDB_txn *txn, uint64_t box, uint32_t uid,
    const fa_lmdb_msg_rec_t *rec)
{
    fa_int_t  rc = fa_lmdb_msg_del(op->lm, txn, box, uid, rec->modseq);

    return rc == FA_OK ? fa_lmdb_body_ref(op, txn, rec->body_id, -1) : rc;
}

/* the UIDs expunged from a mailbox at its next MODSEQ, for changes_since */
fa_int_t
fa_lmdb_tombstone(fa_lmdb_t *lm, MDB_txn *txn, uint64_t id, fa_lmdb_box_rec_t *box,
    const uint32_t *uids, fa_uint_t n)
{
    u_char   kbuf[16];
    MDB_val  key, val = { n * sizeof(uint32_t), (void *) uids };

    if (n == 0) {
        return FA_OK;
    }
    key = fa_lmdb_key_seq(kbuf, id, ++box->highestmodseq);
    return fa_lmdb_put(lm, txn, FA_LMDB_EXPUNGED, &key, &val);
}

/*
 * Call FN for each message of BOX in UIDS (all when NULL), ascending.  FN
 * must not write to the messages database (the cursor walks it); it stops
 * the walk by returning anything but FA_OK, which is returned.
 */
fa_int_t
fa_lmdb_msg_each(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, const fa_uid_set_t *uids,
    fa_lmdb_msg_each_pt fn, void *ctx)
{
    fa_uid_range_t  all = { 1, UINT32_MAX };
    fa_uint_t       nranges = uids ? uids->nranges : 1;
    u_char          kbuf[12];
    MDB_cursor     *c;
    MDB_val         key, val;
    fa_int_t        r = FA_OK;
    int             rc;

    rc = mdb_cursor_open(txn, lm->dbi[FA_LMDB_MESSAGES], &c);
    if (rc != 0) {
        fa_lmdb_error(lm, rc, "mdb_cursor_open()");
        return FA_LMDB_FAILED;
    }
    for (fa_uint_t i = 0; i < nranges && r == FA_OK; i++) {
        const fa_uid_range_t *range = uids ? &uids->ranges[i] : &all;
        key = fa_lmdb_key_uid(kbuf, box, range->first);
        rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        while (rc == 0 && r == FA_OK) {
            if (key.mv_size != 12 || fa_lmdb_get64(key.mv_data) != box) {
                break;
            }
            uint32_t uid = fa_lmdb_get32((u_char *) key.mv_data + 8);
            if (uid > range->last) {
                break;
            }
            r = fn(ctx, uid, &val);
            rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        }
        if (rc != 0 && rc != MDB_NOTFOUND) {
            fa_lmdb_error(lm, rc, "mdb_cursor_get()");
            r = FA_LMDB_FAILED;
        }
    }
    mdb_cursor_close(c);
    return r;
}

/* delete every key of DB that starts with the 8-byte PREFIX */
static fa_int_t
fa_lmdb_del_prefix(fa_lmdb_t *lm, MDB_txn *txn, int db, const u_char *prefix)
{
    MDB_cursor  *c;
    MDB_val      key, val;
    int          rc;

    rc = mdb_cursor_open(txn, lm->dbi[db], &c);
    if (rc != 0) {
        fa_lmdb_error(lm, rc, "mdb_cursor_open()");
        return FA_LMDB_FAILED;
    }
    for ( ;; ) {
        key.mv_size = 8;
        key.mv_data = (void *) prefix;
        rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        if (rc != 0 || key.mv_size < 8 || memcmp(key.mv_data, prefix, 8) != 0) {
            break;
        }
        rc = mdb_cursor_del(c, 0);
        if (rc != 0) {
            break;
        }
    }
    mdb_cursor_close(c);
    if (rc == 0 || rc == MDB_NOTFOUND) {
        return FA_OK;
    }
    if (rc == MDB_MAP_FULL) {
        return FA_LMDB_RETRY;
    }
    fa_lmdb_error(lm, rc, "deleting a range");
    return FA_LMDB_FAILED;
}

typedef struct {
    fa_lmdb_op_t        *op;
    MDB_txn             *txn;
    fa_lmdb_user_rec_t  *user;
    fa_int_t             rc;
} fa_lmdb_drop_ctx_t;

static fa_int_t
fa_lmdb_drop_one(void *data, uint32_t uid, MDB_val *val)
{
    fa_lmdb_drop_ctx_t  *ctx = data;
    fa_lmdb_msg_rec_t    rec;

    (void) uid;
    fa_lmdb_msg_decode(val, &rec);
    ctx->user->bytes_used -= fa_min(rec.size, ctx->user->bytes_used);
    ctx->user->messages_used -= ctx->user->messages_used ? 1 : 0;
    /* the refs and bodies databases only: the walk's cursor is on messages */
    return fa_lmdb_body_ref(ctx->op, ctx->txn, rec.body_id, -1);
}

/* a mailbox's messages, indexes, keywords and state; USER's usage follows */
fa_int_t
fa_lmdb_box_drop(fa_lmdb_op_t *op, MDB_txn *txn, uint64_t id, fa_lmdb_user_rec_t *user)
{
    fa_lmdb_t           *lm = op->lm;
    fa_lmdb_drop_ctx_t   ctx = { op, txn, user, FA_OK };
    u_char               kbuf[8];
    MDB_val              key = fa_lmdb_key_id(kbuf, id);
    fa_int_t             rc;

    rc = fa_lmdb_msg_each(lm, txn, id, NULL, fa_lmdb_drop_one, &ctx);
    if (rc == FA_OK) {
        rc = fa_lmdb_del_prefix(lm, txn, FA_LMDB_MESSAGES, kbuf);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_del_prefix(lm, txn, FA_LMDB_MODSEQ, kbuf);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_del_prefix(lm, txn, FA_LMDB_EXPUNGED, kbuf);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_del(lm, txn, FA_LMDB_KEYWORDS, &key);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_del(lm, txn, FA_LMDB_BOXES, &key);
    }
    return rc;
}
