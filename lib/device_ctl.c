/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-device control, the engine's side (doc/controller.md, "Devices"): one controller group per
 * device class, each over all the rings. A ring's share of a device is that group's limit for it;
 * a ring's limit is the sum of its shares. Resolution (an fd's first use: one fstat, maybe a new
 * group) and every tick run under the engine's tick lock; the hot path only reads the cached class.
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
#include <sys/sysmacros.h>

/* A group's first depth per ring, before it has measured anything: a few requests per ring show
 * the device's latency without flooding a slow one. */
#define DEVICE_FIRST_DEPTH_PER_RING 4u
/* The model moved when its ceiling or base latency changed by more than this (a re-measured knee
 * on a steady device stays within it; a cap imposed or lifted does not). */
#define DEVICE_MODEL_MOVE 0.15
/* The backlog wait reported per device is the mean over this window (as long as the stats
 * window of the P99 it sits beside: a tick's 2 ms holds too few requests to say anything). */
#define DEVICE_WAIT_WINDOW_NS 250000000ull
/* One flush in this many is timed for the hand-off decision (ring.c, flush_sampled_locked): a
 * device submitting 4,000 times a second beside another still gives a window of PUNT_WINDOW
 * samples within a tenth of a second, and the timed flushes' extra enters stay a few percent of
 * the enters. */
#define DEVICE_SAMPLE_EVERY 16u
/* The environment variable that turns the hand-off on ("1") for an engine created after it is set:
 * off by default, since on this project's VM it did not pay where it was meant to (doc/controller.md,
 * "Submissions off the thread", measured). */
#define DEVICE_OFFLOAD_ENV "AURAIO_SUBMIT_OFFLOAD"

static uint64_t ms_to_ns(double ms)
{
    return (uint64_t)(ms * 1e6 + 0.5);
}

static uint32_t first_depth(const struct auraio_engine *e)
{
    uint64_t per_ring = e->opts.initial_in_flight ? (uint64_t)e->opts.initial_in_flight : DEVICE_FIRST_DEPTH_PER_RING;
    uint64_t w = per_ring * e->ring_count, hi = (uint64_t)e->rings[0].max_limit * e->ring_count;
    w = w < hi ? w : hi;
    return w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
}

int auraio__devices_start(struct auraio_engine *e, uint32_t ring_max, bool adaptive)
{
    int rc = auraio__device_table_init(&e->devices);
    if (rc < 0)
        return rc;
    e->devices_ready = true;
    if (!adaptive)
        return 0;
    e->tick_in = calloc((size_t)DEVICE_CLASSES * e->ring_count, sizeof(*e->tick_in));
    if (!e->tick_in)
        return -ENOMEM;
    for (uint32_t k = 0; k < DEVICE_CLASSES; k++)
        e->dev[k].target_ms = e->opts.max_p99_latency_ms;
    const char *on = getenv(DEVICE_OFFLOAD_ENV);
    e->offload_enabled = on && strcmp(on, "1") == 0;
    /* Until a device is seen, the rings' limits are what a first group would start at. */
    uint32_t w = first_depth(e), share = (w + e->ring_count - 1) / e->ring_count;
    for (uint32_t i = 0; i < e->ring_count; i++) {
        struct ring *r = &e->rings[i];
        r->devices = &e->devices;
        /* Pipes, sockets, metadata ops: admitted without a device limit (the slots bound them). */
        auraio__ring_set_class_limit(r, DEVICE_NONE, ring_max);
        auraio__ring_set_limits(r, (int)share, 1);
        auraio__ring_sample_submits(r, e->offload_enabled ? DEVICE_SAMPLE_EVERY : 0);
    }
    atomic_store_explicit(&e->group_limit, w, memory_order_relaxed);
    e->adaptive = true;
    return 0;
}

void auraio__devices_stop(struct auraio_engine *e)
{
    for (uint32_t k = 0; k < DEVICE_CLASSES; k++) {
        auraio__ctl_group_destroy(e->dev[k].ctl);
        e->dev[k].ctl = NULL;
    }
    if (e->devices_ready)
        auraio__device_table_destroy(&e->devices);
    e->devices_ready = false;
    auraio__device_maps_free(&e->fixed_classes);
}

