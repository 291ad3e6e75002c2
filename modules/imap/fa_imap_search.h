/*
 * The search engine's insides, shared by its files:
 *
 *   fa_imap_search_key.c   the search keys into a tree; dates; PCRE2 keys
 *   fa_imap_search_run.c   walking the view in batches of metadata, and
 *                          each message: cheap keys first, then the raw
 *                          message only when a key still needs it
 *   fa_imap_search_text.c  reading a message's header fields and text
 *                          parts, decoded to UTF-8, and matching them
 *
 * A key is true, false or not known yet.  The cheap keys (flags, sizes,
 * dates, the header fields the metadata caches) are known from the
 * metadata; the others (HEADER of an uncached field, BODY, TEXT) each have
 * a slot in the message that reading fills, and the tree is evaluated
 * again as they fill, so reading stops as soon as the answer is known.
 *
 * SEARCH, SORT and THREAD use the engine through fa_imap_int.h.
 */

#ifndef FA_IMAP_SEARCH_H
#define FA_IMAP_SEARCH_H

#include "fa_imap_int.h"
#include "fa_mime.h"
#include <iconv.h>
#include <pcre2.h>

#define FA_IMAP_SEARCH_BATCH      256                 /* messages per fetch_meta */
#define FA_IMAP_SEARCH_DEPTH      1000                /* NOT, OR, () nesting */
#define FA_IMAP_SEARCH_CHUNK      65536               /* bytes per message_read */
#define FA_IMAP_SEARCH_SLICE      (4 * 1024 * 1024)   /* bytes read, then the loop runs */
#define FA_IMAP_SEARCH_FIELD_MAX  65536               /* a header field, unfolded */
#define FA_IMAP_SEARCH_WINDOW     65536               /* decoded text matched at once */

/* what a key is for one message */
#define FA_SK_FALSE    0
#define FA_SK_TRUE     1
#define FA_SK_UNKNOWN  2

typedef enum {
    FA_SK_ALL = 0, FA_SK_NONE, FA_SK_AND, FA_SK_OR, FA_SK_NOT,
    FA_SK_SEQ, FA_SK_UID, FA_SK_FLAG, FA_SK_KEYWORD,
    FA_SK_BEFORE, FA_SK_ON, FA_SK_SINCE,
    FA_SK_SENTBEFORE, FA_SK_SENTON, FA_SK_SENTSINCE,
    FA_SK_LARGER, FA_SK_SMALLER, FA_SK_MODSEQ,
    FA_SK_ENVELOPE,        /* a header field the metadata caches */
    FA_SK_HEADER,          /* any other header field: read from the message */
    FA_SK_BODY, FA_SK_TEXT
} fa_imap_skey_type_t;

typedef struct fa_imap_skey_s  fa_imap_skey_t;
struct fa_imap_skey_s {
    fa_imap_skey_type_t   type;
    fa_imap_skey_t       *child;        /* AND, OR, NOT: the first operand */
    fa_imap_skey_t       *next;         /* the next operand of the parent */
    uint32_t              flag;         /* FLAG: FA_FLAG_*; KEYWORD: the bit number */
    unsigned              set:1;        /* FLAG, KEYWORD: set (1) or unset (0) */
    int64_t               number;       /* dates (day number), sizes, MODSEQ */
    fa_imap_range_t      *ranges;       /* SEQ, UID */
    fa_uint_t             nranges;
    fa_uint_t             field;        /* ENVELOPE: FA_MIME_ENV_* */
    fa_str_t              name;         /* HEADER: the field name */
    fa_str_t              str;          /* the text sought, UTF-8; empty: "exists" */
    pcre2_code           *re;           /* str, caseless, NULL when str is empty */
    fa_uint_t             slot;         /* HEADER, BODY, TEXT: the message's result */
};

/* a piece of the raw message to read, in message order */
#define FA_SSEG_TOP       0x01    /* the message's header: HEADER, TEXT, wanted fields */
#define FA_SSEG_MESSAGE   0x02    /* an attached message's header: BODY, TEXT */
#define FA_SSEG_MIME      0x04    /* a body part's MIME header: TEXT */
#define FA_SSEG_BODY      0x08    /* a text part: BODY, TEXT */

#define FA_SCTE_NONE      0
#define FA_SCTE_BASE64    1
#define FA_SCTE_QP        2

typedef struct {
    fa_uint_t         kind;          /* FA_SSEG_* */
    uint64_t          start;
    uint64_t          end;
    fa_uint_t         cte;           /* FA_SCTE_* (bodies) */
    fa_str_t          charset;       /* bodies; empty: UTF-8 or US-ASCII */
} fa_imap_sseg_t;

