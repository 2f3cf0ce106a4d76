/* SPDX-License-Identifier: Apache-2.0 */
/* The C half of the Python binding (pyauraio.h says why it is shaped this way). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "pyauraio.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

struct pya_entry {
    struct pya_entry *next;
    int64_t result;
    uint32_t idx;
};

struct pya_engine {
    auraio_engine_t *engine;
    struct pya_entry *entries; /* one per Python slot */
    uint32_t slots;
};

/* Completions delivered on this thread and not yet handed to Python, in delivery order. */
static _Thread_local struct pya_entry *tl_head, *tl_tail;
/* pya_run: the engine whose run must return once a pass delivered something. */
static _Thread_local auraio_engine_t *tl_stop_after;

static void push(struct pya_entry *e, int64_t result)
{
    e->result = result;
    e->next = NULL;
    if (tl_tail)
        tl_tail->next = e;
    else
        tl_head = e;
    tl_tail = e;
    if (tl_stop_after) {
        auraio_stop(tl_stop_after);
        tl_stop_after = NULL;
    }
}

static void on_complete(auraio_request_t *req, ssize_t result, void *user_data)
{
    (void)req;
    push(user_data, result);
}

struct pya_engine *pya_create(const auraio_options_t *options, uint32_t slots)
{
    struct pya_engine *pe = calloc(1, sizeof(*pe));
    if (!pe)
        return NULL;
    pe->entries = calloc(slots ? slots : 1, sizeof(*pe->entries));
    if (!pe->entries) {
        free(pe);
        errno = ENOMEM;
        return NULL;
    }
    for (uint32_t i = 0; i < slots; i++)
        pe->entries[i].idx = i;
    pe->slots = slots;
    pe->engine = auraio_create_with_options(options);
    if (!pe->engine) {
        int e = errno;
        free(pe->entries);
        free(pe);
        errno = e;
        return NULL;
    }
    return pe;
}

auraio_engine_t *pya_raw(struct pya_engine *pe)
{
    return pe->engine;
}

void pya_destroy(struct pya_engine *pe)
{
    auraio_destroy(pe->engine);
    pe->engine = NULL;
}

void pya_free(struct pya_engine *pe)
{
    if (!pe)
        return;
    free(pe->entries);
    free(pe);
}

int pya_drain(uint32_t *idx, int64_t *res, int cap)
{
    int n = 0;
    while (tl_head && n < cap) {
        struct pya_entry *e = tl_head;
        tl_head = e->next;
        idx[n] = e->idx;
        res[n] = e->result;
        n++;
    }
    if (!tl_head)
        tl_tail = NULL;
    return n;
}

int pya_poll(struct pya_engine *pe, uint32_t *idx, int64_t *res, int cap, int *rc)
{
    *rc = auraio_poll(pe->engine);
    return pya_drain(idx, res, cap);
}

int pya_wait(struct pya_engine *pe, int timeout_ms, uint32_t *idx, int64_t *res, int cap, int *rc)
{
    *rc = auraio_wait(pe->engine, timeout_ms);
    return pya_drain(idx, res, cap);
}

int pya_run(struct pya_engine *pe, uint32_t *idx, int64_t *res, int cap, int *rc)
{
    /* Python callbacks must run between passes, so the first completion stops this run (its
     * stop is issued on this thread, inside this run, which therefore takes it). */
    tl_stop_after = tl_head ? NULL : pe->engine;
    *rc = tl_stop_after ? auraio_run(pe->engine) : 0;
    tl_stop_after = NULL;
    return pya_drain(idx, res, cap);
}

/* Arm the deadline, submit, and disarm it again if the submission was refused. */
#define SUBMIT(timeout_ns, call)                                                                                       \
    do {                                                                                                               \
        if ((timeout_ns) && auraio_set_next_timeout(pe->engine, (timeout_ns)) < 0)                                     \
            return NULL;                                                                                               \
        auraio_request_t *req_ = (call);                                                                               \
        if (!req_ && (timeout_ns)) {                                                                                   \
            int e_ = errno;                                                                                            \
            auraio_set_next_timeout(pe->engine, 0);                                                                    \
            errno = e_;                                                                                                \
        }                                                                                                              \
        return req_;                                                                                                   \
    } while (0)

auraio_request_t *pya_read(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, void *buf, size_t len,
                           int64_t offset, unsigned flags)
{
    SUBMIT(timeout_ns,
           auraio_read_ex(pe->engine, fd, auraio_buf(buf), len, offset, flags, on_complete, &pe->entries[idx]));
}

auraio_request_t *pya_write(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, const void *buf,
                            size_t len, int64_t offset, unsigned flags)
{
    SUBMIT(timeout_ns, auraio_write_ex(pe->engine, fd, auraio_buf((void *)buf), len, offset, flags, on_complete,
                                       &pe->entries[idx]));
}

