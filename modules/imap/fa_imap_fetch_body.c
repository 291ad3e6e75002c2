/*
 * FETCH's body items: BODY[section]<partial>, BODY.PEEK[...], RFC822,
 * RFC822.HEADER, RFC822.TEXT, BINARY[part]<partial>, BINARY.PEEK[...] and
 * BINARY.SIZE[part] (RFC 9051 6.4.5, RFC 3516).
 *
 * A section is a byte range of the raw message, found in the part table
 * cached at append (fa_mime_section_find); the message itself is only
 * read for the bytes sent, in FA_IMAP_FETCH_CHUNK pieces, never whole.
 *
 * Two ways to send an item
 *   copy       the range as it is stored (BODY[...], RFC822.*): its size is
 *              known, so "{n}" goes out at once and the bytes follow.  A
 *              literal may not hold NUL (RFC 9051 4.3): NULs are sent as
 *              0x80, as Dovecot does; BINARY is the way to get them.
 *   transform  the range goes through a decoder (base64, quoted-printable)
 *              or the HEADER.FIELDS[.NOT] filter, whose output size is not
 *              known in advance.  Pass 1 runs the transform and counts (and
 *              looks for NUL in the window: then a literal8 "~{n}"), pass 2
 *              runs it again and sends the window.  The part is read twice,
 *              but memory stays two 64 KB buffers whatever the part's size:
 *              a choice for a server that must not hold a 50 MB attachment
 *              in memory.  BINARY of a part that needs no decoding only
 *              scans its window for NUL in pass 1.
 *
 * The decoders (fa_imap_fetch_decode.c) are lenient, as they must be once
 * the literal's size is out.  Any other encoding than 7bit, 8bit, binary,
 * base64 and quoted-printable is NO [UNKNOWN-CTE], before anything of the
 * message is sent.
 *
 * A section naming no part (BODY[9] of a three-part message, TEXT of a
 * part that is no message) is an empty string, as in Dovecot.
 */

#include "fa_imap_fetch.h"
#include <ctype.h>

static const struct {
    const char         *prefix;     /* up to the '[' */
    const char         *answer;     /* the name in the response */
    fa_imap_fi_kind_t   kind;
    unsigned            peek;
} fa_imap_fetch_sections[] = {
    { "BODY[", "BODY", FA_IMAP_FI_SECTION, 0 },
    { "BODY.PEEK[", "BODY", FA_IMAP_FI_SECTION, 1 },
    { "BINARY[", "BINARY", FA_IMAP_FI_BINARY, 0 },
    { "BINARY.PEEK[", "BINARY", FA_IMAP_FI_BINARY, 1 },
    { "BINARY.SIZE[", "BINARY.SIZE", FA_IMAP_FI_BINARY_SIZE, 1 },
};


/* ---- section syntax ---- */

static int
fa_imap_word_is(const u_char *p, const u_char *end, const char *word)
{
    size_t  n = strlen(word);

    return (size_t) (end - p) >= n && strncasecmp((const char *) p, word, n) == 0;
}

/* a decimal number up to 2^32-1; nz: not 0 and no leading zero */
static const u_char *
fa_imap_fetch_number(const u_char *p, const u_char *end, int nz, uint32_t *out)
{
    uint64_t  n = 0;

    if (p == end || !isdigit(*p) || (nz && *p == '0')) {
        return NULL;
    }
    for ( ; p < end && isdigit(*p); p++) {
        n = n * 10 + (uint64_t) (*p - '0');
        if (n > UINT32_MAX) {
            return NULL;
        }
    }
    *out = (uint32_t) n;
    return p;
}

