/*
 * Aliases and address resolution (see fa_auth_directory.h): where mail for
 * an address goes.  Alias targets are stored one per line; editing a list
 * is one read-modify-write transaction, so two facteurctl runs adding
 * targets at once cannot lose one.
 */

#include "fa_core.h"
#include "fa_auth_directory.h"
#include "fa_auth_directory_lmdb.h"

static fa_int_t fa_auth_alias_update(fa_auth_dir_t *d, const fa_str_t *address,
    const fa_str_t *target, int add);

fa_int_t
fa_auth_alias_add(fa_auth_dir_t *d, const fa_str_t *address, const fa_str_t *target)
{
    return fa_auth_alias_update(d, address, target, 1);
}

fa_int_t
fa_auth_alias_del(fa_auth_dir_t *d, const fa_str_t *address, const fa_str_t *target)
{
    u_char   kbuf[FA_AUTH_ADDRESS_MAX + 2];
    MDB_val  key;

    if (target) {
        return fa_auth_alias_update(d, address, target, 0);
    }
    if (address->len > FA_AUTH_ADDRESS_MAX || memrchr(address->data, '@', address->len) == NULL) {
        return FA_AUTH_INVALID;
    }
    key = fa_auth_key(address, kbuf);
    return fa_auth_delete(d, d->aliases, &key);
}

fa_int_t
fa_auth_alias_list(fa_auth_dir_t *d, const fa_str_t *domain, fa_auth_each_pt fn, void *data)
{
    return fa_auth_list_domain(d, d->aliases, domain, fn, data);
}

/* is target one of the lines of list? returns its offset, or -1 */
static ssize_t
fa_auth_list_find(const u_char *list, size_t len, const fa_str_t *target)
{
    const u_char  *p = list, *end = list + len, *eol;

    for ( ; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t) (end - p));
        eol = eol ? eol : end;
        if ((size_t) (eol - p) == target->len && memcmp(p, target->data, target->len) == 0) {
            return p - list;
        }
    }
    return -1;
}

/* the new target list in buf (add or remove one line); its length, or an error */
static ssize_t
fa_auth_alias_edit(MDB_val *old, const fa_str_t *target, int add, u_char *buf, size_t size)
{
    const u_char  *list = old ? old->mv_data : (u_char *) "";
    size_t         len = old ? old->mv_size : 0, n = 0;
    ssize_t        at = fa_auth_list_find(list, len, target);

    if (add) {
        if (at >= 0) {
            return FA_AUTH_EXISTS;
        }
        if (len + 1 + target->len > size) {
            return FA_AUTH_INVALID;          /* FA_AUTH_ALIAS_TARGETS_MAX reached */
        }
        memcpy(buf, list, len);
        n = len;
        if (n) {
            buf[n++] = '\n';
        }
        memcpy(buf + n, target->data, target->len);
        return (ssize_t) (n + target->len);
    }
    if (at < 0) {
        return FA_AUTH_NOTFOUND;
    }
    memcpy(buf, list, (size_t) at);                           /* before the line */
    n = (size_t) at;
    size_t after = (size_t) at + target->len + 1;            /* skip line and '\n' */
    if (after < len) {
        memcpy(buf + n, list + after, len - after);
        n += len - after;
    } else if (n > 0) {
        n--;                                                  /* the last line: drop its '\n' */
    }
    return (ssize_t) n;
}

static fa_int_t
fa_auth_alias_update(fa_auth_dir_t *d, const fa_str_t *address, const fa_str_t *target,
    int add)
{
    size_t    size = (size_t) FA_AUTH_ALIAS_TARGETS_MAX * (FA_AUTH_ADDRESS_MAX + 1);
    u_char    kbuf[FA_AUTH_ADDRESS_MAX + 2], *buf;
    MDB_txn  *txn;
    MDB_val   key, old, val;
    ssize_t   n;
    int       rc;

    if (address->len > FA_AUTH_ADDRESS_MAX || memrchr(address->data, '@', address->len) == NULL
        || target->len == 0 || target->len > FA_AUTH_ADDRESS_MAX
        || memchr(target->data, '\n', target->len))
    {
        return FA_AUTH_INVALID;
    }
    if ((rc = (int) fa_auth_address_domain_check(d, address)) != FA_OK) {
        return rc;
    }
    buf = fa_alloc(size, d->log);
    if (buf == NULL) {
        return FA_ERROR;
    }
    key = fa_auth_key(address, kbuf);
    if ((rc = mdb_txn_begin(d->env, NULL, 0, &txn)) != 0) {
        free(buf);
        return fa_auth_lmdb_error(d, rc, "begin");
    }
    rc = mdb_get(txn, d->aliases, &key, &old);
    n = fa_auth_alias_edit(rc == 0 ? &old : NULL, target, add, buf, size);
    if (n < 0) {
        mdb_txn_abort(txn);
        free(buf);
        return n;
    }
    val.mv_data = buf;
    val.mv_size = (size_t) n;
    rc = n ? mdb_put(txn, d->aliases, &key, &val, 0) : mdb_del(txn, d->aliases, &key, NULL);
    rc = fa_auth_txn_end(txn, rc);
    free(buf);
    if (rc != 0) {
        return fa_auth_lmdb_error(d, rc, "alias update");
    }
    return FA_OK;
}

