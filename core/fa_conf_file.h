/*
 * The configuration language: nginx syntax, "directive args;" and
 * "block args { ... }", "#" comments, single and double quotes with
 * backslash escapes, and "include GLOB;" anywhere.
 *
 * The parser knows no directive names.  Modules declare their directives
 * (fa_command_t): a name, the scopes where the directive is allowed, an
 * argument count and a setter.  Most setters are the generic ones below,
 * which write at an offset in the module's configuration struct.
 *
 * Scopes: the file is parsed into a tree of scopes.  The root's kind is
 * "main"; a block directive opens a child scope whose kind is the block's
 * name ("smtp", "metrics", "domain"), prefixed by the parent kind when the
 * parent is not main ("smtp.server").  Every module has at most one
 * configuration struct per scope, created on the first directive of that
 * module in the scope (module->create_conf), and after parsing each scope
 * inherits from its parent through module->merge_conf: a scope where a
 * module set nothing simply shares its parent's struct.
 *
 * Errors read "FILE:LINE: message" and stop the load; nothing is applied.
 */

#ifndef FA_CONF_FILE_H
#define FA_CONF_FILE_H

#define FA_CONF_MAX_ARGS   32      /* arguments after the directive name */
#define FA_CONF_MAX_DEPTH  16      /* nesting of blocks and includes */
#define FA_CONF_MAX_TOKEN  4096    /* bytes in one word or quoted string */
#define FA_CONF_MAX_FILE   (16 * 1024 * 1024)   /* bytes in one file */

/* argument counts (bits) */
#define FA_CONF_NOARGS     0x0001
#define FA_CONF_TAKE1      0x0002
#define FA_CONF_TAKE2      0x0004
#define FA_CONF_TAKE3      0x0008
#define FA_CONF_TAKE4      0x0010
#define FA_CONF_TAKE12     (FA_CONF_TAKE1 | FA_CONF_TAKE2)
#define FA_CONF_TAKE123    (FA_CONF_TAKE1 | FA_CONF_TAKE2 | FA_CONF_TAKE3)
#define FA_CONF_1MORE      0x0100
#define FA_CONF_2MORE      0x0200
#define FA_CONF_FLAG       0x0400  /* exactly one argument, on|off */
#define FA_CONF_BLOCK      0x0800  /* followed by { ... } */
#define FA_CONF_MULTI      0x1000  /* may repeat in one scope (else "is duplicate") */
/*
 * A directive's argument count is accepted when any of its bits allows it
 * (FA_CONF_NOARGS | FA_CONF_TAKE1 takes zero or one); a type with no count
 * bit at all takes none.  "scopes" lists the scope kinds where it is
 * allowed; NULL means "main".  Any directive of a module, block directives
 * included, gives the module its own struct in the scope where it appears.
 */

#define FA_CONF_UNSET       -1
#define FA_CONF_UNSET_UINT  ((fa_uint_t) -1)
#define FA_CONF_UNSET_SIZE  ((size_t) -1)
#define FA_CONF_UNSET_MSEC  ((fa_msec_t) -1)
#define FA_CONF_UNSET_PTR   ((void *) -1)

#define fa_conf_merge_value(conf, prev, def)                                  \
    do { if ((conf) == FA_CONF_UNSET) (conf) = ((prev) == FA_CONF_UNSET) ? (def) : (prev); } while (0)
#define fa_conf_merge_uint(conf, prev, def)                                   \
    do { if ((conf) == FA_CONF_UNSET_UINT) (conf) = ((prev) == FA_CONF_UNSET_UINT) ? (def) : (prev); } while (0)
#define fa_conf_merge_size(conf, prev, def)                                   \
    do { if ((conf) == FA_CONF_UNSET_SIZE) (conf) = ((prev) == FA_CONF_UNSET_SIZE) ? (def) : (prev); } while (0)
#define fa_conf_merge_msec(conf, prev, def)                                   \
    do { if ((conf) == FA_CONF_UNSET_MSEC) (conf) = ((prev) == FA_CONF_UNSET_MSEC) ? (def) : (prev); } while (0)
#define fa_conf_merge_str(conf, prev, def)                                    \
    do { if ((conf).data == NULL) {                                           \
             if ((prev).data) (conf) = (prev);                                \
             else { (conf).len = sizeof(def) - 1; (conf).data = (u_char *) (def); } } } while (0)

