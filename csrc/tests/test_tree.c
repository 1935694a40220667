/* test_tree.c - histogram, split search, tree growth, forest, boosting and scoring. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/boost.h"
#include "propensity/forest.h"
#include "propensity/hist.h"
#include "propensity/predict.h"
#include "propensity/rng.h"
#include "propensity/tree.h"

/* Synthetic data: p features with up to nb codes, some missing; label from a rule. */
static void make_data(int64_t n, int32_t p, int nb, uint64_t seed, uint8_t *codes, uint8_t *y)
{
    prop_rng r;
    prop_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        for (int32_t j = 0; j < p; j++) {
            uint8_t c = (uint8_t)prop_rng_below(&r, (uint64_t)nb);
            if (prop_rng_uniform(&r) < 0.03)
                c = PROP_MISSING_BIN;
            codes[i * p + j] = c;
        }
        double s = (codes[i * p] == 1) + 0.5 * (codes[i * p + 1] != PROP_MISSING_BIN &&
                                                 codes[i * p + 1] >= 1) + prop_rng_uniform(&r);
        y[i] = s > 1.2;
    }
}

/* Packed (gradient, hessian) of every row at a fixed scale (test data keep the sums
 * far inside the packing's range). */
#define Q_SCALE 16384.0
static void pack_all(const prop_hstat *stats, int64_t n, uint64_t *q)
{
    for (int64_t i = 0; i < n; i++)
        q[i] = prop_hist_pack_q(llround(stats[i].a * Q_SCALE), llround(stats[i].b * Q_SCALE));
}

/* The packed build of rows[0..m) (values read from q by row) equals the plain reference
 * bit for bit, for 1, 2 and 3 threads. */
static void check_q_build(const prop_hist_layout *L, const uint8_t *codes, const uint64_t *q,
                          const int32_t *rows, int64_t m)
{
    size_t qs = (size_t)L->n_slots * sizeof(uint64_t);
    uint64_t *q1 = malloc(qs), *q2 = malloc(qs);
    prop_hist_build_q_ref(L, codes, q, rows, m, q1);
    for (int nt = 1; nt <= 3; nt++) {
        CHECK(prop_hist_build_q(L, codes, q, rows, m, q2, nt, NULL) == PROP_OK);
        CHECK(memcmp(q1, q2, qs) == 0);
    }
    free(q1);
    free(q2);
}

static void test_hist_build_matches_reference(void)
{
    int64_t n = 240000; /* n * p above the threaded-build threshold */
    int32_t p = 9;
    uint8_t *codes = malloc((size_t)(n * p)), *y = malloc((size_t)n);
    make_data(n, p, 7, 1, codes, y);
    prop_hist_layout L;
    prop_error err;
    CHECK(prop_hist_layout_init(&L, codes, n, p, &err) == PROP_OK);
    uint8_t *sc = NULL;
    CHECK(prop_hist_remap(&L, codes, n, &sc, &err) == PROP_OK);
    CHECK(sc != NULL);
    prop_hstat *stats = malloc((size_t)n * sizeof *stats);
    int32_t *rows = malloc((size_t)n * sizeof *rows);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) {
        stats[i] = (prop_hstat){0.1 * (double)(i % 7), 1.0 / (1.0 + (double)(i % 5)), 1.0};
        if (i % 3)
            rows[m++] = (int32_t)i;
    }
    size_t hs = (size_t)L.n_slots * 3 * sizeof(double);
    double *h1 = malloc(hs), *h2 = malloc(hs), *h3 = malloc(hs);
    prop_hist_build_ref(&L, sc, stats, rows, m, h1, 3);
    CHECK(prop_hist_build(&L, sc, stats, rows, m, h2, 1, &err) == PROP_OK);
    CHECK(prop_hist_build(&L, sc, stats, rows, m, h3, 2, &err) == PROP_OK);
    CHECK(memcmp(h2, h3, hs) == 0);
    for (int64_t s = 0; s < L.n_slots * 3; s++)
        CHECK_CLOSE(h2[s], h1[s], 1e-12);
    /* packed integer histograms: fast == reference exactly, and the decoded sums are
     * the exact ones within half a unit per row */
    uint64_t *q = malloc((size_t)n * sizeof *q);
    uint64_t *q1 = malloc((size_t)L.n_slots * sizeof *q1), *q2 = malloc((size_t)L.n_slots * sizeof *q2);
    pack_all(stats, n, q);
    check_q_build(&L, sc, q, rows, m);
    prop_hist_build_q_ref(&L, sc, q, rows, m, q1);
    prop_hist_decode_q(q1, L.n_slots, 1.0 / Q_SCALE, 1.0 / Q_SCALE, h2);
    prop_hist_build_ref(&L, sc, stats, rows, m, h1, 3); /* c = the slot's row count */
    for (int64_t s = 0; s < L.n_slots; s++) {
        double half = 0.5 * h1[3 * s + 2] / Q_SCALE; /* half a unit per row of the slot */
        CHECK(fabs(h2[2 * s] - h1[3 * s]) <= half);
        CHECK(fabs(h2[2 * s + 1] - h1[3 * s + 1]) <= half);
    }
    /* subtraction: parent - (rows with i%3==1) == rows with i%3==2 */
    int64_t k1 = 0, k2 = 0;
    int32_t *r1 = malloc((size_t)n * sizeof *r1), *r2 = malloc((size_t)n * sizeof *r2);
    for (int64_t i = 0; i < n; i++) {
        if (i % 3 == 1)
            r1[k1++] = (int32_t)i;
        if (i % 3 == 2)
            r2[k2++] = (int32_t)i;
    }
    prop_hist_build_ref(&L, sc, stats, rows, m, h1, 3);
    prop_hist_build_ref(&L, sc, stats, r1, k1, h3, 3);
    prop_hist_subtract(h1, h3, h1, L.n_slots);
    prop_hist_build_ref(&L, sc, stats, r2, k2, h2, 3);
    for (int64_t s = 0; s < L.n_slots * 3; s++)
        CHECK_CLOSE(h1[s], h2[s], 1e-9);
    /* packed: exact */
    prop_hist_build_q_ref(&L, sc, q, rows, m, q1);
    uint64_t *q3 = malloc((size_t)L.n_slots * sizeof *q3);
    prop_hist_build_q_ref(&L, sc, q, r1, k1, q3);
    prop_hist_subtract_q(q1, q3, q1, L.n_slots);
    prop_hist_build_q_ref(&L, sc, q, r2, k2, q2);
    CHECK(memcmp(q1, q2, (size_t)L.n_slots * sizeof *q1) == 0);
    /* split search: histogram version == row-scan reference */
    prop_tree_params P;
    memset(&P, 0, sizeof P);
    int32_t order[9];
    for (int32_t j = 0; j < p; j++)
        order[j] = p - 1 - j;
    for (int crit = 0; crit < 3; crit++) {
        P.mode = crit == 2 ? PROP_TREE_GRADIENT : PROP_TREE_CLASSIFY;
        P.criterion = crit == 1 ? PROP_CRIT_ENTROPY : PROP_CRIT_GINI;
        P.min_samples_leaf = 5;
        P.max_features = crit == 0 ? 4 : 0;
        P.reg_lambda = 1.0;
        P.learning_rate = 0.1;
        prop_hstat tot = {0, 0, 0};
        for (int64_t i = 0; i < m; i++) {
            int32_t r = rows[i];
            if (crit == 2)
                stats[r] = (prop_hstat){y[r] ? -0.625 : 0.375, 0.25, 1.0}; /* on the grid */
            else
                stats[r] = (prop_hstat){(double)(y[r] == 0), (double)(y[r] == 1) * 3.0, 1.0};
            tot.a += stats[r].a;
            tot.b += stats[r].b;
            tot.c += stats[r].c;
        }
        if (crit == 2) {
            /* boosting: the split search reads the decoded packed histogram */
            pack_all(stats, n, q);
            CHECK(prop_hist_build_q(&L, sc, q, rows, m, q1, 2, &err) == PROP_OK);
            prop_hist_decode_q(q1, L.n_slots, 1.0 / Q_SCALE, 1.0 / Q_SCALE, h2);
        } else {
            CHECK(prop_hist_build(&L, sc, stats, rows, m, h2, 2, &err) == PROP_OK);
        }
        prop_split a, b;
        prop_split_find(&P, &L, h2, &tot, order, p, &a);
        prop_split_find_ref(&P, &L, sc, stats, rows, m, &tot, order, p, &b);
        CHECK(a.found && b.found);
        CHECK(a.feature == b.feature && a.threshold == b.threshold);
        CHECK_CLOSE(a.gain, b.gain, 1e-9);
        CHECK_CLOSE(a.left.a, b.left.a, 1e-9);
        if (crit < 2) { /* integer statistics: the search on rows finds the same split */
            prop_hstat *os = malloc((size_t)m * sizeof *os);
            double *scratch = malloc(4 * 3 * 257 * sizeof *scratch);
            for (int64_t i = 0; i < m; i++)
                os[i] = stats[rows[i]];
            prop_split c;
            uint64_t kc, kc2 = 0, truth = 0;
            prop_split_find_rows(&P, &L, sc, p, 1, os, rows, m, &tot, order, p, 0, &kc, scratch,
                                 &c);
            CHECK(c.found && c.feature == a.feature && c.threshold == a.threshold);
            for (int32_t j = 0; j < p && j < 64; j++) { /* the features constant in the node */
                int k = 1;
                for (int64_t i = 1; i < m && k; i++)
                    k = sc[(int64_t)rows[i] * p + j] == sc[(int64_t)rows[0] * p + j];
                truth |= (uint64_t)k << j;
            }
            CHECK((kc & ~truth) == 0); /* only constant features are reported */
            prop_split c2; /* told what is constant, the search finds the same split */
            prop_split_find_rows(&P, &L, sc, p, 1, os, rows, m, &tot, order, p, truth, &kc2,
                                 scratch, &c2);
            CHECK(c2.found && c2.feature == c.feature && c2.threshold == c.threshold &&
                  c2.gain == c.gain && (kc2 & ~truth) == 0 && (kc2 & truth) == truth);
            CHECK(c.gain == a.gain && c.score == a.score);
            CHECK(memcmp(&c.left, &a.left, sizeof c.left) == 0);
            CHECK(memcmp(&c.right, &a.right, sizeof c.right) == 0);
            free(os);
            free(scratch);
        }
    }
    free(r1);
    free(r2);
    free(q);
    free(q1);
    free(q2);
    free(q3);
    free(h1);
    free(h2);
    free(h3);
    free(stats);
    free(rows);
    free(sc);
    free(codes);
    free(y);
    prop_hist_layout_free(&L);
}

