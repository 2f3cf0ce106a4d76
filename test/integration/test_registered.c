/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registered buffers and files: I/O through them with the data compared, the checks that keep bad
 * indexes and ranges from the kernel, unregister refused while in use and allowed from the
 * callback that ends the last use, update_file, and destroy with registrations and I/O in flight.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "configs.h"
#include "harness.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#define BLOCK 4096

static void test_fixed_buffers_and_files_every_config(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < TEST_CONFIG_COUNT; ci++) {
        print_message("config %s\n", test_configs[ci].name);
        auraio_engine_t *e = config_engine(&test_configs[ci]);
        assert_non_null(e);
        int src = harness_pattern_file(8 * BLOCK, 21);
        int dst = harness_temp_file(0);
        assert_true(src >= 0 && dst >= 0);
        void *mem = auraio_buffer_alloc(e, 8 * BLOCK);
        assert_non_null(mem);
        struct iovec reg[2] = {{mem, 4 * BLOCK}, {(char *)mem + 4 * BLOCK, 4 * BLOCK}};
        assert_int_equal(auraio_register_buffers(e, reg, 2), 0);
        int files[3] = {-1, src, dst};
        assert_int_equal(auraio_register_files(e, files, 3), 0);

        struct recorder rec;
        struct recorder_ctx c[16];
        recorder_init(&rec);
        /* Read 8 blocks into the two registered buffers: fixed file 1, fixed buffers. */
        for (int i = 0; i < 8; i++) {
            c[i] = (struct recorder_ctx){&rec, i};
            assert_non_null(auraio_read_ex(e, 1, auraio_buf_fixed(i / 4, (size_t)(i % 4) * BLOCK), BLOCK,
                                           (int64_t)i * BLOCK, AURAIO_FIXED_FILE, recorder_callback, &c[i]));
        }
        assert_int_equal(harness_wait_for(e, &rec.total, 8, 5000), 0);
        assert_int_equal(harness_check_pattern(mem, 8 * BLOCK, 0, 21), -1);
        /* Write them back out through fixed file 2 from the fixed buffers. */
        for (int i = 0; i < 8; i++) {
            c[8 + i] = (struct recorder_ctx){&rec, 8 + i};
            assert_non_null(auraio_write_ex(e, 2, auraio_buf_fixed(i / 4, (size_t)(i % 4) * BLOCK), BLOCK,
                                            (int64_t)i * BLOCK, AURAIO_FIXED_FILE, recorder_callback, &c[8 + i]));
        }
        assert_int_equal(harness_wait_for(e, &rec.total, 16, 5000), 0);
        for (int i = 0; i < 16; i++)
            assert_int_equal(atomic_load(&rec.results[i]), BLOCK);
        unsigned char *check = malloc(8 * BLOCK);
        assert_int_equal(pread(dst, check, 8 * BLOCK, 0), 8 * BLOCK);
        assert_int_equal(harness_check_pattern(check, 8 * BLOCK, 0, 21), -1);
        free(check);

        assert_int_equal(auraio_unregister(e, AURAIO_REG_BUFFERS), 0);
        assert_int_equal(auraio_unregister(e, AURAIO_REG_FILES), 0);
        assert_int_equal(auraio_unregister(e, AURAIO_REG_FILES), -ENOENT);
        assert_int_equal(auraio_buffer_free(e, mem, 8 * BLOCK), 0);
        auraio_destroy(e);
        recorder_assert_each_once(&rec, 16);
        close(src);
        close(dst);
    }
}

