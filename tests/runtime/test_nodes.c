/* test_nodes.c - two nodes over TCP on loopback (runtime/transport.c) [slow].
 *
 * Node B is a child process listening on a free loopback port, with one actor
 * "counter/1" that tallies every message it handles: a count, a bitmap of the
 * sequence numbers seen and the number of duplicates. Node A is another child
 * process that routes the "counter" kind to B and sends sequence numbers
 * 0..N-1 from outside (runtime_send_many), durably into its outbox. The test
 * process only orchestrates: it forks, SIGKILLs and restarts the nodes, and
 * at the end opens their data directories to check what a user would check:
 * B handled every sequence number exactly once and A's outbox is empty.
 *
 * The tests: B SIGKILLed three times mid-stream; B down the whole time while
 * A sends (and A itself SIGKILLed, its outbox keeping everything); malformed
 * ZeroMQ messages and raw TCP junk thrown at B mid-stream; a delayed send
 * (not-before in the future) to B's actor.
 *
 * The test process holds no runtime and no ZeroMQ context when it forks, so
 * the nodes inherit no threads, sockets or LMDB handles. Every node gets
 * PR_SET_PDEATHSIG and the fini SIGKILLs whatever is left, so no node
 * outlives its test.
 *
 * fsync: the crash here is a process's (SIGKILL), not the OS's, and LMDB
 * without fsync is still consistent across a process crash (a committed
 * transaction is in the page cache, which outlives the process), so A runs
 * with no_sync. B keeps fsync on all the same, not for durability but for
 * timing: with fsync a commit lasts as long as in production, without it so
 * little that a receiver acknowledging before its commit completed would
 * almost never be caught (tried: 0 of 4 runs caught it without fsync, 4 of 4
 * with it).
 *
 * Every test here is slow (forks, real TCP, a resend timer of one second):
 * their names start with slow_ and their descriptions with [slow]. */
#include "runtime/clock.h"
#include "runtime/envelope.h"
#include "runtime/error.h"
#include "runtime/runtime.h"
#include "runtime/store.h"
#include "tests/support/fixtures.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
/* The garbage test speaks raw ZeroMQ to B, as a hostile or broken peer
 * would; the runtime links libzmq, so the test can too. */
#include <zmq.h>

#define NMSGS 5000  /* messages of the SIGKILL test; also the bitmap's size */
#define NSMALL 1000 /* messages of the other tests */
#define CHUNK 50    /* messages per runtime_send_many on A */
#define MAX_KIDS 8
#define NGHOSTS 4 /* well-formed messages for no actor in send_garbage */

/* counter/1's state. */
typedef struct {
    uint64_t count;                /* messages handled */
    uint64_t dups;                 /* messages whose seq had been seen already */
    uint64_t stray;                /* messages whose body is not a seq below NMSGS */
    uint8_t seen[(NMSGS + 7) / 8]; /* bit seq: seq handled */
} tally_t;

/* Shared between the test process and the nodes (MAP_SHARED). */
typedef struct {
    _Atomic uint64_t b_count;  /* B's last count as handled (may run ahead of its commits) */
    _Atomic int b_ready;       /* B has started and listens */
    _Atomic int64_t b_last_ms; /* Unix ms when B last handled a message */
    _Atomic uint64_t a_sent;   /* messages A has made durable in its outbox */
    _Atomic int64_t a_nb_ms;   /* not-before (Unix ms) of A's last delayed send */
} shared_t;

static shared_t *g_sh;
static char *g_dir_a, *g_dir_b;
static char g_ep[64];                /* B's endpoint */
static pid_t g_kids[MAX_KIDS];       /* live children, 0 = free slot */
static volatile sig_atomic_t g_term; /* B: SIGTERM received */
static int g_delay_ms;               /* A: not-before this far ahead, as runtime_send_at sets */

/* ---- node B ----------------------------------------------------------------- */

