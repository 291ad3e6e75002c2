/*
 * The core module: main-scope directives (workers, user, pid, error log,
 * load_module) and the "domain" block every tenant-aware module reads.
 */

#include "fa_core.h"
#include <pwd.h>
#include <grp.h>

static char *fa_core_set_error_log(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static char *fa_core_set_workers(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static char *fa_core_set_user(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static char *fa_core_load_module(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static char *fa_core_domain(fa_conf_t *cf, const fa_command_t *cmd, void *conf);

static const fa_conf_bounds_t  fa_core_connections_bounds = { 16, 1000000 };

static const fa_command_t  fa_core_commands[] = {
    { "worker_processes", "main", FA_CONF_TAKE1, fa_core_set_workers, 0, NULL },
    { "worker_connections", "main", FA_CONF_TAKE1, fa_conf_set_num,
      offsetof(fa_core_conf_t, worker_connections), &fa_core_connections_bounds },
    { "worker_shutdown_timeout", "main", FA_CONF_TAKE1, fa_conf_set_msec,
      offsetof(fa_core_conf_t, shutdown_timeout), NULL },
    { "daemon", "main", FA_CONF_FLAG, fa_conf_set_flag,
      offsetof(fa_core_conf_t, daemon), NULL },
    { "pid", "main", FA_CONF_TAKE1, fa_conf_set_path,
      offsetof(fa_core_conf_t, pid), NULL },
    { "user", "main", FA_CONF_TAKE12, fa_core_set_user, 0, NULL },
    { "error_log", "main", FA_CONF_TAKE12, fa_core_set_error_log, 0, NULL },
    { "load_module", "main", FA_CONF_TAKE1 | FA_CONF_MULTI, fa_core_load_module, 0, NULL },
    { "domain", "main", FA_CONF_TAKE1 | FA_CONF_BLOCK | FA_CONF_MULTI, fa_core_domain, 0, NULL },
    fa_null_command
};

static void *
fa_core_create_conf(fa_conf_t *cf)
{
    fa_core_conf_t  *ccf = fa_pcalloc(cf->pool, sizeof(fa_core_conf_t));

    if (ccf == NULL) {
        return NULL;
    }
    ccf->worker_processes = FA_CONF_UNSET;
    ccf->worker_connections = FA_CONF_UNSET_UINT;
    ccf->daemon = FA_CONF_UNSET;
    ccf->shutdown_timeout = FA_CONF_UNSET_MSEC;
    ccf->error_log_level = FA_CONF_UNSET_UINT;
    ccf->uid = (uid_t) -1;
    ccf->gid = (gid_t) -1;
    return ccf;
}

static char *
fa_core_merge_conf(fa_conf_t *cf, void *parent, void *child)
{
    fa_core_conf_t  *prev = parent, *ccf = child;
    fa_str_t         def_pid = fa_string("var/facteur.pid");
    long             ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    fa_conf_merge_value(ccf->worker_processes, prev->worker_processes, 0);
    if (ccf->worker_processes == 0) {
        ccf->worker_processes = ncpu > 0 ? fa_min(ncpu, FA_MAX_WORKERS) : 1;
    }
    fa_conf_merge_uint(ccf->worker_connections, prev->worker_connections, 1024);
    fa_conf_merge_value(ccf->daemon, prev->daemon, 0);
    fa_conf_merge_msec(ccf->shutdown_timeout, prev->shutdown_timeout, 0);
    fa_conf_merge_uint(ccf->error_log_level, prev->error_log_level, FA_LOG_NOTICE);
    fa_conf_merge_str(ccf->error_log, prev->error_log, "stderr");
    if (ccf->pid.data == NULL) {
        ccf->pid.data = (u_char *) (prev->pid.data ? (char *) prev->pid.data
                                                    : fa_conf_full_path(cf, &def_pid));
        ccf->pid.len = strlen((char *) ccf->pid.data);
    }
    return FA_CONF_OK;
}

static char *
fa_core_set_workers(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_core_conf_t  *ccf = conf;
    int64_t          n;

    (void) cmd;
    if (fa_str_eq(&cf->args[1], "auto")) {
        ccf->worker_processes = 0;
        return FA_CONF_OK;
    }
    n = fa_atoi(cf->args[1].data, cf->args[1].len);
    if (n < 1 || n > FA_MAX_WORKERS) {
        return fa_conf_error(cf, "invalid value \"%.*s\" in \"worker_processes\" directive, "
                             "it must be a number from 1 to %d or \"auto\"",
                             (int) cf->args[1].len, cf->args[1].data, FA_MAX_WORKERS);
    }
    ccf->worker_processes = n;
    return FA_CONF_OK;
}

static char *
fa_core_set_error_log(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_core_conf_t  *ccf = conf;
    fa_int_t         level = FA_LOG_NOTICE;

    (void) cmd;
    if (cf->nargs == 3) {
        level = fa_log_level_parse(&cf->args[2]);
        if (level == FA_ERROR) {
            return fa_conf_error(cf, "unknown log level \"%.*s\" (debug, info, notice, "
                                 "warn, error, crit, alert or emerg)",
                                 (int) cf->args[2].len, cf->args[2].data);
        }
    }
    ccf->error_log_level = (fa_uint_t) level;
    if (fa_str_eq(&cf->args[1], "stderr")) {
        fa_str_set(&ccf->error_log, "stderr");
    } else {
        ccf->error_log.data = (u_char *) fa_conf_full_path(cf, &cf->args[1]);
        ccf->error_log.len = ccf->error_log.data ? strlen((char *) ccf->error_log.data) : 0;
    }
    return ccf->error_log.data ? FA_CONF_OK : FA_CONF_ERROR;
}

static char *
fa_core_set_user(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_core_conf_t  *ccf = conf;
    struct passwd   *pw;
    struct group    *gr;
    u_char          *name, *group;

    (void) cmd;
    name = fa_pstrdup(cf->pool, &cf->args[1]);
    group = cf->nargs == 3 ? fa_pstrdup(cf->pool, &cf->args[2]) : NULL;
    if (name == NULL || (cf->nargs == 3 && group == NULL)) {
        return FA_CONF_ERROR;
    }
    pw = getpwnam((char *) name);
    if (pw == NULL) {
        return fa_conf_error(cf, "unknown user \"%s\" in \"user\"", name);
    }
    ccf->user = cf->args[1];
    ccf->uid = pw->pw_uid;
    ccf->gid = pw->pw_gid;
    if (group) {
        gr = getgrnam((char *) group);
        if (gr == NULL) {
            return fa_conf_error(cf, "unknown group \"%s\" in \"user\"", group);
        }
        ccf->gid = gr->gr_gid;
    }
    return FA_CONF_OK;
}

static char *
fa_core_load_module(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    char  *path;

    (void) cmd;
    (void) conf;
    if (cf->scope != cf->cycle->root) {
        return fa_conf_error(cf, "\"load_module\" is only allowed at the top level");
    }
    path = fa_conf_full_path(cf, &cf->args[1]);
    if (path == NULL || fa_module_load(cf, path) != FA_OK) {
        return FA_CONF_ERROR;
    }
    return FA_CONF_OK;
}

/* domain NAME { ... }: a tenant; its name is how SNI and modules find it */
static char *
fa_core_domain(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_str_t          *name = &cf->args[1];
    fa_conf_scope_t  **kids = cf->scope->children.elts, *scope;

    (void) cmd;
    (void) conf;
    for (size_t i = 0; i < name->len; i++) {
        u_char ch = name->data[i];
        if (!(ch == '.' || ch == '-' || ch == '*' || (ch >= '0' && ch <= '9')
              || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')) || name->len > 253)
        {
            return fa_conf_error(cf, "invalid domain name \"%.*s\"", (int) name->len,
                                 name->data);
        }
    }
    fa_strlow(name->data, name->data, name->len);
    for (fa_uint_t i = 0; i < cf->scope->children.nelts; i++) {
        if (strcmp(kids[i]->kind, "domain") == 0 && fa_str_equal(&kids[i]->name, name)) {
            return fa_conf_error(cf, "duplicate domain \"%.*s\" (first defined in %s:%lu)",
                                 (int) name->len, name->data, kids[i]->file,
                                 (unsigned long) kids[i]->line);
        }
    }
    return fa_conf_block(cf, "domain", &scope);
}

fa_module_t  fa_core_module = {
    FA_MODULE_V1, "core", FA_MODULE_CORE, fa_core_commands,
    fa_core_create_conf, fa_core_merge_conf, NULL,
    NULL, NULL, NULL, NULL, FA_MODULE_SPARE
};

