/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Public entry points of the metadata and space ops, timers, deadlines and cancel-by-fd:
 * argument checks and errno, as in api.c (the other file that sets errno).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "auraio.h"

#include "api_ops.h"
#include "engine.h"
#include "uring_abi.h"
#include "validate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>

/* Mode bits open(2) accepts (permissions, setuid/setgid, sticky). */
#define OPEN_MODE_MASK 07777u
/* SYNC_FILE_RANGE_WAIT_BEFORE | _WRITE | _WAIT_AFTER */
#define SYNC_FILE_RANGE_FLAGS 7u
/* POSIX_FADV_NORMAL (0) .. POSIX_FADV_NOREUSE (5) */
#define FADVISE_MAX_ADVICE 5
/* fadvise/madvise lengths travel in the SQE's 32-bit len on every kernel that has the ops. */
#define ADVISE_MAX_LEN UINT32_MAX

static auraio_request_t *fail(int rc)
{
    errno = -rc;
    return NULL;
}

/* Common checks and the args every op starts from; @p allowed are the flags this op takes. */
static int start_args(const auraio_engine_t *e, auraio_callback_t cb, void *ud, unsigned flags, unsigned allowed,
                      uint8_t op, struct request_args *a)
{
    validate_or_return(e != NULL && cb != NULL, -EINVAL);
    validate_or_return((flags & ~allowed) == 0, -EINVAL);
    memset(a, 0, sizeof(*a));
    int rc = auraio__api_link_flag(flags, &a->link);
    if (rc < 0)
        return rc;
    a->op = op;
    a->fixed_file = (flags & AURAIO_FIXED_FILE) != 0;
    a->callback = cb;
    a->user_data = ud;
    return 0;
}

static auraio_request_t *submit(auraio_engine_t *e, struct request_args *a)
{
    uint64_t handle;
    auraio__engine_call_begin(e);
    int rc = auraio__engine_submit(e, a, &handle);
    auraio__engine_call_end(e);
    if (rc < 0)
        return fail(rc);
    return (auraio_request_t *)(uintptr_t)handle;
}

#define LINK_FLAGS (AURAIO_LINK | AURAIO_HARDLINK)
#define FILE_OP_FLAGS (AURAIO_FIXED_FILE | LINK_FLAGS)

static int check_path_op(int dirfd, const char *path)
{
    validate_or_return(path != NULL, -EINVAL);
    validate_or_return(dirfd >= 0 || dirfd == AT_FDCWD, -EBADF);
    return 0;
}

static auraio_request_t *openat_common(auraio_engine_t *engine, int dirfd, const char *path, int open_flags,
                                       mode_t mode, uint32_t file_index, unsigned flags, auraio_callback_t callback,
                                       void *user_data)
{
    struct request_args a;
    int rc = start_args(engine, callback, user_data, flags, LINK_FLAGS, REQ_OPENAT, &a);
    if (rc == 0)
        rc = check_path_op(dirfd, path);
    if (rc == 0 && ((unsigned)mode & ~OPEN_MODE_MASK))
        rc = -EINVAL;
    if (rc < 0)
        return fail(rc);
    a.fd = dirfd;
    a.addr = (uint64_t)(uintptr_t)path;
    a.op_flags = (uint32_t)open_flags;
    a.aux = (uint32_t)mode;
    a.file_index = file_index;
    return submit(engine, &a);
}

AURAIO_API auraio_request_t *auraio_openat(auraio_engine_t *engine, int dirfd, const char *path, int open_flags,
                                           mode_t mode, unsigned flags, auraio_callback_t callback, void *user_data)
{
    return openat_common(engine, dirfd, path, open_flags, mode, 0, flags, callback, user_data);
}

AURAIO_API auraio_request_t *auraio_openat_direct(auraio_engine_t *engine, int dirfd, const char *path,
                                                  int open_flags, mode_t mode, int file_index, unsigned flags,
                                                  auraio_callback_t callback, void *user_data)
{
    /* The kernel's table is per ring: one ring, or the file would exist on only one of them. */
    if (engine == NULL || file_index < 0 || file_index >= INT32_MAX || engine->ring_count != 1)
        return fail(-EINVAL);
    return openat_common(engine, dirfd, path, open_flags, mode, (uint32_t)file_index + 1, flags, callback,
                         user_data);
}

AURAIO_API auraio_request_t *auraio_close(auraio_engine_t *engine, int fd, unsigned flags, auraio_callback_t callback,
                                          void *user_data)
{
    struct request_args a;
    int rc = start_args(engine, callback, user_data, flags, FILE_OP_FLAGS, REQ_CLOSE, &a);
    if (rc == 0 && fd < 0)
        rc = -EBADF;
    if (rc == 0 && a.fixed_file && fd >= INT32_MAX)
        rc = -EBADF;
    if (rc < 0)
        return fail(rc);
    if (a.fixed_file) {
        /* CLOSE names a registered slot by file_index; IOSQE_FIXED_FILE is not for it. */
        a.fixed_file = 0;
        a.file_index = (uint32_t)fd + 1;
    }
    a.fd = fd;
    return submit(engine, &a);
}