static int counter_msg(actor_ctx_t *ctx, const envelope_t *m)
{
    size_t len;
    const void *s = actor_state(ctx, &len);
    tally_t t;
    if (len == sizeof t)
        memcpy(&t, s, sizeof t);
    else if (len == 0)
        memset(&t, 0, sizeof t);
    else
        return actor_fail(ctx, "state of %zu bytes", len);
    uint32_t seq = 0;
    t.count++;
    if (m->body_len == sizeof seq)
        memcpy(&seq, m->body, sizeof seq);
    if (m->body_len != sizeof seq || seq >= NMSGS)
        t.stray++;
    else if (t.seen[seq / 8] & (1u << (seq % 8)))
        t.dups++;
    else
        t.seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
    int rc = actor_set_state(ctx, &t, sizeof t);
    if (!rc) {
        atomic_store(&g_sh->b_last_ms, clock_now_ms());
        atomic_store(&g_sh->b_count, t.count);
    }
    return rc;
}

static const behaviour_t counter = {.kind = "counter", .on_message = counter_msg};

static runtime_t *node_new(const char *dir, const char *node, const char *listen, int no_sync)
{
    static const dispatcher_spec_t disps[] = {{"default", 2}, {"io", 1}, {"render", 1}};
    return runtime_new(&(runtime_opts_t){.data_dir = dir,
                                         .node = node,
                                         .dispatchers = disps,
                                         .ndispatchers = 3,
                                         .no_sync = no_sync,
                                         .listen = listen},
                       NULL);
}

static void on_term(int sig)
{
    (void)sig;
    g_term = 1;
}

static void node_fail(int code, const char *what, int rc)
{
    fprintf(stderr, "node %d: %s: %s\n", (int)getpid(), what, fenta_strerror(rc));
    _exit(code);
}

/* Runs until SIGTERM, then handles what is in its mailboxes and stops. */
static void b_main(void)
{
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    runtime_t *rt = node_new(g_dir_b, "B", g_ep, 0);
    if (!rt)
        node_fail(10, "B: runtime_new", FENTA_EINVAL);
    int rc = runtime_register(rt, &counter);
    if (rc || (rc = runtime_start(rt)))
        node_fail(11, "B: start", rc);
    /* The test provisioned counter/1 before B ever listened (see
     * provision_b); spawning again is the usual idempotent start-up code. */
    rc = runtime_spawn(rt, "counter/1", NULL, NULL, 0);
    if (rc && rc != FENTA_EEXIST)
        node_fail(12, "B: spawn", rc);
    atomic_store(&g_sh->b_ready, 1);
    while (!g_term)
        usleep(2000);
    rc = runtime_quiesce(rt, 0, 5000);
    int src = runtime_stop(rt, 5000);
    runtime_destroy(&rt);
    if (rc || src)
        node_fail(13, "B: quiesce/stop", rc ? rc : src);
    _exit(0);
}

/* ---- node A ----------------------------------------------------------------- */

/* Sends seq 0..nsend-1 in chunks (pace_us apart; each not before g_delay_ms
 * from now when that is set), then waits until its timers and outbox are
 * empty, i.e. B acknowledged every message, which B does only once the
 * message is committed in its mailbox. */
