/* metrics.h - the process-wide metrics registry and its Prometheus text form.
 *
 * A metric is found or made once (under a lock) and then updated from any
 * thread without locks: values are C11 atomics. metrics_render writes the
 * whole registry in the Prometheus text exposition format 0.0.4, families in
 * the order they were first registered, one # HELP / # TYPE per family.
 *
 * Every update and read accepts a NULL metric and does nothing (value 0), so
 * a failed registration costs a missing series, never a crash. An update that
 * does not fit the metric's type (metric_set on a counter, metric_observe on a
 * gauge, a negative or NaN metric_add on a counter) is ignored. */
#ifndef FENTA_METRICS_H
#define FENTA_METRICS_H
#include <stddef.h>

typedef struct metric metric_t; /* opaque; lives until metrics_reset() or process exit */

/* Get-or-create the series (name, labels). name must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*. labels is a rendered label set such as
 * `kind="job",dispatcher="io"` (label names [a-zA-Z_][a-zA-Z0-9_]*, values
 * quoted with \\, \" and \n escaped), written out as given; NULL or "" for
 * none. help is the family's # HELP text; the first non-NULL one wins.
 * Returns NULL on a bad name or label set, a type different from the
 * family's, or no memory. The pointer is borrowed from the registry. */
metric_t *metrics_counter(const char *name, const char *help, const char *labels);
metric_t *metrics_gauge(const char *name, const char *help, const char *labels);
/* buckets: strictly ascending finite upper bounds, without +Inf; NULL or 0 for
 * the default latency buckets in seconds (0.0005 .. 10). An existing series
 * keeps the buckets it was made with. labels may not use "le". */
metric_t *metrics_histogram(const char *name, const char *help, const char *labels,
                            const double *buckets, size_t nbuckets);

void metric_inc(metric_t *m);               /* counter/gauge +1 */
void metric_add(metric_t *m, double v);     /* counter (v >= 0) or gauge */
void metric_set(metric_t *m, double v);     /* gauge */
void metric_observe(metric_t *m, double v); /* histogram: v <= bound counts in that bucket */
double metric_value(const metric_t *m);     /* counter/gauge value; histogram: count */

/* The whole registry as Prometheus text ("" when empty); the caller frees it.
 * NULL when out of memory. */
char *metrics_render(void);
/* Drops every metric; pointers handed out before are dangling after. For tests. */
void metrics_reset(void);

#endif
