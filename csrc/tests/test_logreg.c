/* test_logreg.c - logistic regression: kernels vs plain loops, optimality of the
 * solver, compressed == expanded rows, separable data, thread invariance, extreme
 * magnitudes, bad input. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/logreg.h"


static prop_logreg_params default_params(void)
{
    prop_logreg_params p = {.C = 1.0, .l1_ratio = 0.0, .fit_intercept = 1, .max_iter = 100,
                            .tol = 1e-10, .n_threads = 2};
    return p;
}

typedef struct {
    int64_t n, p;
    double *X, *w;
    uint8_t *Xu;
} problem;

/* Binary features with a logistic label; weights (w0, w1) per row. */
static problem make_problem(int64_t n, int64_t p, double wscale)
{
    problem pr = {n, p, malloc(sizeof(double) * n * p), malloc(sizeof(double) * n * 2),
                  malloc((size_t)(n * p))};
    for (int64_t i = 0; i < n; i++) {
        double e = -1.0;
        for (int64_t j = 0; j < p; j++) {
            double x = check_uniform() < 0.3 + 0.05 * (double)j ? 1.0 : 0.0;
            pr.X[i * p + j] = x;
            pr.Xu[i * p + j] = (uint8_t)x;
            e += (j % 2 ? 0.8 : -0.6) * x;
        }
        int y = check_uniform() < 1.0 / (1.0 + exp(-e));
        double s = wscale > 0 ? wscale * (0.5 + check_uniform()) : 1.0;
        pr.w[2 * i] = y ? 0.0 : s;
        pr.w[2 * i + 1] = y ? s : 0.0;
    }
    return pr;
}

static void free_problem(problem *pr)
{
    free(pr->X);
    free(pr->w);
    free(pr->Xu);
}

typedef struct {
    double *coef, *coef_std, *mean, *scale;
    prop_logreg_result r;
} result_buf;

static void result_alloc(result_buf *b, int64_t p)
{
    b->coef = calloc(p, sizeof(double));
    b->coef_std = calloc(p, sizeof(double));
    b->mean = calloc(p, sizeof(double));
    b->scale = calloc(p, sizeof(double));
    memset(&b->r, 0, sizeof(b->r));
    b->r.coef = b->coef;
    b->r.coef_std = b->coef_std;
    b->r.mean = b->mean;
    b->r.scale = b->scale;
}

static void result_free(result_buf *b)
{
    free(b->coef);
    free(b->coef_std);
    free(b->mean);
    free(b->scale);
}

static prop_status fit(const problem *pr, const prop_logreg_params *prm, result_buf *out)
{
    prop_logreg_data d = {pr->n, pr->p, pr->X, NULL, pr->w, NULL};
    prop_error err;
    prop_status st = prop_logreg_fit(prm, &d, &out->r, &err);
    if (st != PROP_OK)
        fprintf(stderr, "fit failed: %s\n", err.msg);
    return st;
}

/* The fast kernel equals the plain loops; thread counts give identical bits. The kernel
 * uses a second thread only past 65536 rows per thread, hence the large case. */
