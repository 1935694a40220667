/* logreg.c - penalised logistic regression: standardisation, OpenBLAS kernels,
 * proximal Newton solver. See logreg.h for the objective and the contract. */
#include "propensity/logreg.h"
#include "propensity/types.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/blas_shim.h"

#ifdef _OPENMP
#include <omp.h>
#define LR_THREAD_NUM() omp_get_thread_num()
#else
#define LR_THREAD_NUM() 0
#endif

#define LR_BLOCK 2048      /* rows per BLAS call */
#define LR_MAX_CHUNKS 16   /* fixed partial-sum chunks: the reduction order never depends on threads */
#define LR_MAX_FEATURES (1 << 20)
#define LR_MAX_THREADS PROP_MAX_THREADS
#define LR_ARMIJO 1e-4
#define LR_MAX_HALVINGS 60
#define LR_CD_MAX_SWEEPS 10000
/* Fewer rows than this per thread are not worth a thread: on small (compressed)
 * problems a second OpenMP thread costs more in barriers than it saves, badly so
 * on a busy machine. The partial-sum chunks do not depend on it. */
#define LR_ROWS_PER_THREAD 65536

/* ------------------------------------------------------------------ */
/* Scalar helpers                                                      */
/* ------------------------------------------------------------------ */

static inline double softplus(double x) /* log(1 + e^x) without overflow */
{
    return x > 0.0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

static inline double sigmoid(double x)
{
    if (x >= 0.0) {
        double e = exp(-x);
        return 1.0 / (1.0 + e);
    }
    double e = exp(x);
    return e / (1.0 + e);
}

static inline double row_loss(double w0, double w1, double eta)
{
    double l = 0.0;
    if (w0 != 0.0) l += w0 * softplus(eta);
    if (w1 != 0.0) l += w1 * softplus(-eta);
    return l;
}

static inline double soft_threshold(double v, double t)
{
    return v > t ? v - t : (v < -t ? v + t : 0.0);
}

/* ------------------------------------------------------------------ */
/* Parameters                                                          */
/* ------------------------------------------------------------------ */

prop_status prop_logreg_check_params(const prop_logreg_params *p, prop_error *err)
{
    if (p == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "logreg: params is NULL");
    if (!(isfinite(p->C) && p->C > 0.0))
        return prop_fail(err, PROP_INVALID_ARG, "C must be a finite number > 0, got %g", p->C);
    if (!(p->l1_ratio >= 0.0 && p->l1_ratio <= 1.0))
        return prop_fail(err, PROP_INVALID_ARG, "l1_ratio must be in [0, 1], got %g",
                         p->l1_ratio);
    if (p->fit_intercept != 0 && p->fit_intercept != 1)
        return prop_fail(err, PROP_INVALID_ARG, "fit_intercept must be 0 or 1, got %d",
                         p->fit_intercept);
    if (p->max_iter < 1)
        return prop_fail(err, PROP_INVALID_ARG, "max_iter must be >= 1, got %d", p->max_iter);
    if (!(isfinite(p->tol) && p->tol >= 0.0))
        return prop_fail(err, PROP_INVALID_ARG, "tol must be a finite number >= 0, got %g",
                         p->tol);
    if (p->n_threads < 1 || p->n_threads > LR_MAX_THREADS)
        return prop_fail(err, PROP_INVALID_ARG, "n_threads must be in [1, %d], got %d",
                         LR_MAX_THREADS, p->n_threads);
    return PROP_OK;
}

double prop_logreg_penalty(const prop_logreg_params *params, const double *beta, int64_t q)
{
    double l2 = 0.0, l1 = 0.0;
    for (int64_t j = 0; j < q; j++) {
        l2 += beta[j] * beta[j];
        l1 += fabs(beta[j]);
    }
    double lam2 = (1.0 - params->l1_ratio) / params->C, lam1 = params->l1_ratio / params->C;
    return 0.5 * lam2 * l2 + lam1 * l1;
}

/* ------------------------------------------------------------------ */
/* Blocked kernels on the standardised matrix Z (n x q, row-major)    */
/* ------------------------------------------------------------------ */

typedef struct {
    const double *Z;
    const double *w; /* n x 2 */
    int64_t n, q;
    int n_threads, n_chunks;
    int64_t n_blocks;
    double *Hc; /* n_chunks x (q+1)^2 partial Hessians */
    double *gc; /* n_chunks x (q+1) partial gradients */
    double *lc; /* n_chunks partial losses */
    double *S;  /* n_threads x LR_BLOCK x (q+1): sqrt(d)-scaled rows */
    double *r;  /* n_threads x LR_BLOCK residuals */
} lr_work;

static void work_free(lr_work *wk)
{
    free(wk->Hc);
    free(wk->gc);
    free(wk->lc);
    free(wk->S);
    free(wk->r);
    memset(wk, 0, sizeof(*wk));
}

static prop_status work_init(lr_work *wk, const double *Z, const double *w, int64_t n,
                             int64_t q, int n_threads, prop_error *err)
{
    memset(wk, 0, sizeof(*wk));
    wk->Z = Z;
    wk->w = w;
    wk->n = n;
    wk->q = q;
    int64_t useful = n / LR_ROWS_PER_THREAD;
    wk->n_threads = useful < 1 ? 1 : (useful < n_threads ? (int)useful : n_threads);
    wk->n_blocks = (n + LR_BLOCK - 1) / LR_BLOCK;
    wk->n_chunks = wk->n_blocks < LR_MAX_CHUNKS ? (int)wk->n_blocks : LR_MAX_CHUNKS;
    if (wk->n_chunks < 1)
        wk->n_chunks = 1;
    size_t m = (size_t)q + 1;
    wk->Hc = malloc(sizeof(double) * m * m * (size_t)wk->n_chunks);
    wk->gc = malloc(sizeof(double) * m * (size_t)wk->n_chunks);
    wk->lc = malloc(sizeof(double) * (size_t)wk->n_chunks);
    wk->S = malloc(sizeof(double) * m * LR_BLOCK * (size_t)n_threads);
    wk->r = malloc(sizeof(double) * LR_BLOCK * (size_t)n_threads);
    if (!wk->Hc || !wk->gc || !wk->lc || !wk->S || !wk->r) {
        work_free(wk);
        return prop_fail(err, PROP_NOMEM, "logreg: out of memory for the solver workspace");
    }
    return PROP_OK;
}

static void chunk_rows(const lr_work *wk, int c, int64_t *r0, int64_t *r1)
{
    int64_t b0 = wk->n_blocks * c / wk->n_chunks, b1 = wk->n_blocks * (c + 1) / wk->n_chunks;
    *r0 = b0 * LR_BLOCK;
    *r1 = b1 * LR_BLOCK < wk->n ? b1 * LR_BLOCK : wk->n;
}

/* out = Z v + add (each row on its own: the same for any thread count). */
static void lr_matvec(const lr_work *wk, const double *v, double add, double *out)
{
    const int64_t q = wk->q;
#pragma omp parallel num_threads(wk->n_threads)
    {
#pragma omp for schedule(static)
        for (int64_t blk = 0; blk < wk->n_blocks; blk++) {
            int64_t r0 = blk * LR_BLOCK, r1 = r0 + LR_BLOCK < wk->n ? r0 + LR_BLOCK : wk->n;
            int mb = (int)(r1 - r0);
            if (q > 0) {
                prop_cblas_dgemv(CblasRowMajor, CblasNoTrans, mb, (int)q, 1.0,
                                 wk->Z + r0 * q, (int)q, v, 1, 0.0, out + r0, 1);
                for (int i = 0; i < mb; i++)
                    out[r0 + i] += add;
            } else {
                for (int i = 0; i < mb; i++)
                    out[r0 + i] = add;
            }
        }
    }
}

/* Loss at eta + t * dz (dz may be NULL), chunked so the sum is thread-independent. */
static double lr_loss(const lr_work *wk, const double *eta, const double *dz, double t)
{
#pragma omp parallel for num_threads(wk->n_threads) schedule(dynamic, 1)
    for (int c = 0; c < wk->n_chunks; c++) {
        int64_t r0, r1;
        chunk_rows(wk, c, &r0, &r1);
        double s = 0.0;
        for (int64_t i = r0; i < r1; i++) {
            double e = dz ? eta[i] + t * dz[i] : eta[i];
            s += row_loss(wk->w[2 * i], wk->w[2 * i + 1], e);
        }
        wk->lc[c] = s;
    }
    double total = 0.0;
    for (int c = 0; c < wk->n_chunks; c++)
        total += wk->lc[c];
    return total;
}

/* Loss, gradient (q+1) and full Hessian ((q+1)^2, may be NULL) at eta. */
static void lr_grad_hess(const lr_work *wk, const double *eta, double *loss, double *grad,
                         double *hess)
{
    const int64_t q = wk->q, m = q + 1;
#pragma omp parallel num_threads(wk->n_threads)
    {
        int tid = LR_THREAD_NUM();
        double *S = wk->S + (size_t)tid * LR_BLOCK * (size_t)m;
        double *r = wk->r + (size_t)tid * LR_BLOCK;
#pragma omp for schedule(dynamic, 1)
        for (int c = 0; c < wk->n_chunks; c++) {
            double *H = wk->Hc + (size_t)c * (size_t)(m * m);
            double *g = wk->gc + (size_t)c * (size_t)m;
            memset(g, 0, sizeof(double) * (size_t)m);
            if (hess)
                memset(H, 0, sizeof(double) * (size_t)(m * m));
            double L = 0.0;
            int64_t c0, c1;
            chunk_rows(wk, c, &c0, &c1);
            for (int64_t r0 = c0; r0 < c1; r0 += LR_BLOCK) {
                int64_t r1 = r0 + LR_BLOCK < c1 ? r0 + LR_BLOCK : c1;
                int mb = (int)(r1 - r0);
                double gi = 0.0;
                for (int i = 0; i < mb; i++) {
                    double e = eta[r0 + i], w0 = wk->w[2 * (r0 + i)], w1 = wk->w[2 * (r0 + i) + 1];
                    double p = sigmoid(e), pm = sigmoid(-e);
                    L += row_loss(w0, w1, e);
                    r[i] = w0 * p - w1 * pm;
                    gi += r[i];
                    if (hess) {
                        double sd = sqrt((w0 + w1) * p * pm);
                        const double *z = wk->Z + (r0 + i) * q;
                        double *s = S + (size_t)i * (size_t)m;
                        for (int64_t j = 0; j < q; j++)
                            s[j] = sd * z[j];
                        s[q] = sd;
                    }
                }
                if (q > 0)
                    prop_cblas_dgemv(CblasRowMajor, CblasTrans, mb, (int)q, 1.0, wk->Z + r0 * q,
                                     (int)q, r, 1, 1.0, g, 1);
                g[q] += gi;
                if (hess)
                    prop_cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)m, mb, 1.0, S,
                                     (int)m, 1.0, H, (int)m);
            }
            wk->lc[c] = L;
        }
    }
    double L = 0.0;
    memset(grad, 0, sizeof(double) * (size_t)m);
    if (hess)
        memset(hess, 0, sizeof(double) * (size_t)(m * m));
    for (int c = 0; c < wk->n_chunks; c++) {
        L += wk->lc[c];
        const double *g = wk->gc + (size_t)c * (size_t)m;
        for (int64_t j = 0; j < m; j++)
            grad[j] += g[j];
        if (hess) {
            const double *H = wk->Hc + (size_t)c * (size_t)(m * m);
            for (int64_t a = 0; a < m; a++)
                for (int64_t b = a; b < m; b++)
                    hess[a * m + b] += H[a * m + b];
        }
    }
    if (hess)
        for (int64_t a = 0; a < m; a++)
            for (int64_t b = a + 1; b < m; b++)
                hess[b * m + a] = hess[a * m + b];
    *loss = L;
}