/* a header field name as the client may write it: atom, quoted or literal */
static const u_char *
fa_imap_fetch_field(fa_pool_t *pool, const u_char *p, const u_char *end, fa_str_t *name)
{
    const u_char  *start;
    uint32_t       n;
    u_char        *q;

    if (*p == '"') {
        name->data = q = fa_pnalloc(pool, (size_t) (end - p));
        if (q == NULL) {
            return NULL;
        }
        for (p++; p < end && *p != '"'; p++) {
            if (*p == '\\' && p + 1 < end) {
                p++;
            }
            *q++ = *p;
        }
        if (p == end) {
            return NULL;
        }
        name->len = (size_t) (q - name->data);
        return p + 1;
    }
    if (*p == '{') {
        p = fa_imap_fetch_number(p + 1, end, 0, &n);
        if (p && p < end && *p == '+') {
            p++;
        }
        if (p == NULL || end - p < 3 || memcmp(p, "}\r\n", 3) != 0
            || (size_t) (end - p - 3) < n)
        {
            return NULL;
        }
        name->data = (u_char *) p + 3;
        name->len = n;
        return p + 3 + n;
    }
    for (start = p; p < end && *p > 0x20 && *p < 0x7f && !strchr("()\"{", *p); p++) {
        /* an atom */
    }
    name->data = (u_char *) start;
    name->len = (size_t) (p - start);
    return p == start ? NULL : p;
}

/* a name as the response writes it: upper case, quoted unless it is an atom */
static fa_int_t
fa_imap_fetch_field_out(fa_mime_buf_t *b, const fa_str_t *name)
{
    int     atom = name->len > 0;
    u_char  ch;

    for (size_t i = 0; i < name->len; i++) {
        ch = name->data[i];
        if (ch == '\r' || ch == '\n' || ch == '\0' || ch >= 0x80) {
            return FA_DECLINED;          /* no header field is named so */
        }
        atom &= ch > 0x20 && ch < 0x7f && !strchr("()\"{\\%*]", ch);
    }
    if (!atom && fa_mime_buf_add(b, "\"", 1) != FA_OK) {
        return FA_ERROR;
    }
    for (size_t i = 0; i < name->len; i++) {
        ch = (u_char) toupper(name->data[i]);
        if ((!atom && (ch == '"' || ch == '\\') && fa_mime_buf_add(b, "\\", 1) != FA_OK)
            || fa_mime_buf_add(b, &ch, 1) != FA_OK)
        {
            return FA_ERROR;
        }
    }
    return atom || fa_mime_buf_add(b, "\"", 1) == FA_OK ? FA_OK : FA_ERROR;
}

/* " (From To)" after HEADER.FIELDS[.NOT], to the end of the section */
static fa_int_t
fa_imap_fetch_fields(fa_pool_t *pool, const u_char *p, const u_char *end,
    fa_imap_fetch_item_t *it, fa_mime_buf_t *b)
{
    fa_array_t   names;
    fa_str_t    *name;
    fa_int_t     rc;

    if (fa_array_init(&names, pool, 8, sizeof(fa_str_t)) != FA_OK) {
        return FA_ERROR;
    }
    if (end - p < 2 || p[0] != ' ' || p[1] != '(' || fa_mime_buf_add(b, " (", 2) != FA_OK) {
        return FA_DECLINED;
    }
    for (p += 2; ; ) {
        while (p < end && *p == ' ') {
            p++;
        }
        if (p == end) {
            return FA_DECLINED;
        }
        if (*p == ')') {
            break;
        }
        if ((name = fa_array_push(&names)) == NULL) {
            return FA_ERROR;
        }
        if ((p = fa_imap_fetch_field(pool, p, end, name)) == NULL) {
            return FA_DECLINED;
        }
        if ((names.nelts > 1 && fa_mime_buf_add(b, " ", 1) != FA_OK)
            || (rc = fa_imap_fetch_field_out(b, name)) != FA_OK)
        {
            return rc == FA_DECLINED ? FA_DECLINED : FA_ERROR;
        }
    }
    if (p + 1 != end || names.nelts == 0) {
        return FA_DECLINED;
    }
    it->fields = names.elts;
    it->nfields = names.nelts;
    return fa_mime_buf_add(b, ")", 1);
}

/*
 * section-spec (RFC 9051): [part "."] (HEADER | HEADER.FIELDS[.NOT] list
 * | TEXT | MIME), or a part alone, or nothing; BINARY takes a part only.
 */
