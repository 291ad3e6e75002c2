/*
 * Views: a folder's files, uidlist and state read at one moment and merged.
 *
 * The files are the truth for what exists and its flags; the uidlist for
 * UIDs; the state for MODSEQs.  When they disagree — a delivery by another
 * program, a file renamed by mutt, a message deleted by hand, a writer that
 * crashed between its rename and its uidlist line — the view is "dirty",
 * and whoever holds the folder's lock folds the difference in: new files
 * get UIDs, vanished ones become expunges, changed flags get a MODSEQ.
 * A reader without the lock leaves dirty parts out (or as last recorded)
 * and fixes them itself when it can take the lock at once.
 */

#include "fa_maildir.h"

typedef struct {
    char       *file;        /* "new/NAME" or "cur/NAME" */
    size_t      base_len;
} fa_maildir_ent_t;

static int
fa_maildir_base_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int  c = memcmp(a, b, fa_min(alen, blen));

    return c ? c : (alen < blen ? -1 : alen > blen);
}

static int
fa_maildir_rec_cmp(const void *a, const void *b)
{
    const fa_maildir_rec_t *x = a, *y = b;

    return fa_maildir_base_cmp(x->base, x->base_len, y->base, y->base_len);
}

static int
fa_maildir_ent_cmp(const void *a, const void *b)
{
    const fa_maildir_ent_t *x = a, *y = b;
    int c = fa_maildir_base_cmp(x->file + 4, x->base_len, y->file + 4, y->base_len);

    return c ? c : (x->file[0] == 'c') - (y->file[0] == 'c');   /* cur/ last */
}

static int
fa_maildir_msg_cmp(const void *a, const void *b)
{
    const fa_maildir_msg_t *x = a, *y = b;

    return x->uid < y->uid ? -1 : x->uid > y->uid;
}

int
fa_maildir_uid_sort(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return x < y ? -1 : x > y;
}

static int
fa_maildir_str_cmp(const void *a, const void *b)
{
    return strcmp(*(char * const *) a, *(char * const *) b);
}

/* new/ before cur/: a file moving from new/ to cur/ meanwhile is seen at least once */
static fa_int_t
fa_maildir_scan(fa_maildir_t *md, fa_maildir_view_t *v, fa_array_t *ents)
{
    static const char  *subs[] = { "new", "cur" };
    struct dirent      *de;
    fa_maildir_ent_t   *e;
    DIR                *d;
    char               *path;

    for (size_t i = 0; i < fa_nelems(subs); i++) {
        path = fa_maildir_join(v->pool, v->dir, subs[i]);
        d = path ? opendir(path) : NULL;
        if (d == NULL) {
            return path ? fa_maildir_sys_error(md, errno, "opendir()", path) : FA_ERROR;
        }
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.' || de->d_type == DT_DIR) {
                continue;
            }
            e = fa_array_push(ents);
            if (e == NULL || (e->file = fa_maildir_join(v->pool, subs[i], de->d_name)) == NULL) {
                closedir(d);
                return FA_ERROR;
            }
            e->base_len = strcspn(de->d_name, ":");
        }
        closedir(d);
    }
    return FA_OK;
}

static fa_int_t
fa_maildir_add_msg(fa_maildir_t *md, fa_maildir_view_t *v, fa_maildir_rec_t *r, char *file)
{
    fa_maildir_msg_t  *m = fa_array_push(&v->msgs);
    struct stat        sb;

    if (m == NULL) {
        return FA_ERROR;
    }
    fa_maildir_name_parse(m, file);
    m->uid = r->uid;
    m->ext = r->ext;
    if (m->size == (uint64_t) -1) {
        /* delivered by a program that does not write S=: ask the file */
        char *path = fa_maildir_join(v->pool, v->dir, file);
        m->size = (path && stat(path, &sb) == 0) ? (uint64_t) sb.st_size : 0;
        (void) md;
    }
    return FA_OK;
}

