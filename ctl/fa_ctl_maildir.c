/*
 * facteurctl import maildir USER DIR [--mailbox=NAME]
 * facteurctl export maildir USER|DOMAIN DIR
 *
 * The layout is Maildir++ as Dovecot and mutt use it: DIR/{cur,new,tmp} is
 * INBOX, DIR/.Work.Reports/ is "Work/Reports" (folder names through
 * fa_mailbox_to_maildir: modified UTF-7, "." escaped as "\2e").  A file's
 * flags are the letters after ":2," (D Draft, F Flagged, R Answered,
 * S Seen, T Deleted) and a..z, the keywords named in the folder's
 * dovecot-keywords; its internal date is the file's mtime.
 *
 * Files use LF line ends and the store CRLF (what IMAP serves): import
 * turns a bare LF into CRLF, export a CRLF into LF.  Messages stream
 * through a bounded buffer.
 *
 * Import takes the folders in name order and, in each, new/ and cur/ in
 * the order of their file names (Maildir names start with the delivery
 * time); missing mailboxes are created; with --mailbox=NAME the whole tree
 * goes under NAME (INBOX into NAME itself).  Export writes each message in
 * tmp/ and renames it into cur/ with Dovecot's S= and W= sizes; a domain
 * goes to DIR/LOCAL, one Maildir per user.
 */

#include "fa_ctl.h"
#include <dirent.h>
#include <sys/stat.h>
#include <sys/time.h>

#define FA_MD_CHUNK       65536
#define FA_MD_KEYWORDS    26            /* a..z */

static const struct {
    char       letter;
    uint32_t   flag;
} fa_md_flags[] = {                     /* in the order Maildir wants them */
    { 'D', FA_FLAG_DRAFT }, { 'F', FA_FLAG_FLAGGED }, { 'R', FA_FLAG_ANSWERED },
    { 'S', FA_FLAG_SEEN }, { 'T', FA_FLAG_DELETED },
};

/* ---- import ---- */

typedef struct {
    fa_ctl_t       *ctl;
    fa_storage_t   *st;
    fa_str_t        user;
    fa_str_t        keywords[FA_MD_KEYWORDS];   /* the folder's dovecot-keywords */
    fa_ctl_batch_t  batch;                      /* commits in flight */
    fa_uint_t       mailboxes;
} fa_md_in_t;

static void
fa_md_read_keywords(fa_md_in_t *in, const char *folder)
{
    char   path[PATH_MAX], line[512];
    FILE  *f;

    memset(in->keywords, 0, sizeof(in->keywords));
    fa_snprintf(path, sizeof(path), "%s/dovecot-keywords", folder);
    if ((f = fopen(path, "r")) == NULL) {
        return;
    }
    while (fgets(line, sizeof(line), f)) {
        char *end, *name;
        unsigned long i = strtoul(line, &end, 10);
        if (end == line || *end != ' ' || i >= FA_MD_KEYWORDS) {
            continue;
        }
        name = end + 1;
        name[strcspn(name, "\r\n")] = '\0';
        if (*name) {
            fa_str_t k = { strlen(name), (u_char *) name };
            in->keywords[i].data = fa_pstrdup(in->ctl->pool, &k);
            in->keywords[i].len = in->keywords[i].data ? k.len : 0;
        }
    }
    fclose(f);
}

/* the flags and keywords of a file name's ":2,..." part */
static void
fa_md_parse_info(fa_md_in_t *in, const char *name, fa_append_request_t *req,
    fa_str_t *kw)
{
    const char  *info = strstr(name, ":2,");

    req->flags = 0;
    req->nkeywords = 0;
    req->keywords = kw;
    for (const char *p = info ? info + 3 : ""; *p; p++) {
        for (size_t i = 0; i < fa_nelems(fa_md_flags); i++) {
            if (*p == fa_md_flags[i].letter) {
                req->flags |= fa_md_flags[i].flag;
            }
        }
        if (*p >= 'a' && *p <= 'z' && in->keywords[*p - 'a'].len) {
            kw[req->nkeywords++] = in->keywords[*p - 'a'];
        }
    }
}