static fa_int_t
fa_imap_fetch_spec(fa_pool_t *pool, const u_char *p, const u_char *end,
    fa_imap_fetch_item_t *it, fa_mime_buf_t *b)
{
    const u_char  *start = p;
    uint32_t       n;
    int            part = 0;

    while (p < end && isdigit(*p)) {
        if ((p = fa_imap_fetch_number(p, end, 1, &n)) == NULL) {
            return FA_DECLINED;
        }
        part = 1;
        if (p < end && (*p != '.' || ++p == end)) {
            return FA_DECLINED;
        }
    }
    if (fa_mime_buf_add(b, start, (size_t) (p - start)) != FA_OK) {
        return FA_ERROR;
    }
    if (p == end) {
        return FA_OK;                       /* the whole message, or a part */
    }
    if (it->kind != FA_IMAP_FI_SECTION) {
        return FA_DECLINED;
    }
    if (fa_imap_word_is(p, end, "HEADER.FIELDS.NOT ")) {
        it->fields_not = 1;
        return fa_mime_buf_add(b, "HEADER.FIELDS.NOT", 17) == FA_OK
               ? fa_imap_fetch_fields(pool, p + 17, end, it, b) : FA_ERROR;
    }
    if (fa_imap_word_is(p, end, "HEADER.FIELDS ")) {
        return fa_mime_buf_add(b, "HEADER.FIELDS", 13) == FA_OK
               ? fa_imap_fetch_fields(pool, p + 13, end, it, b) : FA_ERROR;
    }
    for (const char **w = (const char *[]) { "HEADER", "TEXT", "MIME", NULL }; *w; w++) {
        if (end - p == (ssize_t) strlen(*w) && fa_imap_word_is(p, end, *w)) {
            if (**w == 'M' && !part) {
                return FA_DECLINED;         /* MIME is a numbered part's header */
            }
            return fa_mime_buf_add(b, *w, strlen(*w));
        }
    }
    return FA_DECLINED;
}

/* "<origin.count>", the whole of p..end */
static fa_int_t
fa_imap_fetch_partial(const u_char *p, const u_char *end, fa_imap_fetch_item_t *it)
{
    if (p == end || *p++ != '<'
        || (p = fa_imap_fetch_number(p, end, 0, &it->origin)) == NULL
        || p == end || *p++ != '.'
        || (p = fa_imap_fetch_number(p, end, 0, &it->count)) == NULL
        || it->count == 0 || p + 1 != end || *p != '>')
    {
        return FA_DECLINED;
    }
    it->partial = 1;
    return FA_OK;
}

fa_int_t
fa_imap_fetch_section_parse(fa_pool_t *pool, const fa_str_t *atom, fa_imap_fetch_item_t *it)
{
    const u_char  *p = atom->data, *end = p + atom->len, *close = NULL;
    fa_mime_buf_t  b;
    size_t         i, n = 0;
    fa_int_t       rc;

    for (i = 0; i < fa_nelems(fa_imap_fetch_sections); i++) {
        n = strlen(fa_imap_fetch_sections[i].prefix);
        if (fa_imap_word_is(p, end, fa_imap_fetch_sections[i].prefix)) {
            break;
        }
    }
    if (i == fa_nelems(fa_imap_fetch_sections)) {
        return FA_DECLINED;
    }
    it->kind = fa_imap_fetch_sections[i].kind;
    it->peek = fa_imap_fetch_sections[i].peek;
    p += n;
    for (const u_char *q = p; q < end; q++) {
        close = *q == ']' ? q : close;      /* the last ']': a quoted name may hold one */
    }
    if (close == NULL) {
        return FA_DECLINED;
    }
    if (close + 1 < end && (it->kind == FA_IMAP_FI_BINARY_SIZE
                            || fa_imap_fetch_partial(close + 1, end, it) != FA_OK))
    {
        return FA_DECLINED;
    }
    if (fa_mime_buf_init(&b, pool, 64) != FA_OK
        || fa_mime_buf_add(&b, fa_imap_fetch_sections[i].answer,
                           strlen(fa_imap_fetch_sections[i].answer)) != FA_OK
        || fa_mime_buf_add(&b, "[", 1) != FA_OK)
    {
        return FA_ERROR;
    }
    rc = fa_imap_fetch_spec(pool, p, close, it, &b);
    if (rc != FA_OK) {
        return rc;
    }
    if (fa_mime_buf_add(&b, "]", 1) != FA_OK) {
        return FA_ERROR;
    }
    it->name.data = b.data;
    it->name.len = b.len;
    it->spec.data = (u_char *) p;            /* the command lives as long as the item */
    it->spec.len = (size_t) (close - p);
    return FA_OK;
}


