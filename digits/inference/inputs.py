"""The images a classification request names, gathered in the web process (torch-free): an upload, a URL,
a server path, a list of paths and URLs with optional labels (DIGITS' val.txt format), or a zip of images.

URLs are fetched here by digits.inference.urls. Server paths must pass digits.datapaths.check_server_path: a
single one is checked here; a list's are marked "check" and checked by the worker, with the request's
path_policy (the same settings), on its reader threads just before each is read.
"""

from __future__ import annotations

import base64
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from digits.config import Settings
from digits.datapaths import PathRefused, check_server_path
from digits.errors import ApiError, InsufficientStorage, StorageUnavailable
from digits.formats.images import IMAGE_EXTENSIONS
from digits.inference import urls
from digits.offload import off_loop
from digits.store import DISK_FULL
from digits.uploads import UploadRefused, ZipLimits, extract_zip

MAX_LIST_BYTES = 20 * 1024 * 1024
MAX_LIST_LINES = 100_000
MAX_LIST_URLS = 1_000
URL_FETCHERS = 8
URL_RE = re.compile(r"^https?://", re.IGNORECASE)


@dataclass
class ListItem:
    """One image of a list: the line it came from (1-based), its path or URL as written, its class index."""

    line: int
    text: str
    label: int | None = None
    path: str | None = None  # what the worker reads: a server path, a file of the zip or a fetched copy
    check: bool = False  # a server path, to be checked with check_server_path before it is read
    ordinal: int = 0  # its place among the list's images (create-db's record index for the same list)


def read_upload(storage, max_bytes: int, what: str) -> bytes:
    """An uploaded file's bytes; ApiError when it is empty or too large."""
    data = storage.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(f"{what} is larger than {max_bytes:,} bytes")
    if not data:
        raise ApiError(f"{what} is empty")
    return data


def path_policy(settings: Settings) -> dict[str, Any]:
    """What a request's worker may read: the settings check_server_path decides by (for a list's server paths)
    and the largest image it may decode (max_image_pixels, checked from each image's header)."""
    return {
        "host": settings.host,
        "auth": settings.auth,
        "data_roots": list(settings.data_roots),
        "jobs_dir": settings.jobs_path,
        "max_image_pixels": settings.max_image_pixels,
    }


def one_image(form, files, settings: Settings) -> dict[str, Any]:
    """The image of a classify-one request as the worker's "image": {"data": base64} or {"path": ...}."""
    upload = files.get("image_file")
    if upload is not None and upload.filename:
        return {"data": base64.b64encode(read_upload(upload, urls.MAX_IMAGE_BYTES, "the image file")).decode()}
    url = (form.get("image_url") or "").strip()
    if url:
        try:
            data = urls.fetch(url, allow_private=bool(getattr(settings, "allow_private_urls", False)))
        except urls.UrlRefused as e:
            raise ApiError(f"image_url: {e}") from None
        if not data:
            raise ApiError("image_url: the server sent an empty file")
        return {"data": base64.b64encode(data).decode()}
    path = (form.get("image_path") or "").strip()
    if path:
        try:
            return {"path": check_server_path(path, settings, want_dir=False)}
        except PathRefused as e:
            raise ApiError(f"image_path: {e}") from None
    if upload is not None:  # a file field sent with no file chosen
        raise ApiError("image_file: the upload is empty (choose an image file)")
    raise ApiError("send an image: image_file (an upload), image_url or image_path")


def _label_of(token: str, labels: list[str]) -> int | None:
    if token in labels:
        return labels.index(token)
    if token.lstrip("-").isdigit():
        return int(token)
    return None


