/*
 * facteur.regex(pattern [, flags]): PCRE2, compiled once per worker (the
 * same pattern and flags give back the same object, from a cache), JIT
 * compiled when PCRE2 can.  Flags: i caseless, m multiline, s dotall,
 * x extended, u UTF-8.
 *
 *   local spam = facteur.regex([[\bviagra\b]], "i")
 *   if spam:match(subject) then ... end          -- true, or false
 *   local s, e, user = re:find(text [, init])     -- positions and captures, or nil
 *
 * find() gives every group of the pattern, nil for one that took no part;
 * a negative init counts from the end, as string.find's.
 *
 * A subject is matched with a bounded match limit, so a pathological
 * pattern costs an error, not a stalled worker.
 */

#include "fa_lua_int.h"
#include <pcre2.h>

#define FA_LUA_REGEX_MT     "facteur.regex"
#define FA_LUA_REGEX_CACHE  "facteur.regex.cache"
#define FA_LUA_REGEX_MAX    1024            /* patterns a worker keeps */

typedef struct {
    pcre2_code          *code;
    pcre2_match_data    *md;
} fa_lua_regex_t;

static pcre2_match_context  *fa_lua_match_ctx;
static fa_uint_t             fa_lua_regex_count;

static int
fa_lua_regex_gc(lua_State *L)
{
    fa_lua_regex_t  *re = luaL_checkudata(L, 1, FA_LUA_REGEX_MT);

    if (re->code && fa_lua_regex_count > 0) {
        /* the states checked at load are closed in the master, whose count workers inherit */
        fa_lua_regex_count--;
    }
    pcre2_match_data_free(re->md);
    pcre2_code_free(re->code);
    re->md = NULL;
    re->code = NULL;
    return 0;
}

static uint32_t
fa_lua_regex_flags(lua_State *L, const char *flags)
{
    uint32_t  opt = 0;

    for (const char *f = flags; *f; f++) {
        switch (*f) {
        case 'i': opt |= PCRE2_CASELESS; break;
        case 'm': opt |= PCRE2_MULTILINE; break;
        case 's': opt |= PCRE2_DOTALL; break;
        case 'x': opt |= PCRE2_EXTENDED; break;
        case 'u': opt |= PCRE2_UTF | PCRE2_MATCH_INVALID_UTF; break;
        default:
            luaL_error(L, "facteur.regex: unknown flag '%c' (i m s x u)", *f);
        }
    }
    return opt;
}

/* match against s from init: PCRE2's result (>= 0 matched, < 0 not or error) */
static int
fa_lua_regex_exec(lua_State *L, fa_lua_regex_t *re, const char *s, size_t len, size_t init)
{
    int  rc = pcre2_match(re->code, (PCRE2_SPTR) s, len, init, 0, re->md, fa_lua_match_ctx);

    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof(msg));
        return luaL_error(L, "regex: %s", (char *) msg);
    }
    return rc;
}

static int
fa_lua_regex_match(lua_State *L)
{
    fa_lua_regex_t  *re = luaL_checkudata(L, 1, FA_LUA_REGEX_MT);
    size_t           len;
    const char      *s = luaL_checklstring(L, 2, &len);

    lua_pushboolean(L, fa_lua_regex_exec(L, re, s, len, 0) >= 0);
    return 1;
}

