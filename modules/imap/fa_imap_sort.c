/*
 * SORT and UID SORT (RFC 5256 3), with DISPLAYFROM and DISPLAYTO (RFC
 * 5957), and what SEARCH and THREAD share with it: dates (IMAP's
 * "1-Feb-1994" and RFC 5322's, read leniently), sent dates (RFC 5256 2.2)
 * and base subjects (2.1).
 *
 *   SORT (REVERSE DATE SUBJECT) UTF-8 SINCE 1-Jan-2024
 *   * SORT 5 3 4
 *
 * The search engine finds the messages and hands over the header fields
 * the criteria need, all from the cached metadata; each message's keys are
 * kept (strings already case-mapped), then sorted at once.  Strings
 * compare with i;ascii-casemap, as RFC 5256 asks; a missing field is the
 * empty string; ties go by sequence number.
 *
 *   ARRIVAL       the internal date
 *   DATE          the Date field in UTC, else the internal date
 *   SIZE          RFC822.SIZE
 *   SUBJECT       the base subject
 *   FROM, TO, CC  the local part of the first address
 *   DISPLAYFROM, DISPLAYTO   the first address's display name, decoded,
 *                 or else its address
 */

#include "fa_imap_int.h"
#include "fa_mime.h"
#include <ctype.h>

#define FA_IMAP_SORT_CRITERIA  16

enum {
    FA_SORT_ARRIVAL = 0, FA_SORT_DATE, FA_SORT_SIZE, FA_SORT_SUBJECT, FA_SORT_FROM,
    FA_SORT_TO, FA_SORT_CC, FA_SORT_DISPLAYFROM, FA_SORT_DISPLAYTO, FA_SORT_N
};

static const struct {
    const char  *name;
    fa_uint_t    hdr;              /* the field it needs, FA_IMAP_HDR_N: none */
} fa_imap_sort_keys[FA_SORT_N] = {
    { "ARRIVAL", FA_IMAP_HDR_N }, { "DATE", FA_IMAP_HDR_DATE }, { "SIZE", FA_IMAP_HDR_N },
    { "SUBJECT", FA_IMAP_HDR_SUBJECT }, { "FROM", FA_IMAP_HDR_FROM },
    { "TO", FA_IMAP_HDR_TO }, { "CC", FA_IMAP_HDR_CC },
    { "DISPLAYFROM", FA_IMAP_HDR_FROM }, { "DISPLAYTO", FA_IMAP_HDR_TO }
};

typedef struct {
    fa_uint_t   key;               /* FA_SORT_* */
    unsigned    reverse:1;
    fa_uint_t   slot;              /* string keys: the item's str[slot] */
} fa_imap_sort_crit_t;

typedef struct {
    uint32_t    msn;
    uint32_t    n;                 /* what is written: the MSN or the UID */
    time_t      arrival;           /* the internal date */
    time_t      date;              /* the sent date */
    uint64_t    size;
    fa_str_t    str[];             /* the string keys, case-mapped */
} fa_imap_sort_item_t;

typedef struct {
    fa_imap_search_t     *se;
    fa_imap_sort_crit_t   crit[FA_IMAP_SORT_CRITERIA];
    fa_uint_t             ncrit, nstr;
    size_t                item_size;
    u_char               *items;       /* malloc'd */
    fa_uint_t             n, size;
    uint32_t             *nums;        /* malloc'd: the answer */
    fa_uint_t             i;
    unsigned              head:1;
} fa_imap_sort_cmd_t;


static const char  fa_imap_months[] = "janfebmaraprmayjunjulaugsepoctnovdec";

/* ---- dates ---- */

/* days since 1970-01-01 of a proleptic Gregorian date (Hinnant's algorithm) */
static int64_t
fa_imap_days(int64_t y, unsigned m, unsigned d)
{
    int64_t   era;
    unsigned  yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t) doe - 719468;
}

