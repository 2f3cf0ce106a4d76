/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Prometheus text exposition (format 0.0.4) of an engine's lifetime metrics, built on the public
 * snapshot calls only, libc only. doc/observability.md lists every family; the names follow the
 * Prometheus conventions: auraio_ prefix, base units, _total on counters, HELP/TYPE once per
 * family, labels ring, op, class, phase.
 *
 * The latency histogram's `le` bounds are boundaries of the internal log-linear histogram, so
 * each cumulative bucket is an exact count rather than an estimate: the nominal 5 us .. 10 s
 * (1-2.5-5 steps) rounded to the nearest internal boundary B, and printed as B - 1 ns because
 * latencies are whole nanoseconds and bucket B starts at B: "<= B - 1 ns" is exactly "< B".
 * `_sum` is the exact sum of the recorded latencies, printed as an exact decimal.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "auraio.h"

#include "controller.h"
#include "metrics_prom.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exclusive upper bounds in ns: internal boundaries nearest to 5, 10, 25, 50, 100, 250, 500 us,
 * 1, 2.5, 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10 s (test_prom checks they are boundaries). */
static const uint64_t bucket_bounds_ns[AURAIO_PROM_BUCKETS] = {
    5120,      10240,      24576,      49152,       98304,       253952,      507904,
    1015808,   2490368,    4980736,    9961472,     25165824,    50331648,    100663296,
    251658240, 503316480,  1006632960, 2550136832u, 5100273664u, 10200547328u,
};

/* A function, not the table itself: sanitizer builds would give a global table a symbol without
 * the auraio_ prefix (test/header/symbols.sh). */
uint64_t auraio__prom_bucket_bound_ns(int i)
{
    return i >= 0 && i < AURAIO_PROM_BUCKETS ? bucket_bounds_ns[i] : 0;
}

static const char *const op_label[AURAIO_OP_KIND_COUNT] = {"read", "write", "fsync", "other"};
static const char *const class_label[AURAIO_ERR_CLASS_COUNT] = {"canceled", "timed_out", "other"};

struct sink {
    char *buf;
    size_t len;
    size_t pos; /* bytes the document needs so far; past len nothing more is written */
    int err;
    bool openmetrics; /* OpenMetrics 1.0.0 instead of the 0.0.4 text format */
};

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void put(struct sink *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = s->pos < s->len ? s->len - s->pos : 0;
    int n = vsnprintf(room ? s->buf + s->pos : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        s->err = -EIO;
    else
        s->pos += (size_t)n;
}

/* HELP and TYPE of the family whose samples are named @p name. OpenMetrics names a family without
 * the suffix its samples carry: a counter's "_total", an info metric's "_info". */
static void family(struct sink *s, const char *name, const char *type, const char *help)
{
    size_t n = strlen(name);
    if (s->openmetrics && !strcmp(type, "counter") && n > 6 && !strcmp(name + n - 6, "_total"))
        n -= 6;
    else if (s->openmetrics && !strcmp(type, "info") && n > 5 && !strcmp(name + n - 5, "_info"))
        n -= 5;
    else if (!strcmp(type, "info"))
        type = "gauge"; /* the 0.0.4 format has no info type */
    put(s, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)n, name, help, (int)n, name, type);
}

/* Nanoseconds as exact decimal seconds, without trailing zeros ("0.000024575", "3", "1.5"). */
static void put_seconds(struct sink *s, uint64_t ns)
{
    char frac[16];
    uint64_t whole = ns / 1000000000u;
    snprintf(frac, sizeof(frac), "%09" PRIu64, ns % 1000000000u);
    int end = 9;
    while (end > 0 && frac[end - 1] == '0')
        end--;
    frac[end] = '\0';
    if (end)
        put(s, "%" PRIu64 ".%s", whole, frac);
    else
        put(s, "%" PRIu64, whole);
}

static void per_ring_counter(struct sink *s, const auraio_metrics_t *m, int rings, const char *name,
                             const char *help, size_t offset)
{
    family(s, name, "counter", help);
    for (int r = 0; r < rings; r++) {
        uint64_t v;
        memcpy(&v, (const char *)&m[r] + offset, sizeof(v));
        put(s, "%s{ring=\"%d\"} %" PRIu64 "\n", name, r, v);
    }
}

