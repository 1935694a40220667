/* csvio.h - CSV input and output kernels of batch scoring.
 *
 * Parsing: a block of CSV bytes (records after the header) becomes a matrix of
 * model inputs (one row per record, one column per schema column, converted by the
 * schema's value rules, schema.h): uint8 when every column is binary, else double
 * (numbers, 0/1, category codes). Beside it, the byte span of each record's id field
 * (kept as exact text, never parsed).
 *
 * The parser follows RFC 4180: fields may be quoted, "" inside quotes is a
 * quote, quoted fields may hold the delimiter and newlines; CRLF and LF line
 * ends; blank lines are skipped. A block may end in the middle of a record:
 * unless it is the final block, the parser stops before that record and
 * reports how many bytes it consumed, so the caller carries the rest over.
 *
 * Errors name the file line (1-based, the line where the record starts), the
 * data row (1-based, header excluded), the column and the bad value (the
 * schema's message), or a wrong number of fields, an unterminated quote or a
 * truncated last line.
 *
 * Formatting: rows of "id,predicted,probability,timestamp[,segment]\n" into a
 * caller buffer sized by prop_csv_format_bound().
 *
 * Both kernels keep a plain reference version (*_ref) that the tests compare
 * them with.
 */
#ifndef PROPENSITY_CSVIO_H
#define PROPENSITY_CSVIO_H

#include <stdint.h>

#include "propensity/schema.h"
#include "propensity/status.h"
#include "propensity/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char delimiter;               /* field separator, e.g. ',' (not '"', '\r' or '\n') */
    int64_t n_fields;             /* fields per record, from the header (>= 1) */
    int64_t id_field;             /* index of the id field, or -1 for none */
    const prop_schema *schema;    /* the model's input columns and their value rules */
    int64_t n_features;           /* output columns: the schema's column count */
    const int64_t *feature_field; /* [n_features] field index of each output column, or -1:
                                     absent from the file, the column gets the value of
                                     prop_schema_absent_value */
    const char *names;            /* field names separated by '\0' (for messages), or NULL */
    int64_t names_len;            /* bytes of names */
    int fill_missing;             /* prop_convert_opts: -1, or the value (0/1) of an empty
                                     binary cell the schema gives no fill */
    int coerce;                   /* prop_convert_opts: clip binary numbers to 0/1 */
    int final_block;              /* 1: the block ends the input (an unterminated last
                                     record is parsed, or reported as truncated) */
    int64_t first_line;           /* file line (1-based) of the block's first byte */
    int64_t first_row;            /* data row (1-based) of the block's first record */
    int n_threads;                /* 1 .. 1024: threads of prop_csv_parse (a block of at
                                     least 256 KB per thread is cut into parts at line ends
                                     outside quotes, the parts parsed at once and joined;
                                     the result is the one-thread result) */
} prop_csv_params;

typedef struct {
    int64_t n_rows;    /* records parsed */
    int64_t consumed;  /* bytes of complete records; the caller keeps buf[consumed:] */
    int64_t n_lines;   /* line ends inside the consumed bytes (to advance first_line) */
    int64_t n_coerced; /* values changed by coerce */
    int64_t n_filled;  /* empty cells given a fill value */
    int64_t n_unseen;  /* category values not seen at training */
} prop_csv_result;

prop_status prop_csv_check_params(const prop_csv_params *p, prop_error *err);

/* An upper bound of the records in buf[0:len] (line ends + 1): size of the outputs. */
int64_t prop_csv_max_records(const char *buf, int64_t len);
/* The same number into *out, counted by n_threads (1 .. PROP_MAX_THREADS) at once. */
prop_status prop_csv_max_records_threads(const char *buf, int64_t len, int n_threads,
                                         int64_t *out, prop_error *err);

/* Parse buf[0:len]. Outputs, sized for max_rows records:
 *   X        [max_rows * n_features] uint8, row-major, for an all-binary schema, or
 *   V        [max_rows * n_features] double, row-major (exactly one of X, V is given)
 *   id_span  [max_rows * 2] (offset into buf, length) of the raw id field (quotes
 *            included when quoted), or NULL; ignored when id_field < 0
 * Fails with PROP_INVALID_ARG if buf holds more than max_rows records. */
