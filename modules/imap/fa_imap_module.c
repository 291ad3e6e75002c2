/*
 * The IMAP module: directives, servers and their listeners, counters.
 *
 *   imap {
 *       imap_timeout 30m;              # autologout (RFC 9051: at least 30 min)
 *       auth_plaintext off;            # on: LOGIN without TLS (no LOGINDISABLED)
 *       auth_failure_delay 2s;  max_auth_failures 3;
 *       max_message_size 50m;          # APPEND; also in domain blocks
 *       default_folders on;            # Drafts, Sent, Trash, Junk, Archive for new users
 *       server {
 *           listen 2143;               # STARTTLS
 *           listen 2993 ssl;           # implicit TLS
 *       }
 *   }
 *
 * Every scope that has "listen" is a server: imap or imap.server.
 */

#include "fa_imap_int.h"

#define FA_IMAP_SCOPES  "imap imap.server"

static void *fa_imap_create_conf(fa_conf_t *cf);
static char *fa_imap_merge_conf(fa_conf_t *cf, void *parent, void *child);
static fa_int_t fa_imap_init_conf(fa_conf_t *cf);
static char *fa_imap_listen(fa_conf_t *cf, const fa_command_t *cmd, void *conf);

static const fa_command_t  fa_imap_commands[] = {
    { "imap", "main", FA_CONF_BLOCK | FA_CONF_NOARGS, fa_conf_set_block, 0, NULL },
    { "server", "imap", FA_CONF_BLOCK | FA_CONF_NOARGS | FA_CONF_MULTI, fa_conf_set_block,
      0, NULL },
    { "listen", FA_IMAP_SCOPES, FA_CONF_1MORE | FA_CONF_MULTI, fa_imap_listen, 0, NULL },
    { "imap_timeout", FA_IMAP_SCOPES, FA_CONF_TAKE1, fa_conf_set_msec,
      offsetof(fa_imap_conf_t, timeout), NULL },
    { "auth_plaintext", FA_IMAP_SCOPES, FA_CONF_FLAG, fa_conf_set_flag,
      offsetof(fa_imap_conf_t, auth_plaintext), NULL },
    { "auth_failure_delay", FA_IMAP_SCOPES, FA_CONF_TAKE1, fa_conf_set_msec,
      offsetof(fa_imap_conf_t, auth_failure_delay), NULL },
    { "max_auth_failures", FA_IMAP_SCOPES, FA_CONF_TAKE1, fa_conf_set_num,
      offsetof(fa_imap_conf_t, max_auth_failures), NULL },
    { "max_message_size", FA_IMAP_SCOPES, FA_CONF_TAKE1, fa_conf_set_size,
      offsetof(fa_imap_conf_t, max_message_size), NULL },
    { "default_folders", FA_IMAP_SCOPES, FA_CONF_FLAG, fa_conf_set_flag,
      offsetof(fa_imap_conf_t, default_folders), NULL },
    fa_null_command
};

fa_module_t  fa_imap_module = {
    FA_MODULE_V1, "imap", FA_MODULE_PROTOCOL, fa_imap_commands,
    fa_imap_create_conf, fa_imap_merge_conf, fa_imap_init_conf,
    NULL, NULL, NULL, NULL, FA_MODULE_SPARE
};

fa_stat_t  *fa_imap_stat_logins, *fa_imap_stat_login_failures;
fa_stat_t  *fa_imap_stat_bytes_in, *fa_imap_stat_bytes_out;

static void *
fa_imap_create_conf(fa_conf_t *cf)
{
    fa_imap_conf_t  *conf = fa_pcalloc(cf->pool, sizeof(fa_imap_conf_t));

    if (conf == NULL) {
        return NULL;
    }
    conf->timeout = FA_CONF_UNSET_MSEC;
    conf->auth_plaintext = FA_CONF_UNSET;
    conf->auth_failure_delay = FA_CONF_UNSET_MSEC;
    conf->max_auth_failures = FA_CONF_UNSET;
    conf->max_message_size = FA_CONF_UNSET_SIZE;
    conf->default_folders = FA_CONF_UNSET;
    return conf;
}

static char *
fa_imap_merge_conf(fa_conf_t *cf, void *parent, void *child)
{
    fa_imap_conf_t  *prev = parent, *conf = child;

    (void) cf;
    fa_conf_merge_msec(conf->timeout, prev->timeout, 30 * 60 * 1000);
    fa_conf_merge_value(conf->auth_plaintext, prev->auth_plaintext, 0);
    fa_conf_merge_msec(conf->auth_failure_delay, prev->auth_failure_delay, 2000);
    fa_conf_merge_value(conf->max_auth_failures, prev->max_auth_failures, 3);
    fa_conf_merge_size(conf->max_message_size, prev->max_message_size, 50 * 1024 * 1024);
    fa_conf_merge_value(conf->default_folders, prev->default_folders, 1);
    return FA_CONF_OK;
}

