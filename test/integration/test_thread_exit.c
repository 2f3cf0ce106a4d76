/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The thread-exit guard (auraio.h, "Thread lifetime"). The kernel ties a request to the thread
 * whose io_uring_enter handed it over; when that thread exits, a buffered read still waiting for
 * the page cache fails with -EFAULT (its retry runs as task work of a task that is gone) and work
 * queued to the thread's io-wq is cancelled. The library makes a thread's exit wait for the file
 * I/O its enters put in flight, so here:
 *  - a worker submits cold-cache reads and exits at once: every read succeeds, exactly once;
 *  - a worker's wait enters the main thread's backlogged reads (the in-flight limit holds them),
 *    then exits: every read succeeds, exactly once;
 *  - a worker that entered on more engines than it remembers: every read succeeds, exactly once;
 *  - the engine is destroyed while such a worker is exiting: each callback once, a success or
 *    -ECANCELED, never -EFAULT, and nothing is used after it was freed (ASan);
 *  - a worker whose pipe read has nothing to read still exits promptly; the read fails with
 *    -ECANCELED (the kernel's rule for pollable files, which the guard leaves alone).
 * The reads are made cold with fdatasync + POSIX_FADV_DONTNEED before each round, and mincore says
 * whether that worked; without it (a tmpfs temp dir) the file is made in the working directory.
 * Seen to fail with the guard disabled (owner_note made a no-op): "Bad address" results in the
 * first two cases within a few rounds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define BLOCK 4096
#define FILE_BLOCKS 4096 /* 16 MiB */
#define READS 64         /* per round */
#define ROUNDS 30
#define WATCHDOG_MS 10000
#define SEED 11

struct read_op {
    struct shared *s;
    int block;
    _Atomic int calls;
    _Atomic long result;
    unsigned char *buf;
};

struct shared {
    auraio_engine_t *e;
    int fd;
    _Atomic int done;
    struct read_op ops[READS];
    unsigned char *bufs;
    sem_t submitted;
};

static int test_fd = -1;
static bool cold_works;

static void read_cb(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct read_op *o = ud;
    atomic_store(&o->result, (long)res);
    atomic_fetch_add(&o->calls, 1);
    atomic_fetch_add(&o->s->done, 1);
}

/* Whether any page of the file is still in the page cache. */
static bool any_resident(int fd)
{
    size_t len = (size_t)FILE_BLOCKS * BLOCK;
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return true;
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = (len + (size_t)page - 1) / (size_t)page;
    unsigned char *vec = malloc(pages);
    bool resident = true;
    if (vec && mincore(p, len, vec) == 0) {
        resident = false;
        for (size_t i = 0; i < pages && !resident; i++)
            resident = vec[i] & 1;
    }
    free(vec);
    munmap(p, len);
    return resident;
}

static bool drop_cache(int fd)
{
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    return !any_resident(fd);
}

/* A pattern file whose pages can be evicted: TMPDIR, else the working directory (the build). */
static int make_file(void)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (attempt == 1)
            setenv("TMPDIR", ".", 1);
        int fd = harness_pattern_file((size_t)FILE_BLOCKS * BLOCK, SEED);
        if (fd < 0)
            continue;
        posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM); /* no readahead: one cold page per read */
        if (drop_cache(fd)) {
            cold_works = true;
            return fd;
        }
        if (attempt == 1)
            return fd;
        close(fd);
    }
    return -1;
}

static void shared_init(struct shared *s, auraio_engine_t *e, unsigned round)
{
    memset(s, 0, sizeof(*s));
    s->e = e;
    s->fd = test_fd;
    s->bufs = aligned_alloc(BLOCK, (size_t)READS * BLOCK);
    assert_non_null(s->bufs);
    for (int i = 0; i < READS; i++) {
        s->ops[i].s = s;
        /* Distinct blocks, spread over the file, different each round. */
        s->ops[i].block = (int)((i * (FILE_BLOCKS / READS) + round * 7u) % FILE_BLOCKS);
        s->ops[i].buf = s->bufs + (size_t)i * BLOCK;
    }
    assert_int_equal(sem_init(&s->submitted, 0, 0), 0);
    if (cold_works)
        assert_true(drop_cache(test_fd));
}

static void submit_all(struct shared *s)
{
    for (int i = 0; i < READS; i++) {
        struct read_op *o = &s->ops[i];
        assert_non_null(
            auraio_read(s->e, s->fd, auraio_buf(o->buf), BLOCK, (int64_t)o->block * BLOCK, read_cb, o));
    }
}

