/*
 * The Lua module: its directives, the scripts checked when the
 * configuration loads, and one Lua state per worker (docs/lua.md).
 *
 *   smtp   { lua_hook rcpt lua/examples/greylist.lua; }   # connect helo auth
 *                                                        # mail rcpt data_headers
 *                                                        # data_end route
 *   lmtp   { lua_hook data_end FILE; }
 *   imap   { lua_hook login FILE; }                      # login logout
 *   pop3   { lua_hook logout FILE; }
 *   domain example.org { lua_hook rcpt FILE; }           # that domain's mail
 *   lua_auth            FILE;          # custom authentication, all protocols
 *   lua_package_path    "lua/?.lua;lua/?/init.lua";
 *   lua_hook_timeout    10000000;      # instructions per hook call
 *   lua_memory_limit    64m;           # the worker's Lua heap, all hooks
 *   lua_io_timeout      5s;            # a DNS lookup, the longest sleep
 *   lua_kv_path         var/lua-kv;    # facteur.kv, shared by the workers
 *   lua_dns_server      127.0.0.1:53;  # default: /etc/resolv.conf
 *
 * A script is checked when the configuration loads (at start, at
 * "facteur -t" and at every reload): it must compile and its top level
 * must return a function.  A script that does not is a configuration
 * error naming the directive's file:line and the script's, so a reload
 * with a broken script keeps the running configuration and its scripts.
 * The workers of a reloaded configuration load the scripts afresh.
 */

#include "fa_lua_int.h"
#include "fa_smtp.h"
#if FA_LUA_LUAJIT
#include <luajit.h>
#endif

#define FA_LUA_HOOK_SCOPES  "smtp lmtp imap pop3 domain"

static void *fa_lua_create_conf(fa_conf_t *cf);
static char *fa_lua_merge_conf(fa_conf_t *cf, void *parent, void *child);
static fa_int_t fa_lua_init_conf(fa_conf_t *cf);
static fa_int_t fa_lua_init_worker(fa_cycle_t *cycle);
static void fa_lua_exit_worker(fa_cycle_t *cycle);
static char *fa_lua_hook_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static char *fa_lua_auth_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf);

static const fa_conf_bounds_t  fa_lua_budget_bounds = { 10000, 2000000000 };
static const fa_conf_bounds_t  fa_lua_memory_bounds = { 1024 * 1024, (int64_t) 1 << 40 };
static const fa_conf_bounds_t  fa_lua_io_bounds = { 10, 600000 };

static const fa_command_t  fa_lua_commands[] = {
    { "lua_hook", FA_LUA_HOOK_SCOPES, FA_CONF_TAKE2 | FA_CONF_MULTI, fa_lua_hook_set, 0, NULL },
    { "lua_auth", "main", FA_CONF_TAKE1, fa_lua_auth_set, 0, NULL },
    { "lua_package_path", "main", FA_CONF_TAKE1, fa_conf_set_str,
      offsetof(fa_lua_conf_t, package_path), NULL },
    { "lua_hook_timeout", "main", FA_CONF_TAKE1, fa_conf_set_num,
      offsetof(fa_lua_conf_t, budget), &fa_lua_budget_bounds },
    { "lua_memory_limit", "main", FA_CONF_TAKE1, fa_conf_set_size,
      offsetof(fa_lua_conf_t, memory), &fa_lua_memory_bounds },
    { "lua_io_timeout", "main", FA_CONF_TAKE1, fa_conf_set_msec,
      offsetof(fa_lua_conf_t, io_timeout), &fa_lua_io_bounds },
    { "lua_kv_path", "main", FA_CONF_TAKE1, fa_conf_set_path,
      offsetof(fa_lua_conf_t, kv_path), NULL },
    { "lua_dns_server", "main", FA_CONF_TAKE1, fa_lua_dns_server_set,
      offsetof(fa_lua_conf_t, dns_server), NULL },
    fa_null_command
};

fa_module_t  fa_lua_module = {
    FA_MODULE_V1, "lua", FA_MODULE_HOOK, fa_lua_commands,
    fa_lua_create_conf, fa_lua_merge_conf, fa_lua_init_conf,
    NULL, fa_lua_init_worker, fa_lua_exit_worker, NULL, FA_MODULE_SPARE
};

static lua_State  *fa_lua_worker_state;

lua_State *
fa_lua_state(void)
{
    return fa_lua_worker_state;
}