static prop_status check_kernel_args(const double *Z, int64_t n, int64_t q, const double *w,
                                     const double *beta, double *loss, double *grad,
                                     prop_error *err)
{
    if (n < 1 || q < 0 || q > LR_MAX_FEATURES)
        return prop_fail(err, PROP_INVALID_ARG, "logreg kernel: bad shape n=%lld q=%lld",
                         (long long)n, (long long)q);
    if ((q > 0 && (Z == NULL || beta == NULL)) || w == NULL || loss == NULL || grad == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "logreg kernel: NULL argument");
    return PROP_OK;
}

prop_status prop_logreg_loss_grad_hess(const double *Z, int64_t n, int64_t q, const double *w,
                                       const double *beta, double b, int n_threads,
                                       double *loss, double *grad, double *hess,
                                       prop_error *err)
{
    prop_status st = check_kernel_args(Z, n, q, w, beta, loss, grad, err);
    if (st != PROP_OK)
        return st;
    if (n_threads < 1 || n_threads > LR_MAX_THREADS)
        return prop_fail(err, PROP_INVALID_ARG, "n_threads must be in [1, %d], got %d",
                         LR_MAX_THREADS, n_threads);
    lr_work wk;
    st = work_init(&wk, Z, w, n, q, n_threads, err);
    if (st != PROP_OK)
        return st;
    double *eta = malloc(sizeof(double) * (size_t)n);
    if (eta == NULL) {
        work_free(&wk);
        return prop_fail(err, PROP_NOMEM, "logreg: out of memory");
    }
    int blas_threads = prop_openblas_get_num_threads();
    prop_openblas_set_num_threads(1);
    lr_matvec(&wk, beta, b, eta);
    lr_grad_hess(&wk, eta, loss, grad, hess);
    prop_openblas_set_num_threads(blas_threads);
    free(eta);
    work_free(&wk);
    return PROP_OK;
}

