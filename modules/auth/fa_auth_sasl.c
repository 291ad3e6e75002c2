/*
 * SASL PLAIN and LOGIN decoding (see fa_auth_sasl.h).
 *
 * The decoded message is one pool buffer that fa_base64_decode()
 * NUL-terminates; PLAIN's own NUL separators end the first two parts, so the
 * three results point into it without further copies.
 */

#include "fa_core.h"
#include "fa_auth_directory.h"
#include "fa_auth_password.h"
#include "fa_auth_sasl.h"

static fa_int_t
fa_sasl_refuse(fa_str_t *decoded)
{
    explicit_bzero(decoded->data, decoded->len);     /* may hold a password */
    return FA_ERROR;
}

fa_int_t
fa_sasl_plain_decode(fa_pool_t *pool, const fa_str_t *b64, fa_str_t *authzid,
    fa_str_t *authcid, fa_str_t *password)
{
    fa_str_t   msg, z, c, p;
    u_char    *nul1, *nul2, *end;

    if (fa_base64_decode(pool, b64, &msg) != FA_OK) {
        return FA_ERROR;
    }
    end = msg.data + msg.len;
    nul1 = memchr(msg.data, '\0', msg.len);
    nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t) (end - nul1 - 1)) : NULL;
    if (nul2 == NULL || memchr(nul2 + 1, '\0', (size_t) (end - nul2 - 1)) != NULL) {
        return fa_sasl_refuse(&msg);              /* not exactly two NULs */
    }
    z.data = msg.data;
    z.len = (size_t) (nul1 - msg.data);
    c.data = nul1 + 1;
    c.len = (size_t) (nul2 - nul1 - 1);
    p.data = nul2 + 1;
    p.len = (size_t) (end - nul2 - 1);

    if (z.len > FA_AUTH_ADDRESS_MAX || c.len == 0 || c.len > FA_AUTH_ADDRESS_MAX
        || p.len == 0 || p.len > FA_AUTH_PASSWORD_MAX)
    {
        return fa_sasl_refuse(&msg);
    }
    *authzid = z;
    *authcid = c;
    *password = p;
    return FA_OK;
}

fa_int_t
fa_sasl_decode_line(fa_pool_t *pool, const fa_str_t *b64, size_t max, fa_str_t *out)
{
    fa_str_t  line;

    if (fa_base64_decode(pool, b64, &line) != FA_OK) {
        return FA_ERROR;
    }
    if (line.len > max || memchr(line.data, '\0', line.len) != NULL) {
        return fa_sasl_refuse(&line);
    }
    *out = line;
    return FA_OK;
}
