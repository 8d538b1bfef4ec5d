/* webhooks.c - webhook signing, what an organisation has (cached), the
 * fan-out and delivery actors, and the engine (see webhooks.h); the writer
 * thread and attempt results are in webhooks_results.c. */
#include "actors/webhooks/webhooks.h"
#include "runtime/name_uuid.h"
#include "actors/webhooks/webhooks_internal.h"
#include "runtime/crypto.h"
#include "runtime/fsutil.h"
#include "runtime/dlq.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/vec.h"
#include "storage/webhooks_db.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---- signing ------------------------------------------------------------------- */

int webhooks_new_secret(char out[64])
{
    unsigned char raw[24];
    if (crypto_random(raw, sizeof raw) != 0)
        return FENTA_EIO;
    memcpy(out, "whsec_", 6);
    return crypto_b64_encode(CRYPTO_B64_STD, raw, sizeof raw, out + 6, 64 - 6) < 0 ? FENTA_EIO : 0;
}

int webhooks_sign(const char *secret, const char *msg_id, int64_t ts, const void *body, size_t len,
                  char *out, size_t cap)
{
    if (strncmp(secret, "whsec_", 6) == 0)
        secret += 6;
    size_t sl = strlen(secret);
    if (sl == 0 || sl % 4 || sl > 256)
        return FENTA_EINVAL;
    uint8_t key[200];
    size_t kl = 0;
    if (crypto_b64_decode(CRYPTO_B64_STD, secret, sl, key, sizeof key, &kl) != 0)
        return FENTA_EINVAL;
    char head[160];
    int hl = snprintf(head, sizeof head, "%s.%lld.", msg_id, (long long)ts);
    if (hl < 0 || (size_t)hl >= sizeof head)
        return FENTA_EINVAL;
    unsigned char *msg = malloc((size_t)hl + len);
    if (!msg)
        return FENTA_ENOMEM;
    memcpy(msg, head, (size_t)hl);
    memcpy(msg + hl, body, len);
    uint8_t mac[CRYPTO_SHA256_LEN];
    bool ok = crypto_hmac_sha256(key, kl, msg, (size_t)hl + len, mac) == 0;
    free(msg);
    if (!ok || cap < 3 + CRYPTO_B64_LEN(sizeof mac) + 1)
        return FENTA_EINVAL;
    memcpy(out, "v1,", 3);
    crypto_b64_encode(CRYPTO_B64_STD, mac, sizeof mac, out + 3, cap - 3);
    return 0;
}

int webhooks_new_event_id(const char *prefix, char *out, size_t cap)
{
    unsigned char raw[12];
    if (crypto_random(raw, sizeof raw) != 0)
        return FENTA_EIO;
    int n = snprintf(out, cap, "%s", prefix);
    for (size_t i = 0; i < sizeof raw && n > 0 && (size_t)n < cap; i++)
        n += snprintf(out + n, cap - (size_t)n, "%02x", raw[i]);
    return n > 0 && (size_t)n < cap ? 0 : FENTA_EINVAL;
}

void webhooks_delivery_id(const char *event_id, const char *webhook_id, char id[37])
{
    char name[256];
    int n = snprintf(name, sizeof name, "fenta-delivery:%s:%s", event_id, webhook_id);
    name_uuid(name, (size_t)n < sizeof name ? (size_t)n : sizeof name - 1, id);
}

/* ---- what an organisation has ------------------------------------------------------ */

/* The org's webhooks (a new reference), from the cache or the database;
 * NULL with *err on a database failure. */
