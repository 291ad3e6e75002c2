/*
 * What every storage backend and every caller of the contract shares:
 * mailbox name rules, UID set lookup, error texts.  Backends live in their
 * own modules (the LMDB backend, plugins/storage_maildir).
 */

#include "fa_core.h"
#include "fa_storage.h"

fa_module_t  fa_storage_module = {
    FA_MODULE_V1, "storage", FA_MODULE_OTHER, NULL,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, FA_MODULE_SPARE
};

/* length of the UTF-8 sequence at p (at most n bytes), 0 if it is not valid */
static size_t
fa_storage_utf8_len(const u_char *p, size_t n)
{
    size_t    len, i;
    uint32_t  cp;

    if (p[0] < 0x80) {
        return 1;
    } else if ((p[0] & 0xe0) == 0xc0) {
        len = 2; cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3; cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4; cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
        || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    {
        return 0;
    }
    return len;
}

/* one path component: not empty, not "." or "..", no control or wildcard bytes */
static fa_int_t
fa_storage_component_valid(const u_char *p, size_t n)
{
    if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
        return FA_STORAGE_INVALID;
    }
    for (size_t i = 0; i < n; ) {
        if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '*' || p[i] == '%') {
            return FA_STORAGE_INVALID;
        }
        size_t len = fa_storage_utf8_len(p + i, n - i);
        if (len == 0) {
            return FA_STORAGE_INVALID;
        }
        i += len;
    }
    return FA_OK;
}

/*
 * Names are stored as given (UTF-8, '/' between levels); which names a
 * protocol accepts from a client is decided here, once, for every backend:
 * a backend that maps names to files relies on "." and ".." being refused.
 */
fa_int_t
fa_storage_mailbox_name_valid(const fa_str_t *name)
{
    const u_char  *p = name->data, *end = name->data + name->len, *sep;
    fa_uint_t      depth = 0;

    if (name->len == 0 || name->len > FA_MAILBOX_NAME_MAX) {
        return FA_STORAGE_INVALID;
    }
    while (p <= end) {
        sep = memchr(p, FA_MAILBOX_SEPARATOR, (size_t) (end - p));
        sep = sep ? sep : end;
        if (++depth > FA_MAILBOX_DEPTH_MAX
            || fa_storage_component_valid(p, (size_t) (sep - p)) != FA_OK)
        {
            return FA_STORAGE_INVALID;
        }
        p = sep + 1;
    }
    return FA_OK;
}

int
fa_uid_set_contains(const fa_uid_set_t *set, uint32_t uid)
{
    fa_uint_t  lo = 0, hi = set->nranges;

    while (lo < hi) {                    /* ranges are sorted and disjoint */
        fa_uint_t mid = lo + (hi - lo) / 2;
        if (uid < set->ranges[mid].first) {
            hi = mid;
        } else if (uid > set->ranges[mid].last) {
            lo = mid + 1;
        } else {
            return 1;
        }
    }
    return 0;
}

const char *
fa_storage_strerror(fa_int_t rc)
{
    switch (rc) {
    case FA_OK:                return "ok";
    case FA_STORAGE_NOTFOUND:  return "no such mailbox or message";
    case FA_STORAGE_EXISTS:    return "mailbox already exists";
    case FA_STORAGE_OVERQUOTA: return "quota exceeded";
    case FA_STORAGE_NOSPACE:   return "out of disk space";
    case FA_STORAGE_TEMPFAIL:  return "temporary failure, try again";
    case FA_STORAGE_MODIFIED:  return "modified since the given MODSEQ";
    case FA_STORAGE_CORRUPT:   return "the store is damaged";
    case FA_STORAGE_INVALID:   return "invalid name or argument";
    default:                   return "internal error";
    }
}
