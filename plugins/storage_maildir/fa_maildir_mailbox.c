/*
 * The namespace: listing, creating, deleting, renaming and subscribing to
 * mailboxes, their status, and UIDVALIDITY.
 *
 * Maildir++ is flat: "A/B" is the folder ".A.B" whether or not ".A"
 * exists.  A parent that exists only through its children is listed as
 * \Noselect, as is a directory without cur/ (how Dovecot keeps one).
 */

#include "fa_maildir.h"

#define FA_MAILDIR_SUBSCRIPTIONS  "subscriptions"
#define FA_MAILDIR_UIDVALIDITY    "facteur-uidvalidity"

static fa_int_t fa_maildir_children(fa_maildir_t *md, const char *root, const char *folder,
    fa_array_t *out);

static int
fa_maildir_exists(fa_pool_t *pool, const char *dir)
{
    struct stat  sb;
    char        *cur = fa_maildir_join(pool, dir, "cur");

    return cur && stat(cur, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/*
 * A new UIDVALIDITY for any folder of this user: the time, or one more
 * than the last one given, so a folder deleted and made again within the
 * same second still gets a new one (IMAP clients rely on that).
 */
uint32_t
fa_maildir_uidvalidity_next(fa_maildir_t *md, const char *root)
{
    fa_pool_t  *pool = fa_pool_create(1024, md->log);
    fa_str_t    old;
    uint32_t    next = 0, now = (uint32_t) time(NULL);
    char        buf[16];

    if (pool == NULL || fa_maildir_lock(md, root, FA_MAILDIR_UIDVALIDITY) != FA_OK) {
        goto done;
    }
    if (fa_maildir_read_file(md, pool, fa_maildir_join(pool, root, FA_MAILDIR_UIDVALIDITY),
                             &old) == FA_OK)
    {
        next = (uint32_t) strtoul((char *) old.data, NULL, 10);
    }
    next = fa_max(next + 1, now);
    fa_snprintf(buf, sizeof(buf), "%u\n", next);
    if (fa_maildir_replace_file(md, root, FA_MAILDIR_UIDVALIDITY, (u_char *) buf,
                                strlen(buf)) != FA_OK)
    {
        next = 0;
    }
    fa_maildir_unlock(md, root, FA_MAILDIR_UIDVALIDITY);
done:
    if (pool) {
        fa_pool_destroy(pool);
    }
    return next;
}

/* ---- subscriptions: Dovecot's file, version 2 ("V\t2\n\n", levels by tabs) */

static fa_int_t
fa_maildir_subs_read(fa_maildir_t *md, fa_pool_t *pool, const char *root, fa_array_t *names)
{
    fa_str_t   file;
    char      *p, *nl;
    int        v2;
    fa_int_t   rc;

    rc = fa_maildir_read_file(md, pool, fa_maildir_join(pool, root, FA_MAILDIR_SUBSCRIPTIONS),
                              &file);
    if (rc != FA_OK) {
        return rc == FA_DECLINED ? FA_OK : rc;
    }
    p = (char *) file.data;
    v2 = strncmp(p, "V\t2\n\n", 5) == 0;
    p += v2 ? 5 : 0;
    for ( ; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (nl == NULL) {
            break;
        }
        *nl = '\0';
        if (*p == '\0') {
            continue;
        }
        for (char *t = p; v2 && *t; t++) {
            *t = *t == '\t' ? FA_MAILBOX_SEPARATOR : *t;
        }
        fa_str_t *s = fa_array_push(names);
        if (s == NULL) {
            return FA_ERROR;
        }
        s->data = (u_char *) p;
        s->len = (size_t) (nl - p);
    }
    return FA_OK;
}

static fa_int_t
fa_maildir_subs_write(fa_maildir_t *md, const char *root, fa_array_t *names)
{
    fa_str_t  *s = names->elts;
    size_t     size = 8, n;
    u_char    *buf, *o;
    fa_int_t   rc;

    for (fa_uint_t i = 0; i < names->nelts; i++) {
        size += s[i].len + 1;
    }
    buf = o = malloc(size);
    if (buf == NULL) {
        return FA_ERROR;
    }
    o += fa_snprintf((char *) o, size, "V\t2\n\n");
    for (fa_uint_t i = 0; i < names->nelts; i++) {
        for (n = 0; n < s[i].len; n++) {
            *o++ = s[i].data[n] == FA_MAILBOX_SEPARATOR ? '\t' : s[i].data[n];
        }
        *o++ = '\n';
    }
    rc = fa_maildir_replace_file(md, root, FA_MAILDIR_SUBSCRIPTIONS, buf, (size_t) (o - buf));
    free(buf);
    return rc;
}

/* INBOX is stored as "INBOX" whatever case the client used */
static void
fa_maildir_norm_inbox(fa_str_t *name)
{
    if (name->len >= 5 && strncasecmp((char *) name->data, "INBOX", 5) == 0
        && (name->len == 5 || name->data[5] == FA_MAILBOX_SEPARATOR))
    {
        memcpy(name->data, "INBOX", 5);
    }
}

fa_int_t
fa_maildir_mailbox_subscribe(fa_storage_t *st, const fa_str_t *user, const fa_str_t *name,
    int on, fa_storage_done_pt cb, void *data)
{
    fa_maildir_t  *md = st->data;
    fa_pool_t     *pool = fa_pool_create(4096, md->log);
    fa_array_t     names;
    fa_str_t      *s, norm;
    char          *root;
    fa_uint_t      i;
    fa_int_t       rc;

    (void) cb;
    (void) data;
    if (pool == NULL) {
        return FA_ERROR;
    }
    rc = fa_storage_mailbox_name_valid(name);
    if (rc == FA_OK) {
        rc = fa_maildir_user_root(md, user, pool, &root);
    }
    if (rc != FA_OK || (rc = fa_maildir_lock(md, root, FA_MAILDIR_SUBSCRIPTIONS)) != FA_OK) {
        fa_pool_destroy(pool);
        return rc;
    }
    norm.len = name->len;
    norm.data = fa_pstrdup(pool, name);
    fa_maildir_norm_inbox(&norm);
    rc = fa_array_init(&names, pool, 16, sizeof(fa_str_t));
    if (rc == FA_OK) {
        rc = fa_maildir_subs_read(md, pool, root, &names);
    }
    s = names.elts;
    for (i = 0; rc == FA_OK && i < names.nelts && !fa_str_equal(&s[i], &norm); i++) {
        /* find it */
    }
    if (rc == FA_OK && on && i == names.nelts) {
        s = fa_array_push(&names);
        rc = s ? (*s = norm, fa_maildir_subs_write(md, root, &names)) : FA_ERROR;
    } else if (rc == FA_OK && !on && i < names.nelts) {
        memmove(&s[i], &s[i + 1], (names.nelts - i - 1) * sizeof(fa_str_t));
        names.nelts--;
        rc = fa_maildir_subs_write(md, root, &names);
    }
    fa_maildir_unlock(md, root, FA_MAILDIR_SUBSCRIPTIONS);
    fa_pool_destroy(pool);
    return rc;
}

/* ---- listing ----------------------------------------------------------- */

static fa_mailbox_info_t *
fa_maildir_list_add(fa_array_t *boxes, fa_str_t *name, int noselect)
{
    fa_mailbox_info_t  *b = boxes->elts;

    for (fa_uint_t i = 0; i < boxes->nelts; i++) {
        if (fa_str_equal(&b[i].name, name)) {
            b[i].noselect &= (unsigned) noselect;
            return &b[i];
        }
    }
    b = fa_array_push(boxes);
    if (b) {
        b->name = *name;
        b->noselect = (unsigned) noselect;
    }
    return b;
}

/* the folders on disk, decoded; INBOX first */
static fa_int_t
fa_maildir_list_scan(fa_maildir_t *md, fa_pool_t *pool, const char *root, fa_array_t *boxes)
{
    fa_mailbox_info_t  *b;
    struct dirent      *de;
    fa_str_t            name = fa_string("INBOX");
    DIR                *d;

    if (fa_maildir_list_add(boxes, &name, 0) == NULL) {
        return FA_ERROR;
    }
    d = opendir(root);
    if (d == NULL) {
        return fa_maildir_sys_error(md, errno, "opendir()", root);
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) {
            continue;
        }
        if (fa_mailbox_from_maildir(pool, de->d_name, &name) != FA_OK) {
            continue;
        }
        char *dir = fa_maildir_join(pool, root, de->d_name);
        b = dir ? fa_maildir_list_add(boxes, &name, !fa_maildir_exists(pool, dir)) : NULL;
        if (b == NULL) {
            closedir(d);
            return FA_ERROR;
        }
        b->special_use = b->noselect ? 0 : fa_maildir_state_special_use(md, pool, dir);
    }
    closedir(d);
    return FA_OK;
}

/* "A/B/C" alone implies "A" and "A/B", both \Noselect, both with children */
static fa_int_t
fa_maildir_list_parents(fa_array_t *boxes)
{
    fa_uint_t  n = boxes->nelts;

    for (fa_uint_t i = 0; i < n; i++) {
        fa_mailbox_info_t *b = (fa_mailbox_info_t *) boxes->elts + i;
        fa_str_t name = b->name;
        for (size_t k = name.len; k > 0; k--) {
            if (name.data[k - 1] == FA_MAILBOX_SEPARATOR) {
                fa_str_t parent = { k - 1, name.data };
                fa_mailbox_info_t *p = fa_maildir_list_add(boxes, &parent, 1);
                if (p == NULL) {
                    return FA_ERROR;
                }
                p->has_children = 1;
            }
        }
    }
    return FA_OK;
}

static int
fa_maildir_info_cmp(const void *a, const void *b)
{
    const fa_mailbox_info_t *x = a, *y = b;
    int inbox_x = fa_str_eq(&x->name, "INBOX"), inbox_y = fa_str_eq(&y->name, "INBOX");
    int c;

    if (inbox_x || inbox_y) {
        return inbox_y - inbox_x;
    }
    c = memcmp(x->name.data, y->name.data, fa_min(x->name.len, y->name.len));
    return c ? c : (x->name.len > y->name.len) - (x->name.len < y->name.len);
}

static void
fa_maildir_list_mark(fa_array_t *boxes, fa_array_t *subs)
{
    fa_mailbox_info_t  *b = boxes->elts;
    fa_str_t           *s = subs->elts;

    for (fa_uint_t i = 0; i < boxes->nelts; i++) {
        for (fa_uint_t j = 0; j < subs->nelts; j++) {
            if (fa_str_equal(&b[i].name, &s[j])) {
                b[i].subscribed = 1;
            }
        }
    }
}

fa_int_t
fa_maildir_mailbox_list(fa_storage_t *st, const fa_str_t *user, fa_pool_t *pool,
    fa_storage_list_pt cb, void *data)
{
    fa_maildir_t       *md = st->data;
    fa_maildir_done_t  *d;
    fa_array_t         *boxes, subs;
    char               *root;
    fa_int_t            rc;

    rc = fa_maildir_user_root(md, user, pool, &root);
    if (rc != FA_OK) {
        return rc;
    }
    boxes = fa_array_create(pool, 16, sizeof(fa_mailbox_info_t));
    if (boxes == NULL || fa_array_init(&subs, pool, 16, sizeof(fa_str_t)) != FA_OK) {
        return FA_ERROR;
    }
    if ((rc = fa_maildir_list_scan(md, pool, root, boxes)) != FA_OK
        || (rc = fa_maildir_list_parents(boxes)) != FA_OK
        || (rc = fa_maildir_subs_read(md, pool, root, &subs)) != FA_OK)
    {
        return rc;
    }
    fa_maildir_list_mark(boxes, &subs);
    qsort(boxes->elts, boxes->nelts, sizeof(fa_mailbox_info_t), fa_maildir_info_cmp);
    d = fa_maildir_done(md, FA_MAILDIR_DONE_LIST, fa_maildir_cb(cb), data);
    if (d == NULL) {
        return FA_ERROR;
    }
    d->r.list.boxes = boxes->elts;
    d->r.list.n = boxes->nelts;
    return fa_maildir_post(d, FA_OK);
}

/* ---- create, delete, rename --------------------------------------------- */

/*
 * "a" and "a/b" for "a/b/c", made mailboxes when nothing is there (RFC 3501
 * asks for the superiors of a created name; an existing \Noselect
 * directory is left as it is).
 */
static fa_int_t
fa_maildir_parents(fa_maildir_t *md, fa_pool_t *pool, const fa_str_t *user,
    const fa_str_t *name)
{
    fa_maildir_loc_t  loc;
    struct stat       sb;
    fa_int_t          rc;

    for (size_t i = 1; i < name->len; i++) {
        if (name->data[i] != FA_MAILBOX_SEPARATOR) {
            continue;
        }
        fa_str_t parent = { i, name->data };
        rc = fa_maildir_locate(md, user, &parent, pool, &loc);
        if (rc != FA_OK) {
            return rc;
        }
        if (loc.inbox || lstat(loc.dir, &sb) == 0) {
            continue;
        }
        if (mkdir(loc.dir, 0700) != 0 && errno != EEXIST) {
            return fa_maildir_sys_error(md, errno, "mkdir()", loc.dir);
        }
        if ((rc = fa_maildir_folder_new(md, &loc, 0)) != FA_OK) {
            return rc;
        }
    }
    return FA_OK;
}

fa_int_t
fa_maildir_mailbox_create(fa_storage_t *st, const fa_str_t *user, const fa_str_t *name,
    uint32_t special_use, fa_storage_done_pt cb, void *data)
{
    fa_maildir_t      *md = st->data;
    fa_pool_t         *pool = fa_pool_create(4096, md->log);
    fa_maildir_loc_t   loc;
    fa_int_t           rc;

    (void) cb;
    (void) data;
    if (pool == NULL) {
        return FA_ERROR;
    }
    rc = fa_maildir_locate(md, user, name, pool, &loc);
    if (rc == FA_OK && (special_use & ~(uint32_t) 0x7f)) {
        rc = FA_STORAGE_INVALID;
    }
    if (rc == FA_OK && (loc.inbox || fa_maildir_exists(pool, loc.dir))) {
        rc = FA_STORAGE_EXISTS;
    }
    /* mkdir() decides between two sessions creating the same name */
    if (rc == FA_OK && mkdir(loc.dir, 0700) != 0) {
        rc = errno != EEXIST ? fa_maildir_sys_error(md, errno, "mkdir()", loc.dir)
             : fa_maildir_exists(pool, loc.dir) ? FA_STORAGE_EXISTS : FA_OK;
    }
    if (rc == FA_OK) {
        rc = fa_maildir_folder_new(md, &loc, special_use);
    }
    if (rc == FA_OK) {
        rc = fa_maildir_parents(md, pool, user, name);
    }
    fa_pool_destroy(pool);
    return rc;
}

/*
 * A name that is only a parent (\Noselect, its children exist) cannot be
 * deleted (RFC 3501); one without children does not exist.  A deleted
 * mailbox whose children remain becomes such a parent by itself: Maildir++
 * lists the superiors of every folder.
 */
static fa_int_t
fa_maildir_delete_parent(fa_maildir_t *md, fa_pool_t *pool, fa_maildir_loc_t *loc)
{
    fa_array_t  kids;
    fa_int_t    rc;

    if (fa_array_init(&kids, pool, 4, sizeof(char *)) != FA_OK) {
        return FA_ERROR;
    }
    rc = fa_maildir_children(md, loc->root, strrchr(loc->dir, '/') + 1, &kids);
    return rc != FA_OK ? rc : kids.nelts ? FA_STORAGE_INVALID : FA_STORAGE_NOTFOUND;
}

fa_int_t
fa_maildir_mailbox_delete(fa_storage_t *st, const fa_str_t *user, const fa_str_t *name,
    fa_storage_done_pt cb, void *data)
{
    fa_maildir_t       *md = st->data;
    fa_pool_t          *pool = fa_pool_create(4096, md->log);
    fa_maildir_loc_t    loc;
    fa_maildir_view_t  *v;
    fa_mailbox_status_t status;
    char               *trash;
    fa_int_t            rc;

    (void) cb;
    (void) data;
    if (pool == NULL) {
        return FA_ERROR;
    }
    rc = fa_maildir_locate(md, user, name, pool, &loc);
    if (rc == FA_OK && loc.inbox) {
        rc = FA_STORAGE_INVALID;              /* IMAP: INBOX cannot be deleted */
    }
    if (rc == FA_OK && !fa_maildir_exists(pool, loc.dir)) {
        rc = fa_maildir_delete_parent(md, pool, &loc);
        fa_pool_destroy(pool);
        return rc;
    }
    if (rc == FA_OK) {
        rc = fa_maildir_view_locked(md, loc.dir, &v);
    }
    if (rc != FA_OK) {
        fa_pool_destroy(pool);
        return rc;
    }
    /*
     * Renamed aside in one step while locked (the lock goes with it), then
     * removed: no reader ever sees a folder with half its messages.
     */
    (void) fa_maildir_view_status(v, &status);
    trash = fa_maildir_join(pool, fa_maildir_join(pool, loc.root, "tmp"),
                            fa_maildir_unique(md, pool));
    if (rename(loc.dir, trash) != 0) {
        rc = fa_maildir_sys_error(md, errno, "rename()", loc.dir);
        fa_maildir_view_release(md, v);
    } else {
        fa_maildir_view_free(v);
        rc = fa_maildir_fsync_dir(md, loc.root);
        fa_maildir_quota_add(md, loc.root, -(int64_t) status.size, -(int64_t) status.messages);
        (void) fa_maildir_remove_tree(md, trash);
    }
    fa_pool_destroy(pool);
    return rc;
}

/*
 * INBOX renamed: IMAP moves its messages to the new mailbox and leaves
 * INBOX empty.  The files move as they are; the new folder's next sync
 * gives them UIDs, and INBOX records them expunged.
 */
static fa_int_t
fa_maildir_rename_inbox(fa_maildir_t *md, fa_pool_t *pool, fa_maildir_loc_t *from,
    fa_maildir_loc_t *to)
{
    fa_maildir_view_t  *v, *dest;
    fa_maildir_msg_t   *m;
    uint64_t            modseq;
    fa_int_t            rc;

    if ((rc = fa_maildir_folder_new(md, to, 0)) != FA_OK
        || (rc = fa_maildir_view_locked(md, from->dir, &v)) != FA_OK)
    {
        return rc;
    }
    modseq = fa_maildir_view_modseq(v);
    while (rc == FA_OK && v->msgs.nelts) {
        m = v->msgs.elts;
        if (rename(fa_maildir_join(pool, from->dir, m->file),
                   fa_maildir_join(pool, to->dir, m->file)) != 0)
        {
            rc = fa_maildir_sys_error(md, errno, "rename()", m->file);
            break;
        }
        fa_maildir_view_expunge(v, 0, modseq);
    }
    if (rc == FA_OK
        && (rc = fa_maildir_fsync_dir(md, fa_maildir_join(pool, to->dir, "cur"))) == FA_OK
        && (rc = fa_maildir_fsync_dir(md, fa_maildir_join(pool, to->dir, "new"))) == FA_OK)
    {
        rc = fa_maildir_view_commit(md, v);
    }
    fa_maildir_view_release(md, v);
    if (rc == FA_OK && (rc = fa_maildir_view_read(md, to->dir, &dest)) == FA_OK) {
        fa_maildir_view_free(dest);
    }
    return rc;
}

/* the directory entries of a folder's children: ".A.B.*" for ".A.B" */
static fa_int_t
fa_maildir_children(fa_maildir_t *md, const char *root, const char *folder, fa_array_t *out)
{
    size_t          n = strlen(folder);
    struct dirent  *de;
    DIR            *d = opendir(root);

    if (d == NULL) {
        return fa_maildir_sys_error(md, errno, "opendir()", root);
    }
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, folder, n) == 0 && de->d_name[n] == '.') {
            char **c = fa_array_push(out);
            if (c == NULL || (*c = fa_pstrcat(out->pool, de->d_name, "")) == NULL) {
                closedir(d);
                return FA_ERROR;
            }
        }
    }
    closedir(d);
    return FA_OK;
}