/* compress rows: unique codes with per-label counts (quadratic, test only) */
static int64_t compress(const uint8_t *codes, const uint8_t *y, int64_t n, int32_t p,
                        uint8_t *ucodes, int64_t *counts, double *weights)
{
    int64_t u = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t k;
        for (k = 0; k < u; k++)
            if (memcmp(ucodes + k * p, codes + i * p, (size_t)p) == 0)
                break;
        if (k == u) {
            memcpy(ucodes + u * p, codes + i * p, (size_t)p);
            counts[2 * u] = counts[2 * u + 1] = 0;
            weights[2 * u] = weights[2 * u + 1] = 0.0;
            u++;
        }
        counts[2 * k + y[i]]++;
        weights[2 * k + y[i]] += 1.0;
    }
    return u;
}

static prop_forest_view view_of(const prop_ensemble *e, int32_t p)
{
    prop_forest_view v = {e->n_trees, e->tree_start, e->nodes.n_nodes, e->nodes.feature,
                          e->nodes.threshold, e->nodes.left, e->nodes.right, e->nodes.value,
                          e->nodes.count, e->nodes.gain, p, e->nodes.cat_bits};
    return v;
}

static void score(const prop_ensemble *e, int32_t p, const uint8_t *codes, int64_t n, double *out,
                  int64_t n_trees, int32_t max_depth, double mss, int average, int ref)
{
    prop_forest_view v = view_of(e, p);
    prop_score_params sp = {n_trees, max_depth, mss, average, e->base_score, 2};
    prop_error err;
    prop_status st = ref ? prop_forest_score_ref(&v, &sp, codes, n, p, out, &err)
                         : prop_forest_score(&v, &sp, codes, n, p, out, &err);
    CHECK(st == PROP_OK);
}

static void test_forest(void)
{
    int64_t n = 6000;
    int32_t p = 6;
    uint8_t *codes = malloc((size_t)(n * p)), *y = malloc((size_t)n);
    make_data(n, p, 3, 7, codes, y);
    int64_t *cnt1 = malloc((size_t)n * 2 * sizeof *cnt1);
    double *w1 = malloc((size_t)n * 2 * sizeof *w1);
    for (int64_t i = 0; i < n; i++) {
        cnt1[2 * i] = y[i] == 0;
        cnt1[2 * i + 1] = y[i] == 1;
        w1[2 * i] = y[i] == 0;
        w1[2 * i + 1] = y[i] == 1;
    }
    uint8_t *uc = malloc((size_t)(n * p));
    int64_t *uct = malloc((size_t)n * 2 * sizeof *uct);
    double *uw = malloc((size_t)n * 2 * sizeof *uw);
    int64_t u = compress(codes, y, n, p, uc, uct, uw);
    CHECK(u < n);
    prop_forest_params P = {20, PROP_CRIT_GINI, 0, 2.0, 1.0, 2, 0, {1.0, 2.0}, 42, 2};
    prop_rows R = {codes, n, p, cnt1, w1, NULL}, RU = {uc, u, p, uct, uw, NULL};
    prop_ensemble a, b, c;
    prop_error err;
    CHECK(prop_forest_fit(&P, &R, &a, &err) == PROP_OK);
    CHECK(prop_forest_fit(&P, &RU, &b, &err) == PROP_OK);
    double *sa = malloc((size_t)n * sizeof *sa), *sb = malloc((size_t)n * sizeof *sb);
    double *sr = malloc((size_t)n * sizeof *sr);
    /* compressed == uncompressed without bootstrap */
    score(&a, p, codes, n, sa, 0, 0, 0, 1, 0);
    score(&b, p, codes, n, sb, 0, 0, 0, 1, 0);
    for (int64_t i = 0; i < n; i++)
        CHECK_CLOSE(sa[i], sb[i], 1e-12);
    CHECK(a.nodes.n_nodes == b.nodes.n_nodes);
    score(&a, p, codes, n, sr, 0, 0, 0, 1, 1);
    CHECK(memcmp(sa, sr, (size_t)n * sizeof *sa) == 0);
    prop_ensemble_free(&a);
    prop_ensemble_free(&b);
    /* bootstrap: prefix / cut equalities, thread independence */
    P.bootstrap = 1;
    P.n_threads = 1;
    CHECK(prop_forest_fit(&P, &RU, &a, &err) == PROP_OK);
    P.n_threads = 2;
    CHECK(prop_forest_fit(&P, &RU, &b, &err) == PROP_OK);
    CHECK(a.nodes.n_nodes == b.nodes.n_nodes);
    CHECK(memcmp(a.nodes.value, b.nodes.value, (size_t)a.nodes.n_nodes * sizeof(double)) == 0);
    P.max_depth = 3;
    CHECK(prop_forest_fit(&P, &RU, &c, &err) == PROP_OK);
    score(&c, p, codes, n, sa, 0, 0, 0, 1, 0);
    score(&b, p, codes, n, sb, 0, 3, 0, 1, 0);
    CHECK(memcmp(sa, sb, (size_t)n * sizeof *sa) == 0);
    prop_ensemble_free(&c);
    P.max_depth = 0;
    P.min_samples_split = 40;
    P.n_estimators = 7;
    CHECK(prop_forest_fit(&P, &RU, &c, &err) == PROP_OK);
    score(&c, p, codes, n, sa, 0, 0, 0, 1, 0);
    score(&b, p, codes, n, sb, 7, 0, 40, 1, 0);
    CHECK(memcmp(sa, sb, (size_t)n * sizeof *sa) == 0);
    score(&b, p, codes, n, sr, 7, 0, 40, 1, 1);
    CHECK(memcmp(sr, sb, (size_t)n * sizeof *sa) == 0);
    /* importances within the cut */
    double *g = calloc((size_t)(20 * p), sizeof *g);
    prop_forest_view v = view_of(&b, p);
    prop_score_params sp = {0, 0, 0, 1, 0, 1};
    CHECK(prop_forest_gains(&v, &sp, g, &err) == PROP_OK);
    CHECK(g[0] > g[3 * 0 + 2]);
    /* corrupted arrays are rejected */
    b.nodes.left[0] = 0;
    CHECK(prop_forest_validate(&v, &err) == PROP_FORMAT);
    b.nodes.left[0] = 1;
    int32_t old = b.nodes.feature[0];
    b.nodes.feature[0] = p;
    CHECK(prop_forest_validate(&v, &err) == PROP_FORMAT);
    b.nodes.feature[0] = old;
    CHECK(prop_forest_validate(&v, &err) == PROP_OK);
    /* bad params */
    prop_ensemble_free(&c);
    P.max_features = 0;
    CHECK(prop_forest_fit(&P, &RU, &c, &err) == PROP_INVALID_ARG);
    free(g);
    prop_ensemble_free(&a);
    prop_ensemble_free(&b);
    prop_ensemble_free(&c);
    /* boosting: compressed == uncompressed (close), thread independence, early stopping */
    prop_boost_params B = {30, 0.3, 4, 1.0, 1.0, 1.0, 1.0, 1.0, 0, 3, 2};
    CHECK(prop_boost_fit(&B, &R, NULL, &a, &err) == PROP_OK);
    CHECK(prop_boost_fit(&B, &RU, NULL, &b, &err) == PROP_OK);
    score(&a, p, codes, n, sa, 0, 0, 0, 0, 0);
    score(&b, p, codes, n, sb, 0, 0, 0, 0, 0);
    for (int64_t i = 0; i < n; i++)
        CHECK_CLOSE(sa[i], sb[i], 1e-9);
    prop_ensemble_free(&a);
    prop_ensemble_free(&b);
    B.subsample = 0.7;
    B.colsample_bytree = 0.5;
    B.n_threads = 1;
    CHECK(prop_boost_fit(&B, &RU, NULL, &a, &err) == PROP_OK);
    B.n_threads = 2;
    CHECK(prop_boost_fit(&B, &RU, NULL, &b, &err) == PROP_OK);
    CHECK(a.nodes.n_nodes == b.nodes.n_nodes);
    CHECK(memcmp(a.nodes.value, b.nodes.value, (size_t)a.nodes.n_nodes * sizeof(double)) == 0);
    /* same node numbering too (subtrees grown in parallel are appended in task order) */
    CHECK(memcmp(a.nodes.left, b.nodes.left, (size_t)a.nodes.n_nodes * sizeof(int32_t)) == 0);
    CHECK(memcmp(a.nodes.right, b.nodes.right, (size_t)a.nodes.n_nodes * sizeof(int32_t)) == 0);
    CHECK(memcmp(a.nodes.feature, b.nodes.feature, (size_t)a.nodes.n_nodes * sizeof(int32_t)) == 0);
    CHECK(memcmp(a.nodes.gain, b.nodes.gain, (size_t)a.nodes.n_nodes * sizeof(double)) == 0);
    prop_ensemble_free(&a);
    prop_ensemble_free(&b);
    prop_eval_set E = {codes, n, y, NULL};
    B.n_estimators = 300;
    B.learning_rate = 1.0;
    B.max_depth = 0;
    B.min_child_weight = 0.0;
    B.reg_lambda = 0.0;
    B.early_stopping_rounds = 3;
    CHECK(prop_boost_fit(&B, &RU, &E, &a, &err) == PROP_OK);
    CHECK(a.best_iteration >= 0 && a.n_trees == a.best_iteration + 1);
    prop_ensemble_free(&a);
    B.learning_rate = 0.0;
    CHECK(prop_boost_fit(&B, &RU, &E, &a, &err) == PROP_INVALID_ARG);
    free(sa);
    free(sb);
    free(sr);
    free(codes);
    free(y);
    free(cnt1);
    free(w1);
    free(uc);
    free(uct);
    free(uw);
}

