/*
 * The configuration parser: values land in the right scope structs, blocks
 * nest into kinds, scopes inherit through merge, includes glob in order,
 * and every malformed input gives one exact "FILE:LINE: message" instead
 * of a crash.
 *
 * The cycle is built by hand with two or three test modules; config files
 * are written into a mkdtemp() directory that is removed at the end.
 */

#include "fa_core.h"
#include "fa_test.h"

/* fa_cycle.c names the core module, which lives in facteur.c (not linked) */
__attribute__((weak)) fa_module_t  fa_core_module;

#define is_str(got, want, ...)                                                \
    do { const char *g_ = (got), *w_ = (want);                                \
         ok(g_ && strcmp(g_, w_) == 0, __VA_ARGS__);                          \
         if (!g_ || strcmp(g_, w_) != 0)                                      \
             printf("#   got  [%s]\n#   want [%s]\n", g_ ? g_ : "(null)", w_); \
    } while (0)

typedef struct {
    fa_int_t     flag;
    fa_int_t     num;
    size_t       size;
    fa_msec_t    time;
    fa_str_t     str;
    fa_str_t     path;
    fa_uint_t    level;
    fa_array_t  *list;
    fa_str_t     two[2];
} tconf_t;

typedef struct {
    fa_int_t     value;
} oconf_t;

static fa_module_t  test_module, other_module, late_module;

static char  dir[64];
static char  deep_scopes[2048];     /* "main deep deep.deep ...", built in main() */
static int   late_loaded;


/* ---- the test modules ------------------------------------------------ */

static void *
test_create(fa_conf_t *cf)
{
    tconf_t  *t = fa_pcalloc(cf->pool, sizeof(tconf_t));

    if (t) {
        t->flag = FA_CONF_UNSET;
        t->num = FA_CONF_UNSET;
        t->size = FA_CONF_UNSET_SIZE;
        t->time = FA_CONF_UNSET_MSEC;
        t->level = FA_CONF_UNSET_UINT;
    }
    return t;
}

static char *
test_merge(fa_conf_t *cf, void *parent, void *child)
{
    tconf_t  *p = parent, *c = child;

    (void) cf;
    fa_conf_merge_value(c->flag, p->flag, 0);
    fa_conf_merge_value(c->num, p->num, 10);
    fa_conf_merge_size(c->size, p->size, 1024);
    fa_conf_merge_msec(c->time, p->time, 60000);
    fa_conf_merge_str(c->str, p->str, "default");
    fa_conf_merge_uint(c->level, p->level, 1);
    if (c->list == NULL) {
        c->list = p->list;
    }
    return FA_CONF_OK;
}

static char *
set_two(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    tconf_t  *t = conf;

    (void) cmd;
    if (fa_str_equal(&cf->args[1], &cf->args[2])) {
        return "needs two different values";
    }
    t->two[0] = cf->args[1];
    t->two[1] = cf->args[2];
    return FA_CONF_OK;
}

/* a block setter that checks it still sees its own directive afterwards */
static char *
set_named(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_conf_scope_t  *s;
    char             *rv;

    (void) cmd;
    (void) conf;
    rv = fa_conf_block(cf, "named", &s);
    if (rv != FA_CONF_OK) {
        return rv;
    }
    if (!fa_str_eq(&cf->args[0], "named") || cf->nargs != 2 || s->nargs != 1) {
        return "lost its arguments";
    }
    return FA_CONF_OK;
}

/* what load_module does: append a module while the file is parsed */
static char *
set_load_late(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_module_t  **slot;

    (void) cmd;
    (void) conf;
    slot = fa_array_push(&cf->cycle->modules);
    if (slot == NULL) {
        return "out of memory";
    }
    *slot = &late_module;
    late_loaded++;
    return FA_CONF_OK;
}

static const fa_conf_bounds_t  num_bounds = { 1, 100 };
static const fa_conf_enum_t    levels[] = {
    { "low", 1 }, { "high", 2 }, { "auto", 3 }, { NULL, 0 }
};

#define ALL  "main test test.server named"

