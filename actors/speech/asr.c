/* asr.c - pocketsphinx over a decoded recording: find the utterances, decode
 * each, collect the words with their times.
 *
 * What decides the timing and the accuracy, measured on synthetic speech
 * (tests/actors/speech/test_asr.c):
 *  - pocketsphinx's voice activity detection (-remove_silence, on by
 *    default) lets frame numbers count only the frames it kept, so word
 *    times can drift by the length of the pauses (cmusphinx/pocketsphinx#8,
 *    #162). We turn it off and find the pauses ourselves; frame k of an
 *    utterance is then exactly k frames after its first sample, because
 *    ps_start_stream() restarts the count (without it, frames keep counting
 *    from the previous utterance).
 *  - Utterances are fed in chunks (full_utt = FALSE), which normalises the
 *    cepstral mean live, carried from one utterance to the next. Giving each
 *    utterance whole for batch normalisation (the model's feat.params say
 *    -cmn batch) recognised markedly fewer words on short utterances. The
 *    live mean starts at the recording's own mean (see settle()).
 *  - Utterances end at pauses and are cut at 30 s at the latest, which
 *    bounds the decoder's per-utterance memory (its lattice grows with the
 *    utterance) on long recordings. */
#include "actors/speech/asr.h"
#include "actors/media/audio_pcm.h"
#include "runtime/error.h"
#include "runtime/vec.h"

#include <pocketsphinx.h>
#include <sphinxbase/err.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FRAME_SAMPLES (AUDIO_PCM_RATE / 100) /* our 10 ms analysis frame */
#define PAD_FRAMES 30                        /* silence kept before and after each utterance */
#define JOIN_GAP_FRAMES 30                   /* pauses shorter than this never end an utterance */
#define LONG_PAUSE_FRAMES 100                /* pauses this long always do */
#define TARGET_UTT_FRAMES 1000               /* past 10 s, any pause ends the utterance */
#define MAX_UTT_FRAMES 3000                  /* 30 s: cut even without a pause */
#define FLOOR_MARGIN_DB 10.0                 /* speech is this far above the noise floor... */
#define MIN_SPEECH_DB 30.0 /* ...and above this (rms ~30 of 32767: near silence) */
#define CHUNK_SAMPLES 8000 /* fed to the decoder at a time: 0.5 s */
#define CMN_MAX 64         /* longest cepstrum we keep the starting mean of (en-us: 13) */

/* The one loaded decoder and the model directory it came from. */
static pthread_mutex_t model_lock = PTHREAD_MUTEX_INITIALIZER;
static ps_decoder_t *model;
static char model_dir[1024];
/* The model's initial cepstral mean: the fallback when a recording has too
 * little speech to measure its own (see settle). */
static mfcc_t cmn_start[CMN_MAX];
static bool have_cmn_start;
static pthread_once_t quiet_once = PTHREAD_ONCE_INIT;

/* pocketsphinx logs every configuration value and each utterance's
 * statistics to stderr; our error messages say what matters. */
static void quiet_sphinx(void)
{
    err_set_logfp(NULL);
}

/* ---- the model ------------------------------------------------------------ */

/* Checks that dir/name exists (as a directory when want_dir), so a missing
 * model is named instead of surfacing as a NULL from ps_init. */
static int model_part(const char *dir, const char *name, bool want_dir, char *out, size_t cap,
                      char *errbuf, size_t errlen)
{
    int len = snprintf(out, cap, "%s/%s", dir, name);
    if (len < 0 || (size_t)len >= cap)
        return fenta_fail(errbuf, errlen, FENTA_EUNAVAILABLE, "speech model '%s/%s': path too long",
                          dir, name);
    struct stat sb;
    if (stat(out, &sb) != 0)
        return fenta_fail(errbuf, errlen, FENTA_EUNAVAILABLE, "speech model '%s': %s", out,
                          errno == ENOENT ? "missing" : "cannot be read");
    if (want_dir ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode))
        return fenta_fail(errbuf, errlen, FENTA_EUNAVAILABLE, "speech model '%s': not a %s", out,
                          want_dir ? "directory" : "regular file");
    return 0;
}

/* Makes `model` the decoder for dir, loading it if it is not already.
 * Called with model_lock held. */
