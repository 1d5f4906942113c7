"""A small real disk for tests of what happens when it is full: a tmpfs mounted for the test (root only)."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def small_disk(path, size: str = "2m") -> Iterator[str]:
    """Mount a tmpfs of `size` on path for the block; the test is skipped where that cannot be done."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    os.makedirs(path, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield str(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: str, keep: int = 0) -> str:
    """Write one file until the disk holding folder is full (less `keep` bytes given back); its path."""
    path = os.path.join(folder, "filler")
    with open(path, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    if keep:
        os.truncate(path, max(0, os.path.getsize(path) - keep))
    return path
