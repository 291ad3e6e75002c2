/*
 * Dovecot passwd-file reader (see fa_auth_passwd_file.h): a streaming line
 * splitter over read(2), a field splitter, and the checks of the user name;
 * the password field is judged by fa_auth_password_check(), the one scheme
 * table of the module.
 */

#include "fa_auth_passwd_file.h"

#define FA_AUTH_PASSWD_FILE_FIELDS  8
#define FA_AUTH_PASSWD_FILE_ERR_MAX 256


/* ---- errors --------------------------------------------------------- */

void
fa_auth_passwd_file_error(fa_auth_passwd_file_t *pf, const char *fmt, ...)
{
    char     msg[FA_LOG_LINE_MAX];
    size_t   n;
    va_list  args;

    if (pf->line) {
        n = fa_snprintf(msg, sizeof(msg), "%s:%lu: ", pf->path, (unsigned long) pf->line);
    } else {
        n = fa_snprintf(msg, sizeof(msg), "%s: ", pf->path);
    }
    va_start(args, fmt);
    fa_vsnprintf(msg + n, sizeof(msg) - n, fmt, args);
    va_end(args);
    pf->errors++;
    pf->error(pf, msg);
}

/* a problem of the whole file rather than of one line */
static fa_int_t
fa_auth_passwd_file_sys_error(fa_auth_passwd_file_t *pf, const char *call, int err)
{
    pf->line = 0;
    fa_auth_passwd_file_error(pf, "%s failed (%s)", call, strerror(err));
    return FA_ERROR;
}

/* a parse error, formatted into err; always FA_ERROR */
static fa_int_t
fa_auth_passwd_file_fail(char *err, size_t size, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    fa_vsnprintf(err, size, fmt, args);
    va_end(args);
    return FA_ERROR;
}

/* name the byte without echoing a control character to the terminal */
static fa_int_t
fa_auth_passwd_file_bad_char(u_char c, size_t column, const char *where, char *err,
    size_t size)
{
    if (c > 0x20 && c < 0x7f) {
        return fa_auth_passwd_file_fail(err, size,
                   "user name: character '%c' (column %zu) is not allowed in %s",
                   c, column, where);
    }
    return fa_auth_passwd_file_fail(err, size,
               "user name: byte 0x%02x (column %zu) is not allowed in %s",
               c, column, where);
}


/* ---- the user name ---------------------------------------------------- */

/* RFC 5322 atext: what a dot-atom local part is made of, besides '.' */
static int
fa_auth_passwd_file_atext(u_char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static fa_int_t
fa_auth_passwd_file_check_local(const u_char *p, size_t len, char *err, size_t size)
{
    if (len == 0) {
        return fa_auth_passwd_file_fail(err, size, "user name: empty local part");
    }
    if (len > FA_AUTH_PASSWD_FILE_LOCAL_MAX) {
        return fa_auth_passwd_file_fail(err, size,
                   "user name: local part longer than %d bytes", FA_AUTH_PASSWD_FILE_LOCAL_MAX);
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '.' && (i == 0 || i == len - 1 || p[i - 1] == '.')) {
            return fa_auth_passwd_file_fail(err, size,
                       "user name: misplaced '.' (column %zu): a local part cannot "
                       "start or end with '.' or hold \"..\"", i + 1);
        }
        if (p[i] != '.' && !fa_auth_passwd_file_atext(p[i])) {
            return fa_auth_passwd_file_bad_char(p[i], i + 1, "an email local part", err, size);
        }
    }
    return FA_OK;
}

