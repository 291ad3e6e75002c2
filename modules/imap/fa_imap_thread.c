/*
 * THREAD and UID THREAD (RFC 5256 4): ORDEREDSUBJECT and REFERENCES.
 *
 *   THREAD REFERENCES UTF-8 ALL
 *   * THREAD (1 (2 3)(5))(4 9)(6)((7)(8))
 *
 * The search engine finds the messages; each comes with its Subject,
 * Date, Message-ID and In-Reply-To from the cached metadata, and for
 * REFERENCES with its References field, which the metadata does not
 * cache: the engine reads it from the message's header.
 *
 * REFERENCES follows the RFC's steps.  Step 1 runs as each message
 * arrives, so References fields are not kept: only one node per
 * Message-ID seen.  Links that would make a loop are not made; to bound
 * the work on hostile mail only the last FA_IMAP_THREAD_REFS references
 * of a message count, and looking for a loop stops (as if there were one)
 * after FA_IMAP_THREAD_WALK ancestors.  The other steps walk the tree
 * breadth first, never recursively, so a chain of 100,000 replies costs
 * no stack; so does writing the answer, which goes out as the client
 * reads it.
 *
 * Dates are sent dates (the Date field, else the internal date), ties go
 * by sequence number, subjects are base subjects compared with
 * i;ascii-casemap.
 */

#include "fa_imap_int.h"

#define FA_IMAP_THREAD_REFS  256
#define FA_IMAP_THREAD_WALK  100000

typedef struct fa_imap_tnode_s  fa_imap_tnode_t;
struct fa_imap_tnode_s {
    fa_imap_tnode_t    *parent;
    fa_imap_tnode_t    *child;          /* the first child */
    fa_imap_tnode_t    *last;           /* the last child */
    fa_imap_tnode_t    *prev;           /* siblings */
    fa_imap_tnode_t    *next;
    fa_imap_tnode_t    *hnext;          /* the Message-ID table's chain */
    fa_imap_tnode_t    *all;            /* every node */
    fa_str_t            id;
    fa_str_t            subject;        /* the base subject */
    time_t              date;
    uint32_t            msn;
    uint32_t            n;              /* what is written: the MSN or the UID */
    unsigned            message:1;      /* 0: a dummy */
    unsigned            reply:1;
};

typedef struct {
    fa_imap_search_t   *se;
    unsigned            references:1;
    fa_imap_tnode_t     root;           /* the threads are its children */
    fa_imap_tnode_t    *all;
    fa_uint_t           count;          /* nodes */
    fa_imap_tnode_t   **table;          /* Message-ID -> node */
    fa_uint_t           tsize, tcount;
    fa_imap_tnode_t   **msgs;           /* ORDEREDSUBJECT: the messages */
    fa_uint_t           nmsgs, size;
    /* the answer */
    fa_imap_tnode_t    *cur;
    unsigned            leaving:1;
    unsigned            head:1;
    char                last;           /* the last character written */
} fa_imap_thread_cmd_t;


/* ---- nodes ---- */

static fa_imap_tnode_t *
fa_imap_tnode_new(fa_imap_thread_cmd_t *th, fa_pool_t *pool)
{
    fa_imap_tnode_t  *n = fa_pcalloc(pool, sizeof(*n));

    if (n) {
        n->all = th->all;
        th->all = n;
        th->count++;
    }
    return n;
}

static void
fa_imap_tnode_unlink(fa_imap_tnode_t *c)
{
    fa_imap_tnode_t  *p = c->parent;

    if (p == NULL) {
        return;
    }
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        p->child = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    } else {
        p->last = c->prev;
    }
    c->parent = c->prev = c->next = NULL;
}

static void
fa_imap_tnode_append(fa_imap_tnode_t *p, fa_imap_tnode_t *c)
{
    c->parent = p;
    c->prev = p->last;
    c->next = NULL;
    if (p->last) {
        p->last->next = c;
    } else {
        p->child = c;
    }
    p->last = c;
}

