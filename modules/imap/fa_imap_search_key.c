/*
 * Search keys (RFC 9051 6.4.4, RFC 3501 6.4.4, RFC 7162 3.1.5) into a
 * tree, and the tree's value for one message.
 *
 * The key list is an implicit AND; NOT, OR and parenthesised lists nest at
 * most FA_IMAP_SEARCH_DEPTH deep (the command parser bounds lists at 32,
 * but "NOT NOT NOT ..." and "OR a OR b ..." nest without lists).  Chains
 * of OR in OR and AND in AND are flattened, so a long OR costs no depth
 * when the tree is evaluated.
 *
 * Strings are matched as substrings, case-insensitively with Unicode case
 * folding: each one is compiled once per command into a PCRE2 literal
 * (caseless, UTF, invalid UTF in the subject tolerated), JIT-compiled
 * when PCRE2 can.  An empty string matches any message that has the field
 * (RFC 3501 says so for HEADER; SUBJECT, FROM... do the same) and every
 * message for BODY and TEXT.
 *
 * Dates compare days only.  The internal date's day is taken in UTC (the
 * store keeps a moment, not a zone); the Date field's day is the one the
 * sender wrote, in the sender's zone.  A message without a readable Date
 * field matches no SENT* key.
 */

#include "fa_imap_search.h"
#include <ctype.h>

#ifndef PCRE2_MATCH_INVALID_UTF
#define PCRE2_MATCH_INVALID_UTF  0     /* PCRE2 < 10.34: UTF is left off below */
#endif

typedef struct {
    fa_imap_session_t  *s;
    fa_imap_search_t   *se;
    const fa_str_t     *charset;      /* NULL: UTF-8 or US-ASCII */
    const char         *why;
    fa_uint_t           depth;
    fa_array_t          slots;
} fa_imap_kparse_t;

typedef struct {
    const char           *name;
    fa_imap_skey_type_t   type;
    uint32_t              flag;
    unsigned              set;
} fa_imap_skey_word_t;

/* keys without an argument */
static const fa_imap_skey_word_t  fa_imap_skey_plain[] = {
    { "ALL", FA_SK_ALL, 0, 0 },
    { "ANSWERED", FA_SK_FLAG, FA_FLAG_ANSWERED, 1 },
    { "UNANSWERED", FA_SK_FLAG, FA_FLAG_ANSWERED, 0 },
    { "DELETED", FA_SK_FLAG, FA_FLAG_DELETED, 1 },
    { "UNDELETED", FA_SK_FLAG, FA_FLAG_DELETED, 0 },
    { "DRAFT", FA_SK_FLAG, FA_FLAG_DRAFT, 1 },
    { "UNDRAFT", FA_SK_FLAG, FA_FLAG_DRAFT, 0 },
    { "FLAGGED", FA_SK_FLAG, FA_FLAG_FLAGGED, 1 },
    { "UNFLAGGED", FA_SK_FLAG, FA_FLAG_FLAGGED, 0 },
    { "SEEN", FA_SK_FLAG, FA_FLAG_SEEN, 1 },
    { "UNSEEN", FA_SK_FLAG, FA_FLAG_SEEN, 0 },
    /* no \Recent is kept (fa_storage.h): nothing is recent, everything old */
    { "NEW", FA_SK_NONE, 0, 0 },
    { "RECENT", FA_SK_NONE, 0, 0 },
    { "OLD", FA_SK_ALL, 0, 0 },
};

