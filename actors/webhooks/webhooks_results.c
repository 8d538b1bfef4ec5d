/* webhooks_results.c - the webhook engine's writer thread and what feeds
 * it: the fan-outs' pending rows, and the outbound client's results, which
 * are turned into rows and messages on the client's thread and recorded
 * (one statement) and sent (one commit) here, so neither the client's loop
 * nor a fan-out waits for PostgreSQL; also the sets of ids in flight. */
#include "actors/webhooks/webhooks_internal.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/vec.h"
#include "storage/webhooks_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int64_t default_retry_ms[] = {5000,     30000,    120000,   600000,  3600000,
                                           10800000, 21600000, 43200000, 86400000};

/* ---- sets of ids -------------------------------------------------------------------------- */

static unsigned bucket(const char *did)
{
    unsigned h = 2166136261u;
    for (const char *p = did; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % INFLIGHT_BUCKETS;
}

int webhooks__set_add(webhooks_t *w, struct setnode **set, const char *did)
{
    struct setnode *n = malloc(sizeof *n);
    if (!n)
        return FENTA_ENOMEM;
    snprintf(n->did, sizeof n->did, "%s", did);
    pthread_mutex_lock(&w->lock);
    n->next = set[bucket(did)];
    set[bucket(did)] = n;
    pthread_mutex_unlock(&w->lock);
    return 0;
}

/* Removes one entry of did; whether there was one. */
bool webhooks__set_take(webhooks_t *w, struct setnode **set, const char *did, bool remove)
{
    pthread_mutex_lock(&w->lock);
    struct setnode **pp = &set[bucket(did)];
    while (*pp && strcmp((*pp)->did, did) != 0)
        pp = &(*pp)->next;
    struct setnode *hit = *pp;
    if (hit && remove)
        *pp = hit->next;
    pthread_mutex_unlock(&w->lock);
    if (hit && remove)
        free(hit);
    return hit != NULL;
}

/* ---- pending rows --------------------------------------------------------------------------- */

static void write_pending(webhooks_t *w, json_t *rows)
{
    char *rs = json_dumps(rows, JSON_COMPACT);
    int err = 0;
    pg_conn_t *c = rs ? pg_acquire(w->cfg.pool, 10000, &err) : NULL;
    if (c)
        err = webhooks_db_insert_pending(c, rs);
    if (!rs || !c || err)
        log_kv(LOG_WARN, NULL, "webhook deliveries not listed yet; their first result lists them",
               (const char *const[]){"error", fenta_strerror(err ? err : FENTA_ENOMEM), NULL});
    pg_release(w->cfg.pool, &c);
    free(rs);
}

static void record_results(webhooks_t *w, json_t *rows, json_t *failed, json_t *ok,
                           envelope_t **envs, size_t nenv);

void *webhooks__writer_main(void *arg)
{
    webhooks_t *w = arg;
    pthread_mutex_lock(&w->wlock);
    for (;;) {
        while (!w->writer_stop && json_array_size(w->wrows) == 0 && w->nrenvs == 0 &&
               json_array_size(w->rrows) == 0)
            pthread_cond_wait(&w->wcond, &w->wlock);
        if (json_array_size(w->wrows) == 0 && w->nrenvs == 0 && json_array_size(w->rrows) == 0)
            break; /* stopping, nothing left */
        /* Everything queued meanwhile goes in one batch. */
        json_t *pending = w->wrows, *rows = w->rrows, *failed = w->rfailed, *ok = w->rok;
        envelope_t **envs = w->renvs;
        size_t nenv = w->nrenvs;
        w->wrows = json_array();
        w->rrows = json_array();
        w->rfailed = json_array();
        w->rok = json_array();
        w->renvs = NULL;
        w->nrenvs = w->caprenvs = 0;
        pthread_mutex_unlock(&w->wlock);
        if (json_array_size(pending))
            write_pending(w, pending);
        if (json_array_size(rows) || nenv)
            record_results(w, rows, failed, ok, envs, nenv);
        free(envs);
        json_decref(pending);
        json_decref(rows);
        json_decref(failed);
        json_decref(ok);
        pthread_mutex_lock(&w->wlock);
    }
    pthread_mutex_unlock(&w->wlock);
    return NULL;
}

/* Queues rows for the writer (or writes them here when it is not running). */
void webhooks__queue_pending(webhooks_t *w, json_t *rows)
{
    pthread_mutex_lock(&w->wlock);
    bool running = w->writer_started && !w->writer_stop && w->wrows;
    if (running) {
        json_array_extend(w->wrows, rows);
        pthread_cond_signal(&w->wcond);
    }
    pthread_mutex_unlock(&w->wlock);
    if (!running)
        write_pending(w, rows);
}

/* ---- results, from the client's thread ------------------------------------------------ */

static int64_t jittered(int64_t ms)
{
    uint32_t r = 0;
    crypto_random(&r, sizeof r);
    double f = 0.9 + 0.2 * ((double)r / 4294967295.0);
    return (int64_t)((double)ms * f);
}

/* A response body as JSON text: bytes that are not valid UTF-8 (a binary
 * answer, a cut in the middle of a character) become '?'. */
static json_t *body_text(const char *b, size_t n)
{
    json_t *s = json_stringn(b, n);
    if (s)
        return s;
    char *copy = malloc(n);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n; i++)
        copy[i] = (unsigned char)b[i] < 0x80 && b[i] ? b[i] : '?';
    s = json_stringn(copy, n);
    free(copy);
    return s;
}

