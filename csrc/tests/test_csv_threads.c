/* Threads in the CSV kernels: prop_csv_parse with n_threads > 1 (a block cut into parts
 * at line ends outside quotes) and prop_csv_format with n_threads > 1 give exactly the
 * one-thread results on blocks of a few MB: rows, id spans, counters, consumed bytes,
 * line counts, and on bad input the same status and message (the first bad row of the
 * block, numbered as one thread numbers it). Quotes that break the parity of the cut
 * (a quote inside an unquoted field) make the parser fall back to one thread. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "propensity/csvio.h"


/* fields: id, flag (binary), amount (numeric), colour (category), seen (binary) */
static const int64_t FF[4] = {1, 2, 3, 4};
static const char NAMES[] = "flag\0amount\0colour\0seen";
static const char CATS[] = "red\0green\0blue\0";
static prop_schema *S;

static void make_schema(void)
{
    const int32_t kind[4] = {PROP_KIND_BINARY, PROP_KIND_NUMERIC, PROP_KIND_CATEGORY,
                             PROP_KIND_BINARY};
    const double fill[4] = {NAN, 2.5, NAN, NAN};
    const int64_t ncat[4] = {0, 0, 3, 0};
    prop_schema_spec spec = {4, kind, fill, NAMES, (int64_t)sizeof NAMES, ncat, CATS,
                             (int64_t)sizeof CATS};
    prop_error err;
    CHECK(prop_schema_create(&spec, &S, &err) == PROP_OK);
}

typedef struct {
    char *buf;
    int64_t len, cap;
} text;

static void put(text *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len + (int64_t)n + 1 > t->cap) {
        t->cap = 2 * t->cap + (int64_t)n + 64;
        t->buf = realloc(t->buf, (size_t)t->cap);
    }
    memcpy(t->buf + t->len, s, n);
    t->len += (int64_t)n;
}

/* Random records: quoted ids with commas, doubled quotes and line ends; blank lines;
 * CRLF; every kind's spellings. `bad_at` >= 0 puts a bad value in that record. */
static void make_records(text *t, int64_t n, int64_t bad_at, int literal_quote_at);

/* Records without any quote (the usual session file): the parts are cut without the
 * quote scan. Blank lines, CRLF and a bad value as in make_records. */
static void make_plain_records(text *t, int64_t n, int64_t bad_at)
{
    static const char *flags[] = {"0", "1", "yes", "No", " 1 ", "true", "1.0"};
    static const char *amounts[] = {"12.5", "", "-3", "1e3", " 7 ", "0"};
    static const char *colours[] = {"red", "green", "blue", "", "pink"};
    char tmp[96];
    t->len = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = check_rand();
        if (r % 97 == 0)
            put(t, "\n");
        snprintf(tmp, sizeof tmp, "u%lld,%s,%s,%s,%s%s", (long long)i,
                 i == bad_at ? "maybe" : flags[(r >> 8) % 7], amounts[(r >> 16) % 6],
                 colours[(r >> 24) % 5], flags[(r >> 32) % 7], (r >> 40) % 3 == 0 ? "\r\n" : "\n");
        put(t, tmp);
    }
}

static void make_records(text *t, int64_t n, int64_t bad_at, int literal_quote_at)
{
    static const char *flags[] = {"0", "1", "yes", "No", " 1 ", "\"0\"", "true", "1.0"};
    static const char *amounts[] = {"12.5", "", "-3", "1e3", " 7 ", "\"4.25\"", "0"};
    static const char *colours[] = {"red", "green", "blue", "", "pink", "\"re\"\"d\"",
                                    "\"blue,x\""};
    char tmp[96];
    t->len = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = check_rand();
        if (r % 97 == 0)
            put(t, "\n");                       /* a blank line */
        if (i == literal_quote_at)
            snprintf(tmp, sizeof tmp, "id%lld\"x", (long long)i); /* a quote mid-field */
        else if (r % 5 == 0)
            snprintf(tmp, sizeof tmp, "\"id %lld, \"\"q\"\"\nnext\"", (long long)i);
        else
            snprintf(tmp, sizeof tmp, "u%lld", (long long)i);
        put(t, tmp);
        put(t, ",");
        put(t, i == bad_at ? "maybe" : flags[(r >> 8) % 8]);
        put(t, ",");
        put(t, amounts[(r >> 16) % 7]);
        put(t, ",");
        put(t, colours[(r >> 24) % 7]);
        put(t, ",");
        put(t, flags[(r >> 32) % 8]);
        put(t, (r >> 40) % 3 == 0 ? "\r\n" : "\n");
    }
}

