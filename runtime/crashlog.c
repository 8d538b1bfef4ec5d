/* crashlog.c - the crash journal and the fatal-signal handler (see crashlog.h).
 *
 * The handler may run at any instruction of any thread, with the heap or a
 * lock half-updated, so it touches only memory made before the crash: a
 * static table of open journals (fds and preformatted boot ids) and the
 * thread's own slot, written by crashlog_begin. It formats with the plain
 * loops below and runtime/log's log_format (both free of locks, heap, stdio
 * and locale) and writes with write(2); fdatasync and raise are
 * async-signal-safe too. */
#include "runtime/crashlog.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/log.h"
#include "runtime/strutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALTSTACK_BYTES (64u << 10) /* room for two 2 KiB lines and log_format's frames */
#define LINE_BYTES 2048            /* a journal or log line; the longest is ~1.3 KiB */

static const struct {
    int signo;
    const char *name;
} fatal[] = {
    {SIGSEGV, "SIGSEGV"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},
    {SIGILL, "SIGILL"},   {SIGABRT, "SIGABRT"},
};
#define NFATAL (sizeof fatal / sizeof fatal[0])

/* An open journal as the handler sees it. */
typedef struct {
    _Atomic int fd1;           /* the fd + 1; 0 = slot free */
    pid_t owner;               /* the process that opened it */
    char boot[ID_STR_LEN + 1]; /* the run's id, formatted before fd1 is published */
} journal_t;

static journal_t journals[CRASHLOG_MAX_OPEN];
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER; /* journals, nopen, prev */
static int nopen;                                            /* journals open */
static struct sigaction prev[NFATAL]; /* dispositions found when ours went in */

struct crashlog {
    int slot;        /* index in journals */
    int fd;          /* O_APPEND, write only */
    fenta_id_t boot; /* this run's id */
    char *path;      /* the journal's path (owned) */
};

/* What this thread is doing, for the handler. initial-exec keeps the access
 * a plain offset from the thread pointer (no __tls_get_addr, which may
 * allocate), which is what makes reading it from a signal handler safe. */
typedef struct {
    int journal1;                      /* journals index + 1 this thread reports to; 0 = all */
    volatile sig_atomic_t busy;        /* the fields below name the message being handled */
    volatile sig_atomic_t crashing;    /* the handler already reported on this thread */
    uint64_t fp;                       /* the message's fingerprint */
    fenta_id_t msg_id;                 /* the message */
    char actor[ENVELOPE_ADDR_MAX + 1]; /* its actor */
    char type[CRASHLOG_TYPE_MAX + 1];  /* its type, cut */
    char corr[CRASHLOG_CORR_MAX + 1];  /* its correlation id, cut */
    void *altstack;                    /* the signal stack we gave the thread (freed on leave) */
} thread_slot_t;

static _Thread_local thread_slot_t me __attribute__((tls_model("initial-exec")));

const char *crashlog_signame(int signo)
{
    for (size_t i = 0; i < NFATAL; i++)
        if (fatal[i].signo == signo)
            return fatal[i].name;
    return NULL;
}

int crashlog_signo(const char *name)
{
    for (size_t i = 0; name && i < NFATAL; i++)
        if (strcmp(fatal[i].name, name) == 0)
            return fatal[i].signo;
    return 0;
}

/* ---- the thread's slot ------------------------------------------------- */

static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = 0;
}

void crashlog_begin(const char *actor, const fenta_id_t *msg_id, const char *type, const char *corr,
                    uint64_t fp)
{
    /* busy drops while the fields change: a signal in between names no
     * message rather than a mixture of two. The fences keep the compiler
     * from moving the copies across the flag; the handler runs on this
     * thread, so no hardware barrier is needed. */
    me.busy = 0;
    atomic_signal_fence(memory_order_seq_cst);
    copy_cut(me.actor, sizeof me.actor, actor);
    me.msg_id = *msg_id;
    me.fp = fp;
    copy_cut(me.type, sizeof me.type, type);
    copy_cut(me.corr, sizeof me.corr, corr);
    atomic_signal_fence(memory_order_seq_cst);
    me.busy = 1;
}

void crashlog_end(void)
{
    atomic_signal_fence(memory_order_seq_cst);
    me.busy = 0;
}

