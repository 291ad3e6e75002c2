/*
 * Bringing the store's quota limits in line with the directory and the
 * configuration (fa_auth_quota.h): read them, and set them only when they
 * differ, so a login costs one read in the common case.
 */

#include "fa_auth_quota.h"

typedef struct {
    fa_storage_t        *st;
    fa_str_t             user;
    uint64_t             bytes, messages;
    fa_storage_done_pt   cb;
    void                *data;
    char                 name[FA_AUTH_ADDRESS_MAX + 1];
} fa_auth_quota_op_t;

static void
fa_auth_quota_done(void *data, fa_int_t rc)
{
    fa_auth_quota_op_t  *op = data;

    op->cb(op->data, rc);
    free(op);
}

static void
fa_auth_quota_got(void *data, fa_int_t rc, fa_quota_t *q)
{
    fa_auth_quota_op_t  *op = data;
    fa_quota_t           limits;

    if (rc == FA_OK && q->bytes_limit == op->bytes && q->messages_limit == op->messages) {
        fa_auth_quota_done(op, FA_OK);
        return;
    }
    memset(&limits, 0, sizeof(limits));
    limits.bytes_limit = op->bytes;
    limits.messages_limit = op->messages;
    rc = op->st->backend->quota_set(op->st, &op->user, &limits, fa_auth_quota_done, op);
    if (rc != FA_AGAIN) {
        fa_auth_quota_done(op, rc);
    }
}

fa_int_t
fa_auth_quota_sync(fa_cycle_t *cycle, fa_storage_t *st, const fa_auth_user_t *u,
    fa_storage_done_pt cb, void *data)
{
    fa_auth_quota_op_t  *op;
    fa_int_t             rc;

    if (st->backend->quota_get == NULL || st->backend->quota_set == NULL
        || u->address.len > FA_AUTH_ADDRESS_MAX)
    {
        return FA_OK;                    /* a backend without quotas */
    }
    if ((op = calloc(1, sizeof(*op))) == NULL) {
        return FA_ERROR;
    }
    op->st = st;
    op->cb = cb;
    op->data = data;
    memcpy(op->name, u->address.data, u->address.len);
    op->user.data = (u_char *) op->name;
    op->user.len = u->address.len;
    fa_auth_quota_wanted(cycle, u, &op->bytes, &op->messages);
    rc = st->backend->quota_get(st, &op->user, fa_auth_quota_got, op);
    if (rc != FA_AGAIN) {
        free(op);
    }
    return rc;
}