static json_t *endpoints(webhooks_t *w, const char *org, int *err)
{
    int64_t now = webhooks__now_ms();
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->ncache; i++)
        if (strcmp(w->cache[i].org, org) == 0 && now - w->cache[i].loaded_ms < CACHE_TTL_MS) {
            json_t *eps = json_incref(w->cache[i].eps);
            pthread_mutex_unlock(&w->lock);
            return eps;
        }
    pthread_mutex_unlock(&w->lock);
    pg_conn_t *c = pg_acquire(w->cfg.pool, 5000, err);
    if (!c)
        return NULL;
    /* Only the secrets still in force sign (storage/webhooks_db.h), so
     * rotation needs nothing to run at its expiry. */
    json_t *eps = NULL;
    *err = webhooks_db_endpoints(c, org, &eps);
    pg_release(w->cfg.pool, &c);
    if (*err)
        return NULL;
    pthread_mutex_lock(&w->lock);
    org_cache_t *slot = NULL;
    for (size_t i = 0; i < w->ncache && !slot; i++)
        if (strcmp(w->cache[i].org, org) == 0)
            slot = &w->cache[i];
    /* No room (out of memory): the endpoints are answered, just not cached. */
    if (!slot && vec_reserve(w->cache, w->capcache, w->ncache + 1) == 0) {
        slot = &w->cache[w->ncache++];
        snprintf(slot->org, sizeof slot->org, "%s", org);
        slot->eps = NULL;
    }
    if (slot) {
        json_decref(slot->eps);
        slot->eps = json_incref(eps);
        slot->loaded_ms = now;
    }
    pthread_mutex_unlock(&w->lock);
    return eps;
}

void webhooks_invalidate(webhooks_t *w, const char *org)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    for (size_t i = 0; i < w->ncache; i++)
        if (strcmp(w->cache[i].org, org) == 0)
            w->cache[i].loaded_ms = 0;
    pthread_mutex_unlock(&w->lock);
}

static const json_t *endpoint_in(const json_t *eps, const char *wid)
{
    size_t i;
    json_t *ep;
    json_array_foreach(eps, i, ep) if (strcmp(sget(ep, "id"), wid) == 0) return ep;
    return NULL;
}

static bool subscribed(const json_t *ep, const char *type)
{
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(ep, "types"), i, t)
    {
        const char *s = json_string_value(t);
        if (s && (strcmp(s, "*") == 0 || strcmp(s, type) == 0))
            return true;
    }
    return false;
}

bool webhooks_wanted(void *arg, const char *org, const char *type)
{
    webhooks_t *w = arg;
    int err = 0;
    json_t *eps = endpoints(w, org, &err);
    if (!eps)
        return true; /* unsure: let the fan-out decide (and retry) */
    bool want = false;
    size_t i;
    json_t *ep;
    json_array_foreach(eps, i, ep) if (json_is_true(json_object_get(ep, "enabled")) &&
                                       subscribed(ep, type)) want = true;
    json_decref(eps);
    return want;
}

/* ---- emitting ------------------------------------------------------------------------- */

/* The fan-out message for an event at ms (<= 0: now). */
static char *event_body(const char *event_id, const char *type, const json_t *data,
                        const char *only, int64_t ms)
{
    if (ms <= 0)
        ms = webhooks__now_ms();
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char ts[96];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    json_t *b = json_pack("{ss ss ss sO ss*}", "id", event_id, "type", type, "timestamp", ts,
                          "data", data ? data : json_object(), "only", only);
    char *out = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    return out;
}

int webhooks_emit(actor_ctx_t *ctx, const char *org, const char *event_id, const char *type,
                  const json_t *data, int64_t at_ms)
{
    char to[ENVELOPE_ADDR_MAX + 1];
    snprintf(to, sizeof to, "webhook.org/%s", org);
    char *b = event_body(event_id, type, data, NULL, at_ms);
    if (!b)
        return FENTA_ENOMEM;
    int rc = actor_spawn(ctx, to, NULL, NULL, 0);
    if (rc == 0)
        rc = actor_send(ctx, to, "webhook.event", b, strlen(b));
    free(b);
    return rc;
}

int webhooks_emit_now(webhooks_t *w, const char *org, const char *event_id, const char *type,
                      const json_t *data, const char *only)
{
    runtime_t *rt = w->rt;
    if (!rt)
        return FENTA_EUNAVAILABLE;
    char to[ENVELOPE_ADDR_MAX + 1];
    snprintf(to, sizeof to, "webhook.org/%s", org);
    if (!webhooks__set_take(w, w->fanouts, org, false)) {
        int rc = runtime_spawn(rt, to, NULL, NULL, 0);
        if (rc && rc != FENTA_EEXIST)
            return rc;
        webhooks__set_add(w, w->fanouts, org);
    }
    int rc;
    /* sent once, durably, from outside any actor: no replay rebuilds it */
    char *b = event_body(event_id, type, data, only, 0);
    if (!b)
        return FENTA_ENOMEM;
    rc = runtime_send(rt, to, "webhook.event", org, b, strlen(b));
    free(b);
    return rc;
}