static void check_kernels(int64_t n, double tol_loss, double tol_grad)
{
    int64_t q = 7, m = q + 1;
    double *Z = malloc(sizeof(double) * n * q), *w = malloc(sizeof(double) * n * 2);
    CHECK(Z != NULL && w != NULL);
    if (Z == NULL || w == NULL) {
        free(Z);
        free(w);
        return;
    }
    double beta[7], b = 0.3;
    for (int64_t i = 0; i < n * q; i++)
        Z[i] = 2.0 * check_uniform() - 1.0;
    for (int64_t i = 0; i < n; i++) {
        w[2 * i] = check_uniform();
        w[2 * i + 1] = check_uniform() < 0.3 ? check_uniform() : 0.0;
    }
    for (int j = 0; j < q; j++)
        beta[j] = check_uniform() - 0.5;
    double l_ref, g_ref[8], h_ref[64], l1, g1[8], h1[64], l2, g2[8], h2[64];
    prop_error err;
    CHECK(prop_logreg_loss_grad_hess_ref(Z, n, q, w, beta, b, &l_ref, g_ref, h_ref, &err) == PROP_OK);
    CHECK(prop_logreg_loss_grad_hess(Z, n, q, w, beta, b, 1, &l1, g1, h1, &err) == PROP_OK);
    CHECK(prop_logreg_loss_grad_hess(Z, n, q, w, beta, b, 2, &l2, g2, h2, &err) == PROP_OK);
    CHECK_CLOSE(l1, l_ref, tol_loss);
    for (int64_t j = 0; j < m; j++)
        CHECK_CLOSE(g1[j], g_ref[j], tol_grad);
    for (int64_t j = 0; j < m * m; j++)
        CHECK_CLOSE(h1[j], h_ref[j], tol_grad);
    CHECK(l1 == l2);
    CHECK(memcmp(g1, g2, sizeof(g1)) == 0);
    CHECK(memcmp(h1, h2, sizeof(h1)) == 0);
    /* loss and gradient without the Hessian */
    double l3, g3[8];
    CHECK(prop_logreg_loss_grad_hess(Z, n, q, w, beta, b, 2, &l3, g3, NULL, &err) == PROP_OK);
    CHECK(l3 == l1);
    CHECK(memcmp(g3, g1, sizeof(g1)) == 0);
    /* bad arguments */
    CHECK(prop_logreg_loss_grad_hess(Z, 0, q, w, beta, b, 1, &l1, g1, h1, &err) == PROP_INVALID_ARG);
    CHECK(prop_logreg_loss_grad_hess(Z, n, q, w, beta, b, 0, &l1, g1, h1, &err) == PROP_INVALID_ARG);
    CHECK(prop_logreg_loss_grad_hess(NULL, n, q, w, beta, b, 1, &l1, g1, h1, &err) == PROP_INVALID_ARG);
    free(Z);
    free(w);
}

static void test_kernels_match_reference(void)
{
    check_kernels(9000, 1e-12, 1e-10);    /* several blocks and chunks, one thread used */
    check_kernels(140000, 1e-11, 1e-9);   /* two threads really used */
}

/* Rebuild Z from the fitted mean/scale and check the optimality conditions. */
static double kkt_violation(const problem *pr, const prop_logreg_params *prm, const result_buf *res,
                            double *F_out)
{
    int64_t n = pr->n, p = pr->p, m = p + 1;
    double *Z = malloc(sizeof(double) * n * p), *g = malloc(sizeof(double) * m), L;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < p; j++)
            Z[i * p + j] = res->scale[j] > 0 ? (pr->X[i * p + j] - res->mean[j]) / res->scale[j] : 0.0;
    prop_error err;
    prop_logreg_loss_grad_hess_ref(Z, n, p, pr->w, res->coef_std, res->r.intercept_std, &L, g,
                                   NULL, &err);
    double lam2 = (1 - prm->l1_ratio) / prm->C, lam1 = prm->l1_ratio / prm->C, worst = 0;
    double W = 0;
    for (int64_t i = 0; i < 2 * n; i++)
        W += pr->w[i];
    for (int64_t j = 0; j < p; j++) {
        if (res->scale[j] == 0)
            continue;
        double bj = res->coef_std[j], gj = g[j] + lam2 * bj, v;
        if (bj > 0) v = fabs(gj + lam1);
        else if (bj < 0) v = fabs(gj - lam1);
        else v = fmax(fabs(gj) - lam1, 0);
        worst = fmax(worst, v);
    }
    if (prm->fit_intercept)
        worst = fmax(worst, fabs(g[p]));
    *F_out = L + prop_logreg_penalty(prm, res->coef_std, p);
    free(Z);
    free(g);
    return worst / W;
}

