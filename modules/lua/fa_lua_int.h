/*
 * The Lua hook engine's own header (docs/lua.md).
 *
 *   fa_lua_module.c   directives, compiling the scripts at load (errors as
 *                     FILE:LINE), one state per worker, the phase bridges
 *   fa_lua_run.c      a hook call: a coroutine with a budget of
 *                     instructions and memory, yielding for I/O and
 *                     resumed from the event loop; errors become DEFER
 *   fa_lua_smtp.c     SMTP phases: the session and transaction objects
 *   fa_lua_api.c      the facteur table: verdicts, log, counters, sleep
 *   fa_lua_regex.c    facteur.regex: PCRE2, compiled once, JIT
 *   fa_lua_kv.c       facteur.kv: an LMDB store shared by the workers
 *   fa_lua_dns.c      facteur.dns: c-ares, yielding
 *   fa_lua_auth.c     custom authentication, and IMAP/POP3 login/logout
 *
 * Model: hooks are declared in the configuration, "lua_hook PHASE FILE;"
 * in smtp, imap, pop3 and domain blocks.  FILE is a Lua chunk that returns
 * the hook function; it runs once per worker when the state is made, so
 * what it computes at its top (regexes, tables) is shared by every call.
 * A call gets the session (and the transaction) and returns a verdict, or
 * nothing to go on.
 */

#ifndef FA_LUA_INT_H
#define FA_LUA_INT_H

#include "fa_core.h"
#include "fa_smtp.h"
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#if LUA_VERSION_NUM < 502
#define fa_lua_rawlen(L, i)       lua_objlen(L, i)
#define FA_LUA_OK                 0
#else
#define fa_lua_rawlen(L, i)       lua_rawlen(L, i)
#define FA_LUA_OK                 LUA_OK
#endif

#define FA_LUA_PHASE_MAX          16

/* what a hook is attached to */
typedef enum {
    FA_LUA_SMTP = 0,        /* smtp { }: MX and submission sessions */
    FA_LUA_LMTP,            /* lmtp { } */
    FA_LUA_ANY_SMTP,        /* domain { }: every SMTP role */
    FA_LUA_IMAP,
    FA_LUA_POP3,
    FA_LUA_MAILBOX          /* domain { }: IMAP and POP3 */
} fa_lua_proto_t;

typedef struct {
    fa_lua_proto_t      proto;
    fa_uint_t           phase;          /* fa_smtp_phase_t, or FA_LUA_LOGIN... */
    fa_str_t            file;           /* full path */
    fa_str_t            domain;         /* "" for everyone */
    const char         *conf_file;      /* where it was declared, for messages */
    fa_uint_t           conf_line;
    int                 ref;            /* the function, in the worker's state */
} fa_lua_hook_t;

/* IMAP and POP3 phases */
#define FA_LUA_LOGIN    0
#define FA_LUA_LOGOUT   1

typedef struct {
    fa_array_t         *hooks;          /* fa_lua_hook_t, main scope only */
    fa_str_t            package_path;
    fa_int_t            budget;         /* instructions per call */
    size_t              memory;         /* bytes of the worker's state */
    fa_msec_t           io_timeout;     /* a DNS lookup, a sleep */
    fa_str_t            kv_path;
    fa_str_t            dns_server;     /* "" : /etc/resolv.conf */
    fa_lua_hook_t       auth;           /* lua_auth FILE */
    unsigned            has_auth:1;
} fa_lua_conf_t;

/* one call of a hook, from start to verdict */
typedef struct fa_lua_call_s  fa_lua_call_t;
typedef void (*fa_lua_done_pt)(fa_lua_call_t *call);

struct fa_lua_call_s {
    lua_State          *co;             /* the coroutine */
    int                 co_ref;         /* keeps it alive in the registry */
    const fa_lua_hook_t *hook;
    fa_log_t           *log;
    fa_lua_done_pt      done;           /* the result is in the call */
    void               *data;           /* the caller's */
    fa_uint_t           generation;     /* a late resume finds it changed */
    uint64_t            serial;         /* objects given to this call check it */
    fa_uint_t           used;           /* instructions so far */
    fa_uint_t           line;           /* where the count hook last saw it */
    fa_event_t          timer;          /* sleep, I/O timeouts */
    void               *io;             /* a DNS query in flight */
    int                 dns_type;
    int                 nsync;          /* results of an answer given at once */
    /* the result */
    fa_int_t            rc;             /* FA_OK: a verdict; FA_ERROR: failed (DEFER) */
    int                 verdict;        /* fa_smtp_verdict_t values */
    fa_uint_t           code;
    char                text[512];
    char                folder[256];    /* quarantine */
    unsigned            running:1;
    unsigned            waiting:1;
    unsigned            cancelled:1;
};

