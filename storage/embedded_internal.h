/* embedded_internal.h - shared inside storage/ by embedded.c and
 * embedded_run.c: the OS user the PostgreSQL tools run as, and running them. */
#ifndef FENTA_EMBEDDED_INTERNAL_H
#define FENTA_EMBEDDED_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The OS user the PostgreSQL tools run as. */
typedef struct {
    bool switch_user; /* true when we are root and must drop to uid/gid */
    uid_t uid;        /* server user */
    gid_t gid;        /* its primary group */
    gid_t groups[64]; /* its supplementary groups */
    int ngroups;      /* entries in groups */
    char name[64];    /* its login name (USER, LOGNAME) */
    char home[256];   /* its home (HOME) */
} embedded__user_t;

/* Who runs the tools for the cluster at pgdata: ourselves when not root;
 * as root the owner of an existing pgdata, else the postgres user. 0, or
 * FENTA_EDENIED (logged: no such user, or a cluster owned by root). */
int embedded__user_resolve(embedded__user_t *u, const char *pgdata);
/* How the tools are run: their folder and the time zone they get. */
typedef struct {
    const char *bindir;   /* NULL = EMBEDDED_PG_BINDIR */
    const char *timezone; /* TZ in their environment; NULL = none */
} embedded__tools_t;

/* Runs BINDIR/tool with args (NULL-terminated) as u, in cwd, in a session
 * of its own, with a minimal environment (TZ only when t names one) and
 * stdout/stderr appended to logpath. Its exit status (0 = success), or -1
 * if it could not be run (logged). */
int embedded__run(const embedded__user_t *u, const embedded__tools_t *t, const char *cwd,
                  const char *logpath, const char *tool, const char *const *args);
/* 0 when u can search every directory from / down to dir; else
 * FENTA_EDENIED with the first one it cannot in bad. */
int embedded__check_reachable(const embedded__user_t *u, const char *dir, char *bad, size_t badcap);

#endif