prop_status prop_logreg_loss_grad_hess_ref(const double *Z, int64_t n, int64_t q,
                                           const double *w, const double *beta, double b,
                                           double *loss, double *grad, double *hess,
                                           prop_error *err)
{
    prop_status st = check_kernel_args(Z, n, q, w, beta, loss, grad, err);
    if (st != PROP_OK)
        return st;
    int64_t m = q + 1;
    double L = 0.0;
    for (int64_t j = 0; j < m; j++)
        grad[j] = 0.0;
    if (hess)
        for (int64_t j = 0; j < m * m; j++)
            hess[j] = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double *z = Z + i * q;
        double e = b;
        for (int64_t j = 0; j < q; j++)
            e += z[j] * beta[j];
        double w0 = w[2 * i], w1 = w[2 * i + 1];
        double p = 1.0 / (1.0 + exp(-e));
        L += w0 * log1p(exp(e)) + w1 * log1p(exp(-e));
        double ri = (w0 + w1) * p - w1, di = (w0 + w1) * p * (1.0 - p);
        for (int64_t a = 0; a < m; a++) {
            double za = a < q ? z[a] : 1.0;
            grad[a] += ri * za;
            if (hess)
                for (int64_t c = 0; c < m; c++)
                    hess[a * m + c] += di * za * (c < q ? z[c] : 1.0);
        }
    }
    *loss = L;
    return PROP_OK;
}

