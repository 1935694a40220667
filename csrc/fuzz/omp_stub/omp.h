/* omp.h stand-in for the libFuzzer builds.
 *
 * Debian's clang ships without libomp; the fuzz targets are built without
 * -fopenmp, so every `#pragma omp` is ignored and the kernels run on one
 * thread (the C unit tests cover the threaded paths against the references).
 * These are the few runtime calls the core makes.
 */
#ifndef PROPENSITY_FUZZ_OMP_STUB_H
#define PROPENSITY_FUZZ_OMP_STUB_H
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_procs(void) { return 1; }
static inline void omp_set_num_threads(int n) { (void)n; }
#endif
