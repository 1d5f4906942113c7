"""Caffe's Datum and BlobProto messages, built with the protobuf runtime from caffe.proto's field numbers.

Datum: channels=1 height=2 width=3 data=4 label=5 float_data=6 encoded=7. A raw Datum holds uint8 pixels
as channels x height x width with color in BGR order (Caffe's convention); an encoded one holds a PNG or
JPEG file as is. BlobProto: num=1 channels=2 height=3 width=4 data=5 (packed floats) shape=7.
"""

from __future__ import annotations

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from digits.formats.images import convert_image, open_image

F = descriptor_pb2.FieldDescriptorProto
GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")


def _build_messages() -> dict[str, type]:
    fdp = descriptor_pb2.FileDescriptorProto(name="digits_caffe_formats.proto", package="caffe", syntax="proto2")

    def message(name: str, fields: list[tuple]) -> None:
        msg = fdp.message_type.add(name=name)
        for fname, number, ftype, label, extra in fields:
            field = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if extra.get("packed"):
                field.options.packed = True
            if "type_name" in extra:
                field.type_name = extra["type_name"]
            if "default" in extra:
                field.default_value = extra["default"]

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message("BlobShape", [("dim", 1, F.TYPE_INT64, rep, {"packed": True})])
    message(
        "BlobProto",
        [
            ("num", 1, F.TYPE_INT32, opt, {"default": "0"}),
            ("channels", 2, F.TYPE_INT32, opt, {"default": "0"}),
            ("height", 3, F.TYPE_INT32, opt, {"default": "0"}),
            ("width", 4, F.TYPE_INT32, opt, {"default": "0"}),
            ("data", 5, F.TYPE_FLOAT, rep, {"packed": True}),
            ("diff", 6, F.TYPE_FLOAT, rep, {"packed": True}),
            ("shape", 7, F.TYPE_MESSAGE, opt, {"type_name": ".caffe.BlobShape"}),
            ("double_data", 8, F.TYPE_DOUBLE, rep, {"packed": True}),
            ("double_diff", 9, F.TYPE_DOUBLE, rep, {"packed": True}),
        ],
    )
    message(
        "Datum",
        [
            ("channels", 1, F.TYPE_INT32, opt, {}),
            ("height", 2, F.TYPE_INT32, opt, {}),
            ("width", 3, F.TYPE_INT32, opt, {}),
            ("data", 4, F.TYPE_BYTES, opt, {}),
            ("label", 5, F.TYPE_INT32, opt, {}),
            ("float_data", 6, F.TYPE_FLOAT, rep, {}),
            ("encoded", 7, F.TYPE_BOOL, opt, {"default": "false"}),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{name}"))
        for name in ("BlobShape", "BlobProto", "Datum")
    }


_MESSAGES = _build_messages()
Datum = _MESSAGES["Datum"]
BlobProto = _MESSAGES["BlobProto"]


def array_to_datum(image: np.ndarray, label: int, encoded: bytes | None = None) -> bytes:
    """Serialize an HxWxC (or HxW) uint8 RGB/gray image as a Datum; pass `encoded` to store PNG/JPEG bytes."""
    if image.ndim == 2:
        image = image[:, :, None]
    height, width, channels = image.shape
    datum = Datum(channels=channels, height=height, width=width, label=int(label))
    if encoded is not None:
        datum.data = encoded
        datum.encoded = True
    else:
        chw = image.transpose(2, 0, 1)
        if channels == 3:
            chw = chw[::-1]  # RGB -> BGR
        datum.data = np.ascontiguousarray(chw, dtype=np.uint8).tobytes()
    return datum.SerializeToString()


def datum_to_array(buf: bytes) -> tuple[np.ndarray, int]:
    """A Datum back to (HxWxC uint8 RGB or gray image, label), decoding PNG/JPEG when it is encoded."""
    datum = Datum.FromString(buf)
    if datum.encoded:
        im = open_image(datum.data)
        channels = datum.channels if datum.channels in (1, 3) else (1 if im.mode in GRAY_MODES else 3)
        arr = np.asarray(convert_image(im, channels))
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return arr, datum.label
    if datum.float_data:
        flat = np.asarray(datum.float_data, dtype=np.float32)
    else:
        flat = np.frombuffer(datum.data, dtype=np.uint8)
    chw = flat.reshape(datum.channels, datum.height, datum.width)
    if datum.channels == 3:
        chw = chw[::-1]  # BGR -> RGB
    return np.ascontiguousarray(chw.transpose(1, 2, 0)), datum.label


def datum_label(buf: bytes) -> int:
    return Datum.FromString(buf).label


def write_mean(path: str, mean_hwc: np.ndarray) -> None:
    """Save a mean image (HxWxC float, RGB) as Caffe's mean.binaryproto: 1 x C x H x W, BGR."""
    if mean_hwc.ndim == 2:
        mean_hwc = mean_hwc[:, :, None]
    height, width, channels = mean_hwc.shape
    chw = mean_hwc.transpose(2, 0, 1)
    if channels == 3:
        chw = chw[::-1]
    blob = BlobProto(num=1, channels=channels, height=height, width=width)
    blob.shape.dim.extend([1, channels, height, width])
    blob.data.extend(np.ascontiguousarray(chw, dtype=np.float32).ravel().tolist())
    with open(path, "wb") as fh:
        fh.write(blob.SerializeToString())


def read_mean(path: str) -> np.ndarray:
    """mean.binaryproto back to an HxWxC float32 RGB array."""
    with open(path, "rb") as fh:
        blob = BlobProto.FromString(fh.read())
    if blob.shape.dim:
        dims = list(blob.shape.dim)
        channels, height, width = dims[-3], dims[-2], dims[-1]
    else:
        channels, height, width = blob.channels, blob.height, blob.width
    data = blob.data if len(blob.data) else blob.double_data
    chw = np.asarray(data, dtype=np.float32).reshape(channels, height, width)
    if channels == 3:
        chw = chw[::-1]
    return np.ascontiguousarray(chw.transpose(1, 2, 0))
