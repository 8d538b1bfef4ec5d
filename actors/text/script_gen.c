/* script_gen.c - the offline script generator (phrasing tables, word budget)
 * and the script transforms (trim, uppercase, hook_first); the rules are in
 * the header. The tables are data: a genre is its pools of templates plus a
 * short function that lays them out in the genre's order with priorities. */
#include "actors/text/script_gen.h"
#include "actors/text/script_text.h"
#include "runtime/error.h"
#include "runtime/strbuf.h"
#include "runtime/vec.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- UTF-8 and words ---------------------------------------------------- */

static void utf8_put(strbuf_t *b, uint32_t c)
{
    char e[4];
    size_t k;
    if (c < 0x80) {
        e[0] = (char)c, k = 1;
    } else if (c < 0x800) {
        e[0] = (char)(0xC0 | (c >> 6)), e[1] = (char)(0x80 | (c & 0x3F)), k = 2;
    } else if (c < 0x10000) {
        e[0] = (char)(0xE0 | (c >> 12)), e[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        e[2] = (char)(0x80 | (c & 0x3F)), k = 3;
    } else {
        e[0] = (char)(0xF0 | (c >> 18)), e[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        e[2] = (char)(0x80 | ((c >> 6) & 0x3F)), e[3] = (char)(0x80 | (c & 0x3F)), k = 4;
    }
    strbuf_append_len(b, e, k);
}

/* Returns 0 when s[0..n) is valid UTF-8, else FENTA_EINVAL naming the byte. */
static int utf8_check(const char *what, const char *s, size_t n, char *errbuf, size_t errlen)
{
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = script_text_utf8_decode((const unsigned char *)s + i, n - i, &c);
        if (!k)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL, "%s is not valid UTF-8 at byte %zu",
                              what, i);
        i += k;
    }
    return 0;
}

/* ASCII whitespace: what separates words for the caption code too. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static size_t count_words(const char *s, size_t n)
{
    size_t words = 0;
    bool in = false;
    for (size_t i = 0; i < n; i++) {
        if (is_space(s[i]))
            in = false;
        else if (!in)
            in = true, words++;
    }
    return words;
}

/* ---- the topic ------------------------------------------------------------ */

/* Whitespace beyond ASCII: NEL, no-break and typographic spaces, line and
 * paragraph separators, the ideographic space. */
static bool is_unicode_space(uint32_t c)
{
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Removed outright: C0/C1 controls and DEL (the TTS and the subtitle files
 * choke on them), bidi embeddings, overrides and isolates (they reorder the
 * caption as displayed), and the BOM. ZWJ/ZWNJ stay: scripts and emoji need
 * them. */
static bool is_stripped(uint32_t c)
{
    return c < 0x20 || (c >= 0x7F && c <= 0x9F) || (c >= 0x202A && c <= 0x202E) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0xFEFF;
}

/* Cleans the topic into b (see the header); b->len == 0 means nothing left. */
static int topic_clean(const char *topic, strbuf_t *b, char *errbuf, size_t errlen)
{
    size_t n = strlen(topic), chars = 0;
    int rc = utf8_check("topic", topic, n, errbuf, errlen);
    if (rc)
        return rc;
    bool space = false;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = script_text_utf8_decode((const unsigned char *)topic + i, n - i, &c);
        chars++;
        if (c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == ' ' ||
            is_unicode_space(c)) {
            space = b->len > 0;
        } else if (!is_stripped(c)) {
            if (space)
                strbuf_append_len(b, " ", 1);
            space = false;
            strbuf_append_len(b, topic + i, k);
        }
        i += k;
    }
    if (chars > SCRIPT_GEN_TOPIC_MAX_CHARS)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "topic is longer than %d characters",
                          SCRIPT_GEN_TOPIC_MAX_CHARS);
    if (b->oom)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    /* "Why do cats purr?" would end the hook sentence in the middle. */
    for (;;) {
        if (b->len > 0 && (strchr(".!?;:, ", b->p[b->len - 1])))
            strbuf_truncate(b, b->len - 1);
        else if (b->len >= 3 && memcmp(b->p + b->len - 3, "\xE2\x80\xA6", 3) == 0)
            strbuf_truncate(b, b->len - 3); /* an ellipsis */
        else
            break;
    }
    if (b->len == 0)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "topic is empty");
    /* "Why cats purr" or "The moon" typed as a title reads "about Why cats
     * purr" mid-sentence; a leading function word is put in lower case, a
     * name ("Rome", "NASA") is left alone. */
    static const char *const lead[] = {"The",  "A",    "An",    "How", "Why",
                                       "What", "When", "Where", "Who", "Which"};
    for (size_t i = 0; i < sizeof lead / sizeof *lead; i++) {
        size_t k = strlen(lead[i]);
        if (strncmp(b->p, lead[i], k) == 0 && (b->p[k] == ' ' || b->p[k] == '\0'))
            b->p[0] = (char)(b->p[0] - 'A' + 'a');
    }
    return 0;
}