/* uidlist records and directory entries, both sorted by base: a merge join */
static fa_int_t
fa_maildir_merge(fa_maildir_t *md, fa_maildir_view_t *v, fa_array_t *recs, fa_array_t *ents)
{
    fa_maildir_rec_t  *r = recs->elts;
    fa_maildir_ent_t  *e = ents->elts;
    fa_uint_t          i = 0, j = 0;
    int                c;

    qsort(r, recs->nelts, sizeof(*r), fa_maildir_rec_cmp);
    qsort(e, ents->nelts, sizeof(*e), fa_maildir_ent_cmp);
    while (i < recs->nelts || j < ents->nelts) {
        /* one file twice (caught moving from new/ to cur/): the cur/ one, last */
        if (j + 1 < ents->nelts && fa_maildir_base_cmp(e[j].file + 4, e[j].base_len,
                                       e[j + 1].file + 4, e[j + 1].base_len) == 0)
        {
            j++;
            continue;
        }
        c = i == recs->nelts ? 1 : j == ents->nelts ? -1
            : fa_maildir_base_cmp(r[i].base, r[i].base_len, e[j].file + 4, e[j].base_len);
        if (c < 0) {
            uint32_t *g = fa_array_push(&v->gone);
            if (g == NULL) {
                return FA_ERROR;
            }
            *g = r[i++].uid;
            v->missing = 1;
        } else if (c > 0) {
            char **f = fa_array_push(&v->fresh);
            if (f == NULL) {
                return FA_ERROR;
            }
            *f = e[j++].file;
        } else if (fa_maildir_add_msg(md, v, &r[i++], e[j++].file) != FA_OK) {
            return FA_ERROR;
        }
    }
    qsort(v->msgs.elts, v->msgs.nelts, sizeof(fa_maildir_msg_t), fa_maildir_msg_cmp);
    return FA_OK;
}

static int
fa_maildir_expunged(fa_maildir_view_t *v, uint32_t *sorted, uint32_t uid)
{
    return bsearch(&uid, sorted, v->expunges.nelts, sizeof(uint32_t), fa_maildir_uid_sort)
           != NULL;
}

/*
 * Each message's MODSEQ from its last state line; a message with no line,
 * or whose flags differ from the line's, changed behind our back.  A UID
 * with a line but no file (and no expunge yet) is gone.
 */
static fa_int_t
fa_maildir_attach_state(fa_maildir_view_t *v, fa_array_t *lines)
{
    fa_maildir_line_t     *l = lines->elts;
    fa_maildir_msg_t      *m = v->msgs.elts;
    fa_maildir_expunge_t  *x = v->expunges.elts;
    char                 **recorded;
    uint32_t              *xs;

    recorded = fa_pcalloc(v->pool, (v->msgs.nelts + 1) * sizeof(char *));
    xs = fa_pnalloc(v->pool, (v->expunges.nelts + 1) * sizeof(uint32_t));
    if (recorded == NULL || xs == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < v->expunges.nelts; i++) {
        xs[i] = x[i].uid;
    }
    qsort(xs, v->expunges.nelts, sizeof(uint32_t), fa_maildir_uid_sort);
    for (fa_uint_t i = 0; i < lines->nelts; i++) {
        fa_maildir_msg_t *hit = fa_maildir_view_find(v, l[i].uid);
        if (hit) {
            recorded[hit - m] = l[i].info;
            hit->modseq = l[i].modseq;
        } else if (!fa_maildir_expunged(v, xs, l[i].uid)) {
            uint32_t *g = fa_array_push(&v->gone);
            if (g == NULL) {
                return FA_ERROR;
            }
            *g = l[i].uid;
        }
    }
    for (fa_uint_t i = 0; i < v->msgs.nelts; i++) {
        if (recorded[i] == NULL || strcmp(recorded[i], m[i].info) != 0) {
            m[i].changed = 1;
            v->dirty = 1;
        }
        if (recorded[i] == NULL) {
            m[i].modseq = fa_max(v->highestmodseq, 1);
        }
    }
    return FA_OK;
}

