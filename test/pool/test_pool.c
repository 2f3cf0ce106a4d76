/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Buffer pool tests (suite 'pool'): size classes and the direct path, alignment, argument errors,
 * foreign pointers, double frees and wrong sizes (refused, pool unchanged), cross-thread frees,
 * thread exit with cached buffers, destroy while other threads hold caches, destroy then create
 * on the same thread, stats, and the caps that give memory back. Each lifetime case is written to
 * fail (assert, or ASan/valgrind report) on the bug listed in failure-modes.md "Buffer pool".
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buffer_pool.h"

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* The class size a request is served from (what the stats count). */
static size_t class_bytes(size_t size)
{
    if (size > AURAIO_POOL_MAX_CLASS_SIZE)
        return (size + 4095) & ~(size_t)4095;
    size_t c = AURAIO_POOL_MIN_CLASS_SIZE;
    while (c < size)
        c <<= 1;
    return c;
}

static struct buffer_pool *new_pool(int shards)
{
    struct buffer_pool *pool = NULL;
    assert_int_equal(auraio__pool_create(&pool, shards), 0);
    assert_non_null(pool);
    return pool;
}

/*
 * A new pool, at the address @p old_addr had if the system allocator gives it back within a few
 * tries: that is the case where a thread cache keyed by the pool's address would be taken for the
 * new pool's. (ASan and valgrind quarantine freed memory, so there it stays a different address
 * and the freed-memory accesses of such a bug are what they report.)
 */
static struct buffer_pool *new_pool_at(const void *old_addr, int shards)
{
    struct buffer_pool *tries[32];
    int n = 0;
    struct buffer_pool *got = NULL;
    while (n < 32) {
        tries[n] = new_pool(shards);
        if ((const void *)tries[n] == old_addr) {
            got = tries[n];
            break;
        }
        n++;
    }
    for (int i = 0; i < n; i++)
        auraio__pool_destroy(tries[i]);
    return got ? got : new_pool(shards);
}

static auraio_buffer_stats_t stats_of(const struct buffer_pool *pool)
{
    auraio_buffer_stats_t st;
    memset(&st, 0xa5, sizeof(st));
    auraio__pool_stats(pool, &st);
    return st;
}

static void *must_alloc(struct buffer_pool *pool, size_t size)
{
    void *p = (void *)1;
    assert_int_equal(auraio__pool_alloc(pool, size, &p), 0);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % AURAIO_POOL_ALIGN, 0);
    return p;
}

/* ---------------------------------------------------------------------------------------------- */

static void test_args(void **state)
{
    (void)state;
    struct buffer_pool *pool = NULL;
    assert_int_equal(auraio__pool_create(NULL, 0), -EINVAL);
    assert_int_equal(auraio__pool_create(&pool, -1), -EINVAL);
    assert_null(pool);
    assert_int_equal(auraio__pool_create(&pool, AURAIO_POOL_MAX_SHARDS + 1), -EINVAL);
    assert_null(pool);
    /* The largest shard count is a valid one. */
    assert_int_equal(auraio__pool_create(&pool, AURAIO_POOL_MAX_SHARDS), 0);
    auraio_buffer_stats_t bs;
    auraio__pool_stats(pool, &bs);
    assert_int_equal(bs.shard_count, AURAIO_POOL_MAX_SHARDS);
    auraio__pool_destroy(pool);
    /* The public entry points refuse a NULL engine rather than dereference it. */
    errno = 0;
    assert_null(auraio_buffer_alloc(NULL, 4096));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(auraio_buffer_free(NULL, (void *)(uintptr_t)4096, 4096), -EINVAL);
    assert_int_equal(auraio_get_buffer_stats(NULL, &bs), -EINVAL);

    pool = new_pool(3);
    void *p = (void *)1;
    assert_int_equal(auraio__pool_alloc(pool, 0, &p), -EINVAL);
    assert_null(p);
    assert_int_equal(auraio__pool_alloc(NULL, 4096, &p), -EINVAL);
    assert_int_equal(auraio__pool_alloc(pool, 4096, NULL), -EINVAL);
    assert_int_equal(auraio__pool_free(pool, NULL, 4096), 0);
    assert_int_equal(auraio__pool_free(pool, NULL, 0), 0);
    assert_int_equal(auraio__pool_free(NULL, NULL, 4096), -EINVAL);

    auraio_buffer_stats_t st = stats_of(pool);
    assert_int_equal(st.shard_count, 3);
    assert_int_equal(st.total_buffers, 0);
    assert_int_equal(st.cached_buffers, 0);
    for (size_t i = 0; i < sizeof(st.reserved); i++)
        assert_int_equal(st.reserved[i], 0);
    auraio__pool_stats(NULL, &st); /* no crash */
    auraio__pool_stats(pool, NULL);
    auraio__pool_destroy(pool);
    auraio__pool_destroy(NULL);

    /* Shards scale with the CPU count: a power of two, at least 2. */
    pool = new_pool(0);
    st = stats_of(pool);
    assert_true(st.shard_count >= 2 && st.shard_count <= AURAIO_POOL_MAX_SHARDS);
    assert_int_equal(st.shard_count & (st.shard_count - 1), 0);
    auraio__pool_destroy(pool);
}

