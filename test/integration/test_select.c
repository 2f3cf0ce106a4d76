/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ring selection: where each mode puts I/O, read back from the per-ring stats (ops_completed,
 * pending_count, submissions_at_limit) and the engine's adaptive_spills counter.
 *  - CPU_LOCAL: a thread pinned to CPU c lands on ring c % rings, and never spills when congested.
 *  - ROUND_ROBIN: N * rings submissions, from one thread or several at once, give N per ring.
 *  - THREAD_LOCAL: all of a thread's I/O on one ring, distinct rings while rings >= threads, and
 *    the assignment does not survive destroy/create into a smaller engine.
 *  - ADAPTIVE: the rule in lib/engine.c (select_adaptive) and doc/architecture.md. The local ring
 *    is made congested deterministically with a fixed in-flight limit (disable_adaptive) and pipe
 *    reads that block until the test writes to the pipe: below the limit nothing spills; at the
 *    limit each submission spills while another ring has room; with every ring at its limit the
 *    submission stays local (backlog) and is not counted.
 *  - One ring, any mode: no hang, no spill.
 * Pinned work runs either on the main thread (affinity saved and restored) or on a helper thread
 * that stays alive until its I/O completed (the kernel cancels a task's I/O when it exits).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#if defined(AURAIO_HAVE_VALGRIND)
#include <valgrind/valgrind.h>
#endif

#define BLOCK 512
#define FILE_BLOCKS 256
#define SEED 11
#define MAX_RINGS 8

static int g_fd = -1; /* pattern file shared by every test */

/* ------------------------------------------------------------------------------------------- */
/* CPUs */

/* The CPUs this process may run on, in ascending order. @return how many. */
static int allowed_cpus(int *cpus, int max)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return 0;
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < max; c++) {
        if (CPU_ISSET(c, &set))
            cpus[n++] = c;
    }
    return n;
}

/* Pin the calling thread to @p cpu. @return the CPU it then runs on (-1 on failure). */
static int pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
        return -1;
    /* The kernel migrates a thread that narrows its own affinity before the call returns. */
    return sched_getcpu();
}

struct saved_affinity {
    cpu_set_t set;
};

static void save_affinity(struct saved_affinity *s)
{
    CPU_ZERO(&s->set);
    assert_int_equal(pthread_getaffinity_np(pthread_self(), sizeof(s->set), &s->set), 0);
}

static void restore_affinity(const struct saved_affinity *s)
{
    assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof(s->set), &s->set), 0);
}

/* ------------------------------------------------------------------------------------------- */
/* Engines and stats */

static auraio_engine_t *engine_with(int rings, int depth, int fixed_limit, auraio_ring_select_t mode)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = rings;
    o.queue_depth = depth;
    o.ring_select = mode;
    if (fixed_limit) {
        o.disable_adaptive = true;
        o.initial_in_flight = fixed_limit;
    }
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    assert_int_equal(auraio_get_ring_count(e), rings);
    return e;
}

static void ring_stats(auraio_engine_t *e, int ring, auraio_ring_stats_t *rs)
{
    assert_int_equal(auraio_get_ring_stats(e, ring, rs), 0);
}

static uint64_t ring_ops(auraio_engine_t *e, int ring)
{
    auraio_ring_stats_t rs;
    ring_stats(e, ring, &rs);
    return rs.ops_completed;
}

static int ring_pending(auraio_engine_t *e, int ring)
{
    auraio_ring_stats_t rs;
    ring_stats(e, ring, &rs);
    return rs.pending_count;
}

static uint64_t ring_at_limit(auraio_engine_t *e, int ring)
{
    auraio_ring_stats_t rs;
    ring_stats(e, ring, &rs);
    return rs.submissions_at_limit;
}

static uint64_t spills(auraio_engine_t *e)
{
    auraio_stats_t st;
    assert_int_equal(auraio_get_stats(e, &st), 0);
    return st.adaptive_spills;
}

