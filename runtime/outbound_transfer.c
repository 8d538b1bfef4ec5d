/* outbound_transfer.c - one request of the outbound client (see outbound.h):
 * its copy and checks, its libcurl easy handle and options, the callbacks
 * curl calls while it runs (the address rule on every socket, the body in
 * and out), and the words of its result. The client's loop (outbound.c)
 * decides when it starts, waits and ends; everything here that touches a
 * running transfer runs on that loop's thread. */
#include "runtime/backoff.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include "runtime/outbound_internal.h"
#include "runtime/vec.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#define DEFAULT_RETRY_BASE_MS 500
#define DEFAULT_RETRY_MAX_MS 30000

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

/* curl_global_init is reference counted but not thread-safe on every
 * libcurl build: once, from one thread. This module is its only caller. */
static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int outbound__curl_init(void)
{
    if (pthread_once(&curl_once, curl_init) != 0 || curl_init_rc != CURLE_OK)
        return FENTA_EUNAVAILABLE;
    return 0;
}

/* --- the copy of a request ------------------------------------------------------ */

void outbound__req_free(outbound__req_t *q)
{
    if (!q)
        return;
    curl_slist_free_all(q->hdr);
    for (size_t i = 0; i < q->nwant; i++)
        free(q->want[i]);
    free(q->want);
    free(q->resp);
    free(q->hv);
    free(q->sigv4);
    if (q->userpwd) {
        crypto_wipe(q->userpwd, strlen(q->userpwd));
        free(q->userpwd);
    }
    free(q);
}

static bool header_ok(const char *h)
{
    const char *colon = strchr(h, ':');
    /* A CR or LF would let a header smuggle a second header or a request. */
    return colon && colon != h && !strpbrk(h, "\r\n");
}

/* An HTTP method is a token (RFC 9110 5.6.2); ours are short. */
static bool method_ok(const char *m)
{
    size_t n = strlen(m);
    if (n == 0 || n >= sizeof((outbound__req_t *)0)->method)
        return false;
    return strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                     "!#$%&'*+-.^_`|~") == n;
}

static int append(struct curl_slist **list, const char *line)
{
    struct curl_slist *t = curl_slist_append(*list, line);
    if (!t)
        return FENTA_ENOMEM;
    *list = t;
    return 0;
}

/* Methods a server must treat as idempotent (RFC 9110 9.2.2), so a retry
 * after a lost answer does no harm; POST and PATCH only when the caller
 * says so. */
static bool idempotent_method(const char *m)
{
    static const char *const ok[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(m, ok[i]) == 0)
            return true;
    return false;
}

static int want_copy(outbound__req_t *q, const char *const *names)
{
    size_t n = 0;
    while (names && names[n])
        n++;
    if (!n)
        return 0;
    q->want = calloc(n, sizeof *q->want);
    if (!q->want)
        return FENTA_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!*names[i] || strpbrk(names[i], ":\r\n"))
            return FENTA_EINVAL;
        if (!(q->want[i] = strdup(names[i])))
            return FENTA_ENOMEM;
        q->nwant++;
    }
    return 0;
}

