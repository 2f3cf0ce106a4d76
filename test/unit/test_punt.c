/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The submission hand-off decision (lib/device_punt.h), fed costs and times by hand: exact phases,
 * flags and switch counts. A cheap device is never probed; an expensive one is probed, flagged when
 * the hand-off is cheap enough and not when it is not; a flagged one goes back inline when its
 * inline cost falls or its hand-off grows dear; a device whose requests complete inside the enter is never flagged, however
 * slow; probes that gather nothing time out; an outlier does not move a window's median.
 */
#include "device_punt.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define MS 1000000ull
#define T0 (10 * 1000 * MS) /* any start; the machine's clock is never read */

/* A full window of @p ns per SQE, flagged @p async, completed in the enter or not. */
static void feed(struct punt *p, bool async, bool done, uint32_t ns)
{
    for (unsigned i = 0; i < PUNT_WINDOW; i++)
        auraio__punt_sample(p, async, done, ns);
}

/* One full window at @p ns per SQE, not completed in the enter, then the decision at @p at:
 * whether the device's SQEs are to be flagged. */
static bool window(struct punt *p, bool async, uint32_t ns, uint64_t at)
{
    feed(p, async, false, ns);
    return auraio__punt_update(p, at);
}

/* A device that issues at 22 us inline: its first window probes the hand-off, and one hand-off
 * window at @p async_ns decides. */
static bool probe_handoff(struct punt *p, uint32_t async_ns)
{
    auraio__punt_init(p, true, T0);
    assert_true(window(p, false, 22000, T0 + MS));
    assert_int_equal(p->phase, PUNT_PROBE_ASYNC);
    return window(p, true, async_ns, T0 + 2 * MS);
}

static void test_worth(void **state)
{
    (void)state;
    assert_false(auraio__punt_worth(PUNT_FLOOR_NS, 0)); /* at the floor: never */
    assert_true(auraio__punt_worth(PUNT_FLOOR_NS + 1, 0));
    assert_true(auraio__punt_worth(20001, 10000));  /* just over PUNT_GAIN times */
    assert_false(auraio__punt_worth(20000, 10000)); /* exactly PUNT_GAIN times: not worth it */
    assert_false(auraio__punt_worth(3000, 100));    /* under the floor, however cheap the hand-off */
}

static void test_cheap_device_never_probed(void **state)
{
    (void)state;
    struct punt p;
    auraio__punt_init(&p, true, T0);
    assert_false(window(&p, false, 2000, T0 + MS));
    assert_int_equal(p.phase, PUNT_INLINE);
    assert_int_equal(p.inline_ns, 2000);
    assert_int_equal(p.async_ns, 0);
    /* Ten seconds of windows later: still inline, never probed. */
    for (int i = 1; i <= 10; i++) {
        assert_false(window(&p, false, 2000, T0 + (uint64_t)i * 1000 * MS));
    }
    assert_int_equal(p.async_at_ns, 0);
    assert_int_equal(p.switches, 0);
}

static void test_expensive_device_flagged_then_back(void **state)
{
    (void)state;
    struct punt p;
    auraio__punt_init(&p, true, T0);
    /* A part window decides nothing. */
    for (unsigned i = 0; i + 1 < PUNT_WINDOW; i++)
        auraio__punt_sample(&p, false, false, 22000);
    assert_false(auraio__punt_update(&p, T0 + MS));
    assert_int_equal(p.phase, PUNT_INLINE);
    auraio__punt_sample(&p, false, false, 22000);
    /* A full one above the floor: probe the hand-off (flagged while it is measured). */
    assert_true(auraio__punt_update(&p, T0 + 2 * MS));
    assert_int_equal(p.phase, PUNT_PROBE_ASYNC);
    assert_int_equal(p.inline_ns, 22000);
    assert_int_equal(p.switches, 0);
    assert_true(window(&p, true, 7000, T0 + 3 * MS));
    assert_int_equal(p.phase, PUNT_ASYNC);
    assert_int_equal(p.async_ns, 7000);
    assert_int_equal(p.switches, 1);
    /* Flagged until the re-probe is due, then inline for one window. */
    assert_true(window(&p, true, 6000, T0 + 3 * MS + PUNT_REPROBE_NS - 1));
    assert_int_equal(p.async_ns, 6000);
    assert_false(auraio__punt_update(&p, T0 + 3 * MS + PUNT_REPROBE_NS));
    assert_int_equal(p.phase, PUNT_PROBE_INLINE);
    /* The device became cheap to issue: back inline, for good while it stays so. */
    feed(&p, false, false, 4000);
    uint64_t t = T0 + 4 * MS + PUNT_REPROBE_NS;
    assert_false(auraio__punt_update(&p, t));
    assert_int_equal(p.phase, PUNT_INLINE);
    assert_int_equal(p.inline_ns, 4000);
    assert_int_equal(p.switches, 2);
    assert_false(window(&p, false, 4000, t + 3 * PUNT_REPROBE_NS));
    assert_int_equal(p.phase, PUNT_INLINE);
}

