/* outbound.h - the one outbound HTTP client: every request Fenta sends to
 * another server goes through here (webhook deliveries and Kokoro today; the
 * LLM, stock and generation providers and the S3 object store next).
 *
 * An asynchronous HTTP/1.1 client running on its own thread (libcurl's
 * multi interface): callers submit requests from any thread and never block
 * on the network; completions come back in batches through one callback on
 * the client's thread, so a caller can write a whole batch in one statement
 * and one commit. A caller that runs on a worker thread of its own (a
 * render stage, a provider call) may instead send one request and wait for
 * it (outbound_do). Connections are kept alive and shared by all requests.
 * Any method (GET, HEAD, POST, PUT, DELETE, PATCH...); a request body from
 * memory or read piece by piece from the caller (an upload from a file);
 * the answer kept in memory up to a cap, or handed to the caller piece by
 * piece (a download to a file); response headers the caller names.
 *
 * Safety. Redirects are never followed, only http and https are spoken, no
 * proxy is taken from the environment, and every address is checked after
 * DNS, on the socket actually opened: link-local (cloud metadata),
 * multicast, broadcast and "this network" addresses are always refused;
 * loopback and private ranges only unless the options allow them. A client
 * for URLs the operator configured (not a user) may turn the rule off and
 * use the environment's proxy (allow_any_address, proxy_from_env).
 *
 * Fairness. Each request names a key (its endpoint, or its host): at most
 * max_per_key requests of one key are in flight, the rest wait in that
 * key's FIFO, and waiting keys are served round-robin, so an endpoint that
 * hangs holds up only its own requests. Requests of one key start in submit
 * order.
 *
 * Timeouts. Every request has a connect timeout (DNS and TCP/TLS) and a
 * total one, its own or the client's; nothing waits longer.
 *
 * Retries. Off by default: a caller with its own schedule (webhooks, whose
 * retries are durable actor timers) gets the first answer, with
 * Retry-After parsed. A request with max_retries > 0 is sent again, on the
 * client's thread, after a 429 or 503 (after its Retry-After, when it
 * gives one within retry_max_wait_ms) or a failed connection, with
 * exponential backoff and full jitter, only when sending it twice is safe:
 * GET, HEAD, PUT, DELETE, OPTIONS, or a request marked idempotent (a POST
 * with an idempotency key). A retrying request keeps its key's slot, so a
 * host that asked to slow down is not sent the key's next requests
 * meanwhile.
 *
 * runtime/outbound*.c are the only files that include libcurl (ops/check-layers
 * enforces it); nothing here carries a curl type. */
#ifndef FENTA_OUTBOUND_H
#define FENTA_OUTBOUND_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct outbound outbound_t;

typedef struct {
    int max_total;           /* concurrent transfers in all; 0 = 512 */
    int max_per_key;         /* concurrent transfers per key; 0 = 16; capped at max_total / 4 */
    bool allow_loopback;     /* permit 127.0.0.0/8 and ::1 */
    bool allow_private;      /* permit 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7 */
    bool allow_any_address;  /* no address rule at all: only for URLs from the operator's
                                configuration (Kokoro), never for a URL a user gave */
    bool proxy_from_env;     /* take http_proxy, https_proxy, no_proxy from the environment,
                                except for loopback hosts; off = never a proxy */
    long connect_timeout_ms; /* for requests that give 0; 0 = 5000 */
    long total_timeout_ms;   /* for requests that give 0; 0 = 15000 */
    size_t max_body_kept;    /* bytes of a response body kept, for requests that give 0;
                                0 = 1024 */
    const char *user_agent;  /* copied; NULL = "Fenta/1" */
} outbound_opts_t;

/* A streamed request body: up to cap bytes of it from offset on, into buf.
 * Returns the bytes written (0 only at the end), or a negative number to
 * stop the transfer (OUTBOUND_ABORTED). Offsets start at 0 and grow, but a
 * retry or a resend on a fresh connection starts again from 0, so read at
 * the offset given (pread). Called on the client's thread; keep it short. */
typedef ssize_t (*outbound_read_fn)(void *arg, int64_t offset, void *buf, size_t cap);

