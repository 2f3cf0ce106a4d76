/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Linked chains: write -> fsync -> read-back under every engine configuration; a failed first
 * member cancels the rest (hard links do not), each callback exactly once; a chain never
 * straddles the in-flight limit and waits in the backlog whole and in order; links survive batch
 * boundaries (pipe-headed chains submitted from callbacks: a lost link would let the dependent
 * write complete before its pipe read); cancel of a held or backlogged member, E2BIG, EBUSY, and
 * destroy with a chain left open.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "configs.h"
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define BLOCK 4096
#define WAIT_MS 5000

/* A completion log: the order callbacks ran in, and each id's result and count. */
#define LOG_MAX 1024
struct log {
    _Atomic int seq;
    _Atomic int order[LOG_MAX]; /* position -> id */
    _Atomic int pos[LOG_MAX];   /* id -> position */
    _Atomic int calls[LOG_MAX];
    _Atomic long result[LOG_MAX];
};
struct entry {
    struct log *log;
    int id;
};

static void log_cb(auraio_request_t *req, ssize_t result, void *ud)
{
    (void)req;
    struct entry *en = ud;
    struct log *l = en->log;
    int p = atomic_fetch_add(&l->seq, 1);
    atomic_store(&l->order[p], en->id);
    atomic_store(&l->pos[en->id], p);
    atomic_store(&l->result[en->id], (long)result);
    atomic_fetch_add(&l->calls[en->id], 1);
}

static void log_init(struct log *l, struct entry *en, int n)
{
    memset(l, 0, sizeof(*l));
    for (int i = 0; i < n; i++)
        en[i] = (struct entry){l, i};
}

static void assert_each_once(struct log *l, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(atomic_load(&l->calls[i]), 1);
    assert_int_equal(atomic_load(&l->seq), n);
}

/* write -> fsync -> read of the same block, repeated, and the data read back compared. */
static void write_fsync_read(const struct test_config *c)
{
    auraio_engine_t *e = config_engine(c);
    assert_non_null(e);
    int fd = harness_temp_file(0);
    assert_true(fd >= 0);
    enum { CHAINS = 6 };
    static unsigned char out[CHAINS][BLOCK], in[CHAINS][BLOCK];
    static struct log l;
    struct entry en[CHAINS * 3];
    log_init(&l, en, CHAINS * 3);
    for (int i = 0; i < CHAINS; i++) {
        harness_fill_pattern(out[i], BLOCK, (uint64_t)i * BLOCK, 21);
        memset(in[i], 0, BLOCK);
        int64_t off = (int64_t)i * BLOCK;
        assert_non_null(auraio_write_ex(e, fd, auraio_buf(out[i]), BLOCK, off, AURAIO_LINK, log_cb, &en[3 * i]));
        assert_non_null(auraio_fsync(e, fd, AURAIO_FSYNC_DATASYNC | AURAIO_LINK, log_cb, &en[3 * i + 1]));
        assert_non_null(auraio_read(e, fd, auraio_buf(in[i]), BLOCK, off, log_cb, &en[3 * i + 2]));
        /* The tiny config has 8 slots per ring: let each chain finish before the next. */
        assert_int_equal(harness_wait_for(e, &l.seq, 3 * (i + 1), WAIT_MS), 0);
    }
    for (int i = 0; i < CHAINS; i++) {
        assert_int_equal(atomic_load(&l.result[3 * i]), BLOCK);
        assert_int_equal(atomic_load(&l.result[3 * i + 1]), 0);
        assert_int_equal(atomic_load(&l.result[3 * i + 2]), BLOCK);
        assert_true(atomic_load(&l.pos[3 * i]) < atomic_load(&l.pos[3 * i + 1]));
        assert_true(atomic_load(&l.pos[3 * i + 1]) < atomic_load(&l.pos[3 * i + 2]));
        assert_memory_equal(in[i], out[i], BLOCK);
    }
    assert_int_equal(auraio_pending_count(e), 0);
    auraio_destroy(e);
    assert_each_once(&l, CHAINS * 3);
    close(fd);
}

