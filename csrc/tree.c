/* tree.c - depth-first histogram tree growth into flat node arrays. */
#include <stdlib.h>
#include <string.h>

#include "propensity/tree.h"

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

typedef struct {
    double **buf;
    int32_t *free_list;
    int32_t n_buf, n_free, cap;
    int64_t n_slots;
} hist_pool;

static int32_t pool_get(hist_pool *hp)
{
    if (hp->n_free > 0)
        return hp->free_list[--hp->n_free];
    if (hp->n_buf == hp->cap) {
        int32_t cap = hp->cap ? 2 * hp->cap : 8;
        double **b = realloc(hp->buf, (size_t)cap * sizeof *b);
        if (b == NULL)
            return -1;
        hp->buf = b;
        int32_t *f = realloc(hp->free_list, (size_t)cap * sizeof *f);
        if (f == NULL)
            return -1;
        hp->free_list = f;
        hp->cap = cap;
    }
    double *h = malloc((size_t)hp->n_slots * sizeof *h);
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
}

/* ---- workspace: buffers reused from tree to tree ---------------------- */

struct prop_tree_workspace {
    hist_pool hp;
    int32_t *tmp;
    int64_t tmp_cap;
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
    free(ws);
}

/* Make every pooled histogram free again, for a layout of n_slots slots. */
static void pool_reset(hist_pool *hp, int64_t n_slots)
{
    if (hp->n_slots != n_slots) {
        pool_free(hp);
        memset(hp, 0, sizeof *hp);
        hp->n_slots = n_slots;
    }
    hp->n_free = 0;
    for (int32_t i = hp->n_buf - 1; i >= 0; i--)
        hp->free_list[hp->n_free++] = i;
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
    if (s->c < P->min_samples_split || s->c < 2.0 * P->min_samples_leaf)
        return 0;
    return !prop_node_pure(P, s);
}

