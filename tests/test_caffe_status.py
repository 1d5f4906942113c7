"""digits.caffe_status: what the web process knows of real Caffe, read from the file `make install` writes
(tools/caffe/build.py), never by importing caffe."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from digits import caffe_status


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A site-packages folder of our own for the status file."""
    monkeypatch.setattr(caffe_status, "site_packages", lambda: str(tmp_path))
    return tmp_path


def write_status(site, **status) -> None:
    (site / caffe_status.STATUS_FILE).write_text(json.dumps(status))


def test_no_status_file_means_not_built(site):
    assert caffe_status.read_status()["available"] is False
    assert caffe_status.unavailable_reason() == caffe_status.NOT_BUILT


def test_a_recorded_failure_gives_its_reason(site):
    write_status(site, available=False, reason="the compile failed (exit 2)", expected=True)
    assert caffe_status.unavailable_reason() == "the compile failed (exit 2)"


def test_a_recorded_build_that_is_there_is_available(site, tmp_path):
    package = tmp_path / "cache" / "site" / "caffe"
    package.mkdir(parents=True)
    (package / "_caffe.so").write_bytes(b"\x7fELF")
    write_status(site, available=True, reason="", path=str(tmp_path / "cache" / "site"))
    assert caffe_status.unavailable_reason() is None


def test_a_recorded_build_that_was_deleted_is_not_available(site, tmp_path):
    write_status(site, available=True, reason="", path=str(tmp_path / "gone" / "site"))
    reason = caffe_status.unavailable_reason()
    assert reason is not None and "is gone" in reason and "make install" in reason


def test_turned_off_is_never_expected(monkeypatch):
    monkeypatch.setenv("DIGITS_CAFFE", "off")
    assert caffe_status.build_expected() == (False, "turned off with DIGITS_CAFFE=off")


def test_the_status_is_read_without_importing_caffe():
    code = (
        "import sys; from digits import caffe_status; caffe_status.unavailable_reason(); caffe_status.build_expected();"
        "print(sorted(m for m in sys.modules if m == 'caffe' or m.startswith(('caffe.', 'torch'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
