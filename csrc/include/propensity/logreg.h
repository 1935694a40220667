/* logreg.h - penalised binary logistic regression on weighted rows.
 *
 * Objective (scikit-learn's LogisticRegression divided by C), on standardised
 * features z = (x - mean) / scale:
 *
 *     F(beta, b) = sum_i [ w0_i * log(1 + e^eta_i) + w1_i * log(1 + e^-eta_i) ]
 *                + (1 / C) * [ (1 - l1_ratio) / 2 * ||beta||^2 + l1_ratio * ||beta||_1 ]
 *     eta_i      = z_i . beta + b          (the intercept b is not penalised)
 *
 * Each row carries two loss weights: w0_i for label 0 and w1_i for label 1
 * (sample weight x class weight). A plain row with label y has (s, 0) or (0, s);
 * a compressed unique row has the summed weights of its copies of each label, so
 * training on compressed rows is exact.
 *
 * Standardisation statistics come from separate per-row "scale weights" (the
 * sample weights without class weights; NULL: w0 + w1). With fit_intercept the
 * features are centred and divided by their weighted standard deviation;
 * without it they are only divided by their weighted root mean square (centring
 * would imply an intercept). A constant column (an all-zero column without
 * intercept) gets a zero coefficient and scale 0. A column whose largest |x| is
 * outside [2^-256, 2^256] is first multiplied by an exact power of two, so values
 * near 1e300 or 1e-300 are standardised like any others (ordinary columns are
 * untouched); a column whose scale or original-scale coefficient is still not
 * representable (subnormal values, extreme scale weights) is an INVALID_ARG error,
 * never silently treated as constant.
 *
 * Solver: proximal Newton, in three parts as in liblinear's newton.h. The
 * objective gives F and the gradient and Hessian of its smooth part, formed with
 * OpenBLAS (dgemv, dsyrk on row blocks). The direction step is a Newton step
 * (Cholesky) for pure L2, or minimises the quadratic model plus the L1 term by
 * coordinate descent for the elastic net. A backtracking (Armijo) line search on
 * F keeps the iterates finite on separable data.
 * Convergence: the largest entry of the minimum-norm subgradient of F is at
 * most tol * sum_i (w0_i + w1_i).
 *
 * Threads: OpenMP over fixed row chunks whose partial sums are added in a fixed
 * order, with OpenBLAS single-threaded inside each chunk, so the results are
 * bit-identical for any n_threads.
 */
#ifndef PROPENSITY_LOGREG_H
#define PROPENSITY_LOGREG_H

#include <stdint.h>

#include "propensity/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double C;          /* inverse penalty strength, finite and > 0 */
    double l1_ratio;   /* in [0, 1]; 0 = pure L2 */
    int fit_intercept; /* 0 or 1 */
    int max_iter;      /* >= 1 outer iterations */
    double tol;        /* >= 0 */
    int n_threads;     /* >= 1 */
} prop_logreg_params;

/* Training rows: exactly one of X_f64 / X_u8 is set (row-major n_rows x n_features). */
typedef struct {
    int64_t n_rows;
    int64_t n_features;
    const double *X_f64;
    const uint8_t *X_u8;
    const double *weights;       /* n_rows x 2: loss weight of label 0, of label 1; >= 0 */
    const double *scale_weights; /* n_rows, >= 0, or NULL for w0 + w1 */
} prop_logreg_data;

/* Outputs, allocated by the caller: every array has n_features entries. */
typedef struct {
    double *coef;          /* OUT original scale */
    double *coef_std;      /* OUT standardised scale */
    double *mean;          /* OUT centring (0 without intercept) */
    double *scale;         /* OUT divisor (0 for constant columns) */
    double intercept;      /* OUT original scale */
    double intercept_std;  /* OUT standardised scale */
    double objective;      /* OUT F at the solution */
    int n_iter;            /* OUT outer iterations taken */
    int converged;         /* OUT 1 if the tolerance was met before max_iter */
} prop_logreg_result;

prop_status prop_logreg_check_params(const prop_logreg_params *params, prop_error *err);

/* Validate params and data (sizes, finite non-negative weights, finite X, two
 * labels with positive weight), standardise, solve. */
prop_status prop_logreg_fit(const prop_logreg_params *params, const prop_logreg_data *data,
                            prop_logreg_result *result, prop_error *err);

/* ---- kernels (exposed for the C tests) -------------------------------------
 * Loss L = sum_i w0 softplus(eta) + w1 softplus(-eta), eta = Z beta + b, with Z
 * row-major n x q. grad (q + 1 entries, the intercept last) and hess ((q+1)^2,
 * full symmetric, row-major) may be NULL. The fast version uses OpenBLAS on
 * fixed row chunks and OpenMP; the reference version is plain loops. */
prop_status prop_logreg_loss_grad_hess(const double *Z, int64_t n, int64_t q, const double *w,
                                       const double *beta, double b, int n_threads,
                                       double *loss, double *grad, double *hess,
                                       prop_error *err);
prop_status prop_logreg_loss_grad_hess_ref(const double *Z, int64_t n, int64_t q,
                                           const double *w, const double *beta, double b,
                                           double *loss, double *grad, double *hess,
                                           prop_error *err);

/* Bytes of the (q+1) x (q+1) matrices a fit on q used features holds with n_chunks
 * partial Hessians (and the Newton system's two): memory grows with q^2. */
double prop_logreg_square_bytes(int64_t q, int n_chunks);

/* The penalty term of F for standardised coefficients beta (q entries, no intercept). */
double prop_logreg_penalty(const prop_logreg_params *params, const double *beta, int64_t q);

#ifdef __cplusplus
}
#endif
#endif
