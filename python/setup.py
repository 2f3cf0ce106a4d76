# SPDX-License-Identifier: Apache-2.0
"""Build glue for the cffi extension; the metadata is in pyproject.toml.

The C sources live outside this folder (../lib, ../include, ../bench/bffio). Building from the
repository, they are copied into _vendor/ first, so the sdist carries them and builds anywhere
with a C compiler and Python headers; building from an sdist, _vendor/ is already there.
"""
import os
import re
import shutil
import sys

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VENDOR = os.path.join(HERE, "_vendor")
BFFIO_FILES = ["job.h", "workload.h", "lathist.h", "files.h", "verify.h", "report.h", "logs.h",
               "job_parser.c", "units.c", "workload.c", "files.c", "lathist.c", "verify.c", "report.c", "logs.c"]


def vendor():
    """Copy the C sources from the repository, when we are in one."""
    lib = os.path.join(REPO, "lib")
    if not os.path.isfile(os.path.join(lib, "engine.c")) or not os.path.isfile(os.path.join(REPO, "include", "auraio.h")):
        return
    shutil.rmtree(VENDOR, ignore_errors=True)
    os.makedirs(os.path.join(VENDOR, "bffio"))
    shutil.copytree(lib, os.path.join(VENDOR, "lib"), ignore=shutil.ignore_patterns("meson.build"))
    shutil.copytree(os.path.join(REPO, "include"), os.path.join(VENDOR, "include"))
    for f in BFFIO_FILES:
        shutil.copy2(os.path.join(REPO, "bench", "bffio", f), os.path.join(VENDOR, "bffio", f))
    shutil.copy2(os.path.join(REPO, "LICENSE"), os.path.join(VENDOR, "LICENSE"))


def version():
    with open(os.path.join(VENDOR, "include", "auraio.h")) as f:
        m = re.search(r'#define AURAIO_VERSION_STRING "([^"]+)"', f.read())
    if not m:
        sys.exit("auraio.h has no AURAIO_VERSION_STRING")
    return m.group(1)


os.chdir(HERE)  # cffi and setuptools take the source paths relative to this folder
vendor()
if not os.path.isdir(VENDOR):
    sys.exit("auraio: no C sources (expected ../lib from the repository or _vendor/ from an sdist)")

ABI3 = os.environ.get("AURAIO_NO_ABI3") != "1"
setup(
    version=version(),
    cffi_modules=["build_ffi.py:ffi"],
    # One wheel for every CPython >= 3.9 (cffi builds the module against the limited API).
    options={"bdist_wheel": {"py_limited_api": "cp39"}} if ABI3 else {},
)
