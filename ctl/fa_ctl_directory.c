/*
 * facteurctl domain|user|alias: the directory (modules/auth).  Passwords are
 * read from a terminal prompt or, with --password-stdin, as one line of
 * standard input; never from the command line, where other users could see
 * them in the process list.
 */

#include "fa_ctl.h"
#include "fa_auth_directory.h"
#include "fa_auth_password.h"

static fa_auth_dir_t *
fa_ctl_dir_open(fa_ctl_t *ctl)
{
    const char     *path = fa_auth_dir_path(ctl->cycle);
    fa_auth_dir_t  *d = fa_auth_dir_open(path, 0, &fa_log_stderr);

    if (d == NULL) {
        fa_ctl_error("cannot open the directory \"%s\" (see above)", path);
    }
    return d;
}

static int
fa_ctl_status(fa_int_t rc, const char *what, const char *name)
{
    if (rc == FA_OK) {
        return FA_CTL_OK;
    }
    fa_ctl_error("%s \"%s\": %s", what, name, fa_auth_strerror(rc));
    return rc == FA_ERROR ? FA_CTL_FAILED : FA_CTL_REFUSED;
}

static int
fa_ctl_print_key(void *data, const fa_str_t *key, const fa_str_t *value)
{
    (void) data;
    (void) value;
    printf("%.*s\n", (int) key->len, key->data);
    return 0;
}

static int
fa_ctl_print_alias(void *data, const fa_str_t *key, const fa_str_t *value)
{
    const u_char  *p = value->data, *end = value->data + value->len, *eol;

    (void) data;
    for ( ; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t) (end - p));
        eol = eol ? eol : end;
        printf("%.*s %.*s\n", (int) key->len, key->data, (int) (eol - p), p);
    }
    return 0;
}

/* normalise argv[i] as an address ("@domain" only where allowed) */
static int
fa_ctl_address(fa_ctl_t *ctl, const char *arg, int catch_all, fa_str_t *out)
{
    fa_str_t  in = { strlen(arg), (u_char *) arg };

    if (fa_auth_address_normalize(ctl->pool, &in, out) != FA_OK
        || (!catch_all && out->data[0] == '@'))
    {
        return fa_ctl_error("invalid address \"%s\"", arg);
    }
    return FA_CTL_OK;
}

static int
fa_ctl_domain_arg(fa_ctl_t *ctl, const char *arg, fa_str_t *out)
{
    fa_str_t  in = { strlen(arg), (u_char *) arg };

    if (fa_auth_domain_normalize(ctl->pool, &in, out) != FA_OK) {
        return fa_ctl_error("invalid domain \"%s\"", arg);
    }
    return FA_CTL_OK;
}

/* ---- the commands ---- */

#define FA_CTL_WITH_DIR(ctl, d)                                               \
    fa_auth_dir_t *d = fa_ctl_dir_open(ctl);                                  \
    if (d == NULL) return FA_CTL_FAILED

/* domain add and domain del: one domain argument, one directory call */
static int
fa_ctl_domain_change(fa_ctl_t *ctl, char **argv,
    fa_int_t (*change)(fa_auth_dir_t *d, const fa_str_t *domain))
{
    fa_str_t  dom;
    int       rc;

    if (fa_ctl_domain_arg(ctl, argv[0], &dom) != FA_CTL_OK) {
        return FA_CTL_REFUSED;
    }
    FA_CTL_WITH_DIR(ctl, d);
    rc = fa_ctl_status(change(d, &dom), "domain", (char *) dom.data);
    fa_auth_dir_close(d);
    return rc;
}

static int
fa_ctl_domain_add(fa_ctl_t *ctl, int argc, char **argv)
{
    (void) argc;
    return fa_ctl_domain_change(ctl, argv, fa_auth_domain_add);
}

static int
fa_ctl_domain_del(fa_ctl_t *ctl, int argc, char **argv)
{
    (void) argc;
    return fa_ctl_domain_change(ctl, argv, fa_auth_domain_del);
}

static int
fa_ctl_domain_list(fa_ctl_t *ctl, int argc, char **argv)
{
    int  rc;

    (void) argc;
    (void) argv;
    FA_CTL_WITH_DIR(ctl, d);
    rc = fa_auth_domain_list(d, fa_ctl_print_key, NULL) == FA_OK ? FA_CTL_OK : FA_CTL_FAILED;
    fa_auth_dir_close(d);
    return rc;
}

