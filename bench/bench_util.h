/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by the benchmarks: the clock, medians, size arguments, and the build type
 * baked in by each bench meson.build, so every result line can say what kind of build produced it (a
 * debug build's numbers are not comparable with a release build's).
 */
#ifndef AURAIO_BENCH_UTIL_H
#define AURAIO_BENCH_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#ifndef AURAIO_BENCH_BUILDTYPE
#define AURAIO_BENCH_BUILDTYPE "unknown"
#endif

#ifdef __OPTIMIZE__
#define AURAIO_BENCH_OPTIMIZED "yes"
#else
#define AURAIO_BENCH_OPTIMIZED "no"
#endif

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* "4096", "64k", "256M", "1G" -> bytes. */
static inline uint64_t bench_parse_size(const char *s)
{
    char *end;
    uint64_t v = strtoull(s, &end, 0);
    switch (*end) {
    case 'k': case 'K': return v << 10;
    case 'm': case 'M': return v << 20;
    case 'g': case 'G': return v << 30;
    default: return v;
    }
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of @p n values; sorts them in place. Even n: mean of the middle two. */
static inline double bench_median(double *v, int n)
{
    if (n <= 0)
        return 0.0;
    qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

#endif
