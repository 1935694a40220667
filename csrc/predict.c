/* predict.c - validation and scoring of flat tree ensembles. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/predict.h"
#include "propensity/types.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BLK_AVX512 1 /* the AVX-512 form of the block scorer is built (used if the CPU has it) */
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

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
            if (v->threshold[i] == PROP_CAT_SPLIT) {
                /* categorical: missing (255) and other (254) always go right */
                if (v->cat_bits == NULL)
                    return prop_fail(err, PROP_FORMAT,
                                     "tree arrays: node %lld of tree %lld is categorical, "
                                     "but the model has no category sets",
                                     (long long)k, (long long)t);
                if (v->cat_bits[4 * i + 3] >> 62)
                    return prop_fail(err, PROP_FORMAT,
                                     "tree arrays: the category set of node %lld of tree %lld "
                                     "holds the missing or the other code",
                                     (long long)k, (long long)t);
            } else if (v->threshold[i] >= PROP_MISSING_BIN)
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
    if (sp->kernel < PROP_SCORE_AUTO || sp->kernel > PROP_SCORE_BLOCK_PLAIN)
        return prop_fail(err, PROP_INVALID_ARG, "scoring: unknown kernel %d", sp->kernel);
    if (sp->positive_proba != 0 && sp->positive_proba != 1)
        return prop_fail(err, PROP_INVALID_ARG, "scoring: positive_proba must be 0 or 1, got %d",
                         sp->positive_proba);
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
    const uint64_t *cb = prop_node_bits(v->cat_bits, s);
    int64_t k = max_depth <= 0 && mss <= 0.0
                    ? prop_tree_walk(feat, thr, left, right, cb, row, 0)
                    : prop_tree_walk_cut(feat, thr, left, right, cb, v->count + s, row, max_depth,
                                         mss);
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
        if (sp->positive_proba)
            out[i] = prop_score_proba(out[i], !sp->average);
    }
    return PROP_OK;
}

/* Packed node for scoring: 16 bytes. Leaves (and nodes below the
 * min_samples_split cut) point to themselves, so a walk is branch-free and
 * finished rows simply stay put. A step is the split rule of tree.h
 * (prop_goes_left) on this layout; with categorical nodes (cat_bits) PK_LEFT reads the
 * set of the node at global index tree start + k. */
#define PK_LEFT(code, q, cb, k)                                                           \
    ((cb) != NULL ? prop_node_left((code), (q)->threshold, (cb) + 4 * (int64_t)(k))      \
                  : prop_goes_left((code), (q)->threshold))
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
            pk[i].threshold = leaf ? 0 : v->threshold[i]; /* a leaf is never categorical */
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
            const uint64_t *cb = prop_node_bits(v->cat_bits, v->tree_start[t]);
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
                        int32_t nk = PK_LEFT(row[r][q->feature], q, cb, k[r]) ? q->left
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
                    int32_t nk = PK_LEFT(rw[q->feature], q, cb, k) ? q->left : q->right;
                    if (nk == k)
                        break;
                    k = nk;
                }
                out[i] += val[k];
            }
        }
        for (int64_t i = i0; i < i1; i++) {
            out[i] = sp->average ? (T > 0 ? out[i] / (double)T : 0.0) : sp->base + out[i];
            if (sp->positive_proba)
                out[i] = prop_score_proba(out[i], !sp->average);
        }
    }
    free(pk);
    return PROP_OK;
}

/* ------------------------------------------------------------------ */
/* The block scorer (predict.h)                                        */
/* ------------------------------------------------------------------ */

#define BLK_ROWS 64                /* rows of one mask */
#define BLK_SUB 8                  /* masks per tile: 8 x 64 rows go down a tree together */
#define BLK_TILE (BLK_ROWS * BLK_SUB)
#define BLK_SLOTS 256              /* mask slots per tree: <= 255 internal nodes + the trash */
#define BLK_TRASH 255              /* the slot a leaf child's mask is written to */
#define BLK_MIN_ROWS 512           /* AUTO scores fewer rows with the lane walk */
#define BLK_DIRECT_MAX 4           /* a feature with at most this many (feature, threshold)
                                      pairs is compared as values, not codes */

typedef struct {
    uint32_t pair;    /* index of the node's (feature, threshold) */
    uint8_t left;     /* mask slots of the children, BLK_TRASH for a leaf */
    uint8_t right;
} blk_node;

/* A forest compiled for the block scorer. Tree t has depth[t] levels of internal nodes,
 * stored breadth first from nodes[node_start[t]] (a node's mask slot is its index in
 * the tree, the root's 0); level[t * LV + d] is the index of its first node at depth d
 * (LV = PROP_BLOCK_MAX_DEPTH + 1 entries, the last ones equal to the node count). A
 * row's path code has bit d set when it went right at depth d; leaf[leaf_start[t] + c]
 * is the value of the leaf with path code c (bits below its depth). */
typedef struct {
    int64_t n_trees, n_pairs;
    int64_t n_direct;  /* pairs [0, n_direct) are read from feature values (see blk_compile) */
    int32_t *pair_feature;
    uint8_t *pair_threshold;
    double *pair_edge; /* a direct pair's mask: the values not <= this edge (+inf: NaN only) */
    uint8_t *coded;    /* [n_features] 1: the tile makes the feature's codes (a byte pair) */
    blk_node *nodes;
    int64_t *node_start;
    uint16_t *level;
    uint8_t *depth;
    double *leaf;      /* padded with 64 zeros: SIMD loads of a small table stay inside */
    int64_t *leaf_start;
    uint64_t spread[256]; /* byte b -> 8 bytes, byte j holding bit j of b */
} blk_forest;

#define BLK_LV (PROP_BLOCK_MAX_DEPTH + 1)

static void blk_free(blk_forest *bf)
{
    free(bf->pair_feature);
    free(bf->pair_threshold);
    free(bf->pair_edge);
    free(bf->coded);
    free(bf->nodes);
    free(bf->node_start);
    free(bf->level);
    free(bf->depth);
    free(bf->leaf);
    free(bf->leaf_start);
    memset(bf, 0, sizeof *bf);
}

/* Node i (tree-local k of the tree at s) is internal at depth d within the cut. */
static inline int blk_internal(const prop_forest_view *v, const prop_score_params *sp, int64_t i,
                               int32_t d)
{
    return v->left[i] >= 0 && !(v->count[i] < sp->min_samples_split) &&
           !(sp->max_depth > 0 && d >= sp->max_depth);
}

