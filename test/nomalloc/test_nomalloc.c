/* SPDX-License-Identifier: Apache-2.0 */
/*
 * No allocation on the read/write submit and completion path. This executable defines malloc,
 * calloc, realloc, free, posix_memalign, aligned_alloc, memalign, valloc and pvalloc itself
 * (forwarding to glibc's __libc_* entry points), so every allocator call in the process - the
 * library is linked statically into it, glibc's own internal calls go through the same symbols -
 * is counted while counting is on. After a warm-up, 100,000 reads and writes of a cached temp file
 * run with several in flight, resubmitted from callbacks and from the poll/wait loop, under a few
 * engine configurations (controller on, a fixed limit with backlog, several rings, single issuer),
 * and the count must be zero. A second pass also takes every I/O buffer from auraio_buffer_alloc
 * and frees it in the callback, so the pool's thread-cache fast path is covered too. A third pass
 * covers the newer paths: reads with deadlines, chains linked in the kernel and continued by the
 * library, statx, ftruncate, fadvise and timers.
 *
 * It can fail: the 'nomalloc-selfcheck' registration (should_fail) sets AURAIO_NOMALLOC_SELFTEST,
 * which makes one callback allocate; and a malloc/free added to lib/ring.c's auraio__ring_submit
 * (checked on a private copy of the tree, not committed) made this test report 200000 calls and
 * the caller's address, which addr2line resolved to auraio__ring_submit. On failure it prints each
 * function's count and where the first counted call came from, ready for addr2line.
 *
 * Not built under sanitizers: ASan/TSan replace the allocator themselves (see meson.build).
 * valgrind's memcheck does too, in this executable as well, so nothing would be counted and the
 * selfcheck would pass unexpectedly: main first checks that a malloc reaches the counter and,
 * when it does not, exits 77 (skipped) under valgrind with the reason, and fails anywhere else.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#if defined(AURAIO_HAVE_VALGRIND)
#include <valgrind/valgrind.h>
#endif

/* ------------------------------------------------------------------------------------------- */
/* The interposed allocator */

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t alignment, size_t size);

enum { F_MALLOC, F_CALLOC, F_REALLOC, F_FREE, F_POSIX_MEMALIGN, F_ALIGNED_ALLOC, F_MEMALIGN, F_VALLOC,
       F_PVALLOC, F_COUNT };
static const char *const fn_names[F_COUNT] = {"malloc", "calloc", "realloc", "free", "posix_memalign",
                                              "aligned_alloc", "memalign", "valloc", "pvalloc"};

static _Atomic bool counting;
static _Atomic long calls[F_COUNT];
static void *_Atomic first_caller;

#define COUNT(fn)                                                                                    \
    do {                                                                                             \
        if (atomic_load_explicit(&counting, memory_order_relaxed)) {                                 \
            atomic_fetch_add_explicit(&calls[fn], 1, memory_order_relaxed);                          \
            void *expected_ = NULL;                                                                  \
            atomic_compare_exchange_strong(&first_caller, &expected_, __builtin_return_address(0));   \
        }                                                                                            \
    } while (0)

void *malloc(size_t size)
{
    COUNT(F_MALLOC);
    return __libc_malloc(size);
}

void *calloc(size_t n, size_t size)
{
    COUNT(F_CALLOC);
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t size)
{
    COUNT(F_REALLOC);
    return __libc_realloc(p, size);
}

void free(void *p)
{
    if (p)
        COUNT(F_FREE);
    __libc_free(p);
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
    COUNT(F_POSIX_MEMALIGN);
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0)
        return EINVAL;
    void *p = __libc_memalign(alignment, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t alignment, size_t size)
{
    COUNT(F_ALIGNED_ALLOC);
    return __libc_memalign(alignment, size);
}

void *memalign(size_t alignment, size_t size)
{
    COUNT(F_MEMALIGN);
    return __libc_memalign(alignment, size);
}

void *valloc(size_t size)
{
    COUNT(F_VALLOC);
    return __libc_memalign(4096, size);
}

void *pvalloc(size_t size)
{
    COUNT(F_PVALLOC);
    return __libc_memalign(4096, (size + 4095) & ~(size_t)4095);
}

static long total_calls(void)
{
    long t = 0;
    for (int i = 0; i < F_COUNT; i++)
        t += atomic_load(&calls[i]);
    return t;
}

static void start_counting(void)
{
    for (int i = 0; i < F_COUNT; i++)
        atomic_store(&calls[i], 0);
    atomic_store(&first_caller, NULL);
    atomic_store(&counting, true);
}

static void stop_counting(void)
{
    atomic_store(&counting, false);
}

