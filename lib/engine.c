/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Engine: creates the rings and the shared eventfd, runs the event loop (poll/wait/run/stop) and
 * tears everything down with every callback delivered exactly once. Ring selection is select.c,
 * the controller tick and the stats are tick.c.
 *
 * Waiting. Several threads may wait at once, so one of them, the leader, sleeps in the kernel: in
 * poll() on the eventfd all rings signal plus its private wake_fd, or (direct_wait) inside a
 * ring's io_uring_enter when that ring is the only one with anything pending (or the only ring).
 * The others sleep on wait_cond until the leader wakes. The leader publishes leader_ring and
 * leader_asleep, then checks once more for anything to do (CQEs, local completions, unentered
 * SQEs, a stop, nothing pending for a wait, and, sleeping in a ring, anything pending in another),
 * then sleeps; each party that changes one of those without a CQE of its own (auraio_stop, a
 * reaper that took the last pending request) stores its change first and then reads leader_asleep
 * (seq_cst on both sides: at least one of them sees the other) and wakes the leader through
 * wake_fd or a wake NOP in its ring. Neither can be taken by another thread: wake_fd is drained
 * only by the leader, and io_uring_enter wakes when the CQ tail passes the mark it took at entry,
 * even if another thread reaped the CQE. A timed sleep in a ring counts on the ring's alarm instead
 * of a timeout of its own when the alarm is due no later (ring.h: a kernel timer armed and
 * cancelled per sleep cost 4-7 us of CPU per read at depth 1 here): the alarm's CQE wakes it, and
 * a thread that reaps that CQE moves the ring's count of fired alarms before it reads
 * leader_asleep, so it wakes the leader unless the leader saw the count move. The idle rings are checked under their locks, which marks
 * them (RING_SLOW_WATCHED): the submission that ends one's idleness sees the mark under the same
 * lock and posts the wake NOP to the leader's ring (ring.c, wake_leader_elsewhere), so the hot
 * path pays nothing (the mark sends that one submission the general way). Submissions never wait
 * for the leader: see auraio__engine_submit.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "engine.h"

#include "buffer_pool.h"
#include "clock.h"
#include "log.h"
#include "uring_sys.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_QUEUE_DEPTH 256
#define DEFAULT_BATCH_THRESHOLD 8
#define REAP_BATCH 64
/* Destroy asks the kernel again, this often, to cancel what it has not returned yet. */
#define DESTROY_RECANCEL_NS 1000000000ull

static _Atomic uint64_t next_engine_id = 1;

/* initial-exec: these are read on every submit, and the shared library's default TLS model would
 * call __tls_get_addr each time (about 2% of the cached QD32 read benchmark). A few dozen bytes
 * fit glibc's static TLS surplus, so dlopen still works (as buffer_pool.c's and select.c's). */
#if defined(__GNUC__)
#define ENGINE_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define ENGINE_TLS_MODEL
#endif

/* The engine whose callback this thread is running (NULL outside callbacks). */
static _Thread_local const struct auraio_engine *tls_callback_engine ENGINE_TLS_MODEL;

enum { LEADER_AWAKE, LEADER_WAITS, LEADER_RUNS };

/* Per-thread submission state that most submits never use: tls_submit_state says in one byte
 * (read on every submit) whether this thread has a chain open or a deadline armed. */
#define TLS_CHAIN_OPEN 1u
#define TLS_DEADLINE_ARMED 2u
static _Thread_local uint8_t tls_submit_state ENGINE_TLS_MODEL;
/* The chain this thread is submitting (its last request not yet submitted): one at a time, on
 * one engine's ring. */
static _Thread_local struct {
    uint64_t engine_id;
    uint32_t ring;
    struct ring_chain chain;
} tls_chain;
/* Live engines, so a thread whose chain was left open on an engine since destroyed can tell (only
 * consulted then: a linked submit finding a chain open on another engine). */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct auraio_engine *live_head;
/* Engines being destroyed, until their rings are about to be freed: an exiting thread may still
 * wait on their rings for what it entered (exit_guard.c), while destroy drains them. */
static struct auraio_engine *dying_head;

static void live_add(struct auraio_engine *e)
{
    pthread_mutex_lock(&live_lock);
    e->live_next = live_head;
    live_head = e;
    pthread_mutex_unlock(&live_lock);
}

