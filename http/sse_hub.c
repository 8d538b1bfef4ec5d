/* sse_hub.c - job events to SSE streams; see sse_hub.h.
 *
 * Locks: hub->lock guards the list of subscribers (held only to walk or
 * change it, never across a database call); each subscriber's own lock is
 * held while it replays, so a live event for it waits and then checks
 * whether the replay carried it. References: the list holds one, a
 * delivery in flight holds one; the last drop releases the stream. */
#include "http/sse_hub.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SSE_MAX_SUBS 10000

struct sse_sub {
    sse_sub_t *next;      /* in hub->subs */
    int refs;             /* guarded by hub->lock */
    pthread_mutex_t lock; /* held while replaying and while writing */
    http_stream_t *stream;
    char org[40];        /* the organisation */
    char job[40];        /* the job, "" for all of the organisation's */
    long long last_id;   /* the newest event id written */
    long long *replayed; /* ids the replay carried, ascending */
    size_t nreplayed;
    bool ended; /* the job's final event went out */
};

struct sse_hub {
    pg_pool_t *pool;
    sse_frame_fn frame;
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* wakes the heartbeat thread to stop */
    sse_sub_t *subs;
    size_t nsubs;
    bool stop;
    pthread_t beat;
    bool beat_started;
    int beat_ms;
    pg_listener_t *listener;
};

static void sub_free(sse_sub_t *s)
{
    http_stream_release(&s->stream);
    pthread_mutex_destroy(&s->lock);
    free(s->replayed);
    free(s);
}

static void unref(sse_hub_t *h, sse_sub_t *s)
{
    pthread_mutex_lock(&h->lock);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&h->lock);
    if (last)
        sub_free(s);
}

static bool was_replayed(const sse_sub_t *s, long long id)
{
    size_t lo = 0, hi = s->nreplayed;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->replayed[mid] == id)
            return true;
        if (s->replayed[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* Writes one event to s (its lock held). */
static void deliver(sse_hub_t *h, sse_sub_t *s, long long id, const char *frame, bool final)
{
    if (s->ended || was_replayed(s, id))
        return;
    if (http_stream_write(s->stream, frame, strlen(frame)) == 0 && id > s->last_id)
        s->last_id = id;
    if (final && s->job[0]) {
        s->ended = true;
        http_stream_end(s->stream);
    }
    (void)h;
}

/* Subscribers wanting (org, job), each with a reference; *n of them. */
static sse_sub_t **matching(sse_hub_t *h, const char *org, const char *job, size_t *n)
{
    *n = 0;
    pthread_mutex_lock(&h->lock);
    sse_sub_t **out = h->nsubs ? malloc(h->nsubs * sizeof *out) : NULL;
    for (sse_sub_t *s = h->subs; out && s; s = s->next)
        if ((!org || strcmp(s->org, org) == 0) &&
            (!job || !s->job[0] || strcmp(s->job, job) == 0)) {
            s->refs++;
            out[(*n)++] = s;
        }
    pthread_mutex_unlock(&h->lock);
    return out;
}

/* Writes rows to s, those after its last id only when catch_up (after a
 * lost listener connection). The stream of a job ends at its final event
 * only when that is the last row: a retried job has events after its
 * first "failed". */
static void write_rows(sse_hub_t *h, sse_sub_t *s, const job_events_db_rows_t *rows, bool catch_up)
{
    for (size_t i = 0; rows && i < rows->n; i++) {
        const job_events_db_row_t *e = &rows->v[i];
        if (catch_up && e->id <= s->last_id)
            continue;
        char id[24];
        snprintf(id, sizeof id, "%lld", e->id);
        bool final = false;
        char *f = h->frame(h->arg, id, e->type, e->data, &final);
        /* A final event followed by more (the job was retried) is not. */
        if (f)
            deliver(h, s, e->id, f, final && i == rows->n - 1);
        free(f);
    }
}

static void catch_up(sse_hub_t *h)
{
    size_t n = 0;
    sse_sub_t **subs = matching(h, NULL, NULL, &n);
    int err = 0;
    pg_conn_t *c = n ? pg_acquire(h->pool, 5000, &err) : NULL;
    for (size_t i = 0; i < n; i++) {
        sse_sub_t *s = subs[i];
        job_events_db_rows_t rows = {0};
        if (c)
            (void)job_events_db_after(c, s->org, s->job[0] ? s->job : NULL, s->last_id,
                                      SSE_REPLAY_MAX, &rows);
        pthread_mutex_lock(&s->lock);
        write_rows(h, s, &rows, true);
        pthread_mutex_unlock(&s->lock);
        job_events_db_free(&rows);
        unref(h, s);
    }
    if (c)
        pg_release(h->pool, &c);
    free(subs);
}

/* The listener thread: one notification per committed event. */
static void on_notify(const char *payload, void *arg)
{
    sse_hub_t *h = arg;
    if (!payload) {
        catch_up(h);
        return;
    }
    /* "id org job type data", or "id org job" for an event too large to
     * carry (read from the table then). */
    char id[24], org[40], job[40], type[64];
    int used = 0;
    if (sscanf(payload, "%23s %39s %39s%n", id, org, job, &used) != 3)
        return;
    const char *rest = payload + used;
    size_t n = 0;
    sse_sub_t **subs = matching(h, org, job, &n);
    if (!n) {
        free(subs);
        return;
    }
    char *f = NULL;
    bool final = false;
    int tl = 0;
    if (sscanf(rest, " %63s %n", type, &tl) == 1 && tl > 0) {
        f = h->frame(h->arg, id, type, rest + tl, &final);
    } else {
        int err = 0;
        pg_conn_t *c = pg_acquire(h->pool, 5000, &err);
        job_events_db_rows_t row = {0};
        if (c && job_events_db_get(c, atoll(id), &row) == 0)
            f = h->frame(h->arg, id, row.v[0].type, row.v[0].data, &final);
        if (c)
            pg_release(h->pool, &c);
        job_events_db_free(&row);
    }
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&subs[i]->lock);
        if (f)
            deliver(h, subs[i], atoll(id), f, final);
        pthread_mutex_unlock(&subs[i]->lock);
        unref(h, subs[i]);
    }
    free(f);
    free(subs);
}

