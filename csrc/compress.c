/* compress.c - identical binned rows -> weighted unique rows (see compress.h).
 *
 * Fast path: (1) hash every row (parallel); (2) insert the rows in order into an
 * open-addressing table keyed by the row bytes, giving provisional ids in order
 * of first appearance; (3) sort the u representatives lexicographically with an
 * LSD radix sort over the columns; (4) remap the ids (parallel) and sum counts
 * and weights in row order. Only step (4)'s sums touch floats, in a fixed order,
 * so the result does not depend on the thread count.
 */
#include <stdlib.h>
#include <string.h>

#include "propensity/compress.h"

struct prop_compressed {
    int64_t n_unique;
    int64_t n_cols;
    uint8_t *rows;    /* n_unique x n_cols */
    int64_t *counts;  /* n_unique x 2 */
    double *weights;  /* n_unique x 2 */
};

int64_t prop_compressed_n_unique(const prop_compressed *res) { return res ? res->n_unique : 0; }
int64_t prop_compressed_n_cols(const prop_compressed *res) { return res ? res->n_cols : 0; }
const uint8_t *prop_compressed_rows(const prop_compressed *res) { return res ? res->rows : NULL; }
const int64_t *prop_compressed_counts(const prop_compressed *res) { return res ? res->counts : NULL; }
const double *prop_compressed_weights(const prop_compressed *res) { return res ? res->weights : NULL; }

void prop_compressed_free(prop_compressed *res)
{
    if (res == NULL)
        return;
    free(res->rows);
    free(res->counts);
    free(res->weights);
    free(res);
}

static prop_compressed *result_new(int64_t u, int64_t p)
{
    prop_compressed *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->n_unique = u;
    r->n_cols = p;
    r->rows = malloc((size_t)(u > 0 ? u : 1) * (size_t)p);
    r->counts = calloc((size_t)(u > 0 ? u : 1) * 2, sizeof *r->counts);
    r->weights = calloc((size_t)(u > 0 ? u : 1) * 2, sizeof *r->weights);
    if (r->rows == NULL || r->counts == NULL || r->weights == NULL) {
        prop_compressed_free(r);
        return NULL;
    }
    return r;
}

prop_status prop_compress_check_params(const prop_compress_params *params, prop_error *err)
{
    if (params == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "compress: params is NULL");
    /* capped: libgomp exits the process when it cannot create num_threads threads */
    if (params->n_threads < 1 || params->n_threads > PROP_MAX_THREADS)
        return prop_fail(err, PROP_INVALID_ARG, "n_threads must be in [1, %d], got %d",
                         PROP_MAX_THREADS,
                         params->n_threads);
    return PROP_OK;
}

static prop_status check_data(const prop_compress_data *d, const int64_t *inverse,
                              prop_compressed **out, prop_error *err)
{
    if (out == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "compress: out is NULL");
    *out = NULL;
    if (d == NULL || d->bins == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "compress: the binned rows are NULL");
    if (d->n_rows < 1 || d->n_cols < 1)
        return prop_fail(err, PROP_INVALID_ARG, "compress: B must have at least one row and one "
                         "column, got %lld x %lld", (long long)d->n_rows, (long long)d->n_cols);
    if (inverse == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "compress: inverse is NULL");
    if (d->y != NULL) {
        for (int64_t i = 0; i < d->n_rows; i++)
            if (d->y[i] > 1)
                return prop_fail(err, PROP_INVALID_ARG, "y must be 0 or 1, got %d at row %lld",
                                 (int)d->y[i], (long long)i);
    }
    return PROP_OK;
}

/* Counts and weights in row order (deterministic float sums). inverse: final ids. */
static void accumulate(const prop_compress_data *d, const int64_t *inverse, prop_compressed *r)
{
    for (int64_t i = 0; i < d->n_rows; i++) {
        int64_t at = 2 * inverse[i] + (d->y != NULL ? d->y[i] : 0);
        r->counts[at]++;
        r->weights[at] += d->sample_weight != NULL ? d->sample_weight[i] : 1.0;
    }
}

/* ------------------------------------------------------------------ */
/* Fast path                                                           */
/* ------------------------------------------------------------------ */

