/*
 * Header lines of the part being read, and what the tree keeps of them.
 *
 * A field is a "name:" line and its continuation lines (starting with a
 * space or a tab).  It is unfolded as it arrives (the line breaks dropped,
 * the leading white space kept) into one buffer of max_field bytes, and
 * looked at once complete: only the Content-* fields and, for a message,
 * the ENVELOPE fields are kept, the first occurrence of each.  So the parser
 * holds one field, never the header.
 *
 * A line that is neither a field nor a continuation ends the header without
 * a blank line and starts the body (mail written by hand, broken MIME
 * parts); that is more useful than Dovecot's reading it as a field with no
 * colon, which swallows the first paragraph.
 */

#include "fa_mime_parser.h"

/* the fields the tree keeps; after the Content-* ones, the envelope's */
enum {
    FA_MIME_H_TYPE = 0, FA_MIME_H_ENCODING, FA_MIME_H_ID, FA_MIME_H_DESCRIPTION,
    FA_MIME_H_DISPOSITION, FA_MIME_H_LANGUAGE, FA_MIME_H_LOCATION, FA_MIME_H_MD5,
    FA_MIME_H_ENV
};

#define FA_MIME_LANGUAGES_MAX  32

typedef struct {
    fa_str_t   name;
    fa_uint_t  id;
} fa_mime_field_name_t;

static const fa_mime_field_name_t  fa_mime_header_names[] = {
    { fa_string("content-type"), FA_MIME_H_TYPE },
    { fa_string("content-transfer-encoding"), FA_MIME_H_ENCODING },
    { fa_string("content-id"), FA_MIME_H_ID },
    { fa_string("content-description"), FA_MIME_H_DESCRIPTION },
    { fa_string("content-disposition"), FA_MIME_H_DISPOSITION },
    { fa_string("content-language"), FA_MIME_H_LANGUAGE },
    { fa_string("content-location"), FA_MIME_H_LOCATION },
    { fa_string("content-md5"), FA_MIME_H_MD5 },
    { fa_string("date"), FA_MIME_H_ENV + FA_MIME_ENV_DATE },
    { fa_string("subject"), FA_MIME_H_ENV + FA_MIME_ENV_SUBJECT },
    { fa_string("from"), FA_MIME_H_ENV + FA_MIME_ENV_FROM },
    { fa_string("sender"), FA_MIME_H_ENV + FA_MIME_ENV_SENDER },
    { fa_string("reply-to"), FA_MIME_H_ENV + FA_MIME_ENV_REPLY_TO },
    { fa_string("to"), FA_MIME_H_ENV + FA_MIME_ENV_TO },
    { fa_string("cc"), FA_MIME_H_ENV + FA_MIME_ENV_CC },
    { fa_string("bcc"), FA_MIME_H_ENV + FA_MIME_ENV_BCC },
    { fa_string("in-reply-to"), FA_MIME_H_ENV + FA_MIME_ENV_IN_REPLY_TO },
    { fa_string("message-id"), FA_MIME_H_ENV + FA_MIME_ENV_MESSAGE_ID }
};

static fa_mime_part_t *
fa_mime_header_part(fa_mime_parser_t *p)
{
    return p->frames[p->nframes - 1].part;
}

void
fa_mime_header_begin(fa_mime_parser_t *p)
{
    p->field_len = 0;
    p->field_open = 0;
    p->nfields = 0;
    p->seen = 0;
}

/* "name:" (white space allowed before the colon): the name's length, or 0 */
static size_t
fa_mime_header_name(const u_char *s, size_t n)
{
    size_t  i = 0, j;

    while (i < n && s[i] > ' ' && s[i] < 0x7f && s[i] != ':') {
        i++;
    }
    for (j = i; j < n && fa_mime_is_wsp(s[j]); j++) {
        /* void */
    }
    return i > 0 && j < n && s[j] == ':' ? i : 0;
}

static void
fa_mime_header_append(fa_mime_parser_t *p, int cut)
{
    size_t  room = p->limits.max_field - p->field_len;
    size_t  n = fa_min(room, p->kept);

    memcpy(p->field + p->field_len, p->line, n);
    p->field_len += n;
    if (cut || n < p->kept) {
        fa_mime_header_part(p)->flags |= FA_MIME_CUT_FIELD;
    }
}

static const u_char *
fa_mime_header_trim(const u_char *s, const u_char *end)
{
    while (end > s && (fa_mime_is_wsp(end[-1]) || end[-1] == '\r' || end[-1] == '\n')) {
        end--;
    }
    return end;
}

