/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of lib/histogram: resolution, bounds, quantiles with few samples and overflow,
 * merge/reset and the double-buffered swap that must neither lose nor double-count a sample. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller.h"
#include "histogram.h"

static void test_bucket_bounds_monotone_and_resolution(void **state)
{
    (void)state;
    uint64_t prev = 0;
    for (int b = 1; b < AURAIO_HIST_BUCKETS; b++) {
        uint64_t lo = auraio__histogram_bucket_lower_ns(b);
        assert_true(lo > prev);
        prev = lo;
    }
    assert_int_equal(auraio__histogram_bucket_lower_ns(-1), 0);
    assert_int_equal(auraio__histogram_bucket_lower_ns(AURAIO_HIST_BUCKETS), 0);
    /* Every value from 1 us to 30 s lands in the bucket whose bounds contain it, and the bucket
     * midpoint is within 3.2% of the value. */
    for (uint64_t v = 1000; v < 30000000000ull; v += v / 7 + 1) {
        unsigned b = auraio__histogram_bucket(v);
        assert_true(b < AURAIO_HIST_BUCKETS);
        uint64_t lo = auraio__histogram_bucket_lower_ns((int)b);
        uint64_t hi = b + 1 < AURAIO_HIST_BUCKETS ? auraio__histogram_bucket_lower_ns((int)b + 1)
                                                  : AURAIO_HIST_MAX_NS;
        assert_true(lo <= v && v < hi);
        double mid = (double)lo + (double)(hi - lo) / 2;
        double err = (mid - (double)v) / (double)v;
        assert_true(err < 0.032 && err > -0.032);
    }
    assert_int_equal(auraio__histogram_bucket(AURAIO_HIST_MAX_NS), AURAIO_HIST_BUCKETS);
    assert_int_equal(auraio__histogram_bucket(AURAIO_HIST_MAX_NS - 1), AURAIO_HIST_BUCKETS - 1);
}

static void test_percentile_uniform(void **state)
{
    (void)state;
    struct histogram *h = calloc(1, sizeof(*h));
    for (uint64_t i = 1; i <= 100000; i++)
        auraio__histogram_record(h, i * 100); /* 100 ns .. 10 ms uniform */
    double p50 = (double)auraio__histogram_percentile(h, 0.5);
    double p99 = (double)auraio__histogram_percentile(h, 0.99);
    assert_true(p50 > 5e6 * 0.97 && p50 < 5e6 * 1.03);
    assert_true(p99 > 9.9e6 * 0.97 && p99 < 9.9e6 * 1.03);
    assert_true(auraio__histogram_percentile_reliable(h, 0.99));
    auraio__histogram_reset(h);
    assert_int_equal(auraio__histogram_percentile(h, 0.99), 0);
    assert_false(auraio__histogram_percentile_reliable(h, 0.5));
    free(h);
}

static void test_few_samples_p99_not_reliable(void **state)
{
    (void)state;
    struct histogram *h = calloc(1, sizeof(*h));
    for (int i = 0; i < 19; i++)
        auraio__histogram_record(h, 100000);
    auraio__histogram_record(h, 50000000); /* one slow outlier among 20 */
    /* Nearest-rank P99 of 20 samples is the maximum: flagged so nobody acts on it. */
    assert_false(auraio__histogram_percentile_reliable(h, 0.99));
    assert_true(auraio__histogram_percentile_reliable(h, 0.5));
    for (int i = 0; i < 300; i++)
        auraio__histogram_record(h, 100000);
    assert_true(auraio__histogram_percentile_reliable(h, 0.99));
    assert_true(auraio__histogram_percentile(h, 0.99) < 200000);
    free(h);
}

static void test_overflow_counts_as_slow(void **state)
{
    (void)state;
    struct histogram *h = calloc(1, sizeof(*h));
    for (int i = 0; i < 90; i++)
        auraio__histogram_record(h, 1000);
    for (int i = 0; i < 10; i++)
        auraio__histogram_record(h, 100ull * 1000000000ull); /* 100 s */
    assert_int_equal(h->total, 100);
    assert_int_equal(h->overflow, 10);
    assert_int_equal(auraio__histogram_percentile(h, 0.99), AURAIO_HIST_MAX_NS);
    assert_int_equal(auraio__histogram_count_above(h, 1000000), 10);
    auraio_histogram_t pub;
    auraio__histogram_export(h, &pub);
    assert_int_equal(pub.bucket_count, AURAIO_HISTOGRAM_BUCKETS);
    assert_int_equal(pub.total_count, 100);
    assert_int_equal(pub.overflow_count, 10);
    free(h);
}

/* Exact values on small histograms whose percentiles are computed by hand below. Bucket of v
 * (v >= 16): shift = msb(v) - 4, index = 16 * shift + (v >> shift), bounds [m << s, (m + 1) << s)
 * with s = index / 16 - 1 and m = 16 + index % 16; a percentile is the bucket's midpoint. */
