/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Buffer-pool microbenchmark (issue #4 item 5): 4 KiB alloc+free pairs per second per thread with
 * 1 and 2 threads, the pool's thread-cache fast path against posix_memalign+free measured in the
 * same run, median of several runs, and the ratio. Runnable directly:
 *   bench_pool [pairs_per_thread_per_run] [runs]
 * Speed is reported, never asserted: the exit status only says whether the run worked.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buffer_pool.h"

#ifndef AURAIO_BENCH_BUILDTYPE
#define AURAIO_BENCH_BUILDTYPE "unknown (built outside meson)"
#endif

#define BUF_SIZE 4096
#define MAX_THREADS 2
#define MAX_RUNS 31

enum subject { POOL, MEMALIGN };

struct worker {
    pthread_t tid;
    enum subject subject;
    struct buffer_pool *pool;
    long pairs;
    pthread_barrier_t *start;
    double seconds;
    int err;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    void *p = NULL;

    /* Warm-up outside the timed loop: the pool's first call builds the thread cache. */
    for (int i = 0; i < 1000; i++) {
        if (w->subject == POOL) {
            if (auraio__pool_alloc(w->pool, BUF_SIZE, &p) || auraio__pool_free(w->pool, p, BUF_SIZE))
                w->err = 1;
        } else {
            if (posix_memalign(&p, 4096, BUF_SIZE))
                w->err = 1;
            free(p);
        }
    }
    pthread_barrier_wait(w->start);

    double t0 = now_s();
    if (w->subject == POOL) {
        for (long i = 0; i < w->pairs; i++) {
            if (auraio__pool_alloc(w->pool, BUF_SIZE, &p) != 0) {
                w->err = 1;
                break;
            }
            *(volatile char *)p = (char)i; /* a real use; also keeps the pair from being elided */
            if (auraio__pool_free(w->pool, p, BUF_SIZE) != 0) {
                w->err = 1;
                break;
            }
        }
    } else {
        for (long i = 0; i < w->pairs; i++) {
            if (posix_memalign(&p, 4096, BUF_SIZE) != 0) {
                w->err = 1;
                break;
            }
            *(volatile char *)p = (char)i;
            free(p);
        }
    }
    w->seconds = now_s() - t0;
    return NULL;
}

/* One run: @p nthreads threads, @return mean pairs per second per thread, or -1 on error. */
static double run_once(enum subject subject, struct buffer_pool *pool, int nthreads, long pairs)
{
    struct worker w[MAX_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)nthreads);
    for (int t = 0; t < nthreads; t++) {
        w[t] = (struct worker){.subject = subject, .pool = pool, .pairs = pairs, .start = &start};
        if (pthread_create(&w[t].tid, NULL, run_worker, &w[t]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(1);
        }
    }
    double sum = 0;
    int err = 0;
    for (int t = 0; t < nthreads; t++) {
        pthread_join(w[t].tid, NULL);
        err |= w[t].err;
        sum += (double)pairs / w[t].seconds;
    }
    pthread_barrier_destroy(&start);
    return err ? -1 : sum / nthreads;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    long pairs = argc > 1 ? atol(argv[1]) : 2000000;
    int runs = argc > 2 ? atoi(argv[2]) : 7;
    if (pairs <= 0 || runs <= 0 || runs > MAX_RUNS) {
        fprintf(stderr, "usage: %s [pairs_per_thread_per_run > 0] [runs 1..%d]\n", argv[0], MAX_RUNS);
        return 2;
    }

    printf("buffer pool: %d-byte alloc+free pairs, %ld pairs/thread/run, median of %d runs, build: %s\n",
           BUF_SIZE, pairs, runs, AURAIO_BENCH_BUILDTYPE);
    printf("%-8s %18s %18s %8s %10s %10s\n", "threads", "pool pairs/s/thr", "memalign pairs/s/thr", "ratio",
           "pool ns", "memalign ns");

    for (int nthreads = 1; nthreads <= MAX_THREADS; nthreads++) {
        struct buffer_pool *pool = NULL;
        int rc = auraio__pool_create(&pool, 0);
        if (rc) {
            fprintf(stderr, "auraio__pool_create: %s\n", strerror(-rc));
            return 1;
        }
        double pool_rate[MAX_RUNS], ma_rate[MAX_RUNS];
        for (int r = 0; r < runs; r++) {
            /* Interleaved so drift (frequency, noise) hits both subjects alike. */
            pool_rate[r] = run_once(POOL, pool, nthreads, pairs);
            ma_rate[r] = run_once(MEMALIGN, NULL, nthreads, pairs);
            if (pool_rate[r] < 0 || ma_rate[r] < 0) {
                fprintf(stderr, "allocation failed during the run\n");
                return 1;
            }
        }
        auraio__pool_destroy(pool);
        double p = median(pool_rate, runs), m = median(ma_rate, runs);
        printf("%-8d %18.0f %18.0f %7.2fx %10.2f %10.2f\n", nthreads, p, m, p / m, 1e9 / p, 1e9 / m);
        printf("  verdict (%d thread%s): pool fast path is %s5x posix_memalign+free (measured %.2fx)\n", nthreads,
               nthreads > 1 ? "s" : "", p / m >= 5.0 ? ">= " : "below ", p / m);
    }
    return 0;
}
