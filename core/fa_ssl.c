/*
 * TLS over OpenSSL 3, non-blocking (see fa_ssl.h).
 *
 * Contexts are built in the master while the configuration loads and are
 * inherited by the workers through fork, so every worker shares the same
 * session ticket keys and a ticket issued by one worker resumes on another.
 * There is no server-side session cache: tickets give resumption without
 * memory per session, and SSL_MODE_RELEASE_BUFFERS gives back OpenSSL's
 * 34 KB of record buffers whenever a connection is idle.
 *
 * Everything a TLS peer sends is hostile.  A failed handshake (garbage, a
 * plain-text client, a scanner, a client hanging up) costs that connection
 * only and is logged at info level: it is the client's problem, not ours.
 */

#include "fa_core.h"
#include <openssl/ssl.h>
#include <openssl/err.h>

#define FA_SSL_HANDSHAKE_TIMEOUT  60000    /* when the caller armed none */
#define FA_SSL_DEFAULT_CIPHERS    "HIGH:!aNULL:!MD5"
#define FA_SSL_NAME_MAX           256      /* RFC 6066: host names <= 255 bytes */

struct fa_ssl_conn_s {
    SSL                  *connection;
    /* the session's handlers, put back when the handshake ends */
    fa_event_handler_pt   hs_read_handler;
    fa_event_handler_pt   hs_write_handler;
    /* a read that needs the socket writable, or a write that needs it readable */
    fa_event_handler_pt   saved_read_handler;
    fa_event_handler_pt   saved_write_handler;
    unsigned              handshaking:1;
    unsigned              handshaked:1;
    unsigned              shut:1;
};

static int  fa_ssl_initialized;

static ssize_t fa_ssl_recv(fa_connection_t *c, u_char *buf, size_t size);
static ssize_t fa_ssl_send(fa_connection_t *c, const u_char *buf, size_t size);

/* ---- errors ---- */

/* append the OpenSSL error queue as " (SSL: error:...:reason:data)", emptying it */
static size_t
fa_ssl_errors_text(char *buf, size_t size)
{
    unsigned long  e;
    const char    *data;
    int            flags;
    size_t         n = 0;
    char           text[256];

    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        if (n + 2 >= size) {
            continue;                       /* keep draining the queue */
        }
        ERR_error_string_n(e, text, sizeof(text));
        n += fa_snprintf(buf + n, size - n, "%s%s%s%s", n ? " " : " (SSL: ", text,
                         (flags & ERR_TXT_STRING) && data && *data ? ":" : "",
                         (flags & ERR_TXT_STRING) && data ? data : "");
    }
    if (n && n + 1 < size) {
        n += fa_snprintf(buf + n, size - n, ")");
    }
    return n;
}

static void
fa_ssl_error(fa_uint_t level, fa_log_t *log, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
fa_ssl_error(fa_uint_t level, fa_log_t *log, int err, const char *fmt, ...)
{
    char     buf[FA_LOG_LINE_MAX - 256];
    size_t   n;
    va_list  args;

    if (log->level < level) {
        ERR_clear_error();
        return;
    }
    va_start(args, fmt);
    n = fa_vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);
    fa_ssl_errors_text(buf + n, sizeof(buf) - n);
    fa_log_error_core(level, log, err, "%s", buf);
}

/* ---- contexts ---- */

fa_int_t
fa_ssl_init(fa_log_t *log)
{
    if (fa_ssl_initialized) {
        return FA_OK;
    }
    if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL) == 0) {
        fa_ssl_error(FA_LOG_EMERG, log, 0, "OPENSSL_init_ssl() failed");
        return FA_ERROR;
    }
    ERR_clear_error();
    fa_ssl_initialized = 1;
    return FA_OK;
}

/* an encrypted key would make OpenSSL prompt on the terminal: refuse instead */
static int
fa_ssl_no_password(char *buf, int size, int rwflag, void *data)
{
    (void) buf; (void) size; (void) rwflag; (void) data;
    return 0;
}

static int fa_ssl_sni_callback(SSL *s, int *ad, void *arg);

