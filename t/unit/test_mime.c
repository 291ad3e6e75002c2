/*
 * The MIME parser against a corpus of real-world-shaped messages:
 * t/unit/mime/NAME.eml and NAME.expect.  An expect file holds lines
 *
 *   ENVELOPE / BODY / BODYSTRUCTURE <rendering>    compared exactly
 *   SECTION <spec> = <bytes> | !DECLINED | !ERROR  the range, \r \n \xHH escapes
 *   DECODE <envelope field> = <UTF-8>              fa_mime_decode_header
 *   PARAM <section> type|disposition <name> = <UTF-8>
 *   FLAGS <section> = <hex>                        the part's flags
 *
 * and each message is also parsed in one piece, one byte at a time and in
 * random chunks (the serializations must be identical), serialized and read
 * back (the renderings must not change), and cut at every length (the tree
 * must stay consistent).
 */

#include "fa_mime.h"
#include "fa_test.h"
#include <dirent.h>

#define LINE_MAX_LEN  8192

static char  corpus[1024];

typedef struct {
    const char      *name;
    const u_char    *msg;
    size_t           len;
    fa_mime_part_t  *root;
    fa_pool_t       *pool;
} msg_t;

static void
corpus_dir(void)
{
    const char  *slash = strrchr(__FILE__, '/');
    int          n = slash ? (int) (slash - __FILE__) : 0;

    snprintf(corpus, sizeof(corpus), "%.*s%smime", n, __FILE__, n ? "/" : "");
}

static u_char *
slurp(const char *path, size_t *len)
{
    FILE    *f = fopen(path, "rb");
    u_char  *data;
    long     n;

    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    data = malloc(n + 1);
    *len = fread(data, 1, n, f);
    fclose(f);
    return data;
}

/* chunk 0: random sizes from seed */
static fa_mime_part_t *
parse(fa_pool_t *pool, const u_char *msg, size_t len, size_t chunk, unsigned seed)
{
    fa_mime_parser_t  *p = fa_mime_parser_create(pool, NULL);
    size_t             off = 0, n;

    if (p == NULL) {
        return NULL;
    }
    srand(seed);
    while (off < len) {
        n = chunk ? chunk : (size_t) (rand() % 97) + 1;
        n = fa_min(n, len - off);
        if (fa_mime_parser_feed(p, msg + off, n) != FA_OK) {
            return NULL;
        }
        off += n;
    }
    return fa_mime_parser_finish(p);
}

static fa_str_t
render(fa_pool_t *pool, const fa_mime_part_t *part, const char *what)
{
    fa_mime_buf_t  b;
    fa_str_t       s = fa_null_string;

    if (fa_mime_buf_init(&b, pool, 0) != FA_OK) {
        return s;
    }
    if (strcmp(what, "ENVELOPE") == 0 ? fa_mime_render_envelope(&b, part) != FA_OK
        : fa_mime_render_bodystructure(&b, part, strcmp(what, "BODYSTRUCTURE") == 0)
          != FA_OK)
    {
        return s;
    }
    s.data = b.data;
    s.len = b.len;
    return s;
}

static int
hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* all escapes (sections), or only "{n}\r\n" literal heads (renderings) */
static size_t
unescape(const char *in, u_char *out, int all)
{
    size_t       n = 0;
    const char  *p;

    for (p = in; *p; p++) {
        if (!all && *p == '}' && strncmp(p + 1, "\\r\\n", 4) == 0) {
            memcpy(out + n, "}\r\n", 3);
            n += 3;
            p += 4;
        } else if (all && *p == '\\' && p[1]) {
            p++;
            switch (*p) {
            case 'r': out[n++] = '\r'; break;
            case 'n': out[n++] = '\n'; break;
            case 't': out[n++] = '\t'; break;
            case 'x': out[n++] = (u_char) (hexval(p[1]) << 4 | hexval(p[2])); p += 2; break;
            default: out[n++] = (u_char) *p; break;
            }
        } else {
            out[n++] = (u_char) *p;
        }
    }
    return n;
}

