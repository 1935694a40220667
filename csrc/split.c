/* split.c - split search on a node histogram (fast) and on its rows (reference),
 * and node values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/tree.h"

/* ---- node statistics ------------------------------------------------ */

static double xlogx(double x) { return x > 0.0 ? x * log(x) : 0.0; }

/* Weighted impurity W * imp(s) of a forest node. */
static double weighted_impurity(int criterion, const prop_hstat *s)
{
    double w = s->a + s->b;
    if (w <= 0.0)
        return 0.0;
    if (criterion == PROP_CRIT_ENTROPY) /* in bits, like scikit-learn */
        return (xlogx(w) - xlogx(s->a) - xlogx(s->b)) / log(2.0);
    return w - (s->a * s->a + s->b * s->b) / w;
}

double prop_node_value(const prop_tree_params *P, const prop_hstat *s)
{
    if (P->mode == PROP_TREE_GRADIENT) {
        /* a node without hessian (e.g. only zero-weight rows, reg_lambda 0) stays at 0 */
        double d = s->b + P->reg_lambda;
        return d > 0.0 ? -P->learning_rate * s->a / d : 0.0;
    }
    double w = s->a + s->b;
    if (!(w > 0.0))
        return 0.5;
    /* class sums that are subtraction residue count as zero */
    if (s->b <= 1e-9 * w)
        return 0.0;
    if (s->a <= 1e-9 * w)
        return 1.0;
    return s->b / w;
}

int prop_node_pure(const prop_tree_params *P, const prop_hstat *s)
{
    if (P->mode == PROP_TREE_GRADIENT)
        return 0;
    double w = s->a + s->b;
    return fmin(s->a, s->b) <= 1e-9 * w;
}

/* The node's own term of every candidate's score: boosting's T.a^2 / (T.b + lambda),
 * a forest's weighted impurity (computed once per node search, the same value). */
static double node_term(const prop_tree_params *P, const prop_hstat *T)
{
    if (P->mode == PROP_TREE_GRADIENT)
        return T->a * T->a / (T->b + P->reg_lambda);
    return weighted_impurity(P->criterion, T);
}

/* Score of a candidate (larger is better) and its gain; returns 0 if not allowed.
 * tt = node_term(P, T). */
static int evaluate(const prop_tree_params *P, const prop_hstat *T, double tt,
                    const prop_hstat *Ls, double *score, double *gain)
{
    prop_hstat R = {T->a - Ls->a, T->b - Ls->b, T->c - Ls->c};
    if (P->mode == PROP_TREE_GRADIENT) {
        /* (rows are not tracked in boosting histograms: the caller only offers
         * splits with rows on both sides) */
        if (Ls->b < P->min_child_weight || R.b < P->min_child_weight)
            return 0;
        double lam = P->reg_lambda;
        double g = Ls->a * Ls->a / (Ls->b + lam) + R.a * R.a / (R.b + lam) - tt;
        *score = g;
        *gain = 0.5 * g;
        return 1;
    }
    if (Ls->c <= 0.0 || R.c <= 0.0)
        return 0;
    if (Ls->c < P->min_samples_leaf || R.c < P->min_samples_leaf)
        return 0;
    double il = weighted_impurity(P->criterion, Ls), ir = weighted_impurity(P->criterion, &R);
    *score = -(il + ir);
    *gain = tt - il - ir;
    return 1;
}

/* Returns 1 when the candidate became the best. */
static int consider(const prop_tree_params *P, const prop_hstat *T, double tt,
                    const prop_hstat *Ls, int32_t feature, int32_t threshold, prop_split *best)
{
    double score, gain;
    if (!evaluate(P, T, tt, Ls, &score, &gain))
        return 0;
    if (P->mode == PROP_TREE_GRADIENT && !(gain > 1e-12))
        return 0;
    /* near-ties (rounding noise of weighted sums) go to the first candidate visited,
     * so the random feature order breaks them, as it breaks exact ties (boosting's
     * quantised sums are exact integers; its ties are exact) */
    if (!best->found || score > best->score + 1e-10 * fabs(best->score)) {
        best->found = 1;
        best->feature = feature;
        best->threshold = threshold;
        best->score = score;
        best->gain = gain;
        best->left = *Ls;
        best->right.a = T->a - Ls->a;
        best->right.b = T->b - Ls->b;
        best->right.c = T->c - Ls->c;
        return 1;
    }
    return 0;
}

