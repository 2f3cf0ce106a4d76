/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Engine: creates the rings and the shared eventfd, picks a ring per submission, runs the event
 * loop (poll/wait/run/stop) and tears everything down with every callback delivered exactly once.
 *
 * Waiting: all rings signal one eventfd, so a waiter blocks on that fd and never on one ring while
 * another has completions. Before blocking, every ring is reaped; the eventfd is drained only after
 * it reported readable and before the rings are reaped again, so a completion posted in between
 * leaves it readable and cannot be missed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "engine.h"

#include "buffer_pool.h"
#include "clock.h"
#include "controller.h"
#include "uring_sys.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_QUEUE_DEPTH 256
#define DEFAULT_BATCH_THRESHOLD 8
/* The controller's tick period. Epochs need a few ms of completions at NVMe rates; ticking faster
 * only costs try-locks, slower delays convergence (see doc/controller.md). */
#define TICK_INTERVAL_NS 2000000ull
#define REAP_BATCH 64
/* Destroy gives the kernel this long to return cancelled requests before it stops waiting. */
#define DESTROY_DRAIN_LIMIT_NS (10ull * 1000000000ull)

static _Atomic uint64_t next_engine_id = 1;

/* The engine whose callback this thread is running (NULL outside callbacks). */
static _Thread_local const struct auraio_engine *tls_callback_engine;

/* Ring selection state per thread; `engine_id` makes it void after destroy/create. */
static _Thread_local struct {
    uint64_t engine_id;
    uint32_t ring;       /* THREAD_LOCAL assignment */
    int cpu;             /* cached sched_getcpu() */
    uint32_t cpu_uses;   /* submissions since the CPU was read */
    uint32_t rng;        /* xorshift32 state for ADAPTIVE spill choices */
} tls_select;

bool auraio__engine_in_callback(const struct auraio_engine *e)
{
    return tls_callback_engine == e;
}

static unsigned setup_flags_for(const auraio_options_t *o)
{
    unsigned flags = 0;
    /* COOP/DEFER task work is only safe when the submitting thread is the one that reaps; with
     * many submitters, task work must interrupt the submitter (the kernel default). */
    if (o->single_issuer)
        flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN |
                 IORING_SETUP_TASKRUN_FLAG;
    if (o->enable_sqpoll)
        flags |= IORING_SETUP_SQPOLL;
    return flags;
}

/* Hand the controller's current decision to every ring. Called with tick_lock held. */
static void apply_limits(struct auraio_engine *e)
{
    for (uint32_t i = 0; i < e->ring_count; i++)
        auraio__ring_set_limits(&e->rings[i], (int)auraio__ctl_ring_limit(e->ctl, i),
                                (int)auraio__ctl_ring_batch(e->ctl, i));
}

static uint64_t target_ns(double ms)
{
    return (uint64_t)(ms * 1e6 + 0.5);
}

static int start_controller(struct auraio_engine *e, const auraio_options_t *opts, uint32_t ring_max)
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
static void maybe_tick(struct auraio_engine *e, uint64_t now)
{
    if (!e->ctl || now < atomic_load_explicit(&e->next_tick_ns, memory_order_relaxed))
        return;
    if (pthread_mutex_trylock(&e->tick_lock) != 0)
        return;
    if (now >= atomic_load_explicit(&e->next_tick_ns, memory_order_relaxed)) {
        for (uint32_t i = 0; i < e->ring_count; i++)
            auraio__ring_take_window(&e->rings[i], &e->tick_in[i]);
        auraio__ctl_group_update(e->ctl, e->tick_in, now);
        apply_limits(e);
        atomic_store_explicit(&e->next_tick_ns, now + TICK_INTERVAL_NS, memory_order_relaxed);
    }
    pthread_mutex_unlock(&e->tick_lock);
}

