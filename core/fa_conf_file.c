/*
 * The configuration parser (the language and the scope model are described
 * in fa_conf_file.h).
 *
 * A file is read whole into memory and cut into directives by a small
 * tokenizer; each directive goes to the module command that declares it for
 * the current scope kind.  Blocks recurse through fa_conf_block() and
 * includes through fa_conf_parse_file(), both counted in cf->depth and
 * bounded by FA_CONF_MAX_DEPTH, and every word is bounded by
 * FA_CONF_MAX_TOKEN, so no input can exhaust the stack or the memory.
 *
 * The state of the file being read lives in an fa_conf_buf_t hung on cf:
 * that is what lets a module's block setter call back into the parser
 * (fa_conf_block) without knowing where the text comes from.
 */

#include "fa_core.h"
#include <glob.h>

#define FA_CONF_ERROR_MAX  2048

/* what ended a directive, or what came instead of one */
typedef enum {
    FA_CONF_TOK_SEMI,           /* name args ; */
    FA_CONF_TOK_BLOCK,          /* name args { */
    FA_CONF_TOK_CLOSE,          /* } */
    FA_CONF_TOK_EOF,
    FA_CONF_TOK_ERROR
} fa_conf_tok_e;

struct fa_conf_buf_s {
    u_char       *start;
    u_char       *pos;
    u_char       *end;
    fa_uint_t     line;
    unsigned      block_pending:1;  /* the directive ended with "{" and no
                                       fa_conf_block() has consumed it yet */
};

static fa_int_t fa_conf_parse(fa_conf_t *cf, int in_block);


/* ---- errors ---------------------------------------------------------- */

static size_t
fa_conf_location(fa_conf_t *cf, char *buf, size_t size)
{
    if (cf->file == NULL) {
        return 0;       /* the main file itself could not be opened */
    }
    if (cf->line == 0) {
        return fa_snprintf(buf, size, "%s: ", cf->file);
    }
    return fa_snprintf(buf, size, "%s:%lu: ", cf->file, (unsigned long) cf->line);
}

char *
fa_conf_error(fa_conf_t *cf, const char *fmt, ...)
{
    char     buf[FA_CONF_ERROR_MAX];
    size_t   n;
    va_list  args;

    /*
     * The first error is the precise one: a block setter that wraps a
     * failed fa_conf_block() must not replace the inner message.
     */
    if (cf->error) {
        return FA_CONF_ERROR;
    }
    n = fa_conf_location(cf, buf, sizeof(buf));
    va_start(args, fmt);
    fa_vsnprintf(buf + n, sizeof(buf) - n, fmt, args);
    va_end(args);

    cf->error = fa_pstrcat(cf->pool, buf, "");
    if (cf->error == NULL) {
        cf->error = "out of memory while reporting a configuration error";
    }
    return FA_CONF_ERROR;
}

void
fa_conf_warn(fa_conf_t *cf, const char *fmt, ...)
{
    char      buf[FA_CONF_ERROR_MAX];
    size_t    n;
    va_list   args;
    fa_log_t *log = cf->log ? cf->log : &fa_log_stderr;

    n = fa_conf_location(cf, buf, sizeof(buf));
    va_start(args, fmt);
    fa_vsnprintf(buf + n, sizeof(buf) - n, fmt, args);
    va_end(args);
    fa_log_error(FA_LOG_WARN, log, 0, "%s", buf);
}

static fa_int_t
fa_conf_fail_at(fa_conf_t *cf, fa_uint_t line, const char *msg)
{
    cf->line = line;
    fa_conf_error(cf, "%s", msg);
    return FA_ERROR;
}


/* ---- tokenizer ------------------------------------------------------- */

