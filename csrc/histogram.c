/* histogram.c - histogram layout, build (fast + reference) and subtraction. */
#include <stdlib.h>
#include <string.h>

#include "propensity/hist.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

prop_status prop_hist_layout_init(prop_hist_layout *L, const uint8_t *codes, int64_t n, int32_t p,
                                  prop_error *err)
{
    memset(L, 0, sizeof *L);
    if (p <= 0 || n < 0)
        return prop_fail(err, PROP_INVALID_ARG, "histogram layout needs p > 0 and n >= 0");
    L->n_features = p;
    L->n_bins = calloc((size_t)p, sizeof *L->n_bins);
    L->offset = calloc((size_t)p + 1, sizeof *L->offset);
    if (L->n_bins == NULL || L->offset == NULL) {
        prop_hist_layout_free(L);
        return prop_fail(err, PROP_NOMEM, "out of memory for the histogram layout");
    }
    uint8_t *mx = calloc((size_t)p, 1);
    if (mx == NULL) {
        prop_hist_layout_free(L);
        return prop_fail(err, PROP_NOMEM, "out of memory for the histogram layout");
    }
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *row = codes + i * (int64_t)p;
        for (int32_t j = 0; j < p; j++) {
            uint8_t c = row[j];
            if (c != PROP_MISSING_BIN && c > mx[j])
                mx[j] = c;
        }
    }
    int32_t off = 0;
    for (int32_t j = 0; j < p; j++) {
        L->n_bins[j] = (int32_t)mx[j] + 1;
        L->offset[j] = off;
        off += L->n_bins[j] + 1;
    }
    L->offset[p] = off;
    L->n_slots = off;
    free(mx);
    return PROP_OK;
}

void prop_hist_layout_free(prop_hist_layout *L)
{
    free(L->n_bins);
    free(L->offset);
    L->n_bins = NULL;
    L->offset = NULL;
}

uint8_t *prop_hist_remap(const prop_hist_layout *L, const uint8_t *codes, int64_t n, int *same)
{
    int32_t p = L->n_features;
    int64_t total = n * (int64_t)p;
    int64_t first = -1;
    for (int64_t k = 0; k < total; k++)
        if (codes[k] == PROP_MISSING_BIN) {
            first = k;
            break;
        }
    if (first < 0) {
        *same = 1;
        return NULL;
    }
    *same = 0;
    uint8_t *out = malloc(total > 0 ? (size_t)total : 1);
    if (out == NULL)
        return NULL;
    memcpy(out, codes, (size_t)total);
    for (int64_t k = first; k < total; k++)
        if (out[k] == PROP_MISSING_BIN)
            out[k] = (uint8_t)L->n_bins[k % p];
    return out;
}

/* Rows outer, features inner (row-major friendly); each thread owns a feature range.
 * W doubles per slot: (a, b, c) for a forest, (g, h) for boosting. */
