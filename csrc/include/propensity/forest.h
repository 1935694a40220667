/* forest.h - random forest on (compressed) binned rows.
 *
 * Input rows are unique binned rows with per-label multiplicities and summed
 * sample weights (plain rows: counts one-hot, weights = sample_weight). The
 * bootstrap draws each row's per-label multiplicity from Poisson(N * w / sum w), i.e.
 * Poisson(count) for unit weights (scikit-learn's weighted bootstrap). Tree t
 * uses the seed mix(seed, t), so the first k trees of a forest are the k-tree forest.
 * Trees are grown in parallel; results do not depend on the thread count.
 */
#ifndef PROPENSITY_FOREST_H
#define PROPENSITY_FOREST_H

#include <stdint.h>

#include "propensity/status.h"
#include "propensity/tree.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t n_estimators;
    int criterion;            /* PROP_CRIT_GINI / PROP_CRIT_ENTROPY */
    int32_t max_depth;        /* <= 0: unlimited */
    double min_samples_split; /* >= 2 */
    double min_samples_leaf;  /* >= 1 */
    int32_t max_features;     /* 1..n_features */
    int bootstrap;
    double class_weight[2];
    uint64_t seed;
    int n_threads;            /* 1 .. PROP_MAX_THREADS (trees are grown in parallel) */
    prop_cat_params cat;      /* categorical features (tree.h; all zero: none) */
    double max_samples;       /* bootstrap draws per tree; 0: as many as training rows */
} prop_forest_params;

typedef struct {
    const uint8_t *codes;   /* n x p raw bin codes (255 = missing) */
    int64_t n_rows;
    int32_t n_features;
    const int64_t *counts;  /* n x 2 rows per label, or NULL: see labels */
    const double *weights;  /* n x 2 summed sample weight per label, or NULL: the
                             * counts themselves (rows without sample weights; saves
                             * 16 bytes a row on tables kept row by row) */
    const uint8_t *labels;  /* with counts NULL: n labels 0/1, row i standing for one row
                             * of label labels[i] (rows kept row by row: 1 byte a row,
                             * not 16); NULL with counts */
} prop_rows;

/* The rows entry j (row j / 2, label j % 2) of R stands for. */
static inline int64_t prop_rows_count(const prop_rows *R, int64_t j)
{
    return R->counts != NULL ? R->counts[j] : (int64_t)(R->labels[j >> 1] == (j & 1));
}

/* The summed sample weight of entry j (row j / 2, label j % 2) of R. */
static inline double prop_rows_weight(const prop_rows *R, int64_t j)
{
    return R->weights != NULL ? R->weights[j] : (double)prop_rows_count(R, j);
}

/* A fitted ensemble: nodes of all trees, tree t at [tree_start[t], tree_start[t+1]). */
typedef struct {
    int64_t n_trees;
    int64_t *tree_start;
    prop_nodes nodes;
    double base_score;      /* boosting only */
    int32_t best_iteration; /* boosting only: -1 without early stopping */
    int32_t n_history;
    double *eval_history;   /* boosting only: eval logloss per round */
} prop_ensemble;

void prop_ensemble_free(prop_ensemble *e);

prop_status prop_rows_check(const prop_rows *R, prop_error *err);
/* Every field, n_threads included (1 .. PROP_MAX_THREADS); prop_forest_fit calls it. */
prop_status prop_forest_check_params(const prop_forest_params *P, int32_t n_features,
                                     prop_error *err);
prop_status prop_forest_fit(const prop_forest_params *P, const prop_rows *R, prop_ensemble *out,
                            prop_error *err);

#ifdef __cplusplus
}
#endif
#endif
