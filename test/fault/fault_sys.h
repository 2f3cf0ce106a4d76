/* SPDX-License-Identifier: Apache-2.0 */
/* Control of the fault-injecting twin of lib/uring_sys.c. */
#ifndef AURAIO_FAULT_SYS_H
#define AURAIO_FAULT_SYS_H

enum fault_call {
    FAULT_SETUP,
    FAULT_ENTER,
    FAULT_REGISTER,
    FAULT_MMAP,
    FAULT_EVENTFD,
    FAULT_POLL, /* the wait for the engine's fds (poll) */
    FAULT_FSTAT, /* the device lookup of an fd (device.c) */
    FAULT_CALL_COUNT,
};

/* Fail the calls of kind @p call numbered [skip, skip + count) from now on with -err. */
void fault_arm(enum fault_call call, int skip, int count, int err);
/* Refuse io_uring_setup with EINVAL whenever the requested flags include any of @p flags. */
void fault_refuse_setup_flags(unsigned flags);
/* Make the opcode probe report @p op as unsupported (-1: none). */
void fault_hide_opcode(int op);
void fault_reset(void);
/* The next @p count submitting enters that offer more than one SQE consume exactly one. */
void fault_short_submits(int count);
/* Enters since the last reset that slept with a timeout of their own (EXT_ARG with a timespec):
 * each arms and cancels a kernel timer. */
int fault_timed_enters(void);
/* How many calls of @p call were made / failed since the last reset. */
int fault_calls(enum fault_call call);
int fault_failures(enum fault_call call);
/* Call @p fn (NULL: none) in every io_uring_enter, before the real one, with the ring's fd and the
 * SQEs it offers: what the kernel is about to see (test_device.c's submission cost). */
typedef void (*fault_enter_hook)(int ring_fd, unsigned to_submit, void *arg);
void fault_on_enter(fault_enter_hook fn, void *arg);
/* Flags of the last successful io_uring_setup. */
unsigned fault_last_setup_flags(void);

#endif
