/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One request's SQEs: the opcode each request op maps to (for the probe), how its fields fill the
 * SQE, and the linked timeout that carries a per-op deadline. ring.c decides when; this file only
 * writes SQEs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ops.h"

static const uint8_t kernel_op[REQ_OP_COUNT] = {
    [REQ_READ] = IORING_OP_READ,
    [REQ_WRITE] = IORING_OP_WRITE,
    [REQ_READV] = IORING_OP_READV,
    [REQ_WRITEV] = IORING_OP_WRITEV,
    [REQ_FSYNC] = IORING_OP_FSYNC,
    [REQ_OPENAT] = IORING_OP_OPENAT,
    [REQ_CLOSE] = IORING_OP_CLOSE,
    [REQ_STATX] = IORING_OP_STATX,
    [REQ_FALLOCATE] = IORING_OP_FALLOCATE,
    [REQ_FTRUNCATE] = AURAIO_IORING_OP_FTRUNCATE,
    [REQ_SYNC_FILE_RANGE] = IORING_OP_SYNC_FILE_RANGE,
    [REQ_FADVISE] = IORING_OP_FADVISE,
    [REQ_MADVISE] = IORING_OP_MADVISE,
    [REQ_TIMEOUT] = IORING_OP_TIMEOUT,
};

unsigned auraio__op_kernel_opcode(const struct request_args *a)
{
    if (a->fixed_buffer)
        return a->op == REQ_READ ? IORING_OP_READ_FIXED : IORING_OP_WRITE_FIXED;
    return kernel_op[a->op];
}

bool auraio__op_missing(const struct uring *u, const struct request_args *a)
{
    if (auraio__uring_op_missing(u, auraio__op_kernel_opcode(a)))
        return true;
    return a->timeout_ns != 0 && a->op != REQ_TIMEOUT && auraio__uring_op_missing(u, IORING_OP_LINK_TIMEOUT);
}

static void set_timespec(struct __kernel_timespec *ts, uint64_t ns)
{
    ts->tv_sec = (long long)(ns / 1000000000u);
    ts->tv_nsec = (long long)(ns % 1000000000u);
}

void auraio__op_prepare(struct io_uring_sqe *sqe, struct request *q, uint64_t handle)
{
    const struct request_args *a = &q->args;
    unsigned op = auraio__op_kernel_opcode(a);
    switch (a->op) {
    case REQ_FSYNC:
        uring_prep(sqe, op, a->fd, 0, 0, 0, handle);
        sqe->fsync_flags = a->fsync_flags;
        break;
    case REQ_OPENAT:
        uring_prep(sqe, op, a->fd, a->addr, a->aux, 0, handle);
        sqe->open_flags = a->op_flags;
        sqe->file_index = a->file_index;
        break;
    case REQ_CLOSE:
        /* A registered slot is named by file_index alone; IOSQE_FIXED_FILE is refused by CLOSE. */
        uring_prep(sqe, op, a->file_index ? 0 : a->fd, 0, 0, 0, handle);
        sqe->file_index = a->file_index;
        break;
    case REQ_STATX:
        uring_prep(sqe, op, a->fd, a->addr, a->aux, a->addr2, handle);
        sqe->statx_flags = a->op_flags;
        break;
    case REQ_FALLOCATE:
        /* The kernel's odd layout: the length travels in addr and the mode in len. */
        uring_prep(sqe, op, a->fd, a->addr, a->op_flags, a->offset, handle);
        break;
    case REQ_FTRUNCATE:
        uring_prep(sqe, op, a->fd, 0, 0, a->offset, handle);
        break;
    case REQ_SYNC_FILE_RANGE:
        uring_prep(sqe, op, a->fd, 0, a->len, a->offset, handle);
        sqe->sync_range_flags = a->op_flags;
        break;
    case REQ_FADVISE:
        uring_prep(sqe, op, a->fd, 0, a->len, a->offset, handle);
        sqe->fadvise_advice = a->op_flags;
        break;
    case REQ_MADVISE:
        uring_prep(sqe, op, -1, a->addr, a->len, 0, handle);
        sqe->fadvise_advice = a->op_flags;
        break;
    case REQ_TIMEOUT:
        /* count 0: a pure timer, completed only by expiry or cancel. */
        set_timespec(&q->ts, a->timeout_ns);
        uring_prep(sqe, op, -1, (uint64_t)(uintptr_t)&q->ts, 1, 0, handle);
        break;
    default: /* read, write, readv, writev and the fixed-buffer forms */
        uring_prep(sqe, op, a->fd, a->addr, a->len, a->offset, handle);
        if (a->fixed_buffer)
            sqe->buf_index = a->buf_index;
        break;
    }
    if (a->fixed_file)
        sqe->flags |= IOSQE_FIXED_FILE;
}

void auraio__op_prepare_link_timeout(struct io_uring_sqe *sqe, struct request *q, uint64_t handle)
{
    set_timespec(&q->ts, q->args.timeout_ns);
    uring_prep(sqe, IORING_OP_LINK_TIMEOUT, -1, (uint64_t)(uintptr_t)&q->ts, 1, 0, handle | USER_DATA_TIMEOUT_BIT);
}
