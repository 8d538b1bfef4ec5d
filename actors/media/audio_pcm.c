/* audio_pcm.c - decodes one file's first audio stream to 16 kHz mono int16
 * PCM with libavformat, libavcodec and libswresample.
 *
 * The file is first checked by media_probe, so "missing", "empty", "not a
 * media file" and "truncated" read the same here as everywhere else in the
 * media layer; this module adds only what is about audio. */
#include "actors/media/audio_pcm.h"
#include "actors/media/media_internal.h"
#include "actors/media/media_probe.h"
#include "runtime/error.h"
#include "runtime/vec.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Half a second over the limit is allowed for codec priming and container
 * rounding, here and on the announced duration, so a file cut to exactly
 * 30 minutes passes both checks. */
#define SLACK_SECONDS 0.5
#define MAX_SAMPLES ((size_t)((AUDIO_PCM_MAX_SECONDS + SLACK_SECONDS) * AUDIO_PCM_RATE))

/* One decode in progress: the demuxer, the decoder, the resampler and the
 * growing output. */
typedef struct decode {
    const char *path;    /* for messages; borrowed */
    char *errbuf;        /* the caller's message buffer */
    size_t errlen;       /* its size */
    AVFormatContext *fc; /* the open file */
    AVCodecContext *cc;  /* the audio decoder */
    SwrContext *swr;     /* built from the first frame; rebuilt if the input format changes */
    int swr_rate;        /* input sample rate swr was built for */
    int swr_format;      /* input AVSampleFormat swr was built for */
    AVChannelLayout swr_layout; /* input layout swr was built for, as the decoder gave it */
    int16_t *buf;               /* output samples */
    size_t n;                   /* samples in buf */
    size_t cap;                 /* room in buf, in samples */
    unsigned bad_packets;       /* packets or frames the decoder refused */
} decode_t;

static int oom(decode_t *d)
{
    return media__fail(d->errbuf, d->errlen, d->path, FENTA_ENOMEM, "out of memory");
}

static int too_long(decode_t *d)
{
    return media__fail(d->errbuf, d->errlen, d->path, FENTA_ETOOBIG,
                       "audio longer than %d minutes; the limit is %d minutes",
                       AUDIO_PCM_MAX_SECONDS / 60, AUDIO_PCM_MAX_SECONDS / 60);
}

/* Runs swr on in_samples of input (NULL to drain its delay) into the buffer. */
static int resample(decode_t *d, const uint8_t **in, int in_samples)
{
    int out_max = swr_get_out_samples(d->swr, in_samples);
    if (out_max < 0)
        return media__fail(d->errbuf, d->errlen, d->path, FENTA_EINVAL,
                           "cannot resample the audio");
    if (vec_reserve(d->buf, d->cap, d->n + (size_t)out_max) != 0)
        return oom(d);
    uint8_t *out = (uint8_t *)(d->buf + d->n);
    int got = swr_convert(d->swr, &out, out_max, in, in_samples);
    if (got < 0)
        return got == AVERROR(ENOMEM)
                   ? oom(d)
                   : media__fail(d->errbuf, d->errlen, d->path, FENTA_EINVAL,
                                 "cannot resample the audio (%s)", av_err2str(got));
    d->n += (size_t)got;
    /* Checked as we go, so a header that lies about the length cannot make
     * us hold more than the limit. */
    return d->n > MAX_SAMPLES ? too_long(d) : 0;
}

/* Builds (or, when the decoder's output format changes mid-stream, drains and
 * rebuilds) the resampler for frames shaped like f. */