static void snapshot_ops(auraio_engine_t *e, int rings, uint64_t *ops)
{
    for (int i = 0; i < rings; i++)
        ops[i] = ring_ops(e, i);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait until *counter >= target, polling with short waits: another thread may reap our
 * completions, so a long auraio_wait could sleep while our counter is already complete. */
static int wait_counter(auraio_engine_t *e, _Atomic int *counter, int target, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (atomic_load(counter) < target) {
        if (now_ms() >= end)
            return -ETIME;
        int rc = auraio_wait(e, 10);
        if (rc < 0 && rc != -ETIME)
            return rc;
#if defined(AURAIO_HAVE_VALGRIND)
        /* valgrind 3.19 runs no other thread while this one sleeps in io_uring_enter (1 ring),
         * and after each 10 ms there it goes on running this loop; sched_yield is where valgrind
         * hands over, so the thread that feeds the pipe gets to run before the deadline. */
        if (RUNNING_ON_VALGRIND)
            sched_yield();
#endif
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* A reader: submits n file reads (optionally pinned, optionally after a start barrier), waits
 * until its own callbacks ran, and reports; main asserts on what it reports. */

struct reader {
    auraio_engine_t *e;
    int n;
    int first_block;
    int cpu; /* -1: not pinned */
    pthread_barrier_t *start;
    /* out */
    int cpu_seen;
    int submit_errno; /* 0, or errno of the first failed submit */
    int wait_rc;
    struct recorder *rec;
    struct recorder_ctx *ctx;
    unsigned char *bufs;
};

static void reader_init(struct reader *r, auraio_engine_t *e, int n, int first_block, int cpu)
{
    memset(r, 0, sizeof(*r));
    assert_true(n <= RECORDER_MAX);
    r->e = e;
    r->n = n;
    r->first_block = first_block;
    r->cpu = cpu;
    r->cpu_seen = -1;
    r->rec = malloc(sizeof(*r->rec));
    r->ctx = calloc((size_t)n, sizeof(*r->ctx));
    r->bufs = calloc((size_t)n, BLOCK);
    assert_non_null(r->rec);
    assert_non_null(r->ctx);
    assert_non_null(r->bufs);
    recorder_init(r->rec);
}

static int reader_block(const struct reader *r, int i)
{
    return (r->first_block + i * 7) % FILE_BLOCKS;
}

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    if (r->cpu >= 0)
        r->cpu_seen = pin_self(r->cpu);
    if (r->start)
        pthread_barrier_wait(r->start);
    int submitted = 0;
    for (int i = 0; i < r->n; i++) {
        r->ctx[i] = (struct recorder_ctx){r->rec, i};
        int b = reader_block(r, i);
        if (!auraio_read(r->e, g_fd, auraio_buf(r->bufs + (size_t)i * BLOCK), BLOCK, (int64_t)b * BLOCK,
                         recorder_callback, &r->ctx[i])) {
            r->submit_errno = errno;
            break;
        }
        submitted++;
    }
    /* Stay alive until our I/O is done: the kernel cancels a task's requests when it exits. */
    r->wait_rc = wait_counter(r->e, &r->rec->total, submitted, 10000);
    return NULL;
}

static void run_reader(struct reader *r)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, reader_main, r), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

/* After the engine is destroyed: exactly-once, full-length results, data matches the pattern. */
static void reader_check_and_free(struct reader *r)
{
    assert_int_equal(r->submit_errno, 0);
    assert_int_equal(r->wait_rc, 0);
    recorder_assert_each_once(r->rec, r->n);
    for (int i = 0; i < r->n; i++) {
        assert_int_equal(atomic_load(&r->rec->results[i]), BLOCK);
        assert_int_equal(harness_check_pattern(r->bufs + (size_t)i * BLOCK, BLOCK,
                                               (uint64_t)reader_block(r, i) * BLOCK, SEED), -1);
    }
    free(r->rec);
    free(r->ctx);
    free(r->bufs);
}

/* ------------------------------------------------------------------------------------------- */
/* Blocked pipe reads: 1-byte reads that stay in flight until the test writes or cancels. */

struct pipe_reads {
    int p[2];
    struct recorder rec;
    struct recorder_ctx ctx[64];
    auraio_request_t *req[64];
    unsigned char buf[64];
    int n;
};

static void pipe_reads_init(struct pipe_reads *pr)
{
    memset(pr, 0, sizeof(*pr));
    assert_int_equal(pipe2(pr->p, O_CLOEXEC), 0);
    recorder_init(&pr->rec);
}

static void pipe_read_submit(auraio_engine_t *e, struct pipe_reads *pr)
{
    assert_true(pr->n < 64);
    int i = pr->n;
    pr->ctx[i] = (struct recorder_ctx){&pr->rec, i};
    pr->req[i] = auraio_read(e, pr->p[0], auraio_buf(&pr->buf[i]), 1, 0, recorder_callback, &pr->ctx[i]);
    assert_non_null(pr->req[i]);
    pr->n++;
}

/* Write one byte per submitted read, so every read (in flight or in a backlog) gets exactly one. */
static void pipe_reads_feed(struct pipe_reads *pr)
{
    char bytes[64];
    memset(bytes, 'x', sizeof(bytes));
    assert_int_equal(write(pr->p[1], bytes, (size_t)pr->n), pr->n);
}

static void pipe_reads_close(struct pipe_reads *pr)
{
    close(pr->p[0]);
    close(pr->p[1]);
}

/* ------------------------------------------------------------------------------------------- */
/* CPU_LOCAL */

/* For each CPU we may use, a fresh thread pinned there submits reads: they all complete on ring
 * cpu % rings and no other ring changes. Ring counts below, equal to and above the CPU count. */
static void test_cpu_local_lands_on_cpu_ring(void **state)
{
    (void)state;
    int cpus[64];
    int ncpu = allowed_cpus(cpus, 64);
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(ncpu >= 1);
    if (ncpu < 2)
        print_message("NOTE: only %d usable CPU (online: %ld): placement across CPUs cannot be "
                      "tested here; checking only that CPU %d's I/O lands on its ring and nowhere else\n",
                      ncpu, online, cpus[0]);
    int ring_counts[] = {1, ncpu, ncpu + 1};
    for (size_t k = 0; k < sizeof(ring_counts) / sizeof(ring_counts[0]); k++) {
        int rings = ring_counts[k] > MAX_RINGS ? MAX_RINGS : ring_counts[k];
        auraio_engine_t *e = engine_with(rings, 0, 0, AURAIO_SELECT_CPU_LOCAL);
        struct reader rd[64];
        int used = ncpu < 8 ? ncpu : 8;
        for (int c = 0; c < used; c++) {
            uint64_t before[MAX_RINGS], after[MAX_RINGS];
            snapshot_ops(e, rings, before);
            reader_init(&rd[c], e, 100, c * 3, cpus[c]);
            run_reader(&rd[c]);
            assert_int_equal(rd[c].cpu_seen, cpus[c]);
            snapshot_ops(e, rings, after);
            int want = cpus[c] % rings;
            for (int i = 0; i < rings; i++) {
                uint64_t delta = after[i] - before[i];
                if (delta != (i == want ? 100u : 0u))
                    fail_msg("%d rings, thread on CPU %d: ring %d completed %llu ops, expected %d", rings,
                             cpus[c], i, (unsigned long long)delta, i == want ? 100 : 0);
            }
        }
        assert_int_equal(spills(e), 0);
        auraio_destroy(e);
        for (int c = 0; c < used; c++)
            reader_check_and_free(&rd[c]);
    }
}

/* CPU_LOCAL never spills: a congested local ring takes the excess into its backlog. The blocked
 * reads are then left in flight for destroy, which must cancel them, each callback exactly once. */
static void test_cpu_local_never_spills(void **state)
{
    (void)state;
    int cpus[64];
    assert_true(allowed_cpus(cpus, 64) >= 1);
    struct saved_affinity aff;
    save_affinity(&aff);
    assert_int_equal(pin_self(cpus[0]), cpus[0]);

    const int limit = 2;
    auraio_engine_t *e = engine_with(2, 16, limit, AURAIO_SELECT_CPU_LOCAL);
    int local = cpus[0] % 2, other = 1 - local;
    static struct pipe_reads pr;
    pipe_reads_init(&pr);
    for (int i = 0; i < 2 * limit + 1; i++)
        pipe_read_submit(e, &pr);
    assert_int_equal(ring_pending(e, local), 2 * limit + 1);
    assert_int_equal(ring_pending(e, other), 0);
    assert_int_equal(ring_at_limit(e, local), (uint64_t)limit + 1);
    assert_int_equal(spills(e), 0);
    assert_int_equal(pr.rec.total, 0);

    auraio_destroy(e);
    recorder_assert_each_once(&pr.rec, pr.n);
    for (int i = 0; i < pr.n; i++)
        assert_int_equal(atomic_load(&pr.rec.results[i]), -ECANCELED);
    pipe_reads_close(&pr);
    restore_affinity(&aff);
}

/* ------------------------------------------------------------------------------------------- */
/* ROUND_ROBIN */

static void test_round_robin_even_single_thread(void **state)
{
    (void)state;
    const int rings = 3, per_ring = 40;
    auraio_engine_t *e = engine_with(rings, 0, 0, AURAIO_SELECT_ROUND_ROBIN);
    struct reader r;
    reader_init(&r, e, rings * per_ring, 0, -1);
    run_reader(&r);
    for (int i = 0; i < rings; i++)
        assert_int_equal(ring_ops(e, i), (uint64_t)per_ring);
    assert_int_equal(spills(e), 0);
    auraio_destroy(e);
    reader_check_and_free(&r);
}

/* Four threads at once: the rotation is one atomic counter, so the split stays exact. The depth
 * (256 per ring) exceeds everything in flight, so no submit fails and skips a turn. */
static void test_round_robin_even_many_threads(void **state)
{
    (void)state;
    enum { THREADS = 4, PER_THREAD = 48 };
    const int rings = 4;
    auraio_engine_t *e = engine_with(rings, 256, 0, AURAIO_SELECT_ROUND_ROBIN);
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, THREADS), 0);
    struct reader r[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        reader_init(&r[i], e, PER_THREAD, i * 17, -1);
        r[i].start = &start;
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < rings; i++)
        assert_int_equal(ring_ops(e, i), (uint64_t)(THREADS * PER_THREAD / rings));
    auraio_destroy(e);
    for (int i = 0; i < THREADS; i++)
        reader_check_and_free(&r[i]);
    pthread_barrier_destroy(&start);
}

