/* Tests of the CSV kernels: fixed cases (binary and mixed schemas), block splitting, and
 * the fast parser and formatter against their plain reference versions on random input
 * and random schemas. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/csvio.h"

/* Header of the fixed cases: UserID,a,b,ordered ; model columns: b, a, z (absent), all
 * binary. */
static const int64_t FF[3] = {2, 1, -1};
static const char NAMES[] = "UserID\0a\0b\0ordered";
static const char BIN_NAMES[] = "b\0a\0z";
static prop_schema *BIN3; /* the binary schema b, a, z without fills (made in main) */

#define MAXF 8    /* schema columns at most */
#define MAXROWS 64

static prop_schema *schema_of(int64_t m, const int32_t *kind, const double *fill,
                              const char *names, int64_t names_len, const int64_t *ncat,
                              const char *cats, int64_t cats_len)
{
    prop_schema_spec spec = {m, kind, fill, names, names_len, ncat, cats, cats_len};
    prop_schema *S = NULL;
    prop_error err;
    if (prop_schema_create(&spec, &S, &err) != PROP_OK) {
        fprintf(stderr, "schema: %s\n", err.msg);
        CHECK(0);
    }
    return S;
}

/* The binary schema b, a, z with the given fills (NULL: none). */
static prop_schema *binary_schema(const double *fill)
{
    const int32_t kind[3] = {PROP_KIND_BINARY, PROP_KIND_BINARY, PROP_KIND_BINARY};
    const double none[3] = {NAN, NAN, NAN};
    return schema_of(3, kind, fill ? fill : none, BIN_NAMES, (int64_t)sizeof BIN_NAMES, NULL,
                     NULL, 0);
}

static prop_csv_params params_for(const prop_schema *S, const int64_t *ff, int64_t n_fields,
                                  int final)
{
    prop_csv_params p;
    memset(&p, 0, sizeof p);
    p.delimiter = ',';
    p.n_fields = n_fields;
    p.id_field = 0;
    p.schema = S;
    p.n_features = S != NULL ? prop_schema_n_columns(S) : 0;
    p.feature_field = ff;
    p.names = NAMES;
    p.names_len = (int64_t)sizeof NAMES;
    p.fill_missing = -1;
    p.final_block = final;
    p.first_line = 2;
    p.first_row = 1;
    p.n_threads = 1;
    return p;
}

static prop_csv_params params(int final) { return params_for(BIN3, FF, 4, final); }

enum { OUT_X = 0, OUT_V = 1 };

typedef struct {
    prop_status st;
    prop_csv_result res;
    int out;
    uint8_t X[MAXF * MAXROWS];
    double V[MAXF * MAXROWS];
    int64_t span[2 * MAXROWS];
    prop_error err;
} parsed;

/* Parse a copy of buf[0:len] in a block of exactly len bytes, so that the sanitizer
 * build catches a read past the end of the block. */
static void run(const prop_csv_params *p, const char *buf, int64_t len, int ref, int out,
                parsed *o)
{
    memset(o, 0, sizeof *o);
    o->out = out;
    char *copy = malloc(len > 0 ? (size_t)len : 1);
    if (len > 0)
        memcpy(copy, buf, (size_t)len);
    o->st = (ref ? prop_csv_parse_ref : prop_csv_parse)(p, copy, len, MAXROWS,
                                                        out == OUT_X ? o->X : NULL,
                                                        out == OUT_V ? o->V : NULL, o->span,
                                                        &o->res, &o->err);
    free(copy);
}

/* value of output cell i (row-major) whichever output was used */
static double val(const parsed *o, int64_t i) { return o->out == OUT_X ? o->X[i] : o->V[i]; }

static int row_is(const parsed *o, int64_t nf, int64_t i, const double *want)
{
    for (int64_t j = 0; j < nf; j++)
        if (val(o, i * nf + j) != want[j]) {
            fprintf(stderr, "row %lld column %lld: %g, wanted %g\n", (long long)i, (long long)j,
                    val(o, i * nf + j), want[j]);
            return 0;
        }
    return 1;
}

static int id_is(const char *buf, const parsed *o, int64_t i, const char *want)
{
    return o->span[2 * i + 1] == (int64_t)strlen(want) &&
           memcmp(buf + o->span[2 * i], want, strlen(want)) == 0;
}

static void test_basic_rows(void)
{
    const char *csv = "007,1,0,0\r\n\n\"a,\"\"b\"\"\nc\",0,\"1\",0\nx, 1 ,1.0,1";
    prop_csv_params p = params(1);
    for (int ref = 0; ref < 2; ref++) {
        for (int out = OUT_X; out <= OUT_V; out++) {
            parsed o;
            run(&p, csv, (int64_t)strlen(csv), ref, out, &o);
            CHECK(o.st == PROP_OK);
            CHECK(o.res.n_rows == 3);
            CHECK(o.res.consumed == (int64_t)strlen(csv));
            CHECK(o.res.n_lines == 4);
            CHECK(o.res.n_filled == 0 && o.res.n_coerced == 0 && o.res.n_unseen == 0);
            /* columns b, a, z */
            CHECK(row_is(&o, 3, 0, (double[]){0, 1, 0}));
            CHECK(row_is(&o, 3, 1, (double[]){1, 0, 0}));
            CHECK(row_is(&o, 3, 2, (double[]){1, 1, 0}));
            CHECK(id_is(csv, &o, 0, "007"));
            CHECK(id_is(csv, &o, 1, "\"a,\"\"b\"\"\nc\""));
            CHECK(id_is(csv, &o, 2, "x"));
        }
    }
}

static void expect_error_out(prop_csv_params p, const char *csv, int out, const char *a,
                             const char *b)
{
    for (int ref = 0; ref < 2; ref++) {
        parsed o;
        run(&p, csv, (int64_t)strlen(csv), ref, out, &o);
        CHECK(o.st == PROP_FORMAT);
        if (strstr(o.err.msg, a) == NULL || (b && strstr(o.err.msg, b) == NULL)) {
            fprintf(stderr, "message: %s (wanted %s / %s)\n", o.err.msg, a, b ? b : "");
            CHECK(0);
        }
    }
}

static void expect_error(prop_csv_params p, const char *csv, const char *a, const char *b)
{
    expect_error_out(p, csv, OUT_X, a, b);
    expect_error_out(p, csv, OUT_V, a, b);
}

