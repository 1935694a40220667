/* Unit tests of bins.c: fit edge cases, fast transform vs the reference, bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/bins.h"

#define S PROP_BINS_EDGE_STRIDE

static prop_bins_params params(int max_bins, int64_t subsample, int nt)
{
    prop_bins_params p = {max_bins, subsample, 42, nt};
    return p;
}

static uint64_t rng_state = 12345;
static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Fit, transform (fast with 1 and 3 threads, reference) and compare. Returns fast codes. */
static uint8_t *fit_transform(const prop_bins_data *X, prop_bins_params prm, double *edges,
                              int32_t *n_edges)
{
    prop_error err;
    CHECK(prop_bins_fit(&prm, X, edges, n_edges, &err) == PROP_OK);
    prop_bins_edges m = {X->n_cols, edges, n_edges};
    CHECK(prop_bins_check_edges(&m, &err) == PROP_OK);
    size_t sz = (size_t)(X->n_rows * X->n_cols);
    uint8_t *a = malloc(sz), *b = malloc(sz), *c = malloc(sz);
    CHECK(prop_bins_transform(&m, X, 1, a, &err) == PROP_OK);
    CHECK(prop_bins_transform(&m, X, 3, b, &err) == PROP_OK);
    CHECK(prop_bins_transform_ref(&m, X, c, &err) == PROP_OK);
    CHECK(memcmp(a, b, sz) == 0);
    CHECK(memcmp(a, c, sz) == 0);
    free(b);
    free(c);
    return a;
}

static void test_binary_column_one_edge(void)
{
    double x[] = {0, 1, 1, 0, 1, 0, 0};
    prop_bins_data X = {x, 7, 1, PROP_BINS_F64};
    double edges[S];
    int32_t ne;
    uint8_t *codes = fit_transform(&X, params(255, 1000, 1), edges, &ne);
    CHECK(ne == 1);
    CHECK(edges[0] == 0.5);
    CHECK(isnan(edges[1]) && isnan(edges[S - 1]));
    for (int i = 0; i < 7; i++)
        CHECK(codes[i] == (uint8_t)x[i]);
    free(codes);
}

static void test_all_equal_and_all_nan_and_one_row(void)
{
    double x[] = {3, NAN, 3, NAN, 3, NAN}; /* col 0 all 3, col 1 all NaN */
    prop_bins_data X = {x, 3, 2, PROP_BINS_F64};
    double edges[2 * S];
    int32_t ne[2];
    uint8_t *codes = fit_transform(&X, params(255, 1000, 2), edges, ne);
    CHECK(ne[0] == 0 && ne[1] == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(codes[2 * i] == 0);
        CHECK(codes[2 * i + 1] == PROP_MISSING_BIN);
    }
    free(codes);

    double one[] = {1.5, -2.0, NAN};
    prop_bins_data X1 = {one, 1, 3, PROP_BINS_F64};
    double e1[3 * S];
    int32_t n1[3];
    codes = fit_transform(&X1, params(2, 1, 1), e1, n1);
    CHECK(n1[0] == 0 && n1[1] == 0 && n1[2] == 0);
    CHECK(codes[0] == 0 && codes[1] == 0 && codes[2] == PROP_MISSING_BIN);
    free(codes);
}

static void test_nan_goes_to_missing_bin(void)
{
    float x[] = {1.0f, NAN, 2.0f, 3.0f, NAN};
    prop_bins_data X = {x, 5, 1, PROP_BINS_F32};
    double edges[S];
    int32_t ne;
    uint8_t *codes = fit_transform(&X, params(255, 1000, 1), edges, &ne);
    CHECK(ne == 2);
    CHECK(codes[0] == 0 && codes[1] == PROP_MISSING_BIN && codes[2] == 1 && codes[3] == 2 &&
          codes[4] == PROP_MISSING_BIN);
    free(codes);
}

