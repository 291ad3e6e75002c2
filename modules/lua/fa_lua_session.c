/*
 * The objects an SMTP hook gets: the session and the transaction
 * (docs/lua.md lists every field and method with an example).
 *
 *   return function(session, txn)
 *       if session.ip == "192.0.2.1" then return facteur.reject("5.7.1 no") end
 *       txn:add_header("X-Seen", session.helo)
 *   end
 *
 * An object is valid only during the call it was given to: each holds the
 * call's serial number and every access checks it against the call that
 * runs, so a script that keeps one in a global gets an error later, never
 * another session's data or freed memory.
 *
 * Recipient selectors: a method that takes an optional recipient address
 * applies, without one, to the recipient being added in the rcpt phase,
 * and to every recipient in the phases after it.
 */

#include "fa_lua_int.h"
#include "fa_storage.h"

#define FA_LUA_SESSION_MT  "facteur.session"
#define FA_LUA_TXN_MT      "facteur.txn"
#define FA_LUA_BODY_MAX    (16 * 1024 * 1024)    /* txn:body(max): the cap of caps */
#define FA_LUA_BODY_DEF    (1024 * 1024)
#define FA_LUA_HEADER_MAX  998                   /* RFC 5322 line length */

typedef struct {
    fa_lua_smtp_t  *st;
    uint64_t        serial;
} fa_lua_obj_t;

static fa_lua_obj_t *
fa_lua_obj_check(lua_State *L, int idx, const char *mt)
{
    fa_lua_obj_t   *o = luaL_checkudata(L, idx, mt);
    fa_lua_call_t  *call = fa_lua_current(L);

    if (call == NULL || call->serial != o->serial) {
        luaL_error(L, "a %s object is valid only during the hook call that received it",
                   mt + sizeof("facteur.") - 1);
    }
    return o;
}

static fa_smtp_txn_t *
fa_lua_txn_check(lua_State *L)
{
    fa_lua_obj_t  *o = fa_lua_obj_check(L, 1, FA_LUA_TXN_MT);

    if (o->st->s->txn == NULL) {
        luaL_error(L, "the transaction has ended");
    }
    return o->st->s->txn;
}

static void
fa_lua_push_str(lua_State *L, const fa_str_t *s)
{
    lua_pushlstring(L, s->data ? (char *) s->data : "", s->len);
}

static fa_str_t
fa_lua_check_str(lua_State *L, int idx)
{
    fa_str_t  s;

    s.data = (u_char *) luaL_checklstring(L, idx, &s.len);
    return s;
}


/* ---- session ---- */

static const char *
fa_lua_role_name(fa_smtp_role_t role)
{
    return role == FA_SMTP_ROLE_LMTP ? "lmtp" : role == FA_SMTP_ROLE_SUBMISSION
                                                ? "submission" : "mx";
}

static int
fa_lua_local_port(fa_connection_t *c)
{
    struct sockaddr_storage  ss;
    socklen_t                len = sizeof(ss);

    if (c->unix_socket || getsockname(c->fd, (struct sockaddr *) &ss, &len) != 0) {
        return 0;
    }
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                          : ((struct sockaddr_in *) &ss)->sin_port);
}

static int
fa_lua_peer_port(fa_connection_t *c)
{
    struct sockaddr_storage  *ss = &c->sockaddr;

    if (c->unix_socket) {
        return 0;
    }
    return ntohs(ss->ss_family == AF_INET6 ? ((struct sockaddr_in6 *) ss)->sin6_port
                                           : ((struct sockaddr_in *) ss)->sin_port);
}

static void
fa_lua_push_tls(lua_State *L, fa_connection_t *c)
{
    const char  *sni;

    if (c->ssl == NULL) {
        lua_pushnil(L);
        return;
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, fa_ssl_protocol(c));
    lua_setfield(L, -2, "version");
    lua_pushstring(L, fa_ssl_cipher(c));
    lua_setfield(L, -2, "cipher");
    if ((sni = fa_ssl_servername(c)) != NULL) {
        lua_pushstring(L, sni);
        lua_setfield(L, -2, "servername");
    }
}

/* session.vars: a table kept for the whole session, to pass things between phases */
static void
fa_lua_push_vars(lua_State *L, fa_lua_smtp_t *st)
{
    if (st->vars_ref == LUA_NOREF) {
        lua_newtable(L);
        lua_pushvalue(L, -1);
        st->vars_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        return;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, st->vars_ref);
}

