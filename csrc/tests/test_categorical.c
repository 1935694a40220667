/* Categorical splits: the sorted scan against every partition, the histogram search
 * against its row references, and every scorer and TreeSHAP against the reference walk
 * on ensembles with categorical nodes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/boost.h"
#include "propensity/forest.h"
#include "propensity/predict.h"
#include "propensity/shap.h"
#include "propensity/tree.h"

static double imp(int criterion, double a, double b)
{
    double w = a + b;
    if (w <= 0.0)
        return 0.0;
    if (criterion == PROP_CRIT_ENTROPY) {
        double e = w * log(w);
        if (a > 0.0)
            e -= a * log(a);
        if (b > 0.0)
            e -= b * log(b);
        return e / log(2.0);
    }
    return w - (a * a + b * b) / w;
}

/* The gain of the left set `mask` (bits of categories) from per-category sums S. */
static double subset_gain(const prop_tree_params *P, const double *S, int k, uint32_t mask,
                          const double *T, int *ok)
{
    double l[3] = {0.0, 0.0, 0.0};
    for (int c = 0; c < k; c++)
        if (mask >> c & 1u)
            for (int u = 0; u < 3; u++)
                l[u] += S[3 * c + u];
    double r[3] = {T[0] - l[0], T[1] - l[1], T[2] - l[2]};
    *ok = l[2] > 0.0 && r[2] > 0.0;
    if (P->mode == PROP_TREE_GRADIENT)
        return 0.5 * (l[0] * l[0] / l[1] + r[0] * r[0] / r[1] - T[0] * T[0] / T[1]);
    return imp(P->criterion, T[0], T[1]) - imp(P->criterion, l[0], l[1]) -
           imp(P->criterion, r[0], r[1]);
}

/* A node of n rows on one categorical feature of k categories: random statistics
 * (forest: integer class weights; boosting: gradient and positive hessian). */
static void random_node(int mode, int k, int64_t n, uint8_t *codes, prop_hstat *st)
{
    for (int64_t i = 0; i < n; i++) {
        int c = (int)(check_rand() % (uint64_t)k);
        codes[i] = (uint8_t)c;
        double bias = (double)((c * 7) % k) / k;
        if (mode == PROP_TREE_GRADIENT) {
            st[i].a = check_uniform() - bias;
            st[i].b = 0.1 + check_uniform();
        } else {
            int y = check_uniform() < bias;
            double w = (double)(1 + check_rand() % 3);
            st[i].a = y ? 0.0 : w;
            st[i].b = y ? w : 0.0;
        }
        st[i].c = 1.0;
    }
}

/* With cat_smooth 0, nothing forced right and no cap, the sorted scan finds the best of
 * all 2^k partitions (binary target: gini, entropy; boosting: squared loss, lambda 0),
 * and the histogram search, the search on rows and the row reference agree. */
