/* forest.c - random forest: Poisson bootstrap on weighted rows, trees in parallel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/forest.h"
#include "propensity/rng.h"

void prop_ensemble_free(prop_ensemble *e)
{
    prop_nodes_free(&e->nodes);
    free(e->tree_start);
    free(e->eval_history);
    memset(e, 0, sizeof *e);
}

prop_status prop_rows_check(const prop_rows *R, prop_error *err)
{
    if (R->codes == NULL || (R->counts == NULL) == (R->labels == NULL))
        return prop_fail(err, PROP_INVALID_ARG, "rows and either counts or labels are required");
    if (R->n_rows <= 0)
        return prop_fail(err, PROP_INVALID_ARG, "training needs at least one row");
    if (R->n_rows > INT32_MAX)
        return prop_fail(err, PROP_INVALID_ARG, "at most 2^31-1 (unique) rows are supported");
    if (R->n_features <= 0)
        return prop_fail(err, PROP_INVALID_ARG, "training needs at least one feature");
    if (R->labels != NULL)
        for (int64_t i = 0; i < R->n_rows; i++)
            if (R->labels[i] > 1)
                return prop_fail(err, PROP_INVALID_ARG, "labels must be 0 or 1 (row %lld: %d)",
                                 (long long)i, (int)R->labels[i]);
    for (int64_t i = 0; i < 2 * R->n_rows; i++) {
        if (R->counts != NULL && R->counts[i] < 0)
            return prop_fail(err, PROP_INVALID_ARG, "counts must be >= 0 (row %lld)",
                             (long long)(i / 2));
        if (R->weights != NULL && (!isfinite(R->weights[i]) || R->weights[i] < 0.0))
            return prop_fail(err, PROP_INVALID_ARG,
                             "weights must be finite and >= 0 (row %lld)", (long long)(i / 2));
    }
    return PROP_OK;
}

prop_status prop_forest_check_params(const prop_forest_params *P, int32_t n_features,
                                     prop_error *err)
{
    if (P->n_estimators <= 0)
        return prop_fail(err, PROP_INVALID_ARG, "n_estimators must be >= 1, got %d",
                         P->n_estimators);
    if (P->criterion != PROP_CRIT_GINI && P->criterion != PROP_CRIT_ENTROPY)
        return prop_fail(err, PROP_INVALID_ARG, "criterion must be gini or entropy");
    if (!(P->min_samples_split >= 2.0))
        return prop_fail(err, PROP_INVALID_ARG, "min_samples_split must be >= 2");
    if (!(P->min_samples_leaf >= 1.0))
        return prop_fail(err, PROP_INVALID_ARG, "min_samples_leaf must be >= 1");
    if (P->max_features < 1 || P->max_features > n_features)
        return prop_fail(err, PROP_INVALID_ARG, "max_features must be in [1, %d], got %d",
                         n_features, P->max_features);
    for (int k = 0; k < 2; k++)
        if (!isfinite(P->class_weight[k]) || P->class_weight[k] < 0.0)
            return prop_fail(err, PROP_INVALID_ARG, "class_weight must be finite and >= 0");
    if (!(isfinite(P->max_samples) && P->max_samples >= 0.0))
        return prop_fail(err, PROP_INVALID_ARG, "max_samples must be finite and >= 0");
    if (P->max_samples > 0.0 && !P->bootstrap)
        return prop_fail(err, PROP_INVALID_ARG, "max_samples needs bootstrap");
    if (!PROP_THREADS_OK(P->n_threads))
        return prop_fail(err, PROP_INVALID_ARG, PROP_THREADS_FMT, PROP_MAX_THREADS, P->n_threads);
    return PROP_OK;
}

typedef struct {
    const prop_forest_params *P;
    const prop_rows *R;
    const prop_tree_data *D;
    double boot_scale; /* rows / total effective weight */
    const prop_poisson *pois; /* bootstrap: the Poisson constants of row i, label k at
                               * 2 * i + k (the same means in every tree), or NULL */
} forest_ctx;

