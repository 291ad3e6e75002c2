/*
 * facteurctl check, second half: what the walk of fa_lmdb_check.c read is
 * compared body by body, message by message, mailbox by mailbox and user
 * by user; each disagreement is one finding, and with repair what can be
 * fixed is written in the same transaction (see the top of
 * fa_lmdb_check.c for the modes, docs/storage.md for what is repaired).
 */

#include "fa_lmdb_check.h"

/* ---- bodies: references, copies, files ---- */

static int
fa_lmdb_ck_body_cmp(const void *a, const void *b)
{
    return memcmp((*(fa_lmdb_ck_body_t *const *) a)->id, (*(fa_lmdb_ck_body_t *const *) b)->id,
                  FA_LMDB_BODY_ID_LEN);
}

/* a body no message uses: its reference, its inline copy, its file go */
static void
fa_lmdb_ck_body_unused(fa_lmdb_check_op_t *ck, fa_lmdb_ck_body_t *b, const char *hex)
{
    char    what[160];
    size_t  n = 0;

    what[0] = '\0';
    if (b->has_ref) {
        n += fa_snprintf(what + n, sizeof(what) - n, "a reference record");
    }
    if (b->has_inline) {
        n += fa_snprintf(what + n, sizeof(what) - n, "%san inline copy of %" PRIu64 " bytes",
                         n ? ", " : "", b->inline_size);
    }
    if (b->has_file) {
        fa_snprintf(what + n, sizeof(what) - n, "%sa file of %" PRIu64 " bytes",
                    n ? ", " : "", b->file_size);
    }
    if (b->has_file && !b->has_ref && !b->has_inline) {
        /*
         * Only a file: an append renamed it into blobs/ and its commit never
         * came (the server was killed).  No index is wrong and no client was
         * told it was stored: not a problem, just space to take back.
         */
        fa_lmdb_ck_find(ck, -1, "body %s is used by no message (%s, left by an interrupted "
                        "append)%s", hex, what, ck->repair ? ": removed" : "");
    } else {
        fa_lmdb_ck_find(ck, 1, "body %s is used by no message (%s)", hex, what);
    }
    if (b->has_ref) {
        fa_lmdb_ck_del(ck, FA_LMDB_REFS, b->id, FA_LMDB_BODY_ID_LEN);
    }
    if (b->has_inline) {
        fa_lmdb_ck_del(ck, FA_LMDB_BODIES, b->id, FA_LMDB_BODY_ID_LEN);
    }
    if (b->has_file && ck->repair && ck->rc == FA_OK) {
        fa_lmdb_ck_wrote(ck, fa_lmdb_op_unlink(&ck->op, b->id, 1));   /* after the commit */
    }
}

static const char *
fa_lmdb_ck_kind(uint32_t kind)
{
    return kind == FA_LMDB_BODY_INLINE ? "inline" : kind == FA_LMDB_BODY_BLOB ? "a file"
           : "of no known kind";
}

/* its reference record against what is there; 1 when it must be written again */
static int
fa_lmdb_ck_body_ref(fa_lmdb_check_op_t *ck, fa_lmdb_ck_body_t *b, const char *hex, int ref_ok)
{
    int  fix = 0;

    if (!b->has_ref) {
        fa_lmdb_ck_find(ck, 1, "body %s (%s, %" PRIu64 " bytes) has no reference record, %u "
                        "messages use it", hex, fa_lmdb_ck_kind(b->kind), b->actual, b->nmsgs);
        return 1;
    }
    if (!ref_ok) {
        fa_lmdb_ck_find(ck, 1, "body %s: damaged reference record (%u bytes)", hex, b->ref_len);
        return 1;
    }
    if (b->ref.kind != b->kind) {
        fa_lmdb_ck_find(ck, 1, "body %s: its reference record says %s, the body is %s", hex,
                        fa_lmdb_ck_kind(b->ref.kind), fa_lmdb_ck_kind(b->kind));
        fix = 1;
    }
    if (b->ref.refs != b->nmsgs) {
        fa_lmdb_ck_find(ck, 1, "body %s: reference count %u, but %u messages use it", hex,
                        b->ref.refs, b->nmsgs);
        fix = 1;
    }
    if (b->ref.size != b->actual) {
        fa_lmdb_ck_find(ck, 1, "body %s: its reference record says %" PRIu64 " bytes, the "
                        "body has %" PRIu64, hex, b->ref.size, b->actual);
        fix = 1;
    }
    return fix;
}

