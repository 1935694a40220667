/* fuzz_trees.c - libFuzzer target of the tree-ensemble validator and scoring.
 *
 * The input describes a flat forest (the arrays a model document carries):
 * per tree a node count, then per node a split feature, threshold, children,
 * value and count. Most inputs build structurally valid trees (children after
 * their parent) so that scoring is reached; a corruption byte then damages one
 * field (a child index out of range or pointing backwards, a shared child, a
 * feature outside [0, p), threshold 255, a NaN / negative / infinite value or
 * count, a broken tree_start). prop_forest_validate decides; scoring must agree
 * with it (refuse exactly what it refuses) and, when it accepts, the fast
 * scorer must equal the plain reference bit for bit for every cut (n_trees
 * prefix, max_depth, min_samples_split), averaging mode and thread count, and so
 * must the block scorer (AVX-512 and plain C) wherever the forest allows it (else it
 * is refused). A bad thread count
 * must be refused, and prop_scores_to_proba must map the scores.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/predict.h"

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "fuzz_trees: %s (%s)\n", what, msg);
    abort();
}

typedef struct {
    const uint8_t *d;
    size_t n;
} reader;

static uint8_t rd(reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->d++;
}

#define MAX_TREES 6
#define MAX_NODES 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6)
        return 0;
    reader r = {data, size};
    int64_t n_trees = rd(&r) % (MAX_TREES + 1);
    int32_t p = 1 + rd(&r) % 8;
    uint8_t corrupt = rd(&r);

    int64_t tree_start[MAX_TREES + 1];
    int32_t feature[MAX_TREES * MAX_NODES], left[MAX_TREES * MAX_NODES],
        right[MAX_TREES * MAX_NODES];
    uint8_t threshold[MAX_TREES * MAX_NODES];
    double value[MAX_TREES * MAX_NODES], count[MAX_TREES * MAX_NODES],
        gain[MAX_TREES * MAX_NODES];
    int64_t n_nodes = 0;
    tree_start[0] = 0;
    for (int64_t t = 0; t < n_trees; t++) {
        /* a valid binary tree in pre-order-ish layout: node k splits into the next
         * two free slots while the budget lasts */
        int32_t m = 1 + rd(&r) % MAX_NODES;
        if (m % 2 == 0)
            m--; /* full binary trees have an odd node count */
        int32_t next = 1;
        for (int32_t k = 0; k < m; k++) {
            int64_t i = n_nodes + k;
            uint8_t b = rd(&r);
            if (next + 2 <= m && (b & 1) == 0 && k < next) {
                left[i] = next;
                right[i] = next + 1;
                next += 2;
            } else {
                left[i] = right[i] = -1;
            }
            feature[i] = (int32_t)(b >> 1) % p;
            threshold[i] = rd(&r) % 40;
            value[i] = ((double)(int8_t)rd(&r)) / 16.0;
            count[i] = (double)(rd(&r) % 50);
            gain[i] = (double)(b % 7);
        }
        /* nodes never reached (next < m) are still valid leaves */
        n_nodes += m;
        tree_start[t + 1] = n_nodes;
    }
    if (n_nodes > 0 && (corrupt & 0x80)) {
        int64_t i = (int64_t)rd(&r) % n_nodes;
        switch (corrupt % 12) {
        case 0: left[i] = (int32_t)(int8_t)rd(&r); break;
        case 1: right[i] = MAX_NODES * 4 + rd(&r); break;
        case 2: feature[i] = (corrupt & 1) ? -1 - rd(&r) : p + rd(&r); break;
        case 3: threshold[i] = 255; break;
        case 4: value[i] = (corrupt & 1) ? NAN : INFINITY; break;
        case 5: count[i] = (corrupt & 1) ? -1.0 : NAN; break;
        case 6: if (n_trees > 1) tree_start[1] = tree_start[2] + 1; break;
        case 7: tree_start[n_trees] = n_nodes + 1; break;
        case 8: left[i] = right[i]; break;              /* l == r */
        case 9: left[i] = 0; right[i] = 1; break;       /* backwards child */
        case 10: if (left[i] >= 0 && i + 1 < n_nodes) { left[i + 1] = left[i]; right[i + 1] = right[i]; } break;
        default: tree_start[0] = -1; break;
        }
    }
    prop_forest_view v = {.n_trees = n_trees, .tree_start = tree_start, .n_nodes = n_nodes,
                          .feature = feature, .threshold = threshold, .left = left,
                          .right = right, .value = value, .count = count, .gain = gain,
                          .n_features = p};
    prop_error err;
    prop_status vs = prop_forest_validate(&v, &err);
    if (vs != PROP_OK && vs != PROP_FORMAT)
        die("validate returned an unexpected status", err.msg);

    /* rows of codes: the rest of the input (255 = missing) */
    int64_t n = (int64_t)(r.n / (size_t)p);
    if (n > 4096)
        n = 4096;
    uint8_t *codes = malloc((size_t)(n * p) + 1);
    memcpy(codes, r.d, (size_t)(n * p));
    double *a = malloc((size_t)(n + 1) * sizeof(double)), *b = malloc((size_t)(n + 1) * sizeof(double));
    uint8_t pb = size > 3 ? data[3] : 0;
    prop_score_params sp = {.n_trees = (pb & 3) == 0 ? 0 : (int64_t)(pb % (MAX_TREES + 2)),
                            .max_depth = (pb >> 2) & 3 ? (int32_t)((pb >> 2) & 7) : 0,
                            .min_samples_split = (pb >> 5) & 1 ? 10.0 : 0.0,
                            .average = (pb >> 6) & 1, .base = -0.25,
                            .n_threads = 1 + ((pb >> 7) & 1)};
    prop_error ea, eb;
    prop_status sa = prop_forest_score(&v, &sp, codes, n, p, a, &ea);
    prop_status sb = prop_forest_score_ref(&v, &sp, codes, n, p, b, &eb);
    if (vs != PROP_OK) {
        if (sa == PROP_OK || sb == PROP_OK)
            die("scoring accepted a forest the validator refused", err.msg);
    } else if (sa != sb) {
        die("score status differs from the reference", ea.msg);
    } else if (sa == PROP_OK) {
        if (memcmp(a, b, (size_t)n * sizeof(double)) != 0)
            die("scores differ from the reference", "");
        /* the block scorer (both forms) when the forest allows it, else a refusal */
        for (int kernel = PROP_SCORE_BLOCK; kernel <= PROP_SCORE_BLOCK_PLAIN; kernel++) {
            prop_score_params sk = sp;
            sk.kernel = kernel;
            prop_status sc = prop_forest_score(&v, &sk, codes, n, p, a, &ea);
            if (prop_forest_block_ok(&v, &sp)) {
                if (sc != PROP_OK || memcmp(a, b, (size_t)n * sizeof(double)) != 0)
                    die("the block scorer differs from the reference", ea.msg);
            } else if (sc != PROP_INVALID_ARG) {
                die("the block scorer took a forest too deep for it", ea.msg);
            }
        }
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(a[i]))
                die("non-finite score", "");
        if (n_trees > 0) {
            int64_t nt = sp.n_trees > 0 && sp.n_trees < n_trees ? sp.n_trees : n_trees;
            double *gains = malloc((size_t)(nt * p) * sizeof(double));
            prop_status sg = prop_forest_gains(&v, &sp, gains, &err);
            if (sg == PROP_OK)
                for (int64_t i = 0; i < nt * p; i++)
                    if (!(gains[i] >= 0.0))
                        die("negative or NaN gain", "");
            free(gains);
        }
    }
    /* wrong width must be refused */
    if (vs == PROP_OK && prop_forest_score(&v, &sp, codes, n, p + 1, a, &ea) == PROP_OK)
        die("scoring accepted a code matrix of the wrong width", "");
    /* a thread count outside 1..PROP_MAX_THREADS must be refused, not clamped */
    prop_score_params bad = sp;
    bad.n_threads = (pb & 1) ? 0 : PROP_MAX_THREADS + 1;
    if (prop_forest_score(&v, &bad, codes, n, p, a, &ea) != PROP_INVALID_ARG ||
        prop_forest_score_ref(&v, &bad, codes, n, p, a, &ea) != PROP_INVALID_ARG)
        die("scoring accepted a bad thread count", ea.msg);
    /* probabilities of accepted scores: (1 - s, s), or the logistic function of s */
    if (vs == PROP_OK && sa == PROP_OK && n > 0) {
        double *pr = malloc((size_t)n * 2 * sizeof(double));
        if (prop_scores_to_proba(b, n, NULL, n, !sp.average, pr, 2, &ea) != PROP_OK)
            die("probabilities failed", ea.msg);
        for (int64_t i = 0; i < n; i++) {
            double q = sp.average ? b[i] : 1.0 / (1.0 + exp(-b[i]));
            if (pr[2 * i + 1] != q || pr[2 * i] != 1.0 - q)
                die("probabilities differ from the scores", "");
        }
        free(pr);
    }

    free(codes);
    free(a);
    free(b);
    return 0;
}