/* ------------------------------------------------------------------ */
/* Small dense linear algebra for the (q+1) x (q+1) Newton systems     */
/* ------------------------------------------------------------------ */

/* Solve A x = rhs for symmetric positive definite A (m x m) by Cholesky; `L` is
 * m x m scratch. Returns 0 on success, -1 if A is not numerically SPD. */
static int cholesky_solve(const double *A, int64_t m, const double *rhs, double *x, double *L)
{
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j <= i; j++) {
            double s = A[i * m + j];
            for (int64_t k = 0; k < j; k++)
                s -= L[i * m + k] * L[j * m + k];
            if (i == j) {
                if (!(s > 0.0) || !isfinite(s))
                    return -1;
                L[i * m + i] = sqrt(s);
            } else {
                L[i * m + j] = s / L[j * m + j];
            }
        }
    }
    for (int64_t i = 0; i < m; i++) { /* L y = rhs */
        double s = rhs[i];
        for (int64_t k = 0; k < i; k++)
            s -= L[i * m + k] * x[k];
        x[i] = s / L[i * m + i];
    }
    for (int64_t i = m - 1; i >= 0; i--) { /* L^T x = y */
        double s = x[i];
        for (int64_t k = i + 1; k < m; k++)
            s -= L[k * m + i] * x[k];
        x[i] = s / L[i * m + i];
    }
    return 0;
}

