/*
 * A message's text for SEARCH: its header fields, and the bodies of its
 * text parts decoded from their transfer encoding and charset to UTF-8,
 * matched against the keys that still need them.
 *
 * The part table (offsets, encodings, charsets) cuts the raw message into
 * segments, read in order in chunks: the message's header (HEADER of an
 * uncached field, TEXT, the fields SORT or THREAD want), each attached
 * message's header (BODY and TEXT), each body part's MIME header (TEXT),
 * and each text part's body (BODY and TEXT).  A text part is any text type, a
 * message type that is not an attached message (delivery reports), a part
 * with an unusable Content-Type, or a container left opaque.  Other parts
 * (images, archives, PDF) are not searched.
 *
 * Memory is bounded whatever the message: a header field is unfolded into
 * at most FA_IMAP_SEARCH_FIELD_MAX bytes (the rest of a longer one is not
 * searched), and a body goes through fixed buffers: a chunk, the transfer-
 * decoded bytes, and a window of decoded text.  Each full window is
 * matched, then its last se->overlap bytes (the longest match a key can
 * make, at 4 bytes a character) stay for the next one, so a match across
 * two chunks is found.  Bytes a charset cannot convert become U+FFFD; a
 * charset iconv does not know leaves the bytes as they are.
 */

#include "fa_imap_search.h"
#include <ctype.h>

static const u_char  fa_imap_replacement[] = { 0xef, 0xbf, 0xbd };    /* U+FFFD */

static int
fa_imap_search_name_eq(const fa_str_t *a, const fa_str_t *b)
{
    return a->len == b->len && strncasecmp((char *) a->data, (char *) b->data, a->len) == 0;
}


/* ---- segments ---- */

static int
fa_imap_search_textual(const fa_mime_part_t *p)
{
    if (p->flags & (FA_MIME_BAD_TYPE | FA_MIME_OPAQUE)) {
        return 1;
    }
    if (fa_str_casecmp(&p->type, "text") == 0) {
        return 1;
    }
    return fa_str_casecmp(&p->type, "message") == 0 && !(p->flags & FA_MIME_MESSAGE);
}

static fa_uint_t
fa_imap_search_cte(const fa_mime_part_t *p)
{
    if (p->encoding.data == NULL || p->flags & FA_MIME_OPAQUE) {
        return FA_SCTE_NONE;
    }
    if (fa_str_casecmp(&p->encoding, "base64") == 0) {
        return FA_SCTE_BASE64;
    }
    return fa_str_casecmp(&p->encoding, "quoted-printable") == 0 ? FA_SCTE_QP : FA_SCTE_NONE;
}

static void
fa_imap_search_seg_add(fa_imap_search_t *se, fa_uint_t kind, uint64_t start, uint64_t end,
    const fa_mime_part_t *p)
{
    fa_imap_sseg_t          *seg = &se->segs[se->nsegs];
    const fa_mime_param_t   *cs;

    if (end <= start) {
        return;
    }
    memset(seg, 0, sizeof(*seg));
    seg->kind = kind;
    seg->start = start;
    seg->end = end;
    if (kind == FA_SSEG_BODY) {
        seg->cte = fa_imap_search_cte(p);
        cs = fa_mime_param_find(p->params, p->nparams, "charset");
        if (cs && cs->value.data && !(p->flags & FA_MIME_OPAQUE)) {
            seg->charset = cs->value;
        }
    }
    se->nsegs++;
}

/* the message cut into segments, in message order (a pre-order walk) */
fa_int_t
fa_imap_search_segments(fa_imap_search_t *se, fa_imap_smsg_t *m)
{
    const fa_mime_part_t  *p;
    fa_uint_t              n = 0, kind;

    for (p = m->root; p; ) {
        n++;
        if (p->children) {
            p = p->children;
            continue;
        }
        while (p && p->next == NULL) {
            p = p->parent;
        }
        p = p ? p->next : NULL;
    }
    se->segs = fa_palloc(m->pool, 2 * n * sizeof(fa_imap_sseg_t));
    if (se->segs == NULL) {
        return FA_ERROR;
    }
    se->nsegs = 0;
    se->seg = 0;
    for (p = m->root; p; ) {
        kind = p == m->root ? FA_SSEG_TOP
             : p->parent->flags & FA_MIME_MESSAGE ? FA_SSEG_MESSAGE : FA_SSEG_MIME;
        fa_imap_search_seg_add(se, kind, p->header_start, p->body_start, p);
        if (p->children) {
            p = p->children;
            continue;
        }
        if (fa_imap_search_textual(p)) {
            fa_imap_search_seg_add(se, FA_SSEG_BODY, p->body_start, p->body_end, p);
        }
        while (p && p->next == NULL) {
            p = p->parent;
        }
        p = p ? p->next : NULL;
    }
    return FA_OK;
}