static void test_write_fsync_read_every_config(void **state)
{
    (void)state;
    for (size_t i = 0; i < TEST_CONFIG_COUNT; i++) {
        print_message("config %s\n", test_configs[i].name);
        write_fsync_read(&test_configs[i]);
    }
}

/* A first member that fails (fsync of a pipe: -EINVAL; a read of an fd that is not open: -EBADF)
 * cancels the rest; with a hard link the rest runs. (A positioned write on a pipe does not fail
 * under io_uring: the offset of a stream is ignored.) */
static void test_failed_link_cancels_rest(void **state)
{
    (void)state;
    auraio_engine_t *e = auraio_create();
    assert_non_null(e);
    int fd = harness_pattern_file(4 * BLOCK, 4);
    int p[2];
    assert_int_equal(pipe(p), 0);
    static unsigned char buf[4][BLOCK];
    static struct log l;
    struct entry en[12];
    log_init(&l, en, 12);

    assert_non_null(auraio_fsync(e, p[1], AURAIO_LINK, log_cb, &en[0]));
    assert_non_null(auraio_write_ex(e, fd, auraio_buf(buf[0]), 16, 0, AURAIO_LINK, log_cb, &en[1]));
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[1]), BLOCK, 0, log_cb, &en[2]));

    assert_non_null(auraio_read_ex(e, 1000000, auraio_buf(buf[2]), BLOCK, 0, AURAIO_LINK, log_cb, &en[3]));
    assert_non_null(auraio_read_ex(e, fd, auraio_buf(buf[3]), BLOCK, 0, AURAIO_LINK, log_cb, &en[4]));
    assert_non_null(auraio_fsync(e, fd, 0, log_cb, &en[5]));

    /* Hard link: the failure does not break the chain. */
    assert_non_null(auraio_read_ex(e, 1000000, auraio_buf(buf[2]), BLOCK, 0, AURAIO_HARDLINK, log_cb, &en[6]));
    assert_non_null(auraio_read_ex(e, fd, auraio_buf(buf[3]), BLOCK, BLOCK, 0, log_cb, &en[7]));

    /* A metadata op in the middle of a chain, failing: the read after it is cancelled. */
    static struct statx sx;
    assert_non_null(auraio_read_ex(e, fd, auraio_buf(buf[1]), BLOCK, 0, AURAIO_LINK, log_cb, &en[8]));
    assert_non_null(auraio_statx(e, AT_FDCWD, "/nonexistent/auraio", 0, STATX_SIZE, &sx, AURAIO_LINK, log_cb,
                                 &en[9]));
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[2]), BLOCK, 0, log_cb, &en[10]));

    assert_int_equal(harness_wait_for(e, &l.seq, 11, WAIT_MS), 0);
    assert_int_equal(atomic_load(&l.result[0]), -EINVAL);
    assert_int_equal(atomic_load(&l.result[1]), -ECANCELED);
    assert_int_equal(atomic_load(&l.result[2]), -ECANCELED);
    assert_int_equal(atomic_load(&l.result[3]), -EBADF);
    assert_int_equal(atomic_load(&l.result[4]), -ECANCELED);
    assert_int_equal(atomic_load(&l.result[5]), -ECANCELED);
    assert_int_equal(atomic_load(&l.result[6]), -EBADF);
    assert_int_equal(atomic_load(&l.result[7]), BLOCK);
    assert_int_equal(harness_check_pattern(buf[3], BLOCK, BLOCK, 4), -1);
    assert_int_equal(atomic_load(&l.result[8]), BLOCK);
    assert_int_equal(atomic_load(&l.result[9]), -ENOENT);
    assert_int_equal(atomic_load(&l.result[10]), -ECANCELED);
    assert_int_equal(auraio_wait(e, 0), 0); /* nothing else comes */
    auraio_destroy(e);
    assert_each_once(&l, 11);
    close(fd);
    close(p[0]);
    close(p[1]);
}

