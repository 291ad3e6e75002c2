/*
 * The MIME module: what IMAP needs to know about a message, computed once
 * while the message streams in, and kept in the message's metadata record.
 *
 *   parser     fa_mime_parser_create / _feed (any chunking) / _finish give
 *              the part tree: exact byte offsets of every part's header and
 *              body in the raw message, body line counts, the Content-*
 *              fields, and an envelope for each message (the top one and
 *              every message/rfc822 or message/global inside).  The message
 *              is never held whole: the parser keeps one header field (up
 *              to max_field bytes) and the stack of open parts.
 *   render     ENVELOPE, BODY and BODYSTRUCTURE as IMAP strings.
 *   sections   "1.2.MIME", "HEADER", "3.TEXT"... to a byte range.
 *   serialize  the tree to a compact, versioned record and back.
 *   decode     RFC 2047 encoded words and RFC 2231 parameter values to
 *              UTF-8, for SEARCH.
 *
 * Hostile input never costs more than the limits below: deeper containers
 * and parts beyond the count are opaque leaves, header fields are cut (the
 * offsets stay exact), and the tree's own size is bounded.  Malformed input
 * is read the way Dovecot reads it; docs/mime.md lists the rules.
 *
 * Strings: an fa_str_t with data == NULL is absent (IMAP NIL); data != NULL
 * with len 0 is present and empty.
 */

#ifndef FA_MIME_H
#define FA_MIME_H

#include "fa_core.h"

#define FA_MIME_DEPTH_MAX     1000   /* hard cap on max_depth: recursion bound */

typedef struct {
    fa_uint_t   max_depth;     /* nesting of containers (100) */
    fa_uint_t   max_parts;     /* parts in a message, the top one included (10000) */
    fa_uint_t   max_headers;   /* header fields looked at per part (1000) */
    fa_uint_t   max_params;    /* parameters kept per Content-Type/-Disposition (100) */
    size_t      max_field;     /* bytes kept of one header field (64 KB) */
    size_t      max_boundary;  /* a longer boundary makes the multipart opaque (200) */
    size_t      max_tree;      /* bytes of strings kept in the tree (8 MB) */
} fa_mime_limits_t;

extern const fa_mime_limits_t  fa_mime_limits_default;

/* part flags */
#define FA_MIME_MULTIPART   0x0001  /* children are its body parts */
#define FA_MIME_MESSAGE     0x0002  /* message/rfc822 or /global: one child, the message */
#define FA_MIME_OPAQUE      0x0004  /* a container left unparsed (limit, no boundary) */
#define FA_MIME_BAD_TYPE    0x0008  /* unusable Content-Type: text/plain assumed */
#define FA_MIME_NO_BLANK    0x0010  /* the header did not end with a blank line */
#define FA_MIME_CUT_FIELD   0x0020  /* a header field was longer than max_field */
#define FA_MIME_LIMITED     0x0040  /* (top part) a limit was reached somewhere */

/* ENVELOPE fields, in IMAP order */
enum {
    FA_MIME_ENV_DATE = 0, FA_MIME_ENV_SUBJECT, FA_MIME_ENV_FROM,
    FA_MIME_ENV_SENDER, FA_MIME_ENV_REPLY_TO, FA_MIME_ENV_TO, FA_MIME_ENV_CC,
    FA_MIME_ENV_BCC, FA_MIME_ENV_IN_REPLY_TO, FA_MIME_ENV_MESSAGE_ID,
    FA_MIME_ENV_N
};

/*
 * One address of an address list.  A group is a start marker (host NIL,
 * mailbox the group's name), its members, then an end marker (all NIL), as
 * IMAP writes it.  A missing local part or domain is "MISSING_MAILBOX" or
 * "MISSING_DOMAIN", like Dovecot.
 */
typedef struct fa_mime_address_s  fa_mime_address_t;
struct fa_mime_address_s {
    fa_str_t            name;       /* display name, or the comment; undecoded */
    fa_str_t            route;      /* "@a,@b" of an obsolete source route */
    fa_str_t            mailbox;
    fa_str_t            host;
    fa_mime_address_t  *next;
};

typedef struct {
    fa_str_t            raw[FA_MIME_ENV_N];    /* first occurrence, unfolded */
    fa_mime_address_t  *addr[FA_MIME_ENV_N];   /* parsed, for the address fields */
} fa_mime_envelope_t;

typedef struct {
    fa_str_t   name;       /* lower-cased, without RFC 2231 "*" and section marks */
    fa_str_t   value;      /* sections joined; still charset'lang'%XX when extended */
    unsigned   extended:1; /* RFC 2231 encoded: IMAP shows the name as "name*" */
} fa_mime_param_t;

typedef struct fa_mime_part_s  fa_mime_part_t;
struct fa_mime_part_s {
    fa_mime_part_t      *parent;
    fa_mime_part_t      *children;      /* first child */
    fa_mime_part_t      *next;          /* next sibling */
    fa_uint_t            nchildren;
    fa_uint_t            depth;         /* 0 for the message itself */
    fa_uint_t            flags;         /* FA_MIME_* */