static fa_int_t
fa_ssl_set_protocols(SSL_CTX *ctx, fa_uint_t protocols)
{
    int  min, max;

    if (protocols == 0) {
        protocols = FA_SSL_TLSv1_2 | FA_SSL_TLSv1_3;
    }
    min = (protocols & FA_SSL_TLSv1_2) ? TLS1_2_VERSION : TLS1_3_VERSION;
    max = (protocols & FA_SSL_TLSv1_3) ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (!SSL_CTX_set_min_proto_version(ctx, min) || !SSL_CTX_set_max_proto_version(ctx, max)) {
        return FA_ERROR;
    }
    return FA_OK;
}

static void
fa_ssl_set_options(SSL_CTX *ctx)
{
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE
                        | SSL_OP_NO_RENEGOTIATION);
    /*
     * RELEASE_BUFFERS: idle connections hold no record buffers.
     * PARTIAL_WRITE + MOVING_WRITE_BUFFER: the writer retries from its chunk,
     * whose address and length may differ from the first attempt.
     */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE
                     | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_session_id_context(ctx, (const u_char *) "facteur", sizeof("facteur") - 1);
    SSL_CTX_set_default_passwd_cb(ctx, fa_ssl_no_password);
}

/* load the chain and the key, and check that they belong together */
static fa_int_t
fa_ssl_load_certificate(SSL_CTX *ctx, fa_pool_t *pool, fa_ssl_conf_t *conf,
    const char *where, fa_log_t *log)
{
    u_char  *cert, *key;

    cert = fa_pstrdup(pool, &conf->certificate);
    key = fa_pstrdup(pool, &conf->certificate_key);
    if (cert == NULL || key == NULL) {
        return FA_ERROR;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, (char *) cert) != 1) {
        fa_ssl_error(FA_LOG_EMERG, log, 0, "cannot load certificate \"%s\"%s%s",
                     cert, where ? " in " : "", where ? where : "");
        return FA_ERROR;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, (char *) key, SSL_FILETYPE_PEM) != 1) {
        fa_ssl_error(FA_LOG_EMERG, log, 0, "cannot load certificate key \"%s\"%s%s",
                     key, where ? " in " : "", where ? where : "");
        return FA_ERROR;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        fa_ssl_error(FA_LOG_EMERG, log, 0, "certificate key \"%s\" does not match "
                     "certificate \"%s\"%s%s", key, cert, where ? " in " : "",
                     where ? where : "");
        return FA_ERROR;
    }
    return FA_OK;
}

static fa_int_t
fa_ssl_configure(fa_ssl_t *ssl, fa_pool_t *pool, fa_ssl_conf_t *conf, const char *where,
    fa_log_t *log)
{
    SSL_CTX  *ctx = ssl->ctx;
    char     *ciphers = FA_SSL_DEFAULT_CIPHERS;

    fa_ssl_set_options(ctx);
    if (fa_ssl_set_protocols(ctx, conf->protocols) != FA_OK) {
        fa_ssl_error(FA_LOG_EMERG, log, 0, "cannot set the TLS protocol versions%s%s",
                     where ? " in " : "", where ? where : "");
        return FA_ERROR;
    }
    if (conf->ciphers.len) {
        ciphers = (char *) fa_pstrdup(pool, &conf->ciphers);
        if (ciphers == NULL) {
            return FA_ERROR;
        }
    }
    /* TLS 1.2 suites only: OpenSSL's TLS 1.3 defaults are all strong */
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        fa_ssl_error(FA_LOG_EMERG, log, 0, "invalid ssl_ciphers \"%s\"%s%s", ciphers,
                     where ? " in " : "", where ? where : "");
        return FA_ERROR;
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, fa_ssl_sni_callback);
    SSL_CTX_set_tlsext_servername_arg(ctx, ssl);
    return fa_ssl_load_certificate(ctx, pool, conf, where, log);
}

fa_ssl_t *
fa_ssl_create(fa_pool_t *pool, fa_ssl_conf_t *conf, const char *conf_file, fa_log_t *log)
{
    fa_ssl_t  *ssl;

    if (fa_ssl_init(log) != FA_OK) {
        return NULL;
    }
    ssl = fa_pcalloc(pool, sizeof(fa_ssl_t));
    if (ssl == NULL || fa_array_init(&ssl->sni, pool, 4, sizeof(fa_ssl_sni_t)) != FA_OK) {
        return NULL;
    }
    ssl->log = log;
    ssl->conf = conf;
    ssl->ctx = SSL_CTX_new(TLS_server_method());
    if (ssl->ctx == NULL) {
        fa_ssl_error(FA_LOG_EMERG, log, 0, "SSL_CTX_new() failed");
        return NULL;
    }
    if (fa_ssl_configure(ssl, pool, conf, conf_file, log) != FA_OK) {
        SSL_CTX_free(ssl->ctx);
        ssl->ctx = NULL;
        return NULL;
    }
    return ssl;
}

