/* tree.h - one histogram tree learner shared by the random forest and boosting.
 *
 * Rows carry statistics (prop_hstat): class-weighted counts (w0, w1, rows) for a
 * forest, (gradient, hessian, rows) for boosting. Growth is depth first with an
 * explicit stack; the smaller child's histogram is built, the larger one is the
 * parent minus it. Each node's randomness (its feature subset) comes from a seed
 * derived from the tree seed and the node's path from the root, so the tree
 * grown with a smaller max_depth / larger min_samples_split equals the bigger
 * tree cut at those limits.
 *
 * Trees are flat parallel arrays; child indices are local to the tree and always
 * greater than the parent's index (no cycles); -1 marks a leaf. Every node keeps
 * its value (forest: weighted class-1 fraction; boosting: its leaf value), its
 * row count and its gain (weighted impurity decrease or loss reduction; 0 for leaves).
 */
#ifndef PROPENSITY_TREE_H
#define PROPENSITY_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "propensity/hist.h"
#include "propensity/status.h"
#include "propensity/types.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { PROP_TREE_CLASSIFY = 0, PROP_TREE_GRADIENT = 1 };
enum { PROP_CRIT_GINI = 0, PROP_CRIT_ENTROPY = 1 };

/* Categorical features of a tree learner (all zero / NULL: none, every split is
 * "code <= t"). categorical[j] != 0 makes feature j categorical: its value codes are
 * categories, split by a set of categories going left ("categorical splits" below).
 * The forest and boosting parameters carry one and pass it to their trees. */
typedef struct {
    const uint8_t *categorical; /* n_features flags, or NULL */
    double cat_smooth;          /* added to the denominator of a category's statistic */
    double min_data_per_group;  /* rows (boosting: hessian-estimated rows) a category
                                 * needs to be placed; smaller ones go right */
    int32_t max_cat_threshold;  /* most categories on the left side; <= 0: no cap */
} prop_cat_params;

typedef struct {
    int mode;                 /* PROP_TREE_CLASSIFY or PROP_TREE_GRADIENT */
    int criterion;            /* forest: PROP_CRIT_GINI / PROP_CRIT_ENTROPY */
    int32_t max_depth;        /* <= 0: unlimited */
    double min_samples_split; /* forest: rows (multiplicities) needed to split a node */
    double min_samples_leaf;  /* forest: rows needed in each child */
    int32_t max_features;     /* non-constant features tried per node; <= 0: all */
    double min_child_weight;  /* boosting: hessian needed in each child */
    double reg_lambda;        /* boosting: L2 on leaf values */
    double learning_rate;     /* boosting: leaf values are scaled by it */
    uint64_t seed;            /* tree seed */
    int n_threads;            /* threads inside the tree, 1 .. PROP_MAX_THREADS */
    int histograms_only;      /* forest: 1 = every node's split search reads a histogram
                               * (no search on rows, see prop_tree_grow; for tests) */
    prop_cat_params cat;      /* categorical features (all zero: none) */
} prop_tree_params;

/* ---- categorical splits ------------------------------------------------------
 * A categorical node has threshold PROP_CAT_SPLIT and a 256-bit set of the category
 * codes that go left (prop_nodes.cat_bits, 4 uint64 per node, bit c of word c / 64).
 * The default way is right: the missing code 255 (and the learner's missing slot) and
 * PROP_CAT_OTHER, the code the bin mapper gives to rare and unseen categories, are
 * never in a set, and neither is a category the node did not see or that had fewer
 * than min_data_per_group rows there.
 * The search (Fisher 1958, as LightGBM's): the node's placed categories are sorted by
 * their statistic -- boosting g / (h + cat_smooth), a forest the positive share
 * b / (a + b + cat_smooth) -- ties by code, and the left set is every prefix and
 * every suffix of that order of at most max_cat_threshold categories. For a binary
 * target (gini, entropy) or squared loss with cat_smooth 0 and nothing forced right,
 * the best prefix is the best of all 2^k partitions (tests/test_categorical.c). */
#define PROP_CAT_SPLIT 255
#define PROP_CAT_OTHER 254

/* Check mode, criterion and n_threads (prop_tree_grow calls it first). */
prop_status prop_tree_check_params(const prop_tree_params *P, prop_error *err);

