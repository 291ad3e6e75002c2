/*
 * The selected mailbox as this session sees it: its UIDs in order (MSN n
 * is uids[n - 1]), its keyword table, and how far it has been told about
 * changes (highestmodseq).  Nothing else is cached: flags and metadata
 * come from the store when a command needs them, so another writer can
 * never leave this session with stale data.
 *
 * Changes by others arrive through the store's watch, which only marks
 * the view; the next command that may carry untagged responses (or IDLE,
 * at once) asks changes_since and tells the client: EXPUNGE (or VANISHED
 * with QRESYNC), EXISTS, FETCH (FLAGS ...).  FETCH, STORE and SEARCH by
 * sequence number defer everything, so MSNs never move under them
 * (RFC 9051 7.5.1).  Only the keyword table cannot wait: a FETCH or STORE
 * reply that meets a keyword made since the table was read learns it
 * first (fa_imap_view_keywords) and says FLAGS.
 */

#include "fa_imap_int.h"

typedef struct {
    fa_imap_session_t  *s;
    fa_imap_view_t     *view;               /* until the session adopts it */
    fa_int_t            examine;
    uint64_t            qresync_modseq;     /* SELECT (QRESYNC (v m)): changes since m */
    uint32_t            qresync_uidvalidity;
} fa_imap_select_t;

static const char  *fa_imap_system_flags[] = {
    "\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"
};
static const uint32_t  fa_imap_system_bits[] = {
    FA_FLAG_SEEN, FA_FLAG_ANSWERED, FA_FLAG_FLAGGED, FA_FLAG_DELETED, FA_FLAG_DRAFT
};


/* ---- flags ---- */

size_t
fa_imap_flags_render(fa_imap_view_t *v, uint32_t flags, uint64_t keywords, char *buf,
    size_t size)
{
    size_t  n = 0;

    buf[n++] = '(';
    for (size_t i = 0; i < fa_nelems(fa_imap_system_flags); i++) {
        if (flags & fa_imap_system_bits[i]) {
            n += fa_snprintf(buf + n, size - n, "%s%s", n > 1 ? " " : "",
                             fa_imap_system_flags[i]);
        }
    }
    for (fa_uint_t k = 0; v && k < v->nkeywords && k < 64 && n + 2 < size; k++) {
        if (keywords & ((uint64_t) 1 << k)) {
            n += fa_snprintf(buf + n, size - n, "%s%.*s", n > 1 ? " " : "",
                             (int) v->keywords[k].len, v->keywords[k].data);
        }
    }
    n += fa_snprintf(buf + n, size - n, ")");
    return n;
}

/* "(\Seen $Junk)" -> system flags and keyword names; FA_DECLINED if malformed */
fa_int_t
fa_imap_flags_parse(fa_imap_session_t *s, const fa_imap_arg_t *list, fa_pool_t *pool,
    uint32_t *flags, fa_str_t **keywords, fa_uint_t *nkeywords)
{
    const fa_imap_arg_t  *a = list->type == FA_IMAP_ARG_LIST ? list->list : list;
    fa_uint_t             n = list->type == FA_IMAP_ARG_LIST ? list->n : 1, k = 0;

    (void) s;
    *flags = 0;
    *keywords = fa_palloc(pool, (n ? n : 1) * sizeof(fa_str_t));
    if (*keywords == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < n; i++) {
        if (a[i].type != FA_IMAP_ARG_ATOM) {
            return FA_DECLINED;
        }
        if (a[i].str.data[0] != '\\') {
            for (size_t j = 0; j < a[i].str.len; j++) {
                if (strchr("[]%*", a[i].str.data[j])) {
                    return FA_DECLINED;
                }
            }
            (*keywords)[k++] = a[i].str;
            continue;
        }
        fa_uint_t f;
        for (f = 0; f < fa_nelems(fa_imap_system_flags); f++) {
            if (fa_str_casecmp(&a[i].str, fa_imap_system_flags[f]) == 0) {
                *flags |= fa_imap_system_bits[f];
                break;
            }
        }
        if (f == fa_nelems(fa_imap_system_flags) && !fa_str_eqi(&a[i].str, "\\Recent")) {
            return FA_DECLINED;          /* an unknown system flag */
        }
    }
    *nkeywords = k;
    return FA_OK;
}

