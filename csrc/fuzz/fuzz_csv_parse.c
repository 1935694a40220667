/* fuzz_csv_parse.c - libFuzzer target of the CSV parser (prop_csv_parse).
 *
 * The first bytes of each input choose the parser parameters (delimiter, field
 * count, id field, feature mapping, fill/coerce flags, block mode, max_rows and
 * the length of the field names) and the schema (flags bit 5: one byte per column
 * picks its kind (binary, numeric, category or native category) and fill, one more per
 * category column its categories; else every
 * column is binary without fill) and the output (flags bits 6-7: natural, double,
 * uint8 or both); the rest is the CSV block. Every input is parsed by the fast
 * parser and by the plain reference parser: both must return the same status, a
 * message naming the same line and, on success, the same outputs and counters,
 * each value in its kind's range. Any memory error, undefined behaviour or
 * disagreement aborts the run.
 *
 * Then the records that parsed are written back with prop_csv_format, whose
 * output must fit the bound and equal the reference formatter's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "propensity/csvio.h"
#include "propensity/schema.h"

#define MAX_FIELDS 80
#define MAX_COLS 72

/* Categories a column may list (a byte mask picks up to 8, from a rotating start). */
static const char *CAT_POOL[16] = {"a", "b", "0", "1", "yes", "", " a", "a,b",
                                   "\"", "1.0", "nan", "x", "ab", "\xff", "A", "\r"};

static const char DELIMS[] = {',', ';', '\t', '|', ' ', '0', '"', '\n'};

static void die(const char *what, const char *msg)
{
    fprintf(stderr, "fuzz_csv_parse: %s (%s)\n", what, msg);
    abort();
}

static uint8_t take(const uint8_t **data, size_t *size)
{
    if (*size == 0)
        return 0;
    uint8_t b = **data;
    (*data)++;
    (*size)--;
    return b;
}

/* The "line L (data row R)" a format error starts with: both parsers name the same. */
static int same_place(const char *a, const char *b)
{
    long long la = -1, ra = -1, lb = -2, rb = -2;
    if (sscanf(a, "line %lld (data row %lld)", &la, &ra) != 2 ||
        sscanf(b, "line %lld (data row %lld)", &lb, &rb) != 2)
        return 0;
    return la == lb && ra == rb;
}