/* Minimise g.d + d'Hd/2 + lam1 * sum_{j<q} |beta_j + d_j| over d by cyclic
 * coordinate descent (the intercept, index q, is not penalised) until the
 * minimum-norm subgradient of this model is at most inner_tol. Hd is m scratch. */
static void cd_quadratic(const double *H, const double *g, const double *beta, int64_t q,
                         double lam1, double inner_tol, double *d, double *Hd)
{
    int64_t m = q + 1;
    for (int64_t j = 0; j < m; j++)
        d[j] = Hd[j] = 0.0;
    for (int sweep = 0; sweep < LR_CD_MAX_SWEEPS; sweep++) {
        for (int64_t j = 0; j < m; j++) {
            double a = H[j * m + j];
            if (!(a > 0.0))
                continue;
            double gj = g[j] + Hd[j], dn;
            if (j < q) {
                double u = beta[j] + d[j];
                dn = soft_threshold(a * u - gj, lam1) / a - beta[j];
            } else {
                dn = d[j] - gj / a;
            }
            double ch = dn - d[j];
            if (ch != 0.0) {
                d[j] = dn;
                const double *hj = H + j * m;
                for (int64_t k = 0; k < m; k++)
                    Hd[k] += ch * hj[k];
            }
        }
        double worst = 0.0;
        for (int64_t j = 0; j < m; j++) {
            if (!(H[j * m + j] > 0.0))
                continue;
            double gj = g[j] + Hd[j], u = j < q ? beta[j] + d[j] : 0.0, v;
            if (j == q || lam1 == 0.0)
                v = fabs(gj);
            else if (u > 0.0)
                v = fabs(gj + lam1);
            else if (u < 0.0)
                v = fabs(gj - lam1);
            else
                v = fabs(gj) > lam1 ? fabs(gj) - lam1 : 0.0;
            if (v > worst)
                worst = v;
        }
        if (worst <= inner_tol)
            break;
    }
}

/* ------------------------------------------------------------------ */
/* Fit                                                                 */
/* ------------------------------------------------------------------ */

static prop_status check_data(const prop_logreg_data *d, const prop_logreg_result *res,
                              double *W0, double *W1, double *SW, prop_error *err)
{
    if (d == NULL || res == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "logreg: data or result is NULL");
    if (d->n_rows < 1)
        return prop_fail(err, PROP_INVALID_ARG, "logreg: X has no rows");
    if (d->n_features < 1 || d->n_features > LR_MAX_FEATURES)
        return prop_fail(err, PROP_INVALID_ARG, "logreg: X must have 1..%d columns, got %lld",
                         LR_MAX_FEATURES, (long long)d->n_features);
    if ((d->X_f64 == NULL) == (d->X_u8 == NULL))
        return prop_fail(err, PROP_INVALID_ARG, "logreg: exactly one of X_f64 / X_u8 must be set");
    if (d->weights == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "logreg: weights is NULL");
    if (!res->coef || !res->coef_std || !res->mean || !res->scale)
        return prop_fail(err, PROP_INVALID_ARG, "logreg: result arrays must be allocated");
    if ((uint64_t)d->n_rows > SIZE_MAX / sizeof(double) / (uint64_t)d->n_features)
        return prop_fail(err, PROP_NOMEM, "logreg: X is too large");
    double w0s = 0.0, w1s = 0.0, sws = 0.0;
    for (int64_t i = 0; i < d->n_rows; i++) {
        double a = d->weights[2 * i], b = d->weights[2 * i + 1];
        if (!(isfinite(a) && isfinite(b) && a >= 0.0 && b >= 0.0))
            return prop_fail(err, PROP_INVALID_ARG,
                             "logreg: weights of row %lld must be finite and >= 0 (got %g, %g)",
                             (long long)i, a, b);
        w0s += a;
        w1s += b;
        double s = d->scale_weights ? d->scale_weights[i] : a + b;
        if (!(isfinite(s) && s >= 0.0))
            return prop_fail(err, PROP_INVALID_ARG,
                             "logreg: scale weight of row %lld must be finite and >= 0, got %g",
                             (long long)i, s);
        sws += s;
    }
    if (!(w0s > 0.0 && w1s > 0.0))
        return prop_fail(err, PROP_INVALID_ARG,
                         "logreg: both labels need a positive total weight (label 0: %g, "
                         "label 1: %g); y has a single class",
                         w0s, w1s);
    if (!(sws > 0.0) || !isfinite(sws) || !isfinite(w0s + w1s))
        return prop_fail(err, PROP_INVALID_ARG, "logreg: the scale weights sum to %g", sws);
    if (d->X_f64) {
        const int64_t p = d->n_features;
        for (int64_t i = 0; i < d->n_rows; i++)
            for (int64_t j = 0; j < p; j++)
                if (!isfinite(d->X_f64[i * p + j]))
                    return prop_fail(err, PROP_INVALID_ARG,
                                     "logreg: X has a non-finite value (%g) at row %lld, "
                                     "column %lld",
                                     d->X_f64[i * p + j], (long long)i, (long long)j);
    }
    *W0 = w0s;
    *W1 = w1s;
    *SW = sws;
    return PROP_OK;
}

