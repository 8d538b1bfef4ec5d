/* captions.c - words with timings to caption lines, and lines to SRT.
 *
 * Plain string and integer work: no locale (toupper would depend on it and
 * could touch UTF-8 bytes), no third-party code. */
#include "actors/text/captions.h"
#include "runtime/error.h"
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

captions_opts_t captions_opts_default(void)
{
    return (captions_opts_t){.max_words = CAPTIONS_DEFAULT_MAX_WORDS,
                             .max_chars = CAPTIONS_DEFAULT_MAX_CHARS,
                             .min_display_ms = CAPTIONS_DEFAULT_MIN_DISPLAY_MS,
                             .uppercase = false};
}

/* Code points in s, or -1 if s is not valid UTF-8 or holds a control
 * character (a newline in a word would end the SRT cue early). */
static long utf8_count(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long count = 0;
    while (*p != 0) {
        unsigned c = *p;
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return -1;
            len = 1, cp = c;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07;
        } else {
            return -1;
        }
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
                return -1;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
            (cp >= 0x80 && cp < 0xa0)) /* overlong, out of range, surrogate, C1 control */
            return -1;
        p += len;
        count++;
    }
    return count;
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
    size_t sl = strlen(suffix);
    return len >= sl && memcmp(s + len - sl, suffix, sl) == 0;
}

/* A word ends a sentence when, after any closing quotes and brackets, it ends
 * in a terminal mark ("end.", "really?!", "wait…", "said.”", "了。」"). */
static bool ends_sentence(const char *s)
{
    static const char *const closers[] = {"\"",
                                          "'",
                                          ")",
                                          "]",
                                          "}",
                                          "\xe2\x80\x9d" /* ” */,
                                          "\xe2\x80\x99" /* ’ */,
                                          "\xc2\xbb" /* » */,
                                          "\xe3\x80\x8d" /* 」 */,
                                          "\xe3\x80\x8f" /* 』 */,
                                          "\xef\xbc\x89" /* ） */};
    static const char *const enders[] = {".",
                                         "!",
                                         "?",
                                         "\xe2\x80\xa6" /* … */,
                                         "\xe3\x80\x82" /* 。 */,
                                         "\xef\xbc\x81" /* ！ */,
                                         "\xef\xbc\x9f" /* ？ */};
    size_t len = strlen(s);
    for (bool stripped = true; stripped;) {
        stripped = false;
        for (size_t i = 0; i < sizeof closers / sizeof closers[0]; i++) {
            if (ends_with(s, len, closers[i])) {
                len -= strlen(closers[i]);
                stripped = true;
            }
        }
    }
    for (size_t i = 0; i < sizeof enders / sizeof enders[0]; i++)
        if (ends_with(s, len, enders[i]))
            return true;
    return false;
}

static int check_words(const captions_word_t *w, size_t n, char *errbuf, size_t errlen)
{
    if (w == NULL || n == 0)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "no words");
    for (size_t i = 0; i < n; i++) {
        if (w[i].text == NULL || w[i].text[0] == '\0')
            return fenta_fail(errbuf, errlen, FENTA_EINVAL, "word %zu: empty text", i);
        if (utf8_count(w[i].text) < 0)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "word %zu: text is not valid UTF-8 or holds a control character", i);
        if (w[i].start_ms < 0 || w[i].end_ms < 0)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL, "word %zu: negative time", i);
        if (w[i].end_ms < w[i].start_ms)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "word %zu: ends (%" PRId64 " ms) before it starts (%" PRId64 " ms)",
                              i, w[i].end_ms, w[i].start_ms);
        if (i > 0 && w[i].start_ms < w[i - 1].end_ms)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                              "word %zu: starts (%" PRId64 " ms) before word %zu ends (%" PRId64
                              " ms); words must be in time order",
                              i, w[i].start_ms, i - 1, w[i - 1].end_ms);
    }
    return 0;
}