static inline int slot_nonempty(const double *h, int width)
{
    return width == 3 ? h[2] > 0.0 : (h[0] != 0.0 || h[1] != 0.0);
}

/* The candidates of feature j from its ns slots h (W doubles each): every threshold
 * below the last non-empty slot that has rows. Returns the number of non-empty slots
 * (a feature with fewer than 2 is constant in the node and offers nothing). */
static inline int32_t scan_feature(const prop_tree_params *P, const double *h, int32_t ns,
                                   const int W, const prop_hstat *total, double tt, int32_t j,
                                   prop_split *best)
{
    int32_t nonempty = 0, last = -1;
    for (int32_t s = 0; s < ns; s++)
        if (slot_nonempty(h + W * s, W)) {
            nonempty++;
            last = s;
        }
    if (nonempty < 2)
        return nonempty;
    prop_hstat acc = {0.0, 0.0, 0.0};
    int32_t seen = 0;
    for (int32_t s = 0; s < last; s++) {
        const double *q = h + W * s;
        if (!slot_nonempty(q, W))
            continue;
        seen++;
        acc.a += q[0];
        acc.b += q[1];
        if (W == 3)
            acc.c += q[2];
        if (consider(P, total, tt, &acc, j, s, best)) {
            best->left_slots = seen;
            best->right_slots = nonempty - seen;
        }
    }
    return nonempty;
}

void prop_split_find(const prop_tree_params *P, const prop_hist_layout *L, const double *hist,
                     const prop_hstat *total, const int32_t *order, int32_t n_order,
                     prop_split *best)
{
    memset(best, 0, sizeof *best);
    const double tt = node_term(P, total);
    const int W = P->mode == PROP_TREE_GRADIENT ? 2 : 3;
    int32_t tried = 0, nonconst = 0;
    for (int32_t k = 0; k < n_order; k++) {
        int32_t j = order[k];
        const double *h = hist + (int64_t)W * L->offset[j];
        int32_t ns = L->offset[j + 1] - L->offset[j];
        int32_t nonempty = W == 3 ? scan_feature(P, h, ns, 3, total, tt, j, best)
                                  : scan_feature(P, h, ns, 2, total, tt, j, best);
        /* like scikit-learn, constant features count as visited, but at least one
         * non-constant feature must be visited */
        tried++;
        if (nonempty < 2) {
            if (P->max_features > 0 && tried >= P->max_features && nonconst > 0)
                break;
            continue;
        }
        nonconst++;
        if (P->max_features > 0 && tried >= P->max_features)
            break;
    }
}

/* One feature's histogram (3 doubles per slot, ns slots) of n rows into h. Rows
 * that share a slot would chain their adds, so a node with enough rows per slot sums
 * into 4 interleaved copies (added at the end): exact sums do not depend on the order.
 * h holds 4 * 3 * ns doubles. */