static void test_bad_indexes_never_reach_kernel(void **state)
{
    (void)state;
    auraio_engine_t *e = auraio_create();
    assert_non_null(e);
    int fd = harness_pattern_file(BLOCK, 1);
    static char mem[2 * BLOCK];
    struct iovec reg = {mem, sizeof(mem)};
    /* Nothing registered yet. */
    EXPECT_NULL_ERRNO(auraio_read(e, fd, auraio_buf_fixed(0, 0), 16, 0, harness_must_not_run, NULL), ENOENT);
    EXPECT_NULL_ERRNO(auraio_read_ex(e, 0, auraio_buf(mem), 16, 0, AURAIO_FIXED_FILE, harness_must_not_run, NULL), ENOENT);
    assert_int_equal(auraio_register_buffers(e, &reg, 1), 0);
    assert_int_equal(auraio_register_buffers(e, &reg, 1), -EBUSY);
    int fds[1] = {fd};
    assert_int_equal(auraio_register_files(e, fds, 1), 0);
    assert_int_equal(auraio_register_files(e, fds, 1), -EBUSY);
    EXPECT_NULL_ERRNO(auraio_read(e, fd, auraio_buf_fixed(1, 0), 16, 0, harness_must_not_run, NULL), ENOENT);
    EXPECT_NULL_ERRNO(auraio_read(e, fd, auraio_buf_fixed(-1, 0), 16, 0, harness_must_not_run, NULL), ENOENT);
    /* A negative index that a 16-bit truncation would turn into the registered buffer 0. */
    EXPECT_NULL_ERRNO(auraio_read(e, fd, auraio_buf_fixed(-65536, 0), 16, 0, harness_must_not_run, NULL), ENOENT);
    EXPECT_NULL_ERRNO(auraio_read(e, fd, auraio_buf_fixed(0, sizeof(mem) - 15), 16, 0, harness_must_not_run, NULL), ERANGE);
    EXPECT_NULL_ERRNO(auraio_read(e, fd, auraio_buf_fixed(0, SIZE_MAX), 16, 0, harness_must_not_run, NULL), ERANGE);
    EXPECT_NULL_ERRNO(auraio_read(e, fd, auraio_buf_fixed(0, 0), sizeof(mem) + 1, 0, harness_must_not_run, NULL), ERANGE);
    EXPECT_NULL_ERRNO(auraio_read_ex(e, 1, auraio_buf(mem), 16, 0, AURAIO_FIXED_FILE, harness_must_not_run, NULL), EBADF);
    EXPECT_NULL_ERRNO(auraio_read_ex(e, 0, auraio_buf(mem), 16, 0, 0x2, harness_must_not_run, NULL), EINVAL);
    EXPECT_NULL_ERRNO(auraio_readv_ex(e, 0, &reg, 1, 0, 0x4, harness_must_not_run, NULL), EINVAL);
    EXPECT_NULL_ERRNO(auraio_fsync(e, 3, AURAIO_FIXED_FILE, harness_must_not_run, NULL), EBADF);
    /* Nothing leaked: no slot is held by the refused submissions. */
    assert_int_equal(auraio_pending_count(e), 0);
    assert_int_equal(auraio_unregister(e, AURAIO_REG_BUFFERS), 0);
    assert_int_equal(auraio_unregister(e, AURAIO_REG_FILES), 0);

    /* Argument checks of the registration calls themselves. */
    struct iovec bad[2] = {{mem, 0}, {NULL, 16}};
    assert_int_equal(auraio_register_buffers(NULL, &reg, 1), -EINVAL);
    assert_int_equal(auraio_register_buffers(e, NULL, 1), -EINVAL);
    assert_int_equal(auraio_register_buffers(e, &reg, 0), -EINVAL);
    assert_int_equal(auraio_register_buffers(e, &reg, 1 << 20), -EINVAL); /* count * sizeof bounded */
    assert_int_equal(auraio_register_buffers(e, &bad[0], 1), -EINVAL);
    assert_int_equal(auraio_register_buffers(e, &bad[1], 1), -EINVAL);
    int badfds[2] = {fd, -7};
    assert_int_equal(auraio_register_files(e, badfds, 2), -EBADF);
    assert_int_equal(auraio_register_files(e, NULL, 2), -EINVAL);
    assert_int_equal(auraio_register_files(e, fds, INT32_MAX), -EINVAL);
    assert_int_equal(auraio_update_file(e, 0, fd), -ENOENT);
    assert_int_equal(auraio_unregister(e, (auraio_reg_type_t)5), -EINVAL);
    assert_int_equal(auraio_unregister(NULL, AURAIO_REG_FILES), -EINVAL);
    auraio_destroy(e);
    assert_int_equal(atomic_load(&harness_unexpected_callbacks), 0);
    close(fd);
}

struct unreg_in_cb {
    auraio_engine_t *e;
    int rc;
    int calls;
};

