/* SPDX-License-Identifier: Apache-2.0 */
/* The contended path of lib/lock.h: spin a little, then sleep on the futex. */
#include "lock.h"

#include "uring_sys.h"

/* Ring critical sections are a few hundred instructions: a waiter usually gets the lock within
 * this many polls (each a pause, tens of ns), and sleeping costs two system calls. */
#define LOCK_SPINS 100

static inline void cpu_pause(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#elif defined(__GNUC__) && defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void auraio__lock_wait(struct auraio_lock *l)
{
    for (int i = 0; i < LOCK_SPINS; i++) {
        cpu_pause();
        if (atomic_load_explicit(&l->state, memory_order_relaxed) == LOCK_FREE && auraio__lock_try(l))
            return;
    }
    /* From here on the word says "contended" while we hold or want it, so every unlock wakes one
     * sleeper; taking it as CONTENDED is conservative (one spare wake at worst). */
    while (atomic_exchange_explicit(&l->state, LOCK_CONTENDED, memory_order_acquire) != LOCK_FREE)
        auraio__sys_futex_wait(&l->state, LOCK_CONTENDED);
}

void auraio__lock_wake(struct auraio_lock *l)
{
    auraio__sys_futex_wake(&l->state, 1);
}
