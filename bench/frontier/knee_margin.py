#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""How sharply each capped run's knee was defined, beside what the checks said of the controller.

The knee under a cap is the smallest fixed depth within 5% of the best. Where the cap sits on the
device's own rate at some depth d (this disk reads ~22 K per request in flight at small depths, so
caps at 10%, 20% and 25% of ~220 K are its rates at depths 1, 2 and 2.5), depth d reads 0.90-0.97
of the best and which side of 0.95 it falls on is the disk's noise: the knee, the band, and
whether a held depth is "in" it move from run to run with no change in the controller. From the
raw outputs of `capped --cap C` (bench/frontier/results/capped-run*-cap*.txt) this prints, per
file: the knee, its x/best and its in-band share of windows (a fixed depth's own noise), the depth
below it and its x/best, the controller's held depth and the check's verdicts. A knee is called
a knife edge when the depth below reads within 2 eps of the line (>= 0.90) or the knee itself
within eps of it (<= 0.975 x best, under 2.5% above 0.95).

    bench/frontier/knee_margin.py bench/frontier/results/capped-run4[0-3]-cap*.txt
"""
import re
import sys

EPS = 0.05
FRONTIER = re.compile(r"FRONTIER under cap (\d+)[^\n]*\n depth[^\n]*\n((?:\s+\d+\s+\d+[^\n]*\n)+)")
POINT = re.compile(r"\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s+([\d.]+)\s+(\d+)%\s*(.*)")


def margin(text):
    """(cap, knee, knee x/best, knee in-band %, below, below x/best) or None."""
    m = FRONTIER.search(text)
    if not m:
        return None
    pts = []
    for line in m.group(2).splitlines():
        p = POINT.match(line)
        if p:
            pts.append((int(p.group(1)), float(p.group(3)), int(p.group(4)), "knee" in p.group(5)))
    knees = [i for i, p in enumerate(pts) if p[3]]
    if not knees:
        return None
    i = knees[0]
    below = pts[i - 1] if i > 0 else (0, 0.0, 0, False)
    return int(m.group(1)), pts[i][0], pts[i][1], pts[i][2], below[0], below[1]


def main(paths):
    if not paths:
        sys.exit(__doc__)
    print("%-24s %7s %4s %6s %5s %5s %6s %4s %5s %8s %8s" % ("file", "cap", "knee", "x/best", "band%", "below",
                                                              "x/best", "held", "edge", "verdict", "converge"))
    edges = total = conv_edge = conv_clear = 0
    for path in paths:
        with open(path) as f:
            text = f.read()
        k = margin(text)
        if not k:
            continue
        cap, knee, kx, kband, below, bx = k
        res = re.search(r"RESULT check=capped .*?held=(\d+).*?verdict=(\w+) converge=(\w+)", text)
        held, verdict, converge = res.groups() if res else ("?", "?", "?")
        edge = bx >= 1 - 2 * EPS or kx <= 1 - EPS / 2
        total += 1
        edges += edge
        if converge == "PASS":
            conv_edge += edge
            conv_clear += not edge
        name = re.sub(r".*/|\.txt$", "", path)
        print("%-24s %7d %4d %6.3f %5d %5s %6s %4s %5s %8s %8s" % (
            name, cap, knee, kx, kband, below or "-", "%.3f" % bx if below else "-", held,
            "yes" if edge else "no", verdict, converge))
    if total:
        print("knife edges: %d of %d knees; convergence passed at %d of %d knife edges, %d of %d clear knees"
              % (edges, total, conv_edge, edges, conv_clear, total - edges))


if __name__ == "__main__":
    main(sys.argv[1:])
