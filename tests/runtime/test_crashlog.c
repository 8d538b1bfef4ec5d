/* test_crashlog.c - a message that crashes the process is quarantined, not
 * replayed forever (runtime/crashlog.h, runtime/quarantine.c).
 *
 * Each test forks child runtimes on one data directory, as test_crash.c
 * does. A driver actor spawns 10 "worker" actors (default dispatcher) and
 * 10 "busy" actors (io dispatcher, a little slower, so other threads have
 * messages in flight) and sends, in one effect set, 1,000 work messages to
 * the workers and 400 to the busy ones. A worker given the marked message
 * writes to an unmapped address: a real SIGSEGV. The parent restarts the
 * child after each death and checks, at the end, every durable counter
 * (exactly once), the dead-letter queue, the journal and the crash counts.
 * LMDB's fsync is off: a process that dies loses nothing the kernel has,
 * and the journal keeps its own fdatasync. */
#include "runtime/crashlog.h"
#include "runtime/dlq.h"
#include "runtime/error.h"
#include "runtime/runtime.h"
#include "runtime/store.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NWORKERS 10
#define NWORK 1000
#define NBUSY_ACTORS 10
#define NBUSY 400
#define MARKED 537 /* the poison: goes to worker/7 */
#define NO_MARK UINT32_MAX

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1 /* ASan's own handler runs after ours and dies its way */
#else
#define UNDER_ASAN 0
#endif

TestSuite(crashlog, .timeout = 600);

typedef struct {
    uint32_t j;      /* message number */
    uint32_t marked; /* 1: crash the process */
} work_t;

/* What a child run does. */
typedef struct {
    int after;        /* crash_quarantine_after (0 = default) */
    uint32_t marked;  /* the message that crashes, or NO_MARK */
    bool replay;      /* replay every dead letter before kicking */
    bool crash_main;  /* crash on the main thread once the work is done */
    bool send_poison; /* send the marked message from outside at start, a new one each run */
    bool fork_crash;  /* the marked message crashes a forked child, not the process */
    int ready_fd;     /* write a byte here when the busy actors are working (-1: none) */
    int busy_us;      /* each busy message takes this long */
} child_cfg_t;

static child_cfg_t cfg;      /* the child's copy, read by the handlers */
static _Atomic int ready_fd; /* cfg.ready_fd until the first busy handler takes it */

/* An unmapped address the compiler cannot see through. Not NULL, so UBSan's
 * null check does not turn the fault into an abort first. */
static volatile uintptr_t unmapped = 64;

static void crash_now(void)
{
    /* A store to an unmapped page: a real fault (SEGV_MAPERR), not a raise(). */
    *(volatile int *)unmapped = 1;
}

static int worker_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    work_t w;
    if (m->body_len != sizeof w)
        return actor_fail(ctx, "bad body");
    memcpy(&w, m->body, sizeof w);
    if (w.marked == 2) {
        /* A child forked by a handler (a decoder, say) dies: its failure,
         * not the process's. */
        pid_t pid = fork();
        if (pid == 0)
            crash_now();
        int st = 0;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            return actor_fail(ctx, "the child did not crash");
    } else if (w.marked) {
        crash_now();
    }
    return fx_count(ctx);
}

static int busy_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    (void)m;
    int fd = atomic_exchange(&ready_fd, -1); /* two io threads: one writes and closes */
    if (fd >= 0) {
        (void)!write(fd, "r", 1);
        close(fd);
    }
    usleep((useconds_t)cfg.busy_us);
    return fx_count(ctx);
}

/* On "kick", once (its state says so): spawns the actors and sends all the
 * work in the same effect set, so a crash never sends it twice. */
