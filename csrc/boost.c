/* boost.c - gradient boosting with logistic loss on weighted binned rows. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/boost.h"
#include "propensity/rng.h"
#include "propensity/tree.h"

prop_status prop_boost_check_params(const prop_boost_params *P, prop_error *err)
{
    if (P->n_estimators <= 0)
        return prop_fail(err, PROP_INVALID_ARG, "n_estimators must be >= 1, got %d",
                         P->n_estimators);
    if (!(P->learning_rate > 0.0) || !isfinite(P->learning_rate))
        return prop_fail(err, PROP_INVALID_ARG, "learning_rate must be > 0");
    if (!(P->min_child_weight >= 0.0) || !isfinite(P->min_child_weight))
        return prop_fail(err, PROP_INVALID_ARG, "min_child_weight must be >= 0");
    if (!(P->reg_lambda >= 0.0) || !isfinite(P->reg_lambda))
        return prop_fail(err, PROP_INVALID_ARG, "reg_lambda must be >= 0");
    if (!(P->subsample > 0.0 && P->subsample <= 1.0))
        return prop_fail(err, PROP_INVALID_ARG, "subsample must be in (0, 1]");
    if (!(P->colsample_bytree > 0.0 && P->colsample_bytree <= 1.0))
        return prop_fail(err, PROP_INVALID_ARG, "colsample_bytree must be in (0, 1]");
    if (!(P->scale_pos_weight > 0.0) || !isfinite(P->scale_pos_weight))
        return prop_fail(err, PROP_INVALID_ARG, "scale_pos_weight must be > 0");
    if (!PROP_THREADS_OK(P->n_threads))
        return prop_fail(err, PROP_INVALID_ARG, PROP_THREADS_FMT, PROP_MAX_THREADS, P->n_threads);
    return PROP_OK;
}

static inline double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* One tree of an ensemble's node arrays (pointers offset to its first node). */
typedef struct {
    const int32_t *feat, *left, *right;
    const uint8_t *thr;
    const uint64_t *cb;
    const double *val;
} tree_view;

static tree_view tree_view_of(const prop_nodes *nd, int64_t base)
{
    tree_view v = {NULL, NULL, NULL, NULL, NULL, NULL};
    if (base < 0)
        return v;
    v.feat = nd->feature + base;
    v.left = nd->left + base;
    v.right = nd->right + base;
    v.thr = nd->threshold + base;
    v.cb = prop_node_bits(nd->cat_bits, base);
    v.val = nd->value + base;
    return v;
}

/* The value of the leaf a row (its codes) reaches from local node start (< 0: the
 * root; a row of the tree's sample knows its leaf). Slot and raw codes both work: a
 * missing code is above every threshold and in no category set. */
static inline double tree_value(const tree_view *v, const uint8_t *row, int32_t start)
{
    return v->val[prop_tree_walk(v->feat, v->thr, v->left, v->right, v->cb, row,
                                 start >= 0 ? start : 0)];
}

/* Add the tree starting at node `base` of nd to f for n rows of codes (walked from
 * the root). */
static void add_tree(const prop_nodes *nd, int64_t base, const uint8_t *codes, int64_t n,
                     int32_t p, double *f, int nt)
{
    const tree_view v = tree_view_of(nd, base);
#pragma omp parallel for num_threads(nt) schedule(static) if (n > 200000)
    for (int64_t i = 0; i < n; i++)
        f[i] += tree_value(&v, codes + i * p, -1);
}

static double eval_logloss(const prop_eval_set *E, const double *f)
{
    double num = 0.0, den = 0.0;
    for (int64_t i = 0; i < E->n_rows; i++) {
        double w = E->weight ? E->weight[i] : 1.0, x = f[i];
        /* log(1 + exp(-x)) for y=1, log(1 + exp(x)) for y=0, stably */
        double z = E->y[i] ? -x : x;
        double l = z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
        num += w * l;
        den += w;
    }
    return den > 0 ? num / den : 0.0;
}

/* The boosting weight of row i, label k: its summed sample weight, times
 * scale_pos_weight for the positive label. */
static inline double label_weight(const prop_rows *R, int64_t i, int k, double spw)
{
    double w = prop_rows_weight(R, 2 * i + k);
    return k ? w * spw : w;
}

