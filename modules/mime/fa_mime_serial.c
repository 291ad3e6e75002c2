/*
 * The part tree as a compact record, kept in the message's metadata so that
 * FETCH of sections, BODY and BODYSTRUCTURE never re-parse the message.
 *
 * Format (version 1): "FaM" 0x01, then the parts in pre-order.  Numbers are
 * LEB128 varints; a string is a varint of its length plus one, 0 for NIL.
 *
 *   part  := flags header_start header_len body_len body_lines
 *            type subtype params id description encoding disposition
 *            disp_params nlanguages *language location md5
 *            has_envelope [10 * string] nchildren *part
 *   params := n *(name value extended)
 *
 * Only the envelope's raw fields are stored; the addresses are parsed again
 * on load.  The reader trusts nothing: every length is checked against what
 * is left, offsets must nest, counts are bounded by the bytes that remain,
 * nesting by FA_MIME_DEPTH_MAX, so a corrupted record is an error, never a
 * crash or a huge allocation.
 */

#include "fa_mime_parser.h"

#define FA_MIME_SERIAL_VERSION  1
#define FA_MIME_SERIAL_FLAGS    0x7f     /* every FA_MIME_* flag a part may carry */

static const u_char  fa_mime_serial_magic[] = { 'F', 'a', 'M', FA_MIME_SERIAL_VERSION };

typedef struct {
    const u_char     *p;
    const u_char     *end;
    fa_mime_alloc_t   a;
} fa_mime_reader_t;

