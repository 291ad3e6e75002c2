/*
 * Appends, the Maildir way: the message streams into tmp/ (through a 64 KB
 * buffer, never whole in memory); commit syncs the file, renames it into
 * new/ (no flags) or cur/ (flags), syncs that directory, then gives it its
 * UID in the uidlist and its MODSEQ in the state under the folder's lock.
 * Only then does the caller hear FA_OK: a crash at any point before leaves
 * either nothing visible or a file the next sync numbers, never a UID
 * without its message.
 */

#include "fa_maildir.h"

#define FA_MAILDIR_APPEND_BUF  65536
#define FA_MAILDIR_GUID_MAX    128

struct fa_append_s {
    fa_maildir_t        *md;
    fa_pool_t           *pool;
    fa_maildir_loc_t     loc;
    char                *base;           /* the unique part of the name */
    char                *tmp;            /* DIR/tmp/BASE */
    int                  fd;
    uint64_t             size;
    uint64_t             vsize;          /* size with CRLF line ends: W= */
    unsigned             last_cr:1;
    uint32_t             flags;
    fa_str_t            *keywords;
    fa_uint_t            nkeywords;
    time_t               internal_date;
    char                *guid;           /* NULL: the base is the GUID */
    u_char              *buf;
    size_t               nbuf;
    void                *parser;         /* MIME, fed as the bytes go by */
    fa_maildir_meta_t    meta;
    fa_int_t             failed;         /* a write's error: the commit's too */
};

