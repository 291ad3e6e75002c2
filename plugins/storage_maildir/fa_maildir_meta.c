/*
 * Message metadata: ENVELOPE, BODYSTRUCTURE, BODY and the part table,
 * computed by the MIME module (fa_mime.h) while an append streams in, and
 * kept in the folder's facteur-cache so that FETCH never parses a message
 * again.
 *
 * facteur-cache is append-only, one record per message file:
 *
 *   M<base len> <envelope len> <bodystructure len> <body len> <mime len>\n
 *   <base><envelope><bodystructure><body><mime>\n
 *
 * keyed by the file's base name (what the uidlist records), so a copy by
 * hard link into another folder takes its record along unchanged.  A later
 * record for the same base wins; the file is rewritten without the records
 * of expunged messages when they are the majority.  A message another
 * program delivered has no record: it is parsed the first time its
 * metadata is asked for, and the record added then.
 *
 * The MIME functions are weak references: a facteur built without the
 * mime module still loads the plugin, whose metadata strings then stay
 * empty.
 */

#include "fa_maildir.h"

#if defined(__has_include)
#if __has_include("fa_mime.h")
#include "fa_mime.h"
#define FA_MAILDIR_MIME  1
#pragma weak fa_mime_parser_create
#pragma weak fa_mime_parser_feed
#pragma weak fa_mime_parser_finish
#pragma weak fa_mime_buf_init
#pragma weak fa_mime_render_envelope
#pragma weak fa_mime_render_bodystructure
#pragma weak fa_mime_serialize
#endif
#endif

#define FA_MAILDIR_CACHE  "facteur-cache"

/* ---- computing ---------------------------------------------------------- */

/* a parser for one message, or NULL when this facteur has no MIME module */
void *
fa_maildir_meta_start(fa_pool_t *pool)
{
#ifdef FA_MAILDIR_MIME
    if (fa_mime_parser_create != NULL) {
        return fa_mime_parser_create(pool, NULL);
    }
#endif
    (void) pool;
    return NULL;
}

void
fa_maildir_meta_feed(void *parser, const u_char *data, size_t len)
{
#ifdef FA_MAILDIR_MIME
    if (parser) {
        (void) fa_mime_parser_feed(parser, data, len);
    }
#else
    (void) parser;
    (void) data;
    (void) len;
#endif
}

#ifdef FA_MAILDIR_MIME
static fa_int_t
fa_maildir_meta_render(fa_pool_t *pool, fa_mime_part_t *root, int what, fa_str_t *out)
{
    fa_mime_buf_t  b;
    fa_int_t       rc;

    if (fa_mime_buf_init(&b, pool, 512) != FA_OK) {
        return FA_ERROR;
    }
    rc = what == 0 ? fa_mime_render_envelope(&b, root)
                   : fa_mime_render_bodystructure(&b, root, what == 1);
    out->data = b.data;
    out->len = b.len;
    return rc;
}
#endif

/* the strings, in pool; all empty without a parser */
fa_int_t
fa_maildir_meta_finish(void *parser, fa_pool_t *pool, fa_maildir_meta_t *out)
{
    memset(out, 0, sizeof(*out));
#ifdef FA_MAILDIR_MIME
    fa_mime_part_t  *root = parser ? fa_mime_parser_finish(parser) : NULL;

    if (parser == NULL) {
        return FA_OK;
    }
    if (root == NULL
        || fa_maildir_meta_render(pool, root, 0, &out->f[FA_MAILDIR_META_ENVELOPE]) != FA_OK
        || fa_maildir_meta_render(pool, root, 1, &out->f[FA_MAILDIR_META_BODYSTRUCTURE])
           != FA_OK
        || fa_maildir_meta_render(pool, root, 2, &out->f[FA_MAILDIR_META_BODY]) != FA_OK
        || fa_mime_serialize(root, pool, &out->f[FA_MAILDIR_META_MIME]) != FA_OK)
    {
        return FA_ERROR;
    }
    out->present = 1;
#else
    (void) parser;
    (void) pool;
#endif
    return FA_OK;
}

