/* embedded.c - create, start and stop the private PostgreSQL cluster in the
 * data directory (see embedded.h).
 *
 * The traps this file avoids:
 * - initdb, pg_ctl and postgres refuse to run as root: as root they run as
 *   an unprivileged user (embedded_run.c), which must be able to reach the
 *   data directory; we check that up front so the error names the directory
 *   instead of a "could not open" deep inside initdb.
 * - A postmaster killed with SIGKILL leaves postmaster.pid behind. pg_ctl and
 *   postgres treat it as stale only when kill(pid, 0) fails, but an orphaned
 *   postmaster that nobody reaps stays a zombie (kill succeeds) and its pid
 *   may be reused by an unrelated process; we look at /proc/<pid>/stat and
 *   remove the file when the pid is not a live "postgres".
 * - A crash in the middle of initdb must not leave a half cluster that the
 *   next start takes for a real one: initdb writes pg.init/, which is renamed
 *   to pg/ only once complete.
 * - Two processes starting on one directory at once: pg.lock (flock)
 *   serialises them, and the second finds the server running and reuses it. */
#include "storage/embedded.h"
#include "storage/embedded_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include "runtime/log.h"
#include "storage/pg.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define EMB_PG_MAJOR "15"
#define EMB_SOCKET_NAME "/.s.PGSQL.5432"
#define EMB_DB "fenta"
#define EMB_READY_MS 30000 /* how long a started server may take to accept us */

struct embedded_pg {
    char *data_dir;          /* absolute DATA_DIR */
    char *pgdata;            /* DATA_DIR/pg */
    char *sockdir;           /* socket directory the server uses */
    char *logpath;           /* DATA_DIR/pg.log */
    char *superuser;         /* role to connect as */
    char *conninfo;          /* for database fenta */
    bool reused;             /* found running at start */
    bool no_sync;            /* embedded_pg_opts_t.no_sync */
    char *bindir;            /* embedded_pg_opts_t.bindir; NULL = the default */
    char *timezone;          /* embedded_pg_opts_t.timezone; NULL = none */
    embedded__tools_t tools; /* bindir and timezone, as embedded__run takes them */
    embedded__user_t user;   /* who runs the tools */
};

/* ---- paths and small files ------------------------------------------------ */

