/*
 * The IMAP module's own header: configuration, the session, and the
 * functions its files share.  Hook modules use fa_imap.h.
 *
 *   fa_imap_module.c    directives, servers and listeners, counters
 *   fa_imap_parser.c    commands into argument trees; sequence sets
 *   fa_imap_session.c   a connection's life: greeting, collecting commands
 *                       and literals, running them, replies, timeouts, TLS
 *   fa_imap_command.c   the command table; CAPABILITY, NOOP, LOGOUT, ID,
 *                       ENABLE, STARTTLS, CHECK
 *   fa_imap_auth.c      LOGIN, AUTHENTICATE PLAIN (SASL-IR), LOGINDISABLED
 *   fa_imap_view.c      the selected mailbox: SELECT, EXAMINE, CLOSE,
 *                       UNSELECT, MSN <-> UID, and the untagged updates
 *                       (EXISTS, EXPUNGE, FETCH FLAGS) when others change it
 *   fa_imap_mailbox.c   CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
 *                       STATUS, NAMESPACE; mailbox names on the wire
 *   fa_imap_list.c      LIST (LIST-EXTENDED, LIST-STATUS, SPECIAL-USE), LSUB
 *   fa_imap_fetch.c     FETCH, UID FETCH: every data item, streamed; with
 *                       fa_imap_fetch_meta.c, _body.c, _decode.c (fa_imap_fetch.h)
 *   fa_imap_store.c     STORE, COPY, MOVE, EXPUNGE, UID EXPUNGE
 *   fa_imap_append.c    APPEND, its literal streamed into the store
 *   fa_imap_search.c    SEARCH, ESEARCH; the search engine in
 *                       fa_imap_search_key.c, _run.c, _text.c (fa_imap_search.h)
 *   fa_imap_sort.c      SORT; base subjects
 *   fa_imap_thread.c    THREAD (REFERENCES, ORDEREDSUBJECT)
 *   fa_imap_idle.c      IDLE
 *   fa_imap_quota.c     GETQUOTA, GETQUOTAROOT, SETQUOTA
 *   fa_imap_compress.c  COMPRESS=DEFLATE
 */

#ifndef FA_IMAP_INT_H
#define FA_IMAP_INT_H

#include "fa_core.h"
#include "fa_storage.h"
#include "fa_imap_parser.h"

#define FA_IMAP_LINE_MAX         65536      /* one line of a command */
#define FA_IMAP_COMMAND_MAX      (1024 * 1024)   /* a command, its literals included */
#define FA_IMAP_HIGH_WATER       (256 * 1024)
#define FA_IMAP_LOW_WATER        (64 * 1024)

typedef struct fa_imap_conf_s     fa_imap_conf_t;
typedef struct fa_imap_session_s  fa_imap_session_t;
typedef struct fa_imap_view_s     fa_imap_view_t;

struct fa_imap_conf_s {
    fa_array_t         *listen;            /* fa_listen_opt_t, this scope's own */
    fa_ssl_t           *ssl;               /* STARTTLS; NULL: not offered */
    fa_msec_t           timeout;           /* autologout: 30 minutes at least */
    fa_int_t            auth_plaintext;    /* LOGIN without TLS */
    fa_msec_t           auth_failure_delay;
    fa_int_t            max_auth_failures;
    size_t              max_message_size;  /* APPEND */
    fa_int_t            default_folders;   /* Drafts, Sent, Trash, Junk, Archive */
};

/* RFC 9051 3 */
typedef enum {
    FA_IMAP_NOT_AUTHENTICATED = 0,
    FA_IMAP_AUTHENTICATED,
    FA_IMAP_SELECTED,
    FA_IMAP_LOGGED_OUT
} fa_imap_state_t;

