/* schema.c - the value rules of model inputs (see schema.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/schema.h"

/* Category lookup: open addressing on an FNV-1a hash of the bytes. */
typedef struct {
    int64_t n;          /* categories */
    int64_t mask;       /* table size - 1 (a power of two >= 2n) */
    int64_t *slot;      /* category index, -1 for empty */
    const char **text;  /* [n] into the schema's copy of the names */
    size_t *len;        /* [n] */
} cat_table;

struct prop_schema {
    int64_t n_columns;
    int32_t *kind;
    double *fill;
    char **name;
    cat_table *cats; /* [n_columns]; n == 0 for other kinds */
    uint8_t *native; /* [n_columns] 1: a native category column */
    char *cat_blob;
    int all_binary;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* memcmp(a, b, n) == 0 without a call for the short texts of category values. */
static inline int bytes_equal(const char *a, const char *b, size_t n)
{
    if (n > 16)
        return memcmp(a, b, n) == 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static int64_t cat_find(const cat_table *t, const char *s, size_t n)
{
    if (t->n == 0)
        return -1;
    int64_t i = (int64_t)(hash_bytes(s, n) & (uint64_t)t->mask);
    for (;;) {
        int64_t c = t->slot[i];
        if (c < 0)
            return -1;
        if (t->len[c] == n && bytes_equal(t->text[c], s, n))
            return c;
        i = (i + 1) & t->mask;
    }
}

void prop_schema_free(prop_schema *S)
{
    if (S == NULL)
        return;
    if (S->name != NULL)
        for (int64_t j = 0; j < S->n_columns; j++)
            free(S->name[j]);
    if (S->cats != NULL)
        for (int64_t j = 0; j < S->n_columns; j++) {
            free(S->cats[j].slot);
            free(S->cats[j].text);
            free(S->cats[j].len);
        }
    free(S->name);
    free(S->cats);
    free(S->kind);
    free(S->native);
    free(S->fill);
    free(S->cat_blob);
    free(S);
}

static char *copy_name(const char **s, const char *end, int64_t j)
{
    char tmp[32];
    const char *p = *s;
    size_t n = 0;
    if (p != NULL && p < end) {
        while (p + n < end && p[n] != '\0')
            n++;
        *s = p + n + (p + n < end);
    } else {
        n = (size_t)snprintf(tmp, sizeof tmp, "column %lld", (long long)(j + 1));
        p = tmp;
    }
    char *out = malloc(n + 1);
    if (out != NULL) {
        memcpy(out, p, n);
        out[n] = '\0';
    }
    return out;
}

prop_status prop_schema_create(const prop_schema_spec *spec, prop_schema **out, prop_error *err)
{
    if (out == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "schema: out is NULL");
    *out = NULL;
    if (spec == NULL || spec->n_columns < 1 || spec->kind == NULL || spec->fill == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "schema: n_columns must be >= 1 with kinds "
                         "and fill values");
    if (spec->names_len < 0 || (spec->names_len > 0 && spec->names == NULL) ||
        spec->categories_len < 0 || (spec->categories_len > 0 && spec->categories == NULL))
        return prop_fail(err, PROP_INVALID_ARG, "schema: bad names or categories buffer");
    const int64_t m = spec->n_columns;
    prop_schema *S = calloc(1, sizeof *S);
    if (S == NULL)
        return prop_fail(err, PROP_NOMEM, "out of memory (schema)");
    S->n_columns = m;
    S->kind = malloc((size_t)m * sizeof *S->kind);
    S->fill = malloc((size_t)m * sizeof *S->fill);
    S->name = calloc((size_t)m, sizeof *S->name);
    S->cats = calloc((size_t)m, sizeof *S->cats);
    S->native = calloc((size_t)m, sizeof *S->native);
    if (S->kind == NULL || S->fill == NULL || S->name == NULL || S->cats == NULL ||
        S->native == NULL)
        goto nomem;
    if (spec->categories_len > 0) {
        S->cat_blob = malloc((size_t)spec->categories_len);
        if (S->cat_blob == NULL)
            goto nomem;
        memcpy(S->cat_blob, spec->categories, (size_t)spec->categories_len);
    }
    S->all_binary = 1;
    /* no names / no categories: NULL buffers, and NULL + 0 is undefined behaviour */
    const char *names = spec->names;
    const char *names_end = names != NULL ? names + spec->names_len : NULL;
    const char *cp = S->cat_blob, *cend = cp != NULL ? cp + spec->categories_len : NULL;
    for (int64_t j = 0; j < m; j++) {
        int32_t k = spec->kind[j];
        if (k != PROP_KIND_BINARY && k != PROP_KIND_NUMERIC && k != PROP_KIND_CATEGORY &&
            k != PROP_KIND_CATEGORY_NATIVE) {
            prop_schema_free(S);
            return prop_fail(err, PROP_INVALID_ARG, "schema: column %lld has kind %d",
                             (long long)j, (int)k);
        }
        if (k == PROP_KIND_CATEGORY_NATIVE) {
            S->native[j] = 1;
            k = PROP_KIND_CATEGORY;
        }
        S->kind[j] = k;
        S->fill[j] = spec->fill[j];
        if (k == PROP_KIND_BINARY && !isnan(spec->fill[j]) && spec->fill[j] != 0.0 &&
            spec->fill[j] != 1.0) {
            prop_schema_free(S);
            return prop_fail(err, PROP_INVALID_ARG, "schema: binary column %lld has fill %g",
                             (long long)j, spec->fill[j]);
        }
        if (k == PROP_KIND_NUMERIC && isinf(spec->fill[j])) {
            prop_schema_free(S);
            return prop_fail(err, PROP_INVALID_ARG, "schema: column %lld has an infinite fill",
                             (long long)j);
        }
        if (k != PROP_KIND_BINARY)
            S->all_binary = 0;
        S->name[j] = copy_name(&names, names_end, j);
        if (S->name[j] == NULL)
            goto nomem;
        int64_t nc = spec->n_categories != NULL ? spec->n_categories[j] : 0;
        if (nc < 0 || (nc > 0 && k != PROP_KIND_CATEGORY) ||
            (S->native[j] && nc > PROP_SCHEMA_MAX_NATIVE)) {
            const int native = S->native[j];
            prop_schema_free(S);
            return prop_fail(err, PROP_INVALID_ARG, "schema: column %lld has %lld categories%s",
                             (long long)j, (long long)nc,
                             native ? " (a native category column has at most 254)" : "");
        }
        cat_table *t = &S->cats[j];
        if (nc == 0)
            continue;
        int64_t size = 16;
        while (size < 2 * nc)
            size *= 2;
        t->n = nc;
        t->mask = size - 1;
        t->slot = malloc((size_t)size * sizeof *t->slot);
        t->text = malloc((size_t)nc * sizeof *t->text);
        t->len = malloc((size_t)nc * sizeof *t->len);
        if (t->slot == NULL || t->text == NULL || t->len == NULL)
            goto nomem;
        for (int64_t i = 0; i < size; i++)
            t->slot[i] = -1;
        for (int64_t c = 0; c < nc; c++) {
            if (cp == NULL || cp >= cend) {
                prop_schema_free(S);
                return prop_fail(err, PROP_INVALID_ARG, "schema: the category buffer holds "
                                 "fewer names than n_categories says");
            }
            const char *nul = memchr(cp, '\0', (size_t)(cend - cp));
            if (nul == NULL) {
                prop_schema_free(S);
                return prop_fail(err, PROP_INVALID_ARG, "schema: unterminated category name");
            }
            size_t n = (size_t)(nul - cp);
            if (cat_find(t, cp, n) >= 0) {
                /* the message first: it reads the name and the category from S */
                prop_fail(err, PROP_INVALID_ARG, "schema: column '%s' lists the "
                          "category '%.60s' twice", S->name[j], cp);
                prop_schema_free(S);
                return PROP_INVALID_ARG;
            }
            t->text[c] = cp;
            t->len[c] = n;
            int64_t i = (int64_t)(hash_bytes(cp, n) & (uint64_t)t->mask);
            while (t->slot[i] >= 0)
                i = (i + 1) & t->mask;
            t->slot[i] = c;
            cp += n + 1;
        }
    }
    *out = S;
    return PROP_OK;
nomem:
    prop_schema_free(S);
    return prop_fail(err, PROP_NOMEM, "out of memory (schema of %lld columns)", (long long)m);
}

int64_t prop_schema_n_columns(const prop_schema *S) { return S->n_columns; }
prop_kind prop_schema_kind(const prop_schema *S, int64_t col) { return (prop_kind)S->kind[col]; }
int prop_schema_all_binary(const prop_schema *S) { return S->all_binary; }
int prop_schema_native(const prop_schema *S, int64_t col) { return S->native[col]; }

double prop_schema_absent_value(const prop_schema *S, int64_t col)
{
    if (S->kind[col] == PROP_KIND_CATEGORY)
        return S->native[col] ? NAN : -1.0;
    return isnan(S->fill[col]) ? 0.0 : S->fill[col];
}

void prop_schema_column_name(const prop_schema *S, int64_t col, char *out, size_t size)
{
    snprintf(out, size, "%s", S->name[col]);
}

/* ------------------------------------------------------------------ */
/* Messages                                                             */
/* ------------------------------------------------------------------ */

/* A printable, shortened copy of a value for messages. */
static void show_value(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < size; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 40) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 32 || c == 127)
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o < size ? o : size - 1] = '\0';
}

