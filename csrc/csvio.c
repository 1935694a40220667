/* csvio.c - CSV parsing and formatting kernels of batch scoring (see csvio.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "propensity/csvio.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define CELL_MAX 4096 /* bytes of an unescaped quoted cell kept: no accepted value is longer */

/* ------------------------------------------------------------------ */
/* Shared helpers (both parsers use them, so their messages agree)      */
/* ------------------------------------------------------------------ */

prop_status prop_csv_check_params(const prop_csv_params *p, prop_error *err)
{
    if (p == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "csv params are NULL");
    if (p->delimiter == '"' || p->delimiter == '\n' || p->delimiter == '\r' ||
        p->delimiter == '\0')
        return prop_fail(err, PROP_INVALID_ARG, "invalid delimiter (code %d)",
                         (int)(unsigned char)p->delimiter);
    if (p->n_fields < 1)
        return prop_fail(err, PROP_INVALID_ARG, "n_fields must be >= 1, got %lld",
                         (long long)p->n_fields);
    if (p->id_field < -1 || p->id_field >= p->n_fields)
        return prop_fail(err, PROP_INVALID_ARG, "id_field %lld is outside [-1, %lld)",
                         (long long)p->id_field, (long long)p->n_fields);
    if (p->schema == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "csv params have no schema");
    if (p->n_features != prop_schema_n_columns(p->schema))
        return prop_fail(err, PROP_INVALID_ARG, "n_features %lld differs from the schema's "
                         "%lld columns", (long long)p->n_features,
                         (long long)prop_schema_n_columns(p->schema));
    if (p->n_features > 0 && p->feature_field == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "bad n_features / feature_field");
    for (int64_t j = 0; j < p->n_features; j++) {
        int64_t f = p->feature_field[j];
        if (f < -1 || f >= p->n_fields)
            return prop_fail(err, PROP_INVALID_ARG,
                             "feature_field[%lld] = %lld is outside [-1, %lld)", (long long)j,
                             (long long)f, (long long)p->n_fields);
        if (f >= 0 && f == p->id_field)
            return prop_fail(err, PROP_INVALID_ARG,
                             "feature_field[%lld] is the id field", (long long)j);
        for (int64_t i = 0; i < j; i++)
            if (f >= 0 && p->feature_field[i] == f)
                return prop_fail(err, PROP_INVALID_ARG,
                                 "feature_field[%lld] and [%lld] both read field %lld",
                                 (long long)i, (long long)j, (long long)f);
    }
    if (p->names_len < 0 || (p->names_len > 0 && p->names == NULL))
        return prop_fail(err, PROP_INVALID_ARG, "bad names / names_len");
    if (p->fill_missing < -1 || p->fill_missing > 1)
        return prop_fail(err, PROP_INVALID_ARG, "fill_missing must be -1, 0 or 1, got %d",
                         p->fill_missing);
    if (p->n_threads < 1 || p->n_threads > PROP_MAX_THREADS)
        return prop_fail(err, PROP_INVALID_ARG, "n_threads must be in [1, %d], got %d",
                         PROP_MAX_THREADS, p->n_threads);
    return PROP_OK;
}

/* The line ends of s[0:n], and (*quote) whether a quote is among its bytes: 16 bytes at
 * a time where SSE2 is there (byte counters summed every 255 steps), else one by one. */
static int64_t scan_lines(const char *s, int64_t n, int *quote)
{
    int64_t count = 0, i = 0;
    int q = 0;
#if defined(__SSE2__)
    const __m128i vn = _mm_set1_epi8('\n'), vq = _mm_set1_epi8('"'), z = _mm_setzero_si128();
    __m128i anyq = z;
    while (i + 16 <= n) {
        __m128i acc = z; /* per byte: 0 - (line ends so far) */
        int64_t steps = (n - i) / 16 < 255 ? (n - i) / 16 : 255;
        for (int64_t k = 0; k < steps; k++, i += 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)(s + i));
            acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(x, vn));
            anyq = _mm_or_si128(anyq, _mm_cmpeq_epi8(x, vq));
        }
        __m128i sums = _mm_sad_epu8(acc, z);
        count += _mm_cvtsi128_si32(sums) + _mm_cvtsi128_si32(_mm_srli_si128(sums, 8));
    }
    q = _mm_movemask_epi8(anyq) != 0;
#endif
    for (; i < n; i++) {
        count += s[i] == '\n';
        q |= s[i] == '"';
    }
    if (quote != NULL)
        *quote = q;
    return count;
}

int64_t prop_csv_max_records(const char *buf, int64_t len)
{
    if (buf == NULL || len <= 0)
        return len > 0 ? 1 : 0;
    return scan_lines(buf, len, NULL) + 1;
}

#define COUNT_PART_BYTES (1 << 20) /* bytes per thread at least, counting line ends */

prop_status prop_csv_max_records_threads(const char *buf, int64_t len, int n_threads,
                                         int64_t *out, prop_error *err)
{
    if (!PROP_THREADS_OK(n_threads))
        return prop_fail(err, PROP_INVALID_ARG, "max_records: " PROP_THREADS_FMT,
                         PROP_MAX_THREADS, n_threads);
    if (out == NULL || len < 0 || (len > 0 && buf == NULL))
        return prop_fail(err, PROP_INVALID_ARG, "max_records: bad buffer or output");
    int parts = (int)(len / COUNT_PART_BYTES < n_threads ? len / COUNT_PART_BYTES : n_threads);
    if (parts <= 1) {
        *out = prop_csv_max_records(buf, len);
        return PROP_OK;
    }
    int64_t count = 0;
#pragma omp parallel for num_threads(parts) schedule(static, 1) reduction(+ : count)
    for (int t = 0; t < parts; t++) {
        int64_t a = len * t / parts, b = len * (t + 1) / parts;
        count += scan_lines(buf + a, b - a, NULL);
    }
    *out = count + 1;
    return PROP_OK;
}

/* Convert the unescaped text of one cell of schema column col with the schema's rules;
 * a failure's message gets the place in front: "line L (data row R), column ...". */
static prop_status convert_text(const prop_csv_params *p, const char *s, size_t n, int64_t col,
                                int64_t line, int64_t row, double *out,
                                prop_convert_counts *cnt, prop_error *err)
{
    const prop_convert_opts opts = {p->fill_missing, p->coerce};
    prop_status st = prop_schema_convert_text(p->schema, col, s, n, &opts, out, cnt, err);
    if (st != PROP_OK && err != NULL) {
        char msg[PROP_ERROR_LEN];
        memcpy(msg, err->msg, sizeof msg);
        msg[sizeof msg - 1] = '\0';
        prop_fail(err, st, "line %lld (data row %lld), %s", (long long)line, (long long)row,
                  msg);
    }
    return st;
}

/* Store a converted value: uint8 for an all-binary schema, else double. */
static inline void store(uint8_t *X, double *V, int64_t at, double v)
{
    if (X != NULL)
        X[at] = (uint8_t)v;
    else
        V[at] = v;
}