int captions_lines(const captions_word_t *w, size_t n, const captions_opts_t *o,
                   captions_line_t **lines, size_t *nlines, char *errbuf, size_t errlen)
{
    if (lines == NULL || nlines == NULL)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "no output given");
    *lines = NULL;
    *nlines = 0;
    captions_opts_t opts = o != NULL ? *o : captions_opts_default();
    if (opts.max_words < 1 || opts.max_chars < 1 || opts.min_display_ms < 0)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "options: max_words and max_chars must be >= 1, "
                          "min_display_ms >= 0");
    int rc = check_words(w, n, errbuf, errlen);
    if (rc != 0)
        return rc;

    /* At most one line per word: allocate once, no reallocation. */
    captions_line_t *out = malloc(n * sizeof *out);
    if (out == NULL)
        return FENTA_ENOMEM;
    size_t nl = 0;
    long chars = 0; /* code points on the open line, spaces included */
    bool open = false;
    for (size_t i = 0; i < n; i++) {
        long wc = utf8_count(w[i].text);
        if (open && (out[nl - 1].count + 1 > (size_t)opts.max_words ||
                     chars + 1 + wc > (long)opts.max_chars))
            open = false;
        if (!open) {
            out[nl++] = (captions_line_t){.first = i,
                                          .count = 1,
                                          .start_ms = w[i].start_ms,
                                          .end_ms = w[i].end_ms,
                                          .uppercase = opts.uppercase};
            chars = wc;
            open = true;
        } else {
            out[nl - 1].count++;
            out[nl - 1].end_ms = w[i].end_ms;
            chars += 1 + wc;
        }
        if (ends_sentence(w[i].text))
            open = false;
    }
    /* Stretch short lines; words do not overlap, so next start >= this end
     * and the clamp never cuts a word short. */
    for (size_t i = 0; i < nl; i++) {
        int64_t want = out[i].start_ms + opts.min_display_ms;
        if (out[i].end_ms < want)
            out[i].end_ms = want;
        if (i + 1 < nl && out[i].end_ms > out[i + 1].start_ms)
            out[i].end_ms = out[i + 1].start_ms;
    }
    *lines = out;
    *nlines = nl;
    return 0;
}

/* "HH:MM:SS,mmm"; hours grow past two digits rather than wrap. */
static int srt_time(char *buf, size_t size, int64_t ms)
{
    return snprintf(buf, size, "%02" PRId64 ":%02d:%02d,%03d", ms / 3600000, (int)(ms / 60000 % 60),
                    (int)(ms / 1000 % 60), (int)(ms % 1000));
}

char *captions_srt(const captions_line_t *lines, size_t n, const captions_word_t *w)
{
    /* Size it first: per cue the number, two times and the arrow fit in 128
     * bytes; the text is the words plus one separator each. */
    size_t size = 1;
    for (size_t i = 0; i < n; i++) {
        size += 128 + 2; /* + the blank line after the cue */
        for (size_t j = 0; j < lines[i].count; j++)
            size += strlen(w[lines[i].first + j].text) + 1;
    }
    char *buf = malloc(size);
    if (buf == NULL)
        return NULL;
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char a[48], b[48];
        srt_time(a, sizeof a, lines[i].start_ms);
        srt_time(b, sizeof b, lines[i].end_ms);
        len += (size_t)snprintf(buf + len, size - len, "%zu\n%s --> %s\n", i + 1, a, b);
        for (size_t j = 0; j < lines[i].count; j++) {
            const char *t = w[lines[i].first + j].text;
            if (j > 0)
                buf[len++] = ' ';
            size_t tl = strlen(t);
            memcpy(buf + len, t, tl);
            /* ASCII-only: bytes of a multibyte sequence are all >= 0x80. */
            if (lines[i].uppercase)
                for (size_t k = len; k < len + tl; k++)
                    if (buf[k] >= 'a' && buf[k] <= 'z')
                        buf[k] = (char)(buf[k] - 'a' + 'A');
            len += tl;
        }
        buf[len++] = '\n';
        buf[len++] = '\n';
        buf[len] = '\0';
    }
    return buf;
}

void captions_lines_free(captions_line_t **lines, size_t n)
{
    (void)n;
    if (lines == NULL)
        return;
    free(*lines);
    *lines = NULL;
}