static fa_maildir_view_t *
fa_maildir_view_new(fa_maildir_t *md, const char *dir)
{
    fa_pool_t          *pool = fa_pool_create(16384, md->log);
    fa_maildir_view_t  *v;

    if (pool == NULL) {
        return NULL;
    }
    v = fa_pcalloc(pool, sizeof(fa_maildir_view_t));
    if (v == NULL || (v->dir = fa_pnalloc(pool, strlen(dir) + 1)) == NULL
        || fa_array_init(&v->msgs, pool, 64, sizeof(fa_maildir_msg_t)) != FA_OK
        || fa_array_init(&v->expunges, pool, 16, sizeof(fa_maildir_expunge_t)) != FA_OK
        || fa_array_init(&v->fresh, pool, 8, sizeof(char *)) != FA_OK
        || fa_array_init(&v->gone, pool, 8, sizeof(uint32_t)) != FA_OK)
    {
        fa_pool_destroy(pool);
        return NULL;
    }
    v->pool = pool;
    strcpy(v->dir, dir);
    return v;
}

void
fa_maildir_view_free(fa_maildir_view_t *v)
{
    if (v) {
        fa_pool_destroy(v->pool);
    }
}

/* the three index files, and UIDNEXT from the uidlist's records */
static fa_int_t
fa_maildir_view_index(fa_maildir_t *md, fa_maildir_view_t *v, fa_array_t *recs,
    fa_array_t *lines)
{
    fa_maildir_rec_t  *r;
    fa_int_t           rc;

    if (fa_array_init(recs, v->pool, 64, sizeof(fa_maildir_rec_t)) != FA_OK
        || fa_array_init(lines, v->pool, 64, sizeof(fa_maildir_line_t)) != FA_OK)
    {
        return FA_ERROR;
    }
    if ((rc = fa_maildir_uidlist_read(md, v, recs)) != FA_OK
        || (rc = fa_maildir_keywords_read(md, v)) != FA_OK
        || (rc = fa_maildir_state_read(md, v, lines)) != FA_OK)
    {
        return rc;
    }
    r = recs->elts;
    v->uidnext = fa_max(v->uidnext, 1);
    for (fa_uint_t i = 0; i < recs->nelts; i++) {
        v->uidnext = fa_max(v->uidnext, r[i].uid + 1);
    }
    v->nrecs = recs->nelts;
    v->expunges_new_from = v->expunges.nelts;
    return FA_OK;
}

static fa_int_t
fa_maildir_view_load(fa_maildir_t *md, fa_maildir_view_t *v, int locked)
{
    fa_array_t  recs, ents, lines;
    fa_int_t    rc;

    if (fa_array_init(&ents, v->pool, 64, sizeof(fa_maildir_ent_t)) != FA_OK) {
        return FA_ERROR;
    }
    if ((rc = fa_maildir_view_index(md, v, &recs, &lines)) != FA_OK
        || (rc = fa_maildir_scan(md, v, &ents)) != FA_OK
        || (rc = fa_maildir_merge(md, v, &recs, &ents)) != FA_OK)
    {
        return rc;
    }
    if (locked && v->missing) {
        /*
         * readdir() may miss a file renamed while it runs (mutt setting a
         * flag): look again before calling anything expunged.
         */
        v->msgs.nelts = v->fresh.nelts = v->gone.nelts = ents.nelts = 0;
        v->missing = 0;
        if ((rc = fa_maildir_scan(md, v, &ents)) != FA_OK
            || (rc = fa_maildir_merge(md, v, &recs, &ents)) != FA_OK)
        {
            return rc;
        }
    }
    v->uidlist_new_from = v->msgs.nelts;
    if ((rc = fa_maildir_attach_state(v, &lines)) != FA_OK) {
        return rc;
    }
    if (v->uidvalidity == 0 || v->fresh.nelts || v->gone.nelts || v->uidlist_rewrite) {
        v->dirty = 1;
    }
    return FA_OK;
}

