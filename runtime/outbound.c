/* outbound.c - the outbound HTTP client (see outbound.h): a thread running
 * libcurl's multi interface, per-key FIFOs served round-robin, retries
 * waiting their turn, completions handed over in batches (or to the one
 * outbound_do caller waiting for each), and the public face. One request's
 * own life (its copy, options, callbacks, result) is outbound_transfer.c;
 * the address rule is outbound_address.c.
 *
 * Threads. Submitters only touch the inbox, the stopping flag and the
 * pending count, under c->lock; everything else (the key table, the ready
 * ring, the running and parked lists, the easy-handle pool, the batch)
 * belongs to the client's thread and is never locked. The loop takes the
 * whole inbox at once, so a burst of submits costs one wakeup. */
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/outbound_internal.h"
#include "runtime/vec.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_TOTAL 512
#define DEFAULT_MAX_PER_KEY 16
#define DEFAULT_CONNECT_MS 5000L
#define DEFAULT_TOTAL_MS 15000L
#define DEFAULT_BODY_KEPT 1024
#define DEFAULT_USER_AGENT "Fenta/1"
/* First size of the batch; it grows with the load. */
#define BATCH_START 64
/* The loop's longest sleep; curl shortens it to its own next timeout. */
#define POLL_MS 1000

/* --- the key table and the ready ring (loop thread) ----------------------------- */

