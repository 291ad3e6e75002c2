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
#include "fa_auth_quota.h"
#include "fa_auth_login.h"

typedef struct {
    fa_str_t  directory;
    size_t    quota_bytes;            /* main and domain: the default quota */
    fa_int_t  quota_messages;
} fa_auth_conf_t;

static void *fa_auth_create_conf(fa_conf_t *cf);
static char *fa_auth_merge_conf(fa_conf_t *cf, void *parent, void *child);
static fa_int_t fa_auth_init_worker(fa_cycle_t *cycle);
static void fa_auth_exit_worker(fa_cycle_t *cycle);

static const fa_command_t  fa_auth_commands[] = {
    { "auth_directory", "main", FA_CONF_TAKE1, fa_conf_set_path,
      offsetof(fa_auth_conf_t, directory), NULL },
    { "quota_bytes", "main domain", FA_CONF_TAKE1, fa_conf_set_size,
      offsetof(fa_auth_conf_t, quota_bytes), NULL },
    { "quota_messages", "main domain", FA_CONF_TAKE1, fa_conf_set_num,
      offsetof(fa_auth_conf_t, quota_messages), NULL },
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
    fa_auth_conf_t  *conf = fa_pcalloc(cf->pool, sizeof(fa_auth_conf_t));

    if (conf) {
        conf->quota_bytes = FA_CONF_UNSET_SIZE;
        conf->quota_messages = FA_CONF_UNSET;
    }
    return conf;
}

static char *
fa_auth_merge_conf(fa_conf_t *cf, void *parent, void *child)
{
    fa_auth_conf_t  *prev = parent, *conf = child;
    fa_str_t         def = fa_string("var/auth");

    if (cf->scope && strcmp(cf->scope->kind, "domain") == 0) {
        return FA_CONF_OK;               /* a domain says only what it overrides */
    }
    fa_conf_merge_size(conf->quota_bytes, prev->quota_bytes, 0);
    fa_conf_merge_value(conf->quota_messages, prev->quota_messages, 0);
    if (conf->directory.data == NULL) {
        conf->directory = prev->directory;
    }
    if (conf->directory.data == NULL) {
        conf->directory.data = (u_char *) fa_conf_full_path(cf, &def);
        conf->directory.len = conf->directory.data ? strlen((char *) conf->directory.data) : 0;
    }
    return conf->directory.data ? FA_CONF_OK : FA_CONF_ERROR;
}

/*
 * The limits a user should have: their own (the directory), else their
 * domain's quota_bytes / quota_messages, else the main ones; 0: none.
 */
void
fa_auth_quota_wanted(fa_cycle_t *cycle, const fa_auth_user_t *u, uint64_t *bytes,
    uint64_t *messages)
{
    fa_auth_conf_t   *main = fa_scope_conf(cycle->root, fa_auth_module), *d = NULL;
    const u_char     *at = memrchr(u->address.data, '@', u->address.len);
    fa_conf_scope_t  *scope;

    if (at) {
        fa_str_t domain = { u->address.len - (size_t) (at + 1 - u->address.data),
                            (u_char *) at + 1 };
        scope = fa_conf_domain(cycle, &domain);
        if (scope && scope->own[fa_auth_module.index]) {
            d = fa_scope_conf(scope, fa_auth_module);
        }
    }
    *bytes = u->quota_bytes ? u->quota_bytes
             : d && d->quota_bytes != FA_CONF_UNSET_SIZE ? d->quota_bytes : main->quota_bytes;
    *messages = u->quota_messages ? u->quota_messages
                : d && d->quota_messages != FA_CONF_UNSET ? (uint64_t) d->quota_messages
                : (uint64_t) main->quota_messages;
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
