/* shap.c - path-dependent TreeSHAP over flat tree arrays on bin codes (shap.h). */
#include "propensity/shap.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/tree.h"
#include "propensity/types.h"

/* One element of the unique path: the feature of a split on the way to the current
 * node, the fraction of the paths that continue when the feature is unknown (zero)
 * and when it is known (one: 1 on the row's side, 0 on the other), and the weight of
 * the subsets of size equal to the element's index. */
typedef struct {
    int32_t feature;
    double zero, one, weight;
} path_elem;

/* Append (feature, zero, one) to the u elements of m and update the subset weights. */
static void path_extend(path_elem *m, int32_t u, double zero, double one, int32_t feature)
{
    m[u].feature = feature;
    m[u].zero = zero;
    m[u].one = one;
    m[u].weight = u == 0 ? 1.0 : 0.0;
    const double inv = 1.0 / (double)(u + 1);
    for (int32_t i = u - 1; i >= 0; i--) {
        m[i + 1].weight += one * m[i].weight * (double)(i + 1) * inv;
        m[i].weight = zero * m[i].weight * (double)(u - i) * inv;
    }
}

/* Undo the extension by element idx of the u + 1 elements of m (u elements remain). */
static void path_unwind(path_elem *m, int32_t u, int32_t idx)
{
    const double one = m[idx].one, zero = m[idx].zero;
    double next = m[u].weight;
    const double up = (double)(u + 1);
    if (one != 0.0) {
        for (int32_t j = u - 1; j >= 0; j--) {
            double t = m[j].weight;
            m[j].weight = next * up / ((double)(j + 1) * one);
            next = t - m[j].weight * zero * (double)(u - j) / up;
        }
    } else {
        for (int32_t j = u - 1; j >= 0; j--)
            m[j].weight = m[j].weight * up / (zero * (double)(u - j));
    }
    for (int32_t j = idx; j < u; j++) {
        m[j].feature = m[j + 1].feature;
        m[j].zero = m[j + 1].zero;
        m[j].one = m[j + 1].one;
    }
}

/* Sum of the weights the path would have after unwinding element idx (m unchanged). */
static double path_unwound_sum(const path_elem *m, int32_t u, int32_t idx)
{
    const double one = m[idx].one, zero = m[idx].zero;
    const double up = (double)(u + 1);
    double total = 0.0;
    if (one != 0.0) {
        double next = m[u].weight;
        for (int32_t j = u - 1; j >= 0; j--) {
            double t = next * up / ((double)(j + 1) * one);
            total += t;
            next = m[j].weight - t * zero * (double)(u - j) / up;
        }
    } else {
        for (int32_t j = u - 1; j >= 0; j--)
            total += m[j].weight * up / (zero * (double)(u - j));
    }
    return total;
}

/* One tree (arrays offset to its first node) and one row. */
typedef struct {
    const int32_t *feature, *left, *right;
    const uint8_t *threshold;
    const uint64_t *cat_bits; /* NULL, or the tree's category sets (tree.h) */
    const double *value, *count;
    const uint8_t *row;
    double *phi;
} tree_ctx;

/* Node k reached with the parent's path (u elements at parent_path); the path of this
 * node is built at parent_path + u (the parent's copy is kept for its other child). */
static void shap_recurse(const tree_ctx *c, int64_t k, const path_elem *parent_path, int32_t u,
                         double zero, double one, int32_t feature)
{
    path_elem *m = (path_elem *)parent_path + u;
    if (u > 0)
        memcpy(m, parent_path, (size_t)u * sizeof *m);
    path_extend(m, u, zero, one, feature);
    if (c->left[k] < 0) {
        const double v = c->value[k];
        for (int32_t i = 1; i <= u; i++) {
            double w = path_unwound_sum(m, u, i);
            c->phi[m[i].feature] += w * (m[i].one - m[i].zero) * v;
        }
        return;
    }
    const int32_t f = c->feature[k];
    const int64_t l = c->left[k], r = c->right[k];
    const int go_left =
        prop_node_left(c->row[f], c->threshold[k], prop_node_bits(c->cat_bits, k));
    const int64_t hot = go_left ? l : r, cold = go_left ? r : l;
    double iz = 1.0, io = 1.0;
    int32_t uu = u; /* elements in m after a split on f seen before is taken out */
    for (int32_t i = 1; i <= u; i++)
        if (m[i].feature == f) {
            iz = m[i].zero;
            io = m[i].one;
            path_unwind(m, u, i);
            uu = u - 1;
            break;
        }
    /* m now has uu + 1 elements; a child both of whose fractions are 0 adds nothing
     * (every weight below it is 0), and unwinding it would divide by 0. */
    const double zh = iz * prop_shap_fraction(c->count, k, hot);
    const double zc = iz * prop_shap_fraction(c->count, k, cold);
    if (zh != 0.0 || io != 0.0)
        shap_recurse(c, hot, m, uu + 1, zh, io, f);
    if (zc != 0.0)
        shap_recurse(c, cold, m, uu + 1, zc, 0.0, f);
}

/* Expected value of the subtree at k with no feature known. */
static double tree_expectation(const tree_ctx *c, int64_t k)
{
    if (c->left[k] < 0)
        return c->value[k];
    return prop_shap_fraction(c->count, k, c->left[k]) * tree_expectation(c, c->left[k]) +
           prop_shap_fraction(c->count, k, c->right[k]) * tree_expectation(c, c->right[k]);
}

static prop_status check_shap_args(const prop_forest_view *v, const prop_shap_params *sp,
                                   const uint8_t *codes, int64_t n, int32_t p,
                                   const double *out, prop_error *err)
{
    if (sp == NULL || v == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "shap: missing model or parameters");
    if (!PROP_THREADS_OK(sp->n_threads))
        return prop_fail(err, PROP_INVALID_ARG, PROP_THREADS_FMT, PROP_MAX_THREADS,
                         sp->n_threads);
    if (!isfinite(sp->base))
        return prop_fail(err, PROP_INVALID_ARG, "shap: base must be finite");
    if (n < 0)
        return prop_fail(err, PROP_INVALID_ARG, "shap: negative row count");
    if (p != v->n_features)
        return prop_fail(err, PROP_INVALID_ARG, "codes have %d features, the trees %d", p,
                         v->n_features);
    if (n > 0 && (codes == NULL || out == NULL))
        return prop_fail(err, PROP_INVALID_ARG, "shap: missing codes or output");
    return prop_forest_validate(v, err);
}

static void tree_at(const prop_forest_view *v, int64_t t, const uint8_t *row, double *phi,
                    tree_ctx *c)
{
    int64_t s = v->tree_start[t];
    c->feature = v->feature + s;
    c->left = v->left + s;
    c->right = v->right + s;
    c->threshold = v->threshold + s;
    c->cat_bits = prop_node_bits(v->cat_bits, s);
    c->value = v->value + s;
    c->count = v->count + s;
    c->row = row;
    c->phi = phi;
}

