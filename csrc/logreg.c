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

/* Threads worth using on n rows (at most n_threads; see LR_ROWS_PER_THREAD). */
static int lr_useful_threads(int64_t n, int n_threads)
{
    int64_t useful = n / LR_ROWS_PER_THREAD;
    return useful < 1 ? 1 : (useful < n_threads ? (int)useful : n_threads);
}

/* Bytes of the q x q matrices a fit holds: (q+1)^2 doubles per partial Hessian
 * (n_chunks of them) and two more for the Newton system (H and its factor). In double:
 * exact enough for a message, and no overflow for any q. */
double prop_logreg_square_bytes(int64_t q, int n_chunks)
{
    double m = (double)q + 1.0;
    return 8.0 * m * m * ((double)n_chunks + 2.0);
}

/* The out-of-memory error of the (q+1)^2 allocations, with the figure. */
static prop_status lr_square_nomem(prop_error *err, const char *what, int64_t q, int n_chunks)
{
    return prop_fail(err, PROP_NOMEM,
                     "logreg: out of memory for %s: %lld features need about %.3g GB, and "
                     "memory grows with the square of the number of features (8 x (features "
                     "+ 1)^2 bytes per matrix, %d matrices); use fewer features",
                     what, (long long)q, prop_logreg_square_bytes(q, n_chunks) / 1e9,
                     n_chunks + 2);
}