static int driver_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    (void)m;
    size_t len;
    actor_state(ctx, &len);
    if (len)
        return 0; /* a restart's kick */
    int rc = 0;
    char to[32];
    for (int i = 0; i < NWORKERS && !rc; i++) {
        snprintf(to, sizeof to, "worker/%d", i);
        rc = actor_spawn(ctx, to, NULL, NULL, 0);
    }
    for (int i = 0; i < NBUSY_ACTORS && !rc; i++) {
        snprintf(to, sizeof to, "busy/%d", i);
        rc = actor_spawn(ctx, to, NULL, NULL, 0);
    }
    for (uint32_t j = 0; j < NBUSY && !rc; j++) {
        snprintf(to, sizeof to, "busy/%u", j % NBUSY_ACTORS);
        rc = actor_send(ctx, to, "busy", &j, sizeof j);
    }
    for (uint32_t j = 0; j < NWORK && !rc; j++) {
        work_t w = {j, j != cfg.marked ? 0u : cfg.fork_crash ? 2u : 1u};
        snprintf(to, sizeof to, "worker/%u", j % NWORKERS);
        rc = actor_send(ctx, to, "work", &w, sizeof w);
    }
    return rc ? rc : actor_set_state(ctx, "k", 1);
}

static const behaviour_t worker = {.kind = "worker", .on_message = worker_msg};
static const behaviour_t busy = {.kind = "busy", .dispatcher = "io", .on_message = busy_msg};
static const behaviour_t driver = {.kind = "driver", .on_message = driver_msg};

static runtime_t *open_runtime(const char *dir, int after)
{
    static const dispatcher_spec_t disps[] = {{"default", 2}, {"io", 2}, {"render", 1}};
    int err = 0;
    runtime_t *rt = runtime_new(&(runtime_opts_t){.data_dir = dir,
                                                  .dispatchers = disps,
                                                  .ndispatchers = 3,
                                                  .no_sync = 1,
                                                  .crash_quarantine_after = after},
                                &err);
    cr_assert_not_null(rt, "runtime_new: %d", err);
    return rt;
}

static bool kicked(runtime_t *rt)
{
    void *s = NULL;
    size_t len = 0;
    runtime_actor_state(rt, "driver/0", &s, &len);
    free(s);
    return len > 0;
}

/* The child: start (or resume), kick, run until everything is handled. Its
 * log (and ASan's reports) go to DIR/child.log. */
static void child_main(const char *dir, child_cfg_t c)
{
    cfg = c;
    atomic_store(&ready_fd, c.ready_fd);
    char path[4096];
    snprintf(path, sizeof path, "%s/child.log", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0)
        dup2(fd, 2);
    runtime_t *rt = open_runtime(dir, c.after);
    if (runtime_register(rt, &worker) || runtime_register(rt, &busy) ||
        runtime_register(rt, &driver) || runtime_start(rt))
        _exit(3);
    size_t replayed = 0;
    if (c.replay && dlq_replay_where(rt, NULL, &replayed) != 0)
        _exit(4);
    int rc = runtime_spawn(rt, "driver/0", NULL, NULL, 0);
    if ((rc && rc != FENTA_EEXIST) || runtime_send(rt, "driver/0", "kick", NULL, NULL, 0))
        _exit(5);
    while (!kicked(rt))
        usleep(1000);
    /* Once worker/7 exists (the driver spawned it): */
    work_t poison = {MARKED, 1};
    if (c.send_poison && runtime_send(rt, "worker/7", "work", NULL, &poison, sizeof poison))
        _exit(6);
    while (runtime_quiesce(rt, 60000, 1000) != 0)
        usleep(5000);
    if (c.crash_main)
        crash_now(); /* the main thread handles no message */
    runtime_stop(rt, 5000);
    runtime_destroy(&rt);
    _exit(0);
}

/* Runs one child to its end; its wait status. */
static int run_child(const char *dir, child_cfg_t c)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        child_main(dir, c);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static bool clean_exit(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A death by the handler's SIGSEGV; under ASan its handler, chained after
 * ours, reports and aborts instead. */
static void assert_segv_death(int status, int run)
{
    cr_assert(!clean_exit(status), "run %d finished: it should have crashed", run);
    if (!UNDER_ASAN)
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
                  "run %d: died of status %#x, not of SIGSEGV", run, status);
}

