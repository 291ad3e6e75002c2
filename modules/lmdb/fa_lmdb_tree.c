/*
 * Namespace operations on subtrees: delete and rename, and the parents
 * both keep consistent.
 *
 * IMAP rules (RFC 3501, 9051): creating or renaming to "a/b/c" creates the
 * missing "a" and "a/b" as mailboxes; deleting a mailbox that has children
 * keeps its name as \Noselect (its messages go), deleting a \Noselect name
 * that still has children is refused, and a \Noselect name whose last child
 * goes is removed too.  Renaming moves the whole subtree; renaming INBOX
 * moves its messages to the new name and leaves an empty INBOX (a new
 * mailbox, with a new UIDVALIDITY), its children staying where they are.
 */

#include "fa_lmdb.h"

/* every name of a user, in key order */
fa_int_t
fa_lmdb_names_each(fa_lmdb_t *lm, MDB_txn *txn, uint64_t user, fa_lmdb_name_each_pt fn,
    void *ctx)
{
    fa_lmdb_name_rec_t   rec;
    MDB_cursor          *c;
    MDB_val              key, val;
    u_char               kbuf[8];
    fa_int_t             r = FA_OK;
    int                  rc;

    rc = mdb_cursor_open(txn, lm->dbi[FA_LMDB_NAMES], &c);
    if (rc != 0) {
        fa_lmdb_error(lm, rc, "mdb_cursor_open()");
        return FA_LMDB_FAILED;
    }
    key = fa_lmdb_key_id(kbuf, user);
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && r == FA_OK) {
        if (key.mv_size < 8 || fa_lmdb_get64(key.mv_data) != user) {
            break;
        }
        if (val.mv_size < sizeof(rec)) {
            r = FA_STORAGE_CORRUPT;
            break;
        }
        memcpy(&rec, val.mv_data, sizeof(rec));
        fa_str_t name = { val.mv_size - sizeof(rec), (u_char *) val.mv_data + sizeof(rec) };
        r = fn(ctx, &name, &rec);
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        fa_lmdb_error(lm, rc, "mdb_cursor_get()");
        return FA_LMDB_FAILED;
    }
    return r;
}

static int
fa_lmdb_is_below(const fa_str_t *name, const fa_str_t *parent)
{
    return name->len > parent->len + 1 && name->data[parent->len] == FA_MAILBOX_SEPARATOR
           && memcmp(name->data, parent->data, parent->len) == 0;
}

static fa_int_t
fa_lmdb_child_found(void *ctx, const fa_str_t *name, const fa_lmdb_name_rec_t *rec)
{
    (void) rec;
    return fa_lmdb_is_below(name, ctx) ? FA_DONE : FA_OK;
}

/* 1, 0, or an error */
static fa_int_t
fa_lmdb_has_children(fa_lmdb_t *lm, MDB_txn *txn, uint64_t user, const fa_str_t *name)
{
    fa_int_t  rc = fa_lmdb_names_each(lm, txn, user, fa_lmdb_child_found, (void *) name);

    return rc == FA_DONE ? 1 : rc;
}