/* does a key that is still unknown need this segment? */
int
fa_imap_search_seg_needed(fa_imap_search_t *se, const fa_imap_sseg_t *seg)
{
    fa_imap_smsg_t  *m = &se->msg;
    fa_uint_t        need = 0;

    if (seg->kind == FA_SSEG_TOP && m->want_raw) {
        return 1;
    }
    for (fa_uint_t i = 0; i < se->nslots; i++) {
        if (m->res[i] != FA_SK_UNKNOWN) {
            continue;
        }
        switch (se->slots[i]->type) {
        case FA_SK_HEADER:
            need |= FA_SSEG_TOP;
            break;
        case FA_SK_BODY:
            need |= FA_SSEG_MESSAGE | FA_SSEG_BODY;
            break;
        default:
            need |= FA_SSEG_TOP | FA_SSEG_MESSAGE | FA_SSEG_MIME | FA_SSEG_BODY;
            break;
        }
    }
    return (need & seg->kind) != 0;
}


/* ---- header fields ---- */

static void
fa_imap_search_field_match(fa_imap_search_t *se, const fa_imap_sseg_t *seg,
    const fa_str_t *name, const fa_str_t *value)
{
    fa_imap_smsg_t  *m = &se->msg;
    fa_str_t         dec = fa_null_string, line = fa_null_string;
    u_char          *p;

    for (fa_uint_t i = 0; i < se->nslots; i++) {
        const fa_imap_skey_t *k = se->slots[i];
        if (m->res[i] != FA_SK_UNKNOWN
            || (k->type == FA_SK_HEADER && (seg->kind != FA_SSEG_TOP
                                            || !fa_imap_search_name_eq(&k->name, name)))
            || (k->type == FA_SK_BODY && seg->kind != FA_SSEG_MESSAGE))
        {
            continue;
        }
        if (dec.data == NULL
            && fa_mime_decode_header(se->scratch, value->data, value->len, &dec) != FA_OK)
        {
            dec = *value;
        }
        if (k->type == FA_SK_HEADER) {
            if (fa_imap_search_match(se, k, dec.data, dec.len)) {
                m->res[i] = FA_SK_TRUE;
            }
            continue;
        }
        /* BODY and TEXT see the field as it is written, decoded */
        if (line.data == NULL) {
            p = fa_pnalloc(se->scratch, name->len + 2 + dec.len);
            if (p == NULL) {
                return;
            }
            line.data = p;
            p = (u_char *) memcpy(p, name->data, name->len) + name->len;
            *p++ = ':';
            *p++ = ' ';
            memcpy(p, dec.data, dec.len);
            line.len = name->len + 2 + dec.len;
        }
        if (fa_imap_search_match(se, k, line.data, line.len)) {
            m->res[i] = FA_SK_TRUE;
        }
    }
}

/* the wanted fields the metadata does not cache (References) */
static void
fa_imap_search_field_want(fa_imap_search_t *se, const fa_str_t *name, const fa_str_t *value)
{
    fa_imap_smsg_t  *m = &se->msg;
    fa_str_t        *h = &m->hdr[FA_IMAP_HDR_REFERENCES];

    if ((se->want & (1 << FA_IMAP_HDR_REFERENCES)) && h->data == NULL && m->pool
        && fa_str_eqi(name, "references"))
    {
        h->data = fa_pnalloc(m->pool, value->len + 1);
        if (h->data) {
            memcpy(h->data, value->data, value->len);
            h->len = value->len;
        }
    }
}