static void test_errors_name_line_column_value(void)
{
    expect_error(params(1), "u1,0,1,0\nu2,0,2,0\n", "line 3 (data row 2), column 'b'",
                 "'2' is not 0 or 1 (coerce=True");
    expect_error(params(1), "u1,0,1,0\nu2,maybe,1,0\n", "line 3 (data row 2), column 'a'",
                 "'maybe' is not 0 or 1 (this column holds 0/1; true/false");
    expect_error(params(1), "u1,0,1,0\nu2,0,1.5,0\n", "column 'b': value '1.5' is not 0 or 1",
                 NULL);
    expect_error(params(1), "u1,0,1,0\nu2,,1,0\n", "line 3 (data row 2), column 'a': empty", NULL);
    expect_error(params(1), "u1,0,1,0\nu2,nan,1,0\n", "line 3 (data row 2), column 'a': empty",
                 NULL);
    expect_error(params(1), "u1,0,1,0\nu2,0,1\n", "line 3 (data row 2): expected 4 fields",
                 "found 3");
    expect_error(params(1), "u1,0,1,0\nu2,0,1,0,9\n", "expected 4 fields", "found 5");
    expect_error(params(1), "u1,0,1,0\nu2,0,1", "truncated last line", "line 3");
    expect_error(params(1), "u1,0,1,0\n\"u2,0,1,0\n", "line 3 (data row 2): quoted field",
                 NULL);
    prop_csv_params p = params(1);
    p.first_line = 10;
    p.first_row = 5;
    expect_error(p, "u1,0,1,0\n\"u\n2\",0,1,0\nu3,0,-1,0\n", "line 13 (data row 7)", "'-1'");
    /* an error in a field the model does not read is no error */
    for (int ref = 0; ref < 2; ref++) {
        parsed o;
        run(&p, "u1,0,1,junk\n", 12, ref, OUT_X, &o);
        CHECK(o.st == PROP_OK && o.res.n_rows == 1);
    }
}

/* true/false words are 1/0 in a binary column (they used to be refused) */
static void test_binary_words_accepted(void)
{
    prop_csv_params p = params(1);
    const char *csv = "u1,0,1,0\nu2,yes,1,0\nu3,TRUE, no ,0\nu4,f,Y,0\nu5,\"yes\",\"N\",0\n"
                      "u6,\tFalse\t,t,0\nu7,1e0,0.0,0\n";
    for (int ref = 0; ref < 2; ref++)
        for (int out = OUT_X; out <= OUT_V; out++) {
            parsed o;
            run(&p, csv, (int64_t)strlen(csv), ref, out, &o);
            CHECK(o.st == PROP_OK && o.res.n_rows == 7);
            CHECK(o.res.n_coerced == 0 && o.res.n_filled == 0);
            /* columns b, a, z */
            CHECK(row_is(&o, 3, 0, (double[]){1, 0, 0}));
            CHECK(row_is(&o, 3, 1, (double[]){1, 1, 0}));
            CHECK(row_is(&o, 3, 2, (double[]){0, 1, 0}));
            CHECK(row_is(&o, 3, 3, (double[]){1, 0, 0}));
            CHECK(row_is(&o, 3, 4, (double[]){0, 1, 0}));
            CHECK(row_is(&o, 3, 5, (double[]){1, 0, 0}));
            CHECK(row_is(&o, 3, 6, (double[]){0, 1, 0}));
        }
    /* but not other words, nor with coerce */
    p.coerce = 1;
    expect_error(p, "u1,0,1,0\nu2,maybe,1,0\n", "line 3 (data row 2), column 'a'",
                 "'maybe' is not 0 or 1");
    expect_error(p, "u1,yes!,1,0\n", "line 2 (data row 1), column 'a': value 'yes!' is not 0 "
                 "or 1", NULL);
}

static void test_fill_missing_and_coerce(void)
{
    prop_csv_params p = params(1);
    p.fill_missing = 0;
    p.coerce = 1;
    const char *csv = "u1,,2,0\nu2,0.7,-3,0\nu3,NaN,0.2,0\n";
    for (int ref = 0; ref < 2; ref++)
        for (int out = OUT_X; out <= OUT_V; out++) {
            parsed o;
            run(&p, csv, (int64_t)strlen(csv), ref, out, &o);
            CHECK(o.st == PROP_OK);
            CHECK(o.res.n_rows == 3);
            CHECK(o.res.n_filled == 2);
            CHECK(o.res.n_coerced == 4);
            CHECK(o.res.n_unseen == 0);
            CHECK(row_is(&o, 3, 0, (double[]){1, 0, 0}));
            CHECK(row_is(&o, 3, 1, (double[]){0, 1, 0}));
            CHECK(row_is(&o, 3, 2, (double[]){0, 0, 0}));
        }
    /* the schema's fills: b fill 1 (over fill_missing), z absent with fill 1 */
    prop_schema *S = binary_schema((const double[]){1.0, NAN, 1.0});
    if (S == NULL)
        return;
    p = params_for(S, FF, 4, 1);
    p.fill_missing = 0;
    const char *csv2 = "u1,,,0\nu2,1,0,0\nu3,nan, nan ,1\n";
    for (int ref = 0; ref < 2; ref++)
        for (int out = OUT_X; out <= OUT_V; out++) {
            parsed o;
            run(&p, csv2, (int64_t)strlen(csv2), ref, out, &o);
            CHECK(o.st == PROP_OK && o.res.n_rows == 3);
            CHECK(o.res.n_filled == 4 && o.res.n_coerced == 0);
            CHECK(row_is(&o, 3, 0, (double[]){1, 0, 1}));
            CHECK(row_is(&o, 3, 1, (double[]){0, 1, 1}));
            CHECK(row_is(&o, 3, 2, (double[]){1, 0, 1}));
        }
    /* without fill_missing, only a's empty cell is an error */
    p.fill_missing = -1;
    expect_error(p, "u1,1,,0\nu2,,1,0\n", "line 3 (data row 2), column 'a': empty cell", NULL);
    prop_schema_free(S);
}

/* Header id,age,color,flag,other ; model columns age (numeric, fill 30), color (category
 * red/green/1), flag (binary), and absent: score (numeric, fill 2.5), region (category),
 * hasx (binary, fill 1). */
static const int64_t MIXED_FF[6] = {1, 2, 3, -1, -1, -1};
static const char MIXED_NAMES[] = "age\0color\0flag\0score\0region\0hasx";