/* the keyword table, " kw1 kw2" (each with a leading space) */
fa_int_t
fa_imap_view_keyword_list(fa_imap_session_t *s, char *buf, size_t size)
{
    fa_imap_view_t  *v = s->view;
    size_t           n = 0;

    buf[0] = '\0';
    for (fa_uint_t k = 0; v && k < v->nkeywords && n + 2 < size; k++) {
        n += fa_snprintf(buf + n, size - n, " %.*s", (int) v->keywords[k].len,
                         v->keywords[k].data);
    }
    return FA_OK;
}

static void
fa_imap_send_flags(fa_imap_session_t *s)
{
    char  kw[4096];

    fa_imap_view_keyword_list(s, kw, sizeof(kw));
    fa_imap_send(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s)", kw);
    if (s->view->readonly) {
        fa_imap_send(s, "* OK [PERMANENTFLAGS ()] Read-only mailbox");
    } else {
        fa_imap_send(s, "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s "
                     "\\*)] Flags permitted", kw);
    }
}

static fa_int_t
fa_imap_view_set_keywords(fa_imap_view_t *v, const fa_str_t *kw, fa_uint_t n)
{
    fa_str_t  *copy = fa_palloc(v->pool, (n ? n : 1) * sizeof(fa_str_t));

    if (copy == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < n; i++) {
        copy[i].len = kw[i].len;
        copy[i].data = fa_pstrdup(v->pool, &kw[i]);
        if (copy[i].data == NULL) {
            return FA_ERROR;
        }
    }
    v->keywords = copy;
    v->nkeywords = n;
    return FA_OK;
}


/* ---- MSNs and UIDs ---- */

static fa_int_t
fa_imap_view_push(fa_imap_view_t *v, uint32_t uid)
{
    if (v->n == v->size) {
        size_t size = v->size ? v->size * 2 : 64;
        uint32_t *u = realloc(v->uids, size * sizeof(uint32_t));
        if (u == NULL) {
            return FA_ERROR;
        }
        v->uids = u;
        v->size = size;
    }
    v->uids[v->n++] = uid;
    return FA_OK;
}