/* c takes pos's place, pos goes after it */
static void
fa_imap_tnode_insert_before(fa_imap_tnode_t *pos, fa_imap_tnode_t *c)
{
    fa_imap_tnode_t  *p = pos->parent;

    c->parent = p;
    c->prev = pos->prev;
    c->next = pos;
    if (pos->prev) {
        pos->prev->next = c;
    } else {
        p->child = c;
    }
    pos->prev = c;
}

/* would making c a child of p make a loop (c is p or one of its ancestors)? */
static int
fa_imap_tnode_loop(fa_imap_tnode_t *p, fa_imap_tnode_t *c)
{
    fa_uint_t  steps = 0;

    if (c == p) {
        return 1;
    }
    if (c->child == NULL) {
        return 0;                       /* a leaf is nobody's ancestor */
    }
    for ( ; p; p = p->parent) {
        if (p == c || ++steps > FA_IMAP_THREAD_WALK) {
            return 1;
        }
    }
    return 0;
}

/* a dummy stands for its first child (after sorting) */
static const fa_imap_tnode_t *
fa_imap_tnode_key(const fa_imap_tnode_t *n)
{
    while (!n->message && n->child) {
        n = n->child;
    }
    return n;
}

static int
fa_imap_tnode_cmp(const void *x, const void *y)
{
    const fa_imap_tnode_t  *a = fa_imap_tnode_key(*(fa_imap_tnode_t *const *) x);
    const fa_imap_tnode_t  *b = fa_imap_tnode_key(*(fa_imap_tnode_t *const *) y);

    if (a->date != b->date) {
        return a->date < b->date ? -1 : 1;
    }
    return (a->msn > b->msn) - (a->msn < b->msn);
}

/* a node's children by sent date; buf holds at least th->count pointers */
static void
fa_imap_tnode_sort(fa_imap_tnode_t *p, fa_imap_tnode_t **buf)
{
    fa_uint_t         n = 0;
    fa_imap_tnode_t  *c;

    if (p->child == p->last) {
        return;
    }
    for (c = p->child; c; c = c->next) {
        buf[n++] = c;
    }
    qsort(buf, n, sizeof(*buf), fa_imap_tnode_cmp);
    p->child = p->last = NULL;
    for (fa_uint_t i = 0; i < n; i++) {
        fa_imap_tnode_append(p, buf[i]);
    }
}

/* the tree under the root, breadth first: parents before children */
static fa_uint_t
fa_imap_tnode_bfs(fa_imap_thread_cmd_t *th, fa_imap_tnode_t **order)
{
    fa_uint_t  n = 0;

    for (fa_imap_tnode_t *c = th->root.child; c; c = c->next) {
        order[n++] = c;
    }
    for (fa_uint_t i = 0; i < n; i++) {
        for (fa_imap_tnode_t *c = order[i]->child; c; c = c->next) {
            order[n++] = c;
        }
    }
    return n;
}


/* ---- Message-IDs ---- */

static uint32_t
fa_imap_thread_hash(const fa_str_t *id)
{
    uint32_t  h = 2166136261u;

    for (size_t i = 0; i < id->len; i++) {
        h = (h ^ id->data[i]) * 16777619u;
    }
    return h;
}

static fa_int_t
fa_imap_thread_grow(fa_imap_thread_cmd_t *th, fa_pool_t *pool)
{
    fa_uint_t          size = th->tsize ? th->tsize * 2 : 1024;
    fa_imap_tnode_t  **t = fa_pcalloc(pool, size * sizeof(*t)), *n, *next;

    if (t == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < th->tsize; i++) {
        for (n = th->table[i]; n; n = next) {
            next = n->hnext;
            n->hnext = t[fa_imap_thread_hash(&n->id) & (size - 1)];
            t[fa_imap_thread_hash(&n->id) & (size - 1)] = n;
        }
    }
    if (th->table) {
        fa_pfree(pool, th->table);
    }
    th->table = t;
    th->tsize = size;
    return FA_OK;
}

