/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Timed waits and the ring's alarm (lib/ring.h, lib/engine.c "Waiting"): a timed sleep in a ring
 * counts on one absolute-time TIMEOUT the ring keeps in the kernel, instead of arming and
 * cancelling a kernel timer of its own per sleep (the twin counts those: fault_timed_enters).
 * The timeouts are still kept: a wait whose deadline comes before the pending alarm times out on
 * time; an alarm that fires before a wait's deadline does not end that wait; an alarm whose CQE
 * another thread reaps still wakes the leader sleeping on it (a hang is caught by the watchdog);
 * destroy does not wait for a pending alarm.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "fault_sys.h"
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define SLEEPS 200
#define WATCHDOG_MS 2000

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static auraio_engine_t *one_ring(void)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 1;
    o.queue_depth = 64;
    auraio_engine_t *e = auraio_create_with_options(&o);
    assert_non_null(e);
    return e;
}

static void count_cb(auraio_request_t *req, ssize_t result, void *user_data)
{
    (void)req;
    (void)result;
    atomic_fetch_add((_Atomic int *)user_data, 1);
}

/* One timer of @p us microseconds, waited for with a timed wait of @p wait_ms: it must end the
 * wait (a callback), not the timeout. */
static void sleep_until_timer(auraio_engine_t *e, uint64_t us, int wait_ms)
{
    _Atomic int fired = 0;
    assert_non_null(auraio_timeout(e, us * 1000u, count_cb, &fired));
    while (atomic_load(&fired) == 0)
        assert_true(auraio_wait(e, wait_ms) >= 0);
}

/* Many timed sleeps, each ended early by a completion: one alarm serves them all, where each used
 * to sleep with a kernel timer of its own. Then destroy returns at once with the alarm pending. */
static void test_timed_sleeps_share_the_alarm(void **state)
{
    (void)state;
    fault_reset();
    auraio_engine_t *e = one_ring();
    for (int i = 0; i < SLEEPS; i++)
        sleep_until_timer(e, 200, 1000);
    int timed = fault_timed_enters();
    print_message("%d timed sleeps ended by a completion: %d slept with a timer of their own\n", SLEEPS, timed);
    assert_true(timed < SLEEPS / 10);
    uint64_t t0 = now_ms();
    auraio_destroy(e); /* the alarm, due in about a second, is still in the kernel */
    assert_true(now_ms() - t0 < 500);
}

/* A pipe read that completes only when the test writes: I/O pending, no completion. */
struct stuck {
    int pipe[2];
    char byte;
    _Atomic int done;
};

static void stuck_start(auraio_engine_t *e, struct stuck *s)
{
    s->done = 0;
    assert_int_equal(pipe(s->pipe), 0);
    assert_non_null(auraio_read(e, s->pipe[0], auraio_buf(&s->byte), 1, 0, count_cb, (void *)&s->done));
}

static void stuck_end(auraio_engine_t *e, struct stuck *s)
{
    assert_int_equal(write(s->pipe[1], "x", 1), 1);
    while (atomic_load(&s->done) == 0)
        assert_true(auraio_wait(e, WATCHDOG_MS) >= 0);
    close(s->pipe[0]);
    close(s->pipe[1]);
}

/* A wait that must time out at @p wait_ms: not before, and not long after. */
static void assert_times_out(auraio_engine_t *e, int wait_ms)
{
    uint64_t t0 = now_ms();
    assert_int_equal(auraio_wait(e, wait_ms), -ETIME);
    uint64_t took = now_ms() - t0;
    print_message("wait(%d) timed out after %llu ms\n", wait_ms, (unsigned long long)took);
    assert_true(took + 1 >= (uint64_t)wait_ms);
    assert_true(took < (uint64_t)wait_ms + 400);
}

/* A wait of @p wait_ms with I/O pending and nothing completing, after a wait of @p armed_ms that a
 * timer ended early left the alarm pending (due at its deadline): it times out at its own. */
static void time_out_beside_the_alarm(int armed_ms, int wait_ms)
{
    auraio_engine_t *e = one_ring();
    sleep_until_timer(e, 1000, armed_ms);
    struct stuck s;
    stuck_start(e, &s);
    assert_times_out(e, wait_ms);
    stuck_end(e, &s);
    auraio_destroy(e);
}

