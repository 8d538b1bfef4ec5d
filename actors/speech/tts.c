/* tts.c - the front door of text to speech (see tts.h): checks the input,
 * picks the engine, and holds what both engines share: turning their timings
 * into word marks with byte offsets, measuring where the audio is silent, and
 * writing the WAV file durably. */
#include "actors/speech/tts.h"
#include "actors/speech/kokoro.h"
#include "actors/media/wav.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include "runtime/vec.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A 10 ms window of audio is silent when its RMS is below this fraction of
 * the loudest window's, or below the absolute floor (so near-digital silence
 * counts as silence even in a quiet recording). The ratio is low enough that
 * a fading fricative ("s", "f") still counts as the word's sound. */
#define SILENCE_RATIO 0.02
#define SILENCE_FLOOR 20.0
/* Gaps shorter than this inside voiced audio are stop consonants, not
 * pauses between words (used when spreading words without engine times). */
#define MERGE_GAP_MS 80

/* ---- UTF-8 and words ----------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4; avail bytes readable), or 0
 * for an invalid one (overlong forms, surrogates and > U+10FFFF included). */
static size_t utf8_seq(const unsigned char *s, size_t avail, uint32_t *cp)
{
    uint32_t c = s[0];
    size_t len;
    uint32_t min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, min = 0x80, c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, min = 0x800, c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (avail < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

static bool is_space_cp(uint32_t c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || c == 0xA0 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x202F || c == 0x3000;
}

/* Punctuation stripped from the ends of a token to get the spoken word:
 * "(Hello," is the word "Hello". Inner punctuation stays ("don't", "1,234"). */
static bool is_edge_punct_cp(uint32_t c)
{
    if (c < 0x80)
        return c != 0 && strchr(".,;:!?\"'()[]{}<>*_~`-", (int)c) != NULL;
    static const uint32_t u[] = {0xA1,   0xAB,   0xBB,   0xBF,   0x2013, 0x2014, 0x2018, 0x2019,
                                 0x201C, 0x201D, 0x2026, 0x3001, 0x3002, 0x300C, 0x300D, 0x300E,
                                 0x300F, 0xFF01, 0xFF08, 0xFF09, 0xFF0C, 0xFF1A, 0xFF1B, 0xFF1F};
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        if (u[i] == c)
            return true;
    return false;
}

typedef struct token {
    size_t b, e;   /* the whitespace-delimited token [b, e) */
    size_t wb, we; /* the word inside it, edge punctuation trimmed (the token if all punctuation) */
    size_t ncp;    /* code points in the word */
    bool wordy;    /* the word has something to say (not punctuation only) */
} token_t;

/* The tokens of (valid UTF-8) text; *ntok set. NULL when out of memory. */
static token_t *tokenize(const char *text, size_t *ntok)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text), cap = 0, n = 0, i = 0;
    token_t *t = NULL;
    /* Some room now, so an empty text still answers an (empty) array: NULL
     * means out of memory. */
    if (vec_reserve(t, cap, 16) != 0)
        return NULL;
    while (i < len) {
        uint32_t c = 0;
        size_t l = utf8_seq(s + i, len - i, &c);
        if (l == 0)
            l = 1, c = 0xFFFD; /* callers validate; be safe anyway */
        if (is_space_cp(c)) {
            i += l;
            continue;
        }
        if (vec_reserve(t, cap, n + 1) != 0) {
            free(t);
            return NULL;
        }
        token_t *k = &t[n++];
        *k = (token_t){.b = i, .wb = SIZE_MAX};
        size_t last_end = i; /* end of the last non-punctuation code point */
        while (i < len) {
            l = utf8_seq(s + i, len - i, &c);
            if (l == 0)
                l = 1, c = 0xFFFD;
            if (is_space_cp(c))
                break;
            if (!is_edge_punct_cp(c)) {
                if (k->wb == SIZE_MAX)
                    k->wb = i;
                last_end = i + l;
            }
            i += l;
        }
        k->e = i;
        k->wordy = k->wb != SIZE_MAX;
        if (k->wordy)
            k->we = last_end;
        else
            k->wb = k->b, k->we = k->e;
        for (size_t j = k->wb; j < k->we; j++) /* lead bytes: one per code point */
            k->ncp += (s[j] & 0xC0) != 0x80;
    }
    *ntok = n;
    return t;
}