static int
fa_imap_month(const u_char *p, size_t n)
{
    char  m[4];

    if (n < 3) {
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        m[i] = (char) tolower(p[i]);
    }
    m[3] = '\0';
    const char *f = strstr(fa_imap_months, m);
    return f && (f - fa_imap_months) % 3 == 0 ? (int) ((f - fa_imap_months) / 3) + 1 : 0;
}

/* IMAP's date: "1-Feb-1994" (day 1 or 2 digits) */
fa_int_t
fa_imap_date_day(const fa_str_t *s, int64_t *day)
{
    const u_char  *p = s->data, *end = s->data + s->len;
    unsigned       d = 0, y = 0, nd = 0;
    int            m;

    while (p < end && isdigit(*p) && nd < 2) {
        d = d * 10 + (unsigned) (*p++ - '0');
        nd++;
    }
    if (nd == 0 || end - p != 9 || p[0] != '-' || p[4] != '-') {
        return FA_DECLINED;
    }
    m = fa_imap_month(p + 1, 3);
    for (int i = 5; i < 9; i++) {
        if (!isdigit(p[i])) {
            return FA_DECLINED;
        }
        y = y * 10 + (unsigned) (p[i] - '0');
    }
    if (m == 0 || d < 1 || d > 31) {
        return FA_DECLINED;
    }
    *day = fa_imap_days(y, (unsigned) m, d);
    return FA_OK;
}

static const u_char *
fa_imap_date_skip(const u_char *p, const u_char *end)
{
    fa_uint_t  depth = 0;

    for ( ; p < end; p++) {
        if (*p == '(') {
            depth++;
        } else if (*p == ')' && depth) {
            depth--;
        } else if (depth == 0 && *p != ' ' && *p != '\t' && *p != ',' && *p != '\r'
                   && *p != '\n')
        {
            break;
        }
    }
    return p;
}

static const u_char *
fa_imap_date_number(const u_char *p, const u_char *end, int *v, fa_uint_t max_digits)
{
    fa_uint_t  n = 0;

    *v = 0;
    while (p < end && isdigit(*p) && n < max_digits) {
        *v = *v * 10 + (*p++ - '0');
        n++;
    }
    return n ? p : NULL;
}

/* the zone: +hhmm / -hhmm, or an RFC 5322 obsolete name; minutes east of UTC */
static int
fa_imap_date_zone(const u_char *p, const u_char *end)
{
    static const struct { const char *name; int minutes; } names[] = {
        { "UT", 0 }, { "UTC", 0 }, { "GMT", 0 }, { "Z", 0 },
        { "EST", -300 }, { "EDT", -240 }, { "CST", -360 }, { "CDT", -300 },
        { "MST", -420 }, { "MDT", -360 }, { "PST", -480 }, { "PDT", -420 }
    };
    size_t  n = 0;
    int     hhmm;

    if (p < end && (*p == '+' || *p == '-')) {
        if (fa_imap_date_number(p + 1, end, &hhmm, 4) != p + 5) {
            return 0;
        }
        return (*p == '-' ? -1 : 1) * ((hhmm / 100) * 60 + hhmm % 100);
    }
    while (p + n < end && isalpha(p[n])) {
        n++;
    }
    for (size_t i = 0; i < fa_nelems(names); i++) {
        if (strlen(names[i].name) == n && strncasecmp((char *) p, names[i].name, n) == 0) {
            return names[i].minutes;
        }
    }
    return 0;                               /* military zones and junk: UTC */
}

