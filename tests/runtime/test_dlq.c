/* test_dlq.c - the dead-letter queue: retries then death with a history,
 * listing (filters, pagination), get, replay (one, filtered, all), drop (one,
 * filtered), messages nobody can handle, and undecodable mailbox entries found
 * at start-up. */
#include "runtime/clock.h"
#include "runtime/dlq.h"
#include "runtime/error.h"
#include "runtime/runtime.h"
#include "runtime/store.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000000LL /* fake clock start, Unix ms */
#define MAXSEEN 64

static _Atomic int heal;         /* handlers succeed once set */
static _Atomic int calls;        /* handler invocations */
static _Atomic int seen_attempt; /* attempt of the last message handled successfully */
static _Atomic int seen_history; /* its history_len */

/* Fails ("boom <type> attempt <n>") until `heal` is set, then counts. */
static int h_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    atomic_fetch_add(&calls, 1);
    if (!atomic_load(&heal))
        return actor_fail(ctx, "boom %s attempt %u", m->type, m->attempt);
    atomic_store(&seen_attempt, (int)m->attempt);
    atomic_store(&seen_history, (int)m->history_len);
    return fx_count(ctx);
}

/* Three deliveries with short backoff ceilings (20 ms, then 40 ms). */
static const backoff_policy_t flaky_retry = {
    .base_ms = 20, .factor = 2, .cap_ms = 40, .max_attempts = 3};
static const behaviour_t flaky = {.kind = "flaky", .on_message = h_msg, .retry = flaky_retry};
/* One delivery: straight to the DLQ. */
static const behaviour_t bad = {
    .kind = "bad",
    .on_message = h_msg,
    .retry = {.base_ms = 1, .factor = 1, .cap_ms = 1, .max_attempts = 1},
};

/* Gives up on "give-up" by dead-lettering a "redo" to itself with its ack;
 * counts the "redo" it gets when that is replayed. */
static _Atomic int redos;
static int h_giver(actor_ctx_t *ctx, const envelope_t *m)
{
    if (strcmp(m->type, "redo") == 0) {
        atomic_fetch_add(&redos, 1);
        return 0;
    }
    return actor_dead_letter(ctx, actor_self(ctx), "redo", "x", 1, "gave up after 3 tries");
}
static const behaviour_t giver = {.kind = "giver", .on_message = h_giver};

static char *dir;
static runtime_t *rt;

static runtime_t *open_rt(void)
{
    runtime_t *r = fx_runtime(dir, true);
    cr_assert_eq(runtime_register(r, &flaky), 0);
    cr_assert_eq(runtime_register(r, &bad), 0);
    cr_assert_eq(runtime_register(r, &giver), 0);
    cr_assert_eq(runtime_start(r), 0);
    return r;
}

static void setup(void)
{
    atomic_store(&heal, 0);
    atomic_store(&calls, 0);
    atomic_store(&seen_attempt, -1);
    atomic_store(&seen_history, -1);
    dir = fx_tmpdir("dlq");
    rt = open_rt();
}

static void teardown(void)
{
    runtime_destroy(&rt);
    fx_rmdir(dir);
    dir = NULL;
    clock_fake_clear();
}

TestSuite(dlq, .init = setup, .fini = teardown);

static void spawn(const char *addr)
{
    cr_assert_eq(runtime_spawn(rt, addr, NULL, NULL, 0), 0, "spawn %s", addr);
}

static void tell(const char *to, const char *type)
{
    cr_assert_eq(runtime_send(rt, to, type, NULL, NULL, 0), 0, "send %s to %s", type, to);
}

/* Waits for handlers and for retries due within a second. */
static void settle(void)
{
    cr_assert_eq(runtime_quiesce(rt, 1000, 5000), 0, "runtime did not settle");
}

/* What dlq_list gave, copied out of the borrowed entries. */
typedef struct {
    size_t n;
    size_t stop_after; /* the callback asks to stop after this many (0 = never) */
    fenta_id_t ids[MAXSEEN];
    char to[MAXSEEN][32];
    char type[MAXSEEN][16];
    int64_t dead_at[MAXSEEN];
    bool decoded[MAXSEEN];
} seen_t;