auraio_request_t *pya_read_fixed(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, int buf_index,
                                 size_t buf_offset, size_t len, int64_t offset, unsigned flags)
{
    SUBMIT(timeout_ns, auraio_read_ex(pe->engine, fd, auraio_buf_fixed(buf_index, buf_offset), len, offset, flags,
                                      on_complete, &pe->entries[idx]));
}

auraio_request_t *pya_write_fixed(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, int buf_index,
                                  size_t buf_offset, size_t len, int64_t offset, unsigned flags)
{
    SUBMIT(timeout_ns, auraio_write_ex(pe->engine, fd, auraio_buf_fixed(buf_index, buf_offset), len, offset, flags,
                                       on_complete, &pe->entries[idx]));
}

auraio_request_t *pya_readv(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, const struct iovec *iov,
                            int iovcnt, int64_t offset, unsigned flags)
{
    SUBMIT(timeout_ns, auraio_readv_ex(pe->engine, fd, iov, iovcnt, offset, flags, on_complete, &pe->entries[idx]));
}

auraio_request_t *pya_writev(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd,
                             const struct iovec *iov, int iovcnt, int64_t offset, unsigned flags)
{
    SUBMIT(timeout_ns, auraio_writev_ex(pe->engine, fd, iov, iovcnt, offset, flags, on_complete, &pe->entries[idx]));
}

auraio_request_t *pya_fsync(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, unsigned flags)
{
    SUBMIT(timeout_ns, auraio_fsync(pe->engine, fd, flags, on_complete, &pe->entries[idx]));
}

auraio_request_t *pya_openat(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int dirfd, const char *path,
                             int open_flags, unsigned mode, int file_index, unsigned flags)
{
    if (file_index >= 0)
        SUBMIT(timeout_ns, auraio_openat_direct(pe->engine, dirfd, path, open_flags, (mode_t)mode, file_index, flags,
                                                on_complete, &pe->entries[idx]));
    SUBMIT(timeout_ns, auraio_openat(pe->engine, dirfd, path, open_flags, (mode_t)mode, flags, on_complete,
                                     &pe->entries[idx]));
}

auraio_request_t *pya_close(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, unsigned flags)
{
    SUBMIT(timeout_ns, auraio_close(pe->engine, fd, flags, on_complete, &pe->entries[idx]));
}

auraio_request_t *pya_statx(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int dirfd, const char *path,
                            int statx_flags, unsigned mask, void *statxbuf, unsigned flags)
{
    SUBMIT(timeout_ns, auraio_statx(pe->engine, dirfd, path, statx_flags, mask, statxbuf, flags, on_complete,
                                    &pe->entries[idx]));
}

auraio_request_t *pya_fallocate(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, int mode,
                                int64_t offset, int64_t len, unsigned flags)
{
    SUBMIT(timeout_ns, auraio_fallocate(pe->engine, fd, mode, offset, len, flags, on_complete, &pe->entries[idx]));
}

auraio_request_t *pya_ftruncate(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, int64_t length,
                                unsigned flags)
{
    SUBMIT(timeout_ns, auraio_ftruncate(pe->engine, fd, length, flags, on_complete, &pe->entries[idx]));
}

auraio_request_t *pya_sync_file_range(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd,
                                      int64_t offset, uint32_t nbytes, unsigned sync_flags, unsigned flags)
{
    SUBMIT(timeout_ns, auraio_sync_file_range(pe->engine, fd, offset, nbytes, sync_flags, flags, on_complete,
                                              &pe->entries[idx]));
}

auraio_request_t *pya_fadvise(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, int fd, int64_t offset,
                              int64_t len, int advice, unsigned flags)
{
    SUBMIT(timeout_ns, auraio_fadvise(pe->engine, fd, offset, len, advice, flags, on_complete, &pe->entries[idx]));
}

auraio_request_t *pya_madvise(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns, void *addr, size_t len,
                              int advice, unsigned flags)
{
    SUBMIT(timeout_ns, auraio_madvise(pe->engine, addr, len, advice, flags, on_complete, &pe->entries[idx]));
}

auraio_request_t *pya_timer(struct pya_engine *pe, uint32_t idx, uint64_t timeout_ns)
{
    return auraio_timeout(pe->engine, timeout_ns, on_complete, &pe->entries[idx]);
}

struct pya_member {
    struct pya_batch *batch;
    _Atomic(auraio_request_t *) req; /* read by pya_batch_cancel on another thread */
};

struct pya_batch {
    struct pya_engine *pe;
    struct pya_entry *entry;
    _Atomic uint32_t remaining; /* members not finished, plus one held by the submitter */
    _Atomic uint32_t next;      /* the next member to submit */
    _Atomic uint32_t submitted;
    atomic_bool cancelled;
    int write, fd;
    char *base;
    size_t stride, len;
    const int64_t *offsets;
    uint32_t n;
    int64_t *results;
    struct pya_member m[];
};

/* One member finished (completed, or failed before it reached the kernel): the last one delivers
 * the batch. acq_rel: the thread that delivers it sees every member's result. */