fa_int_t
fa_imap_date_parse(const u_char *p, size_t len, time_t *utc, int64_t *day)
{
    const u_char  *end = p + len, *q;
    int            d, y, m, hh = 0, mm = 0, ss = 0, zone = 0;

    p = fa_imap_date_skip(p, end);
    if (p < end && isalpha(*p)) {              /* the day of the week */
        while (p < end && isalpha(*p)) {
            p++;
        }
        p = fa_imap_date_skip(p, end);
    }
    if ((p = fa_imap_date_number(p, end, &d, 2)) == NULL) {
        return FA_DECLINED;
    }
    p = fa_imap_date_skip(p, end);
    if (p < end && *p == '-') {                /* "1-Feb-1994" as some write it */
        p++;
    }
    if ((m = fa_imap_month(p, (size_t) (end - p))) == 0) {
        return FA_DECLINED;
    }
    while (p < end && isalpha(*p)) {
        p++;
    }
    p = fa_imap_date_skip(p, end);
    if (p < end && *p == '-') {
        p++;
    }
    q = p;
    if ((p = fa_imap_date_number(p, end, &y, 4)) == NULL) {
        return FA_DECLINED;
    }
    if (p - q <= 2) {
        y += y < 50 ? 2000 : 1900;             /* RFC 5322 4.3 */
    } else if (p - q == 3) {
        y += 1900;
    }
    p = fa_imap_date_skip(p, end);
    if ((q = fa_imap_date_number(p, end, &hh, 2)) && q < end && *q == ':'
        && (q = fa_imap_date_number(q + 1, end, &mm, 2)))
    {
        p = q;
        if (p < end && *p == ':' && (q = fa_imap_date_number(p + 1, end, &ss, 2))) {
            p = q;
        }
        zone = fa_imap_date_zone(fa_imap_date_skip(p, end), end);
    }
    if (d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60) {
        return FA_DECLINED;
    }
    *day = fa_imap_days(y, (unsigned) m, (unsigned) d);
    *utc = (time_t) (*day * 86400 + hh * 3600 + mm * 60 + ss - zone * 60);
    return FA_OK;
}


/* ---- shared with THREAD ---- */

int
fa_imap_casemap_cmp(const fa_str_t *a, const fa_str_t *b)
{
    size_t  n = fa_min(a->len, b->len);

    for (size_t i = 0; i < n; i++) {
        int x = a->data[i], y = b->data[i];
        x = x >= 'A' && x <= 'Z' ? x + 32 : x;
        y = y >= 'A' && y <= 'Z' ? y + 32 : y;
        if (x != y) {
            return x - y;
        }
    }
    return a->len < b->len ? -1 : a->len > b->len;
}

time_t
fa_imap_sent_date(const fa_imap_search_hit_t *hit)
{
    const fa_str_t  *raw = &hit->hdr[FA_IMAP_HDR_DATE];
    time_t           t;
    int64_t          day;

    if (raw->data && fa_imap_date_parse(raw->data, raw->len, &t, &day) == FA_OK) {
        return t;
    }
    return hit->meta->internal_date;
}

/* subj-blob: "[" *BLOBCHAR "]" *WSP; the end, or NULL */
static const u_char *
fa_imap_subj_blob(const u_char *p, const u_char *end)
{
    if (p == end || *p != '[') {
        return NULL;
    }
    for (p++; p < end && *p != '[' && *p != ']'; p++) {
        /* void */
    }
    if (p == end || *p != ']') {
        return NULL;
    }
    for (p++; p < end && *p == ' '; p++) {
        /* void */
    }
    return p;
}

/* *subj-blob subj-refwd, subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" */
static const u_char *
fa_imap_subj_refwd(const u_char *p, const u_char *end)
{
    const u_char  *q;

    while ((q = fa_imap_subj_blob(p, end)) != NULL) {
        p = q;
    }
    if (end - p >= 2 && strncasecmp((char *) p, "re", 2) == 0) {
        p += 2;
    } else if (end - p >= 2 && strncasecmp((char *) p, "fw", 2) == 0) {
        p += 2;
        p += p < end && (*p | 0x20) == 'd';
    } else {
        return NULL;
    }
    while (p < end && *p == ' ') {
        p++;
    }
    if ((q = fa_imap_subj_blob(p, end)) != NULL) {
        p = q;
    }
    return p < end && *p == ':' ? p + 1 : NULL;
}

