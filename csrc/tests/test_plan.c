/* test_plan.c - the feature plan (plan.h) and the block scorer (predict.h): each fast
 * kernel against its plain reference, bit for bit, for any thread count. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/plan.h"
#include "propensity/predict.h"

/* ---- a random plan over random encoded inputs -------------------------------------- */

enum { N_BIN = 5, N_NUM = 3, N_CAT = 2, N_CATS = 4 };
#define N_INPUTS (N_BIN + N_NUM + N_CAT)

typedef struct {
    int32_t op[64];
    int64_t col[64], src_start[65], src[256];
    double level[64];
    prop_plan plan;
    double edges[64 * PROP_BINS_EDGE_STRIDE];
    int32_t n_edges[64];
    prop_bins_edges ed;
} plan_case;

/* Inputs: binary 0/1, numbers (some NaN, some -0.0), category codes -1 .. N_CATS-1. */
static double *random_inputs(int64_t n)
{
    double *E = malloc((size_t)(n > 0 ? n : 1) * N_INPUTS * sizeof *E);
    for (int64_t i = 0; i < n; i++) {
        double *r = E + i * N_INPUTS;
        for (int j = 0; j < N_BIN; j++)
            r[j] = (double)(check_rand() % 2);
        for (int j = N_BIN; j < N_BIN + N_NUM; j++) {
            uint64_t u = check_rand() % 50;
            r[j] = u == 0 ? NAN : u == 1 ? -0.0 : (check_uniform() - 0.3) * 100.0;
        }
        for (int j = N_BIN + N_NUM; j < N_INPUTS; j++)
            r[j] = (double)((int)(check_rand() % (N_CATS + 1)) - 1);
    }
    return E;
}

/* The schema-like part (copies, one-hot columns), then products and sums of earlier
 * features; edges: 0.5 for 0/1 features, else random sorted ones (0 .. 254 of them). */
static void make_plan(plan_case *c, int with_derived)
{
    int F = 0;
    int64_t ns = 0;
    c->src_start[0] = 0;
    for (int j = 0; j < N_BIN + N_NUM; j++) {
        c->op[F] = PROP_FEAT_COPY;
        c->col[F] = j;
        c->level[F] = 0.0;
        c->src_start[++F] = ns;
    }
    for (int j = N_BIN + N_NUM; j < N_INPUTS; j++)
        for (int k = 0; k < N_CATS; k++) {
            c->op[F] = PROP_FEAT_ONEHOT;
            c->col[F] = j;
            c->level[F] = (double)k;
            c->src_start[++F] = ns;
        }
    int base = F;
    if (with_derived)
        for (int d = 0; d < 8; d++) {
            int prod = d % 2 == 0;
            int k = prod ? 2 : 2 + (int)(check_rand() % 4);
            c->op[F] = prod ? PROP_FEAT_PROD : PROP_FEAT_SUM;
            c->col[F] = 0;
            c->level[F] = 0.0;
            for (int s = 0; s < k; s++)
                c->src[ns++] = (int64_t)(check_rand() % (uint64_t)(d < 4 ? base : F));
            c->src_start[++F] = ns;
        }
    c->plan = (prop_plan){N_INPUTS, F, c->op, c->col, c->level, c->src_start, c->src};
    for (int f = 0; f < F; f++) {
        double *e = c->edges + f * PROP_BINS_EDGE_STRIDE;
        for (int t = 0; t < PROP_BINS_EDGE_STRIDE; t++)
            e[t] = NAN;
        int binary = (f < N_BIN) || (f >= N_BIN + N_NUM && f < base);
        if (binary) {
            e[0] = 0.5;
            c->n_edges[f] = 1;
            continue;
        }
        int k = (int)(check_rand() % 255);
        double x = -40.0;
        for (int t = 0; t < k; t++) {
            x += 0.01 + check_uniform() * 1.5;
            e[t] = x;
        }
        c->n_edges[f] = k;
    }
    c->ed = (prop_bins_edges){F, c->edges, c->n_edges};
}

