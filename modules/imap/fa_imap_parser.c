/*
 * The IMAP command parser (fa_imap_parser.h), after RFC 9051's grammar,
 * as tolerant as Dovecot where clients are sloppy (lower-case commands,
 * extra spaces between arguments) and strict where it matters (literal
 * sizes, nesting, sequence numbers).
 *
 * Fetch items with a section ("BODY[HEADER.FIELDS (A B)]<0.100>") are one
 * atom: an atom that reaches "[" runs to the matching "]" whatever is
 * inside, then takes an optional "<...>".
 */

#include "fa_imap_parser.h"
#include <ctype.h>

typedef struct {
    u_char      *p;
    u_char      *end;
    fa_pool_t   *pool;
    fa_uint_t    count;
    const char  *why;
} fa_imap_scan_t;

static int
fa_imap_atom_char(u_char ch)
{
    return ch > 0x20 && ch < 0x7f && ch != '(' && ch != ')' && ch != '{' && ch != '"'
           && ch != '\\' && ch != ']' && ch != '%' && ch != '*';
}

/* list-mailbox and sequence sets also take these */
static int
fa_imap_atom_more(u_char ch)
{
    return fa_imap_atom_char(ch) || ch == '%' || ch == '*' || ch == '\\' || ch == ']'
           || ch >= 0x80;   /* 8-bit in atoms: kept, UTF-8 mailbox names (IMAP4rev2) */
}

static fa_int_t
fa_imap_fail(fa_imap_scan_t *sc, const char *why)
{
    sc->why = why;
    return FA_DECLINED;
}

static fa_int_t
fa_imap_scan_atom(fa_imap_scan_t *sc, fa_imap_arg_t *a)
{
    u_char  *start = sc->p;

    while (sc->p < sc->end && fa_imap_atom_more(*sc->p) && *sc->p != ']') {
        if (*sc->p == '[') {
            /* a section: to the matching ']', then an optional <partial> */
            fa_uint_t depth = 0;
            for ( ; sc->p < sc->end; sc->p++) {
                depth += *sc->p == '[';
                if (*sc->p == ']' && --depth == 0) {
                    break;
                }
            }
            if (sc->p == sc->end) {
                return fa_imap_fail(sc, "Unterminated section");
            }
            sc->p++;
            if (sc->p < sc->end && *sc->p == '<') {
                u_char *gt = memchr(sc->p, '>', (size_t) (sc->end - sc->p));
                if (gt == NULL) {
                    return fa_imap_fail(sc, "Unterminated partial");
                }
                sc->p = gt + 1;
            }
            break;
        }
        sc->p++;
    }
    if (sc->p == start) {
        return fa_imap_fail(sc, "Unexpected character");
    }
    a->type = FA_IMAP_ARG_ATOM;
    a->str.data = start;
    a->str.len = (size_t) (sc->p - start);
    return FA_OK;
}

/* "..." with \" and \\; unescaped in place (the result is never longer) */
static fa_int_t
fa_imap_scan_quoted(fa_imap_scan_t *sc, fa_imap_arg_t *a)
{
    u_char  *out = ++sc->p, *start = out;

    for ( ; sc->p < sc->end && *sc->p != '"'; sc->p++) {
        if (*sc->p == '\\') {
            if (++sc->p == sc->end || (*sc->p != '"' && *sc->p != '\\')) {
                return fa_imap_fail(sc, "Invalid escape in a quoted string");
            }
        } else if (*sc->p == '\r' || *sc->p == '\n' || *sc->p == '\0') {
            return fa_imap_fail(sc, "Invalid character in a quoted string");
        }
        *out++ = *sc->p;
    }
    if (sc->p == sc->end) {
        return fa_imap_fail(sc, "Unterminated quoted string");
    }
    sc->p++;
    a->type = FA_IMAP_ARG_STRING;
    a->str.data = start;
    a->str.len = (size_t) (out - start);
    return FA_OK;
}

/* {n}\r\n then n bytes (the session put them there); ~{n} is a literal8 */
static fa_int_t
fa_imap_scan_literal(fa_imap_scan_t *sc, fa_imap_arg_t *a)
{
    uint64_t  n = 0;
    int       digits = 0;

    a->literal8 = *sc->p == '~';
    sc->p += 1 + a->literal8;
    while (sc->p < sc->end && isdigit(*sc->p) && digits < 19) {
        n = n * 10 + (uint64_t) (*sc->p++ - '0');
        digits++;
    }
    if (sc->p < sc->end && *sc->p == '+') {
        sc->p++;
    }
    if (digits == 0 || sc->end - sc->p < 3 || memcmp(sc->p, "}\r\n", 3) != 0) {
        return fa_imap_fail(sc, "Invalid literal");
    }
    sc->p += 3;
    if (n > (uint64_t) (sc->end - sc->p)) {
        return fa_imap_fail(sc, "Literal shorter than announced");
    }
    a->type = FA_IMAP_ARG_LITERAL;
    a->str.data = sc->p;
    a->str.len = (size_t) n;
    sc->p += n;
    return FA_OK;
}

