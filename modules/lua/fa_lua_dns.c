/*
 * facteur.dns: lookups with c-ares that yield the hook's coroutine and
 * resume it from the event loop, so a slow or silent server delays only
 * the session that asked.
 *
 *   local addrs, err = facteur.dns.a("mx.example.org")     -- {"192.0.2.7"}
 *   facteur.dns.aaaa(name)   facteur.dns.mx(name) -> {{host=, priority=}, ...}
 *   facteur.dns.txt(name) -> {"v=spf1 -all"}   facteur.dns.ptr("192.0.2.7") -> {"h.example"}
 *
 * A name with no record of the type gives an empty list; a name that does
 * not exist at all (NXDOMAIN) gives an empty list and "not found", so
 * "if not list" still means "could not tell" and a script that cares can
 * tell the two apart.  A failure gives nil and a reason: "timeout",
 * "server failure" (SERVFAIL), "refused", "connection refused" (nobody
 * listens), "bad response".  No lookup takes longer than lua_io_timeout:
 * c-ares retries within it, and a guard timer on the call ends the wait
 * even if c-ares has not.  A wrong argument (not a string, empty, longer
 * than 253 bytes, a NUL byte, not an IP address for ptr) is an error of
 * the script.
 *
 * c-ares gives us SERVFAIL and REFUSED answers as they are
 * (ARES_FLAG_NOCHECKRESP): without it c-ares 1.18 retries them and then
 * says "connection refused", which sends whoever reads the log to look
 * for a resolver that is not listening.  The price: a SERVFAIL from the
 * first of several resolv.conf servers is not retried on the next one.
 *
 * One channel per worker.  Its sockets are watched by the loop
 * (fa_event_add_fd) as c-ares opens and closes them; one timer drives its
 * retransmissions.  A query whose call went away (the session ended, the
 * guard fired) is left to finish and its answer is dropped.
 */

#include "fa_lua_int.h"
#include <ares.h>
#include <arpa/nameser.h>
#include <netdb.h>

#define FA_LUA_DNS_NAME_MAX  253

typedef struct fa_lua_dns_fd_s  fa_lua_dns_fd_t;
struct fa_lua_dns_fd_s {
    fa_event_t        ev;
    int               fd;
    fa_lua_dns_fd_t  *next;
};

typedef struct {
    fa_lua_call_t    *call;             /* NULL: nobody waits for it any more */
    int               type;
} fa_lua_dns_query_t;

static ares_channel      fa_lua_dns_channel;
static int               fa_lua_dns_ready;
static fa_lua_dns_fd_t  *fa_lua_dns_fds;
static fa_event_t        fa_lua_dns_timer;
static fa_msec_t         fa_lua_dns_timeout;
static fa_log_t         *fa_lua_dns_log;

static void fa_lua_dns_arm(void);

/* the digits of a port, or -1 */
static long
fa_lua_dns_port(const char *text)
{
    char  *end;
    long   port = strtol(text, &end, 10);

    return end == text || *end != '\0' || *text == '-' || *text == '+' ? -1 : port;
}

/* "127.0.0.1:5353", "[::1]:53", "192.0.2.1": what ares_set_servers_ports_csv takes */
fa_int_t
fa_lua_dns_check(fa_conf_t *cf, const fa_str_t *server)
{
    char            host[64], *colon;
    struct in6_addr a6;
    struct in_addr  a4;
    long            port = 53;

    if (server->len == 0) {
        return FA_OK;
    }
    if (server->len >= sizeof(host)) {
        goto bad;
    }
    memcpy(host, server->data, server->len + 1);
    if (host[0] == '[') {
        char *end = strchr(host, ']');
        if (end == NULL) {
            goto bad;
        }
        *end = '\0';
        if (end[1] == ':') {
            port = fa_lua_dns_port(end + 2);
        } else if (end[1] != '\0') {
            goto bad;
        }
        if (inet_pton(AF_INET6, host + 1, &a6) != 1) {
            goto bad;
        }
    } else {
        if ((colon = strchr(host, ':')) != NULL) {
            *colon = '\0';
            port = fa_lua_dns_port(colon + 1);
        }
        if (inet_pton(AF_INET, host, &a4) != 1) {
            goto bad;
        }
    }
    if (port < 1 || port > 65535) {
        goto bad;
    }
    return FA_OK;
bad:
    fa_conf_error(cf, "lua_dns_server \"%.*s\": an address and an optional port, "
                  "as 127.0.0.1:53 or [::1]:53", (int) server->len, server->data);
    return FA_ERROR;
}

