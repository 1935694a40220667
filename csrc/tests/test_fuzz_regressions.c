/* Regression tests of the bugs the fuzz targets (csrc/fuzz/) found, one test per bug,
 * each replaying the minimised input as a fixed case. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/csvio.h"

/* fuzz_csv_parse: the reference formatter demanded 8 bytes more than
 * prop_csv_format_bound for the last row (it reserved a segment on every row),
 * so it failed with "output capacity is too small" where the fast one succeeded. */
static void test_format_ref_fits_the_bound(void)
{
    const char ids[] = "u1";
    const int64_t span[2] = {0, 2};
    const uint8_t pred[1] = {0};
    const double proba[1] = {0.25};
    for (int seg = 0; seg <= 1; seg++) {
        prop_csv_format_params fp = {.digits = 5, .timestamp = "2026-01-01T00:00:00",
                                     .timestamp_len = 19, .with_segment = seg,
                                     .first_row_number = 1};
        int64_t cap = prop_csv_format_bound(&fp, 1, span);
        char a[128], b[128];
        int64_t wa = -1, wb = -1;
        prop_error ea, eb;
        CHECK(prop_csv_format(&fp, 1, ids, span, pred, proba, a, cap, &wa, &ea) == PROP_OK);
        CHECK(prop_csv_format_ref(&fp, 1, ids, span, pred, proba, b, cap, &wb, &eb) == PROP_OK);
        CHECK(wa == wb && wa <= cap && memcmp(a, b, (size_t)wa) == 0);
        /* and without ids */
        cap = prop_csv_format_bound(&fp, 1, NULL);
        CHECK(prop_csv_format_ref(&fp, 1, NULL, NULL, pred, proba, b, cap, &wb, &eb) == PROP_OK);
    }
}

/* fuzz_csv_parse: with max_rows = the complete records of a non-final block, an
 * incomplete record after them made the fast parser fail with "more than max_rows"
 * while the reference (rightly) stopped before it and returned the complete rows. */
static void test_max_rows_ignores_incomplete_tail(void)
{
    static const int64_t ff[4] = {1, 2, 3, 4};
    const char buf[] = "u1,0,1,1,0\n\"u2,1,1,0,0\n";
    const char *tails[2] = {buf, "u1,0,1,1,0\nu2,1"};
    for (int t = 0; t < 2; t++) {
        prop_csv_params p;
        memset(&p, 0, sizeof p);
        p.delimiter = ',';
        p.n_fields = 5;
        p.id_field = 0;
        p.n_features = 4;
        p.feature_field = ff;
        p.fill_missing = -1;
        p.final_block = 0;
        p.first_line = 2;
        p.first_row = 1;
        int64_t len = (int64_t)strlen(tails[t]);
        uint8_t X[8];
        int64_t span[4];
        prop_csv_result ra, rb;
        prop_error ea, eb;
        CHECK(prop_csv_parse(&p, tails[t], len, 1, X, span, NULL, &ra, &ea) == PROP_OK);
        CHECK(prop_csv_parse_ref(&p, tails[t], len, 1, X, span, NULL, &rb, &eb) == PROP_OK);
        CHECK(ra.n_rows == 1 && rb.n_rows == 1 && ra.consumed == 11 && rb.consumed == 11);
        /* a complete second record still exceeds max_rows */
        CHECK(prop_csv_parse(&p, "u1,0,1,1,0\nu2,1,1,0,0\n", 22, 1, X, span, NULL, &ra, &ea) ==
              PROP_INVALID_ARG);
    }
}

/* fuzz_csv_parse: a record of empty fields only ("," in a final block) made the
 * reference parser compute NULL + 0 (its text buffer was never allocated): undefined
 * behaviour that UBSan reports. Both parsers must report the empty cell. */
static void test_ref_all_empty_fields(void)
{
    static const int64_t ff[1] = {1};
    prop_csv_params p;
    memset(&p, 0, sizeof p);
    p.delimiter = ',';
    p.n_fields = 2;
    p.id_field = 0;
    p.n_features = 1;
    p.feature_field = ff;
    p.fill_missing = -1;
    p.final_block = 1;
    p.first_line = 2;
    p.first_row = 1;
    uint8_t X[2];
    int64_t span[4];
    prop_csv_result ra, rb;
    prop_error ea, eb;
    CHECK(prop_csv_parse(&p, ",", 1, 2, X, span, NULL, &ra, &ea) == PROP_FORMAT);
    CHECK(prop_csv_parse_ref(&p, ",", 1, 2, X, span, NULL, &rb, &eb) == PROP_FORMAT);
    p.fill_missing = 0;
    CHECK(prop_csv_parse_ref(&p, ",", 1, 2, X, span, NULL, &rb, &eb) == PROP_OK);
    CHECK(rb.n_rows == 1 && X[0] == 0 && rb.n_filled == 1);
}

/* fuzz_csv_parse: with '0' (or '1') as the delimiter, the fast parser's shortcut for
 * a one-character 0/1 cell read the delimiter itself as a value, so "0\n" was one
 * field for it and two empty fields for the reference. */
static void test_digit_delimiter(void)
{
    prop_csv_params p;
    memset(&p, 0, sizeof p);
    p.delimiter = '0';
    p.n_fields = 1;
    p.id_field = -1;
    p.fill_missing = -1;
    p.final_block = 0;
    p.first_line = 2;
    p.first_row = 1;
    uint8_t X[1];
    prop_csv_result ra, rb;
    prop_error ea, eb;
    prop_status sa = prop_csv_parse(&p, "0\n", 2, 2, X, NULL, NULL, &ra, &ea);
    prop_status sb = prop_csv_parse_ref(&p, "0\n", 2, 2, X, NULL, NULL, &rb, &eb);
    CHECK(sa == PROP_FORMAT && sb == PROP_FORMAT);
}

int main(void)
{
    RUN(test_digit_delimiter);
    RUN(test_ref_all_empty_fields);
    RUN(test_max_rows_ignores_incomplete_tail);
    RUN(test_format_ref_fits_the_bound);
    return check_summary("fuzz_regressions");
}