static auraio_engine_t *limited_engine(int limit, int depth)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    o.queue_depth = depth;
    o.disable_adaptive = true;
    o.initial_in_flight = limit;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    return e;
}

/* Limit 4 with 3 pipe reads blocking: a chain of 2 would straddle the limit, so it waits whole in
 * the backlog, behind a lone read queued before it; freeing one slot (room for 2) lets exactly
 * the lone read in (then it has room for 1 only), freeing another lets the chain in. Chains also
 * keep their order among themselves in the backlog, and a chain longer than the limit goes when
 * the ring is empty. */
static void test_chain_never_straddles_limit(void **state)
{
    (void)state;
    auraio_engine_t *e = limited_engine(4, 32);
    int fd = harness_pattern_file(8 * BLOCK, 6);
    int p[3][2];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pipe(p[i]), 0);
    static unsigned char buf[16][BLOCK];
    static struct log l;
    struct entry en[16];
    log_init(&l, en, 16);
    for (int i = 0; i < 3; i++)
        assert_non_null(auraio_read(e, p[i][0], auraio_buf(buf[i]), 1, 0, log_cb, &en[i]));
    /* In flight: 3 of 4. A lone read fits: it goes in and completes. */
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[3]), BLOCK, 0, log_cb, &en[3]));
    assert_int_equal(harness_wait_for(e, &l.seq, 1, WAIT_MS), 0);
    assert_int_equal(atomic_load(&l.order[0]), 3);
    /* A chain of 2 on 3 in flight: backlog. Behind it a lone read and a chain of 5 (longer than
     * the limit). */
    assert_non_null(auraio_read_ex(e, fd, auraio_buf(buf[4]), BLOCK, 0, AURAIO_LINK, log_cb, &en[4]));
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[5]), BLOCK, BLOCK, log_cb, &en[5]));
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[6]), BLOCK, 0, log_cb, &en[6]));
    for (int i = 7; i < 11; i++)
        assert_non_null(auraio_read_ex(e, fd, auraio_buf(buf[i]), BLOCK, 0, AURAIO_LINK, log_cb, &en[i]));
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[11]), BLOCK, 0, log_cb, &en[11]));
    assert_int_equal(auraio_pending_count(e), 3 + 2 + 1 + 5);
    /* Nothing moves while the pipes block (a bounded look: the ring has nothing to deliver). */
    assert_int_equal(auraio_wait(e, 50), -ETIME);
    assert_int_equal(atomic_load(&l.seq), 1);

    /* One pipe read done: 2 in flight, room for the chain of 2. */
    assert_int_equal(write(p[0][1], "a", 1), 1);
    assert_int_equal(harness_wait_for(e, &l.seq, 4, WAIT_MS), 0);
    assert_int_equal(atomic_load(&l.order[1]), 0);
    /* The chain, in order, and nothing behind it yet: the lone read would fit (2 + 1 <= 4) only
     * after the chain, and it did not overtake it. */
    assert_true(atomic_load(&l.pos[4]) < atomic_load(&l.pos[5]));
    assert_int_equal(harness_wait_for(e, &l.seq, 5, WAIT_MS), 0);
    assert_true(atomic_load(&l.pos[6]) > atomic_load(&l.pos[5]));
    /* The chain of 5 needs an empty ring: two pipe reads still block it. */
    assert_int_equal(auraio_wait(e, 50), -ETIME);
    assert_int_equal(atomic_load(&l.seq), 5);
    assert_int_equal(write(p[1][1], "b", 1), 1);
    assert_int_equal(write(p[2][1], "c", 1), 1);
    assert_int_equal(harness_wait_for(e, &l.seq, 12, WAIT_MS), 0);
    for (int i = 7; i < 11; i++) {
        assert_true(atomic_load(&l.pos[i]) < atomic_load(&l.pos[i + 1]));
        assert_int_equal(atomic_load(&l.result[i + 1]), BLOCK);
    }
    for (int i = 3; i < 12; i++)
        assert_int_equal(atomic_load(&l.result[i]), BLOCK);
    auraio_destroy(e);
    assert_each_once(&l, 12);
    close(fd);
    for (int i = 0; i < 3; i++) {
        close(p[i][0]);
        close(p[i][1]);
    }
}

