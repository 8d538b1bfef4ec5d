/* tz.h - IANA time zones read straight from the TZif files under
 * /usr/share/zoneinfo, for code that must turn local wall-clock times (a
 * user's schedule) into instants and back.
 *
 * Why not localtime_r: glibc picks the zone from the TZ environment variable,
 * and setenv in a multithreaded process races with every getenv. A tz_t is
 * immutable once loaded, so any number of threads may query one at once
 * without locks.
 *
 * What is read (RFC 8536): TZif version 1 (32-bit transitions) and versions
 * 2 and later (64-bit transitions, which are used when present), plus the
 * POSIX TZ string in the version 2+ footer, which rules every instant after
 * the last transition in the file. That matters both for "slim" files, whose
 * table stops at the last rule change (Europe/Berlin's stops in 1996), and
 * for "fat" ones, whose table stops in 2037. Zones with leap-second records
 * (the right/ tree) are refused: their timestamps are not POSIX time.
 *
 * Times are int64_t seconds. An instant is seconds since 1970-01-01T00:00Z
 * (POSIX time, no leap seconds). A "local" time is the wall clock read as if
 * it were UTC: the seconds from 1970-01-01T00:00 to that wall time in a zone
 * that never changes offset; tz_civil_to_seconds builds one from fields. */
#ifndef FENTA_TZ_H
#define FENTA_TZ_H
#include <stddef.h>
#include <stdint.h>

typedef struct tz tz_t;

/* A calendar date and time of day, proleptic Gregorian. */
typedef struct tz_civil {
    int year;    /* e.g. 2026; may be <= 0 (astronomical numbering) */
    int month;   /* 1-12 */
    int day;     /* 1-31 */
    int hour;    /* 0-23 */
    int minute;  /* 0-59 */
    int second;  /* 0-59 */
    int weekday; /* 0 = Sunday .. 6 = Saturday; filled by tz_civil_from_seconds, ignored on input */
} tz_civil_t;

/* Loads the zone called name ("Europe/Berlin", "America/New_York", "UTC",
 * "Etc/UTC") from /usr/share/zoneinfo. "UTC" and "Etc/UTC" are built in and
 * need no file. Returns a zone the caller owns (tz_destroy), or NULL with a
 * sentence in err (when err is not NULL and errlen > 0): for an empty or
 * over-long name, one with characters outside [A-Za-z0-9/_+-.], a leading or
 * trailing "/", an empty, "." or ".." component or one starting with ".",
 * a zone that does not exist, a file that is not a valid TZif file, a zone
 * with leap seconds, or out of memory. */
tz_t *tz_load(const char *name, char *err, size_t errlen);

/* Parses a TZif image of len bytes held in memory (what tz_load reads from
 * the file) and names the zone name. Same results and messages as tz_load. */
tz_t *tz_parse(const char *name, const unsigned char *data, size_t len, char *err, size_t errlen);

/* Frees the zone and sets *self_p to NULL; NULL or a NULL *self_p is a no-op. */
void tz_destroy(tz_t **self_p);

/* The name the zone was loaded under; borrowed, lives as long as the zone.
 * "UTC" for a NULL zone. */
const char *tz_name(const tz_t *z);

/* The offset from UTC, in seconds east (Berlin in summer: 7200; New York in
 * winter: -18000), in force at instant utc. A NULL zone is UTC. */
int64_t tz_offset_at(const tz_t *z, int64_t utc);

/* The instants whose wall clock in zone z reads local, ascending, into out;
 * returns how many there are:
 *   1 - the usual case;
 *   2 - local occurs twice (the hour repeated when clocks go back);
 *   0 - local does not exist (skipped when clocks go forward); out[0] is
 *       then the instant the skipped stretch ends, i.e. the transition
 *       instant, the first one whose wall clock reads later than local.
 * A NULL zone is UTC. Meant for years 1-9999; a local time beyond about
 * 317,000 years from 1970 is answered for that limit instead. */
int tz_local_to_utc(const tz_t *z, int64_t local, int64_t out[2]);

/* Seconds from 1970-01-01T00:00 to the fields of c (weekday ignored). Fields
 * out of range are carried (month 13 is January of the next year, ...). */
int64_t tz_civil_to_seconds(const tz_civil_t *c);

/* The fields, weekday included, of the time s seconds from 1970-01-01T00:00. */
void tz_civil_from_seconds(int64_t s, tz_civil_t *c);

/* Days from 1970-01-01 to the given date (proleptic Gregorian; negative
 * before 1970), and back (weekday from (days + 4) mod 7). */
int64_t tz_days_from_civil(int64_t year, int month, int day);
void tz_civil_from_days(int64_t days, int64_t *year, int *month, int *day);

#endif
