/*
 * The rules every storage backend relies on: which mailbox names are
 * accepted (a backend mapping names to paths depends on "." and ".." being
 * refused), UID set membership, and the names outside the store: modified
 * UTF-7 and Maildir++ folders.
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

/* UTF-8 -> modified UTF-7 -> UTF-8 */
static void
mutf7_round(fa_pool_t *pool, const char *utf8, const char *want)
{
    fa_str_t  in = { strlen(utf8), (u_char *) utf8 }, enc, back;

    is_int(fa_mutf7_encode(pool, &in, &enc), FA_OK, "encode \"%s\"", want);
    ok(enc.len == strlen(want) && memcmp(enc.data, want, enc.len) == 0,
       "\"%s\" encodes as \"%s\" (got \"%.*s\")", utf8, want, (int) enc.len, enc.data);
    is_int(fa_mutf7_decode(pool, &enc, &back), FA_OK, "decode \"%s\"", want);
    ok(back.len == in.len && memcmp(back.data, utf8, in.len) == 0, "and back");
}

static fa_int_t
mutf7_bad(fa_pool_t *pool, const char *s)
{
    fa_str_t  in = { strlen(s), (u_char *) s }, out;
    return fa_mutf7_decode(pool, &in, &out);
}

static void
test_mutf7(fa_pool_t *pool)
{
    fa_str_t  bad = fa_string("\xff"), out;

    /* RFC 3501 5.1.3's own example, and the cases around it */
    mutf7_round(pool, "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
                "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
    mutf7_round(pool, "Entw\xc3\xbcrfe", "Entw&APw-rfe");
    mutf7_round(pool, "A&B", "A&-B");
    mutf7_round(pool, "\xf0\x9f\x93\xa8", "&2D3c6A-");        /* a surrogate pair */
    is_int(fa_mutf7_encode(pool, &bad, &out), FA_STORAGE_INVALID, "encode: not UTF-8");
    is_int(mutf7_bad(pool, "&Jjo"), FA_STORAGE_INVALID, "decode: unterminated");
    is_int(mutf7_bad(pool, "&Jj*-"), FA_STORAGE_INVALID, "decode: not base64");
    is_int(mutf7_bad(pool, "&2D0-"), FA_STORAGE_INVALID, "decode: half a surrogate pair");
    is_int(mutf7_bad(pool, "caf\xc3\xa9"), FA_STORAGE_INVALID, "decode: 8-bit");
}

static void
test_maildir_folders(fa_pool_t *pool)
{
    fa_str_t  name = fa_string("Work/2024.q1"), back;
    fa_str_t  utf = fa_string("\xc3\xa9t\xc3\xa9/a\\b/~x");
    char     *f;

    f = fa_mailbox_to_maildir(pool, &name);
    ok(f && strcmp(f, ".Work.2024\\2eq1") == 0, "a dot in a level is escaped: %s", f);
    is_int(fa_mailbox_from_maildir(pool, f, &back), FA_OK, "and decoded");
    ok(back.len == name.len && memcmp(back.data, name.data, name.len) == 0, "to the name");
    f = fa_mailbox_to_maildir(pool, &utf);
    ok(f && strcmp(f, ".&AOk-t&AOk-.a\\5cb.\\7ex") == 0, "UTF-8, backslash, leading ~: %s", f);
    is_int(fa_mailbox_from_maildir(pool, f, &back), FA_OK, "decoded");
    ok(back.len == utf.len && memcmp(back.data, utf.data, utf.len) == 0, "to the name");
    is_int(fa_mailbox_from_maildir(pool, "cur", &back), FA_DECLINED, "no leading dot");
    is_int(fa_mailbox_from_maildir(pool, ".a..b", &back), FA_DECLINED, "an empty level");
    is_int(fa_mailbox_from_maildir(pool, ".a.\\2e\\2e", &back), FA_DECLINED,
           "a level that decodes to \"..\"");
}

int
main(void)
{
    fa_pool_t  *pool = fa_pool_create(4096, &fa_log_stderr);

    test_names();
    test_uid_sets();
    test_mutf7(pool);
    test_maildir_folders(pool);
    fa_pool_destroy(pool);
    return done_testing();
}