/* the Maildir a folder belongs to: its parent when it is a ".Folder" */
static char *
fa_maildir_root_of(fa_pool_t *pool, const char *dir)
{
    const char  *slash = strrchr(dir, '/');
    char        *root;

    if (slash == NULL || slash[1] != '.') {
        return (char *) dir;
    }
    root = fa_pnalloc(pool, (size_t) (slash - dir) + 1);
    if (root) {
        memcpy(root, dir, (size_t) (slash - dir));
        root[slash - dir] = '\0';
    }
    return root;
}

/* under the lock: fold what changed behind our back into the view, durably */
static fa_int_t
fa_maildir_view_fix(fa_maildir_t *md, fa_maildir_view_t *v)
{
    fa_maildir_msg_t  *m = v->msgs.elts;
    uint32_t          *gone = v->gone.elts;
    char             **fresh = v->fresh.elts;
    uint64_t           modseq;

    if (v->uidvalidity == 0) {
        v->uidvalidity = fa_maildir_uidvalidity_next(md, fa_maildir_root_of(v->pool, v->dir));
        if (v->uidvalidity == 0 || fa_maildir_random_hex(v->guid, 16) != FA_OK) {
            return FA_ERROR;
        }
        v->uidlist_rewrite = v->state_rewrite = 1;
    }
    modseq = fa_maildir_view_modseq(v);
    qsort(gone, v->gone.nelts, sizeof(uint32_t), fa_maildir_uid_sort);
    for (fa_uint_t i = 0; i < v->gone.nelts; i++) {
        if (i == 0 || gone[i] != gone[i - 1]) {
            fa_maildir_expunge_t *x = fa_array_push(&v->expunges);
            if (x == NULL) {
                return FA_ERROR;
            }
            x->uid = gone[i];
            x->modseq = modseq;
        }
    }
    v->uidlist_rewrite |= v->missing;
    for (fa_uint_t i = 0; i < v->msgs.nelts; i++) {
        if (m[i].changed) {
            m[i].modseq = modseq;
        }
    }
    /* new files in name order, which is delivery order for names like ours */
    qsort(fresh, v->fresh.nelts, sizeof(char *), fa_maildir_str_cmp);
    for (fa_uint_t i = 0; i < v->fresh.nelts; i++) {
        fa_maildir_rec_t r = { v->uidnext++, NULL, 0, NULL };
        if (fa_maildir_add_msg(md, v, &r, fresh[i]) != FA_OK) {
            return FA_ERROR;
        }
        fa_maildir_msg_t *n = (fa_maildir_msg_t *) v->msgs.elts + v->msgs.nelts - 1;
        n->modseq = modseq;
        n->changed = 1;
    }
    v->fresh.nelts = v->gone.nelts = 0;
    v->missing = v->dirty = 0;
    return fa_maildir_index_write(md, v);
}

/* a fresh view with the folder locked: for changes, then commit and release */
fa_int_t
fa_maildir_view_locked(fa_maildir_t *md, const char *dir, fa_maildir_view_t **out)
{
    fa_maildir_view_t  *v = fa_maildir_view_new(md, dir);
    fa_int_t            rc;

    if (v == NULL) {
        return FA_ERROR;
    }
    rc = fa_maildir_lock(md, dir, FA_MAILDIR_UIDLIST);
    if (rc != FA_OK) {
        fa_maildir_view_free(v);
        return rc;
    }
    rc = fa_maildir_view_load(md, v, 1);
    if (rc == FA_OK && v->dirty) {
        rc = fa_maildir_view_fix(md, v);
    }
    if (rc != FA_OK) {
        fa_maildir_view_release(md, v);
        return rc;
    }
    *out = v;
    return FA_OK;
}

/*
 * For an append: the folder locked and its index files read, but not its
 * directories.  A new message only adds a line to the uidlist and one to
 * the state, so the view need not list the others; when either file needs
 * a rewrite (or the folder has no uidlist yet) it takes the whole view.
 * What other programs changed is folded in by the next full view.
 */
