/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Public entry points: argument checks, errno for pointer-returning calls, and dispatch into the
 * engine. Internal code returns -errno; this is the only file that sets errno.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "auraio.h"

#include "api_ops.h"
#include "controller.h"
#include "engine.h"
#include "histogram.h"
#include "metrics.h"
#include "metrics_http.h"
#include "validate.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

AURAIO_API void auraio_options_init(auraio_options_t *options)
{
    if (options)
        auraio__options_defaults(options);
}

AURAIO_API auraio_engine_t *auraio_create(void)
{
    auraio_options_t o;
    auraio__options_defaults(&o);
    return auraio_create_with_options(&o);
}

AURAIO_API auraio_engine_t *auraio_create_with_options(const auraio_options_t *options)
{
    struct auraio_engine *e = NULL;
    int rc = options ? auraio__options_validate(options) : -EINVAL;
    if (rc == 0)
        rc = auraio__engine_create(options, &e);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    return e;
}

AURAIO_API void auraio_destroy(auraio_engine_t *engine)
{
    auraio__engine_destroy(engine);
}

AURAIO_API auraio_buf_t auraio_buf(void *ptr)
{
    auraio_buf_t b;
    memset(&b, 0, sizeof(b));
    b.type = AURAIO_BUF_UNREGISTERED;
    b.ptr = ptr;
    return b;
}

AURAIO_API auraio_buf_t auraio_buf_fixed(int index, size_t offset)
{
    auraio_buf_t b;
    memset(&b, 0, sizeof(b));
    b.type = AURAIO_BUF_REGISTERED;
    b.index = index;
    b.offset = offset;
    return b;
}

/* Returns @p call's result, run inside the debug build's count of calls in progress (destroy
 * must not overlap any; release builds count nothing). */
#define return_guarded(engine, call)                                                                                   \
    do {                                                                                                               \
        struct auraio_engine *guarded_engine = (struct auraio_engine *)(engine);                                       \
        auraio__engine_call_begin(guarded_engine);                                                                     \
        int guarded_rc = (call);                                                                                       \
        auraio__engine_call_end(guarded_engine);                                                                       \
        return guarded_rc;                                                                                             \
    } while (0)

static auraio_request_t *submit_or_errno(struct auraio_engine *e, struct request_args *a)
{
    uint64_t handle;
    auraio__engine_call_begin(e);
    int rc = auraio__engine_submit(e, a, &handle);
    auraio__engine_call_end(e);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    return (auraio_request_t *)(uintptr_t)handle;
}

/* The hot path's (request.h, struct request_plain): the same results as submit_or_errno (the
 * layers below set errno themselves and return 0 for NULL). */
static auraio_request_t *submit_plain_or_errno(struct auraio_engine *e, struct request_plain *p)
{
    auraio__engine_call_begin(e);
    uint64_t handle = auraio__engine_submit_plain(e, p);
    auraio__engine_call_end(e);
    return (auraio_request_t *)(uintptr_t)handle;
}

static int check_common(const auraio_engine_t *e, int fd, int64_t offset, auraio_callback_t cb)
{
    validate_or_return(e != NULL, -EINVAL);
    validate_or_return(cb != NULL, -EINVAL);
    validate_or_return(fd >= 0, -EBADF);
    validate_or_return(offset >= 0, -EINVAL);
    return 0;
}

static int check_rw(const auraio_engine_t *e, int fd, auraio_buf_t buf, size_t len, int64_t offset,
                    auraio_callback_t cb, struct request_args *a)
{
    int rc = check_common(e, fd, offset, cb);
    if (rc < 0)
        return rc;
    /* The kernel's rw length is 32-bit signed in practice (MAX_RW_COUNT is below INT_MAX). */
    validate_or_return(len > 0 && len <= INT_MAX, -EINVAL);
    switch (buf.type) {
    case AURAIO_BUF_UNREGISTERED:
        validate_or_return(buf.ptr != NULL, -EINVAL);
        a->addr = (uint64_t)(uintptr_t)buf.ptr;
        break;
    case AURAIO_BUF_REGISTERED:
        /* The ring resolves index and offset against what it has registered, under its lock. */
        validate_or_return(buf.index >= 0 && buf.index < UINT16_MAX, -ENOENT);
        a->fixed_buffer = 1;
        a->buf_index = (uint16_t)buf.index;
        a->addr = (uint64_t)buf.offset;
        break;
    default:
        return -EINVAL;
    }
    a->fd = fd;
    a->len = (uint32_t)len;
    a->offset = (uint64_t)offset;
    a->callback = cb;
    return 0;
}

