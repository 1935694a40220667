/* bins.c - per-column bin edges and the value -> code transform (see bins.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/bins.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define ROW_BLOCK 512 /* rows per block in the column scans and the transform */
/* OpenMP gets n_threads as is, and libgomp exits the process when it cannot create
 * that many threads: cap it (as logreg.c does). */
#define BINS_MAX_THREADS PROP_MAX_THREADS

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

prop_status prop_bins_check_params(const prop_bins_params *params, prop_error *err)
{
    if (params == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "bins: params is NULL");
    if (params->max_bins < 2 || params->max_bins > PROP_MAX_VALUE_BINS)
        return prop_fail(err, PROP_INVALID_ARG, "max_bins must be in [2, %d], got %d",
                         PROP_MAX_VALUE_BINS, params->max_bins);
    if (params->subsample < 1)
        return prop_fail(err, PROP_INVALID_ARG, "subsample must be >= 1, got %lld",
                         (long long)params->subsample);
    if (params->n_threads < 1 || params->n_threads > BINS_MAX_THREADS)
        return prop_fail(err, PROP_INVALID_ARG, "n_threads must be in [1, %d], got %d",
                         BINS_MAX_THREADS, params->n_threads);
    return PROP_OK;
}

static prop_status check_data(const prop_bins_data *X, prop_error *err)
{
    if (X == NULL || X->data == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "bins: X is NULL");
    if (X->n_rows < 1 || X->n_cols < 1)
        return prop_fail(err, PROP_INVALID_ARG, "X must have at least one row and one column, "
                         "got %lld x %lld", (long long)X->n_rows, (long long)X->n_cols);
    if (X->dtype != PROP_BINS_F64 && X->dtype != PROP_BINS_F32 && X->dtype != PROP_BINS_U8)
        return prop_fail(err, PROP_INVALID_ARG, "X has an unknown dtype code %d", (int)X->dtype);
    return PROP_OK;
}

prop_status prop_bins_check_edges(const prop_bins_edges *model, prop_error *err)
{
    if (model == NULL || model->edges == NULL || model->n_edges == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "bins: edges or n_edges is NULL");
    if (model->n_cols < 1)
        return prop_fail(err, PROP_INVALID_ARG, "bins: n_cols must be >= 1, got %lld",
                         (long long)model->n_cols);
    for (int64_t j = 0; j < model->n_cols; j++) {
        int32_t k = model->n_edges[j];
        if (k < 0 || k > PROP_MAX_VALUE_BINS - 1)
            return prop_fail(err, PROP_INVALID_ARG, "n_edges[%lld] = %d is outside [0, %d]",
                             (long long)j, (int)k, PROP_MAX_VALUE_BINS - 1);
        const double *e = model->edges + j * PROP_BINS_EDGE_STRIDE;
        for (int32_t t = 0; t < k; t++) {
            if (!isfinite(e[t]))
                return prop_fail(err, PROP_INVALID_ARG, "edge %d of column %lld is not finite",
                                 (int)t, (long long)j);
            if (t > 0 && !(e[t] > e[t - 1]))
                return prop_fail(err, PROP_INVALID_ARG,
                                 "edges of column %lld are not strictly increasing at %d",
                                 (long long)j, (int)t);
        }
    }
    return PROP_OK;
}

/* ------------------------------------------------------------------ */
/* Fit                                                                 */
/* ------------------------------------------------------------------ */

static inline double get_value(const prop_bins_data *X, int64_t i, int64_t j)
{
    int64_t at = i * X->n_cols + j;
    switch (X->dtype) {
    case PROP_BINS_F64: return ((const double *)X->data)[at];
    case PROP_BINS_F32: return (double)((const float *)X->data)[at];
    default: return (double)((const uint8_t *)X->data)[at];
    }
}

/* Distinct non-NaN values of one column, kept while they number <= cap. */
typedef struct {
    double *vals;  /* sorted, cap slots */
    int count;
    int overflow;  /* more than cap distinct values */
    double last;   /* the last value inserted or found (a fast path for repeats) */
    int has_last;
    int64_t inf_row; /* first row with +-inf, or -1 */
} distinct_set;

