/* render_graph.c - a timeline's filtergraph run in-process into libx264 and
 * AAC, plus the loudness meter, sample reader and thumbnail the edit and
 * export stages need. See render_graph.h. */
#include "actors/media/render_graph.h"
#include "actors/media/media_internal.h"
#include "runtime/clock.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include "runtime/vec.h"

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AUDIO_RATE 48000

/* ---- FFmpeg's log ------------------------------------------------------------ */

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static __thread char last_error[512];

static void log_cb(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > AV_LOG_ERROR)
        return;
    char line[512];
    int prefix = 1;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &prefix);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' '))
        line[--n] = '\0';
    if (n > 0)
        memcpy(last_error, line, n + 1);
}

static void install_log(void)
{
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(log_cb);
}

void media__log_init(void)
{
    pthread_once(&log_once, install_log);
}

const char *media__last_error(void)
{
    return last_error;
}

void media__clear_error(void)
{
    last_error[0] = '\0';
}

/* Adds FFmpeg's last logged error, when there is one, after the message
 * fenta_fail wrote; returns rc. */
static int with_av_reason(char *errbuf, size_t errlen, int rc)
{
    size_t n = errbuf && errlen > 0 ? strlen(errbuf) : 0;
    if (last_error[0] && n + 1 < errlen)
        snprintf(errbuf + n, errlen - n, " (%s)", last_error);
    return rc;
}
#define fail(errbuf, errlen, rc, ...)                                                              \
    with_av_reason(errbuf, errlen, fenta_fail(errbuf, errlen, rc, __VA_ARGS__))

static int av_to_fenta(int averr)
{
    if (averr == AVERROR(ENOMEM))
        return FENTA_ENOMEM;
    if (averr == AVERROR(EIO) || averr == AVERROR(ENOSPC))
        return FENTA_EIO;
    return FENTA_EINVAL;
}

static double now_s(void)
{
    return (double)clock_mono_us() / 1e6;
}

/* ---- the graph ------------------------------------------------------------------ */

typedef struct graph {
    AVFilterGraph *graph;
    AVFilterContext *vsink; /* NULL for audio-only graphs */
    AVFilterContext *asink;
} graph_t;

static AVFilterInOut *sink_pad(const char *label, AVFilterContext *ctx, AVFilterInOut *next)
{
    AVFilterInOut *io = avfilter_inout_alloc();
    if (!io)
        return NULL;
    io->name = av_strdup(label);
    io->filter_ctx = ctx;
    io->pad_idx = 0;
    io->next = next;
    return io;
}

typedef enum { METER_NONE, METER_LOUDNESS, METER_PEAK } meter_mode_t;

/* Parses desc with its [vout] (when video) and [aout] connected to sinks;
 * meter puts an EBU R128 meter before the audio sink (METER_PEAK also finds
 * the true peak, which oversamples 4x and triples the meter's cost). */