/* Restarts the child until one run finishes; the number of deaths. */
static int run_until_done(const char *dir, child_cfg_t c, int max_deaths)
{
    for (int deaths = 0;; deaths++) {
        int status = run_child(dir, c);
        if (clean_exit(status))
            return deaths;
        assert_segv_death(status, deaths + 1);
        cr_assert_lt(deaths, max_deaths, "the process kept dying: %d deaths", deaths + 1);
        c.replay = false; /* a replay is one operator action, not one per start */
    }
}

static char *read_file(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, 0, f);
    fclose(f);
    if (n < 0) {
        free(buf);
        return strdup("");
    }
    return buf;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static int crashes_fn(store_txn_t *txn, void *arg)
{
    *(size_t *)arg = store_count(txn, STORE_CRASHES);
    return 0;
}

/* Crash counts kept in the store. */
static size_t crash_records(const char *dir)
{
    store_t *st = store_open(dir, NULL, NULL);
    cr_assert_not_null(st);
    size_t n = 0;
    store_read(st, crashes_fn, &n);
    store_close(&st);
    return n;
}

typedef struct {
    size_t n;
    char error[128];
    char to[64], type[32];
    work_t body;
    size_t history_len;
    char history[8][128];
} dead_t;

static int dead_cb(const dlq_entry_t *e, void *arg)
{
    dead_t *d = arg;
    if (d->n++ == 0 && e->env) {
        snprintf(d->error, sizeof d->error, "%s", e->error);
        snprintf(d->to, sizeof d->to, "%s", e->env->to);
        snprintf(d->type, sizeof d->type, "%s", e->env->type);
        if (e->env->body_len == sizeof d->body)
            memcpy(&d->body, e->env->body, sizeof d->body);
        d->history_len = e->env->history_len;
        for (size_t i = 0; i < e->env->history_len && i < 8; i++)
            snprintf(d->history[i], sizeof d->history[i], "%s", e->env->history[i].error);
    }
    return 0;
}

/* Every counter exactly once: the workers (without the marked message when
 * it was quarantined) and the busy actors. Also the dead letters. */
static dead_t check_counts(const char *dir, uint32_t missing)
{
    runtime_t *rt = open_runtime(dir, 0);
    for (int i = 0; i < NWORKERS; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "worker/%d", i);
        uint64_t want =
            NWORK / NWORKERS - (missing != NO_MARK && missing % NWORKERS == (unsigned)i);
        cr_expect_eq(fx_counter(rt, addr), want, "%s handled %llu messages, expected %llu", addr,
                     (unsigned long long)fx_counter(rt, addr), (unsigned long long)want);
    }
    for (int i = 0; i < NBUSY_ACTORS; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "busy/%d", i);
        cr_expect_eq(fx_counter(rt, addr), NBUSY / NBUSY_ACTORS, "%s handled %llu", addr,
                     (unsigned long long)fx_counter(rt, addr));
    }
    dead_t d = {0};
    cr_assert_eq(dlq_list(rt, NULL, NULL, 0, dead_cb, &d), 0);
    runtime_destroy(&rt);
    return d;
}

static void assert_quarantined(const dead_t *d, size_t crashes)
{
    cr_assert_eq(d->n, 1, "one dead letter, found %zu", d->n);
    cr_expect_str_eq(d->error, "crashed the process (SIGSEGV)");
    cr_expect_str_eq(d->to, "worker/7");
    cr_expect_str_eq(d->type, "work");
    cr_expect_eq(d->body.j, MARKED, "the marked message, not another");
    cr_assert_eq(d->history_len, crashes, "one history entry per crash");
    for (size_t i = 0; i < crashes && i < 8; i++)
        cr_expect_str_eq(d->history[i], "crashed the process (SIGSEGV)");
}