static void per_ring_gauge(struct sink *s, const auraio_metrics_t *m, int rings, const char *name, const char *help,
                           size_t offset)
{
    family(s, name, "gauge", help);
    for (int r = 0; r < rings; r++) {
        int v;
        memcpy(&v, (const char *)&m[r] + offset, sizeof(v));
        put(s, "%s{ring=\"%d\"} %d\n", name, r, v);
    }
}

static void per_ring_seconds(struct sink *s, const auraio_metrics_t *m, int rings, const char *name,
                             const char *help, size_t offset)
{
    family(s, name, "gauge", help);
    for (int r = 0; r < rings; r++) {
        uint64_t v;
        memcpy(&v, (const char *)&m[r] + offset, sizeof(v));
        put(s, "%s{ring=\"%d\"} ", name, r);
        put_seconds(s, v);
        put(s, "\n");
    }
}

static void latency_histogram(struct sink *s, const auraio_metrics_t *m, int rings)
{
    const char *name = "auraio_request_latency_seconds";
    family(s, name, "histogram",
           "Submit-to-reap latency of reads and writes that reached the kernel (the controller's samples).");
    for (int r = 0; r < rings; r++) {
        uint64_t cum = 0;
        int b = 0;
        for (int i = 0; i < AURAIO_PROM_BUCKETS; i++) {
            uint64_t bound = bucket_bounds_ns[i];
            for (; b < AURAIO_HISTOGRAM_BUCKETS && auraio_histogram_bucket_lower_ns(b) < bound; b++)
                cum += m[r].latency_buckets[b];
            put(s, "%s_bucket{ring=\"%d\",le=\"", name, r);
            put_seconds(s, bound - 1);
            put(s, "\"} %" PRIu64 "\n", cum);
        }
        put(s, "%s_bucket{ring=\"%d\",le=\"+Inf\"} %" PRIu64 "\n", name, r, m[r].latency_count);
        put(s, "%s_sum{ring=\"%d\"} ", name, r);
        put_seconds(s, m[r].latency_sum_ns);
        put(s, "\n%s_count{ring=\"%d\"} %" PRIu64 "\n", name, r, m[r].latency_count);
    }
}

/* Per-device families (issue #16): one series per device the engine has seen, labelled
 * device="major:minor"; nothing before the first device (and without the controller). */
#define PROM_DEVICES 8 /* the engine's most (DEVICE_CLASSES - 1) */

struct prom_device_gauge {
    const char *name, *help;
    double (*value)(const auraio_device_stats_t *d);
};

static double dv_depth(const auraio_device_stats_t *d) { return d->depth; }
static double dv_p50(const auraio_device_stats_t *d) { return d->p50_latency_ms / 1e3; }
static double dv_p99(const auraio_device_stats_t *d) { return d->p99_latency_ms / 1e3; }
static double dv_tput(const auraio_device_stats_t *d) { return d->throughput_bps; }
static double dv_target(const auraio_device_stats_t *d) { return d->target_p99_ms / 1e3; }
static double dv_infeasible(const auraio_device_stats_t *d) { return d->target_infeasible; }
static double dv_base(const auraio_device_stats_t *d) { return d->base_latency_ms / 1e3; }
static double dv_ceiling(const auraio_device_stats_t *d) { return d->ceiling_bps; }
static double dv_ceiling_ops(const auraio_device_stats_t *d) { return d->ceiling_iops; }
static double dv_knee(const auraio_device_stats_t *d) { return d->knee_depth; }
static double dv_age(const auraio_device_stats_t *d) { return d->model_age_s; }
static double dv_in_flight(const auraio_device_stats_t *d) { return d->in_flight; }
static double dv_backlog(const auraio_device_stats_t *d) { return d->backlog; }
static double dv_wait(const auraio_device_stats_t *d) { return d->backlog_wait_ms / 1e3; }