/* every build path (one pass, feature chunks, row blocks) gives the same sums for
 * any thread count */
static void test_hist_paths_thread_independent(void)
{
    int64_t sizes[3] = {1000, 60000, 140000};
    int32_t p = 20;
    for (int k = 0; k < 3; k++) {
        int64_t n = sizes[k];
        uint8_t *codes = malloc((size_t)(n * p)), *y = malloc((size_t)n);
        make_data(n, p, 11, 3 + (uint64_t)k, codes, y);
        prop_hist_layout L;
        prop_error err;
        CHECK(prop_hist_layout_init(&L, codes, n, p, &err) == PROP_OK);
        uint8_t *sc = NULL;
        CHECK(prop_hist_remap(&L, codes, n, &sc, &err) == PROP_OK);
        const uint8_t *use = sc != NULL ? sc : codes;
        prop_hstat *stats = malloc((size_t)n * sizeof *stats);
        int32_t *rows = malloc((size_t)n * sizeof *rows), *sub = malloc((size_t)n * sizeof *sub);
        prop_hstat *ost = malloc((size_t)n * sizeof *ost);
        for (int64_t i = 0; i < n; i++) {
            stats[i] = (prop_hstat){0.37 * (double)(i % 13) - 2.0, 0.1 + 0.01 * (double)(i % 7), 1.0};
            rows[i] = (int32_t)i;
        }
        size_t hs = (size_t)L.n_slots * 3 * sizeof(double);
        double *h1 = malloc(hs), *h2 = malloc(hs), *h3 = malloc(hs);
        CHECK(prop_hist_build(&L, use, stats, rows, n, h1, 1, &err) == PROP_OK);
        CHECK(prop_hist_build(&L, use, stats, rows, n, h2, 2, &err) == PROP_OK);
        CHECK(prop_hist_build(&L, use, stats, rows, n, h3, 3, &err) == PROP_OK);
        CHECK(memcmp(h1, h2, hs) == 0);
        CHECK(memcmp(h1, h3, hs) == 0);
        /* ordered statistics (stats gathered in row order) give the same bits, on
         * every subset and for any thread count */
        for (int64_t i = 0; i < n; i++)
            ost[i] = stats[rows[i]];
        for (int nt = 1; nt <= 3; nt++) {
            CHECK(prop_hist_build_ordered(&L, use, ost, rows, n, h2, nt, &err) == PROP_OK);
            CHECK(memcmp(h1, h2, hs) == 0);
        }
        int64_t ms = 0;
        for (int64_t i = 0; i < n; i++)
            if (i % 5 != 2) {
                sub[ms] = rows[i];
                ost[ms++] = stats[rows[i]];
            }
        CHECK(prop_hist_build(&L, use, stats, sub, ms, h1, 2, &err) == PROP_OK);
        CHECK(prop_hist_build_ordered(&L, use, ost, sub, ms, h2, 2, &err) == PROP_OK);
        CHECK(memcmp(h1, h2, hs) == 0);
        prop_hist_build_ref(&L, use, stats, sub, ms, h2, 3);
        for (int64_t s = 0; s < L.n_slots * 3; s++)
            CHECK_CLOSE(h1[s], h2[s], 1e-9);
        CHECK(prop_hist_build(&L, use, stats, rows, n, h1, 1, &err) == PROP_OK);
        prop_hist_build_ref(&L, use, stats, rows, n, h2, 3);
        for (int64_t s = 0; s < L.n_slots * 3; s++)
            CHECK_CLOSE(h1[s], h2[s], 1e-9);
        /* packed integer histograms: the reference's sums for any thread count, on
         * all rows and on a subset (one-pass and row-chunk paths) */
        uint64_t *q = malloc((size_t)n * sizeof *q);
        pack_all(stats, n, q);
        check_q_build(&L, use, q, rows, n);
        check_q_build(&L, use, q, sub, ms);
        free(q);
        free(h1);
        free(h2);
        free(h3);
        free(stats);
        free(rows);
        free(sub);
        free(ost);
        free(sc);
        free(codes);
        free(y);
        prop_hist_layout_free(&L);
    }
}

/* a layout too big for one cache-sized histogram: dense nodes are built feature group
 * by feature group, sparse ones in one pass; both equal the reference */
static void test_hist_q_feature_groups(void)
{
    int64_t n = 30000;
    int32_t p = 40;
    uint8_t *codes = malloc((size_t)(n * p)), *y = malloc((size_t)n);
    make_data(n, p, 250, 11, codes, y);
    prop_hist_layout L;
    prop_error err;
    CHECK(prop_hist_layout_init(&L, codes, n, p, &err) == PROP_OK);
    CHECK(L.n_qgroups == 2);
    CHECK(L.qgroup[0] == 0 && L.qgroup[1] > 0 && L.qgroup[1] < p && L.qgroup[2] == p);
    uint8_t *sc = NULL;
    CHECK(prop_hist_remap(&L, codes, n, &sc, &err) == PROP_OK);
    const uint8_t *use = sc != NULL ? sc : codes;
    prop_hstat *stats = malloc((size_t)n * sizeof *stats);
    int32_t *rows = malloc((size_t)n * sizeof *rows);
    uint64_t *q = malloc((size_t)n * sizeof *q);
    for (int64_t i = 0; i < n; i++)
        stats[i] = (prop_hstat){y[i] ? -0.25 - 0.01 * (double)(i % 9) : 0.5, 0.2, 1.0};
    pack_all(stats, n, q);
    for (int step = 1; step <= 40; step += 39) { /* every row (dense), every 40th (sparse) */
        int64_t m = 0;
        for (int64_t i = 0; i < n; i += step)
            rows[m++] = (int32_t)i;
        check_q_build(&L, use, q, rows, m);
    }
    free(q);
    free(stats);
    free(rows);
    free(sc);
    free(codes);
    free(y);
    prop_hist_layout_free(&L);
}

