/*
 * Header text to UTF-8, for SEARCH: RFC 2047 encoded words, RFC 2231
 * percent-encoding, and charsets through iconv (glibc's, no extra library).
 *
 * Invalid input is kept as it is rather than dropped: a word that does not
 * decode, or whose charset iconv does not know, stays in its encoded form,
 * so a search can still match the raw text.  Bytes a known charset cannot
 * convert become U+FFFD.  Adjacent encoded words in one charset are
 * converted together, because mailers split multi-byte characters across
 * words; the white space between encoded words is dropped (RFC 2047 6.2).
 * Words glued to other text are decoded too, as Dovecot and most readers
 * do.
 */

#include "fa_mime_parser.h"
#include <iconv.h>

#define FA_MIME_CHARSET_MAX  64

typedef struct {
    fa_str_t        charset;
    const u_char   *start;       /* the run's words in the raw text */
    const u_char   *end;
    fa_mime_buf_t   bytes;       /* their decoded bytes */
    unsigned        active:1;
} fa_mime_run_t;

static const u_char  fa_mime_replacement[] = { 0xef, 0xbf, 0xbd };    /* U+FFFD */

static int
fa_mime_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

fa_int_t
fa_mime_decode_percent(fa_pool_t *pool, const u_char *p, size_t len, fa_str_t *out)
{
    u_char  *w;
    size_t   i;

    w = fa_pnalloc(pool, len + 1);
    if (w == NULL) {
        return FA_ERROR;
    }
    out->data = w;
    for (i = 0; i < len; i++) {
        if (p[i] == '%' && len - i > 2 && fa_mime_hex(p[i + 1]) >= 0
            && fa_mime_hex(p[i + 2]) >= 0)
        {
            *w++ = (u_char) (fa_mime_hex(p[i + 1]) << 4 | fa_mime_hex(p[i + 2]));
            i += 2;
        } else {
            *w++ = p[i];
        }
    }
    out->len = w - out->data;
    return FA_OK;
}

