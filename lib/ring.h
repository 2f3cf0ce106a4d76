/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A ring: one kernel io_uring plus its request slots, backlog, in-flight limit, batch threshold
 * and counters, all behind one mutex. The lock is never held while a user callback runs: reap
 * copies completions out and frees their slots under the lock, the engine runs the callbacks
 * after unlocking.
 */
#ifndef AURAIO_RING_H
#define AURAIO_RING_H

#include "compiler.h"
#include "controller.h"
#include "device.h"
#include "lock.h"
#include "metrics.h"
#include "request.h"
#include "uring.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct ring_config {
    unsigned queue_depth; /* SQ entries and request slots */
    unsigned setup_flags;
    unsigned sqpoll_idle_ms;
    int initial_limit;
    int max_limit;
    int batch_threshold;
    int event_fd; /* registered with the ring; < 0 for none */
    struct auraio_engine *engine; /* its engine, for the thread-exit guard (exit_guard.h) */
    uint64_t engine_id;
};

/* One completed request, carried from reap (locked) to its callback (unlocked). The slot is
 * already free by then, so a callback can reuse it to resubmit, and its handle is already stale:
 * cancelling it reports -EALREADY. */
struct completion {
    auraio_callback_t callback;
    void *user_data;
    uint64_t handle;
    int32_t result;
};

/* One device class on a ring (device.h): its share of the ring's in-flight limit, its requests
 * in the kernel and its own backlog, so a device at its limit never holds back another's. */
struct ring_class {
    struct request *backlog_head;
    struct request *backlog_tail;
    struct ctl_acc *active;  /* = auraio__ctl_acc_active(&ring->acc[class]), kept by the swap: one
                                load per completion instead of the double buffer's arithmetic */
    uint32_t backlog_len;
    bool full;               /* at its limit when the current reap began (reap only) */
    /* Time requests waited in this backlog (submit to entering the kernel), for the device stats:
     * the latency samples start when a request enters the kernel (refill_locked), so the
     * controller sees the device's latency, and the wait the application added is told apart. */
    uint64_t waited_ns;
    uint64_t waited;
};

/* A class's backlog waits handed to the tick (auraio__ring_take_windows). */
struct ring_class_wait {
    uint64_t ns;
    uint64_t n;
};

/* Timed enters of one class's SQEs (ring.c, flush_sampled_locked), kept until the tick takes them
 * for the hand-off decision (device_punt.h): each one's cost per SQE, whether its SQEs were
 * flagged IOSQE_ASYNC (bit i of async) and whether they completed inside that enter (bit i of
 * done). A class keeps its first RING_SUBMIT_SAMPLES per tick. */
#define RING_SUBMIT_SAMPLES 8u
struct ring_submit_samples {
    uint32_t ns[RING_SUBMIT_SAMPLES];
    uint8_t async;
    uint8_t done;
    uint8_t n;
};

/* A class's load on a ring right now (auraio__ring_class_load). */
struct ring_class_load {
    uint32_t in_flight;
    uint32_t backlog;
    uint32_t limit;
};

struct ring {
    struct auraio_lock lock;
    struct uring uring;
    uint32_t index;
    int event_fd;
    struct auraio_engine *engine; /* ring_config's: what an entering thread's exit drains */
    uint64_t guard_id;            /* its engine_id; 0 (nothing to drain) with SQPOLL or no engine */
    bool eventfd_registered;
    bool shutdown; /* set under the lock by destroy: later submits get -ESHUTDOWN */
    /* Waiters may sleep in this ring's io_uring_enter rather than on the eventfd (engine.c,
     * "Waiting"): then anything that must wake them without a CQE of its own posts a NOP. */
    bool wake_by_nop;
    /* The engine's leader may sleep inside one ring while the others are idle (engine.c,
     * "Waiting"): *leader_ring names that ring (RING_NONE: none), shared by the engine's rings
     * (@p rings), so that the submission ending this ring's idleness can wake it there
     * (RING_SLOW_WATCHED). NULL when the leader never sleeps in a ring while another is watched. */
    _Atomic uint32_t *leader_ring;
    struct ring *rings;
    bool wake_pending; /* a wake NOP is in flight; one is enough */
    /* The alarm: a TIMEOUT at an absolute time (alarm_at, CLOCK_MONOTONIC ns) that the leader's
     * timed sleeps in this ring count on instead of the enter's own timeout, which arms and
     * cancels a kernel timer per sleep (on this project's VM 4-7 us of the thread's CPU per sleep
     * when the timer is the CPU's next event: engine.c, "Waiting"). Left in the kernel when the
     * sleep that armed it ends early, so the next sleeps whose deadline is no earlier sleep
     * untimed; at most one at a time. alarm_ts is what its SQE points at until the kernel takes
     * it. alarms_fired counts its CQEs (written under the lock, read by the engine without it). */
    bool alarm_pending;
    uint64_t alarm_at;
    struct __kernel_timespec alarm_ts;
    _Atomic uint32_t alarms_fired;
    bool failed_locally; /* flush_locked failed requests onto local_done: wake a waiter */
    uint64_t stalled_since_ns; /* first of the current run of transient submit refusals; 0: none */

