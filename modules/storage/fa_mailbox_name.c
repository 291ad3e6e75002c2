/*
 * Mailbox names outside the store: modified UTF-7 (RFC 3501 5.1.3), which
 * IMAP4rev1 clients speak and Dovecot writes on disk, and the Maildir++
 * folder name of a mailbox, which the Maildir plugin and facteurctl's
 * Maildir import and export share.
 *
 * Names inside Facteur are UTF-8 with "/" between levels (fa_storage.h).
 * A Maildir++ folder is ".LEVEL.LEVEL", each level in modified UTF-7;
 * "." is the separator on disk, so a "." inside a level is escaped first,
 * the way Dovecot's listescape plugin does: "\2e", with "\" itself as
 * "\5c" and a leading "~" as "\7e".
 */

#include "fa_core.h"
#include "fa_storage.h"
#include <ctype.h>

#define FA_MAILDIR_FOLDER_MAX  255      /* one directory entry */

static const char  fa_mutf7_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

typedef struct {
    u_char     *out;
    size_t      n;
    size_t      size;                   /* bytes are counted past it, not written */
    uint32_t    bits;
    int         nbits;
    int         open;                   /* inside "&...-" */
} fa_mutf7_enc_t;

/* the code point at p, and its length; 0 when it is not UTF-8 */
static size_t
fa_utf8_next(const u_char *p, size_t n, uint32_t *cp)
{
    size_t  len;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    len = (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3
        : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || len > n) {
        return 0;
    }
    *cp = p[0] & (0xff >> (len + 1));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        *cp = (*cp << 6) | (p[i] & 0x3f);
    }
    if (*cp > 0x10ffff || (*cp >= 0xd800 && *cp < 0xe000)) {
        return 0;
    }
    return len;
}

static size_t
fa_utf8_put(u_char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (u_char) cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = 0xc0 | (cp >> 6);
        out[1] = 0x80 | (cp & 0x3f);
        return 2;
    } else if (cp < 0x10000) {
        out[0] = 0xe0 | (cp >> 12);
        out[1] = 0x80 | ((cp >> 6) & 0x3f);
        out[2] = 0x80 | (cp & 0x3f);
        return 3;
    }
    out[0] = 0xf0 | (cp >> 18);
    out[1] = 0x80 | ((cp >> 12) & 0x3f);
    out[2] = 0x80 | ((cp >> 6) & 0x3f);
    out[3] = 0x80 | (cp & 0x3f);
    return 4;
}

static void
fa_mutf7_put(fa_mutf7_enc_t *e, u_char c)
{
    if (e->n < e->size) {
        e->out[e->n] = c;
    }
    e->n++;
}

static void
fa_mutf7_unit(fa_mutf7_enc_t *e, uint32_t unit)
{
    if (!e->open) {
        fa_mutf7_put(e, '&');
        e->open = 1;
    }
    e->bits = (e->bits << 16) | unit;
    e->nbits += 16;
    while (e->nbits >= 6) {
        e->nbits -= 6;
        fa_mutf7_put(e, fa_mutf7_b64[(e->bits >> e->nbits) & 0x3f]);
    }
}

static void
fa_mutf7_close(fa_mutf7_enc_t *e)
{
    if (e->open) {
        if (e->nbits > 0) {
            fa_mutf7_put(e, fa_mutf7_b64[(e->bits << (6 - e->nbits)) & 0x3f]);
        }
        fa_mutf7_put(e, '-');
        e->open = 0;
        e->nbits = 0;
        e->bits = 0;
    }
}

/*
 * UTF-8 to modified UTF-7; with listescape, "." and "\" (and "~" at the
 * start) become "\xx" first.  0 when the input is not UTF-8.
 */
static int
fa_mutf7_encode_level(fa_mutf7_enc_t *e, const u_char *p, size_t n, int listescape)
{
    uint32_t  cp;
    size_t    len;

    for (size_t i = 0; i < n; i += len) {
        len = fa_utf8_next(p + i, n - i, &cp);
        if (len == 0) {
            return 0;
        }
        if (listescape && (cp == '.' || cp == '\\' || (cp == '~' && i == 0))) {
            static const char hex[] = "0123456789abcdef";
            fa_mutf7_close(e);
            fa_mutf7_put(e, '\\');
            fa_mutf7_put(e, (u_char) hex[cp >> 4]);
            fa_mutf7_put(e, (u_char) hex[cp & 15]);
        } else if (cp >= 0x20 && cp <= 0x7e) {
            fa_mutf7_close(e);
            fa_mutf7_put(e, (u_char) cp);
            if (cp == '&') {
                fa_mutf7_put(e, '-');
            }
        } else if (cp >= 0x10000) {
            cp -= 0x10000;
            fa_mutf7_unit(e, 0xd800 | (cp >> 10));
            fa_mutf7_unit(e, 0xdc00 | (cp & 0x3ff));
        } else {
            fa_mutf7_unit(e, cp);
        }
    }
    fa_mutf7_close(e);
    return 1;
}

static int
fa_mutf7_b64_value(u_char c)
{
    const char  *p = c ? strchr(fa_mutf7_b64, c) : NULL;

    return p ? (int) (p - fa_mutf7_b64) : -1;
}