static inline uint64_t load_u64(const uint8_t *s)
{
    uint64_t v;
    memcpy(&v, s, 8);
    return v;
}

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t hash_row(const uint8_t *row, int64_t p)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)p;
    int64_t c = 0;
    for (; c + 8 <= p; c += 8) {
        h ^= load_u64(row + c);
        h *= 0x100000001B3ULL * 0x9E3779B1ULL + 1ULL;
        h = (h << 29) | (h >> 35);
    }
    if (c < p) {
        uint64_t tail = 0;
        memcpy(&tail, row + c, (size_t)(p - c));
        h ^= tail;
        h *= 0xA0761D6478BD642FULL;
    }
    return mix64(h);
}

/* Grow-able open-addressing table of provisional ids (-1 = empty). */
typedef struct {
    int64_t *slots;
    uint64_t mask;
} id_table;

static int table_init(id_table *t, uint64_t cap)
{
    t->slots = malloc(cap * sizeof *t->slots);
    if (t->slots == NULL)
        return -1;
    memset(t->slots, 0xFF, cap * sizeof *t->slots);
    t->mask = cap - 1;
    return 0;
}

static int table_grow(id_table *t, const uint64_t *rep_hash, int64_t u)
{
    id_table g;
    if (table_init(&g, (t->mask + 1) * 2) != 0)
        return -1;
    for (int64_t id = 0; id < u; id++) {
        uint64_t pos = rep_hash[id] & g.mask;
        while (g.slots[pos] >= 0)
            pos = (pos + 1) & g.mask;
        g.slots[pos] = id;
    }
    free(t->slots);
    *t = g;
    return 0;
}

/* Stable LSD radix sort of ids by their representative rows (memcmp order). */
static int radix_sort_ids(const uint8_t *bins, int64_t p, const int64_t *reps, int64_t u,
                          int64_t *ids)
{
    int64_t *tmp = malloc((size_t)u * sizeof *tmp);
    if (tmp == NULL)
        return -1;
    for (int64_t r = 0; r < u; r++)
        ids[r] = r;
    int64_t *src = ids, *dst = tmp;
    for (int64_t c = p - 1; c >= 0; c--) {
        int64_t count[257] = {0};
        for (int64_t r = 0; r < u; r++)
            count[bins[reps[src[r]] * p + c] + 1]++;
        if (count[bins[reps[src[0]] * p + c] + 1] == u)
            continue; /* one value in this column: already in order */
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (int64_t r = 0; r < u; r++)
            dst[count[bins[reps[src[r]] * p + c]]++] = src[r];
        int64_t *s = src;
        src = dst;
        dst = s;
    }
    if (src != ids)
        memcpy(ids, src, (size_t)u * sizeof *ids);
    free(tmp);
    return 0;
}

prop_status prop_compress_rows(const prop_compress_params *params, const prop_compress_data *data,
                               int64_t *inverse, prop_compressed **out, prop_error *err)
{
    prop_status st = check_data(data, inverse, out, err);
    if (st != PROP_OK)
        return st;
    if ((st = prop_compress_check_params(params, err)) != PROP_OK)
        return st;

    const int64_t n = data->n_rows, p = data->n_cols;
    const uint8_t *bins = data->bins;
    const int nt = params->n_threads;
    uint64_t *hashes = malloc((size_t)n * sizeof *hashes);
    int64_t rep_cap = 1024;
    int64_t *reps = malloc((size_t)rep_cap * sizeof *reps);
    uint64_t *rep_hash = malloc((size_t)rep_cap * sizeof *rep_hash);
    int64_t *order = NULL, *remap = NULL;
    prop_compressed *res = NULL;
    id_table table = {NULL, 0};
    int64_t u = 0;
    if (hashes == NULL || reps == NULL || rep_hash == NULL || table_init(&table, 2048) != 0)
        goto nomem;

#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; i++)
        hashes[i] = hash_row(bins + i * p, p);

    for (int64_t i = 0; i < n; i++) {
        const uint64_t h = hashes[i];
        const uint8_t *row = bins + i * p;
        uint64_t pos = h & table.mask;
        for (;;) {
            int64_t id = table.slots[pos];
            if (id < 0) {
                if (u == rep_cap) {
                    rep_cap *= 2;
                    int64_t *nr = realloc(reps, (size_t)rep_cap * sizeof *reps);
                    if (nr == NULL)
                        goto nomem;
                    reps = nr;
                    uint64_t *nh = realloc(rep_hash, (size_t)rep_cap * sizeof *rep_hash);
                    if (nh == NULL)
                        goto nomem;
                    rep_hash = nh;
                }
                reps[u] = i;
                rep_hash[u] = h;
                table.slots[pos] = u;
                inverse[i] = u++;
                if ((uint64_t)u * 2 > table.mask + 1 && table_grow(&table, rep_hash, u) != 0)
                    goto nomem;
                break;
            }
            if (rep_hash[id] == h && memcmp(bins + reps[id] * p, row, (size_t)p) == 0) {
                inverse[i] = id;
                break;
            }
            pos = (pos + 1) & table.mask;
        }
    }

    order = malloc((size_t)u * sizeof *order);
    remap = malloc((size_t)u * sizeof *remap);
    if (order == NULL || remap == NULL || radix_sort_ids(bins, p, reps, u, order) != 0)
        goto nomem;
    if ((res = result_new(u, p)) == NULL)
        goto nomem;
    for (int64_t r = 0; r < u; r++) {
        remap[order[r]] = r;
        memcpy(res->rows + r * p, bins + reps[order[r]] * p, (size_t)p);
    }
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; i++)
        inverse[i] = remap[inverse[i]];
    accumulate(data, inverse, res);
    *out = res;
    res = NULL;
    st = PROP_OK;
    goto done;