static void a_main(uint32_t nsend, int pace_us)
{
    runtime_t *rt = node_new(g_dir_a, "A", NULL, 1);
    if (!rt)
        node_fail(20, "A: runtime_new", FENTA_EINVAL);
    int rc = runtime_route(rt, "counter", "B", g_ep);
    if (rc || (rc = runtime_start(rt)))
        node_fail(21, "A: start", rc);
    for (uint32_t first = 0; first < nsend; first += CHUNK) {
        envelope_t *envs[CHUNK];
        size_t n = 0;
        for (uint32_t seq = first; seq < first + CHUNK && seq < nsend; seq++) {
            envs[n] = envelope_new("counter/1", NULL, "seq", NULL, &seq, sizeof seq);
            if (!envs[n])
                node_fail(22, "A: envelope_new", FENTA_ENOMEM);
            if (g_delay_ms) {
                envs[n]->not_before_ms = clock_now_ms() + g_delay_ms;
                atomic_store(&g_sh->a_nb_ms, envs[n]->not_before_ms);
            }
            n++;
        }
        if ((rc = runtime_send_many(rt, envs, n)))
            node_fail(23, "A: send", rc);
        atomic_store(&g_sh->a_sent, first + n);
        if (pace_us)
            usleep((useconds_t)pace_us);
    }
    /* A horizon of a minute: a delayed send still in A's timers is work. */
    while (runtime_quiesce(rt, 60000, 1000) != 0)
        ; /* B is down or slow: the test decides how long is too long */
    rc = runtime_stop(rt, 5000);
    runtime_destroy(&rt);
    if (rc)
        node_fail(24, "A: stop", rc);
    _exit(0);
}

/* ---- the orchestrator --------------------------------------------------------- */

static void forget(pid_t pid)
{
    for (int i = 0; i < MAX_KIDS; i++)
        if (g_kids[i] == pid)
            g_kids[i] = 0;
}