/* ------------------------------------------------------------------------------------------- */
/* THREAD_LOCAL */

/* Threads one after another: each thread's reads all complete on one ring, a different ring for
 * each thread while there are rings left, then the assignment wraps around. */
static void test_thread_local_sequential(void **state)
{
    (void)state;
    enum { RINGS = 3, THREADS = 5 };
    auraio_engine_t *e = engine_with(RINGS, 0, 0, AURAIO_SELECT_THREAD_LOCAL);
    struct reader r[THREADS];
    int ring_of[THREADS];
    for (int t = 0; t < THREADS; t++) {
        uint64_t before[RINGS], after[RINGS];
        snapshot_ops(e, RINGS, before);
        reader_init(&r[t], e, 50 + t, t * 5, -1);
        run_reader(&r[t]);
        snapshot_ops(e, RINGS, after);
        ring_of[t] = -1;
        for (int i = 0; i < RINGS; i++) {
            uint64_t delta = after[i] - before[i];
            if (delta == 0)
                continue;
            if (ring_of[t] != -1 || delta != (uint64_t)(50 + t))
                fail_msg("thread %d: its %d reads were split across rings (ring %d: %llu)", t, 50 + t, i,
                         (unsigned long long)delta);
            ring_of[t] = i;
        }
        assert_int_not_equal(ring_of[t], -1);
        /* The first RINGS threads get distinct rings. */
        for (int u = 0; u < t && t < RINGS; u++)
            assert_int_not_equal(ring_of[u], ring_of[t]);
    }
    assert_int_equal(spills(e), 0);
    auraio_destroy(e);
    for (int t = 0; t < THREADS; t++)
        reader_check_and_free(&r[t]);
}

