/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The thread-exit guard. The kernel ties an io_uring request to the task whose io_uring_enter
 * consumed its SQE, and any thread's enter consumes every SQE queued on the ring, other threads'
 * included. When that task exits with the request still in flight, the request is lost: a buffered
 * read waiting for the page cache retries as task work of a task that is gone and fails with
 * -EFAULT, work queued to the task's io-wq is cancelled. So a thread that ever entered the kernel
 * for an engine waits, as it exits (a pthread key destructor), until the file I/O that was in the
 * kernel on that engine's rings when it began exiting has completed: its own among it, whoever
 * submitted it. "Completed" means its CQEs are in the CQ; nobody has to reap them. Requests on
 * pipes, sockets and other files that may never complete on their own, and timers, are left to
 * the kernel's rule (they fail with -ECANCELED).
 *
 * Waiting for everything in flight rather than for exactly what this thread entered costs the
 * exiting thread at most one round of the engine's I/O; knowing exactly would cost a store per
 * request on the hot path (measured: +17 instructions per cached read, issue #11). As it is, a
 * thread that never enters pays nothing, and an enter pays one compare of a thread-local word
 * (the first enter on an engine records it, out of line).
 */
#ifndef AURAIO_EXIT_GUARD_H
#define AURAIO_EXIT_GUARD_H

#include "compiler.h"

#include <stdbool.h>
#include <stdint.h>

struct auraio_engine;

/* Engines a thread remembers by identity; one that entered more (rare) drains every live engine. */
#define EXIT_GUARD_ENGINES 4

struct exit_guard {
    uint64_t last_engine_id; /* the engine of this thread's last enter: the hot path's one test */
    uint32_t nengines;
    bool many;  /* entered on more engines than engines[] holds */
    bool armed; /* the key's destructor will run at this thread's exit */
    struct {
        struct auraio_engine *engine;
        uint64_t id;
    } engines[EXIT_GUARD_ENGINES];
};

/* Initial-exec: read on every enter (see engine.c's ENGINE_TLS_MODEL for why). */
#if defined(__GNUC__)
#define EXIT_GUARD_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define EXIT_GUARD_TLS_MODEL
#endif
extern _Thread_local struct exit_guard auraio__exit_guard EXIT_GUARD_TLS_MODEL;

/* The calling thread's first enter on engine @p e (@p id): remember it and arm the destructor. */
void auraio__exit_guard_join(struct auraio_engine *e, uint64_t id);

/* The calling thread entered the kernel for engine @p e: its exit will wait (see above). */
static inline void exit_guard_note(struct auraio_engine *e, uint64_t id)
{
    if (auraio_unlikely(auraio__exit_guard.last_engine_id != id))
        auraio__exit_guard_join(e, id);
}

#endif
