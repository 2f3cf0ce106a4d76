/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The log hook: each event the library reports (setup flags refused, SQPOLL unavailable, eventfd
 * failures, destroy waiting, a P99 target found infeasible, controller phase changes) reaches the
 * handler exactly once per occurrence with its level, the level filter holds, the handler runs
 * with no library lock held, and nothing is written to stderr. Built on the fault-injecting
 * syscall twin (test/fault) to make the kernel refuse what this machine would grant.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "engine.h"
#include "fault_sys.h"
#include "harness.h"
#include "uring_abi.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define MAX_MESSAGES 4096

struct logged {
    int level;
    char text[256];
};

static struct {
    pthread_mutex_t lock;
    struct logged msgs[MAX_MESSAGES];
    int count;
    int locked_calls;                /* the handler found a library lock held */
    struct auraio_engine *watched;   /* whose locks the handler checks */
    sem_t destroy_event;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Is @p m held (by anyone)? The test's engines are driven by one thread, so held means held by
 * the thread running the handler. */
static bool held(pthread_mutex_t *m)
{
    if (pthread_mutex_trylock(m) != 0)
        return true;
    pthread_mutex_unlock(m);
    return false;
}

static bool held_ring(struct auraio_lock *m)
{
    if (!auraio__lock_try(m))
        return true;
    auraio__unlock(m);
    return false;
}

static void handler(int level, const char *message, void *user_data)
{
    assert_ptr_equal(user_data, &g);
    struct auraio_engine *e = g.watched;
    bool locked = false;
    if (e) {
        locked = held(&e->tick_lock) || held(&e->wait_lock) || held(&e->reg_lock);
        for (uint32_t i = 0; i < e->ring_count; i++)
            locked = locked || held_ring(&e->rings[i].lock);
    }
    pthread_mutex_lock(&g.lock);
    if (locked)
        g.locked_calls++;
    if (g.count < MAX_MESSAGES) {
        g.msgs[g.count].level = level;
        snprintf(g.msgs[g.count].text, sizeof(g.msgs[g.count].text), "%s", message);
        g.count++;
    }
    pthread_mutex_unlock(&g.lock);
    if (!strncmp(message, "destroy_waiting:", 16))
        sem_post(&g.destroy_event);
}

/* Messages starting with @p event (and its colon); the level of the last one in *level. */
static int count_event(const char *event, int *level)
{
    int n = 0;
    size_t k = strlen(event);
    pthread_mutex_lock(&g.lock);
    for (int i = 0; i < g.count; i++) {
        if (!strncmp(g.msgs[i].text, event, k) && g.msgs[i].text[k] == ':') {
            n++;
            if (level)
                *level = g.msgs[i].level;
        }
    }
    pthread_mutex_unlock(&g.lock);
    return n;
}

static void reset_log(int min_level)
{
    pthread_mutex_lock(&g.lock);
    g.count = 0;
    g.locked_calls = 0;
    g.watched = NULL;
    pthread_mutex_unlock(&g.lock);
    assert_int_equal(auraio_set_log_handler(handler, &g, min_level), 0);
}

/* stderr goes to a file for the duration of each test; it must stay empty. */
static int saved_stderr = -1;
static char stderr_path[64];

static int setup(void **state)
{
    (void)state;
    fault_reset();
    snprintf(stderr_path, sizeof(stderr_path), "/tmp/auraio-test-log-XXXXXX");
    int fd = mkstemp(stderr_path);
    assert_true(fd >= 0);
    fflush(stderr);
    saved_stderr = dup(2);
    assert_int_equal(dup2(fd, 2), 2);
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    struct stat st;
    int rc = stat(stderr_path, &st);
    auraio_set_log_handler(NULL, NULL, AURAIO_LOG_DEBUG);
    fault_reset();
    if (rc != 0 || st.st_size != 0) {
        /* A failed assertion writes there too: show what it was. */
        char text[2048] = "";
        FILE *f = fopen(stderr_path, "r");
        if (f) {
            text[fread(text, 1, sizeof(text) - 1, f)] = '\0';
            fclose(f);
        }
        fprintf(stderr, "stderr during the test (%lld bytes; the library must write none):\n%s\n",
                rc == 0 ? (long long)st.st_size : -1LL, text);
        unlink(stderr_path);
        return -1;
    }
    unlink(stderr_path);
    return 0;
}

static auraio_engine_t *make(int rings, bool single_issuer, bool sqpoll)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = rings;
    o.queue_depth = 64;
    o.single_issuer = single_issuer;
    o.enable_sqpoll = sqpoll;
    return auraio_create_with_options(&o);
}