typedef char *(*fa_conf_set_pt)(fa_conf_t *cf, const fa_command_t *cmd, void *conf);

struct fa_command_s {
    const char       *name;
    const char       *scopes;   /* space separated kinds: "main domain smtp.server" */
    fa_uint_t         type;     /* FA_CONF_TAKE1 | FA_CONF_BLOCK ... */
    fa_conf_set_pt    set;
    size_t            offset;   /* for generic setters, in the module's struct */
    const void       *post;     /* setter-specific: enum table, bounds */
};

#define fa_null_command  { NULL, NULL, 0, NULL, 0, NULL }

struct fa_conf_scope_s {
    const char        *kind;       /* "main", "smtp", "smtp.server", "domain" */
    fa_str_t           name;       /* first block argument, "" if none */
    fa_str_t          *args;       /* all block arguments */
    fa_uint_t          nargs;
    fa_conf_scope_t   *parent;
    fa_array_t         children;   /* of fa_conf_scope_t * */
    void             **conf;       /* per module index, FA_MAX_MODULES long */
    unsigned char     *own;        /* per module: 1 if created in this scope */
    const char        *file;
    fa_uint_t          line;
    fa_array_t         used;       /* const fa_command_t *, for "is duplicate";
                                      zeroed is fine, set up on first use */
};

typedef struct fa_conf_buf_s  fa_conf_buf_t;   /* private to fa_conf_file.c */

struct fa_conf_s {
    fa_cycle_t        *cycle;
    fa_pool_t         *pool;       /* the cycle's pool */
    fa_pool_t         *temp_pool;  /* freed after the load */
    fa_log_t          *log;
    fa_conf_scope_t   *scope;      /* current */
    fa_str_t          *args;       /* current directive: args[0] is its name */
    fa_uint_t          nargs;
    const char        *file;       /* current file */
    fa_uint_t          line;       /* line of the current directive */
    fa_uint_t          depth;
    char              *error;      /* formatted "FILE:LINE: message" once it failed */
    fa_array_t         files;      /* stack of included file names, for loop detection */
    const char        *conf_dir;   /* directory of the main file, ends with '/';
                                      relative includes resolve against it */
    fa_conf_buf_t     *buf;        /* the file being read (parser private) */
};

/*
 * Parse FILE into cf->scope (the root, or a block).  Before the first call,
 * zero cf and set cycle, pool, log and (optionally) temp_pool and scope; when
 * scope is NULL the root scope is created as cycle->root.  The first file
 * parsed at depth 0 is the main file: relative includes resolve against its
 * directory.  Returns FA_OK, or FA_ERROR with cf->error set.
 *
 * cf->args[0 .. nargs-1] are the directive's name and arguments, unquoted,
 * NUL-terminated and allocated from cf->pool, so setters may keep them.
 */
fa_int_t fa_conf_parse_file(fa_conf_t *cf, const char *path);

/*
 * Inheritance, run once after the whole file parsed (fa_cycle_load does it):
 *
 *   1. The root gets a struct for every module with create_conf, whether or
 *      not it set anything, so every scope ends up with one in force.
 *   2. The root's structs are merged with a blank struct from create_conf:
 *      merge_conf(cf, blank, root).  That is how defaults reach the root,
 *      through the same code path as every other scope, and merge_conf always
 *      receives two distinct, valid structs (never NULL, never parent==child).
 *   3. Top down, in file order: a scope that owns a struct for a module gets
 *      merge_conf(cf, struct in force in the parent, own struct); a scope
 *      where the module set nothing shares its parent's pointer.
 *
 * So after merging, fa_scope_conf(scope, module) is never NULL for a module
 * with create_conf, and no field is left at its FA_CONF_UNSET marker when the
 * module's merge_conf uses the fa_conf_merge_* macros.  An error in
 * merge_conf is reported at the block that opened the scope.
 */
fa_int_t fa_conf_merge_scopes(fa_conf_t *cf);

/*
 * Report an error at the current directive.  Formats into cf->error as
 * "FILE:LINE: message" and returns FA_CONF_ERROR so setters can
 *   return fa_conf_error(cf, "invalid value \"%.*s\"", ...);
 * The first error is kept: a block setter that wraps a failed
 * fa_conf_block() does not hide the precise inner message.  A setter may
 * also return a plain string, reported as "FILE:LINE: "NAME" directive STRING"
 * (e.g. "is duplicate").
 */