static uint64_t child_seed(uint64_t seed, int right)
{
    return prop_mix64(seed ^ (right ? 0xD1B54A32D192ED03ULL : 0x8CB92BA72F3D8DD7ULL));
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
    prop_tree_workspace *ws = ws_in ? ws_in : prop_tree_workspace_new();
    stack_item *stack = NULL;
    int64_t sp = 0, scap = 0;
    int32_t *order = malloc((size_t)p * sizeof *order);
    int32_t *allowed = malloc((size_t)p * sizeof *allowed);
    if (ws != NULL && ws->tmp_cap < n) {
        free(ws->tmp);
        ws->tmp = malloc((size_t)(n > 0 ? n : 1) * sizeof *ws->tmp);
        ws->tmp_cap = ws->tmp ? n : 0;
    }
    if (ws == NULL || ws->tmp == NULL || order == NULL || allowed == NULL) {
        st = prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
        goto done;
    }
    hist_pool *hpp = &ws->hp;
    int32_t *tmp = ws->tmp;
    const int W = P->mode == PROP_TREE_GRADIENT ? 2 : 3;
    pool_reset(hpp, L->n_slots * W);
    int32_t n_allowed = 0;
    for (int32_t j = 0; j < p; j++)
        if (feature_allowed == NULL || feature_allowed[j])
            allowed[n_allowed++] = j;

    prop_hstat tot = {0.0, 0.0, 0.0};
    for (int64_t i = 0; i < n; i++) {
        tot.a += stats[rows[i]].a;
        tot.b += stats[rows[i]].b;
        tot.c += stats[rows[i]].c;
    }
    if ((st = prop_nodes_reserve(out, 1, err)) != PROP_OK)
        goto done;
    out->n_nodes++;
    scap = 64;
    stack = malloc((size_t)scap * sizeof *stack);
    if (stack == NULL) {
        st = prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
        goto done;
    }
    stack[sp++] = (stack_item){base, 0, n, 0, -1, prop_mix64(P->seed ^ 0x5EEDULL), tot};
    if (may_split(P, &tot, 0) && n_allowed > 0) {
        int32_t h = pool_get(hpp);
        if (h < 0) {
            st = prop_fail(err, PROP_NOMEM, "out of memory for histograms");
            goto done;
        }
        if (prop_hist_build(L, codes, stats, rows, n, hpp->buf[h], W, P->n_threads) < 0) {
            st = prop_fail(err, PROP_NOMEM, "out of memory for histograms");
            goto done;
        }
        stack[0].hist = h;
    }

    while (sp > 0) {
        stack_item it = stack[--sp];
        int64_t id = it.id;
        prop_split best;
        best.found = 0;
        if (it.hist >= 0) {
            /* node-path seeded feature order: a random permutation of the allowed features */
            prop_rng rng;
            prop_rng_seed(&rng, it.seed);
            memcpy(order, allowed, (size_t)n_allowed * sizeof *order);
            /* always shuffled: the order also breaks ties between equal splits */
            if (P->mode == PROP_TREE_CLASSIFY)
                for (int32_t k = n_allowed - 1; k > 0; k--) {
                    int32_t m = (int32_t)prop_rng_below(&rng, (uint64_t)k + 1);
                    int32_t t = order[k];
                    order[k] = order[m];
                    order[m] = t;
                }
            prop_split_find(P, L, hpp->buf[it.hist], &it.tot, order, n_allowed, &best);
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
        /* stable partition of rows[start, end); boosting histograms carry no row
         * counts, so the children are counted here */
        int64_t nl = 0, nr = 0;
        double cl = 0.0, cr = 0.0;
        const uint8_t *col = D->slot_codes_t ? D->slot_codes_t + (int64_t)best.feature * D->n_rows
                                             : codes + best.feature;
        const int64_t stride = D->slot_codes_t ? 1 : p;
        for (int64_t i = it.start; i < it.end; i++) {
            int32_t r = rows[i];
            if (col[(int64_t)r * stride] <= best.threshold) {
                rows[it.start + nl++] = r;
                cl += stats[r].c;
            } else {
                tmp[nr++] = r;
                cr += stats[r].c;
            }
        }
        memcpy(rows + it.start + nl, tmp, (size_t)nr * sizeof *rows);
        if (W == 2) {
            best.left.c = cl;
            best.right.c = cr;
        }
        if ((st = prop_nodes_reserve(out, 2, err)) != PROP_OK)
            goto done;
        int64_t lid = out->n_nodes, rid = lid + 1;
        out->n_nodes += 2;
        out->left[id] = (int32_t)(lid - base);
        out->right[id] = (int32_t)(rid - base);
        stack_item li = {lid, it.start, it.start + nl, it.depth + 1, -1, child_seed(it.seed, 0),
                         best.left};
        stack_item ri = {rid, it.start + nl, it.end, it.depth + 1, -1, child_seed(it.seed, 1),
                         best.right};
        int sl = may_split(P, &li.tot, li.depth), sr = may_split(P, &ri.tot, ri.depth);
        if (sl || sr) {
            int left_small = nl <= nr;
            stack_item *small = left_small ? &li : &ri, *large = left_small ? &ri : &li;
            int s_small = left_small ? sl : sr, s_large = left_small ? sr : sl;
            int32_t h = pool_get(hpp);
            if (h < 0) {
                st = prop_fail(err, PROP_NOMEM, "out of memory for histograms");
                goto done;
            }
            if (prop_hist_build(L, codes, stats, rows + small->start, small->end - small->start,
                                hpp->buf[h], W, P->n_threads) < 0) {
                st = prop_fail(err, PROP_NOMEM, "out of memory for histograms");
                goto done;
            }
            if (s_large) {
                prop_hist_subtract(hpp->buf[it.hist], hpp->buf[h], hpp->buf[it.hist], L->n_slots,
                                   W);
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
        if (sp + 2 > scap) {
            scap *= 2;
            stack_item *s2 = realloc(stack, (size_t)scap * sizeof *stack);
            if (s2 == NULL) {
                st = prop_fail(err, PROP_NOMEM, "out of memory growing a tree");
                goto done;
            }
            stack = s2;
        }
        stack[sp++] = ri;
        stack[sp++] = li;
    }
done:
    if (ws != ws_in)
        prop_tree_workspace_free(ws);
    free(stack);
    free(order);
    free(allowed);
    return st;
}
