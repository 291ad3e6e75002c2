/*
 * One call of a hook: a coroutine of the worker's state, started with the
 * session's objects, and resumed from the event loop each time an I/O
 * function (facteur.sleep, facteur.dns.*) yielded, until it returns.
 *
 * Isolation.  The count hook runs every FA_LUA_STEP instructions: past
 * lua_hook_timeout instructions (time spent in C functions charged too)
 * it raises an error, and from then on at every instruction, so that a
 * pcall cannot swallow it; past lua_memory_limit the allocator refuses.
 * One thing no hook sees: a single C function that runs long without
 * calling back into Lua (string.find with a pattern that backtracks
 * without end, ".-.-.-x" on a long subject) holds the worker until it
 * returns; facteur.regex has a match limit for that.
 *
 * An error, a budget exceeded or a nonsense result ends the call with rc
 * FA_ERROR: the caller turns it into a temporary failure for that
 * transaction and the log says which script and line; nothing is ever
 * accepted because a script failed.  The JIT is off (fa_lua_module.c):
 * LuaJIT does not run hooks inside compiled traces, and a budget that a
 * loop can escape is no budget.
 *
 * Only one coroutine runs at a time in a worker, so "the call now running"
 * is one variable; an I/O function finds its call there, arms its event
 * and yields.  A session that ends while its hook waits cancels the call:
 * its timer and its DNS query go, and the coroutine is dropped.
 */

#include "fa_lua_int.h"

#define FA_LUA_STEP  1000
/*
 * Work done in C (string.rep, table.concat, a pattern) runs no
 * instruction, yet a loop of it can hold the worker as long as a loop of
 * instructions: the time between two counts is charged too, at this rate
 * (10 instructions a microsecond, slower than the interpreter), when it is
 * more than the instructions themselves.  lua_hook_timeout 10000000 thus
 * also means "at most about a second".
 */
#define FA_LUA_NS_PER_STEP  100

static fa_lua_call_t  *fa_lua_running;
static fa_uint_t       fa_lua_budget = 10000000;     /* lua_hook_timeout */
static size_t          fa_lua_memory = 64 << 20;     /* lua_memory_limit */
static fa_uint_t       fa_lua_load_used;             /* a script's top level */
static unsigned        fa_lua_loading;
static uint64_t        fa_lua_clock;                 /* the last count, ns */

void
fa_lua_set_limits(fa_int_t budget, size_t memory)
{
    fa_lua_budget = (fa_uint_t) budget;
    fa_lua_memory = memory;
}

fa_lua_call_t *
fa_lua_current(lua_State *L)
{
    (void) L;
    return fa_lua_running;
}

static uint64_t
fa_lua_clock_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000 + (uint64_t) ts.tv_nsec;
}

/* "lua/x.lua:12": the innermost Lua function of co's stack, from level up */
int
fa_lua_where(lua_State *co, int level, char *buf, size_t size)
{
    lua_Debug  ar;

    for (; lua_getstack(co, level, &ar); level++) {
        if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) {
            fa_snprintf(buf, size, "%s:%d", ar.short_src, ar.currentline);
            return 1;
        }
    }
    buf[0] = '\0';
    return 0;
}

/*
 * "lua/x.lua:10": where the function of the registry's ref is defined,
 * for a failure no frame of the stack locates (the tail calls of
 * "return facteur.reject(250)" replaced them all).
 */
int
fa_lua_function_where(lua_State *co, int ref, char *buf, size_t size)
{
    lua_Debug  ar;

    buf[0] = '\0';
    if (ref == LUA_NOREF || ref == LUA_REFNIL || !lua_checkstack(co, 1)) {
        return 0;
    }
    lua_rawgeti(co, LUA_REGISTRYINDEX, ref);
    if (!lua_isfunction(co, -1)) {
        lua_pop(co, 1);
        return 0;
    }
    if (lua_getinfo(co, ">S", &ar) && ar.linedefined > 0) {
        fa_snprintf(buf, size, "%s:%d", ar.short_src, ar.linedefined);
        return 1;
    }
    return 0;
}

/*
 * Every FA_LUA_STEP instructions: the budget, and where the script is
 * (a memory error says no line of its own; the log gives this one).
 * Past the budget the hook runs at every instruction, each raising the
 * error again: a script that catches it with pcall cannot go on.  Lua
 * that runs outside a call and outside a load (a finalizer, during the
 * engine's own allocations) is not counted: an error there would be
 * unprotected.
 */
