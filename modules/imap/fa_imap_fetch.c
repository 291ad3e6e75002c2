/*
 * FETCH and UID FETCH (RFC 9051 6.4.5 and 7.5.2, RFC 3501), with MODSEQ
 * and CHANGEDSINCE (CONDSTORE) and VANISHED (QRESYNC, RFC 7162).  The
 * store calls are in fa_imap_fetch_meta.c, the body items (BINARY, RFC
 * 3516, included) in fa_imap_fetch_body.c and fa_imap_fetch_decode.c.
 *
 * How it runs
 *   The set becomes UIDs of the view (MSNs never move during FETCH: the
 *   command defers EXPUNGE responses).  Metadata comes from the store in
 *   batches of FA_IMAP_FETCH_BATCH UIDs; for each batch, the messages that
 *   a non-PEEK body item reads get \Seen in one store call (unless the
 *   mailbox is read-only), then every message of the batch is answered,
 *   item after item.  Output is produced while the session's queue is
 *   below its high water mark; otherwise the command parks and goes on
 *   when the client has read (fa_imap_wait_drain).  So FETCH 1:* of a
 *   100,000-message mailbox holds one batch of metadata, one message's
 *   part table, two 64 KB buffers and at most the high water mark of
 *   output, whatever the client's reading speed.
 *
 * Answers
 *   UID, FLAGS and MODSEQ come first in a message's response, then the
 *   other items in the order asked.  UID FETCH always sends UID; FLAGS is
 *   added when the FETCH set \Seen (with UID and MODSEQ too under
 *   CONDSTORE, RFC 7162 3.1); MODSEQ with CHANGEDSINCE.  INTERNALDATE is
 *   given in UTC (the store keeps a time, not the zone it was written in).
 *
 * Messages that cannot be answered
 *   A message of the set that another session expunged (no metadata, or
 *   gone when its body is opened) is skipped and the others are answered;
 *   the command then ends NO [EXPUNGEISSUED] (RFC 5530), as Dovecot does.
 *   One whose part table is unreadable is skipped the same way and ends
 *   the command NO [SERVERBUG].  A BINARY of a part with an unknown
 *   Content-Transfer-Encoding stops the command there with NO
 *   [UNKNOWN-CTE].  If \Seen cannot be stored, the bodies are sent all
 *   the same and the failure is logged.  VANISHED (EARLIER) leaves out
 *   UIDs still in this session's view: they will be reported by the next
 *   update, and reporting them now would shift the client's MSNs.
 *
 * Leaving early
 *   The command's state is malloc'd, not in its pool: if the session ends
 *   while a store call is in flight, the pool's cleanup marks the state
 *   orphaned and the store's callback frees it (and the pool the store
 *   writes its results into) when it comes.
 */

#include "fa_imap_fetch.h"

static const struct {
    const char         *name;
    fa_imap_fi_kind_t   kind;
} fa_imap_fetch_simple[] = {
    { "FLAGS", FA_IMAP_FI_FLAGS },
    { "UID", FA_IMAP_FI_UID },
    { "MODSEQ", FA_IMAP_FI_MODSEQ },
    { "INTERNALDATE", FA_IMAP_FI_INTERNALDATE },
    { "RFC822.SIZE", FA_IMAP_FI_SIZE },
    { "ENVELOPE", FA_IMAP_FI_ENVELOPE },
    { "BODY", FA_IMAP_FI_BODY },
    { "BODYSTRUCTURE", FA_IMAP_FI_BODYSTRUCTURE },
};

/* the RFC822 forms of BODY[] */
static const struct {
    const char  *name;
    const char  *spec;
    unsigned     peek;
} fa_imap_fetch_rfc822[] = {
    { "RFC822", "", 0 },
    { "RFC822.HEADER", "HEADER", 1 },
    { "RFC822.TEXT", "TEXT", 0 },
};