fa_lua_conf_t *
fa_lua_main_conf(void)
{
    return fa_cycle && fa_cycle->root ? fa_scope_conf(fa_cycle->root, fa_lua_module) : NULL;
}


/* ---- configuration ---- */

static void *
fa_lua_create_conf(fa_conf_t *cf)
{
    fa_lua_conf_t  *conf = fa_pcalloc(cf->pool, sizeof(fa_lua_conf_t));

    if (conf) {
        conf->budget = FA_CONF_UNSET;
        conf->memory = FA_CONF_UNSET_SIZE;
        conf->io_timeout = FA_CONF_UNSET_MSEC;
        conf->auth.ref = LUA_NOREF;
    }
    return conf;
}

/* "lua/?.lua;x/?.lua": each relative entry under the prefix */
static fa_int_t
fa_lua_full_package_path(fa_conf_t *cf, fa_str_t *path)
{
    size_t    size = 0;
    u_char   *out, *p, *end, *semi;
    fa_str_t  entry;
    char     *full;

    for (p = path->data, end = p + path->len; p < end; p = semi + 1) {
        semi = memchr(p, ';', end - p);
        semi = semi ? semi : end;
        size += (semi - p) + strlen(cf->cycle->prefix) + 1;
    }
    if ((out = fa_pnalloc(cf->pool, size + 1)) == NULL) {
        return FA_ERROR;
    }
    size = 0;
    for (p = path->data; p < end; p = semi + 1) {
        semi = memchr(p, ';', end - p);
        semi = semi ? semi : end;
        entry.data = p;
        entry.len = semi - p;
        if (entry.len == 0) {
            continue;
        }
        if ((full = fa_conf_full_path(cf, &entry)) == NULL) {
            return FA_ERROR;
        }
        size += fa_snprintf((char *) out + size, strlen(full) + 2, "%s%s",
                            size ? ";" : "", full);
    }
    out[size] = '\0';
    path->data = out;
    path->len = size;
    return FA_OK;
}

static char *
fa_lua_merge_conf(fa_conf_t *cf, void *parent, void *child)
{
    fa_lua_conf_t  *prev = parent, *conf = child;
    fa_str_t        kv = fa_string("var/lua-kv");
    fa_str_t        pkg = fa_string("lua/?.lua;lua/?/init.lua");

    if (cf->scope && cf->scope->parent) {
        *conf = *prev;                  /* hooks live in main's; nothing else is scoped */
        return FA_CONF_OK;
    }
    fa_conf_merge_value(conf->budget, prev->budget, 10000000);
    fa_conf_merge_size(conf->memory, prev->memory, 64 * 1024 * 1024);
    fa_conf_merge_msec(conf->io_timeout, prev->io_timeout, 5000);
    if (conf->kv_path.data == NULL) {
        conf->kv_path.data = (u_char *) fa_conf_full_path(cf, &kv);
        if (conf->kv_path.data == NULL) {
            return FA_CONF_ERROR;
        }
        conf->kv_path.len = strlen((char *) conf->kv_path.data);
    }
    if (conf->package_path.data == NULL) {
        conf->package_path = pkg;
    }
    if (fa_lua_full_package_path(cf, &conf->package_path) != FA_OK) {
        return FA_CONF_ERROR;
    }
    if (conf->dns_server.data == NULL) {
        fa_str_set(&conf->dns_server, "");
    }
    return FA_CONF_OK;
}

static const char *const  fa_lua_smtp_phases[] = {
    "connect", "helo", "auth", "mail", "rcpt", "data_headers", "data_end", "route", NULL
};
static const char *const  fa_lua_mailbox_phases[] = { "login", "logout", NULL };

static fa_int_t
fa_lua_phase_index(const char *const *names, const fa_str_t *name)
{
    for (fa_int_t i = 0; names[i]; i++) {
        if (name->len == strlen(names[i]) && memcmp(name->data, names[i], name->len) == 0) {
            return i;
        }
    }
    return -1;
}