static prop_status value_error(const prop_schema *S, int64_t col, const char *s, size_t n,
                               const char *why, prop_error *err)
{
    char val[200];
    show_value(s, n, val, sizeof val);
    return prop_fail(err, PROP_FORMAT, "column '%.100s': value '%s' %s", S->name[col], val, why);
}

static const char *NOT_BINARY = "is not 0 or 1 (coerce=True / --coerce clips values to 0/1)";
static const char *NOT_BINARY_TEXT = "is not 0 or 1 (this column holds 0/1; true/false and "
                                     "yes/no are read as 1/0)";
static const char *NOT_NUMBER = "is not a number";
static const char *INFINITE = "is infinite; only finite numbers are allowed";

/* ------------------------------------------------------------------ */
/* Conversion                                                           */
/* ------------------------------------------------------------------ */

static prop_status missing_value(const prop_schema *S, int64_t col, const prop_convert_opts *o,
                                 double *out, prop_convert_counts *cnt, prop_error *err)
{
    const int32_t k = S->kind[col];
    if (k == PROP_KIND_CATEGORY) {
        *out = S->native[col] ? NAN : -1.0;
        return PROP_OK;
    }
    if (!isnan(S->fill[col])) {
        *out = S->fill[col];
    } else if (k == PROP_KIND_BINARY && o->fill_missing >= 0) {
        *out = (double)o->fill_missing;
    } else if (k == PROP_KIND_BINARY) {
        return prop_fail(err, PROP_FORMAT,
                         "column '%.100s': empty cell (fill_missing=0 / --fill-missing 0 fills "
                         "empty cells with 0)", S->name[col]);
    } else {
        return prop_fail(err, PROP_FORMAT, "column '%.100s': empty cell (this numeric column "
                         "has no fill value)", S->name[col]);
    }
    cnt->n_filled++;
    return PROP_OK;
}