static const struct {
    const char  *name;
    const char  *items[5];
} fa_imap_fetch_macros[] = {
    { "ALL", { "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", NULL } },
    { "FAST", { "FLAGS", "INTERNALDATE", "RFC822.SIZE", NULL } },
    { "FULL", { "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY" } },
};

static const char  *fa_imap_months[] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};


/* ---- output ---- */

fa_int_t
fa_imap_fetch_out(fa_imap_fetch_t *f, const char *fmt, ...)
{
    char     buf[512];
    size_t   n;
    va_list  args;

    va_start(args, fmt);
    n = fa_vsnprintf(buf, sizeof(buf), fmt, args);
    va_end(args);
    return fa_imap_write(f->s, buf, n);
}

/* "NAME value" with the space before it when it is not the first item */
static const char *
fa_imap_fetch_sep(fa_imap_fetch_t *f)
{
    const char  *sep = f->sep ? " " : "";

    f->sep = 1;
    return sep;
}

/* ENVELOPE, BODY, BODYSTRUCTURE: rendered at append, sent as they are */
static fa_int_t
fa_imap_fetch_cached(fa_imap_fetch_t *f, const char *name, const fa_str_t *value)
{
    fa_imap_fetch_out(f, "%s%s ", fa_imap_fetch_sep(f), name);
    return value->len ? fa_imap_write(f->s, value->data, value->len)
                      : fa_imap_write(f->s, "NIL", 3);
}

