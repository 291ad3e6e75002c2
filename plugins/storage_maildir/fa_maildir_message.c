/*
 * A selected mailbox: the handle, metadata, message bodies, flag changes
 * and "what changed since MODSEQ".
 *
 * The handle keeps the latest view, read again for every request: another
 * writer may have changed the folder since, and the files say so at once.
 * A production backend would keep the view and re-read only what the
 * watch reports changed.
 */

#include "fa_maildir.h"

struct fa_msg_stream_s {
    int        fd;
    uint64_t   size;
};

static void
fa_maildir_box_free(fa_mailbox_t *box)
{
    fa_maildir_cache_free(box->cache);
    fa_maildir_view_free(box->view);
    fa_pool_destroy(box->pool);
}

fa_int_t
fa_maildir_box_refresh(fa_mailbox_t *box)
{
    fa_maildir_view_t  *v;
    fa_int_t            rc;

    rc = fa_maildir_view_read(box->md, box->loc.dir, &v);
    if (rc != FA_OK) {
        return rc == FA_STORAGE_NOTFOUND ? rc : FA_ERROR;
    }
    fa_maildir_view_free(box->view);
    box->view = v;
    return FA_OK;
}

fa_int_t
fa_maildir_mailbox_open(fa_storage_t *st, const fa_str_t *user, const fa_str_t *name,
    fa_pool_t *pool, fa_storage_open_pt cb, void *data)
{
    fa_maildir_t       *md = st->data;
    fa_maildir_done_t  *d;
    fa_mailbox_t       *box;
    fa_pool_t          *own = fa_pool_create(4096, md->log);
    fa_int_t            rc;
    struct stat         sb;

    (void) pool;
    box = own ? fa_pcalloc(own, sizeof(fa_mailbox_t)) : NULL;
    if (box == NULL) {
        if (own) {
            fa_pool_destroy(own);
        }
        return FA_ERROR;
    }
    box->md = md;
    box->pool = own;
    box->user.len = user->len;
    box->user.data = fa_pstrdup(own, user);
    box->name.len = name->len;
    box->name.data = fa_pstrdup(own, name);
    rc = fa_maildir_locate(md, user, name, own, &box->loc);
    if (rc == FA_OK && stat(fa_maildir_join(own, box->loc.dir, "cur"), &sb) != 0) {
        rc = FA_STORAGE_NOTFOUND;
    }
    if (rc == FA_OK) {
        rc = fa_maildir_box_refresh(box);
    }
    d = rc == FA_OK ? fa_maildir_done(md, FA_MAILDIR_DONE_OPEN, fa_maildir_cb(cb), data)
                    : NULL;
    if (d == NULL) {
        fa_maildir_box_free(box);
        return rc == FA_OK ? FA_ERROR : rc;
    }
    d->r.open.box = box;
    if (fa_maildir_view_status(box->view, &d->r.open.st) != FA_OK) {
        free(d);
        fa_maildir_box_free(box);
        return FA_ERROR;
    }
    return fa_maildir_post(d, FA_OK);
}

void
fa_maildir_mailbox_close(fa_mailbox_t *box)
{
    if (box) {
        fa_maildir_box_free(box);
    }
}

static fa_int_t
fa_maildir_meta_copy(fa_pool_t *pool, const fa_str_t *from, fa_str_t *to)
{
    to->len = from->len;
    to->data = fa_pnalloc(pool, from->len + 1);
    if (to->data == NULL) {
        return FA_ERROR;
    }
    if (from->len) {
        memcpy(to->data, from->data, from->len);
    }
    to->data[from->len] = '\0';
    return FA_OK;
}

/*
 * A message's metadata, copied into the caller's pool; the strings only
 * when given (fetch_meta: store and changes_since results carry none).
 */
