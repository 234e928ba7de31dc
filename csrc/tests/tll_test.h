/* Minimal assertion helpers for the C unit tests (no framework needed). */
#ifndef TLL_TEST_H
#define TLL_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int tll_test_failures = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);  \
            tll_test_failures++;                                                      \
        }                                                                             \
    } while (0)

#define CHECK_CLOSE(a, b, tol)                                                                  \
    do {                                                                                        \
        double _a = (double)(a), _b = (double)(b);                                              \
        if (!(fabs(_a - _b) <= (tol) * (1.0 + fabs(_b)))) {                                     \
            fprintf(stderr, "%s:%d: %s = %.17g, expected %.17g\n", __FILE__, __LINE__, #a, _a, _b); \
            tll_test_failures++;                                                                \
        }                                                                                       \
    } while (0)

#define TEST_MAIN_END()                                                  \
    do {                                                                 \
        if (tll_test_failures) {                                         \
            fprintf(stderr, "%d check(s) failed\n", tll_test_failures); \
            return 1;                                                    \
        }                                                                \
        printf("ok\n");                                                  \
        return 0;                                                        \
    } while (0)

/* Deterministic xorshift generator for test inputs in [0,1). */
static unsigned long long tll_test_rng = 88172645463325252ULL;
static inline double tll_test_uniform(void)
{
    tll_test_rng ^= tll_test_rng << 13;
    tll_test_rng ^= tll_test_rng >> 7;
    tll_test_rng ^= tll_test_rng << 17;
    return (double)(tll_test_rng >> 11) / 9007199254740992.0;
}
#endif
