/*
 * Strings, number parsing and pools: the helpers every parser leans on must
 * refuse hostile input (overflow, garbage) instead of wrapping around.
 */

#include "fa_core.h"
#include "fa_test.h"

static fa_str_t
s(const char *text)
{
    fa_str_t  r = { strlen(text), (u_char *) text };
    return r;
}

static int  cleaned;

static void
cleanup(void *data)
{
    cleaned += *(int *) data;
}

static void
test_numbers(void)
{
    fa_str_t  v;

    is_int(fa_atoi((u_char *) "12345", 5), 12345, "atoi parses decimal");
    is_int(fa_atoi((u_char *) "", 0), -1, "atoi refuses empty");
    is_int(fa_atoi((u_char *) "12a", 3), -1, "atoi refuses trailing garbage");
    is_int(fa_atoi((u_char *) "99999999999999999999", 20), -1, "atoi refuses overflow");
    is_int(fa_atoi((u_char *) "9223372036854775807", 19), INT64_MAX, "atoi takes INT64_MAX");

    v = s("10k");  is_int(fa_parse_size(&v), 10240, "size 10k");
    v = s("3M");   is_int(fa_parse_size(&v), 3 * 1024 * 1024, "size 3M");
    v = s("1g");   is_int(fa_parse_size(&v), 1024 * 1024 * 1024, "size 1g");
    v = s("77");   is_int(fa_parse_size(&v), 77, "size without unit");
    v = s("5x");   is_int(fa_parse_size(&v), -1, "size with unknown unit");
    v = s("99999999999g"); is_int(fa_parse_size(&v), -1, "size overflow refused");

    v = s("500ms"); is_int(fa_parse_time(&v, 1), 500, "time 500ms");
    v = s("30s");   is_int(fa_parse_time(&v, 1), 30000, "time 30s");
    v = s("5m");    is_int(fa_parse_time(&v, 1), 300000, "time 5m");
    v = s("2h");    is_int(fa_parse_time(&v, 1), 7200000, "time 2h");
    v = s("1d");    is_int(fa_parse_time(&v, 1), 86400000, "time 1d");
    v = s("7");     is_int(fa_parse_time(&v, 1), 7000, "bare time is seconds");
    v = s("7");     is_int(fa_parse_time(&v, 0), 7, "bare time in ms when asked");
    v = s("3w");    is_int(fa_parse_time(&v, 1), -1, "unknown time unit refused");
    v = s("ms");    is_int(fa_parse_time(&v, 1), -1, "time without digits refused");
}

static void
test_strings(void)
{
    fa_str_t  a = s("Hello"), b = s("Hello"), c = s("hello");
    char      buf[8];
    u_char    low[5];

    ok(fa_str_equal(&a, &b), "equal strings");
    ok(!fa_str_equal(&a, &c), "case matters for fa_str_equal");
    ok(fa_str_casecmp(&a, "HELLO") == 0, "casecmp ignores case");
    ok(fa_str_casecmp(&a, "HELL") != 0, "casecmp checks length");
    is_int(fa_snprintf(buf, sizeof(buf), "%s", "0123456789"), 7, "snprintf truncates");
    ok(strcmp(buf, "0123456") == 0, "snprintf keeps the NUL");
    fa_strlow(low, (u_char *) "AbC-Z", 5);
    ok(memcmp(low, "abc-z", 5) == 0, "strlow lowers ASCII only");
}

static void
test_pool(void)
{
    fa_pool_t  *p = fa_pool_create(512, &fa_log_stderr);
    int         one = 1, two = 2;
    void       *big, *small;
    fa_str_t    src = s("copy me");
    u_char     *dup;
    fa_array_t *a;

    ok(p != NULL, "pool created");
    small = fa_palloc(p, 24);
    ok(small != NULL && ((uintptr_t) small % FA_POOL_ALIGN) == 0, "small allocation aligned");
    for (int i = 0; i < 1000; i++) {
        memset(fa_palloc(p, 100), 0xab, 100);     /* forces new blocks */
    }
    big = fa_palloc(p, 1 << 20);
    ok(big != NULL, "large allocation");
    memset(big, 1, 1 << 20);
    is_int(fa_pfree(p, big), FA_OK, "large allocation freed early");
    is_int(fa_pfree(p, small), FA_DECLINED, "small allocations are not freed one by one");
    dup = fa_pstrdup(p, &src);
    ok(dup && strcmp((char *) dup, "copy me") == 0, "pstrdup NUL-terminates");

    a = fa_array_create(p, 1, sizeof(int));
    for (int i = 0; i < 100; i++) {
        *(int *) fa_array_push(a) = i;
    }
    is_int(a->nelts, 100, "array grew to 100");
    is_int(((int *) a->elts)[99], 99, "array kept its elements");

    fa_pool_cleanup_add(p, cleanup, &one);
    fa_pool_cleanup_add(p, cleanup, &two);
    fa_pool_destroy(p);
    is_int(cleaned, 3, "destroy ran every cleanup handler");
}

int
main(void)
{
    test_numbers();
    test_strings();
    test_pool();
    return done_testing();
}
