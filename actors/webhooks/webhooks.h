/* webhooks.h - webhook deliveries as actors, signed the Standard Webhooks
 * way (https://www.standardwebhooks.com).
 *
 * Flow. A producer (the job actor, the schedule actor, this module itself)
 * calls webhooks_emit inside its handler: the event goes, with that
 * handler's ack, to the organisation's fan-out actor "webhook.org/<org>".
 * The fan-out finds the organisation's enabled webhooks subscribed to the
 * event's type (schemas/webhook_events.json declares the types), records a
 * pending row per webhook in webhook_deliveries and spawns one delivery
 * actor "webhook.delivery/<delivery id>" per webhook. The delivery id is
 * derived from the event id and the webhook id, so a replayed fan-out
 * spawns nothing twice, and the event id is the webhook-id header a
 * consumer deduplicates by.
 *
 * Order. Events of one subject (the event type's "ordered_by" field, e.g.
 * a job's id) are sent to one endpoint in the order they were emitted: a
 * delivery's first attempt waits until the previous delivery of the same
 * subject to that endpoint has had its first attempt answered (or ended).
 * Retries do not hold later events back: a consumer that sees a retried
 * event after a later one orders them by the event's timestamp.
 *
 * Attempts. A delivery signs its body with every secret of the webhook in
 * force (the new and the old during a rotation's overlap) and hands the
 * POST to the outbound client (runtime/outbound.h), which runs it on
 * its own thread with connect and total timeouts, no redirects, and the
 * address checked after DNS; an endpoint's requests never hold up
 * another's. Results come back in batches: their rows are written in one
 * statement, then they reach their actors in one commit. 2xx is success;
 * anything else is retried after the configured schedule (with jitter),
 * or after Retry-After on 429 and 503; after the last attempt, or at once
 * for an address that may not be contacted, the delivery goes to the
 * runtime's dead-letter queue (replaying it, or POST .../redeliver, starts
 * it again). A watchdog timer per attempt restarts an attempt whose result
 * was lost in a crash.
 *
 * Health. The first failure after a success sets the webhook's
 * failing_since; a success clears it. A webhook failing for longer than
 * disable_after_ms is disabled (enabled false, disabled_reason) and the
 * organisation gets a "webhook.disabled" event. */
#ifndef FENTA_WEBHOOKS_H
#define FENTA_WEBHOOKS_H
#include "runtime/runtime.h"
#include "storage/pg.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct webhooks webhooks_t;

#define WEBHOOKS_MAX_RETRIES 32

typedef struct {
    pg_pool_t *pool;         /* the system of record (borrowed) */
    const char *schemas_dir; /* reads webhook_events.json there; NULL = the default */
    /* Delays before retry 1, 2, ...; the delivery is dead after
     * nretry + 1 attempts. nretry 0 = 5 s, 30 s, 2 min, 10 min, 1 h, 3 h,
     * 6 h, 12 h, 24 h. Each delay is jittered by +-10%. */
    int64_t retry_ms[WEBHOOKS_MAX_RETRIES];
    int nretry;
    long connect_timeout_ms;  /* 0 = 5000 */
    long timeout_ms;          /* the whole request; 0 = 15000 */
    bool allow_loopback;      /* deliveries to 127.0.0.0/8 and ::1 (tests, development) */
    bool allow_private;       /* deliveries to private networks */
    int64_t disable_after_ms; /* disable a webhook failing this long; 0 = 5 days */
    int max_per_endpoint;     /* concurrent requests per endpoint; 0 = 16 */
} webhooks_config_t;

/* The engine (settings copied, event types loaded), or NULL with errbuf
 * saying why. */
webhooks_t *webhooks_new(const webhooks_config_t *cfg, char *errbuf, size_t errlen);
/* Stops the outbound client (requests in flight are abandoned: their
 * watchdogs retry them after a restart) and the result writer (what it has
 * queued is written first). The engine's behaviours stay valid, so a
 * runtime holding webhook actors can be destroyed after this and before
 * webhooks_destroy. Idempotent; accepts NULL. */