/* Bias of the ensemble: the trees' expectations, averaged or added to base. */
static double ensemble_bias(const prop_forest_view *v, const prop_shap_params *sp)
{
    double e = 0.0;
    for (int64_t t = 0; t < v->n_trees; t++) {
        tree_ctx c;
        tree_at(v, t, NULL, NULL, &c);
        e += tree_expectation(&c, 0);
    }
    return sp->average ? (v->n_trees > 0 ? e / (double)v->n_trees : 0.0) : sp->base + e;
}

/* The most nodes of one tree (at least 1): the size of per-tree scratch. */
static int64_t widest_tree(const prop_forest_view *v)
{
    int64_t widest = 1;
    for (int64_t t = 0; t < v->n_trees; t++)
        if (v->tree_start[t + 1] - v->tree_start[t] > widest)
            widest = v->tree_start[t + 1] - v->tree_start[t];
    return widest;
}

/* The depth of tree t's deepest leaf (returned) and its leaf count, in one pass over its
 * nodes; d: scratch of widest_tree(v) entries. */
static int32_t tree_shape(const prop_forest_view *v, int64_t t, int32_t *d, int64_t *leaves)
{
    const int64_t s = v->tree_start[t], m = v->tree_start[t + 1] - s;
    int32_t deepest = 0;
    *leaves = 0;
    d[0] = 0;
    for (int64_t k = 0; k < m; k++) { /* children follow their parent (validated) */
        if (v->left[s + k] < 0) {
            deepest = d[k] > deepest ? d[k] : deepest;
            ++*leaves;
            continue;
        }
        d[v->left[s + k]] = d[v->right[s + k]] = d[k] + 1;
    }
    return deepest;
}

