/* SPDX-License-Identifier: Apache-2.0 */
/* The Prometheus exposition's fixed latency buckets (metrics_prom.c), shared with its tests. */
#ifndef AURAIO_METRICS_PROM_H
#define AURAIO_METRICS_PROM_H

#include <stdint.h>

#define AURAIO_PROM_BUCKETS 20
/* Exclusive upper bound @p i in ns (0 out of range), each a boundary of the internal histogram;
 * its `le` label is bound - 1 ns. */
uint64_t auraio__prom_bucket_bound_ns(int i);

#endif
