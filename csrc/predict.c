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

static prop_status check_score_args(const prop_forest_view *v, const prop_score_params *sp,
                                    const uint8_t *codes, int64_t n, int32_t p, const double *out,
                                    prop_error *err)
{
    if (p != v->n_features)
        return prop_fail(err, PROP_INVALID_ARG, "X has %d features, but the model was fitted "
                         "with %d", p, v->n_features);
    if (n < 0 || (n > 0 && (codes == NULL || out == NULL)))
        return prop_fail(err, PROP_INVALID_ARG, "invalid rows to score");
    if (sp->n_trees > v->n_trees)
        return prop_fail(err, PROP_INVALID_ARG, "asked for %lld trees, the model has %lld",
                         (long long)sp->n_trees, (long long)v->n_trees);
    return prop_forest_validate(v, err);
}

static inline double tree_value(const prop_forest_view *v, int64_t s, const uint8_t *row,
                                int32_t max_depth, double mss)
{
    const int32_t *left = v->left + s, *right = v->right + s, *feat = v->feature + s;
    const uint8_t *thr = v->threshold + s;
    int64_t k = 0;
    if (max_depth <= 0 && mss <= 0.0) {
        while (left[k] >= 0)
            k = row[feat[k]] <= thr[k] ? left[k] : right[k];
    } else {
        const double *cnt = v->count + s;
        int32_t d = 0;
        while (left[k] >= 0 && (max_depth <= 0 || d < max_depth) && cnt[k] >= mss) {
            k = row[feat[k]] <= thr[k] ? left[k] : right[k];
            d++;
        }
    }
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

/* Score rows [0, n) of codes in blocks (several trees per block), multithreaded. */
static void score_blocks(const prop_forest_view *v, const prop_score_params *sp,
                         const uint8_t *codes, int64_t n, int32_t p, double *out, int nt)
{
    int64_t T = used_trees(v, sp);
    const int64_t B = 128;
    int64_t nb = (n + B - 1) / B;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4) if (nb > 1)
    for (int64_t b = 0; b < nb; b++) {
        int64_t i0 = b * B, i1 = i0 + B < n ? i0 + B : n;
        double acc[128];
        for (int64_t i = i0; i < i1; i++)
            acc[i - i0] = 0.0;
        for (int64_t t = 0; t < T; t++) {
            int64_t s = v->tree_start[t];
            for (int64_t i = i0; i < i1; i++)
                acc[i - i0] += tree_value(v, s, codes + i * p, sp->max_depth,
                                          sp->min_samples_split);
        }
        for (int64_t i = i0; i < i1; i++)
            out[i] = sp->average ? (T > 0 ? acc[i - i0] / (double)T : 0.0) : sp->base + acc[i - i0];
    }
}

static uint64_t hash_row(const uint8_t *row, int32_t p)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)p;
    int32_t j = 0;
    for (; j + 8 <= p; j += 8) {
        uint64_t w;
        memcpy(&w, row + j, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (int32_t k = 0; j + k < p; k++)
        w |= (uint64_t)row[j + k] << (8 * k);
    h = (h ^ w) * 0x94D049BB133111EBULL;
    return h ^ (h >> 31);
}

/* Dedup: unique rows in first-seen order; returns the number of unique rows, or
 * -1 when more than max_unique (then dedup does not pay) or out of memory. */
static int64_t dedup_rows(const uint8_t *codes, int64_t n, int32_t p, int64_t max_unique,
                          int32_t *inverse, int64_t *first)
{
    int64_t cap = 1;
    while (cap < 2 * max_unique)
        cap <<= 1;
    int32_t *table = malloc((size_t)cap * sizeof *table);
    if (table == NULL)
        return -1;
    memset(table, 0xff, (size_t)cap * sizeof *table);
    int64_t u = 0;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *row = codes + i * p;
        uint64_t h = hash_row(row, p) & (uint64_t)(cap - 1);
        for (;;) {
            int32_t id = table[h];
            if (id < 0) {
                if (u >= max_unique) {
                    free(table);
                    return -1;
                }
                table[h] = (int32_t)u;
                first[u] = i;
                inverse[i] = (int32_t)u++;
                break;
            }
            if (memcmp(codes + first[id] * p, row, (size_t)p) == 0) {
                inverse[i] = id;
                break;
            }
            h = (h + 1) & (uint64_t)(cap - 1);
        }
    }
    free(table);
    return u;
}

prop_status prop_forest_score(const prop_forest_view *v, const prop_score_params *sp,
                              const uint8_t *codes, int64_t n, int32_t p, double *out,
                              prop_error *err)
{
    prop_status st = check_score_args(v, sp, codes, n, p, out, err);
    if (st != PROP_OK)
        return st;
    int nt = sp->n_threads > 0 ? sp->n_threads : 1;
    if (sp->dedup && n >= 4096 && n < INT32_MAX) {
        int64_t max_unique = n / 4;
        int32_t *inverse = malloc((size_t)n * sizeof *inverse);
        int64_t *first = malloc((size_t)max_unique * sizeof *first);
        int64_t u = (inverse && first) ? dedup_rows(codes, n, p, max_unique, inverse, first) : -1;
        uint8_t *uniq = u > 0 ? malloc((size_t)(u * p)) : NULL;
        double *us = u > 0 ? malloc((size_t)u * sizeof *us) : NULL;
        if (u > 0 && uniq && us) {
            for (int64_t k = 0; k < u; k++)
                memcpy(uniq + k * p, codes + first[k] * p, (size_t)p);
            score_blocks(v, sp, uniq, u, p, us, nt);
#pragma omp parallel for num_threads(nt) schedule(static) if (n > 100000)
            for (int64_t i = 0; i < n; i++)
                out[i] = us[inverse[i]];
        }
        free(first);
        free(uniq);
        int done = u > 0 && us != NULL;
        free(us);
        free(inverse);
        if (done)
            return PROP_OK;
    }
    score_blocks(v, sp, codes, n, p, out, nt);
    return PROP_OK;
}

prop_status prop_forest_gains(const prop_forest_view *v, const prop_score_params *sp, double *gains,
                              prop_error *err)
{
    prop_status st = prop_forest_validate(v, err);
    if (st != PROP_OK)
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