int auraio__engine_create(const auraio_options_t *opts, struct auraio_engine **out)
{
    int rc;
    struct auraio_engine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->event_fd = -1;
    e->opts = *opts;
    e->id = atomic_fetch_add_explicit(&next_engine_id, 1, memory_order_relaxed);

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    e->ring_count = opts->ring_count ? (uint32_t)opts->ring_count : (uint32_t)(cpus > 0 ? cpus : 1);
    if (e->ring_count > REQUEST_MAX_RINGS)
        e->ring_count = REQUEST_MAX_RINGS;

    rc = auraio__sys_eventfd();
    if (rc < 0)
        goto fail;
    e->event_fd = rc;
    rc = auraio__pool_create(&e->pool, 0);
    if (rc < 0)
        goto fail;

    unsigned depth = opts->queue_depth ? (unsigned)opts->queue_depth : DEFAULT_QUEUE_DEPTH;
    int max_limit = opts->max_in_flight ? opts->max_in_flight : (int)depth;
    int initial = opts->initial_in_flight ? opts->initial_in_flight : max_limit;
    struct ring_config cfg = {
        .queue_depth = depth,
        .setup_flags = setup_flags_for(opts),
        .sqpoll_idle_ms = opts->sqpoll_idle_ms ? (unsigned)opts->sqpoll_idle_ms : 1000,
        .initial_limit = initial,
        .max_limit = max_limit,
        .batch_threshold = DEFAULT_BATCH_THRESHOLD,
        .event_fd = e->event_fd,
    };

    e->rings = calloc(e->ring_count, sizeof(*e->rings));
    if (!e->rings) {
        rc = -ENOMEM;
        goto fail;
    }
    for (uint32_t i = 0; i < e->ring_count; i++) {
        rc = auraio__ring_init(&e->rings[i], i, &cfg);
        if (rc < 0) {
            /* ring_init cleaned up ring i itself; only 0..i-1 are live. */
            e->ring_count = i;
            goto fail;
        }
    }
    rc = start_controller(e, opts, (uint32_t)max_limit);
    if (rc < 0)
        goto fail;
    *out = e;
    return 0;
fail:
    auraio__engine_destroy(e);
    return rc;
}

/* ------------------------------------------------------------------------------------------- */
/* Ring selection */

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
 * (pending >= limit). Then look at two other rings chosen at random and move to the one with more
 * room, if it has any; otherwise stay local (spilling to a full ring only adds latency).
 */
