/* predict.c - validation and scoring of flat tree ensembles. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/predict.h"
#include "propensity/types.h"

static prop_status validate_trees(const prop_forest_view *v, uint8_t *has_parent, prop_error *err);

prop_status prop_forest_validate(const prop_forest_view *v, prop_error *err)
{
    if (v->n_trees < 0 || v->n_nodes < 0 || v->n_nodes > INT32_MAX)
        return prop_fail(err, PROP_FORMAT, "tree arrays: invalid tree or node count");
    if (v->n_features <= 0)
        return prop_fail(err, PROP_FORMAT, "tree arrays: invalid feature count");
    if (v->tree_start == NULL || (v->n_nodes > 0 && (!v->feature || !v->threshold || !v->left ||
                                                     !v->right || !v->value || !v->count)))
        return prop_fail(err, PROP_FORMAT, "tree arrays: missing array");
    if (v->tree_start[0] != 0 || v->tree_start[v->n_trees] != v->n_nodes)
        return prop_fail(err, PROP_FORMAT,
                         "tree arrays: tree_start must run from 0 to the node count");
    uint8_t *has_parent = malloc((size_t)(v->n_nodes > 0 ? v->n_nodes : 1));
    if (has_parent == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory validating trees");
    memset(has_parent, 0, (size_t)(v->n_nodes > 0 ? v->n_nodes : 1));
    prop_status st = validate_trees(v, has_parent, err);
    free(has_parent);
    return st;
}

static prop_status validate_trees(const prop_forest_view *v, uint8_t *has_parent, prop_error *err)
{
    for (int64_t t = 0; t < v->n_trees; t++) {
        int64_t s = v->tree_start[t], e = v->tree_start[t + 1];
        if (e <= s || s < 0 || e > v->n_nodes)
            return prop_fail(err, PROP_FORMAT, "tree arrays: tree %lld has an invalid node range",
                             (long long)t);
        int64_t m = e - s;
        for (int64_t k = 0; k < m; k++) {
            int64_t i = s + k;
            int32_t l = v->left[i], r = v->right[i];
            if (!isfinite(v->value[i]) || !(v->count[i] >= 0.0) || !isfinite(v->count[i]))
                return prop_fail(err, PROP_FORMAT,
                                 "tree arrays: node %lld of tree %lld has an invalid value/count",
                                 (long long)k, (long long)t);
            if (l == -1 && r == -1)
                continue;
            if (l <= k || r <= k || l >= m || r >= m || l == r)
                return prop_fail(err, PROP_FORMAT,
                                 "tree arrays: node %lld of tree %lld has invalid children "
                                 "(%d, %d); children must follow their parent inside the tree",
                                 (long long)k, (long long)t, l, r);
            if (v->feature[i] < 0 || v->feature[i] >= v->n_features)
                return prop_fail(err, PROP_FORMAT,
                                 "tree arrays: node %lld of tree %lld splits on feature %d, "
                                 "outside [0, %d)",
                                 (long long)k, (long long)t, v->feature[i], v->n_features);
            if (v->threshold[i] >= PROP_MISSING_BIN)
                return prop_fail(err, PROP_FORMAT,
                                 "tree arrays: node %lld of tree %lld has threshold %d",
                                 (long long)k, (long long)t, v->threshold[i]);
            if (has_parent[s + l] || has_parent[s + r])
                return prop_fail(err, PROP_FORMAT,
                                 "tree arrays: a child of node %lld of tree %lld has two parents",
                                 (long long)k, (long long)t);
            has_parent[s + l] = has_parent[s + r] = 1;
        }
    }
    return PROP_OK;
}

prop_status prop_score_check_params(const prop_score_params *sp, const prop_forest_view *v,
                                    prop_error *err)
{
    if (sp->n_trees > v->n_trees)
        return prop_fail(err, PROP_INVALID_ARG, "asked for %lld trees, the model has %lld",
                         (long long)sp->n_trees, (long long)v->n_trees);
    if (isnan(sp->min_samples_split))
        return prop_fail(err, PROP_INVALID_ARG, "min_samples_split must not be NaN");
    if (!PROP_THREADS_OK(sp->n_threads))
        return prop_fail(err, PROP_INVALID_ARG, "scoring: " PROP_THREADS_FMT, PROP_MAX_THREADS,
                         sp->n_threads);
    return PROP_OK;
}

static prop_status check_score_args(const prop_forest_view *v, const prop_score_params *sp,
                                    const uint8_t *codes, int64_t n, int32_t p, const double *out,
                                    prop_error *err)
{
    if (p != v->n_features)
        return prop_fail(err, PROP_INVALID_ARG, "X has %d features, but the model was fitted "
                         "with %d", p, v->n_features);
    if (n < 0 || (n > 0 && (codes == NULL || out == NULL)))
        return prop_fail(err, PROP_INVALID_ARG, "invalid rows to score");
    prop_status st = prop_score_check_params(sp, v, err);
    if (st != PROP_OK)
        return st;
    return prop_forest_validate(v, err);
}

/* Value of the tree whose nodes start at s for one row, within the cut. */
static inline double tree_value(const prop_forest_view *v, int64_t s, const uint8_t *row,
                                int32_t max_depth, double mss)
{
    const int32_t *left = v->left + s, *right = v->right + s, *feat = v->feature + s;
    const uint8_t *thr = v->threshold + s;
    int64_t k = max_depth <= 0 && mss <= 0.0
                    ? prop_tree_walk(feat, thr, left, right, row, 0)
                    : prop_tree_walk_cut(feat, thr, left, right, v->count + s, row, max_depth, mss);
    return v->value[s + k];
}