static void unregister_from_callback(auraio_request_t *r, ssize_t res, void *ud)
{
    (void)r;
    (void)res;
    struct unreg_in_cb *u = ud;
    u->calls++;
    /* The request no longer counts as using the registration once its callback runs. */
    u->rc = auraio_unregister(u->e, AURAIO_REG_BUFFERS);
}

static void test_unregister_busy_then_from_callback(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < TEST_CONFIG_COUNT; ci++) {
        auraio_engine_t *e = config_engine(&test_configs[ci]);
        assert_non_null(e);
        static char mem[BLOCK];
        struct iovec reg = {mem, sizeof(mem)};
        assert_int_equal(auraio_register_buffers(e, &reg, 1), 0);
        int p[2];
        assert_int_equal(pipe(p), 0);
        struct unreg_in_cb u = {.e = e, .rc = 1};
        assert_non_null(auraio_read(e, p[0], auraio_buf_fixed(0, 0), 5, 0, unregister_from_callback, &u));
        assert_int_equal(auraio_flush(e) >= 0, 1);
        assert_int_equal(auraio_unregister(e, AURAIO_REG_BUFFERS), -EBUSY);
        /* Refused means unchanged: another fixed read is still accepted. */
        assert_int_equal(auraio_pending_count(e), 1);
        assert_int_equal(write(p[1], "hello", 5), 5);
        while (u.calls == 0)
            assert_true(auraio_wait(e, 5000) > 0);
        assert_int_equal(u.rc, 0);
        assert_memory_equal(mem, "hello", 5);
        EXPECT_NULL_ERRNO(auraio_read(e, p[0], auraio_buf_fixed(0, 0), 5, 0, harness_must_not_run, NULL), ENOENT);
        auraio_destroy(e);
        assert_int_equal(u.calls, 1);
        close(p[0]);
        close(p[1]);
    }
}

/* A refused unregister hides the registration ring by ring until it meets the busy one; the rings
 * it had already hidden must get it back. Two rings, round-robin: ring 1 is busy, ring 0 idle. */
static void test_refused_unregister_restores_every_ring(void **state)
{
    (void)state;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 2;
    o.ring_select = AURAIO_SELECT_ROUND_ROBIN;
    o.disable_adaptive = true;
    o.initial_in_flight = 8;
    o.queue_depth = 8;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    int fd = harness_pattern_file(BLOCK, 3);
    static char mem[2 * BLOCK];
    struct iovec reg = {mem, sizeof(mem)};
    assert_int_equal(auraio_register_buffers(e, &reg, 1), 0);
    struct recorder rec;
    recorder_init(&rec);
    struct recorder_ctx ctx[3] = {{&rec, 0}, {&rec, 1}, {&rec, 2}};
    char plain[16];
    assert_non_null(auraio_read(e, fd, auraio_buf(plain), sizeof(plain), 0, recorder_callback, &ctx[0])); /* ring 0 */
    assert_int_equal(harness_wait_for(e, &rec.total, 1, 5000), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_non_null(auraio_read(e, p[0], auraio_buf_fixed(0, 0), 5, 0, recorder_callback, &ctx[1])); /* ring 1 */
    assert_int_equal(auraio_flush(e) >= 0, 1);
    assert_int_equal(auraio_unregister(e, AURAIO_REG_BUFFERS), -EBUSY);
    /* Ring 0 was hidden before ring 1 refused: it has the buffer again. */
    assert_non_null(auraio_read(e, fd, auraio_buf_fixed(0, BLOCK), BLOCK, 0, recorder_callback, &ctx[2])); /* ring 0 */
    assert_int_equal(write(p[1], "hello", 5), 5);
    assert_int_equal(harness_wait_for(e, &rec.total, 3, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[2]), BLOCK);
    assert_int_equal(harness_check_pattern(mem + BLOCK, BLOCK, 0, 3), -1);
    assert_memory_equal(mem, "hello", 5);
    assert_int_equal(auraio_unregister(e, AURAIO_REG_BUFFERS), 0);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 3);
    close(p[0]);
    close(p[1]);
    close(fd);
}