static uint32_t select_adaptive(struct auraio_engine *e)
{
    uint32_t local = local_ring(e);
    if (e->ring_count == 1 || ring_room(&e->rings[local]) > 0)
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

static uint32_t select_ring(struct auraio_engine *e)
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

int auraio__engine_submit(struct auraio_engine *e, const struct request_args *a, uint64_t *handle)
{
    if (atomic_load_explicit(&e->shutting_down, memory_order_acquire))
        return -ESHUTDOWN;
    return auraio__ring_submit(&e->rings[select_ring(e)], a, auraio__now_ns(), handle);
}

int auraio__engine_cancel(struct auraio_engine *e, uint64_t handle)
{
    if (handle_generation(handle) == 0 || handle_ring(handle) >= e->ring_count ||
        handle_slot(handle) >= e->rings[handle_ring(handle)].nreqs)
        return -EINVAL;
    if (atomic_load_explicit(&e->shutting_down, memory_order_acquire))
        return -ESHUTDOWN;
    return auraio__ring_cancel(&e->rings[handle_ring(handle)], handle);
}

int auraio__engine_request_pending(struct auraio_engine *e, uint64_t handle)
{
    if (handle_generation(handle) == 0 || handle_ring(handle) >= e->ring_count ||
        handle_slot(handle) >= e->rings[handle_ring(handle)].nreqs)
        return -EINVAL;
    return auraio__ring_request_pending(&e->rings[handle_ring(handle)], handle);
}

/* ------------------------------------------------------------------------------------------- */
/* Event loop */

static void run_callbacks(struct auraio_engine *e, const struct completion *c, int n)
{
    const struct auraio_engine *saved = tls_callback_engine;
    tls_callback_engine = e;
    for (int i = 0; i < n; i++)
        c[i].callback((auraio_request_t *)(uintptr_t)c[i].handle, (ssize_t)c[i].result, c[i].user_data);
    tls_callback_engine = saved;
}

/* Reap one ring until it is empty or has given a CQ's worth, running callbacks unlocked. */
static int poll_ring(struct auraio_engine *e, struct ring *r)
{
    struct completion batch[REAP_BATCH];
    int total = 0;
    int budget = (int)r->uring.cq_entries;
    for (;;) {
        uint64_t now = auraio__now_ns();
        int n = auraio__ring_reap(r, batch, REAP_BATCH, now);
        if (n <= 0)
            break;
        maybe_tick(e, now);
        run_callbacks(e, batch, n);
        total += n;
        /* Bounded: callbacks that resubmit cached reads would otherwise keep us here forever. */
        if (n < REAP_BATCH || total >= budget)
            break;
    }
    return total;
}

static int poll_rings(struct auraio_engine *e)
{
    int total = 0;
    for (uint32_t i = 0; i < e->ring_count; i++)
        total += poll_ring(e, &e->rings[i]);
    return total;
}

int auraio__engine_poll(struct auraio_engine *e)
{
    /* Drain first: an embedding epoll loop must not see the fd readable for completions we are
     * about to deliver (it would spin), and one posted after this read re-arms it. */
    auraio__sys_eventfd_drain(e->event_fd);
    return poll_rings(e);
}

int auraio__engine_flush(struct auraio_engine *e)
{
    int total = 0;
    int err = 0;
    for (uint32_t i = 0; i < e->ring_count; i++) {
        int rc = auraio__ring_flush(&e->rings[i]);
        if (rc < 0)
            err = rc;
        else
            total += rc;
    }
    return err ? err : total;
}

int auraio__engine_pending(const struct auraio_engine *e)
{
    int total = 0;
    for (uint32_t i = 0; i < e->ring_count; i++)
        total += ring_pending(&e->rings[i]);
    return total;
}

int auraio__engine_capacity(const struct auraio_engine *e)
{
    int total = 0;
    for (uint32_t i = 0; i < e->ring_count; i++) {
        int room = ring_room(&e->rings[i]);
        if (room > 0)
            total += room;
    }
    return total;
}

static bool any_submit_stalled(const struct auraio_engine *e)
{
    for (uint32_t i = 0; i < e->ring_count; i++) {
        if (ring_submit_stalled(&e->rings[i]))
            return true;
    }
    return false;
}

static int remaining_ms(uint64_t deadline_ns)
{
    uint64_t now = auraio__now_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now + 999999) / 1000000;
    return ms > 1000000 ? 1000000 : (int)ms;
}

/* Take one outstanding stop, if any; each stop ends exactly one wait or run. */
static bool consume_stop(struct auraio_engine *e)
{
    uint64_t consumed = atomic_load_explicit(&e->stops_consumed, memory_order_acquire);
    while (atomic_load_explicit(&e->stops_requested, memory_order_acquire) > consumed) {
        if (atomic_compare_exchange_weak_explicit(&e->stops_consumed, &consumed, consumed + 1,
                                                  memory_order_acq_rel, memory_order_acquire))
            return true;
    }
    return false;
}

static int wait_impl(struct auraio_engine *e, int timeout_ms, bool *stopped)
{
    uint64_t deadline = timeout_ms > 0 ? auraio__now_ns() + (uint64_t)timeout_ms * 1000000u : 0;

    for (;;) {
        int n = poll_rings(e);
        if (n > 0)
            return n;
        if (consume_stop(e)) {
            *stopped = true;
            return 0;
        }
        if (auraio__engine_pending(e) == 0)
            return 0;
        int wait_ms = timeout_ms < 0 ? -1 : timeout_ms == 0 ? 0 : remaining_ms(deadline);
        if (wait_ms == 0)
            return -ETIME;
        if (any_submit_stalled(e) && (wait_ms < 0 || wait_ms > 1))
            wait_ms = 1; /* nothing will signal us: retry the submission soon */
        int rc = auraio__sys_wait_readable(e->event_fd, wait_ms);
        if (rc > 0)
            auraio__sys_eventfd_drain(e->event_fd);
        else if (rc < 0 && rc != -EINTR)
            return rc;
        /* Timeout and EINTR fall through to one more non-blocking pass. */
    }
}