/* Boosting data: p features of up to nb codes (some missing), counts 1-3 per row, a
 * weight per row (every 11th zero). */
static prop_rows boost_data(int64_t n, int32_t p, int nb, uint64_t seed)
{
    uint8_t *c = malloc((size_t)(n * p));
    int64_t *cnt = calloc((size_t)(2 * n), sizeof *cnt);
    double *w = calloc((size_t)(2 * n), sizeof *w);
    prop_rng r;
    prop_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) {
        for (int32_t j = 0; j < p; j++)
            c[i * p + j] = prop_rng_uniform(&r) < 0.02 ? PROP_MISSING_BIN
                                                      : (uint8_t)prop_rng_below(&r, (uint64_t)nb);
        int y = prop_rng_uniform(&r) < 0.1 + 0.6 * c[i * p] / nb;
        int64_t k = 1 + (int64_t)prop_rng_below(&r, 3);
        cnt[2 * i + y] = k;
        w[2 * i + y] = i % 11 == 0 ? 0.0 : (double)k * (0.5 + prop_rng_uniform(&r));
    }
    return (prop_rows){c, n, p, cnt, w, NULL};
}

static void free_rows(prop_rows *R)
{
    free((void *)R->codes);
    free((void *)R->counts);
    free((void *)R->weights);
}

static int same_trees(const prop_ensemble *a, const prop_ensemble *b)
{
    size_t m = (size_t)a->nodes.n_nodes;
    return a->nodes.n_nodes == b->nodes.n_nodes &&
           memcmp(a->nodes.feature, b->nodes.feature, m * sizeof *a->nodes.feature) == 0 &&
           memcmp(a->nodes.threshold, b->nodes.threshold, m) == 0 &&
           memcmp(a->nodes.left, b->nodes.left, m * sizeof *a->nodes.left) == 0 &&
           memcmp(a->nodes.value, b->nodes.value, m * sizeof *a->nodes.value) == 0 &&
           memcmp(a->nodes.count, b->nodes.count, m * sizeof *a->nodes.count) == 0 &&
           memcmp(a->nodes.gain, b->nodes.gain, m * sizeof *a->nodes.gain) == 0;
}

/* boosting on a layout with feature groups, large enough for threaded builds and
 * threaded partitions (nodes of >= 65536 rows) inside the trees: identical trees for 1,
 * 2 and 3 threads, with and without subsampling */
static void test_boost_threads_identical(void)
{
    prop_rows R = boost_data(150000, 40, 250, 4);
    for (int sub = 0; sub < 2; sub++) {
        prop_ensemble e[3];
        for (int nt = 1; nt <= 3; nt++) {
            prop_boost_params B = {5, 0.3, 6, 1.0, 1.0, sub ? 0.7 : 1.0, 0.8, 2.0, 0, 11, nt};
            prop_error err;
            CHECK(prop_boost_fit(&B, &R, NULL, &e[nt - 1], &err) == PROP_OK);
        }
        CHECK(e[0].nodes.n_nodes > 5 * 30);
        CHECK(same_trees(&e[0], &e[1]));
        CHECK(same_trees(&e[0], &e[2]));
        for (int k = 0; k < 3; k++)
            prop_ensemble_free(&e[k]);
    }
    free_rows(&R);
}

/* Whether two row sets grow the same trees, bit for bit: a forest with and without the
 * bootstrap, and boosting (row subsample ``subsample``, a positive-class weight). */
static int same_fits(const prop_rows *R1, const prop_rows *R2, double subsample)
{
    prop_error err;
    int same = 1;
    for (int boot = 0; boot < 2; boot++) {
        prop_forest_params P = {10, PROP_CRIT_GINI, 8, 2.0, 1.0, 3, boot, {1.0, 3.0}, 5, 2};
        prop_ensemble a, b;
        CHECK(prop_forest_fit(&P, R1, &a, &err) == PROP_OK);
        CHECK(prop_forest_fit(&P, R2, &b, &err) == PROP_OK);
        same = same && same_trees(&a, &b);
        prop_ensemble_free(&a);
        prop_ensemble_free(&b);
    }
    prop_boost_params B = {5, 0.3, 4, 1.0, 1.0, subsample, 1.0, 4.0, 0, 11, 2};
    prop_ensemble a, b;
    CHECK(prop_boost_fit(&B, R1, NULL, &a, &err) == PROP_OK);
    CHECK(prop_boost_fit(&B, R2, NULL, &b, &err) == PROP_OK);
    same = same && same_trees(&a, &b) && a.base_score == b.base_score;
    prop_ensemble_free(&a);
    prop_ensemble_free(&b);
    return same;
}

/* weights NULL (the counts themselves, what a table kept row by row passes) grow the
 * same trees as weights equal to the counts: forest with and without the bootstrap,
 * boosting with a positive-class weight. */
static void test_weights_null_are_counts(void)
{
    prop_rows R = boost_data(20000, 8, 50, 3);
    double *w = (double *)R.weights;   /* weights equal to the counts */
    for (int64_t j = 0; j < 2 * R.n_rows; j++)
        w[j] = (double)R.counts[j];
    prop_rows RN = R;
    RN.weights = NULL;
    CHECK(same_fits(&R, &RN, 0.8));
    free_rows(&R);
}

/* Rows kept row by row given as labels (counts NULL, one row each) grow the trees that
 * counts of one row per row grow, bit for bit: forest with and without the bootstrap,
 * boosting with and without row subsampling; a label other than 0/1 and counts given
 * together with labels are refused. */
static void test_labels_are_unit_counts(void)
{
    prop_rows R = boost_data(20000, 8, 50, 7);
    int64_t *cnt = (int64_t *)R.counts;
    uint8_t *lab = malloc((size_t)R.n_rows);
    for (int64_t i = 0; i < R.n_rows; i++) {
        int y = cnt[2 * i + 1] > 0;
        cnt[2 * i] = !y;
        cnt[2 * i + 1] = y;
        lab[i] = (uint8_t)y;
    }
    free((void *)R.weights);
    R.weights = NULL;
    prop_rows RL = R;
    RL.counts = NULL;
    RL.labels = lab;
    CHECK(same_fits(&R, &RL, 1.0));
    CHECK(same_fits(&R, &RL, 0.7));
    prop_error err;
    prop_rows both = RL;
    both.counts = R.counts;
    CHECK(prop_rows_check(&both, &err) == PROP_INVALID_ARG);
    lab[123] = 2;
    CHECK(prop_rows_check(&RL, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "row 123") != NULL);
    free(lab);
    free_rows(&R);
}

/* Packed histograms built on feature bundles (prop_hist_bundles_init), marginalised,
 * equal the plain reference built feature by feature: binary, 5-code and 40-code
 * features with missing values (the latter stay alone), nodes of fewer and more rows
 * than slots (the copies path), 1 and 2 threads. Boosting trees grown on bundles are
 * the trees grown without them, bit for bit. */