/* submit_rw's general half: flags, registered buffers, and every refusal (check_rw's checks, so
 * the same errno for the same mistake). Out of line: the hot path's frame then holds no value
 * across a call and saves no register (callgrind, issue #11). */
static AURAIO_COLD auraio_request_t *submit_rw_general(auraio_engine_t *e, uint8_t op, int fd,
                                                       const auraio_buf_t *bufp, size_t len, int64_t offset,
                                                       unsigned flags, auraio_callback_t cb, void *ud)
{
    auraio_buf_t buf = *bufp;
    struct request_args a;
    request_args_clear(&a);
    a.op = op;
    a.user_data = ud;
    int rc = flags & ~(AURAIO_FIXED_FILE | AURAIO_LINK | AURAIO_HARDLINK) ? -EINVAL
                                                                           : check_rw(e, fd, buf, len, offset, cb, &a);
    if (rc == 0)
        rc = auraio__api_link_flag(flags, &a.link);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    a.fixed_file = (flags & AURAIO_FIXED_FILE) != 0;
    return submit_or_errno(e, &a);
}

/* No flags, plain memory and valid arguments: the hot path (no link, registered buffer or file).
 * Anything else, a mistake included, goes the general way, which tells the mistake. */
static inline bool rw_plain(const auraio_engine_t *e, int fd, const auraio_buf_t *buf, size_t len, int64_t offset,
                            unsigned flags, auraio_callback_t cb)
{
    return flags == 0 && buf->type == AURAIO_BUF_UNREGISTERED && e != NULL && cb != NULL && fd >= 0 && offset >= 0 &&
           len > 0 && len <= INT_MAX && buf->ptr != NULL;
}

static inline auraio_request_t *submit_rw_plain(auraio_engine_t *e, uint8_t op, int fd, void *ptr, size_t len,
                                                int64_t offset, auraio_callback_t cb, void *ud)
{
    struct request_plain p = {.callback = cb,
                              .user_data = ud,
                              .addr = (uint64_t)(uintptr_t)ptr,
                              .offset = (uint64_t)offset,
                              .len = (uint32_t)len,
                              .fd = fd,
                              .op = op,
                              .sqe_opcode = ring_plain_opcode(op)};
    return submit_plain_or_errno(e, &p);
}

/* Each public read/write leaves for the general path through a function of its own prototype:
 * a jump with the arguments where they are, so the hot path neither copies nor loads what only the
 * general path reads (a call there cost two saved registers and the buffer's other fields). */
static AURAIO_COLD auraio_request_t *read_general(auraio_engine_t *engine, int fd, auraio_buf_t buf, size_t len,
                                                  int64_t offset, auraio_callback_t callback, void *user_data)
{
    return submit_rw_general(engine, REQ_READ, fd, &buf, len, offset, 0, callback, user_data);
}

static AURAIO_COLD auraio_request_t *write_general(auraio_engine_t *engine, int fd, auraio_buf_t buf, size_t len,
                                                   int64_t offset, auraio_callback_t callback, void *user_data)
{
    return submit_rw_general(engine, REQ_WRITE, fd, &buf, len, offset, 0, callback, user_data);
}

static AURAIO_COLD auraio_request_t *read_ex_general(auraio_engine_t *engine, int fd, auraio_buf_t buf, size_t len,
                                                     int64_t offset, unsigned flags, auraio_callback_t callback,
                                                     void *user_data)
{
    return submit_rw_general(engine, REQ_READ, fd, &buf, len, offset, flags, callback, user_data);
}

static AURAIO_COLD auraio_request_t *write_ex_general(auraio_engine_t *engine, int fd, auraio_buf_t buf, size_t len,
                                                      int64_t offset, unsigned flags, auraio_callback_t callback,
                                                      void *user_data)
{
    return submit_rw_general(engine, REQ_WRITE, fd, &buf, len, offset, flags, callback, user_data);
}

AURAIO_API auraio_request_t *auraio_read(auraio_engine_t *engine, int fd, auraio_buf_t buf, size_t len, int64_t offset,
                                         auraio_callback_t callback, void *user_data)
{
    if (auraio_likely(rw_plain(engine, fd, &buf, len, offset, 0, callback)))
        return submit_rw_plain(engine, REQ_READ, fd, buf.ptr, len, offset, callback, user_data);
    return read_general(engine, fd, buf, len, offset, callback, user_data);
}