/* keys with a date, a number or a string */
static const fa_imap_skey_word_t  fa_imap_skey_arg[] = {
    { "BEFORE", FA_SK_BEFORE, 0, 0 },
    { "ON", FA_SK_ON, 0, 0 },
    { "SINCE", FA_SK_SINCE, 0, 0 },
    { "SENTBEFORE", FA_SK_SENTBEFORE, 0, 0 },
    { "SENTON", FA_SK_SENTON, 0, 0 },
    { "SENTSINCE", FA_SK_SENTSINCE, 0, 0 },
    { "LARGER", FA_SK_LARGER, 0, 0 },
    { "SMALLER", FA_SK_SMALLER, 0, 0 },
    { "BCC", FA_SK_ENVELOPE, FA_MIME_ENV_BCC, 0 },
    { "CC", FA_SK_ENVELOPE, FA_MIME_ENV_CC, 0 },
    { "FROM", FA_SK_ENVELOPE, FA_MIME_ENV_FROM, 0 },
    { "SUBJECT", FA_SK_ENVELOPE, FA_MIME_ENV_SUBJECT, 0 },
    { "TO", FA_SK_ENVELOPE, FA_MIME_ENV_TO, 0 },
    { "BODY", FA_SK_BODY, 0, 0 },
    { "TEXT", FA_SK_TEXT, 0, 0 },
};

/* the header fields the metadata caches (the envelope's), by name */
static const char  *fa_imap_skey_envelope[FA_MIME_ENV_N] = {
    "date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc",
    "in-reply-to", "message-id"
};

static fa_imap_skey_t *fa_imap_skey_one(fa_imap_kparse_t *kp, const fa_imap_arg_t *a,
    fa_uint_t n, fa_uint_t *i);


/* ---- dates and strings ---- */

/* the day of a moment, in UTC */
static int64_t
fa_imap_day_of(time_t t)
{
    return t >= 0 ? t / 86400 : (t - 86399) / 86400;
}

static void
fa_imap_search_re_free(void *data)
{
    pcre2_code_free(data);
}

/* the text sought, in UTF-8, compiled once */
static fa_int_t
fa_imap_skey_string(fa_imap_kparse_t *kp, fa_imap_skey_t *k, const fa_imap_arg_t *a)
{
    const fa_str_t  *str = fa_imap_arg_string(a);
    fa_pool_t       *pool = kp->se->pool;
    uint32_t         opts = PCRE2_LITERAL | PCRE2_CASELESS;
    PCRE2_SIZE       eoff;
    int              err;

    if (str == NULL) {
        kp->why = "Missing string";
        return FA_DECLINED;
    }
    k->str = *str;
    if (kp->charset && fa_mime_decode_charset(pool, kp->charset, str->data, str->len,
                                              &k->str) == FA_ERROR)
    {
        return FA_ERROR;
    }
    if (k->str.len == 0) {
        return FA_OK;
    }
    if (PCRE2_MATCH_INVALID_UTF) {
        opts |= PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    }
    k->re = pcre2_compile(k->str.data, k->str.len, opts, &err, &eoff, NULL);
    if (k->re == NULL) {
        kp->why = "Invalid UTF-8 in a search string";
        return FA_DECLINED;
    }
    if (fa_pool_cleanup_add(pool, fa_imap_search_re_free, k->re) == NULL) {
        pcre2_code_free(k->re);
        return FA_ERROR;
    }
    (void) pcre2_jit_compile(k->re, PCRE2_JIT_COMPLETE);    /* without JIT: interpreted */
    return FA_OK;
}

int
fa_imap_search_match(fa_imap_search_t *se, const fa_imap_skey_t *k, const u_char *p,
    size_t n)
{
    if (k->re == NULL) {
        return 1;
    }
    return pcre2_match(k->re, p, n, 0, 0, se->md, NULL) >= 0;
}


/* ---- the tree ---- */

static fa_imap_skey_t *
fa_imap_skey_new(fa_imap_kparse_t *kp, fa_imap_skey_type_t type)
{
    fa_imap_skey_t  *k = fa_pcalloc(kp->se->pool, sizeof(*k));

    if (k) {
        k->type = type;
    }
    return k;
}

/* add an operand; an AND in an AND, an OR in an OR give their operands */
static void
fa_imap_skey_add(fa_imap_skey_t *parent, fa_imap_skey_t *child)
{
    fa_imap_skey_t  **tail = &parent->child;

    while (*tail) {
        tail = &(*tail)->next;
    }
    *tail = child->type == parent->type && (child->type == FA_SK_AND
                                             || child->type == FA_SK_OR)
            ? child->child : child;
}

