/*
 * The MIME module piece by piece: address lists, Content-Type parameters
 * and RFC 2231, RFC 2047 and charset decoding, IMAP string quoting, section
 * syntax, configured limits, and corrupted serialized records (an error,
 * never a crash).
 */

#include "fa_mime.h"
#include "fa_test.h"

static fa_pool_t  *pool;

static fa_mime_part_t *
parse(const char *msg, size_t len, const fa_mime_limits_t *limits)
{
    fa_mime_parser_t  *p = fa_mime_parser_create(pool, limits);

    if (p == NULL || fa_mime_parser_feed(p, (const u_char *) msg, len) != FA_OK) {
        return NULL;
    }
    return fa_mime_parser_finish(p);
}

static fa_mime_part_t *
parse_str(const char *msg)
{
    return parse(msg, strlen(msg), NULL);
}

static const char *
render(const fa_mime_part_t *part, int what)
{
    fa_mime_buf_t  b;
    fa_int_t       rc;

    if (part == NULL || fa_mime_buf_init(&b, pool, 0) != FA_OK) {
        return "(no tree)";
    }
    rc = what == 2 ? fa_mime_render_envelope(&b, part)
                   : fa_mime_render_bodystructure(&b, part, what);
    if (rc != FA_OK || fa_mime_buf_add(&b, "", 1) != FA_OK) {
        return "(render failed)";
    }
    return (const char *) b.data;
}

static void
is_str(const char *got, const char *want, const char *what)
{
    int  good = strcmp(got, want) == 0;

    ok(good, "%s", what);
    if (!good) {
        printf("#   got  [%s]\n#   want [%s]\n", got, want);
    }
}

/* From: value, as the ENVELOPE's from list */
static void
address(const char *value, const char *want)
{
    char  msg[1024], env[2048];

    snprintf(msg, sizeof(msg), "From: %s\r\n\r\n", value);
    snprintf(env, sizeof(env), "(NIL NIL %s %s %s NIL NIL NIL NIL NIL)", want, want, want);
    is_str(render(parse_str(msg), 2), env, value);
}

static void
test_addresses(void)
{
    fa_mime_address_t  *a;

    address("user@example.com", "((NIL NIL \"user\" \"example.com\"))");
    address("\"Last, First\" <a@b.c>", "((\"Last, First\" NIL \"a\" \"b.c\"))");
    address("John  Q.  Public <jqp@x.y>", "((\"John Q. Public\" NIL \"jqp\" \"x.y\"))");
    address("a@b.c (Comment (nested)) ", "((\"Comment (nested)\" NIL \"a\" \"b.c\"))");
    address("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
            "((\"Pete\" NIL \"pete\" \"silly.test\"))");
    address("\"quoted local\"@example.com", "((NIL NIL \"quoted local\" \"example.com\"))");
    address("first . last @ example . com", "((NIL NIL \"first.last\" \"example.com\"))");
    address("<a@[192.0.2.1]>", "((NIL NIL \"a\" \"[192.0.2.1]\"))");
    address("<>", "((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))");
    address("@example.com", "((NIL NIL \"MISSING_MAILBOX\" \"example.com\"))");
    address("<@example.com>", "((NIL NIL \"MISSING_MAILBOX\" \"example.com\"))");
    address("just-a-word", "((NIL NIL \"just-a-word\" \"MISSING_DOMAIN\"))");
    address("A Group:;", "((NIL NIL \"A Group\" NIL)(NIL NIL NIL NIL))");
    address("g: a@b, c@d", "((NIL NIL \"g\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")(NIL NIL NIL NIL))");
    address(", ,, a@b ,", "((NIL NIL \"a\" \"b\"))");
    address("a@b c@d, e@f", "((NIL NIL \"a\" \"b\")(NIL NIL \"e\" \"f\"))");
    address("\"unterminated <a@b>", "((NIL NIL \"unterminated <a@b>\" \"MISSING_DOMAIN\"))");
    address("<a@b", "((NIL NIL \"a\" \"b\"))");
    address("=?utf-8?q?J=C3=B6rg?= <j@x>", "((\"=?utf-8?q?J=C3=B6rg?=\" NIL \"j\" \"x\"))");
    address("\"a\\\"b\" <c@d>", "((\"a\\\"b\" NIL \"c\" \"d\"))");
    address("", "NIL");
    address("  (only a comment) ", "NIL");

    a = fa_mime_address_parse(pool, (const u_char *) "x@y, z", 6);
    ok(a && a->next && a->next->next == NULL && a->host.len == 1,
       "fa_mime_address_parse reads a list");
}

