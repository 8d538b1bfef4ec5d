/* pg.c - the PostgreSQL layer: connection pool, prepared-statement cache,
 * queries, error mapping, transactions (see pg.h).
 *
 * Every wait on the server goes through one loop (pg__wait) that polls the
 * socket against a deadline, so connecting and pinging never outlast their
 * timeouts even when the server hangs; ordinary queries wait without a
 * deadline (bound them with statement_timeout if needed). */
#include "storage/pg.h"
#include "runtime/backoff.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PG_STMT_SLOTS 1024 /* statement cache slots per connection (power of two) */
#define PG_STMT_MAX 512    /* cached statements per connection; past it, unnamed */
#define PG_TX_RETRIES 3    /* reruns of a transaction that keeps hitting 40001/40P01 */
#define PG_PING_MS 1000    /* pg_ping's whole budget */

/* SQLSTATE (or its two-character class) -> Fenta code; the first match wins,
 * so exact codes come before their class. */
static const struct {
    const char *state; /* 5-char SQLSTATE or 2-char class */
    int code;          /* Fenta code */
} pg_errmap[] = {
    {"23505", FENTA_EEXIST},       {"23503", FENTA_ECONFLICT},    {"23P01", FENTA_ECONFLICT},
    {"23502", FENTA_EINVAL},       {"23514", FENTA_EINVAL},       {"40001", FENTA_ECONFLICT},
    {"40P01", FENTA_ECONFLICT},    {"42501", FENTA_EDENIED},      {"57014", FENTA_ETIMEOUT},
    {"55P03", FENTA_ETIMEOUT},     {"57P01", FENTA_EUNAVAILABLE}, {"57P02", FENTA_EUNAVAILABLE},
    {"57P03", FENTA_EUNAVAILABLE}, {"08P01", FENTA_EINVAL},       {"08", FENTA_EUNAVAILABLE},
    {"53", FENTA_EUNAVAILABLE},    {"23", FENTA_ECONFLICT},       {"22", FENTA_EINVAL},
    {"42", FENTA_EINVAL},
};

/* One cached prepared statement. */
typedef struct {
    char *sql;     /* the SQL text it was prepared from (owned); NULL = empty slot */
    uint64_t hash; /* FNV-1a of sql */
    char name[16]; /* server-side statement name */
} pg_stmt_t;

struct pg_conn {
    pg_pool_t *pool;      /* owner */
    PGconn *pq;           /* NULL until connected */
    bool broken;          /* must be closed and reconnected before reuse */
    bool tx_retry;        /* a 40001/40P01 happened in the current transaction */
    pg_stmt_t *stmts;     /* PG_STMT_SLOTS slots, allocated on first prepare */
    int nstmts;           /* used slots */
    unsigned next_stmt;   /* suffix of the next statement name */
    int last_code;        /* Fenta code of the last failure, 0 after a success */
    char sqlstate[6];     /* SQLSTATE of the last failure, "" when none */
    char constraint[128]; /* constraint named by the last failure */
    char errmsg[1024];    /* message of the last failure */
};

struct pg_result {
    PGresult *res; /* owned */
};

struct pg_pool {
    char *conninfo;          /* as given (owned) */
    int size;                /* connections in conns */
    pg_conn_t *conns;        /* all connections */
    pg_conn_t **idle;        /* stack of free connections; the top is the warmest */
    int nidle;               /* entries in idle */
    int acquire_ms;          /* acquire timeout of pg_tx */
    int query_ms;            /* client-side limit on one query, 0 = none */
    int up;                  /* -1 unknown, 0 unreachable, 1 reachable: logs transitions */
    pthread_mutex_t mu;      /* guards idle, nidle, up */
    pthread_cond_t cv;       /* signalled when a connection is released */
    pthread_mutex_t ping_mu; /* guards ping */
    pg_conn_t ping;          /* pg_ping's own connection, so a busy pool still answers */
};

/* ---- small helpers ------------------------------------------------------- */

static int64_t deadline_after(int timeout_ms)
{
    return clock_mono_us() + (int64_t)(timeout_ms < 0 ? 0 : timeout_ms) * 1000;
}

