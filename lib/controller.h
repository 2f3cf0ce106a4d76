/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The depth controller: one instance per device group (1..N rings feeding one device), deciding
 * each ring's in-flight limit and submit batch threshold from completion records alone. It is
 * pure: no clock (now_ns is passed in), no threads, no locks, no allocation after init, and its
 * only randomness is a seeded PRNG, so tests drive it with a simulated device exactly as the engine
 * drives it with a real one. doc/controller.md explains the algorithm (a latency-curve model).
 *
 * Engine integration contract
 * ---------------------------
 * Each ring owns a `struct ctl_ring_acc` (two accumulators, one active).
 *  1. Per completion, under the ring's lock:
 *       auraio__ctl_acc_record(auraio__ctl_acc_active(&ring->acc), latency_ns, bytes)   data ops
 *       auraio__ctl_acc_record_other(auraio__ctl_acc_active(&ring->acc), latency_ns)    fsync, nop...
 *     (a handful of increments and one histogram bucket; bytes = the CQE result, >= 0).
 *  2. "The limit binds" events, each one call of
 *       auraio__ctl_acc_at_limit(auraio__ctl_acc_active(&ring->acc))
 *     - once per COMPLETION whose reap found the ring at its limit (in-flight >= limit when the
 *       reap began: the flag is taken once per reap batch and counted for each of its CQEs), and
 *     - once per submission that went to the backlog instead of the SQ.
 *     Not per submission that merely met the limit: an application that submits exactly
 *     auraio_capacity() never meets it at submit time, and counted that way it looked app-limited
 *     (the controller latched COAST at its first depth on a real device). The controller calls
 *     an epoch limit-bound when at_limit >= n / 16, so what matters is that a ring kept full
 *     yields about one event per completion and an app-limited ring (in-flight below the limit,
 *     no backlog) yields none.
 *  3. Every 1-5 ms (tick thread) or completion-driven, from ONE thread at a time:
 *       for each ring: lock; in[i].acc = auraio__ctl_acc_swap(&ring->acc);  (O(1))
 *                      in[i].pending = requests submitted by the app and not completed
 *                                      (in the kernel or in the backlog);
 *                      in[i].in_flight = requests in the kernel; unlock;
 *       auraio__ctl_group_waited(group, total ns waiters slept in the kernel, I/O in flight);
 *       auraio__ctl_group_update(group, in, now_ns);   (consumes and resets every in[i].acc)
 *       for each ring: store auraio__ctl_ring_limit(group, i) and auraio__ctl_ring_batch(group, i)
 *     The swapped-out accumulator is touched by nobody else until the next swap, and update()
 *     leaves it reset, so no sample is lost or counted twice.
 *  Stats readers call auraio__ctl_ring_stats / auraio__ctl_ring_histogram under whatever lock
 *  serialises them with update() (the engine's tick lock).
 */
#ifndef AURAIO_CONTROLLER_H
#define AURAIO_CONTROLLER_H

#include <stdbool.h>
#include <stdint.h>

#include "histogram.h"

/* Phases reported through auraio_ring_stats_t.phase and auraio_phase_name(). */
enum {
    AURAIO_CTL_PHASE_GALLOP_UP = 0, /* doubling the depth while a doubling still pays */
    AURAIO_CTL_PHASE_GALLOP_DOWN,   /* halving: even the shallowest point was on the plateau */
    AURAIO_CTL_PHASE_VERIFY,        /* one long epoch at the depth the model points to */
    AURAIO_CTL_PHASE_HOLD,          /* at the knee, watching for a change */
    AURAIO_CTL_PHASE_PROBE,         /* one epoch a step above or below the held depth */
    AURAIO_CTL_PHASE_TARGET,        /* holding a P99 target with a proportional set-point */
    AURAIO_CTL_PHASE_COAST,         /* the application, not the limit, is the bottleneck */
    AURAIO_CTL_PHASE_FIXED,         /* adaptation disabled by the user (engine-reported) */
    AURAIO_CTL_PHASE_COUNT
};

/* One ring's completions over one tick. Plain counters: written only under the ring's lock. */
struct ctl_acc {
    uint64_t n;          /* data-op completions */
    uint64_t bytes;      /* bytes transferred by them */
    uint64_t lat_sum_ns; /* sum of their latencies (Little's law) */
    uint64_t n_other;    /* fsync/nop/...: counted, but kept out of the depth signal */
    uint64_t at_limit;   /* completions reaped with the ring at its limit, plus submissions
                            queued to the backlog (contract item 2) */
    struct histogram hist;
};

static inline void auraio__ctl_acc_record(struct ctl_acc *a, uint64_t lat_ns, uint64_t bytes)
{
    a->n++;
    a->bytes += bytes;
    a->lat_sum_ns += lat_ns;
    auraio__histogram_record(&a->hist, lat_ns);
}

/* Non-data ops (fsync) have latencies unrelated to depth; mixing them into the P99 made the
 * original oscillate, so they are only counted. */
static inline void auraio__ctl_acc_record_other(struct ctl_acc *a, uint64_t lat_ns)
{
    (void)lat_ns;
    a->n_other++;
}

static inline void auraio__ctl_acc_at_limit(struct ctl_acc *a)
{
    a->at_limit++;
}

/* Double buffer owned by a ring: completions go to buf[cur]; the tick swaps in O(1). */
struct ctl_ring_acc {
    struct ctl_acc buf[2];
    unsigned cur;
};

static inline struct ctl_acc *auraio__ctl_acc_active(struct ctl_ring_acc *r)
{
    return &r->buf[r->cur];
}

/* Under the ring's lock: make the other (already reset) buffer active, return the filled one. */
static inline struct ctl_acc *auraio__ctl_acc_swap(struct ctl_ring_acc *r)
{
    struct ctl_acc *filled = &r->buf[r->cur];
    r->cur ^= 1u;
    return filled;
}

void auraio__ctl_acc_reset(struct ctl_acc *a);

struct ctl_config {
    uint32_t ring_count;     /* 1..N rings in the group */
    uint32_t w_min;          /* smallest group depth (>= 1); 0 = 1 */
    uint32_t w_max;          /* largest group depth; 0 = sum of ring_max */
    uint32_t w_init;         /* first group depth; 0 = min(4 * ring_count, w_max) */
    uint32_t ring_max;       /* per-ring ceiling (its queue depth), >= 1 */
    uint64_t p99_target_ns;  /* 0 = find the knee */
    uint64_t seed;           /* probe jitter PRNG */
};

struct ctl_ring_input {
    struct ctl_acc *acc; /* swapped-out accumulator; reset by update(); may be NULL (no data) */
    uint32_t pending;    /* submitted by the app, not completed (backlog included) */
    uint32_t in_flight;  /* in the kernel */
};

struct ctl_ring_stats {
    int phase;
    bool target_infeasible;
    uint64_t p99_ns;       /* of the last stats window; 0 without samples */
    uint64_t p50_ns;
    double throughput_bps; /* of the last stats window; 0 before the first */
    uint32_t limit;
    uint32_t batch;
};

struct ctl_group;

/** Allocate and start a group at @p now_ns. @return 0, -EINVAL, -ENOMEM. */
int auraio__ctl_group_init(struct ctl_group **out, const struct ctl_config *cfg, uint64_t now_ns);
void auraio__ctl_group_destroy(struct ctl_group *g);
/** One tick: @p in has ring_count entries. Consumes and resets every in[i].acc. */
void auraio__ctl_group_update(struct ctl_group *g, const struct ctl_ring_input *in, uint64_t now_ns);
/**
 * Tell the group how long the application has slept in the kernel waiting for completions:
 * @p waited_ns is a running total (monotonic), passed before each update. Once it has been
 * given, a silence counts as a device stall only for the part of it spent asleep: a reaper that
 * was preempted or busy elsewhere leaves the same silence in the completion stream, but says
 * nothing about the device. Without it (an application that waits in its own epoll loop), every
 * silence with I/O in flight is taken at face value.
 */
void auraio__ctl_group_waited(struct ctl_group *g, uint64_t waited_ns);
/** Change the P99 target (0 removes it). Takes effect from the next update; re-searches. */
void auraio__ctl_set_p99_target(struct ctl_group *g, uint64_t target_ns);

uint32_t auraio__ctl_ring_limit(const struct ctl_group *g, uint32_t ring);
uint32_t auraio__ctl_ring_batch(const struct ctl_group *g, uint32_t ring);
/** Sum of the group's target depth (before the per-ring split). */
uint32_t auraio__ctl_group_depth(const struct ctl_group *g);
int auraio__ctl_group_phase(const struct ctl_group *g);
void auraio__ctl_ring_stats(const struct ctl_group *g, uint32_t ring, struct ctl_ring_stats *out);
/** The ring's last complete stats-window histogram. */
const struct histogram *auraio__ctl_ring_histogram(const struct ctl_group *g, uint32_t ring);

/* What a group has learned about its device (issue #16): read under the lock that serialises
 * update(). Zeros for what the current search has not measured yet. */
struct ctl_model {
    double base_latency_ns; /* the lowest mean latency measured: the device's unloaded service time */
    double ceiling_bps;     /* the plateau of the last search's throughputs, bytes/s */
    double ceiling_ops;     /* the same in completions/s */
    uint32_t knee;          /* the knee the last search found (0: none yet) */
};
void auraio__ctl_group_model(const struct ctl_group *g, struct ctl_model *out);

/** Name of a phase (static storage); "UNKNOWN" for anything else. */
const char *auraio__ctl_phase_name(int phase);

/**
 * Scale a depth by @p f, guaranteeing progress: f < 1 returns at most w - 1 (a cut of a small
 * limit must shrink it), f > 1 at least w + 1, always clamped to [lo, hi] with lo >= 1.
 */
uint32_t auraio__ctl_scale(uint32_t w, double f, uint32_t lo, uint32_t hi);

#endif