int crashlog_thread_enter(crashlog_t *self)
{
    me.journal1 = self ? self->slot + 1 : 0;
    /* A fault from a stack overflow cannot run a handler on the stack that
     * overflowed. Only give a stack to a thread that has none: under
     * AddressSanitizer every thread has one, and ASan unmaps whatever stack
     * is installed when its thread ends, which must not be our malloc'd one. */
    stack_t cur;
    if (sigaltstack(NULL, &cur) != 0 || !(cur.ss_flags & SS_DISABLE))
        return 0;
    void *mem = malloc(ALTSTACK_BYTES);
    if (!mem)
        return FENTA_ENOMEM;
    stack_t ss = {.ss_sp = mem, .ss_size = ALTSTACK_BYTES, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        free(mem);
        return FENTA_EINVAL;
    }
    me.altstack = mem;
    return 0;
}

void crashlog_thread_leave(void)
{
    me.busy = 0;
    me.journal1 = 0;
    if (me.altstack) {
        stack_t ss = {.ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
        free(me.altstack);
        me.altstack = NULL;
    }
}

/* ---- the handler (async-signal-safe from here to the handler's end) ----- */

typedef struct {
    char *p;    /* buffer */
    size_t len; /* used */
    size_t cap; /* usable (one byte is kept for the newline) */
} out_t;

static void out_chr(out_t *o, char c)
{
    if (o->len < o->cap)
        o->p[o->len++] = c;
}

static void out_str(out_t *o, const char *s)
{
    while (*s)
        out_chr(o, *s++);
}

static void out_hex64(out_t *o, uint64_t v)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 60; i >= 0; i -= 4)
        out_chr(o, hex[(v >> i) & 15]);
}

static void out_u64(out_t *o, uint64_t v)
{
    char d[20];
    int n = 0;
    do
        d[n++] = (char)('0' + v % 10);
    while (v /= 10);
    while (n)
        out_chr(o, d[--n]);
}

/* Percent-encodes the bytes that would break a space-separated line. */
static void out_pct(out_t *o, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p == '%' || *p >= 0x7f) {
            out_chr(o, '%');
            out_chr(o, hex[*p >> 4]);
            out_chr(o, hex[*p & 15]);
        } else {
            out_chr(o, (char)*p);
        }
    }
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* nowhere left to report it */
        buf += n;
        len -= (size_t)n;
    }
}

/* A signal from kill(2) or sigqueue(3) by another process says nothing about
 * the message this thread holds (the kernel picked the thread). A fault
 * (si_code > 0) or our own raise/abort (SI_TKILL from this pid) does. */
static int sent_from_outside(const siginfo_t *si)
{
    return si && si->si_code <= 0 && si->si_pid != getpid();
}

static void report(int sig, const siginfo_t *si)
{
    const char *name = crashlog_signame(sig);
    /* A child forked by a handler inherits the slot, the handler and the
     * fds: its crash is not ours (a decoder crash in a child fails its
     * stage), so it names nothing and writes to no journal. */
    pid_t pid = getpid();
    int ours = !me.journal1 || journals[me.journal1 - 1].owner == pid;
    int named = ours && me.busy && !sent_from_outside(si);
    char id[ID_STR_LEN + 1] = "-";
    if (named)
        id_to_str(&me.msg_id, id);
    int64_t now = clock_now_ms();
    char line[LINE_BYTES];

    for (int j = 0; j < CRASHLOG_MAX_OPEN; j++) {
        if (me.journal1 && j != me.journal1 - 1)
            continue;
        int fd = atomic_load(&journals[j].fd1) - 1;
        if (fd < 0 || journals[j].owner != pid)
            continue;
        out_t o = {.p = line, .cap = sizeof line - 1};
        out_str(&o, "v1 boot=");
        out_str(&o, journals[j].boot);
        out_str(&o, " at=");
        out_u64(&o, now < 0 ? 0 : (uint64_t)now);
        out_str(&o, " sig=");
        out_str(&o, name ? name : "SIG?");
        out_str(&o, " pid=");
        out_u64(&o, (uint64_t)pid);
        out_str(&o, " fp=");
        named ? out_hex64(&o, me.fp) : out_chr(&o, '-');
        out_str(&o, " msg=");
        out_str(&o, id);
        out_str(&o, " actor=");
        named ? out_pct(&o, me.actor) : out_chr(&o, '-');
        out_str(&o, " type=");
        named ? out_pct(&o, me.type) : out_chr(&o, '-');
        line[o.len++] = '\n';
        write_all(fd, line, o.len);
        fdatasync(fd); /* best effort: the line is what the next start counts */
    }

    char from[24] = "", *f = from + sizeof from - 1;
    if (si && sent_from_outside(si)) {
        uint64_t v = (uint64_t)si->si_pid;
        do
            *--f = (char)('0' + v % 10);
        while ((v /= 10) && f > from);
    }
    const char *kv[8] = {"signal", name ? name : "SIG?"};
    int k = 2;
    if (named) {
        kv[k++] = "type";
        kv[k++] = me.type;
    } else if (*f) {
        kv[k++] = "sent_by_pid";
        kv[k++] = f;
    }
    kv[k] = NULL;
    log_ctx_t ctx = {.actor = named ? me.actor : NULL,
                     .msg_id = named ? id : NULL,
                     .corr = named && me.corr[0] ? me.corr : NULL};
    size_t n = log_format(line, sizeof line, LOG_ERROR, &ctx,
                          named ? "fatal signal while handling a message: the process dies"
                                : "fatal signal outside any message handler: the process dies",
                          kv);
    write_all(log_fd(), line, n);
}