/* Milliseconds left until deadline (0 = none: -1 for poll), at least 0. */
static int ms_left(int64_t deadline)
{
    if (deadline == 0)
        return -1;
    int64_t left = (deadline - clock_mono_us() + 999) / 1000;
    return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void copy_trimmed(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
    size_t n = strlen(dst);
    while (n > 0 && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
        dst[--n] = '\0';
}

static int map_sqlstate(const char *state)
{
    for (size_t i = 0; i < sizeof pg_errmap / sizeof pg_errmap[0]; i++)
        if (strncmp(state, pg_errmap[i].state, strlen(pg_errmap[i].state)) == 0)
            return pg_errmap[i].code;
    return FENTA_EIO;
}

static void clear_error(pg_conn_t *c)
{
    c->last_code = 0;
    c->sqlstate[0] = c->constraint[0] = c->errmsg[0] = '\0';
}

/* Records a failure: from res when the server sent an error, else from the
 * connection (lost, timed out). Returns the Fenta code. */
static int set_error(pg_conn_t *c, const PGresult *res, int fallback, const char *what)
{
    c->sqlstate[0] = c->constraint[0] = '\0';
    if (res && PQresultErrorField(res, PG_DIAG_SQLSTATE)) {
        copy_trimmed(c->sqlstate, sizeof c->sqlstate, PQresultErrorField(res, PG_DIAG_SQLSTATE));
        copy_trimmed(c->constraint, sizeof c->constraint,
                     PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME));
        copy_trimmed(c->errmsg, sizeof c->errmsg, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
        c->last_code = map_sqlstate(c->sqlstate);
        if (!strcmp(c->sqlstate, "40001") || !strcmp(c->sqlstate, "40P01"))
            c->tx_retry = true;
    } else {
        const char *m = what ? what : c->pq ? PQerrorMessage(c->pq) : "not connected";
        copy_trimmed(c->errmsg, sizeof c->errmsg, m && *m ? m : "connection failure");
        c->last_code = fallback;
    }
    /* Whatever the server said, a dead connection means the server is away. */
    if (!c->pq || PQstatus(c->pq) != CONNECTION_OK) {
        c->broken = true;
        c->last_code = FENTA_EUNAVAILABLE;
    }
    if (c->last_code == FENTA_EUNAVAILABLE)
        c->broken = true;
    return c->last_code;
}

/* Server notices (NOTICE, WARNING, and the FATAL a backend sends before it
 * hangs up on an idle connection) go to our log, never to stderr. */
static void on_notice(void *arg, const char *msg)
{
    (void)arg;
    char line[512];
    copy_trimmed(line, sizeof line, msg);
    log_msg(LOG_DEBUG, NULL, "postgres: %s", line);
}

static void stmt_cache_clear(pg_conn_t *c)
{
    if (c->stmts)
        for (int i = 0; i < PG_STMT_SLOTS; i++)
            free(c->stmts[i].sql);
    free(c->stmts);
    c->stmts = NULL;
    c->nstmts = 0;
}

static void conn_close(pg_conn_t *c)
{
    if (c->pq)
        PQfinish(c->pq);
    c->pq = NULL;
    c->broken = false;
    stmt_cache_clear(c);
}

static void pool_mark(pg_pool_t *p, int up, const char *why)
{
    pthread_mutex_lock(&p->mu);
    int was = p->up;
    p->up = up;
    pthread_mutex_unlock(&p->mu);
    if (up && was == 0)
        log_msg(LOG_INFO, NULL, "database reachable again");
    else if (!up && was != 0)
        log_msg(LOG_WARN, NULL, "database unavailable: %s", why);
}

/* ---- waiting on the server ----------------------------------------------- */

/* Waits for the socket to be ready for events; 0, or FENTA_ETIMEOUT/EIO. */
static int wait_socket(PGconn *pq, short events, int64_t deadline)
{
    int fd = PQsocket(pq);
    if (fd < 0)
        return FENTA_EIO;
    for (;;) {
        int ms = ms_left(deadline);
        if (deadline && ms == 0)
            return FENTA_ETIMEOUT;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, ms);
        if (n > 0)
            return 0;
        if (n == 0)
            return FENTA_ETIMEOUT;
        if (errno != EINTR)
            return FENTA_EIO;
    }
}

/* Collects every result of the command in flight (the first error wins, else
 * the last result). 0 with *out set, or a negative code (connection lost or
 * deadline passed: the connection is then broken). */
static int wait_results(pg_conn_t *c, int64_t deadline, PGresult **out)
{
    PGresult *keep = NULL;
    *out = NULL;
    for (;;) {
        while (PQisBusy(c->pq)) {
            int f = PQflush(c->pq);
            int rc = f < 0 ? FENTA_EIO : wait_socket(c->pq, POLLIN | (f ? POLLOUT : 0), deadline);
            if (rc == 0 && !PQconsumeInput(c->pq))
                rc = FENTA_EIO;
            if (rc != 0) {
                /* No PQcancel on a timeout: it waits for the server to
                 * answer, and a hung server is one reason we are here. The
                 * connection is closed instead (the server notices when it
                 * next writes to it; statement_timeout bounds its work). */
                PQclear(keep);
                set_error(c, NULL, rc == FENTA_ETIMEOUT ? FENTA_ETIMEOUT : FENTA_EUNAVAILABLE,
                          rc == FENTA_ETIMEOUT ? "timed out waiting for the server" : NULL);
                c->broken = true;
                return c->last_code;
            }
        }
        PGresult *r = PQgetResult(c->pq);
        if (!r)
            break;
        ExecStatusType st = PQresultStatus(r);
        bool keep_is_error = keep && PQresultStatus(keep) == PGRES_FATAL_ERROR;
        if (keep_is_error || st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            /* COPY is not spoken here: the connection is unusable after it. */
            if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
                c->broken = true;
            PQclear(r);
            if (c->broken)
                break;
            continue;
        }
        PQclear(keep);
        keep = r;
    }
    *out = keep;
    return 0;
}

/* Turns the collected result into success or a recorded error. Takes res. */
static int check_result(pg_conn_t *c, PGresult *res, PGresult **out)
{
    if (!res) {
        return set_error(c, NULL, c->broken ? FENTA_EUNAVAILABLE : FENTA_EIO,
                         c->broken ? NULL : "no result from server");
    }
    switch (PQresultStatus(res)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
    case PGRES_SINGLE_TUPLE:
        if (c->broken) {
            PQclear(res);
            return set_error(c, NULL, FENTA_EUNAVAILABLE, "COPY is not supported");
        }
        clear_error(c);
        if (out)
            *out = res;
        else
            PQclear(res);
        return 0;
    default: {
        int rc = set_error(c, res, FENTA_EIO, NULL);
        PQclear(res);
        return rc;
    }
    }
}

/* ---- connecting ----------------------------------------------------------- */

/* Connects c within the deadline. 0 or FENTA_EUNAVAILABLE/ENOMEM. */
static int conn_connect(pg_conn_t *c, int64_t deadline)
{
    pg_pool_t *p = c->pool;
    conn_close(c);
    /* Our defaults first: keywords later in the list (those expanded from the
     * caller's conninfo) override them. */
    static const char *const keys[] = {
        "connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
        "keepalives_count", "application_name", "dbname",          NULL};
    const char *vals[] = {"5", "1", "5", "2", "3", "fenta", p->conninfo, NULL};
    c->pq = PQconnectStartParams(keys, vals, 1);
    if (!c->pq) {
        set_error(c, NULL, FENTA_ENOMEM, "out of memory");
        return FENTA_ENOMEM;
    }
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (PQstatus(c->pq) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
           st != PGRES_POLLING_FAILED) {
        int rc = wait_socket(c->pq, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        if (rc != 0) {
            set_error(c, NULL, FENTA_EUNAVAILABLE,
                      rc == FENTA_ETIMEOUT ? "timed out connecting to the database" : NULL);
            pool_mark(p, 0, c->errmsg);
            conn_close(c);
            return FENTA_EUNAVAILABLE;
        }
        st = PQconnectPoll(c->pq);
    }
    if (PQstatus(c->pq) != CONNECTION_OK) {
        set_error(c, NULL, FENTA_EUNAVAILABLE, NULL);
        pool_mark(p, 0, c->errmsg);
        conn_close(c);
        return FENTA_EUNAVAILABLE;
    }
    PQsetNoticeProcessor(c->pq, on_notice, c);
    clear_error(c);
    pool_mark(p, 1, NULL);
    return 0;
}

/* Whether an idle connection is still usable: a healthy idle connection has
 * nothing to read; one the server hung up on (restart, crash, terminate) is
 * readable, and consuming that input shows the connection is gone. */
static bool conn_alive(pg_conn_t *c)
{
    if (!c->pq || c->broken || PQstatus(c->pq) != CONNECTION_OK)
        return false;
    struct pollfd pfd = {.fd = PQsocket(c->pq), .events = POLLIN};
    if (pfd.fd < 0)
        return false;
    /* A server that hangs up first sends a FATAL message, then EOF; one read
     * may take only the message, so read while there is more (EOF stays
     * readable, and reading it marks the connection bad). */
    for (int i = 0; i < 8 && poll(&pfd, 1, 0) > 0; i++) {
        if (!PQconsumeInput(c->pq) || PQstatus(c->pq) != CONNECTION_OK)
            return false;
        PGnotify *n;
        while ((n = PQnotifies(c->pq)))
            PQfreemem(n);
    }
    return PQtransactionStatus(c->pq) == PQTRANS_IDLE;
}

/* ---- pool ----------------------------------------------------------------- */

static void conn_init(pg_conn_t *c, pg_pool_t *p)
{
    memset(c, 0, sizeof *c);
    c->pool = p;
}

pg_pool_t *pg_pool_new(const char *conninfo, int size, int *err)
{
    int dummy;
    err = err ? err : &dummy;
    *err = 0;
    if (!conninfo || size < 1) {
        *err = FENTA_EINVAL;
        return NULL;
    }
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
    if (!opts) {
        char msg[512];
        copy_trimmed(msg, sizeof msg, perr ? perr : "out of memory");
        log_msg(LOG_ERROR, NULL, "invalid database connection string: %s", msg);
        *err = perr ? FENTA_EINVAL : FENTA_ENOMEM;
        PQfreemem(perr);
        return NULL;
    }
    PQconninfoFree(opts);
    pg_pool_t *p = calloc(1, sizeof *p);
    if (!p || !(p->conninfo = strdup(conninfo)) || !(p->conns = calloc(size, sizeof *p->conns)) ||
        !(p->idle = calloc(size, sizeof *p->idle))) {
        if (p) {
            free(p->conninfo);
            free(p->conns);
        }
        free(p);
        *err = FENTA_ENOMEM;
        return NULL;
    }
    p->size = size;
    p->acquire_ms = 5000;
    p->up = -1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->ping_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* Pushed in reverse so the first acquires take conns[0], conns[1], ... */
    for (int i = size - 1; i >= 0; i--) {
        conn_init(&p->conns[i], p);
        p->idle[p->nidle++] = &p->conns[i];
    }
    conn_init(&p->ping, p);
    return p;
}

void pg_pool_destroy(pg_pool_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pg_pool_t *p = *self_p;
    *self_p = NULL;
    pthread_mutex_lock(&p->mu);
    int busy = p->size - p->nidle;
    pthread_mutex_unlock(&p->mu);
    if (busy) {
        /* Freeing would leave the holders with dangling connections: leak instead. */
        log_msg(LOG_ERROR, NULL, "pg_pool_destroy: %d connections still acquired; pool leaked",
                busy);
        return;
    }
    for (int i = 0; i < p->size; i++)
        conn_close(&p->conns[i]);
    conn_close(&p->ping);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->ping_mu);
    pthread_cond_destroy(&p->cv);
    free(p->conns);
    free(p->idle);
    free(p->conninfo);
    free(p);
}

void pg_pool_set_acquire_timeout(pg_pool_t *self, int timeout_ms)
{
    if (self && timeout_ms >= 0)
        self->acquire_ms = timeout_ms;
}

void pg_pool_set_query_timeout(pg_pool_t *self, int timeout_ms)
{
    if (self && timeout_ms >= 0)
        self->query_ms = timeout_ms;
}

/* The deadline of a query starting now on c's pool (0 = none). */
static int64_t query_deadline(const pg_conn_t *c)
{
    return c->pool->query_ms > 0 ? deadline_after(c->pool->query_ms) : 0;
}

pg_conn_t *pg_acquire(pg_pool_t *self, int timeout_ms, int *err)
{
    int dummy;
    err = err ? err : &dummy;
    *err = 0;
    if (!self) {
        *err = FENTA_EINVAL;
        return NULL;
    }
    int64_t deadline = deadline_after(timeout_ms);
    struct timespec ts = {.tv_sec = deadline / 1000000, .tv_nsec = (deadline % 1000000) * 1000};
    pthread_mutex_lock(&self->mu);
    while (self->nidle == 0) {
        /* clock_mono_us is CLOCK_MONOTONIC, the clock the condition waits on. */
        if (pthread_cond_timedwait(&self->cv, &self->mu, &ts) == ETIMEDOUT && self->nidle == 0) {
            pthread_mutex_unlock(&self->mu);
            *err = FENTA_ETIMEOUT;
            return NULL;
        }
    }
    pg_conn_t *c = self->idle[--self->nidle];
    pthread_mutex_unlock(&self->mu);

    if (!conn_alive(c)) {
        int rc = conn_connect(c, deadline);
        if (rc != 0) {
            pthread_mutex_lock(&self->mu);
            self->idle[self->nidle++] = c;
            pthread_cond_signal(&self->cv);
            pthread_mutex_unlock(&self->mu);
            *err = rc;
            return NULL;
        }
    }
    clear_error(c);
    c->tx_retry = false;
    return c;
}

/* Runs a parameterless command through the simple protocol. */
static int run_simple(pg_conn_t *c, const char *sql, int64_t deadline, PGresult **out)
{
    if (!c->pq || c->broken)
        return set_error(c, NULL, FENTA_EUNAVAILABLE, "connection is broken");
    if (!PQsendQuery(c->pq, sql))
        return set_error(c, NULL, FENTA_EUNAVAILABLE, NULL);
    PGresult *res;
    int rc = wait_results(c, deadline, &res);
    return rc ? rc : check_result(c, res, out);
}

void pg_release(pg_pool_t *self, pg_conn_t **conn_p)
{
    if (!self || !conn_p || !*conn_p)
        return;
    pg_conn_t *c = *conn_p;
    *conn_p = NULL;
    if (c->pq && !c->broken && PQstatus(c->pq) == CONNECTION_OK) {
        PGTransactionStatusType ts = PQtransactionStatus(c->pq);
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
            /* Never hand the next user a transaction it did not open. */
            if (run_simple(c, "ROLLBACK", query_deadline(c), NULL) != 0)
                c->broken = true;
        } else if (ts != PQTRANS_IDLE) {
            c->broken = true;
        }
    } else if (c->pq) {
        c->broken = true;
    }
    if (c->broken)
        conn_close(c); /* reconnected by the next acquire */
    pthread_mutex_lock(&self->mu);
    self->idle[self->nidle++] = c;
    pthread_cond_signal(&self->cv);
    pthread_mutex_unlock(&self->mu);
}

