/*
 * Copy, move and expunge.
 *
 * A copy is a hard link under the same name when it can be (no bytes
 * written, and the GUID, which is the name's unique part, comes along);
 * within one folder, or when the name is taken, it gets a new name and the
 * GUID goes into the uidlist's G field.  Across file systems the bytes are
 * copied through tmp/.  Keywords are per folder, so their letters are
 * mapped by name.  A move is a copy made durable first, then an expunge
 * of the originals: a crash between them leaves two copies, never none.
 */

#include "fa_maildir.h"

typedef struct {
    fa_maildir_t        *md;
    fa_pool_t           *pool;
    fa_maildir_view_t   *src;
    fa_maildir_view_t   *dst;
    int                  same;            /* copying into the source folder */
    int                  kwmap[FA_MAILDIR_KEYWORDS_MAX];
    const fa_uid_set_t  *uids;            /* expunge: NULL for every \Deleted */
    uint32_t            *src_uids;
    uint32_t            *dst_uids;
    fa_uint_t            n;
    fa_uint_t            max;             /* room in src_uids while expunging */
    uint64_t             bytes;
    uint64_t             modseq;
    fa_maildir_cache_t  *cache;           /* the source's metadata records */
    fa_maildir_buf_t     records;         /* ... for the destination, by new name */
} fa_maildir_copy_t;

/* the source's keyword letters as the destination's */
static fa_int_t
fa_maildir_copy_kwmap(fa_maildir_copy_t *c)
{
    for (int k = 0; k < FA_MAILDIR_KEYWORDS_MAX; k++) {
        c->kwmap[k] = -1;
        if (c->src->keywords[k]) {
            fa_str_t name = { strlen(c->src->keywords[k]), (u_char *) c->src->keywords[k] };
            c->kwmap[k] = fa_maildir_view_keyword(c->dst, &name, 1);
        }
    }
    return FA_OK;
}

static uint64_t
fa_maildir_copy_keywords(fa_maildir_copy_t *c, uint64_t kw)
{
    uint64_t  out = 0;

    for (int k = 0; k < FA_MAILDIR_KEYWORDS_MAX; k++) {
        if ((kw & ((uint64_t) 1 << k)) && c->kwmap[k] >= 0) {
            out |= (uint64_t) 1 << c->kwmap[k];
        }
    }
    return out;
}

/* the bytes, when a link cannot be made: through tmp/, synced, renamed */
static fa_int_t
fa_maildir_copy_bytes(fa_maildir_copy_t *c, const char *from, const char *to)
{
    char     *tmp = fa_maildir_join(c->pool, fa_maildir_join(c->pool, c->dst->dir, "tmp"),
                                    fa_maildir_unique(c->md, c->pool));
    u_char    buf[65536];
    ssize_t   n;
    fa_int_t  rc = FA_OK;
    int       in, out;

    in = open(from, O_RDONLY | O_CLOEXEC);
    if (in == -1) {
        return fa_maildir_sys_error(c->md, errno, "open()", from);
    }
    out = tmp ? open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
    if (out == -1) {
        close(in);
        return tmp ? fa_maildir_sys_error(c->md, errno, "open()", tmp) : FA_ERROR;
    }
    while (rc == FA_OK && (n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0 || write(out, buf, (size_t) n) != n) {
            rc = fa_maildir_sys_error(c->md, errno, "copying", from);
        }
    }
    if (rc == FA_OK && fsync(out) != 0) {
        rc = fa_maildir_sys_error(c->md, errno, "fsync()", tmp);
    }
    close(in);
    close(out);
    if (rc == FA_OK && rename(tmp, to) != 0) {
        rc = fa_maildir_sys_error(c->md, errno, "rename()", tmp);
    }
    if (rc != FA_OK) {
        unlink(tmp);
    }
    return rc;
}