/* Words a shortened topic must not end on. */
static bool is_dangling(const char *w, size_t n)
{
    static const char *const words[] = {"a",    "an",   "the",   "of", "and", "or", "to",
                                        "in",   "on",   "for",   "at", "by",  "as", "with",
                                        "from", "into", "about", "is", "are", "my", "your"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (strlen(words[i]) == n && strncasecmp(words[i], w, n) == 0)
            return true;
    return false;
}

/* Byte length of the topic (cleaned: single spaces) cut to its first k
 * words, without a dangling function word or punctuation at the cut. */
static size_t topic_prefix(const char *t, size_t len, size_t k)
{
    size_t end = 0, w = 0;
    for (size_t i = 0; i < len && w < k; w++) {
        while (i < len && t[i] == ' ')
            i++;
        while (i < len && t[i] != ' ')
            i++;
        end = i;
    }
    if (end == len)
        return len; /* the whole topic, as the user wrote it */
    for (;;) {
        size_t start = end;
        while (start > 0 && t[start - 1] != ' ')
            start--;
        if (start == 0 || !is_dangling(t + start, end - start))
            break;
        end = start - 1;
    }
    while (end > 1 && strchr(".!?;:,-", t[end - 1]))
        end--;
    return end;
}

/* ---- a deterministic generator -------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

/* splitmix64: tiny, good enough for picking phrasings, and the same on every
 * platform (rand() is not). */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* ---- the phrasing tables ------------------------------------------------- */

/* Placeholders: {T} the topic, {O} an ordinal ("First", ..., "Finally"), {n}
 * an item's number and {N} the item count, as words. No template starts with
 * {T} (the topic's case is the user's) or uses a verb agreeing with it ("cats
 * is"), and only calls to action use follow/subscribe/save/share/comment. */
typedef struct pool {
    const char *const *t; /* the templates */
    size_t n;             /* how many */
} pool_t;

#define DECK_MAX 32 /* the largest pool */
#define POOL(name, ...)                                                                            \
    static const char *const name##_t[] = {__VA_ARGS__};                                           \
    _Static_assert(sizeof name##_t / sizeof *name##_t <= DECK_MAX, #name " is too big");           \
    static const pool_t name = {name##_t, sizeof name##_t / sizeof *name##_t}

/* Short bridges, two or three words each, for closing the last gap: the
 * +-15% window is at least 3.75 words wide, so one always fits. */
POOL(fillers, "Think about that.", "It adds up.", "That matters.", "Remember that.",
     "Simple as that.", "Worth knowing.", "Big difference.", "Just like that.", "Notice that.",
     "Not bad.");

/* Asides shared by facts and hook: they follow a claim and fit any. */
POOL(shared_asides, "That alone explains a lot.", "It sounds obvious, but it is easy to forget.",
     "Once you notice it, you start seeing it everywhere.",
     "That is why the simple version is often misleading.",
     "It is one of those details that changes how everything else looks.",
     "Few people check, so the myth keeps spreading.",
     "And it matters more than it seems at first.",
     "The details vary, but the pattern holds up surprisingly well.",
     "Think of it as the foundation for everything else.",
     "This is where most explanations stop too early.",
     "It is a small point with big consequences.",
     "Most people hear this once and never think about it again.",
     "It is easy to overlook, and that is the problem.",
     "The more you look at it, the more sense it makes.", "That is not a coincidence.",
     "It seems minor until you see it in action.", "Plenty of smart people miss this completely.",
     "It is worth slowing down for this one.", "Most summaries leave this part out.",
     "It is the kind of thing you only notice once someone points it out.",
     "That surprises almost everyone the first time.",
     "It is simple, but simple is not the same as obvious.",
     "There is more to it, but that is the core.", "This is the part worth remembering.",
     "It changes how the rest fits together.", "That is where the real understanding starts.",
     "Nobody talks about it, yet it shapes everything else.",
     "It holds up better than most popular claims.", "And that is only the beginning.",
     "You will start to notice it in unexpected places.");

/* hook: a bold claim, tension, a payoff. */
POOL(hook_hooks, "Most people get {T} completely wrong.",
     "Here is what nobody tells you about {T}.", "Stop scrolling if you care about {T}.",
     "What if everything you know about {T} is wrong?",
     "You have been thinking about {T} the wrong way.",
     "This one idea about {T} changes everything.", "Nobody explains {T} properly, so let me try.",
     "Why does nobody talk about {T} like this?");
POOL(hook_setups, "Everyone thinks they understand {T}, but almost nobody looks past the surface.",
     "For years I treated {T} like background noise, and that was a mistake.",
     "The usual advice about {T} sounds smart, yet it skips the part that matters.",
     "Most videos about {T} repeat the same few talking points and stop there.",
     "At first glance, nothing about {T} seems complicated, and that is exactly the trap.",
     "Ask ten people about {T} and you will hear ten confident, different answers.");
POOL(hook_beats, "The real story is in the details that people skip.",
     "Small choices around {T} add up faster than anyone expects.",
     "The people who get it right ask different questions from the start.",
     "Once you see the pattern, you cannot unsee it.",
     "It is less about talent and more about paying attention.",
     "Nobody mentions the trade-offs, and the trade-offs are the whole point.",
     "The first version you hear is rarely the full picture.",
     "What looks like luck is usually a habit nobody noticed.",
     "The shortcut everyone recommends tends to cost more later.",
     "Experts argue about the details, but they agree on the basics.",
     "The basics are boring, which is exactly why people skip them.",
     "A little curiosity about {T} goes a surprisingly long way.",
     "Most mistakes with {T} come from rushing, not from ignorance.",
     "The loudest opinions about {T} are rarely the best informed.",
     "Simple rules beat clever tricks almost every time.",
     "If something about {T} sounds too easy, it usually hides a catch.",
     "Context changes everything, and most advice ignores it.",
     "The people who know {T} best tend to talk the least.",
     "Every expert started by getting the simple parts right.",
     "Progress with {T} is slow at first and then suddenly fast.",
     "The difference between good and great is usually one overlooked step.",
     "Once you understand why, the how becomes obvious.",
     "Most of the confusion around {T} comes from mixing up causes and effects.",
     "The part that feels unimportant is often the part that decides the outcome.",
     "Most people stop at the first answer that sounds right.",
     "The hard part is not knowing what to do, it is doing it consistently.",
     "Nobody gets this right on the first try, and that is normal.",
     "The best advice about {T} is usually the least exciting.",
     "What works for one person can fail completely for another.",
     "Attention beats intensity, every single time.",
     "The people who improve fastest are the ones who ask for feedback.",
     "Good habits around {T} look boring from the outside.");
POOL(hook_links, "But here is the twist.", "And it gets better.",
     "Now, here is the part that surprised me.", "But that is only half of it.",
     "So what actually works?", "Here is why that matters.", "Now think about what that means.",
     "And that is not all.", "Stay with me here.", "Wait, it gets more interesting.",
     "Now flip that around.", "Here is the catch.");
POOL(hook_payoffs, "So next time someone mentions {T}, look one layer deeper.",
     "Get that one thing right, and everything else about {T} falls into place.",
     "That is the difference between knowing about {T} and understanding it.",
     "Remember that, and you will already be ahead of most people.",
     "Keep that in mind, and {T} will never look the same again.",
     "Once you see {T} this way, there is no going back.");
POOL(hook_ctas, "Follow for more about {T}.", "Follow for more.",
     "Save this for the next time someone brings up {T}.",
     "Comment below if this changed how you see {T}.", "Follow if you want part two.",
     "Share this with a friend who loves {T}.", "Subscribe for more straight talk about {T}.");

/* facts: numbered claims, each with an aside or two. */
POOL(facts_hooks, "Here are some facts about {T} that most people never learn.",
     "You probably know less about {T} than you think.",
     "These facts about {T} sound made up, but they hold up.",
     "Most people get {T} completely wrong.", "Here is what nobody tells you about {T}.",
     "How much do you really know about {T}?",
     "Give me a minute and you will see {T} differently.");
POOL(facts_intros, "Let me walk you through the essentials of {T}.",
     "Here is a quick tour of {T} in plain words.", "Let us go through it one point at a time.",
     "Here is the short version, point by point.",
     "Keep count, because each point builds on the last.", "No jargon, just the facts about {T}.");
POOL(facts_claims, "{O}, the history of {T} goes back further than most people assume.",
     "{O}, the basics of {T} fit on a single page, yet few people ever read them.",
     "{O}, small details decide most of what happens with {T}.",
     "{O}, the most common belief about {T} is only partly true.",
     "{O}, experts still debate parts of {T}, which shows how deep the subject goes.",
     "{O}, what you see in {T} depends a lot on where and when you look.",
     "{O}, the numbers behind {T} are often bigger than people guess.",
     "{O}, much of what we know about {T} started with someone asking a simple question.",
     "{O}, you run into {T} in everyday life more often than you notice.",
     "{O}, the best results with {T} come from consistency, not intensity.",
     "{O}, the first explanation people hear about {T} tends to stick, even when it is wrong.",
     "{O}, the people who study {T} most closely are often the most surprised by it.",
     "{O}, there is usually a simple reason behind the strangest parts of {T}.",
     "{O}, the way people talk about {T} has changed a lot over time.",
     "{O}, learning the basics of {T} takes less time than most people fear.",
     "{O}, the popular image of {T} leaves out the most interesting part.",
     "{O}, the simplest questions about {T} often have the most surprising answers.",
     "{O}, a handful of basic ideas explain most of what matters about {T}.",
     "{O}, the mistakes people make with {T} tend to be the same few, over and over.",
     "{O}, beginners and experts see {T} very differently, and both views are useful.",
     "{O}, the words used to describe {T} can shape what people expect from it.",
     "{O}, some of the best-known claims about {T} have never been checked carefully.",
     "{O}, the story of {T} is full of people who changed their minds.",
     "{O}, understanding {T} gets easier once you see how the parts connect.");
POOL(facts_links, "Now, this next one surprises most people.", "Here is where it gets interesting.",
     "But that is not the whole story.", "This next one is easy to overlook.",
     "Stay with me, because this part matters.", "And it goes further than that.",
     "Now for the one almost nobody knows.", "This next one changes the picture.",
     "Here is a good one.", "This one is my favorite.", "Now, a quick one.",
     "Now, here is a strange one.");
POOL(facts_outros, "Put together, these facts make {T} a lot easier to understand.",
     "None of this is complicated, but together it changes the way you see {T}.",
     "That is {T} in a nutshell, minus the usual myths.",
     "Those are the facts that actually matter about {T}.",
     "Now you know more about {T} than most people ever will.",
     "Remember these, and {T} will make a lot more sense.");
POOL(facts_ctas, "Follow for more facts about {T}.", "Follow for more.",
     "Save this so you have the facts ready next time.",
     "Share this with someone who thinks they know {T}.",
     "Comment the fact that surprised you most.", "Follow for a new fact every day.");

/* listicle: numbered items; the count is announced. */
POOL(list_hooks, "Here is a list about {T} you will want to keep.",
     "If you care about {T}, you need this list.",
     "These are the things about {T} I wish I had known sooner.", "Want a better grip on {T}?",
     "This is the only list about {T} you need today.", "Here is what nobody tells you about {T}.",
     "Most people get {T} completely wrong, so here is a list.");
POOL(list_intros, "Here are {N} things about {T} worth knowing.",
     "Let us count through {N} points about {T}.", "I have {N} of them, so stay to the end.",
     "There are {N} on this list, and the last one matters too.",
     "Keep count, there are {N} of them.");
POOL(list_items, "Number {n}: Start with the basics of {T} before anything fancy.",
     "Number {n}: Learn the common myths about {T}, so you can spot them.",
     "Number {n}: Pay attention to the small details, because they add up.",
     "Number {n}: Find one good source on {T} and go deep.",
     "Number {n}: Ask why, not just how, whenever you come across {T}.",
     "Number {n}: Look at how {T} changed over the years.",
     "Number {n}: Compare the popular view of {T} with what experts say.",
     "Number {n}: Practice a little every day instead of a lot once.",
     "Number {n}: Notice the places where you run into {T} in daily life.",
     "Number {n}: Talk to someone who knows {T} better than you do.",
     "Number {n}: Keep notes, because memory is less reliable than it feels.",
     "Number {n}: Question anything about {T} that sounds too neat.",
     "Number {n}: Learn the vocabulary, since the right words make {T} easier.",
     "Number {n}: Be patient, because real understanding takes time.",
     "Number {n}: Teach what you learn about {T} to someone else.",
     "Number {n}: Set one small goal around {T} and finish it.",
     "Number {n}: Check your assumptions about {T} every few months.",
     "Number {n}: Enjoy the process, because curiosity lasts longer than discipline.",
     "Number {n}: Watch how beginners approach {T}, and learn from their questions.",
     "Number {n}: Take breaks, because fresh eyes catch what tired ones miss.",
     "Number {n}: Read one old source and one new source about {T}, then compare them.",
     "Number {n}: Write down your own questions about {T} before looking for answers.",
     "Number {n}: Start small, because small wins keep you going.",
     "Number {n}: Learn from mistakes, yours and everyone else's.",
     "Number {n}: Keep it simple, because complexity hides problems.",
     "Number {n}: Explain {T} in one sentence, and see if it still makes sense.",
     "Number {n}: Look for patterns instead of isolated facts.",
     "Number {n}: Revisit the basics of {T} once in a while, even when you feel advanced.");
/* The item number is spelled from this table: one item per entry at most. */
_Static_assert(sizeof list_items_t / sizeof *list_items_t <= 30, "list_items outgrows numbers");
POOL(list_asides, "This one sounds simple, but it does most of the work.",
     "Skip it, and the rest gets harder.", "It takes a few minutes and pays off for years.",
     "Most people skip this step.", "You will notice the difference within a week.",
     "It is the easiest win on the list.", "Trust me, it matters more than it looks.",
     "Everything else builds on this one.", "It feels slow at first, and then it clicks.",
     "This is the one people tend to underestimate.", "It costs nothing and works right away.",
     "Do this once and it becomes a habit.", "It is simple, not easy, and that is fine.",
     "Small effort, big payoff.", "It is the step most guides forget to mention.",
     "Give it an honest try before you judge it.", "You will thank yourself later.",
     "It works better than it has any right to.", "It is the one I come back to most.",
     "Do not underestimate it.", "It sounds like common sense, yet few people do it.",
     "This one prevents a lot of frustration.", "Try it for a week and see.",
     "It is small, but it compounds.", "Most experts swear by this one.",
     "It works even when motivation runs out.", "It is quick, and it sticks.",
     "Honestly, this one changed everything for me.");
POOL(list_links, "Now, this next one is underrated.", "Moving on.",
     "Here is one most lists leave out.", "This next one surprises people.",
     "Stay with me for the next one.", "Okay, next.", "Next one.", "Here comes a good one.",
     "Keep going, this one is worth it.", "Quick one now.");
POOL(list_outros, "That is the list, and every point on it works for {T}.",
     "Start with just one of these, and you will feel the difference.",
     "Pick your favorite from the list and try it this week.",
     "Those are the points that actually move the needle on {T}.",
     "If you only remember one, make it the first.");
POOL(list_ctas, "Follow for more lists like this.", "Save this list for later.",
     "Comment which number you liked best.", "Share this with a friend who is into {T}.",
     "Follow for more about {T}.", "Subscribe for the next list on {T}.");

/* story: opening, setup, trouble, struggle, progress, turn, resolution,
 * lesson. The opening introduces the person the later "they" refers to. */
POOL(story_hooks, "Let me tell you how {T} changed one person's week.",
     "Here is a quick story about {T}.",
     "This is a short story about {T}, and it is more relatable than you think.",
     "Nobody expected {T} to matter that much, until it did.",
     "This story about {T} starts with a small mistake.",
     "My friend never cared about {T}, until one afternoon changed everything.",
     "Here is a short story about {T} with a twist at the end.");
POOL(story_openings,
     "It started on an ordinary Tuesday, when a friend of mine had nothing special planned.",
     "A friend of mine had ignored {T} for years.",
     "It began with a simple question a colleague asked over coffee.",
     "My neighbor thought it would be just another busy week.",
     "Picture a student, a quiet evening and a to-do list that would not end.");
POOL(story_setups, "Everything seemed fine, and nobody was worried.",
     "They had heard about {T} before, but never paid much attention.",
     "There was a plan, and it looked good on paper.",
     "Life was busy, and nobody was thinking about {T}.",
     "The routine was comfortable, maybe a little too comfortable.",
     "Every day looked more or less like the one before.",
     "There were bigger worries, or so it seemed.",
     "Nobody in that room would have called themselves an expert on {T}.");
POOL(story_conflicts, "Then something went wrong, and suddenly it was all about {T}.",
     "Then one small detail about {T} threw the whole plan off.",
     "Then came the moment nobody was ready for.",
     "That is when {T} stopped being an abstract idea.",
     "Then the problem showed up at the worst possible time.");
POOL(story_struggles, "The first attempt to fix it made things worse.",
     "They asked around, and everyone had a different opinion.",
     "There were a few late nights and more than one wrong turn.",
     "Frustration set in, and quitting started to look tempting.", "Doubt crept in more than once.",
     "Nobody had a ready answer, so they kept digging.",
     "The advice online contradicted itself at every turn.",
     "They tried the obvious solution first, and of course it failed.",
     "Someone laughed at the idea, which only made them more stubborn.",
     "A week went by with almost no progress.",
     "It was tempting to blame bad luck, but that explained nothing.", "They almost gave up twice.",
     "Hours went into reading about {T}, one page after another.",
     "A notebook filled up with questions, crossed-out ideas and arrows.",
     "Every fix seemed to create a new problem somewhere else.",
     "Even the experts they asked about {T} disagreed with each other.",
     "There was no manual for this, only trial and error.",
     "Some days it felt like walking in circles.");
POOL(story_progress, "Then an old friend offered one piece of advice about {T}.",
     "They started over from the beginning, this time more carefully.",
     "They wrote down what worked and what did not.",
     "One try went better, but something was still missing.",
     "One evening, they noticed a detail everyone else had missed.",
     "They broke the problem into smaller pieces, and each piece was manageable.",
     "Someone suggested looking at {T} from a completely different angle.",
     "They stopped guessing and started measuring.",
     "Every mistake taught them something no book could.",
     "Little by little, the confusion gave way to a plan.",
     "Every small step made the next one a bit easier.",
     "The more they learned about {T}, the less scary everything looked.");
POOL(story_turns, "Then it clicked.", "And then, almost by accident, the answer appeared.",
     "The breakthrough came from the simplest idea of all.",
     "One small change turned everything around.", "Finally, it all made sense.");
POOL(story_resolutions, "Within a week, things were better than before.",
     "The problem that seemed huge was solved in an afternoon.",
     "By the end, {T} felt less like a problem and more like a skill.",
     "Things settled down, and this time they stayed that way.",
     "It worked, and the difference was obvious to everyone.",
     "Friends started asking for advice about {T}, which was a funny twist.");
POOL(story_lessons, "The lesson is simple: with {T}, patience pays off.",
     "Sometimes the smallest detail about {T} makes the biggest difference.",
     "The takeaway: once you stop rushing, everything about {T} gets easier.",
     "It turns out the answer was never complicated, just overlooked.",
     "What changed was not luck but the way they looked at {T}.",
     "Most problems with {T} look bigger before you start than after.");
POOL(story_ctas, "Follow for more stories like this.", "Follow for part two.",
     "Comment if something like this ever happened to you.",
     "Share this with someone who needs the reminder.",
     "Save this story for the next time you deal with {T}.", "Follow for more about {T}.");

/* ---- the plan: candidate sentences, then a selection ------------------- */

typedef enum kind {
    K_PLAIN,   /* no numbering */
    K_ORDINAL, /* {O}: numbered among the kept K_ORDINAL sentences */
    K_NUMBER,  /* {n}: numbered among the kept K_NUMBER sentences */
    K_COUNT,   /* {N}: the number of kept K_NUMBER sentences; needs two */
} kind_t;

typedef struct cand {
    const char *tmpl;         /* the template, from the tables */
    kind_t kind;              /* which numbering it takes when rendered */
    int prio;                 /* 0 is wanted most; the selection goes by priority */
    int parent;               /* the sentence it makes sense only with, or -1 */
    size_t words;             /* its word count once rendered */
    bool on;                  /* kept */
    const char *const *alt_t; /* the pool of the alternatives below */
    uint8_t alt[DECK_MAX];    /* other phrasings for a one-sentence slot, preferred first */
    uint8_t nalt;             /* how many */
} cand_t;

#define PRIO_MAX 6
#define MAX_CANDS 192
#define MAX_FILLERS 256 /* bridges of two words or more: enough to fill even 180 s alone */

typedef struct deck {
    pool_t pool;            /* the templates */
    size_t order[DECK_MAX]; /* a seeded shuffle of their indices */
    size_t pos;             /* the next to draw */
} deck_t;

/* A topic as interpolated: the cleaned topic or its first words. */
typedef struct phrase {
    const char *s; /* the bytes, not NUL-terminated */
    size_t len;    /* how many */
    size_t words;  /* whitespace-separated, >= 1 */
} phrase_t;

/* The body and the call to action name a long topic by its first words: a
 * twenty-word topic said in every sentence would crowd out the content. */
#define BODY_TOPIC_WORDS 6

typedef struct plan {
    phrase_t full;                 /* the topic in the hook (shortened only for a short budget) */
    phrase_t body;                 /* the topic everywhere else */
    uint64_t rng;                  /* the generator's state */
    const char *hook, *cta;        /* the opening and closing sentences */
    cand_t c[MAX_CANDS];           /* the body candidates in spoken order */
    size_t n;                      /* how many */
    const char *fill[MAX_FILLERS]; /* bridges closing the last gap */
    int fill_after[MAX_FILLERS];   /* the candidate each follows; -1: the hook */
    size_t nfill;                  /* how many */
} plan_t;

static void deck_init(deck_t *d, pool_t pool, uint64_t *rng)
{
    d->pool = pool;
    d->pos = 0;
    for (size_t i = 0; i < pool.n; i++)
        d->order[i] = i;
    for (size_t i = pool.n; i > 1; i--) {
        size_t j = (size_t)(rng_next(rng) % i);
        size_t t = d->order[i - 1];
        d->order[i - 1] = d->order[j];
        d->order[j] = t;
    }
}

/* The next template of the shuffle; NULL once all are used, so no sentence is
 * said twice. */
static const char *deck_draw(deck_t *d)
{
    return d->pos < d->pool.n ? d->pool.t[d->order[d->pos++]] : NULL;
}

/* Words of tmpl once rendered: each {T} adds the topic's words to the one
 * token it sits in; the numbering placeholders render as one word. */
static size_t tmpl_words(const phrase_t *t, const char *tmpl)
{
    size_t words = count_words(tmpl, strlen(tmpl));
    for (const char *s = tmpl; (s = strstr(s, "{T}")); s += 3)
        words += t->words - 1;
    return words;
}

static size_t pool_min_words(const phrase_t *t, pool_t pool)
{
    size_t min = SIZE_MAX;
    for (size_t i = 0; i < pool.n; i++) {
        size_t w = tmpl_words(t, pool.t[i]);
        min = w < min ? w : min;
    }
    return min;
}

/* Adds a candidate; returns its index, or -1 when tmpl is NULL (a drained
 * deck) or the plan is full. */
static int plan_add(plan_t *p, const char *tmpl, kind_t kind, int prio, int parent)
{
    if (!tmpl || p->n == MAX_CANDS)
        return -1;
    p->c[p->n] = (cand_t){.tmpl = tmpl,
                          .kind = kind,
                          .prio = prio,
                          .parent = parent,
                          .words = tmpl_words(&p->body, tmpl)};
    return (int)p->n++;
}

/* Adds a one-sentence slot (an intro, a turn, a lesson): the next template of
 * the deck, with the rest of the deck as alternatives, so a short budget can
 * still take a shorter phrasing. The alternatives stay in the deck; the
 * selection never says one sentence twice. */
static int plan_add_slot(plan_t *p, deck_t *d, kind_t kind, int prio, int parent)
{
    int at = plan_add(p, deck_draw(d), kind, prio, parent);
    if (at < 0)
        return -1;
    cand_t *c = &p->c[at];
    c->alt_t = d->pool.t;
    for (size_t i = d->pos; i < d->pool.n; i++)
        c->alt[c->nalt++] = (uint8_t)d->order[i];
    return at;
}

/* Numbered points (facts' claims, listicle items, hook's beats) with an
 * optional link before each point but the first and up to two asides after
 * it. The first asides go to all points before any point gets a second, so
 * the asides spread over the script. prio_of holds the priorities of points
 * 1-2, 3-4, 5-6 and the rest. */
static void add_points(plan_t *p, deck_t *points, deck_t *links, deck_t *asides, kind_t kind,
                       const int prio_of[4])
{
    const char *pt[DECK_MAX], *a1[DECK_MAX], *a2[DECK_MAX], *ln[DECK_MAX];
    size_t n = 0;
    while (n < DECK_MAX && (pt[n] = deck_draw(points)))
        n++;
    for (size_t k = 0; k < n; k++)
        a1[k] = deck_draw(asides);
    for (size_t k = 0; k < n; k++)
        a2[k] = deck_draw(asides);
    /* A link before every other point: a link before each would drone. */
    for (size_t k = 0; k < n; k++)
        ln[k] = k > 0 && k % 2 == 1 ? deck_draw(links) : NULL;
    for (size_t k = 0; k < n; k++) {
        int prio = prio_of[k < 2 ? 0 : k < 4 ? 1 : k < 6 ? 2 : 3];
        if (ln[k])
            plan_add(p, ln[k], K_PLAIN, 5, (int)p->n + 1);
        int at = plan_add(p, pt[k], kind, prio, -1);
        if (at < 0)
            return;
        int first = plan_add(p, a1[k], K_PLAIN, 4, at);
        if (first >= 0)
            plan_add(p, a2[k], K_PLAIN, 6, first);
    }
}

static void build_hook(plan_t *p)
{
    deck_t setups, beats, links, aside, payoffs;
    deck_init(&setups, hook_setups, &p->rng);
    deck_init(&beats, hook_beats, &p->rng);
    deck_init(&links, hook_links, &p->rng);
    deck_init(&aside, shared_asides, &p->rng);
    deck_init(&payoffs, hook_payoffs, &p->rng);
    plan_add_slot(p, &setups, K_PLAIN, 0, -1);
    add_points(p, &beats, &links, &aside, K_PLAIN, (const int[4]){1, 2, 3, 5});
    int payoff = plan_add_slot(p, &payoffs, K_PLAIN, 0, -1);
    plan_add(p, deck_draw(&payoffs), K_PLAIN, 6, payoff);
}

static void build_facts(plan_t *p)
{
    deck_t intros, claims, links, aside, outros;
    deck_init(&intros, facts_intros, &p->rng);
    deck_init(&claims, facts_claims, &p->rng);
    deck_init(&links, facts_links, &p->rng);
    deck_init(&aside, shared_asides, &p->rng);
    deck_init(&outros, facts_outros, &p->rng);
    /* An intro or outro around no claim at all would promise what never
     * comes: both hang on the first claim. */
    int first = plan_add_slot(p, &intros, K_PLAIN, 1, (int)p->n + 1);
    add_points(p, &claims, &links, &aside, K_ORDINAL, (const int[4]){0, 2, 3, 5});
    plan_add_slot(p, &outros, K_PLAIN, 1, first + 1);
}

static void build_listicle(plan_t *p)
{
    deck_t intros, items, links, aside, outros;
    deck_init(&intros, list_intros, &p->rng);
    deck_init(&items, list_items, &p->rng);
    deck_init(&links, list_links, &p->rng);
    deck_init(&aside, list_asides, &p->rng);
    deck_init(&outros, list_outros, &p->rng);
    int first = plan_add_slot(p, &intros, K_COUNT, 1, (int)p->n + 1);
    add_points(p, &items, &links, &aside, K_NUMBER, (const int[4]){0, 2, 3, 5});
    plan_add_slot(p, &outros, K_PLAIN, 1, first + 1);
}

/* Adds up to max sentences of a deck in a row: the first, a slot with
 * alternatives, at prio, the rest at rest_prio. */
static void add_run(plan_t *p, deck_t *d, size_t max, int prio, int rest_prio)
{
    plan_add_slot(p, d, K_PLAIN, prio, -1);
    for (size_t i = 1; i < max; i++)
        plan_add(p, deck_draw(d), K_PLAIN, rest_prio, -1);
}

static void build_story(plan_t *p)
{
    deck_t d[8];
    const pool_t *pools[8] = {&story_openings, &story_setups, &story_conflicts,   &story_struggles,
                              &story_progress, &story_turns,  &story_resolutions, &story_lessons};
    for (size_t i = 0; i < 8; i++)
        deck_init(&d[i], *pools[i], &p->rng);
    /* The arc survives the shortest budgets: opening, trouble and lesson
     * first, then the turn and how it ended, then the middle. */
    add_run(p, &d[0], 1, 0, 0);
    add_run(p, &d[1], DECK_MAX, 2, 5);
    add_run(p, &d[2], 1, 0, 0);
    add_run(p, &d[3], DECK_MAX, 2, 4);
    add_run(p, &d[4], DECK_MAX, 3, 4);
    add_run(p, &d[5], 1, 1, 1);
    add_run(p, &d[6], 3, 1, 5);
    add_run(p, &d[7], 2, 0, 6);
}

typedef struct genre {
    const char *name;         /* as in the schema's enum */
    const pool_t *hooks;      /* the opening sentence */
    const pool_t *ctas;       /* the closing call to action */
    void (*build)(plan_t *p); /* lays out the body candidates */
} genre_t;

static const genre_t genres[] = {
    {"hook", &hook_hooks, &hook_ctas, build_hook},
    {"facts", &facts_hooks, &facts_ctas, build_facts},
    {"story", &story_hooks, &story_ctas, build_story},
    {"listicle", &list_hooks, &list_ctas, build_listicle},
};

/* The first template of the shuffle with at most max words; else the
 * shortest (the earliest of the shuffle on a tie). */
static const char *pick_fitting(const phrase_t *topic, const deck_t *d, size_t max)
{
    const char *best = NULL;
    size_t best_words = SIZE_MAX;
    for (size_t i = 0; i < d->pool.n; i++) {
        const char *t = d->pool.t[d->order[i]];
        size_t w = tmpl_words(topic, t);
        if (w <= max)
            return t;
        if (w < best_words)
            best = t, best_words = w;
    }
    return best;
}

static size_t count_on(const plan_t *p, kind_t kind)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++)
        n += p->c[i].on && p->c[i].kind == kind;
    return n;
}

static bool is_said(const plan_t *p, const char *tmpl)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->c[i].on && p->c[i].tmpl == tmpl)
            return true;
    return false;
}

