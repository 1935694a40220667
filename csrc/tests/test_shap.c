/* test_shap.c - path-dependent TreeSHAP against the Shapley formula by enumeration. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/predict.h"
#include "propensity/shap.h"

#define MAX_NODES 4096

typedef struct {
    int64_t n;
    int32_t feature[MAX_NODES], left[MAX_NODES], right[MAX_NODES];
    uint8_t threshold[MAX_NODES];
    double value[MAX_NODES], count[MAX_NODES], gain[MAX_NODES];
    int64_t tree_start[65];
    int64_t n_trees;
} forest;

/* A random tree in preorder (children after their parent): splits on features below
 * n_split (so features >= n_split are never used), codes 0..4 as thresholds, integer
 * counts that add up; features repeat along paths. */
static int64_t grow(forest *F, int64_t s, int depth, int max_depth, int32_t n_split, double cnt)
{
    int64_t k = F->n++;
    int64_t local = k - s;
    F->count[k] = cnt;
    F->value[k] = check_uniform() * 2.0 - 0.5;
    F->gain[k] = 0.0;
    if (depth == max_depth || cnt < 2.0 || check_uniform() < 0.15) {
        F->feature[k] = -1;
        F->left[k] = F->right[k] = -1;
        F->threshold[k] = 0;
        return local;
    }
    F->feature[k] = (int32_t)(check_rand() % (uint64_t)n_split);
    F->threshold[k] = (uint8_t)(check_rand() % 4);
    F->gain[k] = 1.0;
    double cl = 1.0 + (double)(check_rand() % (uint64_t)(cnt - 1.0));
    F->left[k] = (int32_t)grow(F, s, depth + 1, max_depth, n_split, cl);
    F->right[k] = (int32_t)grow(F, s, depth + 1, max_depth, n_split, cnt - cl);
    return local;
}

static void make_forest(forest *F, int64_t n_trees, int max_depth, int32_t n_split)
{
    F->n = 0;
    F->n_trees = n_trees;
    for (int64_t t = 0; t < n_trees; t++) {
        F->tree_start[t] = F->n;
        grow(F, F->n, 0, max_depth, n_split, 50.0 + (double)(check_rand() % 200));
    }
    F->tree_start[n_trees] = F->n;
}

static prop_forest_view view_of(const forest *F, int32_t p)
{
    prop_forest_view v = {F->n_trees, F->tree_start, F->n, F->feature, F->threshold,
                          F->left, F->right, F->value, F->count, F->gain, p, NULL};
    return v;
}

static void make_rows(uint8_t *codes, int64_t n, int32_t p)
{
    for (int64_t i = 0; i < n * p; i++) {
        uint64_t r = check_rand() % 7;
        codes[i] = r == 6 ? PROP_MISSING_BIN : (uint8_t)r;
    }
}

static forest F;

/* The kernel equals enumeration over subsets, for forests and boosting, on deep trees
 * whose features repeat along paths. */
static void test_matches_brute_force(void)
{
    const int32_t p = 6;
    const int64_t n = 40;
    uint8_t codes[40 * 6];
    double fast[40 * 7], slow[40 * 7];
    for (int trial = 0; trial < 12; trial++) {
        make_forest(&F, 1 + trial % 5, 2 + trial % 6, trial % 3 == 0 ? 2 : 5);
        prop_forest_view v = view_of(&F, p);
        make_rows(codes, n, p);
        for (int average = 0; average <= 1; average++) {
            for (int kernel = PROP_SHAP_AUTO; kernel <= PROP_SHAP_LINEAR; kernel++) {
                prop_shap_params sp = {average, 0.3, 2, kernel};
                prop_error err;
                CHECK(prop_forest_shap(&v, &sp, codes, n, p, fast, &err) == PROP_OK);
                CHECK(prop_forest_shap_brute(&v, &sp, codes, n, p, slow, &err) == PROP_OK);
                for (int64_t i = 0; i < n * (p + 1); i++)
                    CHECK_CLOSE(fast[i], slow[i], 1e-12);
            }
        }
    }
}

