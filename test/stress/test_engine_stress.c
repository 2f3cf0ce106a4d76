/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Engine stress (suite 'stress'): THREADS pinned threads submit and poll at once, under every
 * ring-selection mode and several ring counts, each with a time budget (AURAIO_STRESS_MS, default
 * 3000 ms over all configurations, measured with CLOCK_MONOTONIC: the amount of work shrinks under
 * TSan/ASan, the wall time does not). The operation mix:
 *  - reads of a pattern file, checked byte by byte;
 *  - writes of a scratch file whose callback resubmits a read-back of the same region (checked);
 *  - reads cancelled right after submission, racing their own completion (either -ECANCELED or
 *    the full, correct data);
 *  - cancels of other threads' published handles, often stale (a stale handle must never act on
 *    the request that reuses its slot: the owner's own cancel of a blocked pipe read must then
 *    still return 0);
 *  - 1-byte pipe reads that block until cancelled (must end -ECANCELED) or until their owner
 *    writes the byte (must end with 1);
 *  - fsyncs.
 * Every I/O buffer comes from auraio_buffer_alloc and is freed by another thread (handed over
 * through a lock-free list stored in the buffer itself). Checked at the end: no bad result, every
 * submission's callback ran exactly once (per operation slot and in total), nothing pending, every
 * pool buffer returned, no spill outside ADAPTIVE; then destroy with blocked reads in flight
 * delivers each callback once. Threads stay alive until all I/O has drained: the kernel cancels a
 * task's outstanding requests when the task exits, which would look like a lost result.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define THREADS 4
#define SLOTS 12           /* operations in flight per thread */
#define FILE_SIZE (4u << 20)
#define SCRATCH_SIZE ((size_t)THREADS * SLOTS * 16384)
#define DATA_SEED 21
#define SCRATCH_SEED 22
#define HANDLES 64
#define DRAIN_LIMIT_NS (20ull * 1000000000ull)

enum kind { K_READ, K_READ_CANCEL, K_WRITE, K_READBACK, K_PIPE_CANCEL, K_PIPE_FED, K_FSYNC };

struct worker;

struct op {
    struct worker *w;
    enum kind kind;
    unsigned char *buf;
    size_t buf_size; /* what auraio_buffer_alloc was given */
    size_t len;
    int64_t off;
    _Atomic int in_flight; /* 1 from submit to callback: a second callback finds 0 */
    _Atomic int busy;      /* the slot holds an operation (chains included) */
    _Atomic long submits;
    _Atomic long calls;
};

/* Written into a buffer to hand it to another thread for freeing. */
struct free_node {
    struct free_node *next;
    size_t size;
    int alloc_worker;
};

struct worker {
    struct stress *s;
    int id;
    int cpu;
    int pipe_cancel[2]; /* never written: its reads end only by cancel */
    int pipe_fed[2];    /* one byte written per read */
    long owed;          /* bytes owed to pipe_fed (owner thread only) */
    uint32_t rng;
    _Atomic(struct free_node *) to_free; /* buffers other threads handed us */
    long freed_foreign;                  /* buffers this thread freed for others */
    struct op ops[SLOTS];
};

struct counters {
    _Atomic long reads_ok, reads_cancelled, writes_ok, readbacks_ok, pipe_cancelled, pipe_fed;
    _Atomic long fsyncs, resubmit_eagain, cross_cancels, submit_eagain;
};

struct stress {
    auraio_engine_t *e;
    int data_fd, scratch_fd;
    uint64_t deadline_ns;
    _Atomic long outstanding; /* busy slots */
    _Atomic long submits, callbacks, bad;
    struct counters n;
    _Atomic uintptr_t handles[HANDLES];
    pthread_barrier_t end;
    struct worker w[THREADS];
};

static char g_first_failure[512];
static atomic_flag g_failure_noted = ATOMIC_FLAG_INIT;

