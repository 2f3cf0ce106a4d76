/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Engine: creates the rings and the shared eventfd, runs the event loop (poll/wait/run/stop) and
 * tears everything down with every callback delivered exactly once. Ring selection is select.c,
 * the controller tick and the stats are tick.c.
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
#include "uring_sys.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_QUEUE_DEPTH 256
#define DEFAULT_BATCH_THRESHOLD 8
#define REAP_BATCH 64
/* Destroy gives the kernel this long to return cancelled requests before it stops waiting. */
#define DESTROY_DRAIN_LIMIT_NS (10ull * 1000000000ull)

static _Atomic uint64_t next_engine_id = 1;

/* The engine whose callback this thread is running (NULL outside callbacks). */
static _Thread_local const struct auraio_engine *tls_callback_engine;

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
    /* With one ring there is nothing else to watch, so a waiter can sleep in the ring itself.
     * Not with SINGLE_ISSUER: stop() from another thread could not post the wake NOP. */
    if (e->ring_count == 1 && !(e->rings[0].uring.flags & IORING_SETUP_SINGLE_ISSUER) &&
        (e->rings[0].uring.features & IORING_FEAT_EXT_ARG)) {
        e->direct_wait = true;
        e->rings[0].wake_by_nop = true;
    }
    rc = auraio__tick_start(e, opts, (uint32_t)max_limit);
    if (rc < 0)
        goto fail;
    *out = e;
    return 0;
fail:
    auraio__engine_destroy(e);
    return rc;
}

int auraio__engine_submit(struct auraio_engine *e, const struct request_args *a, uint64_t *handle)
{
    if (atomic_load_explicit(&e->shutting_down, memory_order_acquire))
        return -ESHUTDOWN;
    return auraio__ring_submit(&e->rings[auraio__select_ring(e)], a, auraio__now_ns(), handle);
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
        auraio__tick_maybe(e, now);
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
        int room = ring_limit(&e->rings[i]) - ring_pending(&e->rings[i]);
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
        if (e->direct_wait) {
            int rc = auraio__ring_wait(&e->rings[0], wait_ms);
            if (rc < 0 && rc != -ETIME && rc != -EINTR)
                return rc;
            continue;
        }
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
    if (e->direct_wait)
        auraio__ring_wake(&e->rings[0]);
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
