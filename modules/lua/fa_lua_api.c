/*
 * The facteur table (docs/lua.md): verdicts, log, counters, sleep, time;
 * the regex, kv, dns and session parts are opened by their own files.
 *
 * Verdicts are small tables a hook returns:
 *
 *   return facteur.reject(550, "5.7.1 go away")   -- or facteur.reject("5.7.1 ...")
 *   return facteur.defer("4.7.1 try later")
 *   return facteur.accept()          return facteur.discard()
 *   return facteur.quarantine("Quarantine")      return facteur.disconnect("...")
 *
 * Returning nothing goes on with the next hook.  Anything else is a
 * mistake of the script: a temporary failure and a log line.
 */

#include "fa_lua_int.h"
#include "fa_smtp.h"

static const char *const  fa_lua_verdicts[] = {
    "continue", "accept", "reject", "defer", "discard", "disconnect", "wait", "quarantine"
};

static int
fa_lua_make_verdict(lua_State *L, const char *verdict, int default_code)
{
    int          code = default_code;
    const char  *text = NULL;
    int          i = 1;

    if (lua_type(L, 1) == LUA_TNUMBER) {
        code = (int) lua_tointeger(L, 1);
        if (code < 200 || code > 599) {
            return luaL_error(L, "facteur.%s: the code must be 200..599", verdict);
        }
        i = 2;
    }
    if (!lua_isnoneornil(L, i)) {
        text = luaL_checkstring(L, i);
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, verdict);
    lua_setfield(L, -2, "verdict");
    lua_pushinteger(L, code);
    lua_setfield(L, -2, "code");
    if (text) {
        lua_pushstring(L, text);
        lua_setfield(L, -2, "text");
    }
    return 1;
}

static int fa_lua_accept(lua_State *L) { return fa_lua_make_verdict(L, "accept", 0); }
static int fa_lua_reject(lua_State *L) { return fa_lua_make_verdict(L, "reject", 0); }
static int fa_lua_defer(lua_State *L) { return fa_lua_make_verdict(L, "defer", 0); }
static int fa_lua_discard(lua_State *L) { return fa_lua_make_verdict(L, "discard", 0); }
static int fa_lua_disconnect(lua_State *L) { return fa_lua_make_verdict(L, "disconnect", 0); }

static int
fa_lua_quarantine(lua_State *L)
{
    const char  *folder = luaL_optstring(L, 1, "Quarantine");

    lua_settop(L, 0);
    fa_lua_make_verdict(L, "quarantine", 0);
    lua_pushstring(L, folder);
    lua_setfield(L, -2, "folder");
    return 1;
}

/* the hook's results into the call: a verdict, or FA_ERROR for nonsense */
void
fa_lua_verdict(fa_lua_call_t *call, lua_State *co, int nresults)
{
    const char  *v;

    call->verdict = FA_SMTP_CONTINUE;
    if (nresults == 0 || lua_isnil(co, 1)) {
        return;
    }
    if (!lua_istable(co, 1)) {
        lua_pushfstring(co, "the hook returned a %s, not a verdict (facteur.accept(), "
                        "facteur.reject(), ... or nothing)", luaL_typename(co, 1));
        call->rc = FA_ERROR;
        fa_log_error(FA_LOG_ERR, call->log, 0, "lua hook %s failed: %s",
                     call->hook ? (char *) call->hook->file.data : "(auth)",
                     lua_tostring(co, -1));
        return;
    }
    lua_getfield(co, 1, "verdict");
    v = lua_tostring(co, -1);
    int found = -1;
    for (size_t i = 0; v && i < fa_nelems(fa_lua_verdicts); i++) {
        if (strcmp(v, fa_lua_verdicts[i]) == 0 && i != FA_SMTP_WAIT) {
            found = (int) i;
            break;
        }
    }
    call->verdict = found;
    if (found < 0) {
        call->rc = FA_ERROR;
        fa_log_error(FA_LOG_ERR, call->log, 0, "lua hook %s returned a table that is not a "
                     "verdict", call->hook ? (char *) call->hook->file.data : "(auth)");
        return;
    }
    lua_getfield(co, 1, "code");
    call->code = (fa_uint_t) lua_tointeger(co, -1);
    lua_getfield(co, 1, "text");
    fa_snprintf(call->text, sizeof(call->text), "%s", lua_tostring(co, -1) ? lua_tostring(co, -1) : "");
    lua_getfield(co, 1, "folder");
    fa_snprintf(call->folder, sizeof(call->folder), "%s",
                lua_tostring(co, -1) ? lua_tostring(co, -1) : "");
}