/* Growable flat node arrays; one or several trees (the caller keeps the starts). */
typedef struct {
    int64_t n_nodes, cap;
    int32_t *feature;
    uint8_t *threshold;
    int32_t *left, *right;
    double *value, *count, *gain;
    uint64_t *cat_bits; /* NULL until the first categorical split; then 4 words per
                         * node (cap nodes), zero for the other nodes */
} prop_nodes;

void prop_nodes_free(prop_nodes *nd);
/* Make room for `extra` more nodes. */
prop_status prop_nodes_reserve(prop_nodes *nd, int64_t extra, prop_error *err);
/* Append all nodes of src (child indices are tree-local, so they copy as is). */
prop_status prop_nodes_append(prop_nodes *dst, const prop_nodes *src, prop_error *err);

/* ---- the tree walk, written once -------------------------------------------
 * The split rule: a row goes left when its code <= the node's threshold. The missing
 * code 255 (and a slot code's missing slot, see hist.h) is above every threshold, so
 * missing values go right. Growth (partitioning rows), boosting (its training scores)
 * and scoring (predict.c) all use these. The arrays are those of ONE tree (pointers
 * offset to its first node), so node and child indices are tree-local. */
static inline int prop_goes_left(uint8_t code, uint8_t threshold)
{
    return code <= threshold;
}

/* The rule of a node that may be categorical: bits is the node's 4-word set (NULL when
 * the ensemble has no categorical node, then the threshold is never PROP_CAT_SPLIT). */
static inline int prop_node_left(uint8_t code, uint8_t threshold, const uint64_t *bits)
{
    if (threshold == PROP_CAT_SPLIT)
        return (int)((bits[code >> 6] >> (code & 63)) & 1);
    return code <= threshold;
}

/* The set of local node k (cat_bits: the tree's first node's set, or NULL). */
static inline const uint64_t *prop_node_bits(const uint64_t *cat_bits, int64_t k)
{
    return cat_bits != NULL ? cat_bits + 4 * k : NULL;
}

/* The leaf reached from local node k by the row `row` (p codes). cat_bits: NULL or the
 * tree's sets (offset to its first node). */
static inline int64_t prop_tree_walk(const int32_t *feature, const uint8_t *threshold,
                                     const int32_t *left, const int32_t *right,
                                     const uint64_t *cat_bits, const uint8_t *row, int64_t k)
{
    if (cat_bits == NULL) {
        while (left[k] >= 0)
            k = prop_goes_left(row[feature[k]], threshold[k]) ? left[k] : right[k];
        return k;
    }
    while (left[k] >= 0)
        k = prop_node_left(row[feature[k]], threshold[k], cat_bits + 4 * k) ? left[k] : right[k];
    return k;
}

/* The node reached from the root when a node at depth max_depth (<= 0: no cut) or with
 * count < min_samples_split acts as a leaf (prefix scoring, predict.h). */
static inline int64_t prop_tree_walk_cut(const int32_t *feature, const uint8_t *threshold,
                                         const int32_t *left, const int32_t *right,
                                         const uint64_t *cat_bits, const double *count,
                                         const uint8_t *row, int32_t max_depth,
                                         double min_samples_split)
{
    int64_t k = 0;
    for (int32_t d = 0; left[k] >= 0 && (max_depth <= 0 || d < max_depth) &&
                        count[k] >= min_samples_split;
         d++)
        k = prop_node_left(row[feature[k]], threshold[k], prop_node_bits(cat_bits, k)) ? left[k]
                                                                                      : right[k];
    return k;
}

typedef struct {
    const uint8_t *slot_codes;     /* n x p slot codes (see hist.h) */
    int64_t n_rows;
    const prop_hist_layout *layout;
    const uint8_t *slot_codes_t;   /* optional p x n copy (column-major) for partitioning */
    const prop_hist_bundles *bundles; /* optional (boosting): histograms are built per
                                     * feature bundle (hist.h); the same trees */
} prop_tree_data;

/* *out = a malloc'ed column-major (p x n) copy of n x p codes, made with n_threads
 * (1 .. PROP_MAX_THREADS). */
prop_status prop_codes_transpose(const uint8_t *codes, int64_t n, int32_t p, int n_threads,
                                 uint8_t **out, prop_error *err);

