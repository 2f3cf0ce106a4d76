// SPDX-License-Identifier: Apache-2.0
/* The submission hand-off decision (device_punt.h): a state machine over windows of samples. */
#include "device_punt.h"

#include <string.h>

void auraio__punt_init(struct punt *p, bool enabled, uint64_t now_ns)
{
    memset(p, 0, sizeof(*p));
    p->enabled = enabled;
    p->phase = PUNT_INLINE;
    p->phase_ns = now_ns;
}

/* The median of a full window, which it empties. */
static uint32_t take_median(struct punt *p, unsigned m)
{
    uint32_t v[PUNT_WINDOW];
    memcpy(v, p->win[m], sizeof(v));
    for (unsigned i = 1; i < PUNT_WINDOW; i++) {
        uint32_t x = v[i];
        unsigned j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
    p->n[m] = 0;
    return (v[PUNT_WINDOW / 2 - 1] + v[PUNT_WINDOW / 2]) / 2;
}

void auraio__punt_sample(struct punt *p, bool async, bool done, uint32_t ns_per_sqe)
{
    unsigned m = async ? 1u : 0u;
    if (!p->enabled || p->n[m] >= PUNT_WINDOW)
        return;
    p->win[m][p->n[m]++] = ns_per_sqe;
    if (!async && done)
        p->done++;
}

/* After an inline window: its median, and whether the device completes in the submission. */
static void take_inline(struct punt *p)
{
    p->synchronous = 2 * p->done > PUNT_WINDOW;
    p->done = 0;
    p->inline_ns = take_median(p, 0);
}

/* Whether the inline side alone rules the flag out, whatever the hand-off costs. */
static bool inline_is_cheap(const struct punt *p)
{
    return p->synchronous || p->inline_ns <= PUNT_FLOOR_NS;
}

bool auraio__punt_worth(uint32_t inline_ns, uint32_t async_ns)
{
    return inline_ns > PUNT_FLOOR_NS && (uint64_t)inline_ns > (uint64_t)PUNT_GAIN * async_ns;
}

static void enter(struct punt *p, enum punt_phase phase, uint64_t now_ns)
{
    p->phase = (uint8_t)phase;
    p->phase_ns = now_ns;
    /* A window starts empty in its new mode (samples of SQEs flagged before the change still
     * arrive for a moment; they are the other window's and dropped with it). */
    p->n[0] = p->n[1] = 0;
    p->done = 0;
    if ((phase == PUNT_ASYNC || phase == PUNT_INLINE) && p->decided != (phase == PUNT_ASYNC)) {
        p->decided = phase == PUNT_ASYNC;
        p->switches++;
    }
}

/* After a probe: the decision, from both costs. */
static void decide(struct punt *p, uint64_t now_ns)
{
    bool flag = !inline_is_cheap(p) && auraio__punt_worth(p->inline_ns, p->async_ns);
    enter(p, flag ? PUNT_ASYNC : PUNT_INLINE, now_ns);
}

bool auraio__punt_update(struct punt *p, uint64_t now_ns)
{
    if (!p->enabled)
        return false;
    bool full_inline = p->n[0] >= PUNT_WINDOW, full_async = p->n[1] >= PUNT_WINDOW;
    uint64_t age = now_ns - p->phase_ns;
    switch ((enum punt_phase)p->phase) {
    case PUNT_INLINE:
        p->n[1] = 0; /* late samples of a flagged window */
        if (!full_inline)
            break;
        take_inline(p);
        if (inline_is_cheap(p))
            break;
        if (p->async_at_ns == 0 || now_ns - p->async_at_ns >= PUNT_REPROBE_NS)
            enter(p, PUNT_PROBE_ASYNC, now_ns);
        else if (auraio__punt_worth(p->inline_ns, p->async_ns))
            enter(p, PUNT_ASYNC, now_ns);
        break;
    case PUNT_PROBE_ASYNC:
        p->n[0] = p->done = 0;
        if (full_async) {
            p->async_ns = take_median(p, 1);
            p->async_at_ns = now_ns;
            decide(p, now_ns);
        } else if (age >= PUNT_PROBE_TIMEOUT_NS) {
            enter(p, PUNT_INLINE, now_ns);
        }
        break;
    case PUNT_ASYNC:
        p->n[0] = p->done = 0;
        if (full_async) {
            p->async_ns = take_median(p, 1);
            p->async_at_ns = now_ns;
            if (!auraio__punt_worth(p->inline_ns, p->async_ns)) {
                enter(p, PUNT_INLINE, now_ns); /* the hand-off grew dear: no wait for the re-probe */
                break;
            }
        }
        if (age >= PUNT_REPROBE_NS)
            enter(p, PUNT_PROBE_INLINE, now_ns);
        break;
    case PUNT_PROBE_INLINE:
        p->n[1] = 0;
        if (full_inline) {
            take_inline(p);
            decide(p, now_ns);
        } else if (age >= PUNT_PROBE_TIMEOUT_NS) {
            enter(p, PUNT_ASYNC, now_ns);
        }
        break;
    }
    return auraio__punt_flagged(p);
}