/* Chains headed by a pipe read, submitted from a callback (SQEs batched to the threshold and
 * flushed when the batch of callbacks ends) and across the submit threshold of a single-issuer
 * ring: each dependent write must complete after its read, which only the link ensures. */
struct batch_ctx {
    auraio_engine_t *e;
    int pipe_rd;
    int fd;
    int chains;
    struct log *l;
    struct entry *en;
    unsigned char (*buf)[16];
    int submitted;
};

static void submit_pipe_chains(struct batch_ctx *b)
{
    for (int i = 0; i < b->chains; i++) {
        assert_non_null(auraio_read_ex(b->e, b->pipe_rd, auraio_buf(b->buf[i]), 1, 0, AURAIO_LINK, log_cb,
                                       &b->en[1 + 2 * i]));
        assert_non_null(
            auraio_write(b->e, b->fd, auraio_buf(b->buf[i]), 1, (int64_t)i, log_cb, &b->en[2 + 2 * i]));
        b->submitted += 2;
    }
}

static void trigger_cb(auraio_request_t *req, ssize_t result, void *ud)
{
    struct batch_ctx *b = ud;
    log_cb(req, result, &b->en[0]);
    submit_pipe_chains(b);
}

static void chains_across_batches(const auraio_options_t *o, bool from_callback)
{
    enum { CHAINS = 24 };
    auraio_engine_t *e = auraio_create_with_options(o);
    assert_non_null(e);
    int fd = harness_temp_file(0);
    int data = harness_pattern_file(BLOCK, 8);
    int p[2];
    assert_int_equal(pipe(p), 0);
    static unsigned char buf[CHAINS][16], tbuf[16];
    static struct log l;
    static struct entry en[1 + 2 * CHAINS];
    log_init(&l, en, 1 + 2 * CHAINS);
    struct batch_ctx b = {e, p[0], fd, CHAINS, &l, en, buf, 0};
    if (from_callback) {
        assert_non_null(auraio_read(e, data, auraio_buf(tbuf), 16, 0, trigger_cb, &b));
        assert_int_equal(harness_wait_for(e, &l.seq, 1, WAIT_MS), 0);
    } else {
        log_cb(NULL, 0, &en[0]);
        submit_pipe_chains(&b);
    }
    assert_int_equal(b.submitted, 2 * CHAINS);
    /* No write may have run: every one waits for its pipe read. */
    assert_int_equal(auraio_wait(e, 20), -ETIME);
    assert_int_equal(atomic_load(&l.seq), 1);
    char bytes[CHAINS];
    memset(bytes, 'z', sizeof(bytes));
    assert_int_equal(write(p[1], bytes, CHAINS), CHAINS);
    assert_int_equal(harness_wait_for(e, &l.seq, 1 + 2 * CHAINS, WAIT_MS), 0);
    for (int i = 0; i < CHAINS; i++) {
        assert_int_equal(atomic_load(&l.result[1 + 2 * i]), 1);
        assert_int_equal(atomic_load(&l.result[2 + 2 * i]), 1);
        assert_true(atomic_load(&l.pos[1 + 2 * i]) < atomic_load(&l.pos[2 + 2 * i]));
    }
    auraio_destroy(e);
    assert_each_once(&l, 1 + 2 * CHAINS);
    close(fd);
    close(data);
    close(p[0]);
    close(p[1]);
}