int auraio__engine_wait(struct auraio_engine *e, int timeout_ms)
{
    bool stopped = false;
    return wait_impl(e, timeout_ms, &stopped);
}

int auraio__engine_run(struct auraio_engine *e)
{
    for (;;) {
        bool stopped = false;
        int rc = wait_impl(e, -1, &stopped);
        if (stopped) {
            poll_rings(e);
            return 0;
        }
        if (rc == 0 && auraio__engine_pending(e) == 0) {
            /* Nothing in flight: sleep until a stop or a completion of I/O another thread
             * submits; a stop signals the eventfd. */
            int wrc = auraio__sys_wait_readable(e->event_fd, -1);
            if (wrc > 0)
                auraio__sys_eventfd_drain(e->event_fd);
        } else if (rc < 0 && rc != -ETIME) {
            return rc;
        }
    }
}

int auraio__engine_stop(struct auraio_engine *e)
{
    atomic_fetch_add_explicit(&e->stops_requested, 1, memory_order_acq_rel);
    auraio__sys_eventfd_signal(e->event_fd);
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Stats */

void auraio__engine_ring_stats(struct auraio_engine *e, uint32_t i, auraio_ring_stats_t *out)
{
    struct ring *r = &e->rings[i];
    memset(out, 0, sizeof(*out));
    out->ops_completed = atomic_load_explicit(&r->ops_completed, memory_order_relaxed);
    out->bytes_transferred = atomic_load_explicit(&r->bytes_transferred, memory_order_relaxed);
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
    if (e->ctl)
        auraio__ctl_set_p99_target(e->ctl, target_ns(ms));
    pthread_mutex_unlock(&e->tick_lock);
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* Teardown */

static bool all_idle(struct auraio_engine *e)
{
    for (uint32_t i = 0; i < e->ring_count; i++) {
        if (!auraio__ring_idle(&e->rings[i]))
            return false;
    }
    return true;
}

void auraio__engine_destroy(struct auraio_engine *e)
{
    if (!e)
        return;
    atomic_store_explicit(&e->shutting_down, true, memory_order_release);

    if (e->rings && e->ring_count > 0) {
        for (uint32_t i = 0; i < e->ring_count; i++)
            auraio__ring_cancel_all(&e->rings[i]);
        uint64_t start = auraio__now_ns();
        uint64_t last_cancel = start;
        while (!all_idle(e)) {
            if (poll_rings(e) > 0)
                continue;
            uint64_t now = auraio__now_ns();
            if (now - start > DESTROY_DRAIN_LIMIT_NS)
                break;
            if (now - last_cancel > 1000000000ull) {
                /* Requests the kernel could not cancel yet (queued behind others): ask again. */
                for (uint32_t i = 0; i < e->ring_count; i++)
                    auraio__ring_cancel_all(&e->rings[i]);
                last_cancel = now;
            }
            int rc = auraio__sys_wait_readable(e->event_fd, 100);
            if (rc > 0)
                auraio__sys_eventfd_drain(e->event_fd);
        }
        for (uint32_t i = 0; i < e->ring_count; i++) {
            struct ring *r = &e->rings[i];
            if (!auraio__ring_idle(r)) {
                /* Local completions (cancelled backlog) first, then what the kernel kept. */
                poll_ring(e, r);
                struct completion batch[REAP_BATCH];
                int n;
                while ((n = auraio__ring_abandon(r, batch, REAP_BATCH)) > 0)
                    run_callbacks(e, batch, n);
            }
            auraio__ring_destroy(r);
        }
    }
    free(e->rings);
    if (e->event_fd >= 0)
        auraio__sys_close(e->event_fd);
    /* The rings are closed, so the kernel has dropped its registrations: free our copies. */
    auraio__engine_free_registrations(e);
    if (e->reg_lock_ready)
        pthread_mutex_destroy(&e->reg_lock);
    auraio__ctl_group_destroy(e->ctl);
    /* Buffers still held by the application die with the pool, as documented. */
    auraio__pool_destroy(e->pool);
    free(e->tick_in);
    if (e->tick_lock_ready)
        pthread_mutex_destroy(&e->tick_lock);
    free(e);
}
