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
    /* The groups themselves start when their devices are first seen (device_ctl.c). */
    rc = auraio__devices_start(e, ring_max, !opts->disable_adaptive);
    if (rc < 0 || opts->disable_adaptive)
        return rc;
    atomic_store_explicit(&e->next_tick_ns, auraio__now_ns() + TICK_INTERVAL_NS, memory_order_relaxed);
    return 0;
}

/*
 * The controller tick, completion-driven: the polling thread that finds it due and wins the
 * try-lock moves each ring's windows out (one ring lock at a time), updates every device's
 * group and applies the new limits. Costs one relaxed load per reap batch when not due.
 */
/* What a tick changed that the log hook reports, collected under the tick lock and logged after
 * it is released (the handler is user code). */
struct tick_events {
    int old_phase[DEVICE_CLASSES], new_phase[DEVICE_CLASSES];
    uint32_t n;
    uint32_t infeasible; /* bit per class: the target was just found infeasible (first time) */
    uint64_t p99_ns[DEVICE_CLASSES], target_ns[DEVICE_CLASSES];
};

static void tick_phases(struct auraio_engine *e, uint32_t n, int *phase)
{
    for (uint32_t k = 1; k < n; k++)
        phase[k] = auraio__ctl_group_phase(e->dev[k].ctl);
}

static void tick_events_collect(struct auraio_engine *e, struct tick_events *ev)
{
    tick_phases(e, ev->n, ev->new_phase);
    for (uint32_t k = 1; k < ev->n; k++) {
        struct ctl_ring_stats cs;
        auraio__ctl_ring_stats(e->dev[k].ctl, 0, &cs);
        if (!cs.target_infeasible || e->dev[k].infeasible_logged)
            continue;
        e->dev[k].infeasible_logged = true;
        ev->infeasible |= 1u << k;
        ev->p99_ns[k] = cs.p99_ns;
        ev->target_ns[k] = target_ns(e->dev[k].target_ms);
    }
}

static void tick_events_log(const struct tick_events *ev)
{
    for (uint32_t k = 1; k < ev->n; k++) {
        if (ev->new_phase[k] != ev->old_phase[k])
            auraio__log(AURAIO_LOG_DEBUG, "phase_change: %s -> %s", auraio__ctl_phase_name(ev->old_phase[k]),
                        auraio__ctl_phase_name(ev->new_phase[k]));
        if (ev->infeasible & (1u << k))
            auraio__log(AURAIO_LOG_WARN,
                        "target_infeasible: P99 target %.3f ms cannot be met even at the smallest depth "
                        "(last window P99 %.3f ms); holding the smallest depth",
                        (double)ev->target_ns[k] / 1e6, (double)ev->p99_ns[k] / 1e6);
    }
}

