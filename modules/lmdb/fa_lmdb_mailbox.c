/*
 * The namespace: list, create, subscribe, status and quotas (delete and
 * rename, which work on subtrees, are in fa_lmdb_tree.c).
 *
 * Reads run at once in the loop's read transaction and deliver through a
 * posted event.  A read that finds no namespace for the user first asks
 * the writer to make one (with its INBOX), then runs again: a user's
 * namespace exists from the first time anything asks for it.
 *
 * "INBOX" is case-insensitive (RFC 3501): any casing of the first level is
 * stored and matched as "INBOX".
 */

#include "fa_lmdb.h"

typedef struct {
    fa_lmdb_op_t           op;
    fa_lmdb_op_t          *then;          /* the read to run again */
    fa_str_t               user;
} fa_lmdb_ensure_op_t;

typedef struct {
    fa_lmdb_op_t           op;
    fa_str_t               user;
    fa_str_t               name;
    fa_pool_t             *pool;          /* the caller's, or own (tmp) */
    fa_pool_t             *tmp;           /* for calls without a pool */
    fa_lmdb_fn_pt          cb;
    void                  *data;
    fa_mailbox_info_t     *boxes;
    fa_uint_t              nboxes;
    fa_mailbox_status_t    status;
    fa_quota_t             quota;
} fa_lmdb_read_op_t;

int
fa_lmdb_is_inbox(const fa_str_t *name)
{
    return name->len == 5 && strncasecmp((char *) name->data, "INBOX", 5) == 0;
}

/* validated, with the first level "INBOX" in any case made "INBOX"; BUF has
   room for FA_MAILBOX_NAME_MAX bytes */
fa_int_t
fa_lmdb_name_norm(const fa_str_t *in, u_char *buf, fa_str_t *out)
{
    if (fa_storage_mailbox_name_valid(in) != FA_OK) {
        return FA_STORAGE_INVALID;
    }
    memcpy(buf, in->data, in->len);
    if (in->len >= 5 && strncasecmp((char *) buf, "INBOX", 5) == 0
        && (in->len == 5 || buf[5] == FA_MAILBOX_SEPARATOR))
    {
        memcpy(buf, "INBOX", 5);
    }
    out->data = buf;
    out->len = in->len;
    return FA_OK;
}

static int
fa_lmdb_user_valid(const fa_str_t *user)
{
    return user->len > 0 && user->len <= FA_LMDB_USER_MAX && !memchr(user->data, 0, user->len);
}

/* an op with copies of USER and NAME (NAME normalised) after it */
static fa_lmdb_op_t *
fa_lmdb_op_names(fa_lmdb_t *lm, size_t size, const fa_str_t *user, const fa_str_t *name,
    fa_str_t *ucopy, fa_str_t *ncopy)
{
    fa_lmdb_op_t  *op = fa_lmdb_op_alloc(lm, size + user->len + (name ? name->len : 0) + 2);
    u_char        *p;

    if (op == NULL) {
        return NULL;
    }
    p = (u_char *) op + size;
    ucopy->data = p;
    ucopy->len = user->len;
    memcpy(p, user->data, user->len);
    if (name) {
        fa_lmdb_name_norm(name, p + user->len + 1, ncopy);
    }
    return op;
}

/* ---- making a namespace before a read ---- */

static fa_int_t
fa_lmdb_ensure_apply(fa_lmdb_op_t *op, MDB_txn *txn)
{
    fa_lmdb_ensure_op_t  *e = (fa_lmdb_ensure_op_t *) op;
    fa_lmdb_user_rec_t    u;

    return fa_lmdb_user_ensure(op->lm, txn, &e->user, &u);
}

static void
fa_lmdb_ensure_deliver(fa_lmdb_op_t *op)
{
    fa_lmdb_ensure_op_t  *e = (fa_lmdb_ensure_op_t *) op;
    fa_lmdb_op_t         *then = e->then;

    then->rc = op->rc == FA_OK ? then->run(then) : op->rc;
    if (then->rc == FA_LMDB_NOUSER) {
        then->rc = FA_ERROR;
    }
    then->deliver(then);
    fa_lmdb_op_free(then);
}

