/* authcache.h - what authentication and GET /v1/me read on every request,
 * kept in memory: sessions known to be live, and each user's identity
 * document (user and organisations with roles).
 *
 * Correctness over hits. An entry is only served while the PostgreSQL
 * listener is connected (triggers send pg_notify('fenta_identity', user_id)
 * on every change to users, orgs, memberships and sessions, from any node);
 * a notification drops the user's entries, a possibly missed one drops all.
 * A reader fills the cache only if no invalidation happened between its
 * snapshot (authcache_seq, taken BEFORE its database read) and its insert, so
 * a slow reader can never put back what a revocation removed. The node that
 * revokes also drops its own entries before answering, so its next request
 * already sees the change; other nodes see it when the notification arrives
 * (milliseconds). Entries also expire after AUTHCACHE_TTL_MS. */
#ifndef FENTA_AUTHCACHE_H
#define FENTA_AUTHCACHE_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define AUTHCACHE_TTL_MS 30000
#define AUTHCACHE_MAX 20000

typedef struct authcache authcache_t;

authcache_t *authcache_new(void);
void authcache_destroy(authcache_t **self_p);

/* Enables serving (the listener is connected) or not; disabling drops all. */
void authcache_set_enabled(authcache_t *self, bool enabled);
/* The invalidation counter: snapshot it before reading the database. */
uint64_t authcache_seq(authcache_t *self);
/* Drops everything of user_id (NULL: everyone). */
void authcache_forget(authcache_t *self, const char *user_id);

/* Session sid of user_id is live (true), or unknown (false: ask the database). */
bool authcache_session_live(authcache_t *self, const char *sid, const char *user_id);
/* Remembers a live session, unless an invalidation happened since seq. */
void authcache_session_put(authcache_t *self, uint64_t seq, const char *sid, const char *user_id);

/* The user's identity document {"user":..., "orgs":[...]}, a new reference
 * the caller decrefs; NULL when unknown. Never modify it. */
json_t *authcache_identity_get(authcache_t *self, const char *user_id);
/* Remembers it (a reference is taken), unless an invalidation happened since seq. */
void authcache_identity_put(authcache_t *self, uint64_t seq, const char *user_id, json_t *doc);

/* The pg_listen callback: payload = user id, NULL = maybe missed, drop all. */
void authcache_on_notify(const char *payload, void *self);

#endif
