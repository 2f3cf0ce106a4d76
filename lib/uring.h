/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One kernel io_uring: setup with flag fallback, SQ/CQ mapping, SQE preparation, publishing,
 * CQE reaping and the opcode probe. No locks, no requests, no allocation after setup: the caller
 * (ring.c) serialises every producer and consumer call with its own lock.
 */
#ifndef AURAIO_URING_H
#define AURAIO_URING_H

#include "uring_abi.h"
#include "uring_atomic.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct uring {
    int fd;
    unsigned flags;    /* setup flags the kernel granted */
    unsigned features; /* IORING_FEAT_* */
    unsigned sq_entries;
    unsigned cq_entries;

    /* Submission queue. sqe_tail is the next slot we fill; the kernel's tail is published from
     * it. The SQ index array is filled once with the identity, since slot i always holds SQE i. */
    kernel_u32 *ksq_head;
    kernel_u32 *ksq_tail;
    kernel_u32 *ksq_flags;
    unsigned sq_mask;
    struct io_uring_sqe *sqes;
    uint32_t sqe_tail;

    /* Completion queue: we are its only consumer (under the ring lock). */
    kernel_u32 *kcq_head;
    kernel_u32 *kcq_tail;
    unsigned cq_mask;
    struct io_uring_cqe *cqes;

    void *sq_map;
    size_t sq_map_len;
    void *cq_map; /* == sq_map with IORING_FEAT_SINGLE_MMAP */
    size_t cq_map_len;
    void *sqe_map;
    size_t sqe_map_len;

    bool probed;
    uint8_t op_supported[256];
};

/*
 * Create a ring with @p entries SQEs, asking for @p wanted_flags. Flags the kernel refuses with
 * EINVAL (or EPERM for SQPOLL) are dropped in a fixed order: DEFER_TASKRUN together with
 * COOP_TASKRUN/TASKRUN_FLAG (cooperative task work without a deferred list would leave a thread
 * sleeping in poll() unwoken), then SINGLE_ISSUER, SUBMIT_ALL, SQPOLL. @return 0 or -errno.
 */
int auraio__uring_init(struct uring *u, unsigned entries, unsigned wanted_flags, unsigned sqpoll_idle_ms);
/* Unmap and close; safe on a zeroed or half-built struct (fd < 0 or maps NULL). */
void auraio__uring_exit(struct uring *u);

/* True when the kernel lacks opcode @p op (probe ran and said so). Without a probe (pre-5.6
 * kernels) every opcode is assumed present. */
bool auraio__uring_op_missing(const struct uring *u, unsigned op);


/*
 * Publish prepared SQEs and enter the kernel to submit them, optionally waiting for
 * @p min_complete completions. Keeps unconsumed SQEs queued after a partial submit.
 * @return SQEs consumed by the kernel, or -errno (EINTR is retried; EAGAIN/EBUSY leave them queued).
 */
int auraio__uring_submit(struct uring *u, unsigned min_complete);
/* auraio__uring_submit offering the kernel only the first @p n queued SQEs (never with SQPOLL):
 * a timed enter of one device's run (ring.c, flush_sampled_locked). */
int auraio__uring_submit_some(struct uring *u, unsigned n);
/* Enter with GETEVENTS and min_complete 0 to run pending task work / flush overflow. */
int auraio__uring_get_events(struct uring *u);
/*
 * Sleep in the kernel until at least one CQE is ready or @p timeout_ms passes (-1: no limit; a
 * timeout needs IORING_FEAT_EXT_ARG, 5.11+). Consumes nothing, so any number of threads may wait
 * while another holds the ring lock. @return 0 when woken, -ETIME, -EINTR, or -errno.
 */
int auraio__uring_wait_cqe(struct uring *u, int timeout_ms);
/* The same, until @p min_complete CQEs are ready (counted from the CQ head at entry). */
int auraio__uring_wait_cqes(struct uring *u, unsigned min_complete, int timeout_ms);

/* A CQE copied out of the ring (struct io_uring_cqe ends in a flexible array, so it cannot be
 * an array element). */
struct uring_cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
};

