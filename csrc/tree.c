/* tree.c - depth-first histogram tree growth into flat node arrays.
 *
 * In the manner of LightGBM's serial_tree_learner / data_partition: grow_loop takes
 * nodes off a stack and runs named steps on each -- split search (find_node_split),
 * leaf or split nodes (make_leaf, add_children), partition of the node's rows
 * (partition_rows), child scheduling (schedule_children: the smaller child's histogram
 * is built, the larger one's is the parent minus it). prop_tree_grow prepares the
 * buffers and the root (prepare_workspace, root_stats, root_hist), grows the top of the
 * tree, then the deferred subtrees in parallel (grow_subtrees, merge_subtrees).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/rng.h"
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
    free(nd->cat_bits);
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
    if (nd->cat_bits != NULL) {
        uint64_t *b = realloc(nd->cat_bits, (size_t)cap * 4 * sizeof *b);
        if (b == NULL)
            return prop_fail(err, PROP_NOMEM, "out of memory for tree nodes");
        memset(b + 4 * nd->cap, 0, (size_t)(cap - nd->cap) * 4 * sizeof *b);
        nd->cat_bits = b;
    }
    nd->cap = cap;
    return PROP_OK;
}

/* Give nd its category sets (all zero) if it has none yet. */
static prop_status nodes_cat_bits(prop_nodes *nd, prop_error *err)
{
    if (nd->cat_bits != NULL)
        return PROP_OK;
    nd->cat_bits = calloc((size_t)(nd->cap > 0 ? nd->cap : 1) * 4, sizeof *nd->cat_bits);
    if (nd->cat_bits == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory for categorical splits");
    return PROP_OK;
}

prop_status prop_nodes_append(prop_nodes *dst, const prop_nodes *src, prop_error *err)
{
    prop_status st = prop_nodes_reserve(dst, src->n_nodes, err);
    if (st != PROP_OK)
        return st;
    if (src->cat_bits != NULL && (st = nodes_cat_bits(dst, err)) != PROP_OK)
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
        if (src->cat_bits != NULL)
            memcpy(dst->cat_bits + 4 * o, src->cat_bits, 4 * m * sizeof *src->cat_bits);
    }
    dst->n_nodes += src->n_nodes;
    return PROP_OK;
}

prop_status prop_codes_transpose(const uint8_t *codes, int64_t n, int32_t p, int n_threads,
                                 uint8_t **out_p, prop_error *err)
{
    *out_p = NULL;
    if (!PROP_THREADS_OK(n_threads))
        return prop_fail(err, PROP_INVALID_ARG, "transpose: " PROP_THREADS_FMT, PROP_MAX_THREADS,
                         n_threads);
    if (n < 0 || p < 0)
        return prop_fail(err, PROP_INVALID_ARG, "transpose: invalid sizes");
    uint8_t *out = malloc((size_t)(n * p > 0 ? n * p : 1));
    if (out == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory for the column-major codes");
    const int64_t B = 4096;
    int64_t nb = (n + B - 1) / B;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n > 100000)
    for (int64_t b = 0; b < nb; b++) {
        int64_t i0 = b * B, i1 = i0 + B < n ? i0 + B : n;
        for (int32_t j = 0; j < p; j++)
            for (int64_t i = i0; i < i1; i++)
                out[(int64_t)j * n + i] = codes[i * p + j];
    }
    *out_p = out;
    return PROP_OK;
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
    uint64_t *marg; /* boosting with feature bundles: the features' packed histogram */
    int64_t dec_slots;
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
    free(hp->marg);
}

/* ---- workspace: buffers reused from tree to tree ---------------------- */

struct prop_tree_workspace {
    hist_pool hp;
    int32_t *tmp;
    prop_hstat *ost, *otmp; /* forest: ordered statistics, ost[i] belongs to rows[i] */
    int64_t tmp_cap;
    uint64_t *q;  /* boosting: packed quantised statistics by row */
    int64_t q_cap;
    hist_pool *thp;    /* per-thread pools and feature orders of the subtree phase */
    int32_t **thorder;
    int n_thr;
    int32_t thorder_p;
};

