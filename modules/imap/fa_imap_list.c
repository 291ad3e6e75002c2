/*
 * LIST and LSUB: RFC 9051 6.3.9 and RFC 3501, with LIST-EXTENDED (RFC
 * 5258), LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154) and CHILDREN.
 *
 *   LIST [(selection options)] reference pattern|(patterns) [RETURN (options)]
 *
 * The store lists every name of the user's tree (its parents included, as
 * \Noselect names when they are no mailboxes: fa_storage.h), once per
 * command; each name that matches one of the patterns and the selection
 * options gets its LIST line, then, with RETURN (STATUS ...), its STATUS
 * line: the store is asked name by name, so a long list is produced at
 * the pace the client reads it (fa_imap_wait_drain) and never sits whole
 * in the output queue.
 *
 * Patterns are matched on the UTF-8 names, after decoding the client's
 * modified UTF-7 (unless it enabled UTF-8).  "*" matches anything, "%"
 * anything but the separator "/"; INBOX (its first level) matches in any
 * case.  The matcher follows every way a pattern can match at once (a
 * small NFA), so hostile patterns like "*a*a*a*a*b" cost time linear in
 * the name, never exponential.
 *
 * Attributes: \Noselect (\NonExistent for a subscription whose mailbox is
 * gone), \HasChildren or \HasNoChildren and the special-use attributes are
 * always there; \Subscribed when asked for (the SUBSCRIBED options) and in
 * every IMAP4rev2 LIST.  With RECURSIVEMATCH, a name whose descendants are
 * subscribed carries ("CHILDINFO" ("SUBSCRIBED")), and is listed even when
 * it is not subscribed itself.  LSUB lists the subscribed names; when the
 * pattern ends with "%", a parent of subscribed names that is not itself
 * subscribed is listed as \Noselect (RFC 3501 6.3.9).
 */

#include "fa_imap_int.h"

/* selection options */
#define FA_IMAP_LS_SUBSCRIBED    0x01
#define FA_IMAP_LS_REMOTE        0x02
#define FA_IMAP_LS_RECURSIVE     0x04
#define FA_IMAP_LS_SPECIAL_USE   0x08

/* return options */
#define FA_IMAP_LR_SUBSCRIBED    0x01
#define FA_IMAP_LR_CHILDREN      0x02
#define FA_IMAP_LR_SPECIAL_USE   0x04
#define FA_IMAP_LR_STATUS        0x08

/* a compiled pattern: runs of wildcards folded into one */
typedef struct {
    fa_str_t         pat;
    fa_uint_t       *cur, *next;        /* the NFA's states, pat.len + 1 each */
    fa_uint_t       *mark;              /* mark[state] == stamp: in the set */
    fa_uint_t        stamp;
    unsigned         never:1;           /* can match no name */
    unsigned         last_percent:1;    /* ends with "%" (LSUB's parents) */
} fa_imap_pattern_t;

typedef struct {
    fa_mailbox_info_t  *box;
    unsigned            child_subscribed:1;   /* a descendant is subscribed */
} fa_imap_list_item_t;

typedef struct {
    fa_uint_t             sel;          /* FA_IMAP_LS_* */
    fa_uint_t             ret;          /* FA_IMAP_LR_* */
    fa_uint_t             status;       /* STATUS items, fa_imap_status_parse */
    unsigned              lsub:1;
    unsigned              extended:1;   /* LIST-EXTENDED syntax was used */
    fa_imap_pattern_t    *patterns;
    fa_uint_t             npatterns;
    fa_imap_list_item_t  *items;        /* the tree, in order */
    fa_uint_t             nitems;
    fa_uint_t             next;         /* the next item to consider */
    fa_str_t              wire;         /* the last name sent, for its STATUS */
} fa_imap_list_t;

static fa_int_t fa_imap_list_emit(fa_imap_session_t *s);

static const struct {
    const char  *name;
    uint32_t     use;
} fa_imap_list_uses[] = {
    { "\\All", FA_USE_ALL }, { "\\Archive", FA_USE_ARCHIVE }, { "\\Drafts", FA_USE_DRAFTS },
    { "\\Flagged", FA_USE_FLAGGED }, { "\\Junk", FA_USE_JUNK }, { "\\Sent", FA_USE_SENT },
    { "\\Trash", FA_USE_TRASH },
};


