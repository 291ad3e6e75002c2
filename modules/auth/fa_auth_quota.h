/*
 * Quotas: a user's own limits live in the directory (facteurctl user
 * quota), defaults in the configuration (quota_bytes, quota_messages in
 * main or a domain block), and the store enforces what it was told
 * (fa_storage.h quota_set).  fa_auth_quota_sync makes the store's limits
 * what they should be; the protocol modules call it at login, facteurctl
 * when it adds a user or changes a quota, so a new default reaches a user
 * at their next login.
 */

#ifndef FA_AUTH_QUOTA_H
#define FA_AUTH_QUOTA_H

#include "fa_core.h"
#include "fa_auth_directory.h"
#include "fa_storage.h"

/* their own, else their domain's, else the main default; 0: no limit */
void fa_auth_quota_wanted(fa_cycle_t *cycle, const fa_auth_user_t *u, uint64_t *bytes,
    uint64_t *messages);

/*
 * FA_OK: nothing to change (cb not called); FA_AGAIN: cb later, with the
 * store's status; an error: nothing was done.  Failures are the caller's
 * to log: a login goes on with the old limits.
 */
fa_int_t fa_auth_quota_sync(fa_cycle_t *cycle, fa_storage_t *st, const fa_auth_user_t *u,
    fa_storage_done_pt cb, void *data);

#endif /* FA_AUTH_QUOTA_H */
