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


/* ---- categorical features (tree.h, "categorical splits") ------------------ */

static inline int is_categorical(const prop_tree_params *P, int32_t j)
{
    return P->cat.categorical != NULL && P->cat.categorical[j] != 0;
}

/* A category's sort key: boosting g / (h + cat_smooth), a forest its positive share
 * b / (a + b + cat_smooth) (0 when the denominator is not positive). */
static inline double cat_key(const prop_tree_params *P, const double *q, int W)
{
    double num = P->mode == PROP_TREE_GRADIENT ? q[0] : q[1];
    double den = (P->mode == PROP_TREE_GRADIENT ? q[1] : q[0] + q[1]) + P->cat.cat_smooth;
    (void)W;
    return den > 0.0 ? num / den : 0.0;
}

/* Categories of feature j from its ns slots h (W doubles each; the last slot is the
 * missing one): the placed categories sorted by their key, and every prefix and
 * suffix of at most max_cat_threshold of them tried as the left set. A category's
 * rows are its slot's row count (W == 3), or for boosting's (gradient, hessian) slots
 * its hessian times the node's rows per hessian (total->c / total->b; 1 when the node's
 * rows are not known). Returns the number of non-empty slots, as scan_feature. */
static int32_t scan_categorical(const prop_tree_params *P, const double *h, int32_t ns,
                                const int W, const prop_hstat *total, double tt, int32_t j,
                                prop_split *best)
{
    int32_t nonempty = 0, m = 0;
    int32_t ord[256];
    double key[256];
    int forced = 0; /* mass that goes right whatever the set: missing, other, small */
    const double cnt_factor = W == 2 && total->c > 0.0 && total->b > 0.0 ? total->c / total->b
                                                                        : 1.0;
    for (int32_t s = 0; s < ns; s++) {
        const double *q = h + W * s;
        if (!slot_nonempty(q, W))
            continue;
        nonempty++;
        double rows = W == 3 ? q[2] : q[1] * cnt_factor;
        if (s == ns - 1 || s == PROP_CAT_OTHER || rows < P->cat.min_data_per_group) {
            forced = 1;
            continue;
        }
        /* insertion by (key, code): at most 254 categories */
        double k = cat_key(P, q, W);
        int32_t i = m++;
        while (i > 0 && key[i - 1] > k) {
            key[i] = key[i - 1];
            ord[i] = ord[i - 1];
            i--;
        }
        key[i] = k;
        ord[i] = s;
    }
    if (nonempty < 2 || m == 0)
        return nonempty;
    int32_t maxl = P->cat.max_cat_threshold > 0 && P->cat.max_cat_threshold < m ? P->cat.max_cat_threshold
                                                                        : m;
    for (int dir = 0; dir < 2; dir++) {
        prop_hstat acc = {0.0, 0.0, 0.0};
        for (int32_t i = 1; i <= maxl; i++) {
            if (i == m && (!forced || dir == 1)) /* everything left, or the prefix again */
                break;
            const double *q = h + W * ord[dir == 0 ? i - 1 : m - i];
            acc.a += q[0];
            acc.b += q[1];
            if (W == 3)
                acc.c += q[2];
            if (consider(P, total, tt, &acc, j, PROP_CAT_SPLIT, best)) {
                memset(best->cat_left, 0, sizeof best->cat_left);
                for (int32_t u = 0; u < i; u++) {
                    int32_t c = ord[dir == 0 ? u : m - 1 - u];
                    best->cat_left[c >> 6] |= (uint64_t)1 << (c & 63);
                }
                best->left_slots = i;
                best->right_slots = nonempty - i;
            }
        }
    }
    return nonempty;
}

/* The candidates of feature j, numeric or categorical. */
static inline int32_t scan_any(const prop_tree_params *P, const double *h, int32_t ns,
                               const int W, const prop_hstat *total, double tt, int32_t j,
                               prop_split *best)
{
    if (is_categorical(P, j))
        return scan_categorical(P, h, ns, W, total, tt, j, best);
    return scan_feature(P, h, ns, W, total, tt, j, best);
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
        int32_t nonempty = W == 3 ? scan_any(P, h, ns, 3, total, tt, j, best)
                                  : scan_any(P, h, ns, 2, total, tt, j, best);
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
            nonempty = scan_any(P, scratch, ns, 3, total, tt, j, best);
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
        if (is_categorical(P, j)) {
            /* the categories' sums from a scan of the rows (exact row counts) */
            double h[3 * 256];
            memset(h, 0, (size_t)(3 * ns) * sizeof *h);
            for (int64_t i = 0; i < n; i++) {
                int32_t r = rows[i];
                double *q = h + 3 * codes[(int64_t)r * p + j];
                q[0] += stats[r].a;
                q[1] += stats[r].b;
                q[2] += stats[r].c;
            }
            scan_categorical(P, h, ns, 3, total, tt, j, best);
            if (P->max_features > 0 && tried >= P->max_features)
                break;
            continue;
        }
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
