/*
 * The transforms FETCH runs a range of the message through (fa_imap_xf_kind_t):
 * base64 and quoted-printable decoding for BINARY, and the HEADER.FIELDS
 * [.NOT] filter.  Each is a state machine fed in chunks of any size; the
 * output never exceeds the input by more than FA_IMAP_FETCH_SLACK, and it
 * is the same bytes whatever the chunking, as the two passes over a part
 * (fa_imap_fetch_body.c) require.
 *
 * Decoding is lenient, since once a literal's size is announced it cannot
 * fail half-way: base64 skips what is not in its alphabet (line ends,
 * stray characters) and ends a quantum at '='; quoted-printable keeps an
 * '=' that starts neither an escape nor a soft line break, and drops the
 * white space that ends a line (RFC 2045 6.7).  OpenSSL's EVP_DecodeUpdate
 * was not used: it refuses such input, and reads '-' as the end.
 *
 * HEADER.FIELDS keeps a field with its folded lines; names match without
 * regard to case (RFC 9051 6.4.5); the blank line that ends the header is
 * kept, and a line without a colon counts as a field nobody asked for.
 */

#include "fa_imap_fetch.h"


/* ---- base64 ---- */

static int
fa_imap_b64_value(u_char c)
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

/* a quantum cut short by '=' or by the end: the whole bytes it holds */
static size_t
fa_imap_b64_flush(fa_imap_xform_t *x, u_char *out)
{
    size_t  k = 0;

    if (x->nbits == 2) {
        out[k++] = (u_char) (x->bits >> 4);
    } else if (x->nbits == 3) {
        out[k++] = (u_char) (x->bits >> 10);
        out[k++] = (u_char) (x->bits >> 2);
    }
    x->bits = 0;
    x->nbits = 0;
    return k;
}

static size_t
fa_imap_b64_run(fa_imap_xform_t *x, const u_char *in, size_t n, u_char *out)
{
    size_t  k = 0;
    int     v;

    for (size_t i = 0; i < n; i++) {
        if ((v = fa_imap_b64_value(in[i])) >= 0) {
            x->bits = (x->bits << 6) | (uint32_t) v;
            if (++x->nbits == 4) {
                out[k++] = (u_char) (x->bits >> 16);
                out[k++] = (u_char) (x->bits >> 8);
                out[k++] = (u_char) x->bits;
                x->bits = 0;
                x->nbits = 0;
            }
        } else if (in[i] == '=') {
            k += fa_imap_b64_flush(x, out + k);
        }
    }
    return k;
}


/* ---- quoted-printable ---- */

