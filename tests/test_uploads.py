"""Zip uploads are judged by their headers before a byte is unpacked, and damage is named by entry."""

import io
import os
import random
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digits.uploads import RATIO_FLOOR, UploadRefused, ZipLimits, extract_zip
from tests.support.zips import damaged, zeros_zip, zip_of

LIMITS = ZipLimits(max_bytes=1 << 30, max_ratio=100.0)


def text(n: int, seed: int = 0) -> bytes:
    rnd = random.Random(seed)
    return b" ".join(rnd.choice([b"alpha", b"beta", b"gamma", b"delta"]) for _ in range(n))


def test_a_bomb_is_refused_from_its_headers_before_anything_is_written(tmp_path):
    bomb = zeros_zip([("shapes/circle/big.png", 200 * 1024 * 1024)])  # 200 MB in about 200 KB
    assert len(bomb) < 400_000
    with pytest.raises(UploadRefused) as info:
        extract_zip(io.BytesIO(bomb), str(tmp_path / "out"), LIMITS)
    message = str(info.value)
    assert "'shapes/circle/big.png'" in message and "209,715,200 bytes" in message
    assert "limit is 100:1, max_zip_ratio" in message and "zip bomb" in message
    assert not (tmp_path / "out").exists()


def test_many_small_bombs_are_refused_by_the_overall_ratio(tmp_path):
    # Each entry stays under the floor where one entry's ratio is judged; together they unpack 100 MB.
    size = RATIO_FLOOR - 1
    bomb = zeros_zip([(f"c{i % 2}/{i}.bmp", size) for i in range(13)])
    with pytest.raises(UploadRefused, match=r"the zip would unpack 109,051,891 bytes from [\d,]+ \(ratio"):
        extract_zip(io.BytesIO(bomb), str(tmp_path / "out"), LIMITS)
    assert not (tmp_path / "out").exists()


def test_the_declared_total_size_is_limited(tmp_path):
    data = zip_of({"a/1.png": os.urandom(5000), "b/2.png": os.urandom(5000)})
    with pytest.raises(UploadRefused, match="would unpack to 10,000 bytes; this server's limit is 9,999"):
        extract_zip(io.BytesIO(data), str(tmp_path / "out"), ZipLimits(9_999))
    assert not (tmp_path / "out").exists()
    assert extract_zip(io.BytesIO(data), str(tmp_path / "ok"), ZipLimits(10_000)) == str(tmp_path / "ok")


def test_small_files_may_compress_well(tmp_path):
    data = zip_of({"a/blank.bmp": bytes(1_000_000), "b/blank.bmp": bytes(1_000_000)})  # ratio about 1000:1
    folder = extract_zip(io.BytesIO(data), str(tmp_path / "out"), LIMITS)
    assert sorted(os.listdir(folder)) == ["a", "b"] and os.path.getsize(os.path.join(folder, "a", "blank.bmp"))


@pytest.mark.parametrize("how", ["crc", "garbled"])
def test_a_damaged_entry_is_named(tmp_path, how):
    compression = zipfile.ZIP_STORED if how == "crc" else zipfile.ZIP_DEFLATED
    good = zip_of({"shapes/a/1.png": text(3000, 1), "shapes/b/2.png": text(3000, 2)}, compression)
    with pytest.raises(UploadRefused, match=r"zip entry 'shapes/b/2.png' is damaged \("):
        extract_zip(io.BytesIO(damaged(good, "shapes/b/2.png", how)), str(tmp_path / "out"), LIMITS)


def test_a_truncated_zip_is_not_a_zip(tmp_path):
    good = zip_of({"a/1.png": text(3000)})
    with pytest.raises(UploadRefused, match="not a zip file"):
        extract_zip(io.BytesIO(good[: len(good) // 2]), str(tmp_path / "out"), LIMITS)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_any_damage_is_refused_never_raised(tmp_path_factory, data):
    """Whatever bytes of a zip are changed, unpacking ends in the folder or in UploadRefused, nothing else."""
    good = zip_of({"s/a/1.png": text(400, 1), "s/b/2.png": os.urandom(300), "s/b/3.txt": b"x" * 50})
    raw = bytearray(good)
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    out = tmp_path_factory.mktemp("fuzz")
    try:
        extract_zip(io.BytesIO(bytes(raw)), str(out / "x"), ZipLimits(1 << 20))
    except UploadRefused as e:
        assert str(e)