static prop_status count_error(const prop_csv_params *p, prop_error *err, int64_t line,
                               int64_t row, int64_t found, int truncated)
{
    if (truncated)
        return prop_fail(err, PROP_FORMAT,
                         "line %lld (data row %lld): truncated last line: the input ends "
                         "without a line end after %lld of %lld fields",
                         (long long)line, (long long)row, (long long)found,
                         (long long)p->n_fields);
    return prop_fail(err, PROP_FORMAT,
                     "line %lld (data row %lld): expected %lld fields as in the header, "
                     "found %lld",
                     (long long)line, (long long)row, (long long)p->n_fields,
                     (long long)found);
}

static prop_status unterminated_error(prop_error *err, int64_t line, int64_t row)
{
    return prop_fail(err, PROP_FORMAT,
                     "line %lld (data row %lld): quoted field not closed before the end of "
                     "the input (truncated last line?)",
                     (long long)line, (long long)row);
}

/* col_of[k]: the schema column read from field k, or -1. With `fast` (n_fields bytes
 * after the n_fields entries), fast[k] = 1 when a field "0"/"1" may skip the value rules
 * (the field is not the id and not a category column's). */
static int64_t *field_columns(const prop_csv_params *p)
{
    int64_t *col_of = malloc((size_t)p->n_fields * (sizeof *col_of + 1));
    if (col_of == NULL)
        return NULL;
    uint8_t *fast = (uint8_t *)(col_of + p->n_fields);
    for (int64_t k = 0; k < p->n_fields; k++)
        col_of[k] = -1;
    for (int64_t j = 0; j < p->n_features; j++)
        if (p->feature_field[j] >= 0)
            col_of[p->feature_field[j]] = j;
    for (int64_t k = 0; k < p->n_fields; k++)
        fast[k] = k != p->id_field &&
                  (col_of[k] < 0 || prop_schema_kind(p->schema, col_of[k]) != PROP_KIND_CATEGORY);
    return col_of;
}

static prop_status check_parse_args(const prop_csv_params *p, const char *buf, int64_t len,
                                    int64_t max_rows, const uint8_t *X, const double *V,
                                    prop_csv_result *res, prop_error *err)
{
    prop_status st = prop_csv_check_params(p, err);
    if (st != PROP_OK)
        return st;
    if (res == NULL || len < 0 || (len > 0 && buf == NULL) || max_rows < 0)
        return prop_fail(err, PROP_INVALID_ARG, "bad buffer, length, max_rows or result");
    if ((X == NULL) == (V == NULL) && p->n_features > 0 && max_rows > 0)
        return prop_fail(err, PROP_INVALID_ARG, "exactly one of X and V must be given");
    if (X != NULL && !prop_schema_all_binary(p->schema))
        return prop_fail(err, PROP_INVALID_ARG, "uint8 output X needs an all-binary schema");
    memset(res, 0, sizeof *res);
    return PROP_OK;
}

/* The values of a row before its fields are read: what an absent column becomes. */
static void absent_row(const prop_csv_params *p, uint8_t *X, double *V, int64_t at)
{
    for (int64_t j = 0; j < p->n_features; j++)
        store(X, V, at + j, p->feature_field[j] < 0 ? prop_schema_absent_value(p->schema, j) : 0.0);
}

/* Unescape a quoted raw field "..."rest into out (at most cap bytes). */
static size_t unescape_quoted(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0, i = 1;
    while (i < n) {
        if (s[i] == '"') {
            if (i + 1 < n && s[i + 1] == '"') {
                if (o < cap) out[o] = '"';
                o++;
                i += 2;
                continue;
            }
            i++;
            break;
        }
        if (o < cap) out[o] = s[i];
        o++;
        i++;
    }
    for (; i < n; i++) { /* text after the closing quote is kept, like Python's csv */
        if (o < cap) out[o] = s[i];
        o++;
    }
    return o;
}

/* ------------------------------------------------------------------ */
/* Fast parser                                                          */
/* ------------------------------------------------------------------ */

/* Whether buf[pos:len] starts with a whole record (one that ends in a line end outside
 * quotes), splitting fields exactly as both parsers do. Used on a non-final block. */
static int record_is_complete(const char *buf, int64_t len, int64_t pos, char d)
{
    int64_t i = pos;
    for (;;) {
        if (i < len && buf[i] == '"') {
            i++;
            for (;;) {
                if (i >= len)
                    return 0;
                if (buf[i] == '"') {
                    if (i + 1 < len && buf[i + 1] == '"') {
                        i += 2;
                        continue;
                    }
                    if (i + 1 >= len)
                        return 0;
                    i++;
                    break;
                }
                i++;
            }
        }
        while (i < len && buf[i] != d && buf[i] != '\n')
            i++;
        if (i >= len)
            return 0;
        if (buf[i] == d) {
            i++;
            if (i >= len)
                return 0;
            continue;
        }
        return 1;
    }
}

/* The state of one thread's parse of buf[0:len]. */
typedef struct {
    const prop_csv_params *p;
    const char *buf;
    int64_t len;
    const int64_t *col_of; /* field -> schema column or -1 (field_columns) */
    const uint8_t *fast;   /* field -> whether "0"/"1" may skip the value rules */
    int64_t n_absent;      /* the columns absent from the input, and their value: the
                              only ones a record does not write (absent_row) */
    const int64_t *absent_col;
    const double *absent_val;
    uint8_t *X;
    double *V;
    int64_t *id_span;
    char *cell;            /* an unescaped quoted cell */
    int64_t pos, line, row, n;
    prop_convert_counts cnt;
} parser;

enum { FIELD_OK, FIELD_INCOMPLETE, FIELD_UNTERMINATED };

/* The first position from pos holding the delimiter or a line end, else len (16 bytes
 * at a time where SSE2 is there). */
static inline int64_t field_end(const char *buf, int64_t pos, int64_t len, char d)
{
#if defined(__SSE2__) && (defined(__GNUC__) || defined(__clang__))
    const __m128i vd = _mm_set1_epi8(d), vn = _mm_set1_epi8('\n');
    for (; pos + 16 <= len; pos += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(buf + pos));
        int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, vd), _mm_cmpeq_epi8(x, vn)));
        if (m)
            return pos + __builtin_ctz((unsigned)m);
    }
#endif
    while (pos < len && buf[pos] != d && buf[pos] != '\n')
        pos++;
    return pos;
}

/* Scan the field at ps->pos (quoted or not) up to the delimiter, line end or end of the
 * buffer: its bytes [*start, *end), a line end's '\r' excluded; ps->line counts the line
 * ends inside quotes. FIELD_INCOMPLETE: a non-final block ends inside it. */
static int scan_field(parser *ps, int64_t *start, int64_t *end, int *quoted)
{
    const char *buf = ps->buf, d = ps->p->delimiter;
    const int64_t len = ps->len;
    const int final = ps->p->final_block;
    int64_t pos = ps->pos;
    *start = pos;
    *quoted = 0;
    if (pos < len && buf[pos] == '"') {
        *quoted = 1;
        pos++;
        for (;;) {
            if (pos >= len)
                return final ? FIELD_UNTERMINATED : FIELD_INCOMPLETE;
            char ch = buf[pos];
            if (ch == '"') {
                if (pos + 1 < len && buf[pos + 1] == '"') {
                    pos += 2;
                    continue;
                }
                if (pos + 1 >= len && !final)
                    return FIELD_INCOMPLETE; /* could be the first of "" */
                pos++;
                break;
            }
            if (ch == '\n')
                ps->line++;
            pos++;
        }
    }
    pos = field_end(buf, pos, len, d);
    if (pos >= len && !final)
        return FIELD_INCOMPLETE;
    *end = pos;
    if (pos > *start + *quoted && buf[pos - 1] == '\r')
        (*end)--;
    ps->pos = pos;
    return FIELD_OK;
}

