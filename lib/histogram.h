/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-ring log-linear latency histogram. Values are nanoseconds; below 16 ns every value has its own
 * bucket, above that each power of two is split into 16 linear sub-buckets, so a bucket is at most
 * 1/16 of its lower bound wide and its midpoint is within +-3.1% of any value in it. 512 buckets
 * reach 2^35 ns (34 s); longer latencies go to an overflow counter that percentiles treat as slow.
 *
 * Not thread-safe on purpose: one thread records at a time under the ring's lock, so counters are
 * plain uint64_t (no atomics to memset, no torn snapshot). The engine moves a whole histogram out
 * by swapping which of two buffers is active (see controller.h), never by copying under the lock.
 */
#ifndef AURAIO_HISTOGRAM_H
#define AURAIO_HISTOGRAM_H

#include <stdbool.h>
#include <stdint.h>

#include "auraio.h"

#define AURAIO_HIST_SUB_BITS 4
#define AURAIO_HIST_SUB (1u << AURAIO_HIST_SUB_BITS)
#define AURAIO_HIST_BUCKETS 512
/* First latency that no longer fits: bucket 511 covers [31 << 30, 32 << 30) ns. */
#define AURAIO_HIST_MAX_NS ((uint64_t)1 << 35)

struct histogram {
    uint64_t total;    /* all recorded samples, overflow included */
    uint64_t overflow; /* samples >= AURAIO_HIST_MAX_NS */
    uint64_t buckets[AURAIO_HIST_BUCKETS];
};

static inline unsigned auraio__histogram_msb(uint64_t v)
{
#if defined(__GNUC__)
    /* 63 ^ clz, not 63 - clz: the same for v != 0, and gcc makes it one bsr. */
    return 63u ^ (unsigned)__builtin_clzll(v);
#else
    unsigned r = 0;
    while (v >>= 1)
        r++;
    return r;
#endif
}

/* Bucket index of @p ns, or AURAIO_HIST_BUCKETS when it overflows. Branch-free apart from the
 * overflow test: OR-ing in 16 makes values below 16 land in shift 0, where bucket == value. */
static inline unsigned auraio__histogram_bucket(uint64_t ns)
{
    unsigned shift = auraio__histogram_msb(ns | AURAIO_HIST_SUB) - AURAIO_HIST_SUB_BITS;
    uint64_t b = ((uint64_t)shift << AURAIO_HIST_SUB_BITS) + (ns >> shift);
    return b < AURAIO_HIST_BUCKETS ? (unsigned)b : AURAIO_HIST_BUCKETS;
}

/* Hot path: a clz, a shift, two increments. Called under the ring's lock. auraio__histogram_bucket
 * without its clamp: the overflow test is the one below (a compare and a move fewer per sample). */
static inline void auraio__histogram_record(struct histogram *h, uint64_t ns)
{
    /* auraio__histogram_bucket's (shift << 4) + (ns >> shift), shift = msb - 4, with the constant
     * taken out of the product: (msb << 4) + (ns >> shift) - 64. */
    unsigned msb = auraio__histogram_msb(ns | AURAIO_HIST_SUB);
    uint64_t b = ((uint64_t)msb << AURAIO_HIST_SUB_BITS) + (ns >> (msb - AURAIO_HIST_SUB_BITS)) -
                 ((uint64_t)AURAIO_HIST_SUB_BITS << AURAIO_HIST_SUB_BITS);
    h->total++;
    if (b < AURAIO_HIST_BUCKETS)
        h->buckets[b]++;
    else
        h->overflow++;
}

/** Lower bound in ns of @p bucket; 0 when out of range (the public accessor's contract). */
uint64_t auraio__histogram_bucket_lower_ns(int bucket);

/**
 * Nearest-rank quantile @p q in (0, 1]: the midpoint of the bucket holding the ceil(q * total)-th
 * smallest sample, AURAIO_HIST_MAX_NS when that sample overflowed (an overflow is slow, never
 * ignored), 0 for an empty histogram.
 */
uint64_t auraio__histogram_percentile(const struct histogram *h, double q);

/**
 * True when at least two samples lie above quantile @p q, i.e. the estimate is not just the
 * largest sample. With 20 samples "P99" would be the maximum; callers must not act on that.
 */
bool auraio__histogram_percentile_reliable(const struct histogram *h, double q);

/** Upper edge of the slowest sample's bucket (AURAIO_HIST_MAX_NS when one overflowed), 0 when empty:
 * no sample was slower. */
uint64_t auraio__histogram_max(const struct histogram *h);

/** Samples strictly slower than the bucket holding @p ns (overflow included): target misses. */
uint64_t auraio__histogram_count_above(const struct histogram *h, uint64_t ns);

void auraio__histogram_merge(struct histogram *dst, const struct histogram *src);
void auraio__histogram_reset(struct histogram *h);
/** Copy into the public snapshot type (bucket_count = AURAIO_HISTOGRAM_BUCKETS). */
void auraio__histogram_export(const struct histogram *h, auraio_histogram_t *out);

#endif