/* a name iconv may see: a language suffix ("utf-8*en") cut, odd bytes refused */
static int
fa_mime_charset_name(const fa_str_t *cs, char *name)
{
    size_t  i, n = 0;
    u_char  c;

    for (i = 0; i < cs->len && cs->data[i] != '*'; i++) {
        c = cs->data[i];
        if (n == FA_MIME_CHARSET_MAX - 1
            || !((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
                 || strchr("-_.:+", c) != NULL))
        {
            return 0;
        }
        name[n++] = (char) c;
    }
    name[n] = '\0';
    return n > 0;
}

/* convert it all; a byte that does not convert becomes U+FFFD */
static fa_int_t
fa_mime_iconv(iconv_t cd, fa_mime_buf_t *b, const u_char *data, size_t len)
{
    char    *in = (char *) data, *o;
    size_t   inleft = len, oleft, r, want = len * 3 + 16;
    int      err;

    for ( ;; ) {
        if (fa_mime_buf_reserve(b, want) != FA_OK) {
            return FA_ERROR;
        }
        o = (char *) b->data + b->len;
        oleft = b->size - b->len;
        r = inleft ? iconv(cd, &in, &inleft, &o, &oleft) : iconv(cd, NULL, NULL, &o, &oleft);
        b->len = (u_char *) o - b->data;
        err = r == (size_t) -1 ? errno : 0;
        if (err == 0 && inleft == 0) {
            return FA_OK;
        }
        if (err == E2BIG) {
            want = (b->size - b->len) * 2 + 16;      /* more than is free now */
            continue;
        }
        if (err != 0) {
            if (fa_mime_buf_add(b, fa_mime_replacement, sizeof(fa_mime_replacement))
                != FA_OK)
            {
                return FA_ERROR;
            }
            if (err == EINVAL || inleft <= 1) {
                inleft = 0;      /* cut short at the end */
            } else {
                in++;
                inleft--;
            }
        }
        want = inleft * 3 + 16;
    }
}

fa_int_t
fa_mime_decode_charset(fa_pool_t *pool, const fa_str_t *charset, const u_char *data,
    size_t len, fa_str_t *out)
{
    char           name[FA_MIME_CHARSET_MAX];
    iconv_t        cd;
    fa_mime_buf_t  b;
    fa_int_t       rc;

    if (!fa_mime_charset_name(charset, name)) {
        return FA_DECLINED;
    }
    if (fa_mime_buf_init(&b, pool, len * 2 + 16) != FA_OK) {
        return FA_ERROR;
    }
    if (strcasecmp(name, "utf-8") == 0 || strcasecmp(name, "utf8") == 0
        || strcasecmp(name, "us-ascii") == 0 || strcasecmp(name, "ascii") == 0)
    {
        rc = fa_mime_buf_add(&b, data, len);
    } else {
        /* RFC 2781: without a byte order mark, UTF-16 is big-endian (glibc
           would take the host's order) */
        if (strcasecmp(name, "utf-16") == 0
            && !(len >= 2 && ((data[0] == 0xfe && data[1] == 0xff)
                              || (data[0] == 0xff && data[1] == 0xfe))))
        {
            strcpy(name, "UTF-16BE");
        }
        cd = iconv_open("UTF-8", name);
        if (cd == (iconv_t) -1) {
            return FA_DECLINED;
        }
        rc = fa_mime_iconv(cd, &b, data, len);
        iconv_close(cd);
    }
    out->data = b.data;
    out->len = b.len;
    return rc;
}

static fa_int_t
fa_mime_base64(fa_mime_buf_t *b, const u_char *s, size_t n)
{
    static const char  alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char        *v;
    uint32_t           acc = 0;
    int                bits = 0;
    u_char             c;

    for (size_t i = 0; i < n && s[i] != '='; i++) {
        v = s[i] ? strchr(alphabet, s[i]) : NULL;
        if (v == NULL) {
            return FA_DECLINED;
        }
        acc = (acc << 6 | (uint32_t) (v - alphabet)) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            c = (u_char) (acc >> bits);
            if (fa_mime_buf_add(b, &c, 1) != FA_OK) {
                return FA_ERROR;
            }
        }
    }
    return FA_OK;
}