    struct request *reqs;
    uint32_t nreqs;
    struct request *free_list;
    /* Lone requests whose SQE waits to enter the kernel, to be stamped then (ring.c, stamp_entering). */
    struct request *unstamped;
    /* Requests completed without the kernel (cancelled in the backlog), delivered by next reap. */
    struct request *local_done;
    uint32_t inflight; /* SQEs prepared or in the kernel, every class */
    uint32_t backlog_len; /* every class */
    /* Classes this ring has seen set up (device_ctl.c raises it under the lock); reap, refill and
     * the cancels walk only these. */
    uint32_t nclasses;
    struct ring_class cls[DEVICE_CLASSES];
    /* Per class, apart from the rest: the hot path indexes them directly (a scaled index in the
     * instruction itself, no address arithmetic: callgrind's budget counts it). */
    uint32_t cls_inflight[DEVICE_CLASSES]; /* SQEs prepared or in the kernel (timers excluded) */
    _Atomic uint32_t cls_limit[DEVICE_CLASSES]; /* written by the tick, read under the lock */
    struct device_table *devices; /* the engine's: its own close and openat forget fd numbers */
    uint32_t cancels_pending; /* our own cancel SQEs whose CQEs have not arrived */
    uint32_t timers;          /* auraio_timeout requests in the kernel (outside the limit) */
    uint32_t extra_cqes;      /* linked-timeout CQEs still to come */
    uint32_t forming;         /* slots held by chains whose last request is not submitted yet */
    /* CQEs the kernel may still post: inflight + timers + extra_cqes + cancels_pending +
     * wake_pending + alarm_pending, kept as one sum (every change to those changes it) so the CQ budget is one
     * compare (cq_has_room, which asserts the sum in debug builds). */
    uint32_t cq_owed;
    bool no_sync_cancel;      /* IORING_REGISTER_SYNC_CANCEL refused: cancel_fd walks the slots */
    bool resumed;             /* a parked chain rest was released or failed during this reap */
    bool offload;             /* submissions are timed or a class handed off (below): the flush's
                                 one test (in the padding here: the hot fields keep their place) */
    uint32_t plain_ops;       /* bit per enum request_op the kernel has (plain form; set at init) */
    uint8_t plain_slow;       /* RING_SLOW_*: the hot path's one test for all of them (the
                                 general path sorts out which) */
    bool under_valgrind;      /* running under memcheck: tell it what the kernel wrote (the client
                                 request costs ~12 instructions per read, even outside valgrind) */
    uint32_t max_limit;
    /* Registrations as this ring sees them (set and cleared by registration.c under the lock):
     * a submit using one checks it here and counts itself in *_users until its CQE is reaped,
     * so unregistering can refuse while any is in flight without nesting ring locks. */
    const struct iovec *fixed_bufs;
    uint32_t fixed_buf_count;
    uint32_t fixed_buf_users;
    uint32_t fixed_file_count; /* 0: no files registered */
    uint32_t fixed_file_users;

    /* Completion records for the controllers, one per class, swapped out by the tick under the
     * lock ([DEVICE_NONE]'s only feed the lifetime metrics). */
    struct ctl_ring_acc acc[DEVICE_CLASSES];