static int graph_open(graph_t *g, const char *desc, bool video, meter_mode_t meter, char *errbuf,
                      size_t errlen)
{
    media__log_init();
    media__clear_error();
    memset(g, 0, sizeof *g);
    g->graph = avfilter_graph_alloc();
    if (!g->graph)
        return fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    int ret;
    if (video && (ret = avfilter_graph_create_filter(&g->vsink, avfilter_get_by_name("buffersink"),
                                                     "vout", NULL, NULL, g->graph)) < 0)
        return fail(errbuf, errlen, av_to_fenta(ret), "cannot create the video sink");
    if ((ret = avfilter_graph_create_filter(&g->asink, avfilter_get_by_name("abuffersink"), "aout",
                                            NULL, NULL, g->graph)) < 0)
        return fail(errbuf, errlen, av_to_fenta(ret), "cannot create the audio sink");
    AVFilterContext *atarget = g->asink;
    if (meter) {
        AVFilterContext *m = NULL;
        if ((ret = avfilter_graph_create_filter(
                 &m, avfilter_get_by_name("ebur128"), "meter",
                 meter == METER_PEAK ? "metadata=1:peak=true" : "metadata=1", NULL, g->graph)) <
                0 ||
            (ret = avfilter_link(m, 0, g->asink, 0)) < 0)
            return fail(errbuf, errlen, av_to_fenta(ret), "cannot create the loudness meter");
        atarget = m;
    }
    AVFilterInOut *ins = sink_pad("aout", atarget, NULL);
    if (ins && video)
        ins = sink_pad("vout", g->vsink, ins);
    AVFilterInOut *outs = NULL;
    if (!ins)
        return fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    ret = avfilter_graph_parse_ptr(g->graph, desc, &ins, &outs, NULL);
    bool dangling = ret >= 0 && (ins || outs);
    avfilter_inout_free(&ins);
    avfilter_inout_free(&outs);
    if (ret < 0)
        return fail(errbuf, errlen, av_to_fenta(ret), "the render graph does not parse");
    if (dangling)
        return fail(errbuf, errlen, FENTA_EINVAL, "the render graph has unconnected pads");
    if ((ret = avfilter_graph_config(g->graph, NULL)) < 0)
        return fail(errbuf, errlen, av_to_fenta(ret), "the render graph cannot be set up");
    return 0;
}

static void graph_close(graph_t *g)
{
    avfilter_graph_free(&g->graph);
}

/* ---- encoding -------------------------------------------------------------------- */

typedef struct enc {
    AVFormatContext *oc;
    AVCodecContext *venc, *aenc;
    AVStream *vst, *ast;
    AVPacket *pkt;
} enc_t;

static int write_packets(enc_t *e, AVCodecContext *c, AVStream *st)
{
    int ret;
    while ((ret = avcodec_receive_packet(c, e->pkt)) == 0) {
        av_packet_rescale_ts(e->pkt, c->time_base, st->time_base);
        e->pkt->stream_index = st->index;
        if ((ret = av_interleaved_write_frame(e->oc, e->pkt)) < 0)
            return ret;
    }
    return ret == AVERROR(EAGAIN) || ret == AVERROR_EOF ? 0 : ret;
}