/* The bootstrap mean of row i, label k. */
static double boot_mean(const forest_ctx *ctx, int64_t i, int k)
{
    double wk = ctx->P->class_weight[k] * prop_rows_weight(ctx->R, 2 * i + k);
    return ctx->boot_scale == 1.0 ? wk : wk * ctx->boot_scale;
}

/* Poisson constants are precomputed when they take at most this many bytes */
#define POISSON_TABLE_MAX ((size_t)256 << 20)

static prop_status grow_one(const forest_ctx *ctx, int32_t t, prop_hstat *stats, int32_t *rows,
                            prop_tree_workspace *ws, prop_nodes *out, prop_error *err)
{
    const prop_forest_params *P = ctx->P;
    const prop_rows *R = ctx->R;
    uint64_t tseed = prop_mix64(P->seed * 0x100000001B3ULL + (uint64_t)t);
    prop_rng rng;
    prop_rng_seed(&rng, tseed);
    int64_t n = 0;
    for (int64_t i = 0; i < R->n_rows; i++) {
        double m[2], w[2];
        for (int k = 0; k < 2; k++) {
            int64_t c = prop_rows_count(R, 2 * i + k);
            double wk = P->class_weight[k] * prop_rows_weight(R, 2 * i + k);
            if (P->bootstrap) {
                /* weighted bootstrap (scikit-learn >= 1.9): rows are drawn with
                 * probability proportional to their weight and then count once per
                 * draw. Poisson version: multiplicity ~ Poisson(N * w / sum(w)),
                 * which is Poisson(count) for unit weights. */
                double lam = boot_mean(ctx, i, k);
                m[k] = !(lam > 0.0) ? 0.0
                       : ctx->pois ? (double)prop_rng_poisson_c(&rng, &ctx->pois[2 * i + k])
                                   : (double)prop_rng_poisson(&rng, lam);
                w[k] = m[k];
            } else {
                m[k] = (double)c;
                w[k] = c > 0 ? wk : 0.0;
            }
        }
        stats[i].a = w[0];
        stats[i].b = w[1];
        stats[i].c = m[0] + m[1];
        if (stats[i].c > 0.0)
            rows[n++] = (int32_t)i;
    }
    prop_tree_params tp;
    memset(&tp, 0, sizeof tp);
    tp.mode = PROP_TREE_CLASSIFY;
    tp.criterion = P->criterion;
    tp.max_depth = P->max_depth;
    tp.min_samples_split = P->min_samples_split;
    tp.min_samples_leaf = P->min_samples_leaf;
    tp.max_features = P->max_features;
    tp.seed = tseed;
    tp.n_threads = 1;
    tp.cat = P->cat;
    return prop_tree_grow(&tp, ctx->D, stats, rows, n, NULL, ws, NULL, out, err);
}