/* HEADER, BODY and TEXT keys get a slot each: reading fills it */
static fa_int_t
fa_imap_skey_slot(fa_imap_kparse_t *kp, fa_imap_skey_t *k)
{
    fa_imap_skey_t  **slot = fa_array_push(&kp->slots);

    if (slot == NULL) {
        return FA_ERROR;
    }
    *slot = k;
    k->slot = kp->slots.nelts - 1;
    if (k->type != FA_SK_HEADER) {
        /* a match is at most 4 bytes a character: keep that much between windows */
        kp->se->overlap = fa_max(kp->se->overlap, 4 * k->str.len + 4);
    }
    return FA_OK;
}

static fa_imap_skey_t *
fa_imap_skey_fail(fa_imap_kparse_t *kp, const char *why)
{
    if (kp->why == NULL) {
        kp->why = why;
    }
    return NULL;
}

static fa_imap_skey_t *
fa_imap_skey_set(fa_imap_kparse_t *kp, const fa_str_t *set, int uid)
{
    fa_imap_view_t  *v = kp->s->view;
    fa_imap_skey_t  *k = fa_imap_skey_new(kp, uid ? FA_SK_UID : FA_SK_SEQ);
    uint32_t         max = uid ? (v->n ? v->uids[v->n - 1] : 0) : (uint32_t) v->n;
    fa_int_t         rc;

    if (k == NULL) {
        return NULL;
    }
    if (set->len && set->data[0] == '$') {
        return fa_imap_skey_fail(kp, "SEARCHRES ($) is not supported");
    }
    rc = fa_imap_parse_set(kp->se->pool, set, max, &k->ranges, &k->nranges);
    if (rc == FA_ERROR) {
        return NULL;
    }
    if (rc != FA_OK) {
        return fa_imap_skey_fail(kp, "Invalid sequence set");
    }
    /* a number past the last message is an error (RFC 9051 9); with no
       message at all, "1:*" just finds nothing */
    if (!uid && v->n && k->nranges && k->ranges[k->nranges - 1].last > v->n) {
        return fa_imap_skey_fail(kp, "Invalid sequence set: past the last message");
    }
    return k;
}

/* KEYWORD, UNKEYWORD: the keyword's bit; a system flag works too */
static fa_imap_skey_t *
fa_imap_skey_keyword(fa_imap_kparse_t *kp, const fa_imap_arg_t *a, int set)
{
    fa_imap_view_t  *v = kp->s->view;
    fa_imap_skey_t  *k;

    if (a->type != FA_IMAP_ARG_ATOM) {
        return fa_imap_skey_fail(kp, "Invalid keyword");
    }
    for (size_t i = 0; a->str.data[0] == '\\' && i < fa_nelems(fa_imap_skey_plain); i++) {
        const fa_imap_skey_word_t *w = &fa_imap_skey_plain[i];
        if (w->type == FA_SK_FLAG && w->set && a->str.len - 1 == strlen(w->name)
            && strncasecmp((char *) a->str.data + 1, w->name, a->str.len - 1) == 0)
        {
            k = fa_imap_skey_new(kp, FA_SK_FLAG);
            if (k) {
                k->flag = w->flag;
                k->set = set;
            }
            return k;
        }
    }
    k = fa_imap_skey_new(kp, FA_SK_KEYWORD);
    if (k == NULL) {
        return NULL;
    }
    k->set = set;
    k->flag = UINT32_MAX;                   /* not in the mailbox: no message has it */
    for (fa_uint_t i = 0; i < v->nkeywords && i < 64; i++) {
        if (v->keywords[i].len == a->str.len
            && strncasecmp((char *) v->keywords[i].data, (char *) a->str.data, a->str.len) == 0)
        {
            k->flag = (uint32_t) i;
            break;
        }
    }
    return k;
}

