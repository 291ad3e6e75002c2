/*
 * Streaming appends.
 *
 * A body of at most inline_max bytes is buffered (that bound is the memory
 * an append costs) and stored inline in the "bodies" database, so one
 * commit makes a whole batch of small messages durable.  A body that grows
 * past inline_max moves to a file, blobs/tmp/PID-ID, as it arrives: a 50 MB
 * message costs the file and no memory.  At commit the writer thread
 * fdatasyncs the file and renames it to blobs/ID (then fsyncs blobs/ once
 * for the batch) before the transaction that references it commits: a
 * crash leaves at worst an unreferenced file, never a dangling index entry.
 *
 * append_commit always consumes the append, whatever it returns; after an
 * error from append_write the caller aborts (or commits, which fails).
 */

#include "fa_lmdb.h"
#include "fa_mime.h"
#include <dirent.h>
#include <sys/random.h>

#define FA_LMDB_GUID_MAX     255
#define FA_LMDB_KEYWORD_MAX  255

struct fa_append_s {
    fa_lmdb_op_t           op;            /* the commit, once committed */
    fa_storage_append_pt   cb;
    void                  *data;
    fa_str_t               user;
    fa_str_t               mailbox;
    fa_str_t               guid;
    /*
     * The record's strings, in fa_lmdb_msg_rec_t order: GUID, ENVELOPE,
     * BODYSTRUCTURE, BODY, the part table, cached headers.  The MIME parser
     * is fed by append_write as the bytes stream past, and commit renders
     * the others from its tree, so nothing re-reads the message.  (The
     * cached headers for SEARCH/SORT are not built yet.)
     */
    fa_str_t               meta[6];
    fa_pool_t             *mime_pool;     /* the parser's state and the renders */
    fa_mime_parser_t      *mime;
    MDB_val                tail;          /* meta[] end to end, made at commit */
    fa_str_t              *keywords;      /* malloc'd, with their bytes */
    fa_uint_t              nkeywords;
    uint32_t               flags;
    time_t                 internal_date;
    u_char                 body_id[FA_LMDB_BODY_ID_LEN];
    uint64_t               size;
    u_char                *buf;           /* an inline body, up to inline_max */
    size_t                 buf_size;
    int                    fd;            /* the blob file, or -1 */
    fa_int_t               failed;        /* a write failed: commit refuses */
    fa_append_result_t     result;
    unsigned               blob:1;
    unsigned               renamed:1;     /* the blob is in blobs/ */
    char                   tmp[];         /* blobs/tmp/PID-ID, then user, mailbox, guid */
};

static void
fa_lmdb_append_tmp_path(fa_lmdb_t *lm, const u_char *id, char *buf, size_t size)
{
    char  hex[FA_LMDB_GUID_LEN + 1];

    fa_lmdb_hex(id, FA_LMDB_BODY_ID_LEN, hex);
    fa_snprintf(buf, size, "%s/%d-%s", lm->tmp, (int) lm->pid, hex);
}

/* stale temporary files of processes that died: removed when a process opens */
void
fa_lmdb_blobs_cleanup(fa_lmdb_t *lm)
{
    DIR            *d = opendir(lm->tmp);
    struct dirent  *e;
    char            path[PATH_MAX];
    long            pid;

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        pid = strtol(e->d_name, NULL, 10);
        if (pid > 0 && pid != lm->pid && (kill((pid_t) pid, 0) == 0 || errno != ESRCH)) {
            continue;                      /* a live process's append in progress */
        }
        fa_snprintf(path, sizeof(path), "%s/%s", lm->tmp, e->d_name);
        if (unlink(path) == 0) {
            fa_log_error(FA_LOG_NOTICE, lm->log, 0, "lmdb storage: removed the orphan "
                         "\"%s\"", path);
        }
    }
    closedir(d);
}

