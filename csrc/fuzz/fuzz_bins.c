/* fuzz_bins.c - libFuzzer target of the binning and row-compression entry points.
 *
 * Input layout: byte 0 picks the mode, dtype and sizes; the rest is raw data
 * (float64 / float32 / uint8 values, NaN and inf included) and, in the hostile
 * edges mode, the edges and edge counts themselves.
 *   mode 0: prop_bins_fit on the data, then prop_bins_check_edges must accept the
 *           fitted edges, and prop_bins_transform must equal the reference;
 *   mode 1: caller-supplied edges (any doubles, any counts, including negative and
 *           > 254): check_edges decides, and when it accepts, transform == reference;
 *   both:   the codes are compressed with prop_compress_rows and the reference
 *           (identical results), and the hostile sizes / parameters (zero or
 *           negative rows and columns, max_bins outside [2, 255], subsample 0,
 *           n_threads 0) must be refused with PROP_INVALID_ARG.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/bins.h"
#include "propensity/compress.h"

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "fuzz_bins: %s (%s)\n", what, msg);
    abort();
}

static void check_compress(const uint8_t *codes, int64_t n, int64_t p, const uint8_t *raw,
                           size_t raw_len)
{
    uint8_t *y = malloc((size_t)n);
    double *w = malloc((size_t)n * sizeof *w);
    for (int64_t i = 0; i < n; i++) {
        uint8_t b = raw_len ? raw[i % (int64_t)raw_len] : 0;
        y[i] = b & 1;
        w[i] = (double)(b >> 1) / 4.0;
    }
    int64_t *inv_a = malloc((size_t)n * sizeof(int64_t)), *inv_b = malloc((size_t)n * sizeof(int64_t));
    prop_compress_params cp = {.n_threads = 1};
    for (int variant = 0; variant < 2; variant++) {
        prop_compress_data cd = {.bins = codes, .n_rows = n, .n_cols = p,
                                 .y = variant ? y : NULL, .sample_weight = variant ? w : NULL};
        prop_compressed *a = NULL, *b = NULL;
        prop_error ea, eb;
        prop_status sa = prop_compress_rows(&cp, &cd, inv_a, &a, &ea);
        prop_status sb = prop_compress_rows_ref(&cd, inv_b, &b, &eb);
        if (sa != sb)
            die("compress status differs from the reference", ea.msg);
        if (sa == PROP_OK) {
            int64_t u = prop_compressed_n_unique(a);
            if (u != prop_compressed_n_unique(b) || u < 1 || u > n)
                die("compress unique count", "");
            if (memcmp(prop_compressed_rows(a), prop_compressed_rows(b), (size_t)(u * p)) ||
                memcmp(prop_compressed_counts(a), prop_compressed_counts(b),
                       (size_t)u * 2 * sizeof(int64_t)) ||
                memcmp(prop_compressed_weights(a), prop_compressed_weights(b),
                       (size_t)u * 2 * sizeof(double)) ||
                memcmp(inv_a, inv_b, (size_t)n * sizeof(int64_t)))
                die("compress output differs from the reference", "");
        } else if (a != NULL || b != NULL) {
            die("compress failed but returned a result", "");
        }
        prop_compressed_free(a);
        prop_compressed_free(b);
    }
    /* hostile sizes */
    prop_compress_data bad = {.bins = codes, .n_rows = 0, .n_cols = p};
    prop_compressed *r = NULL;
    prop_error e;
    if (prop_compress_rows(&cp, &bad, inv_a, &r, &e) != PROP_INVALID_ARG || r != NULL)
        die("compress accepted n_rows = 0", "");
    bad.n_rows = -n;
    if (prop_compress_rows(&cp, &bad, inv_a, &r, &e) != PROP_INVALID_ARG || r != NULL)
        die("compress accepted n_rows < 0", "");
    bad.n_rows = n;
    bad.n_cols = -1;
    if (prop_compress_rows_ref(&bad, inv_a, &r, &e) != PROP_INVALID_ARG || r != NULL)
        die("compress ref accepted n_cols < 0", "");
    prop_compress_params zero = {.n_threads = 0};
    if (prop_compress_check_params(&zero, &e) != PROP_INVALID_ARG)
        die("compress accepted n_threads = 0", "");
    free(y);
    free(w);
    free(inv_a);
    free(inv_b);
}

