"""TensorBoard event files written without TensorBoard, read back by TensorBoard's own reader."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow

from digits.formats.tfevents import crc32c, event_file, event_file_name, masked_crc, record


def load(folder) -> event_accumulator.EventAccumulator:
    """TensorBoard's reader, keeping every scalar (its default samples a series down to 10,000)."""
    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return acc


def test_crc32c_is_castagnoli_and_masked_as_tensorboard_checks_it():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(b"") == 0
    rng = np.random.default_rng(0)
    for size in (1, 7, 8, 100, 4096):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert masked_crc(data) == pywrap_tensorflow.masked_crc32c(data)


def test_a_record_is_length_crc_data_crc():
    framed = record(b"abc")
    assert len(framed) == 8 + 4 + 3 + 4
    assert struct.unpack("<Q", framed[:8]) == (3,)
    assert struct.unpack("<I", framed[8:12]) == (masked_crc(framed[:8]),)
    assert framed[12:15] == b"abc"
    assert struct.unpack("<I", framed[15:]) == (masked_crc(b"abc"),)


def test_tensorboard_reads_every_point_back(tmp_path):
    rng = np.random.default_rng(1)
    points = [("loss", step, float(v), 1_700_000_000.0 + step) for step, v in enumerate(rng.normal(size=12_000))]
    points += [("accuracy", 0, 0.0, 1_700_000_001.0), ("accuracy", 50, 1.0, 1_700_000_002.0)]  # zeros kept
    points += [("learning_rate", 7, 1e-8, 1_700_000_003.0), ("learning_rate", 3, 0.5, 1_700_000_004.0)]
    (tmp_path / "train").mkdir()
    path = tmp_path / "train" / event_file_name(1_700_000_000.5)
    path.write_bytes(event_file(points, 1_700_000_000.5))
    assert path.name == "events.out.tfevents.1700000000.digits"

    acc = load(tmp_path / "train")
    assert acc.file_version == 2.0  # TensorBoard parses "brain.Event:2"
    assert sorted(acc.Tags()["scalars"]) == ["accuracy", "learning_rate", "loss"]
    for tag in ("loss", "accuracy", "learning_rate"):
        expected = [p for p in points if p[0] == tag]
        got = acc.Scalars(tag)
        assert [(s.step, s.wall_time) for s in got] == [(step, wall) for _, step, _, wall in expected]
        # simple_value is a 32-bit float, as in every TensorBoard event file
        assert [s.value for s in got] == [float(np.float32(v)) for _, _, v, _ in expected]


def test_a_damaged_file_is_refused_by_tensorboard_so_the_checksums_are_checked(tmp_path):
    data = bytearray(event_file([("loss", 1, 0.25, 1.0), ("loss", 2, 0.125, 2.0)], 0.0))
    data[-5] ^= 0xFF  # a byte of the last event's payload
    (tmp_path / event_file_name(0.0)).write_bytes(bytes(data))
    acc = load(tmp_path)
    assert [s.step for s in acc.Scalars("loss")] == [1]  # the damaged record is dropped, the earlier one read


@pytest.mark.parametrize("value", [float("inf"), -3.0e38, 123456.789, 1e-42])
def test_extreme_values_round_trip_as_float32(tmp_path, value):
    (tmp_path / event_file_name(0.0)).write_bytes(event_file([("v", 0, value, 0.0)], 0.0))
    assert load(tmp_path).Scalars("v")[0].value == float(np.float32(value))
