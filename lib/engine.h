/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The engine: its rings, the eventfd they share, ring selection, the event loop and teardown.
 * api.c checks arguments and calls in here; nothing here re-checks what api.c guarantees.
 *
 * Lock order: reg_lock or tick_lock (never both), then one ring lock at a time (ring locks never
 * nest). No lock is held while a user callback runs. The buffer pool's locks are leaves.
 */
#ifndef AURAIO_ENGINE_H
#define AURAIO_ENGINE_H

#include "auraio.h"
#include "device.h"
#include "device_punt.h"
#include "request.h"
#include "ring.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct buffer_pool;
struct ctl_group;

/* What the engine learned of one device's model, to tell when it last changed (device_ctl.c). */
struct device_model {
    uint32_t knee;
    double base_ns, ceiling_bps;
    uint64_t changed_ns; /* when the model last moved by more than noise; 0: not measured yet */
    int change;          /* the last move: -1 down (slower: lower ceiling or higher base), +1 up */
};

/* One device class of an engine: its controller group and its own P99 target. */
struct engine_device {
    struct ctl_group *ctl;
    double target_ms;
    bool target_own;        /* set for this device alone: an engine-wide change leaves it */
    bool infeasible_logged; /* target_infeasible reported once per target */
    struct device_model model;
    /* Backlog waits (ring.h, ring_class.waited_ns) summed over a stats window, and the last
     * window's mean (device_ctl.c). */
    uint64_t wait_ns, wait_n, wait_window_ns;
    double backlog_wait_ms;
    /* The group's depth as last applied (device_ctl.c), for auraio_device_capacity without the
     * tick lock. */
    _Atomic uint32_t depth;
    /* Whether its submissions go to io-wq (device_punt.h), decided by the tick; flagged: what
     * the rings' cls_sqe_flags say now. */
    struct punt punt;
    bool flagged;
};

struct auraio_engine {
    struct ring *rings;
    uint32_t ring_count;
    int event_fd;
    /* The leader's private wake-up (eventfd mode): drained only by the leader, so no auraio_poll
     * on another thread can take a stop meant for it, as it could on event_fd. */
    int wake_fd;
    /* Several threads allowed, kernel with timed waits: the leader sleeps in a ring's
     * io_uring_enter when that ring is the only one with anything pending (one syscall per wake
     * instead of poll + read on the eventfd; engine.c, "Waiting"). */
    bool direct_wait;
    uint64_t id; /* distinguishes engines in thread-local caches across destroy/create */
    auraio_options_t opts;
    struct buffer_pool *pool;

    /* Depth control: one controller group per device (device_ctl.c), each over all the rings; a
     * ring's limit is the sum of its per-device shares. The tick runs on whichever polling thread
     * finds it due (try-lock), so there is no thread to stop. tick_lock also serialises device
     * resolution (a submit's first use of an fd) and every reader of the groups. */
    bool adaptive; /* false: disable_adaptive, every request in DEVICE_NONE at the fixed limit */
    struct device_table devices;
    bool devices_ready;
    struct engine_device dev[DEVICE_CLASSES]; /* [DEVICE_NONE] has no group */
    /* Registered files' classes by index (registration.c), read without a lock like the map. */
    _Atomic(struct device_map *) fixed_classes;
    pthread_mutex_t tick_lock;
    bool tick_lock_ready;
    struct ctl_ring_input *tick_in; /* DEVICE_CLASSES x ring_count entries, allocated at create */
    _Atomic uint64_t next_tick_ns;
    /* Time waiters spent asleep in the kernel for completions, for the controller: a silence
     * it slept through is the device's, one it did not is the application's (tick.c). */
    _Atomic uint64_t waited_ns;
    /* The sum of the device groups' depths: the engine's total in-flight limit (tick.c). The
     * rings' limits can add up to a little more, since a ring without demand keeps a limit of 1. */
    _Atomic uint32_t group_limit;
    /* Devices' submissions may be handed to io-wq (device_punt.h): AURAIO_SUBMIT_OFFLOAD=1 in
     * the environment at engine creation turns it on (doc/controller.md says why it is off). */
    bool offload_enabled;

    /* Registered buffers and files (registration.c): the engine's copies, shared read-only by
     * the rings while registered. reg_lock serialises register/update/unregister; it is taken
     * before a ring lock, never while holding one. */
    pthread_mutex_t reg_lock;
    bool reg_lock_ready;
    struct iovec *fixed_bufs;
    uint32_t fixed_buf_count;
    int *fixed_files;
    uint32_t fixed_file_count;

