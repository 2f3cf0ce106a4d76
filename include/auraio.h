/* SPDX-License-Identifier: Apache-2.0 */
/*
 * auraio: a self-tuning asynchronous I/O library for Linux, built directly on io_uring.
 *
 * This header is the whole public C API. It is self-contained, C11 and C++ safe, and has no
 * inline functions or function-like macros so that FFI layers (cffi, bindgen) can call everything.
 *
 * Conventions used by every function below:
 *  - Functions returning int return >= 0 on success and a negative errno value on failure.
 *  - Functions returning a pointer return NULL on failure and set errno.
 *  - If a submit call (auraio_read, auraio_write, ...) fails, its callback never runs. If it
 *    succeeds, the callback runs exactly once: with the byte count or the kernel's -errno, with
 *    -ECANCELED when the request was cancelled, including by auraio_destroy. The byte count is the
 *    kernel's, passed through: a read or write may transfer fewer bytes than asked (end of file, a
 *    pipe, a signal, the kernel's per-call maximum of 2 GiB - 4 KiB) and is not resubmitted for
 *    the rest; that is the caller's to do, as with pread/pwrite.
 *  - Callbacks run only on a thread inside auraio_poll, auraio_wait, auraio_run or auraio_destroy,
 *    never with a library lock held and never inside a submit call. A callback may submit new I/O;
 *    it must not call auraio_poll/wait/run (they return -EDEADLK) or auraio_destroy.
 *  - Thread lifetime: io_uring ties a request to the thread that handed it to the kernel, which is
 *    whichever thread's submit, flush, poll, wait or run entered the kernel, and a request whose
 *    thread has exited fails (a buffered read waiting for the page cache with -EFAULT). So a thread
 *    that entered the kernel for an engine waits, as it exits, until the I/O on regular files and
 *    block devices that was in that engine's kernel queues then has completed (its own and any
 *    other thread's; nobody has to reap it first, and the exiting thread runs no callbacks).
 *    Threads that come and go lose no file I/O. Not waited for: timers, and requests on pipes,
 *    sockets and other files that may never complete on their own: those fail with -ECANCELED
 *    (when the file becomes ready, on recent kernels) unless their thread outlives them. A thread
 *    that never entered the kernel pays nothing at exit; an engine destroyed first is not waited on.
 */
#ifndef AURAIO_H
#define AURAIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AURAIO_VERSION_MAJOR 0
#define AURAIO_VERSION_MINOR 1
#define AURAIO_VERSION_PATCH 0
#define AURAIO_VERSION_STRING "0.1.0"
/** MAJOR * 10000 + MINOR * 100 + PATCH, as returned by auraio_version_int(). */
#define AURAIO_VERSION_INT (AURAIO_VERSION_MAJOR * 10000 + AURAIO_VERSION_MINOR * 100 + AURAIO_VERSION_PATCH)

#if defined(_WIN32)
#error "auraio requires Linux io_uring"
#elif defined(AURAIO_BUILDING_LIBRARY) && defined(__GNUC__)
#define AURAIO_API __attribute__((visibility("default")))
#else
#define AURAIO_API
#endif

/** Opaque engine: a set of io_uring rings, their request pools and their depth controllers. */
typedef struct auraio_engine auraio_engine_t;

/**
 * Opaque request handle. It encodes a slot and a generation, so a handle kept after its callback
 * ran is recognised as stale (auraio_cancel returns -EALREADY) instead of acting on a newer request
 * that reuses the slot. Never dereference it.
 */
typedef struct auraio_request auraio_request_t;

/**
 * Completion callback.
 * @param req       the handle the submit call returned; its slot is already free for reuse (a
 *                  callback can resubmit even when the ring is full) so the handle is retired:
 *                  auraio_cancel on it returns -EALREADY
 * @param result    bytes transferred (>= 0) or a negative errno (-ECANCELED when cancelled)
 * @param user_data the pointer given at submit
 */
typedef void (*auraio_callback_t)(auraio_request_t *req, ssize_t result, void *user_data);

/** Buffer descriptor kinds. */
typedef enum {
    AURAIO_BUF_UNREGISTERED = 0, /**< plain user memory: ptr is used */
    AURAIO_BUF_REGISTERED = 1,   /**< registered buffer: index and offset are used */
} auraio_buf_type_t;

/** Buffer descriptor, built with auraio_buf() or auraio_buf_fixed(). */
typedef struct {
    auraio_buf_type_t type;
    void *ptr;     /**< AURAIO_BUF_UNREGISTERED: the memory */
    int index;     /**< AURAIO_BUF_REGISTERED: index into the registered buffer table */
    size_t offset; /**< AURAIO_BUF_REGISTERED: byte offset inside that buffer */
} auraio_buf_t;

/** How a submission picks a ring. */
typedef enum {
    AURAIO_SELECT_ADAPTIVE = 0,     /**< local CPU's ring; spill to the lighter of two others when it is full at its largest limit */
    AURAIO_SELECT_CPU_LOCAL = 1,    /**< always the ring of the CPU the thread runs on */
    AURAIO_SELECT_ROUND_ROBIN = 2,  /**< rotate over all rings */
    AURAIO_SELECT_THREAD_LOCAL = 3, /**< a ring per submitting thread, assigned on first use */
} auraio_ring_select_t;

/**
 * Engine options. Always initialise with auraio_options_init(), then change fields.
 * Fields set to 0 mean "the library chooses".
 */
typedef struct {
    size_t struct_size;             /**< set by auraio_options_init; do not change */
    int ring_count;                 /**< rings to create; 0 = one per online CPU */
    int queue_depth;                /**< SQ entries and request slots per ring; 0 = 256 */
    int initial_in_flight;          /**< starting in-flight limit per ring; 0 = automatic */
    int max_in_flight;              /**< upper bound for the limit; 0 = queue_depth */
    double max_p99_latency_ms;      /**< P99 target for the controller; 0 = none (find the knee) */
    auraio_ring_select_t ring_select; /**< default AURAIO_SELECT_ADAPTIVE */
    bool disable_adaptive;          /**< true: the limit stays at initial_in_flight */
    bool single_issuer;             /**< true: one thread creates, submits and polls (enables
                                         SINGLE_ISSUER/DEFER_TASKRUN when the kernel has them) */
    bool enable_sqpoll;             /**< true: kernel SQ polling thread (costly on few CPUs) */
    int sqpoll_idle_ms;             /**< SQPOLL idle time before the thread sleeps; 0 = 1000 */
    unsigned char reserved[64];     /**< must be zero */
} auraio_options_t;