uint32_t
fa_imap_view_msn(fa_imap_view_t *v, uint32_t uid)
{
    fa_uint_t  lo = 0, hi = v->n;

    while (lo < hi) {
        fa_uint_t mid = lo + (hi - lo) / 2;
        if (v->uids[mid] == uid) {
            return (uint32_t) mid + 1;
        }
        if (v->uids[mid] < uid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return 0;
}

/* the UIDs a sequence set names (only those in the view), as ranges */
fa_int_t
fa_imap_view_uids(fa_imap_session_t *s, const fa_str_t *set, int uid, fa_pool_t *pool,
    fa_uid_set_t *out)
{
    fa_imap_view_t   *v = s->view;
    fa_imap_range_t  *r;
    fa_uint_t         n, k = 0;
    uint32_t          max = uid ? (v->n ? v->uids[v->n - 1] : 0) : (uint32_t) v->n;
    fa_uid_range_t   *u;
    fa_int_t          rc;

    rc = fa_imap_parse_set(pool, set, max, &r, &n);
    if (rc != FA_OK) {
        return rc;
    }
    if (!uid && v->n == 0 && memchr(set->data, '*', set->len)) {
        n = 0;                           /* "1:*" of an empty mailbox: nothing, no error */
    }
    if (!uid) {
        for (fa_uint_t i = 0; i < n; i++) {
            if (r[i].last > v->n) {
                return FA_DECLINED;      /* RFC 9051: a MSN past the end is an error */
            }
        }
    }
    u = fa_palloc(pool, (v->n ? v->n : 1) * sizeof(fa_uid_range_t));
    if (u == NULL) {
        return FA_ERROR;
    }
    /* walk the view once, keeping the UIDs whose MSN or UID is in a range */
    fa_uint_t ri = 0;
    for (fa_uint_t i = 0; i < v->n && ri < n; i++) {
        uint32_t key = uid ? v->uids[i] : (uint32_t) i + 1;
        while (ri < n && r[ri].last < key) {
            ri++;
        }
        if (ri < n && key >= r[ri].first) {
            if (k && u[k - 1].last + 1 == v->uids[i] && (i == 0 || v->uids[i - 1] == u[k - 1].last)) {
                u[k - 1].last = v->uids[i];
            } else {
                u[k].first = u[k].last = v->uids[i];
                k++;
            }
        }
    }
    out->ranges = u;
    out->nranges = k;
    return FA_OK;
}


/* ---- updates from other writers ---- */

static void
fa_imap_view_changed(void *data)
{
    fa_imap_session_t  *s = data;

    if (s->view == NULL) {
        return;
    }
    s->view->changed = 1;
    if (s->idling && s->cmd && s->input == FA_IMAP_IN_LINE) {
        /* IDLE tells at once, then goes back to reading DONE */
        fa_imap_view_update(s, 1, fa_imap_idle_resume);
    }
}

/* remove a UID (told as EXPUNGE or VANISHED by the caller) */
static void
fa_imap_view_remove(fa_imap_view_t *v, uint32_t msn)
{
    memmove(&v->uids[msn - 1], &v->uids[msn], (v->n - msn) * sizeof(uint32_t));
    v->n--;
}

void
fa_imap_view_expunged(fa_imap_session_t *s, const uint32_t *uids, fa_uint_t n)
{
    fa_imap_view_t  *v = s->view;

    for (fa_uint_t i = 0; i < n; i++) {
        uint32_t msn = fa_imap_view_msn(v, uids[i]);
        if (msn == 0) {
            continue;                    /* not ours, or told already */
        }
        if (s->qresync) {
            fa_imap_send(s, "* VANISHED %u", (unsigned) uids[i]);
        } else {
            fa_imap_send(s, "* %u EXPUNGE", (unsigned) msn);
        }
        fa_imap_view_remove(v, msn);
    }
}

static void
fa_imap_view_tell(fa_imap_session_t *s, fa_mailbox_changes_t *ch)
{
    fa_imap_view_t  *v = s->view;
    fa_uint_t        old_n, new_keywords = ch->nkeywords > v->nkeywords;
    char             flags[4096];

    if (new_keywords && fa_imap_view_set_keywords(v, ch->keywords, ch->nkeywords) == FA_OK) {
        fa_imap_send_flags(s);
    }
    fa_imap_view_expunged(s, ch->expunged, ch->nexpunged);
    old_n = v->n;
    for (fa_uint_t i = 0; i < ch->nchanged; i++) {
        fa_message_meta_t *m = &ch->changed[i];
        uint32_t msn = fa_imap_view_msn(v, m->uid);
        if (msn == 0 && (v->n == 0 || m->uid > v->uids[v->n - 1])) {
            fa_imap_view_push(v, m->uid);        /* new: told with EXISTS below */
            continue;
        }
        if (msn == 0 || msn > old_n) {
            continue;
        }
        fa_imap_flags_render(v, m->flags, m->keywords, flags, sizeof(flags));
        if (s->condstore) {
            fa_imap_send(s, "* %u FETCH (UID %u FLAGS %s MODSEQ (%llu))", (unsigned) msn,
                         (unsigned) m->uid, flags, (unsigned long long) m->modseq);
        } else {
            fa_imap_send(s, "* %u FETCH (UID %u FLAGS %s)", (unsigned) msn,
                         (unsigned) m->uid, flags);
        }
    }
    if (v->n != old_n) {
        fa_imap_send(s, "* %lu EXISTS", (unsigned long) v->n);
        v->uidnext = fa_max(v->uidnext, v->uids[v->n - 1] + 1);
    }
    v->highestmodseq = fa_max(v->highestmodseq, ch->highestmodseq);
}

typedef struct {
    fa_imap_session_t   *s;
    fa_imap_resume_pt    next;
    fa_pool_t           *pool;
} fa_imap_update_t;

static void
fa_imap_view_changes(void *data, fa_int_t rc, fa_mailbox_changes_t *ch)
{
    fa_imap_update_t   *u = data;
    fa_imap_session_t  *s = u->s;
    fa_imap_resume_pt   next = u->next;

    if (fa_imap_answered(s)) {
        fa_pool_destroy(u->pool);
        return;
    }

    if (s->view) {
        s->view->refreshing = 0;
        if (rc == FA_OK && ch->too_old) {
            /* forgotten expunges: start over from a full list */
            s->view->highestmodseq = 0;
            s->view->changed = 1;
        } else if (rc == FA_OK) {
            fa_imap_view_tell(s, ch);
        } else {
            s->view->changed = 1;
        }
    }
    fa_pool_destroy(u->pool);
    if (next && s->cmd) {
        fa_imap_wait_drain(s, next);
    }
    if (s->view && s->idling) {
        fa_conn_flush(s->c);            /* IDLE: the client hears it now */
    }
    fa_imap_wake(s);
}

fa_int_t
fa_imap_view_update(fa_imap_session_t *s, int expunges, fa_imap_resume_pt next)
{
    fa_imap_view_t    *v = s->view;
    fa_pool_t         *pool;
    fa_imap_update_t  *u;
    fa_int_t           rc;

    if (v == NULL || !v->changed || v->refreshing || !expunges) {
        return FA_OK;
    }
    pool = fa_pool_create(4096, s->c->log);
    u = pool ? fa_palloc(pool, sizeof(*u)) : NULL;
    if (u == NULL) {
        if (pool) {
            fa_pool_destroy(pool);
        }
        return FA_OK;                    /* tried again at the next command */
    }
    u->s = s;
    u->next = next;
    u->pool = pool;
    v->changed = 0;
    v->refreshing = 1;
    rc = fa_imap_call(s, s->store->backend->changes_since(v->box, v->highestmodseq, pool,
                                                          fa_imap_view_changes, u));
    if (rc == FA_AGAIN) {
        if (s->cmd) {
            s->input = FA_IMAP_IN_BUSY;
        }
        return FA_AGAIN;
    }
    v->refreshing = 0;
    v->changed = 1;
    fa_pool_destroy(pool);
    return FA_OK;
}

static void
fa_imap_view_keywords_learned(void *data, fa_int_t rc, fa_mailbox_changes_t *ch)
{
    fa_imap_update_t   *u = data;
    fa_imap_session_t  *s = u->s;
    fa_imap_resume_pt   next = u->next;

    if (fa_imap_answered(s)) {
        fa_pool_destroy(u->pool);
        return;
    }
    /* the changes themselves are told by the next update, as always */
    if (rc == FA_OK && s->view && ch->nkeywords > s->view->nkeywords
        && fa_imap_view_set_keywords(s->view, ch->keywords, ch->nkeywords) == FA_OK)
    {
        fa_imap_send_flags(s);
    }
    fa_pool_destroy(u->pool);
    if (s->cmd) {
        fa_imap_wait_drain(s, next);
    }
    fa_imap_wake(s);
}

fa_int_t
fa_imap_view_keywords(fa_imap_session_t *s, uint64_t keywords, fa_imap_resume_pt next)
{
    fa_imap_view_t    *v = s->view;
    fa_pool_t         *pool;
    fa_imap_update_t  *u;
    fa_int_t           rc;

    if (v == NULL || v->nkeywords >= 64 || (keywords >> v->nkeywords) == 0) {
        return FA_OK;
    }
    pool = fa_pool_create(4096, s->c->log);
    u = pool ? fa_palloc(pool, sizeof(*u)) : NULL;
    if (u == NULL) {
        if (pool) {
            fa_pool_destroy(pool);
        }
        return FA_OK;                    /* answered with the names it has */
    }
    u->s = s;
    u->next = next;
    u->pool = pool;
    /* a keyword past the table is on a message changed since highestmodseq */
    rc = fa_imap_call(s, s->store->backend->changes_since(v->box, v->highestmodseq, pool,
                                                          fa_imap_view_keywords_learned, u));
    if (rc == FA_AGAIN) {
        if (s->cmd) {
            s->input = FA_IMAP_IN_BUSY;
        }
        return FA_AGAIN;
    }
    fa_pool_destroy(pool);
    return FA_OK;
}


/* ---- SELECT, EXAMINE ---- */

static void
fa_imap_view_destroy(fa_imap_session_t *s, fa_imap_view_t *v)
{
    if (v->watch) {
        s->store->backend->unwatch(v->watch);
    }
    if (v->box) {
        s->store->backend->mailbox_close(v->box);
    }
    free(v->uids);
    fa_pool_destroy(v->pool);
}

void
fa_imap_view_free(fa_imap_session_t *s)
{
    fa_imap_view_t  *v = s->view;

    if (v) {
        s->view = NULL;
        fa_imap_view_destroy(s, v);
    }
}

/* a SELECT that did not end with its view adopted: the view goes with it */
static void
fa_imap_select_cleanup(void *data)
{
    fa_imap_select_t  *sel = data;

    if (sel->view) {
        fa_imap_view_destroy(sel->s, sel->view);
        sel->view = NULL;
    }
}

static fa_int_t
fa_imap_select_reply(fa_imap_session_t *s, fa_imap_select_t *sel)
{
    fa_imap_view_t  *v = sel->view;

    s->view = v;
    sel->view = NULL;                    /* adopted */
    s->state = FA_IMAP_SELECTED;
    fa_imap_send_flags(s);
    fa_imap_send(s, "* %lu EXISTS", (unsigned long) v->n);
    if (!s->rev2) {
        fa_imap_send(s, "* 0 RECENT");
    }
    fa_imap_send(s, "* OK [UIDVALIDITY %u] UIDs valid", (unsigned) v->uidvalidity);
    fa_imap_send(s, "* OK [UIDNEXT %u] Predicted next UID", (unsigned) v->uidnext);
    if (s->condstore) {
        fa_imap_send(s, "* OK [HIGHESTMODSEQ %llu] Highest",
                     (unsigned long long) v->highestmodseq);
    }
    if (s->store->backend->watch(s->store, &s->user, &v->name, fa_imap_view_changed, s,
                                 &v->watch) != FA_OK)
    {
        v->watch = NULL;                 /* updates come only with commands then */
    }
    return fa_imap_tagged(s, "OK", "[%s] %s completed", v->readonly ? "READ-ONLY"
                          : "READ-WRITE", sel->examine ? "EXAMINE" : "SELECT");
}

/* every message of the mailbox, flags only: the MSN map */
static void
fa_imap_select_listed(void *data, fa_int_t rc, fa_mailbox_changes_t *ch)
{
    fa_imap_session_t  *s = data;
    fa_imap_select_t   *sel;
    fa_imap_view_t     *v;

    if (fa_imap_answered(s)) {
        return;                          /* (the view's pool is the command's: gone) */
    }
    sel = s->cmd->data;
    v = sel->view;
    for (fa_uint_t i = 0; rc == FA_OK && i < ch->nchanged; i++) {
        if (fa_imap_view_push(v, ch->changed[i].uid) != FA_OK) {
            rc = FA_ERROR;
        }
    }
    if (rc == FA_OK && ch->nkeywords > v->nkeywords) {
        fa_imap_view_set_keywords(v, ch->keywords, ch->nkeywords);
    }
    if (rc != FA_OK) {
        fa_imap_storage_no(s, rc, "SELECT");      /* the view goes with the command */
    } else {
        v->highestmodseq = fa_max(v->highestmodseq, ch->highestmodseq);
        fa_imap_select_reply(s, sel);
    }
    fa_imap_done(s);
}

static void
fa_imap_select_opened(void *data, fa_int_t rc, fa_mailbox_t *box, fa_mailbox_status_t *st)
{
    fa_imap_session_t  *s = data;
    fa_imap_select_t   *sel;
    fa_imap_view_t     *v;

    if (fa_imap_answered(s)) {
        return;
    }
    sel = s->cmd->data;
    v = sel->view;
    if (rc != FA_OK) {
        fa_imap_storage_no(s, rc, sel->examine ? "EXAMINE" : "SELECT");
        fa_imap_done(s);
        return;
    }
    v->box = box;
    v->uidvalidity = st->uidvalidity;
    v->uidnext = st->uidnext;
    v->highestmodseq = st->highestmodseq;
    if (fa_imap_view_set_keywords(v, st->keywords, st->nkeywords) != FA_OK) {
        rc = FA_ERROR;
    } else {
        rc = fa_imap_call(s, s->store->backend->changes_since(box, 0, s->cmd->pool,
                                                              fa_imap_select_listed, s));
    }
    if (rc != FA_AGAIN) {
        fa_imap_storage_no(s, rc, "SELECT");      /* the view goes with the command */
        fa_imap_done(s);
    }
}

fa_int_t
fa_imap_select(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_imap_select_t  *sel = fa_pcalloc(cmd->pool, sizeof(*sel));
    fa_pool_t         *pool;
    fa_imap_view_t    *v;
    fa_int_t           rc;

    if (sel == NULL) {
        return FA_ERROR;
    }
    if (cmd->parsed.nargs < 1 || cmd->parsed.nargs > 2
        || fa_imap_arg_string(&cmd->parsed.args[0]) == NULL)
    {
        return fa_imap_bad(s, "Syntax: SELECT mailbox [(parameters)]");
    }
    if (cmd->parsed.nargs == 2) {
        fa_imap_arg_t *p = &cmd->parsed.args[1];
        if (p->type != FA_IMAP_ARG_LIST) {
            return fa_imap_bad(s, "Invalid SELECT parameters");
        }
        for (fa_uint_t i = 0; i < p->n; i++) {
            if (fa_imap_arg_is(&p->list[i], "CONDSTORE")) {
                s->condstore = 1;
            } else if (fa_imap_arg_is(&p->list[i], "QRESYNC") && s->qresync) {
                i++;                     /* its list: resync is done by UID FETCH VANISHED */
            } else {
                return fa_imap_bad(s, "Unknown SELECT parameter");
            }
        }
    }
    if (s->view) {
        fa_imap_view_free(s);
        s->state = FA_IMAP_AUTHENTICATED;
        if (s->qresync || s->rev2) {
            fa_imap_send(s, "* OK [CLOSED] Previous mailbox closed");
        }
    }
    pool = fa_pool_create(1024, s->c->log);
    v = pool ? fa_pcalloc(pool, sizeof(*v)) : NULL;
    if (v == NULL) {
        if (pool) {
            fa_pool_destroy(pool);
        }
        return FA_ERROR;
    }
    v->pool = pool;
    sel->s = s;
    sel->view = v;
    if (fa_pool_cleanup_add(cmd->pool, fa_imap_select_cleanup, sel) == NULL) {
        fa_pool_destroy(pool);
        return FA_ERROR;
    }
    sel->examine = fa_str_eq(&cmd->parsed.name, "EXAMINE");
    v->readonly = sel->examine;
    cmd->data = sel;
    rc = fa_imap_name_in(s, &cmd->parsed.args[0], pool, &v->name);
    if (rc == FA_OK) {
        rc = fa_imap_call(s, s->store->backend->mailbox_open(s->store, &s->user, &v->name, pool,
                                                             fa_imap_select_opened, s));
    }
    if (rc == FA_AGAIN) {
        return FA_AGAIN;
    }
    return rc == FA_DECLINED ? fa_imap_bad(s, "Invalid mailbox name")
                             : fa_imap_storage_no(s, rc, "SELECT");
}


/* ---- CLOSE, UNSELECT ---- */

static void
fa_imap_close_expunged(void *data, fa_int_t rc, fa_mailbox_changes_t *ch)
{
    fa_imap_session_t  *s = data;

    (void) ch;
    if (fa_imap_answered(s)) {
        return;
    }
    fa_imap_view_free(s);
    s->state = FA_IMAP_AUTHENTICATED;
    if (rc != FA_OK) {
        fa_imap_storage_no(s, rc, "CLOSE");
    } else {
        fa_imap_tagged(s, "OK", "CLOSE completed");
    }
    fa_imap_done(s);
}

/* CLOSE expunges silently (unless read-only), UNSELECT does not */
fa_int_t
fa_imap_close(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_int_t  rc;

    if (cmd->parsed.nargs) {
        return fa_imap_bad(s, "CLOSE takes no arguments");
    }
    if (!s->view->readonly) {
        rc = fa_imap_call(s, s->store->backend->expunge(s->view->box, NULL, cmd->pool,
                                                        fa_imap_close_expunged, s));
        if (rc == FA_AGAIN) {
            return FA_AGAIN;
        }
    }
    fa_imap_view_free(s);
    s->state = FA_IMAP_AUTHENTICATED;
    return fa_imap_tagged(s, "OK", "CLOSE completed");
}

fa_int_t
fa_imap_unselect(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    if (cmd->parsed.nargs) {
        return fa_imap_bad(s, "UNSELECT takes no arguments");
    }
    fa_imap_view_free(s);
    s->state = FA_IMAP_AUTHENTICATED;
    return fa_imap_tagged(s, "OK", "UNSELECT completed");
}
