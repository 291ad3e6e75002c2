/*
 * FETCH's own header, shared by its files only:
 *
 *   fa_imap_fetch.c         the command: arguments, the state machine,
 *                           each message's response, its metadata items
 *   fa_imap_fetch_meta.c    the store calls before the responses: batches
 *                           of metadata, \Seen, changes for VANISHED
 *   fa_imap_fetch_body.c    BODY[section]<partial>, RFC822.*, BINARY[...],
 *                           BINARY.SIZE: section syntax, ranges, streaming
 *   fa_imap_fetch_decode.c  base64, quoted-printable, HEADER.FIELDS[.NOT]
 *
 * The rest of the IMAP module sees only fa_imap_fetch() (fa_imap_int.h).
 */

#ifndef FA_IMAP_FETCH_H
#define FA_IMAP_FETCH_H

#include "fa_imap_int.h"
#include "fa_mime.h"

#define FA_IMAP_FETCH_BATCH     256            /* UIDs per fetch_meta call */
#define FA_IMAP_FETCH_CHUNK     (64 * 1024)    /* bytes per message_read */
#define FA_IMAP_FETCH_SLACK     512            /* a transform's output past its input */
#define FA_IMAP_FIELD_NAME_MAX  256            /* longer header names never match */

typedef enum {
    FA_IMAP_FI_FLAGS = 0,
    FA_IMAP_FI_UID,
    FA_IMAP_FI_MODSEQ,
    FA_IMAP_FI_INTERNALDATE,
    FA_IMAP_FI_SIZE,            /* RFC822.SIZE */
    FA_IMAP_FI_ENVELOPE,
    FA_IMAP_FI_BODY,            /* BODY: BODYSTRUCTURE without extension data */
    FA_IMAP_FI_BODYSTRUCTURE,
    FA_IMAP_FI_SECTION,         /* BODY[...], BODY.PEEK[...], RFC822, RFC822.HEADER/.TEXT */
    FA_IMAP_FI_BINARY,          /* BINARY[...], BINARY.PEEK[...] */
    FA_IMAP_FI_BINARY_SIZE      /* BINARY.SIZE[...] */
} fa_imap_fi_kind_t;

/* one requested data item */
typedef struct {
    fa_imap_fi_kind_t   kind;
    fa_str_t            name;       /* as answered: "BODY[1.MIME]", "RFC822.TEXT" */
    fa_str_t            spec;       /* for fa_mime_section_find: "" is the whole message */
    fa_str_t           *fields;     /* HEADER.FIELDS[.NOT] (names) */
    fa_uint_t           nfields;
    uint32_t            origin;     /* <origin.count> */
    uint32_t            count;
    unsigned            partial:1;
    unsigned            peek:1;     /* leaves \Seen alone */
    unsigned            fields_not:1;
} fa_imap_fetch_item_t;

/* how the bytes of a range become what is sent */
typedef enum {
    FA_IMAP_XF_NONE = 0,
    FA_IMAP_XF_BASE64,
    FA_IMAP_XF_QP,
    FA_IMAP_XF_FIELDS           /* HEADER.FIELDS[.NOT]: the header, some fields of it */
} fa_imap_xf_kind_t;

typedef struct {
    fa_imap_xf_kind_t            kind;
    const fa_imap_fetch_item_t  *item;         /* FIELDS: the names */
    uint32_t                     bits;         /* base64: the quantum so far */
    fa_uint_t                    nbits;        /* base64: its characters */
    fa_uint_t                    state;        /* QP, FIELDS */
    u_char                       pend[FA_IMAP_FIELD_NAME_MAX];  /* undecided bytes */
    size_t                       npend;
    unsigned                     include:1;    /* FIELDS: the current field is sent */
    unsigned                     blank:1;      /* FIELDS: the blank line was seen */
} fa_imap_xform_t;

/* an item's bytes in the current message */
typedef struct {
    uint64_t            start;
    uint64_t            len;
    fa_imap_xf_kind_t   xf;
    unsigned            missing:1;  /* no such part: an empty string */
    unsigned            read:1;     /* its bytes must be read */
} fa_imap_fetch_range_t;

/* the body item being written */
typedef enum {
    FA_IMAP_BODY_BEGIN = 0,
    FA_IMAP_BODY_MEASURE,       /* pass 1: the transformed size, NULs */
    FA_IMAP_BODY_WRITE,         /* pass 2: transformed bytes of the window */
    FA_IMAP_BODY_COPY           /* raw bytes of the window */
} fa_imap_body_phase_t;

typedef struct {
    fa_imap_body_phase_t  phase;
    fa_imap_xform_t       x;
    uint64_t              pos;        /* next raw offset to read */
    uint64_t              end;        /* raw offset where reading stops */
    uint64_t              produced;   /* output offset of the next transformed byte */
    uint64_t              win_start;  /* the window sent, in output offsets */
    uint64_t              win_end;
    uint64_t              sent;
    unsigned              nul:1;      /* a NUL in the window: literal8 */
} fa_imap_body_t;

/* where the command is (fa_imap_fetch_run) */
enum {
    FA_IMAP_FS_VANISHED = 0,     /* ask changes_since */
    FA_IMAP_FS_VANISHED_SEND,    /* answer VANISHED (EARLIER) */
    FA_IMAP_FS_BATCH,            /* ask the next batch's metadata */
    FA_IMAP_FS_SEEN,             /* set \Seen in the batch where needed */
    FA_IMAP_FS_MESSAGE,          /* begin the batch's next message */
    FA_IMAP_FS_ITEMS,            /* write that message's items */
    FA_IMAP_FS_END,              /* the tagged reply */
    FA_IMAP_FS_FAILED,           /* the store failed: NO */
    FA_IMAP_FS_CTE               /* BINARY of an unknown encoding: NO */
};

