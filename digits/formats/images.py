"""Reading any image file the way training and inference both see it: oriented, converted, resized.

Resize modes mean what they meant in DIGITS: squash ignores aspect; crop scales the short side to fit and
center-crops; fill scales to fit inside and fills the rest with noise; half_crop does half of each.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

RESIZE_MODES: dict[str, Callable] = {}
ENCODINGS = ("none", "png", "jpg")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".pbm", ".tif", ".tiff", ".webp")
# The server's max_image_pixels by default (8,000 x 8,000); larger files are refused as decompression bombs.
DEFAULT_MAX_PIXELS = 64_000_000
# open_image applies its own max_pixels to every file (from the header, before decoding), so Pillow's
# process-wide limit must not cap it lower or turn it into a warning.
Image.MAX_IMAGE_PIXELS = None
_max_pixels = DEFAULT_MAX_PIXELS


class ImageError(ValueError):
    """An image that cannot be used; the message is the reason shown to a person."""


def register_resize_mode(name: str):
    def wrap(fn):
        RESIZE_MODES[name] = fn
        return fn

    return wrap


def set_max_pixels(limit: int | None) -> None:
    """The pixel limit of this process when a caller names none: a worker sets the server's max_image_pixels,
    sent with its task or request (None: the default)."""
    global _max_pixels
    _max_pixels = int(limit) if limit else DEFAULT_MAX_PIXELS


def too_large(width: int, height: int, max_pixels: int | None = None) -> str | None:
    """Why an image of this size is refused, or None when it may be decoded."""
    limit = max_pixels or _max_pixels
    if width * height > limit:
        return f"too large: {width}x{height} pixels ({width * height:,}; this server's limit is {limit:,})"
    return None


def open_image(source: str | bytes, max_pixels: int | None = None) -> Image.Image:
    """Open and fully decode an image file (path or bytes), upright per its EXIF orientation.

    The size is read from the header first: an image of more than max_pixels (default: set_max_pixels) is
    refused before a byte of it is decoded, so a decompression bomb costs nothing.
    """
    if isinstance(source, bytes | bytearray):
        if not source:
            raise ImageError("empty file")
        fp = io.BytesIO(source)
    else:
        fp = source
    img = None
    try:
        img = Image.open(fp)
        problem = too_large(*img.size, max_pixels)
        if problem:
            raise ImageError(problem)
        img.load()  # Pillow closes a file it opened by name once the image is loaded
    except Exception as e:
        if img is not None:
            img.close()  # refused or broken before it was loaded: its file is still open
        raise _unreadable(e, source) from None
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the image
        return img


def _unreadable(error: Exception, source: str | bytes) -> Exception:
    """The ImageError a person should see for why an image could not be opened (other errors as they are)."""
    if isinstance(error, ImageError):
        return error
    if isinstance(error, FileNotFoundError):
        return ImageError("file not found")
    if isinstance(error, IsADirectoryError):
        return ImageError("is a folder, not a file")
    if isinstance(error, UnidentifiedImageError):
        if not isinstance(source, bytes | bytearray):
            try:
                with open(source, "rb") as fh:
                    if not fh.read(1):
                        return ImageError("empty file")
            except OSError:
                pass
        return ImageError("not an image (unrecognized format)")
    if isinstance(error, OSError | SyntaxError | ValueError):
        return ImageError(f"truncated or corrupt: {error}")
    return error


def _flatten_alpha(img: Image.Image) -> Image.Image:
    """Composite a transparent image over white, so transparent pixels do not turn black."""
    rgba = img.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _high_depth_to_8bit(img: Image.Image) -> Image.Image:
    arr = np.asarray(img)
    if img.mode == "F":
        arr = arr * 255.0 if arr.size and float(np.nanmax(arr)) <= 1.0 else arr
    elif img.mode.startswith("I;16") or (arr.size and int(arr.max()) > 255):
        arr = arr / 257.0  # 16-bit range onto 8 bits
    return Image.fromarray(np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8), "L")


def convert_image(img: Image.Image, channels: int) -> Image.Image:
    """Any mode (1, L, LA, P, RGB, RGBA, CMYK, I;16, I, F, ...) to 'L' (channels=1) or 'RGB' (channels=3)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    if (img.mode == "P" and "transparency" in img.info) or img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        img = _flatten_alpha(img)
    elif img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        img = _high_depth_to_8bit(img)
    want = "L" if channels == 1 else "RGB"
    return img if img.mode == want else img.convert(want)


