/*
 * The directory in LMDB (see fa_auth_directory.h).
 *
 * Keys are "domain\0local" rather than "local@domain" so that everything of
 * one domain is one contiguous key range: listing a domain, or checking that
 * it is empty before deleting it, is a range scan, not a full scan.  A
 * catch-all is the empty local part, "domain\0".
 *
 * Records are "name=value" lines: readable with mdb_dump, and a field added
 * later is simply absent from older records.
 */

#include "fa_core.h"
#include "fa_auth_directory.h"
#include "fa_auth_directory_lmdb.h"
#include <sys/stat.h>

size_t  fa_auth_dir_map_size = 64 * 1024 * 1024;   /* grows when full */


static const char *const  fa_auth_errors[] = {
    "already exists", "not found", "invalid address or domain",
    "domain is not local", "domain still has users or aliases",
};

const char *
fa_auth_strerror(fa_int_t rc)
{
    if (rc <= FA_AUTH_EXISTS && rc >= FA_AUTH_NOTEMPTY) {
        return fa_auth_errors[FA_AUTH_EXISTS - rc];
    }
    return rc == FA_OK ? "ok" : "internal error (see the log)";
}

/* ---- addresses ---- */

static int
fa_auth_atext(u_char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch >= 0x80
           || strchr("!#$%&'*+/=?^_`{|}~-", ch) != NULL;
}