static void
fa_lmdb_ck_body_used(fa_lmdb_check_op_t *ck, fa_lmdb_ck_body_t *b, const char *hex)
{
    MDB_val            key = { FA_LMDB_BODY_ID_LEN, b->id }, val;
    fa_lmdb_ref_rec_t  ref;
    int                ref_ok, fix;

    ref_ok = b->has_ref && b->ref_len >= sizeof(b->ref)
             && (b->ref.kind == FA_LMDB_BODY_INLINE || b->ref.kind == FA_LMDB_BODY_BLOB);
    b->kind = ref_ok ? b->ref.kind : 0;
    if (!(b->kind == FA_LMDB_BODY_INLINE ? b->has_inline : b->has_file)) {
        b->kind = b->has_inline ? FA_LMDB_BODY_INLINE : b->has_file ? FA_LMDB_BODY_BLOB : 0;
    }
    if (b->kind == 0) {
        b->lost = 1;                       /* reported with each of its messages */
        if (b->has_ref) {
            fa_lmdb_ck_del(ck, FA_LMDB_REFS, b->id, FA_LMDB_BODY_ID_LEN);
        }
        return;
    }
    b->actual = b->kind == FA_LMDB_BODY_INLINE ? b->inline_size : b->file_size;
    b->damaged = b->actual != b->msg_size || b->sizes_differ;
    fix = fa_lmdb_ck_body_ref(ck, b, hex, ref_ok);
    if (b->kind == FA_LMDB_BODY_BLOB && b->has_inline) {
        fa_lmdb_ck_find(ck, 1, "body %s: an inline copy nobody reads (%" PRIu64 " bytes)", hex,
                        b->inline_size);
        fa_lmdb_ck_del(ck, FA_LMDB_BODIES, b->id, FA_LMDB_BODY_ID_LEN);
    }
    if (b->kind == FA_LMDB_BODY_INLINE && b->has_file) {
        fa_lmdb_ck_find(ck, 1, "body %s: a file nobody reads (blobs/%s)", hex, hex);
        if (ck->repair && ck->rc == FA_OK) {
            fa_lmdb_ck_wrote(ck, fa_lmdb_op_unlink(&ck->op, b->id, 1));
        }
    }
    if (fix && ck->repair && ck->rc == FA_OK) {
        ref.refs = b->nmsgs;
        ref.kind = b->kind;
        ref.size = b->actual;
        val.mv_size = sizeof(ref);
        val.mv_data = &ref;
        fa_lmdb_ck_wrote(ck, fa_lmdb_put(ck->op.lm, ck->txn, FA_LMDB_REFS, &key, &val));
    }
}

void
fa_lmdb_ck_bodies(fa_lmdb_check_op_t *ck)
{
    fa_lmdb_ck_body_t  **all;
    char                 hex[FA_LMDB_GUID_LEN + 1];
    size_t               n = 0;

    if (ck->nbodies == 0) {
        return;
    }
    all = malloc(ck->nbodies * sizeof(*all));
    if (all == NULL) {
        ck->rc = FA_LMDB_FAILED;
        return;
    }
    for (size_t i = 0; i < ck->cap; i++) {
        if (ck->bodies[i].used) {
            all[n++] = &ck->bodies[i];
        }
    }
    qsort(all, n, sizeof(*all), fa_lmdb_ck_body_cmp);      /* reports in a stable order */
    for (size_t i = 0; i < n && ck->rc == FA_OK; i++) {
        fa_lmdb_hex(all[i]->id, FA_LMDB_BODY_ID_LEN, hex);
        if (all[i]->nmsgs == 0) {
            fa_lmdb_ck_body_unused(ck, all[i], hex);
        } else {
            fa_lmdb_ck_body_used(ck, all[i], hex);
        }
    }
    free(all);
}

/* ---- messages ---- */

static void
fa_lmdb_ck_count(fa_lmdb_count_t *c, const fa_lmdb_ck_msg_t *m)
{
    c->messages++;
    c->unseen += (m->flags & FA_FLAG_SEEN) ? 0 : 1;
    c->deleted += (m->flags & FA_FLAG_DELETED) ? 1 : 0;
    c->size += m->size;
}

