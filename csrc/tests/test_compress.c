/* Unit tests of compress.c: the hash path vs the sort-based reference, edge cases. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/compress.h"

static uint64_t rng_state = 777;
static uint32_t urand32(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* Run fast (1 and 3 threads) and reference; check they agree exactly and are valid. */
static int64_t compare(const prop_compress_data *d)
{
    prop_error err;
    int64_t n = d->n_rows, p = d->n_cols;
    int64_t *inv_ref = malloc((size_t)n * 8), *inv1 = malloc((size_t)n * 8),
            *inv3 = malloc((size_t)n * 8);
    prop_compressed *ref = NULL, *r1 = NULL, *r3 = NULL;
    prop_compress_params p1 = {1}, p3 = {3};
    CHECK(prop_compress_rows_ref(d, inv_ref, &ref, &err) == PROP_OK);
    CHECK(prop_compress_rows(&p1, d, inv1, &r1, &err) == PROP_OK);
    CHECK(prop_compress_rows(&p3, d, inv3, &r3, &err) == PROP_OK);
    int64_t u = prop_compressed_n_unique(ref);
    const prop_compressed *fast[2] = {r1, r3};
    const int64_t *invs[2] = {inv1, inv3};
    for (int f = 0; f < 2; f++) {
        CHECK(prop_compressed_n_unique(fast[f]) == u);
        CHECK(prop_compressed_n_cols(fast[f]) == p);
        CHECK(memcmp(prop_compressed_rows(fast[f]), prop_compressed_rows(ref), (size_t)(u * p)) == 0);
        CHECK(memcmp(prop_compressed_counts(fast[f]), prop_compressed_counts(ref),
                     (size_t)u * 16) == 0);
        CHECK(memcmp(prop_compressed_weights(fast[f]), prop_compressed_weights(ref),
                     (size_t)u * 16) == 0);
        CHECK(memcmp(invs[f], inv_ref, (size_t)n * 8) == 0);
    }
    /* rows strictly increasing; expanding by inverse gives back B; counts sum to n */
    const uint8_t *rows = prop_compressed_rows(ref);
    for (int64_t r = 1; r < u; r++)
        CHECK(memcmp(rows + (r - 1) * p, rows + r * p, (size_t)p) < 0);
    for (int64_t i = 0; i < n; i++)
        CHECK(memcmp(rows + inv_ref[i] * p, d->bins + i * p, (size_t)p) == 0);
    int64_t total = 0;
    for (int64_t r = 0; r < 2 * u; r++)
        total += prop_compressed_counts(ref)[r];
    CHECK(total == n);
    prop_compressed_free(ref);
    prop_compressed_free(r1);
    prop_compressed_free(r3);
    free(inv_ref);
    free(inv1);
    free(inv3);
    return u;
}

static void test_one_row(void)
{
    uint8_t b[] = {3, 1, 255};
    uint8_t y[] = {1};
    double w[] = {2.5};
    prop_compress_data d = {b, 1, 3, y, w};
    CHECK(compare(&d) == 1);
    int64_t inv;
    prop_compressed *r = NULL;
    prop_compress_params prm = {2};
    prop_error err;
    CHECK(prop_compress_rows(&prm, &d, &inv, &r, &err) == PROP_OK);
    CHECK(inv == 0);
    CHECK(prop_compressed_counts(r)[0] == 0 && prop_compressed_counts(r)[1] == 1);
    CHECK(prop_compressed_weights(r)[0] == 0.0 && prop_compressed_weights(r)[1] == 2.5);
    prop_compressed_free(r);
}

static void test_all_equal_rows(void)
{
    uint8_t b[40];
    memset(b, 9, sizeof b);
    prop_compress_data d = {b, 10, 4, NULL, NULL};
    CHECK(compare(&d) == 1);
    prop_compressed *r = NULL;
    int64_t inv[10];
    prop_compress_params prm = {2};
    prop_error err;
    CHECK(prop_compress_rows(&prm, &d, inv, &r, &err) == PROP_OK);
    CHECK(prop_compressed_counts(r)[0] == 10 && prop_compressed_counts(r)[1] == 0);
    CHECK(prop_compressed_weights(r)[0] == 10.0);
    prop_compressed_free(r);
}