/* Index of the token holding byte off, or of the first one after it when off
 * is in the whitespace between; ntok when there is none. */
static size_t token_at(const token_t *t, size_t ntok, size_t off)
{
    size_t lo = 0, hi = ntok; /* first token with e > off */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t[mid].e > off)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* ---- where the audio is silent ------------------------------------------- */

typedef struct level {
    const int16_t *pcm;
    size_t n;   /* samples */
    size_t w;   /* window, samples (10 ms) */
    int rate;   /* Hz */
    double thr; /* RMS below this is silence */
} level_t;

static double rms(const level_t *lv, size_t from, size_t to)
{
    if (to > lv->n)
        to = lv->n;
    if (from >= to)
        return 0;
    double acc = 0;
    for (size_t i = from; i < to; i++)
        acc += (double)lv->pcm[i] * lv->pcm[i];
    return sqrt(acc / (double)(to - from));
}

static level_t level_of(const int16_t *pcm, size_t n, int rate)
{
    level_t lv = {pcm, n, rate >= 100 ? (size_t)rate / 100 : 1, rate, 0};
    double peak = 0;
    for (size_t i = 0; i < n; i += lv.w) {
        double r = rms(&lv, i, i + lv.w);
        if (r > peak)
            peak = r;
    }
    lv.thr = fmax(peak * SILENCE_RATIO, SILENCE_FLOOR);
    return lv;
}

static size_t ms_to_sample(const level_t *lv, int64_t ms)
{
    size_t s = (size_t)(ms < 0 ? 0 : ms) * (size_t)lv->rate / 1000;
    return s > lv->n ? lv->n : s;
}

static int64_t sample_to_ms(int rate, size_t s)
{
    return (int64_t)((uint64_t)s * 1000 / (uint64_t)rate);
}

/* The sample where the sound before `end` stops: end moved back over silent
 * 10 ms windows, never before floor. */
static size_t pull_back(const level_t *lv, size_t end, size_t floor)
{
    while (end >= floor + lv->w && rms(lv, end - lv->w, end) < lv->thr)
        end -= lv->w;
    return end < floor ? floor : end;
}

/* ---- marks --------------------------------------------------------------- */

/* Which token timing i belongs to: the one it points into; a timing in the
 * whitespace after a token continues that token (espeak-ng points the extra
 * words it says for "🙂" or "—" at the following space); never one before
 * the previous timing's (an engine looking back adds to the current word). */
static void assign_tokens(const token_t *tok, size_t ntok, const tts__timing_t *t, size_t n,
                          size_t *tk)
{
    size_t last = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = token_at(tok, ntok, t[i].offset);
        if (k > 0 && (k == ntok || tok[k].b > t[i].offset))
            k--;
        if (i > 0 && k < last)
            k = last;
        tk[i] = last = k;
    }
}

/* espeak-ng says a dictionary phrase ("déjà vu", "per se") as one word and
 * reports the second word's event one character into the first, so the
 * phrase's first token has two events and the next has none. When a token
 * has surplus timings and the wordy tokens right after it have none, the
 * surplus ones (the latest) go to those tokens in order. */
static void give_surplus(const token_t *tok, size_t ntok, size_t n, size_t *tk)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && tk[j] == tk[i])
            j++;
        size_t next = j < n ? tk[j] : ntok, skipped[8], ns = 0;
        for (size_t k = tk[i] + 1; k < next && ns < 8; k++)
            if (tok[k].wordy)
                skipped[ns++] = k;
        size_t move = j - i - 1 < ns ? j - i - 1 : ns;
        for (size_t q = 0; q < move; q++)
            tk[j - move + q] = skipped[q];
        i = j;
    }
}

