/* histogram.c - histogram layout, build (fast + reference) and subtraction. */
#include <stdlib.h>
#include <string.h>

#include "propensity/hist.h"

/* packed histogram bytes per feature group (see build_q_all) */
#define Q_GROUP_BYTES 65536

prop_status prop_hist_layout_init(prop_hist_layout *L, const uint8_t *codes, int64_t n, int32_t p,
                                  prop_error *err)
{
    memset(L, 0, sizeof *L);
    if (p <= 0 || n < 0)
        return prop_fail(err, PROP_INVALID_ARG, "histogram layout needs p > 0 and n >= 0");
    L->n_features = p;
    L->n_rows = n;
    L->n_bins = calloc((size_t)p, sizeof *L->n_bins);
    L->offset = calloc((size_t)p + 1, sizeof *L->offset);
    L->qgroup = calloc((size_t)p + 1, sizeof *L->qgroup);
    if (L->n_bins == NULL || L->offset == NULL || L->qgroup == NULL) {
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
    /* feature groups of about equal slot counts whose packed histogram fits in
     * Q_GROUP_BYTES */
    int64_t G = ((int64_t)off * (int64_t)sizeof(uint64_t) + Q_GROUP_BYTES - 1) / Q_GROUP_BYTES;
    if (G > p)
        G = p;
    if (G < 1)
        G = 1;
    L->n_qgroups = 0;
    L->qgroup[0] = 0;
    for (int32_t j = 0; j < p; j++)
        if (L->offset[j + 1] * G >= (int64_t)off * (L->n_qgroups + 1) || j == p - 1)
            L->qgroup[++L->n_qgroups] = j + 1;
    return PROP_OK;
}

void prop_hist_layout_free(prop_hist_layout *L)
{
    free(L->n_bins);
    free(L->offset);
    free(L->qgroup);
    L->n_bins = NULL;
    L->offset = NULL;
    L->qgroup = NULL;
}

prop_status prop_hist_remap(const prop_hist_layout *L, const uint8_t *codes, int64_t n,
                            uint8_t **out, prop_error *err)
{
    *out = NULL;
    int32_t p = L->n_features;
    int64_t total = n * (int64_t)p;
    int64_t first = -1;
    for (int64_t k = 0; k < total; k++)
        if (codes[k] == PROP_MISSING_BIN) {
            first = k;
            break;
        }
    if (first < 0)
        return PROP_OK; /* no missing code: the raw codes are the slot codes */
    uint8_t *sc = malloc(total > 0 ? (size_t)total : 1);
    if (sc == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory for the slot codes");
    memcpy(sc, codes, (size_t)total);
    for (int64_t k = first; k < total; k++)
        if (sc[k] == PROP_MISSING_BIN)
            sc[k] = (uint8_t)L->n_bins[k % p];
    *out = sc;
    return PROP_OK;
}

/* Forest histograms: (a, b, c) doubles per slot. Rows outer, features inner
 * (row-major friendly); a call covers the feature range [j0, j1). SI(i, r) picks the
 * statistics of the i-th row r: stats[r] (scattered) or stats[i] (ordered). */
#define BUILD_RANGE(NAME, SI)                                                                 \
    static void NAME(const prop_hist_layout *L, const uint8_t *codes, const prop_hstat *stats, \
                     const int32_t *rows, int64_t n, double *hist, int32_t j0, int32_t j1)     \
    {                                                                                         \
        int32_t p = L->n_features;                                                            \
        const int32_t *off = L->offset;                                                       \
        memset(hist + 3 * (int64_t)off[j0], 0, sizeof(double) * 3 * (size_t)(off[j1] - off[j0])); \
        int64_t i = 0;                                                                        \
        for (; i + 1 < n; i += 2) {                                                           \
            int32_t r0 = rows[i], r1 = rows[i + 1];                                           \
            const uint8_t *c0 = codes + (int64_t)r0 * p, *c1 = codes + (int64_t)r1 * p;       \
            prop_hstat s0 = stats[SI(i, r0)], s1 = stats[SI(i + 1, r1)];                      \
            for (int32_t j = j0; j < j1; j++) {                                               \
                double *h = hist + 3 * (int64_t)(off[j] + c0[j]);                             \
                h[0] += s0.a;                                                                 \
                h[1] += s0.b;                                                                 \
                h[2] += s0.c;                                                                 \
                h = hist + 3 * (int64_t)(off[j] + c1[j]);                                     \
                h[0] += s1.a;                                                                 \
                h[1] += s1.b;                                                                 \
                h[2] += s1.c;                                                                 \
            }                                                                                 \
        }                                                                                     \
        for (; i < n; i++) {                                                                  \
            int32_t r0 = rows[i];                                                             \
            const uint8_t *c0 = codes + (int64_t)r0 * p;                                      \
            prop_hstat s0 = stats[SI(i, r0)];                                                 \
            for (int32_t j = j0; j < j1; j++) {                                               \
                double *h = hist + 3 * (int64_t)(off[j] + c0[j]);                             \
                h[0] += s0.a;                                                                 \
                h[1] += s0.b;                                                                 \
                h[2] += s0.c;                                                                 \
            }                                                                                 \
        }                                                                                     \
    }

#define SI_SCATTER(i, r) (r)
#define SI_ORDERED(i, r) (i)
BUILD_RANGE(build_range_s, SI_SCATTER)
BUILD_RANGE(build_range_o, SI_ORDERED)

/* `ordered`: stats[i] belongs to rows[i] (and `stats`, `rows` are already offset to
 * the same start); otherwise stats[rows[i]]. */
static void build_range(const prop_hist_layout *L, const uint8_t *codes, const prop_hstat *stats,
                        int ordered, const int32_t *rows, int64_t n, double *hist, int32_t j0,
                        int32_t j1)
{
    (ordered ? build_range_o : build_range_s)(L, codes, stats, rows, n, hist, j0, j1);
}

/* Nodes with at least 2 * HIST_BLOCK rows are built in row blocks: each block
 * fills its own histogram (in parallel), then the blocks are added in block order.
 * Blocks depend on n only, so the sums do not depend on the thread count. */
#define HIST_BLOCK 32768
#define HIST_MAX_BLOCKS 16

static prop_status hist_build(const prop_hist_layout *L, const uint8_t *codes,
                              const prop_hstat *stats, int ordered, const int32_t *rows, int64_t n,
                              double *hist, int n_threads, prop_error *err)
{
    if (!PROP_THREADS_OK(n_threads))
        return prop_fail(err, PROP_INVALID_ARG, "histogram build: " PROP_THREADS_FMT,
                         PROP_MAX_THREADS, n_threads);
    int32_t p = L->n_features;
    const int nt = n_threads;
    double *scratch = NULL;
    int64_t hs = L->n_slots * 3;
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
                    if (i1 < i0)
                        i1 = i0;
                    double *h = b == 0 ? hist : scratch + (b - 1) * hs;
                    build_range(L, codes, ordered ? stats + i0 : stats, ordered, rows + i0,
                                i1 - i0, h, 0, p);
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
            return PROP_OK;
        }
        return prop_fail(err, PROP_NOMEM, "out of memory for the block histograms");
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
                build_range(L, codes, stats, ordered, rows, n, hist, j0, j1);
        }
        return PROP_OK;
    }
    build_range(L, codes, stats, ordered, rows, n, hist, 0, p);
    return PROP_OK;
}

