/*
 * facteurctl check [--repair] [STORE]: verify the stores through the
 * storage contract's check operation (every configured store, or STORE),
 * and with --repair make them consistent again.  Safe while the server
 * runs: the backend decides how (the LMDB store reads one snapshot, and
 * repairs in one write transaction that waits its turn like any writer).
 *
 * Each finding is one line on standard output ("mailbox 12 (alice@example.org
 * INBOX): counter messages is 5, the messages say 4: repaired"), then one
 * summary line per store.  Exit status: 0 clean or fully repaired; 1
 * problems remain, or were found without --repair, or a store cannot be
 * checked; 2 a check could not run.
 *
 * "--repair" is the command's second word, right after "check" (the
 * option parser of facteurctl.c knows only the other commands' options).
 */

#include "fa_ctl.h"
#include "fa_storage.h"

typedef struct {
    int         done;
    fa_int_t    rc;
    fa_uint_t   found[4];           /* by FA_CHECK_* level */
} fa_ctl_check_t;

static void
fa_ctl_check_report(void *data, fa_uint_t level, const char *text)
{
    fa_ctl_check_t  *c = data;

    switch (level) {
    case FA_CHECK_PROBLEM:
        printf("%s\n", text);
        break;
    case FA_CHECK_REPAIRED:
        printf("%s: repaired\n", text);
        break;
    case FA_CHECK_UNREPAIRED:
        printf("%s: not repaired\n", text);
        break;
    default:
        printf("%s\n", text);
        level = FA_CHECK_INFO;
    }
    c->found[level]++;
}

static void
fa_ctl_check_done(void *data, fa_int_t rc)
{
    fa_ctl_check_t  *c = data;

    c->rc = rc;
    c->done = 1;
}

/* one store: its findings, a summary line; the exit status for it */
static int
fa_ctl_check_store(fa_ctl_t *ctl, fa_storage_t *st, fa_uint_t flags)
{
    fa_ctl_check_t  c;
    const char     *name = (const char *) st->name.data;
    fa_uint_t       problems;

    if (st->backend->check == NULL) {
        printf("store %s: the %s backend cannot be checked\n", name, st->backend->name);
        return FA_CTL_REFUSED;
    }
    memset(&c, 0, sizeof(c));
    c.rc = st->backend->check(st, flags, fa_ctl_check_report, fa_ctl_check_done, &c);
    /* no deadline: a check takes as long as the store is large, and always ends */
    while (c.rc == FA_AGAIN && !c.done) {
        fa_event_process(ctl->cycle);
    }
    fflush(stdout);
    if (c.rc != FA_OK) {
        fa_ctl_error("store %s: the check failed: %s", name, fa_storage_strerror(c.rc));
        return FA_CTL_FAILED;
    }
    problems = c.found[FA_CHECK_PROBLEM] + c.found[FA_CHECK_REPAIRED]
               + c.found[FA_CHECK_UNREPAIRED];
    if (problems == 0) {
        printf("store %s: clean\n", name);
    } else if (!(flags & FA_CHECK_REPAIR)) {
        printf("store %s: %lu problem%s (facteurctl check --repair repairs what it can)\n",
               name, (unsigned long) problems, problems == 1 ? "" : "s");
    } else {
        printf("store %s: %lu problem%s, %lu repaired, %lu not repaired\n", name,
               (unsigned long) problems, problems == 1 ? "" : "s",
               (unsigned long) c.found[FA_CHECK_REPAIRED],
               (unsigned long) c.found[FA_CHECK_UNREPAIRED]);
    }
    return c.found[FA_CHECK_PROBLEM] + c.found[FA_CHECK_UNREPAIRED] ? FA_CTL_REFUSED
                                                                    : FA_CTL_OK;
}

static int
fa_ctl_check_run(fa_ctl_t *ctl, int argc, char **argv, fa_uint_t flags)
{
    fa_storage_t  *st;
    int            rc = FA_CTL_OK, one;

    if (argc && fa_storage_get(ctl->cycle, argv[0]) == NULL) {
        return fa_ctl_error("the configuration has no store \"%s\"", argv[0]);
    }
    if (fa_ctl_open_store(ctl) == NULL) {
        return FA_CTL_FAILED;
    }
    if (argc) {
        return fa_ctl_check_store(ctl, fa_storage_get(ctl->cycle, argv[0]), flags);
    }
    for (fa_uint_t i = 0; (st = fa_storage_nth(ctl->cycle, i)) != NULL; i++) {
        one = fa_ctl_check_store(ctl, st, flags);
        rc = fa_max(rc, one);
    }
    return rc;
}

static int
fa_ctl_check(fa_ctl_t *ctl, int argc, char **argv)
{
    return fa_ctl_check_run(ctl, argc, argv, 0);
}

static int
fa_ctl_check_repair(fa_ctl_t *ctl, int argc, char **argv)
{
    return fa_ctl_check_run(ctl, argc, argv, FA_CHECK_REPAIR);
}

/* "check --repair" first: a command with an empty verb takes any second word */
const fa_ctl_command_t  fa_ctl_check_commands[] = {
    { "check", "--repair", "[STORE]", 0, 1, fa_ctl_check_repair },
    { "check", "", "[--repair] [STORE]", 0, 1, fa_ctl_check },
    { NULL, NULL, NULL, 0, 0, NULL }
};