/* the source file of m now, found by its base; NULL when it is gone */
static char *
fa_maildir_copy_find(fa_maildir_copy_t *c, fa_maildir_msg_t *m)
{
    static const char  *subs[] = { "cur", "new" };
    struct dirent      *de;
    char               *found = NULL, *dir;
    DIR                *d;

    for (size_t i = 0; found == NULL && i < fa_nelems(subs); i++) {
        dir = fa_maildir_join(c->pool, c->src->dir, subs[i]);
        if (dir == NULL || (d = opendir(dir)) == NULL) {
            continue;
        }
        while (found == NULL && (de = readdir(d)) != NULL) {
            if (strncmp(de->d_name, m->file + 4, m->base_len) == 0
                && (de->d_name[m->base_len] == ':' || de->d_name[m->base_len] == '\0'))
            {
                found = fa_maildir_join(c->pool, dir, de->d_name);
            }
        }
        closedir(d);
    }
    return found;
}

/* "cur/BASE:2,INFO" in the destination; a new BASE when fresh is set */
static char *
fa_maildir_copy_name(fa_maildir_copy_t *c, fa_maildir_msg_t *m, int fresh, const char *info)
{
    const char  *base = m->file + 4, *sizes = base + strcspn(base, ",:");
    size_t       blen = m->base_len, size;
    char        *name;

    if (fresh) {
        base = fa_maildir_unique(c->md, c->pool);
        if (base == NULL) {
            return NULL;
        }
        blen = strlen(base) + (size_t) (m->file + 4 + m->base_len - sizes);
    }
    size = blen + strlen(info) + 16;
    name = fa_pnalloc(c->pool, size);
    if (name) {
        fa_snprintf(name, size, "%s/%.*s%.*s%s%s", *info ? "cur" : "new",
                    fresh ? (int) strlen(base) : (int) blen, base,
                    fresh ? (int) (m->file + 4 + m->base_len - sizes) : 0, sizes,
                    *info ? ":2," : "", info);
    }
    return name;
}

static fa_int_t
fa_maildir_copy_one(fa_maildir_copy_t *c, fa_maildir_msg_t *m)
{
    const fa_maildir_meta_t  *meta;
    char                     *info, *name, *from, *to;
    fa_maildir_msg_t         *n;
    fa_str_t           guid;
    int                fresh = c->same;

    info = fa_maildir_info_make(c->pool, m->flags, fa_maildir_copy_keywords(c, m->keywords),
                                m->info);
    from = fa_maildir_join(c->pool, c->src->dir, m->file);
    if (info == NULL || from == NULL) {
        return FA_ERROR;
    }
    for (int attempt = 0; ; attempt++) {
        name = fa_maildir_copy_name(c, m, fresh, info);
        to = name ? fa_maildir_join(c->pool, c->dst->dir, name) : NULL;
        if (to == NULL) {
            return FA_ERROR;
        }
        if (link(from, to) == 0) {
            break;
        }
        if (errno == EEXIST && attempt < 2) {
            fresh = 1;                        /* the name is taken there */
            continue;
        }
        if (errno == EXDEV || errno == EPERM || errno == EMLINK) {
            fa_int_t rc = fa_maildir_copy_bytes(c, from, to);
            if (rc != FA_OK) {
                return rc;
            }
            break;
        }
        if (errno == ENOENT && access(from, F_OK) != 0 && attempt < 2) {
            /* renamed by a flag change since the source was read, or expunged */
            from = fa_maildir_copy_find(c, m);
            if (from == NULL) {
                return FA_DECLINED;
            }
            continue;
        }
        return fa_maildir_sys_error(c->md, errno, "link()", from);
    }
    if ((n = fa_array_push(&c->dst->msgs)) == NULL
        || (name = fa_pstrcat(c->dst->pool, name, "")) == NULL)
    {
        return FA_ERROR;
    }
    fa_maildir_name_parse(n, name);
    meta = fa_maildir_cache_find(c->cache, m->file + 4, m->base_len);
    if (meta) {
        fa_maildir_cache_record(&c->records, n->file + 4, n->base_len, meta);
    }
    n->uid = c->dst->uidnext++;
    n->modseq = c->modseq;
    n->changed = 1;
    n->size = m->size;
    guid = fa_maildir_msg_guid(m);
    n->ext = NULL;
    if (fresh || m->ext) {
        /* the GUID stays the original's, whatever the new name says */
        n->ext = fa_pnalloc(c->dst->pool, guid.len + 2);
        if (n->ext == NULL) {
            return FA_ERROR;
        }
        fa_snprintf(n->ext, guid.len + 2, "G%.*s", (int) guid.len, guid.data);
    }
    c->src_uids[c->n] = m->uid;
    c->dst_uids[c->n++] = n->uid;
    c->bytes += m->size;
    return FA_OK;
}