static void test_bundles(void)
{
    const int64_t n = 5000;
    const int32_t p = 17;
    uint8_t *codes = malloc((size_t)(n * p)), *y = malloc((size_t)n);
    make_data(n, p, 2, 5, codes, y);
    for (int64_t i = 0; i < n; i++) { /* features 6..8: 5 codes, 12: 40 codes */
        for (int32_t j = 6; j < 9; j++)
            if (codes[i * p + j] != PROP_MISSING_BIN)
                codes[i * p + j] = (uint8_t)((i * (j + 3)) % 5);
        codes[i * p + 12] = (uint8_t)((i * 7) % 40);
    }
    prop_hist_layout L;
    prop_error err;
    CHECK(prop_hist_layout_init(&L, codes, n, p, &err) == PROP_OK);
    uint8_t *sc = NULL;
    CHECK(prop_hist_remap(&L, codes, n, &sc, &err) == PROP_OK);
    const uint8_t *use = sc != NULL ? sc : codes;
    prop_hist_bundles B;
    int made = 0;
    CHECK(prop_hist_bundles_init(&L, use, n, &B, &made, &err) == PROP_OK);
    CHECK(made == 1 && B.layout.n_features < p);
    prop_hstat *st = malloc((size_t)n * sizeof *st);
    uint64_t *q = malloc((size_t)n * sizeof *q);
    int32_t *rows = malloc((size_t)n * sizeof *rows);
    uint64_t *ref = malloc((size_t)L.n_slots * sizeof *ref);
    uint64_t *got = malloc((size_t)L.n_slots * sizeof *got);
    uint64_t *gh = malloc((size_t)B.layout.n_slots * sizeof *gh);
    for (int64_t i = 0; i < n; i++)
        st[i] = (prop_hstat){y[i] ? -0.625 : 0.375 + 0.001 * (double)(i % 13), 0.25, 1.0};
    pack_all(st, n, q);
    int differ = 0;
    const int64_t sizes[] = {3, 50, 400, 2000, 5000};
    for (int k = 0; k < 5; k++)
        for (int nt = 1; nt <= 2; nt++) {
            int64_t m = 0;
            for (int64_t i = 0; i < n && m < sizes[k]; i += (k == 4 ? 1 : 2))
                rows[m++] = (int32_t)i;
            prop_hist_build_q_ref(&L, use, q, rows, m, ref);
            CHECK(prop_hist_build_q(&B.layout, B.codes, q, rows, m, gh, nt, &err) == PROP_OK);
            prop_hist_marginal_q(&B, gh, got, L.n_slots);
            differ += memcmp(ref, got, (size_t)L.n_slots * sizeof *ref) != 0;
            /* the copies path of the plain build too */
            CHECK(prop_hist_build_q(&L, use, q, rows, m, got, nt, &err) == PROP_OK);
            differ += memcmp(ref, got, (size_t)L.n_slots * sizeof *ref) != 0;
        }
    CHECK(differ == 0);
    /* trees */
    int32_t *leaf[2] = {malloc((size_t)n * sizeof(int32_t)), malloc((size_t)n * sizeof(int32_t))};
    uint8_t allowed[17];
    for (int cfg = 0; cfg < 6; cfg++) {
        prop_tree_params P;
        memset(&P, 0, sizeof P);
        P.mode = PROP_TREE_GRADIENT;
        P.max_depth = cfg % 3 == 0 ? 3 : cfg % 3 == 1 ? 7 : 0;
        P.min_child_weight = cfg % 2 ? 0.0 : 1.0;
        P.reg_lambda = 1.0;
        P.learning_rate = 0.1;
        P.n_threads = cfg % 2 + 1;
        for (int32_t j = 0; j < p; j++)
            allowed[j] = cfg < 4 || j % 3 != 0;
        prop_nodes t[2];
        for (int b = 0; b < 2; b++) {
            prop_tree_data D = {use, n, &L, NULL, b ? &B : NULL};
            memset(&t[b], 0, sizeof t[b]);
            int64_t m = 0;
            for (int64_t i = 0; i < n; i++)
                if (i % 7 != 3)
                    rows[m++] = (int32_t)i;
            CHECK(prop_tree_grow(&P, &D, st, rows, m, allowed, NULL, leaf[b], &t[b], &err) ==
                  PROP_OK);
        }
        int64_t k = t[0].n_nodes;
        CHECK(k > 7);
        CHECK(k == t[1].n_nodes && !memcmp(t[0].feature, t[1].feature, (size_t)k * 4) &&
              !memcmp(t[0].threshold, t[1].threshold, (size_t)k) &&
              !memcmp(t[0].left, t[1].left, (size_t)k * 4) &&
              !memcmp(t[0].value, t[1].value, (size_t)k * 8) &&
              !memcmp(t[0].gain, t[1].gain, (size_t)k * 8) &&
              !memcmp(leaf[0], leaf[1], (size_t)n * sizeof(int32_t)));
        prop_nodes_free(&t[0]);
        prop_nodes_free(&t[1]);
    }
    free(leaf[0]);
    free(leaf[1]);
    prop_hist_bundles_free(&B);
    prop_hist_layout_free(&L);
    free(sc);
    free(codes);
    free(y);
    free(st);
    free(q);
    free(rows);
    free(ref);
    free(got);
    free(gh);
}

/* Sum of the leaf values of one row (raw codes) over an ensemble's trees. */
static double raw_score(const prop_ensemble *e, const uint8_t *row)
{
    double f = 0.0;
    for (int32_t t = 0; t < e->n_trees; t++) {
        int64_t b = e->tree_start[t];
        f += e->nodes.value[b + prop_tree_walk(e->nodes.feature + b, e->nodes.threshold + b,
                                               e->nodes.left + b, e->nodes.right + b,
                                               prop_node_bits(e->nodes.cat_bits, b), row, 0)];
    }
    return f;
}

/* merged identical rows are quantised per session: the same trees as the plain rows,
 * also when two splits' gains tie (identical rows isolated by feature 0 vs distinct
 * rows with the same gradients isolated by feature 1) */
static void test_boost_compressed_ties(void)
{
    int differ = 0;
    for (int n3 = 20; n3 < 80; n3++) {
        int64_t n = 6 + n3;
        int32_t p = 3;
        uint8_t *c = calloc((size_t)(n * p), 1);
        int64_t *cnt = calloc((size_t)(2 * n), sizeof *cnt);
        double *w = calloc((size_t)(2 * n), sizeof *w);
        int64_t i = 0;
        for (int k = 0; k < 3; k++, i++) { /* three identical label-1 rows */
            c[i * p] = 1;
            cnt[2 * i + 1] = 1;
            w[2 * i + 1] = 1.0;
        }
        for (int k = 0; k < 3; k++, i++) { /* three distinct label-1 rows */
            c[i * p + 1] = 1;
            c[i * p + 2] = (uint8_t)(1 + k);
            cnt[2 * i + 1] = 1;
            w[2 * i + 1] = 1.0;
        }
        for (int k = 0; k < n3; k++, i++) {
            int y = k % 7 == 0;
            c[i * p + 2] = (uint8_t)(k % 2 ? 0 : 4);
            cnt[2 * i + y] = 1;
            w[2 * i + y] = 1.0;
        }
        /* the first three rows merged into one with count 3 */
        int64_t u = n - 2;
        uint8_t *cu = malloc((size_t)(u * p));
        int64_t *cntu = malloc((size_t)(2 * u) * sizeof *cntu);
        double *wu = malloc((size_t)(2 * u) * sizeof *wu);
        memcpy(cu, c + 2 * p, (size_t)(u * p));
        memcpy(cntu, cnt + 4, (size_t)(2 * u) * sizeof *cntu);
        memcpy(wu, w + 4, (size_t)(2 * u) * sizeof *wu);
        cntu[1] = 3;
        wu[1] = 3.0;
        prop_rows R = {c, n, p, cnt, w, NULL}, RU = {cu, u, p, cntu, wu, NULL};
        prop_boost_params B = {3, 1.0, 2, 0.0, 1.0, 1.0, 1.0, 1.0, 0, 7, 1};
        prop_ensemble a, b;
        prop_error err;
        CHECK(prop_boost_fit(&B, &R, NULL, &a, &err) == PROP_OK);
        CHECK(prop_boost_fit(&B, &RU, NULL, &b, &err) == PROP_OK);
        /* the same trees (their nodes may be numbered differently): equal scores */
        int same = a.n_trees == b.n_trees;
        for (int64_t r = 0; same && r < n; r++)
            same = fabs(raw_score(&a, c + r * p) - raw_score(&b, c + r * p)) <= 1e-12;
        differ += !same;
        prop_ensemble_free(&a);
        prop_ensemble_free(&b);
        free(c);
        free(cnt);
        free(w);
        free(cu);
        free(cntu);
        free(wu);
    }
    CHECK(differ == 0);
}

/* one workspace reused with different thread counts and feature counts */
static void test_workspace_reuse(void)
{
    prop_tree_workspace *ws = NULL;
    prop_error werr;
    CHECK(prop_tree_workspace_new(&ws, &werr) == PROP_OK);
    const int cfg[3][2] = {{4, 10}, {2, 20}, {4, 20}};
    for (int mode = 0; mode < 2; mode++)
        for (int k = 0; k < 3; k++) {
            int64_t n = 20000;
            int32_t p = cfg[k][1];
            uint8_t *codes = malloc((size_t)(n * p)), *y = malloc((size_t)n);
            make_data(n, p, 8, (uint64_t)p, codes, y);
            prop_hist_layout L;
            prop_error err;
            CHECK(prop_hist_layout_init(&L, codes, n, p, &err) == PROP_OK);
            uint8_t *sc = NULL;
            CHECK(prop_hist_remap(&L, codes, n, &sc, &err) == PROP_OK);
            prop_tree_data D = {sc != NULL ? sc : codes, n, &L, NULL, NULL};
            prop_hstat *st = malloc((size_t)n * sizeof *st);
            int32_t *rows = malloc((size_t)n * sizeof *rows), *leaf = malloc((size_t)n * sizeof *leaf);
            for (int64_t i = 0; i < n; i++) {
                st[i] = mode ? (prop_hstat){0.4 - y[i], 0.24, 1.0}
                             : (prop_hstat){(double)!y[i], (double)y[i], 1.0};
                rows[i] = (int32_t)i;
            }
            prop_tree_params P;
            memset(&P, 0, sizeof P);
            P.mode = mode ? PROP_TREE_GRADIENT : PROP_TREE_CLASSIFY;
            P.max_depth = 8;
            P.reg_lambda = 1.0;
            P.learning_rate = 1.0;
            P.min_samples_split = 2;
            P.min_samples_leaf = 1;
            P.n_threads = cfg[k][0];
            P.seed = 3;
            prop_nodes out;
            memset(&out, 0, sizeof out);
            CHECK(prop_tree_grow(&P, &D, st, rows, n, NULL, ws, leaf, &out, &err) == PROP_OK);
            CHECK(out.n_nodes > 31); /* boosting ignores the forest's row minimums */
            prop_nodes_free(&out);
            prop_hist_layout_free(&L);
            free(sc);
            free(codes);
            free(y);
            free(st);
            free(rows);
            free(leaf);
        }
    prop_tree_workspace_free(ws);
}

