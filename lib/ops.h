/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SQE preparation for every request op (ops.c). A request is one SQE, or two when it has a
 * deadline: the op with IOSQE_IO_LINK, then an IORING_OP_LINK_TIMEOUT whose user_data is the
 * request's handle with USER_DATA_TIMEOUT_BIT set.
 */
#ifndef AURAIO_OPS_H
#define AURAIO_OPS_H

#include "request.h"
#include "uring.h"

#include <stdbool.h>
#include <stdint.h>

/* The opcode a request becomes (READ_FIXED/WRITE_FIXED for registered buffers). */
unsigned auraio__op_kernel_opcode(const struct request_args *a);
/* True when the kernel lacks the request's opcode, or LINK_TIMEOUT when it has a deadline. */
bool auraio__op_missing(const struct uring *u, const struct request_args *a);
/* Fill @p sqe for @p q (its link flags are the caller's). */
void auraio__op_prepare(struct io_uring_sqe *sqe, struct request *q, uint64_t handle);
/* Fill the LINK_TIMEOUT SQE that follows @p q's own for its deadline. */
void auraio__op_prepare_link_timeout(struct io_uring_sqe *sqe, struct request *q, uint64_t handle);
/* SQEs (and CQEs) the request takes: 2 with a deadline, else 1. */
/* SQEs a request takes: its op, and a linked timeout when it has a deadline. */
static inline unsigned auraio__op_sqe_count(const struct request_args *a)
{
    return a->timeout_ns != 0 && a->op != REQ_TIMEOUT ? 2u : 1u;
}

#endif