/* sorted UIDs as ranges */
static fa_uid_set_t *
fa_maildir_uid_set(fa_pool_t *pool, uint32_t *uids, fa_uint_t n)
{
    fa_uid_set_t  *set = fa_pcalloc(pool, sizeof(fa_uid_set_t));

    if (set == NULL || (set->ranges = fa_palloc(pool, (n + 1) * sizeof(fa_uid_range_t))) == NULL) {
        return NULL;
    }
    for (fa_uint_t i = 0; i < n; i++) {
        if (set->nranges && set->ranges[set->nranges - 1].last + 1 == uids[i]) {
            set->ranges[set->nranges - 1].last = uids[i];
        } else {
            set->ranges[set->nranges].first = set->ranges[set->nranges].last = uids[i];
            set->nranges++;
        }
    }
    return set;
}

/* take: the originals of a move (by UID), or the \Deleted ones (expunge) */
typedef int (*fa_maildir_take_pt)(fa_maildir_copy_t *c, fa_maildir_msg_t *m);

static int
fa_maildir_take_moved(fa_maildir_copy_t *c, fa_maildir_msg_t *m)
{
    return bsearch(&m->uid, c->src_uids, c->n, sizeof(uint32_t), fa_maildir_uid_sort) != NULL;
}

static int
fa_maildir_take_deleted(fa_maildir_copy_t *c, fa_maildir_msg_t *m)
{
    if (!(m->flags & FA_FLAG_DELETED) || (c->uids && !fa_uid_set_contains(c->uids, m->uid))
        || c->n == c->max)
    {
        return 0;               /* a flood of new \Deleted meanwhile waits for next time */
    }
    c->src_uids[c->n++] = m->uid;
    c->bytes += m->size;
    return 1;
}

/*
 * Under the folder's lock, so the choice is made on what is true now: the
 * files unlinked, the directories synced, the UIDs recorded as expunged.
 */
static fa_int_t
fa_maildir_remove(fa_maildir_copy_t *c, const char *dir, fa_maildir_take_pt take)
{
    fa_maildir_view_t  *v;
    fa_maildir_msg_t   *m;
    uint64_t            modseq = 0;
    fa_int_t            rc;

    if ((rc = fa_maildir_view_locked(c->md, dir, &v)) != FA_OK) {
        return rc;
    }
    for (fa_uint_t i = 0; rc == FA_OK && i < v->msgs.nelts; ) {
        m = (fa_maildir_msg_t *) v->msgs.elts + i;
        if (!take(c, m)) {
            i++;
            continue;
        }
        if (unlink(fa_maildir_join(v->pool, dir, m->file)) != 0 && errno != ENOENT) {
            rc = fa_maildir_sys_error(c->md, errno, "unlink()", m->file);
            break;
        }
        modseq = modseq ? modseq : fa_maildir_view_modseq(v);
        fa_maildir_view_expunge(v, i, modseq);
    }
    if (rc == FA_OK && modseq
        && (rc = fa_maildir_fsync_dir(c->md, fa_maildir_join(v->pool, dir, "cur"))) == FA_OK
        && (rc = fa_maildir_fsync_dir(c->md, fa_maildir_join(v->pool, dir, "new"))) == FA_OK)
    {
        rc = fa_maildir_view_commit(c->md, v);
    }
    if (rc == FA_OK && modseq) {
        (void) fa_maildir_cache_compact(c->md, v);
    }
    c->modseq = v->highestmodseq;
    fa_maildir_view_release(c->md, v);
    return rc;
}

