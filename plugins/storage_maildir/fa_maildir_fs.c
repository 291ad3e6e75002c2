/*
 * Files made durable, and dotlocks.
 *
 * A dotlock is the file "NAME.lock" created with O_EXCL; its content is
 * "pid:host".  That is the lock Dovecot takes on dovecot-uidlist, so a
 * Dovecot and a Facteur sharing a Maildir exclude each other.  A lock
 * older than two minutes, or held by a process of this host that is gone,
 * is stale and broken, as Dovecot does.
 */

#include "fa_maildir.h"
#include <ftw.h>
#include <sys/random.h>

static fa_int_t
fa_maildir_path_of(char *buf, size_t size, const char *dir, const char *file,
    const char *suffix)
{
    int  n = snprintf(buf, size, "%s/%s%s", dir, file, suffix);

    return (n < 0 || (size_t) n >= size) ? FA_STORAGE_INVALID : FA_OK;
}

/* a lock whose owner is surely gone: too old, or a dead process of this host */
static int
fa_maildir_lock_stale(const char *path, ino_t *ino)
{
    char         buf[256], host[128], *colon;
    struct stat  sb;
    ssize_t      n;
    long         pid;
    int          fd;

    if (stat(path, &sb) != 0) {
        return 0;                    /* released meanwhile: just try again */
    }
    *ino = sb.st_ino;
    if (time(NULL) - sb.st_mtime > FA_MAILDIR_LOCK_STALE) {
        return 1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return 0;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0 || gethostname(host, sizeof(host)) != 0) {
        return 0;                    /* empty: its owner is still writing it */
    }
    buf[n] = '\0';
    host[sizeof(host) - 1] = '\0';
    pid = strtol(buf, NULL, 10);
    colon = strchr(buf, ':');
    return pid > 0 && colon && strcmp(colon + 1, host) == 0
           && kill((pid_t) pid, 0) == -1 && errno == ESRCH;
}

/* FA_OK (locked), FA_BUSY (someone else holds it) or an error */
static fa_int_t
fa_maildir_lock_once(fa_maildir_t *md, const char *path)
{
    char         owner[160], host[128];
    struct stat  sb;
    ino_t        ino = 0;
    int          fd, n;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1) {
        if (errno != EEXIST) {
            return fa_maildir_sys_error(md, errno, "open() of the dotlock", path);
        }
        /* the same file as judged stale, not a fresh lock taken meanwhile */
        if (fa_maildir_lock_stale(path, &ino) && stat(path, &sb) == 0 && sb.st_ino == ino) {
            fa_log_error(FA_LOG_WARN, md->log, 0, "maildir: breaking stale lock \"%s\"", path);
            unlink(path);
        }
        return FA_BUSY;
    }
    if (gethostname(host, sizeof(host)) != 0) {
        strcpy(host, "localhost");
    }
    host[sizeof(host) - 1] = '\0';
    n = snprintf(owner, sizeof(owner), "%ld:%s", (long) getpid(), host);
    if (n > 0 && write(fd, owner, (size_t) n) != n) {
        fa_log_error(FA_LOG_WARN, md->log, errno, "maildir: write() of \"%s\" failed", path);
    }
    close(fd);
    return FA_OK;
}

fa_int_t
fa_maildir_trylock(fa_maildir_t *md, const char *dir, const char *file)
{
    char  path[PATH_MAX];

    if (fa_maildir_path_of(path, sizeof(path), dir, file, ".lock") != FA_OK) {
        return FA_STORAGE_INVALID;
    }
    return fa_maildir_lock_once(md, path);
}

/*
 * Wait for the lock up to lock_timeout.  The wait blocks the worker: the
 * lock is held only for the few file operations of one change, so this is
 * milliseconds unless a writer died, and a dead writer's lock is broken.
 */
fa_int_t
fa_maildir_lock(fa_maildir_t *md, const char *dir, const char *file)
{
    char             path[PATH_MAX];
    struct timespec  pause = { 0, 1000000 };
    fa_msec_t        waited = 0;
    fa_int_t         rc;

    if (fa_maildir_path_of(path, sizeof(path), dir, file, ".lock") != FA_OK) {
        return FA_STORAGE_INVALID;
    }
    for ( ;; ) {
        rc = fa_maildir_lock_once(md, path);
        if (rc != FA_BUSY) {
            return rc;
        }
        if (waited >= md->conf->lock_timeout) {
            fa_log_error(FA_LOG_ERR, md->log, 0, "maildir: \"%s\" still locked after "
                         "%ld ms", path, (long) waited);
            return FA_STORAGE_TEMPFAIL;
        }
        nanosleep(&pause, NULL);
        waited += pause.tv_nsec / 1000000;
        if (pause.tv_nsec < 32000000) {
            pause.tv_nsec *= 2;
        }
    }
}

