/* Tests of the value rules (schema.h): creation, each kind's accepted and refused
 * values and their messages, fill / fill_missing / coerce and their counters, category
 * lookup, whole-column conversion, and the same verdict for a value given as text or as
 * a number. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/schema.h"

/* Columns of the fixed schema: b (binary), bf (binary, fill 1), x (numeric),
 * xf (numeric, fill 2.5), c (category red/green/1/0), e (category, no categories). */
enum { B = 0, BF = 1, X = 2, XF = 3, C = 4, E = 5, NCOL = 6 };
static const char NAMES[] = "b\0bf\0x\0xf\0c\0e";
static const char CATS[] = "red\0green\0" "1\0" "0";

static prop_schema *fixed_schema(void)
{
    const int32_t kind[NCOL] = {PROP_KIND_BINARY, PROP_KIND_BINARY, PROP_KIND_NUMERIC,
                                PROP_KIND_NUMERIC, PROP_KIND_CATEGORY, PROP_KIND_CATEGORY};
    const double fill[NCOL] = {NAN, 1.0, NAN, 2.5, NAN, NAN};
    const int64_t ncat[NCOL] = {0, 0, 0, 0, 4, 0};
    prop_schema_spec spec = {NCOL, kind, fill, NAMES, (int64_t)sizeof NAMES, ncat, CATS,
                             (int64_t)sizeof CATS};
    prop_schema *S = NULL;
    prop_error err;
    prop_status st = prop_schema_create(&spec, &S, &err);
    CHECK(st == PROP_OK && S != NULL);
    if (st != PROP_OK)
        fprintf(stderr, "create: %s\n", err.msg);
    return S;
}

static const prop_convert_opts STRICT = {-1, 0};

/* One conversion of text s (NUL-terminated) in column col. */
typedef struct {
    prop_status st;
    double v;
    prop_convert_counts cnt;
    prop_error err;
} conv;

static conv text(const prop_schema *S, int64_t col, const char *s, prop_convert_opts o)
{
    conv r;
    memset(&r, 0, sizeof r);
    r.v = -99.0;
    r.st = prop_schema_convert_text(S, col, s, strlen(s), &o, &r.v, &r.cnt, &r.err);
    return r;
}

static conv number(const prop_schema *S, int64_t col, double x, prop_convert_opts o)
{
    conv r;
    memset(&r, 0, sizeof r);
    r.v = -99.0;
    r.st = prop_schema_convert_number(S, col, x, &o, &r.v, &r.cnt, &r.err);
    return r;
}

static int no_counts(const conv *r)
{
    return r->cnt.n_coerced == 0 && r->cnt.n_filled == 0 && r->cnt.n_unseen == 0;
}

/* s converts to want without touching a counter */
static void accepts(const prop_schema *S, int64_t col, const char *s, double want)
{
    conv r = text(S, col, s, STRICT);
    if (r.st != PROP_OK || r.v != want || !no_counts(&r)) {
        fprintf(stderr, "column %lld, '%s': st=%d v=%g (want %g) msg=%s\n", (long long)col, s,
                r.st, r.v, want, r.err.msg);
        CHECK(0);
    }
}

/* s is refused with PROP_FORMAT and a message holding both fragments */
static void refuses(const prop_schema *S, int64_t col, const char *s, prop_convert_opts o,
                    const char *a, const char *b)
{
    conv r = text(S, col, s, o);
    if (r.st != PROP_FORMAT || strstr(r.err.msg, a) == NULL ||
        (b != NULL && strstr(r.err.msg, b) == NULL)) {
        fprintf(stderr, "column %lld, '%s': st=%d msg='%s' (wanted '%s' / '%s')\n",
                (long long)col, s, r.st, r.err.msg, a, b ? b : "");
        CHECK(0);
    }
}

static void test_create_and_accessors(void)
{
    prop_schema *S = fixed_schema();
    if (S == NULL)
        return;
    CHECK(prop_schema_n_columns(S) == NCOL);
    CHECK(prop_schema_kind(S, B) == PROP_KIND_BINARY);
    CHECK(prop_schema_kind(S, XF) == PROP_KIND_NUMERIC);
    CHECK(prop_schema_kind(S, C) == PROP_KIND_CATEGORY);
    CHECK(!prop_schema_all_binary(S));
    /* absent columns: binary fill or 0, numeric fill or 0, category -1 */
    CHECK(prop_schema_absent_value(S, B) == 0.0);
    CHECK(prop_schema_absent_value(S, BF) == 1.0);
    CHECK(prop_schema_absent_value(S, X) == 0.0);
    CHECK(prop_schema_absent_value(S, XF) == 2.5);
    CHECK(prop_schema_absent_value(S, C) == -1.0);
    CHECK(prop_schema_absent_value(S, E) == -1.0);
    char name[8];
    prop_schema_column_name(S, BF, name, sizeof name);
    CHECK(strcmp(name, "bf") == 0);
    prop_schema_column_name(S, BF, name, 2); /* cut to the size, still terminated */
    CHECK(strcmp(name, "b") == 0);
    prop_schema_free(S);
    prop_schema_free(NULL);

    /* all binary; names missing or cut short: "column j+1"; no categories buffer */
    const int32_t kind[3] = {PROP_KIND_BINARY, PROP_KIND_BINARY, PROP_KIND_BINARY};
    const double fill[3] = {NAN, 0.0, 1.0};
    prop_schema_spec spec = {3, kind, fill, "first", 5, NULL, NULL, 0};
    prop_error err;
    CHECK(prop_schema_create(&spec, &S, &err) == PROP_OK);
    CHECK(prop_schema_all_binary(S));
    char nm[32];
    prop_schema_column_name(S, 0, nm, sizeof nm);
    CHECK(strcmp(nm, "first") == 0);
    prop_schema_column_name(S, 2, nm, sizeof nm);
    CHECK(strcmp(nm, "column 3") == 0);
    CHECK(prop_schema_absent_value(S, 2) == 1.0);
    prop_schema_free(S);
    spec.names = NULL;
    spec.names_len = 0;
    CHECK(prop_schema_create(&spec, &S, &err) == PROP_OK);
    prop_schema_column_name(S, 0, nm, sizeof nm);
    CHECK(strcmp(nm, "column 1") == 0);
    prop_schema_free(S);
}