/* Whether c, or one of its alternatives (which then replaces it), fits in
 * room words without repeating a kept sentence. */
static bool cand_fit(plan_t *p, cand_t *c, size_t room)
{
    if (c->words <= room && !is_said(p, c->tmpl))
        return true;
    for (size_t i = 0; i < c->nalt; i++) {
        const char *t = c->alt_t[c->alt[i]];
        size_t w = tmpl_words(&p->body, t);
        if (w <= room && !is_said(p, t)) {
            c->tmpl = t, c->words = w;
            return true;
        }
    }
    return false;
}

/* Keeps candidates by priority, in spoken order within one priority, while
 * the total stays within limit and is below enough. A candidate whose parent
 * was not kept, or a count with fewer than two items to count, is passed
 * over. */
static void plan_select(plan_t *p, size_t limit, size_t enough, size_t *total)
{
    for (int prio = 0; prio <= PRIO_MAX; prio++) {
        for (size_t i = 0; i < p->n && *total < enough; i++) {
            cand_t *c = &p->c[i];
            if (c->on || c->prio != prio)
                continue;
            if (c->parent >= 0 && !p->c[c->parent].on)
                continue;
            if (c->kind == K_COUNT && count_on(p, K_NUMBER) < 2)
                continue;
            /* The hook and call to action alone may pass the target. */
            if (*total >= limit || !cand_fit(p, c, limit - *total))
                continue;
            c->on = true;
            *total += c->words;
        }
    }
}