static const child_cfg_t POISON = {.marked = MARKED, .ready_fd = -1, .busy_us = 200};

Test(crashlog, crashing_message_is_quarantined_after_two_crashes_and_the_rest_goes_on)
{
    char *dir = fx_tmpdir("crashlog");

    /* The first death: one journal line naming the signal, the actor and
     * the message, and one JSON log line saying the same. */
    int status = run_child(dir, POISON);
    assert_segv_death(status, 1);
    char *journal = read_file(dir, CRASHLOG_FILE);
    cr_assert_eq(count_lines(journal), 1, "one journal line per crash: %s", journal);
    cr_expect(strstr(journal, " sig=SIGSEGV "), "%s", journal);
    cr_expect(strstr(journal, " actor=worker/7 type=work\n"), "%s", journal);
    cr_expect(!strstr(journal, " msg=- "), "the line names the message: %s", journal);
    free(journal);
    char *log = read_file(dir, "child.log");
    const char *line = strstr(log, "fatal signal while handling a message");
    cr_assert_not_null(line, "no log line for the crash in %s", log);
    const char *bol = line;
    while (bol > log && bol[-1] != '\n')
        bol--;
    cr_expect_eq(strncmp(bol, "{\"ts\":\"", 7), 0, "a runtime/log line: %.300s", bol);
    cr_expect(strstr(bol, "\"level\":\"error\""), "%.300s", bol);
    cr_expect(strstr(bol, "\"actor\":\"worker/7\""), "%.300s", bol);
    cr_expect(strstr(bol, "\"signal\":\"SIGSEGV\""), "%.300s", bol);
    cr_expect(strstr(bol, "\"type\":\"work\""), "%.300s", bol);
    free(log);

    /* The second death, then a run that finishes: no third death. */
    int deaths = 1 + run_until_done(dir, POISON, 3);
    cr_assert_eq(deaths, 2, "quarantined after 2 crashes, not %d", deaths);

    assert_quarantined((dead_t[]){check_counts(dir, MARKED)}, 2);
    char *after = read_file(dir, CRASHLOG_FILE);
    cr_expect_str_eq(after, "", "the journal is emptied once folded");
    free(after);
    cr_expect_eq(crash_records(dir), 0, "the count goes with the quarantined message");

    /* An operator replays it: its count starts afresh, so it runs (and
     * crashes) twice again before it is quarantined again. */
    child_cfg_t replay = POISON;
    replay.replay = true;
    deaths = run_until_done(dir, replay, 3);
    cr_assert_eq(deaths, 2, "a replayed message starts from zero crashes, not %d", deaths);
    assert_quarantined((dead_t[]){check_counts(dir, MARKED)}, 4);
    fx_rmdir(dir);
}

typedef struct {
    uint8_t keys[8][ENVELOPE_ADDR_MAX + 1 + ID_BYTES];
    size_t klen[8], n;
} found_t;

static int find_poison_cb(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    found_t *f = arg;
    envelope_t *env = NULL;
    if (envelope_decode(v, vl, &env, NULL) == 0 && env->body_len == sizeof(work_t) &&
        ((const work_t *)env->body)->marked && f->n < 8 && kl <= sizeof f->keys[0]) {
        memcpy(f->keys[f->n], k, kl);
        f->klen[f->n++] = kl;
    }
    envelope_destroy(&env);
    return 0;
}

static int drop_poison_fn(store_txn_t *txn, void *arg)
{
    found_t *f = arg;
    int rc = store_scan(txn, STORE_MBOX, "worker/7", 9, NULL, 0, find_poison_cb, f);
    for (size_t i = 0; !rc && i < f->n; i++)
        rc = store_del(txn, STORE_MBOX, f->keys[i], f->klen[i]);
    return rc;
}

