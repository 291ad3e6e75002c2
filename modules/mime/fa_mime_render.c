/*
 * ENVELOPE, BODY and BODYSTRUCTURE as IMAP writes them (RFC 3501 7.4.2,
 * RFC 9051 7.5.2), rendered once at append and stored ready to send.
 *
 * Strings are quoted when they can be (7-bit, no CR or LF, not too long),
 * literals otherwise; NUL bytes, which IMAP cannot carry, are dropped.  The
 * choices clients see follow Dovecot: every extension field is written,
 * a text part without a charset gets ("charset" "us-ascii"), a multipart
 * without parts shows one empty text/plain part, and a container the parser
 * left opaque (a limit, no boundary) shows as application/octet-stream, since
 * a message/rfc822 without its envelope would break client parsers.
 */

#include "fa_mime_parser.h"

#define FA_MIME_QUOTED_MAX  1024

#define FA_MIME_EMPTY_BODY                                                    \
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0"

#define fa_mime_lit(b, text)  fa_mime_buf_add(b, text, sizeof(text) - 1)

static fa_int_t
fa_mime_render_quoted(fa_mime_buf_t *b, const u_char *data, size_t len)
{
    const u_char  *s, *p = data, *end = data + len;

    if (fa_mime_lit(b, "\"") != FA_OK) {
        return FA_ERROR;
    }
    while (p < end) {
        for (s = p; p < end && *p != '"' && *p != '\\' && *p != '\0'; p++) {
            /* void */
        }
        if (fa_mime_buf_add(b, s, p - s) != FA_OK) {
            return FA_ERROR;
        }
        if (p < end && *p != '\0' && (fa_mime_lit(b, "\\") != FA_OK
                                      || fa_mime_buf_add(b, p, 1) != FA_OK))
        {
            return FA_ERROR;
        }
        p += p < end;
    }
    return fa_mime_lit(b, "\"");
}