/* Threads at once, each with a different op count: the per-ring counts must be exactly those
 * counts, one thread per ring (a thread split over two rings, or two threads sharing one, shows). */
static void test_thread_local_concurrent(void **state)
{
    (void)state;
    enum { RINGS = 4, THREADS = 3 };
    static const int counts[THREADS] = {20, 45, 90};
    auraio_engine_t *e = engine_with(RINGS, 0, 0, AURAIO_SELECT_THREAD_LOCAL);
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, THREADS), 0);
    struct reader r[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        reader_init(&r[i], e, counts[i], i * 11, -1);
        r[i].start = &start;
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    bool seen[THREADS] = {false};
    int empty = 0;
    for (int i = 0; i < RINGS; i++) {
        uint64_t ops = ring_ops(e, i);
        if (ops == 0) {
            empty++;
            continue;
        }
        int match = -1;
        for (int k = 0; k < THREADS; k++) {
            if (!seen[k] && ops == (uint64_t)counts[k])
                match = k;
        }
        if (match < 0)
            fail_msg("ring %d completed %llu ops: not one thread's whole workload", i, (unsigned long long)ops);
        seen[match] = true;
    }
    assert_int_equal(empty, RINGS - THREADS);
    auraio_destroy(e);
    for (int i = 0; i < THREADS; i++)
        reader_check_and_free(&r[i]);
    pthread_barrier_destroy(&start);
}

