/*
 * QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA, SETQUOTA.
 *
 * A user has one quota root, "", holding every mailbox: the store counts
 * bytes and messages per user (fa_storage.h quota_get).  Resources are
 * STORAGE (in units of 1024 octets: usage rounded up, so a non-empty
 * mailbox never shows 0, the limit rounded down) and MESSAGE; a resource
 * without a limit is left out of the QUOTA response, so a user without
 * limits gets * QUOTA "" ().  The limits come from the directory
 * (facteurctl user quota, quota_bytes/quota_messages defaults), and the
 * store is told them at login (fa_auth_quota.h): what the store enforces
 * is what is shown.
 *
 * Limits are the administrator's: SETQUOTA is refused with NO [NOPERM].
 */

#include "fa_imap_int.h"

typedef struct {
    fa_str_t    mailbox;        /* GETQUOTAROOT's, on the wire */
    unsigned    root:1;         /* GETQUOTAROOT: QUOTAROOT first */
} fa_imap_quota_t;

static void
fa_imap_quota_line(fa_imap_session_t *s, const fa_quota_t *q)
{
    char    buf[256];
    size_t  n = 0;

    buf[0] = '\0';
    if (q->bytes_limit) {
        n += fa_snprintf(buf + n, sizeof(buf) - n, "STORAGE %llu %llu",
                         (unsigned long long) ((q->bytes_used + 1023) / 1024),
                         (unsigned long long) (q->bytes_limit / 1024));
    }
    if (q->messages_limit) {
        n += fa_snprintf(buf + n, sizeof(buf) - n, "%sMESSAGE %llu %llu", n ? " " : "",
                         (unsigned long long) q->messages_used,
                         (unsigned long long) q->messages_limit);
    }
    fa_imap_send(s, "* QUOTA \"\" (%s)", buf);
}

static void
fa_imap_quota_got(void *data, fa_int_t rc, fa_quota_t *q)
{
    fa_imap_session_t  *s = data;
    fa_imap_quota_t    *qt;

    if (fa_imap_answered(s)) {
        return;
    }
    qt = s->cmd->data;
    if (rc != FA_OK) {
        fa_imap_storage_no(s, rc, s->cmd->def->name);
        fa_imap_done(s);
        return;
    }
    if (qt->root) {
        fa_imap_send(s, "* QUOTAROOT %.*s \"\"", (int) qt->mailbox.len, qt->mailbox.data);
    }
    fa_imap_quota_line(s, q);
    fa_imap_tagged(s, "OK", "%s completed", s->cmd->def->name);
    fa_imap_done(s);
}

static fa_int_t
fa_imap_quota_ask(fa_imap_session_t *s)
{
    fa_int_t  rc;

    if (s->store->backend->quota_get == NULL) {
        return fa_imap_tagged(s, "NO", "[CANNOT] Quotas are not supported by the store");
    }
    rc = fa_imap_call(s, s->store->backend->quota_get(s->store, &s->user, fa_imap_quota_got, s));
    return rc == FA_AGAIN ? FA_AGAIN : fa_imap_storage_no(s, rc, s->cmd->def->name);
}

/* GETQUOTAROOT of a mailbox that does not exist is NO [NONEXISTENT] */
static void
fa_imap_quota_mailbox(void *data, fa_int_t rc, fa_mailbox_status_t *st)
{
    fa_imap_session_t  *s = data;

    (void) st;
    if (fa_imap_answered(s)) {
        return;
    }
    if (rc == FA_OK) {
        rc = fa_imap_quota_ask(s);
    } else {
        fa_imap_storage_no(s, rc, "GETQUOTAROOT");
    }
    if (rc != FA_AGAIN) {
        fa_imap_done(s);
    }
}

fa_int_t
fa_imap_getquotaroot(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    fa_imap_quota_t  *qt = fa_pcalloc(cmd->pool, sizeof(*qt));
    fa_str_t          name;
    fa_int_t          rc;

    if (qt == NULL) {
        return FA_ERROR;
    }
    if (cmd->parsed.nargs != 1) {
        return fa_imap_bad(s, "Syntax: GETQUOTAROOT mailbox");
    }
    cmd->data = qt;
    qt->root = 1;
    rc = fa_imap_name_in(s, &cmd->parsed.args[0], cmd->pool, &name);
    if (rc == FA_DECLINED) {
        return fa_imap_bad(s, "Invalid mailbox name");
    }
    if (rc == FA_OK) {
        rc = fa_imap_name_out(s, &name, cmd->pool, &qt->mailbox);
    }
    if (rc == FA_OK) {
        rc = fa_imap_call(s, s->store->backend->mailbox_status(s->store, &s->user, &name,
                                                               fa_imap_quota_mailbox, s));
    }
    return rc == FA_AGAIN ? FA_AGAIN : fa_imap_storage_no(s, rc, "GETQUOTAROOT");
}

fa_int_t
fa_imap_getquota(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    const fa_str_t  *root;

    if (cmd->parsed.nargs != 1 || (root = fa_imap_arg_string(&cmd->parsed.args[0])) == NULL) {
        return fa_imap_bad(s, "Syntax: GETQUOTA root");
    }
    if (root->len) {
        return fa_imap_tagged(s, "NO", "[NONEXISTENT] No such quota root");
    }
    cmd->data = fa_pcalloc(cmd->pool, sizeof(fa_imap_quota_t));
    if (cmd->data == NULL) {
        return FA_ERROR;
    }
    return fa_imap_quota_ask(s);
}

/* SETQUOTA root (resource limit ...): the administrator sets limits, not users */
fa_int_t
fa_imap_setquota(fa_imap_session_t *s, fa_imap_cmd_t *cmd)
{
    if (cmd->parsed.nargs != 2 || fa_imap_arg_string(&cmd->parsed.args[0]) == NULL
        || cmd->parsed.args[1].type != FA_IMAP_ARG_LIST || cmd->parsed.args[1].n % 2)
    {
        return fa_imap_bad(s, "Syntax: SETQUOTA root (resource limit ...)");
    }
    return fa_imap_tagged(s, "NO", "[NOPERM] Quotas are set by the administrator");
}
