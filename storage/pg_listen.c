/* pg_listen.c - LISTEN/NOTIFY on a dedicated connection (see pg.h). Part of
 * the libpq wrapper: with pg.c, the only files that include <libpq-fe.h>.
 *
 * A notification is only useful to a cache if a missed one is noticed: the
 * thread reports "maybe missed" (cb(NULL)) after each (re)connection, since
 * anything sent while it was away is gone, and when the connection drops. */
#include "runtime/error.h"
#include "runtime/log.h"
#include "storage/pg.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pg_listener {
    char *conninfo;                             /* where */
    char *channel;                              /* what */
    void (*cb)(const char *payload, void *arg); /* to whom */
    void *arg;
    pthread_t thread;
    _Atomic bool stop;      /* asked to stop */
    _Atomic bool connected; /* listening now */
};

static void drop(pg_listener_t *l, PGconn **pq)
{
    if (*pq)
        PQfinish(*pq);
    *pq = NULL;
    if (atomic_exchange(&l->connected, false))
        log_msg(LOG_WARN, NULL, "pg_listen: lost the %s channel; reconnecting", l->channel);
    l->cb(NULL, l->arg);
}

static PGconn *connect_listen(pg_listener_t *l)
{
    PGconn *pq = PQconnectdb(l->conninfo);
    if (!pq || PQstatus(pq) != CONNECTION_OK) {
        if (pq)
            PQfinish(pq);
        return NULL;
    }
    char *ident = PQescapeIdentifier(pq, l->channel, strlen(l->channel));
    char sql[300];
    snprintf(sql, sizeof sql, "LISTEN %s", ident ? ident : "\"\"");
    PQfreemem(ident);
    PGresult *r = PQexec(pq, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok) {
        PQfinish(pq);
        return NULL;
    }
    return pq;
}

static void *listen_main(void *arg)
{
    pg_listener_t *l = arg;
    PGconn *pq = NULL;
    while (!atomic_load(&l->stop)) {
        if (!pq) {
            if (!(pq = connect_listen(l))) {
                for (int i = 0; i < 5 && !atomic_load(&l->stop); i++)
                    usleep(100000);
                continue;
            }
            atomic_store(&l->connected, true);
            l->cb(NULL, l->arg); /* whatever came while we were away is lost */
        }
        struct pollfd p = {.fd = PQsocket(pq), .events = POLLIN};
        int n = poll(&p, 1, 200);
        if (n < 0)
            continue;
        if (n > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL))) {
            drop(l, &pq);
            continue;
        }
        if (n > 0 && !PQconsumeInput(pq)) {
            drop(l, &pq);
            continue;
        }
        PGnotify *note;
        while ((note = PQnotifies(pq))) {
            l->cb(note->extra, l->arg);
            PQfreemem(note);
        }
        if (PQstatus(pq) != CONNECTION_OK)
            drop(l, &pq);
    }
    if (pq)
        PQfinish(pq);
    atomic_store(&l->connected, false);
    return NULL;
}

pg_listener_t *pg_listen_start(const char *conninfo, const char *channel,
                               void (*cb)(const char *payload, void *arg), void *arg, int *err)
{
    if (!conninfo || !channel || !*channel || strlen(channel) > 63 || !cb) {
        if (err)
            *err = FENTA_EINVAL;
        return NULL;
    }
    pg_listener_t *l = calloc(1, sizeof *l);
    if (!l || !(l->conninfo = strdup(conninfo)) || !(l->channel = strdup(channel))) {
        if (l) {
            free(l->conninfo);
            free(l);
        }
        if (err)
            *err = FENTA_ENOMEM;
        return NULL;
    }
    l->cb = cb;
    l->arg = arg;
    if (pthread_create(&l->thread, NULL, listen_main, l) != 0) {
        free(l->conninfo);
        free(l->channel);
        free(l);
        if (err)
            *err = FENTA_ENOMEM;
        return NULL;
    }
    return l;
}

bool pg_listen_connected(const pg_listener_t *self)
{
    return self && atomic_load(&((pg_listener_t *)self)->connected);
}

void pg_listen_stop(pg_listener_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    pg_listener_t *l = *self_p;
    atomic_store(&l->stop, true);
    pthread_join(l->thread, NULL);
    free(l->conninfo);
    free(l->channel);
    free(l);
    *self_p = NULL;
}