def parse_list(text: str, labels: list[str]) -> tuple[list[ListItem], list[dict[str, Any]]]:
    """Lines of "path-or-URL" or "path-or-URL label" (label: a class index or name); blank and # lines skipped."""
    items: list[ListItem] = []
    errors: list[dict[str, Any]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(items) >= MAX_LIST_LINES:
            raise ApiError(f"the image list has more than {MAX_LIST_LINES:,} images")
        parts = line.rsplit(None, 1)
        label = _label_of(parts[1], labels) if len(parts) == 2 else None
        path = parts[0] if label is not None else line
        if label is not None and not 0 <= label < len(labels):
            message = f"label {label} is not a class of this model (0-{len(labels) - 1})"
            errors.append({"line": number, "path": path, "message": message})
            continue
        items.append(ListItem(number, path, label, ordinal=len(items)))
    return items, errors


def list_text(form, files) -> str | None:
    """The image list of a request: an uploaded text file or the field's text."""
    upload = files.get("image_list")
    if upload is not None and upload.filename:
        data = read_upload(upload, MAX_LIST_BYTES, "the image list")
    elif form.get("image_list"):
        data = form["image_list"].encode("utf-8")
    else:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError("the image list is not UTF-8 text (one path or URL per line)") from None


def zip_items(root: str, labels: list[str]) -> list[ListItem]:
    """Every image file in an unpacked zip, labeled by its first folder when that folder is a class name."""
    items = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                relative = os.path.relpath(os.path.join(folder, name), root)
                top = relative.split(os.sep, 1)[0] if os.sep in relative else None
                label = labels.index(top) if top in labels else None
                items.append(ListItem(len(items) + 1, relative, label, ordinal=len(items)))
    return items


def unpack_zip(files, work_dir: str, settings: Settings) -> str | None:
    upload = files.get("image_folder_zip")
    if upload is None or not upload.filename:
        return None
    try:
        # Unpacking is CPU and disk work: on a native thread, so other requests keep their answers coming.
        return off_loop(extract_zip, upload.stream, os.path.join(work_dir, "zip"), ZipLimits.from_settings(settings))
    except UploadRefused as e:
        raise ApiError(f"Zip of images: {upload.filename}: {e}") from None
    except OSError as e:
        if e.errno in DISK_FULL:
            message = f"the server's temporary folder is full: could not unpack {upload.filename}"
            raise InsufficientStorage(message) from None
        raise StorageUnavailable(f"could not unpack {upload.filename}: {e.strerror or e}") from None


def _inside(path: str, root: str) -> bool:
    real, root = os.path.realpath(path), os.path.realpath(root)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def resolve(
    items: list[ListItem], settings: Settings, work_dir: str, folder: str | None, zip_root: str | None
) -> tuple[list[ListItem], list[dict[str, Any]]]:
    """Give each item a path for the worker: URLs fetched into work_dir, relative paths joined to the zip or
    to `folder` (a checked server folder), server paths marked to be checked. Failures are named, not raised."""
    ready: list[ListItem] = []
    errors: list[dict[str, Any]] = []
    fetches: list[ListItem] = []
    for item in items:
        if URL_RE.match(item.text):
            fetches.append(item)
            continue
        try:
            if zip_root is not None and not os.path.isabs(item.text):
                candidate = os.path.join(zip_root, item.text)
                if not _inside(candidate, zip_root) or not os.path.isfile(candidate):
                    raise PathRefused(f"{item.text} is not a file in the zip")
                item.path = os.path.realpath(candidate)
            elif folder is not None and not os.path.isabs(item.text):
                item.path, item.check = os.path.join(folder, item.text), True
            else:
                item.path, item.check = item.text, True
        except PathRefused as e:
            errors.append({"line": item.line, "path": item.text, "message": str(e)})
            continue
        ready.append(item)
    if len(fetches) > MAX_LIST_URLS:
        for item in fetches[MAX_LIST_URLS:]:
            message = f"more than {MAX_LIST_URLS} URLs in one list"
            errors.append({"line": item.line, "path": item.text, "message": message})
        fetches = fetches[:MAX_LIST_URLS]
    allow_private = bool(getattr(settings, "allow_private_urls", False))

    def fetch(item: ListItem) -> str | None:
        try:
            data = urls.fetch(item.text, allow_private=allow_private)
        except urls.UrlRefused as e:
            return str(e)
        target = os.path.join(work_dir, f"url-{item.line}")
        with open(target, "wb") as fh:
            fh.write(data)
        item.path = target
        return None

    if fetches:
        with ThreadPoolExecutor(min(URL_FETCHERS, len(fetches))) as pool:
            for item, problem in zip(fetches, pool.map(fetch, fetches), strict=True):
                if problem:
                    errors.append({"line": item.line, "path": item.text, "message": problem})
                else:
                    ready.append(item)
        ready.sort(key=lambda i: i.line)
    return ready, errors