static fa_int_t
fa_imap_fetch_date(fa_imap_fetch_t *f, time_t t)
{
    struct tm  tm;

    if (gmtime_r(&t, &tm) == NULL) {
        memset(&tm, 0, sizeof(tm));
        tm.tm_mday = 1;
        tm.tm_year = 70;
    }
    return fa_imap_fetch_out(f, "%sINTERNALDATE \"%2d-%s-%04d %02d:%02d:%02d +0000\"",
                             fa_imap_fetch_sep(f), tm.tm_mday, fa_imap_months[tm.tm_mon],
                             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static fa_int_t
fa_imap_fetch_flags(fa_imap_fetch_t *f, const fa_message_meta_t *m)
{
    char  flags[4096];

    fa_imap_flags_render(f->s->view, m->flags & ~(FA_FLAG_RECENT | FA_FLAG_MODIFIED),
                         m->keywords, flags, sizeof(flags));
    fa_imap_fetch_out(f, "%sFLAGS ", fa_imap_fetch_sep(f));
    return fa_imap_write(f->s, flags, strlen(flags));
}


/* ---- the state and its end ---- */

static void
fa_imap_fetch_message_end(fa_imap_fetch_t *f)
{
    if (f->stream) {
        f->backend->message_close(f->stream);
        f->stream = NULL;
    }
    if (f->mpool) {
        fa_pool_destroy(f->mpool);
        f->mpool = NULL;
    }
    f->tree = NULL;
    f->ranges = NULL;
}

static void
fa_imap_fetch_free(fa_imap_fetch_t *f)
{
    fa_imap_fetch_message_end(f);
    fa_imap_fetch_batch_end(f);
    free(f->chunk);
    free(f->xbuf);
    free(f);
}

/* the command's pool goes: now, or when the store call in flight comes back */
static void
fa_imap_fetch_cleanup(void *data)
{
    fa_imap_fetch_t  *f = data;

    if (f->pending) {
        f->orphan = 1;
        f->s = NULL;
        return;
    }
    fa_imap_fetch_free(f);
}

/* a store callback is done with f: go on from the session's loop */
void
fa_imap_fetch_wake(fa_imap_fetch_t *f)
{
    fa_imap_session_t  *s = f->s;

    if (f->orphan) {
        fa_imap_fetch_free(f);
        return;
    }
    fa_imap_wait_drain(s, fa_imap_fetch_run);
    fa_imap_wake(s);
}

static fa_int_t
fa_imap_fetch_finish(fa_imap_fetch_t *f)
{
    fa_imap_session_t  *s = f->s;
    const char         *what = s->cmd->parsed.uid ? "UID FETCH" : "FETCH";

    switch (f->state) {
    case FA_IMAP_FS_CTE:
        return fa_imap_tagged(s, "NO", "[UNKNOWN-CTE] Can't decode %.*s: unknown "
                              "Content-Transfer-Encoding", (int) fa_min(f->cte_item->name.len,
                              (size_t) 200), f->cte_item->name.data) == FA_ERROR
               ? FA_ERROR : FA_OK;
    case FA_IMAP_FS_FAILED:
        return fa_imap_storage_no(s, f->op_rc, what) == FA_ERROR ? FA_ERROR : FA_OK;
    default:
        break;
    }
    if (f->broken) {
        fa_imap_tagged(s, "NO", "[SERVERBUG] %lu message(s) could not be read",
                       (unsigned long) f->broken);
    } else if (f->expunged) {
        fa_imap_tagged(s, "NO", "[EXPUNGEISSUED] Some of the requested messages no longer "
                       "exist");
    } else {
        fa_imap_tagged(s, "OK", "%s completed", what);
    }
    return FA_OK;
}


/* ---- one message ---- */

static fa_int_t
fa_imap_fetch_message(fa_imap_fetch_t *f)
{
    fa_imap_session_t  *s = f->s;
    fa_message_meta_t  *m;
    uint32_t            msn;
    unsigned            seen, cs;
    fa_int_t            rc;

    if (f->cur == f->nmsgs) {
        f->state = FA_IMAP_FS_BATCH;
        return FA_OK;
    }
    if (!f->keywords && (f->want_flags || f->set_seen)) {
        /* keywords made since SELECT: their names before the batch's FLAGS */
        uint64_t keywords = 0;
        for (fa_uint_t i = f->cur; i < f->nmsgs; i++) {
            keywords |= f->msgs[i].keywords;
        }
        f->keywords = 1;
        if (fa_imap_view_keywords(s, keywords, fa_imap_fetch_run) == FA_AGAIN) {
            return FA_AGAIN;
        }
    }
    m = &f->msgs[f->cur];
    msn = fa_imap_view_msn(s->view, m->uid);
    if (fa_imap_fetch_skipped(f, m) || msn == 0) {
        f->cur++;
        return FA_OK;
    }
    if (f->need_body) {
        rc = fa_imap_fetch_resolve(f, m);
        if (rc != FA_OK) {
            fa_imap_fetch_message_end(f);
            if (rc == FA_ABORT) {
                f->state = FA_IMAP_FS_CTE;
            } else if (rc == FA_DECLINED) {
                f->cur++;
            }
            return rc == FA_ERROR ? FA_ERROR : FA_OK;
        }
    }
    seen = f->seen_set[f->cur];
    cs = seen && s->condstore;
    f->sep = 0;
    fa_imap_fetch_out(f, "* %u FETCH (", (unsigned) msn);
    if (f->want_uid || cs) {
        fa_imap_fetch_out(f, "%sUID %u", fa_imap_fetch_sep(f), (unsigned) m->uid);
    }
    if (f->want_flags || seen) {
        fa_imap_fetch_flags(f, m);
    }
    if (f->want_modseq || cs) {
        fa_imap_fetch_out(f, "%sMODSEQ (%llu)", fa_imap_fetch_sep(f),
                          (unsigned long long) m->modseq);
    }
    f->item = 0;
    memset(&f->body, 0, sizeof(f->body));
    f->state = FA_IMAP_FS_ITEMS;
    return FA_OK;
}

/* the next item of the message, or a step of a body item */
static fa_int_t
fa_imap_fetch_items(fa_imap_fetch_t *f)
{
    fa_message_meta_t           *m = &f->msgs[f->cur];
    const fa_imap_fetch_item_t  *it;
    fa_int_t                     rc;

    if (f->item == f->nitems) {
        fa_imap_write(f->s, ")\r\n", 3);
        fa_imap_fetch_message_end(f);
        f->cur++;
        f->state = FA_IMAP_FS_MESSAGE;
        return FA_OK;
    }
    it = &f->items[f->item];
    switch (it->kind) {
    case FA_IMAP_FI_FLAGS:
    case FA_IMAP_FI_UID:
    case FA_IMAP_FI_MODSEQ:
        break;                           /* written first */
    case FA_IMAP_FI_INTERNALDATE:
        fa_imap_fetch_date(f, m->internal_date);
        break;
    case FA_IMAP_FI_SIZE:
        fa_imap_fetch_out(f, "%sRFC822.SIZE %llu", fa_imap_fetch_sep(f),
                          (unsigned long long) m->size);
        break;
    case FA_IMAP_FI_ENVELOPE:
        fa_imap_fetch_cached(f, "ENVELOPE", &m->envelope);
        break;
    case FA_IMAP_FI_BODY:
        fa_imap_fetch_cached(f, "BODY", &m->body);
        break;
    case FA_IMAP_FI_BODYSTRUCTURE:
        fa_imap_fetch_cached(f, "BODYSTRUCTURE", &m->bodystructure);
        break;
    default:
        rc = fa_imap_fetch_body_step(f);
        if (rc != FA_DONE) {
            return rc;                   /* more of it, a read in flight, or an error */
        }
        break;
    }
    f->item++;
    memset(&f->body, 0, sizeof(f->body));
    return FA_OK;
}

/* the command goes on: from the handler, a drained queue or a store callback */
fa_int_t
fa_imap_fetch_run(fa_imap_session_t *s)
{
    fa_imap_fetch_t  *f = s->cmd->data;
    fa_int_t          rc;

    for ( ;; ) {
        if (f->pending) {
            return FA_AGAIN;
        }
        if (fa_imap_output_full(s)) {
            fa_imap_wait_drain(s, fa_imap_fetch_run);
            return FA_AGAIN;
        }
        switch (f->state) {
        case FA_IMAP_FS_VANISHED:
            rc = fa_imap_fetch_ask_changes(f);
            break;
        case FA_IMAP_FS_VANISHED_SEND:
            rc = fa_imap_fetch_send_vanished(f);
            break;
        case FA_IMAP_FS_BATCH:
            rc = fa_imap_fetch_ask_batch(f);
            break;
        case FA_IMAP_FS_SEEN:
            rc = fa_imap_fetch_ask_seen(f);
            break;
        case FA_IMAP_FS_MESSAGE:
            rc = fa_imap_fetch_message(f);
            break;
        case FA_IMAP_FS_ITEMS:
            rc = fa_imap_fetch_items(f);
            break;
        default:
            return fa_imap_fetch_finish(f);
        }
        if (rc != FA_OK) {
            return rc == FA_AGAIN ? FA_AGAIN : FA_ERROR;
        }
    }
}


/* ---- the command's arguments ---- */

static fa_int_t
fa_imap_fetch_item(fa_pool_t *pool, const fa_imap_arg_t *a, fa_imap_fetch_item_t *it)
{
    memset(it, 0, sizeof(*it));
    if (a->type != FA_IMAP_ARG_ATOM) {
        return FA_DECLINED;
    }
    for (size_t i = 0; i < fa_nelems(fa_imap_fetch_simple); i++) {
        if (fa_str_casecmp(&a->str, fa_imap_fetch_simple[i].name) == 0) {
            it->kind = fa_imap_fetch_simple[i].kind;
            return FA_OK;
        }
    }
    for (size_t i = 0; i < fa_nelems(fa_imap_fetch_rfc822); i++) {
        if (fa_str_casecmp(&a->str, fa_imap_fetch_rfc822[i].name) == 0) {
            it->kind = FA_IMAP_FI_SECTION;
            it->name.data = (u_char *) fa_imap_fetch_rfc822[i].name;
            it->name.len = strlen(fa_imap_fetch_rfc822[i].name);
            it->spec.data = (u_char *) fa_imap_fetch_rfc822[i].spec;
            it->spec.len = strlen(fa_imap_fetch_rfc822[i].spec);
            it->peek = fa_imap_fetch_rfc822[i].peek;
            return FA_OK;
        }
    }
    if (memchr(a->str.data, '[', a->str.len)) {
        return fa_imap_fetch_section_parse(pool, &a->str, it);
    }
    return FA_DECLINED;
}

/* ALL, FAST, FULL as a list of atoms; NULL if a is not a macro */
static fa_imap_arg_t *
fa_imap_fetch_macro(fa_pool_t *pool, const fa_imap_arg_t *a, fa_uint_t *n)
{
    fa_imap_arg_t  *list;

    for (size_t i = 0; i < fa_nelems(fa_imap_fetch_macros); i++) {
        if (!fa_imap_arg_is(a, fa_imap_fetch_macros[i].name)) {
            continue;
        }
        list = fa_pcalloc(pool, 5 * sizeof(fa_imap_arg_t));
        for (*n = 0; list && *n < 5 && fa_imap_fetch_macros[i].items[*n]; (*n)++) {
            list[*n].type = FA_IMAP_ARG_ATOM;
            list[*n].str.data = (u_char *) fa_imap_fetch_macros[i].items[*n];
            list[*n].str.len = strlen(fa_imap_fetch_macros[i].items[*n]);
        }
        return list;
    }
    return NULL;
}

/* (CHANGEDSINCE n [VANISHED]) */
static const char *
fa_imap_fetch_modifiers(fa_imap_session_t *s, fa_imap_fetch_t *f, const fa_imap_arg_t *a)
{
    int  changedsince = 0;

    if (a->type != FA_IMAP_ARG_LIST || a->n == 0) {
        return "Invalid FETCH modifiers";
    }
    for (fa_uint_t i = 0; i < a->n; i++) {
        if (fa_imap_arg_is(&a->list[i], "CHANGEDSINCE") && i + 1 < a->n
            && a->list[i + 1].type == FA_IMAP_ARG_ATOM)
        {
            int64_t v = fa_atoi(a->list[i + 1].str.data, a->list[i + 1].str.len);
            if (v < 0) {
                return "Invalid CHANGEDSINCE value";
            }
            f->changedsince = (uint64_t) v;
            changedsince = 1;
            i++;
        } else if (fa_imap_arg_is(&a->list[i], "VANISHED")) {
            f->vanished = 1;
        } else {
            return "Unknown FETCH modifier";
        }
    }
    if (f->vanished && (!s->cmd->parsed.uid || !s->qresync || !changedsince)) {
        return "VANISHED needs UID FETCH, QRESYNC enabled and CHANGEDSINCE";
    }
    if (changedsince) {
        f->want_modseq = 1;
    }
    return NULL;
}

/* the items: which are asked, and what the whole command will need */
static fa_int_t
fa_imap_fetch_items_parse(fa_imap_fetch_t *f, fa_pool_t *pool, const fa_imap_arg_t *a,
    const fa_imap_arg_t **bad)
{
    const fa_imap_arg_t  *list = a;
    fa_uint_t             n = 1;
    fa_imap_arg_t        *macro;

    if (a->type == FA_IMAP_ARG_LIST) {
        list = a->list;
        n = a->n;
    } else if ((macro = fa_imap_fetch_macro(pool, a, &n)) != NULL) {
        list = macro;
    }
    *bad = a;
    if (n == 0) {
        return FA_DECLINED;
    }
    f->items = fa_palloc(pool, n * sizeof(fa_imap_fetch_item_t));
    if (f->items == NULL) {
        return FA_ERROR;
    }
    f->nitems = n;
    for (fa_uint_t i = 0; i < n; i++) {
        fa_imap_fetch_item_t *it = &f->items[i];
        fa_int_t rc = fa_imap_fetch_item(pool, &list[i], it);
        if (rc != FA_OK) {
            *bad = &list[i];
            return rc;
        }
        f->want_uid |= it->kind == FA_IMAP_FI_UID;
        f->want_flags |= it->kind == FA_IMAP_FI_FLAGS;
        f->want_modseq |= it->kind == FA_IMAP_FI_MODSEQ;
        if (it->kind >= FA_IMAP_FI_SECTION) {
            f->need_body = 1;
            f->need_tree |= it->spec.len != 0;
            f->set_seen |= !it->peek;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_imap_fetch_syntax(fa_imap_session_t *s, const char *why, const fa_imap_arg_t *bad)
{
    if (bad && bad->type == FA_IMAP_ARG_ATOM) {
        return fa_imap_tagged(s, "BAD", "%s: %.*s", why, (int) fa_min(bad->str.len,
                              (size_t) 100), bad->str.data);
    }
    return fa_imap_bad(s, why);
}

fa_int_t
fa_imap_fetch(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_imap_command_t     *p = &cmd->parsed;
    const fa_imap_arg_t   *bad;
    const char            *why;
    fa_imap_fetch_t       *f;
    fa_imap_view_t        *v = s->view;
    fa_int_t               rc;

    if (p->nargs < 2 || p->nargs > 3 || p->args[0].type != FA_IMAP_ARG_ATOM) {
        return fa_imap_bad(s, "Syntax: FETCH set items [(modifiers)]");
    }
    f = fa_calloc(sizeof(*f), s->c->log);
    if (f == NULL) {
        return FA_ERROR;
    }
    if (fa_pool_cleanup_add(cmd->pool, fa_imap_fetch_cleanup, f) == NULL) {
        free(f);
        return FA_ERROR;
    }
    f->s = s;
    f->log = s->c->log;
    f->backend = s->store->backend;
    f->box = v->box;
    f->want_uid = p->uid;
    cmd->data = f;

    rc = fa_imap_fetch_items_parse(f, cmd->pool, &p->args[1], &bad);
    if (rc != FA_OK) {
        return rc == FA_ERROR ? FA_ERROR : fa_imap_fetch_syntax(s, "Invalid FETCH item", bad);
    }
    if (p->nargs == 3 && (why = fa_imap_fetch_modifiers(s, f, &p->args[2])) != NULL) {
        return fa_imap_bad(s, why);
    }
    rc = fa_imap_view_uids(s, &p->args[0].str, p->uid, cmd->pool, &f->set);
    if (rc != FA_OK) {
        return rc == FA_ERROR ? FA_ERROR : fa_imap_bad(s, "Invalid sequence set");
    }
    if (f->vanished) {
        uint32_t max = fa_max(v->n ? v->uids[v->n - 1] : 0, v->uidnext ? v->uidnext - 1 : 0);
        if (fa_imap_parse_set(cmd->pool, &p->args[0].str, max, &f->vset, &f->nvset) != FA_OK) {
            return FA_ERROR;
        }
    }
    if (f->want_modseq && !s->condstore) {
        s->condstore = 1;                /* RFC 7162 3.1: a CONDSTORE enabling command */
        fa_imap_send(s, "* OK [HIGHESTMODSEQ %llu] Highest",
                     (unsigned long long) v->highestmodseq);
    }
    f->next_uid = f->set.nranges ? f->set.ranges[0].first : 0;
    f->state = f->vanished ? FA_IMAP_FS_VANISHED : FA_IMAP_FS_BATCH;

    /* no EXPUNGE now (the command is FA_IMAP_NO_EXPUNGE): MSNs stay put */
    rc = fa_imap_view_update(s, 0, fa_imap_fetch_run);
    return rc == FA_AGAIN ? FA_AGAIN : fa_imap_fetch_run(s);
}