/* A thread's ring assignment is per engine: after it used ring 3 of a 4-ring engine, destroying
 * that engine and creating a 1-ring one must not send its I/O to a ring that no longer exists
 * (ASan would see the out-of-bounds ring; without it the I/O would not show on ring 0). */
static void test_thread_local_does_not_survive_destroy(void **state)
{
    (void)state;
    auraio_engine_t *e = engine_with(4, 0, 0, AURAIO_SELECT_THREAD_LOCAL);
    /* Three helper threads take rings 0..2, so the main thread gets ring 3. */
    struct reader helpers[3];
    for (int i = 0; i < 3; i++) {
        reader_init(&helpers[i], e, 1, i, -1);
        run_reader(&helpers[i]);
    }
    struct recorder *rec = malloc(sizeof(*rec));
    assert_non_null(rec);
    recorder_init(rec);
    unsigned char buf[BLOCK];
    struct recorder_ctx ctx0 = {rec, 0}, ctx1 = {rec, 1};
    assert_non_null(auraio_read(e, g_fd, auraio_buf(buf), BLOCK, 0, recorder_callback, &ctx0));
    assert_int_equal(wait_counter(e, &rec->total, 1, 5000), 0);
    assert_int_equal(ring_ops(e, 3), 1);
    auraio_destroy(e);
    for (int i = 0; i < 3; i++)
        reader_check_and_free(&helpers[i]);

    e = engine_with(1, 0, 0, AURAIO_SELECT_THREAD_LOCAL);
    assert_non_null(auraio_read(e, g_fd, auraio_buf(buf), BLOCK, BLOCK, recorder_callback, &ctx1));
    assert_int_equal(wait_counter(e, &rec->total, 2, 5000), 0);
    assert_int_equal(ring_ops(e, 0), 1);
    auraio_destroy(e);
    recorder_assert_each_once(rec, 2);
    assert_int_equal(atomic_load(&rec->results[1]), BLOCK);
    assert_int_equal(harness_check_pattern(buf, BLOCK, BLOCK, SEED), -1);
    free(rec);
}

/* ------------------------------------------------------------------------------------------- */
/* ADAPTIVE */

/* Two rings, fixed limit L, main thread pinned (local ring = cpu % 2):
 *  1. file reads in batches of exactly L (the last one of a batch sees room 1): all local, no spill;
 *  2. L blocked pipe reads fill the local ring to its limit: still no spill;
 *  3. L more: each finds the local ring at its limit and the other ring with room: each spills;
 *  4. 2 more: both rings at their limit: they stay local, in the backlog, and are not counted;
 *  5. one byte per read: every read, backlog included, completes with 1 byte. */
