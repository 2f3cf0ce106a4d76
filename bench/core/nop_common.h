/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared between nop_bench.c (auraio's raw layer) and nop_liburing.c (the liburing peer). The two
 * live in separate translation units because lib/uring_abi.h and <liburing.h> both define the
 * kernel's ring structures; this header only speaks in plain C types.
 */
#ifndef AURAIO_BENCH_NOP_COMMON_H
#define AURAIO_BENCH_NOP_COMMON_H

#include <stdint.h>

/*
 * Run @p total NOPs in batches of @p batch through liburing with the same setup flags as the
 * auraio loop. @return elapsed nanoseconds, or 0 on failure (message on stderr). Defined only when
 * the build found liburing.
 */
uint64_t nop_liburing_run(unsigned batch, uint64_t total, unsigned setup_flags);

#endif