static size_t key_hash(const char *s)
{
    size_t h = 14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static outbound__key_t *key_get(outbound_t *c, const char *name)
{
    size_t b = key_hash(name) & (c->nbuckets - 1);
    for (outbound__key_t *k = c->buckets[b]; k; k = k->hnext)
        if (strcmp(k->name, name) == 0)
            return k;
    if (c->nkeys >= c->nbuckets) { /* grow first, so chains stay short */
        size_t n = c->nbuckets * 2;
        outbound__key_t **nb = calloc(n, sizeof *nb);
        if (nb) {
            for (size_t i = 0; i < c->nbuckets; i++)
                for (outbound__key_t *k = c->buckets[i], *nx; k; k = nx) {
                    nx = k->hnext;
                    size_t j = key_hash(k->name) & (n - 1);
                    k->hnext = nb[j];
                    nb[j] = k;
                }
            free(c->buckets);
            c->buckets = nb;
            c->nbuckets = n;
            b = key_hash(name) & (n - 1);
        }
    }
    size_t len = strlen(name) + 1;
    outbound__key_t *k = calloc(1, sizeof *k + len);
    if (!k)
        return NULL;
    memcpy(k->name, name, len);
    k->hnext = c->buckets[b];
    c->buckets[b] = k;
    c->nkeys++;
    return k;
}

static void key_drop(outbound_t *c, outbound__key_t *k)
{
    outbound__key_t **pp = &c->buckets[key_hash(k->name) & (c->nbuckets - 1)];
    while (*pp != k)
        pp = &(*pp)->hnext;
    *pp = k->hnext;
    c->nkeys--;
    free(k);
}

static void ready_push(outbound_t *c, outbound__key_t *k)
{
    k->ready = true;
    k->rnext = NULL;
    if (c->ready_tail)
        c->ready_tail->rnext = k;
    else
        c->ready_head = k;
    c->ready_tail = k;
}

/* A transfer of k ended: its slot goes to its next waiting request, and a
 * key with nothing left is forgotten, so the table holds only live keys. */
static void key_release(outbound_t *c, outbound__key_t *k)
{
    k->running--;
    if (k->head && !k->ready && k->running < c->max_per_key)
        ready_push(c, k);
    else if (!k->head && !k->running)
        key_drop(c, k);
}
/* --- the batch -------------------------------------------------------------------- */

/* Gives an outbound_do caller its result: the body and headers move to it
 * (it frees them), and it is woken. Nothing of the waiter is touched after
 * its lock is released: it returns at once, and it lived on its stack. */
static void hand_over(outbound__req_t *q, const outbound_result_t *r)
{
    outbound__waiter_t *w = q->waiter;
    pthread_mutex_lock(&w->mu);
    *w->out = *r;
    w->out->arg = NULL;
    if (r->body == q->resp)
        q->resp = NULL;
    if (r->headers == q->hv)
        q->hv = NULL;
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Hands the batch to done (and each outbound_do result to its caller),
 * then frees its requests (their bodies were borrowed by the results). */
static void flush(outbound_t *c)
{
    if (!c->nres)
        return;
    size_t n = c->nres, m = 0;
    for (size_t i = 0; i < n; i++) {
        if (c->resq[i]->waiter)
            hand_over(c->resq[i], &c->res[i]);
        else if (m++ != i)
            c->res[m - 1] = c->res[i];
    }
    if (m)
        c->done(c->cb_arg, c->res, m);
    for (size_t i = 0; i < n; i++)
        outbound__req_free(c->resq[i]);
    c->nres = 0;
    pthread_mutex_lock(&c->lock);
    c->pending -= n;
    pthread_mutex_unlock(&c->lock);
}

/* A zeroed result for q in the batch. When the batch cannot grow, the
 * results so far are handed over first: a completion is never dropped (the
 * BATCH_START entries outbound_new made are always there for it). */
static outbound_result_t *slot(outbound_t *c, outbound__req_t *q, outbound_outcome_t outcome)
{
    if (vec_reserve(c->res, c->capres, c->nres + 1) != 0 ||
        vec_reserve(c->resq, c->capresq, c->nres + 1) != 0)
        flush(c);
    c->resq[c->nres] = q; /* q is in no other list by now */
    outbound_result_t *r = &c->res[c->nres++];
    memset(r, 0, sizeof *r);
    r->arg = q->arg;
    r->outcome = outcome;
    r->retry_after_ms = -1;
    r->attempts = q->attempts;
    return r;
}

/* --- the loop ----------------------------------------------------------------------- */

/* Places newly submitted requests in their keys' FIFOs, in submit order. */
static void take(outbound_t *c, outbound__req_t *in)
{
    char why[256];
    for (outbound__req_t *q = in, *nx; q; q = nx) {
        nx = q->next;
        q->next = NULL;
        const char *bad = outbound__url_problem(c->cu, q->url, why, sizeof why, &q->loopback_host);
        outbound__key_t *k = bad ? NULL : key_get(c, q->key);
        if (!k) {
            outbound_result_t *r = slot(c, q, bad ? OUTBOUND_BAD_URL : OUTBOUND_NOMEM);
            snprintf(r->error, sizeof r->error, "%s", bad ? bad : "out of memory queueing it");
            continue;
        }
        q->k = k;
        if (k->tail)
            k->tail->next = q;
        else
            k->head = q;
        k->tail = q;
        if (!k->ready && k->running < c->max_per_key)
            ready_push(c, k);
    }
}

static void start_failed(outbound_t *c, outbound__req_t *q)
{
    outbound_result_t *r = slot(c, q, OUTBOUND_NOMEM);
    snprintf(r->error, sizeof r->error, "out of memory starting the transfer");
    key_release(c, q->k);
}

/* Starts retries whose time has come, before new requests: they already
 * hold their key's slot. */
static void unpark(outbound_t *c)
{
    int64_t now = clock_mono_us();
    while (c->parked && c->parked->due_us <= now && c->nrunning < c->max_total) {
        outbound__req_t *q = c->parked;
        c->parked = q->next;
        q->next = NULL;
        outbound__req_reset(q);
        if (outbound__start(c, q) != 0)
            start_failed(c, q);
    }
}

/* Starts waiting requests while there is room, one per key per turn of the
 * ring, so no key can take every slot while others wait. */
static void start_ready(outbound_t *c)
{
    while (c->nrunning < c->max_total && c->ready_head) {
        outbound__key_t *k = c->ready_head;
        c->ready_head = k->rnext;
        if (!c->ready_head)
            c->ready_tail = NULL;
        k->ready = false;
        outbound__req_t *q = k->head;
        k->head = q->next;
        if (!k->head)
            k->tail = NULL;
        q->next = NULL;
        k->running++;
        if (k->head && k->running < c->max_per_key)
            ready_push(c, k);
        if (outbound__start(c, q) != 0)
            start_failed(c, q);
    }
}

/* Puts q aside until wait_ms from now, soonest first; it keeps its key's
 * slot, so the key's next requests do not overtake it. */
static void park(outbound_t *c, outbound__req_t *q, int64_t wait_ms)
{
    q->due_us = clock_mono_us() + wait_ms * 1000;
    outbound__req_t **pp = &c->parked;
    while (*pp && (*pp)->due_us <= q->due_us)
        pp = &(*pp)->next;
    q->next = *pp;
    *pp = q;
}

static void reap(outbound_t *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = m->data.result; /* m dies with remove_handle */
        char *p = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
        outbound__req_t *q = (outbound__req_t *)p;
        outbound_result_t t = {.arg = q->arg, .retry_after_ms = -1, .attempts = q->attempts};
        outbound__describe(q, rc, &t);
        int64_t wait = outbound__retry_wait(q, &t);
        outbound__stop(c, q);
        if (wait >= 0) {
            park(c, q, wait);
            continue;
        }
        *slot(c, q, t.outcome) = t;
        key_release(c, q->k);
    }
}

static void cancel(outbound_t *c, outbound__req_t *q)
{
    outbound_result_t *r = slot(c, q, OUTBOUND_CANCELLED);
    snprintf(r->error, sizeof r->error, "the client stopped before the request completed");
}

/* At stop: everything still waiting, running, parked or just submitted
 * completes as cancelled, in one last batch. */
static void cancel_all(outbound_t *c, outbound__req_t *in)
{
    for (size_t b = 0; b < c->nbuckets; b++)
        for (outbound__key_t *k = c->buckets[b]; k; k = k->hnext) {
            for (outbound__req_t *q = k->head, *nx; q; q = nx) {
                nx = q->next;
                cancel(c, q);
            }
            k->head = k->tail = NULL;
            k->ready = false;
        }
    c->ready_head = c->ready_tail = NULL;
    while (c->running) {
        outbound__req_t *q = c->running;
        cancel(c, q);
        outbound__stop(c, q);
        key_release(c, q->k);
    }
    for (outbound__req_t *q = c->parked, *nx; q; q = nx) {
        nx = q->next;
        cancel(c, q);
        key_release(c, q->k);
    }
    c->parked = NULL;
    for (outbound__req_t *q = in, *nx; q; q = nx) {
        nx = q->next;
        cancel(c, q);
    }
    flush(c);
}

/* How long the loop may sleep: until the first parked retry is due. */
static int poll_ms(outbound_t *c)
{
    if (!c->parked)
        return POLL_MS;
    int64_t ms = (c->parked->due_us - clock_mono_us() + 999) / 1000;
    return ms <= 0 ? 0 : ms < POLL_MS ? (int)ms : POLL_MS;
}

static void *loop(void *arg)
{
    outbound_t *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->lock);
        outbound__req_t *in = c->in_head;
        bool stop = c->stopping;
        c->in_head = c->in_tail = NULL;
        pthread_mutex_unlock(&c->lock);
        if (stop) {
            cancel_all(c, in);
            return NULL;
        }
        take(c, in);
        unpark(c);
        start_ready(c);
        int still;
        curl_multi_perform(c->multi, &still);
        reap(c);
        /* One batch per turn: what finished together is handed over
         * together, and the caller commits it at once. */
        flush(c);
        /* Freed slots are refilled before sleeping; curl gives a newly
         * added handle an immediate timeout, so the poll returns at once. */
        unpark(c);
        start_ready(c);
        curl_multi_poll(c->multi, NULL, 0, poll_ms(c), NULL);
    }
}

