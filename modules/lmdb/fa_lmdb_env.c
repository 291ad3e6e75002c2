/*
 * The environment: directories, the named databases, read transactions in
 * the loop, write transactions in the writer thread, and the map.
 *
 * The map is remapped in two cases: our writer hit MDB_MAP_FULL and doubles
 * it, or another process grew it and ours must adopt the new size
 * (MDB_MAP_RESIZED).  Remapping unmaps the region every pointer LMDB gave us
 * points into, so it must not happen while any transaction of this process
 * is open.  map_lock is that rule: every transaction holds it shared, a
 * remap holds it exclusive.  Loop reads are short and copy what they keep
 * before the lock is released, so the writer waits microseconds for them;
 * the lock prefers the remapper so that the loop and the writer taking it
 * in turns cannot starve a remap.
 */

#include "fa_lmdb.h"
#include <sys/statvfs.h>

#define FA_LMDB_MAX_READERS  512

static const char  *fa_lmdb_db_names[FA_LMDB_NDBS] = {
    "meta", "users", "mailboxes", "boxes", "messages", "modseq", "expunged", "refs",
    "bodies", "keywords"
};

fa_int_t
fa_lmdb_error(fa_lmdb_t *lm, int rc, const char *what)
{
    fa_log_error(FA_LOG_ERR, lm->log, 0, "lmdb storage \"%s\": %s: %s", lm->path, what,
                 mdb_strerror(rc));
    return FA_ERROR;
}

void
fa_lmdb_hex(const u_char *id, size_t n, char *out)
{
    static const char  hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[id[i] >> 4];
        out[2 * i + 1] = hex[id[i] & 0xf];
    }
    out[2 * n] = '\0';
}

void
fa_lmdb_blob_path(fa_lmdb_t *lm, const u_char *id, char *buf, size_t size)
{
    char  hex[FA_LMDB_GUID_LEN + 1];

    fa_lmdb_hex(id, FA_LMDB_BODY_ID_LEN, hex);
    fa_snprintf(buf, size, "%s/%s", lm->blobs, hex);
}

static fa_int_t
fa_lmdb_mkdir(fa_lmdb_t *lm, const char *path)
{
    char  *copy, *p;

    if (mkdir(path, 0700) == 0 || errno == EEXIST) {
        return FA_OK;
    }
    /* the parents too, like mkdir -p: "var/mail" in a fresh prefix */
    copy = strdup(path);
    if (copy == NULL) {
        return FA_ERROR;
    }
    for (p = copy + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(copy, 0700) == -1 && errno != EEXIST) {
                break;
            }
            *p = '/';
        }
    }
    free(copy);
    if (mkdir(path, 0700) == -1 && errno != EEXIST) {
        fa_log_error(FA_LOG_EMERG, lm->log, errno, "lmdb storage: mkdir(\"%s\") failed", path);
        return FA_ERROR;
    }
    return FA_OK;
}

static fa_int_t
fa_lmdb_dbs_open(fa_lmdb_t *lm)
{
    MDB_txn  *txn;
    int       rc;

    rc = mdb_txn_begin(lm->env, NULL, 0, &txn);
    if (rc != 0) {
        return fa_lmdb_error(lm, rc, "mdb_txn_begin()");
    }
    for (int i = 0; i < FA_LMDB_NDBS; i++) {
        rc = mdb_dbi_open(txn, fa_lmdb_db_names[i], MDB_CREATE, &lm->dbi[i]);
        if (rc != 0) {
            mdb_txn_abort(txn);
            return fa_lmdb_error(lm, rc, fa_lmdb_db_names[i]);
        }
    }
    rc = mdb_txn_commit(txn);
    return rc ? fa_lmdb_error(lm, rc, "creating the databases") : FA_OK;
}

/*
 * The configured map_size is where the map starts; a map another process
 * already grew stays as large (LMDB would otherwise shrink it to ours).
 */
static fa_int_t
fa_lmdb_map_adopt(fa_lmdb_t *lm)
{
    MDB_envinfo  info;
    int          rc;

    rc = mdb_env_set_mapsize(lm->env, 0);
    if (rc == 0) {
        mdb_env_info(lm->env, &info);
        if (info.me_mapsize < lm->conf->map_size) {
            rc = mdb_env_set_mapsize(lm->env, lm->conf->map_size);
        }
    }
    if (rc != 0) {
        return fa_lmdb_error(lm, rc, "mdb_env_set_mapsize()");
    }
    mdb_env_info(lm->env, &info);
    lm->map_size = info.me_mapsize;
    return FA_OK;
}