static fa_int_t
fa_mime_serial_varint(fa_mime_buf_t *b, uint64_t v)
{
    u_char  out[10];
    size_t  n = 0;

    do {
        out[n++] = (u_char) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return fa_mime_buf_add(b, out, n);
}

static fa_int_t
fa_mime_serial_nstr(fa_mime_buf_t *b, const fa_str_t *s)
{
    if (s->data == NULL) {
        return fa_mime_serial_varint(b, 0);
    }
    if (fa_mime_serial_varint(b, (uint64_t) s->len + 1) != FA_OK) {
        return FA_ERROR;
    }
    return fa_mime_buf_add(b, s->data, s->len);
}

static fa_int_t
fa_mime_serial_params(fa_mime_buf_t *b, const fa_mime_param_t *params, fa_uint_t n)
{
    u_char  ext;

    if (fa_mime_serial_varint(b, n) != FA_OK) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < n; i++) {
        ext = params[i].extended;
        if (fa_mime_serial_nstr(b, &params[i].name) != FA_OK
            || fa_mime_serial_nstr(b, &params[i].value) != FA_OK
            || fa_mime_buf_add(b, &ext, 1) != FA_OK)
        {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_mime_serial_envelope(fa_mime_buf_t *b, const fa_mime_envelope_t *env)
{
    u_char  has = env != NULL;

    if (fa_mime_buf_add(b, &has, 1) != FA_OK) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; has && i < FA_MIME_ENV_N; i++) {
        if (fa_mime_serial_nstr(b, &env->raw[i]) != FA_OK) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_mime_serial_part(fa_mime_buf_t *b, const fa_mime_part_t *part)
{
    const fa_mime_part_t  *c;
    const fa_str_t        *s[] = { &part->type, &part->subtype };
    const fa_str_t        *t[] = { &part->id, &part->description, &part->encoding,
                                   &part->disposition };

    if (fa_mime_serial_varint(b, part->flags & FA_MIME_SERIAL_FLAGS) != FA_OK
        || fa_mime_serial_varint(b, part->header_start) != FA_OK
        || fa_mime_serial_varint(b, part->body_start - part->header_start) != FA_OK
        || fa_mime_serial_varint(b, part->body_end - part->body_start) != FA_OK
        || fa_mime_serial_varint(b, part->body_lines) != FA_OK
        || fa_mime_serial_nstr(b, s[0]) != FA_OK
        || fa_mime_serial_nstr(b, s[1]) != FA_OK
        || fa_mime_serial_params(b, part->params, part->nparams) != FA_OK)
    {
        return FA_ERROR;
    }
    for (size_t i = 0; i < fa_nelems(t); i++) {
        if (fa_mime_serial_nstr(b, t[i]) != FA_OK) {
            return FA_ERROR;
        }
    }
    if (fa_mime_serial_params(b, part->disp_params, part->ndisp_params) != FA_OK
        || fa_mime_serial_varint(b, part->nlanguages) != FA_OK)
    {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < part->nlanguages; i++) {
        if (fa_mime_serial_nstr(b, &part->languages[i]) != FA_OK) {
            return FA_ERROR;
        }
    }
    if (fa_mime_serial_nstr(b, &part->location) != FA_OK
        || fa_mime_serial_nstr(b, &part->md5) != FA_OK
        || fa_mime_serial_envelope(b, part->envelope) != FA_OK
        || fa_mime_serial_varint(b, part->nchildren) != FA_OK)
    {
        return FA_ERROR;
    }
    for (c = part->children; c; c = c->next) {
        if (fa_mime_serial_part(b, c) != FA_OK) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

fa_int_t
fa_mime_serialize(const fa_mime_part_t *root, fa_pool_t *pool, fa_str_t *out)
{
    fa_mime_buf_t  b;

    if (fa_mime_buf_init(&b, pool, 512) != FA_OK
        || fa_mime_buf_add(&b, fa_mime_serial_magic, sizeof(fa_mime_serial_magic)) != FA_OK
        || fa_mime_serial_part(&b, root) != FA_OK)
    {
        return FA_ERROR;
    }
    out->data = b.data;
    out->len = b.len;
    return FA_OK;
}

static int
fa_mime_serial_get_varint(fa_mime_reader_t *r, uint64_t *v)
{
    uint64_t  x = 0;
    u_char    c;

    for (unsigned shift = 0; r->p < r->end; shift += 7) {
        c = *r->p++;
        if (shift == 63 && c > 1) {
            return 0;                       /* more than 64 bits */
        }
        x |= (uint64_t) (c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return 0;
}

/* a count of items that each take at least one byte of what is left */
static int
fa_mime_serial_get_count(fa_mime_reader_t *r, fa_uint_t *n)
{
    uint64_t  v;

    if (!fa_mime_serial_get_varint(r, &v) || v > (uint64_t) (r->end - r->p)) {
        return 0;
    }
    *n = (fa_uint_t) v;
    return 1;
}

static int
fa_mime_serial_get_nstr(fa_mime_reader_t *r, fa_str_t *s)
{
    uint64_t  v;

    s->data = NULL;
    s->len = 0;
    if (!fa_mime_serial_get_varint(r, &v) || (v > 0 && v - 1 > (uint64_t) (r->end - r->p))) {
        return 0;
    }
    if (v == 0) {
        return 1;
    }
    if (fa_mime_copy(&r->a, s, r->p, v - 1) != FA_OK) {
        return 0;
    }
    r->p += v - 1;
    return 1;
}

static int
fa_mime_serial_get_params(fa_mime_reader_t *r, fa_mime_param_t **params, fa_uint_t *n)
{
    fa_mime_param_t  *out;

    if (!fa_mime_serial_get_count(r, n)) {
        return 0;
    }
    if (*n == 0) {
        return 1;
    }
    out = fa_mime_alloc(&r->a, *n * sizeof(fa_mime_param_t));
    if (out == NULL) {
        return 0;
    }
    *params = out;
    for (fa_uint_t i = 0; i < *n; i++) {
        if (!fa_mime_serial_get_nstr(r, &out[i].name)
            || !fa_mime_serial_get_nstr(r, &out[i].value)
            || r->p == r->end || *r->p > 1)
        {
            return 0;
        }
        out[i].extended = *r->p++;
    }
    return 1;
}

static int
fa_mime_serial_get_envelope(fa_mime_reader_t *r, fa_mime_part_t *part)
{
    if (r->p == r->end || *r->p > 1) {
        return 0;
    }
    if (*r->p++ == 0) {
        return 1;
    }
    part->envelope = fa_mime_alloc(&r->a, sizeof(fa_mime_envelope_t));
    if (part->envelope == NULL) {
        return 0;
    }
    for (fa_uint_t i = 0; i < FA_MIME_ENV_N; i++) {
        if (!fa_mime_serial_get_nstr(r, &part->envelope->raw[i])) {
            return 0;
        }
    }
    return fa_mime_header_envelope(&r->a, part->envelope) == FA_OK;
}

static int
fa_mime_serial_get_offsets(fa_mime_reader_t *r, fa_mime_part_t *part)
{
    uint64_t  flags, hlen, blen;

    if (!fa_mime_serial_get_varint(r, &flags) || (flags & ~FA_MIME_SERIAL_FLAGS)
        || !fa_mime_serial_get_varint(r, &part->header_start)
        || !fa_mime_serial_get_varint(r, &hlen)
        || !fa_mime_serial_get_varint(r, &blen)
        || !fa_mime_serial_get_varint(r, &part->body_lines)
        || hlen > UINT64_MAX - part->header_start
        || blen > UINT64_MAX - part->header_start - hlen
        || part->body_lines > blen)
    {
        return 0;
    }
    part->flags = (fa_uint_t) flags;
    part->body_start = part->header_start + hlen;
    part->body_end = part->body_start + blen;
    return 1;
}

static int
fa_mime_serial_get_fields(fa_mime_reader_t *r, fa_mime_part_t *part)
{
    if (!fa_mime_serial_get_offsets(r, part)
        || !fa_mime_serial_get_nstr(r, &part->type)
        || !fa_mime_serial_get_nstr(r, &part->subtype)
        || !fa_mime_serial_get_params(r, &part->params, &part->nparams)
        || !fa_mime_serial_get_nstr(r, &part->id)
        || !fa_mime_serial_get_nstr(r, &part->description)
        || !fa_mime_serial_get_nstr(r, &part->encoding)
        || !fa_mime_serial_get_nstr(r, &part->disposition)
        || !fa_mime_serial_get_params(r, &part->disp_params, &part->ndisp_params)
        || !fa_mime_serial_get_count(r, &part->nlanguages))
    {
        return 0;
    }
    if (part->nlanguages) {
        part->languages = fa_mime_alloc(&r->a, part->nlanguages * sizeof(fa_str_t));
        if (part->languages == NULL) {
            return 0;
        }
    }
    for (fa_uint_t i = 0; i < part->nlanguages; i++) {
        if (!fa_mime_serial_get_nstr(r, &part->languages[i])) {
            return 0;
        }
    }
    return fa_mime_serial_get_nstr(r, &part->location)
           && fa_mime_serial_get_nstr(r, &part->md5)
           && fa_mime_serial_get_envelope(r, part);
}

/* the shape the parser always gives: checked so renderers can trust it */
static int
fa_mime_serial_check(const fa_mime_part_t *part)
{
    fa_uint_t  kind = part->flags & (FA_MIME_MULTIPART | FA_MIME_MESSAGE);

    if (kind == (FA_MIME_MULTIPART | FA_MIME_MESSAGE)) {
        return 0;
    }
    if (kind == FA_MIME_MESSAGE) {
        return part->nchildren == 1 && part->children->envelope != NULL;
    }
    return kind == FA_MIME_MULTIPART || part->nchildren == 0;
}

static fa_mime_part_t *
fa_mime_serial_get_part(fa_mime_reader_t *r, fa_mime_part_t *parent, fa_uint_t depth)
{
    fa_mime_part_t  *part, *child, *last = NULL;
    fa_uint_t        n;
    uint64_t         cursor;

    if (depth > FA_MIME_DEPTH_MAX) {
        return NULL;
    }
    part = fa_mime_alloc(&r->a, sizeof(fa_mime_part_t));
    if (part == NULL || !fa_mime_serial_get_fields(r, part)
        || !fa_mime_serial_get_count(r, &n))
    {
        return NULL;
    }
    part->parent = parent;
    part->depth = depth;
    cursor = part->body_start;
    for (fa_uint_t i = 0; i < n; i++) {
        child = fa_mime_serial_get_part(r, part, depth + 1);
        if (child == NULL || child->header_start < cursor || child->body_end > part->body_end) {
            return NULL;
        }
        cursor = child->body_end;
        if (last) {
            last->next = child;
        } else {
            part->children = child;
        }
        last = child;
        part->nchildren++;
    }
    return fa_mime_serial_check(part) ? part : NULL;
}

fa_mime_part_t *
fa_mime_parse_serialized(fa_pool_t *pool, const u_char *data, size_t len)
{
    fa_mime_reader_t  r;
    fa_mime_part_t   *root;

    if (len < sizeof(fa_mime_serial_magic)
        || memcmp(data, fa_mime_serial_magic, sizeof(fa_mime_serial_magic)) != 0)
    {
        return NULL;
    }
    r.p = data + sizeof(fa_mime_serial_magic);
    r.end = data + len;
    fa_mime_alloc_init(&r.a, pool, SIZE_MAX);
    root = fa_mime_serial_get_part(&r, NULL, 0);
    if (root == NULL || r.p != r.end || root->header_start != 0) {
        return NULL;
    }
    return root;
}