/* the directive's setter: a mistake is reported at its own line */
char *
fa_lua_dns_server_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    char  *rv = fa_conf_set_str(cf, cmd, conf);

    if (rv != FA_CONF_OK) {
        return rv;
    }
    return fa_lua_dns_check(cf, &cf->args[1]) == FA_OK ? FA_CONF_OK : FA_CONF_ERROR;
}


/* ---- the channel's sockets and timer ---- */

static void
fa_lua_dns_fd_event(fa_event_t *ev)
{
    fa_lua_dns_fd_t  *f = ev->data;
    int               fd = f->fd, wr = ev->write;

    ev->ready = 0;
    ares_process_fd(fa_lua_dns_channel, fd, wr ? fd : ARES_SOCKET_BAD);
    fa_lua_dns_arm();
}

/* c-ares opens, changes or closes a socket */
static void
fa_lua_dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    fa_lua_dns_fd_t  **pp, *f;

    (void) data;
    for (pp = &fa_lua_dns_fds; *pp && (*pp)->fd != fd; pp = &(*pp)->next) {
        /* find it */
    }
    f = *pp;
    if (!readable && !writable) {
        if (f) {
            fa_event_del_fd(fd, &f->ev);
            *pp = f->next;
            free(f);
        }
        return;
    }
    if (f == NULL) {
        if ((f = fa_calloc(sizeof(*f), fa_lua_dns_log)) == NULL) {
            return;                     /* the guard timer ends the lookups */
        }
        f->fd = fd;
        f->ev.data = f;
        f->ev.log = fa_lua_dns_log;
        f->ev.handler = fa_lua_dns_fd_event;
        f->next = fa_lua_dns_fds;
        fa_lua_dns_fds = f;
    }
    fa_event_add_fd(fd, &f->ev, writable);
}