/** Engine-wide statistics (a snapshot; fields are independent relaxed reads). */
typedef struct {
    uint64_t ops_completed;       /**< completions (callbacks), errors included; see auraio_metrics_t */
    uint64_t bytes_transferred;   /**< bytes reported by completed reads and writes */
    uint64_t submissions_at_limit; /**< submissions that found their ring at its in-flight limit */
    uint64_t adaptive_spills;     /**< ADAPTIVE submissions sent to a non-local ring */
    int pending_count;            /**< requests submitted and not yet completed (all rings) */
    int in_flight_limit;          /**< the engine's total in-flight limit: the controller's depth
                                       (each ring's limit is its share; one without demand keeps 1) */
    double throughput_bps;        /**< recent throughput, bytes per second (0 before the first window) */
    double p99_latency_ms;        /**< the highest ring P99 of the last window; 0 without samples */
    unsigned char reserved[64];
} auraio_stats_t;

/** Per-ring statistics. */
typedef struct {
    uint64_t ops_completed;
    uint64_t bytes_transferred;
    uint64_t submissions_at_limit;
    int pending_count;     /**< in the kernel or waiting in the ring's backlog */
    int in_flight_limit;   /**< current limit set by the controller */
    int batch_threshold;   /**< SQEs queued before the library enters the kernel on its own */
    int queue_depth;       /**< the ring's size */
    int phase;             /**< controller phase; name with auraio_phase_name() */
    bool target_infeasible; /**< the P99 target cannot be met even at the minimum depth */
    double p99_latency_ms; /**< P99 of the last controller window; 0 without samples */
    double p50_latency_ms;
    double throughput_bps;
    unsigned char reserved[64];
} auraio_ring_stats_t;

/**
 * Latency histogram of one ring (the last complete window). Bucket i counts completions whose
 * latency is in [bucket_lower_ns(i), bucket_lower_ns(i+1)); the bounds come from
 * auraio_histogram_bucket_lower_ns().
 */
#define AURAIO_HISTOGRAM_BUCKETS 512
typedef struct {
    uint32_t bucket_count;
    uint64_t total_count;
    uint64_t overflow_count; /**< latencies beyond the last bucket */
    uint64_t buckets[AURAIO_HISTOGRAM_BUCKETS];
} auraio_histogram_t;

/** Buffer pool statistics. */
typedef struct {
    uint64_t total_allocated_bytes; /**< bytes handed out and not yet freed */
    uint64_t total_buffers;         /**< buffers handed out and not yet freed */
    uint64_t cached_bytes;          /**< bytes kept in shards and thread caches for reuse */
    uint64_t cached_buffers;
    int shard_count;
    unsigned char reserved[32];
} auraio_buffer_stats_t;

/* ---------------------------------------------------------------------------------------------
 * Version
 */

/** @return the library's version string, e.g. "0.1.0" (static storage). Thread-safe. */
AURAIO_API const char *auraio_version(void);
/** @return the library's version as MAJOR * 10000 + MINOR * 100 + PATCH. Thread-safe. */
AURAIO_API int auraio_version_int(void);

/* ---------------------------------------------------------------------------------------------
 * Lifecycle
 */

/**
 * Fill @p options with defaults (and its struct_size). Does nothing if @p options is NULL.
 */
AURAIO_API void auraio_options_init(auraio_options_t *options);

/**
 * Create an engine with default options.
 * @return the engine, or NULL with errno set: ENOSYS/EPERM (io_uring unavailable), ENOMEM, and the
 *         errors of auraio_create_with_options.
 */
AURAIO_API auraio_engine_t *auraio_create(void);

/**
 * Create an engine.
 * @param options from auraio_options_init, possibly changed; copied, the caller keeps ownership.
 * @return the engine, or NULL with errno set: EINVAL (NULL options, wrong struct_size, non-zero
 *         reserved bytes, ring_count < 0 or > 4096, queue_depth < 0 or > 32768, in-flight values
 *         out of range, negative P99 target, unknown ring_select), ENOSYS/EPERM, ENOMEM, EMFILE.
 */
AURAIO_API auraio_engine_t *auraio_create_with_options(const auraio_options_t *options);

/**
 * Destroy an engine. I/O still in flight is cancelled; every outstanding callback runs exactly once
 * on the calling thread (with -ECANCELED where the cancel took effect) before the memory is freed.
 * Blocks until the kernel has returned every request, however long that takes: a request the
 * kernel cannot cancel (one blocked in a driver) keeps destroy waiting, with the cancel asked again
 * each second, because freeing earlier would let the kernel write buffers the application was told
 * it may free. Accepts NULL.
 *
 * Exclusive: every other call on this engine, on any thread, must have returned before destroy is
 * called, and none may be made after it (the engine's memory is freed). It must not be called from
 * a callback. The only calls allowed during destroy are those made by the callbacks it runs:
 * submissions there fail with ESHUTDOWN, auraio_cancel returns -ESHUTDOWN. Debug builds (NDEBUG
 * not defined) check the rule and abort on a call that overlaps destroy, rather than let it use
 * freed memory; release builds do not check.
 */
AURAIO_API void auraio_destroy(auraio_engine_t *engine);

/* ---------------------------------------------------------------------------------------------
 * Submission. Thread-safe: any number of threads may submit concurrently. Never blocks, never runs
 * callbacks. The buffer (and iovec array) must stay valid until the callback runs.
 *
 * Backpressure: each ring has an in-flight limit. A request beyond it is accepted and kept in the
 * ring's backlog (in submission order), and enters the kernel as completions free room; it is
 * never dropped. Every ring has queue_depth request slots in total (in flight + backlog); when they
 * are all taken the submit call fails with EAGAIN and nothing is queued. Call auraio_poll/wait to
 * free slots. auraio_capacity() tells how many submissions would go to the kernel right away, so a
 * latency-sensitive caller can keep its own queue instead of building one inside the library.
 *
 * When a request reaches the kernel (unless it waits in the backlog): before the submit call
 * returns, except in two cases that batch to save a system call per I/O. A submission made from a
 * callback is entered when the thread running that callback finishes its current batch of
 * callbacks (at most 64), or earlier if half the ring's submission queue is waiting. On a single_issuer engine, a
 * submission to a busy ring is entered when the threshold fills or at that thread's next
 * poll/wait/run/flush. So no request ever waits for another thread: not for one asleep in
 * auraio_wait, nor for one running a slow callback. A refusal of the kernel to take the request is not a submit error: it
 * is retried (EAGAIN, EBUSY, ENOMEM: for up to one second) or delivered to the callback as -errno.
 *
 * Errors (NULL returned, errno set): EINVAL (NULL engine or callback, len 0 or > INT_MAX,
 * negative offset, bad buffer descriptor, iovcnt 0 or > IOV_MAX, unknown flags), EBADF (negative
 * fd), EAGAIN (ring's request slots exhausted), ESHUTDOWN (engine being destroyed), EOPNOTSUPP
 * (the kernel lacks the opcode), ENOENT (registered buffer index not registered), ERANGE
 * (offset + len beyond the registered buffer).
 */

/** Read @p len bytes at @p offset of @p fd into @p buf. */
AURAIO_API auraio_request_t *auraio_read(auraio_engine_t *engine, int fd, auraio_buf_t buf, size_t len,
                                         int64_t offset, auraio_callback_t callback, void *user_data);
