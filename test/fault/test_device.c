/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fd -> device table (lib/device.h) with the fault twin counting fstat calls: files on one
 * filesystem share a device class, a file on another filesystem (tmpfs at /dev/shm) gets its own,
 * pipes and eventfds get none; a cached fd costs no system call per I/O; a closed fd whose number
 * is reused is resolved again, through the library's own close at once and through revalidation
 * behind its back; the fd-indexed map grows for a high fd number; the exporter labels devices;
 * auraio_device_capacity and the device stats' in_flight/backlog count a device's requests exactly.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fault_sys.h"
#include "harness.h"

#include "clock.h"
#include "device.h"
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define SHM_DIR "/dev/shm"
#define READS 2000

static auraio_engine_t *make(void)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    o.queue_depth = 64;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    return e;
}

/* A file on another filesystem than the temp dir's, or -1 when there is none here. */
static int other_fs_file(void)
{
    char path[] = SHM_DIR "/auraio-device-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    struct stat a, b;
    int tmp = harness_temp_file(0);
    assert_true(tmp >= 0);
    assert_int_equal(fstat(fd, &a), 0);
    assert_int_equal(fstat(tmp, &b), 0);
    close(tmp);
    if (a.st_dev == b.st_dev) {
        close(fd);
        return -1;
    }
    assert_int_equal(pwrite(fd, "x", 1, 4095), 1);
    return fd;
}

/* The class the engine's table holds for @p fd (-1: not resolved). */
static int cached(auraio_engine_t *e, int fd)
{
    return auraio__device_cached(&e->devices, fd);
}

static _Atomic int done;

static void count_cb(auraio_request_t *req, ssize_t result, void *ud)
{
    (void)req;
    (void)ud;
    assert_true(result >= 0);
    done++;
}

static void read_n(auraio_engine_t *e, int fd, int n)
{
    static char buf[16][512];
    int target = done + n;
    for (int i = 0; i < n; i++) {
        while (!auraio_read(e, fd, auraio_buf(buf[i % 16]), sizeof(buf[0]), 0, count_cb, NULL)) {
            assert_int_equal(errno, EAGAIN);
            assert_true(auraio_wait(e, 100) >= 0);
        }
    }
    assert_int_equal(harness_wait_for(e, &done, target, 10000), 0);
}

static void test_same_fs_shares_other_fs_differs(void **state)
{
    (void)state;
    auraio_engine_t *e = make();
    int a = harness_pattern_file(8192, 1), b = harness_pattern_file(8192, 2);
    assert_true(a >= 0 && b >= 0);
    read_n(e, a, 1);
    read_n(e, b, 1);
    assert_int_equal(cached(e, a), 1);
    assert_int_equal(cached(e, b), 1); /* one filesystem, one device */
    int s = other_fs_file();
    if (s >= 0) {
        read_n(e, s, 1);
        assert_int_equal(cached(e, s), 2);
        auraio_device_stats_t ds[4];
        assert_int_equal(auraio_get_device_stats(e, ds, 4), 2);
        struct stat sa, ss;
        assert_int_equal(fstat(a, &sa), 0);
        assert_int_equal(fstat(s, &ss), 0);
        assert_int_equal(ds[0].device_id, (uint64_t)sa.st_dev);
        assert_int_equal(ds[1].device_id, (uint64_t)ss.st_dev);
        /* The exporter labels each device's series with major:minor. */
        int need = auraio_metrics_prometheus(e, NULL, 0);
        assert_true(need > 0);
        char *doc = malloc((size_t)need + 1);
        assert_non_null(doc);
        assert_int_equal(auraio_metrics_prometheus(e, doc, (size_t)need + 1), need);
        for (int i = 0; i < 2; i++) {
            char series[96];
            snprintf(series, sizeof(series), "auraio_device_in_flight_limit{device=\"%u:%u\"} %d\n", ds[i].major,
                     ds[i].minor, ds[i].depth);
            assert_non_null(strstr(doc, series));
            snprintf(series, sizeof(series), "auraio_device_knee_depth{device=\"%u:%u\"}", ds[i].major, ds[i].minor);
            assert_non_null(strstr(doc, series));
        }
        assert_non_null(strstr(doc, "# TYPE auraio_device_base_latency_seconds gauge\n"));
        free(doc);
    } else {
        print_message("no second filesystem at " SHM_DIR ": the differing-device half is skipped\n");
    }
    /* Pipes and eventfds: no device, cached all the same (no fstat per I/O for them either). */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "abcdefgh", 8), 8);
    read_n(e, p[0], 1);
    assert_int_equal(cached(e, p[0]), (int)DEVICE_NONE);
    int ev = eventfd(0, 0);
    assert_true(ev >= 0);
    assert_int_equal(auraio__engine_device_resolve(e, ev), DEVICE_NONE);
    assert_int_equal(cached(e, ev), (int)DEVICE_NONE);
    /* A per-device target needs a device. */
    assert_int_equal(auraio_set_device_max_p99_latency(e, p[0], 1.0), -ENODEV);
    assert_int_equal(auraio_set_device_max_p99_latency(e, 100000, 1.0), -EBADF);
    assert_int_equal(auraio_set_device_max_p99_latency(e, a, -1.0), -EINVAL);
    assert_int_equal(auraio_set_device_max_p99_latency(NULL, a, 1.0), -EINVAL);
    assert_int_equal(auraio_set_device_max_p99_latency(e, a, 2.5), 0);
    auraio_device_stats_t one;
    assert_int_equal(auraio_get_device_stats(e, &one, 1) >= 1, true);
    assert_true(one.target_p99_ms == 2.5);
    assert_int_equal(auraio_get_device_stats(NULL, &one, 1), -EINVAL);
    assert_int_equal(auraio_get_device_stats(e, NULL, 1), -EINVAL);
    /* Closed last: a number closed behind the library's back and reused by the pipe below would
     * keep its old class until revalidation (test_reused_fd_is_resolved_again). */
    close(ev);
    close(p[0]);
    close(p[1]);
    close(a);
    close(b);
    if (s >= 0)
        close(s);
    auraio_destroy(e);
}

