/* Regression tests of the bugs the fuzz targets (csrc/fuzz/) and the randomised tests
 * found, one test per bug, each replaying the minimised input as a fixed case. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/csvio.h"
#include "propensity/schema.h"

/* A schema of m binary columns without fills (NULL on failure, reported). */
static prop_schema *binary_schema(int64_t m)
{
    int32_t kind[8];
    double fill[8];
    for (int64_t j = 0; j < m && j < 8; j++) {
        kind[j] = PROP_KIND_BINARY;
        fill[j] = NAN;
    }
    prop_schema_spec spec = {m, kind, fill, NULL, 0, NULL, NULL, 0};
    prop_schema *S = NULL;
    prop_error err;
    if (prop_schema_create(&spec, &S, &err) != PROP_OK) {
        fprintf(stderr, "schema: %s\n", err.msg);
        CHECK(0);
    }
    return S;
}

/* buf[0:len] copied into a block of exactly len bytes (reads past it are caught) */
static char *exact_copy(const char *buf, int64_t len)
{
    char *c = malloc(len > 0 ? (size_t)len : 1);
    if (len > 0)
        memcpy(c, buf, (size_t)len);
    return c;
}

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
                                     .first_row_number = 1, .n_threads = 1};
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
    prop_schema *S = binary_schema(4);
    if (S == NULL)
        return;
    const char buf[] = "u1,0,1,1,0\n\"u2,1,1,0,0\n";
    const char *tails[2] = {buf, "u1,0,1,1,0\nu2,1"};
    for (int t = 0; t < 2; t++) {
        prop_csv_params p;
        memset(&p, 0, sizeof p);
        p.delimiter = ',';
        p.n_fields = 5;
        p.id_field = 0;
        p.schema = S;
        p.n_features = 4;
        p.feature_field = ff;
        p.fill_missing = -1;
        p.final_block = 0;
        p.first_line = 2;
        p.first_row = 1;
        p.n_threads = 1;
        int64_t len = (int64_t)strlen(tails[t]);
        uint8_t X[8];
        double V[8];
        int64_t span[4];
        prop_csv_result ra, rb;
        prop_error ea, eb;
        CHECK(prop_csv_parse(&p, tails[t], len, 1, X, NULL, span, &ra, &ea) == PROP_OK);
        CHECK(prop_csv_parse_ref(&p, tails[t], len, 1, X, NULL, span, &rb, &eb) == PROP_OK);
        CHECK(ra.n_rows == 1 && rb.n_rows == 1 && ra.consumed == 11 && rb.consumed == 11);
        CHECK(X[0] == 0 && X[1] == 1 && X[2] == 1 && X[3] == 0);
        /* the same with double output */
        CHECK(prop_csv_parse(&p, tails[t], len, 1, NULL, V, span, &ra, &ea) == PROP_OK);
        CHECK(ra.n_rows == 1 && ra.consumed == 11 && V[1] == 1.0 && V[3] == 0.0);
        /* a complete second record still exceeds max_rows */
        CHECK(prop_csv_parse(&p, "u1,0,1,1,0\nu2,1,1,0,0\n", 22, 1, X, NULL, span, &ra, &ea) ==
              PROP_INVALID_ARG);
        CHECK(prop_csv_parse_ref(&p, "u1,0,1,1,0\nu2,1,1,0,0\n", 22, 1, NULL, V, span, &rb,
                                 &eb) == PROP_INVALID_ARG);
    }
    prop_schema_free(S);
}

/* fuzz_csv_parse: a record of empty fields only ("," in a final block) made the
 * reference parser compute NULL + 0 (its text buffer was never allocated): undefined
 * behaviour that UBSan reports. Both parsers must report the empty cell. */
static void test_ref_all_empty_fields(void)
{
    static const int64_t ff[1] = {1};
    prop_schema *S = binary_schema(1);
    if (S == NULL)
        return;
    prop_csv_params p;
    memset(&p, 0, sizeof p);
    p.delimiter = ',';
    p.n_fields = 2;
    p.id_field = 0;
    p.schema = S;
    p.n_features = 1;
    p.feature_field = ff;
    p.fill_missing = -1;
    p.final_block = 1;
    p.first_line = 2;
    p.first_row = 1;
    p.n_threads = 1;
    uint8_t X[2];
    int64_t span[4];
    prop_csv_result ra, rb;
    prop_error ea, eb;
    char *buf = exact_copy(",", 1);
    CHECK(prop_csv_parse(&p, buf, 1, 2, X, NULL, span, &ra, &ea) == PROP_FORMAT);
    CHECK(prop_csv_parse_ref(&p, buf, 1, 2, X, NULL, span, &rb, &eb) == PROP_FORMAT);
    CHECK(strstr(ea.msg, "empty cell") != NULL && strstr(eb.msg, "empty cell") != NULL);
    p.fill_missing = 0;
    X[0] = 7;
    CHECK(prop_csv_parse_ref(&p, buf, 1, 2, X, NULL, span, &rb, &eb) == PROP_OK);
    CHECK(rb.n_rows == 1 && X[0] == 0 && rb.n_filled == 1);
    X[0] = 7;
    CHECK(prop_csv_parse(&p, buf, 1, 2, X, NULL, span, &ra, &ea) == PROP_OK);
    CHECK(ra.n_rows == 1 && X[0] == 0 && ra.n_filled == 1);
    free(buf);
    prop_schema_free(S);
}