/* --- the public face ------------------------------------------------------------------ */

static void client_free(outbound_t *c)
{
    if (c->multi)
        curl_multi_cleanup(c->multi);
    for (int i = 0; i < c->npool; i++)
        curl_easy_cleanup(c->pool[i]);
    for (size_t b = 0; c->buckets && b < c->nbuckets; b++)
        for (outbound__key_t *k = c->buckets[b], *nx; k; k = nx) {
            nx = k->hnext;
            free(k);
        }
    curl_url_cleanup(c->cu);
    free(c->buckets);
    free(c->pool);
    free(c->res);
    free(c->resq);
    free(c->user_agent);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

outbound_t *outbound_new(const outbound_opts_t *o, outbound_done_fn done, void *cb_arg, int *err)
{
    outbound_opts_t d = {0};
    int e = 0;
    if (!o)
        o = &d;
    if (o->max_total < 0 || o->max_per_key < 0 || o->connect_timeout_ms < 0 ||
        o->total_timeout_ms < 0)
        e = FENTA_EINVAL;
    if (!e)
        e = outbound__curl_init();
    outbound_t *c = e ? NULL : calloc(1, sizeof *c);
    if (!e && !c)
        e = FENTA_ENOMEM;
    if (e) {
        if (err)
            *err = e;
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    c->max_total = o->max_total ? o->max_total : DEFAULT_MAX_TOTAL;
    c->max_per_key = o->max_per_key ? o->max_per_key : DEFAULT_MAX_PER_KEY;
    /* One key may never take more than a quarter of all slots, so a few
     * hanging endpoints cannot starve the others. */
    if (c->max_per_key > c->max_total / 4)
        c->max_per_key = c->max_total / 4 > 0 ? c->max_total / 4 : 1;
    c->allow_loopback = o->allow_loopback;
    c->allow_private = o->allow_private;
    c->allow_any_address = o->allow_any_address;
    c->proxy_from_env = o->proxy_from_env;
    c->connect_ms = o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_MS;
    c->total_ms = o->total_timeout_ms ? o->total_timeout_ms : DEFAULT_TOTAL_MS;
    c->body_kept = o->max_body_kept ? o->max_body_kept : DEFAULT_BODY_KEPT;
    c->done = done;
    c->cb_arg = cb_arg;
    c->nbuckets = 64;
    c->capres = c->capresq = BATCH_START;
    c->user_agent = strdup(o->user_agent ? o->user_agent : DEFAULT_USER_AGENT);
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    c->pool = calloc((size_t)c->max_total, sizeof *c->pool);
    c->res = calloc(c->capres, sizeof *c->res);
    c->resq = calloc(c->capres, sizeof *c->resq);
    c->cu = curl_url();
    c->multi = curl_multi_init();
    e = c->user_agent && c->buckets && c->pool && c->res && c->resq && c->cu && c->multi
            ? 0
            : FENTA_ENOMEM;
    if (!e) {
        /* Every transfer may hold a connection, and as many idle ones are
         * kept for the next requests to the same hosts. */
        curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->max_total);
        curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, (long)c->max_total);
        if (pthread_create(&c->thread, NULL, loop, c) != 0)
            e = FENTA_EUNAVAILABLE;
    }
    if (e) {
        client_free(c);
        if (err)
            *err = e;
        return NULL;
    }
    return c;
}

