/*
 * The POP3 module's own header (RFC 1939, 2449 CAPA, 2595 STLS, 5034 SASL).
 *
 *   fa_pop3_module.c    directives, servers and listeners, counters
 *   fa_pop3_session.c   a connection's life: greeting, reading commands,
 *                       replies, timeouts, STLS, the IN-USE lock
 *   fa_pop3_command.c   the commands of the AUTHORIZATION state: CAPA, USER,
 *                       PASS, AUTH PLAIN, STLS, QUIT
 *   fa_pop3_maildrop.c  the TRANSACTION and UPDATE states: STAT, LIST, UIDL,
 *                       RETR and TOP (streamed), DELE, RSET, NOOP, QUIT
 *
 * The maildrop is INBOX, as Dovecot gives it: its messages are numbered
 * 1..n at login, deletions are marked in the session and done at QUIT
 * (store \Deleted, then expunge those UIDs), and a dropped connection
 * deletes nothing.  UIDL is "<UID><UIDVALIDITY>", each as 8 hex digits,
 * Dovecot's default, so it is stable across sessions and protocols.
 */

#ifndef FA_POP3_INT_H
#define FA_POP3_INT_H

#include "fa_core.h"
#include "fa_storage.h"

#define FA_POP3_LINE_MAX      1024      /* RFC 2449: 255 for commands; SASL more */
#define FA_POP3_HIGH_WATER    (256 * 1024)
#define FA_POP3_LOW_WATER     (64 * 1024)
#define FA_POP3_CHUNK         65536

typedef struct {
    fa_array_t         *listen;
    fa_ssl_t           *ssl;
    fa_msec_t           timeout;             /* RFC 1939: at least 10 minutes */
    fa_int_t            auth_plaintext;
    fa_msec_t           auth_failure_delay;
    fa_int_t            max_auth_failures;
    fa_int_t            lock;                /* IN-USE: one session per user */
    fa_str_t            lock_path;
    fa_int_t            expire;              /* days; -1: NEVER; -2: not said */
    fa_msec_t           login_delay;         /* 0: not said */
} fa_pop3_conf_t;

typedef enum {
    FA_POP3_AUTHORIZATION = 0,
    FA_POP3_TRANSACTION,
    FA_POP3_UPDATE
} fa_pop3_state_t;

typedef struct {
    uint32_t            uid;
    uint64_t            size;                /* as stored: CRLF */
    time_t              internal_date;
    unsigned            deleted:1;
    unsigned            retrieved:1;
} fa_pop3_msg_t;

typedef struct fa_pop3_session_s  fa_pop3_session_t;

struct fa_pop3_session_s {
    fa_connection_t    *c;
    fa_pop3_conf_t     *conf;
    fa_pop3_state_t     state;
    fa_storage_t       *store;
    char                user[321];           /* the account, once logged in */
    char                login[321];          /* USER's argument */
    size_t              user_len;

    fa_mailbox_t       *box;
    uint32_t            uidvalidity;
    fa_pop3_msg_t      *msgs;                /* message n is msgs[n - 1] */
    fa_uint_t           n;
    fa_pool_t          *pool;                /* the maildrop's */
    int                 lock_fd;
    fa_uid_set_t        gone_set;            /* QUIT: what is deleted */

    /* a RETR or TOP streaming out */
    fa_msg_stream_t    *stream;
    uint64_t            offset;
    int64_t             top_lines;           /* TOP: body lines left; -1: all (RETR) */
    unsigned            line_start:1;
    unsigned            in_body:1;
    unsigned            cr:1;
    unsigned            empty_line:1;

    fa_event_t          delay;               /* failed logins */
    fa_uint_t           auth_failures;
    void               *auth;                /* fa_auth_login_t in flight */
    fa_uint_t           in_flight;           /* store calls whose callback gets s */

    unsigned            busy:1;              /* a command waits: input waits */
    unsigned            in_process:1;
    unsigned            blocked:1;
    unsigned            tls_wait:1;
    unsigned            closing:1;
    unsigned            gone:1;
    unsigned            sasl_wait:1;         /* AUTH PLAIN: the next line is the response */

    /* totals for the logout line */
    fa_uint_t           retrieved, deleted;
    uint64_t            retrieved_bytes;
    fa_msec_t           login_msec;
};

/* fa_pop3_module.c */
extern fa_module_t  fa_pop3_module;
extern fa_stat_t   *fa_pop3_stat_logins, *fa_pop3_stat_login_failures,
                   *fa_pop3_stat_retr, *fa_pop3_stat_dele, *fa_pop3_stat_bytes;

/* fa_pop3_session.c */
void fa_pop3_init_session(fa_connection_t *c);
fa_int_t fa_pop3_ok(fa_pop3_session_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
fa_int_t fa_pop3_err(fa_pop3_session_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fa_pop3_continue(fa_pop3_session_t *s);        /* a waiting command is done */
fa_int_t fa_pop3_call(fa_pop3_session_t *s, fa_int_t rc);
int fa_pop3_answered(fa_pop3_session_t *s);         /* 1: the session is gone */
void fa_pop3_starttls(fa_pop3_session_t *s);
void fa_pop3_logout_line(fa_pop3_session_t *s, const char *why);

/* fa_pop3_command.c */
fa_int_t fa_pop3_command(fa_pop3_session_t *s, fa_line_t *line);
fa_int_t fa_pop3_capa(fa_pop3_session_t *s);
void fa_pop3_auth_cancel(fa_pop3_session_t *s);
fa_int_t fa_pop3_lock(fa_pop3_session_t *s);      /* FA_OK, FA_BUSY (in use), FA_ERROR */
void fa_pop3_unlock(fa_pop3_session_t *s);

/* fa_pop3_maildrop.c */
fa_int_t fa_pop3_maildrop_open(fa_pop3_session_t *s);   /* FA_AGAIN: continues later */
fa_int_t fa_pop3_transaction(fa_pop3_session_t *s, const fa_str_t *cmd, fa_str_t *arg);
fa_int_t fa_pop3_stream(fa_pop3_session_t *s);     /* RETR/TOP: more output, FA_OK when done */
void fa_pop3_maildrop_close(fa_pop3_session_t *s);
fa_int_t fa_pop3_update(fa_pop3_session_t *s);     /* QUIT in TRANSACTION */

#endif /* FA_POP3_INT_H */
