/* wav.c - WAV headers. See wav.h. */
#include "actors/media/wav.h"
#include <string.h>

void wav_put_le(unsigned char *p, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

void wav_header(unsigned char h[WAV_HEADER_BYTES], int rate, int channels, uint32_t data_bytes)
{
    uint32_t block = (uint32_t)channels * 2;
    memcpy(h, "RIFF", 4);
    wav_put_le(h + 4, 36 + data_bytes, 4);
    memcpy(h + 8, "WAVEfmt ", 8);
    wav_put_le(h + 16, 16, 4); /* fmt chunk size */
    wav_put_le(h + 20, 1, 2);  /* PCM */
    wav_put_le(h + 22, (uint32_t)channels, 2);
    wav_put_le(h + 24, (uint32_t)rate, 4);
    wav_put_le(h + 28, (uint32_t)rate * block, 4); /* bytes per second */
    wav_put_le(h + 32, block, 2);                  /* block align */
    wav_put_le(h + 34, 16, 2);                     /* bits per sample */
    memcpy(h + 36, "data", 4);
    wav_put_le(h + 40, data_bytes, 4);
}