char *fa_conf_error(fa_conf_t *cf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void fa_conf_warn(fa_conf_t *cf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A new scope of KIND (relative, as for fa_conf_block) below PARENT.  With a
 * parent, the scope takes its name and args from the current directive
 * (cf->args) and is appended to the parent's children; without one it is a
 * root ("main").  NULL when out of memory.
 */
fa_conf_scope_t *fa_conf_scope_create(fa_conf_t *cf, fa_conf_scope_t *parent,
    const char *kind);

/*
 * Parser internal: the command that cf->args names in cf->scope, checked
 * (terminated by "{" when BLOCK, else by ";"; argument count; "is
 * duplicate").  NULL with cf->error set.
 */
const fa_command_t *fa_conf_find_command(fa_conf_t *cf, int block, fa_module_t **module);

/*
 * The module's struct in a scope, creating it if the module has none there
 * yet (scope->own records it).  NULL if the module has no create_conf.  For
 * use while parsing: after merging, read fa_scope_conf() instead.
 */
void *fa_conf_get(fa_conf_t *cf, fa_conf_scope_t *scope, const fa_module_t *m);
/* after merging: the struct in force in a scope (NULL if the module has none) */
#define fa_scope_conf(scope, module)  ((scope)->conf[(module).index])

/*
 * Visit every scope of one kind (depth first, in file order; KIND NULL visits
 * all).  Stops at and returns the first result of FN that is not FA_OK.
 */
typedef fa_int_t (*fa_scope_visit_pt)(fa_cycle_t *cycle, fa_conf_scope_t *s, void *data);
fa_int_t fa_conf_each_scope(fa_cycle_t *cycle, const char *kind, fa_scope_visit_pt fn, void *data);

/*
 * The "domain NAME" scope for a domain (case-insensitive), or NULL.  A
 * domain's policy applies to its subdomains only when a block names them.
 */
fa_conf_scope_t *fa_conf_domain(fa_cycle_t *cycle, const fa_str_t *name);

/* resolve a path against the prefix (-p); returns a NUL-terminated copy */
char *fa_conf_full_path(fa_conf_t *cf, const fa_str_t *path);

/* generic setters: cmd->offset is where the value goes in the module's struct */
char *fa_conf_set_flag(fa_conf_t *cf, const fa_command_t *cmd, void *conf);    /* fa_int_t */
char *fa_conf_set_str(fa_conf_t *cf, const fa_command_t *cmd, void *conf);     /* fa_str_t */
char *fa_conf_set_path(fa_conf_t *cf, const fa_command_t *cmd, void *conf);    /* fa_str_t, prefixed */
char *fa_conf_set_num(fa_conf_t *cf, const fa_command_t *cmd, void *conf);     /* fa_int_t */
char *fa_conf_set_size(fa_conf_t *cf, const fa_command_t *cmd, void *conf);    /* size_t */
char *fa_conf_set_msec(fa_conf_t *cf, const fa_command_t *cmd, void *conf);    /* fa_msec_t */
char *fa_conf_set_enum(fa_conf_t *cf, const fa_command_t *cmd, void *conf);    /* fa_uint_t */
char *fa_conf_set_str_array(fa_conf_t *cf, const fa_command_t *cmd, void *conf); /* fa_array_t * of fa_str_t */
char *fa_conf_set_block(fa_conf_t *cf, const fa_command_t *cmd, void *conf);   /* opens a child scope */

/*
 * For block setters: create the child scope of kind KIND (relative: the
 * parent's kind is prefixed as described above) with the directive's
 * arguments, parse the block's contents into it, and return it in *out
 * (OUT may be NULL).  scope->args are the arguments after the directive's
 * name, so scope->args[0] is scope->name.  fa_conf_set_block is this with
 * KIND = the directive's name.  A block directive (FA_CONF_BLOCK) must call
 * it exactly once; a directive that repeats in a scope ("server", "domain")
 * needs FA_CONF_MULTI.
 */
char *fa_conf_block(fa_conf_t *cf, const char *kind, fa_conf_scope_t **out);

typedef struct {
    const char  *name;
    fa_uint_t    value;
} fa_conf_enum_t;   /* post for fa_conf_set_enum, ends with { NULL, 0 } */

typedef struct {
    int64_t      min;
    int64_t      max;
} fa_conf_bounds_t; /* optional post for fa_conf_set_num/size/msec (msec: in ms) */

#endif /* FA_CONF_FILE_H */
