/* authcache.c - the session and identity cache (see authcache.h). One lock
 * and two small open hash tables of fixed capacity; a full table is simply
 * cleared (the cache is an optimisation, never the truth). */
#include "http/authcache.h"
#include "runtime/clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 65

typedef struct {
    char key[ID_MAX];  /* sid or user id; "" = empty slot */
    char user[ID_MAX]; /* owner (for forget) */
    json_t *doc;       /* identity document (identity table only) */
    int64_t expires;   /* clock_now_ms deadline */
} entry_t;

struct authcache {
    pthread_mutex_t lock;
    bool enabled;      /* serving (listener connected) */
    uint64_t seq;      /* invalidations so far */
    entry_t *sessions; /* AUTHCACHE_MAX slots */
    entry_t *idents;   /* AUTHCACHE_MAX slots */
    size_t nsessions, nidents;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static void clear(entry_t *t, size_t *n)
{
    for (size_t i = 0; i < AUTHCACHE_MAX; i++) {
        json_decref(t[i].doc);
        memset(&t[i], 0, sizeof t[i]);
    }
    *n = 0;
}

authcache_t *authcache_new(void)
{
    authcache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->sessions = calloc(AUTHCACHE_MAX, sizeof *c->sessions);
    c->idents = calloc(AUTHCACHE_MAX, sizeof *c->idents);
    if (!c->sessions || !c->idents) {
        free(c->sessions);
        free(c->idents);
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void authcache_destroy(authcache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    authcache_t *c = *self_p;
    clear(c->sessions, &c->nsessions);
    clear(c->idents, &c->nidents);
    free(c->sessions);
    free(c->idents);
    pthread_mutex_destroy(&c->lock);
    free(c);
    *self_p = NULL;
}

/* Linear probing; returns the slot holding key, or the free slot for it. */
static entry_t *slot(entry_t *t, const char *key)
{
    size_t i = hash(key) % AUTHCACHE_MAX;
    for (size_t n = 0; n < AUTHCACHE_MAX; n++, i = (i + 1) % AUTHCACHE_MAX)
        if (!t[i].key[0] || strcmp(t[i].key, key) == 0)
            return &t[i];
    return NULL;
}

static void forget_locked(authcache_t *c, const char *user)
{
    c->seq++;
    if (!user) {
        clear(c->sessions, &c->nsessions);
        clear(c->idents, &c->nidents);
        return;
    }
    /* Rebuild without the user's entries (probing chains stay intact). */
    entry_t *tables[2] = {c->sessions, c->idents};
    size_t *counts[2] = {&c->nsessions, &c->nidents};
    for (int t = 0; t < 2; t++) {
        bool any = false;
        for (size_t i = 0; i < AUTHCACHE_MAX && !any; i++)
            any = tables[t][i].key[0] && strcmp(tables[t][i].user, user) == 0;
        if (!any)
            continue;
        entry_t *old = malloc(sizeof(entry_t) * AUTHCACHE_MAX);
        if (!old) {
            clear(tables[t], counts[t]);
            continue;
        }
        memcpy(old, tables[t], sizeof(entry_t) * AUTHCACHE_MAX);
        memset(tables[t], 0, sizeof(entry_t) * AUTHCACHE_MAX);
        *counts[t] = 0;
        for (size_t i = 0; i < AUTHCACHE_MAX; i++) {
            if (!old[i].key[0])
                continue;
            if (strcmp(old[i].user, user) == 0) {
                json_decref(old[i].doc);
                continue;
            }
            *slot(tables[t], old[i].key) = old[i];
            (*counts[t])++;
        }
        free(old);
    }
}

void authcache_set_enabled(authcache_t *c, bool enabled)
{
    pthread_mutex_lock(&c->lock);
    if (c->enabled && !enabled)
        forget_locked(c, NULL);
    c->enabled = enabled;
    pthread_mutex_unlock(&c->lock);
}

uint64_t authcache_seq(authcache_t *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t s = c->seq;
    pthread_mutex_unlock(&c->lock);
    return s;
}

void authcache_forget(authcache_t *c, const char *user_id)
{
    pthread_mutex_lock(&c->lock);
    forget_locked(c, user_id);
    pthread_mutex_unlock(&c->lock);
}

void authcache_on_notify(const char *payload, void *arg)
{
    authcache_forget(arg, payload);
}

static bool fits(const char *a, const char *b)
{
    return a && b && strlen(a) < ID_MAX && strlen(b) < ID_MAX;
}

bool authcache_session_live(authcache_t *c, const char *sid, const char *user_id)
{
    if (!fits(sid, user_id))
        return false;
    pthread_mutex_lock(&c->lock);
    entry_t *e = c->enabled ? slot(c->sessions, sid) : NULL;
    bool live = e && e->key[0] && strcmp(e->user, user_id) == 0 && e->expires > clock_now_ms();
    pthread_mutex_unlock(&c->lock);
    return live;
}

static void put(authcache_t *c, entry_t *t, size_t *n, uint64_t seq, const char *key,
                const char *user, json_t *doc)
{
    pthread_mutex_lock(&c->lock);
    if (c->enabled && seq == c->seq) {
        if (*n >= AUTHCACHE_MAX * 3 / 4)
            clear(t, n); /* full: start over rather than evict one by one */
        entry_t *e = slot(t, key);
        if (e) {
            if (!e->key[0])
                (*n)++;
            json_decref(e->doc);
            snprintf(e->key, sizeof e->key, "%s", key);
            snprintf(e->user, sizeof e->user, "%s", user);
            e->doc = json_incref(doc);
            e->expires = clock_now_ms() + AUTHCACHE_TTL_MS;
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void authcache_session_put(authcache_t *c, uint64_t seq, const char *sid, const char *user_id)
{
    if (fits(sid, user_id))
        put(c, c->sessions, &c->nsessions, seq, sid, user_id, NULL);
}

json_t *authcache_identity_get(authcache_t *c, const char *user_id)
{
    if (!fits(user_id, user_id))
        return NULL;
    pthread_mutex_lock(&c->lock);
    entry_t *e = c->enabled ? slot(c->idents, user_id) : NULL;
    json_t *doc = e && e->key[0] && e->expires > clock_now_ms() ? json_incref(e->doc) : NULL;
    pthread_mutex_unlock(&c->lock);
    return doc;
}

void authcache_identity_put(authcache_t *c, uint64_t seq, const char *user_id, json_t *doc)
{
    if (fits(user_id, user_id) && doc)
        put(c, c->idents, &c->nidents, seq, user_id, user_id, doc);
}
