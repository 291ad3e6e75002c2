/*
 * One call of a hook: a coroutine of the worker's state, started with the
 * session's objects, and resumed from the event loop each time an I/O
 * function (facteur.sleep, facteur.dns.*) yielded, until it returns.
 *
 * Isolation.  The count hook runs every FA_LUA_STEP instructions: past
 * lua_hook_timeout instructions it raises an error; past lua_memory_limit
 * the allocator refuses.  An error, a budget exceeded or a
 * nonsense result ends the call with rc FA_ERROR: the caller turns it into
 * a temporary failure for that transaction and the log says which script
 * and line; nothing is ever accepted because a script failed.  The JIT is
 * off (fa_lua_module.c): LuaJIT does not run hooks inside compiled traces,
 * and a budget that a loop can escape is no budget.
 *
 * Only one coroutine runs at a time in a worker, so "the call now running"
 * is one variable; an I/O function finds its call there, arms its event
 * and yields.  A session that ends while its hook waits cancels the call:
 * its timer and its DNS query go, and the coroutine is dropped.
 */

#include "fa_lua_int.h"

#define FA_LUA_STEP  1000

static fa_lua_call_t  *fa_lua_running;
static fa_uint_t       fa_lua_budget = 10000000;     /* lua_hook_timeout */
static size_t          fa_lua_memory = 64 << 20;     /* lua_memory_limit */
static fa_uint_t       fa_lua_load_used;             /* a script's top level */

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

/*
 * Every FA_LUA_STEP instructions: the budget, and where the script is
 * (a memory error says no line of its own; the log gives this one).
 */
static void
fa_lua_count_hook(lua_State *L, lua_Debug *ar)
{
    fa_uint_t  *used = fa_lua_running ? &fa_lua_running->used : &fa_lua_load_used;

    *used += FA_LUA_STEP;
    if (fa_lua_running && lua_getinfo(L, "Sl", ar) && ar->currentline > 0) {
        fa_lua_running->line = ar->currentline;
    }
    if (*used > fa_lua_budget) {
        lua_getinfo(L, "Sl", ar);
        luaL_error(L, "%s:%d: time budget exceeded (lua_hook_timeout %u instructions)",
                   ar->short_src, ar->currentline, (unsigned) fa_lua_budget);
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
    lua_sethook(L, fa_lua_count_hook, LUA_MASKCOUNT, FA_LUA_STEP);
}

void
fa_lua_load_end(lua_State *L)
{
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

/* where the script failed: "lua/x.lua:12: attempt to index a nil value" */
static void
fa_lua_failed(fa_lua_call_t *call, lua_State *co)
{
    const char  *msg = lua_tostring(co, -1);
    int          nomem = msg && strstr(msg, "not enough memory");
    char         where[32] = "";

    call->rc = FA_ERROR;
    if (nomem && call->line) {
        fa_snprintf(where, sizeof(where), ", last seen at line %u", (unsigned) call->line);
    }
    fa_log_error(FA_LOG_ERR, call->log, 0, "lua hook %s failed: %s%s%s",
                 call->hook ? (char *) call->hook->file.data : "(auth)",
                 msg ? msg : "an error that is not a string",
                 nomem ? " (lua_memory_limit)" : "", where);
    lua_settop(co, 0);
    if (fa_lua_allocated > fa_lua_memory / 2) {
        /* what a runaway call left is garbage now: not the next call's problem */
        lua_gc(fa_lua_state(), LUA_GCCOLLECT, 0);
    }
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
#if LUA_VERSION_NUM >= 504
    status = lua_resume(co, NULL, nargs, &nres);
#else
    status = lua_resume(co, nargs);
    nres = lua_gettop(co);
#endif
    fa_lua_running = NULL;
    call->running = 0;
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
    call->waiting = 1;
    return lua_yield(L, 0);
}