/* the unfolded field in se->field is complete */
static void
fa_imap_search_field_end(fa_imap_search_t *se, const fa_imap_sseg_t *seg)
{
    u_char    *p = se->field, *end = se->field + se->field_len, *colon;
    fa_str_t   name, value;

    if (!se->field_open) {
        return;
    }
    se->field_open = 0;
    colon = memchr(p, ':', se->field_len);
    if (colon == NULL) {
        return;
    }
    name.data = p;
    name.len = (size_t) (colon - p);
    while (name.len && (p[name.len - 1] == ' ' || p[name.len - 1] == '\t')) {
        name.len--;
    }
    for (p = colon + 1; p < end && (*p == ' ' || *p == '\t'); p++) {
        /* void */
    }
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    value.data = p;
    value.len = (size_t) (end - p);
    if (seg->kind == FA_SSEG_TOP) {
        fa_imap_search_field_want(se, &name, &value);
    }
    fa_imap_search_field_match(se, seg, &name, &value);
    fa_pool_reset(se->scratch);
}

static void
fa_imap_search_field_add(fa_imap_search_t *se, const u_char *p, size_t n)
{
    size_t  room = FA_IMAP_SEARCH_FIELD_MAX - se->field_len;

    /* CRs go: a field is unfolded, and lines end with LF or CRLF */
    for (const u_char *end = p + n; p < end && room; p++) {
        if (*p != '\r') {
            se->field[se->field_len++] = *p;
            room--;
        }
    }
}

static void
fa_imap_search_header_feed(fa_imap_search_t *se, const fa_imap_sseg_t *seg,
    const u_char *p, size_t n)
{
    const u_char  *end = p + n, *lf;

    while (p < end && !se->header_over) {
        if (se->bol) {
            if (*p == '\r') {
                p++;
                continue;
            }
            if (*p == '\n') {
                se->header_over = 1;            /* the blank line */
                break;
            }
            if (*p != ' ' && *p != '\t') {
                fa_imap_search_field_end(se, seg);
                se->field_open = 1;
                se->field_len = 0;
            }
            se->bol = 0;
        }
        lf = memchr(p, '\n', (size_t) (end - p));
        if (se->field_open) {
            fa_imap_search_field_add(se, p, (size_t) ((lf ? lf : end) - p));
        }
        if (lf == NULL) {
            break;
        }
        se->bol = 1;
        p = lf + 1;
    }
}


/* ---- the window of decoded text ---- */

static void
fa_imap_search_scan(fa_imap_search_t *se, int last)
{
    fa_imap_smsg_t  *m = &se->msg;
    size_t           keep, start;

    for (fa_uint_t i = 0; i < se->nslots; i++) {
        if (m->res[i] == FA_SK_UNKNOWN && se->slots[i]->type != FA_SK_HEADER
            && fa_imap_search_match(se, se->slots[i], se->win, se->win_len))
        {
            m->res[i] = FA_SK_TRUE;
        }
    }
    if (last) {
        se->win_len = 0;
        return;
    }
    keep = fa_min(se->win_len, se->overlap);
    start = se->win_len - keep;
    while (start > 0 && (se->win[start] & 0xc0) == 0x80) {
        start--;                                /* from the start of a character */
    }
    memmove(se->win, se->win + start, se->win_len - start);
    se->win_len -= start;
}

static void
fa_imap_search_window_add(fa_imap_search_t *se, const u_char *p, size_t n)
{
    size_t  room;

    while (n) {
        room = se->win_size - se->win_len;
        if (room == 0) {
            fa_imap_search_scan(se, 0);
            continue;
        }
        room = fa_min(room, n);
        memcpy(se->win + se->win_len, p, room);
        se->win_len += room;
        p += room;
        n -= room;
    }
}


/* ---- charsets ---- */

static int
fa_imap_search_native(const char *name)
{
    return strcasecmp(name, "utf-8") == 0 || strcasecmp(name, "utf8") == 0
           || strcasecmp(name, "us-ascii") == 0 || strcasecmp(name, "ascii") == 0;
}

