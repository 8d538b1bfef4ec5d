/* wav.h - the 44-byte header of a 16-bit PCM WAV file, the one format the
 * render engine writes itself (the synthesised voice, the music bed). */
#ifndef FENTA_WAV_H
#define FENTA_WAV_H
#include <stdint.h>

#define WAV_HEADER_BYTES 44

/* Fills h for data_bytes of 16-bit little-endian PCM at rate Hz with
 * channels interleaved channels. */
void wav_header(unsigned char h[WAV_HEADER_BYTES], int rate, int channels, uint32_t data_bytes);

/* Stores the low `bytes` bytes of v at p, little-endian, whatever the host. */
void wav_put_le(unsigned char *p, uint32_t v, int bytes);

#endif
