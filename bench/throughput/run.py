#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bffio against fio, case by case, on the same file in the same run (issue #14's throughput suite).

Each case runs RUNS times with each tool, the order flipping every run so drift hits both; the
RUNS pairs of a case hold the exclusive bench lock (/tmp/auraio-bench.lock) together. Medians, ratios and the
verdicts of issue #14's "Checked by" are computed from this run's numbers only:
  - O_DIRECT 4 KiB randread at fixed iodepth 1 and 32: bffio >= 0.95x fio's IOPS
  - cached 4 KiB randread at iodepth 32: bffio >= 1.3x fio
  - adaptive (no iodepth) >= 0.95x the IOPS of fio's best fixed depth of the sweep (1, 8, 16, 32,
    64, 128), with P99 no worse than 1.25x that depth's P99
The randread sweep and the adaptive case all run with the same ramp_time for both tools
(--sweep-ramp, 2 s: long enough for the controller's climb, so the check compares the depth it
settles at with fio's depths, each measured after the same warm-up). The adaptive case is also run
with the other cases' 0.5 s ramp, climb included in its numbers, and reported without a verdict.
Then hyperfine measures the whole-command cost of a tiny job (start-up and teardown) for both.

Usage: bench/throughput/run.py [--bffio PATH] [--runs 5] [--seconds 3] [--size 512M] [--quick]
       [--json OUT.json] [--cases substring,...] [--lock-wait S] [--one-lock] [--sweep-depths 1,8,...]
       [--sweep-ramp S]
Standard library only (Debian 12's python3).
"""

import argparse
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LOCK = "/tmp/auraio-bench.lock"
RAMP_S = 0.5  # every case but the randread sweep and adaptive: fio's stats reset after it
SWEEP_DEPTHS = (1, 8, 16, 32, 64, 128)


def die(msg):
    print(f"throughput: {msg}", file=sys.stderr)
    sys.exit(1)


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        die(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p.stdout


def find_bffio(path):
    for cand in [path, os.path.join(REPO, "build-rel/bench/bffio/bffio"), os.path.join(REPO, "build/bench/bffio/bffio")]:
        if cand and os.access(cand, os.X_OK):
            return cand
    die("no bffio binary: build it (meson setup build-rel --buildtype=release; ninja -C build-rel) or pass --bffio")
    return None


def make_file(path, size):
    chunk = 1 << 20
    with open(path, "wb") as f:
        for _ in range(size // chunk):
            f.write(os.urandom(chunk))
        f.flush()
        os.fsync(f.fileno())
    # one full O_DIRECT read so the host cache behind the virtio disk is as warm for every run
    run(["dd", f"if={path}", "of=/dev/null", "bs=1M", "iflag=direct", "status=none"])


def precache(path):
    run(["dd", f"if={path}", "of=/dev/null", "bs=1M", "status=none"])


def summarise(js):
    """IOPS (all directions), P50/P99/P99.9 of total latency over reads (or writes), depth."""
    jobs = js["jobs"]
    iops = sum(j["read"]["iops"] + j["write"]["iops"] for j in jobs)
    bw = sum(j["read"]["bw_bytes"] + j["write"]["bw_bytes"] for j in jobs)
    j = jobs[0]
    d = "read" if j["read"]["total_ios"] else "write"
    pct = j[d]["lat_ns"].get("percentile") or j[d]["clat_ns"].get("percentile", {})
    out = {"iops": iops, "bw": bw, "p50": pct.get("50.000000", 0) / 1e3, "p99": pct.get("99.000000", 0) / 1e3,
           "p999": pct.get("99.900000", 0) / 1e3}
    if "auraio" in j:
        a = j["auraio"]
        out["depth"] = a["final_depth"]
        if a["mode"] == "adaptive":
            out["converge_s"] = a["converge_s"]
            out["depth_trace_100ms"] = a["depth_trace_100ms"]
    return out


def one(tool, bffio, args, seconds, ramp=RAMP_S):
    common = ["--output-format=json", f"--runtime={seconds}", "--time_based", f"--ramp_time={ramp}",
              "--lat_percentiles=1"]
    if tool == "bffio":
        cmd = [bffio, "--eta=never"] + args + common
    else:
        cmd = ["fio"] + [a for a in args if not a.startswith("--target")] + common
        if not any(a.startswith("--ioengine") for a in args):
            cmd.append("--ioengine=io_uring")
        if not any(a.startswith("--iodepth") for a in args):
            cmd.append("--iodepth=1")
    return summarise(json.loads(run(cmd)))


def acquire(lockf, wait_s):
    """The exclusive bench lock, waiting up to wait_s. Returns False when it could not be had (a
    long-running job may hold the shared lock for an hour); the pair then runs unlocked and the
    report says how many did."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def median(runs, key):
    vals = [r[key] for r in runs if key in r]
    return statistics.median(vals) if vals else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bffio")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--size", default="512M")
    ap.add_argument("--quick", action="store_true",
                    help="1 run of 1 s per case, a 64 MiB file, no bench lock (a smoke test inside meson test, "
                         "which may itself run under the shared lock)")
    ap.add_argument("--json", help="write the results here as JSON as well")
    ap.add_argument("--lock-wait", type=float, default=60,
                    help="seconds to wait for the exclusive bench lock before running a pair unlocked")
    ap.add_argument("--cases", help="comma-separated substrings: run only matching cases")
    ap.add_argument("--one-lock", action="store_true",
                    help="hold the exclusive lock once for every case (when other benchmarks hold it for minutes "
                         "at a time, a gap per case may never come)")
    ap.add_argument("--sweep-depths", default=",".join(map(str, SWEEP_DEPTHS)),
                    help="fixed depths of the 4 KiB randread sweep (default 1,8,16,32,64,128)")
    ap.add_argument("--sweep-ramp", type=float, default=2.0,
                    help="ramp_time of the randread sweep and adaptive cases, both tools (default 2 s)")
    a = ap.parse_args()
    if a.quick:
        a.runs, a.seconds, a.size, a.sweep_ramp = 1, 1, "64M", RAMP_S
    if not shutil.which("fio"):
        print("throughput: fio is not installed (apt-get install fio): nothing to compare with")
        return 77
    bffio = find_bffio(a.bffio)
    size = int(a.size[:-1]) << {"K": 10, "M": 20, "G": 30}[a.size[-1].upper()] if a.size[-1].isalpha() else int(a.size)
    tmpdir = os.environ.get("TMPDIR") or "/var/tmp"
    d = tempfile.mkdtemp(prefix="bffio-throughput-", dir=tmpdir)
    path = os.path.join(d, "data")
    try:
        print(f"bffio: {bffio}\nfio: {run(['fio', '--version']).strip()}\nfile: {path} ({a.size}), "
              f"{a.runs} runs x {a.seconds} s per tool and case, alternating order; ramp_time {a.sweep_ramp} s "
              f"for the randread sweep and adaptive cases, {RAMP_S} s for the others")
        make_file(path, size)
        f = f"--filename={path}"
        rr = ["--name=t", f, "--rw=randread", "--bs=4k"]
        cases = []
        for direct in (0, 1):
            kind = "direct" if direct else "cached"
            extra = [f"--direct={direct}"] + ([] if direct else ["--invalidate=0"])
            for qd in map(int, a.sweep_depths.split(",")):
                cases.append((f"{kind} 4k randread qd{qd}", rr + extra + [f"--iodepth={qd}"], None, a.sweep_ramp))
            cases.append((f"{kind} 4k randread adaptive", rr + extra, f"{kind} 4k randread qd", a.sweep_ramp))
            if a.sweep_ramp != RAMP_S:
                cases.append((f"{kind} 4k randread adaptive ramp{RAMP_S}", rr + extra, f"{kind} 4k randread qd",
                              RAMP_S))
        cases += [
            ("direct 128k seqread qd8", ["--name=t", f, "--rw=read", "--bs=128k", "--direct=1", "--iodepth=8"],
             None, RAMP_S),
            ("direct 4k randwrite fsync=32 qd8",
             ["--name=t", f, "--rw=randwrite", "--bs=4k", "--direct=1", "--fsync=32", "--iodepth=8"], None, RAMP_S),
            ("direct 4k randrw 70/30 qd16",
             ["--name=t", f, "--rw=randrw", "--rwmixread=70", "--bs=4k", "--direct=1", "--iodepth=16"], None,
             RAMP_S),
            ("direct 4k randread numjobs=2 qd16",
             ["--name=t", f, "--rw=randread", "--bs=4k", "--direct=1", "--iodepth=16", "--numjobs=2",
              "--group_reporting"], None, RAMP_S),
        ]
        if a.cases:
            want = a.cases.split(",")
            cases = [c for c in cases if any(w in c[0] for w in want)]
        results = {}
        unlocked_pairs = [0]
        lockf = open(LOCK if not a.quick else os.devnull, "a+" if not a.quick else "r")
        held = a.one_lock and acquire(lockf, a.lock_wait)
        if a.one_lock and not held:
            unlocked_pairs[0] += a.runs * len(cases)
        def run_case(name, args, ramp):
            b_runs, f_runs = [], []
            # One hold of the lock per case (about a minute): on a machine where builds and tests
            # take the shared lock all the time, waiting for a gap once per run pair starves.
            locked = a.one_lock or acquire(lockf, a.lock_wait)
            unlocked_pairs[0] += 0 if locked else a.runs
            try:
                for i in range(a.runs):
                    if "cached" in name:
                        precache(path)
                    order = ["bffio", "fio"] if i % 2 == 0 else ["fio", "bffio"]
                    for tool in order:
                        if tool == "fio" and "adaptive" in name:
                            continue  # compared with fio's best fixed depth of the sweep instead
                        r = one(tool, bffio, args, a.seconds, ramp)
                        (b_runs if tool == "bffio" else f_runs).append(r)
            finally:
                if not a.one_lock:
                    fcntl.flock(lockf, fcntl.LOCK_UN)
            res = {"bffio": {k: median(b_runs, k) for k in ("iops", "bw", "p50", "p99", "p999", "depth", "converge_s")},
                   "bffio_runs": b_runs, "fio_runs": f_runs, "ramp_time": ramp}
            if f_runs:
                res["fio"] = {k: median(f_runs, k) for k in ("iops", "bw", "p50", "p99", "p999")}
            results[name] = res
            fb = res.get("fio", {}).get("iops", 0)
            print(f"  {name:36s} bffio {res['bffio']['iops']:>10.0f} IOPS p99 {res['bffio']['p99']:8.0f} us"
                  + (f"   fio {fb:>10.0f} IOPS p99 {res['fio']['p99']:8.0f} us   ratio {res['bffio']['iops'] / fb:5.2f}x"
                     if fb else f"   (depth {res['bffio']['depth']:.0f}, converged after "
                                f"{res['bffio']['converge_s']:.1f} s, ramp {ramp} s)"), flush=True)

        for name, args, _, ramp in cases:
            run_case(name, args, ramp)
        # Adaptive against fio's best fixed depth of the same run.
        for name, _, sweep, _ in cases:
            if not sweep:
                continue
            best = max((n for n in results if n.startswith(sweep)), key=lambda n: results[n]["fio"]["iops"],
                       default=None)
            if best:
                results[name]["fio_best"] = {"case": best, **results[best]["fio"]}
        # The same comparison with the P99 it implies set as the target: without one the controller
        # holds its own knee (issue #9), which on a CPU-bound device can be 2x fio's best IOPS at a
        # deeper queue's P99; with one it must find a depth that meets fio's best P99 x 1.25.
        for name, args, sweep, ramp in list(cases):
            r = results.get(name)
            if not sweep or not r or "fio_best" not in r or ramp != a.sweep_ramp:
                continue
            target_us = 1.25 * r["fio_best"]["p99"]
            tname = f"{name} p99 target {target_us:.0f}us"
            run_case(tname, args + [f"--target-p99={target_us:.1f}us"], ramp)
            results[tname]["fio_best"] = r["fio_best"]
            cases.append((tname, args, sweep, ramp))
        checks = []

        def check(label, name, ok, detail):
            checks.append({"check": label, "case": name, "pass": ok, "detail": detail})

        def ratio(name):
            r = results.get(name)
            return r["bffio"]["iops"] / r["fio"]["iops"] if r and r.get("fio", {}).get("iops") else None

        for name, need in [("direct 4k randread qd1", 0.95), ("direct 4k randread qd32", 0.95),
                           ("cached 4k randread qd32", 1.3)]:
            x = ratio(name)
            if x is not None:
                check(f"{name} >= {need}x fio", name, x >= need, f"{x:.2f}x")
        for name in [n for n in results if n.startswith(("direct 4k randread adaptive", "cached 4k randread adaptive"))
                     and (n.endswith("adaptive") or " p99 target " in n)]:
            r = results.get(name)
            if r and "fio_best" in r:
                fb = r["fio_best"]
                x = r["bffio"]["iops"] / fb["iops"]
                p = r["bffio"]["p99"] / fb["p99"] if fb["p99"] else float("inf")
                check(f"{name} >= 0.95x fio best fixed ({fb['case'].split()[-1]}), P99 <= 1.25x", name,
                      x >= 0.95 and p <= 1.25,
                      f"IOPS {x:.2f}x ({r['bffio']['iops']:.0f} vs {fb['iops']:.0f}), P99 {p:.2f}x "
                      f"({r['bffio']['p99']:.0f} vs {fb['p99']:.0f} us) (depth {r['bffio']['depth']:.0f}, "
                      f"converged after {r['bffio']['converge_s']:.1f} s; ramp {r['ramp_time']} s for both tools)")
        # Whole-command cost of a tiny job: start-up and teardown.
        hf = shutil.which("hyperfine")
        startup = None
        if hf:
            out = os.path.join(d, "hf.json")
            tiny = f"--name=s --filename={path} --size=1m --io_size=64k --rw=randread --bs=4k --iodepth=1"
            unlocked_pairs[0] += not (held or acquire(lockf, a.lock_wait))
            try:
                run([hf, "-N", "--warmup", "3", "--runs", str(max(10, a.runs * 4)), "--export-json", out,
                     f"{bffio} --eta=never --output=/dev/null {tiny}",
                     f"fio --output=/dev/null --ioengine=io_uring {tiny}"])
            finally:
                fcntl.flock(lockf, fcntl.LOCK_UN)
            h = json.load(open(out))["results"]
            startup = {"bffio_ms": h[0]["median"] * 1e3, "fio_ms": h[1]["median"] * 1e3}
            print(f"  whole command, tiny job (hyperfine medians): bffio {startup['bffio_ms']:.1f} ms, "
                  f"fio {startup['fio_ms']:.1f} ms, ratio {startup['bffio_ms'] / startup['fio_ms']:.2f}x")
        else:
            print("  (hyperfine not installed: whole-command cost skipped)")
        print()
        print(f"{'case':38s} {'bffio IOPS':>11s} {'fio IOPS':>11s} {'ratio':>6s} {'bffio P99':>10s} {'fio P99':>9s}")
        for name, r in results.items():
            fio = r.get("fio") or r.get("fio_best")
            label = name if "fio" in r else f"{name} (fio: best fixed)"
            print(f"{label:38s} {r['bffio']['iops']:11.0f} {fio['iops'] if fio else 0:11.0f} "
                  f"{(r['bffio']['iops'] / fio['iops']) if fio and fio['iops'] else 0:6.2f} "
                  f"{r['bffio']['p99']:8.0f}us {fio['p99'] if fio else 0:7.0f}us")
        print()
        if unlocked_pairs[0]:
            print(f"NOTE: {unlocked_pairs[0]} run pairs could not get the exclusive bench lock within "
                  f"{a.lock_wait:.0f} s and ran beside other work (alternation still applies to both tools)")
        for c in checks:
            print(f"CHECK {'PASS' if c['pass'] else 'FAIL'}: {c['check']}: {c['detail']}")
        if a.json:
            with open(a.json, "w") as jf:
                json.dump({"runs": a.runs, "seconds": a.seconds, "size": a.size, "cases": results,
                           "checks": checks, "startup": startup, "unlocked_pairs": unlocked_pairs[0], "time": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                       time.gmtime())}, jf,
                          indent=1)
            print(f"results written to {a.json}")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
