/*
 * Changes to the selected mailbox: STORE (with CONDSTORE's UNCHANGEDSINCE),
 * COPY and MOVE (UIDPLUS's COPYUID), EXPUNGE and UID EXPUNGE.  Each is one
 * call to the store, durable before its callback; the answers come from
 * what the store says happened, so another writer's concurrent change is
 * never hidden or invented.
 */

#include "fa_imap_int.h"

/* a UID set as "1:3,7" */
static size_t
fa_imap_set_render(const fa_uid_set_t *set, char *buf, size_t size)
{
    size_t  n = 0;

    buf[0] = '\0';
    for (fa_uint_t i = 0; set && i < set->nranges && n + 24 < size; i++) {
        const fa_uid_range_t *r = &set->ranges[i];
        n += r->first == r->last
             ? fa_snprintf(buf + n, size - n, "%s%u", n ? "," : "", (unsigned) r->first)
             : fa_snprintf(buf + n, size - n, "%s%u:%u", n ? "," : "", (unsigned) r->first,
                           (unsigned) r->last);
    }
    return n;
}

static fa_int_t
fa_imap_readonly(fa_imap_session_t *s)
{
    return fa_imap_tagged(s, "NO", "[READ-ONLY] The mailbox is read-only");
}

/* ---- STORE ---- */

typedef struct {
    unsigned             silent:1;
    fa_int_t             rc;           /* the store's answer (in the command's pool) */
    fa_message_meta_t   *msgs;
    fa_uint_t            n;
} fa_imap_store_t;

static fa_int_t
fa_imap_store_reply(fa_imap_session_t *s)
{
    fa_imap_store_t    *st = s->cmd->data;
    fa_message_meta_t  *msgs = st->msgs;
    fa_uint_t           n = st->n;
    fa_int_t            rc = st->rc;
    char                flags[4096], modified[4096];
    size_t              nm = 0;

    modified[0] = '\0';
    for (fa_uint_t i = 0; (rc == FA_OK || rc == FA_STORAGE_MODIFIED) && i < n; i++) {
        fa_message_meta_t *m = &msgs[i];
        uint32_t msn = s->view ? fa_imap_view_msn(s->view, m->uid) : 0;
        if (msn == 0) {
            continue;
        }
        if (m->flags & FA_FLAG_MODIFIED) {
            if (nm + 16 < sizeof(modified)) {
                nm += fa_snprintf(modified + nm, sizeof(modified) - nm, "%s%u", nm ? "," : "",
                                  (unsigned) (s->cmd->parsed.uid ? m->uid : msn));
            }
            continue;
        }
        if (st->silent && !s->condstore) {
            continue;
        }
        fa_imap_flags_render(s->view, m->flags & ~FA_FLAG_MODIFIED, m->keywords, flags,
                             sizeof(flags));
        char uid[32] = "", modseq[48] = "";
        if (s->cmd->parsed.uid) {
            fa_snprintf(uid, sizeof(uid), "UID %u ", (unsigned) m->uid);
        }
        if (s->condstore) {
            fa_snprintf(modseq, sizeof(modseq), " MODSEQ (%llu)",
                        (unsigned long long) m->modseq);
        }
        if (st->silent) {              /* CONDSTORE: still the new MODSEQ (RFC 7162 3.2) */
            fa_imap_send(s, "* %u FETCH (%s%s)", (unsigned) msn, uid, modseq + 1);
        } else {
            fa_imap_send(s, "* %u FETCH (%sFLAGS %s%s)", (unsigned) msn, uid, flags, modseq);
        }
    }
    if (rc == FA_STORAGE_MODIFIED || nm) {
        fa_imap_tagged(s, "OK", "[MODIFIED %s] Conditional STORE failed", modified);
    } else if (rc != FA_OK) {
        fa_imap_storage_no(s, rc, "STORE");
    } else {
        fa_imap_tagged(s, "OK", "STORE completed");
    }
    return FA_OK;
}

static void
fa_imap_stored(void *data, fa_int_t rc, fa_message_meta_t *msgs, fa_uint_t n)
{
    fa_imap_session_t  *s = data;
    fa_imap_store_t    *st;
    uint64_t            keywords = 0;

    if (fa_imap_answered(s)) {
        return;
    }
    st = s->cmd->data;
    st->rc = rc;
    st->msgs = msgs;
    st->n = n;
    for (fa_uint_t i = 0; (rc == FA_OK || rc == FA_STORAGE_MODIFIED) && i < n; i++) {
        keywords |= msgs[i].keywords;
    }
    /* a keyword new to the mailbox: its name first, the reply then */
    if (fa_imap_view_keywords(s, keywords, fa_imap_store_reply) == FA_AGAIN) {
        return;
    }
    fa_imap_store_reply(s);
    fa_imap_done(s);
}

