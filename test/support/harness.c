/* SPDX-License-Identifier: Apache-2.0 */
/* Test helpers (see harness.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

void harness_require_io_uring(void)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    long fd = syscall(__NR_io_uring_setup, 4, &p);
    if (fd >= 0) {
        close((int)fd);
        return;
    }
    if (errno == ENOSYS || errno == EPERM) {
        printf("SKIP: io_uring is unavailable here: io_uring_setup: %s%s\n", strerror(errno),
               errno == EPERM ? " (kernel.io_uring_disabled or a seccomp filter)" : "");
        if (getenv("CI") && getenv("AURAIO_REQUIRE_IO_URING")) {
            printf("FAIL: AURAIO_REQUIRE_IO_URING is set\n");
            exit(99);
        }
        exit(77);
    }
    printf("ERROR: io_uring_setup failed unexpectedly: %s\n", strerror(errno));
    exit(99);
}

void harness_fill_pattern(void *buf, size_t len, uint64_t file_pos, unsigned seed)
{
    unsigned char *b = buf;
    for (size_t i = 0; i < len; i++)
        b[i] = harness_pattern_byte(file_pos + i, seed);
}

long harness_check_pattern(const void *buf, size_t len, uint64_t file_pos, unsigned seed)
{
    const unsigned char *b = buf;
    for (size_t i = 0; i < len; i++) {
        if (b[i] != harness_pattern_byte(file_pos + i, seed))
            return (long)i;
    }
    return -1;
}

static const char *temp_dir(void)
{
    const char *d = getenv("TMPDIR");
    return d && *d ? d : "/tmp";
}

int harness_temp_file(int extra_flags)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/auraio-test-XXXXXX", temp_dir());
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    unlink(path);
    if (extra_flags) {
        /* O_DIRECT cannot be added with fcntl on every filesystem; reopen through /proc. */
        char proc[64];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        int fd2 = open(proc, O_RDWR | O_CLOEXEC | extra_flags);
        int err = errno;
        close(fd);
        return fd2 < 0 ? -err : fd2;
    }
    return fd;
}

int harness_pattern_file(size_t size, unsigned seed)
{
    int fd = harness_temp_file(0);
    if (fd < 0)
        return fd;
    size_t chunk = 1 << 20;
    unsigned char *buf = malloc(chunk);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        harness_fill_pattern(buf, n, off, seed);
        if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) {
            int err = errno ? errno : EIO;
            free(buf);
            close(fd);
            return -err;
        }
    }
    free(buf);
    return fd;
}

bool harness_odirect_supported(void)
{
    int fd = harness_temp_file(O_DIRECT);
    if (fd < 0)
        return false;
    void *buf = NULL;
    bool ok = false;
    if (posix_memalign(&buf, 4096, 4096) == 0) {
        memset(buf, 0x5a, 4096);
        ok = pwrite(fd, buf, 4096, 0) == 4096 && pread(fd, buf, 4096, 0) == 4096;
        free(buf);
    }
    close(fd);
    return ok;
}

_Atomic int harness_unexpected_callbacks;

void harness_must_not_run(auraio_request_t *req, ssize_t result, void *user_data)
{
    (void)req;
    (void)result;
    (void)user_data;
    atomic_fetch_add(&harness_unexpected_callbacks, 1);
}

void recorder_init(struct recorder *r)
{
    for (int i = 0; i < RECORDER_MAX; i++) {
        atomic_init(&r->calls[i], 0);
        atomic_init(&r->results[i], 0);
    }
    atomic_init(&r->total, 0);
}

void recorder_callback(auraio_request_t *req, ssize_t result, void *user_data)
{
    (void)req;
    struct recorder_ctx *c = user_data;
    atomic_fetch_add(&c->rec->calls[c->id], 1);
    atomic_store(&c->rec->results[c->id], (long)result);
    atomic_fetch_add(&c->rec->total, 1);
}

void recorder_assert_each_once(struct recorder *r, int n)
{
    for (int i = 0; i < n; i++) {
        if (atomic_load(&r->calls[i]) != 1)
            fail_msg("request %d: callback ran %d times, expected exactly once", i, atomic_load(&r->calls[i]));
    }
    assert_int_equal(atomic_load(&r->total), n);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int harness_wait_for(auraio_engine_t *e, _Atomic int *counter, int target, int timeout_ms)
{
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    while (atomic_load(counter) < target) {
        uint64_t now = now_ms();
        if (now >= end)
            return -ETIME;
        int rc = auraio_wait(e, (int)(end - now));
        if (rc < 0 && rc != -ETIME)
            return rc;
    }
    return 0;
}

bool harness_sem_wait_ms(sem_t *s, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    while (sem_timedwait(s, &ts) != 0) {
        if (errno != EINTR)
            return false;
    }
    return true;
}