static void expect_create_fails(const prop_schema_spec *spec, const char *frag)
{
    prop_schema *S = (prop_schema *)&S; /* not NULL: create must reset it */
    prop_error err;
    prop_status st = prop_schema_create(spec, &S, &err);
    CHECK(st == PROP_INVALID_ARG);
    CHECK(S == NULL);
    if (st != PROP_INVALID_ARG || strstr(err.msg, frag) == NULL) {
        fprintf(stderr, "create: st=%d msg='%s' (wanted '%s')\n", st, err.msg, frag);
        CHECK(0);
    }
    if (st == PROP_OK)
        prop_schema_free(S);
}

static void test_create_refuses(void)
{
    int32_t kind[2] = {PROP_KIND_BINARY, PROP_KIND_CATEGORY};
    double fill[2] = {NAN, NAN};
    int64_t ncat[2] = {0, 3};
    const char cats[] = "a\0b\0a";
    prop_schema_spec spec = {2, kind, fill, "p\0q", 4, ncat, cats, (int64_t)sizeof cats};
    /* a category listed twice */
    expect_create_fails(&spec, "column 'q' lists the category 'a' twice");
    /* the same blob with distinct names is fine */
    const char ok[] = "a\0b\0ab";
    spec.categories = ok;
    spec.categories_len = (int64_t)sizeof ok;
    prop_schema *S = NULL;
    prop_error err;
    CHECK(prop_schema_create(&spec, &S, &err) == PROP_OK);
    prop_schema_free(S);
    /* fewer names than n_categories, an unterminated last name */
    ncat[1] = 4;
    expect_create_fails(&spec, "fewer names than n_categories");
    ncat[1] = 3;
    spec.categories_len = (int64_t)sizeof ok - 1;
    expect_create_fails(&spec, "unterminated category name");
    spec.categories_len = (int64_t)sizeof ok;
    /* categories on a column that is not a category column, negative counts */
    ncat[0] = 1;
    expect_create_fails(&spec, "column 0 has 1 categories");
    ncat[0] = -1;
    expect_create_fails(&spec, "has -1 categories");
    ncat[0] = 0;
    /* bad kinds */
    kind[1] = 4;
    expect_create_fails(&spec, "column 1 has kind 4");
    kind[1] = -1;
    expect_create_fails(&spec, "column 1 has kind -1");
    kind[1] = PROP_KIND_CATEGORY;
    /* a binary fill other than 0/1, an infinite numeric fill */
    fill[0] = 0.5;
    expect_create_fails(&spec, "binary column 0 has fill 0.5");
    fill[0] = NAN;
    kind[0] = PROP_KIND_NUMERIC;
    fill[0] = INFINITY;
    expect_create_fails(&spec, "infinite fill");
    fill[0] = -INFINITY;
    expect_create_fails(&spec, "infinite fill");
    fill[0] = NAN;
    /* no columns, missing arrays, bad buffers */
    spec.n_columns = 0;
    expect_create_fails(&spec, "n_columns must be >= 1");
    spec.n_columns = 2;
    spec.kind = NULL;
    expect_create_fails(&spec, "n_columns must be >= 1");
    spec.kind = kind;
    spec.names = NULL;
    expect_create_fails(&spec, "bad names or categories buffer");
    spec.names = "p\0q";
    spec.categories = NULL;
    expect_create_fails(&spec, "bad names or categories buffer");
    CHECK(prop_schema_create(NULL, &S, &err) == PROP_INVALID_ARG);
    CHECK(prop_schema_create(&spec, NULL, &err) == PROP_INVALID_ARG);
}

