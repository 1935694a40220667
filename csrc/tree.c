/* tree.c - depth-first histogram tree growth into flat node arrays. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/tree.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- node arrays ------------------------------------------------------ */

void prop_nodes_free(prop_nodes *nd)
{
    free(nd->feature);
    free(nd->threshold);
    free(nd->left);
    free(nd->right);
    free(nd->value);
    free(nd->count);
    free(nd->gain);
    memset(nd, 0, sizeof *nd);
}

#define GROW(field)                                                              \
    do {                                                                         \
        void *p_ = realloc(nd->field, (size_t)cap * sizeof *nd->field);          \
        if (p_ == NULL)                                                          \
            return prop_fail(err, PROP_NOMEM, "out of memory for tree nodes");   \
        nd->field = p_;                                                          \
    } while (0)

prop_status prop_nodes_reserve(prop_nodes *nd, int64_t extra, prop_error *err)
{
    if (nd->n_nodes + extra <= nd->cap)
        return PROP_OK;
    int64_t cap = nd->cap ? nd->cap : 64;
    while (cap < nd->n_nodes + extra)
        cap *= 2;
    if (cap > INT32_MAX)
        return prop_fail(err, PROP_NOMEM, "a tree ensemble may hold at most 2^31 nodes");
    GROW(feature);
    GROW(threshold);
    GROW(left);
    GROW(right);
    GROW(value);
    GROW(count);
    GROW(gain);
    nd->cap = cap;
    return PROP_OK;
}

prop_status prop_nodes_append(prop_nodes *dst, const prop_nodes *src, prop_error *err)
{
    prop_status st = prop_nodes_reserve(dst, src->n_nodes, err);
    if (st != PROP_OK)
        return st;
    size_t m = (size_t)src->n_nodes;
    int64_t o = dst->n_nodes;
    if (m) {
        memcpy(dst->feature + o, src->feature, m * sizeof *src->feature);
        memcpy(dst->threshold + o, src->threshold, m * sizeof *src->threshold);
        memcpy(dst->left + o, src->left, m * sizeof *src->left);
        memcpy(dst->right + o, src->right, m * sizeof *src->right);
        memcpy(dst->value + o, src->value, m * sizeof *src->value);
        memcpy(dst->count + o, src->count, m * sizeof *src->count);
        memcpy(dst->gain + o, src->gain, m * sizeof *src->gain);
    }
    dst->n_nodes += src->n_nodes;
    return PROP_OK;
}

uint8_t *prop_codes_transpose(const uint8_t *codes, int64_t n, int32_t p, int n_threads)
{
    uint8_t *out = malloc((size_t)(n * p > 0 ? n * p : 1));
    if (out == NULL)
        return NULL;
    const int64_t B = 4096;
    int64_t nb = (n + B - 1) / B;
    int nt = n_threads > 0 ? n_threads : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (n > 100000)
    for (int64_t b = 0; b < nb; b++) {
        int64_t i0 = b * B, i1 = i0 + B < n ? i0 + B : n;
        for (int32_t j = 0; j < p; j++)
            for (int64_t i = i0; i < i1; i++)
                out[(int64_t)j * n + i] = codes[i * p + j];
    }
    return out;
}

/* ---- histogram pool --------------------------------------------------- */

/* Buffers of `bytes` bytes: 3 doubles per slot for a forest, one packed uint64 per
 * slot for boosting (whose split search reads the decoded copy `dec`). */
typedef struct {
    void **buf;
    int32_t *free_list;
    int32_t n_buf, n_free, cap;
    size_t bytes;
    double *dec; /* boosting: 2 doubles per slot */
} hist_pool;

static int32_t pool_get(hist_pool *hp)
{
    if (hp->n_free > 0)
        return hp->free_list[--hp->n_free];
    if (hp->n_buf == hp->cap) {
        int32_t cap = hp->cap ? 2 * hp->cap : 8;
        void **b = realloc(hp->buf, (size_t)cap * sizeof *b);
        if (b == NULL)
            return -1;
        hp->buf = b;
        int32_t *f = realloc(hp->free_list, (size_t)cap * sizeof *f);
        if (f == NULL)
            return -1;
        hp->free_list = f;
        hp->cap = cap;
    }
    void *h = malloc(hp->bytes);
    if (h == NULL)
        return -1;
    hp->buf[hp->n_buf] = h;
    return hp->n_buf++;
}