/* lua_hook PHASE FILE; in smtp, lmtp, imap, pop3 or domain NAME */
static char *
fa_lua_hook_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_lua_conf_t  *main = fa_conf_get(cf, cf->cycle->root, &fa_lua_module);
    const char     *kind = cf->scope->kind;
    fa_lua_hook_t  *h;
    fa_int_t        smtp = fa_lua_phase_index(fa_lua_smtp_phases, &cf->args[1]);
    fa_int_t        mbox = fa_lua_phase_index(fa_lua_mailbox_phases, &cf->args[1]);
    int             is_smtp = strcmp(kind, "smtp") == 0 || strcmp(kind, "lmtp") == 0;
    int             is_domain = strcmp(kind, "domain") == 0;

    (void) cmd;
    (void) conf;
    if (main == NULL) {
        return FA_CONF_ERROR;
    }
    if ((is_smtp || is_domain) && smtp < 0 && (is_smtp || mbox < 0)) {
        return fa_conf_error(cf, "unknown phase \"%s\" (%s: connect, helo, auth, mail, rcpt, "
                             "data_headers, data_end, route%s)", (char *) cf->args[1].data,
                             kind, is_domain ? ", login, logout" : "");
    }
    if (!is_smtp && !is_domain && mbox < 0) {
        return fa_conf_error(cf, "unknown phase \"%s\" (%s: login, logout; custom "
                             "authentication is lua_auth)", (char *) cf->args[1].data, kind);
    }
    if (main->hooks == NULL
        && (main->hooks = fa_array_create(cf->pool, 8, sizeof(fa_lua_hook_t))) == NULL)
    {
        return FA_CONF_ERROR;
    }
    if ((h = fa_array_push(main->hooks)) == NULL) {
        return FA_CONF_ERROR;
    }
    memset(h, 0, sizeof(*h));
    if (smtp >= 0 && !(is_domain && mbox >= 0)) {
        h->proto = strcmp(kind, "lmtp") == 0 ? FA_LUA_LMTP
                   : is_domain ? FA_LUA_ANY_SMTP : FA_LUA_SMTP;
        h->phase = (fa_uint_t) smtp;
    } else {
        h->proto = strcmp(kind, "imap") == 0 ? FA_LUA_IMAP
                   : strcmp(kind, "pop3") == 0 ? FA_LUA_POP3 : FA_LUA_MAILBOX;
        h->phase = (fa_uint_t) mbox;
    }
    h->file.data = (u_char *) fa_conf_full_path(cf, &cf->args[2]);
    if (h->file.data == NULL) {
        return FA_CONF_ERROR;
    }
    h->file.len = strlen((char *) h->file.data);
    h->domain = is_domain ? cf->scope->name : (fa_str_t) fa_null_string;
    h->conf_file = cf->file;
    h->conf_line = cf->line;
    h->ref = LUA_NOREF;
    return FA_CONF_OK;
}

/* lua_auth FILE; */
static char *
fa_lua_auth_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_lua_conf_t  *lc = conf;

    (void) cmd;
    lc->auth.file.data = (u_char *) fa_conf_full_path(cf, &cf->args[1]);
    if (lc->auth.file.data == NULL) {
        return FA_CONF_ERROR;
    }
    lc->auth.file.len = strlen((char *) lc->auth.file.data);
    lc->auth.conf_file = cf->file;
    lc->auth.conf_line = cf->line;
    lc->auth.ref = LUA_NOREF;
    lc->has_auth = 1;
    return FA_CONF_OK;
}


/* ---- states ---- */

static int
fa_lua_set_package_path(lua_State *L, const fa_str_t *path)
{
    lua_getglobal(L, "package");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return -1;
    }
    lua_pushlstring(L, (char *) path->data, path->len);
    lua_setfield(L, -2, "path");
    /* require("facteur") gives the API table */
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, fa_lua_open_facteur);
    lua_setfield(L, -2, "facteur");
    lua_pop(L, 2);
    return 0;
}

#if FA_LUA_LUAJIT
/* package[table][name] = nil */
static void
fa_lua_unset(lua_State *L, const char *table, const char *name)
{
    lua_getglobal(L, "package");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, table);
        if (lua_istable(L, -1)) {
            lua_pushnil(L);
            lua_setfield(L, -2, name);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}
#endif

static int
fa_lua_removed(lua_State *L)
{
    return luaL_error(L, "%s", lua_tostring(L, lua_upvalueindex(1)));
}

/* lib.name becomes a function that says why it is not there */
static void
fa_lua_remove(lua_State *L, const char *lib, const char *name, const char *why)
{
    lua_getglobal(L, lib);
    if (lua_istable(L, -1)) {
        lua_pushfstring(L, "%s.%s is not available to scripts: %s", lib, name, why);
        lua_pushcclosure(L, fa_lua_removed, 1);
        lua_setfield(L, -2, name);
    }
    lua_pop(L, 1);
}