prop_status prop_csv_parse(const prop_csv_params *p, const char *buf, int64_t len,
                           int64_t max_rows, uint8_t *X, double *V, int64_t *id_span,
                           prop_csv_result *res, prop_error *err);

/* Plain reference: splits each record into unescaped field strings first. Same outputs,
 * same status; the message may differ in wording but names the same line. */
prop_status prop_csv_parse_ref(const prop_csv_params *p, const char *buf, int64_t len,
                               int64_t max_rows, uint8_t *X, double *V, int64_t *id_span,
                               prop_csv_result *res, prop_error *err);

/* Reason codes of prop_csv_format: after the segment, n names then n contributions per
 * row, ",name_1,..,name_n,value_1,..,value_n". */
typedef struct {
    int n;                      /* reasons per row, 0 .. PROP_CSV_MAX_REASONS (0: none) */
    const int32_t *col;         /* rows x n: indices into the names */
    const double *value;        /* rows x n: finite, written with `digits` fixed decimals */
    const char *names;          /* the names, one after another (quoted when they need it) */
    const int64_t *name_start;  /* n_names + 1 offsets into names */
    int32_t n_names;
    int digits;                 /* 0..9 */
} prop_csv_reasons;

#define PROP_CSV_MAX_REASONS 64
#define PROP_CSV_SEGMENT_LOW 0.1  /* the default edges of the segment column */
#define PROP_CSV_SEGMENT_HIGH 0.5

typedef struct {
    int digits;                 /* digits after the decimal point of the probability, 0..15 */
    const char *timestamp;      /* written verbatim in every row */
    int64_t timestamp_len;
    int with_segment;           /* 1: append High (p > high), Medium (low <= p <= high), Low
                                   (p < low), the edges of segment_edges */
    int64_t first_row_number;   /* without ids, row i is written as first_row_number + i */
    int n_threads;              /* 1 .. 1024: threads of prop_csv_format (row ranges written
                                   at once and joined: the same bytes as one thread) */
    prop_csv_reasons reasons;   /* reason codes ({0}: none) */
    const double *segment_edges; /* {low, high}, 0 <= low <= high <= 1; NULL: {0.1, 0.5} */
} prop_csv_format_params;

/* Upper bound of the bytes prop_csv_format writes for n rows (id_span may be NULL). */
int64_t prop_csv_format_bound(const prop_csv_format_params *p, int64_t n,
                              const int64_t *id_span);

/* Write n rows "id,pred,proba,timestamp[,segment][,reasons]\n". The id is id_buf[span] copied
 * verbatim when it is quoted or needs no quoting, otherwise quoted (a raw id from a
 * non-comma file that holds ',' or '"'); with id_span == NULL the row number stands in.
 * pred holds 0/1; proba is written with `digits` fixed decimals, rounded exactly like
 * printf("%.*f") (-0.0 is written as 0). Probabilities must be in [0, 1]. */
prop_status prop_csv_format(const prop_csv_format_params *p, int64_t n, const char *id_buf,
                            const int64_t *id_span, const uint8_t *pred, const double *proba,
                            char *out, int64_t capacity, int64_t *written, prop_error *err);

/* Plain reference: snprintf for every number. */
prop_status prop_csv_format_ref(const prop_csv_format_params *p, int64_t n, const char *id_buf,
                                const int64_t *id_span, const uint8_t *pred,
                                const double *proba, char *out, int64_t capacity,
                                int64_t *written, prop_error *err);

/* The offset of the first byte of buf[0:len] that does not start or continue a valid
 * UTF-8 sequence (overlong forms, surrogates and code points past U+10FFFF are invalid,
 * and so is a sequence cut by the end of the buffer), or -1 when all of it is UTF-8. */
int64_t prop_utf8_invalid(const char *buf, int64_t len);

#ifdef __cplusplus
}
#endif
#endif
