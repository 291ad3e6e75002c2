/*
 * Content-Type and Content-Disposition parameters (RFC 2045, RFC 2231).
 *
 * They come out the way Dovecot shows them in BODYSTRUCTURE, which clients
 * are used to: plain parameters in their order, then the RFC 2231 ones
 * (name*, name*0, name*1*...) sorted by name with their sections joined.  A
 * value with an encoded section keeps its charset'language'%XX form and is
 * shown as "name*": clients decode it, and fa_mime_param_utf8() does for
 * SEARCH.  Sections with a gap are left as they came ("name*2").
 *
 * The parser works in place in the header field buffer (names lowered,
 * quoted strings unescaped), so a parameter list costs the tree only what it
 * keeps, and a hostile list at most max_params entries.
 */

#include "fa_mime_parser.h"

#define FA_MIME_PARAMS_MAX   256
#define FA_MIME_SECTION_MAX  9999
#define FA_MIME_NAME_MAX     256

typedef struct {
    u_char     *name;        /* lower-cased; the base name for RFC 2231 */
    size_t      nlen;
    u_char     *value;       /* unquoted */
    size_t      vlen;
    fa_uint_t   section;
    unsigned    rfc2231:1;
    unsigned    extended:1;
} fa_mime_raw_param_t;

/* a quoted string's content, unescaped in place; returns what follows it */
static u_char *
fa_mime_param_unquote(u_char *p, const u_char *end, size_t *len)
{
    u_char  *w = p, *start = p;

    while (p < end && *p != '"') {
        if (*p == '\\' && p + 1 < end) {
            p++;
        }
        *w++ = *p++;
    }
    *len = w - start;
    return p < end ? p + 1 : p;
}

/* "name*", "name*N", "name*N*" (Dovecot's reading of RFC 2231 names) */
static void
fa_mime_param_section(fa_mime_raw_param_t *r)
{
    u_char     *star, *q, *end = r->name + r->nlen;
    fa_uint_t   idx = 0;
    int         ext = 0;

    star = memchr(r->name, '*', r->nlen);
    if (star == NULL || star == r->name) {
        return;
    }
    q = star + 1;
    if (q == end) {
        ext = 1;
    } else {
        for ( ; q < end && *q >= '0' && *q <= '9'; q++) {
            idx = idx * 10 + (*q - '0');
            if (idx > FA_MIME_SECTION_MAX) {
                return;
            }
        }
        if (q < end && *q == '*') {
            ext = 1;
            q++;
        }
        if (q != end) {
            return;
        }
    }
    r->rfc2231 = 1;
    r->extended = ext;
    r->section = idx;
    r->nlen = star - r->name;
}

/* read the parameter at p (after its ';'); NULL when it is unusable */
static u_char *
fa_mime_param_one(u_char *p, const u_char *end, fa_mime_raw_param_t *r)
{
    u_char  *v;

    p = (u_char *) fa_mime_skip_cfws(p, end);
    r->name = p;
    p = (u_char *) fa_mime_token_end(p, end);
    r->nlen = p - r->name;
    p = (u_char *) fa_mime_skip_cfws(p, end);
    if (r->nlen == 0 || p == end || *p != '=') {
        return NULL;
    }
    p = (u_char *) fa_mime_skip_cfws(p + 1, end);
    if (p < end && *p == '"') {
        r->value = p + 1;
        p = fa_mime_param_unquote(p + 1, end, &r->vlen);
    } else {
        /* tolerant: "boundary=----=_Part_1" is common, a token would stop at '=' */
        for (v = p; p < end && *p > ' ' && *p != ';' && *p != '(' && *p != '"'; p++) {
            /* void */
        }
        r->value = v;
        r->vlen = p - v;
    }
    fa_strlow(r->name, r->name, r->nlen);
    r->section = 0;
    r->rfc2231 = 0;
    r->extended = 0;
    fa_mime_param_section(r);
    return p;
}

static fa_uint_t
fa_mime_param_scan(u_char *p, const u_char *end, fa_mime_raw_param_t *raw, fa_uint_t max)
{
    fa_uint_t  n = 0;
    u_char    *next;

    while (n < max) {
        p = (u_char *) fa_mime_skip_cfws(p, end);
        if (p == end) {
            break;
        }
        if (*p == ';') {
            next = fa_mime_param_one(p + 1, end, &raw[n]);
            if (next != NULL) {
                n++;
                p = next;
                continue;
            }
            p++;
        }
        /* junk: on to the next ';' */
        next = memchr(p, ';', end - p);
        p = next ? next : (u_char *) end;
    }
    return n;
}