static void test_exact_up_to_max_bins(void)
{
    /* 255 distinct values -> 254 edges, every value its own code. */
    int n = 1000;
    double *x = malloc(n * sizeof *x);
    for (int i = 0; i < n; i++)
        x[i] = (double)((i * 7) % 255) * 0.25 - 10.0;
    prop_bins_data X = {x, n, 1, PROP_BINS_F64};
    double edges[S];
    int32_t ne;
    uint8_t *codes = fit_transform(&X, params(255, 100, 2), edges, &ne);
    CHECK(ne == 254);
    for (int i = 0; i < n; i++)
        CHECK(codes[i] == (uint8_t)((i * 7) % 255));
    free(codes);
    /* max_bins 10 on the same column -> quantiles, at most 9 edges, monotone codes. */
    codes = fit_transform(&X, params(10, 100, 2), edges, &ne);
    CHECK(ne >= 1 && ne <= 9);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k += 37)
            if (x[i] < x[k])
                CHECK(codes[i] <= codes[k]);
    free(codes);
    free(x);
}

static void test_many_values_quantiles(void)
{
    int n = 5000, p = 3;
    double *x = malloc((size_t)n * p * sizeof *x);
    for (int i = 0; i < n; i++) {
        x[i * p + 0] = urand();                     /* continuous */
        x[i * p + 1] = floor(urand() * 1000.0);     /* 1000 integers */
        x[i * p + 2] = urand() < 0.1 ? NAN : urand() * 1e6;
    }
    prop_bins_data X = {x, n, p, PROP_BINS_F64};
    double e1[3 * S], e2[3 * S];
    int32_t n1[3], n2[3];
    uint8_t *c1 = fit_transform(&X, params(255, 2000, 1), e1, n1);
    uint8_t *c2 = fit_transform(&X, params(255, 2000, 2), e2, n2);
    for (int j = 0; j < p; j++) {
        CHECK(n1[j] == n2[j]); /* same for any thread count */
        CHECK(n1[j] >= 200 && n1[j] <= 254);
    }
    CHECK(memcmp(e1, e2, sizeof e1) == 0 || 1); /* NaN slots compare by bytes below */
    for (int t = 0; t < 3 * S; t++)
        CHECK((isnan(e1[t]) && isnan(e2[t])) || e1[t] == e2[t]);
    CHECK(memcmp(c1, c2, (size_t)n * p) == 0);
    /* Roughly uniform occupancy of column 0's bins. */
    int counts[256] = {0};
    for (int i = 0; i < n; i++)
        counts[c1[i * p]]++;
    for (int b = 0; b <= n1[0]; b++)
        CHECK(counts[b] > 0 && counts[b] < 5 * n / (n1[0] + 1));
    free(c1);
    free(c2);
    free(x);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Plain reference of the quantile edges of one column when the subsample is every row:
 * qsort of the non-NaN values, then the "midpoint" percentiles i / max_bins, kept while
 * strictly increasing and below the maximum. */
static int32_t ref_quantile_edges(const double *x, int64_t n, int64_t p, int64_t j, int max_bins,
                                  double *edges)
{
    double *v = malloc((size_t)n * sizeof *v);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(x[i * p + j]))
            v[m++] = x[i * p + j];
    qsort(v, (size_t)m, sizeof *v, cmp_double);
    int32_t k = 0;
    for (int q = 1; q < max_bins && m > 0; q++) {
        double h = (double)(m - 1) * (double)q / (double)max_bins;
        int64_t lo = (int64_t)floor(h), hi = (int64_t)ceil(h);
        if (hi > m - 1)
            hi = m - 1;
        double e = v[lo];
        if (lo != hi) {
            e = v[lo] * 0.5 + v[hi] * 0.5;
            if (!(e >= v[lo] && e < v[hi]))
                e = v[lo];
        }
        if (!(e < v[m - 1]))
            break;
        if (k > 0 && !(e > edges[k - 1]))
            continue;
        edges[k++] = e;
    }
    free(v);
    return k;
}

/* Quantile edges (subsample = every row) equal the plain reference, for 1 and 2
 * threads: 120 columns of 40,000 rows (the keys are gathered in two blocks of columns),
 * continuous, negative, heavy-tailed, with ties and NaN. */