static void
fa_lua_dns_timer_event(fa_event_t *ev)
{
    ev->timedout = 0;
    ares_process_fd(fa_lua_dns_channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    fa_lua_dns_arm();
}

/* the timer at c-ares's next retransmission or timeout */
static void
fa_lua_dns_arm(void)
{
    struct timeval  tv, *next;

    if (!fa_lua_dns_ready) {
        return;
    }
    next = ares_timeout(fa_lua_dns_channel, NULL, &tv);
    if (fa_lua_dns_timer.timer_set) {
        fa_event_del_timer(&fa_lua_dns_timer);
    }
    if (next) {
        fa_event_add_timer(&fa_lua_dns_timer,
                           (fa_msec_t) next->tv_sec * 1000 + next->tv_usec / 1000 + 1);
    }
}

fa_int_t
fa_lua_dns_init(fa_cycle_t *cycle, const fa_str_t *server, fa_msec_t timeout)
{
    struct ares_options  opt;
    int                  rc;

    memset(&opt, 0, sizeof(opt));
    opt.sock_state_cb = fa_lua_dns_sock_state;
    /*
     * Two tries fit in lua_io_timeout: c-ares doubles the wait for the
     * second (a third, then two thirds), so its own timeout comes with
     * the guard's rather than after it.
     */
    opt.timeout = (int) fa_max(timeout / 3, 10);
    opt.tries = 2;
    opt.flags = ARES_FLAG_NOCHECKRESP;      /* SERVFAIL is SERVFAIL (see the top) */
    fa_lua_dns_log = cycle->log;
    fa_lua_dns_timeout = timeout;
    if ((rc = ares_library_init(ARES_LIB_INIT_ALL)) != ARES_SUCCESS
        || (rc = ares_init_options(&fa_lua_dns_channel, &opt,
                                   ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES
                                   | ARES_OPT_FLAGS))
           != ARES_SUCCESS)
    {
        fa_log_error(FA_LOG_ERR, cycle->log, 0, "lua: c-ares: %s", ares_strerror(rc));
        return FA_ERROR;
    }
    fa_lua_dns_ready = 1;
    if (server->len
        && (rc = ares_set_servers_ports_csv(fa_lua_dns_channel, (char *) server->data))
           != ARES_SUCCESS)
    {
        fa_log_error(FA_LOG_ERR, cycle->log, 0, "lua: lua_dns_server \"%s\": %s",
                     (char *) server->data, ares_strerror(rc));
        fa_lua_dns_done();
        return FA_ERROR;
    }
    fa_lua_dns_timer.handler = fa_lua_dns_timer_event;
    fa_lua_dns_timer.log = cycle->log;
    fa_lua_dns_timer.cancelable = 1;
    return FA_OK;
}

void
fa_lua_dns_done(void)
{
    if (!fa_lua_dns_ready) {
        return;
    }
    fa_lua_dns_ready = 0;
    if (fa_lua_dns_timer.timer_set) {
        fa_event_del_timer(&fa_lua_dns_timer);
    }
    ares_destroy(fa_lua_dns_channel);           /* calls back with ARES_EDESTRUCTION */
    ares_library_cleanup();
}


/* ---- answers ---- */

static int
fa_lua_dns_push_a(lua_State *co, int type, unsigned char *abuf, int alen)
{
    struct ares_addrttl   v4[64];
    struct ares_addr6ttl  v6[64];
    int                   n = 64, rc;
    char                  text[INET6_ADDRSTRLEN];

    rc = type == ns_t_a ? ares_parse_a_reply(abuf, alen, NULL, v4, &n)
                        : ares_parse_aaaa_reply(abuf, alen, NULL, v6, &n);
    if (rc == ARES_ENODATA) {
        n = 0;
    } else if (rc != ARES_SUCCESS) {
        return rc;
    }
    lua_createtable(co, n, 0);
    for (int i = 0; i < n; i++) {
        if (type == ns_t_a) {
            inet_ntop(AF_INET, &v4[i].ipaddr, text, sizeof(text));
        } else {
            inet_ntop(AF_INET6, &v6[i].ip6addr, text, sizeof(text));
        }
        lua_pushstring(co, text);
        lua_rawseti(co, -2, i + 1);
    }
    return ARES_SUCCESS;
}

static int
fa_lua_dns_push_mx(lua_State *co, unsigned char *abuf, int alen)
{
    struct ares_mx_reply  *mx, *m;
    int                    rc = ares_parse_mx_reply(abuf, alen, &mx), i = 0;

    if (rc != ARES_SUCCESS) {
        return rc;
    }
    lua_newtable(co);
    for (m = mx; m; m = m->next) {
        lua_createtable(co, 0, 2);
        lua_pushstring(co, m->host);
        lua_setfield(co, -2, "host");
        lua_pushinteger(co, m->priority);
        lua_setfield(co, -2, "priority");
        lua_rawseti(co, -2, ++i);
    }
    ares_free_data(mx);
    return ARES_SUCCESS;
}

/* one string per record: a record's character-strings joined, as SPF reads them */
static int
fa_lua_dns_push_txt(lua_State *co, unsigned char *abuf, int alen)
{
    struct ares_txt_ext  *txt, *t;
    luaL_Buffer           b;
    int                   rc = ares_parse_txt_reply_ext(abuf, alen, &txt), i = 0, open = 0;

    if (rc != ARES_SUCCESS) {
        return rc;
    }
    lua_newtable(co);
    for (t = txt; t; t = t->next) {
        if (t->record_start && open) {
            luaL_pushresult(&b);
            lua_rawseti(co, -2, ++i);
            open = 0;
        }
        if (!open) {
            luaL_buffinit(co, &b);
            open = 1;
        }
        luaL_addlstring(&b, (char *) t->txt, t->length);
    }
    if (open) {
        luaL_pushresult(&b);
        lua_rawseti(co, -2, ++i);
    }
    ares_free_data(txt);
    return ARES_SUCCESS;
}

/*
 * c-ares lists every PTR record in h_aliases, and the last one again as
 * h_name: the aliases are the answer, in order; h_name only if there are
 * none (a c-ares that would not list them).
 */
static int
fa_lua_dns_push_ptr(lua_State *co, unsigned char *abuf, int alen)
{
    struct hostent  *he;
    int              rc = ares_parse_ptr_reply(abuf, alen, NULL, 0, AF_INET, &he), i;

    if (rc != ARES_SUCCESS) {
        return rc;
    }
    lua_newtable(co);
    for (i = 0; he->h_aliases && he->h_aliases[i]; i++) {
        lua_pushstring(co, he->h_aliases[i]);
        lua_rawseti(co, -2, i + 1);
    }
    if (i == 0 && he->h_name) {
        lua_pushstring(co, he->h_name);
        lua_rawseti(co, -2, 1);
    }
    ares_free_hostent(he);
    return ARES_SUCCESS;
}

static const char *
fa_lua_dns_reason(int status)
{
    switch (status) {
    case ARES_ETIMEOUT:    return "timeout";
    case ARES_ESERVFAIL:   return "server failure";
    case ARES_EREFUSED:    return "refused";
    case ARES_ECONNREFUSED: return "connection refused";
    case ARES_EBADRESP:    return "bad response";
    default:               return ares_strerror(status);
    }
}

/* c-ares may answer inside ares_query (a name it refuses): then there is nothing to resume */
static void
fa_lua_dns_resume(fa_lua_call_t *call, int nresults)
{
    if (call->running) {
        call->nsync = nresults;
        return;
    }
    fa_lua_call_resume(call, nresults);
}

static void
fa_lua_dns_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    fa_lua_dns_query_t  *q = arg;
    fa_lua_call_t       *call = q->call;
    lua_State           *co;
    int                  rc = status;

    (void) timeouts;
    free(q);
    if (call == NULL) {
        return;                                /* nobody is waiting any more */
    }
    call->io = NULL;
    if (status == ARES_EDESTRUCTION) {
        return;             /* the worker is going: no script runs from ares_destroy */
    }
    if (call->timer.timer_set) {
        fa_event_del_timer(&call->timer);
    }
    co = call->co;
    if (status == ARES_ENOTFOUND) {
        lua_newtable(co);                      /* no such name */
        lua_pushliteral(co, "not found");
        fa_lua_dns_resume(call, 2);
        return;
    }
    if (status == ARES_ENODATA) {
        lua_newtable(co);                      /* the name, but no such record */
        fa_lua_dns_resume(call, 1);
        return;
    }
    if (status == ARES_SUCCESS) {
        switch (call->dns_type) {
        case ns_t_a:
        case ns_t_aaaa: rc = fa_lua_dns_push_a(co, call->dns_type, abuf, alen); break;
        case ns_t_mx:   rc = fa_lua_dns_push_mx(co, abuf, alen); break;
        case ns_t_txt:  rc = fa_lua_dns_push_txt(co, abuf, alen); break;
        default:        rc = fa_lua_dns_push_ptr(co, abuf, alen); break;
        }
        if (rc == ARES_ENODATA) {
            lua_newtable(co);
            rc = ARES_SUCCESS;
        }
    }
    if (rc != ARES_SUCCESS) {
        lua_pushnil(co);
        lua_pushstring(co, fa_lua_dns_reason(rc));
        fa_lua_dns_resume(call, 2);
        return;
    }
    fa_lua_dns_resume(call, 1);
}