fa_int_t
fa_maildir_meta_fill(fa_maildir_view_t *v, fa_maildir_msg_t *m, fa_pool_t *pool,
    const fa_maildir_meta_t *strings, fa_message_meta_t *meta)
{
    fa_str_t     guid = fa_maildir_msg_guid(m);
    struct stat  sb;
    char         path[PATH_MAX];

    memset(meta, 0, sizeof(*meta));
    meta->uid = m->uid;
    meta->flags = m->flags;
    meta->keywords = m->keywords;
    meta->modseq = m->modseq;
    meta->size = m->size;
    fa_snprintf(path, sizeof(path), "%s/%s", v->dir, m->file);
    meta->internal_date = stat(path, &sb) == 0 ? sb.st_mtime : time(NULL);
    if (fa_maildir_meta_copy(pool, &guid, &meta->guid) != FA_OK) {
        return FA_ERROR;
    }
    if (strings == NULL || !strings->present) {
        return FA_OK;
    }
    /* headers (for SEARCH and SORT) stay empty until their format is settled */
    if (fa_maildir_meta_copy(pool, &strings->f[FA_MAILDIR_META_ENVELOPE], &meta->envelope)
            != FA_OK
        || fa_maildir_meta_copy(pool, &strings->f[FA_MAILDIR_META_BODYSTRUCTURE],
                                &meta->bodystructure) != FA_OK
        || fa_maildir_meta_copy(pool, &strings->f[FA_MAILDIR_META_BODY], &meta->body) != FA_OK
        || fa_maildir_meta_copy(pool, &strings->f[FA_MAILDIR_META_MIME], &meta->mime) != FA_OK)
    {
        return FA_ERROR;
    }
    return FA_OK;
}

/* the metadata of the messages in uids, strings from facteur-cache */
static fa_int_t
fa_maildir_fetch_fill(fa_mailbox_t *box, const fa_uid_set_t *uids, fa_pool_t *pool,
    fa_message_meta_t *out, fa_uint_t *n)
{
    fa_maildir_view_t  *v = box->view;
    fa_maildir_msg_t   *m = v->msgs.elts;
    fa_maildir_buf_t    add = { NULL, 0, 0, 0 };
    fa_maildir_meta_t   strings;
    fa_pool_t          *tmp = fa_pool_create(16384, box->md->log);   /* parser trees */
    fa_int_t            rc;

    if (tmp == NULL) {
        return FA_ERROR;
    }
    rc = fa_maildir_cache_refresh(box->md, v->dir, &box->cache);
    for (fa_uint_t i = 0; rc == FA_OK && i < v->msgs.nelts; i++) {
        if (!fa_uid_set_contains(uids, m[i].uid)) {
            continue;
        }
        rc = fa_maildir_cache_get(box->md, box->cache, v, &m[i], tmp, &add, &strings);
        if (rc == FA_OK) {
            rc = fa_maildir_meta_fill(v, &m[i], pool, &strings, &out[(*n)++]);
        }
    }
    /* records of messages parsed just now: best effort, the next fetch retries */
    if (rc == FA_OK && add.n) {
        (void) fa_maildir_cache_write(box->md, v->dir, &add);
    }
    free(add.p);
    fa_pool_destroy(tmp);
    return rc;
}

fa_int_t
fa_maildir_fetch_meta(fa_mailbox_t *box, const fa_uid_set_t *uids, fa_pool_t *pool,
    fa_storage_meta_pt cb, void *data)
{
    fa_maildir_done_t  *d;
    fa_message_meta_t  *out;
    fa_uint_t           n = 0;
    fa_int_t            rc;

    if ((rc = fa_maildir_box_refresh(box)) != FA_OK) {
        return rc;
    }
    out = fa_palloc(pool, (box->view->msgs.nelts + 1) * sizeof(fa_message_meta_t));
    if (out == NULL) {
        return FA_ERROR;
    }
    if ((rc = fa_maildir_fetch_fill(box, uids, pool, out, &n)) != FA_OK) {
        return rc;
    }
    d = fa_maildir_done(box->md, FA_MAILDIR_DONE_META, fa_maildir_cb(cb), data);
    if (d == NULL) {
        return FA_ERROR;
    }
    d->r.meta.msgs = out;
    d->r.meta.n = n;
    return fa_maildir_post(d, FA_OK);
}