int tts__marks_build(const char *text, const tts__timing_t *t, size_t n, const int16_t *pcm,
                     size_t nsamples, int rate, tts_result_t *out)
{
    size_t ntok = 0;
    token_t *tok = tokenize(text, &ntok);
    size_t *tk = malloc((n ? n : 1) * sizeof *tk);
    size_t *mtok = malloc((ntok ? ntok : 1) * sizeof *mtok); /* token of each mark */
    tts_mark_t *m = calloc(ntok ? ntok : 1, sizeof *m);
    tts_mark_t *all = calloc(ntok ? ntok : 1, sizeof *all);
    int64_t *known_end = calloc(ntok ? ntok : 1, sizeof *known_end);
    if (!tok || !tk || !mtok || !m || !all || !known_end) {
        free(tok), free(tk), free(mtok), free(m), free(all), free(known_end);
        return FENTA_ENOMEM;
    }
    level_t lv = level_of(pcm, nsamples, rate);
    int64_t dur = sample_to_ms(rate, nsamples);
    size_t nm = 0;
    if (ntok > 0) {
        assign_tokens(tok, ntok, t, n, tk);
        give_surplus(tok, ntok, n, tk);
    }
    for (size_t i = 0; i < n && ntok > 0; i++) {
        int64_t start = t[i].start_ms < 0 ? 0 : t[i].start_ms > dur ? dur : t[i].start_ms;
        int64_t end = t[i].end_ms < 0 ? -1 : t[i].end_ms > dur ? dur : t[i].end_ms;
        if (nm > 0 && tk[i] == mtok[nm - 1]) { /* more of the same word */
            known_end[nm - 1] = end > known_end[nm - 1] ? end : known_end[nm - 1];
            continue;
        }
        if (nm > 0 && start < m[nm - 1].start_ms)
            start = m[nm - 1].start_ms;
        m[nm] = (tts_mark_t){tok[tk[i]].wb, tok[tk[i]].we - tok[tk[i]].wb, start, start};
        known_end[nm] = end;
        mtok[nm++] = tk[i];
    }
    for (size_t i = 0; i < nm; i++) {
        int64_t next = i + 1 < nm ? m[i + 1].start_ms : dur;
        int64_t end;
        if (known_end[i] >= 0)
            end = known_end[i];
        else /* the voice stops before the next word's event when a pause sits between */
            end = sample_to_ms(
                rate, pull_back(&lv, ms_to_sample(&lv, next), ms_to_sample(&lv, m[i].start_ms)));
        if (end > next)
            end = next;
        m[i].end_ms = end < m[i].start_ms ? m[i].start_ms : end;
    }
    /* A wordy token the engine gave no timing ("e.g." after "U.S.A.") shares
     * the span of the mark before it (the first mark's, if it comes before
     * all), split by length, so every written word has a mark. */
    size_t na = 0;
    for (size_t i = 0; i < nm; i++) {
        size_t from = i == 0 ? 0 : mtok[i], to = i + 1 < nm ? mtok[i + 1] : ntok;
        double w = 0, acc = 0, span = (double)(m[i].end_ms - m[i].start_ms);
        for (size_t k = from; k < to; k++)
            w += tok[k].wordy || k == mtok[i] ? (double)tok[k].ncp : 0;
        for (size_t k = from; k < to; k++) {
            if (!tok[k].wordy && k != mtok[i])
                continue;
            int64_t s = m[i].start_ms + (int64_t)llround(acc / w * span);
            acc += (double)tok[k].ncp;
            int64_t e = m[i].start_ms + (int64_t)llround(acc / w * span);
            all[na++] = (tts_mark_t){tok[k].wb, tok[k].we - tok[k].wb, s, e};
        }
    }
    free(tok), free(tk), free(mtok), free(m), free(known_end);
    out->marks = all;
    out->nmarks = na;
    return 0;
}

typedef struct region {
    size_t a, b; /* voiced samples [a, b) */
} region_t;

/* Where x samples into the voiced audio falls in the whole audio. A start on
 * a region boundary goes to the next region, an end to the previous one, so
 * words never start or end in a pause. */
