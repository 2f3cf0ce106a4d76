/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Whether a device's submissions are handed to the kernel's io-wq workers (IOSQE_ASYNC) instead of
 * being issued by the thread that enters the ring (doc/controller.md, "Submissions off the
 * thread"). The rings time a sample of their io_uring_enter calls, one device's SQEs per call
 * (ring.c, flush_sampled_locked), and hand the tick each sample as nanoseconds per SQE, flagged
 * or not. This module turns those samples into the decision, per device: no clock, no lock, no
 * I/O, so the unit tests feed it costs and times and check the exact outcome.
 *
 * The rule: a device whose inline submission costs its thread more than PUNT_FLOOR_NS per SQE,
 * and whose requests do not complete inside the enter that issues them, is probed with the flag
 * on; it stays flagged while the inline cost exceeds PUNT_GAIN times the flagged (hand-off) cost
 * (each window of the hand-off is checked against the last inline cost).
 * A device that completes in the submission (zram, a page-cache hit) spends its inline time on the
 * I/O itself, not on issuing it: handing it off would move the I/O to a worker and add the
 * worker's cost (measured: zram beside the disk fell from 365k to 267k IOPS when it was), so it is
 * never flagged. A flagged device goes inline again every PUNT_REPROBE_NS for one
 * window, and an inline device above the floor re-measures its hand-off as often, so either cost
 * changing moves the decision back.
 */
#ifndef AURAIO_DEVICE_PUNT_H
#define AURAIO_DEVICE_PUNT_H

#include <stdbool.h>
#include <stdint.h>

/* Samples per window: a cost is the median of a window (an enter the scheduler preempted is
 * one sample of sixteen, not a shift of the mean). */
#define PUNT_WINDOW 16u
/* Below this inline cost per SQE a hand-off cannot pay: an io-wq worker is woken and switched to
 * for it, which costs microseconds on any machine (perf bench sched pipe: 21 us per round trip,
 * two wake-ups and two switches, on this project's VM). A cached or RAM-backed read (1-3 us) or a
 * bare-metal NVMe submission (a doorbell write) stays under it and is never probed. */
#define PUNT_FLOOR_NS 5000u
/* Flag a device when its inline cost is more than this times its hand-off's: the thread-side
 * hand-off cost is only half the bill (the worker pays a wake-up and a switch too). */
#define PUNT_GAIN 2u
/* How long a decision stands before the other mode is measured again. */
#define PUNT_REPROBE_NS 2000000000ull
/* A probe that gathers no full window in this long (the device went idle) ends undecided. */
#define PUNT_PROBE_TIMEOUT_NS 250000000ull

enum punt_phase {
    PUNT_INLINE,       /* issued by the entering thread; its cost is measured */
    PUNT_PROBE_ASYNC,  /* flagged for one window, to measure the hand-off */
    PUNT_ASYNC,        /* flagged */
    PUNT_PROBE_INLINE, /* inline for one window, to measure the inline cost again */
};

struct punt {
    uint8_t phase; /* enum punt_phase */
    bool enabled;
    uint64_t phase_ns;    /* when the phase began */
    uint64_t async_at_ns; /* when async_ns was measured; 0: never */
    uint32_t inline_ns;   /* median cost per SQE of the last full window, each mode; 0: unknown */
    uint32_t async_ns;
    bool decided;      /* the last decision: flagged (probes aside) */
    uint32_t switches; /* times that decision changed */
    bool synchronous;  /* the last inline window's requests mostly completed inside their enter */
    uint32_t done;     /* the inline window's samples that did */
    uint32_t n[2];     /* [0] inline, [1] flagged */
    uint32_t win[2][PUNT_WINDOW];
};

void auraio__punt_init(struct punt *p, bool enabled, uint64_t now_ns);
/* One timed enter's cost per SQE, its SQEs flagged (@p async) or not, and whether they completed
 * inside it (@p done). A window keeps its first PUNT_WINDOW samples; the rest wait for the next. */
void auraio__punt_sample(struct punt *p, bool async, bool done, uint32_t ns_per_sqe);
/* Advance the decision at @p now_ns. @return whether the device's SQEs are to be flagged now. */
bool auraio__punt_update(struct punt *p, uint64_t now_ns);
/* The rule's costs: whether @p inline_ns and @p async_ns (per SQE) call for the flag. */
bool auraio__punt_worth(uint32_t inline_ns, uint32_t async_ns);
/* Whether the device's SQEs are flagged in @p p's phase. */
static inline bool auraio__punt_flagged(const struct punt *p)
{
    return p->phase == PUNT_ASYNC || p->phase == PUNT_PROBE_ASYNC;
}

#endif
