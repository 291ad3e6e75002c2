/*
 * facteur.kv: a key-value store shared by every worker, for greylisting
 * and rate limits: an LMDB environment (lua_kv_path), values with a time
 * to live, and an atomic increment.
 *
 *   facteur.kv.set(key, value [, ttl])     facteur.kv.get(key) -> value or nil
 *   facteur.kv.incr(key [, n [, ttl]]) -> the new number
 *   facteur.kv.del(key)
 *
 * Each call is one LMDB transaction in the loop: reads never wait, writes
 * take the environment's writer lock for microseconds.  The environment is
 * opened MDB_NOSYNC: these are counters and first-seen times, not mail, and
 * a power loss that forgets the last seconds of them harms nobody; in
 * exchange a write costs no fsync.  A record is its expiry (8 bytes, in
 * milliseconds since the epoch, 0: never) then the value; an expired record
 * reads as absent and is overwritten by the next write.  Values are
 * strings (a number is stored as its text, and read back as a string);
 * other types are an error.
 */

#include "fa_lua_int.h"
#include <lmdb.h>

#define FA_LUA_KV_MAP     (256 * 1024 * 1024)
#define FA_LUA_KV_KEY_MAX 480            /* LMDB's default key limit is 511 */
#define FA_LUA_KV_VAL_MAX (64 * 1024)

#define FA_LUA_KV_TTL_MAX (10.0 * 366 * 86400)  /* seconds */

#define FA_LUA_KV_SWEEP_EVERY  64      /* writes between two sweeps */
#define FA_LUA_KV_SWEEP_STEP   128     /* records a sweep looks at */

static MDB_env    *fa_lua_kv_env;
static MDB_dbi     fa_lua_kv_dbi;
static fa_uint_t   fa_lua_kv_writes;
static u_char      fa_lua_kv_sweep_at[FA_LUA_KV_KEY_MAX];   /* where the last one stopped */
static size_t      fa_lua_kv_sweep_len;