static prop_schema *mixed_schema(double age_fill)
{
    const int32_t kind[6] = {PROP_KIND_NUMERIC, PROP_KIND_CATEGORY, PROP_KIND_BINARY,
                             PROP_KIND_NUMERIC, PROP_KIND_CATEGORY, PROP_KIND_BINARY};
    const double fill[6] = {age_fill, NAN, NAN, 2.5, NAN, 1.0};
    const int64_t ncat[6] = {0, 3, 0, 0, 1, 0};
    static const char cats[] = "red\0green\0" "1\0" "north";
    return schema_of(6, kind, fill, MIXED_NAMES, (int64_t)sizeof MIXED_NAMES, ncat, cats,
                     (int64_t)sizeof cats);
}

static const char MIXED_CSV[] = "u1,41.5,green,yes,zz\nu2,,purple,0,\n\"u3\",1e2,\"red\",1,q\n"
                                "u4, 7 ,,n,\r\nu5,-0.25,1,1,x\nu6,0,\"1\",t,0";

static void test_mixed_schema(void)
{
    prop_schema *S = mixed_schema(30.0);
    if (S == NULL)
        return;
    CHECK(!prop_schema_all_binary(S));
    prop_csv_params p = params_for(S, MIXED_FF, 5, 1);
    const int64_t len = (int64_t)strlen(MIXED_CSV);
    for (int ref = 0; ref < 2; ref++) {
        parsed o;
        run(&p, MIXED_CSV, len, ref, OUT_V, &o);
        CHECK(o.st == PROP_OK);
        if (o.st != PROP_OK)
            fprintf(stderr, "mixed: %s\n", o.err.msg);
        CHECK(o.res.n_rows == 6 && o.res.consumed == len && o.res.n_lines == 5);
        CHECK(o.res.n_filled == 1 && o.res.n_unseen == 1 && o.res.n_coerced == 0);
        CHECK(row_is(&o, 6, 0, (double[]){41.5, 1, 1, 2.5, -1, 1}));
        CHECK(row_is(&o, 6, 1, (double[]){30, -1, 0, 2.5, -1, 1}));
        CHECK(row_is(&o, 6, 2, (double[]){100, 0, 1, 2.5, -1, 1}));
        CHECK(row_is(&o, 6, 3, (double[]){7, -1, 0, 2.5, -1, 1}));
        /* the category "1" is a name, not the number 1 (no 0/1 shortcut) */
        CHECK(row_is(&o, 6, 4, (double[]){-0.25, 2, 1, 2.5, -1, 1}));
        CHECK(row_is(&o, 6, 5, (double[]){0, 2, 1, 2.5, -1, 1}));
        CHECK(id_is(MIXED_CSV, &o, 2, "\"u3\""));
        /* uint8 output needs an all-binary schema */
        run(&p, MIXED_CSV, len, ref, OUT_X, &o);
        CHECK(o.st == PROP_INVALID_ARG && strstr(o.err.msg, "all-binary") != NULL);
    }
    /* exactly one of X and V */
    uint8_t X[8 * 6];
    double V[8 * 6];
    prop_csv_result res;
    prop_error err;
    CHECK(prop_csv_parse(&p, MIXED_CSV, len, 8, NULL, NULL, NULL, &res, &err) ==
          PROP_INVALID_ARG);
    CHECK(prop_csv_parse_ref(&p, MIXED_CSV, len, 8, X, V, NULL, &res, &err) ==
          PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "exactly one of X and V") != NULL);
    prop_csv_params pb = params(1);
    CHECK(prop_csv_parse(&pb, "u,0,1,0\n", 8, 8, X, V, NULL, &res, &err) == PROP_INVALID_ARG);
    CHECK(prop_csv_parse(&pb, "u,0,1,0\n", 8, 8, NULL, NULL, NULL, &res, &err) ==
          PROP_INVALID_ARG);
    /* the messages of each kind, with the place in front */
    expect_error_out(p, "u1,abc,red,1,x\n", OUT_V,
                     "line 2 (data row 1), column 'age': value 'abc' is not a number", NULL);
    expect_error_out(p, "u1,2,red,1,x\nu2,-inf,red,1,x\n", OUT_V,
                     "line 3 (data row 2), column 'age': value '-inf' is infinite", NULL);
    expect_error_out(p, "u1,5,red,2,x\n", OUT_V,
                     "line 2 (data row 1), column 'flag': value '2' is not 0 or 1", NULL);
    expect_error_out(p, "u1,5,red,,x\n", OUT_V,
                     "line 2 (data row 1), column 'flag': empty cell", NULL);
    expect_error_out(p, "u1,5,red,1\n", OUT_V, "expected 5 fields", "found 4");
    /* fill_missing fills the binary column only; coerce clips only binary numbers */
    p.fill_missing = 1;
    p.coerce = 1;
    const char *csv = "u1,5,red,,x\nu2,0.7,blue,0.7,x\nu3,,,-2,\n";
    for (int ref = 0; ref < 2; ref++) {
        parsed o;
        run(&p, csv, (int64_t)strlen(csv), ref, OUT_V, &o);
        CHECK(o.st == PROP_OK && o.res.n_rows == 3);
        CHECK(o.res.n_filled == 2 && o.res.n_coerced == 2 && o.res.n_unseen == 1);
        CHECK(row_is(&o, 6, 0, (double[]){5, 0, 1, 2.5, -1, 1}));
        CHECK(row_is(&o, 6, 1, (double[]){0.7, -1, 1, 2.5, -1, 1}));
        CHECK(row_is(&o, 6, 2, (double[]){30, -1, 0, 2.5, -1, 1}));
    }
    prop_schema_free(S);
    /* a numeric column without fill: an empty cell is an error, fill_missing or not */
    S = mixed_schema(NAN);
    if (S == NULL)
        return;
    p = params_for(S, MIXED_FF, 5, 1);
    p.fill_missing = 0;
    expect_error_out(p, "u1,1,red,1,x\nu2,,red,1,x\n", OUT_V,
                     "line 3 (data row 2), column 'age': empty cell", NULL);
    expect_error_out(p, "u1,nan,red,1,x\n", OUT_V, "column 'age': empty cell", NULL);
    prop_schema_free(S);
}

