/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ring lock: a mutex of one 32-bit word over futex(2) (Drepper, "Futexes Are Tricky", mutex 3).
 * Uncontended, taking and releasing it is one atomic instruction each, inline; glibc's
 * pthread_mutex_lock/unlock were ~55 instructions per I/O through two PLT calls on the cached-read
 * benchmark (issue #11), the largest single item after the ring code itself. Contended, a waiter
 * spins briefly, then sleeps in the kernel; the unlocker wakes one sleeper only when the word says
 * someone may sleep (state 2), so the uncontended unlock never enters the kernel.
 *
 * Acquire on taking, release on giving back: TSan and the C11 model see the same happens-before
 * edges as with a pthread mutex. Not recursive, no owner checks: ring.c's lock discipline is
 * flat (ring locks never nest, see engine.h).
 */
#ifndef AURAIO_LOCK_H
#define AURAIO_LOCK_H

#include "compiler.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum { LOCK_FREE, LOCK_HELD, LOCK_CONTENDED };

struct auraio_lock {
    _Atomic uint32_t state; /* LOCK_FREE, LOCK_HELD, or LOCK_CONTENDED (held, a waiter may sleep) */
};

#define AURAIO_LOCK_INIT {LOCK_FREE}

/* The contended halves, out of line (lock.c). */
void auraio__lock_wait(struct auraio_lock *l);
void auraio__lock_wake(struct auraio_lock *l);

static inline void auraio__lock_init(struct auraio_lock *l)
{
    atomic_init(&l->state, LOCK_FREE);
}

static inline bool auraio__lock_try(struct auraio_lock *l)
{
    uint32_t expected = LOCK_FREE;
    return atomic_compare_exchange_strong_explicit(&l->state, &expected, LOCK_HELD, memory_order_acquire,
                                                   memory_order_relaxed);
}

static inline void auraio__lock(struct auraio_lock *l)
{
    if (auraio_unlikely(!auraio__lock_try(l)))
        auraio__lock_wait(l);
}

/* Give the lock back; true when a waiter may sleep, and the caller must then call
 * auraio__lock_wake (auraio__unlock's two halves, for a caller that wants the wake out of line). */
static inline bool auraio__unlock_must_wake(struct auraio_lock *l)
{
    return atomic_exchange_explicit(&l->state, LOCK_FREE, memory_order_release) == LOCK_CONTENDED;
}

static inline void auraio__unlock(struct auraio_lock *l)
{
    if (auraio_unlikely(auraio__unlock_must_wake(l)))
        auraio__lock_wake(l);
}

#endif