static const struct prom_device_gauge device_gauges[] = {
    {"auraio_device_in_flight_limit", "The device's depth: its controller group's in-flight limit.", dv_depth},
    {"auraio_device_window_latency_p50_seconds", "P50 latency of the device's last window.", dv_p50},
    {"auraio_device_window_latency_p99_seconds", "P99 latency of the device's last window.", dv_p99},
    {"auraio_device_throughput_bytes_per_second", "The device's throughput over its last window.", dv_tput},
    {"auraio_device_latency_target_seconds", "The device's P99 target (0: none).", dv_target},
    {"auraio_device_latency_target_infeasible", "1 when the device's target cannot be met.", dv_infeasible},
    {"auraio_device_base_latency_seconds", "Device model: the lowest mean latency measured.", dv_base},
    {"auraio_device_ceiling_bytes_per_second", "Device model: the throughput ceiling.", dv_ceiling},
    {"auraio_device_ceiling_iops", "Device model: the throughput ceiling in operations per second.", dv_ceiling_ops},
    {"auraio_device_knee_depth", "Device model: the smallest depth within 5% of the ceiling.", dv_knee},
    {"auraio_device_model_age_seconds", "Seconds since the device model last changed (-1: not yet).", dv_age},
    {"auraio_device_in_flight_requests", "The device's requests in the kernel now.", dv_in_flight},
    {"auraio_device_backlog_requests", "The device's requests held back by its depth now.", dv_backlog},
    {"auraio_device_backlog_wait_seconds", "Mean wait in the device's backlog over the last 250 ms (not in its latency).",
     dv_wait},
};

static void render_devices(struct sink *s, const auraio_device_stats_t *d, int n)
{
    if (n <= 0)
        return;
    for (size_t g = 0; g < sizeof(device_gauges) / sizeof(device_gauges[0]); g++) {
        family(s, device_gauges[g].name, "gauge", device_gauges[g].help);
        for (int i = 0; i < n; i++)
            put(s, "%s{device=\"%u:%u\"} %.9g\n", device_gauges[g].name, d[i].major, d[i].minor,
                device_gauges[g].value(&d[i]));
    }
}

static void render(struct sink *s, const auraio_metrics_t *m, int rings, const auraio_metrics_t *all,
                   const auraio_buffer_stats_t *bs, const auraio_device_stats_t *devs, int ndev)
{
    family(s, "auraio_build_info", "info", "Always 1; the library version in a label.");
    put(s, "auraio_build_info{version=\"%s\"} 1\n", auraio_version());

    family(s, "auraio_ops_total", "counter", "Requests completed (callbacks), errors included, by op kind.");
    for (int r = 0; r < rings; r++)
        for (int k = 0; k < AURAIO_OP_KIND_COUNT; k++)
            put(s, "auraio_ops_total{ring=\"%d\",op=\"%s\"} %" PRIu64 "\n", r, op_label[k], m[r].ops[k]);

    family(s, "auraio_bytes_total", "counter", "Bytes transferred by completed reads and writes.");
    for (int r = 0; r < rings; r++)
        for (int k = AURAIO_OP_KIND_READ; k <= AURAIO_OP_KIND_WRITE; k++)
            put(s, "auraio_bytes_total{ring=\"%d\",op=\"%s\"} %" PRIu64 "\n", r, op_label[k], m[r].bytes[k]);

    family(s, "auraio_errors_total", "counter",
           "Requests completed with a negative result, by op kind and errno class.");
    for (int r = 0; r < rings; r++)
        for (int k = 0; k < AURAIO_OP_KIND_COUNT; k++)
            for (int c = 0; c < AURAIO_ERR_CLASS_COUNT; c++)
                put(s, "auraio_errors_total{ring=\"%d\",op=\"%s\",class=\"%s\"} %" PRIu64 "\n", r, op_label[k],
                    class_label[c], m[r].errors[k][c]);

    per_ring_counter(s, m, rings, "auraio_submissions_at_limit_total",
                     "Submissions that found the ring at its in-flight limit and went to the backlog.",
                     offsetof(auraio_metrics_t, submissions_at_limit));
    family(s, "auraio_adaptive_spills_total", "counter",
           "ADAPTIVE submissions sent to a ring other than the local CPU's.");
    put(s, "auraio_adaptive_spills_total %" PRIu64 "\n", all->adaptive_spills);

    per_ring_gauge(s, m, rings, "auraio_backlog_requests", "Requests waiting in the ring's backlog now.",
                   offsetof(auraio_metrics_t, backlog_length));
    per_ring_gauge(s, m, rings, "auraio_in_flight_requests", "Requests in the kernel now.",
                   offsetof(auraio_metrics_t, in_flight));
    per_ring_gauge(s, m, rings, "auraio_in_flight_limit", "The controller's in-flight limit now.",
                   offsetof(auraio_metrics_t, in_flight_limit));
    per_ring_gauge(s, m, rings, "auraio_queue_depth", "Request slots of the ring.",
                   offsetof(auraio_metrics_t, queue_depth));

    family(s, "auraio_controller_phase", "gauge", "1 for the depth controller's current phase, 0 for the others.");
    for (int p = 0; p < AURAIO_CTL_PHASE_COUNT; p++)
        put(s, "auraio_controller_phase{phase=\"%s\"} %d\n", auraio_phase_name(p), all->phase == p);

    per_ring_seconds(s, m, rings, "auraio_window_latency_p50_seconds",
                     "P50 latency of the controller's last window (0 without samples).",
                     offsetof(auraio_metrics_t, p50_ns));
    per_ring_seconds(s, m, rings, "auraio_window_latency_p99_seconds",
                     "P99 latency of the controller's last window (0 without samples).",
                     offsetof(auraio_metrics_t, p99_ns));
    family(s, "auraio_latency_target_seconds", "gauge", "The P99 latency target (0: none, the controller seeks the knee).");
    put(s, "auraio_latency_target_seconds ");
    put_seconds(s, all->target_p99_ns);
    put(s, "\n");
    family(s, "auraio_latency_target_infeasible", "gauge",
           "1 when the P99 target cannot be met even at the smallest depth.");
    put(s, "auraio_latency_target_infeasible %d\n", all->target_infeasible ? 1 : 0);

    latency_histogram(s, m, rings);
    render_devices(s, devs, ndev);

    family(s, "auraio_buffer_pool_allocated_bytes", "gauge", "Bytes handed out by the buffer pool and not freed.");
    put(s, "auraio_buffer_pool_allocated_bytes %" PRIu64 "\n", bs->total_allocated_bytes);
    family(s, "auraio_buffer_pool_allocated_buffers", "gauge", "Buffers handed out by the pool and not freed.");
    put(s, "auraio_buffer_pool_allocated_buffers %" PRIu64 "\n", bs->total_buffers);
    family(s, "auraio_buffer_pool_cached_bytes", "gauge", "Bytes kept in the pool's shards and thread caches.");
    put(s, "auraio_buffer_pool_cached_bytes %" PRIu64 "\n", bs->cached_bytes);
    family(s, "auraio_buffer_pool_cached_buffers", "gauge", "Buffers kept in the pool's shards and thread caches.");
    put(s, "auraio_buffer_pool_cached_buffers %" PRIu64 "\n", bs->cached_buffers);
    family(s, "auraio_buffer_pool_shards", "gauge", "Shards of the buffer pool.");
    put(s, "auraio_buffer_pool_shards %d\n", bs->shard_count);
    if (s->openmetrics)
        put(s, "# EOF\n");
}