int outbound__req_new(outbound_t *c, const outbound_request_t *r, outbound__req_t **out)
{
    *out = NULL;
    if (!r || !r->key || !r->url || (!r->body && r->body_len) || (r->body && r->body_read) ||
        (r->body_read && r->body_size < -1) || r->connect_timeout_ms < 0 ||
        r->total_timeout_ms < 0 || r->max_retries < 0 || r->retry_base_ms < 0 ||
        r->retry_max_wait_ms < 0 || (r->method && !method_ok(r->method)) ||
        (r->aws_sigv4 && (!r->aws_key_id || !r->aws_secret || strchr(r->aws_key_id, ':'))))
        return FENTA_EINVAL;
    bool has_body = r->body || r->body_read;
    const char *method = r->method ? r->method : has_body ? "POST" : "GET";
    if (has_body && strcmp(method, "HEAD") == 0)
        return FENTA_EINVAL;
    size_t kl = strlen(r->key) + 1, ul = strlen(r->url) + 1;
    outbound__req_t *q = calloc(1, sizeof *q + kl + ul + r->body_len + 1);
    if (!q)
        return FENTA_ENOMEM;
    char *p = (char *)(q + 1);
    q->key = memcpy(p, r->key, kl);
    q->url = memcpy(p + kl, r->url, ul);
    if (r->body) {
        /* Never NULL when there is a body: a NULL POSTFIELDS makes curl read stdin. */
        q->body = p + kl + ul;
        if (r->body_len)
            memcpy(p + kl + ul, r->body, r->body_len);
        q->body_len = r->body_len;
    }
    snprintf(q->method, sizeof q->method, "%s", method);
    q->has_body = has_body;
    q->retry_safe = r->idempotent || idempotent_method(method);
    q->read = r->body_read;
    q->read_arg = r->body_arg;
    q->read_size = r->body_size;
    q->write = r->body_write;
    q->write_arg = r->write_arg;
    q->c = c;
    q->arg = r->arg;
    q->connect_ms = r->connect_timeout_ms ? r->connect_timeout_ms : c->connect_ms;
    q->total_ms = r->total_timeout_ms ? r->total_timeout_ms : c->total_ms;
    q->max_body = r->max_body ? r->max_body : c->body_kept;
    q->whole_body = r->whole_body;
    q->max_retries = r->max_retries;
    q->retry_base_ms = r->retry_base_ms ? r->retry_base_ms : DEFAULT_RETRY_BASE_MS;
    q->retry_max_ms = r->retry_max_wait_ms ? r->retry_max_wait_ms : DEFAULT_RETRY_MAX_MS;
    bool has_type = false;
    int rc = want_copy(q, r->want_headers);
    if (rc == 0 && r->aws_sigv4) {
        /* Key ids never hold ':', so curl splits "id:secret" at the first. */
        size_t n = strlen(r->aws_key_id) + strlen(r->aws_secret) + 2;
        if (!(q->sigv4 = strdup(r->aws_sigv4)) || !(q->userpwd = malloc(n)))
            rc = FENTA_ENOMEM;
        else
            snprintf(q->userpwd, n, "%s:%s", r->aws_key_id, r->aws_secret);
    }
    for (size_t i = 0; rc == 0 && r->headers && r->headers[i]; i++) {
        rc = header_ok(r->headers[i]) ? append(&q->hdr, r->headers[i]) : FENTA_EINVAL;
        has_type = has_type || strncasecmp(r->headers[i], "content-type:", 13) == 0;
    }
    /* Every body sent so far is JSON; a caller sending anything else names it. */
    if (rc == 0 && has_body && !has_type)
        rc = append(&q->hdr, "Content-Type: application/json");
    /* A body of unknown size goes chunked, which curl does for POST only
     * when asked (PUT and the rest go through POST's machinery below). */
    if (rc == 0 && r->body_read && r->body_size < 0)
        rc = append(&q->hdr, "Transfer-Encoding: chunked");
    /* "Expect:" turns off curl's 100-continue wait, a round trip many
     * receivers never answer. */
    if (rc == 0)
        rc = append(&q->hdr, "Expect:");
    if (rc) {
        outbound__req_free(q);
        return rc;
    }
    *out = q;
    return 0;
}

void outbound__req_reset(outbound__req_t *q)
{
    q->resp_len = 0;
    if (q->resp)
        q->resp[0] = 0;
    q->cut = q->too_big = q->nomem = q->aborted = false;
    free(q->hv);
    q->hv = NULL;
    q->read_off = 0;
    q->nblocked = q->nopened = 0;
    q->blocked[0] = q->tried[0] = q->cerr[0] = 0;
}

/* --- URLs ----------------------------------------------------------------------- */