/* write a piece of the file, a bare LF as CRLF; *cr: the last byte was a CR */
static fa_int_t
fa_md_write_crlf(fa_append_t *a, const fa_storage_backend_t *b, const u_char *p,
    size_t n, int *cr)
{
    size_t    start = 0;
    fa_int_t  rc = FA_OK;

    for (size_t i = 0; rc == FA_OK && i < n; i++) {
        if (p[i] == '\n' && !(i ? p[i - 1] == '\r' : *cr)) {
            rc = b->append_write(a, p + start, i - start);
            rc = rc ? rc : b->append_write(a, (const u_char *) "\r\n", 2);
            start = i + 1;
        }
    }
    if (rc == FA_OK && n > start) {
        rc = b->append_write(a, p + start, n - start);
    }
    if (n) {
        *cr = p[n - 1] == '\r';
    }
    return rc;
}

static fa_int_t
fa_md_import_file(fa_md_in_t *in, const fa_str_t *mailbox, const char *path,
    const char *name)
{
    static u_char         buf[FA_MD_CHUNK];
    const fa_storage_backend_t *b = in->st->backend;
    fa_append_request_t   req;
    fa_str_t              kw[FA_MD_KEYWORDS];
    fa_append_t          *a = NULL;
    struct stat           sb;
    fa_int_t              rc;
    ssize_t               n;
    int                   fd, cr = 0;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 || fstat(fd, &sb) == -1) {
        fa_ctl_error("cannot read \"%s\": %s", path, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return FA_ERROR;
    }
    memset(&req, 0, sizeof(req));
    fa_md_parse_info(in, name, &req, kw);
    req.internal_date = sb.st_mtime;
    req.size_hint = (uint64_t) sb.st_size;
    rc = b->append_begin(in->st, &in->user, mailbox, &req, &a);
    a = rc == FA_OK ? a : NULL;
    while (rc == FA_OK && (n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            fa_ctl_error("reading \"%s\": %s", path, strerror(errno));
            rc = FA_ERROR;
            break;
        }
        rc = fa_md_write_crlf(a, b, buf, (size_t) n, &cr);
    }
    close(fd);
    if (rc == FA_OK) {
        return fa_ctl_batch_commit(in->ctl, &in->batch, in->st, a);
    }
    if (a) {
        b->append_abort(a);
    }
    return rc;
}

/* by file name, whatever the subdirectory ("new/" or "cur/") before it */
static int
fa_md_name_cmp(const void *a, const void *b)
{
    const char  *x = *(char *const *) a, *y = *(char *const *) b;
    const char  *bx = strrchr(x, '/'), *by = strrchr(y, '/');

    return strverscmp(bx ? bx + 1 : x, by ? by + 1 : y);
}

/*
 * Add to NAMES the entries of DIR/SUB: files ("SUB/NAME"), or with
 * folders the "." entries ("NAME", SUB being NULL).
 */
static fa_int_t
fa_md_list(fa_ctl_t *ctl, fa_array_t *names, const char *dir, const char *sub)
{
    char            path[PATH_MAX];
    DIR            *d;
    struct dirent  *de;
    char          **p;

    fa_snprintf(path, sizeof(path), "%s%s%s", dir, sub ? "/" : "", sub ? sub : "");
    if ((d = opendir(path)) == NULL) {
        return errno == ENOENT ? FA_OK : FA_ERROR;
    }
    while ((de = readdir(d)) != NULL) {
        int dot = de->d_name[0] == '.';
        if (sub ? dot : (!dot || strcmp(de->d_name, ".") == 0
                         || strcmp(de->d_name, "..") == 0))
        {
            continue;
        }
        fa_snprintf(path, sizeof(path), "%s%s%s", sub ? sub : "", sub ? "/" : "",
                    de->d_name);
        if ((p = fa_array_push(names)) == NULL
            || (*p = fa_pstrcat(ctl->pool, path, "")) == NULL)
        {
            closedir(d);
            return FA_ERROR;
        }
    }
    closedir(d);
    return FA_OK;
}

