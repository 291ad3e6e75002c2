/*
 * The POP3 module: directives, servers and their listeners, counters.
 *
 *   pop3 {
 *       pop3_timeout 10m;              # RFC 1939: at least 10 minutes
 *       auth_plaintext off;            # on: USER/PASS and AUTH without TLS
 *       auth_failure_delay 2s;  max_auth_failures 3;
 *       pop3_lock on;                  # a second session for a user: -ERR [IN-USE]
 *       pop3_lock_path var/pop3;       # the lock files (flock: freed by any exit)
 *       pop3_expire never;             # CAPA EXPIRE: never, or days (0: at QUIT)
 *       pop3_login_delay 0;            # CAPA LOGIN-DELAY, enforced per user
 *       server { listen 2110; listen 2995 ssl; }
 *   }
 */

#include "fa_pop3_int.h"

#define FA_POP3_SCOPES  "pop3 pop3.server"

static void *fa_pop3_create_conf(fa_conf_t *cf);
static char *fa_pop3_merge_conf(fa_conf_t *cf, void *parent, void *child);
static fa_int_t fa_pop3_init_conf(fa_conf_t *cf);
static char *fa_pop3_listen(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static char *fa_pop3_set_expire(fa_conf_t *cf, const fa_command_t *cmd, void *conf);

static const fa_command_t  fa_pop3_commands[] = {
    { "pop3", "main", FA_CONF_BLOCK | FA_CONF_NOARGS, fa_conf_set_block, 0, NULL },
    { "server", "pop3", FA_CONF_BLOCK | FA_CONF_NOARGS | FA_CONF_MULTI, fa_conf_set_block,
      0, NULL },
    { "listen", FA_POP3_SCOPES, FA_CONF_1MORE | FA_CONF_MULTI, fa_pop3_listen, 0, NULL },
    { "pop3_timeout", FA_POP3_SCOPES, FA_CONF_TAKE1, fa_conf_set_msec,
      offsetof(fa_pop3_conf_t, timeout), NULL },
    { "auth_plaintext", FA_POP3_SCOPES, FA_CONF_FLAG, fa_conf_set_flag,
      offsetof(fa_pop3_conf_t, auth_plaintext), NULL },
    { "auth_failure_delay", FA_POP3_SCOPES, FA_CONF_TAKE1, fa_conf_set_msec,
      offsetof(fa_pop3_conf_t, auth_failure_delay), NULL },
    { "max_auth_failures", FA_POP3_SCOPES, FA_CONF_TAKE1, fa_conf_set_num,
      offsetof(fa_pop3_conf_t, max_auth_failures), NULL },
    { "pop3_lock", FA_POP3_SCOPES, FA_CONF_FLAG, fa_conf_set_flag,
      offsetof(fa_pop3_conf_t, lock), NULL },
    { "pop3_lock_path", FA_POP3_SCOPES, FA_CONF_TAKE1, fa_conf_set_path,
      offsetof(fa_pop3_conf_t, lock_path), NULL },
    { "pop3_expire", FA_POP3_SCOPES, FA_CONF_TAKE1, fa_pop3_set_expire, 0, NULL },
    { "pop3_login_delay", FA_POP3_SCOPES, FA_CONF_TAKE1, fa_conf_set_msec,
      offsetof(fa_pop3_conf_t, login_delay), NULL },
    fa_null_command
};

fa_module_t  fa_pop3_module = {
    FA_MODULE_V1, "pop3", FA_MODULE_PROTOCOL, fa_pop3_commands,
    fa_pop3_create_conf, fa_pop3_merge_conf, fa_pop3_init_conf,
    NULL, NULL, NULL, NULL, FA_MODULE_SPARE
};

fa_stat_t  *fa_pop3_stat_logins, *fa_pop3_stat_login_failures, *fa_pop3_stat_retr,
           *fa_pop3_stat_dele, *fa_pop3_stat_bytes;

static void *
fa_pop3_create_conf(fa_conf_t *cf)
{
    fa_pop3_conf_t  *conf = fa_pcalloc(cf->pool, sizeof(fa_pop3_conf_t));

    if (conf == NULL) {
        return NULL;
    }
    conf->timeout = FA_CONF_UNSET_MSEC;
    conf->auth_plaintext = FA_CONF_UNSET;
    conf->auth_failure_delay = FA_CONF_UNSET_MSEC;
    conf->max_auth_failures = FA_CONF_UNSET;
    conf->lock = FA_CONF_UNSET;
    conf->expire = FA_CONF_UNSET;
    conf->login_delay = FA_CONF_UNSET_MSEC;
    return conf;
}

static char *
fa_pop3_merge_conf(fa_conf_t *cf, void *parent, void *child)
{
    fa_pop3_conf_t  *prev = parent, *conf = child;
    fa_str_t         def = fa_string("var/pop3");

    fa_conf_merge_msec(conf->timeout, prev->timeout, 600000);
    fa_conf_merge_value(conf->auth_plaintext, prev->auth_plaintext, 0);
    fa_conf_merge_msec(conf->auth_failure_delay, prev->auth_failure_delay, 2000);
    fa_conf_merge_value(conf->max_auth_failures, prev->max_auth_failures, 3);
    fa_conf_merge_value(conf->lock, prev->lock, 1);
    fa_conf_merge_value(conf->expire, prev->expire, -2);
    fa_conf_merge_msec(conf->login_delay, prev->login_delay, 0);
    if (conf->lock_path.data == NULL) {
        conf->lock_path = prev->lock_path;
    }
    if (conf->lock_path.data == NULL) {
        conf->lock_path.data = (u_char *) fa_conf_full_path(cf, &def);
        conf->lock_path.len = conf->lock_path.data ? strlen((char *) conf->lock_path.data) : 0;
    }
    return conf->lock_path.data ? FA_CONF_OK : FA_CONF_ERROR;
}

/* pop3_expire never | DAYS */
static char *
fa_pop3_set_expire(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_pop3_conf_t  *pcf = conf;
    int64_t          days;

    (void) cmd;
    if (pcf->expire != FA_CONF_UNSET) {
        return "is duplicate";
    }
    if (fa_str_eqi(&cf->args[1], "never")) {
        pcf->expire = -1;
        return FA_CONF_OK;
    }
    days = fa_atoi(cf->args[1].data, cf->args[1].len);
    if (days < 0 || days > 100000) {
        return fa_conf_error(cf, "invalid value \"%s\" in \"pop3_expire\" (never, or days)",
                             (char *) cf->args[1].data);
    }
    pcf->expire = (fa_int_t) days;
    return FA_CONF_OK;
}

static char *
fa_pop3_listen(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_pop3_conf_t   *pcf = conf;
    fa_listen_opt_t  *opt;

    (void) cmd;
    if (pcf->listen == NULL
        && (pcf->listen = fa_array_create(cf->pool, 2, sizeof(fa_listen_opt_t))) == NULL)
    {
        return FA_CONF_ERROR;
    }
    if ((opt = fa_array_push(pcf->listen)) == NULL) {
        return FA_CONF_ERROR;
    }
    return fa_listen_parse(cf, &cf->args[1], cf->nargs - 1, opt);
}

static fa_int_t
fa_pop3_add_server(fa_cycle_t *cycle, fa_conf_scope_t *scope, void *data)
{
    fa_conf_t        *cf = data;
    fa_pop3_conf_t   *conf = fa_scope_conf(scope, fa_pop3_module);
    fa_ssl_conf_t    *tls = fa_scope_conf(scope, fa_ssl_module);
    fa_listen_opt_t  *opt;
    fa_listening_t   *ls;
    int               need = 0;

    (void) cycle;
    if (conf == NULL || conf->listen == NULL || !scope->own[fa_pop3_module.index]) {
        return FA_OK;
    }
    opt = conf->listen->elts;
    for (fa_uint_t i = 0; i < conf->listen->nelts; i++) {
        need |= opt[i].ssl;
    }
    if (need || (tls && tls->certificate.data)) {
        cf->file = scope->file;
        cf->line = scope->line;
        if ((conf->ssl = fa_ssl_for_scope(cf, scope)) == NULL) {
            return FA_ERROR;
        }
    }
    for (fa_uint_t i = 0; i < conf->listen->nelts; i++) {
        ls = fa_listen_add(cf, &opt[i], "pop3", fa_pop3_init_session, conf);
        if (ls == NULL) {
            return FA_ERROR;
        }
        fa_str_set(&ls->busy_reply, "-ERR [SYS/TEMP] Too busy, try again later\r\n");
        ls->handshake_timeout = 60000;
        if (opt[i].ssl) {
            ls->ssl = conf->ssl;
        }
    }
    return FA_OK;
}

static fa_stat_t *
fa_pop3_counter(const char *name, const char *help)
{
    return fa_stats_get(name, "", FA_STATS_COUNTER, help);
}

static fa_int_t
fa_pop3_init_conf(fa_conf_t *cf)
{
    if (fa_conf_each_scope(cf->cycle, "pop3", fa_pop3_add_server, cf) != FA_OK
        || fa_conf_each_scope(cf->cycle, "pop3.server", fa_pop3_add_server, cf) != FA_OK)
    {
        return FA_ERROR;
    }
    fa_pop3_stat_logins = fa_pop3_counter("facteur_pop3_logins_total", "Successful POP3 logins");
    fa_pop3_stat_login_failures = fa_pop3_counter("facteur_pop3_login_failures_total",
                                                  "Failed POP3 logins");
    fa_pop3_stat_retr = fa_pop3_counter("facteur_pop3_retrieved_total",
                                        "Messages sent by RETR and TOP");
    fa_pop3_stat_dele = fa_pop3_counter("facteur_pop3_deleted_total",
                                        "Messages deleted at QUIT");
    fa_pop3_stat_bytes = fa_pop3_counter("facteur_pop3_bytes_total",
                                         "Octets sent by RETR and TOP");
    return FA_OK;
}