static void distinct_add(distinct_set *s, int cap, double v)
{
    if (s->has_last && v == s->last)
        return;
    int lo = 0, hi = s->count;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (s->vals[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->count && s->vals[lo] == v) {
        s->last = v;
        s->has_last = 1;
        return;
    }
    if (s->count == cap) {
        s->overflow = 1;
        return;
    }
    memmove(s->vals + lo + 1, s->vals + lo, (size_t)(s->count - lo) * sizeof(double));
    s->vals[lo] = v;
    s->count++;
    s->last = v;
    s->has_last = 1;
}

/* Scan rows [i0, i1) of column j into its distinct set. */
static void scan_block(const prop_bins_data *X, int64_t j, int64_t i0, int64_t i1, int cap,
                       distinct_set *s, unsigned char *seen)
{
    const int64_t p = X->n_cols;
    if (X->dtype == PROP_BINS_U8) {
        const uint8_t *x = (const uint8_t *)X->data;
        for (int64_t i = i0; i < i1; i++)
            seen[x[i * p + j]] = 1;
        return;
    }
    if (s->inf_row >= 0)
        return;
    for (int64_t i = i0; i < i1; i++) {
        double v = get_value(X, i, j);
        if (isnan(v))
            continue;
        if (isinf(v)) {
            s->inf_row = i;
            return;
        }
        if (!s->overflow)
            distinct_add(s, cap, v);
    }
}

/* Bytes of matrix rows a column scan block holds at most (it is read once per column
 * of the block, so it must stay in the cache: a wide matrix gets blocks of fewer rows). */
#define SCAN_BLOCK_BYTES (256 * 1024)

/* Distinct sets of all columns: each thread owns a fixed range of columns and walks
 * the rows in blocks, so the matrix streams through the cache about once per thread.
 * Each column still sees its values in row order (the same sets for any block size). */
static void scan_columns(const prop_bins_data *X, int cap, distinct_set *sets,
                         unsigned char *seen, int nt)
{
    const int64_t n = X->n_rows, p = X->n_cols;
    const int64_t elem = X->dtype == PROP_BINS_F64 ? 8 : X->dtype == PROP_BINS_F32 ? 4 : 1;
    int64_t rb = SCAN_BLOCK_BYTES / (p * elem);
    rb = rb < 16 ? 16 : rb > ROW_BLOCK ? ROW_BLOCK : rb;
    if (nt > p)
        nt = (int)p;
#pragma omp parallel num_threads(nt)
    {
        int tid = 0, nth = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num();
        nth = omp_get_num_threads();
#endif
        int64_t j0 = p * tid / nth, j1 = p * (tid + 1) / nth;
        for (int64_t i0 = 0; i0 < n; i0 += rb) {
            int64_t i1 = i0 + rb < n ? i0 + rb : n;
            for (int64_t j = j0; j < j1; j++)
                scan_block(X, j, i0, i1, cap, &sets[j], seen ? seen + j * 256 : NULL);
        }
    }
    if (seen != NULL) {
        for (int64_t j = 0; j < p; j++) {
            for (int v = 0; v < 256; v++) {
                if (!seen[j * 256 + v])
                    continue;
                if (sets[j].count == cap) {
                    sets[j].overflow = 1;
                    break;
                }
                sets[j].vals[sets[j].count++] = (double)v;
            }
        }
    }
}

/* A midpoint strictly inside [a, b): values a and b land on its two sides. */
static double midpoint(double a, double b)
{
    double m = a * 0.5 + b * 0.5;
    if (!(m >= a && m < b))
        m = a;
    return m;
}

/* splitmix64: the subsample generator (state in the caller, no global state). */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, bound), bound >= 1, without modulo bias. */
static uint64_t rand_below(uint64_t *state, uint64_t bound)
{
    uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
    uint64_t r;
    do {
        r = splitmix64(state);
    } while (r >= limit);
    return r % bound;
}

