/* SPDX-License-Identifier: Apache-2.0 */
/* The Prometheus exposition's fixed latency buckets (metrics_prom.c), shared with its tests. */
#ifndef AURAIO_METRICS_PROM_H
#define AURAIO_METRICS_PROM_H

#include <stdint.h>

#define AURAIO_PROM_BUCKETS 20
/* Exclusive upper bounds in ns, each a boundary of the internal histogram; `le` is bound - 1 ns. */
extern const uint64_t auraio__prom_bucket_bounds_ns[AURAIO_PROM_BUCKETS];

#endif
