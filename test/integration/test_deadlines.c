/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-op deadlines, timers and cancel by fd: a read from an empty pipe with a 20 ms deadline
 * completes once with -ETIME and no second callback; deadlines that do not fire leave nothing
 * behind (pending 0, nothing more delivered, destroy has nothing to wait for); destroy with
 * deadlined requests in flight; a deadline inside a chain; timers firing, cancelled, and not held
 * back by the in-flight limit; cancel_fd across rings and backlogs with the exact count.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define BLOCK 4096
#define WAIT_MS 5000
#define MS 1000000ull

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static auraio_engine_t *make(int rings, int limit, bool single_issuer)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = rings;
    o.queue_depth = 32;
    o.ring_select = AURAIO_SELECT_ROUND_ROBIN;
    o.single_issuer = single_issuer;
    if (limit) {
        o.disable_adaptive = true;
        o.initial_in_flight = limit;
    }
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    return e;
}

static void pipe_read_times_out(bool single_issuer)
{
    auraio_engine_t *e = make(1, 0, single_issuer);
    int p[2];
    assert_int_equal(pipe(p), 0);
    char buf[16];
    struct recorder rec;
    struct recorder_ctx c = {&rec, 0};
    recorder_init(&rec);
    uint64_t t0 = now_ns();
    assert_int_equal(auraio_set_next_timeout(e, 20 * MS), 0);
    assert_non_null(auraio_read(e, p[0], auraio_buf(buf), sizeof(buf), 0, recorder_callback, &c));
    assert_int_equal(auraio_pending_count(e), 1);
    assert_int_equal(harness_wait_for(e, &rec.total, 1, WAIT_MS), 0);
    uint64_t elapsed = now_ns() - t0;
    assert_int_equal(atomic_load(&rec.results[0]), -ETIME);
    assert_true(elapsed >= 20 * MS);
    assert_true(elapsed < 1000 * MS);
    /* The timeout's own CQE is no second callback, and nothing is left pending. */
    assert_int_equal(auraio_pending_count(e), 0);
    assert_int_equal(auraio_wait(e, 50), 0);
    assert_int_equal(atomic_load(&rec.total), 1);
    /* The deadline was used up: the next read has none (it completes when data comes). */
    recorder_init(&rec);
    assert_non_null(auraio_read(e, p[0], auraio_buf(buf), sizeof(buf), 0, recorder_callback, &c));
    assert_int_equal(auraio_wait(e, 60), -ETIME);
    assert_int_equal(write(p[1], "hello", 5), 5);
    assert_int_equal(harness_wait_for(e, &rec.total, 1, WAIT_MS), 0);
    assert_int_equal(atomic_load(&rec.results[0]), 5);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 1);
    close(p[0]);
    close(p[1]);
}

static void test_pipe_read_deadline_fires(void **state)
{
    (void)state;
    pipe_read_times_out(false);
    pipe_read_times_out(true);
}

/* Many reads with deadlines that do not fire: each completes normally, once, and every slot comes
 * back (pending 0), so the deadlines' CQEs were all consumed; destroy then has nothing to wait
 * for. With a queue of 32 and 2 CQEs per request, this also fills the CQ budget. */
static void test_deadlines_that_do_not_fire_leave_nothing(void **state)
{
    (void)state;
    enum { N = 2000 };
    auraio_engine_t *e = make(2, 0, false);
    int fd = harness_pattern_file(16 * BLOCK, 3);
    static unsigned char buf[32][BLOCK];
    static struct recorder rec;
    static struct recorder_ctx c[N];
    recorder_init(&rec);
    for (int i = 0; i < N; i++) {
        c[i] = (struct recorder_ctx){&rec, i % RECORDER_MAX};
        assert_int_equal(auraio_set_next_timeout(e, 10000 * MS), 0);
        while (!auraio_read(e, fd, auraio_buf(buf[i % 32]), BLOCK, (int64_t)(i % 16) * BLOCK, recorder_callback,
                            &c[i])) {
            assert_int_equal(errno, EAGAIN);
            assert_true(auraio_wait(e, 1000) > 0);
        }
    }
    assert_int_equal(harness_wait_for(e, &rec.total, N, WAIT_MS), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&rec.results[i]), BLOCK);
    assert_int_equal(auraio_pending_count(e), 0);
    assert_int_equal(auraio_wait(e, 20), 0);
    uint64_t t0 = now_ns();
    auraio_destroy(e);
    assert_true(now_ns() - t0 < 500 * MS); /* not the 10 s the deadlines would have taken */
    recorder_assert_each_once(&rec, N);
    close(fd);
}