static void feature_hist_rows(const uint8_t *col, int64_t row_stride, const prop_hstat *ostats,
                              const int32_t *rows, int64_t n, int32_t ns, double *h)
{
    const int64_t w = 3 * (int64_t)ns;
    if (n < 16 || n < 2 * (int64_t)ns) {
        memset(h, 0, (size_t)w * sizeof *h);
        for (int64_t i = 0; i < n; i++) {
            double *q = h + 3 * (int64_t)col[(int64_t)rows[i] * row_stride];
            q[0] += ostats[i].a;
            q[1] += ostats[i].b;
            q[2] += ostats[i].c;
        }
        return;
    }
    memset(h, 0, (size_t)(4 * w) * sizeof *h);
    int64_t i = 0;
    for (; i + 3 < n; i += 4)
        for (int u = 0; u < 4; u++) {
            double *q = h + u * w + 3 * (int64_t)col[(int64_t)rows[i + u] * row_stride];
            q[0] += ostats[i + u].a;
            q[1] += ostats[i + u].b;
            q[2] += ostats[i + u].c;
        }
    for (; i < n; i++) {
        double *q = h + 3 * (int64_t)col[(int64_t)rows[i] * row_stride];
        q[0] += ostats[i].a;
        q[1] += ostats[i].b;
        q[2] += ostats[i].c;
    }
    for (int64_t s = 0; s < w; s++)
        h[s] = (h[s] + h[w + s]) + (h[2 * w + s] + h[3 * w + s]);
}

void prop_split_find_rows(const prop_tree_params *P, const prop_hist_layout *L,
                          const uint8_t *codes, int64_t row_stride, int64_t col_stride,
                          const prop_hstat *ostats, const int32_t *rows, int64_t n,
                          const prop_hstat *total, const int32_t *order, int32_t n_order,
                          uint64_t known_const, uint64_t *is_const, double *scratch,
                          prop_split *best)
{
    memset(best, 0, sizeof *best);
    const double tt = node_term(P, total);
    int32_t tried = 0, nonconst = 0;
    uint64_t konst = known_const;
    for (int32_t k = 0; k < n_order; k++) {
        int32_t j = order[k];
        int32_t ns = L->offset[j + 1] - L->offset[j];
        int32_t nonempty = 1; /* a feature known to be constant is not summed */
        if (j >= 64 || !((konst >> j) & 1)) {
            feature_hist_rows(codes + (int64_t)j * col_stride, row_stride, ostats, rows, n, ns,
                              scratch);
            nonempty = scan_feature(P, scratch, ns, 3, total, tt, j, best);
            if (nonempty < 2 && j < 64)
                konst |= (uint64_t)1 << j;
        }
        tried++;
        if (nonempty < 2) {
            if (P->max_features > 0 && tried >= P->max_features && nonconst > 0)
                break;
            continue;
        }
        nonconst++;
        if (P->max_features > 0 && tried >= P->max_features)
            break;
    }
    *is_const = konst;
}

void prop_split_find_ref(const prop_tree_params *P, const prop_hist_layout *L,
                         const uint8_t *codes, const prop_hstat *stats, const int32_t *rows,
                         int64_t n, const prop_hstat *total, const int32_t *order,
                         int32_t n_order, prop_split *best)
{
    memset(best, 0, sizeof *best);
    const double tt = node_term(P, total);
    int32_t p = L->n_features, tried = 0, nonconst = 0;
    for (int32_t k = 0; k < n_order; k++) {
        int32_t j = order[k];
        int32_t ns = L->offset[j + 1] - L->offset[j];
        int constant = 1;
        for (int64_t i = 1; i < n && constant; i++)
            constant = codes[(int64_t)rows[i] * p + j] == codes[(int64_t)rows[0] * p + j];
        tried++;
        if (n == 0 || constant) {
            if (P->max_features > 0 && tried >= P->max_features && nonconst > 0)
                break;
            continue;
        }
        nonconst++;
        for (int32_t t = 0; t < ns - 1; t++) {
            prop_hstat acc = {0.0, 0.0, 0.0};
            int at_t = 0;
            for (int64_t i = 0; i < n; i++) {
                int32_t r = rows[i];
                uint8_t c = codes[(int64_t)r * p + j];
                if (prop_goes_left(c, (uint8_t)t)) {
                    acc.a += stats[r].a;
                    acc.b += stats[r].b;
                    acc.c += stats[r].c;
                    at_t |= c == t;
                }
            }
            if (at_t && acc.c < total->c)
                consider(P, total, tt, &acc, j, t, best);
        }
        if (P->max_features > 0 && tried >= P->max_features)
            break;
    }
}