static prop_status work_init(lr_work *wk, const double *Z, const double *w, int64_t n,
                             int64_t q, int n_threads, prop_error *err)
{
    memset(wk, 0, sizeof(*wk));
    wk->Z = Z;
    wk->w = w;
    wk->n = n;
    wk->q = q;
    wk->n_threads = lr_useful_threads(n, n_threads);
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
        int chunks = wk->n_chunks;
        work_free(wk);
        return lr_square_nomem(err, "the solver workspace", q, chunks);
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
    prop_openblas_set_num_threads(1); /* see blas_shim.h */
    lr_matvec(&wk, beta, b, eta);
    lr_grad_hess(&wk, eta, loss, grad, hess);
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

/* Scratch of the coordinate descent's feature-sign steps (cd_polish): m indices and
 * flags, two m x m matrices, two m vectors. */
typedef struct {
    int64_t *act;
    unsigned char *in;
    double *Hs, *Ls, *rhs, *x;
} lr_cd_scratch;

/* The minimum-norm subgradient of g.d + d'Hd/2 + lam1 * sum_{j<q} |beta_j + d_j| at d
 * (Hd = H d): the stopping rule of the coordinate descent. */
static double cd_worst(const double *H, const double *g, const double *beta, int64_t q,
                       double lam1, const double *d, const double *Hd)
{
    int64_t m = q + 1;
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
    return worst;
}

/* Feature-sign steps (Lee et al., "Efficient sparse coding algorithms", 2007) from the
 * descent's d: with A the coordinates off zero (beta_j + d_j != 0; the intercept
 * always; never one the descent does not move, H_jj <= 0) and their signs fixed, the
 * model is a smooth quadratic whose minimiser over A solves H_AA x = -(g_A + lam1
 * sign_A + H_A,rest d_rest) (Cholesky). d moves towards x until the first coordinate
 * of A reaches zero, which then leaves A, and again, until x keeps every sign. Each
 * step lowers the model, so d (and Hd = H d) are always replaced by a point at least
 * as good. Returns 1 when that point meets inner_tol by cd_worst (the descent is
 * done), else 0 (it goes on from there: a coordinate may have to join A). On models
 * of correlated features (interactions of binary columns) cyclic descent needs
 * thousands of sweeps where these steps finish once the signs are right. */
static int cd_polish(const double *H, const double *g, const double *beta, int64_t q,
                     double lam1, double inner_tol, double *d, double *Hd, lr_cd_scratch *s)
{
    int64_t m = q + 1;
    for (int64_t step = 0; step <= m; step++) {
        int64_t na = 0;
        for (int64_t j = 0; j < m; j++) {
            s->in[j] = H[j * m + j] > 0.0 && (j == q || beta[j] + d[j] != 0.0);
            if (s->in[j])
                s->act[na++] = j;
        }
        if (na == 0)
            break;
        for (int64_t a = 0; a < na; a++) {
            int64_t j = s->act[a];
            double r = g[j];
            if (j < q)
                r += beta[j] + d[j] > 0.0 ? lam1 : -lam1;
            for (int64_t k = 0; k < m; k++)
                if (!s->in[k])
                    r += H[j * m + k] * d[k];
            s->rhs[a] = -r;
            for (int64_t c = 0; c < na; c++)
                s->Hs[a * na + c] = H[j * m + s->act[c]];
        }
        if (cholesky_solve(s->Hs, na, s->rhs, s->x, s->Ls) != 0)
            break; /* singular on A: the descent goes on */
        double t = 1.0;
        int64_t hit = -1;
        for (int64_t a = 0; a < na; a++) {
            int64_t j = s->act[a];
            if (!isfinite(s->x[a]))
                return 0;
            double u0 = beta[j] + d[j], u1 = beta[j] + s->x[a];
            if (j < q && !(u0 * u1 > 0.0)) { /* the sign would change: stop at zero */
                double tj = u0 / (u0 - u1);
                if (tj < t) {
                    t = tj;
                    hit = j;
                }
            }
        }
        for (int64_t a = 0; a < na; a++) {
            int64_t j = s->act[a];
            d[j] += t * (s->x[a] - d[j]);
        }
        if (hit >= 0)
            d[hit] = -beta[hit]; /* exactly at zero: it leaves A */
        else
            break;
    }
    for (int64_t j = 0; j < m; j++) {
        double acc = 0.0;
        for (int64_t k = 0; k < m; k++)
            acc += H[j * m + k] * d[k];
        Hd[j] = acc;
    }
    return cd_worst(H, g, beta, q, lam1, d, Hd) <= inner_tol;
}

#define LR_POLISH_EVERY 8 /* sweeps between attempts to finish exactly */

/* Minimise g.d + d'Hd/2 + lam1 * sum_{j<q} |beta_j + d_j| over d by cyclic
 * coordinate descent (the intercept, index q, is not penalised), finished exactly by
 * cd_polish once the signs settle, until the minimum-norm subgradient of this model
 * is at most inner_tol. Hd is m scratch. */
static void cd_quadratic(const double *H, const double *g, const double *beta, int64_t q,
                         double lam1, double inner_tol, double *d, double *Hd,
                         lr_cd_scratch *s)
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
        if (cd_worst(H, g, beta, q, lam1, d, Hd) <= inner_tol)
            break;
        if (sweep % LR_POLISH_EVERY == LR_POLISH_EVERY - 1 &&
            cd_polish(H, g, beta, q, lam1, inner_tol, d, Hd, s))
            break;
    }
}

/* ------------------------------------------------------------------ */
/* Data: validation                                                    */
/* ------------------------------------------------------------------ */

/* Sizes, pointers, finite non-negative weights, two labels with positive weight,
 * finite X. On success W0 / W1 are the total loss weights of each label and SW the
 * total scale weight. */
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

/* ------------------------------------------------------------------ */
/* Data: standardisation                                               */
/* ------------------------------------------------------------------ */

/* Columns whose largest |x| (over the rows with a positive scale weight) lies in
 * [2^-LR_SAFE_EXP, 2^LR_SAFE_EXP] are used as they are. Any other column is first
 * multiplied by 2^-e, e = ilogb(max |x|), which brings its largest magnitude into
 * [1, 2): without that, the squares in its spread overflow (|x| >= ~1e154) or
 * underflow (|x| <= ~1e-160) and the column would be taken for a constant. A power
 * of two is exact, so ordinary columns (e = 0) are untouched, bit for bit. */
#define LR_SAFE_EXP 256

static inline double xval(const prop_logreg_data *d, int64_t i, int64_t j)
{
    return d->X_f64 ? d->X_f64[i * d->n_features + j]
                    : (double)d->X_u8[i * d->n_features + j];
}