static void test_chains_across_batch_boundaries(void **state)
{
    (void)state;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    chains_across_batches(&o, true);
    auraio_options_init(&o);
    o.ring_count = 2;
    o.ring_select = AURAIO_SELECT_ROUND_ROBIN; /* a chain stays on its first member's ring */
    chains_across_batches(&o, true);
    auraio_options_init(&o);
    o.ring_count = 1;
    o.single_issuer = true;
    chains_across_batches(&o, false);
    chains_across_batches(&o, true);
}

/* Cancelling a member of a chain still held, or waiting in the backlog, cancels all of it. */
static void test_cancel_held_or_backlogged_chain(void **state)
{
    (void)state;
    auraio_engine_t *e = limited_engine(1, 16);
    int fd = harness_pattern_file(BLOCK, 2);
    int p[2];
    assert_int_equal(pipe(p), 0);
    static unsigned char buf[8][BLOCK];
    static struct log l;
    struct entry en[8];
    log_init(&l, en, 8);
    /* Held: the chain is open while the cancel comes. */
    auraio_request_t *a = auraio_read_ex(e, fd, auraio_buf(buf[0]), BLOCK, 0, AURAIO_LINK, log_cb, &en[0]);
    assert_non_null(a);
    assert_int_equal(auraio_pending_count(e), 0); /* held members are not pending yet */
    assert_int_equal(auraio_request_pending(e, a), 1);
    assert_int_equal(auraio_wait(e, -1), 0);      /* so wait does not hang on them */
    assert_int_equal(auraio_cancel(e, a), 0);
    assert_int_equal(auraio_cancel(e, a), -EINPROGRESS);
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[1]), BLOCK, 0, log_cb, &en[1]));
    assert_int_equal(harness_wait_for(e, &l.seq, 2, WAIT_MS), 0);
    assert_int_equal(atomic_load(&l.result[0]), -ECANCELED);
    assert_int_equal(atomic_load(&l.result[1]), -ECANCELED);

    /* Backlogged: a pipe read holds the only in-flight place. */
    assert_non_null(auraio_read(e, p[0], auraio_buf(buf[2]), 1, 0, log_cb, &en[2]));
    assert_non_null(auraio_read_ex(e, fd, auraio_buf(buf[3]), BLOCK, 0, AURAIO_LINK, log_cb, &en[3]));
    auraio_request_t *mid = auraio_read_ex(e, fd, auraio_buf(buf[4]), BLOCK, 0, AURAIO_LINK, log_cb, &en[4]);
    assert_non_null(mid);
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[5]), BLOCK, 0, log_cb, &en[5]));
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[6]), BLOCK, 0, log_cb, &en[6])); /* not in the chain */
    assert_int_equal(auraio_cancel(e, mid), 0);
    assert_int_equal(harness_wait_for(e, &l.seq, 5, WAIT_MS), 0);
    for (int i = 3; i <= 5; i++)
        assert_int_equal(atomic_load(&l.result[i]), -ECANCELED);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(harness_wait_for(e, &l.seq, 7, WAIT_MS), 0);
    assert_int_equal(atomic_load(&l.result[2]), 1);
    assert_int_equal(atomic_load(&l.result[6]), BLOCK);
    auraio_destroy(e);
    assert_each_once(&l, 7);
    close(fd);
    close(p[0]);
    close(p[1]);
}

/* A chain that would take every slot but one fails with E2BIG and cancels what it held; a
 * linked submission to a second engine while a chain is open on the first fails with EBUSY. */
