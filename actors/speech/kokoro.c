/* kokoro.c - one text spoken by a Kokoro-FastAPI server (see kokoro.h): the
 * HTTP exchange, the decoding of its answer (JSON, base64, WAV), and the
 * mapping of its timestamp words back to byte offsets in our text.
 *
 * The wire format, as read in remsky/Kokoro-FastAPI:
 *  - api/src/structures/schemas.py: CaptionedSpeechRequest {model, input,
 *    voice, response_format, speed (0.25..4.0), stream (default TRUE),
 *    return_timestamps (default true), lang_code, volume_multiplier,
 *    normalization_options}; CaptionedSpeechResponse {audio: base64 of the
 *    file, audio_format: the content type ("audio/wav", not "wav"),
 *    timestamps: [WordTimestamp {word, start_time, end_time}] in SECONDS
 *    from the start of the audio, or null}.
 *  - api/src/routers/development.py: POST /dev/captioned_speech with
 *    "stream": false answers that object as one JSON document (with stream
 *    true it is a stream of them, which we never ask for).
 *  - OpenAISpeechRequest for POST /v1/audio/speech has the same fields minus
 *    return_timestamps, also streams by default, and answers the audio bytes.
 * The timestamp words are the server's tokens after its own normalisation:
 * punctuation comes as separate entries, "3" may come back as "three" and a
 * hyphenated word as two entries, so words are searched for in the text,
 * not counted. */
#include "actors/speech/kokoro.h"
#include "runtime/clock.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include "runtime/outbound.h"

#include <jansson.h>

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAPTIONED_PATH "/dev/captioned_speech"
#define SPEECH_PATH "/v1/audio/speech"
/* How many written words past the last match a timestamp word is looked for
 * before it is taken to be one the server made up (a number spelt out, an
 * abbreviation expanded); counted in words, not bytes, so a long URL the
 * server dropped does not hide the words after it. */
#define SEARCH_WORDS 4

static pthread_once_t client_once = PTHREAD_ONCE_INIT;
static outbound_t *client;
static int client_err;

/* One outbound client for every Kokoro call of the process, started by the
 * first. Its URL is the operator's (KOKORO_URL), never a user's, so no
 * address is refused and the environment's proxy is used except for a
 * local server, as with curl's defaults before. It lives as long as the
 * process, like libcurl's own global state. */
static void client_start(void)
{
    outbound_opts_t o = {.max_total = 64,
                         .allow_any_address = true,
                         .proxy_from_env = true,
                         .user_agent = "fenta-tts"};
    client = outbound_new(&o, NULL, NULL, &client_err);
}

typedef struct server {
    char *base;          /* the URL without trailing "/" or "/v1"; ours */
    const char *api_key; /* sent as a bearer token when set; borrowed from the config */
    long timeout_ms;     /* the caller's total, for messages */
    long budget_ms;      /* what is left of it for the next request */
} server_t;

typedef struct body {
    char *p;  /* NUL-terminated, or NULL when empty; ours */
    size_t n; /* bytes */
} body_t;

/* "Kokoro at URL: " + message, into errbuf; returns code. fmt is a literal. */
#define kfail(errbuf, errlen, sv, code, fmt, ...)                                                  \
    fenta_fail(errbuf, errlen, code, "Kokoro at %s: " fmt, (sv)->base, ##__VA_ARGS__)

static int server_parse(const char *url, long timeout_ms, server_t *sv, char *errbuf, size_t errlen)
{
    *sv = (server_t){.timeout_ms = timeout_ms, .budget_ms = timeout_ms};
    char why[256];
    int rc = outbound_check_url(url, why, sizeof why);
    if (rc == FENTA_EINVAL)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "Kokoro: kokoro_url '%s' is not an http:// or https:// URL", url);
    if (rc != 0)
        return fenta_fail(errbuf, errlen, rc, "Kokoro: %s", why);
    sv->base = strdup(url);
    if (!sv->base)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "Kokoro: out of memory");
    /* People paste the OpenAI-style base ("http://host:8880/v1"); both our
     * paths are absolute from the server root. */
    size_t n = strlen(sv->base);
    while (n > 0 && sv->base[n - 1] == '/')
        sv->base[--n] = '\0';
    if (n >= 3 && strcmp(sv->base + n - 3, "/v1") == 0)
        sv->base[n -= 3] = '\0';
    while (n > 0 && sv->base[n - 1] == '/')
        sv->base[--n] = '\0';
    return 0;
}

