/*
 * The SMTP module's own header: configuration, the engine's private session
 * state, and the functions its files share.  Hook modules use fa_smtp.h.
 *
 *   fa_smtp_module.c    directives, servers and listeners, per-domain policy
 *   fa_smtp_limit.c     connections per client address (shared memory)
 *   fa_smtp_session.c   a connection's life: greeting, reading, replies, TLS
 *   fa_smtp_command.c   the command table and the envelope commands
 *   fa_smtp_address.c   paths and ESMTP parameters (RFC 5321, 3461, 6531)
 *   fa_smtp_auth.c      AUTH PLAIN and LOGIN
 *   fa_smtp_data.c      DATA and BDAT: the message into the spool
 *   fa_smtp_spool.c     the spool: memory, then a temporary file
 *   fa_smtp_phase.c     handler chains and their answers
 *   fa_smtp_rcpt.c      recipient resolution: local users, aliases, relay
 *   fa_smtp_deliver.c   delivery into the store and the outbound queue
 *   fa_smtp_header.c    the header block: parsing and fa_smtp_header_*
 */

#ifndef FA_SMTP_INT_H
#define FA_SMTP_INT_H

#include "fa_core.h"
#include "fa_smtp.h"
#include "fa_storage.h"

#define FA_SMTP_LINE_MAX          998        /* RFC 5321 4.5.3.1.4, without CRLF */
#define FA_SMTP_HELO_MAX          255        /* a domain name, or an address literal */
#define FA_SMTP_HEADER_BLOCK_MAX  (1024 * 1024)
#define FA_SMTP_ALIAS_DEPTH       8
#define FA_SMTP_EXPAND_MAX        1000       /* recipients after alias expansion */
#define FA_SMTP_HIGH_WATER        (64 * 1024)
#define FA_SMTP_LOW_WATER         (16 * 1024)
#define FA_SMTP_QUEUE_USER        "_queue"   /* no "@": never a directory account */

#define FA_SMTP_UNKNOWN_REJECT    0
#define FA_SMTP_UNKNOWN_ACCEPT    1

#define FA_SMTP_NEWLINE_REJECT    0
#define FA_SMTP_NEWLINE_NORMALIZE 1

typedef struct {
    int                 family;
    u_char              addr[16];
    fa_uint_t           bits;
} fa_smtp_cidr_t;

typedef struct {
    fa_smtp_handler_pt  handler;
    void               *data;
} fa_smtp_handler_t;

/*
 * One struct per scope: main, smtp, smtp.server, lmtp, lmtp.server and
 * domain.  In a domain scope nothing is merged (fields stay unset): the
 * domain's policy overrides the server's only where it says something.
 */
typedef struct fa_smtp_conf_s {
    fa_str_t            hostname;
    size_t              max_message_size;
    fa_int_t            max_recipients;
    fa_int_t            max_errors;
    fa_int_t            max_connections_per_ip;
    fa_msec_t           greeting_delay;
    fa_msec_t           timeout;
    fa_array_t         *relay_from;        /* fa_smtp_cidr_t */
    fa_uint_t           unknown_users;
    fa_uint_t           bare_newlines;
    fa_int_t            auth_plaintext;
    fa_msec_t           auth_failure_delay;
    fa_int_t            max_auth_failures;
    fa_int_t            submission;
    fa_str_t            spool_path;
    fa_array_t         *listen;            /* fa_listen_opt_t, this scope's own */
    fa_ssl_t           *ssl;               /* for STARTTLS; NULL: not offered */
    fa_smtp_role_t      role;
    /* domain NAME { }: its relay rules */
    fa_str_t            relay_to;          /* a relay domain, through this smarthost */
    const char         *relay_to_file;     /* where, for errors */
    fa_uint_t           relay_to_line;
    fa_int_t            relay_outbound;    /* its users may send to other domains */
    /* main scope only: the phase chains, for this cycle */
    fa_array_t         *smarthosts;        /* fa_smtp_smarthost_t */
    fa_array_t         *chains[FA_SMTP_NPHASES];   /* fa_smtp_handler_t */
} fa_smtp_conf_t;