static int
fa_imap_hex(u_char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10
         : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* quoted-printable states: what the pending bytes are */
enum {
    FA_IMAP_QP_TEXT = 0,
    FA_IMAP_QP_WS,          /* white space: dropped if the line ends here */
    FA_IMAP_QP_EQ,          /* "=" */
    FA_IMAP_QP_EQ_HEX,      /* "=X" */
    FA_IMAP_QP_EQ_WS,       /* "=" and white space: a soft line break if CRLF follows */
    FA_IMAP_QP_EQ_CR        /* "=" [white space] CR */
};

/* the pending bytes were ordinary text after all */
static size_t
fa_imap_qp_keep(fa_imap_xform_t *x, u_char *out)
{
    size_t  n = x->npend;

    memcpy(out, x->pend, n);
    x->npend = 0;
    x->state = FA_IMAP_QP_TEXT;
    return n;
}

static size_t
fa_imap_qp_byte(fa_imap_xform_t *x, u_char c, u_char *out)
{
    size_t  k = 0;
    int     ws = c == ' ' || c == '\t';

    for ( ;; ) {
        switch (x->state) {
        case FA_IMAP_QP_TEXT:
            if (c == '=' || ws) {
                x->pend[0] = c;
                x->npend = 1;
                x->state = c == '=' ? FA_IMAP_QP_EQ : FA_IMAP_QP_WS;
            } else {
                out[k++] = c;
            }
            return k;
        case FA_IMAP_QP_WS:
            if (ws && x->npend < sizeof(x->pend)) {
                x->pend[x->npend++] = c;
                return k;
            }
            if (c == '\r' || c == '\n') {
                x->npend = 0;                /* trailing white space */
                x->state = FA_IMAP_QP_TEXT;
                continue;
            }
            k += fa_imap_qp_keep(x, out + k);
            continue;
        case FA_IMAP_QP_EQ:
            if (fa_imap_hex(c) >= 0) {
                x->pend[x->npend++] = c;
                x->state = FA_IMAP_QP_EQ_HEX;
                return k;
            }
            /* "=" then white space, CR or LF: as below */
            /* fall through */
        case FA_IMAP_QP_EQ_WS:
            if (ws && x->npend < sizeof(x->pend) - 1) {
                x->pend[x->npend++] = c;
                x->state = FA_IMAP_QP_EQ_WS;
                return k;
            }
            if (c == '\r') {
                x->pend[x->npend++] = c;
                x->state = FA_IMAP_QP_EQ_CR;
                return k;
            }
            if (c == '\n') {
                x->npend = 0;                /* a soft line break (bare LF) */
                x->state = FA_IMAP_QP_TEXT;
                return k;
            }
            k += fa_imap_qp_keep(x, out + k);
            continue;
        case FA_IMAP_QP_EQ_HEX:
            if (fa_imap_hex(c) >= 0) {
                out[k++] = (u_char) (fa_imap_hex(x->pend[1]) << 4 | fa_imap_hex(c));
                x->npend = 0;
                x->state = FA_IMAP_QP_TEXT;
                return k;
            }
            k += fa_imap_qp_keep(x, out + k);
            continue;
        default:                             /* FA_IMAP_QP_EQ_CR */
            if (c == '\n') {
                x->npend = 0;                /* a soft line break */
                x->state = FA_IMAP_QP_TEXT;
                return k;
            }
            k += fa_imap_qp_keep(x, out + k);
            continue;
        }
    }
}

static size_t
fa_imap_qp_end(fa_imap_xform_t *x, u_char *out)
{
    switch (x->state) {
    case FA_IMAP_QP_WS:                      /* trailing white space */
    case FA_IMAP_QP_EQ:                      /* a soft line break at the very end */
    case FA_IMAP_QP_EQ_WS:
        x->npend = 0;
        x->state = FA_IMAP_QP_TEXT;
        return 0;
    default:
        return fa_imap_qp_keep(x, out);
    }
}


/* ---- HEADER.FIELDS[.NOT] ---- */

/* the filter's states */
enum {
    FA_IMAP_FL_BOL = 0,     /* at a line's start */
    FA_IMAP_FL_BOL_CR,      /* a CR there: the blank line? */
    FA_IMAP_FL_NAME,        /* reading a field's name */
    FA_IMAP_FL_LINE,        /* in a line: sent if its field is */
    FA_IMAP_FL_DONE         /* after the blank line */
};

static int
fa_imap_field_wanted(const fa_imap_xform_t *x)
{
    const fa_imap_fetch_item_t  *it = x->item;
    size_t                       n = x->npend;
    int                          match = 0;

    while (n && (x->pend[n - 1] == ' ' || x->pend[n - 1] == '\t')) {
        n--;
    }
    for (fa_uint_t i = 0; i < it->nfields && !match; i++) {
        match = it->fields[i].len == n
                && strncasecmp((char *) it->fields[i].data, (char *) x->pend, n) == 0;
    }
    return match != it->fields_not;
}

/* the name's bytes go out (wanted) or not, and its line follows suit */
static size_t
fa_imap_field_decide(fa_imap_xform_t *x, int wanted, u_char *out)
{
    size_t  n = wanted ? x->npend : 0;

    memcpy(out, x->pend, n);
    x->include = wanted;
    x->npend = 0;
    return n;
}

static size_t
fa_imap_fields_byte(fa_imap_xform_t *x, u_char c, u_char *out)
{
    size_t  k = 0;

    for ( ;; ) {
        switch (x->state) {
        case FA_IMAP_FL_BOL:
            if (c == '\r') {
                x->state = FA_IMAP_FL_BOL_CR;
            } else if (c == '\n') {
                out[k++] = c;
                x->blank = 1;
                x->state = FA_IMAP_FL_DONE;
            } else if (c == ' ' || c == '\t') {
                x->state = FA_IMAP_FL_LINE;  /* folded: goes with its field */
                continue;
            } else {
                x->npend = 0;
                x->state = FA_IMAP_FL_NAME;
                continue;
            }
            return k;
        case FA_IMAP_FL_BOL_CR:
            if (c == '\n') {
                out[k++] = '\r';
                out[k++] = '\n';
                x->blank = 1;
                x->state = FA_IMAP_FL_DONE;
                return k;
            }
            x->pend[0] = '\r';
            x->npend = 1;
            x->state = FA_IMAP_FL_NAME;
            continue;
        case FA_IMAP_FL_NAME:
            if (c == ':') {
                k += fa_imap_field_decide(x, fa_imap_field_wanted(x), out + k);
                x->state = FA_IMAP_FL_LINE;
                continue;
            }
            if (c == '\n' || x->npend == sizeof(x->pend)) {
                /* no colon (or a name too long to be asked for) */
                k += fa_imap_field_decide(x, x->item->fields_not, out + k);
                x->state = FA_IMAP_FL_LINE;
                continue;
            }
            x->pend[x->npend++] = c;
            return k;
        case FA_IMAP_FL_LINE:
            if (x->include) {
                out[k++] = c;
            }
            if (c == '\n') {
                x->state = FA_IMAP_FL_BOL;
            }
            return k;
        default:
            return k;                        /* nothing follows the blank line */
        }
    }
}

static size_t
fa_imap_fields_end(fa_imap_xform_t *x, u_char *out)
{
    size_t  k = 0;

    if (x->state == FA_IMAP_FL_NAME) {
        k = fa_imap_field_decide(x, x->item->fields_not, out);
    } else if (x->state == FA_IMAP_FL_BOL_CR) {
        out[k++] = '\r';
    }
    x->state = FA_IMAP_FL_DONE;
    return k;
}


/* ---- the interface ---- */

void
fa_imap_xform_init(fa_imap_xform_t *x, fa_imap_xf_kind_t kind, const fa_imap_fetch_item_t *it)
{
    memset(x, 0, sizeof(*x));
    x->kind = kind;
    x->item = it;
}

size_t
fa_imap_xform_run(fa_imap_xform_t *x, const u_char *in, size_t n, u_char *out)
{
    size_t  k = 0;

    switch (x->kind) {
    case FA_IMAP_XF_BASE64:
        return fa_imap_b64_run(x, in, n, out);
    case FA_IMAP_XF_QP:
        for (size_t i = 0; i < n; i++) {
            k += fa_imap_qp_byte(x, in[i], out + k);
        }
        return k;
    case FA_IMAP_XF_FIELDS:
        for (size_t i = 0; i < n; i++) {
            k += fa_imap_fields_byte(x, in[i], out + k);
        }
        return k;
    default:
        memcpy(out, in, n);
        return n;
    }
}

size_t
fa_imap_xform_end(fa_imap_xform_t *x, u_char *out)
{
    switch (x->kind) {
    case FA_IMAP_XF_BASE64:
        return fa_imap_b64_flush(x, out);
    case FA_IMAP_XF_QP:
        return fa_imap_qp_end(x, out);
    case FA_IMAP_XF_FIELDS:
        return fa_imap_fields_end(x, out);
    default:
        return 0;
    }
}
