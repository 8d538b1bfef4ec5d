/* media_internal.h - what the media modules of actors/ (media_probe,
 * audio_pcm, render_graph) share: FFmpeg's log, kept off stderr, and the
 * wording of errors about a file. */
#ifndef FENTA_MEDIA_INTERNAL_H
#define FENTA_MEDIA_INTERNAL_H

/* Routes FFmpeg's log away from stderr (its lines would interleave with our
 * structured log and say less than the errors we return) into a per-thread
 * buffer holding the last error line. Idempotent and thread-safe. */
void media__log_init(void);

/* The last error FFmpeg logged on this thread ("" if none), and a reset
 * before an operation whose failure should quote it. */
const char *media__last_error(void);
void media__clear_error(void);

/* Writes "media file 'PATH': REASON" into errbuf (when errlen > 0) and
 * returns code (media_probe.c). */
int media__fail(char *errbuf, size_t errlen, const char *path, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