/* MODSEQ [entry-name entry-type-req] mod-sequence-valzer (RFC 7162) */
static fa_imap_skey_t *
fa_imap_skey_modseq(fa_imap_kparse_t *kp, const fa_imap_arg_t *a, fa_uint_t n,
    fa_uint_t *i)
{
    fa_imap_skey_t  *k = fa_imap_skey_new(kp, FA_SK_MODSEQ);

    if (k == NULL) {
        return NULL;
    }
    if (*i < n && a[*i].type != FA_IMAP_ARG_ATOM) {
        if (*i + 1 >= n || !(fa_imap_arg_is(&a[*i + 1], "priv")
                             || fa_imap_arg_is(&a[*i + 1], "shared")
                             || fa_imap_arg_is(&a[*i + 1], "all")))
        {
            return fa_imap_skey_fail(kp, "Invalid MODSEQ entry");
        }
        *i += 2;                            /* per-flag MODSEQs are not kept */
    }
    if (*i >= n || a[*i].type != FA_IMAP_ARG_ATOM
        || (k->number = fa_atoi(a[*i].str.data, a[*i].str.len)) < 0)
    {
        return fa_imap_skey_fail(kp, "Invalid MODSEQ value");
    }
    (*i)++;
    kp->se->has_modseq = 1;
    return k;
}

static fa_imap_skey_t *
fa_imap_skey_header(fa_imap_kparse_t *kp, const fa_imap_arg_t *a, fa_uint_t n,
    fa_uint_t *i)
{
    const fa_str_t  *name = *i < n ? fa_imap_arg_string(&a[*i]) : NULL;
    fa_imap_skey_t  *k;

    if (name == NULL || name->len == 0 || *i + 1 >= n) {
        return fa_imap_skey_fail(kp, "Syntax: HEADER field-name string");
    }
    k = fa_imap_skey_new(kp, FA_SK_HEADER);
    if (k == NULL) {
        return NULL;
    }
    for (fa_uint_t f = 0; f < FA_MIME_ENV_N; f++) {
        if (fa_str_casecmp(name, fa_imap_skey_envelope[f]) == 0) {
            k->type = FA_SK_ENVELOPE;
            k->field = f;
        }
    }
    k->name.len = name->len;
    k->name.data = fa_pstrdup(kp->se->pool, name);     /* the command buffer may move */
    if (k->name.data == NULL || fa_imap_skey_string(kp, k, &a[*i + 1]) != FA_OK) {
        return NULL;
    }
    *i += 2;
    if (k->type == FA_SK_HEADER && fa_imap_skey_slot(kp, k) != FA_OK) {
        return NULL;
    }
    return k;
}

/* the keys that take one argument */
static fa_imap_skey_t *
fa_imap_skey_with_arg(fa_imap_kparse_t *kp, const fa_imap_skey_word_t *w,
    const fa_imap_arg_t *a)
{
    fa_imap_skey_t   *k = fa_imap_skey_new(kp, w->type);
    const fa_str_t   *str = fa_imap_arg_string(a);

    if (k == NULL) {
        return NULL;
    }
    switch (w->type) {
    case FA_SK_BEFORE: case FA_SK_ON: case FA_SK_SINCE:
    case FA_SK_SENTBEFORE: case FA_SK_SENTON: case FA_SK_SENTSINCE:
        if (str == NULL || fa_imap_date_day(str, &k->number) != FA_OK) {
            return fa_imap_skey_fail(kp, "Invalid date");
        }
        return k;
    case FA_SK_LARGER: case FA_SK_SMALLER:
        if (a->type != FA_IMAP_ARG_ATOM || (k->number = fa_atoi(a->str.data, a->str.len)) < 0) {
            return fa_imap_skey_fail(kp, "Invalid number");
        }
        return k;
    default:
        break;
    }
    k->field = w->flag;
    if (fa_imap_skey_string(kp, k, a) != FA_OK) {
        return NULL;
    }
    if (w->type == FA_SK_ENVELOPE) {
        return k;
    }
    if (k->str.len == 0) {
        k->type = FA_SK_ALL;                /* every message has "" in its text */
        return k;
    }
    return fa_imap_skey_slot(kp, k) == FA_OK ? k : NULL;
}

