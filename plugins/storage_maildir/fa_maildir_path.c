/*
 * Where things are: a user's Maildir, and the folder of a mailbox.
 *
 * Mailbox names are UTF-8 with "/" between levels (fa_storage.h); on disk a
 * Maildir++ folder is ".LEVEL.LEVEL" in the user's Maildir, each level in
 * IMAP modified UTF-7 (Dovecot's default on disk), "." escaped as "\2e"
 * the way Dovecot's listescape plugin does.  The storage module's
 * fa_mailbox_to_maildir and fa_mailbox_from_maildir do the conversion, so
 * facteurctl's Maildir import and export name folders exactly as we do.
 */

#include "fa_maildir.h"

char *
fa_maildir_join(fa_pool_t *pool, const char *a, const char *b)
{
    size_t  la = strlen(a), lb = strlen(b);
    char   *p = fa_pnalloc(pool, la + lb + 2);

    if (p) {
        memcpy(p, a, la);
        p[la] = '/';
        memcpy(p + la + 1, b, lb + 1);
    }
    return p;
}

/* one user-name part as a directory name: no "/", no control bytes, not "." or ".." */
static int
fa_maildir_user_part_ok(const u_char *p, size_t n)
{
    if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '/') {
            return 0;
        }
    }
    return 1;
}

/* PATH/DOMAIN/LOCAL/Maildir, made (with cur, new, tmp) on first use */
fa_int_t
fa_maildir_user_root(fa_maildir_t *md, const fa_str_t *user, fa_pool_t *pool, char **root)
{
    const u_char  *at = NULL;
    size_t         size, llen;
    const char    *domain = "_nodomain";
    size_t         dlen = sizeof("_nodomain") - 1;
    struct stat    sb;
    char          *p;

    for (size_t i = user->len; i > 0; i--) {
        if (user->data[i - 1] == '@') {
            at = user->data + i - 1;
            break;
        }
    }
    llen = at ? (size_t) (at - user->data) : user->len;
    if (at) {
        domain = (const char *) at + 1;
        dlen = user->len - llen - 1;
        if (!fa_maildir_user_part_ok(at + 1, dlen)
            || (dlen == 9 && memcmp(domain, "_nodomain", 9) == 0))
        {
            return FA_STORAGE_INVALID;
        }
    }
    if (!fa_maildir_user_part_ok(user->data, llen)) {
        return FA_STORAGE_INVALID;
    }
    size = md->conf->path.len + dlen + llen + sizeof("///Maildir");
    p = fa_pnalloc(pool, size);
    if (p == NULL) {
        return FA_ERROR;
    }
    fa_snprintf(p, size, "%.*s/%.*s/%.*s/Maildir", (int) md->conf->path.len,
                md->conf->path.data, (int) dlen, domain, (int) llen, user->data);
    *root = p;

    /* cur/ is made last, so its presence means the namespace is complete */
    if (stat(fa_maildir_join(pool, p, "cur"), &sb) == 0) {
        return FA_OK;
    }
    return fa_maildir_mkdirs(md, p, 1);
}

static int
fa_maildir_is_inbox(const u_char *p, size_t n)
{
    return n == 5 && strncasecmp((const char *) p, "INBOX", 5) == 0;
}

/*
 * The folder of a mailbox.  "INBOX" (any case) is the Maildir itself; its
 * children are ".INBOX.child", as Dovecot lays them out.
 */
fa_int_t
fa_maildir_locate(fa_maildir_t *md, const fa_str_t *user, const fa_str_t *name,
    fa_pool_t *pool, fa_maildir_loc_t *loc)
{
    fa_str_t   norm = *name;
    fa_int_t   rc;
    char      *folder;

    if (fa_storage_mailbox_name_valid(name) != FA_OK) {
        return FA_STORAGE_INVALID;
    }
    rc = fa_maildir_user_root(md, user, pool, &loc->root);
    if (rc != FA_OK) {
        return rc;
    }
    loc->inbox = fa_maildir_is_inbox(name->data, name->len);
    if (loc->inbox) {
        loc->dir = loc->root;
        return FA_OK;
    }
    if (name->len > 5 && name->data[5] == FA_MAILBOX_SEPARATOR
        && fa_maildir_is_inbox(name->data, 5))
    {
        norm.data = fa_pnalloc(pool, name->len);
        if (norm.data == NULL) {
            return FA_ERROR;
        }
        memcpy(norm.data, "INBOX", 5);
        memcpy(norm.data + 5, name->data + 5, name->len - 5);
    }
    folder = fa_mailbox_to_maildir(pool, &norm);
    if (folder == NULL) {
        return FA_STORAGE_INVALID;
    }
    loc->dir = fa_maildir_join(pool, loc->root, folder);
    return loc->dir ? FA_OK : FA_ERROR;
}
