/* script_gen.h - the offline script generator and the script transforms
 * behind the workflow nodes "script.generate" and "script.transform"
 * (schemas/nodes/script.generate.json, script.transform.json).
 *
 * Why an offline generator: a workflow must run, and be testable, with no
 * LLM key and no network; with a key, the LLM path replaces it. Its text is
 * made for the stages that follow, not for a reader:
 *  - it is sized to the video: duration_s seconds at ~2.5 spoken words per
 *    second (SCRIPT_GEN_WORDS_PER_SECOND), within +-15%, counting words as
 *    whitespace-separated tokens, the same count the caption code makes. A
 *    script much longer or shorter than the video would be cut or padded with
 *    silence by the render;
 *  - it is deterministic: the phrasing is drawn from a generator seeded with a
 *    hash of the cleaned topic and the genre (no rand(), no clock), so a
 *    re-run of the same workflow produces the same voice and captions and hits
 *    the same caches; the duration mostly decides how many sentences are
 *    kept, so a 30 s and a 60 s script on one topic open with the same hook
 *    (a very short budget may need a shorter one);
 *  - it is plain prose: sentences with ending punctuation, and no markdown,
 *    emoji or digits of its own, so the TTS reads what the captions show;
 *  - it has a shape: a hook sentence first (always naming the topic), body
 *    sentences in the genre's order, a call to action last (every one asks to
 *    follow, subscribe, save, share or comment, and no body sentence does).
 *    Genres: "hook" (bold claim, tension, payoff), "facts" ("First, ...",
 *    "Second, ...", "Finally, ..."), "story" (opening, trouble, struggle,
 *    turning point, resolution, lesson) and "listicle" ("Number one: ...",
 *    with the count announced when two or more items fit).
 * Sentences are picked by priority until the budget is met (the core of the
 * genre first, asides and transitions when there is room; a one-sentence
 * slot such as an intro takes a shorter phrasing when that is what fits);
 * the hook and the call to action are shortened or swapped for other
 * variants when that lands the count in range, and only as a last resort do
 * two- or three-word bridges ("That matters.") close the gap, which the
 * +-15% window always leaves room for.
 *
 * The topic is user input: control characters, bidi overrides and BOMs are
 * removed, whitespace runs become one space, trailing sentence punctuation
 * is dropped (it would end the sentence it is put in), a leading "The",
 * "How", "Why"... is lower-cased to read mid-sentence, and the rest (any
 * script, any UTF-8) is kept as typed. The hook says the whole topic; the
 * body and the call to action say its first six words, so a topic written as
 * a paragraph does not crowd the content out of every sentence. A topic too
 * long even for the hook of a short video (a 30-word topic in 5 s) is cut to
 * its first words too. A cut never ends on a dangling "of", "the", ...
 *
 * What it says is data: the templates, bridges, ordinals, spelt numbers and
 * topic words are schemas/script_phrasing.json (checked against
 * script_phrasing.schema.json), read once per process by script_gen_load or
 * by the first script generated. Otherwise pure logic, no I/O, thread-safe.
 * The transforms need no file. */
#ifndef FENTA_SCRIPT_GEN_H
#define FENTA_SCRIPT_GEN_H
#include <stddef.h>

#define SCRIPT_GEN_WORDS_PER_SECOND 2.5
#define SCRIPT_GEN_TOLERANCE 0.15     /* the word count is within +-15% of the budget */
#define SCRIPT_GEN_DURATION_MIN_S 5.0 /* the schema's bounds for duration_s */
#define SCRIPT_GEN_DURATION_MAX_S 180.0
#define SCRIPT_GEN_TOPIC_MAX_CHARS 500 /* code points, as the schema's maxLength counts */
#define SCRIPT_GEN_DEFAULT_GENRE "facts"
#define SCRIPT_GEN_DEFAULT_MAX_WORDS 150 /* the schema's default for trim */
#define SCRIPT_GEN_PUNCHY_WORDS 12       /* hook_first: a sentence this short can open */

