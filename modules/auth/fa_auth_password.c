/*
 * Password schemes (see fa_auth_password.h): the scheme table, the parser
 * of stored values, and hashing and verification through libxcrypt's
 * crypt_r() and libargon2.  No hashing is done here by hand.
 *
 * Every copy of a password this file makes lives in one heap block
 * (fa_auth_password_work_t) that is wiped with explicit_bzero() before it
 * is freed, together with crypt_r()'s internal state, which is derived
 * from the password too.
 */

#include "fa_auth_password.h"

#include <crypt.h>
#include <argon2.h>

#define FA_AUTH_KIND_CRYPT     1
#define FA_AUTH_KIND_ARGON2ID  2
#define FA_AUTH_KIND_ARGON2I   3
#define FA_AUTH_KIND_PLAIN     4

#define FA_AUTH_SCHEME_NAME_MAX  32     /* longer "{...}" is not a scheme */

_Static_assert(FA_AUTH_PASSWORD_MAX < CRYPT_MAX_PASSPHRASE_SIZE,
               "libxcrypt would refuse our longest password");
_Static_assert(FA_AUTH_PASSWORD_HASH_SIZE >= CRYPT_OUTPUT_SIZE,
               "a crypt string may not fit the hash buffer");

typedef struct {
    const char  *name;        /* Dovecot's name */
    const char  *prefix;      /* how the hash starts; NULL for plaintext */
    fa_uint_t    kind;
    fa_uint_t    weak;
} fa_auth_scheme_t;

/*
 * One row per prefix.  A name may have several rows (BLF-CRYPT); rows named
 * CRYPT are crypt methods Dovecot has no name of its own for.  {CRYPT}
 * matches every row that has a prefix.
 */
static const fa_auth_scheme_t  fa_auth_schemes[] = {
    { "YESCRYPT",     "$y$",        FA_AUTH_KIND_CRYPT,    0 },
    { "SHA512-CRYPT", "$6$",        FA_AUTH_KIND_CRYPT,    0 },
    { "SHA256-CRYPT", "$5$",        FA_AUTH_KIND_CRYPT,    0 },
    { "BLF-CRYPT",    "$2y$",       FA_AUTH_KIND_CRYPT,    0 },
    { "BLF-CRYPT",    "$2b$",       FA_AUTH_KIND_CRYPT,    0 },
    { "BLF-CRYPT",    "$2a$",       FA_AUTH_KIND_CRYPT,    0 },
    { "MD5-CRYPT",    "$1$",        FA_AUTH_KIND_CRYPT,    1 },
    { "ARGON2ID",     "$argon2id$", FA_AUTH_KIND_ARGON2ID, 0 },
    { "ARGON2I",      "$argon2i$",  FA_AUTH_KIND_ARGON2I,  0 },
    { "CRYPT",        "$gy$",       FA_AUTH_KIND_CRYPT,    0 },   /* GOST yescrypt */
    { "CRYPT",        "$7$",        FA_AUTH_KIND_CRYPT,    0 },   /* scrypt */
    { "PLAIN",        NULL,         FA_AUTH_KIND_PLAIN,    0 },
    { "CLEARTEXT",    NULL,         FA_AUTH_KIND_PLAIN,    0 },
};

/* scratch memory for one hash or verification: big, so never on a stack */
typedef struct {
    struct crypt_data  cd;
    char               password[FA_AUTH_PASSWORD_MAX + 1];
    char               setting[FA_AUTH_PASSWORD_STORED_MAX + 1];
} fa_auth_password_work_t;


/* ---- parsing stored values ----------------------------------------- */

static fa_int_t
fa_auth_password_fail(char *err, size_t size, const char *fmt, ...)
{
    va_list  args;

    if (err != NULL && size > 0) {
        va_start(args, fmt);
        fa_vsnprintf(err, size, fmt, args);
        va_end(args);
    }
    return FA_ERROR;
}

static int
fa_auth_password_prefixed(const char *hash, size_t len, const char *prefix)
{
    size_t  n = strlen(prefix);

    return len >= n && memcmp(hash, prefix, n) == 0;
}

