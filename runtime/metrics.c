/* metrics.c - the metrics registry: get-or-create under a lock, lock-free
 * updates, and rendering in the Prometheus text format 0.0.4.
 *
 * Values are doubles kept as their bit patterns in _Atomic uint64_t and
 * changed with compare-and-swap loops, because C11 has no atomic double add.
 * Integers stay exact up to 2^53, which is what makes concurrent counter
 * increments exact. A histogram keeps one count per bucket (not cumulative,
 * so an observation touches one bucket) and sums them when read, so the +Inf
 * bucket and _count of one render always agree.
 *
 * Numbers are printed with printf, so the process must keep the C numeric
 * locale (the runtime never calls setlocale). */
#include "runtime/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

static const double default_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};

typedef struct family {
    char *name;            /* metric name, validated */
    char *help;            /* # HELP text; NULL until someone gives one */
    kind_t kind;           /* every series of the family has it */
    struct metric *series; /* in registration order */
    struct metric **tail;  /* where the next series is linked */
    struct family *next;   /* next family in registration order */
} family_t;

struct metric {
    family_t *fam;            /* name and type */
    char *labels;             /* rendered label set, "" for none */
    struct metric *next;      /* next series of the same family */
    _Atomic uint64_t value;   /* bits of a double: counter/gauge value, histogram sum */
    size_t nbuckets;          /* histogram: number of finite bounds */
    double *bounds;           /* histogram: nbuckets ascending upper bounds */
    _Atomic uint64_t *counts; /* histogram: nbuckets + 1 counts per bucket, last is +Inf */
};

/* Guards the lists, never the values: updates do not take it. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static family_t *families;
static family_t **families_tail = &families;

/* ---- atomic doubles ------------------------------------------------------- */

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double double_of(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, bits_of(double_of(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed))
        ; /* old was reloaded by the failed exchange */
}

/* ---- validation ----------------------------------------------------------- */

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* */
static bool valid_name(const char *s)
{
    if (!s || !(is_name_start(*s) || *s == ':'))
        return false;
    for (s++; *s; s++)
        if (!is_name_char(*s) && *s != ':')
            return false;
    return true;
}

/* name="value"(,name="value")*, value escapes \\ \" \n only. Checked because
 * the set is written out verbatim: a stray quote or newline would corrupt the
 * whole exposition, not just this series. */
static bool valid_labels(const char *s, bool is_histogram)
{
    const char *p = s;
    while (*p) {
        const char *name = p;
        if (!is_name_start(*p))
            return false;
        while (is_name_char(*p))
            p++;
        if (is_histogram && p - name == 2 && memcmp(name, "le", 2) == 0)
            return false; /* le is the bucket label we add */
        if (p[0] != '=' || p[1] != '"')
            return false;
        for (p += 2; *p != '"'; p++) {
            if (*p == '\0' || *p == '\n')
                return false;
            if (*p == '\\' && *++p != '\\' && *p != '"' && *p != 'n')
                return false;
        }
        p++;
        if (*p == ',' && p[1] != '\0')
            p++;
        else if (*p != '\0')
            return false;
    }
    return true;
}

static bool valid_buckets(const double *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(b[i]) || (i > 0 && !(b[i] > b[i - 1])))
            return false;
    return true;
}

/* ---- registry ------------------------------------------------------------- */

static void metric_free(metric_t *m)
{
    if (!m)
        return;
    free(m->labels);
    free(m->bounds);
    free(m->counts);
    free(m);
}

static void family_free(family_t *f)
{
    if (!f)
        return;
    for (metric_t *m = f->series, *next; m; m = next) {
        next = m->next;
        metric_free(m);
    }
    free(f->name);
    free(f->help);
    free(f);
}

static family_t *family_new(const char *name, kind_t kind)
{
    family_t *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->name = strdup(name);
    if (!f->name) {
        free(f);
        return NULL;
    }
    f->kind = kind;
    f->tail = &f->series;
    return f;
}

static metric_t *metric_new(family_t *f, const char *labels, const double *buckets, size_t nbuckets)
{
    metric_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->fam = f;
    atomic_init(&m->value, bits_of(0.0));
    m->labels = strdup(labels);
    if (!m->labels)
        goto fail;
    if (f->kind == KIND_HISTOGRAM) {
        m->nbuckets = nbuckets;
        m->bounds = malloc(nbuckets * sizeof *m->bounds);
        m->counts = malloc((nbuckets + 1) * sizeof *m->counts);
        if (!m->bounds || !m->counts)
            goto fail;
        memcpy(m->bounds, buckets, nbuckets * sizeof *m->bounds);
        for (size_t i = 0; i <= nbuckets; i++)
            atomic_init(&m->counts[i], 0);
    }
    return m;
fail:
    metric_free(m);
    return NULL;
}

static metric_t *get_or_create(kind_t kind, const char *name, const char *help, const char *labels,
                               const double *buckets, size_t nbuckets)
{
    if (!labels)
        labels = "";
    if (!valid_name(name) || !valid_labels(labels, kind == KIND_HISTOGRAM))
        return NULL;
    if (kind == KIND_HISTOGRAM) {
        if (!buckets || nbuckets == 0) {
            buckets = default_buckets;
            nbuckets = sizeof default_buckets / sizeof default_buckets[0];
        }
        if (!valid_buckets(buckets, nbuckets))
            return NULL;
    }

    pthread_mutex_lock(&reg_lock);
    metric_t *m = NULL;
    family_t *f = families, *fresh = NULL;
    while (f && strcmp(f->name, name) != 0)
        f = f->next;
    if (f && f->kind != kind)
        goto out;
    if (f) {
        for (m = f->series; m; m = m->next)
            if (strcmp(m->labels, labels) == 0)
                goto out_help;
    } else {
        f = fresh = family_new(name, kind);
        if (!f)
            goto out;
    }
    m = metric_new(f, labels, buckets, nbuckets);
    if (!m) {
        family_free(fresh); /* an empty family would render as a bare # TYPE */
        goto out;
    }
    *f->tail = m;
    f->tail = &m->next;
    if (fresh) {
        *families_tail = fresh;
        families_tail = &fresh->next;
    }
out_help:
    if (help && !f->help)
        f->help = strdup(help); /* out of memory only costs the # HELP line */
out:
    pthread_mutex_unlock(&reg_lock);
    return m;
}