/* The alarm is due after this wait's deadline: the wait keeps a timeout of its own. */
static void test_wait_before_the_alarm_times_out_on_time(void **state)
{
    (void)state;
    time_out_beside_the_alarm(3000, 50);
}

/* The alarm fires before this wait's deadline: the wait sleeps on after it. */
static void test_alarm_before_the_deadline_does_not_end_the_wait(void **state)
{
    (void)state;
    time_out_beside_the_alarm(40, 200);
}

struct poller {
    auraio_engine_t *e;
    _Atomic bool stop;
    _Atomic long polls;
};

static void *poll_loop(void *arg)
{
    struct poller *p = arg;
    while (!atomic_load(&p->stop)) {
        (void)auraio_poll(p->e);
        atomic_fetch_add(&p->polls, 1);
    }
    return NULL;
}

struct waiter {
    auraio_engine_t *e;
    pthread_t thread;
    _Atomic pid_t tid; /* the waiter's, set by itself */
    int iterations;
    _Atomic int at;      /* the iteration under way */
    _Atomic bool done;
    int bad;             /* waits that returned anything but -ETIME */
};

static void *wait_loop(void *arg)
{
    struct waiter *w = arg;
    atomic_store(&w->tid, gettid());
    for (int i = 0; i < w->iterations; i++) {
        atomic_store(&w->at, i);
        int rc = auraio_wait(w->e, 1);
        if (rc != -ETIME && rc != 0)
            w->bad++;
    }
    atomic_store(&w->done, true);
    return NULL;
}

/* The waiter's sleeping enters (nothing to submit) begin only after its alarm, 1 ms away, has fired
 * and the poller has reaped its CQE: the window between the leader's last look and its enter. */
static void late_sleep(int ring_fd, unsigned to_submit, void *arg)
{
    (void)ring_fd;
    struct waiter *w = arg;
    if (to_submit == 0 && gettid() == atomic_load(&w->tid))
        usleep(3000);
}

/* A thread in wait(1) over and over, nothing completing, while another polls in a tight loop and
 * so reaps the alarms' CQEs before the leader enters the kernel to sleep on them (late_sleep): every
 * wait must still end, woken by the reaper. Without that wake-up the leader sleeps untimed for ever. */
static void test_alarm_reaped_by_another_thread_wakes_the_leader(void **state)
{
    (void)state;
    fault_reset();
    auraio_engine_t *e = one_ring();
    struct stuck s;
    stuck_start(e, &s);
    struct poller p = {.e = e};
    struct waiter w = {.e = e, .iterations = 100};
    pthread_t pt;
    assert_int_equal(pthread_create(&pt, NULL, poll_loop, &p), 0);
    fault_on_enter(late_sleep, &w);
    assert_int_equal(pthread_create(&w.thread, NULL, wait_loop, &w), 0);
    int last = -1;
    uint64_t since = now_ms();
    while (!atomic_load(&w.done)) {
        usleep(1000);
        int at = atomic_load(&w.at);
        if (at != last) {
            last = at;
            since = now_ms();
        } else if (now_ms() - since > WATCHDOG_MS) {
            fprintf(stderr, "FAIL: wait(1) did not return within %d ms (iteration %d)\n", WATCHDOG_MS, at);
            fflush(stderr);
            _exit(1);
        }
    }
    atomic_store(&p.stop, true);
    assert_int_equal(pthread_join(w.thread, NULL), 0);
    fault_on_enter(NULL, NULL);
    assert_int_equal(pthread_join(pt, NULL), 0);
    print_message("%d waits of 1 ms beside %ld polls\n", w.iterations, atomic_load(&p.polls));
    assert_int_equal(w.bad, 0);
    stuck_end(e, &s);
    auraio_destroy(e);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timed_sleeps_share_the_alarm),
        cmocka_unit_test(test_wait_before_the_alarm_times_out_on_time),
        cmocka_unit_test(test_alarm_before_the_deadline_does_not_end_the_wait),
        cmocka_unit_test(test_alarm_reaped_by_another_thread_wakes_the_leader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