static int
fa_lmdb_keyword_valid(const fa_str_t *k)
{
    if (k->len == 0 || k->len > FA_LMDB_KEYWORD_MAX) {
        return 0;
    }
    for (size_t i = 0; i < k->len; i++) {
        if (k->data[i] <= ' ' || k->data[i] == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static fa_int_t
fa_lmdb_append_keywords(fa_append_t *a, const fa_append_request_t *req)
{
    size_t   bytes = 0;
    u_char  *p;

    if (req->nkeywords == 0) {
        return FA_OK;
    }
    for (fa_uint_t i = 0; i < req->nkeywords; i++) {
        if (!fa_lmdb_keyword_valid(&req->keywords[i])) {
            return FA_STORAGE_INVALID;
        }
        bytes += req->keywords[i].len;
    }
    a->keywords = fa_alloc(req->nkeywords * sizeof(fa_str_t) + bytes, a->op.lm->log);
    if (a->keywords == NULL) {
        return FA_ERROR;
    }
    p = (u_char *) (a->keywords + req->nkeywords);
    for (fa_uint_t i = 0; i < req->nkeywords; i++) {
        memcpy(p, req->keywords[i].data, req->keywords[i].len);
        a->keywords[i].data = p;
        a->keywords[i].len = req->keywords[i].len;
        p += req->keywords[i].len;
    }
    a->nkeywords = req->nkeywords;
    return FA_OK;
}

/* the mailbox exists (or is the INBOX of a namespace still to make), and a
   size announced up front fits the quota */
static fa_int_t
fa_lmdb_append_check(fa_lmdb_t *lm, fa_append_t *a, uint64_t size_hint)
{
    fa_lmdb_user_rec_t  u;
    fa_lmdb_box_rec_t   box;
    uint64_t            user_id, id;
    MDB_txn            *txn;
    fa_int_t            rc;

    if (fa_lmdb_read_begin(lm, &txn) != FA_OK) {
        return FA_ERROR;
    }
    rc = fa_lmdb_box_lookup(lm, txn, &a->user, &a->mailbox, &user_id, &id, &box);
    if (rc == FA_OK && size_hint) {
        rc = fa_lmdb_user_get(lm, txn, &a->user, &u);
        if (rc == FA_OK && ((u.bytes_limit && u.bytes_used + size_hint > u.bytes_limit)
                            || (u.messages_limit && u.messages_used >= u.messages_limit)))
        {
            rc = FA_STORAGE_OVERQUOTA;
        }
    }
    fa_lmdb_read_end(lm);
    return rc == FA_LMDB_NOUSER ? FA_OK : rc;
}

static void fa_lmdb_append_destroy(fa_lmdb_op_t *op);

static fa_append_t *
fa_lmdb_append_alloc(fa_lmdb_t *lm, const fa_str_t *user, const fa_str_t *mailbox,
    const fa_append_request_t *req)
{
    fa_append_t  *a;
    size_t        tmp = strlen(lm->tmp) + 64;
    size_t        guid = req->guid.len ? req->guid.len : FA_LMDB_GUID_LEN;
    u_char       *p;

    a = (fa_append_t *) fa_lmdb_op_alloc(lm, sizeof(fa_append_t) + tmp + user->len
                                             + mailbox->len + guid + 3);
    if (a == NULL) {
        return NULL;
    }
    a->fd = -1;
    a->op.destroy = fa_lmdb_append_destroy;
    if (getrandom(a->body_id, sizeof(a->body_id), 0) != sizeof(a->body_id)) {
        fa_log_error(FA_LOG_ALERT, lm->log, errno, "lmdb storage: getrandom() failed");
        fa_lmdb_op_free(&a->op);
        return NULL;
    }
    fa_lmdb_append_tmp_path(lm, a->body_id, a->tmp, tmp);
    p = (u_char *) a->tmp + tmp;
    a->user.data = memcpy(p, user->data, user->len);
    a->user.len = user->len;
    p += user->len + 1;
    fa_lmdb_name_norm(mailbox, p, &a->mailbox);
    p += mailbox->len + 1;
    a->guid.data = p;
    a->guid.len = guid;
    if (req->guid.len) {
        memcpy(p, req->guid.data, guid);
    } else {
        fa_lmdb_hex(a->body_id, FA_LMDB_BODY_ID_LEN, (char *) p);
    }
    return a;
}

fa_int_t
fa_lmdb_append_begin(fa_storage_t *st, const fa_str_t *user, const fa_str_t *mailbox,
    const fa_append_request_t *req, fa_append_t **out)
{
    fa_lmdb_t    *lm = st->data;
    fa_append_t  *a;
    fa_int_t      rc;

    if (user->len == 0 || user->len > FA_LMDB_USER_MAX || memchr(user->data, 0, user->len)
        || fa_storage_mailbox_name_valid(mailbox) != FA_OK
        || req->guid.len > FA_LMDB_GUID_MAX
        || (req->guid.len && memchr(req->guid.data, 0, req->guid.len)))
    {
        return FA_STORAGE_INVALID;
    }
    a = fa_lmdb_append_alloc(lm, user, mailbox, req);
    if (a == NULL) {
        return FA_ERROR;
    }
    a->flags = req->flags & (FA_FLAG_SEEN | FA_FLAG_ANSWERED | FA_FLAG_FLAGGED
                             | FA_FLAG_DELETED | FA_FLAG_DRAFT);
    a->internal_date = req->internal_date ? req->internal_date : time(NULL);
    a->mime_pool = fa_pool_create(4096, lm->log);
    a->mime = a->mime_pool ? fa_mime_parser_create(a->mime_pool, NULL) : NULL;
    rc = a->mime ? fa_lmdb_append_keywords(a, req) : FA_ERROR;
    if (rc == FA_OK) {
        rc = fa_lmdb_append_check(lm, a, req->size_hint);
    }
    if (rc != FA_OK) {
        fa_lmdb_op_free(&a->op);
        return rc;
    }
    *out = a;
    return FA_OK;
}

static fa_int_t
fa_lmdb_append_file_write(fa_append_t *a, const u_char *data, size_t len)
{
    ssize_t  n;

    while (len) {
        n = write(a->fd, data, len);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1) {
            fa_log_error(FA_LOG_ERR, a->op.lm->log, errno, "lmdb storage: write(\"%s\") "
                         "failed", a->tmp);
            return (errno == ENOSPC || errno == EDQUOT) ? FA_STORAGE_NOSPACE : FA_ERROR;
        }
        data += n;
        len -= (size_t) n;
    }
    return FA_OK;
}

/* past inline_max: what was buffered goes to the file, and so does the rest */
static fa_int_t
fa_lmdb_append_to_file(fa_append_t *a)
{
    fa_int_t  rc;

    a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (a->fd == -1) {
        fa_log_error(FA_LOG_ERR, a->op.lm->log, errno, "lmdb storage: open(\"%s\") failed",
                     a->tmp);
        return errno == ENOSPC || errno == EDQUOT ? FA_STORAGE_NOSPACE : FA_ERROR;
    }
    a->blob = 1;
    rc = fa_lmdb_append_file_write(a, a->buf, (size_t) a->size);
    free(a->buf);
    a->buf = NULL;
    a->buf_size = 0;
    return rc;
}

static fa_int_t
fa_lmdb_append_buffer(fa_append_t *a, const u_char *data, size_t len)
{
    size_t   want = (size_t) a->size + len, size = a->buf_size ? a->buf_size : 4096;
    u_char  *buf;

    if (want > a->buf_size) {
        while (size < want) {
            size *= 2;
        }
        size = fa_min(size, a->op.lm->conf->inline_max);
        buf = realloc(a->buf, size);
        if (buf == NULL) {
            return FA_ERROR;
        }
        a->buf = buf;
        a->buf_size = size;
    }
    memcpy(a->buf + a->size, data, len);
    return FA_OK;
}

fa_int_t
fa_lmdb_append_write(fa_append_t *a, const u_char *data, size_t len)
{
    fa_int_t  rc;

    if (a->failed) {
        return a->failed;
    }
    if (len == 0) {
        return FA_OK;
    }
    if (!a->blob && a->size + len > a->op.lm->conf->inline_max) {
        rc = fa_lmdb_append_to_file(a);
        if (rc != FA_OK) {
            a->failed = rc;
            return rc;
        }
    }
    rc = a->blob ? fa_lmdb_append_file_write(a, data, len)
                 : fa_lmdb_append_buffer(a, data, len);
    if (rc == FA_OK) {
        rc = fa_mime_parser_feed(a->mime, data, len);     /* fails only without memory */
    }
    if (rc != FA_OK) {
        a->failed = rc;
        return rc;
    }
    a->size += len;
    return FA_OK;
}

/* writer thread, before the batch's transaction: the blob is durable in blobs/ */
static fa_int_t
fa_lmdb_append_prepare(fa_lmdb_op_t *op)
{
    fa_append_t  *a = (fa_append_t *) op;
    char          path[PATH_MAX];
    int           err;

    if (fdatasync(a->fd) == -1) {
        err = errno;
        fa_log_error(FA_LOG_CRIT, op->lm->log, err, "lmdb storage: fdatasync(\"%s\") failed",
                     a->tmp);
        return err == ENOSPC || err == EDQUOT ? FA_STORAGE_NOSPACE : FA_ERROR;
    }
    close(a->fd);
    a->fd = -1;
    fa_lmdb_blob_path(op->lm, a->body_id, path, sizeof(path));
    if (rename(a->tmp, path) == -1) {
        fa_log_error(FA_LOG_CRIT, op->lm->log, errno, "lmdb storage: rename(\"%s\", \"%s\") "
                     "failed", a->tmp, path);
        return FA_ERROR;
    }
    a->renamed = 1;
    return FA_OK;
}

/* the user's and the mailbox's records, read in the writer's transaction */
static fa_int_t
fa_lmdb_append_target(fa_append_t *a, MDB_txn *txn, fa_lmdb_user_rec_t *u, uint64_t *id,
    fa_lmdb_box_rec_t *box)
{
    fa_lmdb_t           *lm = a->op.lm;
    fa_lmdb_name_rec_t   n;
    fa_int_t             rc;

    rc = fa_lmdb_is_inbox(&a->mailbox) ? fa_lmdb_user_ensure(lm, txn, &a->user, u)
                                       : fa_lmdb_user_get(lm, txn, &a->user, u);
    if (rc == FA_OK) {
        rc = fa_lmdb_name_get(lm, txn, u->id, &a->mailbox, &n);
    }
    if (rc == FA_OK && (n.flags & FA_LMDB_BOX_NOSELECT)) {
        rc = FA_STORAGE_NOTFOUND;
    }
    if (rc == FA_OK) {
        *id = n.id;
        rc = fa_lmdb_box_get(lm, txn, n.id, box);
    }
    if (rc == FA_OK && ((u->bytes_limit && u->bytes_used + a->size > u->bytes_limit)
                        || (u->messages_limit && u->messages_used >= u->messages_limit)))
    {
        rc = FA_STORAGE_OVERQUOTA;
    }
    if (rc == FA_OK && box->uidnext == UINT32_MAX) {
        rc = FA_STORAGE_NOSPACE;           /* UIDs are 32 bits: this mailbox is full */
    }
    return rc == FA_STORAGE_INVALID ? FA_STORAGE_NOTFOUND : rc;
}

static fa_int_t
fa_lmdb_append_keyword_bits(fa_append_t *a, fa_lmdb_keywords_t *kw, uint64_t *bits)
{
    *bits = 0;
    for (fa_uint_t i = 0; i < a->nkeywords; i++) {
        fa_int_t id = fa_lmdb_keyword_id(kw, &a->keywords[i], 1);
        if (id < 0) {
            return FA_STORAGE_INVALID;     /* the mailbox has all the keywords it may */
        }
        *bits |= (uint64_t) 1 << id;
    }
    return FA_OK;
}

static fa_int_t
fa_lmdb_append_body(fa_append_t *a, MDB_txn *txn)
{
    fa_lmdb_t          *lm = a->op.lm;
    fa_lmdb_ref_rec_t   ref = { 1, a->blob ? FA_LMDB_BODY_BLOB : FA_LMDB_BODY_INLINE, a->size };
    MDB_val             key = { FA_LMDB_BODY_ID_LEN, a->body_id };
    MDB_val             val = { sizeof(ref), &ref };
    fa_int_t            rc;

    rc = fa_lmdb_put(lm, txn, FA_LMDB_REFS, &key, &val);
    if (rc == FA_OK && !a->blob) {
        val.mv_size = (size_t) a->size;
        val.mv_data = a->buf;
        rc = fa_lmdb_put(lm, txn, FA_LMDB_BODIES, &key, &val);
    }
    return rc;
}

static fa_int_t
fa_lmdb_append_apply(fa_lmdb_op_t *op, MDB_txn *txn)
{
    fa_append_t         *a = (fa_append_t *) op;
    fa_lmdb_t           *lm = op->lm;
    fa_lmdb_user_rec_t   u;
    fa_lmdb_box_rec_t    box;
    fa_lmdb_keywords_t   kw;
    fa_lmdb_msg_rec_t    rec;
    uint64_t             id;
    fa_int_t             rc;

    rc = fa_lmdb_append_target(a, txn, &u, &id, &box);
    if (rc != FA_OK) {
        return rc;
    }
    rc = fa_lmdb_keywords_get(lm, txn, id, &kw);
    memset(&rec, 0, sizeof(rec));
    if (rc == FA_OK) {
        rc = fa_lmdb_append_keyword_bits(a, &kw, &rec.keywords);
    }
    rec.version = FA_LMDB_RECORD_V1;
    rec.flags = (uint16_t) a->flags;
    rec.modseq = ++box.highestmodseq;
    rec.size = a->size;
    rec.internal_date = (int64_t) a->internal_date;
    memcpy(rec.body_id, a->body_id, FA_LMDB_BODY_ID_LEN);
    for (int i = 0; i < 6; i++) {
        rec.lens[i] = (uint32_t) a->meta[i].len;
    }
    a->result.uidvalidity = box.uidvalidity;
    a->result.uid = box.uidnext++;
    a->result.modseq = rec.modseq;
    fa_lmdb_box_count(&box, a->flags, a->size, 1);
    u.bytes_used += a->size;
    u.messages_used++;

    if (rc == FA_OK) {
        rc = fa_lmdb_msg_add(lm, txn, id, a->result.uid, &rec, &a->tail);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_append_body(a, txn);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_box_put(lm, txn, id, &box);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_keywords_put(lm, txn, id, &kw);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_user_put(lm, txn, &a->user, &u);
    }
    fa_lmdb_keywords_free(&kw);
    fa_lmdb_op_changed(op, id);
    return rc;
}

static void
fa_lmdb_append_deliver(fa_lmdb_op_t *op)
{
    fa_append_t  *a = (fa_append_t *) op;

    a->cb(a->data, op->rc, op->rc == FA_OK ? &a->result : NULL);
}

/* whatever became of it, no file is left that nothing references */
static void
fa_lmdb_append_destroy(fa_lmdb_op_t *op)
{
    fa_append_t  *a = (fa_append_t *) op;
    char          path[PATH_MAX];

    if (a->fd != -1) {
        close(a->fd);
    }
    if (a->blob && !a->renamed) {
        unlink(a->tmp);
    } else if (a->renamed && op->rc != FA_OK) {
        fa_lmdb_blob_path(op->lm, a->body_id, path, sizeof(path));
        unlink(path);
    }
    free(a->buf);
    free(a->keywords);
    free(a->tail.mv_data);
    fa_pool_destroy(a->mime_pool);
}

/* ENVELOPE, BODYSTRUCTURE, BODY and the part table, from the parsed tree */
static fa_int_t
fa_lmdb_append_mime(fa_append_t *a)
{
    fa_mime_part_t  *root = fa_mime_parser_finish(a->mime);
    fa_mime_buf_t    b;

    if (root == NULL) {
        return FA_ERROR;
    }
    for (int i = 1; i <= 3; i++) {
        if (fa_mime_buf_init(&b, a->mime_pool, 512) != FA_OK
            || (i == 1 ? fa_mime_render_envelope(&b, root)
                       : fa_mime_render_bodystructure(&b, root, i == 2)) != FA_OK)
        {
            return FA_ERROR;
        }
        a->meta[i].data = b.data;
        a->meta[i].len = b.len;
    }
    return fa_mime_serialize(root, a->mime_pool, &a->meta[4]);
}

/* the metadata strings end to end, as the message record stores them */
static fa_int_t
fa_lmdb_append_tail(fa_append_t *a)
{
    size_t   n = 0;
    u_char  *p;

    a->meta[0] = a->guid;
    for (int i = 0; i < 6; i++) {
        n += a->meta[i].len;
    }
    p = fa_alloc(n ? n : 1, a->op.lm->log);
    if (p == NULL) {
        return FA_ERROR;
    }
    a->tail.mv_data = p;
    a->tail.mv_size = n;
    for (int i = 0; i < 6; i++) {
        if (a->meta[i].len) {
            p = (u_char *) memcpy(p, a->meta[i].data, a->meta[i].len) + a->meta[i].len;
        }
    }
    return FA_OK;
}

fa_int_t
fa_lmdb_append_commit(fa_append_t *a, fa_storage_append_pt cb, void *data)
{
    fa_int_t  rc = a->failed;

    if (rc == FA_OK) {
        rc = fa_lmdb_append_mime(a);
    }
    if (rc == FA_OK) {
        rc = fa_lmdb_append_tail(a);
    }
    if (rc != FA_OK) {
        fa_lmdb_op_free(&a->op);
        return rc;
    }
    a->cb = cb;
    a->data = data;
    a->op.apply = fa_lmdb_append_apply;
    a->op.grows = 1;
    a->op.prepare = a->blob ? fa_lmdb_append_prepare : NULL;
    a->op.deliver = fa_lmdb_append_deliver;
    a->op.weight = a->blob ? 4096 : (size_t) a->size;
    return fa_lmdb_op_submit(&a->op);
}

void
fa_lmdb_append_abort(fa_append_t *a)
{
    fa_lmdb_op_free(&a->op);
}
