/*
 * The MIME parser on generated hostile input: nesting 10,000 deep, more
 * parts than allowed, a 50 MB line in a body and in a header, 100,000
 * header fields, boundaries that never close, a tiny tree budget, and
 * random messages built from MIME-looking pieces.  Everything must finish
 * quickly with bounded memory, a consistent tree, identical results for any
 * chunking, and a serialization that reads back.
 */

#include "fa_mime.h"
#include "fa_test.h"
#include <time.h>

#define MB  (1024 * 1024)

typedef struct {
    u_char  *data;
    size_t   len;
    size_t   size;
} gen_t;

static void
gen_add(gen_t *g, const void *data, size_t n)
{
    if (g->len + n > g->size) {
        g->size = (g->len + n) * 2;
        g->data = realloc(g->data, g->size);
    }
    memcpy(g->data + g->len, data, n);
    g->len += n;
}

static void
gen_str(gen_t *g, const char *s)
{
    gen_add(g, s, strlen(s));
}

static fa_mime_part_t *
parse_with(fa_pool_t *pool, const fa_mime_limits_t *limits, const u_char *msg,
    size_t len, size_t chunk)
{
    fa_mime_parser_t  *p = fa_mime_parser_create(pool, limits);
    size_t             off, n;

    if (p == NULL) {
        return NULL;
    }
    for (off = 0; off < len; off += n) {
        n = chunk ? chunk : (size_t) (rand() % 61) + 1;    /* fa_min evaluates twice */
        n = fa_min(n, len - off);
        if (fa_mime_parser_feed(p, msg + off, n) != FA_OK) {
            return NULL;
        }
    }
    return fa_mime_parser_finish(p);
}

static fa_mime_part_t *
parse(fa_pool_t *pool, const u_char *msg, size_t len, size_t chunk)
{
    return parse_with(pool, NULL, msg, len, chunk);
}

static int
consistent(const fa_mime_part_t *part, uint64_t size, fa_uint_t depth, fa_uint_t *count,
    fa_uint_t *maxdepth)
{
    const fa_mime_part_t  *c;
    uint64_t               cursor = part->body_start;
    fa_uint_t              n = 0;

    (*count)++;
    *maxdepth = fa_max(*maxdepth, depth);
    if (part->header_start > part->body_start || part->body_start > part->body_end
        || part->body_end > size || part->depth != depth
        || part->body_lines > part->body_end - part->body_start)
    {
        return 0;
    }
    for (c = part->children; c; c = c->next, n++) {
        if (c->header_start < cursor || c->body_end > part->body_end
            || !consistent(c, size, depth + 1, count, maxdepth))
        {
            return 0;
        }
        cursor = c->body_end;
    }
    return n == part->nchildren;
}

static int
tree_ok(const fa_mime_part_t *root, uint64_t size, fa_uint_t *count, fa_uint_t *depth)
{
    fa_uint_t  c = 0, d = 0;
    int        good = root && consistent(root, size, 0, &c, &d) && root->body_end == size;

    if (count) {
        *count = c;
    }
    if (depth) {
        *depth = d;
    }
    return good;
}

static int
renders(fa_pool_t *pool, const fa_mime_part_t *root)
{
    fa_mime_buf_t  b;

    return fa_mime_buf_init(&b, pool, 0) == FA_OK
           && fa_mime_render_bodystructure(&b, root, 1) == FA_OK
           && fa_mime_render_bodystructure(&b, root, 0) == FA_OK
           && fa_mime_render_envelope(&b, root) == FA_OK;
}

static int
round_trips(fa_pool_t *pool, const fa_mime_part_t *root, fa_str_t *ser)
{
    fa_mime_part_t  *back;
    fa_str_t         s2;

    return fa_mime_serialize(root, pool, ser) == FA_OK
           && (back = fa_mime_parse_serialized(pool, ser->data, ser->len)) != NULL
           && fa_mime_serialize(back, pool, &s2) == FA_OK
           && s2.len == ser->len && memcmp(s2.data, ser->data, s2.len) == 0;
}

static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* blocks and large allocations of a pool: what "bounded memory" means here */
static size_t
pool_allocations(fa_pool_t *pool)
{
    size_t  n = 0;

    for (fa_pool_block_t *b = pool->first.next; b; b = b->next) {
        n++;
    }
    for (fa_pool_large_t *l = pool->large; l; l = l->next) {
        n += l->alloc != NULL;
    }
    return n;
}