static inline double xval(const prop_logreg_data *d, int64_t i, int64_t j)
{
    return d->X_f64 ? d->X_f64[i * d->n_features + j]
                    : (double)d->X_u8[i * d->n_features + j];
}

static inline double sweight(const prop_logreg_data *d, int64_t i)
{
    return d->scale_weights ? d->scale_weights[i] : d->weights[2 * i] + d->weights[2 * i + 1];
}

/* Weighted mean / scale per column (serial: a fixed summation order).
 * Returns -1 when out of memory. */
static int standardise_stats(const prop_logreg_data *d, int fit_intercept, double SW,
                              double *mean, double *scale)
{
    const int64_t n = d->n_rows, p = d->n_features;
    if (p < 1 || p > LR_MAX_FEATURES)
        return -1;
    unsigned char *varies = calloc((size_t)p, 1);
    double *first = malloc(sizeof(double) * (size_t)p);
    if (varies == NULL || first == NULL) {
        free(varies);
        free(first);
        return -1;
    }
    for (int64_t j = 0; j < p; j++) {
        mean[j] = 0.0;
        scale[j] = 0.0;
    }
    if (fit_intercept) {
        for (int64_t i = 0; i < n; i++) {
            double s = sweight(d, i);
            if (s > 0.0)
                for (int64_t j = 0; j < p; j++)
                    mean[j] += s * xval(d, i, j);
        }
        for (int64_t j = 0; j < p; j++)
            mean[j] /= SW;
    }
    /* constant columns: every row with positive weight has the same value
     * (without intercept: the value 0) */
    int have_first = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = sweight(d, i);
        if (!(s > 0.0))
            continue;
        for (int64_t j = 0; j < p; j++) {
            double x = xval(d, i, j), c = x - mean[j];
            scale[j] += s * c * c;
            {
                if (!fit_intercept)
                    varies[j] |= (x != 0.0);
                else if (!have_first)
                    first[j] = x;
                else
                    varies[j] |= (x != first[j]);
            }
        }
        have_first = 1;
    }
    for (int64_t j = 0; j < p; j++) {
        double sc = sqrt(scale[j] / SW);
        int constant = !varies[j];
        scale[j] = (constant || !(sc > 0.0) || !isfinite(sc)) ? 0.0 : sc;
    }
    free(varies);
    free(first);
    return 0;
}

