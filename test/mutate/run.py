#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Mutation testing for lib/: does the suite catch small, realistic bugs?

Each mutant in mutants.toml is one exact text edit of one file under lib/. The script copies the
tree (tracked and untracked-but-not-ignored files, as they are in the working tree) into a scratch
directory, configures one build there, checks that the chosen tests pass on the unmutated copy,
then for each mutant: applies the edit to the scratch copy, rebuilds incrementally, runs the tests
with a wall-clock limit, restores the file. The working tree is only read. A mutant is

  killed        a test failed or timed out (the suite caught the bug);
  survived      every test passed (the suite misses this bug), unless it is marked equivalent;
  equivalent    survived, and mutants.toml says why no test can tell it from the original;
  build-failed  the edit does not compile (a broken mutant, not counted in the score).

Score = killed / (killed + survived); equivalent and build-failed mutants are left out. An edit
whose text is not found exactly once in its file (someone changed the code) is a hard error, never
"survived": fix the mutant's `find` text. doc/testing.md explains the list and the survivors.

Usage: test/mutate/run.py [--subset ci] [--only ID,...] [--lock FILE] [--workdir DIR] [--check]
"""
import argparse
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# A full run tests each mutant with the suites that exercise its file (below) plus its own `tests`;
# the CI subset runs only its own `tests`. Left out everywhere: the slow scenario and stress tests,
# the throttle suite (needs root and a block device) and the consumer builds.
INTEGRATION = ['io', 'lifecycle', 'registered', 'threads', 'uring', 'select', 'adaptive', 'cq_budget',
               'destroy_race', 'waiters', 'ops', 'chains', 'deadlines', 'bounds', 'nomalloc', 'thread_exit']
CONTROLLER = ['test_histogram', 'test_controller_unit', 'test_controller_rings', 'test_controller_memory']
SUITES_OF_FILE = {
    'lib/api.c': INTEGRATION + ['options'],
    'lib/api_buffer.c': ['pool', 'pool-stress', 'registered'],
    'lib/buffer_pool.c': ['pool', 'pool-stress', 'registered', 'nomalloc'],
    'lib/controller.c': CONTROLLER + ['adaptive', 'bounds'],
    'lib/engine.c': INTEGRATION + ['fault', 'fault-ops'],
    'lib/histogram.c': CONTROLLER + ['adaptive', 'metrics'],
    'lib/histogram.h': CONTROLLER + ['adaptive', 'metrics'],
    'lib/options.c': ['options', 'request', 'io', 'header-c'],
    'lib/registration.c': ['registered', 'fault'],
    'lib/ring.c': INTEGRATION + ['fault', 'fault-ops'],
    'lib/select.c': INTEGRATION,
    'lib/tick.c': CONTROLLER + ['adaptive', 'bounds', 'io', 'metrics'],
    'lib/uring.c': INTEGRATION + ['fault'],
    'lib/uring_sys.c': INTEGRATION + ['fault'],
    'lib/version.c': ['options', 'request', 'header-c'],
    'lib/exit_guard.c': ['thread_exit'],
    'lib/ops.c': ['ops', 'chains', 'deadlines', 'fault-ops', 'io', 'lifecycle', 'bounds'],
    'lib/api_ops.c': ['ops', 'chains', 'deadlines', 'fault-ops'],
    'lib/log.c': ['log', 'fault'],
    'lib/metrics.c': ['metrics', 'prom', 'metrics_edges'],
    'lib/metrics.h': ['metrics', 'prom', 'metrics_edges'],
    'lib/request.h': INTEGRATION + ['fault', 'fault-ops'],
    'lib/ring.h': INTEGRATION + ['fault', 'fault-ops'],
    'lib/metrics_prom.c': ['metrics', 'prom', 'metrics_edges'],
    'lib/metrics_http.c': ['http'],
}
DEFAULT_SUITES = INTEGRATION + CONTROLLER + ['options', 'request', 'fault', 'pool']


def tests_for(m, subset, own_tests=False):
    if subset == 'ci' or own_tests:
        return list(m['tests'])
    return sorted(set(SUITES_OF_FILE.get(m['file'], DEFAULT_SUITES)) | set(m['tests']))


# Meson's per-test timeouts (30-120 s) are for sanitizer and valgrind runs; a plain build that
# needs half of one is hung.
TIMEOUT_MULTIPLIER = '0.5'
MESON_OPTIONS = ['-Dbuildtype=debugoptimized', '-Dbench=disabled', '-Dexamples=false', '-Dwerror=false']


class AnchorError(Exception):
    pass


def load_mutants(path):
    with open(path, 'rb') as f:
        data = tomllib.load(f)
    mutants = data.get('mutant', [])
    seen = set()
    for m in mutants:
        for key in ('id', 'file', 'find', 'replace', 'why'):
            if key not in m:
                raise SystemExit(f'mutants.toml: mutant {m.get("id", "?")} has no "{key}"')
        if m['id'] in seen:
            raise SystemExit(f'mutants.toml: duplicate id {m["id"]}')
        seen.add(m['id'])
        if not m['file'].startswith('lib/'):
            raise SystemExit(f'mutants.toml: {m["id"]}: only files under lib/ are mutated')
        if m['find'] == m['replace']:
            raise SystemExit(f'mutants.toml: {m["id"]}: find and replace are the same text')
    return mutants


def check_anchor(root, m):
    """The file's text with the mutant applied; AnchorError unless `find` occurs exactly once."""
    path = os.path.join(root, m['file'])
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read()
    except FileNotFoundError:
        raise AnchorError(f'{m["id"]}: {m["file"]} does not exist')
    n = text.count(m['find'])
    if n != 1:
        what = 'not found' if n == 0 else f'found {n} times'
        raise AnchorError(f'{m["id"]}: the text to mutate is {what} in {m["file"]}; the code changed, '
                          f'update test/mutate/mutants.toml:\n    {m["find"]!r}')
    return text, text.replace(m['find'], m['replace'], 1)


