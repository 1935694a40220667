/* boost.h - gradient boosting (logistic loss) on (compressed) binned rows.
 *
 * Gradients are aggregated per unique row and label and quantised per session
 * (tree.h), so training on compressed rows gives the trees of the plain rows (with
 * unequal sample weights inside a merged row, up to splits whose gains tie at the
 * quantisation's resolution); leaf values are exact sums. Row subsampling draws
 * Binomial(count, subsample) per row and label (Bernoulli for plain rows);
 * colsample_bytree picks features per tree. Histogram sums are integers and every
 * floating-point sum runs over fixed blocks, so results do not depend on n_threads.
 */
#ifndef PROPENSITY_BOOST_H
#define PROPENSITY_BOOST_H

#include <stdint.h>

#include "propensity/forest.h"
#include "propensity/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t n_estimators;
    double learning_rate;
    int32_t max_depth;        /* <= 0: unlimited */
    double min_child_weight;
    double reg_lambda;
    double subsample;         /* (0, 1] */
    double colsample_bytree;  /* (0, 1] */
    double scale_pos_weight;  /* > 0 */
    int32_t early_stopping_rounds; /* <= 0: none */
    uint64_t seed;
    int n_threads;            /* 1 .. PROP_MAX_THREADS */
    prop_cat_params cat;      /* categorical features (tree.h; all zero: none) */
} prop_boost_params;

typedef struct {
    const uint8_t *codes;   /* m x p raw codes, same binning as training */
    int64_t n_rows;
    const uint8_t *y;       /* m labels 0/1 */
    const double *weight;   /* m weights or NULL */
} prop_eval_set;

/* Every field, n_threads included (1 .. PROP_MAX_THREADS); prop_boost_fit calls it. */
prop_status prop_boost_check_params(const prop_boost_params *P, prop_error *err);
/* eval may be NULL. */
prop_status prop_boost_fit(const prop_boost_params *P, const prop_rows *R, const prop_eval_set *eval,
                           prop_ensemble *out, prop_error *err);

#ifdef __cplusplus
}
#endif
#endif