/* ---- the fan-out ------------------------------------------------------------------------- */

/* Forgets the oldest half of the remembered subjects when there are too
 * many: their next events are then delivered without waiting. */
static void prune_order(json_t *last)
{
    if (json_object_size(last) <= ORDER_KEYS_MAX)
        return;
    json_int_t cut = 0;
    const char *k;
    json_t *v;
    json_int_t *ts = malloc(json_object_size(last) * sizeof *ts);
    size_t n = 0;
    json_object_foreach(last, k, v) if (ts) ts[n++] = json_integer_value(json_array_get(v, 1));
    for (size_t i = 0; ts && i < n; i++)
        cut += ts[i] / (json_int_t)n; /* the mean age splits them roughly in half */
    free(ts);
    void *tmp;
    json_object_foreach_safe(last, tmp, k, v) if (json_integer_value(json_array_get(v, 1)) <= cut)
        json_object_del(last, k);
}

static int org_message(actor_ctx_t *ctx, const envelope_t *msg)
{
    webhooks_t *w = actor_kind_user(ctx);
    const char *org = strchr(actor_self(ctx), '/') + 1;
    json_t *ev = json_loadb((const char *)msg->body, msg->body_len, 0, NULL);
    const char *eid = sget(ev, "id"), *type = sget(ev, "type"), *only = sget(ev, "only");
    if (!ev || !eid || !type) {
        json_decref(ev);
        return actor_fail(ctx, "malformed webhook event");
    }
    int err = 0;
    json_t *eps = endpoints(w, org, &err);
    if (!eps) {
        json_decref(ev);
        return actor_fail(ctx, "cannot read the webhooks of %s: %s", org, fenta_strerror(err));
    }
    const json_t *info = json_object_get(w->types, type);
    const char *ordered_by = sget(info, "ordered_by");
    const char *subject = ordered_by ? sget(json_object_get(ev, "data"), ordered_by) : NULL;
    bool final = json_is_true(json_object_get(info, "final"));
    size_t sl = 0;
    const char *st = actor_state(ctx, &sl);
    json_t *state = st && sl ? json_loadb(st, sl, 0, NULL) : NULL;
    if (!state)
        state = json_object();
    json_t *last = json_object_get(state, "last");
    if (!last)
        json_object_set_new(state, "last", last = json_object());
    bool changed = false;
    /* The body is fixed here, once: every attempt sends the same bytes. */
    json_t *doc = json_pack("{sO sO sO}", "type", json_object_get(ev, "type"), "timestamp",
                            json_object_get(ev, "timestamp"), "data", json_object_get(ev, "data"));
    char *body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    json_t *rows = json_array();
    int rc = body && rows ? 0 : FENTA_ENOMEM;
    size_t i;
    json_t *ep;
    json_array_foreach(eps, i, ep)
    {
        const char *wid = sget(ep, "id");
        if (rc || !wid)
            break;
        if (only ? strcmp(only, wid) != 0
                 : !json_is_true(json_object_get(ep, "enabled")) || !subscribed(ep, type))
            continue;
        char did[37], key[160], to[ENVELOPE_ADDR_MAX + 1];
        webhooks_delivery_id(eid, wid, did);
        const char *prev = NULL;
        if (subject) {
            snprintf(key, sizeof key, "%s|%s", wid, subject);
            prev = json_string_value(json_array_get(json_object_get(last, key), 0));
            prev = prev && strcmp(prev, did) != 0 ? prev : NULL;
        }
        json_t *ds = json_pack("{ss ss ss ss ss ss* ss si si sb}", "w", wid, "org", org, "ev", eid,
                               "type", type, "body", body, "prev", prev, "status", "new", "attempt",
                               0, "sends", 0, "ping", only != NULL);
        char *dss = ds ? json_dumps(ds, JSON_COMPACT) : NULL;
        json_decref(ds);
        snprintf(to, sizeof to, "webhook.delivery/%s", did);
        rc = dss ? actor_spawn(ctx, to, NULL, dss, strlen(dss)) : FENTA_ENOMEM;
        free(dss);
        if (rc == 0)
            rc = actor_send(ctx, to, "wh.start", NULL, 0);
        if (rc == 0 && subject) {
            if (final)
                json_object_del(last, key);
            else
                json_object_set_new(last, key,
                                    json_pack("[sI]", did, (json_int_t)webhooks__now_ms()));
            changed = true;
        }
        json_array_append_new(rows, json_pack("{ss ss ss ss ss}", "id", did, "webhook_id", wid,
                                              "org_id", org, "event_id", eid, "event_type", type));
    }
    /* The rows are a listing for the API, written behind: the actors are
     * what deliver, and a delivery's first result writes its row whole. */
    if (rc == 0 && json_array_size(rows))
        webhooks__queue_pending(w, rows);
    if (rc == 0 && changed) {
        prune_order(last);
        char *s = json_dumps(state, JSON_COMPACT);
        rc = s ? actor_set_state(ctx, s, strlen(s)) : FENTA_ENOMEM;
        free(s);
    }
    free(body);
    json_decref(rows);
    json_decref(state);
    json_decref(eps);
    json_decref(ev);
    if (rc)
        return actor_fail(ctx, "webhook fan-out of %s: %s", eid, fenta_strerror(rc));
    return 0;
}

