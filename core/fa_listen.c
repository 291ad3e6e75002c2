/*
 * Listening sockets (see fa_listen.h): parsing "listen", opening in the
 * master with reuse across reloads, and the workers' accept path.
 */

#include "fa_core.h"

#define FA_LISTEN_BACKLOG      511
#define FA_ACCEPT_BATCH        64
#define FA_ACCEPT_PAUSE        500     /* ms without accepting after EMFILE */
#define FA_HANDSHAKE_TIMEOUT   30000

static void fa_listen_accept(fa_event_t *ev);

static char *
fa_listen_parse_unix(fa_conf_t *cf, fa_str_t *a, fa_listen_opt_t *opt)
{
    struct sockaddr_un  *sun = (struct sockaddr_un *) &opt->sockaddr;
    fa_str_t             path = { a->len - 5, a->data + 5 };
    char                *full;

    full = fa_conf_full_path(cf, &path);
    if (full == NULL || path.len == 0 || strlen(full) >= sizeof(sun->sun_path)) {
        return fa_conf_error(cf, "invalid unix socket path in \"%.*s\"", (int) a->len, a->data);
    }
    sun->sun_family = AF_UNIX;
    strcpy(sun->sun_path, full);
    opt->socklen = sizeof(struct sockaddr_un);
    opt->unix_socket = 1;
    fa_snprintf(opt->text, sizeof(opt->text), "unix:%s", full);
    return FA_CONF_OK;
}

static char *
fa_listen_parse_inet(fa_conf_t *cf, fa_str_t *a, fa_listen_opt_t *opt)
{
    char      host[64] = "0.0.0.0";
    u_char   *colon = NULL;
    int64_t   port;
    size_t    hlen;

    for (size_t i = a->len; i > 0; i--) {
        if (a->data[i - 1] == ':') { colon = &a->data[i - 1]; break; }
        if (a->data[i - 1] == ']') { break; }
    }
    port = colon ? fa_atoi(colon + 1, a->data + a->len - colon - 1) : fa_atoi(a->data, a->len);
    if (port < 1 || port > 65535) {
        return fa_conf_error(cf, "invalid port in \"%.*s\" of the \"listen\" directive",
                             (int) a->len, a->data);
    }
    if (colon) {
        hlen = (size_t) (colon - a->data);
        if (hlen >= 2 && a->data[0] == '[' && a->data[hlen - 1] == ']') {
            hlen -= 2;
            memmove(host, a->data + 1, fa_min(hlen, sizeof(host) - 1));
        } else {
            memmove(host, a->data, fa_min(hlen, sizeof(host) - 1));
        }
        host[fa_min(hlen, sizeof(host) - 1)] = '\0';
        if (strcmp(host, "*") == 0) {
            strcpy(host, "0.0.0.0");
        }
    }

    struct sockaddr_in   *sin = (struct sockaddr_in *) &opt->sockaddr;
    struct sockaddr_in6  *sin6 = (struct sockaddr_in6 *) &opt->sockaddr;

    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t) port);
        opt->socklen = sizeof(*sin);
        fa_snprintf(opt->text, sizeof(opt->text), "%s:%d", host, (int) port);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t) port);
        opt->socklen = sizeof(*sin6);
        fa_snprintf(opt->text, sizeof(opt->text), "[%s]:%d", host, (int) port);
    } else {
        return fa_conf_error(cf, "invalid address \"%s\" in the \"listen\" directive "
                             "(an IP address is expected)", host);
    }
    return FA_CONF_OK;
}