/* Content-Type: value on a text part, as BODY shows it */
static void
ctype(const char *value, const char *want)
{
    char  msg[2048];

    snprintf(msg, sizeof(msg), "Content-Type: %s\r\n\r\n", value);
    is_str(render(parse_str(msg), 0), want, value);
}

static void
test_params(void)
{
    ctype("TEXT/Plain; CharSet=\"ISO-8859-1\"",
          "(\"text\" \"plain\" (\"charset\" \"ISO-8859-1\") NIL NIL \"7bit\" 0 0)");
    ctype("text/plain; charset=us-ascii (Plain text)",
          "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)");
    ctype("text/plain; format=flowed",
          "(\"text\" \"plain\" (\"format\" \"flowed\" \"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)");
    ctype("text/plain; charset*=utf-8''%C3%A9",
          "(\"text\" \"plain\" (\"charset*\" \"utf-8''%C3%A9\" \"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)");
    ctype("image/png; name*1=\"b.png\"; x=1; name*0=\"a\"",
          "(\"image\" \"png\" (\"x\" \"1\" \"name\" \"ab.png\") NIL NIL \"7bit\" 0)");
    ctype("image/png; name*0=\"a\"; name*2=\"c\"",
          "(\"image\" \"png\" (\"name*0\" \"a\" \"name*2\" \"c\") NIL NIL \"7bit\" 0)");
    ctype("image/png; n*0*=''100%25; n*1=\" 50%\"",
          "(\"image\" \"png\" (\"n*\" \"''100%25 50%25\") NIL NIL \"7bit\" 0)");
    ctype("image/png; a=\"q\\\"uo\\\\te\"", "(\"image\" \"png\" (\"a\" \"q\\\"uo\\\\te\") NIL NIL \"7bit\" 0)");
    ctype("image/png; a=1; a=2", "(\"image\" \"png\" (\"a\" \"1\" \"a\" \"2\") NIL NIL \"7bit\" 0)");
    ctype("text", "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)");
    ctype("/plain", "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)");
    ctype("text/", "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)");
    ctype("application/x-thing;", "(\"application\" \"x-thing\" NIL NIL NIL \"7bit\" 0)");
    ctype("message/partial; id=\"x\"; number=2",
          "(\"message\" \"partial\" (\"id\" \"x\" \"number\" \"2\") NIL NIL \"7bit\" 0)");
    ctype("message/global",
          "(\"message\" \"global\" NIL NIL NIL \"7bit\" 0 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) "
          "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) 0)");
    ctype("multipart/mixed; boundary=\"\"", "(\"application\" \"octet-stream\" (\"boundary\" \"\") NIL NIL \"7bit\" 0)");
    ctype("multipart/related; boundary=x",
          "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"related\")");
}

static void
test_fields(void)
{
    const char      *msg =
        "Content-Type: multipart/mixed; boundary=b\r\n"
        "\r\n"
        "--b\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Type: text/html\r\n"
        "content-transfer-encoding: QUOTED-PRINTABLE\r\n"
        "Content-Disposition: INLINE\r\n"
        "Content-Language: en-US , (comment) fr ; junk\r\n"
        "Content-Location: http://x.test/a\r\n"
        "  /b\r\n"
        "Content-Description: caf\xc3\xa9 \"menu\"\r\n"
        "Content-ID: <id@x>\r\n"
        "Content-MD5: abc=\r\n"
        "\r\n"
        "x\r\n"
        "--b--\r\n";
    fa_mime_part_t  *root = parse_str(msg);

    is_str(render(root, 1),
           "((\"text\" \"plain\" (\"charset\" \"us-ascii\") \"<id@x>\" {12}\r\ncaf\xc3\xa9 \"menu\" "
           "\"QUOTED-PRINTABLE\" 1 1 \"abc=\" (\"INLINE\" NIL) (\"en-US\" \"fr\") "
           "\"http://x.test/a  /b\") \"mixed\" (\"boundary\" \"b\") NIL NIL NIL)",
           "first Content-Type wins; every extension field");
}

