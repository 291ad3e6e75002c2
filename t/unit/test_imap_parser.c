/*
 * The IMAP command parser: tags, commands, atoms, quoted strings,
 * literals, lists, fetch items with sections, sequence sets, and the
 * hostile inputs (deep nesting, unterminated strings, huge numbers).
 */

#include "fa_core.h"
#include "fa_imap_parser.h"
#include "fa_test.h"

static fa_pool_t  *pool;

static fa_int_t
parse_n(const char *text, size_t n, fa_imap_command_t *cmd, const char **why)
{
    u_char  *buf = fa_pnalloc(pool, n + 1);

    memcpy(buf, text, n);
    buf[n] = '\0';
    return fa_imap_parse(pool, buf, n, cmd, why);
}

static fa_int_t
parse(const char *text, fa_imap_command_t *cmd, const char **why)
{
    return parse_n(text, strlen(text), cmd, why);
}

static int
str_is(const fa_str_t *s, const char *want)
{
    return s->len == strlen(want) && memcmp(s->data, want, s->len) == 0;
}

static void
test_commands(void)
{
    fa_imap_command_t  c;
    const char        *why;

    is_int(parse("a1 login alice \"pass \\\"word\\\\\"", &c, &why), FA_OK, "LOGIN parses");
    ok(str_is(&c.tag, "a1") && str_is(&c.name, "LOGIN"), "tag and upper-cased name");
    is_int(c.nargs, 2, "two arguments");
    ok(c.args[1].type == FA_IMAP_ARG_STRING && str_is(&c.args[1].str, "pass \"word\\"),
       "quoted string unescaped");

    is_int(parse("t UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)", &c,
                 &why), FA_OK, "UID FETCH with a section");
    ok(c.uid && str_is(&c.name, "FETCH"), "UID prefix recognised");
    ok(c.args[1].type == FA_IMAP_ARG_LIST && c.args[1].n == 2, "a list of two items");
    ok(str_is(&c.args[1].list[1].str, "BODY.PEEK[HEADER.FIELDS (From To)]<0.100>"),
       "the section is one atom, partial included");

    is_int(parse("x APPEND INBOX {5}\r\nhello", &c, &why), FA_OK, "a literal inline");
    ok(c.nargs == 2 && c.args[1].type == FA_IMAP_ARG_LITERAL && str_is(&c.args[1].str, "hello"),
       "literal content");
    is_int(parse_n("x APPEND INBOX ~{3+}\r\na\0b", 25, &c, &why), FA_OK, "a literal8");
    ok(c.nargs == 2 && c.args[1].literal8 && c.args[1].str.len == 3, "literal8 with a NUL");

    is_int(parse("x SELECT  INBOX", &c, &why), FA_OK, "two spaces are tolerated");
    is_int(parse("x NOOP", &c, &why), FA_OK, "no arguments");
    is_int(c.nargs, 0, "none");
}

static void
test_hostile(void)
{
    fa_imap_command_t  c;
    const char        *why;
    char               deep[20100];

    is_int(parse("", &c, &why), FA_DECLINED, "empty line");
    is_int(parse("tag", &c, &why), FA_DECLINED, "tag alone");
    is_int(parse("x LOGIN \"unterminated", &c, &why), FA_DECLINED, "unterminated quoted");
    ok(strstr(why, "Unterminated") != NULL, "says why: %s", why);
    is_int(parse("x LOGIN \"a\\qb\"", &c, &why), FA_DECLINED, "bad escape");
    is_int(parse("x APPEND INBOX {10}\r\nshort", &c, &why), FA_DECLINED, "literal too short");
    is_int(parse("x FETCH 1 (FLAGS", &c, &why), FA_DECLINED, "unclosed list");
    is_int(parse("x FETCH 1 FLAGS)", &c, &why), FA_DECLINED, "stray )");
    is_int(parse("x FETCH 1 BODY[1", &c, &why), FA_DECLINED, "unterminated section");

    strcpy(deep, "x SEARCH ");
    for (int i = 0; i < 10000; i++) {
        strcat(deep, "(");
    }
    is_int(parse(deep, &c, &why), FA_DECLINED, "10,000 nested parentheses");
    ok(strstr(why, "deep") != NULL, "too deep: %s", why);
}

static void
test_literal_at_end(void)
{
    uint64_t  size;
    int       sync, binary;

    is_int(fa_imap_literal_at_end((u_char *) "a APPEND INBOX {42}", 19, &size, &sync, &binary),
           FA_OK, "{42}");
    ok(size == 42 && sync && !binary, "size 42, synchronizing");
    is_int(fa_imap_literal_at_end((u_char *) "a APPEND INBOX ~{7+}", 20, &size, &sync, &binary),
           FA_OK, "~{7+}");
    ok(size == 7 && !sync && binary, "non-synchronizing literal8");
    is_int(fa_imap_literal_at_end((u_char *) "a X {4294967296}", 16, &size, &sync, &binary),
           FA_OK, "a 4 GB literal is read as such (the session refuses it)");
    ok(size == 4294967296ULL, "its size");
    is_int(fa_imap_literal_at_end((u_char *) "a X {99999999999999999999}", 26, &size, &sync,
                                  &binary), FA_ERROR, "an absurd size");
    is_int(fa_imap_literal_at_end((u_char *) "a X }", 5, &size, &sync, &binary), FA_DECLINED,
           "no literal");
}

static fa_int_t
set(const char *s, uint32_t max, fa_imap_range_t **r, fa_uint_t *n)
{
    fa_str_t  str = { strlen(s), (u_char *) s };

    return fa_imap_parse_set(pool, &str, max, r, n);
}

static void
test_sets(void)
{
    fa_imap_range_t  *r;
    fa_uint_t         n;

    is_int(set("1:3,5,7:*", 10, &r, &n), FA_OK, "1:3,5,7:*");
    ok(n == 3 && r[0].first == 1 && r[0].last == 3 && r[2].first == 7 && r[2].last == 10,
       "ranges, * is the max");
    is_int(set("*:4", 10, &r, &n), FA_OK, "*:4");
    ok(n == 1 && r[0].first == 4 && r[0].last == 10, "reversed range");
    is_int(set("5,1:6,3", 10, &r, &n), FA_OK, "overlaps");
    ok(n == 1 && r[0].first == 1 && r[0].last == 6, "merged");
    is_int(set("4294967295", 10, &r, &n), FA_OK, "the largest number");
    is_int(set("4294967296", 10, &r, &n), FA_DECLINED, "2^32 is refused");
    is_int(set("0", 10, &r, &n), FA_DECLINED, "0 is refused");
    is_int(set("1:", 10, &r, &n), FA_DECLINED, "half a range");
    is_int(set("1,,2", 10, &r, &n), FA_DECLINED, "empty element");
    is_int(set("1,", 10, &r, &n), FA_DECLINED, "trailing comma");
    is_int(set("a", 10, &r, &n), FA_DECLINED, "not a number");
    is_int(set("*", 0, &r, &n), FA_OK, "* in an empty mailbox");
    is_int(n, 0, "means nothing");
}

int
main(void)
{
    pool = fa_pool_create(4096, &fa_log_stderr);
    test_commands();
    test_hostile();
    test_literal_at_end();
    test_sets();
    fa_pool_destroy(pool);
    return done_testing();
}
