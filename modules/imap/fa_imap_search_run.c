/*
 * Running a search over the selected mailbox: the view's messages in
 * batches of FA_IMAP_SEARCH_BATCH, one fetch_meta each, so a mailbox of
 * 100,000 messages costs the metadata of one batch at a time.  The
 * sequence sets and UID sets of the top level pick which messages are
 * fetched at all.
 *
 * Each message is evaluated from its metadata first.  When that decides,
 * the message is done; when a key needs the message itself (HEADER of an
 * uncached field, BODY, TEXT) or the caller wants a field the metadata
 * does not cache (THREAD's References), the raw message is read through
 * the store, chunk by chunk, only as far as needed.  A message whose
 * metadata has no part table (a backend that does not compute it) is
 * parsed first, from the same stream, into one.
 *
 * The loop keeps running for other sessions: every batch is a store
 * call that completes from the loop, and after FA_IMAP_SEARCH_SLICE bytes
 * of message text the search posts its event and goes on from there.
 *
 * The session may end while the store still works for it: what the store
 * calls back with (a batch, a read ticket) outlives the command and is
 * told the search is gone.
 */

#include "fa_imap_search.h"

enum {
    FA_SS_BATCH = 0,      /* fetch the next batch of metadata */
    FA_SS_META,           /* waiting for it */
    FA_SS_MESSAGE,        /* the batch's next message */
    FA_SS_READ,           /* reading the current message */
    FA_SS_FAIL,           /* the store failed: answer NO */
    FA_SS_END,            /* the caller's answer */
    FA_SS_DONE
};

/* a fetch_meta in flight and its results; se NULL once the command is gone */
typedef struct {
    fa_imap_search_t  *se;
    fa_pool_t         *pool;
} fa_imap_sbatch_t;

/* a message_read that answered FA_AGAIN */
typedef struct {
    fa_imap_search_t  *se;
    unsigned           pending:1;
} fa_imap_sticket_t;

static void fa_imap_search_continue(fa_imap_search_t *se);


/* ---- the end of a command, whenever it comes ---- */

static void
fa_imap_search_msg_free(fa_imap_search_t *se)
{
    if (se->stream) {
        se->s->store->backend->message_close(se->stream);
        se->stream = NULL;
    }
    se->parser = NULL;
    if (se->msg.pool) {
        fa_pool_destroy(se->msg.pool);
        se->msg.pool = NULL;
    }
}

static void
fa_imap_search_cleanup(void *data)
{
    fa_imap_search_t   *se = data;
    fa_imap_sbatch_t   *b = se->batch;
    fa_imap_sticket_t  *t = se->read_ticket;

    if (b) {
        if (se->state == FA_SS_META) {
            b->se = NULL;               /* the store's callback frees it */
        } else {
            fa_pool_destroy(b->pool);
        }
        se->batch = NULL;
    }
    if (t) {
        if (t->pending) {
            t->se = NULL;
        } else {
            free(t);
        }
        se->read_ticket = NULL;
    }
    fa_imap_search_msg_free(se);
    if (se->event.posted) {
        fa_event_delete_posted(&se->event);
    }
    fa_imap_search_text_free(se);
}

static void
fa_imap_search_posted(fa_event_t *ev)
{
    fa_imap_search_continue(ev->data);
}

static int
fa_imap_search_native(const fa_str_t *cs)
{
    return fa_str_casecmp(cs, "UTF-8") == 0 || fa_str_casecmp(cs, "US-ASCII") == 0;
}