/* ---- patterns ---- */

static int
fa_imap_wild(u_char c)
{
    return c == '*' || c == '%';
}

/*
 * reference + pattern, decoded to UTF-8, into a compiled pattern.  A run of
 * wildcards is one: "*" if it holds a "*", else "%".  A pattern that is not
 * valid modified UTF-7 matches nothing.
 */
static fa_int_t
fa_imap_pattern_compile(fa_imap_session_t *s, fa_pool_t *pool, const fa_str_t *ref,
    const fa_str_t *pat, fa_imap_pattern_t *p)
{
    fa_str_t   raw, utf8;
    u_char    *out;
    size_t     n = 0, lits = 0;

    memset(p, 0, sizeof(*p));
    raw.len = ref->len + pat->len;
    raw.data = fa_pnalloc(pool, raw.len + 1);
    if (raw.data == NULL) {
        return FA_ERROR;
    }
    memcpy(raw.data, ref->data, ref->len);
    memcpy(raw.data + ref->len, pat->data, pat->len);
    if (s->utf8) {
        utf8 = raw;
    } else if (fa_mutf7_decode(pool, &raw, &utf8) != FA_OK) {
        p->never = 1;
        return FA_OK;
    }
    out = fa_pnalloc(pool, utf8.len + 1);
    if (out == NULL) {
        return FA_ERROR;
    }
    for (size_t i = 0; i < utf8.len; i++) {
        u_char c = utf8.data[i];
        if (fa_imap_wild(c) && n && fa_imap_wild(out[n - 1])) {
            if (c == '*') {
                out[n - 1] = '*';
            }
            continue;
        }
        lits += !fa_imap_wild(c);
        out[n++] = c;
    }
    p->pat.data = out;
    p->pat.len = n;
    p->last_percent = n && out[n - 1] == '%';
    if (lits > FA_MAILBOX_NAME_MAX) {
        p->never = 1;                    /* longer than any name */
        return FA_OK;
    }
    p->cur = fa_palloc(pool, 3 * (n + 1) * sizeof(fa_uint_t));
    if (p->cur == NULL) {
        return FA_ERROR;
    }
    p->next = p->cur + n + 1;
    p->mark = p->next + n + 1;
    memset(p->mark, 0, (n + 1) * sizeof(fa_uint_t));
    return FA_OK;
}

/* state st joins the set, with the states a wildcard there reaches by matching nothing */
static void
fa_imap_pattern_add(fa_imap_pattern_t *p, fa_uint_t st, fa_uint_t *set, fa_uint_t *n)
{
    for ( ;; ) {
        if (p->mark[st] == p->stamp) {
            return;
        }
        p->mark[st] = p->stamp;
        set[(*n)++] = st;
        if (st == p->pat.len || !fa_imap_wild(p->pat.data[st])) {
            return;
        }
        st++;
    }
}

static int
fa_imap_pattern_match(fa_imap_pattern_t *p, const fa_str_t *name)
{
    fa_uint_t   n = 0, m, *cur = p->cur, *next = p->next, *t;
    size_t      inbox;

    if (p->never) {
        return 0;
    }
    /* INBOX's first level matches in any case: "inbox/%" lists "INBOX/x" */
    inbox = name->len >= 5 && memcmp(name->data, "INBOX", 5) == 0
            && (name->len == 5 || name->data[5] == FA_MAILBOX_SEPARATOR) ? 5 : 0;
    p->stamp++;
    fa_imap_pattern_add(p, 0, cur, &n);
    for (size_t i = 0; i < name->len && n; i++) {
        u_char c = name->data[i];
        p->stamp++;
        m = 0;
        for (fa_uint_t k = 0; k < n; k++) {
            fa_uint_t st = cur[k];
            u_char pc;
            if (st == p->pat.len) {
                continue;                /* the whole pattern: the name must end here */
            }
            pc = p->pat.data[st];
            if (pc == '*' || (pc == '%' && c != FA_MAILBOX_SEPARATOR)) {
                fa_imap_pattern_add(p, st, next, &m);
            } else if (pc == c || (i < inbox && (pc & ~0x20) == c)) {
                fa_imap_pattern_add(p, st + 1, next, &m);
            }
        }
        t = cur;
        cur = next;
        next = t;
        n = m;
    }
    return n && p->mark[p->pat.len] == p->stamp;
}


