/*
 * The SMTP module's public face: what a hook module (the Lua engine, a
 * vendor's policy module) sees of a session and a transaction, and how it
 * attaches to the phases.  One session engine serves three roles: MX,
 * submission and LMTP (docs/smtp.md).
 *
 * Phases and chains
 *   Each phase runs a chain of handlers in registration order, then the
 *   built-in policy of that phase.  A handler answers:
 *
 *     CONTINUE    next handler (after the last: the built-in policy)
 *     ACCEPT      stop the chain: what the phase asked is granted
 *     REJECT      stop: a permanent refusal (5xx)
 *     DEFER       stop: a temporary refusal (4xx)
 *     DISCARD     (data end, route) accept the message and deliver nothing
 *     DISCONNECT  reply and close the session
 *     WAIT        the handler went off to do I/O; it calls fa_smtp_resume()
 *                 with its answer, from the event loop, exactly once
 *
 *   The relay rule is not a handler: a recipient outside the local domains
 *   from a client that did not authenticate and is not in relay_from is
 *   refused before the rcpt chain runs, so no hook can open a relay.
 *
 * Phases: CONNECT (before the greeting), HELO (EHLO/HELO/LHLO; s->helo is
 * set), AUTH (a SASL exchange succeeded: s->user is set; REJECT turns it
 * into a failure), MAIL (txn->from), RCPT (s->rcpt is the recipient being
 * added, already resolved: its route, user and mailbox may be changed),
 * DATA_HEADERS (the header block is in, editable with fa_smtp_header_*),
 * DATA_END (the whole message is in: fa_smtp_body_read), ROUTE (before
 * delivery: each recipient's route, user and mailbox may be changed).
 */

#ifndef FA_SMTP_H
#define FA_SMTP_H

#include "fa_core.h"

typedef enum {
    FA_SMTP_PHASE_CONNECT = 0,
    FA_SMTP_PHASE_HELO,
    FA_SMTP_PHASE_AUTH,
    FA_SMTP_PHASE_MAIL,
    FA_SMTP_PHASE_RCPT,
    FA_SMTP_PHASE_DATA_HEADERS,
    FA_SMTP_PHASE_DATA_END,
    FA_SMTP_PHASE_ROUTE,
    FA_SMTP_NPHASES
} fa_smtp_phase_t;

typedef enum {
    FA_SMTP_CONTINUE = 0,
    FA_SMTP_ACCEPT,
    FA_SMTP_REJECT,
    FA_SMTP_DEFER,
    FA_SMTP_DISCARD,
    FA_SMTP_DISCONNECT,
    FA_SMTP_WAIT
} fa_smtp_verdict_t;

typedef enum {
    FA_SMTP_ROLE_MX = 0,
    FA_SMTP_ROLE_SUBMISSION,
    FA_SMTP_ROLE_LMTP
} fa_smtp_role_t;

/* where a recipient's copy goes */
typedef enum {
    FA_SMTP_ROUTE_LOCAL = 0,     /* user's mailbox in the store */
    FA_SMTP_ROUTE_QUEUE,         /* the outbound queue (remote, or forwarded) */
    FA_SMTP_ROUTE_DISCARD        /* nowhere, accepted */
} fa_smtp_route_t;

/*
 * A handler's answer: a code (0: the phase's default for the verdict) and
 * a text "X.Y.Z words" (empty: the default), without the line end; the
 * text must live in the session's or the transaction's pool, or be static.
 */
typedef struct {
    fa_smtp_verdict_t   verdict;
    fa_uint_t           code;
    fa_str_t            text;
} fa_smtp_answer_t;

typedef struct {
    fa_str_t            address;      /* "local@domain" as given; "" for <> */
    fa_str_t            local;        /* unquoted local part */
    fa_str_t            domain;       /* lower case */
} fa_smtp_addr_t;

typedef struct {
    fa_smtp_addr_t      addr;
    fa_str_t            notify;       /* DSN NOTIFY=, "" if not given */
    fa_str_t            orcpt;        /* DSN ORCPT=, decoded xtext */
    fa_smtp_route_t     route;
    fa_str_t            user;         /* LOCAL: the canonical account */
    fa_str_t            mailbox;      /* LOCAL: the folder ("INBOX") */
    fa_str_t            reason;       /* QUEUE: why (empty: remote domain) */
    /* LMTP: this recipient's own reply after DATA */
    fa_uint_t           code;
    const char         *status;       /* "2.0.0 ..." */
    /*
     * LMTP answers once per RCPT the client gave, so a hook's edits keep
     * that count: a recipient a hook added gets no reply of its own, and
     * one it removed stays in the list, routed nowhere, and is answered.
     */
    unsigned            added:1;      /* by fa_smtp_rcpt_add() */
    unsigned            removed:1;    /* by fa_smtp_rcpt_remove(): hooks no longer see it */
} fa_smtp_rcpt_t;

typedef struct {
    fa_str_t            name;         /* as written */
    fa_str_t            value;        /* after the colon, folding kept, no CRLF */
    unsigned            deleted:1;
} fa_smtp_header_t;

