/*
 * FETCH BODY[section] to a byte range of the raw message (RFC 3501 6.4.5).
 *
 * Part numbers follow BODYSTRUCTURE: a multipart's parts are 1..n; a
 * message that is not multipart (the top one, or one inside a
 * message/rfc822 part) has its body as part 1; and the parts of a
 * message/rfc822 part are those of the message it holds, so "2.1" is the
 * first part of the message attached as part 2.  HEADER and TEXT name the
 * header and text of a message: the top one, or the one inside a
 * message/rfc822 part; MIME names the MIME header of a numbered part.
 */

#include "fa_mime_parser.h"

#define FA_MIME_PART_NUMBER_MAX  4294967295u

/*
 * The part numbered n below part: below the top message (top), or below a
 * numbered part, where only a multipart or a message/rfc822 has parts.
 */
static const fa_mime_part_t *
fa_mime_section_sub(const fa_mime_part_t *part, uint64_t n, int top)
{
    const fa_mime_part_t  *c;

    if (!top) {
        if (part->flags & FA_MIME_MESSAGE) {
            part = part->children;          /* numbered as a message */
        } else if (!(part->flags & FA_MIME_MULTIPART)) {
            return NULL;
        }
    }
    if (part == NULL) {
        return NULL;
    }
    if (!(part->flags & FA_MIME_MULTIPART)) {
        return n == 1 ? part : NULL;        /* a message's body is its part 1 */
    }
    for (c = part->children; c != NULL && n > 1; c = c->next) {
        n--;
    }
    return c;
}

/* a nz-number; leading zeros refused as in RFC 3501's grammar */
static const u_char *
fa_mime_section_number(const u_char *p, const u_char *end, uint64_t *n)
{
    *n = 0;
    if (p == end || *p < '1' || *p > '9') {
        return NULL;
    }
    for ( ; p < end && *p >= '0' && *p <= '9'; p++) {
        *n = *n * 10 + (*p - '0');
        if (*n > FA_MIME_PART_NUMBER_MAX) {
            return NULL;
        }
    }
    return p;
}

static int
fa_mime_section_word(const u_char *p, const u_char *end, const char *word)
{
    size_t  n = strlen(word);

    return (size_t) (end - p) >= n && strncasecmp((const char *) p, word, n) == 0;
}

static void
fa_mime_section_set(fa_mime_section_t *out, const fa_mime_part_t *part, uint64_t from,
    uint64_t to, int header)
{
    out->part = part;
    out->offset = from;
    out->length = to - from;
    out->header = header;
}

/* HEADER, HEADER.FIELDS[.NOT] ..., TEXT of msg (a message) */
static fa_int_t
fa_mime_section_text(const u_char *p, const u_char *end, const fa_mime_part_t *msg,
    fa_mime_section_t *out)
{
    if (fa_mime_section_word(p, end, "HEADER.FIELDS")) {
        p += sizeof("HEADER.FIELDS") - 1;
        if (p == end || (*p != ' ' && *p != '.')) {
            return FA_ERROR;
        }
    } else if (fa_mime_section_word(p, end, "HEADER")) {
        if (end - p != sizeof("HEADER") - 1) {
            return FA_ERROR;
        }
    } else if (fa_mime_section_word(p, end, "TEXT") && end - p == sizeof("TEXT") - 1) {
        if (msg == NULL) {
            return FA_DECLINED;
        }
        fa_mime_section_set(out, msg, msg->body_start, msg->body_end, 0);
        return FA_OK;
    } else {
        return FA_ERROR;
    }
    if (msg == NULL) {
        return FA_DECLINED;
    }
    fa_mime_section_set(out, msg, msg->header_start, msg->body_start, 1);
    return FA_OK;
}

fa_int_t
fa_mime_section_find(const fa_mime_part_t *root, const u_char *spec, size_t len,
    fa_mime_section_t *out)
{
    const u_char          *p = spec, *end = spec + len;
    const fa_mime_part_t  *part = NULL, *next = root;
    uint64_t               n;
    int                    mime;

    if (len == 0) {
        fa_mime_section_set(out, root, 0, root->body_end, 0);
        return FA_OK;
    }
    while (p < end && *p >= '0' && *p <= '9') {
        p = fa_mime_section_number(p, end, &n);
        if (p == NULL || (p < end && (*p != '.' || end - p == 1))) {
            return FA_ERROR;
        }
        if (next != NULL) {
            next = fa_mime_section_sub(next, n, part == NULL);
        }
        part = next;
        p += p < end;
    }
    mime = end - p == sizeof("MIME") - 1 && fa_mime_section_word(p, end, "MIME");
    if (part == NULL && p != spec) {
        /* a well-formed number that names no part: keep checking the syntax */
        if (p < end && !mime && fa_mime_section_text(p, end, NULL, out) == FA_ERROR) {
            return FA_ERROR;
        }
        return FA_DECLINED;
    }
    if (p == end) {
        fa_mime_section_set(out, part, part->body_start, part->body_end, 0);
        return FA_OK;
    }
    if (mime) {
        if (part == NULL) {
            return FA_ERROR;
        }
        fa_mime_section_set(out, part, part->header_start, part->body_start, 1);
        return FA_OK;
    }
    if (part == NULL) {
        return fa_mime_section_text(p, end, root, out);
    }
    return fa_mime_section_text(p, end,
                                part->flags & FA_MIME_MESSAGE ? part->children : NULL,
                                out);
}
