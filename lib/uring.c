/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One kernel io_uring, driven through the raw syscalls in uring_sys.c.
 *
 * Ordering pairs (see uring_atomic.h):
 *  - SQ tail: store-release after the SQEs are written, so the kernel (or the SQPOLL thread) that
 *    load-acquires the tail sees complete SQEs.
 *  - SQ head: load-acquire before reusing a slot, pairing with the kernel's release once it has
 *    copied the SQE out.
 *  - CQ tail: load-acquire before reading CQEs, pairing with the kernel's release after writing them.
 *  - CQ head: store-release after copying CQEs out, so the kernel does not overwrite them early.
 *  - SQ flags: relaxed for TASKRUN/CQ_OVERFLOW (a hint to enter); with SQPOLL a full fence between
 *    the tail store and the NEED_WAKEUP read, or the kernel thread could go to sleep unseen.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "uring.h"

#include "uring_sys.h"

#include <errno.h>
#include <string.h>

static void unmap_rings(struct uring *u)
{
    if (u->sqe_map)
        auraio__sys_munmap(u->sqe_map, u->sqe_map_len);
    if (u->cq_map && u->cq_map != u->sq_map)
        auraio__sys_munmap(u->cq_map, u->cq_map_len);
    if (u->sq_map)
        auraio__sys_munmap(u->sq_map, u->sq_map_len);
    u->sqe_map = u->cq_map = u->sq_map = NULL;
}

static int map_rings(struct uring *u, const struct io_uring_params *p)
{
    int rc;
    u->sq_map_len = p->sq_off.array + p->sq_entries * sizeof(uint32_t);
    u->cq_map_len = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
    if (p->features & IORING_FEAT_SINGLE_MMAP) {
        /* 5.4+: both rings live in one mapping; map the larger extent once. */
        if (u->cq_map_len > u->sq_map_len)
            u->sq_map_len = u->cq_map_len;
        u->cq_map_len = u->sq_map_len;
    }
    rc = auraio__sys_mmap(u->fd, IORING_OFF_SQ_RING, u->sq_map_len, &u->sq_map);
    if (rc < 0)
        return rc;
    if (p->features & IORING_FEAT_SINGLE_MMAP) {
        u->cq_map = u->sq_map;
    } else {
        rc = auraio__sys_mmap(u->fd, IORING_OFF_CQ_RING, u->cq_map_len, &u->cq_map);
        if (rc < 0)
            return rc;
    }
    u->sqe_map_len = p->sq_entries * sizeof(struct io_uring_sqe);
    rc = auraio__sys_mmap(u->fd, IORING_OFF_SQES, u->sqe_map_len, &u->sqe_map);
    if (rc < 0)
        return rc;

    char *sq = u->sq_map;
    char *cq = u->cq_map;
    u->ksq_head = (kernel_u32 *)(void *)(sq + p->sq_off.head);
    u->ksq_tail = (kernel_u32 *)(void *)(sq + p->sq_off.tail);
    u->ksq_flags = (kernel_u32 *)(void *)(sq + p->sq_off.flags);
    u->sq_mask = *(uint32_t *)(void *)(sq + p->sq_off.ring_mask);
    u->kcq_head = (kernel_u32 *)(void *)(cq + p->cq_off.head);
    u->kcq_tail = (kernel_u32 *)(void *)(cq + p->cq_off.tail);
    u->cq_mask = *(uint32_t *)(void *)(cq + p->cq_off.ring_mask);
    u->cqes = (struct io_uring_cqe *)(void *)(cq + p->cq_off.cqes);
    u->sqes = u->sqe_map;

    /* Slot i always holds SQE i, so the indirection array is the identity, written once. The
     * kernel reads it only after the release store of the tail that covers it. */
    uint32_t *array = (uint32_t *)(void *)(sq + p->sq_off.array);
    for (unsigned i = 0; i < p->sq_entries; i++)
        array[i] = i;
    u->sqe_tail = uring_load_relaxed(u->ksq_tail);
    return 0;
}

static void probe_ops(struct uring *u)
{
    /* io_uring_probe is followed by a flexible array of 256 op entries. */
    union {
        struct io_uring_probe probe;
        unsigned char raw[sizeof(struct io_uring_probe) + 256 * sizeof(struct io_uring_probe_op)];
    } buf;
    memset(&buf, 0, sizeof(buf));
    memset(u->op_supported, 1, sizeof(u->op_supported));
    /* 5.6+. Older kernels: assume everything; the kernel's EINVAL is then the answer. */
    if (auraio__sys_register(u->fd, IORING_REGISTER_PROBE, &buf.probe, 256) < 0)
        return;
    memset(u->op_supported, 0, sizeof(u->op_supported));
    for (unsigned i = 0; i < buf.probe.ops_len && i < 256; i++) {
        if (buf.probe.ops[i].flags & IO_URING_OP_SUPPORTED)
            u->op_supported[buf.probe.ops[i].op] = 1;
    }
    u->probed = true;
}

/* Flag groups dropped one at a time, in this order, when setup says EINVAL. */
static const unsigned fallback_groups[] = {
    IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
    IORING_SETUP_SINGLE_ISSUER,
    IORING_SETUP_SUBMIT_ALL,
    IORING_SETUP_SQPOLL,
};