static void pool_put(hist_pool *hp, int32_t id)
{
    if (id >= 0)
        hp->free_list[hp->n_free++] = id;
}

static void pool_free(hist_pool *hp)
{
    for (int32_t i = 0; i < hp->n_buf; i++)
        free(hp->buf[i]);
    free(hp->buf);
    free(hp->free_list);
    free(hp->dec);
}

/* ---- workspace: buffers reused from tree to tree ---------------------- */

struct prop_tree_workspace {
    hist_pool hp;
    int32_t *tmp;
    prop_hstat *ost, *otmp; /* forest: ordered statistics, ost[i] belongs to rows[i] */
    int64_t tmp_cap;
    uint64_t *q;  /* boosting: packed quantised statistics by row */
    uint64_t *ov; /* boosting: q[rows[i]] gathered for a histogram build */
    int64_t q_cap, ov_cap;
    hist_pool *thp;    /* per-thread pools and feature orders of the subtree phase */
    int32_t **thorder;
    int n_thr;
    int32_t thorder_p;
};

prop_tree_workspace *prop_tree_workspace_new(void)
{
    return calloc(1, sizeof(prop_tree_workspace));
}

void prop_tree_workspace_free(prop_tree_workspace *ws)
{
    if (ws == NULL)
        return;
    pool_free(&ws->hp);
    free(ws->tmp);
    free(ws->ost);
    free(ws->otmp);
    free(ws->q);
    free(ws->ov);
    for (int t = 0; t < ws->n_thr; t++) {
        pool_free(&ws->thp[t]);
        free(ws->thorder[t]);
    }
    free(ws->thp);
    free(ws->thorder);
    free(ws);
}

/* Make every pooled histogram free again, for histograms of `bytes` bytes and (when
 * dec_slots > 0) a decode buffer of dec_slots slots. Returns 0, or -1 when out of memory. */
static int pool_reset(hist_pool *hp, size_t bytes, int64_t dec_slots)
{
    if (hp->bytes != bytes) {
        pool_free(hp);
        memset(hp, 0, sizeof *hp);
        hp->bytes = bytes;
    }
    /* a boosting pool's bytes fix its slot count, hence the decode buffer's size */
    if (dec_slots > 0 && hp->dec == NULL &&
        (hp->dec = malloc((size_t)dec_slots * 2 * sizeof *hp->dec)) == NULL)
        return -1;
    hp->n_free = 0;
    for (int32_t i = hp->n_buf - 1; i >= 0; i--)
        hp->free_list[hp->n_free++] = i;
    return 0;
}

/* ---- growth ------------------------------------------------------------ */

typedef struct {
    int64_t id, start, end;
    int32_t depth, hist;
    uint64_t seed;
    prop_hstat tot;
} stack_item;

static int may_split(const prop_tree_params *P, const prop_hstat *s, int32_t depth)
{
    if (P->max_depth > 0 && depth >= P->max_depth)
        return 0;
    if (P->mode == PROP_TREE_GRADIENT) /* row counts are known once the tree is grown */
        return 1;
    if (s->c < P->min_samples_split || s->c < 2.0 * P->min_samples_leaf)
        return 0;
    return !prop_node_pure(P, s);
}

static uint64_t child_seed(uint64_t seed, int right)
{
    return prop_mix64(seed ^ (right ? 0xD1B54A32D192ED03ULL : 0x8CB92BA72F3D8DD7ULL));
}

/* Growable list of stack items. */
typedef struct {
    stack_item *a;
    int64_t n, cap;
} item_vec;

static int vec_push(item_vec *v, stack_item it)
{
    if (v->n == v->cap) {
        int64_t cap = v->cap ? 2 * v->cap : 64;
        stack_item *a = realloc(v->a, (size_t)cap * sizeof *a);
        if (a == NULL)
            return -1;
        v->a = a;
        v->cap = cap;
    }
    v->a[v->n++] = it;
    return 0;
}

/* What every node of one tree shares. tmp, otmp and ov are indexed like rows, so
 * subtrees (disjoint row ranges) may be grown at the same time. A forest carries
 * ordered statistics (ost) through the partitions; boosting builds its packed integer
 * histograms from q (see hist.h), decoded with unit[0] (gradient) and unit[1]
 * (hessian). */
