"""DIGITS' test imageset, in our words: 3 classes of small colour gradients (and, on request, a fourth class with
half as many images), each class a colour rising towards one side, so even a single linear layer tells them apart.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

# class name: (the channel that rises, the side it rises towards as a rotation in degrees)
CLASSES = {"red-to-right": (0, 0), "green-to-top": (1, 90), "blue-to-left": (2, 180)}
UNBALANCED = ("blue-to-bottom", (2, 270))


def gradient(size: int, channel: int, peak: float, rotation: int) -> Image.Image:
    """A size x size RGB picture, black on the left rising to `peak` in `channel` on the right, then rotated."""
    ramp = np.linspace(0, peak, size).astype(np.uint8)
    pixels = np.zeros((size, size, 3), np.uint8)
    pixels[:, :, channel] = ramp[None, :]
    return Image.fromarray(pixels).rotate(rotation)


def make_imageset(folder: str, count: int = 10, size: int = 10, unbalanced: bool = False) -> dict[str, list[str]]:
    """folder/<class>/<i>.png, `count` per class (the unbalanced class: count // 2), each a little brighter than
    the last; returns {class: [paths relative to folder]} in the order written."""
    classes = [(name, spec, count) for name, spec in CLASSES.items()]
    if unbalanced:
        classes.append((UNBALANCED[0], UNBALANCED[1], count // 2))
    paths: dict[str, list[str]] = {}
    for name, (channel, rotation), n in classes:
        os.makedirs(os.path.join(folder, name))
        paths[name] = []
        for i, peak in enumerate(np.linspace(200, 255, n)):
            relative = os.path.join(name, f"{i}.png")
            gradient(size, channel, peak, rotation).save(os.path.join(folder, relative))
            paths[name].append(relative)
    return paths