static int ensure_swr(decode_t *d, const AVFrame *f)
{
    if (d->swr && f->sample_rate == d->swr_rate && f->format == d->swr_format &&
        av_channel_layout_compare(&f->ch_layout, &d->swr_layout) == 0)
        return 0;
    if (d->swr) {
        int rc = resample(d, NULL, 0);
        if (rc != 0)
            return rc;
        swr_free(&d->swr);
    }
    av_channel_layout_uninit(&d->swr_layout);
    if (av_channel_layout_copy(&d->swr_layout, &f->ch_layout) < 0)
        return oom(d);
    AVChannelLayout in = {0};
    int rc = 0;
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) /* e.g. a bare WAV: assume the usual */
        av_channel_layout_default(&in, f->ch_layout.nb_channels);
    else
        rc = av_channel_layout_copy(&in, &f->ch_layout);
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    if (rc >= 0)
        rc = swr_alloc_set_opts2(&d->swr, &mono, AV_SAMPLE_FMT_S16, AUDIO_PCM_RATE, &in,
                                 (enum AVSampleFormat)f->format, f->sample_rate, 0, NULL);
    av_channel_layout_uninit(&in); /* swr keeps its own copy */
    if (rc >= 0)
        rc = swr_init(d->swr);
    if (rc < 0) {
        swr_free(&d->swr);
        if (rc == AVERROR(ENOMEM))
            return oom(d);
        const char *fmt = av_get_sample_fmt_name((enum AVSampleFormat)f->format);
        return media__fail(d->errbuf, d->errlen, d->path, FENTA_EINVAL,
                           "cannot convert its audio (%d Hz, %d channels, %s): %s", f->sample_rate,
                           f->ch_layout.nb_channels, fmt ? fmt : "?", av_err2str(rc));
    }
    d->swr_rate = f->sample_rate;
    d->swr_format = f->format;
    return 0;
}

/* Takes every frame the decoder has ready and appends it, resampled. */
static int drain_decoder(decode_t *d, AVFrame *f)
{
    for (;;) {
        int rc = avcodec_receive_frame(d->cc, f);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF)
            return 0;
        if (rc == AVERROR(ENOMEM))
            return oom(d);
        if (rc < 0) { /* a broken frame: skip it (and this packet's rest), as ffmpeg does */
            d->bad_packets++;
            return 0;
        }
        if (f->nb_samples > 0 && f->sample_rate > 0 && f->ch_layout.nb_channels > 0) {
            rc = ensure_swr(d, f);
            if (rc == 0)
                rc = resample(d, (const uint8_t **)f->extended_data, f->nb_samples);
        }
        av_frame_unref(f);
        if (rc != 0)
            return rc;
    }
}

/* Opens the decoder for the best audio stream and checks the announced
 * length against the limit before decoding anything. Returns the stream
 * index or an error. */