static int
fa_mime_param_before(const fa_mime_raw_param_t *a, const fa_mime_raw_param_t *b)
{
    int  rc = memcmp(a->name, b->name, fa_min(a->nlen, b->nlen));

    if (rc != 0) {
        return rc < 0;
    }
    if (a->nlen != b->nlen) {
        return a->nlen < b->nlen;
    }
    return a->section < b->section;
}

/* insertion sort of the RFC 2231 entries (at most FA_MIME_PARAMS_MAX) */
static void
fa_mime_param_sort(fa_mime_raw_param_t **v, fa_uint_t n)
{
    fa_mime_raw_param_t  *r;
    fa_uint_t             i, j;

    for (i = 1; i < n; i++) {
        r = v[i];
        for (j = i; j > 0 && fa_mime_param_before(r, v[j - 1]); j--) {
            v[j] = v[j - 1];
        }
        v[j] = r;
    }
}

static fa_int_t
fa_mime_param_set(fa_mime_alloc_t *a, fa_mime_param_t *out, const u_char *name,
    size_t nlen, const u_char *value, size_t vlen)
{
    if (fa_mime_copy(a, &out->name, name, nlen) != FA_OK
        || fa_mime_copy(a, &out->value, value, vlen) != FA_OK)
    {
        return FA_ERROR;
    }
    return FA_OK;
}

/* one RFC 2231 name with sections 0..n-1 and no gap: join them */
static fa_int_t
fa_mime_param_join(fa_mime_alloc_t *a, fa_mime_param_t *out, fa_mime_raw_param_t **g,
    fa_uint_t n)
{
    fa_uint_t  i;
    size_t     len = 0, k;
    int        ext = 0;
    u_char    *w;

    for (i = 0; i < n; i++) {
        ext |= g[i]->extended;
        len += g[i]->vlen;
    }
    for (i = 0; ext && i < n; i++) {
        for (k = 0; !g[i]->extended && k < g[i]->vlen; k++) {
            len += g[i]->value[k] == '%' ? 2 : 0;   /* a plain '%' becomes %25 */
        }
    }
    len += ext && !g[0]->extended ? 2 : 0;          /* no charset'lang' given */

    if (fa_mime_copy(a, &out->name, g[0]->name, g[0]->nlen) != FA_OK
        || (w = fa_mime_alloc(a, len)) == NULL)
    {
        return FA_ERROR;
    }
    out->value.data = w;
    out->value.len = len;
    out->extended = ext;
    if (ext && !g[0]->extended) {
        *w++ = '\'';
        *w++ = '\'';
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k < g[i]->vlen; k++) {
            if (ext && !g[i]->extended && g[i]->value[k] == '%') {
                memcpy(w, "%25", 3);
                w += 3;
            } else {
                *w++ = g[i]->value[k];
            }
        }
    }
    return FA_OK;
}

/* a group whose sections have a gap: each entry as it came, "name*N[*]" */
static fa_int_t
fa_mime_param_broken(fa_mime_alloc_t *a, fa_mime_param_t *out, fa_mime_raw_param_t *r)
{
    u_char  name[FA_MIME_NAME_MAX + 16];
    size_t  n;

    if (r->nlen > FA_MIME_NAME_MAX) {
        return FA_ERROR;
    }
    memcpy(name, r->name, r->nlen);
    n = r->nlen + fa_snprintf((char *) name + r->nlen, sizeof(name) - r->nlen,
                              "*%u%s", (unsigned) r->section, r->extended ? "*" : "");
    return fa_mime_param_set(a, out, name, n, r->value, r->vlen);
}

static fa_uint_t
fa_mime_param_group_end(fa_mime_raw_param_t **v, fa_uint_t i, fa_uint_t n, int *ok)
{
    fa_uint_t  j;

    *ok = 1;
    for (j = i; j < n; j++) {
        if (v[j]->nlen != v[i]->nlen || memcmp(v[j]->name, v[i]->name, v[i]->nlen) != 0) {
            break;
        }
        if (v[j]->section != j - i) {
            *ok = 0;
        }
    }
    return j;
}

static fa_uint_t
fa_mime_param_count(fa_mime_raw_param_t *raw, fa_uint_t nraw, fa_mime_raw_param_t **v,
    fa_uint_t nv)
{
    fa_uint_t  n = 0, i, next;
    int        ok;

    for (i = 0; i < nraw; i++) {
        n += !raw[i].rfc2231;
    }
    for (i = 0; i < nv; i = next) {
        next = fa_mime_param_group_end(v, i, nv, &ok);
        n += ok ? 1 : next - i;
    }
    return n;
}