/* When the body left the total outside [lo, hi], tries the other hooks and
 * calls to action (the current hook first, both in shuffle order) for a pair
 * that lands inside. */
static void plan_refit(plan_t *p, const deck_t *hooks, const deck_t *ctas, size_t lo, size_t hi,
                       size_t *total)
{
    size_t body = *total - tmpl_words(&p->full, p->hook) - tmpl_words(&p->body, p->cta);
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < hooks->pool.n; i++) {
            const char *h = hooks->pool.t[hooks->order[i]];
            if ((pass == 0) != (h == p->hook))
                continue;
            for (size_t j = 0; j < ctas->pool.n; j++) {
                const char *c = ctas->pool.t[ctas->order[j]];
                size_t t = body + tmpl_words(&p->full, h) + tmpl_words(&p->body, c);
                if (t >= lo && t <= hi) {
                    p->hook = h, p->cta = c, *total = t;
                    return;
                }
            }
        }
    }
}

/* Closes a gap below lo with bridges, spread backwards over the body from
 * its end, one after each kept sentence (after the hook, then round again,
 * when the body runs out). */
static void plan_fill(plan_t *p, size_t lo, size_t hi, size_t *total)
{
    int on[MAX_CANDS];
    size_t m = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->c[i].on)
            on[m++] = (int)i;
    deck_t d;
    deck_init(&d, fillers, &p->rng);
    size_t misses = 0;
    while (*total < lo && p->nfill < MAX_FILLERS && misses <= fillers.n) {
        const char *f = deck_draw(&d);
        if (!f) {
            d.pos = 0; /* all said once: repeating beats missing the budget */
            continue;
        }
        size_t w = tmpl_words(&p->body, f);
        if (*total + w > hi) {
            misses++; /* cannot happen with bridges of at most 3 words; no endless loop */
            continue;
        }
        size_t q = p->nfill % (m + 1);
        p->fill[p->nfill] = f;
        p->fill_after[p->nfill++] = q < m ? on[m - 1 - q] : -1;
        *total += w;
    }
}

