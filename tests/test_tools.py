"""The command-line tools, run as a person runs them."""

import json
import os

from digits.formats.lmdb_io import LmdbReader
from tests.support.commands import run_module as run


def test_download_mnist_then_create_db_from_the_command_line(tmp_path):
    out = run("digits.download_data", "mnist", str(tmp_path / "mnist"), "--per-class", "4")
    assert out.returncode == 0, out.stderr
    for split in ("train", "test"):
        digits = sorted(os.listdir(tmp_path / "mnist" / split))
        assert digits == [str(d) for d in range(10)]
        assert all(len(os.listdir(tmp_path / "mnist" / split / d)) == 4 for d in digits)

    out = run(
        "digits.tools.create_db",
        str(tmp_path / "ds"),
        "--folder",
        str(tmp_path / "mnist" / "train"),
        "--val-folder",
        str(tmp_path / "mnist" / "test"),
        "--channels",
        "1",
        "--width",
        "28",
        "--height",
        "28",
    )
    assert out.returncode == 0, out.stderr
    assert "train_db: 40 records" in out.stderr
    with LmdbReader(str(tmp_path / "ds" / "train_db")) as db:
        assert len(db) == 40
    stats = json.loads((tmp_path / "ds" / "stats.json").read_text())
    assert stats["val"]["entries"] == 40 and stats["parse"]["labels"] == [str(d) for d in range(10)]
    assert (tmp_path / "ds" / "mean.binaryproto").exists()


def test_create_db_reports_bad_arguments_by_field(tmp_path):
    out = run("digits.tools.create_db", str(tmp_path / "ds"), "--folder", str(tmp_path / "missing"))
    assert out.returncode == 2 and "folder_train" in out.stderr and "does not exist" in out.stderr
    assert "Traceback" not in out.stderr
