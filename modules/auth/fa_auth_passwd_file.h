/*
 * A reader of Dovecot passwd-files, for `facteurctl import passwd-file`.
 *
 * One user per line, fields separated by ':':
 *
 *   user:password:uid:gid:gecos:home:shell:extra_fields
 *
 * Only user and password are required; missing trailing fields are empty,
 * and everything after the seventh ':' is the extra fields, unparsed.
 * user is a local part or "local@domain" (ASCII: an internationalized name
 * is refused, a domain is written in its xn-- form).  password is a stored
 * value with its Dovecot scheme ("{SHA512-CRYPT}$6$...", "$y$...", see
 * fa_auth_password.h); {PLAIN} is refused unless pf->flags has
 * FA_AUTH_PASSWORD_ALLOW_PLAIN.  Blank lines and lines whose first
 * non-blank character is '#' are skipped; a CR before the LF is dropped.
 *
 * The file is streamed through one FA_AUTH_PASSWD_FILE_LINE_MAX buffer, so
 * memory does not grow with it; a longer line is an error, and reading
 * stops after FA_AUTH_PASSWD_FILE_SIZE_MAX bytes or
 * FA_AUTH_PASSWD_FILE_ERRORS_MAX refused lines.  A refused line is reported
 * as "FILE:LINE: message" through pf->error and reading goes on, so one run
 * lists every problem.  The buffer is wiped at the end: it held passwords.
 *
 * Duplicate users are not detected here; that is the importer's business.
 */

#ifndef FA_AUTH_PASSWD_FILE_H
#define FA_AUTH_PASSWD_FILE_H

#include "fa_core.h"
#include "fa_auth_password.h"

#define FA_AUTH_PASSWD_FILE_LINE_MAX    65536               /* newline included */
#define FA_AUTH_PASSWD_FILE_SIZE_MAX    (256 * 1024 * 1024)
#define FA_AUTH_PASSWD_FILE_ERRORS_MAX  100

#define FA_AUTH_PASSWD_FILE_LOCAL_MAX   64      /* RFC 5321 */
#define FA_AUTH_PASSWD_FILE_DOMAIN_MAX  253

/* one accepted line; the strings point into the reader's buffer and are
 * valid only during the entry callback */
typedef struct {
    fa_str_t                 user;
    fa_str_t                 password;  /* the stored value, prefix included */
    fa_str_t                 uid;
    fa_str_t                 gid;
    fa_str_t                 gecos;
    fa_str_t                 home;
    fa_str_t                 shell;
    fa_str_t                 extra;
    fa_auth_password_info_t  info;      /* its scheme; info.weak for MD5-CRYPT */
    fa_uint_t                line;
} fa_auth_passwd_file_entry_t;

typedef struct fa_auth_passwd_file_s  fa_auth_passwd_file_t;

/* FA_OK to go on; anything else stops the read and is what it returns */
typedef fa_int_t (*fa_auth_passwd_file_entry_pt)(fa_auth_passwd_file_t *pf,
    const fa_auth_passwd_file_entry_t *e);
/* one message, "FILE:LINE: text" or "FILE: text", no newline */
typedef void (*fa_auth_passwd_file_error_pt)(fa_auth_passwd_file_t *pf,
    const char *message);

struct fa_auth_passwd_file_s {
    fa_uint_t                      flags;    /* FA_AUTH_PASSWORD_ALLOW_PLAIN */
    fa_auth_passwd_file_entry_pt   entry;    /* may be NULL: check only */
    fa_auth_passwd_file_error_pt   error;    /* required */
    void                          *data;     /* for the callbacks */

    /* set by the reader */
    const char                    *path;     /* as in messages; "-" is "(stdin)" */
    fa_uint_t                      line;     /* the line being handled */
    fa_uint_t                      entries;  /* lines accepted */
    fa_uint_t                      errors;   /* lines refused */
};

/*
 * Read path ("-" for stdin): FA_OK if every line was accepted, FA_ERROR if
 * the file could not be read or a line was refused, or what the entry
 * callback returned when it stopped the read.
 */
fa_int_t fa_auth_passwd_file_read(fa_auth_passwd_file_t *pf, const char *path);

/* one line without its newline: FA_OK and *e, or FA_ERROR and err */
fa_int_t fa_auth_passwd_file_parse(u_char *line, size_t len, fa_uint_t flags,
    fa_auth_passwd_file_entry_t *e, char *err, size_t err_size);

/* report a problem of the current line, so an entry callback's own errors
 * (a duplicate user) read like the parser's; counts it in pf->errors */
void fa_auth_passwd_file_error(fa_auth_passwd_file_t *pf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* FA_AUTH_PASSWD_FILE_H */