static void test_plan_check(void)
{
    plan_case c;
    make_plan(&c, 1);
    prop_error err;
    CHECK(prop_plan_check(&c.plan, &err) == PROP_OK);
    prop_plan bad = c.plan;
    int32_t op[64];
    int64_t col[64], src[256], ss[65];
    double level[64];
    memcpy(op, c.op, sizeof op);
    memcpy(col, c.col, sizeof col);
    memcpy(src, c.src, sizeof src);
    memcpy(ss, c.src_start, sizeof ss);
    memcpy(level, c.level, sizeof level);
    bad.op = op;
    bad.col = col;
    bad.src = src;
    bad.src_start = ss;
    bad.level = level;
    op[1] = 7;
    CHECK(prop_plan_check(&bad, &err) == PROP_INVALID_ARG && strstr(err.msg, "unknown op"));
    op[1] = c.op[1];
    col[0] = N_INPUTS;
    CHECK(prop_plan_check(&bad, &err) == PROP_INVALID_ARG && strstr(err.msg, "input column"));
    col[0] = c.col[0];
    int f = (int)c.plan.n_features - 1;
    src[ss[f]] = f;
    CHECK(prop_plan_check(&bad, &err) == PROP_INVALID_ARG && strstr(err.msg, "earlier"));
    src[ss[f]] = c.src[ss[f]];
    ss[f + 1] = ss[f];
    CHECK(prop_plan_check(&bad, &err) == PROP_INVALID_ARG && strstr(err.msg, "no source"));
    ss[f + 1] = c.src_start[f + 1];
    level[N_BIN + N_NUM] = NAN;
    CHECK(prop_plan_check(&bad, &err) == PROP_INVALID_ARG && strstr(err.msg, "level"));
    level[N_BIN + N_NUM] = c.level[N_BIN + N_NUM];
    CHECK(prop_plan_check(&bad, &err) == PROP_OK);
    /* inputs of the wrong width, edges of the wrong count, bad thread counts */
    double E[N_INPUTS] = {0};
    prop_bins_data X = {E, 1, N_INPUTS - 1, PROP_BINS_F64};
    uint8_t codes[64];
    double vals[64];
    CHECK(prop_plan_codes(&c.plan, &c.ed, &X, 1, codes, &err) == PROP_INVALID_ARG);
    CHECK(prop_plan_values(&c.plan, &X, 0, 1, vals, &err) == PROP_INVALID_ARG);
    X.n_cols = N_INPUTS;
    prop_bins_edges ed = c.ed;
    ed.n_cols--;
    CHECK(prop_plan_codes(&c.plan, &ed, &X, 1, codes, &err) == PROP_INVALID_ARG);
    CHECK(prop_plan_codes(&c.plan, &c.ed, &X, 0, codes, &err) == PROP_INVALID_ARG);
    CHECK(prop_plan_values(&c.plan, &X, 0, PROP_MAX_THREADS + 1, vals, &err) == PROP_INVALID_ARG);
    CHECK(prop_plan_codes(&c.plan, &c.ed, &X, 2, codes, &err) == PROP_OK);
}

