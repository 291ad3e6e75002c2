/*
 * Inside the MIME module: the parser's state and the helpers its files
 * share.  Not part of the contract (that is fa_mime.h); other modules never
 * include this.
 */

#ifndef FA_MIME_PARSER_H
#define FA_MIME_PARSER_H

#include "fa_mime.h"

/*
 * Everything the tree keeps is allocated through a budget (max_tree), so a
 * hostile message cannot make its metadata record grow without bound.  Over
 * budget, a string is simply absent and the top part says FA_MIME_LIMITED.
 */
typedef struct {
    fa_pool_t  *pool;
    size_t      left;
    unsigned    over:1;      /* the budget ran out */
    unsigned    nomem:1;     /* the pool failed: the parse fails */
} fa_mime_alloc_t;

void *fa_mime_alloc(fa_mime_alloc_t *a, size_t size);             /* zeroed */
fa_int_t fa_mime_copy(fa_mime_alloc_t *a, fa_str_t *dst, const u_char *src, size_t len);
void fa_mime_alloc_init(fa_mime_alloc_t *a, fa_pool_t *pool, size_t budget);

fa_int_t fa_mime_buf_reserve(fa_mime_buf_t *b, size_t len);

/* lexing shared by the structured-field parsers */
#define fa_mime_is_wsp(c)  ((c) == ' ' || (c) == '\t')
const u_char *fa_mime_skip_comment(const u_char *p, const u_char *end);
const u_char *fa_mime_skip_cfws(const u_char *p, const u_char *end);
const u_char *fa_mime_token_end(const u_char *p, const u_char *end);

/* an open part: the parser keeps one per nesting level */
typedef struct {
    fa_mime_part_t  *part;
    fa_mime_part_t  *last;       /* its last child, to append in O(1) */
    uint64_t         nl0;        /* LFs before its body */
    const u_char    *boundary;   /* an open multipart's boundary, else NULL */
    size_t           blen;
} fa_mime_frame_t;

#define FA_MIME_S_HEADER  0
#define FA_MIME_S_BODY    1
#define FA_MIME_S_DONE    2

struct fa_mime_parser_s {
    fa_mime_limits_t   limits;
    fa_mime_alloc_t    alloc;
    fa_mime_part_t    *root;
    fa_mime_frame_t   *frames;       /* frames[0] is the message */
    fa_uint_t          nframes;
    fa_uint_t          nboundaries;  /* frames with a boundary */
    fa_uint_t          nparts;
    fa_uint_t          state;

    uint64_t           offset;       /* bytes consumed */
    uint64_t           nl;           /* LFs before the current line */
    u_char             last;         /* the last byte consumed */

    /* the current line: its first bytes, as many as the state needs */
    uint64_t           line_start;
    uint64_t           line_len;     /* bytes so far, a CR included */
    u_char            *line;
    size_t             kept;
    uint64_t           content_len;  /* set at its end: without the [CR]LF */
    unsigned           has_lf:1;

    /* the previous line */
    uint64_t           prev_term;    /* where its [CR]LF starts */
    unsigned           prev_empty:1;

    /* the header being read: the current field, unfolded */
    u_char            *field;
    size_t             field_len;
    fa_uint_t          nfields;
    fa_uint_t          seen;         /* FA_MIME_H_* fields already taken */
    unsigned           field_open:1;

    unsigned           overflow:1;   /* max_parts reached: no new parts */
    unsigned           limited:1;
};

/* fa_mime_header.c: the header of the part in the top frame */
void fa_mime_header_begin(fa_mime_parser_t *p);
fa_int_t fa_mime_header_line(fa_mime_parser_t *p);   /* FA_OK, FA_DONE, FA_DECLINED */
void fa_mime_header_end(fa_mime_parser_t *p);
fa_int_t fa_mime_header_envelope(fa_mime_alloc_t *a, fa_mime_envelope_t *env);

/* fa_mime_param.c */
/* in place: lowers names and unquotes values in the buffer it reads */
fa_int_t fa_mime_param_parse(fa_mime_alloc_t *a, fa_uint_t max, u_char *p,
    const u_char *end, fa_mime_param_t **params, fa_uint_t *n);

/* fa_mime_address.c: with a budget (NULL: none) */
fa_mime_address_t *fa_mime_address_list(fa_mime_alloc_t *a, const u_char *data,
    size_t len);

/* fa_mime_decode.c */
fa_int_t fa_mime_decode_percent(fa_pool_t *pool, const u_char *p, size_t len,
    fa_str_t *out);

#endif /* FA_MIME_PARSER_H */
