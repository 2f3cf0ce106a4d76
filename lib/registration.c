/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registered buffers and files, applied to every ring so that any ring can serve a fixed-buffer
 * or fixed-file request. A failure on ring k rolls rings 0..k-1 back, so rings never disagree.
 *
 * Unregistering is refused with -EBUSY while any request using the registration is in flight
 * (counted per ring at submit, uncounted at reap before the callback runs). The check hides the
 * registration ring by ring under each ring's lock; if one ring is busy, the ones already hidden
 * are restored, so a refused unregister changes nothing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "engine.h"

#include "uring_sys.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The kernel's limits: IORING_MAX_REG_BUFFERS (1 << 14), buffers up to 1 GiB each, and
 * IORING_MAX_FIXED_FILES (1 << 20, further bounded by RLIMIT_NOFILE, which the kernel checks). */
#define MAX_REG_BUFFERS (1 << 14)
#define MAX_REG_BUFFER_LEN (1ull << 30)
#define MAX_REG_FILES (1 << 20)

static void publish_buffers(struct auraio_engine *e, uint32_t rings, const struct iovec *bufs, uint32_t count)
{
    for (uint32_t i = 0; i < rings; i++) {
        struct ring *r = &e->rings[i];
        auraio__lock(&r->lock);
        r->fixed_bufs = bufs;
        r->fixed_buf_count = count;
        auraio__unlock(&r->lock);
    }
}

static void publish_files(struct auraio_engine *e, uint32_t rings, uint32_t count)
{
    for (uint32_t i = 0; i < rings; i++) {
        struct ring *r = &e->rings[i];
        auraio__lock(&r->lock);
        r->fixed_file_count = count;
        auraio__unlock(&r->lock);
    }
}

/* Register with every ring's kernel side; on failure undo the rings already done. @return 0, the
 * kernel's -errno, or -EIO when a ring could not be undone (it keeps the registration, so the
 * rings disagree and that ring will refuse the next registration with EBUSY). */
static int register_all(struct auraio_engine *e, unsigned op, unsigned undo_op, const void *arg, unsigned n)
{
    for (uint32_t i = 0; i < e->ring_count; i++) {
        int rc = auraio__sys_register(e->rings[i].uring.fd, op, arg, n);
        if (rc < 0) {
            bool undone = true;
            while (i-- > 0)
                undone &= auraio__sys_register(e->rings[i].uring.fd, undo_op, NULL, 0) >= 0;
            return undone ? rc : -EIO;
        }
    }
    return 0;
}

