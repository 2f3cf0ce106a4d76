/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Waiting on an engine of two rings while only one of them has I/O: the waiting thread (the
 * leader) sleeps inside that ring's io_uring_enter, as on a one-ring engine, and whatever makes the
 * other ring busy, or a stop, must wake it there (lib/engine.c, "Waiting"; doc/architecture.md).
 *
 * Ring 0 holds a pipe read that completes only when the test ends; a second thread, bound to
 * ring 1 (AURAIO_SELECT_THREAD_LOCAL), submits to that idle ring. Where the waiting thread sleeps
 * is read from /proc/self/task/TID/syscall (the system call a blocked thread is in): in
 * io_uring_enter before ring 1 gets its request, in poll() (two rings with I/O) once woken. The
 * waiter uses wait(-1) or run(), with no timeout, and no submission here is refused (the only case
 * of the 1 ms retry), so no timer can hide a lost wake-up: it shows as a thread that stays in
 * io_uring_enter, or a completion that never comes, caught by the watchdog (WATCHDOG_MS). The
 * delivery times are also held to a median far below 1 ms. Nothing sleeps to synchronise.
 *
 * Under valgrind (3.19) no other thread runs while one sleeps in io_uring_enter (see
 * test_waiters.c), which every case here relies on: they are skipped there, saying so.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#if defined(AURAIO_HAVE_VALGRIND)
#include <valgrind/valgrind.h>
#endif

#define WATCHDOG_MS 1000
/* The retry period of a refused submission, the only timer a waiter without a timeout has: a
 * median delivery this slow would mean the wake-ups were not what delivered. */
#define MEDIAN_LIMIT_NS 1000000ull
#define FILE_BLOCKS 64
#define MAX_ITERATIONS 100000