static void test_rng(void)
{
    prop_rng r;
    prop_rng_seed(&r, 5);
    double s = 0.0, s2 = 0.0;
    for (int i = 0; i < 20000; i++) {
        double x = (double)prop_rng_poisson(&r, 50.0);
        s += x;
        s2 += x * x;
    }
    CHECK_CLOSE(s / 20000, 50.0, 0.01);
    CHECK_CLOSE(s2 / 20000 - (s / 20000) * (s / 20000), 50.0, 0.05);
    s = 0.0;
    for (int i = 0; i < 20000; i++)
        s += (double)prop_rng_binomial(&r, 1000, 0.8);
    CHECK_CLOSE(s / 20000, 800.0, 0.01);
    s = 0.0;
    for (int i = 0; i < 20000; i++)
        s += (double)prop_rng_poisson(&r, 2.0);
    CHECK_CLOSE(s / 20000, 2.0, 0.02);
}

/* prop_rng_below_n draws what prop_rng_below draws (value and stream) for small,
 * power-of-2, huge (often rejected) and random bounds. */
static void test_rng_below_n(void)
{
    prop_rng a, b, g;
    prop_rng_seed(&a, 11);
    prop_rng_seed(&g, 12);
    b = a;
    uint64_t ns[] = {0, 1, 2, 3, 5, 7, 32, 33, 64, 255, 1000, 1ULL << 32, (1ULL << 32) + 1,
                     (1ULL << 63) - 1, 1ULL << 63, (1ULL << 63) + 1, UINT64_MAX - 1, UINT64_MAX};
    int differ = 0;
    for (int t = 0; t < 200000; t++) {
        uint64_t n = t < 18 * 200 ? ns[t % 18] : t % 3 == 0 ? 2 + (uint64_t)t % 300
                                               : prop_rng_next(&g) >> (prop_rng_next(&g) % 64);
        prop_below_n bn;
        prop_below_init(&bn, n);
        differ += prop_rng_below(&a, n) != prop_rng_below_n(&b, &bn);
        differ += memcmp(&a, &b, sizeof a) != 0;
    }
    CHECK(differ == 0);
}

/* prop_rng_poisson_c with prop_poisson_init's constants draws what prop_rng_poisson
 * draws (value and stream), across both methods' means. */
static void test_rng_poisson_constants(void)
{
    prop_rng a, b, g;
    prop_rng_seed(&a, 21);
    prop_rng_seed(&g, 22);
    b = a;
    const double lams[] = {0.0, -1.0, 1e-300, 0.3, 9.999, 10.0, 10.5, 57.0, 3000.0, 1e6};
    int differ = 0;
    for (int t = 0; t < 100000; t++) {
        double lam = t < 10 * 500 ? lams[t % 10] : 40.0 * prop_rng_uniform(&g);
        prop_poisson c;
        prop_poisson_init(&c, lam);
        differ += prop_rng_poisson(&a, lam) != prop_rng_poisson_c(&b, &c);
        differ += memcmp(&a, &b, sizeof a) != 0;
    }
    CHECK(differ == 0);
}

/* A forest on integer statistics (multiplicities, as a bootstrap gives) grows the same
 * trees, bit for bit, whether its nodes search splits on rows or on histograms, for
 * several max_features, depths, row minimums, thread counts, feature masks, with and
 * without duplicate code rows and missing values. */
static void test_row_search_same_trees(void)
{
    const int64_t n = 6000;
    uint8_t *codes = malloc((size_t)(n * 70)), *y = malloc((size_t)n);
    prop_hstat *st = malloc((size_t)n * sizeof *st);
    int32_t *rows = malloc((size_t)n * sizeof *rows);
    uint8_t allowed[70];
    prop_tree_workspace *ws = NULL;
    prop_error err;
    CHECK(prop_tree_workspace_new(&ws, &err) == PROP_OK);
    int differ = 0, grown = 0;
    for (int v = 0; v < 3; v++) {
        /* binary and 40-code features; 70 features: constant features above 64 are not
         * remembered (see prop_split_find_rows) */
        const int nb = v == 1 ? 40 : 2;
        const int32_t p = v == 2 ? 70 : 24;
        make_data(n, p, nb, (uint64_t)nb, codes, y);
        for (int64_t i = 0; i < n; i += 7) /* duplicate code rows */
            memcpy(codes + i * p, codes + (i / 2) * p, (size_t)p);
        prop_hist_layout L;
        CHECK(prop_hist_layout_init(&L, codes, n, p, &err) == PROP_OK);
        uint8_t *sc = NULL, *sct = NULL;
        CHECK(prop_hist_remap(&L, codes, n, &sc, &err) == PROP_OK);
        const uint8_t *use = sc != NULL ? sc : codes;
        CHECK(prop_codes_transpose(use, n, p, 1, &sct, &err) == PROP_OK);
        prop_rng r;
        prop_rng_seed(&r, 99);
        for (int64_t i = 0; i < n; i++) {
            double m0 = (double)prop_rng_poisson(&r, y[i] ? 0.7 : 30.0);
            double m1 = (double)prop_rng_poisson(&r, y[i] ? 3.0 : 0.4);
            st[i] = (prop_hstat){m0, m1, m0 + m1};
        }
        for (int cfg = 0; cfg < 12; cfg++) {
            prop_tree_params P;
            memset(&P, 0, sizeof P);
            P.mode = PROP_TREE_CLASSIFY;
            P.criterion = cfg % 4 == 3 ? PROP_CRIT_ENTROPY : PROP_CRIT_GINI;
            P.max_depth = cfg % 3 == 0 ? 0 : cfg % 3 == 1 ? 12 : 4;
            P.min_samples_split = cfg % 2 ? 2 : 9;
            P.min_samples_leaf = cfg % 5 == 4 ? 3 : 1;
            P.max_features = cfg < 6 ? 4 : cfg < 10 ? 8 : 13;
            P.seed = (uint64_t)cfg + 1;
            P.n_threads = cfg % 2 + 1;
            for (int32_t j = 0; j < p; j++)
                allowed[j] = cfg % 4 != 1 || j % 5 != 0;
            prop_tree_data D = {use, n, &L, cfg % 3 == 2 ? NULL : sct, NULL};
            prop_nodes t[2];
            for (int h = 0; h < 2; h++) {
                memset(&t[h], 0, sizeof t[h]);
                int64_t m = 0;
                for (int64_t i = 0; i < n; i++)
                    if (st[i].c > 0.0)
                        rows[m++] = (int32_t)i;
                P.histograms_only = h;
                CHECK(prop_tree_grow(&P, &D, st, rows, m, allowed, h ? NULL : ws, NULL, &t[h],
                                     &err) == PROP_OK);
            }
            grown += t[0].n_nodes > 10;
            int64_t k = t[0].n_nodes;
            differ += k != t[1].n_nodes ||
                      memcmp(t[0].feature, t[1].feature, (size_t)k * sizeof *t[0].feature) ||
                      memcmp(t[0].threshold, t[1].threshold, (size_t)k) ||
                      memcmp(t[0].left, t[1].left, (size_t)k * sizeof *t[0].left) ||
                      memcmp(t[0].right, t[1].right, (size_t)k * sizeof *t[0].right) ||
                      memcmp(t[0].value, t[1].value, (size_t)k * sizeof *t[0].value) ||
                      memcmp(t[0].count, t[1].count, (size_t)k * sizeof *t[0].count) ||
                      memcmp(t[0].gain, t[1].gain, (size_t)k * sizeof *t[0].gain);
            prop_nodes_free(&t[0]);
            prop_nodes_free(&t[1]);
        }
        prop_hist_layout_free(&L);
        free(sc);
        free(sct);
    }
    CHECK(differ == 0);
    CHECK(grown == 36);
    prop_tree_workspace_free(ws);
    free(codes);
    free(y);
    free(st);
    free(rows);
}