static bool list_remove(struct auraio_engine **head, struct auraio_engine *e)
{
    for (struct auraio_engine **pp = head; *pp; pp = &(*pp)->live_next) {
        if (*pp == e) {
            *pp = e->live_next;
            return true;
        }
    }
    return false;
}

/* Destroy begins: no longer live, but still there for exiting threads. */
static void live_remove(struct auraio_engine *e)
{
    pthread_mutex_lock(&live_lock);
    if (list_remove(&live_head, e)) {
        e->live_next = dying_head;
        dying_head = e;
    }
    pthread_mutex_unlock(&live_lock);
}

/* Destroy is about to free the rings: no exiting thread may take hold of them any more. */
static void dying_remove(struct auraio_engine *e)
{
    pthread_mutex_lock(&live_lock);
    (void)list_remove(&dying_head, e);
    pthread_mutex_unlock(&live_lock);
}

static bool engine_id_live(uint64_t id)
{
    bool live = false;
    pthread_mutex_lock(&live_lock);
    for (struct auraio_engine *x = live_head; x && !live; x = x->live_next)
        live = x->id == id;
    pthread_mutex_unlock(&live_lock);
    return live;
}

bool auraio__engine_exit_hold(struct auraio_engine *e, uint64_t id)
{
    bool live = false;
    pthread_mutex_lock(&live_lock);
    for (struct auraio_engine *x = live_head; x && !live; x = x->live_next)
        live = x == e && x->id == id;
    for (struct auraio_engine *x = dying_head; x && !live; x = x->live_next)
        live = x == e && x->id == id;
    /* Under live_lock: a destroy that has not yet left the lists will see the hold. */
    if (live)
        atomic_fetch_add_explicit(&e->exit_drainers, 1, memory_order_relaxed);
    pthread_mutex_unlock(&live_lock);
    return live;
}

int auraio__engine_exit_hold_live(struct auraio_engine **out, int max)
{
    int n = 0;
    pthread_mutex_lock(&live_lock);
    for (int list = 0; list < 2; list++) {
        for (struct auraio_engine *x = list ? dying_head : live_head; x && n < max; x = x->live_next) {
            atomic_fetch_add_explicit(&x->exit_drainers, 1, memory_order_relaxed);
            out[n++] = x;
        }
    }
    pthread_mutex_unlock(&live_lock);
    return n;
}

void auraio__engine_exit_release(struct auraio_engine *e)
{
    pthread_mutex_lock(&e->wait_lock);
    atomic_fetch_sub_explicit(&e->exit_drainers, 1, memory_order_relaxed);
    pthread_cond_broadcast(&e->wait_cond);
    pthread_mutex_unlock(&e->wait_lock);
}

/* auraio_set_next_timeout: the deadline of this thread's next accepted request on engine_id. */
static _Thread_local struct {
    uint64_t engine_id;
    uint64_t timeout_ns;
} tls_deadline;

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
    e->wake_fd = -1;
    e->opts = *opts;
    if (pthread_mutex_init(&e->wait_lock, NULL) != 0) {
        free(e);
        return -ENOMEM;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    /* Followers wait with a deadline on the same clock as auraio__now_ns. */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&e->wait_cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        pthread_mutex_destroy(&e->wait_lock);
        free(e);
        return -rc;
    }
    e->wait_lock_ready = true;
    e->id = atomic_fetch_add_explicit(&next_engine_id, 1, memory_order_relaxed);

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    e->ring_count = opts->ring_count ? (uint32_t)opts->ring_count : (uint32_t)(cpus > 0 ? cpus : 1);
    if (e->ring_count > REQUEST_MAX_RINGS)
        e->ring_count = REQUEST_MAX_RINGS;

    rc = auraio__sys_eventfd();
    if (rc < 0)
        goto eventfd_fail;
    e->event_fd = rc;
    rc = auraio__sys_eventfd();
    if (rc < 0)
        goto eventfd_fail;
    e->wake_fd = rc;
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
        .engine = e,
        .engine_id = e->id,
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
    /* A waiter can sleep in the one ring with anything pending (engine.c, "Waiting"). Not with
     * SINGLE_ISSUER: stop() from another thread could not post the wake NOP. */
    atomic_init(&e->leader_ring, RING_NONE);
    atomic_init(&e->leader_alarm, false);
    atomic_init(&e->leader_alarm_seen, 0);
    if (!(e->rings[0].uring.flags & IORING_SETUP_SINGLE_ISSUER) && (e->rings[0].uring.features & IORING_FEAT_EXT_ARG)) {
        e->direct_wait = true;
        for (uint32_t i = 0; i < e->ring_count; i++) {
            e->rings[i].wake_by_nop = true;
            if (e->ring_count > 1) {
                e->rings[i].leader_ring = &e->leader_ring;
                e->rings[i].rings = e->rings;
            }
        }
    }
    auraio__log_setup_fallbacks(cfg.setup_flags, e->rings[0].uring.flags);
    rc = auraio__tick_start(e, opts, (uint32_t)max_limit);
    if (rc < 0)
        goto fail;
    live_add(e);
    *out = e;
    return 0;
