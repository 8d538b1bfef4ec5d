/* embedded_run.c - running the PostgreSQL tools (initdb, pg_ctl) for the
 * embedded cluster, as the right OS user (see embedded_internal.h).
 *
 * The child of a fork in a process with threads may only make
 * async-signal-safe calls until exec: everything it needs (argv, envp, the
 * groups list) is built before fork. It closes every descriptor above stderr
 * (else the postmaster would hold our sockets and pipes, Criterion's among
 * them, for its whole life), restores default signals and an empty mask
 * (ours may block SIGTERM for the runtime's signal thread), and starts a
 * session of its own (a terminal's Ctrl-C must reach Fenta, which stops the
 * server in order, not the server directly). */
#include "runtime/error.h"
#include "runtime/log.h"
#include "storage/embedded.h"
#include "storage/embedded_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int user_fill(embedded__user_t *u, const struct passwd *pw)
{
    u->uid = pw->pw_uid;
    u->gid = pw->pw_gid;
    snprintf(u->name, sizeof u->name, "%s", pw->pw_name);
    snprintf(u->home, sizeof u->home, "%s", pw->pw_dir && *pw->pw_dir ? pw->pw_dir : "/");
    u->ngroups = (int)(sizeof u->groups / sizeof u->groups[0]);
    if (getgrouplist(pw->pw_name, pw->pw_gid, u->groups, &u->ngroups) < 0) {
        u->groups[0] = pw->pw_gid;
        u->ngroups = 1;
    }
    return 0;
}

int embedded__user_resolve(embedded__user_t *u, const char *pgdata)
{
    memset(u, 0, sizeof *u);
    struct passwd pwbuf, *pw = NULL;
    char buf[4096];
    if (geteuid() != 0) {
        getpwuid_r(geteuid(), &pwbuf, buf, sizeof buf, &pw);
        if (pw)
            return user_fill(u, pw);
        u->uid = geteuid();
        u->gid = getegid();
        snprintf(u->name, sizeof u->name, "fenta");
        snprintf(u->home, sizeof u->home, "/");
        return 0;
    }
    u->switch_user = true;
    struct stat st;
    if (stat(pgdata, &st) == 0 && st.st_uid != 0) {
        /* An existing cluster keeps its owner. */
        getpwuid_r(st.st_uid, &pwbuf, buf, sizeof buf, &pw);
        if (!pw) {
            log_msg(LOG_ERROR, NULL,
                    "embedded postgres: %s belongs to uid %u, which has no account", pgdata,
                    (unsigned)st.st_uid);
            return FENTA_EDENIED;
        }
        return user_fill(u, pw);
    }
    if (stat(pgdata, &st) == 0) {
        log_msg(LOG_ERROR, NULL,
                "embedded postgres: %s is owned by root and PostgreSQL cannot run as root; "
                "chown -R postgres: it",
                pgdata);
        return FENTA_EDENIED;
    }
    getpwnam_r("postgres", &pwbuf, buf, sizeof buf, &pw);
    if (!pw) {
        log_msg(LOG_ERROR, NULL,
                "embedded postgres: running as root needs the 'postgres' system user to run the "
                "server (install postgresql-15), or run Fenta as an unprivileged user");
        return FENTA_EDENIED;
    }
    return user_fill(u, pw);
}

/* In a fresh child: default signals, our descriptors closed, output to
 * outfd, privileges dropped. Only async-signal-safe calls: we may have
 * threads. Returns only on failure. */
static void child_setup(const embedded__user_t *u, int outfd)
{
    sigset_t none;
    sigemptyset(&none);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0)
        _exit(126);
    if (outfd >= 0 && (dup2(outfd, 1) < 0 || dup2(outfd, 2) < 0))
        _exit(126);
    if (close_range(3, ~0U, 0) != 0)
        for (int fd = 3; fd < 65536; fd++)
            close(fd);
    if (u->switch_user && (setgroups((size_t)u->ngroups, u->groups) != 0 || setgid(u->gid) != 0 ||
                           setuid(u->uid) != 0))
        _exit(126);
}

int embedded__run(const embedded__user_t *u, const embedded__tools_t *t, const char *cwd,
                  const char *logpath, const char *tool, const char *const *args)
{
    char exe[PATH_MAX];
    snprintf(exe, sizeof exe, "%s/%s", t->bindir ? t->bindir : EMBEDDED_PG_BINDIR, tool);
    if (access(exe, X_OK) != 0) {
        log_msg(LOG_ERROR, NULL,
                "embedded postgres: %s not found (install postgresql-15, or name its "
                "folder with --pg-bindir or FENTA_PG_BINDIR)",
                exe);
        return -1;
    }
    const char *argv[24];
    int argc = 0;
    argv[argc++] = exe;
    for (; *args && argc < 23; args++)
        argv[argc++] = *args;
    argv[argc] = NULL;
    /* Everything the child needs is built before fork. */
    char env_home[300], env_user[80], env_logname[80], env_tz[128];
    snprintf(env_home, sizeof env_home, "HOME=%s", u->home);
    snprintf(env_user, sizeof env_user, "USER=%s", u->name);
    snprintf(env_logname, sizeof env_logname, "LOGNAME=%s", u->name);
    const char *envp[8];
    int envc = 0;
    envp[envc++] = "PATH=/usr/local/bin:/usr/bin:/bin";
    envp[envc++] = "LC_ALL=C";
    envp[envc++] = env_home;
    envp[envc++] = env_user;
    envp[envc++] = env_logname;
    if (t->timezone && snprintf(env_tz, sizeof env_tz, "TZ=%s", t->timezone) < (int)sizeof env_tz)
        envp[envc++] = env_tz;
    envp[envc] = NULL;

    int out = open(logpath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    pid_t pid = fork();
    if (pid < 0) {
        if (out >= 0)
            close(out);
        log_msg(LOG_ERROR, NULL, "embedded postgres: fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        child_setup(u, out);
        if (chdir(cwd) != 0 && chdir("/") != 0)
            _exit(126);
        execve(exe, (char *const *)argv, (char *const *)envp);
        _exit(127);
    }
    if (out >= 0)
        close(out);
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            log_msg(LOG_ERROR, NULL, "embedded postgres: waitpid %s: %s", tool, strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 126)
        log_msg(LOG_ERROR, NULL, "embedded postgres: could not become user %s to run %s", u->name,
                tool);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A child that becomes the user tries every ancestor in turn. */
int embedded__check_reachable(const embedded__user_t *u, const char *dir, char *bad, size_t badcap)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    pid_t pid = fork();
    if (pid < 0)
        return FENTA_EIO;
    if (pid == 0) {
        child_setup(u, -1);
        int idx = 0;
        for (char *p = buf + 1;; p++) {
            if (*p == '/' || *p == '\0') {
                char c = *p;
                *p = '\0';
                idx++;
                if (access(buf, X_OK) != 0)
                    _exit(idx > 120 ? 120 : idx);
                *p = c;
                if (!c)
                    break;
            }
        }
        _exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return FENTA_EIO;
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 126)
        return FENTA_EDENIED;
    int idx = WEXITSTATUS(status);
    if (idx == 0)
        return 0;
    /* Rebuild the idx-th prefix for the message. */
    snprintf(bad, badcap, "%s", dir);
    int seen = 0;
    for (char *p = bad + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            if (++seen == idx) {
                *p = '\0';
                break;
            }
            if (!*p)
                break;
        }
    }
    return FENTA_EDENIED;
}
