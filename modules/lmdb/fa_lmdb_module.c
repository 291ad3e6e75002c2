/*
 * The LMDB storage backend: the embedded default store (docs/storage.md).
 *
 *   storage lmdb {
 *       path          var/mail;   # the environment and blobs/ (default var/mail)
 *       map_size      64m;        # where the map starts; it doubles when full
 *       max_map_size  0;          # 0: bounded by the file system's free space
 *       inline_max    64k;        # larger bodies go to files under blobs/
 *   }
 *
 * Each process (worker, facteurctl) opens the environment once; writes go
 * through one writer thread per process (fa_lmdb_writer.c) that commits
 * whatever is queued in one transaction.
 */

#include "fa_lmdb.h"

#define FA_LMDB_DEFAULT_MAP     (64 * 1024 * 1024)
#define FA_LMDB_DEFAULT_INLINE  (64 * 1024)
#define FA_LMDB_INLINE_LIMIT    (16 * 1024 * 1024)

static void *fa_lmdb_create_conf(fa_conf_t *cf);
static char *fa_lmdb_merge_conf(fa_conf_t *cf, void *parent, void *child);
static fa_int_t fa_lmdb_open(fa_storage_t *st, fa_cycle_t *cycle);
static void fa_lmdb_close(fa_storage_t *st);

static const fa_conf_bounds_t  fa_lmdb_map_bounds = { 1024 * 1024, INT64_MAX };
static const fa_conf_bounds_t  fa_lmdb_inline_bounds = { 0, FA_LMDB_INLINE_LIMIT };

static const fa_command_t  fa_lmdb_commands[] = {
    { "path", "storage:lmdb", FA_CONF_TAKE1, fa_conf_set_path,
      offsetof(fa_lmdb_conf_t, path), NULL },
    { "map_size", "storage:lmdb", FA_CONF_TAKE1, fa_conf_set_size,
      offsetof(fa_lmdb_conf_t, map_size), &fa_lmdb_map_bounds },
    { "max_map_size", "storage:lmdb", FA_CONF_TAKE1, fa_conf_set_size,
      offsetof(fa_lmdb_conf_t, max_map_size), NULL },
    { "inline_max", "storage:lmdb", FA_CONF_TAKE1, fa_conf_set_size,
      offsetof(fa_lmdb_conf_t, inline_max), &fa_lmdb_inline_bounds },
    fa_null_command
};

const fa_storage_backend_t  fa_lmdb_backend = {
    FA_STORAGE_ABI_VERSION, "lmdb",
    fa_lmdb_open, fa_lmdb_close,
    fa_lmdb_mailbox_list, fa_lmdb_mailbox_create, fa_lmdb_mailbox_delete,
    fa_lmdb_mailbox_rename, fa_lmdb_mailbox_subscribe, fa_lmdb_mailbox_status,
    fa_lmdb_mailbox_open, fa_lmdb_mailbox_close,
    fa_lmdb_fetch_meta, fa_lmdb_message_open, fa_lmdb_message_read, fa_lmdb_message_fd,
    fa_lmdb_message_close,
    fa_lmdb_append_begin, fa_lmdb_append_write, fa_lmdb_append_commit,
    fa_lmdb_append_abort,
    fa_lmdb_store, fa_lmdb_copy, fa_lmdb_expunge, fa_lmdb_changes_since,
    fa_lmdb_quota_get, fa_lmdb_quota_set,
    fa_lmdb_watch, fa_lmdb_unwatch,
    fa_lmdb_check,
    { 0, 0, 0, 0, 0, 0, 0 }
};

fa_module_t  fa_lmdb_module = {
    FA_MODULE_V1, "lmdb", FA_MODULE_STORAGE, fa_lmdb_commands,
    fa_lmdb_create_conf, fa_lmdb_merge_conf, NULL,
    NULL, NULL, NULL, NULL, &fa_lmdb_backend, { 0, 0, 0, 0, 0, 0, 0, 0 }
};