static void report_and_assert_zero(const char *what)
{
    long t = total_calls();
    if (t == 0)
        return;
    for (int i = 0; i < F_COUNT; i++) {
        if (atomic_load(&calls[i]))
            print_message("  %s: %ld calls\n", fn_names[i], atomic_load(&calls[i]));
    }
    void *caller = atomic_load(&first_caller);
    Dl_info info;
    if (caller && dladdr(caller, &info) && info.dli_fname)
        print_message("  first call from %s+0x%lx (addr2line -f -e %s 0x%lx)\n", info.dli_fname,
                      (unsigned long)((char *)caller - (char *)info.dli_fbase), info.dli_fname,
                      (unsigned long)((char *)caller - (char *)info.dli_fbase));
    fail_msg("%s: %ld allocator calls on the I/O path (first from %p)", what, t, caller);
}

/* Does a malloc/free in this executable reach the counter? (Through volatile pointers, so the
 * compiler cannot drop the pair.) */
static bool counter_sees_allocations(void)
{
    void *(*volatile m)(size_t) = malloc;
    void (*volatile f)(void *) = free;
    start_counting();
    f(m(16));
    stop_counting();
    return atomic_load(&calls[F_MALLOC]) == 1 && atomic_load(&calls[F_FREE]) == 1;
}

/* ------------------------------------------------------------------------------------------- */
/* The I/O loop */

#define BLOCK 4096
#define FILE_BLOCKS 256
#define IN_FLIGHT 8
#define WARMUP_OPS 5000
#define COUNTED_OPS 100000
#define SEED 31

struct loop;

struct slot {
    struct loop *l;
    int index;
    bool is_write;
    bool busy;
    int block;
    unsigned char *buf;
};

struct loop {
    auraio_engine_t *e;
    int data_fd, scratch_fd;
    bool pool_buffers; /* allocate each op's buffer from the pool, free it in the callback */
    bool selftest;     /* allocate in one callback: the count must then be non-zero */
    long submitted, completed, target, errors;
    unsigned rng;
    struct slot slots[IN_FLIGHT];
    unsigned char *fixed_bufs; /* IN_FLIGHT blocks, when !pool_buffers */
};

static void slot_cb(auraio_request_t *req, ssize_t res, void *ud);

static bool slot_submit(struct slot *s)
{
    struct loop *l = s->l;
    if (l->submitted >= l->target)
        return false;
    l->rng = l->rng * 1103515245u + 12345u;
    s->block = (int)((l->rng >> 8) % FILE_BLOCKS);
    s->is_write = (l->submitted & 1) != 0;
    if (l->pool_buffers) {
        s->buf = auraio_buffer_alloc(l->e, BLOCK);
        if (!s->buf) {
            l->errors++;
            return false;
        }
    } else {
        s->buf = l->fixed_bufs + (size_t)s->index * BLOCK;
    }
    if (s->is_write) /* the scratch file holds the same pattern: writes keep it intact */
        harness_fill_pattern(s->buf, 64, (uint64_t)s->block * BLOCK, SEED);
    int64_t off = (int64_t)s->block * BLOCK;
    auraio_request_t *r = s->is_write ? auraio_write(l->e, l->scratch_fd, auraio_buf(s->buf), 64, off, slot_cb, s)
                                      : auraio_read(l->e, l->data_fd, auraio_buf(s->buf), BLOCK, off, slot_cb, s);
    if (!r) {
        l->errors++;
        if (l->pool_buffers)
            auraio_buffer_free(l->e, s->buf, BLOCK);
        return false;
    }
    s->busy = true;
    l->submitted++;
    return true;
}

static void slot_cb(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct slot *s = ud;
    struct loop *l = s->l;
    l->completed++;
    if (res != (s->is_write ? 64 : BLOCK))
        l->errors++;
    else if (!s->is_write && (harness_check_pattern(s->buf, 64, (uint64_t)s->block * BLOCK, SEED) != -1 ||
                              harness_check_pattern(s->buf + BLOCK - 64, 64, (uint64_t)s->block * BLOCK + BLOCK - 64,
                                                    SEED) != -1))
        l->errors++; /* both ends checked: the pattern costs ~5 ns a byte */
    if (l->pool_buffers && auraio_buffer_free(l->e, s->buf, BLOCK) != 0)
        l->errors++;
    if (l->selftest && l->completed == WARMUP_OPS + 1000) {
        void *volatile p = malloc(16);
        free(p);
    }
    s->busy = false;
    /* Half the slots resubmit from the callback, the other half from the loop below. */
    if ((s->index & 1) == 0)
        slot_submit(s);
}