/* Deepest tree (levels of splits). */
static prop_status max_tree_depth(const prop_forest_view *v, int32_t *depth, prop_error *err)
{
    int32_t *d = malloc((size_t)widest_tree(v) * sizeof *d);
    if (d == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory explaining trees");
    int32_t best = 0;
    int64_t leaves;
    for (int64_t t = 0; t < v->n_trees; t++) {
        int32_t deepest = tree_shape(v, t, d, &leaves);
        best = deepest > best ? deepest : best;
    }
    free(d);
    *depth = best;
    return PROP_OK;
}

/* ---- the leaf table: every leaf's contributions for each pattern of its path -------
 *
 * At a leaf, the contributions depend on the row only through which of the leaf's path
 * features the row follows (each "one" fraction is 0 or 1): with d unique features on
 * the path there are 2^d patterns. For trees whose leaves have few unique features the
 * contributions of every leaf and pattern are computed once per call (the same EXTEND /
 * UNWIND of the path), and a row then costs, per leaf, its pattern (one test per path
 * step) and d additions. Deeper trees are explained by the recursion. */
#define SHAP_TABLE_MAX_D 8                 /* unique features on a leaf's path */
#define SHAP_TABLE_MAX_DOUBLES (8l << 20)  /* 64 MB of tables per call */

typedef struct {
    uint8_t *tabled;        /* per tree: 1 = leaf table, 0 = recursion */
    int64_t *leaf_start;    /* per tree (T + 1): its leaves in the table (none if not tabled) */
    int32_t *leaf_node;     /* per leaf: local node index */
    int32_t *leaf_d;        /* per leaf: unique features on its path */
    int64_t *step_start;    /* per leaf (L + 1): its path steps */
    int64_t *elem_start;    /* per leaf (L + 1): its unique features */
    int64_t *table_start;   /* per leaf (L + 1): its 2^d x d contributions */
    int32_t *step_node;     /* per step: local node index of the split */
    uint8_t *step_left;     /* per step: 1 when the path goes left there */
    uint8_t *step_elem;     /* per step: the unique feature (index within the leaf) */
    int32_t *elem_feature;  /* per unique feature: the feature */
    double *table;
    int64_t n_leaves, n_steps, n_elems, n_doubles;
} shap_tables;

static void tables_free(shap_tables *tb)
{
    free(tb->tabled);
    free(tb->leaf_start);
    free(tb->leaf_node);
    free(tb->leaf_d);
    free(tb->step_start);
    free(tb->elem_start);
    free(tb->table_start);
    free(tb->step_node);
    free(tb->step_left);
    free(tb->step_elem);
    free(tb->elem_feature);
    free(tb->table);
}

/* The path of leaf `leaf` of the tree at s (parent: local parents) from the root:
 * nodes[0..len) with nodes[len] = leaf; returns len (the splits on the way). */
static int32_t leaf_path(const int32_t *parent, int64_t leaf, int32_t *nodes)
{
    int32_t len = 0;
    for (int64_t k = leaf; parent[k] >= 0; k = parent[k])
        len++;
    int32_t at = len;
    nodes[at] = (int32_t)leaf;
    for (int64_t k = leaf; parent[k] >= 0; k = parent[k])
        nodes[--at] = parent[k];
    return len;
}

/* Unique features of a path of len splits: elem[i] (index of step i's feature among
 * them, in order of first appearance), feat[e], and the cover fractions' products z[e].
 * Returns their number. */
static int32_t path_elems(const prop_forest_view *v, int64_t s, const int32_t *nodes, int32_t len,
                          uint8_t *elem, int32_t *feat, double *z)
{
    int32_t d = 0;
    for (int32_t i = 0; i < len; i++) {
        int32_t f = v->feature[s + nodes[i]], e = 0;
        while (e < d && feat[e] != f)
            e++;
        if (e == d) {
            feat[d] = f;
            z[d++] = 1.0;
        }
        elem[i] = (uint8_t)(e < 255 ? e : 255);
        z[e] *= prop_shap_fraction(v->count + s, nodes[i], nodes[i + 1]);
    }
    return d;
}

/* Contributions of a leaf with value `value` and d unique features (fractions z) for
 * every pattern P (bit e: the row follows feature e): out[P * d + e]. */
static void leaf_table(const double *z, int32_t d, double value, path_elem *m, double *out)
{
    for (uint32_t P = 0; P < (1u << d); P++) {
        double *o = out + (int64_t)P * d;
        int dead = 0;
        for (int32_t e = 0; e < d; e++)
            if (!(P >> e & 1u) && z[e] == 0.0)
                dead = 1; /* no path reaches the leaf: every weight is 0 */
        if (dead) {
            for (int32_t e = 0; e < d; e++)
                o[e] = 0.0;
            continue;
        }
        path_extend(m, 0, 1.0, 1.0, -1);
        for (int32_t e = 0; e < d; e++)
            path_extend(m, e + 1, z[e], (double)(P >> e & 1u), e);
        for (int32_t e = 0; e < d; e++) {
            double w = path_unwound_sum(m, d, e + 1);
            o[e] = w * (m[e + 1].one - m[e + 1].zero) * value;
        }
    }
}

/* Build the tables of the trees that take one (pass 0 sizes, pass 1 fills); scratch:
 * parent (widest tree), nodes/elem/feat/z (depth + 2). */
static prop_status tables_build(const prop_forest_view *v, int32_t depth, shap_tables *tb,
                                prop_error *err)
{
    const int64_t T = v->n_trees;
    int32_t *parent = malloc((size_t)widest_tree(v) * sizeof *parent);
    int32_t *nodes = malloc((size_t)(depth + 2) * sizeof *nodes);
    uint8_t *elem = malloc((size_t)(depth + 2));
    int32_t *feat = malloc((size_t)(depth + 2) * sizeof *feat);
    double *z = malloc((size_t)(depth + 2) * sizeof *z);
    path_elem *m = malloc((size_t)(SHAP_TABLE_MAX_D + 2) * sizeof *m);
    tb->tabled = calloc((size_t)(T > 0 ? T : 1), 1);
    tb->leaf_start = calloc((size_t)(T + 1), sizeof *tb->leaf_start);
    prop_status st = PROP_OK;
    if (!parent || !nodes || !elem || !feat || !z || !m || !tb->tabled || !tb->leaf_start) {
        st = prop_fail(err, PROP_NOMEM, "out of memory explaining trees");
        goto done;
    }
    for (int pass = 0; pass < 2; pass++) {
        int64_t L = 0, S = 0, E = 0, D = 0;
        for (int64_t t = 0; t < T; t++) {
            int64_t s = v->tree_start[t], mcount = v->tree_start[t + 1] - s;
            if (pass == 1 && !tb->tabled[t]) {
                tb->leaf_start[t + 1] = L;
                continue;
            }
            parent[0] = -1;
            for (int64_t k = 0; k < mcount; k++)
                if (v->left[s + k] >= 0)
                    parent[v->left[s + k]] = parent[v->right[s + k]] = (int32_t)k;
            int64_t leaves = 0, steps = 0, elems = 0, doubles = 0;
            int32_t max_d = 0;
            for (int64_t k = 0; k < mcount; k++) {
                if (v->left[s + k] >= 0)
                    continue;
                int32_t len = leaf_path(parent, k, nodes);
                int32_t d = path_elems(v, s, nodes, len, elem, feat, z);
                if (d > max_d)
                    max_d = d;
                if (pass == 0 && max_d > SHAP_TABLE_MAX_D)
                    break; /* not tabled: a deep tree's other leaves need not be walked */
                if (pass == 1) {
                    int64_t l = L + leaves;
                    tb->leaf_node[l] = (int32_t)k;
                    tb->leaf_d[l] = d;
                    tb->step_start[l] = S + steps;
                    tb->elem_start[l] = E + elems;
                    tb->table_start[l] = D + doubles;
                    for (int32_t i = 0; i < len; i++) {
                        tb->step_node[S + steps + i] = nodes[i];
                        tb->step_left[S + steps + i] =
                            (uint8_t)(v->left[s + nodes[i]] == nodes[i + 1]);
                        tb->step_elem[S + steps + i] = elem[i];
                    }
                    for (int32_t e = 0; e < d; e++)
                        tb->elem_feature[E + elems + e] = feat[e];
                    leaf_table(z, d, v->value[s + k], m, tb->table + D + doubles);
                }
                leaves++;
                steps += len;
                elems += d;
                doubles += max_d <= SHAP_TABLE_MAX_D ? ((int64_t)1 << d) * d : 0;
            }
            if (pass == 0) {
                /* chosen by the model alone, so a row gets the same bits in any batch */
                tb->tabled[t] = max_d <= SHAP_TABLE_MAX_D && D + doubles <= SHAP_TABLE_MAX_DOUBLES;
                if (!tb->tabled[t])
                    continue;
            }
            L += leaves;
            S += steps;
            E += elems;
            D += doubles;
            if (pass == 1)
                tb->leaf_start[t + 1] = L;
        }
        if (pass == 0) {
            tb->n_leaves = L;
            tb->n_steps = S;
            tb->n_elems = E;
            tb->n_doubles = D;
            tb->leaf_node = malloc((size_t)(L > 0 ? L : 1) * sizeof *tb->leaf_node);
            tb->leaf_d = malloc((size_t)(L > 0 ? L : 1) * sizeof *tb->leaf_d);
            tb->step_start = malloc((size_t)(L + 1) * sizeof *tb->step_start);
            tb->elem_start = malloc((size_t)(L + 1) * sizeof *tb->elem_start);
            tb->table_start = malloc((size_t)(L + 1) * sizeof *tb->table_start);
            tb->step_node = malloc((size_t)(S > 0 ? S : 1) * sizeof *tb->step_node);
            tb->step_left = malloc((size_t)(S > 0 ? S : 1));
            tb->step_elem = malloc((size_t)(S > 0 ? S : 1));
            tb->elem_feature = malloc((size_t)(E > 0 ? E : 1) * sizeof *tb->elem_feature);
            tb->table = malloc((size_t)(D > 0 ? D : 1) * sizeof *tb->table);
            if (!tb->leaf_node || !tb->leaf_d || !tb->step_start || !tb->elem_start ||
                !tb->table_start || !tb->step_node || !tb->step_left || !tb->step_elem ||
                !tb->elem_feature || !tb->table) {
                st = prop_fail(err, PROP_NOMEM, "out of memory explaining trees");
                goto done;
            }
        } else {
            tb->step_start[L] = S;
            tb->elem_start[L] = E;
            tb->table_start[L] = D;
        }
    }
done:
    free(parent);
    free(nodes);
    free(elem);
    free(feat);
    free(z);
    free(m);
    return st;
}

/* Add the contributions of tabled tree t for one row; left: scratch of the widest tree. */
static void tabled_tree(const prop_forest_view *v, const shap_tables *tb, int64_t t,
                        const uint8_t *row, uint8_t *left, double *phi)
{
    const int64_t s = v->tree_start[t], m = v->tree_start[t + 1] - s;
    const int32_t *feat = v->feature + s, *l = v->left + s;
    const uint8_t *thr = v->threshold + s;
    const uint64_t *cb = prop_node_bits(v->cat_bits, s);
    for (int64_t k = 0; k < m; k++)
        left[k] = l[k] >= 0 && prop_node_left(row[feat[k]], thr[k], prop_node_bits(cb, k));
    for (int64_t leaf = tb->leaf_start[t]; leaf < tb->leaf_start[t + 1]; leaf++) {
        const int32_t d = tb->leaf_d[leaf];
        uint32_t P = (1u << d) - 1u;
        for (int64_t i = tb->step_start[leaf]; i < tb->step_start[leaf + 1]; i++)
            if (left[tb->step_node[i]] != tb->step_left[i])
                P &= ~(1u << tb->step_elem[i]);
        const double *c = tb->table + tb->table_start[leaf] + (int64_t)P * d;
        const int32_t *f = tb->elem_feature + tb->elem_start[leaf];
        for (int32_t e = 0; e < d; e++)
            phi[f[e]] += c[e];
    }
}

/* ---- the linear kernel (Linear TreeSHAP) -------------------------------------------
 *
 * For a leaf v whose path has d unique features j, each with z_j (product of the cover
 * fractions of the path's splits on j) and o_j (1 when the row follows every one of
 * them, else 0), the value of a set S is value_v * prod_{j in S} o_j * prod_{j not in S}
 * z_j. The Shapley weight |S|! (d - 1 - |S|)! / d! is the integral over [0, 1] of
 * t^|S| (1 - t)^(d - 1 - |S|), so feature i gets
 *     value_v (o_i - z_i) * integral of G_v(t) / q_i(t) dt,
 *     G_v(t) = prod_j q_j(t),  q_j(t) = z_j + (o_j - z_j) t,
 * a polynomial of degree d - 1 under the integral (the idea of Yu, Bhatt et al.,
 * "Linear TreeShap", 2022). Summed over the leaves below a split, one depth-first walk
 * of the tree gives every feature's value: G is carried down (each split multiplies in
 * its child's factor, dividing out the factor of an earlier split on the same feature),
 * the sums S_c of value_v G_v(t) come back up, and the edge into c adds
 * (o - z) * integral of E_c / q, E_c being S_c less the leaves under a deeper split on
 * the same feature (those have another q; they are counted at their own edge). The
 * polynomials are held as values at the N points of Gauss-Legendre quadrature on
 * [0, 1], exact for degree 2N - 1, so N = ceil(D / 2) for D the most unique features on
 * a path of the tree: O(nodes x D / 2) per tree and row, against O(leaves x depth^2) for
 * the recursion. */
#define SHAP_LINEAR_MAX_N 32 /* quadrature points: trees with up to 64 unique features a path */

typedef double shap_vd __attribute__((vector_size(16))); /* 2 quadrature points (SSE2) */
#define SHAP_LANES 2
#define SHAP_RULE_STRIDE (SHAP_LINEAR_MAX_N / SHAP_LANES) /* vectors a rule */

typedef struct {
    uint8_t *linear;   /* per tree: 1 = the linear kernel; NULL: no tree */
    int32_t *points;   /* per tree: its quadrature points N rounded up to a multiple of 4 */
    double *frac;      /* per node: the share of its parent's cover reaching it */
    /* row np / 4 - 1 (np = 4, 8, .. 32): the np-point rule, its nodes t and weights w */
    shap_vd t[SHAP_LINEAR_MAX_N / 4 * SHAP_RULE_STRIDE], w[SHAP_LINEAR_MAX_N / 4 * SHAP_RULE_STRIDE];
} shap_linear;

static void linear_free(shap_linear *ln)
{
    free(ln->linear);
    free(ln->points);
    free(ln->frac);
}

/* The n-point Gauss-Legendre rule on [0, 1]: the roots of P_n by Newton's method from
 * the usual cosine guesses, weights 2 / ((1 - x^2) P_n'(x)^2) halved for the interval. */
static void gauss_legendre01(int32_t n, double *t, double *w)
{
    const double pi = acos(-1.0);
    for (int32_t i = 0; i < n; i++) {
        double x = cos(pi * ((double)i + 0.75) / ((double)n + 0.5)), dp = 1.0;
        for (int it = 0; it < 100; it++) {
            double p0 = 1.0, p1 = x;
            for (int32_t k = 2; k <= n; k++) {
                double p2 = ((double)(2 * k - 1) * x * p1 - (double)(k - 1) * p0) / (double)k;
                p0 = p1;
                p1 = p2;
            }
            dp = (double)n * (x * p1 - p0) / (x * x - 1.0);
            double dx = p1 / dp;
            x -= dx;
            if (fabs(dx) <= 1e-16)
                break;
        }
        double p0 = 1.0, p1 = x;
        for (int32_t k = 2; k <= n; k++) {
            double p2 = ((double)(2 * k - 1) * x * p1 - (double)(k - 1) * p0) / (double)k;
            p0 = p1;
            p1 = p2;
        }
        dp = n == 1 ? 1.0 : (double)n * (x * p1 - p0) / (x * x - 1.0);
        t[i] = 0.5 * (1.0 - x);
        w[i] = 1.0 / ((1.0 - x * x) * dp * dp);
    }
}

/* The most unique features on a path below local node k (seen: per feature, how many
 * splits on it are above k). */
static int32_t unique_below(const prop_forest_view *v, int64_t s, int64_t k, int32_t *seen,
                            int32_t unique)
{
    if (v->left[s + k] < 0)
        return unique;
    const int32_t f = v->feature[s + k];
    const int32_t u = unique + (seen[f] == 0);
    seen[f]++;
    int32_t a = unique_below(v, s, v->left[s + k], seen, u);
    int32_t b = unique_below(v, s, v->right[s + k], seen, u);
    seen[f]--;
    return a > b ? a : b;
}

/* The work of explaining one row with a tree, in the units of the training run's SHAP
 * budget (propensity/training/pipeline.py, about 3.3 ns a unit on one core): a tree of
 * at most SHAP_TABLE_MAX_D levels is taken as tabled, leaves x depth x (1 + 2^depth /
 * 256); a deeper one costs the cheaper of the linear walk, 0.4 x nodes x its quadrature
 * points (depth / 2 rounded up to a multiple of 4), and the recursion, nodes x depth +
 * leaves x depth^2 (its depth standing for the unique features on a path). */
static double tree_work(double nodes, double leaves, int32_t max_depth)
{
    const double d = max_depth > 1 ? (double)max_depth : 1.0;
    if (d <= SHAP_TABLE_MAX_D)
        return leaves * d * (1.0 + ldexp(1.0, (int)d) / 256.0);
    const double half = ceil(d / 2.0), points = fmax(4.0, ceil(half / 4.0) * 4.0);
    return fmin(0.4 * nodes * points, nodes * d + leaves * d * d);
}

/* Mark the trees the linear kernel explains: every tree not tabled whose paths have at
 * most 2 * SHAP_LINEAR_MAX_N unique features, when `all`; else those of them where it
 * costs less than the recursion. Measured on the default forests (depth 10 and 20, one
 * thread): the linear walk takes about 1.2 ns a node and quadrature point, the recursion
 * about 3 ns a unit of depth^2 + depth a leaf. */
static prop_status linear_build(const prop_forest_view *v, const shap_tables *tb, int all,
                                shap_linear *ln, prop_error *err)
{
    const int64_t T = v->n_trees;
    ln->linear = calloc((size_t)(T > 0 ? T : 1), 1);
    ln->points = calloc((size_t)(T > 0 ? T : 1), sizeof *ln->points);
    ln->frac = malloc((size_t)(v->n_nodes > 0 ? v->n_nodes : 1) * sizeof *ln->frac);
    int32_t *seen = calloc((size_t)(v->n_features > 0 ? v->n_features : 1), sizeof *seen);
    int32_t *depth = malloc((size_t)(v->n_nodes > 0 ? v->n_nodes : 1) * sizeof *depth);
    prop_status st = PROP_OK;
    if (!ln->linear || !ln->points || !ln->frac || !seen || !depth) {
        st = prop_fail(err, PROP_NOMEM, "out of memory explaining trees");
        goto done;
    }
    for (int32_t np = 4; np <= SHAP_LINEAR_MAX_N; np += 4)
        gauss_legendre01(np, (double *)(ln->t + (np / 4 - 1) * SHAP_RULE_STRIDE),
                         (double *)(ln->w + (np / 4 - 1) * SHAP_RULE_STRIDE));
    for (int64_t t = 0; t < T; t++) {
        const int64_t s = v->tree_start[t], m = v->tree_start[t + 1] - s;
        double nodes = (double)m, rec = 0.0;
        ln->frac[s] = 1.0;
        depth[s] = 0;
        for (int64_t k = 0; k < m; k++) { /* children follow their parent (validated) */
            const int64_t l = v->left[s + k], r = v->right[s + k];
            if (l < 0) {
                rec += (double)depth[s + k] * ((double)depth[s + k] + 1.0);
                continue;
            }
            ln->frac[s + l] = prop_shap_fraction(v->count + s, k, l);
            ln->frac[s + r] = prop_shap_fraction(v->count + s, k, r);
            depth[s + l] = depth[s + r] = depth[s + k] + 1;
        }
        if (tb->tabled != NULL && tb->tabled[t])
            continue;
        const int32_t d = unique_below(v, s, 0, seen, 0);
        /* exact for degree 2 np - 1 >= d - 1 */
        const int32_t np = ((d + 1) / 2 + 3) / 4 * 4 > 4 ? ((d + 1) / 2 + 3) / 4 * 4 : 4;
        if (np > SHAP_LINEAR_MAX_N || (!all && 1.2 * (double)np * nodes >= 3.0 * rec))
            continue;
        ln->linear[t] = 1;
        ln->points[t] = np;
    }
done:
    free(seen);
    free(depth);
    return st;
}

/* One tree and SHAP_RB rows for the linear walk (the rows share the walk: its branches,
 * loads and calls are paid once for them; each row's arithmetic is its own, so a row's
 * values do not depend on the rows beside it). Per level (0 .. depth + 1) and row, the
 * quadrature points (V vectors): G, the product of the factors of the path from the
 * root to the node; B, the sum over the leaves below of value_v G_v / G (so that
 * S = G B); D, the sums S of the leaves below a deeper split on the feature of the edge
 * into the node. cz, owner: per feature, the combined cover fraction z of the splits on
 * it above the current node (1 when none) and the level of the node below the nearest
 * of them (-1 when none); co: per feature and row, the combined o (1 when the row
 * follows every such split). */
#define SHAP_RB 4
typedef struct {
    const int32_t *feature, *left, *right;
    const uint8_t *threshold;
    const uint64_t *cat_bits;
    const double *value, *frac;
    const uint8_t *row[SHAP_RB];
    double *phi[SHAP_RB];
    const shap_vd *t, *w;
    shap_vd *G, *B, *D;
    uint8_t *dused; /* per level: D holds something */
    double *cz, *co;
    int32_t *owner;
} linear_ctx;

/* linear_walk_V(c, k, L): internal node k, whose G is at level L; leaves its B at level
 * L and adds the contributions of the splits below k, k's included. The points are held
 * in V vectors of SHAP_LANES (GCC vector types: packed arithmetic), one function per V
 * so that the loops have constant bounds; a sum over the points adds the lanes' partial
 * sums in a fixed order. A row for which a child has no weight (z = o = 0) gets factor
 * 0 there: zeros below, which add nothing. */
#define SHAP_VD_SUM(x) ((x)[0] + (x)[1])
#define LINEAR_WALK(V)                                                                     \
    static void linear_walk_##V(const linear_ctx *c, int64_t k, int32_t L)                \
    {                                                                                      \
        enum { LV = SHAP_RB * (V) };                                                       \
        /* the levels' rows do not overlap, nor the tables */                             \
        const shap_vd *restrict t = c->t, *restrict w = c->w;                              \
        const shap_vd *restrict G = c->G + (size_t)L * LV;                                 \
        shap_vd *restrict B = c->B + (size_t)L * LV;                                       \
        shap_vd *restrict Gc = c->G + (size_t)(L + 1) * LV;                                \
        const shap_vd *restrict Bc = c->B + (size_t)(L + 1) * LV;                          \
        const shap_vd *restrict Dc = c->D + (size_t)(L + 1) * LV;                          \
        const int32_t *restrict left = c->left;                                            \
        const double *restrict frac = c->frac, *restrict value = c->value;                 \
        const int32_t f = c->feature[k];                                                   \
        const uint8_t thr = c->threshold[k];                                               \
        const uint64_t *bits = prop_node_bits(c->cat_bits, k);                             \
        const double zold = c->cz[f];                                                      \
        double *restrict co = c->co + (size_t)f * SHAP_RB;                                 \
        double oold[SHAP_RB], ozold[SHAP_RB], phi_f[SHAP_RB], sum_wG[SHAP_RB];             \
        int hot_left[SHAP_RB];                                                             \
        for (int r = 0; r < SHAP_RB; r++) {                                                \
            hot_left[r] = prop_node_left(c->row[r][f], thr, bits);                         \
            oold[r] = co[r];                                                               \
            ozold[r] = oold[r] - zold;                                                     \
            phi_f[r] = 0.0;                                                                \
        }                                                                                  \
        const int32_t own = c->owner[f];                                                   \
        shap_vd *restrict Do = own >= 0 ? c->D + (size_t)own * LV : NULL;                  \
        /* iq: 1 / the earlier factor of f (own >= 0); 0 for a row with no weight */       \
        shap_vd wG[LV], rr[LV], iq[LV];                                                    \
        for (int r = 0; r < SHAP_RB; r++) {                                                \
            const shap_vd *Gr = G + r * (V);                                               \
            shap_vd *wGr = wG + r * (V), *iqr = iq + r * (V);                              \
            if (own < 0) { /* no earlier factor: 1 */                                      \
                for (int32_t j = 0; j < (V); j++) {                                        \
                    iqr[j] = (shap_vd){1.0, 1.0};                                          \
                    wGr[j] = w[j] * Gr[j];                                                 \
                }                                                                          \
            } else if (zold == 0.0 && oold[r] == 0.0) {                                    \
                for (int32_t j = 0; j < (V); j++)                                          \
                    wGr[j] = iqr[j] = (shap_vd){0.0, 0.0};                                 \
            } else {                                                                       \
                for (int32_t j = 0; j < (V); j++) {                                        \
                    iqr[j] = 1.0 / (zold + ozold[r] * t[j]);                               \
                    wGr[j] = w[j] * Gr[j] * iqr[j];                                        \
                }                                                                          \
            }                                                                              \
            shap_vd s_ = wGr[0];                                                           \
            for (int32_t j = 1; j < (V); j++)                                              \
                s_ += wGr[j];                                                              \
            sum_wG[r] = SHAP_VD_SUM(s_);                                                   \
        }                                                                                  \
        for (int32_t j = 0; j < LV; j++)                                                   \
            B[j] = (shap_vd){0.0, 0.0};                                                    \
        for (int side = 0; side < 2; side++) {                                             \
            const int64_t ch = side == 0 ? left[k] : c->right[k];                          \
            const double z = zold * frac[ch];                                              \
            double o[SHAP_RB], oz[SHAP_RB];                                                \
            int live = 0;                                                                  \
            for (int r = 0; r < SHAP_RB; r++) {                                            \
                o[r] = (side == 0) == (hot_left[r] != 0) ? oold[r] : 0.0;                  \
                oz[r] = o[r] - z;                                                          \
                live |= o[r] != 0.0;                                                       \
            }                                                                              \
            if (z == 0.0 && !live)                                                         \
                continue; /* no leaf below has weight for any row */                       \
            /* rr: the child's factor over the earlier one of f (1 when none) */           \
            for (int r = 0; r < SHAP_RB; r++) {                                            \
                shap_vd *rr_ = rr + r * (V);                                               \
                const shap_vd *iqr = iq + r * (V);                                         \
                for (int32_t j = 0; j < (V); j++)                                          \
                    rr_[j] = (z + oz[r] * t[j]) * iqr[j];                                  \
            }                                                                              \
            if (left[ch] < 0) { /* a leaf: B = its value; E / q = G value / q_old */       \
                const double val = value[ch];                                              \
                for (int r = 0; r < SHAP_RB; r++)                                          \
                    phi_f[r] += oz[r] * (val * sum_wG[r]);                                 \
                for (int32_t j = 0; j < LV; j++)                                           \
                    B[j] += rr[j] * val;                                                   \
                if (Do != NULL) {                                                          \
                    if (c->dused[own]) {                                                   \
                        for (int32_t j = 0; j < LV; j++)                                   \
                            Do[j] += G[j] * rr[j] * val;                                   \
                    } else {                                                               \
                        for (int32_t j = 0; j < LV; j++)                                   \
                            Do[j] = G[j] * rr[j] * val;                                    \
                        c->dused[own] = 1;                                                 \
                    }                                                                      \
                }                                                                          \
                continue;                                                                  \
            }                                                                              \
            for (int32_t j = 0; j < LV; j++)                                               \
                Gc[j] = G[j] * rr[j];                                                      \
            c->dused[L + 1] = 0;                                                           \
            c->cz[f] = z;                                                                  \
            for (int r = 0; r < SHAP_RB; r++)                                              \
                co[r] = o[r];                                                              \
            c->owner[f] = L + 1;                                                           \
            linear_walk_##V(c, ch, L + 1);                                                 \
            c->cz[f] = zold;                                                               \
            for (int r = 0; r < SHAP_RB; r++)                                              \
                co[r] = oold[r];                                                           \
            c->owner[f] = own;                                                             \
            for (int r = 0; r < SHAP_RB; r++) {                                            \
                const shap_vd *Bcr = Bc + r * (V), *wGr = wG + r * (V);                    \
                shap_vd acc = {0.0, 0.0};                                                  \
                if (!c->dused[L + 1]) { /* E / q_new = G B_c / q_old */                    \
                    for (int32_t j = 0; j < (V); j++)                                      \
                        acc += wGr[j] * Bcr[j];                                            \
                } else if (z != 0.0 || o[r] != 0.0) { /* E = G_c B_c - D, over q_new */    \
                    const shap_vd *Gcr = Gc + r * (V), *Dcr = Dc + r * (V);                \
                    for (int32_t j = 0; j < (V); j++)                                      \
                        acc += w[j] * (Gcr[j] * Bcr[j] - Dcr[j]) / (z + oz[r] * t[j]);     \
                }                                                                          \
                phi_f[r] += oz[r] * SHAP_VD_SUM(acc);                                      \
            }                                                                              \
            if (Do != NULL) { /* these leaves are below the earlier split's edge too */    \
                if (c->dused[own]) {                                                       \
                    for (int32_t j = 0; j < LV; j++)                                       \
                        Do[j] += Gc[j] * Bc[j];                                            \
                } else {                                                                   \
                    for (int32_t j = 0; j < LV; j++)                                       \
                        Do[j] = Gc[j] * Bc[j];                                             \
                    c->dused[own] = 1;                                                     \
                }                                                                          \
            }                                                                              \
            for (int32_t j = 0; j < LV; j++)                                               \
                B[j] += rr[j] * Bc[j];                                                     \
        }                                                                                  \
        for (int r = 0; r < SHAP_RB; r++)                                                  \
            c->phi[r][f] += phi_f[r];                                                      \
    }

LINEAR_WALK(2)
LINEAR_WALK(4)
LINEAR_WALK(6)
LINEAR_WALK(8)
LINEAR_WALK(10)
LINEAR_WALK(12)
LINEAR_WALK(14)
LINEAR_WALK(16)

/* Per-thread scratch of the linear walk. */
typedef struct {
    shap_vd *G, *B, *D;
    double *cz, *co;
    uint8_t *dused;
    int32_t *owner;
    double *pad_phi; /* the output of the rows that fill a last, short group */
} linear_scratch;

static int linear_scratch_new(linear_scratch *ls, int32_t depth, int32_t p)
{
    const size_t levels = (size_t)depth + 2, m = levels * SHAP_RB * SHAP_RULE_STRIDE;
    const size_t q = (size_t)(p > 0 ? p : 1);
    ls->G = aligned_alloc(sizeof(shap_vd), m * sizeof *ls->G);
    ls->B = aligned_alloc(sizeof(shap_vd), m * sizeof *ls->B);
    ls->D = aligned_alloc(sizeof(shap_vd), m * sizeof *ls->D);
    ls->dused = calloc(levels, 1);
    ls->cz = malloc(q * sizeof *ls->cz);
    ls->co = malloc(q * SHAP_RB * sizeof *ls->co);
    ls->owner = malloc(q * sizeof *ls->owner);
    ls->pad_phi = malloc((q + 1) * sizeof *ls->pad_phi);
    if (!ls->G || !ls->B || !ls->D || !ls->dused || !ls->cz || !ls->co || !ls->owner ||
        !ls->pad_phi)
        return 0;
    for (size_t j = 0; j < q; j++) {
        ls->cz[j] = 1.0;
        ls->owner[j] = -1;
    }
    for (size_t j = 0; j < q * SHAP_RB; j++)
        ls->co[j] = 1.0;
    return 1;
}

static void linear_scratch_free(linear_scratch *ls)
{
    free(ls->G);
    free(ls->B);
    free(ls->D);
    free(ls->dused);
    free(ls->cz);
    free(ls->co);
    free(ls->owner);
    free(ls->pad_phi);
}

/* Add the contributions of linear tree t for rows i0 .. i1 - 1 of codes (a tree that is
 * one leaf has none), SHAP_RB at a time; the last group is filled with copies of its
 * last row, whose values go to scratch. */
static void linear_tree(const prop_forest_view *v, const shap_linear *ln, int64_t t,
                        const uint8_t *codes, int64_t i0, int64_t i1, int32_t p,
                        double *out, const linear_scratch *ls)
{
    const int64_t s = v->tree_start[t];
    if (v->left[s] < 0)
        return;
    const int32_t np = ln->points[t], V = np / SHAP_LANES;
    linear_ctx c = {v->feature + s, v->left + s, v->right + s, v->threshold + s,
                    prop_node_bits(v->cat_bits, s), v->value + s, ln->frac + s, {NULL},
                    {NULL}, ln->t + (size_t)(np / 4 - 1) * SHAP_RULE_STRIDE,
                    ln->w + (size_t)(np / 4 - 1) * SHAP_RULE_STRIDE,
                    ls->G, ls->B, ls->D, ls->dused, ls->cz, ls->co, ls->owner};
    for (int64_t g = i0; g < i1; g += SHAP_RB) {
        for (int r = 0; r < SHAP_RB; r++) {
            const int64_t i = g + r < i1 ? g + r : i1 - 1;
            c.row[r] = codes + i * (int64_t)p;
            c.phi[r] = g + r < i1 ? out + i * (int64_t)(p + 1) : ls->pad_phi;
        }
        for (int32_t j = 0; j < SHAP_RB * V; j++)
            ls->G[j] = (shap_vd){1.0, 1.0};
        switch (V) {
        case 2: linear_walk_2(&c, 0, 0); break;
        case 4: linear_walk_4(&c, 0, 0); break;
        case 6: linear_walk_6(&c, 0, 0); break;
        case 8: linear_walk_8(&c, 0, 0); break;
        case 10: linear_walk_10(&c, 0, 0); break;
        case 12: linear_walk_12(&c, 0, 0); break;
        case 14: linear_walk_14(&c, 0, 0); break;
        default: linear_walk_16(&c, 0, 0); break;
        }
    }
}

/* ---- the compiled model: tables, depth and a fingerprint of the arrays ------------- */
struct prop_shap_model {
    shap_tables tb;   /* tabled trees (kernel AUTO); tb.tabled NULL: none */
    shap_linear ln;   /* trees of the linear walk; ln.linear NULL: none; the others: the
                       * recursion */
    int32_t depth;
    int64_t widest;
    int64_t n_trees, n_nodes;
    int32_t n_features;
    uint64_t fingerprint;
};

/* FNV-1a over the node arrays a model's explanations read, a 64-bit word a step (then
 * the last bytes one by one): the check of a compiled model reads every node on every
 * call, tens of MB for a deep forest. */
static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *b = data;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t word;
        memcpy(&word, b + i, 8);
        h ^= word;
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    for (; i < len; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint64_t view_fingerprint(const prop_forest_view *v)
{
    uint64_t h = 14695981039346656037ull;
    size_t m = (size_t)v->n_nodes;
    h = fnv(h, v->tree_start, (size_t)(v->n_trees + 1) * sizeof *v->tree_start);
    h = fnv(h, v->feature, m * sizeof *v->feature);
    h = fnv(h, v->threshold, m);
    h = fnv(h, v->left, m * sizeof *v->left);
    h = fnv(h, v->right, m * sizeof *v->right);
    h = fnv(h, v->value, m * sizeof *v->value);
    h = fnv(h, v->count, m * sizeof *v->count);
    if (v->cat_bits != NULL)
        h = fnv(h, v->cat_bits, 4 * m * sizeof *v->cat_bits);
    return h;
}

static prop_status model_build(const prop_forest_view *v, int kernel, prop_shap_model *md,
                               prop_error *err)
{
    memset(md, 0, sizeof *md);
    prop_status st = max_tree_depth(v, &md->depth, err);
    if (st != PROP_OK)
        return st;
    md->widest = widest_tree(v);
    md->n_trees = v->n_trees;
    md->n_nodes = v->n_nodes;
    md->n_features = v->n_features;
    md->fingerprint = view_fingerprint(v);
    if (kernel == PROP_SHAP_AUTO && (st = tables_build(v, md->depth, &md->tb, err)) != PROP_OK) {
        tables_free(&md->tb);
        return st;
    }
    if (kernel != PROP_SHAP_RECURSIVE &&
        (st = linear_build(v, &md->tb, kernel == PROP_SHAP_LINEAR, &md->ln, err)) != PROP_OK) {
        tables_free(&md->tb);
        linear_free(&md->ln);
    }
    return st;
}

prop_status prop_shap_model_new(const prop_forest_view *v, prop_shap_model **out,
                                prop_error *err)
{
    *out = NULL;
    prop_status st = prop_forest_validate(v, err);
    if (st != PROP_OK)
        return st;
    /* aligned: the quadrature tables are vectors */
    prop_shap_model *md = aligned_alloc(_Alignof(prop_shap_model), sizeof *md);
    if (md == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory explaining trees");
    if ((st = model_build(v, PROP_SHAP_AUTO, md, err)) != PROP_OK) {
        free(md);
        return st;
    }
    *out = md;
    return PROP_OK;
}

prop_status prop_forest_shap_work(const prop_forest_view *v, double *work, prop_error *err)
{
    *work = 0.0;
    prop_status st = prop_forest_validate(v, err);
    if (st != PROP_OK)
        return st;
    int32_t *d = malloc((size_t)widest_tree(v) * sizeof *d);
    if (d == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory measuring the trees");
    int64_t leaves;
    for (int64_t t = 0; t < v->n_trees; t++) {
        const int32_t deepest = tree_shape(v, t, d, &leaves);
        *work += tree_work((double)(v->tree_start[t + 1] - v->tree_start[t]), (double)leaves,
                           deepest);
    }
    free(d);
    return PROP_OK;
}

void prop_shap_model_free(prop_shap_model *md)
{
    if (md == NULL)
        return;
    tables_free(&md->tb);
    linear_free(&md->ln);
    free(md);
}

#define SHAP_ROW_BLOCK 32 /* rows explained together, tree by tree (a tree's table stays
                           * in cache) */

/* Rows of a block: SHAP_ROW_BLOCK, or fewer so that every thread gets about 4 blocks (a
 * deep forest's importance explains some 20 rows at 40 ms each: in one block they took one
 * core), a multiple of the SHAP_RB rows the linear walk shares. A row's values do not
 * depend on its block: it adds its trees in tree order. */
static int64_t shap_row_block(int64_t n, int nt)
{
    if (nt <= 1)
        return SHAP_ROW_BLOCK;
    int64_t b = (n + 4 * (int64_t)nt - 1) / (4 * (int64_t)nt);
    b = (b + SHAP_RB - 1) / SHAP_RB * SHAP_RB;
    return b > SHAP_ROW_BLOCK ? SHAP_ROW_BLOCK : b;
}

/* Explain the rows with a built model (v already checked against it). */
static prop_status shap_run(const prop_forest_view *v, const prop_shap_model *md,
                            const prop_shap_params *sp, const uint8_t *codes, int64_t n,
                            int32_t p, double *out, prop_error *err)
{
    const shap_tables *tb = &md->tb;
    const shap_linear *ln = &md->ln;
    /* the path of the node at depth d has d + 2 elements (the root's placeholder first),
     * stored after those of its ancestors */
    const size_t path_len = (size_t)(md->depth + 2) * (size_t)(md->depth + 3) / 2;
    const double bias = ensemble_bias(v, sp);
    const int64_t T = v->n_trees;
    const double scale = sp->average ? (T > 0 ? 1.0 / (double)T : 0.0) : 1.0;
    int failed = 0;
    const int nt = sp->n_threads;
    const int64_t rb = shap_row_block(n, nt);
    const int64_t n_blocks = (n + rb - 1) / rb;
#pragma omp parallel num_threads(nt) if (n_blocks > 1 && nt > 1)
    {
        path_elem *path = malloc(path_len * sizeof *path);
        uint8_t *left = malloc((size_t)md->widest);
        linear_scratch ls;
        memset(&ls, 0, sizeof ls);
        int ok = path != NULL && left != NULL &&
                 linear_scratch_new(&ls, md->depth, p);
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < n_blocks; b++) {
            if (!ok)
                continue;
            const int64_t i0 = b * rb;
            const int64_t i1 = i0 + rb < n ? i0 + rb : n;
            memset(out + i0 * (int64_t)(p + 1), 0, (size_t)((i1 - i0) * (p + 1)) * sizeof *out);
            /* tree by tree for the block: each row still adds its trees in tree order */
            for (int64_t t = 0; t < T; t++) {
                if (ln->linear != NULL && ln->linear[t]) {
                    linear_tree(v, ln, t, codes, i0, i1, p, out, &ls);
                    continue;
                }
                for (int64_t i = i0; i < i1; i++) {
                    double *phi = out + i * (int64_t)(p + 1);
                    const uint8_t *row = codes + i * (int64_t)p;
                    if (tb->tabled != NULL && tb->tabled[t]) {
                        tabled_tree(v, tb, t, row, left, phi);
                    } else {
                        tree_ctx c;
                        tree_at(v, t, row, phi, &c);
                        shap_recurse(&c, 0, path, 0, 1.0, 1.0, -1);
                    }
                }
            }
            for (int64_t i = i0; i < i1; i++) {
                double *phi = out + i * (int64_t)(p + 1);
                if (sp->average)
                    for (int32_t j = 0; j < p; j++)
                        phi[j] *= scale;
                phi[p] = bias;
            }
        }
        free(path);
        free(left);
        linear_scratch_free(&ls);
    }
    if (failed)
        return prop_fail(err, PROP_NOMEM, "out of memory explaining rows");
    return PROP_OK;
}

prop_status prop_forest_shap(const prop_forest_view *v, const prop_shap_params *sp,
                             const uint8_t *codes, int64_t n, int32_t p, double *out,
                             prop_error *err)
{
    prop_status st = check_shap_args(v, sp, codes, n, p, out, err);
    if (st != PROP_OK || n == 0)
        return st;
    if (sp->kernel != PROP_SHAP_AUTO && sp->kernel != PROP_SHAP_RECURSIVE &&
        sp->kernel != PROP_SHAP_LINEAR)
        return prop_fail(err, PROP_INVALID_ARG, "shap: unknown kernel %d", sp->kernel);
    prop_shap_model md;
    if ((st = model_build(v, sp->kernel, &md, err)) != PROP_OK)
        return st;
    st = shap_run(v, &md, sp, codes, n, p, out, err);
    tables_free(&md.tb);
    linear_free(&md.ln);
    return st;
}

prop_status prop_forest_shap_model(const prop_forest_view *v, const prop_shap_model *md,
                                   const prop_shap_params *sp, const uint8_t *codes, int64_t n,
                                   int32_t p, double *out, prop_error *err)
{
    prop_status st = check_shap_args(v, sp, codes, n, p, out, err);
    if (st != PROP_OK)
        return st;
    if (md == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "shap: missing compiled model");
    if (sp->kernel != PROP_SHAP_AUTO)
        return prop_fail(err, PROP_INVALID_ARG, "shap: a compiled model explains with the "
                         "AUTO kernel, got kernel %d", sp->kernel);
    if (md->n_trees != v->n_trees || md->n_nodes != v->n_nodes ||
        md->n_features != v->n_features || md->fingerprint != view_fingerprint(v))
        return prop_fail(err, PROP_INVALID_ARG, "shap: the compiled model was made from "
                         "other trees");
    return n == 0 ? PROP_OK : shap_run(v, md, sp, codes, n, p, out, err);
}

/* ---- the reference: Shapley values by enumeration of subsets ----------------------- */

/* The set function: expected value of the subtree at k when the features whose local
 * index (local[feature]) is in the bit set `known` follow the row. */
static double set_value(const tree_ctx *c, const int32_t *local, int64_t k, uint32_t known)
{
    if (c->left[k] < 0)
        return c->value[k];
    const int32_t f = c->feature[k];
    const int64_t l = c->left[k], r = c->right[k];
    if (known >> local[f] & 1u)
        return set_value(c, local,
                         prop_node_left(c->row[f], c->threshold[k], prop_node_bits(c->cat_bits, k))
                             ? l
                             : r,
                         known);
    return prop_shap_fraction(c->count, k, l) * set_value(c, local, l, known) +
           prop_shap_fraction(c->count, k, r) * set_value(c, local, r, known);
}

prop_status prop_forest_shap_brute(const prop_forest_view *v, const prop_shap_params *sp,
                                   const uint8_t *codes, int64_t n, int32_t p, double *out,
                                   prop_error *err)
{
    prop_status st = check_shap_args(v, sp, codes, n, p, out, err);
    if (st != PROP_OK || n == 0)
        return st;
    const int64_t T = v->n_trees;
    int32_t *local = malloc((size_t)p * sizeof *local);
    int32_t *used = malloc((size_t)p * sizeof *used);
    double *val = malloc(((size_t)1 << PROP_SHAP_BRUTE_MAX) * sizeof *val);
    double fact[PROP_SHAP_BRUTE_MAX + 1];
    if (local == NULL || used == NULL || val == NULL) {
        st = prop_fail(err, PROP_NOMEM, "out of memory explaining rows");
        goto done;
    }
    fact[0] = 1.0;
    for (int i = 1; i <= PROP_SHAP_BRUTE_MAX; i++)
        fact[i] = fact[i - 1] * (double)i;
    for (int64_t i = 0; i < n; i++)
        memset(out + i * (int64_t)(p + 1), 0, (size_t)(p + 1) * sizeof *out);
    for (int64_t t = 0; t < T; t++) {
        int64_t s = v->tree_start[t], nodes = v->tree_start[t + 1] - s;
        for (int32_t j = 0; j < p; j++)
            local[j] = -1;
        int32_t m = 0;
        for (int64_t k = 0; k < nodes; k++)
            if (v->left[s + k] >= 0 && local[v->feature[s + k]] < 0) {
                if (m == PROP_SHAP_BRUTE_MAX) {
                    st = prop_fail(err, PROP_INVALID_ARG,
                                   "shap reference: tree %lld splits on more than %d features",
                                   (long long)t, PROP_SHAP_BRUTE_MAX);
                    goto done;
                }
                local[v->feature[s + k]] = m;
                used[m++] = v->feature[s + k];
            }
        for (int64_t i = 0; i < n; i++) {
            tree_ctx c;
            double *phi = out + i * (int64_t)(p + 1);
            tree_at(v, t, codes + i * (int64_t)p, phi, &c);
            for (uint32_t S = 0; S < (1u << m); S++)
                val[S] = set_value(&c, local, 0, S);
            for (int32_t a = 0; a < m; a++) {
                double acc = 0.0;
                for (uint32_t S = 0; S < (1u << m); S++) {
                    if (S >> a & 1u)
                        continue;
                    int size = __builtin_popcount(S);
                    acc += fact[size] * fact[m - size - 1] / fact[m] * (val[S | 1u << a] - val[S]);
                }
                phi[used[a]] += acc;
            }
            phi[p] += val[0];
        }
    }
    for (int64_t i = 0; i < n; i++) {
        double *phi = out + i * (int64_t)(p + 1);
        if (sp->average) {
            for (int32_t j = 0; j <= p; j++)
                phi[j] = T > 0 ? phi[j] / (double)T : 0.0;
        } else {
            phi[p] += sp->base;
        }
    }
done:
    free(local);
    free(used);
    free(val);
    return st;
}
