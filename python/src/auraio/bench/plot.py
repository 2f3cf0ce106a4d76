# SPDX-License-Identifier: Apache-2.0
"""Figures of auraio.bench results, with matplotlib (optional: apt install python3-matplotlib).

timeline(result, path): depth and P99 over time, the P99 target as a line.
latency_cdf(result, path): the completion-latency CDF from fio's percentiles.
frontier(sweep, path, adaptive=None): IOPS against depth (P99 on a second axis) from a
    bench.sweep("iodepth", ...) and the self-tuned run's point.
Each saves PNG or SVG by the file name's extension, and returns the matplotlib Figure.
"""
from typing import Any, List, Optional, Sequence, Tuple

__all__ = ["timeline", "latency_cdf", "frontier"]


def _plt() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("auraio.bench.plot needs matplotlib (apt install python3-matplotlib)") from e
    return plt


def _save(fig: Any, path: Optional[str]) -> Any:
    if path is not None:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def timeline(result: Any, path: Optional[str] = None, title: Optional[str] = None) -> Any:
    """The in-flight depth (100 ms trace) and per-interval P50/P99 over time, with the target."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ctl = result.controller
    tr = ctl.depth_trace
    ax.step([i * ctl.trace_interval_s for i in range(len(tr))], tr, where="post", color="tab:blue", label="depth")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("in-flight depth", color="tab:blue")
    ax2 = ax.twinx()
    s = [i for i in result.series if i.p99_us is not None]
    ax2.plot([i.t_s for i in s], [i.p99_us / 1000.0 for i in s], "o-", color="tab:red", label="P99")
    ax2.plot([i.t_s for i in s], [i.p50_us / 1000.0 for i in s], ".--", color="tab:orange", label="P50")
    if ctl.target_p99_ms:
        ax2.axhline(ctl.target_p99_ms, color="tab:red", linestyle=":", label=f"target {ctl.target_p99_ms:g} ms")
    ax2.set_ylabel("latency (ms)", color="tab:red")
    ax2.set_ylim(bottom=0)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right")
    ax.set_title(title or f"{result.jobs[0].name}: {result.iops:,.0f} IOPS, depth {ctl.final_depth} ({ctl.mode})")
    return _save(fig, path)


def latency_cdf(result: Any, path: Optional[str] = None, title: Optional[str] = None) -> Any:
    """Completion latency CDF of each job and direction, from fio's percentile list."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for j in result.jobs:
        for name, d in (("read", j.read), ("write", j.write)):
            if not d.ios or not d.clat_percentiles_us:
                continue
            pts = sorted(d.clat_percentiles_us.items())
            ax.plot([v for _, v in pts], [q for q, _ in pts], marker=".", label=f"{j.name}.{j.clone} {name}")
    ax.set_xscale("log")
    ax.set_xlabel("completion latency (us)")
    ax.set_ylabel("percentile")
    ax.set_ylim(0, 100)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(title or "latency CDF")
    return _save(fig, path)


def frontier(sweep: Sequence[Tuple[Any, Any]], path: Optional[str] = None, adaptive: Any = None,
             title: Optional[str] = None) -> Any:
    """IOPS (and P99) against the fixed depth of each sweep point; the self-tuned result (if given)
    as a star at the depth the controller chose."""
    plt = _plt()
    pts = sorted((int(d), r) for d, r in sweep if d is not None)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot([d for d, _ in pts], [r.iops for _, r in pts], "o-", color="tab:blue", label="fixed depth (IOPS)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("iodepth")
    ax.set_ylabel("IOPS", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot([d for d, _ in pts], [(r.p99_us or 0) / 1000.0 for _, r in pts], "s--", color="tab:red",
             label="fixed depth (P99)")
    ax2.set_ylabel("P99 (ms)", color="tab:red")
    if adaptive is not None:
        d = max(1, adaptive.controller.final_depth)
        ax.plot([d], [adaptive.iops], "*", markersize=16, color="tab:green", label=f"self-tuned (depth {d})")
        ax2.plot([d], [(adaptive.p99_us or 0) / 1000.0], "*", markersize=12, color="tab:purple",
                 label="self-tuned (P99)")
    l1 = ax.get_legend_handles_labels()
    l2 = ax2.get_legend_handles_labels()
    ax.legend(l1[0] + l2[0], l1[1] + l2[1], loc="best")
    ax.set_title(title or "IOPS vs depth")
    return _save(fig, path)