static void test_adaptive_spill_rule(void **state)
{
    (void)state;
    int cpus[64];
    assert_true(allowed_cpus(cpus, 64) >= 1);
    struct saved_affinity aff;
    save_affinity(&aff);
    assert_int_equal(pin_self(cpus[0]), cpus[0]);

    enum { L = 4 };
    auraio_engine_t *e = engine_with(2, 32, L, AURAIO_SELECT_ADAPTIVE);
    int local = cpus[0] % 2, other = 1 - local;
    auraio_ring_stats_t rs;
    ring_stats(e, local, &rs);
    assert_int_equal(rs.in_flight_limit, L);

    /* 1 */
    struct recorder *rec = malloc(sizeof(*rec));
    assert_non_null(rec);
    recorder_init(rec);
    static struct recorder_ctx ctx[40 * L];
    static unsigned char bufs[40 * L][BLOCK];
    int n = 0;
    for (int batch = 0; batch < 40; batch++) {
        for (int j = 0; j < L; j++, n++) {
            ctx[n] = (struct recorder_ctx){rec, n};
            assert_non_null(auraio_read(e, g_fd, auraio_buf(bufs[n]), BLOCK, (int64_t)(n % FILE_BLOCKS) * BLOCK,
                                        recorder_callback, &ctx[n]));
        }
        assert_int_equal(spills(e), 0);
        assert_int_equal(wait_counter(e, &rec->total, n, 5000), 0);
    }
    assert_int_equal(ring_ops(e, local), (uint64_t)n);
    assert_int_equal(ring_ops(e, other), 0);
    assert_int_equal(ring_at_limit(e, local), 0);

    /* 2 */
    static struct pipe_reads pr;
    pipe_reads_init(&pr);
    for (int i = 0; i < L; i++) {
        pipe_read_submit(e, &pr);
        assert_int_equal(spills(e), 0);
    }
    assert_int_equal(ring_pending(e, local), L);
    assert_int_equal(ring_pending(e, other), 0);

    /* 3 */
    for (int i = 0; i < L; i++) {
        pipe_read_submit(e, &pr);
        assert_int_equal(spills(e), (uint64_t)i + 1);
        assert_int_equal(ring_pending(e, other), i + 1);
        assert_int_equal(ring_pending(e, local), L);
    }

    /* 4 */
    for (int i = 0; i < 2; i++)
        pipe_read_submit(e, &pr);
    assert_int_equal(spills(e), (uint64_t)L);
    assert_int_equal(ring_pending(e, local), L + 2);
    assert_int_equal(ring_pending(e, other), L);
    assert_int_equal(ring_at_limit(e, local), 2);
    assert_int_equal(ring_at_limit(e, other), 0);
    assert_int_equal(pr.rec.total, 0);

    /* 5 */
    pipe_reads_feed(&pr);
    assert_int_equal(wait_counter(e, &pr.rec.total, pr.n, 10000), 0);
    assert_int_equal(ring_ops(e, other), (uint64_t)L);
    assert_int_equal(ring_ops(e, local), (uint64_t)(n + L + 2));
    assert_int_equal(auraio_pending_count(e), 0);
    assert_int_equal(spills(e), (uint64_t)L);

    auraio_destroy(e);
    recorder_assert_each_once(rec, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(atomic_load(&rec->results[i]), BLOCK);
        assert_int_equal(harness_check_pattern(bufs[i], BLOCK, (uint64_t)(i % FILE_BLOCKS) * BLOCK, SEED), -1);
    }
    recorder_assert_each_once(&pr.rec, pr.n);
    for (int i = 0; i < pr.n; i++) {
        assert_int_equal(atomic_load(&pr.rec.results[i]), 1);
        assert_int_equal(pr.buf[i], 'x');
    }
    pipe_reads_close(&pr);
    free(rec);
    restore_affinity(&aff);
}

/* Four rings: with the local ring at its limit and three idle rings, the next submission must
 * spill (both random candidates have room) to exactly one non-local ring. Cancelled afterwards:
 * every cancel is issued (0) and every read ends -ECANCELED, exactly once. */
static void test_adaptive_spills_with_many_rings(void **state)
{
    (void)state;
    int cpus[64];
    assert_true(allowed_cpus(cpus, 64) >= 1);
    struct saved_affinity aff;
    save_affinity(&aff);
    assert_int_equal(pin_self(cpus[0]), cpus[0]);

    enum { L = 3, RINGS = 4 };
    auraio_engine_t *e = engine_with(RINGS, 16, L, AURAIO_SELECT_ADAPTIVE);
    int local = cpus[0] % RINGS;
    static struct pipe_reads pr;
    pipe_reads_init(&pr);
    for (int i = 0; i < L; i++)
        pipe_read_submit(e, &pr);
    assert_int_equal(spills(e), 0);
    pipe_read_submit(e, &pr);
    assert_int_equal(spills(e), 1);
    assert_int_equal(ring_pending(e, local), L);
    int elsewhere = 0;
    for (int i = 0; i < RINGS; i++) {
        if (i != local)
            elsewhere += ring_pending(e, i);
    }
    assert_int_equal(elsewhere, 1);

    for (int i = 0; i < pr.n; i++)
        assert_int_equal(auraio_cancel(e, pr.req[i]), 0);
    assert_int_equal(wait_counter(e, &pr.rec.total, pr.n, 10000), 0);
    assert_int_equal(auraio_pending_count(e), 0);
    auraio_destroy(e);
    recorder_assert_each_once(&pr.rec, pr.n);
    for (int i = 0; i < pr.n; i++)
        assert_int_equal(atomic_load(&pr.rec.results[i]), -ECANCELED);
    pipe_reads_close(&pr);
    restore_affinity(&aff);
}

