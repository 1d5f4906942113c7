"""Caffe's .caffemodel files (a binary NetParameter) read and written with NumPy alone (torch-free, no pycaffe).

Only what weights need is read: the net's name and, per layer, its name, type, bottoms, tops and blobs, from
V2 `layer` (NetParameter field 100), V1 `layers` (field 2, type an enum) and V0 (a V1 entry's `layer`). A blob
has a `shape` or the legacy num/channels/height/width, and float `data` or `double_data` (which wins, as in
Caffe's Blob::FromProto). Files written here are V2 with shaped float blobs, as Caffe's own `Net::ToProto`.

The wire format is decoded by hand rather than through protobuf messages: a VGG-16 file holds 138 million
floats, which NumPy takes from the packed field in one `frombuffer` while the protobuf runtime would turn each
into a Python float (seconds, and gigabytes) on the way in and out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5

# NetParameter / LayerParameter / V1LayerParameter / V0LayerParameter / BlobProto / BlobShape field numbers
NET_NAME, NET_LAYERS_V1, NET_LAYER = 1, 2, 100
LAYER_NAME, LAYER_TYPE, LAYER_BOTTOM, LAYER_TOP, LAYER_BLOBS = 1, 2, 3, 4, 7
V1_V0LAYER, V1_BOTTOM, V1_TOP, V1_NAME, V1_TYPE, V1_BLOBS = 1, 2, 3, 4, 5, 6
V0_NAME, V0_TYPE, V0_BLOBS = 1, 2, 50
BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH, BLOB_DATA, BLOB_SHAPE, BLOB_DOUBLE = 1, 2, 3, 4, 5, 7, 8
SHAPE_DIM = 1

# V1LayerParameter.LayerType, as upgrade_proto.cpp's UpgradeV1LayerType names them.
V1_TYPES = {
    0: "", 35: "AbsVal", 1: "Accuracy", 30: "ArgMax", 2: "BNLL", 3: "Concat", 37: "ContrastiveLoss",
    4: "Convolution", 5: "Data", 39: "Deconvolution", 6: "Dropout", 32: "DummyData", 7: "EuclideanLoss",
    25: "Eltwise", 38: "Exp", 8: "Flatten", 9: "HDF5Data", 10: "HDF5Output", 28: "HingeLoss", 11: "Im2col",
    12: "ImageData", 13: "InfogainLoss", 14: "InnerProduct", 15: "LRN", 29: "MemoryData",
    16: "MultinomialLogisticLoss", 34: "MVN", 17: "Pooling", 26: "Power", 18: "ReLU", 19: "Sigmoid",
    27: "SigmoidCrossEntropyLoss", 36: "Silence", 20: "Softmax", 21: "SoftmaxWithLoss", 22: "Split",
    33: "Slice", 23: "TanH", 24: "WindowData", 31: "Threshold",
}  # fmt: skip


class CaffemodelError(ValueError):
    """The bytes are not a .caffemodel this reader understands; the message says where."""


@dataclass
class FileBlob:
    """One blob of a file: its values (float32, in `shape`) and whether the shape is the legacy 4-D one.

    Values read from a file are a read-only view of its bytes (copy them to change them)."""

    data: np.ndarray
    legacy: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)


@dataclass
class FileLayer:
    name: str
    type: str
    bottoms: list[str] = field(default_factory=list)
    tops: list[str] = field(default_factory=list)
    blobs: list[FileBlob] = field(default_factory=list)


@dataclass
class Caffemodel:
    """A parsed .caffemodel: the net's name, its layers in file order, and the format they were in."""

    name: str
    layers: list[FileLayer]
    version: str  # "V2", "V1" or "V0"


# ---- reading ---------------------------------------------------------------------------------------------------


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CaffemodelError("the file ends inside a number (truncated?)")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CaffemodelError("a number longer than 10 bytes (not a protobuf file?)")


def _fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of one message: an int for varints, the raw bytes otherwise."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            value, pos = _varint(buf, pos)
        elif wire == LENGTH:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise CaffemodelError(f"field {number} runs past the end of its message (truncated?)")
            value, pos = buf[pos : pos + size], pos + size
        elif wire in (FIXED32, FIXED64):
            size = 4 if wire == FIXED32 else 8
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise CaffemodelError(f"unsupported wire type {wire} for field {number} (not a .caffemodel?)")
        yield number, wire, value


