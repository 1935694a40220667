/* Tests of the CSV kernels: fixed cases, block splitting, and the fast parser and
 * formatter against their plain reference versions on random input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/csvio.h"

/* Header of the fixed cases: UserID,a,b,ordered ; model columns: b, a, z (absent). */
static const int64_t FF[3] = {2, 1, -1};
static const char NAMES[] = "UserID\0a\0b\0ordered";

static prop_csv_params params(int final)
{
    prop_csv_params p;
    memset(&p, 0, sizeof p);
    p.delimiter = ',';
    p.n_fields = 4;
    p.id_field = 0;
    p.n_features = 3;
    p.feature_field = FF;
    p.names = NAMES;
    p.names_len = (int64_t)sizeof NAMES;
    p.fill_missing = -1;
    p.final_block = final;
    p.first_line = 2;
    p.first_row = 1;
    return p;
}

typedef struct {
    prop_status st;
    prop_csv_result res;
    uint8_t X[3 * 64];
    int64_t span[2 * 64];
    uint64_t keys[64];
    prop_error err;
} parsed;

static void run(const prop_csv_params *p, const char *buf, int64_t len, int ref, parsed *o)
{
    memset(o, 0, sizeof *o);
    o->st = (ref ? prop_csv_parse_ref : prop_csv_parse)(p, buf, len, 64, o->X, o->span, o->keys,
                                                        &o->res, &o->err);
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
        parsed o;
        run(&p, csv, (int64_t)strlen(csv), ref, &o);
        CHECK(o.st == PROP_OK);
        CHECK(o.res.n_rows == 3);
        CHECK(o.res.consumed == (int64_t)strlen(csv));
        CHECK(o.res.n_lines == 4);
        /* columns b, a, z */
        CHECK(o.X[0] == 0 && o.X[1] == 1 && o.X[2] == 0);
        CHECK(o.X[3] == 1 && o.X[4] == 0 && o.X[5] == 0);
        CHECK(o.X[6] == 1 && o.X[7] == 1 && o.X[8] == 0);
        CHECK(o.keys[0] == 2 && o.keys[1] == 1 && o.keys[2] == 3);
        CHECK(id_is(csv, &o, 0, "007"));
        CHECK(id_is(csv, &o, 1, "\"a,\"\"b\"\"\nc\""));
        CHECK(id_is(csv, &o, 2, "x"));
    }
}

static void expect_error(prop_csv_params p, const char *csv, const char *a, const char *b)
{
    for (int ref = 0; ref < 2; ref++) {
        parsed o;
        run(&p, csv, (int64_t)strlen(csv), ref, &o);
        CHECK(o.st == PROP_FORMAT);
        if (strstr(o.err.msg, a) == NULL || (b && strstr(o.err.msg, b) == NULL)) {
            fprintf(stderr, "message: %s (wanted %s / %s)\n", o.err.msg, a, b ? b : "");
            CHECK(0);
        }
    }
}

static void test_errors_name_line_column_value(void)
{
    expect_error(params(1), "u1,0,1,0\nu2,0,2,0\n", "line 3 (data row 2), column 'b'", "'2'");
    expect_error(params(1), "u1,0,1,0\nu2,yes,1,0\n", "column 'a'", "'yes' is not a number");
    expect_error(params(1), "u1,0,1,0\nu2,,1,0\n", "line 3 (data row 2), column 'a': empty", NULL);
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
}

static void test_fill_missing_and_coerce(void)
{
    prop_csv_params p = params(1);
    p.fill_missing = 0;
    p.coerce = 1;
    const char *csv = "u1,,2,0\nu2,0.7,-3,0\nu3,NaN,0.2,0\n";
    for (int ref = 0; ref < 2; ref++) {
        parsed o;
        run(&p, csv, (int64_t)strlen(csv), ref, &o);
        CHECK(o.st == PROP_OK);
        CHECK(o.res.n_rows == 3);
        CHECK(o.res.n_filled == 2);
        CHECK(o.res.n_coerced == 4);
        CHECK(o.X[0] == 1 && o.X[1] == 0);
        CHECK(o.X[3] == 0 && o.X[4] == 1);
        CHECK(o.X[6] == 0 && o.X[7] == 0);
    }
}

static void test_bad_params(void)
{
    prop_csv_params p = params(1);
    prop_error err;
    int64_t ff[2] = {1, 1};
    p.feature_field = ff;
    p.n_features = 2;
    CHECK(prop_csv_check_params(&p, &err) == PROP_INVALID_ARG);
    p = params(1);
    p.id_field = 4;
    CHECK(prop_csv_check_params(&p, &err) == PROP_INVALID_ARG);
    p = params(1);
    p.delimiter = '"';
    CHECK(prop_csv_check_params(&p, &err) == PROP_INVALID_ARG);
    p = params(1);
    parsed o;
    memset(&o, 0, sizeof o);
    /* more records than max_rows */
    const char *csv = "a,0,0,0\nb,0,0,0\n";
    CHECK(prop_csv_parse(&p, csv, (int64_t)strlen(csv), 1, o.X, o.span, o.keys, &o.res,
                         &o.err) == PROP_INVALID_ARG);
    CHECK(prop_csv_max_records(csv, (int64_t)strlen(csv)) == 3);
}

/* Random text over a small alphabet: both parsers agree on status, message and outputs,
 * and parsing in two blocks (non-final + carried-over final) equals parsing at once. */
