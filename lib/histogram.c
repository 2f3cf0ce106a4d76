/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Histogram queries: bucket bounds, quantiles, merge, reset and export to auraio_histogram_t.
 * Recording is inline in histogram.h because it sits on the completion path.
 */
#include "histogram.h"

#include <string.h>

_Static_assert(AURAIO_HIST_BUCKETS == AURAIO_HISTOGRAM_BUCKETS,
               "the public snapshot must hold the internal histogram bucket for bucket");
_Static_assert(((uint64_t)2 * AURAIO_HIST_SUB << (AURAIO_HIST_BUCKETS / AURAIO_HIST_SUB - 2))
                   == AURAIO_HIST_MAX_NS,
               "the last octave must end at AURAIO_HIST_MAX_NS");

uint64_t auraio__histogram_bucket_lower_ns(int bucket)
{
    if (bucket < 0 || bucket >= AURAIO_HIST_BUCKETS)
        return 0;
    unsigned b = (unsigned)bucket;
    if (b < AURAIO_HIST_SUB)
        return b;
    unsigned shift = b / AURAIO_HIST_SUB - 1;
    uint64_t mant = AURAIO_HIST_SUB + b % AURAIO_HIST_SUB;
    return mant << shift;
}

static uint64_t bucket_upper_ns(unsigned b)
{
    return b + 1 < AURAIO_HIST_BUCKETS ? auraio__histogram_bucket_lower_ns((int)b + 1)
                                       : AURAIO_HIST_MAX_NS;
}

static uint64_t rank_of(uint64_t total, double q)
{
    if (!(q > 0.0))
        return 1;
    if (q >= 1.0)
        return total;
    /* ceil(q * total) without libm; the double product is exact enough for any real count. */
    double x = q * (double)total;
    uint64_t r = (uint64_t)x;
    if ((double)r < x)
        r++;
    return r == 0 ? 1 : r;
}

uint64_t auraio__histogram_percentile(const struct histogram *h, double q)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = rank_of(h->total, q);
    uint64_t seen = 0;
    for (unsigned b = 0; b < AURAIO_HIST_BUCKETS; b++) {
        seen += h->buckets[b];
        if (seen >= rank) {
            uint64_t lo = auraio__histogram_bucket_lower_ns((int)b);
            return lo + (bucket_upper_ns(b) - lo) / 2;
        }
    }
    return AURAIO_HIST_MAX_NS;
}

uint64_t auraio__histogram_max(const struct histogram *h)
{
    if (h->overflow)
        return AURAIO_HIST_MAX_NS;
    for (unsigned b = AURAIO_HIST_BUCKETS; b-- > 0;)
        if (h->buckets[b])
            return bucket_upper_ns(b);
    return 0;
}

bool auraio__histogram_percentile_reliable(const struct histogram *h, double q)
{
    if (h->total == 0)
        return false;
    uint64_t rank = rank_of(h->total, q);
    return h->total - rank >= 2;
}

uint64_t auraio__histogram_count_above(const struct histogram *h, uint64_t ns)
{
    unsigned first = auraio__histogram_bucket(ns);
    uint64_t n = h->overflow;
    for (unsigned b = first + 1; b < AURAIO_HIST_BUCKETS; b++)
        n += h->buckets[b];
    return n;
}

void auraio__histogram_merge(struct histogram *dst, const struct histogram *src)
{
    dst->total += src->total;
    dst->overflow += src->overflow;
    for (unsigned b = 0; b < AURAIO_HIST_BUCKETS; b++)
        dst->buckets[b] += src->buckets[b];
}

void auraio__histogram_reset(struct histogram *h)
{
    memset(h, 0, sizeof(*h));
}

void auraio__histogram_export(const struct histogram *h, auraio_histogram_t *out)
{
    out->bucket_count = AURAIO_HISTOGRAM_BUCKETS;
    out->total_count = h->total;
    out->overflow_count = h->overflow;
    memcpy(out->buckets, h->buckets, sizeof(out->buckets));
}
