/*
 * The user and domain directory: normalisation, domains, users, aliases,
 * catch-all and user+detail resolution, on a real LMDB environment in a
 * temporary directory.
 */

#include "fa_core.h"
#include "fa_auth_directory.h"
#include "fa_test.h"

static fa_pool_t  *pool;

static fa_str_t
S(const char *text)
{
    fa_str_t  r = { strlen(text), (u_char *) text };
    return r;
}

static int
norm_is(const char *in, const char *want)
{
    fa_str_t  s = S(in), out;
    fa_int_t  rc = fa_auth_address_normalize(pool, &s, &out);

    if (want == NULL) {
        return rc == FA_AUTH_INVALID;
    }
    return rc == FA_OK && out.len == strlen(want) && memcmp(out.data, want, out.len) == 0;
}

static void
test_normalize(void)
{
    char  local65[80];

    ok(norm_is("User@Example.ORG", "user@example.org"), "lower-cased");
    ok(norm_is("first.last+tag@sub.example.org", "first.last+tag@sub.example.org"),
       "dots and plus");
    ok(norm_is("@example.org", "@example.org"), "catch-all form");
    ok(norm_is("no-at-sign", NULL), "no @");
    ok(norm_is("a@@example.org", NULL), "two @");
    ok(norm_is(".a@example.org", NULL), "leading dot");
    ok(norm_is("a..b@example.org", NULL), "double dot");
    ok(norm_is("a@-example.org", NULL), "label starting with -");
    ok(norm_is("a@example-.org", NULL), "label ending with -");
    ok(norm_is("a@example..org", NULL), "empty label");
    ok(norm_is("a b@example.org", NULL), "space in the local part");
    ok(norm_is("a@exa mple.org", NULL), "space in the domain");
    memset(local65, 'x', 65);
    strcpy(local65 + 65, "@example.org");
    ok(norm_is(local65, NULL), "local part over 64 bytes");
    ok(norm_is("x@e", "x@e"), "single-label domain");
}

static int
count(void *data, const fa_str_t *key, const fa_str_t *value)
{
    (void) key;
    (void) value;
    (*(int *) data)++;
    return 0;
}

static int
resolves_to_user(fa_auth_dir_t *d, const char *addr, const char *user, const char *detail)
{
    fa_auth_resolved_t  r;
    fa_str_t            a = S(addr);

    return fa_auth_resolve(d, &a, pool, &r) == FA_OK && r.kind == FA_AUTH_RESOLVED_USER
           && r.user.len == strlen(user) && memcmp(r.user.data, user, r.user.len) == 0
           && r.detail.len == strlen(detail)
           && (r.detail.len == 0 || memcmp(r.detail.data, detail, r.detail.len) == 0);
}

static int
resolves_to_alias(fa_auth_dir_t *d, const char *addr, fa_uint_t ntargets, const char *first)
{
    fa_auth_resolved_t  r;
    fa_str_t            a = S(addr);

    return fa_auth_resolve(d, &a, pool, &r) == FA_OK && r.kind == FA_AUTH_RESOLVED_ALIAS
           && r.ntargets == ntargets && r.targets[0].len == strlen(first)
           && memcmp(r.targets[0].data, first, r.targets[0].len) == 0;
}