static int
fa_conf_is_space(u_char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* skip blanks and comments between words, counting lines */
static void
fa_conf_skip_space(fa_conf_buf_t *b)
{
    while (b->pos < b->end) {
        if (*b->pos == '#') {
            while (b->pos < b->end && *b->pos != '\n') {
                b->pos++;
            }
            continue;
        }
        if (!fa_conf_is_space(*b->pos)) {
            return;
        }
        if (*b->pos == '\n') {
            b->line++;
        }
        b->pos++;
    }
}

/* the last line with text on it: where "unexpected end of file" points */
static fa_uint_t
fa_conf_last_line(fa_conf_buf_t *b)
{
    u_char     *p = b->end;
    fa_uint_t   line = 1;

    /* the line of the last non-blank byte: where a reader would look */
    while (p > b->start && (p[-1] == '\n' || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\r')) {
        p--;
    }
    for (u_char *q = b->start; q < p; q++) {
        line += (*q == '\n');
    }
    return line;
}

/*
 * Only the quotes, the backslash and \n \r \t are escapes.  Any other "\x"
 * is kept as written, so a regular expression such as "^\d+$" needs no
 * doubled backslashes.  Returns the number of bytes written (1 or 2).
 */
static size_t
fa_conf_unescape(u_char ch, u_char *out)
{
    switch (ch) {
    case '"':
    case '\'':
    case '\\':
        out[0] = ch;
        return 1;
    case 'n':
        out[0] = '\n';
        return 1;
    case 'r':
        out[0] = '\r';
        return 1;
    case 't':
        out[0] = '\t';
        return 1;
    default:
        out[0] = '\\';
        out[1] = ch;
        return 2;
    }
}

/* as in nginx, a closing quote must be followed by a blank, ";" or "{" */
static fa_int_t
fa_conf_after_quote(fa_conf_t *cf, fa_conf_buf_t *b)
{
    u_char  ch;

    if (b->pos == b->end) {
        return FA_OK;   /* the caller reports the missing ";" */
    }
    ch = *b->pos;
    if (fa_conf_is_space(ch) || ch == ';' || ch == '{') {
        return FA_OK;
    }
    cf->line = b->line;
    fa_conf_error(cf, "unexpected \"%c\"", ch);
    return FA_ERROR;
}

static fa_int_t
fa_conf_save_word(fa_conf_t *cf, const u_char *w, size_t len, fa_str_t *word)
{
    word->data = fa_pnalloc(cf->pool, len + 1);
    if (word->data == NULL) {
        fa_conf_error(cf, "out of memory");
        return FA_ERROR;
    }
    memcpy(word->data, w, len);
    word->data[len] = '\0';
    word->len = len;
    return FA_OK;
}

/*
 * One word or quoted string at b->pos, unescaped, into a NUL-terminated pool
 * copy.  A quote opens a string only at the start of a word (a"b" is the
 * word a"b", as in nginx), and inside a plain word "}" and "#" are ordinary
 * characters; only a blank, ";" or "{" ends it.
 */
static fa_int_t
fa_conf_read_word(fa_conf_t *cf, fa_conf_buf_t *b, fa_str_t *word)
{
    u_char     w[FA_CONF_MAX_TOKEN + 2];   /* +2: an escape may write two */
    u_char     ch, quote = 0;
    size_t     len = 0;
    fa_uint_t  start_line = b->line;

    if (*b->pos == '"' || *b->pos == '\'') {
        quote = *b->pos++;
    }
    for ( ;; ) {
        if (b->pos == b->end) {
            if (quote) {
                return fa_conf_fail_at(cf, start_line, "unterminated quoted string");
            }
            break;
        }
        ch = *b->pos;
        if (quote && ch == quote) {
            b->pos++;
            if (fa_conf_after_quote(cf, b) != FA_OK) {
                return FA_ERROR;
            }
            break;
        }
        if (!quote && (fa_conf_is_space(ch) || ch == ';' || ch == '{')) {
            break;
        }
        if (len >= FA_CONF_MAX_TOKEN) {
            len++;              /* one more byte than allowed: too long */
            break;
        }
        b->pos++;
        if (ch == '\\' && b->pos < b->end) {
            ch = *b->pos++;
            b->line += (ch == '\n');
            len += fa_conf_unescape(ch, w + len);
            continue;
        }
        b->line += (ch == '\n');
        w[len++] = ch;
    }
    if (len > FA_CONF_MAX_TOKEN) {
        cf->line = start_line;
        fa_conf_error(cf, "too long parameter \"%.32s...\" (at most %d bytes)",
                      (char *) w, FA_CONF_MAX_TOKEN);
        return FA_ERROR;
    }
    return fa_conf_save_word(cf, w, len, word);
}

static fa_conf_tok_e
fa_conf_read_end(fa_conf_t *cf, fa_conf_buf_t *b, fa_uint_t nargs)
{
    u_char  ch = *b->pos;

    /* ";" and "{" end a directive, so need one; "}" must not cut one short */
    if (ch == '}' ? nargs != 0 : nargs == 0) {
        cf->line = b->line;
        fa_conf_error(cf, "unexpected \"%c\"", ch);
        return FA_CONF_TOK_ERROR;
    }
    b->pos++;
    return ch == ';' ? FA_CONF_TOK_SEMI
         : ch == '{' ? FA_CONF_TOK_BLOCK : FA_CONF_TOK_CLOSE;
}

/*
 * Read the words of one directive into args and say what ended it.  Sets
 * cf->line to the line of the directive's name.
 */
static fa_conf_tok_e
fa_conf_read_directive(fa_conf_t *cf, fa_conf_buf_t *b, fa_str_t *args,
    fa_uint_t *nargs)
{
    u_char  ch;

    *nargs = 0;
    for ( ;; ) {
        fa_conf_skip_space(b);
        if (b->pos == b->end) {
            if (*nargs == 0) {
                return FA_CONF_TOK_EOF;
            }
            fa_conf_fail_at(cf, fa_conf_last_line(b),
                            "unexpected end of file, expecting \";\" or \"}\"");
            return FA_CONF_TOK_ERROR;
        }
        ch = *b->pos;
        if (ch == ';' || ch == '{' || ch == '}') {
            return fa_conf_read_end(cf, b, *nargs);
        }
        if (*nargs == 0) {
            cf->line = b->line;
        } else if (*nargs > FA_CONF_MAX_ARGS) {
            fa_conf_error(cf, "too many arguments in \"%s\" directive (at most %d)",
                          (char *) args[0].data, FA_CONF_MAX_ARGS);
            return FA_CONF_TOK_ERROR;
        }
        if (fa_conf_read_word(cf, b, &args[*nargs]) != FA_OK) {
            return FA_CONF_TOK_ERROR;
        }
        (*nargs)++;
        if (*nargs <= FA_CONF_MAX_ARGS) {
            /* a setter that reads one argument too many sees "", not junk */
            fa_str_set(&args[*nargs], "");
        }
    }
}

/* ---- blocks ---------------------------------------------------------- */

char *
fa_conf_block(fa_conf_t *cf, const char *kind, fa_conf_scope_t **out)
{
    fa_conf_scope_t  *s, *parent = cf->scope;
    fa_str_t         *args = cf->args;
    fa_uint_t         nargs = cf->nargs, line = cf->line;
    fa_int_t          rc;

    if (cf->buf == NULL || !cf->buf->block_pending) {
        return fa_conf_error(cf, "directive \"%s\" has no opening \"{\"",
                             cf->args ? (char *) cf->args[0].data : kind);
    }
    cf->buf->block_pending = 0;
    if (cf->depth >= FA_CONF_MAX_DEPTH) {
        return fa_conf_error(cf, "too deep nesting of blocks and includes "
                             "(at most %d levels)", FA_CONF_MAX_DEPTH);
    }
    s = fa_conf_scope_create(cf, parent, kind);
    if (s == NULL) {
        return fa_conf_error(cf, "out of memory");
    }

    cf->scope = s;
    cf->depth++;
    rc = fa_conf_parse(cf, 1);
    cf->depth--;
    cf->scope = parent;
    cf->args = args;            /* the setter may still look at its directive */
    cf->nargs = nargs;
    cf->line = line;

    if (out) {
        *out = s;
    }
    return rc == FA_OK ? FA_CONF_OK : FA_CONF_ERROR;
}


/* ---- directives ------------------------------------------------------ */

static fa_int_t
fa_conf_call_setter(fa_conf_t *cf, const fa_command_t *cmd, void *conf, int block)
{
    char  *rv;

    cf->buf->block_pending = block;
    rv = cmd->set ? cmd->set(cf, cmd, conf) : FA_CONF_OK;
    block = cf->buf->block_pending;
    cf->buf->block_pending = 0;

    if (rv == FA_CONF_ERROR) {
        fa_conf_error(cf, "\"%s\" directive failed", cmd->name);   /* if silent */
        return FA_ERROR;
    }
    if (rv != FA_CONF_OK) {
        fa_conf_error(cf, "\"%s\" directive %s", cmd->name, rv);
        return FA_ERROR;
    }
    if (block) {
        /* a module bug, but it would otherwise read the block as ours */
        fa_conf_error(cf, "\"%s\" directive did not read its block", cmd->name);
        return FA_ERROR;
    }
    return FA_OK;
}

static fa_int_t fa_conf_include(fa_conf_t *cf, int block);

static fa_int_t
fa_conf_handler(fa_conf_t *cf, int block)
{
    const fa_command_t  *cmd;
    fa_module_t         *m = NULL;
    void                *conf;

    if (fa_str_eq(&cf->args[0], "include")) {
        return fa_conf_include(cf, block);
    }
    cmd = fa_conf_find_command(cf, block, &m);
    if (cmd == NULL) {
        return FA_ERROR;
    }
    conf = fa_conf_get(cf, cf->scope, m);
    if (conf == NULL && m->create_conf) {
        fa_conf_error(cf, "could not create the configuration of module \"%s\"", m->name);
        return FA_ERROR;
    }
    return fa_conf_call_setter(cf, cmd, conf, block);
}

/* read directives until the end of the file, or of the block */
static fa_int_t
fa_conf_parse(fa_conf_t *cf, int in_block)
{
    fa_str_t       args[FA_CONF_MAX_ARGS + 1];
    fa_uint_t      nargs;
    fa_conf_tok_e  tok;
    fa_conf_buf_t *b = cf->buf;

    for ( ;; ) {
        tok = fa_conf_read_directive(cf, b, args, &nargs);
        switch (tok) {
        case FA_CONF_TOK_ERROR:
            return FA_ERROR;
        case FA_CONF_TOK_CLOSE:
            if (in_block) {
                return FA_OK;
            }
            return fa_conf_fail_at(cf, b->line, "unexpected \"}\"");
        case FA_CONF_TOK_EOF:
            if (!in_block) {
                return FA_OK;
            }
            return fa_conf_fail_at(cf, fa_conf_last_line(b),
                                   "unexpected end of file, expecting \"}\"");
        default:
            break;
        }
        cf->args = args;
        cf->nargs = nargs;
        if (fa_conf_handler(cf, tok == FA_CONF_TOK_BLOCK) != FA_OK) {
            return FA_ERROR;
        }
    }
}


/* ---- files and includes ---------------------------------------------- */

static fa_int_t
fa_conf_sys_error(fa_conf_t *cf, const char *call, const char *path, int err)
{
    fa_conf_error(cf, "%s \"%s\" failed (%s)", call, path, strerror(err));
    return FA_ERROR;
}

static fa_int_t
fa_conf_read_fd(fa_conf_t *cf, int fd, const char *path, fa_conf_buf_t *b)
{
    struct stat  st;
    size_t       got = 0;
    ssize_t      n;

    if (fstat(fd, &st) == -1) {
        return fa_conf_sys_error(cf, "fstat()", path, errno);
    }
    if (!S_ISREG(st.st_mode)) {
        fa_conf_error(cf, "\"%s\" is not a regular file", path);
        return FA_ERROR;
    }
    if (st.st_size > FA_CONF_MAX_FILE) {
        fa_conf_error(cf, "\"%s\" is too large (more than %d MB)", path,
                      FA_CONF_MAX_FILE / (1024 * 1024));
        return FA_ERROR;
    }
    b->start = malloc((size_t) st.st_size + 1);
    if (b->start == NULL) {
        fa_conf_error(cf, "out of memory reading \"%s\"", path);
        return FA_ERROR;
    }
    while (got < (size_t) st.st_size) {
        n = read(fd, b->start + got, (size_t) st.st_size - got);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n == -1) {
            free(b->start);
            return fa_conf_sys_error(cf, "read()", path, errno);
        }
        if (n == 0) {
            break;      /* the file shrank while we read it */
        }
        got += (size_t) n;
    }
    b->pos = b->start;
    b->end = b->start + got;
    b->line = 1;
    b->block_pending = 0;
    return FA_OK;
}

static fa_int_t
fa_conf_read_file(fa_conf_t *cf, const char *path, fa_conf_buf_t *b)
{
    int       fd;
    fa_int_t  rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return fa_conf_sys_error(cf, "open()", path, errno);
    }
    rc = fa_conf_read_fd(cf, fd, path, b);
    close(fd);
    return rc;
}