/* Depth of every node of tree t into dep (children follow their parent: one pass); the
 * tree's depth within the cut (levels of internal nodes), or -1 if it exceeds the limit. */
static int blk_tree_depth(const prop_forest_view *v, const prop_score_params *sp, int64_t t,
                          int32_t *dep, int64_t *n_internal)
{
    int64_t s = v->tree_start[t], m = v->tree_start[t + 1] - s;
    int depth = 0;
    int64_t ni = 0;
    for (int64_t k = 0; k < m; k++)
        dep[k] = -1; /* not reached within the cut */
    dep[0] = 0;
    for (int64_t k = 0; k < m; k++) {
        if (dep[k] < 0)
            continue;
        if (!blk_internal(v, sp, s + k, dep[k])) {
            if (dep[k] > depth)
                depth = dep[k];
            continue;
        }
        if (dep[k] + 1 > PROP_BLOCK_MAX_DEPTH)
            return -1;
        ni++;
        dep[v->left[s + k]] = dep[v->right[s + k]] = dep[k] + 1;
    }
    *n_internal = ni;
    return depth;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Compile v under sp. *ok = 0 (and PROP_OK) when a tree is too deep. With the bin edges
 * of the features (rows scored from feature values, not codes), the pairs of a feature
 * with few of them are "direct": code > t exactly when the value is not <= edge t (NaN
 * included; t at or past the feature's edges: NaN only), so their masks come from the
 * values without codes; they are numbered first. */
static prop_status blk_compile(const prop_forest_view *v, const prop_score_params *sp,
                               const prop_bins_edges *edges, blk_forest *bf, int *ok,
                               prop_error *err)
{
    memset(bf, 0, sizeof *bf);
    *ok = 0;
    int64_t T = used_trees(v, sp), max_m = 1, total_int = 0, total_leaf = 0;
    for (int64_t t = 0; t < T; t++)
        if (v->tree_start[t + 1] - v->tree_start[t] > max_m)
            max_m = v->tree_start[t + 1] - v->tree_start[t];
    int32_t *dep = malloc((size_t)max_m * sizeof *dep);
    int32_t *slot = malloc((size_t)max_m * sizeof *slot);
    int64_t *queue = malloc((size_t)max_m * sizeof *queue);
    uint8_t *code = malloc((size_t)max_m);
    bf->n_trees = T;
    bf->node_start = malloc((size_t)(T + 1) * sizeof *bf->node_start);
    bf->leaf_start = malloc((size_t)(T + 1) * sizeof *bf->leaf_start);
    bf->level = malloc((size_t)(T > 0 ? T : 1) * BLK_LV * sizeof *bf->level);
    bf->depth = malloc((size_t)(T > 0 ? T : 1));
    prop_status st = PROP_NOMEM;
    uint32_t *keys = NULL;
    int64_t *order = NULL, *per_feature = NULL;
    if (v->n_features > (1 << 24)) { /* a (feature, threshold) key is 32 bits */
        st = PROP_OK;
        goto done;
    }
    if (v->cat_bits != NULL) /* categorical nodes: the block scorer declines them */
        for (int64_t i = 0; i < v->tree_start[T]; i++)
            if (v->left[i] >= 0 && v->threshold[i] == PROP_CAT_SPLIT) {
                st = PROP_OK;
                goto done;
            }
    if (!dep || !slot || !queue || !code || !bf->node_start || !bf->leaf_start || !bf->level ||
        !bf->depth)
        goto done;
    /* depths (and whether the forest fits), node and leaf-table sizes */
    bf->node_start[0] = bf->leaf_start[0] = 0;
    for (int64_t t = 0; t < T; t++) {
        int64_t ni;
        int d = blk_tree_depth(v, sp, t, dep, &ni);
        if (d < 0) {
            st = PROP_OK; /* too deep: *ok stays 0 */
            goto done;
        }
        bf->depth[t] = (uint8_t)d;
        total_int += ni;
        total_leaf += (int64_t)1 << d;
        bf->node_start[t + 1] = total_int;
        bf->leaf_start[t + 1] = total_leaf;
    }
    bf->nodes = malloc((size_t)(total_int > 0 ? total_int : 1) * sizeof *bf->nodes);
    bf->leaf = calloc((size_t)(total_leaf + 64), sizeof *bf->leaf);
    keys = malloc((size_t)(total_int > 0 ? total_int : 1) * sizeof *keys);
    if (!bf->nodes || !bf->leaf || !keys)
        goto done;
    /* breadth first: internal nodes get slots in the order they leave the queue */
    for (int64_t t = 0; t < T; t++) {
        int64_t s = v->tree_start[t], ni_t;
        blk_tree_depth(v, sp, t, dep, &ni_t);
        for (int pass = 0; pass < 2; pass++) {
            int64_t head = 0, tail = 0, rank = 0;
            queue[tail] = 0;
            code[tail++] = 0;
            while (head < tail) {
                int64_t k = queue[head];
                uint8_t c = code[head++];
                int32_t d = dep[k];
                if (!blk_internal(v, sp, s + k, d)) {
                    if (pass == 1)
                        bf->leaf[bf->leaf_start[t] + c] = v->value[s + k];
                    continue;
                }
                if (pass == 0) {
                    slot[k] = (int32_t)rank;
                } else {
                    blk_node *nd = bf->nodes + bf->node_start[t] + rank;
                    int64_t l = v->left[s + k], r = v->right[s + k];
                    nd->pair = ((uint32_t)v->feature[s + k] << 8) | v->threshold[s + k];
                    nd->left = blk_internal(v, sp, s + l, d + 1) ? (uint8_t)slot[l] : BLK_TRASH;
                    nd->right = blk_internal(v, sp, s + r, d + 1) ? (uint8_t)slot[r] : BLK_TRASH;
                    keys[bf->node_start[t] + rank] = nd->pair;
                }
                rank++;
                queue[tail] = v->left[s + k];
                code[tail++] = c;
                queue[tail] = v->right[s + k];
                code[tail++] = (uint8_t)(c | (1u << d));
            }
        }
        uint16_t *lv = bf->level + t * BLK_LV;
        int64_t ni = bf->node_start[t + 1] - bf->node_start[t];
        for (int d = 0; d < BLK_LV; d++)
            lv[d] = (uint16_t)ni;
        /* breadth first: depths do not decrease along the tree's nodes */
        int64_t rank = 0;
        {
            int64_t head = 0, tail = 0;
            queue[tail++] = 0;
            while (head < tail) {
                int64_t k = queue[head++];
                if (!blk_internal(v, sp, s + k, dep[k]))
                    continue;
                for (int d = dep[k]; d >= 0 && lv[d] > rank; d--)
                    lv[d] = (uint16_t)rank;
                rank++;
                queue[tail++] = v->left[s + k];
                queue[tail++] = v->right[s + k];
            }
        }
    }
    /* the distinct (feature, threshold) pairs, and each node's index among them */
    qsort(keys, (size_t)total_int, sizeof *keys, cmp_u32);
    int64_t np = 0;
    for (int64_t i = 0; i < total_int; i++)
        if (np == 0 || keys[i] != keys[np - 1])
            keys[np++] = keys[i];
    bf->n_pairs = np;
    const int64_t p = v->n_features;
    bf->pair_feature = malloc((size_t)(np > 0 ? np : 1) * sizeof *bf->pair_feature);
    bf->pair_threshold = malloc((size_t)(np > 0 ? np : 1));
    bf->pair_edge = malloc((size_t)(np > 0 ? np : 1) * sizeof *bf->pair_edge);
    bf->coded = calloc((size_t)p, 1);
    order = malloc((size_t)(np > 0 ? np : 1) * sizeof *order);
    per_feature = calloc((size_t)p, sizeof *per_feature);
    if (!bf->pair_feature || !bf->pair_threshold || !bf->pair_edge || !bf->coded || !order ||
        !per_feature)
        goto done;
    for (int64_t i = 0; i < np; i++)
        per_feature[keys[i] >> 8]++;
    /* number the direct pairs first (edges given), then the others */
    int64_t nd = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t i = 0; i < np; i++) {
            int64_t f = keys[i] >> 8;
            int direct = edges != NULL && per_feature[f] <= BLK_DIRECT_MAX;
            if (direct == (pass == 0))
                order[i] = nd++;
        }
    bf->n_direct = 0;
    for (int64_t i = 0; i < np; i++) {
        int64_t k = order[i], f = keys[i] >> 8;
        int t = (int)(keys[i] & 0xFF);
        bf->pair_feature[k] = (int32_t)f;
        bf->pair_threshold[k] = (uint8_t)t;
        bf->pair_edge[k] = INFINITY;
        if (edges != NULL && per_feature[f] <= BLK_DIRECT_MAX) {
            bf->n_direct++;
            if (t < edges->n_edges[f])
                bf->pair_edge[k] = edges->edges[f * PROP_BINS_EDGE_STRIDE + t];
        } else {
            bf->coded[f] = 1;
        }
    }
    for (int64_t i = 0; i < total_int; i++) {
        uint32_t key = bf->nodes[i].pair;
        const uint32_t *hit = bsearch(&key, keys, (size_t)np, sizeof *keys, cmp_u32);
        bf->nodes[i].pair = (uint32_t)order[hit - keys];
    }
    for (int b = 0; b < 256; b++) {
        uint64_t w = 0;
        for (int j = 0; j < 8; j++)
            w |= (uint64_t)((b >> j) & 1) << (8 * j);
        bf->spread[b] = w;
    }
    *ok = 1;
    st = PROP_OK;
done:
    free(dep);
    free(slot);
    free(queue);
    free(code);
    free(keys);
    free(order);
    free(per_feature);
    if (st == PROP_NOMEM)
        prop_fail(err, PROP_NOMEM, "out of memory compiling trees for scoring");
    if (st != PROP_OK || !*ok)
        blk_free(bf);
    return st;
}

int prop_forest_block_ok(const prop_forest_view *v, const prop_score_params *sp)
{
    blk_forest bf;
    int ok = 0;
    if (blk_compile(v, sp, NULL, &bf, &ok, NULL) != PROP_OK)
        return 0;
    blk_free(&bf);
    return ok;
}

/* The rows a tile reads: row-major codes, or encoded inputs through a feature plan. */
typedef struct {
    const uint8_t *codes;
    const prop_plan *plan;
    const prop_bins_edges *edges;
    const prop_bins_data *E;
    int64_t n;
    int32_t p;
} blk_source;

/* Mask of the 64 codes c[0..63] above thr (plain C: SSE2 where the compiler has it). */
static inline uint64_t blk_mask_above(const uint8_t *c, uint8_t thr)
{
#if defined(__SSE2__)
    const __m128i t = _mm_set1_epi8((char)thr), z = _mm_setzero_si128();
    uint64_t below = 0; /* code <= thr: saturating code - thr is 0 */
    for (int q = 0; q < 4; q++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(c + 16 * q));
        below |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_subs_epu8(x, t), z))
                 << (16 * q);
    }
    return ~below;
