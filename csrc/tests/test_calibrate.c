/* Unit tests of calibrate.c: the stack PAV against the plain restart-from-the-left
 * reference, the properties of an isotonic fit, bad input. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "propensity/calibrate.h"

static void test_small_example(void)
{
    double y[4] = {1.0, 0.0, 2.0, 1.0}, w[4] = {1, 1, 1, 1}, f[4];
    prop_error err;
    CHECK(prop_pav(y, w, 4, f, &err) == PROP_OK);
    CHECK(f[0] == 0.5 && f[1] == 0.5 && f[2] == 1.5 && f[3] == 1.5);
    /* weights pull a pooled block's mean: (3 * 1 + 1 * 0) / 4 */
    double w2[4] = {3, 1, 1, 1};
    CHECK(prop_pav(y, w2, 4, f, &err) == PROP_OK);
    CHECK(f[0] == 0.75 && f[1] == 0.75);
    /* in place */
    CHECK(prop_pav(y, w, 4, y, &err) == PROP_OK);
    CHECK(y[0] == 0.5 && y[3] == 1.5);
}

static void test_against_reference(void)
{
    prop_error err;
    for (int trial = 0; trial < 200; trial++) {
        int64_t n = 1 + (int64_t)(check_rand() % 300);
        double *y = malloc((size_t)n * sizeof *y), *w = malloc((size_t)n * sizeof *w);
        double *f = malloc((size_t)n * sizeof *f), *r = malloc((size_t)n * sizeof *r);
        int levels = 1 + (int)(check_rand() % 5); /* ties: few distinct values */
        for (int64_t i = 0; i < n; i++) {
            /* a noisy rising trend, as calibration sees it */
            double trend = (double)i / (double)n;
            y[i] = trial % 3 == 0 ? (double)(check_rand() % (uint64_t)levels)
                                  : trend + ((double)(check_rand() % 1000) / 1000.0 - 0.5);
            w[i] = trial % 2 ? 1.0 : 0.25 + (double)(check_rand() % 100);
        }
        CHECK(prop_pav(y, w, n, f, &err) == PROP_OK);
        CHECK(prop_pav_ref(y, w, n, r, &err) == PROP_OK);
        double sy = 0.0, sf = 0.0, ssr_f = 0.0, ssr_r = 0.0;
        for (int64_t i = 0; i < n; i++) {
            CHECK_CLOSE(f[i], r[i], 1e-12);
            if (i > 0)
                CHECK(f[i] >= f[i - 1]);          /* non-decreasing */
            sy += w[i] * y[i];
            sf += w[i] * f[i];
            ssr_f += w[i] * (y[i] - f[i]) * (y[i] - f[i]);
            ssr_r += w[i] * (y[i] - r[i]) * (y[i] - r[i]);
        }
        CHECK_CLOSE(sf, sy, 1e-10);               /* pooling keeps the weighted total */
        CHECK_CLOSE(ssr_f, ssr_r, 1e-9);
        /* a fit is its own fit (it has no violators left) */
        double *g = malloc((size_t)n * sizeof *g);
        CHECK(prop_pav(f, w, n, g, &err) == PROP_OK);
        for (int64_t i = 0; i < n; i++)
            CHECK_CLOSE(g[i], f[i], 1e-12);
        free(g);
        free(y);
        free(w);
        free(f);
        free(r);
    }
}

static void test_bad_input(void)
{
    prop_error err;
    double y[3] = {0.0, NAN, 1.0}, w[3] = {1, 1, 1}, f[3];
    CHECK(prop_pav(y, w, 3, f, &err) == PROP_INVALID_ARG);
    CHECK(prop_pav_ref(y, w, 3, f, &err) == PROP_INVALID_ARG);
    double y2[3] = {0.0, 0.5, 1.0}, w2[3] = {1, 0, 1};
    CHECK(prop_pav(y2, w2, 3, f, &err) == PROP_INVALID_ARG);
    w2[1] = INFINITY;
    CHECK(prop_pav(y2, w2, 3, f, &err) == PROP_INVALID_ARG);
    CHECK(prop_pav(y2, w, -1, f, &err) == PROP_INVALID_ARG);
    w2[1] = -1.0;
    CHECK(prop_pav(y2, w2, 3, f, &err) == PROP_INVALID_ARG);
    CHECK(prop_pav_ref(y2, w2, 3, f, &err) == PROP_INVALID_ARG);
    CHECK(prop_pav(NULL, w, 3, f, &err) == PROP_INVALID_ARG);
    CHECK(prop_pav(y2, NULL, 3, f, &err) == PROP_INVALID_ARG);
    CHECK(prop_pav(y2, w, 3, NULL, &err) == PROP_INVALID_ARG);
    CHECK(prop_pav(NULL, NULL, 0, NULL, &err) == PROP_OK);   /* no points: nothing to do */
}

int main(void)
{
    RUN(test_small_example);
    RUN(test_against_reference);
    RUN(test_bad_input);
    return check_summary("calibrate");
}