/* Forks a node running fn(nsend, pace_us) (NULL = B). */
static pid_t start_node(void (*a)(uint32_t, int), uint32_t nsend, int pace_us)
{
    if (!a)
        atomic_store(&g_sh->b_ready, 0);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork");
    if (pid == 0) {
        /* Die with the test process, whatever kills it (a timeout too). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        if (a)
            a(nsend, pace_us);
        else
            b_main();
        _exit(2);
    }
    int i = 0;
    while (i < MAX_KIDS && g_kids[i])
        i++;
    cr_assert_lt(i, MAX_KIDS, "too many children");
    g_kids[i] = pid;
    return pid;
}

static pid_t start_b(void)
{
    return start_node(NULL, 0, 0);
}

static pid_t start_a(uint32_t nsend, int pace_us)
{
    return start_node(a_main, nsend, pace_us);
}

static void kill_node(pid_t *pid)
{
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    forget(*pid);
    *pid = 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fails the test if the node has exited (it must not have). */
static void assert_alive(pid_t pid, const char *name, const char *when)
{
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) {
        forget(pid);
        cr_assert_fail("node %s exited %s (%s %d)", name, when, WIFEXITED(st) ? "status" : "signal",
                       WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
}

/* Polls every millisecond until *v >= target; fails the test after
 * timeout_ms or if the node (B unless named) exits meanwhile. */
static void await_node(pid_t pid, const char *name, _Atomic uint64_t *v, uint64_t target,
                       int timeout_ms, const char *what)
{
    int64_t end = now_ms() + timeout_ms;
    while (atomic_load(v) < target) {
        assert_alive(pid, name, what);
        cr_assert_lt(now_ms(), end, "%s: still %llu < %llu after %d ms", what,
                     (unsigned long long)atomic_load(v), (unsigned long long)target, timeout_ms);
        usleep(1000);
    }
}

static void await_b(pid_t b, _Atomic uint64_t *v, uint64_t target, int timeout_ms, const char *what)
{
    await_node(b, "B", v, target, timeout_ms, what);
}

static void await_ready(pid_t b)
{
    int64_t end = now_ms() + 10000;
    while (!atomic_load(&g_sh->b_ready)) {
        assert_alive(b, "B", "while starting");
        cr_assert_lt(now_ms(), end, "B did not start within 10 s");
        usleep(1000);
    }
}

/* Waits for the node to exit with status 0; B (when not 0) must stay up. */
static void await_exit(pid_t *pid, const char *name, pid_t b, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    int st = 0;
    while (waitpid(*pid, &st, WNOHANG) != *pid) {
        if (b)
            assert_alive(b, "B", "before A finished");
        cr_assert_lt(now_ms(), end, "node %s did not finish within %d ms", name, timeout_ms);
        usleep(2000);
    }
    forget(*pid);
    *pid = 0;
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "node %s ended with %s %d", name,
              WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

/* Clean stop of B: SIGTERM, it handles its mailboxes and exits 0. */
static void stop_b(pid_t *b)
{
    kill(*b, SIGTERM);
    await_exit(b, "B", 0, 15000);
}

/* counter/1 exists before B first listens: a message that reached B before
 * its start-up code spawned the actor would be dead-lettered ("no such
 * actor"), and that race is not what these tests are about. */
static void provision_b(void)
{
    runtime_t *rt = fx_runtime(g_dir_b, true);
    cr_assert_eq(runtime_start(rt), 0);
    cr_assert_eq(runtime_spawn(rt, "counter/1", NULL, NULL, 0), 0);
    runtime_destroy(&rt);
}

typedef struct {
    size_t mbox, dlq, outbox;
} counts_t;

static int count_fn(store_txn_t *txn, void *arg)
{
    counts_t *c = arg;
    c->mbox = store_count(txn, STORE_MBOX);
    c->dlq = store_count(txn, STORE_DLQ);
    c->outbox = store_count(txn, STORE_OUTBOX);
    return 0;
}

/* Entry counts of a stopped node's store. */
static counts_t counts_of(const char *dir)
{
    store_t *st = store_open(dir, NULL, NULL);
    cr_assert_not_null(st, "store_open %s", dir);
    counts_t c = {0};
    store_read(st, count_fn, &c);
    store_close(&st);
    return c;
}

/* Both nodes stopped: B handled seq 0..n-1 exactly once, nothing else but
 * dlq dead letters, nothing is left in its mailboxes or in A's outbox. */
static void check_exactly_once(uint32_t n, size_t dlq)
{
    runtime_t *rt = fx_runtime(g_dir_b, true); /* not started: reads only */
    void *s = NULL;
    size_t len = 0;
    cr_assert_eq(runtime_actor_state(rt, "counter/1", &s, &len), 0);
    runtime_destroy(&rt);
    cr_assert_eq(len, sizeof(tally_t), "counter/1 state is %zu bytes", len);
    tally_t t;
    memcpy(&t, s, sizeof t);
    free(s);
    uint32_t missing = 0, first_missing = 0;
    for (uint32_t seq = n; seq-- > 0;)
        if (!(t.seen[seq / 8] & (1u << (seq % 8)))) {
            missing++;
            first_missing = seq;
        }
    cr_expect_eq(t.dups, 0, "B handled %llu duplicates", (unsigned long long)t.dups);
    cr_expect_eq(t.stray, 0, "B handled %llu messages that A never sent",
                 (unsigned long long)t.stray);
    cr_expect_eq(missing, 0, "B never handled %u of the messages (first: seq %u)", missing,
                 first_missing);
    cr_expect_eq(t.count, n, "B handled %llu messages, expected %u", (unsigned long long)t.count,
                 n);
    counts_t cb = counts_of(g_dir_b), ca = counts_of(g_dir_a);
    cr_expect_eq(cb.mbox, 0, "B's mailboxes hold %zu messages", cb.mbox);
    cr_expect_eq(cb.dlq, dlq, "B's dead-letter queue holds %zu, expected %zu", cb.dlq, dlq);
    cr_expect_eq(ca.outbox, 0, "A's outbox holds %zu messages", ca.outbox);
}

/* A free port for B, taken below the kernel's ephemeral range (which port-0
 * binds and outbound connections draw from): B binds it again at each
 * restart, and a released ephemeral port can be taken meanwhile by a suite
 * running alongside. */
static int free_port(void)
{
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2)
            lo = 32768;
        fclose(f);
    }
    cr_assert_gt(lo, 10001, "no room below the ephemeral port range");
    srand((unsigned)getpid());
    for (int tries = 0; tries < 1000; tries++) {
        int port = 10000 + rand() % (lo - 10000);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                 .sin_port = htons((uint16_t)port)};
        bool ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return port;
    }
    cr_assert_fail("no free port below %d", lo);
    return -1;
}

static void setup(void)
{
    g_delay_ms = 0;
    g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(g_sh, MAP_FAILED);
    g_dir_a = fx_tmpdir("nodes-a");
    g_dir_b = fx_tmpdir("nodes-b");
    snprintf(g_ep, sizeof g_ep, "tcp://127.0.0.1:%d", free_port());
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
}

static void teardown(void)
{
    for (int i = 0; i < MAX_KIDS; i++)
        if (g_kids[i]) {
            kill(g_kids[i], SIGKILL);
            waitpid(g_kids[i], NULL, 0);
            g_kids[i] = 0;
        }
    munmap(g_sh, sizeof *g_sh);
    fx_rmdir(g_dir_a);
    fx_rmdir(g_dir_b);
}

/* ---- the tests ---------------------------------------------------------------- */

Test(nodes, slow_sigkill_receiver_mid_stream_exactly_once, .init = setup, .fini = teardown,
     .timeout = 50,
     .description = "[slow] B is SIGKILLed three times while A streams 5000 messages: "
                    "every message is handled exactly once")
{
    provision_b();
    pid_t b = start_b();
    await_ready(b);
    /* 100 chunks of 50, 2 ms apart: A is still sending at the first kill. */
    pid_t a = start_a(NMSGS, 2000);
    uint64_t at[3];

    /* Kill 1: mid-stream, with messages in flight and A still sending. */
    await_b(b, &g_sh->b_count, 1000 + (uint64_t)(rand() % 500), 10000, "before kill 1");
    kill_node(&b);
    at[0] = atomic_load(&g_sh->b_count);
    /* Down for a while: A's outbox grows and its sends find nobody. */
    usleep((useconds_t)(100000 + rand() % 100000));
    atomic_store(&g_sh->b_count, 0);
    b = start_b();
    await_ready(b);

    /* Kill 2: as soon as the new B handles messages again (b_count was reset;
     * its first handler publishes the committed count plus one), while it
     * replays its mailbox and takes what A resends. */
    await_b(b, &g_sh->b_count, 1, 10000, "before kill 2");
    usleep((useconds_t)(rand() % 5000));
    kill_node(&b);
    at[1] = atomic_load(&g_sh->b_count);
    atomic_store(&g_sh->b_count, 0);
    b = start_b();
    await_ready(b);

    /* Kill 3: later in the stream, once A has (most likely) sent it all. */
    await_b(b, &g_sh->b_count, 3500 + (uint64_t)(rand() % 500), 15000, "before kill 3");
    kill_node(&b);
    at[2] = atomic_load(&g_sh->b_count);
    atomic_store(&g_sh->b_count, 0);
    b = start_b();
    await_ready(b);

    cr_assert_lt(at[0], NMSGS, "kill 1 was not mid-stream (count %llu)", (unsigned long long)at[0]);
    cr_assert_lt(at[2], NMSGS, "kill 3 was not mid-stream (count %llu)", (unsigned long long)at[2]);
    /* A exits 0 only once its outbox is empty: B acknowledged everything. */
    await_exit(&a, "A", b, 25000);
    stop_b(&b);
    cr_log_info("nodes: SIGKILLs of B at counts %llu, %llu, %llu", (unsigned long long)at[0],
                (unsigned long long)at[1], (unsigned long long)at[2]);
    check_exactly_once(NMSGS, 0);
}

Test(nodes, slow_receiver_down_outbox_keeps_messages, .init = setup, .fini = teardown,
     .timeout = 30,
     .description = "[slow] A sends while B is down and A is SIGKILLed: the outbox keeps "
                    "every message and B gets each exactly once when it starts")
{
    provision_b();
    pid_t a = start_a(NSMALL, 0);
    await_node(a, "A", &g_sh->a_sent, NSMALL, 10000, "A's sends");
    /* A's transport has tried meanwhile; nobody listens. A crashes. */
    usleep(300000);
    kill_node(&a);
    counts_t ca = counts_of(g_dir_a);
    cr_assert_eq(ca.outbox, NSMALL, "A's outbox holds %zu messages after its crash, expected %d",
                 ca.outbox, NSMALL);

    /* A restarts with nothing new to send; then B comes up. */
    a = start_a(0, 0);
    usleep(200000);
    pid_t b = start_b();
    await_ready(b);
    await_exit(&a, "A", b, 15000);
    stop_b(&b);
    check_exactly_once(NSMALL, 0);
}

/* One multipart message of nframes frames. */
static void send_frames(void *sock, const void *const *frames, const size_t *lens, int nframes)
{
    for (int i = 0; i < nframes; i++)
        cr_assert_eq(zmq_send(sock, frames[i], lens[i], i + 1 < nframes ? ZMQ_SNDMORE : 0),
                     (int)lens[i], "zmq_send: %s", zmq_strerror(zmq_errno()));
}

static uint8_t *encode(const char *to, uint32_t seq, size_t *len)
{
    envelope_t *e = envelope_new(to, NULL, "seq", NULL, &seq, sizeof seq);
    cr_assert_not_null(e);
    uint8_t *wire = NULL;
    cr_assert_eq(envelope_encode(e, &wire, len), 0);
    envelope_destroy(&e);
    return wire;
}

/* Will B dead-letter this message? Exactly the [ "M", body ] messages whose
 * body does not decode (kept with the reason); other shapes are dropped. */
static size_t undecodable(const void *const *f, const size_t *l, int n)
{
    if (n != 2 || l[0] != 1 || memcmp(f[0], "M", 1) != 0)
        return 0;
    envelope_t *e = NULL;
    if (envelope_decode(f[1], l[1], &e, NULL) == 0) {
        envelope_destroy(&e);
        return 0;
    }
    return 1;
}

/* What a broken or hostile peer might send B's ROUTER. Nothing here may be
 * delivered; the NGHOSTS well-formed messages to addresses where B has no
 * actor, and the well-framed ones that do not decode, end in B's dead-letter
 * queue. Returns how many dead letters that makes. */
static size_t send_garbage(void)
{
    size_t dead = NGHOSTS;
    size_t wl, gl;
    /* seq NMSGS is one A never sends: if delivered, counter/1 counts a stray. */
    uint8_t *wire = encode("counter/1", NMSGS, &wl);
    uint8_t *ghost = encode("ghost/1", 0, &gl);
    size_t nl, sl, kl;
    uint8_t *noslash = encode("noslash", 0, &nl);
    uint8_t *slash = encode("/", 0, &sl);
    uint8_t *kind = encode("counter", 0, &kl); /* B's kind, but no actor */
    static uint8_t junk[1 << 20];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)rand();
    uint8_t *trailing = malloc(wl + 1);
    cr_assert_not_null(trailing);
    memcpy(trailing, wire, wl);
    trailing[wl] = 0xc0;

    /* Each row: one multipart message (up to 4 frames). */
    const struct {
        int n;
        const void *f[4];
        size_t l[4];
    } bad[] = {
        {1, {"hello"}, {5}},
        {1, {"M"}, {1}},
        {2, {"M", ""}, {1, 0}},
        {2, {"M", junk}, {1, 4096}},
        {2, {"M", "\x80"}, {1, 1}},        /* an empty msgpack map */
        {2, {"M", wire}, {1, wl / 2}},     /* truncated */
        {2, {"M", trailing}, {1, wl + 1}}, /* a byte too many */
        {2, {"X", wire}, {1, wl}},         /* wrong tag */
        {2, {"MM", wire}, {2, wl}},
        {1, {wire}, {wl}}, /* no tag */
        {4, {"", "", "", ""}, {0, 0, 0, 0}},
        {3, {"M", junk, wire}, {1, 64, wl}},
        {3, {"M", wire, "extra"}, {1, wl, 5}}, /* not the [ "M", wire ] shape */
        {2, {"M", junk}, {1, sizeof junk}},
        /* Well-formed, for actors B does not have: dead letters. */
        {2, {"M", ghost}, {1, gl}},
        {2, {"M", noslash}, {1, nl}},
        {2, {"M", slash}, {1, sl}},
        {2, {"M", kind}, {1, kl}},
    };
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 3000; /* close waits until B has it all */
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert_eq(zmq_connect(s, g_ep), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        send_frames(s, bad[i].f, bad[i].l, bad[i].n);
        dead += undecodable(bad[i].f, bad[i].l, bad[i].n);
    }
    /* Random shapes: 1 to 5 frames of 0 to 64 random bytes, half tagged "M". */
    for (int k = 0; k < 300; k++) {
        int nf = 1 + rand() % 5;
        const void *f[5];
        size_t l[5];
        for (int i = 0; i < nf; i++) {
            f[i] = junk + rand() % 4096;
            l[i] = (size_t)(rand() % 65);
        }
        if (rand() % 2) {
            f[0] = "M";
            l[0] = 1;
        }
        send_frames(s, f, l, nf);
        dead += undecodable(f, l, nf);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);

    /* Not ZeroMQ at all: an HTTP request, a ZMTP signature then junk, and
     * a connection closed at once. */
    static const uint8_t zmtp_sig[10] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f};
    struct {
        const void *p;
        size_t n;
    } raw[] = {{"GET / HTTP/1.0\r\n\r\n", 18}, {zmtp_sig, sizeof zmtp_sig}, {junk, 8192}, {"", 0}};
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                 .sin_port = htons((uint16_t)atoi(strrchr(g_ep, ':') + 1))};
        cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        /* B may drop the connection at any byte: no SIGPIPE, no check. */
        if (raw[i].n)
            (void)!send(fd, raw[i].p, raw[i].n, MSG_NOSIGNAL);
        if (i == 1) /* the signature, then junk on the same connection */
            (void)!send(fd, junk, 4096, MSG_NOSIGNAL);
        close(fd);
    }
    free(trailing);
    free(wire);
    free(ghost);
    free(noslash);
    free(slash);
    free(kind);
    return dead;
}