/* ---- the tree ---- */

/*
 * INBOX and its children first, then by bytes with "/" lowest: a name's
 * descendants follow it, and a parent is where bsearch finds it.
 */
static int
fa_imap_list_cmp(const void *a, const void *b)
{
    const fa_str_t  *x = &((const fa_imap_list_item_t *) a)->box->name;
    const fa_str_t  *y = &((const fa_imap_list_item_t *) b)->box->name;
    int              xi = x->len >= 5 && memcmp(x->data, "INBOX", 5) == 0
                          && (x->len == 5 || x->data[5] == FA_MAILBOX_SEPARATOR);
    int              yi = y->len >= 5 && memcmp(y->data, "INBOX", 5) == 0
                          && (y->len == 5 || y->data[5] == FA_MAILBOX_SEPARATOR);

    if (xi != yi) {
        return xi ? -1 : 1;
    }
    for (size_t i = 0; i < x->len && i < y->len; i++) {
        u_char cx = x->data[i] == FA_MAILBOX_SEPARATOR ? 0 : x->data[i];
        u_char cy = y->data[i] == FA_MAILBOX_SEPARATOR ? 0 : y->data[i];
        if (cx != cy) {
            return cx < cy ? -1 : 1;
        }
    }
    return (x->len > y->len) - (x->len < y->len);
}

/* mark the parents of every subscribed name: RECURSIVEMATCH and LSUB need it */
static void
fa_imap_list_child_subscribed(fa_imap_list_t *ls)
{
    fa_mailbox_info_t    parent;
    fa_imap_list_item_t  key = { &parent, 0 }, *found;

    for (fa_uint_t i = 0; i < ls->nitems; i++) {
        fa_str_t *name = &ls->items[i].box->name;
        if (!ls->items[i].box->subscribed) {
            continue;
        }
        for (size_t j = name->len; j > 0; j--) {
            if (name->data[j - 1] != FA_MAILBOX_SEPARATOR) {
                continue;
            }
            parent.name.data = name->data;
            parent.name.len = j - 1;
            found = bsearch(&key, ls->items, ls->nitems, sizeof(fa_imap_list_item_t),
                            fa_imap_list_cmp);
            if (found) {
                found->child_subscribed = 1;
            }
        }
    }
}

static fa_int_t
fa_imap_list_tree(fa_imap_session_t *s, fa_imap_list_t *ls, fa_mailbox_info_t *boxes,
    fa_uint_t n)
{
    ls->items = fa_palloc(s->cmd->pool, (n ? n : 1) * sizeof(fa_imap_list_item_t));
    if (ls->items == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < n; i++) {
        ls->items[i].box = &boxes[i];
        ls->items[i].child_subscribed = 0;
    }
    ls->nitems = n;
    qsort(ls->items, n, sizeof(fa_imap_list_item_t), fa_imap_list_cmp);
    if (ls->lsub || (ls->sel & FA_IMAP_LS_RECURSIVE)) {
        fa_imap_list_child_subscribed(ls);
    }
    return FA_OK;
}


/* ---- one name ---- */

/* is this name listed?  *percent: only by a pattern ending with "%" */
static int
fa_imap_list_matches(fa_imap_list_t *ls, const fa_str_t *name, int *percent)
{
    int  any = 0;

    *percent = 0;
    for (fa_uint_t i = 0; i < ls->npatterns; i++) {
        if (fa_imap_pattern_match(&ls->patterns[i], name)) {
            any = 1;
            *percent |= ls->patterns[i].last_percent;
        }
    }
    return any;
}

/* the selection options; *childinfo: say ("CHILDINFO" ("SUBSCRIBED")) */
static int
fa_imap_list_selected(fa_imap_list_t *ls, fa_imap_list_item_t *it, int *childinfo)
{
    fa_mailbox_info_t  *b = it->box;
    int                 percent;

    *childinfo = 0;
    if (!fa_imap_list_matches(ls, &b->name, &percent)) {
        return 0;
    }
    if (ls->lsub) {
        return b->subscribed || (it->child_subscribed && percent);
    }
    if ((ls->sel & FA_IMAP_LS_SPECIAL_USE) && (b->special_use == 0 || b->noselect)) {
        return 0;
    }
    if (ls->sel & FA_IMAP_LS_SUBSCRIBED) {
        *childinfo = (ls->sel & FA_IMAP_LS_RECURSIVE) && it->child_subscribed;
        return b->subscribed || *childinfo;
    }
    return !b->noselect || b->has_children;   /* a name with nothing under it is gone */
}