static const char *const ordinals[] = {"First", "Second",  "Third",  "Fourth", "Fifth",
                                       "Sixth", "Seventh", "Eighth", "Ninth",  "Tenth"};
static const char *const numbers[] = {
    "zero",        "one",         "two",        "three",        "four",         "five",
    "six",         "seven",       "eight",      "nine",         "ten",          "eleven",
    "twelve",      "thirteen",    "fourteen",   "fifteen",      "sixteen",      "seventeen",
    "eighteen",    "nineteen",    "twenty",     "twenty-one",   "twenty-two",   "twenty-three",
    "twenty-four", "twenty-five", "twenty-six", "twenty-seven", "twenty-eight", "twenty-nine",
    "thirty"};

/* "First", ..., "Tenth", then "Next"/"Also"; the last of three or more is
 * "Finally". */
static const char *ordinal(size_t i, size_t of)
{
    if (of >= 3 && i == of - 1)
        return "Finally";
    if (i < sizeof ordinals / sizeof *ordinals)
        return ordinals[i];
    return i % 2 ? "Also" : "Next";
}

static const char *number(size_t i)
{
    return i < sizeof numbers / sizeof *numbers ? numbers[i] : "another";
}

/* Renders one sentence; num is the sentence's place among its kind (from 0),
 * count the number of kept items. */