static void test_update_file(void **state)
{
    (void)state;
    auraio_engine_t *e = auraio_create();
    assert_non_null(e);
    int a = harness_pattern_file(BLOCK, 31);
    int b = harness_pattern_file(BLOCK, 32);
    int fds[2] = {a, -1};
    assert_int_equal(auraio_register_files(e, fds, 2), 0);
    char buf[BLOCK];
    struct recorder rec;
    struct recorder_ctx c[3] = {{&rec, 0}, {&rec, 1}, {&rec, 2}};
    recorder_init(&rec);
    assert_non_null(auraio_read_ex(e, 0, auraio_buf(buf), BLOCK, 0, AURAIO_FIXED_FILE, recorder_callback, &c[0]));
    assert_int_equal(harness_wait_for(e, &rec.total, 1, 5000), 0);
    assert_int_equal(harness_check_pattern(buf, BLOCK, 0, 31), -1);
    assert_int_equal(auraio_update_file(e, 0, b), 0);
    assert_non_null(auraio_read_ex(e, 0, auraio_buf(buf), BLOCK, 0, AURAIO_FIXED_FILE, recorder_callback, &c[1]));
    assert_int_equal(harness_wait_for(e, &rec.total, 2, 5000), 0);
    assert_int_equal(harness_check_pattern(buf, BLOCK, 0, 32), -1);
    /* An empty slot: the kernel reports EBADF for it. */
    assert_non_null(auraio_read_ex(e, 1, auraio_buf(buf), BLOCK, 0, AURAIO_FIXED_FILE, recorder_callback, &c[2]));
    assert_int_equal(harness_wait_for(e, &rec.total, 3, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[2]), -EBADF);
    assert_int_equal(auraio_update_file(e, 2, b), -ERANGE);
    assert_int_equal(auraio_update_file(e, -1, b), -ERANGE);
    assert_int_equal(auraio_update_file(e, 0, -9), -EBADF);
    assert_int_equal(auraio_update_file(NULL, 0, b), -EINVAL);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 3);
    close(a);
    close(b);
}

/* A plain read reuses the slot of a read through a registered file (one slot, so it must): it is
 * the fd it names, not a registered index left in the slot (the hot path copies only the fields a
 * plain request has and clears the rest: request.h, struct request_plain). */
static void test_plain_read_after_fixed_file_in_same_slot(void **state)
{
    (void)state;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    o.queue_depth = 1;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    int a = harness_pattern_file(BLOCK, 41);
    int b = harness_pattern_file(BLOCK, 42);
    assert_true(a >= 0 && b > 1); /* b as a registered index would be out of the table's range */
    assert_int_equal(auraio_register_files(e, &a, 1), 0);
    char buf[BLOCK];
    struct recorder rec;
    struct recorder_ctx c[2] = {{&rec, 0}, {&rec, 1}};
    recorder_init(&rec);
    assert_non_null(auraio_read_ex(e, 0, auraio_buf(buf), BLOCK, 0, AURAIO_FIXED_FILE, recorder_callback, &c[0]));
    assert_int_equal(harness_wait_for(e, &rec.total, 1, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[0]), BLOCK);
    assert_int_equal(harness_check_pattern(buf, BLOCK, 0, 41), -1);
    assert_non_null(auraio_read(e, b, auraio_buf(buf), BLOCK, 0, recorder_callback, &c[1]));
    assert_int_equal(harness_wait_for(e, &rec.total, 2, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[1]), BLOCK);
    assert_int_equal(harness_check_pattern(buf, BLOCK, 0, 42), -1);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 2);
    close(a);
    close(b);
}

/* A registered read the ring refuses leaves its slot free (ring.c, auraio__ring_submit) after its
 * arguments were copied in: the slot must be given back in a free slot's shape, which the plain
 * submit relies on (request.h, request_reshape_free; debug builds assert it there). One slot, so
 * the plain read takes the refused read's. */
static void test_plain_read_after_refused_fixed_file_in_same_slot(void **state)
{
    (void)state;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    o.queue_depth = 1;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    int a = harness_pattern_file(BLOCK, 44);
    int b = harness_pattern_file(BLOCK, 45);
    assert_true(a >= 0 && b >= 0);
    assert_int_equal(auraio_register_files(e, &a, 1), 0);
    char buf[BLOCK];
    struct recorder rec;
    struct recorder_ctx c = {&rec, 0};
    recorder_init(&rec);
    /* Index 1 of a one-file table: refused under the ring's lock, no callback. */
    errno = 0;
    assert_null(auraio_read_ex(e, 1, auraio_buf(buf), BLOCK, 0, AURAIO_FIXED_FILE, recorder_callback, &c));
    assert_int_equal(errno, EBADF);
    assert_non_null(auraio_read(e, b, auraio_buf(buf), BLOCK, 0, recorder_callback, &c));
    assert_int_equal(harness_wait_for(e, &rec.total, 1, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[0]), BLOCK);
    assert_int_equal(harness_check_pattern(buf, BLOCK, 0, 45), -1);
    /* Unregistering succeeds: the refused read never counted as a user of the files. */
    assert_int_equal(auraio_unregister(e, AURAIO_REG_FILES), 0);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 1);
    close(a);
    close(b);
}