char *
fa_listen_parse(fa_conf_t *cf, fa_str_t *args, fa_uint_t nargs, fa_listen_opt_t *opt)
{
    char     *rv;
    int64_t   n;

    memset(opt, 0, sizeof(*opt));
    opt->backlog = FA_LISTEN_BACKLOG;
    if (nargs == 0) {
        return fa_conf_error(cf, "\"listen\" needs an address");
    }
    if (args[0].len > 5 && strncmp((char *) args[0].data, "unix:", 5) == 0) {
        rv = fa_listen_parse_unix(cf, &args[0], opt);
    } else {
        rv = fa_listen_parse_inet(cf, &args[0], opt);
    }
    if (rv != FA_CONF_OK) {
        return rv;
    }
    for (fa_uint_t i = 1; i < nargs; i++) {
        if (fa_str_eq(&args[i], "ssl")) {
            opt->ssl = 1;
        } else if (args[i].len > 8 && strncmp((char *) args[i].data, "backlog=", 8) == 0) {
            n = fa_atoi(args[i].data + 8, args[i].len - 8);
            if (n < 1 || n > 65535) {
                return fa_conf_error(cf, "invalid backlog \"%.*s\"", (int) args[i].len,
                                     args[i].data);
            }
            opt->backlog = n;
        } else {
            return fa_conf_error(cf, "invalid parameter \"%.*s\" of the \"listen\" "
                                 "directive (\"ssl\" or \"backlog=N\" expected)",
                                 (int) args[i].len, args[i].data);
        }
    }
    return FA_CONF_OK;
}

static fa_stat_t *
fa_listen_sessions_stat(const char *protocol)
{
    char  labels[FA_STATS_LABELS_MAX];

    fa_snprintf(labels, sizeof(labels), "protocol=\"%s\"", protocol);
    return fa_stats_get("facteur_sessions_total", labels, FA_STATS_COUNTER,
                        "Sessions accepted, by protocol.");
}

fa_listening_t *
fa_listen_add(fa_conf_t *cf, fa_listen_opt_t *opt, const char *protocol,
    fa_conn_handler_pt handler, void *ctx)
{
    fa_listening_t  **all = cf->cycle->listening.elts, *ls, **slot;

    for (fa_uint_t i = 0; i < cf->cycle->listening.nelts; i++) {
        if (strcmp(all[i]->opt.text, opt->text) == 0) {
            fa_conf_error(cf, "duplicate listen %s (already used by %s)", opt->text,
                          all[i]->protocol);
            return NULL;
        }
    }
    ls = fa_pcalloc(cf->pool, sizeof(fa_listening_t));
    slot = fa_array_push(&cf->cycle->listening);
    if (ls == NULL || slot == NULL) {
        return NULL;
    }
    ls->fd = -1;
    ls->opt = *opt;
    ls->protocol = protocol;
    ls->handler = handler;
    ls->ctx = ctx;
    ls->log = cf->cycle->log;
    ls->handshake_timeout = FA_HANDSHAKE_TIMEOUT;
    ls->sessions = fa_listen_sessions_stat(protocol);
    *slot = ls;
    return ls;
}

static int
fa_listen_socket(fa_listening_t *ls, fa_log_t *log)
{
    int  fd, one = 1;

    fd = socket(ls->opt.sockaddr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        fa_log_error(FA_LOG_EMERG, log, errno, "socket() for %s failed", ls->opt.text);
        return -1;
    }
    if (ls->opt.unix_socket) {
        struct sockaddr_un *sun = (struct sockaddr_un *) &ls->opt.sockaddr;
        struct stat st;
        if (lstat(sun->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) {
            unlink(sun->sun_path);          /* left over from a previous run */
        }
    } else {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ls->opt.sockaddr.ss_family == AF_INET6) {
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        }
    }
    if (bind(fd, (struct sockaddr *) &ls->opt.sockaddr, ls->opt.socklen) == -1
        || listen(fd, (int) ls->opt.backlog) == -1)
    {
        fa_log_error(FA_LOG_EMERG, log, errno, "bind() or listen() to %s failed",
                     ls->opt.text);
        close(fd);
        return -1;
    }
    if (ls->opt.unix_socket) {
        chmod(((struct sockaddr_un *) &ls->opt.sockaddr)->sun_path, 0660);
    }
    return fd;
}

