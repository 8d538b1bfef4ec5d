/* signals.c - blocking and waiting for termination signals (see signals.h). */
#include "runtime/signals.h"
#include "runtime/error.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>

static void term_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
}

int signals_block_term(void)
{
    sigset_t set;
    term_set(&set);
    /* A peer closing a socket must be an EPIPE, not a dead process. */
    sigaddset(&set, SIGPIPE);
    return pthread_sigmask(SIG_BLOCK, &set, NULL) == 0 ? 0 : FENTA_EINVAL;
}

int signals_wait_term(void)
{
    sigset_t set;
    term_set(&set);
    int sig = 0;
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}