static int
fa_lua_regex_find(lua_State *L)
{
    fa_lua_regex_t  *re = luaL_checkudata(L, 1, FA_LUA_REGEX_MT);
    size_t           len;
    const char      *s = luaL_checklstring(L, 2, &len);
    lua_Integer      init = luaL_optinteger(L, 3, 1);
    PCRE2_SIZE      *ov;
    int              rc;

    if (init < 0) {
        init = (lua_Integer) len + init + 1 < 1 ? 1 : (lua_Integer) len + init + 1;  /* as string.find */
    }
    if (init < 1 || (size_t) init > len + 1) {
        lua_pushnil(L);
        return 1;
    }
    rc = fa_lua_regex_exec(L, re, s, len, (size_t) init - 1);
    if (rc < 0) {
        lua_pushnil(L);
        return 1;
    }
    /*
     * Every group of the pattern, an unset one as nil: rc counts only up
     * to the last group set, and "(x)?y" must give its one capture.
     */
    ov = pcre2_get_ovector_pointer(re->md);
    rc = (int) pcre2_get_ovector_count(re->md);
    luaL_checkstack(L, rc + 1, "facteur.regex: too many captures");
    lua_pushinteger(L, (lua_Integer) ov[0] + 1);
    lua_pushinteger(L, (lua_Integer) ov[1]);
    for (int i = 1; i < rc; i++) {
        if (ov[2 * i] == PCRE2_UNSET) {
            lua_pushnil(L);
        } else {
            lua_pushlstring(L, s + ov[2 * i], ov[2 * i + 1] - ov[2 * i]);
        }
    }
    return 1 + rc;
}

static int
fa_lua_regex_new(lua_State *L)
{
    size_t           plen;
    const char      *pattern = luaL_checklstring(L, 1, &plen);
    const char      *flags = luaL_optstring(L, 2, "");
    uint32_t         opt = fa_lua_regex_flags(L, flags);
    fa_lua_regex_t  *re;
    PCRE2_SIZE       off;
    int              err;

    /* the cache: "flags/pattern" -> the compiled object (a pattern may hold a NUL) */
    lua_getfield(L, LUA_REGISTRYINDEX, FA_LUA_REGEX_CACHE);
    lua_pushstring(L, flags);
    lua_pushliteral(L, "/");
    lua_pushlstring(L, pattern, plen);
    lua_concat(L, 3);
    lua_pushvalue(L, -1);
    lua_rawget(L, -3);
    if (!lua_isnil(L, -1)) {
        return 1;
    }
    lua_pop(L, 1);
    if (fa_lua_regex_count >= FA_LUA_REGEX_MAX) {
        return luaL_error(L, "facteur.regex: more than %d patterns: compile them once, at "
                          "the top of the script", FA_LUA_REGEX_MAX);
    }
    re = lua_newuserdata(L, sizeof(*re));
    memset(re, 0, sizeof(*re));
    luaL_getmetatable(L, FA_LUA_REGEX_MT);
    lua_setmetatable(L, -2);
    re->code = pcre2_compile((PCRE2_SPTR) pattern, plen, opt, &err, &off, NULL);
    if (re->code == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof(msg));
        return luaL_error(L, "facteur.regex: %s at offset %d", (char *) msg, (int) off);
    }
    (void) pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);    /* when it can */
    re->md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (re->md == NULL) {
        return luaL_error(L, "facteur.regex: out of memory");
    }
    fa_lua_regex_count++;
    lua_pushvalue(L, -2);            /* the key */
    lua_pushvalue(L, -2);            /* the object */
    lua_rawset(L, -5);
    return 1;
}

void
fa_lua_regex_open(lua_State *L)
{
    static const luaL_Reg  methods[] = {
        { "match", fa_lua_regex_match }, { "find", fa_lua_regex_find }, { NULL, NULL }
    };

    if (fa_lua_match_ctx == NULL) {
        fa_lua_match_ctx = pcre2_match_context_create(NULL);
        if (fa_lua_match_ctx) {
            pcre2_set_match_limit(fa_lua_match_ctx, 1000000);
            pcre2_set_depth_limit(fa_lua_match_ctx, 10000);
        }
    }
    luaL_newmetatable(L, FA_LUA_REGEX_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, fa_lua_regex_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, FA_LUA_REGEX_CACHE);
    lua_pushcfunction(L, fa_lua_regex_new);
    lua_setfield(L, -2, "regex");            /* into the facteur table on the stack */
}