static void test_l2_and_elastic_net_are_optimal(void)
{
    problem pr = make_problem(3000, 6, 1.0);
    double ratios[] = {0.0, 0.5, 1.0};
    double Cs[] = {0.01, 1.0, 100.0};
    for (int a = 0; a < 3; a++)
        for (int c = 0; c < 3; c++) {
            prop_logreg_params prm = default_params();
            prm.l1_ratio = ratios[a];
            prm.C = Cs[c];
            result_buf res;
            result_alloc(&res, pr.p);
            CHECK(fit(&pr, &prm, &res) == PROP_OK);
            CHECK(res.r.converged == 1);
            double F;
            CHECK(kkt_violation(&pr, &prm, &res, &F) < 1e-8);
            CHECK_CLOSE(F, res.r.objective, 1e-9);
            /* original-scale coefficients give the same decision function */
            for (int64_t i = 0; i < 20; i++) {
                double e1 = res.r.intercept, e2 = res.r.intercept_std;
                for (int64_t j = 0; j < pr.p; j++) {
                    e1 += res.coef[j] * pr.X[i * pr.p + j];
                    if (res.scale[j] > 0)
                        e2 += res.coef_std[j] * (pr.X[i * pr.p + j] - res.mean[j]) / res.scale[j];
                }
                CHECK_CLOSE(e1, e2, 1e-10);
            }
            result_free(&res);
        }
    free_problem(&pr);
}

/* Expanded rows with weight 1 == unique rows with summed weights. */
static void test_compressed_equals_expanded(void)
{
    int64_t p = 3, u = 8, copies = 5, n = u * copies;
    problem big = {n, p, malloc(sizeof(double) * n * p), malloc(sizeof(double) * n * 2), NULL};
    problem small = {u, p, calloc(u * p, sizeof(double)), calloc(u * 2, sizeof(double)), NULL};
    for (int64_t k = 0; k < u; k++)
        for (int64_t j = 0; j < p; j++)
            small.X[k * p + j] = (double)((k >> j) & 1);
    for (int64_t i = 0; i < n; i++) {
        int64_t k = i % u;
        memcpy(big.X + i * p, small.X + k * p, sizeof(double) * p);
        int y = check_uniform() < 0.2 + 0.08 * (double)k;
        if (i < 2 * u) y = (int)(i / u); /* every row has both labels at least once */
        big.w[2 * i] = y ? 0.0 : 1.0;
        big.w[2 * i + 1] = y ? 1.0 : 0.0;
        small.w[2 * k] += big.w[2 * i];
        small.w[2 * k + 1] += big.w[2 * i + 1];
    }
    for (int a = 0; a < 2; a++) {
        prop_logreg_params prm = default_params();
        prm.l1_ratio = a ? 0.5 : 0.0;
        prm.C = 0.3;
        result_buf rb, rs;
        result_alloc(&rb, p);
        result_alloc(&rs, p);
        CHECK(fit(&big, &prm, &rb) == PROP_OK);
        CHECK(fit(&small, &prm, &rs) == PROP_OK);
        for (int64_t j = 0; j < p; j++) {
            CHECK_CLOSE(rb.coef[j], rs.coef[j], 1e-8);
            CHECK_CLOSE(rb.mean[j], rs.mean[j], 1e-12);
            CHECK_CLOSE(rb.scale[j], rs.scale[j], 1e-12);
        }
        CHECK_CLOSE(rb.r.intercept, rs.r.intercept, 1e-8);
        CHECK_CLOSE(rb.r.objective, rs.r.objective, 1e-10);
        result_free(&rb);
        result_free(&rs);
    }
    free_problem(&big);
    free(small.X);
    free(small.w);
}

/* Separable data: finite coefficients; weak penalty makes them large but finite. */
static void test_separable_is_finite(void)
{
    int64_t n = 200, p = 2;
    problem pr = {n, p, malloc(sizeof(double) * n * p), malloc(sizeof(double) * n * 2), NULL};
    for (int64_t i = 0; i < n; i++) {
        int y = i % 2;
        pr.X[i * p] = y ? 1.0 + check_uniform() : -1.0 - check_uniform();
        pr.X[i * p + 1] = check_uniform();
        pr.w[2 * i] = y ? 0.0 : 1.0;
        pr.w[2 * i + 1] = y ? 1.0 : 0.0;
    }
    for (int a = 0; a < 2; a++) {
        prop_logreg_params prm = default_params();
        prm.C = 1e4;
        prm.l1_ratio = a ? 0.9 : 0.0;
        prm.max_iter = 500;
        result_buf res;
        result_alloc(&res, p);
        CHECK(fit(&pr, &prm, &res) == PROP_OK);
        CHECK(isfinite(res.coef[0]) && isfinite(res.coef[1]) && isfinite(res.r.intercept));
        CHECK(res.coef[0] > 1.0);
        CHECK(res.r.converged == 1);
        result_free(&res);
    }
    free_problem(&pr);
}

