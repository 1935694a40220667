/* rng.c - the deterministic RNG of the tree learners (rng.h). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "propensity/rng.h"

uint64_t prop_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

void prop_rng_seed(prop_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        x = prop_mix64(x);
        r->s[i] = x;
    }
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
        r->s[0] = 1;
}

uint64_t prop_rng_next(prop_rng *r) { return prop_rng_step(r); }

static inline double uniform01(prop_rng *r) { return (double)(prop_rng_step(r) >> 11) * 0x1.0p-53; }

double prop_rng_uniform(prop_rng *r) { return uniform01(r); }

uint64_t prop_rng_below(prop_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do
        x = prop_rng_step(r);
    while (x >= lim);
    return x % n;
}

void prop_below_init(prop_below_n *b, uint64_t n)
{
    b->n = n;
    b->lim = n <= 1 ? UINT64_MAX : UINT64_MAX - UINT64_MAX % n;
#ifdef __SIZEOF_INT128__
    /* M = floor((2^128 - 1) / n) + 1 = ceil(2^128 / n) */
    b->m = n <= 1 ? 0 : (~(unsigned __int128)0) / n + 1;
#endif
}

/* Poisson: multiplication method for small means, the transformed rejection
 * method PTRS (Hormann 1993) otherwise. */
void prop_poisson_init(prop_poisson *c, double lam)
{
    memset(c, 0, sizeof *c);
    c->lam = lam;
    if (!(lam > 0.0))
        return;
    if (lam < 10.0) {
        c->lim = exp(-lam);
        return;
    }
    double slam = sqrt(lam);
    c->loglam = log(lam);
    c->b = 0.931 + 2.53 * slam;
    c->a = -0.059 + 0.02483 * c->b;
    c->log_inv_alpha = log(1.1239 + 1.1328 / (c->b - 3.4));
    c->vr = 0.9277 - 3.6224 / (c->b - 2.0);
}

int64_t prop_rng_poisson_c(prop_rng *r, const prop_poisson *c)
{
    const double lam = c->lam;
    if (!(lam > 0.0))
        return 0;
    if (lam < 10.0) {
        double lim = c->lim, prod = uniform01(r);
        int64_t k = 0;
        while (prod > lim) {
            k++;
            prod *= uniform01(r);
        }
        return k;
    }
    const double a = c->a, b = c->b, vr = c->vr, loglam = c->loglam;
    const double a2 = 2.0 * a; /* exact: what 2.0 * a / us computes first */
    for (;;) {
        double u = uniform01(r) - 0.5, v = uniform01(r);
        double us = 0.5 - fabs(u);
        double k = floor((a2 / us + b) * u + lam + 0.43);
        if (us >= 0.07 && v <= vr)
            return (int64_t)k;
        if (k < 0.0 || (us < 0.013 && v > us))
            continue;
        if (log(v) + c->log_inv_alpha - log(a / (us * us) + b) <=
            -lam + k * loglam - lgamma(k + 1.0))
            return (int64_t)k;
    }
}

int64_t prop_rng_poisson(prop_rng *r, double lam)
{
    prop_poisson c;
    prop_poisson_init(&c, lam);
    return prop_rng_poisson_c(r, &c);
}

/* Binomial: Bernoulli trials for small n, inversion for a small mean, and a
 * rounded normal approximation (clamped to [0, n]) for large n * p * (1 - p). */
int64_t prop_rng_binomial(prop_rng *r, int64_t n, double p)
{
    if (n <= 0 || p <= 0.0)
        return 0;
    if (p >= 1.0)
        return n;
    if (n <= 32) {
        int64_t k = 0;
        for (int64_t i = 0; i < n; i++)
            k += prop_rng_uniform(r) < p;
        return k;
    }
    double q = p < 0.5 ? p : 1.0 - p;
    double mean = (double)n * q;
    int64_t k;
    if (mean < 30.0) {
        /* inversion on the pmf of Binomial(n, q) */
        double s = q / (1.0 - q), f = pow(1.0 - q, (double)n), u = prop_rng_uniform(r);
        k = 0;
        while (u > f && k < n) {
            u -= f;
            f *= s * (double)(n - k) / (double)(k + 1);
            k++;
        }
    } else {
        double u1 = prop_rng_uniform(r), u2 = prop_rng_uniform(r);
        double z = sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
        double x = floor(mean + z * sqrt(mean * (1.0 - q)) + 0.5);
        if (x < 0.0)
            x = 0.0;
        if (x > (double)n)
            x = (double)n;
        k = (int64_t)x;
    }
    return p < 0.5 ? k : n - k;
}
