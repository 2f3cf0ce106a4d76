/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The kernel ABI we speak: <linux/io_uring.h> plus fallbacks for constants newer than the build
 * machine's headers, and static checks on the layout the ring code relies on. Whether the running
 * kernel supports a feature is probed at run time, never inferred from these definitions.
 */
#ifndef AURAIO_URING_ABI_H
#define AURAIO_URING_ABI_H

#include <linux/io_uring.h>
#include <stddef.h>
#include <stdint.h>

/* Setup flags (5.18-6.1). */
#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_TASKRUN_FLAG
#define IORING_SETUP_TASKRUN_FLAG (1U << 9)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_SQ_TASKRUN
#define IORING_SQ_TASKRUN (1U << 2)
#endif
#ifndef IORING_ENTER_EXT_ARG
#define IORING_ENTER_EXT_ARG (1U << 3)
#endif
#ifndef IORING_FEAT_EXT_ARG
#define IORING_FEAT_EXT_ARG (1U << 8)
#endif
#ifndef IORING_ASYNC_CANCEL_ANY
#define IORING_ASYNC_CANCEL_ANY (1U << 2)
#endif
#ifndef IORING_REGISTER_PROBE
#define IORING_REGISTER_PROBE 8
#endif
#ifndef IO_URING_OP_SUPPORTED
#define IO_URING_OP_SUPPORTED (1U << 0)
#endif

/* Opcodes newer than the 6.1 headers (an enum there, so no #ifndef): the probe decides. */
#define AURAIO_IORING_OP_FTRUNCATE 55 /* 6.9 */
#ifndef IORING_FILE_INDEX_ALLOC
#define IORING_FILE_INDEX_ALLOC (~0U)
#endif

/* IORING_REGISTER_SYNC_CANCEL (6.0) and its argument, spelled out so older headers build. */
#define AURAIO_IORING_REGISTER_SYNC_CANCEL 24
#ifndef IORING_ASYNC_CANCEL_ALL
#define IORING_ASYNC_CANCEL_ALL (1U << 0)
#endif
#ifndef IORING_ASYNC_CANCEL_FD
#define IORING_ASYNC_CANCEL_FD (1U << 1)
#endif
struct auraio_sync_cancel_reg {
    uint64_t addr;
    int32_t fd;
    uint32_t flags;
    struct {
        int64_t tv_sec;
        long long tv_nsec;
    } timeout;
    uint64_t pad[4]; /* zero: no opcode key (6.6+ reads its first byte as one) */
};
_Static_assert(sizeof(struct auraio_sync_cancel_reg) == 64, "io_uring_sync_cancel_reg layout");

/* The syscall numbers are the same on every architecture that has io_uring (asm-generic). */
#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif

/* Layout we depend on when filling SQEs and reading CQEs (64-byte SQE, 16-byte CQE). */
_Static_assert(sizeof(struct io_uring_sqe) == 64, "io_uring_sqe must be 64 bytes");
_Static_assert(sizeof(struct io_uring_cqe) == 16, "io_uring_cqe must be 16 bytes");
_Static_assert(offsetof(struct io_uring_sqe, user_data) == 32, "io_uring_sqe.user_data offset");
_Static_assert(sizeof(uint32_t) == sizeof(unsigned), "ring indexes are 32-bit");

#endif