static void
fa_lua_count_hook(lua_State *L, lua_Debug *ar)
{
    fa_uint_t  *used;
    uint64_t    now, spent;

    if (fa_lua_running) {
        used = &fa_lua_running->used;
    } else if (fa_lua_loading) {
        used = &fa_lua_load_used;
    } else {
        return;
    }
    now = fa_lua_clock_ns();
    spent = (now - fa_lua_clock) / FA_LUA_NS_PER_STEP;
    fa_lua_clock = now;
    *used += spent > FA_LUA_STEP ? (fa_uint_t) fa_min(spent, (uint64_t) fa_lua_budget + 1)
                                 : FA_LUA_STEP;
    if (fa_lua_running && lua_getinfo(L, "Sl", ar) && ar->currentline > 0) {
        fa_lua_running->line = ar->currentline;
    }
    if (*used > fa_lua_budget) {
        *used = fa_lua_budget + 1;
        lua_getinfo(L, "Sl", ar);
        lua_sethook(L, fa_lua_count_hook, LUA_MASKCOUNT, 1);
        /* not luaL_error: in a hook, its "where" is the caller's line */
        lua_pushfstring(L, "%s:%d: time budget exceeded (lua_hook_timeout %d instructions)",
                        ar->short_src, ar->currentline, (int) fa_lua_budget);
        lua_error(L);
    }
}

/*
 * The states' allocator: past lua_memory_limit an allocation fails, which
 * Lua turns into a "not enough memory" error of the call that asked, even
 * inside one instruction (string.rep("x", 1e10)).  The garbage of a
 * failed call is collected like any other.
 *
 * The engine's own allocations outside a call (a coroutine, the session
 * objects) are not protected against errors: one refused there would be a
 * panic.  So they get headroom above the limit, an eighth of it plus a
 * megabyte, which the few hundred bytes a call needs never exhaust.
 */
static size_t  fa_lua_allocated;

static size_t
fa_lua_alloc_limit(void)
{
    return fa_lua_running ? fa_lua_memory : fa_lua_memory + fa_lua_memory / 8 + (1 << 20);
}

void *
fa_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    size_t  old = ptr ? osize : 0;
    void   *p;

    (void) ud;
    if (nsize == 0) {
        free(ptr);
        fa_lua_allocated -= old;
        return NULL;
    }
    if (nsize > old && fa_lua_allocated - old + nsize > fa_lua_alloc_limit()) {
        return NULL;
    }
    if ((p = realloc(ptr, nsize)) != NULL) {
        fa_lua_allocated = fa_lua_allocated - old + nsize;
    }
    return p;
}

size_t
fa_lua_memory_used(void)
{
    return fa_lua_allocated;
}

/* a script's top level runs once per state: under the same budget as a call */
void
fa_lua_load_begin(lua_State *L)
{
    fa_lua_load_used = 0;
    fa_lua_loading = 1;
    fa_lua_clock = fa_lua_clock_ns();
    lua_sethook(L, fa_lua_count_hook, LUA_MASKCOUNT, FA_LUA_STEP);
}

void
fa_lua_load_end(lua_State *L)
{
    fa_lua_loading = 0;
    lua_sethook(L, NULL, 0, 0);
}

void
fa_lua_call_free(fa_lua_call_t *call)
{
    lua_State  *L = fa_lua_state();

    if (call == NULL) {
        return;
    }
    if (call->timer.timer_set) {
        fa_event_del_timer(&call->timer);
    }
    if (call->io) {
        fa_lua_dns_cancel(call);
    }
    if (L && call->co_ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, call->co_ref);
        if (call->rc == FA_ERROR && fa_lua_allocated > fa_lua_memory / 2) {
            /*
             * What a runaway call left is garbage now that its coroutine
             * (whose stack held it) is: not the next call's problem.
             * LuaJIT, unlike Lua 5.4, collects nothing when an
             * allocation fails.
             */
            lua_gc(L, LUA_GCCOLLECT, 0);
        }
    }
    free(call);
}

fa_lua_call_t *
fa_lua_call_new(const fa_lua_hook_t *hook, int fn_ref, fa_log_t *log, fa_lua_done_pt done,
    void *data)
{
    static uint64_t  serial;
    lua_State       *L = fa_lua_state();
    fa_lua_call_t   *call;

    if (L == NULL || (call = fa_calloc(sizeof(*call), log)) == NULL) {
        return NULL;
    }
    if (fa_lua_allocated > fa_lua_memory) {
        lua_gc(L, LUA_GCCOLLECT, 0);         /* what a failed call left */
    }
    call->serial = ++serial;
    call->co = lua_newthread(L);
    call->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    call->hook = hook;
    call->log = log;
    call->done = done;
    call->data = data;
    call->timer.data = call;
    call->timer.log = log;
    lua_sethook(call->co, fa_lua_count_hook, LUA_MASKCOUNT, FA_LUA_STEP);
    lua_rawgeti(call->co, LUA_REGISTRYINDEX, fn_ref);
    return call;
}

/* does the message start with Lua's "chunk:line:" (a path may hold ':') */
int
fa_lua_has_position(const char *msg)
{
    for (const char *p = strchr(msg, ':'); p && p - msg < 256; p = strchr(p + 1, ':')) {
        const char *d = p + 1;
        while (*d >= '0' && *d <= '9') {
            d++;
        }
        if (d > p + 1 && *d == ':') {
            return 1;
        }
    }
    return 0;
}