    /* Read without the lock by other threads (capacity, stats, ring selection): atomics written
     * under the lock, read relaxed. */
    _Alignas(AURAIO_CACHELINE) _Atomic int pending;    /* slots taken: inflight + backlog + local_done */
    _Atomic int limit;
    _Atomic int batch_threshold;
    _Atomic bool submit_stalled; /* the last enter said EAGAIN/EBUSY: SQEs wait for a retry */
    _Atomic uint64_t submissions_at_limit;
    /* Lifetime counters and folded latency windows (metrics.h). */
    _Alignas(AURAIO_CACHELINE) struct ring_lifetime life;

    /* Submissions off the thread (device_punt.h), cold unless AURAIO_SUBMIT_OFFLOAD=1. */
    /* Flags every SQE of the class carries: IOSQE_ASYNC while the device's submissions are
     * handed to io-wq (device_punt.h; written under the lock by the tick, added to the queued
     * SQEs by the flush: ring.c, flag_queued_locked), and their OR. */
    _Atomic uint8_t cls_sqe_flags[DEVICE_CLASSES];
    _Atomic uint8_t sqe_flags_any;
    /* Flushes until the next timed one (flush_sampled_locked); submit_sample_every 0: none. */
    uint32_t submit_sample_in;
    uint32_t submit_sample_every;
    struct ring_submit_samples submit_samples[DEVICE_CLASSES];
};

/* Why plain reads and writes take the general path (ring.plain_slow). */
#define RING_SLOW_FIXED 1u   /* shut down, a plain read/write opcode missing, or under memcheck */
#define RING_SLOW_WATCHED 2u /* idle, and the leader sleeps in another ring counting on that: the
                                submission that ends it wakes the leader (auraio__ring_has_work) */
/* *ring.leader_ring when the leader sleeps in no ring. */
#define RING_NONE UINT32_MAX

int auraio__ring_init(struct ring *r, uint32_t index, const struct ring_config *cfg);
/* Frees everything; the caller has drained the ring (or given up on it). Unregisters the
 * eventfd before closing the ring, so the kernel never signals a recycled fd. */
void auraio__ring_destroy(struct ring *r);

/* When a submitted SQE enters the kernel (see auraio__engine_submit for who may batch). A
 * submit's now_ns of 0 asks the ring to stamp the request when it enters the kernel. */
enum submit_flush {
    SUBMIT_ENTER_NOW,     /* before ring_submit returns */
    SUBMIT_BATCH_IF_BUSY, /* an idle ring enters at once, a busy one at the batch threshold */
    SUBMIT_BATCH,         /* at the batch threshold; the caller flushes the rest soon */
};

/* A chain its thread is still submitting (the thread keeps it; see engine.c). */
struct ring_chain {
    struct request *head;
    struct request *tail;
    uint32_t len;
    uint32_t sqes;
};

/* auraio__ring_submit's successes. */
#define RING_SUBMITTED 0 /* entered, in the backlog, or completed locally */
#define RING_QUEUED 1    /* the SQE was left queued: the caller owes a flush */
#define RING_HELD 2      /* a member of a chain still open: nothing queued yet */

/*
 * Accept one request; its SQE enters the kernel as @p flush says, or later from the backlog.
 * With @p chain (the submitting thread's open chain, maybe empty) the request joins it: it is held
 * while it has a link flag, and the chain is admitted whole when a request without one ends it.
 * @return RING_* and the handle, -EAGAIN (no free slot), -ESHUTDOWN, -EOPNOTSUPP (opcode missing
 * in this kernel), -E2BIG (the chain would hold every slot or more SQEs than the SQ has: it is
 * failed with -ECANCELED and *chain emptied).
 */
int auraio__ring_submit(struct ring *r, const struct request_args *a, uint64_t now_ns, enum submit_flush flush,
                        struct ring_chain *chain, uint64_t *handle);
/* Rings this thread's callbacks left SQEs queued on (SUBMIT_BATCH), which it enters when its batch
 * of callbacks ends (engine.c, flush_deferred): one ring index, RING_DEFERRED_MANY or
 * RING_DEFERRED_NONE. initial-exec: read on every submit from a callback, and the shared library's
 * default model would call __tls_get_addr each time. */
