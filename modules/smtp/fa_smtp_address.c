/*
 * Paths and parameters of MAIL and RCPT (RFC 5321 4.1.2, 4.5.3.1; DSN
 * RFC 3461; SMTPUTF8 RFC 6531).
 *
 *   Path = "<" [ A-d-l ":" ] Mailbox ">"      (the source route is dropped)
 *   Mailbox = Local-part "@" ( Domain / address-literal )
 *   Local-part = Dot-string / Quoted-string   (at most 64 octets)
 *
 * Everything is bounded before it is copied: a path is at most 256 octets,
 * a domain 255 with labels of 63.  A domain's trailing dot (the DNS root:
 * "user@example.org.") is dropped, from the domain and the address alike.
 * Without SMTPUTF8 an 8-bit byte in a path is refused (553 5.6.7); with
 * it, UTF-8 is allowed in the local part and the domain (it is not
 * validated as IDNA: the store does not care and a later relay would).
 * MAIL parses its path as UTF-8 and checks after its parameters.
 */

#include "fa_smtp_int.h"
#include <ctype.h>

#define FA_SMTP_PATH_MAX    256
#define FA_SMTP_LOCAL_MAX   64
#define FA_SMTP_DOMAIN_MAX  255

static int
fa_smtp_atext(u_char ch, int utf8)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
           || strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL || (utf8 && ch >= 0x80);
}

static int
fa_smtp_label_char(u_char ch, int utf8)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
           || ch == '-' || (utf8 && ch >= 0x80);
}

int
fa_smtp_domain_valid(const fa_str_t *d, int utf8)
{
    size_t  label = 0;

    if (d->len == 0 || d->len > FA_SMTP_DOMAIN_MAX) {
        return 0;
    }
    if (d->data[0] == '[') {                 /* [192.0.2.1] or [IPv6:...] */
        char buf[64];
        u_char addr[16];
        if (d->len < 3 || d->data[d->len - 1] != ']' || d->len - 2 >= sizeof(buf)) {
            return 0;
        }
        memcpy(buf, d->data + 1, d->len - 2);
        buf[d->len - 2] = '\0';
        if (strncasecmp(buf, "IPv6:", 5) == 0) {
            return inet_pton(AF_INET6, buf + 5, addr) == 1;
        }
        return inet_pton(AF_INET, buf, addr) == 1;
    }
    for (size_t i = 0; i < d->len; i++) {
        if (d->data[i] == '.') {
            if (label == 0 || d->data[i - 1] == '-') {
                return 0;
            }
            label = 0;
        } else if (!fa_smtp_label_char(d->data[i], utf8)
                   || (label == 0 && d->data[i] == '-') || ++label > 63)
        {
            return 0;
        }
    }
    return label > 0 && d->data[d->len - 1] != '-';
}

/* the local part at p: its unquoted form into out; the length consumed, 0 if bad */
static size_t
fa_smtp_local_part(const u_char *p, size_t n, int utf8, u_char *out, size_t *olen)
{
    size_t  i = 0, o = 0;

    if (n && p[0] == '"') {
        for (i = 1; i < n && p[i] != '"'; i++) {
            if (p[i] == '\\' && i + 1 < n) {
                i++;
            }
            if (p[i] < 0x20 || p[i] == 0x7f || (p[i] >= 0x80 && !utf8)) {
                return 0;
            }
            out[o++] = p[i];
        }
        if (i == n || o == 0) {
            return 0;
        }
        *olen = o;
        return i + 1;
    }
    for (i = 0; i < n && (fa_smtp_atext(p[i], utf8) || p[i] == '.'); i++) {
        if (p[i] == '.' && (i == 0 || p[i - 1] == '.')) {
            return 0;
        }
        out[o++] = p[i];
    }
    if (o == 0 || out[o - 1] == '.') {
        return 0;
    }
    *olen = o;
    return i;
}

int
fa_smtp_has_8bit(const u_char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x80) {
            return 1;
        }
    }
    return 0;
}

/*
 * Parse "<path> params" (arg starts after "FROM:" or "TO:", spaces allowed
 * before "<").  FA_OK with addr (address, local, domain in the pool) and
 * rest (the parameters), or FA_DECLINED with *why: "syntax", "8bit" (8-bit
 * without SMTPUTF8), "null" (<> where it is not allowed), "domain".
 */
