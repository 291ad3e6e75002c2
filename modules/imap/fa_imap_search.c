/*
 * SEARCH and UID SEARCH (RFC 9051 6.4.4, RFC 3501 6.4.4), with ESEARCH
 * results (RFC 4731, RFC 9051 7.3.4) and CONDSTORE's MODSEQ (RFC 7162
 * 3.1.5).  The keys and the walk over the mailbox are the search engine's
 * (fa_imap_search.h); this file reads the RETURN options and writes the
 * answer.
 *
 *   "* SEARCH 2 3 5"                          IMAP4rev1, no RETURN
 *   "* ESEARCH (TAG "a") UID MIN 2 COUNT 3"   RETURN (...), or IMAP4rev2
 *
 * IMAP4rev2 has no SEARCH response: a session that enabled it gets
 * ESEARCH, with ALL when there are no RETURN options.  RETURN () is
 * RETURN (ALL).  SAVE (SEARCHRES) is not offered.  With a MODSEQ key the
 * answer ends with the highest MODSEQ of the messages found, when there
 * are any.  A long answer is written as the client reads it.
 */

#include "fa_imap_int.h"

#define FA_IMAP_RET_MIN     0x01
#define FA_IMAP_RET_MAX     0x02
#define FA_IMAP_RET_COUNT   0x04
#define FA_IMAP_RET_ALL     0x08

typedef struct {
    fa_imap_search_t   *se;
    uint32_t           *hits;          /* malloc'd: MSNs or UIDs, ascending */
    fa_uint_t           n, size;
    uint32_t            min, max;
    fa_uint_t           count;
    uint64_t            modseq;
    fa_uint_t           ret;           /* FA_IMAP_RET_* */
    fa_uint_t           i;             /* hits written so far */
    unsigned            esearch:1;
    unsigned            keep:1;        /* the numbers are written, not only counted */
    unsigned            head:1;        /* the response's start is written */
} fa_imap_search_cmd_t;

static void
fa_imap_search_cmd_cleanup(void *data)
{
    fa_imap_search_cmd_t  *sc = data;

    free(sc->hits);
}

/* " 1 2 3", or compact ("1:3,5"), from nums[*i]; FA_AGAIN when the output is full */
fa_int_t
fa_imap_write_numbers(fa_imap_session_t *s, const uint32_t *nums, fa_uint_t n, fa_uint_t *i,
    int compact)
{
    char       buf[4096];
    size_t     len = 0;
    fa_uint_t  j;

    while (*i < n) {
        if (compact) {
            for (j = *i; j + 1 < n && nums[j + 1] == nums[j] + 1; j++) {
                /* void */
            }
            len += fa_snprintf(buf + len, sizeof(buf) - len, *i ? ",%u" : "%u",
                               (unsigned) nums[*i]);
            if (j > *i) {
                len += fa_snprintf(buf + len, sizeof(buf) - len, ":%u", (unsigned) nums[j]);
            }
            *i = j + 1;
        } else {
            len += fa_snprintf(buf + len, sizeof(buf) - len, " %u", (unsigned) nums[(*i)++]);
        }
        if (len > sizeof(buf) - 32 || *i == n) {
            if (fa_imap_write(s, buf, len) == FA_ERROR) {
                return FA_ERROR;
            }
            len = 0;
            if (*i < n && fa_imap_output_full(s)) {
                return FA_AGAIN;
            }
        }
    }
    return FA_OK;
}

static fa_int_t
fa_imap_search_hit(fa_imap_session_t *s, fa_imap_search_hit_t *hit)
{
    fa_imap_search_cmd_t  *sc = s->cmd->data;
    uint32_t               n = s->cmd->parsed.uid ? hit->meta->uid : hit->msn;

    if (sc->count++ == 0) {
        sc->min = n;
    }
    sc->max = n;
    sc->modseq = fa_max(sc->modseq, hit->meta->modseq);
    if (!sc->keep) {
        return FA_OK;
    }
    if (sc->n == sc->size) {
        fa_uint_t size = sc->size ? sc->size * 2 : 256;
        uint32_t *h = realloc(sc->hits, size * sizeof(uint32_t));
        if (h == NULL) {
            return FA_ERROR;
        }
        sc->hits = h;
        sc->size = size;
    }
    sc->hits[sc->n++] = n;
    return FA_OK;
}

