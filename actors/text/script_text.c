/* script_text.c - normalises a script into speech text and caption text
 * (markdown, URLs, emoji, numbers, symbols); the rules are in the header. */
#include "actors/text/script_text.h"
#include "runtime/error.h"
#include "runtime/strbuf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How far a link's ] or ) or an HTML tag's > is looked for: keeps a line of
 * a hundred thousand unmatched [ or < linear instead of quadratic. */
#define SCAN_LIMIT 2048

/* ---- UTF-8 -------------------------------------------------------------- */

size_t script_text_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t k;
    uint32_t c, min;
    if ((s[0] & 0xE0) == 0xC0) {
        k = 2, c = s[0] & 0x1F, min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        k = 3, c = s[0] & 0x0F, min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        k = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return k;
}

/* ---- what a code point is ---------------------------------------------- */

typedef struct cp_range {
    uint32_t lo, hi; /* inclusive */
} cp_range_t;

/* Pictographs: removed and leave a word break behind. */
static const cp_range_t pictographs[] = {
    {0x231A, 0x231B}, {0x23E9, 0x23F3}, {0x23F8, 0x23FA}, {0x25AA, 0x25AB},   {0x25B6, 0x25B6},
    {0x25C0, 0x25C0}, {0x25FB, 0x25FE}, {0x2600, 0x27BF}, {0x2934, 0x2935},   {0x2B05, 0x2B07},
    {0x2B1B, 0x2B1C}, {0x2B50, 0x2B50}, {0x2B55, 0x2B55}, {0x1F000, 0x1FAFF},
};

/* Invisible parts of emoji sequences and zero-width marks: removed without a
 * word break, so "a\u200Bb" stays one word. ZWNJ (U+200C) is not here: Persian
 * and Indic spelling needs it. */
static const cp_range_t invisibles[] = {
    {0x200B, 0x200B},   /* zero-width space */
    {0x200D, 0x200D},   /* zero-width joiner (emoji ZWJ sequences) */
    {0x20E3, 0x20E3},   /* combining keycap */
    {0xFE00, 0xFE0F},   /* variation selectors */
    {0xFEFF, 0xFEFF},   /* byte-order mark */
    {0xE0020, 0xE007F}, /* emoji tag sequences (subdivision flags) */
};

/* Not ASCII, yet whitespace for us. */
static const cp_range_t spaces[] = {
    {0x0085, 0x0085}, {0x00A0, 0x00A0}, {0x2000, 0x200A},
    {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
};

/* Non-ASCII code points that are punctuation or symbols, not letters. */
static const cp_range_t non_letters[] = {
    {0x0080, 0x00BF}, {0x00D7, 0x00D7}, {0x00F7, 0x00F7}, {0x2000, 0x2BFF}, {0x3000, 0x303F},
    {0xFE10, 0xFE1F}, {0xFE30, 0xFE6F}, {0xFF00, 0xFF0F}, {0xFF1A, 0xFF20}, {0x1F000, 0x1FAFF},
};

#define IN(table, cp) in_ranges(table, sizeof table / sizeof table[0], cp)

static bool in_ranges(const cp_range_t *r, size_t n, uint32_t cp)
{
    for (size_t i = 0; i < n; i++)
        if (cp >= r[i].lo && cp <= r[i].hi)
            return true;
    return false;
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Part of a word: a number or URL right after it is not at a word start. */
static bool is_wordish(uint32_t cp)
{
    if (cp < 0x80)
        return is_digit((int)cp) || is_alpha((int)cp) || cp == '_';
    return !IN(non_letters, cp) && !IN(spaces, cp) && !IN(invisibles, cp);
}

/* A letter of a script other than Latin: digits against one stay digits. */
static bool is_non_latin_letter(uint32_t cp)
{
    return cp >= 0x0370 && is_wordish(cp);
}

/* ---- output buffers ---------------------------------------------------- */

/* A growing string that collapses whitespace as it is written: a space is
 * only pending until the next visible byte decides whether it is wanted. */
typedef struct sbuf {
    strbuf_t s; /* the text so far */
    bool space; /* a space is pending */
} sbuf_t;

static void sbuf_put(sbuf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (is_space((unsigned char)c)) {
            b->space = true;
            continue;
        }
        size_t len = strbuf_len(&b->s);
        const char *t = strbuf_str(&b->s);
        /* "()" left by a removed URL or emoji goes, with the space before it. */
        if (c == ')' && len > 0 && t[len - 1] == '(') {
            len--;
            if (len > 0 && t[len - 1] == ' ')
                len--;
            strbuf_truncate(&b->s, len);
            b->space = true;
            continue;
        }
        if (b->space && len > 0 && !strchr(".,!?:;)]}", c) && t[len - 1] != '(' &&
            t[len - 1] != '[')
            strbuf_appendc(&b->s, ' ');
        b->space = false;
        strbuf_appendc(&b->s, c);
    }
}

static void sbuf_str(sbuf_t *b, const char *s)
{
    sbuf_put(b, s, strlen(s));
}

/* A spoken word set apart by spaces on both sides. */
static void sbuf_word(sbuf_t *b, const char *w)
{
    b->space = true;
    sbuf_str(b, w);
    b->space = true;
}

typedef struct norm {
    sbuf_t sp;  /* speech */
    sbuf_t cap; /* captions */
} norm_t;

static void both(norm_t *n, const char *s, size_t len)
{
    sbuf_put(&n->sp, s, len);
    sbuf_put(&n->cap, s, len);
}

static void both_space(norm_t *n)
{
    n->sp.space = n->cap.space = true;
}

/* ---- numbers in words -------------------------------------------------- */

static const char *const small[] = {
    "zero",     "one",     "two",     "three",     "four",     "five",     "six",
    "seven",    "eight",   "nine",    "ten",       "eleven",   "twelve",   "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
};
static const char *const tens[] = {"",      "",      "twenty",  "thirty", "forty",
                                   "fifty", "sixty", "seventy", "eighty", "ninety"};

/* A bounded word buffer; 256 bytes hold the longest number below 10^9. */
typedef struct words {
    char s[256];
    size_t len;
} words_t;

static void w_add(words_t *w, const char *s)
{
    if (w->len > 0 && w->s[w->len - 1] != '-')
        w->s[w->len++] = ' ';
    size_t n = strlen(s);
    memcpy(w->s + w->len, s, n);
    w->len += n;
    w->s[w->len] = '\0';
}

/* 1..99, "forty-two" style. */
static void w_below_100(words_t *w, unsigned n)
{
    if (n < 20) {
        w_add(w, small[n]);
        return;
    }
    w_add(w, tens[n / 10]);
    if (n % 10) {
        w->s[w->len++] = '-';
        w_add(w, small[n % 10]);
    }
}

/* 1..999. */
static void w_below_1000(words_t *w, unsigned n)
{
    if (n >= 100) {
        w_add(w, small[n / 100]);
        w_add(w, "hundred");
    }
    if (n % 100)
        w_below_100(w, n % 100);
}

/* 0..999,999,999 without "and": "one thousand two hundred". */
static void w_cardinal(words_t *w, uint32_t n)
{
    if (n == 0) {
        w_add(w, "zero");
        return;
    }
    if (n >= 1000000) {
        w_below_1000(w, n / 1000000);
        w_add(w, "million");
    }
    if (n / 1000 % 1000) {
        w_below_1000(w, n / 1000 % 1000);
        w_add(w, "thousand");
    }
    if (n % 1000)
        w_below_1000(w, n % 1000);
}

/* Rewrites the last word as an ordinal: twenty-one -> twenty-first. */
static void w_ordinal(words_t *w)
{
    static const char *const irregular[][2] = {
        {"one", "first"},    {"two", "second"}, {"three", "third"},    {"five", "fifth"},
        {"eight", "eighth"}, {"nine", "ninth"}, {"twelve", "twelfth"},
    };
    size_t start = w->len;
    while (start > 0 && w->s[start - 1] != ' ' && w->s[start - 1] != '-')
        start--;
    for (size_t i = 0; i < sizeof irregular / sizeof irregular[0]; i++) {
        if (strcmp(w->s + start, irregular[i][0]) == 0) {
            w->len = start;
            w->s[w->len] = '\0';
            /* w_add would insert a space after a hyphen-less start; copy directly. */
            size_t k = strlen(irregular[i][1]);
            memcpy(w->s + w->len, irregular[i][1], k + 1);
            w->len += k;
            return;
        }
    }
    if (w->s[w->len - 1] == 'y') {
        w->len--;
        memcpy(w->s + w->len, "ieth", 5);
        w->len += 4;
    } else {
        memcpy(w->s + w->len, "th", 3);
        w->len += 2;
    }
}

/* 1100..2099 read as a year: nineteen eighty-four, nineteen oh five,
 * nineteen hundred, two thousand six, twenty twenty-six. */
static void w_year(words_t *w, unsigned y)
{
    unsigned hi = y / 100, lo = y % 100;
    if (hi == 20 && lo < 10) {
        w_cardinal(w, y);
        return;
    }
    w_below_100(w, hi);
    if (lo == 0)
        w_add(w, "hundred");
    else if (lo < 10)
        w_add(w, "oh"), w_add(w, small[lo]);
    else
        w_below_100(w, lo);
}

/* ---- numbers in the script --------------------------------------------- */

typedef struct currency {
    const char *sym;   /* as written before the amount */
    const char *one;   /* unit, singular */
    const char *many;  /* unit, plural */
    const char *cent;  /* hundredth, singular */
    const char *cents; /* hundredth, plural */
} currency_t;

static const currency_t currencies[] = {
    {"$", "dollar", "dollars", "cent", "cents"},
    {"\xE2\x82\xAC", "euro", "euros", "cent", "cents"},
    {"\xC2\xA3", "pound", "pounds", "penny", "pence"},
};

/* The currency whose symbol starts at s, followed by a digit; or NULL. */
static const currency_t *currency_at(const char *s, size_t i, size_t e)
{
    for (size_t k = 0; k < sizeof currencies / sizeof currencies[0]; k++) {
        size_t n = strlen(currencies[k].sym);
        if (i + n < e && memcmp(s + i, currencies[k].sym, n) == 0 && is_digit(s[i + n]))
            return &currencies[k];
    }
    return NULL;
}

static void speak_digits(norm_t *n, const char *s, size_t a, size_t e)
{
    for (size_t i = a; i < e; i++)
        if (is_digit(s[i]))
            sbuf_word(&n->sp, small[s[i] - '0']);
}

/* A number starting at start (a '-', a currency symbol, or its first digit
 * at i). Captions get it as written; speech gets words. Returns the index
 * after it. */
static size_t number(norm_t *n, const char *s, size_t start, size_t i, size_t e, bool neg,
                     const currency_t *cur)
{
    size_t j = i, nd = 0;
    uint32_t v = 0;
    bool grouped = false;
    while (j < e && is_digit(s[j])) {
        if (nd < 9)
            v = v * 10 + (uint32_t)(s[j] - '0');
        j++, nd++;
    }
    /* 1,234,567: groups of exactly three after a lead of at most three. */
    if (nd <= 3)
        while (j + 3 < e && s[j] == ',' && is_digit(s[j + 1]) && is_digit(s[j + 2]) &&
               is_digit(s[j + 3]) && (j + 4 == e || !is_digit(s[j + 4]))) {
            for (size_t k = j + 1; k < j + 4; k++, nd++)
                if (nd < 9)
                    v = v * 10 + (uint32_t)(s[k] - '0');
            j += 4, grouped = true;
        }
    size_t int_end = j, frac = 0, frac_len = 0;
    if (j + 1 < e && s[j] == '.' && is_digit(s[j + 1])) {
        frac = ++j;
        while (j < e && is_digit(s[j]))
            j++;
        frac_len = j - frac;
    }
    bool pct = false, ord = false;
    if (j < e && s[j] == '%') {
        pct = true, j++;
    } else if (!frac_len && !cur && j + 2 <= e &&
               (j + 2 == e || !is_wordish((unsigned char)s[j + 2]))) {
        char a = (char)(s[j] | 0x20), b = (char)(s[j + 1] | 0x20);
        ord = (a == 's' && b == 't') || (a == 'n' && b == 'd') || (a == 'r' && b == 'd') ||
              (a == 't' && b == 'h');
        if (ord)
            j += 2;
    }

    uint32_t next = 0;
    if (j < e)
        script_text_utf8_decode((const unsigned char *)s + j, e - j, &next);
    sbuf_put(&n->cap, s + start, j - start);
    if (is_non_latin_letter(next)) {
        /* 3D in English, but 第3章 is read by the voice of its own language. */
        sbuf_put(&n->sp, s + start, j - start);
        return j;
    }

    words_t w = {.len = 0};
    w.s[0] = '\0';
    if (neg)
        w_add(&w, "minus");
    bool digitwise = nd > 9 || (nd > 1 && s[i] == '0');
    if (digitwise) {
        sbuf_word(&n->sp, w.s);
        speak_digits(n, s, i, int_end);
        w.len = 0, w.s[0] = '\0';
    } else if (!grouped && nd == 4 && !frac_len && !pct && !ord && !cur && !neg && v >= 1100 &&
               v <= 2099) {
        w_year(&w, v);
    } else {
        w_cardinal(&w, v);
        if (ord)
            w_ordinal(&w);
    }
    if (cur && frac_len == 2 && !digitwise) {
        /* $3.50: three dollars and fifty cents. */
        unsigned c = (unsigned)(s[frac] - '0') * 10 + (unsigned)(s[frac + 1] - '0');
        if (v > 0 || c == 0) {
            sbuf_word(&n->sp, w.s);
            sbuf_word(&n->sp, v == 1 ? cur->one : cur->many);
            if (c > 0)
                sbuf_word(&n->sp, "and");
        }
        if (c > 0) {
            w.len = 0, w.s[0] = '\0';
            w_cardinal(&w, c);
            sbuf_word(&n->sp, w.s);
            sbuf_word(&n->sp, c == 1 ? cur->cent : cur->cents);
        }
    } else {
        sbuf_word(&n->sp, w.s);
        if (frac_len) {
            sbuf_word(&n->sp, "point");
            speak_digits(n, s, frac, frac + frac_len);
        }
        if (pct)
            sbuf_word(&n->sp, "percent");
        if (cur)
            sbuf_word(&n->sp, v == 1 && !frac_len && !digitwise ? cur->one : cur->many);
    }
    if (is_wordish(next))
        n->sp.space = true; /* 5G -> five G */
    else
        n->sp.space = false; /* 42. -> forty-two. */
    return j;
}

/* ---- inline text -------------------------------------------------------- */

/* An http://, https:// or www. URL starting at i; returns its end (trailing
 * sentence punctuation left out) or i when there is none. */
static size_t url_end(const char *s, size_t i, size_t e)
{
    static const char *const starts[] = {"http://", "https://", "www."};
    size_t k = 0;
    for (size_t t = 0; t < 3 && !k; t++) {
        size_t m = strlen(starts[t]);
        if (i + m < e) {
            size_t q = 0;
            while (q < m && (s[i + q] | 0x20) == starts[t][q])
                q++;
            if (q == m && !is_space((unsigned char)s[i + m]))
                k = m;
        }
    }
    if (!k)
        return i;
    size_t j = i + k;
    bool paren = false;
    while (j < e && !is_space((unsigned char)s[j]) && s[j] != '<' && s[j] != '>' && s[j] != '"') {
        paren = paren || s[j] == '(';
        j++;
    }
    while (j > i + k && (strchr(".,!?:;'*_", s[j - 1]) || (s[j - 1] == ')' && !paren)))
        j--;
    return j;
}

/* An HTML tag <...> at i; returns its end or i when it is not one. Tags that
 * break a line (br, p, div, li) leave a word break. */
static size_t tag_end(const char *s, size_t i, size_t e, bool *breaks)
{
    if (i + 2 >= e || !(is_alpha(s[i + 1]) || s[i + 1] == '/' || s[i + 1] == '!'))
        return i;
    size_t lim = e - i > SCAN_LIMIT ? i + SCAN_LIMIT : e;
    for (size_t j = i + 1; j < lim; j++) {
        if (s[j] == '<')
            return i;
        if (s[j] == '>') {
            size_t a = i + 1 + (s[i + 1] == '/');
            size_t b = a;
            while (b < j && is_alpha(s[b]))
                b++;
            *breaks = false;
            static const char *const brk[] = {"br", "p", "div", "li"};
            for (size_t t = 0; t < 4; t++)
                if (b - a == strlen(brk[t]) && strncmp(s + a, brk[t], b - a) == 0)
                    *breaks = true;
            return j + 1;
        }
    }
    return i;
}

/* [text](url) with [ at i: sets the text's range and returns the end, or i. */
static size_t link_end(const char *s, size_t i, size_t e, size_t *ta, size_t *te)
{
    size_t lim = e - i > SCAN_LIMIT ? i + SCAN_LIMIT : e;
    size_t c = i + 1;
    while (c < lim && s[c] != ']' && s[c] != '[')
        c++;
    if (c + 1 >= lim || s[c] != ']' || s[c + 1] != '(')
        return i;
    for (size_t d = c + 2; d < lim; d++) {
        if (s[d] == ')') {
            *ta = i + 1, *te = c;
            return d + 1;
        }
        if (s[d] == '\n')
            return i;
    }
    return i;
}

typedef struct symbol {
    char c;           /* as written */
    const char *word; /* as spoken */
} symbol_t;

static const symbol_t symbols[] = {
    {'&', "and"}, {'+', "plus"}, {'@', "at"}, {'=', "equals"}, {'%', "percent"},
};

static void inline_run(norm_t *n, const char *s, size_t a, size_t e, bool raw);

/* One line's text (or a link's) from a to e. raw: inside a code fence, where
 * markdown characters are the text. */
static void inline_run(norm_t *n, const char *s, size_t a, size_t e, bool raw)
{
    uint32_t prev = ' ';
    size_t i = a;
    while (i < e) {
        unsigned char c = (unsigned char)s[i];
        uint32_t cp;
        size_t k =
            script_text_utf8_decode((const unsigned char *)s + i, e - i, &cp); /* validated */
        bool word_start = !is_wordish(prev);

        if (!raw) {
            if (c == '\\' && i + 1 < e && strchr("\\`*_{}[]()#+-.!<>~|", s[i + 1])) {
                both(n, s + i + 1, 1);
                prev = (unsigned char)s[i + 1];
                i += 2;
                continue;
            }
            if (c == '`') {
                while (i < e && s[i] == '`')
                    i++;
                continue;
            }
            size_t ta, te, end;
            if ((c == '[' || (c == '!' && i + 1 < e && s[i + 1] == '[')) &&
                (end = link_end(s, i + (c == '!'), e, &ta, &te)) != i + (c == '!')) {
                inline_run(n, s, ta, te, false);
                prev = ')';
                i = end;
                continue;
            }
            bool breaks = false;
            if (c == '<' && (end = tag_end(s, i, e, &breaks)) != i) {
                if (breaks)
                    both_space(n);
                i = end;
                continue;
            }
            if (c == '*' || c == '_' || c == '~') {
                size_t j = i;
                while (j < e && s[j] == (char)c)
                    j++;
                uint32_t next = ' ';
                if (j < e)
                    script_text_utf8_decode((const unsigned char *)s + j, e - j, &next);
                bool spaced = (prev == ' ' || is_space((int)prev)) && (j == e || is_space(next));
                if (c == '*' && spaced && j - i == 1) {
                    sbuf_word(&n->sp, "times"); /* 6 * 7 */
                    sbuf_put(&n->cap, "*", 1);
                } else if ((c == '_' && is_wordish(prev) && is_wordish(next)) ||
                           (c == '~' && j - i == 1)) {
                    both(n, s + i, j - i); /* snake_case, ~5 */
                }
                prev = (uint32_t)c;
                i = j;
                continue;
            }
        }

        size_t end;
        if (word_start && (c == 'h' || c == 'H' || c == 'w' || c == 'W') &&
            (end = url_end(s, i, e)) != i) {
            both_space(n);
            prev = ' ';
            i = end;
            continue;
        }
        const currency_t *cur;
        if (word_start && is_digit(c)) {
            i = number(n, s, i, i, e, false, NULL);
            prev = '0';
            continue;
        }
        if (word_start && c == '-' && i + 1 < e && is_digit(s[i + 1])) {
            i = number(n, s, i, i + 1, e, true, NULL);
            prev = '0';
            continue;
        }
        if (word_start && (cur = currency_at(s, i, e))) {
            i = number(n, s, i, i + strlen(cur->sym), e, false, cur);
            prev = '0';
            continue;
        }
        if (c == '#' && word_start && i + 1 < e) {
            uint32_t next;
            script_text_utf8_decode((const unsigned char *)s + i + 1, e - i - 1, &next);
            if (is_wordish(next)) {
                sbuf_word(&n->sp, is_digit((int)next) ? "number" : "hashtag");
                sbuf_put(&n->cap, "#", 1);
                prev = '#';
                i++;
                continue;
            }
        }
        bool done = false;
        for (size_t t = 0; t < sizeof symbols / sizeof symbols[0] && !done; t++) {
            if (c == (unsigned char)symbols[t].c) {
                sbuf_word(&n->sp, symbols[t].word);
                sbuf_put(&n->cap, s + i, 1);
                done = true;
            }
        }
        if (done) {
            prev = cp;
            i++;
            continue;
        }
        if (IN(invisibles, cp)) {
            i += k;
            continue; /* prev unchanged: the joiner is not there */
        }
        if (IN(pictographs, cp) || IN(spaces, cp) || cp < 0x20 || (cp >= 0x7F && cp < 0xA0)) {
            both_space(n);
            prev = ' ';
            i += k;
            continue;
        }
        both(n, s + i, k);
        prev = cp;
        i += k;
    }
}

/* ---- lines --------------------------------------------------------------- */

static size_t skip_blanks(const char *s, size_t i, size_t e)
{
    while (i < e && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

/* ---, ***, ___ (spaces allowed) or a setext === underline. */
static bool is_rule(const char *s, size_t i, size_t e)
{
    char r = s[i];
    if (!strchr("-*_=", r))
        return false;
    size_t count = 0;
    for (; i < e; i++) {
        if (s[i] == r)
            count++;
        else if (s[i] != ' ' && s[i] != '\t')
            return false;
    }
    return count >= 3;
}

static bool starts_with(const char *s, size_t i, size_t e, const char *p)
{
    size_t n = strlen(p);
    return e - i >= n && memcmp(s + i, p, n) == 0;
}

/* Strips a line's block markup (quote, heading, bullet, task box) and hands
 * the rest to inline_run. */
static void block_line(norm_t *n, const char *s, size_t i, size_t e)
{
    i = skip_blanks(s, i, e);
    if (i == e || is_rule(s, i, e))
        return;
    while (i < e && s[i] == '>')
        i = skip_blanks(s, i + 1, e);
    size_t h = 0;
    while (i + h < e && s[i + h] == '#')
        h++;
    if (h >= 1 && h <= 6 && (i + h == e || s[i + h] == ' ' || s[i + h] == '\t')) {
        i = skip_blanks(s, i + h, e);
        /* "## Title ##": the closing run goes too. */
        while (e > i && (s[e - 1] == ' ' || s[e - 1] == '\t'))
            e--;
        size_t t = e;
        while (t > i && s[t - 1] == '#')
            t--;
        if (t < e && (t == i || s[t - 1] == ' ' || s[t - 1] == '\t'))
            e = t;
    } else if (i < e && strchr("-*+", s[i]) &&
               (i + 1 == e || s[i + 1] == ' ' || s[i + 1] == '\t')) {
        i = skip_blanks(s, i + 1, e);
    } else {
        size_t d = 0;
        while (i + d < e && d < 4 && is_digit(s[i + d]))
            d++;
        if (d >= 1 && d <= 3 && i + d < e && (s[i + d] == '.' || s[i + d] == ')') &&
            (i + d + 1 == e || s[i + d + 1] == ' ' || s[i + d + 1] == '\t'))
            i = skip_blanks(s, i + d + 1, e);
    }
    if (starts_with(s, i, e, "[ ]") || starts_with(s, i, e, "[x]") || starts_with(s, i, e, "[X]")) {
        if (i + 3 == e || s[i + 3] == ' ' || s[i + 3] == '\t')
            i = skip_blanks(s, i + 3, e);
    }
    inline_run(n, s, i, e, false);
}

static void normalise(norm_t *n, const char *s, size_t len)
{
    bool fence = false;
    size_t i = 0;
    while (i < len) {
        size_t le = i;
        while (le < len && s[le] != '\n' && s[le] != '\r')
            le++;
        size_t first = skip_blanks(s, i, le);
        if (starts_with(s, first, le, "```") || starts_with(s, first, le, "~~~"))
            fence = !fence; /* the fence line itself says nothing */
        else if (fence)
            inline_run(n, s, i, le, true);
        else
            block_line(n, s, i, le);
        both_space(n);
        i = le;
        if (i < len && s[i] == '\r' && i + 1 < len && s[i + 1] == '\n')
            i += 2; /* CRLF is one line end */
        else if (i < len)
            i++;
    }
}

/* ---- entry points --------------------------------------------------------- */

static bool has_content(const char *s)
{
    for (; *s; s++)
        if (is_digit(*s) || is_alpha(*s) || (unsigned char)*s >= 0x80)
            return true;
    return false;
}

static size_t count_words(const char *s)
{
    size_t words = 0;
    bool in = false;
    for (; *s; s++) {
        if (*s == ' ') {
            in = false;
        } else if (!in) {
            in = true;
            words++;
        }
    }
    return words;
}

int script_text_normalise(const char *in, size_t len, script_text_t *out, char *errbuf,
                          size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!in && len > 0)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "script is NULL");
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t k = script_text_utf8_decode((const unsigned char *)in + i, len - i, &cp);
        if (!k)
            return fenta_fail(errbuf, errlen, FENTA_EINVAL, "script is not valid UTF-8 at byte %zu",
                              i);
        i += k;
    }
    norm_t n;
    memset(&n, 0, sizeof n);
    normalise(&n, in ? in : "", len);
    char *speech = strbuf_take(&n.sp.s, NULL);
    char *captions = strbuf_take(&n.cap.s, NULL);
    if (!speech || !captions) {
        free(speech);
        free(captions);
        return fenta_fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    }
    if (!has_content(captions) || !has_content(speech)) {
        free(speech);
        free(captions);
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "script is empty");
    }
    out->speech = speech;
    out->captions = captions;
    out->words = count_words(captions);
    return 0;
}

void script_text_free(script_text_t *t)
{
    if (!t)
        return;
    free(t->speech);
    free(t->captions);
    memset(t, 0, sizeof *t);
}