eventfd_fail:
    auraio__log(AURAIO_LOG_ERROR, "eventfd_failed: cannot create the engine's eventfd (errno %d)", -rc);
fail:
    auraio__engine_destroy(e);
    return rc;
}

#ifndef NDEBUG
void auraio__engine_call_begin(struct auraio_engine *e)
{
    atomic_fetch_add_explicit(&e->calls_in_progress, 1, memory_order_seq_cst);
    /* Destroy's own callbacks may call in (and get -ESHUTDOWN); any other caller is racing it. */
    assert(!atomic_load_explicit(&e->shutting_down, memory_order_seq_cst) || auraio__engine_in_callback(e) ||
           !"auraio: a call on an engine overlapped auraio_destroy");
}

void auraio__engine_call_end(struct auraio_engine *e)
{
    atomic_fetch_sub_explicit(&e->calls_in_progress, 1, memory_order_relaxed);
}
#endif

/*
 * A submission may stay in the SQ (batched) only when a flush is certain to follow without any
 * other thread's help: from a callback, the thread running it flushes when its batch of callbacks
 * ends (flush_deferred); on a single-issuer engine, the one thread flushes at its next poll/wait.
 * Anything else enters the kernel before the submit returns, so it never waits for a thread that
 * is asleep in wait(-1) or running a slow callback.
 */
/* The rare parts of a submit: a chain (the thread's open one, or a link flag opening one) goes to
 * the chain's ring; an armed deadline is applied and, once the request is accepted, used up. */
static int submit_special(struct auraio_engine *e, const struct request_args *a, enum submit_flush flush,
                          uint64_t now, uint32_t *ring, uint64_t *handle)
{
    struct request_args with_deadline;
    bool deadline = (tls_submit_state & TLS_DEADLINE_ARMED) && tls_deadline.engine_id == e->id &&
                    a->op != REQ_TIMEOUT;
    if (deadline) {
        with_deadline = *a;
        with_deadline.timeout_ns = tls_deadline.timeout_ns;
        a = &with_deadline;
    }
    struct ring_chain *chain = NULL;
    if ((tls_submit_state & TLS_CHAIN_OPEN) && tls_chain.engine_id != e->id && !engine_id_live(tls_chain.engine_id))
        tls_submit_state &= (uint8_t)~TLS_CHAIN_OPEN; /* its engine was destroyed, members and all */
    if ((tls_submit_state & TLS_CHAIN_OPEN) && a->op != REQ_TIMEOUT) {
        if (tls_chain.engine_id != e->id) {
            if (a->link)
                return -EBUSY; /* a chain is open on another engine */
        } else {
            *ring = tls_chain.ring;
            chain = &tls_chain.chain;
        }
    } else if (a->link && a->op != REQ_TIMEOUT) {
        tls_chain.engine_id = e->id;
        tls_chain.ring = *ring;
        tls_chain.chain = (struct ring_chain){0};
        chain = &tls_chain.chain;
    }
    int rc = auraio__ring_submit(&e->rings[*ring], a, now, flush, chain, handle);
    if (chain) {
        if (tls_chain.chain.head)
            tls_submit_state |= TLS_CHAIN_OPEN;
        else
            tls_submit_state &= (uint8_t)~TLS_CHAIN_OPEN;
    }
    if (deadline && rc >= 0)
        tls_submit_state &= (uint8_t)~TLS_DEADLINE_ARMED;
    return rc;
}

/* When a submission from this thread enters the kernel (see above). */
static inline enum submit_flush submit_flush_for(const struct auraio_engine *e, bool in_callback)
{
    return in_callback ? SUBMIT_BATCH : e->opts.single_issuer ? SUBMIT_BATCH_IF_BUSY : SUBMIT_ENTER_NOW;
}