/* Destroy with deadlined requests in flight: each callback once, -ECANCELED, promptly. */
static void test_destroy_with_deadlines_in_flight(void **state)
{
    (void)state;
    enum { N = 8 };
    auraio_engine_t *e = make(2, 0, false);
    int p[2];
    assert_int_equal(pipe(p), 0);
    static char buf[N][16];
    struct recorder rec;
    struct recorder_ctx c[N];
    recorder_init(&rec);
    for (int i = 0; i < N; i++) {
        c[i] = (struct recorder_ctx){&rec, i};
        assert_int_equal(auraio_set_next_timeout(e, 10000 * MS), 0);
        assert_non_null(auraio_read(e, p[0], auraio_buf(buf[i]), 16, 0, recorder_callback, &c[i]));
    }
    assert_int_equal(auraio_poll(e), 0);
    uint64_t t0 = now_ns();
    auraio_destroy(e);
    assert_true(now_ns() - t0 < 1000 * MS);
    recorder_assert_each_once(&rec, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&rec.results[i]), -ECANCELED);
    close(p[0]);
    close(p[1]);
}

/* A deadline on a chain member: the pipe read times out, the write behind it is cancelled. */
static void test_deadline_in_chain(void **state)
{
    (void)state;
    auraio_engine_t *e = make(1, 0, false);
    int p[2];
    assert_int_equal(pipe(p), 0);
    int fd = harness_temp_file(0);
    char buf[16] = "data";
    struct recorder rec;
    struct recorder_ctx c[4] = {{&rec, 0}, {&rec, 1}, {&rec, 2}, {&rec, 3}};
    recorder_init(&rec);
    assert_int_equal(auraio_set_next_timeout(e, 20 * MS), 0);
    assert_non_null(auraio_read_ex(e, p[0], auraio_buf(buf), 16, 0, AURAIO_LINK, recorder_callback, &c[0]));
    assert_non_null(auraio_write(e, fd, auraio_buf(buf), 4, 0, recorder_callback, &c[1]));
    /* A deadline that does not fire, in the middle of a chain that goes on. */
    assert_int_equal(auraio_set_next_timeout(e, 10000 * MS), 0);
    assert_non_null(auraio_write_ex(e, fd, auraio_buf(buf), 4, 8, AURAIO_LINK, recorder_callback, &c[2]));
    assert_non_null(auraio_fsync(e, fd, 0, recorder_callback, &c[3]));
    assert_int_equal(harness_wait_for(e, &rec.total, 4, WAIT_MS), 0);
    assert_int_equal(atomic_load(&rec.results[0]), -ETIME);
    assert_int_equal(atomic_load(&rec.results[1]), -ECANCELED);
    assert_int_equal(atomic_load(&rec.results[2]), 4);
    assert_int_equal(atomic_load(&rec.results[3]), 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 12); /* only the second write ran */
    assert_int_equal(auraio_pending_count(e), 0);
    assert_int_equal(auraio_wait(e, 20), 0);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 4);
    close(fd);
    close(p[0]);
    close(p[1]);
}

/* Timers: fire with 0 after their time, cancel with -ECANCELED, are not held back by an in-flight
 * limit that I/O fills, and are not counted as operations. */
static void test_timers(void **state)
{
    (void)state;
    auraio_engine_t *e = make(1, 1, false);
    int p[2];
    assert_int_equal(pipe(p), 0);
    char buf[16];
    struct recorder rec;
    struct recorder_ctx c[4] = {{&rec, 0}, {&rec, 1}, {&rec, 2}, {&rec, 3}};
    recorder_init(&rec);
    /* The one in-flight place is taken by a read that will not complete. */
    assert_non_null(auraio_read(e, p[0], auraio_buf(buf), 16, 0, recorder_callback, &c[0]));
    uint64_t t0 = now_ns();
    assert_non_null(auraio_timeout(e, 20 * MS, recorder_callback, &c[1]));
    auraio_request_t *longt = auraio_timeout(e, 10000 * MS, recorder_callback, &c[2]);
    assert_non_null(longt);
    assert_int_equal(auraio_pending_count(e), 3);
    assert_int_equal(harness_wait_for(e, &rec.total, 1, WAIT_MS), 0);
    uint64_t elapsed = now_ns() - t0;
    assert_int_equal(atomic_load(&rec.calls[1]), 1);
    assert_int_equal(atomic_load(&rec.results[1]), 0);
    assert_true(elapsed >= 20 * MS && elapsed < 1000 * MS);
    assert_int_equal(auraio_cancel(e, longt), 0);
    assert_int_equal(harness_wait_for(e, &rec.total, 2, WAIT_MS), 0);
    assert_int_equal(atomic_load(&rec.results[2]), -ECANCELED);
    assert_int_equal(auraio_cancel(e, longt), -EALREADY);
    /* A zero timer fires at once. */
    assert_non_null(auraio_timeout(e, 0, recorder_callback, &c[3]));
    assert_int_equal(harness_wait_for(e, &rec.total, 3, WAIT_MS), 0);
    assert_int_equal(atomic_load(&rec.results[3]), 0);
    auraio_stats_t st;
    assert_int_equal(auraio_get_stats(e, &st), 0);
    assert_int_equal(st.ops_completed, 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(harness_wait_for(e, &rec.total, 4, WAIT_MS), 0);
    assert_int_equal(atomic_load(&rec.results[0]), 1);
    assert_int_equal(auraio_get_stats(e, &st), 0);
    assert_int_equal(st.ops_completed, 1);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 4);
    close(p[0]);
    close(p[1]);
}