/* Dies of sig: the disposition found before ours runs first (AddressSanitizer
 * prints its report there and aborts; another crash reporter does its work),
 * then the default one, so the exit status and a core say what happened. */
static void die(int sig, siginfo_t *si, void *uc)
{
    for (size_t i = 0; i < NFATAL; i++) {
        if (fatal[i].signo != sig)
            continue;
        const struct sigaction *p = &prev[i];
        if (p->sa_flags & SA_SIGINFO) {
            if (p->sa_sigaction)
                p->sa_sigaction(sig, si, uc);
        } else if (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN) {
            p->sa_handler(sig);
        }
    }
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    /* sig is blocked while we run: it is delivered, with the default action,
     * as the handler returns. A fault would fault again on return anyway;
     * a raise()d signal (abort) would not. */
    raise(sig);
}

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;
    /* Once per thread: the previous handler may abort() (ASan with
     * abort_on_error), which comes back here as SIGABRT. */
    if (!me.crashing) {
        me.crashing = 1;
        report(sig, si);
    }
    die(sig, si, uc);
    errno = saved;
}

/* ---- open, close, read ---------------------------------------------------- */

/* reg_lock held. Installed once for the process while any journal is open.
 * Under AddressSanitizer, ASan's own SEGV handler was installed at program
 * start, before any runtime: ours replaces it and chains to it (die), so the
 * ASan pass of the suite still gets its reports and the journal its line. */
static void install(void)
{
    struct sigaction sa = {.sa_sigaction = on_fatal, .sa_flags = SA_SIGINFO | SA_ONSTACK};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NFATAL; i++)
        sigaddset(&sa.sa_mask, fatal[i].signo); /* two faults at once report once */
    for (size_t i = 0; i < NFATAL; i++)
        sigaction(fatal[i].signo, &sa, &prev[i]);
}

static void uninstall(void)
{
    for (size_t i = 0; i < NFATAL; i++)
        sigaction(fatal[i].signo, &prev[i], NULL);
}

