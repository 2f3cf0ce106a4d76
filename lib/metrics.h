/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lifetime metrics of a ring: monotonic for the life of the engine, never reset by the
 * controller's window swap. Two parts, chosen so that a completion pays nothing beyond what it
 * paid before this module existed:
 *  - counters by request op (ops, bytes, errors by class), bumped once per completion where the
 *    ring already counted completions (finish_locked, and the reap's plain-request path). Plain
 *    counters under the ring's lock, read under it too (auraio__metrics_kinds' callers), so a
 *    completion adds to memory directly where relaxed atomics cost a load, an add and a store
 *    each. Readers fold them into the public op kinds, so a completion pays no kind lookup; a
 *    timer (REQ_TIMEOUT) is counted under its own op and never folded: it is not an operation;
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
#include <stdint.h>

struct ctl_acc;
struct auraio_engine;

struct ring_lifetime {
    uint64_t ops[REQ_OP_COUNT];
    uint64_t bytes[REQ_WRITEV + 1]; /* data ops only: other ops' results are not bytes */
    uint64_t errors[REQ_OP_COUNT][AURAIO_ERR_CLASS_COUNT];
    /* Windows already handed to the controller; written and read under the engine's tick lock. */
    struct histogram folded;
    uint64_t folded_lat_sum_ns;
};

/* The op kind of each request op, for the readers (auraio__metrics_kinds). */
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

/* Per completion, under the ring's lock: every request whose callback is about to run, once. Only
 * reads and writes move bytes; other ops' positive results (an fd, a count) are not bytes. @p op
 * is a request's, below REQ_OP_COUNT. */
static inline void auraio__metrics_complete(struct ring_lifetime *l, uint8_t op, int32_t res)
{
    l->ops[op]++;
    if (auraio_likely(res > 0)) {
        if (op <= REQ_WRITEV)
            l->bytes[op] += (uint64_t)res;
    } else if (res < 0) {
        l->errors[op][auraio__metrics_err_class(res)]++;
    }
}

/* auraio__metrics_complete for a data op (@p op <= REQ_WRITEV). */
static inline void auraio__metrics_complete_data(struct ring_lifetime *l, uint8_t op, int32_t res)
{
    l->ops[op]++;
    if (auraio_likely(res > 0))
        l->bytes[op] += (uint64_t)res;
    else if (res < 0)
        l->errors[op][auraio__metrics_err_class(res)]++;
}

/* Under the ring's lock: add @p l's counters, folded into op kinds (timers left out), to @p ops,
 * @p bytes and @p errors (any may be NULL). */
void auraio__metrics_kinds(const struct ring_lifetime *l, uint64_t *ops, uint64_t *bytes,
                           uint64_t (*errors)[AURAIO_ERR_CLASS_COUNT]);

struct ring;
/* auraio__metrics_kinds for ring @p r, whose lock it takes (politely: see metrics.c). */
void auraio__metrics_ring_kinds(struct ring *r, uint64_t *ops, uint64_t *bytes);

/* Under the tick lock, between the window swap and the controller's update (which resets @p a). */
void auraio__metrics_fold(struct ring_lifetime *l, const struct ctl_acc *a);

/* Fill @p out for ring @p ring, or the sum of all rings when @p ring < 0. Takes the tick lock, then
 * each ring's lock in turn (briefly: a 4 KiB copy). */
void auraio__metrics_read(struct auraio_engine *e, int ring, auraio_metrics_t *out);

#endif