static int load_model(const char *dir, char *errbuf, size_t errlen)
{
    if (model && strcmp(model_dir, dir) == 0)
        return 0;
    if (strlen(dir) >= sizeof model_dir)
        return fenta_fail(errbuf, errlen, FENTA_EUNAVAILABLE, "speech model '%s': path too long",
                          dir);
    char hmm[1100], lm[1100], dict[1100];
    int rc = model_part(dir, "en-us", true, hmm, sizeof hmm, errbuf, errlen);
    if (rc == 0)
        rc = model_part(dir, "en-us.lm.bin", false, lm, sizeof lm, errbuf, errlen);
    if (rc == 0)
        rc = model_part(dir, "cmudict-en-us.dict", false, dict, sizeof dict, errbuf, errlen);
    if (rc != 0)
        return rc;
    if (model) {
        ps_free(model);
        model = NULL;
    }
    /* -remove_silence no: see the file comment. cmd_ln_init copies the
     * strings, and ps_init takes its own reference to the config. */
    cmd_ln_t *config = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", hmm, "-lm", lm, "-dict", dict,
                                   "-remove_silence", "no", NULL);
    if (!config)
        return fenta_fail(errbuf, errlen, FENTA_EUNAVAILABLE,
                          "speech model '%s': cannot be configured", dir);
    model = ps_init(config);
    cmd_ln_free_r(config);
    if (!model)
        return fenta_fail(errbuf, errlen, FENTA_EUNAVAILABLE,
                          "speech model '%s': cannot be loaded (corrupt or incompatible files)",
                          dir);
    memcpy(model_dir, dir, strlen(dir) + 1);
    feat_t *feat = ps_get_feat(model);
    have_cmn_start = feat && feat->cmn_struct && feat_cepsize(feat) <= CMN_MAX;
    if (have_cmn_start)
        cmn_live_get(feat->cmn_struct, cmn_start);
    return 0;
}

void asr_unload(void)
{
    pthread_mutex_lock(&model_lock);
    if (model) {
        ps_free(model);
        model = NULL;
        model_dir[0] = '\0';
    }
    pthread_mutex_unlock(&model_lock);
}

/* ---- finding the utterances ---------------------------------------------------- */

typedef struct span {
    size_t from; /* first frame */
    size_t to;   /* one past the last frame */
} span_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Level of each 10 ms frame in dB (0 for digital silence, ~90 at full scale). */
static double *frame_levels(const int16_t *pcm, size_t n, size_t nfr)
{
    double *db = malloc(nfr * sizeof *db);
    if (!db)
        return NULL;
    for (size_t f = 0; f < nfr; f++) {
        size_t a = f * FRAME_SAMPLES, b = a + FRAME_SAMPLES < n ? a + FRAME_SAMPLES : n;
        double sum = 0.0;
        for (size_t i = a; i < b; i++)
            sum += (double)pcm[i] * pcm[i];
        db[f] = 10.0 * log10(sum / (double)(b - a) + 1.0);
    }
    return db;
}

/* The quietest frame in [from, to), where a cut hurts the least. */
static size_t quietest(const double *db, size_t from, size_t to)
{
    size_t best = from;
    for (size_t f = from; f < to; f++)
        if (db[f] < db[best])
            best = f;
    return best;
}

/* Appends a speech region to the utterance list, cutting it into pieces of
 * at most MAX_UTT_FRAMES at quiet frames. */
static int push_utt(span_t **v, size_t *nv, size_t *cap, const double *db, span_t s)
{
    for (;;) {
        span_t piece = s;
        if (s.to - s.from > MAX_UTT_FRAMES) {
            size_t room = MAX_UTT_FRAMES - 2 * PAD_FRAMES;
            piece.to = quietest(db, s.from + room / 2, s.from + room) + 1;
        }
        if (vec_reserve(*v, *cap, *nv + 1) != 0)
            return FENTA_ENOMEM;
        (*v)[(*nv)++] = piece;
        if (piece.to >= s.to)
            return 0;
        s.from = piece.to;
    }
}

