/* captions.h - spoken words with timings grouped into caption lines, and the
 * SRT writer.
 *
 * The pure-logic half of the align stage: the words come from the TTS word
 * events (or ASR segments), the lines go to the ASS writer (which times the
 * karaoke effect per word through first/count) and to captions.srt. No I/O,
 * no third-party headers. A cue starts exactly at its first word's start, so
 * captions can never drift from the voice. */
#ifndef FENTA_CAPTIONS_H
#define FENTA_CAPTIONS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct captions_word {
    const char *text; /* the word as shown, UTF-8, no control characters; borrowed */
    int64_t start_ms; /* when the voice starts it, ms from the start of the voice */
    int64_t end_ms;   /* when the voice ends it; >= start_ms */
} captions_word_t;

typedef struct captions_opts {
    int max_words;          /* most words on one line (>= 1) */
    int max_chars;          /* most code points on one line, spaces included (>= 1) */
    int64_t min_display_ms; /* shortest time a line stays up, unless the next needs the place */
    bool uppercase;         /* show ASCII letters in upper case (other scripts untouched) */
} captions_opts_t;

#define CAPTIONS_DEFAULT_MAX_WORDS 4
#define CAPTIONS_DEFAULT_MAX_CHARS 24
#define CAPTIONS_DEFAULT_MIN_DISPLAY_MS 600

/* The defaults: 4 words, 24 code points, 600 ms, no upper case. */
captions_opts_t captions_opts_default(void);

typedef struct captions_line {
    size_t first;     /* index of the line's first word in the words array */
    size_t count;     /* how many words, >= 1 */
    int64_t start_ms; /* = words[first].start_ms, exactly */
    int64_t end_ms;   /* >= last word's end_ms; <= the next line's start_ms */
    bool uppercase;   /* copied from the options, so the writers need only the lines */
} captions_line_t;

/* Groups n words into lines. A line never holds more than o->max_words words
 * or o->max_chars code points (a single longer word gets a line of its own)
 * and never runs past a sentence end (a word ending in . ! ? … 。 ！ ？, possibly
 * followed by closing quotes or brackets). Each line is shown from its first
 * word's start to its last word's end, stretched to min_display_ms when the
 * gap before the next line allows, else up to the next line's start.
 *
 * o may be NULL for captions_opts_default(). The words must be in time order
 * with no overlap (start_ms >= the previous word's end_ms), end_ms >= start_ms,
 * no negative times, and text non-empty valid UTF-8 with no control
 * characters; so lines never overlap either.
 *
 * Returns 0 with *lines (malloc'd, the caller's: captions_lines_free) and
 * *nlines set; or FENTA_EINVAL (n = 0, a bad word, bad options) with errbuf
 * (if errlen > 0) naming the word index, e.g. "word 3: starts before word 2
 * ends"; or FENTA_ENOMEM. On failure *lines is NULL and *nlines 0. */
int captions_lines(const captions_word_t *w, size_t n, const captions_opts_t *o,
                   captions_line_t **lines, size_t *nlines, char *errbuf, size_t errlen);

/* The lines as SRT: 1-based cues, "HH:MM:SS,mmm --> HH:MM:SS,mmm", the
 * line's words joined by single spaces, a blank line after each cue, "\n"
 * line ends. w is the words array the lines were made from. Returns a
 * malloc'd string the caller frees ("" for n = 0), or NULL when out of
 * memory. */
char *captions_srt(const captions_line_t *lines, size_t n, const captions_word_t *w);

/* Frees lines from captions_lines and NULLs *lines; NULL or *lines NULL is a
 * no-op. n is the count captions_lines returned (kept for symmetry). */
void captions_lines_free(captions_line_t **lines, size_t n);

#endif
