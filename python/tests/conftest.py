# SPDX-License-Identifier: Apache-2.0
import os

import pytest

import auraio

DATA_SIZE = 1 << 20


@pytest.fixture
def engine():
    e = auraio.Engine(ring_count=1)
    yield e
    e.close()


@pytest.fixture
def data_file(tmp_path):
    """A 1 MiB file of random bytes: (path, content)."""
    content = os.urandom(DATA_SIZE)
    p = tmp_path / "data.bin"
    p.write_bytes(content)
    return str(p), content


@pytest.fixture
def rfd(data_file):
    fd = os.open(data_file[0], os.O_RDONLY)
    yield fd
    os.close(fd)


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def open_fds():
    return set(os.listdir("/proc/self/fd"))
