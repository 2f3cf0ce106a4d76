/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lifetime metrics: folding the controller's windows into the lifetime histogram, and reading a
 * consistent snapshot while I/O runs (see metrics.h for why each sample is seen exactly once).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "metrics.h"

#include "controller.h"
#include "engine.h"
#include "ring.h"

#include <string.h>

void auraio__metrics_fold(struct ring_lifetime *l, const struct ctl_acc *a)
{
    auraio__histogram_merge(&l->folded, &a->hist);
    l->folded_lat_sum_ns += a->lat_sum_ns;
}

void auraio__metrics_kinds(const struct ring_lifetime *l, uint64_t *ops, uint64_t *bytes,
                           uint64_t (*errors)[AURAIO_ERR_CLASS_COUNT])
{
    for (unsigned op = 0; op < REQ_OP_COUNT; op++) {
        if (op == REQ_TIMEOUT)
            continue; /* a timer is not an operation */
        unsigned k = auraio__metrics_kind_of[op];
        if (ops)
            ops[k] += l->ops[op];
        if (bytes && op <= REQ_WRITEV)
            bytes[k] += l->bytes[op];
        if (errors)
            for (unsigned c = 0; c < AURAIO_ERR_CLASS_COUNT; c++)
                errors[k][c] += l->errors[op][c];
    }
}

static void add_histogram(auraio_metrics_t *out, const struct histogram *h)
{
    out->latency_count += h->total;
    out->latency_overflow += h->overflow;
    for (unsigned b = 0; b < AURAIO_HIST_BUCKETS; b++)
        out->latency_buckets[b] += h->buckets[b];
}

/* Scratch for one ring's active window, copied out under the ring's lock. */
struct window_copy {
    struct histogram hist;
    uint64_t lat_sum_ns;
};

/* Polite tries before blocking on a ring's lock (each a few hundred ns apart). */
#define POLITE_TRIES 2000

static inline void cpu_relax(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#elif defined(__GNUC__) && defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/*
 * Take a ring's lock without making the I/O thread pay for it. A blocked waiter marks the mutex
 * contended, and then every unlock by the thread doing I/O - hundreds of thousands a second, each
 * re-locking at once - is a futex wake system call until the waiter finally wins, which measured
 * took milliseconds: several percent of cached-read IOPS at 10 scrapes a second. Trying in the
 * gaps between the I/O thread's critical sections costs it nothing; blocking stays the fallback.
 */
static void lock_politely(struct auraio_lock *m)
{
    for (int i = 0; i < POLITE_TRIES; i++) {
        if (auraio__lock_try(m))
            return;
        for (int k = 0; k < 16; k++)
            cpu_relax();
    }
    auraio__lock(m);
}

void auraio__metrics_ring_kinds(struct ring *r, uint64_t *ops, uint64_t *bytes)
{
    lock_politely(&r->lock);
    auraio__metrics_kinds(&r->life, ops, bytes, NULL);
    auraio__unlock(&r->lock);
}

/* Add ring @p i into @p out. Called with the tick lock held (when there is a controller). */
static void add_ring(struct auraio_engine *e, uint32_t i, auraio_metrics_t *out, struct window_copy *w)
{
    struct ring *r = &e->rings[i];
    uint32_t backlog, in_flight;

    lock_politely(&r->lock);
    auraio__histogram_reset(&w->hist);
    w->lat_sum_ns = 0;
    for (uint32_t k = 0; k < r->nclasses; k++) {
        const struct ctl_acc *active = auraio__ctl_acc_active(&r->acc[k]);
        auraio__histogram_merge(&w->hist, &active->hist);
        w->lat_sum_ns += active->lat_sum_ns;
    }
    backlog = r->backlog_len;
    in_flight = r->inflight;
    auraio__metrics_kinds(&r->life, out->ops, out->bytes, out->errors);
    out->submissions_at_limit += atomic_load_explicit(&r->submissions_at_limit, memory_order_relaxed);
    auraio__unlock(&r->lock);

    add_histogram(out, &w->hist);
    add_histogram(out, &r->life.folded);
    out->latency_sum_ns += w->lat_sum_ns + r->life.folded_lat_sum_ns;
    out->backlog_length += (int)backlog;
    out->in_flight += (int)in_flight;
    out->in_flight_limit += ring_limit(r);
    out->queue_depth += (int)r->nreqs;

    if (e->adaptive) {
        /* Every device's share of this ring: the worst P99 and P50, the first device's phase. */
        uint32_t n = atomic_load_explicit(&e->devices.count, memory_order_relaxed);
        for (uint32_t k = 1; k < n; k++) {
            struct ctl_ring_stats cs;
            auraio__ctl_ring_stats(e->dev[k].ctl, i, &cs);
            if (k == 1)
                out->phase = cs.phase;
            out->target_infeasible = out->target_infeasible || cs.target_infeasible;
            if (cs.p50_ns > out->p50_ns)
                out->p50_ns = cs.p50_ns;
            if (cs.p99_ns > out->p99_ns)
                out->p99_ns = cs.p99_ns;
        }
    }
}

void auraio__metrics_read(struct auraio_engine *e, int ring, auraio_metrics_t *out)
{
    struct window_copy w;
    memset(out, 0, sizeof(*out));
    out->phase = AURAIO_CTL_PHASE_FIXED;
    /* The tick lock keeps the swap, the fold and the controller's reset out while we read: no
     * window can be in transit between the ring's accumulator and `folded`. */
    pthread_mutex_lock(&e->tick_lock);
    if (ring >= 0) {
        add_ring(e, (uint32_t)ring, out, &w);
    } else {
        for (uint32_t i = 0; i < e->ring_count; i++)
            add_ring(e, i, out, &w);
        out->adaptive_spills = atomic_load_explicit(&e->adaptive_spills, memory_order_relaxed);
    }
    double target_ms = e->opts.max_p99_latency_ms;
    pthread_mutex_unlock(&e->tick_lock);
    out->target_p99_ns = (uint64_t)(target_ms * 1e6 + 0.5);
}