static int collect(const dlq_entry_t *e, void *arg)
{
    seen_t *s = arg;
    if (s->n < MAXSEEN) {
        s->ids[s->n] = e->id;
        snprintf(s->to[s->n], sizeof s->to[0], "%s", e->env ? e->env->to : "");
        snprintf(s->type[s->n], sizeof s->type[0], "%s", e->env ? e->env->type : "");
        s->dead_at[s->n] = e->dead_at_ms;
        s->decoded[s->n] = e->env != NULL;
    }
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static seen_t list(const dlq_filter_t *f, const fenta_id_t *after, size_t limit)
{
    seen_t s = {0};
    cr_assert_eq(dlq_list(rt, f, after, limit, collect, &s), 0);
    return s;
}

static size_t count_where(const dlq_filter_t *f)
{
    return list(f, NULL, 0).n;
}

/* The id of the only entry in the queue. */
static fenta_id_t only_id(void)
{
    seen_t s = list(NULL, NULL, 0);
    cr_assert_eq(s.n, 1, "expected one dead letter, found %zu", s.n);
    return s.ids[0];
}

Test(dlq, failing_message_is_retried_then_dead_lettered_with_history)
{
    spawn("flaky/a");
    int64_t t0 = clock_now_ms();
    cr_assert_eq(runtime_send(rt, "flaky/a", "job", "job-1", "payload", 7), 0);
    settle();

    cr_assert_eq(atomic_load(&calls), 3, "delivered max_attempts times");
    cr_assert_eq(dlq_count(rt), 1);
    runtime_stats_t st;
    runtime_stats(rt, &st);
    cr_assert_eq(st.failed, 3);
    cr_assert_eq(st.retried, 2);
    cr_assert_eq(st.dead_lettered, 1);
    cr_assert_eq(st.processed, 0);

    fenta_id_t id = only_id();
    dlq_entry_t *e = NULL;
    cr_assert_eq(dlq_get(rt, &id, &e), 0);
    cr_assert_not_null(e->env);
    cr_assert_null(e->raw);
    cr_assert_eq(memcmp(e->env->id.b, id.b, ID_BYTES), 0, "keyed by the message id");
    cr_assert_str_eq(e->env->to, "flaky/a");
    cr_assert_str_eq(e->env->type, "job");
    cr_assert_str_eq(e->env->corr, "job-1");
    cr_assert_eq(e->env->body_len, 7);
    cr_assert_eq(memcmp(e->env->body, "payload", 7), 0);
    cr_assert_str_eq(e->error, "boom job attempt 2", "the last error");
    cr_assert_eq(e->env->attempt, 2);
    cr_assert_eq(e->env->history_len, 3, "one history entry per attempt");
    for (uint32_t i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "boom job attempt %u", i);
        cr_assert_eq(e->env->history[i].attempt, i, "attempts numbered from 0");
        cr_assert_str_eq(e->env->history[i].error, want);
        cr_assert_geq(e->env->history[i].at_ms, t0);
        if (i)
            cr_assert_geq(e->env->history[i].at_ms, e->env->history[i - 1].at_ms);
    }
    /* The last retry was due after the second failure plus a delay within
     * that attempt's ceiling, and was not delivered before it was due. */
    int64_t nb = e->env->not_before_ms;
    cr_assert_geq(nb, e->env->history[1].at_ms);
    cr_assert_leq(nb - e->env->history[1].at_ms, backoff_ceiling_ms(&flaky_retry, 2));
    cr_assert_geq(e->env->history[2].at_ms, nb, "retry delivered before it was due");
    cr_assert_geq(e->dead_at_ms, e->env->history[2].at_ms);
    dlq_entry_destroy(&e);
    cr_assert_null(e);
    dlq_entry_destroy(&e); /* accepts NULL */
    dlq_entry_destroy(NULL);
}

