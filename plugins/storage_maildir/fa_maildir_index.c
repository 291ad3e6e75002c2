/*
 * The small files beside the messages, read and written.
 *
 * dovecot-uidlist (Dovecot's version 3, which Dovecot reads and writes):
 *
 *   3 V1732252877 N43 G3f1c0e...
 *   41 :1732252890.M1P2Q1.mx1,S=2048,W=2101
 *   42 GMYGUID :1732252891.M1P2Q2.mx1,S=99,W=101
 *
 * Records are in UID order; new ones are appended, so a reader takes
 * UIDNEXT as the larger of N and the last UID + 1.  Expunges rewrite it.
 *
 * facteur-state: what Maildir++ has no place for.
 *
 *   F1 V1732252877 H57 E12 U32       version, the uidlist's UIDVALIDITY,
 *                                    HIGHESTMODSEQ floor, forgotten-expunge
 *                                    floor, special-use bits (FA_USE_*)
 *   41 55 :RS                        UID, MODSEQ of its last change, and
 *                                    the flags that change recorded
 *   X40 56                           UID 40 expunged at MODSEQ 56
 *
 * Lines are appended as changes happen; a later line for a UID replaces an
 * earlier one, and HIGHESTMODSEQ is the largest MODSEQ in the file.  The
 * file is rewritten when it has grown to twice what it describes, keeping
 * the last FA_MAILDIR_EXPUNGES_KEPT expunges.  A flag change made by
 * another program (mutt renames the file) shows as flags that differ from
 * the recorded ones, and gets a new MODSEQ at the next sync.  A state
 * whose V differs from the uidlist's belongs to an older incarnation of
 * the folder and is dropped.
 */

#include "fa_maildir.h"

/* split the next line off *p (NUL-terminating it); NULL at the end */
static char *
fa_maildir_next_line(char **p, int *complete)
{
    char  *line = *p, *nl;

    if (*line == '\0') {
        return NULL;
    }
    nl = strchr(line, '\n');
    if (nl == NULL) {
        *complete = 0;               /* a write cut short: never append after it */
        *p = line + strlen(line);
        return NULL;
    }
    *nl = '\0';
    *p = nl + 1;
    return line;
}

static void
fa_maildir_uidlist_header(fa_maildir_view_t *v, char *line)
{
    char  *field, *save = NULL, *rest = NULL;
    size_t n = 0;

    for (field = strtok_r(line + 2, " ", &save); field; field = strtok_r(NULL, " ", &save)) {
        switch (field[0]) {
        case 'V': v->uidvalidity = (uint32_t) strtoul(field + 1, NULL, 10); break;
        case 'N': v->uidnext = (uint32_t) strtoul(field + 1, NULL, 10); break;
        case 'G': fa_snprintf(v->guid, sizeof(v->guid), "%s", field + 1); break;
        default:
            /* unknown fields are kept for the next rewrite, as Dovecot does */
            if (rest == NULL) {
                rest = fa_pnalloc(v->pool, strlen(field) + 256);
                n = 0;
            }
            if (rest && n + strlen(field) + 2 < 256) {
                n += fa_snprintf(rest + n, 256 - n, "%s%s", n ? " " : "", field);
            }
        }
    }
    v->hdr_ext = rest;
}

/* "<uid> [ext ...] :<file>" (version 3) or "<uid> <file>" (version 1) */
static fa_int_t
fa_maildir_uidlist_record(fa_maildir_view_t *v, char *line, int version, fa_array_t *recs)
{
    fa_maildir_rec_t  *r;
    char              *p = line, *name;
    unsigned long      uid = strtoul(line, &p, 10);

    if (uid == 0 || uid >= UINT32_MAX || *p != ' ') {
        return FA_DECLINED;
    }
    while (*p == ' ') {
        p++;
    }
    name = p;
    if (version == 3) {
        /* extension fields until one that starts with ':', the file name */
        while (*name && *name != ':') {
            name += strcspn(name, " ");
            while (*name == ' ') {
                name++;
            }
        }
        if (*name != ':') {
            return FA_DECLINED;
        }
        name++;
    }
    r = fa_array_push(recs);
    if (r == NULL) {
        return FA_ERROR;
    }
    r->uid = (uint32_t) uid;
    r->base = name;
    r->base_len = strcspn(name, ":");
    r->ext = NULL;
    if (version == 3 && name - 1 > p) {
        name[-2] = '\0';             /* the space before ':' */
        r->ext = p;
    }
    if (recs->nelts > 1 && r[-1].uid >= r->uid) {
        v->uidlist_rewrite = 1;      /* out of order: Dovecot rewrites it too */
    }
    return FA_OK;
}

