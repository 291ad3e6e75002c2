/*
 * The generic directive setters.  Each writes the directive's one argument
 * (all of them for str_array) at cmd->offset in the module's struct for the
 * current scope.  A field still holding its FA_CONF_UNSET marker is free; a
 * second value in the same struct is refused as "is duplicate", which also
 * catches two directives that share a field.
 *
 * Invalid values are reported the same way everywhere:
 *   invalid value "X" in "NAME" directive, it must be ...
 * so an operator learns both what was wrong and what would be right.
 */

#include "fa_core.h"

#define fa_conf_field(conf, cmd, type)  ((type *) ((char *) (conf) + (cmd)->offset))

static char *
fa_conf_invalid(fa_conf_t *cf, const char *expected)
{
    return fa_conf_error(cf, "invalid value \"%s\" in \"%s\" directive, it must be %s",
                         (char *) cf->args[1].data, (char *) cf->args[0].data,
                         expected);
}

/* optional post: an fa_conf_bounds_t, checked on the parsed value */
static char *
fa_conf_check_bounds(fa_conf_t *cf, const fa_command_t *cmd, int64_t v)
{
    const fa_conf_bounds_t  *b = cmd->post;

    if (b == NULL || (v >= b->min && v <= b->max)) {
        return FA_CONF_OK;
    }
    return fa_conf_error(cf, "invalid value \"%s\" in \"%s\" directive, "
                         "it must be between %" PRId64 " and %" PRId64,
                         (char *) cf->args[1].data, (char *) cf->args[0].data,
                         b->min, b->max);
}

char *
fa_conf_set_flag(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_int_t  *field = fa_conf_field(conf, cmd, fa_int_t);

    if (*field != FA_CONF_UNSET) {
        return "is duplicate";
    }
    if (fa_str_eqi(&cf->args[1], "on")) {
        *field = 1;
    } else if (fa_str_eqi(&cf->args[1], "off")) {
        *field = 0;
    } else {
        return fa_conf_invalid(cf, "\"on\" or \"off\"");
    }
    return FA_CONF_OK;
}

char *
fa_conf_set_str(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_str_t  *field = fa_conf_field(conf, cmd, fa_str_t);

    if (field->data) {
        return "is duplicate";
    }
    *field = cf->args[1];       /* the parser's copy lives in cf->pool */
    return FA_CONF_OK;
}

char *
fa_conf_set_path(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_str_t  *field = fa_conf_field(conf, cmd, fa_str_t);
    char      *path;

    if (field->data) {
        return "is duplicate";
    }
    path = fa_conf_full_path(cf, &cf->args[1]);
    if (path == NULL) {
        return fa_conf_error(cf, "out of memory");
    }
    field->data = (u_char *) path;
    field->len = strlen(path);
    return FA_CONF_OK;
}

char *
fa_conf_set_num(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_int_t  *field = fa_conf_field(conf, cmd, fa_int_t);
    int64_t    v;

    if (*field != FA_CONF_UNSET) {
        return "is duplicate";
    }
    v = fa_atoi(cf->args[1].data, cf->args[1].len);
    if (v < 0 || v > INTPTR_MAX) {
        return fa_conf_invalid(cf, "a number");
    }
    if (fa_conf_check_bounds(cf, cmd, v) != FA_CONF_OK) {
        return FA_CONF_ERROR;
    }
    *field = (fa_int_t) v;
    return FA_CONF_OK;
}

char *
fa_conf_set_size(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    size_t   *field = fa_conf_field(conf, cmd, size_t);
    int64_t   v;

    if (*field != FA_CONF_UNSET_SIZE) {
        return "is duplicate";
    }
    v = fa_parse_size(&cf->args[1]);
    if (v < 0 || (uint64_t) v >= (uint64_t) SIZE_MAX) {
        return fa_conf_invalid(cf, "a size such as 512, 64k, 10m or 1g");
    }
    if (fa_conf_check_bounds(cf, cmd, v) != FA_CONF_OK) {
        return FA_CONF_ERROR;
    }
    *field = (size_t) v;
    return FA_CONF_OK;
}

/* bare numbers are seconds, as in nginx */
char *
fa_conf_set_msec(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_msec_t  *field = fa_conf_field(conf, cmd, fa_msec_t);
    fa_msec_t   v;

    if (*field != FA_CONF_UNSET_MSEC) {
        return "is duplicate";
    }
    v = fa_parse_time(&cf->args[1], 1);
    if (v < 0) {
        return fa_conf_invalid(cf, "a time such as 500ms, 30s, 5m, 1h or 1d");
    }
    if (fa_conf_check_bounds(cf, cmd, v) != FA_CONF_OK) {
        return FA_CONF_ERROR;
    }
    *field = v;
    return FA_CONF_OK;
}

/* "\"a\", \"b\" or \"c\"" from the table, cut (never overflowed) if long */
static void
fa_conf_enum_names(const fa_conf_enum_t *e, char *buf, size_t size)
{
    size_t  n = 0;

    buf[0] = '\0';
    for (fa_uint_t i = 0; e[i].name && n < size; i++) {
        n += fa_snprintf(buf + n, size - n, "%s\"%s\"",
                         i == 0 ? "" : e[i + 1].name ? ", " : " or ", e[i].name);
    }
}

char *
fa_conf_set_enum(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_uint_t             *field = fa_conf_field(conf, cmd, fa_uint_t);
    const fa_conf_enum_t  *e = cmd->post;
    char                   names[512];

    if (*field != FA_CONF_UNSET_UINT) {
        return "is duplicate";
    }
    for (fa_uint_t i = 0; e && e[i].name; i++) {
        if (fa_str_casecmp(&cf->args[1], e[i].name) == 0) {
            *field = e[i].value;
            return FA_CONF_OK;
        }
    }
    if (e == NULL) {
        return fa_conf_error(cf, "\"%s\" directive has no values to choose from",
                             (char *) cf->args[0].data);
    }
    fa_conf_enum_names(e, names, sizeof(names));
    return fa_conf_invalid(cf, names);
}

/*
 * Every argument is appended.  Only a FA_CONF_MULTI directive may add to a
 * list that already has values; for the others a second use is a duplicate.
 * NULL and FA_CONF_UNSET_PTR both mean "not set yet".
 */
char *
fa_conf_set_str_array(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    fa_array_t  **field = fa_conf_field(conf, cmd, fa_array_t *);
    fa_str_t     *s;

    if (*field == NULL || *field == FA_CONF_UNSET_PTR) {
        *field = fa_array_create(cf->pool, 4, sizeof(fa_str_t));
        if (*field == NULL) {
            return fa_conf_error(cf, "out of memory");
        }
    } else if (!(cmd->type & FA_CONF_MULTI)) {
        return "is duplicate";
    }
    for (fa_uint_t i = 1; i < cf->nargs; i++) {
        s = fa_array_push(*field);
        if (s == NULL) {
            return fa_conf_error(cf, "out of memory");
        }
        *s = cf->args[i];
    }
    return FA_CONF_OK;
}

char *
fa_conf_set_block(fa_conf_t *cf, const fa_command_t *cmd, void *conf)
{
    (void) cmd;
    (void) conf;
    return fa_conf_block(cf, (const char *) cf->args[0].data, NULL);
}