/* Convert field text buf[start:end) (unescaped first when quoted) into column col of
 * the current record. */
static prop_status field_value(parser *ps, int64_t col, int64_t start, int64_t end, int quoted,
                               int64_t rec_line, prop_error *err)
{
    const char *s = ps->buf + start;
    size_t sn = (size_t)(end - start);
    if (quoted) {
        sn = unescape_quoted(s, sn, ps->cell, CELL_MAX + 1);
        s = ps->cell;
        if (sn > CELL_MAX + 1) /* only the start was kept: longer than any */
            sn = CELL_MAX + 1; /* value the schema accepts or knows */
    }
    double v = 0.0;
    prop_status st = convert_text(ps->p, s, sn, col, rec_line, ps->row, &v, &ps->cnt, err);
    if (st == PROP_OK)
        store(ps->X, ps->V, ps->n * ps->p->n_features + col, v);
    return st;
}

enum { RECORD_OK, RECORD_INCOMPLETE, RECORD_FAILED };

/* Parse the record at ps->pos into row ps->n. A bad value of a non-final block is
 * judged once the record is known to be whole (it may be cut by the block's end). */
static int parse_record(parser *ps, prop_error *err)
{
    const prop_csv_params *p = ps->p;
    const char *buf = ps->buf, d = p->delimiter;
    const int64_t len = ps->len, nf = p->n_features, nfields = p->n_fields, idf = p->id_field;
    const int final = p->final_block;
    const int64_t rec_line = ps->line, at = ps->n * nf;
    /* every column the input holds is written by its field (else the record fails) */
    for (int64_t a = 0; a < ps->n_absent; a++)
        store(ps->X, ps->V, at + ps->absent_col[a], ps->absent_val[a]);
    int64_t k = 0;
    prop_status pending = PROP_OK;
    int at_end = 0; /* the record ended at the end of the buffer, not at a line end */
    for (;;) {
        { /* a run of fields "0" or "1" each followed by the delimiter (most of a session
           * file): the position kept in a register, no other test */
            int64_t pos = ps->pos;
            const int64_t *col_of = ps->col_of;
            const uint8_t *fast = ps->fast;
            while (k < nfields && fast[k] && pos + 2 < len && buf[pos + 1] == d &&
                   (buf[pos] == '0' || buf[pos] == '1') && buf[pos] != d) {
                if (col_of[k] >= 0)
                    store(ps->X, ps->V, at + col_of[k], (double)(buf[pos] - '0'));
                pos += 2;
                k++;
            }
            ps->pos = pos;
        }
        int64_t col = k < nfields ? ps->col_of[k] : -1;
        int64_t pos = ps->pos;
        char c = buf[pos];
        if ((c == '0' || c == '1') && pos + 1 < len && (k >= nfields || ps->fast[k]) &&
            c != d && (buf[pos + 1] == d || buf[pos + 1] == '\n')) {
            if (col >= 0)
                store(ps->X, ps->V, at + col, (double)(c - '0'));
            if (buf[pos + 1] == d && pos + 2 < len) { /* the common case: the next field */
                ps->pos = pos + 2;
                k++;
                continue;
            }
            ps->pos = pos + 1;
        } else {
            int64_t start, end;
            int quoted;
            int f = scan_field(ps, &start, &end, &quoted);
            if (f == FIELD_INCOMPLETE)
                return RECORD_INCOMPLETE;
            if (f == FIELD_UNTERMINATED) {
                unterminated_error(err, rec_line, ps->row);
                return RECORD_FAILED;
            }
            if (k == idf) {
                if (ps->id_span != NULL) {
                    ps->id_span[2 * ps->n] = start;
                    ps->id_span[2 * ps->n + 1] = end - start;
                }
            } else if (col >= 0 && pending == PROP_OK) {
                pending = field_value(ps, col, start, end, quoted, rec_line, err);
                if (pending != PROP_OK && final)
                    return RECORD_FAILED;
            }
        }
        if (ps->pos >= len) {
            at_end = 1;
            break;
        }
        if (buf[ps->pos] == d) {
            ps->pos++;
            k++;
            if (ps->pos >= len) {
                if (!final)
                    return RECORD_INCOMPLETE;
                /* a trailing delimiter at the very end: one more (empty) field */
                if (k < nfields && ps->col_of[k] >= 0 && k != idf) {
                    if (field_value(ps, ps->col_of[k], ps->pos, ps->pos, 0, rec_line, err) !=
                        PROP_OK)
                        return RECORD_FAILED;
                } else if (k == idf && ps->id_span != NULL) {
                    ps->id_span[2 * ps->n] = ps->pos;
                    ps->id_span[2 * ps->n + 1] = 0;
                }
                at_end = 1;
                break;
            }
            continue;
        }
        ps->pos++; /* '\n' */
        ps->line++;
        break;
    }
    if (pending != PROP_OK)
        return RECORD_FAILED;
    if (k + 1 != nfields) {
        count_error(p, err, rec_line, ps->row, k + 1, at_end && k + 1 < nfields);
        return RECORD_FAILED;
    }
    return RECORD_OK;
}

/* Skip blank lines at ps->pos; 1 when the block (or the rest of it) is done. */
static int skip_blank(parser *ps, prop_csv_result *res)
{
    const char *buf = ps->buf;
    const int64_t len = ps->len;
    while (ps->pos < len) {
        int64_t pos = ps->pos;
        if (buf[pos] == '\n' || (buf[pos] == '\r' && pos + 1 < len && buf[pos + 1] == '\n')) {
            ps->pos += buf[pos] == '\n' ? 1 : 2;
            ps->line++;
            res->consumed = ps->pos;
            res->n_lines = ps->line - ps->p->first_line;
            continue;
        }
        if (buf[pos] == '\r' && pos + 1 == len) {
            if (ps->p->final_block)
                res->consumed = len;
            return 1;
        }
        return 0;
    }
    return 1;
}