static fa_int_t
fa_md_import_folder(fa_md_in_t *in, const char *folder, const fa_str_t *mailbox)
{
    fa_array_t     *names = fa_array_create(in->ctl->pool, 64, sizeof(char *));
    fa_ctl_wait_t   w = { 0 };
    char            path[PATH_MAX];
    char          **n;
    fa_int_t        rc;

    rc = in->st->backend->mailbox_create(in->st, &in->user, mailbox, 0, fa_ctl_done_cb, &w);
    rc = fa_ctl_wait(in->ctl, &w, rc);
    if (rc != FA_OK && rc != FA_STORAGE_EXISTS) {
        return fa_ctl_storage_status(rc, "mailbox", (char *) mailbox->data), rc;
    }
    if (names == NULL || fa_md_list(in->ctl, names, folder, "new") != FA_OK
        || fa_md_list(in->ctl, names, folder, "cur") != FA_OK)
    {
        fa_ctl_error("cannot list \"%s\": %s", folder, strerror(errno));
        return FA_ERROR;
    }
    in->mailboxes++;
    fa_md_read_keywords(in, folder);
    qsort(names->elts, names->nelts, sizeof(char *), fa_md_name_cmp);
    n = names->elts;
    for (fa_uint_t i = 0; i < names->nelts; i++) {
        fa_snprintf(path, sizeof(path), "%s/%s", folder, n[i]);
        rc = fa_md_import_file(in, mailbox, path, strchr(n[i], '/') + 1);
        if (rc != FA_OK) {
            return fa_ctl_storage_status(rc, "mailbox", (char *) mailbox->data), rc;
        }
    }
    return FA_OK;
}

/* "Work" under --mailbox=Old gives "Old/Work"; INBOX gives "Old" */
static fa_int_t
fa_md_target(fa_md_in_t *in, const fa_str_t *name, fa_str_t *out)
{
    const char  *top = in->ctl->mailbox;
    size_t       tl;

    if (top == NULL) {
        *out = *name;
        return FA_OK;
    }
    tl = strlen(top);
    if (name == NULL) {
        out->data = (u_char *) top;
        out->len = tl;
        return FA_OK;
    }
    out->len = tl + 1 + name->len;
    out->data = fa_pnalloc(in->ctl->pool, out->len + 1);
    if (out->data == NULL) {
        return FA_ERROR;
    }
    fa_snprintf((char *) out->data, out->len + 1, "%s/%.*s", top, (int) name->len,
                name->data);
    return FA_OK;
}