static void
show(const char *what, const u_char *s, size_t n)
{
    printf("#   %s: [%.*s]\n", what, (int) n, s ? (const char *) s : "(null)");
}

static void
expect_render(msg_t *m, const char *key, const char *want)
{
    static u_char  buf[LINE_MAX_LEN];
    size_t         n = unescape(want, buf, 0);
    fa_str_t       got = render(m->pool, m->root, key);
    int            good = got.len == n && memcmp(got.data, buf, n) == 0;

    ok(good, "%s: %s", m->name, key);
    if (!good) {
        show("got ", got.data, got.len);
        show("want", buf, n);
    }
}

static void
expect_section(msg_t *m, const char *spec, const char *want)
{
    static u_char       buf[LINE_MAX_LEN];
    fa_mime_section_t   s;
    fa_int_t            rc, wrc = FA_OK;
    size_t              n = 0;
    int                 good;

    rc = fa_mime_section_find(m->root, (const u_char *) spec, strlen(spec), &s);
    if (strcmp(want, "!DECLINED") == 0) {
        wrc = FA_DECLINED;
    } else if (strcmp(want, "!ERROR") == 0) {
        wrc = FA_ERROR;
    } else {
        n = unescape(want, buf, 1);
    }
    good = rc == wrc && (rc != FA_OK || (s.offset + s.length <= m->len && s.length == n
                                         && memcmp(m->msg + s.offset, buf, n) == 0));
    ok(good, "%s: section [%s]", m->name, spec);
    if (!good) {
        printf("#   rc %ld, want %ld\n", (long) rc, (long) wrc);
        if (rc == FA_OK) {
            show("got ", m->msg + s.offset, s.length);
        }
    }
}

static const char *env_names[] = {
    "date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc",
    "in-reply-to", "message-id"
};

static void
expect_decode(msg_t *m, const char *field, const char *want)
{
    fa_str_t  out = fa_null_string, *raw = NULL;

    for (size_t i = 0; i < fa_nelems(env_names); i++) {
        if (strcmp(field, env_names[i]) == 0) {
            raw = &m->root->envelope->raw[i];
        }
    }
    ok(raw && raw->data && fa_mime_decode_header(m->pool, raw->data, raw->len, &out) == FA_OK
       && out.len == strlen(want) && memcmp(out.data, want, out.len) == 0,
       "%s: decoded %s", m->name, field);
    if (out.data && (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)) {
        show("got ", out.data, out.len);
    }
}

static const fa_mime_part_t *
part_of(msg_t *m, const char *spec)
{
    fa_mime_section_t  s;

    if (fa_mime_section_find(m->root, (const u_char *) spec, strlen(spec), &s) != FA_OK) {
        return NULL;
    }
    return s.part;
}

/* "2 disposition filename" */
static void
expect_param(msg_t *m, const char *what, const char *want)
{
    char                    spec[64], kind[32], name[64];
    const fa_mime_part_t   *part;
    const fa_mime_param_t  *param = NULL;
    fa_str_t                out = fa_null_string;

    if (sscanf(what, "%63s %31s %63s", spec, kind, name) == 3
        && (part = part_of(m, spec)) != NULL)
    {
        param = strcmp(kind, "type") == 0
                ? fa_mime_param_find(part->params, part->nparams, name)
                : fa_mime_param_find(part->disp_params, part->ndisp_params, name);
    }
    ok(param && fa_mime_param_utf8(m->pool, param, &out) == FA_OK
       && out.len == strlen(want) && memcmp(out.data, want, out.len) == 0,
       "%s: parameter %s", m->name, what);
    if (out.data && (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0)) {
        show("got ", out.data, out.len);
    }
}