/* a state with the standard libraries and the facteur table; NULL: no memory */
static lua_State *
fa_lua_new_state(const fa_lua_conf_t *conf)
{
    lua_State  *L = lua_newstate(fa_lua_alloc, NULL);

    if (L == NULL) {
        return NULL;
    }
    luaL_openlibs(L);
#if FA_LUA_LUAJIT
    /*
     * Hooks do not run inside traces: the budget needs the interpreter.
     * After luaL_openlibs, whose jit library turns the compiler on; and
     * without that library, so no script turns it on again.  Nor ffi,
     * which calls any C function (luaJIT_setmode among them) and runs C
     * no budget sees.
     */
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_pushnil(L);
    lua_setglobal(L, "jit");
    fa_lua_unset(L, "loaded", "jit");
    fa_lua_unset(L, "preload", "ffi");
    fa_lua_unset(L, "preload", "jit.util");
    fa_lua_unset(L, "preload", "jit.profile");
#endif
    /*
     * The budget's count hook is the only hook: debug.sethook() would
     * take it away (for every coroutine, under LuaJIT).  os.exit() would
     * end the worker and every session in it.
     */
    fa_lua_remove(L, "debug", "sethook", "the instruction budget needs the only hook");
    fa_lua_remove(L, "os", "exit", "it would end the worker and every session in it");
    fa_lua_set_package_path(L, &conf->package_path);
    lua_pushcfunction(L, fa_lua_open_facteur);
    lua_call(L, 0, 1);
    lua_pop(L, 1);
    return L;
}

/*
 * Load FILE into L: compile it, run its top level under the budget, keep
 * the function it returns in the registry.  FA_OK and *ref, or FA_ERROR
 * with the reason in err ("lua/x.lua:3: '=' expected near 'y'").  The top
 * level runs in a coroutine so that, when it fails, its stack is still
 * there to say where (error({}), a memory error).
 */
static fa_int_t
fa_lua_load_file(lua_State *L, const fa_str_t *file, int *ref, char *err, size_t size)
{
    lua_State   *co;
    const char  *msg;
    char         where[128], text[768];
    size_t       len;
    int          rc;

    fa_lua_load_begin(L);                /* before the thread: it inherits the hook */
    co = lua_newthread(L);
    rc = luaL_loadfile(co, (char *) file->data);
    if (rc == FA_LUA_OK) {
#if LUA_VERSION_NUM >= 504
        int  nres;
        rc = lua_resume(co, NULL, 0, &nres);
#else
        rc = lua_resume(co, 0);
#endif
        if (rc == LUA_YIELD) {
            lua_pushstring(co, "the top level of a script may not yield");
        }
    }
    fa_lua_load_end(L);
    if (rc != FA_LUA_OK) {
        if ((msg = lua_tolstring(co, -1, &len)) == NULL) {
            fa_snprintf(where, sizeof(where), "an error object that is a %s, not a message",
                        luaL_typename(co, -1));
            msg = where;
            len = strlen(where);
        }
        fa_log_printable(msg, len, text, sizeof(text));
        if (!fa_lua_has_position(text) && fa_lua_where(co, 0, where, sizeof(where))) {
            fa_snprintf(err, size, "%s (at %s)", text, where);
        } else {
            fa_snprintf(err, size, "%s", text);
        }
        lua_pop(L, 1);
        return FA_ERROR;
    }
    lua_settop(co, 1);
    if (!lua_isfunction(co, 1)) {
        fa_snprintf(err, size, "%s: the script returns a %s, not the hook function "
                    "(end it with \"return function(...) ... end\")",
                    (char *) file->data, luaL_typename(co, 1));
        lua_pop(L, 1);
        return FA_ERROR;
    }
    lua_xmove(co, L, 1);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);                       /* the thread */
    return FA_OK;
}

static fa_int_t
fa_lua_check_hook(fa_conf_t *cf, lua_State *L, fa_lua_hook_t *h)
{
    char  err[1024];
    int   ref;

    if (fa_lua_load_file(L, &h->file, &ref, err, sizeof(err)) == FA_OK) {
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        return FA_OK;
    }
    cf->file = h->conf_file;
    cf->line = h->conf_line;
    fa_conf_error(cf, "the Lua script does not load: %s", err);
    return FA_ERROR;
}

/* every script compiles and returns a function, in a state thrown away */
/*
 * The global hooks of a phase run before a domain's, whatever the order of
 * the blocks in the files (domains.d/ is often included first): a stable
 * partition, each group keeping its configuration order.
 */