fa_int_t
fa_maildir_uidlist_read(fa_maildir_t *md, fa_maildir_view_t *v, fa_array_t *recs)
{
    fa_str_t   file;
    char      *p, *line;
    int        complete = 1, version;
    fa_int_t   rc;

    v->uidvalidity = 0;
    v->uidnext = 1;
    rc = fa_maildir_read_file(md, v->pool, fa_maildir_join(v->pool, v->dir, FA_MAILDIR_UIDLIST),
                              &file);
    if (rc != FA_OK) {
        return rc == FA_DECLINED ? FA_OK : rc;
    }
    p = (char *) file.data;
    line = fa_maildir_next_line(&p, &complete);
    if (line == NULL || (line[0] != '1' && line[0] != '3') || line[1] != ' ') {
        fa_log_error(FA_LOG_WARN, md->log, 0, "maildir: \"%s/%s\" has a broken header, "
                     "rebuilding it", v->dir, FA_MAILDIR_UIDLIST);
        return FA_OK;
    }
    version = line[0] - '0';
    if (version == 3) {
        fa_maildir_uidlist_header(v, line);
    } else {
        unsigned long uv = 0, next = 0;
        sscanf(line + 2, "%lu %lu", &uv, &next);
        v->uidvalidity = (uint32_t) uv;
        v->uidnext = (uint32_t) next;
        v->uidlist_rewrite = 1;
    }
    while ((line = fa_maildir_next_line(&p, &complete)) != NULL) {
        rc = fa_maildir_uidlist_record(v, line, version, recs);
        if (rc == FA_ERROR) {
            return rc;
        }
        if (rc == FA_DECLINED) {
            v->uidlist_rewrite = 1;
        }
    }
    v->uidlist_append_ok = complete && version == 3 && v->guid[0];
    return FA_OK;
}

fa_int_t
fa_maildir_keywords_read(fa_maildir_t *md, fa_maildir_view_t *v)
{
    fa_str_t   file;
    char      *p, *line, *end;
    int        complete = 1;
    fa_int_t   rc;

    rc = fa_maildir_read_file(md, v->pool, fa_maildir_join(v->pool, v->dir, FA_MAILDIR_KEYWORDS),
                              &file);
    if (rc != FA_OK) {
        return rc == FA_DECLINED ? FA_OK : rc;
    }
    p = (char *) file.data;
    while ((line = fa_maildir_next_line(&p, &complete)) != NULL) {
        unsigned long idx = strtoul(line, &end, 10);
        if (end != line && *end == ' ' && end[1] && idx < FA_MAILDIR_KEYWORDS_MAX) {
            v->keywords[idx] = end + 1;
        }
    }
    return FA_OK;
}

static void
fa_maildir_state_header(fa_maildir_view_t *v, char *line, uint32_t *uidvalidity)
{
    char  *field, *save = NULL;

    for (field = strtok_r(line, " ", &save); field; field = strtok_r(NULL, " ", &save)) {
        uint64_t n = strtoull(field + 1, NULL, 10);
        switch (field[0]) {
        case 'V': *uidvalidity = (uint32_t) n; break;
        case 'H': v->highestmodseq = n; break;
        case 'E': v->expunge_floor = n; break;
        case 'U': v->special_use = (uint32_t) n; break;
        }
    }
}

static fa_int_t
fa_maildir_state_line(fa_maildir_view_t *v, char *line, fa_array_t *lines)
{
    char      *p;
    uint64_t   uid, modseq;

    uid = strtoull(line + (line[0] == 'X'), &p, 10);
    modseq = strtoull(p, &p, 10);
    if (uid == 0 || uid >= UINT32_MAX || modseq == 0) {
        return FA_OK;                /* not ours to understand: skipped */
    }
    v->highestmodseq = fa_max(v->highestmodseq, modseq);
    if (line[0] == 'X') {
        fa_maildir_expunge_t *x = fa_array_push(&v->expunges);
        if (x == NULL) {
            return FA_ERROR;
        }
        x->uid = (uint32_t) uid;
        x->modseq = modseq;
        return FA_OK;
    }
    fa_maildir_line_t *l = fa_array_push(lines);
    if (l == NULL) {
        return FA_ERROR;
    }
    l->uid = (uint32_t) uid;
    l->modseq = modseq;
    l->info = (p[0] == ' ' && p[1] == ':') ? p + 2 : "";
    return FA_OK;
}

