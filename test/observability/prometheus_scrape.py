#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A real Prometheus server scrapes an engine doing I/O, then is queried through its HTTP API.

Starts metrics_load (an engine with /metrics on a free port) and `prometheus` (Debian's package)
on 127.0.0.1 with a 1 s scrape interval and a scratch TSDB. Prometheus asks for OpenMetrics first,
so the server's OpenMetrics output is what it parses (checked through its metadata API). Once a scrape of the idle engine is
stored, the engine runs cached reads for LOAD_S seconds, then stops and reports its lifetime
sample count and P99 (from its own 512-bucket histogram). Checks through /api/v1/query:
  - rate(auraio_ops_total{op="read"}[..]) over the load > 0;
  - once a scrape after the stop is stored (the stored _count equals the engine's count), that
    histogram_quantile(0.99, sum by (le) (auraio_request_latency_seconds_bucket)) lies inside the
    exposition bucket that holds the engine's P99: both are computed from the same samples, and
    each exposition bucket is a union of whole internal buckets, so this holds exactly - the
    histogram's resolution is the only difference.
Bounded in time (each wait has a deadline; the run takes about 15 s); stops everything it started.
Exit 77 when the prometheus binary is not installed.
Usage: prometheus_scrape.py METRICS_LOAD
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

SCRAPE_S = 1
LOAD_S = 6
DEADLINE_S = 30  # for each wait on Prometheus
# Exclusive upper bounds of the exposition's buckets in ns (lib/metrics_prom.c); le = bound - 1.
BOUNDS_NS = [5120, 10240, 24576, 49152, 98304, 253952, 507904, 1015808, 2490368, 4980736, 9961472,
             25165824, 50331648, 100663296, 251658240, 503316480, 1006632960, 2550136832,
             5100273664, 10200547328]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def scalar(base, expr):
    """The single value of expr, or None while there is none."""
    try:
        r = query(base, expr)
        return float(r[0]["value"][1]) if r else None
    except (OSError, RuntimeError, ValueError, KeyError, IndexError):
        return None


def wait_for(what, predicate, server, log):
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("prometheus exited: " + open(log).read()[-2000:])
        if predicate():
            return
        time.sleep(0.2)  # polling a server we do not control, under the deadline above
    raise RuntimeError(f"timed out after {DEADLINE_S} s waiting for {what}")


def bucket_span(ns):
    """[lower, upper] in seconds of the exposition bucket holding a latency of ns."""
    lower = 0
    for b in BOUNDS_NS:
        if ns < b:
            return lower / 1e9, (b - 1) / 1e9
        lower = b - 1
    return lower / 1e9, float("inf")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    prom = shutil.which("prometheus")
    if not prom:
        print("prometheus not installed (apt-get install prometheus): skipped")
        return 77
    work = tempfile.mkdtemp(prefix="auraio-prom-")
    log = os.path.join(work, "log")
    load = subprocess.Popen([sys.argv[1]], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    server = None
    try:
        line = load.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            print(f"metrics_load did not start: {line}")
            return 77 if load.wait(timeout=10) == 77 else 1
        cfg = os.path.join(work, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(f"global:\n  scrape_interval: {SCRAPE_S}s\n  scrape_timeout: {SCRAPE_S}s\n"
                    f"scrape_configs:\n  - job_name: auraio\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{line[1]}']\n")
        web = f"127.0.0.1:{free_port()}"
        server = subprocess.Popen([prom, f"--config.file={cfg}", f"--storage.tsdb.path={work}/data",
                                   f"--web.listen-address={web}", "--log.level=warn"],
                                  stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        base = f"http://{web}"
        count = 'sum(auraio_request_latency_seconds_count{job="auraio"})'
        # A scrape of the idle engine first, so the load is wholly inside the stored series.
        wait_for("a first scrape", lambda: scalar(base, count) == 0, server, log)
        load.stdin.write("go\n")
        load.stdin.flush()
        t0 = time.monotonic()
        wait_for("scrapes during the load", lambda: (scalar(base, count) or 0) > 0
                 and time.monotonic() - t0 >= LOAD_S, server, log)
        rate = scalar(base, f'sum(rate(auraio_ops_total{{op="read"}}[{LOAD_S}s]))')
        load.stdin.write("stop\n")
        load.stdin.flush()
        f = load.stdout.readline().split()
        if len(f) != 3 or f[0] != "stopped":
            print(f"metrics_load: {f}")
            return 1
        n, p99_ns = int(f[1]), int(f[2])
        wait_for("a scrape after the stop", lambda: scalar(base, count) == n, server, log)
        q99 = scalar(base, 'histogram_quantile(0.99, sum by (le) (auraio_request_latency_seconds_bucket{job="auraio"}))')
        errors = scalar(base, 'sum(auraio_errors_total{job="auraio"})')
        # Which format Prometheus negotiated: it keys metadata by family name, and only
        # OpenMetrics names the counter family "auraio_ops" (the text format says auraio_ops_total).
        url = base + "/api/v1/targets/metadata?" + urllib.parse.urlencode(
            {"match_target": '{job="auraio"}', "metric": "auraio_ops"})
        with urllib.request.urlopen(url, timeout=5) as r:
            meta = json.load(r).get("data", [])
        openmetrics = any(m.get("type") == "counter" for m in meta)
        lo, hi = bucket_span(p99_ns)
        print(f"format: {'OpenMetrics' if openmetrics else 'text 0.0.4'}; "
              f"rate(auraio_ops_total{{op=\"read\"}}[{LOAD_S}s]) = {rate:.0f}/s; {n} samples; "
              f"histogram_quantile(0.99) = {q99 * 1e6:.1f} us; the engine's P99 = {p99_ns / 1e3:.1f} us, "
              f"in the exposition bucket [{lo * 1e6:.3f}, {hi * 1e6:.3f}] us")
        ok = True
        if not (rate and rate > 0):
            print("FAIL: rate(auraio_ops_total) is not positive")
            ok = False
        if not openmetrics:
            print("FAIL: Prometheus (which asks for OpenMetrics first) did not get it")
            ok = False
        if errors != 0:
            print(f"FAIL: {errors} errors counted under a load without errors")
            ok = False
        if q99 is None or not lo <= q99 <= hi:
            print("FAIL: histogram_quantile outside the exposition bucket of the engine's P99")
            ok = False
        return 0 if ok else 1
    except RuntimeError as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
        if load.poll() is None:
            load.stdin.close()  # metrics_load exits at EOF
        for p in (server, load):
            if p is None:
                continue
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
