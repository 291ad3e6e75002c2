/*
 * DATA and BDAT: the message comes in, is un-dot-stuffed (DATA), split
 * into its header block (kept in memory, bounded) and its body (the
 * spool), and when it is all in, the data phases run and delivery starts.
 *
 * The end of DATA is CRLF "." CRLF and nothing else: a bare LF never
 * starts a line that could end the data, so "<LF>.<CR><LF>" and friends
 * cannot smuggle a second message past a relay that reads them
 * differently.  With "bare_newlines reject" (the default) a message with a
 * bare LF or CR is read to its end and refused; with "normalize" a bare LF
 * becomes CRLF (a bare CR is kept).  BDAT chunks are taken as they are,
 * except that a bare LF becomes CRLF: the store serves CRLF to IMAP.
 *
 * Size: what is stored is counted as it comes; past the limit (the
 * smallest max_message_size of the recipients' domains) nothing more is
 * kept, the rest is read, and the message is refused with 552.
 */

#include "fa_smtp_int.h"
#include <ctype.h>

enum {
    FA_SMTP_D_LS = 0,      /* at a line start, after CRLF */
    FA_SMTP_D_LSW,         /* at a line start after a normalized LF: no terminator */
    FA_SMTP_D_TEXT,
    FA_SMTP_D_CR,          /* after a CR */
    FA_SMTP_D_DOT,         /* after "." at a line start */
    FA_SMTP_D_DOTW,        /* after "." at a weak line start */
    FA_SMTP_D_DOTCR        /* after ".\r" at a line start */
};

#define FA_SMTP_HBUF_START  4096

static void fa_smtp_data_end(fa_smtp_session_t *s);

/* the reply to the message: once, or (LMTP) once per RCPT the client gave */
static void
fa_smtp_data_reply(fa_smtp_session_t *s, const fa_smtp_answer_t *a, fa_uint_t code,
    const char *text)
{
    fa_smtp_rcpt_t  *r = s->txn ? s->txn->rcpts.elts : NULL;
    fa_uint_t        n = 0;

    for (fa_uint_t i = 0; s->role == FA_SMTP_ROLE_LMTP && r && i < s->txn->rcpts.nelts; i++) {
        n += !r[i].added;                  /* a hook's recipient has no reply of its own */
    }

    for (fa_uint_t i = 0; i < fa_max(n, (fa_uint_t) 1); i++) {
        fa_smtp_reply_answer(s, a, code, text);
    }
}

static void
fa_smtp_data_fail(fa_smtp_session_t *s, fa_uint_t code, const char *text)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    if (!p->data_error) {
        p->data_error = 1;
        p->data_fail_code = code;
        p->data_fail_text = text;
    }
}

static fa_int_t
fa_smtp_data_begin(fa_smtp_session_t *s)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    s->txn->spool = fa_smtp_spool_create(s->txn->pool, &p->conf->spool_path, s->c->log);
    p->hbuf = malloc(FA_SMTP_HBUF_START);
    if (s->txn->spool == NULL || p->hbuf == NULL) {
        return FA_ERROR;
    }
    p->hsize = FA_SMTP_HBUF_START;
    p->hlen = 0;
    p->in_headers = 1;
    p->data_state = FA_SMTP_D_LS;
    return FA_OK;
}

static void
fa_smtp_headers_done(fa_smtp_session_t *s, size_t len)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    p->in_headers = 0;
    if (fa_smtp_headers_parse(s->txn, p->hbuf, len) != FA_OK) {
        fa_smtp_data_fail(s, 451, "4.3.0 Error: out of memory");
    }
}