static void *
fa_lmdb_create_conf(fa_conf_t *cf)
{
    fa_lmdb_conf_t  *conf = fa_pcalloc(cf->pool, sizeof(fa_lmdb_conf_t));

    if (conf == NULL) {
        return NULL;
    }
    conf->map_size = FA_CONF_UNSET_SIZE;
    conf->max_map_size = FA_CONF_UNSET_SIZE;
    conf->inline_max = FA_CONF_UNSET_SIZE;
    return conf;
}

static char *
fa_lmdb_merge_conf(fa_conf_t *cf, void *parent, void *child)
{
    fa_lmdb_conf_t  *prev = parent, *conf = child;
    fa_str_t         def = fa_string("var/mail");

    if (conf->path.data == NULL) {
        conf->path = prev->path;
    }
    if (conf->path.data == NULL) {
        conf->path.data = (u_char *) fa_conf_full_path(cf, &def);
        if (conf->path.data == NULL) {
            return FA_CONF_ERROR;
        }
        conf->path.len = strlen((char *) conf->path.data);
    }
    fa_conf_merge_size(conf->map_size, prev->map_size, FA_LMDB_DEFAULT_MAP);
    fa_conf_merge_size(conf->max_map_size, prev->max_map_size, 0);
    fa_conf_merge_size(conf->inline_max, prev->inline_max, FA_LMDB_DEFAULT_INLINE);
    if (conf->max_map_size && conf->max_map_size < conf->map_size) {
        return fa_conf_error(cf, "\"max_map_size\" is smaller than \"map_size\"");
    }
    return FA_CONF_OK;
}

static char *
fa_lmdb_join(const char *a, const char *b, fa_log_t *log)
{
    size_t   la = strlen(a), lb = strlen(b);
    char    *p = fa_alloc(la + lb + 2, log);

    if (p) {
        memcpy(p, a, la);
        p[la] = '/';
        memcpy(p + la + 1, b, lb + 1);
    }
    return p;
}

/* per process: after fork in a worker, or in facteurctl */
static fa_int_t
fa_lmdb_open(fa_storage_t *st, fa_cycle_t *cycle)
{
    fa_lmdb_t  *lm;

    (void) cycle;
    lm = fa_calloc(sizeof(fa_lmdb_t), st->log);
    if (lm == NULL) {
        return FA_ERROR;
    }
    lm->st = st;
    lm->conf = st->conf;
    lm->log = st->log;
    lm->pid = getpid();
    lm->blobs_fd = -1;
    fa_queue_init(&lm->live);
    lm->path = fa_alloc(lm->conf->path.len + 1, lm->log);
    if (lm->path) {
        memcpy(lm->path, lm->conf->path.data, lm->conf->path.len);
        lm->path[lm->conf->path.len] = '\0';
        lm->blobs = fa_lmdb_join(lm->path, "blobs", lm->log);
        lm->tmp = fa_lmdb_join(lm->path, "blobs/tmp", lm->log);
    }
    st->data = lm;
    if (lm->tmp == NULL || fa_lmdb_env_open(lm) != FA_OK
        || fa_lmdb_notify_open(lm) != FA_OK)
    {
        fa_lmdb_close(st);
        return FA_ERROR;
    }
    fa_lmdb_blobs_cleanup(lm);
    return FA_OK;
}

/*
 * What is queued is committed (durable) before the environment closes, but
 * no callback runs any more: the callers are going away too.
 */
static void
fa_lmdb_close(fa_storage_t *st)
{
    fa_lmdb_t  *lm = st->data;

    if (lm == NULL) {
        return;
    }
    fa_lmdb_writer_stop(lm);
    fa_lmdb_ops_drop(lm);
    fa_lmdb_notify_close(lm);
    fa_lmdb_env_close(lm);
    free(lm->path);
    free(lm->blobs);
    free(lm->tmp);
    free(lm);
    st->data = NULL;
}