/* The first 200 bytes of an answer, on one line, cut on a UTF-8 boundary. */
static void excerpt(const body_t *b, char *dst, size_t cap)
{
    size_t n = b->n < 200 ? b->n : 200;
    if (n >= cap)
        n = cap - 1;
    while (n > 0 && n < b->n && ((unsigned char)b->p[n] & 0xC0) == 0x80)
        n--;
    for (size_t i = 0; i < n; i++)
        dst[i] = (unsigned char)b->p[i] < 0x20 ? ' ' : b->p[i];
    dst[n] = '\0';
}

/* POSTs json to base+path through the outbound client, waiting on this
 * (render) thread; 0 with *status and *resp set (any status), or a Fenta
 * code when no HTTP answer came. */
static int post(const server_t *sv, const char *path, const char *json, body_t *resp, long *status,
                char *errbuf, size_t errlen)
{
    char *url = NULL, *auth = NULL;
    const char *key = sv->api_key;
    if (asprintf(&url, "%s%s", sv->base, path) < 0)
        url = NULL; /* asprintf leaves it undefined on failure */
    if (key && *key && asprintf(&auth, "Authorization: Bearer %s", key) < 0)
        auth = NULL;
    if (!url || (key && *key && !auth)) {
        free(url);
        return kfail(errbuf, errlen, sv, FENTA_ENOMEM, "out of memory");
    }
    const char *lines[] = {"Content-Type: application/json", auth, NULL};
    outbound_request_t q = {
        .key = sv->base, /* one FIFO per server: its calls queue, others' do not */
        .method = "POST",
        .url = url,
        .headers = lines,
        .body = json,
        .body_len = strlen(json),
        .connect_timeout_ms =
            sv->budget_ms < KOKORO_CONNECT_TIMEOUT_MS ? sv->budget_ms : KOKORO_CONNECT_TIMEOUT_MS,
        .total_timeout_ms = sv->budget_ms,
        .max_body = KOKORO_MAX_RESPONSE,
        .whole_body = true};
    outbound_result_t r;
    int rc = outbound_do(client, &q, &r);
    free(url);
    free(auth);
    if (rc != 0)
        return kfail(errbuf, errlen, sv, rc, "POST %s: %s", path, fenta_strerror(rc));
    switch (r.outcome) {
    case OUTBOUND_OK:
    case OUTBOUND_HTTP_ERROR:
        *status = r.status;
        resp->p = (char *)r.body; /* ours now: outbound_do's result is the caller's */
        resp->n = r.body_len;
        r.body = NULL;
        break;
    case OUTBOUND_TOO_BIG:
        rc = kfail(errbuf, errlen, sv, FENTA_ETOOBIG, "POST %s: the answer is over %ld bytes", path,
                   KOKORO_MAX_RESPONSE);
        break;
    case OUTBOUND_NOMEM:
        rc = kfail(errbuf, errlen, sv, FENTA_ENOMEM, "POST %s: out of memory", path);
        break;
    case OUTBOUND_TIMEOUT:
        rc = kfail(errbuf, errlen, sv, FENTA_ETIMEOUT, "POST %s: no answer within %ld ms (%s)",
                   path, sv->timeout_ms, r.error);
        break;
    default:
        rc = kfail(errbuf, errlen, sv, FENTA_EUNAVAILABLE, "POST %s failed: %s", path, r.error);
        break;
    }
    outbound_result_free(&r);
    return rc;
}