void auraio__tick_maybe(struct auraio_engine *e, uint64_t now)
{
    if (!e->adaptive || now < atomic_load_explicit(&e->next_tick_ns, memory_order_relaxed))
        return;
    if (pthread_mutex_trylock(&e->tick_lock) != 0)
        return;
    struct tick_events ev = {.n = 0};
    if (now >= atomic_load_explicit(&e->next_tick_ns, memory_order_relaxed)) {
        ev.n = atomic_load_explicit(&e->devices.count, memory_order_relaxed);
        tick_phases(e, ev.n, ev.old_phase);
        auraio__devices_tick(e, now);
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
    uint64_t ops[AURAIO_OP_KIND_COUNT] = {0}, bytes[AURAIO_OP_KIND_COUNT] = {0};
    auraio__metrics_ring_kinds(r, ops, bytes);
    for (unsigned k = 0; k < AURAIO_OP_KIND_COUNT; k++) {
        out->ops_completed += ops[k];
        out->bytes_transferred += bytes[k];
    }
    out->submissions_at_limit = atomic_load_explicit(&r->submissions_at_limit, memory_order_relaxed);
    out->pending_count = ring_pending(r);
    out->in_flight_limit = ring_limit(r);
    out->batch_threshold = atomic_load_explicit(&r->batch_threshold, memory_order_relaxed);
    out->queue_depth = (int)r->nreqs;
    out->phase = AURAIO_CTL_PHASE_FIXED;
    if (!e->adaptive)
        return;
    /* Over the ring's devices: the worst P99 and P50, the total throughput, the phase of the
     * device it moves the most bytes for (the first device's before any has a window). */
    pthread_mutex_lock(&e->tick_lock);
    uint32_t n = atomic_load_explicit(&e->devices.count, memory_order_relaxed);
    double best = -1;
    for (uint32_t k = 1; k < n; k++) {
        struct ctl_ring_stats cs;
        auraio__ctl_ring_stats(e->dev[k].ctl, i, &cs);
        if (cs.throughput_bps > best) {
            best = cs.throughput_bps;
            out->phase = cs.phase;
        }
        out->target_infeasible = out->target_infeasible || cs.target_infeasible;
        if ((double)cs.p99_ns / 1e6 > out->p99_latency_ms)
            out->p99_latency_ms = (double)cs.p99_ns / 1e6;
        if ((double)cs.p50_ns / 1e6 > out->p50_latency_ms)
            out->p50_latency_ms = (double)cs.p50_ns / 1e6;
        out->throughput_bps += cs.throughput_bps;
    }
    pthread_mutex_unlock(&e->tick_lock);
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
    if (e->adaptive) {
        int w = (int)atomic_load_explicit(&e->group_limit, memory_order_relaxed);
        if (w < out->in_flight_limit)
            out->in_flight_limit = w;
    }
}

int auraio__engine_histogram(struct auraio_engine *e, uint32_t ring, auraio_histogram_t *out)
{
    memset(out, 0, sizeof(*out));
    out->bucket_count = AURAIO_HISTOGRAM_BUCKETS;
    if (!e->adaptive)
        return 0; /* without a controller no window is kept: empty, with the bucket count */
    /* The ring's last window over all its devices (4 KiB of scratch: stats are off the I/O path). */
    struct histogram *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    pthread_mutex_lock(&e->tick_lock);
    uint32_t n = atomic_load_explicit(&e->devices.count, memory_order_relaxed);
    for (uint32_t k = 1; k < n; k++)
        auraio__histogram_merge(h, auraio__ctl_ring_histogram(e->dev[k].ctl, ring));
    pthread_mutex_unlock(&e->tick_lock);
    auraio__histogram_export(h, out);
    free(h);
    return 0;
}

/* Under tick_lock: device class @p k's target becomes @p ms. */
static void device_set_target(struct auraio_engine *e, uint32_t k, double ms)
{
    e->dev[k].target_ms = ms;
    e->dev[k].infeasible_logged = false; /* a new target may be found infeasible again */
    if (e->dev[k].ctl)
        auraio__ctl_set_p99_target(e->dev[k].ctl, target_ns(ms));
}

/* Engine-wide: every device without a target of its own, and every device seen later. */
int auraio__engine_set_p99_target(struct auraio_engine *e, double ms)
{
    pthread_mutex_lock(&e->tick_lock);
    e->opts.max_p99_latency_ms = ms;
    for (uint32_t k = 0; k < DEVICE_CLASSES; k++) {
        if (!e->dev[k].target_own)
            device_set_target(e, k, ms);
    }
    pthread_mutex_unlock(&e->tick_lock);
    return 0;
}

int auraio__engine_set_device_p99_target(struct auraio_engine *e, int fd, double ms)
{
    if (!e->adaptive)
        return -EOPNOTSUPP;
    uint32_t k = auraio__engine_fd_class(e, fd);
    pthread_mutex_lock(&e->tick_lock);
    int rc = 0;
    if (k == DEVICE_NONE) {
        /* Not open (the lookup could not fstat it), or not storage. */
        struct device_probe p;
        rc = auraio__device_probe(&e->devices, fd, &p) < 0 ? -EBADF : -ENODEV;
    } else {
        e->dev[k].target_own = ms > 0;
        device_set_target(e, k, ms > 0 ? ms : e->opts.max_p99_latency_ms);
    }
    pthread_mutex_unlock(&e->tick_lock);
    return rc;
}

