/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Many threads submitting while others poll: data checked, every callback exactly once, and the
 * count each wait reports equals the callbacks it ran (two pollers never both claim one CQE).
 * Callbacks resubmit to any ring while submitters hold ring locks: if a ring lock were held
 * across callbacks, or two ring locks ever nested, this would deadlock and time out.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "configs.h"
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define SUBMITTERS 4
#define PER_THREAD 1500
#define FILE_BLOCKS 256
#define BLOCK 512

struct shared {
    auraio_engine_t *e;
    int fd;
    _Atomic int callbacks;
    _Atomic int bad;
    _Atomic int resubmits;
    _Atomic int submitters_done;
    _Atomic long wait_reported;
};

struct op {
    struct shared *s;
    int block;
    bool resubmit;
    unsigned char buf[BLOCK];
};

static void op_cb(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct op *o = ud;
    if (res != BLOCK || harness_check_pattern(o->buf, BLOCK, (uint64_t)o->block * BLOCK, 4) != -1)
        atomic_fetch_add(&o->s->bad, 1);
    if (o->resubmit) {
        /* Resubmit once from the callback, to whichever ring selection picks. */
        o->resubmit = false;
        o->block = (o->block * 7 + 3) % FILE_BLOCKS;
        if (auraio_read(o->s->e, o->s->fd, auraio_buf(o->buf), BLOCK, (int64_t)o->block * BLOCK, op_cb, o)) {
            atomic_fetch_add(&o->s->resubmits, 1);
            return;
        }
        /* EAGAIN: other threads took every slot; a callback cannot wait, so it gives up. */
        if (errno != EAGAIN)
            atomic_fetch_add(&o->s->bad, 1);
    }
    atomic_fetch_add(&o->s->callbacks, 1);
}

struct submitter_arg {
    struct shared *s;
    int id;
    struct op *ops;
};

static void *submitter(void *arg)
{
    struct submitter_arg *a = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        struct op *o = &a->ops[i];
        o->s = a->s;
        o->block = (i * 13 + a->id * 31) % FILE_BLOCKS;
        o->resubmit = (i % 5) == 0;
        while (!auraio_read(a->s->e, a->s->fd, auraio_buf(o->buf), BLOCK, (int64_t)o->block * BLOCK, op_cb, o)) {
            if (errno != EAGAIN) {
                atomic_fetch_add(&a->s->bad, 1);
                break;
            }
            /* Out of slots: the pollers will free some; yield instead of spinning hot. */
            sched_yield();
        }
    }
    atomic_fetch_add(&a->s->submitters_done, 1);
    return NULL;
}

static void *poller(void *arg)
{
    struct shared *s = arg;
    int expected = SUBMITTERS * PER_THREAD;
    while (atomic_load(&s->callbacks) < expected) {
        int rc = auraio_wait(s->e, 100);
        if (rc > 0)
            atomic_fetch_add(&s->wait_reported, rc);
        else if (rc < 0 && rc != -ETIME)
            atomic_fetch_add(&s->bad, 1);
    }
    return NULL;
}

static void run_stress(const struct test_config *c)
{
    struct shared s = {.e = config_engine(c)};
    assert_non_null(s.e);
    s.fd = harness_pattern_file(FILE_BLOCKS * BLOCK, 4);
    assert_true(s.fd >= 0);
    pthread_t sub[SUBMITTERS], pol[2];
    struct submitter_arg args[SUBMITTERS];
    for (int i = 0; i < SUBMITTERS; i++) {
        args[i] = (struct submitter_arg){&s, i, calloc(PER_THREAD, sizeof(struct op))};
        assert_int_equal(pthread_create(&sub[i], NULL, submitter, &args[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&pol[i], NULL, poller, &s), 0);
    for (int i = 0; i < SUBMITTERS; i++)
        pthread_join(sub[i], NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(pol[i], NULL);
    assert_int_equal(atomic_load(&s.bad), 0);
    assert_int_equal(atomic_load(&s.callbacks), SUBMITTERS * PER_THREAD);
    /* Each callback (including resubmitted ones) was reported by exactly one wait. */
    assert_int_equal(atomic_load(&s.wait_reported), SUBMITTERS * PER_THREAD + atomic_load(&s.resubmits));
    assert_int_equal(auraio_pending_count(s.e), 0);
    auraio_stats_t st;
    assert_int_equal(auraio_get_stats(s.e, &st), 0);
    assert_int_equal(st.ops_completed, (uint64_t)(SUBMITTERS * PER_THREAD + atomic_load(&s.resubmits)));
    auraio_destroy(s.e);
    for (int i = 0; i < SUBMITTERS; i++)
        free(args[i].ops);
    close(s.fd);
}

static void test_threads_submit_while_polling(void **state)
{
    (void)state;
    for (size_t i = 0; i < TEST_CONFIG_COUNT; i++) {
        /* single-issuer engines are one-thread by contract */
        if (test_configs[i].single_issuer)
            continue;
        print_message("config %s\n", test_configs[i].name);
        run_stress(&test_configs[i]);
    }
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_submit_while_polling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