/* the message record goes, with its MODSEQ entry; the tombstone comes with the mailbox */
static void
fa_lmdb_ck_msg_drop(fa_lmdb_check_op_t *ck, fa_lmdb_ck_msg_t *m)
{
    u_char  kbuf[16];

    m->drop = 1;
    fa_lmdb_key_uid(kbuf, m->box, m->uid);
    fa_lmdb_ck_del(ck, FA_LMDB_MESSAGES, kbuf, 12);
    if (m->indexed) {
        fa_lmdb_key_seq(kbuf, m->box, m->modseq);
        fa_lmdb_ck_del(ck, FA_LMDB_MODSEQ, kbuf, 16);
    }
}

static void
fa_lmdb_ck_lost(fa_lmdb_check_op_t *ck, fa_lmdb_ck_msg_t *m, const fa_lmdb_ck_body_t *b,
    const char *label)
{
    char  hex[FA_LMDB_GUID_LEN + 1];
    int   ref_ok = b && b->has_ref && b->ref_len >= sizeof(b->ref);

    fa_lmdb_hex(m->body, FA_LMDB_BODY_ID_LEN, hex);
    fa_lmdb_ck_find(ck, 1, "%s: UID %u: its body %s is missing (%s), the message is lost%s",
                    label, m->uid, hex,
                    !ref_ok ? "nothing of it is left"
                    : b->ref.kind == FA_LMDB_BODY_BLOB ? "no file in blobs/"
                    : "no inline copy", ck->repair ? "; its record is dropped" : "");
    fa_lmdb_ck_msg_drop(ck, m);
}

static void
fa_lmdb_ck_msg_check(fa_lmdb_check_op_t *ck, fa_lmdb_ck_box_t *bx, fa_lmdb_ck_msg_t *m)
{
    char                label[FA_LMDB_CK_LABEL], hex[FA_LMDB_GUID_LEN + 1];
    fa_lmdb_ck_body_t  *b;

    fa_lmdb_ck_label(ck, bx, label, sizeof(label));
    if (m->foreign) {
        fa_lmdb_ck_find(ck, 0, "%s: UID %u: a record of unknown version %u", label, m->uid,
                        m->version);
        bx->skip_counts = 1;
        return;
    }
    if (m->damaged) {
        fa_lmdb_ck_find(ck, 1, "%s: UID %u: damaged record (%u bytes), the message is lost%s",
                        label, m->uid, m->len, ck->repair ? "; its record is dropped" : "");
        fa_lmdb_ck_msg_drop(ck, m);
        return;
    }
    b = fa_lmdb_ck_body(ck, m->body, 0);
    bx->max_modseq = fa_max(bx->max_modseq, m->modseq);
    fa_lmdb_ck_count(&bx->seen, m);
    if (b == NULL || b->lost) {
        fa_lmdb_ck_lost(ck, m, b, label);
        return;
    }
    if (b->damaged) {
        fa_lmdb_hex(m->body, FA_LMDB_BODY_ID_LEN, hex);
        fa_lmdb_ck_find(ck, 0, "%s: UID %u: its body %s has %" PRIu64 " bytes, the message "
                        "says %" PRIu64 ": the content is damaged", label, m->uid, hex,
                        b->actual, m->size);
    }
    if (m->bad_tail) {
        fa_lmdb_ck_find(ck, 0, "%s: UID %u: its metadata does not fit its record", label,
                        m->uid);
    }
    if (!m->indexed) {
        fa_lmdb_ck_find(ck, 1, "%s: UID %u is missing from the MODSEQ index%s", label, m->uid,
                        ck->repair ? "; it gets a new MODSEQ" : "");
        m->renumber = 1;
    }
    fa_lmdb_ck_count(&bx->kept, m);
}

/* messages of mailboxes that exist only through them, or are of another version, are
   left alone (reported with the mailbox) */
void
fa_lmdb_ck_messages(fa_lmdb_check_op_t *ck)
{
    fa_lmdb_ck_box_t  *bx = NULL;
    fa_lmdb_ck_msg_t  *m;

    for (size_t i = 0; i < ck->msgs.n && ck->rc == FA_OK; i++) {
        m = &fa_lmdb_ck_msgs(ck)[i];
        if (bx == NULL || bx->id != m->box) {
            bx = fa_lmdb_ck_box(ck, m->box, 0);
        }
        if (bx && !bx->foreign && (bx->has_rec || bx->nnames)) {
            fa_lmdb_ck_msg_check(ck, bx, m);
        }
    }
}