#else
    uint64_t m = 0;
    for (int r = 0; r < 64; r++)
        m |= (uint64_t)(c[r] > thr) << r;
    return m;
#endif
}

/* Mask of the 64 values x[0..63] not <= e (above it, or NaN). */
static inline uint64_t blk_mask_values(const double *x, double e)
{
#if defined(__SSE2__)
    const __m128d t = _mm_set1_pd(e);
    uint64_t m = 0;
    for (int q = 0; q < 32; q++)
        m |= (uint64_t)(unsigned)_mm_movemask_pd(_mm_cmpnle_pd(_mm_loadu_pd(x + 2 * q), t))
             << (2 * q);
    return m;
#else
    uint64_t m = 0;
    for (int r = 0; r < 64; r++)
        m |= (uint64_t)!(x[r] <= e) << r;
    return m;
#endif
}

/* pm[k * BLK_SUB + s] for the byte pairs k of sub-block s: codes ct (p x 64) above t. */
static void blk_pm_bytes_plain(const blk_forest *bf, const uint8_t *ct, int32_t p, int s,
                               uint64_t *pm)
{
    (void)p;
    for (int64_t k = bf->n_direct; k < bf->n_pairs; k++)
        pm[k * BLK_SUB + s] =
            blk_mask_above(ct + (int64_t)bf->pair_feature[k] * BLK_ROWS, bf->pair_threshold[k]);
}