/* the message being looked at */
typedef struct {
    fa_message_meta_t  *meta;
    uint32_t            msn;
    fa_pool_t          *pool;         /* everything about this message */
    fa_mime_part_t     *root;         /* from the metadata, or parsed here */
    u_char             *res;          /* FA_SK_* per slot */
    fa_str_t            dec[FA_MIME_ENV_N];    /* envelope fields, decoded */
    u_char              decoded[FA_MIME_ENV_N];
    int64_t             sent_day;     /* the Date field's day, -1: none */
    fa_str_t            hdr[FA_IMAP_HDR_N];    /* the fields the caller wants */
    unsigned            sent_known:1;
    unsigned            want_raw:1;   /* the caller wants fields not cached: read them */
} fa_imap_smsg_t;

struct fa_imap_search_s {
    fa_imap_session_t      *s;
    fa_pool_t              *pool;           /* the command's */
    fa_imap_skey_t         *root;
    fa_imap_skey_t        **slots;          /* HEADER, BODY, TEXT keys */
    fa_uint_t               nslots;
    size_t                  overlap;        /* kept between windows: the longest match */
    pcre2_match_data       *md;
    unsigned                has_modseq:1;
    unsigned                uid:1;

    /* the run */
    fa_uint_t               want;           /* 1 << FA_IMAP_HDR_*, the caller's */
    fa_imap_search_hit_pt   hit;
    fa_imap_search_end_pt   end;
    fa_uint_t               state;
    fa_uint_t               next;           /* the next MSN - 1 to look at */
    void                   *batch;          /* the fetch_meta in flight, or its results */
    fa_message_meta_t      *metas;
    fa_uint_t               nmetas, mi;
    fa_imap_smsg_t          msg;
    fa_event_t              event;          /* to go on after letting the loop run */
    size_t                  slice;          /* bytes read since the loop last ran */
    unsigned                parked:1;       /* the caller's end waits for the output */
    fa_int_t                error;          /* the store's, for FA_SS_FAIL */

    /* reading the current message */
    fa_msg_stream_t        *stream;
    void                   *read_ticket;    /* a message_read that said FA_AGAIN */
    fa_mime_parser_t       *parser;         /* no part table in the metadata */
    fa_imap_sseg_t         *segs;
    fa_uint_t               nsegs, seg;
    unsigned                seg_open:1;     /* segs[seg] is being read */
    uint64_t                off;
    u_char                 *buf;            /* FA_IMAP_SEARCH_CHUNK */

    /* decoding: header fields, transfer encodings, charsets, the window */
    fa_pool_t              *scratch;
    u_char                 *field;          /* FA_IMAP_SEARCH_FIELD_MAX */
    size_t                  field_len;
    unsigned                field_open:1;
    unsigned                bol:1;
    unsigned                header_over:1;
    uint32_t                b64;            /* base64: bits not yet a byte */
    fa_uint_t               b64_bits;
    u_char                  qp[3];          /* quoted-printable: an escape cut short */
    fa_uint_t               qp_len;
    u_char                 *mid;            /* transfer-decoded, not yet converted */
    size_t                  mid_len;
    iconv_t                 cd;             /* (iconv_t) -1: bytes as they are */
    iconv_t                 cd_cache;
    char                    cd_name[64];
    u_char                 *win;
    size_t                  win_len, win_size;
};

/* fa_imap_search_key.c */
fa_int_t fa_imap_search_keys(fa_imap_session_t *s, fa_imap_search_t *se,
    const fa_imap_arg_t *args, fa_uint_t nargs, const fa_str_t *charset, const char **why);
int fa_imap_search_match(fa_imap_search_t *se, const fa_imap_skey_t *k, const u_char *p,
    size_t n);
fa_uint_t fa_imap_search_eval(fa_imap_search_t *se, const fa_imap_skey_t *k,
    fa_imap_smsg_t *m);
void fa_imap_search_free_keys(fa_imap_search_t *se);

/* fa_imap_search_text.c */
fa_int_t fa_imap_search_segments(fa_imap_search_t *se, fa_imap_smsg_t *m);
int fa_imap_search_seg_needed(fa_imap_search_t *se, const fa_imap_sseg_t *seg);
fa_int_t fa_imap_search_seg_begin(fa_imap_search_t *se, const fa_imap_sseg_t *seg);
fa_int_t fa_imap_search_seg_feed(fa_imap_search_t *se, const fa_imap_sseg_t *seg,
    const u_char *p, size_t n);
fa_int_t fa_imap_search_seg_end(fa_imap_search_t *se, const fa_imap_sseg_t *seg);
void fa_imap_search_text_free(fa_imap_search_t *se);

#endif /* FA_IMAP_SEARCH_H */