/* a copy adds to the user's usage (a move does not): refused whole if over */
static fa_int_t
fa_maildir_copy_quota(fa_maildir_copy_t *c, const fa_uid_set_t *uids, const char *root)
{
    fa_maildir_msg_t  *m = c->src->msgs.elts;
    uint64_t           bytes = 0, n = 0;

    for (fa_uint_t i = 0; i < c->src->msgs.nelts; i++) {
        if (fa_uid_set_contains(uids, m[i].uid)) {
            bytes += m[i].size;
            n++;
        }
    }
    return n ? fa_maildir_quota_check(c->md, root, bytes, n) : FA_OK;
}

/* into the locked destination view: links, syncs, UIDs */
static fa_int_t
fa_maildir_copy_into(fa_maildir_copy_t *c, const fa_uid_set_t *uids)
{
    fa_maildir_msg_t  *m = c->src->msgs.elts;
    fa_int_t           rc = fa_maildir_copy_kwmap(c);

    c->modseq = fa_maildir_view_modseq(c->dst);
    for (fa_uint_t i = 0; rc == FA_OK && i < c->src->msgs.nelts; i++) {
        if (fa_uid_set_contains(uids, m[i].uid)) {
            rc = fa_maildir_copy_one(c, &m[i]);
            rc = rc == FA_DECLINED ? FA_OK : rc;       /* expunged meanwhile: not copied */
        }
    }
    if (rc == FA_OK && c->n
        && (rc = fa_maildir_fsync_dir(c->md, fa_maildir_join(c->pool, c->dst->dir, "cur")))
           == FA_OK
        && (rc = fa_maildir_fsync_dir(c->md, fa_maildir_join(c->pool, c->dst->dir, "new")))
           == FA_OK
        && (rc = fa_maildir_cache_write(c->md, c->dst->dir, &c->records)) == FA_OK)
    {
        rc = fa_maildir_view_commit(c->md, c->dst);
    }
    if (rc != FA_OK) {
        /* files without UIDs would be numbered by the next sync: a retry's duplicates */
        fa_maildir_msg_t *n = c->dst->msgs.elts;
        for (fa_uint_t i = c->dst->uidlist_new_from; i < c->dst->msgs.nelts; i++) {
            unlink(fa_maildir_join(c->pool, c->dst->dir, n[i].file));
        }
    }
    return rc;
}