def sync_tree(src, dst):
    """Copy the files git knows of (tracked, or untracked and not ignored) from src into dst. Files
    whose content is unchanged keep their mtime, so a reused scratch build stays incremental."""
    out = subprocess.run(['git', '-C', src, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                         check=True, capture_output=True).stdout
    for rel in filter(None, out.decode().split('\0')):
        s = os.path.join(src, rel)
        if not os.path.isfile(s):
            continue  # deleted in the working tree but still in the index
        d = os.path.join(dst, rel)
        with open(s, 'rb') as f:
            data = f.read()
        try:
            with open(d, 'rb') as f:
                if f.read() == data:
                    continue
        except FileNotFoundError:
            os.makedirs(os.path.dirname(d), exist_ok=True)
        with open(d, 'wb') as f:
            f.write(data)
        shutil.copymode(s, d)


class Lock:
    """A shared flock on FILE around each build and test run, so benchmarks (exclusive) interleave."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666) if path else None

    def __enter__(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_SH)

    def __exit__(self, *exc):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            # flock has no queue: without a pause our next LOCK_SH can win against a waiting
            # LOCK_EX every time, and a benchmark would wait for the whole run.
            time.sleep(0.2)


def run(cmd, timeout=None, **kw):
    """Run cmd in its own process group; on timeout kill the whole group. (rc, output, timed_out)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, **kw)
    try:
        out, _ = p.communicate(timeout=timeout)
        return p.returncode, out.decode(errors='replace'), False
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return -1, out.decode(errors='replace'), True
    except BaseException:  # interrupted (SIGINT, SIGTERM): leave no test running behind us
        os.killpg(p.pid, signal.SIGKILL)
        raise


def kill_strays(build):
    """Kill test processes still running from @p build: when the wall-clock limit kills meson, the
    tests it started in their own sessions would live on (a hung mutant never exits). Only
    processes whose executable lies inside the scratch build are touched, by pid."""
    prefix = os.path.realpath(build) + os.sep
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            exe = os.readlink(f'/proc/{pid}/exe')
        except OSError:
            continue
        if exe.startswith(prefix):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


class Targets:
    """Which ninja targets (outputs relative to the build dir) the named tests depend on."""

    def __init__(self, build):
        def introspect(what):
            return json.loads(subprocess.run(['meson', 'introspect', what, build], check=True,
                                             capture_output=True).stdout)
        self.build = build
        self.tests = {t['name']: t for t in introspect('--tests')}
        self.outputs = {t['id']: t['filename'] for t in introspect('--targets')}

    def of(self, names):
        missing = [n for n in names if n not in self.tests]
        if missing:
            raise SystemExit(f'no such meson test(s) in the scratch build: {", ".join(missing)}')
        targets = set()
        for n in names:
            for dep in self.tests[n].get('depends', []):
                for path in self.outputs.get(dep, []):
                    targets.add(os.path.relpath(path, self.build))
        return sorted(targets)


def failed_tests(build):
    """Names of the tests in the last meson test log that did not pass."""
    bad = []
    try:
        with open(os.path.join(build, 'meson-logs', 'testlog.json')) as f:
            for line in f:
                r = json.loads(line)
                if r.get('result') not in ('OK', 'EXPECTEDFAIL', 'SKIP'):
                    bad.append(f'{r["name"]}:{r["result"]}'.replace('TIMEOUT', 'timeout').replace('FAIL', 'fail'))
    except FileNotFoundError:
        pass
    return bad


