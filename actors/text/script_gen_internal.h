/* script_gen_internal.h - what the files of the script generator share, and
 * nothing else includes: script_gen.c (generation), script_gen_phrasing.c
 * (the phrasing tables, read from schemas/script_phrasing.json) and
 * script_gen_transform.c (trim, uppercase, hook_first). */
#ifndef FENTA_SCRIPT_GEN_INTERNAL_H
#define FENTA_SCRIPT_GEN_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>

#define SCRIPT_GEN__POOL_MAX 32 /* templates in one pool (the schema's maxItems) */

/* A list of templates (or words) from the phrasing file. */
typedef struct {
    const char *const *t; /* the templates, in the file's order (the shuffle depends on it) */
    size_t n;             /* how many */
} script_gen__pool_t;

/* The pools of templates: X(ID, genre or NULL for a top-level list, key). */
#define SCRIPT_GEN__POOLS(X)                                                                       \
    X(FILLERS, NULL, "fillers")                                                                    \
    X(ASIDES, NULL, "asides")                                                                      \
    X(HOOK_HOOKS, "hook", "hooks")                                                                 \
    X(HOOK_SETUPS, "hook", "setups")                                                               \
    X(HOOK_BEATS, "hook", "beats")                                                                 \
    X(HOOK_LINKS, "hook", "links")                                                                 \
    X(HOOK_PAYOFFS, "hook", "payoffs")                                                             \
    X(HOOK_CTAS, "hook", "ctas")                                                                   \
    X(FACTS_HOOKS, "facts", "hooks")                                                               \
    X(FACTS_INTROS, "facts", "intros")                                                             \
    X(FACTS_CLAIMS, "facts", "claims")                                                             \
    X(FACTS_LINKS, "facts", "links")                                                               \
    X(FACTS_OUTROS, "facts", "outros")                                                             \
    X(FACTS_CTAS, "facts", "ctas")                                                                 \
    X(LIST_HOOKS, "listicle", "hooks")                                                             \
    X(LIST_INTROS, "listicle", "intros")                                                           \
    X(LIST_ITEMS, "listicle", "items")                                                             \
    X(LIST_ASIDES, "listicle", "asides")                                                           \
    X(LIST_LINKS, "listicle", "links")                                                             \
    X(LIST_OUTROS, "listicle", "outros")                                                           \
    X(LIST_CTAS, "listicle", "ctas")                                                               \
    X(STORY_HOOKS, "story", "hooks")                                                               \
    X(STORY_OPENINGS, "story", "openings")                                                         \
    X(STORY_SETUPS, "story", "setups")                                                             \
    X(STORY_CONFLICTS, "story", "conflicts")                                                       \
    X(STORY_STRUGGLES, "story", "struggles")                                                       \
    X(STORY_PROGRESS, "story", "progress")                                                         \
    X(STORY_TURNS, "story", "turns")                                                               \
    X(STORY_RESOLUTIONS, "story", "resolutions")                                                   \
    X(STORY_LESSONS, "story", "lessons")                                                           \
    X(STORY_CTAS, "story", "ctas")

typedef enum {
#define SCRIPT_GEN__POOL_ID(id, genre, key) SCRIPT_GEN__P_##id,
    SCRIPT_GEN__POOLS(SCRIPT_GEN__POOL_ID)
#undef SCRIPT_GEN__POOL_ID
        SCRIPT_GEN__NPOOLS
} script_gen__pool_id_t;

/* The phrasing tables, loaded once and never changed or freed after: any
 * thread may read them without a lock. */
typedef struct {
    script_gen__pool_t pool[SCRIPT_GEN__NPOOLS]; /* by script_gen__pool_id_t */
    script_gen__pool_t ordinals;                 /* {O}: "First", "Second", ... */
    const char *ordinal_last;                    /* the last of three or more: "Finally" */
    const char *ordinal_more[2];                 /* past the table, even and odd places */
    script_gen__pool_t numbers;                  /* {n}, {N}: "zero", "one", ... */
    const char *number_more;                     /* past the table: "another" */
    script_gen__pool_t leads;                    /* a title's first words put in lower case */
    script_gen__pool_t dangling;                 /* words a shortened topic never ends on */
} script_gen__phrasing_t;

/* Sets *out to the process's phrasing tables (borrowed, for the process's
 * life), loading them from the default schemas folder if script_gen_load
 * has not: 0, or script_gen_load's error with *out NULL. */
int script_gen__phrasing(const script_gen__phrasing_t **out, char *errbuf, size_t errlen);

/* ---- words (script_gen.c) ---- */

/* ASCII whitespace: what separates words for the caption code too. */
bool script_gen__is_space(char c);
/* Whitespace-separated tokens of s[0..n). */
size_t script_gen__count_words(const char *s, size_t n);
/* 0 when s[0..n) is valid UTF-8, else FENTA_EINVAL "<what> is not valid
 * UTF-8 at byte N". */
int script_gen__utf8_check(const char *what, const char *s, size_t n, char *errbuf, size_t errlen);

#endif
