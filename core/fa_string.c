/*
 * Counted strings and number parsing.  The parsers are strict: a value with
 * trailing garbage, no digits or an overflow is -1, so hostile config or
 * protocol input never reaches undefined behaviour.
 */

#include "fa_core.h"
#include <openssl/evp.h>

int
fa_str_equal(const fa_str_t *a, const fa_str_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

int
fa_str_casecmp(const fa_str_t *a, const char *s)
{
    size_t  n = strlen(s);

    if (a->len != n) {
        return a->len < n ? -1 : 1;
    }
    return strncasecmp((const char *) a->data, s, n);
}

u_char *
fa_pstrdup(fa_pool_t *pool, const fa_str_t *src)
{
    u_char  *p;

    p = fa_pnalloc(pool, src->len + 1);
    if (p == NULL) {
        return NULL;
    }
    if (src->len) {
        memcpy(p, src->data, src->len);
    }
    p[src->len] = '\0';
    return p;
}

char *
fa_pstrcat(fa_pool_t *pool, const char *a, const char *b)
{
    size_t  la = strlen(a), lb = strlen(b);
    char   *p;

    p = fa_pnalloc(pool, la + lb + 1);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, a, la);
    memcpy(p + la, b, lb + 1);
    return p;
}

int64_t
fa_atoi(const u_char *p, size_t n)
{
    int64_t  value = 0;

    if (n == 0) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
        if (value > (INT64_MAX - (p[i] - '0')) / 10) {
            return -1;
        }
        value = value * 10 + (p[i] - '0');
    }
    return value;
}

/* split "10k" into digits and a one-letter unit; unit 0 when absent */
static int64_t
fa_parse_unit(const fa_str_t *s, u_char *unit, size_t max_unit_len, size_t *unit_len)
{
    size_t  n = s->len;

    *unit_len = 0;
    while (n > 0 && *unit_len < max_unit_len
           && ((s->data[n - 1] | 0x20) >= 'a' && (s->data[n - 1] | 0x20) <= 'z'))
    {
        n--;
        (*unit_len)++;
    }
    fa_strlow(unit, s->data + n, *unit_len);
    return fa_atoi(s->data, n);
}

static int64_t
fa_scale(int64_t v, int64_t mult)
{
    if (v < 0 || v > INT64_MAX / mult) {
        return -1;
    }
    return v * mult;
}

int64_t
fa_parse_size(const fa_str_t *s)
{
    u_char   unit[2];
    size_t   ulen;
    int64_t  v;

    v = fa_parse_unit(s, unit, 1, &ulen);
    if (ulen == 0) {
        return v;
    }
    switch (unit[0]) {
    case 'k': return fa_scale(v, 1024);
    case 'm': return fa_scale(v, 1024 * 1024);
    case 'g': return fa_scale(v, 1024 * 1024 * 1024);
    default:  return -1;
    }
}

fa_msec_t
fa_parse_time(const fa_str_t *s, int seconds)
{
    u_char   unit[2];
    size_t   ulen;
    int64_t  v, ms;

    v = fa_parse_unit(s, unit, 2, &ulen);
    if (v < 0) {
        return -1;
    }
    if (ulen == 0) {
        ms = seconds ? fa_scale(v, 1000) : v;
    } else if (ulen == 2 && unit[0] == 'm' && unit[1] == 's') {
        ms = v;
    } else if (ulen == 1 && unit[0] == 's') {
        ms = fa_scale(v, 1000);
    } else if (ulen == 1 && unit[0] == 'm') {
        ms = fa_scale(v, 60 * 1000);
    } else if (ulen == 1 && unit[0] == 'h') {
        ms = fa_scale(v, 3600 * 1000);
    } else if (ulen == 1 && unit[0] == 'd') {
        ms = fa_scale(v, 86400 * 1000);
    } else {
        return -1;
    }
    return ms;
}

size_t
fa_vsnprintf(char *buf, size_t size, const char *fmt, va_list args)
{
    int  n;

    if (size == 0) {
        return 0;
    }
    n = vsnprintf(buf, size, fmt, args);
    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t) n < size ? (size_t) n : size - 1;
}

