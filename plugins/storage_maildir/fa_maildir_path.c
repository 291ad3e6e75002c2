/*
 * Where things are: a user's Maildir, and the folder of a mailbox.
 *
 * Mailbox names are UTF-8 with "/" between levels (fa_storage.h); on disk a
 * Maildir++ folder is ".LEVEL.LEVEL" in the user's Maildir, each level in
 * IMAP modified UTF-7 (RFC 3501 5.1.3, Dovecot's default on disk).  "." is
 * the on-disk separator, so a "." inside a level is escaped first, the way
 * Dovecot's listescape plugin does: "\2e", with "\" itself as "\5c" and a
 * leading "~" as "\7e".
 */

#include "fa_maildir.h"

#define FA_MAILDIR_FOLDER_MAX  255      /* one directory entry */

static const char  fa_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

char *
fa_maildir_join(fa_pool_t *pool, const char *a, const char *b)
{
    size_t  la = strlen(a), lb = strlen(b);
    char   *p = fa_pnalloc(pool, la + lb + 2);

    if (p) {
        memcpy(p, a, la);
        p[la] = '/';
        memcpy(p + la + 1, b, lb + 1);
    }
    return p;
}

/* one user-name part as a directory name: no "/", no control bytes, not "." or ".." */
static int
fa_maildir_user_part_ok(const u_char *p, size_t n)
{
    if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '/') {
            return 0;
        }
    }
    return 1;
}

/* PATH/DOMAIN/LOCAL/Maildir, made (with cur, new, tmp) on first use */
fa_int_t
fa_maildir_user_root(fa_maildir_t *md, const fa_str_t *user, fa_pool_t *pool, char **root)
{
    const u_char  *at = NULL;
    size_t         size, llen;
    const char    *domain = "_nodomain";
    size_t         dlen = sizeof("_nodomain") - 1;
    struct stat    sb;
    char          *p;

    for (size_t i = user->len; i > 0; i--) {
        if (user->data[i - 1] == '@') {
            at = user->data + i - 1;
            break;
        }
    }
    llen = at ? (size_t) (at - user->data) : user->len;
    if (at) {
        domain = (const char *) at + 1;
        dlen = user->len - llen - 1;
        if (!fa_maildir_user_part_ok(at + 1, dlen)
            || (dlen == 9 && memcmp(domain, "_nodomain", 9) == 0))
        {
            return FA_STORAGE_INVALID;
        }
    }
    if (!fa_maildir_user_part_ok(user->data, llen)) {
        return FA_STORAGE_INVALID;
    }
    size = md->conf->path.len + dlen + llen + sizeof("///Maildir");
    p = fa_pnalloc(pool, size);
    if (p == NULL) {
        return FA_ERROR;
    }
    fa_snprintf(p, size, "%.*s/%.*s/%.*s/Maildir", (int) md->conf->path.len,
                md->conf->path.data, (int) dlen, domain, (int) llen, user->data);
    *root = p;

    /* cur/ is made last, so its presence means the namespace is complete */
    if (stat(fa_maildir_join(pool, p, "cur"), &sb) == 0) {
        return FA_OK;
    }
    return fa_maildir_mkdirs(md, p, 1);
}

/* ---- modified UTF-7 ---------------------------------------------------- */

static size_t
fa_maildir_utf8_next(const u_char *p, size_t n, uint32_t *cp)
{
    size_t  len;

    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    len = (p[0] & 0xe0) == 0xc0 ? 2 : (p[0] & 0xf0) == 0xe0 ? 3 : (p[0] & 0xf8) == 0xf0 ? 4 : 0;
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
    return len;
}

typedef struct {
    u_char     *out;
    size_t      n;
    size_t      size;
    uint32_t    bits;
    int         nbits;
    int         open;        /* inside "&...-" */
} fa_maildir_enc_t;

static void
fa_maildir_put(fa_maildir_enc_t *e, u_char c)
{
    if (e->n < e->size) {
        e->out[e->n] = c;
    }
    e->n++;
}

static void
fa_maildir_b64_unit(fa_maildir_enc_t *e, uint32_t unit)
{
    if (!e->open) {
        fa_maildir_put(e, '&');
        e->open = 1;
    }
    e->bits = (e->bits << 16) | unit;
    e->nbits += 16;
    while (e->nbits >= 6) {
        e->nbits -= 6;
        fa_maildir_put(e, fa_b64[(e->bits >> e->nbits) & 0x3f]);
    }
}

static void
fa_maildir_b64_close(fa_maildir_enc_t *e)
{
    if (e->open) {
        if (e->nbits > 0) {
            fa_maildir_put(e, fa_b64[(e->bits << (6 - e->nbits)) & 0x3f]);
        }
        fa_maildir_put(e, '-');
        e->open = 0;
        e->nbits = 0;
        e->bits = 0;
    }
}

/* one level: escape, then modified UTF-7; 0 if it is not UTF-8 */
static int
fa_maildir_level_encode(fa_maildir_enc_t *e, const u_char *p, size_t n)
{
    uint32_t  cp;
    size_t    len;

    for (size_t i = 0; i < n; i += len) {
        len = fa_maildir_utf8_next(p + i, n - i, &cp);
        if (len == 0) {
            return 0;
        }
        if (cp == '.' || cp == '\\' || (cp == '~' && i == 0)) {
            char hex[4];
            fa_snprintf(hex, sizeof(hex), "\\%02x", (unsigned) cp);
            fa_maildir_b64_close(e);
            for (int k = 0; hex[k]; k++) {
                fa_maildir_put(e, (u_char) hex[k]);
            }
        } else if (cp >= 0x20 && cp <= 0x7e) {
            fa_maildir_b64_close(e);
            fa_maildir_put(e, (u_char) cp);
            if (cp == '&') {
                fa_maildir_put(e, '-');
            }
        } else if (cp >= 0x10000) {
            cp -= 0x10000;
            fa_maildir_b64_unit(e, 0xd800 | (cp >> 10));
            fa_maildir_b64_unit(e, 0xdc00 | (cp & 0x3ff));
        } else {
            fa_maildir_b64_unit(e, cp);
        }
    }
    fa_maildir_b64_close(e);
    return 1;
}

