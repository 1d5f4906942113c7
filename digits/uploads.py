"""Uploaded files: zips of images unpacked safely, text files saved into a job folder."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from typing import IO

MAX_ENTRIES = 2_000_000
COPY_BLOCK = 1 << 20


class UploadRefused(ValueError):
    """An upload that is not unpacked; the message says why."""


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


def extract_zip(source: str | IO[bytes], dest: str, max_bytes: int) -> str:
    """Unpack a zip into dest after checking every entry; returns the folder holding its content.

    Refused: absolute paths, '..', links, more than max_bytes unpacked (checked while copying, so a zip
    whose headers lie about sizes is caught too). When everything sits in one top folder, that folder is
    returned, so a zip of `shapes/` or of `shapes/*` both work.
    """
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        raise UploadRefused("not a zip file") from None
    with archive:
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
            if path:
                planned.append((info, path))
        if sum(info.file_size for info, _ in planned) > max_bytes:
            raise UploadRefused(f"the zip unpacks to more than {max_bytes:,} bytes")
        os.makedirs(dest, exist_ok=True)
        written = 0
        for info, path in planned:
            target = os.path.join(dest, path)
            if info.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.open(info) as src, open(target, "wb") as out:
                while block := src.read(COPY_BLOCK):
                    written += len(block)
                    if written > max_bytes:
                        raise UploadRefused(f"the zip unpacks to more than {max_bytes:,} bytes")
                    out.write(block)
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


def remove_tree(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
