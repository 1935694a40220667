/* rng.h - the small deterministic RNG of the tree learners (splitmix64 seeding,
 * xoshiro256**).
 *
 * Every random stream of the forest and boosting (bootstrap multiplicities, row and
 * column subsamples, per-node feature orders) comes from a prop_rng seeded with
 * prop_rng_seed from a seed derived by prop_mix64; there is no global state. The
 * functions cannot fail.
 */
#ifndef PROPENSITY_RNG_H
#define PROPENSITY_RNG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t s[4];
} prop_rng;

/* splitmix64's finaliser: a bijective 64-bit mix (seed derivation). */
uint64_t prop_mix64(uint64_t x);
void prop_rng_seed(prop_rng *r, uint64_t seed);
uint64_t prop_rng_next(prop_rng *r);
double prop_rng_uniform(prop_rng *r);             /* [0, 1) */
uint64_t prop_rng_below(prop_rng *r, uint64_t n); /* [0, n); 0 when n <= 1 */
int64_t prop_rng_poisson(prop_rng *r, double lam);
int64_t prop_rng_binomial(prop_rng *r, int64_t n, double p);

#ifdef __cplusplus
}
#endif
#endif
