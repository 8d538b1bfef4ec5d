/* outbound.c - the outbound HTTP client for webhook deliveries (see
 * outbound.h): a thread running libcurl's multi interface, per-key
 * FIFOs served round-robin, completions handed over in batches, and the
 * outbound address rule applied to every socket curl opens.
 *
 * Threads. Submitters only touch the inbox, the stopping flag and the
 * pending count, under c->lock; everything else (the key table, the ready
 * ring, the running list, the easy-handle pool, the batch) belongs to the
 * client's thread and is never locked. The loop takes the whole inbox at
 * once, so a burst of submits costs one wakeup. */
#include "runtime/outbound.h"
#include "runtime/clock.h"
#include "runtime/error.h"

#include <curl/curl.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define DEFAULT_MAX_TOTAL 512
#define DEFAULT_MAX_PER_KEY 16
#define DEFAULT_CONNECT_MS 5000L
#define DEFAULT_TOTAL_MS 15000L
#define DEFAULT_BODY_KEPT 1024
#define DEFAULT_USER_AGENT "Fenta-Webhooks/1"
/* First size of the batch; it grows with the load. */
#define BATCH_START 64
/* The loop's longest sleep; curl shortens it to its own next timeout. */
#define POLL_MS 1000

/* --- the outbound address rule ------------------------------------------------ */

typedef enum {
    RANGE_NEVER,    /* refused whatever the options say */
    RANGE_LOOPBACK, /* refused unless allow_loopback */
    RANGE_PRIVATE,  /* refused unless allow_private */
} range_kind_t;

typedef struct {
    int family;         /* AF_INET or AF_INET6 */
    const char *prefix; /* the network, as text */
    int bits;           /* its prefix length */
    range_kind_t kind;  /* which option, if any, lets it through */
    const char *name;   /* what it is, for the message */
} range_t;

/* The rule is this table. First match wins, so a special address inside a
 * wider range (the Alibaba metadata address in CGNAT space, the AWS IPv6
 * metadata address in unique-local space) comes before the range. */
static const range_t ranges[] = {
    {AF_INET, "0.0.0.0", 8, RANGE_NEVER, "\"this network\""},
    {AF_INET, "127.0.0.0", 8, RANGE_LOOPBACK, "loopback"},
    {AF_INET, "169.254.0.0", 16, RANGE_NEVER, "link-local (where cloud metadata lives)"},
    {AF_INET, "100.100.100.200", 32, RANGE_NEVER, "a cloud metadata address"},
    {AF_INET, "100.64.0.0", 10, RANGE_PRIVATE, "shared CGNAT space"},
    {AF_INET, "10.0.0.0", 8, RANGE_PRIVATE, "private"},
    {AF_INET, "172.16.0.0", 12, RANGE_PRIVATE, "private"},
    {AF_INET, "192.168.0.0", 16, RANGE_PRIVATE, "private"},
    {AF_INET, "224.0.0.0", 4, RANGE_NEVER, "multicast"},
    {AF_INET, "255.255.255.255", 32, RANGE_NEVER, "broadcast"},
    {AF_INET, "240.0.0.0", 4, RANGE_NEVER, "reserved"},
    {AF_INET6, "::1", 128, RANGE_LOOPBACK, "loopback"},
    {AF_INET6, "::", 96, RANGE_NEVER, "unspecified or IPv4-compatible"},
    {AF_INET6, "fe80::", 10, RANGE_NEVER, "link-local"},
    {AF_INET6, "fec0::", 10, RANGE_PRIVATE, "site-local"},
    {AF_INET6, "fd00:ec2::254", 128, RANGE_NEVER, "a cloud metadata address"},
    {AF_INET6, "fc00::", 7, RANGE_PRIVATE, "unique-local (private)"},
    {AF_INET6, "ff00::", 8, RANGE_NEVER, "multicast"},
};