prop_status prop_hist_build(const prop_hist_layout *L, const uint8_t *codes,
                            const prop_hstat *stats, const int32_t *rows, int64_t n, double *hist,
                            int n_threads, prop_error *err)
{
    return hist_build(L, codes, stats, 0, rows, n, hist, n_threads, err);
}

prop_status prop_hist_build_ordered(const prop_hist_layout *L, const uint8_t *codes,
                                    const prop_hstat *ostats, const int32_t *rows, int64_t n,
                                    double *hist, int n_threads, prop_error *err)
{
    return hist_build(L, codes, ostats, 1, rows, n, hist, n_threads, err);
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

void prop_hist_subtract(const double *parent, const double *child, double *out, int64_t n_slots)
{
    for (int64_t s = 0; s < n_slots; s++) {
        const double *P = parent + 3 * s, *C = child + 3 * s;
        double *O = out + 3 * s;
        double c = P[2] - C[2];
        /* the child holds all of the slot's rows: what is left is rounding residue */
        if (c <= 0.0) {
            O[0] = O[1] = O[2] = 0.0;
        } else {
            O[0] = P[0] - C[0];
            O[1] = P[1] - C[1];
            O[2] = c;
        }
    }
}

/* ---- packed integer (gradient, hessian) histograms ------------------- */

/* One integer add per row and feature; four rows at a time for more loads in
 * flight, and the code rows Q_PREFETCH rows ahead prefetched (a deep node's rows are
 * scattered over the matrix, beyond what the hardware prefetcher guesses). Integer
 * sums do not depend on the order, so nothing else matters. */
#define Q_PREFETCH 16
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(addr) __builtin_prefetch(addr)
#else
#define PREFETCH(addr) ((void)(addr))
#endif
static void build_q_range(const prop_hist_layout *L, const uint8_t *codes, const uint64_t *q,
                          const int32_t *rows, int64_t n, uint64_t *hist, int32_t j0, int32_t j1)
{
    const int32_t p = L->n_features;
    const int32_t *off = L->offset;
    int64_t i = 0;
    for (; i + 3 < n; i += 4) {
        if (i + Q_PREFETCH + 3 < n)
            for (int u = 0; u < 4; u++) {
                const int32_t r = rows[i + Q_PREFETCH + u];
                const uint8_t *a = codes + (int64_t)r * p;
                PREFETCH(a + j0);
                PREFETCH(a + j1 - 1);
                PREFETCH(q + r);
            }
        const uint8_t *c0 = codes + (int64_t)rows[i] * p, *c1 = codes + (int64_t)rows[i + 1] * p;
        const uint8_t *c2 = codes + (int64_t)rows[i + 2] * p, *c3 = codes + (int64_t)rows[i + 3] * p;
        const uint64_t v0 = q[rows[i]], v1 = q[rows[i + 1]], v2 = q[rows[i + 2]],
                       v3 = q[rows[i + 3]];
        for (int32_t j = j0; j < j1; j++) {
            uint64_t *hb = hist + off[j];
            hb[c0[j]] += v0;
            hb[c1[j]] += v1;
            hb[c2[j]] += v2;
            hb[c3[j]] += v3;
        }
    }
    for (; i < n; i++) {
        const uint8_t *c0 = codes + (int64_t)rows[i] * p;
        const uint64_t v0 = q[rows[i]];
        for (int32_t j = j0; j < j1; j++)
            hist[off[j] + c0[j]] += v0;
    }
}

/* build_q_range over all features for histograms of few slots: the four rows of a step
 * add into four copies (h, h + n_slots, ...; zeroed here), so rows that share a slot
 * (frequent with few slots) do not wait for each other's stores; the copies are then
 * added into hist (integer sums: the order does not matter). */
static void build_q_range_copies(const prop_hist_layout *L, const uint8_t *codes,
                                 const uint64_t *q, const int32_t *rows, int64_t n,
                                 uint64_t *hist, uint64_t *h)
{
    const int32_t p = L->n_features;
    const int32_t *off = L->offset;
    const int64_t S = L->n_slots;
    memset(h, 0, (size_t)(4 * S) * sizeof *h);
    uint64_t *h0 = h, *h1 = h + S, *h2 = h + 2 * S, *h3 = h + 3 * S;
    int64_t i = 0;
    for (; i + 3 < n; i += 4) {
        if (i + Q_PREFETCH + 3 < n)
            for (int u = 0; u < 4; u++) {
                const int32_t r = rows[i + Q_PREFETCH + u];
                const uint8_t *a = codes + (int64_t)r * p;
                PREFETCH(a);
                PREFETCH(a + p - 1);
                PREFETCH(q + r);
            }
        const uint8_t *c0 = codes + (int64_t)rows[i] * p, *c1 = codes + (int64_t)rows[i + 1] * p;
        const uint8_t *c2 = codes + (int64_t)rows[i + 2] * p, *c3 = codes + (int64_t)rows[i + 3] * p;
        const uint64_t v0 = q[rows[i]], v1 = q[rows[i + 1]], v2 = q[rows[i + 2]],
                       v3 = q[rows[i + 3]];
        for (int32_t j = 0; j < p; j++) {
            const int32_t o = off[j];
            h0[o + c0[j]] += v0;
            h1[o + c1[j]] += v1;
            h2[o + c2[j]] += v2;
            h3[o + c3[j]] += v3;
        }
    }
    for (; i < n; i++) {
        const uint8_t *c0 = codes + (int64_t)rows[i] * p;
        const uint64_t v0 = q[rows[i]];
        for (int32_t j = 0; j < p; j++)
            h0[off[j] + c0[j]] += v0;
    }
    for (int64_t k = 0; k < S; k++)
        hist[k] = (h0[k] + h1[k]) + (h2[k] + h3[k]);
}

/* histograms of at most this many slots are built with copies (on the stack) when the
 * node has at least as many rows as slots */
#define Q_COPIES_SLOTS 1024

/* All features into hist (overwritten): dense rows are read once per feature group,
 * so the group's histogram stays in the L1 cache; sparse rows (fewer than a tenth of
 * the data's, counted per thread's share of a node: measured best on 2 threads) are
 * read once, as re-reading their scattered lines costs more. */
static void build_q_all(const prop_hist_layout *L, const uint8_t *codes, const uint64_t *q,
                        const int32_t *rows, int64_t n, uint64_t *hist)
{
    if (L->n_slots <= Q_COPIES_SLOTS && n >= L->n_slots) {
        uint64_t h[4 * Q_COPIES_SLOTS];
        build_q_range_copies(L, codes, q, rows, n, hist, h);
        return;
    }
    memset(hist, 0, (size_t)L->n_slots * sizeof *hist);
    if (n * 10 >= L->n_rows && L->n_qgroups > 1) {
        for (int32_t g = 0; g < L->n_qgroups; g++)
            build_q_range(L, codes, q, rows, n, hist, L->qgroup[g], L->qgroup[g + 1]);
    } else {
        build_q_range(L, codes, q, rows, n, hist, 0, L->n_features);
    }
}

/* below this many row x feature updates a build stays on one thread */
#define Q_PARALLEL_MIN (1 << 17)

prop_status prop_hist_build_q(const prop_hist_layout *L, const uint8_t *codes,
                              const uint64_t *q, const int32_t *rows, int64_t n, uint64_t *hist,
                              int n_threads, prop_error *err)
{
    if (!PROP_THREADS_OK(n_threads))
        return prop_fail(err, PROP_INVALID_ARG, "histogram build: " PROP_THREADS_FMT,
                         PROP_MAX_THREADS, n_threads);
    const int nt = n_threads;
    if (nt > 1 && n * (int64_t)L->n_features >= Q_PARALLEL_MIN && n >= 4 * nt) {
        /* row chunks into private histograms, then a slot-parallel sum */
        const int64_t hs = L->n_slots;
        uint64_t *scratch = malloc((size_t)((nt - 1) * hs) * sizeof *scratch);
        if (scratch == NULL)
            return prop_fail(err, PROP_NOMEM, "out of memory for the per-thread histograms");
#pragma omp parallel num_threads(nt)
        {
#pragma omp for schedule(static)
            for (int t = 0; t < nt; t++) {
                int64_t i0 = n * t / nt, i1 = n * (t + 1) / nt;
                build_q_all(L, codes, q, rows + i0, i1 - i0,
                            t == 0 ? hist : scratch + (int64_t)(t - 1) * hs);
            }
#pragma omp for schedule(static)
            for (int64_t s = 0; s < hs; s++) {
                uint64_t acc = hist[s];
                for (int t = 1; t < nt; t++)
                    acc += scratch[(int64_t)(t - 1) * hs + s];
                hist[s] = acc;
            }
        }
        free(scratch);
        return PROP_OK;
    }
    build_q_all(L, codes, q, rows, n, hist);
    return PROP_OK;
}

void prop_hist_build_q_ref(const prop_hist_layout *L, const uint8_t *codes, const uint64_t *q,
                           const int32_t *rows, int64_t n, uint64_t *hist)
{
    const int32_t p = L->n_features;
    for (int64_t s = 0; s < L->n_slots; s++)
        hist[s] = 0;
    for (int32_t j = 0; j < p; j++)
        for (int64_t i = 0; i < n; i++) {
            int64_t g, h, g0, h0;
            int32_t r = rows[i];
            int64_t s = L->offset[j] + codes[(int64_t)r * p + j];
            prop_hist_unpack_q(q[r], &g, &h);
            prop_hist_unpack_q(hist[s], &g0, &h0);
            hist[s] = prop_hist_pack_q(g0 + g, h0 + h);
        }
}

void prop_hist_subtract_q(const uint64_t *parent, const uint64_t *child, uint64_t *out,
                          int64_t n_slots)
{
    for (int64_t s = 0; s < n_slots; s++)
        out[s] = parent[s] - child[s];
}

void prop_hist_decode_q(const uint64_t *hist, int64_t n_slots, double g_unit, double h_unit,
                        double *out)
{
    for (int64_t s = 0; s < n_slots; s++) {
        int64_t g, h;
        prop_hist_unpack_q(hist[s], &g, &h);
        out[2 * s] = (double)g * g_unit;
        out[2 * s + 1] = (double)h * h_unit;
    }
}

/* ---- feature bundles (boosting) -------------------------------------- */

#define BUNDLE_MAX_FEATURES 3
#define BUNDLE_MAX_SLOTS 64

prop_status prop_hist_bundles_init(const prop_hist_layout *L, const uint8_t *slot_codes, int64_t n,
                                  prop_hist_bundles *G, int *made, prop_error *err)
{
    memset(G, 0, sizeof *G);
    *made = 0;
    const int32_t p = L->n_features;
    int32_t *first = malloc(((size_t)p + 1) * sizeof *first); /* bundle g: [first[g], first[g+1]) */
    if (first == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory for feature bundles");
    int32_t ng = 0;
    int64_t prod = 0;
    for (int32_t j = 0; j < p; j++) {
        int64_t ns = L->offset[j + 1] - L->offset[j];
        if (ng > 0 && j - first[ng - 1] < BUNDLE_MAX_FEATURES && prod * ns <= BUNDLE_MAX_SLOTS) {
            prod *= ns;
            continue;
        }
        first[ng++] = j;
        prod = ns;
    }
    first[ng] = p;
    if (3 * (int64_t)ng > 2 * (int64_t)p) { /* saves less than a third */
        free(first);
        return PROP_OK;
    }
    prop_hist_layout *GL = &G->layout;
    GL->n_features = ng;
    GL->n_rows = n;
    GL->n_bins = calloc((size_t)ng, sizeof *GL->n_bins);
    GL->offset = calloc((size_t)ng + 1, sizeof *GL->offset);
    GL->qgroup = calloc((size_t)ng + 1, sizeof *GL->qgroup);
    G->codes = malloc((size_t)(n * ng > 0 ? n * ng : 1));
    if (GL->n_bins == NULL || GL->offset == NULL || GL->qgroup == NULL || G->codes == NULL)
        goto nomem;
    int32_t off = 0, width = 0;
    for (int32_t g = 0; g < ng; g++) {
        int32_t k = 1;
        for (int32_t j = first[g]; j < first[g + 1]; j++)
            k *= L->offset[j + 1] - L->offset[j];
        GL->offset[g] = off;
        GL->n_bins[g] = k - 1; /* k slots, as a feature of k - 1 bins and its missing slot */
        off += k;
        if (first[g + 1] - first[g] > width)
            width = first[g + 1] - first[g];
    }
    GL->offset[ng] = off;
    GL->n_slots = off;
    GL->n_qgroups = 1; /* a bundle histogram is small: one pass over all bundles */
    GL->qgroup[0] = 0;
    GL->qgroup[1] = ng;
    G->width = width;
    G->map = malloc((size_t)off * (size_t)width * sizeof *G->map);
    if (G->map == NULL)
        goto nomem;
    for (int32_t g = 0; g < ng; g++)
        for (int32_t x = 0; x < GL->offset[g + 1] - GL->offset[g]; x++) {
            int32_t *m = G->map + (int64_t)(GL->offset[g] + x) * width, rest = x, u = 0;
            for (int32_t j = first[g]; j < first[g + 1]; j++, u++) {
                int32_t ns = L->offset[j + 1] - L->offset[j];
                m[u] = L->offset[j] + rest % ns;
                rest /= ns;
            }
            for (; u < width; u++)
                m[u] = -1;
        }
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *row = slot_codes + i * (int64_t)p;
        for (int32_t g = 0; g < ng; g++) {
            int32_t x = 0, mult = 1;
            for (int32_t j = first[g]; j < first[g + 1]; j++) {
                x += row[j] * mult;
                mult *= L->offset[j + 1] - L->offset[j];
            }
            G->codes[i * ng + g] = (uint8_t)x;
        }
    }
    free(first);
    *made = 1;
    return PROP_OK;
nomem:
    free(first);
    prop_hist_bundles_free(G);
    return prop_fail(err, PROP_NOMEM, "out of memory for feature bundles");
}

void prop_hist_bundles_free(prop_hist_bundles *G)
{
    prop_hist_layout_free(&G->layout);
    free(G->codes);
    free(G->map);
    memset(G, 0, sizeof *G);
}

void prop_hist_marginal_q(const prop_hist_bundles *G, const uint64_t *gh, uint64_t *hist,
                          int64_t n_slots)
{
    memset(hist, 0, (size_t)n_slots * sizeof *hist);
    const int32_t w = G->width;
    const int64_t gs = G->layout.n_slots;
    for (int64_t s = 0; s < gs; s++) {
        const uint64_t v = gh[s];
        if (v == 0) /* adds nothing (most combinations hold no row) */
            continue;
        const int32_t *m = G->map + s * w;
        for (int32_t u = 0; u < w; u++)
            if (m[u] >= 0)
                hist[m[u]] += v;
    }
}