static void test_setup_fallbacks(void **state)
{
    (void)state;
    int level = -1;
    /* Nothing refused: nothing said. */
    reset_log(AURAIO_LOG_DEBUG);
    auraio_engine_t *e = make(3, false, false);
    assert_non_null(e);
    auraio_destroy(e);
    assert_int_equal(count_event("setup_flags_refused", NULL), 0);

    /* DEFER_TASKRUN refused: once per engine (three rings), at INFO. */
    fault_refuse_setup_flags(IORING_SETUP_DEFER_TASKRUN);
    e = make(3, true, false);
    assert_non_null(e);
    assert_int_equal(count_event("setup_flags_refused", &level), 1);
    assert_int_equal(level, AURAIO_LOG_INFO);
    assert_int_equal(count_event("sqpoll_unavailable", NULL), 0);
    auraio_destroy(e);

    /* SQPOLL refused: its own event, at WARN. */
    fault_reset();
    reset_log(AURAIO_LOG_DEBUG);
    fault_refuse_setup_flags(IORING_SETUP_SQPOLL);
    e = make(2, false, true);
    assert_non_null(e);
    assert_int_equal(count_event("sqpoll_unavailable", &level), 1);
    assert_int_equal(level, AURAIO_LOG_WARN);
    assert_int_equal(count_event("setup_flags_refused", NULL), 0);
    auraio_destroy(e);

    /* Filtered out below the handler's level. */
    fault_reset();
    reset_log(AURAIO_LOG_WARN);
    fault_refuse_setup_flags(IORING_SETUP_DEFER_TASKRUN);
    e = make(1, true, false);
    assert_non_null(e);
    auraio_destroy(e);
    assert_int_equal(count_event("setup_flags_refused", NULL), 0);
    assert_int_equal(auraio_set_log_handler(handler, &g, AURAIO_LOG_ERROR + 1), -EINVAL);
    assert_int_equal(auraio_set_log_handler(handler, &g, -1), -EINVAL);
}

static void test_eventfd_failures(void **state)
{
    (void)state;
    int level = -1;
    reset_log(AURAIO_LOG_DEBUG);
    fault_arm(FAULT_EVENTFD, 0, 1, EMFILE);
    assert_null(make(2, false, false));
    assert_int_equal(count_event("eventfd_failed", &level), 1);
    assert_int_equal(level, AURAIO_LOG_ERROR);

    /* Registration: probe then eventfd per ring; fail the first ring's eventfd registration. */
    fault_reset();
    reset_log(AURAIO_LOG_DEBUG);
    auraio_engine_t *e = make(1, false, false);
    assert_non_null(e);
    int regs = fault_calls(FAULT_REGISTER);
    /* Unregistering at destroy fails: reported, and destroy still completes. */
    fault_arm(FAULT_REGISTER, 0, 1, EINVAL);
    auraio_destroy(e);
    assert_int_equal(count_event("eventfd_failed", &level), 1);
    assert_int_equal(level, AURAIO_LOG_ERROR);

    fault_reset();
    reset_log(AURAIO_LOG_DEBUG);
    fault_arm(FAULT_REGISTER, regs - 1, 1, EBUSY);
    assert_null(make(1, false, false));
    assert_int_equal(count_event("eventfd_failed", NULL), 1);
}

struct destroyer {
    auraio_engine_t *e;
    sem_t done;
};

static void *destroy_main(void *arg)
{
    struct destroyer *d = arg;
    auraio_destroy(d->e);
    sem_post(&d->done);
    return NULL;
}

/* A request the kernel does not return (every enter refused, so its cancel never gets there):
 * destroy reports that it is waiting, once, at WARN, however long it waits. */
static void test_destroy_waiting(void **state)
{
    (void)state;
    reset_log(AURAIO_LOG_DEBUG);
    assert_int_equal(sem_init(&g.destroy_event, 0, 0), 0);
    auraio_engine_t *e = make(2, false, false);
    assert_non_null(e);
    int p[2];
    assert_int_equal(pipe(p), 0);
    char buf[1];
    struct recorder rec;
    struct recorder_ctx c = {&rec, 0};
    recorder_init(&rec);
    assert_non_null(auraio_read(e, p[0], auraio_buf(buf), 1, 0, recorder_callback, &c));
    g.watched = (struct auraio_engine *)e;
    fault_arm(FAULT_ENTER, 0, 1 << 30, EAGAIN);
    struct destroyer d = {.e = e};
    assert_int_equal(sem_init(&d.done, 0, 0), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, destroy_main, &d), 0);
    if (!harness_sem_wait_ms(&g.destroy_event, 10000))
        fail_msg("destroy did not report waiting within 10 s");
    /* Let destroy re-ask at least twice more before the request completes: still one report. */
    int enters = fault_calls(FAULT_ENTER);
    for (int spins = 0; fault_calls(FAULT_ENTER) < enters + 2 && spins < 10000; spins++)
        usleep(1000);
    g.watched = NULL;
    fault_reset();
    assert_int_equal(write(p[1], "x", 1), 1);
    if (!harness_sem_wait_ms(&d.done, 10000))
        fail_msg("destroy did not return");
    pthread_join(t, NULL);
    int level = -1;
    assert_int_equal(count_event("destroy_waiting", &level), 1);
    assert_int_equal(level, AURAIO_LOG_WARN);
    assert_int_equal(g.locked_calls, 0);
    recorder_assert_each_once(&rec, 1);
    sem_destroy(&d.done);
    sem_destroy(&g.destroy_event);
    close(p[0]);
    close(p[1]);
}