/* out: plain parameters in order, then the RFC 2231 groups sorted in v */
static fa_uint_t
fa_mime_param_fill(fa_mime_alloc_t *a, fa_mime_param_t *out, fa_mime_raw_param_t *raw,
    fa_uint_t nraw, fa_mime_raw_param_t **v, fa_uint_t nv)
{
    fa_uint_t  i, j, k = 0, next;
    int        ok;

    for (i = 0; i < nraw; i++) {
        if (!raw[i].rfc2231) {
            if (fa_mime_param_set(a, &out[k], raw[i].name, raw[i].nlen,
                                  raw[i].value, raw[i].vlen) != FA_OK)
            {
                return k;
            }
            k++;
        }
    }
    for (i = 0; i < nv; i = next) {
        next = fa_mime_param_group_end(v, i, nv, &ok);
        if (ok) {
            if (fa_mime_param_join(a, &out[k], &v[i], next - i) != FA_OK) {
                return k;
            }
            k++;
            continue;
        }
        for (j = i; j < next; j++) {
            if (fa_mime_param_broken(a, &out[k], v[j]) != FA_OK) {
                return k;
            }
            k++;
        }
    }
    return k;
}

fa_int_t
fa_mime_param_parse(fa_mime_alloc_t *a, fa_uint_t max, u_char *p, const u_char *end,
    fa_mime_param_t **params, fa_uint_t *n)
{
    fa_mime_raw_param_t   raw[FA_MIME_PARAMS_MAX], *v[FA_MIME_PARAMS_MAX];
    fa_mime_param_t      *out;
    fa_uint_t             nraw, nv = 0, total;

    nraw = fa_mime_param_scan(p, end, raw, fa_min(max, (fa_uint_t) FA_MIME_PARAMS_MAX));
    for (fa_uint_t i = 0; i < nraw; i++) {
        if (raw[i].rfc2231) {
            v[nv++] = &raw[i];
        }
    }
    fa_mime_param_sort(v, nv);
    total = fa_mime_param_count(raw, nraw, v, nv);
    if (total == 0) {
        return FA_OK;
    }
    out = fa_mime_alloc(a, total * sizeof(fa_mime_param_t));
    if (out == NULL) {
        return FA_ERROR;
    }
    *params = out;
    *n = fa_mime_param_fill(a, out, raw, nraw, v, nv);
    return *n == total ? FA_OK : FA_ERROR;
}

const fa_mime_param_t *
fa_mime_param_find(const fa_mime_param_t *params, fa_uint_t n, const char *name)
{
    size_t  len = strlen(name);

    for (fa_uint_t i = 0; i < n; i++) {
        if (params[i].name.len == len && memcmp(params[i].name.data, name, len) == 0) {
            return &params[i];
        }
    }
    return NULL;
}

/*
 * The value in UTF-8: RFC 2231 charset'lang'%XX for an extended one,
 * otherwise RFC 2047 words, which many mailers put in parameters anyway.
 */
fa_int_t
fa_mime_param_utf8(fa_pool_t *pool, const fa_mime_param_t *param, fa_str_t *out)
{
    const u_char  *v = param->value.data, *q1, *q2;
    size_t         len = param->value.len;
    fa_str_t       charset, bytes;
    fa_int_t       rc;

    if (v == NULL) {
        out->len = 0;
        out->data = NULL;
        return FA_OK;
    }
    if (!param->extended) {
        return fa_mime_decode_header(pool, v, len, out);
    }
    q1 = memchr(v, '\'', len);
    q2 = q1 ? memchr(q1 + 1, '\'', len - (q1 + 1 - v)) : NULL;
    if (q2 == NULL) {
        return fa_mime_decode_percent(pool, v, len, out);
    }
    if (fa_mime_decode_percent(pool, q2 + 1, len - (q2 + 1 - v), &bytes) != FA_OK) {
        return FA_ERROR;
    }
    charset.data = (u_char *) v;
    charset.len = q1 - v;
    if (charset.len == 0) {
        *out = bytes;
        return FA_OK;
    }
    rc = fa_mime_decode_charset(pool, &charset, bytes.data, bytes.len, out);
    if (rc == FA_DECLINED) {
        *out = bytes;
        return FA_OK;
    }
    return rc;
}
