/* fake_kokoro.c - a local Kokoro-FastAPI stand-in for the TTS tests (see
 * fake_kokoro.h): the socket loop, the HTTP/1.1 framing, the request checks
 * and the tone-burst audio with its timestamps. */
#include "tests/support/fake_kokoro.h"

#include <criterion/criterion.h>
#include <jansson.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_HEAD (64 * 1024)
#define MAX_BODY (16 * 1024 * 1024)

struct fake_kokoro {
    fake_kokoro_opts_t o; /* what it was started with, defaults filled */
    int fd;               /* the listening socket */
    int port;
    char url[64];
    pthread_t thread;
    pthread_mutex_t mu; /* guards everything below */
    bool stop;
    size_t nreq;
    char *path, *body, *auth; /* the last request's */
};

static bool stopping(fake_kokoro_t *fk)
{
    pthread_mutex_lock(&fk->mu);
    bool s = fk->stop;
    pthread_mutex_unlock(&fk->mu);
    return s;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w, n -= (size_t)w;
    }
}

static void respond(int fd, int status, const char *type, const char *body, size_t len)
{
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 422 ? "Unprocessable Entity"
                                         : "Internal Server Error";
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, reason, type, len);
    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
}

/* ---- audio and timestamps ------------------------------------------------ */

typedef struct pcm {
    float *s; /* mono samples in -1..1 */
    size_t n; /* samples */
    int rate; /* Hz */
} pcm_t;

static void add(pcm_t *p, double ms, bool tone)
{
    size_t k = (size_t)llround(ms * p->rate / 1000.0);
    p->s = realloc(p->s, (p->n + k) * sizeof *p->s);
    cr_assert_not_null(p->s);
    for (size_t i = 0; i < k; i++)
        p->s[p->n + i] = tone ? (float)(0.5 * sin(2 * M_PI * 440.0 * (double)i / p->rate)) : 0;
    p->n += k;
}

static void stamp(json_t *arr, const char *w, size_t len, double start_ms, double end_ms)
{
    json_array_append_new(arr, json_pack("{s:s%, s:f, s:f}", "word", w, len, "start_time",
                                         start_ms / 1000.0, "end_time", end_ms / 1000.0));
}

/* One word part as the server would say it: digits spelt out if asked. */
static void stamp_part(const fake_kokoro_t *fk, json_t *arr, const char *w, size_t len, double s,
                       double e)
{
    static const char *const names[] = {"zero", "one", "two",   "three", "four",
                                        "five", "six", "seven", "eight", "nine"};
    bool digits = len > 0;
    for (size_t i = 0; i < len; i++)
        digits = digits && isdigit((unsigned char)w[i]);
    if (fk->o.spell_digits && digits) {
        const char *name = len == 1 ? names[w[0] - '0'] : "number";
        stamp(arr, name, strlen(name), s, e);
    } else {
        stamp(arr, w, len, s, e);
    }
}

/* The tone bursts and timestamps for input (see fake_kokoro.h). */
static json_t *speak(const fake_kokoro_t *fk, const char *input, pcm_t *p)
{
    json_t *arr = json_array();
    *p = (pcm_t){.rate = fk->o.sample_rate};
    add(p, FAKE_KOKORO_LEAD_MS, false);
    for (const char *c = input; *c;) {
        while (*c && isspace((unsigned char)*c))
            c++;
        const char *b = c;
        while (*c && !isspace((unsigned char)*c))
            c++;
        if (c == b)
            break;
        const char *wb = b, *we = c; /* the word without ASCII punctuation at its ends */
        while (wb < we && ispunct((unsigned char)*wb))
            wb++;
        while (we > wb && ispunct((unsigned char)we[-1]))
            we--;
        if (wb == we) { /* punctuation only: an entry, no sound */
            double at = (double)p->n * 1000.0 / p->rate;
            stamp(arr, b, (size_t)(c - b), at, at);
            continue;
        }
        double s = (double)p->n * 1000.0 / p->rate, e = s + FAKE_KOKORO_TONE_MS;
        for (const char *q = b; q < wb; q++)
            stamp(arr, q, 1, s, s);
        size_t parts = 1;
        for (const char *q = wb; q < we; q++)
            parts += *q == '-';
        double step = (e - s) / (double)parts, at = s;
        for (const char *q = wb; q <= we; at += step) {
            const char *h = memchr(q, '-', (size_t)(we - q));
            const char *pe = h ? h : we;
            stamp_part(fk, arr, q, (size_t)(pe - q), at, at + step);
            q = pe + 1;
        }
        for (const char *q = we; q < c; q++)
            stamp(arr, q, 1, e, e);
        add(p, FAKE_KOKORO_TONE_MS, true);
        add(p, FAKE_KOKORO_GAP_MS, false);
    }
    return arr;
}