AURAIO_API auraio_request_t *auraio_write(auraio_engine_t *engine, int fd, auraio_buf_t buf, size_t len, int64_t offset,
                                          auraio_callback_t callback, void *user_data)
{
    if (auraio_likely(rw_plain(engine, fd, &buf, len, offset, 0, callback)))
        return submit_rw_plain(engine, REQ_WRITE, fd, buf.ptr, len, offset, callback, user_data);
    return write_general(engine, fd, buf, len, offset, callback, user_data);
}

AURAIO_API auraio_request_t *auraio_read_ex(auraio_engine_t *engine, int fd, auraio_buf_t buf, size_t len,
                                            int64_t offset, unsigned flags, auraio_callback_t callback, void *user_data)
{
    if (auraio_likely(rw_plain(engine, fd, &buf, len, offset, flags, callback)))
        return submit_rw_plain(engine, REQ_READ, fd, buf.ptr, len, offset, callback, user_data);
    return read_ex_general(engine, fd, buf, len, offset, flags, callback, user_data);
}

AURAIO_API auraio_request_t *auraio_write_ex(auraio_engine_t *engine, int fd, auraio_buf_t buf, size_t len,
                                             int64_t offset, unsigned flags, auraio_callback_t callback,
                                             void *user_data)
{
    if (auraio_likely(rw_plain(engine, fd, &buf, len, offset, flags, callback)))
        return submit_rw_plain(engine, REQ_WRITE, fd, buf.ptr, len, offset, callback, user_data);
    return write_ex_general(engine, fd, buf, len, offset, flags, callback, user_data);
}

static auraio_request_t *submit_vec(auraio_engine_t *e, uint8_t op, int fd, const struct iovec *iov, int iovcnt,
                                    int64_t offset, unsigned flags, auraio_callback_t cb, void *ud)
{
    int rc = check_common(e, fd, offset, cb);
    if (rc == 0 && (iov == NULL || iovcnt <= 0 || iovcnt > IOV_MAX ||
                    (flags & ~(AURAIO_FIXED_FILE | AURAIO_LINK | AURAIO_HARDLINK))))
        rc = -EINVAL;
    uint8_t link = 0;
    if (rc == 0)
        rc = auraio__api_link_flag(flags, &link);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    if (flags == 0) {
        struct request_plain p = {.callback = cb,
                                  .user_data = ud,
                                  .addr = (uint64_t)(uintptr_t)iov,
                                  .offset = (uint64_t)offset,
                                  .len = (uint32_t)iovcnt,
                                  .fd = fd,
                                  .op = op,
                                  .sqe_opcode = ring_plain_opcode(op)};
        return submit_plain_or_errno(e, &p);
    }
    struct request_args a;
    memset(&a, 0, sizeof(a));
    a.op = op;
    a.fd = fd;
    a.fixed_file = (flags & AURAIO_FIXED_FILE) != 0;
    a.link = link;
    a.addr = (uint64_t)(uintptr_t)iov;
    a.len = (uint32_t)iovcnt;
    a.offset = (uint64_t)offset;
    a.callback = cb;
    a.user_data = ud;
    return submit_or_errno(e, &a);
}

AURAIO_API auraio_request_t *auraio_readv(auraio_engine_t *engine, int fd, const struct iovec *iov, int iovcnt,
                                          int64_t offset, auraio_callback_t callback, void *user_data)
{
    return submit_vec(engine, REQ_READV, fd, iov, iovcnt, offset, 0, callback, user_data);
}

AURAIO_API auraio_request_t *auraio_readv_ex(auraio_engine_t *engine, int fd, const struct iovec *iov, int iovcnt,
                                             int64_t offset, unsigned flags, auraio_callback_t callback,
                                             void *user_data)
{
    return submit_vec(engine, REQ_READV, fd, iov, iovcnt, offset, flags, callback, user_data);
}

AURAIO_API auraio_request_t *auraio_writev(auraio_engine_t *engine, int fd, const struct iovec *iov, int iovcnt,
                                           int64_t offset, auraio_callback_t callback, void *user_data)
{
    return submit_vec(engine, REQ_WRITEV, fd, iov, iovcnt, offset, 0, callback, user_data);
}