static void test_reprobe_keeps_the_flag_while_inline_stays_dear(void **state)
{
    (void)state;
    struct punt p;
    assert_true(probe_handoff(&p, 7000));
    assert_false(auraio__punt_update(&p, T0 + 2 * MS + PUNT_REPROBE_NS));
    assert_true(window(&p, false, 21000, T0 + 3 * MS + PUNT_REPROBE_NS));
    assert_int_equal(p.phase, PUNT_ASYNC);
    assert_int_equal(p.switches, 1); /* the probe is not a change of decision */
}

static void test_handoff_growing_dear_takes_the_flag_off(void **state)
{
    (void)state;
    struct punt p;
    assert_true(probe_handoff(&p, 7000));
    assert_int_equal(p.phase, PUNT_ASYNC);
    /* The workers are busy now: a hand-off window at half the inline cost or more ends it. */
    assert_false(window(&p, true, 11000, T0 + 3 * MS));
    assert_int_equal(p.phase, PUNT_INLINE);
    assert_int_equal(p.async_ns, 11000);
    assert_int_equal(p.switches, 2);
}

static void test_dear_handoff_stays_inline_then_reprobed(void **state)
{
    (void)state;
    struct punt p;
    assert_false(probe_handoff(&p, 11000)); /* 22 / 11 = exactly PUNT_GAIN: not worth it */
    assert_int_equal(p.phase, PUNT_INLINE);
    assert_int_equal(p.switches, 0);
    /* Its hand-off cost is fresh: more dear inline windows do not probe again... */
    assert_false(window(&p, false, 22000, T0 + 3 * MS));
    assert_int_equal(p.phase, PUNT_INLINE);
    /* ...until it is PUNT_REPROBE_NS old. */
    assert_true(window(&p, false, 22000, T0 + 2 * MS + PUNT_REPROBE_NS));
    assert_int_equal(p.phase, PUNT_PROBE_ASYNC);
    assert_true(window(&p, true, 5000, T0 + 3 * MS + PUNT_REPROBE_NS));
    assert_int_equal(p.phase, PUNT_ASYNC);
    assert_int_equal(p.switches, 1);
}

static void test_synchronous_device_never_flagged(void **state)
{
    (void)state;
    struct punt p;
    auraio__punt_init(&p, true, T0);
    /* 40 us per read, done inside the enter in 9 samples of 16: its cost is the I/O itself. */
    for (unsigned i = 0; i < PUNT_WINDOW; i++)
        auraio__punt_sample(&p, false, i < PUNT_WINDOW / 2 + 1, 40000);
    assert_false(auraio__punt_update(&p, T0 + MS));
    assert_int_equal(p.phase, PUNT_INLINE);
    assert_true(p.synchronous);
    /* Done inside the enter in only half the samples: not synchronous, so probed. */
    for (unsigned i = 0; i < PUNT_WINDOW; i++)
        auraio__punt_sample(&p, false, i < PUNT_WINDOW / 2, 40000);
    assert_true(auraio__punt_update(&p, T0 + 2 * MS));
    assert_false(p.synchronous);
    assert_int_equal(p.phase, PUNT_PROBE_ASYNC);
    /* Flagged samples' completion says nothing about the device: not counted. */
    feed(&p, true, true, 1000);
    assert_true(auraio__punt_update(&p, T0 + 3 * MS));
    assert_int_equal(p.phase, PUNT_ASYNC);
    /* A re-probe that finds it synchronous after all takes the flag off. */
    assert_false(auraio__punt_update(&p, T0 + 3 * MS + PUNT_REPROBE_NS));
    feed(&p, false, true, 40000);
    assert_false(auraio__punt_update(&p, T0 + 4 * MS + PUNT_REPROBE_NS));
    assert_int_equal(p.phase, PUNT_INLINE);
    assert_int_equal(p.switches, 2);
}