/* After an fd's first use, its I/O makes no fstat: READS reads, one fstat (the first), and none
 * from revalidation inside its first period. */
static void test_no_syscall_per_io(void **state)
{
    (void)state;
    fault_reset();
    auraio_engine_t *e = make();
    int fd = harness_pattern_file(64 * 1024, 3);
    assert_true(fd >= 0);
    uint64_t t0 = auraio__now_ns();
    read_n(e, fd, READS);
    uint64_t elapsed = auraio__now_ns() - t0;
    int calls = fault_calls(FAULT_FSTAT);
    if (elapsed < DEVICE_REVALIDATE_NS) {
        assert_int_equal(calls, 1);
    } else {
        /* A slow run (sanitizers): revalidation may have passed, once per period at most. */
        assert_true(calls <= 1 + (int)(elapsed / DEVICE_REVALIDATE_NS + 1));
    }
    close(fd);
    auraio_destroy(e);
}

/* A number closed and reused for a file on another device. The library's own close forgets the
 * number when it completes; a plain close() is caught by revalidation, which the test runs by hand
 * (under the tick lock, as the tick does) instead of waiting for its period. */
static void test_reused_fd_is_resolved_again(void **state)
{
    (void)state;
    auraio_engine_t *e = make();
    int a = harness_pattern_file(8192, 4);
    assert_true(a >= 0);
    int s = other_fs_file();
    if (s < 0) {
        close(a);
        auraio_destroy(e);
        skip();
    }
    read_n(e, a, 1);
    assert_int_equal(cached(e, a), 1);
    /* Behind the library's back: dup2 closes a's file and puts s's at the same number. */
    assert_int_equal(dup2(s, a), a);
    read_n(e, a, 1);
    assert_int_equal(cached(e, a), 1); /* stale until revalidated: a depth-accounting error only */
    /* The engine's own ticks may have armed the period already (on the real clock): the first call
     * arms it or passes, the second is due either way; one of them forgets the number. */
    uint64_t now = auraio__now_ns();
    pthread_mutex_lock(&e->tick_lock);
    unsigned forgotten = auraio__device_revalidate(&e->devices, now);
    forgotten += auraio__device_revalidate(&e->devices, now + 2 * DEVICE_REVALIDATE_NS);
    pthread_mutex_unlock(&e->tick_lock);
    assert_int_equal(forgotten, 1);
    assert_int_equal(cached(e, a), -1);
    read_n(e, a, 1);
    assert_int_equal(cached(e, a), 2);
    /* Through the library: auraio_close forgets the number when it completes. */
    int target = done + 1;
    assert_non_null(auraio_close(e, a, 0, count_cb, NULL));
    assert_int_equal(harness_wait_for(e, &done, target, 5000), 0);
    assert_int_equal(cached(e, a), -1);
    close(s);
    auraio_destroy(e);
}

/* The map starts at DEVICE_MAP_MIN fds and grows for a higher one; fds beyond DEVICE_MAP_MAX_FD
 * are DEVICE_NONE without a lookup. */
