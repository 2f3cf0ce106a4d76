/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ring: request slots, backlog and in-flight limit over one kernel io_uring (see ring.h).
 *
 * Invariants, all under r->lock:
 *  - every slot is in exactly one place: free list, backlog, local_done list (state DONE) or the
 *    kernel (state INFLIGHT); reap frees a slot when it copies its completion out;
 *  - inflight <= limit except right after the limit was lowered (the excess drains);
 *  - CQ budget: the CQEs the kernel may still post are at most inflight + cancels_pending +
 *    wake_pending + alarm_pending (timers and linked timeouts are requests' own). A request has at most one cancel in flight (cancel_issued is cleared only when
 *    that cancel's CQE arrives), so the first two sum to at most 2 * queue_depth, and the kernel's
 *    CQ has 2 * sq_entries >= 2 * queue_depth entries (sq_entries is queue_depth rounded up to a
 *    power of two). Only the wake NOP and the alarm could exceed it, when queue_depth is a power of
 *    two and every slot is in flight with a cancel pending: cq_has_room() refuses them (and any
 *    cancel that would not fit), so the CQ never overflows. IORING_FEAT_NODROP kernels would keep an
 *    overflow anyway; reap flushes it (cq_needs_enter) should one ever happen.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ring.h"

#include "exit_guard.h"
#include "ops.h"
#include "uring_sys.h"

#include "clock.h"
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#if defined(AURAIO_HAVE_VALGRIND)
#include <valgrind/memcheck.h>
#endif

/* Memcheck cannot see the kernel write a read buffer (or a statx buffer): tell it the bytes the
 * kernel filled are defined. */
static void mark_read_defined(const struct request_args *a, int32_t res)
{
#if defined(AURAIO_HAVE_VALGRIND)
    if (a->op == REQ_STATX && res == 0)
        VALGRIND_MAKE_MEM_DEFINED((void *)(uintptr_t)a->addr2, sizeof(struct statx));
    if (res <= 0)
        return;
    if (a->op == REQ_READ) {
        VALGRIND_MAKE_MEM_DEFINED((void *)(uintptr_t)a->addr, (size_t)res);
    } else if (a->op == REQ_READV) {
        const struct iovec *iov = (const struct iovec *)(uintptr_t)a->addr;
        size_t left = (size_t)res;
        for (uint32_t i = 0; i < a->len && left > 0; i++) {
            size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
            VALGRIND_MAKE_MEM_DEFINED(iov[i].iov_base, n);
            left -= n;
        }
    }
#else
    (void)a;
    (void)res;
#endif
}

int auraio__ring_init(struct ring *r, uint32_t index, const struct ring_config *cfg)
{
    int rc;
    memset(r, 0, sizeof(*r));
    r->index = index;
    r->engine = cfg->engine;
    r->uring.fd = -1;
    r->event_fd = -1;
    auraio__lock_init(&r->lock);
    rc = auraio__uring_init(&r->uring, cfg->queue_depth, cfg->setup_flags, cfg->sqpoll_idle_ms);
    if (rc < 0)
        goto fail;
    /* The kernel may round entries up to a power of two; we use exactly queue_depth slots. */
    r->nreqs = cfg->queue_depth;
    r->reqs = calloc(r->nreqs, sizeof(*r->reqs));
    if (!r->reqs) {
        rc = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = r->nreqs; i-- > 0;) {
        r->reqs[i].handle = request_make_handle(index, i, 1);
        request_reshape_free(&r->reqs[i]);
        r->reqs[i].next = r->free_list;
        r->free_list = &r->reqs[i];
    }
    if (cfg->event_fd >= 0) {
        rc = auraio__uring_register_eventfd(&r->uring, cfg->event_fd);
        if (rc < 0) {
            auraio__log(AURAIO_LOG_ERROR, "eventfd_failed: ring %u cannot register the eventfd (errno %d)", index, -rc);
            goto fail;
        }
        r->eventfd_registered = true;
    }
    r->event_fd = cfg->event_fd;
    /* With SQPOLL the kernel's own thread takes the SQEs: no enter ties them to the caller. */
    r->guard_id = (r->uring.flags & IORING_SETUP_SQPOLL) ? 0 : cfg->engine_id;
#if defined(AURAIO_HAVE_VALGRIND)
    /* Memcheck alone tracks definedness; it answers this request with -1, every other tool (and
     * no valgrind) with 0. Under callgrind the requests per read would count in the budget
     * (bench/core/callgrind_ipo.py) though no run outside valgrind executes them. */
    unsigned char probe = 0;
    r->under_valgrind = RUNNING_ON_VALGRIND != 0 && VALGRIND_MAKE_MEM_DEFINED(&probe, sizeof(probe)) != 0;
    /* Memcheck's runs take the general path, which marks what the kernel wrote. */
    if (r->under_valgrind)
        r->plain_slow |= RING_SLOW_FIXED;
#endif
    _Static_assert(REQ_OP_COUNT <= 32, "plain_ops is a 32-bit mask");
    for (unsigned op = 0; op < REQ_OP_COUNT; op++) {
        struct request_args plain = {.op = (uint8_t)op};
        if (!auraio__op_missing(&r->uring, &plain))
            r->plain_ops |= 1u << op;
        else if (op <= REQ_WRITEV)
            r->plain_slow |= RING_SLOW_FIXED;
    }
    r->max_limit = (uint32_t)cfg->max_limit;
    atomic_init(&r->limit, cfg->initial_limit);
    /* DEVICE_NONE takes everything until the engine sets devices up; without the controller it
     * stays the only class, at the fixed limit. */
    r->nclasses = 1;
    atomic_init(&r->cls_limit[DEVICE_NONE], (uint32_t)cfg->initial_limit);
    for (uint32_t k = 0; k < DEVICE_CLASSES; k++)
        r->cls[k].active = auraio__ctl_acc_active(&r->acc[k]);
    atomic_init(&r->batch_threshold, cfg->batch_threshold);
    return 0;
fail:
    auraio__ring_destroy(r);
    return rc;
}

void auraio__ring_destroy(struct ring *r)
{
    /* Failing to unregister leaves the kernel signalling an fd we are about to close; nothing
     * better can be done in teardown, and the close of the ring below stops the signals anyway. */
    if (r->eventfd_registered && auraio__uring_unregister_eventfd(&r->uring) < 0)
        auraio__log(AURAIO_LOG_ERROR, "eventfd_failed: ring %u cannot unregister the eventfd; closing the ring",
                    r->index);
    r->eventfd_registered = false;
    /* The engine only gets here once the kernel returned every request (engine destroy waits for
     * it), so nothing the kernel still writes is freed; unmapping first keeps a late CQE unread. */
    auraio__uring_exit(&r->uring);
    free(r->reqs);
    r->reqs = NULL;
}

static void pending_add(struct ring *r, int delta)
{
    atomic_store_explicit(&r->pending, atomic_load_explicit(&r->pending, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}

static void counter_add(_Atomic uint64_t *c, uint64_t v)
{
    /* Single writer (the lock holder): a load and store is enough and cheaper than an RMW. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v, memory_order_relaxed);
}

static bool cq_has_room(const struct ring *r, unsigned more);
static void wake_settled(struct ring *r);

/* A soft link after an op whose failure the kernel does not treat as one (request.h). */
static bool splits_after(const struct request *q)
{
    return q->chain_next && q->args.link == IOSQE_IO_LINK && !request_op_fails_links(q->args.op);
}

/* Prepare one member's SQEs (the op, then its linked timeout when it has a deadline). The op's
 * link flag chains it to its timeout; the flag to the next member rides on both, because the op's
 * decides whether its failure breaks the chain and the timeout's keeps the chain going. */
static void start_member(struct ring *r, struct request *q, uint8_t link)
{
    uint64_t handle = q->handle;
    struct io_uring_sqe *sqe = auraio__uring_get_sqe(&r->uring);
    auraio__op_prepare(sqe, q, handle);
    q->cqes_left = 1;
    if (auraio_unlikely(q->args.timeout_ns != 0 && q->args.op != REQ_TIMEOUT)) {
        sqe->flags |= link ? link : IOSQE_IO_LINK;
        struct io_uring_sqe *lt = auraio__uring_get_sqe(&r->uring);
        auraio__op_prepare_link_timeout(lt, q, handle);
        lt->flags |= link;
        q->cqes_left = 2;
        q->timeout_result = 0;
        r->extra_cqes++;
        r->cq_owed++;
    } else {
        sqe->flags |= link;
    }
    q->state = REQ_INFLIGHT;
    if (q->args.op == REQ_TIMEOUT) {
        r->timers++;
    } else {
        r->inflight++;
        r->cls_inflight[q->args.device]++;
    }
    r->cq_owed++;
}

/*
 * Prepare the SQEs of the chain headed by @p head (a lone request is a chain of one), all or
 * none, so the kernel always sees a chain inside one submission (it ends a chain at the end of
 * each io_uring_enter). inflight < limit <= SQ size normally leaves room, but cancel and wake SQEs
 * share the SQ and a stalled submit (EAGAIN/EBUSY) keeps them there: then the caller keeps the
 * chain in the backlog. @return false when the SQ or the CQ budget has no room for it.
 */
static bool start_chain_slow(struct ring *r, struct request *head);

/* The SQE opcodes of the plain data ops (start_plain). */
static const uint8_t plain_opcode[REQ_WRITEV + 1] = {
    [REQ_READ] = IORING_OP_READ,
    [REQ_WRITE] = IORING_OP_WRITE,
    [REQ_READV] = IORING_OP_READV,
    [REQ_WRITEV] = IORING_OP_WRITEV,
};

/* A lone read or write with neither a registered buffer nor a deadline: the hot path, one SQE
 * written in place (ops.c's general preparation costs a call and a switch). */
static inline bool request_plain(const struct request *q)
{
    return q->chain_next == NULL && q->args.op <= REQ_WRITEV && !q->args.fixed_buffer && q->args.timeout_ns == 0;
}

/* Every field of a plain read's or write's SQE, each written once (no memset first: the cleared
 * fields are stores of their own, which gcc merges with their neighbours). */
static inline void prep_plain_sqe(struct io_uring_sqe *sqe, uint8_t opcode, uint8_t flags, int fd, uint64_t addr,
                                  uint32_t len, uint64_t offset, uint64_t user_data)
{
    /* opcode, flags, ioprio: one four-byte store; len and rw_flags: one eight-byte store. */
    const uint8_t head[4] = {opcode, flags, 0, 0};
    const uint32_t len_flags[2] = {len, 0};
    _Static_assert(offsetof(struct io_uring_sqe, ioprio) == 2 && offsetof(struct io_uring_sqe, fd) == 4 &&
                       offsetof(struct io_uring_sqe, rw_flags) == offsetof(struct io_uring_sqe, len) + 4,
                   "the SQE's leading fields and len/rw_flags are adjacent");
    memcpy(sqe, head, sizeof(head));
    sqe->fd = fd;
    sqe->off = offset;
    sqe->addr = addr;
    memcpy(&sqe->len, len_flags, sizeof(len_flags));
    sqe->user_data = user_data;
    sqe->buf_index = 0;
    sqe->personality = 0;
    sqe->splice_fd_in = 0;
    sqe->addr3 = 0;
    sqe->__pad2[0] = 0;
}

/* A plain request's SQE (the caller checked for room) and its accounting, from start_chain. */
static inline void start_plain(struct ring *r, struct request *q, unsigned k, bool quick)
{
    const struct request_args *a = &q->args;
    struct uring *u = &r->uring;
    struct io_uring_sqe *sqe = &u->sqes[u->sqe_tail++ & u->sq_mask];
    prep_plain_sqe(sqe, plain_opcode[a->op], a->fixed_file ? IOSQE_FIXED_FILE : 0, a->fd, a->addr, a->len, a->offset, q->handle);
    q->cqes_left = 1;
    q->state = REQ_INFLIGHT;
    q->quick = quick;
    r->inflight++;
    r->cq_owed++;
    r->cls_inflight[k]++;
}

static inline bool start_chain(struct ring *r, struct request *head)
{
    if (auraio_likely(request_plain(head))) {
        if (auraio_unlikely(r->uring.sq_entries - auraio__uring_sq_pending(&r->uring) < 1 || !cq_has_room(r, 1)))
            return false;
        bool quick = !head->finish_slow && !r->under_valgrind;
        /* A quick request is given back as it is (auraio__ring_reap): in a free slot's shape. What
         * a lone plain read or write has past the prefix, the SQE and its completion never read. */
        if (quick)
            request_reshape_free(head);
        start_plain(r, head, head->args.device, quick);
        return true;
    }
    return start_chain_slow(r, head);
}

static bool start_chain_slow(struct ring *r, struct request *head)
{
    unsigned sqes = 0;
    for (struct request *q = head; q; q = q->chain_next) {
        sqes += auraio__op_sqe_count(&q->args);
        if (splits_after(q))
            break;
    }
    if (auraio_unlikely(r->uring.sq_entries - auraio__uring_sq_pending(&r->uring) < sqes || !cq_has_room(r, sqes)))
        return false;
    for (struct request *q = head; q; q = q->chain_next) {
        if (auraio_unlikely(splits_after(q))) {
            /* The kernel would not stop the chain if this op failed: end the kernel's chain here
             * and park the rest, still counted in flight (the chain was admitted whole). */
            start_member(r, q, 0);
            q->split = true;
            q->finish_slow = true;
            for (struct request *m = q->chain_next; m; m = m->chain_next) {
                m->state = REQ_PARKED;
                r->inflight++;
                r->cq_owed++;
                r->cls_inflight[m->args.device]++;
            }
            break;
        }
        start_member(r, q, q->chain_next ? q->args.link : 0);
    }
    return true;
}

/*
 * Resolve a registered buffer (index, offset -> address) and check a fixed file index against
 * what this ring has registered, so bad indexes never reach the kernel. Counts the request as a
 * user of what it names.
 */
static int check_registered_locked(struct ring *r, struct request_args *a)
{
    if (a->fixed_file && a->fd >= 0 && (uint32_t)a->fd >= r->fixed_file_count)
        return r->fixed_file_count == 0 ? -ENOENT : -EBADF;
    if (a->file_index && a->file_index - 1 >= r->fixed_file_count)
        return r->fixed_file_count == 0 ? -ENOENT : -EBADF;
    if (a->fixed_buffer) {
        if (!r->fixed_bufs || a->buf_index >= r->fixed_buf_count)
            return -ENOENT;
        const struct iovec *iov = &r->fixed_bufs[a->buf_index];
        uint64_t offset = a->addr;
        if (offset > iov->iov_len || a->len > iov->iov_len - offset)
            return -ERANGE;
        a->addr = (uint64_t)(uintptr_t)iov->iov_base + offset;
        r->fixed_buf_users++;
    }
    if (a->fixed_file || a->file_index)
        r->fixed_file_users++;
    return 0;
}

static bool cq_has_room(const struct ring *r, unsigned more)
{
    assert(r->cq_owed == r->inflight + r->timers + r->extra_cqes + r->cancels_pending + (r->wake_pending ? 1u : 0u) +
                             (r->alarm_pending ? 1u : 0u));
    return r->cq_owed + more <= r->uring.cq_entries;
}

/* The wake NOP's CQE came, or its SQE was taken back: another may be posted. */
static void wake_settled(struct ring *r)
{
    if (r->wake_pending) {
        r->wake_pending = false;
        r->cq_owed--;
    }
}

/* The alarm's CQE came, or its SQE was taken back: a later timed sleep arms another. */
static void alarm_settled(struct ring *r)
{
    if (r->alarm_pending) {
        r->alarm_pending = false;
        r->cq_owed--;
    }
}

/*
 * Take back every SQE the kernel has not consumed and fail its request with @p err: the request
 * goes to local_done and its callback gets the error at the next reap. Cancel and wake SQEs are
 * simply dropped (their request may be cancelled again). The kernel reads the SQ only inside
 * io_uring_enter, so moving the tail back is safe; with SQPOLL its thread may be reading right now,
 * so this is never done there. @return how many requests were failed.
 */
static int fail_queued_locked(struct ring *r, int err)
{
    struct uring *u = &r->uring;
    uint32_t head = uring_load_acquire(u->ksq_head);
    int failed = 0;
    for (uint32_t i = head; i != u->sqe_tail; i++) {
        uint64_t ud = u->sqes[i & u->sq_mask].user_data;
        if (ud & USER_DATA_CANCEL_BIT) {
            r->cancels_pending--;
            r->cq_owed--;
            struct request *target = &r->reqs[handle_slot(ud)];
            if (handle_generation(target->handle) == handle_generation(ud & ~USER_DATA_CANCEL_BIT))
                target->cancel_issued = false;
            continue;
        }
        if (ud == USER_DATA_WAKE) {
            wake_settled(r);
            continue;
        }
        if (ud == USER_DATA_ALARM) {
            alarm_settled(r); /* no sleep counts on an alarm still in the SQ */
            continue;
        }
        struct request *q = &r->reqs[handle_slot(ud)];
        if (handle_generation(q->handle) != handle_generation(ud & ~USER_DATA_TIMEOUT_BIT))
            continue;
        if (ud & USER_DATA_TIMEOUT_BIT) {
            /* Its CQE will never come. The op's SQE came first: failed here (DONE), or taken by
             * the kernel, whose CQE may already be in, leaving nothing else to wait for. */
            r->extra_cqes--;
            r->cq_owed--;
            if (q->state == REQ_INFLIGHT && --q->cqes_left == 0) {
                q->state = REQ_DONE;
                q->next = r->local_done;
                r->local_done = q;
                failed++;
            }
            continue;
        }
        if (q->state != REQ_INFLIGHT)
            continue;
        if (q->args.op == REQ_TIMEOUT) {
            r->timers--;
        } else {
            r->inflight--;
            r->cls_inflight[q->args.device]--;
        }
        r->cq_owed--;
        q->state = REQ_DONE;
        q->result = err;
        q->next = r->local_done;
        r->local_done = q;
        failed++;
    }
    u->sqe_tail = head;
    uring_store_release(u->ksq_tail, head);
    return failed;
}

/* Transient refusals of io_uring_enter are retried for this long before the requests they hold
 * back fail with the error: long enough for memory pressure or a CQ overflow to clear, short
 * enough that a broken ring does not hide its requests forever. */
#define SUBMIT_RETRY_LIMIT_NS (1000ull * 1000000ull)

static void clear_stall(struct ring *r)
{
    atomic_store_explicit(&r->submit_stalled, false, memory_order_relaxed);
    r->stalled_since_ns = 0;
}

/* Enter the kernel with the prepared SQEs. What it consumed is tied to this thread, whose exit
 * must then wait for it (exit_guard.h): one thread-local compare per enter, also for an enter that
 * failed (its exit then waits for nothing of its own, at worst for the others' I/O). */
static inline int enter_locked(struct ring *r)
{
    exit_guard_note(r->engine, r->guard_id);
    return auraio__uring_submit(&r->uring, 0);
}

/* flush_locked's rare cases, out of line so the common one stays small enough to inline. */
static int flush_retry_locked(struct ring *r, int rc, unsigned queued)
{
    int total = 0;
    for (;;) {
        if (rc >= 0) {
            total += rc;
            clear_stall(r);
            /* SQPOLL: its thread consumes the SQEs later, so nothing is short yet. */
            if ((r->uring.flags & IORING_SETUP_SQPOLL) || rc == 0 || (unsigned)rc >= queued)
                return total;
            /* A short count: at least one SQE went in per round, so this is bounded by the SQ. */
            queued = auraio__uring_sq_pending(&r->uring);
            if (queued == 0 && !auraio__uring_cq_needs_enter(&r->uring))
                return total;
            rc = enter_locked(r);
            continue;
        }
        bool transient = rc == -EAGAIN || rc == -EBUSY || rc == -ENOMEM;
        if (transient) {
            uint64_t now = auraio__now_ns();
            if (r->stalled_since_ns == 0)
                r->stalled_since_ns = now;
            if (now - r->stalled_since_ns < SUBMIT_RETRY_LIMIT_NS || (r->uring.flags & IORING_SETUP_SQPOLL)) {
                atomic_store_explicit(&r->submit_stalled, true, memory_order_relaxed);
                return rc;
            }
        }
        if (!(r->uring.flags & IORING_SETUP_SQPOLL) && fail_queued_locked(r, rc) > 0)
            r->failed_locally = true;
        clear_stall(r);
        return rc;
    }
}

/*
 * Enter the kernel with every prepared SQE. A short count (the kernel stopped at an SQE it could
 * not take, whose CQE carries the error) is followed by another enter for the rest. EAGAIN, EBUSY
 * and ENOMEM mean "not now": the SQEs stay queued and the ring is marked stalled, so every poll and
 * flush retries and a sleeping waiter retries each millisecond; after SUBMIT_RETRY_LIMIT_NS of
 * refusals, or at once for any other error, the requests still queued fail with the error (their
 * callbacks deliver it). submit_stalled is true exactly while stalled_since_ns is set.
 * @return SQEs consumed, or the -errno of the refusal.
 */
/*
 * Lone plain reads and writes (auraio__ring_submit_plain) wait on r->unstamped (linked through
 * `next`, unused while a lone request is in flight) until their SQEs are about to enter the
 * kernel: one clock read stamps them all. Their latency then runs from when the kernel got them;
 * the time they sat in the SQ while the rest of a batch of callbacks ran, or until a single
 * issuer's next poll or wait (user time), is not counted, where a stamp per submit call would
 * count it and a stamp from the reap's clock alone counted the whole batch of callbacks
 * (measured: 19 us early on average at QD32 cached). A submit that enters at once is stamped by
 * its own enter's clock read.
 */
static void stamp_entering(struct ring *r)
{
    uint64_t now = auraio__now_ns();
    for (struct request *q = r->unstamped; q;) {
        struct request *next = q->next;
        q->submit_ns = now;
        q->next = NULL;
        q = next;
    }
    r->unstamped = NULL;
}

static AURAIO_NOINLINE int flush_offload_locked(struct ring *r, unsigned queued);

static inline int flush_locked(struct ring *r)
{
    if (r->unstamped)
        stamp_entering(r);
    unsigned queued = auraio__uring_sq_pending(&r->uring);
    if (queued == 0 && !auraio__uring_cq_needs_enter(&r->uring))
        return 0;
    /* One byte test per flush, none per I/O: whether this ring times flushes or hands a class
     * off (device_punt.h; off unless AURAIO_SUBMIT_OFFLOAD=1). */
    if (auraio_unlikely(r->offload))
        return flush_offload_locked(r, queued);
    int rc = enter_locked(r);
    if (auraio_likely(rc >= 0 && (unsigned)rc >= queued && r->stalled_since_ns == 0))
        return rc;
    return flush_retry_locked(r, rc, queued);
}

static struct request *lookup_locked(struct ring *r, uint64_t handle);

/* At most this many enters for one timed flush: runs of one class each. */
#define RING_SAMPLE_RUNS 4u

/* A timed run's completion check reads at most this many CQEs, for at most this many of its
 * requests (a longer run is judged by its first ones). */
#define RING_SAMPLE_CQES 64u
#define RING_SAMPLE_CHECK 16u

/* Whether the run of @p sqes SQEs starting at SQ index @p first completed inside its enter: each of
 * its requests (its first RING_SAMPLE_CHECK) has a CQE among those posted since @p cq_tail. The
 * SQ slots still hold their user_data (nothing is queued while the lock is held). */
static bool run_done_inline(struct ring *r, uint32_t first, unsigned sqes, uint32_t cq_tail)
{
    const struct uring *u = &r->uring;
    uint32_t now = uring_load_acquire(u->kcq_tail);
    unsigned want = sqes < RING_SAMPLE_CHECK ? sqes : RING_SAMPLE_CHECK, found = 0;
    for (uint32_t i = cq_tail; i != now && i - cq_tail < RING_SAMPLE_CQES && found < want; i++) {
        uint64_t ud = u->cqes[i & u->cq_mask].user_data;
        for (unsigned j = 0; j < want; j++) {
            if (u->sqes[(first + j) & u->sq_mask].user_data == ud) {
                found++;
                break;
            }
        }
    }
    return found >= want;
}

static void record_submit_sample(struct ring *r, unsigned k, bool async, bool done, uint64_t ns, unsigned sqes)
{
    struct ring_submit_samples *s = &r->submit_samples[k];
    if (k == DEVICE_NONE || s->n >= RING_SUBMIT_SAMPLES)
        return;
    uint64_t per = ns / sqes;
    s->ns[s->n] = per > UINT32_MAX ? UINT32_MAX : (uint32_t)per;
    if (async)
        s->async |= (uint8_t)(1u << s->n);
    if (done)
        s->done |= (uint8_t)(1u << s->n);
    s->n++;
}

/*
 * A timed flush (device_punt.h), one in submit_sample_every: the queued SQEs enter in runs of one
 * class and one flag each, a run per io_uring_enter (the kernel takes them in order, so a run is
 * a prefix of what is left), two clock reads around each. The time a run spends in the kernel is
 * what issuing those SQEs cost the entering thread: for a virtio disk the doorbell's VM exit, for
 * a RAM-backed device the read itself (it completes inside the enter, which the CQ then shows),
 * for a flagged SQE the hand-off to io-wq. A queue holding
 * an SQE that is no lone request's (a cancel, a wake, a linked timeout, a link), or one needing
 * more than RING_SAMPLE_RUNS enters, goes in whole and untimed. The extra enters are the price:
 * at most RING_SAMPLE_RUNS - 1 per timed flush.
 */
static int flush_sampled_locked(struct ring *r, unsigned queued)
{
    struct uring *u = &r->uring;
    uint16_t len[RING_SAMPLE_RUNS];
    uint8_t cls[RING_SAMPLE_RUNS];
    bool async[RING_SAMPLE_RUNS];
    unsigned runs = 0;
    int total = 0;
    if (r->submit_sample_every == 0 || queued == 0 || r->stalled_since_ns != 0)
        goto whole;
    for (uint32_t i = uring_load_acquire(u->ksq_head); i != u->sqe_tail; i++) {
        const struct io_uring_sqe *sqe = &u->sqes[i & u->sq_mask];
        uint64_t ud = sqe->user_data;
        if ((ud & USER_DATA_OWN_BITS) || ud == USER_DATA_WAKE || (sqe->flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK)))
            goto whole;
        const struct request *q = lookup_locked(r, ud);
        if (!q)
            goto whole;
        bool a = (sqe->flags & IOSQE_ASYNC) != 0;
        if (runs && cls[runs - 1] == q->args.device && async[runs - 1] == a && len[runs - 1] < UINT16_MAX) {
            len[runs - 1]++;
            continue;
        }
        if (runs == RING_SAMPLE_RUNS)
            goto whole;
        cls[runs] = q->args.device;
        async[runs] = a;
        len[runs] = 1;
        runs++;
    }
    for (unsigned j = 0; j < runs; j++) {
        exit_guard_note(r->engine, r->guard_id);
        uint32_t first = uring_load_acquire(u->ksq_head), cq_tail = uring_load_acquire(u->kcq_tail);
        uint64_t t0 = auraio__now_ns();
        int rc = auraio__uring_submit_some(u, len[j]);
        uint64_t t1 = auraio__now_ns();
        if (rc != (int)len[j]) {
            /* Short or refused: settled the usual way, the rest entered whole and untimed. */
            rc = flush_retry_locked(r, rc, len[j]);
            if (rc < 0)
                return rc;
            total += rc;
            break;
        }
        record_submit_sample(r, cls[j], async[j], run_done_inline(r, first, len[j], cq_tail), t1 - t0, len[j]);
        total += rc;
    }
    queued = auraio__uring_sq_pending(u);
    if (queued == 0 || r->stalled_since_ns != 0)
        return total;
whole:;
    int rc = enter_locked(r);
    if (!(auraio_likely(rc >= 0 && (unsigned)rc >= queued && r->stalled_since_ns == 0)))
        rc = flush_retry_locked(r, rc, queued);
    return rc < 0 ? rc : total + rc;
}

/* Flag the queued SQEs of every class handed off (cls_sqe_flags), just before they enter: the
 * preparation of an SQE pays nothing for the hand-off, only flushes while some class is handed off
 * do. A linked timeout's SQE keeps its flags (its op carries the class's). */
static void flag_queued_locked(struct ring *r)
{
    struct uring *u = &r->uring;
    for (uint32_t i = uring_load_acquire(u->ksq_head); i != u->sqe_tail; i++) {
        struct io_uring_sqe *sqe = &u->sqes[i & u->sq_mask];
        uint64_t ud = sqe->user_data;
        if ((ud & USER_DATA_OWN_BITS) || ud == USER_DATA_WAKE)
            continue;
        const struct request *q = lookup_locked(r, ud);
        if (q)
            sqe->flags |= atomic_load_explicit(&r->cls_sqe_flags[q->args.device], memory_order_relaxed);
    }
}

/* flush_locked's way when this flush is timed or a class is handed off (device_punt.h). */
static AURAIO_NOINLINE int flush_offload_locked(struct ring *r, unsigned queued)
{
    if (atomic_load_explicit(&r->sqe_flags_any, memory_order_relaxed))
        flag_queued_locked(r);
    if (r->submit_sample_every != 0 && --r->submit_sample_in == 0) {
        r->submit_sample_in = r->submit_sample_every;
        return flush_sampled_locked(r, queued);
    }
    int rc = enter_locked(r);
    if (auraio_likely(rc >= 0 && (unsigned)rc >= queued && r->stalled_since_ns == 0))
        return rc;
    return flush_retry_locked(r, rc, queued);
}

/* Requests failed without a CQE (flush_locked) are delivered by the next reap; wake a sleeping
 * waiter for them. Call after unlocking. */
static void wake_for_local_failures(struct ring *r, bool failed)
{
    if (!failed)
        return;
    if (r->event_fd >= 0)
        auraio__sys_eventfd_signal(r->event_fd);
    if (r->wake_by_nop)
        auraio__ring_wake(r);
}

/*
 * This ring was marked watched (auraio__ring_has_work) and a submission has just ended that: wake
 * the leader where it sleeps. Call after unlocking (ring locks never nest). No fence: the leader
 * stored *leader_ring before it took this ring's lock to set the mark, and this thread took the
 * lock after it, so it reads that ring, or a later value: RING_NONE once the leader woke, or a
 * ring of a later sleep, before which the leader looked at this ring again.
 */
static AURAIO_NOINLINE void wake_leader_elsewhere(struct ring *r)
{
    uint32_t in = atomic_load_explicit(r->leader_ring, memory_order_relaxed);
    if (in != RING_NONE && in != r->index)
        auraio__ring_wake(&r->rings[in]);
}

static bool take_local_failures(struct ring *r)
{
    bool failed = r->failed_locally;
    r->failed_locally = false;
    return failed;
}

/* A chain of @p len goes in whole while it fits under its class's limit, or alone in its class (a
 * chain longer than the limit would otherwise never go); it never straddles the limit. */
static inline bool chain_fits(const struct ring *r, unsigned k, uint32_t len)
{
    uint32_t in = r->cls_inflight[k];
    return in + len <= atomic_load_explicit(&r->cls_limit[k], memory_order_relaxed) || in == 0;
}

/* A chain of @p len must wait in its class's backlog: behind earlier backlog of that class (never
 * ahead of it), or when it does not fit under the class's limit now. Other classes' backlogs do
 * not hold it: a slow device at its limit must not stop a fast one. */
static inline bool must_wait(const struct ring *r, unsigned k, uint32_t len)
{
    return r->cls[k].backlog_head || !chain_fits(r, k, len);
}

static void backlog_push(struct ring *r, struct request *head)
{
    struct ring_class *c = &r->cls[head->args.device];
    for (struct request *m = head; m; m = m->chain_next)
        m->state = REQ_BACKLOG;
    head->next = NULL;
    if (c->backlog_tail)
        c->backlog_tail->next = head;
    else
        c->backlog_head = head;
    c->backlog_tail = head;
    c->backlog_len += head->chain_len;
    r->backlog_len += head->chain_len;
}

/*
 * SQEs queued before a submission enters the kernel on its own. From a callback (SUBMIT_BATCH) the
 * end of the batch of callbacks enters them all with one system call, within microseconds, so only
 * a half-full SQ goes early: entering every batch_threshold (8 without the controller, limit / 8
 * with it) made 4-8 enters per batch of 32 cached reads, and read_bench 0.65-0.87x a liburing loop
 * that enters once per batch, against 0.90-0.97x entering at the batch's end (issue #11). The
 * controller's threshold still batches single-issuer submissions outside callbacks.
 */
static inline unsigned batch_threshold(const struct ring *r, enum submit_flush flush)
{
    if (flush == SUBMIT_BATCH)
        return r->uring.sq_entries / 2;
    return (unsigned)atomic_load_explicit(&r->batch_threshold, memory_order_relaxed);
}

/*
 * Whether a submission of @p len requests enters the kernel before its submit returns. Batching is
 * only allowed when the caller promises a flush that no other thread can hold up (see
 * auraio__engine_submit); everything else enters the kernel now, since a thread asleep in wait
 * would never flush it. A single-issuer submit outside callbacks enters at once on an idle ring
 * (nothing to batch with, and the thread may compute a while before its next wait); from a
 * callback the batch's end comes within microseconds, and entering one SQE early only costs a
 * system call (a 9% rise in enters per read at QD32 on cached reads).
 */
static inline bool enters_now(const struct ring *r, enum submit_flush flush, uint32_t len)
{
    return flush == SUBMIT_ENTER_NOW || (flush == SUBMIT_BATCH_IF_BUSY && r->inflight + r->timers == len) ||
           auraio__uring_sq_pending(&r->uring) >= batch_threshold(r, flush);
}

/* Move backlog chains into the kernel while each class's limit allows. */
/*
 * A request leaving the backlog for the kernel is stamped again: its latency sample (the
 * controller's signal, the P99 a device target is held to) is the device's, from entering the
 * kernel to completion. An application that keeps more requests outstanding than a device's depth
 * makes them wait here, and that wait no depth can remove (Little's law): counted apart, per class
 * (auraio_device_stats_t.backlog_wait_ms), not in the device's latency.
 */
static void stamp_from_backlog(struct ring_class *c, struct request *head, uint64_t now)
{
    for (struct request *m = head; m; m = m->chain_next) {
        c->waited_ns += now > m->submit_ns ? now - m->submit_ns : 0;
        c->waited++;
        m->submit_ns = now;
    }
}

static void refill_locked(struct ring *r)
{
    if (r->backlog_len == 0)
        return;
    uint64_t now = 0;
    for (uint32_t k = 0; k < r->nclasses; k++) {
        struct ring_class *c = &r->cls[k];
        while (c->backlog_head && chain_fits(r, k, c->backlog_head->chain_len)) {
            struct request *q = c->backlog_head;
            if (!start_chain(r, q))
                return; /* SQ full: stays at the head of its backlog for the next reap */
            c->backlog_head = q->next;
            if (!c->backlog_head)
                c->backlog_tail = NULL;
            c->backlog_len -= q->chain_len;
            r->backlog_len -= q->chain_len;
            if (!now)
                now = auraio__now_ns(); /* one clock read per refill that starts anything */
            stamp_from_backlog(c, q, now);
        }
    }
}

static void complete_locally(struct ring *r, struct request *q, int32_t result);

/* Complete every member of the chain headed by @p head without the kernel (its callbacks run at
 * the next reap). */
static void fail_chain_locked(struct ring *r, struct request *head, int32_t result)
{
    for (struct request *q = head; q;) {
        struct request *next = q->chain_next;
        complete_locally(r, q, result);
        q = next;
    }
}

/* A request without a link flag ends the thread's chain: count the members as pending and hand
 * back the head to admit. A member cancelled while the chain was open fails the whole chain. */
static struct request *close_chain_locked(struct ring *r, struct ring_chain *chain, bool *failed)
{
    struct request *head = chain->head;
    bool cancelled = false;
    for (struct request *q = head; q; q = q->chain_next) {
        cancelled |= q->cancel_issued;
        q->cancel_issued = false;
    }
    r->forming -= chain->len - 1;
    pending_add(r, (int)chain->len);
    *chain = (struct ring_chain){0};
    /* A chain is admitted whole, so it counts against one device: its first member's that has
     * one (openat + read + close belongs to the read's device). */
    uint8_t device = DEVICE_NONE;
    for (struct request *q = head; q && device == DEVICE_NONE; q = q->chain_next)
        device = q->args.device;
    for (struct request *q = head; q; q = q->chain_next)
        q->args.device = device;
    if (cancelled) {
        fail_chain_locked(r, head, -ECANCELED);
        *failed = true;
        return NULL;
    }
    return head;
}

/* -E2BIG: the open chain can never be admitted; fail it (its members count as pending now). */
static void abandon_chain_locked(struct ring *r, struct ring_chain *chain)
{
    r->forming -= chain->len;
    pending_add(r, (int)chain->len);
    fail_chain_locked(r, chain->head, -ECANCELED);
    *chain = (struct ring_chain){0};
    r->failed_locally = true;
}

/* The opcode probe's answer for @p a: plain forms from the mask ring_init computed, the rest (a
 * registered buffer's READ_FIXED/WRITE_FIXED, a deadline's LINK_TIMEOUT) from the probe itself. */
static inline bool ring_op_missing(const struct ring *r, const struct request_args *a)
{
    if (auraio_likely(!a->fixed_buffer && a->timeout_ns == 0))
        return !(r->plain_ops & (1u << a->op));
    return auraio__op_missing(&r->uring, a);
}

int auraio__ring_submit(struct ring *r, const struct request_args *a, uint64_t now_ns, enum submit_flush flush,
                        struct ring_chain *chain, uint64_t *handle)
{
    int rc = RING_SUBMITTED;
    bool failed = false;
    if (now_ns == 0)
        now_ns = auraio__now_ns(); /* chains, the backlog and timers are stamped at submit */
    auraio__lock(&r->lock);
    /* The leader sleeps in another ring, counting on this one staying idle: wake it once this
     * submission is in (it clears the mark at every submission, taken or not; a leader woken for
     * nothing looks again and marks the ring again). */
    bool watched = r->plain_slow & RING_SLOW_WATCHED;
    r->plain_slow &= (uint8_t)~RING_SLOW_WATCHED;
    if (auraio_unlikely(r->shutdown)) {
        rc = -ESHUTDOWN;
        goto out;
    }
    if (auraio_unlikely(ring_op_missing(r, a))) {
        rc = -EOPNOTSUPP;
        goto out;
    }
    struct request *q = r->free_list;
    if (auraio_unlikely(chain != NULL) &&
        (chain->len + 1 >= r->nreqs || chain->sqes + auraio__op_sqe_count(a) > r->uring.sq_entries)) {
        /* One more member would leave no slot for anything else to finish, or the chain would
         * not fit one submission: it could never be admitted. */
        if (chain->head)
            abandon_chain_locked(r, chain);
        failed = take_local_failures(r);
        rc = -E2BIG;
        goto out;
    }
    if (auraio_unlikely(!q)) {
        rc = -EAGAIN;
        goto out;
    }
    q->args = *a; /* the slot is still on the free list: a refusal below leaves it there */
    /* Timers are outside every limit; a class the ring has not set up yet (the engine raises it
     * before it publishes the class) cannot happen, but would be DEVICE_NONE's. */
    if (a->op == REQ_TIMEOUT || a->device >= r->nclasses)
        q->args.device = DEVICE_NONE;
    if (auraio_unlikely(a->fixed_buffer || a->fixed_file || a->file_index)) {
        rc = check_registered_locked(r, &q->args);
        if (rc < 0) {
            request_reshape_free(q); /* it stays on the free list */
            goto out;
        }
        q->finish_slow = true; /* a registration user until it completes */
    }
    r->free_list = q->next;
    q->next = NULL;
    q->chain_head = q;
    q->chain_next = NULL;
    q->chain_len = 1;
    q->submit_ns = now_ns;
    q->cancel_issued = false;
    *handle = q->handle;

    struct request *head = q;
    if (auraio_unlikely(chain != NULL)) {
        if (chain->head) {
            chain->tail->chain_next = q;
            q->chain_head = chain->head;
        } else {
            chain->head = q;
        }
        chain->tail = q;
        chain->len++;
        chain->sqes += auraio__op_sqe_count(a);
        chain->head->chain_len = chain->len;
        if (a->link) {
            q->state = REQ_FORMING;
            r->forming++;
            rc = RING_HELD;
            goto out;
        }
        head = close_chain_locked(r, chain, &failed);
        if (!head)
            goto out;
    } else {
        pending_add(r, 1);
    }

    if (auraio_unlikely(a->op == REQ_TIMEOUT)) {
        /* A timer is not I/O: it never waits for the in-flight limit. With no room in the SQ or
         * the CQ budget even after a flush it is refused rather than queued behind I/O. */
        if (!start_chain(r, q)) {
            (void)flush_locked(r);
            if (!start_chain(r, q)) {
                pending_add(r, -1);
                request_reshape_free(q);
                request_retire(q);
                q->next = r->free_list;
                r->free_list = q;
                failed = take_local_failures(r);
                rc = -EAGAIN;
                goto out;
            }
        }
    } else {
        bool at_limit = must_wait(r, head->args.device, head->chain_len);
        if (at_limit || !start_chain(r, head)) {
            /* At the limit (or, rarely, no free SQE): queue in order behind earlier backlog of its
             * class, never ahead of it, the whole chain as one entry. */
            if (at_limit) {
                counter_add(&r->submissions_at_limit, 1);
                auraio__ctl_acc_at_limit(r->cls[head->args.device].active);
            }
            backlog_push(r, head);
            goto out;
        }
    }
    /* A refused enter is not this request's failure: flush_locked keeps or fails the SQEs and
     * their callbacks say so. */
    if (enters_now(r, flush, head->chain_len)) {
        (void)flush_locked(r);
        failed = take_local_failures(r) || failed;
    } else {
        rc = RING_QUEUED; /* queued, not entered: the caller owes a flush */
    }
out:
    auraio__unlock(&r->lock);
    wake_for_local_failures(r, failed);
    if (auraio_unlikely(watched))
        wake_leader_elsewhere(r);
    return rc;
}

#if defined(__GNUC__)
_Thread_local uint32_t auraio__ring_deferred __attribute__((tls_model("initial-exec"))) = RING_DEFERRED_NONE;
#else
_Thread_local uint32_t auraio__ring_deferred = RING_DEFERRED_NONE;
#endif

/*
 * auraio__ring_submit_plain in pieces, so that the common case (a slot, room, the SQE left queued
 * or entered at once) saves no registers: every call it may make is its last (a tail call), or
 * nothing is needed after it (the contended unlock's wake). The lock is held on entry to each.
 */

/* The unusual cases (no slot, shutdown, a missing opcode, the backlog or the limit, no room in
 * the SQ or the CQ budget): the general path sorts them out (and stamps at submit what goes to
 * the backlog). */
static AURAIO_COLD uint64_t submit_plain_general_unlock(struct ring *r, const struct request_plain *p,
                                                        enum submit_flush flush)
{
    auraio__unlock(&r->lock);
    struct request_args a;
    request_args_from_plain(&a, p);
    uint64_t handle = 0;
    int rc = auraio__ring_submit(r, &a, 0, flush, NULL, &handle);
    if (rc < 0) {
        errno = -rc;
        return 0;
    }
    if (flush == SUBMIT_BATCH)
        auraio__ring_note_deferred(r->index, rc);
    return handle;
}

/* The rest of a contended unlock, then the handle (submit_plain_locked). */
static AURAIO_NOINLINE uint64_t wake_returning(struct ring *r, uint64_t handle)
{
    auraio__lock_wake(&r->lock);
    return handle;
}

/* The SQE goes in now. */
static AURAIO_NOINLINE uint64_t submit_enter_unlock(struct ring *r, enum submit_flush flush, uint64_t handle)
{
    (void)flush_locked(r);
    bool failed = take_local_failures(r);
    auraio__unlock(&r->lock);
    wake_for_local_failures(r, failed);
    if (flush == SUBMIT_BATCH)
        auraio__ring_note_deferred(r->index, RING_SUBMITTED);
    return handle;
}

static inline uint64_t submit_plain_locked(struct ring *r, const struct request_plain *p, enum submit_flush flush)
{
    struct request *q = r->free_list;
    /* The engine publishes a class only once every ring has set it up (device < nclasses). */
    unsigned k = p->device;
    unsigned queued = auraio__uring_sq_pending(&r->uring);
    /* Any backlog, not only this class's, and a class at its limit send it the general way
     * (which applies must_wait exactly): one ring-wide count instead of indexing the class's
     * list, and in < limit instead of chain_fits' two tests (its other case, nothing of the class
     * in flight under a limit of 0 not set yet, is admitted there too). */
    if (auraio_unlikely(!q || r->plain_slow || r->backlog_len != 0 ||
                        r->cls_inflight[k] >= atomic_load_explicit(&r->cls_limit[k], memory_order_relaxed) ||
                        queued >= r->uring.sq_entries || !cq_has_room(r, 1)))
        return submit_plain_general_unlock(r, p, flush);
    r->cls_inflight[k]++;
    r->inflight++;
    r->cq_owed++;
    r->free_list = q->next;
    uint64_t handle = q->handle;
    struct uring *u = &r->uring;
    assert(p->sqe_opcode == plain_opcode[p->op]);
    prep_plain_sqe(&u->sqes[u->sqe_tail++ & u->sq_mask], p->sqe_opcode, 0, p->fd, p->addr, p->len, p->offset,
                   handle);
    /* A free slot is a chain of one with nothing past the plain prefix (request_reshape_free):
     * only the prefix is written. */
    assert(request_free_shaped(q));
    memcpy(&q->args, p, REQUEST_PLAIN_BYTES);
    request_start_quick(q);
    /* Stamped when its SQE enters the kernel (stamp_entering): no clock read here, one per flush. */
    q->next = r->unstamped;
    r->unstamped = q;
    pending_add(r, 1);
    /* enters_now's tests, the callbacks' case first, with the SQ count taken above. */
    if (flush == SUBMIT_BATCH) {
        if (auraio_unlikely(queued + 1 >= batch_threshold(r, SUBMIT_BATCH)))
            return submit_enter_unlock(r, flush, handle);
        /* Thread-local, so the lock is not needed; the common case (this ring noted already) is
         * one compare (auraio__ring_note_deferred). */
        if (auraio_unlikely(auraio__ring_deferred != r->index))
            auraio__ring_note_deferred(r->index, RING_QUEUED);
    } else if (enters_now(r, flush, 1)) {
        return submit_enter_unlock(r, flush, handle);
    }
    /* The handle was read under the lock (the slot may complete and be reused once it is given
     * back); a contended unlock's wake is a tail call, so no register has to outlive a call. */
    if (auraio_unlikely(auraio__unlock_must_wake(&r->lock)))
        return wake_returning(r, handle);
    return handle;
}

static AURAIO_NOINLINE uint64_t submit_plain_contended(struct ring *r, const struct request_plain *p,
                                                       enum submit_flush flush)
{
    auraio__lock_wait(&r->lock);
    return submit_plain_locked(r, p, flush);
}

uint64_t auraio__ring_submit_plain(struct ring *r, const struct request_plain *p, enum submit_flush flush)
{
    if (auraio_unlikely(!auraio__lock_try(&r->lock)))
        return submit_plain_contended(r, p, flush);
    return submit_plain_locked(r, p, flush);
}

int auraio__ring_flush(struct ring *r)
{
    auraio__lock(&r->lock);
    int rc = flush_locked(r);
    bool failed = take_local_failures(r);
    auraio__unlock(&r->lock);
    wake_for_local_failures(r, failed);
    return rc;
}

/* Copy @p q's completion out and put its slot back on the free list. Registration users drop
 * here, before the callback runs, so a callback may unregister. */
static void complete_locally(struct ring *r, struct request *q, int32_t result);

/*
 * @p q, which ended the kernel's part of its chain (start_chain), completed with @p result: the
 * parked rest fails with -ECANCELED if it failed (or a parked member was cancelled, or the ring
 * is shutting down), else goes to the front of the backlog, from where this reap's refill starts
 * it (it was counted in flight all along, so it fits as the predecessor leaves).
 */
static void resolve_split_locked(struct ring *r, struct request *q, int32_t result)
{
    struct request *rest = q->chain_next;
    q->split = false;
    bool cancel = result < 0 || r->shutdown;
    uint32_t len = 0;
    for (struct request *m = rest; m; m = m->chain_next) {
        cancel |= m->cancel_issued;
        m->cancel_issued = false;
        r->inflight--;
        r->cq_owed--;
        r->cls_inflight[m->args.device]--;
        len++;
    }
    for (struct request *m = rest; m;) {
        struct request *next = m->chain_next;
        m->chain_head = rest;
        if (cancel)
            complete_locally(r, m, -ECANCELED);
        else
            m->state = REQ_BACKLOG;
        m = next;
    }
    r->resumed = true;
    if (cancel)
        return;
    struct ring_class *c = &r->cls[rest->args.device];
    rest->chain_len = len;
    rest->next = c->backlog_head;
    c->backlog_head = rest;
    if (!c->backlog_tail)
        c->backlog_tail = rest;
    c->backlog_len += len;
    r->backlog_len += len;
}

/* The end of every completion: its callback's record out, the slot back on the free list. */
static inline void hand_out_locked(struct ring *r, struct request *q, int32_t result, struct completion *c)
{
    c->callback = q->args.callback;
    c->user_data = q->args.user_data;
    c->handle = q->handle;
    c->result = result;
    request_retire(q);
    q->next = r->free_list;
    r->free_list = q;
    /* pending drops once per reap, by every completion it hands out (auraio__ring_reap). */
}

static inline void finish_locked(struct ring *r, struct request *q, int32_t result, struct completion *c)
{
    /* One test for what plain requests never have (request.h, finish_slow). */
    if (auraio_unlikely(q->finish_slow)) {
        if (q->split)
            resolve_split_locked(r, q, result);
        if (q->args.fixed_buffer)
            r->fixed_buf_users--;
        if (q->args.fixed_file || q->args.file_index)
            r->fixed_file_users--;
    }
    /* Every completion passes here once: CQEs, backlog cancels and failed submissions alike
     * (a timer too: the readers leave its op out). */
    auraio__metrics_complete(&r->life, q->args.op, result);
    request_reshape_free(q);
    hand_out_locked(r, q, result, c);
}

static struct request *lookup_locked(struct ring *r, uint64_t handle);

/* What the callback gets once every CQE of @p q is in: a timer's expiry is its success (0), and an
 * op cut short by its deadline reports -ETIME rather than the kernel's -ECANCELED (or -EINTR). */
static int32_t request_result(const struct request *q)
{
    if (q->args.op == REQ_TIMEOUT)
        return q->result == -ETIME ? 0 : q->result;
    if (q->args.timeout_ns && q->timeout_result == -ETIME && (q->result == -ECANCELED || q->result == -EINTR))
        return -ETIME;
    return q->result;
}

/* Requests a failed flush of this reap moved to local_done go out with this reap's completions. */
static int deliver_local_failures_locked(struct ring *r, struct completion *out, int room)
{
    int n = 0;
    r->failed_locally = false;
    while (r->local_done && n < room) {
        struct request *q = r->local_done;
        r->local_done = q->next;
        finish_locked(r, q, q->result, &out[n++]);
    }
    return n;
}

/* The library's own close and openat end or start an fd number's life: forget its device, so a
 * reused number is resolved again (device.h). */
static void fd_lifecycle(struct ring *r, const struct request *q, int32_t res)
{
    if (!r->devices || q->args.fixed_file || q->args.file_index)
        return;
    if (q->args.op == REQ_CLOSE)
        auraio__device_forget(r->devices, q->args.fd);
    else if (q->args.op == REQ_OPENAT && res >= 0)
        auraio__device_forget(r->devices, res);
}

/* A CQE that is not a request's own (auraio__ring_reap): our cancels, wake NOPs and a request's
 * linked timeout; CQEs of no live request are dropped. @return 1 when it completed a request
 * (its completion in *out), else 0. */
static AURAIO_NOINLINE int reap_own_cqe(struct ring *r, uint64_t ud, int32_t res, struct completion *out,
                                        bool *took_wake)
{
    if (ud & USER_DATA_CANCEL_BIT) {
        r->cancels_pending--;
        r->cq_owed--;
        /* The cancel is over, whatever it achieved: if its target is still in the kernel
         * (-EALREADY: running in a worker), a later cancel may ask again. */
        struct request *target = lookup_locked(r, ud & ~USER_DATA_CANCEL_BIT);
        if (target && target->state == REQ_INFLIGHT)
            target->cancel_issued = false;
        return 0;
    }
    if (ud == USER_DATA_WAKE) {
        wake_settled(r);
        *took_wake = true;
        return 0;
    }
    if (ud == USER_DATA_ALARM) {
        /* A leader may sleep counting on it: the caller's wake check (took_wake) sees the count
         * move and wakes it, should this thread have taken the CQE before the leader's enter. */
        alarm_settled(r);
        atomic_fetch_add_explicit(&r->alarms_fired, 1, memory_order_relaxed);
        *took_wake = true;
        return 0;
    }
    if (!(ud & USER_DATA_TIMEOUT_BIT))
        return 0; /* no live request: never a second completion */
    uint64_t h = ud & ~USER_DATA_TIMEOUT_BIT;
    if (handle_slot(h) >= r->nreqs)
        return 0;
    struct request *q = &r->reqs[handle_slot(h)];
    if (q->handle != h || q->state != REQ_INFLIGHT || q->cqes_left == 0)
        return 0;
    /* The deadline's own CQE: never a callback of its own, only the op's result. */
    q->timeout_result = res;
    r->extra_cqes--;
    r->cq_owed--;
    if (--q->cqes_left != 0)
        return 0;
    finish_locked(r, q, request_result(q), out);
    return 1;
}

int auraio__ring_reap(struct ring *r, struct completion *out, int max, uint64_t now_ns, bool *took_wake)
{
    int n = 0;

    auraio__lock(&r->lock);
    while (r->local_done && n < max) {
        struct request *q = r->local_done;
        r->local_done = q->next;
        finish_locked(r, q, q->result, &out[n++]);
    }
    int events_rc = 0;
    if (auraio__uring_cq_needs_enter(&r->uring) && auraio__uring_cq_ready(&r->uring) == 0)
        events_rc = auraio__uring_get_events(&r->uring);
    /* Whether the limit binds, as the controller needs to know, is whether completions find the
     * ring full: an application that submits exactly auraio_capacity() never meets the limit at
     * submit time (nothing goes to the backlog) yet is held by it, while one with a few I/Os
     * outstanding never fills the ring. Each completion of this reap counts once if it did. */
    /* Per class: a device at its limit binds, another's room says nothing about it. */
    for (uint32_t k = 0; k < r->nclasses; k++)
        r->cls[k].full = r->cls_inflight[k] >= atomic_load_explicit(&r->cls_limit[k], memory_order_relaxed);
    while (n < max) {
        /* CQEs are read where the kernel wrote them and their slots given back after the batch. */
        unsigned want = (unsigned)(max - n);
        uint32_t head;
        unsigned got = auraio__uring_cq_peek(&r->uring, want, &head);
        for (unsigned i = 0; i < got; i++) {
            const struct io_uring_cqe *cqe = auraio__uring_cqe_at(&r->uring, head + i);
            uint64_t ud = cqe->user_data;
            int32_t res = cqe->res;
            /* A request's CQE carries its handle (slot, ring and generation at once); anything
             * else, the library's own CQEs (request.h: cancels, wake NOPs, linked timeouts) and
             * CQEs of no live request alike, fails this one compare. */
            uint32_t slot = handle_slot(ud);
            if (auraio_unlikely(slot >= r->nreqs || r->reqs[slot].handle != ud)) {
                n += reap_own_cqe(r, ud, res, &out[n], took_wake);
                continue;
            }
            struct request *q = &r->reqs[slot]; /* formed once the slot is known to exist */
            /* A CQE always names a live INFLIGHT request at its generation; anything else
             * would be a double completion, which the accounting below must never see. */
            if (auraio_likely(request_quick_inflight(q))) {
                /* A plain read or write (request.h, quick): its one CQE completes it, its result
                 * is the CQE's, and it is a latency sample. */
                unsigned k = q->args.device;
                struct ring_class *c = &r->cls[k];
                r->inflight--;
                r->cq_owed--;
                r->cls_inflight[k]--;
                struct ctl_acc *acc = c->active; /* under the lock the tick cannot swap it */
                uint64_t latency = now_ns > q->submit_ns ? now_ns - q->submit_ns : 0;
                if (c->full)
                    auraio__ctl_acc_at_limit(acc);
                auraio__ctl_acc_record(acc, latency, res > 0 ? (uint64_t)res : 0);
                auraio__metrics_complete_data(&r->life, q->args.op, res);
                assert(request_free_shaped(q)); /* given back as it is (request_reshape_free) */
                hand_out_locked(r, q, res, &out[n++]);
                continue;
            }
            if (q->state != REQ_INFLIGHT || q->cqes_left == 0)
                continue;
            int32_t result;
            if (auraio_unlikely(q->args.op == REQ_TIMEOUT)) {
                q->result = res; /* a timer: no op, no latency, no bytes */
                r->timers--;
                r->cq_owed--;
                result = request_result(q);
            } else {
                q->result = res;
                unsigned k = q->args.device;
                struct ring_class *c = &r->cls[k];
                r->inflight--;
                r->cq_owed--;
                r->cls_inflight[k]--;
                /* Under the lock the tick cannot swap the accumulators. */
                struct ctl_acc *acc = c->active;
                /* The reap time stands for every CQE of the batch: one clock read per batch, and
                 * the batch was copied out within microseconds. */
                uint64_t latency = now_ns > q->submit_ns ? now_ns - q->submit_ns : 0;
                if (c->full)
                    auraio__ctl_acc_at_limit(acc);
                /* Only data ops that ran their course are latency samples: metadata ops, fsync and
                 * a deadline's failures say nothing about the device's depth curve. */
                if (auraio_unlikely(!request_op_is_data(q->args.op) || (q->args.timeout_ns && res < 0))) {
                    auraio__ctl_acc_record_other(acc, latency);
                    fd_lifecycle(r, q, res);
                } else {
                    uint64_t bytes = res > 0 ? (uint64_t)res : 0;
                    auraio__ctl_acc_record(acc, latency, bytes);
                }
                if (auraio_unlikely(r->under_valgrind))
                    mark_read_defined(&q->args, res);
                /* Only a deadline makes the result anything but the CQE's. */
                result = auraio_unlikely(q->args.timeout_ns != 0) ? request_result(q) : res;
            }
            if (--q->cqes_left == 0)
                finish_locked(r, q, result, &out[n++]);
        }
        if (got > 0)
            auraio__uring_cq_release(&r->uring, head + got);
        if (got < want)
            break;
    }
    refill_locked(r);
    (void)flush_locked(r); /* a refusal keeps or fails the SQEs itself; see flush_locked */
    n += deliver_local_failures_locked(r, out + n, max - n);
    if (auraio_unlikely(r->resumed)) {
        /* A chain continued (or failed) in the delivery just above: start it now, since no CQE
         * may come to do it; what fails here is delivered by the next reap. */
        r->resumed = false;
        refill_locked(r);
        (void)flush_locked(r);
        if (r->local_done)
            r->failed_locally = true;
    }
    pending_add(r, -n); /* every completion handed out freed its slot (finish_locked) */
    auraio__unlock(&r->lock);
    /* Transient results (EAGAIN/EBUSY: the overflow could not be flushed yet) are retried by the
     * next reap; anything else means the ring is unusable and the caller must hear of it. */
    if (n == 0 && events_rc < 0 && events_rc != -EAGAIN && events_rc != -EBUSY)
        return events_rc;
    return n;
}

/* The request named by @p handle if it is live at that generation; NULL otherwise. */
static struct request *lookup_locked(struct ring *r, uint64_t handle)
{
    uint32_t slot = handle_slot(handle);
    if (slot >= r->nreqs)
        return NULL;
    struct request *q = &r->reqs[slot];
    if (handle_generation(q->handle) != handle_generation(handle))
        return NULL;
    return q;
}

/* Unlink the backlog entry @p target (a chain head) and its members from the count. */
static void backlog_unlink(struct ring *r, struct request *target)
{
    struct ring_class *c = &r->cls[target->args.device];
    struct request **pp = &c->backlog_head;
    struct request *prev = NULL;
    while (*pp && *pp != target) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = target->next;
    if (c->backlog_tail == target)
        c->backlog_tail = prev;
    c->backlog_len -= target->chain_len;
    r->backlog_len -= target->chain_len;
}

static void complete_locally(struct ring *r, struct request *q, int32_t result)
{
    q->state = REQ_DONE;
    q->result = result;
    q->next = r->local_done;
    r->local_done = q;
}

/* Queue an ASYNC_CANCEL SQE; flush once to make room if the SQ is full. -EAGAIN when the SQ or
 * the CQ budget has no room for it now. */
static int queue_cancel_locked(struct ring *r, uint64_t target, unsigned flags)
{
    if (!cq_has_room(r, 1))
        return -EAGAIN;
    struct io_uring_sqe *sqe = auraio__uring_get_sqe(&r->uring);
    if (!sqe) {
        (void)flush_locked(r);
        sqe = auraio__uring_get_sqe(&r->uring);
        if (!sqe)
            return -EAGAIN;
    }
    auraio__uring_prep_cancel(sqe, target, flags, USER_DATA_CANCEL_BIT | target);
    r->cancels_pending++;
    r->cq_owed++;
    return 0;
}

int auraio__ring_cancel(struct ring *r, uint64_t handle)
{
    int rc;
    bool wake = false;
    bool failed = false;
    auraio__lock(&r->lock);
    struct request *q = lookup_locked(r, handle);
    if (r->shutdown) {
        rc = -ESHUTDOWN;
    } else if (!q || q->state == REQ_FREE || q->state == REQ_DONE) {
        rc = -EALREADY;
    } else if (q->state == REQ_BACKLOG) {
        /* A chain waiting in the backlog has not started: the whole of it is cancelled. */
        backlog_unlink(r, q->chain_head);
        fail_chain_locked(r, q->chain_head, -ECANCELED);
        wake = true;
        rc = 0;
    } else if (q->state == REQ_FORMING || q->state == REQ_PARKED) {
        /* Its chain is still open (it fails whole when its thread ends it), or it waits for a
         * predecessor in the kernel (the rest of the chain fails when that one completes). */
        rc = q->cancel_issued ? -EINPROGRESS : 0;
        q->cancel_issued = true;
    } else if (q->cancel_issued) {
        rc = -EINPROGRESS;
    } else {
        rc = queue_cancel_locked(r, handle, 0);
        if (rc == 0) {
            q->cancel_issued = true;
            int frc = flush_locked(r);
            failed = take_local_failures(r);
            /* A refusal that fails the queued SQEs also drops this cancel (cancel_issued is
             * cleared again): report it; a transient one keeps it queued, which is success. */
            if (frc < 0 && !q->cancel_issued)
                rc = frc;
        }
    }
    auraio__unlock(&r->lock);
    wake_for_local_failures(r, failed);
    /* The request completes without a CQE: wake a waiter so it is delivered promptly. */
    if (wake && r->event_fd >= 0)
        auraio__sys_eventfd_signal(r->event_fd);
    if (wake && r->wake_by_nop)
        auraio__ring_wake(r);
    return rc;
}

int auraio__ring_request_pending(struct ring *r, uint64_t handle)
{
    auraio__lock(&r->lock);
    struct request *q = lookup_locked(r, handle);
    int rc = q && (q->state == REQ_BACKLOG || q->state == REQ_INFLIGHT || q->state == REQ_FORMING ||
                   q->state == REQ_PARKED);
    auraio__unlock(&r->lock);
    return rc;
}

void auraio__ring_cancel_all(struct ring *r)
{
    auraio__lock(&r->lock);
    r->shutdown = true;
    r->plain_slow |= RING_SLOW_FIXED;
    for (uint32_t k = 0; k < r->nclasses; k++) {
        while (r->cls[k].backlog_head) {
            struct request *q = r->cls[k].backlog_head;
            backlog_unlink(r, q);
            fail_chain_locked(r, q, -ECANCELED);
        }
    }
    /* Chains left open by their threads: each member's callback runs once, with -ECANCELED. */
    for (uint32_t i = 0; i < r->nreqs && r->forming > 0; i++) {
        struct request *q = &r->reqs[i];
        if (q->state == REQ_FORMING) {
            r->forming--;
            pending_add(r, 1);
            complete_locally(r, q, -ECANCELED);
        }
    }
    /* One cancel per request still in the kernel; ASYNC_CANCEL_ANY would be one SQE, but it
     * needs 5.19 and per-request cancels keep the one-cancel-per-request CQ budget. Requests whose
     * cancel came back without effect are asked again when destroy calls this again. */
    for (uint32_t i = 0; i < r->nreqs; i++) {
        struct request *q = &r->reqs[i];
        if (q->state == REQ_INFLIGHT && !q->cancel_issued) {
            if (queue_cancel_locked(r, q->handle, 0) < 0)
                break;
            q->cancel_issued = true;
        }
    }
    /* A refusal is retried by destroy's reaps, or fails the requests (delivered by them too). */
    (void)flush_locked(r);
    auraio__unlock(&r->lock);
}

bool auraio__ring_has_work(struct ring *r, bool watch)
{
    auraio__lock(&r->lock);
    /* SQEs of a stalled ring wait for the waiter's millisecond retry, not for a spin. */
    bool unentered = auraio__uring_sq_pending(&r->uring) > 0 &&
                     !atomic_load_explicit(&r->submit_stalled, memory_order_relaxed);
    bool work = r->local_done != NULL || unentered || auraio__uring_cq_ready(&r->uring) > 0 ||
                auraio__uring_cq_needs_enter(&r->uring);
    /* Under the lock, so a submission finds the mark (auraio__ring_submit) unless this saw it. */
    if (watch && !work) {
        if (ring_pending(r) > 0)
            work = true;
        else
            r->plain_slow |= RING_SLOW_WATCHED;
    }
    auraio__unlock(&r->lock);
    return work;
}

bool auraio__ring_idle(struct ring *r)
{
    auraio__lock(&r->lock);
    bool idle = r->inflight == 0 && r->timers == 0 && r->extra_cqes == 0 && r->forming == 0 && r->backlog_len == 0 &&
                r->local_done == NULL;
    auraio__unlock(&r->lock);
    return idle;
}

/* Whether the SQE of @p handle is still queued: prepared, not yet in the kernel. */
static bool queued_in_sq(const struct ring *r, uint64_t handle)
{
    const struct uring *u = &r->uring;
    for (uint32_t i = uring_load_acquire(u->ksq_head); i != u->sqe_tail; i++) {
        if (u->sqes[i & u->sq_mask].user_data == handle)
            return true;
    }
    return false;
}

int auraio__ring_in_kernel(struct ring *r, struct ring_kernel_req *out, int max)
{
    int n = 0;
    auraio__lock(&r->lock);
    for (uint32_t i = 0; i < r->nreqs; i++) {
        const struct request *q = &r->reqs[i];
        if (q->state != REQ_INFLIGHT || queued_in_sq(r, q->handle))
            continue;
        if (n < max)
            out[n] = (struct ring_kernel_req){
                .handle = q->handle, .fd = q->args.fd, .op = q->args.op, .fixed_file = q->args.fixed_file};
        n++;
    }
    auraio__unlock(&r->lock);
    return n;
}

unsigned auraio__ring_cqes_owed(struct ring *r, const uint64_t *handles, int n, unsigned *cq_ready)
{
    unsigned left = 0;
    auraio__lock(&r->lock);
    for (int j = 0; j < n; j++) {
        const struct request *q = lookup_locked(r, handles[j]);
        if (q && q->state == REQ_INFLIGHT)
            left += q->cqes_left;
    }
    uint32_t head;
    unsigned ready = auraio__uring_cq_peek(&r->uring, UINT32_MAX, &head);
    for (unsigned i = 0; i < ready && left > 0; i++) {
        uint64_t ud = auraio__uring_cqe_at(&r->uring, head + i)->user_data;
        if (ud & USER_DATA_CANCEL_BIT)
            continue;
        uint64_t h = ud & ~USER_DATA_TIMEOUT_BIT;
        for (int j = 0; j < n; j++) {
            if (handles[j] == h) {
                const struct request *q = lookup_locked(r, h);
                if (q && q->state == REQ_INFLIGHT)
                    left--;
                break;
            }
        }
    }
    auraio__unlock(&r->lock);
    *cq_ready = ready;
    return left;
}

void auraio__ring_wait_beyond(struct ring *r, unsigned ready, int timeout_ms)
{
    if (r->uring.features & IORING_FEAT_EXT_ARG) {
        int rc = auraio__uring_wait_cqes(&r->uring, ready + 1, timeout_ms);
        if (rc == 0 || rc == -ETIME || rc == -EINTR)
            return;
        /* Refused (-EEXIST: another thread's single-issuer ring): sleep briefly instead. */
    } else {
        /* Before 5.11 no timed wait: run the task work, then sleep briefly. */
        (void)auraio__uring_get_events(&r->uring);
    }
    (void)auraio__sys_wait_readable(-1, 1); /* poll on no fd: a 1 ms sleep */
}

void auraio__ring_take_windows(struct ring *r, struct ctl_ring_input *in, uint32_t nclasses, uint32_t stride,
                               struct ring_class_wait *waits)
{
    auraio__lock(&r->lock);
    for (uint32_t k = 0; k < nclasses; k++) {
        struct ctl_ring_input *x = &in[k * stride];
        if (k >= r->nclasses) {
            *x = (struct ctl_ring_input){0};
            continue;
        }
        x->acc = auraio__ctl_acc_swap(&r->acc[k]);
        r->cls[k].active = auraio__ctl_acc_active(&r->acc[k]);
        x->in_flight = r->cls_inflight[k];
        x->pending = r->cls_inflight[k] + r->cls[k].backlog_len;
        if (waits) {
            waits[k].ns += r->cls[k].waited_ns;
            waits[k].n += r->cls[k].waited;
            r->cls[k].waited_ns = 0;
            r->cls[k].waited = 0;
        }
    }
    auraio__unlock(&r->lock);
}

void auraio__ring_class_load(struct ring *r, uint32_t cls, struct ring_class_load *out)
{
    *out = (struct ring_class_load){0};
    auraio__lock(&r->lock);
    if (cls < r->nclasses) {
        out->in_flight = r->cls_inflight[cls];
        out->backlog = r->cls[cls].backlog_len;
        out->limit = atomic_load_explicit(&r->cls_limit[cls], memory_order_relaxed);
    }
    auraio__unlock(&r->lock);
}

void auraio__ring_set_class_limit(struct ring *r, uint32_t cls, uint32_t limit)
{
    if (limit < 1)
        limit = 1;
    if (limit > r->max_limit)
        limit = r->max_limit;
    atomic_store_explicit(&r->cls_limit[cls], limit, memory_order_relaxed);
}

void auraio__ring_set_class_sqe_flags(struct ring *r, uint32_t cls, uint8_t sqe_flags)
{
    if (cls >= DEVICE_CLASSES)
        return;
    auraio__lock(&r->lock);
    atomic_store_explicit(&r->cls_sqe_flags[cls], sqe_flags, memory_order_relaxed);
    uint8_t any = 0;
    for (uint32_t k = 0; k < DEVICE_CLASSES; k++)
        any |= atomic_load_explicit(&r->cls_sqe_flags[k], memory_order_relaxed);
    atomic_store_explicit(&r->sqe_flags_any, any, memory_order_relaxed);
    r->offload = r->submit_sample_every != 0 || any != 0;
    auraio__unlock(&r->lock);
}

void auraio__ring_sample_submits(struct ring *r, uint32_t every)
{
    auraio__lock(&r->lock);
    bool sqpoll = (r->uring.flags & IORING_SETUP_SQPOLL) != 0;
    r->submit_sample_every = sqpoll ? 0 : every;
    r->submit_sample_in = r->submit_sample_every;
    r->offload = r->submit_sample_every != 0 || atomic_load_explicit(&r->sqe_flags_any, memory_order_relaxed) != 0;
    auraio__unlock(&r->lock);
}

void auraio__ring_take_submit_samples(struct ring *r, uint32_t nclasses, struct ring_submit_samples *out)
{
    auraio__lock(&r->lock);
    for (uint32_t k = 0; k < nclasses && k < DEVICE_CLASSES; k++) {
        out[k] = r->submit_samples[k];
        r->submit_samples[k] = (struct ring_submit_samples){0};
    }
    auraio__unlock(&r->lock);
}

void auraio__ring_add_classes(struct ring *r, uint32_t nclasses)
{
    auraio__lock(&r->lock);
    if (nclasses > r->nclasses)
        r->nclasses = nclasses;
    auraio__unlock(&r->lock);
}

void auraio__ring_set_limits(struct ring *r, int limit, int batch_threshold)
{
    if (limit < 1)
        limit = 1;
    if ((uint32_t)limit > r->max_limit)
        limit = (int)r->max_limit;
    if (batch_threshold < 1)
        batch_threshold = 1;
    atomic_store_explicit(&r->limit, limit, memory_order_relaxed);
    atomic_store_explicit(&r->batch_threshold, batch_threshold, memory_order_relaxed);
}

int auraio__ring_wait(struct ring *r, int timeout_ms)
{
    /* No lock: waiting consumes nothing, and the fd and mapping live as long as the ring. */
    return auraio__uring_wait_cqe(&r->uring, timeout_ms);
}

bool auraio__ring_alarm(struct ring *r, uint64_t deadline_ns, uint32_t *fired)
{
    struct uring *u = &r->uring;
    bool relies = false;
    auraio__lock(&r->lock);
    *fired = atomic_load_explicit(&r->alarms_fired, memory_order_relaxed);
    /* Only into an empty SQ that is not refused (nothing else rides on this enter, and no retry
     * holds the alarm back), and only while the CQ budget has room for its CQE. */
    if (!r->alarm_pending && auraio__uring_sq_pending(u) == 0 &&
        !atomic_load_explicit(&r->submit_stalled, memory_order_relaxed) &&
        !auraio__uring_op_missing(u, IORING_OP_TIMEOUT) && cq_has_room(r, 1)) {
        struct io_uring_sqe *sqe = auraio__uring_get_sqe(u);
        if (sqe) {
            r->alarm_ts.tv_sec = (long long)(deadline_ns / 1000000000u);
            r->alarm_ts.tv_nsec = (long long)(deadline_ns % 1000000000u);
            uring_prep(sqe, IORING_OP_TIMEOUT, -1, (uint64_t)(uintptr_t)&r->alarm_ts, 1, 0, USER_DATA_ALARM);
            sqe->timeout_flags = IORING_TIMEOUT_ABS;
            r->alarm_pending = true;
            r->alarm_at = deadline_ns;
            r->cq_owed++;
            /* Entered here, not by flush_locked: nothing else is queued, and an enter that only
             * arms the alarm must not make this thread's exit wait for the engine's I/O
             * (exit_guard.h; the kernel cancels an exiting thread's alarm, which then counts as
             * fired). A refusal takes it back: the sleep keeps its own timeout. */
            int rc = auraio__uring_submit(u, 0);
            if (rc < 1 && !(u->flags & IORING_SETUP_SQPOLL))
                (void)fail_queued_locked(r, rc < 0 ? rc : -EAGAIN);
        }
    }
    /* Counted on once the kernel has it: the SQ is empty (the kernel took everything queued). */
    relies = r->alarm_pending && r->alarm_at <= deadline_ns && auraio__uring_sq_pending(u) == 0;
    auraio__unlock(&r->lock);
    return relies;
}

void auraio__ring_wake(struct ring *r)
{
    auraio__lock(&r->lock);
    bool failed = false;
    /* No room in the CQ budget means every slot is in flight with a cancel pending: those CQEs
     * will wake the waiter anyway. */
    if (!r->wake_pending && cq_has_room(r, 1)) {
        struct io_uring_sqe *sqe = auraio__uring_get_sqe(&r->uring);
        if (!sqe) {
            (void)flush_locked(r);
            sqe = auraio__uring_get_sqe(&r->uring);
        }
        /* A full SQ means SQEs are queued; their CQEs will wake the waiter anyway. */
        if (sqe) {
            auraio__uring_prep_nop(sqe, USER_DATA_WAKE);
            r->wake_pending = true;
            r->cq_owed++;
            (void)flush_locked(r);
            failed = take_local_failures(r);
        }
    }
    auraio__unlock(&r->lock);
    /* Signal only: a NOP here could recurse into this function without end. */
    if (failed && r->event_fd >= 0)
        auraio__sys_eventfd_signal(r->event_fd);
}

/* Whether @p q works on the plain file descriptor @p fd (openat's and statx's fd is a directory
 * they look a path up in, not the file they work on). */
static bool request_uses_fd(const struct request *q, int fd)
{
    switch (q->args.op) {
    case REQ_OPENAT:
    case REQ_STATX:
    case REQ_MADVISE:
    case REQ_TIMEOUT:
        return false;
    default:
        return !q->args.fixed_file && q->args.file_index == 0 && q->args.fd == fd;
    }
}

static bool chain_uses_fd(const struct request *head, int fd)
{
    for (const struct request *q = head; q; q = q->chain_next) {
        if (request_uses_fd(q, fd))
            return true;
    }
    return false;
}

/* Kernels without IORING_REGISTER_SYNC_CANCEL (before 6.0): one ASYNC_CANCEL per request. */
static int cancel_fd_walk_locked(struct ring *r, int fd)
{
    int count = 0;
    for (uint32_t i = 0; i < r->nreqs; i++) {
        struct request *q = &r->reqs[i];
        if (q->state != REQ_INFLIGHT || q->cancel_issued || !request_uses_fd(q, fd))
            continue;
        if (queue_cancel_locked(r, q->handle, 0) < 0)
            break; /* no room: the rest stay; the count says how many were asked */
        q->cancel_issued = true;
        count++;
    }
    return count;
}

int auraio__ring_cancel_fd(struct ring *r, int fd)
{
    int count = 0;
    int rc = 0;
    bool wake = false;
    bool failed = false;
    auraio__lock(&r->lock);
    if (r->shutdown) {
        auraio__unlock(&r->lock);
        return -ESHUTDOWN;
    }
    /* The backlogs: a chain that touches the file has not started, so all of it goes. */
    for (uint32_t k = 0; k < r->nclasses; k++) {
        for (struct request *q = r->cls[k].backlog_head; q;) {
            struct request *next = q->next;
            if (chain_uses_fd(q, fd)) {
                count += (int)q->chain_len;
                backlog_unlink(r, q);
                fail_chain_locked(r, q, -ECANCELED);
                wake = true;
            }
            q = next;
        }
    }
    /* Open chains fail whole when their threads end them, parked members when their predecessor
     * completes (as auraio_cancel on a member). */
    for (uint32_t i = 0; i < r->nreqs; i++) {
        struct request *q = &r->reqs[i];
        if ((q->state == REQ_FORMING || q->state == REQ_PARKED) && !q->cancel_issued && request_uses_fd(q, fd)) {
            q->cancel_issued = true;
            count++;
        }
    }
    if (r->inflight > 0) {
        /* Prepared SQEs first, so the kernel knows every request the cancel must find. */
        (void)flush_locked(r);
        failed = take_local_failures(r);
        if (!r->no_sync_cancel) {
            struct auraio_sync_cancel_reg reg;
            memset(&reg, 0, sizeof(reg));
            reg.fd = fd;
            reg.flags = IORING_ASYNC_CANCEL_FD | IORING_ASYNC_CANCEL_ALL;
            reg.timeout.tv_sec = -1;
            reg.timeout.tv_nsec = -1;
            int n = auraio__sys_register(r->uring.fd, AURAIO_IORING_REGISTER_SYNC_CANCEL, &reg, 1);
            if (n >= 0)
                count += n;
            else if (n == -EINVAL)
                r->no_sync_cancel = true; /* before 6.0 */
            else if (n != -EBADF && n != -ENOENT)
                rc = n; /* -EBADF: the fd is closed, so no request can be found by it */
        }
        if (r->no_sync_cancel) {
            count += cancel_fd_walk_locked(r, fd);
            (void)flush_locked(r);
            failed = take_local_failures(r) || failed;
        }
    }
    auraio__unlock(&r->lock);
    wake_for_local_failures(r, failed || wake);
    return rc < 0 ? rc : count;
}