static void
expect_flags(msg_t *m, const char *spec, const char *want)
{
    const fa_mime_part_t  *part = *spec ? part_of(m, spec) : m->root;
    unsigned long          w = strtoul(want, NULL, 16);

    ok(part && part->flags == w, "%s: flags of [%s]", m->name, spec);
    if (part && part->flags != w) {
        printf("#   got %lx\n", (unsigned long) part->flags);
    }
}

static void
expect_line(msg_t *m, char *line)
{
    char  *key = line, *rest, *sep;

    rest = strchr(line, ' ');
    if (rest == NULL) {
        ok(0, "%s: bad expect line %s", m->name, line);
        return;
    }
    *rest++ = '\0';
    if (strcmp(key, "ENVELOPE") == 0 || strcmp(key, "BODY") == 0
        || strcmp(key, "BODYSTRUCTURE") == 0)
    {
        expect_render(m, key, rest);
        return;
    }
    sep = strstr(rest, " =");
    if (sep == NULL) {
        ok(0, "%s: no \" = \" in %s %s", m->name, key, rest);
        return;
    }
    *sep = '\0';
    sep += sep[2] == ' ' ? 3 : 2;
    if (strcmp(key, "SECTION") == 0) {
        expect_section(m, rest, sep);
    } else if (strcmp(key, "DECODE") == 0) {
        expect_decode(m, rest, sep);
    } else if (strcmp(key, "PARAM") == 0) {
        expect_param(m, rest, sep);
    } else if (strcmp(key, "FLAGS") == 0) {
        expect_flags(m, rest, sep);
    } else {
        ok(0, "%s: unknown expectation %s", m->name, key);
    }
}

static void
check_expect(msg_t *m, const char *path)
{
    FILE  *f = fopen(path, "r");
    char   line[LINE_MAX_LEN];
    size_t n;

    ok(f != NULL, "%s: has an expect file", m->name);
    while (f && fgets(line, sizeof(line), f)) {
        n = strlen(line);
        if (n && line[n - 1] == '\n') {
            line[--n] = '\0';
        }
        if (n && line[0] != '#') {
            expect_line(m, line);
        }
    }
    if (f) {
        fclose(f);
    }
}

/* offsets nest, sizes fit, counts agree: what every reader of the tree assumes */
static int
consistent(const fa_mime_part_t *part, uint64_t size, fa_uint_t depth)
{
    const fa_mime_part_t  *c;
    uint64_t               cursor = part->body_start;
    fa_uint_t              n = 0;

    if (part->header_start > part->body_start || part->body_start > part->body_end
        || part->body_end > size || part->depth != depth
        || part->body_lines > part->body_end - part->body_start
        || part->type.data == NULL || part->subtype.data == NULL)
    {
        return 0;
    }
    for (c = part->children; c; c = c->next, n++) {
        if (c->parent != part || c->header_start < cursor || c->body_end > part->body_end
            || !consistent(c, size, depth + 1))
        {
            return 0;
        }
        cursor = c->body_end;
    }
    if ((part->flags & FA_MIME_MESSAGE) && (n != 1 || part->children->envelope == NULL)) {
        return 0;
    }
    return n == part->nchildren;
}

static int
same_str(fa_str_t a, fa_str_t b)
{
    return a.data && b.data && a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
}

static void
check_chunking(msg_t *m)
{
    fa_pool_t       *pool = fa_pool_create(4096, NULL);
    fa_mime_part_t  *t;
    fa_str_t         ref, s;
    int              good = 1;

    ok(fa_mime_serialize(m->root, pool, &ref) == FA_OK, "%s: serialized", m->name);
    for (unsigned i = 0; i < 12 && good; i++) {
        t = parse(pool, m->msg, m->len, i == 0 ? 1 : i < 4 ? i + 1 : 0, i);
        good = t && fa_mime_serialize(t, pool, &s) == FA_OK && same_str(ref, s);
    }
    ok(good, "%s: same tree for any chunking", m->name);
    fa_pool_destroy(pool);
}