/* Values plus bias give the score of prop_forest_score; unused features get exactly 0. */
static void test_additivity_and_unused(void)
{
    const int32_t p = 9;
    const int64_t n = 300;
    static uint8_t codes[300 * 9];
    static double phi[300 * 10];
    double score[300];
    make_forest(&F, 40, 6, 6); /* features 6, 7, 8 unused */
    prop_forest_view v = view_of(&F, p);
    make_rows(codes, n, p);
    for (int average = 0; average <= 1; average++) {
        prop_shap_params sp = {average, -0.7, 3, PROP_SHAP_AUTO};
        prop_score_params sc;
        memset(&sc, 0, sizeof sc);
        sc.average = average;
        sc.base = -0.7;
        sc.n_threads = 1;
        prop_error err;
        CHECK(prop_forest_shap(&v, &sp, codes, n, p, phi, &err) == PROP_OK);
        CHECK(prop_forest_score_ref(&v, &sc, codes, n, p, score, &err) == PROP_OK);
        for (int64_t i = 0; i < n; i++) {
            double s = 0.0;
            for (int32_t j = 0; j <= p; j++)
                s += phi[i * (p + 1) + j];
            CHECK_CLOSE(s, score[i], 1e-12);
            for (int32_t j = 6; j < 9; j++)
                CHECK(phi[i * (p + 1) + j] == 0.0);
        }
    }
}

/* The same bits for any thread count, with many rows (blocks of 32) and with few
 * (blocks of 4 rows, or a part of one, so that every thread gets some). */
static void test_threads_identical(void)
{
    const int32_t p = 5;
    static uint8_t codes[500 * 5];
    static double a[500 * 6], b[500 * 6];
    static const int64_t sizes[] = {500, 18, 9, 5, 1};
    make_forest(&F, 30, 7, 5);
    prop_forest_view v = view_of(&F, p);
    make_rows(codes, 500, p);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        const int64_t n = sizes[s];
        for (int kernel = PROP_SHAP_AUTO; kernel <= PROP_SHAP_LINEAR; kernel++) {
            prop_shap_params sp = {0, 0.1, 1, kernel};
            prop_error err;
            CHECK(prop_forest_shap(&v, &sp, codes, n, p, a, &err) == PROP_OK);
            for (int nt = 2; nt <= 5; nt++) {
                sp.n_threads = nt;
                CHECK(prop_forest_shap(&v, &sp, codes, n, p, b, &err) == PROP_OK);
                CHECK(memcmp(a, b, (size_t)(n * (p + 1)) * sizeof *a) == 0);
            }
        }
    }
}

/* A single split by hand: phi = (f(x) - E f) for the one feature. Counts 30 / 10:
 * E = 0.75 * 1 + 0.25 * 5 = 2; a row going right gets 5 - 2 = 3, left 1 - 2 = -1;
 * a child with no cover (count 0) on the row's side is handled. */
