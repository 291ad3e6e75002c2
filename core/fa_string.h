/*
 * Counted strings and the small parsing helpers the config and the protocols
 * share.  fa_str_t never owns its bytes and need not be NUL-terminated unless
 * it was made by a function that says so.
 */

#ifndef FA_STRING_H
#define FA_STRING_H

typedef struct {
    size_t   len;
    u_char  *data;
} fa_str_t;

#define fa_string(s)      { sizeof(s) - 1, (u_char *) (s) }
#define fa_null_string    { 0, NULL }
#define fa_str_set(str, text)                                                 \
    do { (str)->len = sizeof(text) - 1; (str)->data = (u_char *) (text); } while (0)

#define fa_str_eq(s, lit)                                                     \
    ((s)->len == sizeof(lit) - 1 && memcmp((s)->data, lit, sizeof(lit) - 1) == 0)
#define fa_str_eqi(s, lit)                                                    \
    ((s)->len == sizeof(lit) - 1 && strncasecmp((char *) (s)->data, lit, sizeof(lit) - 1) == 0)

int fa_str_equal(const fa_str_t *a, const fa_str_t *b);
int fa_str_casecmp(const fa_str_t *a, const char *s);
/* IN as text for a log line: control bytes as \xNN (no forged lines), "..." when cut */
const char *fa_log_printable(const char *in, size_t len, char *out, size_t size);
u_char *fa_pstrdup(fa_pool_t *pool, const fa_str_t *src);    /* NUL-terminated copy */
char *fa_pstrcat(fa_pool_t *pool, const char *a, const char *b);

/*
 * Number parsing: all return -1 on anything malformed or on overflow, never
 * undefined behaviour on hostile input.
 */
int64_t fa_atoi(const u_char *p, size_t n);              /* decimal, >= 0 */
int64_t fa_parse_size(const fa_str_t *s);                /* 10, 10k, 10m, 10g */
fa_msec_t fa_parse_time(const fa_str_t *s, int seconds); /* 500ms, 30s, 5m, 1h, 1d */

/* printf into a fixed buffer; always NUL-terminates; returns bytes written */
size_t fa_snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t fa_vsnprintf(char *buf, size_t size, const char *fmt, va_list args);

void fa_strlow(u_char *dst, const u_char *src, size_t n);

/*
 * Base64 (RFC 4648, standard alphabet), for SASL and MIME headers.  Decoding
 * is strict, as a protocol parser should be: whole 4-byte quanta, '=' padding
 * only at the end, zero bits under the padding, no whitespace, no URL-safe
 * alphabet; anything else is FA_ERROR.  The empty string decodes to the empty
 * string; a lone "=" (SASL's "empty response") is an error here: callers that
 * speak SASL handle it before decoding.  Output is in the pool and
 * NUL-terminated (the NUL is not counted); the decoded data may hold NULs.
 */
fa_int_t fa_base64_decode(fa_pool_t *pool, const fa_str_t *in, fa_str_t *out);
fa_int_t fa_base64_encode(fa_pool_t *pool, const fa_str_t *in, fa_str_t *out);

#endif /* FA_STRING_H */