size_t
fa_snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list  args;
    size_t   n;

    va_start(args, fmt);
    n = fa_vsnprintf(buf, size, fmt, args);
    va_end(args);
    return n;
}

void
fa_strlow(u_char *dst, const u_char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        u_char c = src[i];
        dst[i] = (c >= 'A' && c <= 'Z') ? (u_char) (c | 0x20) : c;
    }
}

/* ---- base64 (RFC 4648) ---- */

static int
fa_base64_char(u_char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '+' || c == '/';
}

/*
 * EVP_DecodeBlock() is lenient where a protocol parser must not be: it skips
 * whitespace around the data and takes '=' anywhere in the last quantum.  So
 * the shape is checked here: whole quanta, the alphabet, at most two '=' and
 * only at the end.  Returns the number of '=', or -1.
 */
static int
fa_base64_shape(const fa_str_t *in)
{
    size_t  pad = 0, n = in->len;

    if (n % 4 != 0 || n > INT_MAX) {
        return -1;
    }
    while (pad < n && in->data[n - 1 - pad] == '=') {
        pad++;
    }
    if (pad > 2) {
        return -1;
    }
    for (size_t i = 0; i < n - pad; i++) {
        if (!fa_base64_char(in->data[i])) {
            return -1;
        }
    }
    return (int) pad;
}

/*
 * "Zh==" decodes to the same byte as "Zg==": the bits under the padding must
 * be zero (RFC 4648 3.5), or two encodings would name one value.  Encoding
 * the last bytes again must give back the last quantum.
 */
static int
fa_base64_canonical(const fa_str_t *in, const u_char *tail, int ntail)
{
    u_char  quantum[5];

    EVP_EncodeBlock(quantum, tail, ntail);
    return memcmp(quantum, in->data + in->len - 4, 4) == 0;
}

fa_int_t
fa_base64_decode(fa_pool_t *pool, const fa_str_t *in, fa_str_t *out)
{
    int      pad = fa_base64_shape(in), n = 0;
    size_t   size = in->len / 4 * 3;
    u_char  *p;

    if (pad < 0 || (p = fa_pnalloc(pool, size + 1)) == NULL) {
        return FA_ERROR;
    }
    if (size) {
        n = EVP_DecodeBlock(p, in->data, (int) in->len);
    }
    /* EVP_DecodeBlock counts the padding as decoded zero bytes */
    if (n != (int) size || (pad && !fa_base64_canonical(in, p + size - 3, 3 - pad))) {
        explicit_bzero(p, size);           /* it may be half a password */
        return FA_ERROR;
    }
    out->data = p;
    out->len = size - (size_t) pad;
    p[out->len] = '\0';
    return FA_OK;
}

fa_int_t
fa_base64_encode(fa_pool_t *pool, const fa_str_t *in, fa_str_t *out)
{
    size_t   size;
    u_char  *p;

    if (in->len > INT_MAX / 4 * 3) {       /* EVP_EncodeBlock counts in int */
        return FA_ERROR;
    }
    size = (in->len + 2) / 3 * 4;
    if ((p = fa_pnalloc(pool, size + 1)) == NULL) {
        return FA_ERROR;
    }
    p[0] = '\0';
    out->len = in->len ? (size_t) EVP_EncodeBlock(p, in->data, (int) in->len) : 0;
    out->data = p;
    return FA_OK;
}

const char *
fa_log_printable(const char *in, size_t len, char *out, size_t size)
{
    size_t  n = 0;

    for (size_t i = 0; i < len && n + 8 < size; i++) {
        u_char  ch = (u_char) in[i];
        if (ch < ' ' || ch == 0x7f) {
            n += fa_snprintf(out + n, size - n, "\\x%02x", ch);
        } else {
            out[n++] = (char) ch;
        }
    }
    if (n + 8 >= size && size > 8) {
        n += fa_snprintf(out + n, size - n, "...");       /* cut */
    }
    out[n] = '\0';
    return out;
}