AURAIO_API auraio_request_t *auraio_statx(auraio_engine_t *engine, int dirfd, const char *path, int statx_flags,
                                          unsigned mask, struct statx *statxbuf, unsigned flags,
                                          auraio_callback_t callback, void *user_data)
{
    struct request_args a;
    int rc = start_args(engine, callback, user_data, flags, LINK_FLAGS, REQ_STATX, &a);
    if (rc == 0 && statxbuf == NULL)
        rc = -EINVAL;
    if (rc == 0)
        rc = check_path_op(dirfd, path);
    if (rc < 0)
        return fail(rc);
    a.fd = dirfd;
    a.addr = (uint64_t)(uintptr_t)path;
    a.op_flags = (uint32_t)statx_flags;
    a.aux = mask;
    a.addr2 = (uint64_t)(uintptr_t)statxbuf;
    return submit(engine, &a);
}

/* The checks of ops on an open file: flags, then the fd, then @p args_ok for the rest. */
static int start_file_op(auraio_engine_t *e, int fd, bool args_ok, unsigned flags, uint8_t op,
                         auraio_callback_t cb, void *ud, struct request_args *a)
{
    int rc = start_args(e, cb, ud, flags, FILE_OP_FLAGS, op, a);
    if (rc == 0 && fd < 0)
        rc = -EBADF;
    if (rc == 0 && !args_ok)
        rc = -EINVAL;
    a->fd = fd;
    return rc;
}

AURAIO_API auraio_request_t *auraio_fallocate(auraio_engine_t *engine, int fd, int mode, int64_t offset, int64_t len,
                                              unsigned flags, auraio_callback_t callback, void *user_data)
{
    struct request_args a;
    int rc = start_file_op(engine, fd, offset >= 0 && len > 0, flags, REQ_FALLOCATE, callback, user_data, &a);
    if (rc < 0)
        return fail(rc);
    a.offset = (uint64_t)offset;
    a.addr = (uint64_t)len;
    a.op_flags = (uint32_t)mode;
    return submit(engine, &a);
}

AURAIO_API auraio_request_t *auraio_ftruncate(auraio_engine_t *engine, int fd, int64_t length, unsigned flags,
                                              auraio_callback_t callback, void *user_data)
{
    struct request_args a;
    int rc = start_file_op(engine, fd, length >= 0, flags, REQ_FTRUNCATE, callback, user_data, &a);
    if (rc < 0)
        return fail(rc);
    a.offset = (uint64_t)length;
    return submit(engine, &a);
}

AURAIO_API auraio_request_t *auraio_sync_file_range(auraio_engine_t *engine, int fd, int64_t offset, uint32_t nbytes,
                                                    unsigned sync_flags, unsigned flags, auraio_callback_t callback,
                                                    void *user_data)
{
    struct request_args a;
    int rc = start_file_op(engine, fd, offset >= 0 && (sync_flags & ~SYNC_FILE_RANGE_FLAGS) == 0, flags,
                           REQ_SYNC_FILE_RANGE, callback, user_data, &a);
    if (rc < 0)
        return fail(rc);
    a.offset = (uint64_t)offset;
    a.len = nbytes;
    a.op_flags = sync_flags;
    return submit(engine, &a);
}

AURAIO_API auraio_request_t *auraio_fadvise(auraio_engine_t *engine, int fd, int64_t offset, int64_t len, int advice,
                                            unsigned flags, auraio_callback_t callback, void *user_data)
{
    struct request_args a;
    bool ok = offset >= 0 && len >= 0 && (uint64_t)len <= ADVISE_MAX_LEN && advice >= 0 && advice <= FADVISE_MAX_ADVICE;
    int rc = start_file_op(engine, fd, ok, flags, REQ_FADVISE, callback, user_data, &a);
    if (rc < 0)
        return fail(rc);
    a.offset = (uint64_t)offset;
    a.len = (uint32_t)len;
    a.op_flags = (uint32_t)advice;
    return submit(engine, &a);
}

AURAIO_API auraio_request_t *auraio_madvise(auraio_engine_t *engine, void *addr, size_t len, int advice,
                                            unsigned flags, auraio_callback_t callback, void *user_data)
{
    struct request_args a;
    int rc = start_args(engine, callback, user_data, flags, LINK_FLAGS, REQ_MADVISE, &a);
    if (rc == 0 && (addr == NULL || len == 0 || len > ADVISE_MAX_LEN || advice < 0))
        rc = -EINVAL;
    if (rc < 0)
        return fail(rc);
    a.addr = (uint64_t)(uintptr_t)addr;
    a.len = (uint32_t)len;
    a.op_flags = (uint32_t)advice;
    a.fd = -1;
    return submit(engine, &a);
}

AURAIO_API auraio_request_t *auraio_timeout(auraio_engine_t *engine, uint64_t timeout_ns, auraio_callback_t callback,
                                            void *user_data)
{
    struct request_args a;
    int rc = start_args(engine, callback, user_data, 0, 0, REQ_TIMEOUT, &a);
    if (rc < 0)
        return fail(rc);
    a.fd = -1;
    a.timeout_ns = timeout_ns;
    return submit(engine, &a);
}

AURAIO_API int auraio_set_next_timeout(auraio_engine_t *engine, uint64_t timeout_ns)
{
    validate_or_return(engine != NULL, -EINVAL);
    return auraio__engine_set_next_timeout(engine, timeout_ns);
}

AURAIO_API int auraio_cancel_fd(auraio_engine_t *engine, int fd)
{
    validate_or_return(engine != NULL, -EINVAL);
    validate_or_return(fd >= 0, -EBADF);
    auraio__engine_call_begin(engine);
    int rc = auraio__engine_cancel_fd(engine, fd);
    auraio__engine_call_end(engine);
    return rc;
}