static int64_t used_trees(const prop_forest_view *v, const prop_score_params *sp)
{
    return sp->n_trees > 0 ? sp->n_trees : v->n_trees;
}

prop_status prop_forest_score_ref(const prop_forest_view *v, const prop_score_params *sp,
                                  const uint8_t *codes, int64_t n, int32_t p, double *out,
                                  prop_error *err)
{
    prop_status st = check_score_args(v, sp, codes, n, p, out, err);
    if (st != PROP_OK)
        return st;
    int64_t T = used_trees(v, sp);
    for (int64_t i = 0; i < n; i++) {
        double acc = 0.0;
        for (int64_t t = 0; t < T; t++)
            acc += tree_value(v, v->tree_start[t], codes + i * p, sp->max_depth,
                              sp->min_samples_split);
        out[i] = sp->average ? (T > 0 ? acc / (double)T : 0.0) : sp->base + acc;
    }
    return PROP_OK;
}

/* Packed node for scoring: 16 bytes. Leaves (and nodes below the
 * min_samples_split cut) point to themselves, so a walk is branch-free and
 * finished rows simply stay put. A step is the split rule of tree.h
 * (prop_goes_left) on this layout. */
typedef struct {
    int32_t left, right, feature;
    uint8_t threshold;
} packed_node;

#define LANES 16

/* Score rows [0, n) of codes: chunks of rows (kept in cache) x every tree; inside a
 * chunk LANES rows walk a tree in lockstep so their memory loads overlap.
 * Multithreaded over chunks; each row sums its trees in tree order, so results
 * do not depend on the thread count. */
static prop_status score_blocks(const prop_forest_view *v, const prop_score_params *sp,
                                const uint8_t *codes, int64_t n, int32_t p, double *out, int nt,
                                prop_error *err)
{
    int64_t T = used_trees(v, sp);
    int64_t m = v->tree_start[T];
    packed_node *pk = malloc((size_t)(m > 0 ? m : 1) * sizeof *pk);
    if (pk == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory scoring");
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = v->tree_start[t]; i < v->tree_start[t + 1]; i++) {
            int leaf = v->left[i] < 0 || v->count[i] < sp->min_samples_split;
            int32_t self = (int32_t)(i - v->tree_start[t]);
            pk[i].left = leaf ? self : v->left[i];
            pk[i].right = leaf ? self : v->right[i];
            pk[i].feature = leaf ? 0 : v->feature[i];
            pk[i].threshold = v->threshold[i];
        }
    const int64_t C = 2048;
    int64_t nc = (n + C - 1) / C;
    int32_t max_depth = sp->max_depth > 0 ? sp->max_depth : INT32_MAX;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nc > 1)
    for (int64_t c = 0; c < nc; c++) {
        int64_t i0 = c * C, i1 = i0 + C < n ? i0 + C : n;
        for (int64_t i = i0; i < i1; i++)
            out[i] = 0.0;
        for (int64_t t = 0; t < T; t++) {
            const packed_node *nd = pk + v->tree_start[t];
            const double *val = v->value + v->tree_start[t];
            int64_t i = i0;
            for (; i + LANES <= i1; i += LANES) {
                const uint8_t *row[LANES];
                int32_t k[LANES];
                for (int r = 0; r < LANES; r++) {
                    row[r] = codes + (i + r) * p;
                    k[r] = 0;
                }
                int moving = 1;
                for (int32_t d = 0; moving && d < max_depth; d++) {
                    moving = 0;
                    for (int r = 0; r < LANES; r++) {
                        const packed_node *q = nd + k[r];
                        int32_t nk = prop_goes_left(row[r][q->feature], q->threshold) ? q->left
                                                                                      : q->right;
                        moving |= nk != k[r];
                        k[r] = nk;
                    }
                }
                for (int r = 0; r < LANES; r++)
                    out[i + r] += val[k[r]];
            }
            for (; i < i1; i++) {
                const uint8_t *rw = codes + i * p;
                int32_t k = 0;
                for (int32_t d = 0; d < max_depth; d++) {
                    const packed_node *q = nd + k;
                    int32_t nk = prop_goes_left(rw[q->feature], q->threshold) ? q->left : q->right;
                    if (nk == k)
                        break;
                    k = nk;
                }
                out[i] += val[k];
            }
        }
        for (int64_t i = i0; i < i1; i++)
            out[i] = sp->average ? (T > 0 ? out[i] / (double)T : 0.0) : sp->base + out[i];
    }
    free(pk);
    return PROP_OK;
}