/** Write @p len bytes from @p buf at @p offset of @p fd. */
AURAIO_API auraio_request_t *auraio_write(auraio_engine_t *engine, int fd, auraio_buf_t buf, size_t len,
                                          int64_t offset, auraio_callback_t callback, void *user_data);
/** Vectored read; @p iov (not only the buffers) must stay valid until the callback. */
AURAIO_API auraio_request_t *auraio_readv(auraio_engine_t *engine, int fd, const struct iovec *iov, int iovcnt,
                                          int64_t offset, auraio_callback_t callback, void *user_data);
/** Vectored write; @p iov (not only the buffers) must stay valid until the callback. */
AURAIO_API auraio_request_t *auraio_writev(auraio_engine_t *engine, int fd, const struct iovec *iov, int iovcnt,
                                           int64_t offset, auraio_callback_t callback, void *user_data);

/**
 * Submission flag: @p fd is an index into the table registered with auraio_register_files, not a
 * file descriptor. Accepted by the *_ex calls and auraio_fsync. An index beyond the table fails
 * with EBADF, and with ENOENT when no files are registered, before anything reaches the kernel.
 */
#define AURAIO_FIXED_FILE (1u << 8)

/**
 * auraio_read and friends with submission flags: AURAIO_FIXED_FILE, and AURAIO_LINK or
 * AURAIO_HARDLINK (see "Linked chains"); others: EINVAL. With a link flag, also EBUSY and E2BIG.
 */
AURAIO_API auraio_request_t *auraio_read_ex(auraio_engine_t *engine, int fd, auraio_buf_t buf, size_t len,
                                            int64_t offset, unsigned flags, auraio_callback_t callback,
                                            void *user_data);
AURAIO_API auraio_request_t *auraio_write_ex(auraio_engine_t *engine, int fd, auraio_buf_t buf, size_t len,
                                             int64_t offset, unsigned flags, auraio_callback_t callback,
                                             void *user_data);
AURAIO_API auraio_request_t *auraio_readv_ex(auraio_engine_t *engine, int fd, const struct iovec *iov,
                                             int iovcnt, int64_t offset, unsigned flags,
                                             auraio_callback_t callback, void *user_data);
AURAIO_API auraio_request_t *auraio_writev_ex(auraio_engine_t *engine, int fd, const struct iovec *iov,
                                              int iovcnt, int64_t offset, unsigned flags,
                                              auraio_callback_t callback, void *user_data);

/** auraio_fsync flags (may be combined with AURAIO_FIXED_FILE). */
#define AURAIO_FSYNC_DEFAULT 0u
#define AURAIO_FSYNC_DATASYNC 1u /**< fdatasync semantics */

/** Flush @p fd to stable storage; @p flags: AURAIO_FSYNC_DATASYNC, AURAIO_FIXED_FILE, AURAIO_LINK or
 * AURAIO_HARDLINK. A failed fsync breaks its chain (the library enforces it; see "Linked chains"). */
AURAIO_API auraio_request_t *auraio_fsync(auraio_engine_t *engine, int fd, unsigned flags,
                                          auraio_callback_t callback, void *user_data);

/** A descriptor for plain memory. */
AURAIO_API auraio_buf_t auraio_buf(void *ptr);
/**
 * A descriptor for a registered buffer (see auraio_register_buffers): the I/O uses bytes
 * [offset, offset + len) of registered buffer @p index and becomes READ_FIXED/WRITE_FIXED.
 * An unregistered index fails with ENOENT, a range past the buffer's end with ERANGE. Only
 * auraio_read/auraio_write (and their _ex forms) take registered buffers.
 */
AURAIO_API auraio_buf_t auraio_buf_fixed(int index, size_t offset);

/**
 * Ask for a request to be cancelled. Thread-safe, never blocks, never runs callbacks.
 * The callback still runs exactly once: with -ECANCELED if the cancel took effect, otherwise with
 * the operation's own result (a read of a regular file that already reached the device usually
 * completes normally).
 * @return 0 when the cancel was issued (or the request was removed from the backlog),
 *         -EALREADY when the request already completed, its callback is running, or the handle is
 *         stale (its slot was reused), -EINPROGRESS when a cancel was already issued for it and
 *         has not come back yet, -EAGAIN when there is no room for a cancel right now (the SQ is
 *         full even after a flush, or every slot already has a cancel in flight): poll and retry,
 *         a -errno of the kernel refusing the cancel (it was not issued; see auraio_flush),
 *         -EINVAL for a NULL engine or a handle that was never issued by this engine,
 *         -ESHUTDOWN from a callback run by auraio_destroy.
 */
AURAIO_API int auraio_cancel(auraio_engine_t *engine, auraio_request_t *req);

/**
 * @return 1 if @p req is submitted and its callback has not started, 0 if it completed (or the
 *         handle is stale), -EINVAL for a NULL engine or a foreign handle.
 */
AURAIO_API int auraio_request_pending(auraio_engine_t *engine, const auraio_request_t *req);

/* ---------------------------------------------------------------------------------------------
 * Linked chains. AURAIO_LINK in a submit call's flags says that the NEXT request this thread
 * submits to this engine depends on this one: it starts only after this one completed
 * successfully, and if this one fails (a negative result; for a read or write also a short
 * transfer, the kernel's rule) every later member of the chain completes with -ECANCELED.
 * AURAIO_HARDLINK links the same way, but a failure does not break the chain. The first request
 * without a link flag ends the chain. The kernel itself stops a chain only after a failed read,
 * write, openat or close; after the other ops (fsync, statx, fallocate...) it runs on, so the
 * library ends the kernel's chain after such an op and submits the rest itself once the op
 * succeeded (one more trip through the kernel), or fails the rest with -ECANCELED: a failed
 * fsync never lets the commit record chained behind it be written.
 *
 * The link is part of the request: the members are held by the library (not entered, not counted
 * by auraio_pending_count, not waited for by auraio_wait) until the chain is ended, and then the
 * chain is admitted whole: all of its SQEs go into one submission, so neither the backlog nor
 * the batch threshold can split it. Against the in-flight limit a chain counts as its length and
 * never straddles the limit: it enters when the ring has room for all of it (or, if it is longer
 * than the limit, when the ring has nothing in flight), otherwise it waits in the backlog as one
 * entry, in submission order. Every member's callback runs exactly once, each with its own result;
 * a member cut off by an earlier failure gets -ECANCELED.
 *
 * Rules: a chain is built by one thread, on one engine, and goes to one ring (the one picked for
 * its first member). Every submit call takes the link flags; auraio_read/write/readv/writev
 * (without flags) end a chain, auraio_timeout never joins one. While a thread has a chain open
 * on one engine, a linked submission to another engine fails with EBUSY. A chain that would
 * take every request slot of its ring (nothing else could then complete to make room), or need
 * more SQEs than the ring has (a member with a deadline takes two), is abandoned: the submit fails with E2BIG and the members already
 * submitted complete with -ECANCELED. A submit that fails otherwise (EAGAIN, EINVAL...) leaves
 * the chain open, so it may be retried. auraio_cancel on a member still held, or still in the
 * backlog, cancels the whole chain (all members -ECANCELED); on a member the library parked
 * behind an op it continues after (see above) it fails that member and the rest when the op
 * completes; on a member in the kernel it cancels that member (the later ones then get
 * -ECANCELED), but the kernel cannot find a member still waiting in the kernel for its
 * predecessor: cancel the running one. auraio_destroy completes the members of a chain left open
 * with -ECANCELED.
 */
