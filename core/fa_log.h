/*
 * Error log.  One line per event:
 *
 *   2026/11/22 04:21:17 [error] 1234#0: *1f session text, client: 127.0.0.1, while reading command
 *
 * "*ID" is the session id (unique across the workers of one master), and the
 * tail after the message comes from log->handler, which each subsystem sets to
 * say what it was doing and for whom.  Levels follow nginx.
 */

#ifndef FA_LOG_H
#define FA_LOG_H

#define FA_LOG_EMERG   1
#define FA_LOG_ALERT   2
#define FA_LOG_CRIT    3
#define FA_LOG_ERR     4
#define FA_LOG_WARN    5
#define FA_LOG_NOTICE  6
#define FA_LOG_INFO    7
#define FA_LOG_DEBUG   8

#define FA_LOG_LINE_MAX  2048

typedef size_t (*fa_log_handler_pt)(fa_log_t *log, char *buf, size_t len);

/* an open log file, shared by every fa_log_t that writes to it; reopened on USR1 */
typedef struct {
    int          fd;
    char        *path;          /* NULL for stderr */
} fa_log_file_t;

struct fa_log_s {
    fa_uint_t           level;
    fa_log_file_t      *file;
    uint64_t            session;     /* 0: no session */
    const char         *action;      /* "while ..." */
    fa_log_handler_pt   handler;     /* appends context, may be NULL */
    void               *data;        /* for the handler */
};

extern fa_log_t       fa_log_stderr;  /* before any configuration */
extern fa_uint_t      fa_log_worker;  /* "#N" in every line */

void fa_log_error_core(fa_uint_t level, fa_log_t *log, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define fa_log_error(lvl, lg, err, ...)                                       \
    do { if ((lg)->level >= (fa_uint_t) (lvl))                                \
             fa_log_error_core(lvl, lg, err, __VA_ARGS__); } while (0)

#define fa_log_debug(log, ...)                                                \
    fa_log_error(FA_LOG_DEBUG, log, 0, __VA_ARGS__)

fa_int_t fa_log_level_parse(const fa_str_t *name);   /* FA_ERROR if unknown */
fa_log_file_t *fa_log_file_open(const char *path, fa_log_t *log);
fa_int_t fa_log_file_reopen(fa_log_file_t *file, fa_log_t *log);
void fa_log_file_close(fa_log_file_t *file);

#endif /* FA_LOG_H */
