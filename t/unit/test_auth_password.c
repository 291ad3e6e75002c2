/*
 * Password schemes: round trips through yescrypt, and stored values made by
 * real tools (openssl passwd, mkpasswd from whois, python3's crypt module,
 * the argon2 CLI, PHP's password_hash documentation) so that a Dovecot
 * user's hash verifies here as it did there.  Malformed values must give
 * FA_ERROR, never a crash or a match.
 */

#include "fa_core.h"
#include "fa_auth_password.h"
#include "fa_test.h"

#include <pthread.h>

#define PW  "correct horse battery staple"

typedef struct {
    const char  *stored;
    const char  *password;
    const char  *scheme;
    const char  *tool;
} vector_t;

static const vector_t  vectors[] = {
    /* mkpasswd -m yescrypt 'correct horse battery staple' */
    { "$y$j9T$DVzq7UKSu/Di/xFvd.jj/1$hBSrmqSzDla4KWfIUFGLdro/wO4DkYL6UfKxX1O9ywC",
      PW, "YESCRYPT", "mkpasswd yescrypt" },
    { "$gy$j9T$Ydq.O3oZMAFadx/JV1fql0$bhmtDVcyHt81lyirLyh8q7Rm5ongBVEBSEu7DS04Kr7",
      PW, "CRYPT", "mkpasswd gost-yescrypt" },
    { "$7$CU..../....8YfOpXX9fpw4qKmN/Wh.N.$54mRoTZcwz.2ad47j59aVbqH46J2mMMjIHNOa3v4k2B",
      PW, "CRYPT", "mkpasswd scrypt" },
    /* openssl passwd -6 -salt Facteur0salt */
    { "$6$Facteur0salt$WIbvhm8vaWoi76IxxxQsLCJElqzChJdto80qotDgRklwkMf819FKWsdKTyM78/"
      "Mlrj/HXFtC3191DxGBbLybX0", PW, "SHA512-CRYPT", "openssl passwd -6" },
    { "$6$rounds=10000$58iys9IjmQRa987W$qKGSwZjmhEWHHWy7jkjXF1Nu8QzwhVZmOS8n2bqRmvz0oZcyu"
      "ZH2kwNE3DwOzokqtC3ctBalFFxdjRvCL61ZL0", PW, "SHA512-CRYPT", "mkpasswd -R 10000" },
    { "$6$pysalt$sJ9iYQjzisolDcYHK10X9QiXFnLEJs.otcqwBVB.3VLWzKe9wkC26B6sUoCdrdseNdB84681"
      "TVG.DZ.o2Fwi91", PW, "SHA512-CRYPT", "python3 crypt" },
    { "$5$Facteur1salt$h/EY4GY44rSaxMNnTvjELkhOvn7Mkc/Vym4VCwlP9i2",
      PW, "SHA256-CRYPT", "openssl passwd -5" },
    { "$5$pysalt$dqfEu5L2Ns4MIFJMoA7fXDlP02z5qChdzn8m5EGVgJ/",
      PW, "SHA256-CRYPT", "python3 crypt" },
    { "$2b$05$.OVmoyxTv5UkHO0A7TtU3.lU3ejQf0IXMaQs9LSbiCIXibrbt4zPC",
      PW, "BLF-CRYPT", "mkpasswd bcrypt" },
    { "$2b$05$HYeu65vtT7khfwJA8sGTH.DjToTXnJiCV1jZKit3mlUAjhPNIORre",
      PW, "BLF-CRYPT", "python3 crypt" },
    { "$2a$05$iFGiiE2MhMlyvOwhxsipg.cwDJLnp8vXp.8rWPLsoHwvFratDxg42",
      PW, "BLF-CRYPT", "mkpasswd bcrypt-a" },
    /* the example of PHP's password_verify() documentation */
    { "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a",
      "rasmuslerdorf", "BLF-CRYPT", "PHP password_hash" },
    { "$1$Fa8salt$WRAVcZkUOxtj57j9776MZ0", PW, "MD5-CRYPT", "openssl passwd -1" },
    /* echo -n PW | argon2 facteur-salt-16b -id -t 2 -m 12 -p 1 -e */
    { "$argon2id$v=19$m=4096,t=2,p=1$ZmFjdGV1ci1zYWx0LTE2Yg$dTCkU7F0wzhIJMNeFrWTdTOfp29JiMmq"
      "0BWhaKfm/U8", PW, "ARGON2ID", "argon2 -id" },
    { "$argon2i$v=19$m=4096,t=2,p=1$ZmFjdGV1ci1zYWx0LTE2Yg$b6WL6UxMwiSkCWPl/kRbg48qdbyW9aXKEge"
      "K+aB301o", PW, "ARGON2I", "argon2 -i" },
};