static fa_int_t
fa_lua_globals_first(fa_conf_t *cf, fa_array_t *hooks)
{
    fa_lua_hook_t  *h = hooks->elts, *sorted;
    fa_uint_t       n = 0;

    if ((sorted = fa_palloc(cf->pool, hooks->nelts * sizeof(*h))) == NULL) {
        return FA_ERROR;
    }
    for (int domain = 0; domain < 2; domain++) {
        for (fa_uint_t i = 0; i < hooks->nelts; i++) {
            if ((h[i].domain.len != 0) == domain) {
                sorted[n++] = h[i];
            }
        }
    }
    memcpy(h, sorted, n * sizeof(*h));
    return FA_OK;
}

static fa_int_t
fa_lua_init_conf(fa_conf_t *cf)
{
    fa_lua_conf_t  *conf = fa_scope_conf(cf->cycle->root, fa_lua_module);
    fa_lua_hook_t  *h = conf->hooks ? conf->hooks->elts : NULL;
    lua_State      *L;
    fa_int_t        rc = FA_OK;

    if (h == NULL && !conf->has_auth) {
        return FA_OK;
    }
    if (h && fa_lua_globals_first(cf, conf->hooks) != FA_OK) {
        return FA_ERROR;
    }
    fa_lua_set_limits(conf->budget, conf->memory);
    if ((L = fa_lua_new_state(conf)) == NULL) {
        fa_conf_error(cf, "lua: out of memory");
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; h && i < conf->hooks->nelts && rc == FA_OK; i++) {
        rc = fa_lua_check_hook(cf, L, &h[i]);
    }
    if (rc == FA_OK && conf->has_auth) {
        rc = fa_lua_check_hook(cf, L, &conf->auth);
    }
    lua_close(L);
    if (rc == FA_OK && fa_lua_dns_check(cf, &conf->dns_server) != FA_OK) {
        rc = FA_ERROR;
    }
    return rc == FA_OK ? fa_lua_smtp_register(cf, conf) : rc;
}

static fa_int_t
fa_lua_worker_load(fa_cycle_t *cycle, fa_lua_hook_t *h)
{
    char  err[1024];

    if (fa_lua_load_file(fa_lua_worker_state, &h->file, &h->ref, err, sizeof(err)) != FA_OK) {
        /* it loaded when the configuration did: it changed since */
        fa_log_error(FA_LOG_ERR, cycle->log, 0, "lua: %s (declared at %s:%lu): every call "
                     "of this hook defers", err, h->conf_file, (unsigned long) h->conf_line);
        h->ref = LUA_NOREF;
        return FA_ERROR;
    }
    return FA_OK;
}

static fa_int_t
fa_lua_init_worker(fa_cycle_t *cycle)
{
    fa_lua_conf_t  *conf = fa_scope_conf(cycle->root, fa_lua_module);
    fa_lua_hook_t  *h = conf->hooks ? conf->hooks->elts : NULL;

    if (h == NULL && !conf->has_auth) {
        return FA_OK;                   /* no hooks: no state, no store, no resolver */
    }
    fa_lua_set_limits(conf->budget, conf->memory);
    if ((fa_lua_worker_state = fa_lua_new_state(conf)) == NULL) {
        fa_log_error(FA_LOG_EMERG, cycle->log, 0, "lua: cannot create a Lua state");
        return FA_ERROR;
    }
    if (fa_lua_kv_init(cycle, &conf->kv_path) != FA_OK
        || fa_lua_dns_init(cycle, &conf->dns_server, conf->io_timeout) != FA_OK)
    {
        /* the functions say so when called; the hooks that need no I/O still run */
        fa_log_error(FA_LOG_ERR, cycle->log, 0, "lua: facteur.kv or facteur.dns is not "
                     "available in this worker");
    }
    for (fa_uint_t i = 0; h && i < conf->hooks->nelts; i++) {
        (void) fa_lua_worker_load(cycle, &h[i]);
    }
    if (conf->has_auth) {
        (void) fa_lua_worker_load(cycle, &conf->auth);
    }
    fa_lua_auth_start(conf);
    return FA_OK;
}

static void
fa_lua_exit_worker(fa_cycle_t *cycle)
{
    (void) cycle;
    if (fa_lua_worker_state) {
        fa_lua_dns_done();
        fa_lua_kv_done();
        lua_close(fa_lua_worker_state);
        fa_lua_worker_state = NULL;
    }
}
