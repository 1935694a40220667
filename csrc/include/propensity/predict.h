/* predict.h - scoring flat tree ensembles on raw bin codes, and their validation.
 *
 * A node sends a row left when code <= threshold (the missing code 255 goes
 * right), a categorical node when the code is in its set (tree.h): the walk of tree.h (prop_tree_walk, prop_tree_walk_cut). Scoring can stop
 * early: only the first n_trees trees, and a node at depth max_depth or with
 * count < min_samples_split acts as a leaf with its stored value (the prefix scoring
 * the grid search uses).
 *
 * Two fast kernels give the reference's scores bit for bit (each row sums its trees'
 * values in tree order, from 0.0):
 * - the lane walk: 16 rows walk a tree in lockstep (any tree);
 * - the block scorer, for forests whose trees are at most PROP_BLOCK_MAX_DEPTH levels
 *   deep within the cut: 64 rows go down a tree at once as one 64-bit mask per node
 *   (the rows at the node), split by the mask of rows whose code is above the node's
 *   threshold; those masks are made once per block of rows for every distinct
 *   (feature, threshold) of the forest. A row's leaf is read from the masks as its path
 *   code (bit d: right at depth d) and its value from a table of 2^depth values per
 *   tree. AVX-512 where the processor has it (chosen at run time), else plain C.
 * PROP_SCORE_AUTO takes the block scorer when the forest allows it.
 */
#ifndef PROPENSITY_PREDICT_H
#define PROPENSITY_PREDICT_H

#include <math.h>
#include <stdint.h>

#include "propensity/plan.h"
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
    const uint64_t *cat_bits; /* NULL, or 4 words per node: the categories going left of
                               * a node with threshold PROP_CAT_SPLIT (tree.h) */
} prop_forest_view;

/* Kernels of the fast scorers (the choice never changes a score). */
typedef enum {
    PROP_SCORE_AUTO = 0,         /* the block scorer when the forest allows it, else lanes */
    PROP_SCORE_LANES = 1,        /* the lane walk */
    PROP_SCORE_BLOCK = 2,        /* the block scorer, its fastest form on this processor */
    PROP_SCORE_BLOCK_PLAIN = 3   /* the block scorer in plain C (for tests) */
} prop_score_kernel;

/* Depth limit of the trees of the block scorer (a path code fits a byte). */
#define PROP_BLOCK_MAX_DEPTH 8

typedef struct {
    int64_t n_trees;           /* first trees used; <= 0: all */
    int32_t max_depth;         /* <= 0: no cut */
    double min_samples_split;  /* <= 0: no cut */
    int average;               /* 1: mean of values (forest); 0: base + sum (boosting) */
    double base;
    int n_threads;             /* 1 .. PROP_MAX_THREADS */
    int kernel;                /* prop_score_kernel; 0 (AUTO) when not set. A BLOCK kernel
                                  asked for a forest that does not allow it is
                                  PROP_INVALID_ARG (see prop_forest_block_ok). */
    int positive_proba;        /* 1: out holds the positive-class probability instead of
                                  the score: the score of an average (forest), the
                                  logistic of base + sum (boosting), prop_score_proba */
} prop_score_params;

/* The probability of the positive class of a score: itself for an average, its
 * logistic for boosting (the one formula of every scorer and prop_scores_to_proba). */
static inline double prop_score_proba(double score, int logistic)
{
    return logistic ? 1.0 / (1.0 + exp(-score)) : score;
}

/* Check every index, size and value: PROP_FORMAT with a message on failure. */
prop_status prop_forest_validate(const prop_forest_view *v, prop_error *err);

/* Check the scoring parameters against the model v: n_trees <= v->n_trees, a
 * min_samples_split that is not NaN, n_threads in 1 .. PROP_MAX_THREADS
 * (PROP_INVALID_ARG). Scoring and prop_forest_gains call it first. */
prop_status prop_score_check_params(const prop_score_params *sp, const prop_forest_view *v,
                                    prop_error *err);

/* out[i] = score (or probability, sp->positive_proba) of row i of codes (n x p,
 * p == v->n_features), by the kernel sp->kernel. Checks sp and validates v first. */
prop_status prop_forest_score(const prop_forest_view *v, const prop_score_params *sp,
                              const uint8_t *codes, int64_t n, int32_t p, double *out,
                              prop_error *err);
/* Plain reference: row by row, tree by tree, no threads. */
prop_status prop_forest_score_ref(const prop_forest_view *v, const prop_score_params *sp,
                                  const uint8_t *codes, int64_t n, int32_t p, double *out,
                                  prop_error *err);

/* One sub-forest of the prefix scoring: the first n_trees trees (<= 0: all), a node at
 * depth max_depth (<= 0: no cut) or with count < min_samples_split (<= 0: no cut)
 * acting as a leaf (the fields of prop_score_params that say the cut). */
typedef struct {
    int64_t n_trees;
    int32_t max_depth;
    double min_samples_split;
} prop_score_cut;

/* sp with its cut replaced by `cut`. */
static inline prop_score_params prop_score_with_cut(const prop_score_params *sp,
                                                    const prop_score_cut *cut)
{
    prop_score_params one = *sp;
    one.n_trees = cut->n_trees;
    one.max_depth = cut->max_depth;
    one.min_samples_split = cut->min_samples_split;
    return one;
}

/* out[c * n + i] = score (or probability, sp->positive_proba) of row i of codes under
 * cuts[c]: what prop_forest_score gives with sp's cut replaced by cuts[c], bit for bit.
 * One walk of each tree per row serves every cut (the grid search scores the
 * configurations of one fit at once). sp gives average, base, n_threads and
 * positive_proba; its own cut must be empty (n_trees, max_depth and min_samples_split
 * <= 0) and n_cuts >= 1 (PROP_INVALID_ARG otherwise). Checks everything first. */
prop_status prop_forest_score_cuts(const prop_forest_view *v, const prop_score_params *sp,
                                   const prop_score_cut *cuts, int32_t n_cuts,
                                   const uint8_t *codes, int64_t n, int32_t p, double *out,
                                   prop_error *err);

/* 1 when the block scorer can score v under sp (every tree at most
 * PROP_BLOCK_MAX_DEPTH levels deep within the cut, and no categorical node), else 0. v must be valid. */
int prop_forest_block_ok(const prop_forest_view *v, const prop_score_params *sp);

/* out[i] = score (or probability, sp->positive_proba) of row i of the encoded inputs E,
 * through the feature plan and its bin edges (plan.h) with no matrix of features or
 * codes in between (the block scorer; the lane walk on blocks of codes otherwise).
 * plan->n_features must equal v->n_features. Checks everything first. */
prop_status prop_forest_score_inputs(const prop_forest_view *v, const prop_score_params *sp,
                                     const prop_plan *plan, const prop_bins_edges *edges,
                                     const prop_bins_data *E, double *out, prop_error *err);
/* Plain reference: prop_plan_codes_ref, then prop_forest_score_ref. */
prop_status prop_forest_score_inputs_ref(const prop_forest_view *v, const prop_score_params *sp,
                                         const prop_plan *plan, const prop_bins_edges *edges,
                                         const prop_bins_data *E, double *out, prop_error *err);

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