/* one "&...-" run starting after the '&': its UTF-8 into out; 0 when malformed */
static size_t
fa_mutf7_decode_run(const u_char *p, size_t n, size_t *used, u_char *out)
{
    size_t    o = 0, i;
    uint32_t  bits = 0, high = 0, unit;
    int       nbits = 0, v;

    for (i = 0; i < n && p[i] != '-'; i++) {
        if ((v = fa_mutf7_b64_value(p[i])) < 0) {
            return 0;
        }
        bits = (bits << 6) | (uint32_t) v;
        if ((nbits += 6) < 16) {
            continue;
        }
        nbits -= 16;
        unit = (bits >> nbits) & 0xffff;
        if (unit >= 0xd800 && unit < 0xdc00) {
            if (high) {
                return 0;
            }
            high = unit;
            continue;
        }
        if (unit >= 0xdc00 && unit < 0xe000) {
            if (high == 0) {
                return 0;
            }
            unit = 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00);
            high = 0;
        } else if (high) {
            return 0;
        }
        o += fa_utf8_put(out + o, unit);
    }
    if (i == n || high || o == 0) {
        return 0;                        /* unterminated, half a pair, or "&-"-less empty */
    }
    *used = i + 1;
    return o;
}

/* modified UTF-7 to UTF-8, into out (room for 4 bytes per input byte) */
static ssize_t
fa_mutf7_decode_level(const u_char *p, size_t n, int listescape, u_char *out)
{
    size_t  o = 0, i = 0, used, len;

    while (i < n) {
        if (listescape && p[i] == '\\' && i + 2 < n && isxdigit(p[i + 1])
            && isxdigit(p[i + 2]))
        {
            char hex[3] = { (char) p[i + 1], (char) p[i + 2], '\0' };
            out[o++] = (u_char) strtoul(hex, NULL, 16);
            i += 3;
        } else if (p[i] != '&') {
            if (p[i] < 0x20 || p[i] == 0x7f || (p[i] > 0x7f && !listescape)) {
                return -1;               /* not modified UTF-7 (Maildir folders
                                            written as UTF-8 are let through) */
            }
            out[o++] = p[i++];
        } else if (i + 1 < n && p[i + 1] == '-') {
            out[o++] = '&';
            i += 2;
        } else {
            len = fa_mutf7_decode_run(p + i + 1, n - i - 1, &used, out + o);
            if (len == 0) {
                return -1;
            }
            o += len;
            i += 1 + used;
        }
    }
    return (ssize_t) o;
}

fa_int_t
fa_mutf7_encode(fa_pool_t *pool, const fa_str_t *utf8, fa_str_t *out)
{
    fa_mutf7_enc_t  e = { NULL, 0, 0, 0, 0, 0 };

    if (!fa_mutf7_encode_level(&e, utf8->data, utf8->len, 0)) {   /* measure */
        return FA_STORAGE_INVALID;
    }
    e.size = e.n;
    e.n = 0;
    e.out = fa_pnalloc(pool, e.size + 1);
    if (e.out == NULL) {
        return FA_ERROR;
    }
    fa_mutf7_encode_level(&e, utf8->data, utf8->len, 0);
    e.out[e.n] = '\0';
    out->data = e.out;
    out->len = e.n;
    return FA_OK;
}

fa_int_t
fa_mutf7_decode(fa_pool_t *pool, const fa_str_t *in, fa_str_t *out)
{
    u_char   *buf = fa_pnalloc(pool, 4 * in->len + 1);
    ssize_t   n;

    if (buf == NULL) {
        return FA_ERROR;
    }
    n = fa_mutf7_decode_level(in->data, in->len, 0, buf);
    if (n < 0) {
        return FA_STORAGE_INVALID;
    }
    buf[n] = '\0';
    out->data = buf;
    out->len = (size_t) n;
    return FA_OK;
}

char *
fa_mailbox_to_maildir(fa_pool_t *pool, const fa_str_t *name)
{
    fa_mutf7_enc_t   e = { NULL, 0, 0, 0, 0, 0 };
    const u_char    *p = name->data, *end = name->data + name->len, *sep;

    e.size = FA_MAILDIR_FOLDER_MAX;
    e.out = fa_pnalloc(pool, e.size + 1);
    if (e.out == NULL) {
        return NULL;
    }
    while (p < end) {
        sep = memchr(p, FA_MAILBOX_SEPARATOR, (size_t) (end - p));
        sep = sep ? sep : end;
        fa_mutf7_put(&e, '.');
        if (!fa_mutf7_encode_level(&e, p, (size_t) (sep - p), 1)) {
            return NULL;
        }
        p = sep + 1;
    }
    if (e.n == 0 || e.n > e.size) {
        return NULL;
    }
    e.out[e.n] = '\0';
    return (char *) e.out;
}

fa_int_t
fa_mailbox_from_maildir(fa_pool_t *pool, const char *folder, fa_str_t *name)
{
    size_t       n = strlen(folder), o = 0;
    const char  *p, *end = folder + n, *sep;
    u_char      *out;
    ssize_t      len;

    if (n < 2 || folder[0] != '.') {
        return FA_DECLINED;
    }
    out = fa_pnalloc(pool, 4 * n + 1);
    if (out == NULL) {
        return FA_ERROR;
    }
    for (p = folder + 1; p <= end; p = sep + 1) {
        sep = memchr(p, '.', (size_t) (end - p));
        sep = sep ? sep : end;
        if (sep == p) {
            return FA_DECLINED;
        }
        if (o) {
            out[o++] = FA_MAILBOX_SEPARATOR;
        }
        len = fa_mutf7_decode_level((const u_char *) p, (size_t) (sep - p), 1, out + o);
        if (len <= 0) {
            return FA_DECLINED;
        }
        o += (size_t) len;
    }
    name->data = out;
    name->len = o;
    out[o] = '\0';
    return fa_storage_mailbox_name_valid(name) == FA_OK ? FA_OK : FA_DECLINED;
}