static void put(unsigned char **w, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        *(*w)++ = (unsigned char)(v >> (8 * i));
}

static void tag4(unsigned char **w, const char *t)
{
    memcpy(*w, t, 4);
    *w += 4;
}

/* The WAV the server would send: 16-bit mono with a LIST chunk before the
 * data, or 32-bit float stereo with an 18-byte fmt and a fact chunk. */
static unsigned char *wav_of(const fake_kokoro_t *fk, const pcm_t *p, size_t *len)
{
    bool f = fk->o.float_audio;
    int ch = f ? 2 : 1, bps = f ? 4 : 2;
    size_t data = p->n * (size_t)(ch * bps);
    size_t head = f ? 12 + 26 + 12 + 8 : 12 + 24 + 12 + 8;
    unsigned char *buf = malloc(head + data), *w = buf;
    cr_assert_not_null(buf);
    tag4(&w, "RIFF"), put(&w, (uint32_t)(head - 8 + data), 4), tag4(&w, "WAVE");
    tag4(&w, "fmt "), put(&w, f ? 18 : 16, 4), put(&w, f ? 3 : 1, 2), put(&w, (uint32_t)ch, 2);
    put(&w, (uint32_t)p->rate, 4), put(&w, (uint32_t)(p->rate * ch * bps), 4);
    put(&w, (uint32_t)(ch * bps), 2), put(&w, (uint32_t)(8 * bps), 2);
    if (f)
        put(&w, 0, 2), tag4(&w, "fact"), put(&w, 4, 4), put(&w, (uint32_t)p->n, 4);
    else
        tag4(&w, "LIST"), put(&w, 4, 4), tag4(&w, "INFO");
    tag4(&w, "data"), put(&w, (uint32_t)data, 4);
    for (size_t i = 0; i < p->n; i++)
        for (int c = 0; c < ch; c++) {
            if (f) {
                uint32_t u;
                memcpy(&u, &p->s[i], 4);
                put(&w, u, 4);
            } else {
                put(&w, (uint32_t)(uint16_t)(int16_t)lrintf(p->s[i] * 32767.0f), 2);
            }
        }
    *len = head + data;
    return buf;
}

