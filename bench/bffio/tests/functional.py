#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""bffio end to end: each rw mode moves the bytes it says (counted in the JSON and seen in the
file's content), loops / time_based / ramp_time / rate_iops are honoured, verify catches a block
corrupted behind its back, bad input exits 2 naming option and line and leaves no file, and the
JSON has fio's key set - compared against a JSON the real fio writes for the same job in this
run, when fio is installed. fio-style job files run through both tools unchanged.

Usage: functional.py BFFIO_BINARY JOBS_DIR [CASE...]   (only the named cases; temp files go to
$TMPDIR; exit 77 without io_uring)
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

BFFIO = sys.argv[1]
JOBS = sys.argv[2]
FAILS = []


def run(args, check=True, **kw):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def bffio_json(args, **kw):
    p = run([BFFIO, "--output-format=json", "--eta=never"] + args, **kw)
    return json.loads(p.stdout)


def case(fn):
    def wrapped(d):
        try:
            fn(d)
            print(f"ok   {fn.__name__}")
        except AssertionError as e:
            print(f"FAIL {fn.__name__}: {e}")
            FAILS.append(fn.__name__)
    wrapped.__name__ = fn.__name__
    return wrapped


def blocks(path, bs=4096):
    with open(path, "rb") as f:
        data = f.read()
    return [data[i:i + bs] for i in range(0, len(data), bs)]


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