static int open_encoders(enc_t *e, const char *tmp, const render_encode_opts_t *o,
                         AVFilterContext *asink, char *errbuf, size_t errlen)
{
    int ret = avformat_alloc_output_context2(&e->oc, NULL, "mp4", tmp);
    if (ret < 0)
        return fail(errbuf, errlen, av_to_fenta(ret), "cannot create the mp4 muxer");
    const AVCodec *x264 = avcodec_find_encoder_by_name("libx264");
    const AVCodec *aac = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!x264 || !aac)
        return fail(errbuf, errlen, FENTA_EINVAL, "libx264 or the AAC encoder is not available");
    e->venc = avcodec_alloc_context3(x264);
    e->aenc = avcodec_alloc_context3(aac);
    e->pkt = av_packet_alloc();
    e->vst = avformat_new_stream(e->oc, NULL);
    e->ast = avformat_new_stream(e->oc, NULL);
    if (!e->venc || !e->aenc || !e->pkt || !e->vst || !e->ast)
        return fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");

    AVCodecContext *v = e->venc;
    v->width = o->width;
    v->height = o->height;
    v->pix_fmt = AV_PIX_FMT_YUV420P;
    v->time_base = (AVRational){1, o->fps};
    v->framerate = (AVRational){o->fps, 1};
    v->sample_aspect_ratio = (AVRational){1, 1};
    v->gop_size = 2 * o->fps;
    if (e->oc->oformat->flags & AVFMT_GLOBALHEADER)
        v->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *vo = NULL;
    char crf[16];
    snprintf(crf, sizeof crf, "%d", o->crf);
    av_dict_set(&vo, "preset", o->preset ? o->preset : "veryfast", 0);
    av_dict_set(&vo, "crf", crf, 0);
    ret = avcodec_open2(v, x264, &vo);
    av_dict_free(&vo);
    if (ret < 0)
        return fail(errbuf, errlen, av_to_fenta(ret), "cannot open libx264");

    AVCodecContext *a = e->aenc;
    a->sample_fmt = AV_SAMPLE_FMT_FLTP;
    a->sample_rate = AUDIO_RATE;
    av_channel_layout_default(&a->ch_layout, 2);
    a->bit_rate = (int64_t)(o->audio_kbps > 0 ? o->audio_kbps : 192) * 1000;
    a->time_base = (AVRational){1, AUDIO_RATE};
    if (e->oc->oformat->flags & AVFMT_GLOBALHEADER)
        a->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((ret = avcodec_open2(a, aac, NULL)) < 0)
        return fail(errbuf, errlen, av_to_fenta(ret), "cannot open the AAC encoder");
    /* The encoder takes frames of exactly frame_size samples. */
    av_buffersink_set_frame_size(asink, (unsigned)a->frame_size);

    if ((ret = avcodec_parameters_from_context(e->vst->codecpar, v)) < 0 ||
        (ret = avcodec_parameters_from_context(e->ast->codecpar, a)) < 0)
        return fail(errbuf, errlen, av_to_fenta(ret), "cannot set stream parameters");
    e->vst->time_base = v->time_base;
    e->ast->time_base = a->time_base;
    e->vst->avg_frame_rate = v->framerate;
    if ((ret = avio_open(&e->oc->pb, tmp, AVIO_FLAG_WRITE)) < 0)
        return fail(errbuf, errlen, FENTA_EIO, "cannot create '%s': %s", tmp, av_err2str(ret));
    AVDictionary *mo = NULL;
    /* moov before mdat: a player (or a browser) can start before the whole
     * file has arrived. */
    av_dict_set(&mo, "movflags", "+faststart", 0);
    ret = avformat_write_header(e->oc, &mo);
    av_dict_free(&mo);
    if (ret < 0)
        return fail(errbuf, errlen, av_to_fenta(ret), "cannot write the mp4 header");
    return 0;
}

static void close_encoders(enc_t *e)
{
    avcodec_free_context(&e->venc);
    avcodec_free_context(&e->aenc);
    av_packet_free(&e->pkt);
    if (e->oc) {
        avio_closep(&e->oc->pb);
        avformat_free_context(e->oc);
        e->oc = NULL;
    }
}

/* fsyncs the file and renames it into place, then fsyncs the folder. */
static int commit_file(const char *tmp, const char *path, char *errbuf, size_t errlen)
{
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return fail(errbuf, errlen, FENTA_EIO, "cannot sync '%s': %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0 || fsutil_sync_dir_of(path) != 0)
        return fail(errbuf, errlen, FENTA_EIO, "cannot rename '%s': %s", tmp, strerror(errno));
    return 0;
}

/* Sends one frame (NULL flushes) and writes what comes out. */
static int encode(enc_t *e, AVCodecContext *c, AVStream *st, AVFrame *f)
{
    int ret = avcodec_send_frame(c, f);
    if (ret < 0 && ret != AVERROR_EOF)
        return ret;
    return write_packets(e, c, st);
}

/* The graph runs on its own thread and hands frames to the encoding thread
 * through this bounded queue: filtering (decoding, scaling, captions) then
 * overlaps with x264's own work instead of alternating with it, which is
 * what a single-threaded loop (and the ffmpeg 5.1 command line) does. */
#define QUEUE_CAP 8

typedef struct queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    AVFrame *frames[QUEUE_CAP];
    bool video[QUEUE_CAP];
    size_t head, len;
    bool eof;      /* the graph thread is done (ok or failed) */
    bool stop;     /* the encoder gave up: the graph thread must stop */
    int rc;        /* the graph thread's result */
    char err[512]; /* and its message */
    graph_t *g;
    const volatile int *cancel;
} queue_t;