static int
fa_lua_session_index(lua_State *L)
{
    fa_lua_obj_t       *o = fa_lua_obj_check(L, 1, FA_LUA_SESSION_MT);
    fa_smtp_session_t  *s = o->st->s;
    const char         *k = luaL_checkstring(L, 2);

    if (strcmp(k, "ip") == 0) {
        lua_pushstring(L, s->c->addr_text);
    } else if (strcmp(k, "port") == 0) {
        lua_pushinteger(L, fa_lua_peer_port(s->c));
    } else if (strcmp(k, "local_port") == 0) {
        lua_pushinteger(L, fa_lua_local_port(s->c));
    } else if (strcmp(k, "id") == 0) {
        lua_pushinteger(L, (lua_Integer) s->c->id);
    } else if (strcmp(k, "helo") == 0) {
        fa_lua_push_str(L, &s->helo);
    } else if (strcmp(k, "user") == 0) {
        if (s->user.len) {
            fa_lua_push_str(L, &s->user);
        } else {
            lua_pushnil(L);
        }
    } else if (strcmp(k, "role") == 0) {
        lua_pushstring(L, fa_lua_role_name(s->role));
    } else if (strcmp(k, "tls") == 0) {
        fa_lua_push_tls(L, s->c);
    } else if (strcmp(k, "esmtp") == 0) {
        lua_pushboolean(L, s->esmtp);
    } else if (strcmp(k, "relay_client") == 0) {
        lua_pushboolean(L, s->relay_client);
    } else if (strcmp(k, "vars") == 0) {
        fa_lua_push_vars(L, o->st);
    } else {
        lua_pushnil(L);
    }
    return 1;
}

static int
fa_lua_session_newindex(lua_State *L)
{
    return luaL_error(L, "session fields are read-only (keep your own values in "
                      "session.vars)");
}


/* ---- transaction: recipients ---- */

static const char *
fa_lua_route_name(fa_smtp_route_t r)
{
    return r == FA_SMTP_ROUTE_LOCAL ? "local" : r == FA_SMTP_ROUTE_QUEUE ? "queue" : "discard";
}

static void
fa_lua_push_rcpt(lua_State *L, const fa_smtp_rcpt_t *r)
{
    lua_createtable(L, 0, 5);
    fa_lua_push_str(L, &r->addr.address);
    lua_setfield(L, -2, "address");
    fa_lua_push_str(L, &r->addr.domain);
    lua_setfield(L, -2, "domain");
    lua_pushstring(L, fa_lua_route_name(r->route));
    lua_setfield(L, -2, "route");
    if (r->user.len) {
        fa_lua_push_str(L, &r->user);
        lua_setfield(L, -2, "user");
    }
    if (r->mailbox.len) {
        fa_lua_push_str(L, &r->mailbox);
        lua_setfield(L, -2, "mailbox");
    }
    if (r->reason.len) {
        fa_lua_push_str(L, &r->reason);
        lua_setfield(L, -2, "reason");
    }
}

static int
fa_lua_txn_recipients(lua_State *L)
{
    fa_smtp_txn_t   *t = fa_lua_txn_check(L);
    fa_smtp_rcpt_t  *r = t->rcpts.elts;
    int              n = 0;

    lua_createtable(L, (int) t->rcpts.nelts, 0);
    for (fa_uint_t i = 0; i < t->rcpts.nelts; i++) {
        if (!r[i].removed) {
            fa_lua_push_rcpt(L, &r[i]);
            lua_rawseti(L, -2, ++n);
        }
    }
    return 1;
}

/*
 * The recipients a method applies to: the one named at idx (any with that
 * address), or without a name the rcpt phase's own, else all of them.
 * Calls fn on each; returns how many.
 */
typedef int (*fa_lua_rcpt_pt)(lua_State *L, fa_lua_smtp_t *st, fa_smtp_rcpt_t *r, void *arg);

