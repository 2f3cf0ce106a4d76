/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Raw system calls for io_uring (through syscall(): glibc has no wrappers), ring mmap, and the
 * eventfd used as the engine's pollable fd. Converts errno to -errno on the spot so no caller
 * touches errno.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "uring_sys.h"

#include "uring_abi.h"

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int auraio__sys_fstat(int fd, struct stat *st)
{
    return fstat(fd, st) < 0 ? -errno : 0;
}

int auraio__sys_setup(unsigned entries, struct io_uring_params *p)
{
    long rc = syscall(__NR_io_uring_setup, entries, p);
    return rc < 0 ? -errno : (int)rc;
}

int auraio__sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, void *arg,
                      size_t argsz)
{
    long rc = syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);
    return rc < 0 ? -errno : (int)rc;
}

int auraio__sys_register(int fd, unsigned opcode, const void *arg, unsigned nr_args)
{
    long rc = syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);
    return rc < 0 ? -errno : (int)rc;
}

int auraio__sys_mmap(int fd, uint64_t offset, size_t len, void **out)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, (off_t)offset);
    if (p == MAP_FAILED)
        return -errno;
    *out = p;
    return 0;
}

int auraio__sys_munmap(void *addr, size_t len)
{
    return munmap(addr, len) < 0 ? -errno : 0;
}

int auraio__sys_close(int fd)
{
    /* Linux releases the fd even when close reports EINTR; retrying could close a reused fd. */
    return close(fd) < 0 && errno != EINTR ? -errno : 0;
}

int auraio__sys_eventfd(void)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int auraio__sys_eventfd_drain(int fd)
{
    eventfd_t v;
    return eventfd_read(fd, &v) < 0 ? -errno : 0;
}

int auraio__sys_eventfd_signal(int fd)
{
    return eventfd_write(fd, 1) < 0 ? -errno : 0;
}

int auraio__sys_wait_readable(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc = poll(&pfd, 1, timeout_ms);
    if (rc < 0)
        return -errno;
    return rc > 0 ? 1 : 0;
}

int auraio__sys_wait_either_readable(int fd1, int fd2, int timeout_ms)
{
    struct pollfd pfd[2] = {{.fd = fd1, .events = POLLIN}, {.fd = fd2, .events = POLLIN}};
    int rc = poll(pfd, 2, timeout_ms);
    if (rc < 0)
        return -errno;
    return rc > 0 ? 1 : 0;
}

void auraio__sys_futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    /* EAGAIN (the word changed), EINTR and wakes all mean "look again": nothing to report. */
    (void)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

void auraio__sys_futex_wake(_Atomic uint32_t *addr, int n)
{
    (void)syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}