void webhooks_stop(webhooks_t *w);
/* webhooks_stop, then frees; NULLs *self_p. */
void webhooks_destroy(webhooks_t **self_p);
/* Registers the kinds "webhook.org" and "webhook.delivery"; before
 * runtime_start. */
int webhooks_register(webhooks_t *w, runtime_t *rt);
/* Starts the outbound client; after runtime_start (results are sent to
 * actors). */
int webhooks_start(webhooks_t *w, runtime_t *rt);

/* After runtime_start: resumes this node's deliveries that had no result
 * yet (their attempt died with the previous process) at once, rather than
 * at their watchdog. *resumed (may be NULL) counts them. */
int webhooks_recover(webhooks_t *w, runtime_t *rt, int *resumed);

/* Emits an event to org's webhooks with the ack of the message ctx is
 * handling. The event's body ({"type","timestamp","data"}) is what every
 * attempt sends, and a crash may replay the handler after a delivery
 * already went out: so when the handler runs again, event_id must be the
 * same (derive it from what the event is about), and so must data and
 * at_ms, the event's time in ms since the epoch (take it from a stored
 * fact, e.g. the created_at of the row that records the event, never the
 * clock; <= 0 = now, for events a replay cannot rebuild). data is
 * borrowed. */
int webhooks_emit(actor_ctx_t *ctx, const char *org_id, const char *event_id, const char *type,
                  const json_t *data, int64_t at_ms);
/* Whether any enabled webhook of org subscribes to type (arg is the
 * webhooks_t; from what the fan-out caches, at most a second old): lets a
 * producer skip emitting events nobody wants. True when unsure. */
bool webhooks_wanted(void *arg, const char *org_id, const char *type);
/* The same from outside any actor, after webhooks_start (durable when it
 * returns 0); only, when
 * not NULL, sends it to that one webhook whatever its subscriptions (a
 * test ping). */
int webhooks_emit_now(webhooks_t *w, const char *org_id, const char *event_id, const char *type,
                      const json_t *data, const char *only);

/* The declared event types: {"job.succeeded": {"description", ...}, ...}
 * (borrowed). */
const json_t *webhooks_event_types(const webhooks_t *w);
/* Checks a webhook URL for the API: http or https, a host, and no literal
 * address the outbound rules refuse (names are checked after DNS, at each
 * delivery). 0 or FENTA_EINVAL with why. */
int webhooks_check_url(const webhooks_t *w, const char *url, char *why, size_t cap);
/* Forgets what the fan-out cached of org's webhooks (after a change). */
void webhooks_invalidate(webhooks_t *w, const char *org_id);

/* A new signing secret, "whsec_" and the base64 of 24 random bytes. */
int webhooks_new_secret(char out[64]);
/* The signature of one message under one secret: "v1," and the base64 of
 * HMAC-SHA256(key, "<msg_id>.<timestamp>.<body>"), where key is the
 * base64-decoded part of secret after "whsec_". FENTA_EINVAL for a secret
 * that does not decode. */
int webhooks_sign(const char *secret, const char *msg_id, int64_t timestamp, const void *body,
                  size_t body_len, char *out, size_t cap);
/* A random event id, prefix and 24 hex digits, into out; for events that
 * are about nothing that has an id of its own (a test ping). */
int webhooks_new_event_id(const char *prefix, char *out, size_t cap);
/* The delivery id of event_id to webhook_id (a name-based UUID) into id[37]. */
void webhooks_delivery_id(const char *event_id, const char *webhook_id, char id[37]);
/* Starts delivery_id again from its first attempt (after it died, or to
 * send it once more); drops its dead letter. FENTA_ENOTFOUND when this
 * node has no such delivery. */
int webhooks_redeliver(runtime_t *rt, const char *delivery_id);

#endif
