/*
 * The Dovecot passwd-file reader: fields, comments, CRLF, every error as
 * "FILE:LINE: message" with reading going on after it, over-long lines,
 * files larger than the read buffer, and callbacks that stop the read.
 */

#include "fa_core.h"
#include "fa_auth_passwd_file.h"
#include "fa_test.h"

#define SHA512  "{SHA512-CRYPT}$6$Facteur0salt$WIbvhm8vaWoi76IxxxQsLCJElqzChJdto80qotDgR" \
                "klwkMf819FKWsdKTyM78/Mlrj/HXFtC3191DxGBbLybX0"
#define YES     "$y$j9T$DVzq7UKSu/Di/xFvd.jj/1$hBSrmqSzDla4KWfIUFGLdro/wO4DkYL6UfKxX1O9ywC"
#define MD5     "{MD5-CRYPT}$1$Fa8salt$WRAVcZkUOxtj57j9776MZ0"

#define MAX_SEEN  16

typedef struct {
    fa_uint_t  entries, errors, stop_at;
    char       user[MAX_SEEN][128];
    char       home[MAX_SEEN][128];
    char       extra[MAX_SEEN][128];
    char       scheme[MAX_SEEN][32];
    fa_uint_t  line[MAX_SEEN];
    int        weak[MAX_SEEN];
    char       error[MAX_SEEN][512];
} seen_t;

static char  dir[] = "/tmp/facteur-test-passwd-XXXXXX";

static void
copy(char *dst, size_t size, const fa_str_t *s)
{
    fa_snprintf(dst, size, "%.*s", (int) s->len, (char *) s->data);
}

static fa_int_t
on_entry(fa_auth_passwd_file_t *pf, const fa_auth_passwd_file_entry_t *e)
{
    seen_t     *seen = pf->data;
    fa_uint_t   i = seen->entries++;

    if (i < MAX_SEEN) {
        copy(seen->user[i], sizeof(seen->user[i]), &e->user);
        copy(seen->home[i], sizeof(seen->home[i]), &e->home);
        copy(seen->extra[i], sizeof(seen->extra[i]), &e->extra);
        fa_snprintf(seen->scheme[i], sizeof(seen->scheme[i]), "%s", e->info.scheme);
        seen->line[i] = e->line;
        seen->weak[i] = e->info.weak;
    }
    if (fa_str_eq(&e->user, "dup@example.org")) {
        fa_auth_passwd_file_error(pf, "duplicate user");
    }
    return (seen->stop_at && seen->entries == seen->stop_at) ? FA_ABORT : FA_OK;
}

static void
on_error(fa_auth_passwd_file_t *pf, const char *msg)
{
    seen_t  *seen = pf->data;

    if (seen->errors < MAX_SEEN) {
        fa_snprintf(seen->error[seen->errors], sizeof(seen->error[0]), "%s", msg);
    }
    seen->errors++;
}

static const char *
write_file(const char *name, const char *text, size_t len)
{
    static char  path[256];
    FILE        *f;

    fa_snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (f == NULL || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        printf("# cannot write %s\n", path);
        exit(1);
    }
    return path;
}

static fa_int_t
read_text(const char *name, const char *text, fa_uint_t flags, seen_t *seen,
    fa_auth_passwd_file_t *pf)
{
    const char  *path = write_file(name, text, strlen(text));

    memset(seen, 0, sizeof(*seen));
    memset(pf, 0, sizeof(*pf));
    pf->flags = flags;
    pf->entry = on_entry;
    pf->error = on_error;
    pf->data = seen;
    return fa_auth_passwd_file_read(pf, path);
}

