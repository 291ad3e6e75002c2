/*
 * Storage benchmark, through the contract only (any backend, chosen as in
 * fa_storage_test.h).  Without arguments it runs small and checks the
 * results (a unit test); "bench" runs the figures t/bench/storage.sh prints:
 *
 *   durable appends/s of 4 KB messages from 1 session, from 20 sessions of
 *   one process (group commit), and from 2 processes of 20 sessions each;
 *   reads/s of whole 4 KB messages; a 100,000-message mailbox: appends/s
 *   filling it, the time to open it and get its STATUS (in this process and
 *   in a fresh one), fetch_meta of all of it; memory and file sizes.
 *
 * FA_BENCH_MESSAGES sets the size of the big mailbox (default 100000).
 */

#include "fa_storage_test.h"
#include "fa_test.h"

#define BENCH_USER  "bench@example.org"
#define MSG_SIZE    4096

static u_char  msg[MSG_SIZE];

typedef struct {
    const char   *box;
    fa_uint_t     left;
    fa_uint_t     done;
    fa_uint_t     errors;
} bench_run_t;

typedef struct {
    bench_run_t  *run;
} bench_session_t;

static void bench_next(bench_session_t *s);

static void
bench_committed(void *data, fa_int_t rc, fa_append_result_t *res)
{
    bench_session_t  *s = data;

    (void) res;
    s->run->done++;
    s->run->errors += rc != FA_OK;
    bench_next(s);
}

/* a session: one append at a time, the next one started from the callback */
static void
bench_next(bench_session_t *s)
{
    fa_str_t              u = S(BENCH_USER), n = S(s->run->box);
    fa_append_request_t   req;
    fa_append_t          *a;
    fa_int_t              rc;

    if (s->run->left == 0) {
        return;
    }
    s->run->left--;
    memset(&req, 0, sizeof(req));
    req.size_hint = MSG_SIZE;
    rc = B->append_begin(t_st, &u, &n, &req, &a);
    if (rc == FA_OK) {
        rc = B->append_write(a, msg, sizeof(msg));
        rc = rc == FA_OK ? B->append_commit(a, bench_committed, s) : rc;
    }
    if (rc != FA_AGAIN) {
        bench_committed(s, rc, NULL);
    }
}

/* N appends by SESSIONS concurrent sessions; returns appends/s */
static double
bench_appends(const char *box, fa_uint_t n, fa_uint_t sessions, fa_uint_t *errors)
{
    bench_run_t       run = { box, n, 0, 0 };
    bench_session_t  *s = calloc(sessions, sizeof(bench_session_t));
    double            t0 = t_now(), secs;

    for (fa_uint_t i = 0; i < sessions; i++) {
        s[i].run = &run;
        bench_next(&s[i]);
    }
    while (run.done < n && t_now() - t0 < 1800) {
        t_loop_once();
    }
    secs = t_now() - t0;
    free(s);
    *errors = run.errors + (n - run.done);
    return run.done / secs;
}

static double
bench_reads(const char *box, uint32_t maxuid, fa_uint_t n, fa_uint_t *bad)
{
    static u_char     buf[MSG_SIZE * 2];
    fa_mailbox_t     *mbox;
    fa_msg_stream_t  *m;
    t_rng_t           g = { 12345 };
    double            t0;

    *bad = 0;
    if (t_open(BENCH_USER, box, &mbox, NULL) != FA_OK) {
        *bad = n;
        return 0;
    }
    t0 = t_now();
    for (fa_uint_t i = 0; i < n; i++) {
        uint32_t uid = 1 + (uint32_t) (t_rng(&g) % maxuid);
        if (B->message_open(mbox, uid, &m) != FA_OK) {
            (*bad)++;
            continue;
        }
        *bad += B->message_read(m, 0, buf, sizeof(buf), NULL, NULL) != MSG_SIZE;
        B->message_close(m);
    }
    B->mailbox_close(mbox);
    return n / (t_now() - t0);
}

