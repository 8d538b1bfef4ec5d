/* test_authcache.c - the authentication cache never serves what an
 * invalidation removed: not while disabled, not after a forget, and not when
 * a slow reader tries to put back what it read before the invalidation. */
#include "http/authcache.h"
#include "runtime/clock.h"

#include <criterion/criterion.h>

static authcache_t *c;

static void setup(void)
{
    c = authcache_new();
    cr_assert_not_null(c);
    authcache_set_enabled(c, true);
}

static void teardown(void)
{
    authcache_destroy(&c);
    clock_fake_clear();
}

TestSuite(authcache, .init = setup, .fini = teardown);

Test(authcache, serves_only_while_enabled)
{
    authcache_session_put(c, authcache_seq(c), "sid-1", "user-1");
    cr_assert(authcache_session_live(c, "sid-1", "user-1"));
    cr_assert_not(authcache_session_live(c, "sid-1", "user-2"), "another user's session");
    authcache_set_enabled(c, false);
    cr_assert_not(authcache_session_live(c, "sid-1", "user-1"));
    authcache_session_put(c, authcache_seq(c), "sid-1", "user-1");
    authcache_set_enabled(c, true);
    cr_assert_not(authcache_session_live(c, "sid-1", "user-1"), "nothing kept while disabled");
}

Test(authcache, forget_drops_one_user_or_everyone)
{
    json_t *doc = json_pack("{s:s}", "user", "a");
    authcache_session_put(c, authcache_seq(c), "sid-a", "user-a");
    authcache_session_put(c, authcache_seq(c), "sid-b", "user-b");
    authcache_identity_put(c, authcache_seq(c), "user-a", doc);
    authcache_forget(c, "user-a");
    cr_assert_not(authcache_session_live(c, "sid-a", "user-a"));
    cr_assert_null(authcache_identity_get(c, "user-a"));
    cr_assert(authcache_session_live(c, "sid-b", "user-b"), "others stay");
    authcache_on_notify(NULL, c); /* a notification may have been missed */
    cr_assert_not(authcache_session_live(c, "sid-b", "user-b"));
    json_decref(doc);
}

Test(authcache, a_reader_cannot_put_back_what_an_invalidation_removed)
{
    uint64_t seq = authcache_seq(c);  /* the reader's snapshot, before its query */
    authcache_on_notify("user-x", c); /* a revocation lands meanwhile */
    authcache_session_put(c, seq, "sid-x", "user-x");
    cr_assert_not(authcache_session_live(c, "sid-x", "user-x"), "stale put refused");
    authcache_session_put(c, authcache_seq(c), "sid-x", "user-x");
    cr_assert(authcache_session_live(c, "sid-x", "user-x"), "a fresh read is cached");
}

Test(authcache, entries_expire)
{
    clock_fake_set(1000000);
    authcache_session_put(c, authcache_seq(c), "sid-t", "user-t");
    cr_assert(authcache_session_live(c, "sid-t", "user-t"));
    clock_fake_advance(AUTHCACHE_TTL_MS + 1);
    cr_assert_not(authcache_session_live(c, "sid-t", "user-t"));
}

Test(authcache, stays_bounded)
{
    char sid[32];
    for (int i = 0; i < 3 * AUTHCACHE_MAX; i++) {
        snprintf(sid, sizeof sid, "sid-%d", i);
        authcache_session_put(c, authcache_seq(c), sid, "user-many");
    }
    cr_assert(authcache_session_live(c, sid, "user-many"), "the newest is there");
}