__attribute__((format(printf, 2, 3))) static void note_bad(struct stress *s, const char *fmt, ...)
{
    atomic_fetch_add(&s->bad, 1);
    if (atomic_flag_test_and_set(&g_failure_noted))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_first_failure, sizeof(g_first_failure), fmt, ap);
    va_end(ap);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t rnd(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* ------------------------------------------------------------------------------------------- */
/* Buffers: alloc on the submitting thread, free on the next worker's thread. */

static void hand_over(struct stress *s, struct op *o)
{
    struct free_node *node = (struct free_node *)(void *)o->buf;
    node->size = o->buf_size;
    node->alloc_worker = o->w->id;
    struct worker *to = &s->w[(o->w->id + 1) % THREADS];
    struct free_node *head = atomic_load(&to->to_free);
    do {
        node->next = head;
    } while (!atomic_compare_exchange_weak(&to->to_free, &head, node));
    o->buf = NULL;
}

/* Pop the whole list at once (no ABA) and free it here, on another thread than the allocator. */
static void free_handed(struct worker *w)
{
    struct free_node *n = atomic_exchange(&w->to_free, NULL);
    while (n) {
        struct free_node *next = n->next;
        if (n->alloc_worker == w->id)
            note_bad(w->s, "worker %d was handed its own buffer", w->id);
        int rc = auraio_buffer_free(w->s->e, n, n->size);
        if (rc != 0)
            note_bad(w->s, "auraio_buffer_free of a pool buffer: %d", rc);
        w->freed_foreign++;
        n = next;
    }
}

/* ------------------------------------------------------------------------------------------- */
/* Submission and callbacks */

static void op_cb(auraio_request_t *req, ssize_t res, void *ud);

static auraio_request_t *submit(struct op *o)
{
    struct stress *s = o->w->s;
    struct worker *w = o->w;
    auraio_request_t *r = NULL;
    atomic_store(&o->in_flight, 1);
    atomic_fetch_add(&o->submits, 1);
    switch (o->kind) {
    case K_READ:
    case K_READ_CANCEL:
        r = auraio_read(s->e, s->data_fd, auraio_buf(o->buf), o->len, o->off, op_cb, o);
        break;
    case K_WRITE:
        r = auraio_write(s->e, s->scratch_fd, auraio_buf(o->buf), o->len, o->off, op_cb, o);
        break;
    case K_READBACK:
        r = auraio_read(s->e, s->scratch_fd, auraio_buf(o->buf), o->len, o->off, op_cb, o);
        break;
    case K_PIPE_CANCEL:
        r = auraio_read(s->e, w->pipe_cancel[0], auraio_buf(o->buf), 1, 0, op_cb, o);
        break;
    case K_PIPE_FED:
        r = auraio_read(s->e, w->pipe_fed[0], auraio_buf(o->buf), 1, 0, op_cb, o);
        break;
    case K_FSYNC:
        r = auraio_fsync(s->e, s->scratch_fd, AURAIO_FSYNC_DATASYNC, op_cb, o);
        break;
    }
    if (r) {
        atomic_fetch_add(&s->submits, 1);
    } else {
        int err = errno;
        atomic_fetch_sub(&o->submits, 1);
        atomic_store(&o->in_flight, 0);
        errno = err;
    }
    return r;
}

/* The slot's chain is over: hand the buffer on, free the slot. */
static void finish(struct op *o)
{
    struct stress *s = o->w->s;
    hand_over(s, o);
    atomic_fetch_sub(&s->outstanding, 1);
    atomic_store(&o->busy, 0);
}

static void op_cb(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct op *o = ud;
    struct stress *s = o->w->s;
    atomic_fetch_add(&o->calls, 1);
    atomic_fetch_add(&s->callbacks, 1);
    if (atomic_exchange(&o->in_flight, 0) != 1) {
        note_bad(s, "worker %d: a callback ran for a request that had already completed", o->w->id);
        return;
    }
    switch (o->kind) {
    case K_READ:
    case K_READ_CANCEL:
        if (res == (ssize_t)o->len) {
            long bad = harness_check_pattern(o->buf, o->len, (uint64_t)o->off, DATA_SEED);
            if (bad != -1)
                note_bad(s, "read at %lld: byte %ld differs", (long long)o->off, bad);
            atomic_fetch_add(&s->n.reads_ok, 1);
        } else if (res == -ECANCELED) {
            atomic_fetch_add(&s->n.reads_cancelled, 1);
        } else {
            note_bad(s, "read of %zu at %lld: result %zd", o->len, (long long)o->off, res);
        }
        break;
    case K_WRITE:
        if (res == (ssize_t)o->len) {
            atomic_fetch_add(&s->n.writes_ok, 1);
            /* Resubmit from the callback: read the region back into the zeroed buffer. */
            memset(o->buf, 0, o->len);
            o->kind = K_READBACK;
            if (submit(o))
                return;
            if (errno != EAGAIN)
                note_bad(s, "read-back submit: errno %d", errno);
            atomic_fetch_add(&s->n.resubmit_eagain, 1);
        } else if (res == -ECANCELED) {
            atomic_fetch_add(&s->n.reads_cancelled, 1);
        } else {
            note_bad(s, "write of %zu at %lld: result %zd", o->len, (long long)o->off, res);
        }
        break;
    case K_READBACK:
        if (res == (ssize_t)o->len) {
            long bad = harness_check_pattern(o->buf, o->len, (uint64_t)o->off, SCRATCH_SEED);
            if (bad != -1)
                note_bad(s, "read-back at %lld: byte %ld differs", (long long)o->off, bad);
            atomic_fetch_add(&s->n.readbacks_ok, 1);
        } else if (res != -ECANCELED) {
            note_bad(s, "read-back of %zu at %lld: result %zd", o->len, (long long)o->off, res);
        }
        break;
    case K_PIPE_CANCEL:
        if (res != -ECANCELED)
            note_bad(s, "never-fed pipe read ended with %zd, expected -ECANCELED", res);
        atomic_fetch_add(&s->n.pipe_cancelled, 1);
        break;
    case K_PIPE_FED:
        if (res != 1)
            note_bad(s, "fed pipe read ended with %zd, expected 1", res);
        atomic_fetch_add(&s->n.pipe_fed, 1);
        break;
    case K_FSYNC:
        if (res != 0)
            note_bad(s, "fsync ended with %zd", res);
        atomic_fetch_add(&s->n.fsyncs, 1);
        break;
    }
    finish(o);
}

static void pay_owed(struct worker *w)
{
    char bytes[SLOTS * 4];
    memset(bytes, 'p', sizeof(bytes));
    while (w->owed > 0) {
        size_t n = w->owed < (long)sizeof(bytes) ? (size_t)w->owed : sizeof(bytes);
        ssize_t rc = write(w->pipe_fed[1], bytes, n);
        if (rc <= 0) {
            note_bad(w->s, "pipe write: %zd", rc);
            return;
        }
        w->owed -= rc;
    }
}

static void cancel_checked(struct stress *s, auraio_request_t *r, bool must_issue, const char *what)
{
    int rc = auraio_cancel(s->e, r);
    if (must_issue ? rc != 0 : (rc != 0 && rc != -EALREADY && rc != -EINPROGRESS))
        note_bad(s, "cancel of %s: %d", what, rc);
}

/* Start one operation in a free slot. */
static void start_one(struct worker *w, struct op *o)
{
    struct stress *s = w->s;
    static const size_t sizes[] = {4096, 8192, 16384};
    uint32_t pick = rnd(&w->rng) % 100;
    o->len = sizes[rnd(&w->rng) % 3];
    o->buf_size = o->len;
    if (pick < 40) {
        o->kind = K_READ;
    } else if (pick < 50) {
        o->kind = K_READ_CANCEL;
    } else if (pick < 70) {
        o->kind = K_WRITE;
    } else if (pick < 80) {
        o->kind = K_PIPE_CANCEL;
    } else if (pick < 90) {
        o->kind = K_PIPE_FED;
    } else if (pick < 94) {
        o->kind = K_FSYNC;
    } else {
        /* Cancel someone's published read handle (live or stale), then read. */
        uintptr_t h = atomic_load(&s->handles[rnd(&w->rng) % HANDLES]);
        if (h) {
            cancel_checked(s, (auraio_request_t *)h, false, "a published handle");
            atomic_fetch_add(&s->n.cross_cancels, 1);
        }
        o->kind = K_READ;
    }
    if (o->kind == K_READ || o->kind == K_READ_CANCEL)
        o->off = (int64_t)(rnd(&w->rng) % (FILE_SIZE / 4096 - 4)) * 4096;
    else /* each slot owns a 16 KiB region of the scratch file */
        o->off = (int64_t)((size_t)(w->id * SLOTS + (int)(o - w->ops)) * 16384);

    o->buf = auraio_buffer_alloc(s->e, o->buf_size);
    if (!o->buf) {
        note_bad(s, "auraio_buffer_alloc(%zu): errno %d", o->buf_size, errno);
        return;
    }
    if (o->kind == K_WRITE)
        harness_fill_pattern(o->buf, o->len, (uint64_t)o->off, SCRATCH_SEED);
    atomic_store(&o->busy, 1);
    atomic_fetch_add(&s->outstanding, 1);
    /* Once submitted, the op belongs to its callback (which may change o->kind): keep a copy. */
    const enum kind kind = o->kind;
    auraio_request_t *r = submit(o);
    if (!r) {
        if (errno != EAGAIN)
            note_bad(s, "submit of kind %d: errno %d", (int)kind, errno);
        atomic_fetch_add(&s->n.submit_eagain, 1);
        /* Free it here (same thread) and let the pollers make room. */
        if (auraio_buffer_free(s->e, o->buf, o->buf_size) != 0)
            note_bad(s, "auraio_buffer_free after a failed submit");
        o->buf = NULL;
        atomic_fetch_sub(&s->outstanding, 1);
        atomic_store(&o->busy, 0);
        auraio_wait(s->e, 1);
        return;
    }
    switch (kind) {
    case K_READ:
        atomic_store(&s->handles[rnd(&w->rng) % HANDLES], (uintptr_t)r);
        break;
    case K_READ_CANCEL:
        cancel_checked(s, r, false, "a file read racing its completion");
        break;
    case K_PIPE_CANCEL:
        /* Nobody else can know this handle (only reads are published): the cancel must be
         * issued. A stale published handle that acted on this slot would show up here. */
        cancel_checked(s, r, true, "a blocked pipe read");
        break;
    case K_PIPE_FED:
        w->owed++;
        break;
    default:
        break;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct stress *s = w->s;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
        note_bad(s, "pthread_setaffinity_np(%d) failed", w->cpu);

    unsigned iter = 0;
    while (now_ns() < s->deadline_ns && atomic_load(&s->bad) == 0) {
        iter++;
        free_handed(w);
        /* Let fed-pipe reads block for a while before their bytes arrive. */
        if ((iter & 3) == 0)
            pay_owed(w);
        int slot = -1;
        unsigned first = rnd(&w->rng) % SLOTS;
        for (unsigned k = 0; k < SLOTS; k++) {
            unsigned i = (first + k) % SLOTS;
            if (!atomic_load(&w->ops[i].busy)) {
                slot = (int)i;
                break;
            }
        }
        if (slot >= 0)
            start_one(w, &w->ops[slot]);
        int rc = slot >= 0 ? auraio_poll(s->e) : auraio_wait(s->e, 5);
        if (rc < 0 && rc != -ETIME)
            note_bad(s, "poll/wait: %d", rc);
    }
    /* Drain: pay every byte owed, keep polling until no slot of any thread is busy. */
    pay_owed(w);
    uint64_t limit = now_ns() + DRAIN_LIMIT_NS;
    while (atomic_load(&s->outstanding) > 0) {
        if (now_ns() > limit) {
            note_bad(s, "worker %d: %ld operations still outstanding after %llu s", w->id,
                     atomic_load(&s->outstanding), DRAIN_LIMIT_NS / 1000000000ull);
            break;
        }
        int rc = auraio_wait(s->e, 5);
        if (rc < 0 && rc != -ETIME)
            note_bad(s, "wait while draining: %d", rc);
        free_handed(w);
    }
    pthread_barrier_wait(&s->end);
    free_handed(w); /* hand-overs of the last callbacks, which all ran before the barrier */
    return NULL;
}

/* ------------------------------------------------------------------------------------------- */

struct config {
    const char *name;
    auraio_ring_select_t mode;
    int rings;       /* 0: one per CPU */
    int depth;
    int fixed_limit; /* 0: the controller adapts */
};

static const struct config configs[] = {
    {"adaptive, limit 4 (spills)", AURAIO_SELECT_ADAPTIVE, 0, 64, 4},
    {"adaptive, controller on", AURAIO_SELECT_ADAPTIVE, 0, 128, 0},
    {"cpu-local", AURAIO_SELECT_CPU_LOCAL, 0, 64, 0},
    {"round-robin, 3 rings", AURAIO_SELECT_ROUND_ROBIN, 3, 32, 8},
    {"thread-local, 2 rings < threads", AURAIO_SELECT_THREAD_LOCAL, 2, 64, 0},
    {"thread-local, 1 ring", AURAIO_SELECT_THREAD_LOCAL, 1, 48, 4},
};
#define CONFIG_COUNT (sizeof(configs) / sizeof(configs[0]))

static uint64_t budget_ms(void)
{
    const char *v = getenv("AURAIO_STRESS_MS");
    long ms = v ? strtol(v, NULL, 10) : 3000;
    return ms > 0 ? (uint64_t)ms : 3000;
}

static int g_cpus[THREADS];
static int g_ncpu;

/* Destroy with blocked reads and file reads in flight: each callback once, the blocked ones
 * -ECANCELED, the file reads either complete and correct or -ECANCELED. */
static void destroy_with_io_in_flight(auraio_engine_t *e, int data_fd)
{
    static struct recorder rec;
    recorder_init(&rec);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    enum { BLOCKED = 6, READS = 16 };
    struct recorder_ctx ctx[BLOCKED + READS];
    static unsigned char bufs[READS][4096];
    unsigned char pbuf[BLOCKED];
    for (int i = 0; i < BLOCKED + READS; i++) {
        ctx[i] = (struct recorder_ctx){&rec, i};
        auraio_request_t *r =
            i < BLOCKED ? auraio_read(e, p[0], auraio_buf(&pbuf[i]), 1, 0, recorder_callback, &ctx[i])
                        : auraio_read(e, data_fd, auraio_buf(bufs[i - BLOCKED]), 4096,
                                      (int64_t)(i - BLOCKED) * 4096, recorder_callback, &ctx[i]);
        assert_non_null(r);
    }
    auraio_destroy(e);
    recorder_assert_each_once(&rec, BLOCKED + READS);
    for (int i = 0; i < BLOCKED; i++)
        assert_int_equal(atomic_load(&rec.results[i]), -ECANCELED);
    for (int i = 0; i < READS; i++) {
        long res = atomic_load(&rec.results[BLOCKED + i]);
        if (res == 4096)
            assert_int_equal(harness_check_pattern(bufs[i], 4096, (uint64_t)i * 4096, DATA_SEED), -1);
        else
            assert_int_equal(res, -ECANCELED);
    }
    close(p[0]);
    close(p[1]);
}

static void run_config(const struct config *c, int data_fd, int scratch_fd, uint64_t ms)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_select = c->mode;
    o.ring_count = c->rings;
    o.queue_depth = c->depth;
    if (c->fixed_limit) {
        o.disable_adaptive = true;
        o.initial_in_flight = c->fixed_limit;
    }
    struct stress *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->e = auraio_create_with_options(&o);
    assert_non_null(s->e);
    s->data_fd = data_fd;
    s->scratch_fd = scratch_fd;
    assert_int_equal(pthread_barrier_init(&s->end, NULL, THREADS), 0);
    uint64_t start = now_ns();
    s->deadline_ns = start + ms * 1000000ull;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        struct worker *w = &s->w[i];
        w->s = s;
        w->id = i;
        w->cpu = g_cpus[i % g_ncpu];
        w->rng = 0x9e3779b9u * (uint32_t)(i + 1) ^ (uint32_t)start;
        if (!w->rng)
            w->rng = 1;
        assert_int_equal(pipe2(w->pipe_cancel, O_CLOEXEC), 0);
        assert_int_equal(pipe2(w->pipe_fed, O_CLOEXEC), 0);
        for (int k = 0; k < SLOTS; k++)
            w->ops[k].w = w;
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &s->w[i]), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    uint64_t elapsed_ms = (now_ns() - start) / 1000000;

    auraio_stats_t st;
    assert_int_equal(auraio_get_stats(s->e, &st), 0);
    auraio_buffer_stats_t bs;
    assert_int_equal(auraio_get_buffer_stats(s->e, &bs), 0);
    long freed_foreign = 0;
    for (int i = 0; i < THREADS; i++)
        freed_foreign += s->w[i].freed_foreign;
    print_message("%-32s %5llu ms  callbacks %7ld  reads %6ld  cancelled reads/writes %ld  writes+readbacks %ld+%ld  "
                  "pipe cancelled/fed %ld/%ld  fsyncs %ld  cross-cancels %ld  eagain %ld+%ld  "
                  "buffers freed cross-thread %ld  spills %llu\n",
                  c->name, (unsigned long long)elapsed_ms, atomic_load(&s->callbacks),
                  atomic_load(&s->n.reads_ok), atomic_load(&s->n.reads_cancelled), atomic_load(&s->n.writes_ok),
                  atomic_load(&s->n.readbacks_ok), atomic_load(&s->n.pipe_cancelled),
                  atomic_load(&s->n.pipe_fed), atomic_load(&s->n.fsyncs), atomic_load(&s->n.cross_cancels),
                  atomic_load(&s->n.submit_eagain), atomic_load(&s->n.resubmit_eagain), freed_foreign,
                  (unsigned long long)st.adaptive_spills);

    if (atomic_load(&s->bad) != 0)
        fail_msg("%s: %ld bad results; first: %s", c->name, atomic_load(&s->bad), g_first_failure);
    /* Exactly once, per slot and in total. */
    for (int i = 0; i < THREADS; i++) {
        for (int k = 0; k < SLOTS; k++) {
            struct op *op = &s->w[i].ops[k];
            if (atomic_load(&op->submits) != atomic_load(&op->calls))
                fail_msg("%s: worker %d slot %d: %ld submissions, %ld callbacks", c->name, i, k,
                         atomic_load(&op->submits), atomic_load(&op->calls));
            assert_int_equal(atomic_load(&op->busy), 0);
            assert_null(op->buf);
        }
    }
    assert_int_equal(atomic_load(&s->submits), atomic_load(&s->callbacks));
    assert_int_equal(atomic_load(&s->outstanding), 0);
    assert_int_equal(auraio_pending_count(s->e), 0);
    assert_int_equal(st.pending_count, 0);
    /* Every pool buffer went back (freed by a thread other than the one that allocated it). */
    assert_int_equal(bs.total_buffers, 0);
    assert_int_equal(bs.total_allocated_bytes, 0);
    if (c->mode != AURAIO_SELECT_ADAPTIVE)
        assert_int_equal(st.adaptive_spills, 0);
    /* The mix really ran (a budget too small to do each at least once is a broken test). */
    assert_true(atomic_load(&s->n.reads_ok) > 0);
    assert_true(atomic_load(&s->n.readbacks_ok) > 0);
    assert_true(atomic_load(&s->n.pipe_cancelled) > 0);
    assert_true(atomic_load(&s->n.pipe_fed) > 0);
    assert_true(freed_foreign > 0);

    long callbacks_before = atomic_load(&s->callbacks);
    destroy_with_io_in_flight(s->e, data_fd);
    /* Destroy ran no stale callback of the workload. */
    assert_int_equal(atomic_load(&s->callbacks), callbacks_before);
    for (int i = 0; i < THREADS; i++) {
        close(s->w[i].pipe_cancel[0]);
        close(s->w[i].pipe_cancel[1]);
        close(s->w[i].pipe_fed[0]);
        close(s->w[i].pipe_fed[1]);
    }
    pthread_barrier_destroy(&s->end);
    free(s);
}