/* steps 3 to 5: leaders, then a blob that is not all there is, again */
static const u_char *
fa_imap_subj_leaders(const u_char *p, const u_char *end, int *reply)
{
    const u_char  *q;

    for ( ;; ) {
        if (p < end && *p == ' ') {
            p++;
            continue;
        }
        if ((q = fa_imap_subj_refwd(p, end)) != NULL) {
            p = q;
            *reply = 1;
            continue;
        }
        q = fa_imap_subj_blob(p, end);
        if (q == NULL || q == end) {
            return p;
        }
        p = q;                                      /* something is left after it */
    }
}

fa_int_t
fa_imap_base_subject(fa_pool_t *pool, const fa_str_t *raw, fa_str_t *out, int *reply)
{
    fa_str_t       dec;
    u_char        *b;
    const u_char  *p, *end;
    size_t         n = 0;

    *reply = 0;
    out->data = (u_char *) "";
    out->len = 0;
    if (raw->data == NULL) {
        return FA_OK;
    }
    if (fa_mime_decode_header(pool, raw->data, raw->len, &dec) != FA_OK
        || (b = fa_pnalloc(pool, dec.len + 1)) == NULL)
    {
        return FA_ERROR;
    }
    /* 1: white space as single spaces */
    for (size_t i = 0; i < dec.len; i++) {
        u_char c = dec.data[i] == '\t' || dec.data[i] == '\r' || dec.data[i] == '\n'
                   ? ' ' : dec.data[i];
        if (c != ' ' || n == 0 || b[n - 1] != ' ') {
            b[n++] = c;
        }
    }
    p = b;
    end = b + n;
    for ( ;; ) {
        /* 2: trailers, "(fwd)" or white space */
        for ( ;; ) {
            if (end > p && end[-1] == ' ') {
                end--;
            } else if (end - p >= 5 && strncasecmp((char *) end - 5, "(fwd)", 5) == 0) {
                end -= 5;
                *reply = 1;
            } else {
                break;
            }
        }
        p = fa_imap_subj_leaders(p, end, reply);
        /* 6: "[fwd: ... ]" */
        if (end - p >= 6 && strncasecmp((char *) p, "[fwd:", 5) == 0 && end[-1] == ']') {
            p += 5;
            end--;
            *reply = 1;
            continue;
        }
        break;
    }
    out->data = (u_char *) p;
    out->len = (size_t) (end - p);
    return FA_OK;
}


/* ---- the keys of one message ---- */

static fa_int_t
fa_imap_sort_copy(fa_imap_session_t *s, fa_str_t *dst, const u_char *p, size_t n)
{
    dst->data = fa_pnalloc(s->cmd->pool, n ? n : 1);
    if (dst->data == NULL) {
        return FA_ERROR;
    }
    fa_strlow(dst->data, p, n);
    dst->len = n;
    return FA_OK;
}

/* FROM, TO, CC: the first mailbox's local part; DISPLAY*: its name or address */
static fa_int_t
fa_imap_sort_address(fa_imap_session_t *s, fa_imap_search_hit_t *hit, fa_uint_t key,
    fa_str_t *dst)
{
    const fa_str_t     *raw = &hit->hdr[fa_imap_sort_keys[key].hdr];
    fa_mime_address_t  *a = NULL;
    fa_str_t            name;
    u_char             *p;

    if (raw->data) {
        a = fa_mime_address_parse(hit->pool, raw->data, raw->len);
    }
    while (a && a->host.data == NULL) {
        a = a->next;                                /* group markers */
    }
    if (a == NULL) {
        return fa_imap_sort_copy(s, dst, (u_char *) "", 0);
    }
    if (key != FA_SORT_DISPLAYFROM && key != FA_SORT_DISPLAYTO) {
        return fa_imap_sort_copy(s, dst, a->mailbox.data, a->mailbox.len);
    }
    if (a->name.len && fa_mime_decode_header(hit->pool, a->name.data, a->name.len, &name)
                       == FA_OK && name.len)
    {
        return fa_imap_sort_copy(s, dst, name.data, name.len);
    }
    p = fa_pnalloc(hit->pool, a->mailbox.len + a->host.len + 1);
    if (p == NULL) {
        return FA_ERROR;
    }
    memcpy(p, a->mailbox.data, a->mailbox.len);
    p[a->mailbox.len] = '@';
    memcpy(p + a->mailbox.len + 1, a->host.data, a->host.len);
    return fa_imap_sort_copy(s, dst, p, a->mailbox.len + a->host.len + 1);
}