/* Q: "_" is a space, =XX a byte; a stray "=" stays as it is */
static fa_int_t
fa_mime_qp(fa_mime_buf_t *b, const u_char *s, size_t n)
{
    u_char  c;

    for (size_t i = 0; i < n; i++) {
        c = s[i];
        if (c == '_') {
            c = ' ';
        } else if (c == '=' && n - i > 2 && fa_mime_hex(s[i + 1]) >= 0
                   && fa_mime_hex(s[i + 2]) >= 0)
        {
            c = (u_char) (fa_mime_hex(s[i + 1]) << 4 | fa_mime_hex(s[i + 2]));
            i += 2;
        }
        if (fa_mime_buf_add(b, &c, 1) != FA_OK) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

/* "=?" charset "?" B/Q "?" text "?=" at p; returns its end, or NULL */
static const u_char *
fa_mime_word(const u_char *p, const u_char *end, fa_str_t *cs, u_char *enc, fa_str_t *text)
{
    const u_char  *s = p + 2, *q;

    for (q = s; q < end && *q != '?' && *q > ' ' && *q < 0x7f; q++) {
        if (q - s >= FA_MIME_CHARSET_MAX) {
            return NULL;
        }
    }
    if (q == s || end - q < 3 || *q != '?' || q[2] != '?') {
        return NULL;
    }
    cs->data = (u_char *) s;
    cs->len = q - s;
    *enc = q[1] | 0x20;
    if (*enc != 'b' && *enc != 'q') {
        return NULL;
    }
    for (s = q = q + 3; q < end && *q != '?' && *q > ' ' && *q < 0x7f; q++) {
        /* void */
    }
    if (end - q < 2 || q[0] != '?' || q[1] != '=') {
        return NULL;
    }
    text->data = (u_char *) s;
    text->len = q - s;
    return q + 2;
}

/* unfolded: line breaks dropped */
static fa_int_t
fa_mime_decode_text(fa_mime_buf_t *o, const u_char *p, const u_char *end)
{
    const u_char  *s;

    while (p < end) {
        for (s = p; p < end && *p != '\r' && *p != '\n'; p++) {
            /* void */
        }
        if (fa_mime_buf_add(o, s, p - s) != FA_OK) {
            return FA_ERROR;
        }
        p += p < end;
    }
    return FA_OK;
}

static int
fa_mime_decode_blank(const u_char *p, const u_char *end)
{
    for ( ; p < end; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            return 0;
        }
    }
    return 1;
}

static fa_int_t
fa_mime_decode_flush(fa_pool_t *pool, fa_mime_buf_t *o, fa_mime_run_t *run)
{
    fa_str_t  utf8;
    fa_int_t  rc;

    if (!run->active) {
        return FA_OK;
    }
    run->active = 0;
    rc = fa_mime_decode_charset(pool, &run->charset, run->bytes.data, run->bytes.len, &utf8);
    if (rc == FA_DECLINED) {
        return fa_mime_decode_text(o, run->start, run->end);
    }
    if (rc != FA_OK) {
        return FA_ERROR;
    }
    return fa_mime_buf_add(o, utf8.data, utf8.len);
}

/* one decoded word [q, next) after the plain text [text, q) */
static fa_int_t
fa_mime_decode_word(fa_pool_t *pool, fa_mime_buf_t *o, fa_mime_run_t *run,
    const fa_str_t *cs, const fa_mime_buf_t *word, const u_char *text,
    const u_char *q, const u_char *next)
{
    int  blank = fa_mime_decode_blank(text, q);

    if (run->active && blank && run->charset.len == cs->len
        && strncasecmp((char *) run->charset.data, (char *) cs->data, cs->len) == 0)
    {
        run->end = next;
        return fa_mime_buf_add(&run->bytes, word->data, word->len);
    }
    if (fa_mime_decode_flush(pool, o, run) != FA_OK
        || ((!blank || run->start == NULL) && fa_mime_decode_text(o, text, q) != FA_OK))
    {
        return FA_ERROR;
    }
    run->active = 1;
    run->charset = *cs;
    run->start = q;
    run->end = next;
    run->bytes.len = 0;
    return fa_mime_buf_add(&run->bytes, word->data, word->len);
}

fa_int_t
fa_mime_decode_header(fa_pool_t *pool, const u_char *raw, size_t len, fa_str_t *out)
{
    const u_char   *p = raw, *end = raw + len, *text = raw, *q, *next;
    fa_mime_buf_t   o, word;
    fa_mime_run_t   run;
    fa_str_t        cs, t;
    u_char          enc;
    fa_int_t        rc;

    memset(&run, 0, sizeof(fa_mime_run_t));
    if (fa_mime_buf_init(&o, pool, len + 16) != FA_OK
        || fa_mime_buf_init(&word, pool, 64) != FA_OK
        || fa_mime_buf_init(&run.bytes, pool, 64) != FA_OK)
    {
        return FA_ERROR;
    }
    while (p < end && (q = memchr(p, '=', end - p)) != NULL) {
        p = q + 1;
        if (end - q < 2 || q[1] != '?'
            || (next = fa_mime_word(q, end, &cs, &enc, &t)) == NULL)
        {
            continue;
        }
        word.len = 0;
        rc = enc == 'b' ? fa_mime_base64(&word, t.data, t.len)
                        : fa_mime_qp(&word, t.data, t.len);
        if (rc == FA_DECLINED) {
            continue;
        }
        if (rc != FA_OK
            || fa_mime_decode_word(pool, &o, &run, &cs, &word, text, q, next) != FA_OK)
        {
            return FA_ERROR;
        }
        text = p = next;
    }
    if (fa_mime_decode_flush(pool, &o, &run) != FA_OK
        || fa_mime_decode_text(&o, text, end) != FA_OK)
    {
        return FA_ERROR;
    }
    out->data = o.data;
    out->len = o.len;
    return FA_OK;
}