nomem:
    st = prop_fail(err, PROP_NOMEM, "compress: out of memory for %lld rows x %lld columns",
                   (long long)n, (long long)p);
done:
    prop_compressed_free(res);
    free(table.slots);
    free(remap);
    free(order);
    free(rep_hash);
    free(reps);
    free(hashes);
    return st;
}

/* ------------------------------------------------------------------ */
/* Reference: stable merge sort of row indices, then one scan          */
/* ------------------------------------------------------------------ */

static void merge_sort(int64_t *a, int64_t *tmp, int64_t lo, int64_t hi, const uint8_t *bins,
                       int64_t p)
{
    if (hi - lo < 2)
        return;
    int64_t mid = lo + (hi - lo) / 2;
    merge_sort(a, tmp, lo, mid, bins, p);
    merge_sort(a, tmp, mid, hi, bins, p);
    int64_t i = lo, j = mid, k = lo;
    while (i < mid && j < hi) {
        if (memcmp(bins + a[j] * p, bins + a[i] * p, (size_t)p) < 0)
            tmp[k++] = a[j++];
        else
            tmp[k++] = a[i++];
    }
    while (i < mid)
        tmp[k++] = a[i++];
    while (j < hi)
        tmp[k++] = a[j++];
    memcpy(a + lo, tmp + lo, (size_t)(hi - lo) * sizeof *a);
}

prop_status prop_compress_rows_ref(const prop_compress_data *data, int64_t *inverse,
                                   prop_compressed **out, prop_error *err)
{
    prop_status st = check_data(data, inverse, out, err);
    if (st != PROP_OK)
        return st;
    const int64_t n = data->n_rows, p = data->n_cols;
    const uint8_t *bins = data->bins;
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    int64_t *tmp = malloc((size_t)n * sizeof *tmp);
    prop_compressed *res = NULL;
    if (idx == NULL || tmp == NULL) {
        st = prop_fail(err, PROP_NOMEM, "compress: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    merge_sort(idx, tmp, 0, n, bins, p);
    int64_t u = 0;
    for (int64_t k = 0; k < n; k++) {
        if (k == 0 || memcmp(bins + idx[k] * p, bins + idx[k - 1] * p, (size_t)p) != 0)
            u++;
        inverse[idx[k]] = u - 1;
    }
    if ((res = result_new(u, p)) == NULL) {
        st = prop_fail(err, PROP_NOMEM, "compress: out of memory");
        goto done;
    }
    for (int64_t k = 0; k < n; k++)
        memcpy(res->rows + inverse[idx[k]] * p, bins + idx[k] * p, (size_t)p);
    accumulate(data, inverse, res);
    *out = res;
    st = PROP_OK;
done:
    free(tmp);
    free(idx);
    return st;
}
