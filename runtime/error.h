/* error.h - the one error vocabulary of Fenta.
 *
 * Every function that can fail returns 0 on success or one of these negative
 * codes. Library codes (MDB_*, zmq errno, msgpack) are converted inside the
 * module that wraps that library; nothing above it sees them. */
#ifndef FENTA_ERROR_H
#define FENTA_ERROR_H
#include <stddef.h>

/* X-macro: the table is the one place a code, its name and its text live. */
#define FENTA_ERRORS(X)                                                                            \
    X(FENTA_ENOMEM, -1, "out of memory")                                                           \
    X(FENTA_EINVAL, -2, "invalid argument")                                                        \
    X(FENTA_EDECODE, -3, "malformed message")                                                      \
    X(FENTA_ESTORE, -4, "mailbox store failure")                                                   \
    X(FENTA_ENOTFOUND, -5, "not found")                                                            \
    X(FENTA_EEXIST, -6, "already exists")                                                          \
    X(FENTA_ESTOPPED, -7, "runtime is stopping")                                                   \
    X(FENTA_EHANDLER, -8, "handler failed")                                                        \
    X(FENTA_ETRANSPORT, -9, "transport failure")                                                   \
    X(FENTA_ETIMEOUT, -10, "timed out")                                                            \
    X(FENTA_EIO, -11, "i/o error")                                                                 \
    X(FENTA_ETOOBIG, -12, "too large")                                                             \
    X(FENTA_EUNAVAILABLE, -13, "service unavailable")                                              \
    X(FENTA_EDENIED, -14, "permission denied")                                                     \
    X(FENTA_EAUTH, -15, "authentication failed")                                                   \
    X(FENTA_ECONFLICT, -16, "conflict")                                                            \
    X(FENTA_ELIMIT, -17, "rate limited")                                                           \
    X(FENTA_ECANCELLED, -18, "cancelled")                                                          \
    X(FENTA_EREFUSED, -19, "refused")

enum fenta_error {
#define FENTA_ERR_ENUM(name, code, text) name = code,
    FENTA_ERRORS(FENTA_ERR_ENUM)
#undef FENTA_ERR_ENUM
};

/* Text for a code; never NULL ("unknown error" for codes not in the table). */
const char *fenta_strerror(int code);

/* Writes printf(fmt, ...) into errbuf (when errbuf is not NULL and errlen >
 * 0) and returns code, for `return fenta_fail(errbuf, errlen, FENTA_EINVAL,
 * "media[%zu]: ...", i);` in functions that report what went wrong. */
int fenta_fail(char *errbuf, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
