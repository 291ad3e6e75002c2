/*
 * What only the LMDB backend promises, seen from outside (the contract and
 * the files under path): the map grows on demand, also when another process
 * grew it; max_map_size bounds it and a full map refuses cleanly; blob
 * files live exactly as long as a message references them; orphans of dead
 * processes are removed at open; close commits what is queued.
 */

#include "fa_storage_test.h"
#include "fa_test.h"
#include <dirent.h>

#define USER  "carol@example.org"

static int
count_files(const char *sub)
{
    char            path[PATH_MAX + 64];
    DIR            *d;
    struct dirent  *e;
    int             n = 0;

    snprintf(path, sizeof(path), "%s/mail/%s", t_dir, sub);
    d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        n += e->d_type == DT_REG;
    }
    closedir(d);
    return n;
}

static int
write_conf(const char *dir, const char *extra)
{
    char   path[PATH_MAX + 32];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/facteur.conf", dir);
    f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f, "storage lmdb { path %s/mail; map_size 1m; %s }\n", dir, extra);
    return fclose(f);
}

/* another process: N inline messages of SIZE bytes into INBOX */
static int
child_fill(const char *dir, int n, int size)
{
    int  bad = 0;

    if (t_setup_dir(dir, 0) != 0) {
        return 2;
    }
    for (int i = 0; i < n; i++) {
        bad += t_append(USER, "INBOX", 5000 + i, (uint64_t) size, NULL) != FA_OK;
    }
    t_teardown(0);
    return bad ? 1 : 0;
}

