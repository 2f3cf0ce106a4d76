/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The only place that makes system calls for io_uring, maps memory or creates eventfds. Every
 * function returns a value >= 0 or -errno; errno is read nowhere else. Tests link a fault-injecting
 * twin (test/fault/fault_sys.c) with the same symbols.
 */
#ifndef AURAIO_URING_SYS_H
#define AURAIO_URING_SYS_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

struct io_uring_params;
struct stat;
struct timespec;

int auraio__sys_setup(unsigned entries, struct io_uring_params *p);
int auraio__sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, void *arg,
                      size_t argsz);
int auraio__sys_register(int fd, unsigned opcode, const void *arg, unsigned nr_args);
/* mmap(MAP_SHARED|MAP_POPULATE) of ring memory; stores the address in *out. */
int auraio__sys_mmap(int fd, uint64_t offset, size_t len, void **out);
int auraio__sys_munmap(void *addr, size_t len);
int auraio__sys_close(int fd);
/* fstat, for the device an fd's I/O lands on (device.c): never on the I/O path. */
int auraio__sys_fstat(int fd, struct stat *st);
/* Non-blocking, close-on-exec eventfd. */
int auraio__sys_eventfd(void);
/* Read (and so reset) an eventfd counter; -EAGAIN when it was zero. */
int auraio__sys_eventfd_drain(int fd);
int auraio__sys_eventfd_signal(int fd);
/* Wait until fd is readable or timeout_ms passes (-1: forever). 1 readable, 0 timeout, -errno. */
int auraio__sys_wait_readable(int fd, int timeout_ms);
/* The same for two fds: 1 when either is readable, 0 timeout, -errno. */
int auraio__sys_wait_either_readable(int fd1, int fd2, int timeout_ms);
/* Sleep while *addr == val (FUTEX_WAIT_PRIVATE; returns at once if it differs, or on any wake or
 * signal: the caller re-checks). Wake up to n sleepers on addr. The ring lock's slow path (lock.c). */
void auraio__sys_futex_wait(_Atomic uint32_t *addr, uint32_t val);
void auraio__sys_futex_wake(_Atomic uint32_t *addr, int n);

#endif