int auraio__engine_register_buffers(struct auraio_engine *e, const struct iovec *iovs, int count)
{
    if (!iovs || count <= 0 || count > MAX_REG_BUFFERS)
        return -EINVAL;
    for (int i = 0; i < count; i++) {
        if (!iovs[i].iov_base || iovs[i].iov_len == 0 || iovs[i].iov_len > MAX_REG_BUFFER_LEN)
            return -EINVAL;
    }
    /* count is bounded above, so count * sizeof cannot overflow. */
    struct iovec *copy = malloc((size_t)count * sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    memcpy(copy, iovs, (size_t)count * sizeof(*copy));

    pthread_mutex_lock(&e->reg_lock);
    int rc = e->fixed_bufs ? -EBUSY
                           : register_all(e, IORING_REGISTER_BUFFERS, IORING_UNREGISTER_BUFFERS, copy,
                                          (unsigned)count);
    if (rc == 0) {
        e->fixed_bufs = copy;
        e->fixed_buf_count = (uint32_t)count;
        publish_buffers(e, e->ring_count, copy, (uint32_t)count);
    }
    pthread_mutex_unlock(&e->reg_lock);
    if (rc < 0)
        free(copy);
    return rc;
}

int auraio__engine_register_files(struct auraio_engine *e, const int *fds, int count)
{
    if (!fds || count <= 0 || count > MAX_REG_FILES)
        return -EINVAL;
    for (int i = 0; i < count; i++) {
        if (fds[i] < -1)
            return -EBADF;
    }
    int *copy = malloc((size_t)count * sizeof(*copy));
    if (!copy)
        return -ENOMEM;
    memcpy(copy, fds, (size_t)count * sizeof(*copy));
    /* Their devices first, outside reg_lock (it never nests with the tick lock): a registration
     * that fails below leaves classes nothing uses. */
    int crc = auraio__devices_fixed_set(e, 0, fds, (uint32_t)count);
    if (crc < 0) {
        free(copy);
        return crc;
    }

    pthread_mutex_lock(&e->reg_lock);
    int rc = e->fixed_files ? -EBUSY
                            : register_all(e, IORING_REGISTER_FILES, IORING_UNREGISTER_FILES, copy,
                                           (unsigned)count);
    if (rc == 0) {
        e->fixed_files = copy;
        e->fixed_file_count = (uint32_t)count;
        publish_files(e, e->ring_count, (uint32_t)count);
    }
    pthread_mutex_unlock(&e->reg_lock);
    if (rc < 0)
        free(copy);
    return rc;
}

static int update_slot(struct ring *r, int index, int fd)
{
    struct io_uring_files_update up;
    memset(&up, 0, sizeof(up));
    up.offset = (uint32_t)index;
    up.fds = (uint64_t)(uintptr_t)&fd;
    int rc = auraio__sys_register(r->uring.fd, IORING_REGISTER_FILES_UPDATE, &up, 1);
    return rc < 0 ? rc : 0;
}

int auraio__engine_update_file(struct auraio_engine *e, int index, int fd)
{
    if (fd < -1)
        return -EBADF;
    if (index >= 0 && index < MAX_REG_FILES) {
        int crc = auraio__devices_fixed_set(e, (uint32_t)index, &fd, 1); /* outside reg_lock */
        if (crc < 0)
            return crc;
    }
    pthread_mutex_lock(&e->reg_lock);
    int rc = 0;
    if (!e->fixed_files) {
        rc = -ENOENT;
    } else if (index < 0 || (uint32_t)index >= e->fixed_file_count) {
        rc = -ERANGE;
    } else {
        int old = e->fixed_files[index];
        for (uint32_t i = 0; i < e->ring_count; i++) {
            rc = update_slot(&e->rings[i], index, fd);
            if (rc < 0) {
                /* Put the rings already updated back on the old file: all rings agree, or the
                 * caller hears -EIO that they do not. */
                bool undone = true;
                while (i-- > 0)
                    undone &= update_slot(&e->rings[i], index, old) == 0;
                if (!undone)
                    rc = -EIO;
                break;
            }
        }
        if (rc == 0)
            e->fixed_files[index] = fd;
    }
    pthread_mutex_unlock(&e->reg_lock);
    return rc;
}

/* Hide the registration from every ring unless one has requests using it; then restore. */
static bool hide_if_idle(struct auraio_engine *e, auraio_reg_type_t type)
{
    for (uint32_t i = 0; i < e->ring_count; i++) {
        struct ring *r = &e->rings[i];
        auraio__lock(&r->lock);
        bool busy = type == AURAIO_REG_BUFFERS ? r->fixed_buf_users > 0 : r->fixed_file_users > 0;
        if (!busy) {
            if (type == AURAIO_REG_BUFFERS) {
                r->fixed_bufs = NULL;
                r->fixed_buf_count = 0;
            } else {
                r->fixed_file_count = 0;
            }
        }
        auraio__unlock(&r->lock);
        if (busy) {
            if (type == AURAIO_REG_BUFFERS)
                publish_buffers(e, i, e->fixed_bufs, e->fixed_buf_count);
            else
                publish_files(e, i, e->fixed_file_count);
            return false;
        }
    }
    return true;
}

int auraio__engine_unregister(struct auraio_engine *e, auraio_reg_type_t type)
{
    if (type != AURAIO_REG_BUFFERS && type != AURAIO_REG_FILES)
        return -EINVAL;
    pthread_mutex_lock(&e->reg_lock);
    int rc = 0;
    bool registered = type == AURAIO_REG_BUFFERS ? e->fixed_bufs != NULL : e->fixed_files != NULL;
    if (!registered) {
        rc = -ENOENT;
    } else if (!hide_if_idle(e, type)) {
        rc = -EBUSY;
    } else {
        /* Every ring is asked even after a refusal, and the library stops using the registration
         * either way (it is hidden from all rings already); a ring that refused keeps its kernel
         * side and the first refusal is returned. */
        unsigned op = type == AURAIO_REG_BUFFERS ? IORING_UNREGISTER_BUFFERS : IORING_UNREGISTER_FILES;
        for (uint32_t i = 0; i < e->ring_count; i++) {
            int urc = auraio__sys_register(e->rings[i].uring.fd, op, NULL, 0);
            if (urc < 0 && rc == 0)
                rc = urc;
        }
        if (type == AURAIO_REG_BUFFERS) {
            free(e->fixed_bufs);
            e->fixed_bufs = NULL;
            e->fixed_buf_count = 0;
        } else {
            free(e->fixed_files);
            e->fixed_files = NULL;
            e->fixed_file_count = 0;
        }
    }
    pthread_mutex_unlock(&e->reg_lock);
    return rc;
}

void auraio__engine_free_registrations(struct auraio_engine *e)
{
    free(e->fixed_bufs);
    free(e->fixed_files);
    e->fixed_bufs = NULL;
    e->fixed_files = NULL;
}