static int
fa_lua_each_rcpt(lua_State *L, fa_lua_smtp_t *st, int idx, fa_lua_rcpt_pt fn, void *arg)
{
    fa_smtp_txn_t   *t = st->s->txn;
    fa_smtp_rcpt_t  *r = t->rcpts.elts;
    fa_str_t         want = fa_null_string;
    int              n = 0;

    if (!lua_isnoneornil(L, idx)) {
        want = fa_lua_check_str(L, idx);
    } else if (st->phase == FA_SMTP_PHASE_RCPT && st->s->rcpt) {
        return fn(L, st, st->s->rcpt, arg) == 0;
    }
    if (st->phase == FA_SMTP_PHASE_RCPT && st->s->rcpt && want.len
        && fa_str_casecmp(&st->s->rcpt->addr.address, (char *) want.data) == 0
        && st->s->rcpt->addr.address.len == want.len)
    {
        n += fn(L, st, st->s->rcpt, arg) == 0;
    }
    for (fa_uint_t i = 0; i < t->rcpts.nelts; i++) {
        if (r[i].removed) {
            continue;                       /* a hook took it out: gone for the others */
        }
        if (want.len == 0 || (r[i].addr.address.len == want.len
                              && fa_str_casecmp(&r[i].addr.address, (char *) want.data) == 0))
        {
            n += fn(L, st, &r[i], arg) == 0;
        }
    }
    return n;
}

