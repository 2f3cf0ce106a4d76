#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The capped device's frontier and burstiness, measured with fio under throttle-run (doc/throttle.md).

For each read-IOPS cap (0 = uncapped) and each fixed depth: one fio run of 4 KiB O_DIRECT random
reads through io_uring, inside a throttle group made by throttle-run; prints achieved IOPS and P99
as a Markdown table. Then one run at --burst-cap and --burst-depth with fio's per-I/O completion log,
binned into 10 ms (and 1 ms) bins: how bursty blk-throttle's dispatch is.

Run it alone on the machine (other I/O shifts the uncapped numbers), e.g.
  flock /tmp/auraio-bench.lock python3 bench/throttle/capped_frontier.py \
      --throttle-run build-thr/bench/throttle/throttle-run --file build-thr/thr-fio.dat
"""
import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile


def fio_cmd(args, depth, extra=()):
    return ["fio", "--name=x", "--filename=" + args.file, "--direct=1", "--rw=randread", "--bs=4k",
            "--ioengine=io_uring", "--iodepth=%d" % depth, "--runtime=%g" % args.seconds, "--time_based",
            "--size=" + args.size, "--output-format=json", *extra]


def run_capped(args, cap, depth, extra=()):
    cmd = [args.throttle_run, "--file", args.file, "--read-iops", str(cap), "--"] + fio_cmd(args, depth, extra)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    job = json.loads(out[out.index("{"):])["jobs"][0]["read"]
    pct = job["clat_ns"].get("percentile", {})
    return job["iops"], pct.get("99.000000", 0) / 1e6, " ".join(cmd)


def frontier(args):
    caps = [int(c) for c in args.caps.split(",")]
    depths = [int(d) for d in args.depths.split(",")]
    print("| cap (read IOPS) | " + " | ".join("depth %d: IOPS / P99 ms" % d for d in depths) + " |")
    print("|---|" + "---|" * len(depths))
    cmd = None
    for cap in caps:
        cells = []
        for d in depths:
            iops, p99, cmd = run_capped(args, cap, d)
            cells.append("%s / %.2f" % (format(round(iops), ","), p99))
        print("| %s | %s |" % (format(cap, ",") if cap else "uncapped", " | ".join(cells)), flush=True)
    print("\nlast command: `%s`" % cmd)


def burst(args):
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(args.file))) as tmp:
        log = os.path.join(tmp, "b")
        iops, p99, cmd = run_capped(args, args.burst_cap, args.burst_depth,
                                    ["--write_lat_log=" + log, "--log_avg_msec=0", "--per_job_logs=0"])
        times = []
        with open(log + "_clat.log") as f:
            for line in f:
                times.append(int(line.split(",")[0]))  # completion time, ms since the job started
    # Drop the first and last 250 ms (start-up, the cut at the end).
    lo, hi = min(times) + 250, max(times) - 250
    per_ms = collections.Counter(t for t in times if lo <= t < hi)
    span = range(lo, hi)
    print("\nburstiness: cap %d IOPS, depth %d, %d completions in %.2f s (%.0f IOPS, fio says %.0f, P99 %.2f ms)"
          % (args.burst_cap, args.burst_depth, sum(per_ms.values()), (hi - lo) / 1000,
             sum(per_ms.values()) / ((hi - lo) / 1000), iops, p99))
    for width in (1, 10, 100):
        bins = [sum(per_ms[t] for t in range(s, s + width)) * 1000 / width for s in range(lo, hi - width + 1, width)]
        q = statistics.quantiles(bins, n=20)
        print("  %3d ms bins: n=%d mean %.0f, stdev %.0f (CV %.2f), min %.0f, p5 %.0f, median %.0f, p95 %.0f, max %.0f,"
              " empty %.0f%%" % (width, len(bins), statistics.mean(bins), statistics.pstdev(bins),
                                 statistics.pstdev(bins) / statistics.mean(bins), min(bins), q[0],
                                 statistics.median(bins), q[-1], max(bins), 100 * sum(b == 0 for b in bins) / len(bins)))
    row = [per_ms[t] for t in range(lo, lo + 60)]
    print("  completions per 1 ms, first 60 ms: " + " ".join(str(c) for c in row))
    ten = [sum(per_ms[t] for t in range(s, s + 10)) for s in range(lo, lo + 300, 10)]
    print("  completions per 10 ms, first 300 ms: " + " ".join(str(c) for c in ten))
    print("  command: `%s`" % cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--throttle-run", required=True, help="path to the throttle-run binary")
    ap.add_argument("--file", required=True, help="a file on the disk to measure (created by fio if missing)")
    ap.add_argument("--size", default="1G")
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--caps", default="0,2000,10000,20000,50000")
    ap.add_argument("--depths", default="1,4,16,64")
    ap.add_argument("--burst-cap", type=int, default=20000)
    ap.add_argument("--burst-depth", type=int, default=16)
    ap.add_argument("--no-frontier", action="store_true")
    args = ap.parse_args()
    if not args.no_frontier:
        frontier(args)
    if args.burst_cap:
        burst(args)


if __name__ == "__main__":
    sys.exit(main())