/* Splits the recording into utterances: speech regions (frames above the
 * noise floor) joined across short pauses, ended by a long pause or, past
 * TARGET_UTT_FRAMES, by any pause; then padded with up to PAD_FRAMES of the
 * surrounding silence, never overlapping. No speech gives *nout = 0. */
static int find_utterances(const int16_t *pcm, size_t n, span_t **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    size_t nfr = (n + FRAME_SAMPLES - 1) / FRAME_SAMPLES;
    double *db = frame_levels(pcm, n, nfr);
    double *sorted = malloc(nfr * sizeof *sorted);
    if (!db || !sorted) {
        free(db);
        free(sorted);
        return FENTA_ENOMEM;
    }
    memcpy(sorted, db, nfr * sizeof *sorted);
    qsort(sorted, nfr, sizeof *sorted, cmp_double);
    double floor_db = sorted[nfr / 10]; /* tenth percentile: the room between words */
    free(sorted);
    double thr = floor_db + FLOOR_MARGIN_DB;
    if (thr < MIN_SPEECH_DB)
        thr = MIN_SPEECH_DB;

    span_t *v = NULL;
    size_t nv = 0, cap = 0;
    int rc = 0;
    bool in_utt = false;
    span_t cur = {0, 0};
    for (size_t f = 0; f < nfr && rc == 0; f++) {
        if (db[f] <= thr)
            continue;
        size_t end = f + 1;
        if (in_utt) {
            size_t gap = f - cur.to;
            bool join = gap < JOIN_GAP_FRAMES ||
                        (gap < LONG_PAUSE_FRAMES && cur.to - cur.from < TARGET_UTT_FRAMES);
            if (join) {
                cur.to = end;
                continue;
            }
            rc = push_utt(&v, &nv, &cap, db, cur);
        }
        cur = (span_t){f, end};
        in_utt = true;
    }
    if (rc == 0 && in_utt)
        rc = push_utt(&v, &nv, &cap, db, cur);
    free(db);
    if (rc != 0) {
        free(v);
        return rc;
    }
    /* Pad into the silence on both sides, at most halfway to the neighbour. */
    for (size_t i = 0; i < nv; i++) {
        size_t lo = i == 0 ? 0 : (v[i - 1].to + v[i].from + 1) / 2;
        size_t hi = i + 1 == nv ? nfr : (v[i].to + v[i + 1].from) / 2;
        size_t from = v[i].from > lo + PAD_FRAMES ? v[i].from - PAD_FRAMES : lo;
        size_t to = v[i].to + PAD_FRAMES < hi ? v[i].to + PAD_FRAMES : hi;
        if (i > 0 && from < v[i - 1].to)
            from = v[i - 1].to;
        v[i].from = from, v[i].to = to;
    }
    *out = v;
    *nout = nv;
    return 0;
}

/* ---- decoding -------------------------------------------------------------------------- */

typedef struct words {
    asr_word_t *v; /* the words so far */
    size_t n;      /* how many */
    size_t cap;    /* room in v */
} words_t;

/* A word that carries no text for captions: silence, breath, noise,
 * sentence markers. */
static bool is_filler(const char *w)
{
    return w[0] == '\0' || w[0] == '<' || w[0] == '[' || (w[0] == '+' && w[1] == '+');
}

/* Appends word w (its "(2)" pronunciation suffix dropped) over [start, end). */
static int add_word(words_t *ws, const char *w, int64_t start, int64_t end)
{
    size_t len = strlen(w);
    if (len > 2 && w[len - 1] == ')') {
        const char *paren = strrchr(w, '(');
        if (paren && paren > w && w + len - 2 > paren &&
            strspn(paren + 1, "0123456789") == (size_t)(w + len - 2 - paren))
            len = (size_t)(paren - w);
    }
    if (vec_reserve(ws->v, ws->cap, ws->n + 1) != 0)
        return FENTA_ENOMEM;
    char *text = strndup(w, len);
    if (!text)
        return FENTA_ENOMEM;
    ws->v[ws->n++] = (asr_word_t){.text = text, .start_ms = start, .end_ms = end};
    return 0;
}

/* Decodes pcm[from, to) (samples) as one utterance and appends its words,
 * timed from the start of the recording. Called with model_lock held. */