static int
fa_lua_txn_add_recipient(lua_State *L)
{
    fa_lua_obj_t  *o = fa_lua_obj_check(L, 1, FA_LUA_TXN_MT);
    fa_str_t       addr = fa_lua_check_str(L, 2);
    const char    *err = NULL;

    fa_lua_txn_check(L);
    if (fa_smtp_rcpt_add(o->st->s, &addr, &err) == NULL) {
        lua_pushnil(L);
        lua_pushstring(L, err ? err : "cannot be added");
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int
fa_lua_txn_remove_recipient(lua_State *L)
{
    fa_smtp_txn_t  *t = fa_lua_txn_check(L);
    fa_str_t        addr = fa_lua_check_str(L, 2);
    fa_smtp_rcpt_t *r;
    int             n = 0;

    for (fa_uint_t i = t->rcpts.nelts; i-- > 0; ) {
        r = (fa_smtp_rcpt_t *) t->rcpts.elts + i;
        if (!r->removed && r->addr.address.len == addr.len
            && fa_str_casecmp(&r->addr.address, (char *) addr.data) == 0)
        {
            fa_smtp_rcpt_remove(t, i);
            n++;
        }
    }
    lua_pushinteger(L, n);
    return 1;
}

typedef struct {
    fa_str_t     to;
    const char  *err;
} fa_lua_rewrite_t;

static int
fa_lua_rewrite_one(lua_State *L, fa_lua_smtp_t *st, fa_smtp_rcpt_t *r, void *arg)
{
    fa_lua_rewrite_t  *rw = arg;
    const char        *err = NULL;

    (void) L;
    if (fa_smtp_rcpt_rewrite(st->s, r, &rw->to, &err) != FA_OK) {
        rw->err = err ? err : "cannot be rewritten";
        return -1;
    }
    return 0;                /* err may hold a stale default: only a failure sets it */
}

/* txn:rewrite_recipient(old, new) and txn:redirect(new [, old]) */
static int
fa_lua_rewrite(lua_State *L, int old_idx, int new_idx)
{
    fa_lua_obj_t      *o = fa_lua_obj_check(L, 1, FA_LUA_TXN_MT);
    fa_lua_rewrite_t   rw = { fa_lua_check_str(L, new_idx), NULL };
    int                n;

    fa_lua_txn_check(L);
    n = fa_lua_each_rcpt(L, o->st, old_idx, fa_lua_rewrite_one, &rw);
    if (rw.err) {
        lua_pushnil(L);
        lua_pushstring(L, rw.err);
        return 2;
    }
    lua_pushinteger(L, n);
    return 1;
}

static int
fa_lua_txn_rewrite_recipient(lua_State *L)
{
    luaL_checkstring(L, 2);
    return fa_lua_rewrite(L, 2, 3);
}

static int
fa_lua_txn_redirect(lua_State *L)
{
    return fa_lua_rewrite(L, 3, 2);
}

static int
fa_lua_deliver_one(lua_State *L, fa_lua_smtp_t *st, fa_smtp_rcpt_t *r, void *arg)
{
    (void) L;
    (void) st;
    if (r->route != FA_SMTP_ROUTE_LOCAL) {
        return -1;
    }
    r->mailbox = *(fa_str_t *) arg;
    return 0;
}

/* txn:deliver(folder [, rcpt]): local copies filed in that folder */
static int
fa_lua_txn_deliver(lua_State *L)
{
    fa_lua_obj_t   *o = fa_lua_obj_check(L, 1, FA_LUA_TXN_MT);
    fa_smtp_txn_t  *t = fa_lua_txn_check(L);
    fa_str_t        folder = fa_lua_check_str(L, 2), copy;

    if (fa_storage_mailbox_name_valid(&folder) != FA_OK) {
        return luaL_error(L, "txn:deliver: \"%s\" is not a valid folder name", folder.data);
    }
    if ((copy.data = fa_pnalloc(t->pool, folder.len)) == NULL) {
        return luaL_error(L, "txn:deliver: out of memory");
    }
    memcpy(copy.data, folder.data, folder.len);
    copy.len = folder.len;
    lua_pushinteger(L, fa_lua_each_rcpt(L, o->st, 3, fa_lua_deliver_one, &copy));
    return 1;
}

static int
fa_lua_relay_one(lua_State *L, fa_lua_smtp_t *st, fa_smtp_rcpt_t *r, void *arg)
{
    (void) L;
    (void) st;
    r->route = FA_SMTP_ROUTE_QUEUE;
    r->user.len = 0;
    r->reason = *(fa_str_t *) arg;
    return 0;
}

/* txn:relay(smarthost [, rcpt]): queued for that smarthost (smarthost NAME HOST;) */
static int
fa_lua_txn_relay(lua_State *L)
{
    fa_lua_obj_t    *o = fa_lua_obj_check(L, 1, FA_LUA_TXN_MT);
    fa_smtp_txn_t   *t = fa_lua_txn_check(L);
    fa_str_t         name = fa_lua_check_str(L, 2), reason;
    const fa_str_t  *host = fa_smtp_smarthost(&name);

    if (host == NULL) {
        return luaL_error(L, "txn:relay: no \"smarthost %s ...;\" in the configuration",
                          name.data);
    }
    reason.len = name.len + host->len + sizeof("relay via  ()");
    if ((reason.data = fa_pnalloc(t->pool, reason.len)) == NULL) {
        return luaL_error(L, "txn:relay: out of memory");
    }
    reason.len = fa_snprintf((char *) reason.data, reason.len, "relay via %s (%.*s)",
                             (char *) name.data, (int) host->len, host->data);
    lua_pushinteger(L, fa_lua_each_rcpt(L, o->st, 3, fa_lua_relay_one, &reason));
    return 1;
}


/* ---- transaction: headers and body ---- */

static void
fa_lua_check_header_name(lua_State *L, const fa_str_t *name)
{
    if (name->len == 0 || name->len > 76) {
        luaL_error(L, "a header name is 1 to 76 characters");
    }
    for (size_t i = 0; i < name->len; i++) {
        if (name->data[i] <= ' ' || name->data[i] >= 0x7f || name->data[i] == ':') {
            luaL_error(L, "a header name is printable ASCII without ':' or spaces");
        }
    }
}

static fa_str_t
fa_lua_check_header_value(lua_State *L, int idx)
{
    fa_str_t  v = fa_lua_check_str(L, idx);

    if (v.len > FA_LUA_HEADER_MAX || memchr(v.data, '\r', v.len) || memchr(v.data, '\n', v.len)
        || memchr(v.data, '\0', v.len))
    {
        luaL_error(L, "a header value is one line of at most %d bytes, without CR, LF or NUL",
                   FA_LUA_HEADER_MAX);
    }
    return v;
}

static fa_smtp_txn_t *
fa_lua_txn_headers_check(lua_State *L)
{
    fa_lua_obj_t  *o = fa_lua_obj_check(L, 1, FA_LUA_TXN_MT);

    if (o->st->phase < FA_SMTP_PHASE_DATA_HEADERS) {
        luaL_error(L, "the headers are there from the data_headers phase on");
    }
    return fa_lua_txn_check(L);
}

/* txn:header(name [, n]): the n-th (1: the first) value, or nil */
static int
fa_lua_txn_header(lua_State *L)
{
    fa_smtp_txn_t     *t = fa_lua_txn_headers_check(L);
    fa_str_t           name = fa_lua_check_str(L, 2);
    lua_Integer        n = luaL_optinteger(L, 3, 1);
    fa_smtp_header_t  *h = n >= 1 ? fa_smtp_header_get(t, &name, (fa_uint_t) n - 1) : NULL;

    if (h == NULL) {
        lua_pushnil(L);
        return 1;
    }
    /* the value after "Name:", its leading blank off */
    fa_str_t v = h->value;
    while (v.len && (v.data[0] == ' ' || v.data[0] == '\t')) {
        v.data++;
        v.len--;
    }
    fa_lua_push_str(L, &v);
    return 1;
}

/* txn:headers(): { {name=, value=}, ... }, added ones first, as they will be written */
static int
fa_lua_txn_headers(lua_State *L)
{
    fa_smtp_txn_t     *t = fa_lua_txn_headers_check(L);
    fa_array_t        *lists[2] = { &t->added, &t->headers };
    fa_smtp_header_t  *h;
    int                n = 0;

    lua_newtable(L);
    for (int l = 0; l < 2; l++) {
        h = lists[l]->elts;
        for (fa_uint_t i = 0; i < lists[l]->nelts; i++) {
            if (h[i].deleted) {
                continue;
            }
            lua_createtable(L, 0, 2);
            fa_lua_push_str(L, &h[i].name);
            lua_setfield(L, -2, "name");
            fa_lua_push_str(L, &h[i].value);
            lua_setfield(L, -2, "value");
            lua_rawseti(L, -2, ++n);
        }
    }
    return 1;
}

static int
fa_lua_txn_add_header(lua_State *L)
{
    fa_smtp_txn_t  *t = fa_lua_txn_headers_check(L);
    fa_str_t        name = fa_lua_check_str(L, 2), value = fa_lua_check_header_value(L, 3);

    fa_lua_check_header_name(L, &name);
    if (fa_smtp_header_add(t, &name, &value) != FA_OK) {
        return luaL_error(L, "txn:add_header: out of memory");
    }
    return 0;
}

static int
fa_lua_txn_remove_header(lua_State *L)
{
    fa_smtp_txn_t  *t = fa_lua_txn_headers_check(L);
    fa_str_t        name = fa_lua_check_str(L, 2);

    lua_pushinteger(L, (lua_Integer) fa_smtp_header_remove(t, &name));
    return 1;
}

static int
fa_lua_txn_replace_header(lua_State *L)
{
    fa_smtp_txn_t  *t = fa_lua_txn_headers_check(L);
    fa_str_t        name = fa_lua_check_str(L, 2), value = fa_lua_check_header_value(L, 3);

    fa_lua_check_header_name(L, &name);
    if (fa_smtp_header_replace(t, &name, &value) != FA_OK) {
        return luaL_error(L, "txn:replace_header: out of memory");
    }
    return 0;
}

static fa_smtp_txn_t *
fa_lua_txn_body_check(lua_State *L)
{
    fa_lua_obj_t  *o = fa_lua_obj_check(L, 1, FA_LUA_TXN_MT);

    if (o->st->phase < FA_SMTP_PHASE_DATA_END) {
        luaL_error(L, "the body is there from the data_end phase on");
    }
    return fa_lua_txn_check(L);
}

/* read [off, off+len) of the body into a Lua string, or nil at the end */
static int
fa_lua_push_body(lua_State *L, fa_smtp_txn_t *t, uint64_t off, size_t len)
{
    luaL_Buffer  b;
    u_char       chunk[16384];
    ssize_t      n;

    if (off >= fa_smtp_body_size(t) || len == 0) {
        lua_pushnil(L);
        return 1;
    }
    luaL_buffinit(L, &b);
    while (len > 0) {
        n = fa_smtp_body_read(t, off, chunk, fa_min(len, sizeof(chunk)));
        if (n < 0) {
            return luaL_error(L, "the body cannot be read (see the error log)");
        }
        if (n == 0) {
            break;
        }
        luaL_addlstring(&b, (char *) chunk, (size_t) n);
        off += (uint64_t) n;
        len -= (size_t) n;
    }
    luaL_pushresult(&b);
    return 1;
}

/* txn:body([max]): the first max bytes (default 1 MB) after the header block */
static int
fa_lua_txn_body(lua_State *L)
{
    fa_smtp_txn_t  *t = fa_lua_txn_body_check(L);
    lua_Integer     max = luaL_optinteger(L, 2, FA_LUA_BODY_DEF);

    if (max < 0 || max > FA_LUA_BODY_MAX) {
        return luaL_error(L, "txn:body: max is 0 to %d bytes", FA_LUA_BODY_MAX);
    }
    if (fa_smtp_body_size(t) == 0 || max == 0) {
        lua_pushliteral(L, "");            /* a string, never nil: "#txn:body(0)" works */
        return 1;
    }
    return fa_lua_push_body(L, t, 0, (size_t) max);
}

/* the iterator of txn:body_chunks(): upvalues are the txn and the offset */
static int
fa_lua_body_next(lua_State *L)
{
    lua_Integer     size, off;
    fa_smtp_txn_t  *t;

    lua_settop(L, 0);
    lua_pushvalue(L, lua_upvalueindex(1));
    t = fa_lua_txn_body_check(L);
    size = lua_tointeger(L, lua_upvalueindex(2));
    off = lua_tointeger(L, lua_upvalueindex(3));
    fa_lua_push_body(L, t, (uint64_t) off, (size_t) size);
    if (!lua_isnil(L, -1)) {
        lua_pushinteger(L, off + (lua_Integer) fa_lua_rawlen(L, -1));
        lua_replace(L, lua_upvalueindex(3));
    }
    return 1;
}

/* for chunk in txn:body_chunks([size]) do ... end: the body, a piece at a time */
static int
fa_lua_txn_body_chunks(lua_State *L)
{
    lua_Integer  size = luaL_optinteger(L, 2, 65536);

    fa_lua_txn_body_check(L);
    if (size < 1 || size > FA_LUA_BODY_MAX) {
        return luaL_error(L, "txn:body_chunks: a chunk is 1 to %d bytes", FA_LUA_BODY_MAX);
    }
    lua_pushvalue(L, 1);
    lua_pushinteger(L, size);
    lua_pushinteger(L, 0);
    lua_pushcclosure(L, fa_lua_body_next, 3);
    return 1;
}

static const luaL_Reg  fa_lua_txn_methods[] = {
    { "recipients", fa_lua_txn_recipients },
    { "add_recipient", fa_lua_txn_add_recipient },
    { "remove_recipient", fa_lua_txn_remove_recipient },
    { "rewrite_recipient", fa_lua_txn_rewrite_recipient },
    { "redirect", fa_lua_txn_redirect },
    { "deliver", fa_lua_txn_deliver },
    { "relay", fa_lua_txn_relay },
    { "header", fa_lua_txn_header },
    { "headers", fa_lua_txn_headers },
    { "add_header", fa_lua_txn_add_header },
    { "remove_header", fa_lua_txn_remove_header },
    { "replace_header", fa_lua_txn_replace_header },
    { "body", fa_lua_txn_body },
    { "body_chunks", fa_lua_txn_body_chunks },
    { NULL, NULL }
};

static int
fa_lua_txn_index(lua_State *L)
{
    fa_lua_obj_t       *o = fa_lua_obj_check(L, 1, FA_LUA_TXN_MT);
    fa_smtp_session_t  *s = o->st->s;
    const char         *k = luaL_checkstring(L, 2);

    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));          /* a method */
    if (!lua_isnil(L, -1)) {
        return 1;
    }
    if (s->txn == NULL) {
        return 1;                                /* nil: the transaction ended */
    }
    if (strcmp(k, "id") == 0) {
        lua_pushstring(L, s->txn->id);
    } else if (strcmp(k, "sender") == 0) {
        fa_lua_push_str(L, &s->txn->from.address);
    } else if (strcmp(k, "size") == 0) {
        lua_pushinteger(L, (lua_Integer) s->txn->size);
    } else if (strcmp(k, "recipient") == 0) {
        if (o->st->phase == FA_SMTP_PHASE_RCPT && s->rcpt) {
            fa_lua_push_rcpt(L, s->rcpt);
        } else {
            lua_pushnil(L);
        }
    } else {
        lua_pushnil(L);
    }
    return 1;
}