/* IPv6 prefixes that carry an IPv4 address in their last 4 bytes and reach
 * it: IPv4-mapped (::ffff:0:0/96, which a dual-stack socket connects to
 * the IPv4 host) and the NAT64 well-known prefix (64:ff9b::/96). */
static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const unsigned char v4_nat64[12] = {0, 0x64, 0xff, 0x9b};

static bool in_prefix(const unsigned char *a, const unsigned char *net, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return false;
    return rest == 0 || ((a[full] ^ net[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

int outbound_check_address(const char *ip, bool allow_loopback, bool allow_private, char *why,
                           size_t cap)
{
    unsigned char a[16], net[16];
    int family = AF_INET;
    if (why && cap)
        why[0] = 0;
    if (!ip)
        return fenta_fail(why, cap, FENTA_EINVAL, "no address given");
    if (inet_pton(AF_INET, ip, a) != 1) {
        if (inet_pton(AF_INET6, ip, a) != 1)
            return fenta_fail(why, cap, FENTA_EINVAL, "%s is not a numeric IP address", ip);
        family = AF_INET6;
        if (memcmp(a, v4_mapped, 12) == 0 || memcmp(a, v4_nat64, 12) == 0) {
            memmove(a, a + 12, 4);
            family = AF_INET;
        }
    }
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        const range_t *r = &ranges[i];
        if (r->family != family || inet_pton(r->family, r->prefix, net) != 1 ||
            !in_prefix(a, net, r->bits))
            continue;
        if ((r->kind == RANGE_LOOPBACK && allow_loopback) ||
            (r->kind == RANGE_PRIVATE && allow_private))
            return 0;
        return fenta_fail(why, cap, FENTA_EDENIED, "address %s is %s (%s/%d); %s allowed", ip,
                          r->name, r->prefix, r->bits, r->kind == RANGE_NEVER ? "never" : "not");
    }
    return 0;
}

/* --- the client ------------------------------------------------------------------ */

typedef struct keyq keyq_t;

typedef struct req {
    struct req *next;           /* in the inbox, a key's FIFO, or the batch */
    struct req *rnext, *rprev;  /* in the running list */
    outbound_t *c;              /* the client, for the socket callback */
    keyq_t *k;                  /* its key's queue, once the loop has placed it */
    const char *key, *url;      /* copies, in this allocation */
    const char *body;           /* copy, in this allocation */
    size_t body_len;            /* bytes in body */
    struct curl_slist *hdr;     /* the header lines sent; ours */
    long connect_ms, total_ms;  /* this request's timeouts, defaults applied */
    void *arg;                  /* the caller's */
    CURL *easy;                 /* while running */
    char *resp;                 /* up to c->body_kept bytes of the answer; ours */
    size_t resp_len;            /* bytes in resp */
    int nblocked, nopened;      /* sockets refused by the address rule, and opened */
    char blocked[200];          /* why the last refused one was */
    char tried[80];             /* the last address a socket was opened for, "ip:port" */
    char cerr[CURL_ERROR_SIZE]; /* curl's own words on a failure */
} req_t;

struct keyq {
    keyq_t *hnext;      /* the next in its hash bucket */
    keyq_t *rnext;      /* the next in the ready ring */
    bool ready;         /* in the ready ring */
    int running;        /* its transfers in flight */
    req_t *head, *tail; /* its waiting requests, oldest first */
    char name[];        /* the key */
};

struct outbound {
    int max_total, max_per_key;         /* the limits, defaults applied */
    bool allow_loopback, allow_private; /* the address rule's options */
    long connect_ms, total_ms;          /* default timeouts */
    size_t body_kept;                   /* bytes of an answer kept */
    char *user_agent;                   /* ours */
    outbound_done_fn done;              /* the batch callback */
    void *cb_arg;                       /* its argument */
    CURLM *multi;                       /* the transfers and the shared connection cache */
    pthread_t thread;                   /* the loop */
    pthread_mutex_t lock;               /* guards the three fields below */
    req_t *in_head, *in_tail;           /* submitted, not yet taken by the loop */
    bool stopping;                      /* destroy has begun */
    size_t pending;                     /* submitted, done not returned */
    keyq_t **buckets;                   /* the key table (loop only) */
    size_t nbuckets, nkeys;             /* its size and load */
    keyq_t *ready_head, *ready_tail;    /* keys with a waiting request and a free slot */
    req_t *running;                     /* transfers in flight */
    int nrunning;                       /* how many */
    CURL **pool;                        /* easy handles kept for reuse */
    int npool;                          /* how many */
    CURLU *cu;                          /* for checking URLs */
    outbound_result_t *res;             /* the batch being built */
    size_t nres, capres;                /* its length and room */
    req_t *finished;                    /* its requests, freed after done */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init is reference counted but not thread-safe on every
 * libcurl build, and kokoro.c calls it too: once here, from one thread. */
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void req_free(req_t *q)
{
    if (!q)
        return;
    curl_slist_free_all(q->hdr);
    free(q->resp);
    free(q);
}

static bool header_ok(const char *h)
{
    const char *colon = strchr(h, ':');
    /* A CR or LF would let a header smuggle a second header or a request. */
    return colon && colon != h && !strpbrk(h, "\r\n");
}

static int append(struct curl_slist **list, const char *line)
{
    struct curl_slist *t = curl_slist_append(*list, line);
    if (!t)
        return FENTA_ENOMEM;
    *list = t;
    return 0;
}

static int req_new(outbound_t *c, const outbound_request_t *r, req_t **out)
{
    *out = NULL;
    if (!r || !r->key || !r->url || (!r->body && r->body_len) || r->connect_timeout_ms < 0 ||
        r->total_timeout_ms < 0)
        return FENTA_EINVAL;
    size_t kl = strlen(r->key) + 1, ul = strlen(r->url) + 1;
    req_t *q = calloc(1, sizeof *q + kl + ul + r->body_len + 1);
    if (!q)
        return FENTA_ENOMEM;
    char *p = (char *)(q + 1);
    q->key = memcpy(p, r->key, kl);
    q->url = memcpy(p + kl, r->url, ul);
    q->body = p + kl + ul; /* never NULL: a NULL POSTFIELDS makes curl read stdin */
    if (r->body_len)
        memcpy(p + kl + ul, r->body, r->body_len);
    q->body_len = r->body_len;
    q->c = c;
    q->arg = r->arg;
    q->connect_ms = r->connect_timeout_ms ? r->connect_timeout_ms : c->connect_ms;
    q->total_ms = r->total_timeout_ms ? r->total_timeout_ms : c->total_ms;
    bool has_type = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && r->headers && r->headers[i]; i++) {
        rc = header_ok(r->headers[i]) ? append(&q->hdr, r->headers[i]) : FENTA_EINVAL;
        has_type = has_type || strncasecmp(r->headers[i], "content-type:", 13) == 0;
    }
    if (rc == 0 && !has_type)
        rc = append(&q->hdr, "Content-Type: application/json");
    /* "Expect:" turns off curl's 100-continue wait, a round trip many
     * receivers never answer. */
    if (rc == 0)
        rc = append(&q->hdr, "Expect:");
    if (rc) {
        req_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

/* --- the key table and the ready ring (loop thread) ----------------------------- */

static size_t key_hash(const char *s)
{
    size_t h = 14695981039346656037ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static keyq_t *key_get(outbound_t *c, const char *name)
{
    size_t b = key_hash(name) & (c->nbuckets - 1);
    for (keyq_t *k = c->buckets[b]; k; k = k->hnext)
        if (strcmp(k->name, name) == 0)
            return k;
    if (c->nkeys >= c->nbuckets) { /* grow first, so chains stay short */
        size_t n = c->nbuckets * 2;
        keyq_t **nb = calloc(n, sizeof *nb);
        if (nb) {
            for (size_t i = 0; i < c->nbuckets; i++)
                for (keyq_t *k = c->buckets[i], *nx; k; k = nx) {
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
    keyq_t *k = calloc(1, sizeof *k + len);
    if (!k)
        return NULL;
    memcpy(k->name, name, len);
    k->hnext = c->buckets[b];
    c->buckets[b] = k;
    c->nkeys++;
    return k;
}

static void key_drop(outbound_t *c, keyq_t *k)
{
    keyq_t **pp = &c->buckets[key_hash(k->name) & (c->nbuckets - 1)];
    while (*pp != k)
        pp = &(*pp)->hnext;
    *pp = k->hnext;
    c->nkeys--;
    free(k);
}

static void ready_push(outbound_t *c, keyq_t *k)
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
static void key_release(outbound_t *c, keyq_t *k)
{
    k->running--;
    if (k->head && !k->ready && k->running < c->max_per_key)
        ready_push(c, k);
    else if (!k->head && !k->running)
        key_drop(c, k);
}

/* --- the batch -------------------------------------------------------------------- */

/* Hands the batch to done, then frees its requests (their bodies were
 * borrowed by the results). */
static void flush(outbound_t *c)
{
    if (!c->nres)
        return;
    size_t n = c->nres;
    c->done(c->cb_arg, c->res, n);
    for (req_t *q = c->finished, *nx; q; q = nx) {
        nx = q->next;
        req_free(q);
    }
    c->finished = NULL;
    c->nres = 0;
    pthread_mutex_lock(&c->lock);
    c->pending -= n;
    pthread_mutex_unlock(&c->lock);
}

/* A zeroed result for q in the batch. When the batch cannot grow, the
 * results so far are handed over first: a completion is never dropped. */
static outbound_result_t *slot(outbound_t *c, req_t *q, outbound_outcome_t outcome)
{
    if (c->nres == c->capres) {
        size_t cap = c->capres * 2;
        outbound_result_t *r = realloc(c->res, cap * sizeof *r);
        if (r) {
            c->res = r;
            c->capres = cap;
        } else {
            flush(c);
        }
    }
    outbound_result_t *r = &c->res[c->nres++];
    q->next = c->finished; /* q is in no other list by now */
    c->finished = q;
    memset(r, 0, sizeof *r);
    r->arg = q->arg;
    r->outcome = outcome;
    r->retry_after_ms = -1;
    return r;
}

/* --- one transfer ------------------------------------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    req_t *q = arg;
    size_t len = size * n, keep = q->c->body_kept - q->resp_len;
    if (keep > len)
        keep = len;
    if (keep && !q->resp)
        q->resp = malloc(q->c->body_kept);
    if (keep && q->resp) {
        memcpy(q->resp + q->resp_len, p, keep);
        q->resp_len += keep;
    }
    /* The rest is read and dropped: stopping early would fail the transfer
     * and close a connection that could have been reused. */
    return len;
}

/* Called by curl for every socket it would open, after DNS: the address
 * rule is applied to the address actually connected to, so a name that
 * resolves (or re-resolves) to an internal address is caught. */
static curl_socket_t on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    req_t *q = arg;
    struct sockaddr_storage ss;
    char ip[INET6_ADDRSTRLEN] = "";
    memset(&ss, 0, sizeof ss);
    memcpy(&ss, &a->addr, a->addrlen < sizeof ss ? a->addrlen : sizeof ss);
    if (a->family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
    else if (a->family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
    if (!ip[0]) {
        q->nblocked++;
        snprintf(q->blocked, sizeof q->blocked, "address family %d is not allowed", a->family);
        return CURL_SOCKET_BAD;
    }
    if (outbound_check_address(ip, q->c->allow_loopback, q->c->allow_private, q->blocked,
                               sizeof q->blocked) != 0) {
        q->nblocked++;
        return CURL_SOCKET_BAD; /* curl tries the next address, if any */
    }
    /* CLOEXEC: the process also forks media tools, which must not inherit it. */
    curl_socket_t s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (s != CURL_SOCKET_BAD)
        q->nopened++;
    int port = ntohs(a->family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
    snprintf(q->tried, sizeof q->tried, a->family == AF_INET ? "%s:%d" : "[%s]:%d", ip, port);
    return s;
}

static int start(outbound_t *c, req_t *q)
{
    CURL *e = c->npool ? c->pool[--c->npool] : curl_easy_init();
    if (!e)
        return FENTA_ENOMEM;
    q->cerr[0] = 0;
    curl_easy_setopt(e, CURLOPT_URL, q->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)q);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never a proxy from the environment */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* One request per connection at a time: a hanging endpoint holds its
     * own connections only, and keep-alive reuses the rest. */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, q->connect_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, q->total_ms);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->hdr);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, q);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->cerr);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        return FENTA_ENOMEM;
    }
    q->easy = e;
    q->rprev = NULL;
    q->rnext = c->running;
    if (c->running)
        c->running->rprev = q;
    c->running = q;
    c->nrunning++;
    return 0;
}

/* Takes q's easy handle back from the multi handle, for reuse. */
static void stop_transfer(outbound_t *c, req_t *q)
{
    if (q->rprev)
        q->rprev->rnext = q->rnext;
    else
        c->running = q->rnext;
    if (q->rnext)
        q->rnext->rprev = q->rprev;
    c->nrunning--;
    curl_multi_remove_handle(c->multi, q->easy);
    if (c->npool < c->max_total) {
        curl_easy_reset(q->easy); /* connections live in the multi handle, not here */
        c->pool[c->npool++] = q->easy;
    } else {
        curl_easy_cleanup(q->easy);
    }
    q->easy = NULL;
}

/* Retry-After as milliseconds from now: delta-seconds or an HTTP-date (a
 * date in the past is 0); -1 when absent or unparsable. */
static int64_t retry_after(CURL *e)
{
    struct curl_header *h;
    if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return -1;
    const char *v = h->value;
    while (isspace((unsigned char)*v))
        v++;
    if (isdigit((unsigned char)*v)) {
        char *end;
        errno = 0;
        long long s = strtoll(v, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        if (*end || errno)
            return -1;
        return s > INT64_MAX / 1000 ? INT64_MAX : (int64_t)s * 1000;
    }
    time_t t = curl_getdate(v, NULL);
    if (t == (time_t)-1)
        return -1;
    int64_t d = (int64_t)t * 1000 - clock_now_ms();
    return d > 0 ? d : 0;
}

/* The result of a finished transfer, in words a user reads. */
static void describe(outbound_t *c, req_t *q, CURLcode rc)
{
    CURL *e = q->easy;
    long status = 0, oserr = 0;
    char *ip = NULL, *loc = NULL;
    curl_off_t us = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &oserr);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &us);
    const char *detail = q->cerr[0] ? q->cerr : curl_easy_strerror(rc);
    outbound_result_t *r = slot(c, q, OUTBOUND_CONNECT);
    r->status = status;
    r->latency_ms = us / 1000;
    r->body = q->resp;
    r->body_len = q->resp_len;
    if (rc != CURLE_OK && q->nblocked && !q->nopened) {
        r->outcome = OUTBOUND_BLOCKED; /* and no address was connected to */
        snprintf(r->error, sizeof r->error, "%s", q->blocked);
        return;
    }
    snprintf(r->ip, sizeof r->ip, "%s", ip ? ip : "");
    switch (rc) {
    case CURLE_OK:
        if (status >= 200 && status < 300) {
            r->outcome = OUTBOUND_OK;
            return;
        }
        r->outcome = OUTBOUND_HTTP_ERROR;
        if (status == 429 || status == 503)
            r->retry_after_ms = retry_after(e);
        if (status >= 300 && status < 400 &&
            curl_easy_getinfo(e, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
            snprintf(r->error, sizeof r->error, "redirect to %s not followed", loc);
        else if (status >= 300 && status < 400)
            snprintf(r->error, sizeof r->error, "redirects are not followed");
        else
            snprintf(r->error, sizeof r->error, "the endpoint did not accept the delivery");
        return;
    case CURLE_OPERATION_TIMEDOUT:
        r->outcome = OUTBOUND_TIMEOUT;
        /* curl says which phase ran out: resolving and connecting are
         * bounded by the connect timeout, the rest by the total. */
        if (strncmp(q->cerr, "Connection timed out", 20) == 0 ||
            strncmp(q->cerr, "Resolving timed out", 19) == 0)
            snprintf(r->error, sizeof r->error, "could not connect within %ld ms",
                     q->connect_ms < q->total_ms ? q->connect_ms : q->total_ms);
        else
            snprintf(r->error, sizeof r->error, "timed out after %ld ms", q->total_ms);
        return;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        r->outcome = OUTBOUND_BAD_URL;
        snprintf(r->error, sizeof r->error, "bad url: %.200s", detail);
        return;
    case CURLE_COULDNT_CONNECT:
        /* curl leaves PRIMARY_IP empty when no connection was made. */
        if (oserr == ECONNREFUSED && q->tried[0])
            snprintf(r->error, sizeof r->error, "connection refused by %s", q->tried);
        else
            snprintf(r->error, sizeof r->error, "%s", detail);
        return;
    default:
        snprintf(r->error, sizeof r->error, "%s", detail);
        return;
    }
}

/* --- the loop ----------------------------------------------------------------------- */

/* Null when url is a parsable http(s) URL with a host, else why not. */
static const char *url_problem(outbound_t *c, const char *url, char *why, size_t cap)
{
    char *scheme = NULL, *host = NULL;
    CURLUcode uc = curl_url_set(c->cu, CURLUPART_URL, url, 0);
    if (uc != CURLUE_OK)
        snprintf(why, cap, "bad url: %s", curl_url_strerror(uc));
    else if (curl_url_get(c->cu, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        snprintf(why, cap, "bad url: only http and https are allowed");
    else if (curl_url_get(c->cu, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
        snprintf(why, cap, "bad url: no host");
    else
        why[0] = 0;
    curl_free(scheme);
    curl_free(host);
    return why[0] ? why : NULL;
}

/* Places newly submitted requests in their keys' FIFOs, in submit order. */
static void take(outbound_t *c, req_t *in)
{
    char why[256];
    for (req_t *q = in, *nx; q; q = nx) {
        nx = q->next;
        q->next = NULL;
        const char *bad = url_problem(c, q->url, why, sizeof why);
        keyq_t *k = bad ? NULL : key_get(c, q->key);
        if (!k) {
            outbound_result_t *r = slot(c, q, bad ? OUTBOUND_BAD_URL : OUTBOUND_CONNECT);
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

/* Starts waiting requests while there is room, one per key per turn of the
 * ring, so no key can take every slot while others wait. */
static void start_ready(outbound_t *c)
{
    while (c->nrunning < c->max_total && c->ready_head) {
        keyq_t *k = c->ready_head;
        c->ready_head = k->rnext;
        if (!c->ready_head)
            c->ready_tail = NULL;
        k->ready = false;
        req_t *q = k->head;
        k->head = q->next;
        if (!k->head)
            k->tail = NULL;
        q->next = NULL;
        k->running++;
        if (k->head && k->running < c->max_per_key)
            ready_push(c, k);
        if (start(c, q) != 0) {
            outbound_result_t *r = slot(c, q, OUTBOUND_CONNECT);
            snprintf(r->error, sizeof r->error, "out of memory starting the transfer");
            key_release(c, k);
        }
    }
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
        req_t *q = (req_t *)p;
        describe(c, q, rc);
        stop_transfer(c, q);
        key_release(c, q->k);
    }
}

static void cancel(outbound_t *c, req_t *q)
{
    outbound_result_t *r = slot(c, q, OUTBOUND_CANCELLED);
    snprintf(r->error, sizeof r->error, "the client stopped before the request completed");
}

/* At stop: everything still waiting, running or just submitted completes
 * as cancelled, in one last batch. */
static void cancel_all(outbound_t *c, req_t *in)
{
    for (size_t b = 0; b < c->nbuckets; b++)
        for (keyq_t *k = c->buckets[b]; k; k = k->hnext) {
            for (req_t *q = k->head, *nx; q; q = nx) {
                nx = q->next;
                cancel(c, q);
            }
            k->head = k->tail = NULL;
            k->ready = false;
        }
    c->ready_head = c->ready_tail = NULL;
    while (c->running) {
        req_t *q = c->running;
        cancel(c, q);
        stop_transfer(c, q);
        key_release(c, q->k);
    }
    for (req_t *q = in, *nx; q; q = nx) {
        nx = q->next;
        cancel(c, q);
    }
    flush(c);
}

static void *loop(void *arg)
{
    outbound_t *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->lock);
        req_t *in = c->in_head;
        bool stop = c->stopping;
        c->in_head = c->in_tail = NULL;
        pthread_mutex_unlock(&c->lock);
        if (stop) {
            cancel_all(c, in);
            return NULL;
        }
        take(c, in);
        start_ready(c);
        int still;
        curl_multi_perform(c->multi, &still);
        reap(c);
        /* One batch per turn: what finished together is handed over
         * together, and the caller commits it at once. */
        flush(c);
        /* Freed slots are refilled before sleeping; curl gives a newly
         * added handle an immediate timeout, so the poll returns at once. */
        start_ready(c);
        curl_multi_poll(c->multi, NULL, 0, POLL_MS, NULL);
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
        for (keyq_t *k = c->buckets[b], *nx; k; k = nx) {
            nx = k->hnext;
            free(k);
        }
    curl_url_cleanup(c->cu);
    free(c->buckets);
    free(c->pool);
    free(c->res);
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
    if (!done || o->max_total < 0 || o->max_per_key < 0 || o->connect_timeout_ms < 0 ||
        o->total_timeout_ms < 0)
        e = FENTA_EINVAL;
    if (!e && (pthread_once(&curl_once, curl_init) != 0 || curl_init_rc != CURLE_OK))
        e = FENTA_EUNAVAILABLE;
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
    c->connect_ms = o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_MS;
    c->total_ms = o->total_timeout_ms ? o->total_timeout_ms : DEFAULT_TOTAL_MS;
    c->body_kept = o->max_body_kept ? o->max_body_kept : DEFAULT_BODY_KEPT;
    c->done = done;
    c->cb_arg = cb_arg;
    c->nbuckets = 64;
    c->capres = BATCH_START;
    c->user_agent = strdup(o->user_agent ? o->user_agent : DEFAULT_USER_AGENT);
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    c->pool = calloc((size_t)c->max_total, sizeof *c->pool);
    c->res = calloc(c->capres, sizeof *c->res);
    c->cu = curl_url();
    c->multi = curl_multi_init();
    e = c->user_agent && c->buckets && c->pool && c->res && c->cu && c->multi ? 0 : FENTA_ENOMEM;
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

int outbound_submit_many(outbound_t *c, const outbound_request_t *r, size_t n)
{
    if (!c || (!r && n))
        return FENTA_EINVAL;
    if (!n)
        return 0;
    /* Copies are made outside the lock, so submitters do not queue on it. */
    req_t *head = NULL, *tail = NULL;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        req_t *q;
        rc = req_new(c, &r[i], &q);
        if (rc == 0 && tail)
            tail->next = q;
        else if (rc == 0)
            head = q;
        if (rc == 0)
            tail = q;
    }
    pthread_mutex_lock(&c->lock);
    if (rc == 0 && c->stopping)
        rc = FENTA_ESTOPPED;
    if (rc == 0) {
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
    if (rc)
        for (req_t *q = head, *nx; q; q = nx) {
            nx = q->next;
            req_free(q);
        }
    return rc;
}

int outbound_submit(outbound_t *c, const outbound_request_t *r)
{
    return r ? outbound_submit_many(c, r, 1) : FENTA_EINVAL;
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