static int
run_child(const char *self, const char *what, const char *n, const char *size)
{
    pid_t  pid = fork();
    int    status;

    if (pid == 0) {
        execl(self, self, what, t_dir, n, size, (char *) NULL);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
test_growth_elsewhere(const char *self)
{
    fa_mailbox_status_t  st;
    fa_append_result_t   res;

    is_int(t_status(USER, "INBOX", &st), FA_OK, "a read before the other process writes");
    is_int(run_child(self, "child-fill", "300", "30000"), 0,
           "another process grows the map from 1 MB to over 9 MB");
    is_int(t_status(USER, "INBOX", &st), FA_OK, "then a read here adopts the new size");
    is_int(st.messages, 300, "and sees everything");
    is_int(t_append(USER, "INBOX", 1, 30000, &res), FA_OK, "a write here too");
    is_int(run_child(self, "child-fill", "300", "30000"), 0, "it grows again, elsewhere");
    is_int(t_append(USER, "INBOX", 2, 30000, &res), FA_OK,
           "a write first, with a map grown meanwhile");
    t_status(USER, "INBOX", &st);
    is_int(st.messages, 602, "every message counted");
}

static void
test_blobs(void)
{
    fa_append_result_t   a;
    fa_mailbox_t        *box;
    fa_store_request_t   del = { FA_STORE_ADD, FA_FLAG_DELETED, NULL, 0, 0 };
    fa_uid_range_t       range;
    fa_uid_set_t         set = { &range, 1 };
    fa_str_t             dest = S("Keep");
    int                  before = count_files("blobs");
    t_res_t              r;

    t_create(USER, "Big", 0);
    t_create(USER, "Keep", 0);
    is_int(t_append(USER, "Big", 77, 200000, &a), FA_OK, "a body over inline_max");
    is_int(count_files("blobs"), before + 1, "is a file in blobs/");
    is_int(count_files("blobs/tmp"), 0, "nothing left in blobs/tmp");
    t_open(USER, "Big", &box, NULL);
    range.first = range.last = a.uid;
    T_CALL(&r, B->copy(box, &set, &dest, 0, t_pool, t_copy_cb, &r));
    is_int(r.rc, FA_OK, "copied");
    is_int(count_files("blobs"), before + 1, "the copy shares the file");
    T_CALL(&r, B->store(box, &set, &del, t_pool, t_meta_cb, &r));
    T_CALL(&r, B->expunge(box, NULL, t_pool, t_changes_cb, &r));
    is_int(count_files("blobs"), before + 1, "the file stays while the copy needs it");
    B->mailbox_close(box);
    is_int(t_delete(USER, "Keep"), FA_OK, "the copy's mailbox deleted");
    is_int(count_files("blobs"), before, "the file goes with the last reference");
}

/* append MSG in small pieces; returns the new UID (0 on failure) */
static uint32_t
append_text(const char *mailbox, const char *msg, size_t len)
{
    fa_str_t             u = S(USER), mb = S(mailbox);
    fa_append_request_t  req;
    fa_append_t         *a;
    t_res_t              r;

    memset(&req, 0, sizeof(req));
    if (B->append_begin(t_st, &u, &mb, &req, &a) != FA_OK) {
        return 0;
    }
    for (size_t off = 0; off < len; off += 7) {      /* the parser sees odd chunks */
        if (B->append_write(a, (const u_char *) msg + off, fa_min(7, len - off)) != FA_OK) {
            B->append_abort(a);
            return 0;
        }
    }
    return T_CALL(&r, B->append_commit(a, t_append_cb, &r)) == FA_OK ? r.app.uid : 0;
}

/*
 * The metadata record is computed once, at append, by the MIME parser fed
 * with the stream: FETCH ENVELOPE and BODYSTRUCTURE never re-read the body.
 */
static int
has(const fa_str_t *s, const char *text)
{
    return s->len && memmem(s->data, s->len, text, strlen(text)) != NULL;
}

static void
test_mime_metadata(void)
{
    static const char  msg[] =
        "From: Alice <alice@example.org>\r\n"
        "To: bob@example.org\r\n"
        "Subject: quarterly figures\r\n"
        "Message-ID: <m1@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "See attached.\r\n"
        "--b1\r\n"
        "Content-Type: application/pdf; name=\"q3.pdf\"\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "JVBERi0xLjQK\r\n"
        "--b1--\r\n";
    fa_mailbox_t  *box;
    t_res_t        r;
    uint32_t       uid;

    t_create(USER, "Mime", 0);
    uid = append_text("Mime", msg, sizeof(msg) - 1);
    ok(uid > 0, "a multipart message appended in 7-byte pieces");
    t_open(USER, "Mime", &box, NULL);
    t_fetch(box, uid, uid, &r);
    ok(r.rc == FA_OK && r.n == 1, "its metadata fetched");
    if (r.rc == FA_OK && r.n == 1) {
        fa_message_meta_t *m = &r.msgs[0];
        ok(has(&m->envelope, "\"quarterly figures\""), "ENVELOPE cached, with the subject");
        ok(has(&m->envelope, "((\"Alice\" NIL \"alice\" \"example.org\"))"),
           "and the sender's address");
        ok(m->bodystructure.len && m->bodystructure.data[0] == '('
           && has(&m->bodystructure, "\"mixed\"") && has(&m->bodystructure, "\"pdf\""),
           "BODYSTRUCTURE cached, multipart/mixed with the PDF part");
        ok(m->body.len > 0 && m->body.len < m->bodystructure.len, "BODY cached, shorter");
        ok(m->mime.len > 0, "the part table cached for BODY[section]");
    }
    B->mailbox_close(box);
}

/* in a new store: the map of the others has grown past 2 MB already */
static void
test_full_map(void)
{
    fa_mailbox_status_t  before, after;
    fa_int_t             rc = FA_OK;
    char                 dir[] = "/tmp/fa-lmdb-XXXXXX";
    int                  n = 0;

    t_teardown(1);
    if (mkdtemp(dir) == NULL || write_conf(dir, "max_map_size 2m;") != 0
        || t_setup_dir(dir, 0) != 0)
    {
        ok(0, "reopened with max_map_size");
        return;
    }
    t_create(USER, "Full", 0);
    while (rc == FA_OK && n < 200) {
        t_status(USER, "Full", &before);
        rc = t_append(USER, "Full", 900 + n, 60000, NULL);
        n++;
    }
    is_int(rc, FA_STORAGE_NOSPACE, "a full map that may not grow: NOSPACE");
    t_status(USER, "Full", &after);
    ok(after.messages == before.messages && after.uidnext == before.uidnext,
       "nothing of the refused append is visible");
    is_int(t_delete(USER, "Full"), FA_OK, "deleting frees room");
    is_int(t_append(USER, "INBOX", 999, 1000, NULL), FA_OK, "and appends work again");
}

static int  called;

static void
never(void *data, fa_int_t rc, fa_append_result_t *res)
{
    (void) data;
    (void) rc;
    (void) res;
    called++;
}

static void
test_close_drains(const char *dir)
{
    fa_append_request_t   req;
    fa_append_t          *a;
    fa_str_t              u = S(USER), n = S("INBOX");
    fa_mailbox_status_t   before, after;
    char                  orphan[PATH_MAX + 64];
    int                   fd;

    t_status(USER, "INBOX", &before);
    memset(&req, 0, sizeof(req));
    for (int i = 0; i < 10; i++) {
        if (B->append_begin(t_st, &u, &n, &req, &a) == FA_OK) {
            B->append_write(a, (u_char *) "Subject: late\r\n\r\n", 17);
            B->append_commit(a, never, NULL);
        }
    }
    /* a temporary file of a process that no longer exists */
    snprintf(orphan, sizeof(orphan), "%s/mail/blobs/tmp/999999999-0123", dir);
    fd = open(orphan, O_CREAT | O_WRONLY, 0600);
    if (fd != -1) {
        close(fd);
    }
    t_teardown(0);
    ok(called == 0, "close calls nobody back");
    if (t_setup_dir(dir, 0) != 0) {
        ok(0, "reopened");
        return;
    }
    t_status(USER, "INBOX", &after);
    is_int(after.messages, before.messages + 10, "but committed what was queued");
    ok(access(orphan, F_OK) == -1, "an orphan in blobs/tmp is removed at open");
}

int
main(int argc, char **argv)
{
    char  tmpl[] = "/tmp/fa-lmdb-XXXXXX";

    if (&fa_lmdb_module == NULL) {
        printf("1..0 # SKIP the LMDB backend is not built\n");
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "child-fill") == 0) {
        return child_fill(argv[2], atoi(argv[3]), atoi(argv[4]));
    }
    if (mkdtemp(tmpl) == NULL || write_conf(tmpl, "") != 0 || t_setup_dir(tmpl, 0) != 0) {
        ok(0, "the store opens");
        return done_testing();
    }
    test_growth_elsewhere(argv[0]);
    test_blobs();
    test_mime_metadata();
    test_close_drains(tmpl);
    test_full_map();
    t_teardown(1);
    return done_testing();
}