static void test_chain_limits(void **state)
{
    (void)state;
    auraio_engine_t *e = limited_engine(4, 4);
    int fd = harness_pattern_file(BLOCK, 2);
    static unsigned char buf[8][BLOCK];
    static struct log l;
    struct entry en[8];
    log_init(&l, en, 8);
    for (int i = 0; i < 3; i++)
        assert_non_null(auraio_read_ex(e, fd, auraio_buf(buf[i]), BLOCK, 0, AURAIO_LINK, log_cb, &en[i]));
    EXPECT_NULL_ERRNO(auraio_read(e, fd, auraio_buf(buf[3]), BLOCK, 0, harness_must_not_run, NULL), E2BIG);
    assert_int_equal(harness_wait_for(e, &l.seq, 3, WAIT_MS), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&l.result[i]), -ECANCELED);
    assert_int_equal(auraio_pending_count(e), 0);
    /* The chain is gone: the next read is a lone one again. */
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[3]), BLOCK, 0, log_cb, &en[3]));
    assert_int_equal(harness_wait_for(e, &l.seq, 4, WAIT_MS), 0);
    assert_int_equal(atomic_load(&l.result[3]), BLOCK);

    auraio_engine_t *e2 = auraio_create();
    assert_non_null(e2);
    assert_non_null(auraio_read_ex(e, fd, auraio_buf(buf[4]), BLOCK, 0, AURAIO_LINK, log_cb, &en[4]));
    EXPECT_NULL_ERRNO(auraio_read_ex(e2, fd, auraio_buf(buf[5]), BLOCK, 0, AURAIO_LINK, harness_must_not_run, NULL),
                      EBUSY);
    /* A lone request on the other engine is independent of the open chain. */
    assert_non_null(auraio_read(e2, fd, auraio_buf(buf[5]), BLOCK, 0, log_cb, &en[5]));
    assert_int_equal(harness_wait_for(e2, &l.seq, 5, WAIT_MS), 0);
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[6]), BLOCK, 0, log_cb, &en[6]));
    assert_int_equal(harness_wait_for(e, &l.seq, 7, WAIT_MS), 0);
    assert_int_equal(atomic_load(&l.result[4]), BLOCK);
    assert_int_equal(atomic_load(&l.result[6]), BLOCK);
    assert_true(atomic_load(&l.pos[4]) < atomic_load(&l.pos[6]));
    auraio_destroy(e2);
    auraio_destroy(e);
    assert_each_once(&l, 7);
    assert_int_equal(atomic_load(&harness_unexpected_callbacks), 0);
    close(fd);
}

/* A chain left open at destroy: each member's callback runs once, with -ECANCELED. */
static void test_destroy_with_open_chain(void **state)
{
    (void)state;
    auraio_engine_t *e = auraio_create();
    int fd = harness_pattern_file(BLOCK, 2);
    static unsigned char buf[3][BLOCK];
    static struct log l;
    struct entry en[3];
    log_init(&l, en, 3);
    for (int i = 0; i < 3; i++)
        assert_non_null(auraio_read_ex(e, fd, auraio_buf(buf[i]), BLOCK, 0, AURAIO_LINK, log_cb, &en[i]));
    auraio_destroy(e);
    assert_each_once(&l, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&l.result[i]), -ECANCELED);
    /* The thread's chain died with the engine: a new engine starts clean. */
    e = auraio_create();
    log_init(&l, en, 1);
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[0]), BLOCK, 0, log_cb, &en[0]));
    assert_int_equal(harness_wait_for(e, &l.seq, 1, WAIT_MS), 0);
    assert_int_equal(atomic_load(&l.result[0]), BLOCK);
    auraio_destroy(e);
    close(fd);
}

/* Another thread's submission never joins a chain: while thread A holds an open chain headed by
 * a pipe read, thread B's lone read on the same ring completes at once; A's chain then runs in
 * order. Meanwhile four threads build chains concurrently on the same ring (also under TSan). */
struct joiner {
    auraio_engine_t *e;
    int fd;
    struct log *l;
    struct entry *en;
    int base;
};

static void *lone_reader(void *arg)
{
    struct joiner *j = arg;
    static unsigned char buf[BLOCK];
    assert_non_null(auraio_read(j->e, j->fd, auraio_buf(buf), BLOCK, 0, log_cb, &j->en[j->base]));
    return NULL;
}