fa_int_t
fa_lmdb_env_open(fa_lmdb_t *lm)
{
    pthread_rwlockattr_t  attr;
    int                   rc, dead;

    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lm->map_lock, &attr);
    pthread_rwlockattr_destroy(&attr);

    if (fa_lmdb_mkdir(lm, lm->path) != FA_OK || fa_lmdb_mkdir(lm, lm->blobs) != FA_OK
        || fa_lmdb_mkdir(lm, lm->tmp) != FA_OK)
    {
        return FA_ERROR;
    }
    lm->blobs_fd = open(lm->blobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lm->blobs_fd == -1) {
        fa_log_error(FA_LOG_EMERG, lm->log, errno, "lmdb storage: open(\"%s\") failed",
                     lm->blobs);
        return FA_ERROR;
    }
    if ((rc = mdb_env_create(&lm->env)) != 0
        || (rc = mdb_env_set_maxdbs(lm->env, FA_LMDB_NDBS + 2)) != 0
        || (rc = mdb_env_set_maxreaders(lm->env, FA_LMDB_MAX_READERS)) != 0
        || (rc = mdb_env_set_mapsize(lm->env, lm->conf->map_size)) != 0
        || (rc = mdb_env_open(lm->env, lm->path, MDB_NOTLS, 0600)) != 0)
    {
        fa_log_error(FA_LOG_EMERG, lm->log, 0, "lmdb storage \"%s\": %s", lm->path,
                     mdb_strerror(rc));
        return FA_ERROR;
    }
    /* reader slots of killed processes would pin old pages forever */
    rc = mdb_reader_check(lm->env, &dead);
    if (rc != 0) {
        return fa_lmdb_error(lm, rc, "mdb_reader_check()");
    }
    if (dead) {
        fa_log_error(FA_LOG_NOTICE, lm->log, 0, "lmdb storage \"%s\": cleared %d stale "
                     "reader slots", lm->path, dead);
    }
    if (fa_lmdb_map_adopt(lm) != FA_OK) {
        return FA_ERROR;
    }
    return fa_lmdb_dbs_open(lm);
}

void
fa_lmdb_env_close(fa_lmdb_t *lm)
{
    if (lm->rtxn) {
        mdb_txn_abort(lm->rtxn);
        lm->rtxn = NULL;
    }
    if (lm->env) {
        mdb_env_close(lm->env);
        lm->env = NULL;
        pthread_rwlock_destroy(&lm->map_lock);
    }
    if (lm->blobs_fd != -1) {
        close(lm->blobs_fd);
        lm->blobs_fd = -1;
    }
}

/* another process grew the map: take its size (exclusive, no txn open) */
static fa_int_t
fa_lmdb_remap(fa_lmdb_t *lm)
{
    fa_int_t  rc;

    pthread_rwlock_wrlock(&lm->map_lock);
    rc = fa_lmdb_map_adopt(lm);
    pthread_rwlock_unlock(&lm->map_lock);
    return rc;
}

/*
 * The loop's read transaction: one per process, reset between reads and
 * renewed (cheaper than a new one, and it keeps one reader slot).
 */
fa_int_t
fa_lmdb_read_begin(fa_lmdb_t *lm, MDB_txn **txn)
{
    int  rc;

    for (int tries = 0; tries < 4; tries++) {
        pthread_rwlock_rdlock(&lm->map_lock);
        if (lm->rtxn == NULL) {
            rc = mdb_txn_begin(lm->env, NULL, MDB_RDONLY, &lm->rtxn);
        } else {
            rc = mdb_txn_renew(lm->rtxn);
        }
        if (rc == 0) {
            *txn = lm->rtxn;
            return FA_OK;
        }
        pthread_rwlock_unlock(&lm->map_lock);
        if (rc != MDB_MAP_RESIZED) {
            return fa_lmdb_error(lm, rc, "read transaction");
        }
        if (fa_lmdb_remap(lm) != FA_OK) {
            return FA_ERROR;
        }
    }
    return fa_lmdb_error(lm, MDB_MAP_RESIZED, "read transaction");
}

void
fa_lmdb_read_end(fa_lmdb_t *lm)
{
    mdb_txn_reset(lm->rtxn);
    pthread_rwlock_unlock(&lm->map_lock);
}

/* writer thread only */
fa_int_t
fa_lmdb_write_begin(fa_lmdb_t *lm, MDB_txn **txn)
{
    int  rc;

    for (int tries = 0; tries < 4; tries++) {
        pthread_rwlock_rdlock(&lm->map_lock);
        rc = mdb_txn_begin(lm->env, NULL, 0, txn);
        if (rc == 0) {
            return FA_OK;
        }
        pthread_rwlock_unlock(&lm->map_lock);
        if (rc != MDB_MAP_RESIZED) {
            return fa_lmdb_error(lm, rc, "write transaction");
        }
        if (fa_lmdb_remap(lm) != FA_OK) {
            return FA_ERROR;
        }
    }
    return fa_lmdb_error(lm, MDB_MAP_RESIZED, "write transaction");
}