metric_t *metrics_counter(const char *name, const char *help, const char *labels)
{
    return get_or_create(KIND_COUNTER, name, help, labels, NULL, 0);
}

metric_t *metrics_gauge(const char *name, const char *help, const char *labels)
{
    return get_or_create(KIND_GAUGE, name, help, labels, NULL, 0);
}

metric_t *metrics_histogram(const char *name, const char *help, const char *labels,
                            const double *buckets, size_t nbuckets)
{
    return get_or_create(KIND_HISTOGRAM, name, help, labels, buckets, nbuckets);
}

void metrics_reset(void)
{
    pthread_mutex_lock(&reg_lock);
    for (family_t *f = families, *next; f; f = next) {
        next = f->next;
        family_free(f);
    }
    families = NULL;
    families_tail = &families;
    pthread_mutex_unlock(&reg_lock);
}

/* ---- updates -------------------------------------------------------------- */

void metric_inc(metric_t *m)
{
    metric_add(m, 1.0);
}

void metric_add(metric_t *m, double v)
{
    if (!m || m->fam->kind == KIND_HISTOGRAM)
        return;
    if (m->fam->kind == KIND_COUNTER && !(v >= 0)) /* also refuses NaN */
        return;
    atomic_add_double(&m->value, v);
}

void metric_set(metric_t *m, double v)
{
    if (!m || m->fam->kind != KIND_GAUGE)
        return;
    atomic_store_explicit(&m->value, bits_of(v), memory_order_relaxed);
}

void metric_observe(metric_t *m, double v)
{
    if (!m || m->fam->kind != KIND_HISTOGRAM)
        return;
    /* First bound >= v; NaN compares false everywhere and lands in +Inf. */
    size_t lo = 0, hi = m->nbuckets;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= m->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&m->counts[lo], 1, memory_order_relaxed);
    atomic_add_double(&m->value, v);
}

static uint64_t histogram_count(const metric_t *m)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= m->nbuckets; i++)
        n += atomic_load_explicit(&m->counts[i], memory_order_relaxed);
    return n;
}

double metric_value(const metric_t *m)
{
    if (!m)
        return 0;
    if (m->fam->kind == KIND_HISTOGRAM)
        return (double)histogram_count(m);
    return double_of(atomic_load_explicit(&m->value, memory_order_relaxed));
}

/* ---- rendering ------------------------------------------------------------ */

/* Shortest of %.15g / %.17g that reads back as v, so 0.1 prints as 0.1 and
 * every value still round-trips; infinities and NaN as Prometheus spells them. */
static const char *fmt_double(char buf[32], double v)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    snprintf(buf, 32, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, 32, "%.17g", v);
    return buf;
}

/* # HELP text escapes backslash and newline only (format 0.0.4). */
static void put_help(FILE *out, const char *name, const char *help)
{
    fprintf(out, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", out);
        else if (*p == '\n')
            fputs("\\n", out);
        else
            fputc(*p, out);
    }
    fputc('\n', out);
}

static void put_histogram(FILE *out, const metric_t *m)
{
    const char *name = m->fam->name, *labels = m->labels, *sep = *labels ? "," : "";
    char num[32];
    uint64_t cum = 0;
    for (size_t i = 0; i < m->nbuckets; i++) {
        cum += atomic_load_explicit(&m->counts[i], memory_order_relaxed);
        fprintf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, sep,
                fmt_double(num, m->bounds[i]), (unsigned long long)cum);
    }
    cum += atomic_load_explicit(&m->counts[m->nbuckets], memory_order_relaxed);
    fprintf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    const char *open = *labels ? "{" : "", *close = *labels ? "}" : "";
    double sum = double_of(atomic_load_explicit(&m->value, memory_order_relaxed));
    fprintf(out, "%s_sum%s%s%s %s\n", name, open, labels, close, fmt_double(num, sum));
    fprintf(out, "%s_count%s%s%s %llu\n", name, open, labels, close, (unsigned long long)cum);
}

char *metrics_render(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return NULL;
    pthread_mutex_lock(&reg_lock);
    for (const family_t *f = families; f; f = f->next) {
        if (f->help)
            put_help(out, f->name, f->help);
        fprintf(out, "# TYPE %s %s\n", f->name, kind_names[f->kind]);
        for (const metric_t *m = f->series; m; m = m->next) {
            if (f->kind == KIND_HISTOGRAM) {
                put_histogram(out, m);
                continue;
            }
            char num[32];
            const char *open = *m->labels ? "{" : "", *close = *m->labels ? "}" : "";
            fprintf(out, "%s%s%s%s %s\n", f->name, open, m->labels, close,
                    fmt_double(num, metric_value(m)));
        }
    }
    pthread_mutex_unlock(&reg_lock);
    /* The stream reports a failed allocation through its error flag. */
    bool failed = ferror(out);
    if (fclose(out) != 0 || failed) {
        free(text);
        return NULL;
    }
    return text;
}