static int g_data_fd = -1, g_scratch_fd = -1;

static void test_engine_stress(void **state)
{
    (void)state;
    uint64_t per_config = budget_ms() / CONFIG_COUNT;
    if (per_config < 50)
        per_config = 50;
    for (size_t i = 0; i < CONFIG_COUNT; i++)
        run_config(&configs[i], g_data_fd, g_scratch_fd, per_config);
}

int main(void)
{
    harness_require_io_uring();
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        printf("ERROR: sched_getaffinity: %s\n", strerror(errno));
        return 99;
    }
    for (int c = 0; c < CPU_SETSIZE && g_ncpu < THREADS; c++) {
        if (CPU_ISSET(c, &set))
            g_cpus[g_ncpu++] = c;
    }
    if (g_ncpu < 2)
        printf("NOTE: %d usable CPU: all %d threads share it, so CPU_LOCAL/ADAPTIVE use one local ring\n",
               g_ncpu, THREADS);
    g_data_fd = harness_pattern_file(FILE_SIZE, DATA_SEED);
    g_scratch_fd = harness_pattern_file(SCRATCH_SIZE, SCRATCH_SEED);
    if (g_data_fd < 0 || g_scratch_fd < 0) {
        printf("ERROR: cannot create the test files\n");
        return 99;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_stress),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    close(g_data_fd);
    close(g_scratch_fd);
    return rc;
}
