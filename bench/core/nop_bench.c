/* SPDX-License-Identifier: Apache-2.0 */
/*
 * NOPs per second through auraio's raw io_uring layer (lib/uring.h) in batches of 32, against the
 * same loop written with liburing, in the same process. NOPs do no I/O, so this isolates the cost
 * of preparing SQEs, entering the kernel and reaping CQEs: the floor under everything the engine
 * adds. The two loops alternate which goes first on each run, and the median of the runs is
 * reported, so frequency drift or a noisy neighbour hurts both sides alike.
 *
 * Output: human-readable lines, then one `key=value` summary line that compare_fio.py parses.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench_util.h"
#include "nop_common.h"
#include "uring.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAX_RUNS 64
#define MAX_BATCH 256

static uint64_t nop_auraio_run(unsigned batch, uint64_t total, unsigned setup_flags)
{
    struct uring u;
    struct uring_cqe cqes[MAX_BATCH];
    /* Twice the batch, like the liburing loop: the CQ (2x SQ) never overflows either way. */
    int rc = auraio__uring_init(&u, batch * 2, setup_flags, 0);
    if (rc < 0) {
        fprintf(stderr, "auraio: uring_init: %s\n", strerror(-rc));
        return 0;
    }
    uint64_t done = 0;
    uint64_t start = bench_now_ns();
    while (done < total) {
        for (unsigned i = 0; i < batch; i++)
            auraio__uring_prep_nop(auraio__uring_get_sqe(&u), done + i + 1);
        rc = auraio__uring_submit(&u, 0);
        if (rc < 0) {
            fprintf(stderr, "auraio: submit: %s\n", strerror(-rc));
            auraio__uring_exit(&u);
            return 0;
        }
        unsigned got = 0;
        while (got < batch) {
            unsigned n = auraio__uring_reap(&u, cqes, batch - got);
            if (n == 0) {
                /* Same fallback as the peer's io_uring_wait_cqe: block for one completion. */
                rc = auraio__uring_submit(&u, 1);
                if (rc < 0) {
                    fprintf(stderr, "auraio: wait: %s\n", strerror(-rc));
                    auraio__uring_exit(&u);
                    return 0;
                }
            }
            got += n;
        }
        done += batch;
    }
    uint64_t elapsed = bench_now_ns() - start;
    auraio__uring_exit(&u);
    return elapsed;
}

#ifndef AURAIO_BENCH_HAVE_LIBURING
uint64_t nop_liburing_run(unsigned batch, uint64_t total, unsigned setup_flags)
{
    (void)batch;
    (void)total;
    (void)setup_flags;
    return 0;
}
#define HAVE_PEER false
#else
#define HAVE_PEER true
#endif

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--batch N] [--ops N] [--runs N] [--single-issuer] [--quick]\n"
            "  --batch N         NOPs per io_uring_enter (default 32, max %d)\n"
            "  --ops N           NOPs per run and per side (default 4000000)\n"
            "  --runs N          runs per side; the median is reported (default 5)\n"
            "  --single-issuer   set up both rings with SINGLE_ISSUER|DEFER_TASKRUN\n"
            "  --quick           1 run of 500000 NOPs (smoke test)\n",
            argv0, MAX_BATCH);
}