/* "* ESEARCH (TAG "t") UID MIN 1 MAX 9 COUNT 3 ALL " or "* SEARCH" */
static fa_int_t
fa_imap_search_head(fa_imap_session_t *s, fa_imap_search_cmd_t *sc)
{
    const fa_str_t  *tag = &s->cmd->parsed.tag;
    char             buf[512];
    size_t           n;

    if (!sc->esearch) {
        return fa_imap_write(s, "* SEARCH", 8);
    }
    n = fa_snprintf(buf, sizeof(buf), "* ESEARCH (TAG \"");
    for (size_t i = 0; i < tag->len && n < sizeof(buf) - 200; i++) {
        if (tag->data[i] == '"' || tag->data[i] == '\\') {
            buf[n++] = '\\';
        }
        buf[n++] = (char) tag->data[i];
    }
    n += fa_snprintf(buf + n, sizeof(buf) - n, "\")%s", s->cmd->parsed.uid ? " UID" : "");
    if (sc->count && (sc->ret & FA_IMAP_RET_MIN)) {
        n += fa_snprintf(buf + n, sizeof(buf) - n, " MIN %u", (unsigned) sc->min);
    }
    if (sc->count && (sc->ret & FA_IMAP_RET_MAX)) {
        n += fa_snprintf(buf + n, sizeof(buf) - n, " MAX %u", (unsigned) sc->max);
    }
    if (sc->ret & FA_IMAP_RET_COUNT) {
        n += fa_snprintf(buf + n, sizeof(buf) - n, " COUNT %lu", (unsigned long) sc->count);
    }
    if (sc->count && (sc->ret & FA_IMAP_RET_ALL)) {
        n += fa_snprintf(buf + n, sizeof(buf) - n, " ALL ");
    }
    return fa_imap_write(s, buf, n);
}

/* the search is over: the answer, as the client reads it */
static fa_int_t
fa_imap_search_output(fa_imap_session_t *s)
{
    fa_imap_search_cmd_t  *sc = s->cmd->data;
    fa_int_t               rc;

    if (!sc->head) {
        sc->head = 1;
        if (fa_imap_search_head(s, sc) == FA_ERROR) {
            return FA_ERROR;
        }
    }
    if (sc->keep) {
        rc = fa_imap_write_numbers(s, sc->hits, sc->n, &sc->i, sc->esearch);
        if (rc == FA_AGAIN) {
            fa_imap_wait_drain(s, fa_imap_search_output);
            return FA_AGAIN;
        }
        if (rc != FA_OK) {
            return rc;
        }
    }
    if (fa_imap_search_has_modseq(sc->se) && sc->count) {
        fa_imap_send(s, sc->esearch ? " MODSEQ %llu" : " (MODSEQ %llu)",
                     (unsigned long long) sc->modseq);
    } else {
        fa_imap_write(s, "\r\n", 2);
    }
    return fa_imap_tagged(s, "OK", "%sSEARCH completed", s->cmd->parsed.uid ? "UID " : "");
}

/* RETURN (MIN MAX COUNT ALL): FA_DECLINED when malformed */
static fa_int_t
fa_imap_search_return(fa_imap_search_cmd_t *sc, const fa_imap_arg_t *list, const char **why)
{
    static const char  *names[] = { "MIN", "MAX", "COUNT", "ALL" };

    if (list->type != FA_IMAP_ARG_LIST) {
        *why = "Syntax: RETURN (options)";
        return FA_DECLINED;
    }
    for (fa_uint_t i = 0; i < list->n; i++) {
        fa_uint_t o;
        for (o = 0; o < fa_nelems(names); o++) {
            if (fa_imap_arg_is(&list->list[i], names[o])) {
                sc->ret |= 1u << o;
                break;
            }
        }
        if (o == fa_nelems(names)) {
            *why = fa_imap_arg_is(&list->list[i], "SAVE") ? "SEARCHRES is not supported"
                   : "Unknown RETURN option";
            return FA_DECLINED;
        }
    }
    if (sc->ret == 0) {
        sc->ret = FA_IMAP_RET_ALL;
    }
    sc->esearch = 1;
    return FA_OK;
}

static fa_int_t
fa_imap_search_go(fa_imap_session_t *s)
{
    fa_imap_cmd_t         *cmd = s->cmd;
    const fa_imap_arg_t   *args = cmd->parsed.args;
    fa_uint_t              n = cmd->parsed.nargs, i = 0;
    fa_imap_search_cmd_t  *sc = fa_pcalloc(cmd->pool, sizeof(*sc));
    const char            *why;
    fa_int_t               rc;

    if (sc == NULL || fa_pool_cleanup_add(cmd->pool, fa_imap_search_cmd_cleanup, sc) == NULL) {
        return FA_ERROR;
    }
    cmd->data = sc;
    if (n >= 1 && fa_imap_arg_is(&args[0], "RETURN")) {
        if (n < 2 || fa_imap_search_return(sc, &args[1], &why) != FA_OK) {
            return fa_imap_bad(s, n < 2 ? "Syntax: RETURN (options)" : why);
        }
        i = 2;
    } else if (s->rev2) {
        sc->ret = FA_IMAP_RET_ALL;
        sc->esearch = 1;
    }
    sc->keep = !sc->esearch || (sc->ret & FA_IMAP_RET_ALL);
    rc = fa_imap_search_parse(s, cmd, args + i, n - i, 0, &sc->se);
    if (rc != FA_OK) {
        return rc == FA_DECLINED ? FA_OK : rc;
    }
    return fa_imap_search_run(s, sc->se, 0, fa_imap_search_hit, fa_imap_search_output);
}

fa_int_t
fa_imap_search(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_int_t  rc;

    if (cmd->parsed.uid) {
        /* UID SEARCH may tell of expunges first (RFC 9051 7.5.1), and sees new mail */
        rc = fa_imap_view_update(s, 1, fa_imap_search_go);
        if (rc == FA_AGAIN) {
            return FA_AGAIN;
        }
    }
    return fa_imap_search_go(s);
}