/* message bytes, after unstuffing: to the header block, then to the spool */
static void
fa_smtp_emit(fa_smtp_session_t *s, const u_char *d, size_t n)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    if (n == 0 || p->data_error) {
        return;
    }
    s->txn->size += n;
    if (s->txn->size > p->size_limit) {
        p->too_big = 1;
        fa_smtp_data_fail(s, 552, "5.3.4 Error: message size exceeds the limit");
        return;
    }
    if (!p->in_headers) {
        if (fa_smtp_spool_write(s->txn->spool, d, n) != FA_OK) {
            fa_smtp_data_fail(s, 451, "4.3.0 Error: cannot spool the message");
        }
        return;
    }
    if (p->hlen + n > p->hsize) {
        size_t size = fa_max(p->hsize * 2, p->hlen + n);
        u_char *b = size <= FA_SMTP_HEADER_BLOCK_MAX ? realloc(p->hbuf, size) : NULL;
        if (b == NULL) {
            fa_smtp_data_fail(s, 552, "5.3.4 Error: message header size exceeds the limit");
            return;
        }
        p->hbuf = b;
        p->hsize = size;
    }
    memcpy(p->hbuf + p->hlen, d, n);
    p->hlen += n;
}

/* a line ended (through *end, inclusive): flush, and find the header block's end */
static void
fa_smtp_line_end(fa_smtp_session_t *s, const u_char **start, const u_char *end)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    fa_smtp_emit(s, *start, (size_t) (end + 1 - *start));
    *start = end + 1;
    if (p->in_headers && !p->data_error
        && (p->hlen == 2 || (p->hlen >= 4 && memcmp(p->hbuf + p->hlen - 4, "\r\n\r\n", 4) == 0)))
    {
        fa_smtp_headers_done(s, p->hlen - 2);      /* without the empty line */
        /* the empty line is the body's first bytes: the spool starts with it */
        p->hlen -= 2;
        fa_smtp_emit(s, (const u_char *) "\r\n", 2);
        s->txn->size -= 2;                          /* counted once already */
    }
}

static void
fa_smtp_bare_lf(fa_smtp_session_t *s, const u_char **start, const u_char *lf, int bdat)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    if (!bdat && p->conf->bare_newlines == FA_SMTP_NEWLINE_REJECT) {
        p->bare_newline = 1;
        p->data_state = FA_SMTP_D_TEXT;             /* never a line start */
        return;
    }
    fa_smtp_emit(s, *start, (size_t) (lf - *start));
    *start = lf;                                     /* the LF itself comes next */
    fa_smtp_emit(s, (const u_char *) "\r", 1);
    fa_smtp_line_end(s, start, lf);
    p->data_state = bdat ? FA_SMTP_D_LS : FA_SMTP_D_LSW;
}

/*
 * Run the bytes through the line state machine; returns how many were
 * consumed (all of them, or up to the end of DATA, when *end is set).
 */
static size_t
fa_smtp_scan(fa_smtp_session_t *s, const u_char *d, size_t n, int bdat, int *end)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);
    const u_char    *start = d;
    size_t           i;

    for (i = 0; i < n; i++) {
        u_char ch = d[i];
        switch (p->data_state) {
        case FA_SMTP_D_LS:
        case FA_SMTP_D_LSW:
            if (ch == '.' && !bdat) {
                fa_smtp_emit(s, start, (size_t) (d + i - start));
                start = d + i + 1;                   /* the stuffing dot goes */
                p->data_state = p->data_state == FA_SMTP_D_LS ? FA_SMTP_D_DOT : FA_SMTP_D_DOTW;
                continue;
            }
            /* fall through */
        case FA_SMTP_D_TEXT:
        text:
            p->data_state = ch == '\r' ? FA_SMTP_D_CR : FA_SMTP_D_TEXT;
            if (ch == '\n') {
                fa_smtp_bare_lf(s, &start, d + i, bdat);
            }
            continue;
        case FA_SMTP_D_DOT:
            if (ch == '\r') {
                p->data_state = FA_SMTP_D_DOTCR;
                continue;
            }
            goto text;
        case FA_SMTP_D_DOTW:
            goto text;
        case FA_SMTP_D_DOTCR:
            if (ch == '\n') {
                *end = 1;                            /* CRLF . CRLF */
                return i + 1;
            }
            p->bare_newline |= p->conf->bare_newlines == FA_SMTP_NEWLINE_REJECT;
            goto text;
        case FA_SMTP_D_CR:
            if (ch == '\n') {
                fa_smtp_line_end(s, &start, d + i);
                p->data_state = FA_SMTP_D_LS;
                continue;
            }
            p->bare_newline |= !bdat && p->conf->bare_newlines == FA_SMTP_NEWLINE_REJECT;
            goto text;
        }
    }
    fa_smtp_emit(s, start, (size_t) (d + n - start));
    return n;
}