/* Every read's callback ran exactly once; with @p cancel_ok a -ECANCELED result is allowed. */
static void check_all(struct shared *s, bool cancel_ok)
{
    for (int i = 0; i < READS; i++) {
        struct read_op *o = &s->ops[i];
        long res = atomic_load(&o->result);
        if (atomic_load(&o->calls) != 1)
            fail_msg("read %d: callback ran %d times", i, atomic_load(&o->calls));
        if (cancel_ok && res == -ECANCELED)
            continue;
        if (res != BLOCK)
            fail_msg("read %d (block %d): result %ld (%s), expected %d", i, o->block, res,
                     res < 0 ? strerror((int)-res) : "short", BLOCK);
        if (harness_check_pattern(o->buf, BLOCK, (uint64_t)o->block * BLOCK, SEED) != -1)
            fail_msg("read %d (block %d): wrong data", i, o->block);
    }
    assert_int_equal(atomic_load(&s->done), READS);
}

static void shared_free(struct shared *s)
{
    sem_destroy(&s->submitted);
    free(s->bufs);
}

static auraio_engine_t *engine_with(int rings, int limit)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = rings;
    o.queue_depth = 128;
    if (limit) {
        o.disable_adaptive = true;
        o.initial_in_flight = limit;
        o.max_in_flight = limit;
    }
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    return e;
}

/* Submits every read, says so, and exits with them in flight. */
static void *submit_and_exit(void *arg)
{
    struct shared *s = arg;
    submit_all(s);
    sem_post(&s->submitted);
    return NULL;
}

static void exiting_submitter(int rings)
{
    auraio_engine_t *e = engine_with(rings, 0);
    for (unsigned round = 0; round < ROUNDS; round++) {
        struct shared s;
        shared_init(&s, e, round);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, submit_and_exit, &s), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(harness_wait_for(e, &s.done, READS, WATCHDOG_MS), 0);
        check_all(&s, false);
        shared_free(&s);
    }
    auraio_destroy(e);
}

static void test_exiting_submitter_one_ring(void **state)
{
    (void)state;
    exiting_submitter(1);
}

static void test_exiting_submitter_two_rings(void **state)
{
    (void)state;
    exiting_submitter(2);
}

/* Waits until it ran a few callbacks: each reap refills the ring from the main thread's backlog,
 * so this thread's enters put the main thread's reads in flight. Then it exits. */
static void *reap_and_exit(void *arg)
{
    struct shared *s = arg;
    int ran = 0;
    while (ran < 8) {
        int n = auraio_wait(s->e, WATCHDOG_MS);
        if (n <= 0)
            break;
        ran += n;
    }
    return NULL;
}

static void test_exiting_reaper_enters_others_requests(void **state)
{
    (void)state;
    const int limit = 8;
    auraio_engine_t *e = engine_with(1, limit);
    for (unsigned round = 0; round < ROUNDS; round++) {
        struct shared s;
        shared_init(&s, e, round);
        submit_all(&s); /* `limit` in flight, the rest in the backlog */
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, reap_and_exit, &s), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_true(atomic_load(&s.done) >= 8);
        assert_int_equal(harness_wait_for(e, &s.done, READS, WATCHDOG_MS), 0);
        check_all(&s, false);
        shared_free(&s);
    }
    auraio_destroy(e);
}

/* The engine goes while the worker that entered its reads is exiting: destroy drives the reads to
 * their end (or cancels them) and the exiting thread must neither lose them nor touch the freed
 * engine. */
static void test_destroy_while_submitter_exits(void **state)
{
    (void)state;
    for (unsigned round = 0; round < ROUNDS / 3; round++) {
        auraio_engine_t *e = engine_with(round % 2 + 1, 0);
        struct shared s;
        shared_init(&s, e, round);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, submit_and_exit, &s), 0);
        assert_true(harness_sem_wait_ms(&s.submitted, WATCHDOG_MS));
        auraio_destroy(e); /* the worker's calls have returned; its exit may be under way */
        assert_int_equal(pthread_join(t, NULL), 0);
        check_all(&s, true);
        shared_free(&s);
    }
}

/* More engines than a thread remembers (EXIT_GUARD_ENGINES = 4): its exit drains every live one. */
#define MANY_ENGINES 6

struct many_arg {
    auraio_engine_t *e[MANY_ENGINES];
    struct shared *s;
};

/* One read on each of the first engines, delivered here, then the rest on the last two: only a
 * drain of the engines beyond the remembered ones keeps those. */
static void *submit_to_many_and_exit(void *arg)
{
    struct many_arg *m = arg;
    const int first = MANY_ENGINES - 2;
    for (int i = 0; i < READS; i++) {
        struct read_op *o = &m->s->ops[i];
        auraio_engine_t *e = i < first ? m->e[i] : m->e[first + i % 2];
        if (!auraio_read(e, m->s->fd, auraio_buf(o->buf), BLOCK, (int64_t)o->block * BLOCK, read_cb, o))
            atomic_store(&o->result, -1000 - errno); /* checked by the main thread */
        for (int spins = 0; i == first - 1 && atomic_load(&m->s->done) < first && spins < WATCHDOG_MS; spins++) {
            for (int k = 0; k < first; k++)
                (void)auraio_poll(m->e[k]);
            (void)auraio_wait(m->e[spins % first], 1);
        }
    }
    return NULL;
}

