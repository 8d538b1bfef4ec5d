/* log_capture.h - catching the process's log lines in a test (the access
 * log above all), to check what one line says. */
#ifndef FENTA_TEST_LOG_CAPTURE_H
#define FENTA_TEST_LOG_CAPTURE_H
#include <jansson.h>

/* Sends every log line of level INFO and above to a temporary file until
 * fx_log_capture_end. A file, not a pipe: a writer never blocks on a test
 * that reads only at the end. Asserts success. */
void fx_log_capture_start(void);
/* Sends the log back to stderr at level WARN and returns what was written
 * meanwhile, NUL-terminated (the caller's to free). */
char *fx_log_capture_end(void);
/* The first line of log holding needle, parsed (the caller's); asserts
 * there is one and that it is one JSON object. */
json_t *fx_log_line(const char *log, const char *needle);

#endif