/* The sorted row indices of the subsample (k of n, partial Fisher-Yates). */
static int64_t *make_subsample(int64_t n, int64_t k, uint64_t seed)
{
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    if (idx == NULL)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    if (k < n) {
        uint64_t state = seed;
        for (int64_t i = 0; i < k; i++) {
            int64_t r = i + (int64_t)rand_below(&state, (uint64_t)(n - i));
            int64_t t = idx[i];
            idx[i] = idx[r];
            idx[r] = t;
        }
        /* the chosen rows in increasing order, for locality: mark, then collect */
        unsigned char *mark = calloc((size_t)n, 1);
        if (mark == NULL) {
            free(idx);
            return NULL;
        }
        for (int64_t i = 0; i < k; i++)
            mark[idx[i]] = 1;
        int64_t t = 0;
        for (int64_t i = 0; i < n; i++)
            if (mark[i])
                idx[t++] = i;
        free(mark);
    }
    return idx;
}

/* Order-preserving map of a (non-NaN) double to an unsigned key, and back. */
static inline uint64_t key_of(double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return (u & 0x8000000000000000ULL) ? ~u : (u | 0x8000000000000000ULL);
}

static inline double value_of(uint64_t k)
{
    uint64_t u = (k & 0x8000000000000000ULL) ? (k & ~0x8000000000000000ULL) : ~k;
    double v;
    memcpy(&v, &u, 8);
    return v;
}

/* LSD radix sort of m keys: RADIX_DIGITS digits of RADIX_BITS bits, all counted in one
 * read pass, then one scatter pass per digit (digits that every key shares skipped).
 * count: RADIX_COUNTS scratch entries. */
#define RADIX_BITS 11
#define RADIX_DIGITS 6 /* ceil(64 / RADIX_BITS) */
#define RADIX_BUCKETS ((1 << RADIX_BITS) + 1)
#define RADIX_COUNTS (RADIX_DIGITS * RADIX_BUCKETS)
static void radix_sort_keys(uint64_t *a, uint64_t *tmp, int64_t m, int64_t *count)
{
    if (m < 2)
        return;
    const uint64_t mask = ((uint64_t)1 << RADIX_BITS) - 1;
    memset(count, 0, RADIX_COUNTS * sizeof *count);
    for (int64_t t = 0; t < m; t++)
        for (int d = 0; d < RADIX_DIGITS; d++)
            count[d * RADIX_BUCKETS + (int64_t)((a[t] >> (d * RADIX_BITS)) & mask) + 1]++;
    uint64_t *src = a, *dst = tmp;
    for (int d = 0; d < RADIX_DIGITS; d++) {
        const int shift = d * RADIX_BITS;
        int64_t *c = count + d * RADIX_BUCKETS;
        if (c[((src[0] >> shift) & mask) + 1] == m)
            continue;
        for (int b = 0; b < (1 << RADIX_BITS); b++)
            c[b + 1] += c[b];
        for (int64_t t = 0; t < m; t++)
            dst[c[(src[t] >> shift) & mask]++] = src[t];
        uint64_t *sw = src;
        src = dst;
        dst = sw;
    }
    if (src != a)
        memcpy(a, src, (size_t)m * sizeof *a);
}

/* Quantile edges from the m keys of a column's non-NaN subsample values in buf (sorted
 * here, tmp: m more keys; count: RADIX_COUNTS). */
static int32_t quantile_edges(uint64_t *buf, int64_t m, uint64_t *tmp, int64_t *count,
                              int max_bins, double *edges)
{
    if (m == 0)
        return 0;
    radix_sort_keys(buf, tmp, m, count);
    double top = value_of(buf[m - 1]);
    int32_t n_edges = 0;
    for (int q = 1; q < max_bins; q++) {
        /* "midpoint" percentile: the mean of the two order statistics around h. */
        double h = (double)(m - 1) * (double)q / (double)max_bins;
        int64_t lo = (int64_t)floor(h), hi = (int64_t)ceil(h);
        if (hi > m - 1)
            hi = m - 1;
        double a = value_of(buf[lo]);
        double e = (lo == hi) ? a : midpoint(a, value_of(buf[hi]));
        if (!(e < top))
            break; /* nothing would fall above it */
        if (n_edges > 0 && !(e > edges[n_edges - 1]))
            continue;
        edges[n_edges++] = e;
    }
    return n_edges;
}