static void test_hand_example_and_zero_cover(void)
{
    forest *G = &F;
    G->n = 3;
    G->n_trees = 1;
    G->tree_start[0] = 0;
    G->tree_start[1] = 3;
    int32_t feat[3] = {1, -1, -1}, l[3] = {1, -1, -1}, r[3] = {2, -1, -1};
    double val[3] = {0, 1, 5}, cnt[3] = {40, 30, 10};
    memcpy(G->feature, feat, sizeof feat);
    memcpy(G->left, l, sizeof l);
    memcpy(G->right, r, sizeof r);
    memcpy(G->value, val, sizeof val);
    memcpy(G->count, cnt, sizeof cnt);
    memset(G->threshold, 0, 3);
    memset(G->gain, 0, sizeof(double) * 3);
    prop_forest_view v = view_of(G, 2);
    uint8_t codes[4] = {0, 3, 0, 0};
    double out[6], ref[6];
    prop_shap_params sp = {0, 0.0, 1, PROP_SHAP_RECURSIVE};
    prop_error err;
    CHECK(prop_forest_shap(&v, &sp, codes, 2, 2, out, &err) == PROP_OK);
    CHECK(out[0] == 0.0 && out[3] == 0.0);
    CHECK_CLOSE(out[1], 3.0, 1e-15);
    CHECK_CLOSE(out[2], 2.0, 1e-15);
    CHECK_CLOSE(out[4], -1.0, 1e-15);
    G->count[2] = 0.0; /* right child without cover: E = 1 */
    G->count[0] = 30.0;
    CHECK(prop_forest_shap_brute(&v, &sp, codes, 2, 2, ref, &err) == PROP_OK);
    for (int kernel = PROP_SHAP_AUTO; kernel <= PROP_SHAP_LINEAR; kernel++) {
        sp.kernel = kernel;
        CHECK(prop_forest_shap(&v, &sp, codes, 2, 2, out, &err) == PROP_OK);
        CHECK_CLOSE(out[1], 4.0, 1e-15);
        CHECK_CLOSE(out[2], 1.0, 1e-15);
        CHECK(out[4] == 0.0);
        for (int i = 0; i < 6; i++)
            CHECK_CLOSE(out[i], ref[i], 1e-15);
    }
}

/* A compiled model gives prop_forest_shap's bits; one compiled from other trees is
 * refused. */
