/*
 * facteurctl mailbox list|create|delete USER [NAME], and stats: a user's
 * mailboxes in the default store, through the storage contract like any
 * protocol module (fa_ctl_storage.c waits for the completions).
 */

#include "fa_ctl.h"
#include "fa_auth_directory.h"
#include "fa_storage.h"

static const char *
fa_ctl_special_use(uint32_t use)
{
    static const struct { uint32_t bit; const char *name; } names[] = {
        { FA_USE_ALL, "\\All" }, { FA_USE_ARCHIVE, "\\Archive" },
        { FA_USE_DRAFTS, "\\Drafts" }, { FA_USE_FLAGGED, "\\Flagged" },
        { FA_USE_JUNK, "\\Junk" }, { FA_USE_SENT, "\\Sent" }, { FA_USE_TRASH, "\\Trash" },
    };

    for (size_t i = 0; i < fa_nelems(names); i++) {
        if (use & names[i].bit) {
            return names[i].name;
        }
    }
    return NULL;
}

static int
fa_ctl_mailbox_list(fa_ctl_t *ctl, int argc, char **argv)
{
    fa_ctl_wait_t   w = { 0 };
    fa_storage_t   *st;
    fa_str_t        user;
    fa_int_t        rc;

    (void) argc;
    if ((st = fa_ctl_store(ctl, argv[0], &user)) == NULL) {
        return FA_CTL_REFUSED;
    }
    rc = fa_ctl_wait(ctl, &w, st->backend->mailbox_list(st, &user, ctl->pool,
                                                       fa_ctl_list_cb, &w));
    if (rc != FA_OK) {
        return fa_ctl_storage_status(rc, "user", (char *) user.data);
    }
    for (fa_uint_t i = 0; i < w.n; i++) {
        const char *use = fa_ctl_special_use(w.boxes[i].special_use);
        printf("%.*s%s%s%s%s\n", (int) w.boxes[i].name.len, w.boxes[i].name.data,
               use ? " " : "", use ? use : "", w.boxes[i].noselect ? " \\Noselect" : "",
               w.boxes[i].subscribed ? " subscribed" : "");
    }
    return FA_CTL_OK;
}

static int
fa_ctl_mailbox_change(fa_ctl_t *ctl, char **argv, int create)
{
    fa_ctl_wait_t   w = { 0 };
    fa_storage_t   *st;
    fa_str_t        user, name = { strlen(argv[1]), (u_char *) argv[1] };
    fa_int_t        rc;

    if ((st = fa_ctl_store(ctl, argv[0], &user)) == NULL) {
        return FA_CTL_REFUSED;
    }
    if (fa_storage_mailbox_name_valid(&name) != FA_OK) {
        return fa_ctl_error("invalid mailbox name \"%s\"", argv[1]);
    }
    rc = create ? st->backend->mailbox_create(st, &user, &name, 0, fa_ctl_done_cb, &w)
                : st->backend->mailbox_delete(st, &user, &name, fa_ctl_done_cb, &w);
    return fa_ctl_storage_status(fa_ctl_wait(ctl, &w, rc), "mailbox", argv[1]);
}

static int
fa_ctl_mailbox_create(fa_ctl_t *ctl, int argc, char **argv)
{
    (void) argc;
    return fa_ctl_mailbox_change(ctl, argv, 1);
}

static int
fa_ctl_mailbox_delete(fa_ctl_t *ctl, int argc, char **argv)
{
    (void) argc;
    return fa_ctl_mailbox_change(ctl, argv, 0);
}

/* ---- stats: the directory's counts and each user's usage in the store ---- */

typedef struct {
    fa_ctl_t       *ctl;
    fa_storage_t   *st;
    fa_uint_t       n;
    uint64_t        bytes;
    uint64_t        messages;
    fa_int_t        rc;
} fa_ctl_stats_t;

static void
fa_ctl_quota_cb(void *data, fa_int_t rc, fa_quota_t *q)
{
    fa_ctl_wait_t  *w = data;

    if (rc == FA_OK && q) {
        w->quota = *q;
    }
    fa_ctl_done_cb(data, rc);
}

static int
fa_ctl_count(void *data, const fa_str_t *key, const fa_str_t *value)
{
    fa_ctl_stats_t  *s = data;
    fa_ctl_wait_t    w = { 0 };
    fa_storage_t    *st;
    fa_int_t         rc;

    (void) value;
    s->n++;
    if (s->st == NULL) {
        return 0;
    }
    st = fa_storage_for_user(s->ctl->cycle, key);
    rc = fa_ctl_wait(s->ctl, &w, st->backend->quota_get(st, key, fa_ctl_quota_cb, &w));
    if (rc == FA_OK) {
        s->bytes += w.quota.bytes_used;
        s->messages += w.quota.messages_used;
    } else {
        s->rc = rc;
    }
    return 0;
}

static int
fa_ctl_stats(fa_ctl_t *ctl, int argc, char **argv)
{
    fa_ctl_stats_t   domains = { ctl, NULL, 0, 0, 0, FA_OK }, users, aliases;
    fa_auth_dir_t   *d;

    (void) argc;
    (void) argv;
    users = aliases = domains;
    d = fa_auth_dir_open(fa_auth_dir_path(ctl->cycle), 0, &fa_log_stderr);
    if (d == NULL) {
        return fa_ctl_error("cannot open the directory (see above)"), FA_CTL_FAILED;
    }
    /* without a store, stats shows the directory alone */
    if (fa_storage_get(ctl->cycle, NULL) && (users.st = fa_ctl_open_store(ctl)) == NULL) {
        fa_auth_dir_close(d);
        return FA_CTL_FAILED;
    }
    fa_auth_domain_list(d, fa_ctl_count, &domains);
    fa_auth_user_list(d, NULL, fa_ctl_count, &users);
    fa_auth_alias_list(d, NULL, fa_ctl_count, &aliases);
    fa_auth_dir_close(d);
    printf("domains: %lu\nusers: %lu\naliases: %lu\n", (unsigned long) domains.n,
           (unsigned long) users.n, (unsigned long) aliases.n);
    if (users.st) {
        printf("messages: %" PRIu64 "\nbytes: %" PRIu64 "\n", users.messages, users.bytes);
    }
    return users.rc == FA_OK ? FA_CTL_OK : FA_CTL_FAILED;
}

const fa_ctl_command_t  fa_ctl_mailbox_commands[] = {
    { "stats", "", "", 0, 0, fa_ctl_stats },
    { "mailbox", "list", "USER", 1, 1, fa_ctl_mailbox_list },
    { "mailbox", "create", "USER NAME", 2, 2, fa_ctl_mailbox_create },
    { "mailbox", "delete", "USER NAME", 2, 2, fa_ctl_mailbox_delete },
    { NULL, NULL, NULL, 0, 0, NULL }
};
