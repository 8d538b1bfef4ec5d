/* outbound_internal.h - what the outbound client's files share; outbound__
 * prefix. outbound.c is the client (its thread, the key FIFOs, retries
 * waiting their turn, batches, the public face); outbound_transfer.c is one
 * request (its copy, its libcurl easy handle, its callbacks, the words of
 * its result); outbound_address.c is the address rule. Only they include
 * this file, and with it libcurl. */
#ifndef FENTA_OUTBOUND_INTERNAL_H
#define FENTA_OUTBOUND_INTERNAL_H
#include "runtime/outbound.h"

#include <curl/curl.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct outbound__key outbound__key_t;

/* An outbound_do caller waiting for its one result (on its own stack). */
typedef struct {
    pthread_mutex_t mu;     /* guards done */
    pthread_cond_t cv;      /* signalled once done */
    bool done;              /* *out is filled */
    outbound_result_t *out; /* the caller's */
} outbound__waiter_t;

typedef struct outbound__req {
    struct outbound__req *next;          /* in the inbox, a key's FIFO, the parked list or the
                                            batch */
    struct outbound__req *rnext, *rprev; /* in the running list */
    outbound_t *c;                       /* the client, for the callbacks */
    outbound__key_t *k;                  /* its key's queue, once the loop has placed it */
    const char *key, *url;               /* copies, in this allocation */
    const char *body;                    /* copy, in this allocation; NULL = none from memory */
    size_t body_len;                     /* bytes in body */
    char method[24];                     /* resolved: "GET", "POST", "PUT"... */
    bool has_body;                       /* a body is sent (body or read) */
    bool retry_safe;                     /* sending it twice is safe (method or idempotent) */
    bool loopback_host;                  /* the URL names a loopback host (never proxied) */
    outbound_read_fn read;               /* the streamed body, or NULL */
    void *read_arg;                      /* its argument */
    int64_t read_size;                   /* its size, -1 = unknown (chunked) */
    int64_t read_off;                    /* where the next read starts */
    outbound_write_fn write;             /* a 2xx body goes here, or NULL */
    void *write_arg;                     /* its argument */
    bool wrote;                          /* write was given a byte: never retried */
    char **want;                         /* header names to return; ours */
    size_t nwant;                        /* how many */
    struct curl_slist *hdr;              /* the header lines sent; ours */
    long connect_ms, total_ms;           /* this request's timeouts, defaults applied */
    size_t max_body;                     /* bytes of the answer kept, default applied */
    bool whole_body;                     /* over max_body fails instead of cutting */
    int max_retries;                     /* retries allowed */
    int attempts;                        /* transfers started */
    int64_t retry_base_ms, retry_max_ms; /* backoff, defaults applied */
    int64_t due_us;                      /* parked: when to start again (clock_mono_us) */
    char *sigv4;                         /* CURLOPT_AWS_SIGV4, or NULL; ours */
    char *userpwd;                       /* "key id:secret" for it, or NULL; ours, wiped */
    void *arg;                           /* the caller's */
    outbound__waiter_t *waiter;          /* outbound_do's, or NULL for done */
    CURL *easy;                          /* while running */
    char *resp;                          /* up to max_body bytes of the answer, NUL-terminated;
                                            ours */
    size_t resp_len, resp_cap;           /* bytes in resp, and its room (vec_reserve) */
    bool cut, too_big, nomem, aborted;   /* what stopped or shortened the answer */
    outbound_header_t *hv;               /* the wanted headers, with their strings in the same
                                            allocation; ours */
    int nblocked, nopened;               /* sockets refused by the address rule, and opened */
    char blocked[200];                   /* why the last refused one was */
    char tried[80];                      /* the last address a socket was opened for, "ip:port" */
    char cerr[CURL_ERROR_SIZE];          /* curl's own words on a failure */
} outbound__req_t;

struct outbound__key {
    outbound__key_t *hnext;       /* the next in its hash bucket */
    outbound__key_t *rnext;       /* the next in the ready ring */
    bool ready;                   /* in the ready ring */
    int running;                  /* its transfers in flight or waiting to be retried */
    outbound__req_t *head, *tail; /* its waiting requests, oldest first */
    char name[];                  /* the key */
};

struct outbound {
    int max_total, max_per_key;               /* the limits, defaults applied */
    bool allow_loopback, allow_private;       /* the address rule's options */
    bool allow_any_address;                   /* no address rule */
    bool proxy_from_env;                      /* the environment's proxy, for non-loopback hosts */
    long connect_ms, total_ms;                /* default timeouts */
    size_t body_kept;                         /* default bytes of an answer kept */
    char *user_agent;                         /* ours */
    outbound_done_fn done;                    /* the batch callback; NULL = outbound_do only */
    void *cb_arg;                             /* its argument */
    CURLM *multi;                             /* the transfers and the shared connection cache */
    pthread_t thread;                         /* the loop */
    pthread_mutex_t lock;                     /* guards the three fields below */
    outbound__req_t *in_head, *in_tail;       /* submitted, not yet taken by the loop */
    bool stopping;                            /* destroy has begun */
    size_t pending;                           /* submitted, done not returned */
    outbound__key_t **buckets;                /* the key table (loop only) */
    size_t nbuckets, nkeys;                   /* its size and load */
    outbound__key_t *ready_head, *ready_tail; /* keys with a waiting request and a free slot */
    outbound__req_t *running;                 /* transfers in flight */
    int nrunning;                             /* how many */
    outbound__req_t *parked;                  /* waiting to be retried, soonest first */
    CURL **pool;                              /* easy handles kept for reuse */
    int npool;                                /* how many */
    CURLU *cu;                                /* for checking URLs */
    outbound_result_t *res;                   /* the batch being built */
    outbound__req_t **resq;                   /* the request of each result, freed after done */
    size_t nres;                              /* its length */
    size_t capres, capresq;                   /* room in res and resq (vec_reserve) */
};

/* libcurl's global state, once per process: 0 or FENTA_EUNAVAILABLE. */
int outbound__curl_init(void);

/* A copy of r for c (defaults applied), or FENTA_EINVAL / FENTA_ENOMEM. */
int outbound__req_new(outbound_t *c, const outbound_request_t *r, outbound__req_t **out);
void outbound__req_free(outbound__req_t *q);

/* NULL when url is a parsable http(s) URL with a host (and *loopback says
 * whether the host is a loopback one), else why not, written into why. */
const char *outbound__url_problem(CURLU *cu, const char *url, char *why, size_t cap,
                                  bool *loopback);

/* Starts q's next attempt on c's multi handle (a pooled easy handle);
 * 0 or FENTA_ENOMEM. */
int outbound__start(outbound_t *c, outbound__req_t *q);
/* Takes q's easy handle back from the multi handle, for reuse. */
void outbound__stop(outbound_t *c, outbound__req_t *q);

/* The result of q's finished attempt (rc is curl's), in words a user reads,
 * into *r (arg, attempts and retry_after_ms set by the caller). Reads what
 * it needs from q->easy, so it runs before outbound__stop. */
void outbound__describe(outbound__req_t *q, CURLcode rc, outbound_result_t *r);

/* When r (q's last attempt) should be tried again: the wait in ms, else -1. */
int64_t outbound__retry_wait(const outbound__req_t *q, const outbound_result_t *r);
/* Clears what one attempt left in q before the next. */
void outbound__req_reset(outbound__req_t *q);

#endif