/* Writes a batch of results (writer thread): their rows and the endpoints'
 * health in one statement, then the messages to their actors in one
 * commit, so a result that reached its actor is on record. */
static void record_results(webhooks_t *w, json_t *rows, json_t *failed, json_t *ok,
                           envelope_t **envs, size_t nenv)
{
    const webhooks_config_t *cfg = &w->cfg;
    int err = 0;
    pg_conn_t *c = pg_acquire(cfg->pool, 10000, &err);
    char *rs = json_dumps(rows, JSON_COMPACT), *fs = json_dumps(failed, JSON_COMPACT),
         *os = json_dumps(ok, JSON_COMPACT);
    json_t *dis = NULL;
    if (c && rs && fs && os) {
        /* One statement for the whole batch: rows and health. */
        err = webhooks_db_record_results(
            c, rs, fs, os, cfg->disable_after_ms > 0 ? cfg->disable_after_ms : 5LL * 86400000,
            &dis);
        if (err)
            log_kv(LOG_ERROR, NULL, "cannot record webhook results",
                   (const char *const[]){"error", fenta_strerror(err), NULL});
    }
    pg_release(cfg->pool, &c);
    size_t k;
    json_t *d;
    json_array_foreach(dis, k, d)
    {
        const char *wid = json_string_value(json_object_get(d, "webhook_id"));
        const char *org = json_string_value(json_object_get(d, "org_id"));
        char eid[96];
        snprintf(eid, sizeof eid, "evt_disabled_%s_%lld", wid,
                 (long long)json_integer_value(json_object_get(d, "disabled_at")));
        json_t *data = json_pack("{ss sO sO}", "webhook_id", wid, "url", json_object_get(d, "url"),
                                 "reason", json_object_get(d, "reason"));
        webhooks_invalidate(w, org);
        log_kv(LOG_WARN, NULL, "webhook disabled after failing too long",
               (const char *const[]){"webhook_id", wid, "org_id", org, NULL});
        if (w->rt)
            webhooks_emit_now(w, org, eid, "webhook.disabled", data, NULL);
        json_decref(data);
    }
    json_decref(dis);
    if (nenv && w->rt) {
        int rc = runtime_send_many(w->rt, envs, nenv);
        if (rc)
            log_kv(LOG_WARN, NULL, "webhook results not recorded; their watchdogs will retry",
                   (const char *const[]){"error", fenta_strerror(rc), NULL});
    }
    for (size_t i = 0; envs && i < nenv; i++)
        envelope_destroy(&envs[i]);
    free(rs);
    free(fs);
    free(os);
}

/* The results of one turn of the client (its thread): rows and messages
 * are made here, and the writer thread records and sends them, so the
 * client's loop never waits for PostgreSQL or a commit. */
