/* asr_align.c - a script's words against the recognised words: normal
 * forms and spoken forms of numbers, a word-level edit distance, and times
 * for every script word.
 *
 * The edit distance is weighted so that it pairs what was misheard with
 * what was said: a substitution costs by spelling similarity ("please" /
 * "least" little, unrelated words as much as a deletion plus an insertion),
 * and putting a sentence's first word where the speaker did not pause costs
 * extra. A pair then lends the heard word's time to the script word. */
#include "actors/speech/asr_align.h"
#include "runtime/error.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ALTS 3            /* spellings per script word: plain, spoken, year */
#define MAX_ALT_WORDS 16      /* words in one spelling ("123456789" says more: dropped) */
#define WORD_CAP 64           /* longest word compared (longer ones are cut) */
#define BAND 2000             /* half-width of the alignment band, in heard words */
#define MAX_CELLS (64u << 20) /* backpointer bytes before the band is narrowed */
#define COST 100              /* an insertion or a deletion */
#define PAUSE_COST 150        /* a sentence start the speaker did not pause before */
#define PAUSE_MS 200          /* silence between heard words that counts as a pause */

/* ---- normal forms and spoken numbers ----------------------------------------------- */

enum { CH_WORD, CH_APOS, CH_PUNCT };

/* Latin-1 letters U+00C0..U+00FF folded to ASCII, so "café" matches the
 * recogniser's "cafe"; "" marks × and ÷ (punctuation). */
static const char *const LATIN1[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",
    "d", "n", "o", "o", "o", "o", "o",  "",  "o", "u", "u", "u", "u", "y", "th", "y"};

/* Reads one UTF-8 character at p: *cls is what it is to a word (part of it,
 * an apostrophe that joins "don't", or punctuation between words) and out
 * what it compares as (lower-case ASCII; other scripts' letters as they
 * are). Returns the bytes read, >= 1; an invalid byte is punctuation. */
static size_t next_char(const unsigned char *p, int *cls, char out[8])
{
    unsigned c = p[0];
    out[0] = '\0';
    if (c < 0x80) {
        *cls = CH_PUNCT;
        if (c == '\'' || c == '`') {
            *cls = CH_APOS;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            *cls = CH_WORD, out[0] = (char)c, out[1] = '\0';
        } else if (c >= 'A' && c <= 'Z') {
            *cls = CH_WORD, out[0] = (char)(c - 'A' + 'a'), out[1] = '\0';
        }
        return 1;
    }
    size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;
    uint32_t cp = c & (0x7f >> len);
    *cls = CH_PUNCT;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
            return 1;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (len == 1) /* a stray continuation or invalid lead byte */
        return 1;
    if (cp == 0x2018 || cp == 0x2019 || cp == 0x02bc || cp == 0x00b4) {
        *cls = CH_APOS; /* typographic apostrophes: "don’t" */
    } else if (cp >= 0xc0 && cp <= 0xff) {
        const char *f = LATIN1[cp - 0xc0];
        if (*f)
            *cls = CH_WORD, snprintf(out, 8, "%s", f);
    } else if (!(cp < 0xc0 || (cp >= 0x2000 && cp <= 0x206f) || (cp >= 0x20a0 && cp <= 0x20cf) ||
                 (cp >= 0x3000 && cp <= 0x303f) || (cp >= 0xff01 && cp <= 0xff0f))) {
        *cls = CH_WORD; /* a letter of another script: compared byte for byte */
        memcpy(out, p, len);
        out[len] = '\0';
    }
    return len;
}

/* s as it is compared: its word characters only (see next_char); "" when it
 * has none. */
static void normalise(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int cls;
        char ch[8];
        p += next_char(p, &cls, ch);
        size_t k = strlen(ch);
        if (cls == CH_WORD && n + k < cap) {
            memcpy(out + n, ch, k);
            n += k;
        }
    }
    out[n] = '\0';
}

