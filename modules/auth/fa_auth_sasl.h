/*
 * SASL, the parts the SMTP, IMAP and POP3 modules share: decoding the PLAIN
 * mechanism's message (RFC 4616) and the steps of the LOGIN mechanism (the
 * base64 user name and password lines of draft-murchison-sasl-login).
 *
 * These only parse.  A lone "=" (an empty initial response, RFC 4954 and
 * RFC 9051) and "*" (the client cancels) are the caller's to recognise
 * before calling; here both are malformed base64.  Checking the credentials
 * is fa_auth_login() (fa_auth_login.h).
 *
 * The decoded password is in the caller's pool: wipe it (explicit_bzero)
 * once fa_auth_login() has taken its copy, so it does not linger there for
 * the rest of the session.  On FA_ERROR nothing decoded is left readable.
 */

#ifndef FA_AUTH_SASL_H
#define FA_AUTH_SASL_H

#include "fa_core.h"

/* the LOGIN mechanism's fixed challenges, already in base64 */
#define FA_SASL_LOGIN_USERNAME  "VXNlcm5hbWU6"      /* "Username:" */
#define FA_SASL_LOGIN_PASSWORD  "UGFzc3dvcmQ6"      /* "Password:" */

/*
 * PLAIN: b64 is base64 of "authzid NUL authcid NUL passwd".  FA_OK with the
 * three parts NUL-terminated in the pool (authzid may be empty: the client
 * asks to act as itself); FA_ERROR if the base64 is malformed, there are not
 * exactly two NULs, authcid or passwd is empty, authzid or authcid is longer
 * than FA_AUTH_ADDRESS_MAX or passwd longer than FA_AUTH_PASSWORD_MAX.
 */
fa_int_t fa_sasl_plain_decode(fa_pool_t *pool, const fa_str_t *b64, fa_str_t *authzid,
    fa_str_t *authcid, fa_str_t *password);

/*
 * One LOGIN step (the user name or the password): FA_OK with the decoded
 * line NUL-terminated in the pool; FA_ERROR if the base64 is malformed, the
 * result is longer than max bytes or holds a NUL.
 */
fa_int_t fa_sasl_decode_line(fa_pool_t *pool, const fa_str_t *b64, size_t max,
    fa_str_t *out);

#endif /* FA_AUTH_SASL_H */