/* letters, digits and '-' in labels of 1 to 63 bytes; col is p's column */
static fa_int_t
fa_auth_passwd_file_check_domain(const u_char *p, size_t len, size_t col, char *err,
    size_t size)
{
    size_t  label = 0;

    if (len == 0 || len > FA_AUTH_PASSWD_FILE_DOMAIN_MAX) {
        return fa_auth_passwd_file_fail(err, size,
                   "user name: the domain after '@' must have 1 to %d bytes",
                   FA_AUTH_PASSWD_FILE_DOMAIN_MAX);
    }
    for (size_t i = 0; i <= len; i++) {
        u_char  c = i < len ? p[i] : '.';

        if (c == '.') {
            if (label == 0 || p[i - 1] == '-') {
                return fa_auth_passwd_file_fail(err, size,
                           "user name: empty domain label, or one ending with '-' "
                           "(column %zu)", col + i - (label ? 1 : 0));
            }
            label = 0;
            continue;
        }
        if (c == '-' && label == 0) {
            return fa_auth_passwd_file_fail(err, size,
                       "user name: a domain label cannot start with '-' (column %zu)", col + i);
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-'))
        {
            return fa_auth_passwd_file_bad_char(c, col + i, "a domain name", err, size);
        }
        if (++label > 63) {
            return fa_auth_passwd_file_fail(err, size,
                       "user name: domain label longer than 63 bytes (column %zu)", col + i);
        }
    }
    return FA_OK;
}

static fa_int_t
fa_auth_passwd_file_check_user(const fa_str_t *user, char *err, size_t size)
{
    u_char  *at;
    size_t   local;

    if (user->len == 0) {
        return fa_auth_passwd_file_fail(err, size, "empty user name");
    }
    at = memchr(user->data, '@', user->len);
    local = at ? (size_t) (at - user->data) : user->len;
    if (fa_auth_passwd_file_check_local(user->data, local, err, size) != FA_OK) {
        return FA_ERROR;
    }
    if (at == NULL) {
        return FA_OK;
    }
    return fa_auth_passwd_file_check_domain(at + 1, user->len - local - 1, local + 2,
                                            err, size);
}


/* ---- one line ------------------------------------------------------- */

/* cut at ':' into up to n fields, the last one taking the rest; count */
static fa_uint_t
fa_auth_passwd_file_split(u_char *p, size_t len, fa_str_t **fields, fa_uint_t n)
{
    u_char     *end = p + len, *colon;
    fa_uint_t   i;

    for (i = 0; i < n; i++) {
        colon = (i < n - 1) ? memchr(p, ':', (size_t) (end - p)) : NULL;
        fields[i]->data = p;
        fields[i]->len = (size_t) ((colon ? colon : end) - p);
        if (colon == NULL) {
            return i + 1;
        }
        p = colon + 1;
    }
    return n;
}

fa_int_t
fa_auth_passwd_file_parse(u_char *line, size_t len, fa_uint_t flags,
    fa_auth_passwd_file_entry_t *e, char *err, size_t err_size)
{
    fa_str_t  *fields[FA_AUTH_PASSWD_FILE_FIELDS] = {
        &e->user, &e->password, &e->uid, &e->gid, &e->gecos, &e->home, &e->shell, &e->extra
    };

    memset(e, 0, sizeof(*e));
    if (fa_auth_passwd_file_split(line, len, fields, FA_AUTH_PASSWD_FILE_FIELDS) < 2) {
        return fa_auth_passwd_file_fail(err, err_size, "missing password field");
    }
    if (fa_auth_passwd_file_check_user(&e->user, err, err_size) != FA_OK) {
        return FA_ERROR;
    }
    if (e->password.len == 0) {
        return fa_auth_passwd_file_fail(err, err_size, "empty password field");
    }
    return fa_auth_password_check((const char *) e->password.data, e->password.len, flags,
                                  &e->info, err, err_size);
}

static int
fa_auth_passwd_file_skipped(const u_char *p, size_t len)
{
    size_t  i = 0;

    while (i < len && (p[i] == ' ' || p[i] == '\t')) {
        i++;
    }
    return i == len || p[i] == '#';
}

static fa_int_t
fa_auth_passwd_file_line(fa_auth_passwd_file_t *pf, u_char *p, size_t len)
{
    fa_auth_passwd_file_entry_t  e;
    char                         err[FA_AUTH_PASSWD_FILE_ERR_MAX];

    if (len > 0 && p[len - 1] == '\r') {
        len--;
    }
    if (fa_auth_passwd_file_skipped(p, len)) {
        return FA_OK;
    }
    if (fa_auth_passwd_file_parse(p, len, pf->flags, &e, err, sizeof(err)) != FA_OK) {
        fa_auth_passwd_file_error(pf, "%s", err);
        return FA_OK;
    }
    e.line = pf->line;
    pf->entries++;
    return pf->entry ? pf->entry(pf, &e) : FA_OK;
}


/* ---- the file ------------------------------------------------------- */

static int
fa_auth_passwd_file_too_many(fa_auth_passwd_file_t *pf)
{
    if (pf->errors < FA_AUTH_PASSWD_FILE_ERRORS_MAX) {
        return 0;
    }
    pf->line = 0;
    fa_auth_passwd_file_error(pf, "too many errors, stopped reading");
    return 1;
}

/* hand over every complete line of buf[0..*last) and keep the tail */
static fa_int_t
fa_auth_passwd_file_lines(fa_auth_passwd_file_t *pf, u_char *buf, size_t *last,
    int *skipping)
{
    u_char    *p = buf, *end = buf + *last, *nl;
    fa_int_t   rc;

    while ((nl = memchr(p, '\n', (size_t) (end - p))) != NULL) {
        /* the end of an over-long line already reported is dropped */
        rc = *skipping ? FA_OK : fa_auth_passwd_file_line(pf, p, (size_t) (nl - p));
        *skipping = 0;
        if (rc != FA_OK) {
            return rc;
        }
        if (fa_auth_passwd_file_too_many(pf)) {
            return FA_ERROR;
        }
        pf->line++;
        p = nl + 1;
    }
    *last = (size_t) (end - p);
    memmove(buf, p, *last);
    if (*last == FA_AUTH_PASSWD_FILE_LINE_MAX) {
        if (!*skipping) {
            fa_auth_passwd_file_error(pf, "line longer than %d bytes",
                                      FA_AUTH_PASSWD_FILE_LINE_MAX - 1);
        }
        *skipping = 1;
        *last = 0;
        if (fa_auth_passwd_file_too_many(pf)) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_auth_passwd_file_stream(fa_auth_passwd_file_t *pf, int fd, u_char *buf)
{
    size_t    last = 0, total = 0;
    ssize_t   n;
    int       skipping = 0;
    fa_int_t  rc;

    pf->line = 1;
    for ( ;; ) {
        n = read(fd, buf + last, FA_AUTH_PASSWD_FILE_LINE_MAX - last);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1) {
            return fa_auth_passwd_file_sys_error(pf, "read()", errno);
        }
        if (n == 0) {
            break;
        }
        total += (size_t) n;
        if (total > FA_AUTH_PASSWD_FILE_SIZE_MAX) {
            pf->line = 0;
            fa_auth_passwd_file_error(pf, "larger than %d MB, stopped reading",
                                      FA_AUTH_PASSWD_FILE_SIZE_MAX / (1024 * 1024));
            return FA_ERROR;
        }
        last += (size_t) n;
        rc = fa_auth_passwd_file_lines(pf, buf, &last, &skipping);
        if (rc != FA_OK) {
            return rc;
        }
    }
    /* a last line without its newline */
    return (last > 0 && !skipping) ? fa_auth_passwd_file_line(pf, buf, last) : FA_OK;
}

fa_int_t
fa_auth_passwd_file_read(fa_auth_passwd_file_t *pf, const char *path)
{
    int        fd, use_stdin = (strcmp(path, "-") == 0);
    u_char    *buf;
    fa_int_t   rc;

    pf->path = use_stdin ? "(stdin)" : path;
    pf->line = 0;
    pf->entries = 0;
    pf->errors = 0;

    fd = use_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return fa_auth_passwd_file_sys_error(pf, "open()", errno);
    }
    buf = malloc(FA_AUTH_PASSWD_FILE_LINE_MAX);
    if (buf == NULL) {
        rc = fa_auth_passwd_file_sys_error(pf, "malloc()", ENOMEM);
    } else {
        rc = fa_auth_passwd_file_stream(pf, fd, buf);
        explicit_bzero(buf, FA_AUTH_PASSWD_FILE_LINE_MAX);
        free(buf);
    }
    if (!use_stdin) {
        close(fd);
    }
    return (rc == FA_OK && pf->errors) ? FA_ERROR : rc;
}