/* the row whose prefix starts hash, among rows named name (NULL: any) */
static const fa_auth_scheme_t *
fa_auth_password_by_prefix(const char *name, const char *hash, size_t len)
{
    const fa_auth_scheme_t  *s;

    for (size_t i = 0; i < fa_nelems(fa_auth_schemes); i++) {
        s = &fa_auth_schemes[i];
        if (s->prefix == NULL || (name != NULL && strcmp(s->name, name) != 0)) {
            continue;
        }
        if (fa_auth_password_prefixed(hash, len, s->prefix)) {
            return s;
        }
    }
    return NULL;
}

/* the first row called name, case-insensitively; its canonical spelling */
static const fa_auth_scheme_t *
fa_auth_password_by_name(const fa_str_t *name)
{
    for (size_t i = 0; i < fa_nelems(fa_auth_schemes); i++) {
        if (fa_str_casecmp(name, fa_auth_schemes[i].name) == 0) {
            return &fa_auth_schemes[i];
        }
    }
    return NULL;
}

/* a scheme name safe to echo in an error: letters, digits, "-._" */
static int
fa_auth_password_printable(const fa_str_t *name)
{
    for (size_t i = 0; i < name->len; i++) {
        u_char  c = name->data[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
        {
            return 0;
        }
    }
    return 1;
}

/* "{NAME}rest": find the row for NAME and check rest has its prefix */
static const fa_auth_scheme_t *
fa_auth_password_named(const char *stored, size_t len, fa_auth_password_info_t *info,
    char *err, size_t err_size)
{
    const char              *close;
    const fa_auth_scheme_t  *s, *row;
    fa_str_t                 name;

    close = memchr(stored, '}', fa_min(len, FA_AUTH_SCHEME_NAME_MAX + 2));
    if (close == NULL) {
        fa_auth_password_fail(err, err_size, "malformed {SCHEME} prefix");
        return NULL;
    }
    name.data = (u_char *) stored + 1;
    name.len = (size_t) (close - stored) - 1;
    info->hash = close + 1;
    info->hash_len = len - (size_t) (close + 1 - stored);

    s = fa_auth_password_by_name(&name);
    if (s == NULL) {
        if (fa_auth_password_printable(&name)) {
            fa_auth_password_fail(err, err_size, "unknown password scheme \"{%.*s}\"",
                                  (int) name.len, (char *) name.data);
        } else {
            fa_auth_password_fail(err, err_size, "unknown password scheme");
        }
        return NULL;
    }
    if (s->kind == FA_AUTH_KIND_PLAIN) {
        return s;
    }
    if (strcmp(s->name, "CRYPT") == 0) {
        row = fa_auth_password_by_prefix(NULL, info->hash, info->hash_len);
        if (row == NULL) {
            fa_auth_password_fail(err, err_size, "{CRYPT} password of an unsupported method");
        }
        return row;
    }
    row = fa_auth_password_by_prefix(s->name, info->hash, info->hash_len);
    if (row == NULL) {
        fa_auth_password_fail(err, err_size,
                              "{%s} password is not a %s hash (it should start with %s)",
                              s->name, s->name, s->prefix);
    }
    return row;
}

/*
 * "$argon2id$[v=19$]m=M,t=T,p=P$SALT$HASH": the shape, and the memory
 * cost bound; libargon2 checks every parameter again when it verifies.
 */
static const char *
fa_auth_password_argon2_check(const char *hash, size_t len, size_t prefix_len)
{
    const char  *p = hash + prefix_len, *end = hash + len, *comma, *salt, *tag;
    int64_t      m;

    if (end - p > 2 && memcmp(p, "v=", 2) == 0) {
        p = memchr(p, '$', (size_t) (end - p));
        p = p ? p + 1 : end;
    }
    if (end - p < 2 || memcmp(p, "m=", 2) != 0
        || (comma = memchr(p, ',', (size_t) (end - p))) == NULL
        || (salt = memchr(p, '$', (size_t) (end - p))) == NULL
        || (tag = memchr(salt + 1, '$', (size_t) (end - salt - 1))) == NULL
        || tag == salt + 1 || tag + 1 == end
        || memchr(tag + 1, '$', (size_t) (end - tag - 1)) != NULL)
    {
        return "malformed Argon2 hash";
    }
    m = fa_atoi((const u_char *) p + 2, (size_t) (comma - p - 2));
    if (m <= 0) {
        return "malformed Argon2 hash";
    }
    if (m > FA_AUTH_ARGON2_MAX_MEMORY) {
        return "Argon2 memory cost above the supported 1 GiB";
    }
    return NULL;
}

/* the hash itself, once its scheme is known */
static fa_int_t
fa_auth_password_check_hash(const fa_auth_scheme_t *s, fa_auth_password_info_t *info,
    char *err, size_t err_size)
{
    char         setting[FA_AUTH_PASSWORD_STORED_MAX + 1];
    const char  *msg;

    if (s->kind == FA_AUTH_KIND_PLAIN) {
        return info->hash_len ? FA_OK
                              : fa_auth_password_fail(err, err_size, "empty {%s} password", s->name);
    }
    if (s->kind != FA_AUTH_KIND_CRYPT) {
        msg = fa_auth_password_argon2_check(info->hash, info->hash_len, strlen(s->prefix));
        return msg ? fa_auth_password_fail(err, err_size, "%s", msg) : FA_OK;
    }
    /* crypt_checksalt() wants a C string; the caller's value is counted */
    memcpy(setting, info->hash, info->hash_len);
    setting[info->hash_len] = '\0';
    if (crypt_checksalt(setting) == CRYPT_SALT_INVALID) {
        return fa_auth_password_fail(err, err_size, "malformed %s hash", s->name);
    }
    return FA_OK;
}

fa_int_t
fa_auth_password_check(const char *stored, size_t stored_len, fa_uint_t flags,
    fa_auth_password_info_t *info, char *err, size_t err_size)
{
    const fa_auth_scheme_t  *s;

    memset(info, 0, sizeof(*info));
    if (stored_len == 0) {
        return fa_auth_password_fail(err, err_size, "empty password");
    }
    if (stored_len > FA_AUTH_PASSWORD_STORED_MAX) {
        return fa_auth_password_fail(err, err_size, "stored password longer than %d bytes",
                                     FA_AUTH_PASSWORD_STORED_MAX);
    }
    if (memchr(stored, '\0', stored_len) != NULL) {
        return fa_auth_password_fail(err, err_size, "stored password holds a NUL byte");
    }

    if (stored[0] == '{') {
        s = fa_auth_password_named(stored, stored_len, info, err, err_size);
    } else if (stored[0] == '$') {
        info->hash = stored;
        info->hash_len = stored_len;
        s = fa_auth_password_by_prefix(NULL, stored, stored_len);
        if (s == NULL) {
            fa_auth_password_fail(err, err_size, "unsupported crypt method");
        }
    } else {
        /* bare DES crypt and bare plaintext look alike: guess neither */
        return fa_auth_password_fail(err, err_size, "password has no {SCHEME} prefix");
    }
    if (s == NULL) {
        return FA_ERROR;
    }

    info->scheme = s->name;
    info->kind = s->kind;
    info->weak = s->weak;
    info->plain = (s->kind == FA_AUTH_KIND_PLAIN);
    if (info->plain && !(flags & FA_AUTH_PASSWORD_ALLOW_PLAIN)) {
        return fa_auth_password_fail(err, err_size,
                   "{%s} password refused: plaintext passwords need an explicit opt-in",
                   s->name);
    }
    return fa_auth_password_check_hash(s, info, err, err_size);
}


/* ---- hashing and verifying ------------------------------------------ */

/* no hash can have been made of a password with a NUL, or a longer one */
static int
fa_auth_password_valid(const char *password, size_t len)
{
    return len <= FA_AUTH_PASSWORD_MAX && memchr(password, '\0', len) == NULL;
}

/*
 * Equality whose time depends only on given_len, which the caller knows
 * anyway: not on where the bytes differ nor on the stored length (only a
 * plaintext value has a secret length).  known_len must be > 0.
 */
static int
fa_auth_password_equal(const char *known, size_t known_len, const char *given,
    size_t given_len)
{
    volatile u_char  diff = (known_len != given_len);

    for (size_t i = 0; i < given_len; i++) {
        diff |= (u_char) (given[i] ^ known[i % known_len]);
    }
    return diff == 0;
}

static fa_auth_password_work_t *
fa_auth_password_work(const char *password, size_t len)
{
    fa_auth_password_work_t  *w;

    w = calloc(1, sizeof(fa_auth_password_work_t));   /* crypt_r wants it zeroed */
    if (w == NULL) {
        return NULL;
    }
    memcpy(w->password, password, len);
    w->password[len] = '\0';
    return w;
}

static void
fa_auth_password_work_free(fa_auth_password_work_t *w)
{
    explicit_bzero(w, sizeof(fa_auth_password_work_t));
    free(w);
}

/* crypt_r() signals failure with NULL or a "*..." string, by build */
static const char *
fa_auth_password_crypt(fa_auth_password_work_t *w)
{
    const char  *out;

    out = crypt_r(w->password, w->setting, &w->cd);
    return (out == NULL || out[0] == '*') ? NULL : out;
}

fa_int_t
fa_auth_password_hash(const char *password, size_t len, char *out, size_t out_size)
{
    fa_auth_password_work_t  *w;
    const char               *hash;
    fa_int_t                  rc = FA_ERROR;
    size_t                    n;

    if (len == 0 || !fa_auth_password_valid(password, len)) {
        return FA_ERROR;
    }
    w = fa_auth_password_work(password, len);
    if (w == NULL) {
        return FA_ERROR;
    }
    /* count 0: the library's default cost; NULL rbytes: its own entropy */
    if (crypt_gensalt_rn("$y$", 0, NULL, 0, w->setting, sizeof(w->setting)) != NULL
        && (hash = fa_auth_password_crypt(w)) != NULL
        && (n = strlen(hash)) < out_size)
    {
        memcpy(out, hash, n + 1);
        rc = FA_OK;
    }
    fa_auth_password_work_free(w);
    return rc;
}

static fa_int_t
fa_auth_password_verify_crypt(const fa_auth_password_info_t *info, const char *password,
    size_t len)
{
    fa_auth_password_work_t  *w;
    const char               *out;
    fa_int_t                  rc;

    w = fa_auth_password_work(password, len);
    if (w == NULL) {
        return FA_ERROR;
    }
    memcpy(w->setting, info->hash, info->hash_len);
    w->setting[info->hash_len] = '\0';

    out = fa_auth_password_crypt(w);
    if (out == NULL || strlen(out) != info->hash_len) {
        /* the library could not rebuild a hash of this shape: truncated,
         * trailing garbage, or a setting without its hash */
        rc = FA_ERROR;
    } else {
        rc = fa_auth_password_equal(info->hash, info->hash_len, out, info->hash_len)
             ? FA_OK : FA_DECLINED;
    }
    fa_auth_password_work_free(w);
    return rc;
}

/* libargon2 compares in constant time itself */
static fa_int_t
fa_auth_password_verify_argon2(const fa_auth_password_info_t *info, const char *password,
    size_t len)
{
    char  encoded[FA_AUTH_PASSWORD_STORED_MAX + 1];
    int   rc;

    memcpy(encoded, info->hash, info->hash_len);
    encoded[info->hash_len] = '\0';
    if (info->kind == FA_AUTH_KIND_ARGON2ID) {
        rc = argon2id_verify(encoded, password, len);
    } else {
        rc = argon2i_verify(encoded, password, len);
    }
    switch (rc) {
    case ARGON2_OK:              return FA_OK;
    case ARGON2_VERIFY_MISMATCH: return FA_DECLINED;
    default:                     return FA_ERROR;
    }
}

fa_int_t
fa_auth_password_verify(const char *stored, size_t stored_len, const char *password,
    size_t len, fa_uint_t flags)
{
    fa_auth_password_info_t  info;

    if (fa_auth_password_check(stored, stored_len, flags, &info, NULL, 0) != FA_OK
        || !fa_auth_password_valid(password, len))
    {
        return FA_ERROR;
    }
    if (len == 0) {
        return FA_DECLINED;     /* an empty password never logs anyone in */
    }
    switch (info.kind) {
    case FA_AUTH_KIND_PLAIN:
        return fa_auth_password_equal(info.hash, info.hash_len, password, len)
               ? FA_OK : FA_DECLINED;
    case FA_AUTH_KIND_CRYPT:
        return fa_auth_password_verify_crypt(&info, password, len);
    default:
        return fa_auth_password_verify_argon2(&info, password, len);
    }
}