/* Reading CQEs in place (the ring lock's holder is the only consumer): the first @p *head and how
 * many are ready (at most @p max), then each with cqe_at, then cq_release to give the slots back.
 * Saves copying each CQE out and back in on the reap path. */
static inline unsigned auraio__uring_cq_peek(const struct uring *u, unsigned max, uint32_t *head)
{
    *head = uring_load_relaxed(u->kcq_head); /* only we write it */
    unsigned n = uring_load_acquire(u->kcq_tail) - *head;
    return n < max ? n : max;
}

static inline const struct io_uring_cqe *auraio__uring_cqe_at(const struct uring *u, uint32_t index)
{
    return &u->cqes[index & u->cq_mask];
}

static inline void auraio__uring_cq_release(struct uring *u, uint32_t new_head)
{
    uring_store_release(u->kcq_head, new_head);
}

/* Copy up to @p max CQEs out and release their slots to the kernel. @return how many. */
unsigned auraio__uring_reap(struct uring *u, struct uring_cqe *out, unsigned max);

int auraio__uring_register_eventfd(struct uring *u, int efd);
int auraio__uring_unregister_eventfd(struct uring *u);

/* The per-I/O helpers are inline: they are a few loads and stores, and a call each (plus a memset
 * of the whole SQE) showed up in the NOP benchmark against liburing's inline versions. */

/* Next free SQE, or NULL when the SQ is full (tail - head == entries). Fields are set by a prep
 * function, which writes every field the kernel reads for that opcode. */
static inline struct io_uring_sqe *auraio__uring_get_sqe(struct uring *u)
{
    uint32_t head = uring_load_acquire(u->ksq_head);
    if (u->sqe_tail - head >= u->sq_entries)
        return NULL;
    return &u->sqes[u->sqe_tail++ & u->sq_mask];
}

/* SQEs prepared and not yet consumed by the kernel. */
static inline unsigned auraio__uring_sq_pending(const struct uring *u)
{
    return u->sqe_tail - uring_load_acquire(u->ksq_head);
}

/* True when CQEs may be waiting inside the kernel (task work or CQ overflow): enter to get them. */
static inline bool auraio__uring_cq_needs_enter(const struct uring *u)
{
    return (uring_load_relaxed(u->ksq_flags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
}

/* CQEs ready in the ring right now. */
static inline unsigned auraio__uring_cq_ready(const struct uring *u)
{
    return uring_load_acquire(u->kcq_tail) - uring_load_relaxed(u->kcq_head);
}

/* Every prep starts from a cleared SQE: stale flags, buf_index or personality from the slot's
 * previous use must never leak into a new request. */
static inline void uring_prep(struct io_uring_sqe *sqe, unsigned op, int fd, uint64_t addr, uint32_t len,
                              uint64_t offset, uint64_t user_data)
{
    *sqe = (struct io_uring_sqe){0};
    sqe->opcode = (uint8_t)op;
    sqe->fd = fd;
    sqe->addr = addr;
    sqe->len = len;
    sqe->off = offset;
    sqe->user_data = user_data;
}

static inline void auraio__uring_prep_rw(struct io_uring_sqe *sqe, unsigned op, int fd, uint64_t addr,
                                         uint32_t len, uint64_t offset, uint64_t user_data)
{
    uring_prep(sqe, op, fd, addr, len, offset, user_data);
}

static inline void auraio__uring_prep_fsync(struct io_uring_sqe *sqe, int fd, unsigned fsync_flags,
                                            uint64_t user_data)
{
    uring_prep(sqe, IORING_OP_FSYNC, fd, 0, 0, 0, user_data);
    sqe->fsync_flags = fsync_flags;
}

static inline void auraio__uring_prep_cancel(struct io_uring_sqe *sqe, uint64_t target_user_data,
                                             unsigned cancel_flags, uint64_t user_data)
{
    uring_prep(sqe, IORING_OP_ASYNC_CANCEL, -1, target_user_data, 0, 0, user_data);
    sqe->cancel_flags = cancel_flags;
}

static inline void auraio__uring_prep_nop(struct io_uring_sqe *sqe, uint64_t user_data)
{
    uring_prep(sqe, IORING_OP_NOP, -1, 0, 0, 0, user_data);
}

#endif