static void test_quantiles_match_reference(void)
{
    const int64_t n = 40000, p = 120;
    double *x = malloc((size_t)(n * p) * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < p; j++) {
            double u = urand();
            switch (j % 4) {
            case 0: x[i * p + j] = u * 2.0 - 1.0; break;
            case 1: x[i * p + j] = floor(u * 700.0) - 350.0; break; /* ties */
            case 2: x[i * p + j] = urand() < 0.2 ? NAN : exp(30.0 * u); break;
            default: x[i * p + j] = -1e300 * u; break;
            }
        }
    prop_bins_data X = {x, n, p, PROP_BINS_F64};
    double *e = malloc((size_t)p * S * sizeof *e), want[S];
    int32_t *ne = malloc((size_t)p * sizeof *ne);
    for (int nt = 1; nt <= 2; nt++) {
        prop_error err;
        prop_bins_params prm = params(255, n, nt);
        CHECK(prop_bins_fit(&prm, &X, e, ne, &err) == PROP_OK);
        int bad = 0;
        for (int64_t j = 0; j < p; j++) {
            int32_t k = ref_quantile_edges(x, n, p, j, 255, want);
            bad += ne[j] != k || memcmp(e + j * S, want, (size_t)k * sizeof *want) != 0;
        }
        CHECK(bad == 0);
        CHECK(ne[0] > 200 && ne[1] > 200);
    }
    free(x);
    free(e);
    free(ne);
}

/* The transform of mixed columns (runs of 0/1 and constant columns between columns of
 * many edges, NaN and +-inf among the values) equals the reference, float64 and
 * float32, 1 and 3 threads (fit_transform). */
static void test_transform_column_runs(void)
{
    const int n = 3000, p = 23;
    double *x = malloc((size_t)n * p * sizeof *x);
    float *xf = malloc((size_t)n * p * sizeof *xf);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < p; j++) {
            double u = urand(), v;
            if (j % 7 == 3)
                v = urand() * 100.0; /* many edges */
            else if (j % 7 == 5)
                v = 2.5; /* constant: no edge */
            else
                v = u < 0.5 ? 0.0 : 1.0; /* one edge */
            if (urand() < 0.05)
                v = NAN;
            x[i * p + j] = v;
            xf[i * p + j] = (float)v;
        }
    double edges[23 * S];
    int32_t ne[23];
    prop_bins_data X = {x, n, p, PROP_BINS_F64};
    free(fit_transform(&X, params(255, 1000, 2), edges, ne));
    CHECK(ne[0] == 1 && ne[3] > 100 && ne[5] == 0);
    /* values beyond the fitted range, infinities and NaN through the fitted edges */
    for (int i = 0; i < n; i += 5)
        x[i * p + (i % p)] = i % 3 == 0 ? INFINITY : i % 3 == 1 ? -INFINITY : -7.0;
    prop_bins_edges m = {p, edges, ne};
    uint8_t *a = malloc((size_t)n * p), *b = malloc((size_t)n * p), *c = malloc((size_t)n * p);
    prop_error err;
    for (int nt = 1; nt <= 3; nt += 2) {
        CHECK(prop_bins_transform(&m, &X, nt, a, &err) == PROP_OK);
        CHECK(prop_bins_transform_ref(&m, &X, b, &err) == PROP_OK);
        CHECK(memcmp(a, b, (size_t)n * p) == 0);
    }
    prop_bins_data XF = {xf, n, p, PROP_BINS_F32};
    CHECK(prop_bins_transform(&m, &XF, 2, a, &err) == PROP_OK);
    CHECK(prop_bins_transform_ref(&m, &XF, c, &err) == PROP_OK);
    CHECK(memcmp(a, c, (size_t)n * p) == 0);
    free(a);
    free(b);
    free(c);
    free(x);
    free(xf);
}

static void test_uint8_lookup(void)
{
    int n = 600;
    uint8_t *x = malloc(n);
    for (int i = 0; i < n; i++)
        x[i] = (uint8_t)(i % 256); /* 256 distinct > 255 -> quantiles */
    prop_bins_data X = {x, n, 1, PROP_BINS_U8};
    double edges[S];
    int32_t ne;
    uint8_t *codes = fit_transform(&X, params(255, 10000, 2), edges, &ne);
    CHECK(ne >= 200 && ne <= 254);
    free(codes);
    for (int i = 0; i < n; i++)
        x[i] = (uint8_t)(i % 3 == 0 ? 7 : 200);
    codes = fit_transform(&X, params(255, 10000, 2), edges, &ne);
    CHECK(ne == 1 && edges[0] == 103.5);
    for (int i = 0; i < n; i++)
        CHECK(codes[i] == (x[i] == 200));
    free(codes);
    free(x);
}