typedef struct {
    const prop_tree_params *P;
    const prop_tree_data *D;
    const prop_hist_layout *L;
    const uint8_t *codes;
    int32_t p;
    int32_t *rows, *tmp, *row_leaf;
    prop_hstat *ost, *otmp;
    const uint64_t *q;
    uint64_t *ov;
    double unit[2];
    const int32_t *allowed;
    int32_t n_allowed;
} grow_ctx;

/* Histogram of rows[start, end) into pool buffer h. Returns 0, or -1 when out of memory. */
static int node_hist(const grow_ctx *C, hist_pool *hpp, int32_t h, int64_t start, int64_t end,
                     int nt)
{
    if (C->q == NULL)
        return prop_hist_build_ordered(C->L, C->codes, C->ost + start, C->rows + start,
                                       end - start, hpp->buf[h], nt);
    uint64_t *ov = C->ov + start;
    const int32_t *rr = C->rows + start;
    for (int64_t i = 0; i < end - start; i++)
        ov[i] = C->q[rr[i]];
    return prop_hist_build_q(C->L, C->codes, ov, rr, end - start, hpp->buf[h], nt);
}

/* Boosting: decode a packed histogram for the split search; *T = the node total it
 * holds (every feature's slots add up to it; feature 0's are summed). */
static void decode_q(const grow_ctx *C, hist_pool *hpp, int32_t h, prop_hstat *T)
{
    const prop_hist_layout *L = C->L;
    const uint64_t *hq = hpp->buf[h];
    prop_hist_decode_q(hq, L->n_slots, C->unit[0], C->unit[1], hpp->dec);
    uint64_t acc = 0;
    for (int32_t s = L->offset[0]; s < L->offset[1]; s++)
        acc += hq[s];
    int64_t g, hh;
    prop_hist_unpack_q(acc, &g, &hh);
    T->a = (double)g * C->unit[0];
    T->b = (double)hh * C->unit[1];
    T->c = 0.0;
}

/* Depth-first growth from the items on `stack` into `out` (tree-local indices are
 * id - base). Items that have a histogram and are at depth defer_depth, or below the
 * root with at most defer_rows rows, go to `deferred` instead (defer_depth < 0: none).
 * Histograms are built with nt threads. Returns 0, or -1 when out of memory. */
