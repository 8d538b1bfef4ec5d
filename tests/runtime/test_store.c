/* test_store.c - the LMDB wrapper: basic operations, prefix scans, and a map
 * that grows instead of failing when full. */
#include "runtime/error.h"
#include "runtime/store.h"
#include "tests/support/fixtures.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    int n;
    char keys[16][32];
} seen_t;

static int collect(const void *k, size_t kl, const void *v, size_t vl, void *arg)
{
    (void)v, (void)vl;
    seen_t *s = arg;
    if (s->n < 16)
        snprintf(s->keys[s->n], 32, "%.*s", (int)kl, (const char *)k);
    s->n++;
    return 0;
}

static int write_some(store_txn_t *txn, void *arg)
{
    (void)arg;
    const char *keys[] = {"a/1", "b/1", "b/2", "b/3", "c/1"};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(store_put(txn, STORE_META, keys[i], strlen(keys[i]), "v", 1), 0);
    cr_assert_eq(store_del(txn, STORE_META, "zz", 2), 0, "deleting an absent key is fine");
    return 0;
}

static int read_some(store_txn_t *txn, void *arg)
{
    seen_t *s = arg;
    const void *v;
    size_t vl;
    cr_assert_eq(store_get(txn, STORE_META, "b/2", 3, &v, &vl), 0);
    cr_assert_eq(vl, 1);
    cr_assert_eq(store_get(txn, STORE_META, "b/9", 3, &v, &vl), FENTA_ENOTFOUND);
    cr_assert_eq(store_count(txn, STORE_META), 5);
    return store_scan(txn, STORE_META, "b/", 2, NULL, 0, collect, s);
}

Test(store, put_get_scan_prefix)
{
    char *dir = fx_tmpdir("store");
    int err = 0;
    store_t *s = store_open(dir, NULL, &err);
    cr_assert_not_null(s, "open: %d", err);
    cr_assert_eq(store_write(s, write_some, NULL), 0);
    seen_t seen = {0};
    cr_assert_eq(store_read(s, read_some, &seen), 0);
    cr_assert_eq(seen.n, 3, "prefix scan found %d", seen.n);
    cr_assert_str_eq(seen.keys[0], "b/1");
    cr_assert_str_eq(seen.keys[2], "b/3");
    store_close(&s);
    cr_assert_null(s);
    store_close(&s); /* NULL is accepted */
    fx_rmdir(dir);
}

static int abort_fn(store_txn_t *txn, void *arg)
{
    (void)arg;
    store_put(txn, STORE_META, "gone", 4, "x", 1);
    return FENTA_EINVAL;
}

static int absent_fn(store_txn_t *txn, void *arg)
{
    const void *v;
    size_t vl;
    *(int *)arg = store_get(txn, STORE_META, "gone", 4, &v, &vl);
    return 0;
}

Test(store, failed_write_rolls_back)
{
    char *dir = fx_tmpdir("store");
    store_t *s = store_open(dir, NULL, NULL);
    cr_assert_eq(store_write(s, abort_fn, NULL), FENTA_EINVAL);
    int rc = 0;
    store_read(s, absent_fn, &rc);
    cr_assert_eq(rc, FENTA_ENOTFOUND);
    store_close(&s);
    fx_rmdir(dir);
}

/* 8 MiB of values into a 256 KiB map: it must grow, not fail. */
static int fill(store_txn_t *txn, void *arg)
{
    int base = *(int *)arg;
    static char val[4096];
    memset(val, 'x', sizeof val);
    for (int i = 0; i < 256; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "k%08d", base + i);
        int rc = store_put(txn, STORE_MBOX, k, (size_t)kl, val, sizeof val);
        if (rc)
            return rc;
    }
    return 0;
}

static int count_mbox(store_txn_t *txn, void *arg)
{
    *(size_t *)arg = store_count(txn, STORE_MBOX);
    return 0;
}

Test(store, full_map_grows)
{
    char *dir = fx_tmpdir("store");
    store_t *s =
        store_open(dir, &(store_opts_t){.initial_map_bytes = 256 << 10, .no_sync = 1}, NULL);
    cr_assert_not_null(s);
    for (int b = 0; b < 8; b++) {
        int base = b * 256;
        cr_assert_eq(store_write(s, fill, &base), 0, "batch %d", b);
    }
    cr_assert_gt(store_grow_count(s), 0);
    cr_assert_geq(store_map_bytes(s), (size_t)8 << 20);
    size_t n = 0;
    store_read(s, count_mbox, &n);
    cr_assert_eq(n, 2048);
    store_close(&s);
    /* Reopening with a small request keeps the grown size. */
    s = store_open(dir, &(store_opts_t){.initial_map_bytes = 256 << 10}, NULL);
    cr_assert_not_null(s);
    cr_assert_geq(store_map_bytes(s), (size_t)8 << 20);
    store_close(&s);
    fx_rmdir(dir);
}

Test(store, open_failure_is_reported)
{
    int err = 0;
    store_t *s = store_open("/proc/fenta-cannot-be-here", NULL, &err);
    cr_assert_null(s);
    cr_assert_lt(err, 0);
}
