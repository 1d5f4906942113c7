"""Small generated image folders for tests: classes of colored shapes, plus odd and broken files on request."""

from __future__ import annotations

import io
import os
import random

from PIL import Image, ImageDraw

COLORS = {"circle": (40, 200, 40), "square": (200, 40, 40), "triangle": (40, 40, 200)}


def shape_image(cls: str, width: int, height: int, rnd: random.Random) -> Image.Image:
    im = Image.new("RGB", (width, height), tuple(rnd.randint(0, 60) for _ in range(3)))
    draw = ImageDraw.Draw(im)
    cx, cy, r = width // 2, height // 2, min(width, height) // 3
    if cls == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=COLORS.get(cls, (200, 200, 40)))
    elif cls == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=COLORS.get(cls, (200, 200, 40)))
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=COLORS.get(cls, (200, 200, 40)))
    return im


def make_shapes(
    root: str,
    per_class: int = 8,
    classes=("circle", "square", "triangle"),
    seed: int = 0,
    size: tuple[int, int] = (16, 48),
) -> dict[str, list[str]]:
    """root/<class>/NNNN.{png,jpg} of varied sizes; returns {class: [paths]}."""
    rnd = random.Random(seed)
    out: dict[str, list[str]] = {}
    for cls in classes:
        folder = os.path.join(root, cls)
        os.makedirs(folder, exist_ok=True)
        out[cls] = []
        for i in range(per_class):
            im = shape_image(cls, rnd.randint(*size), rnd.randint(*size), rnd)
            path = os.path.join(folder, f"{i:04d}.{'png' if i % 2 else 'jpg'}")
            im.save(path)
            out[cls].append(path)
    return out


def add_odd_and_broken(root: str) -> tuple[list[str], list[str]]:
    """Valid files in unusual modes and broken files, into root's class folders: (odd paths, broken names)."""
    odd = []
    cmyk = os.path.join(root, "square", "cmyk.jpg")
    Image.new("CMYK", (40, 30), (0, 200, 200, 0)).save(cmyk)
    sixteen = os.path.join(root, "circle", "sixteen.png")
    Image.new("I;16", (30, 30), 40000).save(sixteen)
    pal = Image.new("P", (30, 30), 1)
    pal.putpalette([0, 0, 0, 40, 200, 40] + [0] * 762)
    palette = os.path.join(root, "circle", "palette.png")
    pal.save(palette, transparency=0)
    rotated = Image.new("RGB", (60, 30), (200, 40, 40))
    exif = rotated.getexif()
    exif[0x0112] = 6
    exif_path = os.path.join(root, "square", "exif.jpg")
    rotated.save(exif_path, exif=exif.tobytes())
    rgba = Image.new("RGBA", (20, 20), (40, 40, 200, 0))
    rgba_path = os.path.join(root, "triangle", "transparent.png")
    rgba.save(rgba_path)
    odd += [cmyk, sixteen, palette, exif_path, rgba_path]

    with open(os.path.join(root, "triangle", "corrupt.png"), "wb") as fh:
        fh.write(random.Random(1).randbytes(500))
    open(os.path.join(root, "triangle", "empty.jpg"), "wb").close()
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buf, "JPEG")
    with open(os.path.join(root, "square", "truncated.jpg"), "wb") as fh:
        fh.write(buf.getvalue()[: len(buf.getvalue()) // 3])
    with open(os.path.join(root, "circle", "notes.txt"), "w") as fh:
        fh.write("not an image\n")
    return odd, ["corrupt.png", "empty.jpg", "truncated.jpg", "notes.txt"]
