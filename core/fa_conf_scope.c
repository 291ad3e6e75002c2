/*
 * Scopes and commands: which module command a directive names in the
 * current scope, the per-scope module structs, and inheritance between
 * scopes after the parse (the rules are in fa_conf_file.h).  Reading files
 * and cutting them into directives is fa_conf_file.c.
 */

#include "fa_core.h"


/* ---- scopes ---------------------------------------------------------- */

static fa_conf_scope_t *
fa_conf_scope_alloc(fa_conf_t *cf, fa_conf_scope_t *parent, const char *kind)
{
    fa_conf_scope_t  *s;

    s = fa_pcalloc(cf->pool, sizeof(fa_conf_scope_t));
    if (s == NULL) {
        return NULL;
    }
    if (parent == NULL || strcmp(parent->kind, "main") == 0) {
        s->kind = fa_pstrcat(cf->pool, kind, "");
    } else {
        s->kind = fa_pstrcat(cf->pool, parent->kind, ".");
        s->kind = s->kind ? fa_pstrcat(cf->pool, s->kind, kind) : NULL;
    }
    s->conf = fa_pcalloc(cf->pool, FA_MAX_MODULES * sizeof(void *));
    s->own = fa_pcalloc(cf->pool, FA_MAX_MODULES);
    if (s->kind == NULL || s->conf == NULL || s->own == NULL
        || fa_array_init(&s->children, cf->pool, 4, sizeof(fa_conf_scope_t *)) != FA_OK)
    {
        return NULL;
    }
    fa_str_set(&s->name, "");
    s->parent = parent;
    s->file = cf->file;
    s->line = cf->line;
    return s;
}

/* the block's arguments (after the directive name) become the scope's */
static fa_int_t
fa_conf_scope_args(fa_conf_t *cf, fa_conf_scope_t *s)
{
    if (cf->nargs < 2) {
        return FA_OK;
    }
    s->nargs = cf->nargs - 1;
    s->args = fa_palloc(cf->pool, s->nargs * sizeof(fa_str_t));
    if (s->args == NULL) {
        return FA_ERROR;
    }
    memcpy(s->args, cf->args + 1, s->nargs * sizeof(fa_str_t));
    s->name = s->args[0];
    return FA_OK;
}

static fa_int_t
fa_conf_add_child(fa_conf_t *cf, fa_conf_scope_t *parent, fa_conf_scope_t *s)
{
    fa_conf_scope_t  **slot;

    if (parent->children.elts == NULL
        && fa_array_init(&parent->children, cf->pool, 4, sizeof(fa_conf_scope_t *)) != FA_OK)
    {
        return FA_ERROR;
    }
    slot = fa_array_push(&parent->children);
    if (slot == NULL) {
        return FA_ERROR;
    }
    *slot = s;
    return FA_OK;
}

fa_conf_scope_t *
fa_conf_scope_create(fa_conf_t *cf, fa_conf_scope_t *parent, const char *kind)
{
    fa_conf_scope_t  *s;

    s = fa_conf_scope_alloc(cf, parent, kind);
    if (s == NULL) {
        return NULL;
    }
    if (parent && (fa_conf_scope_args(cf, s) != FA_OK
                   || fa_conf_add_child(cf, parent, s) != FA_OK))
    {
        return NULL;
    }
    return s;
}

void *
fa_conf_get(fa_conf_t *cf, fa_conf_scope_t *scope, const fa_module_t *m)
{
    void  *conf;

    if (m->create_conf == NULL || m->index >= FA_MAX_MODULES) {
        return NULL;
    }
    if (scope->own[m->index]) {
        return scope->conf[m->index];
    }
    conf = m->create_conf(cf);
    if (conf == NULL) {
        return NULL;
    }
    scope->conf[m->index] = conf;
    scope->own[m->index] = 1;
    return conf;
}

static fa_int_t
fa_conf_visit(fa_cycle_t *cycle, fa_conf_scope_t *s, const char *kind,
    fa_scope_visit_pt fn, void *data)
{
    fa_conf_scope_t  **kids = s->children.elts;
    fa_int_t           rc;

    if (kind == NULL || strcmp(s->kind, kind) == 0) {
        rc = fn(cycle, s, data);
        if (rc != FA_OK) {
            return rc;
        }
    }
    for (fa_uint_t i = 0; i < s->children.nelts; i++) {
        rc = fa_conf_visit(cycle, kids[i], kind, fn, data);
        if (rc != FA_OK) {
            return rc;
        }
    }
    return FA_OK;
}

fa_int_t
fa_conf_each_scope(fa_cycle_t *cycle, const char *kind, fa_scope_visit_pt fn, void *data)
{
    if (cycle->root == NULL) {
        return FA_OK;
    }
    return fa_conf_visit(cycle, cycle->root, kind, fn, data);
}


/* ---- commands -------------------------------------------------------- */

static int
fa_conf_name_is(const fa_str_t *word, const char *name)
{
    size_t  n = strlen(name);

    return word->len == n && memcmp(word->data, name, n) == 0;
}