static int grow_loop(const grow_ctx *C, hist_pool *hpp, int nt, item_vec *stack,
                     prop_nodes *out, int64_t base, int32_t *order, int32_t defer_depth,
                     int64_t defer_rows, item_vec *deferred)
{
    const prop_tree_params *P = C->P;
    const prop_hist_layout *L = C->L;
    const prop_tree_data *D = C->D;
    const uint8_t *codes = C->codes;
    const int32_t p = C->p;
    const int quant = C->q != NULL;
    int32_t *rows = C->rows, *row_leaf = C->row_leaf;
    prop_hstat *ost = C->ost;
    prop_error err;
    while (stack->n > 0) {
        stack_item it = stack->a[--stack->n];
        if (defer_depth >= 0 && it.hist >= 0 &&
            (it.depth >= defer_depth || (it.depth >= 1 && it.end - it.start <= defer_rows))) {
            if (vec_push(deferred, it) < 0)
                return -1;
            continue;
        }
        int64_t id = it.id;
        prop_split best;
        best.found = 0;
        if (it.hist >= 0) {
            /* node-path seeded feature order: a random permutation of the allowed features */
            prop_rng rng;
            prop_rng_seed(&rng, it.seed);
            memcpy(order, C->allowed, (size_t)C->n_allowed * sizeof *order);
            /* always shuffled: the order also breaks ties between equal splits */
            if (P->mode == PROP_TREE_CLASSIFY)
                for (int32_t k = C->n_allowed - 1; k > 0; k--) {
                    int32_t m = (int32_t)prop_rng_below(&rng, (uint64_t)k + 1);
                    int32_t t = order[k];
                    order[k] = order[m];
                    order[m] = t;
                }
            if (quant) {
                prop_hstat T;
                decode_q(C, hpp, it.hist, &T);
                prop_split_find(P, L, hpp->dec, &T, order, C->n_allowed, &best);
            } else {
                prop_split_find(P, L, hpp->buf[it.hist], &it.tot, order, C->n_allowed, &best);
            }
        }
        out->value[id] = prop_node_value(P, &it.tot);
        out->count[id] = it.tot.c;
        if (!best.found) {
            out->feature[id] = -1;
            out->threshold[id] = 0;
            out->left[id] = out->right[id] = -1;
            out->gain[id] = 0.0;
            pool_put(hpp, it.hist);
            if (row_leaf != NULL)
                for (int64_t i = it.start; i < it.end; i++)
                    row_leaf[rows[i]] = (int32_t)(id - base);
            continue;
        }
        out->feature[id] = best.feature;
        out->threshold[id] = (uint8_t)best.threshold;
        out->gain[id] = best.gain;
        const uint8_t *col = D->slot_codes_t ? D->slot_codes_t + (int64_t)best.feature * D->n_rows
                                             : codes + best.feature;
        const int64_t stride = D->slot_codes_t ? 1 : p;
        if (prop_nodes_reserve(out, 2, &err) != PROP_OK)
            return -1;
        int64_t lid = out->n_nodes, rid = lid + 1;
        out->n_nodes += 2;
        out->left[id] = (int32_t)(lid - base);
        out->right[id] = (int32_t)(rid - base);
        /* the children's sums come from the split search (boosting replaces them with
         * exact sums once the tree is grown, see node_sums) */
        int64_t nl = 0, nr = 0;
        const int64_t cnt = it.end - it.start;
        const int32_t thr = best.threshold;
        int leaves = P->max_depth > 0 && it.depth + 1 >= P->max_depth;
        if (leaves) {
            /* both children are leaves: label the rows, no need to move them */
            int32_t lab[2] = {(int32_t)(rid - base), (int32_t)(lid - base)};
            for (int64_t i = it.start; i < it.end; i++) {
                int32_t r = rows[i];
                int64_t go = col[(int64_t)r * stride] <= thr;
                if (row_leaf != NULL)
                    row_leaf[r] = lab[go];
                nl += go;
            }
            nr = cnt - nl;
        } else if (ost != NULL) {
            /* stable, branch-free partition of rows[start, end) with their ordered
             * statistics */
            int32_t *R = rows + it.start, *T = C->tmp + it.start;
            prop_hstat *S = ost + it.start, *TS = C->otmp + it.start;
            for (int64_t i = 0; i < cnt; i++) {
                int32_t r = R[i];
                prop_hstat s = S[i];
                int64_t go = col[(int64_t)r * stride] <= thr;
                R[nl] = r;
                S[nl] = s;
                T[nr] = r;
                TS[nr] = s;
                nl += go;
                nr += 1 - go;
            }
            memcpy(R + nl, T, (size_t)nr * sizeof *rows);
            memcpy(S + nl, TS, (size_t)nr * sizeof *ost);
        } else {
            /* stable, branch-free partition of the row indices alone */
            int32_t *R = rows + it.start, *T = C->tmp + it.start;
            for (int64_t i = 0; i < cnt; i++) {
                int32_t r = R[i];
                int64_t go = col[(int64_t)r * stride] <= thr;
                R[nl] = r;
                T[nr] = r;
                nl += go;
                nr += 1 - go;
            }
            memcpy(R + nl, T, (size_t)nr * sizeof *rows);
        }
        stack_item li = {lid, it.start, it.start + nl, it.depth + 1, -1, child_seed(it.seed, 0),
                         best.left};
        stack_item ri = {rid, it.start + nl, it.end, it.depth + 1, -1, child_seed(it.seed, 1),
                         best.right};
        if (leaves) /* rows already labelled (and not partitioned) */
            li.start = li.end = ri.start = ri.end = it.start;
        int sl_ok = may_split(P, &li.tot, li.depth), sr_ok = may_split(P, &ri.tot, ri.depth);
        if (sl_ok || sr_ok) {
            int left_small = nl <= nr;
            stack_item *small = left_small ? &li : &ri, *large = left_small ? &ri : &li;
            int s_small = left_small ? sl_ok : sr_ok, s_large = left_small ? sr_ok : sl_ok;
            int32_t h = pool_get(hpp);
            if (h < 0)
                return -1;
            if (node_hist(C, hpp, h, small->start, small->end, nt) < 0)
                return -1;
            if (s_large) {
                if (quant)
                    prop_hist_subtract_q(hpp->buf[it.hist], hpp->buf[h], hpp->buf[it.hist],
                                         L->n_slots);
                else
                    prop_hist_subtract(hpp->buf[it.hist], hpp->buf[h], hpp->buf[it.hist],
                                       L->n_slots);
                large->hist = it.hist;
            } else {
                pool_put(hpp, it.hist);
            }
            if (s_small)
                small->hist = h;
            else
                pool_put(hpp, h);
        } else {
            pool_put(hpp, it.hist);
        }
        if (vec_push(stack, ri) < 0 || vec_push(stack, li) < 0)
            return -1;
    }
    return 0;
}

