/*
 * The header block of a message in transit: split into fields once it is
 * in, edited by hooks (fa_smtp_header_*), and written back in front of the
 * body at delivery.  A field keeps its bytes exactly (folding included),
 * so a message nobody edits is stored as it came.  A line that is not a
 * field (no colon) is kept verbatim, as Dovecot and Postfix keep it.
 */

#include "fa_smtp_int.h"

static fa_int_t
fa_smtp_header_push(fa_array_t *a, const u_char *name, size_t nlen, const u_char *value,
    size_t vlen)
{
    fa_smtp_header_t  *h = fa_array_push(a);

    if (h == NULL) {
        return FA_ERROR;
    }
    h->name.data = (u_char *) name;
    h->name.len = nlen;
    h->value.data = (u_char *) value;
    h->value.len = vlen;
    return FA_OK;
}

/* the block without its final empty line; it must live as long as the txn */
fa_int_t
fa_smtp_headers_parse(fa_smtp_txn_t *t, const u_char *p, size_t n)
{
    const u_char      *end = p + n, *line, *eol, *colon;
    fa_smtp_header_t  *last = NULL;
    fa_int_t           rc = FA_OK;

    for (line = p; rc == FA_OK && line < end; line = eol == end ? end : eol + 2) {
        eol = line;
        while (eol + 1 < end && !(eol[0] == '\r' && eol[1] == '\n')) {
            eol++;
        }
        if (eol + 1 >= end) {
            eol = end;                      /* a last line without CRLF */
        }
        if (last && (*line == ' ' || *line == '\t')) {
            /* folding: the value runs on, CRLF and all */
            last->value.len = (size_t) (eol - last->value.data);
            continue;
        }
        colon = memchr(line, ':', (size_t) (eol - line));
        if (colon == NULL || colon == line) {
            rc = fa_smtp_header_push(&t->headers, line, 0, line, (size_t) (eol - line));
            last = NULL;
            continue;
        }
        rc = fa_smtp_header_push(&t->headers, line, (size_t) (colon - line), colon + 1,
                                 (size_t) (eol - colon - 1));
        last = (fa_smtp_header_t *) t->headers.elts + t->headers.nelts - 1;
    }
    return rc;
}

static size_t
fa_smtp_header_put(const fa_smtp_header_t *h, u_char *out, size_t size, size_t n)
{
    size_t  need = h->name.len + (h->name.len ? 1 : 0) + h->value.len + 2;

    if (n + need <= size) {
        u_char *o = out + n;
        if (h->name.len) {
            memcpy(o, h->name.data, h->name.len);
            o += h->name.len;
            *o++ = ':';
        }
        memcpy(o, h->value.data, h->value.len);
        o += h->value.len;
        *o++ = '\r';
        *o = '\n';
    }
    return need;
}

/* added fields, then the message's own; the size needed (writes only if it fits) */
size_t
fa_smtp_headers_render(fa_smtp_txn_t *t, u_char *out, size_t size)
{
    fa_smtp_header_t  *h = t->added.elts;
    size_t             n = 0;

    for (fa_uint_t i = 0; i < t->added.nelts; i++) {
        n += fa_smtp_header_put(&h[i], out, size, n);
    }
    h = t->headers.elts;
    for (fa_uint_t i = 0; i < t->headers.nelts; i++) {
        if (!h[i].deleted) {
            n += fa_smtp_header_put(&h[i], out, size, n);
        }
    }
    return n;
}

static int
fa_smtp_header_is(const fa_smtp_header_t *h, const fa_str_t *name)
{
    size_t  len = h->name.len;

    while (len && (h->name.data[len - 1] == ' ' || h->name.data[len - 1] == '\t')) {
        len--;                               /* "Subject :" is Subject */
    }
    return !h->deleted && len == name->len
           && strncasecmp((char *) h->name.data, (char *) name->data, len) == 0;
}

fa_smtp_header_t *
fa_smtp_header_get(fa_smtp_txn_t *t, const fa_str_t *name, fa_uint_t n)
{
    fa_array_t  *lists[2] = { &t->added, &t->headers };

    for (int l = 0; l < 2; l++) {
        fa_smtp_header_t *h = lists[l]->elts;
        for (fa_uint_t i = 0; i < lists[l]->nelts; i++) {
            if (fa_smtp_header_is(&h[i], name) && n-- == 0) {
                return &h[i];
            }
        }
    }
    return NULL;
}

/* a copy of value, with a space after the colon unless it has one */
static fa_int_t
fa_smtp_header_copy(fa_smtp_txn_t *t, const fa_str_t *name, const fa_str_t *value,
    fa_smtp_header_t *h)
{
    int  space = value->len == 0 || (value->data[0] != ' ' && value->data[0] != '\t');

    h->name.data = fa_pnalloc(t->pool, name->len);
    h->value.data = fa_pnalloc(t->pool, value->len + 1);
    if (h->name.data == NULL || h->value.data == NULL || name->len == 0
        || memchr(name->data, ':', name->len))
    {
        return FA_ERROR;
    }
    memcpy(h->name.data, name->data, name->len);
    h->name.len = name->len;
    h->value.data[0] = ' ';
    memcpy(h->value.data + space, value->data, value->len);
    h->value.len = value->len + space;
    h->deleted = 0;
    return FA_OK;
}

fa_int_t
fa_smtp_header_add(fa_smtp_txn_t *t, const fa_str_t *name, const fa_str_t *value)
{
    fa_smtp_header_t  h;

    if (fa_smtp_header_copy(t, name, value, &h) != FA_OK) {
        return FA_ERROR;
    }
    fa_smtp_header_t *slot = fa_array_push(&t->added);
    if (slot == NULL) {
        return FA_ERROR;
    }
    *slot = h;
    return FA_OK;
}

fa_uint_t
fa_smtp_header_remove(fa_smtp_txn_t *t, const fa_str_t *name)
{
    fa_smtp_header_t  *h;
    fa_uint_t          n = 0;

    while ((h = fa_smtp_header_get(t, name, 0)) != NULL) {
        h->deleted = 1;
        n++;
    }
    return n;
}

/* the first occurrence gets the value, the others go; added if none */
fa_int_t
fa_smtp_header_replace(fa_smtp_txn_t *t, const fa_str_t *name, const fa_str_t *value)
{
    fa_smtp_header_t  *first = fa_smtp_header_get(t, name, 0), copy;

    if (first == NULL) {
        return fa_smtp_header_add(t, name, value);
    }
    if (fa_smtp_header_copy(t, name, value, &copy) != FA_OK) {
        return FA_ERROR;
    }
    first->deleted = 1;
    fa_smtp_header_remove(t, name);
    *first = copy;
    return FA_OK;
}