static inline double sweight(const prop_logreg_data *d, int64_t i)
{
    return d->scale_weights ? d->scale_weights[i] : d->weights[2 * i] + d->weights[2 * i + 1];
}

static inline double pow2_scale(double x, int e) /* x * 2^e, exact in range */
{
    return e ? ldexp(x, e) : x;
}

/* The standardised problem: z_ij = (x_ij * 2^-expo[j] - mean[j]) / scale[j] for the
 * q active (non-constant) columns. mean and scale are on the prescaled column. */
typedef struct {
    int64_t n, p, q;
    int64_t *active; /* q column indices */
    int *expo;       /* p prescaling exponents (0 for ordinary columns) */
    double *mean;    /* p centring (0 without intercept) */
    double *scale;   /* p divisor (0 for constant columns) */
    double *Z;       /* n x q, row-major (at least n entries) */
} lr_standard;

static void standard_free(lr_standard *s)
{
    free(s->active);
    free(s->expo);
    free(s->mean);
    free(s->scale);
    free(s->Z);
    memset(s, 0, sizeof(*s));
}

/* expo[j] per column (see LR_SAFE_EXP); `amax` is p scratch. uint8 columns never need it. */
static void column_exponents(const prop_logreg_data *d, int *expo, double *amax)
{
    const int64_t n = d->n_rows, p = d->n_features;
    for (int64_t j = 0; j < p; j++) {
        expo[j] = 0;
        amax[j] = 0.0;
    }
    if (d->X_f64 == NULL)
        return;
    for (int64_t i = 0; i < n; i++) {
        if (!(sweight(d, i) > 0.0))
            continue;
        const double *x = d->X_f64 + i * p;
        for (int64_t j = 0; j < p; j++)
            amax[j] = fmax(amax[j], fabs(x[j]));
    }
    const double lo = ldexp(1.0, -LR_SAFE_EXP), hi = ldexp(1.0, LR_SAFE_EXP);
    for (int64_t j = 0; j < p; j++)
        if (amax[j] > 0.0 && (amax[j] < lo || amax[j] > hi))
            expo[j] = ilogb(amax[j]);
}

/* Weighted mean / scale per prescaled column (serial: a fixed summation order). */
static prop_status standardise_stats(const prop_logreg_data *d, int fit_intercept, double SW,
                                     lr_standard *s, prop_error *err)
{
    const int64_t n = d->n_rows, p = d->n_features;
    double *mean = s->mean, *scale = s->scale;
    const int *expo = s->expo;
    unsigned char *varies = calloc((size_t)p, 1);
    double *first = malloc(sizeof(double) * (size_t)p);
    if (varies == NULL || first == NULL) {
        free(varies);
        free(first);
        return prop_fail(err, PROP_NOMEM, "logreg: out of memory");
    }
    column_exponents(d, s->expo, first);
    for (int64_t j = 0; j < p; j++) {
        mean[j] = 0.0;
        scale[j] = 0.0;
    }
    if (fit_intercept) {
        for (int64_t i = 0; i < n; i++) {
            double w = sweight(d, i);
            if (w > 0.0)
                for (int64_t j = 0; j < p; j++)
                    mean[j] += w * pow2_scale(xval(d, i, j), -expo[j]);
        }
        for (int64_t j = 0; j < p; j++)
            mean[j] /= SW;
    }
    /* constant columns: every row with positive weight has the same value
     * (without intercept: the value 0) */
    int have_first = 0;
    for (int64_t i = 0; i < n; i++) {
        double w = sweight(d, i);
        if (!(w > 0.0))
            continue;
        for (int64_t j = 0; j < p; j++) {
            double x = xval(d, i, j), c = pow2_scale(x, -expo[j]) - mean[j];
            scale[j] += w * c * c;
            if (!fit_intercept)
                varies[j] |= (x != 0.0);
            else if (!have_first)
                first[j] = x;
            else
                varies[j] |= (x != first[j]);
        }
        have_first = 1;
    }
    prop_status st = PROP_OK;
    for (int64_t j = 0; j < p; j++) {
        double sc = sqrt(scale[j] / SW);
        if (!varies[j]) {
            scale[j] = 0.0;
        } else if (!(sc > 0.0) || !isfinite(sc)) { /* only with extreme scale weights */
            st = prop_fail(err, PROP_INVALID_ARG,
                           "logreg: column %lld varies but its weighted standard deviation is "
                           "not representable (%g); rescale the column or the weights",
                           (long long)j, pow2_scale(sc, expo[j]));
            break;
        } else {
            scale[j] = sc;
        }
    }
    free(varies);
    free(first);
    return st;
}

