/*
 * The ssl_* directives and the contexts built from them (see fa_ssl.h).
 *
 *   ssl_certificate      FILE;             chain, leaf first (PEM)
 *   ssl_certificate_key  FILE;             its key (PEM, not encrypted)
 *   ssl_protocols        TLSv1.2 TLSv1.3;  default: both
 *   ssl_ciphers          LIST;             TLS 1.2 suites, OpenSSL syntax
 *
 * They are allowed in main, in "domain NAME" and in every protocol scope,
 * and inherit like any setting.  A certificate and its key travel together:
 * a scope that sets either one inherits neither, so a domain's certificate
 * is never paired with the key of main's.
 *
 * A "domain NAME" block with its own certificate is served by SNI on every
 * TLS listener whose certificate differs: for the name NAME itself and for
 * any name below it (*.NAME, the most specific domain wins), since mail
 * clients connect to mail.NAME or imap.NAME.  Protocol versions and ciphers
 * are the listener's; a domain only brings its certificate.
 */

#include "fa_core.h"

#define FA_SSL_SCOPES                                                         \
    "main domain smtp smtp.server submission submission.server imap "        \
    "imap.server pop3 pop3.server lmtp lmtp.server metrics echo echo.server"

static void *fa_ssl_module_create_conf(fa_conf_t *cf);
static char *fa_ssl_module_merge_conf(fa_conf_t *cf, void *parent, void *child);
static char *fa_ssl_module_set_file(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static char *fa_ssl_module_set_protocols(fa_conf_t *cf, const fa_command_t *cmd,
    void *conf);

static const fa_command_t  fa_ssl_module_commands[] = {
    { "ssl_certificate", FA_SSL_SCOPES, FA_CONF_TAKE1, fa_ssl_module_set_file,
      offsetof(fa_ssl_conf_t, certificate), NULL },
    { "ssl_certificate_key", FA_SSL_SCOPES, FA_CONF_TAKE1, fa_ssl_module_set_file,
      offsetof(fa_ssl_conf_t, certificate_key), NULL },
    { "ssl_protocols", FA_SSL_SCOPES, FA_CONF_1MORE, fa_ssl_module_set_protocols,
      0, NULL },
    { "ssl_ciphers", FA_SSL_SCOPES, FA_CONF_TAKE1, fa_conf_set_str,
      offsetof(fa_ssl_conf_t, ciphers), NULL },
    fa_null_command
};

fa_module_t  fa_ssl_module = {
    FA_MODULE_V1, "ssl", FA_MODULE_CORE, fa_ssl_module_commands,
    fa_ssl_module_create_conf, fa_ssl_module_merge_conf, NULL,
    NULL, NULL, NULL, NULL, FA_MODULE_SPARE
};

/* ---- configuration ---- */

static void *
fa_ssl_module_create_conf(fa_conf_t *cf)
{
    /* all zero is "unset": NULL strings, protocols 0 */
    return fa_pcalloc(cf->pool, sizeof(fa_ssl_conf_t));
}

static char *
fa_ssl_module_merge_conf(fa_conf_t *cf, void *parent, void *child)
{
    fa_ssl_conf_t  *prev = parent, *conf = child;

    (void) cf;
    if (conf->certificate.data == NULL && conf->certificate_key.data == NULL) {
        conf->certificate = prev->certificate;
        conf->certificate_key = prev->certificate_key;
        conf->file = prev->file;
        conf->line = prev->line;
    }
    if (conf->protocols == 0) {
        conf->protocols = prev->protocols;
    }
    if (conf->ciphers.data == NULL) {
        conf->ciphers = prev->ciphers;
    }
    return FA_CONF_OK;
}

/* a path, remembering where the pair was set so later errors can point there */
static char *
fa_ssl_module_set_file(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_ssl_conf_t  *scf = conf;
    char           *rv;

    rv = fa_conf_set_path(cf, cmd, conf);
    if (rv == FA_CONF_OK && scf->file == NULL) {
        scf->file = cf->file;
        scf->line = cf->line;
    }
    return rv;
}

static char *
fa_ssl_module_set_protocols(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_ssl_conf_t  *scf = conf;
    fa_str_t       *a;

    (void) cmd;
    if (scf->protocols) {
        return "is duplicate";
    }
    for (fa_uint_t i = 1; i < cf->nargs; i++) {
        a = &cf->args[i];
        if (fa_str_eq(a, "TLSv1.2")) {
            scf->protocols |= FA_SSL_TLSv1_2;
        } else if (fa_str_eq(a, "TLSv1.3")) {
            scf->protocols |= FA_SSL_TLSv1_3;
        } else {
            return fa_conf_error(cf, "unsupported protocol \"%.*s\" in \"ssl_protocols\" "
                                 "(TLSv1.2 and TLSv1.3 are supported)", (int) a->len,
                                 a->data);
        }
    }
    return FA_CONF_OK;
}

/* ---- contexts ---- */

/* init_conf errors carry no directive: point at the line that explains */
static void
fa_ssl_module_error_at(fa_conf_t *cf, const char *file, fa_uint_t line)
{
    if (file) {
        cf->file = file;
        cf->line = line;
    }
}

static int
fa_ssl_module_same(const fa_ssl_conf_t *a, const fa_ssl_conf_t *b)
{
    return a == b
           || (fa_str_equal(&a->certificate, &b->certificate)
               && fa_str_equal(&a->certificate_key, &b->certificate_key)
               && a->protocols == b->protocols
               && fa_str_equal(&a->ciphers, &b->ciphers));
}

static fa_int_t
fa_ssl_module_check(fa_conf_t *cf, fa_ssl_conf_t *conf)
{
    if (conf->certificate_key.data == NULL) {
        fa_ssl_module_error_at(cf, conf->file, conf->line);
        fa_conf_error(cf, "no \"ssl_certificate_key\" is defined for the certificate "
                      "\"%s\"", (char *) conf->certificate.data);
        return FA_ERROR;
    }
    if (conf->certificate.data == NULL) {
        fa_ssl_module_error_at(cf, conf->file, conf->line);
        fa_conf_error(cf, "no \"ssl_certificate\" is defined for the key \"%s\"",
                      (char *) conf->certificate_key.data);
        return FA_ERROR;
    }
    return FA_OK;
}

/* the cycle's context for these settings, built on first use */
static fa_ssl_t *
fa_ssl_module_context(fa_conf_t *cf, fa_ssl_conf_t *conf)
{
    fa_ssl_t  **all = cf->cycle->ssl_contexts.elts, *ssl, **slot;
    char        where[PATH_MAX + 32];

    for (fa_uint_t i = 0; i < cf->cycle->ssl_contexts.nelts; i++) {
        if (all[i]->conf && fa_ssl_module_same(all[i]->conf, conf)) {
            return all[i];
        }
    }
    if (fa_ssl_module_check(cf, conf) != FA_OK) {
        return NULL;
    }
    fa_snprintf(where, sizeof(where), "%s:%lu", conf->file ? conf->file : "",
                (unsigned long) conf->line);
    slot = fa_array_push(&cf->cycle->ssl_contexts);
    if (slot == NULL) {
        fa_conf_error(cf, "out of memory");
        return NULL;
    }
    ssl = fa_ssl_create(cf->pool, conf, conf->file ? where : NULL, cf->log);
    if (ssl == NULL) {
        cf->cycle->ssl_contexts.nelts--;
        fa_ssl_module_error_at(cf, conf->file, conf->line);
        fa_conf_error(cf, "the TLS settings for the certificate \"%s\" are not usable "
                      "(the OpenSSL error is logged above)", (char *) conf->certificate.data);
        return NULL;
    }
    *slot = ssl;
    return ssl;
}

typedef struct {
    fa_conf_t  *cf;
    fa_ssl_t   *def;
} fa_ssl_module_sni_ctx_t;

static fa_int_t
fa_ssl_module_add_domain(fa_cycle_t *cycle, fa_conf_scope_t *s, void *data)
{
    fa_ssl_module_sni_ctx_t  *ctx = data;
    fa_ssl_conf_t            *conf = fa_scope_conf(s, fa_ssl_module);
    fa_ssl_conf_t            *top = fa_scope_conf(cycle->root, fa_ssl_module);
    fa_ssl_t                 *ssl;
    fa_str_t                  wild;

    if (s->parent != cycle->root || conf == NULL || conf->certificate.data == NULL
        || (top && conf->certificate.data == top->certificate.data)   /* inherited */
        || fa_ssl_module_same(conf, ctx->def->conf))
    {
        return FA_OK;
    }
    ssl = fa_ssl_module_context(ctx->cf, conf);
    if (ssl == NULL) {
        return FA_ERROR;
    }
    if (fa_ssl_add_sni(ctx->def, &s->name, ssl) == FA_ERROR) {
        return FA_ERROR;
    }
    if (s->name.len >= 2 && s->name.data[0] == '*' && s->name.data[1] == '.') {
        return FA_OK;                       /* "domain *.example.org" already is one */
    }
    wild.len = s->name.len + 2;
    wild.data = fa_pnalloc(ctx->cf->pool, wild.len);
    if (wild.data == NULL) {
        return FA_ERROR;
    }
    wild.data[0] = '*';
    wild.data[1] = '.';
    memcpy(wild.data + 2, s->name.data, s->name.len);
    return fa_ssl_add_sni(ctx->def, &wild, ssl) == FA_ERROR ? FA_ERROR : FA_OK;
}

fa_ssl_t *
fa_ssl_for_scope(fa_conf_t *cf, fa_conf_scope_t *scope)
{
    fa_ssl_conf_t            *conf = NULL;
    fa_ssl_t                 *ssl;
    fa_ssl_module_sni_ctx_t   ctx;

    if (fa_ssl_module.index < FA_MAX_MODULES) {
        conf = fa_scope_conf(scope, fa_ssl_module);
    }
    if (conf == NULL || (conf->certificate.data == NULL && conf->certificate_key.data == NULL)) {
        fa_ssl_module_error_at(cf, scope->file, scope->line);
        fa_conf_error(cf, "no \"ssl_certificate\" is defined for the \"%s\" block, which "
                      "uses TLS (\"listen ... ssl\" or STARTTLS)", scope->kind);
        return NULL;
    }
    ssl = fa_ssl_module_context(cf, conf);
    if (ssl == NULL) {
        return NULL;
    }
    /* idempotent: a context with no SNI entry yet gets them (again, if none apply) */
    if (ssl->sni.nelts == 0) {
        ctx.cf = cf;
        ctx.def = ssl;
        if (fa_conf_each_scope(cf->cycle, "domain", fa_ssl_module_add_domain, &ctx) != FA_OK) {
            if (cf->error == NULL) {
                fa_conf_error(cf, "out of memory");
            }
            return NULL;
        }
    }
    return ssl;
}
