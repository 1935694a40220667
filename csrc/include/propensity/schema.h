/* schema.h - the value rules of model inputs: one implementation for files and frames.
 *
 * A schema lists the model's input columns, each of one kind:
 *
 *   BINARY    0/1. Accepted text (spaces and tabs around it ignored): any number equal
 *             to 0 or 1 ("0", "1", "1.0", "1e0") and the words true/false, yes/no,
 *             t/f, y/n in any case. Other numbers are an error, or with `coerce`
 *             clipped to 0/1 (v >= 0.5 -> 1) and counted.
 *   NUMERIC   a finite number (strtod syntax, spaces around it ignored); +-inf and
 *             other text are errors.
 *   CATEGORY  the exact text of the cell looked up among the training categories:
 *             the output is the category's code 0 .. k-1, or -1 for a value not seen
 *             at training (counted in n_unseen) and for an empty cell (the one-hot
 *             encoding: -1 sets none of the category's columns).
 *             A native category column (made with the spec kind
 *             PROP_KIND_CATEGORY_NATIVE, at most PROP_SCHEMA_MAX_NATIVE categories; its
 *             kind is CATEGORY afterwards) gives the code the learners split on: 0 ..
 *             k-1, PROP_SCHEMA_CAT_OTHER for a value not among the categories (counted
 *             in n_unseen) and NaN, the missing value, for an empty cell.
 *
 * An empty cell (and "nan" in a binary or numeric column) is missing: it becomes the
 * column's fill value (the training median of a numeric column), else the caller's
 * fill_missing (0 or 1, binary columns), else it is an error.
 *
 * The CSV reader (csvio.h) converts every field with prop_schema_convert_text; a
 * DataFrame's columns go through prop_schema_convert_column, which applies the same
 * rules to text cells and to numbers, so the same value gets the same verdict and the
 * same message on either path. Messages name the column and the value; the caller
 * puts the place in front (a file's line and data row, a frame's row).
 */
#ifndef PROPENSITY_SCHEMA_H
#define PROPENSITY_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "propensity/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { PROP_KIND_BINARY = 0, PROP_KIND_NUMERIC = 1, PROP_KIND_CATEGORY = 2 } prop_kind;
/* A spec's kind of a native category column (a CATEGORY column once made). */
#define PROP_KIND_CATEGORY_NATIVE 3

/* The code of a native category column's values not among its categories (the trees'
 * "other" code, PROP_CAT_OTHER of tree.h), and its most categories. */
#define PROP_SCHEMA_CAT_OTHER 254
#define PROP_SCHEMA_MAX_NATIVE 254

/* What a schema is made from (all views of caller memory, copied by create). */
typedef struct {
    int64_t n_columns;            /* >= 1 */
    const int32_t *kind;          /* [n_columns] prop_kind */
    const double *fill;           /* [n_columns] value of a missing cell, NaN for none */
    const char *names;            /* column names, each '\0'-terminated, back to back */
    int64_t names_len;
    const int64_t *n_categories;  /* [n_columns], 0 for columns that are not CATEGORY */
    const char *categories;       /* every category of every column in column order,
                                     each '\0'-terminated (may be NULL when there are none) */
    int64_t categories_len;
} prop_schema_spec;

typedef struct prop_schema prop_schema; /* opaque, immutable: share between threads */

/* Per-call conversion options. */
typedef struct {
    int fill_missing; /* -1: none; 0 or 1: the value of a missing binary cell without fill */
    int coerce;       /* 1: clip binary numbers other than 0/1 (counted) instead of failing */
} prop_convert_opts;

/* Counters a conversion adds to. */
typedef struct {
    int64_t n_coerced; /* binary values clipped by coerce */
    int64_t n_filled;  /* missing cells given a fill value */
    int64_t n_unseen;  /* category values not seen at training */
} prop_convert_counts;

prop_status prop_schema_create(const prop_schema_spec *spec, prop_schema **out, prop_error *err);
void prop_schema_free(prop_schema *S); /* NULL is a no-op */

int64_t prop_schema_n_columns(const prop_schema *S);
prop_kind prop_schema_kind(const prop_schema *S, int64_t col);
int prop_schema_all_binary(const prop_schema *S);
/* 1 for a native category column, else 0. */
int prop_schema_native(const prop_schema *S, int64_t col);
/* What a column absent from a file becomes: a binary column its fill or 0, a numeric
 * column its fill (0 without one), a category column -1 (no category), a native one
 * NaN (missing). */
double prop_schema_absent_value(const prop_schema *S, int64_t col);
/* The name of column col, for messages: NUL-terminated, at most `size` bytes. */
void prop_schema_column_name(const prop_schema *S, int64_t col, char *out, size_t size);

/* Convert the (unescaped) text s[0:n] of one cell of column col into *out.
 * Fails with PROP_FORMAT and "column 'c': value 'v' is not 0 or 1 (...)" style
 * messages (no place: the caller adds it). */
prop_status prop_schema_convert_text(const prop_schema *S, int64_t col, const char *s, size_t n,
                                     const prop_convert_opts *opts, double *out,
                                     prop_convert_counts *counts, prop_error *err);

/* Convert one number (NaN = missing) of column col; a CATEGORY column takes text only
 * (the caller formats numbers first). Same messages as prop_schema_convert_text. */
prop_status prop_schema_convert_number(const prop_schema *S, int64_t col, double v,
                                       const prop_convert_opts *opts, double *out,
                                       prop_convert_counts *counts, prop_error *err);

/* Convert a column of n cells into out[i * stride] (i < n). Cells are either numbers
 * (values != NULL: values[i], NaN = missing) or text (values == NULL: blob[offsets[i]
 * .. offsets[i+1]), offsets has n + 1 entries; missing[i] != 0 marks a missing cell,
 * missing may be NULL). On failure *bad_row is the first row at fault and err names the
 * column and the value. */
prop_status prop_schema_convert_column(const prop_schema *S, int64_t col, int64_t n,
                                       const double *values, const char *blob,
                                       const int64_t *offsets, const uint8_t *missing,
                                       const prop_convert_opts *opts, double *out,
                                       int64_t stride, prop_convert_counts *counts,
                                       int64_t *bad_row, prop_error *err);

#ifdef __cplusplus
}
#endif
#endif