static fa_int_t
fa_auth_local_valid(const u_char *p, size_t n)
{
    if (n == 0 || n > 64 || p[0] == '.' || p[n - 1] == '.') {
        return FA_AUTH_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '.' ? p[i + 1] == '.' : !fa_auth_atext(p[i])) {
            return FA_AUTH_INVALID;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_auth_domain_valid(const u_char *p, size_t n)
{
    size_t  label = 0;

    if (n == 0 || n > 253 || p[0] == '.' || p[n - 1] == '.') {
        return FA_AUTH_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        u_char ch = p[i];
        if (ch == '.') {
            if (label == 0 || p[i - 1] == '-') {
                return FA_AUTH_INVALID;
            }
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch >= 0x80
                   || (ch == '-' && label > 0))
        {
            if (++label > 63) {
                return FA_AUTH_INVALID;
            }
        } else {
            return FA_AUTH_INVALID;
        }
    }
    return p[n - 1] == '-' ? FA_AUTH_INVALID : FA_OK;
}

static fa_int_t
fa_auth_lower_copy(fa_pool_t *pool, const fa_str_t *in, fa_str_t *out)
{
    out->data = fa_pnalloc(pool, in->len + 1);
    if (out->data == NULL) {
        return FA_ERROR;
    }
    fa_strlow(out->data, in->data, in->len);
    out->data[in->len] = '\0';
    out->len = in->len;
    return FA_OK;
}

fa_int_t
fa_auth_domain_normalize(fa_pool_t *pool, const fa_str_t *in, fa_str_t *out)
{
    if (fa_auth_lower_copy(pool, in, out) != FA_OK) {
        return FA_ERROR;
    }
    return fa_auth_domain_valid(out->data, out->len);
}

/* accepts "@domain" too: the caller decides whether a catch-all is allowed */
fa_int_t
fa_auth_address_normalize(fa_pool_t *pool, const fa_str_t *in, fa_str_t *out)
{
    u_char  *at;
    size_t   local;

    if (in->len == 0 || in->len > FA_AUTH_ADDRESS_MAX
        || fa_auth_lower_copy(pool, in, out) != FA_OK)
    {
        return in->len == 0 || in->len > FA_AUTH_ADDRESS_MAX ? FA_AUTH_INVALID : FA_ERROR;
    }
    at = memrchr(out->data, '@', out->len);
    if (at == NULL) {
        return FA_AUTH_INVALID;
    }
    local = (size_t) (at - out->data);
    if ((local && fa_auth_local_valid(out->data, local) != FA_OK)
        || fa_auth_domain_valid(at + 1, out->len - local - 1) != FA_OK)
    {
        return FA_AUTH_INVALID;
    }
    return FA_OK;
}

/* "local@domain" (normalised) -> key "domain\0local" in buf */
MDB_val
fa_auth_key(const fa_str_t *address, u_char *buf)
{
    u_char   *at = memrchr(address->data, '@', address->len);
    size_t    local = (size_t) (at - address->data);
    size_t    domain = address->len - local - 1;
    MDB_val   key;

    memcpy(buf, at + 1, domain);
    buf[domain] = '\0';
    memcpy(buf + domain + 1, address->data, local);
    key.mv_data = buf;
    key.mv_size = domain + 1 + local;
    return key;
}

/* ---- the environment ---- */

fa_int_t
fa_auth_lmdb_error(fa_auth_dir_t *d, int rc, const char *what)
{
    fa_log_error(FA_LOG_ERR, d->log, 0, "auth directory: %s: %s", what, mdb_strerror(rc));
    return FA_ERROR;
}

fa_auth_dir_t *
fa_auth_dir_open(const char *path, int readonly, fa_log_t *log)
{
    fa_auth_dir_t  *d;
    MDB_txn        *txn;
    unsigned        flags = MDB_NOTLS | (readonly ? MDB_RDONLY : 0);
    int             rc, dead;

    d = fa_calloc(sizeof(fa_auth_dir_t), log);
    if (d == NULL) {
        return NULL;
    }
    d->log = log;
    if (!readonly && mkdir(path, 0750) == -1 && errno != EEXIST) {
        fa_log_error(FA_LOG_ERR, log, errno, "auth directory: mkdir(\"%s\") failed", path);
        free(d);
        return NULL;
    }
    if ((rc = mdb_env_create(&d->env)) != 0
        || (rc = mdb_env_set_maxdbs(d->env, 4)) != 0
        || (rc = mdb_env_set_mapsize(d->env, fa_auth_dir_map_size)) != 0
        || (rc = mdb_env_open(d->env, path, flags, 0640)) != 0
        || (rc = mdb_reader_check(d->env, &dead)) != 0
        || (rc = mdb_txn_begin(d->env, NULL, readonly ? MDB_RDONLY : 0, &txn)) != 0)
    {
        fa_log_error(FA_LOG_ERR, log, 0, "auth directory \"%s\": %s", path, mdb_strerror(rc));
        fa_auth_dir_close(d);
        return NULL;
    }
    flags = readonly ? 0 : MDB_CREATE;
    rc = mdb_dbi_open(txn, "domains", flags, &d->domains);
    rc = rc ? rc : mdb_dbi_open(txn, "users", flags, &d->users);
    rc = rc ? rc : mdb_dbi_open(txn, "aliases", flags, &d->aliases);
    if ((rc = fa_auth_txn_end(txn, rc)) != 0) {
        fa_log_error(FA_LOG_ERR, log, 0, "auth directory \"%s\": %s", path, mdb_strerror(rc));
        fa_auth_dir_close(d);
        return NULL;
    }
    return d;
}

void
fa_auth_dir_close(fa_auth_dir_t *d)
{
    if (d == NULL) {
        return;
    }
    if (d->env) {
        mdb_env_close(d->env);
    }
    free(d);
}

/* ---- generic record access ---- */

/*
 * End a write transaction: commit after a successful change, abort after a
 * failed one.  mdb_txn_commit frees the transaction even when it fails, so
 * nothing may abort it afterwards.
 */
int
fa_auth_txn_end(MDB_txn *txn, int rc)
{
    if (rc != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

typedef enum { FA_AUTH_PUT_NEW, FA_AUTH_PUT_REPLACE, FA_AUTH_PUT_EXISTING } fa_auth_put_t;

/* one write in its own transaction; the map doubles when it is full */
static fa_int_t
fa_auth_put(fa_auth_dir_t *d, MDB_dbi dbi, MDB_val *key, MDB_val *val, fa_auth_put_t how)
{
    MDB_txn    *txn;
    MDB_val     old;
    MDB_envinfo info;
    int         rc;

    for (int tries = 0; tries < 8; tries++) {
        if ((rc = mdb_txn_begin(d->env, NULL, 0, &txn)) != 0) {
            return fa_auth_lmdb_error(d, rc, "begin");
        }
        rc = mdb_get(txn, dbi, key, &old);
        if (how == FA_AUTH_PUT_NEW && rc == 0) {
            mdb_txn_abort(txn);
            return FA_AUTH_EXISTS;
        }
        if (how == FA_AUTH_PUT_EXISTING && rc == MDB_NOTFOUND) {
            mdb_txn_abort(txn);
            return FA_AUTH_NOTFOUND;
        }
        rc = fa_auth_txn_end(txn, mdb_put(txn, dbi, key, val, 0));
        if (rc == 0) {
            return FA_OK;
        }
        if (rc != MDB_MAP_FULL) {
            return fa_auth_lmdb_error(d, rc, "write");
        }
        mdb_env_info(d->env, &info);
        if ((rc = mdb_env_set_mapsize(d->env, info.me_mapsize * 2)) != 0) {
            return fa_auth_lmdb_error(d, rc, "growing the map");
        }
    }
    return FA_ERROR;
}

fa_int_t
fa_auth_delete(fa_auth_dir_t *d, MDB_dbi dbi, MDB_val *key)
{
    MDB_txn  *txn;
    int       rc;

    if ((rc = mdb_txn_begin(d->env, NULL, 0, &txn)) != 0) {
        return fa_auth_lmdb_error(d, rc, "begin");
    }
    rc = mdb_del(txn, dbi, key, NULL);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return FA_AUTH_NOTFOUND;
    }
    rc = fa_auth_txn_end(txn, rc);
    if (rc != 0) {
        return fa_auth_lmdb_error(d, rc, "delete");
    }
    return FA_OK;
}

/* copy a record out of a read transaction into the pool (NUL-terminated) */
fa_int_t
fa_auth_get(fa_auth_dir_t *d, MDB_dbi dbi, MDB_val *key, fa_pool_t *pool, fa_str_t *out)
{
    MDB_txn  *txn;
    MDB_val   val;
    int       rc;

    if ((rc = mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn)) != 0) {
        return fa_auth_lmdb_error(d, rc, "begin");
    }
    rc = mdb_get(txn, dbi, key, &val);
    if (rc == 0 && pool) {
        out->data = fa_pnalloc(pool, val.mv_size + 1);
        if (out->data) {
            memcpy(out->data, val.mv_data, val.mv_size);
            out->data[val.mv_size] = '\0';
            out->len = val.mv_size;
        }
    }
    mdb_txn_abort(txn);
    if (rc == MDB_NOTFOUND) {
        return FA_AUTH_NOTFOUND;
    }
    if (rc != 0) {
        return fa_auth_lmdb_error(d, rc, "read");
    }
    return (pool && out->data == NULL) ? FA_ERROR : FA_OK;
}

/*
 * Walk the keys starting with prefix (everything when prefix is empty);
 * fn gets the key turned back into "local@domain" form.
 */
static fa_int_t
fa_auth_scan(fa_auth_dir_t *d, MDB_dbi dbi, const u_char *prefix, size_t plen,
    fa_auth_each_pt fn, void *data)
{
    MDB_txn     *txn;
    MDB_cursor  *cur;
    MDB_val      key = { plen, (void *) prefix }, val;
    u_char       name[FA_AUTH_ADDRESS_MAX + 2];
    int          rc, stop = 0;

    if ((rc = mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn)) != 0
        || (rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
    {
        return fa_auth_lmdb_error(d, rc, "scan");
    }
    rc = mdb_cursor_get(cur, &key, &val, plen ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0 && !stop && key.mv_size >= plen && memcmp(key.mv_data, prefix, plen) == 0) {
        u_char   *k = key.mv_data, *nul = memchr(k, '\0', key.mv_size);
        fa_str_t  name_s = { key.mv_size, name }, value = { val.mv_size, val.mv_data };
        if (nul && key.mv_size <= FA_AUTH_ADDRESS_MAX) {     /* domain\0local */
            size_t dl = (size_t) (nul - k), ll = key.mv_size - dl - 1;
            memcpy(name, nul + 1, ll);
            name[ll] = '@';
            memcpy(name + ll + 1, k, dl);
            name_s.len = key.mv_size;
        } else {
            memcpy(name, k, fa_min(key.mv_size, sizeof(name)));
            name_s.len = fa_min(key.mv_size, sizeof(name));
        }
        stop = fn(data, &name_s, &value);
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return (rc == 0 || rc == MDB_NOTFOUND) ? FA_OK : fa_auth_lmdb_error(d, rc, "scan");
}

/* ---- domains ---- */

static MDB_val
fa_auth_str_val(const fa_str_t *s)
{
    MDB_val  v = { s->len, s->data };
    return v;
}

fa_int_t
fa_auth_domain_add(fa_auth_dir_t *d, const fa_str_t *domain)
{
    MDB_val  key = fa_auth_str_val(domain), val = { 0, "" };

    if (fa_auth_domain_valid(domain->data, domain->len) != FA_OK) {
        return FA_AUTH_INVALID;
    }
    return fa_auth_put(d, d->domains, &key, &val, FA_AUTH_PUT_NEW);
}

fa_int_t
fa_auth_domain_exists(fa_auth_dir_t *d, const fa_str_t *domain)
{
    MDB_val  key = fa_auth_str_val(domain);

    return fa_auth_get(d, d->domains, &key, NULL, NULL);
}

static int
fa_auth_found(void *data, const fa_str_t *key, const fa_str_t *value)
{
    (void) key;
    (void) value;
    *(int *) data = 1;
    return 1;
}

fa_int_t
fa_auth_domain_del(fa_auth_dir_t *d, const fa_str_t *domain)
{
    u_char   prefix[256];
    int      used = 0;
    MDB_val  key = fa_auth_str_val(domain);

    if (domain->len >= sizeof(prefix)) {
        return FA_AUTH_INVALID;
    }
    memcpy(prefix, domain->data, domain->len);
    prefix[domain->len] = '\0';
    if (fa_auth_scan(d, d->users, prefix, domain->len + 1, fa_auth_found, &used) != FA_OK
        || fa_auth_scan(d, d->aliases, prefix, domain->len + 1, fa_auth_found, &used) != FA_OK)
    {
        return FA_ERROR;
    }
    if (used) {
        return FA_AUTH_NOTEMPTY;
    }
    return fa_auth_delete(d, d->domains, &key);
}

fa_int_t
fa_auth_domain_list(fa_auth_dir_t *d, fa_auth_each_pt fn, void *data)
{
    return fa_auth_scan(d, d->domains, (u_char *) "", 0, fn, data);
}

/* ---- users ---- */

fa_int_t
fa_auth_address_domain_check(fa_auth_dir_t *d, const fa_str_t *address)
{
    u_char   *at = memrchr(address->data, '@', address->len);
    fa_str_t  domain;

    if (at == NULL) {
        return FA_AUTH_INVALID;
    }
    domain.data = at + 1;
    domain.len = address->len - (size_t) (at + 1 - address->data);
    return fa_auth_domain_exists(d, &domain) == FA_OK ? FA_OK : FA_AUTH_NODOMAIN;
}

static fa_int_t
fa_auth_user_record(const char *hash, uint64_t qbytes, uint64_t qmessages, char *buf,
    size_t size, size_t *len)
{
    if (hash == NULL || strchr(hash, '\n') || strlen(hash) > 1024) {
        return FA_AUTH_INVALID;
    }
    *len = fa_snprintf(buf, size, "password=%s\nquota_bytes=%llu\nquota_messages=%llu\n",
                       hash, (unsigned long long) qbytes, (unsigned long long) qmessages);
    return FA_OK;
}

static fa_int_t
fa_auth_user_write(fa_auth_dir_t *d, const fa_str_t *address, const char *hash,
    uint64_t qbytes, uint64_t qmessages, fa_auth_put_t how)
{
    char      rec[1200];
    u_char    kbuf[FA_AUTH_ADDRESS_MAX + 2];
    size_t    len;
    MDB_val   key, val;
    fa_int_t  rc;

    if (address->len > FA_AUTH_ADDRESS_MAX || memrchr(address->data, '@', address->len) == NULL
        || address->data[0] == '@')
    {
        return FA_AUTH_INVALID;
    }
    if ((rc = fa_auth_address_domain_check(d, address)) != FA_OK
        || (rc = fa_auth_user_record(hash, qbytes, qmessages, rec, sizeof(rec), &len)) != FA_OK)
    {
        return rc;
    }
    key = fa_auth_key(address, kbuf);
    val.mv_data = rec;
    val.mv_size = len;
    return fa_auth_put(d, d->users, &key, &val, how);
}

fa_int_t
fa_auth_user_add(fa_auth_dir_t *d, const fa_str_t *address, const char *hash)
{
    return fa_auth_user_write(d, address, hash, 0, 0, FA_AUTH_PUT_NEW);
}

/*
 * Rewrite a user's record keeping what is not changed: a new hash (NULL:
 * keep it) or a new quota (quota NULL: keep it).  An administrator's tool
 * writes here, one at a time: the read and the write need no transaction.
 */
static fa_int_t
fa_auth_user_update(fa_auth_dir_t *d, const fa_str_t *address, const char *hash,
    const uint64_t *quota)
{
    fa_pool_t       *pool;
    fa_auth_user_t   u;
    fa_int_t         rc = fa_auth_address_domain_check(d, address);

    if (rc != FA_OK) {
        return rc;                       /* no such domain: said before "no such user" */
    }
    if ((pool = fa_pool_create(1024, &fa_log_stderr)) == NULL) {
        return FA_ERROR;
    }
    rc = fa_auth_user_get(d, address, pool, &u);
    if (rc == FA_OK) {
        rc = fa_auth_user_write(d, address, hash ? hash : (char *) u.password.data,
                                quota ? quota[0] : u.quota_bytes,
                                quota ? quota[1] : u.quota_messages, FA_AUTH_PUT_EXISTING);
    }
    fa_pool_destroy(pool);
    return rc;
}

fa_int_t
fa_auth_user_set_password(fa_auth_dir_t *d, const fa_str_t *address, const char *hash)
{
    return hash ? fa_auth_user_update(d, address, hash, NULL) : FA_AUTH_INVALID;
}

/* the user's own quota (0: the domain's default, or none); the password stays */
fa_int_t
fa_auth_user_set_quota(fa_auth_dir_t *d, const fa_str_t *address, uint64_t bytes,
    uint64_t messages)
{
    uint64_t  quota[2] = { bytes, messages };

    return fa_auth_user_update(d, address, NULL, quota);
}

fa_int_t
fa_auth_user_del(fa_auth_dir_t *d, const fa_str_t *address)
{
    u_char   kbuf[FA_AUTH_ADDRESS_MAX + 2];
    MDB_val  key;

    if (address->len > FA_AUTH_ADDRESS_MAX || memrchr(address->data, '@', address->len) == NULL) {
        return FA_AUTH_INVALID;
    }
    key = fa_auth_key(address, kbuf);
    return fa_auth_delete(d, d->users, &key);
}

/* "name=value" lines of a record: the value of one name, or an empty string */
static fa_str_t
fa_auth_field(const fa_str_t *rec, const char *name)
{
    size_t    n = strlen(name);
    u_char   *p = rec->data, *end = rec->data + rec->len, *eol;
    fa_str_t  v = { 0, (u_char *) "" };

    for ( ; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t) (end - p));
        eol = eol ? eol : end;
        if ((size_t) (eol - p) > n && memcmp(p, name, n) == 0 && p[n] == '=') {
            v.data = p + n + 1;
            v.len = (size_t) (eol - v.data);
            break;
        }
    }
    return v;
}

fa_int_t
fa_auth_user_get(fa_auth_dir_t *d, const fa_str_t *address, fa_pool_t *pool,
    fa_auth_user_t *out)
{
    u_char    kbuf[FA_AUTH_ADDRESS_MAX + 2];
    fa_str_t  rec, v;
    MDB_val   key;
    fa_int_t  rc;

    if (address->len > FA_AUTH_ADDRESS_MAX || memrchr(address->data, '@', address->len) == NULL) {
        return FA_AUTH_INVALID;
    }
    key = fa_auth_key(address, kbuf);
    if ((rc = fa_auth_get(d, d->users, &key, pool, &rec)) != FA_OK) {
        return rc;
    }
    memset(out, 0, sizeof(*out));
    out->address = *address;
    out->password = fa_auth_field(&rec, "password");
    v = fa_auth_field(&rec, "quota_bytes");
    out->quota_bytes = (uint64_t) fa_max(fa_atoi(v.data, v.len), 0);
    v = fa_auth_field(&rec, "quota_messages");
    out->quota_messages = (uint64_t) fa_max(fa_atoi(v.data, v.len), 0);
    v = fa_auth_field(&rec, "disabled");
    out->disabled = v.len == 1 && v.data[0] == '1';
    /* last: the NUL takes the place of the line end the fields above needed */
    out->password.data[out->password.len] = '\0';     /* the record is a pool copy */
    return FA_OK;
}

fa_int_t
fa_auth_list_domain(fa_auth_dir_t *d, MDB_dbi dbi, const fa_str_t *domain,
    fa_auth_each_pt fn, void *data)
{
    u_char  prefix[256];

    if (domain == NULL) {
        return fa_auth_scan(d, dbi, (u_char *) "", 0, fn, data);
    }
    if (domain->len >= sizeof(prefix)) {
        return FA_AUTH_INVALID;
    }
    memcpy(prefix, domain->data, domain->len);
    prefix[domain->len] = '\0';
    return fa_auth_scan(d, dbi, prefix, domain->len + 1, fn, data);
}

fa_int_t
fa_auth_user_list(fa_auth_dir_t *d, const fa_str_t *domain, fa_auth_each_pt fn, void *data)
{
    return fa_auth_list_domain(d, d->users, domain, fn, data);
}

