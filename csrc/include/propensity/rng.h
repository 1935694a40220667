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

/* xoshiro256** step, inline for hot loops (prop_rng_next is the same step). */
static inline uint64_t prop_rng_step(prop_rng *r)
{
    uint64_t *s = r->s;
    uint64_t x = s[1] * 5;
    uint64_t out = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return out;
}

/* prop_rng_below for one fixed n with its constants precomputed (prop_below_init): the
 * same draws and the same value, without divisions. The remainder x % n is
 * ((M * x mod 2^128) * n) >> 128 with M = ceil(2^128 / n), exact for every 64-bit x
 * (Lemire, Kaser and Kurz, "Faster remainder by direct computation", 2019). */
typedef struct {
    uint64_t n, lim;
#ifdef __SIZEOF_INT128__
    unsigned __int128 m;
#endif
} prop_below_n;

void prop_below_init(prop_below_n *b, uint64_t n);

static inline uint64_t prop_rng_below_n(prop_rng *r, const prop_below_n *b)
{
    if (b->n <= 1)
        return 0;
    uint64_t x;
    do
        x = prop_rng_step(r);
    while (x >= b->lim);
#ifdef __SIZEOF_INT128__
    unsigned __int128 low = b->m * x;
    unsigned __int128 lo = ((unsigned __int128)(uint64_t)low * b->n) >> 64;
    unsigned __int128 hi = (unsigned __int128)(uint64_t)(low >> 64) * b->n;
    return (uint64_t)((lo + hi) >> 64);
#else
    return x % b->n;
#endif
}

/* splitmix64's finaliser: a bijective 64-bit mix (seed derivation). */
uint64_t prop_mix64(uint64_t x);
void prop_rng_seed(prop_rng *r, uint64_t seed);
uint64_t prop_rng_next(prop_rng *r);
double prop_rng_uniform(prop_rng *r);             /* [0, 1) */
uint64_t prop_rng_below(prop_rng *r, uint64_t n); /* [0, n); 0 when n <= 1 */
int64_t prop_rng_poisson(prop_rng *r, double lam);
/* The constants of Poisson(lam) (prop_poisson_init), for drawing one mean many times:
 * prop_rng_poisson_c(r, &c) draws what prop_rng_poisson(r, lam) draws. */
typedef struct {
    double lam, lim, loglam, a, b, vr, log_inv_alpha;
} prop_poisson;
void prop_poisson_init(prop_poisson *c, double lam);
int64_t prop_rng_poisson_c(prop_rng *r, const prop_poisson *c);
int64_t prop_rng_binomial(prop_rng *r, int64_t n, double p);

#ifdef __cplusplus
}
#endif
#endif