def _text(value) -> str:
    return bytes(value).decode("utf-8", errors="replace")


def _packed_ints(wire: int, value) -> list[int]:
    if wire == VARINT:
        return [value]
    out, pos = [], 0
    while pos < len(value):
        n, pos = _varint(value, pos)
        out.append(n - (1 << 64) if n >= 1 << 63 else n)
    return out


def _floats(wire: int, value, dtype: str) -> np.ndarray:
    # Packed (as Caffe writes) or one element per field (allowed by protobuf); both little-endian.
    if wire not in (LENGTH, FIXED32, FIXED64):
        raise CaffemodelError("blob data is not a float array")
    if len(value) % np.dtype(dtype).itemsize:
        raise CaffemodelError("blob data is cut short")
    return np.frombuffer(value, dtype=dtype)


def read_blob(buf: memoryview, where: str) -> FileBlob:
    """A BlobProto as float32 in its shape (the legacy num x channels x height x width when those are set)."""
    legacy = {}
    dims: list[int] = []
    floats: list[np.ndarray] = []
    doubles: list[np.ndarray] = []
    for number, wire, value in _fields(buf):
        if number in (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH) and wire == VARINT:
            legacy[number] = value
        elif number == BLOB_SHAPE and wire == LENGTH:
            for n, w, v in _fields(value):
                if n == SHAPE_DIM:
                    dims.extend(_packed_ints(w, v))
        elif number == BLOB_DATA:
            floats.append(_floats(wire, value, "<f4"))
        elif number == BLOB_DOUBLE:
            doubles.append(_floats(wire, value, "<f8"))
    if legacy:
        shape = tuple(legacy.get(n, 0) for n in (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH))
    else:
        shape = tuple(dims)
    if any(d < 0 for d in shape):
        raise CaffemodelError(f"{where} has a negative dimension: {list(shape)}")
    count = int(np.prod(shape, dtype=np.int64))
    data = doubles or floats
    values = data[0] if len(data) == 1 else np.concatenate(data) if data else np.zeros(0, np.float32)
    if values.size != count:
        kind = "double_data" if doubles else "data"
        raise CaffemodelError(f"{where} has shape {list(shape)} ({count} values) but {values.size} in its {kind}")
    # float32 data stays a view of the file's bytes: a copy of VGG-16's 553 MB costs more than all the rest.
    return FileBlob(values.astype(np.float32, copy=False).reshape(shape), legacy=bool(legacy))


def _read_layer(buf: memoryview, v1: bool, index: int) -> tuple[FileLayer, bool]:
    """A V2 LayerParameter or a V1LayerParameter (with its V0 `layer` inside, if any); (layer, was V0)."""
    names = (
        (V1_NAME, V1_TYPE, V1_BOTTOM, V1_TOP, V1_BLOBS)
        if v1
        else (LAYER_NAME, LAYER_TYPE, LAYER_BOTTOM, LAYER_TOP, LAYER_BLOBS)
    )
    f_name, f_type, f_bottom, f_top, f_blobs = names
    layer = FileLayer(name="", type="")
    blobs: list[memoryview] = []
    v0: memoryview | None = None
    for number, wire, value in _fields(buf):
        if number == f_name and wire == LENGTH:
            layer.name = _text(value)
        elif number == f_type:
            layer.type = V1_TYPES.get(value, str(value)) if v1 and wire == VARINT else _text(value)
        elif number == f_bottom and wire == LENGTH:
            layer.bottoms.append(_text(value))
        elif number == f_top and wire == LENGTH:
            layer.tops.append(_text(value))
        elif number == f_blobs and wire == LENGTH:
            blobs.append(value)
        elif v1 and number == V1_V0LAYER and wire == LENGTH:
            v0 = value
    if v0 is not None:  # V0: the name, type and blobs are in the inner layer
        for number, wire, value in _fields(v0):
            if number == V0_NAME and wire == LENGTH:
                layer.name = _text(value)
            elif number == V0_TYPE and wire == LENGTH:
                layer.type = _text(value)
            elif number == V0_BLOBS and wire == LENGTH:
                blobs.append(value)
    label = layer.name or f"#{index + 1}"
    layer.blobs = [read_blob(b, f"layer {label!r} blob {i}") for i, b in enumerate(blobs)]
    return layer, v0 is not None


