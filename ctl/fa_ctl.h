/*
 * facteurctl: the administration tool.  It loads the same configuration as
 * the server (-c), so it finds the same directory and stores, and works on
 * them directly; LMDB makes that safe while the server runs.
 *
 * Each command is a function taking its arguments after the command words;
 * it returns the process exit status: 0 done, 1 refused (bad input, not
 * found, exists: the message says which), 2 internal failure.
 */

#ifndef FA_CTL_H
#define FA_CTL_H

#include "fa_core.h"
#include "fa_storage.h"
#include "fa_auth_directory.h"

#define FA_CTL_OK       0
#define FA_CTL_REFUSED  1
#define FA_CTL_FAILED   2

typedef struct {
    fa_cycle_t   *cycle;
    fa_pool_t    *pool;
    int           password_stdin;     /* --password-stdin */
    int           allow_plain;        /* --allow-plain */
    const char   *domain;             /* --domain=DOMAIN */
    const char   *mailbox;            /* --mailbox=NAME */
    int           loop;               /* an event loop and stores are open */
} fa_ctl_t;

typedef int (*fa_ctl_command_pt)(fa_ctl_t *ctl, int argc, char **argv);

typedef struct {
    const char         *group;        /* "user" */
    const char         *verb;         /* "add" */
    const char         *usage;        /* "ADDRESS [--password-stdin]" */
    int                 min_args;
    int                 max_args;     /* -1: any */
    fa_ctl_command_pt   run;
} fa_ctl_command_t;

extern const fa_ctl_command_t  fa_ctl_directory_commands[];
extern const fa_ctl_command_t  fa_ctl_import_commands[];
extern const fa_ctl_command_t  fa_ctl_mailbox_commands[];
extern const fa_ctl_command_t  fa_ctl_mbox_commands[];
extern const fa_ctl_command_t  fa_ctl_check_commands[];
extern const fa_ctl_command_t  fa_ctl_maildir_commands[];
extern const fa_ctl_command_t  fa_ctl_queue_commands[];
extern const fa_ctl_command_t  fa_ctl_quota_commands[];

/* waiting for the storage contract's completions (fa_ctl_storage.c) */
typedef struct {
    int                  done;
    fa_int_t             rc;
    fa_mailbox_info_t   *boxes;
    fa_uint_t            n;
    fa_quota_t           quota;
    fa_mailbox_t        *box;
    fa_pool_t           *pool;         /* set: mailbox_open's status is copied here */
    fa_mailbox_status_t *status;
    fa_message_meta_t   *msgs;
    fa_append_result_t   app;
} fa_ctl_wait_t;

/* appends committed with many in flight (imports): fa_ctl_storage.c */
typedef struct {
    fa_uint_t            in_flight;
    fa_uint_t            committed;
    fa_int_t             rc;           /* the first failure */
} fa_ctl_batch_t;

fa_int_t fa_ctl_batch_commit(fa_ctl_t *ctl, fa_ctl_batch_t *b, fa_storage_t *st,
    fa_append_t *a);
fa_int_t fa_ctl_batch_finish(fa_ctl_t *ctl, fa_ctl_batch_t *b);

void fa_ctl_done_cb(void *data, fa_int_t rc);
void fa_ctl_list_cb(void *data, fa_int_t rc, fa_mailbox_info_t *boxes, fa_uint_t n);
void fa_ctl_open_cb(void *data, fa_int_t rc, fa_mailbox_t *box, fa_mailbox_status_t *st);
void fa_ctl_meta_cb(void *data, fa_int_t rc, fa_message_meta_t *msgs, fa_uint_t n);
void fa_ctl_append_cb(void *data, fa_int_t rc, fa_append_result_t *res);
fa_int_t fa_ctl_wait(fa_ctl_t *ctl, fa_ctl_wait_t *w, fa_int_t rc);
fa_storage_t *fa_ctl_open_store(fa_ctl_t *ctl);
fa_storage_t *fa_ctl_store(fa_ctl_t *ctl, const char *arg, fa_str_t *user);
/* what export does for one user: write USER's mailboxes under DIR */
typedef fa_int_t (*fa_ctl_user_pt)(fa_ctl_t *ctl, fa_storage_t *st, const fa_str_t *user,
    const char *dir);
fa_int_t fa_ctl_each_user(fa_ctl_t *ctl, const char *arg, const char *dir,
    fa_ctl_user_pt fn);
int fa_ctl_exit_status(fa_int_t rc);
int fa_ctl_storage_status(fa_int_t rc, const char *what, const char *name);

/* the store's quota limits made the user's (fa_ctl_quota.c); FA_OK without a store */
fa_int_t fa_ctl_quota_apply(fa_ctl_t *ctl, fa_auth_dir_t *d, const fa_str_t *user);

int fa_ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int fa_ctl_read_password(fa_ctl_t *ctl, char *buf, size_t size);

#endif /* FA_CTL_H */