static void member_done(struct pya_batch *b, uint32_t count)
{
    if (atomic_fetch_sub_explicit(&b->remaining, count, memory_order_acq_rel) == count)
        push(b->entry, (int64_t)atomic_load_explicit(&b->submitted, memory_order_relaxed));
}

static void on_member(auraio_request_t *req, ssize_t result, void *user_data);

/* Fail every member not yet claimed with @p err (a submission failed, or the batch was cancelled);
 * @return how many that was. */
static uint32_t fail_rest(struct pya_batch *b, int err)
{
    uint32_t from = atomic_exchange_explicit(&b->next, b->n, memory_order_acq_rel);
    for (uint32_t k = from; k < b->n; k++)
        b->results[k] = -err;
    return from < b->n ? b->n - from : 0;
}

/* Claim and submit the next member. @return 1 submitted, 0 none left, -1 a failure (the members
 * not yet submitted, this one included, now carry -errno and are counted as finished). */
static int submit_next(struct pya_batch *b)
{
    if (atomic_load_explicit(&b->cancelled, memory_order_acquire)) {
        uint32_t failed = fail_rest(b, ECANCELED);
        if (failed)
            member_done(b, failed);
        return 0;
    }
    uint32_t i = atomic_fetch_add_explicit(&b->next, 1, memory_order_acq_rel);
    if (i >= b->n)
        return 0;
    auraio_buf_t buf = auraio_buf(b->base + (size_t)i * b->stride);
    auraio_engine_t *e = b->pe->engine;
    auraio_request_t *req = b->write ? auraio_write(e, b->fd, buf, b->len, b->offsets[i], on_member, &b->m[i])
                                     : auraio_read(e, b->fd, buf, b->len, b->offsets[i], on_member, &b->m[i]);
    if (!req) {
        int err = errno;
        b->results[i] = -err;
        member_done(b, 1 + fail_rest(b, err));
        return -1;
    }
    atomic_store_explicit(&b->m[i].req, req, memory_order_release);
    atomic_fetch_add_explicit(&b->submitted, 1, memory_order_relaxed);
    return 1;
}

static void on_member(auraio_request_t *req, ssize_t result, void *user_data)
{
    (void)req;
    struct pya_member *m = user_data;
    struct pya_batch *b = m->batch;
    b->results[m - b->m] = result;
    /* Keep the window full from the callback: the library enters these submissions together when
     * this batch of callbacks ends, as a C program resubmitting from its callbacks would. */
    submit_next(b);
    member_done(b, 1);
}

struct pya_batch *pya_batch_submit(struct pya_engine *pe, uint32_t idx, int write, int fd, char *base, size_t stride,
                                   size_t len, const int64_t *offsets, uint32_t n, uint32_t depth, int *done)
{
    *done = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (offsets[i] < 0) {
            errno = ERANGE; /* told apart from the library's EINVAL: the caller's argument */
            return NULL;
        }
    }
    struct pya_batch *b = calloc(1, sizeof(*b) + (size_t)n * sizeof(b->m[0]));
    int64_t *results = calloc(n ? n : 1, sizeof(*results));
    if (!b || !results || n == 0) {
        free(b);
        free(results);
        errno = n == 0 ? EINVAL : ENOMEM;
        return NULL;
    }
    b->pe = pe;
    b->entry = &pe->entries[idx];
    b->write = write;
    b->fd = fd;
    b->base = base;
    b->stride = stride;
    b->len = len;
    b->offsets = offsets;
    b->n = n;
    b->results = results;
    for (uint32_t i = 0; i < n; i++)
        b->m[i].batch = b;
    atomic_init(&b->remaining, n + 1);
    atomic_init(&b->next, 0);
    atomic_init(&b->submitted, 0);
    atomic_init(&b->cancelled, false);
    uint32_t window = depth && depth < n ? depth : n;
    int err = 0;
    for (uint32_t k = 0; k < window; k++) {
        if (submit_next(b) < 0) {
            err = errno;
            break;
        }
    }
    if (atomic_load_explicit(&b->submitted, memory_order_relaxed) == 0) {
        /* Nothing reached the library: every member failed above; no completion will come. */
        pya_batch_free(b);
        errno = err ? err : EAGAIN;
        return NULL;
    }
    if (atomic_fetch_sub_explicit(&b->remaining, 1, memory_order_acq_rel) == 1)
        *done = 1; /* all of them finished already; nothing was pushed */
    return b;
}

const int64_t *pya_batch_results(const struct pya_batch *b)
{
    return b->results;
}

int pya_batch_cancel(struct pya_engine *pe, struct pya_batch *b)
{
    atomic_store_explicit(&b->cancelled, true, memory_order_release);
    int issued = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        auraio_request_t *req = atomic_load_explicit(&b->m[i].req, memory_order_acquire);
        if (req && auraio_cancel(pe->engine, req) == 0)
            issued++;
    }
    return issued;
}

void pya_batch_free(struct pya_batch *b)
{
    if (!b)
        return;
    free(b->results);
    free(b);
}