/* "+FLAGS.SILENT" -> mode and silence */
static fa_int_t
fa_imap_store_item(const fa_imap_arg_t *a, fa_store_mode_t *mode, int *silent)
{
    fa_str_t  item;

    if (a->type != FA_IMAP_ARG_ATOM) {
        return FA_DECLINED;
    }
    item = a->str;
    *mode = FA_STORE_REPLACE;
    if (item.len && (item.data[0] == '+' || item.data[0] == '-')) {
        *mode = item.data[0] == '+' ? FA_STORE_ADD : FA_STORE_REMOVE;
        item.data++;
        item.len--;
    }
    *silent = item.len == 12 && strncasecmp((char *) item.data, "FLAGS.SILENT", 12) == 0;
    return *silent || fa_str_eqi(&item, "FLAGS") ? FA_OK : FA_DECLINED;
}

fa_int_t
fa_imap_store(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_imap_command_t   *p = &cmd->parsed;
    fa_store_request_t   req;
    fa_imap_store_t     *st = fa_pcalloc(cmd->pool, sizeof(*st));
    fa_uid_set_t         uids;
    fa_uint_t            i = 1;
    int                  silent;
    fa_int_t             rc;

    memset(&req, 0, sizeof(req));
    if (st == NULL) {
        return FA_ERROR;
    }
    if (p->nargs >= 3 && p->args[1].type == FA_IMAP_ARG_LIST) {
        fa_imap_arg_t *m = &p->args[1];          /* (UNCHANGEDSINCE n) */
        int64_t v = m->n == 2 && fa_imap_arg_is(&m->list[0], "UNCHANGEDSINCE")
                    ? fa_atoi(m->list[1].str.data, m->list[1].str.len) : -1;
        if (v < 0) {
            return fa_imap_bad(s, "Invalid STORE modifier");
        }
        req.unchangedsince = (uint64_t) v;
        s->condstore = 1;
        i = 2;
    }
    if (p->nargs != i + 2 || p->args[0].type != FA_IMAP_ARG_ATOM
        || fa_imap_store_item(&p->args[i], &req.mode, &silent) != FA_OK
        || fa_imap_flags_parse(s, &p->args[i + 1], cmd->pool, &req.flags, &req.keywords,
                               &req.nkeywords) != FA_OK)
    {
        return fa_imap_bad(s, "Syntax: STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] (flags)");
    }
    rc = fa_imap_view_uids(s, &p->args[0].str, p->uid, cmd->pool, &uids);
    if (rc != FA_OK) {
        return rc == FA_ERROR ? FA_ERROR : fa_imap_bad(s, "Invalid sequence set");
    }
    if (s->view->readonly) {
        return fa_imap_readonly(s);
    }
    if (uids.nranges == 0) {
        return fa_imap_tagged(s, "OK", "STORE completed");   /* nothing named */
    }
    st->silent = silent;
    cmd->data = st;
    rc = fa_imap_call(s, s->store->backend->store(s->view->box, &uids, &req, cmd->pool,
                                                  fa_imap_stored, s));
    return rc == FA_AGAIN ? FA_AGAIN : fa_imap_storage_no(s, rc, "STORE");
}


/* ---- COPY, MOVE ---- */

static void
fa_imap_copied(void *data, fa_int_t rc, uint32_t uidvalidity, fa_uid_set_t *src,
    fa_uid_set_t *dst)
{
    fa_imap_session_t  *s = data;
    int                 move;
    char                sset[4096], dset[4096];

    if (fa_imap_answered(s)) {
        return;
    }
    move = fa_str_eq(&s->cmd->parsed.name, "MOVE");

    if (rc != FA_OK) {
        fa_imap_storage_no(s, rc, move ? "MOVE" : "COPY");
        fa_imap_done(s);
        return;
    }
    fa_imap_set_render(src, sset, sizeof(sset));
    fa_imap_set_render(dst, dset, sizeof(dset));
    if (!move) {
        fa_imap_tagged(s, "OK", "[COPYUID %u %s %s] COPY completed", (unsigned) uidvalidity,
                       sset, dset);
        fa_imap_done(s);
        return;
    }
    /* RFC 6851: COPYUID untagged, then the moved messages' expunges */
    fa_imap_send(s, "* OK [COPYUID %u %s %s] Moved", (unsigned) uidvalidity, sset, dset);
    for (fa_uint_t i = 0; src && i < src->nranges; i++) {
        for (uint64_t u = src->ranges[i].first; u <= src->ranges[i].last; u++) {
            uint32_t uid = (uint32_t) u;
            fa_imap_view_expunged(s, &uid, 1);
        }
    }
    fa_imap_tagged(s, "OK", "MOVE completed");
    fa_imap_done(s);
}

