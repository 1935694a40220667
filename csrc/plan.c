/* plan.c - the feature plan: encoded inputs -> features -> bin codes (see plan.h). */
#include <stdlib.h>
#include <string.h>

#include "propensity/plan.h"
#include "propensity/types.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define ROW_BLOCK 512 /* rows per block of the threaded kernels */

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

prop_status prop_plan_check(const prop_plan *plan, prop_error *err)
{
    if (plan == NULL || plan->op == NULL || plan->col == NULL || plan->level == NULL ||
        plan->src_start == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "feature plan: an array is NULL");
    if (plan->n_inputs < 1 || plan->n_features < 1)
        return prop_fail(err, PROP_INVALID_ARG,
                         "feature plan: needs >= 1 input and >= 1 feature, got %lld and %lld",
                         (long long)plan->n_inputs, (long long)plan->n_features);
    if (plan->src_start[0] != 0)
        return prop_fail(err, PROP_INVALID_ARG, "feature plan: src_start[0] must be 0");
    if (plan->src_start[plan->n_features] > 0 && plan->src == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "feature plan: src is NULL");
    for (int64_t f = 0; f < plan->n_features; f++) {
        int64_t a = plan->src_start[f], b = plan->src_start[f + 1];
        if (b < a)
            return prop_fail(err, PROP_INVALID_ARG,
                             "feature plan: src_start decreases at feature %lld", (long long)f);
        switch (plan->op[f]) {
        case PROP_FEAT_COPY:
        case PROP_FEAT_ONEHOT:
            if (plan->col[f] < 0 || plan->col[f] >= plan->n_inputs)
                return prop_fail(err, PROP_INVALID_ARG,
                                 "feature plan: feature %lld reads input column %lld, outside "
                                 "[0, %lld)",
                                 (long long)f, (long long)plan->col[f],
                                 (long long)plan->n_inputs);
            if (plan->op[f] == PROP_FEAT_ONEHOT && !isfinite(plan->level[f]))
                return prop_fail(err, PROP_INVALID_ARG,
                                 "feature plan: feature %lld has a level that is not finite",
                                 (long long)f);
            if (b != a)
                return prop_fail(err, PROP_INVALID_ARG,
                                 "feature plan: feature %lld copies an input but has sources",
                                 (long long)f);
            break;
        case PROP_FEAT_PROD:
        case PROP_FEAT_SUM:
            if (b == a)
                return prop_fail(err, PROP_INVALID_ARG,
                                 "feature plan: feature %lld has no source feature", (long long)f);
            for (int64_t s = a; s < b; s++)
                if (plan->src[s] < 0 || plan->src[s] >= f)
                    return prop_fail(err, PROP_INVALID_ARG,
                                     "feature plan: feature %lld reads feature %lld; sources "
                                     "must be earlier features",
                                     (long long)f, (long long)plan->src[s]);
            break;
        default:
            return prop_fail(err, PROP_INVALID_ARG, "feature plan: feature %lld has an unknown "
                             "op %d", (long long)f, (int)plan->op[f]);
        }
    }
    return PROP_OK;
}

static prop_status check_input(const prop_plan *plan, const prop_bins_data *E, prop_error *err)
{
    prop_status st = prop_plan_check(plan, err);
    if (st != PROP_OK)
        return st;
    if (E == NULL || E->n_rows < 0 || (E->n_rows > 0 && E->data == NULL))
        return prop_fail(err, PROP_INVALID_ARG, "feature plan: invalid input rows");
    if (E->dtype != PROP_BINS_F64 && E->dtype != PROP_BINS_F32 && E->dtype != PROP_BINS_U8)
        return prop_fail(err, PROP_INVALID_ARG, "feature plan: unknown input dtype code %d",
                         (int)E->dtype);
    if (E->n_cols != plan->n_inputs)
        return prop_fail(err, PROP_INVALID_ARG, "the inputs have %lld columns; the feature plan "
                         "reads %lld", (long long)E->n_cols, (long long)plan->n_inputs);
    return PROP_OK;
}

prop_status prop_plan_check_codes_args(const prop_plan *plan, const prop_bins_edges *edges,
                                       const prop_bins_data *E, prop_error *err)
{
    prop_status st = check_input(plan, E, err);
    if (st != PROP_OK)
        return st;
    if ((st = prop_bins_check_edges(edges, err)) != PROP_OK)
        return st;
    if (edges->n_cols != plan->n_features)
        return prop_fail(err, PROP_INVALID_ARG, "the bin edges describe %lld features; the "
                         "feature plan makes %lld",
                         (long long)edges->n_cols, (long long)plan->n_features);
    return PROP_OK;
}

