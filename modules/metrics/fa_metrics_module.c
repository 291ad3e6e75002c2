/*
 * The metrics module's configuration: the "metrics" block, its listeners
 * and its timeout (see fa_metrics.h).  The HTTP side is fa_metrics_http.c.
 */

#include "fa_metrics.h"

#define FA_METRICS_TIMEOUT  30000

static void *fa_metrics_create_conf(fa_conf_t *cf);
static char *fa_metrics_merge_conf(fa_conf_t *cf, void *parent, void *child);
static fa_int_t fa_metrics_init_conf(fa_conf_t *cf);
static char *fa_metrics_set_listen(fa_conf_t *cf, const fa_command_t *cmd, void *conf);

static const fa_conf_bounds_t  fa_metrics_timeout_bounds = { 1, 24 * 3600 * 1000 };

static const fa_command_t  fa_metrics_commands[] = {
    { "metrics", "main", FA_CONF_BLOCK | FA_CONF_NOARGS, fa_conf_set_block, 0, NULL },
    { "listen", "metrics", FA_CONF_1MORE | FA_CONF_MULTI, fa_metrics_set_listen, 0, NULL },
    { "metrics_timeout", "metrics", FA_CONF_TAKE1, fa_conf_set_msec,
      offsetof(fa_metrics_conf_t, timeout), &fa_metrics_timeout_bounds },
    fa_null_command
};

fa_module_t  fa_metrics_module = {
    FA_MODULE_V1, "metrics", FA_MODULE_OTHER, fa_metrics_commands,
    fa_metrics_create_conf, fa_metrics_merge_conf, fa_metrics_init_conf,
    NULL, NULL, NULL, NULL, FA_MODULE_SPARE
};

fa_stat_t  *fa_metrics_requests;

/* what a scraper gets when every worker_connections slot is taken */
static const char  fa_metrics_busy[] =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 20\r\n"
    "Connection: close\r\n"
    "\r\n"
    "Service Unavailable\n";

static void *
fa_metrics_create_conf(fa_conf_t *cf)
{
    fa_metrics_conf_t  *mcf;

    mcf = fa_pcalloc(cf->pool, sizeof(fa_metrics_conf_t));
    if (mcf == NULL) {
        return NULL;
    }
    mcf->timeout = FA_CONF_UNSET_MSEC;
    return mcf;
}

/* listeners belong to the block that declares them and are not inherited */
static char *
fa_metrics_merge_conf(fa_conf_t *cf, void *parent, void *child)
{
    fa_metrics_conf_t  *prev = parent, *conf = child;

    (void) cf;
    fa_conf_merge_msec(conf->timeout, prev->timeout, FA_METRICS_TIMEOUT);
    return FA_CONF_OK;
}

static char *
fa_metrics_set_listen(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_metrics_conf_t  *mcf = conf;
    fa_listen_opt_t    *opt;
    char               *rv;

    (void) cmd;
    if (mcf->listen == NULL) {
        mcf->listen = fa_array_create(cf->pool, 2, sizeof(fa_listen_opt_t));
        if (mcf->listen == NULL) {
            return fa_conf_error(cf, "out of memory");
        }
    }
    opt = fa_array_push(mcf->listen);
    if (opt == NULL) {
        return fa_conf_error(cf, "out of memory");
    }
    rv = fa_listen_parse(cf, &cf->args[1], cf->nargs - 1, opt);
    if (rv != FA_CONF_OK) {
        mcf->listen->nelts--;
    }
    return rv;
}

static fa_int_t
fa_metrics_add_listeners(fa_cycle_t *cycle, fa_conf_scope_t *scope, void *data)
{
    fa_conf_t          *cf = data;
    fa_metrics_conf_t  *mcf = fa_scope_conf(scope, fa_metrics_module);
    fa_listen_opt_t    *opt;
    fa_listening_t     *ls;

    (void) cycle;
    if (mcf == NULL || mcf->listen == NULL || mcf->listen->nelts == 0) {
        cf->file = scope->file;
        cf->line = scope->line;
        fa_conf_error(cf, "no \"listen\" is defined in the \"metrics\" block");
        return FA_ERROR;
    }
    opt = mcf->listen->elts;
    for (fa_uint_t i = 0; i < mcf->listen->nelts; i++) {
        ls = fa_listen_add(cf, &opt[i], "metrics", fa_metrics_http_init, mcf);
        if (ls == NULL) {
            return FA_ERROR;
        }
        ls->busy_reply.data = (u_char *) fa_metrics_busy;
        ls->busy_reply.len = sizeof(fa_metrics_busy) - 1;
        ls->handshake_timeout = mcf->timeout;
        if (opt[i].ssl) {
            ls->ssl = fa_ssl_for_scope(cf, scope);
            if (ls->ssl == NULL) {
                return FA_ERROR;
            }
        }
    }
    return FA_OK;
}

static fa_int_t
fa_metrics_init_conf(fa_conf_t *cf)
{
    fa_metrics_requests = fa_stats_get("facteur_metrics_requests_total", "",
        FA_STATS_COUNTER, "HTTP requests answered by the metrics endpoint.");
    if (fa_conf_each_scope(cf->cycle, "metrics", fa_metrics_add_listeners, cf) != FA_OK) {
        if (cf->error == NULL) {
            fa_conf_error(cf, "out of memory");
        }
        return FA_ERROR;
    }
    return FA_OK;
}

