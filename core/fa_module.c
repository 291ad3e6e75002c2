/*
 * The module registry.  Static modules are indexed once at start; a dynamic
 * module gets the next free index the first time its shared object is
 * loaded and keeps it (dlopen of the same file returns the same mapping), so
 * an index never changes under a running configuration.
 */

#include "fa_core.h"
#include <dlfcn.h>

static fa_module_t **fa_statics;
static fa_uint_t     fa_modules_next_index;

fa_int_t
fa_modules_preinit(fa_module_t **statics)
{
    fa_statics = statics;
    for (fa_uint_t i = 0; statics[i]; i++) {
        statics[i]->index = fa_modules_next_index++;
    }
    return FA_OK;
}

fa_int_t
fa_modules_add_static(fa_cycle_t *cycle)
{
    fa_module_t  **slot;

    for (fa_uint_t i = 0; fa_statics && fa_statics[i]; i++) {
        slot = fa_array_push(&cycle->modules);
        if (slot == NULL) {
            return FA_ERROR;
        }
        *slot = fa_statics[i];
    }
    return FA_OK;
}

fa_uint_t
fa_modules_count(fa_cycle_t *cycle)
{
    return cycle->modules.nelts;
}

fa_module_t *
fa_module_find(fa_cycle_t *cycle, const char *name)
{
    fa_module_t  **m = cycle->modules.elts;

    for (fa_uint_t i = 0; i < cycle->modules.nelts; i++) {
        if (strcmp(m[i]->name, name) == 0) {
            return m[i];
        }
    }
    return NULL;
}

static char *
fa_module_check(fa_conf_t *cf, const char *path, fa_module_t *m)
{
    if (m->abi_version != FA_MODULE_ABI_VERSION || m->signature == NULL
        || strcmp(m->signature, FA_MODULE_SIGNATURE) != 0)
    {
        return fa_conf_error(cf, "module \"%s\" is not binary compatible: its "
                             "signature is \"%s\", this facteur's is \"%s\"; rebuild "
                             "the module against this facteur's headers", path,
                             m->signature ? m->signature : "(none)", FA_MODULE_SIGNATURE);
    }
    if (fa_module_find(cf->cycle, m->name)) {
        return fa_conf_error(cf, "module \"%s\" is already loaded", m->name);
    }
    if (m->index == FA_MODULE_UNSET_INDEX) {
        if (fa_modules_next_index >= FA_MAX_MODULES) {
            return fa_conf_error(cf, "too many modules (at most %d)", FA_MAX_MODULES);
        }
        m->index = fa_modules_next_index++;
    }
    return FA_CONF_OK;
}

fa_int_t
fa_module_load(fa_conf_t *cf, const char *path)
{
    void          *handle, **h;
    fa_module_t  **entry, **slot;

    handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        fa_conf_error(cf, "load_module \"%s\" failed: %s", path, dlerror());
        return FA_ERROR;
    }
    h = fa_array_push(&cf->cycle->dl_handles);
    if (h == NULL) {
        dlclose(handle);
        return FA_ERROR;
    }
    *h = handle;                   /* closed with the cycle, whatever happens next */

    entry = dlsym(handle, "fa_module");
    if (entry == NULL || *entry == NULL) {
        fa_conf_error(cf, "module \"%s\" has no \"fa_module\" symbol; was it built "
                      "with --add-dynamic-module?", path);
        return FA_ERROR;
    }
    if (fa_module_check(cf, path, *entry) != FA_CONF_OK) {
        return FA_ERROR;
    }
    slot = fa_array_push(&cf->cycle->modules);
    if (slot == NULL) {
        return FA_ERROR;
    }
    *slot = *entry;
    return FA_OK;
}

fa_int_t
fa_modules_init_conf(fa_conf_t *cf)
{
    fa_module_t  **m = cf->cycle->modules.elts;

    for (fa_uint_t i = 0; i < cf->cycle->modules.nelts; i++) {
        if (m[i]->init_conf && m[i]->init_conf(cf) != FA_OK) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

fa_int_t
fa_modules_init_master(fa_cycle_t *cycle)
{
    fa_module_t  **m = cycle->modules.elts;

    for (fa_uint_t i = 0; i < cycle->modules.nelts; i++) {
        if (m[i]->init_master && m[i]->init_master(cycle) != FA_OK) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

fa_int_t
fa_modules_init_worker(fa_cycle_t *cycle)
{
    fa_module_t  **m = cycle->modules.elts;

    for (fa_uint_t i = 0; i < cycle->modules.nelts; i++) {
        if (m[i]->init_worker && m[i]->init_worker(cycle) != FA_OK) {
            fa_log_error(FA_LOG_EMERG, cycle->log, 0, "module \"%s\" failed to start "
                         "in the worker", m[i]->name);
            return FA_ERROR;
        }
    }
    return FA_OK;
}

/* exits run in reverse order: a module stops before those it was built on */
void
fa_modules_exit_worker(fa_cycle_t *cycle)
{
    fa_module_t  **m = cycle->modules.elts;

    for (fa_uint_t i = cycle->modules.nelts; i > 0; i--) {
        if (m[i - 1]->exit_worker) {
            m[i - 1]->exit_worker(cycle);
        }
    }
}

void
fa_modules_exit_master(fa_cycle_t *cycle)
{
    fa_module_t  **m = cycle->modules.elts;

    for (fa_uint_t i = cycle->modules.nelts; i > 0; i--) {
        if (m[i - 1]->exit_master) {
            m[i - 1]->exit_master(cycle);
        }
    }
}