/* ---- mailboxes ---- */

static void
fa_lmdb_ck_counter(fa_lmdb_check_op_t *ck, const char *label, const char *what,
    uint64_t stored, uint64_t counted)
{
    if (stored != counted) {
        fa_lmdb_ck_find(ck, 1, "%s: counter %s is %" PRIu64 ", the messages say %" PRIu64,
                        label, what, stored, counted);
    }
}

/* a message missing from the MODSEQ index gets a new MODSEQ, and its entry */
static void
fa_lmdb_ck_renumber(fa_lmdb_check_op_t *ck, fa_lmdb_ck_msg_t *m, uint64_t seq)
{
    fa_lmdb_t  *lm = ck->op.lm;
    u_char      kbuf[12], sbuf[16], *copy;
    MDB_val     key = fa_lmdb_key_uid(kbuf, m->box, m->uid), skey, val;
    fa_int_t    rc;

    rc = fa_lmdb_get(lm, ck->txn, FA_LMDB_MESSAGES, &key, &val);
    copy = rc == FA_OK ? malloc(val.mv_size) : NULL;
    if (copy == NULL) {
        fa_lmdb_ck_wrote(ck, rc == FA_LMDB_RETRY ? rc : FA_LMDB_FAILED);
        return;
    }
    memcpy(copy, val.mv_data, val.mv_size);
    memcpy(copy + offsetof(fa_lmdb_msg_rec_t, modseq), &seq, sizeof(seq));
    val.mv_data = copy;
    rc = fa_lmdb_put(lm, ck->txn, FA_LMDB_MESSAGES, &key, &val);
    free(copy);
    if (rc == FA_OK) {
        skey = fa_lmdb_key_seq(sbuf, m->box, seq);
        val.mv_size = sizeof(m->uid);
        val.mv_data = &m->uid;
        rc = fa_lmdb_put(lm, ck->txn, FA_LMDB_MODSEQ, &skey, &val);
    }
    fa_lmdb_ck_wrote(ck, rc);
}

/*
 * Write the mailbox's record REC (already corrected): a tombstone for the
 * messages dropped, new MODSEQs for those missing from the index, then the
 * record if anything changed.
 */
static void
fa_lmdb_ck_box_write(fa_lmdb_check_op_t *ck, fa_lmdb_ck_box_t *b, fa_lmdb_box_rec_t *rec,
    int force)
{
    fa_lmdb_ck_msg_t  *m = ck->msgs.elts;
    size_t             first = fa_lmdb_ck_msg_at(ck, b->id, 0), n = 0;
    uint32_t          *uids;

    if (!ck->repair || ck->rc != FA_OK) {
        return;
    }
    uids = malloc((b->nmsgs ? b->nmsgs : 1) * sizeof(uint32_t));
    if (uids == NULL) {
        ck->rc = FA_LMDB_FAILED;
        return;
    }
    for (size_t i = first; i < ck->msgs.n && m[i].box == b->id; i++) {
        if (m[i].drop) {
            uids[n++] = m[i].uid;
        }
    }
    fa_lmdb_ck_wrote(ck, fa_lmdb_tombstone(ck->op.lm, ck->txn, b->id, rec, uids, n));
    free(uids);
    for (size_t i = first; i < ck->msgs.n && m[i].box == b->id && ck->rc == FA_OK; i++) {
        if (m[i].renumber) {
            fa_lmdb_ck_renumber(ck, &m[i], ++rec->highestmodseq);
        }
    }
    if (ck->rc == FA_OK && (force || memcmp(rec, &b->rec, sizeof(*rec)) != 0)) {
        fa_lmdb_ck_wrote(ck, fa_lmdb_box_put(ck->op.lm, ck->txn, b->id, rec));
        fa_lmdb_ck_changed(ck, b->id);
    }
}