#define BUILD_RANGE(NAME, W)                                                                  \
    static void NAME(const prop_hist_layout *L, const uint8_t *codes, const prop_hstat *stats, \
                     const int32_t *rows, int64_t n, double *hist, int32_t j0, int32_t j1)     \
    {                                                                                         \
        int32_t p = L->n_features;                                                            \
        const int32_t *off = L->offset;                                                       \
        memset(hist + (int64_t)W * off[j0], 0, sizeof(double) * W * (size_t)(off[j1] - off[j0])); \
        int64_t i = 0;                                                                        \
        for (; i + 1 < n; i += 2) {                                                           \
            int32_t r0 = rows[i], r1 = rows[i + 1];                                           \
            const uint8_t *c0 = codes + (int64_t)r0 * p, *c1 = codes + (int64_t)r1 * p;       \
            prop_hstat s0 = stats[r0], s1 = stats[r1];                                        \
            for (int32_t j = j0; j < j1; j++) {                                               \
                double *h = hist + (int64_t)W * (off[j] + c0[j]);                             \
                h[0] += s0.a;                                                                 \
                h[1] += s0.b;                                                                 \
                if (W == 3)                                                                   \
                    h[W - 1] += s0.c;                                                         \
                h = hist + (int64_t)W * (off[j] + c1[j]);                                     \
                h[0] += s1.a;                                                                 \
                h[1] += s1.b;                                                                 \
                if (W == 3)                                                                   \
                    h[W - 1] += s1.c;                                                         \
            }                                                                                 \
        }                                                                                     \
        for (; i < n; i++) {                                                                  \
            int32_t r0 = rows[i];                                                             \
            const uint8_t *c0 = codes + (int64_t)r0 * p;                                      \
            prop_hstat s0 = stats[r0];                                                        \
            for (int32_t j = j0; j < j1; j++) {                                               \
                double *h = hist + (int64_t)W * (off[j] + c0[j]);                             \
                h[0] += s0.a;                                                                 \
                h[1] += s0.b;                                                                 \
                if (W == 3)                                                                   \
                    h[W - 1] += s0.c;                                                         \
            }                                                                                 \
        }                                                                                     \
    }

BUILD_RANGE(build_range3, 3)
#ifdef __SSE2__
/* (gradient, hessian) pairs: one 128-bit add per row and feature */
static void build_range2(const prop_hist_layout *L, const uint8_t *codes, const prop_hstat *stats,
                         const int32_t *rows, int64_t n, double *hist, int32_t j0, int32_t j1)
{
    int32_t p = L->n_features;
    const int32_t *off = L->offset;
    memset(hist + 2 * (int64_t)off[j0], 0, sizeof(double) * 2 * (size_t)(off[j1] - off[j0]));
    int64_t i = 0;
    for (; i + 1 < n; i += 2) {
        int32_t r0 = rows[i], r1 = rows[i + 1];
        const uint8_t *c0 = codes + (int64_t)r0 * p, *c1 = codes + (int64_t)r1 * p;
        __m128d v0 = _mm_loadu_pd(&stats[r0].a), v1 = _mm_loadu_pd(&stats[r1].a);
        for (int32_t j = j0; j < j1; j++) {
            double *h0 = hist + 2 * (int64_t)(off[j] + c0[j]);
            _mm_storeu_pd(h0, _mm_add_pd(_mm_loadu_pd(h0), v0));
            double *h1 = hist + 2 * (int64_t)(off[j] + c1[j]);
            _mm_storeu_pd(h1, _mm_add_pd(_mm_loadu_pd(h1), v1));
        }
    }
    for (; i < n; i++) {
        int32_t r0 = rows[i];
        const uint8_t *c0 = codes + (int64_t)r0 * p;
        __m128d v0 = _mm_loadu_pd(&stats[r0].a);
        for (int32_t j = j0; j < j1; j++) {
            double *h0 = hist + 2 * (int64_t)(off[j] + c0[j]);
            _mm_storeu_pd(h0, _mm_add_pd(_mm_loadu_pd(h0), v0));
        }
    }
}
#else
BUILD_RANGE(build_range2, 2)
#endif

static void build_range(const prop_hist_layout *L, const uint8_t *codes, const prop_hstat *stats,
                        const int32_t *rows, int64_t n, double *hist, int width, int32_t j0,
                        int32_t j1)
{
    if (width == 2)
        build_range2(L, codes, stats, rows, n, hist, j0, j1);
    else
        build_range3(L, codes, stats, rows, n, hist, j0, j1);
}

/* Nodes with at least 2 * HIST_BLOCK rows are built in row blocks: each block
 * fills its own histogram (in parallel), then the blocks are added in block order.
 * Blocks depend on n only, so the sums do not depend on the thread count. */
#define HIST_BLOCK 32768
#define HIST_MAX_BLOCKS 16

