/* calibrate.h - isotonic regression by pool-adjacent-violators (PAV), the kernel of the
 * isotonic calibration of propensity.learn.calibration.
 *
 * Input: n points already in score order, their values y (finite) and weights w
 * (finite, > 0). Output: fitted[i], the weighted least-squares non-decreasing fit of y,
 * i.e. each point gets the weighted mean of the block it is pooled into. Adjacent
 * blocks whose means are equal are pooled as well, so the fit has one block per
 * distinct value.
 *
 * prop_pav is the one-pass stack algorithm (O(n), one block per stack slot);
 * prop_pav_ref the plain version that restarts a scan from the left after every
 * merge (O(n^2)), for the tests. Both merge two blocks as
 * (m1 * w1 + m2 * w2) / (w1 + w2); their fits agree to rounding.
 */
#ifndef PROPENSITY_CALIBRATE_H
#define PROPENSITY_CALIBRATE_H

#include <stdint.h>

#include "propensity/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* OUT: fitted (n doubles, caller-allocated; may be y itself). n == 0 is a no-op. */
prop_status prop_pav(const double *y, const double *w, int64_t n, double *fitted,
                     prop_error *err);

prop_status prop_pav_ref(const double *y, const double *w, int64_t n, double *fitted,
                         prop_error *err);

#ifdef __cplusplus
}
#endif
#endif