/* the state lines, in file order (a later line for a UID wins) */
fa_int_t
fa_maildir_state_read(fa_maildir_t *md, fa_maildir_view_t *v, fa_array_t *lines)
{
    fa_str_t   file;
    char      *p, *line;
    int        complete = 1;
    uint32_t   uidvalidity = 0;
    fa_int_t   rc;

    v->state_append_ok = 0;
    rc = fa_maildir_read_file(md, v->pool, fa_maildir_join(v->pool, v->dir, FA_MAILDIR_STATE),
                              &file);
    if (rc != FA_OK) {
        return rc == FA_DECLINED ? FA_OK : rc;
    }
    p = (char *) file.data;
    line = fa_maildir_next_line(&p, &complete);
    if (line == NULL || strncmp(line, "F1 ", 3) != 0) {
        return FA_OK;
    }
    fa_maildir_state_header(v, line, &uidvalidity);
    if (uidvalidity != v->uidvalidity) {
        return FA_OK;                /* an older incarnation's: rewritten at the next sync */
    }
    while ((line = fa_maildir_next_line(&p, &complete)) != NULL) {
        v->state_lines++;
        if (fa_maildir_state_line(v, line, lines) != FA_OK) {
            return FA_ERROR;
        }
    }
    v->state_append_ok = complete;
    return FA_OK;
}

/* special-use only: the first line of the state file is enough */
uint32_t
fa_maildir_state_special_use(fa_maildir_t *md, fa_pool_t *pool, const char *dir)
{
    fa_maildir_view_t  v;
    char               buf[256], *nl;
    uint32_t           uidvalidity;
    ssize_t            n;
    int                fd;

    (void) md;
    fd = open(fa_maildir_join(pool, dir, FA_MAILDIR_STATE), O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return 0;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 3 || strncmp(buf, "F1 ", 3) != 0) {
        return 0;
    }
    buf[n] = '\0';
    if ((nl = strchr(buf, '\n')) != NULL) {
        *nl = '\0';
    }
    memset(&v, 0, sizeof(v));
    fa_maildir_state_header(&v, buf, &uidvalidity);
    return v.special_use;
}

/* ---- writing ----------------------------------------------------------- */

static void
fa_maildir_state_msg_line(fa_maildir_buf_t *b, fa_maildir_msg_t *m)
{
    fa_maildir_buf_printf(b, "%u %llu :%s\n", m->uid, (unsigned long long) m->modseq,
                          m->info);
}

static void
fa_maildir_state_trim(fa_maildir_view_t *v)
{
    fa_maildir_expunge_t  *x = v->expunges.elts;
    fa_uint_t              drop;

    if (v->expunges.nelts <= FA_MAILDIR_EXPUNGES_KEPT) {
        return;
    }
    drop = v->expunges.nelts - FA_MAILDIR_EXPUNGES_KEPT;
    v->expunge_floor = fa_max(v->expunge_floor, x[drop - 1].modseq);
    memmove(x, x + drop, (v->expunges.nelts - drop) * sizeof(*x));
    v->expunges.nelts -= drop;
    v->expunges_new_from = v->expunges_new_from > drop ? v->expunges_new_from - drop : 0;
}

static fa_int_t
fa_maildir_state_write(fa_maildir_t *md, fa_maildir_view_t *v)
{
    fa_maildir_buf_t       b = { NULL, 0, 0, 0 };
    fa_maildir_msg_t      *m = v->msgs.elts;
    fa_maildir_expunge_t  *x = v->expunges.elts;
    fa_uint_t              i, lines = 0, described;
    int                    rewrite;
    fa_int_t               rc;

    described = fa_max(v->msgs.nelts, v->nrecs) + v->expunges.nelts;
    rewrite = v->state_rewrite || !v->state_append_ok || v->state_lines > 2 * described + 64;
    if (rewrite && v->partial) {
        return FA_ERROR;             /* a partial view cannot describe the folder */
    }
    if (rewrite) {
        fa_maildir_state_trim(v);
        x = v->expunges.elts;
        fa_maildir_buf_printf(&b, "F1 V%u H%llu E%llu U%u\n", v->uidvalidity,
                              (unsigned long long) v->highestmodseq,
                              (unsigned long long) v->expunge_floor, v->special_use);
    }
    for (i = 0; i < v->msgs.nelts; i++) {
        if (rewrite || m[i].changed) {
            fa_maildir_state_msg_line(&b, &m[i]);
            lines++;
        }
    }
    for (i = rewrite ? 0 : v->expunges_new_from; i < v->expunges.nelts; i++) {
        fa_maildir_buf_printf(&b, "X%u %llu\n", x[i].uid, (unsigned long long) x[i].modseq);
        lines++;
    }
    if (b.failed) {
        free(b.p);
        return FA_ERROR;
    }
    rc = FA_OK;
    if (rewrite) {
        rc = fa_maildir_replace_file(md, v->dir, FA_MAILDIR_STATE, (u_char *) b.p, b.n);
        v->state_lines = described;
    } else if (b.n) {
        rc = fa_maildir_append_file(md, v->dir, FA_MAILDIR_STATE, (u_char *) b.p, b.n, 0);
        v->state_lines += lines;
    }
    free(b.p);
    return rc;
}

