#include <string.h>

#include "check.h"
#include "propensity/status.h"

static void test_fail_records_message(void)
{
    prop_error err;
    prop_error_clear(&err);
    CHECK(err.msg[0] == '\0');
    prop_status st = prop_fail(&err, PROP_INVALID_ARG, "column %d is bad", 7);
    CHECK(st == PROP_INVALID_ARG);
    CHECK(strcmp(err.msg, "column 7 is bad") == 0);
}

static void test_fail_null_error_is_allowed(void)
{
    CHECK(prop_fail(NULL, PROP_NOMEM, "x") == PROP_NOMEM);
}

static void test_long_message_is_truncated(void)
{
    prop_error err;
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    prop_fail(&err, PROP_FORMAT, "%s", big);
    CHECK(strlen(err.msg) == PROP_ERROR_LEN - 1);
}

static void test_status_names(void)
{
    CHECK(strcmp(prop_status_name(PROP_OK), "ok") == 0);
    CHECK(strcmp(prop_status_name(PROP_NOMEM), "out of memory") == 0);
}

int main(void)
{
    RUN(test_fail_records_message);
    RUN(test_fail_null_error_is_allowed);
    RUN(test_long_message_is_truncated);
    RUN(test_status_names);
    return check_summary("status");
}