#define RING_DEFERRED_NONE UINT32_MAX
#define RING_DEFERRED_MANY (UINT32_MAX - 1)
#if defined(__GNUC__)
extern _Thread_local uint32_t auraio__ring_deferred __attribute__((tls_model("initial-exec")));
#else
extern _Thread_local uint32_t auraio__ring_deferred;
#endif

/* After a successful submit from a callback (SUBMIT_BATCH) to ring @p index: remember the ring
 * when it was left with queued SQEs, forget it when this submit entered them. */
static inline void auraio__ring_note_deferred(uint32_t index, int rc)
{
    if (rc == RING_QUEUED) {
        if (auraio__ring_deferred == RING_DEFERRED_NONE)
            auraio__ring_deferred = index;
        else if (auraio__ring_deferred != index)
            auraio__ring_deferred = RING_DEFERRED_MANY;
    } else if (rc == RING_SUBMITTED && auraio__ring_deferred == index) {
        auraio__ring_deferred = RING_DEFERRED_NONE; /* this submit entered everything queued there */
    }
}

/* The SQE opcode of a plain data op (request_plain.sqe_opcode; start_plain's table for the rest). */
static inline uint8_t ring_plain_opcode(unsigned op)
{
    switch (op) {
    case REQ_READ:
        return IORING_OP_READ;
    case REQ_WRITE:
        return IORING_OP_WRITE;
    case REQ_READV:
        return IORING_OP_READV;
    default:
        return IORING_OP_WRITEV;
    }
}

/* auraio__ring_submit for a lone plain read or write (request.h, struct request_plain; no chain
 * open): the hot path, the same decisions. It stamps the request itself (stamp_entering) and,
 * from a callback (SUBMIT_BATCH), notes a deferred flush. @return the handle, or 0 with errno set
 * to what auraio__ring_submit would return (the public API's own convention, so the layers above
 * pass the handle on without a test). */
uint64_t auraio__ring_submit_plain(struct ring *r, const struct request_plain *p, enum submit_flush flush);
/* See auraio_cancel_fd: cancels this ring's requests on @p fd. @return how many, or -errno. */
int auraio__ring_cancel_fd(struct ring *r, int fd);
/* Enter the kernel with every prepared SQE. @return SQEs submitted or -errno (see flush_locked:
 * transient refusals keep the SQEs queued, others fail their requests). */
int auraio__ring_flush(struct ring *r);
/* Move up to @p max completions out (freeing their slots), refill from the backlog and submit.
 * Sets *took_wake when it consumed a wake NOP (which may have been meant for a thread sleeping in
 * the ring). @return the count, or a fatal -errno from the kernel when there was nothing to deliver. */
int auraio__ring_reap(struct ring *r, struct completion *out, int max, uint64_t now_ns, bool *took_wake);
/* See auraio_cancel. */
int auraio__ring_cancel(struct ring *r, uint64_t handle);
/* 1 pending, 0 done or stale. */
int auraio__ring_request_pending(struct ring *r, uint64_t handle);
/*
 * Shut the ring for destroy: refuse new submissions, fail the backlog with -ECANCELED and ask the
 * kernel to cancel everything in flight. May be called again to re-issue the cancels.
 */
void auraio__ring_cancel_all(struct ring *r);
/* True when a reap or flush has something to do right now: CQEs ready (or held in the kernel),
 * local completions, or SQEs not yet entered. A waiter checks this before it sleeps. With
 * @p watch (the leader is about to sleep inside another ring, r->leader_ring set): also true when
 * anything is pending here; else the ring is marked RING_SLOW_WATCHED, and the next submission
 * to it wakes the leader in its ring. */
bool auraio__ring_has_work(struct ring *r, bool watch);
/* Under the lock: hand each class's filled accumulator to the tick (in[c * stride]) and report
 * its occupancy; classes this ring has not set up get a NULL accumulator. Each class's backlog
 * waits since the last call are added to @p waits[c] (nclasses entries) when it is not NULL. */
void auraio__ring_take_windows(struct ring *r, struct ctl_ring_input *in, uint32_t nclasses, uint32_t stride,
                               struct ring_class_wait *waits);