static fa_int_t
fa_imap_sort_hit(fa_imap_session_t *s, fa_imap_search_hit_t *hit)
{
    fa_imap_sort_cmd_t   *so = s->cmd->data;
    fa_imap_sort_item_t  *it;
    fa_str_t              subject;
    int                   reply;

    if (so->n == so->size) {
        fa_uint_t size = so->size ? so->size * 2 : 256;
        u_char *items = realloc(so->items, size * so->item_size);
        if (items == NULL) {
            return FA_ERROR;
        }
        so->items = items;
        so->size = size;
    }
    it = (fa_imap_sort_item_t *) (so->items + so->n++ * so->item_size);
    it->msn = hit->msn;
    it->n = s->cmd->parsed.uid ? hit->meta->uid : hit->msn;
    it->arrival = hit->meta->internal_date;
    it->date = fa_imap_sent_date(hit);
    it->size = hit->meta->size;
    for (fa_uint_t c = 0; c < so->ncrit; c++) {
        fa_imap_sort_crit_t *cr = &so->crit[c];
        fa_int_t rc = FA_OK;
        switch (cr->key) {
        case FA_SORT_SUBJECT:
            rc = fa_imap_base_subject(hit->pool, &hit->hdr[FA_IMAP_HDR_SUBJECT], &subject,
                                      &reply);
            rc = rc ? rc : fa_imap_sort_copy(s, &it->str[cr->slot], subject.data, subject.len);
            break;
        case FA_SORT_FROM: case FA_SORT_TO: case FA_SORT_CC:
        case FA_SORT_DISPLAYFROM: case FA_SORT_DISPLAYTO:
            rc = fa_imap_sort_address(s, hit, cr->key, &it->str[cr->slot]);
            break;
        default:
            break;
        }
        if (rc != FA_OK) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}


/* ---- sorting and the answer ---- */

static int
fa_imap_sort_cmp(const void *x, const void *y, void *data)
{
    const fa_imap_sort_item_t  *a = x, *b = y;
    fa_imap_sort_cmd_t         *so = data;
    int                         r = 0;

    for (fa_uint_t c = 0; c < so->ncrit && r == 0; c++) {
        const fa_imap_sort_crit_t *cr = &so->crit[c];
        switch (cr->key) {
        case FA_SORT_ARRIVAL:
            r = (a->arrival > b->arrival) - (a->arrival < b->arrival);
            break;
        case FA_SORT_DATE:
            r = (a->date > b->date) - (a->date < b->date);
            break;
        case FA_SORT_SIZE:
            r = (a->size > b->size) - (a->size < b->size);
            break;
        default:
            r = fa_imap_casemap_cmp(&a->str[cr->slot], &b->str[cr->slot]);
            break;
        }
        r = cr->reverse ? -r : r;
    }
    return r ? r : (a->msn > b->msn) - (a->msn < b->msn);
}

static fa_int_t
fa_imap_sort_output(fa_imap_session_t *s)
{
    fa_imap_sort_cmd_t  *so = s->cmd->data;
    fa_int_t             rc;

    if (!so->head) {
        so->head = 1;
        if (fa_imap_write(s, "* SORT", 6) == FA_ERROR) {
            return FA_ERROR;
        }
    }
    rc = fa_imap_write_numbers(s, so->nums, so->n, &so->i, 0);
    if (rc == FA_AGAIN) {
        fa_imap_wait_drain(s, fa_imap_sort_output);
        return FA_AGAIN;
    }
    if (rc != FA_OK) {
        return rc;
    }
    fa_imap_write(s, "\r\n", 2);
    return fa_imap_tagged(s, "OK", "%sSORT completed", s->cmd->parsed.uid ? "UID " : "");
}

static fa_int_t
fa_imap_sort_end(fa_imap_session_t *s)
{
    fa_imap_sort_cmd_t  *so = s->cmd->data;

    if (so->n) {
        qsort_r(so->items, so->n, so->item_size, fa_imap_sort_cmp, so);
        so->nums = malloc(so->n * sizeof(uint32_t));
        if (so->nums == NULL) {
            return fa_imap_storage_no(s, FA_ERROR, "SORT");
        }
        for (fa_uint_t i = 0; i < so->n; i++) {
            so->nums[i] = ((fa_imap_sort_item_t *) (so->items + i * so->item_size))->n;
        }
    }
    return fa_imap_sort_output(s);
}

static void
fa_imap_sort_cleanup(void *data)
{
    fa_imap_sort_cmd_t  *so = data;

    free(so->items);
    free(so->nums);
}

/* "(REVERSE DATE SUBJECT)": FA_DECLINED when malformed; *want: the fields needed */
static fa_int_t
fa_imap_sort_criteria(fa_imap_sort_cmd_t *so, const fa_imap_arg_t *list, fa_uint_t *want)
{
    unsigned   reverse = 0;
    fa_uint_t  k;

    if (list->type != FA_IMAP_ARG_LIST || list->n == 0) {
        return FA_DECLINED;
    }
    for (fa_uint_t i = 0; i < list->n; i++) {
        if (fa_imap_arg_is(&list->list[i], "REVERSE")) {
            if (reverse) {
                return FA_DECLINED;
            }
            reverse = 1;
            continue;
        }
        for (k = 0; k < FA_SORT_N; k++) {
            if (fa_imap_arg_is(&list->list[i], fa_imap_sort_keys[k].name)) {
                break;
            }
        }
        if (k == FA_SORT_N || so->ncrit == FA_IMAP_SORT_CRITERIA) {
            return FA_DECLINED;
        }
        so->crit[so->ncrit].key = k;
        so->crit[so->ncrit].reverse = reverse;
        so->crit[so->ncrit].slot = so->nstr;
        so->nstr += k >= FA_SORT_SUBJECT;
        so->ncrit++;
        reverse = 0;
        if (fa_imap_sort_keys[k].hdr != FA_IMAP_HDR_N) {
            *want |= 1u << fa_imap_sort_keys[k].hdr;
        }
    }
    return reverse ? FA_DECLINED : FA_OK;
}

static fa_int_t
fa_imap_sort_go(fa_imap_session_t *s)
{
    fa_imap_cmd_t       *cmd = s->cmd;
    fa_imap_sort_cmd_t  *so = fa_pcalloc(cmd->pool, sizeof(*so));
    fa_uint_t            want = 1u << FA_IMAP_HDR_DATE;
    fa_int_t             rc;

    if (so == NULL || fa_pool_cleanup_add(cmd->pool, fa_imap_sort_cleanup, so) == NULL) {
        return FA_ERROR;
    }
    cmd->data = so;
    if (cmd->parsed.nargs < 3
        || fa_imap_sort_criteria(so, &cmd->parsed.args[0], &want) != FA_OK)
    {
        return fa_imap_bad(s, "Syntax: SORT (criteria) charset search-keys");
    }
    so->item_size = fa_align(sizeof(fa_imap_sort_item_t) + so->nstr * sizeof(fa_str_t),
                             sizeof(void *));
    rc = fa_imap_search_parse(s, cmd, cmd->parsed.args + 1, cmd->parsed.nargs - 1, 1,
                              &so->se);
    if (rc != FA_OK) {
        return rc == FA_DECLINED ? FA_OK : rc;
    }
    return fa_imap_search_run(s, so->se, want, fa_imap_sort_hit, fa_imap_sort_end);
}

fa_int_t
fa_imap_sort(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_int_t  rc;

    if (cmd->parsed.uid) {
        rc = fa_imap_view_update(s, 1, fa_imap_sort_go);
        if (rc == FA_AGAIN) {
            return FA_AGAIN;
        }
    }
    return fa_imap_sort_go(s);
}