static void
fa_mime_header_lower(fa_mime_alloc_t *a, fa_str_t *dst, const u_char *s, size_t n)
{
    if (fa_mime_copy(a, dst, s, n) == FA_OK) {
        fa_strlow(dst->data, dst->data, n);
    }
}

/* type "/" subtype *(";" parameter); anything unusable means text/plain */
static void
fa_mime_header_type(fa_mime_parser_t *p, fa_mime_part_t *part, u_char *v, u_char *end)
{
    const u_char  *t, *te, *s, *se;

    t = fa_mime_skip_cfws(v, end);
    te = fa_mime_token_end(t, end);
    s = fa_mime_skip_cfws(te, end);
    if (te > t && s < end && *s == '/') {
        s = fa_mime_skip_cfws(s + 1, end);
        se = fa_mime_token_end(s, end);
        if (se > s) {
            fa_mime_header_lower(&p->alloc, &part->type, t, te - t);
            fa_mime_header_lower(&p->alloc, &part->subtype, s, se - s);
            if (part->type.data && part->subtype.data) {
                (void) fa_mime_param_parse(&p->alloc, p->limits.max_params,
                                           (u_char *) se, end,
                                           &part->params, &part->nparams);
                return;
            }
        }
    }
    part->flags |= FA_MIME_BAD_TYPE;
    fa_str_set(&part->type, "text");
    fa_str_set(&part->subtype, "plain");
}

/* a single token and nothing else, or the field is ignored */
static void
fa_mime_header_token(fa_mime_parser_t *p, fa_str_t *dst, const u_char *v,
    const u_char *end)
{
    const u_char  *t, *te;

    t = fa_mime_skip_cfws(v, end);
    te = fa_mime_token_end(t, end);
    if (te > t && fa_mime_skip_cfws(te, end) == end) {
        (void) fa_mime_copy(&p->alloc, dst, t, te - t);
    }
}

static void
fa_mime_header_disposition(fa_mime_parser_t *p, fa_mime_part_t *part, u_char *v,
    u_char *end)
{
    const u_char  *t, *te;

    t = fa_mime_skip_cfws(v, end);
    te = fa_mime_token_end(t, end);
    if (te == t || fa_mime_copy(&p->alloc, &part->disposition, t, te - t) != FA_OK) {
        return;
    }
    (void) fa_mime_param_parse(&p->alloc, p->limits.max_params, (u_char *) te, end,
                               &part->disp_params, &part->ndisp_params);
}

/* 1#language-tag: as many tokens as a comma-separated list starts with */
static void
fa_mime_header_language(fa_mime_parser_t *p, fa_mime_part_t *part, const u_char *v,
    const u_char *end)
{
    fa_str_t       tags[FA_MIME_LANGUAGES_MAX];
    fa_uint_t      n = 0;
    const u_char  *t, *te;

    for (t = v; n < FA_MIME_LANGUAGES_MAX; t++) {
        t = fa_mime_skip_cfws(t, end);
        te = fa_mime_token_end(t, end);
        if (te == t) {
            break;
        }
        tags[n].data = (u_char *) t;
        tags[n++].len = te - t;
        t = fa_mime_skip_cfws(te, end);
        if (t == end || *t != ',') {
            break;
        }
    }
    if (n == 0) {
        return;
    }
    part->languages = fa_mime_alloc(&p->alloc, n * sizeof(fa_str_t));
    if (part->languages == NULL) {
        return;
    }
    for (fa_uint_t i = 0; i < n; i++) {
        if (fa_mime_copy(&p->alloc, &part->languages[i], tags[i].data, tags[i].len)
            != FA_OK)
        {
            break;
        }
        part->nlanguages++;
    }
}

static void
fa_mime_header_keep(fa_mime_parser_t *p, fa_mime_part_t *part, fa_uint_t id,
    u_char *v, u_char *end)
{
    switch (id) {
    case FA_MIME_H_TYPE:
        fa_mime_header_type(p, part, v, end);
        break;
    case FA_MIME_H_ENCODING:
        fa_mime_header_token(p, &part->encoding, v, end);
        break;
    case FA_MIME_H_ID:
        (void) fa_mime_copy(&p->alloc, &part->id, v, end - v);
        break;
    case FA_MIME_H_DESCRIPTION:
        (void) fa_mime_copy(&p->alloc, &part->description, v, end - v);
        break;
    case FA_MIME_H_DISPOSITION:
        fa_mime_header_disposition(p, part, v, end);
        break;
    case FA_MIME_H_LANGUAGE:
        fa_mime_header_language(p, part, v, end);
        break;
    case FA_MIME_H_LOCATION:
        (void) fa_mime_copy(&p->alloc, &part->location, v, end - v);
        break;
    case FA_MIME_H_MD5:
        (void) fa_mime_copy(&p->alloc, &part->md5, v, end - v);
        break;
    default:
        if (part->envelope) {
            (void) fa_mime_copy(&p->alloc, &part->envelope->raw[id - FA_MIME_H_ENV],
                                v, end - v);
        }
        break;
    }
}