/* pm[k * BLK_SUB + s] for the direct pairs k of sub-block s, from the values col. */
static void blk_pm_values_plain(const blk_forest *bf, const double *const *col, int s,
                                uint64_t *pm)
{
    for (int64_t k = 0; k < bf->n_direct; k++)
        pm[k * BLK_SUB + s] = blk_mask_values(col[bf->pair_feature[k]], bf->pair_edge[k]);
}

/* The masks of rows at each node of tree t, as the path-code bit masks R[d][s]. */
static inline void blk_tree_masks(const blk_forest *bf, int64_t t, const uint64_t *pm,
                                  uint64_t (*at)[BLK_SUB], uint64_t (*R)[BLK_SUB])
{
    const blk_node *nodes = bf->nodes + bf->node_start[t];
    const uint16_t *lv = bf->level + t * BLK_LV;
    for (int s = 0; s < BLK_SUB; s++)
        at[0][s] = ~(uint64_t)0;
    for (int d = 0; d < bf->depth[t]; d++) {
        uint64_t acc[BLK_SUB] = {0};
        for (int i = lv[d]; i < lv[d + 1]; i++) {
            const blk_node nd = nodes[i];
            const uint64_t *m = pm + (int64_t)nd.pair * BLK_SUB;
            for (int s = 0; s < BLK_SUB; s++) {
                uint64_t a = at[i][s], r = a & m[s];
                at[nd.right][s] = r;
                at[nd.left][s] = a ^ r;
                acc[s] |= r;
            }
        }
        for (int s = 0; s < BLK_SUB; s++)
            R[d][s] = acc[s];
    }
}

/* acc[s * 64 + r] = sum of the tree values of the tile's rows, in tree order. */
static void blk_walk_plain(const blk_forest *bf, const uint64_t *pm, uint64_t (*at)[BLK_SUB],
                           double *acc)
{
    for (int r = 0; r < BLK_TILE; r++)
        acc[r] = 0.0;
    uint64_t R[PROP_BLOCK_MAX_DEPTH][BLK_SUB];
    for (int64_t t = 0; t < bf->n_trees; t++) {
        blk_tree_masks(bf, t, pm, at, R);
        const double *leaf = bf->leaf + bf->leaf_start[t];
        const int D = bf->depth[t];
        for (int s = 0; s < BLK_SUB; s++)
            for (int g = 0; g < BLK_ROWS / 8; g++) {
                uint64_t c8 = 0; /* 8 path codes, one per byte */
                for (int d = 0; d < D; d++)
                    c8 |= bf->spread[(R[d][s] >> (8 * g)) & 0xFF] << d;
                double *a = acc + s * BLK_ROWS + 8 * g;
                for (int j = 0; j < 8; j++)
                    a[j] += leaf[(c8 >> (8 * j)) & 0xFF];
            }
    }
}

#ifdef BLK_AVX512
#define BLK_TARGET __attribute__((target("avx512f,avx512bw")))
#if BLK_SUB != 8
#error "the AVX-512 tiles hold the 8 masks of a node in one register"
#endif

static BLK_TARGET void blk_pm_bytes_avx512(const blk_forest *bf, const uint8_t *ct, int32_t p,
                                           int s, uint64_t *pm)
{
    (void)p;
    for (int64_t k = bf->n_direct; k < bf->n_pairs; k++) {
        __m512i c = _mm512_load_si512((const void *)(ct + (int64_t)bf->pair_feature[k] * BLK_ROWS));
        pm[k * BLK_SUB + s] = _cvtmask64_u64(
            _mm512_cmpgt_epu8_mask(c, _mm512_set1_epi8((char)bf->pair_threshold[k])));
    }
}

static BLK_TARGET void blk_pm_values_avx512(const blk_forest *bf, const double *const *col,
                                            int s, uint64_t *pm)
{
    for (int64_t k = 0; k < bf->n_direct; k++) {
        const double *x = col[bf->pair_feature[k]];
        const __m512d e = _mm512_set1_pd(bf->pair_edge[k]);
        uint64_t m = 0;
        for (int g = 0; g < 8; g++)
            m |= (uint64_t)_mm512_cmp_pd_mask(_mm512_loadu_pd(x + 8 * g), e, _CMP_NLE_UQ)
                 << (8 * g);
        pm[k * BLK_SUB + s] = m;
    }
}

/* blk_tree_masks with the 8 masks of a node in one register. */
static BLK_TARGET void blk_tree_masks_avx512(const blk_forest *bf, int64_t t, const uint64_t *pm,
                                             uint64_t (*at)[BLK_SUB], uint64_t (*R)[BLK_SUB])
{
    const blk_node *nodes = bf->nodes + bf->node_start[t];
    const uint16_t *lv = bf->level + t * BLK_LV;
    _mm512_store_si512((void *)at[0], _mm512_set1_epi64(-1));
    for (int d = 0; d < bf->depth[t]; d++) {
        __m512i acc = _mm512_setzero_si512();
        for (int i = lv[d]; i < lv[d + 1]; i++) {
            const blk_node nd = nodes[i];
            __m512i a = _mm512_load_si512((const void *)at[i]);
            __m512i r = _mm512_and_si512(a, _mm512_load_si512((const void *)(pm + (int64_t)nd.pair *
                                                                              BLK_SUB)));
            _mm512_store_si512((void *)at[nd.right], r);
            _mm512_store_si512((void *)at[nd.left], _mm512_xor_si512(a, r));
            acc = _mm512_or_si512(acc, r);
        }
        _mm512_storeu_si512((void *)R[d], acc);
    }
}

