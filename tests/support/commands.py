"""The project's command-line entry points, run as a person runs them."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT
from tests.support.waiting import SHORT_S


def run_module(module: str, *args, stdin: str = "", env=None, timeout: float = SHORT_S) -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` from the checkout; its exit code, stdout and stderr (text)."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