typedef struct {
    prop_status st;
    prop_csv_result res;
    double *V;
    int64_t *span;
    prop_error err;
} parsed;

static void parse(const text *t, int64_t len, int final, int threads, parsed *o)
{
    prop_csv_params p;
    memset(&p, 0, sizeof p);
    p.schema = S;
    p.delimiter = ',';
    p.n_fields = 5;
    p.id_field = 0;
    p.n_features = 4;
    p.feature_field = FF;
    p.fill_missing = -1;
    p.final_block = final;
    p.first_line = 2;
    p.first_row = 1;
    p.n_threads = threads;
    int64_t rows = prop_csv_max_records(t->buf, len);
    o->V = calloc((size_t)(rows * 4 + 1), sizeof *o->V);
    o->span = calloc((size_t)(rows * 2 + 1), sizeof *o->span);
    prop_error_clear(&o->err);
    o->st = prop_csv_parse(&p, t->buf, len, rows, NULL, o->V, o->span, &o->res, &o->err);
}

static int same(const parsed *a, const parsed *b)
{
    if (a->st != b->st || strcmp(a->err.msg, b->err.msg) != 0) {
        fprintf(stderr, "status %d vs %d: '%s' vs '%s'\n", a->st, b->st, a->err.msg, b->err.msg);
        return 0;
    }
    const prop_csv_result *x = &a->res, *y = &b->res;
    if (x->n_rows != y->n_rows || x->consumed != y->consumed || x->n_lines != y->n_lines ||
        x->n_coerced != y->n_coerced || x->n_filled != y->n_filled || x->n_unseen != y->n_unseen) {
        fprintf(stderr, "results differ: rows %lld/%lld consumed %lld/%lld lines %lld/%lld "
                "filled %lld/%lld unseen %lld/%lld\n", (long long)x->n_rows, (long long)y->n_rows,
                (long long)x->consumed, (long long)y->consumed, (long long)x->n_lines,
                (long long)y->n_lines, (long long)x->n_filled, (long long)y->n_filled,
                (long long)x->n_unseen, (long long)y->n_unseen);
        return 0;
    }
    if (a->st != PROP_OK)
        return 1;
    return memcmp(a->V, b->V, (size_t)(x->n_rows * 4) * sizeof *a->V) == 0 &&
           memcmp(a->span, b->span, (size_t)(x->n_rows * 2) * sizeof *a->span) == 0;
}

static void release(parsed *o)
{
    free(o->V);
    free(o->span);
}

static void compare(const text *t, int64_t len, int final)
{
    parsed one;
    parse(t, len, final, 1, &one);
    for (int threads = 2; threads <= 9; threads += 7 - 4 * (threads == 2)) {
        parsed many;
        parse(t, len, final, threads, &many);
        CHECK(same(&one, &many));
        release(&many);
    }
    release(&one);
}

static void test_parse_threads_equal_one_thread(void)
{
    text t = {0};
    make_records(&t, 90000, -1, -1); /* about 2.6 MB: 9 parts of 256 KB or more */
    CHECK(t.len > 9 * (1 << 18));
    compare(&t, t.len, 1);
    parsed one;
    parse(&t, t.len, 1, 1, &one);
    CHECK(one.st == PROP_OK && one.res.n_rows == 90000 && one.res.consumed == t.len);
    release(&one);
    for (int k = 0; k < 6; k++) /* a block that ends anywhere, not final */
        compare(&t, t.len / 2 + (int64_t)(check_rand() % (uint64_t)(t.len / 2)), 0);
    compare(&t, t.len - 7, 1); /* final and cut short: truncated last line */
    free(t.buf);
}

static void test_parse_threads_without_quotes(void)
{
    text t = {0};
    make_plain_records(&t, 120000, -1); /* about 2.4 MB */
    CHECK(memchr(t.buf, '"', (size_t)t.len) == NULL && t.len > 9 * (1 << 18));
    compare(&t, t.len, 1);
    for (int k = 0; k < 6; k++)
        compare(&t, t.len / 2 + (int64_t)(check_rand() % (uint64_t)(t.len / 2)), 0);
    compare(&t, t.len - 3, 1);
    make_plain_records(&t, 120000, 77777);
    compare(&t, t.len, 1);
    parsed one;
    parse(&t, t.len, 1, 4, &one);
    CHECK(one.st == PROP_FORMAT && strstr(one.err.msg, "data row 77778") != NULL);
    release(&one);
    free(t.buf);
}