int auraio__engine_submit(struct auraio_engine *e, struct request_args *a, uint64_t *handle)
{
    if (auraio_unlikely(atomic_load_explicit(&e->shutting_down, memory_order_acquire)))
        return -ESHUTDOWN;
    bool in_callback = tls_callback_engine == e;
    /* One ring: every selection mode lands on it, so skip the choosing (and its per-thread state). */
    uint32_t ring = e->ring_count == 1 ? 0 : auraio__select_ring(e);
    enum submit_flush flush = submit_flush_for(e, in_callback);
    /* From a callback, 0: the ring stamps the request when its SQE enters the kernel, at the end
     * of the batch of callbacks, with one clock read for all of them (ring.c, stamp_entering). */
    uint64_t now = in_callback ? 0 : auraio__now_ns();
    /* The device the request counts against (device.h): a cached byte per fd after its first use.
     * Written into the caller's arguments, which the ring copies whole. */
    if (e->adaptive)
        a->device = (uint8_t)auraio__engine_request_class(e, a);
    int rc;
    if (auraio_unlikely(tls_submit_state != 0 || a->link))
        rc = submit_special(e, a, flush, now, &ring, handle);
    else
        rc = auraio__ring_submit(&e->rings[ring], a, now, flush, NULL, handle);
    if (rc < 0)
        return rc;
    if (in_callback)
        auraio__ring_note_deferred(ring, rc);
    return 0;
}

/* A plain request while this thread has a chain open or a deadline armed: the general path.
 * Also the shutting-down refusal. @return the handle, or 0 with errno set. */
static AURAIO_COLD uint64_t submit_plain_special(struct auraio_engine *e, const struct request_plain *p)
{
    struct request_args a;
    request_args_from_plain(&a, p);
    uint64_t handle = 0;
    int rc = auraio__engine_submit(e, &a, &handle);
    if (rc < 0) {
        errno = -rc;
        return 0;
    }
    return handle;
}

/* auraio__engine_submit_plain on an engine of several rings, or for an fd whose device is not
 * resolved yet: the ring selection and device resolution are calls, kept out of the caller so
 * that its common case saves no registers. */
static AURAIO_NOINLINE uint64_t submit_plain_routed(struct auraio_engine *e, struct request_plain *p,
                                                    enum submit_flush flush)
{
    uint32_t ring = e->ring_count == 1 ? 0 : auraio__select_ring(e);
    if (e->adaptive)
        p->device = (uint8_t)auraio__engine_fd_class(e, p->fd);
    return auraio__ring_submit_plain(&e->rings[ring], p, flush);
}

/* auraio__engine_submit for a struct request_plain: the same decisions, in the order the hot path
 * needs them (the rare cases leave through submit_plain_special before anything is chosen), and
 * the ring's submit as its last call, so the two layers cost one call between them: the ring reads
 * the clock and notes a deferred flush itself (auraio__ring_submit_plain). */
uint64_t auraio__engine_submit_plain(struct auraio_engine *e, struct request_plain *p)
{
    /* Shutting down: the general path refuses it (-ESHUTDOWN), as it refuses everything then. */
    if (auraio_unlikely(atomic_load_explicit(&e->shutting_down, memory_order_acquire) || tls_submit_state != 0))
        return submit_plain_special(e, p);
    enum submit_flush flush = submit_flush_for(e, tls_callback_engine == e);
    /* One ring: every selection mode lands on it. A resolved fd's device is one cached byte. */
    if (auraio_unlikely(e->ring_count != 1))
        return submit_plain_routed(e, p, flush);
    if (e->adaptive) {
        int c = auraio__device_cached(&e->devices, p->fd);
        if (auraio_unlikely(c < 0))
            return submit_plain_routed(e, p, flush);
        p->device = (uint8_t)c;
    }
    return auraio__ring_submit_plain(&e->rings[0], p, flush);
}

int auraio__engine_set_next_timeout(struct auraio_engine *e, uint64_t timeout_ns)
{
    tls_deadline.engine_id = e->id;
    tls_deadline.timeout_ns = timeout_ns;
    if (timeout_ns)
        tls_submit_state |= TLS_DEADLINE_ARMED;
    else
        tls_submit_state &= (uint8_t)~TLS_DEADLINE_ARMED;
    return 0;
}