/* Allocate and fill `s` (statistics, active columns, Z) and the mean / scale outputs. */
static prop_status standardise(const prop_logreg_data *d, int fit_intercept, double SW,
                               int n_threads, lr_standard *s, prop_logreg_result *res,
                               prop_error *err)
{
    const int64_t n = d->n_rows, p = d->n_features;
    memset(s, 0, sizeof(*s));
    s->n = n;
    s->p = p;
    s->active = malloc(sizeof(int64_t) * (size_t)p);
    s->expo = malloc(sizeof(int) * (size_t)p);
    s->mean = malloc(sizeof(double) * (size_t)p);
    s->scale = malloc(sizeof(double) * (size_t)p);
    if (!s->active || !s->expo || !s->mean || !s->scale)
        return prop_fail(err, PROP_NOMEM, "logreg: out of memory");
    prop_status st = standardise_stats(d, fit_intercept, SW, s, err);
    if (st != PROP_OK)
        return st;
    int64_t q = 0;
    for (int64_t j = 0; j < p; j++) {
        res->mean[j] = pow2_scale(s->mean[j], s->expo[j]);
        res->scale[j] = pow2_scale(s->scale[j], s->expo[j]);
        if (s->scale[j] > 0.0 && !(res->scale[j] > 0.0 && isfinite(res->scale[j])))
            return prop_fail(err, PROP_INVALID_ARG,
                             "logreg: column %lld has values too small in magnitude (about "
                             "%g) to standardise; rescale it",
                             (long long)j, ldexp(1.0, s->expo[j]));
        if (s->scale[j] > 0.0)
            s->active[q++] = j;
    }
    s->q = q;
    s->Z = malloc(sizeof(double) * (size_t)(n * (q > 0 ? q : 1)));
    if (s->Z == NULL)
        return prop_fail(err, PROP_NOMEM, "logreg: out of memory (%lld x %lld standardised rows)",
                         (long long)n, (long long)q);
    if (q > 0) {
        double *Z = s->Z;
        const int64_t *active = s->active;
        const int *expo = s->expo;
        const double *mean = s->mean, *scale = s->scale;
#pragma omp parallel for num_threads(lr_useful_threads(n, n_threads)) schedule(static)
        for (int64_t i = 0; i < n; i++)
            for (int64_t k = 0; k < q; k++) {
                int64_t j = active[k];
                Z[i * q + k] = (pow2_scale(xval(d, i, j), -expo[j]) - mean[j]) / scale[j];
            }
    }
    return PROP_OK;
}

/* ------------------------------------------------------------------ */
/* Objective: F, its gradient and Hessian on the standardised problem  */
/* ------------------------------------------------------------------ */

/* Coefficient vectors have m = q + 1 entries, the intercept last. */
typedef struct {
    lr_work wk; /* Z, loss weights, partial-sum chunks */
    const prop_logreg_params *params;
    int64_t q, m;
    int fit_intercept;
    double lam1, lam2;
    double *eta; /* n: Z beta + b at the current iterate */
    double *dz;  /* n: Z dir + dir_b along the search direction */
    double *g;   /* m: gradient of the loss */
} lr_objective;

static void objective_free(lr_objective *f)
{
    work_free(&f->wk);
    free(f->eta);
    free(f->dz);
    free(f->g);
    memset(f, 0, sizeof(*f));
}

