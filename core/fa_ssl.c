/*
 * TLS over OpenSSL 3 (see fa_ssl.h): contexts, SNI and error reporting.
 * The connection side (handshake, I/O, STARTTLS) is fa_ssl_conn.c.
 *
 * Contexts are built in the master while the configuration loads and are
 * inherited by the workers through fork, so every worker shares the same
 * session ticket keys and a ticket issued by one worker resumes on another.
 * There is no server-side session cache: tickets give resumption without
 * memory per session, and SSL_MODE_RELEASE_BUFFERS gives back OpenSSL's
 * 34 KB of record buffers whenever a connection is idle.
 */

#include "fa_core.h"
#include <openssl/ssl.h>
#include <openssl/err.h>

#define FA_SSL_DEFAULT_CIPHERS    "HIGH:!aNULL:!MD5"
#define FA_SSL_NAME_MAX           256      /* RFC 6066: host names <= 255 bytes */

static int  fa_ssl_initialized;

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

void
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
    const char *in, fa_log_t *log)
{
    u_char  *cert, *key;

    cert = fa_pstrdup(pool, &conf->certificate);
    key = fa_pstrdup(pool, &conf->certificate_key);
    if (cert == NULL || key == NULL) {
        return FA_ERROR;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, (char *) cert) != 1) {
        fa_ssl_error(FA_LOG_EMERG, log, 0, "cannot load certificate \"%s\"%s", cert, in);
        return FA_ERROR;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, (char *) key, SSL_FILETYPE_PEM) != 1) {
        fa_ssl_error(FA_LOG_EMERG, log, 0, "cannot load certificate key \"%s\"%s", key, in);
        return FA_ERROR;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        fa_ssl_error(FA_LOG_EMERG, log, 0, "certificate key \"%s\" does not match "
                     "certificate \"%s\"%s", key, cert, in);
        return FA_ERROR;
    }
    return FA_OK;
}

static fa_int_t
fa_ssl_configure(fa_ssl_t *ssl, fa_pool_t *pool, fa_ssl_conf_t *conf, const char *in,
    fa_log_t *log)
{
    SSL_CTX  *ctx = ssl->ctx;
    char     *ciphers = FA_SSL_DEFAULT_CIPHERS;

    fa_ssl_set_options(ctx);
    if (fa_ssl_set_protocols(ctx, conf->protocols) != FA_OK) {
        fa_ssl_error(FA_LOG_EMERG, log, 0, "cannot set the TLS protocol versions%s", in);
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
        fa_ssl_error(FA_LOG_EMERG, log, 0, "invalid ssl_ciphers \"%s\"%s", ciphers, in);
        return FA_ERROR;
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, fa_ssl_sni_callback);
    SSL_CTX_set_tlsext_servername_arg(ctx, ssl);
    return fa_ssl_load_certificate(ctx, pool, conf, in, log);
}

fa_ssl_t *
fa_ssl_create(fa_pool_t *pool, fa_ssl_conf_t *conf, const char *conf_file, fa_log_t *log)
{
    fa_ssl_t  *ssl;
    char       in[PATH_MAX + 32] = "";

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
    if (conf_file) {
        fa_snprintf(in, sizeof(in), " in %s", conf_file);
    }
    if (fa_ssl_configure(ssl, pool, conf, in, log) != FA_OK) {
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