/* test_csvio (random blocks copied to exact-size buffers): the reference parser tested
 * whether a field is quoted by reading its first byte before checking that the field is
 * not empty, so for a trailing delimiter at the very end of a final block ("u1,1,") it
 * read buf[len], one byte past the block (ASan: heap-buffer-overflow). */
static void test_ref_trailing_delimiter_reads_inside(void)
{
    static const int64_t ff[2] = {1, 2};
    const int32_t kind[2] = {PROP_KIND_BINARY, PROP_KIND_CATEGORY};
    const double fill[2] = {NAN, NAN};
    const int64_t ncat[2] = {0, 1};
    prop_schema_spec spec = {2, kind, fill, "a\0c", 4, ncat, "x", 2};
    prop_schema *S = NULL, *B = binary_schema(2);
    prop_error err;
    CHECK(prop_schema_create(&spec, &S, &err) == PROP_OK);
    if (S == NULL || B == NULL) {
        prop_schema_free(S);
        prop_schema_free(B);
        return;
    }
    prop_csv_params p;
    memset(&p, 0, sizeof p);
    p.delimiter = ',';
    p.n_fields = 3;
    p.id_field = 0;
    p.schema = S;
    p.n_features = 2;
    p.feature_field = ff;
    p.fill_missing = 0;
    p.final_block = 1;
    p.first_line = 2;
    p.first_row = 1;
    p.n_threads = 1;
    char *buf = exact_copy("u1,1,", 5);
    double Va[2] = {9, 9}, Vb[2] = {9, 9};
    int64_t sa[2], sb[2];
    prop_csv_result ra, rb;
    prop_error ea, eb;
    CHECK(prop_csv_parse(&p, buf, 5, 2, NULL, Va, sa, &ra, &ea) == PROP_OK);
    CHECK(prop_csv_parse_ref(&p, buf, 5, 2, NULL, Vb, sb, &rb, &eb) == PROP_OK);
    /* the empty category cell: -1, neither unseen nor filled */
    CHECK(ra.n_rows == 1 && rb.n_rows == 1 && Va[0] == 1 && Va[1] == -1 && Vb[0] == 1 &&
          Vb[1] == -1);
    CHECK(ra.n_unseen == 0 && rb.n_unseen == 0 && ra.n_filled == 0 && rb.n_filled == 0);
    /* the same in a binary column: filled by fill_missing */
    p.schema = B;
    uint8_t Xa[2] = {9, 9}, Xb[2] = {9, 9};
    CHECK(prop_csv_parse(&p, buf, 5, 2, Xa, NULL, sa, &ra, &ea) == PROP_OK);
    CHECK(prop_csv_parse_ref(&p, buf, 5, 2, Xb, NULL, sb, &rb, &eb) == PROP_OK);
    CHECK(Xa[0] == 1 && Xa[1] == 0 && Xb[0] == 1 && Xb[1] == 0);
    CHECK(ra.n_filled == 1 && rb.n_filled == 1);
    free(buf);
    prop_schema_free(S);
    prop_schema_free(B);
}

/* test_schema: a category listed twice made prop_schema_create free the schema and then
 * format its message from the freed column name and category copy (use after free). */
static void test_schema_duplicate_category_message(void)
{
    const int32_t kind[1] = {PROP_KIND_CATEGORY};
    const double fill[1] = {NAN};
    const int64_t ncat[1] = {3};
    const char cats[] = "red\0blue\0red";
    prop_schema_spec spec = {1, kind, fill, "colour", 7, ncat, cats, (int64_t)sizeof cats};
    prop_schema *S = NULL;
    prop_error err;
    CHECK(prop_schema_create(&spec, &S, &err) == PROP_INVALID_ARG);
    CHECK(S == NULL);
    CHECK(strcmp(err.msg, "schema: column 'colour' lists the category 'red' twice") == 0);
}

/* fuzz_csv_parse: with '0' (or '1') as the delimiter, the fast parser's shortcut for
 * a one-character 0/1 cell read the delimiter itself as a value, so "0\n" was one
 * field for it and two empty fields for the reference. */
static void test_digit_delimiter(void)
{
    static const int64_t absent[1] = {-1};
    prop_schema *S = binary_schema(1);
    if (S == NULL)
        return;
    prop_csv_params p;
    memset(&p, 0, sizeof p);
    p.delimiter = '0';
    p.n_fields = 1;
    p.id_field = -1;
    p.schema = S;
    p.n_features = 1;
    p.feature_field = absent; /* the one column is not in the file: no value to convert */
    p.fill_missing = -1;
    p.final_block = 0;
    p.first_line = 2;
    p.first_row = 1;
    p.n_threads = 1;
    uint8_t X[2];
    prop_csv_result ra, rb;
    prop_error ea, eb;
    prop_status sa = prop_csv_parse(&p, "0\n", 2, 2, X, NULL, NULL, &ra, &ea);
    prop_status sb = prop_csv_parse_ref(&p, "0\n", 2, 2, X, NULL, NULL, &rb, &eb);
    CHECK(sa == PROP_FORMAT && sb == PROP_FORMAT);
    CHECK(strstr(ea.msg, "found 2") != NULL && strstr(eb.msg, "found 2") != NULL);
    prop_schema_free(S);
}

int main(void)
{
    RUN(test_digit_delimiter);
    RUN(test_ref_all_empty_fields);
    RUN(test_max_rows_ignores_incomplete_tail);
    RUN(test_format_ref_fits_the_bound);
    RUN(test_ref_trailing_delimiter_reads_inside);
    RUN(test_schema_duplicate_category_message);
    return check_summary("fuzz_regressions");
}