/* counters, UIDNEXT and HIGHESTMODSEQ against the messages */
static void
fa_lmdb_ck_box_counters(fa_lmdb_check_op_t *ck, fa_lmdb_ck_box_t *b, const char *label,
    fa_lmdb_box_rec_t *rec)
{
    uint64_t  seq = fa_max(b->max_modseq, b->max_tomb);

    if (!b->skip_counts) {
        fa_lmdb_ck_counter(ck, label, "messages", rec->messages, b->seen.messages);
        fa_lmdb_ck_counter(ck, label, "unseen", rec->unseen, b->seen.unseen);
        fa_lmdb_ck_counter(ck, label, "deleted", rec->deleted, b->seen.deleted);
        fa_lmdb_ck_counter(ck, label, "size", rec->size, b->seen.size);
        rec->messages = (uint32_t) b->kept.messages;
        rec->unseen = (uint32_t) b->kept.unseen;
        rec->deleted = (uint32_t) b->kept.deleted;
        rec->size = b->kept.size;
    }
    if (b->nmsgs && rec->uidnext <= b->max_uid) {
        fa_lmdb_ck_find(ck, 1, "%s: UIDNEXT is %u, but UID %u exists", label, rec->uidnext,
                        b->max_uid);
        rec->uidnext = b->max_uid == UINT32_MAX ? UINT32_MAX : b->max_uid + 1;
    }
    if (rec->highestmodseq < seq) {
        fa_lmdb_ck_find(ck, 1, "%s: HIGHESTMODSEQ is %" PRIu64 ", but MODSEQ %" PRIu64
                        " is taken", label, rec->highestmodseq, seq);
        rec->highestmodseq = seq;
    }
}

/* a name whose mailbox record is gone or damaged: a new record, a new UIDVALIDITY */
static void
fa_lmdb_ck_box_recreate(fa_lmdb_check_op_t *ck, fa_lmdb_ck_box_t *b, fa_lmdb_ck_user_t *u,
    const char *label)
{
    fa_lmdb_box_rec_t  rec;
    uint32_t           now = (uint32_t) time(NULL);

    if (u == NULL) {
        fa_lmdb_ck_find(ck, 0, "%s: %s mailbox record, and its user does not exist", label,
                        b->rec_len ? "a damaged" : "no");
        return;
    }
    fa_lmdb_ck_find(ck, 1, "%s: %s mailbox record%s", label,
                    b->rec_len ? "a damaged" : "no",
                    ck->repair ? "; made again, with a new UIDVALIDITY" : "");
    memset(&rec, 0, sizeof(rec));
    rec.version = FA_LMDB_RECORD_V1;
    rec.uidvalidity = fa_max(now, fa_max(u->rec.last_uidvalidity, u->uidvalidity) + 1);
    rec.uidnext = b->max_uid == UINT32_MAX ? UINT32_MAX : b->max_uid + 1;
    rec.highestmodseq = fa_max(fa_max(b->max_modseq, b->max_tomb), 1);
    rec.user_id = u->rec.id;
    rec.messages = (uint32_t) b->kept.messages;
    rec.unseen = (uint32_t) b->kept.unseen;
    rec.deleted = (uint32_t) b->kept.deleted;
    rec.size = b->kept.size;
    u->uidvalidity = rec.uidvalidity;
    fa_lmdb_ck_box_write(ck, b, &rec, 1);
}

/* a record no name points to: named Recovered/ID, so that its mail can be read */
static void
fa_lmdb_ck_box_relink(fa_lmdb_check_op_t *ck, fa_lmdb_ck_box_t *b, fa_lmdb_ck_user_t *u,
    const char *label)
{
    fa_lmdb_t           *lm = ck->op.lm;
    char                 buf[48];
    fa_str_t             name, user;
    fa_lmdb_name_rec_t   n;
    fa_lmdb_user_rec_t   rec;
    fa_int_t             rc;

    if (u == NULL || !ck->repair) {
        fa_lmdb_ck_find(ck, u != NULL, "%s: no mailbox name points to it", label);
        return;
    }
    name.len = fa_snprintf(buf, sizeof(buf), "Recovered/%" PRIu64, b->id);
    name.data = (u_char *) buf;
    user.len = strlen(u->name);
    user.data = (u_char *) u->name;
    rc = fa_lmdb_name_get(lm, ck->txn, u->rec.id, &name, &n);
    if (rc != FA_STORAGE_NOTFOUND) {
        if (rc == FA_OK || rc == FA_STORAGE_INVALID || rc == FA_STORAGE_CORRUPT) {
            fa_lmdb_ck_find(ck, 0, "%s: no mailbox name points to it, and \"%s\" is taken",
                            label, buf);
        } else {
            fa_lmdb_ck_wrote(ck, rc);
        }
        return;
    }
    fa_lmdb_ck_find(ck, 1, "%s: no mailbox name points to it; named \"%s\"", label, buf);
    rc = fa_lmdb_user_get(lm, ck->txn, &user, &rec);
    if (rc == FA_OK) {
        rc = fa_lmdb_parents_create(lm, ck->txn, &user, &rec, &name);
    }
    if (rc == FA_OK) {
        memset(&n, 0, sizeof(n));
        n.id = b->id;
        rc = fa_lmdb_name_put(lm, ck->txn, u->rec.id, &name, &n);
    }
    fa_lmdb_ck_wrote(ck, rc);
}