static prop_status objective_init(lr_objective *f, const lr_standard *s,
                                  const prop_logreg_data *d, const prop_logreg_params *params,
                                  prop_error *err)
{
    memset(f, 0, sizeof(*f));
    f->params = params;
    f->q = s->q;
    f->m = s->q + 1;
    f->fit_intercept = params->fit_intercept;
    f->lam2 = (1.0 - params->l1_ratio) / params->C;
    f->lam1 = params->l1_ratio / params->C;
    f->eta = malloc(sizeof(double) * (size_t)s->n);
    f->dz = malloc(sizeof(double) * (size_t)s->n);
    f->g = malloc(sizeof(double) * (size_t)f->m);
    if (!f->eta || !f->dz || !f->g)
        return prop_fail(err, PROP_NOMEM, "logreg: out of memory (%lld x %lld standardised rows)",
                         (long long)s->n, (long long)s->q);
    return work_init(&f->wk, s->Z, d->weights, s->n, s->q, params->n_threads, err);
}

/* F(beta); leaves eta = Z beta + b for objective_grad_hess and the line search. */
static double objective_value(lr_objective *f, const double *beta)
{
    lr_matvec(&f->wk, beta, beta[f->q], f->eta);
    return lr_loss(&f->wk, f->eta, NULL, 0.0) + prop_logreg_penalty(f->params, beta, f->q);
}

/* F(beta + t dir), with dz = Z dir + dir_b set by the caller; trial = beta + t dir. */
static double objective_along(lr_objective *f, const double *beta, const double *dir, double t,
                              double *trial)
{
    for (int64_t j = 0; j < f->m; j++)
        trial[j] = beta[j] + t * dir[j];
    return lr_loss(&f->wk, f->eta, f->dz, t) + prop_logreg_penalty(f->params, trial, f->q);
}

/* At beta (eta current): gs = gradient and H = Hessian of the smooth part (loss + L2),
 * with the intercept frozen (unit row / column, zero gradient) without fit_intercept.
 * Returns the largest entry of the minimum-norm subgradient of F. */
static double objective_grad_hess(lr_objective *f, const double *beta, double *gs, double *H)
{
    const int64_t q = f->q, m = f->m;
    const double lam1 = f->lam1, lam2 = f->lam2;
    double L;
    lr_grad_hess(&f->wk, f->eta, &L, f->g, H);
    for (int64_t j = 0; j < q; j++) {
        gs[j] = f->g[j] + lam2 * beta[j];
        H[j * m + j] += lam2;
    }
    gs[q] = f->fit_intercept ? f->g[q] : 0.0;
    if (!f->fit_intercept) {
        for (int64_t k = 0; k < m; k++)
            H[q * m + k] = H[k * m + q] = 0.0;
        H[q * m + q] = 1.0;
    }
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
    return opt;
}

/* ------------------------------------------------------------------ */
/* Direction step                                                      */
/* ------------------------------------------------------------------ */

/* Solver state; vectors have m entries, matrices m x m. */
typedef struct {
    double *beta, *trial, *gs, *dir, *tmp;
    double *H, *Lc;
    lr_cd_scratch cd;
} lr_newton;

static void newton_free(lr_newton *nw)
{
    free(nw->beta);
    free(nw->trial);
    free(nw->gs);
    free(nw->dir);
    free(nw->tmp);
    free(nw->H);
    free(nw->Lc);
    free(nw->cd.act);
    free(nw->cd.in);
    free(nw->cd.Hs);
    free(nw->cd.Ls);
    free(nw->cd.rhs);
    free(nw->cd.x);
    memset(nw, 0, sizeof(*nw));
}