/* SCOPES is a space-separated list of kinds; NULL means "main" */
static int
fa_conf_scope_allows(const char *scopes, const char *kind)
{
    const char  *p = scopes ? scopes : "main";
    size_t       n, klen = strlen(kind);

    while (*p) {
        p += strspn(p, " ");
        n = strcspn(p, " ");
        if (n == klen && memcmp(p, kind, n) == 0) {
            return 1;
        }
        p += n;
    }
    return 0;
}

/*
 * The command named by args[0] for the current scope.  The modules array is read
 * afresh on every lookup: a load_module directive appends to it (and may
 * move it) while the file is being parsed.
 */
static const fa_command_t *
fa_conf_lookup(fa_conf_t *cf, fa_module_t **module)
{
    fa_array_t          *mods = &cf->cycle->modules;
    const fa_command_t  *cmd;
    fa_module_t         *m;
    int                  known = 0;

    for (fa_uint_t i = 0; i < mods->nelts; i++) {
        m = ((fa_module_t **) mods->elts)[i];
        for (cmd = m->commands; cmd && cmd->name; cmd++) {
            if (!fa_conf_name_is(&cf->args[0], cmd->name)) {
                continue;
            }
            if (fa_conf_scope_allows(cmd->scopes, cf->scope->kind)) {
                *module = m;
                return cmd;
            }
            known = 1;      /* another module may still allow it here */
        }
    }
    if (known) {
        fa_conf_error(cf, "\"%s\" directive is not allowed here", (char *) cf->args[0].data);
    } else {
        fa_conf_error(cf, "unknown directive \"%s\"", (char *) cf->args[0].data);
    }
    return NULL;
}

/* N arguments after the name; any allowed form will do, none set means none */
static int
fa_conf_nargs_ok(fa_uint_t type, fa_uint_t n)
{
    static const fa_uint_t  exact[] = {
        FA_CONF_NOARGS, FA_CONF_TAKE1, FA_CONF_TAKE2, FA_CONF_TAKE3, FA_CONF_TAKE4
    };
    fa_uint_t  counts = FA_CONF_NOARGS | FA_CONF_TAKE1 | FA_CONF_TAKE2 | FA_CONF_TAKE3
                        | FA_CONF_TAKE4 | FA_CONF_FLAG | FA_CONF_1MORE | FA_CONF_2MORE;

    if ((type & counts) == 0) {
        return n == 0;
    }
    return (n < fa_nelems(exact) && (type & exact[n]))
           || ((type & FA_CONF_FLAG) && n == 1)
           || ((type & FA_CONF_1MORE) && n >= 1)
           || ((type & FA_CONF_2MORE) && n >= 2);
}

/* "is duplicate" is tracked per scope, across the includes read into it */
static fa_int_t
fa_conf_mark_used(fa_conf_t *cf, const fa_command_t *cmd)
{
    fa_conf_scope_t      *s = cf->scope;
    const fa_command_t  **used, **slot;

    if (s->used.elts == NULL
        && fa_array_init(&s->used, cf->pool, 8, sizeof(fa_command_t *)) != FA_OK)
    {
        fa_conf_error(cf, "out of memory");
        return FA_ERROR;
    }
    used = s->used.elts;
    for (fa_uint_t i = 0; i < s->used.nelts; i++) {
        if (used[i] == cmd) {
            fa_conf_error(cf, "\"%s\" directive is duplicate", cmd->name);
            return FA_ERROR;
        }
    }
    slot = fa_array_push(&s->used);
    if (slot == NULL) {
        fa_conf_error(cf, "out of memory");
        return FA_ERROR;
    }
    *slot = cmd;
    return FA_OK;
}

static fa_int_t
fa_conf_check_command(fa_conf_t *cf, const fa_command_t *cmd, int block)
{
    if (block && !(cmd->type & FA_CONF_BLOCK)) {
        fa_conf_error(cf, "directive \"%s\" is not terminated by \";\"", cmd->name);
        return FA_ERROR;
    }
    if (!block && (cmd->type & FA_CONF_BLOCK)) {
        fa_conf_error(cf, "directive \"%s\" has no opening \"{\"", cmd->name);
        return FA_ERROR;
    }
    if (!fa_conf_nargs_ok(cmd->type, cf->nargs - 1)) {
        fa_conf_error(cf, "invalid number of arguments in \"%s\" directive", cmd->name);
        return FA_ERROR;
    }
    if (cmd->type & FA_CONF_MULTI) {
        return FA_OK;
    }
    return fa_conf_mark_used(cf, cmd);
}

const fa_command_t *
fa_conf_find_command(fa_conf_t *cf, int block, fa_module_t **module)
{
    const fa_command_t  *cmd;

    cmd = fa_conf_lookup(cf, module);
    if (cmd == NULL || fa_conf_check_command(cf, cmd, block) != FA_OK) {
        return NULL;
    }
    return cmd;
}