#define AURAIO_LINK (1u << 9)      /**< the next request of this thread depends on this one */
#define AURAIO_HARDLINK (1u << 10) /**< as AURAIO_LINK, but a failure does not break the chain */

/* ---------------------------------------------------------------------------------------------
 * Deadlines and timers.
 */

/**
 * Give the next request this thread submits to @p engine (any op but auraio_timeout, including a
 * chain member) a deadline of @p timeout_ns nanoseconds from the moment the kernel starts it (for
 * a chain member: when its predecessor completed). If the deadline passes first the kernel
 * cancels the op and its callback runs once with -ETIME; an op the kernel could not interrupt
 * in time may still complete with its own result. The deadline (an IORING_OP_LINK_TIMEOUT) has a
 * CQE of its own that is never delivered: the request's slot stays taken, and it counts in
 * auraio_pending_count, until both CQEs are back, so nothing is left behind when the callback has
 * run. The setting is used up by the next accepted submission (a refused one leaves it armed);
 * 0 disarms it. A request with a deadline takes two SQEs and may produce two CQEs. A data op cut
 * short by its deadline is not a latency sample for the controller.
 * @return 0, or -EINVAL (NULL engine). Submissions then fail with EOPNOTSUPP where the kernel
 *         lacks IORING_OP_LINK_TIMEOUT (before 5.5).
 */
AURAIO_API int auraio_set_next_timeout(auraio_engine_t *engine, uint64_t timeout_ns);

/**
 * A timer: @p callback runs once, with 0 when @p timeout_ns nanoseconds have passed (measured from
 * when the kernel takes the request), or -ECANCELED when it was cancelled (auraio_cancel,
 * auraio_destroy). A timer is not I/O: it takes a request slot and counts in auraio_pending_count
 * (so auraio_wait waits for it), but never waits for the in-flight limit, is not counted by the
 * statistics and never joins a chain. Thread-safe, like every submit call.
 * @return the handle, or NULL with errno: EINVAL (NULL engine or callback), EAGAIN (no free slot,
 *         or no room in the SQ even after a flush), ESHUTDOWN, EOPNOTSUPP.
 */
AURAIO_API auraio_request_t *auraio_timeout(auraio_engine_t *engine, uint64_t timeout_ns, auraio_callback_t callback,
                                            void *user_data);

/**
 * Cancel every request on file descriptor @p fd, on every ring: those in the kernel
 * (IORING_REGISTER_SYNC_CANCEL with IORING_ASYNC_CANCEL_FD | _ALL on 6.0+ kernels, one
 * ASYNC_CANCEL per request found by a walk of the slots before that), those waiting in a backlog
 * (with the rest of their chain) and members of chains still open (the chain fails when ended).
 * Use it before closing a file that still has I/O outstanding. A request "on fd" is one whose
 * file is @p fd: not an openat/statx whose directory it is, nor AURAIO_FIXED_FILE requests (the
 * kernel matches by open file, so a fixed-file request on the same open file is cancelled too,
 * but not counted unless the kernel counts it). A member of a chain in the kernel that has not
 * started yet is not found by the kernel; it gets -ECANCELED when the member before it is
 * cancelled. Each cancelled request's callback runs once, with -ECANCELED (or its own result if
 * it finished first). Thread-safe, never blocks, never runs callbacks.
 * @return how many requests were cancelled (0 when none), -EINVAL (NULL engine), -EBADF
 *         (negative fd), -ESHUTDOWN (from a callback run by auraio_destroy), or the kernel's
 *         -errno when a ring refused the cancel.
 */
AURAIO_API int auraio_cancel_fd(auraio_engine_t *engine, int fd);

/* ---------------------------------------------------------------------------------------------
 * Metadata and space operations. Submission rules, threads, backpressure and the callback
 * contract are those of auraio_read (see "Submission" above); every call takes AURAIO_LINK or
 * AURAIO_HARDLINK in @p flags, and the ones that work on an open file take AURAIO_FIXED_FILE. The
 * callback's result is the kernel's: 0 or the value named below, or -errno. Paths are NOT copied:
 * @p path (and a statx buffer) must stay valid until the callback runs, because the kernel reads
 * the path only when it takes the SQE, which may be later (backlog, chain, batch).
 *
 * These ops count as operations in the statistics but are never latency samples for the depth
 * controller (they say nothing about the device's depth curve); they do count against the
 * in-flight limit, as fsync does.
 *
 * Errors of every call here (NULL, errno set), besides the ones listed with each: EINVAL (NULL
 * engine or callback, unknown flags, AURAIO_LINK with AURAIO_HARDLINK), EBADF (negative fd),
 * EAGAIN, ESHUTDOWN, EBUSY, E2BIG (chains), EOPNOTSUPP (the kernel lacks the opcode: it is
 * probed, and never emulated with a blocking call), ENOENT/EBADF (AURAIO_FIXED_FILE index with
 * no files registered / beyond the table).
 */

/**
 * openat(2): the callback's result is the new file descriptor (>= 0). @p dirfd is a directory fd
 * or AT_FDCWD (-100), @p open_flags anything open(2) takes (O_DIRECT, O_CREAT with @p mode...).
 * Errors: EINVAL also for a NULL path or a mode above 07777; EBADF for a dirfd below 0 other
 * than AT_FDCWD. The new fd belongs to the caller (close it with close(2) or auraio_close).
 */
AURAIO_API auraio_request_t *auraio_openat(auraio_engine_t *engine, int dirfd, const char *path, int open_flags,
                                           mode_t mode, unsigned flags, auraio_callback_t callback, void *user_data);

/**
 * openat(2) straight into slot @p file_index of the registered file table (5.15+): no file
 * descriptor is created; the result is 0, and the file is used with AURAIO_FIXED_FILE and index
 * @p file_index. The table is per ring in the kernel, so this needs an engine with one ring
 * (ring_count = 1), or the other rings would not see the file. O_CLOEXEC is refused by the
 * kernel (-EINVAL in the callback). A slot already holding a file is replaced.
 * Errors: those of auraio_openat, and EINVAL (file_index < 0, more than one ring), ENOENT (no
 * files registered), EBADF (file_index beyond the table).
 */