fa_int_t
fa_smtp_parse_path(fa_pool_t *pool, const fa_str_t *arg, int allow_null, int utf8,
    fa_smtp_addr_t *addr, fa_str_t *rest, const char **why)
{
    const u_char  *p = arg->data, *end = arg->data + arg->len, *close, *at;
    u_char         local[FA_SMTP_PATH_MAX];
    size_t         llen = 0, used;

    *why = "syntax";
    while (p < end && *p == ' ') {
        p++;
    }
    if (p == end || *p != '<') {
        return FA_DECLINED;
    }
    close = NULL;
    /* a quoted local part may hold '>': find the end after the quotes */
    for (size_t i = 1, n = (size_t) (end - p), quoted = 0; i < n; i++) {
        if (quoted && p[i] == '\\') {
            i++;
        } else if (p[i] == '"') {
            quoted = !quoted;
        } else if (!quoted && p[i] == '>') {
            close = p + i;
            break;
        }
    }
    if (close == NULL) {
        return FA_DECLINED;
    }
    if ((size_t) (close - p) > FA_SMTP_PATH_MAX || (close + 1 < end && close[1] != ' ')) {
        return FA_DECLINED;
    }
    rest->data = (u_char *) close + 1;
    rest->len = (size_t) (end - close - 1);
    p++;
    if (!utf8 && fa_smtp_has_8bit(p, (size_t) (close - p))) {
        *why = "8bit";
        return FA_DECLINED;
    }
    if (p == close) {
        *why = "null";
        memset(addr, 0, sizeof(*addr));
        return allow_null ? FA_OK : FA_DECLINED;
    }
    if (*p == '@') {                         /* @relay1,@relay2: dropped */
        const u_char *colon = memchr(p, ':', (size_t) (close - p));
        if (colon == NULL) {
            return FA_DECLINED;
        }
        p = colon + 1;
    }
    used = fa_smtp_local_part(p, (size_t) (close - p), utf8, local, &llen);
    if (used == 0 || llen > FA_SMTP_LOCAL_MAX) {
        return FA_DECLINED;
    }
    at = p + used;
    if (at == close) {                       /* "<postmaster>": no domain */
        addr->domain.len = 0;
        addr->domain.data = (u_char *) "";
    } else {
        fa_str_t d;
        if (*at != '@') {
            return FA_DECLINED;
        }
        d.data = (u_char *) at + 1;
        d.len = (size_t) (close - at - 1);
        if (d.len > 1 && d.data[d.len - 1] == '.' && d.data[0] != '[') {
            /* "remote.test." is remote.test, the root's dot as in the DNS:
               it must meet the relay rule and find the local domains */
            d.len--;
            close--;
        }
        if (!fa_smtp_domain_valid(&d, utf8)) {
            *why = "domain";
            return FA_DECLINED;
        }
        addr->domain.len = d.len;
        addr->domain.data = fa_pnalloc(pool, d.len + 1);
        if (addr->domain.data == NULL) {
            return FA_ERROR;
        }
        fa_strlow(addr->domain.data, d.data, d.len);
        addr->domain.data[d.len] = '\0';
    }
    addr->local.len = llen;
    addr->local.data = fa_pnalloc(pool, llen + 1);
    addr->address.len = (size_t) (close - p);
    addr->address.data = fa_pnalloc(pool, addr->address.len + 1);
    if (addr->local.data == NULL || addr->address.data == NULL) {
        return FA_ERROR;
    }
    memcpy(addr->local.data, local, llen);
    addr->local.data[llen] = '\0';
    memcpy(addr->address.data, p, addr->address.len);
    addr->address.data[addr->address.len] = '\0';
    return FA_OK;
}

/*
 * " KEY=VALUE KEY2" -> params (names upper-cased, values copied into the
 * pool); FA_DECLINED when malformed
 */
fa_int_t
fa_smtp_parse_params(fa_pool_t *pool, const fa_str_t *rest, fa_smtp_param_t *params,
    fa_uint_t max, fa_uint_t *n)
{
    const u_char  *p = rest->data, *end = rest->data + rest->len, *w, *eq;

    *n = 0;
    while (p < end) {
        while (p < end && *p == ' ') {
            p++;
        }
        if (p == end) {
            break;
        }
        for (w = p; w < end && *w != ' '; w++) { /* the word */ }
        if (*n == max) {
            return FA_DECLINED;
        }
        eq = memchr(p, '=', (size_t) (w - p));
        fa_smtp_param_t *pr = &params[(*n)++];
        pr->name.len = (size_t) ((eq ? eq : w) - p);
        pr->name.data = fa_pnalloc(pool, pr->name.len + 1);
        if (pr->name.data == NULL) {
            return FA_ERROR;
        }
        for (size_t i = 0; i < pr->name.len; i++) {
            u_char ch = p[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
                  || (ch == '-' && i > 0)))
            {
                return FA_DECLINED;
            }
            pr->name.data[i] = (u_char) toupper(ch);
        }
        pr->name.data[pr->name.len] = '\0';
        pr->value.data = (u_char *) "";
        pr->value.len = eq ? (size_t) (w - eq - 1) : 0;
        for (size_t i = 0; i < pr->value.len; i++) {
            if (eq[1 + i] < 0x21 || eq[1 + i] == '=') {
                return FA_DECLINED;
            }
        }
        if (pr->name.len == 0 || (eq && pr->value.len == 0)) {
            return FA_DECLINED;
        }
        if (eq) {
            /* a copy: the line is gone by the time the queue writes RET or NOTIFY */
            fa_str_t v = { pr->value.len, (u_char *) eq + 1 };
            if ((pr->value.data = fa_pstrdup(pool, &v)) == NULL) {
                return FA_ERROR;
            }
        }
        p = w;
    }
    return FA_OK;
}

/* RFC 3461 xtext: "+XX" is the byte XX; FA_DECLINED when malformed */
fa_int_t
fa_smtp_xtext_decode(fa_pool_t *pool, const fa_str_t *in, fa_str_t *out)
{
    u_char  *o = fa_pnalloc(pool, in->len + 1);
    size_t   n = 0;

    if (o == NULL) {
        return FA_ERROR;
    }
    for (size_t i = 0; i < in->len; i++) {
        if (in->data[i] == '+') {
            if (i + 2 >= in->len || !isxdigit(in->data[i + 1])
                || !isxdigit(in->data[i + 2]))
            {
                return FA_DECLINED;
            }
            char hex[3] = { (char) in->data[i + 1], (char) in->data[i + 2], '\0' };
            o[n++] = (u_char) strtoul(hex, NULL, 16);
            i += 2;
        } else if (in->data[i] < 0x21 || in->data[i] > 0x7e || in->data[i] == '=') {
            return FA_DECLINED;
        } else {
            o[n++] = in->data[i];
        }
    }
    o[n] = '\0';
    out->data = o;
    out->len = n;
    return FA_OK;
}