/* se->cd for a part's charset: the last one is kept open for the next part */
static void
fa_imap_search_charset(fa_imap_search_t *se, const fa_str_t *cs)
{
    char  name[sizeof(se->cd_name)];

    se->cd = (iconv_t) -1;
    if (cs->len == 0 || cs->len >= sizeof(name)) {
        return;
    }
    for (size_t i = 0; i < cs->len; i++) {
        u_char c = cs->data[i];
        if (!(isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':' || c == '+')) {
            return;
        }
        name[i] = (char) c;
    }
    name[cs->len] = '\0';
    if (fa_imap_search_native(name)) {
        return;
    }
    if (strcasecmp(name, se->cd_name) != 0) {
        if (se->cd_cache != (iconv_t) -1) {
            iconv_close(se->cd_cache);
        }
        memcpy(se->cd_name, name, cs->len + 1);
        se->cd_cache = iconv_open("UTF-8", name);     /* -1: unknown, bytes as they are */
    }
    se->cd = se->cd_cache;
    if (se->cd != (iconv_t) -1) {
        (void) iconv(se->cd, NULL, NULL, NULL, NULL);
    }
}

/* se->mid into the window; an incomplete character at the end waits for more */
static void
fa_imap_search_convert(fa_imap_search_t *se, int last)
{
    char    *in = (char *) se->mid, *out;
    size_t   inleft = se->mid_len, outleft, r;

    if (se->cd == (iconv_t) -1) {
        fa_imap_search_window_add(se, se->mid, se->mid_len);
        se->mid_len = 0;
        return;
    }
    while (inleft) {
        if (se->win_size - se->win_len < 16) {
            fa_imap_search_scan(se, 0);
        }
        out = (char *) se->win + se->win_len;
        outleft = se->win_size - se->win_len;
        r = iconv(se->cd, &in, &inleft, &out, &outleft);
        se->win_len = se->win_size - outleft;
        if (r != (size_t) -1) {
            break;
        }
        if (errno == E2BIG) {
            fa_imap_search_scan(se, 0);
            continue;
        }
        if (errno == EINVAL && !last && inleft < 16) {
            break;                               /* the rest comes with the next chunk */
        }
        fa_imap_search_window_add(se, fa_imap_replacement, sizeof(fa_imap_replacement));
        in++;
        inleft--;
    }
    memmove(se->mid, in, inleft);
    se->mid_len = inleft;
}


/* ---- transfer encodings ---- */