static char *path_join(const char *dir, const char *name)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static char *read_small(const char *path, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char *buf = malloc(max + 1);
    size_t len = 0;
    ssize_t n;
    while (buf && len < max && (n = read(fd, buf + len, max - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            buf = NULL;
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* Writes content to path atomically (temp file + rename), owned by user. */
static int write_file(const char *path, const char *content, const embedded__user_t *u)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp", path) < 0)
        return FENTA_ENOMEM;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = fd < 0 ? FENTA_EIO : 0;
    size_t len = strlen(content), off = 0;
    while (rc == 0 && off < len) {
        ssize_t n = write(fd, content + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = FENTA_EIO;
        else
            off += (size_t)n;
    }
    if (fd >= 0 && (fsync(fd) != 0 || close(fd) != 0))
        rc = FENTA_EIO;
    if (rc == 0 && u->switch_user && chown(tmp, u->uid, u->gid) != 0)
        rc = FENTA_EIO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = FENTA_EIO;
    if (rc != 0) {
        log_msg(LOG_ERROR, NULL, "embedded postgres: cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

/* A single-quoted value for postgresql.conf or a libpq conninfo: both take
 * backslash-escaped quotes and backslashes inside '...'. Caller frees. */
static char *quoted(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(2 * n + 3), *o = out;
    if (!out)
        return NULL;
    *o++ = '\'';
    for (; *s; s++) {
        if (*s == '\'' || *s == '\\')
            *o++ = '\\';
        *o++ = *s;
    }
    *o++ = '\'';
    *o = '\0';
    return out;
}

/* Logs why a tool failed, with the end of the log it wrote to. */
static void log_tool_failure(const embedded_pg_t *e, const char *what)
{
    char tail[1536] = "";
    int fd = open(e->logpath, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        off_t end = lseek(fd, 0, SEEK_END);
        off_t from = end > (off_t)sizeof tail - 1 ? end - (off_t)sizeof tail + 1 : 0;
        ssize_t n = pread(fd, tail, sizeof tail - 1, from);
        tail[n > 0 ? n : 0] = '\0';
        close(fd);
    }
    const char *kv[] = {"log", e->logpath, "log_tail", tail, NULL};
    char msg[512];
    snprintf(msg, sizeof msg, "embedded postgres: %s failed", what);
    log_kv(LOG_ERROR, NULL, msg, kv);
}
/* ---- the postmaster's pid file ---------------------------------------------------- */

/* 1 when pid is a live postgres whose working directory is pgdata (a
 * postmaster works in its data directory), 0 when it is gone, a zombie, or
 * some other program (or another cluster's server) that got the number. */
static int pid_is_postmaster(pid_t pid, const char *pgdata)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *stat = read_small(path, 1024);
    if (!stat) {
        /* No /proc entry: gone (or no /proc: fall back to the classic test). */
        if (access("/proc/self/stat", R_OK) == 0)
            return 0;
        return kill(pid, 0) == 0 || errno == EPERM;
    }
    char *open = strchr(stat, '('), *close = strrchr(stat, ')');
    int alive = 0;
    if (open && close && close > open && close[1] == ' ') {
        *close = '\0';
        alive = strcmp(open + 1, "postgres") == 0 && close[2] != 'Z' && close[2] != 'X';
    }
    free(stat);
    if (alive) {
        char cwd[PATH_MAX], real[PATH_MAX];
        snprintf(path, sizeof path, "/proc/%d/cwd", (int)pid);
        ssize_t n = readlink(path, cwd, sizeof cwd - 1);
        /* Unreadable (another user's process): keep the answer we have. */
        if (n > 0 && realpath(pgdata, real)) {
            cwd[n] = '\0';
            alive = strcmp(cwd, real) == 0;
        }
    }
    return alive;
}

/* The running postmaster's pid and socket directory (from postmaster.pid);
 * 0 when none runs. A stale file (and the socket lock file it guards) is
 * removed so the next start does not trip on it. */
static pid_t running_postmaster(const char *pgdata, const char *sockdir, char **sock_out)
{
    char *pidfile = path_join(pgdata, "postmaster.pid");
    char *text = pidfile ? read_small(pidfile, 4096) : NULL;
    pid_t pid = text ? (pid_t)strtol(text, NULL, 10) : 0;
    if (text && (pid <= 0 || !pid_is_postmaster(pid, pgdata))) {
        log_msg(LOG_INFO, NULL,
                "embedded postgres: removing stale %s (pid %d is not a running postgres)", pidfile,
                (int)pid);
        unlink(pidfile);
        char lock[PATH_MAX];
        snprintf(lock, sizeof lock, "%s%s.lock", sockdir, EMB_SOCKET_NAME);
        unlink(lock);
        pid = 0;
    }
    if (pid > 0 && sock_out) {
        /* Line 5 is the first socket directory the server really uses. */
        char *line = text;
        for (int i = 1; line && i < 5; i++)
            line = (line = strchr(line, '\n')) ? line + 1 : NULL;
        if (line && *line && *line != '\n') {
            line[strcspn(line, "\n")] = '\0';
            *sock_out = strdup(line);
        }
    }
    free(text);
    free(pidfile);
    return pid;
}

/* ---- creating the cluster ------------------------------------------------------------ */

static int create_cluster(embedded_pg_t *e)
{
    char *init = path_join(e->data_dir, "pg.init");
    char *conf = init ? path_join(init, "postgresql.conf") : NULL;
    char *sufile = init ? path_join(init, "fenta_superuser") : NULL;
    int rc = init && conf && sufile ? 0 : FENTA_ENOMEM;
    if (rc == 0) {
        fsutil_remove_tree(init); /* what a crashed earlier attempt left */
        if (mkdir(init, 0700) != 0 ||
            (e->user.switch_user && chown(init, e->user.uid, e->user.gid) != 0)) {
            log_msg(LOG_ERROR, NULL, "embedded postgres: cannot create %s: %s", init,
                    strerror(errno));
            rc = FENTA_EIO;
        }
    }
    if (rc == 0) {
        char su[96];
        snprintf(su, sizeof su, "--username=%s", e->superuser);
        const char *args[] = {"-D",
                              init,
                              su,
                              "--encoding=UTF8",
                              "--locale=C",
                              "--auth-local=trust",
                              "--auth-host=reject",
                              e->no_sync ? "--no-sync" : NULL,
                              NULL};
        log_msg(LOG_INFO, NULL, "embedded postgres: creating cluster in %s", e->pgdata);
        if (embedded__run(&e->user, &e->tools, e->data_dir, e->logpath, "initdb", args) != 0) {
            log_tool_failure(e, "initdb");
            rc = FENTA_EIO;
        }
    }
    if (rc == 0) {
        /* Our settings live in fenta.conf, rewritten at each start. */
        char *text = read_small(conf, 1 << 20);
        char *more = NULL;
        if (!text || asprintf(&more, "%s\ninclude_if_exists = 'fenta.conf'\n", text) < 0)
            rc = FENTA_EIO;
        if (rc == 0)
            rc = write_file(conf, more, &e->user);
        if (rc == 0)
            rc = write_file(sufile, e->superuser, &e->user);
        free(text);
        free(more);
    }
    if (rc == 0 && rename(init, e->pgdata) != 0) {
        log_msg(LOG_ERROR, NULL, "embedded postgres: rename %s: %s", init, strerror(errno));
        rc = FENTA_EIO;
    }
    free(init);
    free(conf);
    free(sufile);
    return rc;
}

/* Checks an existing cluster, or creates one. */
static int ensure_cluster(embedded_pg_t *e)
{
    char *verfile = path_join(e->pgdata, "PG_VERSION");
    char *ver = verfile ? read_small(verfile, 32) : NULL;
    int rc = 0;
    struct stat st;
    if (ver) {
        if (strncmp(ver, EMB_PG_MAJOR "\n", strlen(EMB_PG_MAJOR) + 1) != 0) {
            ver[strcspn(ver, "\n")] = '\0';
            log_msg(LOG_ERROR, NULL,
                    "embedded postgres: %s is a PostgreSQL %s cluster; this build runs %s",
                    e->pgdata, ver, EMB_PG_MAJOR);
            rc = FENTA_EINVAL;
        }
    } else if (stat(e->pgdata, &st) == 0 && rmdir(e->pgdata) != 0) {
        log_msg(LOG_ERROR, NULL,
                "embedded postgres: %s exists but is not a PostgreSQL cluster; move it away",
                e->pgdata);
        rc = FENTA_EINVAL;
    } else {
        rc = create_cluster(e);
    }
    free(ver);
    free(verfile);
    return rc;
}

/* The superuser recorded at creation (a cluster made by another OS user
 * keeps its role name). */
static int load_superuser(embedded_pg_t *e)
{
    char *f = path_join(e->pgdata, "fenta_superuser");
    char *name = f ? read_small(f, 63) : NULL;
    free(f);
    if (name && *name) {
        name[strcspn(name, "\n")] = '\0';
        free(e->superuser);
        e->superuser = name;
        return 0;
    }
    free(name);
    return 0;
}

static int write_settings(embedded_pg_t *e)
{
    char *conf = path_join(e->pgdata, "fenta.conf");
    char *q = quoted(e->sockdir);
    char *text = NULL;
    int rc = FENTA_ENOMEM;
    if (conf && q &&
        asprintf(&text,
                 "# written by Fenta at each start of the embedded server; edits are lost\n"
                 "listen_addresses = ''\n"
                 "unix_socket_directories = %s\n"
                 "unix_socket_permissions = 0700\n"
                 "%s",
                 q, e->no_sync ? "fsync = off\nfull_page_writes = off\n" : "") >= 0)
        rc = write_file(conf, text, &e->user);
    free(text);
    free(q);
    free(conf);
    return rc;
}

/* ---- the handle ---------------------------------------------------------------------- */

static void emb_free(embedded_pg_t *e)
{
    if (!e)
        return;
    free(e->data_dir);
    free(e->pgdata);
    free(e->sockdir);
    free(e->logpath);
    free(e->superuser);
    free(e->conninfo);
    free(e->bindir);
    free(e->timezone);
    free(e);
}

/* Fills paths and the user for data_dir (which must exist). */
static embedded_pg_t *emb_new(const char *data_dir, int *err)
{
    embedded_pg_t *e = calloc(1, sizeof *e);
    char real[PATH_MAX];
    if (!e) {
        *err = FENTA_ENOMEM;
        return NULL;
    }
    if (!realpath(data_dir, real)) {
        log_msg(LOG_ERROR, NULL, "embedded postgres: %s: %s", data_dir, strerror(errno));
        *err = FENTA_EINVAL;
        emb_free(e);
        return NULL;
    }
    e->data_dir = strdup(real);
    e->pgdata = path_join(real, "pg");
    e->sockdir = path_join(real, "pg-run");
    e->logpath = path_join(real, "pg.log");
    if (!e->data_dir || !e->pgdata || !e->sockdir || !e->logpath) {
        *err = FENTA_ENOMEM;
        emb_free(e);
        return NULL;
    }
    if ((*err = embedded__user_resolve(&e->user, e->pgdata)) != 0) {
        emb_free(e);
        return NULL;
    }
    return e;
}

static int lock_dir(const embedded_pg_t *e)
{
    char *path = path_join(e->data_dir, "pg.lock");
    int fd = path ? open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600) : -1;
    free(path);
    if (fd < 0)
        return -1;
    while (flock(fd, LOCK_EX) != 0)
        if (errno != EINTR) {
            close(fd);
            return -1;
        }
    return fd;
}

/* Directories and files the server user writes to. */
static int prepare_dirs(embedded_pg_t *e)
{
    const embedded__user_t *u = &e->user;
    if (u->switch_user) {
        struct stat st;
        if (stat(e->data_dir, &st) == 0 && st.st_uid == geteuid() && !(st.st_mode & S_IXOTH)) {
            /* Search only (no listing) so the server user can reach pg/. */
            if (chmod(e->data_dir, (st.st_mode & 07777) | S_IXOTH) == 0)
                log_msg(LOG_INFO, NULL, "embedded postgres: gave %s o+x so user %s can reach it",
                        e->data_dir, u->name);
        }
        char bad[PATH_MAX] = "";
        int rc = embedded__check_reachable(u, e->data_dir, bad, sizeof bad);
        if (rc != 0) {
            log_msg(LOG_ERROR, NULL,
                    "embedded postgres: user %s cannot reach %s: %s is not searchable by it "
                    "(chmod o+x %s, or choose a data directory it can reach)",
                    u->name, e->data_dir, bad[0] ? bad : "a directory", bad[0] ? bad : "it");
            return rc;
        }
    }
    if (mkdir(e->sockdir, 0700) != 0 && errno != EEXIST) {
        log_msg(LOG_ERROR, NULL, "embedded postgres: mkdir %s: %s", e->sockdir, strerror(errno));
        return FENTA_EIO;
    }
    int fd = open(e->logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    if (chmod(e->sockdir, 0700) != 0 ||
        (u->switch_user &&
         (chown(e->sockdir, u->uid, u->gid) != 0 || chown(e->logpath, u->uid, u->gid) != 0))) {
        log_msg(LOG_ERROR, NULL, "embedded postgres: cannot prepare %s for user %s: %s", e->sockdir,
                u->name, strerror(errno));
        return FENTA_EIO;
    }
    return 0;
}

/* Waits until the server accepts connections, then creates database fenta. */
static int ensure_database(embedded_pg_t *e)
{
    char *ci = embedded_pg_conninfo_db(e, "postgres");
    int err = 0;
    pg_pool_t *pool = ci ? pg_pool_new(ci, 1, &err) : NULL;
    free(ci);
    if (!pool)
        return err ? err : FENTA_ENOMEM;
    int64_t end = clock_mono_us() + (int64_t)EMB_READY_MS * 1000;
    pg_conn_t *c = NULL;
    /* A server in crash recovery refuses connections for a while (57P03). */
    while (!(c = pg_acquire(pool, 2000, &err)) && clock_mono_us() < end)
        usleep(100 * 1000);
    int rc = err;
    if (c) {
        const char *params[] = {EMB_DB};
        pg_result_t *r =
            pg_query(c, "SELECT 1 FROM pg_database WHERE datname = $1", 1, params, &rc);
        if (r && pg_nrows(r) == 0) {
            /* An identifier cannot be a parameter; this one is our constant. */
            rc = pg_exec_script(c, "CREATE DATABASE " EMB_DB);
            if (rc != 0 && !strcmp(pg_sqlstate(c), "42P04"))
                rc = 0; /* created meanwhile */
            if (rc != 0)
                log_msg(LOG_ERROR, NULL, "embedded postgres: CREATE DATABASE: %s",
                        pg_error_message(c));
        }
        pg_result_free(&r);
        pg_release(pool, &c);
    } else {
        log_msg(LOG_ERROR, NULL, "embedded postgres: server in %s does not accept connections",
                e->pgdata);
    }
    pg_pool_destroy(&pool);
    return rc;
}

static int start_server(embedded_pg_t *e)
{
    const char *args[] = {"start", "-w", "-t", "60", "-s", "-D", e->pgdata, "-l", e->logpath, NULL};
    if (embedded__run(&e->user, &e->tools, e->data_dir, e->logpath, "pg_ctl", args) != 0) {
        log_tool_failure(e, "pg_ctl start");
        return FENTA_EIO;
    }
    return 0;
}

embedded_pg_t *embedded_pg_start(const char *data_dir, int *err)
{
    return embedded_pg_start_opts(data_dir, NULL, err);
}

embedded_pg_t *embedded_pg_start_opts(const char *data_dir, const embedded_pg_opts_t *opts,
                                      int *err)
{
    int dummy;
    err = err ? err : &dummy;
    *err = 0;
    if (!data_dir || !*data_dir) {
        *err = FENTA_EINVAL;
        return NULL;
    }
    if (fsutil_mkdirs(data_dir, 0700) != 0) {
        log_msg(LOG_ERROR, NULL, "embedded postgres: cannot create %s: %s", data_dir,
                strerror(errno));
        *err = FENTA_EIO;
        return NULL;
    }
    embedded_pg_t *e = emb_new(data_dir, err);
    if (!e)
        return NULL;
    e->no_sync = opts && opts->no_sync;
    if ((opts && opts->bindir && *opts->bindir && !(e->bindir = strdup(opts->bindir))) ||
        (opts && opts->timezone && *opts->timezone && !(e->timezone = strdup(opts->timezone)))) {
        *err = FENTA_ENOMEM;
        emb_free(e);
        return NULL;
    }
    e->tools = (embedded__tools_t){.bindir = e->bindir, .timezone = e->timezone};
    struct sockaddr_un sun;
    if (strlen(e->sockdir) + strlen(EMB_SOCKET_NAME) >= sizeof sun.sun_path) {
        log_msg(LOG_ERROR, NULL,
                "embedded postgres: socket path %s%s is longer than unix sockets allow (%zu); "
                "choose a shorter data directory",
                e->sockdir, EMB_SOCKET_NAME, sizeof sun.sun_path - 1);
        *err = FENTA_EINVAL;
        emb_free(e);
        return NULL;
    }
    struct passwd pwbuf, *pw = NULL;
    char pwb[4096];
    getpwuid_r(geteuid(), &pwbuf, pwb, sizeof pwb, &pw);
    e->superuser = strdup(pw ? pw->pw_name : "postgres");
    int lockfd = lock_dir(e);
    int rc = !e->superuser ? FENTA_ENOMEM : lockfd < 0 ? FENTA_EIO : 0;
    if (rc == 0)
        rc = prepare_dirs(e);
    if (rc == 0)
        rc = ensure_cluster(e);
    if (rc == 0)
        rc = load_superuser(e);
    char *running_sock = NULL;
    if (rc == 0 && running_postmaster(e->pgdata, e->sockdir, &running_sock) > 0) {
        e->reused = true;
        if (running_sock) {
            free(e->sockdir);
            e->sockdir = running_sock;
        }
        log_msg(LOG_INFO, NULL, "embedded postgres: reusing the server already running on %s",
                e->pgdata);
    } else if (rc == 0) {
        rc = write_settings(e);
        if (rc == 0)
            rc = start_server(e);
    }
    if (rc == 0) {
        char *q_host = quoted(e->sockdir), *q_user = quoted(e->superuser);
        if (!q_host || !q_user ||
            asprintf(&e->conninfo, "host=%s dbname=%s user=%s", q_host, EMB_DB, q_user) < 0) {
            e->conninfo = NULL;
            rc = FENTA_ENOMEM;
        }
        free(q_host);
        free(q_user);
    }
    if (rc == 0)
        rc = ensure_database(e);
    if (lockfd >= 0)
        close(lockfd);
    if (rc != 0) {
        *err = rc;
        emb_free(e);
        return NULL;
    }
    log_msg(LOG_INFO, NULL, "embedded postgres: ready on %s", e->sockdir);
    return e;
}

const char *embedded_pg_conninfo(const embedded_pg_t *self)
{
    return self ? self->conninfo : NULL;
}

char *embedded_pg_conninfo_db(const embedded_pg_t *self, const char *dbname)
{
    if (!self || !dbname)
        return NULL;
    char *q_host = quoted(self->sockdir), *q_user = quoted(self->superuser), *q_db = quoted(dbname),
         *out = NULL;
    if (q_host && q_user && q_db &&
        asprintf(&out, "host=%s dbname=%s user=%s", q_host, q_db, q_user) < 0)
        out = NULL;
    free(q_host);
    free(q_user);
    free(q_db);
    return out;
}

bool embedded_pg_reused(const embedded_pg_t *self)
{
    return self && self->reused;
}

/* Stops the server of e's cluster if one runs; 0 or FENTA_EIO. */
static int stop_server(embedded_pg_t *e)
{
    int lockfd = lock_dir(e);
    int rc = 0;
    if (running_postmaster(e->pgdata, e->sockdir, NULL) > 0) {
        const char *args[] = {"stop", "-w", "-t", "60", "-s", "-m", "fast", "-D", e->pgdata, NULL};
        if (embedded__run(&e->user, &e->tools, e->data_dir, e->logpath, "pg_ctl", args) != 0) {
            log_tool_failure(e, "pg_ctl stop");
            rc = FENTA_EIO;
        } else {
            log_msg(LOG_INFO, NULL, "embedded postgres: stopped");
        }
    }
    if (lockfd >= 0)
        close(lockfd);
    return rc;
}

void embedded_pg_stop(embedded_pg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    stop_server(*self_p);
    emb_free(*self_p);
    *self_p = NULL;
}

void embedded_pg_release(embedded_pg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    emb_free(*self_p);
    *self_p = NULL;
}

int embedded_pg_stop_dir(const char *data_dir)
{
    int err = 0;
    struct stat st;
    if (!data_dir || stat(data_dir, &st) != 0)
        return 0;
    embedded_pg_t *e = emb_new(data_dir, &err);
    if (!e)
        return err;
    int rc = stop_server(e);
    emb_free(e);
    return rc;
}
