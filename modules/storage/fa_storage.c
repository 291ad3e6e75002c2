/*
 * What every storage backend and every caller of the contract shares:
 * mailbox name rules, UID set lookup, error texts.  Backends live in their
 * own modules (the LMDB backend, plugins/storage_maildir).
 */

#include "fa_core.h"
#include "fa_storage.h"

#define FA_STORAGE_NAME_MAX  32

typedef struct {
    fa_array_t    *stores;        /* main: fa_storage_t, in configuration order */
    fa_str_t       domain_store;  /* domain NAME { storage NAME; } */
    fa_storage_t  *store;         /* that store, found at init_conf */
    const char    *file;          /* where "storage NAME;" was, for errors */
    fa_uint_t      line;
} fa_storage_conf_t;

static char *fa_storage_block(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static char *fa_storage_domain_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf);
static void *fa_storage_create_conf(fa_conf_t *cf);
static fa_int_t fa_storage_init_conf(fa_conf_t *cf);
static fa_int_t fa_storage_init_worker(fa_cycle_t *cycle);

static const fa_command_t  fa_storage_commands[] = {
    { "storage", "main", FA_CONF_TAKE1 | FA_CONF_BLOCK | FA_CONF_MULTI,
      fa_storage_block, 0, NULL },
    /* a domain's users keep their mail in that store (the default otherwise) */
    { "storage", "domain", FA_CONF_TAKE1, fa_storage_domain_set, 0, NULL },
    fa_null_command
};

fa_module_t  fa_storage_module = {
    FA_MODULE_V1, "storage", FA_MODULE_OTHER, fa_storage_commands,
    fa_storage_create_conf, NULL, fa_storage_init_conf,
    NULL, fa_storage_init_worker, fa_storage_close_all, NULL, FA_MODULE_SPARE
};

static void *
fa_storage_create_conf(fa_conf_t *cf)
{
    return fa_pcalloc(cf->pool, sizeof(fa_storage_conf_t));
}

/* storage NAME { ... }: the block's kind is "storage:NAME", the backend's scope */
static char *
fa_storage_block(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_str_t          *name = &cf->args[1];
    fa_conf_scope_t  **kids = cf->scope->children.elts, *scope;
    char              *kind;

    (void) cmd;
    (void) conf;
    if (name->len == 0 || name->len > FA_STORAGE_NAME_MAX) {
        return fa_conf_error(cf, "invalid storage backend name \"%.*s\"",
                             (int) name->len, name->data);
    }
    for (size_t i = 0; i < name->len; i++) {
        u_char ch = name->data[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-')) {
            return fa_conf_error(cf, "invalid storage backend name \"%.*s\" (lower-case "
                                 "letters, digits, \"-\" and \"_\")", (int) name->len,
                                 name->data);
        }
    }
    kind = fa_pnalloc(cf->pool, sizeof("storage:") + name->len);
    if (kind == NULL) {
        return FA_CONF_ERROR;
    }
    fa_snprintf(kind, sizeof("storage:") + name->len, "storage:%.*s", (int) name->len,
                name->data);
    for (fa_uint_t i = 0; i < cf->scope->children.nelts; i++) {
        if (strcmp(kids[i]->kind, kind) == 0) {
            return fa_conf_error(cf, "duplicate \"storage %s\" (first in %s:%lu)",
                                 kind + 8, kids[i]->file, (unsigned long) kids[i]->line);
        }
    }
    return fa_conf_block(cf, kind, &scope);
}

/* domain NAME { storage NAME; }: checked against the stores at init_conf */
static char *
fa_storage_domain_set(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_storage_conf_t  *scf = conf;

    (void) cmd;
    scf->domain_store = cf->args[1];
    scf->file = cf->file;
    scf->line = cf->line;
    return FA_CONF_OK;
}

static fa_module_t *
fa_storage_find_backend(fa_cycle_t *cycle, const char *name)
{
    fa_module_t  **m = cycle->modules.elts;

    for (fa_uint_t i = 0; i < cycle->modules.nelts; i++) {
        const fa_storage_backend_t *b = m[i]->ctx;
        if (m[i]->kind == FA_MODULE_STORAGE && b && b->name && strcmp(b->name, name) == 0) {
            return m[i];
        }
    }
    return NULL;
}

/* "lmdb, maildir": the backends this configuration could use, for errors */
static void
fa_storage_backend_list(fa_cycle_t *cycle, char *buf, size_t size)
{
    fa_module_t  **m = cycle->modules.elts;
    size_t         n = 0;

    buf[0] = '\0';
    for (fa_uint_t i = 0; i < cycle->modules.nelts; i++) {
        const fa_storage_backend_t *b = m[i]->ctx;
        if (m[i]->kind == FA_MODULE_STORAGE && b && b->name && n < size) {
            n += fa_snprintf(buf + n, size - n, "%s%s", n ? ", " : "", b->name);
        }
    }
    if (n == 0) {
        fa_snprintf(buf, size, "none");
    }
}