static fa_listening_t *
fa_listen_find(fa_cycle_t *cycle, const char *text)
{
    fa_listening_t  **all;

    if (cycle == NULL) {
        return NULL;
    }
    all = cycle->listening.elts;
    for (fa_uint_t i = 0; i < cycle->listening.nelts; i++) {
        if (all[i]->fd != -1 && strcmp(all[i]->opt.text, text) == 0) {
            return all[i];
        }
    }
    return NULL;
}

fa_int_t
fa_listen_open_all(fa_cycle_t *cycle, fa_cycle_t *old_cycle)
{
    fa_listening_t  **all = cycle->listening.elts, *old;

    for (fa_uint_t i = 0; i < cycle->listening.nelts; i++) {
        old = fa_listen_find(old_cycle, all[i]->opt.text);
        if (old) {
            all[i]->fd = old->fd;
            all[i]->inherited = 1;
            old->remain = 1;
            continue;
        }
        all[i]->fd = fa_listen_socket(all[i], cycle->log);
        if (all[i]->fd == -1) {
            return FA_ERROR;      /* the caller closes what this cycle opened */
        }
    }
    return FA_OK;
}

/* close the sockets of a cycle being retired that the new cycle did not take */
void
fa_listen_close_unused(fa_cycle_t *old_cycle)
{
    fa_listening_t  **all = old_cycle->listening.elts;

    for (fa_uint_t i = 0; i < old_cycle->listening.nelts; i++) {
        if (all[i]->fd != -1 && !all[i]->remain) {
            close(all[i]->fd);
            if (all[i]->opt.unix_socket) {
                unlink(((struct sockaddr_un *) &all[i]->opt.sockaddr)->sun_path);
            }
        }
        all[i]->fd = -1;
    }
}

/* a cycle that failed to load: close what it opened, leave what it inherited */
void
fa_listen_close_all(fa_cycle_t *cycle)
{
    fa_listening_t  **all = cycle->listening.elts;

    for (fa_uint_t i = 0; i < cycle->listening.nelts; i++) {
        if (all[i]->fd != -1 && !all[i]->inherited) {
            close(all[i]->fd);
        }
        all[i]->fd = -1;
    }
}