/* Nodes that still need splitting become subtrees grown in parallel (each with one
 * thread) once they hold at most half of the tree's rows, or at depth TASK_DEPTH: a
 * lopsided root split thus gives tasks of similar size (e.g. 30 / 70 -> 30, 35, 35)
 * with few fork-joins before them. Boosting goes one level deeper (up to 8 tasks, so
 * fewer idle threads at the end): its histogram builds share rows between threads at
 * no cost in the levels before. The rule does not involve the thread count, so the
 * trees (and their node numbering) do not depend on n_threads. */
#define TASK_DEPTH 2
#define TASK_DEPTH_BOOST 3

/* Per-thread buffers of the subtree phase. */
static int ensure_thread_bufs(prop_tree_workspace *ws, int nt, int32_t p, size_t bytes,
                              int64_t dec_slots)
{
    if (ws->n_thr < nt) {
        hist_pool *tp = realloc(ws->thp, (size_t)nt * sizeof *tp);
        if (tp == NULL)
            return -1;
        ws->thp = tp;
        int32_t **to = realloc(ws->thorder, (size_t)nt * sizeof *to);
        if (to == NULL)
            return -1;
        ws->thorder = to;
        for (int t = ws->n_thr; t < nt; t++) {
            memset(&ws->thp[t], 0, sizeof ws->thp[t]);
            ws->thorder[t] = NULL;
        }
        ws->n_thr = nt;
    }
    /* every feature-order buffer holds thorder_p entries (threads above nt too) */
    if (ws->thorder_p < p) {
        for (int t = 0; t < ws->n_thr; t++) {
            free(ws->thorder[t]);
            ws->thorder[t] = NULL;
        }
        ws->thorder_p = p;
    }
    for (int t = 0; t < nt; t++) {
        if (ws->thorder[t] == NULL) {
            size_t m = (size_t)(ws->thorder_p > 0 ? ws->thorder_p : 1);
            ws->thorder[t] = malloc(m * sizeof **ws->thorder);
            if (ws->thorder[t] == NULL)
                return -1;
        }
        if (pool_reset(&ws->thp[t], bytes, dec_slots) < 0)
            return -1;
    }
    return 0;
}

/* Boosting: quantise the rows' (gradient, hessian) to packed integers (hist.h),
 * gather them in row order into ov, and sum the exact totals.
 * A row of multiplicity c (c identical sessions merged) is quantised per session,
 * c * round(x / c): merged rows get the integers of the rows they stand for (exactly
 * when their weights are equal), so compressed training finds the same splits. A
 * session's non-zero hessian stays >= 1 unit, so a slot with rows never looks empty.
 * With K the total multiplicity, the integer sums are at most S_g * s_g + K / 2 and
 * S_h * s_h + K; the scales s_g, s_h keep them below 2^31 - 1 and 2^32 - 1. A sample
 * with K >= 2^30 is quantised row by row (K = n < 2^30). Sums run over fixed blocks
 * added in block order, so nothing depends on the thread count. Returns 0, or -1
 * when out of memory. */
#define Q_BLOCK 65536
static int quantize(const prop_hstat *stats, const int32_t *rows, int64_t n, uint64_t *q,
                    uint64_t *ov, double unit[2], prop_hstat *tot, int nt)
{
    int64_t nb = (n + Q_BLOCK - 1) / Q_BLOCK;
    double *part = malloc((size_t)(nb > 0 ? nb : 1) * 5 * sizeof *part);
    if (part == NULL)
        return -1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nb > 1)
    for (int64_t b = 0; b < nb; b++) {
        double sg = 0.0, sh = 0.0, a = 0.0, bb = 0.0, c = 0.0;
        int64_t i1 = (b + 1) * Q_BLOCK < n ? (b + 1) * Q_BLOCK : n;
        for (int64_t i = b * Q_BLOCK; i < i1; i++) {
            const prop_hstat *s = &stats[rows[i]];
            sg += fabs(s->a);
            sh += s->b;
            a += s->a;
            bb += s->b;
            c += s->c;
        }
        double *o = part + 5 * b;
        o[0] = sg, o[1] = sh, o[2] = a, o[3] = bb, o[4] = c;
    }
    double S[5] = {0.0, 0.0, 0.0, 0.0, 0.0};
    for (int64_t b = 0; b < nb; b++)
        for (int k = 0; k < 5; k++)
            S[k] += part[5 * b + k];
    free(part);
    tot->a = S[2], tot->b = S[3], tot->c = S[4];
    const int per_session = S[4] < 1073741824.0;
    const double K = per_session ? S[4] : (double)n, shrink = 1.0 - 1e-9;
    double bg = (2147483646.0 - 0.5 * K) * shrink, bh = (4294967294.0 - K) * shrink;
    double sg = S[0] > 0.0 ? bg / S[0] : 1.0, sh = S[1] > 0.0 ? bh / S[1] : 1.0;
    unit[0] = 1.0 / sg;
    unit[1] = 1.0 / sh;
