/*
 * Logins and SASL: strict base64, SASL PLAIN and LOGIN decoding, and the
 * asynchronous login service on a real event loop, thread pool and LMDB
 * directory in a temporary directory.  What must hold: the callback comes
 * later from the loop, exactly once, with FA_OK only for the right password
 * of an enabled user named exactly; unknown and disabled users cost a
 * verification too; a cancelled login never calls back.
 */

#include "fa_core.h"
#include "fa_auth_directory.h"
#include "fa_auth_directory_lmdb.h"
#include "fa_auth_password.h"
#include "fa_auth_sasl.h"
#include "fa_auth_login.h"
#include "fa_test.h"

#define PW  "correct horse battery staple"

static fa_core_conf_t  ccf = { .worker_connections = 8 };
static fa_cycle_t      cycle = { .log = &fa_log_stderr, .core_conf = &ccf };
static fa_pool_t      *pool;

static fa_str_t
S(const char *text)
{
    fa_str_t  r = { strlen(text), (u_char *) text };
    return r;
}

static int
str_is(const fa_str_t *s, const char *want, size_t len)
{
    return s->len == len && memcmp(s->data, want, len) == 0 && s->data[len] == '\0';
}

/* ---- base64 ---- */

static void
test_base64_vectors(void)
{
    static const char  *rfc[][2] = {         /* RFC 4648, section 10 */
        { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
    };
    fa_str_t  in, out;

    for (size_t i = 0; i < fa_nelems(rfc); i++) {
        in = S(rfc[i][0]);
        ok(fa_base64_encode(pool, &in, &out) == FA_OK && str_is(&out, rfc[i][1], strlen(rfc[i][1])),
           "encode \"%s\" -> \"%s\"", rfc[i][0], rfc[i][1]);
        in = S(rfc[i][1]);
        ok(fa_base64_decode(pool, &in, &out) == FA_OK && str_is(&out, rfc[i][0], strlen(rfc[i][0])),
           "decode \"%s\" -> \"%s\", NUL-terminated", rfc[i][1], rfc[i][0]);
    }
}

static void
test_base64_round_trip(void)
{
    u_char    bytes[256];
    fa_str_t  in, enc, dec;
    int       good = 0;

    for (int i = 0; i < 256; i++) {
        bytes[i] = (u_char) (255 - i);
    }
    /* every length 0..256, so each padding case meets every byte value */
    for (size_t n = 0; n <= sizeof(bytes); n++) {
        in.data = bytes + sizeof(bytes) - n;
        in.len = n;
        good += fa_base64_encode(pool, &in, &enc) == FA_OK
                && enc.len == (n + 2) / 3 * 4
                && fa_base64_decode(pool, &enc, &dec) == FA_OK
                && dec.len == n && memcmp(dec.data, in.data, n) == 0;
    }
    is_int(good, 257, "binary round trips of 0 to 256 bytes, NULs included");
}

static void
test_base64_malformed(void)
{
    static const char  *bad[] = {
        "=", "==", "===", "====", "Z", "Zg", "Zg=", "Zm9vY", "Zm9vYg=",
        "Z===", "Zg=A", "=Zm9", "Zg==Zg==", "Zm9v====",  /* padding misplaced */
        "Zm9*", "Zm9-", "Zm9_", "Zm9\x80", "Zm9.",         /* not the alphabet */
        " Zm9v", "Zm9v ", "Zm9v\n", "Zm9v\r\n", "Zm 9v", "Zm9v\tYg==", "\nZm9v",
        "Zh==", "Zm9=",                                     /* bits under the pad */
    };
    fa_str_t  in, out = { 7, (u_char *) "unset" };
    int       refused = 0;

    for (size_t i = 0; i < fa_nelems(bad); i++) {
        in = S(bad[i]);
        if (fa_base64_decode(pool, &in, &out) == FA_ERROR) {
            refused++;
        } else {
            printf("# accepted \"%s\"\n", bad[i]);
        }
    }
    is_int(refused, fa_nelems(bad), "%zu malformed inputs refused", fa_nelems(bad));
    ok(out.len == 7, "out is untouched on error");
    in.data = (u_char *) "Zg\0=";
    in.len = 4;
    is_int(fa_base64_decode(pool, &in, &out), FA_ERROR, "an embedded NUL is refused");
}

/* ---- SASL ---- */

static fa_int_t
plain(const char *b64, fa_str_t *z, fa_str_t *c, fa_str_t *p)
{
    fa_str_t  in = S(b64);

    return fa_sasl_plain_decode(pool, &in, z, c, p);
}

/* base64 of authzid NUL authcid NUL password, parts of the given sizes */
static fa_int_t
plain_sized(size_t zlen, size_t clen, size_t plen)
{
    static u_char  msg[2000];
    fa_str_t       in = { zlen + clen + plen + 2, msg }, b64, z, c, p;

    memset(msg, 'z', zlen);
    msg[zlen] = '\0';
    memset(msg + zlen + 1, 'c', clen);
    msg[zlen + 1 + clen] = '\0';
    memset(msg + zlen + clen + 2, 'p', plen);
    if (fa_base64_encode(pool, &in, &b64) != FA_OK) {
        return -100;
    }
    return fa_sasl_plain_decode(pool, &b64, &z, &c, &p);
}

static void
test_sasl_plain(void)
{
    static const char  *bad[] = {
        "dGltAHRhbnN0YWFm",                  /* "tim\0tanstaaf": one NUL */
        "YQBiAGMAZA==",                      /* "a\0b\0c\0d": three NULs */
        "AHRpbQA=",                          /* "\0tim\0": empty password */
        "AABwdw==",                          /* "\0\0pw": empty authcid */
        "AHRpbQB0YW5zdGFhZnRhbnN0YWFm=",     /* bad padding */
        "AHRpbQB0YW5zdGFh ZnRhbnN0YWFm",     /* whitespace */
        "=", "", "*",
    };
    fa_str_t  z, c, p, keep = S("unset");
    int       refused = 0;

    /* the examples of RFC 4616, section 4 */
    is_int(plain("AHRpbQB0YW5zdGFhZnRhbnN0YWFm", &z, &c, &p), FA_OK, "RFC 4616: tim");
    ok(str_is(&z, "", 0) && str_is(&c, "tim", 3) && str_is(&p, "tanstaaftanstaaf", 16),
       "empty authzid, authcid \"tim\", password \"tanstaaftanstaaf\"");
    is_int(plain("VXJzZWwAS3VydAB4aXBqM3BsbXE=", &z, &c, &p), FA_OK, "RFC 4616: Ursel");
    ok(str_is(&z, "Ursel", 5) && str_is(&c, "Kurt", 4) && str_is(&p, "xipj3plmq", 9),
       "authzid \"Ursel\", authcid \"Kurt\", password \"xipj3plmq\"");

    for (size_t i = 0; i < fa_nelems(bad); i++) {
        z = c = p = keep;
        if (plain(bad[i], &z, &c, &p) == FA_ERROR && c.data == keep.data) {
            refused++;
        } else {
            printf("# accepted \"%s\"\n", bad[i]);
        }
    }
    is_int(refused, fa_nelems(bad), "%zu malformed PLAIN messages refused, outputs untouched",
           fa_nelems(bad));

    is_int(plain_sized(0, FA_AUTH_ADDRESS_MAX, FA_AUTH_PASSWORD_MAX), FA_OK,
           "authcid of 320 bytes and password of 511 bytes accepted");
    is_int(plain_sized(FA_AUTH_ADDRESS_MAX, 1, 1), FA_OK, "authzid of 320 bytes accepted");
    is_int(plain_sized(0, FA_AUTH_ADDRESS_MAX + 1, 8), FA_ERROR, "authcid of 321 bytes refused");
    is_int(plain_sized(0, 8, FA_AUTH_PASSWORD_MAX + 1), FA_ERROR, "password of 512 bytes refused");
    is_int(plain_sized(FA_AUTH_ADDRESS_MAX + 1, 8, 8), FA_ERROR, "authzid of 321 bytes refused");
}

static fa_int_t
line(const char *b64, size_t max, fa_str_t *out)
{
    fa_str_t  in = S(b64);

    return fa_sasl_decode_line(pool, &in, max, out);
}

static void
test_sasl_login(void)
{
    fa_str_t  out;

    is_int(line(FA_SASL_LOGIN_USERNAME, 64, &out), FA_OK, "the Username: challenge decodes");
    ok(str_is(&out, "Username:", 9), "to \"Username:\"");
    is_int(line(FA_SASL_LOGIN_PASSWORD, 64, &out), FA_OK, "the Password: challenge decodes");
    ok(str_is(&out, "Password:", 9), "to \"Password:\"");
    is_int(line("VXNlcm5hbWU6", 9, &out), FA_OK, "a line of exactly max bytes");
    is_int(line("VXNlcm5hbWU6", 8, &out), FA_ERROR, "a line over max bytes is refused");
    is_int(line("YWxpY2UAZXZl", 64, &out), FA_ERROR, "a line holding a NUL is refused");
    is_int(line("YWxpY2U", 64, &out), FA_ERROR, "malformed base64 is refused");
    is_int(line("", 64, &out), FA_OK, "an empty line decodes");
    ok(out.len == 0, "to the empty string");
}

/* ---- logins ---- */

typedef struct {
    int         calls;
    fa_int_t    rc;
    char        user[FA_AUTH_ADDRESS_MAX + 1];
    int         had_user;
    double      started;
    double      elapsed;              /* seconds from start to callback */
} result_t;

static int  in_login, calls_inside, completed;

static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
login_cb(void *data, fa_int_t rc, const fa_str_t *user)
{
    result_t  *r = data;

    calls_inside += in_login;
    r->calls++;
    r->rc = rc;
    r->had_user = user != NULL;
    if (user) {
        fa_snprintf(r->user, sizeof(r->user), "%.*s", (int) user->len, user->data);
    }
    r->elapsed = now() - r->started;
    completed++;
}

static fa_int_t
start_n(const char *login, const char *pw, size_t pwlen, result_t *r, fa_auth_login_t **h)
{
    fa_str_t  l = S(login), p = { pwlen, (u_char *) pw };
    fa_int_t  rc;

    memset(r, 0, sizeof(*r));
    r->started = now();
    in_login = 1;
    rc = fa_auth_login(NULL, &l, &p, &fa_log_stderr, login_cb, r, h);
    in_login = 0;
    return rc;
}

static fa_int_t
start(const char *login, const char *pw, result_t *r, fa_auth_login_t **h)
{
    return start_n(login, pw, strlen(pw), r, h);
}

static void
wait_for(int n)
{
    while (completed < n) {
        fa_event_process(&cycle);          /* alarm() ends a hang */
    }
}

/* one login, start to callback */
static fa_int_t
login_n(const char *login, const char *pw, size_t pwlen, result_t *r)
{
    fa_int_t  rc = start_n(login, pw, pwlen, r, NULL);

    if (rc != FA_AGAIN) {
        return rc;
    }
    wait_for(completed + 1);
    return r->calls == 1 ? r->rc : -100;
}

static fa_int_t
login(const char *login, const char *pw, result_t *r)
{
    return login_n(login, pw, strlen(pw), r);
}

/* the directory API has no "disable": write the record as facteurctl will */
static int
add_disabled_user(fa_auth_dir_t *d, const char *address, const char *hash)
{
    u_char    kbuf[FA_AUTH_ADDRESS_MAX + 2];
    char      rec[1200];
    fa_str_t  a = S(address);
    MDB_val   key = fa_auth_key(&a, kbuf), val;
    MDB_txn  *txn;

    val.mv_data = rec;
    val.mv_size = fa_snprintf(rec, sizeof(rec),
                              "password=%s\nquota_bytes=0\nquota_messages=0\ndisabled=1\n", hash);
    if (mdb_txn_begin(d->env, NULL, 0, &txn) != 0) {
        return 0;
    }
    return fa_auth_txn_end(txn, mdb_put(txn, d->users, &key, &val, 0)) == 0;
}

static int
make_directory(const char *path)
{
    char            hash[FA_AUTH_PASSWORD_HASH_SIZE];
    fa_auth_dir_t  *d = fa_auth_dir_open(path, 0, &fa_log_stderr);
    fa_str_t        dom = S("example.org"), alice = S("alice@example.org");
    fa_str_t        broken = S("broken@example.org"), carol = S("carol@example.org");
    fa_auth_user_t  u;
    int             good;

    if (d == NULL || fa_auth_password_hash(PW, strlen(PW), hash, sizeof(hash)) != FA_OK) {
        fa_auth_dir_close(d);
        return 0;
    }
    good = fa_auth_domain_add(d, &dom) == FA_OK
           && fa_auth_user_add(d, &alice, hash) == FA_OK
           && fa_auth_user_add(d, &broken, "{PLAIN}" PW) == FA_OK
           && add_disabled_user(d, "carol@example.org", hash)
           && fa_auth_user_get(d, &carol, pool, &u) == FA_OK && u.disabled;
    fa_auth_dir_close(d);
    return good;
}

static void
test_login_no_directory(const char *path)
{
    result_t          r;
    fa_auth_login_t  *h = (fa_auth_login_t *) &r;

    is_int(start("alice@example.org", PW, &r, &h), FA_ERROR,
           "outside a worker (facteurctl), a login is an error");
    ok(h == NULL, "and no handle is returned");
    is_int(fa_auth_login_init_worker(path, &fa_log_stderr), FA_OK,
           "the login service starts without a directory");
    h = (fa_auth_login_t *) &r;
    is_int(start("alice@example.org", PW, &r, &h), FA_ERROR,
           "a login before the directory exists fails at once");
    ok(h == NULL && r.calls == 0, "without a handle or a callback");
}

static void
test_login_answers(void)
{
    static const char  *declined[][2] = {
        { "alice@example.org", PW "!" }, { "alice@example.org", "Correct horse battery staple" },
        { "nobody@example.org", PW }, { "alice@example.net", PW },
        { "carol@example.org", PW },                 /* disabled */
        { "alice+tag@example.org", PW }, { "@example.org", PW }, { "alice", PW },
        { "", PW }, { "alice@example.org", "" }, { "alice@@example.org", PW },
    };
    char      big[FA_AUTH_PASSWORD_MAX + 2];
    result_t  r;
    fa_int_t  rc;
    int       n = 0;

    is_int(start("alice@example.org", PW, &r, NULL), FA_AGAIN, "a login starts (FA_AGAIN)");
    ok(r.calls == 0, "and does not call back from inside the call");
    wait_for(completed + 1);
    is_int(r.rc, FA_OK, "the right password: FA_OK (the directory was opened lazily)");
    ok(r.had_user && strcmp(r.user, "alice@example.org") == 0, "user is %s", r.user);

    is_int(login("Alice@Example.ORG", PW, &r), FA_OK, "the login is case-insensitive");
    ok(strcmp(r.user, "alice@example.org") == 0, "and user is canonical: %s", r.user);

    for (size_t i = 0; i < fa_nelems(declined); i++) {
        rc = login(declined[i][0], declined[i][1], &r);
        if (rc == FA_DECLINED && !r.had_user) {
            n++;
        } else {
            printf("# \"%s\" / \"%s\": rc %ld\n", declined[i][0], declined[i][1], (long) rc);
        }
    }
    is_int(n, fa_nelems(declined), "wrong password, unknown user or domain, disabled user, "
           "+detail, catch-all, malformed login or empty password: FA_DECLINED, no user");

    memset(big, 'p', sizeof(big));
    is_int(login_n("alice@example.org", big, sizeof(big), &r), FA_DECLINED,
           "an over-long password is declined, not an error");
    is_int(login_n("alice@example.org", PW "\0x", strlen(PW) + 2, &r), FA_DECLINED,
           "a password with a NUL is declined");
    is_int(login("broken@example.org", PW, &r), FA_ERROR,
           "an unusable stored hash is FA_ERROR (logged)");
    ok(!r.had_user, "without a user");
    is_int(calls_inside, 0, "no callback ever ran inside fa_auth_login()");
}

/*
 * No timing oracle: a known user with a wrong password, an unknown user and
 * a disabled one each cost one verification.  The bound is loose (a third)
 * so a busy machine does not fail it; skipping the dummy check would make
 * the unknown user a thousand times faster.
 */
static void
test_login_timing(void)
{
    double    wrong = 0, unknown = 0, disabled = 0;
    result_t  r;

    for (int i = 0; i < 3; i++) {
        login("alice@example.org", "wrong", &r);
        wrong += r.elapsed;
        login("nobody@example.org", "wrong", &r);
        unknown += r.elapsed;
        login("carol@example.org", PW, &r);
        disabled += r.elapsed;
    }
    ok(unknown * 3 > wrong, "an unknown user costs a verification too (%.1f ms vs %.1f ms)",
       unknown * 1000 / 3, wrong * 1000 / 3);
    ok(disabled * 3 > wrong, "a disabled user too (%.1f ms)", disabled * 1000 / 3);
}

static void
test_login_cancel(const char *path)
{
    result_t          r, other, at_exit;
    fa_auth_login_t  *h;

    is_int(start("alice@example.org", PW, &r, &h), FA_AGAIN, "a login to cancel");
    ok(h != NULL, "has a handle");
    fa_auth_login_cancel(h);
    is_int(start("alice@example.org", "wrong", &other, NULL), FA_AGAIN, "another login");
    wait_for(completed + 1);
    is_int(other.calls, 1, "the other login completes");
    is_int(start("nobody@example.org", PW, &at_exit, NULL), FA_AGAIN, "a login left running");
    /* exit joins the threads: whatever was running has now finished */
    fa_auth_login_exit_worker();
    is_int(r.calls, 0, "the cancelled login never called back");
    is_int(at_exit.calls, 0, "a login still running at worker exit is dropped silently");
    is_int(fa_auth_login_init_worker(path, &fa_log_stderr), FA_OK, "restart the service");
}

static void
test_login_concurrent(void)
{
    enum { N = 48 };
    static result_t  r[N];
    static const char  *who[] = { "alice@example.org", "Alice@example.org", "nobody@example.org" };
    int              started = 0, right = 0, base = completed;

    for (int i = 0; i < N; i++) {
        started += start(who[i % 3], (i % 2) ? PW : "nope", &r[i], NULL) == FA_AGAIN;
    }
    is_int(started, N, "%d logins started at once", N);
    wait_for(base + N);
    for (int i = 0; i < N; i++) {
        fa_int_t want = (i % 3 != 2 && i % 2) ? FA_OK : FA_DECLINED;
        right += r[i].calls == 1 && r[i].rc == want;
    }
    is_int(right, N, "each completed once, with its own answer");
}

static void
test_login_busy(const char *path)
{
    result_t          r[5];
    fa_auth_login_t  *h = (fa_auth_login_t *) r;
    int               base = completed, again = 0;

    fa_auth_login_exit_worker();
    fa_auth_login_queue_max = 3;
    is_int(fa_auth_login_init_worker(path, &fa_log_stderr), FA_OK, "a service with a queue of 3");
    fa_auth_login_queue_max = 1024;
    for (int i = 0; i < 3; i++) {
        again += start("alice@example.org", PW, &r[i], NULL) == FA_AGAIN;
    }
    is_int(again, 3, "three logins fill the queue");
    is_int(start("alice@example.org", PW, &r[3], &h), FA_BUSY, "the fourth is FA_BUSY");
    ok(h == NULL, "without a handle");
    wait_for(base + 3);
    is_int(r[3].calls, 0, "a busy login never calls back");
    is_int(start("alice@example.org", PW, &r[4], NULL), FA_AGAIN, "room again once they ended");
    wait_for(base + 4);
    is_int(r[4].rc, FA_OK, "and it logs in");
}

static void
test_logins(const char *dir)
{
    char  path[64];

    fa_time_update();
    if (fa_event_init(&cycle) != FA_OK) {
        ok(0, "event loop");
        return;
    }
    fa_snprintf(path, sizeof(path), "%s/auth", dir);
    test_login_no_directory(path);
    ok(make_directory(path), "a directory with alice, carol (disabled) and broken");
    test_login_answers();
    test_login_timing();
    test_login_cancel(path);
    test_login_concurrent();
    test_login_busy(path);
    fa_auth_login_exit_worker();
    fa_event_done(&cycle);
}

int
main(void)
{
    char  dir[] = "/tmp/facteur-login-XXXXXX", cmd[128];

    alarm(120);                           /* a lost callback must fail, not hang */
    pool = fa_pool_create(4096, &fa_log_stderr);
    test_base64_vectors();
    test_base64_round_trip();
    test_base64_malformed();
    test_sasl_plain();
    test_sasl_login();
    if (mkdtemp(dir) == NULL) {
        ok(0, "mkdtemp");
        return done_testing();
    }
    test_logins(dir);
    fa_snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    (void) !system(cmd);
    fa_pool_destroy(pool);
    return done_testing();
}
