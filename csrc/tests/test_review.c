/* test_review.c - regression tests from the code review of the C core (bins, compress,
 * logreg, csvio): each case pins a defect that was found and fixed, or a path the
 * other suites did not reach. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/csvio.h"
#include "propensity/logreg.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static double urand(void) /* xorshift64, in [0, 1) */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* A probability of -0.0 passes the [0, 1] check; the fast formatter wrote "0.0000" for
 * digits <= 9 but "-0.000000000000" for digits >= 10, and the reference always wrote
 * the sign. Both now write it as 0, and agree for every digits. */
static void test_format_negative_zero(void)
{
    double proba[2] = {-0.0, 0.0};
    uint8_t pred[2] = {0, 0};
    char a[256], b[256], want[256];
    for (int digits = 0; digits <= 15; digits++) {
        prop_csv_format_params fp = {digits, "T", 1, 1, 7, 1};
        int64_t wa = -1, wb = -2;
        prop_error err;
        int64_t bound = prop_csv_format_bound(&fp, 2, NULL);
        CHECK(prop_csv_format(&fp, 2, NULL, NULL, pred, proba, a, bound, &wa, &err) == PROP_OK);
        CHECK(prop_csv_format_ref(&fp, 2, NULL, NULL, pred, proba, b, sizeof b, &wb, &err) ==
              PROP_OK);
        int k = snprintf(want, sizeof want, "7,0,%.*f,T,Low\n8,0,%.*f,T,Low\n", digits, 0.0,
                         digits, 0.0);
        CHECK(wa == k && memcmp(a, want, (size_t)k) == 0);
        CHECK(wb == k && memcmp(b, want, (size_t)k) == 0);
    }
}

/* The logreg solver uses a second thread only past 65536 rows per thread: 1 and 2 threads
 * on 140000 rows, L2 and elastic net, give the same bits. */
static void test_logreg_fit_two_threads_really_used(void)
{
    int64_t n = 140000, p = 4;
    double *X = malloc(sizeof(double) * (size_t)(n * p));
    double *w = malloc(sizeof(double) * (size_t)(n * 2));
    CHECK(X != NULL && w != NULL);
    if (X == NULL || w == NULL) {
        free(X);
        free(w);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double e = -0.5;
        for (int64_t j = 0; j < p; j++) {
            X[i * p + j] = urand() < 0.4 ? 1.0 : 0.0;
            e += (j % 2 ? 0.8 : -0.6) * X[i * p + j];
        }
        int y = urand() < 1.0 / (1.0 + exp(-e));
        w[2 * i] = y ? 0.0 : 1.0;
        w[2 * i + 1] = y ? 1.0 : 0.0;
    }
    prop_logreg_data d = {n, p, X, NULL, w, NULL};
    for (int a = 0; a < 2; a++) {
        double c1[4], s1[4], m1[4], k1[4], c2[4], s2[4], m2[4], k2[4];
        prop_logreg_result r1 = {c1, s1, m1, k1, 0, 0, 0, 0, 0};
        prop_logreg_result r2 = {c2, s2, m2, k2, 0, 0, 0, 0, 0};
        prop_logreg_params prm = {.C = 0.5, .l1_ratio = a ? 0.5 : 0.0, .fit_intercept = 1,
                                  .max_iter = 100, .tol = 1e-10, .n_threads = 1};
        prop_error err;
        CHECK(prop_logreg_fit(&prm, &d, &r1, &err) == PROP_OK);
        prm.n_threads = 2;
        CHECK(prop_logreg_fit(&prm, &d, &r2, &err) == PROP_OK);
        CHECK(memcmp(c1, c2, sizeof c1) == 0);
        CHECK(r1.intercept == r2.intercept && r1.objective == r2.objective);
        CHECK(r1.n_iter == r2.n_iter && r1.converged && r2.converged);
    }
    free(X);
    free(w);
}

int main(void)
{
    RUN(test_format_negative_zero);
    RUN(test_logreg_fit_two_threads_really_used);
    return check_summary("review");
}