/* The parser proper, one thread: records of buf[0:len] (arguments checked). */
static prop_status parse_serial(const prop_csv_params *p, const char *buf, int64_t len,
                                int64_t max_rows, uint8_t *X, double *V, int64_t *id_span,
                                prop_csv_result *res, prop_error *err)
{
    memset(res, 0, sizeof *res);
    int64_t *col_of = field_columns(p);
    char *cell = malloc(CELL_MAX + 1);
    if (col_of == NULL || cell == NULL) {
        free(col_of);
        free(cell);
        return prop_fail(err, PROP_NOMEM, "out of memory (%lld fields)", (long long)p->n_fields);
    }
    int64_t n_absent = 0;
    int64_t *absent_col = malloc((size_t)(p->n_features > 0 ? p->n_features : 1) *
                                 sizeof *absent_col);
    double *absent_val = malloc((size_t)(p->n_features > 0 ? p->n_features : 1) *
                                sizeof *absent_val);
    if (absent_col == NULL || absent_val == NULL) {
        free(col_of);
        free(cell);
        free(absent_col);
        free(absent_val);
        return prop_fail(err, PROP_NOMEM, "out of memory (%lld columns)",
                         (long long)p->n_features);
    }
    for (int64_t j = 0; j < p->n_features; j++)
        if (p->feature_field[j] < 0) {
            absent_col[n_absent] = j;
            absent_val[n_absent++] = prop_schema_absent_value(p->schema, j);
        }
    parser ps = {p, buf, len, col_of, (const uint8_t *)(col_of + p->n_fields), n_absent,
                 absent_col, absent_val, X, V, id_span, cell, 0, p->first_line, p->first_row,
                 0, {0, 0, 0}};
    prop_status st = PROP_OK;
    while (!skip_blank(&ps, res)) {
        if (ps.n >= max_rows) {
            /* an incomplete last record of a non-final block is not a record yet */
            if (!p->final_block && !record_is_complete(buf, len, ps.pos, p->delimiter))
                break;
            st = prop_fail(err, PROP_INVALID_ARG, "the block holds more than max_rows=%lld "
                           "records", (long long)max_rows);
            break;
        }
        const int64_t pos0 = ps.pos, line0 = ps.line;
        const prop_convert_counts cnt0 = ps.cnt;
        int r = parse_record(&ps, err);
        if (r == RECORD_INCOMPLETE) { /* parsed again with the next block */
            prop_error_clear(err);
            ps.pos = pos0;
            ps.line = line0;
            ps.cnt = cnt0;
            break;
        }
        if (r == RECORD_FAILED) {
            st = PROP_FORMAT;
            break;
        }
        ps.n++;
        ps.row++;
        res->consumed = ps.pos;
        res->n_lines = ps.line - p->first_line;
    }
    res->n_rows = ps.n;
    res->n_coerced = ps.cnt.n_coerced;
    res->n_filled = ps.cnt.n_filled;
    res->n_unseen = ps.cnt.n_unseen;
    free(cell);
    free(col_of);
    free(absent_col);
    free(absent_val);
    return st;
}

/* ------------------------------------------------------------------ */
/* Threads: a block cut into parts at record ends                       */
/* ------------------------------------------------------------------ */

#define PART_MIN_BYTES (1 << 18) /* smaller blocks are parsed by one thread */
#define MAX_PARTS 64

/* Cut buf[0:len] (which starts at a record start) into at most `want` parts of about
 * equal size, each but the last ending with a line end outside quotes as far as quote
 * parity tells. newlines[t] counts the line ends of part t. Returns the number of parts. */
static int cut_parts(const char *buf, int64_t len, int want, int64_t *cut, int64_t *newlines)
{
    int parts = 0;
    int64_t pos = 0, nl = 0;
    int quoted = 0;
    cut[0] = 0;
    /* a block without quotes (the usual session file): a part ends at the first line end
     * from its target, and each part's line ends are counted (and its bytes checked for
     * quotes) by a thread of its own */
    for (int t = 1; t < want; t++) {
        int64_t target = (int64_t)((double)len * t / want);
        int64_t from = target > pos ? target : pos;
        const char *e = from < len ? memchr(buf + from, '\n', (size_t)(len - from)) : NULL;
        if (e == NULL || e - buf + 1 >= len)
            break;
        pos = e - buf + 1;
        cut[++parts] = pos;
    }
    cut[++parts] = len;
    int quotes = 0;
#pragma omp parallel for num_threads(parts) schedule(static, 1) reduction(| : quotes)
    for (int t = 0; t < parts; t++) {
        int q;
        newlines[t] = scan_lines(buf + cut[t], cut[t + 1] - cut[t], &q);
        quotes |= q;
    }
    if (!quotes)
        return parts;
    /* quotes: line ends inside a quoted field do not end a record; cut again, serially,
     * following the quote parity */
    parts = 0;
    pos = 0;
    const char *end = buf + len;
    const char *q = memchr(buf, '"', (size_t)len);
    for (int t = 1; t < want; t++) {
        int64_t target = (int64_t)((double)len * t / want);
        for (;;) {
            const char *e = memchr(buf + pos, '\n', (size_t)(len - pos));
            if (e == NULL) {
                pos = len;
                break;
            }
            while (q != NULL && q < e) { /* quotes before this line end flip the state */
                quoted = !quoted;
                q = memchr(q + 1, '"', (size_t)(end - q - 1));
            }
            pos = e - buf + 1;
            nl++;
            if (!quoted && pos > target)
                break;
        }
        if (pos >= len)
            break;
        newlines[parts] = nl;
        cut[++parts] = pos;
        nl = 0;
    }
    for (const char *e; pos < len && (e = memchr(buf + pos, '\n', (size_t)(len - pos)));) {
        pos = e - buf + 1;
        nl++;
    }
    newlines[parts] = nl;
    cut[++parts] = len;
    return parts;
}

static void join_counts(prop_csv_result *to, const prop_csv_result *r)
{
    to->n_coerced += r->n_coerced;
    to->n_filled += r->n_filled;
    to->n_unseen += r->n_unseen;
}

prop_status prop_csv_parse(const prop_csv_params *p, const char *buf, int64_t len,
                           int64_t max_rows, uint8_t *X, double *V, int64_t *id_span,
                           prop_csv_result *res, prop_error *err)
{
    prop_status st = check_parse_args(p, buf, len, max_rows, X, V, res, err);
    if (st != PROP_OK)
        return st;
    int want = p->n_threads;
    if (want > MAX_PARTS)
        want = MAX_PARTS;
    if ((int64_t)want > len / PART_MIN_BYTES)
        want = (int)(len / PART_MIN_BYTES);
    if (want <= 1)
        return parse_serial(p, buf, len, max_rows, X, V, id_span, res, err);

    int64_t cut[MAX_PARTS + 1], newlines[MAX_PARTS], room[MAX_PARTS], first[MAX_PARTS + 1];
    const int parts = cut_parts(buf, len, want, cut, newlines);
    first[0] = 0;
    for (int t = 0; t < parts; t++) {
        room[t] = newlines[t] + (t == parts - 1); /* records of part t at most */
        first[t + 1] = first[t] + room[t];
    }
    if (parts <= 1 || first[parts] > max_rows)
        return parse_serial(p, buf, len, max_rows, X, V, id_span, res, err);
    prop_csv_result *pres = calloc((size_t)parts, sizeof *pres);
    prop_error *perr = calloc((size_t)parts, sizeof *perr);
    prop_status *pst = calloc((size_t)parts, sizeof *pst);
    if (pres == NULL || perr == NULL || pst == NULL) {
        free(pres);
        free(perr);
        free(pst);
        return parse_serial(p, buf, len, max_rows, X, V, id_span, res, err);
    }
    const int64_t nf = p->n_features;
    int64_t lines_before[MAX_PARTS];
    lines_before[0] = 0;
    for (int t = 1; t < parts; t++)
        lines_before[t] = lines_before[t - 1] + newlines[t - 1];

    /* every part with its own copy of the parameters; a part but the last is not final,
     * so it must end exactly at its cut (else the cuts were wrong: parse serially) */
#pragma omp parallel for num_threads(parts) schedule(static, 1)
    for (int t = 0; t < parts; t++) {
        prop_csv_params pt = *p;
        pt.first_line = p->first_line + lines_before[t];
        pt.final_block = t == parts - 1 ? p->final_block : 0;
        prop_error_clear(&perr[t]);
        pst[t] = parse_serial(&pt, buf + cut[t], cut[t + 1] - cut[t], room[t],
                              X ? X + first[t] * nf : NULL, V ? V + first[t] * nf : NULL,
                              id_span ? id_span + 2 * first[t] : NULL, &pres[t], &perr[t]);
    }

    /* join in order: rows moved together, spans made relative to buf, counts summed */
    int64_t rows = 0;
    memset(res, 0, sizeof *res);
    st = PROP_OK;
    for (int t = 0; t < parts; t++) {
        const int64_t plen = cut[t + 1] - cut[t];
        if (pst[t] == PROP_OK && t < parts - 1 && pres[t].consumed != plen) {
            free(pres);
            free(perr);
            free(pst);
            return parse_serial(p, buf, len, max_rows, X, V, id_span, res, err);
        }
        if (pst[t] != PROP_OK) {
            /* parse the part again with its true first data row, for the message */
            prop_csv_params pt = *p;
            pt.first_line = p->first_line + lines_before[t];
            pt.first_row = p->first_row + rows;
            pt.final_block = t == parts - 1 ? p->final_block : 0;
            pst[t] = parse_serial(&pt, buf + cut[t], plen, room[t],
                                  X ? X + first[t] * nf : NULL, V ? V + first[t] * nf : NULL,
                                  id_span ? id_span + 2 * first[t] : NULL, &pres[t], err);
            st = pst[t];
        }
        const int64_t n = pres[t].n_rows;
        if (n > 0 && first[t] != rows) {
            if (X != NULL)
                memmove(X + rows * nf, X + first[t] * nf, (size_t)(n * nf));
            else if (V != NULL)
                memmove(V + rows * nf, V + first[t] * nf, (size_t)(n * nf) * sizeof *V);
            if (id_span != NULL)
                memmove(id_span + 2 * rows, id_span + 2 * first[t], (size_t)(2 * n) * sizeof *id_span);
        }
        if (id_span != NULL && cut[t] > 0)
            for (int64_t i = rows; i < rows + n; i++)
                id_span[2 * i] += cut[t];
        join_counts(res, &pres[t]);
        if (pres[t].consumed > 0 || pres[t].n_lines > 0) {
            res->consumed = cut[t] + pres[t].consumed;
            res->n_lines = lines_before[t] + pres[t].n_lines;
        }
        rows += n;
        if (st != PROP_OK)
            break;
    }
    res->n_rows = rows;
    free(pres);
    free(perr);
    free(pst);
    return st;
}