/* read, hash and forget a password; the hash goes to out */
static int
fa_ctl_new_password(fa_ctl_t *ctl, char *out, size_t size)
{
    char  password[1025];
    int   n = fa_ctl_read_password(ctl, password, sizeof(password));

    if (n < 0) {
        return FA_CTL_REFUSED;
    }
    n = fa_auth_password_hash(password, (size_t) n, out, size) == FA_OK;
    explicit_bzero(password, sizeof(password));
    return n ? FA_CTL_OK : (fa_ctl_error("hashing the password failed"), FA_CTL_FAILED);
}

/* refuse before asking for a password that would be thrown away */
static fa_int_t
fa_ctl_user_precheck(fa_ctl_t *ctl, fa_auth_dir_t *d, const fa_str_t *user, int add)
{
    fa_auth_user_t  u;
    u_char         *at = memrchr(user->data, '@', user->len);
    fa_str_t        dom = { user->len - (size_t) (at + 1 - user->data), at + 1 };
    fa_int_t        rc = fa_auth_user_get(d, user, ctl->pool, &u);

    if (!add) {
        return rc;
    }
    if (rc != FA_AUTH_NOTFOUND) {
        return rc == FA_OK ? FA_AUTH_EXISTS : rc;
    }
    rc = fa_auth_domain_exists(d, &dom);
    return rc == FA_AUTH_NOTFOUND ? FA_AUTH_NODOMAIN : rc;
}

static int
fa_ctl_user_set(fa_ctl_t *ctl, char **argv, int add)
{
    char      hash[512];
    fa_str_t  user;
    fa_int_t  rc;

    if (fa_ctl_address(ctl, argv[0], 0, &user) != FA_CTL_OK) {
        return FA_CTL_REFUSED;
    }
    FA_CTL_WITH_DIR(ctl, d);
    rc = fa_ctl_user_precheck(ctl, d, &user, add);
    if (rc == FA_OK) {
        if (fa_ctl_new_password(ctl, hash, sizeof(hash)) != FA_CTL_OK) {
            fa_auth_dir_close(d);
            return FA_CTL_REFUSED;
        }
        rc = add ? fa_auth_user_add(d, &user, hash) : fa_auth_user_set_password(d, &user, hash);
        explicit_bzero(hash, sizeof(hash));
    }
    if (rc == FA_OK && add && fa_ctl_quota_apply(ctl, d, &user) != FA_OK) {
        fa_ctl_error("user \"%s\" added, but the store did not take the default quota "
                     "(see above): facteurctl user quota %s", (char *) user.data,
                     (char *) user.data);
    }
    fa_auth_dir_close(d);
    return fa_ctl_status(rc, "user", (char *) user.data);
}

static int
fa_ctl_user_add(fa_ctl_t *ctl, int argc, char **argv)
{
    (void) argc;
    return fa_ctl_user_set(ctl, argv, 1);
}

static int
fa_ctl_user_passwd(fa_ctl_t *ctl, int argc, char **argv)
{
    (void) argc;
    return fa_ctl_user_set(ctl, argv, 0);
}

/* like "doveadm auth test": does this password open this account? */
static int
fa_ctl_user_auth(fa_ctl_t *ctl, int argc, char **argv)
{
    char            password[1025];
    fa_str_t        user;
    fa_auth_user_t  u;
    fa_int_t        rc;
    int             n;

    (void) argc;
    if (fa_ctl_address(ctl, argv[0], 0, &user) != FA_CTL_OK) {
        return FA_CTL_REFUSED;
    }
    FA_CTL_WITH_DIR(ctl, d);
    rc = fa_auth_user_get(d, &user, ctl->pool, &u);
    fa_auth_dir_close(d);
    if (rc != FA_OK) {
        return fa_ctl_status(rc, "user", (char *) user.data);
    }
    ctl->password_stdin = 1;             /* no confirmation prompt for a check */
    n = fa_ctl_read_password(ctl, password, sizeof(password));
    if (n < 0) {
        return FA_CTL_REFUSED;
    }
    rc = fa_auth_password_verify((char *) u.password.data, u.password.len, password,
                                 (size_t) n, 0);
    explicit_bzero(password, sizeof(password));
    if (rc == FA_OK) {
        printf("%s: password accepted\n", (char *) user.data);
        return FA_CTL_OK;
    }
    return fa_ctl_error("%s: %s", (char *) user.data, rc == FA_DECLINED
                        ? "password refused" : "the stored password cannot be verified");
}