/* A spelling being built: up to MAX_ALT_WORDS words of up to WORD_CAP. */
typedef struct spell {
    char w[MAX_ALT_WORDS][WORD_CAP]; /* the words */
    int n;                           /* how many; -1 once it overflowed (unusable) */
} spell_t;

static void say(spell_t *sp, const char *w)
{
    if (sp->n < 0 || !*w)
        return;
    if (sp->n == MAX_ALT_WORDS) {
        sp->n = -1;
        return;
    }
    snprintf(sp->w[sp->n++], WORD_CAP, "%s", w);
}

static const char *const ONES[] = {"zero",    "one",     "two",       "three",    "four",
                                   "five",    "six",     "seven",     "eight",    "nine",
                                   "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                   "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
static const char *const TENS[] = {"",      "",      "twenty",  "thirty", "forty",
                                   "fifty", "sixty", "seventy", "eighty", "ninety"};

/* 0..99 in words, e.g. "forty two" (American: no "and", no hyphen). */
static void say_below_100(spell_t *sp, unsigned v)
{
    if (v < 20) {
        say(sp, ONES[v]);
        return;
    }
    say(sp, TENS[v / 10]);
    if (v % 10)
        say(sp, ONES[v % 10]);
}

static void say_below_1000(spell_t *sp, unsigned v)
{
    if (v >= 100) {
        say(sp, ONES[v / 100]);
        say(sp, "hundred");
        if (v % 100 == 0)
            return;
    }
    say_below_100(sp, v % 100);
}

/* v < 10^12 as a cardinal: "one million two hundred thousand five". */
static void say_cardinal(spell_t *sp, unsigned long long v)
{
    static const char *const SCALE[] = {"billion", "million", "thousand"};
    static const unsigned long long UNIT[] = {1000000000ull, 1000000ull, 1000ull};
    if (v == 0) {
        say(sp, "zero");
        return;
    }
    for (int i = 0; i < 3; i++) {
        if (v >= UNIT[i]) {
            say_below_1000(sp, (unsigned)(v / UNIT[i]));
            say(sp, SCALE[i]);
            v %= UNIT[i];
        }
    }
    if (v)
        say_below_1000(sp, (unsigned)v);
}

/* Digits one by one, as a phone number or a leading-zero code is read. */
static void say_digits(spell_t *sp, const char *d, size_t len)
{
    for (size_t i = 0; i < len; i++)
        say(sp, ONES[d[i] - '0']);
}

/* A run of digits: a cardinal, or digit by digit when it has a leading zero
 * or is too long for one. */
static void say_number(spell_t *sp, const char *d, size_t len)
{
    if ((len > 1 && d[0] == '0') || len > 12) {
        say_digits(sp, d, len);
        return;
    }
    say_cardinal(sp, strtoull(d, NULL, 10));
}

/* Turns the spelling's last word into its ordinal: "one" -> "first",
 * "twenty" -> "twentieth", "seven" -> "seventh". */
static void make_ordinal(spell_t *sp)
{
    if (sp->n <= 0)
        return;
    char *w = sp->w[sp->n - 1];
    static const char *const IRREG[][2] = {
        {"one", "first"},    {"two", "second"}, {"three", "third"},   {"five", "fifth"},
        {"eight", "eighth"}, {"nine", "ninth"}, {"twelve", "twelfth"}};
    for (size_t i = 0; i < sizeof IRREG / sizeof IRREG[0]; i++) {
        if (strcmp(w, IRREG[i][0]) == 0) {
            snprintf(w, WORD_CAP, "%s", IRREG[i][1]);
            return;
        }
    }
    size_t len = strlen(w);
    if (len > 0 && w[len - 1] == 'y')
        snprintf(w + len - 1, WORD_CAP - (len - 1), "ieth");
    else if (len + 2 < WORD_CAP)
        snprintf(w + len, WORD_CAP - len, "th");
}

/* A four-digit year as it is usually said: 1999 "nineteen ninety nine", 1900
 * "nineteen hundred", 1905 "nineteen oh five", 2024 "twenty twenty four".
 * False when v is not read that way (2000..2009, x000). */
static bool say_year(spell_t *sp, unsigned v)
{
    if (v < 1100 || v > 2099 || (v >= 2000 && v <= 2009) || v % 1000 == 0)
        return false;
    say_below_100(sp, v / 100);
    unsigned lo = v % 100;
    if (lo == 0) {
        say(sp, "hundred");
    } else if (lo < 10) {
        say(sp, "oh");
        say(sp, ONES[lo]);
    } else {
        say_below_100(sp, lo);
    }
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* How word w is said: its pieces (split at punctuation, not at apostrophes)
 * with numbers in words, "." between digits read "point" and the digits
 * after it one by one, "," between digits dropped, ordinals ("21st"), and
 * %, & and $ said. */
static void say_word(spell_t *sp, const char *w)
{
    bool dollars = false;
    const unsigned char *p = (const unsigned char *)w;
    while (*p) {
        if (*p == '%' || *p == '&' || *p == '$') {
            if (*p == '$')
                dollars = true;
            else
                say(sp, *p == '%' ? "percent" : "and");
            p++;
            continue;
        }
        char piece[WORD_CAP], ch[8];
        size_t n = 0;
        bool digits = true;
        for (;;) {
            int cls;
            size_t len = next_char(p, &cls, ch);
            if (*p == ',' && n > 0 && is_digit(piece[n - 1]) && is_digit((char)p[1])) {
                p++; /* 2,000 */
                continue;
            }
            if (!*p || cls == CH_PUNCT)
                break;
            p += len;
            size_t k = strlen(ch);
            if (cls == CH_APOS || n + k >= sizeof piece)
                continue;
            memcpy(piece + n, ch, k);
            n += k;
            digits = digits && k == 1 && is_digit(ch[0]);
        }
        piece[n] = '\0';
        if (n == 0) {
            if (*p)
                p += next_char(p, &(int){0}, ch); /* punctuation between pieces */
            continue;
        }
        size_t nd = strspn(piece, "0123456789");
        if (digits) {
            say_number(sp, piece, n);
            if (p[0] == '.' && is_digit((char)p[1])) { /* 3.14: "three point one four" */
                size_t k = strspn((const char *)p + 1, "0123456789");
                say(sp, "point");
                say_digits(sp, (const char *)p + 1, k);
                p += 1 + k;
            }
        } else if (nd > 0 && nd <= 12 &&
                   (strcmp(piece + nd, "st") == 0 || strcmp(piece + nd, "nd") == 0 ||
                    strcmp(piece + nd, "rd") == 0 || strcmp(piece + nd, "th") == 0)) {
            say_number(sp, piece, nd);
            make_ordinal(sp);
        } else {
            say(sp, piece);
        }
    }
    if (dollars)
        say(sp, "dollars");
}

/* ---- both sides' words -------------------------------------------------------------- */

typedef struct sword {
    char *alt[MAX_ALTS];  /* spellings: normal-form words joined by single spaces */
    uint8_t nw[MAX_ALTS]; /* words in each spelling */
    uint8_t nalts;        /* spellings (0: the word has no letters or digits) */
    bool sentence;        /* starts a sentence: the first word, or one after . ! ? … */
    int64_t weight;       /* spoken length in letters, >= 1, for spreading */
} sword_t;

/* One alignment: both word lists and what is found out about them. */
typedef struct align {
    sword_t *sw;      /* the script words */
    size_t n;         /* how many */
    char **hn;        /* the heard words in normal form */
    int64_t *hs, *he; /* their times, clamped into the audio */
    bool *pause;      /* heard word j comes after a pause (or first) */
    size_t m;         /* heard words */
    int64_t audio_ms; /* the audio's length */
    long *h0, *h1;    /* per script word: the heard words it matched; h0 = -1: none */
    long *pair;       /* per script word: the heard word substituted for it, or -1 */
    int64_t *st, *en; /* the caller's output */
} align_t;

/* Adds spelling sp to w unless it is empty, overflowed or already there. */
static int add_spelling(sword_t *w, const spell_t *sp)
{
    if (sp->n <= 0)
        return 0;
    char buf[MAX_ALT_WORDS * WORD_CAP];
    size_t len = 0;
    for (int k = 0; k < sp->n; k++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, k ? " %s" : "%s", sp->w[k]);
    for (int a = 0; a < w->nalts; a++)
        if (strcmp(w->alt[a], buf) == 0)
            return 0;
    if (!(w->alt[w->nalts] = strdup(buf)))
        return FENTA_ENOMEM;
    w->nw[w->nalts++] = (uint8_t)sp->n;
    return 0;
}

/* The spellings of script word text: its plain normal form (first; the
 * substitution cost compares it), how it is said, and for a four-digit
 * number the year reading. */
static int spell_word(sword_t *w, const char *text)
{
    spell_t plain = {.n = 0}, spoken = {.n = 0}, year = {.n = 0};
    char norm[WORD_CAP];
    normalise(text, norm, sizeof norm);
    say(&plain, norm);
    say_word(&spoken, text);
    if (strspn(norm, "0123456789") == 4 && norm[4] == '\0')
        say_year(&year, (unsigned)atoi(norm));
    int rc = add_spelling(w, &plain);
    if (rc == 0)
        rc = add_spelling(w, &spoken);
    if (rc == 0)
        rc = add_spelling(w, &year);
    const spell_t *by = spoken.n > 0 ? &spoken : &plain; /* numbers are long to say */
    w->weight = 0;
    for (int k = 0; k < by->n; k++)
        w->weight += (int64_t)strlen(by->w[k]);
    w->weight = w->weight > 0 ? w->weight : 1;
    return rc;
}

/* Whether w ends a sentence: . ! ? or … possibly followed by closing quotes
 * or brackets. */
static bool ends_sentence(const char *w)
{
    size_t len = strlen(w);
    for (;;) {
        if (len >= 1 && strchr("\"')]}", w[len - 1]))
            len--;
        else if (len >= 3 &&
                 (!memcmp(w + len - 3, "\u201d", 3) || !memcmp(w + len - 3, "\u2019", 3)))
            len -= 3;
        else if (len >= 2 && !memcmp(w + len - 2, "\u00bb", 2))
            len -= 2;
        else
            break;
    }
    return (len >= 1 && strchr(".!?", w[len - 1])) ||
           (len >= 3 && !memcmp(w + len - 3, "\u2026", 3));
}

/* Whether the nw words of spelling sp are heard[0..nw-1]. */
static bool spelled(const char *sp, char *const *heard, size_t nw)
{
    for (size_t k = 0; k < nw; k++) {
        size_t len = strlen(heard[k]);
        if (strncmp(sp, heard[k], len) != 0 || (sp[len] != ' ' && sp[len] != '\0'))
            return false;
        sp += len + (sp[len] == ' ');
    }
    return true;
}

/* The extra cost of putting script word i at heard word j: a sentence
 * starts there in the script but the speaker did not pause. It tells a
 * sentence's first "the" from a "the" the recogniser heard inside the
 * misheard end of the sentence before. */
static long boundary(const align_t *A, size_t i, size_t j)
{
    return A->sw[i].sentence && !A->pause[j] ? PAUSE_COST : 0;
}

/* Substitution cost, 0..2 COST: twice COST times the letter edit distance
 * over the longer word's length ("please"/"least" 66). An unrelated pair
 * costs as much as leaving both words unpaired, so only similarity moves
 * the pairing away from the positional one. Computed for every cell of the
 * band: about a second for a 30-minute recording, against minutes for its
 * recognition. */
static long sub_cost(const char *a, const char *b)
{
    size_t la = strnlen(a, WORD_CAP - 1), lb = strnlen(b, WORD_CAP - 1);
    if (la == 0 || lb == 0)
        return 2 * COST;
    size_t d[WORD_CAP];
    for (size_t j = 0; j <= lb; j++)
        d[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = d[0];
        d[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = d[j], best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = d[j - 1] + 1 < best ? d[j - 1] + 1 : best;
            diag = up, d[j] = best;
        }
    }
    return (long)(2 * COST * d[lb] / (la > lb ? la : lb));
}

/* ---- the alignment --------------------------------------------------------------- */

enum { OP_DEL, OP_INS, OP_SUB, OP_MATCH }; /* OP_MATCH + a: by spelling a */

typedef struct band {
    size_t *lo;  /* per row: first column kept */
    size_t *hi;  /* per row: last column kept */
    size_t *off; /* per row: where its backpointers start in bp */
    uint8_t *bp; /* how each kept cell was reached */
} band_t;

/* Rows 0..n (script words consumed) by columns 0..m (heard words consumed);
 * row i keeps the columns within w of i*m/n, w shrunk until the band fits
 * MAX_CELLS but kept wide enough for consecutive rows to overlap. */
static int band_init(band_t *b, size_t n, size_t m)
{
    size_t wmin = (m + n - 1) / n + MAX_ALT_WORDS + 2, w = BAND;
    while (w / 2 >= wmin && (n + 1) * (2 * w + 1 < m + 1 ? 2 * w + 1 : m + 1) > MAX_CELLS)
        w /= 2;
    w = w > wmin ? w : wmin;
    b->lo = malloc((n + 1) * sizeof *b->lo);
    b->hi = malloc((n + 1) * sizeof *b->hi);
    b->off = malloc((n + 1) * sizeof *b->off);
    if (!b->lo || !b->hi || !b->off)
        return FENTA_ENOMEM;
    size_t total = 0;
    for (size_t i = 0; i <= n; i++) {
        size_t c = (size_t)((unsigned long long)i * m / n);
        b->lo[i] = c > w ? c - w : 0;
        b->hi[i] = i == n || c + w > m ? m : c + w;
        b->off[i] = total;
        total += b->hi[i] - b->lo[i] + 1;
    }
    return (b->bp = malloc(total)) ? 0 : FENTA_ENOMEM;
}

/* Weighted edit distance over the band, keeping only backpointers (two
 * rows of costs). Ties prefer a match, then a substitution, deletion,
 * insertion. */
static int fill(const align_t *A, band_t *b)
{
    size_t width = 0;
    for (size_t i = 0; i <= A->n; i++)
        width = b->hi[i] - b->lo[i] + 1 > width ? b->hi[i] - b->lo[i] + 1 : width;
    long *prev = malloc(width * sizeof *prev), *cur = malloc(width * sizeof *cur);
    if (!prev || !cur) {
        free(prev);
        free(cur);
        return FENTA_ENOMEM;
    }
    for (size_t j = 0; j <= b->hi[0]; j++)
        prev[j] = (long)j * COST, b->bp[j] = OP_INS;
    for (size_t i = 1; i <= A->n; i++) {
        const sword_t *w = &A->sw[i - 1];
        const char *plain = w->nalts ? w->alt[0] : "";
        size_t plo = b->lo[i - 1], phi = b->hi[i - 1], lo = b->lo[i];
#define PREV(j) ((j) < plo || (j) > phi ? LONG_MAX : prev[(j)-plo])
        for (size_t j = lo; j <= b->hi[i]; j++) {
            long best = PREV(j) == LONG_MAX ? LONG_MAX : PREV(j) + COST, c;
            uint8_t op = OP_DEL;
            if (j > lo && cur[j - 1 - lo] + COST < best)
                best = cur[j - 1 - lo] + COST, op = OP_INS;
            if (j > 0 && (c = PREV(j - 1)) != LONG_MAX &&
                (c += boundary(A, i - 1, j - 1) + sub_cost(plain, A->hn[j - 1])) <= best)
                best = c, op = OP_SUB;
            for (uint8_t a = 0; a < w->nalts; a++) {
                size_t k = w->nw[a];
                if (k <= j && (c = PREV(j - k)) != LONG_MAX &&
                    (c += boundary(A, i - 1, j - k)) <= best &&
                    spelled(w->alt[a], A->hn + j - k, k))
                    best = c, op = (uint8_t)(OP_MATCH + a);
            }
            cur[j - lo] = best;
            b->bp[b->off[i] + j - lo] = op;
        }
#undef PREV
        long *t = prev;
        prev = cur, cur = t;
    }
    free(prev);
    free(cur);
    return 0;
}

/* Walks back from (n, m), filling h0/h1 and pair. */
static void trace(align_t *A, const band_t *b)
{
    size_t i = A->n, j = A->m;
    while (i > 0 || j > 0) {
        uint8_t op = i == 0 ? OP_INS : b->bp[b->off[i] + j - b->lo[i]];
        if (op == OP_INS) {
            j--;
            continue;
        }
        i--;
        A->h0[i] = A->h1[i] = A->pair[i] = -1;
        if (op == OP_SUB) {
            A->pair[i] = (long)--j;
        } else if (op >= OP_MATCH) {
            size_t len = A->sw[i].nw[op - OP_MATCH];
            A->h0[i] = (long)(j - len), A->h1[i] = (long)j - 1;
            j -= len;
        }
    }
}

/* ---- times ------------------------------------------------------------------------------------
 */

static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Spreads script words [a, b) over [lo, hi] in proportion to their weights. */
static void spread(align_t *A, size_t a, size_t b, int64_t lo, int64_t hi)
{
    int64_t total = 0, acc = 0;
    hi = hi > lo ? hi : lo;
    for (size_t i = a; i < b; i++)
        total += A->sw[i].weight;
    for (size_t i = a; i < b; i++) {
        A->st[i] = lo + (hi - lo) * acc / total;
        acc += A->sw[i].weight;
        A->en[i] = lo + (hi - lo) * acc / total;
    }
}

/* Times for an unmatched stretch [a, b) whose speech spans [lo, hi]: paired
 * words take their heard word's times; a run of unpaired ones shares the
 * time of a paired neighbour (the recogniser heard one word where several
 * were said), else the gap around it; the first and last words reach out to
 * lo and hi. */
static void place_run(align_t *A, size_t a, size_t b, int64_t lo, int64_t hi)
{
    int64_t *st = A->st, *en = A->en;
    for (size_t i = a; i < b; i++)
        if (A->pair[i] >= 0)
            st[i] = A->hs[A->pair[i]], en[i] = A->he[A->pair[i]];
    size_t shared = b; /* a paired word already shared with the unpaired run before it */
    for (size_t p = a; p < b;) {
        if (A->pair[p] >= 0) {
            p++;
            continue;
        }
        size_t q = p;
        while (q < b && A->pair[q] < 0)
            q++;
        if (p > a && shared != p - 1)
            spread(A, p - 1, q, st[p - 1], q < b ? st[q] : hi);
        else if (q < b)
            spread(A, p, q + 1, p > a ? en[p - 1] : lo, en[q]), shared = q;
        else
            spread(A, p, q, p > a ? en[p - 1] : lo, hi);
        p = q;
    }
    /* Heard words left unpaired at the edges are still this stretch's speech. */
    st[a] = st[a] < lo ? st[a] : lo;
    en[b - 1] = en[b - 1] > hi ? en[b - 1] : hi;
}

/* Times for every word (see the header), then made strictly ordered. */
static void place(align_t *A)
{
    size_t n = A->n;
    int64_t *st = A->st, *en = A->en;
    for (size_t i = 0; i < n;) {
        if (A->h0[i] >= 0) {
            st[i] = A->hs[A->h0[i]], en[i] = A->he[A->h1[i]];
            i++;
            continue;
        }
        size_t a = i, b = i;
        while (b < n && A->h0[b] < 0)
            b++;
        size_t hl = a > 0 ? (size_t)A->h1[a - 1] + 1 : 0, hr = b < n ? (size_t)A->h0[b] : A->m;
        int64_t lo = a > 0 ? en[a - 1] : 0, hi = b < n ? A->hs[A->h0[b]] : A->audio_ms;
        if (hr > hl) /* the speech heard between the neighbours is where the words were said */
            lo = A->hs[hl], hi = A->he[hr - 1];
        place_run(A, a, b, lo, hi);
        i = b;
    }
    /* At least 1 ms each, none before its predecessor's end, all within
     * [0, audio_ms]: forward pushes later, backward pulls back from the end
     * (this always fits, as audio_ms >= n was checked). */
    int64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        st[i] = clamp(st[i], prev, A->audio_ms);
        en[i] = en[i] > st[i] ? en[i] : st[i] + 1;
        prev = en[i];
    }
    int64_t next = A->audio_ms;
    for (size_t i = n; i-- > 0;) {
        en[i] = en[i] < next ? en[i] : next;
        st[i] = st[i] < en[i] ? st[i] : en[i] - 1;
        next = st[i];
    }
}

int asr_align(const char *const *script_words, size_t n, const asr_word_t *heard, size_t nheard,
              int64_t audio_ms, int64_t *start_ms, int64_t *end_ms, char *errbuf, size_t errlen)
{
    if (errbuf && errlen > 0)
        errbuf[0] = '\0';
    if (n == 0)
        return 0;
    if (!script_words || !start_ms || !end_ms || (nheard > 0 && !heard))
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "asr_align: missing script, heard or output");
    for (size_t i = 0; i < n; i++)
        if (!script_words[i])
            return fenta_fail(errbuf, errlen, FENTA_EINVAL, "script word %zu: no text", i);
    if (audio_ms < 0 || (uint64_t)audio_ms < n)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL,
                          "%zu script words cannot fit in %lld ms of audio (1 ms each at least)", n,
                          (long long)audio_ms);

    size_t m = nheard;
    align_t A = {.n = n, .m = m, .audio_ms = audio_ms, .st = start_ms, .en = end_ms};
    A.sw = calloc(n, sizeof *A.sw);
    A.hn = calloc(m + 1, sizeof *A.hn);
    A.hs = malloc((m + 1) * sizeof *A.hs);
    A.he = malloc((m + 1) * sizeof *A.he);
    A.pause = malloc(m + 1);
    A.h0 = malloc(n * sizeof *A.h0);
    A.h1 = malloc(n * sizeof *A.h1);
    A.pair = malloc(n * sizeof *A.pair);
    band_t b = {0};
    int rc = A.sw && A.hn && A.hs && A.he && A.pause && A.h0 && A.h1 && A.pair ? 0 : FENTA_ENOMEM;
    for (size_t j = 0; j < m && rc == 0; j++) {
        char norm[WORD_CAP];
        normalise(heard[j].text ? heard[j].text : "", norm, sizeof norm);
        /* An empty form matches nothing: script spellings are never empty. */
        if (!(A.hn[j] = strdup(norm)))
            rc = FENTA_ENOMEM;
        A.hs[j] = clamp(heard[j].start_ms, 0, audio_ms);
        A.he[j] = clamp(heard[j].end_ms, A.hs[j], audio_ms);
        A.pause[j] = j == 0 || A.hs[j] - A.he[j - 1] >= PAUSE_MS;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = spell_word(&A.sw[i], script_words[i]);
        A.sw[i].sentence = i == 0 || ends_sentence(script_words[i - 1]);
    }
    if (rc == 0)
        rc = band_init(&b, n, m);
    if (rc == 0)
        rc = fill(&A, &b);
    if (rc == 0) {
        trace(&A, &b);
        place(&A);
    } else {
        fenta_fail(errbuf, errlen, rc, "asr_align: out of memory (%zu script words, %zu heard)", n,
                   m);
    }
    free(b.lo);
    free(b.hi);
    free(b.off);
    free(b.bp);
    for (size_t i = 0; A.sw && i < n; i++)
        for (int a = 0; a < A.sw[i].nalts; a++)
            free(A.sw[i].alt[a]);
    for (size_t j = 0; A.hn && j < m; j++)
        free(A.hn[j]);
    free(A.sw);
    free(A.hn);
    free(A.hs);
    free(A.he);
    free(A.pause);
    free(A.h0);
    free(A.h1);
    free(A.pair);
    return rc;
}