static void test_bad_params(void)
{
    prop_csv_params p = params(1);
    prop_error err;
    int64_t ff[3] = {1, 1, -1};
    p.feature_field = ff;
    CHECK(prop_csv_check_params(&p, &err) == PROP_INVALID_ARG);
    p = params(1);
    p.id_field = 4;
    CHECK(prop_csv_check_params(&p, &err) == PROP_INVALID_ARG);
    p = params(1);
    p.delimiter = '"';
    CHECK(prop_csv_check_params(&p, &err) == PROP_INVALID_ARG);
    /* the schema is required and must have n_features columns */
    p = params(1);
    p.schema = NULL;
    CHECK(prop_csv_check_params(&p, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "no schema") != NULL);
    p = params(1);
    p.n_features = 2;
    CHECK(prop_csv_check_params(&p, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "differs from the schema") != NULL);
    p = params(1);
    p.fill_missing = 2;
    CHECK(prop_csv_check_params(&p, &err) == PROP_INVALID_ARG);
    p = params(1);
    CHECK(prop_csv_check_params(&p, &err) == PROP_OK);
    parsed o;
    memset(&o, 0, sizeof o);
    /* more records than max_rows */
    const char *csv = "a,0,0,0\nb,0,0,0\n";
    CHECK(prop_csv_parse(&p, csv, (int64_t)strlen(csv), 1, o.X, NULL, o.span, &o.res,
                         &o.err) == PROP_INVALID_ARG);
    CHECK(prop_csv_parse_ref(&p, csv, (int64_t)strlen(csv), 1, NULL, o.V, o.span, &o.res,
                             &o.err) == PROP_INVALID_ARG);
    CHECK(prop_csv_max_records(csv, (int64_t)strlen(csv)) == 3);
}

/* Random text and random schemas: both parsers agree on status, message, counters and
 * outputs, and parsing in two blocks (non-final + carried-over final) equals parsing at
 * once. */

static int same(const parsed *a, const parsed *b, int64_t nf)
{
    if (a->st != b->st || strcmp(a->err.msg, b->err.msg) != 0)
        return 0;
    if (a->st != PROP_OK)
        return 1;
    if (memcmp(&a->res, &b->res, sizeof a->res) != 0)
        return 0;
    for (int64_t i = 0; i < a->res.n_rows; i++) {
        for (int64_t j = 0; j < nf; j++) {
            double x = val(a, i * nf + j), y = val(b, i * nf + j);
            if (memcmp(&x, &y, sizeof x) != 0)
                return 0;
        }
        if (a->span[2 * i] != b->span[2 * i] || a->span[2 * i + 1] != b->span[2 * i + 1])
            return 0;
    }
    return 1;
}

/* Values a random schema can hold: each kind's outputs are in range. */
static int values_in_range(const parsed *o, const prop_schema *S, const int64_t *ncat,
                           int64_t nf)
{
    for (int64_t i = 0; i < o->res.n_rows; i++)
        for (int64_t j = 0; j < nf; j++) {
            double v = val(o, i * nf + j);
            switch (prop_schema_kind(S, j)) {
            case PROP_KIND_BINARY:
                if (v != 0.0 && v != 1.0)
                    return 0;
                break;
            case PROP_KIND_NUMERIC:
                if (!isfinite(v))
                    return 0;
                break;
            case PROP_KIND_CATEGORY:
                if (v != floor(v) || v < -1.0 || v >= (double)ncat[j])
                    return 0;
                break;
            }
        }
    return 1;
}

static const char *CAT_POOL[] = {"a", "b", "ab", "0", "1", "2", " a", "\"", "yes", "1.0",
                                 "", "a b", ".", "nan", "0.5", "\r"};
enum { N_POOL = sizeof CAT_POOL / sizeof *CAT_POOL };

typedef struct {
    prop_schema *S;
    int64_t ff[MAXF];
    int64_t ncat[MAXF];
    int all_binary;
} rcase;

/* A random field layout and schema (every kind, fills, categories, names cut short). */
static prop_csv_params random_case(rcase *rc, int mixed)
{
    prop_csv_params p;
    memset(&p, 0, sizeof p);
    int r = (int)(check_rand() % 8);
    p.delimiter = r == 0 ? '0' : r == 1 ? ' ' : ',';
    p.n_fields = 1 + (int64_t)(check_rand() % 5);
    p.id_field = (int64_t)(check_rand() % (uint64_t)(p.n_fields + 1)) - 1;
    int64_t nf = 1 + (int64_t)(check_rand() % 5);
    int64_t free_fields[8], nfree = 0;
    for (int64_t k = 0; k < p.n_fields; k++)
        if (k != p.id_field)
            free_fields[nfree++] = k;
    for (int64_t i = nfree - 1; i > 0; i--) { /* shuffle */
        int64_t s = (int64_t)(check_rand() % (uint64_t)(i + 1)), t = free_fields[i];
        free_fields[i] = free_fields[s];
        free_fields[s] = t;
    }
    int32_t kind[MAXF];
    double fill[MAXF];
    char cats[MAXF * N_POOL * 4];
    int64_t cats_len = 0, used = 0;
    for (int64_t j = 0; j < nf; j++) {
        rc->ff[j] = (used < nfree && check_rand() % 5 != 0) ? free_fields[used++] : -1;
        kind[j] = mixed ? (int32_t)(check_rand() % 3) : PROP_KIND_BINARY;
        rc->ncat[j] = 0;
        fill[j] = NAN;
        int f = (int)(check_rand() % 4);
        if (kind[j] == PROP_KIND_BINARY && f >= 2)
            fill[j] = (double)(f - 2);
        if (kind[j] == PROP_KIND_NUMERIC && f >= 1)
            fill[j] = (double)f - 2.5;
        if (kind[j] == PROP_KIND_CATEGORY)
            for (int c = 0; c < N_POOL; c++)
                if (check_rand() % 3 == 0) {
                    size_t n = strlen(CAT_POOL[c]);
                    memcpy(cats + cats_len, CAT_POOL[c], n + 1);
                    cats_len += (int64_t)n + 1;
                    rc->ncat[j]++;
                }
    }
    char names[MAXF * 4];
    int64_t names_len = 0;
    for (int64_t j = 0; j < nf; j++)
        names_len += snprintf(names + names_len, sizeof names - (size_t)names_len, "c%lld",
                              (long long)j) + 1;
    names_len = (int64_t)(check_rand() % (uint64_t)(names_len + 1)); /* sometimes cut short */
    rc->S = schema_of(nf, kind, fill, names, names_len, rc->ncat, cats, cats_len);
    rc->all_binary = rc->S != NULL && prop_schema_all_binary(rc->S);
    p.schema = rc->S;
    p.n_features = nf;
    p.feature_field = rc->ff;
    p.fill_missing = (int)(check_rand() % 3) - 1;
    p.coerce = (int)(check_rand() % 2);
    p.final_block = (int)(check_rand() % 2);
    p.first_line = 2;
    p.first_row = 1;
    p.n_threads = 1;
    return p;
}