AURAIO_API auraio_request_t *auraio_openat_direct(auraio_engine_t *engine, int dirfd, const char *path,
                                                  int open_flags, mode_t mode, int file_index, unsigned flags,
                                                  auraio_callback_t callback, void *user_data);

/**
 * close(2) of @p fd, or with AURAIO_FIXED_FILE, emptying slot @p fd of the registered file
 * table (5.15+) on the ring the request goes to: use it on a one-ring engine (see
 * auraio_openat_direct), or auraio_update_file(index, -1) for all rings. Requests already in the
 * kernel keep their file. Result 0.
 */
AURAIO_API auraio_request_t *auraio_close(auraio_engine_t *engine, int fd, unsigned flags, auraio_callback_t callback,
                                          void *user_data);

struct statx;
/**
 * statx(2) of @p path relative to @p dirfd (AT_FDCWD, or with AT_EMPTY_PATH in @p statx_flags
 * and path "", the file @p dirfd itself) into @p statxbuf, asking for the fields in @p mask
 * (STATX_*). Result 0; @p statxbuf is filled when the callback runs. Errors: EINVAL also for a
 * NULL path or statxbuf; EBADF for a dirfd below 0 other than AT_FDCWD.
 */
AURAIO_API auraio_request_t *auraio_statx(auraio_engine_t *engine, int dirfd, const char *path, int statx_flags,
                                          unsigned mask, struct statx *statxbuf, unsigned flags,
                                          auraio_callback_t callback, void *user_data);

/**
 * fallocate(2): @p mode (0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE...)
 * over [@p offset, @p offset + @p len). Result 0. Errors: EINVAL also for a negative offset or a
 * length <= 0.
 */
AURAIO_API auraio_request_t *auraio_fallocate(auraio_engine_t *engine, int fd, int mode, int64_t offset, int64_t len,
                                              unsigned flags, auraio_callback_t callback, void *user_data);

/**
 * ftruncate(2) to @p length (IORING_OP_FTRUNCATE, 6.9+; EOPNOTSUPP on older kernels, never a
 * blocking fallback). Result 0. Errors: EINVAL also for a negative length.
 */
AURAIO_API auraio_request_t *auraio_ftruncate(auraio_engine_t *engine, int fd, int64_t length, unsigned flags,
                                              auraio_callback_t callback, void *user_data);

/**
 * sync_file_range(2) over [@p offset, @p offset + @p nbytes) (nbytes 0: to the end of the file)
 * with @p sync_flags (SYNC_FILE_RANGE_WAIT_BEFORE | _WRITE | _WAIT_AFTER). Result 0. Errors:
 * EINVAL also for a negative offset or other flag bits.
 */
AURAIO_API auraio_request_t *auraio_sync_file_range(auraio_engine_t *engine, int fd, int64_t offset, uint32_t nbytes,
                                                    unsigned sync_flags, unsigned flags, auraio_callback_t callback,
                                                    void *user_data);

/**
 * posix_fadvise(2): @p advice (POSIX_FADV_NORMAL .. POSIX_FADV_NOREUSE) over [@p offset,
 * @p offset + @p len), len 0 meaning to the end of the file. Result 0. Errors: EINVAL also for a
 * negative offset, a length < 0 or above 4 GiB - 1 (the SQE field is 32 bits), advice outside 0..5.
 */
AURAIO_API auraio_request_t *auraio_fadvise(auraio_engine_t *engine, int fd, int64_t offset, int64_t len, int advice,
                                            unsigned flags, auraio_callback_t callback, void *user_data);

/**
 * madvise(2) on [@p addr, @p addr + @p len) of this process: @p advice is MADV_*. The range is the
 * caller's and must stay mapped until the callback. Result 0. Errors: EINVAL also for a NULL addr,
 * a length of 0 or above 4 GiB - 1, or AURAIO_FIXED_FILE (there is no file).
 */
AURAIO_API auraio_request_t *auraio_madvise(auraio_engine_t *engine, void *addr, size_t len, int advice,
                                            unsigned flags, auraio_callback_t callback, void *user_data);

/* ---------------------------------------------------------------------------------------------
 * Event loop. poll/wait/run may be called from any thread, several at once: each completion is
 * delivered once, by the thread that reaped it. A wait returns as soon as nothing is pending, even
 * when another thread reaped the last completion; a run returns on a stop, whatever the other
 * threads poll. Of several waiters one sleeps in the kernel and the others wait for it to wake, so
 * a completion wakes one of them and any of them may deliver it. They run callbacks on the calling
 * thread and are not reentrant: from inside a callback they return -EDEADLK.
 */

/**
 * Submit queued work and run the callbacks of completed requests, without blocking.
 * @return the number of callbacks run, -EINVAL (NULL engine), -EDEADLK (called from a callback),
 *         or a fatal -errno from the kernel when nothing could be delivered.
 */
AURAIO_API int auraio_poll(auraio_engine_t *engine);

/**
 * Like auraio_poll, but block up to @p timeout_ms (-1: no limit, 0: do not block) until at least
 * one callback ran. Returns at once when nothing is pending. An auraio_stop (issued before or
 * during the call) that no other wait or run has taken ends the call and is used up by it.
 * @return the number of callbacks run (> 0); 0 if nothing was pending or a stop was taken;
 *         -ETIME if the timeout expired with I/O still pending; -EINVAL (NULL engine or
 *         timeout_ms < -1); -EDEADLK (called from a callback); a fatal -errno of the sleep itself
 *         (poll() or io_uring_enter failing with other than EINTR, which is retried).
 */
AURAIO_API int auraio_wait(auraio_engine_t *engine, int timeout_ms);

/**
 * Run the event loop until auraio_stop is called (also when nothing is pending). Stops are
 * counted, never lost: a stop issued before run starts makes it return after one non-blocking
 * pass. Each stop ends exactly one wait or run. Pending I/O stays pending after run returns.
 * @return 0 after a stop; -EINVAL, -EDEADLK, or a fatal -errno of the sleep (as auraio_wait).
 *         Errors of submissions go to the callbacks of the requests they affect, never here.
 */
AURAIO_API int auraio_run(auraio_engine_t *engine);

/** Request that one auraio_run or auraio_wait return (waking it if it blocks). Thread-safe. @return 0 or -EINVAL. */
AURAIO_API int auraio_stop(auraio_engine_t *engine);

/**
 * Hand every queued submission to the kernel now. Thread-safe, never runs callbacks.
 * @return the number of SQEs submitted, or -EINVAL, or the kernel's refusal as -errno: -EAGAIN,
 *         -EBUSY, -ENOMEM leave the submissions queued and they are retried (by every poll and
 *         flush, and each millisecond by a waiter) for up to one second, after which their
 *         requests complete with that error; any other refusal completes them with it at once.
 *         Either way their callbacks run and say so.
 */
AURAIO_API int auraio_flush(auraio_engine_t *engine);

