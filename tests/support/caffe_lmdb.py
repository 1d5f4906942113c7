"""LMDBs of Caffe Datum records written the way Caffe's convert_imageset writes them, for the import tests.

convert_imageset (tools/convert_imageset.cpp, util/io.cpp) keys record i "%08d_%s" % (i, file name) and stores
either raw pixels (CVMatToDatum: channels x height x width, BGR, uint8) or, with --encoded, the image file's
bytes with encoded=true and no channels, height or width. The Datum is made by real pycaffe (caffe.io.
array_to_datum, caffe_pb2.Datum) when `caffe` is given, else by our own protobuf messages (digits.formats.caffe_pb).
"""

from __future__ import annotations

import io
import os
import random

import lmdb
import numpy as np
from PIL import Image

from digits.formats.caffe_pb import Datum
from tests.support.imagegen import shape_image

CLASSES = ("circle", "square", "triangle")


def shape_images(count: int, size: tuple[int, int] = (20, 16), gray: bool = False, seed: int = 0):
    """(file name, HxWxC uint8 RGB or gray pixels, label) of `count` shapes of one size (width, height), classes in
    turn."""
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        label = i % len(CLASSES)
        im = shape_image(CLASSES[label], *size, rnd)
        arr = np.asarray(im.convert("L") if gray else im)
        out.append((f"{CLASSES[label]}/{i:04d}.png", arr if arr.ndim == 3 else arr[:, :, None], label))
    return out


def png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(buf, "PNG")
    return buf.getvalue()


def datum_bytes(pixels: np.ndarray, label: int, encoded: bool = False, caffe=None) -> bytes:
    """One record as convert_imageset stores it (raw BGR CHW, or the PNG file with encoded=true)."""
    if encoded:
        datum = caffe.proto.caffe_pb2.Datum() if caffe is not None else Datum()
        datum.data = png_bytes(pixels)
        datum.label = label
        datum.encoded = True
        return datum.SerializeToString()
    chw = pixels.transpose(2, 0, 1)
    if chw.shape[0] == 3:
        chw = chw[::-1]  # RGB -> BGR, as OpenCV reads it
    chw = np.ascontiguousarray(chw)
    if caffe is not None:
        return caffe.io.array_to_datum(chw, label).SerializeToString()
    channels, height, width = chw.shape
    return Datum(channels=channels, height=height, width=width, data=chw.tobytes(), label=label).SerializeToString()


def write_lmdb(path, records: list[tuple[str, bytes]]) -> str:
    """An LMDB folder of (file name, value) records keyed as convert_imageset keys them."""
    os.makedirs(path, exist_ok=True)
    env = lmdb.open(str(path), map_size=1 << 28)
    with env.begin(write=True) as txn:
        for i, (name, value) in enumerate(records):
            txn.put(f"{i:08d}_{name}".encode(), value)
    env.close()
    return str(path)


def convert_imageset(path, images, encoded: bool = False, caffe=None) -> str:
    """`images` (shape_images' triples) as convert_imageset would write them into the LMDB folder `path`."""
    return write_lmdb(path, [(name, datum_bytes(px, label, encoded, caffe)) for name, px, label in images])
