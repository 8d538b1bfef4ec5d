/* log_capture.c - see log_capture.h. */
#include "tests/support/log_capture.h"
#include "runtime/log.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static FILE *capture; /* the temporary file lines go to while capturing */

void fx_log_capture_start(void)
{
    cr_assert_null(capture, "one capture at a time");
    capture = tmpfile();
    cr_assert_not_null(capture);
    log_set_level(LOG_INFO);
    log_set_fd(fileno(capture));
}

char *fx_log_capture_end(void)
{
    cr_assert_not_null(capture, "fx_log_capture_start first");
    log_set_fd(2);
    log_set_level(LOG_WARN);
    cr_assert_eq(fseek(capture, 0, SEEK_END), 0);
    long len = ftell(capture);
    cr_assert_geq(len, 0);
    rewind(capture);
    char *text = malloc((size_t)len + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)len, capture), (size_t)len);
    text[len] = '\0';
    fclose(capture);
    capture = NULL;
    return text;
}

json_t *fx_log_line(const char *log, const char *needle)
{
    const char *hit = strstr(log, needle);
    cr_assert_not_null(hit, "no log line has %s:\n%s", needle, log);
    const char *start = hit;
    while (start > log && start[-1] != '\n')
        start--;
    const char *end = strchr(hit, '\n');
    size_t len = end ? (size_t)(end - start) : strlen(start);
    json_t *j = json_loadb(start, len, 0, NULL);
    cr_assert_not_null(j, "one JSON object per line: %.*s", (int)len, start);
    return j;
}
