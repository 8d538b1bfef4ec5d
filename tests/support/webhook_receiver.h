/* webhook_receiver.h - drives tests/support/webhook_receiver.mjs, a webhook
 * receiver that verifies Standard Webhooks deliveries with the
 * `standardwebhooks` npm package (as a real consumer would), records them and
 * answers as configured per endpoint (ok, fail, hang, retry_after). The
 * endpoints, config keys and record fields are documented at the top of the
 * .mjs file.
 *
 * Start and stop it inside a test (Criterion runs each test in its own
 * process): the receiver keeps a pipe from this process on its stdin and
 * exits when it closes, so a test that dies on an assertion leaves nothing
 * running. Every function asserts (cr_assert) instead of returning errors. */
#ifndef FENTA_TEST_WEBHOOK_RECEIVER_H
#define FENTA_TEST_WEBHOOK_RECEIVER_H
#include <jansson.h>
#include <stddef.h>

typedef struct receiver receiver_t;

/* Starts `node <src>/tests/support/webhook_receiver.mjs --port 0` on a free port
 * of 127.0.0.1 and waits for it to be ready; asserts on failure (saying to
 * run ops/setup when ops/node/node_modules/standardwebhooks is missing). */
receiver_t *receiver_start(void);
/* "http://127.0.0.1:PORT"; borrowed, valid until receiver_stop. */
const char *receiver_base(const receiver_t *r);
/* "http://127.0.0.1:PORT/hooks/<name>" written into buf (cap bytes);
 * returns buf. */
const char *receiver_url(const receiver_t *r, const char *name, char *buf, size_t cap);
/* PUT /_config/<name> with config_json (a JSON object's text): replaces the
 * endpoint's config and resets its fail counter; asserts 204. */
void receiver_config(receiver_t *r, const char *name, const char *config_json);
/* Creates, as who through the API, a webhook to endpoint name for types
 * (a JSON array's text), and configures the endpoint with its secret plus
 * extra (members of the config object, e.g. "\"mode\":\"fail\"", or
 * NULL); the webhook's id and secret into the buffers. Asserts. */
void receiver_hook(receiver_t *r, const json_t *who, const char *name, const char *types,
                   const char *extra, char id[64], char secret[80]);
/* GET /_log/<name>: the array of records in arrival order (the caller's). */
json_t *receiver_log(receiver_t *r, const char *name);
/* Polls the log until it has at least n records or seconds pass; returns the
 * log as it then is (the caller's; it may hold fewer than n records). */
json_t *receiver_wait(receiver_t *r, const char *name, size_t n, int seconds);
/* GET /_stats: {"<name>": {"received", "unique_ids", "duplicates"}} (the
 * caller's). */
json_t *receiver_stats(receiver_t *r);
/* Stops it (SIGTERM, then SIGKILL after 5 s), reaps it, frees; NULLs *r.
 * NULL (or *r NULL) is a no-op. */
void receiver_stop(receiver_t **r);

#endif