static prop_status newton_init(lr_newton *nw, int64_t m, int n_chunks, prop_error *err)
{
    nw->beta = calloc((size_t)m, sizeof(double));
    nw->trial = calloc((size_t)m, sizeof(double));
    nw->gs = malloc(sizeof(double) * (size_t)m);
    nw->dir = malloc(sizeof(double) * (size_t)m);
    nw->tmp = malloc(sizeof(double) * (size_t)m);
    nw->H = malloc(sizeof(double) * (size_t)(m * m));
    nw->Lc = malloc(sizeof(double) * (size_t)(m * m));
    lr_cd_scratch *s = &nw->cd;
    s->act = malloc(sizeof(int64_t) * (size_t)m);
    s->in = malloc((size_t)m);
    s->Hs = malloc(sizeof(double) * (size_t)(m * m));
    s->Ls = malloc(sizeof(double) * (size_t)(m * m));
    s->rhs = malloc(sizeof(double) * (size_t)m);
    s->x = malloc(sizeof(double) * (size_t)m);
    if (!nw->beta || !nw->trial || !nw->gs || !nw->dir || !nw->tmp || !nw->H || !nw->Lc ||
        !s->act || !s->in || !s->Hs || !s->Ls || !s->rhs || !s->x)
        return lr_square_nomem(err, "the Newton system", m - 1, n_chunks);
    return PROP_OK;
}

/* Pure L2: dir = -H^-1 gs by Cholesky, adding a growing jitter to the diagonal of H
 * (which is modified) while it is not numerically positive definite. */
static prop_status newton_direction(lr_newton *nw, int64_t m, prop_error *err)
{
    double *H = nw->H;
    for (int64_t j = 0; j < m; j++)
        nw->tmp[j] = -nw->gs[j];
    double jitter = 0.0, diagmax = 0.0;
    for (int64_t j = 0; j < m; j++)
        diagmax = fmax(diagmax, H[j * m + j]);
    for (int attempt = 0; attempt < 12; attempt++) {
        if (attempt > 0) {
            double add = (attempt == 1 ? 1e-12 : 10.0) * (attempt == 1 ? diagmax : jitter);
            for (int64_t j = 0; j < m; j++)
                H[j * m + j] += add - jitter;
            jitter = add;
        }
        if (cholesky_solve(H, m, nw->tmp, nw->dir, nw->Lc) == 0)
            return PROP_OK;
    }
    return prop_fail(err, PROP_INTERNAL, "logreg: the Newton system is singular");
}

/* Elastic net: dir minimises the quadratic model plus the L1 term (coordinate
 * descent), solved inexactly relative to the current outer optimality gap `opt`. */
static void prox_cd_direction(lr_newton *nw, int64_t q, double lam1, double opt, double Wtot)
{
    double inner_tol = 1e-3 * fmin(opt, 1e-3 * Wtot);
    cd_quadratic(nw->H, nw->gs, nw->beta, q, lam1, fmax(inner_tol, 1e-14 * Wtot), nw->dir,
                 nw->tmp, &nw->cd);
}

/* Search direction nw->dir at nw->beta; *pred = the change of F it predicts for the
 * full step (the model's, plus the exact change of the L1 term). */
static prop_status direction_step(const lr_objective *f, lr_newton *nw, double opt, double Wtot,
                                  double *pred, prop_error *err)
{
    const int64_t q = f->q, m = f->m;
    double pr = 0.0;
    if (f->lam1 == 0.0) {
        prop_status st = newton_direction(nw, m, err);
        if (st != PROP_OK)
            return st;
        for (int64_t j = 0; j < m; j++)
            pr += nw->gs[j] * nw->dir[j];
    } else {
        prox_cd_direction(nw, q, f->lam1, opt, Wtot);
        double l1_old = 0.0, l1_new = 0.0;
        for (int64_t j = 0; j < m; j++)
            pr += nw->gs[j] * nw->dir[j];
        for (int64_t j = 0; j < q; j++) {
            l1_old += fabs(nw->beta[j]);
            l1_new += fabs(nw->beta[j] + nw->dir[j]);
        }
        pr += f->lam1 * (l1_new - l1_old);
    }
    if (!f->fit_intercept)
        nw->dir[q] = 0.0;
    *pred = pr;
    return PROP_OK;
}

/* ------------------------------------------------------------------ */
/* Line search                                                         */
/* ------------------------------------------------------------------ */