static void check_format(const char *buf, int64_t n, const int64_t *id_span, const uint8_t *X,
                         const double *V, int64_t nf, uint8_t digits_byte)
{
    if (n == 0)
        return;
    uint8_t *pred = malloc((size_t)n);
    double *proba = malloc((size_t)n * sizeof *proba);
    for (int64_t i = 0; i < n; i++) {
        int64_t s = 0;
        for (int64_t j = 0; j < nf; j++)
            s += X != NULL ? X[i * nf + j] : V[i * nf + j] > 0.5;
        proba[i] = nf > 0 ? (double)s / (double)nf : 0.5;
        pred[i] = proba[i] >= 0.5;
    }
    prop_csv_format_params fp = {.digits = digits_byte % 17, .timestamp = "2026-01-01T00:00:00",
                                 .timestamp_len = 19, .with_segment = digits_byte >> 7,
                                 .first_row_number = 1, .n_threads = 1};
    int64_t cap = prop_csv_format_bound(&fp, n, id_span);
    char *a = malloc((size_t)cap + 1), *b = malloc((size_t)cap + 1);
    int64_t wa = -1, wb = -1;
    prop_error ea, eb;
    prop_status sa = prop_csv_format(&fp, n, buf, id_span, pred, proba, a, cap, &wa, &ea);
    prop_status sb = prop_csv_format_ref(&fp, n, buf, id_span, pred, proba, b, cap, &wb, &eb);
    if (sa != sb)
        die("format status differs from the reference", ea.msg);
    if (sa == PROP_OK && (wa != wb || wa > cap || memcmp(a, b, (size_t)wa) != 0))
        die("format output differs from the reference", "");
    if (sa != PROP_OK && fp.digits <= 15)
        die("format failed on valid input", ea.msg);
    free(a);
    free(b);
    free(pred);
    free(proba);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8)
        return 0;
    prop_csv_params p;
    memset(&p, 0, sizeof p);
    uint8_t b0 = take(&data, &size);
    /* mostly valid delimiters; sometimes one the parameter check must refuse */
    p.delimiter = (b0 & 0x80) ? DELIMS[b0 % sizeof DELIMS] : DELIMS[b0 % 5];
    p.n_fields = 1 + take(&data, &size) % MAX_FIELDS;
    p.id_field = (int64_t)(take(&data, &size) % (p.n_fields + 1)) - 1;
    uint8_t nfb = take(&data, &size);
    p.n_features = nfb % MAX_COLS; /* 0: the schema's column count differs (refused) */
    int64_t feature_field[MAX_COLS];
    /* each feature picks a field; a few collisions and the id field are left in on
     * purpose (the parameter check must refuse them) */
    for (int64_t j = 0; j < p.n_features; j++) {
        uint8_t fb = take(&data, &size);
        feature_field[j] = (fb == 255) ? -1 : (int64_t)((j + fb / 16) % p.n_fields);
    }
    p.feature_field = feature_field;
    uint8_t flags = take(&data, &size);
    p.fill_missing = (int)(flags % 3) - 1;
    p.coerce = (flags >> 2) & 1;
    p.final_block = (flags >> 3) & 1;
    int short_rows = (flags >> 4) & 1;
    int mixed = (flags >> 5) & 1;
    int out_mode = flags >> 6; /* 0 natural (X when all binary), 1 V, 2 X, 3 both */
    uint8_t digits_byte = take(&data, &size);
    /* field names "f0\0f1\0...", possibly cut short */
    char names[MAX_FIELDS * 4];
    int64_t names_len = 0;
    for (int64_t k = 0; k < p.n_fields; k++)
        names_len += snprintf(names + names_len, sizeof names - (size_t)names_len, "f%lld",
                              (long long)k) + 1;
    uint8_t nlb = take(&data, &size);
    p.names = names;
    p.names_len = nlb % (names_len + 1);
    p.first_line = 2;
    p.first_row = 1;
    p.n_threads = 1;

    /* the schema: as many columns as features (one when there are none) */
    const int64_t m = p.n_features > 0 ? p.n_features : 1;
    int32_t kind[MAX_COLS];
    double fill[MAX_COLS];
    int64_t ncat[MAX_COLS];
    char cats[MAX_COLS * 9 * 4];
    int64_t cats_len = 0;
    int bad_fill = 0, dup = 0;
    for (int64_t j = 0; j < m; j++) {
        kind[j] = PROP_KIND_BINARY;
        fill[j] = NAN;
        ncat[j] = 0;
        if (!mixed)
            continue;
        uint8_t kb = take(&data, &size);
        kind[j] = kb % 4; /* binary, numeric, category (one-hot codes), native category */
        int f = (kb >> 2) & 3; /* none, 0, 1, or another value */
        if (f == 1 || f == 2)
            fill[j] = (double)(f - 1);
        else if (f == 3)
            fill[j] = kind[j] == PROP_KIND_BINARY ? 0.5 : -2.25; /* refused when binary */
        bad_fill |= f == 3 && kind[j] == PROP_KIND_BINARY;
        if (kind[j] == PROP_KIND_CATEGORY || kind[j] == PROP_KIND_CATEGORY_NATIVE) {
            uint8_t mask = take(&data, &size);
            int first = -1;
            for (int c = 0; c < 8; c++)
                if (mask >> c & 1) {
                    int at = (c + (kb >> 4)) % 16;
                    first = first < 0 ? at : first;
                    size_t n = strlen(CAT_POOL[at]);
                    memcpy(cats + cats_len, CAT_POOL[at], n + 1);
                    cats_len += (int64_t)n + 1;
                    ncat[j]++;
                }
            if (f == 3 && first >= 0) { /* the first category once more: refused */
                size_t n = strlen(CAT_POOL[first]);
                memcpy(cats + cats_len, CAT_POOL[first], n + 1);
                cats_len += (int64_t)n + 1;
                ncat[j]++;
                dup = 1;
            }
        }
    }
    /* column names: the names of the fields they read, possibly cut short like them */
    char cnames[MAX_COLS * 8];
    int64_t cnames_len = 0;
    for (int64_t j = 0; j < m; j++) {
        int64_t f = j < p.n_features ? feature_field[j] : -1;
        cnames_len += (f >= 0 ? snprintf(cnames + cnames_len, 8, "f%lld", (long long)f)
                              : snprintf(cnames + cnames_len, 8, "absent")) + 1;
    }
    cnames_len = nlb % (cnames_len + 1);
    prop_schema_spec spec = {m, kind, fill, cnames, cnames_len, ncat, cats, cats_len};
    prop_schema *S = NULL;
    prop_error es;
    prop_status ss = prop_schema_create(&spec, &S, &es);
    if (bad_fill || dup) {
        if (ss != PROP_INVALID_ARG || S != NULL)
            die("a binary fill of 0.5 or a repeated category was accepted", "");
        if (!bad_fill && strstr(es.msg, "twice") == NULL)
            die("a repeated category refused for another reason", es.msg);
        return 0;
    }
    if (ss != PROP_OK)
        die("schema refused", es.msg);
    p.schema = S;
    const int all_binary = prop_schema_all_binary(S);
    int want_binary = 1;
    for (int64_t j = 0; j < m; j++)
        want_binary &= kind[j] == PROP_KIND_BINARY;
    if (all_binary != want_binary)
        die("all_binary is wrong", "");

    /* the block: copied so reads past its end are caught */
    int64_t len = (int64_t)size;
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    int64_t max_rows = prop_csv_max_records(buf, len);
    if (short_rows)
        max_rows /= 2;
    int64_t nf = p.n_features, cap_rows = max_rows > 0 ? max_rows : 1;
    size_t cells = (size_t)(cap_rows * (nf ? nf : 1));
    int use_x = out_mode == 2 || out_mode == 3 || (out_mode == 0 && all_binary);
    int use_v = out_mode == 1 || out_mode == 3 || (out_mode == 0 && !all_binary);
    uint8_t *Xa = use_x ? malloc(cells) : NULL, *Xb = use_x ? malloc(cells) : NULL;
    double *Va = use_v ? malloc(cells * sizeof(double)) : NULL;
    double *Vb = use_v ? malloc(cells * sizeof(double)) : NULL;
    int64_t *ida = malloc((size_t)cap_rows * 2 * sizeof(int64_t));
    int64_t *idb = malloc((size_t)cap_rows * 2 * sizeof(int64_t));
    prop_csv_result ra, rb;
    prop_error ea, eb;
    ea.msg[0] = eb.msg[0] = '\0';
    prop_status sa = prop_csv_parse(&p, buf, len, max_rows, Xa, Va, ida, &ra, &ea);
    prop_status sb = prop_csv_parse_ref(&p, buf, len, max_rows, Xb, Vb, idb, &rb, &eb);
    if (sa != sb) {
        fprintf(stderr, "fast: %d %s\nref:  %d %s\n", sa, ea.msg, sb, eb.msg);
        die("status differs from the reference parser", "");
    }
    if (sa != PROP_OK && (ea.msg[0] == '\0' || memchr(ea.msg, '\0', PROP_ERROR_LEN) == NULL))
        die("failure without a message", "");
    if (sa == PROP_FORMAT && !same_place(ea.msg, eb.msg)) {
        fprintf(stderr, "fast: %s\nref:  %s\n", ea.msg, eb.msg);
        die("the messages name different places", "");
    }
    /* the output rules: exactly one of X and V, X only for an all-binary schema */
    if (sa == PROP_OK && max_rows > 0 && ((use_x && use_v) || (use_x && !all_binary)))
        die("a wrong output was accepted", "");
    if (sa == PROP_OK) {
        if (ra.n_rows != rb.n_rows || ra.consumed != rb.consumed || ra.n_lines != rb.n_lines ||
            ra.n_coerced != rb.n_coerced || ra.n_filled != rb.n_filled ||
            ra.n_unseen != rb.n_unseen)
            die("result counts differ from the reference parser", "");
        if (ra.n_rows < 0 || ra.n_rows > max_rows || ra.consumed < 0 || ra.consumed > len)
            die("result out of range", "");
        if (ra.n_coerced > 0 && !p.coerce)
            die("values coerced without coerce", "");
        int64_t cells_read = ra.n_rows * nf;
        if (use_x && nf && memcmp(Xa, Xb, (size_t)cells_read) != 0)
            die("X differs from the reference parser", "");
        if (use_v && nf && memcmp(Va, Vb, (size_t)cells_read * sizeof(double)) != 0)
            die("V differs from the reference parser", "");
        for (int64_t i = 0; i < ra.n_rows; i++)
            for (int64_t j = 0; j < nf; j++) {
                double v = use_x ? Xa[i * nf + j] : Va[i * nf + j];
                double absent = prop_schema_absent_value(S, j);
                if (feature_field[j] < 0 && (isnan(absent) ? !isnan(v) : v != absent))
                    die("an absent column does not hold its absent value", "");
                switch (kind[j]) {
                case PROP_KIND_BINARY:
                    if (v != 0.0 && v != 1.0)
                        die("a binary value other than 0/1", "");
                    break;
                case PROP_KIND_NUMERIC:
                    if (!isfinite(v))
                        die("a numeric value that is not finite", "");
                    break;
                case PROP_KIND_CATEGORY_NATIVE: /* a code, "other", or NaN: missing */
                    if (!isnan(v) && v != (double)PROP_SCHEMA_CAT_OTHER &&
                        (v != floor(v) || v < 0.0 || v >= (double)ncat[j]))
                        die("a native category code out of range", "");
                    if (prop_schema_native(S, j) != 1)
                        die("a native category column is not native", "");
                    break;
                default:
                    if (v != floor(v) || v < -1.0 || v >= (double)ncat[j])
                        die("a category code out of range", "");
                    if (prop_schema_native(S, j) != 0)
                        die("a one-hot category column is native", "");
                }
            }
        if (p.id_field >= 0) {
            if (memcmp(ida, idb, (size_t)ra.n_rows * 2 * sizeof(int64_t)) != 0)
                die("id spans differ from the reference parser", "");
            for (int64_t i = 0; i < ra.n_rows; i++)
                if (ida[2 * i] < 0 || ida[2 * i + 1] < 0 || ida[2 * i] + ida[2 * i + 1] > len)
                    die("id span outside the block", "");
        }
        check_format(buf, ra.n_rows, p.id_field >= 0 ? ida : NULL, use_x ? Xa : NULL, Va, nf,
                     digits_byte);
    }
    free(buf);
    free(Xa);
    free(Xb);
    free(Va);
    free(Vb);
    free(ida);
    free(idb);
    prop_schema_free(S);
    return 0;
}
