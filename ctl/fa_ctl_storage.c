/*
 * facteurctl and the storage contract: the contract is asynchronous, so
 * facteurctl runs an event loop of its own, and each command waits (bounded)
 * for its completion.  The store and the loop are opened on first use and
 * closed by main.
 */

#include "fa_ctl.h"
#include "fa_auth_directory.h"

#define FA_CTL_STORAGE_TIMEOUT  60000     /* ms for one operation */


void
fa_ctl_done_cb(void *data, fa_int_t rc)
{
    fa_ctl_wait_t  *w = data;

    w->rc = rc;
    w->done = 1;
}

void
fa_ctl_list_cb(void *data, fa_int_t rc, fa_mailbox_info_t *boxes, fa_uint_t n)
{
    fa_ctl_wait_t  *w = data;

    w->boxes = boxes;
    w->n = n;
    fa_ctl_done_cb(data, rc);
}

void
fa_ctl_open_cb(void *data, fa_int_t rc, fa_mailbox_t *box, fa_mailbox_status_t *st)
{
    fa_ctl_wait_t  *w = data;

    w->box = box;
    if (st && w->pool) {                 /* valid during this call only: copy */
        w->status = fa_palloc(w->pool, sizeof(*st));
        if (w->status == NULL) {
            fa_ctl_done_cb(data, FA_ERROR);
            return;
        }
        *w->status = *st;
        w->status->keywords = fa_palloc(w->pool, st->nkeywords * sizeof(fa_str_t) + 1);
        for (fa_uint_t i = 0; w->status->keywords && i < st->nkeywords; i++) {
            w->status->keywords[i].data = fa_pstrdup(w->pool, &st->keywords[i]);
            w->status->keywords[i].len = w->status->keywords[i].data ? st->keywords[i].len : 0;
        }
        w->status->nkeywords = w->status->keywords ? st->nkeywords : 0;
    }
    fa_ctl_done_cb(data, rc);
}

void
fa_ctl_meta_cb(void *data, fa_int_t rc, fa_message_meta_t *msgs, fa_uint_t n)
{
    fa_ctl_wait_t  *w = data;

    w->msgs = msgs;
    w->n = n;
    fa_ctl_done_cb(data, rc);
}

void
fa_ctl_append_cb(void *data, fa_int_t rc, fa_append_result_t *res)
{
    fa_ctl_wait_t  *w = data;

    if (res) {
        w->app = *res;
    }
    fa_ctl_done_cb(data, rc);
}

/*
 * Imports commit many messages at once, so the store's group commit takes
 * them in a few syncs instead of one each: up to FA_CTL_WINDOW commits in
 * flight.  The store keeps their order (its writer is first come, first
 * served), so UIDs follow the order of the source.
 */
#define FA_CTL_WINDOW  64

static void
fa_ctl_batch_cb(void *data, fa_int_t rc, fa_append_result_t *res)
{
    fa_ctl_batch_t  *b = data;

    (void) res;
    b->in_flight--;
    if (rc == FA_OK) {
        b->committed++;
    } else if (b->rc == FA_OK) {
        b->rc = rc;
    }
}

static fa_int_t
fa_ctl_batch_wait(fa_ctl_t *ctl, fa_ctl_batch_t *b, fa_uint_t below)
{
    fa_msec_t  deadline = fa_current_msec + FA_CTL_STORAGE_TIMEOUT;

    while (b->in_flight > below && fa_current_msec < deadline) {
        fa_event_process(ctl->cycle);
    }
    return b->in_flight > below ? FA_STORAGE_TEMPFAIL : b->rc;
}

/* commit one append of a batch: FA_OK, or the batch's first failure */
fa_int_t
fa_ctl_batch_commit(fa_ctl_t *ctl, fa_ctl_batch_t *b, fa_storage_t *st, fa_append_t *a)
{
    fa_int_t  rc = st->backend->append_commit(a, fa_ctl_batch_cb, b);

    if (rc == FA_AGAIN) {
        b->in_flight++;
    } else if (rc != FA_OK && b->rc == FA_OK) {
        b->rc = rc;
    }
    return fa_ctl_batch_wait(ctl, b, FA_CTL_WINDOW - 1);
}

/* every commit of the batch answered: FA_OK, or the first failure */
fa_int_t
fa_ctl_batch_finish(fa_ctl_t *ctl, fa_ctl_batch_t *b)
{
    return fa_ctl_batch_wait(ctl, b, 0);
}

/* the call's own status, or (FA_AGAIN) what the callback said, bounded in time */
fa_int_t
fa_ctl_wait(fa_ctl_t *ctl, fa_ctl_wait_t *w, fa_int_t rc)
{
    fa_msec_t  deadline = fa_current_msec + FA_CTL_STORAGE_TIMEOUT;

    if (rc != FA_AGAIN) {
        return rc;
    }
    while (!w->done && fa_current_msec < deadline) {
        fa_event_process(ctl->cycle);
    }
    return w->done ? w->rc : FA_STORAGE_TEMPFAIL;
}

/*
 * The default store, opened in this process with an event loop for its
 * completions (once; main closes both).  NULL, with a message, if the
 * configuration has no store or it does not open.
 */