static double
bench_status_ms(const char *box, fa_mailbox_status_t *st)
{
    double  t0 = t_now();

    if (t_status(BENCH_USER, box, st) != FA_OK) {
        return -1;
    }
    return (t_now() - t0) * 1000;
}

static double
bench_open_ms(const char *box, fa_mailbox_status_t *st)
{
    fa_mailbox_t  *mbox;
    double         t0 = t_now(), ms;

    if (t_open(BENCH_USER, box, &mbox, st) != FA_OK) {
        return -1;
    }
    ms = (t_now() - t0) * 1000;
    B->mailbox_close(mbox);
    return ms;
}

/* ---- child processes ---- */

static int
child_appends(const char *dir, fa_uint_t n, fa_uint_t sessions)
{
    fa_uint_t  errors;
    double     t0, rate;

    if (t_setup_dir(dir, 0) != 0) {
        return 2;
    }
    t0 = t_now();
    rate = bench_appends("INBOX", n, sessions, &errors);
    printf("%u %.6f %.1f\n", (unsigned) errors, t_now() - t0, rate);
    t_teardown(0);
    return errors ? 1 : 0;
}

/* a fresh process: open the store, then the mailbox, time both */
static int
child_open(const char *dir, const char *box)
{
    fa_mailbox_status_t  st;
    double               t0 = t_now(), setup, open;

    if (t_setup_dir(dir, 0) != 0) {
        return 2;
    }
    setup = (t_now() - t0) * 1000;
    open = bench_open_ms(box, &st);
    printf("%.3f %.3f %u\n", setup, open, (unsigned) st.messages);
    t_teardown(0);
    return open < 0;
}

static FILE *
spawn(const char *self, char *const args[], pid_t *pid)
{
    int  fds[2];

    if (pipe(fds) == -1) {
        return NULL;
    }
    *pid = fork();
    if (*pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execv(self, args);
        _exit(127);
    }
    close(fds[1]);
    return fdopen(fds[0], "r");
}

/* P processes of S sessions, N appends each, at the same time */
static double
bench_processes(const char *self, int p, fa_uint_t n, fa_uint_t sessions, fa_uint_t *errors)
{
    char     ns[32], ss[32];
    char    *args[] = { (char *) self, "child-appends", t_dir, ns, ss, NULL };
    FILE    *out[8];
    pid_t    pid[8];
    double   t0 = t_now(), secs;
    unsigned e;
    int      status;

    snprintf(ns, sizeof(ns), "%u", (unsigned) n);
    snprintf(ss, sizeof(ss), "%u", (unsigned) sessions);
    *errors = 0;
    for (int i = 0; i < p; i++) {
        out[i] = spawn(self, args, &pid[i]);
    }
    for (int i = 0; i < p; i++) {
        if (out[i] == NULL || fscanf(out[i], "%u", &e) != 1) {
            e = (unsigned) n;
        }
        *errors += e;
        if (out[i]) {
            fclose(out[i]);
        }
        waitpid(pid[i], &status, 0);
    }
    secs = t_now() - t0;
    return p * n / secs;
}

static long
file_kb(const char *name)
{
    char         path[PATH_MAX + 64];
    struct stat  sb;

    snprintf(path, sizeof(path), "%s/%s", t_dir, name);
    return stat(path, &sb) == 0 ? (long) (sb.st_blocks / 2) : -1;
}

static void
bench_writes(const char *self, fa_uint_t n1, fa_uint_t n20, fa_uint_t reads)
{
    fa_uint_t  errors, bad;
    double     r;

    t_create(BENCH_USER, "One", 0);
    t_create(BENCH_USER, "Twenty", 0);
    r = bench_appends("One", n1, 1, &errors);
    printf("# appends, 1 session:            %8.0f /s  (%u x 4 KB, durable)\n", r,
           (unsigned) n1);
    is_int(errors, 0, "appends from 1 session");
    r = bench_appends("Twenty", n20, 20, &errors);
    printf("# appends, 20 sessions:          %8.0f /s  (%u x 4 KB)\n", r, (unsigned) n20);
    is_int(errors, 0, "appends from 20 sessions");
    r = bench_processes(self, 2, n20 / 2, 20, &errors);
    printf("# appends, 2 processes x 20:     %8.0f /s  (%u x 4 KB)\n", r, (unsigned) n20);
    is_int(errors, 0, "appends from 2 processes");
    r = bench_reads("One", n1, reads, &bad);
    printf("# reads (open, read 4 KB, close): %7.0f /s\n", r);
    is_int(bad, 0, "every read complete");
}