    /* Waiting (engine.c, "Waiting"): one waiter at a time sleeps in the kernel (the leader), the
     * others on wait_cond until the leader wakes (wait_epoch changes). */
    pthread_mutex_t wait_lock;
    pthread_cond_t wait_cond;
    bool wait_lock_ready;
    bool wait_leader;    /* under wait_lock: a waiter is (about to be) asleep in the kernel */
    uint64_t wait_epoch; /* under wait_lock: bumped when the leader wakes and on every stop */
    /* Set by the leader, sequentially consistent, before its last check for work; whoever then
     * changes what it waits for (a stop, the last pending request reaped) wakes it.
     * LEADER_AWAKE, LEADER_WAITS (wait: returns when nothing is pending) or LEADER_RUNS. */
    _Atomic int leader_asleep;
    /* The ring the leader sleeps in (RING_NONE: the eventfd, or awake), stored with
     * leader_asleep; the rings' leader_ring points here. */
    _Atomic uint32_t leader_ring;
    /* The leader's timed sleep in leader_ring counts on that ring's alarm (ring.h) fired
     * leader_alarm_seen times so far; stored with leader_asleep. */
    _Atomic bool leader_alarm;
    _Atomic uint32_t leader_alarm_seen;
    bool leader_slept_in_ring; /* the leader's own: drain the eventfd before sleeping on it */

    /* The embedded /metrics server (metrics_http.c), if one runs: destroy stops it first, through
     * the function it registered, so the engine does not link the HTTP module. */
    struct auraio_metrics_server *_Atomic metrics_server;
    void (*metrics_server_stop)(struct auraio_metrics_server *);

    struct auraio_engine *live_next; /* engine.c's list of live engines (stale chain detection) */
    /* Exiting threads waiting for their I/O on this engine (exit_guard.c): destroy frees the rings
     * only once none is left. Changed under wait_lock (taken under live_lock by a hold). */
    _Atomic int exit_drainers;
    _Atomic bool shutting_down;
    /* Debug builds: calls in progress, so destroy can detect one racing it (see auraio_destroy). */
    _Atomic int calls_in_progress;
    _Atomic uint64_t stops_requested;
    _Atomic uint64_t stops_consumed;
    _Atomic uint32_t round_robin_next;
    _Atomic uint32_t thread_ring_next;
    _Atomic uint64_t adaptive_spills;
};

int auraio__engine_create(const auraio_options_t *opts, struct auraio_engine **out);
/* The thread-exit guard (exit_guard.c): keep @p e's rings from being freed while an exiting thread
 * waits on them. false: @p e (with @p id) is no longer live, its destroy drained everything. */
bool auraio__engine_exit_hold(struct auraio_engine *e, uint64_t id);
/* The same for every live engine, up to @p max into @p out. @return how many were held. */
int auraio__engine_exit_hold_live(struct auraio_engine **out, int max);
void auraio__engine_exit_release(struct auraio_engine *e);
void auraio__engine_destroy(struct auraio_engine *e);

/* Both set a->device (the request's device class) before the ring copies the arguments.
 * @return >= 0 (accepted) or -errno. */
int auraio__engine_submit(struct auraio_engine *e, struct request_args *a, uint64_t *handle);
/* The same for a plain read or write (request.h, struct request_plain): api.c knows when it is.
 * @return the handle, or 0 with errno set (auraio__ring_submit_plain). */
uint64_t auraio__engine_submit_plain(struct auraio_engine *e, struct request_plain *p);
/* auraio_set_next_timeout and auraio_cancel_fd. */
int auraio__engine_set_next_timeout(struct auraio_engine *e, uint64_t timeout_ns);
int auraio__engine_cancel_fd(struct auraio_engine *e, int fd);

/*
 * The destroy contract (auraio.h, auraio_destroy): no call may overlap destroy, except those made
 * by the callbacks destroy itself runs. Debug builds (NDEBUG undefined) count calls in progress so
 * that destroy, and a call arriving while destroy runs, can detect a violation and abort instead
 * of using freed memory. Release builds compile both to nothing.
 */