/* ------------------------------------------------------------------ */
/* A chunk of rows                                                     */
/* ------------------------------------------------------------------ */

/* The chunk's inputs by column: X[j * PROP_PLAN_CHUNK + r] = E[i0 + r, j] (r < nr), read
 * row by row (the rows are contiguous in E). */
#define DEFINE_CHUNK_INPUTS(NAME, T)                                                        \
    static void NAME(const T *x, int64_t m, int64_t i0, int nr, double *X)                 \
    {                                                                                       \
        const T *row = x + i0 * m;                                                          \
        for (int r = 0; r < nr; r++, row += m)                                              \
            for (int64_t j = 0; j < m; j++)                                                 \
                X[j * PROP_PLAN_CHUNK + r] = (double)row[j];                                \
        for (int64_t j = 0; j < m; j++) /* a short chunk: rows of zeros after it */         \
            for (int r = nr; r < PROP_PLAN_CHUNK; r++)                                      \
                X[j * PROP_PLAN_CHUNK + r] = 0.0;                                           \
    }

DEFINE_CHUNK_INPUTS(chunk_inputs_f64, double)
DEFINE_CHUNK_INPUTS(chunk_inputs_f32, float)
DEFINE_CHUNK_INPUTS(chunk_inputs_u8, uint8_t)

/* The scratch of a chunk: X (inputs by column), V (values of the features that are not
 * copies), col (where each feature's values are). */
typedef struct {
    double *X, *V;
    const double **col;
} chunk_scratch;

static chunk_scratch scratch_of(const prop_plan *pl, double *buf)
{
    chunk_scratch cs;
    cs.X = buf;
    cs.V = buf + pl->n_inputs * PROP_PLAN_CHUNK;
    cs.col = (const double **)(void *)(cs.V + pl->n_features * PROP_PLAN_CHUNK);
    return cs;
}

int64_t prop_plan_scratch(const prop_plan *plan)
{
    return (plan->n_inputs + plan->n_features) * PROP_PLAN_CHUNK + plan->n_features;
}

/* The values of every feature of the chunk's rows: cs->col[f] points at feature f's
 * PROP_PLAN_CHUNK values (those past nr made from rows of zeros), an input column of X
 * (copies) or V + f * PROP_PLAN_CHUNK (the others). Feature by feature, each loop one op
 * (the compiler vectorises it). */
static void chunk_values(const prop_plan *pl, const prop_bins_data *E, int64_t i0, int nr,
                         const chunk_scratch *cs)
{
    switch (E->dtype) {
    case PROP_BINS_F64:
        chunk_inputs_f64((const double *)E->data, E->n_cols, i0, nr, cs->X);
        break;
    case PROP_BINS_F32:
        chunk_inputs_f32((const float *)E->data, E->n_cols, i0, nr, cs->X);
        break;
    default:
        chunk_inputs_u8((const uint8_t *)E->data, E->n_cols, i0, nr, cs->X);
    }
    for (int64_t f = 0; f < pl->n_features; f++) {
        double *v = cs->V + f * PROP_PLAN_CHUNK;
        if (pl->op[f] == PROP_FEAT_COPY) {
            cs->col[f] = cs->X + pl->col[f] * PROP_PLAN_CHUNK;
            continue;
        }
        cs->col[f] = v;
        if (pl->op[f] == PROP_FEAT_ONEHOT) {
            const double *in = cs->X + pl->col[f] * PROP_PLAN_CHUNK, level = pl->level[f];
            for (int r = 0; r < PROP_PLAN_CHUNK; r++)
                v[r] = in[r] == level ? 1.0 : 0.0;
            continue;
        }
        const int64_t *s = pl->src + pl->src_start[f];
        const int64_t n_src = pl->src_start[f + 1] - pl->src_start[f];
        const double *a = cs->col[s[0]];
        for (int r = 0; r < PROP_PLAN_CHUNK; r++)
            v[r] = a[r];
        for (int64_t k = 1; k < n_src; k++) {
            const double *b = cs->col[s[k]];
            if (pl->op[f] == PROP_FEAT_PROD)
                for (int r = 0; r < PROP_PLAN_CHUNK; r++)
                    v[r] = v[r] * b[r];
            else
                for (int r = 0; r < PROP_PLAN_CHUNK; r++)
                    v[r] = v[r] + b[r];
        }
    }
}