/* the file, or after one re-read, the file it was renamed to meanwhile */
fa_int_t
fa_maildir_message_open(fa_mailbox_t *box, uint32_t uid, fa_msg_stream_t **out)
{
    fa_msg_stream_t   *s;
    fa_maildir_msg_t  *m;
    struct stat        sb;
    char               path[PATH_MAX];
    int                fd = -1;

    for (int attempt = 0; attempt < 2 && fd == -1; attempt++) {
        if (attempt && fa_maildir_box_refresh(box) != FA_OK) {
            return FA_ERROR;
        }
        m = fa_maildir_view_find(box->view, uid);
        if (m == NULL) {
            continue;
        }
        fa_snprintf(path, sizeof(path), "%s/%s", box->loc.dir, m->file);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd == -1 && errno != ENOENT) {
            return fa_maildir_sys_error(box->md, errno, "open()", path);
        }
    }
    if (fd == -1) {
        return FA_STORAGE_NOTFOUND;
    }
    s = fa_alloc(sizeof(fa_msg_stream_t), box->md->log);
    if (s == NULL || fstat(fd, &sb) != 0) {
        free(s);
        close(fd);
        return FA_ERROR;
    }
    s->fd = fd;
    s->size = (uint64_t) sb.st_size;
    *out = s;
    return FA_OK;
}