/* ------------------------------------------------------------------ */
/* Reference parser: split a record into unescaped fields, then convert */
/* ------------------------------------------------------------------ */

typedef struct {
    char *text;      /* unescaped bytes of all fields, back to back */
    size_t len, cap;
    int64_t *start;  /* per field: offset into text, length, raw start, raw end */
    int64_t *tlen, *raw_start, *raw_end;
    int64_t n, ncap;
} ref_fields;

static int ref_push_char(ref_fields *f, char c)
{
    if (f->len == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        char *t = realloc(f->text, cap);
        if (t == NULL)
            return -1;
        f->text = t;
        f->cap = cap;
    }
    f->text[f->len++] = c;
    return 0;
}

static int ref_new_field(ref_fields *f, int64_t raw_start)
{
    if (f->n == f->ncap) {
        int64_t cap = f->ncap ? 2 * f->ncap : 32;
        int64_t *a = realloc(f->start, (size_t)cap * sizeof *a);
        if (a == NULL) return -1;
        f->start = a;
        int64_t *b = realloc(f->tlen, (size_t)cap * sizeof *b);
        if (b == NULL) return -1;
        f->tlen = b;
        int64_t *c = realloc(f->raw_start, (size_t)cap * sizeof *c);
        if (c == NULL) return -1;
        f->raw_start = c;
        int64_t *e = realloc(f->raw_end, (size_t)cap * sizeof *e);
        if (e == NULL) return -1;
        f->raw_end = e;
        f->ncap = cap;
    }
    f->start[f->n] = (int64_t)f->len;
    f->tlen[f->n] = 0;
    f->raw_start[f->n] = raw_start;
    f->raw_end[f->n] = raw_start;
    f->n++;
    return 0;
}

enum { REC_COMPLETE, REC_AT_END, REC_INCOMPLETE, REC_UNTERMINATED, REC_NOMEM };

/* Split the record at *pos into fields; advances *pos and *line past it. */
static int ref_split(const char *buf, int64_t len, char d, int final, int64_t *pos,
                     int64_t *line, ref_fields *f)
{
    int64_t i = *pos, ln = *line;
    f->len = 0;
    f->n = 0;
    for (;;) {
        if (ref_new_field(f, i) < 0)
            return REC_NOMEM;
        int64_t cur = f->n - 1;
        if (i < len && buf[i] == '"') {
            i++;
            for (;;) {
                if (i >= len)
                    return final ? REC_UNTERMINATED : REC_INCOMPLETE;
                if (buf[i] == '"') {
                    if (i + 1 < len && buf[i + 1] == '"') {
                        if (ref_push_char(f, '"') < 0) return REC_NOMEM;
                        i += 2;
                        continue;
                    }
                    if (i + 1 >= len && !final)
                        return REC_INCOMPLETE;
                    i++;
                    break;
                }
                if (buf[i] == '\n')
                    ln++;
                if (ref_push_char(f, buf[i]) < 0) return REC_NOMEM;
                i++;
            }
        }
        while (i < len && buf[i] != d && buf[i] != '\n') {
            if (ref_push_char(f, buf[i]) < 0) return REC_NOMEM;
            i++;
        }
        if (i >= len && !final)
            return REC_INCOMPLETE;
        int64_t end = i;
        f->tlen[cur] = (int64_t)f->len - f->start[cur];
        if (end > f->raw_start[cur] && buf[end - 1] == '\r' &&
            !(buf[f->raw_start[cur]] == '"' && end - 1 == f->raw_start[cur])) {
            end--;
            f->tlen[cur]--;
            f->len--;
        }
        f->raw_end[cur] = end;
        if (i >= len) {
            *pos = i;
            *line = ln;
            return REC_AT_END;
        }
        if (buf[i] == d) {
            i++;
            if (i >= len) {
                if (!final)
                    return REC_INCOMPLETE;
                if (ref_new_field(f, i) < 0) return REC_NOMEM;
                *pos = i;
                *line = ln;
                return REC_AT_END;
            }
            continue;
        }
        i++; /* '\n' */
        ln++;
        *pos = i;
        *line = ln;
        return REC_COMPLETE;
    }
}