Test(dlq, list_filters_by_address_type_and_time)
{
    clock_fake_set(T0);
    spawn("bad/a");
    spawn("bad/b");
    tell("bad/a", "x");
    tell("bad/a", "x");
    tell("bad/b", "y");
    settle();
    clock_fake_advance(10000);
    tell("bad/a", "y");
    tell("bad/b", "x");
    settle();

    seen_t all = list(NULL, NULL, 0);
    cr_assert_eq(all.n, 5);
    for (size_t i = 0; i < all.n; i++)
        cr_assert(all.dead_at[i] == T0 || all.dead_at[i] == T0 + 10000, "dead_at %ld",
                  (long)all.dead_at[i]);
    cr_assert_eq(count_where(&(dlq_filter_t){0}), 5, "an empty filter matches all");
    cr_assert_eq(count_where(&(dlq_filter_t){.to_prefix = "bad/a"}), 3);
    cr_assert_eq(count_where(&(dlq_filter_t){.to_prefix = "bad/b"}), 2);
    cr_assert_eq(count_where(&(dlq_filter_t){.to_prefix = "bad/"}), 5);
    cr_assert_eq(count_where(&(dlq_filter_t){.to_prefix = "flaky/"}), 0);
    cr_assert_eq(count_where(&(dlq_filter_t){.type = "x"}), 3);
    cr_assert_eq(count_where(&(dlq_filter_t){.type = "y"}), 2);
    cr_assert_eq(count_where(&(dlq_filter_t){.type = "z"}), 0);
    cr_assert_eq(count_where(&(dlq_filter_t){.since_ms = T0 + 10000}), 2, "since is inclusive");
    cr_assert_eq(count_where(&(dlq_filter_t){.until_ms = T0 + 10000}), 3, "until is exclusive");
    cr_assert_eq(count_where(&(dlq_filter_t){.since_ms = T0, .until_ms = T0 + 1}), 3);
    cr_assert_eq(count_where(&(dlq_filter_t){.since_ms = T0 + 10001}), 0);

    seen_t one =
        list(&(dlq_filter_t){.to_prefix = "bad/a", .type = "y", .since_ms = T0 + 1}, NULL, 0);
    cr_assert_eq(one.n, 1, "filters combine");
    cr_assert_str_eq(one.to[0], "bad/a");
    cr_assert_str_eq(one.type[0], "y");
    cr_assert_eq(one.dead_at[0], T0 + 10000);
}

Test(dlq, list_paginates_with_after_and_limit)
{
    spawn("bad/a");
    for (int i = 0; i < 7; i++)
        tell("bad/a", i % 2 ? "odd" : "even");
    settle();
    seen_t all = list(NULL, NULL, 0);
    cr_assert_eq(all.n, 7);
    for (size_t i = 1; i < all.n; i++)
        cr_assert_lt(memcmp(all.ids[i - 1].b, all.ids[i].b, ID_BYTES), 0, "oldest first");
    for (size_t i = 0; i < all.n; i++)
        cr_assert_str_eq(all.type[i], i % 2 ? "odd" : "even", "in send order");

    /* Pages of 3 cover every entry once, in order. */
    size_t got = 0;
    const fenta_id_t *after = NULL;
    fenta_id_t cursor;
    for (int page = 0; page < 5; page++) {
        seen_t p = list(NULL, after, 3);
        cr_assert_leq(p.n, 3, "limit respected");
        for (size_t i = 0; i < p.n; i++)
            cr_assert_eq(memcmp(p.ids[i].b, all.ids[got + i].b, ID_BYTES), 0, "page %d entry %zu",
                         page, i);
        got += p.n;
        if (p.n == 0)
            break;
        cursor = p.ids[p.n - 1];
        after = &cursor;
    }
    cr_assert_eq(got, 7);
    cr_assert_eq(list(NULL, &all.ids[6], 0).n, 0, "nothing after the last");

    /* The limit counts matching entries only. */
    dlq_filter_t even = {.type = "even"};
    seen_t p1 = list(&even, NULL, 2);
    cr_assert_eq(p1.n, 2);
    cr_assert_eq(memcmp(p1.ids[1].b, all.ids[2].b, ID_BYTES), 0);
    seen_t p2 = list(&even, &p1.ids[1], 2);
    cr_assert_eq(p2.n, 2);
    cr_assert_eq(memcmp(p2.ids[0].b, all.ids[4].b, ID_BYTES), 0);
    cr_assert_eq(memcmp(p2.ids[1].b, all.ids[6].b, ID_BYTES), 0);
    cr_assert_eq(list(&even, &p2.ids[1], 2).n, 0);

    /* A callback returning non-zero stops the listing. */
    seen_t stop = {.stop_after = 2};
    cr_assert_eq(dlq_list(rt, NULL, NULL, 0, collect, &stop), 0);
    cr_assert_eq(stop.n, 2);
}

