#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Sweep fixed queue depths against auraio's self-tuned run on the same job, and save the
IOPS-vs-depth frontier (with the controller's point) and the self-tuned run's timeline as plots.

    python depth_sweep.py [--file PATH] [--size 256m] [--runtime 3s] [--direct 1] [--out sweep.png]

Without --file a temporary file is made in /var/tmp (a disk file system, where O_DIRECT works).
Needs matplotlib for the plots (apt install python3-matplotlib); prints the table either way.
"""
import argparse
import os
import tempfile

from auraio import bench


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file")
    ap.add_argument("--size", default="256m")
    ap.add_argument("--runtime", default="3s")
    ap.add_argument("--direct", type=int, default=1)
    ap.add_argument("--depths", default="1,2,4,8,16,32,64,128")
    ap.add_argument("--out", default="depth_sweep.png", help="the frontier plot (the timeline goes next to it)")
    a = ap.parse_args()
    tmp = None
    path = a.file
    if path is None:
        tmp = tempfile.TemporaryDirectory(dir="/var/tmp", prefix="auraio-sweep-")
        path = os.path.join(tmp.name, "data")
    job = bench.Job("sweep", filename=path, size=a.size, rw="randread", bs="4k", direct=a.direct,
                    runtime=a.runtime, time_based=True)
    depths = [int(d) for d in a.depths.split(",")]
    sweep = bench.sweep("iodepth", depths, job)
    tuned = bench.run(job, progress=False)  # no iodepth: the controller chooses
    print(f"{'depth':>8} {'IOPS':>10} {'P99 us':>9}")
    for d, r in sweep:
        print(f"{d:>8} {r.iops:>10,.0f} {r.p99_us or 0:>9.0f}")
    c = tuned.controller
    print(f"{'auto':>8} {tuned.iops:>10,.0f} {tuned.p99_us or 0:>9.0f}   (self-tuned: depth {c.final_depth}, "
          f"settled after {c.converge_s:.1f} s)")
    try:
        from auraio.bench import plot
    except ImportError:
        return
    try:
        plot.frontier(sweep, a.out, adaptive=tuned, title=f"4 KiB randread, direct={a.direct}")
        base, ext = os.path.splitext(a.out)
        plot.timeline(tuned, f"{base}-timeline{ext}")
        print(f"plots: {a.out}, {base}-timeline{ext}")
    except ImportError as e:
        print(f"no plots: {e}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