#pragma omp parallel for num_threads(nt) schedule(static) if (n > 200000)
    for (int64_t i = 0; i < n; i++) {
        int32_t r = rows[i];
        double k = per_session ? stats[r].c : 1.0;
        double x = stats[r].a * sg, y = stats[r].b * sh;
        if (k != 1.0) { /* merged rows only: plain rows skip the divisions */
            x /= k;
            y /= k;
        }
        /* round half away from zero, branch-free (gradient signs are random) */
        int64_t g = (int64_t)(x + copysign(0.5, x));
        int64_t h = (int64_t)(y + 0.5);
        h = y > 0.0 && h < 1 ? 1 : h;
        q[r] = ov[i] = prop_hist_pack_q(g * (int64_t)k, h * (int64_t)k);
    }
    return 0;
}

/* Boosting: exact (double) sums of every node of the tree [base, n_nodes) from the
 * rows' leaves (row_leaf[r] < 0: r is not in the tree's sample), then its values and
 * counts. Leaves sum their rows in row-id order over fixed blocks (added in block
 * order), inner nodes add their children, so nothing depends on the thread count.
 * Returns 0, or -1 when out of memory. */
static int node_sums(const prop_tree_params *P, const prop_hstat *stats, int64_t n_rows,
                     const int32_t *row_leaf, prop_nodes *out, int64_t base, int nt)
{
    const int64_t m = out->n_nodes - base;
    /* blocks capped so the partial sums stay within 2^20 (24 MB), or one block */
    int64_t nb = (n_rows + Q_BLOCK - 1) / Q_BLOCK, cap = ((int64_t)1 << 20) / m;
    if (nb > cap)
        nb = cap;
    if (nb < 1)
        nb = 1;
    prop_hstat *part = calloc((size_t)(nb * m), sizeof *part);
    if (part == NULL)
        return -1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nb > 1)
    for (int64_t b = 0; b < nb; b++) {
        prop_hstat *acc = part + b * m;
        for (int64_t r = n_rows * b / nb; r < n_rows * (b + 1) / nb; r++) {
            int32_t k = row_leaf[r];
            if (k < 0)
                continue;
            acc[k].a += stats[r].a;
            acc[k].b += stats[r].b;
            acc[k].c += stats[r].c;
        }
    }
    for (int64_t b = 1; b < nb; b++)
        for (int64_t k = 0; k < m; k++) {
            part[k].a += part[b * m + k].a;
            part[k].b += part[b * m + k].b;
            part[k].c += part[b * m + k].c;
        }
    for (int64_t k = m - 1; k >= 0; k--) {
        int32_t l = out->left[base + k], r = out->right[base + k];
        if (l >= 0) {
            part[k].a = part[l].a + part[r].a;
            part[k].b = part[l].b + part[r].b;
            part[k].c = part[l].c + part[r].c;
        }
        out->value[base + k] = prop_node_value(P, &part[k]);
        out->count[base + k] = part[k].c;
    }
    free(part);
    return 0;
}

