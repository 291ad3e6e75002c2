/*
 * facteurctl import passwd-file FILE [--domain=DOMAIN] [--allow-plain]
 *
 * Users from a Dovecot passwd-file.  Names without "@" get --domain.  Hashes
 * are kept as they are (with their {SCHEME} prefix: verification reads it);
 * a {PLAIN} password, accepted only with --allow-plain, is hashed with
 * yescrypt on the way in, so no password is ever stored in clear.  Importing
 * the same file again updates the passwords: it is safe to repeat.
 */

#include "fa_ctl.h"
#include "fa_auth_directory.h"
#include "fa_auth_password.h"
#include "fa_auth_passwd_file.h"

typedef struct {
    fa_ctl_t       *ctl;
    fa_auth_dir_t  *dir;
    const char     *domain;           /* for names without "@" */
    fa_uint_t       added;
    fa_uint_t       updated;
} fa_ctl_import_t;

static void
fa_ctl_import_error(fa_auth_passwd_file_t *pf, const char *message)
{
    (void) pf;
    fprintf(stderr, "facteurctl: %s\n", message);
}

/* the value to store: the hash as given, or a new hash of a plaintext one */
static fa_int_t
fa_ctl_import_hash(const fa_auth_passwd_file_entry_t *e, char *out, size_t size)
{
    if (e->info.plain) {                        /* "{PLAIN}secret": hash "secret" */
        return fa_auth_password_hash(e->info.hash, e->info.hash_len, out, size);
    }
    if (e->password.len >= size) {
        return FA_ERROR;
    }
    memcpy(out, e->password.data, e->password.len);
    out[e->password.len] = '\0';
    return FA_OK;
}

static fa_int_t
fa_ctl_import_entry(fa_auth_passwd_file_t *pf, const fa_auth_passwd_file_entry_t *e)
{
    fa_ctl_import_t  *im = pf->data;
    char              name[FA_AUTH_ADDRESS_MAX + 1], hash[FA_AUTH_PASSWORD_HASH_SIZE + 1100];
    fa_str_t          raw, user;
    fa_int_t          rc;

    if (memchr(e->user.data, '@', e->user.len) == NULL && im->domain == NULL) {
        fa_auth_passwd_file_error(pf, "\"%.*s\" has no domain: give --domain=DOMAIN",
                                  (int) e->user.len, e->user.data);
        return FA_OK;
    }
    raw.len = fa_snprintf(name, sizeof(name), "%.*s%s%s", (int) e->user.len, e->user.data,
                          im->domain && !memchr(e->user.data, '@', e->user.len) ? "@" : "",
                          im->domain && !memchr(e->user.data, '@', e->user.len)
                          ? im->domain : "");
    raw.data = (u_char *) name;
    if (fa_auth_address_normalize(im->ctl->pool, &raw, &user) != FA_OK
        || user.data[0] == '@')
    {
        fa_auth_passwd_file_error(pf, "invalid address \"%s\"", name);
        return FA_OK;
    }
    if (fa_ctl_import_hash(e, hash, sizeof(hash)) != FA_OK) {
        fa_auth_passwd_file_error(pf, "the password of \"%s\" cannot be stored", name);
        return FA_OK;
    }
    rc = fa_auth_user_add(im->dir, &user, hash);
    if (rc == FA_AUTH_EXISTS) {
        rc = fa_auth_user_set_password(im->dir, &user, hash);
        im->updated += rc == FA_OK;
    } else {
        im->added += rc == FA_OK;
    }
    explicit_bzero(hash, sizeof(hash));
    if (rc != FA_OK) {
        fa_auth_passwd_file_error(pf, "\"%s\": %s", (char *) user.data, fa_auth_strerror(rc));
    }
    return rc == FA_ERROR ? FA_ERROR : FA_OK;
}

static int
fa_ctl_import_passwd_file(fa_ctl_t *ctl, int argc, char **argv)
{
    fa_auth_passwd_file_t  pf;
    fa_ctl_import_t        im;
    fa_int_t               rc;

    (void) argc;
    memset(&im, 0, sizeof(im));
    memset(&pf, 0, sizeof(pf));
    im.ctl = ctl;
    im.domain = ctl->domain;
    im.dir = fa_auth_dir_open(fa_auth_dir_path(ctl->cycle), 0, &fa_log_stderr);
    if (im.dir == NULL) {
        return fa_ctl_error("cannot open the directory (see above)"), FA_CTL_FAILED;
    }
    pf.flags = ctl->allow_plain ? FA_AUTH_PASSWORD_ALLOW_PLAIN : 0;
    pf.entry = fa_ctl_import_entry;
    pf.error = fa_ctl_import_error;
    pf.data = &im;
    rc = fa_auth_passwd_file_read(&pf, argv[0]);
    fa_auth_dir_close(im.dir);
    printf("imported %lu users (%lu new, %lu updated), %lu lines refused\n",
           (unsigned long) (im.added + im.updated), (unsigned long) im.added,
           (unsigned long) im.updated, (unsigned long) pf.errors);
    /* the reader says FA_ERROR for refused lines too: those are the user's to fix */
    if (pf.errors) {
        return FA_CTL_REFUSED;
    }
    return rc == FA_OK ? FA_CTL_OK : FA_CTL_FAILED;
}

const fa_ctl_command_t  fa_ctl_import_commands[] = {
    { "import", "passwd-file", "FILE|- [--domain=DOMAIN] [--allow-plain]", 1, 1,
      fa_ctl_import_passwd_file },
    { NULL, NULL, NULL, 0, 0, NULL }
};