def _resize(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    if arr.shape[0] == height and arr.shape[1] == width:
        return arr
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    out = np.asarray(img.resize((width, height), Image.Resampling.BILINEAR))
    return out[:, :, None] if out.ndim == 2 else out


def _noise(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


@register_resize_mode("squash")
def _squash(arr, height, width, rng):
    return _resize(arr, height, width)


@register_resize_mode("crop")
def _crop(arr, height, width, rng):
    h, w = arr.shape[:2]
    width_ratio, height_ratio = w / width, h / height
    if width_ratio > height_ratio:  # too wide: fit the height, cut the sides
        new_w = max(width, round(w / height_ratio))
        arr = _resize(arr, height, new_w)
        start = round((new_w - width) / 2)
        return arr[:, start : start + width]
    new_h = max(height, round(h / width_ratio))
    arr = _resize(arr, new_h, width)
    start = round((new_h - height) / 2)
    return arr[start : start + height, :]


def _pad_with_noise(arr, height, width, rng):
    h, w, c = arr.shape
    top = (height - h) // 2
    left = (width - w) // 2
    out = _noise(rng, (height, width, c))
    out[top : top + h, left : left + w] = arr
    return out


@register_resize_mode("fill")
def _fill(arr, height, width, rng):
    h, w = arr.shape[:2]
    width_ratio, height_ratio = w / width, h / height
    if width_ratio > height_ratio:  # too wide: fit the width, noise above and below
        arr = _resize(arr, max(1, min(height, round(h / width_ratio))), width)
    else:
        arr = _resize(arr, height, max(1, min(width, round(w / height_ratio))))
    return _pad_with_noise(arr, height, width, rng)


@register_resize_mode("half_crop")
def _half_crop(arr, height, width, rng):
    h, w = arr.shape[:2]
    width_ratio, height_ratio = w / width, h / height
    ratio = (width_ratio + height_ratio) / 2  # halfway between fitting inside and covering
    new_h, new_w = max(1, round(h / ratio)), max(1, round(w / ratio))
    arr = _resize(arr, new_h, new_w)
    if new_w > width:
        start = round((new_w - width) / 2)
        arr = arr[:, start : start + width]
    if new_h > height:
        start = round((new_h - height) / 2)
        arr = arr[start : start + height, :]
    return _pad_with_noise(arr, height, width, rng)


def resize_image(arr: np.ndarray, height: int, width: int, mode: str = "squash", seed: int = 0) -> np.ndarray:
    """Resize an HxWxC uint8 array by a DIGITS resize mode; fill's noise is drawn from `seed` (reproducible)."""
    try:
        fn = RESIZE_MODES[mode]
    except KeyError:
        raise ValueError(f"unknown resize mode {mode!r} (known: {', '.join(RESIZE_MODES)})") from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    out = fn(arr, height, width, np.random.default_rng(seed))
    assert out.shape[:2] == (height, width), (out.shape, height, width, mode)
    return out


def load_for_network(
    source: str | bytes,
    channels: int,
    height: int,
    width: int,
    mode: str = "squash",
    seed: int = 0,
    max_pixels: int | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Open, orient, convert and resize an image: (HxWxC uint8 array, original (width, height))."""
    img = open_image(source, max_pixels)
    size = img.size
    arr = np.asarray(convert_image(img, channels))
    return resize_image(arr, height, width, mode, seed), size


def encode_image(arr: np.ndarray, encoding: str) -> bytes | None:
    """PNG or JPEG bytes of an HxWxC uint8 image; None for encoding 'none' (the Datum stores raw pixels)."""
    if encoding == "none":
        return None
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    buf = io.BytesIO()
    if encoding == "png":
        img.save(buf, "PNG", compress_level=1)
    elif encoding == "jpg":
        img.save(buf, "JPEG", quality=90)
    else:
        raise ValueError(f"unknown encoding {encoding!r} (known: {', '.join(ENCODINGS)})")
    return buf.getvalue()
