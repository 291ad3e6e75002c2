/*
 * The SMTP module: directives, servers and their listeners, the phase
 * chains' registry and per-domain policy.
 *
 *   smtp {
 *       hostname mx.example.org;          # also in main; default: the machine's name
 *       max_message_size 50m;             # SIZE; also in domain blocks
 *       max_recipients 100;               # per message; also in domain blocks
 *       unknown_users reject;             # or accept (queued); also in domain
 *       max_errors 10;  max_connections_per_ip 50;
 *       smtp_greeting_delay 0;  smtp_timeout 5m;
 *       relay_from 10.0.0.0/8;            # networks that may relay (unix: a socket's)
 *       bare_newlines reject;             # or normalize
 *       auth_plaintext off;  auth_failure_delay 2s;  max_auth_failures 3;
 *       smtp_spool_path var/spool;
 *       server { listen 2525; }                               # MX
 *       server { listen 2587; listen 2465 ssl; submission on; }
 *   }
 *   lmtp { listen unix:var/lmtp.sock; }
 *
 * Every scope that has "listen" is a server: smtp, smtp.server, lmtp and
 * lmtp.server.  The role is LMTP under lmtp, submission where "submission
 * on", MX otherwise.  STARTTLS is offered where a certificate is
 * configured (required for submission unless auth_plaintext is on).
 */

#include "fa_smtp_int.h"

#define FA_SMTP_SCOPES   "smtp smtp.server lmtp lmtp.server"
#define FA_SMTP_DSCOPES  FA_SMTP_SCOPES " domain"