/* a new process: store open and mailbox open times */
static void
bench_fresh_open(const char *self)
{
    char   *args[] = { (char *) self, "child-open", t_dir, "Big", NULL };
    char    line[128];
    double  setup, open;
    unsigned msgs;
    pid_t   pid;
    FILE   *out = spawn(self, args, &pid);

    if (out && fgets(line, sizeof(line), out)
        && sscanf(line, "%lf %lf %u", &setup, &open, &msgs) == 3)
    {
        printf("# in a new process: store open %.3f ms, mailbox open %.3f ms (%u "
               "messages)\n", setup, open, msgs);
    }
    if (out) {
        fclose(out);
        waitpid(pid, NULL, 0);
    }
}

static void
bench_big(const char *self, fa_uint_t big)
{
    fa_mailbox_status_t   st;
    fa_mailbox_t         *mbox;
    fa_uint_t             errors;
    t_res_t               res;
    double                r, t0;

    t_create(BENCH_USER, "Big", 0);
    r = bench_appends("Big", big, 100, &errors);
    printf("# filling a %u-message mailbox: %8.0f appends/s (100 sessions)\n",
           (unsigned) big, r);
    is_int(errors, 0, "the big mailbox filled");
    r = bench_status_ms("Big", &st);
    printf("# STATUS of it:                  %8.3f ms\n", r);
    is_int(st.messages, big, "STATUS counts every message");
    r = bench_open_ms("Big", &st);
    printf("# open (SELECT) of it:           %8.3f ms\n", r);
    bench_fresh_open(self);
    t_open(BENCH_USER, "Big", &mbox, NULL);
    t0 = t_now();
    t_fetch(mbox, 1, UINT32_MAX, &res);
    printf("# fetch_meta of all %u:         %8.1f ms\n", (unsigned) res.n,
           (t_now() - t0) * 1000);
    is_int(res.n, big, "fetch_meta of the big mailbox");
    B->mailbox_close(mbox);
}

static void
bench(const char *self, int full)
{
    const char  *env = getenv("FA_BENCH_MESSAGES");
    fa_uint_t    big = full ? 100000 : 2000;

    if (full && env && atoi(env) > 0) {
        big = (fa_uint_t) atoi(env);
    }
    bench_writes(self, full ? 2000 : 100, full ? 10000 : 400, full ? 50000 : 1000);
    bench_big(self, big);
    printf("# memory: RssAnon %ld kB, RssFile %ld kB; data.mdb %ld kB on disk\n",
           t_rss_kb("RssAnon:"), t_rss_kb("RssFile:"), file_kb("mail/data.mdb"));
}

int
main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "child-appends") == 0) {
        memset(msg, 'x', sizeof(msg));
        return child_appends(argv[2], (fa_uint_t) atoi(argv[3]), (fa_uint_t) atoi(argv[4]));
    }
    if (argc == 4 && strcmp(argv[1], "child-open") == 0) {
        return child_open(argv[2], argv[3]);
    }
    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] = (i % 78 == 77) ? '\n' : (u_char) ('a' + i % 26);
    }
    memcpy(msg, "Subject: bench\r\n\r\n", 18);
    if (t_setup() != 0) {
        ok(0, "the store opens");
        return done_testing();
    }
    printf("# backend \"%s\" in %s\n", t_st->backend->name, t_dir);
    bench(argv[0], argc > 1 && strcmp(argv[1], "bench") == 0);
    t_teardown(1);
    return done_testing();
}