/**
 * A file descriptor (an eventfd) that becomes readable when completions are ready, for embedding in
 * epoll/poll loops. Call auraio_poll when it is readable. Owned by the engine.
 * @return the fd, or -EINVAL.
 */
AURAIO_API int auraio_get_poll_fd(const auraio_engine_t *engine);

/** @return requests submitted and not yet completed, over all rings, or -EINVAL. Thread-safe.
 * Members of a chain still open (its last request not submitted) are not counted yet; timers are. */
AURAIO_API int auraio_pending_count(const auraio_engine_t *engine);

/**
 * How many more requests may be submitted right now within the engine's in-flight limit
 * (auraio_stats_t.in_flight_limit: the controller's depth, or the sum of the fixed limits) minus
 * everything pending, never negative. Submitting that many keeps the kernel at the depth the
 * controller chose; while the split between rings follows a shift in demand, a few may wait in a
 * ring's backlog. A cheap relaxed read, thread-safe; a
 * concurrent submitter may use the room first.
 * @return the count, or -EINVAL.
 */
AURAIO_API int auraio_capacity(const auraio_engine_t *engine);

/* ---------------------------------------------------------------------------------------------
 * Observability and control
 */

/** @return the number of rings, or -EINVAL. */
AURAIO_API int auraio_get_ring_count(const auraio_engine_t *engine);
/** Fill @p stats. @return 0, or -EINVAL for NULL arguments. */
AURAIO_API int auraio_get_stats(const auraio_engine_t *engine, auraio_stats_t *stats);
/** Fill @p stats for ring @p ring_index. @return 0, -EINVAL (NULL), -ERANGE (bad index). */
AURAIO_API int auraio_get_ring_stats(const auraio_engine_t *engine, int ring_index, auraio_ring_stats_t *stats);
/** Copy ring @p ring_index's last-window latency histogram. @return 0, -EINVAL, -ERANGE. */
AURAIO_API int auraio_get_histogram(const auraio_engine_t *engine, int ring_index, auraio_histogram_t *hist);
/** @return the lower bound in ns of histogram bucket @p bucket, or 0 when out of range. */
AURAIO_API uint64_t auraio_histogram_bucket_lower_ns(int bucket);
/** @return the name of a controller phase (static storage), "UNKNOWN" for other values. */
AURAIO_API const char *auraio_phase_name(int phase);
/**
 * Change the P99 target at run time (0 removes it: the controller seeks the knee).
 * @return 0, or -EINVAL (NULL engine, negative or non-finite target).
 */
AURAIO_API int auraio_set_max_p99_latency(auraio_engine_t *engine, double max_p99_latency_ms);

/* ---------------------------------------------------------------------------------------------
 * Per-device control (doc/controller.md, "Devices"). The controller keeps one group per device the
 * engine's I/O lands on (a block device, or the filesystem a file lives on), found from each fd's
 * first use; pipes, sockets and metadata ops belong to none. Each device has its own depth, its own
 * P99 target if wanted, and a model of what the device is.
 */

/** One device as the controller sees it (a snapshot). */
typedef struct {
    uint64_t device_id;        /**< st_rdev of a block device, st_dev of a file's filesystem */
    unsigned int major, minor; /**< the same, split */
    int depth;                 /**< the device's in-flight limit (its group's depth, all rings) */
    int phase;                 /**< controller phase; name with auraio_phase_name() */
    bool target_infeasible;    /**< this device's P99 target cannot be met even at the minimum depth */
    double target_p99_ms;      /**< this device's P99 target; 0 = none (it holds the knee) */
    double p50_latency_ms;     /**< last stats window, the worst ring's; 0 without samples */
    double p99_latency_ms;
    double throughput_bps;     /**< last stats window, all rings */
    /* The device model: what the controller has learned. Zeros until its first search ends. */
    double base_latency_ms;    /**< the lowest mean latency measured: the unloaded service time */
    double ceiling_bps;        /**< the throughput ceiling (plateau of the last search), bytes/s */
    double ceiling_iops;       /**< the same in operations per second */
    int knee_depth;            /**< the smallest depth within 5% of the ceiling */
    double model_age_s;        /**< seconds since the model last changed; -1 before the first */
    int model_change;          /**< that change: -1 slower (ceiling down), +1 faster, 0 first seen */
    /* The device's requests now, and the wait the application added (doc/controller.md). */
    int in_flight;             /**< in the kernel, all rings */
    int backlog;               /**< submitted but held back by the device's depth, all rings */
    double backlog_wait_ms;    /**< mean time a request waited in that backlog before entering the
                                    kernel, over the last 250 ms; not in the P50/P99 above, which are
                                    the device's (from entering the kernel to completion) */
    /* Submissions off the thread (doc/controller.md, "Submissions off the thread"): what issuing
     * one of the device's requests costs the thread that enters the ring, measured on a sample of
     * its io_uring_enter calls, inline and handed to the kernel's io-wq workers (IOSQE_ASYNC). */
    unsigned int submit_switches;  /**< times the decision below changed */
    double submit_inline_us;       /**< inline cost per request, microseconds; 0 until measured */
    double submit_handoff_us;      /**< the hand-off's cost per request; 0 until measured (a device
                                        whose inline cost is below the floor is never probed) */
    bool submit_offloaded;         /**< its requests are handed to io-wq (IOSQE_ASYNC): the decision,
                                        which a probe of the other way interrupts for a moment */
    bool submit_completes_inline;  /**< its requests complete inside the enter that issues them (a
                                        RAM-backed device, cached data): their inline cost is the
                                        I/O itself, and they are never handed off */
    unsigned char reserved[22];
} auraio_device_stats_t;

/**
 * Fill up to @p max entries of @p stats, one per device the engine has seen, in the order seen.
 * @return the number of devices (may exceed @p max), 0 without the controller, or -EINVAL.
 */
AURAIO_API int auraio_get_device_stats(const auraio_engine_t *engine, auraio_device_stats_t *stats, int max);
/**
 * A P99 target for the device @p fd's I/O lands on, apart from the engine-wide one (which then no
 * longer changes it); 0 removes it (the device follows the engine-wide target again).
 * @return 0, -EINVAL (NULL engine, bad target), -EBADF (fd not open), -ENODEV (fd is not on a
 * storage device: a pipe, socket...), -EOPNOTSUPP (disable_adaptive).
 */
AURAIO_API int auraio_set_device_max_p99_latency(auraio_engine_t *engine, int fd, double max_p99_latency_ms);
/**
 * How many more requests for the device @p fd's I/O lands on its depth admits now, summed over the
 * rings (auraio_capacity's per-device form): what an application that keeps no backlog of its own
 * submits. Cheap (one lock per ring, no system call once @p fd's device is known).
 * @return >= 0, -EINVAL (NULL engine), -EBADF (fd not open), -ENODEV (fd is not on a storage
 * device), -EOPNOTSUPP (disable_adaptive).
 */