int main(int argc, char **argv)
{
    unsigned batch = 32;
    uint64_t ops = 4000000;
    int runs = 5;
    unsigned flags = 0;
    static const struct option longopts[] = {
        {"batch", required_argument, NULL, 'b'}, {"ops", required_argument, NULL, 'o'},
        {"runs", required_argument, NULL, 'r'},  {"single-issuer", no_argument, NULL, 's'},
        {"quick", no_argument, NULL, 'q'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'b':
            batch = (unsigned)strtoul(optarg, NULL, 0);
            break;
        case 'o':
            ops = strtoull(optarg, NULL, 0);
            break;
        case 'r':
            runs = atoi(optarg);
            break;
        case 's':
            flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
            break;
        case 'q':
            runs = 1;
            ops = 500000;
            break;
        case 'h':
            usage(argv[0]);
            return 0;
        default:
            usage(argv[0]);
            return 2;
        }
    }
    if (batch == 0 || batch > MAX_BATCH || runs < 1 || runs > MAX_RUNS || ops < batch) {
        usage(argv[0]);
        return 2;
    }
    if (ops / 8 < batch)
        ops = (uint64_t)batch * 8;

    printf("build: %s (optimized: %s)\n", AURAIO_BENCH_BUILDTYPE, AURAIO_BENCH_OPTIMIZED);
    printf("nop: batch %u, %llu NOPs per run, %d runs, setup flags 0x%x, peer: %s\n", batch,
           (unsigned long long)ops, runs, flags, HAVE_PEER ? "liburing" : "none (liburing not found at build)");

    /* One short untimed pass each: page in the code and the ring memory. */
    if (!nop_auraio_run(batch, ops / 10 + batch, flags))
        return 1;
    if (HAVE_PEER && !nop_liburing_run(batch, ops / 10 + batch, flags))
        return 1;

    /* Each run is cut into SLICES short slices done in ABBA order and summed per side: on a
     * shared machine a burst of someone else's load then lands on both sides, not on one. */
    enum { SLICES = 8 };
    uint64_t slice = ops / SLICES;
    slice -= slice % batch;
    double a_rate[MAX_RUNS], l_rate[MAX_RUNS], ratio[MAX_RUNS];
    for (int i = 0; i < runs; i++) {
        uint64_t ta = 0, tl = 0;
        for (int k = 0; k < SLICES; k++) {
            bool auraio_first = ((k + i) % 4 == 0) || ((k + i) % 4 == 3);
            for (int side = 0; side < 2; side++) {
                bool do_auraio = (side == 0) == auraio_first;
                if (do_auraio) {
                    uint64_t t = nop_auraio_run(batch, slice, flags);
                    if (!t)
                        return 1;
                    ta += t;
                } else if (HAVE_PEER) {
                    uint64_t t = nop_liburing_run(batch, slice, flags);
                    if (!t)
                        return 1;
                    tl += t;
                }
            }
        }
        a_rate[i] = (double)(slice * SLICES) * 1e9 / (double)ta;
        l_rate[i] = HAVE_PEER ? (double)(slice * SLICES) * 1e9 / (double)tl : 0.0;
        ratio[i] = HAVE_PEER ? a_rate[i] / l_rate[i] : 0.0;
        if (HAVE_PEER)
            printf("run %d: auraio %.2f M/s  liburing %.2f M/s  ratio %.3f\n", i + 1, a_rate[i] / 1e6,
                   l_rate[i] / 1e6, ratio[i]);
        else
            printf("run %d: auraio %.2f M/s\n", i + 1, a_rate[i] / 1e6);
    }
    double am = bench_median(a_rate, runs);
    if (HAVE_PEER) {
        double lm = bench_median(l_rate, runs);
        printf("median: auraio %.2f M/s (%.1f ns/NOP)  liburing %.2f M/s (%.1f ns/NOP)  ratio auraio/liburing %.3f\n",
               am / 1e6, 1e9 / am, lm / 1e6, 1e9 / lm, am / lm);
        double pr = bench_median(ratio, runs);
        printf("median of the per-run ratios: %.3f\n", pr);
        printf("RESULT nop_auraio=%.0f nop_liburing=%.0f ratio=%.4f paired_ratio=%.4f batch=%u runs=%d build=%s\n", am,
               lm, am / lm, pr, batch, runs, AURAIO_BENCH_BUILDTYPE);
    } else {
        printf("median: auraio %.2f M/s (%.1f ns/NOP); liburing peer skipped\n", am / 1e6, 1e9 / am);
        printf("RESULT nop_auraio=%.0f nop_liburing=0 ratio=0 paired_ratio=0 batch=%u runs=%d build=%s\n", am, batch, runs,
               AURAIO_BENCH_BUILDTYPE);
    }
    return 0;
}