/* ---- a message's ranges ---- */

/* a part's Content-Transfer-Encoding as a transform; -1: unknown */
static int
fa_imap_fetch_cte(const fa_str_t *enc)
{
    const u_char  *p, *end;
    fa_str_t       v;

    if (enc->data == NULL) {
        return FA_IMAP_XF_NONE;             /* none written: 7bit */
    }
    for (p = enc->data, end = p + enc->len; p < end && isspace(*p); p++) {
        /* leading white space */
    }
    while (end > p && isspace(end[-1])) {
        end--;
    }
    v.data = (u_char *) p;
    v.len = (size_t) (end - p);
    if (v.len == 0 || fa_str_eqi(&v, "7bit") || fa_str_eqi(&v, "8bit")
        || fa_str_eqi(&v, "binary"))
    {
        return FA_IMAP_XF_NONE;
    }
    if (fa_str_eqi(&v, "base64")) {
        return FA_IMAP_XF_BASE64;
    }
    return fa_str_eqi(&v, "quoted-printable") ? FA_IMAP_XF_QP : -1;
}

static fa_int_t
fa_imap_fetch_range(fa_imap_fetch_t *f, const fa_message_meta_t *m,
    const fa_imap_fetch_item_t *it, fa_imap_fetch_range_t *r)
{
    const fa_mime_part_t  *part = NULL;
    fa_mime_section_t      sec;
    int                    xf;

    if (it->spec.len == 0) {
        r->start = 0;
        r->len = m->size;
    } else if (fa_mime_section_find(f->tree, it->spec.data, it->spec.len, &sec) != FA_OK) {
        r->missing = 1;
        return FA_OK;
    } else {
        /* a table that disagrees with the stored size is not trusted past it */
        r->start = fa_min(sec.offset, m->size);
        r->len = fa_min(sec.length, m->size - r->start);
        part = sec.part;
    }
    if (it->fields) {
        r->xf = FA_IMAP_XF_FIELDS;
    } else if (it->kind != FA_IMAP_FI_SECTION && part
               && !(part->flags & (FA_MIME_MULTIPART | FA_MIME_MESSAGE)))
    {
        if ((xf = fa_imap_fetch_cte(&part->encoding)) < 0) {
            f->cte_item = it;
            return FA_ABORT;
        }
        r->xf = (fa_imap_xf_kind_t) xf;
    }
    r->read = r->len > 0 && !(it->kind == FA_IMAP_FI_BINARY_SIZE && r->xf == FA_IMAP_XF_NONE);
    return FA_OK;
}

fa_int_t
fa_imap_fetch_resolve(fa_imap_fetch_t *f, const fa_message_meta_t *m)
{
    int       read = 0;
    fa_int_t  rc;

    f->mpool = fa_pool_create(4096, f->log);
    f->ranges = f->mpool ? fa_pcalloc(f->mpool, f->nitems * sizeof(fa_imap_fetch_range_t))
                         : NULL;
    if (f->ranges == NULL) {
        return FA_ERROR;
    }
    if (f->need_tree) {
        f->tree = fa_mime_parse_serialized(f->mpool, m->mime.data, m->mime.len);
        if (f->tree == NULL) {
            fa_log_error(FA_LOG_ERR, f->log, 0, "imap fetch: UID %u: unreadable MIME part "
                         "table", (unsigned) m->uid);
            f->broken++;
            return FA_DECLINED;
        }
    }
    for (fa_uint_t i = 0; i < f->nitems; i++) {
        if (f->items[i].kind < FA_IMAP_FI_SECTION) {
            continue;
        }
        rc = fa_imap_fetch_range(f, m, &f->items[i], &f->ranges[i]);
        if (rc != FA_OK) {
            return rc;
        }
        read |= f->ranges[i].read;
    }
    if (!read) {
        return FA_OK;
    }
    rc = f->backend->message_open(f->box, m->uid, &f->stream);
    if (rc == FA_OK) {
        return FA_OK;
    }
    f->stream = NULL;
    if (rc == FA_STORAGE_NOTFOUND) {
        f->expunged++;                     /* expunged since its metadata was read */
    } else {
        fa_log_error(FA_LOG_ERR, f->log, 0, "imap fetch: UID %u: opening the message "
                     "failed: %s", (unsigned) m->uid, fa_storage_strerror(rc));
        f->broken++;
    }
    return FA_DECLINED;
}