prop_status prop_bins_fit(const prop_bins_params *params, const prop_bins_data *X,
                          double *edges, int32_t *n_edges, prop_error *err)
{
    prop_status st = prop_bins_check_params(params, err);
    if (st != PROP_OK)
        return st;
    if ((st = check_data(X, err)) != PROP_OK)
        return st;
    if (edges == NULL || n_edges == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "bins: edges or n_edges is NULL");

    const int64_t n = X->n_rows, p = X->n_cols;
    const int cap = params->max_bins;
    distinct_set *sets = calloc((size_t)p, sizeof *sets);
    double *vals = malloc((size_t)p * (size_t)cap * sizeof *vals);
    int64_t *rows = NULL;
    uint64_t *bufs = NULL;
    int64_t *counts = NULL, *over = NULL, *m_of = NULL;
    unsigned char *seen = NULL;
    if (sets == NULL || vals == NULL) {
        st = prop_fail(err, PROP_NOMEM, "bins: out of memory for %lld columns", (long long)p);
        goto done;
    }
    for (int64_t j = 0; j < p; j++) {
        sets[j].vals = vals + j * cap;
        sets[j].inf_row = -1;
    }

    /* Pass 1: exact distinct values of each column, in parallel over columns. */
    int nt = params->n_threads;
    if (X->dtype == PROP_BINS_U8) {
        seen = calloc((size_t)p, 256);
        if (seen == NULL) {
            st = prop_fail(err, PROP_NOMEM, "bins: out of memory for %lld columns", (long long)p);
            goto done;
        }
    }
    scan_columns(X, cap, sets, seen, nt);

    int64_t any_overflow = 0;
    for (int64_t j = 0; j < p; j++) {
        if (sets[j].inf_row >= 0) {
            st = prop_fail(err, PROP_INVALID_ARG, "X column %lld has an infinite value at row "
                           "%lld; only finite values and NaN are allowed",
                           (long long)j, (long long)sets[j].inf_row);
            goto done;
        }
        any_overflow += sets[j].overflow;
    }

    for (int64_t j = 0; j < p; j++) {
        double *e = edges + j * PROP_BINS_EDGE_STRIDE;
        for (int t = 0; t < PROP_BINS_EDGE_STRIDE; t++)
            e[t] = NAN;
        n_edges[j] = 0;
        if (!sets[j].overflow) {
            for (int t = 0; t + 1 < sets[j].count; t++)
                e[t] = midpoint(sets[j].vals[t], sets[j].vals[t + 1]);
            n_edges[j] = sets[j].count > 0 ? sets[j].count - 1 : 0;
        }
    }

    /* Pass 2: quantiles of a subsample for the columns with too many values. Their
     * subsample values are gathered a block of columns at a time in one sweep over the
     * subsample's rows (a row's columns share its cache lines), then each column's
     * keys are sorted (in parallel over the block's columns). */
    if (any_overflow) {
        int64_t k = params->subsample < n ? params->subsample : n;
        rows = make_subsample(n, k, params->seed);
        int64_t blk = ((int64_t)1 << 22) / k; /* about 32 MB of keys per block */
        blk = blk < 1 ? 1 : blk > any_overflow ? any_overflow : blk;
        int nbuf = nt < blk ? nt : (int)blk;
        over = malloc((size_t)any_overflow * sizeof *over);
        m_of = malloc((size_t)blk * sizeof *m_of);
        bufs = malloc((size_t)(blk + nbuf) * (size_t)k * sizeof *bufs);
        counts = malloc((size_t)nbuf * RADIX_COUNTS * sizeof *counts);
        if (rows == NULL || over == NULL || m_of == NULL || bufs == NULL || counts == NULL) {
            st = prop_fail(err, PROP_NOMEM, "bins: out of memory for a subsample of %lld rows",
                           (long long)k);
            goto done;
        }
        int64_t n_over = 0;
        for (int64_t j = 0; j < p; j++)
            if (sets[j].overflow)
                over[n_over++] = j;
        for (int64_t b0 = 0; b0 < n_over; b0 += blk) {
            const int64_t nb = n_over - b0 < blk ? n_over - b0 : blk;
            for (int64_t b = 0; b < nb; b++)
                m_of[b] = 0;
            for (int64_t t = 0; t < k; t++)
                for (int64_t b = 0; b < nb; b++) {
                    double v = get_value(X, rows[t], over[b0 + b]);
                    if (!isnan(v))
                        bufs[b * k + m_of[b]++] = key_of(v);
                }
#pragma omp parallel num_threads(nbuf)
            {
                int tid = 0;
#ifdef _OPENMP
                tid = omp_get_thread_num();
#endif
                uint64_t *tmp = bufs + (blk + tid) * k;
                int64_t *count = counts + (int64_t)tid * RADIX_COUNTS;
#pragma omp for schedule(dynamic, 1)
                for (int64_t b = 0; b < nb; b++) {
                    int64_t j = over[b0 + b];
                    n_edges[j] = quantile_edges(bufs + b * k, m_of[b], tmp, count, cap,
                                                edges + j * PROP_BINS_EDGE_STRIDE);
                }
            }
        }
    }
    st = PROP_OK;

done:
    free(seen);
    free(bufs);
    free(counts);
    free(over);
    free(m_of);
    free(rows);
    free(vals);
    free(sets);
    return st;
}