/* Drops closed streams; writes a comment to the others. */
static void sweep(sse_hub_t *h, bool ping)
{
    pthread_mutex_lock(&h->lock);
    for (sse_sub_t **pp = &h->subs; *pp;) {
        sse_sub_t *s = *pp;
        if (http_stream_closed(s->stream)) {
            *pp = s->next;
            h->nsubs--;
            if (--s->refs == 0)
                sub_free(s);
            continue;
        }
        if (ping && pthread_mutex_trylock(&s->lock) == 0) {
            http_stream_write(s->stream, ": ping\n\n", 8);
            pthread_mutex_unlock(&s->lock);
        }
        pp = &s->next;
    }
    pthread_mutex_unlock(&h->lock);
}

static void *beat_main(void *arg)
{
    sse_hub_t *h = arg;
    pthread_setname_np(pthread_self(), "sse-heartbeat");
    pthread_mutex_lock(&h->lock);
    while (!h->stop) {
        struct timespec ts;
        clock_deadline(h->beat_ms, &ts);
        pthread_cond_timedwait(&h->cond, &h->lock, &ts);
        if (h->stop)
            break;
        pthread_mutex_unlock(&h->lock);
        sweep(h, true);
        pthread_mutex_lock(&h->lock);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

sse_hub_t *sse_hub_new(pg_pool_t *pool, const char *conninfo, int heartbeat_ms, sse_frame_fn frame,
                       void *arg)
{
    sse_hub_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->pool = pool;
    h->frame = frame;
    h->arg = arg;
    h->beat_ms = heartbeat_ms >= 10 ? heartbeat_ms : 15000;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    int err = 0;
    h->listener = pg_listen_start(conninfo, "fenta_job_events", on_notify, h, &err);
    if (!h->listener || pthread_create(&h->beat, NULL, beat_main, h) != 0) {
        sse_hub_destroy(&h);
        return NULL;
    }
    h->beat_started = true;
    return h;
}

void sse_hub_destroy(sse_hub_t **hub_p)
{
    if (!hub_p || !*hub_p)
        return;
    sse_hub_t *h = *hub_p;
    pg_listen_stop(&h->listener); /* no more deliveries */
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->lock);
    if (h->beat_started)
        pthread_join(h->beat, NULL);
    while (h->subs) {
        sse_sub_t *s = h->subs;
        h->subs = s->next;
        http_stream_end(s->stream);
        sub_free(s);
    }
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->lock);
    free(h);
    *hub_p = NULL;
}

sse_sub_t *sse_hub_subscribe(sse_hub_t *h, http_stream_t **stream, const char *org_id,
                             const char *job_id)
{
    sse_sub_t *s = calloc(1, sizeof *s);
    pthread_mutex_lock(&h->lock);
    bool full = h->nsubs >= SSE_MAX_SUBS || h->stop;
    pthread_mutex_unlock(&h->lock);
    if (!s || full) {
        free(s);
        http_stream_write(*stream, ": too many streams; retry later\n\n", 34);
        http_stream_release(stream);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_lock(&s->lock); /* until the replay is written */
    s->stream = *stream;
    *stream = NULL;
    snprintf(s->org, sizeof s->org, "%s", org_id);
    snprintf(s->job, sizeof s->job, "%s", job_id ? job_id : "");
    s->refs = 1;
    pthread_mutex_lock(&h->lock);
    s->next = h->subs;
    h->subs = s;
    h->nsubs++;
    pthread_mutex_unlock(&h->lock);
    return s;
}

void sse_hub_replay(sse_hub_t *h, sse_sub_t *s, const job_events_db_rows_t *rows)
{
    size_t n = rows ? rows->n : 0;
    s->replayed = n ? malloc(n * sizeof *s->replayed) : NULL;
    for (size_t i = 0; s->replayed && i < n; i++)
        s->replayed[s->nreplayed++] = rows->v[i].id;
    /* Written with the list's ids cleared, then the list kept to drop the
     * live copies of these events that may still arrive. */
    long long *keep = s->replayed;
    size_t nkeep = s->nreplayed;
    s->replayed = NULL;
    s->nreplayed = 0;
    write_rows(h, s, rows, false);
    s->replayed = keep;
    s->nreplayed = nkeep;
    pthread_mutex_unlock(&s->lock);
}

size_t sse_hub_count(sse_hub_t *h)
{
    pthread_mutex_lock(&h->lock);
    size_t n = h->nsubs;
    pthread_mutex_unlock(&h->lock);
    return n;
}