static const fa_command_t  test_commands[] = {
    { "test_flag", ALL, FA_CONF_FLAG, fa_conf_set_flag, offsetof(tconf_t, flag), NULL },
    { "test_num", ALL, FA_CONF_TAKE1, fa_conf_set_num, offsetof(tconf_t, num), &num_bounds },
    { "test_size", ALL, FA_CONF_TAKE1, fa_conf_set_size, offsetof(tconf_t, size), NULL },
    { "test_time", ALL, FA_CONF_TAKE1, fa_conf_set_msec, offsetof(tconf_t, time), NULL },
    { "test_str", ALL, FA_CONF_TAKE1, fa_conf_set_str, offsetof(tconf_t, str), NULL },
    { "test_path", ALL, FA_CONF_TAKE1, fa_conf_set_path, offsetof(tconf_t, path), NULL },
    { "test_enum", ALL, FA_CONF_TAKE1, fa_conf_set_enum, offsetof(tconf_t, level), levels },
    { "test_list", ALL, FA_CONF_1MORE | FA_CONF_MULTI, fa_conf_set_str_array,
      offsetof(tconf_t, list), NULL },
    { "test_two", ALL, FA_CONF_TAKE2, set_two, 0, NULL },
    { "only_main", "main", FA_CONF_TAKE1, fa_conf_set_str, offsetof(tconf_t, str), NULL },
    { "test", "main", FA_CONF_BLOCK | FA_CONF_NOARGS, fa_conf_set_block, 0, NULL },
    { "server", "test", FA_CONF_BLOCK | FA_CONF_TAKE1 | FA_CONF_MULTI, fa_conf_set_block,
      0, NULL },
    { "named", "main", FA_CONF_BLOCK | FA_CONF_TAKE1 | FA_CONF_MULTI, set_named, 0, NULL },
    { "deep", deep_scopes, FA_CONF_BLOCK | FA_CONF_MULTI, fa_conf_set_block, 0, NULL },
    { "load_late", "main", FA_CONF_NOARGS, set_load_late, 0, NULL },
    fa_null_command
};

static void *
other_create(fa_conf_t *cf)
{
    oconf_t  *o = fa_pcalloc(cf->pool, sizeof(oconf_t));

    if (o) {
        o->value = FA_CONF_UNSET;
    }
    return o;
}

static char *
other_merge(fa_conf_t *cf, void *parent, void *child)
{
    oconf_t  *p = parent, *c = child;

    (void) cf;
    fa_conf_merge_value(c->value, p->value, 42);
    return FA_CONF_OK;
}

static const fa_command_t  other_commands[] = {
    { "other_value", "main test test.server", FA_CONF_TAKE1, fa_conf_set_num,
      offsetof(oconf_t, value), NULL },
    fa_null_command
};

static const fa_command_t  late_commands[] = {
    { "late_value", "main", FA_CONF_TAKE1, fa_conf_set_num, offsetof(oconf_t, value), NULL },
    fa_null_command
};

static void
init_modules(void)
{
    test_module.index = 0;
    test_module.name = "test";
    test_module.commands = test_commands;
    test_module.create_conf = test_create;
    test_module.merge_conf = test_merge;

    other_module.index = 1;
    other_module.name = "other";
    other_module.commands = other_commands;
    other_module.create_conf = other_create;
    other_module.merge_conf = other_merge;

    late_module.index = 2;
    late_module.name = "late";
    late_module.commands = late_commands;
    late_module.create_conf = other_create;
    late_module.merge_conf = other_merge;
}


/* ---- harness --------------------------------------------------------- */

typedef struct {
    fa_cycle_t  *cycle;
    fa_conf_t    cf;
    fa_int_t     rc;
} load_t;

static char *
tpath(const char *name)
{
    static char  buf[4][512];
    static int   n;

    n = (n + 1) % 4;
    snprintf(buf[n], sizeof(buf[n]), "%s/%s", dir, name);
    return buf[n];
}