static void test_sorted_scan_is_best_partition(void)
{
    const int modes[3][2] = {{PROP_TREE_CLASSIFY, PROP_CRIT_GINI},
                             {PROP_TREE_CLASSIFY, PROP_CRIT_ENTROPY},
                             {PROP_TREE_GRADIENT, 0}};
    uint8_t flag = 1;
    for (int mi = 0; mi < 3; mi++)
        for (int rep = 0; rep < 150; rep++) {
            prop_tree_params P;
            memset(&P, 0, sizeof P);
            P.mode = modes[mi][0];
            P.criterion = modes[mi][1];
            P.n_threads = 1;
            P.cat.categorical = &flag;
            int k = 2 + (int)(check_rand() % 9);
            int64_t n = 20 + (int64_t)(check_rand() % 200);
            uint8_t codes[256];
            prop_hstat st[256];
            int32_t rows[256];
            random_node(P.mode, k, n, codes, st);
            for (int64_t i = 0; i < n; i++)
                rows[i] = (int32_t)i;
            prop_hist_layout L;
            prop_error err;
            CHECK(prop_hist_layout_init(&L, codes, n, 1, &err) == PROP_OK);
            int W = P.mode == PROP_TREE_GRADIENT ? 2 : 3;
            double *h = calloc((size_t)(3 * L.n_slots), sizeof *h);
            prop_hist_build_ref(&L, codes, st, rows, n, h, W);
            double S[3 * 256] = {0}, T[3] = {0.0, 0.0, 0.0};
            for (int64_t i = 0; i < n; i++) {
                double *q = S + 3 * codes[i];
                q[0] += st[i].a, q[1] += st[i].b, q[2] += st[i].c;
                T[0] += st[i].a, T[1] += st[i].b, T[2] += st[i].c;
            }
            prop_hstat tot = {T[0], T[1], W == 3 ? T[2] : 0.0};
            int32_t order = 0;
            prop_split best, ref, byrows;
            prop_split_find(&P, &L, h, &tot, &order, 1, &best);
            prop_hstat rtot = {T[0], T[1], T[2]};
            prop_split_find_ref(&P, &L, codes, st, rows, n, &rtot, &order, 1, &ref);
            double brute = -INFINITY;
            int kk = L.n_bins[0];
            for (uint32_t mask = 1; mask + 1 < (1u << kk); mask++) {
                int ok;
                double g = subset_gain(&P, S, kk, mask, T, &ok);
                if (ok && g > brute)
                    brute = g;
            }
            if (brute > 1e-12) {
                CHECK(best.found && ref.found);
                CHECK(best.threshold == PROP_CAT_SPLIT);
                CHECK_CLOSE(best.gain, brute, 1e-9);
                CHECK_CLOSE(ref.gain, brute, 1e-9);
                /* the set reproduces the gain it was stored with */
                uint32_t mask = (uint32_t)best.cat_left[0];
                int ok;
                CHECK_CLOSE(subset_gain(&P, S, kk, mask, T, &ok), best.gain, 1e-9);
                CHECK(best.cat_left[1] == 0 && best.cat_left[2] == 0 && best.cat_left[3] == 0);
            }
            if (P.mode == PROP_TREE_CLASSIFY) {
                double scratch[4 * 3 * 257];
                uint64_t konst;
                prop_split_find_rows(&P, &L, codes, 1, 1, st, rows, n, &rtot, &order, 1, 0,
                                     &konst, scratch, &byrows);
                CHECK(byrows.found == best.found);
                if (best.found) {
                    CHECK(memcmp(byrows.cat_left, best.cat_left, sizeof best.cat_left) == 0);
                    CHECK(byrows.gain == best.gain);
                }
            }
            free(h);
            prop_hist_layout_free(&L);
        }
}

/* The cap, min_data_per_group and the codes that always go right. */
static void test_cap_groups_and_default_way(void)
{
    uint8_t flag = 1;
    for (int rep = 0; rep < 100; rep++) {
        prop_tree_params P;
        memset(&P, 0, sizeof P);
        P.mode = rep % 2 ? PROP_TREE_GRADIENT : PROP_TREE_CLASSIFY;
        P.n_threads = 1;
        P.reg_lambda = 1.0;
        P.cat.categorical = &flag;
        P.cat.cat_smooth = 2.0;
        P.cat.max_cat_threshold = 1 + rep % 3;
        P.cat.min_data_per_group = 15.0;
        int64_t n = 400;
        uint8_t codes[400];
        prop_hstat st[400];
        int32_t rows[400];
        random_node(P.mode, 10, n, codes, st);
        for (int64_t i = 0; i < n; i++) {
            rows[i] = (int32_t)i;
            if (i % 9 == 0)
                codes[i] = PROP_CAT_OTHER;
            if (i % 11 == 0)
                codes[i] = PROP_MISSING_BIN;
        }
        for (int64_t i = 0; i < 8; i++) /* category 9: too few rows to be placed */
            codes[i * 50 + 1] = 9;
        for (int64_t i = 0; i < n; i++)
            if (codes[i] == 9 && i % 50 != 1)
                codes[i] = 3;
        prop_hist_layout L;
        prop_error err;
        CHECK(prop_hist_layout_init(&L, codes, n, 1, &err) == PROP_OK);
        uint8_t *slot = NULL;
        CHECK(prop_hist_remap(&L, codes, n, &slot, &err) == PROP_OK);
        const uint8_t *sc = slot ? slot : codes;
        int W = P.mode == PROP_TREE_GRADIENT ? 2 : 3;
        double *h = calloc((size_t)(3 * L.n_slots), sizeof *h);
        prop_hist_build_ref(&L, sc, st, rows, n, h, W);
        prop_hstat tot = {0.0, 0.0, 0.0};
        for (int64_t i = 0; i < n; i++)
            tot.a += st[i].a, tot.b += st[i].b, tot.c += st[i].c;
        if (W == 2)
            tot.c = (double)n; /* the rows per hessian of the estimate (tree.c) */
        int32_t order = 0;
        prop_split best;
        prop_split_find(&P, &L, h, &tot, &order, 1, &best);
        CHECK(best.found);
        int pop = 0;
        for (int w = 0; w < 4; w++)
            pop += __builtin_popcountll(best.cat_left[w]);
        CHECK(pop >= 1 && pop <= P.cat.max_cat_threshold);
        CHECK(!(best.cat_left[3] >> 62)); /* neither 254 nor 255 */
        CHECK(!(best.cat_left[0] >> 9 & 1)); /* the small category goes right */
        /* the missing slot (n_bins) of the learner's codes is in no set either */
        CHECK(!(best.cat_left[L.n_bins[0] >> 6] >> (L.n_bins[0] & 63) & 1));
        free(h);
        free(slot);
        prop_hist_layout_free(&L);
    }
}

