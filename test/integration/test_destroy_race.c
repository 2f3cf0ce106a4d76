/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The destroy contract (auraio.h, auraio_destroy): no call on the engine may overlap destroy. A
 * debug build (NDEBUG undefined, as every build CI tests) detects a violation and aborts before
 * anything is freed, instead of letting the racing call use freed memory. Here threads submit and
 * poll in a loop while destroy is called, in a child process: it must die of SIGABRT, not of an
 * ASan or TSan report (exit status) and not hang (watchdog). The callbacks destroy itself runs
 * may still call in and get ESHUTDOWN: checked in the same build, without a fork.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define SUBMITTERS 2
#define WATCHDOG_MS 10000

#ifndef NDEBUG /* the check these drive is compiled out of NDEBUG builds */
struct racer {
    auraio_engine_t *e;
    int fd;
    _Atomic long submitted;
};

static void ignore_cb(auraio_request_t *req, ssize_t result, void *user_data)
{
    (void)req;
    (void)result;
    (void)user_data;
}

static void *submitter(void *arg)
{
    struct racer *r = arg;
    static _Thread_local char buf[512];
    for (;;) {
        if (auraio_read(r->e, r->fd, auraio_buf(buf), sizeof(buf), 0, ignore_cb, NULL))
            atomic_fetch_add(&r->submitted, 1);
        auraio_poll(r->e);
    }
    return NULL;
}

/* Child: destroy while the submitters run. Returning from destroy is the failure. */
static void race_destroy(void)
{
    struct racer r = {.fd = harness_pattern_file(4096, 1)};
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = 2;
    r.e = auraio_create_with_options(&o);
    if (!r.e || r.fd < 0)
        _exit(3);
    pthread_t t[SUBMITTERS];
    for (int i = 0; i < SUBMITTERS; i++)
        pthread_create(&t[i], NULL, submitter, &r);
    while (atomic_load(&r.submitted) < 2000)
        sched_yield();
    auraio_destroy(r.e);
    _exit(4);
}
#endif

static void test_destroy_racing_submitters_is_detected(void **state)
{
    (void)state;
#ifdef NDEBUG
    print_message("NDEBUG build: the destroy race check is compiled out; nothing to test\n");
#else
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        race_destroy();
    int status = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        assert_true(w >= 0);
        if (w == pid)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (ms > WATCHDOG_MS) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("the racing destroy hung for %d ms", WATCHDOG_MS);
        }
        struct timespec tick = {0, 5 * 1000000};
        nanosleep(&tick, NULL); /* polling a child's exit, not synchronising with it */
    }
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("child ended with %s %d, expected SIGABRT from the contract check",
                 WIFSIGNALED(status) ? "signal" : "exit status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
#endif
}

struct resubmit {
    auraio_engine_t *e;
    int fd;
    _Atomic int calls;
    _Atomic long result;
    _Atomic int resubmit_errno;
};

static void resubmit_cb(auraio_request_t *req, ssize_t result, void *user_data)
{
    (void)req;
    struct resubmit *s = user_data;
    static char buf[1];
    atomic_fetch_add(&s->calls, 1);
    atomic_store(&s->result, (long)result);
    errno = 0;
    if (!auraio_read(s->e, s->fd, auraio_buf(buf), 1, 0, resubmit_cb, s))
        atomic_store(&s->resubmit_errno, errno);
}

/* Calls from the callbacks destroy runs are part of destroy, not a race: ESHUTDOWN, no abort. */
static void test_callbacks_run_by_destroy_may_call_in(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct resubmit s = {.e = auraio_create(), .fd = p[0]};
    assert_non_null(s.e);
    char buf[1];
    assert_non_null(auraio_read(s.e, p[0], auraio_buf(buf), 1, 0, resubmit_cb, &s));
    auraio_destroy(s.e);
    assert_int_equal(atomic_load(&s.calls), 1);
    assert_int_equal(atomic_load(&s.result), -ECANCELED);
    assert_int_equal(atomic_load(&s.resubmit_errno), ESHUTDOWN);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    harness_require_io_uring();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callbacks_run_by_destroy_may_call_in),
        cmocka_unit_test(test_destroy_racing_submitters_is_detected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
