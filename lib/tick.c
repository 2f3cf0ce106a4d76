/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine's side of depth control and its statistics. The tick is completion-driven: the
 * polling thread that finds it due (every TICK_INTERVAL_NS) and wins a try-lock moves each ring's
 * completion window out under that ring's lock, runs the controller (controller.c, pure) and
 * applies the new limits. There is no thread to start, stop or join, and no idle wakeups.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "engine.h"

#include "clock.h"
#include "controller.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Epochs need a few ms of completions at NVMe rates; ticking faster only costs try-locks, slower
 * delays convergence (see doc/controller.md). */
#define TICK_INTERVAL_NS 2000000ull

/* Hand the controller's current decision to every ring. Called with tick_lock held. */
static void apply_limits(struct auraio_engine *e)
{
    atomic_store_explicit(&e->group_limit, auraio__ctl_group_depth(e->ctl), memory_order_relaxed);
    for (uint32_t i = 0; i < e->ring_count; i++)
        auraio__ring_set_limits(&e->rings[i], (int)auraio__ctl_ring_limit(e->ctl, i),
                                (int)auraio__ctl_ring_batch(e->ctl, i));
}

static uint64_t target_ns(double ms)
{
    return (uint64_t)(ms * 1e6 + 0.5);
}

int auraio__tick_start(struct auraio_engine *e, const auraio_options_t *opts, uint32_t ring_max)
{
    int rc = pthread_mutex_init(&e->tick_lock, NULL);
    if (rc)
        return -rc;
    e->tick_lock_ready = true;
    rc = pthread_mutex_init(&e->reg_lock, NULL);
    if (rc)
        return -rc;
    e->reg_lock_ready = true;
    if (opts->disable_adaptive)
        return 0;
    e->tick_in = calloc(e->ring_count, sizeof(*e->tick_in));
    if (!e->tick_in)
        return -ENOMEM;
    struct ctl_config cc = {
        .ring_count = e->ring_count,
        .ring_max = ring_max,
        .w_init = opts->initial_in_flight ? (uint32_t)opts->initial_in_flight * e->ring_count : 0,
        .p99_target_ns = target_ns(opts->max_p99_latency_ms),
        .seed = e->id,
    };
    uint64_t now = auraio__now_ns();
    rc = auraio__ctl_group_init(&e->ctl, &cc, now);
    if (rc < 0)
        return rc;
    apply_limits(e);
    atomic_store_explicit(&e->next_tick_ns, now + TICK_INTERVAL_NS, memory_order_relaxed);
    return 0;
}

/*
 * The controller tick, completion-driven: the polling thread that finds it due and wins the
 * try-lock moves each ring's window out (one ring lock at a time), updates the controller and
 * applies the new limits. Costs one relaxed load per reap batch when not due.
 */
/* What a tick changed that the log hook reports, collected under the tick lock and logged after
 * it is released (the handler is user code). */
struct tick_events {
    int old_phase, new_phase;
    bool infeasible; /* the target was just found infeasible (first time for this target) */
    uint64_t p99_ns, target_ns;
};

static void tick_events_collect(struct auraio_engine *e, struct tick_events *ev)
{
    ev->new_phase = auraio__ctl_group_phase(e->ctl);
    struct ctl_ring_stats cs;
    auraio__ctl_ring_stats(e->ctl, 0, &cs);
    ev->infeasible = cs.target_infeasible && !e->infeasible_logged;
    if (ev->infeasible) {
        e->infeasible_logged = true;
        ev->p99_ns = cs.p99_ns;
        ev->target_ns = target_ns(e->opts.max_p99_latency_ms);
    }
}

static void tick_events_log(const struct tick_events *ev)
{
    if (ev->new_phase != ev->old_phase)
        auraio__log(AURAIO_LOG_DEBUG, "phase_change: %s -> %s", auraio__ctl_phase_name(ev->old_phase),
                    auraio__ctl_phase_name(ev->new_phase));
    if (ev->infeasible)
        auraio__log(AURAIO_LOG_WARN,
                    "target_infeasible: P99 target %.3f ms cannot be met even at the smallest depth "
                    "(last window P99 %.3f ms); holding the smallest depth",
                    (double)ev->target_ns / 1e6, (double)ev->p99_ns / 1e6);
}