static int
fa_ctl_user_del(fa_ctl_t *ctl, int argc, char **argv)
{
    fa_str_t  user;
    int       rc;

    (void) argc;
    if (fa_ctl_address(ctl, argv[0], 0, &user) != FA_CTL_OK) {
        return FA_CTL_REFUSED;
    }
    FA_CTL_WITH_DIR(ctl, d);
    rc = fa_ctl_status(fa_auth_user_del(d, &user), "user", (char *) user.data);
    fa_auth_dir_close(d);
    return rc;
}

static int
fa_ctl_list(fa_ctl_t *ctl, int argc, char **argv, int aliases)
{
    fa_str_t   dom;
    fa_int_t   rc;

    if (argc == 1 && fa_ctl_domain_arg(ctl, argv[0], &dom) != FA_CTL_OK) {
        return FA_CTL_REFUSED;
    }
    FA_CTL_WITH_DIR(ctl, d);
    rc = aliases ? fa_auth_alias_list(d, argc ? &dom : NULL, fa_ctl_print_alias, NULL)
                 : fa_auth_user_list(d, argc ? &dom : NULL, fa_ctl_print_key, NULL);
    fa_auth_dir_close(d);
    return rc == FA_OK ? FA_CTL_OK : FA_CTL_FAILED;
}

static int
fa_ctl_user_list(fa_ctl_t *ctl, int argc, char **argv)
{
    return fa_ctl_list(ctl, argc, argv, 0);
}

static int
fa_ctl_alias_list(fa_ctl_t *ctl, int argc, char **argv)
{
    return fa_ctl_list(ctl, argc, argv, 1);
}

static int
fa_ctl_alias_add(fa_ctl_t *ctl, int argc, char **argv)
{
    fa_str_t  alias, target;
    int       rc = FA_CTL_OK;

    if (fa_ctl_address(ctl, argv[0], 1, &alias) != FA_CTL_OK) {
        return FA_CTL_REFUSED;
    }
    FA_CTL_WITH_DIR(ctl, d);
    for (int i = 1; i < argc && rc == FA_CTL_OK; i++) {
        rc = fa_ctl_address(ctl, argv[i], 0, &target);
        if (rc == FA_CTL_OK) {
            rc = fa_ctl_status(fa_auth_alias_add(d, &alias, &target), "alias target",
                               (char *) target.data);
        }
    }
    fa_auth_dir_close(d);
    return rc;
}

static int
fa_ctl_alias_del(fa_ctl_t *ctl, int argc, char **argv)
{
    fa_str_t  alias, target;
    int       rc;

    if (fa_ctl_address(ctl, argv[0], 1, &alias) != FA_CTL_OK
        || (argc == 2 && fa_ctl_address(ctl, argv[1], 0, &target) != FA_CTL_OK))
    {
        return FA_CTL_REFUSED;
    }
    FA_CTL_WITH_DIR(ctl, d);
    rc = fa_ctl_status(fa_auth_alias_del(d, &alias, argc == 2 ? &target : NULL), "alias",
                       argv[argc - 1]);
    fa_auth_dir_close(d);
    return rc;
}

const fa_ctl_command_t  fa_ctl_directory_commands[] = {
    { "domain", "add", "DOMAIN", 1, 1, fa_ctl_domain_add },
    { "domain", "del", "DOMAIN", 1, 1, fa_ctl_domain_del },
    { "domain", "list", "", 0, 0, fa_ctl_domain_list },
    { "user", "add", "ADDRESS [--password-stdin]", 1, 1, fa_ctl_user_add },
    { "user", "del", "ADDRESS", 1, 1, fa_ctl_user_del },
    { "user", "passwd", "ADDRESS [--password-stdin]", 1, 1, fa_ctl_user_passwd },
    { "user", "list", "[DOMAIN]", 0, 1, fa_ctl_user_list },
    { "user", "auth", "ADDRESS  (reads the password from standard input)", 1, 1,
      fa_ctl_user_auth },
    { "alias", "add", "ADDRESS|@DOMAIN TARGET...", 2, -1, fa_ctl_alias_add },
    { "alias", "del", "ADDRESS|@DOMAIN [TARGET]", 1, 2, fa_ctl_alias_del },
    { "alias", "list", "[DOMAIN]", 0, 1, fa_ctl_alias_list },
    { NULL, NULL, NULL, 0, 0, NULL }
};