static void test_invalid_args(void)
{
    prop_error err;
    double x[] = {0, 1, INFINITY, 2};
    double edges[2 * S];
    int32_t ne[2];
    prop_bins_data X = {x, 2, 2, PROP_BINS_F64};
    prop_bins_params bad = params(1, 10, 1);
    err.msg[0] = 0;
    CHECK(prop_bins_fit(&bad, &X, edges, ne, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "max_bins") != NULL);
    bad = params(256, 10, 1);
    CHECK(prop_bins_fit(&bad, &X, edges, ne, &err) == PROP_INVALID_ARG);
    bad = params(255, 0, 1);
    CHECK(prop_bins_fit(&bad, &X, edges, ne, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "subsample") != NULL);
    bad = params(255, 10, 0);
    CHECK(prop_bins_fit(&bad, &X, edges, ne, &err) == PROP_INVALID_ARG);
    prop_bins_params ok = params(255, 10, 1);
    CHECK(prop_bins_fit(&ok, &X, edges, ne, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "infinite") != NULL && strstr(err.msg, "column 0") != NULL &&
          strstr(err.msg, "row 1") != NULL);
    prop_bins_data empty = {x, 0, 2, PROP_BINS_F64};
    CHECK(prop_bins_fit(&ok, &empty, edges, ne, &err) == PROP_INVALID_ARG);
    CHECK(prop_bins_fit(&ok, NULL, edges, ne, &err) == PROP_INVALID_ARG);
    CHECK(prop_bins_fit(&ok, &X, NULL, ne, &err) == PROP_INVALID_ARG);
    prop_bins_data baddt = {x, 2, 2, (prop_bins_dtype)9};
    CHECK(prop_bins_fit(&ok, &baddt, edges, ne, &err) == PROP_INVALID_ARG);

    /* transform: bad edges, bad n_edges, column mismatch */
    uint8_t out[4];
    double e[2 * S];
    int32_t k[2] = {2, 0};
    e[0] = 1.0;
    e[1] = 1.0; /* not strictly increasing */
    prop_bins_edges m = {2, e, k};
    double y[] = {0, 1, 2, 3};
    prop_bins_data Y = {y, 2, 2, PROP_BINS_F64};
    CHECK(prop_bins_transform(&m, &Y, 1, out, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "increasing") != NULL);
    e[1] = 2.0;
    k[0] = 255;
    CHECK(prop_bins_transform(&m, &Y, 1, out, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "n_edges") != NULL);
    k[0] = 2;
    e[0] = NAN;
    CHECK(prop_bins_transform_ref(&m, &Y, out, &err) == PROP_INVALID_ARG);
    e[0] = 1.0;
    CHECK(prop_bins_transform(&m, &Y, 0, out, &err) == PROP_INVALID_ARG);
    CHECK(prop_bins_transform(&m, &Y, 1, NULL, &err) == PROP_INVALID_ARG);
    prop_bins_edges m1 = {1, e, k};
    CHECK(prop_bins_transform(&m1, &Y, 1, out, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "columns") != NULL);
    CHECK(prop_bins_transform(&m, &Y, 2, out, &err) == PROP_OK);
    /* inf in transform: -inf -> 0, +inf -> top */
    double z[] = {-INFINITY, INFINITY, 1.5, 0};
    prop_bins_data Z = {z, 2, 2, PROP_BINS_F64};
    CHECK(prop_bins_transform(&m, &Z, 2, out, &err) == PROP_OK);
    CHECK(out[0] == 0 && out[1] == 0 && out[2] == 1);
}

int main(void)
{
    RUN(test_binary_column_one_edge);
    RUN(test_all_equal_and_all_nan_and_one_row);
    RUN(test_nan_goes_to_missing_bin);
    RUN(test_exact_up_to_max_bins);
    RUN(test_many_values_quantiles);
    RUN(test_quantiles_match_reference);
    RUN(test_transform_column_runs);
    RUN(test_uint8_lookup);
    RUN(test_invalid_args);
    return check_summary("bins");
}
