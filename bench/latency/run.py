#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bffio against fio on latency (issue #14's latency suite): O_DIRECT 4 KiB random reads at fixed
depth 1 and 16, the total latency's P50 / P99 / P99.9 side by side, medians of RUNS alternating
runs on the same file, the runs of each depth under the exclusive bench lock. The shared machinery
(file, lock, JSON parsing) is bench/throughput/run.py's.

P99.9 of a 3 s run at depth 16 is decided by a handful of events: this VM's disk stalls now and
then for 2-40 ms, and each stall delays every I/O in flight at once (16 of them, in both tools).
0.1% of ~300k I/Os is ~300 I/Os, about 19 stalls: a run with a few more stalls than that reads
P99.9 in the tens of ms, one with fewer in the hundreds of us. So the table also shows each tool's
per-run P99.9 range; a median of 5 such runs can land on either side.

Usage: bench/latency/run.py [--bffio PATH] [--runs 5] [--seconds 3] [--size 512M] [--quick] [--json OUT]
       [--lock-wait S]
"""

import argparse
import fcntl
import importlib.util
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("tp", os.path.join(HERE, "..", "throughput", "run.py"))
tp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tp)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bffio")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--size", default="512M")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--lock-wait", type=float, default=60,
                    help="seconds to wait for the exclusive bench lock before running a pair unlocked")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.seconds, a.size = 1, 1, "64M"
    if not shutil.which("fio"):
        print("latency: fio is not installed (apt-get install fio): nothing to compare with")
        return 77
    bffio = tp.find_bffio(a.bffio)
    size = int(a.size[:-1]) << {"K": 10, "M": 20, "G": 30}[a.size[-1].upper()]
    d = tempfile.mkdtemp(prefix="bffio-latency-", dir=os.environ.get("TMPDIR") or "/var/tmp")
    path = os.path.join(d, "data")
    results = {}
    try:
        tp.make_file(path, size)
        lockf = open(tp.LOCK if not a.quick else os.devnull, "a+" if not a.quick else "r")
        unlocked = 0
        for qd in (1, 16):
            args = ["--name=t", f"--filename={path}", "--rw=randread", "--bs=4k", "--direct=1", f"--iodepth={qd}"]
            runs = {"bffio": [], "fio": []}
            # One hold of the lock per depth (see bench/throughput/run.py).
            unlocked += 0 if tp.acquire(lockf, a.lock_wait) else a.runs
            try:
                for i in range(a.runs):
                    for tool in (["bffio", "fio"] if i % 2 == 0 else ["fio", "bffio"]):
                        runs[tool].append(tp.one(tool, bffio, args, a.seconds))
            finally:
                fcntl.flock(lockf, fcntl.LOCK_UN)
            results[f"qd{qd}"] = {t: {k: tp.median(r, k) for k in ("iops", "p50", "p99", "p999")} for t, r in
                                  runs.items()}
            results[f"qd{qd}"]["runs"] = runs
            for t, r in runs.items():
                results[f"qd{qd}"][t]["p999_range"] = [min(x["p999"] for x in r), max(x["p999"] for x in r)]
        print(f"O_DIRECT 4 KiB randread, total latency (us), medians of {a.runs} runs x {a.seconds} s")
        print(f"{'depth':6s} {'tool':6s} {'IOPS':>9s} {'P50':>8s} {'P99':>8s} {'P99.9':>8s}  P99.9 per run (min-max)")
        for qd, r in results.items():
            for t in ("bffio", "fio"):
                m = r[t]
                lo, hi = m["p999_range"]
                print(f"{qd:6s} {t:6s} {m['iops']:9.0f} {m['p50']:8.1f} {m['p99']:8.1f} {m['p999']:8.1f}"
                      f"  {lo:.0f}-{hi:.0f}")
            b, f = r["bffio"], r["fio"]
            print(f"{qd:6s} {'ratio':6s} {b['iops'] / f['iops']:9.2f} {b['p50'] / f['p50']:8.2f} "
                  f"{b['p99'] / f['p99']:8.2f} {b['p999'] / f['p999']:8.2f}   (bffio / fio; latency: lower is better)")
        if unlocked:
            print(f"NOTE: {unlocked} run pairs ran without the exclusive bench lock "
                  "(held elsewhere for longer than --lock-wait)")
        results["unlocked_pairs"] = unlocked
        if a.json:
            with open(a.json, "w") as jf:
                json.dump(results, jf, indent=1)
            print(f"results written to {a.json}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
