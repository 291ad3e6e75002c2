/*
 * facteurctl import mbox USER FILE|- [--mailbox=NAME]
 * facteurctl export mbox USER|DOMAIN DIR
 *
 * The mbox dialect is mboxrd: a message starts at a "From " line at the
 * start of the file or after a blank line; a body line matching ">*From "
 * is stored with one more '>' in the file, so every message comes back
 * byte for byte.  Files use LF line ends, the store keeps CRLF (what IMAP
 * serves), and the conversion is done on both ways.  Messages stream
 * through bounded buffers: a 50 MB message costs no 50 MB here.
 *
 * Export writes one file per mailbox: DIR/NAME.mbox ("Work/Reports" goes to
 * DIR/Work/Reports.mbox), each message under a "From MAILER-DAEMON DATE"
 * line carrying its internal date.  A whole domain goes to DIR/LOCAL/, one
 * directory per user.
 */

#include "fa_ctl.h"
#include <sys/stat.h>

#define FA_MBOX_CHUNK  65536

/* ---- import ---- */

typedef struct {
    fa_ctl_t       *ctl;
    fa_storage_t   *st;
    fa_str_t        user;
    fa_str_t        mailbox;
    fa_append_t    *a;               /* the message being written, or NULL */
    fa_ctl_batch_t  batch;           /* commits in flight */
    unsigned        pending_blank:1; /* a blank line not written yet */
} fa_mbox_in_t;

/* "From sender Thu Nov 22 06:17:00 2026": the date, as UTC; 0 if unreadable */
static time_t
fa_mbox_from_date(const char *line)
{
    const char  *p = strchr(line + 5, ' ');
    struct tm    tm;

    memset(&tm, 0, sizeof(tm));
    if (p == NULL || strptime(p + 1, "%a %b %d %H:%M:%S %Y", &tm) == NULL) {
        return 0;
    }
    return timegm(&tm);
}

static fa_int_t
fa_mbox_commit(fa_mbox_in_t *in)
{
    fa_append_t  *a = in->a;

    if (a == NULL) {
        return FA_OK;
    }
    in->a = NULL;
    return fa_ctl_batch_commit(in->ctl, &in->batch, in->st, a);
}

static fa_int_t
fa_mbox_begin(fa_mbox_in_t *in, const char *from_line)
{
    fa_append_request_t  req;
    fa_int_t             rc = fa_mbox_commit(in);

    if (rc != FA_OK) {
        return rc;
    }
    memset(&req, 0, sizeof(req));
    req.internal_date = fa_mbox_from_date(from_line);
    in->pending_blank = 0;
    return in->st->backend->append_begin(in->st, &in->user, &in->mailbox, &req, &in->a);
}

/* one piece of a line (a whole line unless it is longer than the buffer) */
static fa_int_t
fa_mbox_write(fa_mbox_in_t *in, const char *p, size_t n, int line_start)
{
    const fa_storage_backend_t  *b = in->st->backend;
    fa_int_t                     rc = FA_OK;

    if (in->pending_blank) {             /* the blank line was the message's own */
        in->pending_blank = 0;
        rc = b->append_write(in->a, (const u_char *) "\r\n", 2);
    }
    if (line_start && n > 5 && p[0] == '>') {
        size_t q = strspn(p, ">");
        if (strncmp(p + q, "From ", 5) == 0) {
            p++;                         /* mboxrd: one '>' less in the store */
            n--;
        }
    }
    if (rc == FA_OK && n && p[n - 1] == '\n') {
        size_t body = n - 1 - (n > 1 && p[n - 2] == '\r');
        rc = b->append_write(in->a, (const u_char *) p, body);
        rc = rc ? rc : b->append_write(in->a, (const u_char *) "\r\n", 2);
    } else if (rc == FA_OK && n) {
        rc = b->append_write(in->a, (const u_char *) p, n);
    }
    return rc;
}