/* Under tick_lock: hand every group's decision to the rings. */
static void apply_limits(struct auraio_engine *e, uint32_t n)
{
    uint64_t depth = 0;
    for (uint32_t k = 1; k < n; k++) {
        uint32_t w = auraio__ctl_group_depth(e->dev[k].ctl);
        atomic_store_explicit(&e->dev[k].depth, w, memory_order_relaxed);
        depth += w;
    }
    if (n <= 1)
        return; /* no device yet: the start's limits stand */
    atomic_store_explicit(&e->group_limit, depth > UINT32_MAX ? UINT32_MAX : (uint32_t)depth, memory_order_relaxed);
    for (uint32_t i = 0; i < e->ring_count; i++) {
        struct ring *r = &e->rings[i];
        uint64_t sum = 0;
        uint32_t batch = 1;
        for (uint32_t k = 1; k < n; k++) {
            uint32_t lim = auraio__ctl_ring_limit(e->dev[k].ctl, i), b = auraio__ctl_ring_batch(e->dev[k].ctl, i);
            auraio__ring_set_class_limit(r, k, lim);
            sum += lim;
            batch = b > batch ? b : batch;
        }
        auraio__ring_set_limits(r, sum > INT32_MAX ? INT32_MAX : (int)sum, (int)batch);
    }
}

/* Under tick_lock: a group for the new class @p k, its limits on every ring, then the class
 * published (readers of the map may use it from then on). */
static int add_group(struct auraio_engine *e, uint32_t k, uint64_t now)
{
    struct ctl_config cc = {
        .ring_count = e->ring_count,
        .ring_max = e->rings[0].max_limit,
        .w_init = first_depth(e),
        .p99_target_ns = ms_to_ns(e->dev[k].target_ms),
        .seed = e->id * DEVICE_CLASSES + k,
    };
    int rc = auraio__ctl_group_init(&e->dev[k].ctl, &cc, now);
    if (rc < 0)
        return rc;
    auraio__punt_init(&e->dev[k].punt, e->offload_enabled, now);
    for (uint32_t i = 0; i < e->ring_count; i++)
        auraio__ring_add_classes(&e->rings[i], k + 1);
    apply_limits(e, k + 1);
    auraio__device_publish_count(&e->devices, k + 1);
    return 0;
}

/* Under tick_lock: the class of device @p id, a new one (and its group) when it has none. */
static uint32_t class_of_device(struct auraio_engine *e, uint64_t id)
{
    int c = auraio__device_find(&e->devices, id);
    if (c >= 0)
        return (uint32_t)c;
    bool fresh;
    uint32_t k = auraio__device_add(&e->devices, id, &fresh);
    if (!fresh)
        return k;
    if (add_group(e, k, auraio__now_ns()) < 0)
        return DEVICE_NONE; /* out of memory: admitted without a device limit, asked again later */
    return k;
}

/* Under tick_lock: resolve @p fd; @p cache says whether to remember it in the map. */
static uint32_t resolve_locked(struct auraio_engine *e, int fd, bool *known)
{
    struct device_probe p;
    *known = false;
    if (auraio__device_probe(&e->devices, fd, &p) < 0)
        return DEVICE_NONE; /* not open: the kernel will say so; nothing to remember */
    *known = true;
    uint32_t k = p.storage ? class_of_device(e, p.id) : DEVICE_NONE;
    if (p.storage && k == DEVICE_NONE)
        *known = false;
    if (*known && auraio__device_remember(&e->devices, fd, k, &p.key) < 0)
        *known = false;
    return k;
}

uint32_t auraio__engine_device_resolve(struct auraio_engine *e, int fd)
{
    if (fd < 0 || (unsigned)fd >= DEVICE_MAP_MAX_FD)
        return DEVICE_NONE;
    pthread_mutex_lock(&e->tick_lock);
    uint32_t before = atomic_load_explicit(&e->devices.count, memory_order_relaxed);
    int c = auraio__device_cached(&e->devices, fd);
    bool known;
    uint32_t k = DEVICE_NONE;
    if (c >= 0)
        k = (uint32_t)c;
    else if (e->adaptive)
        k = resolve_locked(e, fd, &known);
    bool added = atomic_load_explicit(&e->devices.count, memory_order_relaxed) > before;
    uint64_t id = e->devices.ids[k];
    pthread_mutex_unlock(&e->tick_lock);
    /* After the unlock: the log handler is user code. */
    if (added)
        auraio__log(AURAIO_LOG_DEBUG, "device_added: class %u device %u:%u", k, major((dev_t)id), minor((dev_t)id));
    return k;
}

