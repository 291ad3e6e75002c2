/*
 * The streaming MIME parser: raw bytes in any chunking, out a part tree
 * with exact offsets.
 *
 * The parser works on lines (LF or CRLF ends one; offsets count the raw
 * bytes) and keeps of each line only what its state needs: a header line
 * whole, up to max_field; a body line only as far as a boundary could
 * reach, and nothing at all outside a multipart.  So a 50 MB line costs one
 * memchr and no copy, and memory never depends on the message size.
 *
 * The open parts form a stack of frames, the message at the bottom.  Each
 * open multipart's frame holds its boundary; a delimiter line closes every
 * part above the multipart it belongs to (inner multiparts that never
 * closed), as RFC 2046 and Dovecot do.  The [CR]LF before a delimiter
 * belongs to the delimiter, so a body ends where that line break starts.
 */

#include "fa_mime_parser.h"

static void fa_mime_line_end(fa_mime_parser_t *p, int has_lf);
static void fa_mime_body_begin(fa_mime_parser_t *p, uint64_t start, uint64_t nl0,
    int open);

static fa_mime_frame_t *
fa_mime_top(fa_mime_parser_t *p)
{
    return &p->frames[p->nframes - 1];
}

/* a limit that cuts the parse short: no more parts, no more boundaries */
static void
fa_mime_overflow(fa_mime_parser_t *p)
{
    p->overflow = 1;
    p->limited = 1;
    for (fa_uint_t i = 0; i < p->nframes; i++) {
        p->frames[i].boundary = NULL;
    }
    p->nboundaries = 0;
}

static void
fa_mime_limits_clamp(fa_mime_limits_t *l)
{
    l->max_depth = fa_min(l->max_depth, (fa_uint_t) FA_MIME_DEPTH_MAX);
    l->max_parts = fa_max(l->max_parts, (fa_uint_t) 1);
    l->max_boundary = fa_max(l->max_boundary, (size_t) 1);
    /* a header line must be able to hold any delimiter line */
    l->max_field = fa_max(l->max_field, l->max_boundary + 4);
    l->max_field = fa_max(l->max_field, (size_t) 1024);
}

fa_mime_parser_t *
fa_mime_parser_create(fa_pool_t *pool, const fa_mime_limits_t *limits)
{
    fa_mime_parser_t  *p;

    p = fa_pcalloc(pool, sizeof(fa_mime_parser_t));
    if (p == NULL) {
        return NULL;
    }
    p->limits = limits ? *limits : fa_mime_limits_default;
    fa_mime_limits_clamp(&p->limits);
    fa_mime_alloc_init(&p->alloc, pool, p->limits.max_tree);

    p->line = fa_pnalloc(pool, p->limits.max_field);
    p->field = fa_pnalloc(pool, p->limits.max_field);
    p->frames = fa_pcalloc(pool, (p->limits.max_depth + 1) * sizeof(fa_mime_frame_t));
    /* the message and its envelope are not charged to the budget */
    p->root = fa_pcalloc(pool, sizeof(fa_mime_part_t));
    if (p->line == NULL || p->field == NULL || p->frames == NULL || p->root == NULL) {
        return NULL;
    }
    p->root->envelope = fa_pcalloc(pool, sizeof(fa_mime_envelope_t));
    if (p->root->envelope == NULL) {
        return NULL;
    }
    p->nparts = 1;
    if (p->limits.max_parts == 1) {
        p->overflow = 1;
    }
    p->frames[0].part = p->root;
    p->nframes = 1;
    p->state = FA_MIME_S_HEADER;
    fa_mime_header_begin(p);
    return p;
}

/* a new last child of the top frame's part, its header starting at start */
static fa_mime_part_t *
fa_mime_part_new(fa_mime_parser_t *p, fa_mime_frame_t *f, uint64_t start)
{
    fa_mime_part_t  *part;

    if (p->overflow) {
        return NULL;
    }
    part = fa_mime_alloc(&p->alloc, sizeof(fa_mime_part_t));
    if (part == NULL) {
        fa_mime_overflow(p);
        return NULL;
    }
    part->parent = f->part;
    part->depth = f->part->depth + 1;
    part->header_start = start;
    part->body_start = start;
    part->body_end = start;
    if (f->last) {
        f->last->next = part;
    } else {
        f->part->children = part;
    }
    f->last = part;
    f->part->nchildren++;

    if (++p->nparts >= p->limits.max_parts) {
        fa_mime_overflow(p);
    }
    return part;
}

static void
fa_mime_push(fa_mime_parser_t *p, fa_mime_part_t *part)
{
    fa_mime_frame_t  *f = &p->frames[p->nframes++];

    memset(f, 0, sizeof(fa_mime_frame_t));
    f->part = part;
    p->state = FA_MIME_S_HEADER;
    fa_mime_header_begin(p);
}

