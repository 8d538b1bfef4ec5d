/* supervisor.c - restart strategies, intensity limits and escalation.
 * Every function here runs with rt->lock held (see runtime.c); the restarts
 * themselves (on_stop, on_start) run later on the child's dispatcher, before
 * its next message, so no handler ever runs under the lock. */
#include "runtime/runtime_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct supervisor {
    supervisor_t *next;      /* all supervisors, in declaration order */
    supervisor_t *parent;    /* NULL for root */
    char name[64];           /* unique name */
    sup_strategy_t strategy; /* which children restart together */
    int intensity;           /* restarts allowed per period */
    int64_t period_ms;       /* the window */
    int64_t *times;          /* ring of the last intensity+1 restart times */
    int ntimes, ttop;        /* entries used, next slot */
    bool running;            /* false once it gave up */
    uint64_t restarts;       /* all time */
    uint64_t escalations;    /* times it gave up */
};

const char *supervisor_strategy_name(sup_strategy_t s)
{
    switch (s) {
    case SUP_ONE_FOR_ONE:
        return "one_for_one";
    case SUP_ONE_FOR_ALL:
        return "one_for_all";
    case SUP_REST_FOR_ONE:
        return "rest_for_one";
    }
    return "unknown";
}

supervisor_t *runtime__sup_find(runtime_t *rt, const char *name)
{
    for (supervisor_t *s = rt->sups; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

supervisor_t *runtime__sup_root(runtime_t *rt)
{
    return rt->sups; /* root is declared first, by runtime_new */
}

const char *runtime__sup_name(const supervisor_t *s)
{
    return s ? s->name : "root";
}

bool runtime__sup_running(const supervisor_t *s)
{
    for (; s; s = s->parent)
        if (!s->running)
            return false;
    return true;
}

bool runtime__sup_descends(const supervisor_t *s, const supervisor_t *from)
{
    for (; s; s = s->parent)
        if (s == from)
            return true;
    return false;
}

void runtime__sup_free_all(runtime_t *rt)
{
    supervisor_t *s = rt->sups;
    while (s) {
        supervisor_t *next = s->next;
        free(s->times);
        free(s);
        s = next;
    }
    rt->sups = NULL;
}

int supervisor_add(runtime_t *rt, const supervisor_spec_t *spec)
{
    if (!spec || !spec->name || !spec->name[0] || strlen(spec->name) >= 64)
        return FENTA_EINVAL;
    if (spec->strategy < SUP_ONE_FOR_ONE || spec->strategy > SUP_REST_FOR_ONE)
        return FENTA_EINVAL;
    pthread_mutex_lock(&rt->lock);
    int rc = 0;
    supervisor_t *parent = NULL;
    if (runtime__sup_find(rt, spec->name)) {
        rc = FENTA_EEXIST;
    } else if (rt->sups &&
               !(parent = runtime__sup_find(rt, spec->parent ? spec->parent : "root"))) {
        rc = FENTA_ENOTFOUND;
    } else {
        supervisor_t *s = calloc(1, sizeof *s);
        int intensity = spec->intensity > 0 ? spec->intensity : 10;
        if (!s || !(s->times = calloc((size_t)intensity + 1, sizeof(int64_t)))) {
            free(s);
            rc = FENTA_ENOMEM;
        } else {
            snprintf(s->name, sizeof s->name, "%s", spec->name);
            s->parent = parent;
            s->strategy = spec->strategy;
            s->intensity = intensity;
            s->period_ms = spec->period_ms > 0 ? spec->period_ms : 5000;
            s->running = true;
            supervisor_t **pp = &rt->sups;
            while (*pp)
                pp = &(*pp)->next;
            *pp = s;
        }
    }
    pthread_mutex_unlock(&rt->lock);
    return rc;
}

/* Records a restart; false when it exceeds the intensity within the period. */
static bool within_intensity(supervisor_t *s)
{
    int64_t now = clock_now_ms();
    int cap = s->intensity + 1;
    s->times[s->ttop] = now;
    s->ttop = (s->ttop + 1) % cap;
    if (s->ntimes < cap)
        s->ntimes++;
    int recent = 0;
    for (int i = 0; i < s->ntimes; i++)
        if (now - s->times[i] <= s->period_ms)
            recent++;
    return recent <= s->intensity;
}

/* Brings s and its descendants back and restarts all their children. */
static void revive(runtime_t *rt, supervisor_t *s)
{
    for (supervisor_t *d = rt->sups; d; d = d->next)
        if (runtime__sup_descends(d, s)) {
            d->running = true;
            d->ntimes = d->ttop = 0;
        }
    runtime__restart_children(rt, s, NULL, true);
    runtime__schedule_all(rt);
}

static void child_failed(runtime_t *rt, supervisor_t *s, actor_t *a, supervisor_t *child);

static void give_up(runtime_t *rt, supervisor_t *s)
{
    s->running = false;
    s->escalations++;
    /* Its children restart when it is brought back. */
    runtime__restart_children(rt, s, NULL, true);
    if (s->parent) {
        log_kv(LOG_ERROR, NULL, "supervisor exceeded its restart intensity; escalating",
               (const char *const[]){"supervisor", s->name, "parent", s->parent->name, NULL});
        child_failed(rt, s->parent, NULL, s);
    } else {
        log_kv(LOG_ERROR, NULL,
               "root supervisor exceeded its restart intensity; tree stopped until restarted",
               (const char *const[]){"supervisor", s->name, NULL});
    }
}

/* A child of s failed: the actor a, or the supervisor child. */
static void child_failed(runtime_t *rt, supervisor_t *s, actor_t *a, supervisor_t *child)
{
    if (!s->running)
        return;
    if (!within_intensity(s)) {
        give_up(rt, s);
        return;
    }
    s->restarts++;
    switch (s->strategy) {
    case SUP_ONE_FOR_ONE:
        if (a)
            a->restart_pending = a->started;
        else
            revive(rt, child);
        break;
    case SUP_ONE_FOR_ALL:
        if (a)
            a->restart_pending = a->started;
        runtime__restart_children(rt, s, NULL, false);
        for (supervisor_t *d = rt->sups; d; d = d->next)
            if (d->parent == s)
                revive(rt, d);
        break;
    case SUP_REST_FOR_ONE:
        if (a) {
            a->restart_pending = a->started;
            runtime__restart_children(rt, s, a, false);
        } else {
            /* Child supervisors count as declared in order: the failed one and later. */
            bool later = false;
            for (supervisor_t *d = rt->sups; d; d = d->next) {
                later |= d == child;
                if (later && d->parent == s)
                    revive(rt, d);
            }
        }
        break;
    }
}

void runtime__sup_child_failed(runtime_t *rt, actor_t *a)
{
    child_failed(rt, a->sup ? a->sup : runtime__sup_root(rt), a, NULL);
}

int supervisor_restart(runtime_t *rt, const char *name)
{
    pthread_mutex_lock(&rt->lock);
    supervisor_t *s = runtime__sup_find(rt, name);
    if (s) {
        log_kv(LOG_INFO, NULL, "supervisor restarted by operator",
               (const char *const[]){"supervisor", s->name, NULL});
        revive(rt, s);
    }
    pthread_mutex_unlock(&rt->lock);
    return s ? 0 : FENTA_ENOTFOUND;
}

static void fill_info(const supervisor_t *s, supervisor_info_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", s->name);
    snprintf(out->parent, sizeof out->parent, "%s", s->parent ? s->parent->name : "");
    out->strategy = s->strategy;
    out->intensity = s->intensity;
    out->period_ms = s->period_ms;
    out->running = runtime__sup_running(s);
    out->restarts = s->restarts;
    out->escalations = s->escalations;
}

int supervisor_info(runtime_t *rt, const char *name, supervisor_info_t *out)
{
    pthread_mutex_lock(&rt->lock);
    supervisor_t *s = runtime__sup_find(rt, name);
    if (s)
        fill_info(s, out);
    pthread_mutex_unlock(&rt->lock);
    return s ? 0 : FENTA_ENOTFOUND;
}

void supervisor_each(runtime_t *rt, void (*cb)(const supervisor_info_t *info, void *arg), void *arg)
{
    /* Snapshot under the lock, call back without it. */
    pthread_mutex_lock(&rt->lock);
    size_t n = 0;
    for (supervisor_t *s = rt->sups; s; s = s->next)
        n++;
    supervisor_info_t *infos = calloc(n ? n : 1, sizeof *infos);
    size_t i = 0;
    for (supervisor_t *s = rt->sups; s && infos; s = s->next)
        fill_info(s, &infos[i++]);
    pthread_mutex_unlock(&rt->lock);
    for (size_t j = 0; infos && j < n; j++)
        cb(&infos[j], arg);
    free(infos);
}