static int
fa_ctl_import_maildir(fa_ctl_t *ctl, int argc, char **argv)
{
    static const fa_str_t  inbox = fa_string("INBOX");
    const char            *dir = argv[1];
    fa_md_in_t             in;
    fa_str_t               name, target;
    char                   path[PATH_MAX];
    struct stat            sb;
    fa_int_t               rc;

    (void) argc;
    memset(&in, 0, sizeof(in));
    in.ctl = ctl;
    fa_snprintf(path, sizeof(path), "%s/cur", dir);
    if (stat(path, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
        return fa_ctl_error("\"%s\" is not a Maildir (no cur/ in it)", dir);
    }
    if ((in.st = fa_ctl_store(ctl, argv[0], &in.user)) == NULL) {
        return FA_CTL_REFUSED;
    }
    rc = fa_md_target(&in, ctl->mailbox ? NULL : &inbox, &target);
    rc = rc ? rc : fa_md_import_folder(&in, dir, &target);
    fa_array_t *folders = fa_array_create(ctl->pool, 16, sizeof(char *));
    if (rc == FA_OK && (folders == NULL || fa_md_list(ctl, folders, dir, NULL) != FA_OK)) {
        fa_ctl_error("cannot list \"%s\": %s", dir, strerror(errno));
        rc = FA_ERROR;
    }
    if (rc == FA_OK) {
        qsort(folders->elts, folders->nelts, sizeof(char *), fa_md_name_cmp);
    }
    for (fa_uint_t i = 0; rc == FA_OK && i < folders->nelts; i++) {
        const char *f = ((char **) folders->elts)[i];
        fa_snprintf(path, sizeof(path), "%s/%s/cur", dir, f);
        if (stat(path, &sb) == -1 || !S_ISDIR(sb.st_mode)) {
            continue;                    /* not a folder: .subscriptions-like files */
        }
        if (fa_mailbox_from_maildir(ctl->pool, f, &name) != FA_OK) {
            fprintf(stderr, "facteurctl: skipped \"%s/%s\": not a Maildir++ folder name\n",
                    dir, f);
            continue;
        }
        fa_snprintf(path, sizeof(path), "%s/%s", dir, f);
        rc = fa_md_target(&in, &name, &target);
        rc = rc ? rc : fa_md_import_folder(&in, path, &target);
    }
    if (rc == FA_OK) {
        rc = fa_ctl_batch_finish(ctl, &in.batch);
    } else {
        fa_ctl_batch_finish(ctl, &in.batch);
    }
    printf("imported %lu messages into %lu mailboxes of %s\n",
           (unsigned long) in.batch.committed,
           (unsigned long) in.mailboxes, (char *) in.user.data);
    return fa_ctl_exit_status(rc);
}

/* ---- export ---- */

typedef struct {
    fa_ctl_t             *ctl;
    fa_storage_t         *st;
    fa_mailbox_t         *box;
    fa_mailbox_status_t  *status;
    const char           *folder;        /* the folder's directory */
    char                  host[64];
    uint64_t              used;          /* keyword ids used by its messages */
} fa_md_out_t;

/* copy the message to f, CRLF as LF; the bytes written, or -1 */
static int64_t
fa_md_copy_message(fa_md_out_t *o, fa_message_meta_t *m, FILE *f)
{
    static u_char          buf[FA_MD_CHUNK];
    const fa_storage_backend_t *b = o->st->backend;
    fa_msg_stream_t       *ms;
    uint64_t               off = 0;
    int64_t                written = 0;
    ssize_t                n;
    int                    cr = 0;

    if (b->message_open(o->box, m->uid, &ms) != FA_OK) {
        return -1;
    }
    for ( ;; ) {
        fa_ctl_wait_t w = { 0 };
        n = b->message_read(ms, off, buf, sizeof(buf), fa_ctl_done_cb, &w);
        if (n == FA_AGAIN) {
            fa_ctl_wait(o->ctl, &w, FA_AGAIN);
            continue;
        }
        if (n <= 0) {
            break;
        }
        off += (uint64_t) n;
        for (ssize_t i = 0; i < n; i++) {
            if (cr && buf[i] != '\n') {
                fputc('\r', f);          /* a CR not followed by LF is kept */
                written++;
            }
            cr = buf[i] == '\r';
            if (!cr) {
                fputc(buf[i], f);
                written++;
            }
        }
    }
    b->message_close(ms);
    if (cr) {
        fputc('\r', f);
        written++;
    }
    return n < 0 || ferror(f) ? -1 : written;
}

/* ":2,DFRST" then the keywords' letters */
static void
fa_md_info(fa_md_out_t *o, fa_message_meta_t *m, char *info, size_t size)
{
    size_t  n = 0;

    n += fa_snprintf(info, size, ":2,");
    for (size_t i = 0; i < fa_nelems(fa_md_flags) && n + 1 < size; i++) {
        if (m->flags & fa_md_flags[i].flag) {
            info[n++] = fa_md_flags[i].letter;
        }
    }
    for (fa_uint_t k = 0; k < FA_MD_KEYWORDS && k < o->status->nkeywords && n + 1 < size; k++) {
        if (m->keywords & ((uint64_t) 1 << k)) {
            info[n++] = (char) ('a' + k);
            o->used |= (uint64_t) 1 << k;
        }
    }
    info[n] = '\0';
}

static fa_int_t
fa_md_export_message(fa_md_out_t *o, fa_message_meta_t *m)
{
    char            tmp[PATH_MAX], dst[PATH_MAX], base[128], info[64];
    struct timeval  tv[2];
    int64_t         size;
    FILE           *f;

    fa_snprintf(base, sizeof(base), "%lld.M%uP%d.%s", (long long) m->internal_date,
                (unsigned) m->uid, (int) getpid(), o->host);
    fa_snprintf(tmp, sizeof(tmp), "%s/tmp/%s", o->folder, base);
    if ((f = fopen(tmp, "w")) == NULL) {
        fa_ctl_error("cannot write \"%s\": %s", tmp, strerror(errno));
        return FA_ERROR;
    }
    size = fa_md_copy_message(o, m, f);
    if (fclose(f) != 0 || size < 0) {
        fa_ctl_error("cannot export UID %u to \"%s\"", (unsigned) m->uid, tmp);
        unlink(tmp);
        return FA_ERROR;
    }
    fa_md_info(o, m, info, sizeof(info));
    fa_snprintf(dst, sizeof(dst), "%s/cur/%s,S=%lld,W=%llu%s", o->folder, base,
                (long long) size, (unsigned long long) m->size, info);
    tv[0].tv_sec = tv[1].tv_sec = m->internal_date;
    tv[0].tv_usec = tv[1].tv_usec = 0;
    utimes(tmp, tv);
    if (rename(tmp, dst) == -1) {
        fa_ctl_error("cannot rename \"%s\": %s", tmp, strerror(errno));
        unlink(tmp);
        return FA_ERROR;
    }
    return FA_OK;
}

/* dovecot-keywords for the keywords the folder's files use */
static fa_int_t
fa_md_write_keywords(fa_md_out_t *o)
{
    char   path[PATH_MAX];
    FILE  *f;

    if (o->used == 0) {
        return FA_OK;
    }
    fa_snprintf(path, sizeof(path), "%s/dovecot-keywords", o->folder);
    if ((f = fopen(path, "w")) == NULL) {
        return FA_ERROR;
    }
    for (fa_uint_t k = 0; k < FA_MD_KEYWORDS; k++) {
        if (o->used & ((uint64_t) 1 << k)) {
            fprintf(f, "%u %.*s\n", (unsigned) k, (int) o->status->keywords[k].len,
                    o->status->keywords[k].data);
        }
    }
    return fclose(f) == 0 ? FA_OK : FA_ERROR;
}

static fa_int_t
fa_md_make_folder(const char *folder)
{
    static const char *const  subs[] = { "tmp", "new", "cur" };
    char                      path[PATH_MAX];

    if (mkdir(folder, 0750) == -1 && errno != EEXIST) {
        return FA_ERROR;
    }
    for (size_t i = 0; i < fa_nelems(subs); i++) {
        fa_snprintf(path, sizeof(path), "%s/%s", folder, subs[i]);
        if (mkdir(path, 0750) == -1 && errno != EEXIST) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_md_export_mailbox(fa_md_out_t *o, const fa_str_t *user, const fa_str_t *name,
    const char *dir)
{
    const fa_storage_backend_t  *b = o->st->backend;
    fa_ctl_wait_t                w = { 0 }, mw = { 0 };
    fa_uid_range_t               all = { 1, UINT32_MAX };
    fa_uid_set_t                 set = { &all, 1 };
    int                          inbox = name->len == 5
                                         && strncasecmp((char *) name->data, "INBOX", 5) == 0;
    char                        *folder = NULL;
    fa_int_t                     rc;

    if (!inbox && (folder = fa_mailbox_to_maildir(o->ctl->pool, name)) == NULL) {
        fprintf(stderr, "facteurctl: skipped mailbox \"%s\": its name is too long for a "
                "Maildir folder\n", (char *) name->data);
        return FA_OK;
    }
    o->folder = dir;
    if (!inbox) {
        char path[PATH_MAX];
        fa_snprintf(path, sizeof(path), "%s/%s", dir, folder);
        o->folder = fa_pstrcat(o->ctl->pool, path, "");
    }
    if (o->folder == NULL || fa_md_make_folder(o->folder) != FA_OK) {
        fa_ctl_error("cannot create \"%s\": %s", o->folder ? o->folder : dir,
                     strerror(errno));
        return FA_ERROR;
    }
    w.pool = o->ctl->pool;
    rc = fa_ctl_wait(o->ctl, &w, b->mailbox_open(o->st, user, name, o->ctl->pool,
                                                 fa_ctl_open_cb, &w));
    if (rc != FA_OK) {
        return rc;
    }
    o->box = w.box;
    o->status = w.status;
    o->used = 0;
    rc = fa_ctl_wait(o->ctl, &mw, b->fetch_meta(w.box, &set, o->ctl->pool,
                                                fa_ctl_meta_cb, &mw));
    for (fa_uint_t i = 0; rc == FA_OK && i < mw.n; i++) {
        rc = fa_md_export_message(o, &mw.msgs[i]);
    }
    if (rc == FA_OK && fa_md_write_keywords(o) != FA_OK) {
        fa_ctl_error("cannot write \"%s/dovecot-keywords\"", o->folder);
        rc = FA_ERROR;
    }
    b->mailbox_close(w.box);
    return rc;
}

static fa_int_t
fa_md_export_user(fa_ctl_t *ctl, fa_storage_t *st, const fa_str_t *user, const char *dir)
{
    fa_ctl_wait_t  w = { 0 };
    fa_md_out_t    o;
    fa_int_t       rc;
    fa_uint_t      done = 0;

    memset(&o, 0, sizeof(o));
    o.ctl = ctl;
    o.st = st;
    if (gethostname(o.host, sizeof(o.host) - 1) != 0 || o.host[0] == '\0') {
        strcpy(o.host, "localhost");
    }
    o.host[strcspn(o.host, "/:,")] = '\0';       /* separators in Maildir names */
    if (fa_md_make_folder(dir) != FA_OK) {
        fa_ctl_error("cannot create \"%s\": %s", dir, strerror(errno));
        return FA_ERROR;
    }
    rc = fa_ctl_wait(ctl, &w, st->backend->mailbox_list(st, user, ctl->pool,
                                                       fa_ctl_list_cb, &w));
    for (fa_uint_t i = 0; rc == FA_OK && i < w.n; i++) {
        if (!w.boxes[i].noselect) {
            rc = fa_md_export_mailbox(&o, user, &w.boxes[i].name, dir);
            done += rc == FA_OK;
        }
    }
    printf("exported %lu mailboxes of %s\n", (unsigned long) done, (char *) user->data);
    if (rc != FA_OK && rc != FA_ERROR) {
        fa_ctl_storage_status(rc, "user", (char *) user->data);
    }
    return rc;
}

static int
fa_ctl_export_maildir(fa_ctl_t *ctl, int argc, char **argv)
{
    (void) argc;
    if (mkdir(argv[1], 0750) == -1 && errno != EEXIST) {
        return fa_ctl_error("cannot create \"%s\": %s", argv[1], strerror(errno));
    }
    return fa_ctl_exit_status(fa_ctl_each_user(ctl, argv[0], argv[1], fa_md_export_user));
}

const fa_ctl_command_t  fa_ctl_maildir_commands[] = {
    { "import", "maildir", "USER DIR [--mailbox=NAME]", 2, 2, fa_ctl_import_maildir },
    { "export", "maildir", "USER|DOMAIN DIR", 2, 2, fa_ctl_export_maildir },
    { NULL, NULL, NULL, 0, 0, NULL }
};