static int iterations(void)
{
    /* AURAIO_WAIT_RINGS_ITERATIONS lets a developer run longer. */
    const char *s = getenv("AURAIO_WAIT_RINGS_ITERATIONS");
    int n = s ? atoi(s) : 0;
    return n > 0 && n <= MAX_ITERATIONS ? n : 200;
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* A hung thread cannot be joined: report and leave the process at once. */
static void watchdog_fired(const char *what, int iteration)
{
    fprintf(stderr, "FAIL: %s within %d ms (iteration %d)\n", what, WATCHDOG_MS, iteration);
    fflush(stderr);
    _exit(1);
}

/* ------------------------------------------------------------------------------------------- */
/* Where a thread is blocked */

/* The system call thread @p tid is blocked in; -1 when it is running or blocked outside one. */
static long blocked_syscall(pid_t tid)
{
    char path[64], text[32] = {0};
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    if (strncmp(text, "running", 7) == 0)
        return -1;
    return strtol(text, NULL, 10);
}

static bool in_ring(long nr)
{
    return nr == SYS_io_uring_enter;
}

static bool in_poll(long nr)
{
#ifdef SYS_poll
    if (nr == SYS_poll)
        return true;
#endif
    return nr == SYS_ppoll;
}

/* Until thread @p tid is blocked in a system call @p where accepts, at most WATCHDOG_MS. */
static bool blocked_in(pid_t tid, bool (*where)(long))
{
    uint64_t deadline = now_ns() + (uint64_t)WATCHDOG_MS * 1000000ull;
    while (!where(blocked_syscall(tid))) {
        if (now_ns() > deadline)
            return false;
        sched_yield();
    }
    return true;
}

/* ------------------------------------------------------------------------------------------- */
/* The engine, the waiter and the thread that submits to ring 1 */

enum job { JOB_NONE, JOB_FILE_READ, JOB_PIPE_READ, JOB_TIMER, JOB_QUIT };

struct rig {
    auraio_engine_t *e;
    int fd;      /* a pattern file: its reads complete at once (page cache) */
    int pipe[2]; /* ring 0's pipe read, and ring 1's in the pipe case */
    int ring0_pipe[2];
    char ring0_byte;
    _Atomic long ring0_sum;
    /* the waiter */
    pthread_t waiter;
    _Atomic pid_t waiter_tid;
    _Atomic bool quit;
    bool runs; /* auraio_run instead of wait(-1) */
    sem_t run_go, run_returned;
    _Atomic int run_rc;
    /* the submitter (ring 1) */
    pthread_t submitter;
    sem_t job_go, job_submitted;
    _Atomic int job;
    _Atomic int submit_failures;
    /* completions of ring 1's requests */
    sem_t done;
    _Atomic uint64_t submitted_ns, done_ns;
    _Atomic long bad_results;
    char buf[FILE_BLOCKS][4096];
    char pbyte;
    int block;
};

static void ring1_cb(auraio_request_t *req, ssize_t result, void *user_data)
{
    (void)req;
    struct rig *g = user_data;
    int job = atomic_load(&g->job);
    ssize_t want = job == JOB_FILE_READ ? 4096 : job == JOB_PIPE_READ ? 1 : 0;
    if (result != want)
        atomic_fetch_add(&g->bad_results, 1);
    atomic_store(&g->done_ns, now_ns());
    sem_post(&g->done);
}

static void ring0_cb(auraio_request_t *req, ssize_t result, void *user_data)
{
    (void)req;
    struct rig *g = user_data;
    atomic_fetch_add(&g->ring0_sum, result == 1 ? 1 : 1000000);
}

static void *submitter_main(void *arg)
{
    struct rig *g = arg;
    for (;;) {
        sem_wait(&g->job_go);
        int job = atomic_load(&g->job);
        if (job == JOB_QUIT)
            return NULL;
        atomic_store(&g->submitted_ns, now_ns());
        auraio_request_t *q = NULL;
        if (job == JOB_FILE_READ) {
            int b = g->block++ % FILE_BLOCKS;
            q = auraio_read(g->e, g->fd, auraio_buf(g->buf[b]), 4096, (int64_t)b * 4096, ring1_cb, g);
        } else if (job == JOB_PIPE_READ) {
            q = auraio_read(g->e, g->pipe[0], auraio_buf(&g->pbyte), 1, 0, ring1_cb, g);
        } else {
            q = auraio_timeout(g->e, 1000, ring1_cb, g); /* 1 us: a timer, the general path */
        }
        if (!q)
            atomic_fetch_add(&g->submit_failures, 1);
        sem_post(&g->job_submitted);
    }
}

static void *waiter_main(void *arg)
{
    struct rig *g = arg;
    atomic_store(&g->waiter_tid, (pid_t)syscall(SYS_gettid));
    if (!g->runs) {
        while (!atomic_load(&g->quit))
            auraio_wait(g->e, -1);
        return NULL;
    }
    for (;;) {
        sem_wait(&g->run_go);
        if (atomic_load(&g->quit))
            return NULL;
        int rc = auraio_run(g->e);
        if (rc != 0)
            atomic_store(&g->run_rc, rc);
        sem_post(&g->run_returned);
    }
}

static void ring_pending(struct rig *g, int *r0, int *r1)
{
    auraio_ring_stats_t s;
    assert_int_equal(auraio_get_ring_stats(g->e, 0, &s), 0);
    *r0 = s.pending_count;
    assert_int_equal(auraio_get_ring_stats(g->e, 1, &s), 0);
    *r1 = s.pending_count;
}

/* Two rings, ring 0 busy with a pipe read (this thread's ring), ring 1 the submitter's. */
static void rig_start(struct rig *g, bool runs)
{
    memset(g, 0, sizeof(*g));
    g->runs = runs;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 2;
    o.queue_depth = 64;
    o.ring_select = AURAIO_SELECT_THREAD_LOCAL;
    g->e = auraio_create_with_options(&o);
    assert_non_null(g->e);
    g->fd = harness_pattern_file(FILE_BLOCKS * 4096, 11);
    assert_true(g->fd >= 0);
    assert_int_equal(pipe(g->pipe), 0);
    assert_int_equal(pipe(g->ring0_pipe), 0);
    assert_int_equal(sem_init(&g->run_go, 0, 0), 0);
    assert_int_equal(sem_init(&g->run_returned, 0, 0), 0);
    assert_int_equal(sem_init(&g->job_go, 0, 0), 0);
    assert_int_equal(sem_init(&g->job_submitted, 0, 0), 0);
    assert_int_equal(sem_init(&g->done, 0, 0), 0);
    /* This thread is the first to submit: ring 0. */
    assert_non_null(auraio_read(g->e, g->ring0_pipe[0], auraio_buf(&g->ring0_byte), 1, 0, ring0_cb, g));
    int r0, r1;
    ring_pending(g, &r0, &r1);
    assert_int_equal(r0, 1);
    assert_int_equal(r1, 0);
    assert_int_equal(pthread_create(&g->submitter, NULL, submitter_main, g), 0);
    assert_int_equal(pthread_create(&g->waiter, NULL, waiter_main, g), 0);
    while (atomic_load(&g->waiter_tid) == 0)
        sched_yield();
}

/* Ask the submitter for @p job and wait until it has submitted. */
static void submit_on_ring1(struct rig *g, enum job job, int it)
{
    atomic_store(&g->job, job);
    sem_post(&g->job_go);
    if (!harness_sem_wait_ms(&g->job_submitted, WATCHDOG_MS))
        watchdog_fired("the submitter did not submit", it);
    assert_int_equal(atomic_load(&g->submit_failures), 0);
}

static void rig_stop(struct rig *g)
{
    atomic_store(&g->job, JOB_QUIT);
    sem_post(&g->job_go);
    pthread_join(g->submitter, NULL);
    /* Release the waiter: ring 0's pipe read completes, then it sees the quit flag. */
    atomic_store(&g->quit, true);
    if (g->runs) {
        sem_post(&g->run_go);
    } else {
        assert_int_equal(write(g->ring0_pipe[1], "x", 1), 1);
    }
    pthread_join(g->waiter, NULL);
    if (g->runs)
        assert_int_equal(write(g->ring0_pipe[1], "x", 1), 1);
    for (int tries = 0; atomic_load(&g->ring0_sum) < 1 && tries < 10; tries++)
        auraio_wait(g->e, WATCHDOG_MS / 10);
    assert_int_equal(atomic_load(&g->ring0_sum), 1);
    assert_int_equal(atomic_load(&g->bad_results), 0);
    assert_int_equal(auraio_pending_count(g->e), 0);
    auraio_destroy(g->e);
    close(g->fd);
    close(g->pipe[0]);
    close(g->pipe[1]);
    close(g->ring0_pipe[0]);
    close(g->ring0_pipe[1]);
    sem_destroy(&g->run_go);
    sem_destroy(&g->run_returned);
    sem_destroy(&g->job_go);
    sem_destroy(&g->job_submitted);
    sem_destroy(&g->done);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void assert_median_below(uint64_t *ns, int n, const char *what)
{
    qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
    print_message("%s: median %.1f us, max %.1f us over %d\n", what, (double)ns[n / 2] / 1e3,
                  (double)ns[n - 1] / 1e3, n);
    if (ns[n / 2] >= MEDIAN_LIMIT_NS)
        fail_msg("%s: median %llu ns, not below %llu", what, (unsigned long long)ns[n / 2], MEDIAN_LIMIT_NS);
}

static bool skip_under_valgrind(void)
{
#if defined(AURAIO_HAVE_VALGRIND)
    if (RUNNING_ON_VALGRIND) {
        print_message("SKIP: under valgrind no other thread runs while one sleeps in io_uring_enter\n");
        return true;
    }
#endif
    return false;
}

/* A timed case: skipped under valgrind, the rig started, room for iterations() latencies. */
static uint64_t *timed_start(struct rig *g, bool run, int *n)
{
    if (skip_under_valgrind())
        skip();
    rig_start(g, run);
    *n = iterations();
    uint64_t *lat = calloc((size_t)*n, sizeof(*lat));
    assert_non_null(lat);
    return lat;
}

static void timed_end(struct rig *g, uint64_t *lat, int n, const char *what)
{
    assert_median_below(lat, n, what);
    free(lat);
    rig_stop(g);
}

/* ------------------------------------------------------------------------------------------- */
/* The cases */

/* The leader sleeps in ring 0; a read submitted to idle ring 1 from another thread (completing at
 * once, from the page cache) is delivered by it, promptly. Then a timer (the general submit path). */
static void test_submit_to_idle_ring_wakes_leader_in_busy_ring(void **state)
{
    (void)state;
    static struct rig g;
    int n;
    uint64_t *lat = timed_start(&g, false, &n);
    for (int it = 0; it < n; it++) {
        if (!blocked_in(atomic_load(&g.waiter_tid), in_ring))
            watchdog_fired("the waiter did not sleep in ring 0's io_uring_enter", it);
        submit_on_ring1(&g, it % 2 ? JOB_TIMER : JOB_FILE_READ, it);
        if (!harness_sem_wait_ms(&g.done, WATCHDOG_MS))
            watchdog_fired("ring 1's completion was not delivered by the waiter asleep in ring 0", it);
        lat[it] = atomic_load(&g.done_ns) - atomic_load(&g.submitted_ns);
    }
    timed_end(&g, lat, n, "submit to ring 1 -> callback on the waiter");
}

/* The same with a pipe read on ring 1: the leader must leave ring 0 at the submission (not at a
 * completion: there is none yet), sleep in poll() over both rings, and deliver the byte. */
static void test_leader_leaves_ring_when_another_ring_gets_io(void **state)
{
    (void)state;
    static struct rig g;
    int n;
    uint64_t *lat = timed_start(&g, false, &n);
    for (int it = 0; it < n; it++) {
        pid_t tid = atomic_load(&g.waiter_tid);
        if (!blocked_in(tid, in_ring))
            watchdog_fired("the waiter did not sleep in ring 0's io_uring_enter", it);
        submit_on_ring1(&g, JOB_PIPE_READ, it);
        int r0, r1;
        ring_pending(&g, &r0, &r1);
        assert_int_equal(r1, 1);
        if (!blocked_in(tid, in_poll))
            watchdog_fired("the waiter did not leave ring 0 for poll() once ring 1 had I/O", it);
        uint64_t t0 = now_ns();
        assert_int_equal(write(g.pipe[1], "y", 1), 1);
        if (!harness_sem_wait_ms(&g.done, WATCHDOG_MS))
            watchdog_fired("ring 1's pipe read was not delivered", it);
        lat[it] = atomic_load(&g.done_ns) - t0;
    }
    timed_end(&g, lat, n, "pipe write -> ring 1's callback on the waiter");
}

/* auraio_run sleeping in ring 0 of two rings: a stop ends it. */
static void test_stop_wakes_run_asleep_in_ring(void **state)
{
    (void)state;
    static struct rig g;
    int n;
    uint64_t *lat = timed_start(&g, true, &n);
    for (int it = 0; it < n; it++) {
        sem_post(&g.run_go);
        if (!blocked_in(atomic_load(&g.waiter_tid), in_ring))
            watchdog_fired("auraio_run did not sleep in ring 0's io_uring_enter", it);
        uint64_t t0 = now_ns();
        assert_int_equal(auraio_stop(g.e), 0);
        if (!harness_sem_wait_ms(&g.run_returned, WATCHDOG_MS))
            watchdog_fired("auraio_run asleep in ring 0 did not return after auraio_stop", it);
        lat[it] = now_ns() - t0;
    }
    assert_int_equal(atomic_load(&g.run_rc), 0);
    timed_end(&g, lat, n, "auraio_stop -> auraio_run returned");
}

/* No waiting for the leader to be asleep: submissions to idle ring 1 land at every point of its
 * way into ring 0 (checking, entering, asleep, waking), and each must still be delivered. */
static void test_submissions_racing_the_leader_into_its_ring(void **state)
{
    (void)state;
    if (skip_under_valgrind())
        skip();
    static struct rig g;
    rig_start(&g, false);
    int n = iterations() * 10;
    for (int it = 0; it < n; it++) {
        submit_on_ring1(&g, it % 3 == 2 ? JOB_TIMER : JOB_FILE_READ, it);
        if (!harness_sem_wait_ms(&g.done, WATCHDOG_MS))
            watchdog_fired("ring 1's completion, submitted while the waiter went to sleep, was not delivered", it);
    }
    rig_stop(&g);
}

int main(void)
{
    harness_require_io_uring();
    if (getenv("AURAIO_TEST_FILTER"))
        cmocka_set_test_filter(getenv("AURAIO_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_to_idle_ring_wakes_leader_in_busy_ring),
        cmocka_unit_test(test_leader_leaves_ring_when_another_ring_gets_io),
        cmocka_unit_test(test_stop_wakes_run_asleep_in_ring),
        cmocka_unit_test(test_submissions_racing_the_leader_into_its_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