static int decode_utt(const int16_t *pcm, size_t from, size_t to, int frate, int64_t audio_ms,
                      words_t *ws)
{
    /* A new stream restarts the frame count: without it frames keep
     * counting from the previous utterance (cmusphinx/pocketsphinx#162). */
    if (ps_start_stream(model) < 0 || ps_start_utt(model) < 0)
        return FENTA_EIO;
    int rc = 0;
    for (size_t at = from; at < to && rc >= 0; at += CHUNK_SAMPLES) {
        size_t len = to - at < CHUNK_SAMPLES ? to - at : CHUNK_SAMPLES;
        rc = ps_process_raw(model, pcm + at, len, FALSE, FALSE);
    }
    if (ps_end_utt(model) < 0 || rc < 0)
        return FENTA_EIO;
    int64_t base_ms = (int64_t)from * 1000 / AUDIO_PCM_RATE;
    for (ps_seg_t *seg = ps_seg_iter(model); seg; seg = ps_seg_next(seg)) {
        const char *w = ps_seg_word(seg);
        if (!w || is_filler(w))
            continue;
        int sf = 0, ef = 0;
        ps_seg_frames(seg, &sf, &ef);
        int64_t start = base_ms + (int64_t)sf * 1000 / frate;
        int64_t end = base_ms + (int64_t)(ef + 1) * 1000 / frate;
        if (end > audio_ms)
            end = audio_ms;
        if (ws->n > 0 && start < ws->v[ws->n - 1].end_ms) /* never overlap the previous word */
            start = ws->v[ws->n - 1].end_ms;
        if (end <= start)
            continue; /* squeezed to nothing at the very end of the audio */
        if (add_word(ws, w, start, end) != 0) {
            ps_seg_free(seg);
            return FENTA_ENOMEM;
        }
    }
    return 0;
}

/* The recording's mean cepstrum over its utterances, computed with the
 * decoder's front end; false when there is too little speech to tell, or
 * the front end's output is not what the feature module normalises. */
static bool recording_mean(const int16_t *pcm, size_t ns, const span_t *utts, size_t nutt,
                           mfcc_t *mean)
{
    enum { ROWS = 64, MIN_FRAMES = 50 };
    fe_t *fe = ps_get_fe(model);
    feat_t *feat = ps_get_feat(model);
    int ncep = fe ? fe_get_output_size(fe) : 0;
    if (!feat || ncep <= 0 || ncep > CMN_MAX || ncep != feat_cepsize(feat))
        return false;
    mfcc_t flat[ROWS * CMN_MAX], *rows[ROWS];
    for (int r = 0; r < ROWS; r++)
        rows[r] = flat + r * ncep;
    double sum[CMN_MAX] = {0};
    long frames = 0;
    for (size_t u = 0; u < nutt; u++) {
        size_t from = utts[u].from * FRAME_SAMPLES, to = utts[u].to * FRAME_SAMPLES;
        const int16 *p = pcm + from;
        size_t left = (to < ns ? to : ns) - from;
        int32 nf = 0, idx = 0;
        fe_start_stream(fe); /* fresh noise statistics, as decode_utt has */
        fe_start_utt(fe);
        for (bool last = false; !last;) {
            nf = ROWS;
            if (left > 0) {
                if (fe_process_frames(fe, &p, &left, rows, &nf, &idx) < 0 || (nf == 0 && left))
                    break;
            } else {
                fe_end_utt(fe, rows[0], &nf);
                last = true;
            }
            for (int32 r = 0; r < nf; r++, frames++)
                for (int k = 0; k < ncep; k++)
                    sum[k] += MFCC2FLOAT(rows[r][k]);
        }
    }
    for (int k = 0; k < ncep; k++)
        mean[k] = FLOAT2MFCC(sum[k] / (double)(frames ? frames : 1));
    return frames >= MIN_FRAMES;
}

/* Puts the decoder in the same state before every recording, so a result
 * depends on the recording alone, not on what the cached decoder heard
 * before, and the first words are not lost:
 *  - the live cepstral mean starts at this recording's own mean: from the
 *    model's average speaker it takes seconds to adapt, and a voice far
 *    from that average lost three words in eight;
 *  - a fixed warm-up utterance (0.3 s of faint, seeded noise) is decoded
 *    and thrown away. Some per-frame state of the search and the Gaussian
 *    selection survives between utterances; without this the times of a
 *    file's second transcription in a process differed by a frame from its
 *    first (measured; tests/actors/speech/test_asr.c checks it).
 * Called with model_lock held. */