void
fa_maildir_unlock(fa_maildir_t *md, const char *dir, const char *file)
{
    char  path[PATH_MAX];

    if (fa_maildir_path_of(path, sizeof(path), dir, file, ".lock") == FA_OK
        && unlink(path) != 0)
    {
        fa_log_error(FA_LOG_ALERT, md->log, errno, "maildir: unlink() of \"%s\" failed",
                     path);
    }
}

/* a rename or a new entry is durable only once its directory is synced */
fa_int_t
fa_maildir_fsync_dir(fa_maildir_t *md, const char *dir)
{
    int  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd == -1) {
        return fa_maildir_sys_error(md, errno, "open()", dir);
    }
    if (fsync(fd) != 0) {
        int err = errno;
        close(fd);
        return fa_maildir_sys_error(md, err, "fsync()", dir);
    }
    close(fd);
    return FA_OK;
}

static fa_int_t
fa_maildir_write_all(fa_maildir_t *md, int fd, const u_char *data, size_t len,
    const char *path)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fa_maildir_sys_error(md, errno, "write()", path);
        }
        data += n;
        len -= (size_t) n;
    }
    return FA_OK;
}

/* write NAME.tmp, sync it, rename it over NAME, sync the directory; under a lock */
fa_int_t
fa_maildir_replace_file(fa_maildir_t *md, const char *dir, const char *file,
    const u_char *data, size_t len)
{
    char      tmp[PATH_MAX], path[PATH_MAX];
    fa_int_t  rc;
    int       fd;

    if (fa_maildir_path_of(tmp, sizeof(tmp), dir, file, ".tmp") != FA_OK
        || fa_maildir_path_of(path, sizeof(path), dir, file, "") != FA_OK)
    {
        return FA_STORAGE_INVALID;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd == -1) {
        return fa_maildir_sys_error(md, errno, "open()", tmp);
    }
    rc = fa_maildir_write_all(md, fd, data, len, tmp);
    if (rc == FA_OK && fdatasync(fd) != 0) {
        rc = fa_maildir_sys_error(md, errno, "fdatasync()", tmp);
    }
    close(fd);
    if (rc == FA_OK && rename(tmp, path) != 0) {
        rc = fa_maildir_sys_error(md, errno, "rename()", tmp);
    }
    if (rc != FA_OK) {
        unlink(tmp);
        return rc;
    }
    return fa_maildir_fsync_dir(md, dir);
}

/* add to the end of NAME (made when create is set), durably, in one write() */
fa_int_t
fa_maildir_append_file(fa_maildir_t *md, const char *dir, const char *file,
    const u_char *data, size_t len, int create)
{
    char      path[PATH_MAX];
    fa_int_t  rc;
    int       fd;

    if (fa_maildir_path_of(path, sizeof(path), dir, file, "") != FA_OK) {
        return FA_STORAGE_INVALID;
    }
    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (fd == -1) {
        return errno == ENOENT ? FA_STORAGE_NOTFOUND
                               : fa_maildir_sys_error(md, errno, "open()", path);
    }
    rc = fa_maildir_write_all(md, fd, data, len, path);
    if (rc == FA_OK && fdatasync(fd) != 0) {
        rc = fa_maildir_sys_error(md, errno, "fdatasync()", path);
    }
    close(fd);
    return rc;
}

/* the whole file, NUL-terminated; FA_DECLINED when it does not exist */
fa_int_t
fa_maildir_read_file(fa_maildir_t *md, fa_pool_t *pool, const char *path, fa_str_t *out)
{
    struct stat  sb;
    size_t       got = 0;
    ssize_t      n;
    int          fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd == -1) {
        return errno == ENOENT ? FA_DECLINED : fa_maildir_sys_error(md, errno, "open()", path);
    }
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return fa_maildir_sys_error(md, errno, "fstat()", path);
    }
    out->data = fa_pnalloc(pool, (size_t) sb.st_size + 1);
    if (out->data == NULL) {
        close(fd);
        return FA_ERROR;
    }
    while (got < (size_t) sb.st_size) {
        n = read(fd, out->data + got, (size_t) sb.st_size - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;               /* shrank under us: what we have is a prefix */
        }
        got += (size_t) n;
    }
    close(fd);
    out->len = got;
    out->data[got] = '\0';
    return FA_OK;
}