static void
write_file(const char *name, const char *text)
{
    FILE  *f = fopen(tpath(name), "w");

    if (f == NULL) {
        perror(name);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static fa_int_t
load(load_t *l, const char *text)
{
    fa_pool_t    *pool;
    fa_module_t **m;

    write_file("main.conf", text);
    pool = fa_pool_create(4096, &fa_log_stderr);
    l->cycle = fa_pcalloc(pool, sizeof(fa_cycle_t));
    l->cycle->pool = pool;
    l->cycle->log = &fa_log_stderr;
    l->cycle->prefix = "/prefix/";
    /* room for two: load_late makes the array move */
    fa_array_init(&l->cycle->modules, pool, 2, sizeof(fa_module_t *));
    m = fa_array_push(&l->cycle->modules);
    *m = &test_module;
    m = fa_array_push(&l->cycle->modules);
    *m = &other_module;

    memset(&l->cf, 0, sizeof(l->cf));
    l->cf.cycle = l->cycle;
    l->cf.pool = pool;
    l->cf.log = &fa_log_stderr;
    l->cf.temp_pool = fa_pool_create(4096, &fa_log_stderr);

    l->rc = fa_conf_parse_file(&l->cf, tpath("main.conf"));
    if (l->rc == FA_OK) {
        l->rc = fa_conf_merge_scopes(&l->cf);
    }
    return l->rc;
}

static void
unload(load_t *l)
{
    fa_pool_destroy(l->cf.temp_pool);
    fa_pool_destroy(l->cycle->pool);
}

static fa_conf_scope_t *
child(fa_conf_scope_t *s, fa_uint_t i)
{
    return i < s->children.nelts ? ((fa_conf_scope_t **) s->children.elts)[i] : NULL;
}

#define TCONF(s)  ((tconf_t *) (s)->conf[test_module.index])
#define OCONF(s)  ((oconf_t *) (s)->conf[other_module.index])

/* FILE is relative to the test directory; the message is exact */
static void
expect_error(const char *text, const char *file, int line, const char *msg)
{
    load_t  l;
    char    want[8192];

    snprintf(want, sizeof(want), "%s:%d: %s", tpath(file), line, msg);
    load(&l, text);
    ok(l.rc == FA_ERROR, "refused: %s", msg);
    is_str(l.cf.error, want, "error text: %s", msg);
    unload(&l);
}


/* ---- values and scopes ----------------------------------------------- */

static void
test_values(void)
{
    load_t    l;
    tconf_t  *t;
    fa_str_t *items;

    load(&l,
         "# every generic setter\n"
         "test_flag on;\n"
         "test_num 7;   # trailing comment ; { }\n"
         "test_size 64k;\n"
         "test_time 500ms;\n"
         "test_str \"a b;{}\\\"c\\\\d\\te\\n\";\n"
         "test_path logs/x.log;\n"
         "test_enum HIGH;\n"
         "test_list one 'two words';\n"
         "test_list three;\n"
         "test_two x y;\n"
         "other_value 5;\n");
    is_int(l.rc, FA_OK, "main scope parses");
    t = TCONF(l.cycle->root);
    is_int(t->flag, 1, "flag on");
    is_int(t->num, 7, "num");
    is_int(t->size, 64 * 1024, "size 64k");
    is_int(t->time, 500, "msec 500ms");
    is_str((char *) t->str.data, "a b;{}\"c\\d\te\n", "quoted string with escapes");
    is_int(t->str.len, 13, "quoted string length");
    is_str((char *) t->path.data, "/prefix/logs/x.log", "path resolved against the prefix");
    is_int(t->level, 2, "enum is case-insensitive");
    is_int(t->list->nelts, 3, "str_array appends all args of repeated directive");
    items = t->list->elts;
    is_str((char *) items[1].data, "two words", "single-quoted arg");
    is_str((char *) items[2].data, "three", "second use appends");
    is_str((char *) t->two[1].data, "y", "custom setter gets both args");
    is_int(OCONF(l.cycle->root)->value, 5, "second module's struct");
    unload(&l);

    load(&l,
         "test_str '^\\d+$';\n"
         "test_time 30;\n");
    is_int(l.rc, FA_OK, "single quotes and a bare time parse");
    t = TCONF(l.cycle->root);
    is_str((char *) t->str.data, "^\\d+$", "unknown escapes are kept (regexes)");
    is_int(t->time, 30000, "bare time is seconds");
    unload(&l);

    load(&l,
         "test_list a\"b\" c'd' \"\" x}y;\n"
         "test_path /abs/path;\n");
    is_int(l.rc, FA_OK, "quotes and } inside a word are ordinary");
    t = TCONF(l.cycle->root);
    items = t->list->elts;
    is_int(t->list->nelts, 4, "four words");
    is_str((char *) items[0].data, "a\"b\"", "quote inside a word is literal");
    is_str((char *) items[1].data, "c'd'", "single quote inside a word is literal");
    is_int(items[2].len, 0, "empty quoted string");
    is_str((char *) items[3].data, "x}y", "} inside a word is literal");
    is_str((char *) t->path.data, "/abs/path", "absolute path kept");
    is_int(t->num, 10, "unset num gets its default at the root");
    is_str((char *) t->str.data, "default", "unset str gets its default at the root");
    unload(&l);
}

static fa_int_t
count_servers(fa_cycle_t *cycle, fa_conf_scope_t *s, void *data)
{
    char  *names = data;

    (void) cycle;
    strncat(names, (char *) s->name.data, 16);
    return FA_OK;
}

static void
test_scopes(void)
{
    load_t            l;
    fa_conf_scope_t  *root, *test, *a, *b;
    char              names[64] = "";
    fa_str_t          rel = fa_string("x/y"), abs = fa_string("/x/y");

    load(&l,
         "test_num 7;\n"
         "test_str top;\n"
         "test {\n"
         "    server a {\n"
         "        test_flag on;\n"
         "    }\n"
         "    server b{test_size 1m;test_str inner;}\n"
         "    server c { other_value 8; }\n"
         "}\n"
         "named n1 { test_num 3; }\n");
    is_int(l.rc, FA_OK, "nested blocks parse");
    root = l.cycle->root;
    test = child(root, 0);
    a = test ? child(test, 0) : NULL;
    b = test ? child(test, 1) : NULL;
    ok(test && a && b, "scope tree built");
    if (!(test && a && b)) {
        unload(&l);
        return;
    }
    is_str(root->kind, "main", "root kind");
    is_str(test->kind, "test", "block kind below main");
    is_str(a->kind, "test.server", "nested kind is prefixed");
    is_str((char *) a->name.data, "a", "scope name is the first arg");
    is_int(a->nargs, 1, "scope args");
    is_int(a->line, 4, "scope line");
    is_str(child(root, 1)->kind, "named", "custom block setter kind");
    is_int(TCONF(child(root, 1))->num, 3, "custom block setter scope gets values");

    /* "server" is the test module's directive, so "test" owns a test struct */
    ok(TCONF(child(test, 2)) == TCONF(test), "a scope that set nothing shares its parent's struct");
    ok(OCONF(test) == OCONF(root), "so does a block where the module set nothing");
    is_int(OCONF(child(test, 2))->value, 8, "other module's own value in server c");
    ok(OCONF(a) == OCONF(root), "untouched module shared all the way down");
    is_int(OCONF(a)->value, 42, "untouched module has its default");
    ok(TCONF(a) != TCONF(root), "a scope that set something owns a struct");
    is_int(TCONF(a)->flag, 1, "own value");
    is_int(TCONF(a)->num, 7, "inherited value from two levels up");
    is_str((char *) TCONF(a)->str.data, "top", "inherited string");
    is_int(TCONF(a)->size, 1024, "default where nobody set it");
    is_int(TCONF(b)->size, 1024 * 1024, "sibling has its own value");
    is_str((char *) TCONF(b)->str.data, "inner", "sibling's own string");
    is_int(TCONF(root)->flag, 0, "root got the flag default");

    fa_conf_each_scope(l.cycle, "test.server", count_servers, names);
    is_str(names, "abc", "each_scope visits in file order");
    is_str(fa_conf_full_path(&l.cf, &rel), "/prefix/x/y", "full_path prefixes relative");
    is_str(fa_conf_full_path(&l.cf, &abs), "/x/y", "full_path keeps absolute");
    unload(&l);

    late_loaded = 0;
    load(&l, "load_late;\nlate_value 9;\n");
    is_int(l.rc, FA_OK, "a module appended during the parse is found");
    is_int(late_loaded, 1, "load_late ran");
    is_int(((oconf_t *) l.cycle->root->conf[2])->value, 9, "late module's value");
    unload(&l);
}

static void
test_include(void)
{
    load_t     l;
    tconf_t   *t;
    fa_str_t  *items;
    char       text[256];

    mkdir(tpath("conf.d"), 0755);
    write_file("conf.d/b.conf", "test_list b;\n");
    write_file("conf.d/a.conf", "test_list a;\ntest_num 3;\n");
    write_file("conf.d/c.conf", "test_list c;\n");
    write_file("inner.conf", "server z { test_flag on; }\n");

    load(&l,
         "include conf.d/*.conf;\n"
         "include nothing/*.conf;\n"
         "test {\n"
         "    include inner.conf;\n"
         "}\n");
    is_int(l.rc, FA_OK, "include with glob");
    t = TCONF(l.cycle->root);
    items = t->list->elts;
    ok(t->list->nelts == 3 && items[0].data[0] == 'a' && items[1].data[0] == 'b'
       && items[2].data[0] == 'c', "glob files read in sorted order");
    is_int(t->num, 3, "included value");
    ok(child(child(l.cycle->root, 0), 0) != NULL, "include inside a block reads into it");
    unload(&l);

    snprintf(text, sizeof(text), "include %s;\n", tpath("conf.d/a.conf"));
    load(&l, text);
    is_int(l.rc, FA_OK, "include of an absolute path");
    unload(&l);

    write_file("dup.conf", "test_num 5;\n");
    expect_error("test_num 4;\ninclude dup.conf;\n", "dup.conf", 1,
                 "\"test_num\" directive is duplicate");

    write_file("loop1.conf", "test_flag on;\ninclude loop2.conf;\n");
    write_file("loop2.conf", "\n\ninclude loop1.conf;\n");
    snprintf(text, sizeof(text), "include loop: \"%s\"", tpath("loop1.conf"));
    expect_error("include loop1.conf;\n", "loop2.conf", 3, text);

    snprintf(text, sizeof(text), "include loop: \"%s\"", tpath("main.conf"));
    expect_error("\ninclude main.conf;\n", "main.conf", 2, text);

    snprintf(text, sizeof(text), "open() \"%s\" failed (No such file or directory)",
             tpath("missing.conf"));
    expect_error("test_num 1;\ninclude missing.conf;\n", "main.conf", 2, text);
    expect_error("include a b;\n", "main.conf", 1,
                 "invalid number of arguments in \"include\" directive");
    expect_error("include a {\n}\n", "main.conf", 1,
                 "directive \"include\" is not terminated by \";\"");
}


/* ---- errors ---------------------------------------------------------- */

static void
test_errors(void)
{
    expect_error("test_num 1;\n\nbogus 1;\n", "main.conf", 3, "unknown directive \"bogus\"");
    expect_error("test {\n  only_main x;\n}\n", "main.conf", 2,
                 "\"only_main\" directive is not allowed here");
    expect_error("test_num 1 2;\n", "main.conf", 1,
                 "invalid number of arguments in \"test_num\" directive");
    expect_error("test_list;\n", "main.conf", 1,
                 "invalid number of arguments in \"test_list\" directive");
    expect_error("test_two a b;\ntest_two c d;\n", "main.conf", 2,
                 "\"test_two\" directive is duplicate");
    expect_error("test_num 1;\ntest {\n}\ntest {\n}\n", "main.conf", 4,
                 "\"test\" directive is duplicate");
    expect_error("test;\n", "main.conf", 1, "directive \"test\" has no opening \"{\"");
    expect_error("test_num 5 {\n}\n", "main.conf", 1,
                 "directive \"test_num\" is not terminated by \";\"");
    expect_error("test {\n  test_num 5;\n", "main.conf", 2,
                 "unexpected end of file, expecting \"}\"");
    expect_error("test_num 5;\n}\n", "main.conf", 2, "unexpected \"}\"");
    expect_error("test_num 5\n}\n", "main.conf", 2, "unexpected \"}\"");
    expect_error("test_num 5;\n;\n", "main.conf", 2, "unexpected \";\"");
    expect_error("\n{\n", "main.conf", 2, "unexpected \"{\"");
    expect_error("test_num 5\n", "main.conf", 1,
                 "unexpected end of file, expecting \";\" or \"}\"");
    expect_error("test_str \"abc;\n\n}\n", "main.conf", 1, "unterminated quoted string");
    expect_error("test_str 'a'b;\n", "main.conf", 1, "unexpected \"b\"");
    expect_error("test_two a a;\n", "main.conf", 1,
                 "\"test_two\" directive needs two different values");

    expect_error("test_flag yes;\n", "main.conf", 1, "invalid value \"yes\" in \"test_flag\" "
                 "directive, it must be \"on\" or \"off\"");
    expect_error("test_num 500;\n", "main.conf", 1, "invalid value \"500\" in \"test_num\" "
                 "directive, it must be between 1 and 100");
    expect_error("test_num -3;\n", "main.conf", 1, "invalid value \"-3\" in \"test_num\" "
                 "directive, it must be a number");
    expect_error("test_size 10x;\n", "main.conf", 1, "invalid value \"10x\" in \"test_size\" "
                 "directive, it must be a size such as 512, 64k, 10m or 1g");
    expect_error("test_time 5y;\n", "main.conf", 1, "invalid value \"5y\" in \"test_time\" "
                 "directive, it must be a time such as 500ms, 30s, 5m, 1h or 1d");
    expect_error("test_enum medium;\n", "main.conf", 1, "invalid value \"medium\" in "
                 "\"test_enum\" directive, it must be \"low\", \"high\" or \"auto\"");
}

static void
test_limits(void)
{
    char    *text, *p;
    char     want[256];
    load_t   l;
    int      fd;

    /* one word of FA_CONF_MAX_TOKEN bytes is fine, one more is not */
    text = malloc(FA_CONF_MAX_TOKEN + 64);
    p = text + sprintf(text, "test_str ");
    memset(p, 'a', FA_CONF_MAX_TOKEN);
    strcpy(p + FA_CONF_MAX_TOKEN, ";\n");
    load(&l, text);
    is_int(l.rc, FA_OK, "a word of the maximum length");
    unload(&l);
    p = text + sprintf(text, "\n\ntest_str \"");
    memset(p, 'a', FA_CONF_MAX_TOKEN + 1);
    strcpy(p + FA_CONF_MAX_TOKEN + 1, "\";\n");
    snprintf(want, sizeof(want), "too long parameter \"%.32s...\" (at most %d bytes)",
             p, FA_CONF_MAX_TOKEN);
    expect_error(text, "main.conf", 3, want);
    free(text);

    /* FA_CONF_MAX_ARGS arguments are fine, one more is not */
    text = malloc(4096);
    p = text + sprintf(text, "test_list");
    for (int i = 0; i < FA_CONF_MAX_ARGS; i++) {
        p += sprintf(p, " a%d", i);
    }
    strcpy(p, ";\n");
    load(&l, text);
    is_int(l.rc, FA_OK, "the maximum number of arguments");
    is_int(TCONF(l.cycle->root)->list->nelts, FA_CONF_MAX_ARGS, "all arguments kept");
    unload(&l);
    strcpy(p, " one_more;\n");
    snprintf(want, sizeof(want), "too many arguments in \"test_list\" directive (at most %d)",
             FA_CONF_MAX_ARGS);
    expect_error(text, "main.conf", 1, want);

    /* FA_CONF_MAX_DEPTH nested blocks are fine, one more is not */
    p = text;
    for (int i = 0; i < FA_CONF_MAX_DEPTH; i++) {
        p += sprintf(p, "deep {\n");
    }
    for (int i = 0; i < FA_CONF_MAX_DEPTH; i++) {
        p += sprintf(p, "}\n");
    }
    load(&l, text);
    is_int(l.rc, FA_OK, "the maximum nesting");
    unload(&l);
    p = text;
    for (int i = 0; i <= FA_CONF_MAX_DEPTH; i++) {
        p += sprintf(p, "deep {\n");
    }
    snprintf(want, sizeof(want), "too deep nesting of blocks and includes (at most %d levels)",
             FA_CONF_MAX_DEPTH);
    expect_error(text, "main.conf", FA_CONF_MAX_DEPTH + 1, want);
    free(text);

    /* a file over the limit is refused before it is read (sparse: costs nothing) */
    fd = open(tpath("big.conf"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ok(fd != -1 && ftruncate(fd, FA_CONF_MAX_FILE + 1) == 0, "made a big file");
    close(fd);
    snprintf(want, sizeof(want), "\"%s\" is too large (more than 16 MB)", tpath("big.conf"));
    expect_error("include big.conf;\n", "main.conf", 1, want);
    unlink(tpath("big.conf"));

    mkdir(tpath("adir"), 0755);
    snprintf(want, sizeof(want), "\"%s\" is not a regular file", tpath("adir"));
    expect_error("include adir;\n", "main.conf", 1, want);
}

/* a missing main file has no FILE:LINE to blame */
static void
test_missing_main(void)
{
    load_t  l;
    char    want[512];

    unlink(tpath("main.conf"));
    l.cycle = NULL;
    {
        fa_pool_t  *pool = fa_pool_create(4096, &fa_log_stderr);
        fa_cycle_t *cycle = fa_pcalloc(pool, sizeof(fa_cycle_t));

        cycle->pool = pool;
        fa_array_init(&cycle->modules, pool, 2, sizeof(fa_module_t *));
        memset(&l.cf, 0, sizeof(l.cf));
        l.cf.cycle = cycle;
        l.cf.pool = pool;
        ok(fa_conf_parse_file(&l.cf, tpath("nope.conf")) == FA_ERROR, "missing main file");
        snprintf(want, sizeof(want), "open() \"%s\" failed (No such file or directory)",
                 tpath("nope.conf"));
        is_str(l.cf.error, want, "missing main file message");
        fa_pool_destroy(pool);
    }
}

/* garbage never crashes: every byte value, random structure */
static void
test_garbage(void)
{
    static const char  alphabet[] = "ab ;{}\"'\\#\n\t\0\x01\xff";
    char               text[512];
    load_t             l;
    int                sane = 0;
    unsigned           seed = 12345;

    for (int round = 0; round < 300; round++) {
        size_t  n = 0;

        for (size_t i = 0; i < sizeof(text) - 1; i++) {
            seed = seed * 1103515245 + 12345;
            text[n] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
            if (text[n] != '\0') {
                n++;
            }
        }
        text[n] = '\0';
        load(&l, text);
        sane += (l.rc == FA_OK || l.cf.error != NULL);
        unload(&l);
    }
    is_int(sane, 300, "random input: accepted, or refused with a message");
}

static void
remove_dir(void)
{
    static const char  *files[] = {
        "conf.d/a.conf", "conf.d/b.conf", "conf.d/c.conf", "conf.d", "inner.conf",
        "dup.conf", "loop1.conf", "loop2.conf", "main.conf", "adir", NULL
    };

    for (int i = 0; files[i]; i++) {
        if (unlink(tpath(files[i])) == -1) {
            rmdir(tpath(files[i]));
        }
    }
    rmdir(dir);
}

int
main(void)
{
    char  *p = deep_scopes;

    strcpy(dir, "/tmp/test_conf.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    init_modules();
    p += sprintf(p, "main");
    for (int i = 1; i <= FA_CONF_MAX_DEPTH + 1; i++) {
        p += sprintf(p, " deep");
        for (int j = 1; j < i; j++) {
            p += sprintf(p, ".deep");
        }
    }

    test_values();
    test_scopes();
    test_include();
    test_errors();
    test_limits();
    test_missing_main();
    test_garbage();
    remove_dir();
    return done_testing();
}
