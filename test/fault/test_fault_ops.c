/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The newer ops on a kernel that lacks them, through the fault twin: each metadata opcode hidden
 * from the probe is refused at submit with EOPNOTSUPP (no callback, no slot held, never a blocking
 * fallback); a deadline without IORING_OP_LINK_TIMEOUT likewise, leaving the deadline armed; and
 * auraio_cancel_fd without IORING_REGISTER_SYNC_CANCEL (refused with EINVAL, as before 6.0) falls
 * back to one cancel per request and still counts them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fault_sys.h"
#include "harness.h"
#include "uring_abi.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static int setup(void **state)
{
    (void)state;
    fault_reset();
    atomic_store(&harness_unexpected_callbacks, 0);
    return 0;
}

static auraio_engine_t *make(int rings)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = rings;
    o.queue_depth = 16;
    o.ring_select = AURAIO_SELECT_ROUND_ROBIN;
    return auraio_create_with_options(&o);
}

enum which { W_OPENAT, W_CLOSE, W_STATX, W_FALLOCATE, W_FTRUNCATE, W_SYNC_FILE_RANGE, W_FADVISE, W_MADVISE, W_TIMEOUT,
             W_COUNT };
static const int hidden_opcode[W_COUNT] = {
    [W_OPENAT] = IORING_OP_OPENAT,       [W_CLOSE] = IORING_OP_CLOSE,
    [W_STATX] = IORING_OP_STATX,         [W_FALLOCATE] = IORING_OP_FALLOCATE,
    [W_FTRUNCATE] = AURAIO_IORING_OP_FTRUNCATE, [W_SYNC_FILE_RANGE] = IORING_OP_SYNC_FILE_RANGE,
    [W_FADVISE] = IORING_OP_FADVISE,     [W_MADVISE] = IORING_OP_MADVISE,
    [W_TIMEOUT] = IORING_OP_TIMEOUT,
};

static auraio_request_t *submit(auraio_engine_t *e, enum which w, int fd, void *mem, struct statx *sx)
{
    auraio_callback_t cb = harness_must_not_run;
    switch (w) {
    case W_OPENAT:
        return auraio_openat(e, AT_FDCWD, "/dev/null", O_RDONLY, 0, 0, cb, NULL);
    case W_CLOSE:
        return auraio_close(e, fd, 0, cb, NULL);
    case W_STATX:
        return auraio_statx(e, AT_FDCWD, "/", 0, STATX_SIZE, sx, 0, cb, NULL);
    case W_FALLOCATE:
        return auraio_fallocate(e, fd, 0, 0, 4096, 0, cb, NULL);
    case W_FTRUNCATE:
        return auraio_ftruncate(e, fd, 4096, 0, cb, NULL);
    case W_SYNC_FILE_RANGE:
        return auraio_sync_file_range(e, fd, 0, 0, 0, 0, cb, NULL);
    case W_FADVISE:
        return auraio_fadvise(e, fd, 0, 0, POSIX_FADV_NORMAL, 0, cb, NULL);
    case W_MADVISE:
        return auraio_madvise(e, mem, 4096, MADV_NORMAL, 0, cb, NULL);
    default:
        return auraio_timeout(e, 1000000, cb, NULL);
    }
}

static void read_one(auraio_engine_t *e, int fd)
{
    char buf[64];
    struct recorder rec;
    struct recorder_ctx c = {&rec, 0};
    recorder_init(&rec);
    assert_non_null(auraio_read(e, fd, auraio_buf(buf), sizeof(buf), 0, recorder_callback, &c));
    assert_int_equal(harness_wait_for(e, &rec.total, 1, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[0]), 64);
}

static void test_each_missing_opcode_refused(void **state)
{
    (void)state;
    int fd = harness_pattern_file(8192, 2);
    assert_true(fd >= 0);
    void *mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    struct statx sx;
    struct stat before, after;
    assert_int_equal(fstat(fd, &before), 0);
    for (int w = 0; w < W_COUNT; w++) {
        fault_reset();
        fault_hide_opcode(hidden_opcode[w]);
        auraio_engine_t *e = make(2);
        assert_non_null(e);
        for (int i = 0; i < 20; i++) { /* more than the slots: a held slot would show as EAGAIN */
            errno = 0;
            assert_null(submit(e, (enum which)w, fd, mem, &sx));
            assert_int_equal(errno, EOPNOTSUPP);
        }
        assert_int_equal(auraio_pending_count(e), 0);
        read_one(e, fd); /* other opcodes still work */
        auraio_destroy(e);
    }
    assert_int_equal(fstat(fd, &after), 0);
    assert_int_equal(after.st_size, before.st_size); /* no silent blocking ftruncate/fallocate */
    assert_int_equal(atomic_load(&harness_unexpected_callbacks), 0);
    munmap(mem, 4096);
    close(fd);
}

