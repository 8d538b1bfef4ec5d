/* media_internal.h - what the modules of actors/media/ (media_probe,
 * audio_pcm, render_graph) share: FFmpeg's log, kept off stderr, and the
 * wording of errors about a file. */
#ifndef FENTA_MEDIA_INTERNAL_H
#define FENTA_MEDIA_INTERNAL_H
#include "runtime/error.h"

/* Routes FFmpeg's log away from stderr (its lines would interleave with our
 * structured log and say less than the errors we return) into a per-thread
 * buffer holding the last error line. Idempotent and thread-safe. */
void media__log_init(void);

/* The last error FFmpeg logged on this thread ("" if none), and a reset
 * before an operation whose failure should quote it. */
const char *media__last_error(void);
void media__clear_error(void);

/* Writes "media file 'PATH': REASON" into errbuf (when errlen > 0) and
 * returns code: fenta_fail with the file in front. fmt is a string literal. */
#define media__fail(errbuf, errlen, path, code, fmt, ...)                                          \
    fenta_fail(errbuf, errlen, code, "media file '%s': " fmt, (path), ##__VA_ARGS__)

#endif