static int
starts(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* the error as the reader printed it, with dir/ taken off */
static const char *
msg(seen_t *seen, fa_uint_t i)
{
    size_t  n = strlen(dir);

    if (i >= seen->errors) {
        return "(none)";
    }
    return strncmp(seen->error[i], dir, n) == 0 ? seen->error[i] + n + 1 : seen->error[i];
}

static void
test_good(void)
{
    fa_auth_passwd_file_t  pf;
    seen_t                 seen;
    fa_int_t               rc;

    rc = read_text("good",
        "# Dovecot users\n"
        "\n"
        "alice@example.org:" SHA512 ":1000:1000::/home/alice::userdb_quota_rule=*:bytes=1G\n"
        "   # indented comment\n"
        "bob:" YES "\r\n"
        "   \t\n"
        "carol@mail.example.org:" MD5 ":::Carol:/var/mail/carol\n"
        "o'neil+tag@x-y.example:" YES,                      /* no final newline */
        0, &seen, &pf);
    is_int(rc, FA_OK, "a good file reads");
    is_int(seen.errors, 0, "no errors");
    is_int(seen.entries, 4, "four users");
    is_int(pf.entries, 4, "pf->entries counts them");
    ok(strcmp(seen.user[0], "alice@example.org") == 0, "user with a domain");
    is_int(seen.line[0], 3, "its line number");
    ok(strcmp(seen.home[0], "/home/alice") == 0, "home field");
    ok(strcmp(seen.extra[0], "userdb_quota_rule=*:bytes=1G") == 0,
       "extra fields keep their ':'");
    ok(strcmp(seen.scheme[0], "SHA512-CRYPT") == 0, "scheme from the table");
    ok(strcmp(seen.user[1], "bob") == 0 && seen.line[1] == 5, "bare user, CRLF line 5");
    ok(strcmp(seen.scheme[1], "YESCRYPT") == 0, "CR is not part of the password");
    ok(strcmp(seen.home[2], "/var/mail/carol") == 0 && seen.weak[2], "MD5-CRYPT is weak");
    ok(strcmp(seen.user[3], "o'neil+tag@x-y.example") == 0 && seen.line[3] == 8,
       "atext characters and a last line without newline");
}

static void
test_bad_lines(void)
{
    fa_auth_passwd_file_t  pf;
    seen_t                 seen;
    fa_int_t               rc;

    rc = read_text("bad",
        "ok1:" YES "\n"                              /* 1 */
        "nopassword\n"                               /* 2 */
        "empty::1000:1000\n"                         /* 3 */
        "bad user:" YES "\n"                         /* 4 */
        ":" YES "\n"                                 /* 5 */
        "ok2@example.org:" YES "\n"                  /* 6 */
        "eve:{SSHA512}abcdef\n"                      /* 7 */
        "mallory:{PLAIN}secret\n"                    /* 8 */
        "x@bad_domain.org:" YES "\n"                 /* 9 */
        ".dot:" YES "\n"                             /* 10 */
        "a..b:" YES "\n"                             /* 11 */
        "u@-x.org:" YES "\n"                         /* 12 */
        "u@x..org:" YES "\n"                         /* 13 */
        "u@:" YES "\n"                               /* 14 */
        "tab\tuser:" YES "\n"                        /* 15 */
        "u@x.org.:" YES "\n"                         /* 16 */
        "plainhash:secret\n"                         /* 17 */
        "ok3:" MD5 "\n",                             /* 18 */
        0, &seen, &pf);
    is_int(rc, FA_ERROR, "a file with bad lines is an error");
    is_int(seen.entries, 3, "the good lines still come through");
    is_int(seen.errors, 15, "one message per bad line");
    is_int(pf.errors, 15, "pf->errors counts them");
    ok(strcmp(msg(&seen, 0), "bad:2: missing password field") == 0, "%s", msg(&seen, 0));
    ok(strcmp(msg(&seen, 1), "bad:3: empty password field") == 0, "%s", msg(&seen, 1));
    ok(strcmp(msg(&seen, 2), "bad:4: user name: byte 0x20 (column 4) is not allowed in an "
              "email local part") == 0, "%s", msg(&seen, 2));
    ok(strcmp(msg(&seen, 3), "bad:5: empty user name") == 0, "%s", msg(&seen, 3));
    ok(strcmp(msg(&seen, 4), "bad:7: unknown password scheme \"{SSHA512}\"") == 0,
       "%s", msg(&seen, 4));
    ok(starts(msg(&seen, 5), "bad:8: {PLAIN} password refused: plaintext passwords need an explicit opt-in")
       && strstr(msg(&seen, 5), "secret") == NULL, "%s", msg(&seen, 5));
    ok(strcmp(msg(&seen, 6), "bad:9: user name: character '_' (column 6) is not allowed "
              "in a domain name") == 0, "%s", msg(&seen, 6));
    ok(starts(msg(&seen, 7), "bad:10: user name: misplaced '.' (column 1)"),
       "%s", msg(&seen, 7));
    ok(starts(msg(&seen, 8), "bad:11: user name: misplaced '.' (column 3)"),
       "%s", msg(&seen, 8));
    ok(strcmp(msg(&seen, 9), "bad:12: user name: a domain label cannot start with '-' "
              "(column 3)") == 0, "%s", msg(&seen, 9));
    ok(starts(msg(&seen, 10), "bad:13: user name: empty domain label"),
       "%s", msg(&seen, 10));
    ok(starts(msg(&seen, 11), "bad:14: user name: the domain after '@'"),
       "%s", msg(&seen, 11));
    ok(strcmp(msg(&seen, 12), "bad:15: user name: byte 0x09 (column 4) is not allowed in "
              "an email local part") == 0, "%s", msg(&seen, 12));
    ok(starts(msg(&seen, 13), "bad:16: user name: empty domain label"),
       "%s", msg(&seen, 13));
    ok(strcmp(msg(&seen, 14), "bad:17: password has no {SCHEME} prefix") == 0,
       "%s", msg(&seen, 14));
}

static void
test_plain_opt_in(void)
{
    fa_auth_passwd_file_t  pf;
    seen_t                 seen;

    is_int(read_text("plain", "a:{PLAIN}one\nb:{CLEARTEXT}two\n", 0, &seen, &pf), FA_ERROR,
           "plaintext refused without the flag");
    is_int(seen.errors, 2, "both lines refused");
    is_int(read_text("plain", "a:{PLAIN}one\nb:{CLEARTEXT}two\n", FA_AUTH_PASSWORD_ALLOW_PLAIN,
                     &seen, &pf), FA_OK, "plaintext accepted with FA_AUTH_PASSWORD_ALLOW_PLAIN");
    is_int(seen.entries, 2, "both users");
    ok(strcmp(seen.scheme[1], "CLEARTEXT") == 0, "scheme CLEARTEXT");
}

static void
test_long_lines(void)
{
    fa_auth_passwd_file_t  pf;
    seen_t                 seen;
    size_t                 n = FA_AUTH_PASSWD_FILE_LINE_MAX * 2 + 100, len;
    char                  *text = malloc(n + 200), *p;
    fa_int_t               rc;

    /* line 2 is two buffers long; lines 1 and 3 are fine */
    p = text + fa_snprintf(text, 200, "first:" YES "\nlong:{PLAIN}");
    memset(p, 'x', n);
    p += n;
    p += fa_snprintf(p, 200, "\nthird:" YES "\n");
    len = (size_t) (p - text);
    memset(&seen, 0, sizeof(seen));
    memset(&pf, 0, sizeof(pf));
    pf.entry = on_entry;
    pf.error = on_error;
    pf.data = &seen;
    rc = fa_auth_passwd_file_read(&pf, write_file("long", text, len));
    free(text);
    is_int(rc, FA_ERROR, "a file with an over-long line is an error");
    is_int(seen.errors, 1, "reported once");
    ok(strcmp(msg(&seen, 0), "long:2: line longer than 65535 bytes") == 0, "%s", msg(&seen, 0));
    is_int(seen.entries, 2, "the lines around it are read");
    ok(strcmp(seen.user[1], "third") == 0 && seen.line[1] == 3, "line numbering goes on");
}

static void
test_big_file(void)
{
    fa_auth_passwd_file_t  pf;
    seen_t                 seen;
    unsigned               users = 4000;
    size_t                 size = users * 128, len = 0;
    char                  *text = malloc(size);

    /* many lines across many reads of the buffer */
    for (unsigned i = 0; i < users; i++) {
        len += fa_snprintf(text + len, size - len, "user%u@example.org:" YES ":%u\n", i, i);
    }
    memset(&seen, 0, sizeof(seen));
    memset(&pf, 0, sizeof(pf));
    pf.entry = on_entry;
    pf.error = on_error;
    pf.data = &seen;
    is_int(fa_auth_passwd_file_read(&pf, write_file("big", text, len)), FA_OK,
           "a %zu-byte file reads", len);
    free(text);
    is_int(seen.entries, users, "every user");
    is_int(seen.errors, 0, "no errors");
}

static void
test_callbacks(void)
{
    fa_auth_passwd_file_t  pf;
    seen_t                 seen;
    static const char      three[] = "a:" YES "\nb:" YES "\nc:" YES "\n";
    const char            *path = write_file("stop", three, sizeof(three) - 1);
    char                   text[2048];
    fa_uint_t              n = 0;

    memset(&seen, 0, sizeof(seen));
    memset(&pf, 0, sizeof(pf));
    seen.stop_at = 2;
    pf.entry = on_entry;
    pf.error = on_error;
    pf.data = &seen;
    is_int(fa_auth_passwd_file_read(&pf, path), FA_ABORT, "an entry callback stops the read");
    is_int(seen.entries, 2, "after its second user");

    is_int(read_text("dup", "ok:" YES "\ndup@example.org:" YES "\n", 0, &seen, &pf), FA_ERROR,
           "an error reported by the entry callback fails the read");
    ok(strcmp(msg(&seen, 0), "dup:2: duplicate user") == 0, "%s", msg(&seen, 0));

    is_int(read_text("none", "", 0, &seen, &pf), FA_OK, "an empty file is fine");
    is_int(seen.entries, 0, "and has no users");

    memset(&pf, 0, sizeof(pf));
    pf.error = on_error;
    pf.data = &seen;
    memset(&seen, 0, sizeof(seen));
    is_int(fa_auth_passwd_file_read(&pf, "/nonexistent/passwd"), FA_ERROR, "a missing file");
    ok(strcmp(seen.error[0], "/nonexistent/passwd: open() failed (No such file or directory)")
       == 0, "%s", seen.error[0]);

    /* more bad lines than FA_AUTH_PASSWD_FILE_ERRORS_MAX: stop and say so */
    for (fa_uint_t i = 0; i < FA_AUTH_PASSWD_FILE_ERRORS_MAX + 20; i++) {
        n += fa_snprintf(text + n, sizeof(text) - n, "x\n");
    }
    is_int(read_text("many", text, 0, &seen, &pf), FA_ERROR, "a file of garbage");
    is_int(pf.line, 0, "the last message is about the file");
    is_int(pf.entries, 0, "no users");
    is_int(seen.errors, FA_AUTH_PASSWD_FILE_ERRORS_MAX + 1, "stops after %d errors",
           FA_AUTH_PASSWD_FILE_ERRORS_MAX);
}

static void
test_parse(void)
{
    fa_auth_passwd_file_entry_t  e;
    char                         err[256], line[] = "u@example.org:" SHA512 "::::::a:b c";

    is_int(fa_auth_passwd_file_parse((u_char *) line, strlen(line), 0, &e, err, sizeof(err)),
           FA_OK, "parse one line");
    ok(e.uid.len == 0 && e.gid.len == 0 && e.gecos.len == 0 && e.home.len == 0,
       "empty fields are empty");
    ok(e.extra.len == 5 && memcmp(e.extra.data, "a:b c", 5) == 0, "extra is the rest");
}

static int
rm_file(const char *name)
{
    char  path[256];

    fa_snprintf(path, sizeof(path), "%s/%s", dir, name);
    return unlink(path);
}

int
main(void)
{
    static const char  *files[] = { "good", "bad", "plain", "long", "big", "stop", "dup",
                                    "none", "many" };

    if (mkdtemp(dir) == NULL) {
        printf("# mkdtemp failed\n");
        return 1;
    }
    test_good();
    test_bad_lines();
    test_plain_opt_in();
    test_long_lines();
    test_big_file();
    test_callbacks();
    test_parse();
    for (size_t i = 0; i < fa_nelems(files); i++) {
        rm_file(files[i]);
    }
    rmdir(dir);
    return done_testing();
}
