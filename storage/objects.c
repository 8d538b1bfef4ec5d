/* objects.c - the local object store and its URL signatures. See objects.h.
 *
 * Layout: ROOT/<key> is the object; ROOT/.tmp/ holds files being written.
 * A put writes a fresh mkstemp file in .tmp (never a fixed name such as
 * "<key>.part": two puts of one key would then write into the same file),
 * fsyncs it, renames it over ROOT/<key> and fsyncs that folder. .tmp is on
 * the same file system as every object, so the rename is atomic, and no key
 * can name it (segments never start with "."). */
#include "storage/objects.h"
#include "runtime/crypto.h"
#include "runtime/error.h"
#include "runtime/fsutil.h"
#include "runtime/strutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TMP_DIR ".tmp"
#define TMP_STALE_S 3600 /* temp files older than this at open are crash leftovers */
#define COPY_CHUNK 65536
#define SIG_LEN 43 /* base64url of 32 bytes, unpadded */

struct objects {
    char *root;       /* absolute or as given; no trailing slash */
    uint8_t *secret;  /* HMAC key */
    size_t secretlen; /* its length */
};

/* Extension -> media type; the first match wins. */
static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {"mp4", "video/mp4"},         {"srt", "application/x-subrip"},
    {"jpg", "image/jpeg"},        {"jpeg", "image/jpeg"},
    {"png", "image/png"},         {"wav", "audio/wav"},
    {"mp3", "audio/mpeg"},        {"m4a", "audio/mp4"},
    {"json", "application/json"},
};

/* ---- keys -------------------------------------------------------------------------- */

int objects_key_check(const char *key, char *err, size_t errlen)
{
    if (!key || !*key)
        return fenta_fail(err, errlen, FENTA_EINVAL, "object key is empty");
    size_t n = strlen(key);
    if (n > OBJECTS_KEY_MAX)
        return fenta_fail(err, errlen, FENTA_EINVAL, "object key is longer than %d bytes",
                          OBJECTS_KEY_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '/' || c == '-';
        if (!ok)
            return fenta_fail(err, errlen, FENTA_EINVAL,
                              "object key has a byte outside [A-Za-z0-9._/-] at %zu", i);
    }
    if (key[0] == '/')
        return fenta_fail(err, errlen, FENTA_EINVAL, "object key must not start with /");
    if (key[n - 1] == '/')
        return fenta_fail(err, errlen, FENTA_EINVAL, "object key must not end with /");
    if (strstr(key, "//"))
        return fenta_fail(err, errlen, FENTA_EINVAL, "object key has an empty segment (//)");
    if (strstr(key, ".."))
        return fenta_fail(err, errlen, FENTA_EINVAL, "object key must not contain ..");
    for (const char *seg = key; seg; seg = strchr(seg, '/') ? strchr(seg, '/') + 1 : NULL)
        if (*seg == '.')
            return fenta_fail(err, errlen, FENTA_EINVAL,
                              "object key has a segment starting with . (hidden names are the "
                              "store's own)");
    return 0;
}

const char *objects_content_type(const char *key)
{
    const char *slash = key ? strrchr(key, '/') : NULL;
    const char *dot = key ? strrchr(slash ? slash : key, '.') : NULL;
    if (dot)
        for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++)
            if (strcasecmp(dot + 1, content_types[i].ext) == 0)
                return content_types[i].type;
    return "application/octet-stream";
}

/* ---- opening ----------------------------------------------------------------------- */

/* Removes temp files older than TMP_STALE_S: a put in progress in another
 * handle on the same root is younger and survives. */
static void sweep_tmp(const char *tmpdir)
{
    DIR *d = opendir(tmpdir);
    if (!d)
        return;
    time_t now = time(NULL); /* against file mtimes, which are real time */
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            now - st.st_mtime > TMP_STALE_S)
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