/* Loads the phrasing from schemas_dir (NULL: fsutil_schemas_dir's default)
 * unless it is loaded already: the first successful load is the process's
 * for good, and later calls return 0 at once whatever their folder. fenta
 * serve calls it at start so a broken file stops the start, not the first
 * script job. 0, or with errbuf (if errlen > 0) saying which file and why:
 * FENTA_EIO (a file is missing or not JSON), FENTA_EINVAL (the phrasing
 * breaks its schema, each problem with its path), FENTA_ENOMEM. */
int script_gen_load(const char *schemas_dir, char *errbuf, size_t errlen);

/* Writes a voice-over script about topic (UTF-8, NUL-terminated) into *out:
 * one line of sentences separated by single spaces. genre is "hook",
 * "facts", "story" or "listicle"; NULL means SCRIPT_GEN_DEFAULT_GENRE.
 * duration_s is SCRIPT_GEN_DURATION_MIN_S..MAX_S (fractions allowed).
 *
 * Returns 0 with *out malloc'd and the caller's to free, or, with *out NULL
 * and errbuf (if errlen > 0) holding one line:
 *   FENTA_EINVAL "topic is missing" (NULL), "topic is not valid UTF-8 at
 *                byte N", "topic is longer than 500 characters", "topic is
 *                empty" (nothing left once cleaned), "genre 'x' is not one of
 *                hook, facts, story, listicle", "duration_s must be between 5
 *                and 180 seconds, got X";
 *   FENTA_ENOMEM "out of memory";
 *   script_gen_load's errors when the phrasing was not loaded and cannot be. */
int script_gen_generate(const char *topic, const char *genre, double duration_s, char **out,
                        char *errbuf, size_t errlen);

/* Applies op to text (UTF-8, NUL-terminated) into *out:
 *  - "trim": keeps the leading whole sentences whose words add up to at most
 *    max_words (1 or more); when the first sentence alone is longer, keeps its
 *    first max_words words and ends them with a period. The result never has
 *    more than max_words words. A sentence ends at . ! ? or an ellipsis
 *    (closing quotes and brackets included) followed by a space or the end, so
 *    "3.5" and "Node.js" do not split one.
 *  - "uppercase": upper-cases letters of ASCII, Latin-1, Latin Extended-A and
 *    -B (the common letters), Latin Extended Additional (Vietnamese), Greek,
 *    Cyrillic, Armenian and full-width Latin, with a table of our own rather
 *    than towupper(), whose answer depends on the process locale; German
 *    sharp s becomes "SS". Everything else (digits, punctuation, emoji, CJK,
 *    the micro sign) is copied byte for byte.
 *  - "hook_first": a script should open on its strongest sentence. When the
 *    first sentence is already a question or an exclamation, nothing moves;
 *    otherwise the first question is moved to the front, else the first
 *    exclamation, else, only when the first sentence is longer than
 *    SCRIPT_GEN_PUNCHY_WORDS words, the shortest sentence of at most that
 *    many (the earliest on a tie), so a short opener whose later sentences
 *    refer back to it stays where it is. A moved sentence lacking ending
 *    punctuation gets a period; the sentences are then joined by single
 *    spaces. With nothing to move, the text comes back unchanged.
 * max_words is read by "trim" only.
 *
 * Returns 0 with *out malloc'd and the caller's to free, or, with *out NULL
 * and errbuf (if errlen > 0) holding one line:
 *   FENTA_EINVAL "op is missing", "op 'x' is not one of trim, uppercase,
 *                hook_first", "text is missing", "text is not valid UTF-8 at
 *                byte N", "text is empty" (only whitespace), "max_words must
 *                be at least 1, got N";
 *   FENTA_ENOMEM "out of memory". */
int script_gen_transform(const char *text, const char *op, int max_words, char **out, char *errbuf,
                         size_t errlen);

#endif