static void test_max_iter_reported(void)
{
    problem pr = make_problem(500, 4, 1.0);
    prop_logreg_params prm = default_params();
    prm.max_iter = 1;
    prm.tol = 0.0;
    result_buf res;
    result_alloc(&res, pr.p);
    CHECK(fit(&pr, &prm, &res) == PROP_OK);
    CHECK(res.r.n_iter == 1);
    CHECK(res.r.converged == 0);
    result_free(&res);
    free_problem(&pr);
}

/* n_threads 1 and 2, float64 and uint8 input: identical bits. */
static void test_threads_and_dtypes_identical(void)
{
    problem pr = make_problem(20000, 5, 2.0);
    for (int a = 0; a < 2; a++) {
        prop_logreg_params prm = default_params();
        prm.l1_ratio = a ? 0.5 : 0.0;
        result_buf r1, r2, r3;
        result_alloc(&r1, pr.p);
        result_alloc(&r2, pr.p);
        result_alloc(&r3, pr.p);
        prm.n_threads = 1;
        CHECK(fit(&pr, &prm, &r1) == PROP_OK);
        prm.n_threads = 2;
        CHECK(fit(&pr, &prm, &r2) == PROP_OK);
        prop_logreg_data du = {pr.n, pr.p, NULL, pr.Xu, pr.w, NULL};
        prop_error err;
        CHECK(prop_logreg_fit(&prm, &du, &r3.r, &err) == PROP_OK);
        CHECK(memcmp(r1.coef, r2.coef, sizeof(double) * pr.p) == 0);
        CHECK(memcmp(r1.coef, r3.coef, sizeof(double) * pr.p) == 0);
        CHECK(r1.r.intercept == r2.r.intercept && r1.r.intercept == r3.r.intercept);
        CHECK(r1.r.n_iter == r2.r.n_iter);
        result_free(&r1);
        result_free(&r2);
        result_free(&r3);
    }
    free_problem(&pr);
}

/* A constant column gets coefficient 0 and scale 0; all-constant X gives the log-odds. */
static void test_constant_columns(void)
{
    int64_t n = 100, p = 2;
    problem pr = {n, p, malloc(sizeof(double) * n * p), malloc(sizeof(double) * n * 2), NULL};
    for (int64_t i = 0; i < n; i++) {
        pr.X[i * p] = 3.0;
        pr.X[i * p + 1] = 3.0;
        int y = i < 25;
        pr.w[2 * i] = y ? 0.0 : 1.0;
        pr.w[2 * i + 1] = y ? 1.0 : 0.0;
    }
    prop_logreg_params prm = default_params();
    result_buf res;
    result_alloc(&res, p);
    CHECK(fit(&pr, &prm, &res) == PROP_OK);
    CHECK(res.coef[0] == 0.0 && res.coef[1] == 0.0 && res.scale[0] == 0.0);
    CHECK_CLOSE(res.r.intercept, log(25.0 / 75.0), 1e-12);
    CHECK(res.r.converged == 1);
    result_free(&res);
    free_problem(&pr);
}

/* Columns of huge or tiny magnitude (|x| >= 1e154 or <= 1e-160 used to overflow or
 * underflow the squares of the spread: scale 0, coefficient 0, converged, silently).
 * A column multiplied by 2^a is prescaled exactly, so the standardised fit is the same
 * bit for bit, and the original-scale outputs are scaled by exactly 2^a / 2^-a. */
