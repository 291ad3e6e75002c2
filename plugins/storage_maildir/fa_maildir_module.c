/*
 * The module: its directives inside "storage maildir { ... }", the backend
 * table the storage module finds by name, the per-process open and close,
 * and the completions posted back to the loop.
 *
 *   load_module  modules/fa_storage_maildir_module.so;
 *   storage maildir {
 *       path          /var/vmail;      # required
 *       lock_timeout  10s;             # wait for another writer's dotlock
 *   }
 */

#include "fa_maildir.h"

static void *fa_maildir_create_conf(fa_conf_t *cf);
static char *fa_maildir_merge_conf(fa_conf_t *cf, void *parent, void *child);
static fa_int_t fa_maildir_init_conf(fa_conf_t *cf);
static fa_int_t fa_maildir_open(fa_storage_t *st, fa_cycle_t *cycle);
static void fa_maildir_close(fa_storage_t *st);

static const fa_command_t  fa_maildir_commands[] = {
    { "path", "storage:maildir", FA_CONF_TAKE1, fa_conf_set_path,
      offsetof(fa_maildir_conf_t, path), NULL },
    { "lock_timeout", "storage:maildir", FA_CONF_TAKE1, fa_conf_set_msec,
      offsetof(fa_maildir_conf_t, lock_timeout), NULL },
    fa_null_command
};

static const fa_storage_backend_t  fa_maildir_backend = {
    FA_STORAGE_ABI_VERSION, "maildir",
    fa_maildir_open, fa_maildir_close,
    fa_maildir_mailbox_list, fa_maildir_mailbox_create, fa_maildir_mailbox_delete,
    fa_maildir_mailbox_rename, fa_maildir_mailbox_subscribe, fa_maildir_mailbox_status,
    fa_maildir_mailbox_open, fa_maildir_mailbox_close,
    fa_maildir_fetch_meta, fa_maildir_message_open, fa_maildir_message_read,
    fa_maildir_message_fd, fa_maildir_message_close,
    fa_maildir_append_begin, fa_maildir_append_write, fa_maildir_append_commit,
    fa_maildir_append_abort,
    fa_maildir_store, fa_maildir_copy, fa_maildir_expunge, fa_maildir_changes_since,
    fa_maildir_quota_get, fa_maildir_quota_set,
    fa_maildir_watch, fa_maildir_unwatch,
    NULL,                                  /* check: not supported */
    { 0, 0, 0, 0, 0, 0, 0 }
};

fa_module_t  fa_storage_maildir_module = {
    FA_MODULE_V1, "storage_maildir", FA_MODULE_STORAGE, fa_maildir_commands,
    fa_maildir_create_conf, fa_maildir_merge_conf, fa_maildir_init_conf,
    NULL, NULL, NULL, NULL, &fa_maildir_backend, { 0, 0, 0, 0, 0, 0, 0, 0 }
};

/* the symbol load_module looks for; the only one this object exports */
__attribute__((visibility("default")))
fa_module_t  *fa_module = &fa_storage_maildir_module;

static void *
fa_maildir_create_conf(fa_conf_t *cf)
{
    fa_maildir_conf_t  *conf = fa_pcalloc(cf->pool, sizeof(fa_maildir_conf_t));

    if (conf == NULL) {
        return NULL;
    }
    conf->lock_timeout = FA_CONF_UNSET_MSEC;
    return conf;
}

static char *
fa_maildir_merge_conf(fa_conf_t *cf, void *parent, void *child)
{
    fa_maildir_conf_t  *prev = parent, *conf = child;

    (void) cf;
    if (conf->path.data == NULL) {
        conf->path = prev->path;
    }
    fa_conf_merge_msec(conf->lock_timeout, prev->lock_timeout, 10000);
    return FA_CONF_OK;
}

/* a maildir store without a path cannot work: say so at its block */
static fa_int_t
fa_maildir_check_scope(fa_cycle_t *cycle, fa_conf_scope_t *s, void *data)
{
    fa_conf_t          *cf = data;
    fa_maildir_conf_t  *conf = fa_scope_conf(s, fa_storage_maildir_module);

    (void) cycle;
    if (conf == NULL || conf->path.len == 0) {
        cf->file = s->file;
        cf->line = s->line;
        fa_conf_error(cf, "\"storage maildir\" needs a \"path\" directive");
        return FA_ERROR;
    }
    return FA_OK;
}

static fa_int_t
fa_maildir_init_conf(fa_conf_t *cf)
{
    return fa_conf_each_scope(cf->cycle, "storage:maildir", fa_maildir_check_scope, cf);
}