static void test_plan_values_and_codes_match_reference(void)
{
    static const int64_t sizes[] = {0, 1, 7, 511, 512, 513, 3001};
    for (int with_derived = 0; with_derived < 2; with_derived++) {
        plan_case c;
        make_plan(&c, with_derived);
        const int64_t F = c.plan.n_features;
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            int64_t n = sizes[k];
            double *E = random_inputs(n);
            float *E32 = malloc((size_t)(n > 0 ? n : 1) * N_INPUTS * sizeof *E32);
            uint8_t *E8 = malloc((size_t)(n > 0 ? n : 1) * N_INPUTS);
            for (int64_t i = 0; i < n * N_INPUTS; i++) {
                E32[i] = (float)E[i];
                E8[i] = (uint8_t)(E[i] >= 0 && E[i] < 256 ? (int)E[i] : 0);
            }
            prop_bins_data views[3] = {{E, n, N_INPUTS, PROP_BINS_F64},
                                       {E32, n, N_INPUTS, PROP_BINS_F32},
                                       {E8, n, N_INPUTS, PROP_BINS_U8}};
            size_t m = (size_t)(n > 0 ? n : 1) * (size_t)F;
            double *va = malloc(m * sizeof *va), *vb = malloc(m * sizeof *vb);
            uint8_t *ua = malloc(m), *ub = malloc(m), *ca = malloc(m), *cb = malloc(m);
            prop_error err;
            for (int v = 0; v < 3; v++) {
                CHECK(prop_plan_values_ref(&c.plan, &views[v], 0, vb, &err) == PROP_OK);
                CHECK(prop_plan_values_ref(&c.plan, &views[v], 1, ub, &err) == PROP_OK);
                CHECK(prop_plan_codes_ref(&c.plan, &c.ed, &views[v], cb, &err) == PROP_OK);
                for (int nt = 1; nt <= 3; nt++) {
                    memset(va, 0xAB, m * sizeof *va);
                    CHECK(prop_plan_values(&c.plan, &views[v], 0, nt, va, &err) == PROP_OK);
                    CHECK(memcmp(va, vb, (size_t)(n * F) * sizeof *va) == 0);
                    CHECK(prop_plan_values(&c.plan, &views[v], 1, nt, ua, &err) == PROP_OK);
                    CHECK(memcmp(ua, ub, (size_t)(n * F)) == 0);
                    CHECK(prop_plan_codes(&c.plan, &c.ed, &views[v], nt, ca, &err) == PROP_OK);
                    CHECK(memcmp(ca, cb, (size_t)(n * F)) == 0);
                }
            }
            /* a feature value's code is its bin code, NaN the missing bin */
            for (int64_t i = 0; i < n; i++)
                for (int64_t f = 0; f < F; f++) {
                    double x = vb[i * F + f];
                    uint8_t want = 0;
                    if (isnan(x))
                        want = PROP_MISSING_BIN;
                    else
                        for (int t = 0; t < c.n_edges[f]; t++)
                            want += c.edges[f * PROP_BINS_EDGE_STRIDE + t] < x;
                    CHECK(cb[i * F + f] == want);
                }
            if (n > 0) { /* the values themselves: a one-hot column and a product */
                double *row = E + (n - 1) * N_INPUTS, *out = vb + (n - 1) * F;
                CHECK(out[N_BIN + N_NUM + 1] == (row[N_BIN + N_NUM] == 1.0 ? 1.0 : 0.0));
                if (with_derived) {
                    int64_t f = N_BIN + N_NUM + N_CAT * N_CATS, a = c.src[c.src_start[f]],
                            b = c.src[c.src_start[f] + 1];
                    CHECK(memcmp(&out[f], &(double){out[a] * out[b]}, sizeof(double)) == 0 ||
                          (isnan(out[f]) && isnan(out[a] * out[b])));
                }
            }
            free(E);
            free(E32);
            free(E8);
            free(va);
            free(vb);
            free(ua);
            free(ub);
            free(ca);
            free(cb);
        }
    }
}

/* ---- random forests ------------------------------------------------------------------ */

typedef struct {
    int64_t tree_start[65];
    int32_t feature[100000], left[100000], right[100000];
    uint8_t threshold[100000];
    double value[100000], count[100000], gain[100000];
    prop_forest_view v;
} forest_case;

/* One subtree in preorder from node k (children after their parent); returns the next
 * free node. Splits on a random feature with a threshold below its bin count. */
static int64_t grow(forest_case *fc, int64_t s, int64_t k, int depth, int max_depth, int32_t p,
                    const int *n_bins, double count)
{
    int64_t i = s + k;
    fc->value[i] = check_uniform() * 2.0 - 1.0;
    fc->count[i] = count;
    fc->gain[i] = 0.0;
    int split = depth < max_depth && (depth < 2 || check_rand() % 10 < 8);
    if (!split) {
        fc->left[i] = fc->right[i] = -1;
        fc->feature[i] = 0;
        fc->threshold[i] = 0;
        return k + 1;
    }
    int32_t f = (int32_t)(check_rand() % (uint64_t)p);
    fc->feature[i] = f;
    fc->threshold[i] = (uint8_t)(check_rand() % (uint64_t)(n_bins[f] > 1 ? n_bins[f] - 1 : 1));
    if (check_rand() % 16 == 0) /* at or past the feature's codes: only missing goes right */
        fc->threshold[i] = (uint8_t)(check_rand() % PROP_MISSING_BIN);
    fc->gain[i] = check_uniform();
    double share = 0.2 + 0.6 * check_uniform();
    fc->left[i] = (int32_t)(k + 1);
    int64_t next = grow(fc, s, k + 1, depth + 1, max_depth, p, n_bins, count * share);
    fc->right[i] = (int32_t)next;
    return grow(fc, s, next, depth + 1, max_depth, p, n_bins, count * (1.0 - share));
}

static void make_forest(forest_case *fc, int n_trees, int max_depth, int32_t p, const int *n_bins)
{
    fc->tree_start[0] = 0;
    for (int t = 0; t < n_trees; t++) {
        int d = max_depth <= 0 ? 0 : 1 + (int)(check_rand() % (uint64_t)max_depth);
        if (t == 0)
            d = max_depth; /* one tree as deep as asked */
        int64_t m = grow(fc, fc->tree_start[t], 0, 0, d, p, n_bins, 1000.0);
        fc->tree_start[t + 1] = fc->tree_start[t] + m;
    }
    fc->v = (prop_forest_view){n_trees, fc->tree_start, fc->tree_start[n_trees], fc->feature,
                               fc->threshold, fc->left, fc->right, fc->value, fc->count, fc->gain,
                               p, NULL};
}