void
fa_ssl_free(fa_ssl_t *ssl)
{
    if (ssl && ssl->ctx) {
        SSL_CTX_free(ssl->ctx);
        ssl->ctx = NULL;
    }
}

/* ---- SNI ---- */

fa_int_t
fa_ssl_add_sni(fa_ssl_t *def, const fa_str_t *name, fa_ssl_t *ssl)
{
    fa_ssl_sni_t  *sni = def->sni.elts, *e;
    u_char        *low;

    if (name->len == 0 || name->len >= FA_SSL_NAME_MAX) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < def->sni.nelts; i++) {
        if (sni[i].name.len == name->len
            && strncasecmp((char *) sni[i].name.data, (char *) name->data, name->len) == 0)
        {
            return FA_DECLINED;             /* the first definition wins */
        }
    }
    low = fa_pnalloc(def->sni.pool, name->len + 1);
    e = fa_array_push(&def->sni);
    if (low == NULL || e == NULL) {
        return FA_ERROR;
    }
    fa_strlow(low, name->data, name->len);
    low[name->len] = '\0';
    e->name.len = name->len;
    e->name.data = low;
    e->ssl = ssl;
    return FA_OK;
}

static fa_ssl_t *
fa_ssl_sni_find(fa_ssl_t *def, const u_char *name, size_t len)
{
    fa_ssl_sni_t  *sni = def->sni.elts;

    for (fa_uint_t i = 0; i < def->sni.nelts; i++) {
        if (sni[i].name.len == len && memcmp(sni[i].name.data, name, len) == 0) {
            return sni[i].ssl;
        }
    }
    return NULL;
}

/*
 * Exact name first, then wildcards from the most specific: for
 * "a.b.example.org" try "*.b.example.org", then "*.example.org", then "*.org".
 */
static fa_ssl_t *
fa_ssl_sni_lookup(fa_ssl_t *def, const char *servername)
{
    u_char     name[FA_SSL_NAME_MAX + 1];
    size_t     len = strlen(servername);
    fa_ssl_t  *found;

    if (len == 0 || len >= FA_SSL_NAME_MAX) {
        return NULL;
    }
    fa_strlow(name + 1, (const u_char *) servername, len);
    found = fa_ssl_sni_find(def, name + 1, len);
    for (size_t i = 1; found == NULL && i < len; i++) {
        if (name[i] == '.' && i + 1 < len + 1) {
            name[i - 1] = '*';
            found = fa_ssl_sni_find(def, name + i - 1, len + 2 - i);
        }
    }
    return found;
}

/*
 * Called by OpenSSL on the ClientHello.  Switching the context swaps the
 * certificate and key; protocol versions and ciphers stay the listener's.
 * An unknown name is not an error: the client gets the default certificate.
 */
