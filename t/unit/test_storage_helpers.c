/*
 * The rules every storage backend relies on: which mailbox names are
 * accepted (a backend mapping names to paths depends on "." and ".." being
 * refused) and UID set membership.
 */

#include "fa_core.h"
#include "fa_storage.h"
#include "fa_test.h"

static fa_int_t
valid(const char *name, size_t len)
{
    fa_str_t  s = { len, (u_char *) name };
    return fa_storage_mailbox_name_valid(&s);
}

#define V(name)  valid(name, sizeof(name) - 1)

static void
test_names(void)
{
    char  deep[200] = "", longname[FA_MAILBOX_NAME_MAX + 2];

    is_int(V("INBOX"), FA_OK, "INBOX");
    is_int(V("Archive/2026/Nov"), FA_OK, "nested name");
    is_int(V("Entw\xc3\xbcrfe"), FA_OK, "UTF-8 name");
    is_int(V("\xf0\x9f\x93\xa8 mail"), FA_OK, "4-byte UTF-8 and a space");
    is_int(V(""), FA_STORAGE_INVALID, "empty");
    is_int(V("/INBOX"), FA_STORAGE_INVALID, "leading separator");
    is_int(V("INBOX/"), FA_STORAGE_INVALID, "trailing separator");
    is_int(V("a//b"), FA_STORAGE_INVALID, "empty level");
    is_int(V("a/../b"), FA_STORAGE_INVALID, "a .. level");
    is_int(V("./a"), FA_STORAGE_INVALID, "a . level");
    is_int(V("..."), FA_OK, "three dots are a name");
    is_int(V("a\rb"), FA_STORAGE_INVALID, "control byte");
    is_int(valid("a\0b", 3), FA_STORAGE_INVALID, "NUL byte");
    is_int(V("a*b"), FA_STORAGE_INVALID, "IMAP wildcard *");
    is_int(V("a%b"), FA_STORAGE_INVALID, "IMAP wildcard %%");
    is_int(V("\xc3"), FA_STORAGE_INVALID, "truncated UTF-8");
    is_int(V("\xc0\xaf"), FA_STORAGE_INVALID, "overlong UTF-8");
    is_int(V("\xed\xa0\x80"), FA_STORAGE_INVALID, "UTF-16 surrogate");
    is_int(V("\xff"), FA_STORAGE_INVALID, "not UTF-8 at all");

    for (int i = 0; i < FA_MAILBOX_DEPTH_MAX; i++) {
        strcat(deep, i ? "/a" : "a");
    }
    is_int(valid(deep, strlen(deep)), FA_OK, "the deepest name allowed");
    strcat(deep, "/a");
    is_int(valid(deep, strlen(deep)), FA_STORAGE_INVALID, "one level too deep");

    memset(longname, 'x', sizeof(longname));
    is_int(valid(longname, FA_MAILBOX_NAME_MAX), FA_OK, "the longest name allowed");
    is_int(valid(longname, FA_MAILBOX_NAME_MAX + 1), FA_STORAGE_INVALID, "one byte too long");
}

static void
test_uid_sets(void)
{
    fa_uid_range_t  r[] = { { 1, 3 }, { 7, 7 }, { 10, 4000000000u } };
    fa_uid_set_t    set = { r, 3 }, empty = { NULL, 0 };

    ok(fa_uid_set_contains(&set, 1) && fa_uid_set_contains(&set, 3), "range ends");
    ok(!fa_uid_set_contains(&set, 4) && !fa_uid_set_contains(&set, 6), "gap");
    ok(fa_uid_set_contains(&set, 7), "single UID");
    ok(fa_uid_set_contains(&set, 4000000000u), "large UID");
    ok(!fa_uid_set_contains(&set, 4000000001u), "past the last range");
    ok(!fa_uid_set_contains(&set, 0), "UID 0 is never in a set");
    ok(!fa_uid_set_contains(&empty, 1), "empty set");
    ok(strcmp(fa_storage_strerror(FA_STORAGE_OVERQUOTA), "quota exceeded") == 0,
       "error text");
}

int
main(void)
{
    test_names();
    test_uid_sets();
    return done_testing();
}
