# SPDX-License-Identifier: Apache-2.0
"""examples/python/ run and do what they say."""
import filecmp
import os
import subprocess
import sys

import pytest

EX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "python")


def run(*args, cwd=None):
    if not os.path.isdir(EX):
        pytest.skip("no examples next to the tests")
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_quickstart(data_file):
    out = run(os.path.join(EX, "quickstart.py"), data_file[0])
    assert "read 64 bytes" in out and "[128, 128, 128, 128, 128, 128, 128, 128]" in out
    assert f"{len(data_file[1])} bytes" in out and "No such file" in out


def test_async_copy_copies_every_file(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"f{i}").write_bytes(os.urandom(i * 7919))
    out = run(os.path.join(EX, "async_copy.py"), str(src), str(tmp_path / "dst"), "--jobs", "8", "--chunk", "4k")
    assert "copied 40 files" in out
    match, mismatch, errors = filecmp.cmpfiles(src, tmp_path / "dst", [f"f{i}" for i in range(40)], shallow=False)
    assert len(match) == 40 and not mismatch and not errors


def test_depth_sweep_saves_plots(tmp_path):
    pytest.importorskip("matplotlib")
    out = run(os.path.join(EX, "depth_sweep.py"), "--file", str(tmp_path / "f"), "--size", "8m", "--runtime",
              "0.2s", "--direct", "0", "--depths", "1,4", "--out", str(tmp_path / "s.png"), cwd=tmp_path)
    assert "auto" in out and "self-tuned: depth" in out
    for name in ("s.png", "s-timeline.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