/* the host name as Maildir wants it in file names: "/" and ":" escaped */
static void
fa_maildir_hostname(fa_maildir_t *md)
{
    char    name[64];
    size_t  n = 0;

    if (gethostname(name, sizeof(name)) != 0) {
        strcpy(name, "localhost");
    }
    name[sizeof(name) - 1] = '\0';
    for (char *p = name; *p && n + 5 < sizeof(md->host); p++) {
        if (*p == '/' || *p == ':' || *p == ',') {
            n += fa_snprintf(md->host + n, sizeof(md->host) - n, "\\%03o", (u_char) *p);
        } else {
            md->host[n++] = *p;
        }
    }
    md->host[n] = '\0';
}

static fa_int_t
fa_maildir_open(fa_storage_t *st, fa_cycle_t *cycle)
{
    fa_maildir_t  *md;

    (void) cycle;
    md = fa_calloc(sizeof(fa_maildir_t), st->log);
    if (md == NULL) {
        return FA_ERROR;
    }
    md->st = st;
    md->conf = st->conf;
    md->log = st->log;
    fa_maildir_hostname(md);
    if (fa_maildir_mkdirs(md, (char *) md->conf->path.data, 0) != FA_OK) {
        free(md);
        return FA_ERROR;
    }
    st->data = md;
    return FA_OK;
}

static void
fa_maildir_close(fa_storage_t *st)
{
    fa_maildir_t  *md = st->data;

    if (md) {
        fa_maildir_watcher_stop(md);
        free(md);
        st->data = NULL;
    }
}

/* errno to the contract's codes; the unexpected ones are logged */
fa_int_t
fa_maildir_sys_error(fa_maildir_t *md, int err, const char *what, const char *path)
{
    switch (err) {
    case ENOENT:
        return FA_STORAGE_NOTFOUND;
    case ENOSPC:
    case EDQUOT:
        fa_log_error(FA_LOG_ERR, md->log, err, "maildir: %s \"%s\" failed", what, path);
        return FA_STORAGE_NOSPACE;
    case ENAMETOOLONG:
        return FA_STORAGE_INVALID;
    default:
        fa_log_error(FA_LOG_ERR, md->log, err, "maildir: %s \"%s\" failed", what, path);
        return FA_ERROR;
    }
}

/*
 * Completions.  The work is done by the time an operation returns, but the
 * contract only lets a result reach the caller through its callback, run
 * from the loop: the result waits in a posted event.
 */
fa_maildir_done_t *
fa_maildir_done(fa_maildir_t *md, fa_maildir_done_kind_t kind, void (*cb)(void),
    void *data)
{
    fa_maildir_done_t  *d = fa_calloc(sizeof(fa_maildir_done_t), md->log);

    if (d) {
        d->kind = kind;
        d->cb = cb;
        d->data = data;
        d->ev.log = md->log;
    }
    return d;
}

static void
fa_maildir_deliver(fa_event_t *ev)
{
    fa_maildir_done_t  *d = ev->data;

    switch (d->kind) {
    case FA_MAILDIR_DONE_LIST:
        ((fa_storage_list_pt) d->cb)(d->data, d->rc, d->r.list.boxes, d->r.list.n);
        break;
    case FA_MAILDIR_DONE_STATUS:
        ((fa_storage_status_pt) d->cb)(d->data, d->rc, &d->r.status);
        break;
    case FA_MAILDIR_DONE_OPEN:
        ((fa_storage_open_pt) d->cb)(d->data, d->rc, d->r.open.box, &d->r.open.st);
        break;
    case FA_MAILDIR_DONE_META:
        ((fa_storage_meta_pt) d->cb)(d->data, d->rc, d->r.meta.msgs, d->r.meta.n);
        break;
    case FA_MAILDIR_DONE_APPEND:
        ((fa_storage_append_pt) d->cb)(d->data, d->rc, &d->r.append);
        break;
    case FA_MAILDIR_DONE_COPY:
        ((fa_storage_copy_pt) d->cb)(d->data, d->rc, d->r.copy.uidvalidity, d->r.copy.src,
                                     d->r.copy.dst);
        break;
    case FA_MAILDIR_DONE_CHANGES:
        ((fa_storage_changes_pt) d->cb)(d->data, d->rc, d->r.changes);
        break;
    case FA_MAILDIR_DONE_QUOTA:
        ((fa_storage_quota_pt) d->cb)(d->data, d->rc, &d->r.quota);
        break;
    }
    fa_maildir_view_free(d->view);
    free(d);
}

fa_int_t
fa_maildir_post(fa_maildir_done_t *d, fa_int_t rc)
{
    d->rc = rc;
    d->ev.data = d;
    d->ev.handler = fa_maildir_deliver;
    fa_event_post(&d->ev);
    return FA_AGAIN;
}
