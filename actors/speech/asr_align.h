/* asr_align.h - pins a script's words to the words a recogniser heard.
 *
 * When a user uploads a voice recording with its script, the captions must
 * show the script's words (their spelling, punctuation and case), timed by
 * the recording. The recogniser (asr) hears most words right and some wrong;
 * this module lines the two word sequences up and gives every script word a
 * time: a word heard as written takes the recogniser's time, the others are
 * placed between their neighbours. Pure logic: no I/O, no third-party
 * headers, no pocketsphinx types (the heard words are plain asr_word_t). */
#ifndef FENTA_ASR_ALIGN_H
#define FENTA_ASR_ALIGN_H
#include "actors/speech/asr.h"
#include <stddef.h>
#include <stdint.h>

/* Aligns n script words to nheard recognised words and writes each script
 * word's time to start_ms[i], end_ms[i].
 *
 * Words are compared in a normal form: lower case, letters and digits only,
 * Latin-1 accents folded (so "Don’t," matches "don't" and "Café" "cafe";
 * letters of other scripts are kept as they are). A script word made of digits also matches how it
 * is said: "3" the heard "three", "1999" "nineteen ninety nine" (or "one thousand nine hundred
 * ninety nine"), "21st" "twenty first", "3.5" "three point five", "50%" "fifty
 * percent", "2,000" "two thousand"; a hyphenated "well-known" matches "well"
 * "known". The alignment is a word-level edit distance, computed in a band
 * around the diagonal wide enough for any realistic recording: a match
 * costs nothing, a deletion or insertion 1, a substitution 0 to 2 by
 * spelling similarity (so "please call me" heard as "least calmly" pairs
 * please/least and call/calmly), and a sentence's first word placed where
 * the speaker did not pause (no 200 ms gap before the heard word) 1.5 more.
 *
 * Then:
 *  - a matched word takes the heard word's times (a number said in several
 *    words spans them);
 *  - a substituted word takes the time of the heard word it was paired with
 *    (the recogniser misheard it, but heard where it is);
 *  - a run of script words paired with nothing shares the time of a paired
 *    neighbour inside the same unmatched stretch (the recogniser heard one
 *    word where several were said), or else is spread over the gap between
 *    its neighbours, in proportion to the words' lengths;
 *  - an unmatched stretch always covers the heard words between its matched
 *    neighbours, and with none there spans the whole gap between them
 *    ([0, audio_ms] at the ends, so no heard words at all gives a plain
 *    proportional spread of the script over the audio).
 * Finally the times are made strictly ordered: every word lasts at least
 * 1 ms, starts at or after the previous word's end, and lies in
 * [0, audio_ms].
 *
 * heard must be in time order (as asr_transcribe returns it); times outside
 * [0, audio_ms] are clamped. script_words[i] is the word as shown in the
 * captions, non-NULL UTF-8. Returns 0 (n = 0 is a no-op); FENTA_EINVAL with
 * errbuf naming the problem (a NULL array or word, audio_ms too short to
 * give each word 1 ms); or FENTA_ENOMEM. Thread-safe. */
int asr_align(const char *const *script_words, size_t n, const asr_word_t *heard, size_t nheard,
              int64_t audio_ms, int64_t *start_ms, int64_t *end_ms, char *errbuf, size_t errlen);

#endif