/* the node of a Message-ID; a new dummy when create is set */
static fa_imap_tnode_t *
fa_imap_thread_id(fa_imap_thread_cmd_t *th, fa_pool_t *pool, const fa_str_t *id, int create)
{
    fa_imap_tnode_t  *n;
    uint32_t          h = fa_imap_thread_hash(id);

    for (n = th->tsize ? th->table[h & (th->tsize - 1)] : NULL; n; n = n->hnext) {
        if (n->id.len == id->len && memcmp(n->id.data, id->data, id->len) == 0) {
            return n;
        }
    }
    if (!create) {
        return NULL;
    }
    if (th->tcount >= th->tsize && fa_imap_thread_grow(th, pool) != FA_OK) {
        return NULL;
    }
    n = fa_imap_tnode_new(th, pool);
    if (n == NULL || (n->id.data = fa_pnalloc(pool, id->len + 1)) == NULL) {
        return NULL;
    }
    memcpy(n->id.data, id->data, id->len);
    n->id.len = id->len;
    n->hnext = th->table[h & (th->tsize - 1)];
    th->table[h & (th->tsize - 1)] = n;
    th->tcount++;
    return n;
}

/* the next "<...>" of a field; FA_DECLINED when there is none */
static fa_int_t
fa_imap_thread_next_id(const u_char **p, const u_char *end, fa_str_t *id)
{
    const u_char  *lt, *gt;

    while ((lt = memchr(*p, '<', (size_t) (end - *p))) != NULL) {
        gt = memchr(lt + 1, '>', (size_t) (end - lt - 1));
        if (gt == NULL) {
            break;
        }
        *p = gt + 1;
        id->data = (u_char *) lt + 1;
        id->len = (size_t) (gt - lt - 1);
        while (id->len && (id->data[0] == ' ' || id->data[0] == '\t')) {
            id->data++;
            id->len--;
        }
        while (id->len && (id->data[id->len - 1] == ' ' || id->data[id->len - 1] == '\t')) {
            id->len--;
        }
        if (id->len) {
            return FA_OK;
        }
    }
    *p = end;
    return FA_DECLINED;
}

/* the references: References, or else the first id of In-Reply-To */
static fa_uint_t
fa_imap_thread_refs(const fa_imap_search_hit_t *hit, fa_str_t *refs)
{
    const fa_str_t  *f = &hit->hdr[FA_IMAP_HDR_REFERENCES];
    const u_char    *p, *end;
    fa_uint_t        n = 0;
    fa_str_t         id;

    for (int i = 0; i < 2 && n == 0; i++) {
        p = f->data;
        end = p ? p + f->len : NULL;
        while (p && fa_imap_thread_next_id(&p, end, &id) == FA_OK) {
            if (n == FA_IMAP_THREAD_REFS) {
                memmove(refs, refs + 1, (n - 1) * sizeof(fa_str_t));  /* keep the last */
                n--;
            }
            refs[n++] = id;
            if (i == 1) {
                break;
            }
        }
        f = &hit->hdr[FA_IMAP_HDR_IN_REPLY_TO];
    }
    return n;
}


/* ---- messages as they are found ---- */

static fa_int_t
fa_imap_thread_fill(fa_imap_session_t *s, fa_imap_tnode_t *n, fa_imap_search_hit_t *hit)
{
    fa_str_t  subject;
    int       reply;

    n->message = 1;
    n->msn = hit->msn;
    n->n = s->cmd->parsed.uid ? hit->meta->uid : hit->msn;
    n->date = fa_imap_sent_date(hit);
    if (fa_imap_base_subject(hit->pool, &hit->hdr[FA_IMAP_HDR_SUBJECT], &subject, &reply)
        != FA_OK)
    {
        return FA_ERROR;
    }
    n->reply = reply;
    n->subject.len = subject.len;
    n->subject.data = fa_pnalloc(s->cmd->pool, subject.len + 1);
    if (n->subject.data == NULL) {
        return FA_ERROR;
    }
    memcpy(n->subject.data, subject.data, subject.len);
    return FA_OK;
}