/* Without LINK_TIMEOUT a deadline cannot be kept: the submit fails and the deadline stays armed
 * for the next attempt; disarmed, the same read goes through. */
static void test_deadline_without_link_timeout(void **state)
{
    (void)state;
    fault_hide_opcode(IORING_OP_LINK_TIMEOUT);
    auraio_engine_t *e = make(1);
    assert_non_null(e);
    int fd = harness_pattern_file(4096, 2);
    char buf[64];
    assert_int_equal(auraio_set_next_timeout(e, 1000000), 0);
    EXPECT_NULL_ERRNO(auraio_read(e, fd, auraio_buf(buf), sizeof(buf), 0, harness_must_not_run, NULL), EOPNOTSUPP);
    EXPECT_NULL_ERRNO(auraio_read(e, fd, auraio_buf(buf), sizeof(buf), 0, harness_must_not_run, NULL), EOPNOTSUPP);
    assert_int_equal(auraio_set_next_timeout(e, 0), 0);
    read_one(e, fd);
    /* A timer uses IORING_OP_TIMEOUT, not LINK_TIMEOUT: unaffected. */
    struct recorder rec;
    struct recorder_ctx c = {&rec, 0};
    recorder_init(&rec);
    assert_non_null(auraio_timeout(e, 1000, recorder_callback, &c));
    assert_int_equal(harness_wait_for(e, &rec.total, 1, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[0]), 0);
    auraio_destroy(e);
    assert_int_equal(atomic_load(&harness_unexpected_callbacks), 0);
    close(fd);
}

/* Before 6.0 (SYNC_CANCEL refused with EINVAL): cancel_fd walks the slots of every ring. */
static void test_cancel_fd_walk_fallback(void **state)
{
    (void)state;
    enum { RINGS = 3, READS = 6 };
    auraio_engine_t *e = make(RINGS);
    assert_non_null(e);
    int p[2], other[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(pipe(other), 0);
    static char bufs[READS + 1][16];
    struct recorder rec;
    struct recorder_ctx c[READS + 1];
    recorder_init(&rec);
    for (int i = 0; i < READS; i++) { /* round robin: two on each ring */
        c[i] = (struct recorder_ctx){&rec, i};
        assert_non_null(auraio_read(e, p[0], auraio_buf(bufs[i]), 16, 0, recorder_callback, &c[i]));
    }
    c[READS] = (struct recorder_ctx){&rec, READS};
    assert_non_null(auraio_read(e, other[0], auraio_buf(bufs[READS]), 16, 0, recorder_callback, &c[READS]));
    assert_int_equal(auraio_poll(e), 0);
    fault_arm(FAULT_REGISTER, 0, 1000, EINVAL);
    assert_int_equal(auraio_cancel_fd(e, p[0]), READS);
    assert_true(fault_failures(FAULT_REGISTER) >= 1); /* the sync cancel was tried and refused */
    assert_int_equal(harness_wait_for(e, &rec.total, READS, 5000), 0);
    for (int i = 0; i < READS; i++)
        assert_int_equal(atomic_load(&rec.results[i]), -ECANCELED);
    assert_int_equal(auraio_pending_count(e), 1); /* the other pipe's read is untouched */
    assert_int_equal(write(other[1], "x", 1), 1);
    assert_int_equal(harness_wait_for(e, &rec.total, READS + 1, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[READS]), 1);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, READS + 1);
    close(p[0]);
    close(p[1]);
    close(other[0]);
    close(other[1]);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_each_missing_opcode_refused, setup),
        cmocka_unit_test_setup(test_deadline_without_link_timeout, setup),
        cmocka_unit_test_setup(test_cancel_fd_walk_fallback, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