/* cancel_fd: reads of one pipe spread over three rings, in flight and in the backlogs, plus a
 * chain on it still open; other fds' requests untouched; the exact count returned. */
static void test_cancel_fd_across_rings_and_backlogs(void **state)
{
    (void)state;
    enum { RINGS = 3, READS = 9 };
    auraio_engine_t *e = make(RINGS, 1, false); /* limit 1: one in flight per ring, 2 in backlog */
    int p[2], other[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(pipe(other), 0);
    static char bufs[READS + 4][16];
    struct recorder rec;
    struct recorder_ctx c[READS + 4];
    recorder_init(&rec);
    for (int i = 0; i < READS + 4; i++)
        c[i] = (struct recorder_ctx){&rec, i};
    for (int i = 0; i < READS; i++)
        assert_non_null(auraio_read(e, p[0], auraio_buf(bufs[i]), 16, 0, recorder_callback, &c[i]));
    /* Behind them on some ring, another pipe's read (backlog), and an open chain on p. */
    assert_non_null(auraio_read(e, other[0], auraio_buf(bufs[READS]), 16, 0, recorder_callback, &c[READS]));
    assert_non_null(auraio_read_ex(e, other[0], auraio_buf(bufs[READS + 1]), 16, 0, AURAIO_LINK, recorder_callback,
                                   &c[READS + 1]));
    assert_non_null(auraio_read_ex(e, p[0], auraio_buf(bufs[READS + 2]), 16, 0, AURAIO_LINK, recorder_callback,
                                   &c[READS + 2]));
    assert_int_equal(auraio_pending_count(e), READS + 1);
    assert_int_equal(auraio_cancel_fd(e, p[0]), READS + 1);
    /* Ending the chain fails all of it (one member was on p). */
    assert_non_null(auraio_fsync(e, p[1], 0, recorder_callback, &c[READS + 3]));
    assert_int_equal(harness_wait_for(e, &rec.total, READS + 3, WAIT_MS), 0);
    for (int i = 0; i < READS; i++)
        assert_int_equal(atomic_load(&rec.results[i]), -ECANCELED);
    for (int i = READS + 1; i < READS + 4; i++)
        assert_int_equal(atomic_load(&rec.results[i]), -ECANCELED);
    assert_int_equal(atomic_load(&rec.calls[READS]), 0); /* the other pipe's read still waits */
    assert_int_equal(auraio_pending_count(e), 1);
    assert_int_equal(auraio_cancel_fd(e, p[0]), 0); /* nothing left on it */
    assert_int_equal(write(other[1], "x", 1), 1);
    assert_int_equal(harness_wait_for(e, &rec.total, READS + 4, WAIT_MS), 0);
    assert_int_equal(atomic_load(&rec.results[READS]), 1);
    /* A closed fd: nothing to find, not an error. */
    int spare = dup(p[0]);
    close(spare);
    assert_int_equal(auraio_cancel_fd(e, spare), 0);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, READS + 4);
    close(p[0]);
    close(p[1]);
    close(other[0]);
    close(other[1]);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipe_read_deadline_fires),
        cmocka_unit_test(test_deadlines_that_do_not_fire_leave_nothing),
        cmocka_unit_test(test_destroy_with_deadlines_in_flight),
        cmocka_unit_test(test_deadline_in_chain),
        cmocka_unit_test(test_timers),
        cmocka_unit_test(test_cancel_fd_across_rings_and_backlogs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
