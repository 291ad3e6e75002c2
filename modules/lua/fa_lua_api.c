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

/* the codes each verdict may carry (0: none, the phase's default) */
static const struct { int lo, hi; }  fa_lua_codes[] = {
    { 0, 0 }, { 200, 299 }, { 500, 599 }, { 400, 499 }, { 200, 299 }, { 400, 599 },
    { 0, 0 }, { 0, 0 }
};

static int
fa_lua_code_ok(int verdict, lua_Number code)
{
    /* in range before the cast: (int) 1e300 is undefined; NaN is in no range */
    return code == 0 || (code >= fa_lua_codes[verdict].lo && code <= fa_lua_codes[verdict].hi
                         && code == (lua_Number) (int) code);
}

static int
fa_lua_make_verdict(lua_State *L, int verdict)
{
    const char  *name = fa_lua_verdicts[verdict];
    lua_Number   code = 0;
    const char  *text = NULL;
    int          i = 1;

    if (lua_type(L, 1) == LUA_TNUMBER) {
        code = lua_tonumber(L, 1);
        if (code == 0 || !fa_lua_code_ok(verdict, code)) {
            return luaL_error(L, "facteur.%s: the code must be %d..%d", name,
                              fa_lua_codes[verdict].lo, fa_lua_codes[verdict].hi);
        }
        i = 2;
    }
    if (!lua_isnoneornil(L, i)) {
        text = luaL_checkstring(L, i);
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "verdict");
    lua_pushinteger(L, (lua_Integer) code);
    lua_setfield(L, -2, "code");
    if (text) {
        lua_pushstring(L, text);
        lua_setfield(L, -2, "text");
    }
    return 1;
}

static int fa_lua_accept(lua_State *L) { return fa_lua_make_verdict(L, FA_SMTP_ACCEPT); }
static int fa_lua_reject(lua_State *L) { return fa_lua_make_verdict(L, FA_SMTP_REJECT); }
static int fa_lua_defer(lua_State *L) { return fa_lua_make_verdict(L, FA_SMTP_DEFER); }
static int fa_lua_discard(lua_State *L) { return fa_lua_make_verdict(L, FA_SMTP_DISCARD); }
static int fa_lua_disconnect(lua_State *L) { return fa_lua_make_verdict(L, FA_SMTP_DISCONNECT); }

static int
fa_lua_quarantine(lua_State *L)
{
    const char  *folder = luaL_optstring(L, 1, "Quarantine");

    lua_settop(L, 0);
    fa_lua_make_verdict(L, FA_LUA_QUARANTINE);
    lua_pushstring(L, folder);
    lua_setfield(L, -2, "folder");
    return 1;
}

/*
 * A result that is no verdict: FA_ERROR, logged with where the hook
 * function is, since the stack of the coroutine that returned is gone.
 */
static void
fa_lua_not_verdict(fa_lua_call_t *call, lua_State *co, const char *why)
{
    char  where[128], at[160] = "";

    call->rc = FA_ERROR;
    if (call->hook && fa_lua_function_where(co, call->hook->ref, where, sizeof(where))) {
        fa_snprintf(at, sizeof(at), " (the function at %s)", where);
    }
    fa_log_error(FA_LOG_ERR, call->log, 0, "lua hook %s failed: %s%s",
                 call->hook ? (char *) call->hook->file.data : "(auth)", why, at);
}

/* t[name] without metamethods: a script's table runs no code here, unprotected */
static int
fa_lua_rawfield(lua_State *co, int t, const char *name)
{
    lua_pushstring(co, name);
    lua_rawget(co, t);
    return lua_type(co, -1);
}