static void test_exiting_submitter_many_engines(void **state)
{
    (void)state;
    for (unsigned round = 0; round < ROUNDS / 3; round++) {
        struct many_arg m;
        struct shared s;
        for (int i = 0; i < MANY_ENGINES; i++)
            m.e[i] = engine_with(1, 0);
        shared_init(&s, m.e[0], round);
        m.s = &s;
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, submit_to_many_and_exit, &m), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        for (int i = 0; i < READS; i++)
            assert_true(atomic_load(&s.ops[i].result) > -1000);
        /* Each engine's reads are delivered by that engine's poll. */
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        long elapsed_ms = 0;
        while (atomic_load(&s.done) < READS && elapsed_ms < WATCHDOG_MS) {
            int ran = 0;
            for (int i = 0; i < MANY_ENGINES; i++)
                ran += auraio_poll(m.e[i]) > 0;
            if (!ran)
                (void)auraio_wait(m.e[round % MANY_ENGINES], 1);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            elapsed_ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        }
        check_all(&s, false);
        shared_free(&s);
        for (int i = 0; i < MANY_ENGINES; i++)
            auraio_destroy(m.e[i]);
    }
}

struct pipe_arg {
    auraio_engine_t *e;
    int fd;
    char byte;
    bool submitted;
    _Atomic int calls;
    _Atomic long result;
    sem_t exited;
};

static void pipe_cb(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct pipe_arg *p = ud;
    atomic_store(&p->result, (long)res);
    atomic_fetch_add(&p->calls, 1);
}

static void *pipe_reader_exits(void *arg)
{
    struct pipe_arg *p = arg;
    p->submitted = auraio_read(p->e, p->fd, auraio_buf(&p->byte), 1, 0, pipe_cb, p) != NULL;
    return NULL;
}

static void *join_and_post(void *arg)
{
    void **a = arg;
    pthread_join(*(pthread_t *)a[0], NULL);
    sem_post(a[1]);
    return NULL;
}

/* A read that nothing will complete must not hold its thread's exit: the kernel cancels it. */
static void test_pollable_read_does_not_hold_exit(void **state)
{
    (void)state;
    auraio_engine_t *e = engine_with(1, 0);
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    struct pipe_arg p = {.e = e, .fd = pfd[0]};
    assert_int_equal(sem_init(&p.exited, 0, 0), 0);
    pthread_t reader, joiner;
    assert_int_equal(pthread_create(&reader, NULL, pipe_reader_exits, &p), 0);
    void *ja[2] = {&reader, &p.exited};
    assert_int_equal(pthread_create(&joiner, NULL, join_and_post, ja), 0);
    if (!harness_sem_wait_ms(&p.exited, WATCHDOG_MS))
        fail_msg("a thread whose pipe read never completes did not exit within %d ms", WATCHDOG_MS);
    pthread_join(joiner, NULL);
    assert_true(p.submitted);
    /* 6.18 keeps the read pending and fails it when the pipe becomes readable; older kernels
     * cancelled it at the exit. Either way its callback runs once, and no byte is taken. */
    assert_int_equal(write(pfd[1], "x", 1), 1);
    _Atomic int *calls = &p.calls;
    assert_int_equal(harness_wait_for(e, calls, 1, WATCHDOG_MS), 0);
    assert_int_equal(atomic_load(&p.result), -ECANCELED);
    assert_int_equal(atomic_load(&p.calls), 1);
    auraio_destroy(e);
    close(pfd[0]);
    close(pfd[1]);
    sem_destroy(&p.exited);
}

int main(void)
{
    harness_require_io_uring();
    test_fd = make_file();
    if (test_fd < 0) {
        printf("ERROR: cannot create the test file\n");
        return 99;
    }
    if (!cold_works)
        printf("NOTE: the file's pages cannot be evicted here (tmpfs?): the reads are cached, so the "
               "cases below cannot show a lost read\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exiting_submitter_one_ring),
        cmocka_unit_test(test_exiting_submitter_two_rings),
        cmocka_unit_test(test_exiting_reaper_enters_others_requests),
        cmocka_unit_test(test_destroy_while_submitter_exits),
        cmocka_unit_test(test_exiting_submitter_many_engines),
        cmocka_unit_test(test_pollable_read_does_not_hold_exit),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    close(test_fd);
    return rc;
}