int auraio__uring_init(struct uring *u, unsigned entries, unsigned wanted_flags, unsigned sqpoll_idle_ms)
{
    struct io_uring_params p;
    unsigned flags = wanted_flags;
    size_t next_group = 0;
    int fd;

    memset(u, 0, sizeof(*u));
    u->fd = -1;
    for (;;) {
        memset(&p, 0, sizeof(p));
        p.flags = flags;
        if (flags & IORING_SETUP_SQPOLL)
            p.sq_thread_idle = sqpoll_idle_ms;
        fd = auraio__sys_setup(entries, &p);
        if (fd >= 0)
            break;
        /* EPERM: SQPOLL without privilege on pre-5.11 kernels; anything else is final. */
        if (fd != -EINVAL && !(fd == -EPERM && (flags & IORING_SETUP_SQPOLL)))
            return fd;
        while (next_group < sizeof(fallback_groups) / sizeof(fallback_groups[0]) &&
               !(flags & fallback_groups[next_group]))
            next_group++;
        if (next_group == sizeof(fallback_groups) / sizeof(fallback_groups[0]))
            return fd;
        flags &= ~fallback_groups[next_group++];
    }
    u->fd = fd;
    u->flags = flags;
    u->features = p.features;
    u->sq_entries = p.sq_entries;
    u->cq_entries = p.cq_entries;

    int rc = map_rings(u, &p);
    if (rc < 0) {
        auraio__uring_exit(u);
        return rc;
    }
    probe_ops(u);
    return 0;
}

void auraio__uring_exit(struct uring *u)
{
    unmap_rings(u);
    if (u->fd >= 0)
        auraio__sys_close(u->fd);
    u->fd = -1;
}

bool auraio__uring_op_missing(const struct uring *u, unsigned op)
{
    return op >= 256 || !u->op_supported[op];
}

int auraio__uring_submit(struct uring *u, unsigned min_complete)
{
    unsigned flags = 0;
    unsigned to_submit;
    int rc;

    uring_store_release(u->ksq_tail, u->sqe_tail);
    /* Everything between the kernel's head and our tail: after a partial submit the remainder
     * is still there and goes out with this call. */
    to_submit = u->sqe_tail - uring_load_acquire(u->ksq_head);

    if (u->flags & IORING_SETUP_SQPOLL) {
        uring_fence();
        if (uring_load_relaxed(u->ksq_flags) & IORING_SQ_NEED_WAKEUP)
            flags |= IORING_ENTER_SQ_WAKEUP;
        else if (min_complete == 0 && !auraio__uring_cq_needs_enter(u))
            return (int)to_submit;
        to_submit = 0; /* the SQPOLL thread consumes the SQEs itself */
    }
    if (min_complete > 0 || auraio__uring_cq_needs_enter(u))
        flags |= IORING_ENTER_GETEVENTS;
    if (to_submit == 0 && flags == 0)
        return 0;
    do {
        rc = auraio__sys_enter(u->fd, to_submit, min_complete, flags, NULL, 0);
    } while (rc == -EINTR);
    return rc;
}

int auraio__uring_submit_some(struct uring *u, unsigned n)
{
    /* The whole tail is published: the kernel takes min(n, what is queued) from its head. */
    uring_store_release(u->ksq_tail, u->sqe_tail);
    unsigned flags = auraio__uring_cq_needs_enter(u) ? IORING_ENTER_GETEVENTS : 0;
    int rc;
    do {
        rc = auraio__sys_enter(u->fd, n, 0, flags, NULL, 0);
    } while (rc == -EINTR);
    return rc;
}

int auraio__uring_get_events(struct uring *u)
{
    int rc;
    do {
        rc = auraio__sys_enter(u->fd, 0, 0, IORING_ENTER_GETEVENTS, NULL, 0);
    } while (rc == -EINTR);
    return rc;
}

int auraio__uring_wait_cqe(struct uring *u, int timeout_ms)
{
    return auraio__uring_wait_cqes(u, 1, timeout_ms);
}

int auraio__uring_wait_cqes(struct uring *u, unsigned min_complete, int timeout_ms)
{
    int rc;
    if (timeout_ms < 0) {
        rc = auraio__sys_enter(u->fd, 0, min_complete, IORING_ENTER_GETEVENTS, NULL, 0);
        return rc < 0 ? rc : 0;
    }
    struct __kernel_timespec ts = {
        .tv_sec = timeout_ms / 1000,
        .tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
    };
    struct io_uring_getevents_arg arg;
    memset(&arg, 0, sizeof(arg));
    arg.ts = (uint64_t)(uintptr_t)&ts;
    rc = auraio__sys_enter(u->fd, 0, min_complete, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg,
                           sizeof(arg));
    return rc < 0 ? rc : 0;
}

unsigned auraio__uring_reap(struct uring *u, struct uring_cqe *out, unsigned max)
{
    uint32_t head = uring_load_relaxed(u->kcq_head); /* only we write it */
    uint32_t tail = uring_load_acquire(u->kcq_tail);
    unsigned n = tail - head;
    if (n > max)
        n = max;
    for (unsigned i = 0; i < n; i++) {
        const struct io_uring_cqe *c = &u->cqes[(head + i) & u->cq_mask];
        out[i] = (struct uring_cqe){.user_data = c->user_data, .res = c->res, .flags = c->flags};
    }
    if (n)
        uring_store_release(u->kcq_head, head + n);
    return n;
}

int auraio__uring_register_eventfd(struct uring *u, int efd)
{
    return auraio__sys_register(u->fd, IORING_REGISTER_EVENTFD, &efd, 1);
}

int auraio__uring_unregister_eventfd(struct uring *u)
{
    return auraio__sys_register(u->fd, IORING_UNREGISTER_EVENTFD, NULL, 0);
}