static fa_int_t
fa_storage_configure(fa_conf_t *cf, fa_storage_conf_t *scf, fa_conf_scope_t *scope)
{
    char           known[256];
    const char    *name = scope->kind + sizeof("storage:") - 1;
    fa_module_t   *m = fa_storage_find_backend(cf->cycle, name);
    fa_storage_t  *st;

    cf->file = scope->file;
    cf->line = scope->line;
    if (m == NULL) {
        fa_storage_backend_list(cf->cycle, known, sizeof(known));
        fa_conf_error(cf, "unknown storage backend \"%s\" (available: %s; a plugin "
                      "must be loaded with load_module first)", name, known);
        return FA_ERROR;
    }
    if (((const fa_storage_backend_t *) m->ctx)->abi != FA_STORAGE_ABI_VERSION) {
        fa_conf_error(cf, "storage backend \"%s\" implements storage ABI %lu, this "
                      "facteur implements %d: rebuild it", name,
                      (unsigned long) ((const fa_storage_backend_t *) m->ctx)->abi,
                      FA_STORAGE_ABI_VERSION);
        return FA_ERROR;
    }
    st = fa_array_push(scf->stores);
    if (st == NULL) {
        return FA_ERROR;
    }
    st->backend = m->ctx;
    st->module = m;
    st->conf = fa_scope_conf(scope, *m);
    st->name.data = (u_char *) name;
    st->name.len = strlen(name);
    st->scope = scope;
    st->cycle = cf->cycle;
    st->log = cf->cycle->log;
    return FA_OK;
}

/* the store a domain block names must be one of the configured ones */
static fa_int_t
fa_storage_domain_check(fa_conf_t *cf, fa_conf_scope_t *scope)
{
    fa_storage_conf_t  *dcf;
    char                name[FA_STORAGE_NAME_MAX + 1];

    if (!scope->own[fa_storage_module.index]
        || (dcf = fa_scope_conf(scope, fa_storage_module)) == NULL
        || dcf->domain_store.len == 0)
    {
        return FA_OK;
    }
    fa_snprintf(name, sizeof(name), "%.*s", (int) fa_min(dcf->domain_store.len,
                FA_STORAGE_NAME_MAX), dcf->domain_store.data);
    dcf->store = dcf->domain_store.len <= FA_STORAGE_NAME_MAX
                 ? fa_storage_get(cf->cycle, name) : NULL;
    if (dcf->store == NULL) {
        cf->file = dcf->file;
        cf->line = dcf->line;
        fa_conf_error(cf, "domain %.*s: no \"storage %.*s { ... }\" block to keep its "
                      "mail in", (int) scope->name.len, scope->name.data,
                      (int) dcf->domain_store.len, dcf->domain_store.data);
        return FA_ERROR;
    }
    return FA_OK;
}

