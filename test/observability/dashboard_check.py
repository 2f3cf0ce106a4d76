#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The example Grafana dashboard uses only metrics the exporter exposes, and every query parses.

Each panel query's auraio_* names must be families of the exposition (prom_dump's output; histogram
series as <family>_bucket/_sum/_count), and each query, with Grafana's variables substituted, must
pass `promtool check rules` as a recording rule (PromQL syntax). Exit 77 only when promtool is not
installed and nothing else failed.
Usage: dashboard_check.py PROM_DUMP DASHBOARD_JSON
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile


def exprs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "expr" and isinstance(v, str):
                yield v
            else:
                yield from exprs(v)
    elif isinstance(node, list):
        for v in node:
            yield from exprs(v)


def main():
    dump = subprocess.run([sys.argv[1]], check=True, capture_output=True, text=True).stdout
    families = {}
    for line in dump.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            families[m.group(1)] = m.group(2)
    names = set()
    for fam, typ in families.items():
        names.add(fam)
        if typ == "histogram":
            names.update({fam + "_bucket", fam + "_sum", fam + "_count"})
    with open(sys.argv[2]) as f:
        dash = json.load(f)
    queries = list(exprs(dash))
    bad = 0
    if len(queries) < 10:
        print(f"only {len(queries)} queries in the dashboard")
        bad += 1
    for q in queries:
        for name in set(re.findall(r"\bauraio_[a-z0-9_]+", q)):
            if name not in names:
                print(f"unknown metric {name} in: {q}")
                bad += 1
    promtool = shutil.which("promtool")
    if promtool:
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write("groups:\n  - name: dashboard\n    rules:\n")
            for i, q in enumerate(queries):
                q = q.replace("$__rate_interval", "1m").replace("$instance", ".*")
                f.write(f"      - record: dashboard:query{i}\n        expr: {json.dumps(q)}\n")
            rules = f.name
        r = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True)
        os.unlink(rules)
        if r.returncode != 0:
            print("promtool check rules:", r.stdout, r.stderr)
            bad += 1
    print(f"{len(queries)} dashboard queries, {len(families)} exposed families: "
          f"{'OK' if not bad else f'{bad} problems'}{'' if promtool else ' (PromQL syntax unchecked: no promtool)'}")
    if bad:
        return 1
    return 0 if promtool else 77


if __name__ == "__main__":
    sys.exit(main())