static fa_int_t
verify(const char *stored, const char *password, fa_uint_t flags)
{
    return fa_auth_password_verify(stored, strlen(stored), password, strlen(password), flags);
}

static fa_int_t
check(const char *stored, fa_uint_t flags, fa_auth_password_info_t *info, char *err)
{
    return fa_auth_password_check(stored, strlen(stored), flags, info, err, 256);
}

static void
test_round_trip(void)
{
    char  hash[FA_AUTH_PASSWORD_HASH_SIZE], again[FA_AUTH_PASSWORD_HASH_SIZE], small[20];

    is_int(fa_auth_password_hash(PW, strlen(PW), hash, sizeof(hash)), FA_OK, "hash a password");
    ok(strncmp(hash, "$y$", 3) == 0, "new hashes are yescrypt: %s", hash);
    is_int(verify(hash, PW, 0), FA_OK, "the right password verifies");
    is_int(verify(hash, PW "!", 0), FA_DECLINED, "a wrong password is declined");
    is_int(verify(hash, "", 0), FA_DECLINED, "an empty password is declined");
    is_int(fa_auth_password_hash(PW, strlen(PW), again, sizeof(again)), FA_OK, "hash it again");
    ok(strcmp(hash, again) != 0, "each hash has its own salt");
    is_int(fa_auth_password_hash(PW, strlen(PW), small, sizeof(small)), FA_ERROR,
           "a too small out buffer is an error");
    is_int(fa_auth_password_hash("", 0, hash, sizeof(hash)), FA_ERROR,
           "an empty password is not hashed");
}

static void
test_vectors(void)
{
    fa_auth_password_info_t  info;
    char                     err[256], prefixed[512];
    const vector_t          *v;

    for (size_t i = 0; i < fa_nelems(vectors); i++) {
        v = &vectors[i];
        is_int(verify(v->stored, v->password, 0), FA_OK, "%s: verifies", v->tool);
        is_int(verify(v->stored, "Correct horse battery staple", 0), FA_DECLINED,
               "%s: a wrong password is declined", v->tool);
        is_int(check(v->stored, 0, &info, err), FA_OK, "%s: check", v->tool);
        ok(info.scheme && strcmp(info.scheme, v->scheme) == 0, "%s: scheme %s",
           v->tool, v->scheme);

        /* the same value with its Dovecot prefix, as doveadm pw writes it */
        fa_snprintf(prefixed, sizeof(prefixed), "{%s}%s", v->scheme, v->stored);
        is_int(verify(prefixed, v->password, 0), FA_OK, "%s: {%s} prefix", v->tool, v->scheme);
        fa_snprintf(prefixed, sizeof(prefixed), "{crypt}%s", v->stored);
        is_int(verify(prefixed, v->password, 0), FA_OK, "%s: {crypt} prefix", v->tool);
    }
    check(vectors[12].stored, 0, &info, err);
    ok(info.weak, "MD5-CRYPT is marked weak");
    check(vectors[3].stored, 0, &info, err);
    ok(!info.weak && !info.plain, "SHA512-CRYPT is not weak");
}

static void
test_scheme_names(void)
{
    static const char  sha512[] =
        "$6$Facteur0salt$WIbvhm8vaWoi76IxxxQsLCJElqzChJdto80qotDgRklwkMf819FKWsdKTyM78/"
        "Mlrj/HXFtC3191DxGBbLybX0";
    fa_auth_password_info_t  info;
    char                     buf[512], err[256];

    fa_snprintf(buf, sizeof(buf), "{sha512-crypt}%s", sha512);
    is_int(verify(buf, PW, 0), FA_OK, "scheme names are case-insensitive");
    check(buf, 0, &info, err);
    ok(strcmp(info.scheme, "SHA512-CRYPT") == 0, "the canonical name is reported");
    ok(info.hash_len == strlen(sha512) && memcmp(info.hash, sha512, info.hash_len) == 0,
       "info.hash is the value after the prefix");

    fa_snprintf(buf, sizeof(buf), "{Blf-Crypt}%s", vectors[11].stored);
    is_int(verify(buf, "rasmuslerdorf", 0), FA_OK, "{Blf-Crypt} works too");

    fa_snprintf(buf, sizeof(buf), "{SHA256-CRYPT}%s", sha512);
    is_int(verify(buf, PW, 0), FA_ERROR, "a prefix that contradicts the hash is an error");
    is_int(check(buf, 0, &info, err), FA_ERROR, "check refuses it");
    ok(strstr(err, "not a SHA256-CRYPT hash") != NULL, "and says why: %s", err);

    fa_snprintf(buf, sizeof(buf), "{ARGON2I}%s", vectors[13].stored);
    is_int(verify(buf, PW, 0), FA_ERROR, "{ARGON2I} on an argon2id hash is an error");

    fa_snprintf(buf, sizeof(buf), "{SSHA512}%s", sha512);
    is_int(check(buf, 0, &info, err), FA_ERROR, "unknown scheme refused");
    ok(strcmp(err, "unknown password scheme \"{SSHA512}\"") == 0, "err: %s", err);
    is_int(verify(buf, PW, 0), FA_ERROR, "and verify says FA_ERROR");

    is_int(check("{PLAIN.b64}c2VjcmV0", FA_AUTH_PASSWORD_ALLOW_PLAIN, &info, err), FA_ERROR,
           "encoding suffixes are not supported");
    is_int(check("{bad name\x01}x", 0, &info, err), FA_ERROR, "odd scheme name refused");
    ok(strcmp(err, "unknown password scheme") == 0, "without echoing it: %s", err);
}