fa_storage_t *
fa_ctl_open_store(fa_ctl_t *ctl)
{
    fa_storage_t  *st = fa_storage_get(ctl->cycle, NULL);

    if (st == NULL) {
        fa_ctl_error("the configuration has no \"storage\" block");
        return NULL;
    }
    if (ctl->loop) {
        return st;                       /* opened by an earlier call */
    }
    fa_cycle = ctl->cycle;
    if (fa_event_init(ctl->cycle) != FA_OK) {
        fa_ctl_error("no event loop (see above)");
        return NULL;
    }
    ctl->loop = 1;                       /* main closes the stores and the loop */
    if (fa_storage_open_all(ctl->cycle) != FA_OK) {
        fa_ctl_error("the store cannot be opened (see above)");
        return NULL;
    }
    return st;
}

/* the user's store (its domain's, or the default), and the user, who must be in the directory */
fa_storage_t *
fa_ctl_store(fa_ctl_t *ctl, const char *arg, fa_str_t *user)
{
    fa_str_t        in = { strlen(arg), (u_char *) arg };
    fa_auth_dir_t  *d;
    fa_auth_user_t  u;
    fa_int_t        rc;

    if (fa_auth_address_normalize(ctl->pool, &in, user) != FA_OK || user->data[0] == '@') {
        fa_ctl_error("invalid address \"%s\"", arg);
        return NULL;
    }
    d = fa_auth_dir_open(fa_auth_dir_path(ctl->cycle), 0, &fa_log_stderr);
    rc = d ? fa_auth_user_get(d, user, ctl->pool, &u) : FA_ERROR;
    fa_auth_dir_close(d);
    if (rc != FA_OK) {
        fa_ctl_error("user \"%s\": %s", (char *) user->data, fa_auth_strerror(rc));
        return NULL;
    }
    return fa_ctl_open_store(ctl) ? fa_storage_for_user(ctl->cycle, user) : NULL;
}

typedef struct {
    fa_ctl_t          *ctl;
    fa_storage_t      *st;
    const char        *dir;
    fa_ctl_user_pt     fn;
    fa_int_t           rc;
    fa_uint_t          n;
} fa_ctl_each_t;

/* one user of a domain: DIR/LOCAL; a directory entry named after the local part */
static int
fa_ctl_each_one(void *data, const fa_str_t *key, const fa_str_t *value)
{
    fa_ctl_each_t  *e = data;
    const u_char   *at = memchr(key->data, '@', key->len);
    fa_str_t        user;
    char           *sub;
    size_t          size;

    (void) value;
    user.len = key->len;
    user.data = fa_pnalloc(e->ctl->pool, key->len + 1);
    size = strlen(e->dir) + key->len + 2;
    sub = fa_pnalloc(e->ctl->pool, size);
    if (user.data == NULL || sub == NULL || at == NULL) {
        e->rc = FA_ERROR;
        return 1;
    }
    memcpy(user.data, key->data, key->len);
    user.data[key->len] = '\0';
    fa_snprintf(sub, size, "%s/%.*s", e->dir, (int) (at - key->data), key->data);
    e->rc = e->fn(e->ctl, fa_storage_for_user(e->ctl->cycle, &user), &user, sub);
    e->n++;
    return e->rc != FA_OK;               /* stop at the first failure */
}

/*
 * ARG is a user ("alice@example.org": fn works in DIR) or a domain
 * ("example.org" or "@example.org": fn runs for each of its users, each in
 * DIR/LOCAL).  The status of the first failure, or FA_OK.
 */
fa_int_t
fa_ctl_each_user(fa_ctl_t *ctl, const char *arg, const char *dir, fa_ctl_user_pt fn)
{
    fa_ctl_each_t   e = { ctl, NULL, dir, fn, FA_OK, 0 };
    fa_str_t        in, domain;
    fa_auth_dir_t  *d;
    fa_int_t        rc;

    if (strchr(arg + 1, '@') != NULL) {
        fa_str_t user;
        fa_storage_t *st = fa_ctl_store(ctl, arg, &user);
        return st ? fn(ctl, st, &user, dir) : FA_STORAGE_NOTFOUND;
    }
    in.data = (u_char *) arg + (arg[0] == '@');
    in.len = strlen((char *) in.data);
    if (fa_auth_domain_normalize(ctl->pool, &in, &domain) != FA_OK) {
        fa_ctl_error("invalid user or domain \"%s\"", arg);
        return FA_STORAGE_INVALID;
    }
    d = fa_auth_dir_open(fa_auth_dir_path(ctl->cycle), 1, &fa_log_stderr);
    rc = d ? fa_auth_domain_exists(d, &domain) : FA_ERROR;
    if (rc == FA_OK && (e.st = fa_ctl_open_store(ctl)) == NULL) {
        rc = FA_ERROR;
    }
    if (rc == FA_OK) {
        rc = fa_auth_user_list(d, &domain, fa_ctl_each_one, &e);
    }
    fa_auth_dir_close(d);
    if (rc != FA_OK) {
        fa_ctl_error("domain \"%s\": %s", (char *) domain.data, fa_auth_strerror(rc));
        return rc == FA_AUTH_NOTFOUND ? FA_STORAGE_NOTFOUND : FA_ERROR;
    }
    return e.rc;
}

/* the exit status for a storage status: refused for the caller's mistakes */
int
fa_ctl_exit_status(fa_int_t rc)
{
    if (rc == FA_OK) {
        return FA_CTL_OK;
    }
    return (rc == FA_ERROR || rc == FA_STORAGE_CORRUPT || rc == FA_STORAGE_TEMPFAIL)
           ? FA_CTL_FAILED : FA_CTL_REFUSED;
}

int
fa_ctl_storage_status(fa_int_t rc, const char *what, const char *name)
{
    if (rc != FA_OK) {
        fa_ctl_error("%s \"%s\": %s", what, name, fa_storage_strerror(rc));
    }
    return fa_ctl_exit_status(rc);
}