/* A piece of a 2xx answer's body, for a caller that keeps it itself (a
 * download to a file). Returns 0, or non-zero to stop the transfer
 * (OUTBOUND_ABORTED). Called on the client's thread; keep it short. */
typedef int (*outbound_write_fn)(void *arg, const void *data, size_t len);

typedef struct {
    const char *key;                 /* fairness key (the endpoint's id, the host); copied */
    const char *method;              /* "GET", "POST", "PUT", "DELETE", "HEAD"...; copied;
                                        NULL = POST with a body (or body_read), else GET */
    const char *url;                 /* http:// or https://; copied */
    const char *const *headers;      /* "Name: value" lines, NULL-terminated or NULL; copied. A
                                        body without Content-Type goes as application/json */
    const void *body;                /* the request body from memory; copied; NULL = none */
    size_t body_len;                 /* its length in bytes */
    outbound_read_fn body_read;      /* or the body read piece by piece (body NULL); S3 uploads */
    void *body_arg;                  /* its argument */
    int64_t body_size;               /* body_read's total bytes, or -1 = unknown (chunked) */
    long connect_timeout_ms;         /* 0 = the client's */
    long total_timeout_ms;           /* per attempt; 0 = the client's */
    size_t max_body;                 /* bytes of the answer kept; 0 = the client's max_body_kept */
    bool whole_body;                 /* an answer over max_body fails as OUTBOUND_TOO_BIG
                                        instead of being cut (and the transfer stops there) */
    outbound_write_fn body_write;    /* a 2xx answer's body goes here instead of memory */
    void *write_arg;                 /* its argument */
    const char *const *want_headers; /* response header names to return, NULL-terminated;
                                        copied (Retry-After is always read on 429/503) */
    int max_retries;                 /* further attempts after a retryable failure; 0 = none */
    bool idempotent;                 /* safe to send twice although POST or PATCH */
    int64_t retry_base_ms;           /* first backoff ceiling, doubling; 0 = 500 */
    int64_t retry_max_wait_ms;       /* longest wait before a retry; a longer Retry-After ends
                                        the retries with that answer; 0 = 30000 */
    const char *aws_sigv4;           /* sign with AWS Signature V4 (libcurl's CURLOPT_AWS_SIGV4):
                                        "aws:amz:REGION:SERVICE", e.g. "aws:amz:us-east-1:s3";
                                        copied; NULL = unsigned. S3 calls made by the server */
    const char *aws_key_id;          /* the access key id for aws_sigv4; copied */
    const char *aws_secret;          /* and its secret; copied, wiped when the request ends */
    void *arg;                       /* handed back in the result */
} outbound_request_t;

typedef enum {
    OUTBOUND_OK,         /* a 2xx answer */
    OUTBOUND_HTTP_ERROR, /* any other status, 3xx included (redirects are not followed) */
    OUTBOUND_TIMEOUT,    /* the connect or the total timeout passed */
    OUTBOUND_CONNECT,    /* DNS failure, refused, reset, TLS error... */
    OUTBOUND_BLOCKED,    /* every address tried was refused by the safety rules; nothing sent */
    OUTBOUND_BAD_URL,    /* not http(s), or unparsable */
    OUTBOUND_CANCELLED,  /* the client was destroyed first */
    OUTBOUND_TOO_BIG,    /* the answer was over max_body and the request wanted it whole */
    OUTBOUND_ABORTED,    /* the caller's body_read or body_write stopped the transfer */
    OUTBOUND_NOMEM,      /* out of memory queueing, starting or keeping it */
} outbound_outcome_t;

typedef struct {
    const char *name;  /* as the request named it; borrowed like the result */
    const char *value; /* its first value in the answer, NULL when absent */
} outbound_header_t;