static fa_int_t
fa_mbox_import_stream(fa_mbox_in_t *in, FILE *f, const char *name)
{
    char      *buf = malloc(FA_MBOX_CHUNK);
    int        line_start = 1, after_blank = 1;
    fa_uint_t  line = 0;
    fa_int_t   rc = FA_OK;

    if (buf == NULL) {
        return FA_ERROR;
    }
    while (rc == FA_OK && fgets(buf, FA_MBOX_CHUNK, f)) {
        size_t n = strlen(buf);
        line += line_start;
        if (line_start && after_blank && strncmp(buf, "From ", 5) == 0) {
            rc = fa_mbox_begin(in, buf);
        } else if (in->a == NULL) {
            fa_ctl_error("%s:%lu: not an mbox file: no \"From \" line before the first "
                         "message", name, (unsigned long) line);
            rc = FA_STORAGE_INVALID;
        } else if (line_start && (strcmp(buf, "\n") == 0 || strcmp(buf, "\r\n") == 0)) {
            if (in->pending_blank) {
                rc = fa_mbox_write(in, buf, 0, 1);   /* the earlier one was the message's */
            }
            in->pending_blank = 1;
        } else {
            rc = fa_mbox_write(in, buf, n, line_start);
        }
        after_blank = line_start && (strcmp(buf, "\n") == 0 || strcmp(buf, "\r\n") == 0);
        line_start = n && buf[n - 1] == '\n';
    }
    free(buf);
    if (rc == FA_OK && ferror(f)) {
        fa_ctl_error("reading \"%s\": %s", name, strerror(errno));
        rc = FA_ERROR;
    }
    if (rc == FA_OK) {
        rc = fa_mbox_commit(in);         /* the last message's blank line is dropped */
    }
    if (in->a) {
        in->st->backend->append_abort(in->a);
        in->a = NULL;
    }
    fa_int_t done = fa_ctl_batch_finish(in->ctl, &in->batch);
    return rc == FA_OK ? done : rc;
}

static int
fa_ctl_import_mbox(fa_ctl_t *ctl, int argc, char **argv)
{
    fa_mbox_in_t  in;
    FILE         *f;
    fa_int_t      rc;

    (void) argc;
    memset(&in, 0, sizeof(in));
    in.ctl = ctl;
    in.st = fa_ctl_store(ctl, argv[0], &in.user);
    if (in.st == NULL) {
        return FA_CTL_REFUSED;
    }
    in.mailbox.data = (u_char *) (ctl->mailbox ? ctl->mailbox : "INBOX");
    in.mailbox.len = strlen((char *) in.mailbox.data);
    f = strcmp(argv[1], "-") == 0 ? stdin : fopen(argv[1], "r");
    if (f == NULL) {
        return fa_ctl_error("cannot open \"%s\": %s", argv[1], strerror(errno));
    }
    rc = fa_mbox_import_stream(&in, f, argv[1]);
    if (f != stdin) {
        fclose(f);
    }
    printf("imported %lu messages into %s of %s\n", (unsigned long) in.batch.committed,
           (char *) in.mailbox.data, (char *) in.user.data);
    return rc == FA_OK ? FA_CTL_OK
                       : fa_ctl_storage_status(rc, "mailbox", (char *) in.mailbox.data);
}

/* ---- export ---- */

typedef struct {
    FILE       *out;
    char        carry[FA_MBOX_CHUNK];   /* the current line, up to its LF */
    size_t      len;
    unsigned    line_start:1;
} fa_mbox_out_t;

/* write the carried line (or a piece of a long one), quoting and dropping CR */
static void
fa_mbox_flush_line(fa_mbox_out_t *o)
{
    size_t  n = o->len;

    if (n == 0) {
        return;
    }
    if (o->line_start) {
        size_t q = 0;
        while (q < n && o->carry[q] == '>') {
            q++;
        }
        if (n - q >= 5 && memcmp(o->carry + q, "From ", 5) == 0) {
            fputc('>', o->out);
        }
    }
    if (o->carry[n - 1] == '\n') {
        n -= 1 + (n > 1 && o->carry[n - 2] == '\r');
        fwrite(o->carry, 1, n, o->out);
        fputc('\n', o->out);
        o->line_start = 1;
    } else {
        fwrite(o->carry, 1, n, o->out);
        o->line_start = 0;
    }
    o->len = 0;
}

static void
fa_mbox_put(fa_mbox_out_t *o, const u_char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* keep a CR as the last byte: it may be half of a CRLF */
        if (o->len == sizeof(o->carry) - 1 && p[i] != '\n') {
            int cr = o->carry[o->len - 1] == '\r';
            o->len -= cr;
            fa_mbox_flush_line(o);
            if (cr) {
                o->carry[o->len++] = '\r';
            }
        }
        o->carry[o->len++] = (char) p[i];
        if (p[i] == '\n') {
            fa_mbox_flush_line(o);
        }
    }
}