crashlog_t *crashlog_open(const char *dir, int *err)
{
    int rc = FENTA_ENOMEM;
    crashlog_t *self = calloc(1, sizeof *self);
    if (!self || asprintf(&self->path, "%s/%s", dir, CRASHLOG_FILE) < 0) {
        if (self)
            self->path = NULL;
        goto fail;
    }
    self->fd = open(self->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (self->fd < 0) {
        log_msg(LOG_ERROR, NULL, "cannot open the crash journal %s: %s", self->path,
                strerror(errno));
        rc = FENTA_EIO;
        goto fail;
    }
    id_new(&self->boot);
    pthread_mutex_lock(&reg_lock);
    self->slot = -1;
    for (int j = 0; j < CRASHLOG_MAX_OPEN && self->slot < 0; j++)
        if (atomic_load(&journals[j].fd1) == 0)
            self->slot = j;
    if (self->slot >= 0) {
        id_to_str(&self->boot, journals[self->slot].boot);
        journals[self->slot].owner = getpid();
        atomic_store(&journals[self->slot].fd1, self->fd + 1);
        if (nopen++ == 0)
            install();
    }
    pthread_mutex_unlock(&reg_lock);
    if (self->slot < 0) {
        log_msg(LOG_ERROR, NULL, "more than %d crash journals open in one process",
                CRASHLOG_MAX_OPEN);
        close(self->fd);
        rc = FENTA_ELIMIT;
        goto fail;
    }
    return self;
fail:
    if (err)
        *err = rc;
    if (self)
        free(self->path);
    free(self);
    return NULL;
}

void crashlog_destroy(crashlog_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    crashlog_t *self = *self_p;
    pthread_mutex_lock(&reg_lock);
    atomic_store(&journals[self->slot].fd1, 0);
    if (--nopen == 0)
        uninstall();
    pthread_mutex_unlock(&reg_lock);
    close(self->fd);
    free(self->path);
    free(self);
    *self_p = NULL;
}

const char *crashlog_path(const crashlog_t *self)
{
    return self->path;
}

const fenta_id_t *crashlog_boot(const crashlog_t *self)
{
    return &self->boot;
}

/* Percent-decodes the field s (in place: it is the line's own copy) into out
 * (cap bytes with the NUL); -1 if malformed, with a NUL, or too long. */
static int pct_decode(char *s, char *out, size_t cap)
{
    long n = strutil_pct_decode(s, strlen(s), s, 0);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    memcpy(out, s, (size_t)n + 1);
    return 0;
}

/* One line (without its newline) into e; -1 when it is not a v1 line with
 * boot, at, sig, fp and msg. */
static int parse_line(char *line, crashlog_entry_t *e)
{
    memset(e, 0, sizeof *e);
    char *save = NULL, *tok = strtok_r(line, " ", &save);
    if (!tok || strcmp(tok, "v1") != 0)
        return -1;
    unsigned have = 0;
    while ((tok = strtok_r(NULL, " ", &save))) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return -1;
        *eq = 0;
        const char *k = tok;
        char *v = eq + 1;
        if (strcmp(k, "boot") == 0) {
            if (id_from_str(v, &e->boot) != 0)
                return -1;
            have |= 1;
        } else if (strcmp(k, "at") == 0) {
            char *end;
            e->at_ms = strtoll(v, &end, 10);
            if (*end || end == v)
                return -1;
            have |= 2;
        } else if (strcmp(k, "sig") == 0) {
            if (!(e->signo = crashlog_signo(v)))
                return -1;
            have |= 4;
        } else if (strcmp(k, "fp") == 0) {
            bool none = strcmp(v, "-") == 0;
            char *end = NULL;
            e->fp = none ? 0 : strtoull(v, &end, 16);
            if (!none && (strlen(v) != 16 || *end))
                return -1;
            have |= 16;
        } else if (strcmp(k, "msg") == 0) {
            e->has_msg = strcmp(v, "-") != 0;
            if (e->has_msg && id_from_str(v, &e->msg_id) != 0)
                return -1;
            have |= 8;
        } else if (strcmp(k, "actor") == 0 || strcmp(k, "type") == 0) {
            bool actor = k[0] == 'a';
            if (strcmp(v, "-") != 0 &&
                pct_decode(v, actor ? e->actor : e->type, actor ? sizeof e->actor : sizeof e->type))
                return -1;
        } /* other keys (pid, and any later ones) are for people */
    }
    if (have != 31)
        return -1;
    if (!e->has_msg) {
        e->actor[0] = e->type[0] = 0;
        e->fp = 0;
    }
    return 0;
}

int crashlog_read(crashlog_t *self, int (*cb)(const crashlog_entry_t *e, void *arg), void *arg)
{
    FILE *f = fopen(self->path, "re");
    if (!f)
        return errno == ENOENT ? 0 : FENTA_EIO;
    crashlog_entry_t *e = malloc(sizeof *e);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = e ? 0 : FENTA_ENOMEM;
    while (!rc && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = 0;
        if (n == 0)
            continue;
        if (parse_line(line, e) != 0) {
            log_msg(LOG_WARN, NULL, "crash journal %s: skipped a line it cannot read", self->path);
            continue;
        }
        rc = cb(e, arg);
    }
    free(line);
    free(e);
    fclose(f);
    return rc;
}

int crashlog_clear(crashlog_t *self)
{
    if (ftruncate(self->fd, 0) != 0 || fsync(self->fd) != 0) {
        log_msg(LOG_ERROR, NULL, "cannot empty the crash journal %s: %s", self->path,
                strerror(errno));
        return FENTA_EIO;
    }
    return 0;
}