static void test_probes_time_out(void **state)
{
    (void)state;
    struct punt p;
    auraio__punt_init(&p, true, T0);
    assert_true(window(&p, false, 22000, T0));
    /* The device went idle during the hand-off probe: inline again, undecided. */
    assert_true(auraio__punt_update(&p, T0 + PUNT_PROBE_TIMEOUT_NS - 1));
    assert_false(auraio__punt_update(&p, T0 + PUNT_PROBE_TIMEOUT_NS));
    assert_int_equal(p.phase, PUNT_INLINE);
    assert_int_equal(p.async_at_ns, 0);
    /* The next dear window probes again; this time it is flagged, then idles in its re-probe. */
    uint64_t t = T0 + PUNT_PROBE_TIMEOUT_NS + MS;
    assert_true(window(&p, false, 22000, t));
    assert_true(window(&p, true, 2000, t + MS));
    assert_false(auraio__punt_update(&p, t + MS + PUNT_REPROBE_NS));
    assert_int_equal(p.phase, PUNT_PROBE_INLINE);
    assert_true(auraio__punt_update(&p, t + MS + PUNT_REPROBE_NS + PUNT_PROBE_TIMEOUT_NS));
    assert_int_equal(p.phase, PUNT_ASYNC);
    assert_int_equal(p.switches, 1);
}

static void test_median_ignores_outliers_and_wrong_mode(void **state)
{
    (void)state;
    struct punt p;
    auraio__punt_init(&p, true, T0);
    /* A preempted enter (a millisecond) among cheap ones, and flagged samples left over from a
     * previous phase: neither moves the inline window. */
    auraio__punt_sample(&p, false, false, 1000000);
    for (unsigned i = 0; i < PUNT_WINDOW; i++)
        auraio__punt_sample(&p, true, false, 90000);
    for (unsigned i = 1; i < PUNT_WINDOW; i++)
        auraio__punt_sample(&p, false, false, 2000 + i);
    assert_false(auraio__punt_update(&p, T0 + MS));
    assert_int_equal(p.inline_ns, (2000 + 8 + 2000 + 9) / 2);
    assert_int_equal(p.n[1], 0);
    assert_int_equal(p.phase, PUNT_INLINE);
}

static void test_disabled_never_flags(void **state)
{
    (void)state;
    struct punt p;
    auraio__punt_init(&p, false, T0);
    assert_false(window(&p, false, 900000, T0 + MS));
    assert_int_equal(p.inline_ns, 0);
    assert_int_equal(p.n[0], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worth),
        cmocka_unit_test(test_cheap_device_never_probed),
        cmocka_unit_test(test_expensive_device_flagged_then_back),
        cmocka_unit_test(test_reprobe_keeps_the_flag_while_inline_stays_dear),
        cmocka_unit_test(test_handoff_growing_dear_takes_the_flag_off),
        cmocka_unit_test(test_dear_handoff_stays_inline_then_reprobed),
        cmocka_unit_test(test_synchronous_device_never_flagged),
        cmocka_unit_test(test_probes_time_out),
        cmocka_unit_test(test_median_ignores_outliers_and_wrong_mode),
        cmocka_unit_test(test_disabled_never_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