/* ---- a delivery ------------------------------------------------------------------------- */

typedef struct {
    webhooks_t *w;
    actor_ctx_t *ctx;
    json_t *st; /* the state being changed */
} dx_t;

static bool terminal(const char *status)
{
    return strcmp(status, "succeeded") == 0 || strcmp(status, "dead") == 0 ||
           strcmp(status, "cancelled") == 0;
}

static int send_json(dx_t *x, const char *to, const char *type, json_t *body, int64_t delay)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s)
        return FENTA_ENOMEM;
    int rc = delay > 0 ? actor_send_after(x->ctx, to, type, s, strlen(s), delay)
                       : actor_send(x->ctx, to, type, s, strlen(s));
    free(s);
    return rc;
}

/* The delivery is over: whoever waits behind it goes now. */
/* The next event of the same subject may go once this one's first attempt
 * is over (whatever its outcome): events are sent in order, and a retrying
 * delivery does not hold back the ones after it for days. */
static int release(dx_t *x)
{
    json_object_set_new(x->st, "released", json_true());
    const char *waiter = sget(x->st, "waiter");
    if (!waiter)
        return 0;
    int rc = actor_send(x->ctx, waiter, "wh.go", NULL, 0);
    json_object_del(x->st, "waiter");
    return rc;
}

static int finish(dx_t *x, const char *status)
{
    json_object_set_new(x->st, "status", json_string(status));
    return release(x);
}

/* A final state reached without an attempt (webhook gone or disabled). */
static int settle_row(dx_t *x, const char *status, const char *why)
{
    int rc = 0;
    pg_conn_t *c = pg_acquire(x->w->cfg.pool, 5000, &rc);
    if (!c)
        return rc;
    char did[37];
    webhooks_delivery_id(sget(x->st, "ev"), sget(x->st, "w"), did);
    rc = webhooks_db_settle(c, did, status, why,
                            2 * (int)json_integer_value(json_object_get(x->st, "sends")) + 1);
    pg_release(x->w->cfg.pool, &c);
    return rc;
}

static int give_up(dx_t *x, const char *why)
{
    json_object_set_new(x->st, "error", json_string(why));
    int rc = actor_dead_letter(x->ctx, actor_self(x->ctx), "wh.redeliver", NULL, 0, why);
    if (rc == 0)
        rc = finish(x, "dead");
    return rc;
}

