/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Memory ordering for memory shared with the kernel. Nothing else in lib/ names a memory_order
 * for ring memory: each kernel-shared index is turned into an `_Atomic uint32_t *` once, at
 * mapping time, and read or written only through these helpers. The pairings are documented in
 * uring.c where they are used.
 */
#ifndef AURAIO_URING_ATOMIC_H
#define AURAIO_URING_ATOMIC_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint32_t kernel_u32;

static inline uint32_t uring_load_acquire(const kernel_u32 *p)
{
    return atomic_load_explicit((kernel_u32 *)p, memory_order_acquire);
}

static inline void uring_store_release(kernel_u32 *p, uint32_t v)
{
    atomic_store_explicit(p, v, memory_order_release);
}

static inline uint32_t uring_load_relaxed(const kernel_u32 *p)
{
    return atomic_load_explicit((kernel_u32 *)p, memory_order_relaxed);
}

/* Full barrier: orders our SQ tail store before the read of SQ flags (SQPOLL wakeup check). */
static inline void uring_fence(void)
{
    atomic_thread_fence(memory_order_seq_cst);
}

#endif
