/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Metadata and space ops against real files in a temp directory, each effect checked by an
 * independent syscall (fstat, stat, pread, fcntl, mincore); every bad argument of every new call
 * refused with its errno and nothing leaked (fds, request slots); metadata ops kept out of the
 * controller's latency histogram.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define BLOCK 4096
#define WAIT_MS 5000

static char dir[PATH_MAX];

/* One request's outcome. */
struct one {
    _Atomic int calls;
    _Atomic long result;
};

static void one_cb(auraio_request_t *req, ssize_t result, void *ud)
{
    (void)req;
    struct one *o = ud;
    atomic_store(&o->result, (long)result);
    atomic_fetch_add(&o->calls, 1);
}

/* Wait for @p o's callback; assert it ran exactly once; return its result. */
static long finish(auraio_engine_t *e, struct one *o)
{
    assert_int_equal(harness_wait_for(e, &o->calls, 1, WAIT_MS), 0);
    assert_int_equal(auraio_wait(e, 0), 0); /* nothing else pending, no second callback */
    assert_int_equal(atomic_load(&o->calls), 1);
    return atomic_load(&o->result);
}

static auraio_engine_t *engine(int rings)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = rings;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    return e;
}

static void path_in_dir(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

static int open_fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int setup_dir(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/auraio-ops-XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
                char p[PATH_MAX + 256];
                snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
                unlink(p);
            }
        }
        closedir(d);
    }
    rmdir(dir);
    return 0;
}

/* openat with O_CREAT and a mode, relative to a directory fd and to AT_FDCWD; close through the
 * ring; the fd is checked with fstat and fcntl. */
