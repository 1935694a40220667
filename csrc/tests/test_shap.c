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
            for (int kernel = PROP_SHAP_AUTO; kernel <= PROP_SHAP_RECURSIVE; kernel++) {
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

/* The same bits for any thread count. */
static void test_threads_identical(void)
{
    const int32_t p = 5;
    const int64_t n = 500;
    static uint8_t codes[500 * 5];
    static double a[500 * 6], b[500 * 6];
    make_forest(&F, 30, 7, 5);
    prop_forest_view v = view_of(&F, p);
    make_rows(codes, n, p);
    for (int kernel = PROP_SHAP_AUTO; kernel <= PROP_SHAP_RECURSIVE; kernel++) {
        prop_shap_params sp = {0, 0.1, 1, kernel};
        prop_error err;
        CHECK(prop_forest_shap(&v, &sp, codes, n, p, a, &err) == PROP_OK);
        for (int nt = 2; nt <= 5; nt++) {
            sp.n_threads = nt;
            CHECK(prop_forest_shap(&v, &sp, codes, n, p, b, &err) == PROP_OK);
            CHECK(memcmp(a, b, sizeof a) == 0);
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
    for (int kernel = PROP_SHAP_AUTO; kernel <= PROP_SHAP_RECURSIVE; kernel++) {
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

/* Trees with more unique features on a path than a table takes (13 and more) are
 * explained by the recursion, beside tabled shallow trees in the same forest. */
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
    for (int kernel = PROP_SHAP_AUTO; kernel <= PROP_SHAP_RECURSIVE; kernel++) {
        prop_shap_params sp = {0, 0.0, 2, kernel};
        prop_error err;
        CHECK(prop_forest_validate(&v, &err) == PROP_OK);
        CHECK(prop_forest_shap(&v, &sp, codes, n, p, fast, &err) == PROP_OK);
        CHECK(prop_forest_shap_brute(&v, &sp, codes, n, p, slow, &err) == PROP_OK);
        for (int64_t i = 0; i < n * (p + 1); i++)
            CHECK_CLOSE(fast[i], slow[i], 1e-12);
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
    return check_summary("shap");
}