static int attempt(dx_t *x)
{
    webhooks_t *w = x->w;
    const char *org = sget(x->st, "org"), *wid = sget(x->st, "w");
    int err = 0;
    json_t *eps = endpoints(w, org, &err);
    if (!eps)
        return err;
    const json_t *ep = endpoint_in(eps, wid);
    int rc = 0;
    if (!ep) {
        rc = settle_row(x, "cancelled", "the webhook was deleted");
        if (rc == 0)
            rc = finish(x, "cancelled");
    } else if (!json_is_true(json_object_get(ep, "enabled")) &&
               !json_is_true(json_object_get(x->st, "ping"))) {
        rc = settle_row(x, "dead", "the webhook is disabled");
        if (rc == 0)
            rc = give_up(x, "the webhook is disabled");
    } else {
        int n = (int)json_integer_value(json_object_get(x->st, "attempt")) + 1;
        int sends = (int)json_integer_value(json_object_get(x->st, "sends")) + 1;
        const char *ev = sget(x->st, "ev"), *body = sget(x->st, "body");
        int64_t ts = webhooks__now_ms() / 1000;
        /* One signature per secret in force: a consumer holding either
         * side of a rotation verifies it. */
        char sigs[1024] = "", one[128];
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(ep, "secrets"), i, s)
        {
            if (webhooks_sign(json_string_value(s), ev, ts, body, strlen(body), one, sizeof one) ==
                    0 &&
                strlen(sigs) + strlen(one) + 2 < sizeof sigs) {
                if (sigs[0])
                    strcat(sigs, " ");
                strcat(sigs, one);
            }
        }
        char h_id[200], h_ts[64], h_sig[1100];
        snprintf(h_id, sizeof h_id, "webhook-id: %s", ev);
        snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", (long long)ts);
        snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sigs);
        const char *headers[] = {h_id, h_ts, h_sig, "Content-Type: application/json", NULL};
        attempt_t *a = calloc(1, sizeof *a);
        if (!a)
            rc = FENTA_ENOMEM;
        if (a) {
            webhooks_delivery_id(ev, wid, a->did);
            snprintf(a->wid, sizeof a->wid, "%s", wid);
            snprintf(a->org, sizeof a->org, "%s", org);
            a->event_id = strdup(ev);
            a->type = strdup(sget(x->st, "type"));
            a->attempt = n;
            a->sends = sends;
            rc = a->event_id && a->type ? 0 : FENTA_ENOMEM;
        }
        outbound_request_t req = {.key = wid,
                                  .url = sget(ep, "url"),
                                  .headers = headers,
                                  .body = body,
                                  .body_len = strlen(body),
                                  .arg = a};
        if (rc == 0 && !w->client)
            rc = FENTA_EUNAVAILABLE;
        if (rc == 0 && (rc = webhooks__set_add(w, w->inflight, a->did)) == 0 &&
            (rc = outbound_submit(w->client, &req)) != 0)
            webhooks__set_take(w, w->inflight, a->did, true);
        if (rc && a) {
            free(a->event_id);
            free(a->type);
            free(a);
        }
        if (rc == 0) {
            json_object_set_new(x->st, "attempt", json_integer(n));
            json_object_set_new(x->st, "sends", json_integer(sends));
            json_object_set_new(x->st, "status", json_string("sending"));
            long limit = w->cfg.timeout_ms > 0 ? w->cfg.timeout_ms : 15000;
            rc = send_json(x, actor_self(x->ctx), "wh.watchdog", json_pack("{si}", "attempt", n),
                           limit + WATCHDOG_SLACK_MS);
        }
    }
    json_decref(eps);
    return rc;
}

