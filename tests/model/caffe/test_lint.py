"""House style: ruff lint and format are clean for the Caffe compiler, its networks' generator and tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PATHS = ["digits/model/caffe", "tests/model/caffe"]


def test_ruff_check_and_format():
    ruff = [sys.executable, "-m", "ruff"]
    subprocess.run([*ruff, "check", *PATHS], cwd=ROOT, check=True, capture_output=True)
    subprocess.run([*ruff, "format", "--check", *PATHS], cwd=ROOT, check=True, capture_output=True)


def test_modules_stay_small():
    for path in (ROOT / "digits" / "model" / "caffe").glob("*.py"):
        assert len(path.read_text().splitlines()) < 400, path.name