#ifndef NDEBUG
void auraio__engine_call_begin(struct auraio_engine *e);
void auraio__engine_call_end(struct auraio_engine *e);
#else
static inline void auraio__engine_call_begin(struct auraio_engine *e)
{
    (void)e;
}
static inline void auraio__engine_call_end(struct auraio_engine *e)
{
    (void)e;
}
#endif
int auraio__engine_cancel(struct auraio_engine *e, uint64_t handle);
int auraio__engine_request_pending(struct auraio_engine *e, uint64_t handle);

int auraio__engine_poll(struct auraio_engine *e);
int auraio__engine_wait(struct auraio_engine *e, int timeout_ms);
int auraio__engine_run(struct auraio_engine *e);
int auraio__engine_stop(struct auraio_engine *e);
int auraio__engine_flush(struct auraio_engine *e);

int auraio__engine_pending(const struct auraio_engine *e);
int auraio__engine_capacity(const struct auraio_engine *e);
void auraio__engine_ring_stats(struct auraio_engine *e, uint32_t ring, auraio_ring_stats_t *out);
void auraio__engine_stats(struct auraio_engine *e, auraio_stats_t *out);
int auraio__engine_histogram(struct auraio_engine *e, uint32_t ring, auraio_histogram_t *out);
int auraio__engine_set_p99_target(struct auraio_engine *e, double ms);
/* One device's own target (0: back to the engine-wide one); -EBADF, -ENODEV, -EOPNOTSUPP. */
int auraio__engine_set_device_p99_target(struct auraio_engine *e, int fd, double ms);
/* True on a thread currently running one of @p e's callbacks. */
bool auraio__engine_in_callback(const struct auraio_engine *e);

/* Ring selection (select.c): the ring this submission goes to. */
uint32_t auraio__select_ring(struct auraio_engine *e);

/* Depth control and stats (tick.c). */
int auraio__tick_start(struct auraio_engine *e, const auraio_options_t *opts, uint32_t ring_max);
void auraio__tick_maybe(struct auraio_engine *e, uint64_t now_ns);

/* Per-device control (device_ctl.c). The class of a request's device: the cached lookup inline,
 * resolution (one fstat, maybe a new controller group) on an fd's first use. */
uint32_t auraio__engine_device_resolve(struct auraio_engine *e, int fd);
uint32_t auraio__engine_request_class(struct auraio_engine *e, const struct request_args *a);
static inline uint32_t auraio__engine_fd_class(struct auraio_engine *e, int fd)
{
    int c = auraio__device_cached(&e->devices, fd);
    return auraio_likely(c >= 0) ? (uint32_t)c : auraio__engine_device_resolve(e, fd);
}
/* Device @p fd's requests in the kernel and in the backlog, and how many more its share admits
 * now, summed over the rings. @return 0, -EOPNOTSUPP (no controller), -EBADF, -ENODEV. */
struct device_load {
    uint32_t in_flight, backlog, room;
};
int auraio__engine_device_load(struct auraio_engine *e, int fd, struct device_load *out);
/* Class @p k's load (k a device class the engine has set up). */
void auraio__devices_class_load(struct auraio_engine *e, uint32_t k, struct device_load *out);
/* Without @p adaptive only the table is made: nothing looks it up (every request is DEVICE_NONE's). */
int auraio__devices_start(struct auraio_engine *e, uint32_t ring_max, bool adaptive);
void auraio__devices_stop(struct auraio_engine *e);
/* Under tick_lock: one tick of every device group, then the rings' limits. */
void auraio__devices_tick(struct auraio_engine *e, uint64_t now_ns);
/* Under tick_lock: the classes of registered files @p fds (index order), for the fixed map. */
int auraio__devices_fixed_set(struct auraio_engine *e, uint32_t first, const int *fds, uint32_t count);

/* Registration (registration.c). */
int auraio__engine_register_buffers(struct auraio_engine *e, const struct iovec *iovs, int count);
int auraio__engine_register_files(struct auraio_engine *e, const int *fds, int count);
int auraio__engine_update_file(struct auraio_engine *e, int index, int fd);
int auraio__engine_unregister(struct auraio_engine *e, auraio_reg_type_t type);
/* Destroy-time: free the copies (the kernel dropped its side when the rings closed). */
void auraio__engine_free_registrations(struct auraio_engine *e);

/* Options (options.c). */
void auraio__options_defaults(auraio_options_t *o);
int auraio__options_validate(const auraio_options_t *o);

#endif