static void check_transform(const prop_bins_edges *m, const prop_bins_data *X)
{
    int64_t cells = X->n_rows * X->n_cols;
    uint8_t *a = malloc((size_t)cells), *b = malloc((size_t)cells);
    prop_error ea, eb;
    prop_status sa = prop_bins_transform(m, X, 2, a, &ea);
    prop_status sb = prop_bins_transform_ref(m, X, b, &eb);
    if (sa != PROP_OK || sb != PROP_OK)
        die("transform failed on accepted edges", ea.msg);
    if (memcmp(a, b, (size_t)cells) != 0)
        die("transform differs from the reference", "");
    for (int64_t i = 0; i < cells; i++) {
        int64_t j = i % X->n_cols;
        if (a[i] != PROP_MISSING_BIN && a[i] > m->n_edges[j])
            die("code above the column's bin count", "");
    }
    if (prop_bins_transform(m, X, 0, a, &ea) != PROP_INVALID_ARG)
        die("transform accepted n_threads = 0", "");
    check_compress(a, X->n_rows, X->n_cols, (const uint8_t *)X->data,
                   (size_t)(cells * (X->dtype == PROP_BINS_F64 ? 8 : X->dtype == PROP_BINS_F32 ? 4 : 1)));
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint8_t b0 = data[0], b1 = data[1], b2 = data[2];
    data += 3;
    size -= 3;
    int mode = b0 & 1;
    prop_bins_dtype dtype = (prop_bins_dtype)((b0 >> 1) % 3);
    int64_t p = 1 + (b0 >> 3) % 6;
    size_t item = dtype == PROP_BINS_F64 ? 8 : dtype == PROP_BINS_F32 ? 4 : 1;

    double *edges = calloc((size_t)p * PROP_BINS_EDGE_STRIDE, sizeof(double));
    int32_t *n_edges = calloc((size_t)p, sizeof(int32_t));
    prop_error err;
    prop_bins_edges m = {.n_cols = p, .edges = edges, .n_edges = n_edges};

    if (mode == 1) {
        /* hostile edges: n_edges from one byte each (signed), then doubles */
        for (int64_t j = 0; j < p && size > 0; j++) {
            int v = (int8_t)data[0];
            n_edges[j] = v < -100 ? v * 1000 : (v > 100 ? 255 + v : (v < 0 ? 0 : v % 12));
            data++;
            size--;
        }
        for (int64_t j = 0; j < p; j++) {
            int32_t k = n_edges[j] > 0 && n_edges[j] < PROP_BINS_EDGE_STRIDE ? n_edges[j] : 0;
            for (int32_t t = 0; t < k && size >= 8; t++) {
                memcpy(&edges[j * PROP_BINS_EDGE_STRIDE + t], data, 8);
                data += 8;
                size -= 8;
            }
        }
    }
    int64_t n = (int64_t)(size / item) / p;
    if (n < 1) {
        free(edges);
        free(n_edges);
        return 0;
    }
    void *xs = malloc((size_t)(n * p) * item);
    memcpy(xs, data, (size_t)(n * p) * item);
    prop_bins_data X = {.data = xs, .n_rows = n, .n_cols = p, .dtype = dtype};

    if (mode == 0) {
        prop_bins_params bp = {.max_bins = 2 + b1 % 254, .subsample = 1 + b2 % 64,
                               .seed = b1 * 31u + b2, .n_threads = 1};
        prop_status st = prop_bins_fit(&bp, &X, edges, n_edges, &err);
        int has_inf = 0; /* the fit refuses infinite values (NaN is "missing") */
        for (int64_t i = 0; i < n * p && dtype != PROP_BINS_U8; i++)
            has_inf |= dtype == PROP_BINS_F64 ? isinf(((double *)xs)[i]) : isinf(((float *)xs)[i]);
        if (has_inf) {
            if (st != PROP_INVALID_ARG || strstr(err.msg, "infinite") == NULL)
                die("fit accepted an infinite value", err.msg);
            free(xs);
            free(edges);
            free(n_edges);
            return 0;
        }
        if (st != PROP_OK)
            die("fit failed on a valid matrix", err.msg);
        if (prop_bins_check_edges(&m, &err) != PROP_OK)
            die("fitted edges fail check_edges", err.msg);
        for (int64_t j = 0; j < p; j++)
            if (n_edges[j] > bp.max_bins - 1)
                die("more edges than max_bins - 1", "");
        check_transform(&m, &X);
        /* hostile parameters and sizes */
        prop_bins_params bad = bp;
        bad.max_bins = (b1 & 1) ? 1 : 256 + b1;
        if (prop_bins_fit(&bad, &X, edges, n_edges, &err) != PROP_INVALID_ARG)
            die("fit accepted a bad max_bins", "");
        bad = bp;
        bad.subsample = -(int64_t)b2;
        if (prop_bins_fit(&bad, &X, edges, n_edges, &err) != PROP_INVALID_ARG)
            die("fit accepted subsample <= 0", "");
        prop_bins_data badX = X;
        badX.n_rows = (b2 & 1) ? 0 : -n;
        if (prop_bins_fit(&bp, &badX, edges, n_edges, &err) != PROP_INVALID_ARG)
            die("fit accepted n_rows <= 0", "");
        badX = X;
        badX.dtype = (prop_bins_dtype)(3 + b2);
        if (prop_bins_fit(&bp, &badX, edges, n_edges, &err) != PROP_INVALID_ARG)
            die("fit accepted an unknown dtype", "");
    } else {
        prop_status st = prop_bins_check_edges(&m, &err);
        if (st == PROP_OK) {
            check_transform(&m, &X);
        } else {
            uint8_t *out = malloc((size_t)(n * p));
            if (prop_bins_transform(&m, &X, 1, out, &err) == PROP_OK ||
                prop_bins_transform_ref(&m, &X, out, &err) == PROP_OK)
                die("transform accepted edges check_edges refused", "");
            free(out);
        }
    }
    free(xs);
    free(edges);
    free(n_edges);
    return 0;
}
