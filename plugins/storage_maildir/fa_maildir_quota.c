/*
 * Quota, the Maildir++ way: "maildirsize" in the user's Maildir.
 *
 *   104857600S,10000C        the limits (bytes, messages); a part left out
 *   4096 2                   means no limit; then usage deltas, one line
 *   -1024 -1                 per change, appended with one write(2)
 *
 * Usage is the sum of the lines.  When the file passes 5120 bytes it is
 * recalculated from the file names' S= sizes and rewritten, as the spec
 * says.  No maildirsize means no quota (Dovecot and Courier agree).  The
 * check before an append and the line after it are not one transaction:
 * two deliveries at once may both pass, which is the usual Maildir++ slack.
 */

#include "fa_maildir.h"

#define FA_MAILDIR_QUOTA_FILE  "maildirsize"
#define FA_MAILDIR_QUOTA_MAX   5120

typedef struct {
    fa_quota_t   q;
    int          exists;
    size_t       file_size;
} fa_maildir_quota_t;

static void
fa_maildir_quota_limits(fa_quota_t *q, char *line)
{
    char  *p = line, *end;

    while (*p) {
        uint64_t v = strtoull(p, &end, 10);
        if (end == p) {
            break;
        }
        if (*end == 'S') {
            q->bytes_limit = v;
        } else if (*end == 'C') {
            q->messages_limit = v;
        }
        p = end + (*end != '\0');
        p += *p == ',';
    }
}

static fa_int_t
fa_maildir_quota_read(fa_maildir_t *md, fa_pool_t *pool, const char *root,
    fa_maildir_quota_t *mq)
{
    fa_str_t   file;
    char      *p, *nl, *end;
    int64_t    bytes = 0, count = 0;
    fa_int_t   rc;

    memset(mq, 0, sizeof(*mq));
    rc = fa_maildir_read_file(md, pool, fa_maildir_join(pool, root, FA_MAILDIR_QUOTA_FILE),
                              &file);
    if (rc != FA_OK) {
        return rc == FA_DECLINED ? FA_OK : rc;
    }
    mq->exists = 1;
    mq->file_size = file.len;
    p = (char *) file.data;
    nl = strchr(p, '\n');
    if (nl == NULL) {
        return FA_OK;
    }
    *nl = '\0';
    fa_maildir_quota_limits(&mq->q, p);
    for (p = nl + 1; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
        bytes += strtoll(p, &end, 10);
        count += strtoll(end, NULL, 10);
    }
    mq->q.bytes_used = bytes > 0 ? (uint64_t) bytes : 0;
    mq->q.messages_used = count > 0 ? (uint64_t) count : 0;
    return FA_OK;
}

static void
fa_maildir_quota_count_dir(fa_pool_t *pool, const char *dir, fa_quota_t *q)
{
    struct dirent  *de;
    struct stat     sb;
    DIR            *d = opendir(dir);

    if (d == NULL) {
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        size_t len = strcspn(de->d_name, ":");
        uint64_t size = fa_maildir_name_size(de->d_name, len, 'S');
        if (size == (uint64_t) -1) {
            char *path = fa_maildir_join(pool, dir, de->d_name);
            size = (path && stat(path, &sb) == 0) ? (uint64_t) sb.st_size : 0;
        }
        q->bytes_used += size;
        q->messages_used++;
    }
    closedir(d);
}

/* usage counted again from every folder's file names */
static fa_int_t
fa_maildir_quota_recount(fa_maildir_t *md, fa_pool_t *pool, const char *root, fa_quota_t *q)
{
    static const char  *subs[] = { "cur", "new" };
    struct dirent      *de;
    DIR                *d = opendir(root);

    if (d == NULL) {
        return fa_maildir_sys_error(md, errno, "opendir()", root);
    }
    q->bytes_used = q->messages_used = 0;
    for (size_t i = 0; i < fa_nelems(subs); i++) {
        fa_maildir_quota_count_dir(pool, fa_maildir_join(pool, root, subs[i]), q);
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0
            || strcmp(de->d_name, "..") == 0)
        {
            continue;
        }
        char *folder = fa_maildir_join(pool, root, de->d_name);
        for (size_t i = 0; folder && i < fa_nelems(subs); i++) {
            fa_maildir_quota_count_dir(pool, fa_maildir_join(pool, folder, subs[i]), q);
        }
    }
    closedir(d);
    return FA_OK;
}

/* a fresh maildirsize: the limits and one line of usage */
static fa_int_t
fa_maildir_quota_write(fa_maildir_t *md, const char *root, fa_quota_t *q)
{
    char    buf[128];
    size_t  n = 0;

    if (q->bytes_limit) {
        n += fa_snprintf(buf + n, sizeof(buf) - n, "%lluS",
                         (unsigned long long) q->bytes_limit);
    }
    if (q->messages_limit) {
        n += fa_snprintf(buf + n, sizeof(buf) - n, "%s%lluC", n ? "," : "",
                         (unsigned long long) q->messages_limit);
    }
    n += fa_snprintf(buf + n, sizeof(buf) - n, "\n%llu %llu\n",
                     (unsigned long long) q->bytes_used,
                     (unsigned long long) q->messages_used);
    return fa_maildir_replace_file(md, root, FA_MAILDIR_QUOTA_FILE, (u_char *) buf, n);
}