/* ------------------------------------------------------------------ */
/* Transform                                                           */
/* ------------------------------------------------------------------ */

static prop_status check_transform(const prop_bins_edges *model, const prop_bins_data *X,
                                   const uint8_t *out, prop_error *err)
{
    prop_status st = check_data(X, err);
    if (st != PROP_OK)
        return st;
    if ((st = prop_bins_check_edges(model, err)) != PROP_OK)
        return st;
    if (X->n_cols != model->n_cols)
        return prop_fail(err, PROP_INVALID_ARG, "X has %lld columns but the edges were fitted "
                         "on %lld", (long long)X->n_cols, (long long)model->n_cols);
    if (out == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "bins: out is NULL");
    return PROP_OK;
}

void prop_bins_codes(const double *e, int32_t k, const double *v, int64_t n, uint8_t *o,
                     int64_t stride)
{
    if (k <= 1) {
        const double e0 = k == 1 ? e[0] : INFINITY; /* no edge: every value has code 0 */
        if (stride == 1) { /* contiguous codes: a loop the compiler vectorises */
            for (int64_t i = 0; i < n; i++)
                o[i] = (uint8_t)((uint8_t)(e0 < v[i]) | (uint8_t)(-(int)isnan(v[i])));
            return;
        }
        for (int64_t i = 0; i < n; i++)
            o[i * stride] = (uint8_t)((uint8_t)(e0 < v[i]) | (uint8_t)(-(int)isnan(v[i])));
        return;
    }
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const double *b[8];
        for (int j = 0; j < 8; j++)
            b[j] = e;
        for (int32_t len = k; len > 1;) {
            int32_t half = len >> 1;
            for (int j = 0; j < 8; j++)
                b[j] = (b[j][half] < v[i + j]) ? b[j] + half : b[j];
            len -= half;
        }
        for (int j = 0; j < 8; j++)
            o[(i + j) * stride] = isnan(v[i + j]) ? PROP_MISSING_BIN
                                                  : (uint8_t)((b[j] - e) + (b[j][0] < v[i + j]));
    }
    for (; i < n; i++)
        o[i * stride] = prop_bins_value_code(e, k, v[i]);
}

