/*
 * The auth module: the user and domain directory (fa_auth_directory.h), the
 * password schemes (fa_auth_password.h) and the Dovecot passwd-file reader
 * (fa_auth_passwd_file.h), for the protocol modules and for facteurctl;
 * and in each worker the login service (fa_auth_login.h), which facteurctl
 * never starts: it runs no worker.
 *
 *   auth_directory  var/auth;     # the directory's LMDB environment
 */

#include "fa_core.h"
#include "fa_auth_directory.h"
#include "fa_auth_password.h"
#include "fa_auth_passwd_file.h"
#include "fa_auth_login.h"

typedef struct {
    fa_str_t  directory;
} fa_auth_conf_t;

static void *fa_auth_create_conf(fa_conf_t *cf);
static char *fa_auth_merge_conf(fa_conf_t *cf, void *parent, void *child);
static fa_int_t fa_auth_init_worker(fa_cycle_t *cycle);
static void fa_auth_exit_worker(fa_cycle_t *cycle);

static const fa_command_t  fa_auth_commands[] = {
    { "auth_directory", "main", FA_CONF_TAKE1, fa_conf_set_path,
      offsetof(fa_auth_conf_t, directory), NULL },
    fa_null_command
};

fa_module_t  fa_auth_module = {
    FA_MODULE_V1, "auth", FA_MODULE_OTHER, fa_auth_commands,
    fa_auth_create_conf, fa_auth_merge_conf, NULL, NULL, fa_auth_init_worker,
    fa_auth_exit_worker, NULL, FA_MODULE_SPARE
};

static void *
fa_auth_create_conf(fa_conf_t *cf)
{
    return fa_pcalloc(cf->pool, sizeof(fa_auth_conf_t));
}

static char *
fa_auth_merge_conf(fa_conf_t *cf, void *parent, void *child)
{
    fa_auth_conf_t  *prev = parent, *conf = child;
    fa_str_t         def = fa_string("var/auth");

    if (conf->directory.data == NULL) {
        conf->directory = prev->directory;
    }
    if (conf->directory.data == NULL) {
        conf->directory.data = (u_char *) fa_conf_full_path(cf, &def);
        conf->directory.len = conf->directory.data ? strlen((char *) conf->directory.data) : 0;
    }
    return conf->directory.data ? FA_CONF_OK : FA_CONF_ERROR;
}

const char *
fa_auth_dir_path(fa_cycle_t *cycle)
{
    fa_auth_conf_t  *conf = fa_scope_conf(cycle->root, fa_auth_module);

    return (const char *) conf->directory.data;
}

static fa_int_t
fa_auth_init_worker(fa_cycle_t *cycle)
{
    return fa_auth_login_init_worker(fa_auth_dir_path(cycle), cycle->log);
}

static void
fa_auth_exit_worker(fa_cycle_t *cycle)
{
    (void) cycle;
    fa_auth_login_exit_worker();
}