Test(dlq, get_returns_an_owned_entry_or_enotfound)
{
    spawn("bad/a");
    tell("bad/a", "x");
    settle();
    fenta_id_t id = only_id();
    dlq_entry_t *e = NULL;
    cr_assert_eq(dlq_get(rt, &id, &e), 0);
    cr_assert_not_null(e);
    cr_assert_eq(memcmp(e->id.b, id.b, ID_BYTES), 0);
    cr_assert_str_eq(e->env->to, "bad/a");
    cr_assert_str_eq(e->error, "boom x attempt 0");
    cr_assert_eq(e->env->history_len, 1);
    cr_assert_gt(e->dead_at_ms, 0);
    dlq_entry_destroy(&e);

    fenta_id_t unknown;
    id_new(&unknown);
    e = NULL;
    cr_assert_eq(dlq_get(rt, &unknown, &e), FENTA_ENOTFOUND);
    cr_assert_null(e, "nothing handed out on failure");
    cr_assert_eq(dlq_count(rt), 1, "get does not remove");
}

Test(dlq, replay_resets_the_attempt_and_keeps_the_history)
{
    spawn("flaky/a");
    tell("flaky/a", "job");
    settle();
    fenta_id_t id = only_id();

    atomic_store(&heal, 1);
    cr_assert_eq(dlq_replay(rt, &id), 0);
    settle();
    cr_assert_eq(dlq_count(rt), 0, "replayed entries leave the queue");
    cr_assert_eq(fx_counter(rt, "flaky/a"), 1, "handled once replayed");
    cr_assert_eq(atomic_load(&calls), 4, "3 failed deliveries + 1 replayed");
    cr_assert_eq(atomic_load(&seen_attempt), 0, "attempt reset to 0");
    cr_assert_eq(atomic_load(&seen_history), 3, "history kept");
    cr_assert_eq(dlq_replay(rt, &id), FENTA_ENOTFOUND, "gone after replay");
}

Test(dlq, a_replayed_message_that_dies_again_shows_both_histories)
{
    spawn("flaky/a");
    tell("flaky/a", "job");
    settle();
    fenta_id_t id = only_id();
    cr_assert_eq(dlq_replay(rt, &id), 0);
    settle();
    cr_assert_eq(atomic_load(&calls), 6, "max_attempts again after the replay");
    cr_assert_eq(dlq_count(rt), 1, "one entry per message, even when it dies twice");
    dlq_entry_t *e = NULL;
    cr_assert_eq(dlq_get(rt, &id, &e), 0);
    cr_assert_eq(e->env->history_len, 6);
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(e->env->history[i].attempt, i % 3, "history[%zu]", i);
    cr_assert_str_eq(e->error, "boom job attempt 2");
    dlq_entry_destroy(&e);
}

/* Five dead letters: two "x" to bad/a, three "y" to bad/b. */
static void five_dead(void)
{
    spawn("bad/a");
    spawn("bad/b");
    tell("bad/a", "x");
    tell("bad/a", "x");
    for (int i = 0; i < 3; i++)
        tell("bad/b", "y");
    settle();
    cr_assert_eq(dlq_count(rt), 5);
}