static char *b64(const unsigned char *p, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    cr_assert_not_null(out);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = a[v >> 18 & 63], *o++ = a[v >> 12 & 63];
        *o++ = i + 1 < n ? a[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? a[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* ---- requests ------------------------------------------------------------ */

/* The request fields as pydantic would check them; NULL when fine, else why. */
static const char *invalid(const json_t *req, bool captioned)
{
    const json_t *speed = json_object_get(req, "speed"), *ts;
    if (!json_is_object(req))
        return "body is not a JSON object";
    if (!json_is_string(json_object_get(req, "model")) ||
        strcmp(json_string_value(json_object_get(req, "model")), "kokoro") != 0)
        return "model must be \"kokoro\"";
    if (json_string_length(json_object_get(req, "input")) == 0)
        return "input must be a non-empty string";
    if (json_string_length(json_object_get(req, "voice")) == 0)
        return "voice must be a non-empty string";
    if (!json_is_string(json_object_get(req, "response_format")) ||
        strcmp(json_string_value(json_object_get(req, "response_format")), "wav") != 0)
        return "this fake only serves response_format \"wav\"";
    if (!json_is_number(speed) || json_number_value(speed) < 0.25 || json_number_value(speed) > 4.0)
        return "speed must be a number in 0.25..4.0";
    if (!json_is_false(json_object_get(req, "stream")))
        return "stream must be false (this fake does not stream)";
    if (captioned && (ts = json_object_get(req, "return_timestamps")) && !json_is_true(ts))
        return "return_timestamps must be true";
    return NULL;
}

static void serve(fake_kokoro_t *fk, int fd, const char *path, const char *body)
{
    bool captioned = strcmp(path, "/dev/captioned_speech") == 0;
    if (fk->o.mode == FAKE_KOKORO_FAIL) {
        const char *e = "{\"detail\":{\"error\":\"processing_error\",\"message\":\"model "
                        "exploded\",\"type\":\"server_error\"}}";
        respond(fd, 500, "application/json", e, strlen(e));
        return;
    }
    if ((!captioned && strcmp(path, "/v1/audio/speech") != 0) ||
        (captioned && fk->o.mode == FAKE_KOKORO_NO_CAPTIONS)) {
        respond(fd, 404, "application/json", "{\"detail\":\"Not Found\"}", 22);
        return;
    }
    json_t *req = json_loads(body, 0, NULL);
    const char *why = invalid(req, captioned);
    if (why) {
        char *e = NULL;
        cr_assert(asprintf(&e, "{\"detail\":\"%s\"}", why) > 0);
        respond(fd, 422, "application/json", e, strlen(e));
        free(e);
        json_decref(req);
        return;
    }
    pcm_t p;
    json_t *ts = speak(fk, json_string_value(json_object_get(req, "input")), &p);
    size_t wlen = 0;
    unsigned char *wav = wav_of(fk, &p, &wlen);
    if (captioned) {
        char *a = b64(wav, wlen);
        json_t *resp =
            json_pack("{s:s, s:s, s:O}", "audio", a, "audio_format", "audio/wav", "timestamps", ts);
        char *s = json_dumps(resp, JSON_COMPACT);
        respond(fd, 200, "application/json", s, strlen(s));
        free(s), free(a);
        json_decref(resp);
    } else {
        respond(fd, 200, "audio/wav", (const char *)wav, wlen);
    }
    json_decref(ts), json_decref(req);
    free(wav), free(p.s);
}

/* Reads until want bytes are in buf, or only up to the end of the head when
 * head_only; false when the peer goes, we stop, or it idles for 5 s. */
static bool read_more(fake_kokoro_t *fk, int fd, char *buf, size_t *have, size_t want,
                      bool head_only)
{
    int idle = 0;
    while (*have < want) {
        struct pollfd pf = {fd, POLLIN, 0};
        int r = poll(&pf, 1, 50);
        if (stopping(fk) || (r == 0 && ++idle > 100))
            return false;
        if (r <= 0)
            continue;
        ssize_t n = recv(fd, buf + *have, want - *have, 0);
        if (n <= 0)
            return false;
        *have += (size_t)n, idle = 0;
        buf[*have] = '\0';
        if (head_only && strstr(buf, "\r\n\r\n"))
            return true;
    }
    return true;
}

static char *header(const char *head, const char *name)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n"))
        if (strncasecmp(l + 2, name, nl) == 0 && l[2 + nl] == ':') {
            const char *v = l + 3 + nl, *e = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            return strndup(v, (size_t)(e - v));
        }
    return NULL;
}

static void handle(fake_kokoro_t *fk, int fd)
{
    char *buf = malloc(MAX_HEAD + MAX_BODY + 2), method[16] = "", path[256] = "";
    size_t have = 0;
    cr_assert_not_null(buf);
    buf[0] = '\0';
    if (!read_more(fk, fd, buf, &have, MAX_HEAD, true) || !strstr(buf, "\r\n\r\n")) {
        free(buf);
        return;
    }
    char *end = strstr(buf, "\r\n\r\n") + 4, *cl = header(buf, "Content-Length");
    char *auth = header(buf, "Authorization");
    size_t head = (size_t)(end - buf), blen = cl ? strtoul(cl, NULL, 10) : 0;
    sscanf(buf, "%15s %255s", method, path);
    free(cl);
    if (blen > MAX_BODY || !read_more(fk, fd, buf, &have, head + blen, false)) {
        free(auth), free(buf);
        return;
    }
    pthread_mutex_lock(&fk->mu);
    fk->nreq++;
    free(fk->path), free(fk->body), free(fk->auth);
    fk->path = strdup(path), fk->body = strndup(end, blen), fk->auth = auth;
    pthread_mutex_unlock(&fk->mu);
    if (fk->o.mode == FAKE_KOKORO_HANG) { /* until the client gives up */
        char c;
        while (!stopping(fk)) {
            struct pollfd pf = {fd, POLLIN, 0};
            if (poll(&pf, 1, 50) > 0 && recv(fd, &c, 1, 0) <= 0)
                break;
        }
    } else if (strcmp(method, "POST") != 0) {
        respond(fd, 405, "application/json", "{\"detail\":\"Method Not Allowed\"}", 31);
    } else {
        end[blen] = '\0';
        serve(fk, fd, path, end);
    }
    free(buf);
}

static void *loop(void *arg)
{
    fake_kokoro_t *fk = arg;
    while (!stopping(fk)) {
        struct pollfd pf = {fk->fd, POLLIN, 0};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int c = accept(fk->fd, NULL, NULL);
        if (c < 0)
            continue;
        handle(fk, c);
        close(c);
    }
    return NULL;
}

fake_kokoro_t *fake_kokoro_start(const fake_kokoro_opts_t *o)
{
    fake_kokoro_t *fk = calloc(1, sizeof *fk);
    cr_assert_not_null(fk);
    fk->o = o ? *o : (fake_kokoro_opts_t){0};
    if (fk->o.sample_rate <= 0)
        fk->o.sample_rate = 24000;
    pthread_mutex_init(&fk->mu, NULL);
    fk->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fk->fd, 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                            .sin_port = htons((uint16_t)fk->o.port)};
    socklen_t al = sizeof a;
    int one = 1;
    setsockopt(fk->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    cr_assert_eq(bind(fk->fd, (struct sockaddr *)&a, sizeof a), 0, "bind: %s", strerror(errno));
    cr_assert_eq(listen(fk->fd, 16), 0);
    cr_assert_eq(getsockname(fk->fd, (struct sockaddr *)&a, &al), 0);
    fk->port = ntohs(a.sin_port);
    snprintf(fk->url, sizeof fk->url, "http://127.0.0.1:%d", fk->port);
    cr_assert_eq(pthread_create(&fk->thread, NULL, loop, fk), 0);
    return fk;
}

const char *fake_kokoro_url(const fake_kokoro_t *fk)
{
    return fk->url;
}

int fake_kokoro_port(const fake_kokoro_t *fk)
{
    return fk->port;
}

size_t fake_kokoro_requests(fake_kokoro_t *fk)
{
    pthread_mutex_lock(&fk->mu);
    size_t n = fk->nreq;
    pthread_mutex_unlock(&fk->mu);
    return n;
}

static char *copy_field(fake_kokoro_t *fk, char **field)
{
    pthread_mutex_lock(&fk->mu);
    char *c = *field ? strdup(*field) : NULL;
    pthread_mutex_unlock(&fk->mu);
    return c;
}

char *fake_kokoro_last_path(fake_kokoro_t *fk)
{
    return copy_field(fk, &fk->path);
}

char *fake_kokoro_last_body(fake_kokoro_t *fk)
{
    return copy_field(fk, &fk->body);
}

char *fake_kokoro_last_auth(fake_kokoro_t *fk)
{
    return copy_field(fk, &fk->auth);
}

void fake_kokoro_stop(fake_kokoro_t **fkp)
{
    if (!fkp || !*fkp)
        return;
    fake_kokoro_t *fk = *fkp;
    pthread_mutex_lock(&fk->mu);
    fk->stop = true;
    pthread_mutex_unlock(&fk->mu);
    pthread_join(fk->thread, NULL);
    close(fk->fd);
    pthread_mutex_destroy(&fk->mu);
    free(fk->path), free(fk->body), free(fk->auth);
    free(fk);
    *fkp = NULL;
}
