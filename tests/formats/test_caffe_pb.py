"""digits.formats.caffe_pb: Datum and BlobProto bytes as Caffe writes and reads them."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image

from digits.formats import caffe_pb
from digits.formats.images import encode_image


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def parse_wire(buf: bytes) -> dict[int, list]:
    """A minimal protobuf wire-format parser: field number -> list of raw values (int or bytes)."""
    fields: dict[int, list] = {}
    pos = 0
    while pos < len(buf):
        tag, pos = read_varint(buf, pos)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, pos = read_varint(buf, pos)
        elif wire_type == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire_type == 2:
            length, pos = read_varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire_type == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise AssertionError(f"unexpected wire type {wire_type} for field {number}")
        fields.setdefault(number, []).append(value)
    assert pos == len(buf)
    return fields


def test_varint_parser_self_check():
    assert read_varint(bytes([0x96, 0x01]), 0) == (150, 2)
    assert parse_wire(bytes([0x08, 0x96, 0x01, 0x22, 0x02, 0x61, 0x62])) == {1: [150], 4: [b"ab"]}


def image(height: int, width: int, channels: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


# -------------------------------------------------------------------------------------------------- Datum


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("label", [0, 7, 1234])
def test_raw_datum_round_trip(channels, label):
    arr = image(5, 7, channels)
    buf = caffe_pb.array_to_datum(arr, label)
    back, got_label = caffe_pb.datum_to_array(buf)
    assert got_label == label
    assert back.shape == (5, 7, channels) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, arr)
    assert caffe_pb.datum_label(buf) == label


def test_raw_datum_from_2d_gray():
    arr = image(4, 6, 1)[:, :, 0]
    buf = caffe_pb.array_to_datum(arr, 2)
    fields = parse_wire(buf)
    assert fields[1] == [1] and fields[2] == [4] and fields[3] == [6]
    assert fields[4] == [arr.tobytes()]
    back, label = caffe_pb.datum_to_array(buf)
    assert back.shape == (4, 6, 1)
    np.testing.assert_array_equal(back[:, :, 0], arr)


def test_raw_rgb_datum_wire_is_bgr_chw():
    arr = image(3, 4, 3, seed=9)
    arr[0, 0] = (10, 20, 30)  # a recognizable pixel: R=10, G=20, B=30
    buf = caffe_pb.array_to_datum(arr, 5)
    fields = parse_wire(buf)
    assert fields[1] == [3]  # channels
    assert fields[2] == [3]  # height
    assert fields[3] == [4]  # width
    assert fields[5] == [5]  # label
    assert 7 not in fields or fields[7] == [0]  # not encoded
    data = fields[4][0]
    assert len(data) == 3 * 3 * 4
    assert data == arr[:, :, ::-1].transpose(2, 0, 1).tobytes()
    # The first byte of each plane is pixel (0, 0): blue plane first, red last
    plane = 3 * 4
    assert (data[0], data[plane], data[2 * plane]) == (30, 20, 10)


def test_raw_gray_datum_wire():
    arr = image(3, 5, 1, seed=3)
    fields = parse_wire(caffe_pb.array_to_datum(arr, 0))
    assert fields[1] == [1] and fields[2] == [3] and fields[3] == [5]
    assert fields[4][0] == arr[:, :, 0].tobytes()
    # label 0 is still sent (proto2 optional field set explicitly)
    assert fields[5] == [0]


def test_label_accepts_numpy_integers():
    buf = caffe_pb.array_to_datum(image(2, 2, 3), np.int64(42))
    assert parse_wire(buf)[5] == [42]


@pytest.mark.parametrize("channels", [1, 3])
def test_encoded_png_datum_round_trip(channels):
    arr = image(6, 9, channels, seed=4)
    png = encode_image(arr, "png")
    buf = caffe_pb.array_to_datum(arr, 3, encoded=png)
    fields = parse_wire(buf)
    assert fields[7] == [1]  # encoded = true
    assert fields[4] == [png]  # the file is stored as is
    assert fields[1] == [channels] and fields[2] == [6] and fields[3] == [9]
    back, label = caffe_pb.datum_to_array(buf)
    assert label == 3
    assert back.shape == (6, 9, channels)
    np.testing.assert_array_equal(back, arr)


def test_encoded_jpeg_datum_decodes():
    y, x = np.mgrid[0:16, 0:24]
    base = ((x * 8 + y * 4) % 256).astype(np.uint8)
    arr = np.ascontiguousarray(np.stack([base, base // 2, 255 - base], axis=2))
    buf = caffe_pb.array_to_datum(arr, 1, encoded=encode_image(arr, "jpg"))
    back, label = caffe_pb.datum_to_array(buf)
    assert label == 1 and back.shape == arr.shape
    assert np.abs(back.astype(int) - arr).mean() < 6


def test_encoded_palette_png_decodes_as_rgb():
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putdata([0, 1])
    buf = io.BytesIO()
    img.save(buf, "PNG")
    back, _ = caffe_pb.datum_to_array(caffe_pb.array_to_datum(np.zeros((1, 2, 3), np.uint8), 0, buf.getvalue()))
    np.testing.assert_array_equal(back, [[[255, 0, 0], [0, 0, 255]]])


def test_datum_from_other_writer_parses():
    # A Datum written field by field (as Caffe's C++ would) reads back through datum_to_array
    arr = image(2, 3, 3, seed=8)
    bgr_chw = arr[:, :, ::-1].transpose(2, 0, 1).tobytes()
    raw = bytes([0x08, 3, 0x10, 2, 0x18, 3, 0x22, len(bgr_chw)]) + bgr_chw + bytes([0x28, 9])
    back, label = caffe_pb.datum_to_array(raw)
    assert label == 9
    np.testing.assert_array_equal(back, arr)


def test_float_data_datum():
    values = np.arange(2 * 2 * 3, dtype=np.float32).reshape(3, 2, 2) / 4  # CHW, BGR
    datum = caffe_pb.Datum(channels=3, height=2, width=2, label=4)
    datum.float_data.extend(values.ravel().tolist())
    back, label = caffe_pb.datum_to_array(datum.SerializeToString())
    assert label == 4 and back.dtype == np.float32
    np.testing.assert_array_equal(back, values[::-1].transpose(1, 2, 0))


# --------------------------------------------------------------------------------------------- BlobProto


@pytest.mark.parametrize("channels", [1, 3])
def test_mean_round_trip(tmp_path, channels):
    mean = np.random.default_rng(channels).random((4, 5, channels), dtype=np.float32) * 255
    path = str(tmp_path / "mean.binaryproto")
    caffe_pb.write_mean(path, mean)
    back = caffe_pb.read_mean(path)
    assert back.shape == (4, 5, channels) and back.dtype == np.float32
    np.testing.assert_array_equal(back, mean)  # float32 values preserved exactly


def test_mean_2d_input(tmp_path):
    mean = np.array([[1.5, 2.25], [3.125, 200.0]], np.float32)
    path = str(tmp_path / "mean.binaryproto")
    caffe_pb.write_mean(path, mean)
    np.testing.assert_array_equal(caffe_pb.read_mean(path), mean[:, :, None])


@pytest.mark.parametrize("channels", [1, 3])
def test_mean_blob_is_bgr_chw(tmp_path, channels):
    mean = np.random.default_rng(5).random((3, 4, channels)).astype(np.float32)
    if channels == 3:
        mean[0, 0] = (1.0, 2.0, 3.0)  # R, G, B
    path = tmp_path / "mean.binaryproto"
    caffe_pb.write_mean(str(path), mean)
    blob = caffe_pb.BlobProto.FromString(path.read_bytes())
    assert list(blob.shape.dim) == [1, channels, 3, 4]
    assert (blob.num, blob.channels, blob.height, blob.width) == (1, channels, 3, 4)
    data = np.asarray(blob.data, np.float32)
    assert data.size == channels * 3 * 4
    expected = mean[:, :, ::-1] if channels == 3 else mean
    np.testing.assert_array_equal(data, expected.transpose(2, 0, 1).ravel())
    if channels == 3:
        plane = 3 * 4
        assert (data[0], data[plane], data[2 * plane]) == (3.0, 2.0, 1.0)
    # Data is packed floats on the wire (field 5, one length-delimited run of little-endian float32)
    fields = parse_wire(path.read_bytes())
    assert len(fields[5]) == 1
    np.testing.assert_array_equal(np.frombuffer(fields[5][0], "<f4"), data)


def test_read_mean_legacy_blob_without_shape(tmp_path):
    # Old Caffe mean files set num/channels/height/width and no shape
    mean = np.random.default_rng(2).random((2, 3, 3)).astype(np.float32)
    blob = caffe_pb.BlobProto(num=1, channels=3, height=2, width=3)
    blob.data.extend(mean[:, :, ::-1].transpose(2, 0, 1).ravel().tolist())
    path = tmp_path / "old.binaryproto"
    path.write_bytes(blob.SerializeToString())
    np.testing.assert_array_equal(caffe_pb.read_mean(str(path)), mean)


def test_read_mean_double_data(tmp_path):
    mean = np.array([[[0.5], [1.5]], [[2.5], [3.5]]])
    blob = caffe_pb.BlobProto()
    blob.shape.dim.extend([1, 1, 2, 2])
    blob.double_data.extend(mean.ravel().tolist())
    path = tmp_path / "d.binaryproto"
    path.write_bytes(blob.SerializeToString())
    back = caffe_pb.read_mean(str(path))
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, mean.astype(np.float32))


def test_read_mean_three_dim_shape(tmp_path):
    # A shape of C x H x W (no num) is read by its last three dims
    mean = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    blob = caffe_pb.BlobProto()
    blob.shape.dim.extend([3, 2, 2])
    blob.data.extend(mean[:, :, ::-1].transpose(2, 0, 1).ravel().tolist())
    path = tmp_path / "c.binaryproto"
    path.write_bytes(blob.SerializeToString())
    np.testing.assert_array_equal(caffe_pb.read_mean(str(path)), mean)


def test_blob_float_bytes_match_struct(tmp_path):
    path = tmp_path / "m.binaryproto"
    caffe_pb.write_mean(str(path), np.array([[[0.1]]], np.float32))
    fields = parse_wire(path.read_bytes())
    assert fields[5][0] == struct.pack("<f", np.float32(0.1))
    assert fields[1] == [1] and fields[2] == [1] and fields[3] == [1] and fields[4] == [1]