/* ---- sending ---- */

static void
fa_imap_fetch_read_ready(void *data, fa_int_t rc)
{
    fa_imap_fetch_t  *f = data;

    (void) rc;                              /* the read is tried again */
    f->pending = 0;
    fa_imap_fetch_wake(f);
}

/* up to len bytes at off into f->chunk: bytes read, 0 at the end, FA_AGAIN, < 0 */
static ssize_t
fa_imap_fetch_read(fa_imap_fetch_t *f, uint64_t off, uint64_t len)
{
    ssize_t  n;

    f->pending = 1;
    n = f->backend->message_read(f->stream, off, f->chunk,
                                 (size_t) fa_min(len, (uint64_t) FA_IMAP_FETCH_CHUNK),
                                 fa_imap_fetch_read_ready, f);
    if (n == FA_AGAIN) {
        return FA_AGAIN;
    }
    f->pending = 0;
    if (n < 0) {
        fa_log_error(FA_LOG_ERR, f->log, 0, "imap fetch: UID %u: reading the message "
                     "failed: %s", (unsigned) f->msgs[f->cur].uid,
                     fa_storage_strerror((fa_int_t) n));
    }
    return n;
}

/* "BODY[1]<10> " (the space before it when it is not the first item) */
static void
fa_imap_fetch_name(fa_imap_fetch_t *f, const fa_imap_fetch_item_t *it)
{
    if (f->sep) {
        fa_imap_write(f->s, " ", 1);
    }
    f->sep = 1;
    fa_imap_write(f->s, it->name.data, it->name.len);
    if (it->partial) {
        fa_imap_fetch_out(f, "<%u>", (unsigned) it->origin);
    }
    fa_imap_write(f->s, " ", 1);
}

/* what of size bytes a partial asks for */
static void
fa_imap_fetch_window(const fa_imap_fetch_item_t *it, uint64_t size, uint64_t *start,
    uint64_t *end)
{
    *start = it->partial ? fa_min((uint64_t) it->origin, size) : 0;
    *end = it->partial ? fa_min((uint64_t) it->origin + it->count, size) : size;
}

/* the literal's announcement, or "" for nothing (then the item is written) */
static fa_int_t
fa_imap_fetch_literal(fa_imap_fetch_t *f, uint64_t n, int literal8)
{
    if (n == 0) {
        fa_imap_write(f->s, "\"\"", 2);
        return FA_DONE;
    }
    fa_imap_fetch_out(f, "%s{%llu}\r\n", literal8 ? "~" : "", (unsigned long long) n);
    return FA_OK;
}