const char *outbound__url_problem(CURLU *cu, const char *url, char *why, size_t cap, bool *loopback)
{
    char *scheme = NULL, *host = NULL;
    CURLUcode uc = curl_url_set(cu, CURLUPART_URL, url, 0);
    *loopback = false;
    if (uc != CURLUE_OK)
        snprintf(why, cap, "bad url: %s", curl_url_strerror(uc));
    else if (curl_url_get(cu, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0))
        snprintf(why, cap, "bad url: only http and https are allowed");
    else if (curl_url_get(cu, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host)
        snprintf(why, cap, "bad url: no host");
    else
        why[0] = 0;
    if (!why[0])
        *loopback = strcasecmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
                    strcmp(host, "[::1]") == 0;
    curl_free(scheme);
    curl_free(host);
    return why[0] ? why : NULL;
}

int outbound_check_url(const char *url, char *why, size_t cap)
{
    char buf[256];
    bool loopback;
    if (why && cap)
        why[0] = 0;
    if (!url)
        return fenta_fail(why, cap, FENTA_EINVAL, "bad url: none given");
    if (outbound__curl_init() != 0)
        return fenta_fail(why, cap, FENTA_EUNAVAILABLE, "libcurl failed to start");
    CURLU *cu = curl_url();
    if (!cu)
        return fenta_fail(why, cap, FENTA_ENOMEM, "out of memory");
    const char *bad = outbound__url_problem(cu, url, buf, sizeof buf, &loopback);
    curl_url_cleanup(cu);
    return bad ? fenta_fail(why, cap, FENTA_EINVAL, "%s", bad) : 0;
}

/* --- the callbacks ------------------------------------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    outbound__req_t *q = arg;
    size_t len = size * n;
    if (q->write && len) {
        long status = 0;
        curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
        /* Only a success goes to the caller's sink (a file being
         * downloaded); an error's body is kept for the message. */
        if (status >= 200 && status < 300) {
            if (q->write(q->write_arg, p, len) != 0) {
                q->aborted = true;
                return 0; /* curl stops with CURLE_WRITE_ERROR */
            }
            q->wrote = true;
            return len;
        }
    }
    size_t keep = q->max_body - q->resp_len;
    if (keep < len) {
        if (q->whole_body) {
            q->too_big = true;
            return 0;
        }
        q->cut = true;
    } else {
        keep = len;
    }
    /* A growable array, not a strbuf: the answer is bytes whose block moves
     * to the result (r->body) as it is. */
    if (keep && vec_reserve(q->resp, q->resp_cap, q->resp_len + keep + 1) != 0) {
        q->nomem = true;
        return 0;
    }
    if (keep) {
        memcpy(q->resp + q->resp_len, p, keep);
        q->resp_len += keep;
        q->resp[q->resp_len] = 0;
    }
    /* The rest is read and dropped: stopping early would fail the transfer
     * and close a connection that could have been reused. */
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *arg)
{
    outbound__req_t *q = arg;
    size_t cap = size * n;
    ssize_t got = q->read(q->read_arg, q->read_off, buf, cap);
    if (got < 0 || (size_t)got > cap) {
        q->aborted = true;
        return CURL_READFUNC_ABORT;
    }
    q->read_off += got;
    return (size_t)got;
}

/* curl rewinds an upload it must send again (a kept-alive connection the
 * server had closed); reads are at an offset, so any start will do. */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
    outbound__req_t *q = arg;
    if (origin != SEEK_SET || offset < 0)
        return CURL_SEEKFUNC_CANTSEEK;
    q->read_off = offset;
    return CURL_SEEKFUNC_OK;
}

/* Called by curl for every socket it would open, after DNS: the address
 * rule is applied to the address actually connected to, so a name that
 * resolves (or re-resolves) to an internal address is caught. */
static curl_socket_t on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)purpose;
    outbound__req_t *q = arg;
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
    if (!q->c->allow_any_address &&
        outbound_check_address(ip, q->c->allow_loopback, q->c->allow_private, q->blocked,
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

/* --- starting and stopping ------------------------------------------------------------ */

/* The method and body options: HEAD is curl's NOBODY; anything with a body
 * goes through POST's machinery (from memory, or read through on_read)
 * under its own name, the way `curl -X PUT -d` does; anything else is a
 * GET under its own name. */
static void set_method(CURL *e, outbound__req_t *q)
{
    bool is_post = strcmp(q->method, "POST") == 0;
    if (strcmp(q->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    if (q->has_body) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        if (q->read) {
            curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(e, CURLOPT_READDATA, q);
            curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
            curl_easy_setopt(e, CURLOPT_SEEKDATA, q);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->read_size);
        } else {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        }
        if (!is_post)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
        return;
    }
    if (strcmp(q->method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
}

int outbound__start(outbound_t *c, outbound__req_t *q)
{
    CURL *e = c->npool ? c->pool[--c->npool] : curl_easy_init();
    if (!e)
        return FENTA_ENOMEM;
    q->cerr[0] = 0;
    q->easy = e;
    q->attempts++;
    curl_easy_setopt(e, CURLOPT_URL, q->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)q);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    if (!c->proxy_from_env)
        curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never a proxy from the environment */
    else if (q->loopback_host)
        curl_easy_setopt(e, CURLOPT_NOPROXY, "*"); /* a local server is never behind one */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* One request per connection at a time: a hanging endpoint holds its
     * own connections only, and keep-alive reuses the rest. */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, q->connect_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, q->total_ms);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->hdr);
    set_method(e, q);
    if (q->whole_body) /* refused at once when Content-Length says so */
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)q->max_body);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, q);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->cerr);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    /* Handles are pooled: a request that does not sign clears what the
     * handle's last one set, so no credentials ride along. */
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, q->sigv4);
    curl_easy_setopt(e, CURLOPT_USERPWD, q->userpwd);
    if (!q->sigv4)
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        q->easy = NULL;
        return FENTA_ENOMEM;
    }
    q->rprev = NULL;
    q->rnext = c->running;
    if (c->running)
        c->running->rprev = q;
    c->running = q;
    c->nrunning++;
    return 0;
}