/* value_error for a number given as text s[0:n], or as a number (s NULL: shown %.17g). */
static prop_status number_error(const prop_schema *S, int64_t col, double v, const char *s,
                                size_t n, const char *why, prop_error *err)
{
    char tmp[40];
    if (s == NULL) {
        n = (size_t)snprintf(tmp, sizeof tmp, "%.17g", v);
        s = tmp;
    }
    return value_error(S, col, s, n, why, err);
}

/* The rule for a number of a binary or numeric column (NaN handled by the caller). */
static prop_status number_value(const prop_schema *S, int64_t col, double v, const char *s,
                                size_t n, const prop_convert_opts *o, double *out,
                                prop_convert_counts *cnt, prop_error *err)
{
    if (S->kind[col] == PROP_KIND_NUMERIC) {
        if (isinf(v))
            return number_error(S, col, v, s, n, INFINITE, err);
        *out = v;
        return PROP_OK;
    }
    if (v == 0.0 || v == 1.0) {
        *out = v;
        return PROP_OK;
    }
    if (!o->coerce)
        return number_error(S, col, v, s, n, NOT_BINARY, err);
    *out = v >= 0.5 ? 1.0 : 0.0;
    cnt->n_coerced++;
    return PROP_OK;
}

static int lower_equals(const char *s, size_t n, const char *word)
{
    size_t k = strlen(word);
    if (n != k)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return 0;
    }
    return 1;
}

/* true/false words of a binary column: 1, 0, or -1 when s is none of them. */
static int bool_word(const char *s, size_t n)
{
    static const char *yes[] = {"true", "yes", "t", "y"};
    static const char *no[] = {"false", "no", "f", "n"};
    if (n == 0 || n > 5)
        return -1;
    for (int i = 0; i < 4; i++) {
        if (lower_equals(s, n, yes[i]))
            return 1;
        if (lower_equals(s, n, no[i]))
            return 0;
    }
    return -1;
}

#define NUMBER_MAX 64 /* longer text is not a number these rules accept */

/* A plain decimal ([+-]digits[.digits], at most 15 significant digits and 22 decimals) as
 * a double without strtod: the digits are an exact integer m < 2^53 and 10^k is exact, so
 * m / 10^k is the correctly rounded value, the one strtod returns (Clinger's fast path).
 * Returns 0 for any other text, which strtod then reads. */
static int simple_decimal(const char *s, size_t n, double *out)
{
    static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    size_t i = 0;
    int neg = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        neg = s[i++] == '-';
    uint64_t m = 0;
    int digits = 0, frac = 0, dot = 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c >= '0' && c <= '9') {
            if (m > 0 || c != '0')
                digits++;
            if (digits > 15)
                return 0;
            m = m * 10 + (uint64_t)(c - '0');
            frac += dot;
        } else if (c == '.' && !dot) {
            dot = 1;
        } else {
            return 0;
        }
    }
    /* at least one digit, not a lone dot, and no more decimals than exact powers of ten */
    if (n == 0 || frac > 22 || (n == (size_t)(dot + (s[0] == '-' || s[0] == '+'))))
        return 0;
    double v = (double)m / POW10[frac];
    *out = neg ? -v : v;
    return 1;
}