#define DEFINE_FLOAT_KERNEL(NAME, T)                                                        \
    static void NAME(const prop_bins_edges *model, const T *x, int64_t i0, int64_t i1,      \
                     int64_t p, uint8_t *out)                                               \
    {                                                                                       \
        for (int64_t i = i0; i < i1; i++) {                                                 \
            const T *row = x + i * p;                                                       \
            uint8_t *o = out + i * p;                                                       \
            for (int64_t j = 0; j < p; j++) {                                               \
                o[j] = prop_bins_value_code(model->edges + j * PROP_BINS_EDGE_STRIDE,     \
                                            model->n_edges[j], (double)row[j]);             \
            }                                                                               \
        }                                                                                   \
    }

DEFINE_FLOAT_KERNEL(transform_f64, double)
DEFINE_FLOAT_KERNEL(transform_f32, float)

prop_status prop_bins_transform(const prop_bins_edges *model, const prop_bins_data *X,
                                int n_threads, uint8_t *out, prop_error *err)
{
    prop_status st = check_transform(model, X, out, err);
    if (st != PROP_OK)
        return st;
    if (n_threads < 1 || n_threads > BINS_MAX_THREADS)
        return prop_fail(err, PROP_INVALID_ARG, "n_threads must be in [1, %d], got %d",
                         BINS_MAX_THREADS, n_threads);
    const int64_t n = X->n_rows, p = X->n_cols;
    const int64_t n_blocks = (n + ROW_BLOCK - 1) / ROW_BLOCK;

    if (X->dtype == PROP_BINS_U8) {
        /* One 256-entry lookup table per column. */
        uint8_t *lut = malloc((size_t)p * 256);
        if (lut == NULL)
            return prop_fail(err, PROP_NOMEM, "bins: out of memory for lookup tables");
        for (int64_t j = 0; j < p; j++)
            for (int v = 0; v < 256; v++)
                lut[j * 256 + v] = prop_bins_code(model->edges + j * PROP_BINS_EDGE_STRIDE,
                                                  model->n_edges[j], (double)v);
        const uint8_t *x = (const uint8_t *)X->data;
#pragma omp parallel for schedule(static) num_threads(n_threads)
        for (int64_t b = 0; b < n_blocks; b++) {
            int64_t i1 = (b + 1) * ROW_BLOCK < n ? (b + 1) * ROW_BLOCK : n;
            for (int64_t i = b * ROW_BLOCK; i < i1; i++)
                for (int64_t j = 0; j < p; j++)
                    out[i * p + j] = lut[j * 256 + x[i * p + j]];
        }
        free(lut);
        return PROP_OK;
    }

#pragma omp parallel for schedule(static) num_threads(n_threads)
    for (int64_t b = 0; b < n_blocks; b++) {
        int64_t i0 = b * ROW_BLOCK, i1 = (b + 1) * ROW_BLOCK < n ? (b + 1) * ROW_BLOCK : n;
        if (X->dtype == PROP_BINS_F64)
            transform_f64(model, (const double *)X->data, i0, i1, p, out);
        else
            transform_f32(model, (const float *)X->data, i0, i1, p, out);
    }
    return PROP_OK;
}

prop_status prop_bins_transform_ref(const prop_bins_edges *model, const prop_bins_data *X,
                                    uint8_t *out, prop_error *err)
{
    prop_status st = check_transform(model, X, out, err);
    if (st != PROP_OK)
        return st;
    for (int64_t i = 0; i < X->n_rows; i++) {
        for (int64_t j = 0; j < X->n_cols; j++) {
            double v = get_value(X, i, j);
            if (isnan(v)) {
                out[i * X->n_cols + j] = PROP_MISSING_BIN;
                continue;
            }
            int code = 0;
            for (int32_t t = 0; t < model->n_edges[j]; t++)
                code += model->edges[j * PROP_BINS_EDGE_STRIDE + t] < v;
            out[i * X->n_cols + j] = (uint8_t)code;
        }
    }
    return PROP_OK;
}
