/*
 * Minimal TAP output for C unit tests.  Each t/unit/test_*.c is its own
 * program, linked against the core objects (not facteur.c); t/00-unit.t runs
 * every one and fails if any exits non-zero.
 */

#ifndef FA_TEST_H
#define FA_TEST_H

#include <stdio.h>

static int fa_test_n, fa_test_failed;

#define ok(cond, ...)                                                         \
    do { int ok_ = !!(cond); fa_test_n++;                                     \
         if (!ok_) fa_test_failed++;                                          \
         printf("%sok %d - ", ok_ ? "" : "not ", fa_test_n);                  \
         printf(__VA_ARGS__); printf("\n");                                   \
         if (!ok_) printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
    } while (0)

#define is_int(got, want, ...)                                                \
    do { long long g_ = (long long) (got), w_ = (long long) (want);           \
         ok(g_ == w_, __VA_ARGS__);                                           \
         if (g_ != w_) printf("#   got %lld, want %lld\n", g_, w_); } while (0)

#define done_testing()                                                        \
    (printf("1..%d\n", fa_test_n), fa_test_failed ? 1 : 0)

#endif /* FA_TEST_H */