static void render(strbuf_t *b, const phrase_t *topic, const char *tmpl, size_t num, size_t of,
                   size_t items)
{
    if (b->len)
        strbuf_append_len(b, " ", 1);
    for (const char *s = tmpl; *s;) {
        const char *ph = strchr(s, '{');
        if (!ph) {
            strbuf_append(b, s);
            break;
        }
        strbuf_append_len(b, s, (size_t)(ph - s));
        if (strncmp(ph, "{T}", 3) == 0)
            strbuf_append_len(b, topic->s, topic->len);
        else if (strncmp(ph, "{O}", 3) == 0)
            strbuf_append(b, ordinal(num, of));
        else if (strncmp(ph, "{n}", 3) == 0)
            strbuf_append(b, number(num + 1));
        else if (strncmp(ph, "{N}", 3) == 0)
            strbuf_append(b, number(items));
        s = ph + 3;
    }
}

static void render_fillers(strbuf_t *b, const plan_t *p, int after)
{
    for (size_t f = 0; f < p->nfill; f++)
        if (p->fill_after[f] == after)
            render(b, &p->body, p->fill[f], 0, 0, 0);
}

int script_gen_generate(const char *topic, const char *genre, double duration_s, char **out,
                        char *errbuf, size_t errlen)
{
    if (!out)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "out is NULL");
    *out = NULL;
    if (!topic)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "topic is missing");
    if (!genre)
        genre = SCRIPT_GEN_DEFAULT_GENRE;
    const genre_t *g = NULL;
    for (size_t i = 0; i < sizeof genres / sizeof *genres; i++)
        if (strcmp(genres[i].name, genre) == 0)
            g = &genres[i];
    if (!g)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "genre '%.40s' is not one of hook, facts, story, listicle", genre);
    if (!(duration_s >= SCRIPT_GEN_DURATION_MIN_S && duration_s <= SCRIPT_GEN_DURATION_MAX_S))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "duration_s must be between %g and %g seconds, got %g",
                          SCRIPT_GEN_DURATION_MIN_S, SCRIPT_GEN_DURATION_MAX_S, duration_s);
    strbuf_t clean = STRBUF_INIT;
    int rc = topic_clean(topic, &clean, errbuf, errlen);
    if (rc) {
        strbuf_free(&clean);
        return rc;
    }
    plan_t *p = calloc(1, sizeof *p);
    if (!p) {
        strbuf_free(&clean);
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    }

    /* The budget, with a hair of margin so float rounding never puts an
     * integer word count on the wrong side of a bound. */
    double budget = duration_s * SCRIPT_GEN_WORDS_PER_SECOND;
    size_t lo = (size_t)ceil(budget * (1 - SCRIPT_GEN_TOLERANCE) + 1e-7);
    size_t hi = (size_t)floor(budget * (1 + SCRIPT_GEN_TOLERANCE) - 1e-7);
    size_t target = (size_t)floor(budget + 0.5);
    target = target < lo ? lo : target > hi ? hi : target;

    p->rng = fnv1a(fnv1a(0xcbf29ce484222325ULL, clean.p, clean.len + 1), g->name, strlen(g->name));
    deck_t hooks, ctas;
    deck_init(&hooks, *g->hooks, &p->rng);
    deck_init(&ctas, *g->ctas, &p->rng);

    /* The shortest hook and call to action must fit; a topic that does not
     * let them is shortened word by word. */
    size_t words = count_words(clean.p, clean.len);
    for (size_t k = words; k >= 1; k--) {
        size_t len = topic_prefix(clean.p, clean.len, k);
        p->full = (phrase_t){clean.p, len, count_words(clean.p, len)};
        len = topic_prefix(clean.p, clean.len, k < BODY_TOPIC_WORDS ? k : BODY_TOPIC_WORDS);
        p->body = (phrase_t){clean.p, len, count_words(clean.p, len)};
        if (pool_min_words(&p->full, *g->hooks) + pool_min_words(&p->body, *g->ctas) <= hi)
            break;
    }

    /* First the hook and call to action the seed prefers, as long as the
     * budget leaves room for a body; when the body's sentences are too long
     * for the room they leave (a long topic in a short video), a shorter call
     * to action, then the shortest pair, before any bridge is used. */
    size_t min_cta = pool_min_words(&p->body, *g->ctas);
    const char *hook = pick_fitting(&p->full, &hooks, target > min_cta ? target - min_cta : 0);
    size_t hook_words = tmpl_words(&p->full, hook);
    const char *tries[3][2] = {
        {hook, pick_fitting(&p->body, &ctas, target > hook_words ? target - hook_words : 0)},
        {hook, pick_fitting(&p->body, &ctas, 0)},
        {pick_fitting(&p->full, &hooks, 0), pick_fitting(&p->body, &ctas, 0)},
    };
    uint64_t rng = p->rng;
    size_t total = 0;
    for (size_t t = 0; t < 3 && total < lo; t++) {
        p->rng = rng; /* the same body candidates each try */
        p->n = 0;
        p->hook = tries[t][0];
        p->cta = tries[t][1];
        total = tmpl_words(&p->full, p->hook) + tmpl_words(&p->body, p->cta);
        g->build(p);
        /* Up to the target first; past it only as far as the lower bound needs. */
        plan_select(p, target, SIZE_MAX, &total);
        plan_select(p, hi, lo, &total);
        if (total < lo)
            plan_refit(p, &hooks, &ctas, lo, hi, &total);
    }
    plan_fill(p, lo, hi, &total);

    strbuf_t b = STRBUF_INIT;
    size_t ords = count_on(p, K_ORDINAL), items = count_on(p, K_NUMBER), ord = 0, item = 0;
    render(&b, &p->full, p->hook, 0, 0, 0);
    render_fillers(&b, p, -1);
    for (size_t i = 0; i < p->n; i++) {
        const cand_t *c = &p->c[i];
        if (!c->on)
            continue;
        if (c->kind == K_ORDINAL)
            render(&b, &p->body, c->tmpl, ord++, ords, items);
        else if (c->kind == K_NUMBER)
            render(&b, &p->body, c->tmpl, item++, items, items);
        else
            render(&b, &p->body, c->tmpl, 0, 0, items);
        render_fillers(&b, p, (int)i);
    }
    render(&b, &p->body, p->cta, 0, 0, 0);
    free(p);
    strbuf_free(&clean);
    *out = strbuf_take(&b, NULL);
    if (!*out)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    return 0;
}