static void
fa_maildir_uidlist_msg_line(fa_maildir_buf_t *b, fa_maildir_msg_t *m)
{
    fa_maildir_buf_printf(b, "%u%s%s :%.*s\n", m->uid, m->ext ? " " : "", m->ext ? m->ext : "",
                          (int) m->base_len, m->file + 4);
}

static fa_int_t
fa_maildir_uidlist_write(fa_maildir_t *md, fa_maildir_view_t *v)
{
    fa_maildir_buf_t   b = { NULL, 0, 0, 0 };
    fa_maildir_msg_t  *m = v->msgs.elts;
    int                rewrite = v->uidlist_rewrite || !v->uidlist_append_ok;
    fa_int_t           rc = FA_OK;

    if (!rewrite && v->uidlist_new_from == v->msgs.nelts) {
        return FA_OK;
    }
    if (rewrite && v->partial) {
        return FA_ERROR;
    }
    if (rewrite) {
        fa_maildir_buf_printf(&b, "3 V%u N%u G%s%s%s\n", v->uidvalidity, v->uidnext, v->guid,
                              v->hdr_ext ? " " : "", v->hdr_ext ? v->hdr_ext : "");
    }
    for (fa_uint_t i = rewrite ? 0 : v->uidlist_new_from; i < v->msgs.nelts; i++) {
        fa_maildir_uidlist_msg_line(&b, &m[i]);
    }
    if (b.failed) {
        rc = FA_ERROR;
    } else if (rewrite) {
        rc = fa_maildir_replace_file(md, v->dir, FA_MAILDIR_UIDLIST, (u_char *) b.p, b.n);
    } else {
        rc = fa_maildir_append_file(md, v->dir, FA_MAILDIR_UIDLIST, (u_char *) b.p, b.n, 0);
    }
    free(b.p);
    return rc;
}

static fa_int_t
fa_maildir_keywords_write(fa_maildir_t *md, fa_maildir_view_t *v)
{
    fa_maildir_buf_t  b = { NULL, 0, 0, 0 };
    fa_int_t          rc;

    for (int i = 0; i < FA_MAILDIR_KEYWORDS_MAX; i++) {
        if (v->keywords[i]) {
            fa_maildir_buf_printf(&b, "%d %s\n", i, v->keywords[i]);
        }
    }
    rc = b.failed ? FA_ERROR
         : fa_maildir_replace_file(md, v->dir, FA_MAILDIR_KEYWORDS, (u_char *) b.p, b.n);
    free(b.p);
    return rc;
}

/*
 * Write what changed in the view, each file durable before the next: the
 * keywords (a file name may already use a new letter), the state, then the
 * uidlist, which gives new messages their UIDs for every other reader.
 * Called with the folder locked.
 */
fa_int_t
fa_maildir_index_write(fa_maildir_t *md, fa_maildir_view_t *v)
{
    fa_maildir_msg_t  *m = v->msgs.elts;
    fa_int_t           rc;

    if (v->keywords_changed && (rc = fa_maildir_keywords_write(md, v)) != FA_OK) {
        return rc;
    }
    if ((rc = fa_maildir_state_write(md, v)) != FA_OK) {
        return rc;
    }
    if ((rc = fa_maildir_uidlist_write(md, v)) != FA_OK) {
        return rc;
    }
    for (fa_uint_t i = 0; i < v->msgs.nelts; i++) {
        m[i].changed = 0;
    }
    v->uidlist_new_from = v->msgs.nelts;
    v->expunges_new_from = v->expunges.nelts;
    v->keywords_changed = v->uidlist_rewrite = v->state_rewrite = 0;
    v->uidlist_append_ok = v->state_append_ok = 1;
    return FA_OK;
}