static void
check_roundtrip(msg_t *m)
{
    static const char  *what[] = { "ENVELOPE", "BODY", "BODYSTRUCTURE" };
    fa_mime_part_t     *back;
    fa_str_t            s, s2;
    int                 good;

    good = fa_mime_serialize(m->root, m->pool, &s) == FA_OK
           && (back = fa_mime_parse_serialized(m->pool, s.data, s.len)) != NULL
           && fa_mime_serialize(back, m->pool, &s2) == FA_OK && same_str(s, s2)
           && consistent(back, m->len, 0);
    for (size_t i = 0; good && i < fa_nelems(what); i++) {
        good = same_str(render(m->pool, m->root, what[i]), render(m->pool, back, what[i]));
    }
    ok(good, "%s: serialized tree renders the same", m->name);
}

/* every prefix of the message is a message too: a truncated one */
static void
check_prefixes(msg_t *m)
{
    static const char  *specs[] = { "", "1", "1.MIME", "2.1", "HEADER", "TEXT", "2.HEADER" };
    fa_pool_t          *pool;
    fa_mime_part_t     *t, *back;
    fa_mime_section_t   sec;
    fa_str_t            s;
    size_t              bad = 0;

    for (size_t k = 0; k <= m->len; k++) {
        pool = fa_pool_create(4096, NULL);
        t = parse(pool, m->msg, k, k % 7 + 1, 0);
        if (t == NULL || !consistent(t, k, 0) || t->body_end != k
            || render(pool, t, "BODYSTRUCTURE").data == NULL
            || render(pool, t, "ENVELOPE").data == NULL
            || fa_mime_serialize(t, pool, &s) != FA_OK
            || (back = fa_mime_parse_serialized(pool, s.data, s.len)) == NULL
            || !consistent(back, k, 0))
        {
            bad++;
        }
        for (size_t i = 0; t && i < fa_nelems(specs); i++) {
            if (fa_mime_section_find(t, (const u_char *) specs[i], strlen(specs[i]), &sec)
                == FA_OK && sec.offset + sec.length > k)
            {
                bad++;
            }
        }
        fa_pool_destroy(pool);
    }
    is_int(bad, 0, "%s: every truncation parses consistently", m->name);
}

static void
run(const char *name)
{
    char     path[2048];
    msg_t    m;
    u_char  *data;

    snprintf(path, sizeof(path), "%s/%s", corpus, name);
    data = slurp(path, &m.len);
    ok(data != NULL, "%s: read", name);
    if (data == NULL) {
        return;
    }
    m.name = name;
    m.msg = data;
    m.pool = fa_pool_create(4096, NULL);
    m.root = parse(m.pool, data, m.len, m.len ? m.len : 1, 0);
    ok(m.root && consistent(m.root, m.len, 0) && m.root->body_end == m.len,
       "%s: parsed, offsets consistent", name);
    if (m.root) {
        snprintf(path + strlen(path) - 4, 8, ".expect");
        check_expect(&m, path);
        check_chunking(&m);
        check_roundtrip(&m);
        check_prefixes(&m);
    }
    fa_pool_destroy(m.pool);
    free(data);
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

int
main(void)
{
    DIR            *d;
    struct dirent  *e;
    char           *names[256];
    size_t          n = 0, len;

    corpus_dir();
    d = opendir(corpus);
    ok(d != NULL, "corpus directory %s", corpus);
    while (d && (e = readdir(d)) != NULL && n < fa_nelems(names)) {
        len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".eml") == 0) {
            names[n++] = strdup(e->d_name);
        }
    }
    if (d) {
        closedir(d);
    }
    ok(n >= 15, "corpus has %zu messages", n);
    qsort(names, n, sizeof(char *), by_name);
    for (size_t i = 0; i < n; i++) {
        run(names[i]);
        free(names[i]);
    }
    return done_testing();
}
