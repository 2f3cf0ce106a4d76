/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers shared by the benchmarks: the clock, medians, size arguments, and the build type
 * baked in by each bench meson.build, so every result line can say what kind of build produced it (a
 * debug build's numbers are not comparable with a release build's).
 */
#ifndef AURAIO_BENCH_UTIL_H
#define AURAIO_BENCH_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

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

/*
 * CPU time of the whole process (every thread, io_uring's workers included), for the reads-per-CPU-
 * second figure compare_read.py --shared-cpu divides by: two programs sharing one CPU see the VM's
 * speed changes alike, and this counts only the time each actually ran. A system call: read it at
 * the start and the end of a measurement, never per I/O.
 */
static inline uint64_t bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
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

/* Fills one 1 MiB chunk of a temp file that starts at file offset @p off. */
typedef void (*bench_fill_fn)(void *chunk, size_t len, uint64_t off, void *ctx);

/*
 * Create "DIR/PREFIX-XXXXXX" of @p size bytes (whole MiB chunks) written through @p fill, fsync it
 * and store its path. @return 0 or -errno; on failure nothing is left behind.
 */
static inline int bench_make_file(const char *dir, const char *prefix, uint64_t size, bench_fill_fn fill,
                                  void *ctx, char *path, size_t path_len)
{
    const size_t chunk = 1u << 20;
    snprintf(path, path_len, "%s/%s-XXXXXX", dir, prefix);
    int fd = mkstemp(path);
    if (fd < 0)
        return -errno;
    void *block = malloc(chunk);
    int err = block ? 0 : ENOMEM;
    for (uint64_t off = 0; !err && off < size; off += chunk) {
        fill(block, chunk, off, ctx);
        if (pwrite(fd, block, chunk, (off_t)off) != (ssize_t)chunk)
            err = errno ? errno : EIO;
    }
    if (!err && fsync(fd) < 0)
        err = errno;
    free(block);
    close(fd);
    if (err)
        unlink(path);
    return -err;
}

/* splitmix64: seeded, tiny, enough for offsets, shuffles and file data. */
static inline uint64_t bench_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Real (pseudo-random) data, so no layer can shortcut zero pages; @p ctx is the uint64_t seed. */
static inline void bench_fill_random(void *chunk, size_t len, uint64_t off, void *ctx)
{
    (void)off;
    uint64_t *words = chunk;
    for (size_t i = 0; i < len / sizeof(*words); i++)
        words[i] = bench_splitmix64(ctx);
}

/*
 * A temp file of @p size bytes (rounded down to whole MiB) of random data in @p dir, or $TMPDIR,
 * or /var/tmp (a disk file system, where O_DIRECT works; a tmpfs /tmp may refuse it). On failure
 * it prints which directory refused and why. @return 0 or -errno.
 */
static inline int bench_make_random_temp(const char *dir, const char *prefix, uint64_t size, char *path,
                                         size_t path_len)
{
    if (!dir)
        dir = getenv("TMPDIR");
    if (!dir || !*dir)
        dir = "/var/tmp";
    uint64_t data_seed = 0x5eed;
    int rc = bench_make_file(dir, prefix, size & ~(uint64_t)((1u << 20) - 1), bench_fill_random, &data_seed, path,
                             path_len);
    if (rc < 0)
        fprintf(stderr, "cannot create a temp file in %s: %s\n", dir, strerror(-rc));
    return rc;
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