/* Cell text that a column of each kind accepts (most of the time) */
static const char *GOOD_BINARY[] = {"0", "1", "yes", "No", "t", " 1 ", "1.0", "-0", "\"1\"",
                                    "true", "1e0", "\"0\"", "F", "0.0", "y"};
static const char *GOOD_NUMERIC[] = {"0", "1", "2", "-3", "0.5", "1e0", " 1 ", "\"1\"", "1.0",
                                     "-0", "12.25", "\"-7\"", ".5", "0x10"};
static const char *GOOD_CATEGORY[] = {"a", "b", "ab", "0", "1", "2", "\" a\"", "\"\"\"\"",
                                      "yes", "1.0", "", "a b", ".", "nan", "0.5", "zz",
                                      "\"a,b\"", "\"1\""};
#define PICK(arr) arr[check_rand() % (sizeof arr / sizeof *arr)]

/* Random text. Modes 0 and 1: characters of a small alphabet (clean / noisy). Mode 2:
 * records of tokens, mostly n_fields of them; the cells a schema column reads are drawn
 * from what its kind accepts three times in four. */
static void make_text(char *buf, int64_t len, int mode, const prop_csv_params *p)
{
    static const char clean[] = "01010101,,,\n";
    static const char noise[] = "01,\n\"\r 2ab.";
    static const char *tokens[] = {"0",   "1",    "yes",  "No",    "t",     " 1 ",  "1.0",
                                   "0.5", "-3",   "nan",  "NaN",   "inf",   "a",    "b",
                                   "ab",  "\"a\"", "\"a,b\"", "",   "1e0",   "x",    "2",
                                   " a",  "\"\"\"\"", "\"1\"", "true", "-0",  "\"\"", "a b",
                                   "\"0\"\"", ".", "\"a\nb\"", "\"\r\"", "maybe"};
    if (mode < 2) {
        const char *al = mode ? noise : clean;
        size_t n = mode ? sizeof noise - 1 : sizeof clean - 1;
        for (int64_t i = 0; i < len; i++)
            buf[i] = al[check_rand() % n];
        return;
    }
    int kind_of[8]; /* per field: the kind of the column reading it, or -1 */
    for (int64_t k = 0; k < p->n_fields && k < 8; k++)
        kind_of[k] = -1;
    for (int64_t j = 0; j < p->n_features; j++)
        if (p->feature_field[j] >= 0 && p->feature_field[j] < 8)
            kind_of[p->feature_field[j]] = (int)prop_schema_kind(p->schema, j);
    int64_t i = 0;
    while (i < len) {
        int64_t nt = p->n_fields + (check_rand() % 8 == 0 ? (int64_t)(check_rand() % 3) - 1 : 0);
        for (int64_t k = 0; k < nt && i < len; k++) {
            const char *t = PICK(tokens);
            int kd = k < p->n_fields && k < 8 ? kind_of[k] : -1;
            if (kd >= 0 && check_rand() % 4 != 0)
                t = kd == PROP_KIND_BINARY    ? PICK(GOOD_BINARY)
                    : kd == PROP_KIND_NUMERIC ? PICK(GOOD_NUMERIC)
                                              : PICK(GOOD_CATEGORY);
            for (; *t && i < len; t++)
                buf[i++] = *t;
            if (k + 1 < nt && i < len)
                buf[i++] = p->delimiter;
        }
        int r = (int)(check_rand() % 8);
        const char *end = r < 5 ? "\n" : r == 5 ? "\r\n" : r == 6 ? "\n\n" : "\r\n\r\n";
        for (; *end && i < len; end++)
            buf[i++] = *end;
    }
}

static void test_fast_equals_reference_random(void)
{
    enum { N_TRIALS = 60000 };
    char buf[200];
    int mismatches = 0, ok = 0, ok_mixed = 0, split_bad = 0;
    int64_t rows_mixed = 0, unseen = 0, filled = 0, coerced = 0;
    for (int t = 0; t < N_TRIALS; t++) {
        int64_t len = (int64_t)(check_rand() % 120);
        rcase rc;
        /* one trial in four the fixed layout of the old test (b, a, z all binary) */
        int fixed = t % 4 == 0;
        prop_csv_params p;
        if (fixed) {
            p = params((int)(check_rand() % 2));
            p.fill_missing = (int)(check_rand() % 2) - 1;
            p.coerce = (int)(check_rand() % 2);
            rc.S = NULL;
            rc.all_binary = 1;
            for (int j = 0; j < 3; j++) {
                rc.ff[j] = FF[j];
                rc.ncat[j] = 0;
            }
        } else {
            p = random_case(&rc, (t / 4) % 2);
            if (rc.S == NULL)
                continue;
        }
        make_text(buf, len, t % 3, &p);
        const int64_t nf = p.n_features;
        const int out = rc.all_binary ? OUT_X : OUT_V;
        parsed a, b;
        run(&p, buf, len, 0, out, &a);
        run(&p, buf, len, 1, out, &b);
        if (!same(&a, &b, nf)) {
            if (mismatches++ < 3)
                fprintf(stderr, "mismatch on [%.*s] final=%d: fast st=%d '%s' rows=%lld, "
                        "ref st=%d '%s' rows=%lld\n", (int)len, buf, p.final_block, a.st,
                        a.err.msg, (long long)a.res.n_rows, b.st, b.err.msg,
                        (long long)b.res.n_rows);
        }
        if (a.st == PROP_FORMAT && strncmp(a.err.msg, "line ", 5) != 0)
            mismatches++; /* every format error names the line */
        if (a.st != PROP_OK)
            goto next;
        ok++;
        ok_mixed += !rc.all_binary;
        rows_mixed += rc.all_binary ? 0 : a.res.n_rows;
        unseen += a.res.n_unseen;
        filled += a.res.n_filled;
        coerced += a.res.n_coerced;
        if (!values_in_range(&a, p.schema, rc.ncat, nf))
            mismatches++;
        if (rc.all_binary) {
            /* double output of an all-binary schema: the same values */
            parsed d;
            run(&p, buf, len, 0, OUT_V, &d);
            if (d.st != PROP_OK || memcmp(&d.res, &a.res, sizeof d.res) != 0)
                mismatches++;
            else
                for (int64_t i = 0; i < a.res.n_rows * nf; i++)
                    if (d.V[i] != (double)a.X[i])
                        mismatches++;
        }
        if (p.final_block && len > 0) {
            /* two blocks give the same rows as one, for both parsers */
            for (int ref = 0; ref < 2; ref++) {
                prop_csv_params p1 = p;
                p1.final_block = 0;
                int64_t cut = (int64_t)(check_rand() % (uint64_t)len);
                parsed c, e;
                run(&p1, buf, cut, ref, out, &c);
                CHECK(c.st == PROP_OK);
                prop_csv_params p2 = p;
                p2.first_line += c.res.n_lines;
                p2.first_row += c.res.n_rows;
                run(&p2, buf + c.res.consumed, len - c.res.consumed, ref, out, &e);
                CHECK(e.st == PROP_OK);
                int bad = c.res.n_rows + e.res.n_rows != a.res.n_rows ||
                          c.res.n_coerced + e.res.n_coerced != a.res.n_coerced ||
                          c.res.n_filled + e.res.n_filled != a.res.n_filled ||
                          c.res.n_unseen + e.res.n_unseen != a.res.n_unseen ||
                          c.res.consumed + e.res.consumed != a.res.consumed ||
                          c.res.n_lines + e.res.n_lines != a.res.n_lines;
                for (int64_t i = 0; !bad && i < c.res.n_rows * nf; i++)
                    bad = val(&c, i) != val(&a, i);
                for (int64_t i = 0; !bad && i < e.res.n_rows * nf; i++)
                    bad = val(&e, i) != val(&a, c.res.n_rows * nf + i);
                for (int64_t i = 0; !bad && p.id_field >= 0 && i < e.res.n_rows; i++)
                    bad = e.span[2 * i] + c.res.consumed != a.span[2 * (c.res.n_rows + i)] ||
                          e.span[2 * i + 1] != a.span[2 * (c.res.n_rows + i) + 1];
                if (bad && split_bad++ < 3)
                    fprintf(stderr, "split at %lld differs on [%.*s] (ref=%d)\n",
                            (long long)cut, (int)len, buf, ref);
            }
        }
    next:
        prop_schema_free(rc.S);
    }
    CHECK(mismatches == 0);
    CHECK(split_bad == 0);
    /* the random cases are not all failures */
    CHECK(ok > 5000 && ok_mixed > 1000 && rows_mixed > 5000);
    CHECK(unseen > 0 && filled > 0 && coerced > 0);
    printf("random: %d of %d blocks parsed, %d of them (%lld rows) with a mixed schema; "
           "%lld unseen, %lld filled, %lld coerced\n", ok, (int)N_TRIALS, ok_mixed, (long long)rows_mixed,
           (long long)unseen, (long long)filled, (long long)coerced);
}