/* "a" and "a/b" for "a/b/c", created as mailboxes when missing */
fa_int_t
fa_lmdb_parents_create(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *username,
    fa_lmdb_user_rec_t *user, const fa_str_t *name)
{
    fa_lmdb_name_rec_t  rec;
    uint64_t            id;
    fa_int_t            rc;

    for (size_t i = 1; i < name->len; i++) {
        if (name->data[i] != FA_MAILBOX_SEPARATOR) {
            continue;
        }
        fa_str_t parent = { i, name->data };
        rc = fa_lmdb_name_get(lm, txn, user->id, &parent, &rec);
        if (rc == FA_STORAGE_NOTFOUND) {
            rc = fa_lmdb_box_create(lm, txn, username, user, &parent, 0, 0, &id);
        }
        if (rc != FA_OK) {
            return rc;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_lmdb_name_del(fa_lmdb_t *lm, MDB_txn *txn, uint64_t user, const fa_str_t *name)
{
    u_char   buf[FA_LMDB_NAME_KEY_SIZE];
    MDB_val  key = fa_lmdb_key_name(buf, user, name);

    return fa_lmdb_del(lm, txn, FA_LMDB_NAMES, &key);
}

/* \Noselect ancestors of NAME left without children go, deepest first */
static fa_int_t
fa_lmdb_parents_prune(fa_lmdb_t *lm, MDB_txn *txn, uint64_t user, const fa_str_t *name)
{
    fa_lmdb_name_rec_t  rec;
    fa_int_t            rc;
    size_t              i = name->len;

    while (i > 0) {
        while (i > 0 && name->data[--i] != FA_MAILBOX_SEPARATOR) { /* void */ }
        if (i == 0) {
            break;
        }
        fa_str_t parent = { i, name->data };
        rc = fa_lmdb_name_get(lm, txn, user, &parent, &rec);
        if (rc == FA_STORAGE_NOTFOUND || (rc == FA_OK && !(rec.flags & FA_LMDB_BOX_NOSELECT))) {
            return FA_OK;
        }
        if (rc == FA_OK) {
            rc = fa_lmdb_has_children(lm, txn, user, &parent);
            if (rc == 1) {
                return FA_OK;
            }
        }
        if (rc == FA_OK) {
            rc = fa_lmdb_name_del(lm, txn, user, &parent);
        }
        if (rc != FA_OK) {
            return rc;
        }
    }
    return FA_OK;
}

/* ---- delete ---- */

static fa_int_t
fa_lmdb_delete_apply(fa_lmdb_op_t *op, MDB_txn *txn)
{
    fa_lmdb_ns_op_t     *ns = (fa_lmdb_ns_op_t *) op;
    fa_lmdb_t           *lm = op->lm;
    fa_lmdb_user_rec_t   u;
    fa_lmdb_name_rec_t   n;
    fa_int_t             rc, children;

    rc = fa_lmdb_user_get(lm, txn, &ns->user, &u);
    if (rc == FA_OK) {
        rc = fa_lmdb_name_get(lm, txn, u.id, &ns->name, &n);
    }
    if (rc != FA_OK) {
        return rc == FA_STORAGE_INVALID ? FA_STORAGE_NOTFOUND : rc;
    }
    children = fa_lmdb_has_children(lm, txn, u.id, &ns->name);
    if (children < 0) {
        return children;
    }
    if (n.flags & FA_LMDB_BOX_NOSELECT) {
        if (children) {
            return FA_STORAGE_INVALID;     /* RFC 3501: a \Noselect with children stays */
        }
    } else {
        rc = fa_lmdb_box_drop(op, txn, n.id, &u);
        if (rc == FA_OK) {
            rc = fa_lmdb_user_put(lm, txn, &ns->user, &u);
        }
        if (rc != FA_OK) {
            return rc;
        }
        fa_lmdb_op_changed(op, n.id);
    }
    if (children) {
        n.id = 0;
        n.special_use = 0;
        n.flags = FA_LMDB_BOX_NOSELECT | (n.flags & FA_LMDB_BOX_SUBSCRIBED);
        return fa_lmdb_name_put(lm, txn, u.id, &ns->name, &n);
    }
    rc = fa_lmdb_name_del(lm, txn, u.id, &ns->name);
    return rc == FA_OK ? fa_lmdb_parents_prune(lm, txn, u.id, &ns->name) : rc;
}

fa_int_t
fa_lmdb_mailbox_delete(fa_storage_t *st, const fa_str_t *user, const fa_str_t *name,
    fa_storage_done_pt cb, void *data)
{
    fa_lmdb_ns_op_t  *ns;

    if (fa_storage_mailbox_name_valid(name) != FA_OK || user->len == 0
        || user->len > FA_LMDB_USER_MAX)
    {
        return FA_STORAGE_INVALID;
    }
    if (fa_lmdb_is_inbox(name)) {
        return FA_STORAGE_INVALID;         /* INBOX cannot be deleted */
    }
    ns = fa_lmdb_ns_op(st, user, name, NULL, cb, data);
    if (ns == NULL) {
        return FA_ERROR;
    }
    ns->op.apply = fa_lmdb_delete_apply;
    return fa_lmdb_op_submit(&ns->op);
}

/* ---- rename ---- */

typedef struct {
    fa_str_t             name;            /* malloc'd copy */
    fa_lmdb_name_rec_t   rec;
} fa_lmdb_moved_t;

typedef struct {
    const fa_str_t      *from;
    fa_lmdb_moved_t     *moved;
    fa_uint_t            n, size;
} fa_lmdb_subtree_t;

static fa_int_t
fa_lmdb_subtree_add(void *data, const fa_str_t *name, const fa_lmdb_name_rec_t *rec)
{
    fa_lmdb_subtree_t  *t = data;
    fa_lmdb_moved_t    *m;

    if (!fa_str_equal(name, t->from) && !fa_lmdb_is_below(name, t->from)) {
        return FA_OK;
    }
    if (t->n == t->size) {
        t->size = t->size ? t->size * 2 : 8;
        m = realloc(t->moved, t->size * sizeof(*m));
        if (m == NULL) {
            return FA_LMDB_FAILED;
        }
        t->moved = m;
    }
    m = &t->moved[t->n];
    m->name.data = malloc(name->len);
    if (m->name.data == NULL) {
        return FA_LMDB_FAILED;
    }
    memcpy(m->name.data, name->data, name->len);
    m->name.len = name->len;
    m->rec = *rec;
    t->n++;
    return FA_OK;
}

static void
fa_lmdb_subtree_free(fa_lmdb_subtree_t *t)
{
    for (fa_uint_t i = 0; i < t->n; i++) {
        free(t->moved[i].name.data);
    }
    free(t->moved);
}

/* the new name of a moved one: TO, then what followed FROM */
static fa_int_t
fa_lmdb_moved_name(const fa_str_t *from, const fa_str_t *to, const fa_str_t *old,
    u_char *buf, fa_str_t *out)
{
    size_t  rest = old->len - from->len;

    if (to->len + rest > FA_MAILBOX_NAME_MAX) {
        return FA_STORAGE_INVALID;
    }
    memcpy(buf, to->data, to->len);
    memcpy(buf + to->len, old->data + from->len, rest);
    out->data = buf;
    out->len = to->len + rest;
    return fa_storage_mailbox_name_valid(out);
}

/* no new name may be taken, every new name must be valid */
static fa_int_t
fa_lmdb_rename_check(fa_lmdb_t *lm, MDB_txn *txn, uint64_t user, fa_lmdb_subtree_t *t,
    const fa_str_t *to)
{
    u_char              buf[FA_MAILBOX_NAME_MAX];
    fa_lmdb_name_rec_t  rec;
    fa_str_t            name;
    fa_int_t            rc;

    for (fa_uint_t i = 0; i < t->n; i++) {
        rc = fa_lmdb_moved_name(t->from, to, &t->moved[i].name, buf, &name);
        if (rc == FA_OK) {
            rc = fa_lmdb_name_get(lm, txn, user, &name, &rec);
            rc = rc == FA_OK ? FA_STORAGE_EXISTS : rc == FA_STORAGE_NOTFOUND ? FA_OK : rc;
        }
        if (rc != FA_OK) {
            return rc;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_lmdb_rename_subtree(fa_lmdb_ns_op_t *ns, MDB_txn *txn, fa_lmdb_user_rec_t *u)
{
    fa_lmdb_t          *lm = ns->op.lm;
    fa_lmdb_subtree_t   t = { &ns->name, NULL, 0, 0 };
    u_char              buf[FA_MAILBOX_NAME_MAX];
    fa_str_t            name;
    fa_int_t            rc;

    if (fa_lmdb_is_below(&ns->to, &ns->name)) {
        return FA_STORAGE_INVALID;         /* into its own subtree */
    }
    rc = fa_lmdb_names_each(lm, txn, u->id, fa_lmdb_subtree_add, &t);
    if (rc == FA_OK) {
        rc = fa_lmdb_rename_check(lm, txn, u->id, &t, &ns->to);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_parents_create(lm, txn, &ns->user, u, &ns->to);
    }
    for (fa_uint_t i = 0; rc == FA_OK && i < t.n; i++) {
        fa_lmdb_moved_name(&ns->name, &ns->to, &t.moved[i].name, buf, &name);
        rc = fa_lmdb_name_del(lm, txn, u->id, &t.moved[i].name);
        if (rc == FA_OK) {
            rc = fa_lmdb_name_put(lm, txn, u->id, &name, &t.moved[i].rec);
        }
    }
    fa_lmdb_subtree_free(&t);
    return rc == FA_OK ? fa_lmdb_parents_prune(lm, txn, u->id, &ns->name) : rc;
}

/* INBOX's messages (its id) go to the new name; a new, empty INBOX replaces it */
static fa_int_t
fa_lmdb_rename_inbox(fa_lmdb_ns_op_t *ns, MDB_txn *txn, fa_lmdb_user_rec_t *u,
    fa_lmdb_name_rec_t *inbox)
{
    fa_lmdb_t           *lm = ns->op.lm;
    fa_lmdb_name_rec_t   moved = *inbox;
    uint64_t             id;
    fa_int_t             rc;

    moved.flags &= ~FA_LMDB_BOX_SUBSCRIBED;
    rc = fa_lmdb_parents_create(lm, txn, &ns->user, u, &ns->to);
    if (rc == FA_OK) {
        rc = fa_lmdb_name_put(lm, txn, u->id, &ns->to, &moved);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_box_create(lm, txn, &ns->user, u, &ns->name, inbox->special_use,
                                inbox->flags, &id);
    }
    return rc;
}

static fa_int_t
fa_lmdb_rename_apply(fa_lmdb_op_t *op, MDB_txn *txn)
{
    fa_lmdb_ns_op_t     *ns = (fa_lmdb_ns_op_t *) op;
    fa_lmdb_user_rec_t   u;
    fa_lmdb_name_rec_t   from, to;
    fa_int_t             rc;

    rc = fa_lmdb_user_ensure(op->lm, txn, &ns->user, &u);
    if (rc == FA_OK) {
        rc = fa_lmdb_name_get(op->lm, txn, u.id, &ns->name, &from);
    }
    if (rc != FA_OK) {
        return rc == FA_STORAGE_INVALID ? FA_STORAGE_NOTFOUND : rc;
    }
    rc = fa_lmdb_name_get(op->lm, txn, u.id, &ns->to, &to);
    if (rc != FA_STORAGE_NOTFOUND) {
        return rc == FA_OK ? FA_STORAGE_EXISTS : rc;
    }
    if (fa_lmdb_is_inbox(&ns->name)) {
        return fa_lmdb_rename_inbox(ns, txn, &u, &from);
    }
    return fa_lmdb_rename_subtree(ns, txn, &u);
}

fa_int_t
fa_lmdb_mailbox_rename(fa_storage_t *st, const fa_str_t *user, const fa_str_t *from,
    const fa_str_t *to, fa_storage_done_pt cb, void *data)
{
    fa_lmdb_ns_op_t  *ns;

    if (fa_storage_mailbox_name_valid(from) != FA_OK
        || fa_storage_mailbox_name_valid(to) != FA_OK || user->len == 0
        || user->len > FA_LMDB_USER_MAX)
    {
        return FA_STORAGE_INVALID;
    }
    if (fa_lmdb_is_inbox(to)) {
        return FA_STORAGE_EXISTS;          /* INBOX always exists */
    }
    ns = fa_lmdb_ns_op(st, user, from, to, cb, data);
    if (ns == NULL) {
        return FA_ERROR;
    }
    ns->op.apply = fa_lmdb_rename_apply;
    return fa_lmdb_op_submit(&ns->op);
}
