/*
 * TLS connections (see fa_ssl.h): the non-blocking handshake, c->recv and
 * c->send over TLS, shutdown, and STARTTLS.  Contexts are fa_ssl.c.
 *
 * Everything a TLS peer sends is hostile.  A failed handshake (garbage, a
 * plain-text client, a scanner, a client hanging up) costs that connection
 * only and is logged at info level: it is the client's problem, not ours.
 */

#include "fa_core.h"
#include <openssl/ssl.h>
#include <openssl/err.h>

#define FA_SSL_HANDSHAKE_TIMEOUT  60000    /* when the caller armed none */

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

static ssize_t fa_ssl_recv(fa_connection_t *c, u_char *buf, size_t size);
static ssize_t fa_ssl_send(fa_connection_t *c, const u_char *buf, size_t size);

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
    c->log->action = "in the TLS handshake";
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
    int  eof = ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING;

    fa_ssl_restore_handlers(c);
    c->error = 1;
    if (sslerr == SSL_ERROR_SYSCALL && err != 0 && err != ECONNRESET && err != EPIPE) {
        fa_ssl_error(FA_LOG_ERR, c->log, err, "TLS handshake failed");
    } else if (eof || sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
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

/*
 * The operation that was blocked succeeded: the swapped handler goes back,
 * unless the session installed another one meanwhile (closing, say).
 */
static void
fa_ssl_unblock(fa_connection_t *c, int writing)
{
    fa_ssl_conn_t  *sc = c->ssl;

    if (!writing && sc->saved_write_handler) {
        if (c->write->handler == fa_ssl_write_event_reads) {
            c->write->handler = sc->saved_write_handler;
        }
        sc->saved_write_handler = NULL;
        c->write->ready = 1;
        fa_event_post(c->write);
    } else if (writing && sc->saved_read_handler) {
        if (c->read->handler == fa_ssl_read_event_writes) {
            c->read->handler = sc->saved_read_handler;
        }
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
        if (err == 0 && !writing) {
            ERR_clear_error();              /* EOF without close_notify */
            c->read->ready = 0;
            c->read->eof = 1;
            return 0;
        }
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