fa_int_t
fa_mime_render_string(fa_mime_buf_t *b, const u_char *data, size_t len)
{
    const u_char  *s, *p, *end = data + len;
    size_t         nul = 0, n;
    int            quoted = 1;
    char           head[FA_INT64_LEN + 8];

    for (p = data; p < end; p++) {
        nul += *p == '\0';
        quoted &= *p != '\r' && *p != '\n' && *p < 0x80;
    }
    if (quoted && len - nul <= FA_MIME_QUOTED_MAX) {
        return fa_mime_render_quoted(b, data, len);
    }
    n = fa_snprintf(head, sizeof(head), "{%zu}\r\n", len - nul);
    if (fa_mime_buf_add(b, head, n) != FA_OK) {
        return FA_ERROR;
    }
    for (p = data; p < end; p++) {
        for (s = p; p < end && *p != '\0'; p++) {
            /* void */
        }
        if (fa_mime_buf_add(b, s, p - s) != FA_OK) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

fa_int_t
fa_mime_render_nstring(fa_mime_buf_t *b, const fa_str_t *s)
{
    if (s->data == NULL) {
        return fa_mime_lit(b, "NIL");
    }
    return fa_mime_render_string(b, s->data, s->len);
}

static fa_int_t
fa_mime_render_number(fa_mime_buf_t *b, uint64_t n)
{
    char  num[FA_INT64_LEN + 2];

    return fa_mime_buf_add(b, num, fa_snprintf(num, sizeof(num), " %" PRIu64, n));
}

/* ( name adl mailbox host ) for each, or NIL */
static fa_int_t
fa_mime_render_addresses(fa_mime_buf_t *b, const fa_mime_address_t *a)
{
    if (a == NULL) {
        return fa_mime_lit(b, "NIL");
    }
    if (fa_mime_lit(b, "(") != FA_OK) {
        return FA_ERROR;
    }
    for ( ; a; a = a->next) {
        if (fa_mime_lit(b, "(") != FA_OK
            || fa_mime_render_nstring(b, &a->name) != FA_OK
            || fa_mime_lit(b, " ") != FA_OK
            || fa_mime_render_nstring(b, &a->route) != FA_OK
            || fa_mime_lit(b, " ") != FA_OK
            || fa_mime_render_nstring(b, &a->mailbox) != FA_OK
            || fa_mime_lit(b, " ") != FA_OK
            || fa_mime_render_nstring(b, &a->host) != FA_OK
            || fa_mime_lit(b, ")") != FA_OK)
        {
            return FA_ERROR;
        }
    }
    return fa_mime_lit(b, ")");
}

fa_int_t
fa_mime_render_envelope(fa_mime_buf_t *b, const fa_mime_part_t *msg)
{
    static const fa_mime_envelope_t   none;
    const fa_mime_envelope_t         *env = msg->envelope ? msg->envelope : &none;
    const fa_mime_address_t          *addr;
    fa_int_t                          rc;

    if (fa_mime_lit(b, "(") != FA_OK) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < FA_MIME_ENV_N; i++) {
        if (i > 0 && fa_mime_lit(b, " ") != FA_OK) {
            return FA_ERROR;
        }
        switch (i) {
        case FA_MIME_ENV_FROM: case FA_MIME_ENV_TO: case FA_MIME_ENV_CC:
        case FA_MIME_ENV_BCC:
            rc = fa_mime_render_addresses(b, env->addr[i]);
            break;
        case FA_MIME_ENV_SENDER: case FA_MIME_ENV_REPLY_TO:
            /* absent or empty: the same as From (RFC 3501 7.4.2) */
            addr = env->addr[i] ? env->addr[i] : env->addr[FA_MIME_ENV_FROM];
            rc = fa_mime_render_addresses(b, addr);
            break;
        default:
            rc = fa_mime_render_nstring(b, &env->raw[i]);
            break;
        }
        if (rc != FA_OK) {
            return FA_ERROR;
        }
    }
    return fa_mime_lit(b, ")");
}

static fa_int_t
fa_mime_render_param_name(fa_mime_buf_t *b, const fa_mime_param_t *param)
{
    u_char  *name;

    if (!param->extended || param->name.data == NULL) {
        return fa_mime_render_nstring(b, &param->name);
    }
    name = fa_pnalloc(b->pool, param->name.len + 1);
    if (name == NULL) {
        return FA_ERROR;
    }
    memcpy(name, param->name.data, param->name.len);
    name[param->name.len] = '*';
    return fa_mime_render_string(b, name, param->name.len + 1);
}

/* ("name" "value" ...) or NIL; a text part always says its charset */
static fa_int_t
fa_mime_render_params(fa_mime_buf_t *b, const fa_mime_param_t *params, fa_uint_t n,
    int text)
{
    int  add_charset = text;

    for (fa_uint_t i = 0; i < n; i++) {
        if (!params[i].extended && fa_str_casecmp(&params[i].name, "charset") == 0) {
            add_charset = 0;
        }
    }

    if (n == 0 && !add_charset) {
        return fa_mime_lit(b, "NIL");
    }
    if (fa_mime_lit(b, "(") != FA_OK) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < n; i++) {
        if ((i > 0 && fa_mime_lit(b, " ") != FA_OK)
            || fa_mime_render_param_name(b, &params[i]) != FA_OK
            || fa_mime_lit(b, " ") != FA_OK
            || fa_mime_render_nstring(b, &params[i].value) != FA_OK)
        {
            return FA_ERROR;
        }
    }
    if (add_charset && ((n > 0 && fa_mime_lit(b, " ") != FA_OK)
                        || fa_mime_lit(b, "\"charset\" \"us-ascii\"") != FA_OK))
    {
        return FA_ERROR;
    }
    return fa_mime_lit(b, ")");
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static fa_int_t
fa_mime_render_ext(fa_mime_buf_t *b, const fa_mime_part_t *part)
{
    if (fa_mime_lit(b, " ") != FA_OK) {
        return FA_ERROR;
    }
    if (part->disposition.data == NULL) {
        if (fa_mime_lit(b, "NIL") != FA_OK) {
            return FA_ERROR;
        }
    } else if (fa_mime_lit(b, "(") != FA_OK
               || fa_mime_render_nstring(b, &part->disposition) != FA_OK
               || fa_mime_lit(b, " ") != FA_OK
               || fa_mime_render_params(b, part->disp_params, part->ndisp_params, 0)
                  != FA_OK
               || fa_mime_lit(b, ")") != FA_OK)
    {
        return FA_ERROR;
    }
    if (fa_mime_lit(b, " ") != FA_OK) {
        return FA_ERROR;
    }
    if (part->nlanguages == 0) {
        if (fa_mime_lit(b, "NIL") != FA_OK) {
            return FA_ERROR;
        }
    } else {
        for (fa_uint_t i = 0; i < part->nlanguages; i++) {
            if (fa_mime_buf_add(b, i ? " " : "(", 1) != FA_OK
                || fa_mime_render_nstring(b, &part->languages[i]) != FA_OK)
            {
                return FA_ERROR;
            }
        }
        if (fa_mime_lit(b, ")") != FA_OK) {
            return FA_ERROR;
        }
    }
    if (fa_mime_lit(b, " ") != FA_OK) {
        return FA_ERROR;
    }
    return fa_mime_render_nstring(b, &part->location);
}

static fa_int_t
fa_mime_render_multipart(fa_mime_buf_t *b, const fa_mime_part_t *part, int extended)
{
    const fa_mime_part_t  *child;

    if (part->children == NULL
        && (fa_mime_lit(b, FA_MIME_EMPTY_BODY) != FA_OK
            || (extended && fa_mime_lit(b, " NIL NIL NIL NIL") != FA_OK)
            || fa_mime_lit(b, ")") != FA_OK))
    {
        return FA_ERROR;
    }
    for (child = part->children; child; child = child->next) {
        if (fa_mime_render_bodystructure(b, child, extended) != FA_OK) {
            return FA_ERROR;
        }
    }
    if (fa_mime_lit(b, " ") != FA_OK || fa_mime_render_nstring(b, &part->subtype) != FA_OK) {
        return FA_ERROR;
    }
    if (extended
        && (fa_mime_lit(b, " ") != FA_OK
            || fa_mime_render_params(b, part->params, part->nparams, 0) != FA_OK
            || fa_mime_render_ext(b, part) != FA_OK))
    {
        return FA_ERROR;
    }
    return FA_OK;
}

/* type subtype params id description encoding octets [lines / message] */
static fa_int_t
fa_mime_render_leaf(fa_mime_buf_t *b, const fa_mime_part_t *part, int extended)
{
    const fa_mime_part_t  *msg = part->flags & FA_MIME_MESSAGE ? part->children : NULL;
    int                    opaque = (part->flags & FA_MIME_OPAQUE) != 0;
    int                    text = !opaque && fa_str_casecmp(&part->type, "text") == 0;

    if (opaque) {
        if (fa_mime_lit(b, "\"application\" \"octet-stream\"") != FA_OK) {
            return FA_ERROR;
        }
    } else if (fa_mime_render_nstring(b, &part->type) != FA_OK
               || fa_mime_lit(b, " ") != FA_OK
               || fa_mime_render_nstring(b, &part->subtype) != FA_OK)
    {
        return FA_ERROR;
    }
    if (fa_mime_lit(b, " ") != FA_OK
        || fa_mime_render_params(b, part->params, part->nparams, text) != FA_OK
        || fa_mime_lit(b, " ") != FA_OK
        || fa_mime_render_nstring(b, &part->id) != FA_OK
        || fa_mime_lit(b, " ") != FA_OK
        || fa_mime_render_nstring(b, &part->description) != FA_OK
        || fa_mime_lit(b, " ") != FA_OK
        || (part->encoding.data ? fa_mime_render_nstring(b, &part->encoding)
                                : fa_mime_lit(b, "\"7bit\"")) != FA_OK
        || fa_mime_render_number(b, part->body_end - part->body_start) != FA_OK)
    {
        return FA_ERROR;
    }
    if (msg && !opaque
        && (fa_mime_lit(b, " ") != FA_OK
            || fa_mime_render_envelope(b, msg) != FA_OK
            || fa_mime_lit(b, " ") != FA_OK
            || fa_mime_render_bodystructure(b, msg, extended) != FA_OK))
    {
        return FA_ERROR;
    }
    if ((text || (msg && !opaque)) && fa_mime_render_number(b, part->body_lines) != FA_OK) {
        return FA_ERROR;
    }
    if (extended
        && (fa_mime_lit(b, " ") != FA_OK
            || fa_mime_render_nstring(b, &part->md5) != FA_OK
            || fa_mime_render_ext(b, part) != FA_OK))
    {
        return FA_ERROR;
    }
    return FA_OK;
}

fa_int_t
fa_mime_render_bodystructure(fa_mime_buf_t *b, const fa_mime_part_t *part, int extended)
{
    fa_int_t  rc;

    if (fa_mime_lit(b, "(") != FA_OK) {
        return FA_ERROR;
    }
    rc = part->flags & FA_MIME_MULTIPART ? fa_mime_render_multipart(b, part, extended)
                                         : fa_mime_render_leaf(b, part, extended);
    if (rc != FA_OK) {
        return FA_ERROR;
    }
    return fa_mime_lit(b, ")");
}