fa_int_t
fa_maildir_view_for_append(fa_maildir_t *md, const char *dir, fa_maildir_view_t **out)
{
    fa_maildir_view_t  *v = fa_maildir_view_new(md, dir);
    fa_array_t          recs, lines;
    fa_int_t            rc;

    if (v == NULL) {
        return FA_ERROR;
    }
    rc = fa_maildir_lock(md, dir, FA_MAILDIR_UIDLIST);
    if (rc != FA_OK) {
        fa_maildir_view_free(v);
        return rc;
    }
    rc = fa_maildir_view_index(md, v, &recs, &lines);
    if (rc == FA_OK && v->uidvalidity && v->uidlist_append_ok && !v->uidlist_rewrite
        && v->state_append_ok
        && v->state_lines + 1 <= 2 * (v->nrecs + 1 + v->expunges.nelts) + 64)
    {
        v->partial = 1;
        v->uidlist_new_from = 0;
        *out = v;
        return FA_OK;
    }
    fa_maildir_view_release(md, v);
    return rc == FA_OK ? fa_maildir_view_locked(md, dir, out) : rc;
}

void
fa_maildir_view_release(fa_maildir_t *md, fa_maildir_view_t *v)
{
    fa_maildir_unlock(md, v->dir, FA_MAILDIR_UIDLIST);
    fa_maildir_view_free(v);
}

/*
 * A view for reading.  When it is dirty and nobody holds the lock, fix it
 * now (so UIDs appear promptly for deliveries by other programs); when
 * someone does, that writer will, and this view shows what is settled.
 */
fa_int_t
fa_maildir_view_read(fa_maildir_t *md, const char *dir, fa_maildir_view_t **out)
{
    fa_maildir_view_t  *v = fa_maildir_view_new(md, dir);
    fa_int_t            rc;

    if (v == NULL) {
        return FA_ERROR;
    }
    rc = fa_maildir_view_load(md, v, 0);
    if (rc == FA_OK && v->dirty && fa_maildir_trylock(md, dir, FA_MAILDIR_UIDLIST) == FA_OK) {
        fa_maildir_view_free(v);
        v = fa_maildir_view_new(md, dir);
        rc = v ? fa_maildir_view_load(md, v, 1) : FA_ERROR;
        if (rc == FA_OK && v->dirty) {
            rc = fa_maildir_view_fix(md, v);
        }
        fa_maildir_unlock(md, dir, FA_MAILDIR_UIDLIST);
    }
    if (rc != FA_OK) {
        fa_maildir_view_free(v);
        return rc;
    }
    *out = v;
    return FA_OK;
}

fa_maildir_msg_t *
fa_maildir_view_find(fa_maildir_view_t *v, uint32_t uid)
{
    fa_maildir_msg_t  key, *m = v->msgs.elts;

    key.uid = uid;
    return bsearch(&key, m, v->msgs.nelts, sizeof(*m), fa_maildir_msg_cmp);
}

/* one MODSEQ per operation: every message it changes shares it */
uint64_t
fa_maildir_view_modseq(fa_maildir_view_t *v)
{
    return ++v->highestmodseq;
}

void
fa_maildir_view_expunge(fa_maildir_view_t *v, fa_uint_t i, uint64_t modseq)
{
    fa_maildir_msg_t      *m = v->msgs.elts;
    fa_maildir_expunge_t  *x = fa_array_push(&v->expunges);

    if (x) {
        x->uid = m[i].uid;
        x->modseq = modseq;
    }
    memmove(&m[i], &m[i + 1], (v->msgs.nelts - i - 1) * sizeof(*m));
    v->msgs.nelts--;
    v->uidlist_new_from = fa_min(v->uidlist_new_from, v->msgs.nelts);
    v->uidlist_rewrite = 1;
}

