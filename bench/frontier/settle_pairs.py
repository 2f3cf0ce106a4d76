#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""When two builds' controllers stop changing the depth under a cap, in paired, shuffled runs.

The capped checks judge one build against a frontier measured in the same run, and their verdicts
move with the disk from run to run. A change to the controller is compared here against another
build instead: for each cap and seed, both builds run `capped --cap-schedule 0:CAP` for a few
seconds back to back (in an order shuffled per pair), and the 50 ms limit samples give

  settled    the time of the last change of the limit (the depth it ends at holds from there),
  first hold when the controller first entered HOLD,
  final      the depth it ends at, and the run's IOPS.

With --lift S the cap is lifted S seconds in (`--cap-schedule 0:CAP,S:0`), and each run also gives

  left       the time from the lift to the first limit sample above twice the depth held just
             before it (a lifted cap seen from its hinge; inf: never).

With --impose S the cap comes S seconds in, on an uncapped start (`--cap-schedule 0:0,S:CAP`: a
cap imposed while the first search runs); settled and final are then the capped segment's, and
P99 and the held depth are read from 1.5 s after the cap. With --lift they are read from 1.5 s
after the lift, with the IOPS there.

Medians per build and cap close the output. Run it under the benchmark lock, on a quiet machine:

    flock /tmp/auraio-bench.lock bench/frontier/settle_pairs.py --before /tmp/base/build-cap \\
        --after build-cap --file /work/data/f1g --caps 26000,66000,132000 --seeds 6
"""
import argparse
import random
import re
import statistics
import subprocess
import sys

SAMPLE_S = 0.05  # capped's limit samples


def run(build, path, cap, seconds, seed, lift, impose, rings):
    sched = f"0:{cap},{lift}:0" if lift else f"0:0,{impose}:{cap}" if impose else f"0:{cap}"
    cmd = [build + "/bench/frontier/capped", "--file", path, "--cap-schedule", sched,
           "--schedule-end", str(seconds), "--depths", "2", "--seconds", "0.3", "--warmup", "0.1",
           "--repeats", "1", "--seed", str(seed), "--rings", str(rings)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    limits = []
    for line in out.splitlines():
        m = re.match(r"\s+\d+\.\d+s: ([\d ]+)$", line)
        if m:
            limits += [int(x) for x in m.group(1).split()]
    if not limits:
        sys.exit(f"settle_pairs: no limit samples in the output of {' '.join(cmd)}")
    last = len(limits)
    while last > 0 and limits[last - 1] == limits[-1]:
        last -= 1
    hold = re.search(r"phases:.*?([\d.]+)s HOLD", out)
    iops = re.search(r"schedule rep 1: (\d+) IOPS", out)
    # The capped segment's row (the lifted one's with --lift): from 1.5 s into it (the schedule
    # table's "held" part), the held depth, IOPS and P99.
    seg = re.search(r"^\s+%d\s+\S+\s+\S+\s+(\d+)\s+(\d+)\s+\S+\s+([\d.]+)" % (1 if impose or lift else 0), out, re.M)
    left = float("inf")
    if lift:
        at = int(round(lift / SAMPLE_S))
        held = limits[at - 1] if 0 < at <= len(limits) else 0
        for i in range(at, len(limits)):
            if limits[i] > 2 * held:
                left = (i + 1) * SAMPLE_S - lift
                break
    return {"settled": last * SAMPLE_S - impose, "hold": float(hold.group(1)) if hold else float("inf"),
            "final": limits[-1], "iops": int(iops.group(1)) if iops else 0, "left": left,
            "held": int(seg.group(1)) if seg else 0, "seg_iops": int(seg.group(2)) if seg else 0,
            "p99": float(seg.group(3)) if seg else float("nan")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="build directory of the base")
    ap.add_argument("--after", required=True, help="build directory of the change")
    ap.add_argument("--file", required=True, help="data file (O_DIRECT reads)")
    ap.add_argument("--caps", required=True, help="read-IOPS caps, comma-separated (0: uncapped)")
    ap.add_argument("--seeds", type=int, default=6, help="pairs per cap (default 6)")
    ap.add_argument("--seconds", type=float, default=3.0, help="length of each run (default 3)")
    ap.add_argument("--lift", type=float, default=0.0,
                    help="lift the cap this many seconds in (default 0: never)")
    ap.add_argument("--rings", type=int, default=0,
                    help="the controller's ring_count (default 0: one per CPU)")
    ap.add_argument("--impose", type=float, default=0.0,
                    help="start uncapped and impose the cap this many seconds in (default 0: from the start)")
    a = ap.parse_args()
    try:
        caps = [int(c) for c in a.caps.split(",")]
    except ValueError:
        sys.exit(f"settle_pairs: --caps: not a list of integers: {a.caps!r}")
    if a.seeds < 1 or a.seconds <= 0 or a.rings < 0 or any(c < 0 for c in caps):
        sys.exit("settle_pairs: --seeds and --seconds must be positive, and no cap or --rings negative")
    if a.lift < 0 or (a.lift and (a.lift >= a.seconds or 0 in caps)):
        sys.exit("settle_pairs: --lift must be inside the run, and every cap a cap (not 0)")
    if a.impose < 0 or (a.impose and (a.impose >= a.seconds or a.lift or 0 in caps)):
        sys.exit("settle_pairs: --impose must be inside the run, without --lift, and every cap a cap (not 0)")
    builds = {"before": a.before, "after": a.after}
    res = {}
    for seed in range(1, a.seeds + 1):
        for cap in caps:
            pair = list(builds)
            random.Random(seed * 7919 + cap).shuffle(pair)
            for name in pair:
                r = run(builds[name], a.file, cap, a.seconds, seed, a.lift, a.impose, a.rings)
                res.setdefault((cap, name), []).append(r)
                lifted = f", left the hinge {r['left']:.2f} s after the lift" if a.lift else ""
                print(f"{name:6} cap {cap:7} seed {seed}: settled {r['settled']:.2f} s at {r['final']}, "
                      f"first HOLD {r['hold']:.2f} s, {r['iops']} IOPS, held {r['held']} at {r['seg_iops']} IOPS, "
                      f"P99 {r['p99']:.0f} us from 1.5 s{lifted}", flush=True)
    print(f"\nmedians over {a.seeds} seeds | settled s | first HOLD s | IOPS | IOPS from 1.5 s | P99 us from 1.5 s "
          f"| held from 1.5 s | final depths"
          + (" | left the hinge s (each seed)" if a.lift else ""))
    for cap in caps:
        for name in builds:
            rs = res[(cap, name)]
            lifted = (f" | {statistics.median(r['left'] for r in rs):.2f} "
                      f"{[round(r['left'], 2) for r in rs]}" if a.lift else "")
            print(f"cap {cap:7} {name:6} | {statistics.median(r['settled'] for r in rs):.2f} | "
                  f"{statistics.median(r['hold'] for r in rs):.2f} | "
                  f"{statistics.median(r['iops'] for r in rs):.0f} | {statistics.median(r['seg_iops'] for r in rs):.0f} | "
                  f"{statistics.median(r['p99'] for r in rs):.0f} | "
                  f"{[r['held'] for r in rs]} | {[r['final'] for r in rs]}{lifted}")


if __name__ == "__main__":
    main()