/* ---- queries --------------------------------------------------------------- */

/* The cache slot for sql: its entry, or the empty slot where it belongs
 * (NULL when the table is full). */
static pg_stmt_t *stmt_slot(pg_conn_t *c, const char *sql, uint64_t h)
{
    for (unsigned i = 0; i < PG_STMT_SLOTS; i++) {
        pg_stmt_t *s = &c->stmts[(h + i) & (PG_STMT_SLOTS - 1)];
        if (!s->sql || (s->hash == h && strcmp(s->sql, sql) == 0))
            return s;
    }
    return NULL;
}

static int run_prepared(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                        PGresult **out)
{
    if (!c->pq || c->broken)
        return set_error(c, NULL, FENTA_EUNAVAILABLE, "connection is broken");
    if (!c->stmts && !(c->stmts = calloc(PG_STMT_SLOTS, sizeof *c->stmts)))
        return set_error(c, NULL, FENTA_ENOMEM, "out of memory");
    uint64_t h = fnv1a(sql);
    pg_stmt_t *s = stmt_slot(c, sql, h);
    PGresult *res;
    int rc;
    int64_t deadline = query_deadline(c);
    if (s && !s->sql && c->nstmts < PG_STMT_MAX) {
        char name[16];
        snprintf(name, sizeof name, "f%u", c->next_stmt++);
        if (!PQsendPrepare(c->pq, name, sql, nparams, NULL))
            return set_error(c, NULL, FENTA_EUNAVAILABLE, NULL);
        if ((rc = wait_results(c, deadline, &res)) != 0 || (rc = check_result(c, res, NULL)) != 0)
            return rc;
        if (!(s->sql = strdup(sql)))
            return set_error(c, NULL, FENTA_ENOMEM, "out of memory");
        s->hash = h;
        memcpy(s->name, name, sizeof name);
        c->nstmts++;
    }
    if (s && s->sql) {
        if (!PQsendQueryPrepared(c->pq, s->name, nparams, params, NULL, NULL, 0))
            return set_error(c, NULL, FENTA_EUNAVAILABLE, NULL);
    } else if (!PQsendQueryParams(c->pq, sql, nparams, NULL, params, NULL, NULL, 0)) {
        /* Cache full: still parameterised, just not prepared. */
        return set_error(c, NULL, FENTA_EUNAVAILABLE, NULL);
    }
    if ((rc = wait_results(c, deadline, &res)) != 0)
        return rc;
    return check_result(c, res, out);
}

