"""Records read back from the LMDB match the source images processed by each resize mode, channel count and encoding."""

import array
import io
import os

import numpy as np
import pytest
from PIL import Image

from digits.dataset.create_db import ImageSettings, build_db, save_mean
from digits.dataset.parse import parse_folders
from digits.formats.caffe_pb import Datum, datum_to_array, read_mean
from digits.formats.images import RESIZE_MODES, encode_image, load_for_network
from digits.formats.lmdb_io import LmdbReader, record_key
from digits.worker_runtime import TaskFailed
from tests.support.disk import small_disk
from tests.support.imagegen import add_odd_and_broken, make_shapes


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    make_shapes(str(root), per_class=3)
    result = parse_folders({"train": {"path": str(root)}, "pct_val": 0, "pct_test": 0})
    return result.splits["train"]


@pytest.mark.parametrize("encoding", ["none", "png", "jpg"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("mode", sorted(RESIZE_MODES))
def test_records_match_the_processed_source(tmp_path, shapes, mode, channels, encoding):
    settings = ImageSettings(channels=channels, width=20, height=14, resize_mode=mode, encoding=encoding)
    result = build_db(shapes, str(tmp_path / "train_db"), settings, 3, with_mean=True, processes=2)
    assert result.entries == len(shapes) and result.skipped == []
    expected_all = []
    with LmdbReader(str(tmp_path / "train_db")) as db:
        assert len(db) == len(shapes)
        for i, (path, label) in enumerate(shapes):
            raw = db.get(record_key(i))
            datum = Datum.FromString(raw)
            assert (datum.channels, datum.height, datum.width, datum.label) == (channels, 14, 20, label)
            assert datum.encoded == (encoding != "none")
            got, got_label = datum_to_array(raw)
            expected, _ = load_for_network(path, channels, 14, 20, mode, seed=i)
            expected_all.append(expected)
            assert got.shape == (14, 20, channels) and got_label == label
            if encoding == "jpg":  # lossy: the stored record is exactly our JPEG of the processed source
                expected = np.asarray(Image.open(io.BytesIO(encode_image(expected, "jpg"))))
                expected = expected[:, :, None] if expected.ndim == 2 else expected
            assert np.array_equal(got, expected)
    assert np.allclose(result.mean, np.mean(expected_all, axis=0))
    labels = array.array("i")
    labels.frombytes((tmp_path / "train_db_labels.bin").read_bytes())
    assert list(labels) == [label for _, label in shapes]


def test_mean_files(tmp_path, shapes):
    settings = ImageSettings(channels=3, width=8, height=8)
    result = build_db(shapes, str(tmp_path / "train_db"), settings, 3, with_mean=True)
    save_mean(str(tmp_path), result.mean)
    assert np.allclose(read_mean(str(tmp_path / "mean.binaryproto")), result.mean, atol=1e-4)
    with Image.open(tmp_path / "mean.png") as im:
        assert im.size == (8, 8) and im.mode == "RGB"


def test_broken_files_are_skipped_with_reasons_and_odd_ones_converted(tmp_path):
    root = tmp_path / "src"
    make_shapes(str(root), per_class=4)
    odd, broken = add_odd_and_broken(str(root))
    parsed = parse_folders({"train": {"path": str(root)}, "pct_val": 0, "pct_test": 0})
    assert [os.path.basename(s["path"]) for s in parsed.skipped] == ["notes.txt"]
    entries = parsed.splits["train"]
    result = build_db(entries, str(tmp_path / "train_db"), ImageSettings(3, 16, 16), 3)
    reasons = {os.path.basename(s["path"]): s["reason"] for s in result.skipped}
    assert reasons == {
        "corrupt.png": "not an image (unrecognized format)",
        "empty.jpg": "empty file",
        "truncated.jpg": reasons["truncated.jpg"],
    }
    assert reasons["truncated.jpg"].startswith("truncated or corrupt")
    assert result.entries == 12 + len(odd) == len(entries) - 3
    assert sum(result.per_class) == result.entries
    with LmdbReader(str(tmp_path / "train_db")) as db:
        assert len(db) == result.entries
        records = [datum_to_array(raw) for _, raw in db.items()]
    stored = {tuple(np.round(arr.reshape(-1, 3).mean(axis=0)).astype(int)) for arr, _ in records}
    assert (255, 255, 255) in stored  # the fully transparent PNG became white, not black


def test_abort_leaves_no_database(tmp_path, shapes):
    calls = []
    result = build_db(
        shapes * 40,
        str(tmp_path / "train_db"),
        ImageSettings(1, 8, 8),
        3,
        should_abort=lambda: calls.append(1) or len(calls) > 1,
    )
    assert result is None
    assert not os.path.exists(tmp_path / "train_db") and not os.path.exists(tmp_path / "train_db.partial")


def test_a_full_disk_fails_clearly_and_leaves_nothing_half_written(tmp_path, shapes):
    # A real full disk: LMDB says only "mdb_txn_commit: Input/output error"; the task must say what happened.
    with small_disk(tmp_path / "disk") as disk:
        with pytest.raises(TaskFailed) as info:
            build_db(shapes * 100, os.path.join(disk, "train_db"), ImageSettings(3, 64, 64, encoding="none"), 3)
        assert str(info.value).startswith("the disk holding the jobs folder is full: could not write train_db")
        assert "Input/output error" not in str(info.value)
        assert os.listdir(disk) == []
