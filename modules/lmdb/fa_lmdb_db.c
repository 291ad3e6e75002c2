/*
 * Record access shared by the loop's reads and the writer's operations:
 * keys, users, mailbox names and states, keyword tables, body references,
 * messages.  Functions that write return FA_LMDB_RETRY when the map is full
 * and FA_LMDB_FAILED on any other LMDB error (logged): either way the
 * caller's transaction is lost and the writer replays or drops the op.
 */

#include "fa_lmdb.h"

/* ---- keys ---- */

static void
fa_lmdb_put64(u_char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (u_char) v;
        v >>= 8;
    }
}

uint64_t
fa_lmdb_get64(const u_char *p)
{
    uint64_t  v = 0;

    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

uint32_t
fa_lmdb_get32(const u_char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

MDB_val
fa_lmdb_key_id(u_char *buf, uint64_t id)
{
    MDB_val  k = { 8, buf };

    fa_lmdb_put64(buf, id);
    return k;
}

MDB_val
fa_lmdb_key_uid(u_char *buf, uint64_t box, uint32_t uid)
{
    MDB_val  k = { 12, buf };

    fa_lmdb_put64(buf, box);
    buf[8] = (u_char) (uid >> 24);
    buf[9] = (u_char) (uid >> 16);
    buf[10] = (u_char) (uid >> 8);
    buf[11] = (u_char) uid;
    return k;
}

MDB_val
fa_lmdb_key_seq(u_char *buf, uint64_t box, uint64_t seq)
{
    MDB_val  k = { 16, buf };

    fa_lmdb_put64(buf, box);
    fa_lmdb_put64(buf + 8, seq);
    return k;
}

static uint64_t
fa_lmdb_fnv(const u_char *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ULL;
    }
    return h;
}

/*
 * User id, then the name.  LMDB keys stop at 511 bytes and names may have
 * 1024: a longer name is keyed by its first FA_LMDB_NAME_KEY_MAX bytes, a
 * NUL (never in a valid name, so no short name has such a key) and a hash
 * of the rest; the record holds the full name, which a lookup compares.
 */
MDB_val
fa_lmdb_key_name(u_char *buf, uint64_t user, const fa_str_t *name)
{
    MDB_val  k;

    fa_lmdb_put64(buf, user);
    if (name->len <= FA_LMDB_NAME_KEY_MAX) {
        memcpy(buf + 8, name->data, name->len);
        k.mv_size = 8 + name->len;
    } else {
        memcpy(buf + 8, name->data, FA_LMDB_NAME_KEY_MAX);
        buf[8 + FA_LMDB_NAME_KEY_MAX] = '\0';
        fa_lmdb_put64(buf + 9 + FA_LMDB_NAME_KEY_MAX,
                      fa_lmdb_fnv(name->data, name->len, 0xcbf29ce484222325ULL));
        fa_lmdb_put64(buf + 17 + FA_LMDB_NAME_KEY_MAX,
                      fa_lmdb_fnv(name->data, name->len, 0x84222325cbf29ce4ULL));
        k.mv_size = FA_LMDB_NAME_KEY_SIZE;
    }
    k.mv_data = buf;
    return k;
}

/* ---- generic access ---- */

fa_int_t
fa_lmdb_get(fa_lmdb_t *lm, MDB_txn *txn, int db, MDB_val *key, MDB_val *val)
{
    int  rc = mdb_get(txn, lm->dbi[db], key, val);

    if (rc == 0) {
        return FA_OK;
    }
    if (rc == MDB_NOTFOUND) {
        return FA_STORAGE_NOTFOUND;
    }
    fa_lmdb_error(lm, rc, "mdb_get()");
    return FA_LMDB_FAILED;
}

static fa_int_t
fa_lmdb_write_rc(fa_lmdb_t *lm, int rc, const char *what)
{
    if (rc == 0) {
        return FA_OK;
    }
    if (rc == MDB_MAP_FULL) {
        return FA_LMDB_RETRY;
    }
    fa_lmdb_error(lm, rc, what);
    return FA_LMDB_FAILED;
}

fa_int_t
fa_lmdb_put(fa_lmdb_t *lm, MDB_txn *txn, int db, MDB_val *key, MDB_val *val)
{
    return fa_lmdb_write_rc(lm, mdb_put(txn, lm->dbi[db], key, val, 0), "mdb_put()");
}

fa_int_t
fa_lmdb_del(fa_lmdb_t *lm, MDB_txn *txn, int db, MDB_val *key)
{
    int  rc = mdb_del(txn, lm->dbi[db], key, NULL);

    return rc == MDB_NOTFOUND ? FA_OK : fa_lmdb_write_rc(lm, rc, "mdb_del()");
}

/* a fixed record: a short value is a damaged store, never a crash */
static fa_int_t
fa_lmdb_get_rec(fa_lmdb_t *lm, MDB_txn *txn, int db, MDB_val *key, void *rec, size_t size)
{
    MDB_val   val;
    fa_int_t  rc = fa_lmdb_get(lm, txn, db, key, &val);

    if (rc != FA_OK) {
        return rc;
    }
    if (val.mv_size < size) {
        fa_log_error(FA_LOG_CRIT, lm->log, 0, "lmdb storage \"%s\": short record (%zu "
                     "bytes) in database %d", lm->path, val.mv_size, db);
        return FA_STORAGE_CORRUPT;
    }
    memcpy(rec, val.mv_data, size);
    return FA_OK;
}

fa_int_t
fa_lmdb_counter_next(fa_lmdb_t *lm, MDB_txn *txn, const char *name, uint64_t *v)
{
    MDB_val   key = { strlen(name), (void *) name }, val;
    uint64_t  n = 0;
    fa_int_t  rc = fa_lmdb_get(lm, txn, FA_LMDB_META, &key, &val);

    if (rc == FA_OK && val.mv_size == sizeof(n)) {
        memcpy(&n, val.mv_data, sizeof(n));
    } else if (rc != FA_OK && rc != FA_STORAGE_NOTFOUND) {
        return rc;
    }
    *v = ++n;
    val.mv_size = sizeof(n);
    val.mv_data = &n;
    return fa_lmdb_put(lm, txn, FA_LMDB_META, &key, &val);
}

/* ---- users ---- */

static fa_int_t
fa_lmdb_user_key(const fa_str_t *user, MDB_val *key)
{
    if (user->len == 0 || user->len > FA_LMDB_USER_MAX || memchr(user->data, 0, user->len)) {
        return FA_STORAGE_INVALID;
    }
    key->mv_size = user->len;
    key->mv_data = user->data;
    return FA_OK;
}

fa_int_t
fa_lmdb_user_get(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *user, fa_lmdb_user_rec_t *rec)
{
    MDB_val  key;

    if (fa_lmdb_user_key(user, &key) != FA_OK) {
        return FA_STORAGE_INVALID;
    }
    return fa_lmdb_get_rec(lm, txn, FA_LMDB_USERS, &key, rec, sizeof(*rec));
}

fa_int_t
fa_lmdb_user_put(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *user, fa_lmdb_user_rec_t *rec)
{
    MDB_val  key, val = { sizeof(*rec), rec };

    if (fa_lmdb_user_key(user, &key) != FA_OK) {
        return FA_STORAGE_INVALID;
    }
    return fa_lmdb_put(lm, txn, FA_LMDB_USERS, &key, &val);
}

/* a user's namespace is made on first use, with an INBOX */
fa_int_t
fa_lmdb_user_ensure(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *user,
    fa_lmdb_user_rec_t *rec)
{
    fa_str_t  inbox = fa_string("INBOX");
    uint64_t  box;
    fa_int_t  rc = fa_lmdb_user_get(lm, txn, user, rec);

    if (rc != FA_STORAGE_NOTFOUND) {
        return rc;
    }
    memset(rec, 0, sizeof(*rec));
    rec->version = FA_LMDB_RECORD_V1;
    rc = fa_lmdb_counter_next(lm, txn, "next_user", &rec->id);
    if (rc == FA_OK) {
        rc = fa_lmdb_box_create(lm, txn, user, rec, &inbox, 0, FA_LMDB_BOX_SUBSCRIBED, &box);
    }
    return rc;
}

/* ---- mailbox names and states ---- */

fa_int_t
fa_lmdb_name_get(fa_lmdb_t *lm, MDB_txn *txn, uint64_t user, const fa_str_t *name,
    fa_lmdb_name_rec_t *rec)
{
    u_char    buf[FA_LMDB_NAME_KEY_SIZE];
    MDB_val   key = fa_lmdb_key_name(buf, user, name), val;
    fa_int_t  rc = fa_lmdb_get(lm, txn, FA_LMDB_NAMES, &key, &val);

    if (rc != FA_OK) {
        return rc;
    }
    if (val.mv_size < sizeof(*rec)) {
        return FA_STORAGE_CORRUPT;
    }
    if (val.mv_size - sizeof(*rec) != name->len
        || memcmp((u_char *) val.mv_data + sizeof(*rec), name->data, name->len) != 0)
    {
        return FA_STORAGE_INVALID;         /* another long name with the same key */
    }
    memcpy(rec, val.mv_data, sizeof(*rec));
    return FA_OK;
}

fa_int_t
fa_lmdb_name_put(fa_lmdb_t *lm, MDB_txn *txn, uint64_t user, const fa_str_t *name,
    fa_lmdb_name_rec_t *rec)
{
    u_char    buf[FA_LMDB_NAME_KEY_SIZE];
    MDB_val   key = fa_lmdb_key_name(buf, user, name), val;
    int       rc;

    val.mv_size = sizeof(*rec) + name->len;
    rc = mdb_put(txn, lm->dbi[FA_LMDB_NAMES], &key, &val, MDB_RESERVE);
    if (rc == 0) {
        memcpy(val.mv_data, rec, sizeof(*rec));
        memcpy((u_char *) val.mv_data + sizeof(*rec), name->data, name->len);
    }
    return fa_lmdb_write_rc(lm, rc, "mdb_put()");
}

fa_int_t
fa_lmdb_box_get(fa_lmdb_t *lm, MDB_txn *txn, uint64_t id, fa_lmdb_box_rec_t *rec)
{
    u_char   buf[8];
    MDB_val  key = fa_lmdb_key_id(buf, id);

    return fa_lmdb_get_rec(lm, txn, FA_LMDB_BOXES, &key, rec, sizeof(*rec));
}

fa_int_t
fa_lmdb_box_put(fa_lmdb_t *lm, MDB_txn *txn, uint64_t id, fa_lmdb_box_rec_t *rec)
{
    u_char   buf[8];
    MDB_val  key = fa_lmdb_key_id(buf, id), val = { sizeof(*rec), rec };

    return fa_lmdb_put(lm, txn, FA_LMDB_BOXES, &key, &val);
}

/* a selectable mailbox by user and name; NOTFOUND for a \Noselect one */
fa_int_t
fa_lmdb_box_find(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *user, const fa_str_t *name,
    uint64_t *user_id, uint64_t *box_id, fa_lmdb_box_rec_t *box)
{
    fa_lmdb_user_rec_t  u;
    fa_lmdb_name_rec_t  n;
    fa_int_t            rc;

    rc = fa_lmdb_user_get(lm, txn, user, &u);
    if (rc == FA_OK) {
        rc = fa_lmdb_name_get(lm, txn, u.id, name, &n);
    }
    if (rc == FA_OK && (n.flags & FA_LMDB_BOX_NOSELECT)) {
        rc = FA_STORAGE_NOTFOUND;
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_box_get(lm, txn, n.id, box);
    }
    if (rc == FA_STORAGE_INVALID) {
        rc = FA_STORAGE_NOTFOUND;          /* a bad user name has no mailboxes */
    }
    if (rc == FA_OK) {
        *user_id = u.id;
        *box_id = n.id;
    }
    return rc;
}

/*
 * A new mailbox: a new id, and a UIDVALIDITY from the clock but always
 * above the user's last one, so a name deleted and created again within a
 * second still tells clients that their cached UIDs are void.
 */
fa_int_t
fa_lmdb_box_create(fa_lmdb_t *lm, MDB_txn *txn, const fa_str_t *username,
    fa_lmdb_user_rec_t *user, const fa_str_t *name, uint32_t special_use, uint32_t flags,
    uint64_t *id)
{
    fa_lmdb_box_rec_t   box;
    fa_lmdb_name_rec_t  n;
    uint32_t            now = (uint32_t) time(NULL);
    fa_int_t            rc;

    rc = fa_lmdb_counter_next(lm, txn, "next_box", id);
    if (rc != FA_OK) {
        return rc;
    }
    memset(&box, 0, sizeof(box));
    box.version = FA_LMDB_RECORD_V1;
    box.uidvalidity = now > user->last_uidvalidity ? now : user->last_uidvalidity + 1;
    box.uidnext = 1;
    box.highestmodseq = 1;
    box.user_id = user->id;
    user->last_uidvalidity = box.uidvalidity;

    memset(&n, 0, sizeof(n));
    n.id = *id;
    n.special_use = special_use;
    n.flags = flags & ~FA_LMDB_BOX_NOSELECT;

    rc = fa_lmdb_box_put(lm, txn, *id, &box);
    if (rc == FA_OK) {
        rc = fa_lmdb_name_put(lm, txn, user->id, name, &n);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_user_put(lm, txn, username, user);
    }
    return rc;
}

void
fa_lmdb_box_count(fa_lmdb_box_rec_t *box, uint32_t flags, uint64_t size, int sign)
{
    box->messages += sign;
    box->unseen += (flags & FA_FLAG_SEEN) ? 0 : sign;
    box->deleted += (flags & FA_FLAG_DELETED) ? sign : 0;
    box->size += sign > 0 ? size : -size;
}

/* ---- keywords ---- */

static void
fa_lmdb_keywords_parse(fa_lmdb_keywords_t *kw)
{
    u_char  *p = kw->text.data, *end = p + kw->text.len, *nul;

    kw->n = 0;
    while (p < end && kw->n < FA_LMDB_KEYWORDS_MAX) {
        nul = memchr(p, '\0', (size_t) (end - p));
        nul = nul ? nul : end;
        kw->names[kw->n].data = p;
        kw->names[kw->n].len = (size_t) (nul - p);
        kw->n++;
        p = nul + 1;
    }
}

fa_int_t
fa_lmdb_keywords_get(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, fa_lmdb_keywords_t *kw)
{
    u_char    buf[8];
    MDB_val   key = fa_lmdb_key_id(buf, box), val;
    fa_int_t  rc = fa_lmdb_get(lm, txn, FA_LMDB_KEYWORDS, &key, &val);

    memset(kw, 0, sizeof(*kw));
    if (rc == FA_STORAGE_NOTFOUND) {
        return FA_OK;
    }
    if (rc != FA_OK) {
        return rc;
    }
    kw->text.data = fa_alloc(val.mv_size + 1, lm->log);
    if (kw->text.data == NULL) {
        return FA_LMDB_FAILED;
    }
    memcpy(kw->text.data, val.mv_data, val.mv_size);
    kw->text.len = val.mv_size;
    fa_lmdb_keywords_parse(kw);
    return FA_OK;
}

fa_int_t
fa_lmdb_keywords_put(fa_lmdb_t *lm, MDB_txn *txn, uint64_t box, fa_lmdb_keywords_t *kw)
{
    u_char   buf[8];
    MDB_val  key = fa_lmdb_key_id(buf, box), val = { kw->text.len, kw->text.data };

    return kw->dirty ? fa_lmdb_put(lm, txn, FA_LMDB_KEYWORDS, &key, &val) : FA_OK;
}

void
fa_lmdb_keywords_free(fa_lmdb_keywords_t *kw)
{
    free(kw->text.data);
    memset(kw, 0, sizeof(*kw));
}

/* the id of a keyword (case-insensitive); -1 unknown, -2 the table is full */
fa_int_t
fa_lmdb_keyword_id(fa_lmdb_keywords_t *kw, const fa_str_t *name, int add)
{
    u_char  *text;
    size_t   len;

    for (fa_uint_t i = 0; i < kw->n; i++) {
        if (kw->names[i].len == name->len
            && strncasecmp((char *) kw->names[i].data, (char *) name->data, name->len) == 0)
        {
            return (fa_int_t) i;
        }
    }
    if (!add) {
        return -1;
    }
    if (kw->n == FA_LMDB_KEYWORDS_MAX) {
        return -2;
    }
    len = kw->text.len + (kw->n ? 1 : 0) + name->len;
    text = malloc(len + 1);
    if (text == NULL) {
        return -2;
    }
    if (kw->text.len) {
        memcpy(text, kw->text.data, kw->text.len);
        text[kw->text.len] = '\0';
    }
    memcpy(text + len - name->len, name->data, name->len);
    free(kw->text.data);
    kw->text.data = text;
    kw->text.len = len;
    kw->dirty = 1;
    fa_lmdb_keywords_parse(kw);
    return (fa_int_t) kw->n - 1;
}

fa_int_t
fa_lmdb_keywords_copy(fa_lmdb_keywords_t *kw, fa_pool_t *pool, fa_str_t **names,
    fa_uint_t *n)
{
    *names = NULL;
    *n = kw->n;
    if (kw->n == 0) {
        return FA_OK;
    }
    *names = fa_palloc(pool, kw->n * sizeof(fa_str_t));
    if (*names == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < kw->n; i++) {
        (*names)[i].len = kw->names[i].len;
        (*names)[i].data = fa_pstrdup(pool, &kw->names[i]);
        if ((*names)[i].data == NULL) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

/* ---- bodies: shared by copies, counted ---- */

fa_int_t
fa_lmdb_body_ref(fa_lmdb_op_t *op, MDB_txn *txn, const u_char *id, int delta)
{
    fa_lmdb_t          *lm = op->lm;
    fa_lmdb_ref_rec_t   ref;
    MDB_val             key = { FA_LMDB_BODY_ID_LEN, (void *) id }, val;
    fa_int_t            rc;

    rc = fa_lmdb_get_rec(lm, txn, FA_LMDB_REFS, &key, &ref, sizeof(ref));
    if (rc == FA_STORAGE_NOTFOUND && delta < 0) {
        return FA_OK;                       /* already gone: nothing to release */
    }
    if (rc != FA_OK) {
        return rc == FA_STORAGE_NOTFOUND ? FA_STORAGE_CORRUPT : rc;
    }
    if (delta > 0 || ref.refs > 1) {
        ref.refs += delta;
        val.mv_size = sizeof(ref);
        val.mv_data = &ref;
        return fa_lmdb_put(lm, txn, FA_LMDB_REFS, &key, &val);
    }
    rc = fa_lmdb_del(lm, txn, FA_LMDB_REFS, &key);
    if (rc == FA_OK && ref.kind == FA_LMDB_BODY_INLINE) {
        rc = fa_lmdb_del(lm, txn, FA_LMDB_BODIES, &key);
    } else if (rc == FA_OK) {
        rc = fa_lmdb_op_unlink(op, id, 1);  /* the file goes once this commits */
    }
    return rc;
}