objects_t *objects_open(const char *root, const uint8_t *secret, size_t secretlen, int *err)
{
    int rc = FENTA_EINVAL;
    objects_t *o = NULL;
    char tmp[PATH_MAX];
    if (!root || !*root || !secret || secretlen < OBJECTS_SECRET_MIN ||
        snprintf(tmp, sizeof(tmp), "%s/" TMP_DIR, root) >= (int)sizeof(tmp))
        goto fail;
    rc = FENTA_EIO;
    if (fsutil_mkdirs(root, 0700) != 0 || fsutil_mkdirs(tmp, 0700) != 0)
        goto fail;
    rc = FENTA_ENOMEM;
    o = calloc(1, sizeof(*o));
    if (!o)
        goto fail;
    o->root = strdup(root);
    o->secret = malloc(secretlen);
    if (!o->root || !o->secret)
        goto fail;
    size_t rl = strlen(o->root);
    while (rl > 1 && o->root[rl - 1] == '/')
        o->root[--rl] = '\0';
    memcpy(o->secret, secret, secretlen);
    o->secretlen = secretlen;
    sweep_tmp(tmp);
    if (err)
        *err = 0;
    return o;
fail:
    objects_close(&o);
    if (err)
        *err = rc;
    return NULL;
}

void objects_close(objects_t **o_p)
{
    if (!o_p || !*o_p)
        return;
    objects_t *o = *o_p;
    if (o->secret)
        crypto_wipe(o->secret, o->secretlen);
    free(o->secret);
    free(o->root);
    free(o);
    *o_p = NULL;
}

/* ---- reading ----------------------------------------------------------------------- */

int objects_path(const objects_t *o, const char *key, char *buf, size_t cap, char *err,
                 size_t errlen)
{
    int rc = objects_key_check(key, err, errlen);
    if (rc != 0)
        return rc;
    int n = snprintf(buf, cap, "%s/%s", o->root, key);
    if (n < 0 || (size_t)n >= cap || n >= PATH_MAX)
        return fenta_fail(err, errlen, FENTA_ETOOBIG, "object path is too long");
    return 0;
}