static int delivery_message(actor_ctx_t *ctx, const envelope_t *msg)
{
    webhooks_t *w = actor_kind_user(ctx);
    size_t sl = 0;
    const char *st = actor_state(ctx, &sl);
    dx_t x = {.w = w, .ctx = ctx, .st = st && sl ? json_loadb(st, sl, 0, NULL) : NULL};
    if (!x.st)
        return actor_fail(ctx, "a delivery without its state");
    json_t *b = msg->body_len ? json_loadb((const char *)msg->body, msg->body_len, 0, NULL) : NULL;
    const char *type = msg->type, *status = sget(x.st, "status");
    int cur = (int)json_integer_value(json_object_get(x.st, "attempt"));
    int their = (int)json_integer_value(json_object_get(b, "attempt"));
    char *before = json_dumps(x.st, JSON_COMPACT);
    int rc = 0;
    if (strcmp(type, "wh.start") == 0) {
        if (strcmp(status, "new") == 0) {
            const char *prev = sget(x.st, "prev");
            if (prev) {
                char to[ENVELOPE_ADDR_MAX + 1];
                snprintf(to, sizeof to, "webhook.delivery/%s", prev);
                json_object_set_new(x.st, "status", json_string("waiting"));
                rc = send_json(&x, to, "wh.after", json_pack("{ss}", "from", actor_self(ctx)), 0);
            } else {
                rc = attempt(&x);
            }
        }
    } else if (strcmp(type, "wh.after") == 0) {
        const char *from = sget(b, "from");
        if (from && (terminal(status) || json_is_true(json_object_get(x.st, "released"))))
            rc = actor_send(ctx, from, "wh.go", NULL, 0);
        else if (from)
            json_object_set_new(x.st, "waiter", json_string(from));
    } else if (strcmp(type, "wh.go") == 0) {
        if (strcmp(status, "waiting") == 0)
            rc = attempt(&x);
    } else if (strcmp(type, "wh.retry") == 0) {
        if (strcmp(status, "retrying") == 0 && their == cur)
            rc = attempt(&x);
    } else if (strcmp(type, "wh.resume") == 0) {
        /* After a restart: an attempt that was under way is lost with the
         * old process; one not started yet starts. */
        if (strcmp(status, "sending") == 0)
            rc = attempt(&x);
        else if (strcmp(status, "new") == 0 && !sget(x.st, "prev"))
            rc = attempt(&x);
    } else if (strcmp(type, "wh.watchdog") == 0) {
        /* Still in the client (a slow endpoint's queue): wait on. Not there:
         * the attempt was lost with a previous process; send it again. */
        if (strcmp(status, "sending") == 0 && their == cur) {
            char did[37];
            webhooks_delivery_id(sget(x.st, "ev"), sget(x.st, "w"), did);
            if (webhooks__set_take(w, w->inflight, did, false)) {
                long limit = w->cfg.timeout_ms > 0 ? w->cfg.timeout_ms : 15000;
                rc = send_json(&x, actor_self(ctx), "wh.watchdog",
                               json_pack("{si}", "attempt", cur), limit + WATCHDOG_SLACK_MS);
            } else {
                rc = attempt(&x);
            }
        }
    } else if (strcmp(type, "wh.result") == 0) {
        if (strcmp(status, "sending") == 0 && their == cur) {
            const char *why = sget(b, "why");
            json_object_set_new(x.st, "error", why ? json_string(why) : json_null());
            if (json_is_true(json_object_get(b, "ok")))
                rc = finish(&x, "succeeded");
            else if (json_is_true(json_object_get(b, "dead")))
                rc = give_up(&x, why ? why : "failed");
            else {
                json_object_set_new(x.st, "status", json_string("retrying"));
                rc = send_json(&x, actor_self(ctx), "wh.retry", json_pack("{si}", "attempt", cur),
                               json_integer_value(json_object_get(b, "delay")));
                if (rc == 0)
                    rc = release(&x);
            }
        }
    } else if (strcmp(type, "wh.redeliver") == 0) {
        /* From the start again, unless an attempt is under way or it still
         * waits for the one before it. */
        if (strcmp(status, "sending") != 0 && strcmp(status, "waiting") != 0 &&
            strcmp(status, "new") != 0) {
            json_object_set_new(x.st, "attempt", json_integer(0));
            rc = attempt(&x);
        }
    }
    char *after = rc == 0 ? json_dumps(x.st, JSON_COMPACT) : NULL;
    if (rc == 0 && after && (!before || strcmp(before, after) != 0))
        rc = actor_set_state(ctx, after, strlen(after));
    else if (rc == 0 && !after)
        rc = FENTA_ENOMEM;
    free(before);
    free(after);
    json_decref(b);
    json_decref(x.st);
    if (rc)
        return actor_fail(ctx, "%s: %s", type, fenta_strerror(rc));
    return 0;
}