/* Cached reads keep the controller ticking. */
struct load {
    auraio_engine_t *e;
    int fd;
    bool stop;
    char bufs[16][4096];
};

static void reread(auraio_request_t *req, ssize_t res, void *ud)
{
    (void)req;
    struct load *l = ud;
    if (l->stop)
        return;
    assert_int_equal(res, 4096);
    static unsigned i;
    i++;
    assert_non_null(auraio_read(l->e, l->fd, auraio_buf(l->bufs[i % 16]), 4096, (int64_t)(i % 16) * 4096, reread, l));
}

static void run_until(struct load *l, const char *event, int want, int max_ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        int rc = auraio_wait(l->e, 10);
        assert_true(rc >= 0 || rc == -ETIME);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (count_event(event, NULL) < want &&
             (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < max_ms);
}

static void start_load(struct load *l, auraio_engine_t *e)
{
    l->e = e;
    l->fd = harness_pattern_file(16 * 4096, 2);
    assert_true(l->fd >= 0);
    for (int i = 0; i < 16; i++)
        assert_non_null(auraio_read(e, l->fd, auraio_buf(l->bufs[i]), 4096, (int64_t)i * 4096, reread, l));
}

/* Phase changes at DEBUG, a consistent chain; filtered out at INFO. An impossible P99 target
 * (1 ns): found infeasible, reported once at WARN however long it stays so, and again once
 * after the target is set anew. The handler runs on the polling thread, outside every lock. */
static void test_controller_events(void **state)
{
    (void)state;
    static struct load l;
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    o.queue_depth = 64;
    o.max_p99_latency_ms = 1e-6;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    reset_log(AURAIO_LOG_DEBUG);
    g.watched = (struct auraio_engine *)e;
    start_load(&l, e);
    run_until(&l, "target_infeasible", 1, 20000);
    int level = -1;
    assert_int_equal(count_event("target_infeasible", &level), 1);
    assert_int_equal(level, AURAIO_LOG_WARN);
    int phases = count_event("phase_change", &level);
    assert_true(phases >= 1);
    assert_int_equal(level, AURAIO_LOG_DEBUG);
    /* Keep running: many more ticks, still one report. */
    auraio_stats_t st0, st1;
    auraio_get_stats(e, &st0);
    do {
        assert_true(auraio_wait(e, 10) >= 0);
        auraio_get_stats(e, &st1);
    } while (st1.ops_completed < st0.ops_completed + 20000);
    assert_int_equal(count_event("target_infeasible", NULL), 1);
    /* Each phase change starts where the previous one ended. */
    char prev_to[32] = "";
    pthread_mutex_lock(&g.lock);
    for (int i = 0; i < g.count; i++) {
        char from[32], to[32];
        if (sscanf(g.msgs[i].text, "phase_change: %31s -> %31s", from, to) != 2)
            continue;
        assert_string_not_equal(from, to);
        if (prev_to[0])
            assert_string_equal(from, prev_to);
        snprintf(prev_to, sizeof(prev_to), "%s", to);
    }
    pthread_mutex_unlock(&g.lock);
    /* A new target: may be reported again (once). */
    assert_int_equal(auraio_set_max_p99_latency(e, 2e-6), 0);
    run_until(&l, "target_infeasible", 2, 20000);
    assert_int_equal(count_event("target_infeasible", NULL), 2);
    assert_int_equal(g.locked_calls, 0);

    /* At INFO, no phase changes reach the handler. */
    reset_log(AURAIO_LOG_INFO);
    assert_int_equal(auraio_set_max_p99_latency(e, 0), 0); /* re-search: phases change */
    auraio_get_stats(e, &st0);
    do {
        assert_true(auraio_wait(e, 10) >= 0);
        auraio_get_stats(e, &st1);
    } while (st1.ops_completed < st0.ops_completed + 50000);
    assert_int_equal(count_event("phase_change", NULL), 0);
    g.watched = NULL;
    l.stop = true;
    auraio_destroy(e);
    close(l.fd);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_setup_fallbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eventfd_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_controller_events, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
