/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fault-injecting twin of lib/uring_sys.c: the same symbols, forwarding to the real system calls
 * unless a fault is armed for that call. Linked instead of uring_sys.c into the fault tests.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fault_sys.h"
#include "uring_abi.h"
#include "uring_sys.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/stat.h>

static _Atomic int calls[FAULT_CALL_COUNT];
static _Atomic int failures[FAULT_CALL_COUNT];
static _Atomic int fail_from[FAULT_CALL_COUNT];
static _Atomic int fail_until[FAULT_CALL_COUNT];
static _Atomic int fail_err[FAULT_CALL_COUNT];
static _Atomic unsigned refused_flags;
static _Atomic unsigned last_flags;
static _Atomic int hidden_op = -1;
static _Atomic int short_submits;
static _Atomic int timed_enters;
static _Atomic(fault_enter_hook) enter_hook;
static void *_Atomic enter_hook_arg;

void fault_on_enter(fault_enter_hook fn, void *arg)
{
    atomic_store(&enter_hook_arg, arg);
    atomic_store(&enter_hook, fn);
}

void fault_short_submits(int count)
{
    atomic_store(&short_submits, count);
}

void fault_hide_opcode(int op)
{
    atomic_store(&hidden_op, op);
}

void fault_reset(void)
{
    for (int i = 0; i < FAULT_CALL_COUNT; i++) {
        atomic_store(&calls[i], 0);
        atomic_store(&failures[i], 0);
        atomic_store(&fail_from[i], 0);
        atomic_store(&fail_until[i], 0);
        atomic_store(&fail_err[i], 0);
    }
    atomic_store(&refused_flags, 0);
    atomic_store(&hidden_op, -1);
    atomic_store(&short_submits, 0);
    atomic_store(&timed_enters, 0);
    atomic_store(&enter_hook, NULL);
}

void fault_arm(enum fault_call call, int skip, int count, int err)
{
    int base = atomic_load(&calls[call]);
    atomic_store(&fail_from[call], base + skip);
    atomic_store(&fail_until[call], base + skip + count);
    atomic_store(&fail_err[call], err);
}

void fault_refuse_setup_flags(unsigned flags)
{
    atomic_store(&refused_flags, flags);
}

int fault_timed_enters(void)
{
    return atomic_load(&timed_enters);
}

int fault_calls(enum fault_call call)
{
    return atomic_load(&calls[call]);
}

int fault_failures(enum fault_call call)
{
    return atomic_load(&failures[call]);
}

unsigned fault_last_setup_flags(void)
{
    return atomic_load(&last_flags);
}

/* -err if this call of @p call is armed to fail, else 0. */
static int injected(enum fault_call call)
{
    int n = atomic_fetch_add(&calls[call], 1);
    if (n >= atomic_load(&fail_from[call]) && n < atomic_load(&fail_until[call])) {
        atomic_fetch_add(&failures[call], 1);
        return -atomic_load(&fail_err[call]);
    }
    return 0;
}

/* lib/uring_sys.c compiled a second time with every function renamed real_* (see meson.build):
 * the twin forwards to the real code rather than copying it. */
int real_sys_setup(unsigned entries, struct io_uring_params *p);
int real_sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, void *arg, size_t argsz);
int real_sys_register(int fd, unsigned opcode, const void *arg, unsigned nr_args);
int real_sys_mmap(int fd, uint64_t offset, size_t len, void **out);
int real_sys_munmap(void *addr, size_t len);
int real_sys_close(int fd);
int real_sys_eventfd(void);
int real_sys_eventfd_drain(int fd);
int real_sys_fstat(int fd, struct stat *st);
int real_sys_eventfd_signal(int fd);
int real_sys_wait_readable(int fd, int timeout_ms);
int real_sys_wait_either_readable(int fd1, int fd2, int timeout_ms);
void real_sys_futex_wait(_Atomic uint32_t *addr, uint32_t val);
void real_sys_futex_wake(_Atomic uint32_t *addr, int n);