/* what the session's input is */
typedef enum {
    FA_IMAP_IN_COMMAND = 0,    /* lines of a command */
    FA_IMAP_IN_LITERAL,        /* a literal's bytes, into the command buffer */
    FA_IMAP_IN_STREAM,         /* a literal's bytes, to a command (APPEND) */
    FA_IMAP_IN_DISCARD,        /* a literal's bytes, dropped (refused) */
    FA_IMAP_IN_LINE,           /* one line for a command (SASL, IDLE's DONE) */
    FA_IMAP_IN_BUSY            /* a command runs; input waits */
} fa_imap_input_t;

/*
 * A running command.  Its handler returns FA_OK (the tagged reply is
 * written), or FA_AGAIN: it went to the store or elsewhere, and calls
 * fa_imap_done() (or its output job finishes) later.  Everything it
 * allocates goes in pool, freed when it ends.
 */
typedef struct fa_imap_cmd_s  fa_imap_cmd_t;
typedef fa_int_t (*fa_imap_handler_pt)(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
typedef fa_int_t (*fa_imap_line_pt)(fa_imap_session_t *s, fa_line_t *line);
typedef fa_int_t (*fa_imap_stream_pt)(fa_imap_session_t *s, const u_char *p, size_t n,
    int last);
typedef fa_int_t (*fa_imap_resume_pt)(fa_imap_session_t *s);   /* output drained */

struct fa_imap_cmd_s {
    fa_imap_command_t       parsed;
    fa_pool_t              *pool;
    const struct fa_imap_cmd_def_s *def;
    void                   *data;        /* the handler's state */
    fa_imap_line_pt         on_line;     /* FA_IMAP_IN_LINE */
    fa_imap_stream_pt       on_stream;   /* FA_IMAP_IN_STREAM */
    fa_imap_resume_pt       on_drain;    /* output below the low water mark again */
};

/* the command table (fa_imap_command.c) */
#define FA_IMAP_NOT_AUTH_OK  0x01       /* allowed before login */
#define FA_IMAP_AUTH_OK      0x02       /* allowed logged in */
#define FA_IMAP_SELECTED_OK  0x04       /* allowed with a mailbox selected */
#define FA_IMAP_UID_OK       0x08       /* takes the UID prefix */
#define FA_IMAP_NO_EXPUNGE   0x10       /* no EXPUNGE responses during it (FETCH...) */

typedef struct fa_imap_cmd_def_s {
    const char          *name;
    fa_imap_handler_pt   handler;
    fa_uint_t            flags;
    const char          *stat;          /* the command's counter name */
} fa_imap_cmd_def_t;

struct fa_imap_session_s {
    fa_connection_t        *c;
    fa_imap_conf_t         *conf;
    fa_imap_state_t         state;
    fa_imap_input_t         input;
    fa_str_t                user;            /* the logged-in account */
    fa_storage_t           *store;
    fa_imap_view_t         *view;            /* the selected mailbox, or NULL */
    fa_imap_cmd_t          *cmd;             /* the running command, or NULL */

    /* collecting a command: its lines and literals, up to FA_IMAP_COMMAND_MAX */
    u_char                 *buf;
    size_t                  len, size;
    uint64_t                literal_left;

    fa_event_t              delay;           /* failed logins */
    fa_uint_t               auth_failures;
    void                   *login;           /* fa_auth_login_t in flight */
    void                   *deflate;         /* COMPRESS=DEFLATE's streams, or NULL */

    /* ENABLE / capabilities in use */
    unsigned                rev2:1;          /* IMAP4rev2 */
    unsigned                utf8:1;          /* UTF8=ACCEPT (or rev2): names in UTF-8 */
    unsigned                condstore:1;
    unsigned                qresync:1;
    unsigned                compressed:1;
    /* the loop */
    unsigned                in_process:1;
    unsigned                blocked:1;
    unsigned                tls_wait:1;
    unsigned                closing:1;       /* BYE sent: close once flushed */
    unsigned                idling:1;
    unsigned                appending:1;     /* an APPEND between its messages */
    unsigned                gone:1;          /* the client went; store calls pending */
    fa_uint_t               in_flight;       /* store calls whose callback gets s */

    /* totals for the logout line */
    uint64_t                commands;
    fa_msec_t               login_msec;
};

/* fa_imap_module.c */
extern fa_module_t  fa_imap_module;
void fa_imap_count_command(const char *name);
extern fa_stat_t  *fa_imap_stat_logins, *fa_imap_stat_login_failures;
extern fa_stat_t  *fa_imap_stat_bytes_in, *fa_imap_stat_bytes_out;

/* fa_imap_session.c */
void fa_imap_init_session(fa_connection_t *c);
fa_int_t fa_imap_send(fa_imap_session_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));            /* one line, CRLF added */
fa_int_t fa_imap_write(fa_imap_session_t *s, const void *data, size_t len);
fa_int_t fa_imap_tagged(fa_imap_session_t *s, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));            /* "tag OK ..." of the command */
fa_int_t fa_imap_bad(fa_imap_session_t *s, const char *text);
void fa_imap_done(fa_imap_session_t *s);             /* an FA_AGAIN command ended */
void fa_imap_read_line(fa_imap_session_t *s, fa_imap_line_pt fn);   /* next line to fn */
void fa_imap_read_stream(fa_imap_session_t *s, uint64_t size, fa_imap_stream_pt fn);
int fa_imap_output_full(fa_imap_session_t *s);        /* over the high water mark */
void fa_imap_wait_drain(fa_imap_session_t *s, fa_imap_resume_pt fn);
void fa_imap_wake(fa_imap_session_t *s);              /* after a store callback */
/*
 * Store calls whose callback gets the session: rc = fa_imap_call(s, call),
 * and every such callback starts with "if (fa_imap_answered(s)) return;",
 * so a session whose client went away lives until the last one answered.
 */