/*
 * Close the top frame: its body ends at end, where nl LFs precede.  last_lf
 * says whether the byte before end is a LF: a last line without one still
 * counts as a line.
 */
static void
fa_mime_frame_close(fa_mime_parser_t *p, uint64_t end, uint64_t nl, int last_lf)
{
    fa_mime_frame_t  *f = &p->frames[--p->nframes];
    fa_mime_part_t   *part = f->part;

    if (f->boundary) {
        p->nboundaries--;
    }
    if (end <= part->body_start || nl < f->nl0) {
        part->body_end = part->body_start;
        part->body_lines = 0;
        return;
    }
    part->body_end = end;
    part->body_lines = nl - f->nl0 + (last_lf ? 0 : 1);
}

static void
fa_mime_open_multipart(fa_mime_parser_t *p, fa_mime_frame_t *f)
{
    fa_mime_part_t         *part = f->part;
    const fa_mime_param_t  *b;

    b = fa_mime_param_find(part->params, part->nparams, "boundary");
    if (b == NULL || b->extended || b->value.len == 0
        || b->value.len > p->limits.max_boundary)
    {
        part->flags |= FA_MIME_OPAQUE;
        return;
    }
    if (p->overflow || part->depth >= p->limits.max_depth) {
        part->flags |= FA_MIME_OPAQUE;
        p->limited = 1;
        return;
    }
    part->flags |= FA_MIME_MULTIPART;
    f->boundary = b->value.data;
    f->blen = b->value.len;
    p->nboundaries++;
}

/* the encapsulated message is a child whose header starts the body */
static void
fa_mime_open_message(fa_mime_parser_t *p, fa_mime_frame_t *f)
{
    fa_mime_part_t  *part = f->part, *child;

    if (p->overflow || part->depth >= p->limits.max_depth) {
        part->flags |= FA_MIME_OPAQUE;
        p->limited = 1;
        return;
    }
    child = fa_mime_part_new(p, f, part->body_start);
    if (child == NULL) {
        part->flags |= FA_MIME_OPAQUE;
        return;
    }
    child->envelope = fa_mime_alloc(&p->alloc, sizeof(fa_mime_envelope_t));
    part->flags |= FA_MIME_MESSAGE;
    fa_mime_push(p, child);
}

static int
fa_mime_is_message(const fa_mime_part_t *part)
{
    return fa_str_casecmp(&part->type, "message") == 0
           && (fa_str_casecmp(&part->subtype, "rfc822") == 0
               || fa_str_casecmp(&part->subtype, "global") == 0);
}

/*
 * The header of the top part ended; its body starts at start.  open: the
 * body may hold parts (not when a delimiter cut the header short).
 */
static void
fa_mime_body_begin(fa_mime_parser_t *p, uint64_t start, uint64_t nl0, int open)
{
    fa_mime_frame_t  *f = fa_mime_top(p);
    fa_mime_part_t   *part = f->part;
    int               multipart;

    fa_mime_header_end(p);
    part->body_start = start;
    part->body_end = start;
    f->nl0 = nl0;
    p->state = FA_MIME_S_BODY;

    multipart = fa_str_casecmp(&part->type, "multipart") == 0;
    if (!multipart && !fa_mime_is_message(part)) {
        return;
    }
    if (!open) {
        part->flags |= FA_MIME_OPAQUE;
    } else if (multipart) {
        fa_mime_open_multipart(p, f);
    } else {
        fa_mime_open_message(p, f);
    }
}

/*
 * A delimiter of frame k's multipart: close what is above k, then start the
 * next body part after this line, or the epilogue after a close delimiter.
 */
static void
fa_mime_boundary_hit(fa_mime_parser_t *p, fa_uint_t k, int close)
{
    fa_mime_frame_t  *f = fa_mime_top(p);
    fa_mime_part_t   *child;
    uint64_t          start, end, nl;
    int               lf;

    start = p->state == FA_MIME_S_HEADER ? f->part->header_start : f->part->body_start;
    if (p->line_start > start) {
        end = p->prev_term;
        nl = p->nl - 1;
        lf = p->prev_empty;
    } else {
        end = p->line_start;
        nl = p->nl;
        lf = 1;
    }
    if (p->state == FA_MIME_S_HEADER) {
        f->part->flags |= FA_MIME_NO_BLANK;
        fa_mime_body_begin(p, end, nl, 0);
    }
    while (p->nframes > k + 1) {
        fa_mime_frame_close(p, end, nl, lf);
    }

    f = fa_mime_top(p);
    p->state = FA_MIME_S_BODY;
    if (close) {
        f->boundary = NULL;
        p->nboundaries--;
        return;
    }
    child = fa_mime_part_new(p, f, p->offset);
    if (child != NULL) {
        fa_mime_push(p, child);
    }
}

