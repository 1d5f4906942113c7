"""Archives written as they are sent: tar (plain, gzip or bzip2) and zip streams of files and generated texts, in
small chunks.

Nothing is assembled in memory or on disk first, so a multi-gigabyte snapshot goes out as it is read, and the
server's event loop gets a turn between chunks. Files are opened before the response starts, so a job
deleted meanwhile still sends what it had.
"""

from __future__ import annotations

import bz2
import os
import tarfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from digits.offload import off_loop

CHUNK = 1 << 20
RECORD = tarfile.RECORDSIZE


@dataclass
class Member:
    """One file of an archive: an open file (read to `size` bytes) or bytes made for the archive."""

    name: str
    size: int
    file: BinaryIO | None = None
    data: bytes = b""
    mode: int = 0o644
    mtime: float = field(default_factory=time.time)

    @classmethod
    def from_path(cls, name: str, path: str, mode: int = 0o644) -> Member:
        fh = open(path, "rb")  # noqa: SIM115 - closed by close_members once sent
        st = os.fstat(fh.fileno())
        return cls(name, st.st_size, file=fh, mode=mode, mtime=st.st_mtime)

    @classmethod
    def from_bytes(cls, name: str, data: bytes, mode: int = 0o644) -> Member:
        return cls(name, len(data), data=data, mode=mode)

    def chunks(self) -> Iterator[bytes]:
        if self.file is None:
            yield self.data
            return
        left = self.size
        while left > 0:
            chunk = self.file.read(min(CHUNK, left))
            if not chunk:
                raise OSError(f"{self.name} became shorter while it was being sent")
            left -= len(chunk)
            yield chunk


def close_members(members: list[Member]) -> None:
    for m in members:
        if m.file is not None:
            m.file.close()


def tar_blocks(folder: str, members: list[Member]) -> Iterator[bytes]:
    """An uncompressed tar (POSIX pax) of `members`, all inside `folder/`, as it is written."""
    written = 0

    def block(raw: bytes) -> bytes:
        nonlocal written
        written += len(raw)
        return raw

    try:
        top = tarfile.TarInfo(folder)
        top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        yield block(top.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        for m in members:
            info = tarfile.TarInfo(f"{folder}/{m.name}")
            info.size, info.mode, info.mtime = m.size, m.mode, int(m.mtime)
            yield block(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
            for chunk in m.chunks():
                yield block(chunk)
            yield block(b"\0" * (-m.size % tarfile.BLOCKSIZE))
        end = 2 * tarfile.BLOCKSIZE  # two zero blocks, then zeros to a whole record, as tarfile writes it
        yield block(b"\0" * (end + (-(written + end) % RECORD)))
    finally:
        close_members(members)


def stream_tar_gz(folder: str, members: list[Member]) -> Iterator[bytes]:
    """A gzip-compressed tar (POSIX pax) of `members`, all inside `folder/`."""
    gz = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    blocks = tar_blocks(folder, members)
    try:
        for raw in blocks:
            if out := gz.compress(raw):
                yield out
        yield gz.flush()
    finally:
        blocks.close()


class _Sink:
    """A write-only, unseekable file for zipfile; the chunks it got are taken out as they come."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def stream_zip(folder: str, members: list[Member]) -> Iterator[bytes]:
    """A zip (deflated; zip64 where a file needs it) of `members`, all inside `folder/`."""
    sink = _Sink()
    try:
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
            for m in members:
                info = zipfile.ZipInfo(f"{folder}/{m.name}", date_time=time.localtime(max(m.mtime, 315532800))[:6])
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = (0o100000 | m.mode) << 16
                info.file_size = m.size  # lets zipfile choose zip64 ahead, as it cannot seek back
                with zf.open(info, "w") as dst:
                    for chunk in m.chunks():
                        dst.write(chunk)
                        if out := sink.take():
                            yield out
                if out := sink.take():
                    yield out
        yield sink.take()
    finally:
        close_members(members)


def stream_tar(folder: str, members: list[Member]) -> Iterator[bytes]:
    """An uncompressed tar of `members`, all inside `folder/`, in chunks of at most CHUNK bytes."""
    yield from tar_blocks(folder, members)


def stream_tar_bz2(folder: str, members: list[Member]) -> Iterator[bytes]:
    """A bzip2-compressed tar of `members`, all inside `folder/`. bzip2 takes a tenth of a second or more per
    megabyte, so each chunk is compressed off the event loop."""
    bz = bz2.BZ2Compressor(9)
    blocks = tar_blocks(folder, members)
    try:
        for raw in blocks:
            if out := off_loop(bz.compress, raw):
                yield out
        yield off_loop(bz.flush)
    finally:
        blocks.close()
