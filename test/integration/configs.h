/* SPDX-License-Identifier: Apache-2.0 */
/* The engine configurations every integration body runs under (liburing's test.h idea): the
 * defaults, one ring, a tiny queue that forces backlog and wraparound, single-issuer task work,
 * and each ring-selection mode. */
#ifndef AURAIO_TEST_CONFIGS_H
#define AURAIO_TEST_CONFIGS_H

#include "auraio.h"

#include <string.h>

struct test_config {
    const char *name;
    int ring_count;
    int queue_depth;
    int initial_in_flight;
    bool single_issuer;
    auraio_ring_select_t select;
};

static const struct test_config test_configs[] = {
    {"default", 0, 0, 0, false, AURAIO_SELECT_ADAPTIVE},
    {"one-ring", 1, 0, 0, false, AURAIO_SELECT_ADAPTIVE},
    {"tiny-queue", 2, 8, 2, false, AURAIO_SELECT_ROUND_ROBIN},
    {"single-issuer", 1, 64, 0, true, AURAIO_SELECT_CPU_LOCAL},
    {"thread-local", 3, 32, 0, false, AURAIO_SELECT_THREAD_LOCAL},
};
#define TEST_CONFIG_COUNT (sizeof(test_configs) / sizeof(test_configs[0]))

static inline auraio_engine_t *config_engine(const struct test_config *c)
{
    auraio_options_t o;
    auraio_options_init(&o);
    o.ring_count = c->ring_count;
    o.queue_depth = c->queue_depth;
    o.initial_in_flight = c->initial_in_flight;
    o.single_issuer = c->single_issuer;
    o.ring_select = c->select;
    o.disable_adaptive = c->initial_in_flight != 0;
    return auraio_create_with_options(&o);
}

#endif