/* the hook's results into the call: a verdict, or FA_ERROR for nonsense */
void
fa_lua_verdict(fa_lua_call_t *call, lua_State *co, int nresults)
{
    int          base = lua_gettop(co) - nresults + 1, found = -1, type;
    const char  *v;
    char         why[256];

    call->verdict = FA_SMTP_CONTINUE;
    for (int i = base + 1; i < base + nresults; i++) {
        if (!lua_isnil(co, i)) {
            fa_snprintf(why, sizeof(why), "the hook returned %d values, not one verdict "
                        "(\"return nil, err\" is a failure too)", nresults);
            fa_lua_not_verdict(call, co, why);
            return;
        }
    }
    if (nresults == 0 || lua_isnil(co, base)) {
        return;
    }
    lua_settop(co, base);
    if (!lua_istable(co, base)) {
        fa_snprintf(why, sizeof(why), "the hook returned a %s, not a verdict "
                    "(facteur.accept(), facteur.reject(), ... or nothing)",
                    luaL_typename(co, base));
        fa_lua_not_verdict(call, co, why);
        return;
    }
    if (!lua_checkstack(co, 8)) {
        fa_lua_not_verdict(call, co, "no memory to read the verdict");
        return;
    }
    if (fa_lua_rawfield(co, base, "verdict") == LUA_TSTRING) {
        v = lua_tostring(co, -1);
        for (size_t i = 0; i < fa_nelems(fa_lua_verdicts); i++) {
            if (strcmp(v, fa_lua_verdicts[i]) == 0 && i != FA_SMTP_WAIT) {
                found = (int) i;
                break;
            }
        }
    }
    if (found < 0) {
        fa_lua_not_verdict(call, co, "the hook returned a table that is not a verdict "
                           "(make them with facteur.accept(), facteur.reject(), ...)");
        return;
    }
    call->verdict = found;
    type = fa_lua_rawfield(co, base, "code");
    if ((type != LUA_TNIL && type != LUA_TNUMBER)
        || (type == LUA_TNUMBER && !fa_lua_code_ok(found, lua_tonumber(co, -1))))
    {
        fa_snprintf(why, sizeof(why), "the code of a %s verdict must be %d..%d",
                    fa_lua_verdicts[found], fa_lua_codes[found].lo, fa_lua_codes[found].hi);
        fa_lua_not_verdict(call, co, why);
        return;
    }
    call->code = (fa_uint_t) lua_tointeger(co, -1);
    type = fa_lua_rawfield(co, base, "text");
    if (type != LUA_TNIL && type != LUA_TSTRING && type != LUA_TNUMBER) {
        fa_lua_not_verdict(call, co, "the text of a verdict is a string");
        return;
    }
    fa_snprintf(call->text, sizeof(call->text), "%s", type == LUA_TNIL ? "" : lua_tostring(co, -1));
    type = fa_lua_rawfield(co, base, "folder");
    if (type != LUA_TNIL && type != LUA_TSTRING) {
        fa_lua_not_verdict(call, co, "the folder of a verdict is a string");
        return;
    }
    fa_snprintf(call->folder, sizeof(call->folder), "%s",
                type == LUA_TNIL ? "" : lua_tostring(co, -1));
}


/* ---- log, counters, time ---- */

static int
fa_lua_log(lua_State *L)
{
    static const char *const  names[] = { "debug", "info", "notice", "warn", "err",
                                            "warning", "error", NULL };
    static const fa_uint_t    levels[] = { FA_LOG_DEBUG, FA_LOG_INFO, FA_LOG_NOTICE,
                                           FA_LOG_WARN, FA_LOG_ERR, FA_LOG_WARN, FA_LOG_ERR };
    fa_lua_call_t  *call = fa_lua_current(L);
    int             lv = lua_gettop(L) >= 2 ? luaL_checkoption(L, 1, NULL, names) : 2;
    size_t          len;
    const char     *msg = luaL_checklstring(L, lua_gettop(L) >= 2 ? 2 : 1, &len);
    /* a top level at the first load runs before there is a cycle: stderr */
    fa_log_t       *log = call ? call->log : fa_cycle ? fa_cycle->log : &fa_log_stderr;
    char            text[2048];

    /* one line per call: a message cannot forge another log line */
    fa_log_error(levels[lv], log, 0, "lua: %s", fa_log_printable(msg, len, text, sizeof(text)));
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

    if (*name == '\0') {
        return luaL_error(L, "facteur.counter: a name is [a-z0-9_]+, not empty");
    }
    if (n < 0) {
        return luaL_error(L, "facteur.counter: a counter only goes up");
    }
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
    fa_msec_t       ms;

    if (call == NULL) {
        return luaL_error(L, "facteur.sleep: only inside a hook");
    }
    /* compared as a number first: NaN and 1e300 have no fa_msec_t */
    if (!(sec >= 0 && sec * 1000 <= (lua_Number) conf->io_timeout)) {
        return luaL_error(L, "facteur.sleep: 0 to %f seconds (lua_io_timeout)",
                          (lua_Number) conf->io_timeout / 1000);
    }
    if (L != call->co) {
        return luaL_error(L, "facteur.sleep: only in the hook's own coroutine, not in one "
                          "the script made");
    }
    ms = (fa_msec_t) (sec * 1000);
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