/* run a read op; FA_AGAIN (it is delivered later) or an error (it is freed) */
fa_int_t
fa_lmdb_read_start(fa_lmdb_op_t *op, const fa_str_t *user)
{
    fa_lmdb_ensure_op_t  *e;
    fa_str_t              ucopy;
    fa_int_t              rc = op->run(op);

    if (rc == FA_OK) {
        return fa_lmdb_op_post(op);
    }
    if (rc != FA_LMDB_NOUSER) {
        fa_lmdb_op_free(op);
        return rc;
    }
    e = (fa_lmdb_ensure_op_t *) fa_lmdb_op_names(op->lm, sizeof(*e), user, NULL, &ucopy,
                                                 NULL);
    if (e == NULL) {
        fa_lmdb_op_free(op);
        return FA_ERROR;
    }
    e->user = ucopy;
    e->then = op;
    e->op.apply = fa_lmdb_ensure_apply;
    e->op.grows = 1;
    e->op.deliver = fa_lmdb_ensure_deliver;
    return fa_lmdb_op_submit(&e->op);
}

/* ---- list ---- */

typedef struct {
    fa_pool_t          *pool;
    fa_array_t          boxes;
} fa_lmdb_list_ctx_t;

static fa_int_t
fa_lmdb_list_one(void *data, const fa_str_t *name, const fa_lmdb_name_rec_t *rec)
{
    fa_lmdb_list_ctx_t  *ctx = data;
    fa_mailbox_info_t   *b = fa_array_push(&ctx->boxes);

    if (b == NULL) {
        return FA_ERROR;
    }
    b->name.len = name->len;
    b->name.data = fa_pstrdup(ctx->pool, name);
    b->special_use = rec->special_use;
    b->subscribed = (rec->flags & FA_LMDB_BOX_SUBSCRIBED) ? 1 : 0;
    b->noselect = (rec->flags & FA_LMDB_BOX_NOSELECT) ? 1 : 0;
    return b->name.data ? FA_OK : FA_ERROR;
}