static size_t
fa_imap_list_attrs(fa_imap_session_t *s, fa_imap_list_t *ls, fa_mailbox_info_t *b,
    char *buf, size_t size)
{
    size_t  n = 0;
    int     gone = b->noselect && !b->has_children;

    buf[0] = '\0';
    if (ls->lsub) {
        if (b->noselect || !b->subscribed) {
            n += fa_snprintf(buf, size, "\\Noselect");
        }
        return n;
    }
    if (gone) {
        n += fa_snprintf(buf + n, size - n, " \\NonExistent");
    } else if (b->noselect) {
        n += fa_snprintf(buf + n, size - n, " \\Noselect");
    }
    if (b->subscribed && (s->rev2 || (ls->sel & FA_IMAP_LS_SUBSCRIBED)
                          || (ls->ret & FA_IMAP_LR_SUBSCRIBED)))
    {
        n += fa_snprintf(buf + n, size - n, " \\Subscribed");
    }
    if (!gone) {
        n += fa_snprintf(buf + n, size - n, b->has_children ? " \\HasChildren"
                                                             : " \\HasNoChildren");
    }
    for (size_t i = 0; !b->noselect && i < fa_nelems(fa_imap_list_uses); i++) {
        if (b->special_use & fa_imap_list_uses[i].use) {
            n += fa_snprintf(buf + n, size - n, " %s", fa_imap_list_uses[i].name);
        }
    }
    if (n) {
        memmove(buf, buf + 1, n);        /* the leading space */
        n--;
    }
    return n;
}

static void
fa_imap_list_status_done(void *data, fa_int_t rc, fa_mailbox_status_t *st)
{
    fa_imap_session_t  *s = data;
    fa_imap_list_t     *ls;

    if (fa_imap_answered(s)) {
        return;
    }
    ls = s->cmd->data;
    if (rc == FA_OK) {
        fa_imap_status_line(s, &ls->wire, ls->status, st);
    }
    /* a mailbox whose status cannot be had gets none (RFC 5819) */
    fa_imap_wait_drain(s, fa_imap_list_emit);
    fa_imap_wake(s);
}

/* the LIST (or LSUB) line of one name, and its STATUS: FA_AGAIN if the store was asked */
static fa_int_t
fa_imap_list_one(fa_imap_session_t *s, fa_imap_list_t *ls, fa_imap_list_item_t *it)
{
    fa_mailbox_info_t  *b = it->box;
    char                attrs[256];
    int                 childinfo;
    fa_int_t            rc;

    if (!fa_imap_list_selected(ls, it, &childinfo)) {
        return FA_OK;
    }
    if (fa_imap_name_out(s, &b->name, s->cmd->pool, &ls->wire) != FA_OK) {
        return FA_OK;                    /* not UTF-8: the store's name cannot go out */
    }
    fa_imap_list_attrs(s, ls, b, attrs, sizeof(attrs));
    fa_imap_send(s, "* %s (%s) \"/\" %.*s%s", ls->lsub ? "LSUB" : "LIST", attrs,
                 (int) ls->wire.len, ls->wire.data,
                 childinfo ? " (\"CHILDINFO\" (\"SUBSCRIBED\"))" : "");
    if (!(ls->ret & FA_IMAP_LR_STATUS) || b->noselect) {
        return FA_OK;
    }
    rc = fa_imap_call(s, s->store->backend->mailbox_status(s->store, &s->user, &b->name,
                                                           fa_imap_list_status_done, s));
    return rc == FA_AGAIN ? FA_AGAIN : FA_OK;
}