static void *fa_smtp_create_conf(fa_conf_t *cf);
static char *fa_smtp_merge_conf(fa_conf_t *cf, void *parent, void *child);
static fa_int_t fa_smtp_init_conf(fa_conf_t *cf);
static char *fa_smtp_listen(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static char *fa_smtp_relay_from(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static char *fa_smtp_smarthost_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static char *fa_smtp_relay_to_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static fa_int_t fa_smtp_check_domain(fa_cycle_t *cycle, fa_conf_scope_t *scope, void *data);
static const fa_str_t *fa_smtp_smarthost_in(fa_smtp_conf_t *main, const fa_str_t *name);

static const fa_conf_enum_t  fa_smtp_unknown_enum[] = {
    { "reject", FA_SMTP_UNKNOWN_REJECT }, { "accept", FA_SMTP_UNKNOWN_ACCEPT },
    { NULL, 0 }
};

static const fa_conf_enum_t  fa_smtp_newline_enum[] = {
    { "reject", FA_SMTP_NEWLINE_REJECT }, { "normalize", FA_SMTP_NEWLINE_NORMALIZE },
    { NULL, 0 }
};

static const fa_conf_bounds_t  fa_smtp_rcpt_bounds = { 1, 100000 };

static const fa_command_t  fa_smtp_commands[] = {
    { "smtp", "main", FA_CONF_BLOCK | FA_CONF_NOARGS, fa_conf_set_block, 0, NULL },
    { "lmtp", "main", FA_CONF_BLOCK | FA_CONF_NOARGS, fa_conf_set_block, 0, NULL },
    { "server", "smtp lmtp", FA_CONF_BLOCK | FA_CONF_NOARGS | FA_CONF_MULTI,
      fa_conf_set_block, 0, NULL },
    { "listen", FA_SMTP_SCOPES, FA_CONF_1MORE | FA_CONF_MULTI, fa_smtp_listen, 0, NULL },
    { "hostname", "main " FA_SMTP_SCOPES, FA_CONF_TAKE1, fa_conf_set_str,
      offsetof(fa_smtp_conf_t, hostname), NULL },
    { "max_message_size", FA_SMTP_DSCOPES, FA_CONF_TAKE1, fa_conf_set_size,
      offsetof(fa_smtp_conf_t, max_message_size), NULL },
    { "max_recipients", FA_SMTP_DSCOPES, FA_CONF_TAKE1, fa_conf_set_num,
      offsetof(fa_smtp_conf_t, max_recipients), &fa_smtp_rcpt_bounds },
    { "unknown_users", FA_SMTP_DSCOPES, FA_CONF_TAKE1, fa_conf_set_enum,
      offsetof(fa_smtp_conf_t, unknown_users), fa_smtp_unknown_enum },
    { "max_errors", FA_SMTP_SCOPES, FA_CONF_TAKE1, fa_conf_set_num,
      offsetof(fa_smtp_conf_t, max_errors), NULL },
    { "max_connections_per_ip", FA_SMTP_SCOPES, FA_CONF_TAKE1, fa_conf_set_num,
      offsetof(fa_smtp_conf_t, max_connections_per_ip), NULL },
    { "smtp_greeting_delay", FA_SMTP_SCOPES, FA_CONF_TAKE1, fa_conf_set_msec,
      offsetof(fa_smtp_conf_t, greeting_delay), NULL },
    { "smtp_timeout", FA_SMTP_SCOPES, FA_CONF_TAKE1, fa_conf_set_msec,
      offsetof(fa_smtp_conf_t, timeout), NULL },
    { "relay_from", FA_SMTP_SCOPES, FA_CONF_1MORE | FA_CONF_MULTI, fa_smtp_relay_from,
      0, NULL },
    { "bare_newlines", FA_SMTP_SCOPES, FA_CONF_TAKE1, fa_conf_set_enum,
      offsetof(fa_smtp_conf_t, bare_newlines), fa_smtp_newline_enum },
    { "auth_plaintext", FA_SMTP_SCOPES, FA_CONF_FLAG, fa_conf_set_flag,
      offsetof(fa_smtp_conf_t, auth_plaintext), NULL },
    { "auth_failure_delay", FA_SMTP_SCOPES, FA_CONF_TAKE1, fa_conf_set_msec,
      offsetof(fa_smtp_conf_t, auth_failure_delay), NULL },
    { "max_auth_failures", FA_SMTP_SCOPES, FA_CONF_TAKE1, fa_conf_set_num,
      offsetof(fa_smtp_conf_t, max_auth_failures), NULL },
    { "submission", "smtp smtp.server", FA_CONF_FLAG, fa_conf_set_flag,
      offsetof(fa_smtp_conf_t, submission), NULL },
    { "smarthost", "smtp", FA_CONF_TAKE2 | FA_CONF_MULTI, fa_smtp_smarthost_set, 0, NULL },
    { "relay_to", "domain", FA_CONF_TAKE1, fa_smtp_relay_to_set, 0, NULL },
    { "relay_outbound", "domain", FA_CONF_FLAG, fa_conf_set_flag,
      offsetof(fa_smtp_conf_t, relay_outbound), NULL },
    { "smtp_spool_path", FA_SMTP_SCOPES, FA_CONF_TAKE1, fa_conf_set_path,
      offsetof(fa_smtp_conf_t, spool_path), NULL },
    fa_null_command
};

fa_module_t  fa_smtp_module = {
    FA_MODULE_V1, "smtp", FA_MODULE_PROTOCOL, fa_smtp_commands,
    fa_smtp_create_conf, fa_smtp_merge_conf, fa_smtp_init_conf,
    NULL, NULL, NULL, NULL, FA_MODULE_SPARE
};

fa_stat_t  *fa_smtp_stat_messages, *fa_smtp_stat_bytes, *fa_smtp_stat_rcpts;


/* ---- configuration ---- */

static void *
fa_smtp_create_conf(fa_conf_t *cf)
{
    fa_smtp_conf_t  *conf = fa_pcalloc(cf->pool, sizeof(fa_smtp_conf_t));

    if (conf == NULL) {
        return NULL;
    }
    conf->max_message_size = FA_CONF_UNSET_SIZE;
    conf->max_recipients = FA_CONF_UNSET;
    conf->max_errors = FA_CONF_UNSET;
    conf->max_connections_per_ip = FA_CONF_UNSET;
    conf->greeting_delay = FA_CONF_UNSET_MSEC;
    conf->timeout = FA_CONF_UNSET_MSEC;
    conf->unknown_users = FA_CONF_UNSET_UINT;
    conf->bare_newlines = FA_CONF_UNSET_UINT;
    conf->auth_plaintext = FA_CONF_UNSET;
    conf->auth_failure_delay = FA_CONF_UNSET_MSEC;
    conf->max_auth_failures = FA_CONF_UNSET;
    conf->submission = FA_CONF_UNSET;
    conf->relay_outbound = FA_CONF_UNSET;
    return conf;
}

static fa_int_t
fa_smtp_default_hostname(fa_conf_t *cf, fa_str_t *out)
{
    char  host[256];

    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
        strcpy(host, "localhost");
    }
    host[sizeof(host) - 1] = '\0';
    out->len = strlen(host);
    out->data = fa_pnalloc(cf->pool, out->len + 1);
    if (out->data == NULL) {
        return FA_ERROR;
    }
    memcpy(out->data, host, out->len + 1);
    return FA_OK;
}

static char *
fa_smtp_merge_conf(fa_conf_t *cf, void *parent, void *child)
{
    fa_smtp_conf_t  *prev = parent, *conf = child;
    fa_str_t         spool = fa_string("var/spool");

    if (cf->scope && strcmp(cf->scope->kind, "domain") == 0) {
        return FA_CONF_OK;            /* a domain says only what it overrides */
    }
    if (conf->hostname.data == NULL) {
        conf->hostname = prev->hostname;
        if (conf->hostname.data == NULL
            && fa_smtp_default_hostname(cf, &conf->hostname) != FA_OK)
        {
            return FA_CONF_ERROR;
        }
    }
    fa_conf_merge_size(conf->max_message_size, prev->max_message_size, 50 * 1024 * 1024);
    fa_conf_merge_value(conf->max_recipients, prev->max_recipients, 100);
    fa_conf_merge_value(conf->max_errors, prev->max_errors, 10);
    fa_conf_merge_value(conf->max_connections_per_ip, prev->max_connections_per_ip, 50);
    fa_conf_merge_msec(conf->greeting_delay, prev->greeting_delay, 0);
    fa_conf_merge_msec(conf->timeout, prev->timeout, 300000);
    fa_conf_merge_uint(conf->unknown_users, prev->unknown_users, FA_SMTP_UNKNOWN_REJECT);
    fa_conf_merge_uint(conf->bare_newlines, prev->bare_newlines, FA_SMTP_NEWLINE_REJECT);
    fa_conf_merge_value(conf->auth_plaintext, prev->auth_plaintext, 0);
    fa_conf_merge_msec(conf->auth_failure_delay, prev->auth_failure_delay, 2000);
    fa_conf_merge_value(conf->max_auth_failures, prev->max_auth_failures, 3);
    fa_conf_merge_value(conf->submission, prev->submission, 0);
    if (conf->relay_from == NULL) {
        conf->relay_from = prev->relay_from;
    }
    if (conf->spool_path.data == NULL) {
        conf->spool_path = prev->spool_path;
    }
    if (conf->spool_path.data == NULL) {
        conf->spool_path.data = (u_char *) fa_conf_full_path(cf, &spool);
        conf->spool_path.len = conf->spool_path.data ? strlen((char *) conf->spool_path.data) : 0;
    }
    return conf->spool_path.data ? FA_CONF_OK : FA_CONF_ERROR;
}

static char *
fa_smtp_listen(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_smtp_conf_t   *scf = conf;
    fa_listen_opt_t  *opt;

    (void) cmd;
    if (scf->listen == NULL
        && (scf->listen = fa_array_create(cf->pool, 2, sizeof(fa_listen_opt_t))) == NULL)
    {
        return FA_CONF_ERROR;
    }
    if ((opt = fa_array_push(scf->listen)) == NULL) {
        return FA_CONF_ERROR;
    }
    return fa_listen_parse(cf, &cf->args[1], cf->nargs - 1, opt);
}

/* "10.0.0.0/8", "::1", "192.0.2.1", or "unix:" (clients of a unix socket) */
static char *
fa_smtp_parse_cidr(fa_conf_t *cf, const fa_str_t *arg, fa_smtp_cidr_t *out)
{
    char        buf[64], *slash;
    int64_t     bits;
    fa_uint_t   max;

    memset(out, 0, sizeof(*out));
    if (fa_str_eq(arg, "unix:")) {
        out->family = AF_UNIX;
        return FA_CONF_OK;
    }
    if (arg->len >= sizeof(buf)) {
        return fa_conf_error(cf, "invalid network \"%.*s\"", (int) arg->len, arg->data);
    }
    memcpy(buf, arg->data, arg->len);
    buf[arg->len] = '\0';
    slash = strchr(buf, '/');
    if (slash) {
        *slash++ = '\0';
    }
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return fa_conf_error(cf, "invalid network \"%.*s\" (an IPv4 or IPv6 address, "
                             "optionally /bits, or unix:)", (int) arg->len, arg->data);
    }
    bits = slash ? fa_atoi((u_char *) slash, strlen(slash)) : (int64_t) max;
    if (bits < 0 || bits > (int64_t) max) {
        return fa_conf_error(cf, "invalid prefix length in \"%.*s\"", (int) arg->len,
                             arg->data);
    }
    out->bits = (fa_uint_t) bits;
    return FA_CONF_OK;
}