int prop_hist_build(const prop_hist_layout *L, const uint8_t *codes, const prop_hstat *stats,
                    const int32_t *rows, int64_t n, double *hist, int width, int n_threads)
{
    int32_t p = L->n_features;
    int nt = n_threads > 1 ? n_threads : 1;
    double *scratch = NULL;
    int64_t hs = L->n_slots * width;
    if (n >= 2 * HIST_BLOCK) {
        int64_t nb = (n + HIST_BLOCK - 1) / HIST_BLOCK;
        if (nb > HIST_MAX_BLOCKS)
            nb = HIST_MAX_BLOCKS;
        scratch = malloc((size_t)((nb - 1) * hs) * sizeof *scratch);
        if (scratch != NULL) {
            int64_t bs = (n + nb - 1) / nb;
#pragma omp parallel num_threads(nt)
            {
#pragma omp for schedule(dynamic, 1)
                for (int64_t b = 0; b < nb; b++) {
                    int64_t i0 = b * bs, i1 = i0 + bs < n ? i0 + bs : n;
                    double *h = b == 0 ? hist : scratch + (b - 1) * hs;
                    build_range(L, codes, stats, rows + i0, i1 > i0 ? i1 - i0 : 0, h, width, 0,
                                p);
                }
#pragma omp for schedule(static)
                for (int64_t s = 0; s < hs; s++) {
                    double acc = hist[s];
                    for (int64_t b = 1; b < nb; b++)
                        acc += scratch[(b - 1) * hs + s];
                    hist[s] = acc;
                }
            }
            free(scratch);
            return 0;
        }
        return -1; /* out of memory for the block histograms */
    }
    if (nt > 1 && n * (int64_t)p >= (1 << 20)) {
        /* mid-size nodes: feature chunks in parallel (each feature's sums run over
         * the rows in order, exactly as in one pass) */
        int nchunk = 4 * nt < p ? 4 * nt : p;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int t = 0; t < nchunk; t++) {
            int32_t j0 = (int32_t)((int64_t)p * t / nchunk);
            int32_t j1 = (int32_t)((int64_t)p * (t + 1) / nchunk);
            if (j1 > j0)
                build_range(L, codes, stats, rows, n, hist, width, j0, j1);
        }
        return 0;
    }
    build_range(L, codes, stats, rows, n, hist, width, 0, p);
    return 0;
}

void prop_hist_build_ref(const prop_hist_layout *L, const uint8_t *codes, const prop_hstat *stats,
                         const int32_t *rows, int64_t n, double *hist, int width)
{
    int32_t p = L->n_features;
    for (int64_t s = 0; s < L->n_slots * width; s++)
        hist[s] = 0.0;
    for (int32_t j = 0; j < p; j++)
        for (int64_t i = 0; i < n; i++) {
            int32_t r = rows[i];
            int64_t s = L->offset[j] + codes[(int64_t)r * p + j];
            hist[s * width] += stats[r].a;
            hist[s * width + 1] += stats[r].b;
            if (width == 3)
                hist[s * width + 2] += stats[r].c;
        }
}

void prop_hist_subtract(const double *parent, const double *child, double *out, int64_t n_slots,
                        int width)
{
    if (width == 3) {
        for (int64_t s = 0; s < n_slots; s++) {
            const double *P = parent + 3 * s, *C = child + 3 * s;
            double *O = out + 3 * s;
            double c = P[2] - C[2];
            if (c <= 0.0) {
                O[0] = O[1] = O[2] = 0.0;
            } else {
                O[0] = P[0] - C[0];
                O[1] = P[1] - C[1];
                O[2] = c;
            }
        }
        return;
    }
    for (int64_t s = 0; s < n_slots; s++) {
        const double *P = parent + 2 * s, *C = child + 2 * s;
        double *O = out + 2 * s;
        double h = P[1] - C[1];
        /* the child holds (nearly) all of the slot: what is left is rounding residue */
        if (h <= 1e-12 * P[1]) {
            O[0] = O[1] = 0.0;
        } else {
            O[0] = P[0] - C[0];
            O[1] = h;
        }
    }
}