int auraio__engine_cancel_fd(struct auraio_engine *e, int fd)
{
    if (atomic_load_explicit(&e->shutting_down, memory_order_acquire))
        return -ESHUTDOWN;
    int total = 0;
    int err = 0;
    for (uint32_t i = 0; i < e->ring_count; i++) {
        int n = auraio__ring_cancel_fd(&e->rings[i], fd);
        if (n < 0)
            err = n;
        else
            total += n;
    }
    return err ? err : total;
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

/* Enter the kernel with what this thread's callbacks left in the SQs (see auraio__engine_submit). */
static void flush_deferred(struct auraio_engine *e)
{
    uint32_t ring = auraio__ring_deferred;
    auraio__ring_deferred = RING_DEFERRED_NONE;
    if (ring == RING_DEFERRED_NONE)
        return;
    if (ring != RING_DEFERRED_MANY) {
        (void)auraio__ring_flush(&e->rings[ring]); /* errors reach the callbacks (flush_locked) */
        return;
    }
    for (uint32_t i = 0; i < e->ring_count; i++)
        (void)auraio__ring_flush(&e->rings[i]);
}

/* Reap one ring until it is empty or has given a CQ's worth, running callbacks unlocked.
 * @return callbacks run, or a fatal -errno from the ring when it had nothing to deliver. */
static int poll_ring(struct auraio_engine *e, struct ring *r, bool *took_wake)
{
    struct completion batch[REAP_BATCH];
    int total = 0;
    int budget = (int)r->uring.cq_entries;
    for (;;) {
        uint64_t now = auraio__now_ns();
        int n = auraio__ring_reap(r, batch, REAP_BATCH, now, took_wake);
        if (n <= 0)
            return total > 0 ? total : n;
        auraio__tick_maybe(e, now);
        run_callbacks(e, batch, n);
        flush_deferred(e);
        total += n;
        /* Bounded: callbacks that resubmit cached reads would otherwise keep us here forever. */
        if (n < REAP_BATCH || total >= budget)
            return total;
    }
}

static bool stop_outstanding(const struct auraio_engine *e)
{
    return atomic_load_explicit(&((struct auraio_engine *)e)->stops_requested, memory_order_seq_cst) >
           atomic_load_explicit(&((struct auraio_engine *)e)->stops_consumed, memory_order_seq_cst);
}

/* Whether a ring other than @p in has anything pending. */
static bool pending_elsewhere(const struct auraio_engine *e, uint32_t in)
{
    for (uint32_t i = 0; i < e->ring_count; i++) {
        if (i != in && ring_pending(&e->rings[i]) > 0)
            return true;
    }
    return false;
}

/* Whether the leader's sleep in ring @p in counts on an alarm that has fired since it looked. */
static bool alarm_fired(const struct auraio_engine *e, uint32_t in)
{
    return atomic_load_explicit(&((struct auraio_engine *)e)->leader_alarm, memory_order_relaxed) &&
           auraio__ring_alarms_fired(&e->rings[in]) !=
               atomic_load_explicit(&((struct auraio_engine *)e)->leader_alarm_seen, memory_order_relaxed);
}

/* After changing something a sleeping leader waits for: wake it if it must return. A leader in a
 * ring must also return once another ring has anything pending: this thread may have reaped the
 * wake NOP a submission to that ring posted for it (poll_rings). */
static void wake_leader_if_it_must_return(struct auraio_engine *e)
{
    atomic_thread_fence(memory_order_seq_cst); /* pairs with the leader's fence in sleep_once */
    int asleep = atomic_load_explicit(&e->leader_asleep, memory_order_relaxed);
    if (asleep == LEADER_AWAKE)
        return;
    uint32_t in = atomic_load_explicit(&e->leader_ring, memory_order_relaxed);
    if (!stop_outstanding(e) && !(asleep == LEADER_WAITS && auraio__engine_pending(e) == 0) &&
        !(in != RING_NONE && pending_elsewhere(e, in)) && !(in != RING_NONE && alarm_fired(e, in)))
        return;
    if (in != RING_NONE)
        auraio__ring_wake(&e->rings[in]);
    else
        auraio__sys_eventfd_signal(e->wake_fd);
}

/* @return callbacks run, or a fatal -errno when no ring had anything and one reported it. */
static int poll_rings(struct auraio_engine *e)
{
    int total = 0;
    int err = 0;
    bool took_wake = false;
    for (uint32_t i = 0; i < e->ring_count; i++) {
        int n = poll_ring(e, &e->rings[i], &took_wake);
        if (n > 0)
            total += n;
        else if (n < 0)
            err = n;
    }
    /* A waiter asleep since before these completions may have been waiting for the last one. A
     * wake NOP reaped here may have been meant for a leader that had checked for work but not yet
     * entered the kernel (it then waits for a CQE after that one): wake it again. */
    if (total > 0 || took_wake)
        wake_leader_if_it_must_return(e);
    return total > 0 ? total : err;
}

int auraio__engine_poll(struct auraio_engine *e)
{
    /* Drain first: an embedding epoll loop must not see the fd readable for completions we are
     * about to deliver (it would spin), and one posted after this read re-arms it. A leader asleep
     * on the same fd loses nothing it needs: the CQEs are delivered here, and a stop or the last
     * completion wakes it through wake_fd. */
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

/* The engine's total in-flight limit minus everything pending. Not the sum of each ring's room:
 * under the controller a submission stays on its thread's ring (select.c), so room left on
 * another ring would let a thread queue on its own without bound while capacity never fell. The
 * total is the controller's depth, not the rings' limits: those include a limit of 1 on every
 * ring without demand, and counting it kept one request of every batch in the backlog. */
int auraio__engine_capacity(const struct auraio_engine *e)
{
    int limit = 0, pending = 0;
    for (uint32_t i = 0; i < e->ring_count; i++) {
        limit += ring_limit(&e->rings[i]);
        pending += ring_pending(&e->rings[i]);
    }
    if (e->adaptive) {
        int w = (int)atomic_load_explicit(&((struct auraio_engine *)e)->group_limit, memory_order_relaxed);
        if (w < limit)
            limit = w;
    }
    return limit > pending ? limit - pending : 0;
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

/* Anything a waiter would act on right now instead of sleeping (in ring @p in: also anything
 * pending in another ring, whose idle rings this marks watched). */
static bool work_ready(struct auraio_engine *e, bool sleep_when_idle, uint32_t in)
{
    if (stop_outstanding(e))
        return true;
    if (!sleep_when_idle && auraio__engine_pending(e) == 0)
        return true;
    bool watch = in != RING_NONE && e->ring_count > 1;
    for (uint32_t i = 0; i < e->ring_count; i++) {
        if (auraio__ring_has_work(&e->rings[i], watch && i != in))
            return true;
    }
    return false;
}

/* The ring the leader may sleep in: the only one (with anything pending), or RING_NONE (the
 * eventfd). Read without the locks: work_ready confirms it under them. */
static uint32_t ring_to_sleep_in(const struct auraio_engine *e)
{
    if (!e->direct_wait)
        return RING_NONE;
    if (e->ring_count == 1)
        return 0;
    uint32_t busy = RING_NONE;
    for (uint32_t i = 0; i < e->ring_count; i++) {
        if (ring_pending(&e->rings[i]) > 0) {
            if (busy != RING_NONE)
                return RING_NONE;
            busy = i;
        }
    }
    return busy;
}

/* A follower sleeps until the leader wakes (the epoch moves) or @p wait_ms passes. */
static void follow(struct auraio_engine *e, uint64_t epoch, int wait_ms)
{
    struct timespec deadline;
    if (wait_ms >= 0) {
        uint64_t at = auraio__now_ns() + (uint64_t)wait_ms * 1000000u;
        deadline.tv_sec = (time_t)(at / 1000000000u);
        deadline.tv_nsec = (long)(at % 1000000000u);
    }
    while (e->wait_epoch == epoch) {
        if (wait_ms < 0)
            pthread_cond_wait(&e->wait_cond, &e->wait_lock);
        else if (pthread_cond_timedwait(&e->wait_cond, &e->wait_lock, &deadline) != 0)
            break; /* ETIMEDOUT; the caller re-checks everything anyway */
    }
}

/*
 * Sleep once: as the leader in the kernel, or as a follower until the leader wakes. Returns after
 * any wake-up, timeout or interruption; the caller polls and decides. @return 0 or a fatal -errno
 * from the kernel wait.
 */
static int sleep_once(struct auraio_engine *e, int wait_ms, bool sleep_when_idle)
{
    pthread_mutex_lock(&e->wait_lock);
    if (e->wait_leader) {
        follow(e, e->wait_epoch, wait_ms);
        pthread_mutex_unlock(&e->wait_lock);
        return 0;
    }
    e->wait_leader = true;
    pthread_mutex_unlock(&e->wait_lock);

    int rc = 0;
    uint32_t in = ring_to_sleep_in(e);
    /* The eventfd counts every CQE, also those of a sleep in a ring: drained before the check
     * below, not after (a CQE posted in between signals it again), it wakes this sleep once
     * for nothing less. */
    if (in == RING_NONE && e->leader_slept_in_ring) {
        auraio__sys_eventfd_drain(e->event_fd);
        e->leader_slept_in_ring = false;
    }
    /* A timed sleep in a ring: its alarm, if one is due by this sleep's deadline, ends it. */
    uint32_t seen = 0;
    bool alarm = in != RING_NONE && wait_ms > 0 &&
                 auraio__ring_alarm(&e->rings[in], auraio__now_ns() + (uint64_t)wait_ms * 1000000u, &seen);
    atomic_store_explicit(&e->leader_alarm_seen, seen, memory_order_relaxed);
    atomic_store_explicit(&e->leader_alarm, alarm, memory_order_relaxed);
    atomic_store_explicit(&e->leader_ring, in, memory_order_relaxed);
    atomic_store_explicit(&e->leader_asleep, sleep_when_idle ? LEADER_RUNS : LEADER_WAITS, memory_order_seq_cst);
    atomic_thread_fence(memory_order_seq_cst); /* pairs with wake_leader_if_it_must_return */
    if (!work_ready(e, sleep_when_idle, in) && !(alarm && alarm_fired(e, in))) {
        uint64_t slept_from = e->adaptive ? auraio__now_ns() : 0;
        if (in != RING_NONE) {
            rc = auraio__ring_wait(&e->rings[in], alarm ? -1 : wait_ms);
            e->leader_slept_in_ring = true;
        } else {
            rc = auraio__sys_wait_either_readable(e->event_fd, e->wake_fd, wait_ms);
            if (rc > 0) {
                auraio__sys_eventfd_drain(e->event_fd);
                auraio__sys_eventfd_drain(e->wake_fd);
            }
            rc = rc > 0 ? 0 : rc;
        }
        /* One more non-blocking pass decides. EAGAIN/EBUSY: the kernel could not flush an
         * overflow or task work into the CQ yet, which that pass retries too. */
        if (rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY)
            rc = 0;
        if (e->adaptive)
            atomic_fetch_add_explicit(&e->waited_ns, auraio__now_ns() - slept_from, memory_order_relaxed);
    }
    atomic_store_explicit(&e->leader_asleep, LEADER_AWAKE, memory_order_relaxed);
    atomic_store_explicit(&e->leader_ring, RING_NONE, memory_order_relaxed);
    atomic_store_explicit(&e->leader_alarm, false, memory_order_relaxed);

    pthread_mutex_lock(&e->wait_lock);
    e->wait_leader = false;
    e->wait_epoch++;
    pthread_cond_broadcast(&e->wait_cond);
    pthread_mutex_unlock(&e->wait_lock);
    return rc;
}

/* wait and run: reap, then sleep, until callbacks ran, a stop was taken, the timeout passed or
 * (unless @p sleep_when_idle) nothing is pending. */
static int wait_impl(struct auraio_engine *e, int timeout_ms, bool sleep_when_idle, bool *stopped)
{
    uint64_t deadline = timeout_ms > 0 ? auraio__now_ns() + (uint64_t)timeout_ms * 1000000u : 0;

    for (;;) {
        int n = poll_rings(e);
        if (n != 0)
            return n;
        if (consume_stop(e)) {
            *stopped = true;
            return 0;
        }
        if (!sleep_when_idle && auraio__engine_pending(e) == 0)
            return 0;
        int wait_ms = timeout_ms < 0 ? -1 : timeout_ms == 0 ? 0 : remaining_ms(deadline);
        if (wait_ms == 0)
            return -ETIME;
        if (any_submit_stalled(e) && (wait_ms < 0 || wait_ms > 1))
            wait_ms = 1; /* nothing will signal us: retry the submission soon */
        int rc = sleep_once(e, wait_ms, sleep_when_idle);
        if (rc < 0)
            return rc;
    }
}

int auraio__engine_wait(struct auraio_engine *e, int timeout_ms)
{
    bool stopped = false;
    return wait_impl(e, timeout_ms, false, &stopped);
}

int auraio__engine_run(struct auraio_engine *e)
{
    for (;;) {
        bool stopped = false;
        int rc = wait_impl(e, -1, true, &stopped);
        if (stopped) {
            int n = poll_rings(e);
            return n < 0 ? n : 0;
        }
        if (rc < 0)
            return rc;
    }
}

int auraio__engine_stop(struct auraio_engine *e)
{
    atomic_fetch_add_explicit(&e->stops_requested, 1, memory_order_seq_cst);
    pthread_mutex_lock(&e->wait_lock);
    e->wait_epoch++;
    pthread_cond_broadcast(&e->wait_cond);
    pthread_mutex_unlock(&e->wait_lock);
    wake_leader_if_it_must_return(e);
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
    /* Before shutting_down: the server's scrapes are calls on the engine, and must have ended. */
    struct auraio_metrics_server *server = atomic_exchange(&e->metrics_server, NULL);
    if (server)
        e->metrics_server_stop(server);
    atomic_store_explicit(&e->shutting_down, true, memory_order_seq_cst);
    live_remove(e);
#ifndef NDEBUG
    assert(atomic_load_explicit(&e->calls_in_progress, memory_order_seq_cst) == 0 ||
           !"auraio: auraio_destroy called while another call on the engine is in progress");
#endif

    if (e->rings && e->ring_count > 0) {
        for (uint32_t i = 0; i < e->ring_count; i++)
            auraio__ring_cancel_all(&e->rings[i]);
        /* Wait for every request, however long the kernel takes: closing the ring instead would
         * let the kernel finish them asynchronously, writing buffers whose callbacks had already
         * told the application it may free them. Cancels the kernel could not act on yet (queued
         * behind others, or running in a worker) are asked again each second. */
        uint64_t last_cancel = auraio__now_ns();
        bool reported = false;
        while (!all_idle(e)) {
            if (poll_rings(e) > 0)
                continue;
            uint64_t now = auraio__now_ns();
            if (now - last_cancel > DESTROY_RECANCEL_NS) {
                if (!reported)
                    auraio__log(AURAIO_LOG_WARN,
                                "destroy_waiting: %d requests not returned by the kernel after 1 s; cancelling "
                                "again each second and waiting, however long it takes",
                                auraio__engine_pending(e));
                reported = true;
                for (uint32_t i = 0; i < e->ring_count; i++)
                    auraio__ring_cancel_all(&e->rings[i]);
                last_cancel = now;
            }
            int rc = auraio__sys_wait_readable(e->event_fd, any_submit_stalled(e) ? 1 : 100);
            if (rc > 0)
                auraio__sys_eventfd_drain(e->event_fd);
        }
        /* A thread exiting now may still be looking at the rings (exit_guard.c): its requests
         * are done, so it lets go within one of its sleeps. */
        dying_remove(e);
        pthread_mutex_lock(&e->wait_lock);
        while (atomic_load_explicit(&e->exit_drainers, memory_order_relaxed) > 0)
            pthread_cond_wait(&e->wait_cond, &e->wait_lock);
        pthread_mutex_unlock(&e->wait_lock);
        for (uint32_t i = 0; i < e->ring_count; i++)
            auraio__ring_destroy(&e->rings[i]);
    }
    dying_remove(e); /* done above when there were rings; an engine without any was never live */
    free(e->rings);
    if (e->event_fd >= 0)
        auraio__sys_close(e->event_fd);
    if (e->wake_fd >= 0)
        auraio__sys_close(e->wake_fd);
    /* The rings are closed, so the kernel has dropped its registrations: free our copies. */
    auraio__engine_free_registrations(e);
    if (e->reg_lock_ready)
        pthread_mutex_destroy(&e->reg_lock);
    auraio__devices_stop(e);
    /* Buffers still held by the application die with the pool, as documented. */
    auraio__pool_destroy(e->pool);
    free(e->tick_in);
    if (e->tick_lock_ready)
        pthread_mutex_destroy(&e->tick_lock);
    if (e->wait_lock_ready) {
        pthread_cond_destroy(&e->wait_cond);
        pthread_mutex_destroy(&e->wait_lock);
    }
    free(e);
}