def build_and_test(build, targets, tests, timeout, lock, verbose=False):
    """(status, detail): status is 'ok', 'build-failed', 'failed', 'flaky' or 'timeout'. The lock
    is taken for the build and for each test run separately, so a benchmark can get in between."""
    with lock:
        rc, out, _ = run(['ninja', '-C', build] + targets)
    if rc != 0:
        err = [ln for ln in out.splitlines() if 'error' in ln]
        return 'build-failed', (err[0] if err else out[-300:]).strip()
    log = os.path.join(build, 'meson-logs', 'testlog.json')
    if os.path.exists(log):
        os.unlink(log)
    with lock:
        rc, out, timed_out = run(['meson', 'test', '-C', build, '--no-rebuild', '--print-errorlogs',
                                  '--timeout-multiplier', TIMEOUT_MULTIPLIER] + tests, timeout=timeout)
    if timed_out:
        kill_strays(build)
    if verbose and rc != 0:
        print('\n'.join('    | ' + ln for ln in out.splitlines()[-60:]))
    if timed_out:
        return 'timeout', ' '.join(failed_tests(build)) or f'no result within {timeout:.0f} s'
    if rc != 0:
        bad = failed_tests(build)
        if any(b.endswith(':timeout') for b in bad):
            return 'timeout', ' '.join(bad)  # a hang is the mutant's, not chance: no second run
        # A kill must reproduce: the failed tests run once more on the same build. One that passes
        # then failed by chance (a loaded machine), which says nothing about the mutant.
        names = [b.split(' / ', 1)[1].rsplit(':', 1)[0] for b in bad if ' / ' in b]
        if names:
            with lock:
                rc2, _, timed_out2 = run(['meson', 'test', '-C', build, '--no-rebuild'] + names, timeout=timeout)
            if timed_out2:
                kill_strays(build)
            if rc2 == 0 and not timed_out2:
                return 'flaky', ' '.join(bad) + ' failed once, then passed'
        return 'failed', ' '.join(bad) or out[-300:].strip()
    return 'ok', ''


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--subset', choices=['all', 'ci'], default='all',
                    help='ci: only the mutants marked ci = true, each against its own tests')
    ap.add_argument('--only', help='comma-separated mutant ids')
    ap.add_argument('--own-tests', action='store_true',
                    help="run only each mutant's own `tests` (quick; a full run uses the file's suites)")
    ap.add_argument('--list', action='store_true', help='list the mutants and exit')
    ap.add_argument('--check', action='store_true',
                    help='only check that every mutant\'s text is found exactly once, then exit')
    ap.add_argument('--mutants', default=os.path.join(HERE, 'mutants.toml'))
    ap.add_argument('--workdir', help='scratch directory to use and keep (reused builds are incremental); '
                                      'default: a temporary directory, removed at the end')
    ap.add_argument('--lock', help='take a shared flock on this file around each build+test '
                                   '(e.g. /tmp/auraio-bench.lock)')
    ap.add_argument('--timeout', type=float, default=0,
                    help='seconds per mutant test run (default: 2 x the baseline run + 30)')
    ap.add_argument('--verbose', action='store_true', help='print the end of the test output of killed mutants')
    ap.add_argument('--min-score', type=float, default=0.0,
                    help='exit 1 when the score is below this fraction (the ci subset: any survivor fails)')
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))

    mutants = load_mutants(args.mutants)
    if args.list:
        for m in mutants:
            tag = ' [ci]' if m.get('ci') else ''
            tag += ' [equivalent]' if m.get('equivalent') else ''
            print(f'{m["id"]:32} {m["file"]:22} {m["why"]}{tag}')
        print(f'{len(mutants)} mutants')
        return 0

    chosen = mutants
    if args.subset == 'ci':
        chosen = [m for m in mutants if m.get('ci')]
    if args.only:
        ids = args.only.split(',')
        unknown = set(ids) - {m['id'] for m in mutants}
        if unknown:
            raise SystemExit(f'unknown mutant id(s): {", ".join(sorted(unknown))}')
        chosen = [m for m in mutants if m['id'] in ids]

    # Anchors first, against the working tree: a stale mutant is an error, before any build.
    errors, stale_elsewhere = [], []
    for m in mutants:
        try:
            check_anchor(ROOT, m)
        except AnchorError as e:
            (errors if m in chosen else stale_elsewhere).append(str(e))
    if args.check:
        errors += stale_elsewhere
        stale_elsewhere = []
    for e in stale_elsewhere:
        print(f'WARNING (not run now): {e}')
    if errors:
        for e in errors:
            print(f'ERROR: {e}', file=sys.stderr)
        return 2
    if args.check:
        print(f'all {len(mutants)} mutant anchors found exactly once')
        return 0

    if args.workdir:
        work = os.path.abspath(args.workdir)
        if work == ROOT or work.startswith(ROOT + os.sep):
            raise SystemExit('--workdir must be outside the working tree (it is never touched)')
        os.makedirs(work, exist_ok=True)
    else:
        work = tempfile.mkdtemp(prefix='auraio-mutate-')
    src = os.path.join(work, 'src')
    build = os.path.join(work, 'build')
    os.makedirs(src, exist_ok=True)
    lock = Lock(args.lock)
    t_start = time.monotonic()
    try:
        sync_tree(ROOT, src)
        with lock:
            cmd = ['meson', 'setup', build, src] + MESON_OPTIONS
            if os.path.exists(os.path.join(build, 'build.ninja')):
                cmd.insert(2, '--reconfigure')
            rc, out, _ = run(cmd)
        if rc != 0:
            print(out)
            raise SystemExit('meson setup of the scratch copy failed')

        tests_of = {m['id']: tests_for(m, args.subset, args.own_tests) for m in chosen}
        all_tests = sorted({t for ts in tests_of.values() for t in ts})
        known = Targets(build)
        targets_of = {m['id']: known.of(tests_of[m['id']]) for m in chosen}
        targets = sorted({t for ts in targets_of.values() for t in ts})

        print(f'== baseline: {len(all_tests)} tests on the unmutated copy in {work}', flush=True)
        for attempt in range(3):  # a shared machine may fail a timing test by chance
            t0 = time.monotonic()
            status, detail = build_and_test(build, targets, all_tests, None, lock)
            base_s = time.monotonic() - t0
            if status == 'ok':
                break
            print(f'   baseline attempt {attempt + 1}: {status}: {detail}', flush=True)
        if status != 'ok':
            raise SystemExit(f'baseline is not green ({status}: {detail}); mutants would be "killed" by it')
        print(f'   green in {base_s:.1f} s (build included)', flush=True)
        timeout = args.timeout or 2 * base_s + 30

        results = []
        for i, m in enumerate(chosen, 1):
            path = os.path.join(src, m['file'])
            original, mutated = check_anchor(src, m)
            with open(path, 'w', encoding='utf-8') as f:
                f.write(mutated)
            t0 = time.monotonic()
            try:
                status, detail = build_and_test(build, targets_of[m['id']], tests_of[m['id']], timeout, lock,
                                                args.verbose)
            finally:
                with open(path, 'w', encoding='utf-8') as f:
                    f.write(original)
            secs = time.monotonic() - t0
            if status in ('failed', 'timeout'):
                verdict = 'killed'
            elif status == 'build-failed':
                verdict = 'build-failed'
            elif status == 'flaky':
                verdict = 'equivalent' if m.get('equivalent') else 'survived'
                detail = 'not a kill: ' + detail
            else:
                verdict = 'equivalent' if m.get('equivalent') else 'survived'
            if verdict == 'killed' and m.get('equivalent'):
                detail += '  (marked equivalent, but a test tells it apart: fix mutants.toml)'
            results.append((m, verdict, detail, secs))
            print(f'[{i:2}/{len(chosen)}] {verdict.upper():12} {m["id"]:32} {secs:5.1f}s  {m["file"]}: {m["why"]}',
                  flush=True)
            if detail:
                print(f'{"":19}{detail[:300]}', flush=True)
            if verdict == 'equivalent':
                print(f'{"":19}equivalent: {m["equivalent"]}', flush=True)
    finally:
        kill_strays(build)
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    count = {v: sum(1 for r in results if r[1] == v) for v in ('killed', 'survived', 'equivalent', 'build-failed')}
    scored = count['killed'] + count['survived']
    score = count['killed'] / scored if scored else 1.0
    print()
    print('| file | mutants | killed | survived | equivalent | build-failed |')
    print('|---|---|---|---|---|---|')
    for f in sorted({r[0]['file'] for r in results}):
        rs = [r for r in results if r[0]['file'] == f]
        cells = [str(sum(1 for r in rs if r[1] == v)) for v in ('killed', 'survived', 'equivalent', 'build-failed')]
        print(f'| {f} | {len(rs)} | ' + ' | '.join(cells) + ' |')
    print(f'| total | {len(results)} | {count["killed"]} | {count["survived"]} | {count["equivalent"]} | '
          f'{count["build-failed"]} |')
    print()
    for m, v, _, _ in results:
        if v == 'survived':
            print(f'SURVIVED: {m["id"]} ({m["file"]}): {m["why"]}')
    minutes = (time.monotonic() - t_start) / 60
    print(f'mutation score: {count["killed"]}/{scored} = {100 * score:.1f}% '
          f'({count["equivalent"]} equivalent, {count["build-failed"]} build-failed, {minutes:.1f} min)')
    if args.subset == 'ci' and (count['survived'] or count['build-failed']):
        print('FAILED: a CI mutant survived or does not build: a test stopped biting')
        return 1
    if score < args.min_score:
        print(f'FAILED: score below {100 * args.min_score:.0f}%')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