enum { N = 3000, P3 = 3 };

/* Rows on 3 features: 0 categorical (20 categories, some other and missing), 1 numeric
 * (16 bins), 2 categorical (5 categories); the label follows both categories. */
static void make_data(uint8_t *codes, int64_t *counts, double *weights, uint8_t *y)
{
    static const double eff0[20] = {.9, .1, .5, .8, .2, .7, .05, .6, .3, .95,
                                    .15, .85, .4, .65, .25, .75, .35, .55, .45, .1};
    for (int64_t i = 0; i < N; i++) {
        uint64_t r = check_rand() % 25;
        uint8_t c0 = r < 20 ? (uint8_t)r : r < 23 ? PROP_CAT_OTHER : PROP_MISSING_BIN;
        uint8_t c1 = (uint8_t)(check_rand() % 16);
        uint8_t c2 = (uint8_t)(check_rand() % 5);
        codes[i * P3] = c0;
        codes[i * P3 + 1] = c1;
        codes[i * P3 + 2] = c2;
        double p = c0 < 20 ? eff0[c0] : 0.5;
        p = 0.6 * p + 0.2 * (c2 % 2) + 0.2 * c1 / 16.0;
        int lab = check_uniform() < p;
        y[i] = (uint8_t)lab;
        counts[2 * i] = !lab, counts[2 * i + 1] = lab;
        weights[2 * i] = !lab, weights[2 * i + 1] = lab;
    }
}

static prop_forest_view view_of(const prop_ensemble *e)
{
    prop_forest_view v = {e->n_trees, e->tree_start, e->nodes.n_nodes, e->nodes.feature,
                          e->nodes.threshold, e->nodes.left, e->nodes.right, e->nodes.value,
                          e->nodes.count, e->nodes.gain, P3, e->nodes.cat_bits};
    return v;
}

/* Every scorer, the cuts, TreeSHAP and validation on one ensemble with categorical
 * nodes. */