static void
fa_lmdb_ck_box_check(fa_lmdb_check_op_t *ck, fa_lmdb_ck_box_t *b)
{
    char                 label[FA_LMDB_CK_LABEL];
    fa_lmdb_ck_name_t   *n = b->name != FA_LMDB_CK_NONE ? &fa_lmdb_ck_names(ck)[b->name]
                                                        : NULL;
    fa_lmdb_ck_user_t   *u;
    fa_lmdb_box_rec_t    rec;
    u_char               kbuf[8];

    fa_lmdb_ck_label(ck, b, label, sizeof(label));
    if (b->foreign) {
        fa_lmdb_ck_find(ck, 0, "%s: a record of unknown version %u", label, b->rec.version);
        u = fa_lmdb_ck_user(ck, b->rec.user_id);
        if (u) {
            u->foreign = 1;
        }
        return;
    }
    if (!b->has_rec && n == NULL) {
        if (b->rec_len) {
            fa_lmdb_ck_find(ck, 1, "%s: a damaged record (%zu bytes) no name points to", label,
                            b->rec_len);
            fa_lmdb_key_id(kbuf, b->id);
            fa_lmdb_ck_del(ck, FA_LMDB_BOXES, kbuf, 8);
        }
        if (b->nmsgs) {
            fa_lmdb_ck_find(ck, 0, "%s does not exist, but %u message records are filed "
                            "under it", label, b->nmsgs);
        }
        return;
    }
    u = fa_lmdb_ck_user(ck, b->has_rec ? b->rec.user_id : n->user_id);
    if (!b->has_rec) {
        fa_lmdb_ck_box_recreate(ck, b, u, label);
    } else {
        if (u == NULL) {
            fa_lmdb_ck_find(ck, 0, "%s: its user (id %" PRIu64 ") does not exist", label,
                            b->rec.user_id);
        }
        if (n == NULL) {
            fa_lmdb_ck_box_relink(ck, b, u, label);
        } else if (b->nnames > 1) {
            fa_lmdb_ck_find(ck, 0, "%s: %u mailbox names point to it", label, b->nnames);
        }
        if (n && n->user_id != b->rec.user_id) {
            fa_lmdb_ck_find(ck, 0, "%s: named by user id %" PRIu64 ", but it belongs to user "
                            "id %" PRIu64, label, n->user_id, b->rec.user_id);
        }
        rec = b->rec;
        fa_lmdb_ck_box_counters(ck, b, label, &rec);
        fa_lmdb_ck_box_write(ck, b, &rec, 0);
    }
    if (u && b->skip_counts) {
        u->foreign = 1;
    } else if (u) {
        u->seen.messages += b->seen.messages;
        u->seen.size += b->seen.size;
        u->kept.messages += b->kept.messages;
        u->kept.size += b->kept.size;
    }
}

void
fa_lmdb_ck_mailboxes(fa_lmdb_check_op_t *ck)
{
    fa_lmdb_ck_box_t   *b = ck->boxes.elts;
    fa_lmdb_ck_user_t  *u;

    /* a mailbox made again must get a UIDVALIDITY above all of its user's */
    for (size_t i = 0; i < ck->boxes.n; i++) {
        if (b[i].has_rec && (u = fa_lmdb_ck_user(ck, b[i].rec.user_id)) != NULL) {
            u->uidv_seen = fa_max(u->uidv_seen, b[i].rec.uidvalidity);
            u->uidvalidity = u->uidv_seen;
        }
    }
    for (size_t i = 0; i < ck->boxes.n && ck->rc == FA_OK; i++) {
        fa_lmdb_ck_box_check(ck, &b[i]);
    }
}