static int
fa_imap_search_b64_value(u_char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static void
fa_imap_search_base64(fa_imap_search_t *se, const u_char *p, size_t n)
{
    u_char  *out = se->mid + se->mid_len;
    int      v;

    for (size_t i = 0; i < n; i++) {
        if ((v = fa_imap_search_b64_value(p[i])) < 0) {
            continue;                           /* line breaks, padding, junk */
        }
        se->b64 = (se->b64 << 6) | (uint32_t) v;
        se->b64_bits += 6;
        if (se->b64_bits >= 8) {
            se->b64_bits -= 8;
            *out++ = (u_char) (se->b64 >> se->b64_bits);
        }
    }
    se->mid_len = (size_t) (out - se->mid);
}

static int
fa_imap_search_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* quoted-printable; an "=" cut by the chunk's end waits in se->qp */
static void
fa_imap_search_qp(fa_imap_search_t *se, const u_char *p, size_t n)
{
    u_char  *out = se->mid + se->mid_len;
    u_char   c;

    for (size_t i = 0; i < n; i++) {
        c = p[i];
        if (se->qp_len == 0) {
            if (c == '=') {
                se->qp[se->qp_len++] = c;
            } else {
                *out++ = c;
            }
            continue;
        }
        if (se->qp_len == 1) {
            if (c == '\n') {
                se->qp_len = 0;                 /* a soft line break */
            } else if (c == '\r' || fa_imap_search_hex(c) >= 0) {
                se->qp[se->qp_len++] = c;
            } else {
                *out++ = '=';                   /* not an escape: as it is */
                se->qp_len = 0;
                i--;
            }
            continue;
        }
        if (se->qp[1] == '\r') {
            se->qp_len = 0;                     /* "=\r\n" */
            if (c != '\n') {
                i--;
            }
            continue;
        }
        se->qp_len = 0;
        if (fa_imap_search_hex(c) >= 0) {
            *out++ = (u_char) (fa_imap_search_hex(se->qp[1]) << 4 | fa_imap_search_hex(c));
        } else {
            *out++ = '=';
            *out++ = se->qp[1];
            i--;
        }
    }
    se->mid_len = (size_t) (out - se->mid);
}


/* ---- a segment ---- */

static fa_int_t
fa_imap_search_buffers(fa_imap_search_t *se)
{
    if (se->field) {
        return FA_OK;
    }
    se->win_size = fa_max((size_t) FA_IMAP_SEARCH_WINDOW, 2 * se->overlap + 64);
    se->field = fa_palloc(se->pool, FA_IMAP_SEARCH_FIELD_MAX);
    se->mid = fa_palloc(se->pool, 2 * FA_IMAP_SEARCH_CHUNK + 64);
    se->win = fa_palloc(se->pool, se->win_size);
    se->scratch = fa_pool_create(4096, se->s->c->log);
    if (se->field == NULL || se->mid == NULL || se->win == NULL || se->scratch == NULL) {
        se->field = NULL;
        return FA_ERROR;
    }
    return FA_OK;
}

fa_int_t
fa_imap_search_seg_begin(fa_imap_search_t *se, const fa_imap_sseg_t *seg)
{
    if (fa_imap_search_buffers(se) != FA_OK) {
        return FA_ERROR;
    }
    se->field_len = 0;
    se->field_open = 0;
    se->bol = 1;
    se->header_over = 0;
    se->b64 = 0;
    se->b64_bits = 0;
    se->qp_len = 0;
    se->mid_len = 0;
    se->win_len = 0;
    if (seg->kind == FA_SSEG_BODY) {
        fa_imap_search_charset(se, &seg->charset);
    }
    return FA_OK;
}

fa_int_t
fa_imap_search_seg_feed(fa_imap_search_t *se, const fa_imap_sseg_t *seg, const u_char *p,
    size_t n)
{
    if (seg->kind != FA_SSEG_BODY) {
        fa_imap_search_header_feed(se, seg, p, n);
        return FA_OK;
    }
    /* at most a chunk in: transfer-decoded it never grows, and mid keeps
       at most an unfinished character from before */
    switch (seg->cte) {
    case FA_SCTE_BASE64:
        fa_imap_search_base64(se, p, n);
        break;
    case FA_SCTE_QP:
        fa_imap_search_qp(se, p, n);
        break;
    default:
        memcpy(se->mid + se->mid_len, p, n);
        se->mid_len += n;
        break;
    }
    fa_imap_search_convert(se, 0);
    return FA_OK;
}

fa_int_t
fa_imap_search_seg_end(fa_imap_search_t *se, const fa_imap_sseg_t *seg)
{
    fa_imap_smsg_t  *m = &se->msg;

    if (seg->kind != FA_SSEG_BODY) {
        fa_imap_search_field_end(se, seg);
        if (seg->kind == FA_SSEG_TOP) {
            /* the whole header was seen: the HEADER keys not found are false */
            for (fa_uint_t i = 0; i < se->nslots; i++) {
                if (se->slots[i]->type == FA_SK_HEADER && m->res[i] == FA_SK_UNKNOWN) {
                    m->res[i] = FA_SK_FALSE;
                }
            }
            m->want_raw = 0;
        }
        return FA_OK;
    }
    if (se->qp_len == 1 || (se->qp_len == 2 && se->qp[1] != '\r')) {
        memcpy(se->mid + se->mid_len, se->qp, se->qp_len);     /* "=" or "=A" at the end */
        se->mid_len += se->qp_len;
    }
    se->qp_len = 0;
    fa_imap_search_convert(se, 1);
    fa_imap_search_scan(se, 1);
    return FA_OK;
}

void
fa_imap_search_text_free(fa_imap_search_t *se)
{
    if (se->cd_cache != (iconv_t) -1) {
        iconv_close(se->cd_cache);
        se->cd_cache = (iconv_t) -1;
    }
    if (se->scratch) {
        fa_pool_destroy(se->scratch);
        se->scratch = NULL;
    }
}