/* ---- transforms ------------------------------------------------------------ */

typedef struct sent {
    size_t start, end; /* byte span in the text, without surrounding whitespace */
    size_t words;      /* whitespace-separated tokens */
    char term;         /* '?' if its ending has one, else '!' if it has one, else '.'; 0 for a
                          trailing fragment without ending punctuation */
} sent_t;

/* Length of a closing quote or bracket at s (n bytes left), else 0. */
static size_t closer_len(const char *s, size_t n)
{
    if (s[0] && strchr("\"')]", s[0]))
        return 1;
    if (n >= 3 && memcmp(s, "\xE2\x80\x9D", 3) == 0) /* right double quote */
        return 3;
    if (n >= 3 && memcmp(s, "\xE2\x80\x99", 3) == 0) /* right single quote */
        return 3;
    if (n >= 2 && memcmp(s, "\xC2\xBB", 2) == 0) /* right guillemet */
        return 2;
    return 0;
}

/* Length of sentence-ending punctuation at s (. ! ? or an ellipsis), else 0. */
static size_t ender_len(const char *s, size_t n)
{
    if (s[0] == '.' || s[0] == '!' || s[0] == '?')
        return 1;
    if (n >= 3 && memcmp(s, "\xE2\x80\xA6", 3) == 0)
        return 3;
    return 0;
}

/* Splits text into sentences (see the header); returns how many, with *out
 * malloc'd (NULL when there are none), or SIZE_MAX when out of memory. */
static size_t split_sentences(const char *s, size_t n, sent_t **out)
{
    sent_t *v = NULL;
    size_t count = 0, cap = 0, i = 0;
    *out = NULL;
    for (;;) {
        while (i < n && is_space(s[i]))
            i++;
        if (i >= n)
            break;
        sent_t cur = {i, n, 0, 0};
        while (i < n) {
            size_t k = ender_len(s + i, n - i);
            if (!k) {
                i++;
                continue;
            }
            bool q = false, ex = false;
            while (i < n && (k = ender_len(s + i, n - i))) {
                q |= s[i] == '?', ex |= s[i] == '!';
                i += k;
            }
            while (i < n && (k = closer_len(s + i, n - i)))
                i += k;
            if (i >= n || is_space(s[i])) {
                cur.end = i;
                cur.term = q ? '?' : ex ? '!' : '.';
                break;
            }
        }
        while (cur.end > cur.start && is_space(s[cur.end - 1]))
            cur.end--;
        cur.words = count_words(s + cur.start, cur.end - cur.start);
        if (vec_reserve(v, cap, count + 1) != 0) {
            free(v);
            return SIZE_MAX;
        }
        v[count++] = cur;
    }
    *out = v;
    return count;
}

static void trim(strbuf_t *b, const char *s, const sent_t *v, size_t ns, size_t max)
{
    size_t keep = 0, words = 0;
    while (keep < ns && words + v[keep].words <= max)
        words += v[keep++].words;
    if (keep) {
        strbuf_append_len(b, s + v[0].start, v[keep - 1].end - v[0].start);
        return;
    }
    /* The first sentence alone is too long: its first max words, closed. */
    size_t i = v[0].start, w = 0, end = i;
    while (i < v[0].end && w < max) {
        while (is_space(s[i]))
            i++;
        while (i < v[0].end && !is_space(s[i]))
            i++;
        end = i, w++;
    }
    size_t cut = end;
    for (;;) {
        if (cut > v[0].start && strchr(",;:-", s[cut - 1]))
            cut--;
        else if (cut >= v[0].start + 3 && (memcmp(s + cut - 3, "\xE2\x80\x93", 3) == 0 ||
                                           memcmp(s + cut - 3, "\xE2\x80\x94", 3) == 0))
            cut -= 3; /* en or em dash */
        else if (cut > v[0].start && is_space(s[cut - 1]))
            cut--;
        else
            break;
    }
    if (cut == v[0].start)
        cut = end; /* nothing but punctuation: keep it rather than say nothing */
    strbuf_append_len(b, s + v[0].start, cut - v[0].start);
    if (!strchr(".!?", s[cut - 1]))
        strbuf_append_len(b, ".", 1);
}