static void test_openat_create_and_close(void **state)
{
    (void)state;
    auraio_engine_t *e = engine(2);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(dfd >= 0);
    mode_t old = umask(0);
    struct one o = {0};
    assert_non_null(auraio_openat(e, dfd, "created", O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0640, 0, one_cb, &o));
    long fd = finish(e, &o);
    umask(old);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat((int)fd, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(pwrite((int)fd, "abc", 3, 0), 3);

    /* The same file again by absolute path, read-only: O_EXCL now fails with -EEXIST. */
    char p[PATH_MAX + 32];
    path_in_dir(p, sizeof(p), "created");
    struct one o2 = {0};
    assert_non_null(auraio_openat(e, AT_FDCWD, p, O_CREAT | O_EXCL | O_RDWR, 0600, 0, one_cb, &o2));
    assert_int_equal(finish(e, &o2), -EEXIST);
    struct one o3 = {0};
    assert_non_null(auraio_openat(e, AT_FDCWD, p, O_RDONLY | O_CLOEXEC, 0, 0, one_cb, &o3));
    long fd2 = finish(e, &o3);
    assert_true(fd2 >= 0);
    char buf[4] = {0};
    assert_int_equal(pread((int)fd2, buf, 3, 0), 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(fcntl((int)fd2, F_GETFL) & O_ACCMODE, O_RDONLY);

    /* A missing file: the kernel's -ENOENT. */
    struct one o4 = {0};
    assert_non_null(auraio_openat(e, dfd, "missing", O_RDONLY, 0, 0, one_cb, &o4));
    assert_int_equal(finish(e, &o4), -ENOENT);

    /* Close both through the ring: fcntl then says they are gone. */
    struct one c1 = {0}, c2 = {0};
    assert_non_null(auraio_close(e, (int)fd, 0, one_cb, &c1));
    assert_int_equal(finish(e, &c1), 0);
    assert_non_null(auraio_close(e, (int)fd2, 0, one_cb, &c2));
    assert_int_equal(finish(e, &c2), 0);
    errno = 0;
    assert_int_equal(fcntl((int)fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(fcntl((int)fd2, F_GETFD), -1);
    /* Closing it again: -EBADF from the kernel. */
    struct one c3 = {0};
    assert_non_null(auraio_close(e, (int)fd, 0, one_cb, &c3));
    assert_int_equal(finish(e, &c3), -EBADF);
    auraio_destroy(e);
    close(dfd);
}

static void test_openat_odirect(void **state)
{
    (void)state;
    if (!harness_odirect_supported()) {
        print_message("O_DIRECT not supported in %s: checked only that the flag is passed\n", dir);
        return;
    }
    auraio_engine_t *e = engine(1);
    char p[PATH_MAX + 32];
    path_in_dir(p, sizeof(p), "direct");
    struct one o = {0};
    assert_non_null(auraio_openat(e, AT_FDCWD, p, O_CREAT | O_RDWR | O_DIRECT | O_CLOEXEC, 0600, 0, one_cb, &o));
    long fd = finish(e, &o);
    assert_true(fd >= 0);
    assert_true(fcntl((int)fd, F_GETFL) & O_DIRECT);
    close((int)fd);
    auraio_destroy(e);
}

/* statx by path and by fd (AT_EMPTY_PATH) against stat(2). */
static void test_statx(void **state)
{
    (void)state;
    auraio_engine_t *e = engine(0);
    char p[PATH_MAX + 32];
    path_in_dir(p, sizeof(p), "sized");
    int fd = open(p, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 12345), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);

    struct statx sx;
    memset(&sx, 0xa5, sizeof(sx));
    struct one o = {0};
    assert_non_null(auraio_statx(e, AT_FDCWD, p, 0, STATX_SIZE | STATX_MODE | STATX_INO, &sx, 0, one_cb, &o));
    assert_int_equal(finish(e, &o), 0);
    assert_true(sx.stx_mask & STATX_SIZE);
    assert_int_equal(sx.stx_size, 12345);
    assert_int_equal(sx.stx_ino, st.st_ino);
    assert_int_equal(sx.stx_mode, st.st_mode);

    struct statx sx2;
    memset(&sx2, 0, sizeof(sx2));
    struct one o2 = {0};
    assert_non_null(auraio_statx(e, fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx2, 0, one_cb, &o2));
    assert_int_equal(finish(e, &o2), 0);
    assert_int_equal(sx2.stx_size, 12345);

    struct one o3 = {0};
    assert_non_null(auraio_statx(e, AT_FDCWD, "/nonexistent/auraio", 0, STATX_SIZE, &sx2, 0, one_cb, &o3));
    assert_int_equal(finish(e, &o3), -ENOENT);
    auraio_destroy(e);
    close(fd);
}

/* fallocate extends, KEEP_SIZE allocates without extending, PUNCH_HOLE zeroes; ftruncate sets the
 * size both ways. */
static void test_fallocate_and_ftruncate(void **state)
{
    (void)state;
    auraio_engine_t *e = engine(2);
    int fd = harness_pattern_file(4 * BLOCK, 3);
    assert_true(fd >= 0);
    struct stat st;

    struct one o = {0};
    assert_non_null(auraio_fallocate(e, fd, 0, 0, 64 * BLOCK, 0, one_cb, &o));
    long rc = finish(e, &o);
    if (rc == -EOPNOTSUPP) {
        print_message("the temp filesystem has no fallocate: only the result is checked\n");
    } else {
        assert_int_equal(rc, 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_size, 64 * BLOCK);

        struct one k = {0};
        assert_non_null(auraio_fallocate(e, fd, FALLOC_FL_KEEP_SIZE, 64 * BLOCK, 64 * BLOCK, 0, one_cb, &k));
        assert_int_equal(finish(e, &k), 0);
        assert_int_equal(fstat(fd, &st), 0);
        assert_int_equal(st.st_size, 64 * BLOCK);
        assert_true(st.st_blocks * 512 >= 128 * BLOCK);

        struct one h = {0};
        assert_non_null(
            auraio_fallocate(e, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, BLOCK, BLOCK, 0, one_cb, &h));
        long hr = finish(e, &h);
        if (hr != -EOPNOTSUPP) {
            assert_int_equal(hr, 0);
            unsigned char buf[BLOCK], zero[BLOCK] = {0};
            assert_int_equal(pread(fd, buf, BLOCK, BLOCK), BLOCK);
            assert_memory_equal(buf, zero, BLOCK);
            assert_int_equal(pread(fd, buf, BLOCK, 0), BLOCK);
            assert_int_equal(harness_check_pattern(buf, BLOCK, 0, 3), -1); /* the rest untouched */
        }
    }

    struct one t = {0};
    assert_non_null(auraio_ftruncate(e, fd, 3 * BLOCK + 5, 0, one_cb, &t));
    assert_int_equal(finish(e, &t), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 3 * BLOCK + 5);
    struct one t2 = {0};
    assert_non_null(auraio_ftruncate(e, fd, 100 * BLOCK, 0, one_cb, &t2));
    assert_int_equal(finish(e, &t2), 0);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 100 * BLOCK);
    /* Truncating a read-only fd: the kernel's -EINVAL (or -EBADF), never a success. */
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    int ro = open(proc, O_RDONLY | O_CLOEXEC);
    assert_true(ro >= 0);
    struct one t3 = {0};
    assert_non_null(auraio_ftruncate(e, ro, 0, 0, one_cb, &t3));
    long r3 = finish(e, &t3);
    assert_true(r3 == -EINVAL || r3 == -EBADF);
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 100 * BLOCK);
    close(ro);
    auraio_destroy(e);
    close(fd);
}

/* sync_file_range and fadvise: results, and fadvise's effect on the page cache (mincore). */
static void test_sync_file_range_and_fadvise(void **state)
{
    (void)state;
    auraio_engine_t *e = engine(1);
    int fd = harness_pattern_file(64 * BLOCK, 5);
    assert_true(fd >= 0);
    struct one s = {0};
    assert_non_null(auraio_sync_file_range(
        e, fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER, 0, one_cb, &s));
    assert_int_equal(finish(e, &s), 0);
    struct one s2 = {0};
    assert_non_null(auraio_sync_file_range(e, 1000000, 0, BLOCK, SYNC_FILE_RANGE_WRITE, 0, one_cb, &s2));
    assert_int_equal(finish(e, &s2), -EBADF);

    /* The data is on disk now (written back above), so DONTNEED can drop the clean pages. */
    assert_int_equal(fdatasync(fd), 0);
    struct one a = {0};
    assert_non_null(auraio_fadvise(e, fd, 0, 0, POSIX_FADV_DONTNEED, 0, one_cb, &a));
    assert_int_equal(finish(e, &a), 0);
    void *map = mmap(NULL, 64 * BLOCK, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    unsigned char vec[64];
    assert_int_equal(mincore(map, 64 * BLOCK, vec), 0);
    int resident = 0;
    for (int i = 0; i < 64; i++)
        resident += vec[i] & 1;
    /* tmpfs cannot drop its pages (they are the file); a disk filesystem drops them. */
    struct one w = {0};
    assert_non_null(auraio_fadvise(e, fd, 0, 64 * BLOCK, POSIX_FADV_WILLNEED, 0, one_cb, &w));
    assert_int_equal(finish(e, &w), 0);
    int after = 0;
    for (int tries = 0; tries < 1000 && after < 64; tries++) {
        assert_int_equal(mincore(map, 64 * BLOCK, vec), 0);
        after = 0;
        for (int i = 0; i < 64; i++)
            after += vec[i] & 1;
        if (after < 64)
            usleep(1000); /* readahead is asynchronous: poll its effect, bounded */
    }
    print_message("resident pages: %d after DONTNEED, %d after WILLNEED\n", resident, after);
    assert_int_equal(after, 64);
    munmap(map, 64 * BLOCK);
    auraio_destroy(e);
    close(fd);
}

/* madvise(MADV_DONTNEED) on private anonymous memory zeroes it: an effect nothing else causes. */
static void test_madvise(void **state)
{
    (void)state;
    auraio_engine_t *e = engine(1);
    size_t len = 16 * BLOCK;
    unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    memset(m, 0x5a, len);
    struct one o = {0};
    assert_non_null(auraio_madvise(e, m + 4 * BLOCK, 4 * BLOCK, MADV_DONTNEED, 0, one_cb, &o));
    assert_int_equal(finish(e, &o), 0);
    assert_int_equal(m[4 * BLOCK], 0);
    assert_int_equal(m[8 * BLOCK - 1], 0);
    assert_int_equal(m[4 * BLOCK - 1], 0x5a);
    assert_int_equal(m[8 * BLOCK], 0x5a);
    struct one bad = {0};
    assert_non_null(auraio_madvise(e, m + 1, BLOCK, MADV_DONTNEED, 0, one_cb, &bad)); /* unaligned */
    assert_int_equal(finish(e, &bad), -EINVAL);
    munmap(m, len);
    auraio_destroy(e);
}

/* openat straight into a registered slot, read through it, close the slot. */
static void test_openat_direct_and_fixed_close(void **state)
{
    (void)state;
    auraio_engine_t *e = engine(1);
    int src = harness_pattern_file(4 * BLOCK, 9);
    assert_true(src >= 0);
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", src);
    int fds[2] = {-1, -1};
    assert_int_equal(auraio_register_files(e, fds, 2), 0);
    int before = open_fd_count();

    struct one o = {0};
    assert_non_null(auraio_openat_direct(e, AT_FDCWD, proc, O_RDONLY, 0, 1, 0, one_cb, &o));
    assert_int_equal(finish(e, &o), 0);
    assert_int_equal(open_fd_count(), before); /* no file descriptor was created */

    unsigned char buf[BLOCK];
    struct one r = {0};
    assert_non_null(auraio_read_ex(e, 1, auraio_buf(buf), BLOCK, BLOCK, AURAIO_FIXED_FILE, one_cb, &r));
    assert_int_equal(finish(e, &r), BLOCK);
    assert_int_equal(harness_check_pattern(buf, BLOCK, BLOCK, 9), -1);

    struct one c = {0};
    assert_non_null(auraio_close(e, 1, AURAIO_FIXED_FILE, one_cb, &c));
    assert_int_equal(finish(e, &c), 0);
    struct one r2 = {0};
    assert_non_null(auraio_read_ex(e, 1, auraio_buf(buf), BLOCK, 0, AURAIO_FIXED_FILE, one_cb, &r2));
    assert_int_equal(finish(e, &r2), -EBADF);

    /* Index beyond the table, and a multi-ring engine: refused at submit. */
    EXPECT_NULL_ERRNO(auraio_openat_direct(e, AT_FDCWD, proc, O_RDONLY, 0, 2, 0, one_cb, &o), EBADF);
    EXPECT_NULL_ERRNO(auraio_close(e, 2, AURAIO_FIXED_FILE, one_cb, &o), EBADF);
    auraio_engine_t *e2 = engine(2);
    EXPECT_NULL_ERRNO(auraio_openat_direct(e2, AT_FDCWD, proc, O_RDONLY, 0, 0, 0, one_cb, &o), EINVAL);
    /* No files registered on e2: ENOENT for a fixed close. */
    EXPECT_NULL_ERRNO(auraio_close(e2, 0, AURAIO_FIXED_FILE, one_cb, &o), ENOENT);
    auraio_destroy(e2);
    auraio_destroy(e);
    close(src);
}

/* Every bad argument of every new call: the errno, no callback, no slot or fd leaked. */
static void test_bad_arguments(void **state)
{
    (void)state;
    auraio_options_t opt;
    auraio_options_init(&opt);
    opt.ring_count = 1;
    opt.queue_depth = 4;
    auraio_engine_t *e = auraio_create_with_options(&opt);
    assert_non_null(e);
    int fd = harness_temp_file(0);
    assert_true(fd >= 0);
    int fds_before = open_fd_count();
    struct statx sx;
    char byte;
    auraio_callback_t cb = harness_must_not_run;
    atomic_store(&harness_unexpected_callbacks, 0);

    for (int round = 0; round < 8; round++) { /* more rounds than slots: a leak would show */
        EXPECT_NULL_ERRNO(auraio_openat(NULL, AT_FDCWD, "x", O_RDONLY, 0, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_openat(e, AT_FDCWD, "x", O_RDONLY, 0, 0, NULL, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_openat(e, AT_FDCWD, NULL, O_RDONLY, 0, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_openat(e, -5, "x", O_RDONLY, 0, 0, cb, NULL), EBADF);
        EXPECT_NULL_ERRNO(auraio_openat(e, AT_FDCWD, "x", O_CREAT, 010000, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_openat(e, AT_FDCWD, "x", O_RDONLY, 0, AURAIO_FIXED_FILE, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_openat(e, AT_FDCWD, "x", O_RDONLY, 0, 1u << 20, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_openat(e, AT_FDCWD, "x", O_RDONLY, 0, AURAIO_LINK | AURAIO_HARDLINK, cb, NULL),
                          EINVAL);
        EXPECT_NULL_ERRNO(auraio_openat_direct(e, AT_FDCWD, "x", O_RDONLY, 0, -1, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_openat_direct(NULL, AT_FDCWD, "x", O_RDONLY, 0, 0, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_openat_direct(e, AT_FDCWD, "x", O_RDONLY, 0, 0, 0, cb, NULL), ENOENT);
        EXPECT_NULL_ERRNO(auraio_close(NULL, fd, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_close(e, fd, 0, NULL, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_close(e, -1, 0, cb, NULL), EBADF);
        EXPECT_NULL_ERRNO(auraio_close(e, fd, AURAIO_FSYNC_DATASYNC, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_statx(NULL, AT_FDCWD, "x", 0, STATX_SIZE, &sx, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_statx(e, AT_FDCWD, NULL, 0, STATX_SIZE, &sx, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_statx(e, AT_FDCWD, "x", 0, STATX_SIZE, NULL, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_statx(e, -2, "x", 0, STATX_SIZE, &sx, 0, cb, NULL), EBADF);
        EXPECT_NULL_ERRNO(auraio_statx(e, AT_FDCWD, "x", 0, STATX_SIZE, &sx, AURAIO_FIXED_FILE, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_statx(e, AT_FDCWD, "x", 0, STATX_SIZE, &sx, 0, NULL, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fallocate(NULL, fd, 0, 0, 1, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fallocate(e, -1, 0, 0, 1, 0, cb, NULL), EBADF);
        EXPECT_NULL_ERRNO(auraio_fallocate(e, fd, 0, -1, 1, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fallocate(e, fd, 0, 0, 0, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fallocate(e, fd, 0, 0, -4, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fallocate(e, fd, 0, 0, 1, 1u << 3, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fallocate(e, fd, 0, 0, 1, 0, NULL, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fallocate(e, fd, 0, 0, 1, AURAIO_FIXED_FILE, cb, NULL), ENOENT);
        EXPECT_NULL_ERRNO(auraio_ftruncate(NULL, fd, 0, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_ftruncate(e, -3, 0, 0, cb, NULL), EBADF);
        EXPECT_NULL_ERRNO(auraio_ftruncate(e, fd, -1, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_ftruncate(e, fd, 0, 0, NULL, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_ftruncate(e, fd, 0, AURAIO_FSYNC_DATASYNC, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_sync_file_range(NULL, fd, 0, 0, 0, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_sync_file_range(e, -1, 0, 0, 0, 0, cb, NULL), EBADF);
        EXPECT_NULL_ERRNO(auraio_sync_file_range(e, fd, -1, 0, 0, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_sync_file_range(e, fd, 0, 0, 8, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_sync_file_range(e, fd, 0, 0, 0, 0, NULL, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fadvise(NULL, fd, 0, 0, POSIX_FADV_NORMAL, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fadvise(e, -1, 0, 0, POSIX_FADV_NORMAL, 0, cb, NULL), EBADF);
        EXPECT_NULL_ERRNO(auraio_fadvise(e, fd, -1, 0, POSIX_FADV_NORMAL, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fadvise(e, fd, 0, -1, POSIX_FADV_NORMAL, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fadvise(e, fd, 0, (int64_t)UINT32_MAX + 1, POSIX_FADV_NORMAL, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fadvise(e, fd, 0, 0, 6, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fadvise(e, fd, 0, 0, -1, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_fadvise(e, fd, 0, 0, POSIX_FADV_NORMAL, 0, NULL, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_madvise(NULL, &byte, 1, MADV_NORMAL, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_madvise(e, NULL, 1, MADV_NORMAL, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_madvise(e, &byte, 0, MADV_NORMAL, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_madvise(e, &byte, (size_t)UINT32_MAX + 1, MADV_NORMAL, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_madvise(e, &byte, 1, -1, 0, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_madvise(e, &byte, 1, MADV_NORMAL, AURAIO_FIXED_FILE, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_madvise(e, &byte, 1, MADV_NORMAL, 0, NULL, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_timeout(NULL, 1000, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_timeout(e, 1000, NULL, NULL), EINVAL);
        assert_int_equal(auraio_set_next_timeout(NULL, 1000), -EINVAL);
        assert_int_equal(auraio_cancel_fd(NULL, fd), -EINVAL);
        assert_int_equal(auraio_cancel_fd(e, -1), -EBADF);
        /* The link flags are refused together by the older calls too. */
        EXPECT_NULL_ERRNO(auraio_fsync(e, fd, AURAIO_LINK | AURAIO_HARDLINK, cb, NULL), EINVAL);
        EXPECT_NULL_ERRNO(auraio_read_ex(e, fd, auraio_buf(&byte), 1, 0, AURAIO_LINK | AURAIO_HARDLINK, cb, NULL),
                          EINVAL);
    }
    assert_int_equal(auraio_pending_count(e), 0);
    assert_int_equal(open_fd_count(), fds_before);
    /* Every slot is still free: queue_depth requests go in. */
    struct one ok[4];
    memset(ok, 0, sizeof(ok));
    for (int i = 0; i < 4; i++)
        assert_non_null(auraio_fadvise(e, fd, 0, 0, POSIX_FADV_NORMAL, 0, one_cb, &ok[i]));
    for (int i = 0; i < 4; i++)
        assert_int_equal(harness_wait_for(e, &ok[i].calls, 1, WAIT_MS), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(atomic_load(&ok[i].result), 0);
    auraio_destroy(e);
    assert_int_equal(atomic_load(&harness_unexpected_callbacks), 0);
    close(fd);
}

static void count_cb(auraio_request_t *req, ssize_t result, void *ud)
{
    (void)req;
    (void)result;
    atomic_fetch_add((_Atomic int *)ud, 1);
}

/* Metadata ops are counted as operations but never reach the latency histogram the controller
 * reads (the lifetime metrics fold exactly that histogram, window by window, and count the active
 * window too, so the count is exact); reads do. */
static void test_metadata_ops_not_in_latency_histogram(void **state)
{
    (void)state;
    auraio_engine_t *e = engine(1);
    int fd = harness_pattern_file(16 * BLOCK, 1);
    assert_true(fd >= 0);
    static auraio_metrics_t m;
    static struct statx sx;
    _Atomic int done = 0;
    enum { ROUNDS = 300, READS = 10 };
    for (int round = 0; round < ROUNDS; round++) {
        assert_non_null(auraio_statx(e, fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx, 0, count_cb, (void *)&done));
        assert_non_null(auraio_fadvise(e, fd, 0, 0, POSIX_FADV_NORMAL, 0, count_cb, (void *)&done));
        assert_non_null(auraio_ftruncate(e, fd, 16 * BLOCK, 0, count_cb, (void *)&done));
        assert_int_equal(harness_wait_for(e, &done, 3 * (round + 1), WAIT_MS), 0);
    }
    assert_int_equal(auraio_get_metrics(e, AURAIO_ALL_RINGS, &m), 0);
    assert_int_equal(m.latency_count, 0);
    assert_int_equal(m.ops[AURAIO_OP_KIND_OTHER], 3 * ROUNDS);
    auraio_stats_t st;
    assert_int_equal(auraio_get_stats(e, &st), 0);
    assert_int_equal(st.ops_completed, 3 * ROUNDS);
    assert_int_equal(st.bytes_transferred, 0);

    /* Reads are samples: the check above could see them. */
    unsigned char buf[BLOCK];
    for (int i = 0; i < READS; i++) {
        assert_non_null(auraio_read(e, fd, auraio_buf(buf), BLOCK, 0, count_cb, (void *)&done));
        assert_int_equal(harness_wait_for(e, &done, 3 * ROUNDS + i + 1, WAIT_MS), 0);
    }
    assert_int_equal(auraio_get_metrics(e, AURAIO_ALL_RINGS, &m), 0);
    assert_int_equal(m.latency_count, READS);
    auraio_destroy(e);
    close(fd);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openat_create_and_close),
        cmocka_unit_test(test_openat_odirect),
        cmocka_unit_test(test_statx),
        cmocka_unit_test(test_fallocate_and_ftruncate),
        cmocka_unit_test(test_sync_file_range_and_fadvise),
        cmocka_unit_test(test_madvise),
        cmocka_unit_test(test_openat_direct_and_fixed_close),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_metadata_ops_not_in_latency_histogram),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
