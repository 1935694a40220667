/* compress.h - merge identical binned rows into weighted unique rows.
 *
 * Input (prop_compress_data): binned rows n x p uint8 (row-major), an optional
 * label y (uint8 0/1, or NULL) and optional sample weights (double, or NULL).
 *
 * Usage (the caller allocates the row-sized output, the core the u-sized ones):
 *
 *     int64_t *inverse = malloc(n * sizeof *inverse);
 *     prop_compressed *res = NULL;
 *     if (prop_compress_rows(&params, &data, inverse, &res, &err) != PROP_OK) ...;
 *     int64_t u = prop_compressed_n_unique(res);
 *     ... prop_compressed_rows(res)    u x p uint8, lexicographic (memcmp) order,
 *                                      equal to numpy.unique(B, axis=0)
 *     ... prop_compressed_counts(res)  u x 2 int64: rows with label 0 / label 1
 *                                      (y NULL: column 0 holds all rows)
 *     ... prop_compressed_weights(res) u x 2 double: summed sample_weight per label
 *                                      (equal to counts without sample_weight)
 *     prop_compressed_free(res);       (NULL is a no-op)
 *
 * inverse[i] is the index of row i's unique row. Results (weights included,
 * which are summed in row order) are identical for any thread count.
 */
#ifndef PROPENSITY_COMPRESS_H
#define PROPENSITY_COMPRESS_H

#include <stdint.h>

#include "propensity/status.h"
#include "propensity/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n_threads; /* 1 .. 1024 */
} prop_compress_params;

typedef struct {
    const uint8_t *bins;         /* n_rows x n_cols */
    int64_t n_rows;              /* >= 1 */
    int64_t n_cols;              /* >= 1 */
    const uint8_t *y;            /* n_rows values 0/1, or NULL */
    const double *sample_weight; /* n_rows, or NULL */
} prop_compress_data;

typedef struct prop_compressed prop_compressed; /* opaque result */

prop_status prop_compress_check_params(const prop_compress_params *params, prop_error *err);

/* Hash-based compression. OUT: inverse (n_rows, caller-allocated), *out (free with
 * prop_compressed_free). On failure *out is NULL. */
prop_status prop_compress_rows(const prop_compress_params *params, const prop_compress_data *data,
                               int64_t *inverse, prop_compressed **out, prop_error *err);

/* Plain reference: a stable merge sort of the rows, then one scan. Same contract. */
prop_status prop_compress_rows_ref(const prop_compress_data *data, int64_t *inverse,
                                   prop_compressed **out, prop_error *err);

int64_t prop_compressed_n_unique(const prop_compressed *res);
int64_t prop_compressed_n_cols(const prop_compressed *res);
const uint8_t *prop_compressed_rows(const prop_compressed *res);
const int64_t *prop_compressed_counts(const prop_compressed *res);
const double *prop_compressed_weights(const prop_compressed *res);
void prop_compressed_free(prop_compressed *res);

#ifdef __cplusplus
}
#endif
#endif