/* "(key ...)" or the command's key list: an AND */
static fa_imap_skey_t *
fa_imap_skey_list(fa_imap_kparse_t *kp, const fa_imap_arg_t *a, fa_uint_t n)
{
    fa_imap_skey_t  *and = fa_imap_skey_new(kp, FA_SK_AND), *k;
    fa_uint_t        i = 0;

    if (and == NULL) {
        return NULL;
    }
    if (n == 0) {
        return fa_imap_skey_fail(kp, "Missing search keys");
    }
    while (i < n) {
        k = fa_imap_skey_one(kp, a, n, &i);
        if (k == NULL) {
            return NULL;
        }
        fa_imap_skey_add(and, k);
    }
    return and->child->next ? and : and->child;
}

static fa_imap_skey_t *
fa_imap_skey_nested(fa_imap_kparse_t *kp, const fa_imap_arg_t *a, fa_uint_t n,
    fa_uint_t *i)
{
    const fa_imap_arg_t  *arg = &a[*i];
    fa_imap_skey_t       *k = NULL, *op;

    if (++kp->depth > FA_IMAP_SEARCH_DEPTH) {
        return fa_imap_skey_fail(kp, "Search keys nested too deeply");
    }
    (*i)++;
    if (arg->type == FA_IMAP_ARG_LIST) {
        k = fa_imap_skey_list(kp, arg->list, arg->n);
    } else if (fa_imap_arg_is(arg, "NOT")) {
        op = *i < n ? fa_imap_skey_one(kp, a, n, i)
                    : fa_imap_skey_fail(kp, "NOT needs a search key");
        if (op && op->type == FA_SK_NOT) {
            k = op->child;                  /* NOT NOT x is x */
        } else if (op && (k = fa_imap_skey_new(kp, FA_SK_NOT))) {
            k->child = op;
        }
    } else {
        k = fa_imap_skey_new(kp, FA_SK_OR);
        for (int j = 0; k && j < 2; j++) {
            op = *i < n ? fa_imap_skey_one(kp, a, n, i)
                        : fa_imap_skey_fail(kp, "OR needs two search keys");
            if (op == NULL) {
                return NULL;
            }
            fa_imap_skey_add(k, op);
        }
    }
    kp->depth--;
    return k;
}