int objects_stat(const objects_t *o, const char *key, objects_stat_t *out, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int rc = objects_path(o, key, path, sizeof(path), err, errlen);
    if (rc != 0)
        return rc;
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return fenta_fail(err, errlen, FENTA_ENOTFOUND, "no such object");
        return fenta_fail(err, errlen, FENTA_EIO, "cannot stat object: %s", strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return fenta_fail(err, errlen, FENTA_ENOTFOUND, "no such object");
    out->size = (uint64_t)st.st_size;
    out->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    objects_etag(out->size, out->mtime_ns, out->etag);
    return 0;
}

void objects_etag(uint64_t size, int64_t mtime_ns, char out[48])
{
    snprintf(out, 48, "\"%llx-%llx\"", (unsigned long long)size, (unsigned long long)mtime_ns);
}

/* ---- writing ----------------------------------------------------------------------- */

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes the content (data, or the file src_fd when data is NULL) into a
 * fresh temp file and renames it onto key's path. */
static int put_common(objects_t *o, const char *key, const void *data, size_t len, int src_fd,
                      char *err, size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX];
    int rc = objects_path(o, key, path, sizeof(path), err, errlen);
    if (rc != 0)
        return rc;
    snprintf(tmp, sizeof(tmp), "%s/" TMP_DIR "/put-XXXXXX", o->root);
    snprintf(dir, sizeof(dir), "%s", path);
    *strrchr(dir, '/') = '\0';

    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return fenta_fail(err, errlen, FENTA_EIO, "cannot create a temporary file: %s",
                          strerror(errno));
    const char *what = "write";
    if (data) {
        if (write_all(fd, data, len) != 0)
            goto io_fail;
    } else {
        char *buf = malloc(COPY_CHUNK);
        if (!buf) {
            close(fd);
            unlink(tmp);
            return fenta_fail(err, errlen, FENTA_ENOMEM, "out of memory");
        }
        for (;;) {
            ssize_t n = read(src_fd, buf, COPY_CHUNK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                what = "read the source";
                free(buf);
                goto io_fail;
            }
            if (n == 0)
                break;
            if (write_all(fd, buf, (size_t)n) != 0) {
                free(buf);
                goto io_fail;
            }
        }
        free(buf);
    }
    what = "fsync";
    if (fsync(fd) != 0)
        goto io_fail;
    close(fd);
    fd = -1;

    if (fsutil_mkdirs(dir, 0700) != 0) {
        int e = errno;
        unlink(tmp);
        if (e == ENOTDIR || e == EEXIST)
            return fenta_fail(err, errlen, FENTA_ECONFLICT,
                              "a prefix of the object key is itself an object");
        return fenta_fail(err, errlen, FENTA_EIO, "cannot create the object's folder: %s",
                          strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        if (e == EISDIR || e == ENOTEMPTY || e == EEXIST || e == ENOTDIR)
            return fenta_fail(err, errlen, FENTA_ECONFLICT,
                              "the object key names a folder of other objects");
        return fenta_fail(err, errlen, FENTA_EIO, "cannot rename the object into place: %s",
                          strerror(e));
    }
    /* the rename is durable only once the folder holding the new name is */
    if (fsutil_sync_dir_of(path) != 0)
        return fenta_fail(err, errlen, FENTA_EIO, "cannot fsync the object's folder: %s",
                          strerror(errno));
    return 0;

io_fail:;
    int e = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return fenta_fail(err, errlen, FENTA_EIO, "cannot %s the object: %s", what, strerror(e));
}

int objects_put(objects_t *o, const char *key, const void *data, size_t len, char *err,
                size_t errlen)
{
    if (!o || (!data && len))
        return fenta_fail(err, errlen, FENTA_EINVAL, "no store or no data");
    return put_common(o, key, data ? data : "", len, -1, err, errlen);
}

int objects_put_file(objects_t *o, const char *key, const char *src_path, char *err, size_t errlen)
{
    if (!o || !src_path)
        return fenta_fail(err, errlen, FENTA_EINVAL, "no store or no source path");
    int rc = objects_key_check(key, err, errlen);
    if (rc != 0)
        return rc;
    int src = open(src_path, O_RDONLY | O_CLOEXEC);
    if (src < 0)
        return fenta_fail(err, errlen, errno == ENOENT ? FENTA_ENOTFOUND : FENTA_EIO,
                          "cannot open %s: %s", src_path, strerror(errno));
    struct stat st;
    if (fstat(src, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(src);
        return fenta_fail(err, errlen, FENTA_EINVAL, "%s is not a regular file", src_path);
    }
    rc = put_common(o, key, NULL, 0, src, err, errlen);
    close(src);
    return rc;
}

int objects_delete(objects_t *o, const char *key, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int rc = objects_path(o, key, path, sizeof(path), err, errlen);
    if (rc != 0)
        return rc;
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return fenta_fail(err, errlen, FENTA_ENOTFOUND, "no such object");
    if (unlink(path) != 0)
        return fenta_fail(err, errlen, errno == ENOENT ? FENTA_ENOTFOUND : FENTA_EIO,
                          "cannot delete the object: %s", strerror(errno));
    if (fsutil_sync_dir_of(path) != 0)
        return fenta_fail(err, errlen, FENTA_EIO, "cannot fsync the object's folder: %s",
                          strerror(errno));
    return 0;
}

/* ---- signatures -------------------------------------------------------------------- */

/* An address in numeric text (v4 or v6, no zone id) into its bytes: *fam
 * AF_INET or AF_INET6, out 16 bytes. False when ip is not one. */
static bool parse_ip(const char *ip, int *fam, unsigned char out[16])
{
    memset(out, 0, 16);
    if (!ip || !*ip || strlen(ip) >= OBJECTS_IP_MAX)
        return false;
    if (inet_pton(AF_INET, ip, out) == 1) {
        *fam = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, ip, out) == 1) {
        *fam = AF_INET6;
        return true;
    }
    return false;
}

/* out: SIG_LEN + 1 bytes, the base64url signature of method, key, expires
 * and, for a bound URL, the address (ip NULL: unbound). */
static int sign(const objects_t *o, const char *method, const char *key, int64_t expires,
                const char *ip, char out[SIG_LEN + 1])
{
    char msg[OBJECTS_KEY_MAX + 128];
    int n =
        ip ? snprintf(msg, sizeof(msg), "%s\n%s\n%lld\nip=%s", method, key, (long long)expires, ip)
           : snprintf(msg, sizeof(msg), "%s\n%s\n%lld", method, key, (long long)expires);
    if (n < 0 || (size_t)n >= sizeof(msg))
        return FENTA_EINVAL;
    uint8_t mac[CRYPTO_SHA256_LEN];
    if (crypto_hmac_sha256(o->secret, o->secretlen, msg, (size_t)n, mac) != 0)
        return FENTA_EIO;
    int bl = crypto_b64_encode(CRYPTO_B64_URL, mac, sizeof mac, out, SIG_LEN + 1);
    crypto_wipe(mac, sizeof(mac));
    return bl == SIG_LEN ? 0 : FENTA_EIO;
}

int objects_presign_ip(const objects_t *o, const char *method, const char *key,
                       int64_t expires_unix_s, const char *ip, char *buf, size_t cap, char *err,
                       size_t errlen)
{
    if (!o || !buf)
        return fenta_fail(err, errlen, FENTA_EINVAL, "no store or no buffer");
    if (!strutil_is_method(method))
        return fenta_fail(err, errlen, FENTA_EINVAL, "method must be an upper-case token");
    if (expires_unix_s < 0)
        return fenta_fail(err, errlen, FENTA_EINVAL, "expiry must not be negative");
    int fam;
    unsigned char bin[16];
    /* Only [0-9A-Fa-f.:] get through inet_pton, so the address needs no
     * percent-encoding in the query. */
    if (ip && !parse_ip(ip, &fam, bin))
        return fenta_fail(err, errlen, FENTA_EINVAL, "%s is not a numeric IP address", ip);
    int rc = objects_key_check(key, err, errlen);
    if (rc != 0)
        return rc;
    char sig[SIG_LEN + 1];
    rc = sign(o, method, key, expires_unix_s, ip, sig);
    if (rc != 0)
        return fenta_fail(err, errlen, rc, "cannot compute the signature");
    int n = snprintf(buf, cap, "/v1/objects/%s?expires=%lld%s%s&sig=%s", key,
                     (long long)expires_unix_s, ip ? "&ip=" : "", ip ? ip : "", sig);
    if (n < 0 || (size_t)n >= cap)
        return fenta_fail(err, errlen, FENTA_ETOOBIG, "URL buffer too small (%d bytes needed)",
                          n + 1);
    return 0;
}

int objects_presign(const objects_t *o, const char *method, const char *key, int64_t expires_unix_s,
                    char *buf, size_t cap, char *err, size_t errlen)
{
    return objects_presign_ip(o, method, key, expires_unix_s, NULL, buf, cap, err, errlen);
}

int objects_verify_ip(const objects_t *o, const char *method, const char *key, int64_t expires,
                      const char *bound_ip, const char *sig, const char *client_ip,
                      int64_t now_unix_s, char *err, size_t errlen)
{
    if (!o)
        return fenta_fail(err, errlen, FENTA_EINVAL, "no store");
    if (!strutil_is_method(method))
        return fenta_fail(err, errlen, FENTA_EINVAL, "method must be an upper-case token");
    int rc = objects_key_check(key, err, errlen);
    if (rc != 0)
        return rc;
    char want[SIG_LEN + 1];
    if (expires < 0 || (bound_ip && strlen(bound_ip) >= OBJECTS_IP_MAX) ||
        sign(o, method, key, expires, bound_ip, want) != 0)
        return fenta_fail(err, errlen, FENTA_EDENIED, "the URL signature is invalid");
    /* the length of a good signature is public; only the bytes are compared
     * in constant time */
    bool good = sig && strlen(sig) == SIG_LEN && crypto_equal(sig, want, SIG_LEN);
    crypto_wipe(want, sizeof(want));
    if (!good)
        return fenta_fail(err, errlen, FENTA_EDENIED, "the URL signature is invalid");
    if (bound_ip) {
        /* compared as addresses: the text we signed is the server's own
         * rendering, but an equal address may be written another way */
        int fb, fc;
        unsigned char b[16], c[16];
        if (!parse_ip(bound_ip, &fb, b) || !parse_ip(client_ip, &fc, c) || fb != fc ||
            memcmp(b, c, 16) != 0)
            return fenta_fail(err, errlen, FENTA_EDENIED,
                              "the URL is bound to another client address");
    }
    if (now_unix_s > expires)
        return fenta_fail(err, errlen, FENTA_ETIMEOUT, "the URL expired %lld s ago",
                          (long long)(now_unix_s - expires));
    return 0;
}

int objects_verify(const objects_t *o, const char *method, const char *key, int64_t expires,
                   const char *sig, int64_t now_unix_s, char *err, size_t errlen)
{
    return objects_verify_ip(o, method, key, expires, NULL, sig, NULL, now_unix_s, err, errlen);
}