typedef struct fa_imap_fetch_s  fa_imap_fetch_t;

struct fa_imap_fetch_s {
    fa_imap_session_t          *s;            /* NULL once orphaned */
    fa_log_t                   *log;
    const fa_storage_backend_t *backend;
    fa_mailbox_t               *box;

    fa_imap_fetch_item_t       *items;        /* in the command's pool */
    fa_uint_t                   nitems;
    fa_uid_set_t                set;          /* the messages named, as UIDs in the view */
    fa_uint_t                   ri;           /* batch cursor: range, next UID in it */
    uint32_t                    next_uid;
    uint64_t                    changedsince;
    fa_imap_range_t            *vset;         /* VANISHED: the UID set as written */
    fa_uint_t                   nvset;
    fa_uint_t                   state;

    /* the batch: metadata of up to FA_IMAP_FETCH_BATCH messages */
    fa_pool_t                  *batch;        /* also what a pending store call uses */
    fa_message_meta_t          *msgs;
    fa_uint_t                   nmsgs, asked, cur;
    u_char                     *seen_set;     /* per message: \Seen set by this FETCH */
    fa_mailbox_changes_t       *changes;      /* VANISHED */
    fa_int_t                    op_rc;

    /* the message being answered */
    fa_pool_t                  *mpool;
    fa_mime_part_t             *tree;
    fa_msg_stream_t            *stream;
    fa_imap_fetch_range_t      *ranges;       /* per item */
    fa_uint_t                   item;         /* next item to write */
    fa_imap_body_t              body;
    const fa_imap_fetch_item_t *cte_item;     /* UNKNOWN-CTE */

    u_char                     *chunk;        /* FA_IMAP_FETCH_CHUNK, read into */
    u_char                     *xbuf;         /* + FA_IMAP_FETCH_SLACK, transformed */

    fa_uint_t                   expunged;     /* named but gone: NO at the end */
    fa_uint_t                   broken;       /* unreadable: NO at the end */

    unsigned                    want_uid:1;
    unsigned                    want_flags:1;
    unsigned                    want_modseq:1;
    unsigned                    set_seen:1;   /* a non-PEEK body item */
    unsigned                    need_body:1;  /* some item reads the message */
    unsigned                    need_tree:1;  /* some item needs the part table */
    unsigned                    vanished:1;
    unsigned                    sep:1;        /* an item was written: a space next */
    unsigned                    pending:1;    /* a store call or a read is in flight */
    unsigned                    keywords:1;   /* the batch's keywords have names */
    unsigned                    orphan:1;     /* the session went while it was */
};

/* fa_imap_fetch.c */
fa_int_t fa_imap_fetch_run(fa_imap_session_t *s);       /* the resume point */
fa_int_t fa_imap_fetch_out(fa_imap_fetch_t *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fa_imap_fetch_wake(fa_imap_fetch_t *f);           /* a store callback came back */

/* CHANGEDSINCE leaves the message out */
static inline int
fa_imap_fetch_skipped(const fa_imap_fetch_t *f, const fa_message_meta_t *m)
{
    return f->changedsince && m->modseq <= f->changedsince;
}

/* fa_imap_fetch_meta.c: FA_AGAIN a call is in flight, FA_OK f->state moved, FA_ERROR */
fa_int_t fa_imap_fetch_ask_changes(fa_imap_fetch_t *f);
fa_int_t fa_imap_fetch_send_vanished(fa_imap_fetch_t *f);
fa_int_t fa_imap_fetch_ask_batch(fa_imap_fetch_t *f);
fa_int_t fa_imap_fetch_ask_seen(fa_imap_fetch_t *f);
void fa_imap_fetch_batch_end(fa_imap_fetch_t *f);

/* fa_imap_fetch_body.c */
/* "BODY[...]<a.b>" and the like: FA_OK, FA_DECLINED (malformed), FA_ERROR */
fa_int_t fa_imap_fetch_section_parse(fa_pool_t *pool, const fa_str_t *atom,
    fa_imap_fetch_item_t *it);
/*
 * The message's part table, ranges and stream for the body items:
 * FA_OK; FA_DECLINED the message is skipped (counted as expunged or
 * broken); FA_ABORT a BINARY part has an unknown encoding (f->cte_item).
 */
fa_int_t fa_imap_fetch_resolve(fa_imap_fetch_t *f, const fa_message_meta_t *m);
/* write some of the current body item: FA_OK more, FA_DONE, FA_AGAIN, FA_ERROR */
fa_int_t fa_imap_fetch_body_step(fa_imap_fetch_t *f);

/* fa_imap_fetch_decode.c: n bytes in, at most n + FA_IMAP_FETCH_SLACK out */
void fa_imap_xform_init(fa_imap_xform_t *x, fa_imap_xf_kind_t kind,
    const fa_imap_fetch_item_t *it);
size_t fa_imap_xform_run(fa_imap_xform_t *x, const u_char *in, size_t n, u_char *out);
size_t fa_imap_xform_end(fa_imap_xform_t *x, u_char *out);

#endif /* FA_IMAP_FETCH_H */
