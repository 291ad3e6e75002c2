/*
 * The MIME module's descriptor and the small helpers every file of the
 * module uses: the tree's memory budget, the render buffer and the lexing
 * of structured header fields (RFC 5322 CFWS, RFC 2045 tokens).
 *
 * The module has no directives: it is a library for SMTP, IMAP and the
 * storage backends, registered so that `facteur -v` and the module list
 * show it and so a build without it fails at link time, not at run time.
 */

#include "fa_mime_parser.h"

fa_module_t  fa_mime_module = {
    FA_MODULE_V1, "mime", FA_MODULE_OTHER, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, FA_MODULE_SPARE
};

const fa_mime_limits_t  fa_mime_limits_default = {
    100,                  /* max_depth: Dovecot's max_nested_mime_parts */
    10000,                /* max_parts: Dovecot's max_total_mime_parts */
    1000,                 /* max_headers */
    100,                  /* max_params */
    64 * 1024,            /* max_field */
    200,                  /* max_boundary: RFC 2046 allows 70 */
    8 * 1024 * 1024       /* max_tree */
};

void
fa_mime_alloc_init(fa_mime_alloc_t *a, fa_pool_t *pool, size_t budget)
{
    a->pool = pool;
    a->left = budget;
    a->over = 0;
    a->nomem = 0;
}

void *
fa_mime_alloc(fa_mime_alloc_t *a, size_t size)
{
    void  *m;

    if (size > a->left) {
        a->over = 1;
        return NULL;
    }
    m = fa_pcalloc(a->pool, size ? size : 1);
    if (m == NULL) {
        a->nomem = 1;
        return NULL;
    }
    a->left -= size;
    return m;
}

/* an empty source still gives a present (non-NULL) string */
fa_int_t
fa_mime_copy(fa_mime_alloc_t *a, fa_str_t *dst, const u_char *src, size_t len)
{
    u_char  *m;

    m = fa_mime_alloc(a, len);
    if (m == NULL) {
        dst->len = 0;
        dst->data = NULL;
        return FA_ERROR;
    }
    if (len) {
        memcpy(m, src, len);
    }
    dst->len = len;
    dst->data = m;
    return FA_OK;
}

fa_int_t
fa_mime_buf_init(fa_mime_buf_t *b, fa_pool_t *pool, size_t size)
{
    b->pool = pool;
    b->len = 0;
    b->size = size ? size : 256;
    b->data = fa_pnalloc(pool, b->size);
    return b->data ? FA_OK : FA_ERROR;
}

/* room for len more bytes; grows by doubling, a large old block goes back */
fa_int_t
fa_mime_buf_reserve(fa_mime_buf_t *b, size_t len)
{
    size_t   size;
    u_char  *m;

    if (b->data == NULL) {
        return FA_ERROR;
    }
    if (len <= b->size - b->len) {
        return FA_OK;
    }
    size = b->size * 2;
    while (len > size - b->len) {
        if (size > SIZE_MAX / 2) {
            return FA_ERROR;
        }
        size *= 2;
    }
    m = fa_pnalloc(b->pool, size);
    if (m == NULL) {
        return FA_ERROR;
    }
    memcpy(m, b->data, b->len);
    (void) fa_pfree(b->pool, b->data);
    b->data = m;
    b->size = size;
    return FA_OK;
}

fa_int_t
fa_mime_buf_add(fa_mime_buf_t *b, const void *data, size_t len)
{
    if (fa_mime_buf_reserve(b, len) != FA_OK) {
        return FA_ERROR;
    }
    if (len) {
        memcpy(b->data + b->len, data, len);
        b->len += len;
    }
    return FA_OK;
}

/* a comment nests and may hold quoted pairs; an unclosed one runs to the end */
const u_char *
fa_mime_skip_comment(const u_char *p, const u_char *end)
{
    fa_uint_t  level = 0;

    for ( ; p < end; p++) {
        if (*p == '\\') {
            if (++p == end) {
                break;
            }
        } else if (*p == '(') {
            level++;
        } else if (*p == ')' && --level == 0) {
            return p + 1;
        }
    }
    return end;
}

const u_char *
fa_mime_skip_cfws(const u_char *p, const u_char *end)
{
    while (p < end) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            p++;
        } else if (*p == '(') {
            p = fa_mime_skip_comment(p, end);
        } else {
            break;
        }
    }
    return p;
}

/* RFC 2045 token: no controls, space or tspecials; 8-bit bytes tolerated */
const u_char *
fa_mime_token_end(const u_char *p, const u_char *end)
{
    for ( ; p < end; p++) {
        if (*p <= ' ' || *p == 0x7f || strchr("()<>@,;:\\\"/[]?=", *p) != NULL) {
            break;
        }
    }
    return p;
}
