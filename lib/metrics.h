/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lifetime metrics of a ring: monotonic for the life of the engine, never reset by the
 * controller's window swap. Two parts, chosen so that a completion pays nothing beyond what it
 * paid before this module existed:
 *  - counters by op kind (ops, bytes, errors by class), bumped once per completion where the ring
 *    already counted completions (finish_locked), under the ring's lock, single writer, stored
 *    relaxed so readers need no lock;
 *  - the latency histogram and its exact sum, which are NOT recorded again per completion: the
 *    controller's accumulator already records them, so the tick folds each swapped-out window
 *    into `folded` before the controller consumes and resets it. A sample is therefore in exactly
 *    one place at any time: the ring's active accumulator (ring lock), or `folded` (tick lock).
 *    The swap, the fold and the controller update all happen under the tick lock, so a reader
 *    holding the tick lock and then the ring lock sees each sample once (auraio__metrics_ring).
 */
#ifndef AURAIO_METRICS_H
#define AURAIO_METRICS_H

#include "auraio.h"
#include "compiler.h"
#include "histogram.h"
#include "request.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

struct ctl_acc;
struct auraio_engine;

struct ring_lifetime {
    _Atomic uint64_t ops[AURAIO_OP_KIND_COUNT];
    _Atomic uint64_t bytes[AURAIO_OP_KIND_COUNT];
    _Atomic uint64_t errors[AURAIO_OP_KIND_COUNT][AURAIO_ERR_CLASS_COUNT];
    /* Windows already handed to the controller; written and read under the engine's tick lock. */
    struct histogram folded;
    uint64_t folded_lat_sum_ns;
};

/* The op kind of each request op: one load on the completion path, where a switch was a jump
 * through gcc's own table plus range checks (callgrind, issue #11). */
_Static_assert(REQ_OP_COUNT == 14, "a new request op needs its kind in auraio__metrics_kind_of");
static const uint8_t auraio__metrics_kind_of[REQ_OP_COUNT] = {
    [REQ_READ] = AURAIO_OP_KIND_READ,        [REQ_WRITE] = AURAIO_OP_KIND_WRITE,
    [REQ_READV] = AURAIO_OP_KIND_READ,       [REQ_WRITEV] = AURAIO_OP_KIND_WRITE,
    [REQ_FSYNC] = AURAIO_OP_KIND_FSYNC,      [REQ_OPENAT] = AURAIO_OP_KIND_OTHER,
    [REQ_CLOSE] = AURAIO_OP_KIND_OTHER,      [REQ_STATX] = AURAIO_OP_KIND_OTHER,
    [REQ_FALLOCATE] = AURAIO_OP_KIND_OTHER,  [REQ_FTRUNCATE] = AURAIO_OP_KIND_OTHER,
    [REQ_SYNC_FILE_RANGE] = AURAIO_OP_KIND_OTHER, [REQ_FADVISE] = AURAIO_OP_KIND_OTHER,
    [REQ_MADVISE] = AURAIO_OP_KIND_OTHER,    [REQ_TIMEOUT] = AURAIO_OP_KIND_OTHER,
};

static inline unsigned auraio__metrics_op_kind(uint8_t op)
{
    return op < REQ_OP_COUNT ? auraio__metrics_kind_of[op] : AURAIO_OP_KIND_OTHER;
}

static inline unsigned auraio__metrics_err_class(int32_t res)
{
    if (res == -ECANCELED)
        return AURAIO_ERR_CLASS_CANCELED;
    if (res == -ETIME || res == -ETIMEDOUT)
        return AURAIO_ERR_CLASS_TIMEDOUT;
    return AURAIO_ERR_CLASS_OTHER;
}

static inline void auraio__metrics_add(_Atomic uint64_t *c, uint64_t v)
{
    /* Single writer (the ring's lock holder): a load and a store, cheaper than an RMW. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

/* Per completion, under the ring's lock: every request whose callback is about to run, once. Only
 * reads and writes move bytes; other ops' positive results (an fd, a count) are not bytes. @p op
 * is a request's, below REQ_OP_COUNT. */
static inline void auraio__metrics_complete(struct ring_lifetime *l, uint8_t op, int32_t res)
{
    unsigned kind = auraio__metrics_kind_of[op];
    auraio__metrics_add(&l->ops[kind], 1);
    if (auraio_likely(res > 0)) {
        if (kind <= AURAIO_OP_KIND_WRITE)
            auraio__metrics_add(&l->bytes[kind], (uint64_t)res);
    } else if (res < 0) {
        auraio__metrics_add(&l->errors[kind][auraio__metrics_err_class(res)], 1);
    }
}

/* Under the tick lock, between the window swap and the controller's update (which resets @p a). */
void auraio__metrics_fold(struct ring_lifetime *l, const struct ctl_acc *a);

/* Fill @p out for ring @p ring, or the sum of all rings when @p ring < 0. Takes the tick lock, then
 * each ring's lock in turn (briefly: a 4 KiB copy). */
void auraio__metrics_read(struct auraio_engine *e, int ring, auraio_metrics_t *out);

#endif