/* ---- inheritance ----------------------------------------------------- */

static fa_int_t
fa_conf_merge_one(fa_conf_t *cf, fa_conf_scope_t *s, fa_module_t *m,
    void *parent, void *child)
{
    char  *rv;

    /* errors in merge_conf point at the block that opened the scope */
    cf->scope = s;
    cf->file = s->file;
    cf->line = s->line;
    cf->args = NULL;
    cf->nargs = 0;

    rv = m->merge_conf(cf, parent, child);
    if (rv == FA_CONF_ERROR) {
        fa_conf_error(cf, "merging the configuration of module \"%s\" failed", m->name);
        return FA_ERROR;
    }
    if (rv != FA_CONF_OK) {
        fa_conf_error(cf, "%s", rv);
        return FA_ERROR;
    }
    return FA_OK;
}

/* the root gets every module's struct, and its defaults from a blank one */
static fa_int_t
fa_conf_merge_root(fa_conf_t *cf, fa_conf_scope_t *root)
{
    fa_array_t   *mods = &cf->cycle->modules;
    fa_module_t  *m;
    void         *conf, *blank;

    for (fa_uint_t i = 0; i < mods->nelts; i++) {
        m = ((fa_module_t **) mods->elts)[i];
        if (m->create_conf == NULL || m->index >= FA_MAX_MODULES) {
            continue;
        }
        cf->scope = root;
        conf = fa_conf_get(cf, root, m);
        blank = NULL;
        if (conf && m->merge_conf) {
            blank = m->create_conf(cf);
        }
        if (conf == NULL || (m->merge_conf && blank == NULL)) {
            fa_conf_error(cf, "could not create the configuration of module \"%s\"",
                          m->name);
            return FA_ERROR;
        }
        if (blank && fa_conf_merge_one(cf, root, m, blank, conf) != FA_OK) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

static fa_int_t
fa_conf_merge_scope(fa_conf_t *cf, fa_conf_scope_t *s)
{
    fa_array_t        *mods = &cf->cycle->modules;
    fa_conf_scope_t  **kids = s->children.elts;
    fa_module_t       *m;
    fa_uint_t          idx;

    for (fa_uint_t i = 0; i < mods->nelts; i++) {
        m = ((fa_module_t **) mods->elts)[i];
        idx = m->index;
        if (idx >= FA_MAX_MODULES) {
            continue;
        }
        if (!s->own[idx]) {
            s->conf[idx] = s->parent->conf[idx];    /* set nothing: share */
            continue;
        }
        if (m->merge_conf
            && fa_conf_merge_one(cf, s, m, s->parent->conf[idx], s->conf[idx]) != FA_OK)
        {
            return FA_ERROR;
        }
    }
    for (fa_uint_t i = 0; i < s->children.nelts; i++) {
        if (fa_conf_merge_scope(cf, kids[i]) != FA_OK) {
            return FA_ERROR;
        }
    }
    return FA_OK;
}

fa_int_t
fa_conf_merge_scopes(fa_conf_t *cf)
{
    fa_conf_scope_t   *root = cf->cycle->root;
    fa_conf_scope_t  **kids;
    fa_int_t           rc = FA_OK;

    if (root == NULL) {
        return FA_OK;
    }
    if (fa_conf_merge_root(cf, root) != FA_OK) {
        rc = FA_ERROR;
    }
    kids = root->children.elts;
    for (fa_uint_t i = 0; rc == FA_OK && i < root->children.nelts; i++) {
        rc = fa_conf_merge_scope(cf, kids[i]);
    }
    /* init_conf errors that follow name the main file, without a line */
    cf->scope = root;
    cf->file = root->file;
    cf->line = 0;
    return rc;
}


/* ---- domains ---------------------------------------------------------- */

fa_conf_scope_t *
fa_conf_domain(fa_cycle_t *cycle, const fa_str_t *name)
{
    fa_conf_scope_t  **kids;

    if (cycle == NULL || cycle->root == NULL) {
        return NULL;
    }
    kids = cycle->root->children.elts;
    for (fa_uint_t i = 0; i < cycle->root->children.nelts; i++) {
        if (strcmp(kids[i]->kind, "domain") == 0 && kids[i]->name.len == name->len
            && strncasecmp((char *) kids[i]->name.data, (char *) name->data, name->len) == 0)
        {
            return kids[i];
        }
    }
    return NULL;
}


/* ---- paths ----------------------------------------------------------- */

char *
fa_conf_full_path(fa_conf_t *cf, const fa_str_t *path)
{
    const char  *prefix = "";
    size_t       plen;
    char        *p;

    if (!(path->len && path->data[0] == '/') && cf->cycle && cf->cycle->prefix) {
        prefix = cf->cycle->prefix;
    }
    plen = strlen(prefix);
    p = fa_pnalloc(cf->pool, plen + path->len + 1);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, prefix, plen);
    if (path->len) {
        memcpy(p + plen, path->data, path->len);
    }
    p[plen + path->len] = '\0';
    return p;
}
