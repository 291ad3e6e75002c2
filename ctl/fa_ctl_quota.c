/*
 * facteurctl user quota ADDRESS [SIZE [MESSAGES]]
 *
 * Without values: the user's own quota (0: the default), the limits in
 * force (own, else the domain's quota_bytes / quota_messages, else the
 * main ones) and what the store counts.  With values: the user's own
 * quota is set in the directory (0 goes back to the default) and the store
 * is told at once.  "user add" applies the defaults the same way, when the
 * configuration has a store.
 */

#include "fa_ctl.h"
#include "fa_auth_directory.h"
#include "fa_auth_quota.h"

typedef struct {
    fa_ctl_wait_t  w;
    fa_quota_t     q;
} fa_ctl_quota_wait_t;

static void
fa_ctl_quota_cb(void *data, fa_int_t rc, fa_quota_t *q)
{
    fa_ctl_quota_wait_t  *qw = data;

    if (q) {
        qw->q = *q;
    }
    fa_ctl_done_cb(&qw->w, rc);
}

/* make the store's limits the user's: FA_OK or the store's error */
fa_int_t
fa_ctl_quota_apply(fa_ctl_t *ctl, fa_auth_dir_t *d, const fa_str_t *user)
{
    fa_storage_t    *st;
    fa_auth_user_t   u;
    fa_ctl_wait_t    w = { 0 };
    fa_int_t         rc;

    if (fa_storage_get(ctl->cycle, NULL) == NULL) {
        return FA_OK;                    /* no store configured: the directory only */
    }
    if (fa_ctl_open_store(ctl) == NULL) {
        return FA_ERROR;
    }
    st = fa_storage_for_user(ctl->cycle, user);
    rc = fa_auth_user_get(d, user, ctl->pool, &u);
    if (rc == FA_OK) {
        rc = fa_ctl_wait(ctl, &w, fa_auth_quota_sync(ctl->cycle, st, &u, fa_ctl_done_cb, &w));
    }
    return rc;
}

static int
fa_ctl_quota_show(fa_ctl_t *ctl, fa_auth_dir_t *d, const fa_str_t *user)
{
    fa_ctl_quota_wait_t  qw;
    fa_auth_user_t       u;
    fa_storage_t        *st;
    uint64_t             bytes, messages;
    fa_int_t             rc;

    memset(&qw, 0, sizeof(qw));
    rc = fa_auth_user_get(d, user, ctl->pool, &u);
    if (rc != FA_OK) {
        return fa_ctl_error("user \"%s\": %s", (char *) user->data, fa_auth_strerror(rc));
    }
    fa_auth_quota_wanted(ctl->cycle, &u, &bytes, &messages);
    printf("own: %llu bytes, %llu messages (0: the default)\n",
           (unsigned long long) u.quota_bytes, (unsigned long long) u.quota_messages);
    printf("limits: %llu bytes, %llu messages (0: none)\n", (unsigned long long) bytes,
           (unsigned long long) messages);
    if (fa_storage_get(ctl->cycle, NULL) == NULL || fa_ctl_open_store(ctl) == NULL) {
        return FA_CTL_OK;
    }
    st = fa_storage_for_user(ctl->cycle, user);
    rc = fa_ctl_wait(ctl, &qw.w, st->backend->quota_get(st, user, fa_ctl_quota_cb, &qw));
    if (rc == FA_OK) {
        printf("used: %llu bytes, %llu messages; the store enforces %llu bytes, %llu messages\n",
               (unsigned long long) qw.q.bytes_used, (unsigned long long) qw.q.messages_used,
               (unsigned long long) qw.q.bytes_limit, (unsigned long long) qw.q.messages_limit);
    }
    return fa_ctl_storage_status(rc, "user", (char *) user->data);
}

static int
fa_ctl_user_quota(fa_ctl_t *ctl, int argc, char **argv)
{
    fa_str_t        in = { strlen(argv[0]), (u_char *) argv[0] }, user;
    fa_str_t        size = { argc > 1 ? strlen(argv[1]) : 0, (u_char *) (argc > 1 ? argv[1] : "") };
    int64_t         bytes = argc > 1 ? fa_parse_size(&size) : 0;
    int64_t         messages = argc > 2 ? fa_atoi((u_char *) argv[2], strlen(argv[2])) : 0;
    fa_auth_dir_t  *d;
    fa_int_t        rc;
    int             status;

    if (fa_auth_address_normalize(ctl->pool, &in, &user) != FA_OK || user.data[0] == '@') {
        return fa_ctl_error("invalid address \"%s\"", argv[0]);
    }
    if (bytes < 0 || messages < 0) {
        return fa_ctl_error("invalid quota: SIZE is bytes or 10k, 5m, 2g; MESSAGES a number");
    }
    if ((d = fa_auth_dir_open(fa_auth_dir_path(ctl->cycle), 0, &fa_log_stderr)) == NULL) {
        return FA_CTL_FAILED;
    }
    if (argc == 1) {
        status = fa_ctl_quota_show(ctl, d, &user);
        fa_auth_dir_close(d);
        return status;
    }
    rc = fa_auth_user_set_quota(d, &user, (uint64_t) bytes, (uint64_t) messages);
    if (rc != FA_OK) {
        fa_auth_dir_close(d);
        return fa_ctl_error("user \"%s\": %s", (char *) user.data, fa_auth_strerror(rc));
    }
    rc = fa_ctl_quota_apply(ctl, d, &user);
    fa_auth_dir_close(d);
    return fa_ctl_storage_status(rc, "user", (char *) user.data);
}

const fa_ctl_command_t  fa_ctl_quota_commands[] = {
    { "user", "quota", "ADDRESS [SIZE [MESSAGES]]", 1, 3, fa_ctl_user_quota },
    { NULL, NULL, NULL, 0, 0, NULL }
};