const double *const *prop_plan_chunk(const prop_plan *plan, const prop_bins_data *E, int64_t i0,
                                     int nr, double *scratch)
{
    chunk_scratch cs = scratch_of(plan, scratch);
    chunk_values(plan, E, i0, nr, &cs);
    return cs.col;
}

/* Codes of rows [i0, i1) into out (row-major, n_features per row). */
static void codes_rows(const prop_plan *plan, const prop_bins_edges *edges,
                       const prop_bins_data *E, int64_t i0, int64_t i1, uint8_t *out,
                       double *scratch)
{
    const int64_t F = plan->n_features;
    chunk_scratch cs = scratch_of(plan, scratch);
    for (int64_t c0 = i0; c0 < i1; c0 += PROP_PLAN_CHUNK) {
        int nr = (int)(i1 - c0 < PROP_PLAN_CHUNK ? i1 - c0 : PROP_PLAN_CHUNK);
        chunk_values(plan, E, c0, nr, &cs);
        uint8_t *o = out + (c0 - i0) * F;
        for (int64_t f = 0; f < F; f++)
            prop_bins_codes(edges->edges + f * PROP_BINS_EDGE_STRIDE, edges->n_edges[f],
                            cs.col[f], nr, o + f, F);
    }
}

/* ------------------------------------------------------------------ */
/* Threaded kernels                                                    */
/* ------------------------------------------------------------------ */

static prop_status check_threads(int n_threads, prop_error *err)
{
    if (!PROP_THREADS_OK(n_threads))
        return prop_fail(err, PROP_INVALID_ARG, "feature plan: " PROP_THREADS_FMT,
                         PROP_MAX_THREADS, n_threads);
    return PROP_OK;
}

prop_status prop_plan_values(const prop_plan *plan, const prop_bins_data *E, int out_u8,
                             int n_threads, void *out, prop_error *err)
{
    prop_status st = check_input(plan, E, err);
    if (st == PROP_OK)
        st = check_threads(n_threads, err);
    if (st != PROP_OK)
        return st;
    const int64_t n = E->n_rows, F = plan->n_features;
    if (n == 0)
        return PROP_OK;
    if (out == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "feature plan: out is NULL");
    const int64_t n_blocks = (n + ROW_BLOCK - 1) / ROW_BLOCK;
    int nt = n_blocks < n_threads ? (int)n_blocks : n_threads;
    const int64_t per = prop_plan_scratch(plan);
    double *scratch = malloc((size_t)(nt * per) * sizeof *scratch);
    if (scratch == NULL)
        return prop_fail(err, PROP_NOMEM, "feature plan: out of memory");
#pragma omp parallel num_threads(nt)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        chunk_scratch cs = scratch_of(plan, scratch + (int64_t)tid * per);
#pragma omp for schedule(static)
        for (int64_t b = 0; b < n_blocks; b++) {
            int64_t i1 = (b + 1) * ROW_BLOCK < n ? (b + 1) * ROW_BLOCK : n;
            for (int64_t c0 = b * ROW_BLOCK; c0 < i1; c0 += PROP_PLAN_CHUNK) {
                int nr = (int)(i1 - c0 < PROP_PLAN_CHUNK ? i1 - c0 : PROP_PLAN_CHUNK);
                chunk_values(plan, E, c0, nr, &cs);
                for (int64_t f = 0; f < F; f++) {
                    const double *v = cs.col[f];
                    if (out_u8) {
                        uint8_t *o = (uint8_t *)out + c0 * F + f;
                        for (int r = 0; r < nr; r++)
                            o[r * F] = (uint8_t)(v[r] >= 0.0 && v[r] < 256.0 ? v[r] : 0.0);
                    } else {
                        double *o = (double *)out + c0 * F + f;
                        for (int r = 0; r < nr; r++)
                            o[r * F] = v[r];
                    }
                }
            }
        }
    }
    free(scratch);
    return PROP_OK;
}