static fa_int_t
fa_storage_init_conf(fa_conf_t *cf)
{
    fa_storage_conf_t  *scf = fa_scope_conf(cf->cycle->root, fa_storage_module);
    fa_conf_scope_t   **kids = cf->cycle->root->children.elts;

    scf->stores = fa_array_create(cf->pool, 2, sizeof(fa_storage_t));
    if (scf->stores == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < cf->cycle->root->children.nelts; i++) {
        if (strncmp(kids[i]->kind, "storage:", 8) == 0
            && fa_storage_configure(cf, scf, kids[i]) != FA_OK)
        {
            return FA_ERROR;
        }
    }
    for (fa_uint_t i = 0; i < cf->cycle->root->children.nelts; i++) {
        if (strcmp(kids[i]->kind, "domain") == 0
            && fa_storage_domain_check(cf, kids[i]) != FA_OK)
        {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

/* a domain's user: "bob@b.test" -> b.test's store, or the default one */
fa_storage_t *
fa_storage_for_user(fa_cycle_t *cycle, const fa_str_t *user)
{
    u_char             *at = user && user->len ? memrchr(user->data, '@', user->len) : NULL;
    fa_str_t            domain;
    fa_conf_scope_t    *scope;
    fa_storage_conf_t  *dcf;

    if (at) {
        domain.data = at + 1;
        domain.len = user->data + user->len - domain.data;
        scope = fa_conf_domain(cycle, &domain);
        if (scope && scope->own[fa_storage_module.index]
            && (dcf = fa_scope_conf(scope, fa_storage_module)) != NULL && dcf->store)
        {
            return dcf->store;
        }
    }
    return fa_storage_get(cycle, NULL);
}

fa_storage_t *
fa_storage_get(fa_cycle_t *cycle, const char *name)
{
    fa_storage_conf_t  *scf = fa_scope_conf(cycle->root, fa_storage_module);
    fa_storage_t       *st;

    if (scf == NULL || scf->stores == NULL || scf->stores->nelts == 0) {
        return NULL;
    }
    st = scf->stores->elts;
    if (name == NULL) {
        return &st[0];
    }
    for (fa_uint_t i = 0; i < scf->stores->nelts; i++) {
        if (fa_str_casecmp(&st[i].name, name) == 0) {
            return &st[i];
        }
    }
    return NULL;
}

/* every configured store, for those that work on all of them (facteurctl check) */
fa_storage_t *
fa_storage_nth(fa_cycle_t *cycle, fa_uint_t i)
{
    fa_storage_conf_t  *scf = fa_scope_conf(cycle->root, fa_storage_module);

    if (scf == NULL || scf->stores == NULL || i >= scf->stores->nelts) {
        return NULL;
    }
    return (fa_storage_t *) scf->stores->elts + i;
}

fa_int_t
fa_storage_open_all(fa_cycle_t *cycle)
{
    fa_storage_conf_t  *scf = fa_scope_conf(cycle->root, fa_storage_module);
    fa_storage_t       *st;

    if (scf == NULL || scf->stores == NULL) {
        return FA_OK;
    }
    st = scf->stores->elts;
    for (fa_uint_t i = 0; i < scf->stores->nelts; i++) {
        st[i].log = cycle->log;
        if (st[i].data == NULL && st[i].backend->open(&st[i], cycle) != FA_OK) {
            fa_log_error(FA_LOG_EMERG, cycle->log, 0, "storage \"%.*s\" failed to open",
                         (int) st[i].name.len, st[i].name.data);
            return FA_ERROR;
        }
    }
    return FA_OK;
}

void
fa_storage_close_all(fa_cycle_t *cycle)
{
    fa_storage_conf_t  *scf = fa_scope_conf(cycle->root, fa_storage_module);
    fa_storage_t       *st;

    if (scf == NULL || scf->stores == NULL) {
        return;
    }
    st = scf->stores->elts;
    for (fa_uint_t i = scf->stores->nelts; i > 0; i--) {
        if (st[i - 1].data && st[i - 1].backend->close) {
            st[i - 1].backend->close(&st[i - 1]);
        }
        st[i - 1].data = NULL;
    }
}

static fa_int_t
fa_storage_init_worker(fa_cycle_t *cycle)
{
    return fa_storage_open_all(cycle);
}

/* length of the UTF-8 sequence at p (at most n bytes), 0 if it is not valid */
static size_t
fa_storage_utf8_len(const u_char *p, size_t n)
{
    size_t    len, i;
    uint32_t  cp;

    if (p[0] < 0x80) {
        return 1;
    } else if ((p[0] & 0xe0) == 0xc0) {
        len = 2; cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3; cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4; cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)
        || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    {
        return 0;
    }
    return len;
}

/* one path component: not empty, not "." or "..", no control or wildcard bytes */
static fa_int_t
fa_storage_component_valid(const u_char *p, size_t n)
{
    if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
        return FA_STORAGE_INVALID;
    }
    for (size_t i = 0; i < n; ) {
        if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '*' || p[i] == '%') {
            return FA_STORAGE_INVALID;
        }
        size_t len = fa_storage_utf8_len(p + i, n - i);
        if (len == 0) {
            return FA_STORAGE_INVALID;
        }
        i += len;
    }
    return FA_OK;
}

/*
 * Names are stored as given (UTF-8, '/' between levels); which names a
 * protocol accepts from a client is decided here, once, for every backend:
 * a backend that maps names to files relies on "." and ".." being refused.
 */
fa_int_t
fa_storage_mailbox_name_valid(const fa_str_t *name)
{
    const u_char  *p = name->data, *end = name->data + name->len, *sep;
    fa_uint_t      depth = 0;

    if (name->len == 0 || name->len > FA_MAILBOX_NAME_MAX) {
        return FA_STORAGE_INVALID;
    }
    while (p <= end) {
        sep = memchr(p, FA_MAILBOX_SEPARATOR, (size_t) (end - p));
        sep = sep ? sep : end;
        if (++depth > FA_MAILBOX_DEPTH_MAX
            || fa_storage_component_valid(p, (size_t) (sep - p)) != FA_OK)
        {
            return FA_STORAGE_INVALID;
        }
        p = sep + 1;
    }
    return FA_OK;
}

int
fa_uid_set_contains(const fa_uid_set_t *set, uint32_t uid)
{
    fa_uint_t  lo = 0, hi = set->nranges;

    while (lo < hi) {                    /* ranges are sorted and disjoint */
        fa_uint_t mid = lo + (hi - lo) / 2;
        if (uid < set->ranges[mid].first) {
            hi = mid;
        } else if (uid > set->ranges[mid].last) {
            lo = mid + 1;
        } else {
            return 1;
        }
    }
    return 0;
}

const char *
fa_storage_strerror(fa_int_t rc)
{
    switch (rc) {
    case FA_OK:                return "ok";
    case FA_STORAGE_NOTFOUND:  return "no such mailbox or message";
    case FA_STORAGE_EXISTS:    return "mailbox already exists";
    case FA_STORAGE_OVERQUOTA: return "quota exceeded";
    case FA_STORAGE_NOSPACE:   return "out of disk space";
    case FA_STORAGE_TEMPFAIL:  return "temporary failure, try again";
    case FA_STORAGE_MODIFIED:  return "modified since the given MODSEQ";
    case FA_STORAGE_CORRUPT:   return "the store is damaged";
    case FA_STORAGE_INVALID:   return "invalid name or argument";
    default:                   return "internal error";
    }
}
