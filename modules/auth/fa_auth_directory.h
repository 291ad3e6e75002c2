/*
 * The user and domain directory: which domains are local, who the users
 * are (with their password hashes and quotas), and which addresses are
 * aliases, including catch-alls ("@example.org").
 *
 * It lives in its own LMDB environment (auth_directory PATH;), so the
 * server's workers read it concurrently with facteurctl writing it: LMDB
 * readers never wait and see a consistent snapshot.  Reads are mmap lookups
 * of microseconds, done in the event loop; writes come from facteurctl.
 *
 * Addresses are normalised once, here: the domain and the local part are
 * lower-cased (local parts are case-insensitive, as Postfix and Dovecot treat
 * them by default), and "local+detail@domain" resolves to the user "local"
 * with detail "detail".
 */

#ifndef FA_AUTH_DIRECTORY_H
#define FA_AUTH_DIRECTORY_H

#include "fa_core.h"

#define FA_AUTH_EXISTS      -200     /* already there */
#define FA_AUTH_NOTFOUND    -201     /* no such domain, user or alias */
#define FA_AUTH_INVALID     -202     /* malformed address or domain */
#define FA_AUTH_NODOMAIN    -203     /* the domain is not local */
#define FA_AUTH_NOTEMPTY    -204     /* a domain that still has users or aliases */

#define FA_AUTH_ADDRESS_MAX  320     /* 64 + "@" + 255 */
#define FA_AUTH_ALIAS_TARGETS_MAX  1000

typedef struct fa_auth_dir_s  fa_auth_dir_t;

/* the map a new directory starts with; it doubles when full (tests shrink it) */
extern size_t  fa_auth_dir_map_size;

typedef struct {
    fa_str_t    address;         /* canonical "local@domain" */
    fa_str_t    password;        /* the stored hash, e.g. "$y$..." */
    uint64_t    quota_bytes;     /* 0: the domain's or no limit */
    uint64_t    quota_messages;
    unsigned    disabled:1;
} fa_auth_user_t;

typedef enum {
    FA_AUTH_RESOLVED_USER,       /* deliver to user (folder detail, if it exists) */
    FA_AUTH_RESOLVED_ALIAS       /* deliver to each target instead */
} fa_auth_resolved_kind_t;

typedef struct {
    fa_auth_resolved_kind_t  kind;
    fa_str_t                 user;       /* for USER: canonical address */
    fa_str_t                 detail;     /* "+detail" part, empty if none */
    fa_str_t                *targets;    /* for ALIAS */
    fa_uint_t                ntargets;
} fa_auth_resolved_t;

typedef int (*fa_auth_each_pt)(void *data, const fa_str_t *key, const fa_str_t *value);

fa_auth_dir_t *fa_auth_dir_open(const char *path, int readonly, fa_log_t *log);

/* the directory this configuration uses ("auth_directory", default var/auth) */
const char *fa_auth_dir_path(fa_cycle_t *cycle);
void fa_auth_dir_close(fa_auth_dir_t *d);

/* "User@Example.ORG" -> "user@example.org"; FA_AUTH_INVALID if malformed */
fa_int_t fa_auth_address_normalize(fa_pool_t *pool, const fa_str_t *in, fa_str_t *out);
fa_int_t fa_auth_domain_normalize(fa_pool_t *pool, const fa_str_t *in, fa_str_t *out);

fa_int_t fa_auth_domain_add(fa_auth_dir_t *d, const fa_str_t *domain);
fa_int_t fa_auth_domain_del(fa_auth_dir_t *d, const fa_str_t *domain);
fa_int_t fa_auth_domain_exists(fa_auth_dir_t *d, const fa_str_t *domain);
fa_int_t fa_auth_domain_list(fa_auth_dir_t *d, fa_auth_each_pt fn, void *data);

fa_int_t fa_auth_user_add(fa_auth_dir_t *d, const fa_str_t *address, const char *hash);
fa_int_t fa_auth_user_del(fa_auth_dir_t *d, const fa_str_t *address);
fa_int_t fa_auth_user_set_password(fa_auth_dir_t *d, const fa_str_t *address,
    const char *hash);
fa_int_t fa_auth_user_get(fa_auth_dir_t *d, const fa_str_t *address, fa_pool_t *pool,
    fa_auth_user_t *out);
/* the user's own quota, 0 for "the domain's default" (fa_auth_quota.h) */
fa_int_t fa_auth_user_set_quota(fa_auth_dir_t *d, const fa_str_t *address, uint64_t bytes,
    uint64_t messages);
/* users of one domain (domain given) or all; value is the stored record */
fa_int_t fa_auth_user_list(fa_auth_dir_t *d, const fa_str_t *domain, fa_auth_each_pt fn,
    void *data);

/* address is "local@domain" or "@domain" (catch-all); targets are addresses */
fa_int_t fa_auth_alias_add(fa_auth_dir_t *d, const fa_str_t *address, const fa_str_t *target);
fa_int_t fa_auth_alias_del(fa_auth_dir_t *d, const fa_str_t *address,
    const fa_str_t *target);                   /* NULL target: the whole alias */
/* value is the targets, one per line */
fa_int_t fa_auth_alias_list(fa_auth_dir_t *d, const fa_str_t *domain, fa_auth_each_pt fn,
    void *data);

/*
 * Where mail for an address goes: a user (exact, then without +detail), an
 * alias, the domain's catch-all; FA_AUTH_NODOMAIN if the domain is not local,
 * FA_AUTH_NOTFOUND if it is local but nobody answers to the address.
 */
fa_int_t fa_auth_resolve(fa_auth_dir_t *d, const fa_str_t *address, fa_pool_t *pool,
    fa_auth_resolved_t *out);

const char *fa_auth_strerror(fa_int_t rc);

#endif /* FA_AUTH_DIRECTORY_H */