/* Runs a prepared statement; once more, re-prepared, when the server lost it
 * (26000, e.g. after DISCARD ALL) or its result type changed under it (0A000
 * "cached plan must not change result type") and no transaction was hurt. */
static int run_query(pg_conn_t *c, const char *sql, int nparams, const char *const *params,
                     PGresult **out)
{
    if (!c || !sql || nparams < 0 || (nparams > 0 && !params)) {
        if (c)
            return set_error(c, NULL, FENTA_EINVAL, "invalid arguments");
        return FENTA_EINVAL;
    }
    int rc = run_prepared(c, sql, nparams, params, out);
    if (rc != 0 && !c->broken && c->pq && PQtransactionStatus(c->pq) == PQTRANS_IDLE &&
        (!strcmp(c->sqlstate, "26000") || !strcmp(c->sqlstate, "0A000"))) {
        log_msg(LOG_INFO, NULL, "re-preparing statements: %s", c->errmsg);
        if (run_simple(c, "DEALLOCATE ALL", 0, NULL) == 0) {
            stmt_cache_clear(c); /* the whole cache: keeps probe chains intact */
            rc = run_prepared(c, sql, nparams, params, out);
        }
    }
    return rc;
}

pg_result_t *pg_query(pg_conn_t *conn, const char *sql, int nparams, const char *const *params,
                      int *err)
{
    int dummy;
    err = err ? err : &dummy;
    PGresult *res = NULL;
    *err = run_query(conn, sql, nparams, params, &res);
    if (*err != 0)
        return NULL;
    pg_result_t *r = malloc(sizeof *r);
    if (!r) {
        PQclear(res);
        *err = FENTA_ENOMEM;
        return NULL;
    }
    r->res = res;
    return r;
}