static char *
fa_imap_listen(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_imap_conf_t   *icf = conf;
    fa_listen_opt_t  *opt;

    (void) cmd;
    if (icf->listen == NULL
        && (icf->listen = fa_array_create(cf->pool, 2, sizeof(fa_listen_opt_t))) == NULL)
    {
        return FA_CONF_ERROR;
    }
    if ((opt = fa_array_push(icf->listen)) == NULL) {
        return FA_CONF_ERROR;
    }
    return fa_listen_parse(cf, &cf->args[1], cf->nargs - 1, opt);
}

/* TLS where a certificate is configured; an "ssl" listener must have one */
static fa_int_t
fa_imap_server_tls(fa_conf_t *cf, fa_conf_scope_t *scope, fa_imap_conf_t *conf)
{
    fa_ssl_conf_t    *tls = fa_scope_conf(scope, fa_ssl_module);
    fa_listen_opt_t  *opt = conf->listen->elts;
    int               need = 0;

    for (fa_uint_t i = 0; i < conf->listen->nelts; i++) {
        need |= opt[i].ssl;
    }
    if (!need && (tls == NULL || tls->certificate.data == NULL)) {
        return FA_OK;
    }
    cf->file = scope->file;
    cf->line = scope->line;
    conf->ssl = fa_ssl_for_scope(cf, scope);
    return conf->ssl ? FA_OK : FA_ERROR;
}

static fa_int_t
fa_imap_add_server(fa_cycle_t *cycle, fa_conf_scope_t *scope, void *data)
{
    fa_conf_t        *cf = data;
    fa_imap_conf_t   *conf = fa_scope_conf(scope, fa_imap_module);
    fa_listen_opt_t  *opt;
    fa_listening_t   *ls;

    (void) cycle;
    if (conf == NULL || conf->listen == NULL || !scope->own[fa_imap_module.index]) {
        return FA_OK;
    }
    if (fa_imap_server_tls(cf, scope, conf) != FA_OK) {
        return FA_ERROR;
    }
    opt = conf->listen->elts;
    for (fa_uint_t i = 0; i < conf->listen->nelts; i++) {
        ls = fa_listen_add(cf, &opt[i], "imap", fa_imap_init_session, conf);
        if (ls == NULL) {
            return FA_ERROR;
        }
        fa_str_set(&ls->busy_reply, "* BYE Too busy, try again later\r\n");
        ls->handshake_timeout = 60000;
        if (opt[i].ssl) {
            ls->ssl = conf->ssl;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_imap_init_conf(fa_conf_t *cf)
{
    if (fa_conf_each_scope(cf->cycle, "imap", fa_imap_add_server, cf) != FA_OK
        || fa_conf_each_scope(cf->cycle, "imap.server", fa_imap_add_server, cf) != FA_OK)
    {
        return FA_ERROR;
    }
    fa_imap_stat_logins = fa_stats_get("facteur_imap_logins_total", "", FA_STATS_COUNTER,
                                       "Successful IMAP logins");
    fa_imap_stat_login_failures = fa_stats_get("facteur_imap_login_failures_total", "",
                                               FA_STATS_COUNTER, "Failed IMAP logins");
    fa_imap_stat_bytes_in = fa_stats_get("facteur_imap_bytes_total", "direction=\"in\"",
                                         FA_STATS_COUNTER, "IMAP octets, by direction");
    fa_imap_stat_bytes_out = fa_stats_get("facteur_imap_bytes_total", "direction=\"out\"",
                                          FA_STATS_COUNTER, "IMAP octets, by direction");
    return FA_OK;
}

/*
 * Commands by name: a label per command.  The slot is looked up once per
 * name and kept (the names are the command table's, so the pointer is the
 * key): counting a command is one atomic add.
 */
void
fa_imap_count_command(const char *name)
{
    static struct {
        const char  *name;
        fa_stat_t   *st;
    }                cache[64];
    char             labels[FA_STATS_LABELS_MAX];
    fa_uint_t        i;

    for (i = 0; i < fa_nelems(cache) && cache[i].name; i++) {
        if (cache[i].name == name) {
            if (cache[i].st) {
                fa_stat_inc(cache[i].st);
            }
            return;
        }
    }
    fa_snprintf(labels, sizeof(labels), "command=\"%s\"", name);
    fa_stat_t *st = fa_stats_get("facteur_imap_commands_total", labels, FA_STATS_COUNTER,
                                 "IMAP commands, by name");
    if (i < fa_nelems(cache)) {
        cache[i].name = name;
        cache[i].st = st;
    }
    if (st) {
        fa_stat_inc(st);
    }
}