/* "--" boundary, the longest of the open ones, innermost first on a tie */
static int
fa_mime_boundary_line(fa_mime_parser_t *p)
{
    fa_mime_frame_t  *f;
    fa_uint_t         i, best = 0;
    size_t            blen = 0;
    int               found = 0, close;

    if (p->kept < 2 || p->line[0] != '-' || p->line[1] != '-') {
        return 0;
    }
    for (i = p->nframes; i-- > 0; ) {
        f = &p->frames[i];
        if (f->boundary == NULL || f->blen > p->kept - 2 || (found && f->blen <= blen)) {
            continue;
        }
        if (memcmp(p->line + 2, f->boundary, f->blen) == 0) {
            best = i;
            blen = f->blen;
            found = 1;
        }
    }
    if (!found) {
        return 0;
    }
    close = p->kept >= blen + 4 && p->line[blen + 2] == '-' && p->line[blen + 3] == '-';
    fa_mime_boundary_hit(p, best, close);
    return 1;
}

static void
fa_mime_line_dispatch(fa_mime_parser_t *p)
{
    fa_int_t  rc;

    /* bounded: a line that ends a header is no header line of the next one */
    for ( ;; ) {
        if (p->nboundaries && fa_mime_boundary_line(p)) {
            return;
        }
        if (p->state != FA_MIME_S_HEADER) {
            return;
        }
        rc = fa_mime_header_line(p);
        if (rc == FA_OK) {
            return;
        }
        if (rc == FA_DONE) {
            fa_mime_body_begin(p, p->offset, p->nl + 1, 1);
            return;
        }
        /* not a header line: the body starts with it, no blank line between */
        fa_mime_top(p)->part->flags |= FA_MIME_NO_BLANK;
        fa_mime_body_begin(p, p->line_start, p->nl, 1);
    }
}

/* how much of a line the current state needs */
static size_t
fa_mime_line_cap(fa_mime_parser_t *p)
{
    if (p->state == FA_MIME_S_HEADER) {
        return p->limits.max_field;
    }
    return p->nboundaries ? p->limits.max_boundary + 4 : 0;
}

static void
fa_mime_line_add(fa_mime_parser_t *p, const u_char *data, size_t n)
{
    size_t  cap, room;

    cap = fa_mime_line_cap(p);
    if (p->kept < cap) {
        room = fa_min(cap - p->kept, n);
        memcpy(p->line + p->kept, data, room);
        p->kept += room;
    }
    p->line_len += n;
    p->offset += n;
    p->last = data[n - 1];
}

static void
fa_mime_line_end(fa_mime_parser_t *p, int has_lf)
{
    uint64_t  content = p->line_len;

    if (has_lf && content > 0 && p->last == '\r') {
        content--;
    }
    p->content_len = content;
    if (p->kept > content) {
        p->kept = content;
    }
    p->has_lf = has_lf;
    if (has_lf) {
        p->offset++;
    }

    fa_mime_line_dispatch(p);

    p->prev_term = p->line_start + content;
    p->prev_empty = content == 0;
    if (has_lf) {
        p->nl++;
        p->last = '\n';
    }
    p->line_start = p->offset;
    p->line_len = 0;
    p->kept = 0;
}

fa_int_t
fa_mime_parser_feed(fa_mime_parser_t *p, const u_char *data, size_t len)
{
    const u_char  *lf;
    size_t         n;

    if (p->state == FA_MIME_S_DONE) {
        return FA_ERROR;
    }
    while (len > 0) {
        lf = memchr(data, '\n', len);
        n = lf ? (size_t) (lf - data) : len;
        if (n) {
            fa_mime_line_add(p, data, n);
        }
        if (lf == NULL) {
            break;
        }
        data += n + 1;
        len -= n + 1;
        fa_mime_line_end(p, 1);
    }
    return p->alloc.nomem ? FA_ERROR : FA_OK;
}

fa_mime_part_t *
fa_mime_parser_finish(fa_mime_parser_t *p)
{
    fa_pool_t  *pool = p->alloc.pool;

    if (p->state == FA_MIME_S_DONE) {
        return p->alloc.nomem ? NULL : p->root;
    }
    if (p->line_len > 0) {
        fa_mime_line_end(p, 0);
    }
    /* a header cut by the end: each opened message brings one more */
    while (p->state == FA_MIME_S_HEADER) {
        fa_mime_top(p)->part->flags |= FA_MIME_NO_BLANK;
        fa_mime_body_begin(p, p->offset, p->nl, 1);
    }
    while (p->nframes > 0) {
        fa_mime_frame_close(p, p->offset, p->nl, p->last == '\n');
    }
    if (p->limited || p->alloc.over) {
        p->root->flags |= FA_MIME_LIMITED;
    }
    p->state = FA_MIME_S_DONE;
    (void) fa_pfree(pool, p->line);
    (void) fa_pfree(pool, p->field);
    p->line = p->field = NULL;
    return p->alloc.nomem ? NULL : p->root;
}