/* a message nobody parsed at append: read it through the parser now */
static fa_int_t
fa_maildir_meta_of_file(fa_maildir_t *md, fa_pool_t *pool, const char *path,
    fa_maildir_meta_t *out)
{
    void     *parser = fa_maildir_meta_start(pool);
    u_char    buf[65536];
    ssize_t   n;
    int       fd;

    memset(out, 0, sizeof(*out));
    if (parser == NULL) {
        return FA_OK;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return errno == ENOENT ? FA_DECLINED : fa_maildir_sys_error(md, errno, "open()", path);
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        fa_maildir_meta_feed(parser, buf, (size_t) n);
    }
    close(fd);
    return n < 0 ? fa_maildir_sys_error(md, errno, "read()", path)
                 : fa_maildir_meta_finish(parser, pool, out);
}

/* ---- the cache file ------------------------------------------------------ */

static int
fa_maildir_cache_cmp(const void *a, const void *b)
{
    const fa_maildir_cache_rec_t *x = a, *y = b;
    int c = memcmp(x->base, y->base, fa_min(x->base_len, y->base_len));

    if (c == 0) {
        c = (x->base_len > y->base_len) - (x->base_len < y->base_len);
    }
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* the records of a file image; a record cut short (a crash mid-append) ends it */
static fa_int_t
fa_maildir_cache_parse(fa_maildir_cache_t *c, u_char *p, size_t len)
{
    u_char                  *end = p + len, *nl;
    fa_maildir_cache_rec_t  *r;
    unsigned long            l[5];
    size_t                   total;

    if (fa_array_init(&c->recs, c->pool, 64, sizeof(fa_maildir_cache_rec_t)) != FA_OK) {
        return FA_ERROR;
    }
    while (p < end && (nl = memchr(p, '\n', (size_t) (end - p))) != NULL) {
        *nl = '\0';
        if (sscanf((char *) p, "M%lu %lu %lu %lu %lu", &l[0], &l[1], &l[2], &l[3], &l[4]) != 5) {
            break;
        }
        total = l[0] + l[1] + l[2] + l[3] + l[4];
        if ((size_t) (end - nl - 1) < total + 1 || nl[1 + total] != '\n') {
            break;
        }
        if ((r = fa_array_push(&c->recs)) == NULL) {
            return FA_ERROR;
        }
        r->seq = c->recs.nelts;
        r->base = (char *) nl + 1;
        r->base_len = l[0];
        p = nl + 1 + l[0];
        for (int i = 0; i < 4; i++) {
            r->meta.f[i].data = p;
            r->meta.f[i].len = l[i + 1];
            p += l[i + 1];
        }
        r->meta.present = 1;
        p++;
    }
    qsort(c->recs.elts, c->recs.nelts, sizeof(fa_maildir_cache_rec_t), fa_maildir_cache_cmp);
    return FA_OK;
}

void
fa_maildir_cache_free(fa_maildir_cache_t *c)
{
    if (c) {
        fa_pool_destroy(c->pool);
    }
}

/* *cache as the file is now: read again only when it changed */
fa_int_t
fa_maildir_cache_refresh(fa_maildir_t *md, const char *dir, fa_maildir_cache_t **cache)
{
    fa_maildir_cache_t  *c;
    struct stat          sb;
    fa_str_t             file;
    char                 path[PATH_MAX];
    fa_int_t             rc;

    fa_snprintf(path, sizeof(path), "%s/%s", dir, FA_MAILDIR_CACHE);
    if (stat(path, &sb) != 0) {
        sb.st_ino = 0;
        sb.st_size = 0;
    }
    if (*cache && (*cache)->ino == sb.st_ino && (*cache)->size == sb.st_size) {
        return FA_OK;
    }
    fa_maildir_cache_free(*cache);
    *cache = NULL;
    c = NULL;
    fa_pool_t *pool = fa_pool_create(4096, md->log);
    if (pool == NULL || (c = fa_pcalloc(pool, sizeof(fa_maildir_cache_t))) == NULL) {
        if (pool) {
            fa_pool_destroy(pool);
        }
        return FA_ERROR;
    }
    c->pool = pool;
    c->ino = sb.st_ino;
    c->size = sb.st_size;
    rc = fa_maildir_read_file(md, pool, path, &file);
    if (rc == FA_DECLINED) {
        file.data = (u_char *) "";
        file.len = 0;
    } else if (rc != FA_OK) {
        fa_maildir_cache_free(c);
        return rc;
    }
    if (fa_maildir_cache_parse(c, file.data, file.len) != FA_OK) {
        fa_maildir_cache_free(c);
        return FA_ERROR;
    }
    *cache = c;
    return FA_OK;
}

/* the last record for a base, or NULL */
const fa_maildir_meta_t *
fa_maildir_cache_find(fa_maildir_cache_t *c, const char *base, size_t len)
{
    fa_maildir_cache_rec_t  key, *r = c ? c->recs.elts : NULL, *hit = NULL;
    fa_uint_t               lo = 0, hi = c ? c->recs.nelts : 0;

    key.base = base;
    key.base_len = len;
    key.seq = (fa_uint_t) -1;               /* after every record of that base */
    while (lo < hi) {
        fa_uint_t mid = lo + (hi - lo) / 2;
        if (fa_maildir_cache_cmp(&r[mid], &key) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo > 0 && r[lo - 1].base_len == len && memcmp(r[lo - 1].base, base, len) == 0) {
        hit = &r[lo - 1];
    }
    return hit ? &hit->meta : NULL;
}

void
fa_maildir_cache_record(fa_maildir_buf_t *b, const char *base, size_t len,
    const fa_maildir_meta_t *m)
{
    if (!m->present) {
        return;
    }
    fa_maildir_buf_printf(b, "M%zu %zu %zu %zu %zu\n", len, m->f[0].len, m->f[1].len,
                          m->f[2].len, m->f[3].len);
    fa_maildir_buf_add(b, base, len);
    for (int i = 0; i < 4; i++) {
        fa_maildir_buf_add(b, m->f[i].data, m->f[i].len);
    }
    fa_maildir_buf_add(b, "\n", 1);
}

/* records added in one write, durable; nothing to do for an empty buffer */
fa_int_t
fa_maildir_cache_write(fa_maildir_t *md, const char *dir, fa_maildir_buf_t *b)
{
    if (b->failed) {
        return FA_ERROR;
    }
    return b->n ? fa_maildir_append_file(md, dir, FA_MAILDIR_CACHE, (u_char *) b->p, b->n, 1)
                : FA_OK;
}

/*
 * The metadata of message m of view v, from the cache, or parsed now and
 * queued in add (for the caller to write) when the cache has none.
 */
fa_int_t
fa_maildir_cache_get(fa_maildir_t *md, fa_maildir_cache_t *c, fa_maildir_view_t *v,
    fa_maildir_msg_t *m, fa_pool_t *pool, fa_maildir_buf_t *add, fa_maildir_meta_t *out)
{
    const fa_maildir_meta_t  *hit = fa_maildir_cache_find(c, m->file + 4, m->base_len);
    char                      path[PATH_MAX];
    fa_int_t                  rc;

    if (hit) {
        *out = *hit;
        return FA_OK;
    }
    fa_snprintf(path, sizeof(path), "%s/%s", v->dir, m->file);
    rc = fa_maildir_meta_of_file(md, pool, path, out);
    if (rc == FA_OK) {
        fa_maildir_cache_record(add, m->file + 4, m->base_len, out);
    }
    return rc == FA_DECLINED ? FA_OK : rc;    /* renamed meanwhile: no strings this time */
}

/* under the lock, after expunges: drop dead records once they are the majority */
fa_int_t
fa_maildir_cache_compact(fa_maildir_t *md, fa_maildir_view_t *v)
{
    fa_maildir_cache_t        *c = NULL;
    fa_maildir_buf_t           b = { NULL, 0, 0, 0 };
    fa_maildir_msg_t          *m = v->msgs.elts;
    const fa_maildir_meta_t   *meta;
    fa_int_t                   rc;

    rc = fa_maildir_cache_refresh(md, v->dir, &c);
    if (rc != FA_OK || c->recs.nelts <= 2 * v->msgs.nelts + 32) {
        fa_maildir_cache_free(c);
        return rc;
    }
    for (fa_uint_t i = 0; i < v->msgs.nelts; i++) {
        if ((meta = fa_maildir_cache_find(c, m[i].file + 4, m[i].base_len)) != NULL) {
            fa_maildir_cache_record(&b, m[i].file + 4, m[i].base_len, meta);
        }
    }
    rc = b.failed ? FA_ERROR
         : fa_maildir_replace_file(md, v->dir, FA_MAILDIR_CACHE, (u_char *) b.p, b.n);
    free(b.p);
    fa_maildir_cache_free(c);
    return rc;
}