/*
 * Push the file on the include stack, refusing one that is already on it:
 * compared by realpath so "a.conf", "./a.conf" and a symlink are one file.
 */
static fa_int_t
fa_conf_enter_file(fa_conf_t *cf, const char *path)
{
    char   *real, **files = cf->files.elts, **slot;

    real = realpath(path, NULL);
    if (real == NULL) {
        return fa_conf_sys_error(cf, "open()", path, errno);
    }
    for (fa_uint_t i = 0; i < cf->files.nelts; i++) {
        if (strcmp(files[i], real) == 0) {
            free(real);
            fa_conf_error(cf, "include loop: \"%s\"", path);
            return FA_ERROR;
        }
    }
    slot = fa_array_push(&cf->files);
    if (slot) {
        *slot = fa_pstrcat(cf->temp_pool, real, "");
    }
    free(real);
    if (slot == NULL || *slot == NULL) {
        fa_conf_error(cf, "out of memory");
        return FA_ERROR;
    }
    return FA_OK;
}

/* on the first call: fill in what the caller may have left zeroed */
static fa_int_t
fa_conf_prepare(fa_conf_t *cf, const char *path)
{
    const char  *slash;
    char        *dir;
    size_t       n;

    if (cf->temp_pool == NULL) {
        cf->temp_pool = cf->pool;
    }
    if (cf->log == NULL) {
        cf->log = cf->cycle->log ? cf->cycle->log : &fa_log_stderr;
    }
    if (cf->files.elts == NULL
        && fa_array_init(&cf->files, cf->temp_pool, 8, sizeof(char *)) != FA_OK)
    {
        return FA_ERROR;
    }
    if (cf->conf_dir == NULL) {
        slash = strrchr(path, '/');
        n = slash ? (size_t) (slash - path) + 1 : 0;      /* keep the '/' */
        dir = fa_pnalloc(cf->pool, n + 1);
        if (dir == NULL) {
            return FA_ERROR;
        }
        memcpy(dir, path, n);
        dir[n] = '\0';
        cf->conf_dir = dir;
    }
    if (cf->scope == NULL) {
        if (cf->cycle->root == NULL) {
            cf->cycle->root = fa_conf_scope_create(cf, NULL, "main");
        }
        cf->scope = cf->cycle->root;
    }
    return cf->scope ? FA_OK : FA_ERROR;
}