static void
test_plain(void)
{
    fa_auth_password_info_t  info;
    char                     err[256];

    is_int(verify("{PLAIN}secret", "secret", 0), FA_ERROR, "{PLAIN} refused by default");
    is_int(check("{PLAIN}secret", 0, &info, err), FA_ERROR, "check refuses {PLAIN} too");
    ok(strstr(err, "opt-in") != NULL && strstr(err, "secret") == NULL,
       "the message names the opt-in, not the password: %s", err);
    is_int(verify("{PLAIN}secret", "secret", FA_AUTH_PASSWORD_ALLOW_PLAIN), FA_OK,
           "{PLAIN} verifies when allowed");
    is_int(verify("{plain}secret", "secrex", FA_AUTH_PASSWORD_ALLOW_PLAIN), FA_DECLINED,
           "{plain} mismatch declined");
    is_int(verify("{CLEARTEXT}secret", "secret", FA_AUTH_PASSWORD_ALLOW_PLAIN), FA_OK,
           "{CLEARTEXT} verifies when allowed");
    is_int(verify("{CLEARTEXT}secret", "secretsecret", FA_AUTH_PASSWORD_ALLOW_PLAIN),
           FA_DECLINED, "a longer password that repeats the stored one is declined");
    is_int(verify("{CLEARTEXT}secret", "secre", FA_AUTH_PASSWORD_ALLOW_PLAIN), FA_DECLINED,
           "a prefix of the stored password is declined");
    is_int(verify("{PLAIN}", "x", FA_AUTH_PASSWORD_ALLOW_PLAIN), FA_ERROR,
           "an empty {PLAIN} password is unusable");
    is_int(check("{PLAIN}secret", FA_AUTH_PASSWORD_ALLOW_PLAIN, &info, err), FA_OK,
           "check accepts it when allowed");
    ok(info.plain && strcmp(info.scheme, "PLAIN") == 0, "and reports it as plaintext");
}

static void
test_malformed(void)
{
    static const char  *bad[] = {
        "", "secret", "ab01234567890", "{", "{SHA512-CRYPT", "{}", "{CRYPT}",
        "{CRYPT}secret", "$", "$6$", "$6$salt", "$6$salt$", "$6$sa!lt$abc",
        "$y$", "$y$j9T$", "$y$jx$abc$def$ghi", "$2x$05$abcdefghijklmnopqrstuu",
        "$2b$05$short", "$3$$8846f7eaee8fb117ad06bdd830b7586c",
        "$argon2d$v=19$m=4096,t=2,p=1$ZmFjdGV1ci1zYWx0LTE2Yg$GHYlwM9sp6GcRyqI9cHD4ae3z+3kTVsGbBN1WcbTZbc",
        "$argon2id$", "$argon2id$v=19$m=4096,t=2,p=1$", "$argon2id$v=19$m=4096,t=2,p=1$c2FsdA$",
        "$argon2id$v=19$m=x,t=2,p=1$c2FsdA$aGFzaA", "$argon2id$v=19$t=2,p=1$c2FsdA$aGFzaA",
        "$argon2id$v=19$m=4096,t=2,p=1$c2FsdA$aGFzaA$extra",
        "$argon2id$v=19$m=4096,t=0,p=1$ZmFjdGV1ci1zYWx0LTE2Yg$dTCkU7F0wzhIJMNeFrWTdTOfp29JiMmq0BWhaKfm/U8",
        "$argon2id$v=19$m=4194304,t=2,p=1$ZmFjdGV1ci1zYWx0LTE2Yg$dTCkU7F0wzhIJMNeFrWTdTOfp29JiMmq0BWhaKfm/U8",
        /* a real hash, truncated and with trailing garbage */
        "$6$Facteur0salt$WIbvhm8vaWoi76IxxxQsLCJElqzChJdto80qotDgRklwkMf819FKWsdKTyM78",
        "$6$Facteur0salt$WIbvhm8vaWoi76IxxxQsLCJElqzChJdto80qotDgRklwkMf819FKWsdKTyM78/"
        "Mlrj/HXFtC3191DxGBbLybX0 ",
        "$1$Fa8salt$WRAVcZkUOxtj57j9776MZ0\n",
    };
    char   big[FA_AUTH_PASSWORD_STORED_MAX + 8];
    char   with_nul[] = "{PLAIN}sec\0ret";

    for (size_t i = 0; i < fa_nelems(bad); i++) {
        is_int(verify(bad[i], PW, FA_AUTH_PASSWORD_ALLOW_PLAIN), FA_ERROR,
               "malformed stored value #%zu is an error", i);
    }
    memset(big, 'a', sizeof(big));
    memcpy(big, "{PLAIN}", 7);
    is_int(fa_auth_password_verify(big, sizeof(big), "aaaa", 4, FA_AUTH_PASSWORD_ALLOW_PLAIN),
           FA_ERROR, "an over-long stored value is an error");
    is_int(fa_auth_password_verify(with_nul, sizeof(with_nul) - 1, "sec", 3,
                                   FA_AUTH_PASSWORD_ALLOW_PLAIN),
           FA_ERROR, "a stored value with a NUL is an error");
    /* counted, not NUL-terminated: only stored_len bytes are read */
    is_int(fa_auth_password_verify("{PLAIN}secretXXX", 13, "secret", 6,
                                   FA_AUTH_PASSWORD_ALLOW_PLAIN),
           FA_OK, "the stored value is counted, not NUL-terminated");
}