/* The random streams are pinned: the values of HEAD before the RNG moved to rng.c. */
static void test_rng_streams_pinned(void)
{
    prop_rng r;
    prop_rng_seed(&r, 5);
    CHECK(prop_mix64(0) == 0xe220a8397b1dcdafULL);
    CHECK(prop_mix64(42) == 0xbdd732262feb6e95ULL);
    CHECK(prop_rng_next(&r) == 0xe2e330f1c651ac8bULL);
    CHECK(prop_rng_next(&r) == 0x449fc7e55b6d49fcULL);
    CHECK(prop_rng_next(&r) == 0x7de4668ed9053683ULL);
    CHECK(prop_rng_below(&r, 1000) == 728);
    CHECK(prop_rng_poisson(&r, 2.0) == 1);
    CHECK(prop_rng_poisson(&r, 50.0) == 43);
    CHECK(prop_rng_binomial(&r, 20, 0.3) == 5);
    CHECK(prop_rng_binomial(&r, 1000, 0.01) == 10);
    CHECK(prop_rng_binomial(&r, 1000, 0.8) == 801);
    CHECK(prop_rng_uniform(&r) == 0x1.4b36e1f758294p-3);
}

/* The one tree walk: code <= threshold goes left, the missing code 255 goes right;
 * the cut walk stops at max_depth or below min_samples_split. */
static void test_tree_walk(void)
{
    /* 0: f0 <= 2 ? 1 : 2;  1: f1 <= 0 ? 3 : 4;  2, 3, 4: leaves */
    const int32_t feature[5] = {0, 1, -1, -1, -1}, left[5] = {1, 3, -1, -1, -1},
                  right[5] = {2, 4, -1, -1, -1};
    const uint8_t threshold[5] = {2, 0, 0, 0, 0};
    const double count[5] = {10, 6, 4, 3, 3};
    const uint8_t rows[5][2] = {{0, 0}, {2, 1}, {3, 0}, {PROP_MISSING_BIN, 0}, {1, PROP_MISSING_BIN}};
    const int64_t leaf[5] = {3, 4, 2, 2, 4};
    CHECK(prop_goes_left(0, 0) && prop_goes_left(254, 254) && !prop_goes_left(PROP_MISSING_BIN, 254));
    for (int i = 0; i < 5; i++) {
        CHECK(prop_tree_walk(feature, threshold, left, right, NULL, rows[i], 0) == leaf[i]);
        CHECK(prop_tree_walk_cut(feature, threshold, left, right, NULL, count, rows[i], 0, 0.0) == leaf[i]);
        int64_t d1 = prop_tree_walk_cut(feature, threshold, left, right, NULL, count, rows[i], 1, 0.0);
        CHECK(d1 == (leaf[i] == 2 ? 2 : 1));
        CHECK(prop_tree_walk_cut(feature, threshold, left, right, NULL, count, rows[i], 0, 7.0) ==
              (leaf[i] == 2 ? 2 : 1));
        CHECK(prop_tree_walk_cut(feature, threshold, left, right, NULL, count, rows[i], 0, 11.0) == 0);
    }
    /* from an inner node, and from a leaf (boosting's rows that know their leaf) */
    CHECK(prop_tree_walk(feature, threshold, left, right, NULL, rows[1], 1) == 4);
    CHECK(prop_tree_walk(feature, threshold, left, right, NULL, rows[0], 2) == 2);
}

static int msg_has(const prop_error *err, const char *what)
{
    return strstr(err->msg, what) != NULL;
}

/* Thread counts outside 1..PROP_MAX_THREADS are refused with a message (they used to
 * be clamped silently); 1 and PROP_MAX_THREADS are accepted. */
static void test_bad_thread_counts(void)
{
    int64_t n = 400;
    int32_t p = 4;
    uint8_t *codes = malloc((size_t)(n * p)), *y = malloc((size_t)n);
    make_data(n, p, 4, 9, codes, y);
    int64_t *cnt = malloc((size_t)n * 2 * sizeof *cnt);
    double *w = malloc((size_t)n * 2 * sizeof *w);
    for (int64_t i = 0; i < n; i++) {
        cnt[2 * i] = w[2 * i] = y[i] == 0;
        cnt[2 * i + 1] = w[2 * i + 1] = y[i] == 1;
    }
    prop_rows R = {codes, n, p, cnt, w, NULL};
    const int bad[3] = {0, -3, PROP_MAX_THREADS + 1};
    prop_error err;
    prop_ensemble e;
    prop_forest_params F = {3, PROP_CRIT_GINI, 4, 2.0, 1.0, 2, 1, {1.0, 1.0}, 1, 1};
    prop_boost_params B = {3, 0.3, 3, 1.0, 1.0, 1.0, 1.0, 1.0, 0, 1, 1};
    for (int k = 0; k < 3; k++) {
        char want[64];
        snprintf(want, sizeof want, "n_threads must be in [1, %d], got %d", PROP_MAX_THREADS,
                 bad[k]);
        F.n_threads = bad[k];
        CHECK(prop_forest_check_params(&F, p, &err) == PROP_INVALID_ARG && msg_has(&err, want));
        CHECK(prop_forest_fit(&F, &R, &e, &err) == PROP_INVALID_ARG && msg_has(&err, want));
        CHECK(e.nodes.n_nodes == 0 && e.tree_start == NULL);
        B.n_threads = bad[k];
        CHECK(prop_boost_check_params(&B, &err) == PROP_INVALID_ARG && msg_has(&err, want));
        CHECK(prop_boost_fit(&B, &R, NULL, &e, &err) == PROP_INVALID_ARG && msg_has(&err, want));
    }
    F.n_threads = PROP_MAX_THREADS; /* accepted (one thread per tree is used at most) */
    CHECK(prop_forest_check_params(&F, p, &err) == PROP_OK);
    F.n_threads = 1;
    CHECK(prop_forest_fit(&F, &R, &e, &err) == PROP_OK);

    /* scoring, gains, probabilities */
    prop_forest_view v = view_of(&e, p);
    double *out = malloc((size_t)n * sizeof *out), *out2 = malloc((size_t)n * 2 * sizeof *out2);
    double g[3 * 4];
    for (int k = 0; k < 3; k++) {
        prop_score_params sp = {0, 0, 0.0, 1, 0.0, bad[k]};
        CHECK(prop_score_check_params(&sp, &v, &err) == PROP_INVALID_ARG &&
              msg_has(&err, "n_threads must be in"));
        CHECK(prop_forest_score(&v, &sp, codes, n, p, out, &err) == PROP_INVALID_ARG);
        CHECK(prop_forest_score_ref(&v, &sp, codes, n, p, out, &err) == PROP_INVALID_ARG);
        CHECK(prop_forest_gains(&v, &sp, g, &err) == PROP_INVALID_ARG);
        CHECK(prop_scores_to_proba(out, n, NULL, n, 0, out2, bad[k], &err) == PROP_INVALID_ARG);
    }
    prop_score_params sp = {0, 0, 0.0, 1, 0.0, 2};
    CHECK(prop_forest_score(&v, &sp, codes, n, p, out, &err) == PROP_OK);
    CHECK(prop_scores_to_proba(out, n, NULL, n, 0, out2, 2, &err) == PROP_OK);
    CHECK(out2[1] == out[0] && out2[0] == 1.0 - out[0]);
    sp.min_samples_split = NAN;
    CHECK(prop_forest_score(&v, &sp, codes, n, p, out, &err) == PROP_INVALID_ARG &&
          msg_has(&err, "NaN"));
    /* gains of more trees than the model has: refused (it read past tree_start) */
    prop_score_params sg = {4, 0, 0.0, 1, 0.0, 1};
    CHECK(prop_forest_gains(&v, &sg, g, &err) == PROP_INVALID_ARG &&
          msg_has(&err, "asked for 4 trees, the model has 3"));
    sg.n_trees = 3;
    CHECK(prop_forest_gains(&v, &sg, g, &err) == PROP_OK);

    /* kernels: transpose, histogram builds, tree growth */
    prop_hist_layout L;
    CHECK(prop_hist_layout_init(&L, codes, n, p, &err) == PROP_OK);
    uint8_t *sc = NULL, *ct = (uint8_t *)&sc;
    CHECK(prop_hist_remap(&L, codes, n, &sc, &err) == PROP_OK && sc != NULL);
    CHECK(prop_codes_transpose(sc, n, p, 0, &ct, &err) == PROP_INVALID_ARG && ct == NULL &&
          msg_has(&err, "transpose: n_threads"));
    CHECK(prop_codes_transpose(sc, n, p, 2, &ct, &err) == PROP_OK && ct != NULL);
    CHECK(ct[(int64_t)2 * n + 5] == sc[5 * p + 2]);
    prop_hstat *st = malloc((size_t)n * sizeof *st);
    int32_t *rows = malloc((size_t)n * sizeof *rows), *leaf = malloc((size_t)n * sizeof *leaf);
    uint64_t *qz = calloc((size_t)n, sizeof *qz), *hq = malloc((size_t)L.n_slots * sizeof *hq);
    double *h = malloc((size_t)L.n_slots * 3 * sizeof *h);
    for (int64_t i = 0; i < n; i++) {
        st[i] = (prop_hstat){(double)!y[i], (double)y[i], 1.0};
        rows[i] = (int32_t)i;
    }
    for (int k = 0; k < 3; k++) {
        CHECK(prop_hist_build(&L, sc, st, rows, n, h, bad[k], &err) == PROP_INVALID_ARG &&
              msg_has(&err, "histogram build: n_threads"));
        CHECK(prop_hist_build_ordered(&L, sc, st, rows, n, h, bad[k], &err) == PROP_INVALID_ARG);
        CHECK(prop_hist_build_q(&L, sc, qz, rows, n, hq, bad[k], &err) == PROP_INVALID_ARG);
    }
    prop_tree_data D = {sc, n, &L, ct, NULL};
    prop_tree_params P;
    memset(&P, 0, sizeof P);
    P.mode = PROP_TREE_CLASSIFY;
    P.min_samples_split = 2;
    P.min_samples_leaf = 1;
    prop_nodes nd;
    memset(&nd, 0, sizeof nd);
    CHECK(prop_tree_grow(&P, &D, st, rows, n, NULL, NULL, NULL, &nd, &err) == PROP_INVALID_ARG &&
          msg_has(&err, "tree: n_threads must be in") && msg_has(&err, "got 0") && nd.n_nodes == 0);
    P.n_threads = 1;
    P.mode = 7;
    CHECK(prop_tree_grow(&P, &D, st, rows, n, NULL, NULL, NULL, &nd, &err) == PROP_INVALID_ARG &&
          msg_has(&err, "mode"));
    P.mode = PROP_TREE_GRADIENT; /* boosting trees need row_leaf */
    CHECK(prop_tree_grow(&P, &D, st, rows, n, NULL, NULL, NULL, &nd, &err) == PROP_INVALID_ARG);
    P.mode = PROP_TREE_CLASSIFY;
    CHECK(prop_tree_grow(&P, &D, st, rows, n, NULL, NULL, leaf, &nd, &err) == PROP_OK);
    CHECK(nd.n_nodes > 1);
    prop_nodes_free(&nd);

    /* no missing code: remap allocates nothing, the raw codes are the slot codes */
    uint8_t *sc2 = (uint8_t *)&sc;
    CHECK(prop_hist_remap(&L, sc, n, &sc2, &err) == PROP_OK && sc2 == NULL);

    prop_hist_layout_free(&L);
    prop_ensemble_free(&e);
    free(sc);
    free(ct);
    free(st);
    free(rows);
    free(leaf);
    free(qz);
    free(hq);
    free(h);
    free(out);
    free(out2);
    free(codes);
    free(y);
    free(cnt);
    free(w);
}

