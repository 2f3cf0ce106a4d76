/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ring selection: which ring a submission goes to, per the engine's ring_select mode. The
 * per-thread state is tagged with the engine's unique id, so it never outlives an engine.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "engine.h"

#include <sched.h>

/* Ring selection state per thread; `engine_id` makes it void after destroy/create. */
struct select_state {
    uint64_t engine_id;
    uint32_t ring;       /* THREAD_LOCAL assignment */
    int cpu;             /* cached sched_getcpu() */
    uint32_t cpu_uses;   /* submissions since the CPU was read */
    uint32_t rng;        /* xorshift32 state for ADAPTIVE spill choices */
};
/* initial-exec, as engine.c's: read on every submit to an engine with several rings, and the
 * default model in a shared library calls __tls_get_addr for each access (11 instructions per
 * I/O in callgrind). 24 bytes fit glibc's static TLS surplus. */
#if defined(__GNUC__)
static _Thread_local struct select_state tls_select __attribute__((tls_model("initial-exec")));
#else
static _Thread_local struct select_state tls_select;
#endif

static uint32_t xorshift32(uint32_t *s)
{
    uint32_t x = *s ? *s : 0x9e3779b9u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *s = x;
    return x;
}

static void tls_bind(struct auraio_engine *e)
{
    if (tls_select.engine_id == e->id)
        return;
    tls_select.engine_id = e->id;
    tls_select.ring = atomic_fetch_add_explicit(&e->thread_ring_next, 1, memory_order_relaxed) % e->ring_count;
    tls_select.cpu_uses = 0;
    tls_select.rng = (uint32_t)(uintptr_t)&tls_select ^ (uint32_t)e->id;
}

static uint32_t local_ring(struct auraio_engine *e)
{
    /* sched_getcpu is a vDSO call but still ~20 ns; a thread rarely migrates within 32 submits. */
    if ((tls_select.cpu_uses++ & 31) == 0) {
        int cpu = sched_getcpu();
        tls_select.cpu = cpu < 0 ? 0 : cpu;
    }
    return (uint32_t)tls_select.cpu % e->ring_count;
}

static int ring_room(const struct ring *r)
{
    return ring_limit(r) - ring_pending(r);
}

/*
 * The ADAPTIVE rule: stay on the local CPU's ring unless it is at its in-flight limit
 * (pending >= limit) and that limit cannot grow. Then look at two other rings chosen at random and
 * move to the one with more room, if it has any; otherwise stay local (spilling to a full ring
 * only adds latency).
 *
 * With the controller on, a ring's limit is its share of the group's depth, split by demand: a
 * request queued on the local ring is demand that moves the share there within a few ticks. Spilling
 * it instead made one thread's demand look like two rings' and kept both half full, which cost a
 * single-threaded application 15-40% of its IOPS against one ring (two kernel entries per batch,
 * eventfd waits instead of direct ones). So only a ring already at its largest limit spills.
 */
static uint32_t select_adaptive(struct auraio_engine *e)
{
    uint32_t local = local_ring(e);
    const struct ring *lr = &e->rings[local];
    if (e->ring_count == 1 || ring_room(lr) > 0 || (e->adaptive && (uint32_t)ring_limit(lr) < lr->max_limit))
        return local;
    uint32_t a = xorshift32(&tls_select.rng) % (e->ring_count - 1);
    uint32_t b = xorshift32(&tls_select.rng) % (e->ring_count - 1);
    a += a >= local; /* skip the local ring */
    b += b >= local;
    uint32_t best = ring_room(&e->rings[a]) >= ring_room(&e->rings[b]) ? a : b;
    if (ring_room(&e->rings[best]) <= 0)
        return local;
    atomic_fetch_add_explicit(&e->adaptive_spills, 1, memory_order_relaxed);
    return best;
}

uint32_t auraio__select_ring(struct auraio_engine *e)
{
    tls_bind(e);
    switch (e->opts.ring_select) {
    case AURAIO_SELECT_CPU_LOCAL:
        return local_ring(e);
    case AURAIO_SELECT_ROUND_ROBIN:
        return atomic_fetch_add_explicit(&e->round_robin_next, 1, memory_order_relaxed) % e->ring_count;
    case AURAIO_SELECT_THREAD_LOCAL:
        return tls_select.ring;
    case AURAIO_SELECT_ADAPTIVE:
    default:
        return select_adaptive(e);
    }
}