static void blocks_equal_whole(const prop_csv_params *pw, const char *csv, int64_t want_rows,
                               int out)
{
    int64_t len = (int64_t)strlen(csv);
    const int64_t nf = pw->n_features;
    parsed whole;
    run(pw, csv, len, 0, out, &whole);
    CHECK(whole.st == PROP_OK && whole.res.n_rows == want_rows);
    for (int ref = 0; ref < 2; ref++) {
        for (int64_t cut = 0; cut <= len; cut++) {
            parsed a, b;
            prop_csv_params p1 = *pw;
            p1.final_block = 0;
            run(&p1, csv, cut, ref, out, &a);
            CHECK(a.st == PROP_OK);
            prop_csv_params p2 = *pw;
            p2.first_line = p1.first_line + a.res.n_lines;
            p2.first_row = p1.first_row + a.res.n_rows;
            run(&p2, csv + a.res.consumed, len - a.res.consumed, ref, out, &b);
            CHECK(b.st == PROP_OK);
            CHECK(a.res.n_rows + b.res.n_rows == want_rows);
            CHECK(a.res.n_filled + b.res.n_filled == whole.res.n_filled);
            CHECK(a.res.n_unseen + b.res.n_unseen == whole.res.n_unseen);
            CHECK(a.res.n_coerced + b.res.n_coerced == whole.res.n_coerced);
            for (int64_t i = 0; i < a.res.n_rows; i++) {
                for (int64_t j = 0; j < nf; j++)
                    CHECK(val(&a, i * nf + j) == val(&whole, i * nf + j));
                CHECK(a.span[2 * i] == whole.span[2 * i]);
            }
            for (int64_t i = 0; i < b.res.n_rows; i++) {
                int64_t w = a.res.n_rows + i;
                for (int64_t j = 0; j < nf; j++)
                    CHECK(val(&b, i * nf + j) == val(&whole, w * nf + j));
                CHECK(b.span[2 * i] + a.res.consumed == whole.span[2 * w]);
                CHECK(b.span[2 * i + 1] == whole.span[2 * w + 1]);
            }
        }
    }
}

static void test_blocks_equal_whole(void)
{
    prop_csv_params p = params(1);
    const char *csv = "u1,0,1,0\r\n\"q,\n1\",1,1,0\n\nu3,\"0\",0,1\nu4,1,1,1";
    blocks_equal_whole(&p, csv, 4, OUT_X);
    blocks_equal_whole(&p, csv, 4, OUT_V);
    /* a mixed schema, with fills and unseen categories counted once per record */
    prop_schema *S = mixed_schema(30.0);
    if (S == NULL)
        return;
    p = params_for(S, MIXED_FF, 5, 1);
    blocks_equal_whole(&p, MIXED_CSV, 6, OUT_V);
    prop_schema_free(S);
}

