/* script_gen.c - the offline script generator: the topic, the word budget,
 * and the layout of each genre; the rules are in the header. What it says
 * is data (schemas/script_phrasing.json, loaded by script_gen_phrasing.c):
 * a genre is its pools of templates plus a short function here that lays
 * them out in the genre's order with priorities. The transforms are in
 * script_gen_transform.c. */
#include "actors/text/script_gen.h"
#include "actors/text/script_gen_internal.h"
#include "actors/text/script_text.h"
#include "runtime/error.h"
#include "runtime/strbuf.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- UTF-8 and words ---------------------------------------------------- */

int script_gen__utf8_check(const char *what, const char *s, size_t n, char *errbuf, size_t errlen)
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

bool script_gen__is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

size_t script_gen__count_words(const char *s, size_t n)
{
    size_t words = 0;
    bool in = false;
    for (size_t i = 0; i < n; i++) {
        if (script_gen__is_space(s[i]))
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
static int topic_clean(const script_gen__phrasing_t *ph, const char *topic, strbuf_t *b,
                       char *errbuf, size_t errlen)
{
    size_t n = strlen(topic), chars = 0;
    int rc = script_gen__utf8_check("topic", topic, n, errbuf, errlen);
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
    for (size_t i = 0; i < ph->leads.n; i++) { /* capitalised ASCII words: the schema says so */
        const char *w = ph->leads.t[i];
        size_t k = strlen(w);
        if (strncmp(b->p, w, k) == 0 && (b->p[k] == ' ' || b->p[k] == '\0'))
            b->p[0] = (char)(b->p[0] - 'A' + 'a');
    }
    return 0;
}

/* Words a shortened topic must not end on. */
static bool is_dangling(const script_gen__phrasing_t *ph, const char *w, size_t n)
{
    for (size_t i = 0; i < ph->dangling.n; i++)
        if (strlen(ph->dangling.t[i]) == n && strncasecmp(ph->dangling.t[i], w, n) == 0)
            return true;
    return false;
}

/* Byte length of the topic (cleaned: single spaces) cut to its first k
 * words, without a dangling function word or punctuation at the cut. */
static size_t topic_prefix(const script_gen__phrasing_t *ph, const char *t, size_t len, size_t k)
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
        if (start == 0 || !is_dangling(ph, t + start, end - start))
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

/* ---- the phrasing ------------------------------------------------------- */

/* Placeholders: {T} the topic, {O} an ordinal ("First", ..., "Finally"), {n}
 * an item's number and {N} the item count, as words (the phrasing file and
 * its schema say which pool may use which). The tables' order is the
 * output's: the decks below shuffle pool indices, so a pool read from the
 * file in its order gives the scripts the tables compiled in here gave. */
typedef script_gen__pool_t pool_t;
#define DECK_MAX SCRIPT_GEN__POOL_MAX
#define POOL(id) (p->ph->pool[SCRIPT_GEN__P_##id])

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
    const script_gen__phrasing_t *ph; /* what there is to say */
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
    size_t words = script_gen__count_words(tmpl, strlen(tmpl));
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
    deck_init(&setups, POOL(HOOK_SETUPS), &p->rng);
    deck_init(&beats, POOL(HOOK_BEATS), &p->rng);
    deck_init(&links, POOL(HOOK_LINKS), &p->rng);
    deck_init(&aside, POOL(ASIDES), &p->rng);
    deck_init(&payoffs, POOL(HOOK_PAYOFFS), &p->rng);
    plan_add_slot(p, &setups, K_PLAIN, 0, -1);
    add_points(p, &beats, &links, &aside, K_PLAIN, (const int[4]){1, 2, 3, 5});
    int payoff = plan_add_slot(p, &payoffs, K_PLAIN, 0, -1);
    plan_add(p, deck_draw(&payoffs), K_PLAIN, 6, payoff);
}

static void build_facts(plan_t *p)
{
    deck_t intros, claims, links, aside, outros;
    deck_init(&intros, POOL(FACTS_INTROS), &p->rng);
    deck_init(&claims, POOL(FACTS_CLAIMS), &p->rng);
    deck_init(&links, POOL(FACTS_LINKS), &p->rng);
    deck_init(&aside, POOL(ASIDES), &p->rng);
    deck_init(&outros, POOL(FACTS_OUTROS), &p->rng);
    /* An intro or outro around no claim at all would promise what never
     * comes: both hang on the first claim. */
    int first = plan_add_slot(p, &intros, K_PLAIN, 1, (int)p->n + 1);
    add_points(p, &claims, &links, &aside, K_ORDINAL, (const int[4]){0, 2, 3, 5});
    plan_add_slot(p, &outros, K_PLAIN, 1, first + 1);
}

static void build_listicle(plan_t *p)
{
    deck_t intros, items, links, aside, outros;
    deck_init(&intros, POOL(LIST_INTROS), &p->rng);
    deck_init(&items, POOL(LIST_ITEMS), &p->rng);
    deck_init(&links, POOL(LIST_LINKS), &p->rng);
    deck_init(&aside, POOL(LIST_ASIDES), &p->rng);
    deck_init(&outros, POOL(LIST_OUTROS), &p->rng);
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
    const pool_t pools[8] = {POOL(STORY_OPENINGS),    POOL(STORY_SETUPS),   POOL(STORY_CONFLICTS),
                             POOL(STORY_STRUGGLES),   POOL(STORY_PROGRESS), POOL(STORY_TURNS),
                             POOL(STORY_RESOLUTIONS), POOL(STORY_LESSONS)};
    for (size_t i = 0; i < 8; i++)
        deck_init(&d[i], pools[i], &p->rng);
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
    const char *name;            /* as in the schema's enum */
    script_gen__pool_id_t hooks; /* the opening sentence */
    script_gen__pool_id_t ctas;  /* the closing call to action */
    void (*build)(plan_t *p);    /* lays out the body candidates */
} genre_t;

static const genre_t genres[] = {
    {"hook", SCRIPT_GEN__P_HOOK_HOOKS, SCRIPT_GEN__P_HOOK_CTAS, build_hook},
    {"facts", SCRIPT_GEN__P_FACTS_HOOKS, SCRIPT_GEN__P_FACTS_CTAS, build_facts},
    {"story", SCRIPT_GEN__P_STORY_HOOKS, SCRIPT_GEN__P_STORY_CTAS, build_story},
    {"listicle", SCRIPT_GEN__P_LIST_HOOKS, SCRIPT_GEN__P_LIST_CTAS, build_listicle},
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
        if (p->c[i].on && strcmp(p->c[i].tmpl, tmpl) == 0) /* by text: pools may share one */
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
    pool_t fillers = POOL(FILLERS);
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

/* "First", ..., "Tenth", then "Next"/"Also" in turn; the last of three or
 * more is "Finally" (in the file's words). */
static const char *ordinal(const script_gen__phrasing_t *w, size_t i, size_t of)
{
    if (of >= 3 && i == of - 1)
        return w->ordinal_last;
    if (i < w->ordinals.n)
        return w->ordinals.t[i];
    return w->ordinal_more[i % 2];
}

static const char *number(const script_gen__phrasing_t *w, size_t i)
{
    return i < w->numbers.n ? w->numbers.t[i] : w->number_more;
}

/* Renders one sentence; num is the sentence's place among its kind (from 0),
 * count the number of kept items. */
static void render(strbuf_t *b, const script_gen__phrasing_t *w, const phrase_t *topic,
                   const char *tmpl, size_t num, size_t of, size_t items)
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
            strbuf_append(b, ordinal(w, num, of));
        else if (strncmp(ph, "{n}", 3) == 0)
            strbuf_append(b, number(w, num + 1));
        else if (strncmp(ph, "{N}", 3) == 0)
            strbuf_append(b, number(w, items));
        s = ph + 3;
    }
}