static int http_fail(const server_t *sv, const char *path, long status, const body_t *b,
                     char *errbuf, size_t errlen)
{
    char ex[256];
    excerpt(b, ex, sizeof ex);
    int code = status == 400 || status == 422                    ? FENTA_EINVAL
               : status == 401 || status == 403                  ? FENTA_EAUTH
               : status == 404 || status == 429 || status >= 500 ? FENTA_EUNAVAILABLE
                                                                 : FENTA_EIO;
    return kfail(errbuf, errlen, sv, code, "POST %s answered HTTP %ld%s%s%s", path, status,
                 status >= 300 && status < 400 ? " (redirects are not followed)" : "",
                 ex[0] ? ": " : "", ex);
}

/* ---- decoding ------------------------------------------------------------ */

/* Standard or URL-safe base64, whitespace ignored; NULL when malformed. */
static unsigned char *b64_decode(const char *s, size_t len, size_t *out_len)
{
    size_t cap = len / 4 * 3 + 3;
    unsigned char *out = malloc(cap);
    if (out && crypto_b64_decode(CRYPTO_B64_ANY, s, len, out, cap, out_len) != 0) {
        free(out);
        out = NULL;
    }
    return out;
}

static uint32_t le(const unsigned char *p, int bytes)
{
    uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* One sample at p as a value on the 16-bit scale. */
static double sample_at(const unsigned char *p, bool is_float, int bits)
{
    if (is_float && bits == 32) {
        uint32_t u = le(p, 4);
        float f;
        memcpy(&f, &u, sizeof f);
        return isfinite(f) ? f * 32768.0 : 0;
    }
    if (is_float) {
        uint64_t u = (uint64_t)le(p + 4, 4) << 32 | le(p, 4);
        double d;
        memcpy(&d, &u, sizeof d);
        return isfinite(d) ? d * 32768.0 : 0;
    }
    switch (bits) {
    case 8:
        return ((int)p[0] - 128) * 256.0;
    case 16:
        return (int16_t)le(p, 2);
    case 24:
        return (int32_t)(le(p, 3) << 8) / 65536.0;
    default:
        return (int32_t)le(p, 4) / 65536.0;
    }
}

/* A RIFF/WAVE file (PCM 8/16/24/32-bit or IEEE float 32/64-bit, plain or
 * WAVE_FORMAT_EXTENSIBLE, any channels) to 16-bit mono. A data chunk whose
 * size is 0 or past the end (a streaming writer's header) runs to the end of
 * the file. Returns NULL with *why set when it is not such a file. */
static int16_t *wav_decode(const unsigned char *p, size_t n, size_t *ns, int *rate,
                           const char **why)
{
    int tag = 0, ch = 0, bits = 0;
    const unsigned char *data = NULL;
    size_t dlen = 0;
    *why = "not a RIFF/WAVE file";
    if (n < 12 || memcmp(p, "RIFF", 4) != 0 || memcmp(p + 8, "WAVE", 4) != 0)
        return NULL;
    for (size_t off = 12; off + 8 <= n && !data;) {
        size_t sz = le(p + off + 4, 4), body = off + 8;
        if (memcmp(p + off, "data", 4) == 0) {
            data = p + body;
            dlen = sz == 0 || sz > n - body ? n - body : sz;
        } else if (sz > n - body) {
            break;
        } else if (memcmp(p + off, "fmt ", 4) == 0 && sz >= 16) {
            tag = (int)le(p + body, 2), ch = (int)le(p + body + 2, 2);
            *rate = (int)le(p + body + 4, 4), bits = (int)le(p + body + 14, 2);
            if (tag == 0xFFFE && sz >= 40) /* the sub-format GUID starts with the real tag */
                tag = (int)le(p + body + 24, 2);
        }
        off = body + sz + (sz & 1);
    }
    bool is_float = tag == 3;
    *why = "unsupported WAV format (want PCM 8/16/24/32-bit or float 32/64-bit)";
    if (!data || (tag != 1 && !is_float) || ch < 1 || ch > 64 || *rate < 1000 || *rate > 768000 ||
        (is_float ? bits != 32 && bits != 64 : bits % 8 || bits < 8 || bits > 32))
        return NULL;
    size_t bps = (size_t)bits / 8, frame = bps * (size_t)ch, frames = dlen / frame;
    int16_t *pcm = malloc((frames ? frames : 1) * sizeof *pcm);
    *why = "out of memory";
    if (!pcm)
        return NULL;
    for (size_t i = 0; i < frames; i++) {
        double acc = 0;
        for (int c = 0; c < ch; c++)
            acc += sample_at(data + i * frame + (size_t)c * bps, is_float, bits);
        double v = nearbyint(acc / ch);
        pcm[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
    }
    *ns = frames;
    return pcm;
}

/* ---- timestamp words to byte offsets --------------------------------------- */

static bool word_byte(unsigned char c)
{
    return isalnum(c) || c >= 0x80;
}

/* The end of the SEARCH_WORDS-th whitespace-delimited word from from on (the
 * rest of a word from is inside counts as the first). */
static size_t window_end(const char *text, size_t len, size_t from)
{
    size_t i = from;
    for (int k = 0; k < SEARCH_WORDS && i < len; k++) {
        while (i < len && isspace((unsigned char)text[i]))
            i++;
        while (i < len && !isspace((unsigned char)text[i]))
            i++;
    }
    return i;
}

/* Where word w (edge punctuation already stripped) starts in text at or
 * after from, within the next SEARCH_WORDS words, as a whole word
 * (case-insensitive for ASCII); len when it is not there. */
static size_t find_word(const char *text, size_t len, size_t from, const char *w, size_t wl)
{
    size_t end = window_end(text, len, from);
    for (size_t i = from; i + wl <= end; i++) {
        if (i > from && word_byte((unsigned char)text[i - 1]))
            continue;
        if (i + wl < len && word_byte((unsigned char)text[i + wl]))
            continue;
        size_t k = 0;
        while (k < wl && tolower((unsigned char)text[i + k]) == tolower((unsigned char)w[k]))
            k++;
        if (k == wl)
            return i;
    }
    return len;
}

/* Bytes of punctuation at the start (or end) of w[0..wl): one ASCII mark or
 * one of the typographic quotes and dashes a normaliser leaves in; 0 if none. */
static size_t edge_punct(const char *w, size_t wl, bool at_start)
{
    static const char *const u[] = {"\u2018", "\u2019", "\u201C", "\u201D", "\u2026",
                                    "\u2013", "\u2014", "\u00AB", "\u00BB"};
    unsigned char c = (unsigned char)(at_start ? w[0] : w[wl - 1]);
    if (c < 0x80)
        return isalnum(c) ? 0 : 1;
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        size_t l = strlen(u[i]);
        if (l <= wl && memcmp(at_start ? w : w + wl - l, u[i], l) == 0)
            return l;
    }
    return 0;
}

static size_t skip_space(const char *text, size_t len, size_t i)
{
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    return i;
}

/* The server's timestamps as timings into text. A word not found near the
 * last match (the server spelt out "3", expanded "Mr.") keeps its time: it
 * goes to the text just after the last match, which is the written word the
 * server replaced or, when there is none, the next found word. */
static int timings_from(const json_t *ts, const char *text, tts__timing_t **out, size_t *nout)
{
    size_t len = strlen(text), n = 0, cursor = 0, idx;
    tts__timing_t *t = malloc((2 * json_array_size(ts) + 1) * sizeof *t);
    if (!t)
        return FENTA_ENOMEM;
    int64_t pend_start = -1, pend_end = -1;
    json_t *e;
    json_array_foreach(ts, idx, e)
    {
        const char *w = json_string_value(json_object_get(e, "word"));
        const json_t *js = json_object_get(e, "start_time"), *jf = json_object_get(e, "end_time");
        double s = json_number_value(js), f = json_is_number(jf) ? json_number_value(jf) : s;
        if (!w || !json_is_number(js) || !isfinite(s) || !isfinite(f) || s < 0 || s > 1e7)
            continue;
        size_t wl = strlen(w), k;
        while (wl > 0 && (k = edge_punct(w, wl, true)) > 0)
            w += k, wl -= k;
        while (wl > 0 && (k = edge_punct(w, wl, false)) > 0)
            wl -= k;
        if (wl == 0)
            continue; /* punctuation: a pause, not a word */
        int64_t start = llround(s * 1000), end = f > s && f < 1e7 ? llround(f * 1000) : start;
        size_t at = find_word(text, len, cursor, w, wl);
        if (at == len) {
            if (pend_start < 0)
                pend_start = start;
            pend_end = end > pend_end ? end : pend_end;
            continue;
        }
        if (pend_start >= 0)
            t[n++] = (tts__timing_t){skip_space(text, len, cursor), pend_start, pend_end};
        t[n++] = (tts__timing_t){at, start, end};
        cursor = at + wl;
        pend_start = pend_end = -1;
    }
    if (pend_start >= 0 && skip_space(text, len, cursor) < len)
        t[n++] = (tts__timing_t){skip_space(text, len, cursor), pend_start, pend_end};
    *out = t;
    *nout = n;
    return 0;
}

/* ---- the exchange -------------------------------------------------------- */

static char *request_json(const tts_config_t *cfg, const char *text, bool captioned)
{
    /* "stream": false, or both endpoints answer a chunked stream of parts. */
    json_t *req =
        json_pack("{s:s, s:s, s:s, s:s, s:f, s:b}", "model", "kokoro", "input", text, "voice",
                  cfg->kokoro_voice, "response_format", "wav", "speed", cfg->speed, "stream", 0);
    if (req && captioned)
        json_object_set_new(req, "return_timestamps", json_true());
    char *s = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    return s;
}

/* The audio and timestamps of a /dev/captioned_speech answer; *ts borrowed
 * from *root (the caller's, json_decref), NULL when the server sent none. */
static int parse_captioned(const server_t *sv, const body_t *b, json_t **root, unsigned char **wav,
                           size_t *wav_len, const json_t **ts, char *errbuf, size_t errlen)
{
    json_error_t je;
    *root = json_loadb(b->p ? b->p : "", b->n, 0, &je);
    const char *audio = json_string_value(json_object_get(*root, "audio"));
    if (!audio)
        return kfail(errbuf, errlen, sv, FENTA_EIO,
                     "POST " CAPTIONED_PATH ": the answer is not JSON with \"audio\" (%s)",
                     *root ? "no audio field" : je.text);
    *wav = b64_decode(audio, json_string_length(json_object_get(*root, "audio")), wav_len);
    if (!*wav)
        return kfail(errbuf, errlen, sv, FENTA_EIO,
                     "POST " CAPTIONED_PATH ": \"audio\" is not base64");
    const json_t *t = json_object_get(*root, "timestamps");
    *ts = json_is_array(t) && json_array_size(t) > 0 ? t : NULL;
    return 0;
}

static int64_t now_ms(void)
{
    return clock_mono_us() / 1000;
}

int kokoro_synth(const tts_config_t *cfg, const char *text, const char *wav_path, tts_result_t *out,
                 char *errbuf, size_t errlen)
{
    if (!cfg || !cfg->kokoro_url || !*cfg->kokoro_url || !text || !wav_path || !out)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "Kokoro: no URL, text or WAV path");
    pthread_once(&client_once, client_start);
    if (!client)
        return fenta_fail(errbuf, errlen, FENTA_EUNAVAILABLE,
                          "Kokoro: the outbound HTTP client failed to start (%s)",
                          fenta_strerror(client_err));
    server_t sv;
    int rc = server_parse(cfg->kokoro_url, cfg->timeout_ms, &sv, errbuf, errlen);
    if (rc != 0)
        return rc;
    sv.api_key = cfg->kokoro_api_key;
    body_t b = {0};
    json_t *root = NULL;
    const json_t *ts = NULL;
    unsigned char *wav = NULL;
    size_t wav_len = 0, ns = 0, nt = 0;
    int16_t *pcm = NULL;
    tts__timing_t *t = NULL;
    long status = 0;
    int rate = 0;
    const char *path = CAPTIONED_PATH, *why = NULL;
    bool captioned = true;
    char *json = request_json(cfg, text, true);
    if (!json) {
        rc = kfail(errbuf, errlen, &sv, FENTA_EINVAL, "cannot encode the request (bad voice?)");
        goto out;
    }
    int64_t t0 = now_ms();
    rc = post(&sv, path, json, &b, &status, errbuf, errlen);
    if (rc == 0 && status == 404) { /* a server without the captioned endpoint */
        /* timeout_ms bounds the whole call, fallback included */
        sv.budget_ms = sv.timeout_ms - (long)(now_ms() - t0);
        if (sv.budget_ms <= 0) {
            rc = kfail(errbuf, errlen, &sv, FENTA_ETIMEOUT, "no answer within %ld ms",
                       sv.timeout_ms);
            goto out;
        }
        free(json), free(b.p);
        b = (body_t){0};
        path = SPEECH_PATH;
        captioned = false;
        if (!(json = request_json(cfg, text, false))) {
            rc = kfail(errbuf, errlen, &sv, FENTA_ENOMEM, "out of memory");
            goto out;
        }
        rc = post(&sv, path, json, &b, &status, errbuf, errlen);
    }
    if (rc == 0 && (status < 200 || status > 299))
        rc = http_fail(&sv, path, status, &b, errbuf, errlen);
    if (rc == 0 && captioned)
        rc = parse_captioned(&sv, &b, &root, &wav, &wav_len, &ts, errbuf, errlen);
    if (rc != 0)
        goto out;
    pcm = captioned ? wav_decode(wav, wav_len, &ns, &rate, &why)
                    : wav_decode((unsigned char *)b.p, b.n, &ns, &rate, &why);
    if (!pcm) {
        rc = kfail(errbuf, errlen, &sv, FENTA_EIO, "POST %s: the audio is unusable: %s", path, why);
        goto out;
    }
    if (ns == 0) {
        rc = kfail(errbuf, errlen, &sv, FENTA_EIO, "POST %s: the audio is empty", path);
        goto out;
    }
    if (ts)
        rc = timings_from(ts, text, &t, &nt);
    if (rc == 0 && ts)
        rc = tts__marks_build(text, t, nt, pcm, ns, rate, out);
    if (rc == 0 && out->nmarks == 0) { /* no times, or none of them matched the text */
        tts_result_free(out);
        out->estimated_timing = true;
        rc = tts__marks_spread(text, pcm, ns, rate, out);
    }
    if (rc != 0) {
        rc = kfail(errbuf, errlen, &sv, FENTA_ENOMEM, "out of memory");
        goto out;
    }
    rc = tts__wav_write(wav_path, pcm, ns, rate, errbuf, errlen);
    if (rc == 0) {
        out->duration_ms = (int64_t)((uint64_t)ns * 1000 / (uint64_t)rate);
        out->sample_rate = rate;
        strcpy(out->engine, "kokoro");
    }
out:
    json_decref(root);
    free(json), free(b.p), free(wav), free(pcm), free(t), free(sv.base);
    return rc;
}
