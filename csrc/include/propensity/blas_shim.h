/* blas_shim.h - OpenBLAS entry points under their build-time symbol prefix.
 *
 * The scipy-openblas32 wheel prefixes every symbol with "scipy_"; the build passes
 * -DBLAS_SYMBOL_PREFIX=scipy_ (an empty prefix selects a plain system OpenBLAS).
 * Code calls prop_cblas_dgemv(...) etc. and never spells the prefix.
 */
#ifndef PROPENSITY_BLAS_SHIM_H
#define PROPENSITY_BLAS_SHIM_H

#include <cblas.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef BLAS_SYMBOL_PREFIX
#define BLAS_SYMBOL_PREFIX
#endif
#define PROP_BLAS_CAT2_(a, b) a##b
#define PROP_BLAS_CAT_(a, b) PROP_BLAS_CAT2_(a, b)
#define PROP_BLAS_NAME(name) PROP_BLAS_CAT_(BLAS_SYMBOL_PREFIX, name)

#define prop_cblas_dgemv PROP_BLAS_NAME(cblas_dgemv)
#define prop_cblas_dsyrk PROP_BLAS_NAME(cblas_dsyrk)
#define prop_cblas_ddot PROP_BLAS_NAME(cblas_ddot)
/* OpenBLAS's own thread count is process-wide (the wheel's pthreads build does not
 * export openblas_set_num_threads_local). The core's parallelism is its own OpenMP row
 * chunks, each calling BLAS on a block, so each of its BLAS users sets OpenBLAS to
 * one thread before it starts and never restores it: a saved and restored count raced
 * when fits run side by side in threads (one fit restored 2 threads while another ran),
 * and OpenBLAS's idle threads then spun beside ours (the 10M-row run's logistic
 * regression grid took 1.7 s instead of 0.75 s). This wheel's OpenBLAS is only ours:
 * numpy and scipy bundle their own. */
#define prop_openblas_set_num_threads PROP_BLAS_NAME(openblas_set_num_threads)

#ifdef __cplusplus
}
#endif
#endif