static void test_compiled_model(void)
{
    const int32_t p = 5;
    const int64_t n = 300;
    static uint8_t codes[300 * 5];
    static double a[300 * 6], b[300 * 6];
    make_forest(&F, 20, 6, 5);
    prop_forest_view v = view_of(&F, p);
    make_rows(codes, n, p);
    prop_shap_params sp = {1, 0.0, 2, PROP_SHAP_AUTO};
    prop_error err;
    prop_shap_model *md = NULL;
    CHECK(prop_shap_model_new(&v, &md, &err) == PROP_OK && md != NULL);
    CHECK(prop_forest_shap(&v, &sp, codes, n, p, a, &err) == PROP_OK);
    CHECK(prop_forest_shap_model(&v, md, &sp, codes, n, p, b, &err) == PROP_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
    sp.kernel = PROP_SHAP_RECURSIVE;
    CHECK(prop_forest_shap_model(&v, md, &sp, codes, n, p, b, &err) == PROP_INVALID_ARG);
    sp.kernel = PROP_SHAP_AUTO;
    F.value[F.tree_start[3]] += 1.0; /* the same sizes, another value */
    CHECK(prop_forest_shap_model(&v, md, &sp, codes, n, p, b, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "other trees") != NULL);
    prop_shap_model_free(md);
    prop_shap_model_free(NULL);
}

static void test_bad_arguments(void)
{
    make_forest(&F, 2, 3, 3);
    prop_forest_view v = view_of(&F, 3);
    uint8_t codes[3] = {0, 1, 2};
    double out[4];
    prop_error err;
    prop_shap_params sp = {1, 0.0, 0, PROP_SHAP_AUTO};
    CHECK(prop_forest_shap(&v, &sp, codes, 1, 3, out, &err) == PROP_INVALID_ARG);
    sp.n_threads = 1;
    sp.kernel = 7;
    CHECK(prop_forest_shap(&v, &sp, codes, 1, 3, out, &err) == PROP_INVALID_ARG);
    sp.kernel = PROP_SHAP_AUTO;
    CHECK(prop_forest_shap(&v, &sp, codes, 1, 2, out, &err) == PROP_INVALID_ARG);
    F.left[F.tree_start[0]] = 0; /* a cycle */
    CHECK(prop_forest_shap(&v, &sp, codes, 1, 3, out, &err) == PROP_FORMAT);
    CHECK(strlen(err.msg) > 0);
}

/* Trees with more unique features on a path than a table takes (9 and more) are
 * explained without one (the linear walk or the recursion), beside tabled shallow trees
 * in the same forest. */
static void test_deep_trees_mixed_with_tabled(void)
{
    const int32_t p = 16;
    const int64_t n = 6;
    uint8_t codes[6 * 16];
    double fast[6 * 17], slow[6 * 17];
    F.n = 0;
    F.n_trees = 3;
    for (int64_t t = 0; t < 3; t++) {
        F.tree_start[t] = F.n;
        if (t == 1) { /* a chain: one split per feature 0..15, a leaf on each left */
            int64_t s = F.n;
            for (int32_t j = 0; j < 16; j++) {
                int64_t k = F.n;
                F.feature[k] = j;
                F.threshold[k] = (uint8_t)(j % 3);
                F.left[k] = (int32_t)(k - s + 1);
                F.right[k] = (int32_t)(k - s + 2);
                F.count[k] = 1000.0 - 40.0 * j;
                F.value[k] = 0.0;
                F.gain[k] = 1.0;
                k++;
                F.feature[k] = -1;
                F.left[k] = F.right[k] = -1;
                F.threshold[k] = 0;
                F.count[k] = 15.0 + j;
                F.value[k] = 0.1 * j - 0.4;
                F.gain[k] = 0.0;
                F.n += 2;
            }
            int64_t k = F.n++; /* the last right child: a leaf */
            F.feature[k] = -1;
            F.left[k] = F.right[k] = -1;
            F.threshold[k] = 0;
            F.count[k] = 5.0;
            F.value[k] = 1.5;
            F.gain[k] = 0.0;
            /* counts of each split's right side: the rest of the chain */
            for (int64_t a = F.n - 2; a >= s; a--)
                if (F.left[a] >= 0)
                    F.count[a] = F.count[s + F.left[a]] + F.count[s + F.right[a]];
        } else {
            grow(&F, F.n, 0, 4, 6, 300.0);
        }
    }
    F.tree_start[3] = F.n;
    prop_forest_view v = view_of(&F, p);
    make_rows(codes, n, p);
    for (int kernel = PROP_SHAP_AUTO; kernel <= PROP_SHAP_LINEAR; kernel++) {
        prop_shap_params sp = {0, 0.0, 2, kernel};
        prop_error err;
        CHECK(prop_forest_validate(&v, &err) == PROP_OK);
        CHECK(prop_forest_shap(&v, &sp, codes, n, p, fast, &err) == PROP_OK);
        CHECK(prop_forest_shap_brute(&v, &sp, codes, n, p, slow, &err) == PROP_OK);
        for (int64_t i = 0; i < n * (p + 1); i++)
            CHECK_CLOSE(fast[i], slow[i], 1e-12);
    }
}

/* ---- the linear walk against the recursion on deep trees ------------------------- */

#define DEEP_NODES 20000

typedef struct {
    int64_t n;
    int32_t feature[DEEP_NODES], left[DEEP_NODES], right[DEEP_NODES];
    uint8_t threshold[DEEP_NODES];
    double value[DEEP_NODES], count[DEEP_NODES], gain[DEEP_NODES];
    uint64_t cat_bits[4 * DEEP_NODES];
    int64_t tree_start[17];
    int64_t n_trees;
} deep_forest;

static deep_forest DF;

/* A random deep tree in preorder: weighted (real) counts, now and then a child with no
 * cover, categorical splits (a random set of codes 0..253) beside ordered ones, features
 * drawn from 0..n_split - 1 (so they repeat along a path when n_split is small). */
static int64_t grow_deep(deep_forest *F, int64_t s, int depth, int max_depth, int32_t n_split,
                         double cnt, int categorical)
{
    int64_t k = F->n++;
    int64_t local = k - s;
    F->count[k] = cnt;
    F->value[k] = check_uniform() * 2.0 - 0.5;
    F->gain[k] = 0.0;
    memset(F->cat_bits + 4 * k, 0, 4 * sizeof *F->cat_bits);
    if (depth == max_depth || cnt < 1.0 || F->n + 2 >= DEEP_NODES || check_uniform() < 0.04) {
        F->feature[k] = -1;
        F->left[k] = F->right[k] = -1;
        F->threshold[k] = 0;
        return local;
    }
    F->feature[k] = (int32_t)(check_rand() % (uint64_t)n_split);
    if (categorical && check_uniform() < 0.3) {
        F->threshold[k] = PROP_CAT_SPLIT;
        for (int w = 0; w < 4; w++)
            F->cat_bits[4 * k + w] = check_rand();
        F->cat_bits[4 * k + 3] &= ~(3ull << 62); /* never the other or missing code */
    } else {
        F->threshold[k] = (uint8_t)(check_rand() % 5);
    }
    F->gain[k] = 1.0;
    /* a share of the cover to the left; sometimes all of it (the right child has none) */
    double u = check_uniform();
    double share = u < 0.03 ? 1.0 : u < 0.06 ? 0.0 : 0.05 + 0.9 * check_uniform();
    F->left[k] = (int32_t)grow_deep(F, s, depth + 1, max_depth, n_split, cnt * share,
                                    categorical);
    F->right[k] = (int32_t)grow_deep(F, s, depth + 1, max_depth, n_split, cnt * (1.0 - share),
                                     categorical);
    return local;
}

static prop_forest_view deep_view(int64_t n_trees, int max_depth, int32_t n_split, int32_t p,
                                  int categorical)
{
    DF.n = 0;
    DF.n_trees = n_trees;
    for (int64_t t = 0; t < n_trees; t++) {
        DF.tree_start[t] = DF.n;
        grow_deep(&DF, DF.n, 0, max_depth, n_split, 200.0 + 800.0 * check_uniform(),
                  categorical);
    }
    DF.tree_start[n_trees] = DF.n;
    prop_forest_view v = {DF.n_trees, DF.tree_start, DF.n, DF.feature, DF.threshold,
                          DF.left, DF.right, DF.value, DF.count, DF.gain, p,
                          categorical ? DF.cat_bits : NULL};
    return v;
}

static int32_t deepest(const prop_forest_view *v)
{
    static int32_t d[DEEP_NODES];
    int32_t best = 0;
    for (int64_t t = 0; t < v->n_trees; t++) {
        int64_t s = v->tree_start[t];
        d[s] = 0;
        for (int64_t k = s; k < v->tree_start[t + 1]; k++) {
            if (v->left[k] < 0) {
                best = d[k] > best ? d[k] : best;
                continue;
            }
            d[s + v->left[k]] = d[s + v->right[k]] = d[k] + 1;
        }
    }
    return best;
}

/* The linear walk (and AUTO, which takes it for these trees) equals the recursion to
 * 1e-9 on deep trees with repeated features, categorical splits, weights, children
 * without cover and missing codes; values plus bias give prop_forest_score_ref's score;
 * where the trees split on few enough features, enumeration agrees too. */
static void test_linear_matches_recursion_on_deep_trees(void)
{
    const int32_t p = 24;
    const int64_t n = 50;
    static uint8_t codes[50 * 24];
    static double lin[50 * 25], rec[50 * 25], aut[50 * 25], ref[50 * 25];
    double score[50];
    int deep = 0;
    for (int trial = 0; trial < 16; trial++) {
        const int32_t n_split = trial % 4 == 0 ? 3 : trial % 4 == 1 ? 10 : 24;
        prop_forest_view v = deep_view(1 + trial % 4, 12 + trial % 11, n_split, p, trial % 2);
        CHECK(prop_forest_validate(&v, &(prop_error){0}) == PROP_OK);
        deep += deepest(&v) >= 15;
        make_rows(codes, n, p);
        for (int64_t i = 0; i < n * p; i += 7) /* codes of categories past 0..5 too */
            if (codes[i] != PROP_MISSING_BIN)
                codes[i] = (uint8_t)(check_rand() % 254);
        for (int average = 0; average <= 1; average++) {
            prop_shap_params sp = {average, 0.4, 2, PROP_SHAP_LINEAR};
            prop_error err;
            CHECK(prop_forest_shap(&v, &sp, codes, n, p, lin, &err) == PROP_OK);
            sp.kernel = PROP_SHAP_AUTO;
            CHECK(prop_forest_shap(&v, &sp, codes, n, p, aut, &err) == PROP_OK);
            sp.kernel = PROP_SHAP_RECURSIVE;
            CHECK(prop_forest_shap(&v, &sp, codes, n, p, rec, &err) == PROP_OK);
            for (int64_t i = 0; i < n * (p + 1); i++) {
                CHECK_CLOSE(lin[i], rec[i], 1e-9);
                CHECK_CLOSE(aut[i], rec[i], 1e-9);
            }
            if (n_split <= 10) { /* enumeration: 2^10 subsets a tree, on a few rows */
                CHECK(prop_forest_shap_brute(&v, &sp, codes, 6, p, ref, &err) == PROP_OK);
                for (int64_t i = 0; i < 6 * (p + 1); i++)
                    CHECK_CLOSE(lin[i], ref[i], 1e-9);
            }
            prop_score_params sc;
            memset(&sc, 0, sizeof sc);
            sc.average = average;
            sc.base = 0.4;
            sc.n_threads = 1;
            CHECK(prop_forest_score_ref(&v, &sc, codes, n, p, score, &err) == PROP_OK);
            for (int64_t i = 0; i < n; i++) {
                double sum = 0.0;
                for (int32_t j = 0; j <= p; j++)
                    sum += lin[i * (p + 1) + j];
                CHECK_CLOSE(sum, score[i], 1e-9);
            }
        }
    }
    CHECK(deep >= 8); /* the trials did grow deep trees */
}

/* The linear walk gives the same bits for any thread count, a compiled model (AUTO,
 * linear for these trees) those of prop_forest_shap, and a row the same bits whichever
 * rows share its walk. */
static void test_linear_threads_identical(void)
{
    const int32_t p = 20;
    const int64_t n = 150;
    static uint8_t codes[150 * 20];
    static double a[150 * 21], b[150 * 21];
    prop_forest_view v = deep_view(8, 20, 12, p, 1);
    make_rows(codes, n, p);
    for (int kernel = PROP_SHAP_AUTO; kernel <= PROP_SHAP_LINEAR; kernel += 2) {
        prop_shap_params sp = {1, 0.0, 1, kernel};
        prop_error err;
        CHECK(prop_forest_shap(&v, &sp, codes, n, p, a, &err) == PROP_OK);
        for (int nt = 2; nt <= 4; nt++) {
            sp.n_threads = nt;
            CHECK(prop_forest_shap(&v, &sp, codes, n, p, b, &err) == PROP_OK);
            CHECK(memcmp(a, b, sizeof a) == 0);
        }
    }
    prop_shap_model *md = NULL;
    prop_error err;
    CHECK(prop_shap_model_new(&v, &md, &err) == PROP_OK);
    prop_shap_params sp = {1, 0.0, 3, PROP_SHAP_AUTO};
    CHECK(prop_forest_shap_model(&v, md, &sp, codes, n, p, b, &err) == PROP_OK);
    CHECK(memcmp(a, b, sizeof a) == 0);
    /* rows walked beside other rows (shifted groups, a short last group): the same bits */
    for (int64_t skip = 1; skip <= 7; skip += 3) {
        CHECK(prop_forest_shap_model(&v, md, &sp, codes + skip * p, n - skip, p, b, &err) ==
              PROP_OK);
        CHECK(memcmp(a + skip * (p + 1), b, (size_t)((n - skip) * (p + 1)) * sizeof *b) == 0);
    }
    CHECK(prop_forest_shap_model(&v, md, &sp, codes + 100 * p, 1, p, b, &err) == PROP_OK);
    CHECK(memcmp(a + 100 * (p + 1), b, (size_t)(p + 1) * sizeof *b) == 0);
    prop_shap_model_free(md);
}

/* A chain of 70 splits on 70 features: more unique features than the linear walk's
 * quadrature takes (64), so the recursion explains it under any kernel (the same bits).
 * (At this depth the recursion's unwinding loses the additivity, measured: the row that
 * reaches the last leaf sums to about -58 instead of 2.) */
static void test_linear_beyond_its_depth(void)
{
    const int32_t p = 70;
    static uint8_t codes[4 * 70];
    static double a[4 * 71], b[4 * 71];
    DF.n = 0;
    DF.n_trees = 1;
    DF.tree_start[0] = 0;
    for (int32_t j = 0; j < p; j++) { /* node 2j splits on j, its left child 2j+1 a leaf */
        int64_t k = DF.n;
        DF.feature[k] = j;
        DF.threshold[k] = 2;
        DF.left[k] = (int32_t)(k + 1);
        DF.right[k] = (int32_t)(k + 2);
        DF.value[k] = 0.0;
        DF.gain[k] = 1.0;
        DF.feature[k + 1] = -1;
        DF.left[k + 1] = DF.right[k + 1] = -1;
        DF.threshold[k + 1] = 0;
        DF.value[k + 1] = 0.01 * j;
        DF.count[k + 1] = 1.0 + j % 3;
        DF.gain[k + 1] = 0.0;
        DF.n += 2;
    }
    int64_t k = DF.n++;
    DF.feature[k] = -1;
    DF.left[k] = DF.right[k] = -1;
    DF.threshold[k] = 0;
    DF.value[k] = 2.0;
    DF.count[k] = 2.0;
    DF.gain[k] = 0.0;
    for (int64_t a2 = DF.n - 3; a2 >= 0; a2 -= 2)
        DF.count[a2] = DF.count[a2 + 1] + DF.count[a2 + 2];
    DF.tree_start[1] = DF.n;
    prop_forest_view v = {1, DF.tree_start, DF.n, DF.feature, DF.threshold, DF.left,
                          DF.right, DF.value, DF.count, DF.gain, p, NULL};
    make_rows(codes, 4, p);
    for (int32_t j = 0; j < p; j++)
        codes[j] = 4; /* row 0 goes right everywhere: to the last leaf */
    prop_error err;
    CHECK(prop_forest_validate(&v, &err) == PROP_OK);
    prop_shap_params sp = {0, 0.0, 2, PROP_SHAP_RECURSIVE};
    CHECK(prop_forest_shap(&v, &sp, codes, 4, p, a, &err) == PROP_OK);
    for (int kernel = PROP_SHAP_AUTO; kernel <= PROP_SHAP_LINEAR; kernel += 2) {
        sp.kernel = kernel;
        CHECK(prop_forest_shap(&v, &sp, codes, 4, p, b, &err) == PROP_OK);
        CHECK(memcmp(a, b, sizeof a) == 0);
    }
}

int main(void)
{
    RUN(test_matches_brute_force);
    RUN(test_additivity_and_unused);
    RUN(test_threads_identical);
    RUN(test_hand_example_and_zero_cover);
    RUN(test_deep_trees_mixed_with_tabled);
    RUN(test_compiled_model);
    RUN(test_bad_arguments);
    RUN(test_linear_matches_recursion_on_deep_trees);
    RUN(test_linear_threads_identical);
    RUN(test_linear_beyond_its_depth);
    return check_summary("shap");
}
