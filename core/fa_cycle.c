/*
 * Loading a configuration into a new cycle.  Everything is built aside:
 * parse, merge, let modules check and register (init_conf), open the error
 * log and the listeners.  Any failure frees the half-built cycle and leaves
 * the running one untouched, so a broken reload changes nothing.
 */

#include "fa_core.h"
#include <dlfcn.h>

#define FA_CYCLE_POOL_SIZE  16384

fa_cycle_t  *fa_cycle;

static fa_int_t
fa_cycle_init_arrays(fa_cycle_t *cycle)
{
    if (fa_array_init(&cycle->modules, cycle->pool, 32, sizeof(fa_module_t *)) != FA_OK
        || fa_array_init(&cycle->dl_handles, cycle->pool, 4, sizeof(void *)) != FA_OK
        || fa_array_init(&cycle->listening, cycle->pool, 8, sizeof(fa_listening_t *)) != FA_OK
        || fa_array_init(&cycle->ssl_contexts, cycle->pool, 4, sizeof(fa_ssl_t *)) != FA_OK)
    {
        return FA_ERROR;
    }
    return fa_modules_add_static(cycle);
}

static fa_cycle_t *
fa_cycle_create(const char *prefix, const char *conf_file)
{
    fa_pool_t   *pool;
    fa_cycle_t  *cycle;

    pool = fa_pool_create(FA_CYCLE_POOL_SIZE, &fa_log_stderr);
    if (pool == NULL) {
        return NULL;
    }
    cycle = fa_pcalloc(pool, sizeof(fa_cycle_t));
    if (cycle == NULL) {
        fa_pool_destroy(pool);
        return NULL;
    }
    cycle->pool = pool;
    cycle->log_storage = fa_log_stderr;
    cycle->log = &cycle->log_storage;
    cycle->prefix = fa_pstrcat(pool, prefix, "");
    cycle->conf_file = fa_pstrcat(pool, conf_file, "");
    if (cycle->prefix == NULL || cycle->conf_file == NULL
        || fa_cycle_init_arrays(cycle) != FA_OK)
    {
        fa_pool_destroy(pool);
        return NULL;
    }
    return cycle;
}

static fa_int_t
fa_cycle_parse(fa_cycle_t *cycle, fa_conf_t *cf)
{
    cf->cycle = cycle;
    cf->pool = cycle->pool;
    cf->log = cycle->log;
    cf->temp_pool = fa_pool_create(FA_CYCLE_POOL_SIZE, cycle->log);
    cycle->root = fa_conf_scope_create(cf, NULL, "main");
    if (cf->temp_pool == NULL || cycle->root == NULL) {
        return FA_ERROR;
    }
    cf->scope = cycle->root;
    if (fa_conf_parse_file(cf, cycle->conf_file) != FA_OK
        || fa_conf_merge_scopes(cf) != FA_OK)
    {
        return FA_ERROR;
    }
    cycle->core_conf = fa_scope_conf(cycle->root, fa_core_module);
    return fa_modules_init_conf(cf);
}

static fa_int_t
fa_cycle_open_log(fa_cycle_t *cycle)
{
    fa_core_conf_t  *ccf = cycle->core_conf;

    cycle->log_file = fa_log_file_open((char *) ccf->error_log.data, cycle->log);
    if (cycle->log_file == NULL) {
        return FA_ERROR;
    }
    cycle->log->file = cycle->log_file;
    cycle->log->level = ccf->error_log_level;
    return FA_OK;
}

fa_cycle_t *
fa_cycle_load(fa_cycle_t *old, const char *prefix, const char *conf_file,
    int test_only, char **error)
{
    fa_cycle_t  *cycle;
    fa_conf_t    cf;
    fa_int_t     rc;

    *error = NULL;
    cycle = fa_cycle_create(prefix, conf_file);
    if (cycle == NULL) {
        *error = strdup("out of memory while loading the configuration");
        return NULL;
    }
    cycle->test_only = test_only;
    if (old) {
        cycle->log_storage.file = old->log->file;  /* errors go where they went so far */
        cycle->log_storage.level = old->log->level;
    }
    memset(&cf, 0, sizeof(cf));

    rc = fa_cycle_parse(cycle, &cf);
    if (rc == FA_OK && !test_only) {
        rc = fa_cycle_open_log(cycle);
        if (rc == FA_OK) {
            rc = fa_listen_open_all(cycle, old);
        }
        if (rc != FA_OK && cf.error == NULL) {
            cf.error = "opening the error log or the listeners failed (see above)";
        }
    }
    if (cf.temp_pool) {
        fa_pool_destroy(cf.temp_pool);
    }
    if (rc != FA_OK) {
        *error = strdup(cf.error ? cf.error : "the configuration failed to load");
        fa_listen_close_all(cycle);
        if (old) {                       /* the old cycle keeps all its sockets */
            fa_listening_t **ols = old->listening.elts;
            for (fa_uint_t i = 0; i < old->listening.nelts; i++) {
                ols[i]->remain = 0;
            }
        }
        fa_cycle_free(cycle);
        return NULL;
    }
    return cycle;
}

void
fa_cycle_free(fa_cycle_t *cycle)
{
    fa_ssl_t  **ssl = cycle->ssl_contexts.elts;
    void      **h = cycle->dl_handles.elts;

    for (fa_uint_t i = 0; i < cycle->ssl_contexts.nelts; i++) {
        fa_ssl_free(ssl[i]);
    }
    if (cycle->log_file && cycle->log->file == cycle->log_file) {
        fa_log_file_close(cycle->log_file);
    }
    for (fa_uint_t i = 0; i < cycle->dl_handles.nelts; i++) {
        dlclose(h[i]);
    }
    fa_pool_destroy(cycle->pool);
}