/*
 * A folder and its children: ".A.B" and ".A.B.*" become ".C" and ".C.*".
 * The names are collected first (readdir() during renames may miss some)
 * and every target checked free before anything moves.
 */
static fa_int_t
fa_maildir_rename_tree(fa_maildir_t *md, fa_pool_t *pool, fa_maildir_loc_t *from,
    fa_maildir_loc_t *to)
{
    const char  *old = strrchr(from->dir, '/') + 1, *new = strrchr(to->dir, '/') + 1;
    size_t       olen = strlen(old);
    fa_array_t   kids;
    struct stat  sb;
    char       **k, **dst;
    int          self = fa_maildir_exists(pool, from->dir);
    fa_int_t     rc;

    if (fa_array_init(&kids, pool, 8, sizeof(char *)) != FA_OK) {
        return FA_ERROR;
    }
    if ((rc = fa_maildir_children(md, from->root, old, &kids)) != FA_OK) {
        return rc;
    }
    if (!self && kids.nelts == 0) {
        return FA_STORAGE_NOTFOUND;
    }
    k = kids.elts;
    dst = fa_pnalloc(pool, (kids.nelts + 1) * sizeof(char *));
    if (dst == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < kids.nelts; i++) {
        dst[i] = fa_pstrcat(pool, new, k[i] + olen);
        if (dst[i] == NULL || strlen(dst[i]) > 255) {
            return dst[i] ? FA_STORAGE_INVALID : FA_ERROR;
        }
        if (lstat(fa_maildir_join(pool, from->root, dst[i]), &sb) == 0) {
            return FA_STORAGE_EXISTS;
        }
    }
    if (self && rename(from->dir, to->dir) != 0) {
        return fa_maildir_sys_error(md, errno, "rename()", from->dir);
    }
    for (fa_uint_t i = 0; i < kids.nelts; i++) {
        if (rename(fa_maildir_join(pool, from->root, k[i]),
                   fa_maildir_join(pool, from->root, dst[i])) != 0)
        {
            return fa_maildir_sys_error(md, errno, "rename()", k[i]);
        }
    }
    return fa_maildir_fsync_dir(md, from->root);
}