/* where a session is */
typedef enum {
    FA_SMTP_ST_GREETING = 0,   /* before the greeting (delay, connect phase) */
    FA_SMTP_ST_COMMAND,        /* reading commands */
    FA_SMTP_ST_AUTH,           /* reading a SASL response line */
    FA_SMTP_ST_DATA,           /* reading DATA */
    FA_SMTP_ST_BDAT,           /* reading a BDAT chunk */
    FA_SMTP_ST_BUSY            /* a phase or the store is working; input waits */
} fa_smtp_state_t;

typedef struct {
    fa_str_t            name;
    fa_str_t            address;           /* HOST or HOST:PORT */
} fa_smtp_smarthost_t;

typedef void (*fa_smtp_next_pt)(fa_smtp_session_t *s, fa_smtp_answer_t *a);

/* the engine's part of a session (s->priv) */
typedef struct {
    fa_smtp_conf_t     *conf;              /* the server's */
    fa_smtp_conf_t     *main;              /* the main scope's: chains */
    fa_smtp_state_t     state;
    fa_uint_t           errors;
    fa_uint_t           auth_failures;
    u_char              helo[FA_SMTP_HELO_MAX + 1];   /* s->helo's bytes */
    fa_event_t          delay;             /* greeting delay, auth failure delay */
    void               *ip_slot;           /* fa_smtp_limit.c */
    /* a phase chain in progress */
    fa_smtp_phase_t     phase;
    fa_uint_t           handler;
    fa_uint_t           generation;        /* guards fa_smtp_resume */
    fa_smtp_next_pt     next;              /* what to do with the answer */
    unsigned            waiting:1;
    /* the session loop */
    unsigned            in_process:1;
    unsigned            blocked:1;
    unsigned            tls_wait:1;
    unsigned            quit:1;
    unsigned            closing:1;         /* reply then close (421) */
    /* AUTH */
    void               *login;             /* fa_auth_login_t in flight */
    fa_uint_t           auth_step;
    fa_uint_t           auth_mech;
    fa_str_t            auth_name;         /* AUTH LOGIN's user name */
    fa_uint_t           delayed_code;      /* a failure's answer, sent after the delay */
    const char         *delayed_text;
    /* DATA and BDAT */
    fa_uint_t           data_state;
    uint64_t            chunk_left;        /* BDAT bytes still to read */
    unsigned            rcpt_seen:1;       /* a RCPT in this transaction, valid or not */
    unsigned            bdat_last:1;
    unsigned            data_error:1;      /* read to the end, then refuse */
    unsigned            in_headers:1;
    unsigned            bare_newline:1;
    unsigned            has_nul:1;
    unsigned            too_big:1;
    fa_uint_t           data_fail_code;
    const char         *data_fail_text;
    u_char             *hbuf;              /* the header block while it comes */
    size_t              hlen, hsize;
    size_t              size_limit;        /* the smallest of the recipients' domains */
    /* delivery */
    void               *delivery;          /* fa_smtp_deliver.c, while commits run */
} fa_smtp_priv_t;

#define fa_smtp_priv(s)  ((fa_smtp_priv_t *) (s)->priv)

/* fa_smtp_module.c */
fa_smtp_conf_t *fa_smtp_main_conf(void);
fa_smtp_conf_t *fa_smtp_domain_conf(const fa_str_t *domain);   /* NULL: no domain block */
size_t fa_smtp_domain_max_size(fa_smtp_session_t *s, const fa_str_t *domain);
fa_int_t fa_smtp_domain_max_recipients(fa_smtp_session_t *s, const fa_str_t *domain);
fa_uint_t fa_smtp_domain_unknown_users(fa_smtp_session_t *s, const fa_str_t *domain);
fa_int_t fa_smtp_relay_reason(fa_pool_t *pool, const fa_str_t *name, fa_str_t *reason);
int fa_smtp_cidr_match(const fa_array_t *list, const struct sockaddr *sa);
extern fa_stat_t  *fa_smtp_stat_messages, *fa_smtp_stat_bytes, *fa_smtp_stat_rcpts;
void fa_smtp_count_reject(const char *reason);

/* fa_smtp_limit.c */
fa_int_t fa_smtp_limit_init(fa_conf_t *cf);
void *fa_smtp_limit_enter(fa_connection_t *c, fa_smtp_conf_t *conf, int *over);
void fa_smtp_limit_leave(void *slot);