AURAIO_API int auraio_device_capacity(const auraio_engine_t *engine, int fd);
/**
 * One line describing @p stats's device model, for people: e.g. "device 253:0: knee 16, ceiling
 * 98.1k IOPS (402 MB/s), base latency 0.21 ms; ceiling dropped 10.2 s ago". snprintf's contract:
 * @return the length it needed (excluding the NUL), or -EINVAL.
 */
AURAIO_API int auraio_format_device_model(const auraio_device_stats_t *stats, char *buf, size_t len);

/* ---------------------------------------------------------------------------------------------
 * Lifetime metrics (doc/observability.md). Monotonic for the life of the engine: unlike the
 * windowed values above, nothing here is reset by the controller.
 */

/** Operation kinds of the lifetime counters. */
typedef enum {
    AURAIO_OP_KIND_READ = 0,  /**< read, readv, and their registered-buffer/fixed-file forms */
    AURAIO_OP_KIND_WRITE = 1, /**< write, writev, and their forms */
    AURAIO_OP_KIND_FSYNC = 2, /**< fsync and fdatasync */
    AURAIO_OP_KIND_OTHER = 3, /**< every other operation */
    AURAIO_OP_KIND_COUNT = 4
} auraio_op_kind_t;

/** Error classes of the lifetime error counters, by the callback's negative result. */
typedef enum {
    AURAIO_ERR_CLASS_CANCELED = 0, /**< -ECANCELED (auraio_cancel, destroy, a thread's exit) */
    AURAIO_ERR_CLASS_TIMEDOUT = 1, /**< -ETIME or -ETIMEDOUT */
    AURAIO_ERR_CLASS_OTHER = 2,    /**< any other -errno */
    AURAIO_ERR_CLASS_COUNT = 3
} auraio_err_class_t;

/** auraio_get_metrics: the sum over all rings instead of one ring. */
#define AURAIO_ALL_RINGS (-1)

/**
 * Lifetime metrics of one ring or of all rings. Counters count completions, i.e. callbacks run or
 * about to run, each once, whatever the result. The latency histogram holds the reads and writes
 * that went through the kernel (the samples the depth controller sees: submit to reap; fsync,
 * other ops, requests failed or cancelled before reaching the kernel and ops a deadline cut short
 * are counted in ops/errors, not here). Timers are not operations and are not counted.
 */
typedef struct {
    uint64_t ops[AURAIO_OP_KIND_COUNT];   /**< completions, errors included */
    uint64_t bytes[AURAIO_OP_KIND_COUNT]; /**< bytes transferred (positive results of reads and writes) */
    uint64_t errors[AURAIO_OP_KIND_COUNT][AURAIO_ERR_CLASS_COUNT]; /**< completions with result < 0 */
    uint64_t submissions_at_limit; /**< submissions that went to the backlog (the limit was reached) */
    uint64_t adaptive_spills;      /**< engine-wide (AURAIO_ALL_RINGS only; 0 for one ring) */
    uint64_t latency_count;        /**< samples in the histogram */
    uint64_t latency_sum_ns;       /**< exact sum of those samples' latencies */
    uint64_t latency_overflow;     /**< samples at or beyond the last bucket's upper bound (2^35 ns) */
    /** Samples per bucket (not cumulative); bounds from auraio_histogram_bucket_lower_ns(). */
    uint64_t latency_buckets[AURAIO_HISTOGRAM_BUCKETS];
    int backlog_length;    /**< now: requests accepted and waiting for room under the limit */
    int in_flight;         /**< now: requests in the kernel (or prepared for it) */
    int in_flight_limit;   /**< now: the controller's limit (summed over rings for all rings) */
    int queue_depth;       /**< request slots (summed over rings for all rings) */
    int phase;             /**< controller phase (auraio_phase_name) */
    bool target_infeasible; /**< the P99 target cannot be met even at the minimum depth */
    uint64_t p50_ns;       /**< P50 of the last controller window; 0 without samples (all: highest ring) */
    uint64_t p99_ns;       /**< P99 of the last controller window; 0 without samples (all: highest ring) */
    uint64_t target_p99_ns; /**< the P99 target; 0 when none */
    unsigned char reserved[64];
} auraio_metrics_t;

/**
 * Fill @p metrics for ring @p ring_index, or for all rings with AURAIO_ALL_RINGS. Thread-safe,
 * callable while I/O runs, from any thread, callbacks included; never runs callbacks. Takes the
 * controller's lock and each ring's lock in turn, briefly (a 4 KiB copy), so it costs the I/O
 * path nothing between calls. Every completion is in exactly one snapshot delta:
 * counters never decrease and no sample is lost or counted twice across the controller's windows.
 * @return 0, -EINVAL (NULL argument), -ERANGE (bad ring index).
 */
AURAIO_API int auraio_get_metrics(const auraio_engine_t *engine, int ring_index, auraio_metrics_t *metrics);

/**
 * Render the engine's metrics in the Prometheus text exposition format (version 0.0.4), the
 * families listed in doc/observability.md. Thread-safe, callable while I/O runs; allocates one
 * snapshot per ring for the duration of the call. Never runs callbacks.
 *
 * Size contract (as snprintf's): the return value is the document's length without the
 * terminating NUL. The document was written, NUL-terminated, exactly when the return is less than
 * @p len. Otherwise nothing but an empty string is written (never a truncated document) and the
 * caller retries with at least return + 1 bytes; counters keep moving, so a retry may need a few
 * bytes more than the first answer: loop, or add slack. @p buf may be NULL when @p len is 0.
 * @return the length (>= 0), or -EINVAL (NULL engine, NULL buf with len > 0), -ENOMEM,
 *         -EOVERFLOW (a document over INT_MAX bytes).
 */
AURAIO_API int auraio_metrics_prometheus(const auraio_engine_t *engine, char *buf, size_t len);
/**
 * The same metrics in the OpenMetrics 1.0.0 text format (counter families named without _total,
 * auraio_build as an info family, "# EOF" at the end), with the same size contract and errors.
 * The /metrics server serves it to clients that accept application/openmetrics-text.
 */
AURAIO_API int auraio_metrics_openmetrics(const auraio_engine_t *engine, char *buf, size_t len);

/** An embedded /metrics HTTP server (see auraio_metrics_server_start). */
typedef struct auraio_metrics_server auraio_metrics_server_t;

/**
 * Serve `GET /metrics` (auraio_metrics_prometheus's document) over HTTP on a thread of its own,
 * for Prometheus to scrape. Dependency-free and bounded: requests over 4 KiB get 431, anything
 * but GET/HEAD /metrics gets 400/404/405, every connection is closed after one answer or 5 s,
 * and at most 16 are open (a new one evicts the oldest). A scrape takes the engine's locks
 * briefly, like auraio_get_metrics; the I/O path never waits for the server. One server per
 * engine. auraio_destroy stops a server still running (the handle is then gone).
 * @param bind_address an IPv4 or IPv6 literal; NULL binds 127.0.0.1 (not reachable from other
 *        hosts: pass "0.0.0.0" or "::" deliberately to expose the metrics)
 * @param port TCP port; 0 picks a free one (see auraio_metrics_server_port)
 * @return the server, or NULL with errno: EINVAL (NULL engine, port outside 0..65535, address not
 *         an IP literal), EBUSY (the engine already has a server), ENOMEM, or the socket's error
 *         (EADDRINUSE, EACCES, EMFILE ...).
 */