/* The sentence hook_first moves to the front, or 0 for none (see the header). */
static size_t hook_pick(const sent_t *v, size_t ns)
{
    if (ns < 2 || v[0].term == '?' || v[0].term == '!')
        return 0;
    for (size_t k = 1; k < ns; k++)
        if (v[k].term == '?')
            return k;
    for (size_t k = 1; k < ns; k++)
        if (v[k].term == '!')
            return k;
    if (v[0].words <= SCRIPT_GEN_PUNCHY_WORDS)
        return 0;
    size_t best = 0;
    for (size_t k = 1; k < ns; k++)
        if (v[k].words <= SCRIPT_GEN_PUNCHY_WORDS && (!best || v[k].words < v[best].words))
            best = k;
    return best;
}

static void hook_first(strbuf_t *b, const char *s, const sent_t *v, size_t ns)
{
    size_t pick = hook_pick(v, ns);
    if (!pick) {
        strbuf_append(b, s);
        return;
    }
    strbuf_append_len(b, s + v[pick].start, v[pick].end - v[pick].start);
    if (!v[pick].term)
        strbuf_append_len(b, ".", 1);
    for (size_t k = 0; k < ns; k++) {
        if (k == pick)
            continue;
        strbuf_append_len(b, " ", 1);
        strbuf_append_len(b, s + v[k].start, v[k].end - v[k].start);
    }
}

/* The upper case of c, or c; *two gets the second letter of a one-to-two
 * mapping (sharp s to "SS"), else 0. Ranges of alternating upper/lower pairs
 * are written as such; the irregular ones are listed. */
static uint32_t upper_cp(uint32_t c, uint32_t *two)
{
    static const uint32_t pairs[][2] = {
        {0x0FF, 0x178}, {0x131, 'I'},   {0x17F, 'S'},   {0x180, 0x243}, {0x183, 0x182},
        {0x185, 0x184}, {0x188, 0x187}, {0x18C, 0x18B}, {0x192, 0x191}, {0x195, 0x1F6},
        {0x199, 0x198}, {0x19A, 0x23D}, {0x19E, 0x220}, {0x1A1, 0x1A0}, {0x1A3, 0x1A2},
        {0x1A5, 0x1A4}, {0x1A8, 0x1A7}, {0x1AD, 0x1AC}, {0x1B0, 0x1AF}, {0x1B4, 0x1B3},
        {0x1B6, 0x1B5}, {0x1B9, 0x1B8}, {0x1BD, 0x1BC}, {0x1BF, 0x1F7}, {0x1C5, 0x1C4},
        {0x1C6, 0x1C4}, {0x1C8, 0x1C7}, {0x1C9, 0x1C7}, {0x1CB, 0x1CA}, {0x1CC, 0x1CA},
        {0x1DD, 0x18E}, {0x1F2, 0x1F1}, {0x1F3, 0x1F1}, {0x1F5, 0x1F4}, {0x23C, 0x23B},
        {0x242, 0x241}, {0x3AC, 0x386}, {0x3C2, 0x3A3}, {0x3CC, 0x38C}, {0x4CF, 0x4C0},
    };
    /* [first, last] of ranges of pairs where the lower case is the odd (or
     * even) code point and the upper case the one before it. */
    static const uint32_t odd_lower[][2] = {
        {0x100, 0x12F}, {0x132, 0x137}, {0x14A, 0x177},   {0x1DE, 0x1EF},
        {0x1F8, 0x21F}, {0x222, 0x233}, {0x246, 0x24F},   {0x460, 0x481},
        {0x48A, 0x4BF}, {0x4D0, 0x52F}, {0x1E00, 0x1E95}, {0x1EA0, 0x1EFF},
    };
    static const uint32_t even_lower[][2] = {
        {0x139, 0x148}, {0x179, 0x17E}, {0x1CD, 0x1DC}, {0x4C1, 0x4CE}};
    /* [first, last, distance to the upper case] of blocks that shift. */
    static const uint32_t shifted[][3] = {
        {'a', 'z', 0x20},     {0xE0, 0xF6, 0x20},   {0xF8, 0xFE, 0x20},     {0x3AD, 0x3AF, 0x25},
        {0x3B1, 0x3C1, 0x20}, {0x3C3, 0x3CB, 0x20}, {0x3CD, 0x3CE, 0x3F},   {0x430, 0x44F, 0x20},
        {0x450, 0x45F, 0x50}, {0x561, 0x586, 0x30}, {0xFF41, 0xFF5A, 0x20},
    };
    *two = 0;
    if (c == 0xDF) {
        *two = 'S';
        return 'S';
    }
    for (size_t i = 0; i < sizeof shifted / sizeof *shifted; i++)
        if (c >= shifted[i][0] && c <= shifted[i][1])
            return c - shifted[i][2];
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++)
        if (c == pairs[i][0])
            return pairs[i][1];
    for (size_t i = 0; i < sizeof odd_lower / sizeof *odd_lower; i++)
        if (c >= odd_lower[i][0] && c <= odd_lower[i][1])
            return (c & 1) ? c - 1 : c;
    for (size_t i = 0; i < sizeof even_lower / sizeof *even_lower; i++)
        if (c >= even_lower[i][0] && c <= even_lower[i][1])
            return (c & 1) ? c : c - 1;
    return c;
}

static void uppercase(strbuf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t c, two;
        size_t k = script_text_utf8_decode((const unsigned char *)s + i, n - i, &c);
        uint32_t u = upper_cp(c, &two);
        if (u == c)
            strbuf_append_len(b, s + i, k); /* untouched bytes stay exactly as they were */
        else
            utf8_put(b, u);
        if (two)
            utf8_put(b, two);
        i += k;
    }
}

int script_gen_transform(const char *text, const char *op, int max_words, char **out, char *errbuf,
                         size_t errlen)
{
    if (!out)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "out is NULL");
    *out = NULL;
    if (!op)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "op is missing");
    bool is_trim = strcmp(op, "trim") == 0, is_upper = strcmp(op, "uppercase") == 0;
    if (!is_trim && !is_upper && strcmp(op, "hook_first") != 0)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "op '%.40s' is not one of trim, uppercase, hook_first", op);
    if (!text)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "text is missing");
    size_t n = strlen(text);
    int rc = utf8_check("text", text, n, errbuf, errlen);
    if (rc)
        return rc;
    if (count_words(text, n) == 0)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "text is empty");
    if (is_trim && max_words < 1)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "max_words must be at least 1, got %d",
                          max_words);

    strbuf_t b = STRBUF_INIT;
    if (is_upper) {
        uppercase(&b, text, n);
    } else {
        sent_t *v;
        size_t ns = split_sentences(text, n, &v);
        if (ns == SIZE_MAX)
            return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
        if (is_trim)
            trim(&b, text, v, ns, (size_t)max_words);
        else
            hook_first(&b, text, v, ns);
        free(v);
    }
    *out = strbuf_take(&b, NULL);
    if (!*out)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    return 0;
}