static fa_int_t fa_imap_scan_list(fa_imap_scan_t *sc, fa_imap_arg_t **args, fa_uint_t *n,
    fa_uint_t depth, int in_list);

static fa_int_t
fa_imap_scan_one(fa_imap_scan_t *sc, fa_imap_arg_t *a, fa_uint_t depth)
{
    u_char  ch = *sc->p;

    if (++sc->count > FA_IMAP_ARGS_MAX) {
        return fa_imap_fail(sc, "Too many arguments");
    }
    if (ch == '(') {
        if (depth >= FA_IMAP_DEPTH_MAX) {
            return fa_imap_fail(sc, "Lists nested too deep");
        }
        sc->p++;
        a->type = FA_IMAP_ARG_LIST;
        return fa_imap_scan_list(sc, &a->list, &a->n, depth + 1, 1);
    }
    if (ch == '"') {
        return fa_imap_scan_quoted(sc, a);
    }
    if (ch == '{' || (ch == '~' && sc->p + 1 < sc->end && sc->p[1] == '{')) {
        return fa_imap_scan_literal(sc, a);
    }
    return fa_imap_scan_atom(sc, a);
}

/* arguments up to ')' (in a list) or the end; spaces between are loose */
static fa_int_t
fa_imap_scan_list(fa_imap_scan_t *sc, fa_imap_arg_t **args, fa_uint_t *n, fa_uint_t depth,
    int in_list)
{
    fa_array_t     a;
    fa_imap_arg_t *slot;
    fa_int_t       rc;

    if (fa_array_init(&a, sc->pool, 4, sizeof(fa_imap_arg_t)) != FA_OK) {
        return FA_ERROR;
    }
    for ( ;; ) {
        while (sc->p < sc->end && *sc->p == ' ') {
            sc->p++;
        }
        if (sc->p == sc->end) {
            if (in_list) {
                return fa_imap_fail(sc, "Missing ')'");
            }
            break;
        }
        if (*sc->p == ')') {
            if (!in_list) {
                return fa_imap_fail(sc, "Unexpected ')'");
            }
            sc->p++;
            break;
        }
        if ((slot = fa_array_push(&a)) == NULL) {
            return FA_ERROR;
        }
        if ((rc = fa_imap_scan_one(sc, slot, depth)) != FA_OK) {
            return rc;
        }
        if (sc->p < sc->end && *sc->p != ' ' && *sc->p != ')') {
            return fa_imap_fail(sc, "Missing space between arguments");
        }
    }
    *args = a.elts;
    *n = a.nelts;
    return FA_OK;
}

fa_int_t
fa_imap_parse_args(fa_pool_t *pool, u_char *p, u_char *end, fa_imap_arg_t **args,
    fa_uint_t *nargs, const char **why)
{
    fa_imap_scan_t  sc = { p, end, pool, 0, NULL };
    fa_int_t        rc = fa_imap_scan_list(&sc, args, nargs, 0, 0);

    *why = sc.why;
    return rc;
}

static int
fa_imap_tag_char(u_char ch)
{
    return fa_imap_atom_char(ch) && ch != '+';
}

/* a word made of atom characters, upper-cased into the pool */
static fa_int_t
fa_imap_word(fa_imap_scan_t *sc, fa_str_t *out, int tag)
{
    u_char  *start = sc->p;

    while (sc->p < sc->end && (tag ? fa_imap_tag_char(*sc->p) : isalnum(*sc->p)
                               || *sc->p == '-' || *sc->p == '=')) {
        sc->p++;
    }
    out->data = start;
    out->len = (size_t) (sc->p - start);
    if (out->len == 0 || (tag && out->len > FA_IMAP_TAG_MAX)) {
        return FA_DECLINED;
    }
    if (!tag) {
        for (size_t i = 0; i < out->len; i++) {
            start[i] = (u_char) toupper(start[i]);
        }
    }
    return FA_OK;
}

fa_int_t
fa_imap_parse(fa_pool_t *pool, u_char *buf, size_t len, fa_imap_command_t *cmd,
    const char **why)
{
    fa_imap_scan_t  sc = { buf, buf + len, pool, 0, NULL };

    memset(cmd, 0, sizeof(*cmd));
    *why = "Error in IMAP command";
    if (fa_imap_word(&sc, &cmd->tag, 1) != FA_OK || sc.p == sc.end || *sc.p != ' ') {
        cmd->tag.len = 0;
        *why = "Error in IMAP command received by server";
        return FA_DECLINED;
    }
    sc.p++;
    if (fa_imap_word(&sc, &cmd->name, 0) != FA_OK) {
        *why = "Missing command";
        return FA_DECLINED;
    }
    if (fa_str_eq(&cmd->name, "UID") && sc.p < sc.end && *sc.p == ' ') {
        sc.p++;
        if (fa_imap_word(&sc, &cmd->name, 0) != FA_OK) {
            *why = "Missing UID command";
            return FA_DECLINED;
        }
        cmd->uid = 1;
    }
    if (sc.p < sc.end && *sc.p != ' ') {
        *why = "Unknown command";
        return FA_DECLINED;
    }
    return fa_imap_parse_args(pool, sc.p, sc.end, &cmd->args, &cmd->nargs, why);
}