AURAIO_API auraio_metrics_server_t *auraio_metrics_server_start(auraio_engine_t *engine, const char *bind_address,
                                                                int port);
/** @return the port the server listens on, or -EINVAL for NULL. */
AURAIO_API int auraio_metrics_server_port(const auraio_metrics_server_t *server);
/**
 * Stop the server: close its socket and every connection and join its thread (waits at most for
 * the scrape in progress). Not to be called after auraio_destroy of its engine (destroy already
 * stopped and freed it), nor twice (the first call frees it). NULL is a no-op. @return 0.
 */
AURAIO_API int auraio_metrics_server_stop(auraio_metrics_server_t *server);

/* ---------------------------------------------------------------------------------------------
 * Log hook. The library never writes to stderr or anywhere else on its own; what it has to say
 * (the fallbacks it took, the problems it worked around) goes to this handler, or nowhere.
 */

/** Log levels, in increasing severity. */
typedef enum {
    AURAIO_LOG_DEBUG = 0, /**< controller phase changes */
    AURAIO_LOG_INFO = 1,  /**< setup flags the kernel refused (the ring works without them) */
    AURAIO_LOG_WARN = 2,  /**< SQPOLL unavailable, a P99 target found infeasible, destroy waiting */
    AURAIO_LOG_ERROR = 3, /**< an eventfd could not be created, registered or unregistered */
} auraio_log_level_t;

/**
 * Log handler. @p message is a single line without a newline that starts with a stable event
 * name and a colon (doc/observability.md lists them: "phase_change:", "setup_flags_refused:",
 * "sqpoll_unavailable:", "eventfd_failed:", "destroy_waiting:", "target_infeasible:",
 * "metrics_server:"); it is valid
 * during the call only. Called on whichever thread hit the event (a polling thread for controller
 * events, the creating or destroying thread for the others), never with a library lock held, so
 * it may call into the library, but it should be quick: it delays that thread's I/O.
 */
typedef void (*auraio_log_fn)(int level, const char *message, void *user_data);

/**
 * Install @p handler (NULL: none) for messages at @p min_level and above, for every engine of the
 * process. Thread-safe; a message being logged on another thread during the call may still go to
 * the previous handler.
 * @return 0, or -EINVAL for a @p min_level outside AURAIO_LOG_DEBUG..AURAIO_LOG_ERROR.
 */
AURAIO_API int auraio_set_log_handler(auraio_log_fn handler, void *user_data, int min_level);

/* ---------------------------------------------------------------------------------------------
 * Buffers
 */

/**
 * Allocate a 4096-byte-aligned buffer (usable with O_DIRECT) of at least @p size bytes from the
 * engine's pool: power-of-two classes from 4 KiB to 128 MiB behind a per-thread cache, larger
 * sizes straight from the system. Thread-safe; any thread may free it. Buffers still allocated
 * when the engine is destroyed are freed with it. @return the buffer, or NULL with errno EINVAL
 * (NULL engine, size 0) or ENOMEM. See doc/buffers.md.
 */
AURAIO_API void *auraio_buffer_alloc(auraio_engine_t *engine, size_t size);
/**
 * Return a buffer to the pool. @p size must be the size given to auraio_buffer_alloc. NULL is a
 * no-op returning 0. Freeing a pointer the pool did not hand out, with a wrong size, or freeing
 * twice (when the two frees are ordered, as any correct program's are) is detected: the call
 * returns -EINVAL and changes nothing. @return 0 or -EINVAL.
 */
AURAIO_API int auraio_buffer_free(auraio_engine_t *engine, void *buf, size_t size);
/** Fill @p stats. @return 0 or -EINVAL. */
AURAIO_API int auraio_get_buffer_stats(const auraio_engine_t *engine, auraio_buffer_stats_t *stats);

/* ---------------------------------------------------------------------------------------------
 * Registered buffers and files. Registration applies to every ring; if one ring refuses, the rings
 * already done are rolled back and the call fails, so rings never disagree. Thread-safe.
 */

/**
 * Register @p count buffers (the array is copied; the memory it points to must stay valid until
 * unregistered or the engine is destroyed).
 * @return 0; -EINVAL (NULL engine or iovs, count <= 0 or > 16384, a NULL base, a length of 0 or
 *         over 1 GiB, the kernel's limit per buffer); -EBUSY (buffers already registered);
 *         -ENOMEM (e.g. RLIMIT_MEMLOCK on old kernels) or another kernel -errno; -EIO when a ring
 *         refused and a ring already registered could not be rolled back (the rings disagree).
 */
AURAIO_API int auraio_register_buffers(auraio_engine_t *engine, const struct iovec *iovs, int count);
/**
 * Register @p count file descriptors (-1 = an empty slot) for use with AURAIO_FIXED_FILE.
 * @return 0; -EINVAL (NULL, count <= 0 or > 1048576); -EBADF (an fd below -1 or not open);
 *         -EBUSY (files already registered); -EMFILE or another kernel -errno; -EIO as for
 *         auraio_register_buffers.
 */
AURAIO_API int auraio_register_files(auraio_engine_t *engine, const int *fds, int count);
/**
 * Replace registered file @p index with @p fd (-1 empties the slot), on every ring (rolled back on
 * failure). Requests already in flight keep the file they started with.
 * @return 0, -EINVAL (NULL engine), -ENOENT (no files registered), -ERANGE (bad index),
 *         -EBADF (fd below -1 or not open), or the kernel's -errno; -EIO when a ring could not be
 *         put back on the old file (the rings disagree).
 */
AURAIO_API int auraio_update_file(auraio_engine_t *engine, int index, int fd);

/** What auraio_unregister removes. */
typedef enum {
    AURAIO_REG_BUFFERS = 0,
    AURAIO_REG_FILES = 1,
} auraio_reg_type_t;

/**
 * Unregister buffers or files. Refused, not deferred, while I/O using the registration is in
 * flight: a request stops counting as in flight before its callback runs, so a callback may
 * unregister. auraio_destroy drains all I/O before the registrations go away.
 * @return 0, -EINVAL (NULL engine, unknown type), -ENOENT (nothing registered), -EBUSY (I/O using
 *         the registration is in flight; nothing changed), or the kernel's -errno when a ring
 *         refused: the library no longer uses the registration, but that ring keeps its kernel side.
 */
AURAIO_API int auraio_unregister(auraio_engine_t *engine, auraio_reg_type_t type);

#ifdef __cplusplus
}
#endif

#endif /* AURAIO_H */