prop_status prop_plan_codes(const prop_plan *plan, const prop_bins_edges *edges,
                            const prop_bins_data *E, int n_threads, uint8_t *out,
                            prop_error *err)
{
    prop_status st = prop_plan_check_codes_args(plan, edges, E, err);
    if (st == PROP_OK)
        st = check_threads(n_threads, err);
    if (st != PROP_OK)
        return st;
    const int64_t n = E->n_rows, F = plan->n_features;
    if (n == 0)
        return PROP_OK;
    if (out == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "feature plan: out is NULL");
    const int64_t n_blocks = (n + ROW_BLOCK - 1) / ROW_BLOCK;
    int nt = n_blocks < n_threads ? (int)n_blocks : n_threads;
    const int64_t per = prop_plan_scratch(plan);
    double *scratch = malloc((size_t)(nt * per) * sizeof *scratch);
    if (scratch == NULL)
        return prop_fail(err, PROP_NOMEM, "feature plan: out of memory");
#pragma omp parallel num_threads(nt)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
#pragma omp for schedule(static)
        for (int64_t b = 0; b < n_blocks; b++) {
            int64_t i0 = b * ROW_BLOCK, i1 = i0 + ROW_BLOCK < n ? i0 + ROW_BLOCK : n;
            codes_rows(plan, edges, E, i0, i1, out + i0 * F, scratch + (int64_t)tid * per);
        }
    }
    free(scratch);
    return PROP_OK;
}

/* ------------------------------------------------------------------ */
/* Plain references                                                    */
/* ------------------------------------------------------------------ */

static double input_at(const prop_bins_data *E, int64_t i, int64_t j)
{
    int64_t k = i * E->n_cols + j;
    switch (E->dtype) {
    case PROP_BINS_F64:
        return ((const double *)E->data)[k];
    case PROP_BINS_F32:
        return (double)((const float *)E->data)[k];
    default:
        return (double)((const uint8_t *)E->data)[k];
    }
}

/* V (n x F doubles): feature by feature over all rows. */
static void values_by_feature(const prop_plan *pl, const prop_bins_data *E, double *V)
{
    const int64_t n = E->n_rows, F = pl->n_features;
    for (int64_t f = 0; f < F; f++) {
        const int64_t *src = pl->src + pl->src_start[f];
        int64_t n_src = pl->src_start[f + 1] - pl->src_start[f];
        for (int64_t i = 0; i < n; i++) {
            double *row = V + i * F;
            if (pl->op[f] == PROP_FEAT_COPY) {
                row[f] = input_at(E, i, pl->col[f]);
            } else if (pl->op[f] == PROP_FEAT_ONEHOT) {
                row[f] = input_at(E, i, pl->col[f]) == pl->level[f] ? 1.0 : 0.0;
            } else {
                row[f] = row[src[0]];
                for (int64_t s = 1; s < n_src; s++) {
                    if (pl->op[f] == PROP_FEAT_PROD)
                        row[f] = row[f] * row[src[s]];
                    else
                        row[f] = row[f] + row[src[s]];
                }
            }
        }
    }
}

prop_status prop_plan_values_ref(const prop_plan *plan, const prop_bins_data *E, int out_u8,
                                 void *out, prop_error *err)
{
    prop_status st = check_input(plan, E, err);
    if (st != PROP_OK)
        return st;
    const int64_t n = E->n_rows, F = plan->n_features;
    if (n == 0)
        return PROP_OK;
    if (out == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "feature plan: out is NULL");
    if (!out_u8) {
        values_by_feature(plan, E, (double *)out);
        return PROP_OK;
    }
    double *V = malloc((size_t)(n * F) * sizeof *V);
    if (V == NULL)
        return prop_fail(err, PROP_NOMEM, "feature plan: out of memory");
    values_by_feature(plan, E, V);
    for (int64_t k = 0; k < n * F; k++)
        ((uint8_t *)out)[k] = (uint8_t)(V[k] >= 0.0 && V[k] < 256.0 ? V[k] : 0.0);
    free(V);
    return PROP_OK;
}

prop_status prop_plan_codes_ref(const prop_plan *plan, const prop_bins_edges *edges,
                                const prop_bins_data *E, uint8_t *out, prop_error *err)
{
    prop_status st = prop_plan_check_codes_args(plan, edges, E, err);
    if (st != PROP_OK)
        return st;
    const int64_t n = E->n_rows, F = plan->n_features;
    if (n == 0)
        return PROP_OK;
    if (out == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "feature plan: out is NULL");
    double *V = malloc((size_t)(n * F) * sizeof *V);
    if (V == NULL)
        return prop_fail(err, PROP_NOMEM, "feature plan: out of memory");
    values_by_feature(plan, E, V);
    prop_bins_data X = {V, n, F, PROP_BINS_F64};
    st = prop_bins_transform_ref(edges, &X, out, err);
    free(V);
    return st;
}
