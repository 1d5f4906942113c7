"""Uploaded files: zips of images unpacked safely, text files saved into a job folder.

A zip is judged from its central directory before a byte is unpacked: its entries' paths, its total declared
size and its compression ratios (a 3 MB zip of 3 GB is refused at once). Unpacking still counts the real bytes,
since headers can lie. Both are CPU and disk work: in the web process, call extract_zip through off_loop.
"""

from __future__ import annotations

import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

MAX_ENTRIES = 2_000_000
COPY_BLOCK = 1 << 20
# Ratios are judged only past this many bytes: small files (text, flat little images) may compress far better
# than images do without costing anything, while a bomb needs volume to do harm.
RATIO_FLOOR = 8 * 1024 * 1024


class UploadRefused(ValueError):
    """An upload that is not unpacked; the message says why."""


@dataclass(frozen=True)
class ZipLimits:
    """How much a zip may unpack to, and how much more than it holds (unpacked bytes per packed byte)."""

    max_bytes: int
    max_ratio: float = 100.0

    @classmethod
    def from_settings(cls, settings) -> ZipLimits:
        return cls(settings.max_unpacked_bytes, settings.max_zip_ratio)


def _safe_member_path(name: str) -> str:
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise UploadRefused(f"zip entry {name!r} has an absolute path")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UploadRefused(f"zip entry {name!r} leads outside the archive ('..')")
    if any("\x00" in p for p in parts):
        raise UploadRefused(f"zip entry {name!r} has a NUL character")
    return "/".join(parts)


def _ratio(unpacked: int, packed: int) -> float:
    return unpacked / max(1, packed)


def plan_zip(archive: zipfile.ZipFile, limits: ZipLimits) -> list[tuple[zipfile.ZipInfo, str]]:
    """Every entry to unpack with its safe relative path; UploadRefused for anything the headers already show
    to be unsafe or too big: links, encryption, paths leading out, total size, compression ratios."""
    members = archive.infolist()
    if len(members) > MAX_ENTRIES:
        raise UploadRefused(f"the zip has {len(members):,} entries (limit {MAX_ENTRIES:,})")
    planned = []
    for info in members:
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UploadRefused(f"zip entry {info.filename!r} is a link")
        if info.flag_bits & 0x1:
            raise UploadRefused(f"zip entry {info.filename!r} is encrypted")
        path = _safe_member_path(info.filename)
        if not path:
            continue
        if info.file_size > RATIO_FLOOR and _ratio(info.file_size, info.compress_size) > limits.max_ratio:
            raise UploadRefused(
                f"zip entry {info.filename!r} would unpack {info.file_size:,} bytes from {info.compress_size:,} "
                f"(ratio {_ratio(info.file_size, info.compress_size):,.0f}:1; this server's limit is "
                f"{limits.max_ratio:,.0f}:1, max_zip_ratio): refused as a zip bomb"
            )
        planned.append((info, path))
    unpacked = sum(info.file_size for info, _ in planned)
    packed = sum(info.compress_size for info, _ in planned)
    if unpacked > limits.max_bytes:
        raise UploadRefused(
            f"the zip would unpack to {unpacked:,} bytes; this server's limit is {limits.max_bytes:,} "
            "(max_unpacked_bytes)"
        )
    if unpacked > RATIO_FLOOR and _ratio(unpacked, packed) > limits.max_ratio:
        raise UploadRefused(
            f"the zip would unpack {unpacked:,} bytes from {packed:,} (ratio {_ratio(unpacked, packed):,.0f}:1; "
            f"this server's limit is {limits.max_ratio:,.0f}:1, max_zip_ratio): refused as a zip bomb"
        )
    return planned


def _copy_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: str, budget: int) -> int:
    """Unpack one entry into target; the bytes written. Damage is named by entry; disk errors pass through."""
    written = 0
    with open(target, "wb") as out:
        try:
            src = archive.open(info)
        except NotImplementedError:
            method = f"zip entry {info.filename!r} uses a compression method this server cannot unpack"
            raise UploadRefused(method) from None
        except (zipfile.BadZipFile, EOFError, ValueError, struct.error) as e:
            raise UploadRefused(f"zip entry {info.filename!r} is damaged ({e})") from None
        with src:
            while True:
                try:
                    block = src.read(COPY_BLOCK)
                except (zipfile.BadZipFile, EOFError, zlib.error, ValueError) as e:
                    # bad CRC-32, a truncated or garbled stream: the entry, not the server, is at fault
                    raise UploadRefused(f"zip entry {info.filename!r} is damaged ({e})") from None
                if not block:
                    return written
                written += len(block)
                if written > budget:
                    raise UploadRefused("the zip unpacks to more bytes than its headers declare")
                out.write(block)


def extract_zip(source: str | IO[bytes], dest: str, limits: ZipLimits) -> str:
    """Unpack a zip into dest after checking every entry; returns the folder holding its content.

    Refused (UploadRefused, before anything is written): absolute paths, '..', links, encryption, more than
    limits.max_bytes declared, a ratio above limits.max_ratio. While unpacking, the real bytes are counted
    against what the headers declared, and a damaged entry is refused by name. Disk errors (OSError) pass
    through. When everything sits in one top folder, that folder is returned, so a zip of `shapes/` or of
    `shapes/*` both work.
    """
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, struct.error):
        raise UploadRefused("not a zip file (or a damaged one: its table of contents cannot be read)") from None
    with archive:
        planned = plan_zip(archive, limits)
        budget = sum(info.file_size for info, _ in planned)
        os.makedirs(dest, exist_ok=True)
        written = 0
        for info, path in planned:
            target = os.path.join(dest, path)
            if info.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            written += _copy_member(archive, info, target, budget - written)
    entries = [e for e in os.listdir(dest) if not e.startswith(".") and e != "__MACOSX"]
    if len(entries) == 1 and os.path.isdir(os.path.join(dest, entries[0])):
        inner = os.path.join(dest, entries[0])
        if any(os.path.isdir(os.path.join(inner, e)) for e in os.listdir(inner)):
            return inner
    return dest


def save_upload(storage, path: str, max_bytes: int) -> None:
    """Save an uploaded file (werkzeug FileStorage) to path, refusing more than max_bytes."""
    written = 0
    with open(path, "wb") as out:
        while block := storage.stream.read(COPY_BLOCK):
            written += len(block)
            if written > max_bytes:
                out.close()
                os.unlink(path)
                raise UploadRefused(f"{storage.filename}: larger than {max_bytes:,} bytes")
            out.write(block)