static void test_extreme_magnitudes(void)
{
    int64_t n = 300, p = 2;
    problem base = {n, p, malloc(sizeof(double) * n * p), malloc(sizeof(double) * n * 2), NULL};
    problem big = {n, p, malloc(sizeof(double) * n * p), base.w, NULL};
    for (int64_t i = 0; i < n; i++) {
        double x0 = 3.5 * check_uniform() - 1.75, x1 = check_uniform() < 0.5 ? 1.0 : 0.0; /* max |x0| in [1, 2) */
        base.X[i * p] = x0;
        base.X[i * p + 1] = x1;
        int y = check_uniform() < 1.0 / (1.0 + exp(-(0.3 + 1.2 * x0 - 0.7 * x1)));
        base.w[2 * i] = y ? 0.0 : 1.0;
        base.w[2 * i + 1] = y ? 1.0 : 0.0;
    }
    int exps[] = {600, 1000, -600, -1000};
    for (int a = 0; a < 2; a++)
        for (int fi = 0; fi < 2; fi++) {
            prop_logreg_params prm = default_params();
            prm.l1_ratio = a ? 0.5 : 0.0;
            prm.fit_intercept = fi;
            result_buf rb;
            result_alloc(&rb, p);
            CHECK(fit(&base, &prm, &rb) == PROP_OK);
            CHECK(rb.r.converged == 1 && rb.coef[0] != 0.0);
            for (int k = 0; k < 4; k++) {
                int e = exps[k];
                for (int64_t i = 0; i < n; i++) {
                    big.X[i * p] = ldexp(base.X[i * p], e);
                    big.X[i * p + 1] = base.X[i * p + 1];
                }
                result_buf r;
                result_alloc(&r, p);
                CHECK(fit(&big, &prm, &r) == PROP_OK);
                CHECK(r.r.n_iter == rb.r.n_iter && r.r.converged == rb.r.converged);
                CHECK(r.r.objective == rb.r.objective);
                CHECK(r.r.intercept_std == rb.r.intercept_std);
                CHECK(r.r.intercept == rb.r.intercept);
                CHECK(memcmp(r.coef_std, rb.coef_std, sizeof(double) * p) == 0);
                CHECK(r.coef[0] == ldexp(rb.coef[0], -e) && r.coef[1] == rb.coef[1]);
                CHECK(r.scale[0] == ldexp(rb.scale[0], e) && r.mean[0] == ldexp(rb.mean[0], e));
                CHECK(r.scale[1] == rb.scale[1] && r.mean[1] == rb.mean[1]);
                result_free(&r);
            }
            result_free(&rb);
        }
    /* subnormal values: the original-scale coefficient is not representable, an error */
    for (int64_t i = 0; i < n; i++)
        big.X[i * p] = ldexp(base.X[i * p], -1062);
    prop_logreg_params prm = default_params();
    result_buf r;
    result_alloc(&r, p);
    prop_logreg_data d = {n, p, big.X, NULL, big.w, NULL};
    prop_error err;
    CHECK(prop_logreg_fit(&prm, &d, &r.r, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "column 0") != NULL);
    result_free(&r);
    free(big.X);
    free_problem(&base);
}

/* The figure of the out-of-memory message on wide input: (q+1)^2 doubles per partial
 * Hessian plus two for the Newton system, computed without overflow for any q. */
static void test_square_bytes(void)
{
    CHECK(prop_logreg_square_bytes(0, 1) == 24.0);
    CHECK(prop_logreg_square_bytes(100000, 1) == 8.0 * 100001.0 * 100001.0 * 3.0);
    CHECK(prop_logreg_square_bytes(100000, 4) == 8.0 * 100001.0 * 100001.0 * 6.0);
    double huge = prop_logreg_square_bytes(INT64_C(1) << 40, 64);
    CHECK(isfinite(huge) && huge > 1e26);
}