/* the names from ls->next on, as far as the output has room */
static fa_int_t
fa_imap_list_emit(fa_imap_session_t *s)
{
    fa_imap_list_t  *ls = s->cmd->data;

    while (ls->next < ls->nitems) {
        if (fa_imap_output_full(s)) {
            fa_imap_wait_drain(s, fa_imap_list_emit);
            return FA_AGAIN;
        }
        if (fa_imap_list_one(s, ls, &ls->items[ls->next++]) == FA_AGAIN) {
            s->input = FA_IMAP_IN_BUSY;
            return FA_AGAIN;
        }
    }
    return fa_imap_tagged(s, "OK", "%s completed", ls->lsub ? "LSUB" : "LIST");
}

static void
fa_imap_list_listed(void *data, fa_int_t rc, fa_mailbox_info_t *boxes, fa_uint_t n)
{
    fa_imap_session_t  *s = data;
    fa_imap_list_t     *ls;

    if (fa_imap_answered(s)) {
        return;
    }
    ls = s->cmd->data;
    if (rc == FA_OK && fa_imap_list_tree(s, ls, boxes, n) != FA_OK) {
        rc = FA_ERROR;
    }
    if (rc != FA_OK) {
        fa_imap_storage_no(s, rc, ls->lsub ? "LSUB" : "LIST");
        fa_imap_done(s);
        return;
    }
    fa_imap_wait_drain(s, fa_imap_list_emit);
    fa_imap_wake(s);
}


/* ---- the command ---- */

static fa_int_t
fa_imap_list_select_opts(fa_imap_list_t *ls, const fa_imap_arg_t *list)
{
    for (fa_uint_t i = 0; i < list->n; i++) {
        const fa_imap_arg_t *a = &list->list[i];
        if (fa_imap_arg_is(a, "SUBSCRIBED")) {
            ls->sel |= FA_IMAP_LS_SUBSCRIBED;
            ls->ret |= FA_IMAP_LR_SUBSCRIBED;
        } else if (fa_imap_arg_is(a, "REMOTE")) {
            ls->sel |= FA_IMAP_LS_REMOTE;          /* we have no remote mailboxes */
        } else if (fa_imap_arg_is(a, "RECURSIVEMATCH")) {
            ls->sel |= FA_IMAP_LS_RECURSIVE;
        } else if (fa_imap_arg_is(a, "SPECIAL-USE")) {
            ls->sel |= FA_IMAP_LS_SPECIAL_USE;
            ls->ret |= FA_IMAP_LR_SPECIAL_USE;
        } else {
            return FA_DECLINED;
        }
    }
    /* RFC 5258 3: RECURSIVEMATCH alone (or with REMOTE) is an error */
    if ((ls->sel & FA_IMAP_LS_RECURSIVE)
        && !(ls->sel & (FA_IMAP_LS_SUBSCRIBED | FA_IMAP_LS_SPECIAL_USE)))
    {
        return FA_DECLINED;
    }
    return FA_OK;
}

static fa_int_t
fa_imap_list_return_opts(fa_imap_session_t *s, fa_imap_list_t *ls, const fa_imap_arg_t *list)
{
    for (fa_uint_t i = 0; i < list->n; i++) {
        const fa_imap_arg_t *a = &list->list[i];
        if (fa_imap_arg_is(a, "SUBSCRIBED")) {
            ls->ret |= FA_IMAP_LR_SUBSCRIBED;
        } else if (fa_imap_arg_is(a, "CHILDREN")) {
            ls->ret |= FA_IMAP_LR_CHILDREN;        /* always given */
        } else if (fa_imap_arg_is(a, "SPECIAL-USE")) {
            ls->ret |= FA_IMAP_LR_SPECIAL_USE;     /* always given */
        } else if (fa_imap_arg_is(a, "STATUS") && i + 1 < list->n
                   && (ls->status = fa_imap_status_parse(&list->list[i + 1])) != 0)
        {
            ls->ret |= FA_IMAP_LR_STATUS;
            for (fa_uint_t k = 0; k < list->list[i + 1].n; k++) {
                if (fa_imap_arg_is(&list->list[i + 1].list[k], "HIGHESTMODSEQ")) {
                    s->condstore = 1;      /* RFC 7162 3.1, as STATUS does */
                }
            }
            i++;
        } else {
            return FA_DECLINED;
        }
    }
    return FA_OK;
}