/* REFERENCES step 1 for one message */
static fa_int_t
fa_imap_thread_link(fa_imap_session_t *s, fa_imap_thread_cmd_t *th, fa_imap_search_hit_t *hit)
{
    fa_pool_t        *pool = s->cmd->pool;
    fa_str_t         *refs, id;
    fa_imap_tnode_t  *c, *prev = NULL, *me = NULL;
    const u_char     *p;
    fa_uint_t         n;

    refs = fa_palloc(hit->pool, FA_IMAP_THREAD_REFS * sizeof(fa_str_t));
    if (refs == NULL) {
        return FA_ERROR;
    }
    n = fa_imap_thread_refs(hit, refs);
    /* A: the references in a chain, where nothing links them yet */
    for (fa_uint_t i = 0; i < n; i++) {
        if ((c = fa_imap_thread_id(th, pool, &refs[i], 1)) == NULL) {
            return FA_ERROR;
        }
        if (prev && c->parent == NULL && !fa_imap_tnode_loop(prev, c)) {
            fa_imap_tnode_append(prev, c);
        }
        prev = c;
    }
    /* the message's own node: a duplicate or missing Message-ID gets a new one */
    p = hit->hdr[FA_IMAP_HDR_MESSAGE_ID].data;
    if (p && fa_imap_thread_next_id(&p, p + hit->hdr[FA_IMAP_HDR_MESSAGE_ID].len, &id)
             == FA_OK)
    {
        if ((me = fa_imap_thread_id(th, pool, &id, 1)) == NULL) {
            return FA_ERROR;
        }
        me = me->message ? NULL : me;
    }
    if (me == NULL && (me = fa_imap_tnode_new(th, pool)) == NULL) {
        return FA_ERROR;
    }
    if (fa_imap_thread_fill(s, me, hit) != FA_OK) {
        return FA_ERROR;
    }
    /* B: its parent is the last reference, whatever was guessed before */
    fa_imap_tnode_unlink(me);
    if (prev && !fa_imap_tnode_loop(prev, me)) {
        fa_imap_tnode_append(prev, me);
    }
    return FA_OK;
}

static fa_int_t
fa_imap_thread_hit(fa_imap_session_t *s, fa_imap_search_hit_t *hit)
{
    fa_imap_thread_cmd_t  *th = s->cmd->data;
    fa_imap_tnode_t       *n;

    if (th->references) {
        return fa_imap_thread_link(s, th, hit);
    }
    if (th->nmsgs == th->size) {
        fa_uint_t size = th->size ? th->size * 2 : 256;
        fa_imap_tnode_t **m = realloc(th->msgs, size * sizeof(*m));
        if (m == NULL) {
            return FA_ERROR;
        }
        th->msgs = m;
        th->size = size;
    }
    n = fa_imap_tnode_new(th, s->cmd->pool);
    if (n == NULL || fa_imap_thread_fill(s, n, hit) != FA_OK) {
        return FA_ERROR;
    }
    th->msgs[th->nmsgs++] = n;
    return FA_OK;
}


/* ---- REFERENCES, steps 2 to 6 ---- */

/* 3: dummies go; their children move up, to the top only when alone */
static void
fa_imap_thread_prune(fa_imap_thread_cmd_t *th, fa_imap_tnode_t **order)
{
    fa_uint_t         n = fa_imap_tnode_bfs(th, order);
    fa_imap_tnode_t  *d, *c;

    while (n--) {
        d = order[n];                   /* deepest first: its children are done */
        if (d->message) {
            continue;
        }
        if (d->child && d->parent == &th->root && d->child != d->last) {
            continue;
        }
        while ((c = d->child) != NULL) {
            fa_imap_tnode_unlink(c);
            fa_imap_tnode_insert_before(d, c);
        }
        fa_imap_tnode_unlink(d);
    }
}

