/*
 * Crash safety: a writer appends from 8 sessions and prints each UID as
 * its commit completes; it is killed with SIGKILL at a random moment; then
 * the store must open, and every printed UID must read back exactly.
 *
 * Without arguments: rounds of that, as a unit test.  t/storage_crash.t
 * drives the two halves itself (more rounds, and the server's view):
 *   test_storage_crash crash-writer DIR ROUND   > uids
 *   test_storage_crash crash-check DIR FILE
 * The backend is chosen as in fa_storage_test.h.
 */

#include "fa_storage_test.h"
#include "fa_test.h"
#include <signal.h>

#define ALICE  "alice@example.org"

typedef struct {
    uint64_t        seed;
    uint64_t        size;
    t_res_t         r;
    fa_append_t    *a;
} crash_msg_t;

static void
crash_committed(void *data, fa_int_t rc, fa_append_result_t *res)
{
    crash_msg_t  *m = data;

    if (rc == FA_OK) {
        /* committed means durable: from here on, this UID must survive */
        printf("%u %" PRIu64 " %" PRIu64 "\n", (unsigned) res->uid, m->seed, m->size);
        fflush(stdout);
    }
    m->r.done = 1;
}

static void
crash_start(crash_msg_t *m, uint64_t seed)
{
    fa_str_t             u = S(ALICE), n = S("INBOX");
    fa_append_request_t  req;
    t_rng_t              data = { seed * 2654435761u + 1 };

    memset(&req, 0, sizeof(req));
    m->seed = seed;
    m->size = seed % 7 == 0 ? 100000 + seed % 50000 : 200 + seed % 6000;
    m->r.done = 0;
    if (B->append_begin(t_st, &u, &n, &req, &m->a) != FA_OK) {
        m->r.done = 1;
        return;
    }
    for (uint64_t off = 0; off < m->size; off += 4096) {
        size_t len = (size_t) fa_min(4096, m->size - off);
        t_fill(&data, t_chunk, len);
        B->append_write(m->a, t_chunk, len);
    }
    if (B->append_commit(m->a, crash_committed, m) != FA_AGAIN) {
        m->r.done = 1;
    }
}

/* append forever from 8 sessions, printing each committed UID, until killed */
static int
crash_writer(const char *dir, uint64_t round)
{
    crash_msg_t  m[8];
    uint64_t     next = round * 1000000;

    if (t_setup_dir(dir, 0) != 0) {
        return 2;
    }
    for (int i = 0; i < 8; i++) {
        crash_start(&m[i], next++);
    }
    for ( ;; ) {
        t_loop_once();
        for (int i = 0; i < 8; i++) {
            if (m[i].r.done) {
                crash_start(&m[i], next++);
            }
        }
    }
}

/* every UID in FILE is there with its exact bytes */
static int
crash_check(const char *dir, const char *file)
{
    fa_mailbox_t  *box;
    unsigned       uid, n = 0, bad = 0;
    uint64_t       seed, size;
    FILE          *f = fopen(file, "r");

    if (f == NULL || t_setup_dir(dir, 0) != 0 || t_open(ALICE, "INBOX", &box, NULL) != FA_OK) {
        printf("the store does not open\n");
        return 2;
    }
    while (fscanf(f, "%u %" SCNu64 " %" SCNu64, &uid, &seed, &size) == 3) {
        n++;
        if (!t_read_matches(box, uid, seed, size)) {
            printf("UID %u (%" PRIu64 " bytes) is lost or damaged\n", uid, size);
            bad++;
        }
    }
    fclose(f);
    B->mailbox_close(box);
    printf("%u committed messages checked, %u bad\n", n, bad);
    t_teardown(0);
    return bad ? 1 : 0;
}


/* one round: start the writer, kill it after MS milliseconds, check */
static void
crash_round(const char *self, const char *dir, int round, int ms)
{
    char   file[PATH_MAX + 32], r[16];
    char  *wargs[] = { (char *) self, "crash-writer", (char *) dir, r, NULL };
    char  *cargs[] = { (char *) self, "crash-check", (char *) dir, file, NULL };
    pid_t  pid;
    int    fd, status, lines = 0;
    FILE  *f;

    snprintf(r, sizeof(r), "%d", round);
    snprintf(file, sizeof(file), "%s/uids", dir);
    pid = fork();
    if (pid == 0) {
        fd = open(file, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 1);
        execv(self, wargs);
        _exit(127);
    }
    usleep((useconds_t) ms * 1000);
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    f = fopen(file, "r");
    for (int ch; f && (ch = fgetc(f)) != EOF; ) {
        lines += ch == '\n';
    }
    if (f) {
        fclose(f);
    }
    pid = fork();
    if (pid == 0) {
        execv(self, cargs);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
       "round %d: killed after %d ms, the store opens and the %d committed messages "
       "so far are intact", round, ms, lines);
}

int
main(int argc, char **argv)
{
    char  tmpl[] = "/tmp/fa-crash-XXXXXX";

    if (argc == 4 && strcmp(argv[1], "crash-writer") == 0) {
        return crash_writer(argv[2], strtoull(argv[3], NULL, 10));
    }
    if (argc == 4 && strcmp(argv[1], "crash-check") == 0) {
        return crash_check(argv[2], argv[3]);
    }
    if (mkdtemp(tmpl) == NULL || t_write_conf(tmpl) != 0) {
        ok(0, "a directory for the store");
        return done_testing();
    }
    snprintf(t_dir, sizeof(t_dir), "%s", tmpl);
    for (int round = 1; round <= 3; round++) {
        crash_round(argv[0], tmpl, round, 150 + round * 100);
    }
    if (t_setup_dir(tmpl, 0) == 0) {
        t_teardown(1);
    }
    return done_testing();
}