/* "Work/2024.q1" -> ".Work.2024\2eq1"; NULL when it cannot be a folder name */
char *
fa_maildir_folder_encode(fa_pool_t *pool, const fa_str_t *name)
{
    fa_maildir_enc_t  e = { NULL, 0, 0, 0, 0, 0 };
    const u_char     *p = name->data, *end = name->data + name->len, *sep;

    e.size = FA_MAILDIR_FOLDER_MAX;
    e.out = fa_pnalloc(pool, e.size + 1);
    if (e.out == NULL) {
        return NULL;
    }
    while (p < end) {
        sep = memchr(p, FA_MAILBOX_SEPARATOR, (size_t) (end - p));
        sep = sep ? sep : end;
        fa_maildir_put(&e, '.');
        if (!fa_maildir_level_encode(&e, p, (size_t) (sep - p))) {
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

static int
fa_maildir_b64_value(u_char c)
{
    const char  *p = c ? strchr(fa_b64, c) : NULL;

    return p ? (int) (p - fa_b64) : -1;
}

static size_t
fa_maildir_utf8_put(u_char *out, uint32_t cp)
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

/* "&AOk-t\2e" -> "été." into out (room for 4 bytes per input byte) */
static size_t
fa_maildir_level_decode(const u_char *p, size_t n, u_char *out)
{
    size_t    o = 0, i = 0;
    uint32_t  bits, high;
    int       nbits, v;

    while (i < n) {
        if (p[i] == '\\' && i + 2 < n && isxdigit(p[i + 1]) && isxdigit(p[i + 2])) {
            char hex[3] = { (char) p[i + 1], (char) p[i + 2], '\0' };
            out[o++] = (u_char) strtoul(hex, NULL, 16);
            i += 3;
        } else if (p[i] != '&') {
            out[o++] = p[i++];
        } else if (i + 1 < n && p[i + 1] == '-') {
            out[o++] = '&';
            i += 2;
        } else {
            bits = 0, nbits = 0, high = 0;
            for (i++; i < n && p[i] != '-'; i++) {
                if ((v = fa_maildir_b64_value(p[i])) < 0) {
                    return 0;
                }
                bits = (bits << 6) | (uint32_t) v;
                if ((nbits += 6) < 16) {
                    continue;
                }
                nbits -= 16;
                uint32_t unit = (bits >> nbits) & 0xffff;
                if (unit >= 0xd800 && unit < 0xdc00) {
                    high = unit;
                    continue;
                }
                if (unit >= 0xdc00 && unit < 0xe000) {
                    if (high == 0) {
                        return 0;
                    }
                    unit = 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00);
                    high = 0;
                }
                o += fa_maildir_utf8_put(out + o, unit);
            }
            if (i == n || high) {
                return 0;
            }
            i++;                           /* the '-' */
        }
    }
    return o;
}

/* ".Work.2024\2eq1" -> "Work/2024.q1"; FA_DECLINED if it is not one of ours */
fa_int_t
fa_maildir_folder_decode(fa_pool_t *pool, const char *folder, fa_str_t *name)
{
    size_t       n = strlen(folder), o = 0, len;
    const char  *p, *end = folder + n, *sep;
    u_char      *out;

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
        len = fa_maildir_level_decode((const u_char *) p, (size_t) (sep - p), out + o);
        if (len == 0) {
            return FA_DECLINED;
        }
        o += len;
    }
    name->data = out;
    name->len = o;
    out[o] = '\0';
    return fa_storage_mailbox_name_valid(name) == FA_OK ? FA_OK : FA_DECLINED;
}

static int
fa_maildir_is_inbox(const u_char *p, size_t n)
{
    return n == 5 && strncasecmp((const char *) p, "INBOX", 5) == 0;
}

/*
 * The folder of a mailbox.  "INBOX" (any case) is the Maildir itself; its
 * children are ".INBOX.child", as Dovecot lays them out.
 */
fa_int_t
fa_maildir_locate(fa_maildir_t *md, const fa_str_t *user, const fa_str_t *name,
    fa_pool_t *pool, fa_maildir_loc_t *loc)
{
    fa_str_t   norm = *name;
    fa_int_t   rc;
    char      *folder;

    if (fa_storage_mailbox_name_valid(name) != FA_OK) {
        return FA_STORAGE_INVALID;
    }
    rc = fa_maildir_user_root(md, user, pool, &loc->root);
    if (rc != FA_OK) {
        return rc;
    }
    loc->inbox = fa_maildir_is_inbox(name->data, name->len);
    if (loc->inbox) {
        loc->dir = loc->root;
        return FA_OK;
    }
    if (name->len > 5 && name->data[5] == FA_MAILBOX_SEPARATOR
        && fa_maildir_is_inbox(name->data, 5))
    {
        norm.data = fa_pnalloc(pool, name->len);
        if (norm.data == NULL) {
            return FA_ERROR;
        }
        memcpy(norm.data, "INBOX", 5);
        memcpy(norm.data + 5, name->data + 5, name->len - 5);
    }
    folder = fa_maildir_folder_encode(pool, &norm);
    if (folder == NULL) {
        return FA_STORAGE_INVALID;
    }
    loc->dir = fa_maildir_join(pool, loc->root, folder);
    return loc->dir ? FA_OK : FA_ERROR;
}