static void test_format_matches_reference(void)
{
    enum { N = 400 };
    static double proba[N];
    static uint8_t pred[N];
    static int64_t span[2 * N];
    const char *ids = "plain\"quo\"\"ted\"a,b\"x\"y";
    int64_t spans[5][2] = {{0, 5}, {5, 10}, {15, 3}, {18, 3}, {0, 0}};
    for (int i = 0; i < N; i++) {
        double ties[] = {0.5, 0.25, 0.125, 0.0625, 0.375, 1.0, 0.0, 0.1, 0.05, 0.9999995};
        proba[i] = i < 10 ? ties[i] : (double)(check_rand() >> 11) / 9007199254740992.0;
        if (i % 7 == 0 && i >= 10)
            proba[i] = (double)(check_rand() % 2001) / 2000.0;
        pred[i] = (uint8_t)(proba[i] >= 0.3);
        span[2 * i] = spans[i % 5][0];
        span[2 * i + 1] = spans[i % 5][1];
    }
    static char a[N * 200], b[N * 200];
    for (int digits = 0; digits <= 15; digits++) {
        for (int mode = 0; mode < 2; mode++) {
            prop_csv_format_params fp = {digits, "2026-01-01T00:00:00", 19, mode, 100, 1, {0}};
            int64_t wa = -1, wb = -2;
            prop_error err;
            const int64_t *sp = mode ? span : NULL;
            int64_t bound = prop_csv_format_bound(&fp, N, sp);
            CHECK(bound <= (int64_t)sizeof a);
            CHECK(prop_csv_format(&fp, N, ids, sp, pred, proba, a, bound, &wa, &err) == PROP_OK);
            CHECK(prop_csv_format_ref(&fp, N, ids, sp, pred, proba, b, sizeof b, &wb, &err) ==
                  PROP_OK);
            CHECK(wa == wb && wa <= bound && memcmp(a, b, (size_t)wa) == 0);
        }
    }
    prop_csv_format_params fp = {6, "T", 1, 1, 0, 1, {0}};
    int64_t w;
    prop_error err;
    CHECK(prop_csv_format(&fp, 3, ids, span, pred, proba, a, sizeof a, &w, &err) == PROP_OK);
    const char *want = "plain,1,0.500000,T,Medium\n\"quo\"\"ted\",0,0.250000,T,Medium\n"
                       "\"a,b\",0,0.125000,T,Medium\n";
    CHECK(w == (int64_t)strlen(want) && memcmp(a, want, (size_t)w) == 0);
    double bad = 1.5;
    CHECK(prop_csv_format(&fp, 1, ids, span, pred, &bad, a, sizeof a, &w, &err) ==
          PROP_INVALID_ARG);
    CHECK(prop_csv_format(&fp, 3, ids, span, pred, proba, a, 10, &w, &err) == PROP_INVALID_ARG);
    /* other segment edges: the same rule in both writers; edges out of order refused */
    double edges[2] = {0.2, 0.3};
    fp.segment_edges = edges;
    int64_t wb;
    CHECK(prop_csv_format(&fp, 3, ids, span, pred, proba, a, sizeof a, &w, &err) == PROP_OK);
    CHECK(prop_csv_format_ref(&fp, 3, ids, span, pred, proba, b, sizeof b, &wb, &err) == PROP_OK);
    const char *want2 = "plain,1,0.500000,T,High\n\"quo\"\"ted\",0,0.250000,T,Medium\n"
                        "\"a,b\",0,0.125000,T,Low\n";
    CHECK(w == (int64_t)strlen(want2) && memcmp(a, want2, (size_t)w) == 0);
    CHECK(wb == w && memcmp(a, b, (size_t)w) == 0);
    edges[0] = 0.4;
    CHECK(prop_csv_format(&fp, 3, ids, span, pred, proba, a, sizeof a, &w, &err) ==
          PROP_INVALID_ARG);
    CHECK(prop_csv_format_ref(&fp, 3, ids, span, pred, proba, b, sizeof b, &wb, &err) ==
          PROP_INVALID_ARG);
}

/* A probability of -0.0 passes the [0, 1] check; the fast formatter wrote "0.0000" for
 * digits <= 9 but "-0.000000000000" for digits >= 10, and the reference always wrote
 * the sign. Both now write it as 0, and agree for every digits. */
static void test_format_negative_zero(void)
{
    double proba[2] = {-0.0, 0.0};
    uint8_t pred[2] = {0, 0};
    char a[256], b[256], want[256];
    for (int digits = 0; digits <= 15; digits++) {
        prop_csv_format_params fp = {digits, "T", 1, 1, 7, 1, {0}};
        int64_t wa = -1, wb = -2;
        prop_error err;
        int64_t bound = prop_csv_format_bound(&fp, 2, NULL);
        CHECK(prop_csv_format(&fp, 2, NULL, NULL, pred, proba, a, bound, &wa, &err) == PROP_OK);
        CHECK(prop_csv_format_ref(&fp, 2, NULL, NULL, pred, proba, b, sizeof b, &wb, &err) ==
              PROP_OK);
        int k = snprintf(want, sizeof want, "7,0,%.*f,T,Low\n8,0,%.*f,T,Low\n", digits, 0.0,
                         digits, 0.0);
        CHECK(wa == k && memcmp(a, want, (size_t)k) == 0);
        CHECK(wb == k && memcmp(b, want, (size_t)k) == 0);
    }
}

/* Reason codes: names (quoted when needed) and contributions, fast == reference for
 * every digits, thread count, ties, large and tiny values; a hand-written row; bad
 * indices and non-finite values refused. */
static void test_format_reasons(void)
{
    enum { N = 20000, K = 3 };
    static double proba[N], val[N * K];
    static uint8_t pred[N];
    static int32_t col[N * K];
    const char *names = "sign_inbasket,addsaw\"x";
    int64_t starts[4] = {0, 7, 17, 22};
    double special[] = {0.5, -0.5, 0.0000005, -0.0000005, -1e-12, 2.5e9, -3e12, 123.4567895,
                        0.0, -0.0};
    for (int i = 0; i < N; i++) {
        proba[i] = (double)(check_rand() >> 11) / 9007199254740992.0;
        pred[i] = (uint8_t)(proba[i] >= 0.5);
        for (int r = 0; r < K; r++) {
            int j = i * K + r;
            col[j] = (int32_t)(check_rand() % 3);
            val[j] = j < 10 ? special[j] : (check_uniform() - 0.5) * (j % 5 == 0 ? 200.0 : 2.0);
        }
    }
    static char a[N * 400], b[N * 400];
    for (int digits = 0; digits <= 9; digits++) {
        for (int nt = 1; nt <= 3; nt += 2) {
            prop_csv_format_params fp = {6, "T", 1, 1, 0, nt,
                                         {K, col, val, names, starts, 3, digits}};
            int64_t wa = -1, wb = -2;
            prop_error err;
            int64_t bound = prop_csv_format_bound(&fp, N, NULL);
            CHECK(bound <= (int64_t)sizeof a);
            CHECK(prop_csv_format(&fp, N, NULL, NULL, pred, proba, a, bound, &wa, &err) ==
                  PROP_OK);
            CHECK(prop_csv_format_ref(&fp, N, NULL, NULL, pred, proba, b, sizeof b, &wb, &err) ==
                  PROP_OK);
            CHECK(wa == wb && wa <= bound && memcmp(a, b, (size_t)wa) == 0);
        }
    }
    int32_t c1[3] = {2, 1, 0};
    double v1[3] = {1.25, -0.0000001, -2.5};
    double p1 = 0.75;
    uint8_t q1 = 1;
    prop_csv_format_params fp = {2, "T", 1, 0, 5, 1, {3, c1, v1, names, starts, 3, 3}};
    int64_t w;
    prop_error err;
    CHECK(prop_csv_format(&fp, 1, NULL, NULL, &q1, &p1, a, sizeof a, &w, &err) == PROP_OK);
    const char *want = "5,1,0.75,T,\"saw\"\"x\",\"basket,add\",sign_in,1.250,0.000,-2.500\n";
    CHECK(w == (int64_t)strlen(want) && memcmp(a, want, (size_t)w) == 0);
    c1[1] = 3;
    CHECK(prop_csv_format(&fp, 1, NULL, NULL, &q1, &p1, a, sizeof a, &w, &err) ==
          PROP_INVALID_ARG);
    c1[1] = 1;
    v1[0] = NAN;
    CHECK(prop_csv_format(&fp, 1, NULL, NULL, &q1, &p1, a, sizeof a, &w, &err) ==
          PROP_INVALID_ARG);
    v1[0] = 1.0;
    fp.reasons.n = PROP_CSV_MAX_REASONS + 1;
    CHECK(prop_csv_format(&fp, 1, NULL, NULL, &q1, &p1, a, sizeof a, &w, &err) ==
          PROP_INVALID_ARG);
}

