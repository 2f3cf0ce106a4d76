# SPDX-License-Identifier: Apache-2.0
"""Statistics snapshots as dataclasses (the C structs of include/auraio.h, field for field)."""
from dataclasses import dataclass, field
from typing import List, Tuple

__all__ = ["EngineStats", "RingStats", "Histogram", "BufferStats", "Metrics"]


@dataclass(frozen=True)
class EngineStats:
    """Engine-wide statistics (auraio_get_stats)."""

    ops_completed: int
    bytes_transferred: int
    submissions_at_limit: int
    adaptive_spills: int
    pending_count: int
    in_flight_limit: int
    throughput_bps: float
    p99_latency_ms: float


@dataclass(frozen=True)
class RingStats:
    """One ring's statistics (auraio_get_ring_stats); phase is the controller phase's name."""

    ring: int
    ops_completed: int
    bytes_transferred: int
    submissions_at_limit: int
    pending_count: int
    in_flight_limit: int
    batch_threshold: int
    queue_depth: int
    phase: str
    target_infeasible: bool
    p99_latency_ms: float
    p50_latency_ms: float
    throughput_bps: float


@dataclass(frozen=True)
class Histogram:
    """One ring's last-window latency histogram: buckets[i] counts latencies in
    [bounds_ns[i], bounds_ns[i+1])."""

    ring: int
    total_count: int
    overflow_count: int
    buckets: Tuple[int, ...]
    bounds_ns: Tuple[int, ...]

    def percentile(self, q: float) -> int:
        """The lower bound (ns) of the bucket holding percentile q (0-100); 0 when empty."""
        if not 0 <= q <= 100:
            raise ValueError("q must be within 0..100")
        if self.total_count == 0:
            return 0
        rank = max(1, -(-int(q * self.total_count) // 100))
        seen = 0
        for i, c in enumerate(self.buckets):
            seen += c
            if seen >= rank:
                return self.bounds_ns[i]
        return self.bounds_ns[-1]


@dataclass(frozen=True)
class BufferStats:
    """The engine's buffer pool (auraio_get_buffer_stats)."""

    total_allocated_bytes: int
    total_buffers: int
    cached_bytes: int
    cached_buffers: int
    shard_count: int


@dataclass(frozen=True)
class Metrics:
    """Lifetime metrics (auraio_get_metrics), monotonic for the life of the engine. ops/bytes are
    keyed by op kind ("read", "write", "fsync", "other"), errors by (kind, class) with class in
    "canceled", "timedout", "other"."""

    ring: int  # -1: all rings
    ops: dict
    bytes: dict
    errors: dict
    submissions_at_limit: int
    adaptive_spills: int
    latency_count: int
    latency_sum_ns: int
    latency_overflow: int
    latency_buckets: Tuple[int, ...]
    backlog_length: int
    in_flight: int
    in_flight_limit: int
    queue_depth: int
    phase: str
    target_infeasible: bool
    p50_ns: int
    p99_ns: int
    target_p99_ns: int
    bounds_ns: Tuple[int, ...] = field(repr=False, default=())