static void
test_deep_multipart(void)
{
    fa_pool_t       *pool = fa_pool_create(4096, NULL);
    gen_t            g = { 0 };
    char             line[128];
    fa_mime_part_t  *root, *p;
    fa_uint_t        count, depth;
    fa_str_t         ser;
    int              i;

    for (i = 0; i < 10000; i++) {
        snprintf(line, sizeof(line),
                 "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i);
        gen_str(&g, line);
    }
    gen_str(&g, "Content-Type: text/plain\r\n\r\ndeepest\r\n");
    for (i = 9999; i >= 0; i--) {
        snprintf(line, sizeof(line), "--b%d--\r\n", i);
        gen_str(&g, line);
    }
    root = parse(pool, g.data, g.len, 4096);
    ok(tree_ok(root, g.len, &count, &depth), "10,000 nested multiparts: consistent tree");
    is_int(depth, 100, "nesting stops at max_depth");
    ok(root && (root->flags & FA_MIME_LIMITED), "the message says a limit was reached");
    for (p = root; p && p->children; p = p->children) {
        /* down to the deepest */
    }
    ok(p && (p->flags & FA_MIME_OPAQUE) && p->depth == 100, "the deepest container is opaque");
    ok(root && renders(pool, root), "renders");
    ok(root && round_trips(pool, root, &ser), "serializes and reads back");
    free(g.data);
    fa_pool_destroy(pool);
}

static void
test_deep_message(void)
{
    fa_pool_t       *pool = fa_pool_create(4096, NULL);
    gen_t            g = { 0 };
    fa_mime_part_t  *root;
    fa_uint_t        count, depth;
    fa_str_t         ser;
    fa_mime_buf_t    b;

    for (int i = 0; i < 10000; i++) {
        gen_str(&g, "Subject: nested\r\nContent-Type: message/rfc822\r\n\r\n");
    }
    gen_str(&g, "innermost\r\n");
    root = parse(pool, g.data, g.len, 0);
    ok(tree_ok(root, g.len, &count, &depth), "10,000 nested message/rfc822: consistent");
    is_int(depth, 100, "message nesting stops at max_depth");
    is_int(count, 101, "one part per level");
    ok(root && renders(pool, root) && round_trips(pool, root, &ser), "renders, serializes");
    fa_mime_buf_init(&b, pool, 0);
    fa_mime_render_bodystructure(&b, root, 0);
    ok(b.len > 6 && memcmp(b.data + b.len - 6, " 3))))", 6) != 0
       && strstr((char *) b.data, "\"application\" \"octet-stream\"") != NULL,
       "the innermost container is shown as application/octet-stream");
    free(g.data);
    fa_pool_destroy(pool);
}

/* the hard cap: limits asking for more get FA_MIME_DEPTH_MAX, and every
   recursive walk (render, serialize, read back) is fine that deep */
static void
test_depth_cap(void)
{
    fa_mime_limits_t  l = fa_mime_limits_default;
    fa_pool_t        *pool = fa_pool_create(4096, NULL);
    gen_t             g = { 0 };
    fa_mime_part_t   *root;
    fa_uint_t         depth;
    fa_str_t          ser;

    for (int i = 0; i < 3000; i++) {
        gen_str(&g, i % 2 ? "Content-Type: message/rfc822\r\n\r\n"
                          : "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n");
    }
    l.max_depth = 1u << 30;
    root = parse_with(pool, &l, g.data, g.len, 0);
    ok(tree_ok(root, g.len, NULL, &depth), "max_depth above the cap: consistent");
    is_int(depth, FA_MIME_DEPTH_MAX, "nesting stops at FA_MIME_DEPTH_MAX");
    ok(root && renders(pool, root) && round_trips(pool, root, &ser), "renders, serializes");
    free(g.data);
    fa_pool_destroy(pool);
}

static void
test_many_parts(void)
{
    fa_pool_t       *pool = fa_pool_create(4096, NULL);
    gen_t            g = { 0 };
    fa_mime_part_t  *root, *last;
    fa_uint_t        count;
    fa_str_t         ser;
    double           t0 = now();

    gen_str(&g, "Content-Type: multipart/mixed; boundary=x\r\n\r\n");
    for (int i = 0; i < 30000; i++) {
        gen_str(&g, "--x\r\nContent-Type: text/plain\r\n\r\npart\r\n");
    }
    gen_str(&g, "--x--\r\n");
    root = parse(pool, g.data, g.len, 65536);
    ok(tree_ok(root, g.len, &count, NULL), "30,000 parts: consistent");
    is_int(count, 10000, "parts stop at max_parts");
    for (last = root ? root->children : NULL; last && last->next; last = last->next) {
        /* the last part takes the rest */
    }
    ok(last && last->body_end == g.len, "the last part runs to the end");
    ok(root && (root->flags & FA_MIME_LIMITED), "limited");
    ok(root && renders(pool, root) && round_trips(pool, root, &ser), "renders, serializes");
    ok(now() - t0 < 20, "in %.2f s", now() - t0);
    free(g.data);
    fa_pool_destroy(pool);
}

/* a 50 MB body that is one line, alone and inside a multipart */
static void
test_long_line(const char *what, const char *head, const char *tail)
{
    fa_pool_t         *pool = fa_pool_create(4096, NULL);
    size_t             big = 50 * MB, hlen = strlen(head), tlen = strlen(tail), len;
    u_char            *msg;
    fa_mime_part_t    *root, *leaf;
    fa_mime_parser_t  *p;
    double             t0;

    len = hlen + big + tlen;
    msg = malloc(len);
    memcpy(msg, head, hlen);
    memset(msg + hlen, 'a', big);
    memcpy(msg + hlen + big, tail, tlen);

    t0 = now();
    p = fa_mime_parser_create(pool, NULL);
    for (size_t off = 0; off < len; off += 65536) {
        fa_mime_parser_feed(p, msg + off, fa_min((size_t) 65536, len - off));
    }
    root = fa_mime_parser_finish(p);
    ok(tree_ok(root, len, NULL, NULL), "%s: consistent, in %.2f s", what, now() - t0);
    leaf = root && root->children ? root->children : root;
    ok(leaf && leaf->body_end - leaf->body_start == big && leaf->body_lines == 1,
       "%s: body of exactly 50 MB, 1 line", what);
    ok(pool_allocations(pool) < 16, "%s: no per-byte allocation (%zu)", what,
       pool_allocations(pool));

    t0 = now();
    root = parse(pool, msg, len, len);
    ok(tree_ok(root, len, NULL, NULL), "%s: in one piece too, %.2f s", what, now() - t0);
    free(msg);
    fa_pool_destroy(pool);
}

static void
test_long_header(void)
{
    fa_pool_t       *pool = fa_pool_create(4096, NULL);
    size_t           big = 50 * MB;
    gen_t            g = { 0 };
    fa_mime_part_t  *root;

    gen_str(&g, "Subject: ");
    g.data = realloc(g.data, big + 256);
    g.size = big + 256;
    memset(g.data + g.len, 'x', big);
    g.len += big;
    gen_str(&g, "\r\n continued\r\nFrom: a@b.example\r\n\r\nbody\r\n");
    root = parse(pool, g.data, g.len, 1 << 20);
    ok(tree_ok(root, g.len, NULL, NULL), "50 MB header field: consistent");
    ok(root && (root->flags & FA_MIME_CUT_FIELD), "the field is cut");
    ok(root && root->envelope->raw[FA_MIME_ENV_SUBJECT].len == 64 * 1024 - 9,
       "the field keeps max_field bytes");
    ok(root && root->envelope->addr[FA_MIME_ENV_FROM] != NULL, "the next field is read");
    ok(root && root->body_end - root->body_start == 6, "the body is found");
    free(g.data);
    fa_pool_destroy(pool);
}

static void
test_many_fields(void)
{
    fa_pool_t       *pool = fa_pool_create(4096, NULL);
    gen_t            g = { 0 };
    fa_mime_part_t  *root;

    gen_str(&g, "From: first@example.com\r\n");
    for (int i = 0; i < 100000; i++) {
        gen_str(&g, "X-Filler: yes\r\n");
    }
    gen_str(&g, "Subject: too late\r\nContent-Type: ; ; ;");
    for (int i = 0; i < 5000; i++) {
        gen_str(&g, "; p=v");
    }
    gen_str(&g, "\r\n\r\nbody\r\n");
    root = parse(pool, g.data, g.len, 8192);
    ok(tree_ok(root, g.len, NULL, NULL), "100,000 fields: consistent");
    ok(root && root->envelope->addr[FA_MIME_ENV_FROM] != NULL, "the first field is read");
    ok(root && root->envelope->raw[FA_MIME_ENV_SUBJECT].data == NULL,
       "fields beyond max_headers are not");
    ok(root && (root->flags & FA_MIME_LIMITED), "limited");
    fa_pool_destroy(pool);

    pool = fa_pool_create(4096, NULL);
    g.len = 0;
    gen_str(&g, "Content-Type: text/plain");
    for (int i = 0; i < 5000; i++) {
        gen_str(&g, "; p=v");
    }
    gen_str(&g, "\r\nTo: ");
    for (int i = 0; i < 4000; i++) {
        gen_str(&g, "a@b.c, ");
    }
    gen_str(&g, "\r\n\r\nbody\r\n");
    root = parse(pool, g.data, g.len, 0);
    ok(root && root->nparams == 100, "parameters stop at max_params");
    {
        fa_uint_t  n = 0;
        for (fa_mime_address_t *a = root ? root->envelope->addr[FA_MIME_ENV_TO] : NULL; a;
             a = a->next)
        {
            n++;
        }
        is_int(n, 4000, "4,000 addresses read");
    }
    free(g.data);
    fa_pool_destroy(pool);
}

static void
test_budget(void)
{
    fa_mime_limits_t  l = fa_mime_limits_default;
    fa_pool_t        *pool = fa_pool_create(4096, NULL);
    gen_t             g = { 0 };
    fa_mime_part_t   *root;
    fa_uint_t         count;
    fa_str_t          ser;

    gen_str(&g, "Content-Type: multipart/mixed; boundary=x\r\n\r\n");
    for (int i = 0; i < 2000; i++) {
        gen_str(&g, "--x\r\nContent-Type: text/plain; name=\"a long file name.txt\"\r\n"
                    "Content-Description: a description that takes room\r\n"
                    "Content-Type: message/rfc822\r\n\r\nSubject: hi\r\n\r\nx\r\n");
    }
    l.max_tree = 64 * 1024;
    root = parse_with(pool, &l, g.data, g.len, 0);
    ok(tree_ok(root, g.len, &count, NULL), "tree budget of 64 KB: consistent (%lu parts)",
       (unsigned long) count);
    ok(root && (root->flags & FA_MIME_LIMITED), "limited");
    ok(root && renders(pool, root) && round_trips(pool, root, &ser) && ser.len < 128 * 1024,
       "renders and serializes (%zu bytes)", ser.len);
    free(g.data);
    fa_pool_destroy(pool);
}

/* random messages from MIME-looking pieces: no crash, chunking invariant */
static const char  *pieces[] = {
    "\r\n", "\n", "\r", "--a", "--b", "--a--", "--b--", "--", " ", "\t", ":", ";",
    "Content-Type: multipart/mixed; boundary=a\r\n",
    "Content-Type: multipart/digest; boundary=\"b\"\r\n",
    "Content-Type: message/rfc822\r\n", "Content-Type: message/global\r\n",
    "Content-Type: text/plain; charset*0*=utf-8''%C3; charset*1*=%A9\r\n",
    "Content-Disposition: attachment; filename*=x''y\r\n",
    "From: \"a\" <b@c>, (d) e@f, g:h@i;, <@j:k@l>\r\n", "To: =?utf-8?q?=C3=A9?=\r\n",
    "Subject: x\r\n", "X: y\r\n", "\r\n\r\n", "\0", "\xff\xfe", "=?", "?=", "(", ")",
    "\"", "<", ">", "@", ",", "body text", "Content-Language: en, fr\r\n",
};

static void
test_random(void)
{
    fa_pool_t       *pool;
    gen_t            g = { 0 };
    fa_mime_part_t  *a, *b;
    fa_str_t         sa, sb;
    fa_mime_section_t s;
    int              bad = 0;
    static const char *specs[] = { "1", "1.1", "2.1.MIME", "1.HEADER", "TEXT", "2.2.2.TEXT" };

    srand(42);
    for (int iter = 0; iter < 3000; iter++) {
        pool = fa_pool_create(4096, NULL);
        g.len = 0;
        for (int k = rand() % 200; k > 0; k--) {
            const char *piece = pieces[rand() % fa_nelems(pieces)];
            gen_add(&g, piece, piece[0] ? strlen(piece) : 1);
        }
        a = parse(pool, g.data, g.len, g.len ? g.len : 1);
        b = parse(pool, g.data, g.len, 0);
        if (!tree_ok(a, g.len, NULL, NULL) || !tree_ok(b, g.len, NULL, NULL)
            || !renders(pool, a) || !round_trips(pool, a, &sa)
            || fa_mime_serialize(b, pool, &sb) != FA_OK
            || sa.len != sb.len || memcmp(sa.data, sb.data, sa.len) != 0)
        {
            bad++;
        }
        for (size_t i = 0; a && i < fa_nelems(specs); i++) {
            if (fa_mime_section_find(a, (u_char *) specs[i], strlen(specs[i]), &s) == FA_OK
                && s.offset + s.length > g.len)
            {
                bad++;
            }
        }
        fa_pool_destroy(pool);
    }
    is_int(bad, 0, "3,000 random messages: consistent, chunking-invariant, round trip");
    free(g.data);
}

int
main(void)
{
    test_deep_multipart();
    test_deep_message();
    test_depth_cap();
    test_many_parts();
    test_long_line("50 MB one-line body", "Subject: big\r\n\r\n", "");
    test_long_line("50 MB one-line part",
                   "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\n",
                   "\r\n--q--\r\n");
    test_long_header();
    test_many_fields();
    test_budget();
    test_random();
    return done_testing();
}