/* ';', tab and '|' as the delimiter: a ',' is then ordinary text, quoted fields may hold
 * the delimiter, and both parsers read the same rows. */
static void test_other_delimiters(void)
{
    const char seps[3] = {';', '\t', '|'};
    for (int k = 0; k < 3; k++) {
        const char d = seps[k];
        char csv[128];
        /* UserID,a,b,ordered with the delimiter d; the ids hold ',' and a quoted d */
        int len = snprintf(csv, sizeof csv, "u,1%c1%c0%c0\n\"v%cw\"%c0%c1%c1\r\nx%c1%c1%c0",
                           d, d, d, d, d, d, d, d, d, d);
        prop_csv_params p = params(1);
        p.delimiter = d;
        for (int ref = 0; ref < 2; ref++) {
            parsed o;
            run(&p, csv, len, ref, OUT_X, &o);
            if (o.st != PROP_OK)
                fprintf(stderr, "delimiter %d: %s\n", d, o.err.msg);
            CHECK(o.st == PROP_OK);
            CHECK(o.res.n_rows == 3 && o.res.consumed == len && o.res.n_lines == 2);
            CHECK(row_is(&o, 3, 0, (double[]){0, 1, 0})); /* columns b, a, z */
            CHECK(row_is(&o, 3, 1, (double[]){1, 0, 0}));
            CHECK(row_is(&o, 3, 2, (double[]){1, 1, 0}));
            CHECK(id_is(csv, &o, 0, "u,1"));
            char quoted[8];
            snprintf(quoted, sizeof quoted, "\"v%cw\"", d);
            CHECK(id_is(csv, &o, 1, quoted));
            CHECK(id_is(csv, &o, 2, "x"));
        }
        /* the same rows with ',' read as one field each: the field count is wrong */
        prop_csv_params pc = params(1);
        parsed o;
        run(&pc, csv, len, 0, OUT_X, &o);
        CHECK(o.st != PROP_OK);
    }
}

/* Reference of prop_utf8_invalid: decode each sequence to its code point and check it. */
static int64_t utf8_invalid_ref(const unsigned char *b, int64_t len)
{
    int64_t i = 0;
    while (i < len) {
        unsigned c = b[i];
        int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2
                : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0 || i + n >= len)
            return i;
        uint32_t cp = n == 0 ? c : c & (0x3Fu >> n);
        for (int k = 1; k <= n; k++) {
            if ((b[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (b[i + k] & 0x3Fu);
        }
        static const uint32_t least[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += n + 1;
    }
    return -1;
}

static void test_utf8_check(void)
{
    struct { const char *s; int64_t want; } fixed[] = {
        {"", -1}, {"plain ascii, longer than eight bytes", -1}, {"caf\xc3\xa9", -1},
        {"caf\xe9", 3}, {"abcdefgh\xe9", 8}, {"\xe2\x82\xac \xf0\x9f\x98\x80", -1},
        {"\xc0\xaf", 0}, {"\xe0\x80\xaf", 0}, {"\xed\xa0\x80", 0}, {"\xf4\x90\x80\x80", 0},
        {"ok\xe2\x82", 2}, {"\x80", 0}, {"\xf5\x80\x80\x80", 0},
    };
    for (size_t k = 0; k < sizeof fixed / sizeof *fixed; k++) {
        int64_t len = (int64_t)strlen(fixed[k].s);
        CHECK(prop_utf8_invalid(fixed[k].s, len) == fixed[k].want);
        CHECK(utf8_invalid_ref((const unsigned char *)fixed[k].s, len) == fixed[k].want);
    }
    /* random bytes, mostly ASCII with valid and broken multi-byte sequences */
    static const unsigned char lead[] = {0xC3, 0xE2, 0xF0, 0xED, 0xE0, 0xF4, 0x80, 0xFF, 0xC1};
    for (int t = 0; t < 20000; t++) {
        unsigned char buf[40];
        int64_t len = (int64_t)(check_rand() % sizeof buf);
        for (int64_t i = 0; i < len; i++) {
            uint64_t r = check_rand();
            buf[i] = r % 4 ? (unsigned char)('a' + r % 26)
                     : r % 8 == 0 ? lead[(r >> 8) % sizeof lead]
                                  : (unsigned char)(0x80 | ((r >> 8) & 0x3F));
        }
        CHECK(prop_utf8_invalid((const char *)buf, len) == utf8_invalid_ref(buf, len));
    }
}

int main(void)
{
    BIN3 = binary_schema(NULL);
    if (BIN3 == NULL)
        return 1;
    RUN(test_basic_rows);
    RUN(test_errors_name_line_column_value);
    RUN(test_binary_words_accepted);
    RUN(test_fill_missing_and_coerce);
    RUN(test_mixed_schema);
    RUN(test_bad_params);
    RUN(test_fast_equals_reference_random);
    RUN(test_blocks_equal_whole);
    RUN(test_format_matches_reference);
    RUN(test_other_delimiters);
    prop_schema_free(BIN3);
    RUN(test_format_negative_zero);
    RUN(test_format_reasons);
    RUN(test_utf8_check);
    return check_summary("csvio");
}