#define MID_100NS 102ull  /* 100 ns: bucket 57, [100, 104) */
#define MID_1US 1008ull   /* 1000 ns: bucket 111, [992, 1024) */
#define MID_2US 2016ull   /* 2000 ns: bucket 127, [1984, 2048) */
#define MID_1MS 999424ull /* 1,000,000 ns: bucket 270, [983040, 1015808) */

static void test_percentile_exact_one_sample(void **state)
{
    (void)state;
    struct histogram *h = calloc(1, sizeof(*h));
    auraio__histogram_record(h, 100);
    assert_int_equal(auraio__histogram_bucket(100), 57);
    assert_int_equal(auraio__histogram_bucket_lower_ns(57), 100);
    assert_int_equal(auraio__histogram_bucket_lower_ns(58), 104);
    /* Every quantile of one sample is that sample. */
    assert_int_equal(auraio__histogram_percentile(h, 0.5), MID_100NS);
    assert_int_equal(auraio__histogram_percentile(h, 0.99), MID_100NS);
    assert_int_equal(auraio__histogram_percentile(h, 1.0), MID_100NS);
    assert_int_equal(auraio__histogram_percentile(h, 1e-9), MID_100NS);
    assert_int_equal(auraio__histogram_percentile(h, 0.0), MID_100NS);
    assert_false(auraio__histogram_percentile_reliable(h, 0.5));
    free(h);
}

/* The slowest sample's bucket, by its upper edge: never below the sample, at most a bucket above. */
static void test_max_is_the_slowest_bucket(void **state)
{
    (void)state;
    struct histogram *h = calloc(1, sizeof(*h));
    assert_int_equal(auraio__histogram_max(h), 0);
    auraio__histogram_record(h, 100);
    assert_int_equal(auraio__histogram_max(h), 104); /* bucket 57 is [100, 104) */
    auraio__histogram_record(h, 50000000);
    auraio__histogram_record(h, 7);
    uint64_t m = auraio__histogram_max(h);
    assert_true(m > 50000000 && m <= 50000000 + 50000000 / 16);
    assert_int_equal(m, auraio__histogram_bucket_lower_ns((int)auraio__histogram_bucket(50000000) + 1));
    auraio__histogram_record(h, AURAIO_HIST_MAX_NS); /* an overflow is the slowest there is */
    assert_int_equal(auraio__histogram_max(h), AURAIO_HIST_MAX_NS);
    free(h);
}

static void test_percentile_exact_two_buckets(void **state)
{
    (void)state;
    struct histogram *h = calloc(1, sizeof(*h));
    auraio__histogram_record(h, 1000);
    auraio__histogram_record(h, 2000);
    /* Nearest rank ceil(q * 2): the first sample up to q = 0.5, the second above. */
    assert_int_equal(auraio__histogram_percentile(h, 0.25), MID_1US);
    assert_int_equal(auraio__histogram_percentile(h, 0.5), MID_1US);
    assert_int_equal(auraio__histogram_percentile(h, 0.51), MID_2US);
    assert_int_equal(auraio__histogram_percentile(h, 0.99), MID_2US);
    assert_int_equal(auraio__histogram_percentile(h, 1.0), MID_2US);
    free(h);
}

static void test_percentile_exact_99_1_split(void **state)
{
    (void)state;
    struct histogram *h = calloc(1, sizeof(*h));
    for (int i = 0; i < 99; i++)
        auraio__histogram_record(h, 1000);
    auraio__histogram_record(h, 1000000);
    /* Rank ceil(0.99 * 100) = 99 is the last fast sample; rank 100 the slow one. */
    assert_int_equal(auraio__histogram_percentile(h, 0.5), MID_1US);
    assert_int_equal(auraio__histogram_percentile(h, 0.99), MID_1US);
    assert_int_equal(auraio__histogram_percentile(h, 0.991), MID_1MS);
    assert_int_equal(auraio__histogram_percentile(h, 1.0), MID_1MS);
    /* 100 - 99 = 1 sample above the P99: it is not reliable; 2 above it is. */
    assert_false(auraio__histogram_percentile_reliable(h, 0.99));
    assert_true(auraio__histogram_percentile_reliable(h, 0.98));
    /* Misses of a 1 us target: only samples above the 1 us bucket count, not those in it. */
    assert_int_equal(auraio__histogram_count_above(h, 1000), 1);
    assert_int_equal(auraio__histogram_count_above(h, 1000000), 0);
    free(h);
}