static int
fa_lmdb_info_cmp(const void *a, const void *b)
{
    const fa_str_t  *x = &((const fa_mailbox_info_t *) a)->name;
    const fa_str_t  *y = &((const fa_mailbox_info_t *) b)->name;
    int              c = memcmp(x->data, y->data, fa_min(x->len, y->len));

    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* sorted by bytes, the names below "a/" are one run starting at the first >= "a/" */
static void
fa_lmdb_list_children(fa_mailbox_info_t *b, fa_uint_t n)
{
    for (fa_uint_t i = 0; i < n; i++) {
        fa_uint_t lo = i + 1, hi = n;
        fa_str_t *name = &b[i].name;
        while (lo < hi) {
            fa_uint_t mid = lo + (hi - lo) / 2;
            fa_str_t *m = &b[mid].name;
            int c = memcmp(m->data, name->data, fa_min(m->len, name->len));
            if (c == 0) {
                c = m->len <= name->len ? -1 : (m->data[name->len] < '/' ? -1 : 1);
            }
            if (c < 0) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        b[i].has_children = lo < n && b[lo].name.len > name->len
                            && memcmp(b[lo].name.data, name->data, name->len) == 0
                            && b[lo].name.data[name->len] == '/';
    }
}

static fa_int_t
fa_lmdb_list_run(fa_lmdb_op_t *op)
{
    fa_lmdb_read_op_t   *r = (fa_lmdb_read_op_t *) op;
    fa_lmdb_list_ctx_t   ctx;
    fa_lmdb_user_rec_t   u;
    MDB_txn             *txn;
    fa_int_t             rc;

    if (fa_array_init(&ctx.boxes, r->pool, 16, sizeof(fa_mailbox_info_t)) != FA_OK
        || fa_lmdb_read_begin(op->lm, &txn) != FA_OK)
    {
        return FA_ERROR;
    }
    ctx.pool = r->pool;
    rc = fa_lmdb_user_get(op->lm, txn, &r->user, &u);
    if (rc == FA_OK) {
        rc = fa_lmdb_names_each(op->lm, txn, u.id, fa_lmdb_list_one, &ctx);
    }
    fa_lmdb_read_end(op->lm);
    if (rc == FA_STORAGE_NOTFOUND) {
        return FA_LMDB_NOUSER;
    }
    if (rc != FA_OK) {
        return rc == FA_LMDB_FAILED ? FA_ERROR : rc;
    }
    r->boxes = ctx.boxes.elts;
    r->nboxes = ctx.boxes.nelts;
    qsort(r->boxes, r->nboxes, sizeof(fa_mailbox_info_t), fa_lmdb_info_cmp);
    fa_lmdb_list_children(r->boxes, r->nboxes);
    return FA_OK;
}

static void
fa_lmdb_list_deliver(fa_lmdb_op_t *op)
{
    fa_lmdb_read_op_t  *r = (fa_lmdb_read_op_t *) op;

    ((fa_storage_list_pt) r->cb)(r->data, op->rc, op->rc == FA_OK ? r->boxes : NULL,
                                 op->rc == FA_OK ? r->nboxes : 0);
}

static void
fa_lmdb_read_destroy(fa_lmdb_op_t *op)
{
    fa_lmdb_read_op_t  *r = (fa_lmdb_read_op_t *) op;

    if (r->tmp) {
        fa_pool_destroy(r->tmp);
    }
}

/* POOL NULL: the results live in the op's own pool, valid during the callback */
static fa_lmdb_read_op_t *
fa_lmdb_read_op(fa_storage_t *st, const fa_str_t *user, const fa_str_t *name,
    fa_pool_t *pool, fa_lmdb_fn_pt cb, void *data)
{
    fa_lmdb_read_op_t  *r;
    fa_str_t            u, n = fa_null_string;

    r = (fa_lmdb_read_op_t *) fa_lmdb_op_names(st->data, sizeof(*r), user, name, &u, &n);
    if (r == NULL) {
        return NULL;
    }
    r->user = u;
    r->name = n;
    r->cb = cb;
    r->data = data;
    r->op.destroy = fa_lmdb_read_destroy;
    r->pool = pool;
    if (pool == NULL) {
        r->pool = r->tmp = fa_pool_create(FA_POOL_DEFAULT_SIZE, st->log);
        if (r->tmp == NULL) {
            fa_lmdb_op_free(&r->op);
            return NULL;
        }
    }
    return r;
}

fa_int_t
fa_lmdb_mailbox_list(fa_storage_t *st, const fa_str_t *user, fa_pool_t *pool,
    fa_storage_list_pt cb, void *data)
{
    fa_lmdb_read_op_t  *r;

    if (!fa_lmdb_user_valid(user)) {
        return FA_STORAGE_INVALID;
    }
    r = fa_lmdb_read_op(st, user, NULL, pool, (fa_lmdb_fn_pt) cb, data);
    if (r == NULL) {
        return FA_ERROR;
    }
    r->op.run = fa_lmdb_list_run;
    r->op.deliver = fa_lmdb_list_deliver;
    return fa_lmdb_read_start(&r->op, &r->user);
}

/* ---- status and quota reads ---- */

typedef struct {
    uint32_t   uid;
} fa_lmdb_unseen_ctx_t;

static fa_int_t
fa_lmdb_first_unseen(void *data, uint32_t uid, MDB_val *val)
{
    fa_lmdb_unseen_ctx_t  *ctx = data;
    fa_lmdb_msg_rec_t      rec;

    fa_lmdb_msg_decode(val, &rec);
    if (rec.flags & FA_FLAG_SEEN) {
        return FA_OK;
    }
    ctx->uid = uid;
    return FA_DONE;
}

fa_int_t
fa_lmdb_status_fill(fa_lmdb_t *lm, MDB_txn *txn, uint64_t id, const fa_lmdb_box_rec_t *box,
    fa_pool_t *pool, fa_mailbox_status_t *out)
{
    fa_lmdb_unseen_ctx_t  ctx = { 0 };
    fa_lmdb_keywords_t    kw;
    fa_int_t              rc;

    memset(out, 0, sizeof(*out));
    out->uidvalidity = box->uidvalidity;
    out->uidnext = box->uidnext;
    out->messages = box->messages;
    out->unseen = box->unseen;
    out->deleted = box->deleted;
    out->highestmodseq = box->highestmodseq;
    out->size = box->size;
    /* a walk only when something is unseen; it stops at the first */
    if (box->unseen) {
        rc = fa_lmdb_msg_each(lm, txn, id, NULL, fa_lmdb_first_unseen, &ctx);
        if (rc != FA_OK && rc != FA_DONE) {
            return FA_ERROR;
        }
        out->first_unseen_uid = ctx.uid;
    }
    rc = fa_lmdb_keywords_get(lm, txn, id, &kw);
    if (rc == FA_OK) {
        rc = fa_lmdb_keywords_copy(&kw, pool, &out->keywords, &out->nkeywords);
    }
    fa_lmdb_keywords_free(&kw);
    return rc == FA_OK ? FA_OK : FA_ERROR;
}

/* NOTFOUND for NAME, or FA_LMDB_NOUSER when NAME is INBOX of a user not yet seen */
fa_int_t
fa_lmdb_box_lookup(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *user, const fa_str_t *name,
    uint64_t *user_id, uint64_t *box_id, fa_lmdb_box_rec_t *box)
{
    fa_lmdb_user_rec_t  u;
    fa_int_t            rc = fa_lmdb_box_find(lm, txn, user, name, user_id, box_id, box);

    if (rc == FA_STORAGE_NOTFOUND && fa_lmdb_is_inbox(name)
        && fa_lmdb_user_get(lm, txn, user, &u) == FA_STORAGE_NOTFOUND)
    {
        return FA_LMDB_NOUSER;
    }
    return rc == FA_LMDB_FAILED ? FA_ERROR : rc;
}

static fa_int_t
fa_lmdb_status_run(fa_lmdb_op_t *op)
{
    fa_lmdb_read_op_t  *r = (fa_lmdb_read_op_t *) op;
    fa_lmdb_box_rec_t   box;
    uint64_t            user_id, id;
    MDB_txn            *txn;
    fa_int_t            rc;

    if (fa_lmdb_read_begin(op->lm, &txn) != FA_OK) {
        return FA_ERROR;
    }
    rc = fa_lmdb_box_lookup(op->lm, txn, &r->user, &r->name, &user_id, &id, &box);
    if (rc == FA_OK) {
        rc = fa_lmdb_status_fill(op->lm, txn, id, &box, r->pool, &r->status);
    }
    fa_lmdb_read_end(op->lm);
    return rc;
}

static void
fa_lmdb_status_deliver(fa_lmdb_op_t *op)
{
    fa_lmdb_read_op_t  *r = (fa_lmdb_read_op_t *) op;

    ((fa_storage_status_pt) r->cb)(r->data, op->rc, op->rc == FA_OK ? &r->status : NULL);
}

/* the status lives in the op: the caller copies what it keeps in the callback */
fa_int_t
fa_lmdb_mailbox_status(fa_storage_t *st, const fa_str_t *user, const fa_str_t *name,
    fa_storage_status_pt cb, void *data)
{
    fa_lmdb_read_op_t  *r;

    if (!fa_lmdb_user_valid(user) || fa_storage_mailbox_name_valid(name) != FA_OK) {
        return FA_STORAGE_INVALID;
    }
    r = fa_lmdb_read_op(st, user, name, NULL, (fa_lmdb_fn_pt) cb, data);
    if (r == NULL) {
        return FA_ERROR;
    }
    r->op.run = fa_lmdb_status_run;
    r->op.deliver = fa_lmdb_status_deliver;
    return fa_lmdb_read_start(&r->op, &r->user);
}

static fa_int_t
fa_lmdb_quota_run(fa_lmdb_op_t *op)
{
    fa_lmdb_read_op_t   *r = (fa_lmdb_read_op_t *) op;
    fa_lmdb_user_rec_t   u;
    MDB_txn             *txn;
    fa_int_t             rc;

    if (fa_lmdb_read_begin(op->lm, &txn) != FA_OK) {
        return FA_ERROR;
    }
    rc = fa_lmdb_user_get(op->lm, txn, &r->user, &u);
    fa_lmdb_read_end(op->lm);
    if (rc == FA_STORAGE_NOTFOUND) {
        memset(&u, 0, sizeof(u));          /* nothing stored, no limits set */
    } else if (rc != FA_OK) {
        return rc == FA_LMDB_FAILED ? FA_ERROR : rc;
    }
    r->quota.bytes_used = u.bytes_used;
    r->quota.bytes_limit = u.bytes_limit;
    r->quota.messages_used = u.messages_used;
    r->quota.messages_limit = u.messages_limit;
    return FA_OK;
}

static void
fa_lmdb_quota_deliver(fa_lmdb_op_t *op)
{
    fa_lmdb_read_op_t  *r = (fa_lmdb_read_op_t *) op;

    ((fa_storage_quota_pt) r->cb)(r->data, op->rc, op->rc == FA_OK ? &r->quota : NULL);
}

fa_int_t
fa_lmdb_quota_get(fa_storage_t *st, const fa_str_t *user, fa_storage_quota_pt cb,
    void *data)
{
    fa_lmdb_read_op_t  *r;

    if (!fa_lmdb_user_valid(user)) {
        return FA_STORAGE_INVALID;
    }
    r = fa_lmdb_read_op(st, user, NULL, NULL, (fa_lmdb_fn_pt) cb, data);
    if (r == NULL) {
        return FA_ERROR;
    }
    r->op.run = fa_lmdb_quota_run;
    r->op.deliver = fa_lmdb_quota_deliver;
    return fa_lmdb_read_start(&r->op, &r->user);
}

/* ---- writes that answer "done" ---- */

static void
fa_lmdb_ns_deliver(fa_lmdb_op_t *op)
{
    fa_lmdb_ns_op_t  *ns = (fa_lmdb_ns_op_t *) op;

    ns->cb(ns->data, op->rc);
}

/* USER, NAME and TO (both optional) already validated */
fa_lmdb_ns_op_t *
fa_lmdb_ns_op(fa_storage_t *st, const fa_str_t *user, const fa_str_t *name,
    const fa_str_t *to, fa_storage_done_pt cb, void *data)
{
    fa_lmdb_ns_op_t  *ns;
    fa_str_t          u, n = fa_null_string;
    size_t            extra = to ? to->len + 1 : 0;

    ns = (fa_lmdb_ns_op_t *) fa_lmdb_op_names(st->data, sizeof(*ns) + extra, user, name,
                                              &u, &n);
    if (ns == NULL) {
        return NULL;
    }
    ns->user = u;
    ns->name = n;
    if (to) {
        fa_lmdb_name_norm(to, (u_char *) ns + sizeof(*ns), &ns->to);
    }
    ns->cb = cb;
    ns->data = data;
    ns->op.deliver = fa_lmdb_ns_deliver;
    return ns;
}

static fa_int_t
fa_lmdb_create_apply(fa_lmdb_op_t *op, MDB_txn *txn)
{
    fa_lmdb_ns_op_t     *ns = (fa_lmdb_ns_op_t *) op;
    fa_lmdb_user_rec_t   u;
    fa_lmdb_name_rec_t   n;
    uint64_t             id;
    fa_int_t             rc;

    rc = fa_lmdb_user_ensure(op->lm, txn, &ns->user, &u);
    if (rc == FA_OK) {
        rc = fa_lmdb_name_get(op->lm, txn, u.id, &ns->name, &n);
    }
    if (rc == FA_OK && !(n.flags & FA_LMDB_BOX_NOSELECT)) {
        return FA_STORAGE_EXISTS;
    }
    if (rc == FA_STORAGE_NOTFOUND) {
        n.flags = 0;
    } else if (rc != FA_OK) {
        return rc;
    }
    /* a \Noselect name left by a delete becomes a mailbox again */
    rc = fa_lmdb_parents_create(op->lm, txn, &ns->user, &u, &ns->name);
    if (rc == FA_OK) {
        rc = fa_lmdb_box_create(op->lm, txn, &ns->user, &u, &ns->name, ns->special_use,
                                n.flags & FA_LMDB_BOX_SUBSCRIBED, &id);
    }
    return rc;
}

fa_int_t
fa_lmdb_mailbox_create(fa_storage_t *st, const fa_str_t *user, const fa_str_t *name,
    uint32_t special_use, fa_storage_done_pt cb, void *data)
{
    fa_lmdb_ns_op_t  *ns;

    if (!fa_lmdb_user_valid(user) || fa_storage_mailbox_name_valid(name) != FA_OK
        || (special_use & ~(uint32_t) 0x7f))
    {
        return FA_STORAGE_INVALID;
    }
    ns = fa_lmdb_ns_op(st, user, name, NULL, cb, data);
    if (ns == NULL) {
        return FA_ERROR;
    }
    ns->special_use = special_use;
    ns->op.apply = fa_lmdb_create_apply;
    ns->op.grows = 1;
    return fa_lmdb_op_submit(&ns->op);
}

static fa_int_t
fa_lmdb_subscribe_apply(fa_lmdb_op_t *op, MDB_txn *txn)
{
    fa_lmdb_ns_op_t     *ns = (fa_lmdb_ns_op_t *) op;
    fa_lmdb_user_rec_t   u;
    fa_lmdb_name_rec_t   n;
    fa_int_t             rc;

    rc = fa_lmdb_user_ensure(op->lm, txn, &ns->user, &u);
    if (rc == FA_OK) {
        rc = fa_lmdb_name_get(op->lm, txn, u.id, &ns->name, &n);
    }
    if (rc != FA_OK) {
        return rc == FA_STORAGE_INVALID ? FA_STORAGE_NOTFOUND : rc;
    }
    if (ns->on) {
        n.flags |= FA_LMDB_BOX_SUBSCRIBED;
    } else {
        n.flags &= ~FA_LMDB_BOX_SUBSCRIBED;
    }
    return fa_lmdb_name_put(op->lm, txn, u.id, &ns->name, &n);
}

fa_int_t
fa_lmdb_mailbox_subscribe(fa_storage_t *st, const fa_str_t *user, const fa_str_t *name,
    int on, fa_storage_done_pt cb, void *data)
{
    fa_lmdb_ns_op_t  *ns;

    if (!fa_lmdb_user_valid(user) || fa_storage_mailbox_name_valid(name) != FA_OK) {
        return FA_STORAGE_INVALID;
    }
    ns = fa_lmdb_ns_op(st, user, name, NULL, cb, data);
    if (ns == NULL) {
        return FA_ERROR;
    }
    ns->on = on;
    ns->op.apply = fa_lmdb_subscribe_apply;
    return fa_lmdb_op_submit(&ns->op);
}

static fa_int_t
fa_lmdb_quota_apply(fa_lmdb_op_t *op, MDB_txn *txn)
{
    fa_lmdb_ns_op_t     *ns = (fa_lmdb_ns_op_t *) op;
    fa_lmdb_user_rec_t   u;
    fa_int_t             rc;

    rc = fa_lmdb_user_ensure(op->lm, txn, &ns->user, &u);
    if (rc != FA_OK) {
        return rc;
    }
    u.bytes_limit = ns->limits.bytes_limit;
    u.messages_limit = ns->limits.messages_limit;
    return fa_lmdb_user_put(op->lm, txn, &ns->user, &u);
}

/* the limits only; usage is the store's own count */
fa_int_t
fa_lmdb_quota_set(fa_storage_t *st, const fa_str_t *user, const fa_quota_t *limits,
    fa_storage_done_pt cb, void *data)
{
    fa_lmdb_ns_op_t  *ns;

    if (!fa_lmdb_user_valid(user)) {
        return FA_STORAGE_INVALID;
    }
    ns = fa_lmdb_ns_op(st, user, NULL, NULL, cb, data);
    if (ns == NULL) {
        return FA_ERROR;
    }
    ns->limits = *limits;
    ns->op.apply = fa_lmdb_quota_apply;
    return fa_lmdb_op_submit(&ns->op);
}
