/* log.h - structured logging: one JSON object per line.
 *
 * Every event becomes one line such as
 *   {"ts":"2026-11-23T21:07:53.123Z","level":"info","msg":"started","actor":"job/01J..."}
 * written with a single write(2) to the log fd (stderr unless log_set_fd says
 * otherwise), so lines from different threads never interleave. Context
 * fields that are NULL are left out. All strings are JSON-escaped: quotes and
 * backslashes, control characters and DEL as \u00XX, and bytes that are not valid
 * UTF-8 replaced by U+FFFD, so a line always parses.
 *
 * A line is at most LOG_LINE_MAX bytes including its newline. A longer event
 * is cut (the message and extra values; context fields are kept, up to 256
 * escaped bytes each) and gets "truncated":true, and is still one valid JSON object.
 *
 * Logging never fails loudly and never changes errno: a write error is
 * dropped, because there is nowhere left to report it. */
#ifndef FENTA_LOG_H
#define FENTA_LOG_H
#include <stddef.h>

#define LOG_LINE_MAX 8192   /* bytes per line, newline included */
#define LOG_FORMAT_MIN 1024 /* smallest buffer log_format accepts */

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } log_level_t;

/* Who the event is about; any field may be NULL. All borrowed for the call. */
typedef struct {
    const char *actor;  /* actor address, e.g. "job/01J..." */
    const char *msg_id; /* id of the message being handled */
    const char *corr;   /* correlation id across actors */
} log_ctx_t;

/* Lowest level written; info until called. The fenta commands call it with
 * the log_level setting (--log-level, FENTA_LOG_LEVEL: cli/config.h). */
void log_set_level(log_level_t level);
/* Where lines go; default 2. The fd stays the caller's: log never closes it. */
void log_set_fd(int fd);
/* Nonzero if an event at level would be written (to skip costly arguments). */
int log_enabled(log_level_t level);
/* An event whose message is printf(fmt, ...). ctx may be NULL. */
void log_msg(log_level_t level, const log_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like log_msg with extra key/values: kv is a NULL-terminated list of key,
 * value string pairs, appended as JSON strings after the context fields. A key
 * equal to a fixed field name (ts, level, msg, actor, msg_id, corr, truncated)
 * is written as "kv.<key>" so it cannot shadow it; a key whose value is NULL
 * is written as null and ends the list. kv may be NULL. */
void log_kv(log_level_t level, const log_ctx_t *ctx, const char *msg, const char *const *kv);

/* Builds the line log_kv would write (same fields, escaping and cuts, at
 * most cap bytes with its newline; cap above LOG_LINE_MAX counts as
 * LOG_LINE_MAX) into out without writing it, and returns its length; 0 when
 * cap < LOG_FORMAT_MIN. Ignores the level filter. Async-signal-safe: no
 * locks, no heap, no stdio, no locale (the timestamp is computed, not
 * strftime'd), so a fatal-signal handler can report in the log's format
 * (runtime/crashlog.h). */
size_t log_format(char *out, size_t cap, log_level_t level, const log_ctx_t *ctx, const char *msg,
                  const char *const *kv);
/* The fd lines go to (log_set_fd; 2 by default), for a writer that cannot
 * take log's lock: one write(2) of a line shorter than PIPE_BUF stays whole. */
int log_fd(void);

#endif