static uint8_t *random_codes(int64_t n, int32_t p, const int *n_bins)
{
    uint8_t *c = malloc((size_t)(n > 0 ? n : 1) * (size_t)p);
    for (int64_t i = 0; i < n * p; i++) {
        int f = (int)(i % p);
        c[i] = check_rand() % 20 == 0 ? PROP_MISSING_BIN
                                      : (uint8_t)(check_rand() % (uint64_t)n_bins[f]);
    }
    return c;
}

static int same_bits(const double *a, const double *b, int64_t n)
{
    return n == 0 || memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

static void test_block_scorer_matches_reference(void)
{
    static const int64_t sizes[] = {0, 1, 63, 64, 65, 256, 257, 700, 2049};
    static const int kernels[] = {PROP_SCORE_AUTO, PROP_SCORE_LANES, PROP_SCORE_BLOCK,
                                  PROP_SCORE_BLOCK_PLAIN};
    const int32_t p = 11;
    int n_bins[11];
    for (int f = 0; f < p; f++)
        n_bins[f] = f < 4 ? 2 : f < 7 ? 7 : 255;
    forest_case *fc = malloc(sizeof *fc);
    for (int depth = 0; depth <= PROP_BLOCK_MAX_DEPTH; depth++) {
        make_forest(fc, depth >= 7 ? 6 : 20, depth, p, n_bins);
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            int64_t n = sizes[k];
            uint8_t *codes = random_codes(n, p, n_bins);
            double *ref = malloc((size_t)(n + 1) * sizeof *ref);
            double *out = malloc((size_t)(n + 1) * sizeof *out);
            for (int variant = 0; variant < 6; variant++) {
                prop_score_params sp = {0, 0, 0.0, variant % 2, 0.25, 1, 0, 0};
                if (variant == 2)
                    sp.n_trees = 3;
                if (variant == 3)
                    sp.max_depth = 2;
                if (variant == 4)
                    sp.min_samples_split = 300.0;
                if (variant == 5)
                    sp.positive_proba = 1;
                if (variant == 1)
                    sp.positive_proba = 1; /* the logistic of boosting */
                prop_error err;
                CHECK(prop_forest_score_ref(&fc->v, &sp, codes, n, p, ref, &err) == PROP_OK);
                CHECK(prop_forest_block_ok(&fc->v, &sp) == 1);
                for (size_t q = 0; q < sizeof kernels / sizeof *kernels; q++)
                    for (int nt = 1; nt <= 3; nt++) {
                        sp.kernel = kernels[q];
                        sp.n_threads = nt;
                        memset(out, 0xCD, (size_t)(n + 1) * sizeof *out);
                        prop_status st = prop_forest_score(&fc->v, &sp, codes, n, p, out, &err);
                        CHECK(st == PROP_OK);
                        if (st != PROP_OK)
                            fprintf(stderr, "  %s\n", err.msg);
                        if (!same_bits(out, ref, n))
                            fprintf(stderr, "  depth %d n %lld variant %d kernel %d threads %d\n",
                                    depth, (long long)n, variant, kernels[q], nt);
                        CHECK(same_bits(out, ref, n));
                    }
            }
            free(codes);
            free(ref);
            free(out);
        }
    }
    free(fc);
}

