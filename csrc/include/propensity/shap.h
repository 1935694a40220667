/* shap.h - exact SHAP values of flat tree ensembles on bin codes (path-dependent TreeSHAP).
 *
 * The attribution of Lundberg, Erion and Lee ("Consistent individualized feature
 * attribution for tree ensembles", 2018, algorithm 2): the value of a set S of known
 * features is the tree's expected output when the features in S follow the row's
 * path and every other split is averaged over its children, weighted by the training
 * count (cover) reaching each child. The Shapley values of that set function are
 * computed in O(leaves * depth^2) per tree and row by following, along each root to
 * leaf path, the weights of every subset size (EXTEND / UNWIND of the paper), or for
 * deep trees in O(nodes * depth / 2) by the linear walk (see prop_shap_kernel).
 *
 * Rows are the same bin codes the scorer walks (tree.h's split rule: code <= threshold
 * goes left, the missing code 255 goes right), so the attribution explains exactly the
 * score prop_forest_score gives.
 *
 * Output: row i of out (n x (p + 1)) holds phi_0 .. phi_{p-1} and, last, the bias (the
 * expected value: the value of the empty set). A forest (average) gives the mean over
 * trees of each tree's values; boosting gives their sum, with base added to the bias.
 * Each row is computed by one thread, tree by tree in tree order, so the output does
 * not depend on the thread count. A feature no tree splits on gets exactly 0.
 */
#ifndef PROPENSITY_SHAP_H
#define PROPENSITY_SHAP_H

#include <stdint.h>

#include "propensity/predict.h"
#include "propensity/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How each tree is explained (the values agree to rounding; either way each row's sum
 * is in tree order, so the output does not depend on the thread count):
 * - the recursion of algorithm 2 over the tree, per row: O(leaves x depth^2);
 * - the leaf table: for each leaf and each pattern of which of its path's d unique
 *   features the row follows (2^d patterns), the contributions computed once per call;
 *   a row then costs, per leaf, one test per path step and d additions;
 * - the linear walk (Linear TreeSHAP: the Shapley weights as an integral of a polynomial
 *   over [0, 1], by Gauss-Legendre quadrature): O(nodes x D / 2) per row, D the most
 *   unique features on a path; trees with D <= 64.
 * PROP_SHAP_AUTO takes the table for each tree whose leaves have at most 8 unique
 * features, while the tables stay within 64 MB (beyond, the linear walk is as fast and
 * needs no table), and for the others the linear walk or
 * the recursion, whichever the tree's shape says costs less: a choice made from the
 * model alone, so a row gets the same values in any batch. */
typedef enum {
    PROP_SHAP_AUTO = 0,
    PROP_SHAP_RECURSIVE = 1, /* the recursion for every tree (the reference; tests) */
    PROP_SHAP_LINEAR = 2     /* the linear walk for every tree with D <= 64, the recursion
                              * for the others (tests) */
} prop_shap_kernel;

typedef struct {
    int average;   /* 1: mean over trees (forest); 0: base + sum (boosting) */
    double base;   /* boosting: added to the bias */
    int n_threads; /* 1 .. PROP_MAX_THREADS */
    int kernel;    /* prop_shap_kernel (0: AUTO); prop_forest_shap_brute has one method */
} prop_shap_params;

/* The share of node k's cover that goes to its child c: count[c] / count[k], or 1/2 when
 * node k has no cover (count 0). Both the kernel and the reference use it. */
static inline double prop_shap_fraction(const double *count, int64_t k, int64_t c)
{
    return count[k] > 0.0 ? count[c] / count[k] : 0.5;
}

/* out (n x (p + 1)) = SHAP values and bias of every row of codes (n x p, p ==
 * v->n_features). Validates v and checks sp first. */
prop_status prop_forest_shap(const prop_forest_view *v, const prop_shap_params *sp,
                             const uint8_t *codes, int64_t n, int32_t p, double *out,
                             prop_error *err);

/* A forest compiled for explanations (its leaf tables, see prop_shap_kernel), to explain
 * many batches without building them each time. prop_shap_model_new validates v;
 * prop_shap_model_free(NULL) is a no-op. */
typedef struct prop_shap_model prop_shap_model;
prop_status prop_shap_model_new(const prop_forest_view *v, prop_shap_model **out,
                                prop_error *err);
void prop_shap_model_free(prop_shap_model *md);
/* *work = the work of explaining one row with the trees of v (validated first), in the
 * units of the training run's SHAP budget (about 3.3 ns a unit on one core of the
 * benchmark machine), by each tree's shape: leaves x depth x (1 + 2^depth / 256) up to
 * 8 levels (the leaf tables), else the cheaper of the linear walk (0.4 x nodes x
 * quadrature points, depth / 2 rounded up to a multiple of 4) and the recursion (nodes x
 * depth + leaves x depth^2). One pass over the nodes: no model is compiled. */
prop_status prop_forest_shap_work(const prop_forest_view *v, double *work, prop_error *err);

/* prop_forest_shap with a compiled model (sp->kernel must be AUTO): the same values.
 * PROP_INVALID_ARG when md was compiled from other arrays than v's (sizes and a
 * fingerprint of the node arrays are compared). */
prop_status prop_forest_shap_model(const prop_forest_view *v, const prop_shap_model *md,
                                   const prop_shap_params *sp, const uint8_t *codes, int64_t n,
                                   int32_t p, double *out, prop_error *err);

/* Plain reference: the Shapley formula itself, summed over every subset of the
 * features the tree splits on (at most PROP_SHAP_BRUTE_MAX of them per tree, else
 * PROP_INVALID_ARG), with the same set function; no threads. For tests. */
#define PROP_SHAP_BRUTE_MAX 16
prop_status prop_forest_shap_brute(const prop_forest_view *v, const prop_shap_params *sp,
                                   const uint8_t *codes, int64_t n, int32_t p, double *out,
                                   prop_error *err);

#ifdef __cplusplus
}
#endif
#endif