prop_status prop_forest_score(const prop_forest_view *v, const prop_score_params *sp,
                              const uint8_t *codes, int64_t n, int32_t p, double *out,
                              prop_error *err)
{
    prop_status st = check_score_args(v, sp, codes, n, p, out, err);
    if (st != PROP_OK)
        return st;
    return score_blocks(v, sp, codes, n, p, out, sp->n_threads, err);
}

prop_status prop_forest_gains(const prop_forest_view *v, const prop_score_params *sp, double *gains,
                              prop_error *err)
{
    prop_status st = prop_score_check_params(sp, v, err);
    if (st != PROP_OK)
        return st;
    if ((st = prop_forest_validate(v, err)) != PROP_OK)
        return st;
    if (v->gain == NULL && v->n_nodes > 0)
        return prop_fail(err, PROP_FORMAT, "tree arrays: missing gains");
    int64_t T = used_trees(v, sp);
    int32_t p = v->n_features;
    memset(gains, 0, (size_t)(T * p) * sizeof *gains);
    int64_t cap = 0;
    int64_t *stack = NULL;
    int32_t *depth = NULL;
    for (int64_t t = 0; t < T; t++) {
        int64_t s = v->tree_start[t], m = v->tree_start[t + 1] - s;
        if (m > cap) {
            free(stack);
            free(depth);
            cap = m;
            stack = malloc((size_t)cap * sizeof *stack);
            depth = malloc((size_t)cap * sizeof *depth);
            if (!stack || !depth) {
                free(stack);
                free(depth);
                return prop_fail(err, PROP_NOMEM, "out of memory computing importances");
            }
        }
        int64_t sp_ = 0;
        stack[sp_] = 0;
        depth[sp_++] = 0;
        while (sp_ > 0) {
            sp_--;
            int64_t k = stack[sp_];
            int32_t d = depth[sp_];
            int64_t i = s + k;
            if (v->left[i] < 0 || (sp->max_depth > 0 && d >= sp->max_depth) ||
                v->count[i] < sp->min_samples_split)
                continue;
            gains[t * p + v->feature[i]] += v->gain[i];
            /* validated: every node has one parent, so the stack holds < m items */
            stack[sp_] = v->left[i];
            depth[sp_++] = d + 1;
            stack[sp_] = v->right[i];
            depth[sp_++] = d + 1;
        }
    }
    free(stack);
    free(depth);
    return PROP_OK;
}

prop_status prop_scores_to_proba(const double *scores, int64_t u, const int64_t *inverse,
                                 int64_t n, int logistic, double *out2, int n_threads,
                                 prop_error *err)
{
    if (!PROP_THREADS_OK(n_threads))
        return prop_fail(err, PROP_INVALID_ARG, "probabilities: " PROP_THREADS_FMT,
                         PROP_MAX_THREADS, n_threads);
    if (u < 0 || n < 0)
        return prop_fail(err, PROP_INVALID_ARG, "probabilities: invalid sizes");
    /* the probabilities of the u scores once (p1), or of each row's score when p1
     * cannot be allocated: the same values either way */
    double *p1 = malloc((size_t)(u > 0 ? u : 1) * sizeof *p1);
    if (p1 != NULL) {
        for (int64_t k = 0; k < u; k++)
            p1[k] = logistic ? 1.0 / (1.0 + exp(-scores[k])) : scores[k];
        scores = p1;
    }
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 65536) if (n > 100000)
    for (int64_t i = 0; i < n; i++) {
        int64_t k = inverse ? inverse[i] : i;
        double p = p1 ? scores[k] : (logistic ? 1.0 / (1.0 + exp(-scores[k])) : scores[k]);
        out2[2 * i] = 1.0 - p;
        out2[2 * i + 1] = p;
    }
    free(p1);
    return PROP_OK;
}
