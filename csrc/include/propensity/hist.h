/* hist.h - per-node histograms of the tree learner on uint8 bin codes.
 *
 * Layout: feature j owns the slots offset[j] .. offset[j+1]-1 of a histogram:
 * its n_bins[j] value bins followed by ONE missing slot. The learner works on
 * "slot codes": the value code itself, or n_bins[j] for a missing value
 * (prop_hist_remap turns the missing code 255 into n_bins[j]), so a row's slot
 * is offset[j] + code without a branch. Because the missing slot is last, a
 * split "code <= t" sends missing values right, as the raw code 255 does at
 * scoring time.
 *
 * Slots hold sums in double: (a, b, c) = (class-0 weight, class-1 weight, rows)
 * for a random forest, (gradient, hessian) for boosting (rows are not needed
 * there, and two doubles per slot move a third less memory).
 */
#ifndef PROPENSITY_HIST_H
#define PROPENSITY_HIST_H

#include <stdint.h>

#include "propensity/status.h"
#include "propensity/types.h"

typedef struct {
    double a, b, c;
} prop_hstat;

typedef struct {
    int32_t n_features;
    int32_t *n_bins;  /* value bins per feature (max code seen + 1, >= 1) */
    int32_t *offset;  /* (n_features + 1) slot offsets */
    int64_t n_slots;  /* offset[n_features] */
} prop_hist_layout;

/* Scan raw codes (n x p) and fill the layout (allocates n_bins, offset). */
prop_status prop_hist_layout_init(prop_hist_layout *L, const uint8_t *codes, int64_t n, int32_t p,
                                  prop_error *err);
void prop_hist_layout_free(prop_hist_layout *L);

/* Slot codes from raw codes: 255 -> n_bins[j]. Returns a malloc'ed n x p
 * array, or NULL when out of memory. *same is set to 1 (and NULL returned,
 * no allocation) when no code needs changing, so the raw codes can be used. */
uint8_t *prop_hist_remap(const prop_hist_layout *L, const uint8_t *codes, int64_t n, int *same);

/* A histogram is n_slots x width doubles: width 3 = (a, b, c) for a forest, width 2 =
 * (gradient, hessian) for boosting (an empty slot is all zero).
 * hist[s] = sum over rows[0..n) of stats[row] for the row's slot s of every
 * feature (overwritten). Sums run over rows in the given order for every slot,
 * and large nodes are summed in fixed row blocks, so the result does not depend on
 * n_threads. Returns 0, or -1 when out of memory. */
int prop_hist_build(const prop_hist_layout *L, const uint8_t *slot_codes, const prop_hstat *stats,
                    const int32_t *rows, int64_t n, double *hist, int width, int n_threads);
/* Plain reference: feature by feature, row by row. */
void prop_hist_build_ref(const prop_hist_layout *L, const uint8_t *slot_codes,
                         const prop_hstat *stats, const int32_t *rows, int64_t n, double *hist,
                         int width);

/* out = parent - child (out may alias parent); slots the child holds entirely are
 * zeroed so rounding residue never looks like mass. */
void prop_hist_subtract(const double *parent, const double *child, double *out, int64_t n_slots,
                        int width);

#endif
