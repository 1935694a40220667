/* types.h - dtypes of the core, declared once (mirrored in propensity/_types.py).
 *
 * - Raw features arrive as float64, float32 or uint8, C-contiguous, row-major.
 * - Binned features are uint8 codes: 0..254 for values, PROP_MISSING_BIN for NaN.
 * - Row counts and indices are int64_t; histogram sums are double (float sums of
 *   hundreds of thousands of weights lose precision in float32).
 */
#ifndef PROPENSITY_TYPES_H
#define PROPENSITY_TYPES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint8_t prop_bin_t;

#define PROP_MAX_BINS 256         /* codes per feature, the missing bin included */
#define PROP_MAX_VALUE_BINS 255   /* codes for non-missing values */
#define PROP_MISSING_BIN 255      /* the code of NaN */

/* Upper bound on any n_threads parameter: libgomp exits the process when it cannot
 * create the threads asked for, so larger requests are rejected up front. */
#define PROP_MAX_THREADS 1024
/* A valid n_threads: 1 .. PROP_MAX_THREADS. Entry points reject any other value with
 * PROP_INVALID_ARG and a message (PROP_THREADS_FMT) instead of clamping it; callers
 * that mean "all processors" resolve that before calling (the Python binding does). */
#define PROP_THREADS_OK(n) ((n) >= 1 && (n) <= PROP_MAX_THREADS)
#define PROP_THREADS_FMT "n_threads must be in [1, %d], got %d"

#ifdef __cplusplus
}
#endif
#endif