/* ---- making them ---- */

static void
fa_lua_push_obj(lua_State *co, fa_lua_smtp_t *st, fa_lua_call_t *call, const char *mt)
{
    fa_lua_obj_t  *o = lua_newuserdata(co, sizeof(*o));

    o->st = st;
    o->serial = call->serial;
    luaL_getmetatable(co, mt);
    lua_setmetatable(co, -2);
}

void
fa_lua_push_session(lua_State *co, fa_lua_smtp_t *st, fa_lua_call_t *call)
{
    fa_lua_push_obj(co, st, call, FA_LUA_SESSION_MT);
}

void
fa_lua_push_txn(lua_State *co, fa_lua_smtp_t *st, fa_lua_call_t *call)
{
    if (st->s->txn == NULL) {
        lua_pushnil(co);
        return;
    }
    fa_lua_push_obj(co, st, call, FA_LUA_TXN_MT);
}

void
fa_lua_session_open(lua_State *L)
{
    luaL_newmetatable(L, FA_LUA_SESSION_MT);
    lua_pushcfunction(L, fa_lua_session_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, fa_lua_session_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pop(L, 1);

    luaL_newmetatable(L, FA_LUA_TXN_MT);
    luaL_newlib(L, fa_lua_txn_methods);
    lua_pushcclosure(L, fa_lua_txn_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, fa_lua_session_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pop(L, 1);
}