fa_int_t
fa_maildir_copy(fa_mailbox_t *box, const fa_uid_set_t *uids, const fa_str_t *dest, int move,
    fa_pool_t *pool, fa_storage_copy_pt cb, void *data)
{
    fa_maildir_copy_t   c;
    fa_maildir_loc_t    loc;
    fa_maildir_done_t  *d;
    struct stat         sb;
    uint32_t            uidvalidity = 0;
    fa_int_t            rc;

    memset(&c, 0, sizeof(c));
    c.md = box->md;
    if ((rc = fa_maildir_box_refresh(box)) != FA_OK) {
        return rc;
    }
    c.src = box->view;
    c.pool = fa_pool_create(4096, c.md->log);       /* names made on the way */
    if (c.pool == NULL) {
        return FA_ERROR;
    }
    rc = fa_maildir_locate(c.md, &box->user, dest, pool, &loc);
    if (rc == FA_OK && stat(fa_maildir_join(pool, loc.dir, "cur"), &sb) != 0) {
        rc = FA_STORAGE_NOTFOUND;
    }
    c.src_uids = fa_palloc(pool, (c.src->msgs.nelts + 1) * sizeof(uint32_t));
    c.dst_uids = fa_palloc(pool, (c.src->msgs.nelts + 1) * sizeof(uint32_t));
    if (rc == FA_OK && (c.src_uids == NULL || c.dst_uids == NULL)) {
        rc = FA_ERROR;
    }
    c.same = rc == FA_OK && strcmp(loc.dir, box->loc.dir) == 0;
    if (rc == FA_OK) {
        rc = fa_maildir_cache_refresh(c.md, box->loc.dir, &box->cache);
        c.cache = box->cache;
    }
    if (rc == FA_OK && !move) {
        rc = fa_maildir_copy_quota(&c, uids, loc.root);
    }
    if (rc == FA_OK && (rc = fa_maildir_view_locked(c.md, loc.dir, &c.dst)) == FA_OK) {
        rc = fa_maildir_copy_into(&c, uids);
        uidvalidity = c.dst->uidvalidity;
        fa_maildir_view_release(c.md, c.dst);
    }
    if (rc == FA_OK && !move) {
        fa_maildir_quota_add(c.md, loc.root, (int64_t) c.bytes, (int64_t) c.n);
    }
    if (rc == FA_OK && move && c.n) {
        rc = fa_maildir_remove(&c, box->loc.dir, fa_maildir_take_moved);
    }
    fa_pool_destroy(c.pool);
    free(c.records.p);
    d = rc == FA_OK ? fa_maildir_done(c.md, FA_MAILDIR_DONE_COPY, fa_maildir_cb(cb), data)
                    : NULL;
    if (d == NULL) {
        return rc == FA_OK ? FA_ERROR : rc;
    }
    d->r.copy.uidvalidity = uidvalidity;
    d->r.copy.src = fa_maildir_uid_set(pool, c.src_uids, c.n);
    d->r.copy.dst = fa_maildir_uid_set(pool, c.dst_uids, c.n);
    if (d->r.copy.src == NULL || d->r.copy.dst == NULL) {
        free(d);
        return FA_ERROR;
    }
    return fa_maildir_post(d, FA_OK);
}

/* UIDS NULL: every \Deleted message; else the \Deleted ones in UIDS (UID EXPUNGE) */
fa_int_t
fa_maildir_expunge(fa_mailbox_t *box, const fa_uid_set_t *uids, fa_pool_t *pool,
    fa_storage_changes_pt cb, void *data)
{
    fa_maildir_copy_t      c;
    fa_maildir_done_t     *d;
    fa_mailbox_changes_t  *ch = fa_pcalloc(pool, sizeof(fa_mailbox_changes_t));
    fa_int_t               rc;

    memset(&c, 0, sizeof(c));
    c.md = box->md;
    c.uids = uids;
    if (ch == NULL || (rc = fa_maildir_box_refresh(box)) != FA_OK) {
        return ch ? rc : FA_ERROR;
    }
    /* at most what the folder holds now; more cannot have the flag */
    c.src_uids = fa_palloc(pool, (box->view->msgs.nelts + 64) * sizeof(uint32_t));
    if (c.src_uids == NULL) {
        return FA_ERROR;
    }
    c.max = box->view->msgs.nelts + 64;
    if ((rc = fa_maildir_remove(&c, box->loc.dir, fa_maildir_take_deleted)) != FA_OK) {
        return rc;
    }
    fa_maildir_quota_add(c.md, box->loc.root, -(int64_t) c.bytes, -(int64_t) c.n);
    ch->expunged = c.src_uids;
    ch->nexpunged = c.n;
    ch->highestmodseq = fa_max(c.modseq, 1);
    d = fa_maildir_done(c.md, FA_MAILDIR_DONE_CHANGES, fa_maildir_cb(cb), data);
    if (d == NULL) {
        return FA_ERROR;
    }
    d->r.changes = ch;
    return fa_maildir_post(d, FA_OK);
}
