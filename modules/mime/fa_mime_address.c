/*
 * RFC 5322 address lists, for the IMAP ENVELOPE.
 *
 * Mail in the wild breaks every rule, so this reads the way Dovecot does
 * and never gives up on a list: display names are joined words with the
 * quotes removed (encoded words stay as they are: IMAP returns them
 * undecoded), a comment stands in for a missing display name, a local part
 * or domain that is missing becomes MISSING_MAILBOX / MISSING_DOMAIN, a bare
 * word is a mailbox without a domain, and what cannot be read up to the
 * next comma is skipped.  Groups ("undisclosed-recipients:;") come out as
 * IMAP's start and end markers.
 *
 * Strings are built in scratch buffers as long as the value and copied to
 * the tree at their real size, all under the tree's budget.
 */

#include "fa_mime_parser.h"

#define FA_MIME_ADDRESSES_MAX  10000

typedef struct {
    fa_mime_alloc_t    *a;
    const u_char       *p;
    const u_char       *end;
    fa_mime_address_t  *first;
    fa_mime_address_t  *last;
    fa_uint_t           count;
    const u_char       *comment;     /* the last comment, inside its parentheses */
    size_t              clen;
    unsigned            space:1;     /* white space or a comment since the last word */

    u_char             *name;        /* the phrase as a display name */
    u_char             *local;       /* the phrase as a local part */
    u_char             *domain;
    u_char             *route;
    size_t              nlen, llen, dlen, rlen;
} fa_mime_addr_t;

static void fa_mime_address_one(fa_mime_addr_t *c, int in_group);

static const fa_str_t  fa_mime_missing_mailbox = fa_string("MISSING_MAILBOX");
static const fa_str_t  fa_mime_missing_domain = fa_string("MISSING_DOMAIN");

static int
fa_mime_address_atext(u_char ch)
{
    return ch > ' ' && ch != 0x7f && strchr("()<>[]:;@\\,.\"", ch) == NULL;
}

static void
fa_mime_address_skip(fa_mime_addr_t *c)
{
    const u_char  *e;

    while (c->p < c->end) {
        if (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n') {
            c->p++;
        } else if (*c->p == '(') {
            e = fa_mime_skip_comment(c->p, c->end);
            c->comment = c->p + 1;
            c->clen = e - c->comment - (e > c->comment && e[-1] == ')' ? 1 : 0);
            c->p = e;
        } else {
            return;
        }
        c->space = 1;
    }
}

static void
fa_mime_address_word(fa_mime_addr_t *c, const u_char *s, size_t n, int quoted)
{
    const u_char  *end = s + n;

    if (c->nlen > 0 && c->space) {
        c->name[c->nlen++] = ' ';
    }
    for ( ; s < end; s++) {
        if (quoted && *s == '\\' && s + 1 < end) {
            s++;
        } else if (quoted && (*s == '\r' || *s == '\n')) {
            continue;
        }
        c->name[c->nlen++] = *s;
        c->local[c->llen++] = *s;
    }
    c->space = 0;
}

/*
 * Words, quoted strings and dots up to a character with a meaning here:
 * < @ , ; : (and > inside an angle address).  Anything else, even junk,
 * belongs to a word, so this always moves on.
 */
static void
fa_mime_address_phrase(fa_mime_addr_t *c, int in_angle)
{
    const u_char  *s;
    u_char         ch;

    c->nlen = c->llen = 0;
    c->space = 0;
    for ( ;; ) {
        fa_mime_address_skip(c);
        if (c->p == c->end) {
            return;
        }
        ch = *c->p;
        if (strchr("<@,;:", ch) != NULL || (in_angle && ch == '>')) {
            return;
        }
        if (ch == '"') {
            for (s = ++c->p; c->p < c->end && *c->p != '"'; c->p++) {
                if (*c->p == '\\' && c->p + 1 < c->end) {
                    c->p++;
                }
            }
            fa_mime_address_word(c, s, c->p - s, 1);
            c->p += c->p < c->end;
        } else if (ch == '.') {
            c->name[c->nlen++] = '.';
            c->local[c->llen++] = '.';
            c->p++;
            c->space = 0;
        } else {
            for (s = c->p; c->p < c->end; c->p++) {
                ch = *c->p;
                if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'
                    || strchr("(\".<@,;:", ch) != NULL || (in_angle && ch == '>'))
                {
                    break;
                }
            }
            fa_mime_address_word(c, s, c->p - s, 0);
        }
    }
}