/* ---- DATA ---- */

fa_int_t
fa_smtp_data_command(fa_smtp_session_t *s)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    if (s->txn == NULL || (s->txn->rcpts.nelts == 0 && !p->rcpt_seen)) {
        fa_smtp_error(s);
        return fa_smtp_reply(s, 503, "5.5.1 Error: need RCPT command");
    }
    if (s->txn->rcpts.nelts == 0) {           /* RCPTs came, all were refused */
        fa_smtp_error(s);
        return fa_smtp_reply(s, 554, "5.5.1 Error: no valid recipients");
    }
    if (s->txn->spool) {
        fa_smtp_error(s);
        return fa_smtp_reply(s, 503, "5.5.1 Error: DATA after BDAT");
    }
    if (fa_smtp_data_begin(s) != FA_OK) {
        return FA_ERROR;
    }
    p->state = FA_SMTP_ST_DATA;
    return fa_smtp_reply(s, 354, "End data with <CR><LF>.<CR><LF>");
}


/* ---- BDAT ---- */

fa_int_t
fa_smtp_bdat_command(fa_smtp_session_t *s, fa_str_t *arg)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);
    size_t           digits;
    int64_t          size;

    for (digits = 0; digits < arg->len && isdigit(arg->data[digits]); digits++) { }
    size = digits && digits <= 18 ? fa_atoi(arg->data, digits) : -1;
    if (size < 0 || (digits < arg->len && !(arg->len - digits == 5
                                           && strncasecmp((char *) arg->data + digits,
                                                          " LAST", 5) == 0)))
    {
        /* no size we can trust: the client's chunk cannot be skipped */
        fa_smtp_reply(s, 501, "5.5.4 Syntax: BDAT size [LAST]");
        p->closing = 1;
        return FA_OK;
    }
    p->bdat_last = digits < arg->len;
    p->chunk_left = (uint64_t) size;
    /*
     * A failure of an earlier chunk (the size) stands with its code until
     * BDAT LAST answers it; without a transaction nothing failed before.
     */
    if (s->txn == NULL || s->txn->rcpts.nelts == 0) {
        /* read and drop the chunk, then refuse (RFC 3030 3) */
        fa_smtp_data_fail(s, 503, "5.5.1 Error: need MAIL and RCPT before BDAT");
        fa_smtp_error(s);
    } else if (s->txn->spool == NULL && fa_smtp_data_begin(s) != FA_OK) {
        return FA_ERROR;
    }
    p->state = FA_SMTP_ST_BDAT;
    return size == 0 ? fa_smtp_data_read(s) : FA_OK;
}

static fa_int_t
fa_smtp_bdat_chunk_done(fa_smtp_session_t *s, uint64_t size)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    if (s->txn == NULL || s->txn->rcpts.nelts == 0) {
        fa_smtp_reply(s, p->data_fail_code, "%s", p->data_fail_text);
        p->data_error = 0;
        p->state = FA_SMTP_ST_COMMAND;
        return FA_OK;
    }
    if (p->bdat_last) {
        fa_smtp_data_end(s);
        return FA_OK;
    }
    p->state = FA_SMTP_ST_COMMAND;
    return fa_smtp_reply(s, 250, "2.0.0 %llu octets received", (unsigned long long) size);
}

static fa_int_t
fa_smtp_bdat_read(fa_smtp_session_t *s)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);
    uint64_t         total = p->chunk_left;
    fa_str_t         chunk;
    fa_int_t         rc;
    int              end = 0;

    (void) total;
    while (p->chunk_left) {
        rc = fa_conn_read_bytes(s->c, (size_t) fa_min(p->chunk_left, (uint64_t) SIZE_MAX),
                                &chunk);
        if (rc != FA_OK) {
            return rc;
        }
        p->chunk_left -= chunk.len;
        if (s->txn && s->txn->spool) {
            fa_smtp_scan(s, chunk.data, chunk.len, 1, &end);
        }
    }
    return fa_smtp_bdat_chunk_done(s, s->txn ? s->txn->size : 0);
}