fa_int_t fa_imap_call(fa_imap_session_t *s, fa_int_t rc);
int fa_imap_answered(fa_imap_session_t *s);
void fa_imap_starttls_begin(fa_imap_session_t *s);
void fa_imap_logout_line(fa_imap_session_t *s, const char *why);

/* fa_imap_command.c */
const fa_imap_cmd_def_t *fa_imap_command_find(const fa_str_t *name);
fa_int_t fa_imap_capability_line(fa_imap_session_t *s, int untagged);
size_t fa_imap_capabilities(fa_imap_session_t *s, char *buf, size_t size);

/* fa_imap_auth.c */
fa_int_t fa_imap_login(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_authenticate(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
int fa_imap_login_allowed(fa_imap_session_t *s);
void fa_imap_auth_cancel(fa_imap_session_t *s);

/* fa_imap_view.c */
struct fa_imap_view_s {
    fa_pool_t              *pool;
    fa_mailbox_t           *box;
    fa_str_t                name;            /* UTF-8, as the store names it */
    unsigned                readonly:1;      /* EXAMINE */
    unsigned                changed:1;       /* the watch fired: updates pending */
    unsigned                refreshing:1;
    uint32_t                uidvalidity;
    uint32_t                uidnext;
    uint64_t                highestmodseq;   /* as far as this session was told */
    uint32_t               *uids;            /* MSN n is uids[n - 1] */
    fa_uint_t               n, size;
    fa_str_t               *keywords;
    fa_uint_t               nkeywords;
    fa_storage_watch_t     *watch;
};

fa_int_t fa_imap_select(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_close(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_unselect(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
void fa_imap_view_free(fa_imap_session_t *s);
uint32_t fa_imap_view_msn(fa_imap_view_t *v, uint32_t uid);          /* 0: not there */
/* a sequence set (MSNs, or UIDs with uid) to the UIDs it names, ascending */
fa_int_t fa_imap_view_uids(fa_imap_session_t *s, const fa_str_t *set, int uid,
    fa_pool_t *pool, fa_uid_set_t *out);
/*
 * Tell the client what changed (EXISTS, EXPUNGE, FETCH FLAGS), if anything
 * did, then call next.  expunges: 0 during FETCH, STORE and SEARCH by MSN
 * (RFC 9051 7.5.1).  Returns FA_OK when nothing was pending (next not
 * called), FA_AGAIN when the store was asked (next called later).
 */
fa_int_t fa_imap_view_update(fa_imap_session_t *s, int expunges, fa_imap_resume_pt next);
/*
 * Keyword bits past the view's table (keywords made since SELECT, by this
 * session's STORE or another writer; the table only grows): learn their
 * names, tell the client (FLAGS), then call next.  FA_OK when the view
 * names them all (next not called), FA_AGAIN when the store was asked.
 */
fa_int_t fa_imap_view_keywords(fa_imap_session_t *s, uint64_t keywords,
    fa_imap_resume_pt next);
void fa_imap_view_expunged(fa_imap_session_t *s, const uint32_t *uids, fa_uint_t n);
fa_int_t fa_imap_view_keyword_list(fa_imap_session_t *s, char *buf, size_t size);
size_t fa_imap_flags_render(fa_imap_view_t *v, uint32_t flags, uint64_t keywords,
    char *buf, size_t size);
fa_int_t fa_imap_flags_parse(fa_imap_session_t *s, const fa_imap_arg_t *list,
    fa_pool_t *pool, uint32_t *flags, fa_str_t **keywords, fa_uint_t *nkeywords);

/* fa_imap_mailbox.c */
fa_int_t fa_imap_name_in(fa_imap_session_t *s, const fa_imap_arg_t *arg, fa_pool_t *pool,
    fa_str_t *name);                               /* wire -> store (mUTF-7 unless UTF-8) */
fa_int_t fa_imap_name_out(fa_imap_session_t *s, const fa_str_t *name, fa_pool_t *pool,
    fa_str_t *out);                                /* store -> wire, quoted if needed */
fa_int_t fa_imap_create(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_delete(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_rename(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_subscribe(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_unsubscribe(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_status(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_namespace(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
/* the store's error as a tagged NO with its response code */
fa_int_t fa_imap_storage_no(fa_imap_session_t *s, fa_int_t rc, const char *what);
/* STATUS items: "(MESSAGES UNSEEN)" to bits (0: malformed), and the response */
fa_uint_t fa_imap_status_parse(const fa_imap_arg_t *list);
fa_int_t fa_imap_status_line(fa_imap_session_t *s, const fa_str_t *wire, fa_uint_t bits,
    const fa_mailbox_status_t *st);

/* fa_imap_list.c */
fa_int_t fa_imap_list(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_lsub(fa_imap_session_t *s, fa_imap_cmd_t *cmd);

/* fa_imap_fetch.c */
fa_int_t fa_imap_fetch(fa_imap_session_t *s, fa_imap_cmd_t *cmd);

/* fa_imap_store.c */
fa_int_t fa_imap_store(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_copy(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_move(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_expunge(fa_imap_session_t *s, fa_imap_cmd_t *cmd);

/* fa_imap_append.c */
fa_int_t fa_imap_append(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
/* the session met APPEND's message literal: take it (FA_OK) or not */
fa_int_t fa_imap_append_literal(fa_imap_session_t *s, uint64_t size, int sync, int binary);

/* fa_imap_search.c (and fa_imap_search_key.c, _run.c, _text.c: fa_imap_search.h) */
fa_int_t fa_imap_search(fa_imap_session_t *s, fa_imap_cmd_t *cmd);

/*
 * The search engine SEARCH, SORT and THREAD share.  fa_imap_search_parse
 * reads "[CHARSET name] key ..." (charset_first: SORT's and THREAD's
 * charset that comes first, without the word CHARSET); FA_DECLINED means
 * it answered (BAD, or NO [BADCHARSET]).  fa_imap_search_run walks the
 * view in batches of metadata and calls hit for each matching message, in
 * MSN order, with the header fields want asks for (1 << FA_IMAP_HDR_*:
 * raw, unfolded, data NULL when absent); then end, which writes the result
 * and the tagged reply and returns FA_OK, or parks on the output with
 * fa_imap_wait_drain and returns FA_AGAIN.  run returns what a command
 * handler returns; a failure of the store is answered by the engine.
 */
enum {
    FA_IMAP_HDR_DATE = 0, FA_IMAP_HDR_SUBJECT, FA_IMAP_HDR_FROM, FA_IMAP_HDR_TO,
    FA_IMAP_HDR_CC, FA_IMAP_HDR_MESSAGE_ID, FA_IMAP_HDR_IN_REPLY_TO,
    FA_IMAP_HDR_REFERENCES, FA_IMAP_HDR_N
};

typedef struct fa_imap_search_s  fa_imap_search_t;

typedef struct {
    uint32_t                  msn;
    const fa_message_meta_t  *meta;
    fa_str_t                  hdr[FA_IMAP_HDR_N];
    fa_pool_t                *pool;          /* scratch: emptied after the call */
} fa_imap_search_hit_t;

typedef fa_int_t (*fa_imap_search_hit_pt)(fa_imap_session_t *s, fa_imap_search_hit_t *hit);
typedef fa_int_t (*fa_imap_search_end_pt)(fa_imap_session_t *s);

fa_int_t fa_imap_search_parse(fa_imap_session_t *s, fa_imap_cmd_t *cmd,
    const fa_imap_arg_t *args, fa_uint_t nargs, int charset_first, fa_imap_search_t **out);
fa_int_t fa_imap_search_run(fa_imap_session_t *s, fa_imap_search_t *se, fa_uint_t want,
    fa_imap_search_hit_pt hit, fa_imap_search_end_pt end);
int fa_imap_search_has_modseq(const fa_imap_search_t *se);
/* " 1 2 3" (or compact: "1:3,5") from nums[*i] on; FA_AGAIN: the output is full */
fa_int_t fa_imap_write_numbers(fa_imap_session_t *s, const uint32_t *nums, fa_uint_t n,
    fa_uint_t *i, int compact);

/* fa_imap_sort.c (and fa_imap_thread.c) */
fa_int_t fa_imap_sort(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_thread(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
/*
 * RFC 5256 2.1: the base subject of a raw Subject field, decoded to UTF-8,
 * in pool; *reply: it was a reply or a forward (Re:, Fwd:, (fwd), [fwd: ]).
 */
fa_int_t fa_imap_base_subject(fa_pool_t *pool, const fa_str_t *raw, fa_str_t *out,
    int *reply);
/*
 * An RFC 5322 date-time, leniently: the moment (UTC) and the day as
 * written (days since 1970-01-01, the sender's zone); FA_DECLINED when
 * it cannot be read.  fa_imap_date_day: IMAP's "1-Feb-1994".
 */
fa_int_t fa_imap_date_parse(const u_char *p, size_t n, time_t *utc, int64_t *day);
fa_int_t fa_imap_date_day(const fa_str_t *s, int64_t *day);
/* the sent date RFC 5256 sorts by: the Date field, else the internal date */
time_t fa_imap_sent_date(const fa_imap_search_hit_t *hit);
/* i;ascii-casemap */
int fa_imap_casemap_cmp(const fa_str_t *a, const fa_str_t *b);

/* fa_imap_idle.c */
fa_int_t fa_imap_idle(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
/* IDLE's updates were told: wait for DONE again (a resume for fa_imap_view_update) */
fa_int_t fa_imap_idle_resume(fa_imap_session_t *s);

/* fa_imap_quota.c */
fa_int_t fa_imap_getquota(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_getquotaroot(fa_imap_session_t *s, fa_imap_cmd_t *cmd);
fa_int_t fa_imap_setquota(fa_imap_session_t *s, fa_imap_cmd_t *cmd);

/* fa_imap_compress.c */
fa_int_t fa_imap_compress(fa_imap_session_t *s, fa_imap_cmd_t *cmd);

#endif /* FA_IMAP_INT_H */