static void test_size_classes(void **state)
{
    (void)state;
    static const size_t sizes[] = {
        1, 512, 4095, 4096, 4097, 8192, 12 * KiB, 64 * KiB + 1, 1 * MiB, 3 * MiB, 16 * MiB,
        AURAIO_POOL_MAX_CLASS_SIZE - 1, AURAIO_POOL_MAX_CLASS_SIZE, /* largest class */
        AURAIO_POOL_MAX_CLASS_SIZE + 1, 129 * MiB + 5,                 /* direct path */
    };
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    struct buffer_pool *pool = new_pool(2);
    void *bufs[N];
    uint64_t bytes = 0;

    for (int i = 0; i < N; i++) {
        bufs[i] = must_alloc(pool, sizes[i]);
        /* The whole requested range is ours: first and last byte (ASan checks bounds). */
        ((volatile char *)bufs[i])[0] = 1;
        ((volatile char *)bufs[i])[sizes[i] - 1] = 2;
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(bufs[i], bufs[j]);
        bytes += class_bytes(sizes[i]);
        auraio_buffer_stats_t st = stats_of(pool);
        assert_int_equal(st.total_buffers, (uint64_t)i + 1);
        assert_int_equal(st.total_allocated_bytes, bytes);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(auraio__pool_free(pool, bufs[i], sizes[i]), 0);

    auraio_buffer_stats_t st = stats_of(pool);
    assert_int_equal(st.total_buffers, 0);
    assert_int_equal(st.total_allocated_bytes, 0);
    /* The direct-path buffers are not cached; every class buffer is (caps allow one of each). */
    assert_int_equal(st.cached_buffers, N - 2);
    assert_int_equal(st.cached_bytes, bytes - class_bytes(sizes[N - 1]) - class_bytes(sizes[N - 2]));

    /* A cached buffer is handed out again for any size of its class. */
    void *again = must_alloc(pool, 4000);
    assert_ptr_equal(again, bufs[3]); /* the most recent 4 KiB free (LIFO) */
    assert_int_equal(auraio__pool_free(pool, again, 4000), 0);
    auraio__pool_destroy(pool);
}

static void test_alignment_many(void **state)
{
    (void)state;
    struct buffer_pool *pool = new_pool(2);
    enum { N = 1000 };
    void **p = calloc(N, sizeof(*p));
    assert_non_null(p);
    for (int i = 0; i < N; i++) {
        size_t size = (size_t)(i % 5 + 1) * 3000;
        p[i] = must_alloc(pool, size);
        memset(p[i], i & 0xff, size);
    }
    for (int i = 0; i < N; i++) {
        size_t size = (size_t)(i % 5 + 1) * 3000;
        assert_int_equal(((unsigned char *)p[i])[size - 1], i & 0xff); /* no overlap */
        assert_int_equal(auraio__pool_free(pool, p[i], size), 0);
    }
    free(p);
    assert_int_equal(stats_of(pool).total_buffers, 0);
    auraio__pool_destroy(pool);
}

static void test_foreign_pointers(void **state)
{
    (void)state;
    struct buffer_pool *pool = new_pool(2);
    struct buffer_pool *other = new_pool(2);
    void *mine = must_alloc(pool, 8192);
    void *theirs = must_alloc(other, 8192);
    void *heap = NULL;
    assert_int_equal(posix_memalign(&heap, 4096, 8192), 0);
    char on_stack[16];
    auraio_buffer_stats_t before = stats_of(pool);

    void *foreign[] = {
        on_stack,
        heap,                                  /* page-aligned, but the system's */
        theirs,                                /* another pool's */
        (char *)mine + 1,                      /* inside a buffer */
        (char *)mine + 4096,                   /* inside, page-aligned */
        (void *)(uintptr_t)4096,               /* low */
        (void *)(uintptr_t)0x7ffffffff000ull,  /* top of the 47-bit user space */
        (void *)(uintptr_t)0x00fffffffffff000ull, /* top of the 57-bit map */
        (void *)(uintptr_t)0x0100000000000000ull, /* just beyond the map */
        (void *)(~(uintptr_t)0 & ~(uintptr_t)4095), /* kernel half */
    };
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++)
        assert_int_equal(auraio__pool_free(pool, foreign[i], 8192), -EINVAL);

    auraio_buffer_stats_t after = stats_of(pool);
    assert_memory_equal(&before, &after, sizeof(before));
    /* The real buffers are untouched and still free normally. */
    assert_int_equal(auraio__pool_free(other, theirs, 8192), 0);
    assert_int_equal(auraio__pool_free(pool, mine, 8192), 0);
    free(heap);
    auraio__pool_destroy(other);
    auraio__pool_destroy(pool);
}