/*
 * Where the script failed: "lua/x.lua:12: attempt to index a nil value".
 * The coroutine's stack is not unwound by the error, so its innermost Lua
 * function says where, for the errors whose message does not: error({}),
 * a memory error, error("x", 2) from a tail call.
 */
static void
fa_lua_failed(fa_lua_call_t *call, lua_State *co)
{
    const char  *msg = lua_tostring(co, -1);
    size_t       len = 0;
    int          nomem = msg && strstr(msg, "not enough memory");
    char         where[128], text[1024], at[160] = "", other[96];

    call->rc = FA_ERROR;
    if (msg == NULL) {
        /* nothing pushed: the stack of a failed coroutine may be full */
        fa_snprintf(other, sizeof(other), "an error object that is a %s, not a message",
                    luaL_typename(co, -1));
        msg = other;
        len = strlen(other);
    } else {
        msg = lua_tolstring(co, -1, &len);
    }
    if (fa_lua_has_position(msg) && !nomem) {
        /* Lua said where */
    } else if (fa_lua_where(co, 0, where, sizeof(where))) {
        fa_snprintf(at, sizeof(at), " (at %s)", where);
    } else if (nomem && call->line) {
        fa_snprintf(at, sizeof(at), " (last seen at line %u)", (unsigned) call->line);
    } else if (call->hook && fa_lua_function_where(co, call->hook->ref, where, sizeof(where))) {
        fa_snprintf(at, sizeof(at), " (in the function at %s)", where);
    }
    fa_log_error(FA_LOG_ERR, call->log, 0, "lua hook %s failed: %s%s%s",
                 call->hook ? (char *) call->hook->file.data : "(auth)",
                 fa_log_printable(msg, len, text, sizeof(text)),
                 nomem ? " (lua_memory_limit)" : "", at);
    lua_settop(co, 0);
}

/* resume the coroutine with nargs on its stack: FA_OK ended, FA_AGAIN waits */
static fa_int_t
fa_lua_run(fa_lua_call_t *call, int nargs)
{
    lua_State  *co = call->co;
    int         status, nres;

    call->running = 1;
    call->waiting = 0;
    fa_lua_running = call;
    fa_lua_clock = fa_lua_clock_ns();        /* the time it waited is not its own */
#if LUA_VERSION_NUM >= 504
    status = lua_resume(co, NULL, nargs, &nres);
#else
    status = lua_resume(co, nargs);
    nres = lua_gettop(co);
#endif
    fa_lua_running = NULL;
    call->running = 0;
    if (call->used > fa_lua_budget) {
        /* the budget error made the hook run at every instruction (LuaJIT: for all) */
        lua_sethook(co, fa_lua_count_hook, LUA_MASKCOUNT, FA_LUA_STEP);
    }
    if (status == LUA_YIELD) {
        if (!call->waiting) {
            /* coroutine.yield() from the script: nothing will resume it */
            lua_pushstring(co, "a hook may not yield by itself (use facteur.sleep)");
            fa_lua_failed(call, co);
            return FA_OK;
        }
        return FA_AGAIN;
    }
    if (status != FA_LUA_OK) {
        fa_lua_failed(call, co);
        return FA_OK;
    }
    call->rc = FA_OK;
    fa_lua_verdict(call, co, nres);
    lua_settop(co, 0);
    return FA_OK;
}

fa_int_t
fa_lua_call_start(fa_lua_call_t *call, int nargs)
{
    return fa_lua_run(call, nargs);
}

/* an I/O function's event: its results are on call->co */
void
fa_lua_call_resume(fa_lua_call_t *call, int nresults)
{
    if (call->cancelled) {
        return;
    }
    if (fa_lua_run(call, nresults) == FA_OK) {
        call->done(call);
    }
}

void
fa_lua_call_cancel(fa_lua_call_t *call)
{
    if (call) {
        call->cancelled = 1;
        fa_lua_call_free(call);
    }
}

/* for facteur.* functions that wait: return fa_lua_yield(L, call) */
int
fa_lua_yield(lua_State *L, fa_lua_call_t *call)
{
    if (L != call->co) {
        /*
         * A coroutine the script made: the yield would go back to the
         * script's coroutine.resume, and the event's resume to the wrong
         * place.  What the function armed goes.
         */
        if (call->timer.timer_set) {
            fa_event_del_timer(&call->timer);
        }
        if (call->io) {
            fa_lua_dns_cancel(call);
        }
        return luaL_error(L, "facteur.sleep and facteur.dns wait only in the hook's own "
                          "coroutine, not in one the script made");
    }
    call->waiting = 1;
    return lua_yield(L, 0);
}