prop_status prop_tree_grow(const prop_tree_params *P, const prop_tree_data *D,
                           const prop_hstat *stats, int32_t *rows, int64_t n,
                           const uint8_t *feature_allowed, prop_tree_workspace *ws_in,
                           int32_t *row_leaf, prop_nodes *out, prop_error *err)
{
    const prop_hist_layout *L = D->layout;
    int32_t p = L->n_features;
    const uint8_t *codes = D->slot_codes;
    prop_status st = PROP_OK;
    int64_t base = out->n_nodes;
    const int quant = P->mode == PROP_TREE_GRADIENT;
    const int nt = P->n_threads > 1 ? P->n_threads : 1;
    prop_tree_workspace *ws = ws_in ? ws_in : prop_tree_workspace_new();
    item_vec stack = {NULL, 0, 0}, tasks = {NULL, 0, 0};
    prop_nodes *tn = NULL;
    int64_t n_tn = 0, *run = NULL;
    int32_t *order = malloc((size_t)p * sizeof *order);
    int32_t *allowed = malloc((size_t)p * sizeof *allowed);
    if (quant && row_leaf == NULL) {
        st = prop_fail(err, PROP_INVALID_ARG, "boosting trees need row_leaf");
        goto done;
    }
    if (quant && n > 1073741823) {
        st = prop_fail(err, PROP_INVALID_ARG,
                       "a boosting tree can be grown on at most 2^30 - 1 distinct rows, got %lld",
                       (long long)n);
        goto done;
    }
    if (ws != NULL && ws->tmp_cap < n) {
        free(ws->tmp);
        free(ws->ost);
        free(ws->otmp);
        ws->ost = ws->otmp = NULL;
        size_t cap = (size_t)(n > 0 ? n : 1);
        ws->tmp = malloc(cap * sizeof *ws->tmp);
        ws->tmp_cap = ws->tmp ? n : 0;
    }
    if (ws != NULL && !quant && ws->ost == NULL && ws->tmp_cap > 0) {
        size_t cap = (size_t)ws->tmp_cap;
        ws->ost = malloc(cap * sizeof *ws->ost);
        ws->otmp = malloc(cap * sizeof *ws->otmp);
        if (ws->ost == NULL || ws->otmp == NULL)
            ws->tmp_cap = 0;
    }
    if (ws != NULL && quant && (ws->q_cap < D->n_rows || ws->ov_cap < n)) {
        free(ws->q);
        free(ws->ov);
        ws->q = malloc((size_t)(D->n_rows > 0 ? D->n_rows : 1) * sizeof *ws->q);
        ws->ov = malloc((size_t)(n > 0 ? n : 1) * sizeof *ws->ov);
        ws->q_cap = ws->q && ws->ov ? D->n_rows : 0;
        ws->ov_cap = ws->q && ws->ov ? n : 0;
    }
    if (ws == NULL || ws->tmp_cap < n || order == NULL || allowed == NULL ||
        (quant && (ws->q_cap < D->n_rows || ws->ov_cap < n))) {
        st = prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
        goto done;
    }
    hist_pool *hpp = &ws->hp;
    const size_t hbytes = quant ? (size_t)L->n_slots * sizeof(uint64_t)
                                : (size_t)L->n_slots * 3 * sizeof(double);
    const int64_t dec_slots = quant ? L->n_slots : 0;
    if (pool_reset(hpp, hbytes, dec_slots) < 0) {
        st = prop_fail(err, PROP_NOMEM, "out of memory for histograms");
        goto done;
    }
    int32_t n_allowed = 0;
    for (int32_t j = 0; j < p; j++)
        if (feature_allowed == NULL || feature_allowed[j])
            allowed[n_allowed++] = j;
    grow_ctx C = {P, D, L, codes, p, rows, ws->tmp, row_leaf,
                  quant ? NULL : ws->ost, quant ? NULL : ws->otmp,
                  quant ? ws->q : NULL, quant ? ws->ov : NULL, {1.0, 1.0}, allowed, n_allowed};

    prop_hstat tot = {0.0, 0.0, 0.0};
    if (quant) {
        memset(row_leaf, 0xff, (size_t)D->n_rows * sizeof *row_leaf); /* all -1 */
        if (quantize(stats, rows, n, ws->q, ws->ov, C.unit, &tot, nt) < 0) {
            st = prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
            goto done;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            prop_hstat s = stats[rows[i]];
            ws->ost[i] = s;
            tot.a += s.a;
            tot.b += s.b;
            tot.c += s.c;
        }
    }
    if ((st = prop_nodes_reserve(out, 1, err)) != PROP_OK)
        goto done;
    out->n_nodes++;
    stack_item root = {base, 0, n, 0, -1, prop_mix64(P->seed ^ 0x5EEDULL), tot};
    if (may_split(P, &tot, 0) && n_allowed > 0) {
        int32_t h = pool_get(hpp);
        if (h < 0 || (quant ? prop_hist_build_q(L, codes, ws->ov, rows, n, hpp->buf[h], nt)
                            : prop_hist_build_ordered(L, codes, ws->ost, rows, n, hpp->buf[h],
                                                      nt)) < 0) {
            st = prop_fail(err, PROP_NOMEM, "out of memory for histograms");
            goto done;
        }
        root.hist = h;
    }
    if (vec_push(&stack, root) < 0 ||
        grow_loop(&C, hpp, nt, &stack, out, base, order, quant ? TASK_DEPTH_BOOST : TASK_DEPTH,
                  n / 2, &tasks) < 0) {
        st = prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
        goto done;
    }
    if (tasks.n == 0)
        goto done;

    /* subtrees: each into its own node arrays (node 0 = the subtree root), then
     * appended in task order; they are grown largest first (fewer idle threads at
     * the end), which does not change what each one holds */
    tn = calloc((size_t)tasks.n, sizeof *tn);
    n_tn = tn != NULL ? tasks.n : 0;
    run = malloc((size_t)n_tn * sizeof *run);
    if (tn == NULL || run == NULL ||
        (nt > 1 && ensure_thread_bufs(ws, nt, p, hbytes, dec_slots) < 0)) {
        st = prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
        goto done;
    }
    for (int64_t k = 0; k < n_tn; k++) {
        int64_t at = k, rk = tasks.a[k].end - tasks.a[k].start;
        for (; at > 0 && tasks.a[run[at - 1]].end - tasks.a[run[at - 1]].start < rk; at--)
            run[at] = run[at - 1];
        run[at] = k;
    }
    int failed = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t kk = 0; kk < n_tn; kk++) {
        const int64_t k = run[kk];
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        stack_item it = tasks.a[k];
        hist_pool *hp = nt > 1 ? &ws->thp[t] : hpp;
        int32_t *ord = nt > 1 ? ws->thorder[t] : order;
        int ok = 1;
        if (nt > 1) {
            int32_t h = pool_get(hp);
            if (h < 0)
                ok = 0;
            else
                memcpy(hp->buf[h], hpp->buf[it.hist], hbytes);
            it.hist = h;
        }
        prop_error e2;
        item_vec sk = {NULL, 0, 0};
        it.id = 0;
        if (ok && prop_nodes_reserve(&tn[k], 1, &e2) == PROP_OK) {
            tn[k].n_nodes = 1;
            ok = vec_push(&sk, it) == 0 && grow_loop(&C, hp, 1, &sk, &tn[k], 0, ord, -1, 0, NULL) == 0;
        } else {
            ok = 0;
        }
        free(sk.a);
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
    }
    if (failed) {
        st = prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
        goto done;
    }
    for (int64_t k = 0; k < n_tn; k++) {
        const prop_nodes *S = &tn[k];
        const stack_item *it = &tasks.a[k];
        if ((st = prop_nodes_reserve(out, S->n_nodes, err)) != PROP_OK)
            goto done;
        int64_t o = out->n_nodes - 1; /* local l >= 1 -> o + l */
#define MAPN(l) ((l) == 0 ? it->id : o + (l))
        for (int64_t l = 0; l < S->n_nodes; l++) {
            int64_t g = MAPN(l);
            out->feature[g] = S->feature[l];
            out->threshold[g] = S->threshold[l];
            out->value[g] = S->value[l];
            out->count[g] = S->count[l];
            out->gain[g] = S->gain[l];
            out->left[g] = S->left[l] >= 0 ? (int32_t)(MAPN(S->left[l]) - base) : -1;
            out->right[g] = S->right[l] >= 0 ? (int32_t)(MAPN(S->right[l]) - base) : -1;
        }
        out->n_nodes += S->n_nodes - 1;
        if (row_leaf != NULL)
            for (int64_t i = it->start; i < it->end; i++)
                row_leaf[rows[i]] = (int32_t)(MAPN(row_leaf[rows[i]]) - base);
#undef MAPN
    }
done:
    if (st == PROP_OK && quant && node_sums(P, stats, D->n_rows, row_leaf, out, base, nt) < 0)
        st = prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
    if (ws != ws_in)
        prop_tree_workspace_free(ws);
    for (int64_t k = 0; k < n_tn; k++)
        prop_nodes_free(&tn[k]);
    free(tn);
    free(run);
    free(stack.a);
    free(tasks.a);
    free(order);
    free(allowed);
    return st;
}