static void test_invalid_arguments(void)
{
    problem pr = make_problem(50, 2, 1.0);
    result_buf res;
    result_alloc(&res, pr.p);
    prop_error err;
    prop_logreg_params bad[8];
    for (int k = 0; k < 8; k++)
        bad[k] = default_params();
    bad[0].C = 0.0;
    bad[1].C = -1.0;
    bad[2].C = NAN;
    bad[3].l1_ratio = -0.1;
    bad[4].l1_ratio = 1.5;
    bad[5].max_iter = 0;
    bad[6].tol = -1.0;
    bad[7].n_threads = 0;
    for (int k = 0; k < 8; k++) {
        CHECK(prop_logreg_check_params(&bad[k], &err) == PROP_INVALID_ARG);
        CHECK(fit(&pr, &bad[k], &res) == PROP_INVALID_ARG);
    }
    CHECK(prop_logreg_check_params(NULL, &err) == PROP_INVALID_ARG);
    prop_logreg_params prm = default_params();
    /* NaN in X names the row and column */
    pr.X[7 * 2 + 1] = NAN;
    prop_logreg_data d = {pr.n, pr.p, pr.X, NULL, pr.w, NULL};
    CHECK(prop_logreg_fit(&prm, &d, &res.r, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "row 7") != NULL);
    pr.X[7 * 2 + 1] = 0.0;
    /* both / neither X */
    d.X_u8 = pr.Xu;
    CHECK(prop_logreg_fit(&prm, &d, &res.r, &err) == PROP_INVALID_ARG);
    d.X_u8 = NULL;
    d.X_f64 = NULL;
    CHECK(prop_logreg_fit(&prm, &d, &res.r, &err) == PROP_INVALID_ARG);
    d.X_f64 = pr.X;
    /* single class, negative weight */
    double *w = malloc(sizeof(double) * pr.n * 2);
    for (int64_t i = 0; i < pr.n; i++) {
        w[2 * i] = 1.0;
        w[2 * i + 1] = 0.0;
    }
    d.weights = w;
    CHECK(prop_logreg_fit(&prm, &d, &res.r, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "single class") != NULL);
    w[1] = 1.0;
    w[4] = -1.0;
    CHECK(prop_logreg_fit(&prm, &d, &res.r, &err) == PROP_INVALID_ARG);
    d.weights = pr.w;
    d.n_rows = 0;
    CHECK(prop_logreg_fit(&prm, &d, &res.r, &err) == PROP_INVALID_ARG);
    d.n_rows = pr.n;
    CHECK(prop_logreg_fit(&prm, &d, NULL, &err) == PROP_INVALID_ARG);
    free(w);
    result_free(&res);
    free_problem(&pr);
}


/* The logreg solver uses a second thread only past 65536 rows per thread: 1 and 2 threads
 * on 140000 rows, L2 and elastic net, give the same bits. */
static void test_logreg_fit_two_threads_really_used(void)
{
    int64_t n = 140000, p = 4;
    double *X = malloc(sizeof(double) * (size_t)(n * p));
    double *w = malloc(sizeof(double) * (size_t)(n * 2));
    CHECK(X != NULL && w != NULL);
    if (X == NULL || w == NULL) {
        free(X);
        free(w);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double e = -0.5;
        for (int64_t j = 0; j < p; j++) {
            X[i * p + j] = check_uniform() < 0.4 ? 1.0 : 0.0;
            e += (j % 2 ? 0.8 : -0.6) * X[i * p + j];
        }
        int y = check_uniform() < 1.0 / (1.0 + exp(-e));
        w[2 * i] = y ? 0.0 : 1.0;
        w[2 * i + 1] = y ? 1.0 : 0.0;
    }
    prop_logreg_data d = {n, p, X, NULL, w, NULL};
    for (int a = 0; a < 2; a++) {
        double c1[4], s1[4], m1[4], k1[4], c2[4], s2[4], m2[4], k2[4];
        prop_logreg_result r1 = {c1, s1, m1, k1, 0, 0, 0, 0, 0};
        prop_logreg_result r2 = {c2, s2, m2, k2, 0, 0, 0, 0, 0};
        prop_logreg_params prm = {.C = 0.5, .l1_ratio = a ? 0.5 : 0.0, .fit_intercept = 1,
                                  .max_iter = 100, .tol = 1e-10, .n_threads = 1};
        prop_error err;
        CHECK(prop_logreg_fit(&prm, &d, &r1, &err) == PROP_OK);
        prm.n_threads = 2;
        CHECK(prop_logreg_fit(&prm, &d, &r2, &err) == PROP_OK);
        CHECK(memcmp(c1, c2, sizeof c1) == 0);
        CHECK(r1.intercept == r2.intercept && r1.objective == r2.objective);
        CHECK(r1.n_iter == r2.n_iter && r1.converged && r2.converged);
    }
    free(X);
    free(w);
}

int main(void)
{
    RUN(test_kernels_match_reference);
    RUN(test_l2_and_elastic_net_are_optimal);
    RUN(test_compressed_equals_expanded);
    RUN(test_separable_is_finite);
    RUN(test_max_iter_reported);
    RUN(test_threads_and_dtypes_identical);
    RUN(test_constant_columns);
    RUN(test_extreme_magnitudes);
    RUN(test_square_bytes);
    RUN(test_invalid_arguments);
    RUN(test_logreg_fit_two_threads_really_used);
    return check_summary("logreg");
}
