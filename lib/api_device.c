/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Public entry points of per-device control (issue #16): argument checks, the device stats
 * snapshot and the model's one-line description. Nothing here is on the I/O path.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "auraio.h"

#include "clock.h"
#include "controller.h"
#include "engine.h"
#include "validate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>

/* Under tick_lock: class @p k's snapshot. */
static void device_stats(struct auraio_engine *e, uint32_t k, uint64_t now, auraio_device_stats_t *out)
{
    const struct engine_device *d = &e->dev[k];
    memset(out, 0, sizeof(*out));
    out->device_id = e->devices.ids[k];
    out->major = major((dev_t)out->device_id);
    out->minor = minor((dev_t)out->device_id);
    out->depth = (int)auraio__ctl_group_depth(d->ctl);
    out->phase = auraio__ctl_group_phase(d->ctl);
    out->target_p99_ms = d->target_ms;
    for (uint32_t i = 0; i < e->ring_count; i++) {
        struct ctl_ring_stats cs;
        auraio__ctl_ring_stats(d->ctl, i, &cs);
        out->target_infeasible = cs.target_infeasible;
        double p50 = (double)cs.p50_ns / 1e6, p99 = (double)cs.p99_ns / 1e6;
        out->p50_latency_ms = p50 > out->p50_latency_ms ? p50 : out->p50_latency_ms;
        out->p99_latency_ms = p99 > out->p99_latency_ms ? p99 : out->p99_latency_ms;
        out->throughput_bps += cs.throughput_bps;
    }
    struct ctl_model cm;
    auraio__ctl_group_model(d->ctl, &cm);
    /* The model as last tracked (device_ctl.c): a search in progress does not blank it. */
    out->model_age_s = -1;
    if (d->model.changed_ns) {
        out->base_latency_ms = d->model.base_ns / 1e6;
        out->ceiling_bps = d->model.ceiling_bps;
        out->ceiling_iops = cm.ceiling_bps > 0 ? d->model.ceiling_bps * cm.ceiling_ops / cm.ceiling_bps : 0;
        out->knee_depth = (int)d->model.knee;
        out->model_age_s = (double)(now - d->model.changed_ns) / 1e9;
        out->model_change = d->model.change;
    }
    struct device_load l;
    auraio__devices_class_load(e, k, &l);
    out->in_flight = (int)l.in_flight;
    out->backlog = (int)l.backlog;
    out->backlog_wait_ms = d->backlog_wait_ms;
    out->submit_switches = d->punt.switches;
    out->submit_inline_us = d->punt.inline_ns / 1e3;
    out->submit_handoff_us = d->punt.async_ns / 1e3;
    out->submit_offloaded = d->punt.decided;
    out->submit_completes_inline = d->punt.synchronous;
}

AURAIO_API int auraio_get_device_stats(const auraio_engine_t *engine, auraio_device_stats_t *stats, int max)
{
    validate_or_return(engine != NULL && max >= 0 && (stats != NULL || max == 0), -EINVAL);
    struct auraio_engine *e = (struct auraio_engine *)engine;
    if (!e->adaptive)
        return 0;
    auraio__engine_call_begin(e);
    uint64_t now = auraio__now_ns();
    pthread_mutex_lock(&e->tick_lock);
    uint32_t n = atomic_load_explicit(&e->devices.count, memory_order_relaxed);
    for (uint32_t k = 1; k < n && (int)(k - 1) < max; k++)
        device_stats(e, k, now, &stats[k - 1]);
    pthread_mutex_unlock(&e->tick_lock);
    auraio__engine_call_end(e);
    return (int)n - 1;
}

AURAIO_API int auraio_set_device_max_p99_latency(auraio_engine_t *engine, int fd, double max_p99_latency_ms)
{
    validate_or_return(engine != NULL, -EINVAL);
    validate_or_return(max_p99_latency_ms >= 0.0 && isfinite(max_p99_latency_ms), -EINVAL);
    validate_or_return(fd >= 0, -EBADF);
    auraio__engine_call_begin(engine);
    int rc = auraio__engine_set_device_p99_target(engine, fd, max_p99_latency_ms);
    auraio__engine_call_end(engine);
    return rc;
}

AURAIO_API int auraio_device_capacity(const auraio_engine_t *engine, int fd)
{
    validate_or_return(engine != NULL, -EINVAL);
    validate_or_return(fd >= 0, -EBADF);
    struct auraio_engine *e = (struct auraio_engine *)engine;
    /* const in the API: a first use resolves and caches fd's device, as a submit would. */
    auraio__engine_call_begin(e);
    struct device_load l;
    int rc = auraio__engine_device_load(e, fd, &l);
    auraio__engine_call_end(e);
    return rc < 0 ? rc : l.room > INT32_MAX ? INT32_MAX : (int)l.room;
}

/* 98100 -> "98.1k": rates for people. */
static void human(char *buf, size_t len, double v)
{
    if (v >= 1e9)
        snprintf(buf, len, "%.1fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, len, "%.1fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, len, "%.1fk", v / 1e3);
    else
        snprintf(buf, len, "%.0f", v);
}

AURAIO_API int auraio_format_device_model(const auraio_device_stats_t *s, char *buf, size_t len)
{
    validate_or_return(s != NULL && (buf != NULL || len == 0), -EINVAL);
    if (s->model_age_s < 0)
        return snprintf(buf, len, "device %u:%u: depth %d, no model yet (first search running)", s->major,
                        s->minor, s->depth);
    char iops[16], bps[16];
    human(iops, sizeof(iops), s->ceiling_iops);
    human(bps, sizeof(bps), s->ceiling_bps);
    static const char *const moved[] = {"slowed", "first measured", "sped up"};
    int change = s->model_change < 0 ? 0 : s->model_change > 0 ? 2 : 1;
    char offload[96] = "";
    if (s->submit_offloaded)
        snprintf(offload, sizeof(offload), "; submissions off the thread (%.1f us inline, %.1f us handed off)",
                 s->submit_inline_us, s->submit_handoff_us);
    return snprintf(buf, len,
                    "device %u:%u: knee %d, ceiling %s IOPS (%sB/s), base latency %.3f ms; %s %.1f s ago%s",
                    s->major, s->minor, s->knee_depth, iops, bps, s->base_latency_ms, moved[change],
                    s->model_age_s, offload);
}