fa_int_t
fa_imap_search_parse(fa_imap_session_t *s, fa_imap_cmd_t *cmd, const fa_imap_arg_t *args,
    fa_uint_t nargs, int charset_first, fa_imap_search_t **out)
{
    fa_imap_search_t  *se = fa_pcalloc(cmd->pool, sizeof(*se));
    const fa_str_t    *cs = NULL;
    fa_str_t           probe;
    fa_uint_t          i = 0;
    const char        *why = NULL;
    fa_int_t           rc;

    if (se == NULL || fa_pool_cleanup_add(cmd->pool, fa_imap_search_cleanup, se) == NULL) {
        return FA_ERROR;
    }
    se->s = s;
    se->pool = cmd->pool;
    se->uid = cmd->parsed.uid;
    se->cd = se->cd_cache = (iconv_t) -1;
    se->event.data = se;
    se->event.handler = fa_imap_search_posted;
    se->event.log = s->c->log;
    if (charset_first) {
        if (nargs == 0 || (cs = fa_imap_arg_string(&args[0])) == NULL) {
            fa_imap_bad(s, "Missing charset");
            return FA_DECLINED;
        }
        i = 1;
    } else if (nargs >= 2 && fa_imap_arg_is(&args[0], "CHARSET")) {
        if ((cs = fa_imap_arg_string(&args[1])) == NULL) {
            fa_imap_bad(s, "Invalid charset");
            return FA_DECLINED;
        }
        i = 2;
    }
    if (cs && fa_imap_search_native(cs)) {
        cs = NULL;
    }
    /* other charsets iconv knows are converted; the ones we name are those */
    if (cs && fa_mime_decode_charset(cmd->pool, cs, (u_char *) "", 0, &probe) == FA_DECLINED) {
        fa_imap_tagged(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unknown charset");
        return FA_DECLINED;
    }
    rc = fa_imap_search_keys(s, se, args + i, nargs - i, cs, &why);
    if (rc == FA_DECLINED) {
        fa_imap_bad(s, why);
        return FA_DECLINED;
    }
    if (rc != FA_OK) {
        return FA_ERROR;
    }
    if (se->has_modseq && !s->condstore) {
        /* a CONDSTORE-enabling command (RFC 7162 3.1) */
        s->condstore = 1;
        fa_imap_send(s, "* OK [HIGHESTMODSEQ %llu] Highest",
                     (unsigned long long) s->view->highestmodseq);
    }
    *out = se;
    return FA_OK;
}

int
fa_imap_search_has_modseq(const fa_imap_search_t *se)
{
    return se->has_modseq;
}


/* ---- batches ---- */

/* the top level's sequence and UID sets: messages outside are not fetched */
static int
fa_imap_search_prefilter(fa_imap_search_t *se, fa_imap_smsg_t *m)
{
    const fa_imap_skey_t  *k = se->root;

    if (k->type != FA_SK_AND) {
        return k->type == FA_SK_SEQ || k->type == FA_SK_UID
               ? fa_imap_search_eval(se, k, m) == FA_SK_TRUE : 1;
    }
    for (k = k->child; k; k = k->next) {
        if ((k->type == FA_SK_SEQ || k->type == FA_SK_UID)
            && fa_imap_search_eval(se, k, m) != FA_SK_TRUE)
        {
            return 0;
        }
    }
    return 1;
}

static void
fa_imap_search_meta_done(void *data, fa_int_t rc, fa_message_meta_t *msgs, fa_uint_t n)
{
    fa_imap_sbatch_t  *b = data;
    fa_imap_search_t  *se = b->se;

    if (se == NULL) {
        fa_pool_destroy(b->pool);       /* the command is gone */
        return;
    }
    if (rc != FA_OK) {
        fa_pool_destroy(b->pool);
        se->batch = NULL;
        se->state = FA_SS_FAIL;
        se->error = rc;
    } else {
        se->metas = msgs;
        se->nmetas = n;
        se->mi = 0;
        se->state = FA_SS_MESSAGE;
    }
    fa_imap_search_continue(se);
}

static fa_int_t
fa_imap_search_batch(fa_imap_search_t *se)
{
    fa_imap_view_t     *v = se->s->view;
    fa_message_meta_t   meta;
    fa_imap_smsg_t      probe;
    fa_imap_sbatch_t   *b;
    fa_uid_range_t     *u;
    fa_uid_set_t        set;
    fa_uint_t           k = 0, count = 0;
    fa_pool_t          *pool;
    fa_int_t            rc;

    memset(&meta, 0, sizeof(meta));
    memset(&probe, 0, sizeof(probe));
    probe.meta = &meta;
    pool = fa_pool_create(16384, se->s->c->log);
    b = pool ? fa_palloc(pool, sizeof(*b)) : NULL;
    u = b ? fa_palloc(pool, FA_IMAP_SEARCH_BATCH * sizeof(*u)) : NULL;
    if (u == NULL) {
        if (pool) {
            fa_pool_destroy(pool);
        }
        return FA_ERROR;
    }
    while (se->next < v->n && count < FA_IMAP_SEARCH_BATCH) {
        probe.msn = (uint32_t) se->next + 1;
        meta.uid = v->uids[se->next++];
        if (!fa_imap_search_prefilter(se, &probe)) {
            continue;
        }
        count++;
        if (k && u[k - 1].last + 1 == meta.uid) {
            u[k - 1].last = meta.uid;   /* neighbours in the view and in UIDs */
        } else {
            u[k].first = u[k].last = meta.uid;
            k++;
        }
    }
    if (count == 0) {
        fa_pool_destroy(pool);
        se->state = FA_SS_END;
        return FA_OK;
    }
    b->se = se;
    b->pool = pool;
    set.ranges = u;
    set.nranges = k;
    se->batch = b;
    se->state = FA_SS_META;
    rc = se->s->store->backend->fetch_meta(v->box, &set, pool, fa_imap_search_meta_done, b);
    if (rc == FA_AGAIN) {
        return FA_AGAIN;
    }
    se->batch = NULL;
    fa_pool_destroy(pool);
    return rc == FA_OK ? FA_ERROR : rc;
}


/* ---- a message ---- */

static fa_pool_t *
fa_imap_search_msg_pool(fa_imap_search_t *se)
{
    if (se->msg.pool == NULL) {
        se->msg.pool = fa_pool_create(4096, se->s->c->log);
    }
    return se->msg.pool;
}

static fa_uint_t
fa_imap_search_decided(fa_imap_search_t *se)
{
    fa_imap_smsg_t  *m = &se->msg;
    fa_uint_t        r = fa_imap_search_eval(se, se->root, m);

    if (r == FA_SK_TRUE && (m->want_raw || (m->root == NULL && se->want))) {
        return FA_SK_UNKNOWN;           /* a match, but the caller's fields are not there */
    }
    return r;
}

static fa_int_t
fa_imap_search_hit(fa_imap_search_t *se)
{
    static const fa_uint_t  env[FA_IMAP_HDR_N] = {
        FA_MIME_ENV_DATE, FA_MIME_ENV_SUBJECT, FA_MIME_ENV_FROM, FA_MIME_ENV_TO,
        FA_MIME_ENV_CC, FA_MIME_ENV_MESSAGE_ID, FA_MIME_ENV_IN_REPLY_TO, FA_MIME_ENV_N
    };
    fa_imap_smsg_t          *m = &se->msg;
    fa_mime_envelope_t      *e = m->root ? m->root->envelope : NULL;
    fa_imap_search_hit_t     hit;

    memset(&hit, 0, sizeof(hit));
    hit.msn = m->msn;
    hit.meta = m->meta;
    if (se->want && (hit.pool = fa_imap_search_msg_pool(se)) == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < FA_IMAP_HDR_N; i++) {
        if (se->want & (1u << i)) {
            hit.hdr[i] = env[i] == FA_MIME_ENV_N ? m->hdr[i]
                       : e ? e->raw[env[i]] : hit.hdr[i];
        }
    }
    return se->hit(se->s, &hit);
}

/* the message is over: unknown keys are false now */
static fa_int_t
fa_imap_search_message_end(fa_imap_search_t *se)
{
    fa_imap_smsg_t  *m = &se->msg;
    fa_int_t         rc = FA_OK;

    for (fa_uint_t i = 0; i < se->nslots; i++) {
        if (m->res[i] == FA_SK_UNKNOWN) {
            m->res[i] = FA_SK_FALSE;
        }
    }
    m->want_raw = 0;
    if (fa_imap_search_eval(se, se->root, m) == FA_SK_TRUE) {
        rc = fa_imap_search_hit(se);
    }
    fa_imap_search_msg_free(se);
    se->mi++;
    se->state = FA_SS_MESSAGE;
    return rc;
}

/* the part table from the metadata (NULL when there is none) */
static void
fa_imap_search_tree(fa_imap_search_t *se)
{
    fa_imap_smsg_t  *m = &se->msg;

    if (m->meta->mime.len && fa_imap_search_msg_pool(se)) {
        m->root = fa_mime_parse_serialized(m->pool, m->meta->mime.data, m->meta->mime.len);
    }
}

static fa_int_t
fa_imap_search_message(fa_imap_search_t *se)
{
    fa_imap_smsg_t  *m = &se->msg;
    u_char          *res = m->res;
    fa_uint_t        r;
    fa_int_t         rc;

    memset(m, 0, sizeof(*m));
    m->res = res;
    m->meta = &se->metas[se->mi];
    m->msn = fa_imap_view_msn(se->s->view, m->meta->uid);
    if (se->nslots) {
        if (m->res == NULL && (m->res = fa_palloc(se->pool, se->nslots)) == NULL) {
            return FA_ERROR;
        }
        memset(m->res, FA_SK_UNKNOWN, se->nslots);
    }
    m->want_raw = (se->want & (1u << FA_IMAP_HDR_REFERENCES)) != 0;
    if (m->msn == 0) {
        se->mi++;                       /* not in this session's view */
        return FA_OK;
    }
    r = fa_imap_search_eval(se, se->root, m);
    if (r == FA_SK_UNKNOWN || (r == FA_SK_TRUE && se->want)) {
        fa_imap_search_tree(se);        /* parsed only when a key or the caller needs it */
    }
    switch (fa_imap_search_decided(se)) {
    case FA_SK_FALSE:
        fa_imap_search_msg_free(se);
        se->mi++;
        return FA_OK;
    case FA_SK_TRUE:
        rc = fa_imap_search_hit(se);
        fa_imap_search_msg_free(se);
        se->mi++;
        return rc;
    default:
        break;
    }
    /* the message itself is needed */
    rc = se->s->store->backend->message_open(se->s->view->box, m->meta->uid, &se->stream);
    if (rc != FA_OK) {
        se->stream = NULL;
        fa_imap_search_msg_free(se);     /* gone meanwhile, or unreadable: no match */
        se->mi++;
        return FA_OK;
    }
    if (se->buf == NULL && (se->buf = fa_palloc(se->pool, FA_IMAP_SEARCH_CHUNK)) == NULL) {
        return FA_ERROR;
    }
    se->off = 0;
    se->nsegs = 0;
    se->seg = 0;
    se->seg_open = 0;
    se->parser = NULL;
    if (m->root == NULL) {
        if (fa_imap_search_msg_pool(se) == NULL
            || (se->parser = fa_mime_parser_create(m->pool, NULL)) == NULL)
        {
            return FA_ERROR;
        }
    } else if (fa_imap_search_segments(se, m) != FA_OK) {
        return FA_ERROR;
    }
    se->state = FA_SS_READ;
    return FA_OK;
}


/* ---- reading a message ---- */

static void
fa_imap_search_read_ready(void *data, fa_int_t rc)
{
    fa_imap_sticket_t  *t = data;

    (void) rc;
    t->pending = 0;
    if (t->se == NULL) {
        free(t);                        /* the command is gone */
        return;
    }
    fa_imap_search_continue(t->se);
}

/* the next chunk at se->off, at most len: bytes read, 0 at the end, FA_AGAIN, an error */
static ssize_t
fa_imap_search_chunk(fa_imap_search_t *se, uint64_t len)
{
    fa_imap_sticket_t  *t = se->read_ticket;
    ssize_t             n;

    if (se->slice >= FA_IMAP_SEARCH_SLICE) {
        se->slice = 0;                  /* let the loop run, then go on */
        fa_event_post(&se->event);
        return FA_AGAIN;
    }
    if (t == NULL && (t = se->read_ticket = fa_calloc(sizeof(*t), se->s->c->log)) == NULL) {
        return FA_ERROR;
    }
    t->se = se;
    n = se->s->store->backend->message_read(se->stream, se->off, se->buf,
                                            (size_t) fa_min(len, FA_IMAP_SEARCH_CHUNK),
                                            fa_imap_search_read_ready, t);
    if (n == FA_AGAIN) {
        t->pending = 1;
        return FA_AGAIN;
    }
    if (n > 0) {
        se->off += (uint64_t) n;
        se->slice += (size_t) n;
    }
    return n;
}

/* no part table in the metadata: parse the message into one first */
static fa_int_t
fa_imap_search_read_tree(fa_imap_search_t *se)
{
    fa_imap_smsg_t  *m = &se->msg;
    ssize_t          n;

    for ( ;; ) {
        n = fa_imap_search_chunk(se, UINT64_MAX);
        if (n == FA_AGAIN) {
            return FA_AGAIN;
        }
        if (n <= 0) {
            break;
        }
        if (fa_mime_parser_feed(se->parser, se->buf, (size_t) n) != FA_OK) {
            return FA_ERROR;
        }
    }
    m->root = fa_mime_parser_finish(se->parser);
    se->parser = NULL;
    se->off = 0;
    if (m->root == NULL) {
        return FA_ERROR;
    }
    if (n < 0 || fa_imap_search_decided(se) != FA_SK_UNKNOWN) {
        return FA_DONE;
    }
    return fa_imap_search_segments(se, m);
}

/* the segments the unknown keys need; FA_OK when the message is decided or read */
static fa_int_t
fa_imap_search_read(fa_imap_search_t *se)
{
    fa_imap_sseg_t  *seg;
    ssize_t          n;
    fa_int_t         rc;

    if (se->parser) {
        rc = fa_imap_search_read_tree(se);
        if (rc != FA_OK) {
            return rc == FA_DONE ? FA_OK : rc;
        }
    }
    while (se->seg < se->nsegs) {
        seg = &se->segs[se->seg];
        if (!se->seg_open) {
            if (!fa_imap_search_seg_needed(se, seg)) {
                se->seg++;
                continue;
            }
            se->off = seg->start;
            if (fa_imap_search_seg_begin(se, seg) != FA_OK) {
                return FA_ERROR;
            }
            se->seg_open = 1;
        }
        n = fa_imap_search_chunk(se, seg->end - se->off);
        if (n == FA_AGAIN) {
            return FA_AGAIN;
        }
        if (n > 0) {
            fa_imap_search_seg_feed(se, seg, se->buf, (size_t) n);
        }
        if (n <= 0 || se->off >= seg->end) {
            fa_imap_search_seg_end(se, seg);
            se->seg_open = 0;
            se->seg = n <= 0 ? se->nsegs : se->seg + 1;    /* shorter than its table: over */
        }
        if (fa_imap_search_decided(se) != FA_SK_UNKNOWN) {
            return FA_OK;
        }
    }
    return FA_OK;
}


/* ---- the state machine ---- */

static fa_int_t
fa_imap_search_fail(fa_imap_search_t *se, fa_int_t rc)
{
    fa_imap_session_t  *s = se->s;

    se->state = FA_SS_DONE;
    fa_imap_search_msg_free(se);
    if (se->batch) {
        fa_pool_destroy(((fa_imap_sbatch_t *) se->batch)->pool);
        se->batch = NULL;
    }
    fa_imap_storage_no(s, rc, s->cmd->def->name);
    return FA_OK;
}

/* FA_OK: the tagged reply is written; FA_AGAIN: the store, the loop or the output
   will call back */
static fa_int_t
fa_imap_search_step(fa_imap_search_t *se)
{
    fa_int_t  rc;

    for ( ;; ) {
        switch (se->state) {
        case FA_SS_BATCH:
            rc = fa_imap_search_batch(se);
            if (rc == FA_AGAIN) {
                return FA_AGAIN;
            }
            if (rc != FA_OK) {
                return fa_imap_search_fail(se, rc);
            }
            break;
        case FA_SS_MESSAGE:
            if (se->mi >= se->nmetas) {
                fa_pool_destroy(((fa_imap_sbatch_t *) se->batch)->pool);
                se->batch = NULL;
                se->state = FA_SS_BATCH;
                break;
            }
            rc = fa_imap_search_message(se);
            if (rc != FA_OK) {
                return fa_imap_search_fail(se, rc);
            }
            break;
        case FA_SS_READ:
            rc = fa_imap_search_read(se);
            if (rc == FA_AGAIN) {
                return FA_AGAIN;
            }
            if (rc != FA_OK || fa_imap_search_message_end(se) != FA_OK) {
                return fa_imap_search_fail(se, FA_ERROR);
            }
            break;
        case FA_SS_FAIL:
            return fa_imap_search_fail(se, se->error);
        case FA_SS_END:
            se->state = FA_SS_DONE;
            rc = se->end(se->s);
            se->parked = rc == FA_AGAIN;
            return rc;
        default:
            return FA_AGAIN;            /* FA_SS_META: the store calls back */
        }
    }
}

/* from a store callback or the event: the session is not running us */
static void
fa_imap_search_continue(fa_imap_search_t *se)
{
    fa_imap_session_t  *s = se->s;

    if (fa_imap_search_step(se) == FA_AGAIN) {
        if (se->parked) {
            fa_imap_wake(s);            /* the output drains, then the caller goes on */
        }
        return;
    }
    fa_imap_done(s);
}

fa_int_t
fa_imap_search_run(fa_imap_session_t *s, fa_imap_search_t *se, fa_uint_t want,
    fa_imap_search_hit_pt hit, fa_imap_search_end_pt end)
{
    (void) s;
    se->want = want;
    se->hit = hit;
    se->end = end;
    se->state = FA_SS_BATCH;
    se->next = 0;
    return fa_imap_search_step(se);
}
