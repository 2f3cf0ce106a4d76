/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The thread-exit guard (see exit_guard.h): at the exit of a thread that entered the kernel, wait
 * until the file I/O in the kernel on those engines then has completed.
 *
 * The exiting thread neither reaps nor submits: it runs no callbacks (they belong to the threads in
 * poll/wait/run) and puts nothing new in the kernel that it would then have to wait for. It only
 * sleeps in the ring's io_uring_enter, which runs its task work (the completions the kernel
 * finishes in the submitting task's context), until every CQE those requests owe is in the CQ. So
 * a thread that is joined before anyone reaps cannot deadlock its joiner. Requests of other threads
 * complete through their own tasks, which run task work in any interruptible sleep (a
 * pthread_join included).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "exit_guard.h"

#include "engine.h"
#include "log.h"
#include "uring_sys.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

_Thread_local struct exit_guard auraio__exit_guard EXIT_GUARD_TLS_MODEL;

/* How long one sleep in the kernel lasts before the exiting thread looks again: a CQE it waits for
 * wakes it sooner; this bounds the look after another thread reaped what it waited for. */
#define EXIT_GUARD_POLL_MS 10
/* Engines an exiting thread that used more than EXIT_GUARD_ENGINES drains (every live one). */
#define EXIT_GUARD_LIVE_MAX 64

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t guard_key;
static bool key_ok;

static void thread_exit(void *arg);

static void key_init(void)
{
    key_ok = pthread_key_create(&guard_key, thread_exit) == 0;
}

void auraio__exit_guard_join(struct auraio_engine *e, uint64_t id)
{
    struct exit_guard *g = &auraio__exit_guard;
    g->last_engine_id = id;
    if (!e || id == 0)
        return; /* an SQPOLL ring, or a ring outside any engine (unit tests): nothing to drain */
    if (!g->armed) {
        pthread_once(&key_once, key_init);
        /* Without the key (PTHREAD_KEYS_MAX used up) the thread's exit cannot wait: say so, once
         * per thread and engine (last_engine_id is set already). */
        if (!key_ok || pthread_setspecific(guard_key, g) != 0) {
            auraio__log(AURAIO_LOG_WARN, "exit_guard_unavailable: no thread-specific key; a thread that exits with "
                                         "I/O in flight may lose it");
            return;
        }
        g->armed = true;
    }
    for (uint32_t i = 0; i < g->nengines; i++) {
        if (g->engines[i].id == id)
            return;
    }
    if (g->nengines == EXIT_GUARD_ENGINES) {
        g->many = true;
        return;
    }
    g->engines[g->nengines].engine = e;
    g->engines[g->nengines].id = id;
    g->nengines++;
}

/* Whether the exit must wait for a request: not for timers, nor for anything on a file that may
 * never complete on its own (pipes, sockets, character devices...): the kernel fails those with
 * -ECANCELED (6.18: when the file becomes ready; older kernels at the exit). */
static bool worth_waiting(struct auraio_engine *e, const struct ring_kernel_req *o)
{
    if (o->op == REQ_TIMEOUT)
        return false;
    if (o->op == REQ_OPENAT || o->op == REQ_STATX || o->op == REQ_MADVISE)
        return true; /* paths and memory, not an fd's file */
    int fd = o->fd;
    if (o->fixed_file) {
        fd = -1;
        if (!e->reg_lock_ready)
            return false;
        pthread_mutex_lock(&e->reg_lock);
        if (e->fixed_files && o->fd >= 0 && (uint32_t)o->fd < e->fixed_file_count)
            fd = e->fixed_files[o->fd];
        pthread_mutex_unlock(&e->reg_lock);
    }
    struct stat st;
    if (fd < 0 || auraio__sys_fstat(fd, &st) < 0)
        return false; /* cannot tell what it is: the kernel's rule applies */
    return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
}

/* Wait until the kernel has completed the file I/O in it on ring @p r now. */
static void drain_ring(struct auraio_engine *e, struct ring *r)
{
    int n = auraio__ring_in_kernel(r, NULL, 0);
    if (n == 0)
        return;
    struct ring_kernel_req *reqs = malloc((size_t)n * sizeof(*reqs));
    uint64_t *handles = malloc((size_t)n * sizeof(*handles));
    if (!reqs || !handles) {
        auraio__log(AURAIO_LOG_WARN, "exit_guard_unavailable: no memory to wait for %d requests at thread exit", n);
        free(reqs);
        free(handles);
        return;
    }
    /* Other threads may have entered more since: those are theirs to wait for. */
    int now = auraio__ring_in_kernel(r, reqs, n);
    if (now < n)
        n = now;
    int waited = 0;
    for (int i = 0; i < n; i++) {
        if (worth_waiting(e, &reqs[i]))
            handles[waited++] = reqs[i].handle;
    }
    for (;;) {
        unsigned ready;
        if (auraio__ring_cqes_owed(r, handles, waited, &ready) == 0)
            break;
        auraio__ring_wait_beyond(r, ready, EXIT_GUARD_POLL_MS);
    }
    free(reqs);
    free(handles);
}

static void drain_engine(struct auraio_engine *e)
{
    for (uint32_t i = 0; i < e->ring_count; i++)
        drain_ring(e, &e->rings[i]);
    auraio__engine_exit_release(e);
}

static void thread_exit(void *arg)
{
    struct exit_guard *g = arg;
    g->armed = false;
    if (g->many) {
        struct auraio_engine *live[EXIT_GUARD_LIVE_MAX];
        int n = auraio__engine_exit_hold_live(live, EXIT_GUARD_LIVE_MAX);
        for (int i = 0; i < n; i++)
            drain_engine(live[i]);
    } else {
        for (uint32_t i = 0; i < g->nengines; i++) {
            if (auraio__engine_exit_hold(g->engines[i].engine, g->engines[i].id))
                drain_engine(g->engines[i].engine);
        }
    }
    /* A destructor that runs later and enters again arms the key again (POSIX runs another round). */
    g->nengines = 0;
    g->many = false;
    g->last_engine_id = 0;
}
