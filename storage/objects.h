/* objects.h - the local object store: named files under DATA_DIR/objects,
 * written whole or not at all, and the presigned URLs that let a client (a
 * browser's video player, a webhook receiver) fetch one without a session.
 *
 * Object keys are 1..1024 bytes of [A-Za-z0-9._/-], with no leading "/",
 * no "//", no ".." and no segment starting with "." (so a key never leaves
 * the root and never names the store's own ".tmp" folder). A key is a path
 * below the root: "jobs/01H.../out.mp4". A key cannot be both an object and
 * a folder of others ("a" and "a/b"): the second put gets FENTA_ECONFLICT.
 *
 * A presigned URL is `/v1/objects/<key>?expires=<unix s>&sig=<s>` where s
 * is base64url (no padding) of HMAC-SHA256(secret, "<METHOD>\n<key>\n<expires>").
 * It is valid while now <= expires. The key needs no percent-encoding: its
 * alphabet is URL-safe.
 *
 * A URL may also be bound to one client address (the platform's "IP
 * restriction for sensitive operations"):
 * `/v1/objects/<key>?expires=<unix s>&ip=<address>&sig=<s>`, s signing
 * "<METHOD>\n<key>\n<expires>\nip=<address>". It works only from that
 * address. The address is in the signed text, so changing or dropping the
 * ip parameter breaks the signature; and no unbound URL's text can equal a
 * bound one's (keys have no newline, expiries are digits), so old-style URLs
 * keep working unchanged.
 *
 * Thread safety: an objects_t is immutable after objects_open; every call
 * may run on any thread at once. Puts of the same key race safely: each
 * writes its own temporary file and the last rename wins; a reader holding
 * the old file open keeps reading the old content.
 *
 * Functions that validate take (err, errlen): a message for the caller's
 * client or log, written when err is not NULL (see fenta_fail). */
#ifndef FENTA_OBJECTS_H
#define FENTA_OBJECTS_H
#include <stddef.h>
#include <stdint.h>

typedef struct objects objects_t; /* opaque */

#define OBJECTS_KEY_MAX 1024
/* Room for any objects_presign result (path, key, every parameter, NUL). */
#define OBJECTS_URL_MAX (OBJECTS_KEY_MAX + 192)
/* The longest client address a URL may be bound to (an IPv6 address in
 * text, NUL included: INET6_ADDRSTRLEN). */
#define OBJECTS_IP_MAX 46
/* The shortest HMAC secret objects_open accepts. */
#define OBJECTS_SECRET_MIN 16

typedef struct {
    uint64_t size;    /* bytes */
    int64_t mtime_ns; /* last modification, ns since the epoch */
    char etag[48];    /* strong validator: "\"<size hex>-<mtime ns hex>\"" (quotes included) */
} objects_stat_t;

/* Opens (creating it 0700 with its parents, and its ".tmp" folder) the store
 * at root; secret (copied) signs URLs and must be at least
 * OBJECTS_SECRET_MIN bytes. Temporary files a crash left behind over an
 * hour ago are removed. NULL on failure with *err (may be NULL):
 * FENTA_EINVAL (NULL root, short secret), FENTA_EIO, FENTA_ENOMEM. */
objects_t *objects_open(const char *root, const uint8_t *secret, size_t secretlen, int *err);
/* Frees; NULL-safe; NULLs *o_p. Objects stay on disk. */
void objects_close(objects_t **o_p);

/* 0 when key is a valid object key, else FENTA_EINVAL with a message. */
int objects_key_check(const char *key, char *err, size_t errlen);

/* Stores len bytes under key, atomically (temporary file, fsync, rename,
 * fsync of the folder): readers see the old object or the new one, never a
 * part. 0; FENTA_EINVAL (bad key), FENTA_ECONFLICT (a key prefix is an
 * object, or key is a folder of objects), FENTA_EIO. */
int objects_put(objects_t *o, const char *key, const void *data, size_t len, char *err,
                size_t errlen);
/* The same, copying the file at src_path (which is left in place). Also
 * FENTA_ENOTFOUND when src_path does not exist. */
int objects_put_file(objects_t *o, const char *key, const char *src_path, char *err, size_t errlen);
/* Writes the object's file path into buf (cap bytes) for readers that open
 * it themselves; the file may not exist. 0, FENTA_EINVAL, FENTA_ETOOBIG. */
int objects_path(const objects_t *o, const char *key, char *buf, size_t cap, char *err,
                 size_t errlen);
/* Size, time and ETag of an object. 0, FENTA_EINVAL, FENTA_ENOTFOUND (also
 * for a key naming a folder), FENTA_EIO. */
int objects_stat(const objects_t *o, const char *key, objects_stat_t *st, char *err, size_t errlen);
/* Removes an object (folders it leaves empty stay). 0, FENTA_EINVAL,
 * FENTA_ENOTFOUND, FENTA_EIO. */
int objects_delete(objects_t *o, const char *key, char *err, size_t errlen);

/* The presigned URL (path and query, no scheme or host) for method ("GET";
 * any upper-case token is signed, only GET/HEAD are served) on key, valid
 * until expires_unix_s, into buf (cap bytes; OBJECTS_URL_MAX is enough).
 * 0, FENTA_EINVAL (bad key, method or negative expiry), FENTA_ETOOBIG. */
int objects_presign(const objects_t *o, const char *method, const char *key, int64_t expires_unix_s,
                    char *buf, size_t cap, char *err, size_t errlen);
/* The same bound to the client address ip (an IPv4 or IPv6 address in
 * numeric text, as the server prints its peers: "127.0.0.1", "::1"); NULL
 * = unbound, as objects_presign. Also FENTA_EINVAL for an ip that is not a
 * numeric address (a zone id included). */
int objects_presign_ip(const objects_t *o, const char *method, const char *key,
                       int64_t expires_unix_s, const char *ip, char *buf, size_t cap, char *err,
                       size_t errlen);
/* Checks a presigned request: sig (the query's value) must be the
 * signature of method, key and expires (compared in constant time), and
 * now_unix_s <= expires. 0; FENTA_EDENIED for a bad signature (any change
 * to the key, expiry or signature), FENTA_ETIMEOUT for a genuine URL that
 * has expired; FENTA_EINVAL for a bad key or method. The signature is
 * checked first, so "expired" is only said of URLs this store signed. */
int objects_verify(const objects_t *o, const char *method, const char *key, int64_t expires,
                   const char *sig, int64_t now_unix_s, char *err, size_t errlen);
/* The same for a URL that may be bound: bound_ip is the URL's ip parameter
 * (NULL when it has none: an unbound URL, checked as objects_verify), and
 * client_ip the address the request came from. A bound URL with a good
 * signature asked for from another address (compared as addresses, so
 * "::1" and "0::1" are one) is FENTA_EDENIED; an expired one from the
 * right address FENTA_ETIMEOUT. The address is checked after the
 * signature and before the expiry, so a stranger learns nothing more than
 * from a forged URL. */
int objects_verify_ip(const objects_t *o, const char *method, const char *key, int64_t expires,
                      const char *bound_ip, const char *sig, const char *client_ip,
                      int64_t now_unix_s, char *err, size_t errlen);

/* The strong ETag (quotes included) of content of size bytes last modified
 * at mtime_ns: what objects_stat reports and the HTTP layer sends. */
void objects_etag(uint64_t size, int64_t mtime_ns, char out[48]);

/* The media type served for key, from its extension (case-insensitive):
 * mp4, srt, jpg/jpeg, png, wav, mp3, m4a, json; else
 * application/octet-stream. Static string. */
const char *objects_content_type(const char *key);

#endif