fa_int_t
fa_listen_enable(fa_cycle_t *cycle)
{
    fa_listening_t  **all = cycle->listening.elts;

    for (fa_uint_t i = 0; i < cycle->listening.nelts; i++) {
        fa_event_t *ev = &all[i]->event;
        memset(ev, 0, sizeof(*ev));
        ev->data = all[i];
        ev->handler = fa_listen_accept;
        ev->log = cycle->log;
        ev->accept = 1;
        if (fa_event_add_listen(all[i], ev) != FA_OK) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

/* a quitting worker: stop accepting; the master keeps the sockets open */
void
fa_listen_disable(fa_cycle_t *cycle)
{
    fa_listening_t  **all = cycle->listening.elts;

    for (fa_uint_t i = 0; i < cycle->listening.nelts; i++) {
        if (all[i]->fd == -1) {
            continue;
        }
        if (all[i]->event.active) {
            fa_event_del_listen(all[i], &all[i]->event);
        }
        if (all[i]->event.timer_set) {
            fa_event_del_timer(&all[i]->event);
        }
        close(all[i]->fd);
        all[i]->fd = -1;
    }
}

/* out of connection slots: say so in the protocol's words, then hang up */
static void
fa_listen_refuse(fa_listening_t *ls, int fd)
{
    static time_t  last_warned;

    /* on a TLS listener the client expects a handshake: plain text is noise */
    if (ls->busy_reply.len && ls->ssl == NULL) {
        (void) !send(fd, ls->busy_reply.data, ls->busy_reply.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    close(fd);
    if (fa_core_stats.refused) {
        fa_stat_inc(fa_core_stats.refused);
    }
    if (last_warned != fa_time_now) {
        last_warned = fa_time_now;
        fa_log_error(FA_LOG_WARN, ls->log, 0, "%lu worker_connections are not enough, "
                     "refusing connections on %s",
                     (unsigned long) fa_cycle->core_conf->worker_connections, ls->opt.text);
    }
}

static void
fa_listen_tls_done(fa_connection_t *c, fa_int_t rc)
{
    if (c->read->timer_set) {
        fa_event_del_timer(c->read);
    }
    if (rc != FA_OK) {
        fa_conn_close(c);
        return;
    }
    c->listening->handler(c);
}

static void
fa_listen_start_session(fa_listening_t *ls, fa_connection_t *c)
{
    fa_int_t  rc;

    if (!ls->ssl) {
        ls->handler(c);
        return;
    }
    if (fa_ssl_create_connection(ls->ssl, c) != FA_OK) {
        fa_conn_close(c);
        return;
    }
    c->tls_handler = fa_listen_tls_done;
    fa_event_add_timer(c->read, ls->handshake_timeout);
    rc = fa_ssl_handshake(c);
    if (rc != FA_AGAIN) {
        fa_listen_tls_done(c, rc);
    }
}

static void
fa_listen_set_addr(fa_connection_t *c)
{
    struct sockaddr_in   *sin = (struct sockaddr_in *) &c->sockaddr;
    struct sockaddr_in6  *sin6 = (struct sockaddr_in6 *) &c->sockaddr;

    switch (c->sockaddr.ss_family) {
    case AF_INET:
        inet_ntop(AF_INET, &sin->sin_addr, c->addr_text, sizeof(c->addr_text));
        break;
    case AF_INET6:
        inet_ntop(AF_INET6, &sin6->sin6_addr, c->addr_text, sizeof(c->addr_text));
        break;
    default:
        strcpy(c->addr_text, "unix:");
        c->unix_socket = 1;
    }
}

static void
fa_listen_resume(fa_event_t *ev)
{
    fa_listening_t  *ls = ev->data;

    ev->timedout = 0;
    if (!fa_worker_exiting && ls->fd != -1) {
        ev->handler = fa_listen_accept;
        fa_event_add_listen(ls, ev);
    }
}

static void
fa_listen_accept(fa_event_t *ev)
{
    fa_listening_t         *ls = ev->data;
    fa_connection_t        *c;
    struct sockaddr_storage sa;
    socklen_t               len;
    int                     fd, one = 1;

    for (int i = 0; i < FA_ACCEPT_BATCH && ls->fd != -1; i++) {
        len = sizeof(sa);
        fd = accept4(ls->fd, (struct sockaddr *) &sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EMFILE || errno == ENFILE) {
                fa_log_error(FA_LOG_CRIT, ls->log, errno, "accept() on %s failed; "
                             "pausing accepts", ls->opt.text);
                fa_event_del_listen(ls, ev);
                ev->handler = fa_listen_resume;
                fa_event_add_timer(ev, FA_ACCEPT_PAUSE);
            } else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
                fa_log_error(FA_LOG_ERR, ls->log, errno, "accept() on %s failed",
                             ls->opt.text);
            }
            return;
        }
        c = fa_connection_get(fd, ls->log);
        if (c == NULL) {
            fa_listen_refuse(ls, fd);
            continue;
        }
        if (fa_core_stats.accepted) {
            fa_stat_inc(fa_core_stats.accepted);
        }
        if (ls->sessions) {
            fa_stat_inc(ls->sessions);
        }
        memcpy(&c->sockaddr, &sa, len);
        c->socklen = len;
        c->listening = ls;
        fa_listen_set_addr(c);
        if (!ls->opt.unix_socket) {
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        if (fa_event_add_conn(c) != FA_OK) {
            fa_conn_close(c);
            continue;
        }
        fa_listen_start_session(ls, c);
    }
}