static fa_int_t
fa_maildir_append_copy_req(fa_append_t *a, const fa_append_request_t *req)
{
    a->flags = req->flags & ~(uint32_t) FA_FLAG_RECENT;
    a->internal_date = req->internal_date ? req->internal_date : time(NULL);
    if (req->guid.len) {
        /* it goes into the uidlist as a field: one printable word */
        if (req->guid.len > FA_MAILDIR_GUID_MAX) {
            return FA_STORAGE_INVALID;
        }
        for (size_t i = 0; i < req->guid.len; i++) {
            if (req->guid.data[i] <= 0x20 || req->guid.data[i] >= 0x7f) {
                return FA_STORAGE_INVALID;
            }
        }
        a->guid = (char *) fa_pstrdup(a->pool, &req->guid);
    }
    a->nkeywords = req->nkeywords;
    a->keywords = fa_palloc(a->pool, (req->nkeywords + 1) * sizeof(fa_str_t));
    if (a->keywords == NULL || (req->guid.len && a->guid == NULL)) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < req->nkeywords; i++) {
        a->keywords[i].len = req->keywords[i].len;
        a->keywords[i].data = fa_pstrdup(a->pool, &req->keywords[i]);
        if (a->keywords[i].data == NULL) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

static void
fa_maildir_append_free(fa_append_t *a)
{
    if (a->fd != -1) {
        close(a->fd);
        unlink(a->tmp);
    }
    fa_pool_destroy(a->pool);
}

fa_int_t
fa_maildir_append_begin(fa_storage_t *st, const fa_str_t *user, const fa_str_t *mailbox,
    const fa_append_request_t *req, fa_append_t **out)
{
    fa_maildir_t  *md = st->data;
    fa_pool_t     *pool = fa_pool_create(4096, md->log);
    fa_append_t   *a;
    struct stat    sb;
    fa_int_t       rc;

    a = pool ? fa_pcalloc(pool, sizeof(fa_append_t)) : NULL;
    if (a == NULL) {
        if (pool) {
            fa_pool_destroy(pool);
        }
        return FA_ERROR;
    }
    a->md = md;
    a->pool = pool;
    a->fd = -1;
    rc = fa_maildir_locate(md, user, mailbox, pool, &a->loc);
    if (rc == FA_OK && stat(fa_maildir_join(pool, a->loc.dir, "cur"), &sb) != 0) {
        rc = FA_STORAGE_NOTFOUND;
    }
    if (rc == FA_OK) {
        rc = fa_maildir_append_copy_req(a, req);
    }
    if (rc == FA_OK && req->size_hint) {
        rc = fa_maildir_quota_check(md, a->loc.root, req->size_hint, 1);
    }
    if (rc == FA_OK) {
        a->base = fa_maildir_unique(md, pool);
        a->buf = fa_palloc(pool, FA_MAILDIR_APPEND_BUF);
        a->parser = fa_maildir_meta_start(pool);
        a->tmp = a->base ? fa_maildir_join(pool, a->loc.dir, "tmp") : NULL;
        a->tmp = a->tmp ? fa_maildir_join(pool, a->tmp, a->base) : NULL;
        rc = a->tmp && a->buf ? FA_OK : FA_ERROR;
    }
    if (rc == FA_OK) {
        a->fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        rc = a->fd == -1 ? fa_maildir_sys_error(md, errno, "open()", a->tmp) : FA_OK;
    }
    if (rc != FA_OK) {
        fa_maildir_append_free(a);
        return rc;
    }
    *out = a;
    return FA_OK;
}

static fa_int_t
fa_maildir_append_flush(fa_append_t *a)
{
    size_t  done = 0;

    while (done < a->nbuf) {
        ssize_t n = write(a->fd, a->buf + done, a->nbuf - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fa_maildir_sys_error(a->md, errno, "write()", a->tmp);
        }
        done += (size_t) n;
    }
    a->nbuf = 0;
    return FA_OK;
}

fa_int_t
fa_maildir_append_write(fa_append_t *a, const u_char *data, size_t len)
{
    fa_int_t  rc;

    if (a->failed) {
        return a->failed;
    }
    for (size_t i = 0; i < len; i++) {
        a->vsize += (data[i] == '\n' && !a->last_cr) ? 2 : 1;
        a->last_cr = data[i] == '\r';
    }
    fa_maildir_meta_feed(a->parser, data, len);
    a->size += len;
    while (len > 0) {
        size_t n = fa_min(len, FA_MAILDIR_APPEND_BUF - a->nbuf);
        memcpy(a->buf + a->nbuf, data, n);
        a->nbuf += n;
        data += n;
        len -= n;
        if (a->nbuf == FA_MAILDIR_APPEND_BUF && (rc = fa_maildir_append_flush(a)) != FA_OK) {
            a->failed = rc;
            return rc;
        }
    }
    return FA_OK;
}

/* the file durable in tmp/, dated with the internal date */
static fa_int_t
fa_maildir_append_sync(fa_append_t *a)
{
    struct timespec  times[2];
    fa_int_t         rc;

    if ((rc = fa_maildir_append_flush(a)) != FA_OK) {
        return rc;
    }
    times[0].tv_sec = time(NULL);
    times[0].tv_nsec = 0;
    times[1].tv_sec = a->internal_date;
    times[1].tv_nsec = 0;
    if (futimens(a->fd, times) != 0) {
        fa_log_error(FA_LOG_WARN, a->md->log, errno, "maildir: futimens() of \"%s\" failed",
                     a->tmp);
    }
    if (fsync(a->fd) != 0) {
        return fa_maildir_sys_error(a->md, errno, "fsync()", a->tmp);
    }
    return FA_OK;
}

fa_int_t
fa_maildir_keywords_resolve(fa_maildir_view_t *v, const fa_str_t *names, fa_uint_t n,
    uint64_t *bits)
{
    *bits = 0;
    for (fa_uint_t i = 0; i < n; i++) {
        int k = fa_maildir_view_keyword(v, &names[i], 1);
        if (k < 0) {
            return FA_STORAGE_INVALID;
        }
        *bits |= (uint64_t) 1 << k;
    }
    return FA_OK;
}

/* the metadata record, durable before the UID that makes the message visible */
static fa_int_t
fa_maildir_append_cache(fa_append_t *a, fa_maildir_view_t *v, fa_maildir_msg_t *m)
{
    fa_maildir_buf_t  b = { NULL, 0, 0, 0 };
    fa_int_t          rc;

    fa_maildir_cache_record(&b, m->file + 4, m->base_len, &a->meta);
    rc = fa_maildir_cache_write(a->md, v->dir, &b);
    free(b.p);
    return rc;
}

/* under the lock: into new/ or cur/, then its UID; *file is where it went */
static fa_int_t
fa_maildir_append_place(fa_append_t *a, fa_maildir_view_t *v, fa_append_result_t *res,
    char **file)
{
    fa_maildir_msg_t  *m;
    uint64_t           kw;
    char              *info, *name, *path;
    size_t             size;
    fa_int_t           rc;

    if ((rc = fa_maildir_keywords_resolve(v, a->keywords, a->nkeywords, &kw)) != FA_OK) {
        return rc;
    }
    info = fa_maildir_info_make(v->pool, a->flags, kw, NULL);
    size = strlen(a->base) + 64 + (info ? strlen(info) : 0);
    name = fa_pnalloc(v->pool, size);
    if (info == NULL || name == NULL) {
        return FA_ERROR;
    }
    fa_snprintf(name, size, "%s/%s,S=%llu,W=%llu%s%s", *info ? "cur" : "new", a->base,
                (unsigned long long) a->size, (unsigned long long) a->vsize,
                *info ? ":2," : "", info);
    path = fa_maildir_join(v->pool, v->dir, name);
    if (path == NULL || rename(a->tmp, path) != 0) {
        return path ? fa_maildir_sys_error(a->md, errno, "rename()", a->tmp) : FA_ERROR;
    }
    close(a->fd);
    a->fd = -1;
    *file = path;
    name[3] = '\0';
    if ((rc = fa_maildir_fsync_dir(a->md, fa_maildir_join(v->pool, v->dir, name))) != FA_OK) {
        return rc;
    }
    name[3] = '/';
    if ((m = fa_array_push(&v->msgs)) == NULL) {
        return FA_ERROR;
    }
    fa_maildir_name_parse(m, name);
    if ((rc = fa_maildir_append_cache(a, v, m)) != FA_OK) {
        return rc;
    }
    m->uid = v->uidnext++;
    m->modseq = fa_maildir_view_modseq(v);
    m->changed = 1;
    m->ext = a->guid ? fa_pstrcat(v->pool, "G", a->guid) : NULL;
    res->uidvalidity = v->uidvalidity;
    res->uid = m->uid;
    res->modseq = m->modseq;
    return fa_maildir_view_commit(a->md, v);
}

fa_int_t
fa_maildir_append_commit(fa_append_t *a, fa_storage_append_pt cb, void *data)
{
    fa_maildir_t        *md = a->md;
    fa_maildir_view_t   *v = NULL;
    fa_maildir_done_t   *d;
    fa_append_result_t   res;
    char                *placed = NULL;
    fa_int_t             rc;

    rc = a->failed ? a->failed : fa_maildir_append_sync(a);
    if (rc == FA_OK) {
        rc = fa_maildir_meta_finish(a->parser, a->pool, &a->meta);
    }
    if (rc == FA_OK) {
        rc = fa_maildir_quota_check(md, a->loc.root, a->size, 1);
    }
    if (rc == FA_OK) {
        rc = fa_maildir_view_for_append(md, a->loc.dir, &v);
    }
    if (rc == FA_OK) {
        rc = fa_maildir_append_place(a, v, &res, &placed);
        if (rc != FA_OK && placed) {
            /* no UID for it: take it back rather than let a retry duplicate it */
            unlink(placed);
        }
        fa_maildir_view_release(md, v);
    }
    if (rc == FA_OK) {
        fa_maildir_quota_add(md, a->loc.root, (int64_t) a->size, 1);
    }
    d = rc == FA_OK ? fa_maildir_done(md, FA_MAILDIR_DONE_APPEND, fa_maildir_cb(cb), data)
                    : NULL;
    fa_maildir_append_free(a);
    if (d == NULL) {
        return rc == FA_OK ? FA_ERROR : rc;
    }
    d->r.append = res;
    return fa_maildir_post(d, FA_OK);
}

void
fa_maildir_append_abort(fa_append_t *a)
{
    if (a) {
        fa_maildir_append_free(a);
    }
}