static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int same(const parsed *a, const parsed *b, int64_t nf)
{
    if (a->st != b->st || strcmp(a->err.msg, b->err.msg) != 0)
        return 0;
    if (a->st != PROP_OK)
        return 1;
    if (memcmp(&a->res, &b->res, sizeof a->res) != 0)
        return 0;
    for (int64_t i = 0; i < a->res.n_rows; i++) {
        if (memcmp(a->X + i * nf, b->X + i * nf, (size_t)nf) != 0 || a->keys[i] != b->keys[i] ||
            a->span[2 * i] != b->span[2 * i] || a->span[2 * i + 1] != b->span[2 * i + 1])
            return 0;
    }
    return 1;
}

static void make_text(char *buf, int64_t len, int noisy)
{
    static const char clean[] = "01010101,,,\n";
    static const char noise[] = "01,\n\"\r 2ab.";
    for (int64_t i = 0; i < len; i++) {
        const char *al = noisy ? noise : clean;
        size_t n = noisy ? sizeof noise - 1 : sizeof clean - 1;
        buf[i] = al[rnd() % n];
    }
}

static void test_fast_equals_reference_random(void)
{
    char buf[200];
    int mismatches = 0;
    for (int t = 0; t < 20000; t++) {
        int64_t len = (int64_t)(rnd() % 120);
        make_text(buf, len, t % 2);
        prop_csv_params p = params((int)(rnd() % 2));
        p.fill_missing = (int)(rnd() % 2) - 1;
        p.coerce = (int)(rnd() % 2);
        parsed a, b;
        run(&p, buf, len, 0, &a);
        run(&p, buf, len, 1, &b);
        if (p.final_block && a.st == PROP_OK && len > 0) {
            /* two blocks give the same rows as one */
            prop_csv_params p1 = p;
            p1.final_block = 0;
            int64_t cut = (int64_t)(rnd() % (uint64_t)len);
            parsed c, e;
            run(&p1, buf, cut, 0, &c);
            CHECK(c.st == PROP_OK);
            prop_csv_params p2 = p;
            p2.first_line += c.res.n_lines;
            p2.first_row += c.res.n_rows;
            run(&p2, buf + c.res.consumed, len - c.res.consumed, 0, &e);
            CHECK(e.st == PROP_OK);
            CHECK(c.res.n_rows + e.res.n_rows == a.res.n_rows);
            CHECK(c.res.n_coerced + e.res.n_coerced == a.res.n_coerced);
            CHECK(c.res.n_filled + e.res.n_filled == a.res.n_filled);
            for (int64_t i = 0; i < e.res.n_rows; i++)
                CHECK(e.keys[i] == a.keys[c.res.n_rows + i]);
        }
        if (!same(&a, &b, 3)) {
            if (mismatches++ < 3)
                fprintf(stderr, "mismatch on [%.*s] final=%d: fast st=%d '%s' rows=%lld, "
                        "ref st=%d '%s' rows=%lld\n", (int)len, buf, p.final_block, a.st,
                        a.err.msg, (long long)a.res.n_rows, b.st, b.err.msg,
                        (long long)b.res.n_rows);
        }
    }
    CHECK(mismatches == 0);
}

static void test_blocks_equal_whole(void)
{
    const char *csv = "u1,0,1,0\r\n\"q,\n1\",1,1,0\n\nu3,\"0\",0,1\nu4,1,1,1";
    int64_t len = (int64_t)strlen(csv);
    prop_csv_params p = params(1);
    parsed whole;
    run(&p, csv, len, 0, &whole);
    CHECK(whole.st == PROP_OK && whole.res.n_rows == 4);
    for (int ref = 0; ref < 2; ref++) {
        for (int64_t cut = 0; cut <= len; cut++) {
            parsed a, b;
            prop_csv_params p1 = params(0);
            run(&p1, csv, cut, ref, &a);
            CHECK(a.st == PROP_OK);
            prop_csv_params p2 = params(1);
            p2.first_line = p1.first_line + a.res.n_lines;
            p2.first_row = p1.first_row + a.res.n_rows;
            run(&p2, csv + a.res.consumed, len - a.res.consumed, ref, &b);
            CHECK(b.st == PROP_OK);
            CHECK(a.res.n_rows + b.res.n_rows == 4);
            for (int64_t i = 0; i < a.res.n_rows; i++) {
                CHECK(a.keys[i] == whole.keys[i]);
                CHECK(a.span[2 * i] == whole.span[2 * i]);
            }
            for (int64_t i = 0; i < b.res.n_rows; i++) {
                int64_t w = a.res.n_rows + i;
                CHECK(b.keys[i] == whole.keys[w]);
                CHECK(b.span[2 * i] + a.res.consumed == whole.span[2 * w]);
                CHECK(b.span[2 * i + 1] == whole.span[2 * w + 1]);
            }
        }
    }
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
        proba[i] = i < 10 ? ties[i] : (double)(rnd() >> 11) / 9007199254740992.0;
        if (i % 7 == 0 && i >= 10)
            proba[i] = (double)(rnd() % 2001) / 2000.0;
        pred[i] = (uint8_t)(proba[i] >= 0.3);
        span[2 * i] = spans[i % 5][0];
        span[2 * i + 1] = spans[i % 5][1];
    }
    static char a[N * 200], b[N * 200];
    for (int digits = 0; digits <= 15; digits++) {
        for (int mode = 0; mode < 2; mode++) {
            prop_csv_format_params fp = {digits, "2026-01-01T00:00:00", 19, mode, 100};
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
    prop_csv_format_params fp = {6, "T", 1, 1, 0};
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
}

int main(void)
{
    RUN(test_basic_rows);
    RUN(test_errors_name_line_column_value);
    RUN(test_fill_missing_and_coerce);
    RUN(test_bad_params);
    RUN(test_fast_equals_reference_random);
    RUN(test_blocks_equal_whole);
    RUN(test_format_matches_reference);
    return check_summary("csvio");
}
