"""Per-batch preprocessing on the device: mean subtraction, crop, mirror, DIGITS' augmentations, input scale.

Randomness comes from torch's global generator, which the training loop seeds from (seed, iteration), so a
resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


def _rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    v = maxc
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp(min=1e-8), torch.zeros_like(maxc))
    dc = delta.clamp(min=1e-8)
    h = torch.where(maxc == r, ((g - b) / dc) % 6, torch.where(maxc == g, (b - r) / dc + 2, (r - g) / dc + 4))
    h = torch.where(delta > 0, h / 6, torch.zeros_like(h))
    return torch.stack([h, s, v], 1)


def _hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6)
    f = h * 6 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.long() % 6
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = [torch.zeros_like(v) for _ in range(3)]
    for k, triple in enumerate(choices):
        mask = i == k
        for c in range(3):
            out[c] = torch.where(mask, triple[c], out[c])
    return torch.stack(out, 1)


def _per_image(batch: int, device) -> torch.Tensor:
    return torch.rand(batch, device=device)


class BatchTransform:
    """uint8 B x C x H x W -> float network input: ((pixels - mean) cropped, flipped, augmented) * scale."""

    def __init__(
        self,
        *,
        in_shape: tuple[int, int, int],
        mean: torch.Tensor | None,
        crop: int | None,
        scale: float,
        mirror: bool,
        aug: dict[str, Any] | None,
        train: bool,
    ):
        self.channels, self.height, self.width = in_shape
        self.mean = mean
        self.crop = crop if crop and (crop < self.height or crop < self.width) else None
        self.scale = scale
        self.train = train
        aug = dict(aug or {})
        flip = aug.get("flip") or "none"
        if mirror and flip == "none":
            flip = "fliplr"
        self.flip = flip
        self.quad_rot = aug.get("quad_rot") or "none"
        self.rot = float(aug.get("rot") or 0)
        self.zoom = float(aug.get("scale") or 0)
        self.noise = float(aug.get("noise") or 0)
        self.contrast = float(aug.get("contrast") or 0)
        self.whitening = bool(aug.get("whitening"))
        self.hsv = aug.get("hsv") if self.channels == 3 else None

    @property
    def random(self) -> bool:
        """Whether the output depends on randomness (else a split can be transformed once and kept)."""
        if not self.train:
            return False
        return bool(
            self.crop
            or self.flip != "none"
            or self.quad_rot != "none"
            or self.rot
            or self.zoom
            or self.noise
            or self.contrast
            or self.hsv
        )

    def to(self, device) -> BatchTransform:
        if self.mean is not None:
            self.mean = self.mean.to(device)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.train:
            x = self._photometric(x)
        if self.mean is not None:
            x = x - self.mean
        if self.crop:
            x = self._crop(x)
        if self.train:
            x = self._geometric(x)
        if self.whitening:
            flat = x.flatten(1)
            x = ((flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True).clamp(min=1e-5)).view_as(x)
        return x * self.scale if self.scale != 1.0 else x

    def _crop(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        c = self.crop
        if not self.train:
            top, left = (h - c) // 2, (w - c) // 2
            return x[:, :, top : top + c, left : left + c]
        tops = (torch.rand(b, device=x.device) * (h - c + 1)).long()
        lefts = (torch.rand(b, device=x.device) * (w - c + 1)).long()
        rows = (tops[:, None] + torch.arange(c, device=x.device))[:, None, :, None]
        cols = (lefts[:, None] + torch.arange(c, device=x.device))[:, None, None, :]
        batch = torch.arange(b, device=x.device)[:, None, None, None]
        chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        return x[batch, chans, rows, cols]

    def _photometric(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if self.hsv:
            hsv = _rgb_to_hsv(x / 255.0)
            jitter = torch.stack(
                [(torch.rand(b, device=x.device) * 2 - 1) * float(self.hsv.get(k, 0)) for k in "hsv"], 1
            )
            hsv[:, 0] = (hsv[:, 0] + jitter[:, 0, None, None]) % 1.0
            hsv[:, 1:] = (hsv[:, 1:] * (1 + jitter[:, 1:, None, None])).clamp(0, 1)
            x = _hsv_to_rgb(hsv) * 255.0
        if self.contrast:
            factor = 1 + (torch.rand(b, 1, 1, 1, device=x.device) * 2 - 1) * self.contrast
            center = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - center) * factor.clamp(min=0) + center).clamp(0, 255)
        if self.noise:
            x = (x + torch.randn_like(x) * (self.noise * 255.0)).clamp(0, 255)
        return x

    def _geometric(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if self.flip in ("fliplr", "fliplrud"):
            x = torch.where((_per_image(b, x.device) < 0.5)[:, None, None, None], x.flip(3), x)
        if self.flip in ("flipud", "fliplrud"):
            x = torch.where((_per_image(b, x.device) < 0.5)[:, None, None, None], x.flip(2), x)
        if self.quad_rot != "none" and x.shape[2] == x.shape[3]:
            choices = {"rot90": [0, 1, 3], "rot180": [0, 2], "rotall": [0, 1, 2, 3]}[self.quad_rot]
            k = torch.tensor(choices, device=x.device)[(torch.rand(b, device=x.device) * len(choices)).long()]
            rotated = [x]
            for quarter in (1, 2, 3):
                rotated.append(torch.rot90(x, quarter, dims=(2, 3)))
            x = torch.stack(rotated)[k, torch.arange(b, device=x.device)]
        if self.rot or self.zoom:
            angle = (torch.rand(b, device=x.device) * 2 - 1) * math.radians(self.rot)
            zoom = 1 + (torch.rand(b, device=x.device) * 2 - 1) * self.zoom
            cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
            theta = torch.stack(
                [torch.stack([cos, -sin, torch.zeros_like(cos)], 1), torch.stack([sin, cos, torch.zeros_like(cos)], 1)],
                1,
            )
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return x