    /* byte offsets in the raw message; the header range includes the blank line */
    uint64_t             header_start;
    uint64_t             body_start;
    uint64_t             body_end;
    uint64_t             body_lines;    /* text lines: a last line without LF counts */

    fa_str_t             type;          /* lower-cased; defaults applied */
    fa_str_t             subtype;
    fa_mime_param_t     *params;
    fa_uint_t            nparams;
    fa_str_t             id;
    fa_str_t             description;
    fa_str_t             encoding;      /* as written; absent means 7bit */
    fa_str_t             disposition;
    fa_mime_param_t     *disp_params;
    fa_uint_t            ndisp_params;
    fa_str_t            *languages;
    fa_uint_t            nlanguages;
    fa_str_t             location;
    fa_str_t             md5;

    fa_mime_envelope_t  *envelope;      /* the top part and encapsulated messages */
};

typedef struct fa_mime_parser_s  fa_mime_parser_t;

/*
 * limits NULL: fa_mime_limits_default.  The tree lives in pool, and so does
 * the parser (its two max_field buffers go back at finish).  feed is
 * FA_ERROR only out of memory or after finish; malformed input is no error.
 */
fa_mime_parser_t *fa_mime_parser_create(fa_pool_t *pool, const fa_mime_limits_t *limits);
fa_int_t fa_mime_parser_feed(fa_mime_parser_t *p, const u_char *data, size_t len);
fa_mime_part_t *fa_mime_parser_finish(fa_mime_parser_t *p);   /* NULL: no memory */

/* the parameter named name (lower case), NULL if none */
const fa_mime_param_t *fa_mime_param_find(const fa_mime_param_t *params,
    fa_uint_t n, const char *name);

/* RFC 5322 address-list; NULL when it holds no address */
fa_mime_address_t *fa_mime_address_parse(fa_pool_t *pool, const u_char *data,
    size_t len);

/*
 * Rendering into a growable buffer from a pool.  The render functions
 * return FA_ERROR only when out of memory.
 */
typedef struct {
    u_char     *data;
    size_t      len;
    size_t      size;
    fa_pool_t  *pool;
} fa_mime_buf_t;

fa_int_t fa_mime_buf_init(fa_mime_buf_t *b, fa_pool_t *pool, size_t size);
fa_int_t fa_mime_buf_add(fa_mime_buf_t *b, const void *data, size_t len);

/* an IMAP string: quoted, or a literal {n}\r\n for CR, LF, 8-bit or long text */
fa_int_t fa_mime_render_string(fa_mime_buf_t *b, const u_char *data, size_t len);
fa_int_t fa_mime_render_nstring(fa_mime_buf_t *b, const fa_str_t *s);
/* msg: the top part, or the child of a message/rfc822 part */
fa_int_t fa_mime_render_envelope(fa_mime_buf_t *b, const fa_mime_part_t *msg);
/* extended: BODYSTRUCTURE; otherwise BODY */
fa_int_t fa_mime_render_bodystructure(fa_mime_buf_t *b, const fa_mime_part_t *part,
    int extended);

/*
 * A FETCH section ("", "1.2", "1.2.MIME", "HEADER", "3.TEXT",
 * "1.HEADER.FIELDS (...)") as a byte range of the raw message.  FA_DECLINED:
 * no such part; FA_ERROR: not a section.  For HEADER.FIELDS the range is
 * the whole header, and header is set: the caller picks the fields.
 */
typedef struct {
    uint64_t               offset;
    uint64_t               length;
    const fa_mime_part_t  *part;
    unsigned               header:1;
} fa_mime_section_t;

fa_int_t fa_mime_section_find(const fa_mime_part_t *root, const u_char *spec,
    size_t len, fa_mime_section_t *out);

/* the tree as a compact record, and back (NULL: corrupted or no memory) */
fa_int_t fa_mime_serialize(const fa_mime_part_t *root, fa_pool_t *pool, fa_str_t *out);
fa_mime_part_t *fa_mime_parse_serialized(fa_pool_t *pool, const u_char *data, size_t len);

/*
 * Decoding to UTF-8.  Invalid or unconvertible input is kept as it is;
 * FA_ERROR only when out of memory.  fa_mime_decode_charset is FA_DECLINED
 * for a charset iconv does not know.
 */
fa_int_t fa_mime_decode_header(fa_pool_t *pool, const u_char *raw, size_t len,
    fa_str_t *out);
fa_int_t fa_mime_param_utf8(fa_pool_t *pool, const fa_mime_param_t *param,
    fa_str_t *out);
fa_int_t fa_mime_decode_charset(fa_pool_t *pool, const fa_str_t *charset,
    const u_char *data, size_t len, fa_str_t *out);

extern fa_module_t  fa_mime_module;

#endif /* FA_MIME_H */
