#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Run auraio's core benchmarks side by side with their peers and print medians and ratios.

Cases, each run alternately with its peer (the order flips every run) so drift hits both sides:
  a) 4 KiB buffered random reads from the page cache, 32 in flight, one thread:
     read_bench vs fio's io_uring engine (--invalidate=0, file pre-cached);
  b) 4 KiB O_DIRECT random reads at depth 1, both tools pinned with `taskset -c 0`, then
     `taskset -c 1`: IOPS, p50, p99. The check of issue #2: auraio within 10% of fio's IOPS for
     each pinning (failure-modes.md, "Completion delivery");
  c) NOPs in batches of 32: auraio's raw layer vs liburing (nop_bench alternates internally).

Every verdict is computed from the numbers measured in this run. Written for /usr/bin/python3
(3.11 on Debian 12), standard library only. Usage: bench/core/compare_fio.py [--quick] [--help].
"""

import argparse
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


def die(msg):
    print(f"compare_fio: {msg}", file=sys.stderr)
    sys.exit(1)


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if p.returncode != 0:
        die(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p.stdout


def parse_result(out):
    """The `RESULT key=value ...` line the C benchmarks print."""
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return dict(kv.split("=", 1) for kv in line.split()[1:])
    die(f"no RESULT line in:\n{out}")
    return {}


def build_type(build_dir):
    try:
        opts = json.loads(run(["meson", "introspect", "--buildoptions", build_dir]))
        return next(o["value"] for o in opts if o["name"] == "buildtype")
    except SystemExit:
        raise
    except Exception:  # meson missing or the dir is not a meson build: the binaries still say
        return "unknown"


def make_file(path, size):
    """Real (random) data, so nothing along the way can shortcut zero pages; then one full
    O_DIRECT read so the host's cache behind the virtio disk is as warm for every run."""
    chunk = 1 << 20
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(chunk, left)
            f.write(os.urandom(n))
            left -= n
        f.flush()
        os.fsync(f.fileno())
    run(["dd", f"if={path}", "of=/dev/null", "bs=1M", "iflag=direct"])


def precache(path):
    run(["dd", f"if={path}", "of=/dev/null", "bs=1M"])


def fio_cmd(path, depth, direct, seconds, name):
    return ["fio", f"--name={name}", f"--filename={path}", "--ioengine=io_uring", "--rw=randread",
            "--bs=4k", f"--iodepth={depth}", f"--direct={1 if direct else 0}", "--invalidate=0",
            f"--runtime={seconds}", "--time_based", "--norandommap", "--randrepeat=0",
            "--numjobs=1", "--lat_percentiles=1", "--output-format=json"]


def run_fio(cmd):
    j = json.loads(run(cmd))
    r = j["jobs"][0]["read"]
    pct = r["lat_ns"].get("percentile", {})
    return {"iops": float(r["iops"]),
            "p50_us": float(pct.get("50.000000", 0)) / 1000.0,
            "p99_us": float(pct.get("99.000000", 0)) / 1000.0}


def read_cmd(bench, path, depth, direct, seconds):
    cmd = [bench, f"--file={path}", f"--depth={depth}", f"--seconds={seconds}"]
    if direct:
        cmd.append("--direct")
    return cmd


def run_auraio(cmd):
    r = parse_result(run(cmd))
    return {"iops": float(r["iops"]), "p50_us": float(r["p50_us"]), "p99_us": float(r["p99_us"])}