/* ---- resolution ---- */

static fa_int_t
fa_auth_lookup(fa_auth_dir_t *d, MDB_dbi dbi, const fa_str_t *domain, const u_char *local,
    size_t llen, fa_pool_t *pool, fa_str_t *value)
{
    u_char   kbuf[FA_AUTH_ADDRESS_MAX + 2];
    MDB_val  key;

    memcpy(kbuf, domain->data, domain->len);
    kbuf[domain->len] = '\0';
    memcpy(kbuf + domain->len + 1, local, llen);
    key.mv_data = kbuf;
    key.mv_size = domain->len + 1 + llen;
    return fa_auth_get(d, dbi, &key, pool, value);
}

static fa_int_t
fa_auth_targets(fa_pool_t *pool, const fa_str_t *list, fa_auth_resolved_t *out)
{
    fa_uint_t  n = 1;
    u_char    *p = list->data, *end = list->data + list->len, *eol;

    for (size_t i = 0; i < list->len; i++) {
        n += list->data[i] == '\n';
    }
    out->kind = FA_AUTH_RESOLVED_ALIAS;
    out->targets = fa_palloc(pool, n * sizeof(fa_str_t));
    if (out->targets == NULL) {
        return FA_ERROR;
    }
    out->ntargets = 0;
    for ( ; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t) (end - p));
        eol = eol ? eol : end;
        out->targets[out->ntargets].data = p;
        out->targets[out->ntargets++].len = (size_t) (eol - p);
    }
    return FA_OK;
}

static fa_int_t
fa_auth_resolve_local(fa_auth_dir_t *d, const fa_str_t *domain, const u_char *local,
    size_t llen, fa_pool_t *pool, fa_auth_resolved_t *out)
{
    fa_str_t  value;
    fa_int_t  rc;

    rc = fa_auth_lookup(d, d->users, domain, local, llen, NULL, NULL);
    if (rc == FA_OK) {
        out->kind = FA_AUTH_RESOLVED_USER;
        out->user.len = llen + 1 + domain->len;
        out->user.data = fa_pnalloc(pool, out->user.len + 1);
        if (out->user.data == NULL) {
            return FA_ERROR;
        }
        fa_snprintf((char *) out->user.data, out->user.len + 1, "%.*s@%.*s", (int) llen,
                    local, (int) domain->len, domain->data);
        return FA_OK;
    }
    if (rc != FA_AUTH_NOTFOUND) {
        return rc;
    }
    rc = fa_auth_lookup(d, d->aliases, domain, local, llen, pool, &value);
    return rc == FA_OK ? fa_auth_targets(pool, &value, out) : rc;
}

fa_int_t
fa_auth_resolve(fa_auth_dir_t *d, const fa_str_t *address, fa_pool_t *pool,
    fa_auth_resolved_t *out)
{
    fa_str_t   canon, domain;
    u_char    *at, *plus;
    size_t     llen;
    fa_int_t   rc;

    memset(out, 0, sizeof(*out));
    rc = fa_auth_address_normalize(pool, address, &canon);
    if (rc != FA_OK || canon.data[0] == '@') {
        return rc != FA_OK ? rc : FA_AUTH_INVALID;
    }
    at = memrchr(canon.data, '@', canon.len);
    llen = (size_t) (at - canon.data);
    domain.data = at + 1;
    domain.len = canon.len - llen - 1;
    if ((rc = fa_auth_domain_exists(d, &domain)) != FA_OK) {
        return rc == FA_AUTH_NOTFOUND ? FA_AUTH_NODOMAIN : rc;
    }

    rc = fa_auth_resolve_local(d, &domain, canon.data, llen, pool, out);
    if (rc != FA_AUTH_NOTFOUND) {
        return rc;
    }
    plus = memchr(canon.data, '+', llen);
    if (plus && plus > canon.data) {                 /* user+detail@domain */
        rc = fa_auth_resolve_local(d, &domain, canon.data, (size_t) (plus - canon.data),
                                   pool, out);
        if (rc == FA_OK) {
            out->detail.data = plus + 1;
            out->detail.len = (size_t) (at - plus - 1);
        }
        if (rc != FA_AUTH_NOTFOUND) {
            return rc;
        }
    }
    rc = fa_auth_lookup(d, d->aliases, &domain, (u_char *) "", 0, pool, &canon);
    return rc == FA_OK ? fa_auth_targets(pool, &canon, out) : rc;   /* catch-all */
}