static const fa_str_t *
fa_imap_thread_subject(const fa_imap_tnode_t *n)
{
    n = fa_imap_tnode_key(n);
    return n->message && n->subject.len ? &n->subject : NULL;
}

static uint32_t
fa_imap_thread_subject_hash(const fa_str_t *s)
{
    uint32_t  h = 2166136261u;

    for (size_t i = 0; i < s->len; i++) {
        u_char c = s->data[i];
        h = (h ^ (c >= 'A' && c <= 'Z' ? c + 32 : c)) * 16777619u;
    }
    return h;
}

/* the subject table's slot for a subject (open addressing) */
static fa_imap_tnode_t **
fa_imap_thread_slot(fa_imap_tnode_t **t, fa_uint_t size, const fa_str_t *subject)
{
    fa_uint_t  i = fa_imap_thread_subject_hash(subject) & (size - 1);

    while (t[i] && fa_imap_casemap_cmp(fa_imap_thread_subject(t[i]), subject) != 0) {
        i = (i + 1) & (size - 1);
    }
    return &t[i];
}

/* 5: threads with one base subject are merged */
static fa_int_t
fa_imap_thread_subjects(fa_imap_thread_cmd_t *th, fa_pool_t *pool)
{
    fa_uint_t          size = 16, n = 0;
    fa_imap_tnode_t  **t, **slot, *r, *next, *d;
    const fa_str_t    *subj;

    for (r = th->root.child; r; r = r->next) {
        n++;
    }
    while (size < 2 * n) {
        size *= 2;
    }
    if ((t = fa_pcalloc(pool, size * sizeof(*t))) == NULL) {
        return FA_ERROR;
    }
    for (r = th->root.child; r; r = r->next) {
        if ((subj = fa_imap_thread_subject(r)) == NULL) {
            continue;
        }
        slot = fa_imap_thread_slot(t, size, subj);
        if (*slot == NULL
            || ((*slot)->message && (!r->message || ((*slot)->reply && !r->reply))))
        {
            *slot = r;
        }
    }
    for (r = th->root.child; r; r = next) {
        next = r->next;
        if ((subj = fa_imap_thread_subject(r)) == NULL) {
            continue;
        }
        slot = fa_imap_thread_slot(t, size, subj);
        if (*slot == r) {
            continue;
        }
        if (!(*slot)->message && !r->message) {
            while (r->child) {
                d = r->child;
                fa_imap_tnode_unlink(d);
                fa_imap_tnode_append(*slot, d);
            }
            fa_imap_tnode_unlink(r);
        } else if (!(*slot)->message || (r->reply && !(*slot)->reply)) {
            fa_imap_tnode_unlink(r);
            fa_imap_tnode_append(*slot, r);
        } else {
            if ((d = fa_imap_tnode_new(th, pool)) == NULL) {
                return FA_ERROR;
            }
            fa_imap_tnode_insert_before(*slot, d);
            fa_imap_tnode_unlink(*slot);
            fa_imap_tnode_append(d, *slot);
            fa_imap_tnode_unlink(r);
            fa_imap_tnode_append(d, r);
            *slot = d;                  /* its subject is its first child's */
        }
    }
    return FA_OK;
}

