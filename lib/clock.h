/* SPDX-License-Identifier: Apache-2.0 */
/* The one clock the engine reads: CLOCK_MONOTONIC in nanoseconds (vDSO, ~20 ns). Pure modules
 * (controller, histogram) never call it; the engine passes `now` in. */
#ifndef AURAIO_CLOCK_H
#define AURAIO_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t auraio__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