static BLK_TARGET void blk_walk_avx512(const blk_forest *bf, const uint64_t *pm,
                                       uint64_t (*at)[BLK_SUB], double *acc)
{
    for (int r = 0; r < BLK_TILE; r += 8)
        _mm512_store_pd(acc + r, _mm512_setzero_pd());
    uint64_t R[PROP_BLOCK_MAX_DEPTH][BLK_SUB];
    for (int64_t t = 0; t < bf->n_trees; t++) {
        blk_tree_masks_avx512(bf, t, pm, at, R);
        const double *leaf = bf->leaf + bf->leaf_start[t];
        const int D = bf->depth[t];
        __m512d t0 = _mm512_loadu_pd(leaf), t1 = _mm512_loadu_pd(leaf + 8);
        __m512d t2 = _mm512_loadu_pd(leaf + 16), t3 = _mm512_loadu_pd(leaf + 24);
        __m512d t4 = _mm512_loadu_pd(leaf + 32), t5 = _mm512_loadu_pd(leaf + 40);
        __m512d t6 = _mm512_loadu_pd(leaf + 48), t7 = _mm512_loadu_pd(leaf + 56);
        const __m512i bit4 = _mm512_set1_epi64(16), bit5 = _mm512_set1_epi64(32);
        for (int s = 0; s < BLK_SUB; s++) {
            __m512i idx = _mm512_setzero_si512(); /* 64 path codes */
            for (int d = 0; d < D; d++)
                idx = _mm512_mask_add_epi8(idx, _cvtu64_mask64(R[d][s]), idx,
                                           _mm512_set1_epi8((char)(1 << d)));
            uint8_t codes[64] __attribute__((aligned(64)));
            _mm512_store_si512((void *)codes, idx);
            double *a = acc + s * BLK_ROWS;
            for (int g = 0; g < BLK_ROWS / 8; g++) {
                __m512i q = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(codes + 8 * g)));
                __m512d x;
                if (D <= 3) {
                    x = _mm512_permutexvar_pd(q, t0);
                } else if (D == 4) {
                    x = _mm512_permutex2var_pd(t0, q, t1);
                } else if (D == 5) {
                    x = _mm512_mask_blend_pd(_mm512_test_epi64_mask(q, bit4),
                                             _mm512_permutex2var_pd(t0, q, t1),
                                             _mm512_permutex2var_pd(t2, q, t3));
                } else if (D == 6) {
                    __mmask8 m4 = _mm512_test_epi64_mask(q, bit4);
                    __m512d lo = _mm512_mask_blend_pd(m4, _mm512_permutex2var_pd(t0, q, t1),
                                                      _mm512_permutex2var_pd(t2, q, t3));
                    __m512d hi = _mm512_mask_blend_pd(m4, _mm512_permutex2var_pd(t4, q, t5),
                                                      _mm512_permutex2var_pd(t6, q, t7));
                    x = _mm512_mask_blend_pd(_mm512_test_epi64_mask(q, bit5), lo, hi);
                } else {
                    x = _mm512_i64gather_pd(q, leaf, 8);
                }
                _mm512_store_pd(a + 8 * g, _mm512_add_pd(_mm512_load_pd(a + 8 * g), x));
            }
        }
    }
}

static int blk_have_avx512(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}
#endif

/* The pair masks pm of the tile of rows from i0 (rows past the end read as codes 0, or
 * values of zero inputs): ct holds p x 64 codes of one sub-block at a time. */
static void blk_prepare(const blk_forest *bf, const blk_source *src, int64_t i0, uint8_t *ct,
                        double *scratch, uint64_t *pm, int simd)
{
    const int32_t p = src->p;
    for (int s = 0; s < BLK_SUB; s++) {
        int64_t a = i0 + (int64_t)s * BLK_ROWS;
        int nr = (int)(src->n - a < BLK_ROWS ? (src->n - a > 0 ? src->n - a : 0) : BLK_ROWS);
        if (nr == 0) { /* past the rows: any masks do */
            for (int64_t k = 0; k < bf->n_pairs; k++)
                pm[k * BLK_SUB + s] = 0;
            continue;
        }
        if (src->codes != NULL) {
            if (nr < BLK_ROWS)
                memset(ct, 0, (size_t)p * BLK_ROWS);
            for (int r = 0; r < nr; r++) {
                const uint8_t *row = src->codes + (a + r) * p;
                for (int32_t f = 0; f < p; f++)
                    ct[f * BLK_ROWS + r] = row[f];
            }
        } else {
            const double *const *col = prop_plan_chunk(src->plan, src->E, a, nr, scratch);
            for (int32_t f = 0; f < p; f++)
                if (bf->coded[f])
                    prop_bins_codes(src->edges->edges + (int64_t)f * PROP_BINS_EDGE_STRIDE,
                                    src->edges->n_edges[f], col[f], BLK_ROWS,
                                    ct + (int64_t)f * BLK_ROWS, 1);
#ifdef BLK_AVX512
            if (simd)
                blk_pm_values_avx512(bf, col, s, pm);
            else
#endif
                blk_pm_values_plain(bf, col, s, pm);
        }
#ifdef BLK_AVX512
        if (simd)
            blk_pm_bytes_avx512(bf, ct, p, s, pm);
        else
#endif
            blk_pm_bytes_plain(bf, ct, p, s, pm);
    }
    (void)simd;
}

/* Score every row of src with the compiled forest (simd: the AVX-512 tiles). */
static prop_status blk_score(const blk_forest *bf, const prop_score_params *sp,
                             const blk_source *src, double *out, int simd, prop_error *err)
{
    const int64_t n = src->n, n_tiles = (n + BLK_TILE - 1) / BLK_TILE;
    const int32_t p = src->p;
    const int64_t T = bf->n_trees;
    int nt = n_tiles < sp->n_threads ? (int)n_tiles : sp->n_threads;
    if (nt < 1)
        return PROP_OK;
    /* per thread, 64-byte aligned: codes of a sub-block, pair masks, node masks, sums,
     * the plan's scratch */
    size_t ct_size = ((size_t)p * BLK_ROWS + 63) / 64 * 64;
    size_t pm_size = ((size_t)(bf->n_pairs > 0 ? bf->n_pairs : 1) * BLK_SUB * sizeof(uint64_t) +
                      63) / 64 * 64;
    size_t at_size = (size_t)BLK_SLOTS * BLK_SUB * sizeof(uint64_t);
    size_t acc_size = BLK_TILE * sizeof(double);
    size_t scratch_size =
        src->plan ? ((size_t)prop_plan_scratch(src->plan) * sizeof(double) + 63) / 64 * 64 : 64;
    size_t total = ct_size + pm_size + at_size + acc_size + scratch_size;
    int failed = 0;
#pragma omp parallel num_threads(nt)
    {
        uint8_t *buf = aligned_alloc(64, total);
        if (buf == NULL) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 4)
        for (int64_t tile = 0; tile < n_tiles; tile++) {
            if (buf == NULL)
                continue;
            uint8_t *ct = buf;
            uint64_t *pm = (uint64_t *)(buf + ct_size);
            uint64_t(*at)[BLK_SUB] = (uint64_t(*)[BLK_SUB])(buf + ct_size + pm_size);
            double *acc = (double *)(buf + ct_size + pm_size + at_size);
            double *scratch = (double *)(buf + ct_size + pm_size + at_size + acc_size);
            int64_t i0 = tile * BLK_TILE, rows = n - i0 < BLK_TILE ? n - i0 : BLK_TILE;
            blk_prepare(bf, src, i0, ct, scratch, pm, simd);
#ifdef BLK_AVX512
            if (simd)
                blk_walk_avx512(bf, pm, at, acc);
            else
#endif
                blk_walk_plain(bf, pm, at, acc);
            for (int64_t r = 0; r < rows; r++) {
                double x = sp->average ? (T > 0 ? acc[r] / (double)T : 0.0) : sp->base + acc[r];
                out[i0 + r] = sp->positive_proba ? prop_score_proba(x, !sp->average) : x;
            }
        }
        free(buf);
    }
    if (failed)
        return prop_fail(err, PROP_NOMEM, "out of memory scoring");
    return PROP_OK;
}