AURAIO_API auraio_request_t *auraio_writev_ex(auraio_engine_t *engine, int fd, const struct iovec *iov, int iovcnt,
                                              int64_t offset, unsigned flags, auraio_callback_t callback,
                                              void *user_data)
{
    return submit_vec(engine, REQ_WRITEV, fd, iov, iovcnt, offset, flags, callback, user_data);
}

AURAIO_API auraio_request_t *auraio_fsync(auraio_engine_t *engine, int fd, unsigned flags, auraio_callback_t callback,
                                          void *user_data)
{
    int rc = check_common(engine, fd, 0, callback);
    if (rc == 0 && (flags & ~(AURAIO_FSYNC_DATASYNC | AURAIO_FIXED_FILE | AURAIO_LINK | AURAIO_HARDLINK)))
        rc = -EINVAL;
    uint8_t link = 0;
    if (rc == 0)
        rc = auraio__api_link_flag(flags, &link);
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    struct request_args a;
    memset(&a, 0, sizeof(a));
    a.op = REQ_FSYNC;
    a.fd = fd;
    a.fsync_flags = (flags & AURAIO_FSYNC_DATASYNC) ? IORING_FSYNC_DATASYNC : 0;
    a.fixed_file = (flags & AURAIO_FIXED_FILE) != 0;
    a.link = link;
    a.callback = callback;
    a.user_data = user_data;
    return submit_or_errno(engine, &a);
}

AURAIO_API int auraio_cancel(auraio_engine_t *engine, auraio_request_t *req)
{
    validate_or_return(engine != NULL && req != NULL, -EINVAL);
    return_guarded(engine, auraio__engine_cancel(engine, (uint64_t)(uintptr_t)req));
}

AURAIO_API int auraio_request_pending(auraio_engine_t *engine, const auraio_request_t *req)
{
    validate_or_return(engine != NULL && req != NULL, -EINVAL);
    return_guarded(engine, auraio__engine_request_pending(engine, (uint64_t)(uintptr_t)req));
}

AURAIO_API int auraio_poll(auraio_engine_t *engine)
{
    validate_or_return(engine != NULL, -EINVAL);
    validate_or_return(!auraio__engine_in_callback(engine), -EDEADLK);
    return_guarded(engine, auraio__engine_poll(engine));
}

AURAIO_API int auraio_wait(auraio_engine_t *engine, int timeout_ms)
{
    validate_or_return(engine != NULL && timeout_ms >= -1, -EINVAL);
    validate_or_return(!auraio__engine_in_callback(engine), -EDEADLK);
    return_guarded(engine, auraio__engine_wait(engine, timeout_ms));
}

AURAIO_API int auraio_run(auraio_engine_t *engine)
{
    validate_or_return(engine != NULL, -EINVAL);
    validate_or_return(!auraio__engine_in_callback(engine), -EDEADLK);
    return_guarded(engine, auraio__engine_run(engine));
}

AURAIO_API int auraio_stop(auraio_engine_t *engine)
{
    validate_or_return(engine != NULL, -EINVAL);
    return_guarded(engine, auraio__engine_stop(engine));
}

AURAIO_API int auraio_flush(auraio_engine_t *engine)
{
    validate_or_return(engine != NULL, -EINVAL);
    return_guarded(engine, auraio__engine_flush(engine));
}

AURAIO_API int auraio_get_poll_fd(const auraio_engine_t *engine)
{
    validate_or_return(engine != NULL, -EINVAL);
    return engine->event_fd;
}

AURAIO_API int auraio_pending_count(const auraio_engine_t *engine)
{
    validate_or_return(engine != NULL, -EINVAL);
    return_guarded(engine, auraio__engine_pending(engine));
}

AURAIO_API int auraio_capacity(const auraio_engine_t *engine)
{
    validate_or_return(engine != NULL, -EINVAL);
    return_guarded(engine, auraio__engine_capacity(engine));
}

AURAIO_API int auraio_get_ring_count(const auraio_engine_t *engine)
{
    validate_or_return(engine != NULL, -EINVAL);
    return (int)engine->ring_count;
}

AURAIO_API int auraio_get_stats(const auraio_engine_t *engine, auraio_stats_t *stats)
{
    validate_or_return(engine != NULL && stats != NULL, -EINVAL);
    /* const in the API: the snapshot changes nothing observable, it only takes locks. */
    auraio__engine_call_begin((struct auraio_engine *)engine);
    auraio__engine_stats((struct auraio_engine *)engine, stats);
    auraio__engine_call_end((struct auraio_engine *)engine);
    return 0;
}