static void render_fillers(strbuf_t *b, const plan_t *p, int after)
{
    for (size_t f = 0; f < p->nfill; f++)
        if (p->fill_after[f] == after)
            render(b, p->ph, &p->body, p->fill[f], 0, 0, 0);
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
    const script_gen__phrasing_t *ph;
    int rc = script_gen__phrasing(&ph, errbuf, errlen);
    if (rc)
        return rc;
    strbuf_t clean = STRBUF_INIT;
    rc = topic_clean(ph, topic, &clean, errbuf, errlen);
    if (rc) {
        strbuf_free(&clean);
        return rc;
    }
    plan_t *p = calloc(1, sizeof *p);
    if (!p) {
        strbuf_free(&clean);
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    }
    p->ph = ph;
    const pool_t g_hooks = ph->pool[g->hooks], g_ctas = ph->pool[g->ctas];

    /* The budget, with a hair of margin so float rounding never puts an
     * integer word count on the wrong side of a bound. */
    double budget = duration_s * SCRIPT_GEN_WORDS_PER_SECOND;
    size_t lo = (size_t)ceil(budget * (1 - SCRIPT_GEN_TOLERANCE) + 1e-7);
    size_t hi = (size_t)floor(budget * (1 + SCRIPT_GEN_TOLERANCE) - 1e-7);
    size_t target = (size_t)floor(budget + 0.5);
    target = target < lo ? lo : target > hi ? hi : target;

    p->rng = fnv1a(fnv1a(0xcbf29ce484222325ULL, clean.p, clean.len + 1), g->name, strlen(g->name));
    deck_t hooks, ctas;
    deck_init(&hooks, g_hooks, &p->rng);
    deck_init(&ctas, g_ctas, &p->rng);

    /* The shortest hook and call to action must fit; a topic that does not
     * let them is shortened word by word. */
    size_t words = script_gen__count_words(clean.p, clean.len);
    for (size_t k = words; k >= 1; k--) {
        size_t len = topic_prefix(ph, clean.p, clean.len, k);
        p->full = (phrase_t){clean.p, len, script_gen__count_words(clean.p, len)};
        len = topic_prefix(ph, clean.p, clean.len, k < BODY_TOPIC_WORDS ? k : BODY_TOPIC_WORDS);
        p->body = (phrase_t){clean.p, len, script_gen__count_words(clean.p, len)};
        if (pool_min_words(&p->full, g_hooks) + pool_min_words(&p->body, g_ctas) <= hi)
            break;
    }

    /* First the hook and call to action the seed prefers, as long as the
     * budget leaves room for a body; when the body's sentences are too long
     * for the room they leave (a long topic in a short video), a shorter call
     * to action, then the shortest pair, before any bridge is used. */
    size_t min_cta = pool_min_words(&p->body, g_ctas);
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
    render(&b, ph, &p->full, p->hook, 0, 0, 0);
    render_fillers(&b, p, -1);
    for (size_t i = 0; i < p->n; i++) {
        const cand_t *c = &p->c[i];
        if (!c->on)
            continue;
        if (c->kind == K_ORDINAL)
            render(&b, ph, &p->body, c->tmpl, ord++, ords, items);
        else if (c->kind == K_NUMBER)
            render(&b, ph, &p->body, c->tmpl, item++, items, items);
        else
            render(&b, ph, &p->body, c->tmpl, 0, 0, items);
        render_fillers(&b, p, (int)i);
    }
    render(&b, ph, &p->body, p->cta, 0, 0, 0);
    free(p);
    strbuf_free(&clean);
    *out = strbuf_take(&b, NULL);
    if (!*out)
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    return 0;
}
