/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Latency statistics the way fio keeps them (stat.h: FIO_IO_U_PLAT_BITS 6, 1856 buckets, 1.6%
 * resolution): the same buckets give the same percentiles and json+ "bins" keys as fio, so a
 * script comparing the two tools compares like with like. min/max/mean/stddev come from exact
 * running sums, as fio's do.
 */
#ifndef BFFIO_LATHIST_H
#define BFFIO_LATHIST_H

#include <stdint.h>

#define BFFIO_PLAT_BITS 6
#define BFFIO_PLAT_VAL (1u << BFFIO_PLAT_BITS)
#define BFFIO_PLAT_GROUP_NR 29
#define BFFIO_PLAT_NR (BFFIO_PLAT_GROUP_NR * BFFIO_PLAT_VAL)

struct bffio_lat {
    uint64_t n, min, max;
    double sum, sumsq;
};

struct bffio_hist {
    uint64_t bins[BFFIO_PLAT_NR];
};

static inline unsigned bffio_plat_idx(uint64_t v)
{
    unsigned msb = v ? 63u - (unsigned)__builtin_clzll(v) : 0;
    if (msb <= BFFIO_PLAT_BITS)
        return (unsigned)v;
    unsigned error_bits = msb - BFFIO_PLAT_BITS;
    unsigned base = (error_bits + 1) << BFFIO_PLAT_BITS;
    unsigned idx = base + (unsigned)((BFFIO_PLAT_VAL - 1) & (v >> error_bits));
    return idx < BFFIO_PLAT_NR - 1 ? idx : BFFIO_PLAT_NR - 1;
}

/* fio's plat_idx_to_val: the middle of the bucket (the value fio prints for a percentile). */
static inline uint64_t bffio_plat_val(unsigned idx)
{
    if (idx < (BFFIO_PLAT_VAL << 1))
        return idx;
    unsigned error_bits = (idx >> BFFIO_PLAT_BITS) - 1;
    uint64_t base = 1ull << (error_bits + BFFIO_PLAT_BITS);
    uint64_t k = idx % BFFIO_PLAT_VAL;
    return base + (uint64_t)(((double)k + 0.5) * (double)(1ull << error_bits));
}

static inline void bffio_lat_add(struct bffio_lat *l, uint64_t v)
{
    if (l->n == 0 || v < l->min)
        l->min = v;
    if (v > l->max)
        l->max = v;
    l->n++;
    l->sum += (double)v;
    l->sumsq += (double)v * (double)v;
}

void bffio_lat_merge(struct bffio_lat *into, const struct bffio_lat *from);
double bffio_lat_mean(const struct bffio_lat *l);
double bffio_lat_stddev(const struct bffio_lat *l);
void bffio_hist_merge(struct bffio_hist *into, const struct bffio_hist *from);
/* fio's calc_clat_percentiles: @p out[i] is the value at percentile @p plist[i]. */
void bffio_hist_percentiles(const struct bffio_hist *h, uint64_t nr, const double *plist, unsigned len,
                            uint64_t *out);

#endif