/* the guard: lua_io_timeout passed and c-ares has not answered */
static void
fa_lua_dns_guard(fa_event_t *ev)
{
    fa_lua_call_t  *call = ev->data;

    ev->timedout = 0;
    fa_lua_dns_cancel(call);
    lua_pushnil(call->co);
    lua_pushstring(call->co, "timeout");
    fa_lua_call_resume(call, 2);
}

void
fa_lua_dns_cancel(fa_lua_call_t *call)
{
    fa_lua_dns_query_t  *q = call->io;

    if (q) {
        q->call = NULL;                        /* its answer will be dropped */
        call->io = NULL;
    }
}


/* ---- the Lua functions ---- */

/* "192.0.2.7" -> "7.2.0.192.in-addr.arpa"; IPv6 by nibbles under ip6.arpa */
static int
fa_lua_dns_reverse(const char *ip, char *out, size_t size)
{
    unsigned char  a[16];
    size_t         n = 0;

    if (inet_pton(AF_INET, ip, a) == 1) {
        fa_snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2], a[1], a[0]);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, a) != 1 || size < 74) {
        return -1;
    }
    if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *) a)) {
        /* ::ffff:192.0.2.7, session.ip on a dual-stack listener: its PTR is the IPv4 one */
        fa_snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa", a[15], a[14], a[13], a[12]);
        return 0;
    }
    for (int i = 15; i >= 0; i--) {
        n += fa_snprintf(out + n, size - n, "%x.%x.", a[i] & 0xf, a[i] >> 4);
    }
    fa_snprintf(out + n, size - n, "ip6.arpa");
    return 0;
}

