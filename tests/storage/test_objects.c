/* test_objects.c - storage/objects: the local object store (puts, reads,
 * atomic replacement, concurrency, key validation) and presigned URLs
 * (round trip, tampering, expiry). */
#include "runtime/error.h"
#include "storage/objects.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *tmp;
static char root[1024];
static objects_t *store;
static const uint8_t secret[] = "0123456789abcdef-test-secret";

static void setup(void)
{
    tmp = fx_tmpdir("objects");
    snprintf(root, sizeof(root), "%s/data/objects", tmp);
    int err = 1;
    store = objects_open(root, secret, sizeof(secret) - 1, &err);
    cr_assert_not_null(store, "objects_open: %s", fenta_strerror(err));
    cr_assert_eq(err, 0);
}

static void teardown(void)
{
    objects_close(&store);
    cr_assert_null(store);
    fx_rmdir(tmp);
}

TestSuite(objects, .init = setup, .fini = teardown);

/* The whole content of a file, NUL-terminated (the caller frees). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len)
        *len = (size_t)n;
    return buf;
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* ---- opening ------------------------------------------------------------------------- */

Test(objects, open_creates_a_private_root)
{
    struct stat st;
    cr_assert_eq(stat(root, &st), 0, "the root and its parents exist");
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0700, "the root is private: %o", st.st_mode & 0777);
}

Test(objects, open_refuses_bad_arguments)
{
    int err = 0;
    cr_assert_null(objects_open(root, secret, 8, &err), "a short secret is refused");
    cr_assert_eq(err, FENTA_EINVAL);
    cr_assert_null(objects_open(NULL, secret, sizeof(secret) - 1, &err));
    cr_assert_eq(err, FENTA_EINVAL);
    char file[PATH_MAX];
    snprintf(file, sizeof(file), "%s/plainfile", tmp);
    close(open(file, O_CREAT | O_WRONLY, 0600));
    snprintf(file, sizeof(file), "%s/plainfile/objects", tmp);
    cr_assert_null(objects_open(file, secret, sizeof(secret) - 1, &err));
    cr_assert_eq(err, FENTA_EIO, "a root under a file cannot be created");
    objects_close(NULL);
}