/* Backtracking (Armijo) from F = F(beta) along dir, halving t from 1. Returns 1 with
 * nw->trial = the accepted point, 0 if no step passes (the floating-point floor).
 * The slack admits full steps whose effect is below the rounding of F, where Newton
 * steps converge and the Armijo test is noise. */
static int line_search(lr_objective *f, lr_newton *nw, double F, double pred)
{
    lr_matvec(&f->wk, nw->dir, nw->dir[f->q], f->dz);
    double t = 1.0;
    for (int h = 0; h < LR_MAX_HALVINGS; h++, t *= 0.5) {
        double Ft = objective_along(f, nw->beta, nw->dir, t, nw->trial);
        if (isfinite(Ft) && Ft <= F + LR_ARMIJO * t * pred + 1e-13 * fabs(F))
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Fit                                                                 */
/* ------------------------------------------------------------------ */

/* Standardised solution beta -> result, back on the original scale. */
static prop_status write_result(const lr_standard *s, const double *beta, int fit_intercept,
                                prop_logreg_result *res, prop_error *err)
{
    const int64_t q = s->q;
    for (int64_t j = 0; j < s->p; j++)
        res->coef[j] = res->coef_std[j] = 0.0;
    double b = beta[q], b_orig = beta[q];
    for (int64_t k = 0; k < q; k++) {
        int64_t j = s->active[k];
        double c = beta[k] / s->scale[j]; /* per prescaled unit */
        res->coef_std[j] = beta[k];
        res->coef[j] = pow2_scale(c, -s->expo[j]);
        b_orig -= c * s->mean[j];
        if (!isfinite(res->coef[j]))
            return prop_fail(err, PROP_INVALID_ARG,
                             "logreg: the coefficient of column %lld overflows on the original "
                             "scale (values of magnitude about %g); rescale the column",
                             (long long)j, ldexp(1.0, s->expo[j]));
    }
    if (!isfinite(b_orig))
        return prop_fail(err, PROP_INTERNAL, "logreg: non-finite intercept on the original scale");
    res->intercept_std = b;
    res->intercept = fit_intercept ? b_orig : 0.0;
    return PROP_OK;
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
    const double Wtot = W0 + W1;
    lr_standard sd;
    lr_objective obj;
    lr_newton nw;
    memset(&obj, 0, sizeof(obj));
    memset(&nw, 0, sizeof(nw));
    /* OpenBLAS runs single-threaded inside our OpenMP row chunks (blas_shim.h) */
    prop_openblas_set_num_threads(1);
    st = standardise(data, params->fit_intercept, SW, params->n_threads, &sd, res, err);
    if (st == PROP_OK)
        st = objective_init(&obj, &sd, data, params, err);
    if (st == PROP_OK)
        st = newton_init(&nw, sd.q + 1, obj.wk.n_chunks, err);
    if (st != PROP_OK)
        goto done;

    /* start: beta = 0, intercept at the weighted log-odds */
    nw.beta[sd.q] = params->fit_intercept ? log(W1 / W0) : 0.0;
    double F = objective_value(&obj, nw.beta);
    int it = 0, converged = 0;
    for (;; it++) {
        double opt = objective_grad_hess(&obj, nw.beta, nw.gs, nw.H);
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
        double pred;
        st = direction_step(&obj, &nw, opt, Wtot, &pred, err);
        if (st != PROP_OK)
            goto done;
        /* no descent left at this precision, or stalled at the floating-point floor */
        if (!(pred < 0.0) || !line_search(&obj, &nw, F, pred)) {
            converged = 1;
            break;
        }
        memcpy(nw.beta, nw.trial, sizeof(double) * (size_t)obj.m);
        F = objective_value(&obj, nw.beta);
    }
    st = write_result(&sd, nw.beta, params->fit_intercept, res, err);
    res->objective = F;
    res->n_iter = it;
    res->converged = converged;

done:
    newton_free(&nw);
    objective_free(&obj);
    standard_free(&sd);
    return st;
}