static void test_deep_trees_take_the_lane_walk(void)
{
    const int32_t p = 5;
    int n_bins[5] = {2, 2, 30, 255, 255};
    forest_case *fc = malloc(sizeof *fc);
    make_forest(fc, 4, 11, p, n_bins);
    int64_t n = 900;
    uint8_t *codes = random_codes(n, p, n_bins);
    double *ref = malloc((size_t)n * sizeof *ref), *out = malloc((size_t)n * sizeof *out);
    prop_score_params sp = {0, 0, 0.0, 0, 0.0, 2, PROP_SCORE_AUTO, 0};
    prop_error err;
    CHECK(prop_forest_block_ok(&fc->v, &sp) == 0);
    CHECK(prop_forest_score_ref(&fc->v, &sp, codes, n, p, ref, &err) == PROP_OK);
    CHECK(prop_forest_score(&fc->v, &sp, codes, n, p, out, &err) == PROP_OK);
    CHECK(same_bits(out, ref, n));
    sp.kernel = PROP_SCORE_BLOCK;
    CHECK(prop_forest_score(&fc->v, &sp, codes, n, p, out, &err) == PROP_INVALID_ARG &&
          strstr(err.msg, "levels"));
    /* cut to depth 8, the block scorer takes them and agrees */
    sp.max_depth = PROP_BLOCK_MAX_DEPTH;
    CHECK(prop_forest_block_ok(&fc->v, &sp) == 1);
    CHECK(prop_forest_score_ref(&fc->v, &sp, codes, n, p, ref, &err) == PROP_OK);
    CHECK(prop_forest_score(&fc->v, &sp, codes, n, p, out, &err) == PROP_OK);
    CHECK(same_bits(out, ref, n));
    sp.kernel = 9;
    CHECK(prop_forest_score(&fc->v, &sp, codes, n, p, out, &err) == PROP_INVALID_ARG);
    sp.kernel = 0;
    sp.positive_proba = 2;
    CHECK(prop_forest_score(&fc->v, &sp, codes, n, p, out, &err) == PROP_INVALID_ARG);
    free(codes);
    free(ref);
    free(out);
    free(fc);
}

static void test_score_inputs_matches_reference(void)
{
    static const int64_t sizes[] = {0, 1, 300, 1000, 2500};
    plan_case c;
    make_plan(&c, 1);
    const int32_t p = (int32_t)c.plan.n_features;
    int n_bins[64];
    for (int f = 0; f < p; f++)
        n_bins[f] = c.n_edges[f] + 1;
    forest_case *fc = malloc(sizeof *fc);
    for (int depth = 3; depth <= 10; depth += 7) { /* the block scorer, then the lane walk */
        make_forest(fc, 30, depth, p, n_bins);
        for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
            int64_t n = sizes[k];
            double *E = random_inputs(n);
            prop_bins_data X = {E, n, N_INPUTS, PROP_BINS_F64};
            double *ref = malloc((size_t)(n + 1) * sizeof *ref);
            double *out = malloc((size_t)(n + 1) * sizeof *out);
            double *via = malloc((size_t)(n + 1) * sizeof *via);
            uint8_t *codes = malloc((size_t)(n + 1) * (size_t)p);
            for (int average = 0; average < 2; average++) {
                prop_score_params sp = {0, 0, 0.0, average, -0.5, 2, 0, 1};
                prop_error err;
                CHECK(prop_forest_score_inputs_ref(&fc->v, &sp, &c.plan, &c.ed, &X, ref, &err) ==
                      PROP_OK);
                /* the same as codes first, then the scorer on them */
                CHECK(prop_plan_codes(&c.plan, &c.ed, &X, 2, codes, &err) == PROP_OK);
                CHECK(prop_forest_score(&fc->v, &sp, codes, n, p, via, &err) == PROP_OK);
                CHECK(same_bits(via, ref, n));
                for (int q = 0; q < 4; q++)
                    for (int nt = 1; nt <= 3; nt += 2) {
                        sp.kernel = q;
                        sp.n_threads = nt;
                        prop_status st =
                            prop_forest_score_inputs(&fc->v, &sp, &c.plan, &c.ed, &X, out, &err);
                        if (depth > PROP_BLOCK_MAX_DEPTH && q >= PROP_SCORE_BLOCK) {
                            CHECK(st == PROP_INVALID_ARG);
                            continue;
                        }
                        CHECK(st == PROP_OK);
                        CHECK(same_bits(out, ref, n));
                    }
            }
            /* a plan whose feature count differs from the trees' */
            prop_score_params sp = {0, 0, 0.0, 1, 0.0, 1, 0, 0};
            prop_error err;
            fc->v.n_features = p - 1;
            CHECK(prop_forest_score_inputs(&fc->v, &sp, &c.plan, &c.ed, &X, out, &err) ==
                  PROP_INVALID_ARG);
            fc->v.n_features = p;
            free(E);
            free(ref);
            free(out);
            free(via);
            free(codes);
        }
    }
    free(fc);
}

int main(void)
{
    RUN(test_plan_check);
    RUN(test_plan_values_and_codes_match_reference);
    RUN(test_block_scorer_matches_reference);
    RUN(test_deep_trees_take_the_lane_walk);
    RUN(test_score_inputs_matches_reference);
    return check_summary("plan");
}