fa_int_t
fa_maildir_mailbox_rename(fa_storage_t *st, const fa_str_t *user, const fa_str_t *from,
    const fa_str_t *to, fa_storage_done_pt cb, void *data)
{
    fa_maildir_t      *md = st->data;
    fa_pool_t         *pool = fa_pool_create(4096, md->log);
    fa_maildir_loc_t   src, dst;
    struct stat        sb;
    fa_int_t           rc;

    (void) cb;
    (void) data;
    if (pool == NULL) {
        return FA_ERROR;
    }
    rc = fa_maildir_locate(md, user, from, pool, &src);
    if (rc == FA_OK) {
        rc = fa_maildir_locate(md, user, to, pool, &dst);
    }
    if (rc == FA_OK && (dst.inbox || lstat(dst.dir, &sb) == 0)) {
        rc = FA_STORAGE_EXISTS;
    }
    /* "A" into "A/B": the tree would have to contain itself */
    if (rc == FA_OK && !src.inbox && to->len > from->len
        && to->data[from->len] == FA_MAILBOX_SEPARATOR
        && strncasecmp((char *) to->data, (char *) from->data, from->len) == 0)
    {
        rc = FA_STORAGE_INVALID;
    }
    if (rc == FA_OK) {
        rc = src.inbox ? fa_maildir_rename_inbox(md, pool, &src, &dst)
                       : fa_maildir_rename_tree(md, pool, &src, &dst);
    }
    if (rc == FA_OK) {
        rc = fa_maildir_parents(md, pool, user, to);
    }
    fa_pool_destroy(pool);
    return rc;
}