def parse_caffemodel(data: bytes | bytearray | memoryview) -> Caffemodel:
    """A .caffemodel's bytes as its name and layers (V2 `layer` entries, else V1 `layers`)."""
    buf = memoryview(data)
    name = ""
    v2: list[memoryview] = []
    v1: list[memoryview] = []
    for number, wire, value in _fields(buf):
        if number == NET_NAME and wire == LENGTH:
            name = _text(value)
        elif number == NET_LAYER and wire == LENGTH:
            v2.append(value)
        elif number == NET_LAYERS_V1 and wire == LENGTH:
            v1.append(value)
    if v2 and v1:  # Caffe refuses such a file too (upgrade_proto.cpp)
        raise CaffemodelError("the file has both V2 'layer' and V1 'layers' entries")
    if v2:
        return Caffemodel(name, [_read_layer(b, False, i)[0] for i, b in enumerate(v2)], "V2")
    read = [_read_layer(b, True, i) for i, b in enumerate(v1)]
    return Caffemodel(name, [layer for layer, _ in read], "V0" if any(old for _, old in read) else "V1")


def read_caffemodel(path: str) -> Caffemodel:
    """Read a .caffemodel file (see parse_caffemodel)."""
    with open(path, "rb") as fh:
        return parse_caffemodel(fh.read())


# ---- writing ---------------------------------------------------------------------------------------------------


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _length_field(number: int, size: int) -> bytes:
    return _key(number, LENGTH) + _encode_varint(size)


def _string(number: int, text: str) -> bytes:
    raw = text.encode("utf-8")
    return _length_field(number, len(raw)) + raw


def _blob_chunks(array: np.ndarray) -> list[bytes | memoryview]:
    """A BlobProto (shape + packed float data) as chunks; the values are not copied."""
    values = np.ascontiguousarray(array, dtype="<f4")
    dims = b"".join(_encode_varint(int(d)) for d in values.shape)
    shape = _length_field(SHAPE_DIM, len(dims)) + dims if values.shape else b""
    head = _length_field(BLOB_SHAPE, len(shape)) + shape
    chunks: list[bytes | memoryview] = [head]
    if values.size:
        chunks += [_length_field(BLOB_DATA, values.nbytes), memoryview(values.reshape(-1)).cast("B")]
    return chunks


def _message(number: int, chunks: list[bytes | memoryview]) -> list[bytes | memoryview]:
    return [_length_field(number, sum(len(c) for c in chunks)), *chunks]


def caffemodel_chunks(name: str, layers: Iterable[FileLayer | tuple]) -> list[bytes | memoryview]:
    """A V2 NetParameter as a list of byte chunks to write in order (the blobs' values are views, not copies).

    `layers` holds FileLayers or (name, type, bottoms, tops, [arrays]) tuples.
    """
    out: list[bytes | memoryview] = [_string(NET_NAME, name)] if name else []
    for layer in layers:
        if isinstance(layer, FileLayer):
            layer = (layer.name, layer.type, layer.bottoms, layer.tops, [b.data for b in layer.blobs])
        lname, ltype, bottoms, tops, arrays = layer
        chunks: list[bytes | memoryview] = [_string(LAYER_NAME, lname), _string(LAYER_TYPE, ltype)]
        chunks += [_string(LAYER_BOTTOM, b) for b in bottoms] + [_string(LAYER_TOP, t) for t in tops]
        for array in arrays:
            chunks += _message(LAYER_BLOBS, _blob_chunks(np.asarray(array)))
        out += _message(NET_LAYER, chunks)
    return out


def write_caffemodel(path: str, name: str, layers: Iterable[FileLayer | tuple]) -> None:
    """Write a V2 .caffemodel (what Caffe's `net.save` writes, less each layer's settings)."""
    chunks = caffemodel_chunks(name, layers)
    with open(path, "wb") as fh:
        for chunk in chunks:
            fh.write(chunk)


__all__ = [
    "Caffemodel",
    "CaffemodelError",
    "FileBlob",
    "FileLayer",
    "caffemodel_chunks",
    "parse_caffemodel",
    "read_blob",
    "read_caffemodel",
    "write_caffemodel",
]