static fa_int_t
fa_imap_copy_or_move(fa_imap_session_t *s, fa_imap_cmd_t *cmd, int move)
{
    fa_imap_command_t  *p = &cmd->parsed;
    fa_uid_set_t        uids;
    fa_str_t            dest;
    fa_int_t            rc;

    if (p->nargs != 2 || p->args[0].type != FA_IMAP_ARG_ATOM) {
        return fa_imap_bad(s, move ? "Syntax: MOVE set mailbox" : "Syntax: COPY set mailbox");
    }
    if (move && s->view->readonly) {
        return fa_imap_readonly(s);
    }
    rc = fa_imap_view_uids(s, &p->args[0].str, p->uid, cmd->pool, &uids);
    if (rc != FA_OK) {
        return rc == FA_ERROR ? FA_ERROR : fa_imap_bad(s, "Invalid sequence set");
    }
    rc = fa_imap_name_in(s, &p->args[1], cmd->pool, &dest);
    if (rc != FA_OK) {
        return rc == FA_ERROR ? FA_ERROR : fa_imap_bad(s, "Invalid mailbox name");
    }
    if (uids.nranges == 0) {
        return fa_imap_tagged(s, "OK", "%s completed", move ? "MOVE" : "COPY");
    }
    rc = fa_imap_call(s, s->store->backend->copy(s->view->box, &uids, &dest, move, cmd->pool,
                                                 fa_imap_copied, s));
    if (rc == FA_AGAIN) {
        return FA_AGAIN;
    }
    return rc == FA_STORAGE_NOTFOUND
           ? fa_imap_tagged(s, "NO", "[TRYCREATE] No such mailbox")
           : fa_imap_storage_no(s, rc, move ? "MOVE" : "COPY");
}

fa_int_t
fa_imap_copy(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    return fa_imap_copy_or_move(s, cmd, 0);
}

fa_int_t
fa_imap_move(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    return fa_imap_copy_or_move(s, cmd, 1);
}


/* ---- EXPUNGE, UID EXPUNGE ---- */

static void
fa_imap_expunged(void *data, fa_int_t rc, fa_mailbox_changes_t *ch)
{
    fa_imap_session_t  *s = data;

    if (fa_imap_answered(s)) {
        return;
    }
    if (rc != FA_OK) {
        fa_imap_storage_no(s, rc, "EXPUNGE");
    } else {
        if (s->view) {
            fa_imap_view_expunged(s, ch->expunged, ch->nexpunged);
        }
        fa_imap_tagged(s, "OK", "EXPUNGE completed");
    }
    fa_imap_done(s);
}

fa_int_t
fa_imap_expunge(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_imap_command_t  *p = &cmd->parsed;
    fa_uid_set_t        uids, *set = NULL;
    fa_int_t            rc;

    if (p->nargs != (p->uid ? 1u : 0u)) {
        return fa_imap_bad(s, p->uid ? "Syntax: UID EXPUNGE set" : "EXPUNGE takes no arguments");
    }
    if (s->view->readonly) {
        return fa_imap_readonly(s);
    }
    if (p->uid) {
        rc = fa_imap_view_uids(s, &p->args[0].str, 1, cmd->pool, &uids);
        if (rc != FA_OK) {
            return rc == FA_ERROR ? FA_ERROR : fa_imap_bad(s, "Invalid UID set");
        }
        if (uids.nranges == 0) {
            return fa_imap_tagged(s, "OK", "EXPUNGE completed");
        }
        set = &uids;
    }
    rc = fa_imap_call(s, s->store->backend->expunge(s->view->box, set, cmd->pool,
                                                    fa_imap_expunged, s));
    return rc == FA_AGAIN ? FA_AGAIN : fa_imap_storage_no(s, rc, "EXPUNGE");
}
