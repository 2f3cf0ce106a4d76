#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Planted bugs for the Python binding: does python/tests catch them?

Each mutant is one exact text edit of a file of the package (python/src/auraio/*.py, applied to
the installed copy in a scratch venv, no rebuild) or of its C half (python/csrc/*.c, applied to a
scratch copy of python/ and rebuilt). A mutant is killed when one of its tests fails or times out,
and survives when they all pass; an edit whose text is not found exactly once is an error. The
working tree is only read. test/mutate/run.py does the same for lib/.

Usage: /usr/bin/python3 test/python/mutate.py [--only ID,...] [--ci] [--workdir DIR]
--ci runs the mutants marked ci (Python-only ones, no rebuild: about a minute with the first
build). Not part of test/run-all.sh, to keep CI short; run it after changing the binding.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PYDIR = os.path.join(ROOT, "python")
TIMEOUT = 120

# (id, file relative to python/, find, replace, why, tests, ci)
MUTANTS = [
    ("keep-dropped", "src/auraio/_core.py",
     "        op = Operation(self, buf, cbuf, callback, None, what)\n",
     "        op = Operation(self, None, None, callback, None, what)\n",
     "a read does not hold its buffer: del + gc frees memory the kernel still writes",
     ["tests/test_lifetime_threads.py::test_dropped_buffer_lives_until_the_callback",
      "tests/test_lifetime_threads.py::test_dropped_buffer_lives_through_a_cancel"], True),
    ("keep-released-before-callback", "src/auraio/_core.py",
     "            try:\n                cb(self)\n            finally:\n                self._keep = None",
     "            self._keep = None\n            cb(self)",
     "the buffer goes before its callback ran",
     ["tests/test_lifetime_threads.py::test_dropped_buffer_lives_until_the_callback"], True),
    ("callback-exception-swallowed", "src/auraio/_core.py",
     "                    if exc is None:\n                        exc = e\n",
     "                    pass\n",
     "an exception raised in a callback is swallowed",
     ["tests/test_io.py::test_callback_exception_propagates_after_the_batch"], True),
    ("callback-exception-cuts-batch", "src/auraio/_core.py",
     "                try:\n                    op._complete(r)\n                except BaseException as e:\n"
     "                    if exc is None:\n                        exc = e\n",
     "                op._complete(r)\n",
     "a raising callback stops the delivery of the rest of its batch",
     ["tests/test_io.py::test_callback_exception_propagates_after_the_batch"], True),
    ("aio-cancel-not-forwarded", "src/auraio/aio.py",
     "        op.cancel()\n        raise\n", "        raise\n",
     "cancelling a task leaves its I/O in the kernel",
     ["tests/test_aio.py::test_cancellation_cancels_the_io_and_keeps_the_buffer"], True),
    ("aio-room-waiters-dropped", "src/auraio/aio.py",
     "                if not w.done():\n                    w.set_result(None)\n                    freed -= 1\n",
     "                freed -= 1\n",
     "tasks waiting for a free request slot are never woken",
     ["tests/test_aio.py::test_thousand_concurrent_reads_verified"], False),
    ("errors-no-subclasses", "src/auraio/_errors.py",
     "_SPECIAL = {_errno.ECANCELED: CancelledError, _errno.ETIME: DeadlineExceeded}",
     "_SPECIAL = {}",
     "ECANCELED/ETIME raise a plain OSError",
     ["tests/test_io.py::test_deadline_and_timer", "tests/test_io.py::test_error_mapping_table"], True),
    ("bench-series-p50-p99-swapped", "src/auraio/bench/__init__.py",
     "s.p50_ns / 1000.0 if s.p50_ns else None,\n                            s.p99_ns / 1000.0 if s.p99_ns else None",
     "s.p99_ns / 1000.0 if s.p99_ns else None,\n                            s.p50_ns / 1000.0 if s.p50_ns else None",
     "the series' P50 and P99 are swapped",
     ["tests/test_bench.py::test_result_objects_and_series"], False),
    ("shim-batch-no-refill", "csrc/pyauraio.c",
     "    submit_next(b);\n    member_done(b, 1);", "    member_done(b, 1);",
     "a batch never submits past its first window",
     ["tests/test_io.py::test_batch_window_keeps_depth_and_reads_everything"], False),
    ("shim-deadline-left-armed", "csrc/pyauraio.c",
     "auraio_set_next_timeout(pe->engine, 0);", "(void)0;",
     "a refused submission's deadline is used by the next request",
     ["tests/test_io.py::test_refused_submit_leaves_no_deadline_armed"], False),
    ("shim-batch-cancel-ignored", "csrc/pyauraio.c",
     "    atomic_store_explicit(&b->cancelled, true, memory_order_release);\n", "",
     "cancelling a batch leaves its unsubmitted members to run",
     ["tests/test_io.py::test_batch_cancel_stops_the_rest"], False),
]


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def install(venv, src):
    r = sh([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q", "--no-build-isolation", "--no-index",
            "--force-reinstall", "--no-deps", src])
    if r.returncode != 0:
        sys.exit(f"mutate: pip install {src} failed:\n{r.stdout}{r.stderr}")


def run_tests(venv, tests):
    try:
        r = subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                            *tests], cwd=PYDIR, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return "killed (timeout)"
    return "survived" if r.returncode == 0 else "killed"


def edit(path, find, replace):
    with open(path) as f:
        text = f.read()
    if text.count(find) != 1:
        sys.exit(f"mutate: the find text of a mutant occurs {text.count(find)} times in {path}")
    with open(path, "w") as f:
        f.write(text.replace(find, replace))
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only")
    ap.add_argument("--ci", action="store_true")
    ap.add_argument("--workdir")
    a = ap.parse_args()
    chosen = [m for m in MUTANTS if (not a.only or m[0] in a.only.split(",")) and (not a.ci or m[6])]
    work = a.workdir or tempfile.mkdtemp(prefix="auraio-pymut-")
    venv = os.path.join(work, "venv")
    if not os.path.exists(venv):
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", venv], check=True)
    src = os.path.join(work, "python")
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(PYDIR, src, ignore=shutil.ignore_patterns("build", "_vendor", "*.egg-info", "__pycache__"))
    # setup.py copies ../lib and friends: give the scratch copy a repository around it.
    for d in ("lib", "include"):
        shutil.rmtree(os.path.join(work, d), ignore_errors=True)
        shutil.copytree(os.path.join(ROOT, d), os.path.join(work, d))
    os.makedirs(os.path.join(work, "bench"), exist_ok=True)
    shutil.rmtree(os.path.join(work, "bench", "bffio"), ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "bench", "bffio"), os.path.join(work, "bench", "bffio"))
    shutil.copy2(os.path.join(ROOT, "LICENSE"), os.path.join(work, "LICENSE"))
    install(venv, src)
    pkg = sh([os.path.join(venv, "bin", "python"), "-c", "import auraio, os; print(os.path.dirname(auraio.__file__))"],
             cwd=work).stdout.strip()
    base = run_tests(venv, sorted({t for m in chosen for t in m[5]}))
    if base != "survived":
        sys.exit("mutate: the tests fail without any mutant")
    results = []
    for mid, rel, find, replace, why, tests, _ in chosen:
        if rel.startswith("src/auraio/"):
            path = os.path.join(pkg, rel[len("src/auraio/"):])
            orig = edit(path, find, replace)
            try:
                verdict = run_tests(venv, tests)
            finally:
                with open(path, "w") as f:
                    f.write(orig)
        else:
            path = os.path.join(src, rel)
            orig = edit(path, find, replace)
            try:
                install(venv, src)
                verdict = run_tests(venv, tests)
            finally:
                with open(path, "w") as f:
                    f.write(orig)
                install(venv, src)
        results.append((mid, verdict, why))
        print(f"{mid:32} {verdict:18} {why}", flush=True)
    killed = sum(v.startswith("killed") for _, v, _ in results)
    print(f"{killed} of {len(results)} mutants killed")
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if killed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