static fa_int_t
fa_imap_thread_references(fa_imap_thread_cmd_t *th, fa_pool_t *pool)
{
    fa_imap_tnode_t  **order;
    fa_uint_t          n;

    /* 2: the messages without a parent are the threads */
    for (fa_imap_tnode_t *c = th->all; c; c = c->all) {
        if (c->parent == NULL) {
            fa_imap_tnode_append(&th->root, c);
        }
    }
    order = fa_palloc(pool, (th->count + 1) * 2 * sizeof(*order));
    if (order == NULL) {
        return FA_ERROR;
    }
    fa_imap_thread_prune(th, order);
    /* 4: the threads by date, a dummy by its first child's */
    for (fa_imap_tnode_t *c = th->root.child; c; c = c->next) {
        if (!c->message) {
            fa_imap_tnode_sort(c, order + th->count + 1);
        }
    }
    fa_imap_tnode_sort(&th->root, order);
    if (fa_imap_thread_subjects(th, pool) != FA_OK) {
        return FA_ERROR;
    }
    /* 6: every set of siblings, the deepest first (step 5 may have added dummies) */
    fa_pfree(pool, order);
    order = fa_palloc(pool, (th->count + 1) * 2 * sizeof(*order));
    if (order == NULL) {
        return FA_ERROR;
    }
    n = fa_imap_tnode_bfs(th, order);
    while (n--) {
        fa_imap_tnode_sort(order[n], order + th->count + 1);
    }
    fa_imap_tnode_sort(&th->root, order);
    return FA_OK;
}

/* ORDEREDSUBJECT: by subject then date; the first of each subject is the
   parent of the others; the threads by their first message's date */
static int
fa_imap_thread_subject_cmp(const void *x, const void *y)
{
    const fa_imap_tnode_t  *a = *(fa_imap_tnode_t *const *) x;
    const fa_imap_tnode_t  *b = *(fa_imap_tnode_t *const *) y;
    int                     r = fa_imap_casemap_cmp(&a->subject, &b->subject);

    return r ? r : fa_imap_tnode_cmp(x, y);
}

static fa_int_t
fa_imap_thread_ordered(fa_imap_thread_cmd_t *th, fa_pool_t *pool)
{
    fa_imap_tnode_t  **buf, *first = NULL;

    if (th->nmsgs == 0) {
        return FA_OK;
    }
    qsort(th->msgs, th->nmsgs, sizeof(*th->msgs), fa_imap_thread_subject_cmp);
    for (fa_uint_t i = 0; i < th->nmsgs; i++) {
        if (first && fa_imap_casemap_cmp(&first->subject, &th->msgs[i]->subject) == 0) {
            fa_imap_tnode_append(first, th->msgs[i]);
        } else {
            first = th->msgs[i];
            fa_imap_tnode_append(&th->root, first);
        }
    }
    if ((buf = fa_palloc(pool, th->nmsgs * sizeof(*buf))) == NULL) {
        return FA_ERROR;
    }
    fa_imap_tnode_sort(&th->root, buf);
    return FA_OK;
}


/* ---- the answer ---- */

static size_t
fa_imap_thread_put(fa_imap_thread_cmd_t *th, char *buf, size_t n, const char *text,
    uint32_t num)
{
    int  digit = th->last >= '0' && th->last <= '9';

    if (text == NULL) {
        n += fa_snprintf(buf + n, 16, "%s%u", digit ? " " : "", (unsigned) num);
        th->last = '0';
    } else {
        n += fa_snprintf(buf + n, 4, "%s%s", digit && text[0] == '(' ? " " : "", text);
        th->last = text[0];
    }
    return n;
}

/* a node is in parentheses at the top, and among two or more siblings */
static int
fa_imap_thread_wrap(fa_imap_thread_cmd_t *th, const fa_imap_tnode_t *n)
{
    return n->parent == &th->root || n->parent->child != n->parent->last;
}