/* ---- the engine ------------------------------------------------------------------------ */

webhooks_t *webhooks_new(const webhooks_config_t *cfg, char *errbuf, size_t errlen)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/webhook_events.json", fsutil_schemas_dir(cfg->schemas_dir));
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    if (!doc || !json_is_object(json_object_get(doc, "types"))) {
        snprintf(errbuf, errlen, "%s: %s", path, doc ? "no \"types\" object" : je.text);
        json_decref(doc);
        return NULL;
    }
    webhooks_t *w = calloc(1, sizeof *w);
    if (!w) {
        json_decref(doc);
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    w->cfg = *cfg;
    if (w->cfg.nretry < 0 || w->cfg.nretry > WEBHOOKS_MAX_RETRIES)
        w->cfg.nretry = 0;
    w->types = json_incref(json_object_get(doc, "types"));
    json_decref(doc);
    pthread_mutex_init(&w->lock, NULL);
    pthread_mutex_init(&w->wlock, NULL);
    pthread_cond_init(&w->wcond, NULL);
    w->wrows = json_array();
    w->rrows = json_array();
    w->rfailed = json_array();
    w->rok = json_array();
    const char *help = "Webhook delivery attempts by outcome";
    w->m_ok = metrics_counter("fenta_webhook_attempts_total", help, "outcome=\"succeeded\"");
    w->m_retry = metrics_counter("fenta_webhook_attempts_total", help, "outcome=\"retry\"");
    w->m_dead = metrics_counter("fenta_webhook_attempts_total", help, "outcome=\"dead\"");
    w->m_latency = metrics_histogram("fenta_webhook_attempt_seconds",
                                     "Webhook attempts from the POST to the answer", NULL, NULL, 0);
    w->m_pending = metrics_gauge("fenta_webhook_outbound_pending",
                                 "Webhook requests in flight or waiting for their endpoint", NULL);
    w->org_beh = (behaviour_t){.kind = "webhook.org", .on_message = org_message, .user = w};
    w->del_beh =
        (behaviour_t){.kind = "webhook.delivery", .on_message = delivery_message, .user = w};
    return w;
}

void webhooks_stop(webhooks_t *w)
{
    if (!w)
        return;
    outbound_destroy(&w->client);
    if (w->writer_started) {
        pthread_mutex_lock(&w->wlock);
        w->writer_stop = true; /* it writes what is queued, then ends */
        pthread_cond_signal(&w->wcond);
        pthread_mutex_unlock(&w->wlock);
        pthread_join(w->writer, NULL);
        w->writer_started = false;
    }
}

void webhooks_destroy(webhooks_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    webhooks_t *w = *self_p;
    webhooks_stop(w);
    json_decref(w->wrows);
    json_decref(w->rrows);
    json_decref(w->rfailed);
    json_decref(w->rok);
    for (size_t i = 0; i < w->nrenvs; i++)
        envelope_destroy(&w->renvs[i]);
    free(w->renvs);
    for (size_t i = 0; i < INFLIGHT_BUCKETS; i++) {
        while (w->inflight[i]) {
            struct setnode *n = w->inflight[i];
            w->inflight[i] = n->next;
            free(n);
        }
        while (w->fanouts[i]) {
            struct setnode *n = w->fanouts[i];
            w->fanouts[i] = n->next;
            free(n);
        }
    }
    pthread_cond_destroy(&w->wcond);
    pthread_mutex_destroy(&w->wlock);
    for (size_t i = 0; i < w->ncache; i++)
        json_decref(w->cache[i].eps);
    free(w->cache);
    json_decref(w->types);
    pthread_mutex_destroy(&w->lock);
    free(w);
    *self_p = NULL;
}

int webhooks_register(webhooks_t *w, runtime_t *rt)
{
    int rc = runtime_register(rt, &w->org_beh);
    return rc ? rc : runtime_register(rt, &w->del_beh);
}

