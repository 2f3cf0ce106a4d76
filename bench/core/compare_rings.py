#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Depth 1 on an engine of several rings against one ring: 4 KiB O_DIRECT random reads, one in
flight, through read_bench with one ring and with the library's default (one per CPU), in the same
run. Each round runs both back to back, the order flipping every round (the disk's rate drifts by
the minute here, so only a round's own pair is compared); per round the ratio of the IOPS and the
difference of the p50s, and their medians. With --before BUILD_DIR the same pair of that build runs
in each round too, and the two builds' several-ring IOPS are compared round by round.

What it watches: where a waiting thread sleeps (doc/architecture.md, "Waiting"). Sleeping in the
only busy ring's io_uring_enter costs what one ring costs; sleeping in poll() on the eventfd costs
a wake-up and a read more per completion, which at depth 1 is on every read's latency.

Run it under the exclusive lock on a shared machine:
  flock /tmp/auraio-bench.lock bench/core/compare_rings.py [--before DIR] [--runs 10] [--seconds 1.5]
Standard library only; reuses compare_fio.py's file helpers.
"""

import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_fio as cf  # noqa: E402


def one(bench, path, seconds, several):
    cmd = cf.read_cmd(bench, path, 1, True, seconds) + (["--default-rings"] if several else [])
    r = cf.parse_result(cf.run(cmd))
    return {"iops": float(r["iops"]), "p50_us": float(r["p50_us"]), "rings": int(r["rings"])}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(cf.REPO, "build-rel"))
    ap.add_argument("--before", metavar="BUILD_DIR", help="also run this build's pair in each round")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--size", type=int, default=256, help="test file MiB (default 256)")
    ap.add_argument("--file", help="an existing file to read (default: a temp file)")
    ap.add_argument("--dir", default=os.environ.get("TMPDIR", "/var/tmp"),
                    help="where the temp file goes: a disk file system (O_DIRECT), not tmpfs")
    a = ap.parse_args()

    builds = {"after": a.build_dir}
    if a.before:
        builds["before"] = a.before
    for name, d in builds.items():
        if not os.path.exists(os.path.join(d, "bench", "core", "read_bench")):
            cf.die(f"{d}/bench/core/read_bench not built (meson setup {d} --buildtype=release)")
    print(f"builds: {builds}; kernel {os.uname().release}; CPUs {os.cpu_count()}")

    tmp = None
    path = a.file
    if not path:
        tmp = tempfile.mkdtemp(prefix="auraio-rings-", dir=a.dir)
        path = os.path.join(tmp, "data")
        cf.make_file(path, a.size << 20)
    try:
        res = {(b, s): [] for b in builds for s in (False, True)}
        runs = [(b, s) for b in builds for s in (False, True)]
        for i in range(a.runs):
            for b, several in (runs if i % 2 == 0 else runs[::-1]):
                r = one(os.path.join(builds[b], "bench", "core", "read_bench"), path, a.seconds, several)
                res[(b, several)].append(r)
                print(f"round {i + 1:2d} {b:6s} rings {r['rings']}: iops {r['iops']:8.0f}  p50 {r['p50_us']:7.1f} us",
                      flush=True)
    finally:
        if tmp:
            os.unlink(path)
            os.rmdir(tmp)

    print(f"\ndepth 1, O_DIRECT 4 KiB random reads, {a.runs} rounds x {a.seconds} s")
    print("| build | IOPS several rings / one ring, per round | median | p50 several - one (median) |")
    print("|---|---|---|---|")
    for b in builds:
        one_ring, several = res[(b, False)], res[(b, True)]
        ratios = [s["iops"] / o["iops"] for o, s in zip(one_ring, several)]
        dp50 = [s["p50_us"] - o["p50_us"] for o, s in zip(one_ring, several)]
        print(f"| {b} | {' '.join(f'{x:.3f}' for x in ratios)} | {statistics.median(ratios):.3f} | "
              f"{statistics.median(dp50):+.1f} us |")
    if a.before:
        r = [n["iops"] / o["iops"] for o, n in zip(res[("before", True)], res[("after", True)])]
        print(f"several rings, after / before IOPS per round: {' '.join(f'{x:.3f}' for x in r)}; "
              f"median {statistics.median(r):.3f}")


if __name__ == "__main__":
    main()