/* Class @p cls's requests in the kernel, in its backlog, and its limit on this ring (takes the
 * lock; zeros for a class the ring has not set up). */
void auraio__ring_class_load(struct ring *r, uint32_t cls, struct ring_class_load *out);
/* Apply the controllers' decisions: class @p cls's share (clamped to [1, max_limit]). A raised
 * limit lets backlog in at the next reap. */
void auraio__ring_set_class_limit(struct ring *r, uint32_t cls, uint32_t limit);
/* The ring's total limit (the sum of its shares) and batch threshold. */
void auraio__ring_set_limits(struct ring *r, int limit, int batch_threshold);
/* Flag every SQE of class @p cls with @p sqe_flags from now on (IOSQE_ASYNC or 0). */
void auraio__ring_set_class_sqe_flags(struct ring *r, uint32_t cls, uint8_t sqe_flags);
/* Time one flush in @p every (0: none) for the hand-off decision (not with SQPOLL). */
void auraio__ring_sample_submits(struct ring *r, uint32_t every);
/* Under the lock: move classes [0, @p nclasses)'s timed enters to @p out and start again. */
void auraio__ring_take_submit_samples(struct ring *r, uint32_t nclasses, struct ring_submit_samples *out);
/* Under no lock: make classes [0, @p nclasses) live on this ring (device_ctl.c). */
void auraio__ring_add_classes(struct ring *r, uint32_t nclasses);
/* Sleep until this ring has a CQE or @p timeout_ms passes (see auraio__uring_wait_cqe). */
int auraio__ring_wait(struct ring *r, int timeout_ms);
/* Before a timed sleep in this ring that must end by @p deadline_ns: whether the sleep may go
 * untimed, because the ring's alarm, at or before the deadline, is in the kernel (armed now, at the
 * deadline, if none was pending). *@p fired: the alarm CQEs reaped so far; the sleep counts on its
 * alarm only while that count has not moved (auraio__ring_alarms_fired). */
bool auraio__ring_alarm(struct ring *r, uint64_t deadline_ns, uint32_t *fired);
static inline uint32_t auraio__ring_alarms_fired(const struct ring *r)
{
    return atomic_load_explicit(&((struct ring *)r)->alarms_fired, memory_order_relaxed);
}
/* Wake threads sleeping in auraio__ring_wait: posts one NOP unless one is already in flight. */
void auraio__ring_wake(struct ring *r);
/* True when no request occupies a slot in the kernel or the backlog (takes the lock). */
bool auraio__ring_idle(struct ring *r);

/* The thread-exit guard (exit_guard.c): one request in the kernel. */
struct ring_kernel_req {
    uint64_t handle;
    int fd;
    uint8_t op;         /* enum request_op */
    uint8_t fixed_file; /* fd is a registered file index */
};
/* The requests in the kernel now (entered, not completed): the first @p max into @p out.
 * @return how many there are (maybe more than max). */
int auraio__ring_in_kernel(struct ring *r, struct ring_kernel_req *out, int max);
/* How many CQEs the kernel still owes for the requests @p handles name (those not completed yet,
 * not counting their CQEs already in the CQ: once there, they need no thread of their own). *cq_ready:
 * the CQEs in the CQ now. */
unsigned auraio__ring_cqes_owed(struct ring *r, const uint64_t *handles, int n, unsigned *cq_ready);
/* Sleep in the ring's io_uring_enter (which runs the calling thread's task work) until the CQ
 * holds more than @p ready CQEs or @p timeout_ms passes. Takes no lock. */
void auraio__ring_wait_beyond(struct ring *r, unsigned ready, int timeout_ms);

static inline int ring_pending(const struct ring *r)
{
    return atomic_load_explicit(&((struct ring *)r)->pending, memory_order_relaxed);
}

static inline bool ring_submit_stalled(const struct ring *r)
{
    return atomic_load_explicit(&((struct ring *)r)->submit_stalled, memory_order_relaxed);
}

static inline int ring_limit(const struct ring *r)
{
    return atomic_load_explicit(&((struct ring *)r)->limit, memory_order_relaxed);
}

#endif
