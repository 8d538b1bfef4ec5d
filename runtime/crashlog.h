/* crashlog.h - the crash journal: which message was being handled when a
 * fatal signal killed the process.
 *
 * Every actor runs in one address space, so a handler that dereferences a
 * bad pointer (SIGSEGV, SIGBUS), divides by zero (SIGFPE), runs garbage
 * (SIGILL) or aborts (SIGABRT) takes the whole process down, and at the next
 * start its message, never acknowledged, is replayed into the same crash.
 * This module keeps the evidence that breaks the loop; the runtime counts it
 * (runtime/quarantine.c) and moves a message that crashed the process too
 * often to the dead-letter queue.
 *
 * How: each dispatcher thread says which message it is handling
 * (crashlog_begin/crashlog_end copy the actor, id, type, correlation id and
 * the runtime's fingerprint of the message into fixed thread-local memory). A handler for the five
 * fatal signals then writes ONE line naming the signal and that message (or no message, on a thread
 * that was not handling one) to the journal file, opened O_APPEND at start and fdatasync'd
 * best-effort, and one JSON line in runtime/log's format to the log's fd. It uses write(2) and
 * prebuilt buffers only: no malloc, no locks, no stdio. Then the process dies of the same signal
 * (after the previous handler, e.g. AddressSanitizer's report, has run), so
 * cores and exit statuses stay true.
 *
 * Only the faulting thread's message is named: messages in flight on other
 * threads are innocent. A fatal signal sent from another process (kill -SEGV)
 * names no message either, and SIGKILL cannot be caught: it writes nothing.
 *
 * Journal line (text, one per crash, fields separated by one space):
 *   v1 boot=<ULID> at=<unix ms> sig=SIGSEGV pid=<pid> fp=<16 hex>|- msg=<ULID>|-
 *      actor=<a>|- type=<t>|-
 * (on one line) where boot identifies the process run (so folding a line
 * twice is detectable), fp is the fingerprint the runtime counts crashes
 * under, and actor and type are percent-encoded (bytes <= 0x20, '%', >= 0x7f).
 * The reader skips lines it cannot parse. */
#ifndef FENTA_CRASHLOG_H
#define FENTA_CRASHLOG_H
#include "runtime/envelope.h"
#include "runtime/id.h"
#include <stdbool.h>
#include <stdint.h>

#define CRASHLOG_FILE "crash.journal" /* name of the journal in its directory */
#define CRASHLOG_TYPE_MAX 127         /* bytes of a message type kept (longer is cut) */
#define CRASHLOG_CORR_MAX 63          /* bytes of a correlation id kept */
#define CRASHLOG_MAX_OPEN 16          /* journals open at once in one process */

typedef struct crashlog crashlog_t;

/* One crash read back from the journal. */
typedef struct {
    fenta_id_t boot;                   /* the process run that died (its crashlog_open) */
    int64_t at_ms;                     /* when, Unix ms */
    int signo;                         /* the fatal signal */
    bool has_msg;                      /* the thread was handling a message */
    uint64_t fp;                       /* its fingerprint (0 when !has_msg) */
    fenta_id_t msg_id;                 /* that message (zero when !has_msg) */
    char actor[ENVELOPE_ADDR_MAX + 1]; /* its actor ("" when !has_msg) */
    char type[CRASHLOG_TYPE_MAX + 1];  /* its type ("" when !has_msg) */
} crashlog_entry_t;

/* Opens (creating) dir/crash.journal for appending and installs the fatal
 * signal handlers (once per process, while any journal is open). NULL on
 * failure with *err set when err is not NULL (FENTA_EIO, FENTA_ELIMIT past
 * CRASHLOG_MAX_OPEN journals). */
crashlog_t *crashlog_open(const char *dir, int *err);
/* Closes the journal and NULLs *self_p (accepts NULL); the last one closed
 * puts back the signal handlers that were there before. */
void crashlog_destroy(crashlog_t **self_p);
/* The journal's path (borrowed, valid until destroy). */
const char *crashlog_path(const crashlog_t *self);
/* This process run's id, as written in its lines. */
const fenta_id_t *crashlog_boot(const crashlog_t *self);

/* Calls cb for each well-formed line of the journal, oldest first, until cb
 * returns non-zero (returned). The entry is borrowed for the call. */
int crashlog_read(crashlog_t *self, int (*cb)(const crashlog_entry_t *e, void *arg), void *arg);
/* Empties the journal (truncate and fsync): call it once every line read
 * is folded into durable counts, so the file never grows without bound. */
int crashlog_clear(crashlog_t *self);

/* A dispatcher thread joins self: its crashes go to this journal (a thread
 * that never joined writes to every open journal), and it gets an
 * alternate signal stack if it has none, so a stack overflow in a handler
 * is reported too. crashlog_thread_leave undoes both before the thread
 * ends. */
int crashlog_thread_enter(crashlog_t *self);
void crashlog_thread_leave(void);

/* The calling thread starts or stops handling a message: copies (cut to
 * fit) what the signal handler will name. Cheap: a few hundred bytes of
 * memcpy, no system call. All strings borrowed for the call; corr may be
 * NULL; fp is written back as given. */
void crashlog_begin(const char *actor, const fenta_id_t *msg_id, const char *type, const char *corr,
                    uint64_t fp);
void crashlog_end(void);

/* "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT" (the signals handled);
 * NULL for any other. Async-signal-safe. */
const char *crashlog_signame(int signo);
/* The inverse of crashlog_signame; 0 for an unknown name. */
int crashlog_signo(const char *name);

#endif