fa_int_t
fa_maildir_mailbox_status(fa_storage_t *st, const fa_str_t *user, const fa_str_t *name,
    fa_storage_status_pt cb, void *data)
{
    fa_maildir_t       *md = st->data;
    fa_pool_t          *pool = fa_pool_create(4096, md->log);
    fa_maildir_loc_t    loc;
    fa_maildir_view_t  *v = NULL;
    fa_maildir_done_t  *d;
    fa_int_t            rc;

    if (pool == NULL) {
        return FA_ERROR;
    }
    rc = fa_maildir_locate(md, user, name, pool, &loc);
    if (rc == FA_OK && !fa_maildir_exists(pool, loc.dir)) {
        rc = FA_STORAGE_NOTFOUND;
    }
    if (rc == FA_OK) {
        rc = fa_maildir_view_read(md, loc.dir, &v);
    }
    d = rc == FA_OK ? fa_maildir_done(md, FA_MAILDIR_DONE_STATUS, fa_maildir_cb(cb), data)
                    : NULL;
    if (d && fa_maildir_view_status(v, &d->r.status) == FA_OK) {
        d->view = v;                          /* the keyword table is in it */
        fa_pool_destroy(pool);
        return fa_maildir_post(d, FA_OK);
    }
    free(d);
    fa_maildir_view_free(v);
    fa_pool_destroy(pool);
    return rc == FA_OK ? FA_ERROR : rc;
}