/* the patterns: one list-mailbox, or a parenthesised list of them */
static fa_int_t
fa_imap_list_patterns(fa_imap_session_t *s, fa_imap_list_t *ls, const fa_str_t *ref,
    const fa_imap_arg_t *arg)
{
    const fa_imap_arg_t  *a = arg->type == FA_IMAP_ARG_LIST ? arg->list : arg;
    fa_uint_t             n = arg->type == FA_IMAP_ARG_LIST ? arg->n : 1;
    const fa_str_t       *pat;

    if (n == 0) {
        return FA_DECLINED;
    }
    ls->patterns = fa_palloc(s->cmd->pool, n * sizeof(fa_imap_pattern_t));
    if (ls->patterns == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t i = 0; i < n; i++) {
        if ((pat = fa_imap_arg_string(&a[i])) == NULL) {
            return FA_DECLINED;
        }
        if (pat->len == 0) {
            continue;                    /* "" in a list of patterns names nothing */
        }
        if (fa_imap_pattern_compile(s, s->cmd->pool, ref, pat, &ls->patterns[ls->npatterns])
            != FA_OK)
        {
            return FA_ERROR;
        }
        ls->npatterns++;
    }
    return FA_OK;
}

static fa_int_t
fa_imap_list_parse(fa_imap_session_t *s, fa_imap_cmd_t *cmd, fa_imap_list_t *ls)
{
    fa_imap_arg_t   *a = cmd->parsed.args;
    fa_uint_t        n = cmd->parsed.nargs, i = 0;
    const fa_str_t  *ref;
    fa_int_t         rc;

    if (!ls->lsub && n > 0 && a[0].type == FA_IMAP_ARG_LIST) {
        if (fa_imap_list_select_opts(ls, &a[0]) != FA_OK) {
            return FA_DECLINED;
        }
        ls->extended = 1;
        i = 1;
    }
    if (n < i + 2 || (ref = fa_imap_arg_string(&a[i])) == NULL) {
        return FA_DECLINED;
    }
    if (a[i + 1].type == FA_IMAP_ARG_LIST) {
        if (ls->lsub) {
            return FA_DECLINED;
        }
        ls->extended = 1;
    }
    rc = fa_imap_list_patterns(s, ls, ref, &a[i + 1]);
    if (rc != FA_OK) {
        return rc;
    }
    i += 2;
    if (i == n) {
        return FA_OK;
    }
    if (ls->lsub || n != i + 2 || !fa_imap_arg_is(&a[i], "RETURN")
        || a[i + 1].type != FA_IMAP_ARG_LIST
        || fa_imap_list_return_opts(s, ls, &a[i + 1]) != FA_OK)
    {
        return FA_DECLINED;
    }
    ls->extended = 1;
    return FA_OK;
}

static fa_int_t
fa_imap_list_start(fa_imap_session_t *s, fa_imap_cmd_t *cmd, int lsub)
{
    fa_imap_list_t  *ls = fa_pcalloc(cmd->pool, sizeof(*ls));
    const char      *what = lsub ? "LSUB" : "LIST";
    fa_int_t         rc;

    if (ls == NULL) {
        return FA_ERROR;
    }
    ls->lsub = lsub;
    cmd->data = ls;
    rc = fa_imap_list_parse(s, cmd, ls);
    if (rc != FA_OK) {
        return rc == FA_ERROR ? FA_ERROR
               : fa_imap_bad(s, lsub ? "Syntax: LSUB reference pattern"
                                     : "Syntax: LIST [(options)] reference pattern|(patterns) "
                                       "[RETURN (options)]");
    }
    if (ls->npatterns == 0) {
        /* "" asks for the separator and the root of the reference: ours is "" */
        fa_imap_send(s, "* %s (\\Noselect) \"/\" \"\"", what);
        return fa_imap_tagged(s, "OK", "%s completed", what);
    }
    rc = fa_imap_call(s, s->store->backend->mailbox_list(s->store, &s->user, cmd->pool,
                                                         fa_imap_list_listed, s));
    if (rc == FA_AGAIN) {
        return FA_AGAIN;
    }
    return fa_imap_storage_no(s, rc, what);
}

fa_int_t
fa_imap_list(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    return fa_imap_list_start(s, cmd, 0);
}

fa_int_t
fa_imap_lsub(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    return fa_imap_list_start(s, cmd, 1);
}
