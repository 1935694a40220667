/* bins.h - fit per-column bin edges on raw features and map values to uint8 codes.
 *
 * Raw features: a C-contiguous row-major n x p matrix of float64, float32 or
 * uint8 (prop_bins_data). Fitting writes, per column j, n_edges[j] strictly
 * increasing finite edges into edges[j * PROP_BINS_EDGE_STRIDE + 0 .. n_edges[j]-1]
 * (the caller allocates p x PROP_BINS_EDGE_STRIDE doubles and p int32; unused
 * slots are set to NaN). The code of a value v is the number of edges strictly
 * less than v (0 .. n_edges[j]); NaN maps to PROP_MISSING_BIN.
 *
 * Fit, per column:
 * - if the column holds at most max_bins distinct non-NaN values (counted over
 *   ALL rows), the edges are the midpoints between consecutive distinct values:
 *   each distinct value gets its own code (a 0/1 column: one edge 0.5);
 * - otherwise the edges are the quantiles i / max_bins (i = 1 .. max_bins-1,
 *   "midpoint" interpolation) of the non-NaN values of a deterministic, seeded
 *   subsample of at most `subsample` rows (the same rows for every column),
 *   deduplicated, and edges not below the sample maximum dropped.
 * +-inf is rejected by fit (PROP_INVALID_ARG naming column and row); transform
 * maps -inf to code 0 and +inf to the top code.
 *
 * Results are identical for any thread count. Every entry point returns a
 * prop_status and fills `err` on failure.
 */
#ifndef PROPENSITY_BINS_H
#define PROPENSITY_BINS_H

#include <math.h>
#include <stdint.h>

#include "propensity/status.h"
#include "propensity/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Edge slots per column in the caller's edges array (at most max_bins-1 <= 254 used). */
#define PROP_BINS_EDGE_STRIDE 255

typedef enum { PROP_BINS_F64 = 0, PROP_BINS_F32 = 1, PROP_BINS_U8 = 2 } prop_bins_dtype;

/* Data view: a row-major n_rows x n_cols matrix (not owned). */
typedef struct {
    const void *data;
    int64_t n_rows;
    int64_t n_cols;
    prop_bins_dtype dtype;
} prop_bins_data;

/* Fit parameters. */
typedef struct {
    int max_bins;      /* value bins per column, 2 .. 255 */
    int64_t subsample; /* >= 1: rows used for quantiles when a column has > max_bins values */
    uint64_t seed;     /* seed of the subsample */
    int n_threads;     /* 1 .. 1024 */
} prop_bins_params;

/* Fitted edges (a view of caller memory). */
typedef struct {
    int64_t n_cols;
    const double *edges;    /* n_cols x PROP_BINS_EDGE_STRIDE */
    const int32_t *n_edges; /* n_cols, each 0 .. PROP_MAX_VALUE_BINS-1 */
} prop_bins_edges;

/* The code of a value that is not NaN among the k sorted edges e: the number of edges
 * strictly less than v, by a branch-free binary search (the compiler turns the step
 * into a conditional move). The transform and the feature plan (plan.h) use it. */
static inline uint8_t prop_bins_code(const double *e, int32_t k, double v)
{
    if (k == 0)
        return 0;
    const double *b = e;
    int32_t len = k;
    while (len > 1) {
        int32_t half = len >> 1;
        b = (b[half] < v) ? b + half : b;
        len -= half;
    }
    return (uint8_t)((b - e) + (b[0] < v));
}

/* The code of any value v in the column with edges e (k of them): NaN is the missing
 * bin PROP_MISSING_BIN, else prop_bins_code. */
static inline uint8_t prop_bins_value_code(const double *e, int32_t k, double v)
{
    if (isnan(v))
        return PROP_MISSING_BIN;
    return k == 1 ? (uint8_t)(e[0] < v) : prop_bins_code(e, k, v);
}

/* out[i * stride] = prop_bins_value_code(edges, n_edges, v[i]) for i < n, a kernel for
 * others (no checks): one compare per value for 0 or 1 edge, else 8 values searched
 * at once so that their steps overlap. */
void prop_bins_codes(const double *edges, int32_t n_edges, const double *v, int64_t n,
                     uint8_t *out, int64_t stride);

prop_status prop_bins_check_params(const prop_bins_params *params, prop_error *err);

/* Fit edges. OUT: edges (n_cols x PROP_BINS_EDGE_STRIDE), n_edges (n_cols). */
prop_status prop_bins_fit(const prop_bins_params *params, const prop_bins_data *X,
                          double *edges, int32_t *n_edges, prop_error *err);

/* Check that `model` is valid: n_edges in range, edges finite and strictly increasing. */
prop_status prop_bins_check_edges(const prop_bins_edges *model, prop_error *err);

/* Map X to codes. OUT: out, n_rows x n_cols uint8 (row-major). X.n_cols must equal
 * model->n_cols. Multithreaded over row blocks with n_threads (1 .. 1024). */
prop_status prop_bins_transform(const prop_bins_edges *model, const prop_bins_data *X,
                                int n_threads, uint8_t *out, prop_error *err);

/* Plain reference of prop_bins_transform (single thread, linear scan of the edges). */
prop_status prop_bins_transform_ref(const prop_bins_edges *model, const prop_bins_data *X,
                                    uint8_t *out, prop_error *err);

#ifdef __cplusplus
}
#endif
#endif