static int affected_of(const PGresult *res)
{
    const char *t = PQcmdTuples((PGresult *)res);
    return t && *t ? (int)strtol(t, NULL, 10) : 0;
}

int pg_exec(pg_conn_t *conn, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = NULL;
    int rc = run_query(conn, sql, nparams, params, &res);
    if (rc != 0)
        return rc;
    int n = affected_of(res);
    PQclear(res);
    return n;
}

int pg_exec_script(pg_conn_t *conn, const char *sql)
{
    if (!conn || !sql)
        return FENTA_EINVAL;
    return run_simple(conn, sql, 0, NULL);
}

int pg_nrows(const pg_result_t *res)
{
    return res ? PQntuples(res->res) : 0;
}

int pg_ncols(const pg_result_t *res)
{
    return res ? PQnfields(res->res) : 0;
}

const char *pg_get(const pg_result_t *res, int row, int col)
{
    if (!res || row < 0 || col < 0 || row >= PQntuples(res->res) || col >= PQnfields(res->res) ||
        PQgetisnull(res->res, row, col))
        return NULL;
    return PQgetvalue(res->res, row, col);
}

const char *pg_getn(const pg_result_t *res, int row, const char *colname)
{
    if (!res || !colname)
        return NULL;
    int col = PQfnumber(res->res, colname);
    return col < 0 ? NULL : pg_get(res, row, col);
}