static void
decode(const char *raw, const char *want)
{
    fa_str_t  out = fa_null_string;
    char      got[1024], what[256];
    size_t    i;

    if (fa_mime_decode_header(pool, (const u_char *) raw, strlen(raw), &out) != FA_OK) {
        snprintf(got, sizeof(got), "(failed)");
    } else {
        snprintf(got, sizeof(got), "%.*s", (int) out.len, (char *) out.data);
    }
    for (i = 0; raw[i] && i < sizeof(what) - 1; i++) {
        what[i] = raw[i] == '\r' || raw[i] == '\n' || raw[i] == '\t' ? ' ' : raw[i];
    }
    what[i] = '\0';
    is_str(got, want, what);
}

static void
test_decode(void)
{
    fa_str_t  cs = fa_string("windows-1252"), out;

    decode("plain text", "plain text");
    decode("=?utf-8?q?caf=C3=A9_cr=C3=A8me?=", "caf\xc3\xa9 cr\xc3\xa8me");
    decode("=?UTF-8?B?w6k=?= =?UTF-8?B?w6g=?=", "\xc3\xa9\xc3\xa8");
    decode("=?utf-8?b?ww==?= =?utf-8?b?qQ==?=", "\xc3\xa9");
    decode("=?utf-16be?b?AA==?=\r\n\t=?UTF-16BE?b?QQ==?=", "A");
    decode("a =?iso-8859-1?q?=E9?= b", "a \xc3\xa9 b");
    decode("=?iso-8859-1?q?=E9?=\r\n =?iso-8859-15?q?=A4?=", "\xc3\xa9\xe2\x82\xac");
    decode("=?utf-8*en?q?hi?=", "hi");
    decode("x=?utf-8?q?y?=z", "xyz");
    decode("=?x-unknown?q?a?= =?x-unknown?q?b?=", "=?x-unknown?q?a?= =?x-unknown?q?b?=");
    decode("=?utf-8?x?abc?=", "=?utf-8?x?abc?=");
    decode("=?utf-8?b?!!!?=", "=?utf-8?b?!!!?=");
    decode("=?utf-8?q?a b?=", "=?utf-8?q?a b?=");
    decode("=?utf-8?q?unterminated", "=?utf-8?q?unterminated");
    decode("=?=?utf-8?q?ok?=", "=?ok");
    decode("=?us-ascii?q?=FF?=", "\xff");
    decode("=?koi8-r?b?8NLJ18XU?=", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82");
    decode("=?iso-2022-jp?b?GyRCJEskWyRzGyhC?=", "\xe3\x81\xab\xe3\x81\xbb\xe3\x82\x93");
    decode("=?utf-16?b?AEEAQg==?=", "AB");
    decode("=?utf-16?b?//5BAEIA?=", "AB");
    decode("folded\r\n line", "folded line");
    decode("", "");

    ok(fa_mime_decode_charset(pool, &cs, (const u_char *) "\x80\x81", 2, &out) == FA_OK
       && out.len == 6 && memcmp(out.data, "\xe2\x82\xac\xef\xbf\xbd", 6) == 0,
       "bytes a charset cannot convert become U+FFFD");
    fa_str_set(&cs, "../../etc/passwd");
    ok(fa_mime_decode_charset(pool, &cs, (const u_char *) "a", 1, &out) == FA_DECLINED,
       "odd charset names are refused");
}

static void
test_strings(void)
{
    fa_mime_buf_t  b;
    char           big[1100];

    fa_mime_buf_init(&b, pool, 4);
    fa_mime_render_string(&b, (const u_char *) "a\"b\\c", 5);
    fa_mime_buf_add(&b, "|", 1);
    fa_mime_render_string(&b, (const u_char *) "x\0y", 3);
    fa_mime_buf_add(&b, "|", 1);
    fa_mime_render_string(&b, (const u_char *) "cr\rlf", 5);
    fa_mime_buf_add(&b, "|", 1);
    fa_mime_render_string(&b, (const u_char *) "", 0);
    fa_mime_buf_add(&b, "", 1);
    is_str((char *) b.data, "\"a\\\"b\\\\c\"|\"xy\"|{5}\r\ncr\rlf|\"\"", "quoting rules");

    memset(big, 'a', sizeof(big));
    fa_mime_buf_init(&b, pool, 0);
    fa_mime_render_string(&b, (const u_char *) big, 1024);
    ok(b.len == 1026 && b.data[0] == '"', "1024 bytes are still quoted");
    fa_mime_buf_init(&b, pool, 0);
    fa_mime_render_string(&b, (const u_char *) big, 1025);
    ok(b.len == 1025 + 8 && memcmp(b.data, "{1025}\r\n", 8) == 0, "longer is a literal");
}

static fa_int_t
section(const fa_mime_part_t *root, const char *spec)
{
    fa_mime_section_t  s;

    return fa_mime_section_find(root, (const u_char *) spec, strlen(spec), &s);
}

static void
test_sections(void)
{
    fa_mime_part_t     *root = parse_str("Subject: s\r\n\r\nbody\r\n");
    fa_mime_section_t   s;

    ok(fa_mime_section_find(root, (const u_char *) "", 0, &s) == FA_OK
       && s.offset == 0 && s.length == 20, "BODY[] is the whole message");
    ok(fa_mime_section_find(root, (const u_char *) "header", 6, &s) == FA_OK
       && s.length == 14 && s.header, "keywords are case-blind");
    ok(fa_mime_section_find(root, (const u_char *) "HEADER.FIELDS.NOT (X)", 21, &s) == FA_OK
       && s.header && s.length == 14, "HEADER.FIELDS.NOT: the header, for the caller");
    is_int(section(root, "1.MIME"), FA_OK, "1.MIME of a single part");
    is_int(section(root, "MIME"), FA_ERROR, "MIME needs a part number");
    is_int(section(root, "HEADERX"), FA_ERROR, "HEADERX");
    is_int(section(root, "TEXT.MIME"), FA_ERROR, "TEXT.MIME");
    is_int(section(root, "1..2"), FA_ERROR, "1..2");
    is_int(section(root, "99999999999"), FA_ERROR, "a number too large");
    is_int(section(root, "2.TEXT"), FA_DECLINED, "no part 2");
    is_int(section(root, "2.BOGUS"), FA_ERROR, "bad syntax after a missing part");
    is_int(section(root, "HEADER.FIELDS"), FA_ERROR, "HEADER.FIELDS without a list");
    is_int(section(root, "3.MIMEX"), FA_ERROR, "3.MIMEX");
    is_int(section(root, "3.MIME"), FA_DECLINED, "3.MIME: no part 3");
    is_int(section(root, "1.2.3.4.5.6"), FA_DECLINED, "deep numbers below a leaf");
}

/* Dovecot's test_message_parser_mime_part_nested_limit, with max_depth 1 */
static void
test_limits(void)
{
    static const char   msg[] =
        "Content-Type: multipart/mixed; boundary=\"1\"\n"
        "\n"
        "--1\n"
        "Content-Type: multipart/mixed; boundary=\"2\"\n"
        "\n"
        "--2\n"
        "Content-Type: text/plain\n"
        "\n"
        "1\n"
        "--2\n"
        "Content-Type: text/plain\n"
        "\n"
        "22\n"
        "--1\n"
        "Content-Type: text/plain\n"
        "\n"
        "333\n";
    fa_mime_limits_t    l = fa_mime_limits_default;
    fa_mime_part_t     *root;
    const char         *msg2;

    l.max_depth = 1;
    root = parse(msg, sizeof(msg) - 1, &l);
    is_str(render(root, 0),
           "((\"application\" \"octet-stream\" (\"boundary\" \"2\") NIL NIL \"7bit\" 64)"
           "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 1) \"mixed\")",
           "max_depth 1: the inner multipart is opaque (Dovecot's sizes)");
    ok(root && (root->flags & FA_MIME_LIMITED), "and the message says so");

    l = fa_mime_limits_default;
    l.max_parts = 4;
    root = parse(msg, sizeof(msg) - 1, &l);
    is_str(render(root, 0),
           "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 1)"
           "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 37 5) \"mixed\") \"mixed\")",
           "max_parts 4: the last part takes the rest (Dovecot's sizes)");

    l = fa_mime_limits_default;
    l.max_boundary = 3;
    root = parse_str("Content-Type: multipart/mixed; boundary=abcd\r\n\r\n--abcd\r\n\r\nx\r\n");
    ok(root && !(root->flags & FA_MIME_OPAQUE), "a 4-byte boundary is fine by default");
    msg2 = "Content-Type: multipart/mixed; boundary=abcd\r\n\r\n--abcd\r\n";
    root = parse(msg2, strlen(msg2), &l);
    ok(root && (root->flags & FA_MIME_OPAQUE), "longer than max_boundary: opaque");
}

/* prefix boundaries: the longest open one wins, the innermost on a tie */
static void
test_boundaries(void)
{
    fa_mime_part_t  *root;

    root = parse_str("Content-Type: multipart/mixed; boundary=ab\r\n\r\n"
                     "--ab\r\nContent-Type: multipart/mixed; boundary=abc\r\n\r\n"
                     "--abc\r\n\r\ninner\r\n--abc--\r\n--ab--\r\n");
    is_str(render(root, 0),
           "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 1) \"mixed\") \"mixed\")",
           "a boundary that extends the outer one");
    root = parse_str("Content-Type: multipart/mixed; boundary=x\r\n\r\n"
                     "--x\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
                     "--x\r\n\r\ninner\r\n--x--\r\n--x--\r\n");
    is_str(render(root, 0),
           "(((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 1) \"mixed\") \"mixed\")",
           "the same boundary twice: innermost first");
    root = parse_str("Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--\r\n");
    is_str(render(root, 1),
           "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL) "
           "\"mixed\" (\"boundary\" \"x\") NIL NIL NIL)",
           "a multipart without parts shows an empty text/plain one");
    is_int(section(root, "1"), FA_DECLINED, "which has no section");
    root = parse_str("Content-Type: multipart/mixed; boundary=x\r\n\r\n"
                     "--x\r\nContent-Type: text/plain\r\n--x--");
    is_str(render(root, 0),
           "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) \"mixed\")",
           "a delimiter inside a header ends it; a close without a line end");
}

static void
test_corrupt(void)
{
    static const char   msg[] =
        "From: \"A\" <a@b>, g:c@d;\r\nSubject: x\r\n"
        "Content-Type: multipart/mixed; boundary=z\r\n\r\n"
        "--z\r\nContent-Type: text/plain; charset*=utf-8''%C3%A9; x=y\r\n"
        "Content-Disposition: attachment; filename=f\r\nContent-Language: en\r\n\r\nhi\r\n"
        "--z\r\nContent-Type: message/rfc822\r\n\r\nTo: e@f\r\n\r\nbody\r\n--z--\r\n";
    fa_mime_part_t     *root = parse_str(msg), *t;
    fa_str_t            ser;
    u_char             *copy, *orig;
    size_t              bad = 0, parsed = 0;
    static const u_char values[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };

    ok(root && fa_mime_serialize(root, pool, &ser) == FA_OK, "serialized");
    copy = malloc(ser.len);
    orig = malloc(ser.len);
    memcpy(orig, ser.data, ser.len);
    ser.data = orig;          /* the pool is renewed below */
    for (size_t k = 0; k < ser.len; k++) {
        bad += fa_mime_parse_serialized(pool, ser.data, k) != NULL;
    }
    is_int(bad, 0, "every truncated record is refused");

    for (size_t i = 0; i < ser.len; i++) {
        for (size_t v = 0; v < sizeof(values) + 1; v++) {
            memcpy(copy, ser.data, ser.len);
            copy[i] = v < sizeof(values) ? values[v] : copy[i] ^ 0x40;
            t = fa_mime_parse_serialized(pool, copy, ser.len);
            if (t != NULL) {
                parsed++;
                render(t, 1);
                render(t, 2);
                section(t, "2.1");
            }
        }
    }
    ok(1, "every changed byte: refused or usable (%zu read back)", parsed);

    srand(7);
    for (int i = 0; i < 20000; i++) {
        memcpy(copy, ser.data, ser.len);
        for (int k = rand() % 4; k >= 0; k--) {
            copy[rand() % ser.len] = (u_char) rand();
        }
        t = fa_mime_parse_serialized(pool, copy, ser.len - (rand() % 2));
        if (t != NULL) {
            render(t, 1);
        }
        if (i % 1000 == 0) {
            fa_pool_destroy(pool);
            pool = fa_pool_create(4096, NULL);
        }
    }
    ok(1, "20,000 random corruptions without a crash");
    ok(fa_mime_parse_serialized(pool, (const u_char *) "FaM\x02", 4) == NULL,
       "another version is refused");
    free(copy);
    free(orig);
}

int
main(void)
{
    pool = fa_pool_create(4096, NULL);
    test_addresses();
    test_params();
    test_fields();
    test_decode();
    test_strings();
    test_sections();
    test_limits();
    test_boundaries();
    test_corrupt();
    fa_pool_destroy(pool);
    return done_testing();
}