static fa_int_t
fa_mbox_export_message(fa_ctl_t *ctl, fa_storage_t *st, fa_mailbox_t *box,
    fa_message_meta_t *m, fa_mbox_out_t *o)
{
    static u_char     buf[FA_MBOX_CHUNK];
    fa_msg_stream_t  *ms;
    uint64_t          off = 0;
    ssize_t           n;
    char              date[32];
    struct tm         tm;

    if (st->backend->message_open(box, m->uid, &ms) != FA_OK) {
        return FA_ERROR;
    }
    gmtime_r(&m->internal_date, &tm);
    strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm);
    fprintf(o->out, "From MAILER-DAEMON %s\n", date);
    o->len = 0;
    o->line_start = 1;
    for ( ;; ) {
        fa_ctl_wait_t w = { 0 };
        n = st->backend->message_read(ms, off, buf, sizeof(buf), fa_ctl_done_cb, &w);
        if (n == FA_AGAIN) {
            fa_ctl_wait(ctl, &w, FA_AGAIN);
            continue;
        }
        if (n <= 0) {
            break;
        }
        fa_mbox_put(o, buf, (size_t) n);
        off += (uint64_t) n;
    }
    st->backend->message_close(ms);
    if (o->len) {                        /* a message without a final line end */
        fa_mbox_put(o, (const u_char *) "\n", 1);
    }
    fputc('\n', o->out);                 /* the blank line before the next From */
    return n < 0 ? FA_ERROR : FA_OK;
}

/* DIR/NAME.mbox, with the directories of NAME's levels */
static FILE *
fa_mbox_open_file(const char *dir, const fa_str_t *name)
{
    char  path[PATH_MAX];

    fa_snprintf(path, sizeof(path), "%s/%.*s.mbox", dir, (int) name->len, name->data);
    for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        mkdir(path, 0750);
        *p = '/';
    }
    return fopen(path, "w");
}

static fa_int_t
fa_mbox_export_mailbox(fa_ctl_t *ctl, fa_storage_t *st, const fa_str_t *user,
    const fa_str_t *name, const char *dir)
{
    static fa_mbox_out_t  o;
    fa_ctl_wait_t         w = { 0 }, mw = { 0 };
    fa_uid_range_t        all = { 1, UINT32_MAX };
    fa_uid_set_t          set = { &all, 1 };
    fa_int_t              rc;

    rc = fa_ctl_wait(ctl, &w, st->backend->mailbox_open(st, user, name, ctl->pool,
                                                        fa_ctl_open_cb, &w));
    if (rc != FA_OK) {
        return rc;
    }
    rc = fa_ctl_wait(ctl, &mw, st->backend->fetch_meta(w.box, &set, ctl->pool,
                                                       fa_ctl_meta_cb, &mw));
    o.out = rc == FA_OK ? fa_mbox_open_file(dir, name) : NULL;
    if (rc == FA_OK && o.out == NULL) {
        fa_ctl_error("cannot write in \"%s\": %s", dir, strerror(errno));
        rc = FA_ERROR;
    }
    for (fa_uint_t i = 0; rc == FA_OK && i < mw.n; i++) {
        rc = fa_mbox_export_message(ctl, st, w.box, &mw.msgs[i], &o);
    }
    if (o.out && fclose(o.out) != 0 && rc == FA_OK) {
        rc = FA_ERROR;
    }
    st->backend->mailbox_close(w.box);
    return rc;
}

static fa_int_t
fa_mbox_export_user(fa_ctl_t *ctl, fa_storage_t *st, const fa_str_t *user, const char *dir)
{
    fa_ctl_wait_t   w = { 0 };
    fa_int_t        rc;
    fa_uint_t       done = 0;

    if (mkdir(dir, 0750) == -1 && errno != EEXIST) {
        fa_ctl_error("cannot create \"%s\": %s", dir, strerror(errno));
        return FA_ERROR;
    }
    rc = fa_ctl_wait(ctl, &w, st->backend->mailbox_list(st, user, ctl->pool,
                                                       fa_ctl_list_cb, &w));
    for (fa_uint_t i = 0; rc == FA_OK && i < w.n; i++) {
        if (!w.boxes[i].noselect) {
            rc = fa_mbox_export_mailbox(ctl, st, user, &w.boxes[i].name, dir);
            done += rc == FA_OK;
        }
    }
    printf("exported %lu mailboxes of %s\n", (unsigned long) done, (char *) user->data);
    if (rc != FA_OK) {
        fa_ctl_storage_status(rc, "user", (char *) user->data);
    }
    return rc;
}

static int
fa_ctl_export_mbox(fa_ctl_t *ctl, int argc, char **argv)
{
    fa_int_t  rc;

    (void) argc;
    if (mkdir(argv[1], 0750) == -1 && errno != EEXIST) {
        return fa_ctl_error("cannot create \"%s\": %s", argv[1], strerror(errno));
    }
    rc = fa_ctl_each_user(ctl, argv[0], argv[1], fa_mbox_export_user);
    return fa_ctl_exit_status(rc);
}

const fa_ctl_command_t  fa_ctl_mbox_commands[] = {
    { "import", "mbox", "USER FILE|- [--mailbox=NAME]", 2, 2, fa_ctl_import_mbox },
    { "export", "mbox", "USER|DOMAIN DIR", 2, 2, fa_ctl_export_mbox },
    { NULL, NULL, NULL, 0, 0, NULL }
};