void webhooks__on_results(void *arg, const outbound_result_t *res, size_t n)
{
    webhooks_t *w = arg;
    const webhooks_config_t *cfg = &w->cfg;
    int nretry = cfg->nretry > 0 ? cfg->nretry : (int)(sizeof default_retry_ms / sizeof(int64_t));
    const int64_t *sched = cfg->nretry > 0 ? cfg->retry_ms : default_retry_ms;
    json_t *rows = json_array(), *failed = json_array(), *ok = json_array();
    envelope_t **envs = calloc(n, sizeof *envs);
    size_t nenv = 0;
    int64_t now = webhooks__now_ms();
    for (size_t i = 0; i < n; i++) {
        const outbound_result_t *r = &res[i];
        attempt_t *a = r->arg;
        webhooks__set_take(w, w->inflight, a->did, true);
        /* Abandoned at shutdown: the watchdog sends it again after the start. */
        if (r->outcome == OUTBOUND_CANCELLED)
            continue;
        bool good = r->outcome == OUTBOUND_OK;
        bool permanent = r->outcome == OUTBOUND_BLOCKED || r->outcome == OUTBOUND_BAD_URL;
        bool dead = !good && (permanent || a->attempt > nretry);
        int64_t delay = 0;
        if (!good && !dead) {
            delay = jittered(sched[a->attempt - 1]);
            if ((r->status == 429 || r->status == 503) && r->retry_after_ms >= 0)
                delay = r->retry_after_ms < 86400000 ? r->retry_after_ms : 86400000;
        }
        char why[400] = "";
        if (!good && r->status)
            snprintf(why, sizeof why, "HTTP %ld%s%s", r->status, r->error[0] ? ": " : "", r->error);
        else if (!good)
            snprintf(why, sizeof why, "%s", r->error[0] ? r->error : "failed");
        const char *status = good ? "succeeded" : dead ? "dead" : "retrying";
        metric_inc(good ? w->m_ok : dead ? w->m_dead : w->m_retry);
        metric_observe(w->m_latency, (double)r->latency_ms / 1000.0);
        json_t *row =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:o?, s:o?, s:I, s:s?, s:o?, s:i, s:b}",
                      "id", a->did, "webhook_id", a->wid, "org_id", a->org, "event_id", a->event_id,
                      "event_type", a->type, "status", status, "attempts", a->sends,
                      "response_status", r->status ? json_integer(r->status) : NULL,
                      "response_body", r->body_len ? body_text(r->body, r->body_len) : NULL,
                      "latency_ms", (json_int_t)r->latency_ms, "error", good ? NULL : why,
                      "next_at", good || dead ? NULL : json_integer(now + delay), "rev",
                      2 * a->sends + (good || dead), "delivered", good);
        json_array_append_new(rows, row);
        json_array_append_new(good ? ok : failed, json_string(a->wid));
        json_t *m = json_pack("{si sb sb sI ss}", "attempt", a->attempt, "ok", good, "dead", dead,
                              "delay", (json_int_t)delay, "why", why);
        char *ms = m ? json_dumps(m, JSON_COMPACT) : NULL;
        json_decref(m);
        char to[ENVELOPE_ADDR_MAX + 1];
        snprintf(to, sizeof to, "webhook.delivery/%s", a->did);
        if (envs && ms)
            envs[nenv] = envelope_new(to, NULL, "wh.result", a->did, ms, strlen(ms));
        if (envs && envs[nenv])
            nenv++;
        free(ms);
    }
    metric_set(w->m_pending, (double)outbound_pending(w->client));
    for (size_t i = 0; i < n; i++) {
        attempt_t *a = res[i].arg;
        free(a->event_id);
        free(a->type);
        free(a);
    }
    pthread_mutex_lock(&w->wlock);
    json_array_extend(w->rrows, rows);
    json_array_extend(w->rfailed, failed);
    json_array_extend(w->rok, ok);
    if (envs && nenv && vec_reserve(w->renvs, w->caprenvs, w->nrenvs + nenv) == 0) {
        memcpy(w->renvs + w->nrenvs, envs, nenv * sizeof *envs);
        w->nrenvs += nenv;
        nenv = 0;
    }
    pthread_cond_signal(&w->wcond);
    pthread_mutex_unlock(&w->wlock);
    /* Not queued (no memory): their watchdogs send them again. */
    for (size_t i = 0; envs && i < nenv; i++)
        envelope_destroy(&envs[i]);
    free(envs);
    json_decref(rows);
    json_decref(failed);
    json_decref(ok);
}
