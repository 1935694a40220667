/* check.h - a minimal unit-test harness for the C core.
 *
 *   static void test_something(void) { CHECK(x == 1); CHECK_CLOSE(a, b, 1e-12); }
 *   int main(void) { RUN(test_something); return check_summary("status"); }
 *
 * check_summary prints "<suite>: N passed, N failed" and returns the exit code.
 */
#ifndef PROPENSITY_CHECK_H
#define PROPENSITY_CHECK_H
#include <math.h>
#include <stdint.h>
#include <stdio.h>

static int check_failures_ = 0;
static int check_tests_passed_ = 0;
static int check_tests_failed_ = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            check_failures_++;                                                   \
        }                                                                        \
    } while (0)

#define CHECK_CLOSE(a, b, tol)                                                   \
    do {                                                                         \
        double a_ = (double)(a), b_ = (double)(b);                               \
        if (!(fabs(a_ - b_) <= (tol) * (1.0 + fabs(b_)))) {                      \
            fprintf(stderr, "%s:%d: CHECK_CLOSE failed: %s=%.17g %s=%.17g\n", __FILE__, \
                    __LINE__, #a, a_, #b, b_);                                   \
            check_failures_++;                                                   \
        }                                                                        \
    } while (0)

#define RUN(fn)                                                                  \
    do {                                                                         \
        int before_ = check_failures_;                                           \
        fn();                                                                    \
        if (check_failures_ == before_) check_tests_passed_++;                   \
        else { check_tests_failed_++; fprintf(stderr, "FAILED: %s\n", #fn); }    \
    } while (0)

/* The tests' random numbers: xorshift64 from a seed (assign check_rng_state to reseed). */
static uint64_t check_rng_state = 88172645463325252ull;

static inline uint64_t check_rand(void)
{
    check_rng_state ^= check_rng_state << 13;
    check_rng_state ^= check_rng_state >> 7;
    check_rng_state ^= check_rng_state << 17;
    return check_rng_state;
}

/* Uniform in [0, 1). */
static inline double check_uniform(void) { return (double)(check_rand() >> 11) / 9007199254740992.0; }

static int check_summary(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, check_tests_passed_, check_tests_failed_);
    return check_tests_failed_ ? 1 : 0;
}
#endif