int webhooks_start(webhooks_t *w, runtime_t *rt)
{
    w->rt = rt;
    int err = 0;
    outbound_opts_t o = {.max_per_key = w->cfg.max_per_endpoint,
                         .allow_loopback = w->cfg.allow_loopback,
                         .allow_private = w->cfg.allow_private,
                         .connect_timeout_ms = w->cfg.connect_timeout_ms,
                         .total_timeout_ms = w->cfg.timeout_ms,
                         .user_agent = "Fenta-Webhooks/1"};
    w->client = outbound_new(&o, webhooks__on_results, w, &err);
    if (!w->client)
        return err ? err : FENTA_ENOMEM;
    if (pthread_create(&w->writer, NULL, webhooks__writer_main, w) != 0)
        return FENTA_ENOMEM;
    w->writer_started = true;
    return 0;
}

const json_t *webhooks_event_types(const webhooks_t *w)
{
    return w->types;
}

int webhooks_check_url(const webhooks_t *w, const char *url, char *why, size_t cap)
{
    const char *rest = strncmp(url, "https://", 8) == 0  ? url + 8
                       : strncmp(url, "http://", 7) == 0 ? url + 7
                                                         : NULL;
    if (!rest) {
        snprintf(why, cap, "url must start with http:// or https://");
        return FENTA_EINVAL;
    }
    size_t hl = strcspn(rest, "/?#");
    char host[300];
    if (hl == 0 || hl >= sizeof host || strlen(url) > 2000) {
        snprintf(why, cap, "url has no host, or is too long");
        return FENTA_EINVAL;
    }
    memcpy(host, rest, hl);
    host[hl] = 0;
    if (strchr(host, '@')) {
        snprintf(why, cap, "url must not carry credentials");
        return FENTA_EINVAL;
    }
    /* The host without its port ([v6]:port or name:port). */
    char *h = host;
    if (*h == '[') {
        h++;
        char *end = strchr(h, ']');
        if (!end) {
            snprintf(why, cap, "url has an unterminated IPv6 address");
            return FENTA_EINVAL;
        }
        *end = 0;
    } else {
        char *colon = strchr(h, ':');
        if (colon)
            *colon = 0;
    }
    unsigned char buf[16];
    if (inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1)
        return outbound_check_address(h, w->cfg.allow_loopback, w->cfg.allow_private, why, cap);
    return 0;
}

int webhooks_redeliver(runtime_t *rt, const char *delivery_id)
{
    char to[ENVELOPE_ADDR_MAX + 1];
    snprintf(to, sizeof to, "webhook.delivery/%s", delivery_id);
    void *st = NULL;
    size_t len = 0;
    int rc = runtime_actor_state(rt, to, &st, &len);
    free(st);
    if (rc)
        return rc;
    size_t dropped = 0;
    dlq_drop_where(rt, &(dlq_filter_t){.to_prefix = to, .type = "wh.redeliver"}, &dropped);
    return runtime_send(rt, to, "wh.redeliver", delivery_id, NULL, 0);
}

int webhooks_recover(webhooks_t *w, runtime_t *rt, int *resumed)
{
    if (resumed)
        *resumed = 0;
    int err = 0;
    pg_conn_t *c = pg_acquire(w->cfg.pool, 10000, &err);
    if (!c)
        return err;
    /* Pending rows never had a result: their attempt was in flight, or not
     * begun, when the node stopped. Retrying ones have durable timers. */
    json_t *ids = NULL;
    err = webhooks_db_pending_ids(c, &ids);
    pg_release(w->cfg.pool, &c);
    if (err)
        return err;
    for (size_t i = 0; i < json_array_size(ids); i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        char to[ENVELOPE_ADDR_MAX + 1];
        snprintf(to, sizeof to, "webhook.delivery/%s", id);
        void *st = NULL;
        size_t len = 0;
        if (runtime_actor_state(rt, to, &st, &len) != 0)
            continue; /* another node's */
        free(st);
        int rc = runtime_send(rt, to, "wh.resume", id, NULL, 0);
        if (rc) {
            err = rc;
            break;
        }
        if (resumed)
            (*resumed)++;
    }
    json_decref(ids);
    return err;
}