/* a keyword's index in this folder (names compare case-insensitively), or -1 */
int
fa_maildir_view_keyword(fa_maildir_view_t *v, const fa_str_t *name, int create)
{
    int  free_slot = -1;

    /* dovecot-keywords is "<index> <name>" lines: a name is one atom */
    for (size_t i = 0; i < name->len; i++) {
        if (name->data[i] <= 0x20 || name->data[i] == 0x7f) {
            return -1;
        }
    }
    if (name->len == 0) {
        return -1;
    }
    for (int i = 0; i < FA_MAILDIR_KEYWORDS_MAX; i++) {
        if (v->keywords[i] == NULL) {
            free_slot = free_slot < 0 ? i : free_slot;
        } else if (strlen(v->keywords[i]) == name->len
                   && strncasecmp(v->keywords[i], (char *) name->data, name->len) == 0)
        {
            return i;
        }
    }
    if (!create || free_slot < 0) {
        return -1;
    }
    v->keywords[free_slot] = (char *) fa_pstrdup(v->pool, name);
    if (v->keywords[free_slot] == NULL) {
        return -1;
    }
    v->keywords_changed = 1;
    return free_slot;
}

/* bit i of a message's keywords is table[i]; a hole is an empty string */
fa_int_t
fa_maildir_keyword_table(fa_maildir_view_t *v, fa_pool_t *pool, fa_str_t **table,
    fa_uint_t *n)
{
    fa_uint_t  count = 0;
    fa_str_t   name;

    for (int i = 0; i < FA_MAILDIR_KEYWORDS_MAX; i++) {
        count = v->keywords[i] ? (fa_uint_t) i + 1 : count;
    }
    *n = count;
    *table = fa_pcalloc(pool, (count + 1) * sizeof(fa_str_t));
    if (*table == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < count; i++) {
        if (v->keywords[i]) {
            name.len = strlen(v->keywords[i]);
            name.data = (u_char *) v->keywords[i];
            (*table)[i].len = name.len;
            (*table)[i].data = fa_pstrdup(pool, &name);
            if ((*table)[i].data == NULL) {
                return FA_ERROR;
            }
        }
    }
    return FA_OK;
}

/* the status; its keyword table lives in the view's pool */
fa_int_t
fa_maildir_view_status(fa_maildir_view_t *v, fa_mailbox_status_t *st)
{
    fa_maildir_msg_t  *m = v->msgs.elts;

    memset(st, 0, sizeof(*st));
    st->uidvalidity = v->uidvalidity;
    st->uidnext = v->uidnext;
    st->messages = (uint32_t) v->msgs.nelts;
    st->highestmodseq = fa_max(v->highestmodseq, 1);
    for (fa_uint_t i = 0; i < v->msgs.nelts; i++) {
        st->size += m[i].size;
        if (!(m[i].flags & FA_FLAG_SEEN)) {
            st->unseen++;
            if (st->first_unseen_uid == 0) {
                st->first_unseen_uid = m[i].uid;
            }
        }
        if (m[i].flags & FA_FLAG_DELETED) {
            st->deleted++;
        }
    }
    return fa_maildir_keyword_table(v, v->pool, &st->keywords, &st->nkeywords);
}

/*
 * A new folder: the directories, then its uidlist (a UIDVALIDITY of its
 * own) and its state (special-use), so it is complete before anyone sees it.
 */
fa_int_t
fa_maildir_folder_new(fa_maildir_t *md, fa_maildir_loc_t *loc, uint32_t special_use)
{
    fa_maildir_view_t  *v;
    fa_int_t            rc;

    rc = fa_maildir_mkdirs(md, loc->dir, loc->inbox ? 1 : 2);
    if (rc == FA_OK) {
        rc = fa_maildir_view_locked(md, loc->dir, &v);
    }
    if (rc != FA_OK) {
        return rc;
    }
    if (v->special_use != special_use) {
        v->special_use = special_use;
        v->state_rewrite = 1;
        rc = fa_maildir_view_commit(md, v);
    }
    fa_maildir_view_release(md, v);
    return rc;
}
