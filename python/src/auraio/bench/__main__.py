# SPDX-License-Identifier: Apache-2.0
"""python -m auraio.bench [--json] [--target-p99 MS] [--plot FILE] job.fio ... : run fio job files
in-process and print fio's text report (or its JSON), like the bffio command."""
import argparse
import sys

from . import BenchError, Job, run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m auraio.bench", description=__doc__)
    ap.add_argument("jobs", nargs="+", help="fio job files")
    ap.add_argument("--json", action="store_true", help="print fio's JSON instead of the text report")
    ap.add_argument("--target-p99", type=float, default=None, metavar="MS",
                    help="P99 target in ms for jobs that set none")
    ap.add_argument("--plot", metavar="FILE", help="also save the depth/P99 timeline (PNG or SVG; matplotlib)")
    a = ap.parse_args(argv)
    status = 0
    for path in a.jobs:
        try:
            r = run(Job.from_file(path), target_p99=a.target_p99, check=False)
        except (OSError, BenchError) as e:
            print(f"auraio.bench: {path}: {e}", file=sys.stderr)
            return 2 if getattr(e, "status", 2) == 2 else 1
        sys.stdout.write(r.to_fio_json() + "\n" if a.json else r.text)
        if r.status:
            print(f"auraio.bench: {r.error}", file=sys.stderr)
            status = 1
        if a.plot:
            from .plot import timeline
            timeline(r, a.plot)
    return status


if __name__ == "__main__":
    sys.exit(main())