fa_int_t
fa_imap_literal_at_end(const u_char *line, size_t len, uint64_t *size, int *sync, int *binary)
{
    size_t    i;
    uint64_t  n = 0;

    if (len < 3 || line[len - 1] != '}') {
        return FA_DECLINED;
    }
    i = len - 2;
    *sync = line[i] != '+';
    if (!*sync) {
        i--;
    }
    size_t last = i;
    while (i > 0 && isdigit(line[i])) {
        i--;
    }
    if (line[i] != '{' || i == last) {
        return FA_DECLINED;               /* "}" without "{digits": not a literal */
    }
    if (last - i > 18) {
        return FA_ERROR;                  /* over 10^18: nonsense */
    }
    for (size_t k = i + 1; k <= last; k++) {
        n = n * 10 + (uint64_t) (line[k] - '0');
    }
    *binary = i > 0 && line[i - 1] == '~';
    *size = n;
    return FA_OK;
}

const fa_str_t *
fa_imap_arg_string(const fa_imap_arg_t *a)
{
    return a && a->type != FA_IMAP_ARG_LIST ? &a->str : NULL;
}

int
fa_imap_arg_is(const fa_imap_arg_t *a, const char *atom)
{
    size_t  n = strlen(atom);

    return a && a->type == FA_IMAP_ARG_ATOM && a->str.len == n
           && strncasecmp((char *) a->str.data, atom, n) == 0;
}


/* ---- sequence sets ---- */

/* a number 1..2^32-1, or "*" (max); 0 for anything else */
static uint64_t
fa_imap_seq_number(const u_char *p, size_t n, uint32_t max)
{
    uint64_t  v = 0;

    if (n == 1 && p[0] == '*') {
        return max ? max : (uint64_t) 1 << 40;   /* marks "* in an empty mailbox" */
    }
    if (n == 0 || n > 10 || p[0] == '0') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isdigit(p[i])) {
            return 0;
        }
        v = v * 10 + (uint64_t) (p[i] - '0');
    }
    return v <= UINT32_MAX ? v : 0;
}

static int
fa_imap_range_cmp(const void *a, const void *b)
{
    const fa_imap_range_t  *x = a, *y = b;

    return x->first < y->first ? -1 : x->first > y->first;
}

fa_int_t
fa_imap_parse_set(fa_pool_t *pool, const fa_str_t *s, uint32_t max, fa_imap_range_t **ranges,
    fa_uint_t *n)
{
    const u_char     *p = s->data, *end = s->data + s->len, *comma, *colon;
    fa_imap_range_t  *r;
    fa_uint_t         count = 1, k = 0;

    for (size_t i = 0; i < s->len; i++) {
        count += s->data[i] == ',';
    }
    if (s->len == 0 || count > 100000 || s->data[s->len - 1] == ',') {
        return FA_DECLINED;
    }
    if ((r = fa_palloc(pool, count * sizeof(*r))) == NULL) {
        return FA_ERROR;
    }
    for ( ; p < end; p = comma + 1) {
        comma = memchr(p, ',', (size_t) (end - p));
        comma = comma ? comma : end;
        colon = memchr(p, ':', (size_t) (comma - p));
        uint64_t a = fa_imap_seq_number(p, (size_t) ((colon ? colon : comma) - p), max);
        uint64_t b = colon ? fa_imap_seq_number(colon + 1, (size_t) (comma - colon - 1), max) : a;
        if (a == 0 || b == 0) {
            return FA_DECLINED;
        }
        if (a > b) {
            uint64_t t = a; a = b; b = t;        /* "*:1" is "1:*" */
        }
        if (a <= UINT32_MAX) {                   /* "*" in an empty mailbox: nothing */
            r[k].first = (uint32_t) a;
            r[k].last = (uint32_t) fa_min(b, (uint64_t) UINT32_MAX);
            k++;
        }
        if (comma == end) {
            break;
        }
    }
    qsort(r, k, sizeof(*r), fa_imap_range_cmp);
    fa_uint_t m = 0;
    for (fa_uint_t i = 0; i < k; i++) {            /* merge overlaps and neighbours */
        if (m && (uint64_t) r[i].first <= (uint64_t) r[m - 1].last + 1) {
            r[m - 1].last = fa_max(r[m - 1].last, r[i].last);
        } else {
            r[m++] = r[i];
        }
    }
    *ranges = r;
    *n = m;
    return FA_OK;
}