prop_status prop_boost_fit(const prop_boost_params *P, const prop_rows *R, const prop_eval_set *E,
                           prop_ensemble *out, prop_error *err)
{
    memset(out, 0, sizeof *out);
    out->best_iteration = -1;
    prop_status st = prop_rows_check(R, err);
    if (st != PROP_OK)
        return st;
    if ((st = prop_boost_check_params(P, err)) != PROP_OK)
        return st;
    if (E != NULL && (E->n_rows <= 0 || E->codes == NULL || E->y == NULL))
        return prop_fail(err, PROP_INVALID_ARG, "the eval set is empty");
    int64_t n = R->n_rows;
    int32_t p = R->n_features;
    const int nt = P->n_threads;
    prop_hist_layout L;
    if ((st = prop_hist_layout_init(&L, R->codes, n, p, err)) != PROP_OK)
        return st;
    uint8_t *remapped = NULL;
    int32_t T = P->n_estimators;
    prop_hstat *stats = malloc((size_t)n * sizeof *stats);
    int32_t *rows = malloc((size_t)n * sizeof *rows);
    /* rows of non-zero count; labels (every row one row): all of them, not stored */
    int32_t *rows_in = R->labels == NULL ? malloc((size_t)n * sizeof *rows_in) : NULL;
    double *f = malloc((size_t)n * sizeof *f);
    double *ef = E ? malloc((size_t)E->n_rows * sizeof *ef) : NULL;
    uint8_t *mask = malloc((size_t)p);
    int32_t *perm = malloc((size_t)p * sizeof *perm);
    prop_tree_workspace *ws = NULL;
    uint8_t *codes_t = NULL;
    prop_hist_bundles bundles;
    memset(&bundles, 0, sizeof bundles);
    int32_t *row_leaf = malloc((size_t)n * sizeof *row_leaf);
    out->tree_start = malloc(((size_t)T + 1) * sizeof *out->tree_start);
    out->eval_history = E ? malloc((size_t)T * sizeof *out->eval_history) : NULL;
    if (!stats || !rows || (R->labels == NULL && !rows_in) || !f || (E && !ef) || !mask ||
        !perm || !row_leaf || !out->tree_start || (E && !out->eval_history)) {
        st = prop_fail(err, PROP_NOMEM, "out of memory fitting gradient boosting");
        goto done;
    }
    if ((st = prop_tree_workspace_new(&ws, err)) != PROP_OK ||
        (st = prop_hist_remap(&L, R->codes, n, &remapped, err)) != PROP_OK)
        goto done;
    const uint8_t *codes = remapped != NULL ? remapped : R->codes;
    if ((st = prop_codes_transpose(codes, n, p, nt, &codes_t, err)) != PROP_OK)
        goto done;
    int bundled = 0;
    if ((st = prop_hist_bundles_init(&L, codes, n, &bundles, &bundled, err)) != PROP_OK)
        goto done;
    prop_tree_data D = {codes, n, &L, codes_t, bundled ? &bundles : NULL};

    /* the effective per-label weights are label_weight(): each row's summed weight, the
     * positive label's times scale_pos_weight (worked out where used, not stored: 16
     * bytes a row) */
    const double spw = P->scale_pos_weight;
    double W[2] = {0.0, 0.0};
    for (int64_t i = 0; i < n; i++) {
        W[0] += label_weight(R, i, 0, spw);
        W[1] += label_weight(R, i, 1, spw);
    }
    if (!(W[0] > 0.0) || !(W[1] > 0.0)) {
        st = prop_fail(err, PROP_INVALID_ARG, "both classes need a positive total weight");
        goto done;
    }
    double base = log(W[1] / W[0]);
    out->base_score = base;
    for (int64_t i = 0; i < n; i++)
        f[i] = base;
    if (E)
        for (int64_t i = 0; i < E->n_rows; i++)
            ef[i] = base;

    prop_tree_params tp;
    memset(&tp, 0, sizeof tp);
    tp.mode = PROP_TREE_GRADIENT;
    tp.max_depth = P->max_depth;
    tp.min_child_weight = P->min_child_weight;
    tp.reg_lambda = P->reg_lambda;
    tp.learning_rate = P->learning_rate;
    tp.n_threads = nt;
    tp.cat = P->cat;
    int32_t n_col = (int32_t)floor(P->colsample_bytree * p + 1e-9);
    if (n_col < 1)
        n_col = 1;
    int64_t n_in = rows_in == NULL ? n : 0;
    if (rows_in != NULL)
        for (int64_t i = 0; i < n; i++)
            if (prop_rows_count(R, 2 * i) + prop_rows_count(R, 2 * i + 1) > 0)
                rows_in[n_in++] = (int32_t)i;
    double best_loss = INFINITY;
    int32_t best_it = -1;
    out->tree_start[0] = 0;
    int64_t prev_tb = -1; /* the last tree, not yet added to f (see the gradient loop) */
    int32_t t;
    for (t = 0; t < T; t++) {
        uint64_t rseed = prop_mix64(P->seed * 0x100000001B3ULL + (uint64_t)t);
        prop_rng rng;
        prop_rng_seed(&rng, rseed);
        /* row subsample (per row and label): the sampled multiplicities, kept in a/b
         * until the gradients below; without subsampling every row is in, whole */
        int64_t m = 0;
        const int sub = P->subsample < 1.0;
        if (sub) {
            for (int64_t i = 0; i < n; i++) {
                double m0 = (double)prop_rng_binomial(&rng, prop_rows_count(R, 2 * i),
                                                      P->subsample);
                double m1 = (double)prop_rng_binomial(&rng, prop_rows_count(R, 2 * i + 1),
                                                      P->subsample);
                stats[i] = (prop_hstat){m0, m1, m0 + m1};
                if (m0 + m1 > 0.0)
                    rows[m++] = (int32_t)i;
            }
        } else { /* the tree reorders rows: a fresh copy each round */
            if (rows_in != NULL)
                memcpy(rows, rows_in, (size_t)n_in * sizeof *rows);
            else
                for (int64_t i = 0; i < n; i++)
                    rows[i] = (int32_t)i;
            m = n_in;
        }
        /* the previous tree's values are added to f here, in the pass that reads f for
         * the gradients (add_tree's sums, one pass fewer); the last tree's are never
         * needed */
        const tree_view pv = tree_view_of(&out->nodes, prev_tb);
#pragma omp parallel for num_threads(nt) schedule(static) if (n > 200000)
        for (int64_t i = 0; i < n; i++) {
            if (prev_tb >= 0)
                f[i] += tree_value(&pv, codes + i * p, row_leaf[i]);
            int64_t c0 = prop_rows_count(R, 2 * i), c1 = prop_rows_count(R, 2 * i + 1);
            double a0 = c0 > 0 ? label_weight(R, i, 0, spw) : 0.0;
            double a1 = c1 > 0 ? label_weight(R, i, 1, spw) : 0.0;
            double c = (double)(c0 + c1);
            if (sub) {
                a0 = c0 > 0 ? a0 * (stats[i].a / (double)c0) : 0.0;
                a1 = c1 > 0 ? a1 * (stats[i].b / (double)c1) : 0.0;
                c = stats[i].c;
            }
            double pr = sigmoid(f[i]);
            double h = pr * (1.0 - pr);
            if (h < 1e-16)
                h = 1e-16;
            stats[i] = (prop_hstat){a0 * pr - a1 * (1.0 - pr), (a0 + a1) * h, c};
        }
        /* column subsample for this tree */
        memset(mask, 1, (size_t)p);
        if (n_col < p) {
            for (int32_t j = 0; j < p; j++)
                perm[j] = j;
            for (int32_t j = 0; j < n_col; j++) {
                int32_t r = j + (int32_t)prop_rng_below(&rng, (uint64_t)(p - j));
                int32_t tmp = perm[j];
                perm[j] = perm[r];
                perm[r] = tmp;
            }
            memset(mask, 0, (size_t)p);
            for (int32_t j = 0; j < n_col; j++)
                mask[perm[j]] = 1;
        }
        tp.seed = rseed;
        int64_t tb = out->nodes.n_nodes;
        if ((st = prop_tree_grow(&tp, &D, stats, rows, m, mask, ws, row_leaf, &out->nodes, err)) != PROP_OK)
            goto done;
        out->tree_start[t + 1] = out->nodes.n_nodes;
        prev_tb = tb; /* added to f by the next round's gradient pass */
        if (E) {
            add_tree(&out->nodes, tb, E->codes, E->n_rows, p, ef, nt);
            double loss = eval_logloss(E, ef);
            out->eval_history[t] = loss;
            if (loss < best_loss) {
                best_loss = loss;
                best_it = t;
            } else if (P->early_stopping_rounds > 0 && t - best_it >= P->early_stopping_rounds) {
                t++;
                break;
            }
        }
    }
    out->n_trees = t;
    out->n_history = E ? t : 0;
    if (E && P->early_stopping_rounds > 0) {
        /* keep the trees up to the best iteration */
        out->best_iteration = best_it;
        out->n_trees = best_it + 1;
        out->nodes.n_nodes = out->tree_start[best_it + 1];
    }
done:
    free(remapped);
    free(stats);
    free(rows);
    free(rows_in);
    free(f);
    free(ef);
    free(mask);
    free(perm);
    prop_tree_workspace_free(ws);
    free(row_leaf);
    free(codes_t);
    prop_hist_bundles_free(&bundles);
    prop_hist_layout_free(&L);
    if (st != PROP_OK)
        prop_ensemble_free(out);
    return st;
}
