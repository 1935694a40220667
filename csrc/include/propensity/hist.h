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
 * A random forest's slots hold sums in double: (a, b, c) = (class-0 weight,
 * class-1 weight, rows). Boosting's slots hold packed integer (gradient, hessian)
 * sums, one uint64 per slot (below); its split search reads them decoded into
 * (gradient, hessian) doubles.
 */
#ifndef PROPENSITY_HIST_H
#define PROPENSITY_HIST_H

#include <stdint.h>

#include "propensity/status.h"
#include "propensity/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double a, b, c;
} prop_hstat;

typedef struct {
    int32_t n_features;
    int32_t *n_bins;  /* value bins per feature (max code seen + 1, >= 1) */
    int32_t *offset;  /* (n_features + 1) slot offsets */
    int64_t n_slots;  /* offset[n_features] */
    int64_t n_rows;   /* rows the layout was made from */
    int32_t n_qgroups; /* boosting: feature groups [qgroup[g], qgroup[g+1]) built in turn */
    int32_t *qgroup;
} prop_hist_layout;

/* Scan raw codes (n x p) and fill the layout (allocates n_bins, offset, qgroup). */
prop_status prop_hist_layout_init(prop_hist_layout *L, const uint8_t *codes, int64_t n, int32_t p,
                                  prop_error *err);
void prop_hist_layout_free(prop_hist_layout *L);

/* Slot codes from raw codes: 255 -> n_bins[j]. *out receives a malloc'ed n x p array,
 * or NULL (no allocation) when no code needs changing, so the raw codes can be used. */
prop_status prop_hist_remap(const prop_hist_layout *L, const uint8_t *codes, int64_t n,
                            uint8_t **out, prop_error *err);

/* ---- forest: double histograms --------------------------------------------
 * A forest histogram is n_slots x 3 doubles (a, b, c) (an empty slot is all zero).
 * hist[s] = sum over rows[0..n) of stats[row] for the row's slot s of every
 * feature (overwritten). Sums run over rows in the given order for every slot,
 * and large nodes are summed in fixed row blocks, so the result does not depend on
 * n_threads (1 .. PROP_MAX_THREADS). PROP_NOMEM when the block histograms cannot be
 * allocated. */
prop_status prop_hist_build(const prop_hist_layout *L, const uint8_t *slot_codes,
                            const prop_hstat *stats, const int32_t *rows, int64_t n, double *hist,
                            int n_threads, prop_error *err);
/* Same sums (bit for bit) with "ordered" statistics: ostats[i] belongs to rows[i],
 * so the statistics stream through memory in the node's row order. */
prop_status prop_hist_build_ordered(const prop_hist_layout *L, const uint8_t *slot_codes,
                                    const prop_hstat *ostats, const int32_t *rows, int64_t n,
                                    double *hist, int n_threads, prop_error *err);
/* Plain reference of both kinds, in doubles: feature by feature, row by row;
 * width 3 = (a, b, c), width 2 = (a, b) (the exact sums a boosting histogram
 * approximates). */
void prop_hist_build_ref(const prop_hist_layout *L, const uint8_t *slot_codes,
                         const prop_hstat *stats, const int32_t *rows, int64_t n, double *hist,
                         int width);

/* out = parent - child (out may alias parent), 3 doubles per slot; slots the child
 * holds entirely are zeroed so rounding residue never looks like mass. */
void prop_hist_subtract(const double *parent, const double *child, double *out, int64_t n_slots);

/* ---- boosting: packed integer histograms ----------------------------------
 * Boosting quantises each row's weighted (gradient, hessian) to integers (g, h) with
 * sum |g| < 2^31 and 0 <= sum h < 2^32 over all rows, and packs them in one
 * uint64: g * 2^32 + h. Sums of packed values (wrapping uint64 adds) are the packed
 * sums, so a histogram slot is one integer add per row and feature, subtraction is
 * exact, and sums do not depend on the order or the thread count. A histogram is
 * n_slots uint64. */
static inline uint64_t prop_hist_pack_q(int64_t g, int64_t h)
{
    return ((uint64_t)g << 32) + (uint64_t)h;
}

static inline void prop_hist_unpack_q(uint64_t v, int64_t *g, int64_t *h)
{
    *h = (int64_t)(uint32_t)v;
    *g = (int64_t)(int32_t)(uint32_t)(v >> 32);
}
/* hist = packed sums over rows[0..n) where q[r] is the packed value of row r (read
 * where the row's codes are, so a node's values need no gathered copy), with n_threads
 * (1 .. PROP_MAX_THREADS). PROP_NOMEM when the per-thread histograms cannot be
 * allocated. */
prop_status prop_hist_build_q(const prop_hist_layout *L, const uint8_t *slot_codes,
                              const uint64_t *q, const int32_t *rows, int64_t n, uint64_t *hist,
                              int n_threads, prop_error *err);
/* Plain reference: q indexed by row (q[rows[i]]), feature by feature, unpacked sums. */
void prop_hist_build_q_ref(const prop_hist_layout *L, const uint8_t *slot_codes,
                           const uint64_t *q, const int32_t *rows, int64_t n, uint64_t *hist);
void prop_hist_subtract_q(const uint64_t *parent, const uint64_t *child, uint64_t *out,
                          int64_t n_slots);
/* (gradient, hessian) doubles per slot, g * g_unit and h * h_unit (the width-2
 * layout prop_split_find reads). */
void prop_hist_decode_q(const uint64_t *hist, int64_t n_slots, double g_unit, double h_unit,
                        double *out);

/* ---- boosting: feature bundles --------------------------------------------
 * Features of few slots are bundled (up to 3 consecutive features, at most 64 slot
 * combinations): a row's bundle code is the mixed-radix number of its members' slot
 * codes, and a bundle histogram has one slot per combination, so a histogram build adds
 * once per row and bundle instead of once per row and feature. The features' histogram
 * is the bundle histogram's marginals (prop_hist_marginal_q): integer sums, so it equals
 * the one built feature by feature, bit for bit. layout describes the bundles as
 * features (for prop_hist_build_q on codes, n x n_bundles). */
typedef struct {
    prop_hist_layout layout; /* n_features = the number of bundles */
    uint8_t *codes;          /* n x n_bundles bundle codes */
    int32_t width;           /* members per bundle, at most */
    int32_t *map;            /* layout.n_slots x width: the feature slot a bundle slot adds
                              * to for each member (-1: none) */
} prop_hist_bundles;

/* Bundle the features of L over the n x p slot codes; *made = 0 (and nothing
 * allocated) when bundling would save less than a third of the adds. */
prop_status prop_hist_bundles_init(const prop_hist_layout *L, const uint8_t *slot_codes, int64_t n,
                                  prop_hist_bundles *G, int *made, prop_error *err);
void prop_hist_bundles_free(prop_hist_bundles *G);
/* hist (the L->n_slots feature slots) = the marginals of the bundle histogram gh. */
void prop_hist_marginal_q(const prop_hist_bundles *G, const uint64_t *gh, uint64_t *hist,
                          int64_t n_slots);

#ifdef __cplusplus
}
#endif
#endif
