/* fuzz_csv_parse.c - libFuzzer target of the CSV parser (prop_csv_parse).
 *
 * The first bytes of each input choose the parser parameters (delimiter, field
 * count, id field, feature mapping, fill/coerce flags, block mode, max_rows and
 * the length of the field names); the rest is the CSV block. Every input is
 * parsed by the fast parser and by the plain reference parser: both must
 * return the same status and, on success, the same outputs. Any memory error,
 * undefined behaviour or disagreement aborts the run.
 *
 * Then the records that parsed are written back with prop_csv_format, whose
 * output must fit the bound and equal the reference formatter's.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/csvio.h"

#define MAX_FIELDS 80

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

static void check_format(const char *buf, int64_t n, const int64_t *id_span, const uint8_t *X,
                         int64_t nf, uint8_t digits_byte)
{
    if (n == 0)
        return;
    uint8_t *pred = malloc((size_t)n);
    double *proba = malloc((size_t)n * sizeof *proba);
    for (int64_t i = 0; i < n; i++) {
        int64_t s = 0;
        for (int64_t j = 0; j < nf; j++)
            s += X[i * nf + j];
        proba[i] = nf > 0 ? (double)s / (double)nf : 0.5;
        pred[i] = proba[i] >= 0.5;
    }
    prop_csv_format_params fp = {.digits = digits_byte % 17, .timestamp = "2026-01-01T00:00:00",
                                 .timestamp_len = 19, .with_segment = digits_byte >> 7,
                                 .first_row_number = 1};
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
    p.n_features = nfb % 72; /* > 64 exercises the no-keys path */
    int64_t feature_field[72];
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
    uint8_t digits_byte = take(&data, &size);
    /* field names "f0\0f1\0...", possibly cut short */
    char names[MAX_FIELDS * 4];
    int64_t names_len = 0;
    for (int64_t k = 0; k < p.n_fields; k++)
        names_len += snprintf(names + names_len, sizeof names - (size_t)names_len, "f%lld",
                              (long long)k) + 1;
    p.names = names;
    p.names_len = take(&data, &size) % (names_len + 1);
    p.first_line = 2;
    p.first_row = 1;

    /* the block: copied so reads past its end are caught */
    int64_t len = (int64_t)size;
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    int64_t max_rows = prop_csv_max_records(buf, len);
    if (short_rows)
        max_rows /= 2;
    int64_t nf = p.n_features, cap_rows = max_rows > 0 ? max_rows : 1;
    int use_keys = nf <= 64;
    uint8_t *Xa = malloc((size_t)(cap_rows * (nf ? nf : 1))), *Xb = malloc((size_t)(cap_rows * (nf ? nf : 1)));
    int64_t *ida = malloc((size_t)cap_rows * 2 * sizeof(int64_t));
    int64_t *idb = malloc((size_t)cap_rows * 2 * sizeof(int64_t));
    uint64_t *ka = malloc((size_t)cap_rows * sizeof(uint64_t));
    uint64_t *kb = malloc((size_t)cap_rows * sizeof(uint64_t));
    prop_csv_result ra, rb;
    prop_error ea, eb;
    ea.msg[0] = eb.msg[0] = '\0';
    prop_status sa = prop_csv_parse(&p, buf, len, max_rows, Xa, ida, use_keys ? ka : NULL, &ra, &ea);
    prop_status sb = prop_csv_parse_ref(&p, buf, len, max_rows, Xb, idb, use_keys ? kb : NULL, &rb, &eb);
    if (sa != sb) {
        fprintf(stderr, "fast: %d %s\nref:  %d %s\n", sa, ea.msg, sb, eb.msg);
        die("status differs from the reference parser", "");
    }
    if (sa != PROP_OK && (ea.msg[0] == '\0' || memchr(ea.msg, '\0', PROP_ERROR_LEN) == NULL))
        die("failure without a message", "");
    if (sa == PROP_OK) {
        if (ra.n_rows != rb.n_rows || ra.consumed != rb.consumed || ra.n_lines != rb.n_lines ||
            ra.n_coerced != rb.n_coerced || ra.n_filled != rb.n_filled)
            die("result counts differ from the reference parser", "");
        if (ra.n_rows < 0 || ra.n_rows > max_rows || ra.consumed < 0 || ra.consumed > len)
            die("result out of range", "");
        if (nf && memcmp(Xa, Xb, (size_t)(ra.n_rows * nf)) != 0)
            die("X differs from the reference parser", "");
        for (int64_t i = 0; i < ra.n_rows * nf; i++)
            if (Xa[i] > 1)
                die("X holds a value other than 0/1", "");
        if (p.id_field >= 0) {
            if (memcmp(ida, idb, (size_t)ra.n_rows * 2 * sizeof(int64_t)) != 0)
                die("id spans differ from the reference parser", "");
            for (int64_t i = 0; i < ra.n_rows; i++)
                if (ida[2 * i] < 0 || ida[2 * i + 1] < 0 || ida[2 * i] + ida[2 * i + 1] > len)
                    die("id span outside the block", "");
        }
        if (use_keys && memcmp(ka, kb, (size_t)ra.n_rows * sizeof(uint64_t)) != 0)
            die("keys differ from the reference parser", "");
        check_format(buf, ra.n_rows, p.id_field >= 0 ? ida : NULL, Xa, nf, digits_byte);
    }
    free(buf);
    free(Xa);
    free(Xb);
    free(ida);
    free(idb);
    free(ka);
    free(kb);
    return 0;
}
