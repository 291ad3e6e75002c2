/*
 * TLS (OpenSSL 3), non-blocking.  A fa_ssl_t is one server context: a
 * certificate chain and key, protocols (TLS 1.2 and 1.3 by default) and an
 * SNI table of other contexts by host name, which is how per-domain
 * certificates are served from one listener.
 *
 * On a connection, fa_ssl_handshake() returns FA_OK, FA_AGAIN (it re-arms
 * itself on the right event and calls c->tls_handler when done) or FA_ERROR.
 * After a handshake c->recv and c->send go through TLS, so the reader and the
 * writer do not know whether a connection is encrypted.
 */

#ifndef FA_SSL_H
#define FA_SSL_H

#define FA_SSL_TLSv1_2   0x01
#define FA_SSL_TLSv1_3   0x02

typedef struct {
    fa_str_t      name;         /* lower case; "*.example.org" allowed */
    fa_ssl_t     *ssl;
} fa_ssl_sni_t;

/* what a module or a domain configures */
typedef struct {
    fa_str_t      certificate;
    fa_str_t      certificate_key;
    fa_uint_t     protocols;    /* FA_SSL_TLSv1_* bits; 0: unset */
    fa_str_t      ciphers;
    const char   *file;         /* where ssl_certificate(_key) was set, for messages */
    fa_uint_t     line;
} fa_ssl_conf_t;

struct fa_ssl_s {
    void         *ctx;          /* SSL_CTX *, kept opaque to spare modules OpenSSL headers */
    fa_array_t    sni;          /* of fa_ssl_sni_t, for the default context */
    fa_log_t     *log;
    fa_ssl_conf_t *conf;        /* built from this: scopes with one conf share a context */
};

fa_int_t fa_ssl_init(fa_log_t *log);                          /* once per process */
fa_ssl_t *fa_ssl_create(fa_pool_t *pool, fa_ssl_conf_t *conf, const char *conf_file,
    fa_log_t *log);                                           /* NULL after logging why */
fa_int_t fa_ssl_add_sni(fa_ssl_t *def, const fa_str_t *name, fa_ssl_t *ssl);
void fa_ssl_free(fa_ssl_t *ssl);                              /* with its cycle */

/* log at LEVEL with the OpenSSL error queue appended (and emptied) */
void fa_ssl_error(fa_uint_t level, fa_log_t *log, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

fa_int_t fa_ssl_create_connection(fa_ssl_t *ssl, fa_connection_t *c);
fa_int_t fa_ssl_handshake(fa_connection_t *c);
void fa_ssl_shutdown(fa_connection_t *c);                     /* best effort, never blocks */
void fa_ssl_free_connection(fa_connection_t *c);

/* for logs and protocol modules: "TLSv1.3", "TLS_AES_256_GCM_SHA384", SNI name */
const char *fa_ssl_protocol(fa_connection_t *c);
const char *fa_ssl_cipher(fa_connection_t *c);
const char *fa_ssl_servername(fa_connection_t *c);

/*
 * The ssl_* directives (fa_ssl_module.c): ssl_certificate,
 * ssl_certificate_key, ssl_protocols, ssl_ciphers, in main, domain and the
 * protocols' scopes.  A protocol module that needs TLS in a scope (a
 * "listen ... ssl" or STARTTLS) calls fa_ssl_for_scope() from its init_conf:
 * it returns the context for the settings in force there, with an SNI entry
 * for each "domain NAME" that has its own certificate (NAME and *.NAME), or
 * NULL after fa_conf_error() when no certificate is configured.  Contexts are
 * shared between scopes with the same settings and freed with the cycle.
 */
extern fa_module_t  fa_ssl_module;

fa_ssl_t *fa_ssl_for_scope(fa_conf_t *cf, fa_conf_scope_t *scope);

#endif /* FA_SSL_H */
