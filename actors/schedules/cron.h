/* cron.h - cron expressions for the schedule actor: parsing the five-field
 * syntax and finding the next fire time in an IANA time zone.
 *
 * Syntax (Vixie cron): "minute hour day-of-month month day-of-week",
 * fields separated by spaces or tabs. Each field is a comma list of items;
 * an item is "*", a value "a", a range "a-b" (a <= b), each optionally with a
 * step "/n" (n >= 1 and no larger than the field's span): a star with a
 * step ("*" then "/n", written together) is every n-th value from the
 * field's minimum, "a-b/n" every n-th from a to b, and "a/n" every n-th
 * from a to the field's maximum.
 *   minute        0-59
 *   hour          0-23
 *   day of month  1-31
 *   month         1-12 or JAN-DEC
 *   day of week   0-7 or SUN-SAT (0 and 7 are both Sunday; "5-7" is Fri-Sun)
 * Names are case-insensitive and may be range ends ("MON-FRI"), not steps.
 * Macros (case-insensitive): @yearly and @annually = "0 0 1 1 *", @monthly =
 * "0 0 1 * *", @weekly = "0 0 * * 0", @daily and @midnight = "0 0 * * *",
 * @hourly = "0 * * * *". @reboot is not a schedule and is refused.
 *
 * Day of month and day of week (Vixie): when both fields are restricted -
 * neither starts with "*" - a day matches when EITHER does ("0 0 13 * 5" is
 * every 13th and every Friday); when either starts with "*" (including
 * a stepped star), a day matches only when BOTH do.
 *
 * Fire times are whole minutes of local wall time in the schedule's zone.
 * Daylight-saving rules, for a matching wall time:
 *  - it exists once: it fires at that instant;
 *  - it exists twice (clocks go back; Berlin 2026-10-25 02:00-02:59 is
 *    first CEST then CET): it fires once, at the first occurrence; the
 *    repeated hour fires nothing;
 *  - it does not exist (clocks go forward; Berlin 2026-03-29 02:00-02:59):
 *    it fires at the first instant after the gap, the transition itself
 *    (03:00 CEST = 01:00 UTC). Every matching wall time in one gap maps to
 *    that one instant, so they fire once together, and a matching wall
 *    time at the end of the gap (03:00) is that same fire.
 * Hence fire times never repeat and never go backwards. */
#ifndef FENTA_CRON_H
#define FENTA_CRON_H
#include "actors/schedules/tz.h"

#include <stdint.h>

typedef struct cron cron_t;

/* Why a parse failed. */
typedef struct cron_error {
    const char *field; /* "minute", "hour", "day_of_month", "month", "day_of_week" or "expression";
                          static */
    char message[160]; /* one sentence starting with the field, e.g. "minute: 61 is out of range
                          0-59" */
} cron_error_t;

/* How far cron_next looks before giving up: 8 years and 2 days of local
 * days, the longest wait a valid schedule can have (Feb 29 across 2100). */
#define CRON_HORIZON_DAYS (366 * 8 + 2)

/* Parses expr. Returns a schedule the caller owns (cron_destroy), or NULL
 * with *err filled (when err is not NULL): field "expression" for an empty
 * expression, a count of fields other than 5, an unknown macro, or out of
 * memory; otherwise the field at fault, for a value out of range, an
 * unknown name, a reversed range, a step of 0 or larger than the field's
 * span, an empty list item, or characters that do not belong. */
cron_t *cron_parse(const char *expr, cron_error_t *err);

/* Frees the schedule and sets *self_p to NULL; NULL or a NULL *self_p is a no-op. */
void cron_destroy(cron_t **self_p);

/* Writes into *next_utc the first fire time strictly after after_utc, both
 * in seconds since the epoch, with the wall clock read in zone (NULL is
 * UTC) under the rules above. Returns 0; FENTA_ENOTFOUND (and leaves
 * *next_utc alone) when nothing fires within CRON_HORIZON_DAYS, as for
 * "0 0 31 2 *"; FENTA_EINVAL for a NULL schedule or next_utc, or after_utc
 * outside years 1-9999. Fast: it skips whole days that cannot match. */
int cron_next(const cron_t *c, const tz_t *zone, int64_t after_utc, int64_t *next_utc);

#endif
