/*
 * FETCH's calls to the store before its responses (fa_imap_fetch.c runs
 * them from its state machine): the changes since a MODSEQ for VANISHED
 * (EARLIER), each batch's metadata, and \Seen for the messages of the
 * batch that a non-PEEK body item reads, in one store call per batch.
 *
 * Each call sets f->pending; its callback only records what came back
 * (in f->batch, the pool the store wrote into) and wakes the command up,
 * or frees the state when the session went meanwhile (f->orphan).
 */

#include "fa_imap_fetch.h"


/* ---- VANISHED (EARLIER) ---- */

typedef struct {
    fa_imap_fetch_t  *f;
    char              buf[4096];
    size_t            n;
    uint32_t          first, last;
    unsigned          have:1;
    unsigned          any:1;
} fa_imap_uid_out_t;

static void
fa_imap_uid_out_range(fa_imap_uid_out_t *o)
{
    if (!o->any) {
        o->n = fa_snprintf(o->buf, sizeof(o->buf), "* VANISHED (EARLIER) ");
        o->any = 1;
    } else {
        o->buf[o->n++] = ',';
    }
    o->n += o->first == o->last
            ? fa_snprintf(o->buf + o->n, sizeof(o->buf) - o->n, "%u", (unsigned) o->first)
            : fa_snprintf(o->buf + o->n, sizeof(o->buf) - o->n, "%u:%u", (unsigned) o->first,
                          (unsigned) o->last);
    if (o->n > sizeof(o->buf) - 64) {
        fa_imap_write(o->f->s, o->buf, o->n);
        o->n = 0;
    }
}

/* UIDs first..last, ascending: merged with the previous ones when they touch */
static void
fa_imap_uid_out_add(fa_imap_uid_out_t *o, uint32_t first, uint32_t last)
{
    if (o->have && (uint64_t) o->last + 1 == first) {
        o->last = last;
        return;
    }
    if (o->have) {
        fa_imap_uid_out_range(o);
    }
    o->first = first;
    o->last = last;
    o->have = 1;
}

static void
fa_imap_uid_out_end(fa_imap_uid_out_t *o)
{
    if (o->have) {
        fa_imap_uid_out_range(o);
    }
    if (o->any) {
        o->buf[o->n++] = '\r';
        o->buf[o->n++] = '\n';
        fa_imap_write(o->f->s, o->buf, o->n);
    }
}