prop_status prop_csv_parse_ref(const prop_csv_params *p, const char *buf, int64_t len,
                               int64_t max_rows, uint8_t *X, double *V, int64_t *id_span,
                               prop_csv_result *res, prop_error *err)
{
    prop_status st = check_parse_args(p, buf, len, max_rows, X, V, res, err);
    if (st != PROP_OK)
        return st;
    ref_fields f = {0};
    int64_t pos = 0, line = p->first_line, row = p->first_row, n = 0;
    const int64_t nf = p->n_features;
    prop_convert_counts cnt = {0, 0, 0};
    st = PROP_OK;
    while (pos < len) {
        if (buf[pos] == '\n') { pos++; line++; res->consumed = pos; res->n_lines = line - p->first_line; continue; }
        if (buf[pos] == '\r' && pos + 1 < len && buf[pos + 1] == '\n') {
            pos += 2; line++; res->consumed = pos; res->n_lines = line - p->first_line; continue;
        }
        if (buf[pos] == '\r' && pos + 1 == len) {
            if (p->final_block)
                res->consumed = len;
            break;
        }
        int64_t rec_pos = pos, rec_line = line;
        int kind = ref_split(buf, len, p->delimiter, p->final_block, &pos, &line, &f);
        if (kind == REC_NOMEM) {
            st = prop_fail(err, PROP_NOMEM, "out of memory splitting a record");
            break;
        }
        if (kind == REC_INCOMPLETE) {
            pos = rec_pos;
            break;
        }
        if (n >= max_rows) {
            st = prop_fail(err, PROP_INVALID_ARG, "the block holds more than max_rows=%lld "
                           "records", (long long)max_rows);
            break;
        }
        absent_row(p, X, V, n * nf);
        int64_t usable = f.n;
        if (kind == REC_UNTERMINATED)
            usable = f.n - 1;
        for (int64_t k = 0; k < usable && k < p->n_fields && st == PROP_OK; k++) {
            if (k == p->id_field) {
                if (id_span != NULL) {
                    id_span[2 * n] = f.raw_start[k];
                    id_span[2 * n + 1] = f.raw_end[k] - f.raw_start[k];
                }
                continue;
            }
            for (int64_t j = 0; j < nf; j++) {
                if (p->feature_field[j] == k) {
                    /* f.text is still NULL when every field so far was empty */
                    const char *txt = f.text != NULL ? f.text + f.start[k] : "";
                    size_t tl = (size_t)f.tlen[k];
                    /* an empty last field starts at len: test the length before the byte */
                    int quoted = f.raw_end[k] > f.raw_start[k] && buf[f.raw_start[k]] == '"';
                    if (quoted && tl > CELL_MAX + 1) /* as the fast parser's cell buffer */
                        tl = CELL_MAX + 1;
                    double v = 0.0;
                    st = convert_text(p, txt, tl, j, rec_line, row, &v, &cnt, err);
                    if (st == PROP_OK)
                        store(X, V, n * nf + j, v);
                    break;
                }
            }
        }
        if (st != PROP_OK)
            break;
        if (kind == REC_UNTERMINATED) {
            st = unterminated_error(err, rec_line, row);
            break;
        }
        if (f.n != p->n_fields) {
            st = count_error(p, err, rec_line, row, f.n, kind == REC_AT_END && f.n < p->n_fields);
            break;
        }
        n++;
        row++;
        res->consumed = pos;
        res->n_lines = line - p->first_line;
    }
    res->n_rows = n;
    res->n_coerced = cnt.n_coerced;
    res->n_filled = cnt.n_filled;
    res->n_unseen = cnt.n_unseen;
    free(f.text);
    free(f.start);
    free(f.tlen);
    free(f.raw_start);
    free(f.raw_end);
    return st;
}

/* ------------------------------------------------------------------ */
/* Formatting                                                           */
/* ------------------------------------------------------------------ */

/* The segment of probability p under the edges of fp (PROP_CSV_SEGMENT_LOW/HIGH when
 * it has none). */
static const char *segment_of(const prop_csv_format_params *fp, double p, int64_t *n)
{
    double lo = fp->segment_edges ? fp->segment_edges[0] : PROP_CSV_SEGMENT_LOW;
    double hi = fp->segment_edges ? fp->segment_edges[1] : PROP_CSV_SEGMENT_HIGH;
    if (p > hi) { *n = 4; return "High"; }
    if (p >= lo) { *n = 6; return "Medium"; }
    *n = 3;
    return "Low";
}

/* Longest text of a contribution: "-" 999999999 "." 9 digits, or %.*e of a large one. */
#define REASON_VALUE_MAX 32

int64_t prop_csv_format_bound(const prop_csv_format_params *p, int64_t n,
                              const int64_t *id_span)
{
    if (p == NULL || n < 0)
        return 0;
    int64_t ts = p->timestamp_len > 0 ? p->timestamp_len : 0;
    int64_t digits = p->digits < 0 ? 0 : p->digits;
    int64_t per_row = 1 + 1 + 1 + (digits + 2) + 1 + ts + (p->with_segment ? 7 : 0) + 1;
    if (p->reasons.n > 0 && p->reasons.name_start != NULL) {
        int64_t widest = 0;
        for (int32_t c = 0; c < p->reasons.n_names; c++)
            if (p->reasons.name_start[c + 1] - p->reasons.name_start[c] > widest)
                widest = p->reasons.name_start[c + 1] - p->reasons.name_start[c];
        per_row += (int64_t)p->reasons.n * (1 + 2 * widest + 2 + 1 + REASON_VALUE_MAX);
    }
    int64_t total = n * per_row;
    if (id_span == NULL)
        return total + n * 21;
    for (int64_t i = 0; i < n; i++)
        total += 2 * (id_span[2 * i + 1] > 0 ? id_span[2 * i + 1] : 0) + 2;
    return total;
}

static prop_status check_format_args(const prop_csv_format_params *p, int64_t n,
                                     const char *id_buf, const int64_t *id_span,
                                     const uint8_t *pred, const double *proba, char *out,
                                     int64_t *written, prop_error *err)
{
    if (p == NULL || written == NULL || n < 0)
        return prop_fail(err, PROP_INVALID_ARG, "bad format arguments");
    if (p->digits < 0 || p->digits > 15)
        return prop_fail(err, PROP_INVALID_ARG, "digits must be in [0, 15], got %d", p->digits);
    if (p->n_threads < 1 || p->n_threads > PROP_MAX_THREADS)
        return prop_fail(err, PROP_INVALID_ARG, "n_threads must be in [1, %d], got %d",
                         PROP_MAX_THREADS, p->n_threads);
    if (p->timestamp_len < 0 || (p->timestamp_len > 0 && p->timestamp == NULL))
        return prop_fail(err, PROP_INVALID_ARG, "bad timestamp");
    if (p->segment_edges != NULL &&
        !(p->segment_edges[0] >= 0.0 && p->segment_edges[0] <= p->segment_edges[1] &&
          p->segment_edges[1] <= 1.0))
        return prop_fail(err, PROP_INVALID_ARG, "segment edges must satisfy 0 <= low <= high "
                         "<= 1, got %g, %g", p->segment_edges[0], p->segment_edges[1]);
    if (n > 0 && (pred == NULL || proba == NULL || out == NULL))
        return prop_fail(err, PROP_INVALID_ARG, "pred, proba and out are required");
    if (id_span != NULL && n > 0 && id_buf == NULL)
        return prop_fail(err, PROP_INVALID_ARG, "id_span without id_buf");
    if (p->reasons.n < 0 || p->reasons.n > PROP_CSV_MAX_REASONS)
        return prop_fail(err, PROP_INVALID_ARG, "n_reasons must be in [0, %d], got %d",
                         PROP_CSV_MAX_REASONS, p->reasons.n);
    if (p->reasons.n > 0) {
        if (p->reasons.digits < 0 || p->reasons.digits > 9)
            return prop_fail(err, PROP_INVALID_ARG, "reason digits must be in [0, 9], got %d",
                             p->reasons.digits);
        if (p->reasons.n_names < 1 || p->reasons.names == NULL || p->reasons.name_start == NULL ||
            (n > 0 && (p->reasons.col == NULL || p->reasons.value == NULL)))
            return prop_fail(err, PROP_INVALID_ARG, "reasons need names and values");
        if (p->reasons.name_start[0] != 0)
            return prop_fail(err, PROP_INVALID_ARG, "name offsets must start at 0");
        for (int32_t c = 0; c < p->reasons.n_names; c++)
            if (p->reasons.name_start[c + 1] < p->reasons.name_start[c])
                return prop_fail(err, PROP_INVALID_ARG, "name offsets must not decrease");
        for (int64_t i = 0; i < n * p->reasons.n; i++) {
            if (p->reasons.col[i] < 0 || p->reasons.col[i] >= p->reasons.n_names)
                return prop_fail(err, PROP_INVALID_ARG, "reason %lld of row %lld names column "
                                 "%d of %d", (long long)(i % p->reasons.n),
                                 (long long)(i / p->reasons.n), p->reasons.col[i], p->reasons.n_names);
            if (!isfinite(p->reasons.value[i]))
                return prop_fail(err, PROP_INVALID_ARG, "contribution %lld of row %lld is not "
                                 "finite", (long long)(i % p->reasons.n),
                                 (long long)(i / p->reasons.n));
        }
    }
    for (int64_t i = 0; i < n; i++) {
        if (!(proba[i] >= 0.0 && proba[i] <= 1.0))
            return prop_fail(err, PROP_INVALID_ARG,
                             "probability of row %lld is %g, outside [0, 1]", (long long)i,
                             proba[i]);
        if (pred[i] > 1)
            return prop_fail(err, PROP_INVALID_ARG, "prediction of row %lld is %d, not 0/1",
                             (long long)i, (int)pred[i]);
        if (id_span != NULL && (id_span[2 * i] < 0 || id_span[2 * i + 1] < 0))
            return prop_fail(err, PROP_INVALID_ARG, "negative id span at row %lld",
                             (long long)i);
    }
    *written = 0;
    return PROP_OK;
}