Test(nodes, slow_garbage_from_the_wire_does_not_hurt_receiver, .init = setup, .fini = teardown,
     .timeout = 30,
     .description = "[slow] malformed ZeroMQ messages and raw TCP junk sent to B mid-stream: "
                    "B stays up, drops them and still gets A's messages exactly once")
{
    provision_b();
    pid_t b = start_b();
    await_ready(b);
    /* 20 chunks 10 ms apart: the garbage lands while A's messages flow. The
     * test process makes its ZeroMQ context after the last fork. */
    pid_t a = start_a(NSMALL, 10000);
    await_node(a, "A", &g_sh->a_sent, NSMALL / 4, 10000, "A's first sends");
    size_t dead = send_garbage();
    usleep(200000);
    assert_alive(b, "B", "after the garbage");
    await_exit(&a, "A", b, 15000);
    stop_b(&b);
    check_exactly_once(NSMALL, dead);
}

Test(nodes, slow_delayed_send_to_remote_actor_waits, .init = setup, .fini = teardown, .timeout = 30,
     .description = "[slow] a message A sends to B not before 1.5 s from now is not handled "
                    "by B before then")
{
    provision_b();
    pid_t b = start_b();
    await_ready(b);
    g_delay_ms = 1500;
    pid_t a = start_a(1, 0);
    await_b(b, &g_sh->b_count, 1, 10000, "the delayed message");
    int64_t nb = atomic_load(&g_sh->a_nb_ms), at = atomic_load(&g_sh->b_last_ms);
    cr_expect_geq(at, nb, "B handled a message due at %lld %lld ms early", (long long)nb,
                  (long long)(nb - at));
    await_exit(&a, "A", b, 10000);
    stop_b(&b);
    check_exactly_once(1, 0);
}