static int open_audio(decode_t *d)
{
    int rc = avformat_open_input(&d->fc, d->path, NULL, NULL);
    if (rc < 0)
        return rc == AVERROR(ENOMEM) ? oom(d)
                                     : media__fail(d->errbuf, d->errlen, d->path, FENTA_EINVAL,
                                                   "truncated or corrupt (%s)", av_err2str(rc));
    rc = avformat_find_stream_info(d->fc, NULL);
    if (rc < 0)
        return media__fail(d->errbuf, d->errlen, d->path, FENTA_EINVAL, "truncated or corrupt (%s)",
                           av_err2str(rc));
    const AVCodec *codec = NULL;
    int ai = av_find_best_stream(d->fc, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (ai == AVERROR_STREAM_NOT_FOUND)
        return media__fail(d->errbuf, d->errlen, d->path, FENTA_EINVAL, "no audio stream (%s)",
                           d->fc->nb_streams > 0 ? "video only" : "no streams");
    if (ai < 0 || !codec) {
        int best = av_find_best_stream(d->fc, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
        const char *name =
            best >= 0 ? avcodec_get_name(d->fc->streams[best]->codecpar->codec_id) : "?";
        return media__fail(d->errbuf, d->errlen, d->path, FENTA_EINVAL,
                           "no decoder for its audio codec (%s)", name);
    }
    const AVStream *st = d->fc->streams[ai];
    double seconds = 0.0;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
        seconds = (double)st->duration * av_q2d(st->time_base);
    else if (d->fc->duration != AV_NOPTS_VALUE && d->fc->duration > 0)
        seconds = (double)d->fc->duration / AV_TIME_BASE;
    if (seconds > AUDIO_PCM_MAX_SECONDS + SLACK_SECONDS)
        return too_long(d);

    d->cc = avcodec_alloc_context3(codec);
    if (!d->cc)
        return oom(d);
    rc = avcodec_parameters_to_context(d->cc, st->codecpar);
    if (rc >= 0) {
        d->cc->pkt_timebase = st->time_base;
        rc = avcodec_open2(d->cc, codec, NULL);
    }
    if (rc < 0)
        return rc == AVERROR(ENOMEM) ? oom(d)
                                     : media__fail(d->errbuf, d->errlen, d->path, FENTA_EINVAL,
                                                   "cannot open the %s audio decoder (%s)",
                                                   codec->name, av_err2str(rc));
    /* The demuxer still reads every packet, but need not parse the others. */
    for (unsigned i = 0; i < d->fc->nb_streams; i++)
        if ((int)i != ai)
            d->fc->streams[i]->discard = AVDISCARD_ALL;
    return ai;
}

static int decode_all(decode_t *d)
{
    int ai = open_audio(d);
    if (ai < 0)
        return ai;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *f = av_frame_alloc();
    int rc = (pkt && f) ? 0 : oom(d);
    while (rc == 0) {
        int r = av_read_frame(d->fc, pkt);
        if (r == AVERROR(ENOMEM)) {
            rc = oom(d);
            break;
        }
        if (r == AVERROR(EIO)) {
            rc = media__fail(d->errbuf, d->errlen, d->path, FENTA_EIO, "read error (%s)",
                             av_err2str(r));
            break;
        }
        /* End of file, or a damaged tail: keep what was decoded, as ffmpeg does. */
        if (r < 0)
            break;
        if (pkt->stream_index == ai) {
            r = avcodec_send_packet(d->cc, pkt);
            if (r == AVERROR(ENOMEM))
                rc = oom(d);
            else if (r < 0)
                d->bad_packets++;
            else
                rc = drain_decoder(d, f);
        }
        av_packet_unref(pkt);
    }
    if (rc == 0 && avcodec_send_packet(d->cc, NULL) >= 0) /* flush the decoder's delay */
        rc = drain_decoder(d, f);
    if (rc == 0 && d->swr)
        rc = resample(d, NULL, 0);
    av_packet_free(&pkt);
    av_frame_free(&f);
    if (rc == 0 && d->n == 0) {
        if (d->bad_packets > 0)
            rc = media__fail(d->errbuf, d->errlen, d->path, FENTA_EINVAL,
                             "no audio could be decoded (%u corrupt packets)", d->bad_packets);
        else
            rc = media__fail(d->errbuf, d->errlen, d->path, FENTA_EINVAL, "zero-length audio");
    }
    return rc;
}

int audio_pcm_decode(const char *path, int16_t **samples, size_t *n, char *errbuf, size_t errlen)
{
    if (errbuf && errlen > 0)
        errbuf[0] = '\0';
    if (samples)
        *samples = NULL;
    if (n)
        *n = 0;
    if (!path || !*path || !samples || !n)
        return media__fail(errbuf, errlen, path ? path : "(null)", FENTA_EINVAL, "no path given");

    /* Missing, unreadable, empty, not media, truncated: media_probe's words
     * (it also silences FFmpeg's log, once per process). */
    media_info_t info;
    int rc = media_probe(path, &info, errbuf, errlen);
    if (rc != 0)
        return rc;
    if (!info.has_audio)
        return media__fail(errbuf, errlen, path, FENTA_EINVAL, "no audio stream (%s)",
                           info.is_still_image ? "a still image" : "video only");

    decode_t d = {.path = path, .errbuf = errbuf, .errlen = errlen};
    rc = decode_all(&d);
    swr_free(&d.swr);
    av_channel_layout_uninit(&d.swr_layout);
    avcodec_free_context(&d.cc);
    avformat_close_input(&d.fc);
    if (rc != 0) {
        free(d.buf);
        return rc;
    }
    /* Not a growing array but a one-off shrink: give back the doubling
     * slack, which a long file may leave megabytes of (d.n > 0 here). */
    int16_t *fit = realloc(d.buf, d.n * sizeof *fit);
    *samples = fit ? fit : d.buf;
    *n = d.n;
    return 0;
}

void audio_pcm_free(int16_t **samples)
{
    if (samples) {
        free(*samples);
        *samples = NULL;
    }
}
