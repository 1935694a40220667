/* status.h - the error contract of the propensity C core.
 *
 * Every entry point returns a prop_status and, on failure, writes a message
 * into a caller-provided prop_error. There is no global error state, so the
 * core is safe to call from several threads at once.
 */
#ifndef PROPENSITY_STATUS_H
#define PROPENSITY_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    PROP_OK = 0,
    PROP_INVALID_ARG = 1, /* a bad argument: maps to ValueError */
    PROP_NOMEM = 2,       /* allocation failed: maps to MemoryError */
    PROP_FORMAT = 3,      /* a malformed model document or arrays: ValueError */
    PROP_INTERNAL = 4     /* a broken invariant: RuntimeError */
} prop_status;

#define PROP_ERROR_LEN 512

typedef struct {
    char msg[PROP_ERROR_LEN];
} prop_error;

/* Record `code` with a printf-style message in `err` (which may be NULL) and
 * return `code`, so callers can write `return prop_fail(err, ...)`. */
prop_status prop_fail(prop_error *err, prop_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Clear the message (an empty string means "no error"). */
void prop_error_clear(prop_error *err);

const char *prop_status_name(prop_status code);

#ifdef __cplusplus
}
#endif
#endif