/*
 * The name, checked: a string (not a number Lua would turn into one),
 * 1 to 253 bytes, no NUL byte; for ptr an IP address, made the reverse name.
 */
static const char *
fa_lua_dns_name(lua_State *L, const char *fn, int type, char *rev, size_t size)
{
    size_t       len;
    const char  *name;

    if (lua_type(L, 1) != LUA_TSTRING) {
        luaL_error(L, "facteur.dns.%s: the name must be a string, not %s", fn,
                   luaL_typename(L, 1));
        return NULL;
    }
    name = lua_tolstring(L, 1, &len);
    if (len == 0 || len > FA_LUA_DNS_NAME_MAX) {
        luaL_error(L, "facteur.dns.%s: a name is 1 to %d bytes, not %d", fn,
                   FA_LUA_DNS_NAME_MAX, (int) len);
        return NULL;
    }
    if (memchr(name, '\0', len)) {
        luaL_error(L, "facteur.dns.%s: a NUL byte in the name", fn);
        return NULL;
    }
    if (type == ns_t_ptr) {
        if (fa_lua_dns_reverse(name, rev, size) != 0) {
            luaL_error(L, "facteur.dns.ptr: \"%s\" is not an IP address", name);
            return NULL;
        }
        return rev;
    }
    return name;
}

static int
fa_lua_dns_lookup(lua_State *L, const char *fn, int type)
{
    fa_lua_call_t       *call = fa_lua_current(L);
    fa_lua_dns_query_t  *q;
    const char          *name;
    char                 rev[80];

    if (call == NULL) {
        return luaL_error(L, "facteur.dns.%s: only inside a hook call", fn);
    }
    if (!fa_lua_dns_ready) {
        return luaL_error(L, "facteur.dns.%s: no resolver in this worker (see the error log)",
                          fn);
    }
    if ((name = fa_lua_dns_name(L, fn, type, rev, sizeof(rev))) == NULL) {
        return 0;                               /* not reached: luaL_error */
    }
    if ((q = fa_calloc(sizeof(*q), call->log)) == NULL) {
        return luaL_error(L, "facteur.dns: out of memory");
    }
    q->call = call;
    q->type = type;
    call->io = q;
    call->dns_type = type;
    call->timer.handler = fa_lua_dns_guard;
    fa_event_add_timer(&call->timer, fa_lua_dns_timeout);
    ares_query(fa_lua_dns_channel, name, ns_c_in, type, fa_lua_dns_answer, q);
    fa_lua_dns_arm();
    if (call->io == NULL) {
        return call->nsync;                /* answered at once: the results are on top */
    }
    return fa_lua_yield(L, call);
}

static int fa_lua_dns_a(lua_State *L) { return fa_lua_dns_lookup(L, "a", ns_t_a); }
static int fa_lua_dns_aaaa(lua_State *L) { return fa_lua_dns_lookup(L, "aaaa", ns_t_aaaa); }
static int fa_lua_dns_mx(lua_State *L) { return fa_lua_dns_lookup(L, "mx", ns_t_mx); }
static int fa_lua_dns_txt(lua_State *L) { return fa_lua_dns_lookup(L, "txt", ns_t_txt); }
static int fa_lua_dns_ptr(lua_State *L) { return fa_lua_dns_lookup(L, "ptr", ns_t_ptr); }

void
fa_lua_dns_open(lua_State *L)
{
    static const luaL_Reg  dns[] = {
        { "a", fa_lua_dns_a }, { "aaaa", fa_lua_dns_aaaa }, { "mx", fa_lua_dns_mx },
        { "txt", fa_lua_dns_txt }, { "ptr", fa_lua_dns_ptr }, { NULL, NULL }
    };

    luaL_newlib(L, dns);
    lua_setfield(L, -2, "dns");
}
