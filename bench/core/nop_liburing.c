/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The peer for nop_bench: the smallest liburing loop that does what the auraio loop does - queue
 * @batch NOPs, submit them with one io_uring_enter, consume every CQE in bulk - so the ratio
 * measures our SQE/CQE handling and syscall wrapper, not a difference in the work asked for.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "nop_common.h"

#include <liburing.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t nop_liburing_run(unsigned batch, uint64_t total, unsigned setup_flags)
{
    struct io_uring ring;
    struct io_uring_cqe *cqes[256];
    int rc = io_uring_queue_init(batch * 2, &ring, setup_flags);
    if (rc < 0) {
        fprintf(stderr, "liburing: io_uring_queue_init: %s\n", strerror(-rc));
        return 0;
    }
    uint64_t done = 0;
    uint64_t start = now_ns();
    while (done < total) {
        for (unsigned i = 0; i < batch; i++) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_nop(sqe);
            io_uring_sqe_set_data64(sqe, done + i + 1);
        }
        rc = io_uring_submit(&ring);
        if (rc < 0) {
            fprintf(stderr, "liburing: submit: %s\n", strerror(-rc));
            io_uring_queue_exit(&ring);
            return 0;
        }
        unsigned got = 0;
        while (got < batch) {
            unsigned n = io_uring_peek_batch_cqe(&ring, cqes, batch - got < 256 ? batch - got : 256);
            if (n == 0) {
                /* NOPs complete inline, so this only runs when the kernel deferred them. */
                struct io_uring_cqe *c;
                rc = io_uring_wait_cqe(&ring, &c);
                if (rc < 0) {
                    fprintf(stderr, "liburing: wait: %s\n", strerror(-rc));
                    io_uring_queue_exit(&ring);
                    return 0;
                }
                continue;
            }
            io_uring_cq_advance(&ring, n);
            got += n;
        }
        done += batch;
    }
    uint64_t elapsed = now_ns() - start;
    io_uring_queue_exit(&ring);
    return elapsed;
}