static void check_ensemble(const prop_ensemble *e, int average, const uint8_t *codes)
{
    prop_forest_view v = view_of(e);
    prop_error err;
    int64_t n_cat = 0;
    for (int64_t i = 0; i < v.n_nodes; i++)
        if (v.left[i] >= 0 && v.threshold[i] == PROP_CAT_SPLIT) {
            n_cat++;
            CHECK(v.feature[i] == 0 || v.feature[i] == 2);
            CHECK(!(v.cat_bits[4 * i + 3] >> 62));
        }
    CHECK(n_cat > 0);
    CHECK(prop_forest_validate(&v, &err) == PROP_OK);
    prop_score_params sp;
    memset(&sp, 0, sizeof sp);
    sp.average = average;
    sp.base = e->base_score;
    sp.n_threads = 2;
    double *ref = malloc(N * sizeof *ref), *got = malloc(N * sizeof *got);
    CHECK(prop_forest_score_ref(&v, &sp, codes, N, P3, ref, &err) == PROP_OK);
    /* the reference walk routes by the sets: check it against a walk written here */
    for (int64_t i = 0; i < N; i += 7) {
        double acc = 0.0;
        for (int64_t t = 0; t < v.n_trees; t++) {
            int64_t s = v.tree_start[t], k = 0;
            while (v.left[s + k] >= 0) {
                uint8_t c = codes[i * P3 + v.feature[s + k]];
                int go = v.threshold[s + k] == PROP_CAT_SPLIT
                             ? (int)(v.cat_bits[4 * (s + k) + c / 64] >> (c % 64) & 1)
                             : c <= v.threshold[s + k];
                k = go ? v.left[s + k] : v.right[s + k];
            }
            acc += v.value[s + k];
        }
        double want = average ? acc / (double)v.n_trees : sp.base + acc;
        CHECK(want == ref[i]);
    }
    sp.kernel = PROP_SCORE_LANES;
    CHECK(prop_forest_score(&v, &sp, codes, N, P3, got, &err) == PROP_OK);
    CHECK(memcmp(ref, got, N * sizeof *ref) == 0);
    sp.kernel = PROP_SCORE_AUTO;
    CHECK(prop_forest_score(&v, &sp, codes, N, P3, got, &err) == PROP_OK);
    CHECK(memcmp(ref, got, N * sizeof *ref) == 0);
    CHECK(!prop_forest_block_ok(&v, &sp));
    sp.kernel = PROP_SCORE_BLOCK;
    CHECK(prop_forest_score(&v, &sp, codes, N, P3, got, &err) == PROP_INVALID_ARG);
    sp.kernel = PROP_SCORE_AUTO;
    /* cuts: each equals the reference under its cut */
    prop_score_cut cuts[3] = {{0, 0, 0.0}, {2, 2, 0.0}, {0, 3, 20.0}};
    double *cut_out = malloc(3 * N * sizeof *cut_out);
    CHECK(prop_forest_score_cuts(&v, &sp, cuts, 3, codes, N, P3, cut_out, &err) == PROP_OK);
    for (int c = 0; c < 3; c++) {
        prop_score_params one = sp;
        one.n_trees = cuts[c].n_trees;
        one.max_depth = cuts[c].max_depth;
        one.min_samples_split = cuts[c].min_samples_split;
        CHECK(prop_forest_score_ref(&v, &one, codes, N, P3, got, &err) == PROP_OK);
        CHECK(memcmp(cut_out + (int64_t)c * N, got, N * sizeof *got) == 0);
    }
    free(cut_out);
    /* TreeSHAP: additivity, recursion and tables agree, and both equal enumeration */
    enum { NS = 200 };
    prop_shap_params hp = {average, e->base_score, 2, PROP_SHAP_AUTO};
    double *phi = malloc(NS * (P3 + 1) * sizeof *phi), *phr = malloc(NS * (P3 + 1) * sizeof *phr);
    double *phb = malloc(NS * (P3 + 1) * sizeof *phb);
    CHECK(prop_forest_shap(&v, &hp, codes, NS, P3, phi, &err) == PROP_OK);
    hp.kernel = PROP_SHAP_RECURSIVE;
    CHECK(prop_forest_shap(&v, &hp, codes, NS, P3, phr, &err) == PROP_OK);
    CHECK(prop_forest_shap_brute(&v, &hp, codes, NS, P3, phb, &err) == PROP_OK);
    for (int64_t i = 0; i < NS; i++) {
        double s = 0.0;
        for (int j = 0; j <= P3; j++) {
            s += phi[i * (P3 + 1) + j];
            CHECK_CLOSE(phi[i * (P3 + 1) + j], phr[i * (P3 + 1) + j], 1e-9);
            CHECK_CLOSE(phi[i * (P3 + 1) + j], phb[i * (P3 + 1) + j], 1e-9);
        }
        CHECK_CLOSE(s, ref[i], 1e-9);
    }
    free(phi), free(phr), free(phb);
    free(ref), free(got);
}