static int expose(const auraio_engine_t *engine, char *buf, size_t len, bool openmetrics)
{
    if (!engine || (!buf && len > 0))
        return -EINVAL;
    int rings = auraio_get_ring_count(engine);
    if (rings < 0)
        return rings;
    /* One snapshot per ring (4 KiB each): the scrape path may allocate, the I/O path never does. */
    auraio_metrics_t *m = malloc(((size_t)rings + 1) * sizeof(*m));
    if (!m)
        return -ENOMEM;
    auraio_metrics_t *all = &m[rings];
    auraio_buffer_stats_t bs;
    int rc = auraio_get_metrics(engine, AURAIO_ALL_RINGS, all);
    for (int r = 0; rc == 0 && r < rings; r++)
        rc = auraio_get_metrics(engine, r, &m[r]);
    if (rc == 0)
        rc = auraio_get_buffer_stats(engine, &bs);
    auraio_device_stats_t devs[PROM_DEVICES];
    int ndev = rc == 0 ? auraio_get_device_stats(engine, devs, PROM_DEVICES) : 0;
    if (ndev < 0)
        rc = ndev;
    ndev = ndev > PROM_DEVICES ? PROM_DEVICES : ndev;
    if (rc < 0) {
        free(m);
        return rc;
    }
    struct sink s = {.buf = buf, .len = len, .openmetrics = openmetrics};
    render(&s, m, rings, all, &bs, devs, ndev);
    free(m);
    if (s.err)
        return s.err;
    if (s.pos > INT_MAX)
        return -EOVERFLOW;
    /* Too small: an empty string, never a truncated document; the return says what is needed. */
    if (s.pos >= len && len > 0)
        buf[0] = '\0';
    return (int)s.pos;
}

AURAIO_API int auraio_metrics_prometheus(const auraio_engine_t *engine, char *buf, size_t len)
{
    return expose(engine, buf, len, false);
}

AURAIO_API int auraio_metrics_openmetrics(const auraio_engine_t *engine, char *buf, size_t len)
{
    return expose(engine, buf, len, true);
}
