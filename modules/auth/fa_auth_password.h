/*
 * Password hashing and verification, with Dovecot's scheme names so that
 * users move over from a Dovecot passwd-file or SQL table as they are.
 *
 * New passwords are hashed with yescrypt ("$y$...", libxcrypt's default
 * cost and its own random salt) and stored as the bare crypt string; a
 * string starting with '$' implies Dovecot's {CRYPT} scheme.  Verification
 * accepts (scheme names are case-insensitive):
 *
 *   {CRYPT}          any crypt string below, told apart by its "$id$"
 *   {YESCRYPT}       $y$
 *   {SHA512-CRYPT}   $6$
 *   {SHA256-CRYPT}   $5$
 *   {BLF-CRYPT}      $2y$, $2b$, $2a$
 *   {MD5-CRYPT}      $1$ -- weak, accepted only to import old data
 *   {ARGON2ID}       $argon2id$ (libargon2)
 *   {ARGON2I}        $argon2i$  (libargon2)
 *   {PLAIN}          plaintext, also {CLEARTEXT}: refused unless the caller
 *                    passes FA_AUTH_PASSWORD_ALLOW_PLAIN
 *
 * and bare crypt strings: $y$, $gy$ (GOST yescrypt), $7$ (scrypt), $6$,
 * $5$, $2y$/$2b$/$2a$, $1$, $argon2id$, $argon2i$.  Anything else (DES,
 * NT-hash, $2x$, {SSHA512}, encoding suffixes such as {PLAIN.b64}, a value
 * without a scheme) is refused as unusable rather than guessed at.
 *
 * Results: FA_OK the password matches; FA_DECLINED it does not; FA_ERROR
 * the password cannot be checked -- the stored value is unusable (unknown
 * scheme, malformed, plaintext not allowed) or the given password is out of
 * bounds (longer than FA_AUTH_PASSWORD_MAX or holding a NUL byte, which no
 * hash could have been made from).  A caller answers FA_ERROR to the client
 * like a failed login, and logs it: it is an operator's problem.
 *
 * Cost: verifying a yescrypt, bcrypt or Argon2 hash takes tens of
 * milliseconds of CPU, on purpose.  A caller inside an event loop must not
 * call fa_auth_password_verify() or _hash() there: hand them to a thread
 * (the worker's thread pool) and post the result back.  Both functions are
 * pure and thread-safe: no global state, no logging, their scratch memory
 * (about 34 KB for crypt_r) on the heap and wiped before it is freed.
 * fa_auth_password_check() only parses and is cheap enough for the loop.
 */

#ifndef FA_AUTH_PASSWORD_H
#define FA_AUTH_PASSWORD_H

#include "fa_core.h"

/* libxcrypt refuses longer passphrases (CRYPT_MAX_PASSPHRASE_SIZE - 1) */
#define FA_AUTH_PASSWORD_MAX         511

/* longest stored value, {SCHEME} prefix included; real hashes are < 200 */
#define FA_AUTH_PASSWORD_STORED_MAX  1024

/* an out buffer of this size always holds what _hash() writes */
#define FA_AUTH_PASSWORD_HASH_SIZE   384

/* Argon2 parameters above this memory cost (KiB) are refused as unusable,
 * so one stored value cannot make a verification allocate gigabytes */
#define FA_AUTH_ARGON2_MAX_MEMORY    (1024 * 1024)

/* flags for _verify() and _check() */
#define FA_AUTH_PASSWORD_ALLOW_PLAIN  0x01    /* accept {PLAIN} / {CLEARTEXT} */

/* what _check() learnt about a stored value; pointers into that value */
typedef struct {
    const char  *scheme;      /* canonical name: "SHA512-CRYPT", "PLAIN", ... */
    const char  *hash;        /* the value after its {SCHEME} prefix */
    size_t       hash_len;
    unsigned     plain:1;     /* a plaintext password */
    unsigned     weak:1;      /* usable, but should be replaced (MD5-CRYPT) */
    unsigned     kind:4;      /* internal: which library verifies it */
} fa_auth_password_info_t;

/*
 * Hash a new password (1 to FA_AUTH_PASSWORD_MAX bytes, no NUL) into out as
 * a NUL-terminated "$y$..." string.  FA_ERROR if the password is empty or
 * out of bounds, out is too small, or the library fails.
 */
fa_int_t fa_auth_password_hash(const char *password, size_t len, char *out,
    size_t out_size);

/*
 * Check a password against a stored value (neither needs a NUL terminator).
 * flags: 0 or FA_AUTH_PASSWORD_ALLOW_PLAIN.  An empty password is declined.
 */
fa_int_t fa_auth_password_verify(const char *stored, size_t stored_len,
    const char *password, size_t len, fa_uint_t flags);

/*
 * Parse a stored value without hashing anything: FA_OK with *info filled,
 * or FA_ERROR with the reason in err (never the password itself).  This is
 * the scheme table an importer uses to refuse a bad line up front.
 */
fa_int_t fa_auth_password_check(const char *stored, size_t stored_len,
    fa_uint_t flags, fa_auth_password_info_t *info, char *err, size_t err_size);

#endif /* FA_AUTH_PASSWORD_H */