static fa_int_t
fa_conf_parse_buf(fa_conf_t *cf, const char *path, fa_conf_buf_t *b, int nested)
{
    fa_conf_buf_t  *buf = cf->buf;
    const char     *file = cf->file;
    fa_str_t       *args = cf->args;
    fa_uint_t       nargs = cf->nargs, line = cf->line;
    fa_int_t        rc;

    cf->file = fa_pstrcat(cf->pool, path, "");  /* scopes keep pointing at it */
    if (cf->file == NULL) {
        cf->file = file;
        fa_conf_error(cf, "out of memory");
        return FA_ERROR;
    }
    if (cf->scope->file == NULL) {
        cf->scope->file = cf->file;
    }
    cf->buf = b;
    cf->depth += nested;
    rc = fa_conf_parse(cf, 0);
    cf->depth -= nested;
    cf->buf = buf;
    cf->file = file;
    cf->args = args;
    cf->nargs = nargs;
    cf->line = line;
    return rc;
}

fa_int_t
fa_conf_parse_file(fa_conf_t *cf, const char *path)
{
    fa_conf_buf_t  b;
    fa_int_t       rc;
    int            nested;

    if (fa_conf_prepare(cf, path) != FA_OK) {
        fa_conf_error(cf, "out of memory");
        return FA_ERROR;
    }
    nested = cf->files.nelts > 0;
    if (nested && cf->depth >= FA_CONF_MAX_DEPTH) {
        fa_conf_error(cf, "too deep nesting of blocks and includes (at most %d levels)",
                      FA_CONF_MAX_DEPTH);
        return FA_ERROR;
    }
    if (fa_conf_enter_file(cf, path) != FA_OK) {
        return FA_ERROR;
    }
    rc = fa_conf_read_file(cf, path, &b);
    if (rc == FA_OK) {
        rc = fa_conf_parse_buf(cf, path, &b, nested);
        free(b.start);
    }
    cf->files.nelts--;
    return rc;
}