static int
fa_ssl_sni_callback(SSL *s, int *ad, void *arg)
{
    fa_ssl_t    *def = arg, *ssl;
    const char  *name;

    (void) ad;
    name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    if (name == NULL || def->sni.nelts == 0) {
        return SSL_TLSEXT_ERR_OK;
    }
    ssl = fa_ssl_sni_lookup(def, name);
    if (ssl && ssl->ctx != SSL_get_SSL_CTX(s) && SSL_set_SSL_CTX(s, ssl->ctx) == NULL) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* ---- connections ---- */

static void
fa_ssl_conn_cleanup(void *data)
{
    fa_ssl_conn_t  *sc = data;

    if (sc->connection) {
        SSL_free(sc->connection);
        sc->connection = NULL;
    }
}

fa_int_t
fa_ssl_create_connection(fa_ssl_t *ssl, fa_connection_t *c)
{
    fa_ssl_conn_t  *sc;

    sc = fa_pcalloc(c->pool, sizeof(fa_ssl_conn_t));
    if (sc == NULL || fa_pool_cleanup_add(c->pool, fa_ssl_conn_cleanup, sc) == NULL) {
        return FA_ERROR;
    }
    sc->connection = SSL_new(ssl->ctx);
    if (sc->connection == NULL) {
        fa_ssl_error(FA_LOG_ALERT, c->log, 0, "SSL_new() failed");
        return FA_ERROR;
    }
    if (SSL_set_fd(sc->connection, c->fd) != 1) {
        fa_ssl_error(FA_LOG_ALERT, c->log, 0, "SSL_set_fd() failed");
        return FA_ERROR;                    /* the pool cleanup frees the SSL */
    }
    SSL_set_accept_state(sc->connection);
    SSL_set_app_data(sc->connection, c);
    c->ssl = sc;
    return FA_OK;
}

static void
fa_ssl_empty_handler(fa_event_t *ev)
{
    (void) ev;
}

static void
fa_ssl_restore_handlers(fa_connection_t *c)
{
    fa_ssl_conn_t  *sc = c->ssl;

    if (!sc->handshaking) {
        return;
    }
    sc->handshaking = 0;
    c->read->handler = sc->hs_read_handler ? sc->hs_read_handler : fa_ssl_empty_handler;
    c->write->handler = sc->hs_write_handler ? sc->hs_write_handler : fa_conn_write_handler;
}

static void fa_ssl_handshake_handler(fa_event_t *ev);

/* wait for the socket: both events continue the handshake, the timer bounds it */
static void
fa_ssl_handshake_wait(fa_connection_t *c)
{
    fa_ssl_conn_t  *sc = c->ssl;
    fa_msec_t       timeout;

    if (sc->handshaking) {
        return;
    }
    sc->handshaking = 1;
    sc->hs_read_handler = c->read->handler;
    sc->hs_write_handler = c->write->handler;
    c->read->handler = fa_ssl_handshake_handler;
    c->write->handler = fa_ssl_handshake_handler;
    if (!c->read->timer_set) {
        timeout = c->listening && c->listening->handshake_timeout
                  ? c->listening->handshake_timeout : FA_SSL_HANDSHAKE_TIMEOUT;
        fa_event_add_timer(c->read, timeout);
    }
}

static void
fa_ssl_handshake_ok(fa_connection_t *c)
{
    fa_ssl_conn_t  *sc = c->ssl;

    fa_ssl_restore_handlers(c);
    sc->handshaked = 1;
    c->recv = fa_ssl_recv;
    c->send = fa_ssl_send;
    /*
     * The client may have sent its first command with its Finished message:
     * OpenSSL holds it and epoll will not report it again, so the session's
     * first read must try instead of waiting for an event.
     */
    c->read->ready = 1;
    c->write->ready = 1;
    fa_log_debug(c->log, "TLS handshake done: %s, %s, SNI \"%s\"", fa_ssl_protocol(c),
                 fa_ssl_cipher(c), fa_ssl_servername(c) ? fa_ssl_servername(c) : "");
}

static fa_int_t
fa_ssl_handshake_failed(fa_connection_t *c, int sslerr, int err)
{
    fa_ssl_restore_handlers(c);
    c->error = 1;
    if (sslerr == SSL_ERROR_SYSCALL && err != 0 && err != ECONNRESET && err != EPIPE) {
        fa_ssl_error(FA_LOG_ERR, c->log, err, "TLS handshake failed");
    } else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN) {
        fa_ssl_error(FA_LOG_INFO, c->log, err, "client closed the connection in the "
                     "TLS handshake");
    } else {
        fa_ssl_error(FA_LOG_INFO, c->log, 0, "TLS handshake failed");
    }
    ERR_clear_error();
    return FA_ERROR;
}