/* ---- users and the id counters ---- */

static void
fa_lmdb_ck_user_check(fa_lmdb_check_op_t *ck, fa_lmdb_ck_user_t *u)
{
    fa_str_t            name = { strlen(u->name), (u_char *) u->name };
    fa_lmdb_user_rec_t  rec;
    fa_int_t            rc;

    if (!u->foreign) {
        if (u->rec.messages_used != u->seen.messages) {
            fa_lmdb_ck_find(ck, 1, "user \"%s\": quota usage messages is %" PRIu64 ", the "
                            "messages say %" PRIu64, u->name, u->rec.messages_used,
                            u->seen.messages);
        }
        if (u->rec.bytes_used != u->seen.size) {
            fa_lmdb_ck_find(ck, 1, "user \"%s\": quota usage bytes is %" PRIu64 ", the "
                            "messages say %" PRIu64, u->name, u->rec.bytes_used, u->seen.size);
        }
    }
    if (u->rec.last_uidvalidity < u->uidv_seen) {
        fa_lmdb_ck_find(ck, 1, "user \"%s\": last UIDVALIDITY %u, but a mailbox has %u",
                        u->name, u->rec.last_uidvalidity, u->uidv_seen);
    }
    if (!ck->repair || ck->rc != FA_OK) {
        return;
    }
    /* read again: naming a recovered mailbox may have made a parent */
    rc = fa_lmdb_user_get(ck->op.lm, ck->txn, &name, &rec);
    if (rc != FA_OK) {
        fa_lmdb_ck_wrote(ck, rc);
        return;
    }
    u->rec = rec;
    if (!u->foreign) {
        rec.messages_used = u->kept.messages;
        rec.bytes_used = u->kept.size;
    }
    rec.last_uidvalidity = fa_max(rec.last_uidvalidity, u->uidvalidity);
    if (memcmp(&rec, &u->rec, sizeof(rec)) != 0) {
        fa_lmdb_ck_wrote(ck, fa_lmdb_user_put(ck->op.lm, ck->txn, &name, &rec));
    }
}

void
fa_lmdb_ck_all_users(fa_lmdb_check_op_t *ck)
{
    for (size_t i = 0; i < ck->users.n && ck->rc == FA_OK; i++) {
        fa_lmdb_ck_user_check(ck, &fa_lmdb_ck_users(ck)[i]);
    }
}

/* "next_user" and "next_box" hold the last id given: never below one in use */
void
fa_lmdb_ck_meta(fa_lmdb_check_op_t *ck, const char *name, uint64_t max, const char *what)
{
    MDB_val   key = { strlen(name), (void *) name }, val;
    uint64_t  v = 0;
    fa_int_t  rc = fa_lmdb_get(ck->op.lm, ck->txn, FA_LMDB_META, &key, &val);
    int       damaged = rc == FA_OK && val.mv_size != sizeof(v);

    if (rc != FA_OK && rc != FA_STORAGE_NOTFOUND) {
        fa_lmdb_ck_wrote(ck, rc);
        return;
    }
    if (rc == FA_OK && !damaged) {
        memcpy(&v, val.mv_data, sizeof(v));
    }
    if (damaged) {
        fa_lmdb_ck_find(ck, 1, "counter %s: damaged (%zu bytes)", name, val.mv_size);
    } else if (v < max) {
        fa_lmdb_ck_find(ck, 1, "counter %s is %" PRIu64 ", but %s %" PRIu64 " exists", name, v,
                        what, max);
    }
    if ((damaged || v < max) && ck->repair && ck->rc == FA_OK) {
        v = fa_max(v, max);
        val.mv_size = sizeof(v);
        val.mv_data = &v;
        fa_lmdb_ck_wrote(ck, fa_lmdb_put(ck->op.lm, ck->txn, FA_LMDB_META, &key, &val));
    }
}

/* ---- stale and damaged keys ---- */

void
fa_lmdb_ck_drops(fa_lmdb_check_op_t *ck)
{
    for (fa_lmdb_drop_t *d = ck->drops; d && ck->rc == FA_OK; d = d->next) {
        fa_lmdb_ck_del(ck, d->db, d->key, d->len);
    }
}
