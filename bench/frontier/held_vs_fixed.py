#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""What the controller's held depth delivered, against the same depth run fixed.

The capped checks compare the controller's IOPS with the best fixed depth's, which mixes two
errors: holding the wrong depth, and a held depth delivering less than that depth does fixed
(the controller's rings, its ticks, its search's excursions). This separates them: from the raw
outputs of `capped --cap C` (bench/frontier/results/capped-run*-cap*.txt), every 200 ms window
after the first second whose four 50 ms limit samples show one depth d is divided by the fixed
depth d's IOPS from the same run's frontier. Prints the median ratio per file and per depth.

    bench/frontier/held_vs_fixed.py bench/frontier/results/capped-run1[5-9]-cap*.txt
"""
import re
import statistics
import sys

SAMPLES_PER_WINDOW = 4  # 200 ms windows, 50 ms limit samples
SKIP_WINDOWS = 5  # the first second: the search itself

LINES = r"((?:[ ]{4}\d+\.\d+s:[^\n]*\n)+)"
REP = re.compile(r"controller rep \d+:.*?limit every 50 ms[^\n]*\n" + LINES + r".*?windows of 200 ms[^\n]*\n" + LINES, re.S)
FRONTIER = re.compile(r"FRONTIER under cap (\d+)[^\n]*\n depth[^\n]*\n((?:\s+\d+\s+\d+[^\n]*\n)+)")


def values(block, conv):
    out = []
    for line in block.splitlines():
        out += [conv(v) for v in line.split(":", 1)[1].split()]
    return out


def held_windows(text):
    """(cap, [(depth, window IOPS / fixed IOPS)]) or None when the file has no frontier."""
    m = FRONTIER.search(text)
    if not m:
        return None
    fixed = {int(p[0]): float(p[1]) for p in (line.split() for line in m.group(2).splitlines())}
    ratios = []
    for rep in REP.finditer(text):
        limits = values(rep.group(1), int)
        windows = values(rep.group(2), lambda v: float(v.split("/")[0]) * 1000)
        for i, iops in enumerate(windows[SKIP_WINDOWS:], SKIP_WINDOWS):
            s = limits[SAMPLES_PER_WINDOW * i : SAMPLES_PER_WINDOW * (i + 1)]
            if len(s) == SAMPLES_PER_WINDOW and len(set(s)) == 1 and s[0] in fixed and fixed[s[0]] > 0:
                ratios.append((s[0], iops / fixed[s[0]]))
    return m.group(1), ratios


def main(paths):
    if not paths:
        sys.exit(__doc__)
    by_depth = {}
    every = []
    for path in sorted(paths):
        with open(path) as f:
            found = held_windows(f.read())
        if not found or not found[1]:
            continue
        cap, ratios = found
        every += [r for _, r in ratios]
        for d, r in ratios:
            by_depth.setdefault(d, []).append(r)
        depths = sorted({d for d, _ in ratios})
        print(f"{path}: cap {cap}, {len(ratios)} held windows at depths {depths}: "
              f"median held / fixed {statistics.median(r for _, r in ratios):.3f}")
    if not every:
        sys.exit("no held windows found")
    print(f"all: {len(every)} windows, median held / fixed {statistics.median(every):.3f}")
    for d in sorted(by_depth):
        print(f"  depth {d:4d}: {len(by_depth[d]):3d} windows, median {statistics.median(by_depth[d]):.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
