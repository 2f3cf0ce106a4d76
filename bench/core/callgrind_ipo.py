#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Instructions per I/O under callgrind: a measure of the hot path that this noisy machine's clock
cannot blur (issue #11).

Each program runs twice under `valgrind --tool=callgrind` for a fixed number of I/Os (--ops N and
--ops 3N); the difference of the two runs divided by 2N is the steady-state cost of one I/O, with
startup, file setup and teardown cancelled out exactly. Printed per I/O:

  whole    every user-space instruction of the process
  library  instructions in libauraio plus what the library calls outside itself (libc: mutexes,
           clock_gettime, the syscall wrapper), excluding the application's callbacks

for read_bench (cached 4 KiB random reads through auraio_read at --depth in flight, one ring), the
same reads through a minimal liburing loop (read_liburing, the peer), and NOPs in batches of 32
through auraio's raw ring layer and through liburing (nop_bench). Kernel time is not counted:
callgrind sees user space only.

  bench/core/callgrind_ipo.py [--build-dir build-rel] [--ops 20000] [--single-issuer]
  bench/core/callgrind_ipo.py --budget 150   # exit 1 if read_bench's library instructions/IO > 150

Exit status: 0 ok, 1 over budget or a run failed, 77 valgrind missing (the test suite skips).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

LIB_OBJECT = "libauraio"  # the shared object's name (callgrind "ob=" lines)


def parse_callgrind(path):
    """Self cost per (object, function) and inclusive cost per call edge, from a callgrind output
    file written with Ir only. Returns (self_cost, calls): self_cost maps (ob, fn) -> Ir,
    calls maps ((ob, fn), (cob, cfn)) -> inclusive Ir of those calls."""
    names = {"ob": {}, "fn": {}, "cob": {}, "cfn": {}}
    self_cost = {}
    calls = {}
    ob = fn = cob = cfn = None
    pending_call = False

    def name(kind, text):
        # Compressed names: "(id) name" defines, "(id)" refers (ob/cob and fn/cfn share a table).
        table = "ob" if kind in ("ob", "cob") else "fn"
        m = re.match(r"\((\d+)\)(?: (.*))?$", text)
        if not m:
            return text
        if m.group(2) is not None:
            names[table][m.group(1)] = m.group(2)
        return names[table].get(m.group(1), text)

    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            head = line[0]
            if head.isdigit() or head in "+-*":
                fields = line.split()
                if len(fields) < 2:
                    continue
                cost = int(fields[1])
                if pending_call:
                    key = ((ob, fn), (cob or ob, cfn))
                    calls[key] = calls.get(key, 0) + cost
                    pending_call = False
                    cob = None  # a call's cob= holds for that call only
                else:
                    self_cost[(ob, fn)] = self_cost.get((ob, fn), 0) + cost
                continue
            key, _, value = line.partition("=")
            if key == "ob":
                ob = name("ob", value)
            elif key == "fn":
                fn = name("fn", value)
                cob = None
            elif key == "cob":
                cob = name("cob", value)
            elif key == "cfn":
                cfn = name("cfn", value)
            elif key == "calls":
                pending_call = True
            elif key in ("fl", "fi", "fe", "cfi", "cfl"):
                pass
    return self_cost, calls


def costs(path, app_object, app_functions=()):
    """(whole program Ir, library Ir, {function: inclusive Ir} for app_functions)."""
    self_cost, calls = parse_callgrind(path)
    whole = sum(self_cost.values())

    def in_lib(obj):
        return obj is not None and LIB_OBJECT in os.path.basename(obj)

    def in_app(obj):
        return obj is not None and os.path.basename(obj) == app_object

    # The library: its own instructions, plus calls it makes to anything that is neither the
    # library (counted as self cost already) nor the application (callbacks).
    lib = sum(c for (obj, _), c in self_cost.items() if in_lib(obj))
    for ((obj, _), (cobj, _)), c in calls.items():
        if in_lib(obj) and not in_lib(cobj) and not in_app(cobj):
            lib += c
    funcs = {}
    for want in app_functions:
        total = sum(c for (obj, fn), c in self_cost.items() if fn == want and in_app(obj))
        # Inclusive: self plus everything it calls (no recursion in these loops).
        total += sum(c for ((obj, fn), _), c in calls.items() if fn == want and in_app(obj))
        funcs[want] = total
    return whole, lib, funcs


NOP_BATCH = 32


def nop_bench_done(ops):
    """NOPs one side of `nop_bench --runs 1 --ops OPS` does: its warm-up pass, then 8 slices."""
    warm = ops // 10 + NOP_BATCH
    slice_ = ops // 8
    slice_ -= slice_ % NOP_BATCH
    return warm + 8 * slice_


def run_callgrind(cmd, out_dir, tag):
    out = os.path.join(out_dir, f"{tag}.cg")
    full = ["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out}"] + cmd
    p = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.stderr.write(f"failed ({p.returncode}): {' '.join(full)}\n{p.stdout}{p.stderr}")
        raise SystemExit(1)
    return out


def per_io(cmd_for_ops, ops, out_dir, tag, app_object, app_functions=(), done=lambda n: n):
    """Run at ops and 3*ops; return per-I/O (whole, library, functions). @p done maps the
    argument to the I/Os that run actually does."""
    a = costs(run_callgrind(cmd_for_ops(ops), out_dir, f"{tag}-1"), app_object, app_functions)
    b = costs(run_callgrind(cmd_for_ops(3 * ops), out_dir, f"{tag}-3"), app_object, app_functions)
    n = done(3 * ops) - done(ops)
    funcs = {k: (b[2][k] - a[2][k]) / n for k in app_functions}
    return (b[0] - a[0]) / n, (b[1] - a[1]) / n, funcs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--build-dir", default=os.path.join(here, "..", "..", "build-rel"))
    ap.add_argument("--ops", type=int, default=20000, help="I/Os of the shorter run (the longer does 3x)")
    ap.add_argument("--depth", type=int, default=32)
    ap.add_argument("--file", help="file to read (default: a temp file of --size MiB in the build dir)")
    ap.add_argument("--size", type=int, default=64, help="temp file size in MiB (default 64)")
    ap.add_argument("--single-issuer", action="store_true", help="both sides with SINGLE_ISSUER|DEFER_TASKRUN")
    ap.add_argument("--only-read", action="store_true", help="skip the peer and the NOP bench (the CI test)")
    ap.add_argument("--budget", type=float, help="fail if read_bench's library instructions/IO exceed this")
    args = ap.parse_args()

    if not shutil.which("valgrind"):
        print("valgrind not found: skipping")
        return 77
    core = os.path.join(args.build_dir, "bench", "core")
    read_bench = os.path.join(core, "read_bench")
    read_peer = os.path.join(core, "read_liburing")
    nop_bench = os.path.join(core, "nop_bench")
    if not os.path.exists(read_bench):
        print(f"{read_bench} not built (configure with -Dbench=enabled)")
        return 1

    with tempfile.TemporaryDirectory(dir=args.build_dir, prefix="callgrind-ipo-") as tmp:
        path = args.file
        if not path:
            path = os.path.join(tmp, "data")
            with open(path, "wb") as f:
                f.write(os.urandom(args.size << 20))
            with open(path, "rb") as f:  # into the page cache: the reads are cached reads
                while f.read(1 << 20):
                    pass
        common = ["--file", path, "--depth", str(args.depth)] + (["--single-issuer"] if args.single_issuer else [])

        rows = []
        # --lib-latency: the application work the peer does (no clock read per read), so "whole"
        # compares like with like; the library's count is the same either way.
        whole, lib, _ = per_io(lambda n: [read_bench] + common + ["--ops", str(n), "--lib-latency"], args.ops, tmp,
                               "read", "read_bench")
        rows.append(("read_bench (auraio_read)", whole, lib))
        if not args.only_read and os.path.exists(read_peer):
            pw, _, _ = per_io(lambda n: [read_peer] + common + ["--ops", str(n)], args.ops, tmp, "peer",
                              "read_liburing")
            rows.append(("read_liburing (peer)", pw, None))
        if not args.only_read and os.path.exists(nop_bench):
            # nop_bench runs both loops in one process; their inclusive costs split the work.
            nop_cmd = lambda n: [nop_bench, "--runs", "1", "--batch", str(NOP_BATCH), "--ops", str(n)] + (
                ["--single-issuer"] if args.single_issuer else [])
            _, _, funcs = per_io(nop_cmd, args.ops, tmp, "nop", "nop_bench", ("nop_auraio_run", "nop_liburing_run"),
                                 nop_bench_done)
            rows.append(("NOP batch 32, raw layer", funcs["nop_auraio_run"], None))
            if funcs.get("nop_liburing_run"):
                rows.append(("NOP batch 32, liburing", funcs["nop_liburing_run"], None))

    print(f"callgrind, instructions per I/O (user space), depth {args.depth}, {args.ops} and {3 * args.ops} I/Os,"
          f" build dir {os.path.relpath(args.build_dir)}{', single issuer' if args.single_issuer else ''}")
    print(f"{'program':<28} {'whole':>9} {'library':>9}")
    for name, whole, lib in rows:
        print(f"{name:<28} {whole:9.1f} {lib if lib is not None else float('nan'):9.1f}"
              if lib is not None else f"{name:<28} {whole:9.1f} {'-':>9}")
    lib = rows[0][2]
    print(f"RESULT read_library={lib:.1f} read_whole={rows[0][1]:.1f}"
          + "".join(f" {re.sub(r'[^a-z]+', '_', n.split(' (')[0].lower()).strip('_')}={w:.1f}" for n, w, _ in rows[1:]))
    if args.budget is not None:
        if lib > args.budget:
            print(f"FAIL: read_bench's library costs {lib:.1f} instructions per I/O, budget {args.budget:g}")
            return 1
        print(f"PASS: {lib:.1f} <= budget {args.budget:g} instructions per I/O")
    return 0


if __name__ == "__main__":
    sys.exit(main())