int pg_affected(const pg_result_t *res)
{
    return res ? affected_of(res->res) : 0;
}

void pg_result_free(pg_result_t **res_p)
{
    if (!res_p || !*res_p)
        return;
    PQclear((*res_p)->res);
    free(*res_p);
    *res_p = NULL;
}

const char *pg_error_message(const pg_conn_t *conn)
{
    return conn ? conn->errmsg : "";
}

const char *pg_sqlstate(const pg_conn_t *conn)
{
    return conn ? conn->sqlstate : "";
}

const char *pg_constraint(const pg_conn_t *conn)
{
    return conn ? conn->constraint : "";
}

bool pg_retryable(const pg_conn_t *conn)
{
    return conn && (!strcmp(conn->sqlstate, "40001") || !strcmp(conn->sqlstate, "40P01"));
}

/* ---- transactions and health ---------------------------------------------- */

/* One run of a transaction; *retry says whether another run may succeed. */
static int tx_once(pg_pool_t *self, int (*fn)(pg_conn_t *, void *), void *arg, bool *retry)
{
    int err = 0;
    *retry = false;
    pg_conn_t *c = pg_acquire(self, self->acquire_ms, &err);
    if (!c)
        return err;
    int rc = run_simple(c, "BEGIN", query_deadline(c), NULL);
    if (rc == 0) {
        c->tx_retry = false;
        rc = fn(c, arg);
        if (rc == 0 && c->pq && PQtransactionStatus(c->pq) == PQTRANS_INERROR) {
            /* fn ignored a failed query: COMMIT would quietly roll back. */
            rc = c->last_code ? c->last_code : FENTA_EIO;
        }
        if (rc == 0) {
            rc = run_simple(c, "COMMIT", query_deadline(c), NULL);
        } else if (!c->broken) {
            int saved_code = c->last_code;
            char state[6], msg[sizeof c->errmsg];
            memcpy(state, c->sqlstate, sizeof state);
            memcpy(msg, c->errmsg, sizeof msg);
            run_simple(c, "ROLLBACK", query_deadline(c), NULL);
            /* Keep the reason of the failure, not the rollback's success. */
            c->last_code = saved_code;
            memcpy(c->sqlstate, state, sizeof state);
            memcpy(c->errmsg, msg, sizeof msg);
        }
        *retry = rc != 0 && c->tx_retry;
    }
    pg_release(self, &c);
    return rc;
}