/* ADAPTIVE under the controller: one thread pinned to one CPU that keeps auraio_capacity() reads
 * outstanding uses its own ring only. The local ring's limit is its share of the group's depth,
 * which follows demand, so a request that finds it full queues there instead of spilling (spills
 * made one thread's demand look like two rings' and kept both half full). auraio_capacity() is the
 * controller's depth minus everything pending, so the thread never has more pending than the
 * engine's limit, though the other ring always shows room, and once the split has moved to its
 * ring its submissions go straight to the kernel. */
struct closed_loop {
    int done, errors;
};

static void closed_loop_cb(auraio_request_t *req, ssize_t result, void *user_data)
{
    (void)req;
    struct closed_loop *c = user_data;
    c->done++;
    if (result != BLOCK)
        c->errors++;
}

static void test_adaptive_controller_keeps_one_thread_on_one_ring(void **state)
{
    (void)state;
    int cpus[64];
    assert_true(allowed_cpus(cpus, 64) >= 1);
    struct saved_affinity aff;
    save_affinity(&aff);
    assert_int_equal(pin_self(cpus[0]), cpus[0]);
    enum { RINGS = 2, TOTAL = 20000 };
    /* Queue depth 4096: the controller's depth stays far below a ring's largest limit. */
    auraio_engine_t *e = engine_with(RINGS, 4096, 0, AURAIO_SELECT_ADAPTIVE);
    int local = cpus[0] % RINGS;
    static unsigned char buf[BLOCK];
    struct closed_loop c = {0, 0};
    int submitted = 0, worst_excess = 0;
    while (submitted < TOTAL) {
        for (; auraio_capacity(e) > 0 && submitted < TOTAL; submitted++)
            assert_non_null(auraio_read(e, g_fd, auraio_buf(buf), BLOCK,
                                        (int64_t)(submitted % FILE_BLOCKS) * BLOCK, closed_loop_cb, &c));
        auraio_stats_t st;
        assert_int_equal(auraio_get_stats(e, &st), 0);
        if (st.pending_count - st.in_flight_limit > worst_excess)
            worst_excess = st.pending_count - st.in_flight_limit;
        assert_true(auraio_wait(e, 1000) >= 0);
    }
    while (c.done < submitted)
        assert_true(auraio_wait(e, 1000) >= 0);
    assert_int_equal(c.errors, 0);
    uint64_t on_local = ring_ops(e, local), elsewhere = ring_ops(e, 1 - local);
    print_message("one thread, ADAPTIVE + controller: %llu ops on its ring, %llu on the other, %llu spills, "
                  "%llu queued at the limit, pending at most %d beyond the limit\n", (unsigned long long)on_local,
                  (unsigned long long)elsewhere, (unsigned long long)spills(e),
                  (unsigned long long)ring_at_limit(e, local), worst_excess);
    assert_int_equal(on_local + elsewhere, (uint64_t)TOTAL);
    assert_true(elsewhere * 50 <= (uint64_t)TOTAL); /* the other ring's minimum share only */
    /* The idle ring's limit of 1 is not room: counted, one request of every batch waited in the
     * backlog (pending one beyond the limit). */
    assert_int_equal(worst_excess, 0);
    auraio_destroy(e);
    restore_affinity(&aff);
}

/* Threads on different CPUs under ADAPTIVE with the local ring never congested (one read in
 * flight per thread, limit 8): each thread's reads land on its own CPU's ring, zero spills. */
