/* demo.c - `fenta demo`: a small supervised pipeline that shows the runtime's
 * guarantees to a newcomer: durable messages through three stages, a child
 * that keeps failing (retried with backoff, then dead-lettered with its
 * history), a supervisor restarting it, and an operator replaying the dead
 * letter once the fault is fixed. */
#include "cli/commands.h"
#include "cli/config.h"
#include "runtime/clock.h"
#include "runtime/dlq.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/runtime.h"
#include "runtime/supervisor.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Atomic int fault_fixed; /* the "operator fixed it" switch */
static _Atomic int restarts;    /* on_start(ACTOR_RESTARTED) seen */

/* Every stage keeps a count of what it handled in its state (8 bytes). */
static uint64_t bump(actor_ctx_t *ctx)
{
    size_t len;
    const void *s = actor_state(ctx, &len);
    uint64_t n = 0;
    if (len == sizeof n)
        memcpy(&n, s, sizeof n);
    n++;
    actor_set_state(ctx, &n, sizeof n);
    return n;
}

static int stage_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    bump(ctx);
    const char *self = actor_self(ctx);
    if (strcmp(self, "stage/ingest") == 0)
        return actor_send(ctx, "stage/transform", "item", m->body, m->body_len);
    if (strcmp(self, "stage/transform") == 0) {
        actor_send(ctx, "stage/sink", "item", m->body, m->body_len);
        /* Every fifth item also goes to the flaky enricher. */
        if (m->body_len && m->body[0] % 5 == 0)
            return actor_send(ctx, "flaky/enricher", "enrich", m->body, m->body_len);
    }
    return 0;
}

static int flaky_start(actor_ctx_t *ctx, actor_start_t why)
{
    if (why == ACTOR_RESTARTED)
        atomic_fetch_add(&restarts, 1);
    return 0;
}

static int flaky_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    if (!atomic_load(&fault_fixed))
        return actor_fail(ctx, "enrichment service unavailable (item %d)", m->body[0]);
    bump(ctx);
    return 0;
}

static const behaviour_t stage = {.kind = "stage", .on_message = stage_msg};
static const behaviour_t flaky = {
    .kind = "flaky",
    .dispatcher = "io",
    .on_start = flaky_start,
    .on_message = flaky_msg,
    .retry = {.base_ms = 20, .factor = 2.0, .cap_ms = 200, .max_attempts = 3},
};

static uint64_t count_of(runtime_t *rt, const char *addr)
{
    void *s = NULL;
    size_t len = 0;
    uint64_t n = 0;
    if (runtime_actor_state(rt, addr, &s, &len) == 0 && len == sizeof n)
        memcpy(&n, s, sizeof n);
    free(s);
    return n;
}

static int print_dead(const dlq_entry_t *e, void *arg)
{
    (void)arg;
    char id[ID_STR_LEN + 1];
    id_to_str(&e->id, id);
    printf("  dead letter %s to %s: %s\n", id, e->env ? e->env->to : "?", e->error);
    for (size_t i = 0; e->env && i < e->env->history_len; i++)
        printf("    attempt %u failed: %s\n", e->env->history[i].attempt + 1,
               e->env->history[i].error);
    return 1; /* one is enough to show */
}

int cmd_demo(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: fenta demo [DATA_DIR]\n\n"
               "Runs 20 items through ingest -> transform -> sink, sends every fifth to a\n"
               "failing 'enricher' (3 attempts with backoff, then the dead-letter queue),\n"
               "then fixes the fault and replays the dead letters. DATA_DIR (default: a new\n"
               "temporary directory) holds the LMDB mailboxes.\n\n");
        fenta_config_usage(stdout, CONFIG_DEMO);
        return 0;
    }
    fenta_config_t c;
    char why[1024];
    int loaded = fenta_config_load(&c, CONFIG_DEMO, &argc, argv, why, sizeof why);
    /* The demo prints its own story: the log says only errors unless a level
     * is asked for. */
    log_level_t level = fenta_config_source(&c, "log_level") == CONFIG_FROM_DEFAULT
                            ? LOG_ERROR
                            : (log_level_t)c.log_level;
    fenta_config_free(&c);
    if (loaded != 0) {
        fprintf(stderr, "fenta demo: %s\n", why);
        return 2;
    }
    log_set_level(level);
    char tmpl[] = "/tmp/fenta-demo-XXXXXX";
    const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
    if (!dir) {
        perror("fenta demo: mkdtemp");
        return 1;
    }
    int err = 0;
    runtime_t *rt = runtime_new(&(runtime_opts_t){.data_dir = dir}, &err);
    if (!rt) {
        fprintf(stderr, "fenta demo: %s\n", fenta_strerror(err));
        return 1;
    }
    supervisor_add(rt, &(supervisor_spec_t){.name = "pipeline",
                                            .strategy = SUP_ONE_FOR_ONE,
                                            .intensity = 20,
                                            .period_ms = 1000});
    runtime_register(rt, &stage);
    runtime_register(rt, &flaky);
    if ((err = runtime_start(rt))) {
        fprintf(stderr, "fenta demo: cannot start: %s\n", fenta_strerror(err));
        runtime_destroy(&rt);
        return 1;
    }
    const char *actors[] = {"stage/ingest", "stage/transform", "stage/sink", "flaky/enricher"};
    for (size_t i = 0; i < 4; i++)
        runtime_spawn(rt, actors[i], "pipeline", NULL, 0);
    printf("fenta demo: mailboxes in %s\n", dir);
    printf("sending 20 items to stage/ingest (each durable before the send returns)\n");
    int64_t t0 = clock_mono_us();
    for (uint8_t i = 1; i <= 20; i++)
        runtime_send(rt, "stage/ingest", "item", "demo", &i, 1);
    runtime_quiesce(rt, 1000, 10000);
    runtime_stats_t st;
    runtime_stats(rt, &st);
    printf("after %.0f ms: ingest=%llu transform=%llu sink=%llu enricher=%llu\n",
           (double)(clock_mono_us() - t0) / 1000, (unsigned long long)count_of(rt, actors[0]),
           (unsigned long long)count_of(rt, actors[1]), (unsigned long long)count_of(rt, actors[2]),
           (unsigned long long)count_of(rt, actors[3]));
    supervisor_info_t si;
    supervisor_info(rt, "pipeline", &si);
    printf("enricher failed %llu times, retried %llu, restarted by supervisor '%s' (%s) %d "
           "times; %llu dead letters\n",
           (unsigned long long)st.failed, (unsigned long long)st.retried, si.name,
           supervisor_strategy_name(si.strategy), atomic_load(&restarts),
           (unsigned long long)dlq_count(rt));
    dlq_list(rt, NULL, NULL, 0, print_dead, NULL);
    printf("operator fixes the enrichment service and replays every dead letter\n");
    atomic_store(&fault_fixed, 1);
    size_t replayed = 0;
    dlq_replay_where(rt, NULL, &replayed);
    runtime_quiesce(rt, 0, 10000);
    printf("replayed %zu: enricher=%llu, dead letters left: %zu\n", replayed,
           (unsigned long long)count_of(rt, actors[3]), dlq_count(rt));
    int ok = count_of(rt, actors[2]) == 20 && count_of(rt, actors[3]) == 4 && dlq_count(rt) == 0;
    runtime_stop(rt, 5000);
    runtime_destroy(&rt);
    printf("%s\n", ok ? "demo: OK" : "demo: UNEXPECTED RESULT");
    return ok ? 0 : 1;
}