/* prop_forest_score_cuts of every cut equals the reference scoring of that cut, bit for bit */
static void check_cuts(const prop_forest_view *v, const prop_score_params *sp,
                       const prop_score_cut *cuts, int32_t nc, const uint8_t *codes, int64_t n,
                       int32_t p)
{
    double *got = malloc((size_t)(nc * n) * sizeof *got), *want = malloc((size_t)n * sizeof *want);
    prop_error err;
    CHECK(prop_forest_score_cuts(v, sp, cuts, nc, codes, n, p, got, &err) == PROP_OK);
    for (int32_t c = 0; c < nc; c++) {
        prop_score_params one = prop_score_with_cut(sp, &cuts[c]);
        CHECK(prop_forest_score_ref(v, &one, codes, n, p, want, &err) == PROP_OK);
        CHECK(memcmp(got + c * n, want, (size_t)n * sizeof *want) == 0);
    }
    free(got);
    free(want);
}

/* many cuts in one walk: every cut's scores equal the reference's for that cut, bit for
 * bit, for a forest (average) and boosting (base + sum, probabilities), any thread count */
static void test_score_cuts(void)
{
    int64_t n = 3000;
    int32_t p = 5;
    uint8_t *codes = malloc((size_t)(n * p)), *y = malloc((size_t)n);
    make_data(n, p, 4, 11, codes, y);
    int64_t *cnt = malloc((size_t)n * 2 * sizeof *cnt);
    double *w = malloc((size_t)n * 2 * sizeof *w);
    for (int64_t i = 0; i < n; i++) {
        cnt[2 * i] = w[2 * i] = y[i] == 0;
        cnt[2 * i + 1] = w[2 * i + 1] = y[i] == 1;
    }
    prop_rows R = {codes, n, p, cnt, w, NULL};
    prop_forest_params P = {12, PROP_CRIT_GINI, 0, 2.0, 1.0, 2, 1, {1.0, 2.0}, 5, 2};
    prop_boost_params B = {9, 0.3, 5, 1.0, 1.0, 1.0, 1.0, 1.0, 0, 0, 2};
    prop_ensemble e[2];
    prop_error err;
    CHECK(prop_forest_fit(&P, &R, &e[0], &err) == PROP_OK);
    CHECK(prop_boost_fit(&B, &R, NULL, &e[1], &err) == PROP_OK);
    prop_score_cut cuts[] = {{0, 0, 0.0}, {5, 0, 0.0}, {0, 3, 0.0}, {7, 3, 0.0}, {0, 2, 60.0},
                             {8, 0, 60.0}, {3, 1, 0.0}, {0, 40, 5.0}, {9, 2, 0.0}};
    int32_t nc = (int32_t)(sizeof cuts / sizeof cuts[0]);
    double *got = malloc((size_t)(nc * n) * sizeof *got);
    for (int k = 0; k < 2; k++) {
        prop_forest_view v = view_of(&e[k], p);
        for (int nt = 1; nt <= 2; nt++)
            for (int proba = 0; proba <= 1; proba++) {
                prop_score_params sp = {0, 0, 0.0, k == 0, e[k].base_score, nt};
                sp.positive_proba = proba;
                check_cuts(&v, &sp, cuts, nc, codes, n, p);
            }
        /* the cut of sp itself must be empty; cuts are checked like scoring's */
        prop_score_params sp = {4, 0, 0.0, k == 0, e[k].base_score, 2};
        CHECK(prop_forest_score_cuts(&v, &sp, cuts, nc, codes, n, p, got, &err) ==
              PROP_INVALID_ARG);
        sp.n_trees = 0;
        CHECK(prop_forest_score_cuts(&v, &sp, cuts, 0, codes, n, p, got, &err) ==
              PROP_INVALID_ARG);
        prop_score_cut bad = {e[k].n_trees + 1, 0, 0.0};
        CHECK(prop_forest_score_cuts(&v, &sp, &bad, 1, codes, n, p, got, &err) ==
              PROP_INVALID_ARG);
        bad.n_trees = 0;
        bad.min_samples_split = NAN;
        CHECK(prop_forest_score_cuts(&v, &sp, &bad, 1, codes, n, p, got, &err) ==
              PROP_INVALID_ARG);
        /* counts that grow along a path (a hand-made model): the scan, same values */
        for (int64_t i = 1; i < e[k].nodes.n_nodes; i += 7)
            e[k].nodes.count[i] = e[k].nodes.count[0] + (double)i;
        sp.n_trees = 0;
        check_cuts(&v, &sp, cuts, nc, codes, n, p);
        prop_ensemble_free(&e[k]);
    }
    free(got);
    free(codes);
    free(y);
    free(cnt);
    free(w);
}

int main(void)
{
    RUN(test_hist_build_matches_reference);
    RUN(test_forest);
    RUN(test_score_cuts);
    RUN(test_hist_paths_thread_independent);
    RUN(test_hist_q_feature_groups);
    RUN(test_boost_threads_identical);
    RUN(test_weights_null_are_counts);
    RUN(test_labels_are_unit_counts);
    RUN(test_boost_compressed_ties);
    RUN(test_workspace_reuse);
    RUN(test_rng);
    RUN(test_rng_streams_pinned);
    RUN(test_rng_below_n);
    RUN(test_rng_poisson_constants);
    RUN(test_row_search_same_trees);
    RUN(test_bundles);
    RUN(test_tree_walk);
    RUN(test_bad_thread_counts);
    return check_summary("tree");
}