static void
test_password_bounds(void)
{
    char  pw[FA_AUTH_PASSWORD_MAX + 2], hash[FA_AUTH_PASSWORD_HASH_SIZE];

    memset(pw, 'p', sizeof(pw));
    is_int(fa_auth_password_hash(pw, FA_AUTH_PASSWORD_MAX, hash, sizeof(hash)), FA_OK,
           "a password of FA_AUTH_PASSWORD_MAX bytes is hashed");
    is_int(fa_auth_password_verify(hash, strlen(hash), pw, FA_AUTH_PASSWORD_MAX, 0), FA_OK,
           "and verifies");
    is_int(fa_auth_password_verify(hash, strlen(hash), pw, FA_AUTH_PASSWORD_MAX + 1, 0),
           FA_ERROR, "one byte more is refused");
    is_int(fa_auth_password_hash(pw, FA_AUTH_PASSWORD_MAX + 1, hash, sizeof(hash)), FA_ERROR,
           "and not hashed");
    is_int(fa_auth_password_hash("ab\0cd", 5, hash, sizeof(hash)), FA_ERROR,
           "a password with a NUL is not hashed");
    is_int(fa_auth_password_verify("{PLAIN}ab", 9, "ab\0cd", 5, FA_AUTH_PASSWORD_ALLOW_PLAIN),
           FA_ERROR, "a password with a NUL is refused, not cut at the NUL");
    /* the password is counted too: bytes past len are not part of it */
    is_int(fa_auth_password_verify(vectors[3].stored, strlen(vectors[3].stored),
                                   PW "garbage", strlen(PW), 0),
           FA_OK, "the password is counted, not NUL-terminated");
}

/* each thread hashes and verifies at once with the others: no shared state */
static void *
worker(void *arg)
{
    char             hash[FA_AUTH_PASSWORD_HASH_SIZE];
    uintptr_t        bad = 0;
    const vector_t  *v;

    (void) arg;
    for (int round = 0; round < 3; round++) {
        bad += fa_auth_password_hash(PW, strlen(PW), hash, sizeof(hash)) != FA_OK;
        bad += verify(hash, PW, 0) != FA_OK;
        for (size_t i = 0; i < fa_nelems(vectors); i++) {
            v = &vectors[i];
            bad += verify(v->stored, v->password, 0) != FA_OK;
            bad += verify(v->stored, "nope", 0) != FA_DECLINED;
        }
    }
    return (void *) bad;
}

static void
test_threads(void)
{
    pthread_t  t[4];
    void      *bad;
    uintptr_t  total = 0;

    for (size_t i = 0; i < fa_nelems(t); i++) {
        pthread_create(&t[i], NULL, worker, NULL);
    }
    for (size_t i = 0; i < fa_nelems(t); i++) {
        pthread_join(t[i], &bad);
        total += (uintptr_t) bad;
    }
    is_int(total, 0, "four threads hash and verify at the same time");
}

int
main(void)
{
    test_round_trip();
    test_vectors();
    test_scheme_names();
    test_plain();
    test_malformed();
    test_password_bounds();
    test_threads();
    return done_testing();
}