static void test_max_records_threads(void)
{
    text t = {0};
    make_records(&t, 150000, -1, -1); /* about 4 MB, quotes and line ends inside them */
    prop_error err;
    for (int64_t len = t.len; len > t.len - 40; len -= 13)
        for (int threads = 1; threads <= 5; threads++) {
            int64_t got = -1;
            CHECK(prop_csv_max_records_threads(t.buf, len, threads, &got, &err) == PROP_OK);
            CHECK(got == prop_csv_max_records(t.buf, len));
        }
    int64_t got;
    CHECK(prop_csv_max_records_threads(t.buf, t.len, 0, &got, &err) == PROP_INVALID_ARG);
    CHECK(prop_csv_max_records_threads(NULL, 0, 2, &got, &err) == PROP_OK && got == 0);
    free(t.buf);
}

static void test_parse_threads_report_the_first_bad_row(void)
{
    text t = {0};
    for (int k = 0; k < 4; k++) {
        int64_t bad = 1000 + (int64_t)(check_rand() % 58000);
        make_records(&t, 60000, bad, -1);
        parsed one, many;
        parse(&t, t.len, 1, 1, &one);
        parse(&t, t.len, 1, 4, &many);
        CHECK(one.st == PROP_FORMAT && strstr(one.err.msg, "'maybe'") != NULL);
        char want[64];
        snprintf(want, sizeof want, "(data row %lld)", (long long)(bad + 1));
        CHECK(strstr(one.err.msg, want) != NULL);
        CHECK(same(&one, &many));
        release(&one);
        release(&many);
    }
    free(t.buf);
}

static void test_parse_threads_fall_back_on_odd_quotes(void)
{
    text t = {0};
    make_records(&t, 60000, -1, 20000); /* id20000"x: a literal quote flips the parity */
    compare(&t, t.len, 1);
    compare(&t, t.len - 1000, 0);
    free(t.buf);
}

static void test_format_threads_equal_one_thread(void)
{
    const int64_t n = 300000;
    uint8_t *pred = malloc((size_t)n);
    double *proba = malloc((size_t)n * sizeof *proba);
    int64_t *span = malloc((size_t)(2 * n) * sizeof *span);
    char *ids = malloc((size_t)(n * 12));
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        proba[i] = (double)(check_rand() % 1000001) / 1e6;
        pred[i] = proba[i] >= 0.4;
        int k = snprintf(ids + at, 12, i % 7 ? "c%lld" : "a,%lld", (long long)i);
        span[2 * i] = at;
        span[2 * i + 1] = k;
        at += k;
    }
    for (int with_ids = 0; with_ids < 2; with_ids++) {
        prop_csv_format_params fp = {6, "2026-12-01T00:00:00+00:00", 25, with_ids, 5, 1};
        const int64_t *sp = with_ids ? span : NULL;
        int64_t cap = prop_csv_format_bound(&fp, n, sp);
        char *a = malloc((size_t)cap), *b = malloc((size_t)cap);
        int64_t wa = 0, wb = 0;
        prop_error err;
        CHECK(prop_csv_format(&fp, n, ids, sp, pred, proba, a, cap, &wa, &err) == PROP_OK);
        for (int threads = 2; threads <= 7; threads += 5) {
            fp.n_threads = threads;
            CHECK(prop_csv_format(&fp, n, ids, sp, pred, proba, b, cap, &wb, &err) == PROP_OK);
            CHECK(wa == wb && memcmp(a, b, (size_t)wa) == 0);
        }
        fp.n_threads = 0;
        CHECK(prop_csv_format(&fp, n, ids, sp, pred, proba, b, cap, &wb, &err) ==
              PROP_INVALID_ARG);
        free(a);
        free(b);
    }
    free(pred);
    free(proba);
    free(span);
    free(ids);
}

static void test_thread_count_is_checked(void)
{
    text t = {0};
    make_records(&t, 10, -1, -1);
    parsed o;
    parse(&t, t.len, 1, 0, &o);
    CHECK(o.st == PROP_INVALID_ARG && strstr(o.err.msg, "n_threads") != NULL);
    release(&o);
    parse(&t, t.len, 1, 1025, &o);
    CHECK(o.st == PROP_INVALID_ARG);
    release(&o);
    free(t.buf);
}

int main(void)
{
    check_rng_state = 0x9e3779b97f4a7c15ull;
    make_schema();
    RUN(test_parse_threads_equal_one_thread);
    RUN(test_parse_threads_without_quotes);
    RUN(test_max_records_threads);
    RUN(test_parse_threads_report_the_first_bad_row);
    RUN(test_parse_threads_fall_back_on_odd_quotes);
    RUN(test_format_threads_equal_one_thread);
    RUN(test_thread_count_is_checked);
    prop_schema_free(S);
    return check_summary("csv_threads");
}