prop_status prop_logreg_fit(const prop_logreg_params *params, const prop_logreg_data *data,
                            prop_logreg_result *res, prop_error *err)
{
    prop_status st = prop_logreg_check_params(params, err);
    if (st != PROP_OK)
        return st;
    double W0 = 0.0, W1 = 0.0, SW = 0.0;
    st = check_data(data, res, &W0, &W1, &SW, err);
    if (st != PROP_OK)
        return st;

    const int64_t n = data->n_rows, p = data->n_features;
    const int fit_int = params->fit_intercept;
    const double lam2 = (1.0 - params->l1_ratio) / params->C;
    const double lam1 = params->l1_ratio / params->C;
    const double Wtot = W0 + W1;

    if (standardise_stats(data, fit_int, SW, res->mean, res->scale) != 0)
        return prop_fail(err, PROP_NOMEM, "logreg: out of memory");

    int64_t q = 0;
    int64_t *active = malloc(sizeof(int64_t) * (size_t)p);
    if (active == NULL)
        return prop_fail(err, PROP_NOMEM, "logreg: out of memory");
    for (int64_t j = 0; j < p; j++)
        if (res->scale[j] > 0.0)
            active[q++] = j;
    const int64_t m = q + 1;

    double *Z = malloc(sizeof(double) * (size_t)(n * (q > 0 ? q : 1)));
    double *eta = malloc(sizeof(double) * (size_t)n);
    double *dz = malloc(sizeof(double) * (size_t)n);
    double *beta = calloc((size_t)m, sizeof(double));  /* [beta_active..., b] */
    double *trial = calloc((size_t)m, sizeof(double));
    double *g = malloc(sizeof(double) * (size_t)m);
    double *gs = malloc(sizeof(double) * (size_t)m);
    double *dir = malloc(sizeof(double) * (size_t)m);
    double *tmp = malloc(sizeof(double) * (size_t)m);
    double *H = malloc(sizeof(double) * (size_t)(m * m));
    double *Lc = malloc(sizeof(double) * (size_t)(m * m));
    lr_work wk;
    memset(&wk, 0, sizeof(wk));
    /* OpenBLAS runs single-threaded inside our OpenMP row chunks (restored at the end) */
    int blas_threads = prop_openblas_get_num_threads();
    prop_openblas_set_num_threads(1);
    if (!Z || !eta || !dz || !beta || !trial || !g || !gs || !dir || !tmp || !H || !Lc) {
        st = prop_fail(err, PROP_NOMEM, "logreg: out of memory (%lld x %lld standardised rows)",
                       (long long)n, (long long)q);
        goto done;
    }
    st = work_init(&wk, Z, data->weights, n, q, params->n_threads, err);
    if (st != PROP_OK)
        goto done;
    if (q > 0) {
        const double *mean = res->mean, *scale = res->scale;
#pragma omp parallel for num_threads(wk.n_threads) schedule(static)
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 0; k < q; k++) {
                int64_t j = active[k];
                Z[i * q + k] = (xval(data, i, j) - mean[j]) / scale[j];
            }
    }

    /* start: beta = 0, intercept at the weighted log-odds */
    beta[q] = fit_int ? log(W1 / W0) : 0.0;
    lr_matvec(&wk, beta, beta[q], eta);
    double F = lr_loss(&wk, eta, NULL, 0.0) + prop_logreg_penalty(params, beta, q);
    int it = 0, converged = 0;
    for (;; it++) {
        double L;
        lr_grad_hess(&wk, eta, &L, g, H);
        for (int64_t j = 0; j < q; j++) {
            gs[j] = g[j] + lam2 * beta[j];
            H[j * m + j] += lam2;
        }
        gs[q] = fit_int ? g[q] : 0.0;
        if (!fit_int) { /* freeze the intercept at 0 */
            for (int64_t k = 0; k < m; k++)
                H[q * m + k] = H[k * m + q] = 0.0;
            H[q * m + q] = 1.0;
        }
        /* optimality: the minimum-norm subgradient of F */
        double opt = fabs(gs[q]);
        for (int64_t j = 0; j < q; j++) {
            double v;
            if (lam1 == 0.0)
                v = fabs(gs[j]);
            else if (beta[j] > 0.0)
                v = fabs(gs[j] + lam1);
            else if (beta[j] < 0.0)
                v = fabs(gs[j] - lam1);
            else
                v = fabs(gs[j]) > lam1 ? fabs(gs[j]) - lam1 : 0.0;
            if (v > opt)
                opt = v;
        }
        if (!isfinite(opt)) {
            st = prop_fail(err, PROP_INTERNAL, "logreg: non-finite gradient at iteration %d", it);
            goto done;
        }
        if (opt <= params->tol * Wtot) {
            converged = 1;
            break;
        }
        if (it >= params->max_iter)
            break;

        /* search direction */
        double pred; /* predicted change of F along the full step (< 0) */
        if (lam1 == 0.0) {
            for (int64_t j = 0; j < m; j++)
                tmp[j] = -gs[j];
            double jitter = 0.0, diagmax = 0.0;
            for (int64_t j = 0; j < m; j++)
                diagmax = fmax(diagmax, H[j * m + j]);
            int ok = 0;
            for (int attempt = 0; attempt < 12 && !ok; attempt++) {
                if (attempt > 0) {
                    double add = (attempt == 1 ? 1e-12 : 10.0) * (attempt == 1 ? diagmax : jitter);
                    for (int64_t j = 0; j < m; j++)
                        H[j * m + j] += add - jitter;
                    jitter = add;
                }
                ok = cholesky_solve(H, m, tmp, dir, Lc) == 0;
            }
            if (!ok) {
                st = prop_fail(err, PROP_INTERNAL, "logreg: the Newton system is singular");
                goto done;
            }
            pred = 0.0;
            for (int64_t j = 0; j < m; j++)
                pred += gs[j] * dir[j];
        } else {
            /* inexact inner solves, relative to the current outer optimality gap */
            double inner_tol = 1e-3 * fmin(opt, 1e-3 * Wtot);
            cd_quadratic(H, gs, beta, q, lam1, fmax(inner_tol, 1e-14 * Wtot), dir, tmp);
            double l1_old = 0.0, l1_new = 0.0;
            pred = 0.0;
            for (int64_t j = 0; j < m; j++)
                pred += gs[j] * dir[j];
            for (int64_t j = 0; j < q; j++) {
                l1_old += fabs(beta[j]);
                l1_new += fabs(beta[j] + dir[j]);
            }
            pred += lam1 * (l1_new - l1_old);
        }
        if (!fit_int)
            dir[q] = 0.0;
        if (!(pred < 0.0)) { /* no descent left at this precision */
            converged = 1;
            break;
        }

        /* backtracking line search on F */
        lr_matvec(&wk, dir, dir[q], dz);
        double t = 1.0, Ft = F;
        int accepted = 0;
        for (int h = 0; h < LR_MAX_HALVINGS; h++, t *= 0.5) {
            for (int64_t j = 0; j < m; j++)
                trial[j] = beta[j] + t * dir[j];
            Ft = lr_loss(&wk, eta, dz, t) + prop_logreg_penalty(params, trial, q);
            /* the slack admits full steps whose effect is below the rounding of F,
             * where Newton steps converge and the Armijo test is noise */
            if (isfinite(Ft) && Ft <= F + LR_ARMIJO * t * pred + 1e-13 * fabs(F)) {
                accepted = 1;
                break;
            }
        }
        if (!accepted) { /* stalled at the floating-point floor */
            converged = 1;
            break;
        }
        memcpy(beta, trial, sizeof(double) * (size_t)m);
        lr_matvec(&wk, beta, beta[q], eta);
        F = lr_loss(&wk, eta, NULL, 0.0) + prop_logreg_penalty(params, beta, q);
    }

    /* outputs */
    for (int64_t j = 0; j < p; j++)
        res->coef[j] = res->coef_std[j] = 0.0;
    double b = beta[q], b_orig = beta[q];
    for (int64_t k = 0; k < q; k++) {
        int64_t j = active[k];
        res->coef_std[j] = beta[k];
        res->coef[j] = beta[k] / res->scale[j];
        b_orig -= res->coef[j] * res->mean[j];
    }
    res->intercept_std = b;
    res->intercept = fit_int ? b_orig : 0.0;
    res->objective = F;
    res->n_iter = it;
    res->converged = converged;
    st = PROP_OK;

done:
    prop_openblas_set_num_threads(blas_threads);
    work_free(&wk);
    free(active);
    free(Z);
    free(eta);
    free(dz);
    free(beta);
    free(trial);
    free(g);
    free(gs);
    free(dir);
    free(tmp);
    free(H);
    free(Lc);
    return st;
}