void auraio__tick_maybe(struct auraio_engine *e, uint64_t now)
{
    if (!e->ctl || now < atomic_load_explicit(&e->next_tick_ns, memory_order_relaxed))
        return;
    if (pthread_mutex_trylock(&e->tick_lock) != 0)
        return;
    struct tick_events ev = {.old_phase = -1, .new_phase = -1};
    if (now >= atomic_load_explicit(&e->next_tick_ns, memory_order_relaxed)) {
        ev.old_phase = auraio__ctl_group_phase(e->ctl);
        for (uint32_t i = 0; i < e->ring_count; i++) {
            auraio__ring_take_window(&e->rings[i], &e->tick_in[i]);
            /* Before update() resets the window: the lifetime histogram costs no work per I/O. */
            auraio__metrics_fold(&e->rings[i].life, e->tick_in[i].acc);
        }
        auraio__ctl_group_waited(e->ctl, atomic_load_explicit(&e->waited_ns, memory_order_relaxed));
        auraio__ctl_group_update(e->ctl, e->tick_in, now);
        apply_limits(e);
        atomic_store_explicit(&e->next_tick_ns, now + TICK_INTERVAL_NS, memory_order_relaxed);
        tick_events_collect(e, &ev);
    }
    pthread_mutex_unlock(&e->tick_lock);
    tick_events_log(&ev);
}

void auraio__engine_ring_stats(struct auraio_engine *e, uint32_t i, auraio_ring_stats_t *out)
{
    struct ring *r = &e->rings[i];
    memset(out, 0, sizeof(*out));
    for (unsigned k = 0; k < AURAIO_OP_KIND_COUNT; k++) {
        out->ops_completed += atomic_load_explicit(&r->life.ops[k], memory_order_relaxed);
        out->bytes_transferred += atomic_load_explicit(&r->life.bytes[k], memory_order_relaxed);
    }
    out->submissions_at_limit = atomic_load_explicit(&r->submissions_at_limit, memory_order_relaxed);
    out->pending_count = ring_pending(r);
    out->in_flight_limit = ring_limit(r);
    out->batch_threshold = atomic_load_explicit(&r->batch_threshold, memory_order_relaxed);
    out->queue_depth = (int)r->nreqs;
    out->phase = AURAIO_CTL_PHASE_FIXED;
    if (e->ctl) {
        struct ctl_ring_stats cs;
        pthread_mutex_lock(&e->tick_lock);
        auraio__ctl_ring_stats(e->ctl, i, &cs);
        pthread_mutex_unlock(&e->tick_lock);
        out->phase = cs.phase;
        out->target_infeasible = cs.target_infeasible;
        out->p99_latency_ms = (double)cs.p99_ns / 1e6;
        out->p50_latency_ms = (double)cs.p50_ns / 1e6;
        out->throughput_bps = cs.throughput_bps;
    }
}

void auraio__engine_stats(struct auraio_engine *e, auraio_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < e->ring_count; i++) {
        auraio_ring_stats_t rs;
        auraio__engine_ring_stats(e, i, &rs);
        out->ops_completed += rs.ops_completed;
        out->bytes_transferred += rs.bytes_transferred;
        out->submissions_at_limit += rs.submissions_at_limit;
        out->pending_count += rs.pending_count;
        out->in_flight_limit += rs.in_flight_limit;
        out->throughput_bps += rs.throughput_bps;
        if (rs.p99_latency_ms > out->p99_latency_ms)
            out->p99_latency_ms = rs.p99_latency_ms;
    }
    out->adaptive_spills = atomic_load_explicit(&e->adaptive_spills, memory_order_relaxed);
    if (e->ctl) {
        int w = (int)atomic_load_explicit(&e->group_limit, memory_order_relaxed);
        if (w < out->in_flight_limit)
            out->in_flight_limit = w;
    }
}

int auraio__engine_histogram(struct auraio_engine *e, uint32_t ring, auraio_histogram_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!e->ctl) {
        /* Without a controller no window is kept; an empty histogram with the bucket count. */
        out->bucket_count = AURAIO_HISTOGRAM_BUCKETS;
        return 0;
    }
    pthread_mutex_lock(&e->tick_lock);
    auraio__histogram_export(auraio__ctl_ring_histogram(e->ctl, ring), out);
    pthread_mutex_unlock(&e->tick_lock);
    return 0;
}

int auraio__engine_set_p99_target(struct auraio_engine *e, double ms)
{
    pthread_mutex_lock(&e->tick_lock);
    e->opts.max_p99_latency_ms = ms;
    e->infeasible_logged = false; /* a new target may be found infeasible again */
    if (e->ctl)
        auraio__ctl_set_p99_target(e->ctl, target_ns(ms));
    pthread_mutex_unlock(&e->tick_lock);
    return 0;
}