static void test_ensembles_score_by_the_sets(void)
{
    uint8_t *codes = malloc(N * P3);
    int64_t *counts = malloc(2 * N * sizeof *counts);
    double *weights = malloc(2 * N * sizeof *weights);
    uint8_t *y = malloc(N);
    make_data(codes, counts, weights, y);
    prop_rows R = {codes, N, P3, counts, weights, NULL};
    static const uint8_t flags[P3] = {1, 0, 1};
    prop_error err;

    prop_forest_params F;
    memset(&F, 0, sizeof F);
    F.n_estimators = 6;
    F.criterion = PROP_CRIT_GINI;
    F.max_depth = 7;
    F.min_samples_split = 2;
    F.min_samples_leaf = 1;
    F.max_features = 2;
    F.bootstrap = 1;
    F.class_weight[0] = F.class_weight[1] = 1.0;
    F.seed = 5;
    F.n_threads = 2;
    F.cat.categorical = flags;
    F.cat.min_data_per_group = 5;
    prop_ensemble ef;
    CHECK(prop_forest_fit(&F, &R, &ef, &err) == PROP_OK);
    check_ensemble(&ef, 1, codes);
    /* the same forest from one thread: the sets do not depend on threads */
    F.n_threads = 1;
    prop_ensemble ef1;
    CHECK(prop_forest_fit(&F, &R, &ef1, &err) == PROP_OK);
    CHECK(ef1.nodes.n_nodes == ef.nodes.n_nodes);
    if (ef1.nodes.n_nodes == ef.nodes.n_nodes)
        CHECK(memcmp(ef1.nodes.cat_bits, ef.nodes.cat_bits,
                     (size_t)ef.nodes.n_nodes * 4 * sizeof(uint64_t)) == 0);
    prop_ensemble_free(&ef1);

    prop_boost_params B;
    memset(&B, 0, sizeof B);
    B.n_estimators = 12;
    B.learning_rate = 0.3;
    B.max_depth = 5;
    B.min_child_weight = 1e-3;
    B.reg_lambda = 1.0;
    B.subsample = 1.0;
    B.colsample_bytree = 1.0;
    B.scale_pos_weight = 1.0;
    B.seed = 3;
    B.n_threads = 2;
    B.cat.categorical = flags;
    B.cat.cat_smooth = 1.0;
    B.cat.min_data_per_group = 10;
    B.cat.max_cat_threshold = 8;
    prop_ensemble eb;
    CHECK(prop_boost_fit(&B, &R, NULL, &eb, &err) == PROP_OK);
    check_ensemble(&eb, 0, codes);

    /* validation: a categorical node needs sets, and no set holds 254 or 255 */
    prop_forest_view v = view_of(&eb);
    int64_t cat_node = -1;
    for (int64_t i = 0; i < v.n_nodes && cat_node < 0; i++)
        if (v.left[i] >= 0 && v.threshold[i] == PROP_CAT_SPLIT)
            cat_node = i;
    v.cat_bits = NULL;
    CHECK(prop_forest_validate(&v, &err) == PROP_FORMAT);
    v.cat_bits = eb.nodes.cat_bits;
    eb.nodes.cat_bits[4 * cat_node + 3] |= (uint64_t)1 << 63;
    CHECK(prop_forest_validate(&v, &err) == PROP_FORMAT);
    eb.nodes.cat_bits[4 * cat_node + 3] &= ~((uint64_t)1 << 63);
    eb.nodes.cat_bits[4 * cat_node + 3] |= (uint64_t)1 << 62;
    CHECK(prop_forest_validate(&v, &err) == PROP_FORMAT);

    /* without categorical flags, no node is categorical and no sets are made */
    B.cat.categorical = NULL;
    prop_ensemble en;
    CHECK(prop_boost_fit(&B, &R, NULL, &en, &err) == PROP_OK);
    CHECK(en.nodes.cat_bits == NULL);
    for (int64_t i = 0; i < en.nodes.n_nodes; i++)
        CHECK(en.nodes.threshold[i] != PROP_CAT_SPLIT);
    prop_ensemble_free(&en);
    prop_ensemble_free(&ef);
    prop_ensemble_free(&eb);
    free(codes), free(counts), free(weights), free(y);
}

static void test_bad_params(void)
{
    prop_tree_params P;
    memset(&P, 0, sizeof P);
    P.n_threads = 1;
    prop_error err;
    CHECK(prop_tree_check_params(&P, &err) == PROP_OK);
    P.cat.cat_smooth = -1.0;
    CHECK(prop_tree_check_params(&P, &err) == PROP_INVALID_ARG);
    P.cat.cat_smooth = NAN;
    CHECK(prop_tree_check_params(&P, &err) == PROP_INVALID_ARG);
    P.cat.cat_smooth = 0.0;
    P.cat.min_data_per_group = -2.0;
    CHECK(prop_tree_check_params(&P, &err) == PROP_INVALID_ARG);
}

int main(void)
{
    RUN(test_sorted_scan_is_best_partition);
    RUN(test_cap_groups_and_default_way);
    RUN(test_ensembles_score_by_the_sets);
    RUN(test_bad_params);
    return check_summary("categorical");
}