/* Score src by sp->kernel: the block scorer when asked for or (AUTO) allowed; else
 * `*done` = 0 tells the caller to use the lane walk. */
static prop_status blk_try(const prop_forest_view *v, const prop_score_params *sp,
                           const blk_source *src, double *out, int *done, prop_error *err)
{
    *done = 0;
    if (sp->kernel == PROP_SCORE_LANES || (sp->kernel == PROP_SCORE_AUTO && src->n < BLK_MIN_ROWS))
        return PROP_OK;
    blk_forest bf;
    int ok;
    prop_status st = blk_compile(v, sp, src->codes ? NULL : src->edges, &bf, &ok, err);
    if (st != PROP_OK)
        return st;
    if (!ok) {
        if (sp->kernel != PROP_SCORE_AUTO)
            return prop_fail(err, PROP_INVALID_ARG, "scoring: the block kernel takes trees of at "
                             "most %d levels within the cut", PROP_BLOCK_MAX_DEPTH);
        return PROP_OK;
    }
    int simd = 0;
#ifdef BLK_AVX512
    simd = sp->kernel != PROP_SCORE_BLOCK_PLAIN && blk_have_avx512();
#endif
    st = blk_score(&bf, sp, src, out, simd, err);
    blk_free(&bf);
    *done = st == PROP_OK;
    return st;
}

/* prop_forest_score once its arguments are checked. */
static prop_status score_checked(const prop_forest_view *v, const prop_score_params *sp,
                                 const uint8_t *codes, int64_t n, int32_t p, double *out,
                                 prop_error *err)
{
    blk_source src = {codes, NULL, NULL, NULL, n, p};
    int done;
    prop_status st = blk_try(v, sp, &src, out, &done, err);
    if (st != PROP_OK || done)
        return st;
    return score_blocks(v, sp, codes, n, p, out, sp->n_threads, err);
}

prop_status prop_forest_score(const prop_forest_view *v, const prop_score_params *sp,
                              const uint8_t *codes, int64_t n, int32_t p, double *out,
                              prop_error *err)
{
    prop_status st = check_score_args(v, sp, codes, n, p, out, err);
    if (st != PROP_OK)
        return st;
    return score_checked(v, sp, codes, n, p, out, err);
}

/* ------------------------------------------------------------------ */
/* Many cuts of one forest in one walk (prop_forest_score_cuts)        */
/* ------------------------------------------------------------------ */

#define CUT_ROWS 2048 /* rows of a chunk: each tree is walked for all of them (its nodes stay in cache) */

/* Depth (in edges) of the deepest node of trees [0, T), or -1 when out of memory;
 * *monotone = 1 when no child's count exceeds its parent's (as in every fitted tree:
 * the counts along a path then never grow). */
static int32_t forest_depth(const prop_forest_view *v, int64_t T, int *monotone)
{
    int64_t m = v->tree_start[T];
    int32_t *depth = malloc((size_t)(m > 0 ? m : 1) * sizeof *depth);
    if (depth == NULL)
        return -1;
    int32_t deepest = 0;
    *monotone = 1;
    for (int64_t t = 0; t < T; t++) {
        int64_t s = v->tree_start[t], e = v->tree_start[t + 1];
        depth[s] = 0;
        for (int64_t i = s; i < e; i++) /* children follow their parent (validated) */
            if (v->left[i] >= 0) {
                int32_t d = depth[i] + 1;
                int64_t l = s + v->left[i], r = s + v->right[i];
                depth[l] = depth[r] = d;
                if (d > deepest)
                    deepest = d;
                if (v->count[l] > v->count[i] || v->count[r] > v->count[i])
                    *monotone = 0;
            }
    }
    free(depth);
    return deepest;
}

/* The depth at which a walk along path[0 .. L] (path[d * LANES]: the node at depth d;
 * path[L]: its leaf or the node at the walk's limit) stops for min_samples_split mss:
 * the first node with count < mss, else L. When the counts never grow along a path
 * (`monotone`) that holds from some depth on, and a binary search without branches
 * finds it; else a scan. */
static inline int32_t cut_stop(const int32_t *path, int32_t L, const double *cnt, double mss,
                               int monotone)
{
    if (monotone) {
        int32_t base = 0, len = L; /* the stop is in [base, base + len] */
        while (len > 1) {
            int32_t half = len >> 1;
            base = cnt[path[(base + half - 1) * LANES]] < mss ? base : base + half;
            len -= half;
        }
        return base + (len == 1 && !(cnt[path[base * LANES]] < mss));
    }
    int32_t j = 0;
    while (j < L && cnt[path[j * LANES]] >= mss)
        j++;
    return j;
}