#define FA_LUA_QUARANTINE  7            /* after the fa_smtp_verdict_t values */

/* an SMTP session's Lua side (fa_lua_smtp.c), in the session's pool */
typedef struct {
    fa_smtp_session_t  *s;
    fa_lua_conf_t      *conf;
    fa_lua_call_t      *call;           /* the hook waiting, or NULL */
    fa_uint_t           phase;
    fa_uint_t           next;           /* the next hook to look at */
    int                 vars_ref;       /* session.vars, or LUA_NOREF */
    /*
     * Quarantine or discard, for route.  Kept by value and tied to the
     * transaction by its id (unique): the transaction's pool is gone when
     * it ends, and the next one may get the same address.
     */
    char                later_id[24];   /* whose txn: "" for the whole session */
    char                quarantine[256];    /* the folder; "" with discard */
    unsigned            later:1;        /* quarantine or discard at route */
    unsigned            discard:1;
} fa_lua_smtp_t;

/* fa_lua_module.c */
extern fa_module_t  fa_lua_module;
lua_State *fa_lua_state(void);
fa_lua_conf_t *fa_lua_main_conf(void);

/* fa_lua_run.c */
void fa_lua_set_limits(fa_int_t budget, size_t memory);
void fa_lua_load_begin(lua_State *L);       /* a script's top level, under the budget */
void fa_lua_load_end(lua_State *L);
void *fa_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
size_t fa_lua_memory_used(void);
fa_lua_call_t *fa_lua_call_new(const fa_lua_hook_t *hook, int fn_ref, fa_log_t *log,
    fa_lua_done_pt done, void *data);
/* the arguments are pushed on call->co by the caller; FA_OK done, FA_AGAIN waits */
fa_int_t fa_lua_call_start(fa_lua_call_t *call, int nargs);
void fa_lua_call_resume(fa_lua_call_t *call, int nresults);    /* from an event */
void fa_lua_call_cancel(fa_lua_call_t *call);                  /* the session went */
void fa_lua_call_free(fa_lua_call_t *call);
fa_lua_call_t *fa_lua_current(lua_State *L);                   /* the call L runs */
int fa_lua_yield(lua_State *L, fa_lua_call_t *call);           /* for I/O functions */
int fa_lua_where(lua_State *co, int level, char *buf, size_t size);     /* "x.lua:12" */
int fa_lua_function_where(lua_State *co, int ref, char *buf, size_t size);
int fa_lua_has_position(const char *msg);

/* fa_lua_api.c */
int fa_lua_open_facteur(lua_State *L);
void fa_lua_verdict(fa_lua_call_t *call, lua_State *co, int nresults);

/* fa_lua_regex.c */
void fa_lua_regex_open(lua_State *L);

/* fa_lua_kv.c */
fa_int_t fa_lua_kv_init(fa_cycle_t *cycle, const fa_str_t *path);
void fa_lua_kv_done(void);
void fa_lua_kv_open(lua_State *L);

/* fa_lua_dns.c */
fa_int_t fa_lua_dns_check(fa_conf_t *cf, const fa_str_t *server);
char *fa_lua_dns_server_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
fa_int_t fa_lua_dns_init(fa_cycle_t *cycle, const fa_str_t *server, fa_msec_t timeout);
void fa_lua_dns_done(void);
void fa_lua_dns_open(lua_State *L);
void fa_lua_dns_cancel(fa_lua_call_t *call);

/* fa_lua_smtp.c */
fa_int_t fa_lua_smtp_register(fa_conf_t *cf, fa_lua_conf_t *conf);

/* fa_lua_session.c: the objects a hook gets */
void fa_lua_session_open(lua_State *L);
void fa_lua_push_session(lua_State *co, fa_lua_smtp_t *st, fa_lua_call_t *call);
void fa_lua_push_txn(lua_State *co, fa_lua_smtp_t *st, fa_lua_call_t *call);

/* fa_lua_auth.c */
void fa_lua_auth_start(fa_lua_conf_t *conf);

#endif /* FA_LUA_INT_H */
