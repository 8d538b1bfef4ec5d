/* outbound.h - the one outbound HTTP client.
 *
 * An asynchronous HTTP/1.1 POST client running on its own thread (libcurl's
 * multi interface): callers submit requests from any thread and never block
 * on the network; completions come back in batches through one callback on
 * the client's thread, so a caller can write a whole batch in one statement
 * and one commit. Connections are kept alive and shared by all requests.
 *
 * Safety. Redirects are never followed, only http and https are spoken, no
 * proxy is taken from the environment, and every address is checked after
 * DNS, on the socket actually opened: link-local (cloud metadata),
 * multicast, broadcast and "this network" addresses are always refused;
 * loopback and private ranges only unless the options allow them.
 *
 * Fairness. Each request names a key (its endpoint): at most max_per_key
 * requests of one key are in flight, the rest wait in that key's FIFO, and
 * waiting keys are served round-robin, so an endpoint that hangs holds up
 * only its own requests. Requests of one key start in submit order.
 *
 * This file and its .c are the only ones that see libcurl for webhooks;
 * nothing here carries a curl type. */
#ifndef FENTA_OUTBOUND_H
#define FENTA_OUTBOUND_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct outbound outbound_t;

typedef struct {
    int max_total;           /* concurrent transfers in all; 0 = 512 */
    int max_per_key;         /* concurrent transfers per key; 0 = 16; capped at max_total / 4 */
    bool allow_loopback;     /* permit 127.0.0.0/8 and ::1 */
    bool allow_private;      /* permit 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7 */
    long connect_timeout_ms; /* for requests that give 0; 0 = 5000 */
    long total_timeout_ms;   /* for requests that give 0; 0 = 15000 */
    size_t max_body_kept;    /* bytes of a response body kept; 0 = 1024 */
    const char *user_agent;  /* copied; NULL = "Fenta-Webhooks/1" */
} outbound_opts_t;

typedef struct {
    const char *key;            /* concurrency key (the endpoint's id); copied */
    const char *url;            /* http:// or https://; copied */
    const char *const *headers; /* "Name: value" lines, NULL-terminated or NULL; copied */
    const void *body;           /* the POST body; copied */
    size_t body_len;            /* its length in bytes */
    long connect_timeout_ms;    /* 0 = the client's */
    long total_timeout_ms;      /* 0 = the client's */
    void *arg;                  /* handed back in the result */
} outbound_request_t;

typedef enum {
    OUTBOUND_OK,         /* a 2xx answer */
    OUTBOUND_HTTP_ERROR, /* any other status, 3xx included (redirects are not followed) */
    OUTBOUND_TIMEOUT,    /* the connect or the total timeout passed */
    OUTBOUND_CONNECT,    /* DNS failure, refused, reset, TLS error... */
    OUTBOUND_BLOCKED,    /* every address tried was refused by the safety rules; nothing sent */
    OUTBOUND_BAD_URL,    /* not http(s), or unparsable */
    OUTBOUND_CANCELLED,  /* the client was destroyed first */
} outbound_outcome_t;

typedef struct {
    void *arg;                  /* the request's */
    outbound_outcome_t outcome; /* what happened */
    long status;                /* the HTTP status, 0 when none came */
    int64_t retry_after_ms;     /* Retry-After of a 429 or 503 (seconds or HTTP-date), else -1 */
    const char *body;           /* up to max_body_kept bytes of the answer; borrowed */
    size_t body_len;            /* bytes in body */
    char error[256];            /* a sentence when outcome != OUTBOUND_OK, else "" */
    int64_t latency_ms;         /* from the start of the transfer to its end */
    char ip[64];                /* the address connected to, "" when none */
} outbound_result_t;

/* Called with the transfers that completed in one turn of the client's loop
 * (n >= 1); results and their bodies are borrowed for the call. It runs on
 * the client's thread; it may call outbound_submit. */
typedef void (*outbound_done_fn)(void *cb_arg, const outbound_result_t *results, size_t n);

/* A client and its thread, or NULL with *err (when err is not NULL) set to
 * FENTA_EINVAL (negative options, done NULL), FENTA_ENOMEM or
 * FENTA_EUNAVAILABLE (libcurl or the thread failed to start). */
outbound_t *outbound_new(const outbound_opts_t *o, outbound_done_fn done, void *cb_arg, int *err);

/* Queues a request; everything in it is copied. 0, or FENTA_EINVAL (no URL
 * or key, a body pointer missing, a header line with CR or LF or no colon),
 * FENTA_ENOMEM, or FENTA_ESTOPPED once destroy has begun; a request that was
 * not queued never reaches done. A bad URL is not an error here: it
 * completes as OUTBOUND_BAD_URL. Thread-safe. */
int outbound_submit(outbound_t *c, const outbound_request_t *r);

/* Queues n requests at once (one lock, one wakeup): all or none. */
int outbound_submit_many(outbound_t *c, const outbound_request_t *r, size_t n);

/* Requests submitted whose done has not returned yet (in flight or waiting). */
size_t outbound_pending(outbound_t *c);

/* Stops the client: every request not yet completed completes as
 * OUTBOUND_CANCELLED through done, on the client's thread, before this
 * returns (so done must not wait for a lock the destroying thread holds).
 * Then frees everything and NULLs *self_p; NULL or *self_p NULL is a no-op.
 * Not to be called from done. */
void outbound_destroy(outbound_t **self_p);

/* The outbound safety rule alone: 0 if the numeric IPv4 or IPv6 address ip
 * may be contacted; FENTA_EDENIED with why[] naming the range otherwise;
 * FENTA_EINVAL when ip is not a numeric address. An IPv6 address that
 * carries an IPv4 one (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d)
 * is judged as that IPv4 address. */
int outbound_check_address(const char *ip, bool allow_loopback, bool allow_private, char *why,
                           size_t cap);

#endif