static char *
fa_smtp_relay_from(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_smtp_conf_t  *scf = conf;
    fa_smtp_cidr_t  *net;
    char            *rv;

    (void) cmd;
    if (scf->relay_from == NULL
        && (scf->relay_from = fa_array_create(cf->pool, 4, sizeof(fa_smtp_cidr_t))) == NULL)
    {
        return FA_CONF_ERROR;
    }
    for (fa_uint_t i = 1; i < cf->nargs; i++) {
        if ((net = fa_array_push(scf->relay_from)) == NULL) {
            return FA_CONF_ERROR;
        }
        if ((rv = fa_smtp_parse_cidr(cf, &cf->args[i], net)) != FA_CONF_OK) {
            return rv;
        }
    }
    return FA_CONF_OK;
}

static int
fa_smtp_prefix_match(const u_char *a, const u_char *b, fa_uint_t bits)
{
    fa_uint_t  bytes = bits / 8, rest = bits % 8;

    if (memcmp(a, b, bytes) != 0) {
        return 0;
    }
    return rest == 0 || ((a[bytes] ^ b[bytes]) & (0xff << (8 - rest))) == 0;
}

int
fa_smtp_cidr_match(const fa_array_t *list, const struct sockaddr *sa)
{
    const fa_smtp_cidr_t  *net = list ? list->elts : NULL;
    const u_char          *a4 = NULL, *a6 = NULL;
    static const u_char    mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

    if (sa->sa_family == AF_INET) {
        a4 = (const u_char *) &((const struct sockaddr_in *) sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        a6 = (const u_char *) &((const struct sockaddr_in6 *) sa)->sin6_addr;
        if (memcmp(a6, mapped, sizeof(mapped)) == 0) {
            a4 = a6 + 12;                /* ::ffff:192.0.2.1 is 192.0.2.1 */
        }
    }
    for (fa_uint_t i = 0; list && i < list->nelts; i++) {
        if ((net[i].family == AF_UNIX && sa->sa_family == AF_UNIX)
            || (net[i].family == AF_INET && a4
                && fa_smtp_prefix_match(a4, net[i].addr, net[i].bits))
            || (net[i].family == AF_INET6 && a6
                && fa_smtp_prefix_match(a6, net[i].addr, net[i].bits)))
        {
            return 1;
        }
    }
    return 0;
}


/* ---- servers ---- */

static fa_int_t
fa_smtp_scope_error(fa_conf_t *cf, fa_conf_scope_t *scope, const char *msg)
{
    cf->file = scope->file;
    cf->line = scope->line;
    fa_conf_error(cf, "%s", msg);
    return FA_ERROR;
}

/* TLS where a certificate is configured; an "ssl" listener or a submission
   server without auth_plaintext must have one */
static fa_int_t
fa_smtp_server_tls(fa_conf_t *cf, fa_conf_scope_t *scope, fa_smtp_conf_t *conf)
{
    fa_ssl_conf_t    *tls = fa_scope_conf(scope, fa_ssl_module);
    fa_listen_opt_t  *opt = conf->listen->elts;
    int               need = conf->role == FA_SMTP_ROLE_SUBMISSION && !conf->auth_plaintext;

    for (fa_uint_t i = 0; i < conf->listen->nelts; i++) {
        need |= opt[i].ssl;
    }
    if (!need && (tls == NULL || tls->certificate.data == NULL)) {
        return FA_OK;                    /* plain SMTP, no STARTTLS offered */
    }
    cf->file = scope->file;
    cf->line = scope->line;
    conf->ssl = fa_ssl_for_scope(cf, scope);
    return conf->ssl ? FA_OK : FA_ERROR;
}

static fa_int_t
fa_smtp_add_server(fa_cycle_t *cycle, fa_conf_scope_t *scope, void *data)
{
    fa_conf_t        *cf = data;
    fa_smtp_conf_t   *conf = fa_scope_conf(scope, fa_smtp_module);
    int               lmtp = strncmp(scope->kind, "lmtp", 4) == 0;
    fa_listen_opt_t  *opt;
    fa_listening_t   *ls;

    (void) cycle;
    if (conf == NULL || conf->listen == NULL || !scope->own[fa_smtp_module.index]) {
        return FA_OK;                    /* a block without listeners of its own */
    }
    conf->role = lmtp ? FA_SMTP_ROLE_LMTP
                      : conf->submission == 1 ? FA_SMTP_ROLE_SUBMISSION : FA_SMTP_ROLE_MX;
    if (!lmtp && fa_smtp_server_tls(cf, scope, conf) != FA_OK) {
        return FA_ERROR;
    }
    opt = conf->listen->elts;
    for (fa_uint_t i = 0; i < conf->listen->nelts; i++) {
        if (lmtp && opt[i].ssl) {
            return fa_smtp_scope_error(cf, scope, "LMTP does not take \"ssl\" listeners");
        }
        ls = fa_listen_add(cf, &opt[i], lmtp ? "lmtp" : "smtp", fa_smtp_init_session, conf);
        if (ls == NULL) {
            return FA_ERROR;
        }
        fa_str_set(&ls->busy_reply, "421 4.3.2 Too busy, try again later\r\n");
        ls->handshake_timeout = conf->timeout;
        if (opt[i].ssl) {
            ls->ssl = conf->ssl;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_smtp_init_conf(fa_conf_t *cf)
{
    static const char *const  kinds[] = { "smtp", "smtp.server", "lmtp", "lmtp.server" };

    for (size_t i = 0; i < fa_nelems(kinds); i++) {
        if (fa_conf_each_scope(cf->cycle, kinds[i], fa_smtp_add_server, cf) != FA_OK) {
            return FA_ERROR;
        }
    }
    if (fa_conf_each_scope(cf->cycle, "domain", fa_smtp_check_domain, cf) != FA_OK) {
        return FA_ERROR;
    }
    fa_smtp_stat_messages = fa_stats_get("facteur_smtp_messages_total", "",
        FA_STATS_COUNTER, "Messages accepted (SMTP, submission and LMTP)");
    fa_smtp_stat_bytes = fa_stats_get("facteur_smtp_bytes_total", "",
        FA_STATS_COUNTER, "Octets of accepted messages");
    fa_smtp_stat_rcpts = fa_stats_get("facteur_smtp_recipients_total", "",
        FA_STATS_COUNTER, "Recipients of accepted messages");
    return fa_smtp_limit_init(cf);
}

/* reasons are a fixed vocabulary: a label per reason, created on first use */
void
fa_smtp_count_reject(const char *reason)
{
    char        labels[FA_STATS_LABELS_MAX];
    fa_stat_t  *st;

    fa_snprintf(labels, sizeof(labels), "reason=\"%s\"", reason);
    st = fa_stats_get("facteur_smtp_rejects_total", labels, FA_STATS_COUNTER,
                      "Commands and messages refused, by reason");
    if (st) {
        fa_stat_inc(st);
    }
}


/* ---- smarthosts: named relays a routing hook can send through ---- */

static const fa_str_t *
fa_smtp_smarthost_in(fa_smtp_conf_t *main, const fa_str_t *name)
{
    fa_smtp_smarthost_t  *h;

    if (main == NULL || main->smarthosts == NULL) {
        return NULL;
    }
    h = main->smarthosts->elts;
    for (fa_uint_t i = 0; i < main->smarthosts->nelts; i++) {
        if (fa_str_equal(&h[i].name, name)) {
            return &h[i].address;
        }
    }
    return NULL;
}

/* smarthost NAME HOST[:PORT]; kept in main's struct, where hooks look */
static char *
fa_smtp_smarthost_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_smtp_conf_t       *main = fa_conf_get(cf, cf->cycle->root, &fa_smtp_module);
    fa_smtp_smarthost_t  *h;

    (void) cmd;
    (void) conf;
    if (main == NULL) {
        return FA_CONF_ERROR;
    }
    if (main->smarthosts == NULL
        && (main->smarthosts = fa_array_create(cf->pool, 4, sizeof(*h))) == NULL)
    {
        return FA_CONF_ERROR;
    }
    if (fa_smtp_smarthost_in(main, &cf->args[1]) != NULL) {
        return fa_conf_error(cf, "smarthost \"%s\" is already defined",
                             (char *) cf->args[1].data);
    }
    for (size_t i = 0; i < cf->args[2].len; i++) {
        if (cf->args[2].data[i] <= ' ' || cf->args[2].data[i] >= 0x7f) {
            return fa_conf_error(cf, "invalid smarthost address \"%s\": HOST or HOST:PORT",
                                 (char *) cf->args[2].data);
        }
    }
    if ((h = fa_array_push(main->smarthosts)) == NULL) {
        return FA_CONF_ERROR;
    }
    h->name = cf->args[1];
    h->address = cf->args[2];
    return FA_CONF_OK;
}

const fa_str_t *
fa_smtp_smarthost(const fa_str_t *name)
{
    return fa_smtp_smarthost_in(fa_smtp_main_conf(), name);
}

/* "relay via NAME (HOST:PORT)": what the queue entry records for the relay */
fa_int_t
fa_smtp_relay_reason(fa_pool_t *pool, const fa_str_t *name, fa_str_t *reason)
{
    const fa_str_t  *host = fa_smtp_smarthost(name);
    size_t           size;

    if (host == NULL) {
        return FA_DECLINED;
    }
    size = name->len + host->len + sizeof("relay via  ()");
    if ((reason->data = fa_pnalloc(pool, size)) == NULL) {
        return FA_ERROR;
    }
    reason->len = fa_snprintf((char *) reason->data, size, "relay via %.*s (%.*s)",
                              (int) name->len, name->data, (int) host->len, host->data);
    return FA_OK;
}

/* domain NAME { relay_to SMARTHOST; }: mail for NAME is relayed, from anyone */
static char *
fa_smtp_relay_to_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_smtp_conf_t  *scf = conf;

    (void) cmd;
    scf->relay_to = cf->args[1];
    scf->relay_to_file = cf->file;
    scf->relay_to_line = cf->line;
    return FA_CONF_OK;
}

/* a relay domain's smarthost is declared (after the whole file is read) */
static fa_int_t
fa_smtp_check_domain(fa_cycle_t *cycle, fa_conf_scope_t *scope, void *data)
{
    fa_conf_t       *cf = data;
    fa_smtp_conf_t  *d;

    if (!scope->own[fa_smtp_module.index]
        || (d = fa_scope_conf(scope, fa_smtp_module)) == NULL || d->relay_to.len == 0)
    {
        return FA_OK;
    }
    if (fa_smtp_smarthost_in(fa_scope_conf(cycle->root, fa_smtp_module), &d->relay_to)
        == NULL)
    {
        cf->file = d->relay_to_file;
        cf->line = d->relay_to_line;
        fa_conf_error(cf, "relay_to: no \"smarthost %.*s HOST[:PORT];\" in the smtp block",
                      (int) d->relay_to.len, d->relay_to.data);
        return FA_ERROR;
    }
    return FA_OK;
}


/* ---- phase chains: registered by other modules' init_conf ---- */

fa_int_t
fa_smtp_handler_add(fa_conf_t *cf, fa_smtp_phase_t phase, fa_smtp_handler_pt handler,
    void *data)
{
    fa_smtp_conf_t     *main = fa_conf_get(cf, cf->cycle->root, &fa_smtp_module);
    fa_smtp_handler_t  *h;

    if (main == NULL || phase >= FA_SMTP_NPHASES) {
        return FA_ERROR;
    }
    if (main->chains[phase] == NULL
        && (main->chains[phase] = fa_array_create(cf->pool, 2, sizeof(*h))) == NULL)
    {
        return FA_ERROR;
    }
    if ((h = fa_array_push(main->chains[phase])) == NULL) {
        return FA_ERROR;
    }
    h->handler = handler;
    h->data = data;
    return FA_OK;
}

fa_smtp_conf_t *
fa_smtp_main_conf(void)
{
    return fa_scope_conf(fa_cycle->root, fa_smtp_module);
}


/* ---- per-domain policy ---- */

fa_smtp_conf_t *
fa_smtp_domain_conf(const fa_str_t *domain)
{
    fa_conf_scope_t  *scope = fa_conf_domain(fa_cycle, domain);

    if (scope == NULL || !scope->own[fa_smtp_module.index]) {
        return NULL;
    }
    return fa_scope_conf(scope, fa_smtp_module);
}

size_t
fa_smtp_domain_max_size(fa_smtp_session_t *s, const fa_str_t *domain)
{
    fa_smtp_conf_t  *d = fa_smtp_domain_conf(domain);

    return d && d->max_message_size != FA_CONF_UNSET_SIZE
           ? d->max_message_size : fa_smtp_priv(s)->conf->max_message_size;
}

fa_int_t
fa_smtp_domain_max_recipients(fa_smtp_session_t *s, const fa_str_t *domain)
{
    fa_smtp_conf_t  *d = fa_smtp_domain_conf(domain);

    return d && d->max_recipients != FA_CONF_UNSET
           ? d->max_recipients : fa_smtp_priv(s)->conf->max_recipients;
}

fa_uint_t
fa_smtp_domain_unknown_users(fa_smtp_session_t *s, const fa_str_t *domain)
{
    fa_smtp_conf_t  *d = fa_smtp_domain_conf(domain);

    return d && d->unknown_users != FA_CONF_UNSET_UINT
           ? d->unknown_users : fa_smtp_priv(s)->conf->unknown_users;
}