fa_int_t
fa_ssl_handshake(fa_connection_t *c)
{
    fa_ssl_conn_t  *sc = c->ssl;
    int             n, sslerr, err;

    ERR_clear_error();
    n = SSL_do_handshake(sc->connection);
    err = (n <= 0) ? errno : 0;
    if (n == 1) {
        fa_ssl_handshake_ok(c);
        return FA_OK;
    }
    sslerr = SSL_get_error(sc->connection, n);
    if (sslerr == SSL_ERROR_WANT_READ || sslerr == SSL_ERROR_WANT_WRITE) {
        if (sslerr == SSL_ERROR_WANT_READ) {
            c->read->ready = 0;
        } else {
            c->write->ready = 0;
        }
        fa_ssl_handshake_wait(c);
        return FA_AGAIN;
    }
    return fa_ssl_handshake_failed(c, sslerr, sslerr == SSL_ERROR_SYSCALL ? err : 0);
}

static void
fa_ssl_handshake_handler(fa_event_t *ev)
{
    fa_connection_t  *c = ev->data;
    fa_int_t          rc;

    if (ev->timedout) {
        ev->timedout = 0;
        fa_log_error(FA_LOG_INFO, c->log, 0, "client timed out in the TLS handshake");
        fa_ssl_restore_handlers(c);
        c->error = 1;
        rc = FA_ERROR;
    } else {
        rc = fa_ssl_handshake(c);
        if (rc == FA_AGAIN) {
            return;
        }
    }
    if (c->read->timer_set) {
        fa_event_del_timer(c->read);
    }
    c->tls_handler(c, rc);
}

/* ---- I/O after the handshake ---- */

/* a read was blocked on writability: the socket is writable now, read again */
static void
fa_ssl_write_event_reads(fa_event_t *wev)
{
    fa_connection_t  *c = wev->data;

    c->read->ready = 1;
    c->read->handler(c->read);
}

/* a write was blocked on readability: the socket is readable now, write again */
static void
fa_ssl_read_event_writes(fa_event_t *rev)
{
    fa_connection_t  *c = rev->data;

    if (rev->timedout) {                    /* a session timer: its handler decides */
        c->ssl->saved_read_handler(rev);
        return;
    }
    c->write->ready = 1;
    c->write->handler(c->write);
}

/* the operation that was blocked succeeded: the swapped handler goes back */
static void
fa_ssl_unblock(fa_connection_t *c, int writing)
{
    fa_ssl_conn_t  *sc = c->ssl;

    if (!writing && sc->saved_write_handler) {
        c->write->handler = sc->saved_write_handler;
        sc->saved_write_handler = NULL;
        c->write->ready = 1;
        fa_event_post(c->write);
    } else if (writing && sc->saved_read_handler) {
        c->read->handler = sc->saved_read_handler;
        sc->saved_read_handler = NULL;
        c->read->ready = 1;
        fa_event_post(c->read);
    }
}

/* after SSL_read or SSL_write failed: FA_AGAIN, 0 (EOF) or FA_ERROR */
static ssize_t
fa_ssl_io_error(fa_connection_t *c, int n, int err, int writing)
{
    fa_ssl_conn_t  *sc = c->ssl;
    int             sslerr = SSL_get_error(sc->connection, n);
    unsigned long   e;

    switch (sslerr) {
    case SSL_ERROR_WANT_READ:
        c->read->ready = 0;
        if (writing) {
            c->write->ready = 0;
            if (sc->saved_read_handler == NULL) {
                sc->saved_read_handler = c->read->handler;
                c->read->handler = fa_ssl_read_event_writes;
            }
        } else {
            fa_ssl_unblock(c, 0);
        }
        return FA_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->write->ready = 0;
        if (!writing) {
            c->read->ready = 0;
            if (sc->saved_write_handler == NULL) {
                sc->saved_write_handler = c->write->handler;
                c->write->handler = fa_ssl_write_event_reads;
            }
        } else {
            fa_ssl_unblock(c, 1);
        }
        return FA_AGAIN;
    case SSL_ERROR_ZERO_RETURN:             /* close_notify */
        c->read->ready = 0;
        c->read->eof = 1;
        return 0;
    case SSL_ERROR_SSL:
        e = ERR_peek_last_error();
        if (!writing && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();              /* a plain FIN: the same as over TCP */
            c->read->ready = 0;
            c->read->eof = 1;
            return 0;
        }
        fa_ssl_error(FA_LOG_INFO, c->log, 0, "TLS %s failed", writing ? "write" : "read");
        break;
    default:                                /* SSL_ERROR_SYSCALL */
        fa_ssl_error(err == ECONNRESET || err == EPIPE ? FA_LOG_INFO : FA_LOG_ERR, c->log,
                     err, "TLS %s failed", writing ? "write" : "read");
        break;
    }
    c->error = 1;
    (writing ? c->write : c->read)->error = 1;
    return FA_ERROR;
}

