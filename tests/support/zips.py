"""Zips for tests and benchmarks: a zip bomb written in a moment, a folder zipped, and a valid zip damaged on
purpose."""

from __future__ import annotations

import io
import os
import random
import struct
import zipfile
import zlib

CHUNK = 1 << 20


def _repeated_stream(size: int, chunk: bytes) -> tuple[bytes, int]:
    """A raw deflate stream of `chunk` repeated to `size` bytes, and its CRC-32, without compressing `size`
    bytes: the chunk is compressed once with a full flush (which resets the history), so its output can
    simply be repeated."""
    whole, rest = divmod(size, len(chunk))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    parts = [block] * whole
    crc = 0
    for _ in range(whole):
        crc = zlib.crc32(chunk, crc)
    if rest:
        tail = zlib.compressobj(9, zlib.DEFLATED, -15)
        parts.append(tail.compress(chunk[:rest]) + tail.flush(zlib.Z_FULL_FLUSH))
        crc = zlib.crc32(chunk[:rest], crc)
    parts.append(b"\x03\x00")  # an empty final block ends the stream
    return b"".join(parts), crc


def zeros_zip(members: list[tuple[str, int]], chunk: bytes = bytes(CHUNK)) -> bytes:
    """A zip whose members hold `chunk` repeated (zero bytes by default): [(name, unpacked size)], each under
    4 GiB. A 3 GB member of zeros packs into about 3 MB: the classic zip bomb."""
    out = io.BytesIO()
    central = []
    for name, size in members:
        data, crc = _repeated_stream(size, chunk)
        offset = out.tell()
        encoded = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(data), size, len(encoded), 0))
        out.write(encoded)
        out.write(data)
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                0x0314,
                20,
                0,
                8,
                0,
                0x21,
                crc,
                len(data),
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0o100644 << 16,
                offset,
            )
            + encoded
        )
    start = out.tell()
    for entry in central:
        out.write(entry)
    size = out.tell() - start
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), size, start, 0))
    return out.getvalue()


def compressible_chunk(ratio: int = 50, seed: int = 0) -> bytes:
    """1 MiB that deflates about `ratio` to 1: stretches of random bytes between zeros, like a legitimate zip
    of uncompressed images with flat backgrounds."""
    rnd = random.Random(seed)
    piece = 65536 // ratio
    return b"".join(rnd.randbytes(piece) + bytes(65536 - piece) for _ in range(16))


def zip_of(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def folder_zip(folder, extra: dict[str, bytes] | None = None, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of `folder`'s files under a top folder "shapes/" (as a person zips a folder of class folders), in a
    stable order, plus `extra` {name in the zip: data}."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for dirpath, _, files in sorted(os.walk(folder)):
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                zf.write(path, os.path.join("shapes", os.path.relpath(path, folder)))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def damaged(zip_bytes: bytes, name: str, how: str) -> bytes:
    """The zip with member `name` damaged, its table of contents intact: how="crc" flips a byte of its data (its
    CRC-32 no longer matches), how="garbled" overwrites the second half of its compressed stream."""
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as zf:
        info = zf.getinfo(name)
    raw = bytearray(zip_bytes)
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    if how == "crc":
        assert info.compress_type == zipfile.ZIP_STORED, "flip a stored member: its data is read as is"
        raw[start + info.compress_size // 2] ^= 0xFF
    elif how == "garbled":
        keep = info.compress_size // 2
        raw[start + keep : start + info.compress_size] = b"\xff" * (info.compress_size - keep)
    else:
        raise ValueError(how)
    return bytes(raw)