/* recount and rewrite, unless someone else is doing it right now */
static fa_int_t
fa_maildir_quota_rebuild(fa_maildir_t *md, fa_pool_t *pool, const char *root,
    fa_maildir_quota_t *mq)
{
    fa_int_t  rc;

    if (fa_maildir_trylock(md, root, FA_MAILDIR_QUOTA_FILE) != FA_OK) {
        return FA_OK;
    }
    rc = fa_maildir_quota_recount(md, pool, root, &mq->q);
    if (rc == FA_OK) {
        rc = fa_maildir_quota_write(md, root, &mq->q);
    }
    fa_maildir_unlock(md, root, FA_MAILDIR_QUOTA_FILE);
    return rc;
}

fa_int_t
fa_maildir_quota_get(fa_storage_t *st, const fa_str_t *user, fa_storage_quota_pt cb,
    void *data)
{
    fa_maildir_t        *md = st->data;
    fa_pool_t           *pool = fa_pool_create(4096, md->log);
    fa_maildir_quota_t   mq;
    fa_maildir_done_t   *d = NULL;
    char                *root;
    fa_int_t             rc;

    if (pool == NULL) {
        return FA_ERROR;
    }
    rc = fa_maildir_user_root(md, user, pool, &root);
    if (rc == FA_OK) {
        rc = fa_maildir_quota_read(md, pool, root, &mq);
    }
    if (rc == FA_OK && !mq.exists) {
        rc = fa_maildir_quota_recount(md, pool, root, &mq.q);
    } else if (rc == FA_OK && mq.file_size > FA_MAILDIR_QUOTA_MAX) {
        rc = fa_maildir_quota_rebuild(md, pool, root, &mq);
    }
    if (rc == FA_OK) {
        d = fa_maildir_done(md, FA_MAILDIR_DONE_QUOTA, fa_maildir_cb(cb), data);
        rc = d ? (d->r.quota = mq.q, fa_maildir_post(d, FA_OK)) : FA_ERROR;
    }
    fa_pool_destroy(pool);
    return rc;
}

fa_int_t
fa_maildir_quota_set(fa_storage_t *st, const fa_str_t *user, const fa_quota_t *limits,
    fa_storage_done_pt cb, void *data)
{
    fa_maildir_t  *md = st->data;
    fa_pool_t     *pool = fa_pool_create(4096, md->log);
    fa_quota_t     q;
    char          *root, *path;
    fa_int_t       rc;

    (void) cb;
    (void) data;
    if (pool == NULL) {
        return FA_ERROR;
    }
    rc = fa_maildir_user_root(md, user, pool, &root);
    if (rc == FA_OK) {
        rc = fa_maildir_lock(md, root, FA_MAILDIR_QUOTA_FILE);
    }
    if (rc != FA_OK) {
        fa_pool_destroy(pool);
        return rc;
    }
    memset(&q, 0, sizeof(q));
    q.bytes_limit = limits->bytes_limit;
    q.messages_limit = limits->messages_limit;
    if (q.bytes_limit == 0 && q.messages_limit == 0) {
        path = fa_maildir_join(pool, root, FA_MAILDIR_QUOTA_FILE);
        rc = (unlink(path) == 0 || errno == ENOENT) ? fa_maildir_fsync_dir(md, root)
             : fa_maildir_sys_error(md, errno, "unlink()", path);
    } else if ((rc = fa_maildir_quota_recount(md, pool, root, &q)) == FA_OK) {
        rc = fa_maildir_quota_write(md, root, &q);
    }
    fa_maildir_unlock(md, root, FA_MAILDIR_QUOTA_FILE);
    fa_pool_destroy(pool);
    return rc;
}

/* FA_OK, or FA_STORAGE_OVERQUOTA if adding this much would pass a limit */
fa_int_t
fa_maildir_quota_check(fa_maildir_t *md, const char *root, uint64_t bytes, uint64_t messages)
{
    fa_pool_t           *pool = fa_pool_create(4096, md->log);
    fa_maildir_quota_t   mq;
    fa_int_t             rc;

    if (pool == NULL) {
        return FA_ERROR;
    }
    rc = fa_maildir_quota_read(md, pool, root, &mq);
    if (rc == FA_OK && mq.exists
        && ((mq.q.bytes_limit && mq.q.bytes_used + bytes > mq.q.bytes_limit)
            || (mq.q.messages_limit && mq.q.messages_used + messages > mq.q.messages_limit)))
    {
        rc = FA_STORAGE_OVERQUOTA;
    }
    fa_pool_destroy(pool);
    return rc;
}

/* one usage line; the file is recounted once it grows past the spec's size */
void
fa_maildir_quota_add(fa_maildir_t *md, const char *root, int64_t bytes, int64_t messages)
{
    fa_pool_t           *pool;
    fa_maildir_quota_t   mq;
    char                 line[64];
    int                  n;

    if (bytes == 0 && messages == 0) {
        return;
    }
    n = snprintf(line, sizeof(line), "%lld %lld\n", (long long) bytes, (long long) messages);
    if (fa_maildir_append_file(md, root, FA_MAILDIR_QUOTA_FILE, (u_char *) line,
                               (size_t) n, 0) != FA_OK)
    {
        return;                               /* no maildirsize: no quota */
    }
    pool = fa_pool_create(4096, md->log);
    if (pool && fa_maildir_quota_read(md, pool, root, &mq) == FA_OK
        && mq.file_size > FA_MAILDIR_QUOTA_MAX)
    {
        (void) fa_maildir_quota_rebuild(md, pool, root, &mq);
    }
    if (pool) {
        fa_pool_destroy(pool);
    }
}
