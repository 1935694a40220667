/* status.c - error recording for the C core (see status.h). */
#include <stdarg.h>
#include <stdio.h>

#include "propensity/status.h"

prop_status prop_fail(prop_error *err, prop_status code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void prop_error_clear(prop_error *err)
{
    if (err != NULL)
        err->msg[0] = '\0';
}

const char *prop_status_name(prop_status code)
{
    switch (code) {
    case PROP_OK: return "ok";
    case PROP_INVALID_ARG: return "invalid argument";
    case PROP_NOMEM: return "out of memory";
    case PROP_FORMAT: return "malformed data";
    case PROP_INTERNAL: return "internal error";
    }
    return "unknown status";
}