/* "@" dot-atom or domain literal, into c->domain */
static void
fa_mime_address_domain(fa_mime_addr_t *c)
{
    c->dlen = 0;
    c->p++;
    fa_mime_address_skip(c);
    if (c->p < c->end && *c->p == '[') {
        while (c->p < c->end) {
            if (*c->p != '\r' && *c->p != '\n') {
                c->domain[c->dlen++] = *c->p;
            }
            if (*c->p++ == ']') {
                break;
            }
        }
        return;
    }
    while (c->p < c->end && fa_mime_address_atext(*c->p)) {
        while (c->p < c->end && fa_mime_address_atext(*c->p)) {
            c->domain[c->dlen++] = *c->p++;
        }
        fa_mime_address_skip(c);
        if (c->p == c->end || *c->p != '.') {
            break;
        }
        c->domain[c->dlen++] = *c->p++;
        fa_mime_address_skip(c);
    }
}

static fa_mime_address_t *
fa_mime_address_new(fa_mime_addr_t *c)
{
    fa_mime_address_t  *addr;

    if (c->count >= FA_MIME_ADDRESSES_MAX) {
        return NULL;
    }
    addr = fa_mime_alloc(c->a, sizeof(fa_mime_address_t));
    if (addr == NULL) {
        return NULL;
    }
    if (c->last) {
        c->last->next = addr;
    } else {
        c->first = addr;
    }
    c->last = addr;
    c->count++;
    return addr;
}

/* a string of the address; empty means the "missing" marker, or NIL */
static void
fa_mime_address_set(fa_mime_addr_t *c, fa_str_t *dst, const u_char *s, size_t n,
    const fa_str_t *missing)
{
    if (n > 0) {
        (void) fa_mime_copy(c->a, dst, s, n);
    } else if (missing) {
        *dst = *missing;
    }
}

/* the name, or else the comment seen around the address */
static void
fa_mime_address_name(fa_mime_addr_t *c, fa_mime_address_t *addr)
{
    if (addr->name.data == NULL && c->comment != NULL) {
        fa_mime_address_set(c, &addr->name, c->comment, c->clen, NULL);
    }
}

/* "<" [route ":"] addr-spec ">", the display name already set */
static void
fa_mime_address_angle(fa_mime_addr_t *c, fa_mime_address_t *addr)
{
    int  colon = 0;

    c->p++;
    c->rlen = c->dlen = c->llen = 0;
    fa_mime_address_skip(c);
    while (c->p < c->end && *c->p == '@' && !colon) {
        fa_mime_address_domain(c);
        c->route[c->rlen++] = '@';
        memcpy(c->route + c->rlen, c->domain, c->dlen);
        c->rlen += c->dlen;
        fa_mime_address_skip(c);
        if (c->p < c->end && *c->p == ',') {
            c->route[c->rlen++] = *c->p++;
            fa_mime_address_skip(c);
        } else if (c->p < c->end && *c->p == ':') {
            c->p++;
            colon = 1;
        }
    }
    if (c->rlen > 0 && !colon) {
        c->rlen = 0;                    /* "<@host>": a domain without a local part */
    } else {
        if (c->rlen > 0 && c->route[c->rlen - 1] == ',') {
            c->rlen--;
        }
        fa_mime_address_phrase(c, 1);
        c->dlen = 0;
        if (c->p < c->end && *c->p == '@') {
            fa_mime_address_domain(c);
        }
    }
    while (c->p < c->end && *c->p != '>') {
        c->p++;
    }
    c->p += c->p < c->end;
    if (addr == NULL) {
        return;
    }
    fa_mime_address_skip(c);
    fa_mime_address_name(c, addr);
    fa_mime_address_set(c, &addr->route, c->route, c->rlen, NULL);
    fa_mime_address_set(c, &addr->mailbox, c->local, c->llen, &fa_mime_missing_mailbox);
    fa_mime_address_set(c, &addr->host, c->domain, c->dlen, &fa_mime_missing_domain);
}