static fa_int_t
fa_imap_fetch_buffers(fa_imap_fetch_t *f)
{
    if (f->chunk == NULL) {
        f->chunk = fa_alloc(FA_IMAP_FETCH_CHUNK, f->log);
        f->xbuf = f->chunk ? fa_alloc(FA_IMAP_FETCH_CHUNK + FA_IMAP_FETCH_SLACK, f->log) : NULL;
        if (f->xbuf == NULL) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_imap_fetch_body_begin(fa_imap_fetch_t *f, const fa_imap_fetch_item_t *it,
    const fa_imap_fetch_range_t *r)
{
    fa_imap_body_t  *b = &f->body;
    uint64_t         ws, we;

    if (r->missing || (it->kind == FA_IMAP_FI_BINARY_SIZE && !r->read)) {
        fa_imap_fetch_name(f, it);
        if (it->kind == FA_IMAP_FI_BINARY_SIZE) {
            fa_imap_fetch_out(f, "%llu", (unsigned long long) (r->missing ? 0 : r->len));
            return FA_DONE;
        }
        return fa_imap_fetch_literal(f, 0, 0);
    }
    if (fa_imap_fetch_buffers(f) != FA_OK) {
        return FA_ERROR;
    }
    fa_imap_fetch_window(it, r->len, &ws, &we);
    if (it->kind == FA_IMAP_FI_SECTION && r->xf == FA_IMAP_XF_NONE) {
        b->pos = r->start + ws;
        b->end = r->start + we;
        b->phase = FA_IMAP_BODY_COPY;
        fa_imap_fetch_name(f, it);
        return fa_imap_fetch_literal(f, we - ws, 0);
    }
    fa_imap_xform_init(&b->x, r->xf, it);
    b->phase = FA_IMAP_BODY_MEASURE;
    if (r->xf == FA_IMAP_XF_NONE) {        /* BINARY, nothing to decode: NULs only */
        b->pos = r->start + ws;
        b->end = r->start + we;
        b->produced = ws;
    } else {
        b->pos = r->start;
        b->end = r->start + r->len;
        b->produced = 0;
    }
    return FA_OK;
}

/* BINARY: a NUL in out (at output offset b->produced) inside the window? */
static void
fa_imap_fetch_nul(fa_imap_body_t *b, const fa_imap_fetch_item_t *it, const u_char *out,
    size_t n)
{
    uint64_t  lo = it->partial ? it->origin : 0;
    uint64_t  hi = it->partial ? (uint64_t) it->origin + it->count : UINT64_MAX;
    uint64_t  from = fa_max(b->produced, lo), to = fa_min(b->produced + n, hi);

    if (it->kind == FA_IMAP_FI_BINARY && !b->nul && to > from
        && memchr(out + (from - b->produced), 0, to - from))
    {
        b->nul = 1;
    }
}

/* pass 1: the size after the transform, and NULs; then the literal */
static fa_int_t
fa_imap_fetch_measure(fa_imap_fetch_t *f, const fa_imap_fetch_item_t *it,
    const fa_imap_fetch_range_t *r)
{
    fa_imap_body_t  *b = &f->body;
    const u_char    *out = f->xbuf;
    uint64_t         size;
    ssize_t          n;
    size_t           k;
    fa_int_t         rc;

    if (b->pos < b->end) {
        n = fa_imap_fetch_read(f, b->pos, b->end - b->pos);
        if (n < 0) {
            return n == FA_AGAIN ? FA_AGAIN : FA_ERROR;
        }
        if (n == 0) {
            b->end = b->pos;                /* shorter than its table says */
            return FA_OK;
        }
        b->pos += (uint64_t) n;
        if (r->xf == FA_IMAP_XF_NONE) {
            out = f->chunk;
            k = (size_t) n;
        } else {
            k = fa_imap_xform_run(&b->x, f->chunk, (size_t) n, f->xbuf);
        }
        fa_imap_fetch_nul(b, it, out, k);
        b->produced += k;
        return FA_OK;
    }
    k = fa_imap_xform_end(&b->x, f->xbuf);
    fa_imap_fetch_nul(b, it, f->xbuf, k);
    size = r->xf == FA_IMAP_XF_NONE ? r->len : b->produced + k;
    fa_imap_fetch_name(f, it);
    if (it->kind == FA_IMAP_FI_BINARY_SIZE) {
        fa_imap_fetch_out(f, "%llu", (unsigned long long) size);
        return FA_DONE;
    }
    fa_imap_fetch_window(it, size, &b->win_start, &b->win_end);
    rc = fa_imap_fetch_literal(f, b->win_end - b->win_start, b->nul);
    if (rc != FA_OK) {
        return rc;
    }
    if (r->xf == FA_IMAP_XF_NONE) {
        b->pos = r->start + b->win_start;
        b->end = r->start + b->win_end;
        b->phase = FA_IMAP_BODY_COPY;
        return FA_OK;
    }
    fa_imap_xform_init(&b->x, r->xf, it);
    b->pos = r->start;
    b->end = r->start + r->len;
    b->produced = 0;
    b->sent = 0;
    b->phase = FA_IMAP_BODY_WRITE;
    return FA_OK;
}

/* NUL may not be in a literal: BODY's are sent as 0x80 (BINARY's go in a literal8) */
static void
fa_imap_fetch_no_nul(const fa_imap_fetch_item_t *it, u_char *p, size_t n)
{
    u_char  *end = p + n;

    if (it->kind != FA_IMAP_FI_SECTION) {
        return;
    }
    for ( ; (p = memchr(p, 0, (size_t) (end - p))) != NULL; p++) {
        *p = 0x80;
    }
}

/* transformed bytes: those of the window go out */
static void
fa_imap_fetch_emit(fa_imap_fetch_t *f, const fa_imap_fetch_item_t *it, u_char *out, size_t n)
{
    fa_imap_body_t  *b = &f->body;
    uint64_t         from = fa_max(b->produced, b->win_start);
    uint64_t         to = fa_min(b->produced + n, b->win_end);

    if (to > from) {
        fa_imap_fetch_no_nul(it, out + (from - b->produced), (size_t) (to - from));
        fa_imap_write(f->s, out + (from - b->produced), (size_t) (to - from));
        b->sent += to - from;
    }
    b->produced += n;
}

/* pass 2 */
static fa_int_t
fa_imap_fetch_write(fa_imap_fetch_t *f, const fa_imap_fetch_item_t *it)
{
    fa_imap_body_t  *b = &f->body;
    ssize_t          n;

    if (b->produced < b->win_end && b->pos < b->end) {
        n = fa_imap_fetch_read(f, b->pos, b->end - b->pos);
        if (n < 0) {
            return n == FA_AGAIN ? FA_AGAIN : FA_ERROR;
        }
        if (n == 0) {
            b->end = b->pos;
            return FA_OK;
        }
        b->pos += (uint64_t) n;
        fa_imap_fetch_emit(f, it, f->xbuf,
                           fa_imap_xform_run(&b->x, f->chunk, (size_t) n, f->xbuf));
        return FA_OK;
    }
    if (b->produced < b->win_end) {
        fa_imap_fetch_emit(f, it, f->xbuf, fa_imap_xform_end(&b->x, f->xbuf));
    }
    if (b->sent != b->win_end - b->win_start) {
        /* the literal's size is out: the stream cannot be mended */
        fa_log_error(FA_LOG_ERR, f->log, 0, "imap fetch: UID %u changed while it was sent",
                     (unsigned) f->msgs[f->cur].uid);
        return FA_ERROR;
    }
    return FA_DONE;
}

/* raw bytes of the range */
static fa_int_t
fa_imap_fetch_copy(fa_imap_fetch_t *f, const fa_imap_fetch_item_t *it)
{
    fa_imap_body_t  *b = &f->body;
    ssize_t          n;

    if (b->pos == b->end) {
        return FA_DONE;
    }
    n = fa_imap_fetch_read(f, b->pos, b->end - b->pos);
    if (n <= 0) {
        if (n == 0) {
            fa_log_error(FA_LOG_ERR, f->log, 0, "imap fetch: UID %u is shorter than its size",
                         (unsigned) f->msgs[f->cur].uid);
        }
        return n == FA_AGAIN ? FA_AGAIN : FA_ERROR;
    }
    fa_imap_fetch_no_nul(it, f->chunk, (size_t) n);
    b->pos += (uint64_t) n;
    if (fa_imap_write(f->s, f->chunk, (size_t) n) != FA_OK) {
        return FA_ERROR;
    }
    return b->pos == b->end ? FA_DONE : FA_OK;
}

fa_int_t
fa_imap_fetch_body_step(fa_imap_fetch_t *f)
{
    const fa_imap_fetch_item_t   *it = &f->items[f->item];
    const fa_imap_fetch_range_t  *r = &f->ranges[f->item];

    switch (f->body.phase) {
    case FA_IMAP_BODY_BEGIN:
        return fa_imap_fetch_body_begin(f, it, r);
    case FA_IMAP_BODY_MEASURE:
        return fa_imap_fetch_measure(f, it, r);
    case FA_IMAP_BODY_WRITE:
        return fa_imap_fetch_write(f, it);
    default:
        return fa_imap_fetch_copy(f, it);
    }
}