/* ---- log, counters, time ---- */

static int
fa_lua_log(lua_State *L)
{
    static const char *const  names[] = { "debug", "info", "notice", "warn", "err", NULL };
    static const fa_uint_t    levels[] = { FA_LOG_DEBUG, FA_LOG_INFO, FA_LOG_NOTICE,
                                           FA_LOG_WARN, FA_LOG_ERR };
    fa_lua_call_t  *call = fa_lua_current(L);
    int             lv = lua_gettop(L) >= 2 ? luaL_checkoption(L, 1, NULL, names) : 2;
    const char     *msg = luaL_checkstring(L, lua_gettop(L) >= 2 ? 2 : 1);
    fa_log_t       *log = call ? call->log : fa_cycle->log;

    fa_log_error(levels[lv], log, 0, "lua: %s", msg);
    return 0;
}

/* facteur.counter("greylisted"[, n]): facteur_lua_greylisted_total */
static int
fa_lua_counter(lua_State *L)
{
    const char  *name = luaL_checkstring(L, 1);
    lua_Integer  n = luaL_optinteger(L, 2, 1);
    char         full[FA_STATS_NAME_MAX];
    fa_stat_t   *st;

    for (const char *p = name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            return luaL_error(L, "facteur.counter: a name is [a-z0-9_]+");
        }
    }
    if (strlen(name) + sizeof("facteur_lua__total") > sizeof(full)) {
        return luaL_error(L, "facteur.counter: the name is too long");
    }
    fa_snprintf(full, sizeof(full), "facteur_lua_%s_total", name);
    st = fa_stats_get(full, "", FA_STATS_COUNTER, "Counted by a Lua hook");
    if (st) {
        fa_stat_add(st, (int64_t) n);
    }
    return 0;
}

static int
fa_lua_now(lua_State *L)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number) ts.tv_sec + (lua_Number) ts.tv_nsec / 1e9);
    return 1;
}

static void
fa_lua_sleep_done(fa_event_t *ev)
{
    fa_lua_call_t  *call = ev->data;

    ev->timedout = 0;
    fa_lua_call_resume(call, 0);
}

/* facteur.sleep(seconds): the coroutine waits, the worker does not */
static int
fa_lua_sleep(lua_State *L)
{
    lua_Number      sec = luaL_checknumber(L, 1);
    fa_lua_call_t  *call = fa_lua_current(L);
    fa_lua_conf_t  *conf = fa_lua_main_conf();
    fa_msec_t       ms = (fa_msec_t) (sec * 1000);

    if (call == NULL) {
        return luaL_error(L, "facteur.sleep: only inside a hook");
    }
    if (ms < 0 || ms > conf->io_timeout) {
        return luaL_error(L, "facteur.sleep: 0 to %d seconds (lua_io_timeout)",
                          (int) (conf->io_timeout / 1000));
    }
    call->timer.handler = fa_lua_sleep_done;
    fa_event_add_timer(&call->timer, ms);
    return fa_lua_yield(L, call);
}

static const luaL_Reg  fa_lua_functions[] = {
    { "accept", fa_lua_accept }, { "reject", fa_lua_reject }, { "defer", fa_lua_defer },
    { "discard", fa_lua_discard }, { "disconnect", fa_lua_disconnect },
    { "quarantine", fa_lua_quarantine },
    { "log", fa_lua_log }, { "counter", fa_lua_counter }, { "now", fa_lua_now },
    { "sleep", fa_lua_sleep },
    { NULL, NULL }
};

/* the facteur table, as a global and as require("facteur") */
int
fa_lua_open_facteur(lua_State *L)
{
    luaL_newlib(L, fa_lua_functions);
    fa_lua_regex_open(L);
    fa_lua_kv_open(L);
    fa_lua_dns_open(L);
    fa_lua_session_open(L);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "facteur");
    return 1;
}
