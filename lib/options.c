/* SPDX-License-Identifier: Apache-2.0 */
/* Engine options: defaults and validation. Runtime tunables live here, not in meson options. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "engine.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define MAX_RINGS 4096
/* The kernel's IORING_MAX_ENTRIES. */
#define MAX_QUEUE_DEPTH 32768

void auraio__options_defaults(auraio_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->struct_size = sizeof(*o);
    o->ring_select = AURAIO_SELECT_ADAPTIVE;
}

int auraio__options_validate(const auraio_options_t *o)
{
    if (o->struct_size != sizeof(*o))
        return -EINVAL;
    for (size_t i = 0; i < sizeof(o->reserved); i++) {
        if (o->reserved[i])
            return -EINVAL;
    }
    if (o->ring_count < 0 || o->ring_count > MAX_RINGS)
        return -EINVAL;
    if (o->queue_depth < 0 || o->queue_depth > MAX_QUEUE_DEPTH)
        return -EINVAL;
    int depth = o->queue_depth ? o->queue_depth : 256;
    if (o->max_in_flight < 0 || o->max_in_flight > depth)
        return -EINVAL;
    int max = o->max_in_flight ? o->max_in_flight : depth;
    if (o->initial_in_flight < 0 || o->initial_in_flight > max)
        return -EINVAL;
    if (!(o->max_p99_latency_ms >= 0.0) || !isfinite(o->max_p99_latency_ms))
        return -EINVAL;
    if ((unsigned)o->ring_select > AURAIO_SELECT_THREAD_LOCAL)
        return -EINVAL;
    if (o->sqpoll_idle_ms < 0)
        return -EINVAL;
    return 0;
}