prop_status prop_forest_score_cuts(const prop_forest_view *v, const prop_score_params *sp,
                                   const prop_score_cut *cuts, int32_t n_cuts,
                                   const uint8_t *codes, int64_t n, int32_t p, double *out,
                                   prop_error *err)
{
    prop_status st = check_score_args(v, sp, codes, n, p, out, err);
    if (st != PROP_OK)
        return st;
    if (sp->n_trees > 0 || sp->max_depth > 0 || sp->min_samples_split > 0.0)
        return prop_fail(err, PROP_INVALID_ARG, "scoring cuts: the cuts are given one by one, "
                         "the parameters' own cut must be empty");
    if (n_cuts < 1 || cuts == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "scoring cuts: no cut given");
    /* The cuts' shapes: distinct (depth limit, min_samples_split) pairs. A shape sums its
       trees' values in tree order; a cut of n_trees trees takes its shape's sum after
       tree n_trees - 1 (the reference's sum of those trees, as it adds them in order). */
    int64_t *c_trees = malloc((size_t)n_cuts * sizeof *c_trees);
    int32_t *c_shape = malloc((size_t)n_cuts * sizeof *c_shape);
    int32_t *h_depth = malloc((size_t)n_cuts * sizeof *h_depth);
    int32_t *h_mss = malloc((size_t)n_cuts * sizeof *h_mss);
    int64_t *h_trees = malloc((size_t)n_cuts * sizeof *h_trees);
    double *mss = malloc((size_t)n_cuts * sizeof *mss);
    int *mss_leaf = NULL;
    packed_node *pk = NULL;
    if (!c_trees || !c_shape || !h_depth || !h_mss || !h_trees || !mss) {
        st = prop_fail(err, PROP_NOMEM, "out of memory scoring");
        goto done;
    }
    int32_t n_mss = 0, n_shapes = 0, limit = 0;
    int unbounded = 0;
    int64_t T = 0;
    for (int32_t c = 0; c < n_cuts; c++) {
        prop_score_params one = prop_score_with_cut(sp, &cuts[c]);
        if ((st = prop_score_check_params(&one, v, err)) != PROP_OK)
            goto done;
        c_trees[c] = used_trees(v, &one);
        if (c_trees[c] > T)
            T = c_trees[c];
        int32_t md = one.max_depth > 0 ? one.max_depth : 0;
        if (md == 0)
            unbounded = 1;
        else if (md > limit)
            limit = md;
        int32_t k = 0;
        while (k < n_mss && mss[k] != one.min_samples_split)
            k++;
        if (k == n_mss)
            mss[n_mss++] = one.min_samples_split;
        int32_t h = 0;
        while (h < n_shapes && !(h_depth[h] == md && h_mss[h] == k))
            h++;
        if (h == n_shapes) {
            h_depth[h] = md;
            h_mss[h] = k;
            h_trees[h] = 0;
            n_shapes++;
        }
        if (c_trees[c] > h_trees[h])
            h_trees[h] = c_trees[c];
        c_shape[c] = h;
    }
    int monotone;
    int32_t deepest = forest_depth(v, T, &monotone);
    mss_leaf = malloc((size_t)n_mss * sizeof *mss_leaf);
    if (mss_leaf == NULL) {
        st = prop_fail(err, PROP_NOMEM, "out of memory scoring");
        goto done;
    }
    for (int32_t h = 0; h < n_mss; h++) /* 1: no internal node has count < mss[h] */
        mss_leaf[h] = 1;
    for (int64_t i = 0; i < v->tree_start[T]; i++)
        if (v->left[i] >= 0)
            for (int32_t h = 0; h < n_mss; h++)
                if (v->count[i] < mss[h])
                    mss_leaf[h] = 0;
    int64_t m_nodes = v->tree_start[T];
    pk = malloc((size_t)(m_nodes > 0 ? m_nodes : 1) * sizeof *pk);
    if (deepest < 0 || pk == NULL) {
        st = prop_fail(err, PROP_NOMEM, "out of memory scoring");
        goto done;
    }
    if (unbounded || limit > deepest)
        limit = deepest; /* no walk goes deeper than `limit` edges */
    if (limit <= PROP_BLOCK_MAX_DEPTH) {
        /* shallow (boosting): the block scorer, cut by cut, is faster than one walk */
        for (int32_t c = 0; c < n_cuts && st == PROP_OK; c++) {
            prop_score_params one = prop_score_with_cut(sp, &cuts[c]);
            st = score_checked(v, &one, codes, n, p, out + (int64_t)c * n, err);
        }
        goto done;
    }
    /* leaves point to themselves: a walk is branch-free, a finished row stays put */
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = v->tree_start[t]; i < v->tree_start[t + 1]; i++) {
            int32_t self = (int32_t)(i - v->tree_start[t]);
            int leaf = v->left[i] < 0;
            pk[i].left = leaf ? self : v->left[i];
            pk[i].right = leaf ? self : v->right[i];
            pk[i].feature = leaf ? 0 : v->feature[i];
            pk[i].threshold = leaf ? 0 : v->threshold[i]; /* a leaf is never categorical */
        }
    int64_t nc = (n + CUT_ROWS - 1) / CUT_ROWS;
    int nt = nc < sp->n_threads ? (int)(nc > 0 ? nc : 1) : sp->n_threads;
    int failed = 0;