/* What a crash before the commit does to a message: it was never durable. */
static size_t drop_poison(const char *dir)
{
    store_t *st = store_open(dir, NULL, NULL);
    cr_assert_not_null(st);
    found_t f = {0};
    cr_assert_eq(store_write(st, drop_poison_fn, &f), 0);
    store_close(&st);
    return f.n;
}

Test(crashlog, a_crashing_message_sent_again_under_a_new_id_is_still_counted)
{
    /* Handlers take messages before they commit, so a handler that crashes
     * at once may kill a message that never became durable; its sender,
     * replayed, sends it again under a new id. Here the parent removes the
     * message from the mailbox after each death and each run sends a new
     * one: counted by id, it would crash the process forever. */
    char *dir = fx_tmpdir("crashlog");
    child_cfg_t c = {.marked = NO_MARK, .ready_fd = -1, .busy_us = 200, .send_poison = true};
    int deaths = 0;
    for (;; deaths++) {
        int status = run_child(dir, c);
        if (clean_exit(status))
            break;
        assert_segv_death(status, deaths + 1);
        cr_assert_lt(deaths, 3, "the process kept dying: %d deaths", deaths + 1);
        /* 0 when it crashed the process before its own send was durable:
         * the very case this test is about, lost by the crash itself. */
        cr_assert_leq(drop_poison(dir), 1, "one crashing message at most was pending");
    }
    cr_assert_eq(deaths, 2, "quarantined after 2 crashes, not %d", deaths);
    dead_t d = check_counts(dir, NO_MARK);
    assert_quarantined(&d, 2);
    fx_rmdir(dir);
}

Test(crashlog, the_threshold_is_configurable)
{
    char *dir = fx_tmpdir("crashlog");
    child_cfg_t c = POISON;
    c.after = 3;
    int deaths = run_until_done(dir, c, 4);
    cr_assert_eq(deaths, 3, "crash_quarantine_after = 3: 3 deaths, not %d", deaths);
    assert_quarantined((dead_t[]){check_counts(dir, MARKED)}, 3);
    fx_rmdir(dir);
}

Test(crashlog, sigkill_with_messages_in_flight_counts_against_nothing)
{
    char *dir = fx_tmpdir("crashlog");
    child_cfg_t c = {.marked = NO_MARK, .busy_us = 2000};
    for (int kill_no = 0; kill_no < 2; kill_no++) {
        int ready[2];
        cr_assert_eq(pipe(ready), 0);
        c.ready_fd = ready[1];
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(ready[0]);
            child_main(dir, c);
        }
        close(ready[1]);
        char b;
        cr_assert_eq(read(ready[0], &b, 1), 1, "the child never got busy");
        close(ready[0]);
        usleep(20000); /* the busy actors hold messages on both io threads */
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        char *journal = read_file(dir, CRASHLOG_FILE);
        cr_expect_str_eq(journal, "", "SIGKILL writes nothing");
        free(journal);
    }
    c.ready_fd = -1;
    cr_assert(clean_exit(run_child(dir, c)));
    dead_t d = check_counts(dir, NO_MARK);
    cr_expect_eq(d.n, 0, "nothing quarantined");
    cr_expect_eq(crash_records(dir), 0, "no crash counted");
    fx_rmdir(dir);
}