fa_int_t
fa_lua_kv_init(fa_cycle_t *cycle, const fa_str_t *path)
{
    MDB_txn  *txn;
    int       rc;

    if (mkdir((char *) path->data, 0750) == -1 && errno != EEXIST) {
        fa_log_error(FA_LOG_ERR, cycle->log, errno, "lua: mkdir(\"%s\") failed",
                     (char *) path->data);
        return FA_ERROR;
    }
    if ((rc = mdb_env_create(&fa_lua_kv_env)) != 0
        || (rc = mdb_env_set_mapsize(fa_lua_kv_env, FA_LUA_KV_MAP)) != 0
        || (rc = mdb_env_open(fa_lua_kv_env, (char *) path->data,
                              MDB_NOSYNC | MDB_NOTLS, 0640)) != 0
        || (rc = mdb_txn_begin(fa_lua_kv_env, NULL, 0, &txn)) != 0)
    {
        fa_log_error(FA_LOG_ERR, cycle->log, 0, "lua: the kv store \"%s\": %s",
                     (char *) path->data, mdb_strerror(rc));
        fa_lua_kv_done();
        return FA_ERROR;
    }
    if ((rc = mdb_dbi_open(txn, NULL, 0, &fa_lua_kv_dbi)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        fa_log_error(FA_LOG_ERR, cycle->log, 0, "lua: the kv store: %s", mdb_strerror(rc));
        fa_lua_kv_done();
        return FA_ERROR;
    }
    return FA_OK;
}

void
fa_lua_kv_done(void)
{
    if (fa_lua_kv_env) {
        mdb_env_close(fa_lua_kv_env);
        fa_lua_kv_env = NULL;
    }
}

static MDB_val
fa_lua_kv_key(lua_State *L)
{
    size_t   len;
    MDB_val  key;

    key.mv_data = (void *) luaL_checklstring(L, 1, &len);
    key.mv_size = len;
    if (len == 0 || len > FA_LUA_KV_KEY_MAX) {
        luaL_error(L, "facteur.kv: a key is 1 to %d bytes", FA_LUA_KV_KEY_MAX);
    }
    if (fa_lua_kv_env == NULL) {
        luaL_error(L, "facteur.kv: the store is not open (see the error log)");
    }
    return key;
}

static uint64_t
fa_lua_kv_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

/* a ttl argument: seconds, 0 or none for ever; the expiry in ms, or an error */
static uint64_t
fa_lua_kv_expiry(lua_State *L, int idx)
{
    lua_Number  ttl = luaL_optnumber(L, idx, 0);

    if (!(ttl >= 0 && ttl <= FA_LUA_KV_TTL_MAX)) {
        luaL_error(L, "facteur.kv: a ttl is 0 (no expiry) to %d seconds",
                   (int) FA_LUA_KV_TTL_MAX);
    }
    return ttl > 0 ? fa_lua_kv_now() + (uint64_t) (ttl * 1000 + 0.5) : 0;
}

/* the live value of a record, or NULL */
static const char *
fa_lua_kv_live(const MDB_val *val, size_t *len)
{
    uint64_t  expiry;

    if (val->mv_size < 8) {
        return NULL;
    }
    memcpy(&expiry, val->mv_data, 8);
    if (expiry && expiry <= fa_lua_kv_now()) {
        return NULL;
    }
    *len = val->mv_size - 8;
    return (const char *) val->mv_data + 8;
}

static int
fa_lua_kv_get(lua_State *L)
{
    MDB_val      key = fa_lua_kv_key(L), val;
    MDB_txn     *txn;
    const char  *v;
    size_t       len;

    if (mdb_txn_begin(fa_lua_kv_env, NULL, MDB_RDONLY, &txn) != 0) {
        return luaL_error(L, "facteur.kv.get: the store cannot be read");
    }
    if (mdb_get(txn, fa_lua_kv_dbi, &key, &val) == 0 && (v = fa_lua_kv_live(&val, &len))) {
        lua_pushlstring(L, v, len);
    } else {
        lua_pushnil(L);
    }
    mdb_txn_abort(txn);
    return 1;
}

/*
 * Expired records are dropped a few at a time by the writers: every
 * FA_LUA_KV_SWEEP_EVERY writes, the next FA_LUA_KV_SWEEP_STEP records after
 * where the last sweep stopped, wrapping around, so the store does not
 * grow with keys nobody reads again.
 */
static void
fa_lua_kv_sweep(MDB_txn *txn)
{
    MDB_cursor  *cur;
    MDB_val      key = { fa_lua_kv_sweep_len, fa_lua_kv_sweep_at }, val;
    size_t       len;
    int          rc;

    if (++fa_lua_kv_writes % FA_LUA_KV_SWEEP_EVERY != 0
        || mdb_cursor_open(txn, fa_lua_kv_dbi, &cur) != 0)
    {
        return;
    }
    rc = mdb_cursor_get(cur, &key, &val, key.mv_size ? MDB_SET_RANGE : MDB_FIRST);
    for (int i = 0; rc == 0 && i < FA_LUA_KV_SWEEP_STEP; i++) {
        fa_lua_kv_sweep_len = fa_min(key.mv_size, sizeof(fa_lua_kv_sweep_at));
        memcpy(fa_lua_kv_sweep_at, key.mv_data, fa_lua_kv_sweep_len);
        if (fa_lua_kv_live(&val, &len) == NULL && mdb_cursor_del(cur, 0) != 0) {
            break;
        }
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    if (rc == MDB_NOTFOUND) {
        fa_lua_kv_sweep_len = 0;              /* the end: start over next time */
    }
    mdb_cursor_close(cur);
}

static int
fa_lua_kv_put(lua_State *L, MDB_txn *txn, MDB_val *key, const char *v, size_t len,
    uint64_t expiry)
{
    u_char   buf[8 + FA_LUA_KV_VAL_MAX];
    MDB_val  val = { 8 + len, buf };

    if (len > FA_LUA_KV_VAL_MAX) {
        mdb_txn_abort(txn);
        return luaL_error(L, "facteur.kv: a value is at most %d bytes", FA_LUA_KV_VAL_MAX);
    }
    memcpy(buf, &expiry, 8);
    memcpy(buf + 8, v, len);
    if (mdb_put(txn, fa_lua_kv_dbi, key, &val, 0) != 0) {
        mdb_txn_abort(txn);
        return luaL_error(L, "facteur.kv: the store cannot be written (full?)");
    }
    fa_lua_kv_sweep(txn);
    if (mdb_txn_commit(txn) != 0) {
        return luaL_error(L, "facteur.kv: the store cannot be written (full?)");
    }
    return 0;
}

static int
fa_lua_kv_set(lua_State *L)
{
    MDB_val      key = fa_lua_kv_key(L);
    size_t       len;
    const char  *v = luaL_checklstring(L, 2, &len);
    uint64_t     expiry = fa_lua_kv_expiry(L, 3);
    MDB_txn     *txn;

    if (mdb_txn_begin(fa_lua_kv_env, NULL, 0, &txn) != 0) {
        return luaL_error(L, "facteur.kv.set: the store cannot be written");
    }
    return fa_lua_kv_put(L, txn, &key, v, len, expiry);
}

/* read, add, write in one write transaction: atomic across the workers */
static int
fa_lua_kv_incr(lua_State *L)
{
    MDB_val      key = fa_lua_kv_key(L), val;
    lua_Integer  n = luaL_optinteger(L, 2, 1);
    uint64_t     expiry = fa_lua_kv_expiry(L, 3);
    lua_Integer  cur = 0;
    MDB_txn     *txn;
    const char  *v;
    size_t       len;
    char         num[32], *end;

    if (mdb_txn_begin(fa_lua_kv_env, NULL, 0, &txn) != 0) {
        return luaL_error(L, "facteur.kv.incr: the store cannot be written");
    }
    if (mdb_get(txn, fa_lua_kv_dbi, &key, &val) == 0 && (v = fa_lua_kv_live(&val, &len))) {
        fa_snprintf(num, sizeof(num), "%.*s", (int) fa_min(len, sizeof(num) - 1), v);
        errno = 0;
        cur = strtoll(num, &end, 10);
        if (len == 0 || len >= sizeof(num) || *end != '\0' || errno != 0) {
            mdb_txn_abort(txn);
            return luaL_error(L, "facteur.kv.incr: the value of \"%s\" is not an integer",
                              lua_tostring(L, 1));
        }
        memcpy(&expiry, val.mv_data, 8);      /* an existing window keeps its end */
    }
    if ((n > 0 && cur > INT64_MAX - n) || (n < 0 && cur < INT64_MIN - n)) {
        mdb_txn_abort(txn);
        return luaL_error(L, "facteur.kv.incr: the value of \"%s\" would overflow",
                          lua_tostring(L, 1));
    }
    cur += n;
    len = fa_snprintf(num, sizeof(num), "%lld", (long long) cur);
    fa_lua_kv_put(L, txn, &key, num, len, expiry);
    lua_pushinteger(L, cur);
    return 1;
}

static int
fa_lua_kv_del(lua_State *L)
{
    MDB_val   key = fa_lua_kv_key(L);
    MDB_txn  *txn;
    int       rc;

    if (mdb_txn_begin(fa_lua_kv_env, NULL, 0, &txn) != 0) {
        return luaL_error(L, "facteur.kv.del: the store cannot be written");
    }
    rc = mdb_del(txn, fa_lua_kv_dbi, &key, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return luaL_error(L, "facteur.kv.del: the store cannot be written");
    }
    if (mdb_txn_commit(txn) != 0) {
        return luaL_error(L, "facteur.kv.del: the store cannot be written");
    }
    return 0;
}

void
fa_lua_kv_open(lua_State *L)
{
    static const luaL_Reg  kv[] = {
        { "get", fa_lua_kv_get }, { "set", fa_lua_kv_set }, { "incr", fa_lua_kv_incr },
        { "del", fa_lua_kv_del }, { NULL, NULL }
    };

    luaL_newlib(L, kv);
    lua_setfield(L, -2, "kv");
}