@case
def rw_modes_move_their_bytes(d):
    size = 4 << 20
    for rw in ["read", "write", "randread", "randwrite", "rw", "randrw"]:
        path = os.path.join(d, f"f-{rw}")
        before = None
        for depth in ["--iodepth=4", None]:  # fixed and self-tuned
            if os.path.exists(path):
                before = blocks(path)
            args = [f"--name={rw}", f"--filename={path}", f"--size={size}", f"--rw={rw}", "--bs=4k"]
            if depth:
                args.append(depth)
            j = bffio_json(args)["jobs"][0]
            r, w = j["read"]["io_bytes"], j["write"]["io_bytes"]
            expect(r + w == size, f"{rw} {depth}: read {r} + write {w} != {size}")
            if rw in ("read", "randread"):
                expect(w == 0 and j["read"]["total_ios"] == size // 4096, f"{rw}: {j['read']['total_ios']} ios")
            if rw in ("write", "randwrite"):
                expect(r == 0, f"{rw}: read {r}")
                if before is not None:
                    # random map: every block written exactly once, so every block changed
                    after = blocks(path)
                    same = sum(1 for a, b in zip(before, after) if a == b)
                    expect(same == 0, f"{rw}: {same} of {len(after)} blocks unchanged after a full pass")
            if rw in ("rw", "randrw"):
                share = r / size
                expect(0.4 < share < 0.6, f"{rw}: read share {share:.2f}, rwmixread=50")
        data = open(path, "rb").read(1 << 20)
        expect(data.count(0) < len(data) // 16, f"{rw}: the file is mostly zeros (sparse layout?)")


@case
def loops_and_io_size(d):
    path = os.path.join(d, "loops")
    j = bffio_json(["--name=l", f"--filename={path}", "--size=1m", "--rw=read", "--loops=3", "--iodepth=2"])["jobs"][0]
    expect(j["read"]["io_bytes"] == 3 << 20, f"loops=3 read {j['read']['io_bytes']}")
    j = bffio_json(["--name=l", f"--filename={path}", "--size=1m", "--io_size=256k", "--rw=randread"])["jobs"][0]
    expect(j["read"]["io_bytes"] == 256 << 10, f"io_size=256k read {j['read']['io_bytes']}")


@case
def time_based_and_ramp(d):
    path = os.path.join(d, "tb")
    t0 = time.monotonic()
    j = bffio_json(["--name=t", f"--filename={path}", "--size=1m", "--rw=read", "--runtime=1", "--time_based",
                    "--iodepth=4"])["jobs"][0]
    wall = time.monotonic() - t0
    rt = j["read"]["runtime"]
    expect(900 <= rt <= 1200, f"time_based runtime=1: runtime {rt} ms")
    expect(j["read"]["io_bytes"] > 1 << 20, "time_based did not loop over the file")
    t0 = time.monotonic()
    j = bffio_json(["--name=t", f"--filename={path}", "--size=1m", "--rw=read", "--runtime=1", "--time_based",
                    "--ramp_time=1", "--iodepth=4"])["jobs"][0]
    wall = time.monotonic() - t0
    rt = j["read"]["runtime"]
    expect(900 <= rt <= 1200, f"ramp_time=1 runtime=1: measured runtime {rt} ms")
    expect(wall >= 2.0, f"ramp_time=1 runtime=1 took only {wall:.2f} s")


@case
def rate_iops_honoured(d):
    path = os.path.join(d, "rate")
    j = bffio_json(["--name=r", f"--filename={path}", "--size=4m", "--rw=randread", "--runtime=2", "--time_based",
                    "--rate_iops=500", "--iodepth=4"])["jobs"][0]
    iops = j["read"]["iops"]
    expect(450 <= iops <= 550, f"rate_iops=500: {iops:.0f} IOPS")


@case
def more_options_honoured(d):
    path = os.path.join(d, "more")
    j = bffio_json(["--name=b", f"--filename={path}", "--size=8m", "--rw=randread", "--bssplit=4k/50:64k/50",
                    "--iodepth=4"])["jobs"][0]
    n, b = j["read"]["total_ios"], j["read"]["io_bytes"]
    expect(8 << 20 <= b < (8 << 20) + (64 << 10), f"bssplit: {b} bytes")
    expect(150 < n < 400, f"bssplit 4k/50:64k/50 over 8 MiB: {n} I/Os (about 240 expected)")
    for dist in ["zipf:1.2", "pareto:0.9", "normal:20"]:
        j = bffio_json(["--name=z", f"--filename={path}", "--size=8m", "--rw=randread",
                        f"--random_distribution={dist}", "--iodepth=4"])["jobs"][0]
        expect(j["read"]["io_bytes"] == 8 << 20, f"random_distribution={dist}: {j['read']['io_bytes']} bytes")
    j = bffio_json(["--name=t", f"--filename={path}", "--size=8m", "--rw=randread", "--thinktime=10ms",
                    "--iodepth=1", "--runtime=1", "--time_based"])["jobs"][0]
    expect(j["read"]["iops"] <= 110, f"thinktime=10ms at depth 1: {j['read']['iops']:.0f} IOPS")
    j = bffio_json(["--name=r", f"--filename={path}", "--size=8m", "--rw=randread", "--rate=2m", "--iodepth=4",
                    "--runtime=2", "--time_based"])["jobs"][0]
    bw = j["read"]["bw_bytes"]
    expect(0.85 * (2 << 20) <= bw <= 1.15 * (2 << 20), f"rate=2m: {bw} B/s")
    p = run([BFFIO, "--eta=never", "--name=m", f"--filename={path}", "--size=8m", "--rw=randread",
             "--rate_iops=100", "--rate_min=1g", "--runtime=1", "--time_based"], check=False)
    expect(p.returncode == 1 and "rate_min" in p.stderr, f"rate_min not met: exit {p.returncode}: {p.stderr}")


@case
def log_files_in_fio_format(d):
    path = os.path.join(d, "logs")
    prefix = os.path.join(d, "lg")
    j = bffio_json(["--name=l", f"--filename={path}", "--size=4m", "--rw=randrw", "--iodepth=2", "--runtime=1",
                    "--time_based", f"--write_bw_log={prefix}", f"--write_iops_log={prefix}",
                    "--log_avg_msec=200"])["jobs"][0]
    for kind in ["bw", "iops"]:
        rows = [r.split(", ") for r in open(f"{prefix}_{kind}.1.log").read().splitlines()]
        expect(len(rows) >= 6 and all(len(r) == 5 for r in rows), f"{kind} log: {rows[:3]}")
        expect({r[2] for r in rows} == {"0", "1"}, f"{kind} log directions: {sorted({r[2] for r in rows})}")
        times = [int(r[0]) for r in rows]
        expect(times == sorted(times) and 150 <= times[0] <= 400, f"{kind} log times: {times[:4]}")
    j = bffio_json(["--name=l", f"--filename={path}", "--size=4m", "--rw=randread", "--iodepth=2", "--io_size=1m",
                    f"--write_lat_log={prefix}2"])["jobs"][0]
    for kind in ["clat", "lat", "slat"]:
        rows = open(f"{prefix}2_{kind}.1.log").read().splitlines()
        expect(len(rows) == j["read"]["total_ios"] == 256, f"{kind} log: {len(rows)} lines for "
               f"{j['read']['total_ios']} I/Os")
        expect(rows[0].endswith(", 0, 4096, 0"), f"{kind} log line: {rows[0]}")


@case
def verify_catches_corruption(d):
    path = os.path.join(d, "verify")
    common = ["--name=v", f"--filename={path}", "--size=2m", "--bs=4k", "--verify=crc32c"]
    run([BFFIO, "--eta=never"] + common + ["--rw=randwrite", "--iodepth=8"])
    p = run([BFFIO, "--eta=never"] + common + ["--rw=read"], check=False)
    expect(p.returncode == 0, f"clean read-back failed: {p.stderr}")
    bad = 37 * 4096
    fd = os.open(path, os.O_WRONLY)
    os.pwrite(fd, b"\xa5" * 100, bad + 200)
    os.close(fd)
    p = run([BFFIO, "--eta=never"] + common + ["--rw=read"], check=False)
    expect(p.returncode == 1, f"corrupt block: exit {p.returncode}")
    expect(f"offset {bad}" in p.stderr, f"message does not name offset {bad}: {p.stderr}")
    # verify_fatal=0 (fio's default): every bad block is named, the job reads on to the end and
    # fails when it ends; verify_fatal=1: it stops at the first one.
    bad_blocks = [37, 100, 411]
    fd = os.open(path, os.O_WRONLY)
    for b in bad_blocks:
        os.pwrite(fd, b"\x5a" * 64, b * 4096 + 1000)
    os.close(fd)
    p = run([BFFIO, "--eta=never", "--output-format=json"] + common + ["--rw=read", "--iodepth=4"], check=False)
    j = json.loads(p.stdout)["jobs"][0]
    named = [b for b in bad_blocks if f"offset {b * 4096} " in p.stderr]
    expect(p.returncode == 1 and named == bad_blocks and "verify: 3 bad blocks of 512 checked" in p.stderr,
           f"verify_fatal=0: exit {p.returncode}, named {named}: {p.stderr}")
    expect(j["read"]["io_bytes"] == 2 << 20 and j["error"] == 84, f"verify_fatal=0 read {j['read']['io_bytes']}, "
           f"error {j['error']}")
    p = run([BFFIO, "--eta=never", "--output-format=json", "--verify_fatal=1"] + common + ["--rw=read", "--iodepth=1"],
            check=False)
    j = json.loads(p.stdout)["jobs"][0]
    named = [b for b in bad_blocks if f"offset {b * 4096} " in p.stderr]
    expect(p.returncode == 1 and named == [37] and j["read"]["io_bytes"] <= 37 * 4096,
           f"verify_fatal=1: exit {p.returncode}, named {named}, read {j['read']['io_bytes']}: {p.stderr}")
    # md5 and the write job's own verify pass
    p = run([BFFIO, "--eta=never", "--name=m", f"--filename={path}", "--size=1m", "--rw=write", "--verify=md5"],
            check=False)
    expect(p.returncode == 0, f"md5 write+verify failed: {p.stderr}")


@case
def verify_backlog_every_n_writes(d):
    # 64 blocks written at depth 4: with verify_backlog=5 the job writes 5, drains, reads those 5
    # back, and so on; the 4 left at the end are read by the verify pass. The per-I/O log is in
    # completion order, so its direction column shows exactly that rhythm.
    path = os.path.join(d, "backlog")
    prefix = os.path.join(d, "bl")
    for backlog, rhythm in [(5, ([1] * 5 + [0] * 5) * 12 + [1] * 4 + [0] * 4), (None, [1] * 64 + [0] * 64)]:
        args = ["--name=b", f"--filename={path}", "--size=256k", "--bs=4k", "--rw=randwrite", "--iodepth=4",
                "--verify=crc32c", f"--write_lat_log={prefix}"] + ([f"--verify_backlog={backlog}"] if backlog else [])
        j = bffio_json(args)["jobs"][0]
        dirs = [int(r.split(", ")[2]) for r in open(f"{prefix}_clat.1.log").read().splitlines()]
        expect(dirs == rhythm, f"verify_backlog={backlog}: directions in completion order {dirs}")
        expect(j["read"]["total_ios"] == j["write"]["total_ios"] == 64 and j["error"] == 0,
               f"verify_backlog={backlog}: {j['read']['total_ios']} reads, {j['write']['total_ios']} writes")


@case
def wait_for_waits_for_that_job_only(d):
    # fio's wait_for: 'check' starts once 'fill' (random writes of verify blocks) has finished, so
    # its sequential verify read finds every block; 'late' also waits for 'fill' only, and runs
    # beside 'long' (3 s) instead of after it: one group, about 3 s in all rather than 5.
    sub = os.path.join(d, "wf")
    os.mkdir(sub)
    job = os.path.join(sub, "wf.fio")
    with open(job, "w") as f:
        f.write(f"""[global]
directory={sub}
bs=4k

[fill]
filename=filled
size=2m
rw=randwrite
verify=crc32c
do_verify=0
iodepth=4

[long]
filename=long
size=4m
rw=randread
time_based
runtime=3
iodepth=2

[check]
filename=filled
size=2m
rw=read
verify=crc32c
wait_for=fill
iodepth=1

[late]
filename=late
size=4m
rw=randread
time_based
runtime=2
wait_for=fill
iodepth=8
""")
    t0 = time.monotonic()
    p = run([BFFIO, "--output-format=json", "--eta=never", job], check=False)
    took = time.monotonic() - t0
    b = json.loads(p.stdout)
    js = {j["jobname"]: j for j in b["jobs"]}
    expect(js["check"]["read"]["io_bytes"] == 2 << 20 and js["check"]["error"] == 0,
           f"check read {js['check']['read']['io_bytes']} error {js['check']['error']}: it did not wait for fill")
    expect({j["groupid"] for j in b["jobs"]} == {0}, f"groups {[j['groupid'] for j in b['jobs']]}")
    # A clone's thread that exited while the others ran failed their reads with EFAULT in 4 runs
    # of 10 (its enters had submitted their SQEs; the kernel fails a request's task work once the
    # submitting task exits): clones now stay until every clone is done.
    expect(p.returncode == 0, f"exit {p.returncode}: {p.stderr}")
    expect(took < 4.2, f"took {took:.1f} s: 'late' waited for 'long' as well")
    # Several threads on one engine: a completion reaped by another thread is never negative.
    for j in b["jobs"]:
        for ddir in ("read", "write"):
            if j[ddir]["total_ios"]:
                expect(j[ddir]["clat_ns"]["max"] <= j[ddir]["lat_ns"]["max"],
                       f"{j['jobname']} {ddir}: clat max {j[ddir]['clat_ns']['max']} > lat max "
                       f"{j[ddir]['lat_ns']['max']}")
    trace = js["late"]["auraio"]["depth_trace_100ms"]
    expect(trace[0] == 4 + 2 and 2 + 8 in trace and max(trace) <= 2 + 1 + 8,
           f"fixed depths of the running jobs only: {trace}")


@case
def bad_input_exit_2_nothing_left(d):
    sub = os.path.join(d, "bad")
    os.mkdir(sub)
    job = os.path.join(sub, "bad.fio")
    with open(job, "w") as f:
        f.write(f"[global]\ndirectory={sub}\nsize=1m\n\n[first]\nrw=read\n\n[second]\nrw=read\nbs=4q\n")
    p = run([BFFIO, job], check=False)
    expect(p.returncode == 2, f"exit {p.returncode}")
    expect("bad.fio:10" in p.stderr and "'bs'" in p.stderr, f"message: {p.stderr}")
    expect(os.listdir(sub) == ["bad.fio"], f"files left: {os.listdir(sub)}")
    # An error after the first job laid out its file: the file this run created is removed.
    with open(job, "w") as f:
        f.write(f"[first]\nfilename={sub}/made\nsize=1m\n\n[second]\nfilename={sub}/no/such/dir/f\nsize=1m\n")
    p = run([BFFIO, job], check=False)
    expect(p.returncode == 1, f"exit {p.returncode}: {p.stderr}")
    expect(os.listdir(sub) == ["bad.fio"], f"files left after a run-time error: {os.listdir(sub)}")
    for args, opt in [(["--name=x", "--bogus=1"], "bogus"), (["--name=x", "--gtod_reduce=1"], "gtod_reduce"),
                      (["--name=x", "--ioengine=mmap"], "ioengine")]:
        p = run([BFFIO] + args, check=False)
        expect(p.returncode == 2 and f"'{opt}'" in p.stderr, f"{args}: exit {p.returncode}: {p.stderr}")


@case
def group_reporting_and_numjobs(d):
    path = os.path.join(d, "nj")
    base = ["--name=n", f"--filename={path}", "--size=2m", "--rw=randread", "--numjobs=2", "--iodepth=2"]
    js = bffio_json(base)["jobs"]
    expect(len(js) == 2 and all(j["read"]["io_bytes"] == 2 << 20 for j in js), "numjobs=2: two jobs of 2 MiB")
    js = bffio_json(base + ["--time_based", "--runtime=1"])["jobs"]
    expect(all(j["read"]["clat_ns"]["max"] <= j["read"]["lat_ns"]["max"] for j in js),
           f"numjobs=2: clat max {[j['read']['clat_ns']['max'] for j in js]} above lat max "
           f"{[j['read']['lat_ns']['max'] for j in js]}")
    js = bffio_json(base + ["--group_reporting"])["jobs"]
    expect(len(js) == 1 and js[0]["read"]["io_bytes"] == 4 << 20, "group_reporting: one entry of 4 MiB")


@case
def self_tuned_report(d):
    path = os.path.join(d, "st")
    j = bffio_json(["--name=s", f"--filename={path}", "--size=8m", "--rw=randread", "--runtime=1",
                    "--time_based"])["jobs"][0]
    a = j["auraio"]
    expect(a["mode"] == "adaptive" and a["final_depth"] >= 1, f"auraio object: {a}")
    expect(len(a["rings"]) == a["ring_count"] and a["rings"][0]["phase"], "per-ring record")
    p = run([BFFIO, "--eta=never", "--name=s", f"--filename={path}", "--size=8m", "--rw=randread", "--runtime=1",
             "--time_based", "--target-p99=5ms"])
    expect("self-tuned depth=" in p.stdout and "vs target 5.000ms" in p.stdout, f"text report:\n{p.stdout}")
    j = bffio_json(["--name=s", f"--filename={path}", "--size=8m", "--rw=randread", "--iodepth=3",
                    "--runtime=1", "--time_based"])["jobs"][0]
    expect(j["auraio"]["mode"] == "fixed" and j["auraio"]["iodepth"] == 3, "fixed depth record")
    expect(j["iodepth_level"]["2"] > 50.0, f"iodepth=3 depth levels: {j['iodepth_level']}")
    # A fixed depth is reported as the depth that ran (iodepth x numjobs), not the engine's queue
    # limit: final_depth, every point of the trace, the busy ring and the log's depth column.
    for qd, nj in [(32, 1), (3, 2)]:
        js = bffio_json(["--name=s", f"--filename={path}", "--size=8m", "--rw=randread", f"--iodepth={qd}",
                         f"--numjobs={nj}", "--runtime=1", "--time_based"])["jobs"]
        a = js[0]["auraio"]
        # The trace is the depth of the clones running at each tick: all of them until the first
        # finishes; the clones of a time-based run end within a tick or two of each other.
        t = a["depth_trace_100ms"]
        ended = [x for x in t if x != qd * nj]
        expect(a["final_depth"] == qd * nj and t and t[0] == qd * nj and t == sorted(t, reverse=True) and
               all(x % qd == 0 and x > 0 for x in t) and len(ended) <= 2,
               f"iodepth={qd} numjobs={nj}: final_depth {a['final_depth']}, trace {t}")
        expect(max(r["depth"] for r in a["rings"]) <= qd * nj, f"iodepth={qd} numjobs={nj}: rings {a['rings']}")
    expect(max(r["depth"] for r in a["rings"]) >= 1, f"ring depths {a['rings']}")
    p = run([BFFIO, "--eta=never", "--name=s", f"--filename={path}", "--size=8m", "--rw=randread", "--iodepth=32",
             "--runtime=1", "--time_based"])
    expect("depth=32 (fixed iodepth)" in p.stdout, f"summary line:\n{p.stdout[-300:]}")


def keyset(o, p=""):
    s = set()
    if isinstance(o, dict):
        for k, v in o.items():
            s.add(p + "." + k)
            if k in ("percentile", "bins", "job options", "global options", "auraio"):
                continue
            s |= keyset(v, p + "." + k)
    elif isinstance(o, list) and o:
        s |= keyset(o[0], p + "[]")
    return s


@case
def eta_line(d):
    path = os.path.join(d, "eta")
    p = run([BFFIO, "--eta=always", "--name=e", f"--filename={path}", "--size=4m", "--rw=randread", "--runtime=1",
             "--time_based"])
    expect("Jobs: 1 (f=1): [r]" in p.stdout and "[depth=" in p.stdout and "[eta 00m:0" in p.stdout,
           f"no ETA line in:\n{p.stdout[:400]}")
    p = run([BFFIO, "--eta=never", "--name=e", f"--filename={path}", "--size=4m", "--rw=randread", "--runtime=1",
             "--time_based"])
    expect("Jobs:" not in p.stdout, "--eta=never printed a progress line")


@case
def json_matches_fio(d):
    fio = shutil.which("fio")
    path = os.path.join(d, "cmp")
    job = ["--name=c", f"--filename={path}", "--size=4m", "--rw=randrw", "--bs=4k", "--iodepth=4",
           "--lat_percentiles=1", "--ioengine=io_uring"]
    for fmt in ["json", "json+"]:
        b = json.loads(run([BFFIO, f"--output-format={fmt}", "--eta=never"] + job).stdout)
        j = b["jobs"][0]
        for ddir in ["read", "write"]:
            pct = j[ddir]["clat_ns"]["percentile"]
            expect("99.900000" in pct and "1.000000" in pct, f"percentile keys: {list(pct)[:3]}")
            expect("percentile" in j[ddir]["lat_ns"], "lat_percentiles=1 puts percentiles in lat_ns")
            if fmt == "json+":
                bins = j[ddir]["clat_ns"]["bins"]
                expect(sum(bins.values()) == j[ddir]["total_ios"], "json+ bins count every I/O")
        if not fio:
            print("     (fio not installed: key set checked against the built-in list only)")
            continue
        f = json.loads(run([fio, f"--output-format={fmt}"] + job).stdout)
        kb, kf = keyset(b), keyset(f)
        missing = sorted(kf - kb)
        extra = sorted(k for k in kb - kf if "auraio" not in k)
        expect(not missing, f"{fmt}: keys fio has and bffio lacks: {missing[:10]}")
        expect(not extra, f"{fmt}: keys bffio has and fio lacks: {extra[:10]}")


@case
def fio_job_files_run_unchanged(d):
    fio = shutil.which("fio")
    os.environ["BFFIO_TEST_DIR"] = d
    for name in ["compat-randread.fio", "compat-mixed-groups.fio", "compat-seqwrite-fsync.fio"]:
        path = os.path.join(JOBS, name)
        b = json.loads(run([BFFIO, "--output-format=json", "--eta=never", path]).stdout)
        expect(len(b["jobs"]) >= 1 and all(j["error"] == 0 for j in b["jobs"]), f"{name}: bffio jobs failed")
        if fio:
            f = json.loads(run([fio, "--output-format=json", path]).stdout)
            expect([j["jobname"] for j in f["jobs"]] == [j["jobname"] for j in b["jobs"]],
                   f"{name}: job lists differ: fio {[j['jobname'] for j in f['jobs']]}")
            for fj, bj in zip(f["jobs"], b["jobs"]):
                # the same bytes in total (a random mix splits them by each tool's own dice)
                ft = fj["read"]["io_bytes"] + fj["write"]["io_bytes"]
                bt = bj["read"]["io_bytes"] + bj["write"]["io_bytes"]
                expect(ft == bt, f"{name}/{bj['jobname']}: bytes fio {ft} bffio {bt}")


def main():
    probe = run([BFFIO, "--parse-only", "--name=x"], check=False)
    if probe.returncode != 0:
        print(probe.stderr)
        return 1
    d = tempfile.mkdtemp(prefix="bffio-func-", dir=os.environ.get("TMPDIR"))
    try:
        p = run([BFFIO, "--eta=never", "--name=probe", f"--filename={d}/probe", "--size=64k"], check=False)
        if p.returncode != 0 and ("io_uring is unavailable" in p.stderr):
            print("skip: io_uring unavailable:", p.stderr.strip())
            return 77
        for t in [rw_modes_move_their_bytes, loops_and_io_size, time_based_and_ramp, rate_iops_honoured,
                  more_options_honoured, log_files_in_fio_format,
                  verify_catches_corruption, verify_backlog_every_n_writes, wait_for_waits_for_that_job_only,
                  bad_input_exit_2_nothing_left, group_reporting_and_numjobs,
                  self_tuned_report, eta_line, json_matches_fio, fio_job_files_run_unchanged]:
            if not sys.argv[3:] or t.__name__ in sys.argv[3:]:
                t(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"{len(FAILS)} failed" if FAILS else "all passed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