/* the field in the buffer is complete: keep it if the tree wants it */
static void
fa_mime_header_field(fa_mime_parser_t *p)
{
    const fa_mime_field_name_t  *f;
    size_t                       nlen;
    u_char                      *v, *end;
    fa_str_t                     name;

    if (!p->field_open) {
        return;
    }
    p->field_open = 0;
    if (++p->nfields > p->limits.max_headers) {
        p->limited = 1;
        return;
    }
    nlen = fa_mime_header_name(p->field, p->field_len);
    name.data = p->field;
    name.len = nlen;
    end = p->field + p->field_len;
    v = memchr(p->field + nlen, ':', p->field_len - nlen);
    if (nlen == 0 || v == NULL) {
        return;
    }
    v++;
    while (v < end && fa_mime_is_wsp(*v)) {
        v++;
    }
    end = (u_char *) fa_mime_header_trim(v, end);

    for (fa_uint_t i = 0; i < fa_nelems(fa_mime_header_names); i++) {
        f = &fa_mime_header_names[i];
        if (fa_str_casecmp(&name, (const char *) f->name.data) != 0) {
            continue;
        }
        if (!(p->seen & (1u << f->id))) {
            p->seen |= 1u << f->id;
            fa_mime_header_keep(p, fa_mime_header_part(p), f->id, v, end);
        }
        return;
    }
}

/*
 * One header line: FA_OK taken, FA_DONE the blank line that ends the
 * header, FA_DECLINED not a header line (the body starts with it).
 */
fa_int_t
fa_mime_header_line(fa_mime_parser_t *p)
{
    int  cut = p->content_len > p->kept;

    if (p->content_len == 0) {
        fa_mime_header_field(p);
        return FA_DONE;
    }
    if (p->kept == 0) {
        fa_mime_header_field(p);
        return FA_DECLINED;
    }
    if (fa_mime_is_wsp(p->line[0])) {
        if (!p->field_open) {
            return FA_DECLINED;
        }
        fa_mime_header_append(p, cut);
        return FA_OK;
    }
    fa_mime_header_field(p);
    if (fa_mime_header_name(p->line, p->kept) == 0) {
        return FA_DECLINED;
    }
    p->field_open = 1;
    p->field_len = 0;
    fa_mime_header_append(p, cut);
    return FA_OK;
}

/* parse the address fields of an envelope whose raw values are set */
fa_int_t
fa_mime_header_envelope(fa_mime_alloc_t *a, fa_mime_envelope_t *env)
{
    static const fa_uint_t  fields[] = {
        FA_MIME_ENV_FROM, FA_MIME_ENV_SENDER, FA_MIME_ENV_REPLY_TO,
        FA_MIME_ENV_TO, FA_MIME_ENV_CC, FA_MIME_ENV_BCC
    };
    fa_str_t  *raw;

    for (fa_uint_t i = 0; i < fa_nelems(fields); i++) {
        raw = &env->raw[fields[i]];
        if (raw->data != NULL) {
            env->addr[fields[i]] = fa_mime_address_list(a, raw->data, raw->len);
        }
    }
    return a->nomem ? FA_ERROR : FA_OK;
}

/* the header is over: flush the last field, apply RFC 2045 defaults */
void
fa_mime_header_end(fa_mime_parser_t *p)
{
    fa_mime_part_t  *part = fa_mime_header_part(p), *parent = part->parent;

    fa_mime_header_field(p);
    if (part->type.data == NULL || part->subtype.data == NULL) {
        if (parent && fa_str_casecmp(&parent->type, "multipart") == 0
            && fa_str_casecmp(&parent->subtype, "digest") == 0)
        {
            fa_str_set(&part->type, "message");
            fa_str_set(&part->subtype, "rfc822");
        } else {
            fa_str_set(&part->type, "text");
            fa_str_set(&part->subtype, "plain");
        }
        part->params = NULL;
        part->nparams = 0;
    }
    if (part->envelope) {
        (void) fa_mime_header_envelope(&p->alloc, part->envelope);
    }
}