AURAIO_API int auraio_get_ring_stats(const auraio_engine_t *engine, int ring_index, auraio_ring_stats_t *stats)
{
    validate_or_return(engine != NULL && stats != NULL, -EINVAL);
    validate_or_return(ring_index >= 0 && (uint32_t)ring_index < engine->ring_count, -ERANGE);
    auraio__engine_call_begin((struct auraio_engine *)engine);
    auraio__engine_ring_stats((struct auraio_engine *)engine, (uint32_t)ring_index, stats);
    auraio__engine_call_end((struct auraio_engine *)engine);
    return 0;
}

AURAIO_API int auraio_get_metrics(const auraio_engine_t *engine, int ring_index, auraio_metrics_t *metrics)
{
    validate_or_return(engine != NULL && metrics != NULL, -EINVAL);
    validate_or_return(ring_index == AURAIO_ALL_RINGS || (ring_index >= 0 && (uint32_t)ring_index < engine->ring_count),
                       -ERANGE);
    /* const in the API: the snapshot changes nothing observable, it only takes locks. */
    return_guarded(engine, (auraio__metrics_read((struct auraio_engine *)engine, ring_index, metrics), 0));
}

AURAIO_API auraio_metrics_server_t *auraio_metrics_server_start(auraio_engine_t *engine, const char *bind_address,
                                                                int port)
{
    struct auraio_metrics_server *s = NULL;
    int rc = engine && port >= 0 && port <= 65535 ? 0 : -EINVAL;
    if (rc == 0) {
        auraio__engine_call_begin(engine);
        rc = auraio__metrics_server_start(engine, bind_address, port, &s);
        auraio__engine_call_end(engine);
    }
    if (rc < 0) {
        errno = -rc;
        return NULL;
    }
    return s;
}

AURAIO_API int auraio_metrics_server_port(const auraio_metrics_server_t *server)
{
    validate_or_return(server != NULL, -EINVAL);
    return auraio__metrics_server_port(server);
}

AURAIO_API int auraio_metrics_server_stop(auraio_metrics_server_t *server)
{
    if (!server)
        return 0;
    return auraio__metrics_server_stop(server);
}

AURAIO_API int auraio_set_max_p99_latency(auraio_engine_t *engine, double max_p99_latency_ms)
{
    validate_or_return(engine != NULL, -EINVAL);
    validate_or_return(max_p99_latency_ms >= 0.0 && isfinite(max_p99_latency_ms), -EINVAL);
    return_guarded(engine, auraio__engine_set_p99_target(engine, max_p99_latency_ms));
}

AURAIO_API int auraio_get_histogram(const auraio_engine_t *engine, int ring_index, auraio_histogram_t *hist)
{
    validate_or_return(engine != NULL && hist != NULL, -EINVAL);
    validate_or_return(ring_index >= 0 && (uint32_t)ring_index < engine->ring_count, -ERANGE);
    return_guarded(engine, auraio__engine_histogram((struct auraio_engine *)engine, (uint32_t)ring_index, hist));
}

AURAIO_API uint64_t auraio_histogram_bucket_lower_ns(int bucket)
{
    return auraio__histogram_bucket_lower_ns(bucket);
}

AURAIO_API const char *auraio_phase_name(int phase)
{
    return auraio__ctl_phase_name(phase);
}

AURAIO_API int auraio_register_buffers(auraio_engine_t *engine, const struct iovec *iovs, int count)
{
    validate_or_return(engine != NULL, -EINVAL);
    return_guarded(engine, auraio__engine_register_buffers(engine, iovs, count));
}

AURAIO_API int auraio_register_files(auraio_engine_t *engine, const int *fds, int count)
{
    validate_or_return(engine != NULL, -EINVAL);
    return_guarded(engine, auraio__engine_register_files(engine, fds, count));
}

AURAIO_API int auraio_update_file(auraio_engine_t *engine, int index, int fd)
{
    validate_or_return(engine != NULL, -EINVAL);
    return_guarded(engine, auraio__engine_update_file(engine, index, fd));
}

AURAIO_API int auraio_unregister(auraio_engine_t *engine, auraio_reg_type_t type)
{
    validate_or_return(engine != NULL, -EINVAL);
    return_guarded(engine, auraio__engine_unregister(engine, type));
}