static void test_map_grows(void **state)
{
    (void)state;
    auraio_engine_t *e = make();
    int fd = harness_pattern_file(8192, 5);
    assert_true(fd >= 0);
    int high = fcntl(fd, F_DUPFD, (int)DEVICE_MAP_MIN + 100);
    if (high < 0) {
        close(fd);
        auraio_destroy(e);
        skip(); /* RLIMIT_NOFILE below the map's first size */
    }
    read_n(e, high, 1);
    assert_int_equal(cached(e, high), 1);
    assert_int_equal(cached(e, (int)DEVICE_MAP_MAX_FD + 1), (int)DEVICE_NONE);
    close(high);
    close(fd);
    auraio_destroy(e);
}

static int device_entry(auraio_engine_t *e, int fd, auraio_device_stats_t *out)
{
    struct stat sb;
    auraio_device_stats_t all[8];
    assert_int_equal(fstat(fd, &sb), 0);
    int n = auraio_get_device_stats(e, all, 8);
    for (int i = 0; i < n && i < 8; i++) {
        if (all[i].device_id == (uint64_t)sb.st_dev) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}

/* What a device's depth admits now: its depth with nothing in flight, one less per request the
 * kernel holds, never below 0 (the rest wait in its backlog, counted there), its depth again once
 * all completed. No tick runs between the checks: ticks run only when completions are reaped. */
static void test_device_capacity(void **state)
{
    (void)state;
    auraio_engine_t *e = make();
    int fd = harness_pattern_file(64 * 1024, 5), p[2];
    assert_true(fd >= 0);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(auraio_device_capacity(NULL, fd), -EINVAL);
    assert_int_equal(auraio_device_capacity(e, -1), -EBADF);
    assert_int_equal(auraio_device_capacity(e, p[0]), -ENODEV);
    int shut = dup(fd);
    close(shut);
    assert_int_equal(auraio_device_capacity(e, shut), -EBADF);

    int room = auraio_device_capacity(e, fd);
    auraio_device_stats_t st;
    assert_int_equal(device_entry(e, fd, &st), 0);
    assert_true(room > 0);
    assert_int_equal(room, st.depth);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.backlog, 0);
    /* The pipe's reads are no device's: they take none of its room. */
    static char buf[80][512], pbuf[1];
    assert_non_null(auraio_read(e, p[0], auraio_buf(pbuf), 1, 0, count_cb, NULL));
    assert_int_equal(auraio_device_capacity(e, fd), room);
    int extra = 3, target = done + room + extra + 1;
    for (int i = 0; i < room + extra; i++) {
        assert_non_null(auraio_read(e, fd, auraio_buf(buf[i % 80]), sizeof(buf[0]), 0, count_cb, NULL));
        assert_int_equal(auraio_device_capacity(e, fd), i + 1 >= room ? 0 : room - i - 1);
    }
    assert_int_equal(device_entry(e, fd, &st), 0);
    assert_int_equal(st.in_flight, room);
    assert_int_equal(st.backlog, extra);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(harness_wait_for(e, &done, target, 10000), 0);
    assert_int_equal(device_entry(e, fd, &st), 0);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.backlog, 0);
    assert_int_equal(auraio_device_capacity(e, fd), st.depth);
    close(p[0]);
    close(p[1]);
    close(fd);
    auraio_destroy(e);
}

/* Two rings, one submitting thread (THREAD_LOCAL: its reads all go to one ring). The other
 * ring's share of the device is no room for this thread: the capacity is the device's depth less
 * everything it has pending, so it reaches 0 after depth reads. Counting each ring's room kept it
 * at the idle ring's share forever while the reads piled up in the backlog. */
static void test_device_capacity_counts_every_ring(void **state)
{
    (void)state;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 2;
    o.queue_depth = 64;
    o.ring_select = AURAIO_SELECT_THREAD_LOCAL;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    int fd = harness_pattern_file(64 * 1024, 6);
    assert_true(fd >= 0);
    int room = auraio_device_capacity(e, fd);
    auraio_device_stats_t st = {0};
    assert_int_equal(device_entry(e, fd, &st), 0);
    assert_int_equal(room, st.depth);
    assert_true(room > 1);
    static char buf[64][512];
    int target = done + room;
    for (int i = 0; i < room; i++) {
        assert_non_null(auraio_read(e, fd, auraio_buf(buf[i % 64]), sizeof(buf[0]), 0, count_cb, NULL));
        assert_int_equal(auraio_device_capacity(e, fd), room - i - 1);
    }
    assert_int_equal(device_entry(e, fd, &st), 0);
    assert_int_equal(st.in_flight + st.backlog, room);
    assert_int_equal(harness_wait_for(e, &done, target, 10000), 0);
    close(fd);
    auraio_destroy(e);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_fs_shares_other_fs_differs),
        cmocka_unit_test(test_no_syscall_per_io),
        cmocka_unit_test(test_reused_fd_is_resolved_again),
        cmocka_unit_test(test_map_grows),
        cmocka_unit_test(test_device_capacity),
        cmocka_unit_test(test_device_capacity_counts_every_ring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