/* fa_smtp_session.c */
void fa_smtp_init_session(fa_connection_t *c);
fa_int_t fa_smtp_reply(fa_smtp_session_t *s, fa_uint_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
fa_int_t fa_smtp_reply_answer(fa_smtp_session_t *s, const fa_smtp_answer_t *a,
    fa_uint_t code, const char *text);
void fa_smtp_error(fa_smtp_session_t *s);      /* counts a client error (max_errors) */
void fa_smtp_continue(fa_smtp_session_t *s);   /* after BUSY: read input again */
void fa_smtp_txn_end(fa_smtp_session_t *s);    /* RSET or after a message */
fa_int_t fa_smtp_txn_begin(fa_smtp_session_t *s);
const char *fa_smtp_protocol_name(fa_smtp_session_t *s);   /* ESMTPSA, LMTP... */

/* fa_smtp_command.c */
fa_int_t fa_smtp_command(fa_smtp_session_t *s, fa_line_t *line);

/* fa_smtp_address.c */
typedef struct {
    fa_str_t            name;              /* upper case */
    fa_str_t            value;             /* "" when absent */
} fa_smtp_param_t;

fa_int_t fa_smtp_parse_path(fa_pool_t *pool, const fa_str_t *arg, int allow_null,
    int utf8, fa_smtp_addr_t *addr, fa_str_t *rest, const char **why);
fa_int_t fa_smtp_parse_params(fa_pool_t *pool, const fa_str_t *rest,
    fa_smtp_param_t *params, fa_uint_t max, fa_uint_t *n);
fa_int_t fa_smtp_xtext_decode(fa_pool_t *pool, const fa_str_t *in, fa_str_t *out);
int fa_smtp_domain_valid(const fa_str_t *d, int utf8);
int fa_smtp_has_8bit(const u_char *p, size_t n);

/* fa_smtp_auth.c */
fa_int_t fa_smtp_auth_command(fa_smtp_session_t *s, fa_str_t *arg);
fa_int_t fa_smtp_auth_line(fa_smtp_session_t *s, fa_line_t *line);
int fa_smtp_auth_offered(fa_smtp_session_t *s);
void fa_smtp_auth_cancel(fa_smtp_session_t *s);

/* fa_smtp_data.c */
fa_int_t fa_smtp_data_command(fa_smtp_session_t *s);
fa_int_t fa_smtp_bdat_command(fa_smtp_session_t *s, fa_str_t *arg);
fa_int_t fa_smtp_data_read(fa_smtp_session_t *s);      /* FA_OK, FA_AGAIN, FA_DONE... */

/* fa_smtp_spool.c */
fa_smtp_spool_t *fa_smtp_spool_create(fa_pool_t *pool, const fa_str_t *dir, fa_log_t *log);
fa_int_t fa_smtp_spool_write(fa_smtp_spool_t *sp, const u_char *p, size_t n);
ssize_t fa_smtp_spool_read(fa_smtp_spool_t *sp, uint64_t off, u_char *buf, size_t len);
uint64_t fa_smtp_spool_size(fa_smtp_spool_t *sp);

/* fa_smtp_header.c */
fa_int_t fa_smtp_headers_parse(fa_smtp_txn_t *t, const u_char *p, size_t n);
size_t fa_smtp_headers_render(fa_smtp_txn_t *t, u_char *out, size_t size);   /* size needed */

/* fa_smtp_phase.c */
void fa_smtp_phase_run(fa_smtp_session_t *s, fa_smtp_phase_t phase, fa_smtp_next_pt next);
void fa_smtp_phase_cancel(fa_smtp_session_t *s);

/* fa_smtp_rcpt.c */
fa_int_t fa_smtp_rcpt_resolve(fa_smtp_session_t *s, fa_smtp_rcpt_t *r,
    fa_smtp_answer_t *a);
fa_int_t fa_smtp_is_local_domain(const fa_str_t *domain);

/* fa_smtp_deliver.c */
void fa_smtp_deliver(fa_smtp_session_t *s);
void fa_smtp_deliver_cancel(fa_smtp_session_t *s);

#endif /* FA_SMTP_INT_H */