static void test_binary_text(void)
{
    prop_schema *S = fixed_schema();
    if (S == NULL)
        return;
    /* numbers equal to 0 or 1 */
    const char *one[] = {"1", "1.0", "1e0", "+1", " 1", "1\t", "\t 1.000 ", "0x1", "10e-1"};
    const char *zero[] = {"0", "0.0", "-0", "0e5", "  0  ", ".0", "0.", "1e-400"};
    for (size_t i = 0; i < sizeof one / sizeof *one; i++)
        accepts(S, B, one[i], 1.0);
    for (size_t i = 0; i < sizeof zero / sizeof *zero; i++)
        accepts(S, B, zero[i], 0.0);
    /* the words, any case, spaces and tabs around them ignored */
    const char *yes[] = {"true", "TRUE", "True", "yes", "YES", "Yes", "t", "T", "y", "Y",
                         " yes ", "\ttrue", "tRuE\t "};
    const char *no[] = {"false", "FALSE", "False", "no", "NO", "No", "f", "F", "n", "N",
                        " no", "\t\tfalse  "};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        accepts(S, B, yes[i], 1.0);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        accepts(S, B, no[i], 0.0);
    /* a long run of spaces around a value is fine (trimmed before the length limit) */
    char padded[200];
    memset(padded, ' ', sizeof padded - 1);
    padded[sizeof padded - 1] = '\0';
    padded[100] = '1';
    accepts(S, B, padded, 1.0);

    /* other numbers: "is not 0 or 1" with the coerce hint */
    conv r = text(S, B, "2", STRICT);
    CHECK(r.st == PROP_FORMAT);
    CHECK(strcmp(r.err.msg, "column 'b': value '2' is not 0 or 1 (coerce=True / --coerce "
                            "clips values to 0/1)") == 0);
    refuses(S, B, "0.5", STRICT, "column 'b': value '0.5' is not 0 or 1", "coerce=True");
    refuses(S, B, "-1", STRICT, "value '-1' is not 0 or 1", "coerce");
    refuses(S, B, " 1e3 ", STRICT, "value ' 1e3 ' is not 0 or 1", "coerce");
    refuses(S, B, "inf", STRICT, "value 'inf' is not 0 or 1", "coerce");
    /* other text: "is not 0 or 1" with the words hint */
    const char *bad[] = {"maybe", "yes!", "ye", "tr", "nope", "on", "off", "1 1", "0x",
                         "1,0", "\"1\"", "true1", "y es", "truee", "abc"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        refuses(S, B, bad[i], STRICT, "is not 0 or 1 (this column holds 0/1; true/false and "
                "yes/no are read as 1/0)", "column 'b'");
    refuses(S, B, "maybe", STRICT, "column 'b': value 'maybe' is not 0 or 1", NULL);
    /* coerce does not make text a number */
    refuses(S, B, "maybe", (prop_convert_opts){0, 1}, "'maybe' is not 0 or 1", "true/false");
    /* text longer than any number: refused, the value shown shortened */
    char longv[120];
    memset(longv, '7', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    char shown[96]; /* the first 40 characters, then "..." */
    snprintf(shown, sizeof shown, "value '%.40s...' is not 0 or 1", longv);
    refuses(S, B, longv, STRICT, shown, "true/false");
    refuses(S, B, longv, (prop_convert_opts){0, 1}, "not 0 or 1", NULL);
    /* control characters are shown escaped */
    refuses(S, B, "a\nb\x01", STRICT, "value 'a\\x0ab\\x01'", NULL);
    prop_schema_free(S);
}

static void test_missing_and_fill(void)
{
    prop_schema *S = fixed_schema();
    if (S == NULL)
        return;
    const char *missing[] = {"", " ", "\t \t", "nan", "NaN", "NAN", " nan ", "-nan"};
    for (size_t i = 0; i < sizeof missing / sizeof *missing; i++) {
        const char *s = missing[i];
        /* binary without fill: an error unless fill_missing */
        refuses(S, B, s, STRICT, "column 'b': empty cell", "fill_missing=0");
        for (int fm = 0; fm <= 1; fm++) {
            conv r = text(S, B, s, (prop_convert_opts){fm, 0});
            CHECK(r.st == PROP_OK && r.v == (double)fm);
            CHECK(r.cnt.n_filled == 1 && r.cnt.n_coerced == 0 && r.cnt.n_unseen == 0);
        }
        /* binary with fill 1: the fill, whatever fill_missing says */
        for (int fm = -1; fm <= 1; fm++) {
            conv r = text(S, BF, s, (prop_convert_opts){fm, 0});
            CHECK(r.st == PROP_OK && r.v == 1.0 && r.cnt.n_filled == 1);
        }
        /* numeric with fill: the fill; without: an error, fill_missing does not apply */
        for (int fm = -1; fm <= 1; fm++) {
            conv r = text(S, XF, s, (prop_convert_opts){fm, 1});
            CHECK(r.st == PROP_OK && r.v == 2.5 && r.cnt.n_filled == 1);
            refuses(S, X, s, (prop_convert_opts){fm, 1}, "column 'x': empty cell", NULL);
        }
    }
    /* a missing number */
    conv r = number(S, B, NAN, STRICT);
    CHECK(r.st == PROP_FORMAT && strstr(r.err.msg, "column 'b': empty cell") != NULL);
    r = number(S, B, NAN, (prop_convert_opts){1, 0});
    CHECK(r.st == PROP_OK && r.v == 1.0 && r.cnt.n_filled == 1);
    r = number(S, BF, NAN, (prop_convert_opts){0, 0});
    CHECK(r.st == PROP_OK && r.v == 1.0 && r.cnt.n_filled == 1);
    r = number(S, XF, NAN, STRICT);
    CHECK(r.st == PROP_OK && r.v == 2.5 && r.cnt.n_filled == 1);
    r = number(S, X, NAN, (prop_convert_opts){0, 0});
    CHECK(r.st == PROP_FORMAT && strstr(r.err.msg, "column 'x': empty cell") != NULL);
    /* counters add up over calls */
    prop_convert_counts cnt = {0, 0, 0};
    prop_convert_opts o = {0, 1};
    double v;
    prop_error err;
    CHECK(prop_schema_convert_text(S, B, "", 0, &o, &v, &cnt, &err) == PROP_OK);
    CHECK(prop_schema_convert_text(S, B, "0.7", 3, &o, &v, &cnt, &err) == PROP_OK);
    CHECK(prop_schema_convert_number(S, B, NAN, &o, &v, &cnt, &err) == PROP_OK);
    CHECK(prop_schema_convert_number(S, B, -5.0, &o, &v, &cnt, &err) == PROP_OK && v == 0.0);
    CHECK(cnt.n_filled == 2 && cnt.n_coerced == 2 && cnt.n_unseen == 0);
    /* only the first n bytes are read */
    CHECK(prop_schema_convert_text(S, B, "1junk", 1, &o, &v, &cnt, &err) == PROP_OK && v == 1.0);
    CHECK(prop_schema_convert_text(S, B, "yesno", 3, &o, &v, &cnt, &err) == PROP_OK && v == 1.0);
    prop_schema_free(S);
}

static void test_coerce(void)
{
    prop_schema *S = fixed_schema();
    if (S == NULL)
        return;
    const prop_convert_opts co = {-1, 1};
    struct {
        const char *s;
        double want;
        int counted;
    } cases[] = {{"0.5", 1, 1}, {"0.49", 0, 1},  {"-3", 0, 1},  {"7", 1, 1},    {"2", 1, 1},
                 {"inf", 1, 1}, {"-inf", 0, 1},  {" 0.7 ", 1, 1}, {"1e300", 1, 1}, {"1", 1, 0},
                 {"1.0", 1, 0}, {"0", 0, 0},     {"yes", 1, 0}, {"F", 0, 0},    {"-0.0", 0, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        conv r = text(S, B, cases[i].s, co);
        if (r.st != PROP_OK || r.v != cases[i].want || r.cnt.n_coerced != cases[i].counted ||
            r.cnt.n_filled != 0) {
            fprintf(stderr, "coerce '%s': st=%d v=%g coerced=%lld\n", cases[i].s, r.st, r.v,
                    (long long)r.cnt.n_coerced);
            CHECK(0);
        }
        /* without coerce: refused exactly when coerce would count it */
        r = text(S, B, cases[i].s, STRICT);
        CHECK((r.st == PROP_OK) == !cases[i].counted);
    }
    /* coerce leaves numeric columns alone */
    conv r = text(S, X, "7", co);
    CHECK(r.st == PROP_OK && r.v == 7.0 && no_counts(&r));
    r = number(S, X, 0.25, co);
    CHECK(r.st == PROP_OK && r.v == 0.25 && no_counts(&r));
    r = number(S, B, 0.25, co);
    CHECK(r.st == PROP_OK && r.v == 0.0 && r.cnt.n_coerced == 1);
    prop_schema_free(S);
}

static void test_numeric_text(void)
{
    prop_schema *S = fixed_schema();
    if (S == NULL)
        return;
    accepts(S, X, "3.25", 3.25);
    accepts(S, X, " -1e3\t", -1000.0);
    accepts(S, X, "0", 0.0);
    accepts(S, X, "1", 1.0);
    accepts(S, X, "2", 2.0);
    accepts(S, X, "+.5", 0.5);
    accepts(S, X, "0x10", 16.0);
    accepts(S, X, "1e308", 1e308);
    accepts(S, XF, "-7", -7.0);
    accepts(S, XF, "1e-400", 0.0);
    refuses(S, X, "abc", STRICT, "column 'x': value 'abc' is not a number", NULL);
    refuses(S, X, "1,5", STRICT, "value '1,5' is not a number", NULL);
    refuses(S, X, "yes", STRICT, "value 'yes' is not a number", NULL);
    refuses(S, X, "true", (prop_convert_opts){0, 1}, "is not a number", NULL);
    refuses(S, X, "1 2", STRICT, "is not a number", NULL);
    refuses(S, X, "12abc", STRICT, "is not a number", NULL);
    refuses(S, X, "inf", STRICT, "column 'x': value 'inf' is infinite; only finite numbers", NULL);
    refuses(S, X, "-Infinity", STRICT, "value '-Infinity' is infinite", NULL);
    refuses(S, XF, "1e999", STRICT, "value '1e999' is infinite", NULL);
    char longv[100];
    memset(longv, '1', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    refuses(S, X, longv, STRICT, "is not a number", "...");
    /* numbers */
    conv r = number(S, X, -12.5, STRICT);
    CHECK(r.st == PROP_OK && r.v == -12.5 && no_counts(&r));
    r = number(S, X, INFINITY, STRICT);
    CHECK(r.st == PROP_FORMAT && strcmp(r.err.msg, "column 'x': value 'inf' is infinite; only "
                                                   "finite numbers are allowed") == 0);
    r = number(S, X, -INFINITY, STRICT);
    CHECK(r.st == PROP_FORMAT && strstr(r.err.msg, "value '-inf' is infinite") != NULL);
    prop_schema_free(S);
}

static void test_category(void)
{
    prop_schema *S = fixed_schema();
    if (S == NULL)
        return;
    /* exact text -> code; "1" and "0" are category names here, not numbers */
    accepts(S, C, "red", 0.0);
    accepts(S, C, "green", 1.0);
    accepts(S, C, "1", 2.0);
    accepts(S, C, "0", 3.0);
    /* anything else is unseen: -1, counted; no trimming, case or number folding */
    const char *unseen[] = {"Red", " red", "red ", "blue", "1.0", "01", "nan", " ", "true",
                            "redgreen", "gree"};
    for (size_t i = 0; i < sizeof unseen / sizeof *unseen; i++) {
        for (int fm = -1; fm <= 1; fm++) {
            conv r = text(S, C, unseen[i], (prop_convert_opts){fm, fm >= 0});
            CHECK(r.st == PROP_OK && r.v == -1.0);
            CHECK(r.cnt.n_unseen == 1 && r.cnt.n_filled == 0 && r.cnt.n_coerced == 0);
        }
    }
    /* an empty cell: -1, neither unseen nor filled, never an error */
    conv r = text(S, C, "", STRICT);
    CHECK(r.st == PROP_OK && r.v == -1.0 && no_counts(&r));
    /* a cell holding a NUL byte is compared byte for byte */
    double v;
    prop_convert_counts cnt = {0, 0, 0};
    prop_error err;
    CHECK(prop_schema_convert_text(S, C, "red\0x", 5, &STRICT, &v, &cnt, &err) == PROP_OK);
    CHECK(v == -1.0 && cnt.n_unseen == 1);
    CHECK(prop_schema_convert_text(S, C, "red\0x", 3, &STRICT, &v, &cnt, &err) == PROP_OK);
    CHECK(v == 0.0 && cnt.n_unseen == 1);
    /* a category column without categories: every value is unseen */
    r = text(S, E, "red", STRICT);
    CHECK(r.st == PROP_OK && r.v == -1.0 && r.cnt.n_unseen == 1);
    r = text(S, E, "", STRICT);
    CHECK(r.st == PROP_OK && r.v == -1.0 && no_counts(&r));
    /* numbers are refused: the caller formats them as text first */
    r = number(S, C, 1.0, STRICT);
    CHECK(r.st == PROP_INVALID_ARG && strstr(r.err.msg, "column 'c' is categorical") != NULL);
    prop_schema_free(S);

    /* many categories (table growth, collisions): every one found, others unseen */
    enum { K = 3000 };
    char *blob = malloc(K * 8);
    int64_t bl = 0;
    for (int i = 0; i < K; i++)
        bl += snprintf(blob + bl, 8, "v%d", i) + 1;
    const int32_t kind[1] = {PROP_KIND_CATEGORY};
    const double fill[1] = {NAN};
    const int64_t ncat[1] = {K};
    prop_schema_spec spec = {1, kind, fill, "many", 5, ncat, blob, bl};
    S = NULL;
    CHECK(prop_schema_create(&spec, &S, &err) == PROP_OK);
    memset(blob, 'x', (size_t)bl); /* the schema keeps its own copy */
    free(blob);
    if (S == NULL)
        return;
    int wrong = 0;
    for (int i = 0; i < K + 50; i++) {
        char s[16];
        snprintf(s, sizeof s, "v%d", i);
        conv c = text(S, 0, s, STRICT);
        if (c.st != PROP_OK || c.v != (i < K ? (double)i : -1.0) || c.cnt.n_unseen != (i >= K))
            wrong++;
    }
    CHECK(wrong == 0);
    CHECK(!prop_schema_all_binary(S));
    prop_schema_free(S);
}

/* A native category column: its codes, the "other" code for a value not among the
 * categories (counted), NaN for an empty cell and an absent column; more than 254
 * categories refused. */
static void test_native_category(void)
{
    const int32_t kind[2] = {PROP_KIND_CATEGORY_NATIVE, PROP_KIND_CATEGORY};
    const double fill[2] = {NAN, NAN};
    const int64_t ncat[2] = {3, 3};
    static const char cats[] = "red\0green\0\0blue\0green\0red";
    /* the first column's third category is "" (never matched: an empty cell is missing) */
    prop_schema_spec spec = {2, kind, fill, "n\0o", 4, ncat, cats, (int64_t)sizeof cats};
    prop_schema *S = NULL;
    prop_error err;
    CHECK(prop_schema_create(&spec, &S, &err) == PROP_OK);
    if (S == NULL)
        return;
    CHECK(prop_schema_kind(S, 0) == PROP_KIND_CATEGORY && prop_schema_native(S, 0));
    CHECK(prop_schema_kind(S, 1) == PROP_KIND_CATEGORY && !prop_schema_native(S, 1));
    CHECK(isnan(prop_schema_absent_value(S, 0)) && prop_schema_absent_value(S, 1) == -1.0);
    conv r = text(S, 0, "green", STRICT);
    CHECK(r.st == PROP_OK && r.v == 1.0 && r.cnt.n_unseen == 0);
    r = text(S, 0, "purple", STRICT);
    CHECK(r.st == PROP_OK && r.v == (double)PROP_SCHEMA_CAT_OTHER && r.cnt.n_unseen == 1);
    r = text(S, 0, "", STRICT);
    CHECK(r.st == PROP_OK && isnan(r.v) && r.cnt.n_unseen == 0 && r.cnt.n_filled == 0);
    r = text(S, 1, "purple", STRICT);   /* the one-hot column: -1, as before */
    CHECK(r.st == PROP_OK && r.v == -1.0 && r.cnt.n_unseen == 1);
    r = text(S, 1, "", STRICT);
    CHECK(r.st == PROP_OK && r.v == -1.0);
    /* a whole column, with a missing flag */
    const char blob[] = "redbluex";
    const int64_t off[5] = {0, 3, 7, 8, 8};
    const uint8_t miss[4] = {0, 0, 0, 1};
    double out[4];
    int64_t bad = 0;
    prop_convert_counts cnt = {0, 0, 0};
    CHECK(prop_schema_convert_column(S, 0, 4, NULL, blob, off, miss, &STRICT, out, 1, &cnt,
                                     &bad, &err) == PROP_OK);
    CHECK(out[0] == 0.0 && out[1] == 254.0 && out[2] == 254.0 && isnan(out[3]));
    CHECK(cnt.n_unseen == 2);
    prop_schema_free(S);

    /* 255 categories: refused for a native column, accepted for a one-hot one */
    enum { K = 255 };
    char *many = malloc(K * 8);
    int64_t bl = 0;
    for (int i = 0; i < K; i++)
        bl += snprintf(many + bl, 8, "v%d", i) + 1;
    const int32_t k1[1] = {PROP_KIND_CATEGORY_NATIVE};
    const int64_t n1[1] = {K};
    prop_schema_spec big = {1, k1, fill, "many", 5, n1, many, bl};
    S = NULL;
    CHECK(prop_schema_create(&big, &S, &err) == PROP_INVALID_ARG && S == NULL);
    CHECK(strstr(err.msg, "at most 254") != NULL);
    const int32_t k2[1] = {PROP_KIND_CATEGORY};
    big.kind = k2;
    CHECK(prop_schema_create(&big, &S, &err) == PROP_OK);
    prop_schema_free(S);
    free(many);
}

/* A value as a number and as its "%.17g" text: the same status, value, counters and
 * message, in a binary and a numeric column, under every option. */
static void test_text_and_number_agree(void)
{
    prop_schema *S = fixed_schema();
    if (S == NULL)
        return;
    const double vals[] = {0.0, 1.0, -0.0, 0.5, 0.49, 2.0, -1.0, 1e300, -1e-300, 1e-300,
                           0.9999999999999999, 1.0000000000000002, 3.25, INFINITY, -INFINITY,
                           NAN, 12345678.9};
    int mismatches = 0;
    const int64_t cols[4] = {B, BF, X, XF};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        char s[40];
        snprintf(s, sizeof s, "%.17g", vals[i]);
        for (int c = 0; c < 4; c++)
            for (int fm = -1; fm <= 1; fm++)
                for (int co = 0; co <= 1; co++) {
                    prop_convert_opts o = {fm, co};
                    conv a = text(S, cols[c], s, o), b = number(S, cols[c], vals[i], o);
                    int same = a.st == b.st && strcmp(a.err.msg, b.err.msg) == 0 &&
                               memcmp(&a.cnt, &b.cnt, sizeof a.cnt) == 0 &&
                               (a.st != PROP_OK || a.v == b.v);
                    if (!same && mismatches++ < 5)
                        fprintf(stderr, "'%s' column %lld fm=%d co=%d: text st=%d v=%g '%s', "
                                "number st=%d v=%g '%s'\n", s, (long long)cols[c], fm, co,
                                a.st, a.v, a.err.msg, b.st, b.v, b.err.msg);
                }
    }
    CHECK(mismatches == 0);
    /* the named example: "0.5" and 0.5 in a binary column */
    conv a = text(S, B, "0.5", STRICT), b = number(S, B, 0.5, STRICT);
    CHECK(a.st == PROP_FORMAT && b.st == PROP_FORMAT && strcmp(a.err.msg, b.err.msg) == 0);
    CHECK(strstr(a.err.msg, "value '0.5' is not 0 or 1") != NULL);
    a = text(S, B, "0.5", (prop_convert_opts){-1, 1});
    b = number(S, B, 0.5, (prop_convert_opts){-1, 1});
    CHECK(a.st == PROP_OK && b.st == PROP_OK && a.v == 1.0 && b.v == 1.0);
    CHECK(a.cnt.n_coerced == 1 && b.cnt.n_coerced == 1);
    prop_schema_free(S);
}

static void test_convert_column(void)
{
    prop_schema *S = fixed_schema();
    if (S == NULL)
        return;
    prop_error err;
    prop_convert_counts cnt = {0, 0, 0};
    int64_t bad = 123;
    double out[16];
    const prop_convert_opts fm0 = {0, 0};

    /* numbers, stride 2, NaN missing */
    const double nums[4] = {0.0, 1.0, NAN, 1.0};
    for (int i = 0; i < 16; i++)
        out[i] = -5.0;
    CHECK(prop_schema_convert_column(S, B, 4, nums, NULL, NULL, NULL, &fm0, out, 2, &cnt, &bad,
                                     &err) == PROP_OK);
    CHECK(bad == -1);
    CHECK(out[0] == 0 && out[2] == 1 && out[4] == 0 && out[6] == 1);
    CHECK(out[1] == -5.0 && out[3] == -5.0 && out[7] == -5.0); /* stride respected */
    CHECK(cnt.n_filled == 1 && cnt.n_coerced == 0);
    /* a missing mask overrides the value */
    const uint8_t miss[4] = {0, 1, 0, 0};
    memset(&cnt, 0, sizeof cnt);
    CHECK(prop_schema_convert_column(S, XF, 4, (const double[]){1, 2, 3, 4}, NULL, NULL, miss,
                                     &fm0, out, 1, &cnt, &bad, &err) == PROP_OK);
    CHECK(out[0] == 1 && out[1] == 2.5 && out[2] == 3 && out[3] == 4 && cnt.n_filled == 1);

    /* text through blob + offsets */
    const char blob[] = "1yes  no 0.0tRuE";
    const int64_t off[7] = {0, 1, 4, 6, 8, 12, 16};
    memset(&cnt, 0, sizeof cnt);
    CHECK(prop_schema_convert_column(S, B, 6, NULL, blob, off, NULL, &fm0, out, 1, &cnt, &bad,
                                     &err) == PROP_OK);
    CHECK(out[0] == 1 && out[1] == 1 && out[2] == 0 && out[3] == 0 && out[4] == 0 &&
          out[5] == 1);
    CHECK(cnt.n_filled == 1 && bad == -1); /* "  " is empty */
    /* a category column from text, with a missing mask and unseen values */
    const char cblob[] = "greenredpinkred";
    const int64_t coff[6] = {0, 5, 8, 12, 12, 15};
    const uint8_t cmiss[5] = {0, 0, 0, 0, 1};
    memset(&cnt, 0, sizeof cnt);
    CHECK(prop_schema_convert_column(S, C, 5, NULL, cblob, coff, cmiss, &STRICT, out, 1, &cnt,
                                     &bad, &err) == PROP_OK);
    CHECK(out[0] == 1 && out[1] == 0 && out[2] == -1 && out[3] == -1 && out[4] == -1);
    CHECK(cnt.n_unseen == 1 && cnt.n_filled == 0);

    /* the first bad row is reported, with the column and the value */
    memset(&cnt, 0, sizeof cnt);
    CHECK(prop_schema_convert_column(S, B, 5, (const double[]){0, 1, 2, 0.5, 1}, NULL, NULL,
                                     NULL, &STRICT, out, 1, &cnt, &bad, &err) == PROP_FORMAT);
    CHECK(bad == 2 && strstr(err.msg, "column 'b': value '2' is not 0 or 1") != NULL);
    const char tb[] = "01maybe1";
    const int64_t toff[5] = {0, 1, 2, 7, 8};
    CHECK(prop_schema_convert_column(S, B, 4, NULL, tb, toff, NULL, &STRICT, out, 1, &cnt, &bad,
                                     &err) == PROP_FORMAT);
    CHECK(bad == 2 && strstr(err.msg, "column 'b': value 'maybe' is not 0 or 1") != NULL);
    CHECK(prop_schema_convert_column(S, X, 3, (const double[]){1, NAN, 3}, NULL, NULL, NULL,
                                     &fm0, out, 1, &cnt, &bad, &err) == PROP_FORMAT);
    CHECK(bad == 1 && strstr(err.msg, "column 'x': empty cell") != NULL);
    const uint8_t m2[3] = {0, 0, 1};
    CHECK(prop_schema_convert_column(S, B, 3, (const double[]){1, 0, 1}, NULL, NULL, m2,
                                     &STRICT, out, 1, &cnt, &bad, &err) == PROP_FORMAT);
    CHECK(bad == 2 && strstr(err.msg, "empty cell") != NULL);
    /* numbers in a category column: refused at the first row */
    CHECK(prop_schema_convert_column(S, C, 2, (const double[]){0, 1}, NULL, NULL, NULL, &STRICT,
                                     out, 1, &cnt, &bad, &err) == PROP_INVALID_ARG);
    CHECK(bad == 0);
    /* a good call after a bad one resets bad_row */
    CHECK(prop_schema_convert_column(S, B, 1, (const double[]){1}, NULL, NULL, NULL, &STRICT,
                                     out, 1, &cnt, &bad, &err) == PROP_OK);
    CHECK(bad == -1);

    /* bad arguments */
    CHECK(prop_schema_convert_column(S, B, 2, nums, NULL, NULL, NULL, &STRICT, out, 0, &cnt,
                                     &bad, &err) == PROP_INVALID_ARG);
    CHECK(prop_schema_convert_column(S, NCOL, 2, nums, NULL, NULL, NULL, &STRICT, out, 1, &cnt,
                                     &bad, &err) == PROP_INVALID_ARG);
    CHECK(prop_schema_convert_column(S, -1, 2, nums, NULL, NULL, NULL, &STRICT, out, 1, &cnt,
                                     &bad, &err) == PROP_INVALID_ARG);
    CHECK(prop_schema_convert_column(S, B, 2, NULL, blob, NULL, NULL, &STRICT, out, 1, &cnt,
                                     &bad, &err) == PROP_INVALID_ARG);
    CHECK(prop_schema_convert_column(S, B, 2, NULL, NULL, off, NULL, &STRICT, out, 1, &cnt, &bad,
                                     &err) == PROP_INVALID_ARG);
    const int64_t down[3] = {0, 4, 2};
    CHECK(prop_schema_convert_column(S, B, 2, NULL, blob, down, NULL, &STRICT, out, 1, &cnt,
                                     &bad, &err) == PROP_INVALID_ARG);
    CHECK(strstr(err.msg, "offsets decrease at row 1") != NULL);
    const int64_t neg[2] = {-1, 0};
    CHECK(prop_schema_convert_column(S, B, 1, NULL, blob, neg, NULL, &STRICT, out, 1, &cnt, &bad,
                                     &err) == PROP_INVALID_ARG);
    CHECK(prop_schema_convert_column(S, B, 2, nums, NULL, NULL, NULL, &STRICT, NULL, 1, &cnt,
                                     &bad, &err) == PROP_INVALID_ARG);
    CHECK(prop_schema_convert_column(S, B, -1, nums, NULL, NULL, NULL, &STRICT, out, 1, &cnt,
                                     &bad, &err) == PROP_INVALID_ARG);
    CHECK(prop_schema_convert_column(S, B, 1, nums, NULL, NULL, NULL, &STRICT, out, 1, NULL,
                                     &bad, &err) == PROP_INVALID_ARG);
    /* no rows: nothing to do, out may be NULL */
    CHECK(prop_schema_convert_column(S, B, 0, nums, NULL, NULL, NULL, &STRICT, NULL, 1, &cnt,
                                     &bad, &err) == PROP_OK);
    /* an empty text column: offsets of zero length, no blob */
    const int64_t zoff[3] = {0, 0, 0};
    memset(&cnt, 0, sizeof cnt);
    CHECK(prop_schema_convert_column(S, XF, 2, NULL, NULL, zoff, NULL, &STRICT, out, 1, &cnt,
                                     &bad, &err) == PROP_OK);
    CHECK(out[0] == 2.5 && out[1] == 2.5 && cnt.n_filled == 2);
    prop_schema_free(S);
}

/* Random cells from a small alphabet: convert_column over text and convert_text cell by
 * cell agree; so do convert_column over numbers and convert_number. */

static void test_column_equals_cells_random(void)
{
    prop_schema *S = fixed_schema();
    if (S == NULL)
        return;
    static const char *tok[] = {"0", "1", " 1 ", "yes", "N", "0.5", "2", "-1", "", "nan",
                                "red", "green", "1.0", "inf", "x", "1e0", "  ", "0"};
    enum { N = 12 };
    int wrong = 0;
    for (int t = 0; t < 5000; t++) {
        int64_t col = (int64_t)(check_rand() % NCOL);
        prop_convert_opts o = {(int)(check_rand() % 3) - 1, (int)(check_rand() % 2)};
        char blob[N * 8];
        int64_t off[N + 1];
        uint8_t miss[N];
        off[0] = 0;
        for (int i = 0; i < N; i++) {
            const char *s = tok[check_rand() % (sizeof tok / sizeof *tok)];
            memcpy(blob + off[i], s, strlen(s));
            off[i + 1] = off[i] + (int64_t)strlen(s);
            miss[i] = check_rand() % 8 == 0;
        }
        int64_t n = (int64_t)(check_rand() % (N + 1));
        double out[N];
        prop_convert_counts cc = {0, 0, 0}, ce = {0, 0, 0};
        int64_t bad = -7;
        prop_error e1, e2;
        e1.msg[0] = e2.msg[0] = '\0';
        prop_status st = prop_schema_convert_column(S, col, n, NULL, blob, off, miss, &o, out, 1,
                                                    &cc, &bad, &e1);
        /* cell by cell */
        prop_status st2 = PROP_OK;
        int64_t bad2 = -1;
        double v;
        for (int64_t i = 0; i < n; i++) {
            const char *s = miss[i] ? "" : blob + off[i];
            size_t len = miss[i] ? 0 : (size_t)(off[i + 1] - off[i]);
            st2 = prop_schema_convert_text(S, col, s, len, &o, &v, &ce, &e2);
            if (st2 != PROP_OK) {
                bad2 = i;
                break;
            }
            if (v != out[i] && st == PROP_OK)
                wrong++;
        }
        if (st != st2 || bad != bad2 || memcmp(&cc, &ce, sizeof cc) != 0 ||
            (st != PROP_OK && strcmp(e1.msg, e2.msg) != 0))
            wrong++;
    }
    CHECK(wrong == 0);
    prop_schema_free(S);
}

/* Plain decimals take a fast path (an exact integer over an exact power of ten): the
 * value is bit for bit strtod's, for random decimals of every length and sign, and text
 * just outside the fast path (16+ digits, 23+ decimals, exponents, lone signs and dots)
 * gets strtod's verdict too. */
static void test_decimals_equal_strtod(void)
{
    prop_schema *S = fixed_schema();
    if (S == NULL)
        return;
    char txt[64];
    int bad = 0;
    for (int t = 0; t < 200000; t++) {
        uint64_t r = check_rand();
        int len = 1 + (int)(r % 19), point = (int)((r >> 8) % (uint64_t)(len + 2)) - 1;
        int k = 0;
        if ((r >> 16) % 3 == 0)
            txt[k++] = (r >> 18) % 2 ? '-' : '+';
        for (int d = 0; d < len; d++) {
            if (d == point)
                txt[k++] = '.';
            txt[k++] = (char)('0' + (check_rand() % 10));
        }
        if (point == len)
            txt[k++] = '.';
        txt[k] = '\0';
        conv c = text(S, X, txt, STRICT);
        char *end = NULL;
        double want = strtod(txt, &end);
        if (c.st != PROP_OK || memcmp(&c.v, &want, sizeof want) != 0 || *end != '\0') {
            if (bad++ < 5)
                fprintf(stderr, "decimal '%s': %.17g (status %d) vs strtod %.17g\n", txt, c.v,
                        (int)c.st, want);
        }
    }
    CHECK(bad == 0);
    static const char *edge[] = {"1234567890123456", "0.00000000000000000000001", "-0",
                                 "-0.0", "007", "5.", "-.5", "9007199254740993",
                                 "123456789012345.6", "1e5", "0x1p3"};
    for (size_t e = 0; e < sizeof edge / sizeof *edge; e++) {
        conv c = text(S, X, edge[e], STRICT);
        double want = strtod(edge[e], NULL);
        CHECK(c.st == PROP_OK && memcmp(&c.v, &want, sizeof want) == 0);
    }
    static const char *junk[] = {".", "-", "+.", "1.2.3", "--1", "1-"};
    for (size_t e = 0; e < sizeof junk / sizeof *junk; e++)
        CHECK(text(S, X, junk[e], STRICT).st == PROP_FORMAT);
    prop_schema_free(S);
}

int main(void)
{
    check_rng_state = 0x9E3779B97F4A7C15ull;
    RUN(test_create_and_accessors);
    RUN(test_create_refuses);
    RUN(test_binary_text);
    RUN(test_missing_and_fill);
    RUN(test_coerce);
    RUN(test_numeric_text);
    RUN(test_category);
    RUN(test_text_and_number_agree);
    RUN(test_native_category);
    RUN(test_convert_column);
    RUN(test_column_equals_cells_random);
    RUN(test_decimals_equal_strtod);
    return check_summary("schema");
}