static double voiced_to_abs(const region_t *r, size_t nr, double x, bool is_start)
{
    double acc = 0;
    for (size_t i = 0; i < nr; i++) {
        double len = (double)(r[i].b - r[i].a);
        if (is_start ? x < acc + len : x <= acc + len)
            return (double)r[i].a + (x - acc);
        acc += len;
    }
    return (double)r[nr - 1].b;
}

int tts__marks_spread(const char *text, const int16_t *pcm, size_t nsamples, int rate,
                      tts_result_t *out)
{
    size_t ntok = 0;
    token_t *tok = tokenize(text, &ntok);
    size_t nwin = nsamples / (rate >= 100 ? (size_t)rate / 100 : 1) + 2;
    region_t *r = malloc(nwin * sizeof *r);
    tts_mark_t *m = calloc(ntok ? ntok : 1, sizeof *m);
    if (!tok || !r || !m) {
        free(tok), free(r), free(m);
        return FENTA_ENOMEM;
    }
    level_t lv = level_of(pcm, nsamples, rate);
    size_t nr = 0, gap = (size_t)rate * MERGE_GAP_MS / 1000;
    for (size_t i = 0; i < nsamples; i += lv.w) {
        if (rms(&lv, i, i + lv.w) < lv.thr)
            continue;
        size_t b = i + lv.w > nsamples ? nsamples : i + lv.w;
        if (nr > 0 && i - r[nr - 1].b < gap)
            r[nr - 1].b = b;
        else
            r[nr++] = (region_t){i, b};
    }
    if (nr == 0) /* nothing above the floor: spread over the whole audio */
        r[nr++] = (region_t){0, nsamples};
    double voiced = 0, weight = 0, cum = 0;
    for (size_t i = 0; i < nr; i++)
        voiced += (double)(r[i].b - r[i].a);
    for (size_t i = 0; i < ntok; i++)
        weight += tok[i].wordy ? (double)tok[i].ncp : 0;
    size_t nm = 0;
    for (size_t i = 0; i < ntok && weight > 0; i++) {
        if (!tok[i].wordy)
            continue;
        double x0 = cum / weight * voiced;
        cum += (double)tok[i].ncp;
        double x1 = cum / weight * voiced;
        int64_t s = sample_to_ms(rate, (size_t)voiced_to_abs(r, nr, x0, true));
        int64_t e = sample_to_ms(rate, (size_t)voiced_to_abs(r, nr, x1, false));
        if (nm > 0 && s < m[nm - 1].end_ms)
            s = m[nm - 1].end_ms;
        m[nm++] = (tts_mark_t){tok[i].wb, tok[i].we - tok[i].wb, s, e < s ? s : e};
    }
    free(tok), free(r);
    out->marks = m;
    out->nmarks = nm;
    return 0;
}

/* ---- the WAV file -------------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w, len -= (size_t)w;
    }
    return 0;
}

static int io_code(int err)
{
    return err == EACCES || err == EPERM || err == EROFS ? FENTA_EDENIED
           : err == ENOMEM                               ? FENTA_ENOMEM
                                                         : FENTA_EIO;
}

int tts__wav_write(const char *path, const int16_t *pcm, size_t nsamples, int rate, char *errbuf,
                   size_t errlen)
{
    uint64_t data = (uint64_t)nsamples * 2;
    if (data > UINT32_MAX - 36)
        return fenta_fail(errbuf, errlen, FENTA_ETOOBIG,
                          "WAV '%s': %zu samples do not fit in a WAV", path, nsamples);
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "WAV '%s': out of memory", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return fenta_fail(errbuf, errlen, io_code(e),
                          "WAV '%s': cannot create a file beside it: %s", path, strerror(e));
    }
    (void)fchmod(fd, 0644); /* mkstemp makes 0600; the render stages may run as another user */
    unsigned char h[WAV_HEADER_BYTES];
    wav_header(h, rate, 1, (uint32_t)data);
    int rc = write_all(fd, h, sizeof h);
    unsigned char buf[8192]; /* samples as little-endian bytes, whatever the host */
    for (size_t i = 0; rc == 0 && i < nsamples;) {
        size_t k = 0;
        for (; k < sizeof buf / 2 && i < nsamples; k++, i++)
            wav_put_le(buf + 2 * k, (uint16_t)pcm[i], 2);
        rc = write_all(fd, buf, 2 * k);
    }
    if (rc == 0)
        rc = fsync(fd);
    int e = errno;
    if (close(fd) != 0 && rc == 0)
        rc = -1, e = errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1, e = errno;
    if (rc != 0) {
        unlink(tmp);
        free(tmp);
        return fenta_fail(errbuf, errlen, io_code(e), "WAV '%s': cannot write it: %s", path,
                          strerror(e));
    }
    free(tmp);
    /* Best effort: some file systems refuse fsync on a folder, and the data
     * is already safe. */
    (void)fsutil_sync_dir_of(path);
    return 0;
}

