# SPDX-License-Identifier: Apache-2.0
"""The sdist carries every C source: it builds and imports in a fresh virtual environment, away
from the repository."""
import os
import subprocess
import sys
import tarfile

import pytest

PYDIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sdist_installs_into_a_fresh_venv(tmp_path):
    if not os.path.exists(os.path.join(PYDIR, "..", "lib", "engine.c")):
        pytest.skip("not in the repository")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(dist)], cwd=PYDIR, check=True,
                   capture_output=True)
    (sdist,) = dist.glob("auraio-*.tar.gz")
    names = tarfile.open(sdist).getnames()
    for needed in ("_vendor/lib/engine.c", "_vendor/include/auraio.h", "_vendor/bffio/workload.c",
                   "csrc/pyauraio.c", "build_ffi.py", "src/auraio/py.typed"):
        assert any(n.endswith(needed) for n in names), needed
    # Unpack away from the repository: nothing may reach ../lib.
    tarfile.open(sdist).extractall(tmp_path / "src")
    (srcdir,) = (tmp_path / "src").iterdir()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-index", str(srcdir)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    code = ("import auraio, os; e = auraio.Engine(ring_count=1); b = bytearray(16);"
            "fd = os.open(os.__file__, os.O_RDONLY); print(auraio.__version__, e.read(fd, b, 0).result(5)); e.close()")
    r = subprocess.run([py, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[1] == "16"
    assert str(venv) in subprocess.run([py, "-c", "import auraio; print(auraio.__file__)"], capture_output=True,
                                       text=True, cwd=tmp_path).stdout