prop_status prop_tree_workspace_new(prop_tree_workspace **ws, prop_error *err)
{
    *ws = calloc(1, sizeof(prop_tree_workspace));
    if (*ws == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory for a tree workspace");
    return PROP_OK;
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
    if (dec_slots > 0 && hp->dec_slots != dec_slots) {
        free(hp->dec);
        free(hp->marg);
        hp->dec = malloc((size_t)dec_slots * 2 * sizeof *hp->dec);
        hp->marg = malloc((size_t)dec_slots * sizeof *hp->marg);
        hp->dec_slots = hp->dec && hp->marg ? dec_slots : 0;
        if (hp->dec_slots == 0)
            return -1;
    }
    hp->n_free = 0;
    for (int32_t i = hp->n_buf - 1; i >= 0; i--)
        hp->free_list[hp->n_free++] = i;
    return 0;
}

/* ---- growth: the stack of nodes to split ------------------------------- */


/* stack_item.hist: a pool buffer, or one of these */
#define HIST_NONE (-1) /* the node is a leaf (no split is searched) */
#define HIST_ROWS (-2) /* forest, exact sums: the split search sums the node's rows */

typedef struct {
    int64_t id, start, end;
    int32_t depth, hist;
    uint64_t seed;
    prop_hstat tot;
    uint64_t konst; /* bit j (j < 64): feature j is known to be constant in the node */
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

/* What every node of one tree shares. tmp and otmp are indexed like rows, so
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
    double unit[2];
    const int32_t *allowed;
    int32_t n_allowed;
    int64_t rows_max; /* > 0: nodes of at most this many rows search splits on rows */
    const prop_hist_layout *HL; /* boosting: the histograms' layout (L or the bundles') */
    const uint8_t *hcodes;      /* ... and their codes */
    const prop_below_n *below; /* forest: below[m] draws in [0, m), m = 2 .. n_allowed */
} grow_ctx;

/* Histogram of rows[start, end) into pool buffer h, with nt threads. */
static prop_status node_hist(const grow_ctx *C, hist_pool *hpp, int32_t h, int64_t start,
                             int64_t end, int nt, prop_error *err)
{
    if (C->q == NULL)
        return prop_hist_build_ordered(C->L, C->codes, C->ost + start, C->rows + start,
                                       end - start, hpp->buf[h], nt, err);
    return prop_hist_build_q(C->HL, C->hcodes, C->q, C->rows + start, end - start, hpp->buf[h],
                             nt, err);
}

/* Boosting: decode a packed histogram for the split search; *T = the node total it
 * holds (every feature's slots add up to it; feature 0's are summed). */
static void decode_q(const grow_ctx *C, hist_pool *hpp, int32_t h, prop_hstat *T)
{
    const prop_hist_layout *L = C->L;
    const uint64_t *hq = hpp->buf[h];
    if (C->D->bundles != NULL) { /* the features' histogram from the bundles' */
        prop_hist_marginal_q(C->D->bundles, hq, hpp->marg, L->n_slots);
        hq = hpp->marg;
    }
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

/* ---- step 1: split search ---------------------------------------------- */

/* Best split of a node that has a histogram. The features are tried in a node-path
 * seeded order: a random permutation of the allowed features for a forest (always
 * shuffled: the order also breaks ties between equal splits), the allowed features in
 * order for boosting. */
static void find_node_split(const grow_ctx *C, hist_pool *hpp, const stack_item *it,
                            int32_t *order, prop_split *best, uint64_t *konst)
{
    *konst = it->konst;
    const prop_tree_params *P = C->P;
    prop_rng rng;
    prop_rng_seed(&rng, it->seed);
    memcpy(order, C->allowed, (size_t)C->n_allowed * sizeof *order);
    if (P->mode == PROP_TREE_CLASSIFY)
        for (int32_t k = C->n_allowed - 1; k > 0; k--) {
            int32_t m = (int32_t)prop_rng_below_n(&rng, &C->below[k + 1]);
            int32_t t = order[k];
            order[k] = order[m];
            order[m] = t;
        }
    if (it->hist == HIST_ROWS) {
        const prop_tree_data *D = C->D;
        double scratch[4 * 3 * 257]; /* a feature has at most 256 slots */
        const uint8_t *codes = D->slot_codes_t ? D->slot_codes_t : C->codes;
        int64_t rs = D->slot_codes_t ? 1 : C->p, cs = D->slot_codes_t ? D->n_rows : 1;
        prop_split_find_rows(P, C->L, codes, rs, cs, C->ost + it->start, C->rows + it->start,
                             it->end - it->start, &it->tot, order, C->n_allowed, it->konst,
                             konst, scratch, best);
    } else if (C->q != NULL) {
        prop_hstat T;
        decode_q(C, hpp, it->hist, &T);
        if (P->cat.categorical != NULL) /* a category's rows are estimated from its hessian */
            T.c = (double)(it->end - it->start);
        prop_split_find(P, C->L, hpp->dec, &T, order, C->n_allowed, best);
    } else {
        prop_split_find(P, C->L, hpp->buf[it->hist], &it->tot, order, C->n_allowed, best);
    }
}

/* ---- step 2: the node becomes a leaf or a split ------------------------- */

/* Node it->id is a leaf: its histogram goes back to the pool, its rows get its label. */
static void make_leaf(const grow_ctx *C, hist_pool *hpp, const stack_item *it, prop_nodes *out,
                      int64_t base)
{
    int64_t id = it->id;
    out->feature[id] = -1;
    out->threshold[id] = 0;
    out->left[id] = out->right[id] = -1;
    out->gain[id] = 0.0;
    pool_put(hpp, it->hist);
    if (C->row_leaf != NULL)
        for (int64_t i = it->start; i < it->end; i++)
            C->row_leaf[C->rows[i]] = (int32_t)(id - base);
}

/* Node id splits as `best`: write the split and append its two children (ids *lid and
 * *lid + 1, linked tree-locally). */
static prop_status add_children(prop_nodes *out, int64_t id, const prop_split *best, int64_t base,
                                int64_t *lid, prop_error *err)
{
    out->feature[id] = best->feature;
    out->threshold[id] = (uint8_t)best->threshold;
    out->gain[id] = best->gain;
    prop_status st = prop_nodes_reserve(out, 2, err);
    if (st != PROP_OK)
        return st;
    if (best->threshold == PROP_CAT_SPLIT) {
        if ((st = nodes_cat_bits(out, err)) != PROP_OK)
            return st;
        memcpy(out->cat_bits + 4 * id, best->cat_left, sizeof best->cat_left);
    }
    *lid = out->n_nodes;
    out->n_nodes += 2;
    out->left[id] = (int32_t)(*lid - base);
    out->right[id] = (int32_t)(*lid + 1 - base);
    return PROP_OK;
}

/* ---- step 3: partition of the node's rows (data partition) ------------- */

/* The codes of feature j for row r are col[r * stride]: the column-major copy when
 * there is one (stride 1), the row-major codes otherwise. */
typedef struct {
    const uint8_t *col;
    int64_t stride;
    uint8_t thr;
    const uint64_t *bits; /* the split's category set (threshold PROP_CAT_SPLIT) */
} split_column;

static split_column column_of(const grow_ctx *C, const prop_split *best)
{
    const prop_tree_data *D = C->D;
    split_column sc;
    sc.col = D->slot_codes_t ? D->slot_codes_t + (int64_t)best->feature * D->n_rows
                             : C->codes + best->feature;
    sc.stride = D->slot_codes_t ? 1 : C->p;
    sc.thr = (uint8_t)best->threshold;
    sc.bits = best->cat_left;
    return sc;
}

/* Both children are leaves: label the rows (left leaf lab[1], right lab[0]) without
 * moving them. Returns the left child's row count. */
static int64_t label_rows(const grow_ctx *C, const stack_item *it, split_column sc,
                          const int32_t lab[2])
{
    const int32_t *rows = C->rows;
    int32_t *row_leaf = C->row_leaf;
    int64_t nl = 0;
    for (int64_t i = it->start; i < it->end; i++) {
        int32_t r = rows[i];
        int64_t go = prop_node_left(sc.col[(int64_t)r * sc.stride], sc.thr, sc.bits);
        if (row_leaf != NULL)
            row_leaf[r] = lab[go];
        nl += go;
    }
    return nl;
}

/* Stable, branch-free partition of rows[start, end) with their ordered statistics
 * (forest). Returns the left child's row count. */
static int64_t partition_rows_stats(const grow_ctx *C, const stack_item *it, split_column sc)
{
    const int64_t cnt = it->end - it->start;
    int32_t *R = C->rows + it->start, *T = C->tmp + it->start;
    prop_hstat *S = C->ost + it->start, *TS = C->otmp + it->start;
    int64_t nl = 0, nr = 0;
    for (int64_t i = 0; i < cnt; i++) {
        int32_t r = R[i];
        prop_hstat s = S[i];
        int64_t go = prop_node_left(sc.col[(int64_t)r * sc.stride], sc.thr, sc.bits);
        R[nl] = r;
        S[nl] = s;
        T[nr] = r;
        TS[nr] = s;
        nl += go;
        nr += 1 - go;
    }
    memcpy(R + nl, T, (size_t)nr * sizeof *R);
    memcpy(S + nl, TS, (size_t)nr * sizeof *S);
    return nl;
}

/* Stable, branch-free split of the row ids R[0, cnt): the left ones to the front of R,
 * the right ones to T, both in order. Returns the left count. */
static int64_t split_row_ids(split_column sc, int32_t *R, int32_t *T, int64_t cnt)
{
    int64_t nl = 0, nr = 0;
    for (int64_t i = 0; i < cnt; i++) {
        int32_t r = R[i];
        int64_t go = prop_node_left(sc.col[(int64_t)r * sc.stride], sc.thr, sc.bits);
        R[nl] = r;
        T[nr] = r;
        nl += go;
        nr += 1 - go;
    }
    return nl;
}

/* Stable partition of the row indices alone (boosting). Returns the left child's row
 * count. */
static int64_t partition_row_ids(const grow_ctx *C, const stack_item *it, split_column sc)
{
    const int64_t cnt = it->end - it->start;
    int32_t *R = C->rows + it->start, *T = C->tmp + it->start;
    int64_t nl = split_row_ids(sc, R, T, cnt);
    memcpy(R + nl, T, (size_t)(cnt - nl) * sizeof *R);
    return nl;
}

/* Nodes of at least this many rows are partitioned with several threads (boosting). */
#define PART_PARALLEL_MIN 65536
#define PART_MAX_CHUNKS 64

/* partition_row_ids with nt threads (2 .. ): each of k chunks of the node is
 * partitioned stably on its own (left rows to the chunk's start in rows, right rows to
 * tmp), then the chunks' left parts are moved together in chunk order and their right
 * parts copied after them: the result is the one stable partition, whatever nt. */
static int64_t partition_row_ids_par(const grow_ctx *C, const stack_item *it, split_column sc,
                                     int nt)
{
    const int64_t cnt = it->end - it->start;
    int32_t *R = C->rows + it->start, *T = C->tmp + it->start;
    const int k = nt < PART_MAX_CHUNKS ? nt : PART_MAX_CHUNKS;
    int64_t nlc[PART_MAX_CHUNKS];
#pragma omp parallel for num_threads(k) schedule(static)
    for (int c = 0; c < k; c++) {
        const int64_t c0 = cnt * c / k, c1 = cnt * (c + 1) / k;
        nlc[c] = split_row_ids(sc, R + c0, T + c0, c1 - c0);
    }
    int64_t nl = nlc[0];
    for (int c = 1; c < k; c++) { /* in order: a chunk's destination ends before the next's
                                   * source starts */
        memmove(R + nl, R + cnt * c / k, (size_t)nlc[c] * sizeof *R);
        nl += nlc[c];
    }
    int64_t at = nl;
    for (int c = 0; c < k; c++) {
        const int64_t c0 = cnt * c / k, nr = cnt * (c + 1) / k - c0 - nlc[c];
        memcpy(R + at, T + c0, (size_t)nr * sizeof *R);
        at += nr;
    }
    return nl;
}

/* Send the rows of node `it` to its children (left child lid) by `best`: labelled in
 * place when both children are leaves (`leaves`), else partitioned (boosting's large
 * nodes with nt threads). Returns the left child's row count. */
static int64_t partition_rows(const grow_ctx *C, const stack_item *it, const prop_split *best,
                              int leaves, int64_t lid, int64_t base, int nt)
{
    split_column sc = column_of(C, best);
    if (leaves) {
        int32_t lab[2] = {(int32_t)(lid + 1 - base), (int32_t)(lid - base)};
        return label_rows(C, it, sc, lab);
    }
    if (C->ost != NULL)
        return partition_rows_stats(C, it, sc);
    if (nt > 1 && it->end - it->start >= PART_PARALLEL_MIN)
        return partition_row_ids_par(C, it, sc, nt);
    return partition_row_ids(C, it, sc);
}

/* ---- step 4: child scheduling ------------------------------------------ */

/* Give the children that may split a histogram: the smaller child's is built (nt
 * threads), the larger one's is the parent's minus it (in the parent's buffer); the
 * buffers nobody needs go back to the pool. */
static prop_status schedule_children(const grow_ctx *C, hist_pool *hpp, int nt,
                                     const stack_item *it, stack_item *li, stack_item *ri,
                                     int64_t nl, int64_t nr, prop_error *err)
{
    const prop_tree_params *P = C->P;
    /* a child of one row has no split (every feature is constant in it) */
    int sl_ok = nl > 1 && may_split(P, &li->tot, li->depth);
    int sr_ok = nr > 1 && may_split(P, &ri->tot, ri->depth);
    /* small children search their splits on their rows (no histogram) */
    if (sl_ok && C->rows_max > 0 && nl <= C->rows_max) {
        li->hist = HIST_ROWS;
        sl_ok = 0;
    }
    if (sr_ok && C->rows_max > 0 && nr <= C->rows_max) {
        ri->hist = HIST_ROWS;
        sr_ok = 0;
    }
    if (!sl_ok && !sr_ok) {
        pool_put(hpp, it->hist);
        return PROP_OK;
    }
    int left_small = nl <= nr;
    stack_item *small = left_small ? li : ri, *large = left_small ? ri : li;
    int s_small = left_small ? sl_ok : sr_ok, s_large = left_small ? sr_ok : sl_ok;
    int32_t h = pool_get(hpp);
    if (h < 0)
        return prop_fail(err, PROP_NOMEM, "out of memory for histograms");
    prop_status st = node_hist(C, hpp, h, small->start, small->end, nt, err);
    if (st != PROP_OK)
        return st;
    if (s_large) {
        if (C->q != NULL)
            prop_hist_subtract_q(hpp->buf[it->hist], hpp->buf[h], hpp->buf[it->hist],
                                 C->HL->n_slots);
        else
            prop_hist_subtract(hpp->buf[it->hist], hpp->buf[h], hpp->buf[it->hist],
                               C->L->n_slots);
        large->hist = it->hist;
    } else {
        pool_put(hpp, it->hist);
    }
    if (s_small)
        small->hist = h;
    else
        pool_put(hpp, h);
    return PROP_OK;
}

/* ---- the loop ------------------------------------------------------------ */

/* Items that have a histogram and are at depth defer_depth, or below the root with at
 * most defer_rows rows, are left to the subtree phase (defer_depth < 0: none). */
static int deferred_node(const stack_item *it, int32_t defer_depth, int64_t defer_rows)
{
    return defer_depth >= 0 && it->hist != HIST_NONE &&
           (it->depth >= defer_depth || (it->depth >= 1 && it->end - it->start <= defer_rows));
}

/* Depth-first growth from the items on `stack` into `out` (tree-local indices are
 * id - base); deferred items (deferred_node) go to `deferred`. Histograms are built
 * with nt threads. */
static prop_status grow_loop(const grow_ctx *C, hist_pool *hpp, int nt, item_vec *stack,
                             prop_nodes *out, int64_t base, int32_t *order, int32_t defer_depth,
                             int64_t defer_rows, item_vec *deferred, prop_error *err)
{
    const prop_tree_params *P = C->P;
    prop_status st;
    while (stack->n > 0) {
        stack_item it = stack->a[--stack->n];
        if (deferred_node(&it, defer_depth, defer_rows)) {
            if (vec_push(deferred, it) < 0)
                return prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
            continue;
        }
        prop_split best;
        best.found = 0;
        uint64_t konst = it.konst;
        if (it.hist != HIST_NONE)
            find_node_split(C, hpp, &it, order, &best, &konst);
        out->value[it.id] = prop_node_value(P, &it.tot);
        out->count[it.id] = it.tot.c;
        if (!best.found) {
            make_leaf(C, hpp, &it, out, base);
            continue;
        }
        int64_t lid;
        if ((st = add_children(out, it.id, &best, base, &lid, err)) != PROP_OK)
            return st;
        /* the children's sums come from the split search (boosting replaces them with
         * exact sums once the tree is grown, see node_sums) */
        const int leaves = P->max_depth > 0 && it.depth + 1 >= P->max_depth;
        const int64_t nl = partition_rows(C, &it, &best, leaves, lid, base, nt);
        const int64_t nr = it.end - it.start - nl;
        stack_item li = {lid, it.start, it.start + nl, it.depth + 1, -1, child_seed(it.seed, 0),
                         best.left, 0};
        stack_item ri = {lid + 1, it.start + nl, it.end, it.depth + 1, -1,
                         child_seed(it.seed, 1), best.right, 0};
        /* what is constant in the node is in its children; so is the split feature on
         * a side that holds one of its slots */
        const uint64_t fbit = best.feature < 64 ? (uint64_t)1 << best.feature : 0;
        li.konst = konst | (best.left_slots == 1 ? fbit : 0);
        ri.konst = konst | (best.right_slots == 1 ? fbit : 0);
        if (leaves) /* rows already labelled (and not partitioned) */
            li.start = li.end = ri.start = ri.end = it.start;
        if ((st = schedule_children(C, hpp, nt, &it, &li, &ri, nl, nr, err)) != PROP_OK)
            return st;
        if (vec_push(stack, ri) < 0 || vec_push(stack, li) < 0)
            return prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
    }
    return PROP_OK;
}

/* ---- the tree: buffers, root, subtree phase ------------------------------ */

/* Nodes that still need splitting become subtrees grown in parallel (each with one
 * thread) once they hold at most half of the tree's rows, or at depth TASK_DEPTH: a
 * lopsided root split thus gives tasks of similar size (e.g. 30 / 70 -> 30, 35, 35)
 * with few fork-joins before them. Boosting goes one level deeper (up to 8 tasks, so
 * fewer idle threads at the end): its histogram builds share rows between threads at
 * no cost in the levels before. The rule does not involve the thread count, so the
 * trees (and their node numbering) do not depend on n_threads. */
#define TASK_DEPTH 2
#define TASK_DEPTH_BOOST 3

/* Per-thread buffers of the subtree phase. Returns 0, or -1 when out of memory. */
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

/* Boosting: quantise the rows' (gradient, hessian) to packed integers q (by row, see
 * hist.h) and sum the exact totals.
 * A row of multiplicity c (c identical sessions merged) is quantised per session,
 * c * round(x / c): merged rows get the integers of the rows they stand for (exactly
 * when their weights are equal), so compressed training finds the same splits. A
 * session's non-zero hessian stays >= 1 unit, so a slot with rows never looks empty.
 * With K the total multiplicity, the integer sums are at most S_g * s_g + K / 2 and
 * S_h * s_h + K; the scales s_g, s_h keep them below 2^31 - 1 and 2^32 - 1. A sample
 * with K >= 2^30 is quantised row by row (K = n < 2^30). Sums run over fixed blocks
 * added in block order, so nothing depends on the thread count. */
#define Q_BLOCK 65536
static prop_status quantize(const prop_hstat *stats, const int32_t *rows, int64_t n, uint64_t *q,
                            double unit[2], prop_hstat *tot, int nt, prop_error *err)
{
    int64_t nb = (n + Q_BLOCK - 1) / Q_BLOCK;
    double *part = malloc((size_t)(nb > 0 ? nb : 1) * 5 * sizeof *part);
    if (part == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
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
        q[r] = prop_hist_pack_q(g * (int64_t)k, h * (int64_t)k);
    }
    return PROP_OK;
}

/* Boosting: exact (double) sums of every node of the tree [base, n_nodes) from the
 * rows' leaves (row_leaf[r] < 0: r is not in the tree's sample), then its values and
 * counts. Leaves sum their rows in row-id order over fixed blocks (added in block
 * order), inner nodes add their children, so nothing depends on the thread count. */
static prop_status node_sums(const prop_tree_params *P, const prop_hstat *stats, int64_t n_rows,
                             const int32_t *row_leaf, prop_nodes *out, int64_t base, int nt,
                             prop_error *err)
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
        return prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
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
    return PROP_OK;
}

prop_status prop_tree_check_params(const prop_tree_params *P, prop_error *err)
{
    if (P->mode != PROP_TREE_CLASSIFY && P->mode != PROP_TREE_GRADIENT)
        return prop_fail(err, PROP_INVALID_ARG, "tree mode must be classify or gradient, got %d",
                         P->mode);
    if (P->mode == PROP_TREE_CLASSIFY && P->criterion != PROP_CRIT_GINI &&
        P->criterion != PROP_CRIT_ENTROPY)
        return prop_fail(err, PROP_INVALID_ARG, "criterion must be gini or entropy");
    if (!PROP_THREADS_OK(P->n_threads))
        return prop_fail(err, PROP_INVALID_ARG, "tree: " PROP_THREADS_FMT, PROP_MAX_THREADS,
                         P->n_threads);
    if (!(P->cat.cat_smooth >= 0.0) || !isfinite(P->cat.cat_smooth))
        return prop_fail(err, PROP_INVALID_ARG, "cat_smooth must be finite and >= 0, got %g",
                         P->cat.cat_smooth);
    if (!(P->cat.min_data_per_group >= 0.0) || !isfinite(P->cat.min_data_per_group))
        return prop_fail(err, PROP_INVALID_ARG,
                         "min_data_per_group must be finite and >= 0, got %g",
                         P->cat.min_data_per_group);
    return PROP_OK;
}

/* Size the workspace's row buffers for a tree on n of the data's n_rows rows: tmp (and
 * a forest's ordered statistics ost, otmp) for n rows, boosting's q for n_rows.
 * Buffers only grow. */
static prop_status prepare_workspace(prop_tree_workspace *ws, int64_t n, int64_t n_rows,
                                     int quant, prop_error *err)
{
    if (ws->tmp_cap < n) {
        free(ws->tmp);
        free(ws->ost);
        free(ws->otmp);
        ws->ost = ws->otmp = NULL;
        size_t cap = (size_t)(n > 0 ? n : 1);
        ws->tmp = malloc(cap * sizeof *ws->tmp);
        ws->tmp_cap = ws->tmp ? n : 0;
    }
    if (!quant && ws->ost == NULL && ws->tmp_cap > 0) {
        size_t cap = (size_t)ws->tmp_cap;
        ws->ost = malloc(cap * sizeof *ws->ost);
        ws->otmp = malloc(cap * sizeof *ws->otmp);
        if (ws->ost == NULL || ws->otmp == NULL)
            ws->tmp_cap = 0;
    }
    if (quant && ws->q_cap < n_rows) {
        free(ws->q);
        ws->q = malloc((size_t)(n_rows > 0 ? n_rows : 1) * sizeof *ws->q);
        ws->q_cap = ws->q ? n_rows : 0;
    }
    if (ws->tmp_cap < n || (quant && ws->q_cap < n_rows))
        return prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
    return PROP_OK;
}

/* The root's statistics: boosting quantises the rows (every row's leaf starts at -1),
 * a forest gathers them in row order into ost. *tot = their sums. */
static prop_status root_stats(grow_ctx *C, prop_tree_workspace *ws, const prop_hstat *stats,
                              int64_t n, int nt, prop_hstat *tot, prop_error *err)
{
    tot->a = tot->b = tot->c = 0.0;
    if (C->q != NULL) {
        if (n < C->D->n_rows) /* rows outside the sample: -1 (the others get their leaf) */
            memset(C->row_leaf, 0xff, (size_t)C->D->n_rows * sizeof *C->row_leaf);
        return quantize(stats, C->rows, n, ws->q, C->unit, tot, nt, err);
    }
    int integral = 1;
    for (int64_t i = 0; i < n; i++) {
        prop_hstat s = stats[C->rows[i]];
        C->ost[i] = s;
        tot->a += s.a;
        tot->b += s.b;
        tot->c += s.c;
        integral &= s.a >= 0.0 && s.b >= 0.0 && s.a == floor(s.a) && s.b == floor(s.b) &&
                    s.c == floor(s.c);
    }
    /* Non-negative integer statistics (a bootstrap's multiplicities, unit weights) with
     * totals below 2^53 make every sum exact, whatever its order: a histogram summed
     * from a node's rows equals the parent-minus-sibling one bit for bit, so small
     * nodes can skip histograms. */
    const double exact_max = 9007199254740992.0; /* 2^53 */
    /* Searching on rows sums the histograms of the features visited (about max_features)
     * from the node's rows; a histogram sums all features of the smaller child and
     * subtracts for the other. With max_features <= a third of the features (e.g.
     * sqrt) rows win at every node size (200 trees of a 25k-row table, 33 binary
     * features, max_features 5: 1.3 s against 2.0 s); with all features histograms do. */
    const prop_tree_params *P = C->P;
    if (integral && tot->a < exact_max && tot->b < exact_max && tot->c < exact_max &&
        !P->histograms_only && P->max_features > 0 &&
        3 * (int64_t)P->max_features <= C->n_allowed)
        C->rows_max = INT64_MAX;
    return PROP_OK;
}

/* The root's histogram (the statistics root_stats gathered, in row order). */
static prop_status root_hist(const grow_ctx *C, hist_pool *hpp, int64_t n, int nt, int32_t *h,
                             prop_error *err)
{
    *h = pool_get(hpp);
    if (*h < 0)
        return prop_fail(err, PROP_NOMEM, "out of memory for histograms");
    if (C->q != NULL)
        return prop_hist_build_q(C->HL, C->hcodes, C->q, C->rows, n, hpp->buf[*h], nt, err);
    return prop_hist_build_ordered(C->L, C->codes, C->ost, C->rows, n, hpp->buf[*h], nt, err);
}

/* Grow the deferred subtrees (tasks), each into its own node arrays tn[k] (node 0 = the
 * subtree root), in parallel with one thread each: largest first (fewer idle threads
 * at the end), which does not change what each one holds. */
static prop_status grow_subtrees(const grow_ctx *C, prop_tree_workspace *ws, int nt,
                                 const item_vec *tasks, prop_nodes *tn, int32_t *order,
                                 size_t hbytes, int64_t dec_slots, prop_error *err)
{
    const int64_t n_tn = tasks->n;
    hist_pool *hpp = &ws->hp;
    int64_t *run = malloc((size_t)n_tn * sizeof *run);
    if (run == NULL || (nt > 1 && ensure_thread_bufs(ws, nt, C->p, hbytes, dec_slots) < 0)) {
        free(run);
        return prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
    }
    for (int64_t k = 0; k < n_tn; k++) { /* stable insertion sort by row count, descending */
        int64_t at = k, rk = tasks->a[k].end - tasks->a[k].start;
        for (; at > 0 && tasks->a[run[at - 1]].end - tasks->a[run[at - 1]].start < rk; at--)
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
        stack_item it = tasks->a[k];
        hist_pool *hp = nt > 1 ? &ws->thp[t] : hpp;
        int32_t *ord = nt > 1 ? ws->thorder[t] : order;
        int ok = 1;
        if (nt > 1 && it.hist >= 0) { /* the thread's own copy of the subtree root's histogram */
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
            ok = vec_push(&sk, it) == 0 &&
                 grow_loop(C, hp, 1, &sk, &tn[k], 0, ord, -1, 0, NULL, &e2) == PROP_OK;
        } else {
            ok = 0;
        }
        free(sk.a);
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
    }
    free(run);
    if (failed)
        return prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
    return PROP_OK;
}

/* Append the subtrees tn (in task order) to the tree at `base` in out: a subtree's
 * root fills its task's node, the others follow; child indices and the rows' leaves
 * are renumbered tree-locally. */
static prop_status merge_subtrees(const grow_ctx *C, const item_vec *tasks, const prop_nodes *tn,
                                  prop_nodes *out, int64_t base, prop_error *err)
{
    for (int64_t k = 0; k < tasks->n; k++) {
        const prop_nodes *S = &tn[k];
        const stack_item *it = &tasks->a[k];
        prop_status st = prop_nodes_reserve(out, S->n_nodes, err);
        if (st != PROP_OK)
            return st;
        if (S->cat_bits != NULL && (st = nodes_cat_bits(out, err)) != PROP_OK)
            return st;
        int64_t o = out->n_nodes - 1; /* local l >= 1 -> o + l */
#define MAPN(l) ((l) == 0 ? it->id : o + (l))
        for (int64_t l = 0; l < S->n_nodes; l++) {
            int64_t g = MAPN(l);
            out->feature[g] = S->feature[l];
            out->threshold[g] = S->threshold[l];
            if (S->cat_bits != NULL)
                memcpy(out->cat_bits + 4 * g, S->cat_bits + 4 * l, 4 * sizeof *S->cat_bits);
            out->value[g] = S->value[l];
            out->count[g] = S->count[l];
            out->gain[g] = S->gain[l];
            out->left[g] = S->left[l] >= 0 ? (int32_t)(MAPN(S->left[l]) - base) : -1;
            out->right[g] = S->right[l] >= 0 ? (int32_t)(MAPN(S->right[l]) - base) : -1;
        }
        out->n_nodes += S->n_nodes - 1;
        if (C->row_leaf != NULL)
            for (int64_t i = it->start; i < it->end; i++)
                C->row_leaf[C->rows[i]] = (int32_t)(MAPN(C->row_leaf[C->rows[i]]) - base);
#undef MAPN
    }
    return PROP_OK;
}

prop_status prop_tree_grow(const prop_tree_params *P, const prop_tree_data *D,
                           const prop_hstat *stats, int32_t *rows, int64_t n,
                           const uint8_t *feature_allowed, prop_tree_workspace *ws_in,
                           int32_t *row_leaf, prop_nodes *out, prop_error *err)
{
    prop_status st = prop_tree_check_params(P, err);
    if (st != PROP_OK)
        return st;
    const prop_hist_layout *L = D->layout;
    const int32_t p = L->n_features;
    const int64_t base = out->n_nodes;
    const int quant = P->mode == PROP_TREE_GRADIENT;
    const int nt = P->n_threads;
    if (quant && row_leaf == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "boosting trees need row_leaf");
    if (quant && n > 1073741823)
        return prop_fail(err, PROP_INVALID_ARG,
                         "a boosting tree can be grown on at most 2^30 - 1 distinct rows, got %lld",
                         (long long)n);
    prop_tree_workspace *ws = ws_in;
    item_vec stack = {NULL, 0, 0}, tasks = {NULL, 0, 0};
    prop_nodes *tn = NULL;
    int64_t n_tn = 0;
    int32_t *order = malloc((size_t)p * sizeof *order);
    int32_t *allowed = malloc((size_t)p * sizeof *allowed);
    prop_below_n *below = malloc(((size_t)p + 1) * sizeof *below);
    if (order == NULL || allowed == NULL || below == NULL) {
        st = prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
        goto done;
    }
    if ((ws == NULL && (st = prop_tree_workspace_new(&ws, err)) != PROP_OK) ||
        (st = prepare_workspace(ws, n, D->n_rows, quant, err)) != PROP_OK)
        goto done;
    hist_pool *hpp = &ws->hp;
    const prop_hist_layout *HL = quant && D->bundles != NULL ? &D->bundles->layout : L;
    const size_t hbytes = quant ? (size_t)HL->n_slots * sizeof(uint64_t)
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
    for (int32_t m = 0; m <= n_allowed; m++)
        prop_below_init(&below[m], (uint64_t)m);
    grow_ctx C = {P, D, L, D->slot_codes, p, rows, ws->tmp, row_leaf,
                  quant ? NULL : ws->ost, quant ? NULL : ws->otmp,
                  quant ? ws->q : NULL, {1.0, 1.0}, allowed, n_allowed, 0, HL,
                  HL != L ? D->bundles->codes : D->slot_codes, below};

    /* the root, then the top of the tree; deep or small nodes are deferred to tasks */
    prop_hstat tot;
    if ((st = root_stats(&C, ws, stats, n, nt, &tot, err)) != PROP_OK ||
        (st = prop_nodes_reserve(out, 1, err)) != PROP_OK)
        goto done;
    out->n_nodes++;
    stack_item root = {base, 0, n, 0, -1, prop_mix64(P->seed ^ 0x5EEDULL), tot, 0};
    if (n > 1 && may_split(P, &tot, 0) && n_allowed > 0) {
        if (C.rows_max > 0 && n <= C.rows_max)
            root.hist = HIST_ROWS;
        else if ((st = root_hist(&C, hpp, n, nt, &root.hist, err)) != PROP_OK)
            goto done;
    }
    if (vec_push(&stack, root) < 0) {
        st = prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
        goto done;
    }
    if ((st = grow_loop(&C, hpp, nt, &stack, out, base, order,
                        quant ? TASK_DEPTH_BOOST : TASK_DEPTH, n / 2, &tasks, err)) != PROP_OK)
        goto done;
    if (tasks.n > 0) {
        tn = calloc((size_t)tasks.n, sizeof *tn);
        n_tn = tn != NULL ? tasks.n : 0;
        if (tn == NULL)
            st = prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
        else if ((st = grow_subtrees(&C, ws, nt, &tasks, tn, order, hbytes, dec_slots, err)) ==
                 PROP_OK)
            st = merge_subtrees(&C, &tasks, tn, out, base, err);
    }
    if (st == PROP_OK && quant)
        st = node_sums(P, stats, D->n_rows, row_leaf, out, base, nt, err);
done:
    if (ws != ws_in)
        prop_tree_workspace_free(ws);
    for (int64_t k = 0; k < n_tn; k++)
        prop_nodes_free(&tn[k]);
    free(tn);
    free(stack.a);
    free(tasks.a);
    free(order);
    free(allowed);
    free(below);
    return st;
}