static void test_percentile_exact_empty_and_overflow(void **state)
{
    (void)state;
    struct histogram *h = calloc(1, sizeof(*h));
    assert_int_equal(auraio__histogram_percentile(h, 0.5), 0);
    assert_int_equal(auraio__histogram_percentile(h, 0.99), 0);
    assert_int_equal(auraio__histogram_percentile(h, 1.0), 0);
    assert_int_equal(auraio__histogram_count_above(h, 0), 0);
    /* One overflowing sample: slow, never ignored. */
    auraio__histogram_record(h, AURAIO_HIST_MAX_NS);
    assert_int_equal(h->overflow, 1);
    assert_int_equal(h->total, 1);
    uint64_t sum = 0;
    for (int i = 0; i < AURAIO_HIST_BUCKETS; i++)
        sum += h->buckets[i];
    assert_int_equal(sum, 0);
    assert_int_equal(auraio__histogram_percentile(h, 0.5), AURAIO_HIST_MAX_NS);
    /* 99 fast samples and that one: the P99 is fast, the maximum overflowed. */
    for (int i = 0; i < 99; i++)
        auraio__histogram_record(h, 1000);
    assert_int_equal(auraio__histogram_percentile(h, 0.99), MID_1US);
    assert_int_equal(auraio__histogram_percentile(h, 1.0), AURAIO_HIST_MAX_NS);
    assert_int_equal(auraio__histogram_count_above(h, 1000), 1);
    /* The last bucket, [31 << 30, 32 << 30) ns, has the midpoint 31.5 << 30. */
    auraio__histogram_reset(h);
    auraio__histogram_record(h, AURAIO_HIST_MAX_NS - 1);
    assert_int_equal(auraio__histogram_bucket(AURAIO_HIST_MAX_NS - 1), AURAIO_HIST_BUCKETS - 1);
    assert_int_equal(auraio__histogram_bucket_lower_ns(AURAIO_HIST_BUCKETS - 1), 31ull << 30);
    assert_int_equal(auraio__histogram_percentile(h, 0.5), (31ull << 30) + (1ull << 29));
    free(h);
}

static void test_merge_exact(void **state)
{
    (void)state;
    struct histogram *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    auraio__histogram_record(a, 1000);
    auraio__histogram_record(b, 1000000);
    auraio__histogram_record(b, AURAIO_HIST_MAX_NS);
    auraio__histogram_merge(a, b);
    assert_int_equal(a->total, 3);
    assert_int_equal(a->overflow, 1);
    assert_int_equal(a->buckets[111], 1);
    assert_int_equal(a->buckets[270], 1);
    assert_int_equal(auraio__histogram_percentile(a, 0.5), MID_1MS);
    assert_int_equal(auraio__histogram_percentile(a, 1.0), AURAIO_HIST_MAX_NS);
    free(a);
    free(b);
}

static void test_merge(void **state)
{
    (void)state;
    struct histogram *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    for (int i = 0; i < 1000; i++) {
        auraio__histogram_record(a, 1000 + (uint64_t)i);
        auraio__histogram_record(b, 1000000 + (uint64_t)i);
    }
    auraio__histogram_merge(a, b);
    assert_int_equal(a->total, 2000);
    uint64_t sum = a->overflow;
    for (int i = 0; i < AURAIO_HIST_BUCKETS; i++)
        sum += a->buckets[i];
    assert_int_equal(sum, 2000);
    free(a);
    free(b);
}

/* The engine's protocol: record into the active buffer, swap, consume and reset the filled one.
 * Interleaving records with swaps at arbitrary points must account for every sample exactly once. */
static void test_swap_loses_nothing(void **state)
{
    (void)state;
    struct ctl_ring_acc *r = calloc(1, sizeof(*r));
    uint64_t recorded = 0, consumed = 0, bytes = 0;
    uint64_t x = 12345;
    for (int round = 0; round < 2000; round++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int n = (int)(x >> 60);
        for (int i = 0; i < n; i++) {
            auraio__ctl_acc_record(auraio__ctl_acc_active(r), 1000 + (x >> 40) % 100000, 4096);
            recorded++;
        }
        struct ctl_acc *f = auraio__ctl_acc_swap(r);
        assert_int_equal(f->hist.total, f->n);
        consumed += f->n;
        bytes += f->bytes;
        auraio__ctl_acc_reset(f);
    }
    consumed += auraio__ctl_acc_active(r)->n;
    bytes += auraio__ctl_acc_active(r)->bytes;
    assert_int_equal(consumed, recorded);
    assert_int_equal(bytes, recorded * 4096); /* bytes travel with their samples, too */
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_bounds_monotone_and_resolution),
        cmocka_unit_test(test_percentile_uniform),
        cmocka_unit_test(test_few_samples_p99_not_reliable),
        cmocka_unit_test(test_overflow_counts_as_slow),
        cmocka_unit_test(test_percentile_exact_one_sample),
        cmocka_unit_test(test_percentile_exact_two_buckets),
        cmocka_unit_test(test_max_is_the_slowest_bucket),
        cmocka_unit_test(test_percentile_exact_99_1_split),
        cmocka_unit_test(test_percentile_exact_empty_and_overflow),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_exact),
        cmocka_unit_test(test_swap_loses_nothing),
    };
    return cmocka_run_group_tests_name("histogram", tests, NULL, NULL);
}