static fa_int_t
fa_imap_thread_output(fa_imap_session_t *s)
{
    fa_imap_thread_cmd_t  *th = s->cmd->data;
    fa_imap_tnode_t       *n;
    char                   buf[4096];
    size_t                 len = 0;

    if (!th->head) {
        th->head = 1;
        th->cur = th->root.child;
        th->last = '0';                 /* "* THREAD (1)": a space before the first */
        len = fa_snprintf(buf, sizeof(buf), "* THREAD");
    }
    while ((n = th->cur) != NULL) {
        if (len > sizeof(buf) - 64) {
            if (fa_imap_write(s, buf, len) == FA_ERROR) {
                return FA_ERROR;
            }
            len = 0;
            if (fa_imap_output_full(s)) {
                fa_imap_wait_drain(s, fa_imap_thread_output);
                return FA_AGAIN;
            }
        }
        if (!th->leaving) {
            if (fa_imap_thread_wrap(th, n)) {
                len = fa_imap_thread_put(th, buf, len, "(", 0);
            }
            if (n->message) {
                len = fa_imap_thread_put(th, buf, len, NULL, n->n);
            }
            if (n->child) {
                th->cur = n->child;
                continue;
            }
            th->leaving = 1;
        }
        if (fa_imap_thread_wrap(th, n)) {
            len = fa_imap_thread_put(th, buf, len, ")", 0);
        }
        if (n->next) {
            th->cur = n->next;
            th->leaving = 0;
        } else {
            th->cur = n->parent == &th->root ? NULL : n->parent;
        }
    }
    len += fa_snprintf(buf + len, sizeof(buf) - len, "\r\n");
    if (fa_imap_write(s, buf, len) == FA_ERROR) {
        return FA_ERROR;
    }
    return fa_imap_tagged(s, "OK", "%sTHREAD completed", s->cmd->parsed.uid ? "UID " : "");
}

static fa_int_t
fa_imap_thread_end(fa_imap_session_t *s)
{
    fa_imap_thread_cmd_t  *th = s->cmd->data;
    fa_int_t               rc;

    rc = th->references ? fa_imap_thread_references(th, s->cmd->pool)
                        : fa_imap_thread_ordered(th, s->cmd->pool);
    if (rc != FA_OK) {
        return fa_imap_storage_no(s, FA_ERROR, "THREAD");
    }
    return fa_imap_thread_output(s);
}

static void
fa_imap_thread_cleanup(void *data)
{
    fa_imap_thread_cmd_t  *th = data;

    free(th->msgs);
}

static fa_int_t
fa_imap_thread_go(fa_imap_session_t *s)
{
    fa_imap_cmd_t         *cmd = s->cmd;
    fa_imap_thread_cmd_t  *th = fa_pcalloc(cmd->pool, sizeof(*th));
    fa_uint_t              want;
    fa_int_t               rc;

    if (th == NULL || fa_pool_cleanup_add(cmd->pool, fa_imap_thread_cleanup, th) == NULL) {
        return FA_ERROR;
    }
    cmd->data = th;
    if (cmd->parsed.nargs < 3 || cmd->parsed.args[0].type != FA_IMAP_ARG_ATOM) {
        return fa_imap_bad(s, "Syntax: THREAD algorithm charset search-keys");
    }
    want = 1u << FA_IMAP_HDR_DATE | 1u << FA_IMAP_HDR_SUBJECT;
    if (fa_imap_arg_is(&cmd->parsed.args[0], "REFERENCES")) {
        th->references = 1;
        want |= 1u << FA_IMAP_HDR_MESSAGE_ID | 1u << FA_IMAP_HDR_IN_REPLY_TO
                | 1u << FA_IMAP_HDR_REFERENCES;
    } else if (!fa_imap_arg_is(&cmd->parsed.args[0], "ORDEREDSUBJECT")) {
        return fa_imap_bad(s, "Unknown threading algorithm");
    }
    rc = fa_imap_search_parse(s, cmd, cmd->parsed.args + 1, cmd->parsed.nargs - 1, 1,
                              &th->se);
    if (rc != FA_OK) {
        return rc == FA_DECLINED ? FA_OK : rc;
    }
    return fa_imap_search_run(s, th->se, want, fa_imap_thread_hit, fa_imap_thread_end);
}

fa_int_t
fa_imap_thread(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_int_t  rc;

    if (cmd->parsed.uid) {
        rc = fa_imap_view_update(s, 1, fa_imap_thread_go);
        if (rc == FA_AGAIN) {
            return FA_AGAIN;
        }
    }
    return fa_imap_thread_go(s);
}