/* the first index of the view whose UID is >= uid */
static fa_uint_t
fa_imap_view_lower(const fa_imap_view_t *v, uint64_t uid)
{
    fa_uint_t  lo = 0, hi = v->n;

    while (lo < hi) {
        fa_uint_t mid = lo + (hi - lo) / 2;
        if (v->uids[mid] < uid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/*
 * The store forgot expunges that old (too_old): every UID of the set that
 * the view does not hold, up to its last one, may have vanished.
 */
static void
fa_imap_fetch_vanished_all(fa_imap_fetch_t *f, fa_imap_uid_out_t *o)
{
    fa_imap_view_t  *v = f->s->view;
    uint64_t         max = v->n ? v->uids[v->n - 1] : 0;

    for (fa_uint_t r = 0; r < f->nvset; r++) {
        uint64_t  u = f->vset[r].first, b = fa_min((uint64_t) f->vset[r].last, max);
        fa_uint_t i = fa_imap_view_lower(v, u);
        while (u <= b) {
            uint64_t next = i < v->n ? v->uids[i] : b + 1;
            if (next > u) {
                fa_imap_uid_out_add(o, (uint32_t) u, (uint32_t) fa_min(next - 1, b));
            }
            u = next + 1;
            i++;
        }
    }
}

fa_int_t
fa_imap_fetch_send_vanished(fa_imap_fetch_t *f)
{
    fa_mailbox_changes_t  *ch = f->changes;
    fa_imap_uid_out_t      o;
    fa_uint_t              j = 0;

    memset(&o, 0, sizeof(o));
    o.f = f;
    if (ch->too_old) {
        fa_imap_fetch_vanished_all(f, &o);
    }
    for (fa_uint_t i = 0; !ch->too_old && i < ch->nexpunged; i++) {
        uint32_t uid = ch->expunged[i];
        while (j < f->nvset && f->vset[j].last < uid) {
            j++;
        }
        if (j < f->nvset && f->vset[j].first <= uid
            && fa_imap_view_msn(f->s->view, uid) == 0)
        {
            fa_imap_uid_out_add(&o, uid, uid);
        }
    }
    fa_imap_uid_out_end(&o);
    fa_imap_fetch_batch_end(f);
    f->state = FA_IMAP_FS_BATCH;
    return FA_OK;
}

static void
fa_imap_fetch_changes_done(void *data, fa_int_t rc, fa_mailbox_changes_t *ch)
{
    fa_imap_fetch_t  *f = data;

    f->pending = 0;
    if (!f->orphan) {
        /* the struct may be the backend's own: keep a copy, its arrays are in batch */
        f->changes = rc == FA_OK ? fa_palloc(f->batch, sizeof(*ch)) : NULL;
        if (f->changes) {
            *f->changes = *ch;
            f->state = FA_IMAP_FS_VANISHED_SEND;
        } else {
            f->op_rc = rc == FA_OK ? FA_ERROR : rc;
            f->state = FA_IMAP_FS_FAILED;
        }
    }
    fa_imap_fetch_wake(f);
}

fa_int_t
fa_imap_fetch_ask_changes(fa_imap_fetch_t *f)
{
    fa_int_t  rc;

    f->batch = fa_pool_create(4096, f->log);
    if (f->batch == NULL) {
        return FA_ERROR;
    }
    f->pending = 1;
    rc = f->backend->changes_since(f->box, f->changedsince, f->batch,
                                   fa_imap_fetch_changes_done, f);
    if (rc == FA_AGAIN) {
        return FA_AGAIN;
    }
    f->pending = 0;
    f->op_rc = rc == FA_OK ? FA_ERROR : rc;
    f->state = FA_IMAP_FS_FAILED;
    return FA_OK;
}


/* ---- batches of metadata, and \Seen ---- */

/* the batch is answered (or VANISHED is): its pool goes */
void
fa_imap_fetch_batch_end(fa_imap_fetch_t *f)
{
    if (f->batch) {
        fa_pool_destroy(f->batch);
        f->batch = NULL;
    }
    f->msgs = NULL;
    f->nmsgs = f->cur = f->asked = 0;
    f->seen_set = NULL;
    f->changes = NULL;
    f->keywords = 0;
}

static void
fa_imap_fetch_meta_done(void *data, fa_int_t rc, fa_message_meta_t *msgs, fa_uint_t n)
{
    fa_imap_fetch_t  *f = data;

    f->pending = 0;
    if (!f->orphan) {
        if (rc == FA_OK) {
            f->msgs = msgs;
            f->nmsgs = n;
            f->cur = 0;
            f->expunged += f->asked > n ? f->asked - n : 0;
            f->state = FA_IMAP_FS_SEEN;
        } else {
            f->op_rc = rc;
            f->state = FA_IMAP_FS_FAILED;
        }
    }
    fa_imap_fetch_wake(f);
}

/* up to FA_IMAP_FETCH_BATCH UIDs of the set, from the cursor on */
fa_int_t
fa_imap_fetch_ask_batch(fa_imap_fetch_t *f)
{
    fa_uid_set_t    *set;
    fa_uid_range_t  *r;
    fa_uint_t        k = 0, want = FA_IMAP_FETCH_BATCH;
    fa_int_t         rc;

    fa_imap_fetch_batch_end(f);
    if (f->ri >= f->set.nranges) {
        f->state = FA_IMAP_FS_END;
        return FA_OK;
    }
    f->batch = fa_pool_create(16384, f->log);
    set = f->batch ? fa_palloc(f->batch, sizeof(*set)) : NULL;
    r = set ? fa_palloc(f->batch, FA_IMAP_FETCH_BATCH * sizeof(*r)) : NULL;
    if (r == NULL) {
        return FA_ERROR;
    }
    while (want && f->ri < f->set.nranges) {
        const fa_uid_range_t *sr = &f->set.ranges[f->ri];
        uint64_t avail = (uint64_t) sr->last - f->next_uid + 1;
        uint32_t take = (uint32_t) fa_min(avail, (uint64_t) want);
        r[k].first = f->next_uid;
        r[k].last = f->next_uid + take - 1;
        k++;
        want -= take;
        if (take == avail) {
            f->ri++;
            f->next_uid = f->ri < f->set.nranges ? f->set.ranges[f->ri].first : 0;
        } else {
            f->next_uid += take;
        }
    }
    set->ranges = r;
    set->nranges = k;
    f->asked = FA_IMAP_FETCH_BATCH - want;
    f->pending = 1;
    rc = f->backend->fetch_meta(f->box, set, f->batch, fa_imap_fetch_meta_done, f);
    if (rc == FA_AGAIN) {
        return FA_AGAIN;
    }
    f->pending = 0;
    f->op_rc = rc == FA_OK ? FA_ERROR : rc;
    f->state = FA_IMAP_FS_FAILED;
    return FA_OK;
}

/* the index of uid in the batch, or -1 */
static ssize_t
fa_imap_fetch_find(fa_imap_fetch_t *f, uint32_t uid)
{
    fa_uint_t  lo = 0, hi = f->nmsgs;

    while (lo < hi) {
        fa_uint_t mid = lo + (hi - lo) / 2;
        if (f->msgs[mid].uid == uid) {
            return (ssize_t) mid;
        }
        if (f->msgs[mid].uid < uid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

static void
fa_imap_fetch_seen_done(void *data, fa_int_t rc, fa_message_meta_t *res, fa_uint_t n)
{
    fa_imap_fetch_t  *f = data;

    f->pending = 0;
    if (!f->orphan) {
        if (rc != FA_OK) {
            fa_log_error(FA_LOG_ERR, f->log, 0, "imap fetch: setting \\Seen failed: %s",
                         fa_storage_strerror(rc));
        }
        for (fa_uint_t i = 0; rc == FA_OK && i < n; i++) {
            ssize_t k = fa_imap_fetch_find(f, res[i].uid);
            if (k < 0 || !(res[i].flags & FA_FLAG_SEEN) || (f->msgs[k].flags & FA_FLAG_SEEN)) {
                continue;
            }
            f->msgs[k].flags = res[i].flags & ~FA_FLAG_MODIFIED;
            f->msgs[k].keywords = res[i].keywords;
            f->msgs[k].modseq = res[i].modseq;
            f->seen_set[k] = 1;
        }
        f->state = FA_IMAP_FS_MESSAGE;
    }
    fa_imap_fetch_wake(f);
}

/* one store call for the batch's messages that a body item will mark read */
fa_int_t
fa_imap_fetch_ask_seen(fa_imap_fetch_t *f)
{
    fa_store_request_t  *req;
    fa_uid_set_t        *set;
    fa_uid_range_t      *r;
    fa_uint_t            k = 0;
    fa_int_t             rc;

    f->state = FA_IMAP_FS_MESSAGE;
    f->seen_set = fa_pcalloc(f->batch, f->nmsgs + 1);
    if (f->seen_set == NULL) {
        return FA_ERROR;
    }
    if (!f->set_seen || f->s->view->readonly) {
        return FA_OK;
    }
    req = fa_pcalloc(f->batch, sizeof(*req));
    set = fa_palloc(f->batch, sizeof(*set));
    r = fa_palloc(f->batch, (f->nmsgs + 1) * sizeof(*r));
    if (req == NULL || set == NULL || r == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < f->nmsgs; i++) {
        const fa_message_meta_t *m = &f->msgs[i];
        if ((m->flags & FA_FLAG_SEEN) || fa_imap_fetch_skipped(f, m)) {
            continue;
        }
        if (k && (uint64_t) r[k - 1].last + 1 == m->uid) {
            r[k - 1].last = m->uid;
        } else {
            r[k].first = r[k].last = m->uid;
            k++;
        }
    }
    if (k == 0) {
        return FA_OK;
    }
    set->ranges = r;
    set->nranges = k;
    req->mode = FA_STORE_ADD;
    req->flags = FA_FLAG_SEEN;
    f->pending = 1;
    rc = f->backend->store(f->box, set, req, f->batch, fa_imap_fetch_seen_done, f);
    if (rc == FA_AGAIN) {
        return FA_AGAIN;
    }
    f->pending = 0;
    fa_log_error(FA_LOG_ERR, f->log, 0, "imap fetch: setting \\Seen failed: %s",
                 fa_storage_strerror(rc));
    return FA_OK;
}