/* Pulls frames from the sink that is behind, so neither encoder's queue
 * (nor the muxer's interleaving buffer) grows with the video's length. */
static void *graph_thread(void *arg)
{
    queue_t *q = arg;
    media__clear_error();
    AVRational vtb = av_buffersink_get_time_base(q->g->vsink);
    AVRational atb = av_buffersink_get_time_base(q->g->asink);
    bool vdone = false, adone = false;
    int64_t vnext = 0, anext = 0;
    int rc = 0;
    char err[512] = "";
    while (!(vdone && adone)) {
        if (q->cancel && *q->cancel) {
            rc = fail(err, sizeof err, FENTA_ECANCELLED, "render cancelled");
            break;
        }
        bool video = !vdone && (adone || vnext <= anext);
        AVFrame *f = av_frame_alloc();
        if (!f) {
            rc = fail(err, sizeof err, FENTA_ENOMEM, "out of memory");
            break;
        }
        int ret = av_buffersink_get_frame(video ? q->g->vsink : q->g->asink, f);
        if (ret == AVERROR_EOF) {
            av_frame_free(&f);
            *(video ? &vdone : &adone) = true;
            continue;
        }
        if (ret < 0) {
            av_frame_free(&f);
            rc = fail(err, sizeof err, av_to_fenta(ret), "the render graph failed at %.2f s",
                      (double)(video ? vnext : anext) / 1e6);
            break;
        }
        if (video)
            vnext = av_rescale_q(f->pts, vtb, AV_TIME_BASE_Q);
        else
            anext = av_rescale_q(f->pts, atb, AV_TIME_BASE_Q);
        pthread_mutex_lock(&q->lock);
        while (q->len == QUEUE_CAP && !q->stop)
            pthread_cond_wait(&q->cond, &q->lock);
        bool stop = q->stop;
        if (!stop) {
            size_t slot = (q->head + q->len) % QUEUE_CAP;
            q->frames[slot] = f;
            q->video[slot] = video;
            q->len++;
            pthread_cond_broadcast(&q->cond);
        }
        pthread_mutex_unlock(&q->lock);
        if (stop) {
            av_frame_free(&f);
            break;
        }
    }
    pthread_mutex_lock(&q->lock);
    q->eof = true;
    q->rc = rc;
    memcpy(q->err, err, sizeof err);
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/* Encodes what the graph thread queues until it is done. */
static int encode_queue(queue_t *q, enc_t *e, const render_encode_opts_t *o,
                        render_encode_stats_t *local, char *errbuf, size_t errlen)
{
    AVRational vtb = av_buffersink_get_time_base(q->g->vsink);
    AVRational atb = av_buffersink_get_time_base(q->g->asink);
    int64_t step = o->fps > 1 ? o->fps / 2 : 1;
    for (;;) {
        pthread_mutex_lock(&q->lock);
        while (q->len == 0 && !q->eof)
            pthread_cond_wait(&q->cond, &q->lock);
        if (q->len == 0) {
            int rc = q->rc;
            if (rc && errbuf && errlen)
                snprintf(errbuf, errlen, "%s", q->err);
            pthread_mutex_unlock(&q->lock);
            return rc;
        }
        AVFrame *f = q->frames[q->head];
        bool video = q->video[q->head];
        q->head = (q->head + 1) % QUEUE_CAP;
        q->len--;
        pthread_cond_broadcast(&q->cond);
        pthread_mutex_unlock(&q->lock);
        int ret;
        if (video) {
            f->pts = av_rescale_q(f->pts, vtb, e->venc->time_base);
            f->pict_type = AV_PICTURE_TYPE_NONE;
            ret = encode(e, e->venc, e->vst, f);
            local->frames++;
            if (o->progress && local->frames % step == 0)
                o->progress(o->arg, local->frames, o->total_frames);
        } else {
            f->pts = av_rescale_q(f->pts, atb, e->aenc->time_base);
            local->audio_samples += f->nb_samples;
            ret = encode(e, e->aenc, e->ast, f);
        }
        av_frame_free(&f);
        if (ret < 0)
            return fail(errbuf, errlen, av_to_fenta(ret), "encoding failed at frame %" PRId64,
                        local->frames);
    }
}

int render_graph_encode(const char *desc, const char *out_path, const render_encode_opts_t *o,
                        render_encode_stats_t *st, char *errbuf, size_t errlen)
{
    double t0 = now_s();
    render_encode_stats_t local = {0};
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.part", out_path) >= sizeof tmp)
        return fail(errbuf, errlen, FENTA_EINVAL, "output path too long");
    graph_t g = {0};
    enc_t e = {0};
    int rc = graph_open(&g, desc, true, METER_NONE, errbuf, errlen);
    if (rc == 0)
        rc = open_encoders(&e, tmp, o, g.asink, errbuf, errlen);
    if (rc == 0) {
        queue_t q = {.g = &g, .cancel = o->cancel};
        pthread_mutex_init(&q.lock, NULL);
        pthread_cond_init(&q.cond, NULL);
        pthread_t th;
        if (pthread_create(&th, NULL, graph_thread, &q) != 0) {
            rc = fail(errbuf, errlen, FENTA_ENOMEM, "cannot start the graph thread");
        } else {
            rc = encode_queue(&q, &e, o, &local, errbuf, errlen);
            pthread_mutex_lock(&q.lock);
            q.stop = true;
            pthread_cond_broadcast(&q.cond);
            pthread_mutex_unlock(&q.lock);
            pthread_join(th, NULL);
            while (q.len > 0) {
                av_frame_free(&q.frames[q.head]);
                q.head = (q.head + 1) % QUEUE_CAP;
                q.len--;
            }
        }
        pthread_cond_destroy(&q.cond);
        pthread_mutex_destroy(&q.lock);
    }
    int ret;
    if (rc == 0 && ((ret = encode(&e, e.venc, e.vst, NULL)) < 0 ||
                    (ret = encode(&e, e.aenc, e.ast, NULL)) < 0))
        rc = fail(errbuf, errlen, av_to_fenta(ret), "encoder flush failed");
    if (rc == 0 && av_write_trailer(e.oc) < 0)
        rc = fail(errbuf, errlen, FENTA_EIO, "cannot finish '%s'", tmp);
    close_encoders(&e);
    if (rc == 0)
        rc = commit_file(tmp, out_path, errbuf, errlen);
    else
        unlink(tmp);
    graph_close(&g);
    local.seconds = now_s() - t0;
    if (st)
        *st = local;
    if (rc == 0 && o->progress)
        o->progress(o->arg, local.frames, o->total_frames);
    return rc;
}

/* ---- audio-only graphs ---------------------------------------------------------- */

typedef int (*frame_fn)(void *arg, const AVFrame *f);

static int drain_audio(const char *desc, meter_mode_t meter, frame_fn fn, void *arg, char *errbuf,
                       size_t errlen)
{
    graph_t g = {0};
    AVFrame *frame = av_frame_alloc();
    int rc = frame ? graph_open(&g, desc, false, meter, errbuf, errlen)
                   : fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
    while (rc == 0) {
        int ret = av_buffersink_get_frame(g.asink, frame);
        if (ret == AVERROR_EOF)
            break;
        if (ret < 0) {
            rc = fail(errbuf, errlen, av_to_fenta(ret), "the audio graph failed");
            break;
        }
        rc = fn(arg, frame);
        av_frame_unref(frame);
    }
    av_frame_free(&frame);
    graph_close(&g);
    return rc;
}

typedef struct meter {
    double lufs, peak;
} meter_t;

static int meter_frame(void *arg, const AVFrame *f)
{
    meter_t *m = arg;
    const AVDictionaryEntry *e = av_dict_get(f->metadata, "lavfi.r128.I", NULL, 0);
    if (e)
        m->lufs = strtod(e->value, NULL);
    /* The per-channel true peaks of the frame, as linear amplitudes (the
     * meter prints dB only in its log); the maximum over the whole graph is
     * the true peak. */
    const AVDictionaryEntry *p = NULL;
    while ((p = av_dict_get(f->metadata, "lavfi.r128.true_peaks_ch", p, AV_DICT_IGNORE_SUFFIX))) {
        double v = strtod(p->value, NULL);
        if (v > m->peak)
            m->peak = v;
    }
    return 0;
}

int render_graph_loudness(const char *desc, double *lufs, double *true_peak_db, char *errbuf,
                          size_t errlen)
{
    meter_t m = {.lufs = -70, .peak = 0};
    int rc = drain_audio(desc, true_peak_db ? METER_PEAK : METER_LOUDNESS, meter_frame, &m, errbuf,
                         errlen);
    if (rc == 0) {
        *lufs = m.lufs < -70 || isnan(m.lufs) ? -70 : m.lufs;
        if (true_peak_db)
            *true_peak_db = m.peak > 0 ? 20 * log10(m.peak) : -INFINITY;
    }
    return rc;
}

/* render_graph_samples' output, mixed down to mono as it arrives. */
typedef struct pcm {
    float *s;      /* the samples so far; handed to the caller */
    size_t n, cap; /* samples in s, and its room (vec_reserve) */
} pcm_t;

static int pcm_frame(void *arg, const AVFrame *f)
{
    pcm_t *p = arg;
    if (f->format != AV_SAMPLE_FMT_FLTP || f->ch_layout.nb_channels < 1)
        return FENTA_EINVAL;
    if (vec_reserve(p->s, p->cap, p->n + (size_t)f->nb_samples) != 0)
        return FENTA_ENOMEM;
    int ch = f->ch_layout.nb_channels;
    for (int i = 0; i < f->nb_samples; i++) {
        float sum = 0;
        for (int c = 0; c < ch; c++)
            sum += ((const float *)f->extended_data[c])[i];
        p->s[p->n++] = sum / (float)ch;
    }
    return 0;
}

int render_graph_samples(const char *desc, float **samples, size_t *n, char *errbuf, size_t errlen)
{
    pcm_t p = {0};
    if (errbuf && errlen)
        errbuf[0] = '\0';
    int rc = drain_audio(desc, METER_NONE, pcm_frame, &p, errbuf, errlen);
    if (rc == FENTA_EINVAL && errbuf && errlen && !errbuf[0])
        snprintf(errbuf, errlen, "the audio graph must end in 48 kHz float planar audio");
    if (rc) {
        free(p.s);
        return rc;
    }
    *samples = p.s;
    *n = p.n;
    return 0;
}

/* ---- thumbnail ------------------------------------------------------------------ */

static int write_jpeg(const AVFrame *src, int max_width, const char *jpg_path, char *errbuf,
                      size_t errlen)
{
    int w = src->width, h = src->height;
    if (max_width > 0 && w > max_width) {
        h = (int)((int64_t)h * max_width / w) & ~1;
        w = max_width & ~1;
    }
    const AVCodec *mj = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *c = mj ? avcodec_alloc_context3(mj) : NULL;
    AVFrame *dst = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    struct SwsContext *sws = NULL;
    int rc = 0, ret;
    if (!c || !dst || !pkt) {
        rc = fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
        goto out;
    }
    c->width = w;
    c->height = h;
    /* Full-range YUV, as JPEG viewers expect. */
    c->pix_fmt = AV_PIX_FMT_YUVJ420P;
    c->time_base = (AVRational){1, 25};
    c->flags |= AV_CODEC_FLAG_QSCALE;
    c->global_quality = FF_QP2LAMBDA * 3;
    if ((ret = avcodec_open2(c, mj, NULL)) < 0) {
        rc = fail(errbuf, errlen, av_to_fenta(ret), "cannot open the JPEG encoder");
        goto out;
    }
    dst->format = AV_PIX_FMT_YUVJ420P;
    dst->width = w;
    dst->height = h;
    sws = sws_getContext(src->width, src->height, src->format, w, h, AV_PIX_FMT_YUVJ420P,
                         SWS_BICUBIC, NULL, NULL, NULL);
    if (!sws || av_frame_get_buffer(dst, 0) < 0) {
        rc = fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
        goto out;
    }
    sws_scale(sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height, dst->data,
              dst->linesize);
    dst->pts = 0;
    if ((ret = avcodec_send_frame(c, dst)) < 0 || (ret = avcodec_send_frame(c, NULL)) < 0 ||
        (ret = avcodec_receive_packet(c, pkt)) < 0) {
        rc = fail(errbuf, errlen, av_to_fenta(ret), "JPEG encoding failed");
        goto out;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.part", jpg_path);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(pkt->data, 1, (size_t)pkt->size, f) != (size_t)pkt->size || fclose(f) != 0) {
        rc = fail(errbuf, errlen, FENTA_EIO, "cannot write '%s': %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = commit_file(tmp, jpg_path, errbuf, errlen);
out:
    sws_freeContext(sws);
    av_packet_free(&pkt);
    av_frame_free(&dst);
    avcodec_free_context(&c);
    return rc;
}

int render_thumbnail(const char *video_path, double t, int max_width, const char *jpg_path,
                     char *errbuf, size_t errlen)
{
    media__log_init();
    media__clear_error();
    AVFormatContext *fc = NULL;
    AVCodecContext *dec = NULL;
    AVFrame *frame = av_frame_alloc(), *best = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    int rc = 0, ret;
    if (!frame || !best || !pkt) {
        rc = fail(errbuf, errlen, FENTA_ENOMEM, "out of memory");
        goto out;
    }
    if ((ret = avformat_open_input(&fc, video_path, NULL, NULL)) < 0 ||
        (ret = avformat_find_stream_info(fc, NULL)) < 0) {
        rc = fail(errbuf, errlen, FENTA_EINVAL, "cannot read '%s'", video_path);
        goto out;
    }
    const AVCodec *codec = NULL;
    int vi = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (vi < 0 || !(dec = avcodec_alloc_context3(codec)) ||
        avcodec_parameters_to_context(dec, fc->streams[vi]->codecpar) < 0 ||
        avcodec_open2(dec, codec, NULL) < 0) {
        rc = fail(errbuf, errlen, FENTA_EINVAL, "'%s' has no decodable video", video_path);
        goto out;
    }
    AVStream *st = fc->streams[vi];
    int64_t target = (int64_t)(t / av_q2d(st->time_base));
    av_seek_frame(fc, vi, target, AVSEEK_FLAG_BACKWARD);
    bool have = false, done = false;
    while (!done) {
        ret = av_read_frame(fc, pkt);
        if (ret < 0) {
            avcodec_send_packet(dec, NULL);
        } else if (pkt->stream_index != vi) {
            av_packet_unref(pkt);
            continue;
        } else {
            avcodec_send_packet(dec, pkt);
            av_packet_unref(pkt);
        }
        while (!done && avcodec_receive_frame(dec, frame) == 0) {
            int64_t pts = frame->best_effort_timestamp;
            if (have && pts > target) {
                done = true;
                break;
            }
            av_frame_unref(best);
            av_frame_move_ref(best, frame);
            have = true;
            if (pts >= target)
                done = true;
        }
        if (ret < 0)
            break;
    }
    if (!have) {
        rc = fail(errbuf, errlen, FENTA_EINVAL, "no frame at %.2f s in '%s'", t, video_path);
        goto out;
    }
    rc = write_jpeg(best, max_width, jpg_path, errbuf, errlen);
out:
    av_packet_free(&pkt);
    av_frame_free(&frame);
    av_frame_free(&best);
    avcodec_free_context(&dec);
    avformat_close_input(&fc);
    return rc;
}
