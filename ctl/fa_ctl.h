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

#define FA_CTL_OK       0
#define FA_CTL_REFUSED  1
#define FA_CTL_FAILED   2

typedef struct {
    fa_cycle_t   *cycle;
    fa_pool_t    *pool;
    int           password_stdin;     /* --password-stdin */
    int           allow_plain;        /* --allow-plain */
    const char   *domain;             /* --domain=DOMAIN */
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

int fa_ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int fa_ctl_read_password(fa_ctl_t *ctl, char *buf, size_t size);

#endif /* FA_CTL_H */