Test(crashlog, a_crash_outside_any_handler_names_no_message)
{
    char *dir = fx_tmpdir("crashlog");
    child_cfg_t c = {.marked = NO_MARK, .ready_fd = -1, .busy_us = 200, .crash_main = true};
    assert_segv_death(run_child(dir, c), 1);
    char *journal = read_file(dir, CRASHLOG_FILE);
    cr_assert_eq(count_lines(journal), 1, "%s", journal);
    cr_expect(strstr(journal, " sig=SIGSEGV "), "%s", journal);
    cr_expect(strstr(journal, " fp=- msg=- actor=- type=-\n"), "names no message: %s", journal);
    free(journal);
    char *log = read_file(dir, "child.log");
    cr_expect(strstr(log, "fatal signal outside any message handler"), "%s", log);
    free(log);

    /* It counts against nothing: the next start folds it and goes on. */
    c.crash_main = false;
    cr_assert(clean_exit(run_child(dir, c)));
    dead_t d = check_counts(dir, NO_MARK);
    cr_expect_eq(d.n, 0);
    cr_expect_eq(crash_records(dir), 0);
    char *after = read_file(dir, CRASHLOG_FILE);
    cr_expect_str_eq(after, "");
    free(after);
    fx_rmdir(dir);
}

typedef struct {
    crashlog_entry_t e[4];
    size_t n;
} entries_t;

static int collect_entry(const crashlog_entry_t *e, void *arg)
{
    entries_t *v = arg;
    if (v->n < 4)
        v->e[v->n] = *e;
    v->n++;
    return 0;
}

Test(crashlog, a_crash_in_a_forked_child_counts_against_nothing)
{
    char *dir = fx_tmpdir("crashlog");
    child_cfg_t c = POISON;
    c.fork_crash = true;
    cr_assert(clean_exit(run_child(dir, c)), "the process itself did not crash");
    char *journal = read_file(dir, CRASHLOG_FILE);
    cr_expect_str_eq(journal, "", "a child's crash writes no journal line");
    free(journal);
    dead_t d = check_counts(dir, NO_MARK);
    cr_expect_eq(d.n, 0);
    fx_rmdir(dir);
}

Test(crashlog, journal_lines_are_read_back_and_bad_ones_skipped)
{
    char *dir = fx_tmpdir("crashlog");
    fenta_id_t boot, msg;
    id_new(&boot);
    id_new(&msg);
    char b[ID_STR_LEN + 1], m[ID_STR_LEN + 1];
    id_to_str(&boot, b);
    id_to_str(&msg, m);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, CRASHLOG_FILE);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "v1 boot=%s at=1700000000000 sig=SIGBUS pid=12 fp=00000000000000ff msg=%s "
            "actor=a%%20b/%%25x type=t%%0Ay\n"
            "not a journal line\n"
            "v1 boot=%s at=5 sig=SIGABRT pid=1 fp=- msg=- actor=- type=-\n"
            "v1 boot=%s at=6 sig=SIGKILL pid=1 fp=- msg=- actor=- type=-\n"
            "v1 boot=%s at=17",
            b, m, b, b, b);
    fclose(f);

    int err = 0;
    crashlog_t *log = crashlog_open(dir, &err);
    cr_assert_not_null(log, "crashlog_open: %d", err);
    entries_t v = {0};
    cr_assert_eq(crashlog_read(log, collect_entry, &v), 0);
    cr_assert_eq(v.n, 2, "the garbage, an uncaught signal and a torn last line are skipped");
    cr_expect(v.e[0].has_msg);
    cr_expect_eq(id_cmp(&v.e[0].boot, &boot), 0);
    cr_expect_eq(id_cmp(&v.e[0].msg_id, &msg), 0);
    cr_expect_eq(v.e[0].at_ms, 1700000000000);
    cr_expect_eq(v.e[0].signo, SIGBUS);
    cr_expect_eq(v.e[0].fp, 0xff);
    cr_expect_str_eq(v.e[0].actor, "a b/%x", "percent-decoded");
    cr_expect_str_eq(v.e[0].type, "t\ny");
    cr_expect(!v.e[1].has_msg);
    cr_expect_eq(v.e[1].signo, SIGABRT);
    cr_expect_str_eq(v.e[1].actor, "");

    cr_assert_eq(crashlog_clear(log), 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_size, 0, "emptied");
    crashlog_destroy(&log);
    cr_assert_null(log);
    fx_rmdir(dir);
}
