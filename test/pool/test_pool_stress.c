/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Buffer pool stress (suite 'stress'): threads allocate across classes, stamp each buffer with an
 * owner tag, hand some to other threads through a mailbox, verify the tag before every free (a
 * buffer handed out twice would carry the other owner's tag), try double and foreign frees,
 * read the stats, and keep spawning short-lived threads that exit with full caches. Bounded by
 * an operation count and a wall-clock deadline, so it ends in time under TSan and valgrind.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "buffer_pool.h"

#define THREADS 4
#define WINDOW 48
#define MAILBOX 64
#define OPS_PER_THREAD 200000
#define DEADLINE_NS (3ull * 1000 * 1000 * 1000)

struct held {
    void *p;
    size_t size;
    uint64_t tag;
};

static struct buffer_pool *pool;
static pthread_mutex_t mailbox_lock = PTHREAD_MUTEX_INITIALIZER;
static struct held mailbox[MAILBOX];
static uint64_t deadline;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static size_t pick_size(uint64_t r)
{
    /* Mostly small classes, sometimes up to 1 MiB, sizes not always a power of two. */
    int cls = (int)(r % 16 < 12 ? r % 4 : r % 9);
    size_t size = AURAIO_POOL_MIN_CLASS_SIZE << cls;
    return (r >> 8) % 2 ? size : size - (size_t)((r >> 16) % 4000);
}

static void stamp(struct held *h)
{
    memcpy(h->p, &h->tag, sizeof(h->tag));
    memcpy((char *)h->p + h->size - sizeof(h->tag), &h->tag, sizeof(h->tag));
}

/* @return 0 when both stamps are intact and the free succeeded (and a repeat was refused). */
static int check_and_free(struct held *h, int try_double)
{
    uint64_t a, b;
    memcpy(&a, h->p, sizeof(a));
    memcpy(&b, (char *)h->p + h->size - sizeof(b), sizeof(b));
    if (a != h->tag || b != h->tag)
        return 1;
    if (auraio__pool_free(pool, h->p, h->size) != 0)
        return 2;
    if (try_double && auraio__pool_free(pool, h->p, h->size) != -EINVAL)
        return 3;
    h->p = NULL;
    return 0;
}

static void *short_lived(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg | 1;
    struct held h[16];
    for (int i = 0; i < 16; i++) {
        h[i].size = pick_size(xorshift(&seed));
        h[i].tag = xorshift(&seed);
        if (auraio__pool_alloc(pool, h[i].size, &h[i].p) != 0)
            return (void *)1;
        stamp(&h[i]);
    }
    for (int i = 0; i < 16; i++)
        if (check_and_free(&h[i], 0) != 0)
            return (void *)1;
    return NULL; /* exits with a populated cache */
}

struct worker {
    pthread_t tid;
    int id;
    int failures;
    long ops;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(w->id + 1);
    struct held win[WINDOW] = {{0}};
    char not_ours[64];

    for (long op = 0; op < OPS_PER_THREAD; op++) {
        if ((op & 1023) == 0 && now_ns() > deadline)
            break;
        w->ops++;
        uint64_t r = xorshift(&seed);
        struct held *h = &win[r % WINDOW];
        switch ((r >> 32) % 16) {
        case 0: { /* hand a buffer to whoever takes it */
            if (!h->p)
                break;
            pthread_mutex_lock(&mailbox_lock);
            struct held *m = &mailbox[(r >> 40) % MAILBOX];
            struct held tmp = *m;
            *m = *h;
            pthread_mutex_unlock(&mailbox_lock);
            *h = tmp; /* maybe another thread's buffer: freed here later */
            break;
        }
        case 1: /* occasional extra checks */
            if ((r >> 40) % 64 == 0) {
                auraio_buffer_stats_t st;
                auraio__pool_stats(pool, &st);
                if (st.shard_count != 2)
                    w->failures++;
            } else if ((r >> 40) % 64 == 1) {
                if (auraio__pool_free(pool, not_ours, 4096) != -EINVAL)
                    w->failures++;
            } else if ((r >> 40) % 256 == 2) {
                pthread_t t;
                void *ret = NULL;
                if (pthread_create(&t, NULL, short_lived, (void *)(uintptr_t)r) != 0 || pthread_join(t, &ret) != 0 ||
                    ret != NULL)
                    w->failures++;
            }
            break;
        default:
            if (h->p) {
                if (check_and_free(h, (r >> 40) % 8 == 0) != 0)
                    w->failures++;
            } else {
                h->size = pick_size(r >> 20);
                h->tag = r ^ ((uint64_t)w->id << 56);
                if (auraio__pool_alloc(pool, h->size, &h->p) != 0) {
                    w->failures++;
                    h->p = NULL;
                } else {
                    stamp(h);
                }
            }
            break;
        }
    }
    for (int i = 0; i < WINDOW; i++)
        if (win[i].p && check_and_free(&win[i], 0) != 0)
            w->failures++;
    return NULL;
}

static void test_stress(void **state)
{
    (void)state;
    assert_int_equal(auraio__pool_create(&pool, 2), 0);
    deadline = now_ns() + DEADLINE_NS;
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.id = i};
        assert_int_equal(pthread_create(&w[i].tid, NULL, work, &w[i]), 0);
    }
    long ops = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(w[i].tid, NULL), 0);
        assert_int_equal(w[i].failures, 0);
        ops += w[i].ops;
    }
    for (int i = 0; i < MAILBOX; i++)
        if (mailbox[i].p)
            assert_int_equal(check_and_free(&mailbox[i], 1), 0);

    auraio_buffer_stats_t st;
    auraio__pool_stats(pool, &st);
    printf("stress: %ld ops over %d threads; cached at end: %llu buffers, %llu bytes\n", ops, THREADS,
           (unsigned long long)st.cached_buffers, (unsigned long long)st.cached_bytes);
    assert_true(ops > 0);
    assert_int_equal(st.total_buffers, 0);
    assert_int_equal(st.total_allocated_bytes, 0);
    auraio__pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
