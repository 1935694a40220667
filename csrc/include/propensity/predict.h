/* predict.h - scoring flat tree ensembles on raw bin codes, and their validation.
 *
 * A node sends a row left when code <= threshold (the missing code 255 goes
 * right): the walk of tree.h (prop_tree_walk, prop_tree_walk_cut). Scoring can stop
 * early: only the first n_trees trees, and a node at depth max_depth or with
 * count < min_samples_split acts as a leaf with its stored value (the prefix scoring
 * the grid search uses).
 */
#ifndef PROPENSITY_PREDICT_H
#define PROPENSITY_PREDICT_H

#include <stdint.h>

#include "propensity/status.h"
#include "propensity/tree.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t n_trees;
    const int64_t *tree_start; /* n_trees + 1 */
    int64_t n_nodes;
    const int32_t *feature;
    const uint8_t *threshold;
    const int32_t *left, *right; /* tree-local; -1 = leaf */
    const double *value, *count, *gain;
    int32_t n_features;
} prop_forest_view;

typedef struct {
    int64_t n_trees;           /* first trees used; <= 0: all */
    int32_t max_depth;         /* <= 0: no cut */
    double min_samples_split;  /* <= 0: no cut */
    int average;               /* 1: mean of values (forest); 0: base + sum (boosting) */
    double base;
    int n_threads;             /* 1 .. PROP_MAX_THREADS */
} prop_score_params;

/* Check every index, size and value: PROP_FORMAT with a message on failure. */
prop_status prop_forest_validate(const prop_forest_view *v, prop_error *err);

/* Check the scoring parameters against the model v: n_trees <= v->n_trees, a
 * min_samples_split that is not NaN, n_threads in 1 .. PROP_MAX_THREADS
 * (PROP_INVALID_ARG). Scoring and prop_forest_gains call it first. */
prop_status prop_score_check_params(const prop_score_params *sp, const prop_forest_view *v,
                                    prop_error *err);

/* out[i] = score of row i of codes (n x p, p == v->n_features). Checks sp and
 * validates v first. */
prop_status prop_forest_score(const prop_forest_view *v, const prop_score_params *sp,
                              const uint8_t *codes, int64_t n, int32_t p, double *out,
                              prop_error *err);
/* Plain reference: row by row, tree by tree, no threads. */
prop_status prop_forest_score_ref(const prop_forest_view *v, const prop_score_params *sp,
                                  const uint8_t *codes, int64_t n, int32_t p, double *out,
                                  prop_error *err);

/* gains[t * p + j] = summed gain of feature j's splits in tree t within the cut
 * (n_trees, max_depth, min_samples_split as in scoring; sp is checked as for scoring,
 * though no threads are used). gains: n_trees x p. */
prop_status prop_forest_gains(const prop_forest_view *v, const prop_score_params *sp, double *gains,
                              prop_error *err);

/* out2 (n x 2) = (1 - p, p) with p = scores[inverse[i]] (inverse NULL: scores[i]),
 * passed through the logistic function when `logistic`, with n_threads
 * (1 .. PROP_MAX_THREADS). inverse values must be in [0, u) (not checked here). */
prop_status prop_scores_to_proba(const double *scores, int64_t u, const int64_t *inverse,
                                 int64_t n, int logistic, double *out2, int n_threads,
                                 prop_error *err);

#ifdef __cplusplus
}
#endif
#endif