/* Split search result. */
typedef struct {
    int found;
    int32_t feature;
    int32_t threshold; /* slot code: code <= threshold goes left */
    double score;      /* criterion-specific proxy, larger is better */
    double gain;       /* impurity decrease / loss reduction */
    prop_hstat left, right; /* boosting: the row counts (c) are not known here */
    int32_t left_slots, right_slots; /* non-empty slots of the feature on each side */
    uint64_t cat_left[4]; /* threshold PROP_CAT_SPLIT: the categories going left */
} prop_split;

/* Best split of a node from its histogram, trying features in `order` (length
 * n_order) and stopping once max_features features were visited and at least one was non-constant (<= 0: all; scikit-learn's rule). */
void prop_split_find(const prop_tree_params *P, const prop_hist_layout *L, const double *hist,
                     const prop_hstat *total, const int32_t *order, int32_t n_order,
                     prop_split *best);
/* Forest only: the same search on a node without a histogram, each visited feature's
 * histogram summed from the node's rows into scratch (4 * 3 doubles per slot of the
 * widest feature). Code (row r, feature j) is codes[r * row_stride + j *
 * col_stride]; ostats[i] belongs to rows[i]. When the statistics are non-negative
 * integers with sums below 2^53 (every histogram is then exact, however it was summed),
 * it finds the split prop_split_find finds on any histogram of the node.
 * known_const: bit j (j < 64) set when feature j is known to be constant in the node
 * (e.g. it was in an ancestor): it is counted as visited without being summed.
 * *is_const = known_const plus the features (j < 64) this search found constant. */
void prop_split_find_rows(const prop_tree_params *P, const prop_hist_layout *L,
                          const uint8_t *codes, int64_t row_stride, int64_t col_stride,
                          const prop_hstat *ostats, const int32_t *rows, int64_t n,
                          const prop_hstat *total, const int32_t *order, int32_t n_order,
                          uint64_t known_const, uint64_t *is_const, double *scratch,
                          prop_split *best);
/* Plain reference: same search, but every candidate's left sums come from a
 * scan of the node's rows instead of a histogram. */
void prop_split_find_ref(const prop_tree_params *P, const prop_hist_layout *L,
                         const uint8_t *slot_codes, const prop_hstat *stats, const int32_t *rows,
                         int64_t n, const prop_hstat *total, const int32_t *order,
                         int32_t n_order, prop_split *best);

/* Node value and impurity helpers. */
double prop_node_value(const prop_tree_params *P, const prop_hstat *s);
int prop_node_pure(const prop_tree_params *P, const prop_hstat *s);

/* Buffers (histogram pool, partition scratch) reused across trees; one per thread.
 * prop_tree_workspace_new sets *ws (NULL on failure); prop_tree_workspace_free(NULL)
 * is a no-op. */
typedef struct prop_tree_workspace prop_tree_workspace;
prop_status prop_tree_workspace_new(prop_tree_workspace **ws, prop_error *err);
void prop_tree_workspace_free(prop_tree_workspace *ws);

/* Grow one tree on the n distinct rows rows[0..n) (the array is reordered) and append
 * its nodes to `out` (indices local to the tree). feature_allowed (p flags) and ws may
 * be NULL; row_leaf[r] receives the (local) leaf of every row r in rows (it may be NULL
 * for a forest; boosting needs it, with D->n_rows entries, and sets those of rows
 * outside `rows` to -1). Boosting (PROP_TREE_GRADIENT) searches splits on packed
 * integer histograms of the quantised (gradient, hessian) (hist.h; at most 2^30 - 1
 * rows), and takes node values and counts from exact sums of the rows in each node.
 * A forest whose statistics are non-negative integers (bootstrap multiplicities, unit
 * weights) with sums below 2^53, and with max_features at most a third of the allowed
 * features, searches splits on rows (prop_split_find_rows) instead of histograms: its
 * sums are exact either way, so the tree is the same bit for bit (histograms_only
 * turns this off). A node of one row is a leaf without a search.
 * Checks P with prop_tree_check_params first. */
prop_status prop_tree_grow(const prop_tree_params *P, const prop_tree_data *D,
                           const prop_hstat *stats, int32_t *rows, int64_t n,
                           const uint8_t *feature_allowed, prop_tree_workspace *ws,
                           int32_t *row_leaf, prop_nodes *out, prop_error *err);

#ifdef __cplusplus
}
#endif
#endif