Test(objects, open_sweeps_old_temp_files_only)
{
    char old[PATH_MAX], young[PATH_MAX];
    snprintf(old, sizeof(old), "%s/.tmp/put-old", root);
    snprintf(young, sizeof(young), "%s/.tmp/put-young", root);
    close(open(old, O_CREAT | O_WRONLY, 0600));
    close(open(young, O_CREAT | O_WRONLY, 0600));
    struct timespec times[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    cr_assert_eq(utimensat(AT_FDCWD, old, times, 0), 0);
    objects_t *again = objects_open(root, secret, sizeof(secret) - 1, NULL);
    cr_assert_not_null(again);
    cr_assert_neq(access(old, F_OK), 0, "a crash leftover is removed");
    cr_assert_eq(access(young, F_OK), 0, "a put in progress elsewhere is left alone");
    objects_close(&again);
}

/* ---- puts and reads ------------------------------------------------------------------ */

Test(objects, put_then_read_back)
{
    char err[256] = "";
    cr_assert_eq(objects_put(store, "jobs/j1/out.srt", "1\n00:00:00,000 --> 00:00:01,000\nhi\n", 36,
                             err, sizeof(err)),
                 0, "%s", err);
    char path[PATH_MAX];
    cr_assert_eq(objects_path(store, "jobs/j1/out.srt", path, sizeof(path), err, sizeof(err)), 0);
    char want[PATH_MAX];
    snprintf(want, sizeof(want), "%s/jobs/j1/out.srt", root);
    cr_assert_str_eq(path, want);
    size_t len;
    char *got = slurp(path, &len);
    cr_assert_not_null(got);
    cr_assert_eq(len, 36);
    cr_assert_eq(memcmp(got, "1\n00:00:00,000", 14), 0);
    free(got);

    objects_stat_t st;
    cr_assert_eq(objects_stat(store, "jobs/j1/out.srt", &st, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(st.size, 36);
    cr_assert_gt(st.mtime_ns, 0);
    cr_assert_eq(st.etag[0], '"', "a strong, quoted ETag: %s", st.etag);
    cr_assert_eq(st.etag[strlen(st.etag) - 1], '"');

    cr_assert_eq(objects_put(store, "empty.bin", NULL, 0, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(objects_stat(store, "empty.bin", &st, NULL, 0), 0);
    cr_assert_eq(st.size, 0, "an empty object is an object");
}

Test(objects, put_file_copies_and_leaves_the_source)
{
    char src[PATH_MAX], err[256] = "";
    snprintf(src, sizeof(src), "%s/render.mp4", tmp);
    size_t n = 300 * 1000 + 7; /* several copy chunks and a ragged end */
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 31 + 7);
    FILE *f = fopen(src, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
    cr_assert_eq(objects_put_file(store, "renders/r1.mp4", src, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(access(src, F_OK), 0, "the source stays");
    char path[PATH_MAX];
    objects_path(store, "renders/r1.mp4", path, sizeof(path), NULL, 0);
    size_t len;
    char *got = slurp(path, &len);
    cr_assert_eq(len, n);
    cr_assert_eq(memcmp(got, data, n), 0, "byte for byte");
    free(got);
    free(data);

    snprintf(src, sizeof(src), "%s/nope.mp4", tmp);
    cr_assert_eq(objects_put_file(store, "renders/r2.mp4", src, err, sizeof(err)), FENTA_ENOTFOUND);
    cr_assert(strstr(err, "nope.mp4"), "the message names the source: %s", err);
    cr_assert_eq(objects_put_file(store, "renders/r2.mp4", tmp, err, sizeof(err)), FENTA_EINVAL,
                 "a folder is not a source");
    cr_assert_eq(objects_stat(store, "renders/r2.mp4", &(objects_stat_t){0}, NULL, 0),
                 FENTA_ENOTFOUND, "a failed put leaves nothing behind");
}

Test(objects, put_replaces_atomically_and_leaves_no_temp_files)
{
    char err[256] = "", path[PATH_MAX], tmpdir[PATH_MAX];
    cr_assert_eq(objects_put(store, "a/b.json", "{\"v\":1}", 7, err, sizeof(err)), 0);
    objects_path(store, "a/b.json", path, sizeof(path), NULL, 0);
    int old_fd = open(path, O_RDONLY); /* a reader in the middle of a download */
    cr_assert_geq(old_fd, 0);
    cr_assert_eq(objects_put(store, "a/b.json", "{\"v\":22}", 8, err, sizeof(err)), 0);
    char *got = slurp(path, NULL);
    cr_assert_str_eq(got, "{\"v\":22}", "the new content is in place");
    free(got);
    char old[16] = "";
    cr_assert_eq(pread(old_fd, old, sizeof(old) - 1, 0), 7);
    cr_assert_str_eq(old, "{\"v\":1}", "an open reader keeps the old content, whole");
    close(old_fd);
    snprintf(tmpdir, sizeof(tmpdir), "%s/.tmp", root);
    cr_assert_eq(count_entries(tmpdir), 0, "no temporary file is left");
    snprintf(tmpdir, sizeof(tmpdir), "%s/a", root);
    cr_assert_eq(count_entries(tmpdir), 1, "only the object itself: no .part beside it");
}

Test(objects, stat_and_delete)
{
    char err[256] = "";
    objects_stat_t st;
    cr_assert_eq(objects_stat(store, "x/y.png", &st, err, sizeof(err)), FENTA_ENOTFOUND);
    cr_assert_eq(objects_delete(store, "x/y.png", err, sizeof(err)), FENTA_ENOTFOUND);
    cr_assert_eq(objects_put(store, "x/y.png", "png", 3, NULL, 0), 0);
    cr_assert_eq(objects_stat(store, "x", &st, NULL, 0), FENTA_ENOTFOUND,
                 "a folder of objects is not an object");
    cr_assert_eq(objects_delete(store, "x", NULL, 0), FENTA_ENOTFOUND);
    cr_assert_eq(objects_delete(store, "x/y.png", err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(objects_stat(store, "x/y.png", &st, NULL, 0), FENTA_ENOTFOUND);
}

Test(objects, etag_changes_with_content)
{
    objects_stat_t a, b;
    cr_assert_eq(objects_put(store, "e.txt", "one", 3, NULL, 0), 0);
    cr_assert_eq(objects_stat(store, "e.txt", &a, NULL, 0), 0);
    usleep(10000);
    cr_assert_eq(objects_put(store, "e.txt", "two!", 4, NULL, 0), 0);
    cr_assert_eq(objects_stat(store, "e.txt", &b, NULL, 0), 0);
    cr_assert_str_neq(a.etag, b.etag);
}

Test(objects, key_that_is_a_file_prefix_conflicts)
{
    char err[256] = "";
    cr_assert_eq(objects_put(store, "a", "1", 1, NULL, 0), 0);
    cr_assert_eq(objects_put(store, "a/b", "2", 1, err, sizeof(err)), FENTA_ECONFLICT, "%s", err);
    cr_assert_eq(objects_put(store, "a/b/c", "2", 1, err, sizeof(err)), FENTA_ECONFLICT, "%s", err);
    cr_assert_eq(objects_put(store, "d/e", "1", 1, NULL, 0), 0);
    cr_assert_eq(objects_put(store, "d", "2", 1, err, sizeof(err)), FENTA_ECONFLICT, "%s", err);
    char tmpdir[PATH_MAX];
    snprintf(tmpdir, sizeof(tmpdir), "%s/.tmp", root);
    cr_assert_eq(count_entries(tmpdir), 0, "failed puts clean up");
}

/* ---- concurrency --------------------------------------------------------------------- */

#define WRITERS 8
#define ROUNDS 40
#define BLOB (64 * 1024 + 3)

static void *writer(void *arg)
{
    long id = (long)arg;
    char *data = malloc(BLOB);
    memset(data, 'A' + (int)id, BLOB);
    for (int i = 0; i < ROUNDS; i++) {
        char err[256] = "";
        int rc = objects_put(store, "shared/blob.bin", data, BLOB, err, sizeof(err));
        if (rc != 0) {
            free(data);
            return (void *)(intptr_t)rc;
        }
        char own[64];
        snprintf(own, sizeof(own), "own/w%ld/%d.bin", id, i % 4);
        if ((rc = objects_put(store, own, data, 100, err, sizeof(err))) != 0) {
            free(data);
            return (void *)(intptr_t)rc;
        }
    }
    free(data);
    return NULL;
}

static atomic_bool stop_reading;

static void *reader(void *arg)
{
    (void)arg;
    char path[PATH_MAX];
    objects_path(store, "shared/blob.bin", path, sizeof(path), NULL, 0);
    char *buf = malloc(BLOB + 1);
    intptr_t torn = 0;
    while (!atomic_load(&stop_reading)) {
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue; /* not written yet */
        ssize_t n = pread(fd, buf, BLOB + 1, 0);
        close(fd);
        if (n != BLOB) {
            torn++;
            continue;
        }
        for (size_t i = 1; i < BLOB; i++)
            if (buf[i] != buf[0]) {
                torn++;
                break;
            }
    }
    free(buf);
    return (void *)torn;
}

Test(objects, concurrent_puts_never_tear)
{
    pthread_t w[WRITERS], r;
    atomic_store(&stop_reading, false);
    cr_assert_eq(pthread_create(&r, NULL, reader, NULL), 0);
    for (long i = 0; i < WRITERS; i++)
        cr_assert_eq(pthread_create(&w[i], NULL, writer, (void *)i), 0);
    for (int i = 0; i < WRITERS; i++) {
        void *rc;
        pthread_join(w[i], &rc);
        cr_assert_null(rc, "writer %d failed: %s", i, fenta_strerror((int)(intptr_t)rc));
    }
    atomic_store(&stop_reading, true);
    void *torn;
    pthread_join(r, &torn);
    cr_assert_eq((intptr_t)torn, 0, "a reader saw a partial or mixed object %ld times",
                 (long)(intptr_t)torn);
    objects_stat_t st;
    cr_assert_eq(objects_stat(store, "shared/blob.bin", &st, NULL, 0), 0);
    cr_assert_eq(st.size, BLOB, "the last writer's object, whole");
    char tmpdir[PATH_MAX];
    snprintf(tmpdir, sizeof(tmpdir), "%s/.tmp", root);
    cr_assert_eq(count_entries(tmpdir), 0, "no temporary file is left");
}

/* ---- keys ---------------------------------------------------------------------------- */

Test(objects, key_validation_table)
{
    char long_ok[OBJECTS_KEY_MAX + 1], too_long[OBJECTS_KEY_MAX + 2];
    memset(long_ok, 'k', OBJECTS_KEY_MAX);
    long_ok[OBJECTS_KEY_MAX] = '\0';
    for (int i = 100; i < OBJECTS_KEY_MAX; i += 100)
        long_ok[i] = '/'; /* short segments keep the file name under NAME_MAX */
    memset(too_long, 'k', OBJECTS_KEY_MAX + 1);
    too_long[OBJECTS_KEY_MAX + 1] = '\0';
    static const struct {
        const char *key;
        const char *fragment; /* of the message; NULL: valid */
    } cases[] = {
        {"a", NULL},
        {"out.mp4", NULL},
        {"jobs/01HZX/out_720p-v2.mp4", NULL},
        {"A-Z_a.z/0-9", NULL},
        {"a.b.c", NULL},
        {"", "empty"},
        {"/abs/path", "start with /"},
        {"a//b", "//"},
        {"a/", "end with /"},
        {"..", ".."},
        {"a/../b", ".."},
        {"a..b", ".."},
        {".hidden", "segment starting with ."},
        {"a/.tmp/x", "segment starting with ."},
        {"./a", "segment starting with ."},
        {"a b", "outside"},
        {"a\\b", "outside"},
        {"a%2Fb", "outside"},
        {"caf\xc3\xa9", "outside"},
        {"a?b", "outside"},
        {"a\nb", "outside"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        int rc = objects_key_check(cases[i].key, err, sizeof(err));
        if (!cases[i].fragment) {
            cr_assert_eq(rc, 0, "%s: %s", cases[i].key, err);
        } else {
            cr_assert_eq(rc, FENTA_EINVAL, "'%s' must be refused", cases[i].key);
            cr_assert(strstr(err, cases[i].fragment), "'%s': message '%s' lacks '%s'", cases[i].key,
                      err, cases[i].fragment);
            /* and every entry point refuses it before touching the disk */
            cr_assert_eq(objects_put(store, cases[i].key, "x", 1, NULL, 0), FENTA_EINVAL);
            char url[OBJECTS_URL_MAX];
            cr_assert_eq(objects_presign(store, "GET", cases[i].key, 10, url, sizeof(url), NULL, 0),
                         FENTA_EINVAL);
        }
    }
    cr_assert_eq(objects_key_check(NULL, NULL, 0), FENTA_EINVAL);
    cr_assert_eq(objects_key_check(long_ok, NULL, 0), 0, "1024 bytes is the limit");
    char err[256];
    cr_assert_eq(objects_key_check(too_long, err, sizeof(err)), FENTA_EINVAL);
    cr_assert(strstr(err, "1024"), "%s", err);
    cr_assert_eq(objects_put(store, long_ok, "x", 1, err, sizeof(err)), 0, "%s", err);
}

Test(objects, content_types)
{
    static const char *const table[][2] = {
        {"r/out.mp4", "video/mp4"},
        {"OUT.MP4", "video/mp4"},
        {"s.srt", "application/x-subrip"},
        {"t.jpg", "image/jpeg"},
        {"t.jpeg", "image/jpeg"},
        {"t.png", "image/png"},
        {"v.wav", "audio/wav"},
        {"m.mp3", "audio/mpeg"},
        {"m.m4a", "audio/mp4"},
        {"d.json", "application/json"},
        {"noext", "application/octet-stream"},
        {"x.mp4/raw", "application/octet-stream"},
        {"a.tar.gz", "application/octet-stream"},
        {"a.", "application/octet-stream"},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        cr_assert_str_eq(objects_content_type(table[i][0]), table[i][1], "%s", table[i][0]);
}

/* ---- signatures ---------------------------------------------------------------------- */

/* Splits a presigned URL into key, expires and sig (buffers of the caller). */
static void split_url(const char *url, char *key, long long *expires, char *sig)
{
    cr_assert_eq(strncmp(url, "/v1/objects/", 12), 0, "%s", url);
    const char *q = strchr(url, '?');
    cr_assert_not_null(q);
    memcpy(key, url + 12, (size_t)(q - url - 12));
    key[q - url - 12] = '\0';
    cr_assert_eq(sscanf(q, "?expires=%lld&sig=%63s", expires, sig), 2, "%s", url);
}

Test(objects, presign_round_trip)
{
    char url[OBJECTS_URL_MAX], err[256] = "";
    int64_t now = 1700000000;
    cr_assert_eq(objects_presign(store, "GET", "jobs/j1/out.mp4", now + 600, url, sizeof(url), err,
                                 sizeof(err)),
                 0, "%s", err);
    char key[OBJECTS_KEY_MAX + 1], sig[64];
    long long exp;
    split_url(url, key, &exp, sig);
    cr_assert_str_eq(key, "jobs/j1/out.mp4");
    cr_assert_eq(exp, now + 600);
    cr_assert_eq(strlen(sig), 43, "base64url of 32 bytes without padding: %s", sig);
    cr_assert_eq(strspn(sig, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                 43, "URL-safe alphabet: %s", sig);
    cr_assert_eq(objects_verify(store, "GET", key, exp, sig, now, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(objects_verify(store, "GET", key, exp, sig, now + 600, NULL, 0), 0,
                 "valid through the expiry second");

    /* deterministic: the same inputs sign the same */
    char again[OBJECTS_URL_MAX];
    objects_presign(store, "GET", "jobs/j1/out.mp4", now + 600, again, sizeof(again), NULL, 0);
    cr_assert_str_eq(url, again);

    /* a too-small buffer is refused, not truncated */
    char small[40];
    cr_assert_eq(objects_presign(store, "GET", "jobs/j1/out.mp4", now, small, sizeof(small), err,
                                 sizeof(err)),
                 FENTA_ETOOBIG);
    cr_assert_eq(objects_presign(store, "get", "a", now, url, sizeof(url), NULL, 0), FENTA_EINVAL);
    cr_assert_eq(objects_presign(store, "GET", "a", -1, url, sizeof(url), NULL, 0), FENTA_EINVAL);
}

Test(objects, tampering_is_denied)
{
    char url[OBJECTS_URL_MAX], key[OBJECTS_KEY_MAX + 1], sig[64], err[256];
    long long exp;
    int64_t now = 1700000000;
    objects_presign(store, "GET", "jobs/j1/out.mp4", now + 60, url, sizeof(url), NULL, 0);
    split_url(url, key, &exp, sig);

    cr_assert_eq(objects_verify(store, "GET", "jobs/j1/out.srt", exp, sig, now, err, sizeof(err)),
                 FENTA_EDENIED, "another key");
    cr_assert(strstr(err, "signature"), "%s", err);
    cr_assert_eq(objects_verify(store, "GET", "jobs/j2/out.mp4", exp, sig, now, NULL, 0),
                 FENTA_EDENIED);
    cr_assert_eq(objects_verify(store, "GET", key, exp + 3600, sig, now, err, sizeof(err)),
                 FENTA_EDENIED, "a later expiry");
    cr_assert(strstr(err, "signature"), "%s", err);
    cr_assert_eq(objects_verify(store, "PUT", key, exp, sig, now, NULL, 0), FENTA_EDENIED,
                 "another method");
    for (size_t i = 0; i < strlen(sig); i++) {
        char bad[64];
        strcpy(bad, sig);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        cr_assert_eq(objects_verify(store, "GET", key, exp, bad, now, NULL, 0), FENTA_EDENIED,
                     "flipped byte %zu", i);
    }
    char shorter[64];
    strcpy(shorter, sig);
    shorter[42] = '\0';
    cr_assert_eq(objects_verify(store, "GET", key, exp, shorter, now, NULL, 0), FENTA_EDENIED);
    char longer[70];
    snprintf(longer, sizeof(longer), "%s=", sig);
    cr_assert_eq(objects_verify(store, "GET", key, exp, longer, now, NULL, 0), FENTA_EDENIED);
    cr_assert_eq(objects_verify(store, "GET", key, exp, "", now, NULL, 0), FENTA_EDENIED);
    cr_assert_eq(objects_verify(store, "GET", key, exp, NULL, now, NULL, 0), FENTA_EDENIED);
    cr_assert_eq(objects_verify(store, "GET", key, -1, sig, now, NULL, 0), FENTA_EDENIED);

    /* another secret does not accept this store's URLs */
    static const uint8_t other_secret[] = "another-secret-of-enough-bytes";
    objects_t *other = objects_open(root, other_secret, sizeof(other_secret) - 1, NULL);
    cr_assert_not_null(other);
    cr_assert_eq(objects_verify(other, "GET", key, exp, sig, now, NULL, 0), FENTA_EDENIED);
    objects_close(&other);
}

Test(objects, expired_is_told_apart)
{
    char url[OBJECTS_URL_MAX], key[OBJECTS_KEY_MAX + 1], sig[64], err[256] = "";
    long long exp;
    int64_t now = 1700000000;
    objects_presign(store, "GET", "a.mp4", now - 5, url, sizeof(url), NULL, 0);
    split_url(url, key, &exp, sig);
    cr_assert_eq(objects_verify(store, "GET", key, exp, sig, now, err, sizeof(err)),
                 FENTA_ETIMEOUT);
    cr_assert(strstr(err, "expired"), "%s", err);
    cr_assert_null(strstr(err, "signature"), "%s", err);
    /* an expired URL whose signature is also wrong is only "invalid" */
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    cr_assert_eq(objects_verify(store, "GET", key, exp, sig, now, err, sizeof(err)), FENTA_EDENIED);
    cr_assert(strstr(err, "signature"), "%s", err);
}

/* Splits a bound URL's query: expires, ip and sig. */
static void split_bound(const char *url, char *key, long long *expires, char *ip, char *sig)
{
    cr_assert_eq(strncmp(url, "/v1/objects/", 12), 0, "%s", url);
    const char *q = strchr(url, '?');
    cr_assert_not_null(q);
    memcpy(key, url + 12, (size_t)(q - url - 12));
    key[q - url - 12] = '\0';
    cr_assert_eq(sscanf(q, "?expires=%lld&ip=%45[^&]&sig=%63s", expires, ip, sig), 3, "%s", url);
}

Test(objects, ip_bound_urls_work_from_their_address_only)
{
    char url[OBJECTS_URL_MAX], key[OBJECTS_KEY_MAX + 1], ip[OBJECTS_IP_MAX], sig[64], err[256] = "";
    long long exp;
    int64_t now = 1700000000;
    cr_assert_eq(objects_presign_ip(store, "GET", "jobs/j1/out.mp4", now + 60, "127.0.0.1", url,
                                    sizeof(url), err, sizeof(err)),
                 0, "%s", err);
    split_bound(url, key, &exp, ip, sig);
    cr_assert_str_eq(ip, "127.0.0.1");
    cr_assert_eq(
        objects_verify_ip(store, "GET", key, exp, ip, sig, "127.0.0.1", now, err, sizeof(err)), 0,
        "%s", err);
    cr_assert_eq(
        objects_verify_ip(store, "GET", key, exp, ip, sig, "127.0.0.2", now, err, sizeof(err)),
        FENTA_EDENIED, "another address");
    cr_assert(strstr(err, "another client address"), "%s", err);
    cr_assert_eq(objects_verify_ip(store, "GET", key, exp, ip, sig, "::1", now, NULL, 0),
                 FENTA_EDENIED, "another family");
    cr_assert_eq(objects_verify_ip(store, "GET", key, exp, ip, sig, "-", now, NULL, 0),
                 FENTA_EDENIED, "an unknown peer");
    /* the address is signed: changed or dropped, the signature fails */
    cr_assert_eq(objects_verify_ip(store, "GET", key, exp, "127.0.0.2", sig, "127.0.0.2", now, err,
                                   sizeof(err)),
                 FENTA_EDENIED, "a tampered ip");
    cr_assert(strstr(err, "signature"), "%s", err);
    cr_assert_eq(objects_verify(store, "GET", key, exp, sig, now, NULL, 0), FENTA_EDENIED,
                 "the ip parameter dropped");
    cr_assert_eq(objects_verify_ip(store, "GET", key, exp, NULL, sig, "127.0.0.1", now, NULL, 0),
                 FENTA_EDENIED, "the ip parameter dropped");
    /* expiry is still told apart, for the right address only */
    cr_assert_eq(
        objects_verify_ip(store, "GET", key, exp, ip, sig, "127.0.0.1", now + 61, err, sizeof(err)),
        FENTA_ETIMEOUT);
    cr_assert(strstr(err, "expired"), "%s", err);
    cr_assert_eq(objects_verify_ip(store, "GET", key, exp, ip, sig, "127.0.0.2", now + 61, NULL, 0),
                 FENTA_EDENIED);

    /* IPv6, compared as addresses */
    cr_assert_eq(objects_presign_ip(store, "GET", "a.mp4", now + 60, "::1", url, sizeof(url), err,
                                    sizeof(err)),
                 0, "%s", err);
    split_bound(url, key, &exp, ip, sig);
    cr_assert_eq(
        objects_verify_ip(store, "GET", key, exp, ip, sig, "0:0::1", now, err, sizeof(err)), 0,
        "%s", err);
    /* only numeric addresses are bound */
    cr_assert_eq(
        objects_presign_ip(store, "GET", "a.mp4", now, "localhost", url, sizeof(url), NULL, 0),
        FENTA_EINVAL);
    cr_assert_eq(
        objects_presign_ip(store, "GET", "a.mp4", now, "fe80::1%eth0", url, sizeof(url), NULL, 0),
        FENTA_EINVAL);
    cr_assert_eq(
        objects_presign_ip(store, "GET", "a.mp4", now, "1.2.3.4&sig=x", url, sizeof(url), NULL, 0),
        FENTA_EINVAL);
}

Test(objects, unbound_urls_keep_their_form_and_signature)
{
    /* an unbound URL from objects_presign_ip is the old URL, byte for byte,
     * and either verifier accepts it from any address */
    char a[OBJECTS_URL_MAX], b[OBJECTS_URL_MAX], key[OBJECTS_KEY_MAX + 1], sig[64];
    long long exp;
    int64_t now = 1700000000;
    cr_assert_eq(objects_presign(store, "GET", "x/y.srt", now + 5, a, sizeof(a), NULL, 0), 0);
    cr_assert_eq(objects_presign_ip(store, "GET", "x/y.srt", now + 5, NULL, b, sizeof(b), NULL, 0),
                 0);
    cr_assert_str_eq(a, b);
    cr_assert_null(strstr(a, "ip="), "%s", a);
    split_url(a, key, &exp, sig);
    cr_assert_eq(objects_verify_ip(store, "GET", key, exp, NULL, sig, "10.9.8.7", now, NULL, 0), 0);
    cr_assert_eq(objects_verify(store, "GET", key, exp, sig, now, NULL, 0), 0);
    /* and a bound URL's signature is not an unbound one's */
    char c[OBJECTS_URL_MAX];
    objects_presign_ip(store, "GET", "x/y.srt", now + 5, "10.9.8.7", c, sizeof(c), NULL, 0);
    cr_assert_str_neq(strstr(a, "sig="), strstr(c, "sig="));
}