static void test_random_binary_and_wide(void)
{
    int64_t shapes[][2] = {{5000, 33}, {3000, 7}, {2000, 1}, {4000, 8}, {1500, 17}, {6000, 2}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t n = shapes[s][0], p = shapes[s][1];
        uint8_t *b = malloc((size_t)(n * p));
        uint8_t *y = malloc((size_t)n);
        double *w = malloc((size_t)n * 8);
        for (int64_t i = 0; i < n * p; i++)
            b[i] = (uint8_t)((urand32() % 100) < 15); /* sparse binary */
        for (int64_t i = 0; i < n; i++) {
            y[i] = (uint8_t)(urand32() % 2);
            w[i] = (double)(urand32() % 1000) / 7.0;
        }
        prop_compress_data d = {b, n, p, y, w};
        int64_t u = compare(&d);
        CHECK(u >= 1 && u <= n);
        prop_compress_data d2 = {b, n, p, NULL, NULL};
        compare(&d2);
        /* many distinct rows: values 0..255 including the missing bin */
        for (int64_t i = 0; i < n * p; i++)
            b[i] = (uint8_t)(urand32() % 256);
        compare(&d);
        free(b);
        free(y);
        free(w);
    }
}

static void test_many_unique_rows_grow_table(void)
{
    int64_t n = 70000, p = 3;
    uint8_t *b = malloc((size_t)(n * p));
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = urand32() % 60000u;
        b[i * p] = (uint8_t)(v >> 16);
        b[i * p + 1] = (uint8_t)(v >> 8);
        b[i * p + 2] = (uint8_t)v;
    }
    prop_compress_data d = {b, n, p, NULL, NULL};
    int64_t u = compare(&d);
    CHECK(u > 40000 && u <= 60000);
    free(b);
}

static void test_invalid_args(void)
{
    prop_error err;
    uint8_t b[] = {0, 1, 1, 0};
    uint8_t y[] = {0, 2};
    int64_t inv[2];
    prop_compressed *r = (prop_compressed *)&err; /* must be reset to NULL */
    prop_compress_params prm = {1}, bad = {0};
    prop_compress_data d = {b, 2, 2, y, NULL};
    CHECK(prop_compress_rows(&prm, &d, inv, &r, &err) == PROP_INVALID_ARG);
    CHECK(r == NULL);
    CHECK(strstr(err.msg, "y must be 0 or 1") != NULL && strstr(err.msg, "row 1") != NULL);
    CHECK(prop_compress_rows_ref(&d, inv, &r, &err) == PROP_INVALID_ARG);
    y[1] = 1;
    CHECK(prop_compress_rows(&bad, &d, inv, &r, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "n_threads") != NULL);
    CHECK(prop_compress_rows(NULL, &d, inv, &r, &err) == PROP_INVALID_ARG);
    CHECK(prop_compress_rows(&prm, &d, NULL, &r, &err) == PROP_INVALID_ARG);
    CHECK(prop_compress_rows(&prm, &d, inv, NULL, &err) == PROP_INVALID_ARG);
    prop_compress_data e = {b, 0, 2, NULL, NULL};
    CHECK(prop_compress_rows(&prm, &e, inv, &r, &err) == PROP_INVALID_ARG);
    prop_compress_data f = {NULL, 2, 2, NULL, NULL};
    CHECK(prop_compress_rows(&prm, &f, inv, &r, &err) == PROP_INVALID_ARG);
    CHECK(prop_compress_rows(&prm, &d, inv, &r, &err) == PROP_OK);
    CHECK(prop_compressed_n_unique(r) == 2);
    prop_compressed_free(r);
    prop_compressed_free(NULL);
    CHECK(prop_compressed_n_unique(NULL) == 0);
}

int main(void)
{
    RUN(test_one_row);
    RUN(test_all_equal_rows);
    RUN(test_random_binary_and_wide);
    RUN(test_many_unique_rows_grow_table);
    RUN(test_invalid_args);
    return check_summary("compress");
}