int auraio__sys_setup(unsigned entries, struct io_uring_params *p)
{
    int rc = injected(FAULT_SETUP);
    if (rc)
        return rc;
    if (p->flags & atomic_load(&refused_flags))
        return -EINVAL;
    rc = real_sys_setup(entries, p);
    if (rc >= 0)
        atomic_store(&last_flags, p->flags);
    return rc;
}

int auraio__sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, void *arg,
                      size_t argsz)
{
    int rc = injected(FAULT_ENTER);
    if (rc)
        return rc;
    if ((flags & IORING_ENTER_EXT_ARG) && arg && ((const struct io_uring_getevents_arg *)arg)->ts)
        atomic_fetch_add(&timed_enters, 1);
    /* A short submit: the kernel takes fewer SQEs than offered, as when it stops at one it cannot
     * take; the rest stay in the SQ for the caller to offer again. */
    if (to_submit > 1 && atomic_load(&short_submits) > 0) {
        atomic_fetch_sub(&short_submits, 1);
        to_submit = 1;
    }
    fault_enter_hook hook = atomic_load(&enter_hook);
    if (hook)
        hook(fd, to_submit, atomic_load(&enter_hook_arg));
    return real_sys_enter(fd, to_submit, min_complete, flags, arg, argsz);
}

int auraio__sys_register(int fd, unsigned opcode, const void *arg, unsigned nr_args)
{
    int rc = injected(FAULT_REGISTER);
    if (rc)
        return rc;
    rc = real_sys_register(fd, opcode, arg, nr_args);
    int hide = atomic_load(&hidden_op);
    if (rc >= 0 && opcode == IORING_REGISTER_PROBE && hide >= 0) {
        /* The probe result is written into the caller's buffer; edit it as an older kernel would. */
        struct io_uring_probe *probe = (struct io_uring_probe *)(uintptr_t)arg;
        for (unsigned i = 0; i < probe->ops_len; i++) {
            if (probe->ops[i].op == hide)
                probe->ops[i].flags &= (uint16_t)~IO_URING_OP_SUPPORTED;
        }
    }
    return rc;
}

int auraio__sys_mmap(int fd, uint64_t offset, size_t len, void **out)
{
    int rc = injected(FAULT_MMAP);
    return rc ? rc : real_sys_mmap(fd, offset, len, out);
}

int auraio__sys_munmap(void *addr, size_t len)
{
    return real_sys_munmap(addr, len);
}

int auraio__sys_close(int fd)
{
    return real_sys_close(fd);
}

int auraio__sys_eventfd(void)
{
    int rc = injected(FAULT_EVENTFD);
    return rc ? rc : real_sys_eventfd();
}

int auraio__sys_fstat(int fd, struct stat *st)
{
    int rc = injected(FAULT_FSTAT);
    return rc ? rc : real_sys_fstat(fd, st);
}

int auraio__sys_eventfd_drain(int fd)
{
    return real_sys_eventfd_drain(fd);
}

int auraio__sys_eventfd_signal(int fd)
{
    return real_sys_eventfd_signal(fd);
}

int auraio__sys_wait_readable(int fd, int timeout_ms)
{
    int rc = injected(FAULT_POLL);
    return rc ? rc : real_sys_wait_readable(fd, timeout_ms);
}

int auraio__sys_wait_either_readable(int fd1, int fd2, int timeout_ms)
{
    int rc = injected(FAULT_POLL);
    return rc ? rc : real_sys_wait_either_readable(fd1, fd2, timeout_ms);
}

/* The ring lock's futex: passed through (a failed futex call only means "look again"). */
void auraio__sys_futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    real_sys_futex_wait(addr, val);
}

void auraio__sys_futex_wake(_Atomic uint32_t *addr, int n)
{
    real_sys_futex_wake(addr, n);
}