prop_status prop_schema_convert_text(const prop_schema *S, int64_t col, const char *s, size_t n,
                                     const prop_convert_opts *o, double *out,
                                     prop_convert_counts *cnt, prop_error *err)
{
    const int32_t k = S->kind[col];
    if (k == PROP_KIND_CATEGORY) {
        if (n == 0)
            return missing_value(S, col, o, out, cnt, err);
        int64_t c = cat_find(&S->cats[col], s, n);
        if (c < 0) {
            cnt->n_unseen++;
            c = S->native[col] ? PROP_SCHEMA_CAT_OTHER : -1;
        }
        *out = (double)c;
        return PROP_OK;
    }
    if (n == 1 && (s[0] == '0' || s[0] == '1')) { /* the common case */
        *out = (double)(s[0] - '0');
        return PROP_OK;
    }
    size_t a = 0, b = n;
    while (a < b && (s[a] == ' ' || s[a] == '\t'))
        a++;
    while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
        b--;
    if (a == b)
        return missing_value(S, col, o, out, cnt, err);
    if (k == PROP_KIND_BINARY) {
        int w = bool_word(s + a, b - a);
        if (w >= 0) {
            *out = (double)w;
            return PROP_OK;
        }
    }
    const char *why = k == PROP_KIND_BINARY ? NOT_BINARY_TEXT : NOT_NUMBER;
    if (b - a >= NUMBER_MAX)
        return value_error(S, col, s, n, why, err);
    double v;
    if (!simple_decimal(s + a, b - a, &v)) {
        char tmp[NUMBER_MAX];
        char *endp = NULL;
        memcpy(tmp, s + a, b - a);
        tmp[b - a] = '\0';
        v = strtod(tmp, &endp);
        if (endp != tmp + (b - a))
            return value_error(S, col, s, n, why, err);
    }
    if (isnan(v))
        return missing_value(S, col, o, out, cnt, err);
    return number_value(S, col, v, s, n, o, out, cnt, err);
}

prop_status prop_schema_convert_number(const prop_schema *S, int64_t col, double v,
                                       const prop_convert_opts *o, double *out,
                                       prop_convert_counts *cnt, prop_error *err)
{
    if (S->kind[col] == PROP_KIND_CATEGORY)
        return prop_fail(err, PROP_INVALID_ARG, "column '%.100s' is categorical: pass its "
                         "values as text", S->name[col]);
    if (isnan(v))
        return missing_value(S, col, o, out, cnt, err);
    return number_value(S, col, v, NULL, 0, o, out, cnt, err);
}

prop_status prop_schema_convert_column(const prop_schema *S, int64_t col, int64_t n,
                                       const double *values, const char *blob,
                                       const int64_t *offsets, const uint8_t *missing,
                                       const prop_convert_opts *o, double *out, int64_t stride,
                                       prop_convert_counts *cnt, int64_t *bad_row,
                                       prop_error *err)
{
    if (S == NULL || o == NULL || cnt == NULL || bad_row == NULL || n < 0 || stride < 1 ||
        (n > 0 && out == NULL))
        return prop_fail(err, PROP_INVALID_ARG, "convert_column: bad arguments");
    if (col < 0 || col >= S->n_columns)
        return prop_fail(err, PROP_INVALID_ARG, "convert_column: column %lld of %lld",
                         (long long)col, (long long)S->n_columns);
    if (values == NULL && n > 0 && (offsets == NULL || (blob == NULL && offsets[n] > 0)))
        return prop_fail(err, PROP_INVALID_ARG, "convert_column: text needs blob and offsets");
    *bad_row = -1;
    if (values == NULL)
        for (int64_t i = 0; i < n; i++)
            if (offsets[i] < 0 || offsets[i + 1] < offsets[i])
                return prop_fail(err, PROP_INVALID_ARG, "convert_column: offsets decrease at "
                                 "row %lld", (long long)i);
    for (int64_t i = 0; i < n; i++) {
        prop_status st;
        double *dst = out + i * stride;
        if (missing != NULL && missing[i])
            st = missing_value(S, col, o, dst, cnt, err);
        else if (values != NULL)
            st = prop_schema_convert_number(S, col, values[i], o, dst, cnt, err);
        else
            st = prop_schema_convert_text(S, col, blob + offsets[i],
                                          (size_t)(offsets[i + 1] - offsets[i]), o, dst, cnt,
                                          err);
        if (st != PROP_OK) {
            *bad_row = i;
            return st;
        }
    }
    return PROP_OK;
}