prop_status prop_forest_fit(const prop_forest_params *P, const prop_rows *R, prop_ensemble *out,
                            prop_error *err)
{
    memset(out, 0, sizeof *out);
    prop_status st = prop_rows_check(R, err);
    if (st != PROP_OK)
        return st;
    if ((st = prop_forest_check_params(P, R->n_features, err)) != PROP_OK)
        return st;
    prop_hist_layout L;
    if ((st = prop_hist_layout_init(&L, R->codes, R->n_rows, R->n_features, err)) != PROP_OK)
        return st;
    uint8_t *codes_t = NULL, *remapped = NULL;
    prop_poisson *pois = NULL;
    int32_t T = P->n_estimators;
    prop_nodes *trees = calloc((size_t)T, sizeof *trees);
    prop_status *tst = calloc((size_t)T, sizeof *tst);
    prop_error *terr = calloc((size_t)T, sizeof *terr);
    if (trees == NULL || tst == NULL || terr == NULL) {
        st = prop_fail(err, PROP_NOMEM, "out of memory fitting a forest");
        goto done;
    }
    if ((st = prop_hist_remap(&L, R->codes, R->n_rows, &remapped, err)) != PROP_OK)
        goto done;
    const uint8_t *codes = remapped != NULL ? remapped : R->codes;
    if ((st = prop_codes_transpose(codes, R->n_rows, R->n_features, P->n_threads, &codes_t,
                                   err)) != PROP_OK)
        goto done;
    prop_tree_data D = {codes, R->n_rows, &L, codes_t, NULL};
    double n_total = 0.0, w_total = 0.0;
    for (int64_t i = 0; i < R->n_rows; i++)
        for (int k = 0; k < 2; k++) {
            n_total += (double)prop_rows_count(R, 2 * i + k);
            w_total += P->class_weight[k] * prop_rows_weight(R, 2 * i + k);
        }
    if (!(w_total > 0.0)) {
        st = prop_fail(err, PROP_INVALID_ARG, "the total training weight is zero");
        goto done;
    }
    /* max_samples draws per tree instead of n_total (scikit-learn's max_samples): every
     * Poisson mean scales by max_samples / n_total */
    double draws = P->max_samples > 0.0 ? P->max_samples : n_total;
    forest_ctx ctx = {P, R, &D, draws / w_total, NULL};
    if (P->bootstrap && (size_t)R->n_rows * 2 * sizeof *pois <= POISSON_TABLE_MAX &&
        (pois = malloc((size_t)R->n_rows * 2 * sizeof *pois)) != NULL) {
        for (int64_t i = 0; i < R->n_rows; i++)
            for (int k = 0; k < 2; k++)
                prop_poisson_init(&pois[2 * i + k], boot_mean(&ctx, i, k));
        ctx.pois = pois;
    }
    /* one tree per thread at a time: more threads than trees would idle */
    const int nt = P->n_threads < T ? P->n_threads : T;
    int nomem = 0;
#pragma omp parallel num_threads(nt)
    {
        prop_hstat *stats = malloc((size_t)R->n_rows * sizeof *stats);
        int32_t *rows = malloc((size_t)R->n_rows * sizeof *rows);
        prop_tree_workspace *ws = NULL;
        prop_error e2;
        int64_t last = 0; /* nodes of this thread's last tree: room reserved for the next */
        if (stats == NULL || rows == NULL || prop_tree_workspace_new(&ws, &e2) != PROP_OK) {
#pragma omp atomic write
            nomem = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int32_t t = 0; t < T; t++) {
            if (stats == NULL || rows == NULL || ws == NULL)
                continue;
            tst[t] = prop_nodes_reserve(&trees[t], last + last / 8 + 1, &terr[t]);
            if (tst[t] == PROP_OK)
                tst[t] = grow_one(&ctx, t, stats, rows, ws, &trees[t], &terr[t]);
            last = trees[t].n_nodes;
        }
        prop_tree_workspace_free(ws);
        free(stats);
        free(rows);
    }
    if (nomem) {
        st = prop_fail(err, PROP_NOMEM, "out of memory fitting a forest");
        goto done;
    }
    for (int32_t t = 0; t < T; t++)
        if (tst[t] != PROP_OK) {
            st = prop_fail(err, tst[t], "tree %d: %s", t, terr[t].msg);
            goto done;
        }
    out->tree_start = malloc(((size_t)T + 1) * sizeof *out->tree_start);
    if (out->tree_start == NULL) {
        st = prop_fail(err, PROP_NOMEM, "out of memory fitting a forest");
        goto done;
    }
    int64_t total = 0;
    for (int32_t t = 0; t < T; t++)
        total += trees[t].n_nodes;
    if ((st = prop_nodes_reserve(&out->nodes, total, err)) != PROP_OK)
        goto done;
    out->tree_start[0] = 0;
    for (int32_t t = 0; t < T; t++) {
        if ((st = prop_nodes_append(&out->nodes, &trees[t], err)) != PROP_OK)
            goto done;
        out->tree_start[t + 1] = out->nodes.n_nodes;
        prop_nodes_free(&trees[t]);
    }
    out->n_trees = T;
    out->best_iteration = -1;
done:
    if (trees != NULL)
        for (int32_t t = 0; t < T; t++)
            prop_nodes_free(&trees[t]);
    free(trees);
    free(tst);
    free(terr);
    free(remapped);
    free(codes_t);
    free(pois);
    prop_hist_layout_free(&L);
    if (st != PROP_OK)
        prop_ensemble_free(out);
    return st;
}