static fa_imap_skey_t *
fa_imap_skey_one(fa_imap_kparse_t *kp, const fa_imap_arg_t *a, fa_uint_t n, fa_uint_t *i)
{
    const fa_imap_arg_t  *arg = &a[*i];
    fa_imap_skey_t       *k;

    if (arg->type == FA_IMAP_ARG_LIST || fa_imap_arg_is(arg, "NOT")
        || fa_imap_arg_is(arg, "OR"))
    {
        return fa_imap_skey_nested(kp, a, n, i);
    }
    if (arg->type != FA_IMAP_ARG_ATOM) {
        return fa_imap_skey_fail(kp, "Invalid search key");
    }
    (*i)++;
    if (isdigit(arg->str.data[0]) || arg->str.data[0] == '*' || arg->str.data[0] == '$') {
        return fa_imap_skey_set(kp, &arg->str, 0);
    }
    for (size_t w = 0; w < fa_nelems(fa_imap_skey_plain); w++) {
        if (fa_imap_arg_is(arg, fa_imap_skey_plain[w].name)) {
            k = fa_imap_skey_new(kp, fa_imap_skey_plain[w].type);
            if (k) {
                k->flag = fa_imap_skey_plain[w].flag;
                k->set = fa_imap_skey_plain[w].set;
            }
            return k;
        }
    }
    if (fa_imap_arg_is(arg, "HEADER")) {
        return fa_imap_skey_header(kp, a, n, i);
    }
    if (fa_imap_arg_is(arg, "MODSEQ")) {
        return fa_imap_skey_modseq(kp, a, n, i);
    }
    if (*i >= n) {
        return fa_imap_skey_fail(kp, "Missing argument to a search key");
    }
    if (fa_imap_arg_is(arg, "UID")) {
        const fa_str_t *set = a[*i].type == FA_IMAP_ARG_ATOM ? &a[*i].str : NULL;
        (*i)++;
        return set ? fa_imap_skey_set(kp, set, 1) : fa_imap_skey_fail(kp, "Invalid UID set");
    }
    if (fa_imap_arg_is(arg, "KEYWORD") || fa_imap_arg_is(arg, "UNKEYWORD")) {
        return fa_imap_skey_keyword(kp, &a[(*i)++], fa_imap_arg_is(arg, "KEYWORD"));
    }
    for (size_t w = 0; w < fa_nelems(fa_imap_skey_arg); w++) {
        if (fa_imap_arg_is(arg, fa_imap_skey_arg[w].name)) {
            return fa_imap_skey_with_arg(kp, &fa_imap_skey_arg[w], &a[(*i)++]);
        }
    }
    return fa_imap_skey_fail(kp, "Unknown search key");
}

static void
fa_imap_search_md_free(void *data)
{
    pcre2_match_data_free(data);
}

fa_int_t
fa_imap_search_keys(fa_imap_session_t *s, fa_imap_search_t *se, const fa_imap_arg_t *args,
    fa_uint_t nargs, const fa_str_t *charset, const char **why)
{
    fa_imap_kparse_t  kp;

    memset(&kp, 0, sizeof(kp));
    kp.s = s;
    kp.se = se;
    kp.charset = charset;
    if (fa_array_init(&kp.slots, se->pool, 4, sizeof(fa_imap_skey_t *)) != FA_OK) {
        return FA_ERROR;
    }
    se->root = fa_imap_skey_list(&kp, args, nargs);
    if (se->root == NULL) {
        *why = kp.why;
        return kp.why ? FA_DECLINED : FA_ERROR;
    }
    se->slots = kp.slots.elts;
    se->nslots = kp.slots.nelts;
    se->md = pcre2_match_data_create(1, NULL);
    if (se->md == NULL
        || fa_pool_cleanup_add(se->pool, fa_imap_search_md_free, se->md) == NULL)
    {
        if (se->md) {
            pcre2_match_data_free(se->md);
        }
        return FA_ERROR;
    }
    return FA_OK;
}


/* ---- a message ---- */

static int
fa_imap_in_ranges(const fa_imap_skey_t *k, uint32_t n)
{
    fa_uint_t  lo = 0, hi = k->nranges;

    while (lo < hi) {
        fa_uint_t mid = lo + (hi - lo) / 2;
        if (n < k->ranges[mid].first) {
            hi = mid;
        } else if (n > k->ranges[mid].last) {
            lo = mid + 1;
        } else {
            return 1;
        }
    }
    return 0;
}

/* a field the metadata caches: FA_SK_UNKNOWN until the part tree is there */
static fa_uint_t
fa_imap_skey_envelope_eval(fa_imap_search_t *se, const fa_imap_skey_t *k, fa_imap_smsg_t *m)
{
    fa_mime_envelope_t  *env;
    const fa_str_t      *raw;

    if (m->root == NULL) {
        return FA_SK_UNKNOWN;
    }
    env = m->root->envelope;
    raw = env ? &env->raw[k->field] : NULL;
    if (raw == NULL || raw->data == NULL) {
        return FA_SK_FALSE;
    }
    if (k->re == NULL) {
        return FA_SK_TRUE;
    }
    if (!m->decoded[k->field]) {
        if (fa_mime_decode_header(m->pool, raw->data, raw->len, &m->dec[k->field]) != FA_OK) {
            m->dec[k->field] = *raw;
        }
        m->decoded[k->field] = 1;
    }
    return fa_imap_search_match(se, k, m->dec[k->field].data, m->dec[k->field].len);
}