void outbound__stop(outbound_t *c, outbound__req_t *q)
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

/* --- the result ----------------------------------------------------------------------- */

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

/* The headers the request asked for, names and values in one allocation
 * (so outbound_do can hand it over whole); false when out of memory. */
static bool collect_headers(outbound__req_t *q)
{
    if (!q->nwant)
        return true;
    const char *val[q->nwant];
    size_t size = q->nwant * sizeof *q->hv;
    for (size_t i = 0; i < q->nwant; i++) {
        struct curl_header *h;
        val[i] = curl_easy_header(q->easy, q->want[i], 0, CURLH_HEADER, -1, &h) == CURLHE_OK
                     ? h->value
                     : NULL;
        size += strlen(q->want[i]) + 1 + (val[i] ? strlen(val[i]) + 1 : 0);
    }
    free(q->hv);
    q->hv = malloc(size);
    if (!q->hv)
        return false;
    char *p = (char *)(q->hv + q->nwant);
    for (size_t i = 0; i < q->nwant; i++) {
        size_t nl = strlen(q->want[i]) + 1;
        q->hv[i].name = memcpy(p, q->want[i], nl);
        p += nl;
        q->hv[i].value = NULL;
        if (val[i]) {
            size_t vl = strlen(val[i]) + 1;
            q->hv[i].value = memcpy(p, val[i], vl);
            p += vl;
        }
    }
    return true;
}

void outbound__describe(outbound__req_t *q, CURLcode rc, outbound_result_t *r)
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
    r->outcome = OUTBOUND_CONNECT;
    r->status = status;
    r->latency_ms = us / 1000;
    if (!collect_headers(q))
        q->nomem = true;
    r->headers = q->hv;
    r->nheaders = q->hv ? q->nwant : 0;
    r->body = q->resp;
    r->body_len = q->resp_len;
    r->body_cut = q->cut;
    if (rc != CURLE_OK && q->nblocked && !q->nopened) {
        r->outcome = OUTBOUND_BLOCKED; /* and no address was connected to */
        snprintf(r->error, sizeof r->error, "%s", q->blocked);
        return;
    }
    snprintf(r->ip, sizeof r->ip, "%s", ip ? ip : "");
    if (q->nomem) {
        r->outcome = OUTBOUND_NOMEM;
        snprintf(r->error, sizeof r->error, "out of memory keeping the answer");
        return;
    }
    if (q->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        r->outcome = OUTBOUND_TOO_BIG;
        snprintf(r->error, sizeof r->error, "the answer is over %zu bytes", q->max_body);
        return;
    }
    if (q->aborted) {
        r->outcome = OUTBOUND_ABORTED;
        snprintf(r->error, sizeof r->error, "stopped by the caller's %s callback",
                 rc == CURLE_WRITE_ERROR ? "body_write" : "body_read");
        return;
    }
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
        else /* the words webhook delivery rows have always shown */
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

int64_t outbound__retry_wait(const outbound__req_t *q, const outbound_result_t *r)
{
    /* A body already handed to the caller's sink cannot be taken back. */
    if (q->attempts > q->max_retries || !q->retry_safe || q->wrote)
        return -1;
    bool asked = r->outcome == OUTBOUND_HTTP_ERROR && (r->status == 429 || r->status == 503);
    if (!asked && r->outcome != OUTBOUND_CONNECT)
        return -1;
    if (asked && r->retry_after_ms >= 0)
        /* Longer than the caller will wait: its answer, with Retry-After,
         * is more use to it than a request held for minutes. */
        return r->retry_after_ms <= q->retry_max_ms ? r->retry_after_ms : -1;
    backoff_policy_t p = {
        .base_ms = q->retry_base_ms, .factor = 2.0, .cap_ms = q->retry_max_ms, .max_attempts = 0};
    return backoff_delay_ms(&p, (uint32_t)q->attempts, backoff_random());
}
