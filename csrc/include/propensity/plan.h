/* plan.h - the feature plan: a model's encoded inputs -> its features -> bin codes.
 *
 * A model reads encoded inputs E (an n x n_inputs row-major matrix, prop_bins_data:
 * float64, float32 or uint8; the schema's encoding, a category column holding the
 * category code, -1 for none). Its estimator sees n_features features, feature f made
 * by one step:
 *   PROP_FEAT_COPY    E[:, col[f]]
 *   PROP_FEAT_ONEHOT  1 where E[:, col[f]] == level[f], else 0 (one category's column)
 *   PROP_FEAT_PROD    the product of the earlier features src[src_start[f] ..
 *                     src_start[f+1]), taken left to right
 *   PROP_FEAT_SUM     their sum, left to right
 * Schema.expand is the COPY / ONEHOT part of a model's plan and the interaction
 * features (InteractionFeatureTransformer) the PROD / SUM part. Every value is computed
 * in double, in that order, so it equals what NumPy computes on float64 columns (and
 * on uint8 columns of small integers, where uint8 arithmetic does not wrap).
 *
 * prop_plan_values writes the features. prop_plan_codes maps them straight to the bin
 * codes of bins.h (the code of a value is the number of edges below it, NaN ->
 * PROP_MISSING_BIN) without a matrix of features in between; the tree scorer does the
 * same block by block (prop_forest_score_inputs, predict.h). Results do not depend on
 * the thread count. Every entry point checks the plan (prop_plan_check) first.
 */
#ifndef PROPENSITY_PLAN_H
#define PROPENSITY_PLAN_H

#include <stdint.h>

#include "propensity/bins.h"
#include "propensity/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PROP_FEAT_COPY = 0,
    PROP_FEAT_ONEHOT = 1,
    PROP_FEAT_PROD = 2,
    PROP_FEAT_SUM = 3
} prop_feat_op;

/* A plan (a view of caller memory). */
typedef struct {
    int64_t n_inputs;         /* columns of E, >= 1 */
    int64_t n_features;       /* >= 1 */
    const int32_t *op;        /* [n_features] prop_feat_op */
    const int64_t *col;       /* [n_features] COPY / ONEHOT: the input column (else ignored) */
    const double *level;      /* [n_features] ONEHOT: the category code (else ignored) */
    const int64_t *src_start; /* [n_features + 1] PROD / SUM: their range of src; 0 first,
                                 non-decreasing; COPY / ONEHOT features have empty ranges */
    const int64_t *src;       /* [src_start[n_features]] feature indices, each < its feature */
} prop_plan;

/* Check every op, index and size (PROP_INVALID_ARG naming the feature). */
prop_status prop_plan_check(const prop_plan *plan, prop_error *err);

/* Features of the rows of E. OUT: out, E->n_rows x n_features row-major, double
 * (out_u8 == 0) or uint8 (out_u8 == 1: each value cast, for plans whose values are
 * small non-negative integers, e.g. 0/1 data; other values give unspecified codes).
 * E->n_cols must equal plan->n_inputs. n_threads: 1 .. PROP_MAX_THREADS. */
prop_status prop_plan_values(const prop_plan *plan, const prop_bins_data *E, int out_u8,
                             int n_threads, void *out, prop_error *err);
/* Plain reference: feature by feature over all rows, no threads. */
prop_status prop_plan_values_ref(const prop_plan *plan, const prop_bins_data *E, int out_u8,
                                 void *out, prop_error *err);

/* Bin codes of the features of the rows of E. OUT: out, E->n_rows x n_features uint8
 * row-major. edges->n_cols must equal plan->n_features. */
prop_status prop_plan_codes(const prop_plan *plan, const prop_bins_edges *edges,
                            const prop_bins_data *E, int n_threads, uint8_t *out,
                            prop_error *err);
/* Plain reference: prop_plan_values_ref, then prop_bins_transform_ref. */
prop_status prop_plan_codes_ref(const prop_plan *plan, const prop_bins_edges *edges,
                                const prop_bins_data *E, uint8_t *out, prop_error *err);

/* Check plan, edges and E together for prop_plan_codes and the scorers that use it. */
prop_status prop_plan_check_codes_args(const prop_plan *plan, const prop_bins_edges *edges,
                                       const prop_bins_data *E, prop_error *err);

/* Rows the kernel of prop_plan_codes takes at once, feature by feature. */
#define PROP_PLAN_CHUNK 64

/* Doubles of scratch prop_plan_chunk needs for the plan. */
int64_t prop_plan_scratch(const prop_plan *plan);

/* The kernel of the plan's entry points, for other kernels that checked their arguments
 * (prop_plan_check_codes_args): the features of rows i0 .. i0 + nr - 1 of E (1 <= nr <=
 * PROP_PLAN_CHUNK). Returns col, n_features pointers into `scratch` (prop_plan_scratch
 * doubles): col[f][r] is feature f of row i0 + r, for every r < PROP_PLAN_CHUNK (rows
 * past nr are made from inputs of 0). Their codes: prop_bins_codes (bins.h). No checks,
 * no threads. */
const double *const *prop_plan_chunk(const prop_plan *plan, const prop_bins_data *E, int64_t i0,
                                     int nr, double *scratch);

#ifdef __cplusplus
}
#endif
#endif
