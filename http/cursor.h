/* cursor.h - opaque, tamper-proof pagination cursors and the ?limit= parser.
 *
 * A cursor carries a list's keyset position, e.g.
 *   {"sort":"created_at","dir":"desc","last":["2026-11-23T21:00:00Z","<uuid>"]}
 * to the client and back. It is base64url (no padding) of a version byte, the
 * position as compact JSON and a 128-bit HMAC-SHA256 tag, so a client can read
 * nothing useful into it and change nothing in it: any altered, truncated or
 * foreign cursor is refused before its JSON is even parsed.
 *
 * The MAC proves the position came from us, not that it belongs to the list
 * being asked for: callers put the list's name and the filters that shaped it
 * into the position and compare them after decoding. The key should be
 * derived for this purpose alone (not the raw JWT secret), although the tag
 * is domain-separated from other HMACs under the same key anyway. */
#ifndef FENTA_CURSOR_H
#define FENTA_CURSOR_H
#include <jansson.h>
#include <stdint.h>

#define CURSOR_KEY_BYTES 32
/* Longest cursor accepted or produced, in characters. */
#define CURSOR_MAX_LEN 1024
/* The largest page any list serves. */
#define CURSOR_LIMIT_MAX 100

/* The cursor for position (borrowed; must be a JSON object), a new string
 * that is the caller's. NULL if position is not an object, its cursor would
 * be longer than CURSOR_MAX_LEN, or memory ran out. */
char *cursor_encode(const uint8_t key[CURSOR_KEY_BYTES], const json_t *position);

/* The position in cursor, a new JSON object that is the caller's, with *err
 * (when err is not NULL) set to 0. NULL with *err FENTA_EINVAL for anything
 * but a cursor this key made: empty, longer than CURSOR_MAX_LEN, not strict
 * base64url, truncated, altered in any byte, made under another key or
 * format version; FENTA_ENOMEM if memory ran out. */
json_t *cursor_decode(const uint8_t key[CURSOR_KEY_BYTES], const char *cursor, int *err);

/* Parses a ?limit= value: NULL (parameter absent) gives dflt; otherwise
 * only decimal digits are accepted, and the value must be 1..max. 0 and *out
 * set, or FENTA_EINVAL ("", signs, spaces, fractions, exponents, hex, 0,
 * anything above max; also 1 <= dflt <= max must hold). */
int cursor_limit(const char *limit_param, int dflt, int max, int *out);

#endif