static void *chain_builder(void *arg)
{
    struct joiner *j = arg;
    static _Thread_local unsigned char buf[2][BLOCK];
    for (int i = 0; i < 50; i++) {
        int id = j->base + 2 * i;
        while (!auraio_read_ex(j->e, j->fd, auraio_buf(buf[0]), BLOCK, 0, AURAIO_LINK, log_cb, &j->en[id])) {
            assert_int_equal(errno, EAGAIN);
            auraio_wait(j->e, 10);
        }
        while (!auraio_read(j->e, j->fd, auraio_buf(buf[1]), BLOCK, BLOCK, log_cb, &j->en[id + 1])) {
            assert_int_equal(errno, EAGAIN); /* the chain stays open across the retry */
            auraio_wait(j->e, 10);
        }
    }
    return NULL;
}

static void test_other_threads_never_join_a_chain(void **state)
{
    (void)state;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    int fd = harness_pattern_file(2 * BLOCK, 3);
    int p[2];
    assert_int_equal(pipe(p), 0);
    static struct log l;
    static struct entry en[3 + 4 * 100];
    log_init(&l, en, 3 + 4 * 100);
    static unsigned char pbuf[16], wbuf[16] = "w";
    assert_non_null(auraio_read_ex(e, p[0], auraio_buf(pbuf), 1, 0, AURAIO_LINK, log_cb, &en[0]));
    struct joiner b = {e, fd, &l, en, 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, lone_reader, &b), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(harness_wait_for(e, &l.seq, 1, WAIT_MS), 0);
    assert_int_equal(atomic_load(&l.order[0]), 1); /* B's read, not held by A's chain */
    assert_int_equal(atomic_load(&l.result[1]), BLOCK);
    int out = harness_temp_file(0);
    assert_non_null(auraio_write(e, out, auraio_buf(wbuf), 1, 0, log_cb, &en[2])); /* ends A's chain */
    assert_int_equal(auraio_wait(e, 20), -ETIME);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(harness_wait_for(e, &l.seq, 3, WAIT_MS), 0);
    assert_true(atomic_load(&l.pos[0]) < atomic_load(&l.pos[2]));

    struct joiner j[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        j[i] = (struct joiner){e, fd, &l, en, 3 + 100 * i};
        assert_int_equal(pthread_create(&th[i], NULL, chain_builder, &j[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(harness_wait_for(e, &l.seq, 3 + 400, WAIT_MS), 0);
    for (int id = 3; id < 403; id += 2) {
        assert_int_equal(atomic_load(&l.result[id]), BLOCK);
        assert_int_equal(atomic_load(&l.result[id + 1]), BLOCK);
        assert_true(atomic_load(&l.pos[id]) < atomic_load(&l.pos[id + 1]));
    }
    auraio_destroy(e);
    assert_each_once(&l, 403);
    close(fd);
    close(out);
    close(p[0]);
    close(p[1]);
}

/* Members behind an op the library continues after (fsync) wait in the library while the chain's
 * head blocks: cancelling one, or cancel_fd on its file, fails the rest of the chain when the fsync
 * completes, and destroy fails them too; left alone they run after the fsync. */
static void test_parked_members(void **state)
{
    (void)state;
    auraio_engine_t *e = limited_engine(16, 16); /* room for all three chains at once */
    int fd = harness_pattern_file(BLOCK, 5);
    int other = harness_pattern_file(BLOCK, 6);
    int p[2];
    assert_int_equal(pipe(p), 0);
    static unsigned char pbuf[4][16], buf[8][BLOCK];
    static struct log l;
    struct entry en[16];
    log_init(&l, en, 16);
    /* Chain 1: pipe read -> fsync -> read -> read, the two reads parked; one is cancelled. Only
     * chain 3 below touches fd, so cancel_fd has exactly one request to find. */
    assert_non_null(auraio_read_ex(e, p[0], auraio_buf(pbuf[0]), 1, 0, AURAIO_LINK, log_cb, &en[0]));
    assert_non_null(auraio_fsync(e, other, AURAIO_LINK, log_cb, &en[1]));
    auraio_request_t *parked = auraio_read_ex(e, other, auraio_buf(buf[0]), BLOCK, 0, AURAIO_LINK, log_cb, &en[2]);
    assert_non_null(parked);
    assert_non_null(auraio_read(e, other, auraio_buf(buf[1]), BLOCK, 0, log_cb, &en[3]));
    assert_int_equal(auraio_request_pending(e, parked), 1);
    assert_int_equal(auraio_cancel(e, parked), 0);
    assert_int_equal(auraio_cancel(e, parked), -EINPROGRESS);
    /* Chain 2: the same shape on another pipe byte, left alone: its reads run after the fsync. */
    assert_non_null(auraio_read_ex(e, p[0], auraio_buf(pbuf[1]), 1, 0, AURAIO_LINK, log_cb, &en[4]));
    assert_non_null(auraio_fsync(e, other, AURAIO_LINK, log_cb, &en[5]));
    assert_non_null(auraio_read(e, other, auraio_buf(buf[2]), BLOCK, 0, log_cb, &en[6]));
    /* Chain 3: cancel_fd on the parked read's file counts it. */
    assert_non_null(auraio_read_ex(e, p[0], auraio_buf(pbuf[2]), 1, 0, AURAIO_LINK, log_cb, &en[7]));
    assert_non_null(auraio_fsync(e, other, AURAIO_LINK, log_cb, &en[8]));
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[3]), BLOCK, 0, log_cb, &en[9]));
    assert_int_equal(auraio_cancel_fd(e, fd), 1);
    assert_int_equal(auraio_wait(e, 20), -ETIME); /* everything waits for the pipe */
    assert_int_equal(write(p[1], "abc", 3), 3);
    assert_int_equal(harness_wait_for(e, &l.seq, 10, WAIT_MS), 0);
    long want[10] = {1, 0, -ECANCELED, -ECANCELED, 1, 0, BLOCK, 1, 0, -ECANCELED};
    for (int i = 0; i < 10; i++)
        assert_int_equal(atomic_load(&l.result[i]), want[i]);
    assert_true(atomic_load(&l.pos[5]) < atomic_load(&l.pos[6]));
    assert_int_equal(harness_check_pattern(buf[2], BLOCK, 0, 6), -1);
    /* Destroy with members parked behind a blocked head: each callback once, -ECANCELED. */
    assert_non_null(auraio_read_ex(e, p[0], auraio_buf(pbuf[3]), 1, 0, AURAIO_LINK, log_cb, &en[10]));
    assert_non_null(auraio_fsync(e, fd, AURAIO_LINK, log_cb, &en[11]));
    assert_non_null(auraio_read(e, fd, auraio_buf(buf[4]), BLOCK, 0, log_cb, &en[12]));
    assert_int_equal(auraio_poll(e), 0);
    auraio_destroy(e);
    assert_each_once(&l, 13);
    for (int i = 10; i < 13; i++)
        assert_int_equal(atomic_load(&l.result[i]), -ECANCELED);
    close(fd);
    close(other);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_fsync_read_every_config),
        cmocka_unit_test(test_failed_link_cancels_rest),
        cmocka_unit_test(test_chain_never_straddles_limit),
        cmocka_unit_test(test_chains_across_batch_boundaries),
        cmocka_unit_test(test_cancel_held_or_backlogged_chain),
        cmocka_unit_test(test_chain_limits),
        cmocka_unit_test(test_destroy_with_open_chain),
        cmocka_unit_test(test_other_threads_never_join_a_chain),
        cmocka_unit_test(test_parked_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