static ssize_t
fa_ssl_recv(fa_connection_t *c, u_char *buf, size_t size)
{
    size_t  got = 0;
    int     n;

    ERR_clear_error();
    n = SSL_read_ex(c->ssl->connection, buf, size, &got);
    if (n == 1) {
        fa_ssl_unblock(c, 0);
        return (ssize_t) got;
    }
    return fa_ssl_io_error(c, n, errno, 0);
}

static ssize_t
fa_ssl_send(fa_connection_t *c, const u_char *buf, size_t size)
{
    size_t  sent = 0;
    int     n;

    if (size == 0) {
        return 0;
    }
    ERR_clear_error();
    n = SSL_write_ex(c->ssl->connection, buf, size, &sent);
    if (n == 1) {
        fa_ssl_unblock(c, 1);
        return (ssize_t) sent;
    }
    return fa_ssl_io_error(c, n, errno, 1);
}

/*
 * One attempt at close_notify, never waiting for the peer's.  After an
 * error, a timeout or a failed handshake nothing is sent: the peer is not
 * listening, or not speaking TLS.
 */
void
fa_ssl_shutdown(fa_connection_t *c)
{
    fa_ssl_conn_t  *sc = c->ssl;

    if (sc == NULL || sc->connection == NULL || sc->shut) {
        return;
    }
    sc->shut = 1;
    if (!sc->handshaked || c->error || c->read->timedout || c->write->timedout) {
        SSL_set_quiet_shutdown(sc->connection, 1);
    } else {
        SSL_set_shutdown(sc->connection, SSL_RECEIVED_SHUTDOWN);
    }
    ERR_clear_error();
    (void) SSL_shutdown(sc->connection);
    ERR_clear_error();
}

void
fa_ssl_free_connection(fa_connection_t *c)
{
    fa_ssl_conn_t  *sc = c->ssl;

    if (sc == NULL) {
        return;
    }
    fa_ssl_shutdown(c);
    fa_ssl_conn_cleanup(sc);
    c->ssl = NULL;
}

const char *
fa_ssl_protocol(fa_connection_t *c)
{
    return c->ssl && c->ssl->connection ? SSL_get_version(c->ssl->connection) : NULL;
}

const char *
fa_ssl_cipher(fa_connection_t *c)
{
    return c->ssl && c->ssl->connection ? SSL_get_cipher_name(c->ssl->connection) : NULL;
}

const char *
fa_ssl_servername(fa_connection_t *c)
{
    return c->ssl && c->ssl->connection
           ? SSL_get_servername(c->ssl->connection, TLSEXT_NAMETYPE_host_name) : NULL;
}

/* ---- STARTTLS ---- */

/*
 * Reports through handler exactly once, possibly before returning.  The
 * return value is FA_AGAIN while the handshake goes on, else the status
 * already passed to handler (which may have closed the connection).
 */
fa_int_t
fa_conn_starttls(fa_connection_t *c, fa_ssl_t *ssl, fa_conn_status_pt handler)
{
    fa_int_t  rc = FA_ERROR;

    /* bytes pipelined after STARTTLS were sent in clear: they must never be read */
    fa_conn_reader_discard(c);
    c->tls_handler = handler;
    if (c->ssl) {
        fa_log_error(FA_LOG_INFO, c->log, 0, "STARTTLS on a connection already in TLS");
    } else if (fa_conn_out_pending(c)) {
        fa_log_error(FA_LOG_ALERT, c->log, 0, "STARTTLS with %zu bytes of output queued",
                     fa_conn_out_pending(c));
    } else if (fa_ssl_create_connection(ssl, c) == FA_OK) {
        if (c->read->timer_set) {           /* the session's timer: the handshake's now */
            fa_event_del_timer(c->read);
        }
        rc = fa_ssl_handshake(c);
        if (rc == FA_AGAIN) {
            return FA_AGAIN;
        }
        if (c->read->timer_set) {
            fa_event_del_timer(c->read);
        }
    }
    handler(c, rc);
    return rc;
}