/* display-name ":" [mailbox-list] ";" as IMAP's start and end markers */
static void
fa_mime_address_group(fa_mime_addr_t *c)
{
    fa_mime_address_t  *addr;

    addr = fa_mime_address_new(c);
    if (addr != NULL) {
        (void) fa_mime_copy(c->a, &addr->mailbox, c->name, c->nlen);
    }
    c->p++;
    c->comment = NULL;
    for ( ;; ) {
        fa_mime_address_skip(c);
        if (c->p == c->end) {
            break;
        }
        if (*c->p == ';') {
            c->p++;
            break;
        }
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        fa_mime_address_one(c, 1);
    }
    (void) fa_mime_address_new(c);
}

/* what is left of an address that could not be read, up to its comma */
static void
fa_mime_address_junk(fa_mime_addr_t *c, int in_group)
{
    for ( ;; ) {
        fa_mime_address_skip(c);
        if (c->p == c->end) {
            return;
        }
        if (*c->p == ',') {
            c->p++;
            return;
        }
        if (*c->p == ';' && in_group) {
            return;
        }
        if (*c->p == '"') {
            for (c->p++; c->p < c->end && *c->p != '"'; c->p++) {
                c->p += *c->p == '\\' && c->p + 1 < c->end;
            }
        }
        c->p += c->p < c->end;
    }
}

static void
fa_mime_address_one(fa_mime_addr_t *c, int in_group)
{
    const u_char       *start = c->p;
    fa_mime_address_t  *addr;

    fa_mime_address_phrase(c, 0);
    if (c->p < c->end && *c->p == ':' && !in_group) {
        fa_mime_address_group(c);
        return;
    }
    if (c->p < c->end && *c->p == '<') {
        addr = fa_mime_address_new(c);
        if (addr != NULL) {
            fa_mime_address_set(c, &addr->name, c->name, c->nlen, NULL);
        }
        fa_mime_address_angle(c, addr);
    } else if (c->p < c->end && *c->p == '@') {
        fa_mime_address_domain(c);
        fa_mime_address_skip(c);
        addr = fa_mime_address_new(c);
        if (addr != NULL) {
            fa_mime_address_name(c, addr);
            fa_mime_address_set(c, &addr->mailbox, c->local, c->llen,
                                &fa_mime_missing_mailbox);
            fa_mime_address_set(c, &addr->host, c->domain, c->dlen,
                                &fa_mime_missing_domain);
        }
    } else if (c->nlen > 0) {
        addr = fa_mime_address_new(c);
        if (addr != NULL) {
            fa_mime_address_set(c, &addr->mailbox, c->name, c->nlen, NULL);
            addr->host = fa_mime_missing_domain;
        }
    }
    fa_mime_address_junk(c, in_group);
    if (c->p == start) {
        c->p++;
    }
    c->comment = NULL;       /* a comment before the next address is its own */
}

fa_mime_address_t *
fa_mime_address_list(fa_mime_alloc_t *a, const u_char *data, size_t len)
{
    fa_mime_addr_t  c;
    u_char         *scratch;

    if (len == 0 || len > SIZE_MAX / 8) {
        return NULL;
    }
    /* name, local part, domain and route are each at most the value */
    scratch = fa_mime_alloc(a, 4 * len + 4);
    if (scratch == NULL) {
        return NULL;
    }
    memset(&c, 0, sizeof(fa_mime_addr_t));
    c.a = a;
    c.p = data;
    c.end = data + len;
    c.name = scratch;
    c.local = scratch + len + 1;
    c.domain = scratch + 2 * (len + 1);
    c.route = scratch + 3 * (len + 1);

    while (c.p < c.end && c.count < FA_MIME_ADDRESSES_MAX) {
        fa_mime_address_skip(&c);
        if (c.p == c.end) {
            break;
        }
        if (*c.p == ',' || *c.p == ';') {
            c.p++;
            continue;
        }
        fa_mime_address_one(&c, 0);
    }
    return c.first;
}

fa_mime_address_t *
fa_mime_address_parse(fa_pool_t *pool, const u_char *data, size_t len)
{
    fa_mime_alloc_t  a;

    fa_mime_alloc_init(&a, pool, SIZE_MAX);
    return fa_mime_address_list(&a, data, len);
}