/* A read through a registered file that waited in the backlog still ends its use of the files
 * when it completes: it leaves the backlog as a lone plain read (ring.c, start_plain), but not as
 * one whose completion may skip the registration accounting (request.h, quick). */
static void test_fixed_file_read_from_backlog_ends_its_use(void **state)
{
    (void)state;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    o.queue_depth = 4;
    o.disable_adaptive = true;
    o.initial_in_flight = 1;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    int a = harness_pattern_file(BLOCK, 43);
    assert_true(a >= 0);
    assert_int_equal(auraio_register_files(e, &a, 1), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    char first[5], buf[BLOCK];
    struct recorder rec;
    struct recorder_ctx c[2] = {{&rec, 0}, {&rec, 1}};
    recorder_init(&rec);
    /* The pipe read holds the limit of 1, so the registered-file read waits in the backlog. */
    assert_non_null(auraio_read(e, p[0], auraio_buf(first), sizeof(first), 0, recorder_callback, &c[0]));
    assert_non_null(auraio_read_ex(e, 0, auraio_buf(buf), BLOCK, 0, AURAIO_FIXED_FILE, recorder_callback, &c[1]));
    auraio_metrics_t m;
    assert_int_equal(auraio_get_metrics(e, 0, &m), 0);
    assert_int_equal(m.backlog_length, 1);
    assert_int_equal(auraio_unregister(e, AURAIO_REG_FILES), -EBUSY);
    assert_int_equal(write(p[1], "hello", 5), 5);
    assert_int_equal(harness_wait_for(e, &rec.total, 2, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[1]), BLOCK);
    assert_int_equal(harness_check_pattern(buf, BLOCK, 0, 43), -1);
    assert_int_equal(auraio_unregister(e, AURAIO_REG_FILES), 0);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 2);
    close(p[0]);
    close(p[1]);
    close(a);
}

/* Destroy drains I/O that uses the registrations before the rings (and with them the kernel's
 * registrations) go away: the blocked fixed reads complete with -ECANCELED, exactly once. */
static void test_destroy_with_registered_inflight(void **state)
{
    (void)state;
    auraio_engine_t *e = auraio_create();
    assert_non_null(e);
    static char mem[4][64];
    struct iovec reg[4] = {{mem[0], 64}, {mem[1], 64}, {mem[2], 64}, {mem[3], 64}};
    assert_int_equal(auraio_register_buffers(e, reg, 4), 0);
    int p[2];
    assert_int_equal(pipe(p), 0);
    int fds[1] = {p[0]};
    assert_int_equal(auraio_register_files(e, fds, 1), 0);
    struct recorder rec;
    struct recorder_ctx c[4];
    recorder_init(&rec);
    for (int i = 0; i < 4; i++) {
        c[i] = (struct recorder_ctx){&rec, i};
        assert_non_null(auraio_read_ex(e, 0, auraio_buf_fixed(i, 0), 64, 0, AURAIO_FIXED_FILE, recorder_callback, &c[i]));
    }
    assert_true(auraio_flush(e) >= 0);
    assert_int_equal(auraio_unregister(e, AURAIO_REG_FILES), -EBUSY);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(atomic_load(&rec.results[i]), -ECANCELED);
    close(p[0]);
    close(p[1]);
}

/* AURAIO_FIXED_FILE on the vectored calls and fsync, not only read/write: a writev through the
 * registered index, an fsync through it, a readv back; the bytes match. */
