/*
 * The spool holds a message's body while it comes in, so that hooks can
 * read it at DATA_END and delivery can write it to each destination after
 * routing decided where.  Small bodies (the common case) stay in memory;
 * past FA_SMTP_SPOOL_MEMORY the spool moves to an unnamed temporary file
 * (O_TMPFILE) in smtp_spool_path, so a 50 MB message costs no 50 MB of
 * memory and nothing is left on disk if the worker dies.  It lives in the
 * transaction's pool: RSET or the end of the message frees it.
 */

#include "fa_smtp_int.h"

#define FA_SMTP_SPOOL_MEMORY  (256 * 1024)

struct fa_smtp_spool_s {
    u_char        *mem;
    size_t         mem_len;
    size_t         mem_size;
    int            fd;
    uint64_t       size;
    const fa_str_t *dir;
    fa_log_t      *log;
};

static void
fa_smtp_spool_cleanup(void *data)
{
    fa_smtp_spool_t  *sp = data;

    free(sp->mem);
    sp->mem = NULL;
    if (sp->fd != -1) {
        close(sp->fd);
        sp->fd = -1;
    }
}

fa_smtp_spool_t *
fa_smtp_spool_create(fa_pool_t *pool, const fa_str_t *dir, fa_log_t *log)
{
    fa_smtp_spool_t  *sp = fa_pcalloc(pool, sizeof(*sp));

    if (sp == NULL || fa_pool_cleanup_add(pool, fa_smtp_spool_cleanup, sp) == NULL) {
        return NULL;
    }
    sp->fd = -1;
    sp->dir = dir;
    sp->log = log;
    return sp;
}

static fa_int_t
fa_smtp_spool_full_write(fa_smtp_spool_t *sp, const u_char *p, size_t n)
{
    ssize_t  w;

    while (n) {
        w = write(sp->fd, p, n);
        if (w == -1 && errno == EINTR) {
            continue;
        }
        if (w == -1) {
            fa_log_error(FA_LOG_ERR, sp->log, errno, "smtp: writing the spool in \"%s\" "
                         "failed", (char *) sp->dir->data);
            return FA_ERROR;
        }
        p += w;
        n -= (size_t) w;
    }
    return FA_OK;
}

/* past the memory budget: a file, with what was in memory first */
static fa_int_t
fa_smtp_spool_to_file(fa_smtp_spool_t *sp)
{
    const char  *dir = (const char *) sp->dir->data;

    sp->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (sp->fd == -1 && errno == ENOENT && mkdir(dir, 0750) == 0) {
        sp->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    }
    if (sp->fd == -1) {
        fa_log_error(FA_LOG_ERR, sp->log, errno, "smtp: open(O_TMPFILE) in \"%s\" failed",
                     dir);
        return FA_ERROR;
    }
    if (fa_smtp_spool_full_write(sp, sp->mem, sp->mem_len) != FA_OK) {
        return FA_ERROR;
    }
    free(sp->mem);
    sp->mem = NULL;
    sp->mem_len = sp->mem_size = 0;
    return FA_OK;
}

fa_int_t
fa_smtp_spool_write(fa_smtp_spool_t *sp, const u_char *p, size_t n)
{
    if (n == 0) {
        return FA_OK;
    }
    if (sp->fd == -1 && sp->mem_len + n > FA_SMTP_SPOOL_MEMORY
        && fa_smtp_spool_to_file(sp) != FA_OK)
    {
        return FA_ERROR;
    }
    sp->size += n;
    if (sp->fd != -1) {
        return fa_smtp_spool_full_write(sp, p, n);
    }
    if (sp->mem_len + n > sp->mem_size) {
        size_t size = fa_max(sp->mem_size * 2, fa_max(sp->mem_len + n, (size_t) 4096));
        u_char *m = realloc(sp->mem, fa_min(size, (size_t) FA_SMTP_SPOOL_MEMORY));
        if (m == NULL) {
            return FA_ERROR;
        }
        sp->mem = m;
        sp->mem_size = fa_min(size, (size_t) FA_SMTP_SPOOL_MEMORY);
    }
    memcpy(sp->mem + sp->mem_len, p, n);
    sp->mem_len += n;
    return FA_OK;
}

ssize_t
fa_smtp_spool_read(fa_smtp_spool_t *sp, uint64_t off, u_char *buf, size_t len)
{
    ssize_t  n;

    if (off >= sp->size) {
        return 0;
    }
    len = (size_t) fa_min((uint64_t) len, sp->size - off);
    if (sp->fd == -1) {
        memcpy(buf, sp->mem + off, len);
        return (ssize_t) len;
    }
    do {
        n = pread(sp->fd, buf, len, (off_t) off);
    } while (n == -1 && errno == EINTR);
    return n;
}

uint64_t
fa_smtp_spool_size(fa_smtp_spool_t *sp)
{
    return sp ? sp->size : 0;
}

/*
 * The spool starts with the empty line that ends the header block (so a
 * delivery copies it as is); the body a hook reads starts after it.
 */
static uint64_t
fa_smtp_body_start(fa_smtp_txn_t *t)
{
    return fa_smtp_spool_size(t->spool) >= 2 ? 2 : 0;
}

ssize_t
fa_smtp_body_read(fa_smtp_txn_t *t, uint64_t offset, u_char *buf, size_t len)
{
    return t->spool ? fa_smtp_spool_read(t->spool, offset + fa_smtp_body_start(t), buf, len)
                    : 0;
}

uint64_t
fa_smtp_body_size(fa_smtp_txn_t *t)
{
    return fa_smtp_spool_size(t->spool) - fa_smtp_body_start(t);
}