static void test_double_free_and_wrong_size(void **state)
{
    (void)state;
    struct buffer_pool *pool = new_pool(2);

    /* Wrong size: another class, 0, the direct path. Refused, and the right size still works. */
    void *p = must_alloc(pool, 4096);
    assert_int_equal(auraio__pool_free(pool, p, 8192), -EINVAL);
    assert_int_equal(auraio__pool_free(pool, p, 0), -EINVAL);
    assert_int_equal(auraio__pool_free(pool, p, AURAIO_POOL_MAX_CLASS_SIZE + 1), -EINVAL);
    assert_int_equal(stats_of(pool).total_buffers, 1);
    assert_int_equal(auraio__pool_free(pool, p, 100), 0); /* same class as 4096 */

    /* Double free while the buffer sits in the thread cache. */
    assert_int_equal(auraio__pool_free(pool, p, 4096), -EINVAL);
    auraio_buffer_stats_t st = stats_of(pool);
    assert_int_equal(st.total_buffers, 0);
    assert_int_equal(st.cached_buffers, 1); /* cached once, not twice */
    void *q = must_alloc(pool, 4096);
    assert_ptr_equal(q, p);
    void *r = must_alloc(pool, 4096);
    assert_ptr_not_equal(r, p); /* a double-cached buffer would come back here */
    assert_int_equal(auraio__pool_free(pool, r, 4096), 0);
    assert_int_equal(auraio__pool_free(pool, q, 4096), 0);

    /* Double free after the buffer moved to a shard: fill the 4 KiB cache past its cap. */
    enum { N = 200 };
    void *many[N];
    for (int i = 0; i < N; i++)
        many[i] = must_alloc(pool, 4096);
    for (int i = 0; i < N; i++)
        assert_int_equal(auraio__pool_free(pool, many[i], 4096), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(auraio__pool_free(pool, many[i], 4096), -EINVAL);
    st = stats_of(pool);
    assert_int_equal(st.total_buffers, 0);
    assert_true(st.cached_buffers >= N); /* N plus the two from above */

    /* Double free on the direct path. */
    void *big = must_alloc(pool, AURAIO_POOL_MAX_CLASS_SIZE + 4096);
    assert_int_equal(auraio__pool_free(pool, big, AURAIO_POOL_MAX_CLASS_SIZE + 8192), -EINVAL);
    assert_int_equal(auraio__pool_free(pool, big, AURAIO_POOL_MAX_CLASS_SIZE + 1), 0); /* same pages */
    assert_int_equal(auraio__pool_free(pool, big, AURAIO_POOL_MAX_CLASS_SIZE + 4096), -EINVAL);
    assert_int_equal(stats_of(pool).total_buffers, 0);
    auraio__pool_destroy(pool);
}

/*
 * Tracking-map invariants (failure-modes: "keeps its invariants on delete, wrap-around and when
 * full"): a buffer given back to the system is untracked (its double free is refused), many live
 * buffers are all tracked (nothing fills up), and an address reused after release is tracked anew.
 */
static void test_tracking_invariants(void **state)
{
    (void)state;
    struct buffer_pool *pool = new_pool(1);
    enum { N = 3000 };
    void **p = calloc(N, sizeof(*p));
    assert_non_null(p);
    for (int i = 0; i < N; i++)
        p[i] = must_alloc(pool, 4096);
    assert_int_equal(stats_of(pool).total_buffers, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(auraio__pool_free(pool, p[i], 4096), 0);
    /* The caps sent most of them back to the system ("delete"); their frees stay refused. */
    auraio_buffer_stats_t st = stats_of(pool);
    assert_true(st.cached_buffers < N / 2);
    for (int i = 0; i < N; i++)
        assert_int_equal(auraio__pool_free(pool, p[i], 4096), -EINVAL);
    /* Reallocate: the system may hand the same addresses back; each must be tracked again. */
    for (int i = 0; i < N; i++)
        p[i] = must_alloc(pool, 4096);
    for (int i = 0; i < N; i++)
        assert_int_equal(auraio__pool_free(pool, p[i], 4096), 0);
    assert_int_equal(stats_of(pool).total_buffers, 0);
    free(p);
    auraio__pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------- */

struct xfer {
    struct buffer_pool *pool;
    void **bufs;
    size_t *sizes;
    int n;
    int failures;
};

static size_t mixed_size(int i)
{
    static const size_t s[] = {4096, 6000, 16 * KiB, 64 * KiB, 100 * KiB, 1 * MiB};
    return s[i % 6];
}

static void *alloc_many(void *arg)
{
    struct xfer *x = arg;
    for (int i = 0; i < x->n; i++) {
        x->sizes[i] = mixed_size(i);
        if (auraio__pool_alloc(x->pool, x->sizes[i], &x->bufs[i]) != 0)
            x->failures++;
        else
            memset(x->bufs[i], 0x5a, 64);
    }
    return NULL;
}

static void *free_many(void *arg)
{
    struct xfer *x = arg;
    for (int i = 0; i < x->n; i++) {
        if (((unsigned char *)x->bufs[i])[63] != 0x5a || auraio__pool_free(x->pool, x->bufs[i], x->sizes[i]) != 0)
            x->failures++;
    }
    return NULL;
}

static void test_cross_thread(void **state)
{
    (void)state;
    struct buffer_pool *pool = new_pool(2);
    enum { N = 500 };
    void *bufs[N];
    size_t sizes[N];
    struct xfer x = {pool, bufs, sizes, N, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, alloc_many, &x), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(x.failures, 0);
    assert_int_equal(stats_of(pool).total_buffers, N);
    /* Freed on a third thread: cross-thread frees land in that thread's cache and shards. */
    assert_int_equal(pthread_create(&t, NULL, free_many, &x), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(x.failures, 0);
    auraio_buffer_stats_t st = stats_of(pool);
    assert_int_equal(st.total_buffers, 0);
    assert_int_equal(st.total_allocated_bytes, 0);
    /* And they are reusable from here. */
    alloc_many(&x);
    assert_int_equal(x.failures, 0);
    free_many(&x);
    assert_int_equal(x.failures, 0);
    auraio__pool_destroy(pool);
}

/* A thread fills its cache in every class (past the caps, so flushes run too) and exits. */
static void *fill_cache_and_exit(void *arg)
{
    struct buffer_pool *pool = arg;
    enum { N = 300 }; /* more than any class's cache cap: flushes loop, no fixed-size array */
    void **p = calloc(N, sizeof(*p));
    if (!p)
        return (void *)1;
    for (int c = 0; c < 10; c++) {
        size_t size = AURAIO_POOL_MIN_CLASS_SIZE << c;
        int n = c < 4 ? N : 3;
        for (int i = 0; i < n; i++)
            if (auraio__pool_alloc(pool, size, &p[i]) != 0)
                return (void *)1;
        for (int i = 0; i < n; i++)
            if (auraio__pool_free(pool, p[i], size) != 0)
                return (void *)1;
    }
    free(p);
    return NULL; /* the key destructor flushes the cache back into the pool */
}

static void test_thread_exit_with_cached_buffers(void **state)
{
    (void)state;
    struct buffer_pool *pool = new_pool(2);
    for (int round = 0; round < 4; round++) {
        pthread_t t;
        void *ret = (void *)2;
        assert_int_equal(pthread_create(&t, NULL, fill_cache_and_exit, pool), 0);
        assert_int_equal(pthread_join(t, &ret), 0);
        assert_null(ret);
        auraio_buffer_stats_t st = stats_of(pool);
        assert_int_equal(st.total_buffers, 0);
        assert_int_equal(st.total_allocated_bytes, 0);
        /* The exited thread's cache is no longer counted: only the shards' caps remain. */
        assert_true(st.cached_buffers > 0);
        assert_true(st.cached_buffers <= 2 * (256 * 4 + 128 + 64 + 32 + 16 + 8 + 4));
    }
    /* The flushed buffers are served to this thread. */
    void *p = must_alloc(pool, 4096);
    assert_int_equal(auraio__pool_free(pool, p, 4096), 0);
    auraio__pool_destroy(pool);
}

/* ---------------------------------------------------------------------------------------------- */

struct holder {
    struct buffer_pool *pool;
    struct buffer_pool **next_pool; /* set by main between the barriers */
    pthread_barrier_t *b;
    int use_next;                   /* after the destroy: use the next pool, or just exit */
    int failures;
};

static void *hold_cache(void *arg)
{
    struct holder *h = arg;
    void *keep[3], *tmp[100];
    /* Outstanding buffers and a populated cache when the pool is destroyed. */
    for (int i = 0; i < 100; i++)
        h->failures += auraio__pool_alloc(h->pool, 4096, &tmp[i]) != 0;
    for (int i = 0; i < 100; i++)
        h->failures += auraio__pool_free(h->pool, tmp[i], 4096) != 0;
    for (int i = 0; i < 3; i++)
        h->failures += auraio__pool_alloc(h->pool, 64 * KiB, &keep[i]) != 0;
    pthread_barrier_wait(h->b); /* main destroys the pool (and may create another) */
    pthread_barrier_wait(h->b);
    if (h->use_next) {
        /* A cache of the dead pool is still on this thread's list: it must be skipped and freed,
         * never served. Writing the whole buffer makes ASan/valgrind see a freed one. */
        struct buffer_pool *np = *h->next_pool;
        for (int i = 0; i < 100; i++) {
            void *p = NULL;
            if (auraio__pool_alloc(np, 4096, &p) != 0) {
                h->failures++;
                continue;
            }
            memset(p, 0x11, 4096);
            h->failures += auraio__pool_free(np, p, 4096) != 0;
        }
        /* This thread is the new pool's only user: its frees must sit in a cache the new pool
         * knows (a dead cache taken for the new pool's would hide them: cached 0, total > 0). */
        auraio_buffer_stats_t st;
        auraio__pool_stats(np, &st);
        h->failures += st.cached_buffers < 1 || st.total_buffers != 0;
    }
    return NULL; /* exits with a dead cache (and maybe a live one) */
}

static void test_destroy_with_caches_in_other_threads(void **state)
{
    (void)state;
    enum { T = 4 };
    for (int variant = 0; variant < 2; variant++) {
        struct buffer_pool *pool = new_pool(2), *next = NULL;
        pthread_barrier_t b;
        pthread_barrier_init(&b, NULL, T + 1);
        struct holder h[T];
        pthread_t t[T];
        for (int i = 0; i < T; i++) {
            h[i] = (struct holder){pool, &next, &b, variant == 1 && i == 0, 0};
            assert_int_equal(pthread_create(&t[i], NULL, hold_cache, &h[i]), 0);
        }
        pthread_barrier_wait(&b);
        assert_int_equal(stats_of(pool).total_buffers, 3 * T);
        /* Outstanding buffers and four live foreign caches: destroy frees them all (valgrind: no
         * leak) and detaches the caches (ASan: no use after free when the threads exit). */
        const void *old_addr = pool;
        auraio__pool_destroy(pool);
        if (variant == 1)
            next = new_pool_at(old_addr, 2);
        if (variant == 1)
            print_message("destroy with foreign caches: new pool %s the old one's address\n",
                          (void *)next == old_addr ? "at" : "not at");
        pthread_barrier_wait(&b);
        for (int i = 0; i < T; i++) {
            assert_int_equal(pthread_join(t[i], NULL), 0);
            assert_int_equal(h[i].failures, 0);
        }
        pthread_barrier_destroy(&b);
        if (next) {
            auraio_buffer_stats_t st = stats_of(next);
            assert_int_equal(st.total_buffers, 0);
            assert_true(st.cached_buffers > 0); /* flushed by the exited user of the new pool */
            auraio__pool_destroy(next);
        }
    }
}

/* failure-modes: "Destroy then create on the same thread: no thread-local pointer (buffer cache)
 * survives into the new engine." */
static void test_destroy_then_create_same_thread(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        struct buffer_pool *a = new_pool(2);
        void *p[10];
        for (int i = 0; i < 10; i++)
            p[i] = must_alloc(a, 4096);
        for (int i = 0; i < 10; i++)
            assert_int_equal(auraio__pool_free(a, p[i], 4096), 0); /* this thread's cache: 10 */
        void *out = must_alloc(a, 8192); /* outstanding at destroy */
        (void)out;
        const void *a_addr = a;
        auraio__pool_destroy(a);

        struct buffer_pool *b = new_pool_at(a_addr, 2);
        if (round == 0)
            print_message("destroy+create: new pool %s the old one's address\n", (void *)b == a_addr ? "at" : "not at");
        auraio_buffer_stats_t st = stats_of(b);
        assert_int_equal(st.cached_buffers, 0);
        void *q = must_alloc(b, 4096);
        memset(q, 0x22, 4096); /* a buffer of the dead pool would be freed memory */
        st = stats_of(b);
        assert_int_equal(st.total_buffers, 1);
        assert_int_equal(st.cached_buffers, 0);
        assert_int_equal(auraio__pool_free(b, q, 4096), 0);
        /* A's buffers mean nothing to b. */
        assert_int_equal(auraio__pool_free(b, p[0], 4096), -EINVAL);
        auraio__pool_destroy(b);
    }
}

/* ---------------------------------------------------------------------------------------------- */

/* Sizes whose counts below stay within every cache cap, so nothing is released. */
static size_t stats_size(int i)
{
    static const size_t s[] = {4096, 6000, 16 * KiB, 64 * KiB, 100 * KiB};
    return s[i % 5];
}

static void test_stats_accuracy(void **state)
{
    (void)state;
    struct buffer_pool *pool = new_pool(4);
    enum { N = 60 };
    void *p[N];
    uint64_t bytes = 0;
    for (int i = 0; i < N; i++) {
        p[i] = must_alloc(pool, stats_size(i));
        bytes += class_bytes(stats_size(i));
    }
    auraio_buffer_stats_t st = stats_of(pool);
    assert_int_equal(st.total_buffers, N);
    assert_int_equal(st.total_allocated_bytes, bytes);
    assert_int_equal(st.cached_buffers, 0);
    assert_int_equal(st.cached_bytes, 0);
    assert_int_equal(st.shard_count, 4);

    uint64_t freed = 0;
    for (int i = 0; i < N; i += 2) {
        assert_int_equal(auraio__pool_free(pool, p[i], stats_size(i)), 0);
        freed += class_bytes(stats_size(i));
    }
    st = stats_of(pool);
    assert_int_equal(st.total_buffers, N / 2);
    assert_int_equal(st.total_allocated_bytes, bytes - freed);
    assert_int_equal(st.cached_buffers, N / 2);
    assert_int_equal(st.cached_bytes, freed);
    for (int i = 1; i < N; i += 2)
        assert_int_equal(auraio__pool_free(pool, p[i], stats_size(i)), 0);
    st = stats_of(pool);
    assert_int_equal(st.total_buffers, 0);
    assert_int_equal(st.total_allocated_bytes, 0);
    assert_int_equal(st.cached_bytes, bytes);
    auraio__pool_destroy(pool);
}

/* Caps: freeing many buffers keeps only a bounded number and gives the rest to the system. */
static void test_cap_returns_memory(void **state)
{
    (void)state;
    struct buffer_pool *pool = new_pool(2);
    enum { N = 4096 };
    void **p = calloc(N, sizeof(*p));
    assert_non_null(p);
    for (int i = 0; i < N; i++)
        p[i] = must_alloc(pool, 4096);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 before = mallinfo2();
#endif
    for (int i = 0; i < N; i++)
        assert_int_equal(auraio__pool_free(pool, p[i], 4096), 0);
    auraio_buffer_stats_t st = stats_of(pool);
    /* Thread cache (64) plus the home shard (256): everything else went back. */
    assert_int_equal(st.total_buffers, 0);
    assert_true(st.cached_buffers <= 64 + 256);
    assert_int_equal(st.cached_bytes, st.cached_buffers * 4096);
    /* And the system allocator saw it (where its accounting is real: not under ASan/valgrind,
     * which replace malloc and report zeros). */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 after = mallinfo2();
    if (before.uordblks >= (size_t)N * 4096)
        assert_true(before.uordblks - after.uordblks >= (size_t)(N - 64 - 256) * 4096);
#endif

    /* Large classes: one 16 MiB buffer per shard at most, one in the thread cache. */
    for (int i = 0; i < 8; i++)
        p[i] = must_alloc(pool, 16 * MiB);
    for (int i = 0; i < 8; i++)
        assert_int_equal(auraio__pool_free(pool, p[i], 16 * MiB), 0);
    st = stats_of(pool);
    assert_true(st.cached_bytes <= (64 + 256) * 4096 + 2 * 16 * MiB);
    free(p);
    auraio__pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_size_classes),
        cmocka_unit_test(test_alignment_many),
        cmocka_unit_test(test_foreign_pointers),
        cmocka_unit_test(test_double_free_and_wrong_size),
        cmocka_unit_test(test_tracking_invariants),
        cmocka_unit_test(test_cross_thread),
        cmocka_unit_test(test_thread_exit_with_cached_buffers),
        cmocka_unit_test(test_destroy_with_caches_in_other_threads),
        cmocka_unit_test(test_destroy_then_create_same_thread),
        cmocka_unit_test(test_stats_accuracy),
        cmocka_unit_test(test_cap_returns_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