static void test_adaptive_stays_local_without_congestion(void **state)
{
    (void)state;
    int cpus[64];
    int ncpu = allowed_cpus(cpus, 64);
    assert_true(ncpu >= 1);
    if (ncpu < 2)
        print_message("NOTE: only %d usable CPU: ADAPTIVE locality checked on CPU %d only\n", ncpu, cpus[0]);
    int used = ncpu < 8 ? ncpu : 8;
    auraio_engine_t *e = engine_with(used, 32, 8, AURAIO_SELECT_ADAPTIVE);
    for (int c = 0; c < used; c++) {
        uint64_t before[MAX_RINGS], after[MAX_RINGS];
        snapshot_ops(e, used, before);
        /* reader_main submits all 8 at once: exactly the limit, never beyond. */
        struct reader r;
        reader_init(&r, e, 8, c, cpus[c]);
        run_reader(&r);
        assert_int_equal(r.cpu_seen, cpus[c]);
        snapshot_ops(e, used, after);
        for (int i = 0; i < used; i++)
            assert_int_equal(after[i] - before[i], i == cpus[c] % used ? 8u : 0u);
        reader_check_and_free(&r);
    }
    assert_int_equal(spills(e), 0);
    auraio_destroy(e);
}

/* ------------------------------------------------------------------------------------------- */
/* One ring */

/* One ring, each mode, a limit of 2 and 8 slots: three threads' reads plus blocked pipe reads in
 * the backlog all complete; nothing hangs, nothing spills. */
static void test_single_ring_every_mode(void **state)
{
    (void)state;
    static const auraio_ring_select_t modes[] = {AURAIO_SELECT_ADAPTIVE, AURAIO_SELECT_CPU_LOCAL,
                                                 AURAIO_SELECT_ROUND_ROBIN, AURAIO_SELECT_THREAD_LOCAL};
    for (size_t m = 0; m < 4; m++) {
        auraio_engine_t *e = engine_with(1, 64, 2, modes[m]);
        static struct pipe_reads pr;
        pipe_reads_init(&pr);
        for (int i = 0; i < 4; i++)
            pipe_read_submit(e, &pr); /* 2 in the kernel, 2 in the backlog */
        assert_int_equal(ring_pending(e, 0), 4);
        struct reader r[3];
        pthread_t t[3];
        for (int i = 0; i < 3; i++) {
            reader_init(&r[i], e, 15, i * 9, -1);
            assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
        }
        /* The readers queue behind the blocked reads; feed the pipe so the ring drains. */
        pipe_reads_feed(&pr);
        for (int i = 0; i < 3; i++)
            assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(wait_counter(e, &pr.rec.total, pr.n, 10000), 0);
        assert_int_equal(ring_ops(e, 0), 4u + 45u);
        assert_int_equal(auraio_pending_count(e), 0);
        assert_int_equal(spills(e), 0);
        auraio_destroy(e);
        recorder_assert_each_once(&pr.rec, pr.n);
        for (int i = 0; i < pr.n; i++)
            assert_int_equal(atomic_load(&pr.rec.results[i]), 1);
        for (int i = 0; i < 3; i++)
            reader_check_and_free(&r[i]);
        pipe_reads_close(&pr);
    }
}

int main(void)
{
    harness_require_io_uring();
    g_fd = harness_pattern_file((size_t)FILE_BLOCKS * BLOCK, SEED);
    if (g_fd < 0) {
        printf("ERROR: cannot create the pattern file: %s\n", strerror(-g_fd));
        return 99;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_local_lands_on_cpu_ring),
        cmocka_unit_test(test_cpu_local_never_spills),
        cmocka_unit_test(test_round_robin_even_single_thread),
        cmocka_unit_test(test_round_robin_even_many_threads),
        cmocka_unit_test(test_thread_local_sequential),
        cmocka_unit_test(test_thread_local_concurrent),
        cmocka_unit_test(test_thread_local_does_not_survive_destroy),
        cmocka_unit_test(test_adaptive_spill_rule),
        cmocka_unit_test(test_adaptive_spills_with_many_rings),
        cmocka_unit_test(test_adaptive_controller_keeps_one_thread_on_one_ring),
        cmocka_unit_test(test_adaptive_stays_local_without_congestion),
        cmocka_unit_test(test_single_ring_every_mode),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    close(g_fd);
    return rc;
}