uint32_t auraio__engine_request_class(struct auraio_engine *e, const struct request_args *a)
{
    /* Metadata ops, fsync and timers say nothing about a device's depth curve and are never held
     * for one: admitted without a device limit. */
    if (!e->adaptive || !request_op_is_data(a->op))
        return DEVICE_NONE;
    if (a->fixed_file) {
        const struct device_map *m = atomic_load_explicit(&e->fixed_classes, memory_order_acquire);
        if (!m || a->fd < 0 || (uint32_t)a->fd >= m->len)
            return DEVICE_NONE;
        unsigned c = atomic_load_explicit(&((struct device_map *)m)->cls[a->fd], memory_order_acquire);
        return c == DEVICE_UNRESOLVED ? DEVICE_NONE : c;
    }
    return auraio__engine_fd_class(e, a->fd);
}

int auraio__devices_fixed_set(struct auraio_engine *e, uint32_t first, const int *fds, uint32_t count)
{
    if (!e->adaptive || count == 0)
        return 0;
    pthread_mutex_lock(&e->tick_lock);
    struct device_map *old = atomic_load_explicit(&e->fixed_classes, memory_order_relaxed);
    struct device_map *m = old;
    int rc = 0;
    if (!m || m->len < first + count) {
        /* Replaced whole, the old copy kept until destroy (readers hold it without a lock). */
        m = calloc(1, sizeof(*m) + first + count);
        if (!m) {
            rc = -ENOMEM;
            goto out;
        }
        m->len = first + count;
        m->older = old;
        for (uint32_t i = 0; i < m->len; i++)
            atomic_init(&m->cls[i], old && i < old->len ? atomic_load_explicit(&old->cls[i], memory_order_relaxed)
                                                        : DEVICE_UNRESOLVED);
    }
    for (uint32_t i = 0; i < count; i++) {
        bool known;
        uint32_t k = fds[i] < 0 ? DEVICE_NONE : resolve_locked(e, fds[i], &known);
        atomic_store_explicit(&m->cls[first + i], (uint8_t)k, memory_order_release);
    }
    atomic_store_explicit(&e->fixed_classes, m, memory_order_release);
out:
    pthread_mutex_unlock(&e->tick_lock);
    return rc;
}

/* Under tick_lock: note when device @p k's model moved (device_model). */
static void track_model(struct auraio_engine *e, uint32_t k, uint64_t now)
{
    struct ctl_model cm;
    auraio__ctl_group_model(e->dev[k].ctl, &cm);
    struct device_model *m = &e->dev[k].model;
    if (cm.knee == 0 || cm.ceiling_bps <= 0 || cm.base_latency_ns <= 0)
        return; /* a search in progress: the last model stands */
    if (m->changed_ns == 0) {
        m->changed_ns = now;
        m->change = 0;
    } else {
        double dc = cm.ceiling_bps / m->ceiling_bps - 1.0, db = cm.base_latency_ns / m->base_ns - 1.0;
        bool moved_c = dc > DEVICE_MODEL_MOVE || dc < -DEVICE_MODEL_MOVE;
        bool moved_b = db > DEVICE_MODEL_MOVE || db < -DEVICE_MODEL_MOVE;
        if (!moved_c && !moved_b) {
            m->knee = cm.knee; /* the knee follows within the band without calling it a change */
            return;
        }
        m->changed_ns = now;
        /* Slower: a lower ceiling, or (same ceiling) a longer base latency. */
        m->change = moved_c ? (dc < 0 ? -1 : 1) : (db > 0 ? -1 : 1);
    }
    m->knee = cm.knee;
    m->ceiling_bps = cm.ceiling_bps;
    m->base_ns = cm.base_latency_ns;
}

/* Under tick_lock: fold this tick's backlog waits of class @p k into its window; publish the
 * window's mean when it is over. */
static void track_waits(struct auraio_engine *e, uint32_t k, const struct ring_class_wait *w, uint64_t now)
{
    struct engine_device *d = &e->dev[k];
    d->wait_ns += w->ns;
    d->wait_n += w->n;
    if (d->wait_window_ns == 0)
        d->wait_window_ns = now;
    if (now - d->wait_window_ns < DEVICE_WAIT_WINDOW_NS)
        return;
    d->backlog_wait_ms = d->wait_n ? (double)d->wait_ns / (double)d->wait_n / 1e6 : 0;
    d->wait_ns = d->wait_n = 0;
    d->wait_window_ns = now;
}