Test(dlq, replay_where_replays_only_the_matching_set)
{
    five_dead();
    atomic_store(&heal, 1);
    size_t n = 99;
    cr_assert_eq(dlq_replay_where(rt, &(dlq_filter_t){.type = "nomatch"}, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(dlq_replay_where(rt, &(dlq_filter_t){.to_prefix = "bad/a"}, &n), 0);
    cr_assert_eq(n, 2);
    settle();
    cr_assert_eq(fx_counter(rt, "bad/a"), 2);
    cr_assert_eq(fx_counter(rt, "bad/b"), 0, "not in the set: not replayed");
    cr_assert_eq(dlq_count(rt), 3);
    cr_assert_eq(count_where(&(dlq_filter_t){.type = "y"}), 3, "the rest stay");
}

Test(dlq, replay_where_null_replays_everything)
{
    five_dead();
    atomic_store(&heal, 1);
    size_t n = 0;
    cr_assert_eq(dlq_replay_where(rt, NULL, &n), 0);
    cr_assert_eq(n, 5);
    settle();
    cr_assert_eq(dlq_count(rt), 0);
    cr_assert_eq(fx_counter(rt, "bad/a"), 2);
    cr_assert_eq(fx_counter(rt, "bad/b"), 3);
}

Test(dlq, drop_deletes_one_entry_without_delivering_it)
{
    spawn("bad/a");
    tell("bad/a", "first");
    tell("bad/a", "second");
    settle();
    seen_t all = list(NULL, NULL, 0);
    cr_assert_eq(all.n, 2);
    cr_assert_str_eq(all.type[0], "first");
    cr_assert_eq(dlq_drop(rt, &all.ids[0]), 0);
    cr_assert_eq(dlq_count(rt), 1);
    dlq_entry_t *e = NULL;
    cr_assert_eq(dlq_get(rt, &all.ids[0], &e), FENTA_ENOTFOUND);
    cr_assert_eq(dlq_replay(rt, &all.ids[0]), FENTA_ENOTFOUND, "a dropped entry cannot replay");
    cr_assert_eq(dlq_drop(rt, &all.ids[0]), FENTA_ENOTFOUND, "nor be dropped twice");

    atomic_store(&heal, 1);
    size_t n = 0;
    cr_assert_eq(dlq_replay_where(rt, NULL, &n), 0);
    cr_assert_eq(n, 1);
    settle();
    cr_assert_eq(fx_counter(rt, "bad/a"), 1, "only the kept message was handled");
}

Test(dlq, drop_where_deletes_the_matching_set)
{
    five_dead();
    size_t n = 99;
    cr_assert_eq(dlq_drop_where(rt, &(dlq_filter_t){.type = "y"}, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(dlq_count(rt), 2);
    seen_t rest = list(NULL, NULL, 0);
    for (size_t i = 0; i < rest.n; i++)
        cr_assert_str_eq(rest.type[i], "x");
    cr_assert_eq(dlq_drop_where(rt, NULL, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_eq(dlq_count(rt), 0);
}

Test(dlq, replay_of_an_unknown_id_is_enotfound)
{
    fenta_id_t unknown;
    id_new(&unknown);
    cr_assert_eq(dlq_replay(rt, &unknown), FENTA_ENOTFOUND);
    cr_assert_eq(dlq_count(rt), 0);
}

Test(dlq, message_to_an_actor_never_spawned_is_dead_lettered)
{
    tell("flaky/ghost", "hello");
    settle();
    cr_assert_eq(atomic_load(&calls), 0, "no handler ran");
    fenta_id_t id = only_id();
    dlq_entry_t *e = NULL;
    cr_assert_eq(dlq_get(rt, &id, &e), 0);
    cr_assert_str_eq(e->env->to, "flaky/ghost");
    cr_assert_str_eq(e->env->type, "hello");
    cr_assert_not_null(strstr(e->error, "no such actor"), "error: %s", e->error);
    dlq_entry_destroy(&e);
    runtime_stats_t st;
    runtime_stats(rt, &st);
    cr_assert_eq(st.dead_lettered, 1);
    cr_assert_eq(st.retried, 0, "nothing to retry: no actor will appear by waiting");
}

Test(dlq, message_to_an_unregistered_kind_is_dead_lettered)
{
    /* Spawning does not need the kind; handling does. */
    spawn("nokind/x");
    tell("nokind/x", "hello");
    settle();
    fenta_id_t id = only_id();
    dlq_entry_t *e = NULL;
    cr_assert_eq(dlq_get(rt, &id, &e), 0);
    cr_assert_str_eq(e->env->to, "nokind/x");
    cr_assert_not_null(strstr(e->error, "no behaviour registered"), "error: %s", e->error);
    dlq_entry_destroy(&e);

    tell("nokind/y", "hello"); /* neither spawned nor registered */
    settle();
    cr_assert_eq(dlq_count(rt), 2);
    cr_assert_eq(atomic_load(&calls), 0);
}

/* Writes val under the mailbox key of `to` with a fresh message id. */
typedef struct {
    const char *to;
    fenta_id_t id;
    const uint8_t *val;
    size_t vlen;
} inject_t;

static int inject_fn(store_txn_t *txn, void *arg)
{
    inject_t *in = arg;
    uint8_t key[64];
    size_t tl = strlen(in->to);
    memcpy(key, in->to, tl);
    key[tl] = 0;
    memcpy(key + tl + 1, in->id.b, ID_BYTES);
    return store_put(txn, STORE_MBOX, key, tl + 1 + ID_BYTES, in->val, in->vlen);
}

static int count_mbox_fn(store_txn_t *txn, void *arg)
{
    *(size_t *)arg = store_count(txn, STORE_MBOX);
    return 0;
}

Test(dlq, undecodable_mailbox_entry_is_dead_lettered_at_start)
{
    spawn("flaky/a");
    atomic_store(&heal, 1);
    tell("flaky/a", "ping");
    settle();
    runtime_destroy(&rt);

    /* Random bytes, except the first: 0xc1 is the one byte msgpack never
     * uses, so the value cannot decode by chance. */
    uint8_t junk[64];
    srand(42);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)rand();
    junk[0] = 0xc1;
    inject_t in = {.to = "flaky/a", .val = junk, .vlen = sizeof junk};
    id_new(&in.id);
    int err = 0;
    store_t *st = store_open(dir, &(store_opts_t){.no_sync = 1}, &err);
    cr_assert_not_null(st, "store_open: %d", err);
    cr_assert_eq(store_write(st, inject_fn, &in), 0);
    store_close(&st);
    cr_assert_null(st);

    rt = open_rt();
    cr_assert_eq(dlq_count(rt), 1, "moved to the DLQ by runtime_start");
    seen_t all = list(NULL, NULL, 0);
    cr_assert_eq(all.n, 1);
    cr_assert_not(all.decoded[0]);
    cr_assert_eq(memcmp(all.ids[0].b, in.id.b, ID_BYTES), 0, "keyed by the id in its mailbox key");
    dlq_entry_t *e = NULL;
    cr_assert_eq(dlq_get(rt, &in.id, &e), 0);
    cr_assert_null(e->env, "it did not decode");
    cr_assert_eq(e->raw_len, sizeof junk);
    cr_assert_eq(memcmp(e->raw, junk, sizeof junk), 0, "the bytes are kept as they were");
    cr_assert_not_null(strstr(e->error, "undecodable"), "error: %s", e->error);
    cr_assert_gt(e->dead_at_ms, 0);
    dlq_entry_destroy(&e);
    cr_assert_eq(count_where(&(dlq_filter_t){.to_prefix = "flaky/"}), 0,
                 "no address to match when it never decoded");

    cr_assert_eq(dlq_replay(rt, &in.id), FENTA_EDECODE, "it can only be dropped");
    size_t n = 99;
    cr_assert_eq(dlq_replay_where(rt, NULL, &n), 0);
    cr_assert_eq(n, 0, "replay_where skips what never decoded");
    cr_assert_eq(dlq_count(rt), 1);

    /* The runtime keeps working, the actor included. */
    tell("flaky/a", "ping");
    settle();
    cr_assert_eq(fx_counter(rt, "flaky/a"), 2);

    cr_assert_eq(dlq_drop(rt, &in.id), 0);
    cr_assert_eq(dlq_count(rt), 0);
    runtime_destroy(&rt);

    /* It left the mailbox in the commit that dead-lettered it. */
    st = store_open(dir, &(store_opts_t){.no_sync = 1}, &err);
    cr_assert_not_null(st, "store_open: %d", err);
    size_t inbox = 99;
    cr_assert_eq(store_read(st, count_mbox_fn, &inbox), 0);
    store_close(&st);
    cr_assert_eq(inbox, 0);
}

Test(dlq, an_actor_can_dead_letter_a_message_itself_and_replay_delivers_it)
{
    atomic_store(&redos, 0);
    spawn("giver/a");
    tell("giver/a", "give-up");
    settle();
    runtime_stats_t st;
    runtime_stats(rt, &st);
    cr_assert_eq(st.failed, 0, "giving up is not a handler failure");
    seen_t s = list(NULL, NULL, 0);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.to[0], "giver/a");
    cr_assert_str_eq(s.type[0], "redo");
    dlq_entry_t *e = NULL;
    cr_assert_eq(dlq_get(rt, &s.ids[0], &e), 0);
    cr_assert(strstr(e->error, "gave up after 3 tries"), "%s", e->error);
    cr_assert_eq(e->env->body_len, 1);
    dlq_entry_destroy(&e);
    cr_assert_eq(atomic_load(&redos), 0);
    cr_assert_eq(dlq_replay(rt, &s.ids[0]), 0);
    settle();
    cr_assert_eq(atomic_load(&redos), 1, "the replay reaches the actor");
    cr_assert_eq(dlq_count(rt), 0);
}