/* ---- the front door ------------------------------------------------------ */

static int check_text(const char *text, char *errbuf, size_t errlen)
{
    if (!text || !*text)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "tts: the text is empty");
    size_t len = strlen(text);
    if (len > TTS_MAX_TEXT_BYTES)
        return fenta_fail(errbuf, errlen, FENTA_ETOOBIG,
                          "tts: the text is %zu bytes, more than the %d accepted", len,
                          TTS_MAX_TEXT_BYTES);
    const unsigned char *s = (const unsigned char *)text;
    bool speakable = false;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t l = utf8_seq(s + i, len - i, &c);
        if (l == 0)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "tts: the text is not valid UTF-8 (byte 0x%02X at offset %zu)", s[i],
                              i);
        if ((c < 0x20 && !is_space_cp(c)) || c == 0x7F)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "tts: the text has a control character (0x%02X) at offset %zu",
                              (unsigned)c, i);
        if (!is_space_cp(c) && (c >= 0x80 || (c < 0x80 && isalnum((int)c))))
            speakable = true;
        i += l;
    }
    if (!speakable)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "tts: the text has no words to speak (only spaces or punctuation)");
    return 0;
}

int tts_synth(const tts_config_t *cfg, const char *text, const char *wav_path, tts_result_t *out,
              char *errbuf, size_t errlen)
{
    if (errbuf && errlen > 0)
        errbuf[0] = '\0';
    if (!out)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "tts: no result to fill");
    memset(out, 0, sizeof *out);
    if (!wav_path || !*wav_path)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "tts: no WAV path");
    int rc = check_text(text, errbuf, errlen);
    if (rc != 0)
        return rc;
    tts_config_t c = cfg ? *cfg : (tts_config_t){0};
    if (c.speed == 0)
        c.speed = 1.0;
    if (!(c.speed >= TTS_SPEED_MIN && c.speed <= TTS_SPEED_MAX)) /* NaN fails too */
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "tts: speed %g is outside %g..%g", c.speed,
                          TTS_SPEED_MIN, TTS_SPEED_MAX);
    if (c.timeout_ms < 0)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "tts: timeout_ms %ld is negative",
                          c.timeout_ms);
    if (c.timeout_ms == 0)
        c.timeout_ms = TTS_DEFAULT_TIMEOUT_MS;
    if (!c.kokoro_voice || !*c.kokoro_voice)
        c.kokoro_voice = TTS_DEFAULT_KOKORO_VOICE;
    if (!c.espeak_voice || !*c.espeak_voice)
        c.espeak_voice = TTS_DEFAULT_ESPEAK_VOICE;
    if (c.kokoro_url && *c.kokoro_url)
        rc = kokoro_synth(&c, text, wav_path, out, errbuf, errlen);
    else
        rc = tts__espeak_synth(&c, text, wav_path, out, errbuf, errlen);
    if (rc != 0)
        tts_result_free(out);
    return rc;
}

void tts_result_free(tts_result_t *r)
{
    if (!r)
        return;
    free(r->marks);
    memset(r, 0, sizeof *r);
}