/* Run until @p ops more completed; alternates auraio_poll and auraio_wait. */
static void run_ops(struct loop *l, long ops)
{
    l->target = l->submitted + ops;
    long want = l->completed + ops;
    unsigned turn = 0;
    while (l->completed < want && l->errors == 0) {
        for (int i = 0; i < IN_FLIGHT; i++) {
            if (!l->slots[i].busy)
                slot_submit(&l->slots[i]);
        }
        int rc = (turn++ & 1) ? auraio_poll(l->e) : auraio_wait(l->e, 1000);
        if (rc < 0 && rc != -ETIME)
            l->errors++;
    }
}

static void run_config(const char *name, const auraio_options_t *o, bool pool_buffers, bool selftest)
{
    static struct loop l;
    memset(&l, 0, sizeof(l));
    l.e = auraio_create_with_options(o);
    assert_non_null(l.e);
    l.data_fd = harness_pattern_file((size_t)FILE_BLOCKS * BLOCK, SEED);
    l.scratch_fd = harness_pattern_file((size_t)FILE_BLOCKS * BLOCK, SEED);
    assert_true(l.data_fd >= 0 && l.scratch_fd >= 0);
    l.pool_buffers = pool_buffers;
    l.rng = 12345;
    l.fixed_bufs = auraio_buffer_alloc(l.e, (size_t)IN_FLIGHT * BLOCK);
    assert_non_null(l.fixed_bufs);
    for (int i = 0; i < IN_FLIGHT; i++)
        l.slots[i] = (struct slot){.l = &l, .index = i};

    /* Warm-up: first-touch of thread-local state, the pool's thread cache, lazy setup. */
    run_ops(&l, WARMUP_OPS);
    assert_int_equal(l.errors, 0);

    l.selftest = selftest;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    start_counting();
    run_ops(&l, COUNTED_OPS);
    stop_counting();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    l.selftest = false;

    long ms = (long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    print_message("%-40s %ld ops counted in %ld ms, %ld allocator calls\n", name, (long)COUNTED_OPS, ms,
                  total_calls());
    assert_int_equal(l.errors, 0);
    assert_int_equal(l.completed, WARMUP_OPS + COUNTED_OPS);
    report_and_assert_zero(name);

    assert_int_equal(auraio_pending_count(l.e), 0);
    assert_int_equal(auraio_buffer_free(l.e, l.fixed_bufs, (size_t)IN_FLIGHT * BLOCK), 0);
    auraio_destroy(l.e);
    assert_int_equal(l.completed, l.submitted);
    close(l.data_fd);
    close(l.scratch_fd);
}

static bool g_selftest;

static void test_no_malloc_on_io_path(void **state)
{
    (void)state;
    auraio_options_t o;

    auraio_options_init(&o); /* defaults: one ring per CPU, ADAPTIVE, controller on */
    run_config("defaults", &o, false, g_selftest);

    auraio_options_init(&o); /* backlog: limit 2 with 8 in flight */
    o.ring_count = 2;
    o.queue_depth = 16;
    o.disable_adaptive = true;
    o.initial_in_flight = 2;
    o.ring_select = AURAIO_SELECT_ROUND_ROBIN;
    run_config("2 rings, round robin, limit 2 (backlog)", &o, false, false);

    auraio_options_init(&o);
    o.ring_count = 3;
    o.ring_select = AURAIO_SELECT_THREAD_LOCAL;
    run_config("3 rings, thread local", &o, false, false);

    auraio_options_init(&o);
    o.ring_count = 1;
    o.single_issuer = true;
    o.ring_select = AURAIO_SELECT_CPU_LOCAL;
    run_config("1 ring, single issuer, cpu local", &o, false, false);
}

static void test_no_malloc_with_pool_buffers(void **state)
{
    (void)state;
    auraio_options_t o;
    auraio_options_init(&o);
    run_config("defaults, a pool buffer per I/O", &o, true, false);
}

/* ------------------------------------------------------------------------------------------- */
/* The newer paths: deadlines, chains (kernel-linked and continued by the library), metadata ops
 * and timers, each kind in turn, resubmitted from the callbacks. */

#define OPS_KINDS 6
#define OPS_IN_FLIGHT 4
#define OPS_WARMUP 2000
#define OPS_COUNTED 30000

struct ops_loop;
struct ops_slot {
    struct ops_loop *l;
    int kind;
    int waiting; /* callbacks still to come for this slot's current submission */
    unsigned char buf[2][BLOCK];
};
struct ops_loop {
    auraio_engine_t *e;
    int fd;
    long submitted, completed, target, errors;
    struct statx sx;
    struct ops_slot slots[OPS_IN_FLIGHT];
};

static void ops_cb(auraio_request_t *req, ssize_t res, void *ud);

static void ops_submit(struct ops_slot *s)
{
    struct ops_loop *l = s->l;
    if (l->submitted >= l->target)
        return;
    s->kind = (s->kind + 1) % OPS_KINDS;
    bool ok = true;
    s->waiting = 1;
    switch (s->kind) {
    case 0: /* a read with a deadline that does not fire: two CQEs, one callback */
        ok = auraio_set_next_timeout(l->e, 10000000000ull) == 0 &&
             auraio_read(l->e, l->fd, auraio_buf(s->buf[0]), BLOCK, 0, ops_cb, s) != NULL;
        break;
    case 1: /* a kernel-linked chain */
        s->waiting = 2;
        ok = auraio_read_ex(l->e, l->fd, auraio_buf(s->buf[0]), BLOCK, 0, AURAIO_LINK, ops_cb, s) != NULL &&
             auraio_read(l->e, l->fd, auraio_buf(s->buf[1]), BLOCK, BLOCK, ops_cb, s) != NULL;
        break;
    case 2: /* a chain the library continues after an op the kernel would not stop it for */
        s->waiting = 2;
        ok = auraio_fadvise(l->e, l->fd, 0, 0, POSIX_FADV_NORMAL, AURAIO_LINK, ops_cb, s) != NULL &&
             auraio_read(l->e, l->fd, auraio_buf(s->buf[1]), BLOCK, 0, ops_cb, s) != NULL;
        break;
    case 3:
        ok = auraio_statx(l->e, l->fd, "", AT_EMPTY_PATH, STATX_SIZE, &l->sx, 0, ops_cb, s) != NULL;
        break;
    case 4:
        ok = auraio_timeout(l->e, 0, ops_cb, s) != NULL;
        break;
    default:
        ok = auraio_ftruncate(l->e, l->fd, (int64_t)FILE_BLOCKS * BLOCK, 0, ops_cb, s) != NULL;
        break;
    }
    if (!ok) {
        l->errors++;
        s->waiting = 0;
        return;
    }
    l->submitted++;
}

static void ops_cb(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct ops_slot *s = ud;
    struct ops_loop *l = s->l;
    if (res < 0)
        l->errors++;
    if (--s->waiting > 0)
        return;
    l->completed++;
    ops_submit(s);
}

static void run_ops_loop(struct ops_loop *l, long ops)
{
    l->target = l->submitted + ops;
    long want = l->completed + ops;
    for (int i = 0; i < OPS_IN_FLIGHT; i++) {
        if (l->slots[i].waiting == 0)
            ops_submit(&l->slots[i]);
    }
    while (l->completed < want && l->errors == 0) {
        int rc = auraio_wait(l->e, 1000);
        if (rc < 0 && rc != -ETIME)
            l->errors++;
    }
}

static void test_no_malloc_on_newer_paths(void **state)
{
    (void)state;
    static struct ops_loop l;
    memset(&l, 0, sizeof(l));
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 2;
    l.e = auraio_create_with_options(&o);
    assert_non_null(l.e);
    l.fd = harness_pattern_file((size_t)FILE_BLOCKS * BLOCK, SEED);
    assert_true(l.fd >= 0);
    for (int i = 0; i < OPS_IN_FLIGHT; i++)
        l.slots[i] = (struct ops_slot){.l = &l, .kind = i};
    run_ops_loop(&l, OPS_WARMUP);
    assert_int_equal(l.errors, 0);
    start_counting();
    run_ops_loop(&l, OPS_COUNTED);
    stop_counting();
    print_message("%-40s %ld ops counted, %ld allocator calls\n", "deadlines, chains, metadata, timers",
                  (long)OPS_COUNTED, total_calls());
    assert_int_equal(l.errors, 0);
    report_and_assert_zero("newer paths");
    assert_int_equal(auraio_pending_count(l.e), 0);
    auraio_destroy(l.e);
    assert_int_equal(l.completed, l.submitted);
    close(l.fd);
}

int main(void)
{
    harness_require_io_uring();
    g_selftest = getenv("AURAIO_NOMALLOC_SELFTEST") != NULL;
    if (!counter_sees_allocations()) {
#if defined(AURAIO_HAVE_VALGRIND)
        if (RUNNING_ON_VALGRIND) {
            printf("SKIP: valgrind replaces malloc & co. in this executable too, so the counting "
                   "allocator never runs and a zero count would prove nothing\n");
            return 77;
        }
#endif
        printf("FAIL: a malloc/free in this executable did not reach the counting allocator\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_malloc_on_io_path),
        cmocka_unit_test(test_no_malloc_with_pool_buffers),
        cmocka_unit_test(test_no_malloc_on_newer_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