typedef struct fa_smtp_spool_s    fa_smtp_spool_t;
typedef struct fa_smtp_txn_s      fa_smtp_txn_t;
typedef struct fa_smtp_session_s  fa_smtp_session_t;

struct fa_smtp_txn_s {
    fa_pool_t          *pool;         /* freed at RSET or the end of the message */
    char                id[24];       /* queue id: hex, unique across workers */
    fa_smtp_addr_t      from;
    fa_str_t            ret;          /* DSN RET=FULL|HDRS */
    fa_str_t            envid;        /* DSN ENVID=, decoded */
    uint64_t            size_param;   /* SIZE= (0: none) */
    fa_array_t          rcpts;        /* fa_smtp_rcpt_t, in RCPT order */
    fa_array_t          headers;      /* fa_smtp_header_t: the message's own */
    fa_array_t          added;        /* fa_smtp_header_t: prepended, in order */
    uint64_t            size;         /* octets of the message as received */
    fa_smtp_spool_t    *spool;        /* the body after the header block */
    fa_msec_t           start;        /* MAIL time, for the delay in the log */
    unsigned            smtputf8:1;
    unsigned            body_8bit:1;  /* BODY=8BITMIME (or BINARYMIME) */
};

struct fa_smtp_session_s {
    fa_connection_t    *c;
    fa_smtp_role_t      role;
    fa_str_t            helo;         /* as given to EHLO/HELO/LHLO; until the next */
    fa_str_t            user;         /* authenticated account, "" if none */
    fa_smtp_txn_t      *txn;          /* NULL outside a transaction */
    fa_smtp_rcpt_t     *rcpt;         /* the RCPT phase's recipient */
    void              **ctx;          /* per module (by index), for hooks */
    void               *priv;         /* the engine's own state: not for hooks */
    unsigned            esmtp:1;
    unsigned            relay_client:1;   /* address in relay_from */
};

typedef fa_smtp_verdict_t (*fa_smtp_handler_pt)(fa_smtp_session_t *s,
    fa_smtp_phase_t phase, void *data, fa_smtp_answer_t *answer);

extern fa_module_t  fa_smtp_module;

/* from a module's init_conf: append a handler to a phase's chain */
fa_int_t fa_smtp_handler_add(fa_conf_t *cf, fa_smtp_phase_t phase,
    fa_smtp_handler_pt handler, void *data);

/* after WAIT: the handler's answer; the chain goes on from the loop */
void fa_smtp_resume(fa_smtp_session_t *s, const fa_smtp_answer_t *answer);

const char *fa_smtp_phase_name(fa_smtp_phase_t phase);

/* per-module session data for hooks, cleared when the session ends */
void *fa_smtp_get_ctx(fa_smtp_session_t *s, const fa_module_t *m);
fa_int_t fa_smtp_set_ctx(fa_smtp_session_t *s, const fa_module_t *m, void *ctx);

/*
 * Headers, from DATA_HEADERS on: names compare case-insensitively; n is
 * the occurrence (0 the first).  Values are copied into the transaction.
 */
fa_smtp_header_t *fa_smtp_header_get(fa_smtp_txn_t *t, const fa_str_t *name, fa_uint_t n);
fa_int_t fa_smtp_header_add(fa_smtp_txn_t *t, const fa_str_t *name, const fa_str_t *value);
fa_uint_t fa_smtp_header_remove(fa_smtp_txn_t *t, const fa_str_t *name);  /* how many */
fa_int_t fa_smtp_header_replace(fa_smtp_txn_t *t, const fa_str_t *name,
    const fa_str_t *value);

/*
 * Recipients, while a transaction is open.  An address a hook adds or
 * rewrites to is routed as RCPT routes (a local user or alias, else the
 * queue) but without the relay rule: forwarding a message is the
 * operator's decision, written in the operator's script.  NULL or not
 * FA_OK with *err saying why ("5.1.1 <x@y>: ... User unknown", "not an
 * address").  Remove is by index in txn->rcpts: a recipient the client
 * gave is only marked removed (route DISCARD), one a hook added goes.
 */
fa_smtp_rcpt_t *fa_smtp_rcpt_add(fa_smtp_session_t *s, const fa_str_t *address,
    const char **err);
fa_int_t fa_smtp_rcpt_rewrite(fa_smtp_session_t *s, fa_smtp_rcpt_t *r,
    const fa_str_t *address, const char **err);
void fa_smtp_rcpt_remove(fa_smtp_txn_t *t, fa_uint_t i);

/* "smarthost NAME HOST[:PORT];": the address, or NULL when there is no such name */
const fa_str_t *fa_smtp_smarthost(const fa_str_t *name);

/* the body (after the header block), from DATA_END on: bytes read or -1 */
ssize_t fa_smtp_body_read(fa_smtp_txn_t *t, uint64_t offset, u_char *buf, size_t len);
uint64_t fa_smtp_body_size(fa_smtp_txn_t *t);

#endif /* FA_SMTP_H */