int pg_tx(pg_pool_t *self, int (*fn)(pg_conn_t *conn, void *arg), void *arg)
{
    if (!self || !fn)
        return FENTA_EINVAL;
    int rc = 0;
    for (int run = 1; run <= 1 + PG_TX_RETRIES; run++) {
        bool retry;
        rc = tx_once(self, fn, arg, &retry);
        if (!retry)
            return rc;
        if (run <= PG_TX_RETRIES) {
            /* Jittered pause so the transactions that collided do not collide again. */
            int64_t ms = 1 + (int64_t)(backoff_random() % (uint64_t)(10 * run));
            log_msg(LOG_DEBUG, NULL, "transaction retry %d after serialization failure", run);
            usleep((useconds_t)ms * 1000);
        }
    }
    return rc;
}

int pg_ping(pg_pool_t *self)
{
    if (!self)
        return FENTA_EINVAL;
    int64_t deadline = deadline_after(PG_PING_MS);
    struct timespec ts;
    clock_deadline(1000, &ts);
    if (pthread_mutex_timedlock(&self->ping_mu, &ts) != 0)
        return FENTA_ETIMEOUT;
    pg_conn_t *c = &self->ping;
    int rc = 0;
    if (!conn_alive(c))
        rc = conn_connect(c, deadline);
    if (rc == 0) {
        PGresult *res = NULL;
        rc = run_simple(c, "SELECT 1", deadline, &res);
        if (rc == 0 && (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "1") != 0))
            rc = FENTA_EIO;
        PQclear(res);
        if (rc != 0)
            pool_mark(self, 0, c->errmsg);
    }
    if (c->broken)
        conn_close(c);
    pthread_mutex_unlock(&self->ping_mu);
    return rc == FENTA_ETIMEOUT ? FENTA_ETIMEOUT : rc ? FENTA_EUNAVAILABLE : 0;
}