fa_int_t
fa_smtp_data_read(fa_smtp_session_t *s)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);
    fa_str_t         chunk;
    fa_int_t         rc;
    size_t           used;
    int              end = 0;

    if (p->state == FA_SMTP_ST_BDAT) {
        return fa_smtp_bdat_read(s);
    }
    while (!end) {
        rc = fa_conn_read_bytes(s->c, SIZE_MAX, &chunk);
        if (rc != FA_OK) {
            return rc;
        }
        used = fa_smtp_scan(s, chunk.data, chunk.len, 0, &end);
        fa_conn_unread(s->c, chunk.len - used);   /* what follows is commands */
    }
    fa_smtp_data_end(s);
    return FA_OK;
}


/* ---- the message is in: the data phases, then delivery ---- */

static int
fa_smtp_refused(fa_smtp_session_t *s, fa_smtp_answer_t *a, const char *reason)
{
    if (a->verdict != FA_SMTP_REJECT && a->verdict != FA_SMTP_DEFER
        && a->verdict != FA_SMTP_DISCONNECT)
    {
        return 0;
    }
    fa_smtp_count_reject(reason);
    fa_smtp_data_reply(s, a, a->verdict == FA_SMTP_REJECT ? 550 : 451,
                       a->verdict == FA_SMTP_REJECT ? "5.7.1 Message refused"
                                                    : "4.7.1 Try again later");
    fa_smtp_priv(s)->closing = a->verdict == FA_SMTP_DISCONNECT;
    fa_smtp_txn_end(s);
    fa_smtp_continue(s);
    return 1;
}

static void
fa_smtp_discarded(fa_smtp_session_t *s)
{
    fa_log_error(FA_LOG_NOTICE, s->c->log, 0, "%s: discarded by a hook", s->txn->id);
    fa_smtp_data_reply(s, NULL, 250, "2.0.0 Ok: queued");
    fa_smtp_txn_end(s);
    fa_smtp_continue(s);
}

static void
fa_smtp_route_done(fa_smtp_session_t *s, fa_smtp_answer_t *a)
{
    if (fa_smtp_refused(s, a, "route")) {
        return;
    }
    if (a->verdict == FA_SMTP_DISCARD) {
        fa_smtp_discarded(s);
        return;
    }
    fa_smtp_deliver(s);
}

static void
fa_smtp_data_end_done(fa_smtp_session_t *s, fa_smtp_answer_t *a)
{
    if (fa_smtp_refused(s, a, "data")) {
        return;
    }
    if (a->verdict == FA_SMTP_DISCARD) {
        fa_smtp_discarded(s);
        return;
    }
    fa_smtp_phase_run(s, FA_SMTP_PHASE_ROUTE, fa_smtp_route_done);
}

static void
fa_smtp_headers_phase_done(fa_smtp_session_t *s, fa_smtp_answer_t *a)
{
    if (fa_smtp_refused(s, a, "headers")) {
        return;
    }
    fa_smtp_phase_run(s, FA_SMTP_PHASE_DATA_END, fa_smtp_data_end_done);
}

static void
fa_smtp_data_end(fa_smtp_session_t *s)
{
    fa_smtp_priv_t  *p = fa_smtp_priv(s);

    p->state = FA_SMTP_ST_BUSY;
    if (p->in_headers && !p->data_error) {
        fa_smtp_headers_done(s, p->hlen);          /* no body: headers only */
    }
    if (p->bare_newline && !p->data_error) {
        fa_smtp_count_reject("bare_newline");
        fa_smtp_data_fail(s, 554, "5.5.2 Error: bare <LF> or <CR> in the message");
    }
    if (p->data_error) {
        if (p->too_big) {
            fa_smtp_count_reject("size");
        }
        fa_smtp_data_reply(s, NULL, p->data_fail_code, p->data_fail_text);
        fa_smtp_txn_end(s);
        fa_smtp_continue(s);
        return;
    }
    fa_smtp_phase_run(s, FA_SMTP_PHASE_DATA_HEADERS, fa_smtp_headers_phase_done);
}