/* The room is the group's depth less everything the device has pending, on every ring, as
 * auraio_capacity's is the engine's: not the sum of each ring's room. A submission stays on its
 * thread's ring, and the share of a ring without demand for the device (a limit of 1 kept on every
 * ring) counted as room let a thread on another ring queue in its backlog without bound while the
 * capacity never fell (two threads, one engine, two rings: test/devices/shared_engine.c). */
void auraio__devices_class_load(struct auraio_engine *e, uint32_t k, struct device_load *out)
{
    *out = (struct device_load){0};
    uint64_t limit = 0;
    for (uint32_t i = 0; i < e->ring_count; i++) {
        struct ring_class_load l;
        auraio__ring_class_load(&e->rings[i], k, &l);
        out->in_flight += l.in_flight;
        out->backlog += l.backlog;
        limit += l.limit;
    }
    uint32_t w = atomic_load_explicit(&e->dev[k].depth, memory_order_relaxed);
    if (w < limit)
        limit = w;
    if (limit > (uint64_t)out->in_flight + out->backlog)
        out->room = (uint32_t)(limit - out->in_flight - out->backlog);
}

int auraio__engine_device_load(struct auraio_engine *e, int fd, struct device_load *out)
{
    if (!e->adaptive)
        return -EOPNOTSUPP;
    uint32_t k = auraio__engine_fd_class(e, fd);
    if (k == DEVICE_NONE) {
        /* Not open (the lookup could not fstat it), or not storage. */
        struct device_probe p;
        pthread_mutex_lock(&e->tick_lock);
        int rc = auraio__device_probe(&e->devices, fd, &p) < 0 ? -EBADF : -ENODEV;
        pthread_mutex_unlock(&e->tick_lock);
        return rc;
    }
    auraio__devices_class_load(e, k, out);
    return 0;
}

/* Under tick_lock: feed each device's timed enters to its hand-off decision and flag its SQEs on
 * every ring when the decision changes (device_punt.h). */
static void track_submits(struct auraio_engine *e, uint32_t n, uint64_t now)
{
    if (!e->offload_enabled)
        return;
    for (uint32_t i = 0; i < e->ring_count; i++) {
        struct ring_submit_samples got[DEVICE_CLASSES];
        auraio__ring_take_submit_samples(&e->rings[i], n, got);
        for (uint32_t k = 1; k < n; k++)
            for (uint32_t j = 0; j < got[k].n; j++)
                auraio__punt_sample(&e->dev[k].punt, (got[k].async >> j) & 1u, (got[k].done >> j) & 1u,
                                    got[k].ns[j]);
    }
    for (uint32_t k = 1; k < n; k++) {
        struct engine_device *d = &e->dev[k];
        bool flag = auraio__punt_update(&d->punt, now);
        if (flag == d->flagged)
            continue;
        d->flagged = flag;
        for (uint32_t i = 0; i < e->ring_count; i++)
            auraio__ring_set_class_sqe_flags(&e->rings[i], k, flag ? IOSQE_ASYNC : 0);
    }
}

void auraio__devices_tick(struct auraio_engine *e, uint64_t now)
{
    uint32_t n = atomic_load_explicit(&e->devices.count, memory_order_acquire), R = e->ring_count;
    struct ring_class_wait waits[DEVICE_CLASSES] = {{0}};
    for (uint32_t i = 0; i < R; i++) {
        auraio__ring_take_windows(&e->rings[i], &e->tick_in[i], n, R, waits);
        for (uint32_t k = 0; k < n; k++) {
            struct ctl_acc *acc = e->tick_in[k * R + i].acc;
            /* Before update() resets the window: the lifetime histogram costs no work per I/O. */
            if (acc)
                auraio__metrics_fold(&e->rings[i].life, acc);
        }
        /* DEVICE_NONE feeds no controller: its window only went to the lifetime metrics. */
        if (e->tick_in[i].acc)
            auraio__ctl_acc_reset(e->tick_in[i].acc);
    }
    uint64_t waited = atomic_load_explicit(&e->waited_ns, memory_order_relaxed);
    for (uint32_t k = 1; k < n; k++) {
        auraio__ctl_group_waited(e->dev[k].ctl, waited);
        auraio__ctl_group_update(e->dev[k].ctl, &e->tick_in[k * R], now);
        track_model(e, k, now);
        track_waits(e, k, &waits[k], now);
    }
    apply_limits(e, n);
    track_submits(e, n, now);
    auraio__device_revalidate(&e->devices, now);
}
