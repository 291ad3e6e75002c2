/*
 * fa_test_badabi: a module shaped like any other (a directive, a conf
 * struct, a descriptor) whose ABI signature is deliberately not the core's.
 * "load_module" must refuse it with "... is not binary compatible ..."
 * before calling anything in it (t/modules.t).
 */

#include "fa_core.h"

#define FA_TEST_BADABI_SIGNATURE  "facteur-abi-0:mismatch"

typedef struct {
    fa_int_t  enabled;
} fa_test_badabi_conf_t;

static void *
fa_test_badabi_create_conf(fa_conf_t *cf)
{
    fa_test_badabi_conf_t  *conf;

    conf = fa_pcalloc(cf->pool, sizeof(fa_test_badabi_conf_t));
    if (conf == NULL) {
        return NULL;
    }
    conf->enabled = FA_CONF_UNSET;
    return conf;
}

static char *
fa_test_badabi_merge_conf(fa_conf_t *cf, void *parent, void *child)
{
    fa_test_badabi_conf_t  *prev = parent, *conf = child;

    (void) cf;
    fa_conf_merge_value(conf->enabled, prev ? prev->enabled : FA_CONF_UNSET, 0);
    return FA_CONF_OK;
}

static const fa_command_t  fa_test_badabi_commands[] = {
    { "badabi", "main", FA_CONF_FLAG, fa_conf_set_flag,
      offsetof(fa_test_badabi_conf_t, enabled), NULL },
    fa_null_command
};

fa_module_t  fa_test_badabi_module = {
    FA_MODULE_UNSET_INDEX, FA_MODULE_ABI_VERSION, FA_TEST_BADABI_SIGNATURE,
    "test_badabi", FA_MODULE_OTHER, fa_test_badabi_commands,
    fa_test_badabi_create_conf, fa_test_badabi_merge_conf, NULL,
    NULL, NULL, NULL, NULL, FA_MODULE_SPARE
};