ssize_t
fa_maildir_message_read(fa_msg_stream_t *m, uint64_t offset, u_char *buf, size_t len,
    fa_storage_done_pt cb, void *data)
{
    ssize_t  n;

    (void) cb;
    (void) data;
    if (offset >= m->size) {
        return 0;
    }
    do {
        n = pread(m->fd, buf, fa_min(len, m->size - offset), (off_t) offset);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? FA_ERROR : n;
}

fa_int_t
fa_maildir_message_fd(fa_msg_stream_t *m, int *fd, uint64_t *offset)
{
    *fd = m->fd;
    *offset = 0;
    return FA_OK;
}

void
fa_maildir_message_close(fa_msg_stream_t *m)
{
    if (m) {
        close(m->fd);
        free(m);
    }
}

/* keyword names become bits of this folder, made when create is set */
static fa_int_t
fa_maildir_store_keywords(fa_maildir_view_t *v, const fa_store_request_t *req,
    uint64_t *bits)
{
    int  create = req->mode != FA_STORE_REMOVE;

    *bits = 0;
    for (fa_uint_t i = 0; i < req->nkeywords; i++) {
        int k = fa_maildir_view_keyword(v, &req->keywords[i], create);
        if (k < 0 && create) {
            return FA_STORAGE_INVALID;        /* 26 keywords already, or not storable */
        }
        *bits |= k < 0 ? 0 : (uint64_t) 1 << k;
    }
    return FA_OK;
}

/* new flags by renaming the file into cur/ with the new info */
static fa_int_t
fa_maildir_store_one(fa_maildir_t *md, fa_maildir_view_t *v, fa_maildir_msg_t *m,
    uint32_t flags, uint64_t keywords, uint64_t modseq)
{
    char   *info = fa_maildir_info_make(v->pool, flags, keywords, m->info);
    size_t  size = m->base_len + strlen(info ? info : "") + 8;
    char   *file = fa_pnalloc(v->pool, size), from[PATH_MAX], to[PATH_MAX];

    if (info == NULL || file == NULL) {
        return FA_ERROR;
    }
    fa_snprintf(file, size, "cur/%.*s:2,%s", (int) m->base_len, m->file + 4, info);
    fa_snprintf(from, sizeof(from), "%s/%s", v->dir, m->file);
    fa_snprintf(to, sizeof(to), "%s/%s", v->dir, file);
    if (rename(from, to) != 0) {
        return fa_maildir_sys_error(md, errno, "rename()", from);
    }
    fa_maildir_name_parse(m, file);
    m->modseq = modseq;
    m->changed = 1;
    return FA_OK;
}

static void
fa_maildir_store_apply(const fa_store_request_t *req, uint32_t *flags, uint64_t *kw,
    uint64_t bits)
{
    uint32_t  f = req->flags & ~(uint32_t) FA_FLAG_RECENT;

    switch (req->mode) {
    case FA_STORE_REPLACE: *flags = f;  *kw = bits;   break;
    case FA_STORE_ADD:     *flags |= f; *kw |= bits;  break;
    case FA_STORE_REMOVE:  *flags &= ~f; *kw &= ~bits; break;
    }
}

fa_int_t
fa_maildir_store(fa_mailbox_t *box, const fa_uid_set_t *uids, const fa_store_request_t *req,
    fa_pool_t *pool, fa_storage_meta_pt cb, void *data)
{
    fa_maildir_t       *md = box->md;
    fa_maildir_view_t  *v;
    fa_maildir_msg_t   *m;
    fa_message_meta_t  *out;
    fa_maildir_done_t  *d;
    uint64_t            bits, modseq = 0, kw;
    uint32_t            flags;
    fa_uint_t           n = 0;
    int                 modified = 0;
    fa_int_t            rc;

    if ((rc = fa_maildir_view_locked(md, box->loc.dir, &v)) != FA_OK) {
        return rc;
    }
    m = v->msgs.elts;
    out = fa_palloc(pool, (v->msgs.nelts + 1) * sizeof(fa_message_meta_t));
    rc = out ? fa_maildir_store_keywords(v, req, &bits) : FA_ERROR;
    for (fa_uint_t i = 0; rc == FA_OK && i < v->msgs.nelts; i++) {
        if (!fa_uid_set_contains(uids, m[i].uid)) {
            continue;
        }
        if (req->unchangedsince && m[i].modseq > req->unchangedsince) {
            modified = 1;                      /* CONDSTORE: left as it is, and said so */
            rc = fa_maildir_meta_fill(v, &m[i], pool, NULL, &out[n]);
            out[n++].flags |= FA_FLAG_MODIFIED;
            continue;
        }
        flags = m[i].flags;
        kw = m[i].keywords;
        fa_maildir_store_apply(req, &flags, &kw, bits);
        if (flags != m[i].flags || kw != m[i].keywords) {
            modseq = modseq ? modseq : fa_maildir_view_modseq(v);
            rc = fa_maildir_store_one(md, v, &m[i], flags, kw, modseq);
        }
        if (rc == FA_OK) {
            rc = fa_maildir_meta_fill(v, &m[i], pool, NULL, &out[n++]);
        }
    }
    if (rc == FA_OK && modseq) {
        if ((rc = fa_maildir_fsync_dir(md, fa_maildir_join(v->pool, v->dir, "cur"))) == FA_OK) {
            rc = fa_maildir_view_commit(md, v);
        }
    }
    fa_maildir_view_release(md, v);
    d = rc == FA_OK ? fa_maildir_done(md, FA_MAILDIR_DONE_META, fa_maildir_cb(cb), data) : NULL;
    if (d == NULL) {
        return rc == FA_OK ? FA_ERROR : rc;
    }
    d->r.meta.msgs = out;
    d->r.meta.n = n;
    return fa_maildir_post(d, modified ? FA_STORAGE_MODIFIED : FA_OK);
}

fa_int_t
fa_maildir_changes_since(fa_mailbox_t *box, uint64_t modseq, fa_pool_t *pool,
    fa_storage_changes_pt cb, void *data)
{
    fa_mailbox_changes_t  *ch;
    fa_maildir_expunge_t  *x;
    fa_maildir_msg_t      *m;
    fa_maildir_done_t     *d;
    fa_maildir_view_t     *v;
    fa_int_t               rc;

    if ((rc = fa_maildir_box_refresh(box)) != FA_OK) {
        return rc;
    }
    v = box->view;
    m = v->msgs.elts;
    x = v->expunges.elts;
    ch = fa_pcalloc(pool, sizeof(fa_mailbox_changes_t));
    if (ch == NULL
        || (ch->changed = fa_palloc(pool, (v->msgs.nelts + 1) * sizeof(*ch->changed))) == NULL
        || (ch->expunged = fa_palloc(pool, (v->expunges.nelts + 1) * sizeof(uint32_t))) == NULL)
    {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < v->msgs.nelts; i++) {
        if (m[i].modseq > modseq
            && fa_maildir_meta_fill(v, &m[i], pool, NULL, &ch->changed[ch->nchanged++])
               != FA_OK)
        {
            return FA_ERROR;
        }
    }
    for (fa_uint_t i = 0; i < v->expunges.nelts; i++) {
        if (x[i].modseq > modseq) {
            ch->expunged[ch->nexpunged++] = x[i].uid;
        }
    }
    qsort(ch->expunged, ch->nexpunged, sizeof(uint32_t), fa_maildir_uid_sort);
    ch->highestmodseq = fa_max(v->highestmodseq, 1);
    ch->too_old = modseq < v->expunge_floor;
    if (fa_maildir_keyword_table(v, pool, &ch->keywords, &ch->nkeywords) != FA_OK) {
        return FA_ERROR;
    }
    d = fa_maildir_done(box->md, FA_MAILDIR_DONE_CHANGES, fa_maildir_cb(cb), data);
    if (d == NULL) {
        return FA_ERROR;
    }
    d->r.changes = ch;
    return fa_maildir_post(d, FA_OK);
}