def alternate(runs, fio, aur):
    """Run both `runs` times, flipping who goes first, and return the medians of each field."""
    fr, ar = [], []
    for i in range(runs):
        order = [("fio", fio), ("auraio", aur)] if i % 2 == 0 else [("auraio", aur), ("fio", fio)]
        for who, fn in order:
            res = fn()
            (fr if who == "fio" else ar).append(res)
            print(f"    run {i + 1} {who:6s} iops {res['iops']:>10.0f}  p50 {res['p50_us']:7.1f} us"
                  f"  p99 {res['p99_us']:7.1f} us", flush=True)
    med = lambda rs: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
    f, r = med(fr), med(ar)
    # Each pair ran back to back, so its ratio is the least disturbed by load that comes and goes.
    r["paired"] = statistics.median(x["iops"] / y["iops"] for x, y in zip(ar, fr) if y["iops"])
    # The peer's own run-to-run spread: when fio disagrees with itself by more than the 10% the
    # check allows, the machine was too busy for any verdict to mean much.
    f["spread"] = (max(x["iops"] for x in fr) - min(x["iops"] for x in fr)) / f["iops"] if f["iops"] else 0.0
    return f, r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build-bench"),
                    help="meson build dir holding bench/core/{read,nop}_bench (default: build-bench)")
    ap.add_argument("--size", default="1G", help="test file size, e.g. 1G, 256M (default 1G)")
    ap.add_argument("--dir", default=os.environ.get("TMPDIR", "/var/tmp"),
                    help="where the temp file goes; must be a disk file system for O_DIRECT")
    ap.add_argument("--file", help="use this existing file instead of creating one (it is read, never written)")
    ap.add_argument("--runs", type=int, default=5, help="runs per tool and case (default 5)")
    ap.add_argument("--seconds", type=float, default=3, help="seconds per run (default 3)")
    ap.add_argument("--cases", default="abc", help="subset of a, b, c (default abc)")
    ap.add_argument("--quick", action="store_true", help="CI smoke: 64 MiB, 1 run of 1 s each (< 20 s)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a verdict is FAIL")
    a = ap.parse_args()
    if a.quick:
        a.size, a.runs, a.seconds = "64M", 1, 1

    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    size = int(a.size[:-1]) * mult[a.size[-1].upper()] if a.size[-1].upper() in mult else int(a.size)
    read_bench = os.path.join(a.build_dir, "bench", "core", "read_bench")
    nop_bench = os.path.join(a.build_dir, "bench", "core", "nop_bench")
    for b in (read_bench, nop_bench):
        if not os.access(b, os.X_OK):
            die(f"{b} not built: meson setup {a.build_dir} --buildtype=release && ninja -C {a.build_dir}")
    for tool in ("fio", "taskset", "dd"):
        if not shutil.which(tool):
            die(f"{tool} not found")
    seconds = a.seconds if a.seconds != int(a.seconds) else int(a.seconds)

    bt = build_type(a.build_dir)
    print(f"build type: {bt} ({a.build_dir})")
    print(f"fio: {run(['fio', '--version']).strip()}, kernel {os.uname().release}, {os.cpu_count()} CPUs")
    print(f"runs: {a.runs} per tool per case, {seconds} s each, order alternating; medians reported")
    if bt not in ("release", "unknown"):
        print(f"WARNING: build type {bt}; doc/benchmarks.md quotes release builds")
    print(f"load average at start: {open('/proc/loadavg').read().split()[0]}")
    t0 = time.time()

    tmp = None
    path = a.file
    if not path:
        tmp = tempfile.mkdtemp(prefix="auraio-bench-", dir=a.dir)
        path = os.path.join(tmp, "data")
        print(f"creating {size >> 20} MiB test file in {tmp} and warming it with dd iflag=direct ...", flush=True)
        make_file(path, size)
    rows = []
    verdicts = []
    try:
        if "a" in a.cases:
            precache(path)
            fc = fio_cmd(path, 32, False, seconds, "cached")
            ac = read_cmd(read_bench, path, 32, False, seconds)
            print("\n(a) 4 KiB cached random reads, 32 in flight, 1 thread")
            print("    fio:    " + " ".join(fc))
            print("    auraio: " + " ".join(ac))
            f, r = alternate(a.runs, lambda: run_fio(fc), lambda: run_auraio(ac))
            rows.append(("(a) cached 4K randread QD32", f, r))
        if "b" in a.cases:
            for cpu in (0, 1):
                if cpu >= (os.cpu_count() or 1):
                    break
                fc = ["taskset", "-c", str(cpu)] + fio_cmd(path, 1, True, seconds, "direct")
                ac = ["taskset", "-c", str(cpu)] + read_cmd(read_bench, path, 1, True, seconds)
                print(f"\n(b) 4 KiB O_DIRECT random reads, depth 1, taskset -c {cpu}")
                print("    fio:    " + " ".join(fc))
                print("    auraio: " + " ".join(ac))
                f, r = alternate(a.runs, lambda: run_fio(fc), lambda: run_auraio(ac))
                rows.append((f"(b) O_DIRECT 4K randread QD1 cpu{cpu}", f, r))
                ratio = r["iops"] / f["iops"] if f["iops"] else 0.0
                note = (f"; fio's own spread {f['spread']:.0%} > 20%: machine busy, verdict unreliable"
                        if f["spread"] > 0.20 else f"; fio's own spread {f['spread']:.0%}")
                verdicts.append((f"depth-1 O_DIRECT, taskset -c {cpu}: auraio/fio IOPS {ratio:.3f} (>= 0.90), "
                                 f"paired {r['paired']:.3f}{note}", ratio >= 0.90))
        nop = None
        if "c" in a.cases:
            nc = [nop_bench, "--quick"] if a.quick else [nop_bench, f"--runs={a.runs}"]
            print("\n(c) NOPs, batches of 32: " + " ".join(nc))
            out = run(nc)
            sys.stdout.write("".join("    " + l + "\n" for l in out.splitlines()))
            nop = parse_result(out)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n## Results (build type {bt}; medians of {a.runs} run(s), {seconds} s each)\n")
    print("| case | fio IOPS | auraio IOPS | auraio/fio | median of paired ratios | fio p50/p99 us | auraio p50/p99 us |")
    print("|---|---|---|---|---|---|---|")
    for name, f, r in rows:
        ratio = r["iops"] / f["iops"] if f["iops"] else 0.0
        print(f"| {name} | {f['iops']:.0f} | {r['iops']:.0f} | {ratio:.3f} | {r['paired']:.3f}"
              f" | {f['p50_us']:.1f} / {f['p99_us']:.1f}"
              f" | {r['p50_us']:.1f} / {r['p99_us']:.1f} |")
    if nop:
        lib = float(nop["nop_liburing"])
        print(f"| (c) NOP batch 32 (ops/s) | liburing {lib:.0f} | {float(nop['nop_auraio']):.0f} | "
              f"{float(nop['ratio']):.3f} (vs liburing) | {float(nop['paired_ratio']):.3f} | - | - |" if lib else
              f"| (c) NOP batch 32 (ops/s) | liburing skipped | {float(nop['nop_auraio']):.0f} | - | - | - | - |")
    print()
    failed = False
    for text, ok in verdicts:
        label = "PASS" if ok else "FAIL"
        if a.quick:
            label += " (smoke: 1 short run, not a measurement)"
        print(f"{label}: {text}")
        failed |= not ok
    print(f"load average at end: {open('/proc/loadavg').read().split()[0]}; total time {time.time() - t0:.0f} s")
    return 1 if (failed and a.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