/* FA_OK, FA_LMDB_RETRY (map full), FA_STORAGE_NOSPACE or FA_ERROR */
fa_int_t
fa_lmdb_write_end(fa_lmdb_t *lm, MDB_txn *txn, int commit)
{
    int  rc = 0;

    if (commit) {
        rc = mdb_txn_commit(txn);          /* frees txn, even when it fails */
    } else {
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&lm->map_lock);
    if (rc == 0) {
        return FA_OK;
    }
    if (rc == MDB_MAP_FULL) {
        return FA_LMDB_RETRY;
    }
    if (rc == ENOSPC || rc == EDQUOT) {
        fa_log_error(FA_LOG_CRIT, lm->log, rc, "lmdb storage \"%s\": commit failed: disk full",
                     lm->path);
        return FA_STORAGE_NOSPACE;
    }
    return fa_lmdb_error(lm, rc, "mdb_txn_commit()");
}

/* how far the map may grow: max_map_size, or what the file system can hold */
static size_t
fa_lmdb_map_limit(fa_lmdb_t *lm)
{
    struct statvfs  fs;
    struct stat     sb;
    char            data[PATH_MAX];

    if (lm->conf->max_map_size) {
        return lm->conf->max_map_size;
    }
    fa_snprintf(data, sizeof(data), "%s/data.mdb", lm->path);
    if (statvfs(lm->path, &fs) == -1 || stat(data, &sb) == -1) {
        return lm->map_size * 2;
    }
    return (size_t) sb.st_size + (size_t) fs.f_bavail * fs.f_frsize;
}

/*
 * Writer thread, between transactions: double the map, up to the limit, or
 * with RESERVE up to an eighth beyond it.  The reserve is for operations
 * that free space: in LMDB even a delete needs fresh pages (copy-on-write),
 * so a map that is full for good would refuse them too.
 */
fa_int_t
fa_lmdb_grow(fa_lmdb_t *lm, int reserve)
{
    size_t       limit, want, was;
    MDB_envinfo  info;
    int          rc;

    pthread_rwlock_wrlock(&lm->map_lock);
    was = lm->map_size;
    limit = fa_lmdb_map_limit(lm);
    limit += reserve ? limit / 8 : 0;
    want = fa_min(was * 2, limit);
    rc = want > was ? mdb_env_set_mapsize(lm->env, want) : 0;
    mdb_env_info(lm->env, &info);
    lm->map_size = info.me_mapsize;
    pthread_rwlock_unlock(&lm->map_lock);

    if (want <= was) {
        fa_log_error(FA_LOG_CRIT, lm->log, 0, "lmdb storage \"%s\": the map is full at %zu "
                     "bytes and cannot grow%s (max_map_size or disk space)", lm->path, was,
                     reserve ? " into its reserve" : "");
        return FA_STORAGE_NOSPACE;
    }
    if (rc != 0) {
        return fa_lmdb_error(lm, rc, "growing the map");
    }
    fa_log_error(FA_LOG_NOTICE, lm->log, 0, "lmdb storage \"%s\": map grown to %zu bytes%s",
                 lm->path, lm->map_size, reserve ? ", into its reserve" : "");
    return FA_OK;
}

/* writer thread: room left in the map, unused pages plus the free list's */
size_t
fa_lmdb_free_bytes(fa_lmdb_t *lm)
{
    MDB_envinfo   info;
    MDB_stat      st;
    MDB_txn      *txn;
    MDB_cursor   *c;
    MDB_val       key, val;
    size_t        pages = 0;

    pthread_rwlock_rdlock(&lm->map_lock);
    mdb_env_info(lm->env, &info);
    mdb_env_stat(lm->env, &st);
    if (info.me_mapsize / st.ms_psize > info.me_last_pgno + 1) {
        pages = info.me_mapsize / st.ms_psize - info.me_last_pgno - 1;
    }
    /* the free list (database 0) can only be read in a read-only transaction;
       each value is a page list whose first word is its length */
    if (mdb_txn_begin(lm->env, NULL, MDB_RDONLY, &txn) == 0) {
        if (mdb_cursor_open(txn, 0, &c) == 0) {
            while (mdb_cursor_get(c, &key, &val, MDB_NEXT) == 0) {
                if (val.mv_size >= sizeof(size_t)) {
                    pages += *(size_t *) val.mv_data;
                }
            }
            mdb_cursor_close(c);
        }
        mdb_txn_abort(txn);
    }
    pthread_rwlock_unlock(&lm->map_lock);
    return pages * st.ms_psize;
}