static int needs_quotes(const char *s, int64_t n)
{
    if (n > 0 && s[0] == '"')
        return 0; /* already quoted in the input: valid CSV as it is */
    for (int64_t i = 0; i < n; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
            return 1;
    return 0;
}

static char *write_id(char *o, const char *s, int64_t n)
{
    if (!needs_quotes(s, n)) {
        memcpy(o, s, (size_t)n);
        return o + n;
    }
    *o++ = '"';
    for (int64_t i = 0; i < n; i++) {
        if (s[i] == '"')
            *o++ = '"';
        *o++ = s[i];
    }
    *o++ = '"';
    return o;
}

static const uint64_t POW10[] = {1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull,
                                 1000000ull, 10000000ull, 100000000ull, 1000000000ull};

/* Write ip "." fp, fp with `digits` digits (no point when digits is 0). */
static char *write_decimal(char *o, uint64_t ip, uint64_t fp, int digits)
{
    char tmp[24];
    int k = 0;
    do { tmp[k++] = (char)('0' + ip % 10); ip /= 10; } while (ip);
    while (k) *o++ = tmp[--k];
    if (digits > 0) {
        *o++ = '.';
        for (int i = digits - 1; i >= 0; i--) {
            o[i] = (char)('0' + fp % 10);
            fp /= 10;
        }
        o += digits;
    }
    return o;
}

/* Write proba with `digits` decimals, exactly as printf("%.*f") does. */
static char *write_proba(char *o, double v, int digits)
{
    v += 0.0; /* -0.0 (which passes the [0, 1] check) is written as 0, never "-0.000" */
    if (digits <= 9) {
        double scaled = v * (double)POW10[digits];
        double fl = floor(scaled);
        double frac = scaled - fl;
        /* away from a rounding tie the product's error cannot change the result */
        if (fabs(frac - 0.5) > 1e-6) {
            uint64_t r = (uint64_t)fl + (frac > 0.5);
            return write_decimal(o, r / POW10[digits], r % POW10[digits], digits);
        }
    }
    char tmp[40];
    int k = snprintf(tmp, sizeof tmp, "%.*f", digits, v);
    memcpy(o, tmp, (size_t)k);
    return o + k;
}

/* "-0.000" -> "0.000" in the k characters at s (a contribution that rounds to zero is
 * written without a sign); returns the new length. */
static int drop_negative_zero(char *s, int k)
{
    if (k < 2 || s[0] != '-')
        return k;
    for (int i = 1; i < k; i++)
        if (s[i] != '0' && s[i] != '.')
            return k;
    memmove(s, s + 1, (size_t)(k - 1));
    return k - 1;
}

/* A contribution with `digits` fixed decimals, as printf("%.*f") writes it (but never
 * "-0.0..."); beyond 1e9 in magnitude as printf("%.*e"). */
static char *write_contribution(char *o, double v, int digits)
{
    v += 0.0;
    double a = fabs(v);
    if (a < 1e9) {
        double scaled = a * (double)POW10[digits];
        double fl = floor(scaled);
        double frac = scaled - fl;
        if (fabs(frac - 0.5) > 1e-6) {
            uint64_t r = (uint64_t)fl + (frac > 0.5);
            if (v < 0.0 && r > 0)
                *o++ = '-';
            return write_decimal(o, r / POW10[digits], r % POW10[digits], digits);
        }
    }
    char tmp[REASON_VALUE_MAX + 8];
    int k = drop_negative_zero(tmp, snprintf(tmp, sizeof tmp, a < 1e9 ? "%.*f" : "%.*e",
                                             digits, v));
    memcpy(o, tmp, (size_t)k);
    return o + k;
}

static char *write_reasons(const prop_csv_format_params *p, int64_t i, char *o)
{
    const int k = p->reasons.n;
    for (int r = 0; r < k; r++) {
        int32_t c = p->reasons.col[i * k + r];
        *o++ = ',';
        o = write_id(o, p->reasons.names + p->reasons.name_start[c], p->reasons.name_start[c + 1] - p->reasons.name_start[c]);
    }
    for (int r = 0; r < k; r++) {
        *o++ = ',';
        o = write_contribution(o, p->reasons.value[i * k + r], p->reasons.digits);
    }
    return o;
}

/* Rows [a, b) into out (room checked by the caller); returns the end of the text. */
static char *format_rows(const prop_csv_format_params *p, int64_t a, int64_t b,
                         const char *id_buf, const int64_t *id_span, const uint8_t *pred,
                         const double *proba, char *out)
{
    char *o = out;
    for (int64_t i = a; i < b; i++) {
        if (id_span != NULL) {
            o = write_id(o, id_buf + id_span[2 * i], id_span[2 * i + 1]);
        } else {
            char tmp[24];
            uint64_t v = (uint64_t)(p->first_row_number + i);
            int k = 0;
            if (p->first_row_number + i < 0) {
                o += snprintf(o, 22, "%lld", (long long)(p->first_row_number + i));
            } else {
                do { tmp[k++] = (char)('0' + v % 10); v /= 10; } while (v);
                while (k) *o++ = tmp[--k];
            }
        }
        *o++ = ',';
        *o++ = (char)('0' + pred[i]);
        *o++ = ',';
        o = write_proba(o, proba[i], p->digits);
        *o++ = ',';
        memcpy(o, p->timestamp, (size_t)p->timestamp_len);
        o += p->timestamp_len;
        if (p->with_segment) {
            int64_t sl;
            const char *s = segment_of(p, proba[i], &sl);
            *o++ = ',';
            memcpy(o, s, (size_t)sl);
            o += sl;
        }
        if (p->reasons.n > 0)
            o = write_reasons(p, i, o);
        *o++ = '\n';
    }
    return o;
}

#define FORMAT_MIN_ROWS 8192 /* fewer rows per thread are written by one thread */

prop_status prop_csv_format(const prop_csv_format_params *p, int64_t n, const char *id_buf,
                            const int64_t *id_span, const uint8_t *pred, const double *proba,
                            char *out, int64_t capacity, int64_t *written, prop_error *err)
{
    prop_status st = check_format_args(p, n, id_buf, id_span, pred, proba, out, written, err);
    if (st != PROP_OK)
        return st;
    int64_t need = prop_csv_format_bound(p, n, id_span);
    if (capacity < need)
        return prop_fail(err, PROP_INVALID_ARG, "output capacity %lld < bound %lld",
                         (long long)capacity, (long long)need);
    int parts = p->n_threads < MAX_PARTS ? p->n_threads : MAX_PARTS;
    if ((int64_t)parts > n / FORMAT_MIN_ROWS)
        parts = (int)(n / FORMAT_MIN_ROWS);
    if (parts <= 1) {
        *written = format_rows(p, 0, n, id_buf, id_span, pred, proba, out) - out;
        return PROP_OK;
    }
    /* part t writes its rows at the sum of the bounds of the parts before it, then the
     * texts are moved together in order */
    int64_t row[MAX_PARTS + 1], at[MAX_PARTS + 1], end[MAX_PARTS];
    at[0] = 0;
    for (int t = 0; t <= parts; t++)
        row[t] = (int64_t)((double)n * t / parts);
    for (int t = 0; t < parts; t++)
        at[t + 1] = at[t] + prop_csv_format_bound(p, row[t + 1] - row[t],
                                                  id_span ? id_span + 2 * row[t] : NULL);
#pragma omp parallel for num_threads(parts) schedule(static, 1)
    for (int t = 0; t < parts; t++)
        end[t] = format_rows(p, row[t], row[t + 1], id_buf, id_span, pred, proba, out + at[t]) -
                 out;
    int64_t o = end[0];
    for (int t = 1; t < parts; t++) {
        int64_t k = end[t] - at[t];
        memmove(out + o, out + at[t], (size_t)k);
        o += k;
    }
    *written = o;
    return PROP_OK;
}

prop_status prop_csv_format_ref(const prop_csv_format_params *p, int64_t n, const char *id_buf,
                                const int64_t *id_span, const uint8_t *pred,
                                const double *proba, char *out, int64_t capacity,
                                int64_t *written, prop_error *err)
{
    prop_status st = check_format_args(p, n, id_buf, id_span, pred, proba, out, written, err);
    if (st != PROP_OK)
        return st;
    int64_t o = 0;
    for (int64_t i = 0; i < n; i++) {
        char head[64];
        if (id_span != NULL) {
            const char *s = id_buf + id_span[2 * i];
            int64_t sl = id_span[2 * i + 1];
            int q = needs_quotes(s, sl);
            if (o + 2 * sl + 2 > capacity)
                goto full;
            if (q) out[o++] = '"';
            for (int64_t j = 0; j < sl; j++) {
                if (q && s[j] == '"') out[o++] = '"';
                out[o++] = s[j];
            }
            if (q) out[o++] = '"';
        } else {
            int k = snprintf(head, sizeof head, "%lld", (long long)(p->first_row_number + i));
            if (o + k > capacity) goto full;
            memcpy(out + o, head, (size_t)k);
            o += k;
        }
        int64_t sl = 0;
        const char *seg = segment_of(p, proba[i], &sl);
        int k = snprintf(head, sizeof head, ",%d,%.*f,", (int)pred[i], p->digits,
                         proba[i] + 0.0); /* -0.0 -> 0.0, as in write_proba */
        if (o + k + p->timestamp_len + (p->with_segment ? 7 : 0) + 1 > capacity) goto full;
        memcpy(out + o, head, (size_t)k);
        o += k;
        memcpy(out + o, p->timestamp, (size_t)p->timestamp_len);
        o += p->timestamp_len;
        if (p->with_segment) {
            out[o++] = ',';
            memcpy(out + o, seg, (size_t)sl);
            o += sl;
        }
        for (int r = 0; r < p->reasons.n; r++) {
            int32_t c = p->reasons.col[i * p->reasons.n + r];
            const char *nm = p->reasons.names + p->reasons.name_start[c];
            int64_t nl = p->reasons.name_start[c + 1] - p->reasons.name_start[c];
            int q = needs_quotes(nm, nl);
            if (o + 2 * nl + 3 > capacity)
                goto full;
            out[o++] = ',';
            if (q) out[o++] = '"';
            for (int64_t j = 0; j < nl; j++) {
                if (q && nm[j] == '"') out[o++] = '"';
                out[o++] = nm[j];
            }
            if (q) out[o++] = '"';
        }
        for (int r = 0; r < p->reasons.n; r++) {
            double v = p->reasons.value[i * p->reasons.n + r] + 0.0;
            char num[REASON_VALUE_MAX + 8];
            int k2 = drop_negative_zero(num, snprintf(num, sizeof num, fabs(v) < 1e9 ? "%.*f"
                                                      : "%.*e", p->reasons.digits, v));
            if (o + k2 + 2 > capacity)
                goto full;
            out[o++] = ',';
            memcpy(out + o, num, (size_t)k2);
            o += k2;
        }
        out[o++] = '\n';
    }
    *written = o;
    return PROP_OK;
full:
    return prop_fail(err, PROP_INVALID_ARG, "output capacity %lld is too small",
                     (long long)capacity);
}

int64_t prop_utf8_invalid(const char *buf, int64_t len)
{
    const unsigned char *b = (const unsigned char *)buf;
    int64_t i = 0;
    while (i < len) {
        if (i + 32 <= len) { /* 32 ASCII bytes at a time: the common case */
            uint64_t w[4];
            memcpy(w, b + i, 32);
            if (((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ULL) == 0) {
                i += 32;
                continue;
            }
        }
        if (i + 8 <= len) { /* then eight */
            uint64_t w;
            memcpy(&w, b + i, 8);
            if ((w & 0x8080808080808080ULL) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned c = b[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int n;
        unsigned lo = 0x80, hi = 0xBF; /* the range of the second byte */
        if (c >= 0xC2 && c <= 0xDF)
            n = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            if (c == 0xE0) lo = 0xA0;      /* overlong */
            if (c == 0xED) hi = 0x9F;      /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            if (c == 0xF0) lo = 0x90;      /* overlong */
            if (c == 0xF4) hi = 0x8F;      /* past U+10FFFF */
        } else
            return i;                      /* 0x80..0xC1 (continuation, overlong), 0xF5.. */
        if (i + n >= len)
            return i;                      /* cut by the end */
        if (b[i + 1] < lo || b[i + 1] > hi)
            return i;
        for (int k = 2; k <= n; k++)
            if ((b[i + k] & 0xC0) != 0x80)
                return i;
        i += n + 1;
    }
    return -1;
}