typedef struct {
    void *arg;                        /* the request's */
    outbound_outcome_t outcome;       /* what happened */
    long status;                      /* the HTTP status, 0 when none came */
    int64_t retry_after_ms;           /* Retry-After of a 429 or 503 (seconds or HTTP-date),
                                         else -1 */
    const char *body;                 /* up to max_body bytes of the answer, NUL-terminated
                                         after body_len, NULL when none was kept; borrowed
                                         (outbound_do: owned) */
    size_t body_len;                  /* bytes in body */
    bool body_cut;                    /* the answer was longer and was cut at max_body */
    const outbound_header_t *headers; /* one per want_headers name, in its order */
    size_t nheaders;                  /* how many */
    int attempts;                     /* transfers made: 1 + retries */
    char error[256];                  /* a sentence when outcome != OUTBOUND_OK, else "" */
    int64_t latency_ms;               /* from the start of the last attempt to its end */
    char ip[64];                      /* the address connected to, "" when none */
} outbound_result_t;

/* Called with the transfers that completed in one turn of the client's loop
 * (n >= 1); results and their bodies are borrowed for the call. It runs on
 * the client's thread; it may call outbound_submit. */
typedef void (*outbound_done_fn)(void *cb_arg, const outbound_result_t *results, size_t n);

/* A client and its thread, or NULL with *err (when err is not NULL) set to
 * FENTA_EINVAL (negative options), FENTA_ENOMEM or FENTA_EUNAVAILABLE
 * (libcurl or the thread failed to start). done may be NULL for a client
 * used only through outbound_do. */
outbound_t *outbound_new(const outbound_opts_t *o, outbound_done_fn done, void *cb_arg, int *err);

/* Queues a request; everything in it is copied. 0, or FENTA_EINVAL (no URL
 * or key, a body pointer missing, both body and body_read, a method that is
 * not an HTTP token, HEAD with a body, a header line with CR or LF or no
 * colon, negative timeouts or retries, a client without done), FENTA_ENOMEM,
 * or FENTA_ESTOPPED once destroy has begun; a request that was not queued
 * never reaches done. A bad URL is not an error here: it completes as
 * OUTBOUND_BAD_URL. Thread-safe. */
int outbound_submit(outbound_t *c, const outbound_request_t *r);

/* Queues n requests at once (one lock, one wakeup): all or none. */
int outbound_submit_many(outbound_t *c, const outbound_request_t *r, size_t n);

/* Sends r and waits for its result (retries included) on the calling
 * thread, which must not be the client's (not from done). 0 with *out
 * filled whatever the outcome (release it with outbound_result_free: its
 * body and headers are the caller's), or submit's error with *out zeroed.
 * r->arg is ignored. The wait is bounded by r's timeouts and retries. */
int outbound_do(outbound_t *c, const outbound_request_t *r, outbound_result_t *out);

/* Frees what outbound_do put in r and zeroes it; NULL is a no-op. Never for
 * the results handed to done (they are borrowed). */
void outbound_result_free(outbound_result_t *r);

/* The value of response header name (case-insensitive, among those the
 * request asked for), or NULL; borrowed from r. */
const char *outbound_result_header(const outbound_result_t *r, const char *name);

/* Requests submitted whose done has not returned yet (in flight, waiting or
 * waiting to be retried). */
size_t outbound_pending(outbound_t *c);

/* Stops the client: every request not yet completed completes as
 * OUTBOUND_CANCELLED through done (or to its outbound_do caller), on the
 * client's thread, before this returns (so done must not wait for a lock
 * the destroying thread holds). Then frees everything and NULLs *self_p;
 * NULL or *self_p NULL is a no-op. Not to be called from done. */
void outbound_destroy(outbound_t **self_p);

/* The outbound safety rule alone: 0 if the numeric IPv4 or IPv6 address ip
 * may be contacted; FENTA_EDENIED with why[] naming the range otherwise;
 * FENTA_EINVAL when ip is not a numeric address. An IPv6 address that
 * carries an IPv4 one (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d)
 * is judged as that IPv4 address. */
int outbound_check_address(const char *ip, bool allow_loopback, bool allow_private, char *why,
                           size_t cap);

/* 0 when url is an http:// or https:// URL with a host, as the client
 * parses it; FENTA_EINVAL with why[] ("bad url: ...") otherwise; for
 * checking a configured URL before any request. */
int outbound_check_url(const char *url, char *why, size_t cap);

#endif