static char *
fa_conf_include_path(fa_conf_t *cf, const fa_str_t *arg)
{
    if (arg->len && arg->data[0] == '/') {
        return (char *) fa_pstrdup(cf->pool, arg);
    }
    return fa_pstrcat(cf->pool, cf->conf_dir ? cf->conf_dir : "", (char *) arg->data);
}

/*
 * include GLOB;  A pattern that matches nothing is fine (an empty conf.d/),
 * a plain name that does not exist is an error.  glob(3) sorts its result,
 * so files are read in a stable order.
 */
static fa_int_t
fa_conf_include(fa_conf_t *cf, int block)
{
    char      *path;
    glob_t     g;
    fa_int_t   rc;
    int        grc;

    if (block) {
        fa_conf_error(cf, "directive \"include\" is not terminated by \";\"");
        return FA_ERROR;
    }
    if (cf->nargs != 2) {
        fa_conf_error(cf, "invalid number of arguments in \"include\" directive");
        return FA_ERROR;
    }
    path = fa_conf_include_path(cf, &cf->args[1]);
    if (path == NULL) {
        fa_conf_error(cf, "out of memory");
        return FA_ERROR;
    }
    if (strpbrk((char *) cf->args[1].data, "*?[") == NULL) {
        return fa_conf_parse_file(cf, path);
    }

    grc = glob(path, 0, NULL, &g);
    if (grc == GLOB_NOMATCH) {
        return FA_OK;
    }
    if (grc != 0) {
        fa_conf_error(cf, "glob() \"%s\" failed", path);
        return FA_ERROR;
    }
    rc = FA_OK;
    for (size_t i = 0; i < g.gl_pathc && rc == FA_OK; i++) {
        rc = fa_conf_parse_file(cf, g.gl_pathv[i]);
    }
    globfree(&g);
    return rc;
}
