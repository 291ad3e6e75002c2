/*
 * Listening sockets.  Modules declare what they listen on while the
 * configuration is loaded (fa_listen_add); the master opens the sockets,
 * keeping the already-open ones across reloads (same address, same fd), and
 * the workers accept on them.
 *
 * Accept path: take a connection slot (or, when worker_connections are all in
 * use, write ls->busy_reply and close: a clean refusal the protocol chose),
 * create the pool, register the fd, handshake first if the listener is
 * implicit TLS, then call ls->handler(c) which starts the protocol session.
 */

#ifndef FA_LISTEN_H
#define FA_LISTEN_H

typedef struct {
    struct sockaddr_storage  sockaddr;
    socklen_t                socklen;
    char                     text[FA_SOCKADDR_STRLEN];   /* "127.0.0.1:2525" */
    fa_int_t                 backlog;
    unsigned                 ssl:1;
    unsigned                 unix_socket:1;
} fa_listen_opt_t;

struct fa_listening_s {
    int                  fd;
    fa_listen_opt_t      opt;
    fa_conn_handler_pt   handler;       /* starts a session on an accepted connection */
    void                *ctx;           /* the module's server configuration */
    fa_ssl_t            *ssl;           /* for implicit TLS; NULL otherwise */
    const char          *protocol;      /* "smtp", "metrics": for logs and metrics */
    fa_str_t             busy_reply;    /* sent when out of slots (plain listeners only) */
    fa_msec_t            handshake_timeout;
    fa_log_t            *log;
    fa_stat_t           *sessions;      /* facteur_sessions_total{protocol=...} */
    fa_event_t           event;         /* per worker, after fork */
    unsigned             inherited:1;   /* fd kept from the previous cycle */
    unsigned             remain:1;      /* still configured after reload */
};

/*
 * Parse a listen argument: "PORT", "ADDR:PORT", "[ADDR6]:PORT",
 * "unix:PATH" followed by options "ssl", "backlog=N".  Returns NULL or an
 * error string for the config parser.
 */
char *fa_listen_parse(fa_conf_t *cf, fa_str_t *args, fa_uint_t nargs, fa_listen_opt_t *opt);

/* register a listener in the cycle being configured; error if the address is taken twice */
fa_listening_t *fa_listen_add(fa_conf_t *cf, fa_listen_opt_t *opt, const char *protocol,
    fa_conn_handler_pt handler, void *ctx);

/* master: open (or inherit from old_cycle) every listener of the cycle */
fa_int_t fa_listen_open_all(fa_cycle_t *cycle, fa_cycle_t *old_cycle);
void fa_listen_close_unused(fa_cycle_t *old_cycle);   /* fds no new listener kept */
void fa_listen_close_all(fa_cycle_t *cycle);

/* worker: start and stop accepting */
fa_int_t fa_listen_enable(fa_cycle_t *cycle);
void fa_listen_disable(fa_cycle_t *cycle);

#endif /* FA_LISTEN_H */