static void test_fixed_file_on_vectored_and_fsync(void **state)
{
    (void)state;
    auraio_engine_t *e = config_engine(&test_configs[0]);
    assert_non_null(e);
    int fd = harness_temp_file(0);
    assert_true(fd >= 0);
    int fds[2] = {-1, fd};
    assert_int_equal(auraio_register_files(e, fds, 2), 0);
    static unsigned char out[2][4096], in[2][4096];
    harness_fill_pattern(out[0], 4096, 0, 21);
    harness_fill_pattern(out[1], 4096, 4096, 21);
    struct iovec wv[2] = {{out[0], 4096}, {out[1], 4096}};
    struct iovec rv[2] = {{in[0], 4096}, {in[1], 4096}};
    struct recorder rec;
    struct recorder_ctx c[3] = {{&rec, 0}, {&rec, 1}, {&rec, 2}};
    recorder_init(&rec);
    assert_non_null(auraio_writev_ex(e, 1, wv, 2, 0, AURAIO_FIXED_FILE, recorder_callback, &c[0]));
    assert_int_equal(harness_wait_for(e, &rec.total, 1, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[0]), 8192);
    assert_non_null(auraio_fsync(e, 1, AURAIO_FIXED_FILE | AURAIO_FSYNC_DATASYNC, recorder_callback, &c[1]));
    assert_int_equal(harness_wait_for(e, &rec.total, 2, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[1]), 0);
    assert_non_null(auraio_readv_ex(e, 1, rv, 2, 0, AURAIO_FIXED_FILE, recorder_callback, &c[2]));
    assert_int_equal(harness_wait_for(e, &rec.total, 3, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[2]), 8192);
    assert_int_equal(harness_check_pattern(in[0], 4096, 0, 21), -1);
    assert_int_equal(harness_check_pattern(in[1], 4096, 4096, 21), -1);
    /* The empty slot and an index past the table are refused before the kernel. */
    EXPECT_NULL_ERRNO(auraio_readv_ex(e, 2, rv, 2, 0, AURAIO_FIXED_FILE, harness_must_not_run, NULL), EBADF);
    EXPECT_NULL_ERRNO(auraio_fsync(e, 7, AURAIO_FIXED_FILE, harness_must_not_run, NULL), EBADF);
    auraio_destroy(e);
    recorder_assert_each_once(&rec, 3);
    assert_int_equal(atomic_load(&harness_unexpected_callbacks), 0);
    close(fd);
}

/* Buffers over 1 GiB: registration refuses them (the kernel's per-buffer limit); a plain read into
 * one is accepted and, as any read, may return fewer bytes than asked (here: the file's size). */
static void test_buffers_over_one_gib(void **state)
{
    (void)state;
    auraio_engine_t *e = config_engine(&test_configs[1]);
    assert_non_null(e);
    size_t big = (1ull << 30) + 4096;
    /* Address space only: nothing is touched but the first page the read fills. */
    void *mem = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(mem != MAP_FAILED);
    struct iovec reg = {mem, big};
    assert_int_equal(auraio_register_buffers(e, &reg, 1), -EINVAL);
    int fd = harness_pattern_file(4096, 22);
    struct recorder rec;
    struct recorder_ctx c = {&rec, 0};
    recorder_init(&rec);
    assert_non_null(auraio_read(e, fd, auraio_buf(mem), big, 0, recorder_callback, &c));
    assert_int_equal(harness_wait_for(e, &rec.total, 1, 5000), 0);
    assert_int_equal(atomic_load(&rec.results[0]), 4096); /* short read, passed through */
    assert_int_equal(harness_check_pattern(mem, 4096, 0, 22), -1);
    auraio_destroy(e);
    munmap(mem, big);
    close(fd);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_buffers_and_files_every_config),
        cmocka_unit_test(test_bad_indexes_never_reach_kernel),
        cmocka_unit_test(test_unregister_busy_then_from_callback),
        cmocka_unit_test(test_refused_unregister_restores_every_ring),
        cmocka_unit_test(test_update_file),
        cmocka_unit_test(test_plain_read_after_fixed_file_in_same_slot),
        cmocka_unit_test(test_plain_read_after_refused_fixed_file_in_same_slot),
        cmocka_unit_test(test_fixed_file_read_from_backlog_ends_its_use),
        cmocka_unit_test(test_destroy_with_registered_inflight),
        cmocka_unit_test(test_fixed_file_on_vectored_and_fsync),
        cmocka_unit_test(test_buffers_over_one_gib),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