static void settle(const int16_t *pcm, size_t ns, const span_t *utts, size_t nutt, int frate)
{
    enum { HUSH = 4800 };
    feat_t *feat = ps_get_feat(model);
    mfcc_t mean[CMN_MAX];
    bool own = recording_mean(pcm, ns, utts, nutt, mean);
    if (!feat || !feat->cmn_struct || (!own && !have_cmn_start))
        return;
    const mfcc_t *start = own ? mean : cmn_start;
    cmn_live_set(feat->cmn_struct, start);
    int16_t hush[HUSH];
    uint32_t x = 1;
    for (size_t k = 0; k < HUSH; k++) {
        x = x * 1103515245u + 12345u;
        hush[k] = (int16_t)((int)((x >> 16) % 17) - 8);
    }
    words_t junk = {0};
    decode_utt(hush, 0, HUSH, frate, INT64_MAX, &junk);
    asr_words_free(&junk.v, junk.n);
    cmn_live_set(feat->cmn_struct, start); /* the warm-up moved it */
}

void asr_words_free(asr_word_t **words, size_t n)
{
    if (!words || !*words)
        return;
    for (size_t i = 0; i < n; i++)
        free((*words)[i].text);
    free(*words);
    *words = NULL;
}

int asr_transcribe(const char *models, const char *path, asr_word_t **words, size_t *n,
                   int64_t *audio_ms, char *errbuf, size_t errlen)
{
    if (errbuf && errlen > 0)
        errbuf[0] = '\0';
    if (words)
        *words = NULL;
    if (n)
        *n = 0;
    if (audio_ms)
        *audio_ms = 0;
    if (!path || !*path || !words || !n || !audio_ms)
        return fenta_fail(errbuf, errlen, FENTA_EINVAL, "asr: no path or no output given");
    pthread_once(&quiet_once, quiet_sphinx);

    int16_t *pcm = NULL;
    size_t ns = 0;
    int rc = audio_pcm_decode(path, &pcm, &ns, errbuf, errlen);
    if (rc != 0)
        return rc;
    int64_t total_ms = (int64_t)ns * 1000 / AUDIO_PCM_RATE;

    span_t *utts = NULL;
    size_t nutt = 0;
    rc = find_utterances(pcm, ns, &utts, &nutt);
    if (rc != 0) {
        audio_pcm_free(&pcm);
        return fenta_fail(errbuf, errlen, rc, "media file '%s': out of memory", path);
    }
    words_t ws = {0};
    if (nutt > 0) { /* silence needs no model */
        const char *dir = models && *models ? models : ASR_DEFAULT_MODEL_DIR;
        pthread_mutex_lock(&model_lock);
        rc = load_model(dir, errbuf, errlen);
        if (rc == 0) {
            int frate = (int)cmd_ln_int32_r(ps_get_config(model), "-frate");
            if (frate <= 0)
                frate = 100;
            settle(pcm, ns, utts, nutt, frate);
            for (size_t i = 0; i < nutt && rc == 0; i++) {
                size_t from = utts[i].from * FRAME_SAMPLES;
                size_t to = utts[i].to * FRAME_SAMPLES < ns ? utts[i].to * FRAME_SAMPLES : ns;
                rc = decode_utt(pcm, from, to, frate, total_ms, &ws);
                if (rc == FENTA_EIO)
                    fenta_fail(errbuf, errlen, rc,
                               "media file '%s': speech decoder failed at %.1f s", path,
                               (double)from / AUDIO_PCM_RATE);
                else if (rc != 0)
                    fenta_fail(errbuf, errlen, rc, "media file '%s': out of memory", path);
            }
        }
        pthread_mutex_unlock(&model_lock);
    }
    free(utts);
    audio_pcm_free(&pcm);
    if (rc != 0) {
        asr_words_free(&ws.v, ws.n);
        return rc;
    }
    *words = ws.v;
    *n = ws.n;
    *audio_ms = total_ms;
    return 0;
}