static fa_uint_t
fa_imap_skey_sent_eval(const fa_imap_skey_t *k, fa_imap_smsg_t *m)
{
    fa_mime_envelope_t  *env;
    time_t               utc;

    if (m->root == NULL) {
        return FA_SK_UNKNOWN;
    }
    if (!m->sent_known) {
        env = m->root->envelope;
        m->sent_known = 1;
        m->sent_day = -1;
        if (env == NULL || env->raw[FA_MIME_ENV_DATE].data == NULL
            || fa_imap_date_parse(env->raw[FA_MIME_ENV_DATE].data,
                                  env->raw[FA_MIME_ENV_DATE].len, &utc, &m->sent_day) != FA_OK)
        {
            m->sent_day = INT64_MIN;
        }
    }
    if (m->sent_day == INT64_MIN) {
        return FA_SK_FALSE;
    }
    return k->type == FA_SK_SENTBEFORE ? m->sent_day < k->number
         : k->type == FA_SK_SENTON ? m->sent_day == k->number : m->sent_day >= k->number;
}

fa_uint_t
fa_imap_search_eval(fa_imap_search_t *se, const fa_imap_skey_t *k, fa_imap_smsg_t *m)
{
    const fa_message_meta_t  *meta = m->meta;
    fa_uint_t                 r, c;
    int64_t                   day;

    switch (k->type) {
    case FA_SK_ALL:
        return FA_SK_TRUE;
    case FA_SK_NONE:
        return FA_SK_FALSE;
    case FA_SK_AND:
    case FA_SK_OR:
        /* AND: false wins, OR: true wins; else unknown if any is */
        r = k->type == FA_SK_AND ? FA_SK_TRUE : FA_SK_FALSE;
        for (const fa_imap_skey_t *op = k->child; op; op = op->next) {
            c = fa_imap_search_eval(se, op, m);
            if (c == FA_SK_UNKNOWN) {
                r = FA_SK_UNKNOWN;
            } else if (c != (k->type == FA_SK_AND)) {
                return c;
            }
        }
        return r;
    case FA_SK_NOT:
        c = fa_imap_search_eval(se, k->child, m);
        return c == FA_SK_UNKNOWN ? c : !c;
    case FA_SK_SEQ:
        return fa_imap_in_ranges(k, m->msn);
    case FA_SK_UID:
        return fa_imap_in_ranges(k, meta->uid);
    case FA_SK_FLAG:
        return !!(meta->flags & k->flag) == k->set;
    case FA_SK_KEYWORD:
        return (k->flag < 64 && (meta->keywords >> k->flag) & 1) == k->set;
    case FA_SK_BEFORE:
    case FA_SK_ON:
    case FA_SK_SINCE:
        day = fa_imap_day_of(meta->internal_date);
        return k->type == FA_SK_BEFORE ? day < k->number
             : k->type == FA_SK_ON ? day == k->number : day >= k->number;
    case FA_SK_SENTBEFORE:
    case FA_SK_SENTON:
    case FA_SK_SENTSINCE:
        return fa_imap_skey_sent_eval(k, m);
    case FA_SK_LARGER:
        return meta->size > (uint64_t) k->number;
    case FA_SK_SMALLER:
        return meta->size < (uint64_t) k->number;
    case FA_SK_MODSEQ:
        return meta->modseq >= (uint64_t) k->number;
    case FA_SK_ENVELOPE:
        return fa_imap_skey_envelope_eval(se, k, m);
    case FA_SK_HEADER:
    case FA_SK_BODY:
    case FA_SK_TEXT:
        return m->res[k->slot];
    }
    return FA_SK_FALSE;
}