static fa_int_t
fa_maildir_mkdir(fa_maildir_t *md, const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return fa_maildir_sys_error(md, errno, "mkdir()", path);
    }
    return FA_OK;
}

/*
 * mkdir -p DIR; with kind 1 a Maildir (tmp, new, then cur: cur/ present
 * means complete), with kind 2 a Maildir++ folder (plus "maildirfolder").
 */
fa_int_t
fa_maildir_mkdirs(fa_maildir_t *md, const char *dir, int kind)
{
    static const char  *subs[] = { "tmp", "new", "cur" };
    char                path[PATH_MAX];
    fa_int_t            rc;
    size_t              n = strlen(dir);

    if (n + sizeof("/maildirfolder") > sizeof(path)) {
        return FA_STORAGE_INVALID;
    }
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            rc = fa_maildir_mkdir(md, path);
            *p = '/';
            if (rc != FA_OK) {
                return rc;
            }
        }
    }
    if ((rc = fa_maildir_mkdir(md, path)) != FA_OK || kind == 0) {
        return rc;
    }
    if (kind == 2) {
        fa_snprintf(path + n, sizeof(path) - n, "/maildirfolder");
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd == -1) {
            return fa_maildir_sys_error(md, errno, "open()", path);
        }
        close(fd);
    }
    for (size_t i = 0; i < fa_nelems(subs); i++) {
        fa_snprintf(path + n, sizeof(path) - n, "/%s", subs[i]);
        if ((rc = fa_maildir_mkdir(md, path)) != FA_OK) {
            return rc;
        }
    }
    path[n] = '\0';
    return fa_maildir_fsync_dir(md, path);
}

static int
fa_maildir_remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void) sb;
    (void) ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) == 0 || errno == ENOENT ? 0 : -1;
}

/* rm -rf: a deleted folder was renamed aside first, so nobody sees it half gone */
fa_int_t
fa_maildir_remove_tree(fa_maildir_t *md, const char *path)
{
    if (nftw(path, fa_maildir_remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        return fa_maildir_sys_error(md, errno, "removing", path);
    }
    return FA_OK;
}

/* room for n more bytes (and a NUL); sets failed when out of memory */
static int
fa_maildir_buf_room(fa_maildir_buf_t *b, size_t n)
{
    size_t  size = b->size ? b->size : 4096;
    char   *p;

    if (b->failed) {
        return 0;
    }
    while (size < b->n + n + 1) {
        size *= 2;
    }
    if (size != b->size) {
        p = realloc(b->p, size);
        if (p == NULL) {
            b->failed = 1;
            return 0;
        }
        b->p = p;
        b->size = size;
    }
    return 1;
}

/* a growable buffer on malloc, for what is written in one write(); free(b.p) */
void
fa_maildir_buf_printf(fa_maildir_buf_t *b, const char *fmt, ...)
{
    va_list  args;
    int      n;

    va_start(args, fmt);
    n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    if (n < 0 || !fa_maildir_buf_room(b, (size_t) n)) {
        b->failed = 1;
        return;
    }
    va_start(args, fmt);
    vsnprintf(b->p + b->n, b->size - b->n, fmt, args);
    va_end(args);
    b->n += (size_t) n;
}

void
fa_maildir_buf_add(fa_maildir_buf_t *b, const void *data, size_t len)
{
    if (len && fa_maildir_buf_room(b, len)) {
        memcpy(b->p + b->n, data, len);
        b->n += len;
    }
}

/* bytes of randomness as 2 * bytes hex digits (and a NUL) */
fa_int_t
fa_maildir_random_hex(char *buf, size_t bytes)
{
    u_char  raw[32];

    if (bytes > sizeof(raw) || getrandom(raw, bytes, 0) != (ssize_t) bytes) {
        return FA_ERROR;
    }
    for (size_t i = 0; i < bytes; i++) {
        fa_snprintf(buf + 2 * i, 3, "%02x", raw[i]);
    }
    return FA_OK;
}