static void
test_directory(fa_auth_dir_t *d)
{
    fa_str_t        dom = S("example.org"), alice = S("alice@example.org");
    fa_str_t        bob = S("bob@example.org"), list = S("list@example.org");
    fa_str_t        all = S("@example.org"), other = S("eve@other.net");
    fa_auth_user_t  u;
    fa_auth_resolved_t r;
    int             n = 0;

    is_int(fa_auth_user_add(d, &alice, "$y$x"), FA_AUTH_NODOMAIN, "no user before its domain");
    is_int(fa_auth_domain_add(d, &dom), FA_OK, "domain added");
    is_int(fa_auth_domain_add(d, &dom), FA_AUTH_EXISTS, "domain added twice");
    is_int(fa_auth_domain_exists(d, &dom), FA_OK, "domain exists");
    is_int(fa_auth_user_add(d, &alice, "$y$first"), FA_OK, "user added");
    is_int(fa_auth_user_add(d, &alice, "$y$again"), FA_AUTH_EXISTS, "user added twice");
    is_int(fa_auth_user_add(d, &bob, "bad\nhash"), FA_AUTH_INVALID, "a hash with a newline");
    is_int(fa_auth_user_add(d, &bob, "$y$bob"), FA_OK, "second user");
    is_int(fa_auth_user_get(d, &alice, pool, &u), FA_OK, "user read back");
    ok(strcmp((char *) u.password.data, "$y$first") == 0, "password hash stored");
    is_int(fa_auth_user_set_password(d, &alice, "$y$second"), FA_OK, "password changed");
    fa_auth_user_get(d, &alice, pool, &u);
    ok(strcmp((char *) u.password.data, "$y$second") == 0, "new hash stored");
    is_int(fa_auth_user_set_password(d, &other, "$y$x"), FA_AUTH_NODOMAIN,
           "password of a user in an unknown domain");
    fa_auth_user_list(d, &dom, count, &n);
    is_int(n, 2, "two users listed in the domain");

    is_int(fa_auth_alias_add(d, &list, &alice), FA_OK, "alias target 1");
    is_int(fa_auth_alias_add(d, &list, &other), FA_OK, "alias target 2 (remote)");
    is_int(fa_auth_alias_add(d, &list, &other), FA_AUTH_EXISTS, "same target twice");
    is_int(fa_auth_alias_add(d, &all, &bob), FA_OK, "catch-all");

    ok(resolves_to_user(d, "alice@example.org", "alice@example.org", ""), "user");
    ok(resolves_to_user(d, "ALICE@Example.Org", "alice@example.org", ""), "case-insensitive");
    ok(resolves_to_user(d, "alice+lists@example.org", "alice@example.org", "lists"),
       "user+detail");
    ok(resolves_to_alias(d, "list@example.org", 2, "alice@example.org"), "alias, 2 targets");
    ok(resolves_to_alias(d, "nobody@example.org", 1, "bob@example.org"),
       "unknown local part goes to the catch-all");
    fa_str_t nowhere = S("x@elsewhere.org");
    is_int(fa_auth_resolve(d, &nowhere, pool, &r), FA_AUTH_NODOMAIN, "non-local domain");

    is_int(fa_auth_alias_del(d, &list, &alice), FA_OK, "one target removed");
    ok(resolves_to_alias(d, "list@example.org", 1, "eve@other.net"), "the other remains");
    is_int(fa_auth_alias_del(d, &list, &alice), FA_AUTH_NOTFOUND, "removed twice");
    is_int(fa_auth_alias_del(d, &all, NULL), FA_OK, "catch-all removed");
    fa_str_t stranger = S("stranger@example.org");
    is_int(fa_auth_resolve(d, &stranger, pool, &r), FA_AUTH_NOTFOUND,
           "without a catch-all, unknown users are not found");

    is_int(fa_auth_domain_del(d, &dom), FA_AUTH_NOTEMPTY, "a domain with users stays");
    fa_auth_user_del(d, &alice);
    fa_auth_user_del(d, &bob);
    is_int(fa_auth_user_del(d, &bob), FA_AUTH_NOTFOUND, "user deleted twice");
    fa_auth_alias_del(d, &list, NULL);
    is_int(fa_auth_domain_del(d, &dom), FA_OK, "an empty domain is deleted");
    n = 0;
    fa_auth_domain_list(d, count, &n);
    is_int(n, 0, "no domains left");
}

/*
 * A directory whose map starts tiny must grow as users are added: every
 * write that hits MDB_MAP_FULL (in the put or in the commit) is retried in
 * a bigger map, and nothing is lost or freed twice on the way.
 */
static void
test_map_growth(const char *dir)
{
    char            path[64], name[64];
    fa_auth_dir_t  *d;
    fa_str_t        dom = S("grow.example"), user;
    fa_auth_user_t  u;
    int             added = 0, found = 0;
    size_t          saved = fa_auth_dir_map_size;

    fa_snprintf(path, sizeof(path), "%s/small", dir);
    fa_auth_dir_map_size = 32 * 1024;
    d = fa_auth_dir_open(path, 0, &fa_log_stderr);
    fa_auth_dir_map_size = saved;
    ok(d != NULL, "a directory with a 32 KB map");
    if (d == NULL) {
        return;
    }
    fa_auth_domain_add(d, &dom);
    for (int i = 0; i < 3000; i++) {
        user.len = fa_snprintf(name, sizeof(name), "user%04d@grow.example", i);
        user.data = (u_char *) name;
        added += fa_auth_user_add(d, &user, "$y$j9T$0123456789abcdef$0123456789abcdef0123456789abcdef012") == FA_OK;
    }
    is_int(added, 3000, "3,000 users added through several map growths");
    for (int i = 0; i < 3000; i += 7) {
        user.len = fa_snprintf(name, sizeof(name), "user%04d@grow.example", i);
        user.data = (u_char *) name;
        found += fa_auth_user_get(d, &user, pool, &u) == FA_OK;
    }
    is_int(found, 429, "and every one reads back");
    fa_auth_dir_close(d);
}

int
main(void)
{
    char            dir[] = "/tmp/facteur-authdir-XXXXXX";
    char            path[64], cmd[128];
    fa_auth_dir_t  *d;

    pool = fa_pool_create(4096, &fa_log_stderr);
    test_normalize();
    if (mkdtemp(dir) == NULL) {
        ok(0, "mkdtemp");
        return done_testing();
    }
    fa_snprintf(path, sizeof(path), "%s/dir", dir);
    d = fa_auth_dir_open(path, 0, &fa_log_stderr);
    ok(d != NULL, "directory created");
    if (d) {
        test_directory(d);
        fa_auth_dir_close(d);
    }
    d = fa_auth_dir_open(path, 1, &fa_log_stderr);
    ok(d != NULL, "directory reopened read-only");
    fa_auth_dir_close(d);
    test_map_growth(dir);
    fa_snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    (void) !system(cmd);
    fa_pool_destroy(pool);
    return done_testing();
}