/* Queues the chain head..tail of n copies; all or none. */
static int enqueue(outbound_t *c, outbound__req_t *head, outbound__req_t *tail, size_t n)
{
    int rc = 0;
    pthread_mutex_lock(&c->lock);
    if (c->stopping) {
        rc = FENTA_ESTOPPED;
    } else {
        /* The loop takes the whole inbox at once: only the first request
         * of a burst needs to wake it. Woken under the lock, so destroy
         * cannot free the multi handle in between. */
        bool wake = !c->in_head;
        if (c->in_tail)
            c->in_tail->next = head;
        else
            c->in_head = head;
        c->in_tail = tail;
        c->pending += n;
        if (wake)
            curl_multi_wakeup(c->multi);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void free_chain(outbound__req_t *q)
{
    for (outbound__req_t *nx; q; q = nx) {
        nx = q->next;
        outbound__req_free(q);
    }
}

int outbound_submit_many(outbound_t *c, const outbound_request_t *r, size_t n)
{
    if (!c || (!r && n) || (!c->done && n))
        return FENTA_EINVAL;
    if (!n)
        return 0;
    /* Copies are made outside the lock, so submitters do not queue on it. */
    outbound__req_t *head = NULL, *tail = NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        outbound__req_t *q;
        rc = outbound__req_new(c, &r[i], &q);
        if (rc == 0 && tail)
            tail->next = q;
        else if (rc == 0)
            head = q;
        if (rc == 0)
            tail = q;
    }
    if (rc == 0)
        rc = enqueue(c, head, tail, n);
    if (rc)
        free_chain(head);
    return rc;
}

int outbound_submit(outbound_t *c, const outbound_request_t *r)
{
    return r ? outbound_submit_many(c, r, 1) : FENTA_EINVAL;
}

int outbound_do(outbound_t *c, const outbound_request_t *r, outbound_result_t *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    /* On the client's own thread the wait would never end. */
    if (!c || !r || !out || pthread_equal(pthread_self(), c->thread))
        return FENTA_EINVAL;
    outbound__waiter_t w = {.out = out};
    outbound__req_t *q;
    int rc = outbound__req_new(c, r, &q);
    if (rc)
        return rc;
    q->arg = NULL;
    q->waiter = &w;
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    rc = enqueue(c, q, q, 1);
    if (rc) {
        outbound__req_free(q);
    } else {
        /* No timeout of our own: the request's timeouts and retries bound
         * the wait, and destroy completes it as cancelled. */
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    return rc;
}

void outbound_result_free(outbound_result_t *r)
{
    if (!r)
        return;
    free((char *)r->body);
    free((outbound_header_t *)r->headers);
    memset(r, 0, sizeof *r);
}

const char *outbound_result_header(const outbound_result_t *r, const char *name)
{
    for (size_t i = 0; r && name && i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

size_t outbound_pending(outbound_t *c)
{
    if (!c)
        return 0;
    pthread_mutex_lock(&c->lock);
    size_t n = c->pending;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void outbound_destroy(outbound_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    outbound_t *c = *self_p;
    pthread_mutex_lock(&c->lock);
    c->stopping = true;
    curl_multi_wakeup(c->multi);
    pthread_mutex_unlock(&c->lock);
    /* The loop cancels what is left, through done, before it returns. */
    pthread_join(c->thread, NULL);
    client_free(c);
    *self_p = NULL;
}