#pragma omp parallel num_threads(nt)
    {
        /* per thread: the chunk's sums per shape; LANES rows' paths (path[d * LANES + l]:
           lane l's node at depth d); a lane's stop depth per min_samples_split */
        double *acc = malloc((size_t)n_shapes * CUT_ROWS * sizeof *acc);
        int32_t *path = malloc((size_t)(limit + 1) * LANES * sizeof *path);
        int32_t *stop = malloc((size_t)n_mss * sizeof *stop);
        int ok = acc && path && stop;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t ch = 0; ch < nc; ch++) {
            if (!ok)
                continue;
            int64_t i0 = ch * CUT_ROWS, i1 = i0 + CUT_ROWS < n ? i0 + CUT_ROWS : n;
            int64_t m = i1 - i0;
            for (int64_t q = 0; q < (int64_t)n_shapes * CUT_ROWS; q++)
                acc[q] = 0.0;
            for (int64_t t = 0; t < T; t++) {
                const packed_node *nd = pk + v->tree_start[t];
                const uint64_t *cb = prop_node_bits(v->cat_bits, v->tree_start[t]);
                const double *cnt = v->count + v->tree_start[t];
                const double *value = v->value + v->tree_start[t];
                for (int64_t r0 = 0; r0 < m; r0 += LANES) {
                    int nl = m - r0 < LANES ? (int)(m - r0) : LANES;
                    const uint8_t *row[LANES];
                    int32_t k[LANES], dl[LANES];
                    for (int l = 0; l < LANES; l++) { /* lanes past nl repeat the last row */
                        row[l] = codes + (i0 + r0 + (l < nl ? l : nl - 1)) * p;
                        k[l] = 0;
                        dl[l] = 0;
                        path[l] = 0;
                    }
                    int32_t L = 0; /* steps taken: every lane is at its leaf or at `limit` */
                    for (int moving = 1; moving && L < limit; L++) {
                        moving = 0;
                        for (int l = 0; l < LANES; l++) {
                            const packed_node *q = nd + k[l];
                            int32_t nk = PK_LEFT(row[l][q->feature], q, cb, k[l]) ? q->left
                                                                                  : q->right;
                            int moved = nk != k[l];
                            moving |= moved;
                            dl[l] += moved;
                            k[l] = nk;
                            path[(L + 1) * LANES + l] = nk;
                        }
                    }
                    for (int l = 0; l < nl; l++) {
                        /* a cut stops at the first node of the path that is a leaf, at its
                           depth or below its min_samples_split: prop_tree_walk_cut's rule;
                           a min_samples_split no internal node is below stops at the leaf */
                        for (int32_t h = 0; h < n_mss; h++)
                            stop[h] = mss_leaf[h] ? dl[l]
                                                  : cut_stop(path + l, dl[l], cnt, mss[h], monotone);
                        double *a = acc + r0 + l;
                        for (int32_t h = 0; h < n_shapes; h++)
                            if (t < h_trees[h]) {
                                int32_t j = stop[h_mss[h]];
                                if (h_depth[h] > 0 && h_depth[h] < j)
                                    j = h_depth[h];
                                a[(int64_t)h * CUT_ROWS] += value[path[j * LANES + l]];
                            }
                    }
                }
                for (int32_t c = 0; c < n_cuts; c++) /* a cut's last tree: take its sum */
                    if (c_trees[c] == t + 1)
                        memcpy(out + (int64_t)c * n + i0, acc + (int64_t)c_shape[c] * CUT_ROWS,
                               (size_t)m * sizeof *out);
            }
            for (int32_t c = 0; c < n_cuts; c++)
                for (int64_t i = i0; i < i1; i++) {
                    double *o = out + (int64_t)c * n + i, Tc = (double)c_trees[c];
                    if (c_trees[c] == 0)
                        *o = 0.0; /* a forest of no trees: the reference's empty sum */
                    *o = sp->average ? (c_trees[c] > 0 ? *o / Tc : 0.0) : sp->base + *o;
                    if (sp->positive_proba)
                        *o = prop_score_proba(*o, !sp->average);
                }
        }
        free(acc);
        free(path);
        free(stop);
    }
    if (failed)
        st = prop_fail(err, PROP_NOMEM, "out of memory scoring");
done:
    free(c_trees);
    free(c_shape);
    free(h_depth);
    free(h_mss);
    free(h_trees);
    free(mss);
    free(mss_leaf);
    free(pk);
    return st;
}

static prop_status check_inputs_args(const prop_forest_view *v, const prop_score_params *sp,
                                     const prop_plan *plan, const prop_bins_edges *edges,
                                     const prop_bins_data *E, const double *out, prop_error *err)
{
    prop_status st = prop_plan_check_codes_args(plan, edges, E, err);
    if (st != PROP_OK)
        return st;
    if (plan->n_features > INT32_MAX)
        return prop_fail(err, PROP_INVALID_ARG, "scoring: too many features");
    return check_score_args(v, sp, (const uint8_t *)E->data, E->n_rows,
                            (int32_t)plan->n_features, out, err);
}

#define INPUT_CHUNK 16384 /* rows binned at once by the lane walk's path from inputs */

prop_status prop_forest_score_inputs(const prop_forest_view *v, const prop_score_params *sp,
                                     const prop_plan *plan, const prop_bins_edges *edges,
                                     const prop_bins_data *E, double *out, prop_error *err)
{
    prop_status st = check_inputs_args(v, sp, plan, edges, E, out, err);
    if (st != PROP_OK)
        return st;
    const int64_t n = E->n_rows;
    const int32_t p = (int32_t)plan->n_features;
    blk_source src = {NULL, plan, edges, E, n, p};
    int done;
    if ((st = blk_try(v, sp, &src, out, &done, err)) != PROP_OK || done)
        return st;
    /* the lane walk, on codes made a chunk at a time */
    int64_t chunk = n < INPUT_CHUNK ? n : INPUT_CHUNK;
    uint8_t *codes = malloc((size_t)(chunk > 0 ? chunk : 1) * (size_t)p);
    if (codes == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory scoring");
    size_t width = E->dtype == PROP_BINS_F64 ? 8 : E->dtype == PROP_BINS_F32 ? 4 : 1;
    for (int64_t i0 = 0; i0 < n && st == PROP_OK; i0 += chunk) {
        int64_t m = n - i0 < chunk ? n - i0 : chunk;
        prop_bins_data part = {(const char *)E->data + (size_t)(i0 * E->n_cols) * width, m,
                               E->n_cols, E->dtype};
        st = prop_plan_codes(plan, edges, &part, sp->n_threads, codes, err);
        if (st == PROP_OK)
            st = score_blocks(v, sp, codes, m, p, out + i0, sp->n_threads, err);
    }
    free(codes);
    return st;
}

prop_status prop_forest_score_inputs_ref(const prop_forest_view *v, const prop_score_params *sp,
                                         const prop_plan *plan, const prop_bins_edges *edges,
                                         const prop_bins_data *E, double *out, prop_error *err)
{
    prop_status st = check_inputs_args(v, sp, plan, edges, E, out, err);
    if (st != PROP_OK)
        return st;
    const int64_t n = E->n_rows;
    const int32_t p = (int32_t)plan->n_features;
    uint8_t *codes = malloc((size_t)(n > 0 ? n : 1) * (size_t)p);
    if (codes == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory scoring");
    st = n > 0 ? prop_plan_codes_ref(plan, edges, E, codes, err) : PROP_OK;
    if (st == PROP_OK)
        st = prop_forest_score_ref(v, sp, codes, n, p, out, err);
    free(codes);
    return st;
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
            p1[k] = prop_score_proba(scores[k], logistic);
        scores = p1;
    }
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 65536) if (n > 100000)
    for (int64_t i = 0; i < n; i++) {
        int64_t k = inverse ? inverse[i] : i;
        double p = p1 ? scores[k] : prop_score_proba(scores[k], logistic);
        out2[2 * i] = 1.0 - p;
        out2[2 * i + 1] = p;
    }
    free(p1);
    return PROP_OK;
}
