/*
 * The error log.  Lines are formatted into a stack buffer and written with a
 * single write(2), so lines from several workers sharing one O_APPEND file
 * never interleave.  A line that does not fit is cut, never overflowed.
 */

#include "fa_core.h"

static fa_log_file_t  fa_log_stderr_file = { STDERR_FILENO, NULL };

fa_log_t   fa_log_stderr = { FA_LOG_NOTICE, &fa_log_stderr_file, 0, NULL, NULL, NULL };
fa_uint_t  fa_log_worker;

static const char  *fa_log_levels[] = {
    "", "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"
};

void
fa_log_error_core(fa_uint_t level, fa_log_t *log, int err, const char *fmt, ...)
{
    char      buf[FA_LOG_LINE_MAX];
    size_t    n, room = sizeof(buf) - 1;     /* one byte kept for '\n' */
    va_list   args;
    ssize_t   written;

    fa_time_log_format(buf, fa_time_now ? fa_time_now : time(NULL));
    n = strlen(buf);
    n += fa_snprintf(buf + n, room - n, " [%s] %d#%lu: ",
                     fa_log_levels[level < 9 ? level : 8], (int) getpid(),
                     (unsigned long) fa_log_worker);
    if (log->session) {
        n += fa_snprintf(buf + n, room - n, "*%" PRIu64 " ", log->session);
    }
    va_start(args, fmt);
    n += fa_vsnprintf(buf + n, room - n, fmt, args);
    va_end(args);
    if (err) {
        n += fa_snprintf(buf + n, room - n, " (%d: %s)", err, strerror(err));
    }
    if (log->handler && n < room) {
        n += log->handler(log, buf + n, room - n);
    }
    buf[n++] = '\n';

    do {
        written = write(log->file ? log->file->fd : STDERR_FILENO, buf, n);
    } while (written < 0 && errno == EINTR);
}

fa_int_t
fa_log_level_parse(const fa_str_t *name)
{
    for (fa_uint_t i = 1; i < fa_nelems(fa_log_levels); i++) {
        if (fa_str_casecmp(name, fa_log_levels[i]) == 0) {
            return (fa_int_t) i;
        }
    }
    return FA_ERROR;
}

static int
fa_log_open_fd(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

fa_log_file_t *
fa_log_file_open(const char *path, fa_log_t *log)
{
    fa_log_file_t  *f;

    if (path == NULL || strcmp(path, "stderr") == 0) {
        return &fa_log_stderr_file;
    }
    f = fa_calloc(sizeof(fa_log_file_t) + strlen(path) + 1, log);
    if (f == NULL) {
        return NULL;
    }
    f->path = (char *) (f + 1);
    strcpy(f->path, path);
    f->fd = fa_log_open_fd(path);
    if (f->fd == -1) {
        fa_log_error(FA_LOG_EMERG, log, errno, "open() \"%s\" failed", path);
        free(f);
        return NULL;
    }
    return f;
}

/* USR1: the old file may have been moved away by logrotate */
fa_int_t
fa_log_file_reopen(fa_log_file_t *file, fa_log_t *log)
{
    int  fd;

    if (file == NULL || file->path == NULL) {
        return FA_OK;
    }
    fd = fa_log_open_fd(file->path);
    if (fd == -1) {
        fa_log_error(FA_LOG_ALERT, log, errno, "reopen \"%s\" failed", file->path);
        return FA_ERROR;
    }
    if (dup2(fd, file->fd) == -1) {
        fa_log_error(FA_LOG_ALERT, log, errno, "dup2() for \"%s\" failed", file->path);
        close(fd);
        return FA_ERROR;
    }
    close(fd);
    return FA_OK;
}

void
fa_log_file_close(fa_log_file_t *file)
{
    if (file == NULL || file == &fa_log_stderr_file) {
        return;
    }
    close(file->fd);
    free(file);
}
