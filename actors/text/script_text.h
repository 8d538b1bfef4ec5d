/* script_text.h - the text half of the script stage: a user's script (often
 * markdown pasted from a chat or a notes app) becomes the text the voice
 * reads and the text the captions show.
 *
 * Markdown, URLs and emoji would otherwise reach the TTS engine as noise
 * ("asterisk asterisk", "h t t p s colon") and leave caption words with no
 * spoken counterpart, which is what gave other generators all-zero caption
 * timestamps. Pure logic, no I/O, no third-party headers.
 *
 * What is done, in both outputs unless said otherwise:
 *  - markdown stripped: headings, emphasis (* _ ** __ ~~), inline code
 *    backticks, code fence lines (the text inside a fence is kept, its
 *    markdown untouched), links [t](u) -> t, images ![a](u) -> a, list
 *    bullets and numbers, task boxes, blockquotes, horizontal rules, HTML
 *    tags, backslash escapes;
 *  - URLs (http://, https://, www.) removed, not spoken as "link": a URL
 *    read aloud or shown for a second helps nobody;
 *  - emoji and pictographs (U+1F000-1FAFF, U+2600-27BF and a few others),
 *    with their joiners, variation selectors, skin tones, keycaps and
 *    regional indicators, removed (many caption fonts draw them as boxes);
 *  - speech only: numbers spelled out in English (integers to 999,999,999,
 *    longer ones and ones with leading zeros digit by digit; decimals,
 *    percentages, $ EUR GBP amounts, ordinals, years 1100-2099 read as
 *    years), symbols & + @ = % as words, #tag as "hashtag tag", #3 as
 *    "number three"; captions keep the digits and symbols as written;
 *  - whitespace collapsed to single spaces, no space before . , ! ? : ; ) ]
 *    and none left in an emptied "()".
 * Text in other scripts (CJK, Arabic, Cyrillic, Devanagari, ...) passes
 * through untouched, and digits written against such letters stay digits.
 * Lines are joined with a space; no sentence punctuation is invented. */
#ifndef FENTA_SCRIPT_TEXT_H
#define FENTA_SCRIPT_TEXT_H
#include <stddef.h>
#include <stdint.h>

typedef struct script_text {
    char *speech;   /* what the voice reads; malloc'd, NUL-terminated, owned by the struct */
    char *captions; /* what the captions show; malloc'd, NUL-terminated, owned by the struct */
    size_t words;   /* whitespace-separated tokens of captions, >= 1 on success */
} script_text_t;

/* Normalises the len bytes at in (need not be NUL-terminated) into *out.
 * Returns 0; or FENTA_EINVAL with errbuf (if errlen > 0) saying
 * "script is not valid UTF-8 at byte N" (N 0-based) or "script is empty"
 * (nothing but whitespace, markup, URLs or emoji); or FENTA_ENOMEM. On
 * failure *out is zeroed and owns nothing. Free a success with
 * script_text_free. */
int script_text_normalise(const char *in, size_t len, script_text_t *out, char *errbuf,
                          size_t errlen);

/* Frees both strings and zeroes *t; NULL or a zeroed struct is a no-op. */
void script_text_free(script_text_t *t);

/* Decodes one code point at s (n >= 1 bytes left) into *cp; returns its
 * length, or 0 when the bytes are not valid UTF-8 (overlong, surrogate,
 * > U+10FFFF, cut short). */
size_t script_text_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

#endif
