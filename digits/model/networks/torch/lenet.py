"""LeNet as DIGITS shipped it for Caffe: conv 20, pool, conv 50, pool, fc 500, ReLU, fc classes.

Edit freely. The training loop calls build_model(...) and reads the three settings below.
"""

import math

import torch
from torch import nn

BATCH_SIZE = 64
# Mean-subtracted 0..255 pixels are multiplied by this before the network, as DIGITS' Caffe LeNet did
# (transform_param { scale: 0.0125 }), which puts them roughly in -3..3.
INPUT_SCALE = 0.0125
# None: the network takes the dataset's images whole (any size from 28x28 up).
CROP_SIZE = None


def _pooled(size: int) -> int:
    # Caffe rounds pooling output up, so odd sizes keep their last row and column.
    return math.ceil((size - 2) / 2) + 1


class LeNet(nn.Module):
    def __init__(self, *, num_classes: int, channels: int, height: int, width: int) -> None:
        super().__init__()
        if min(height, width) < 28:
            raise ValueError(f"LeNet needs images of at least 28x28 (got {width}x{height})")
        self.features = nn.Sequential(
            nn.Conv2d(channels, 20, kernel_size=5),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(20, 50, kernel_size=5),
            nn.MaxPool2d(2, ceil_mode=True),
        )
        out_h = _pooled(_pooled(height - 4) - 4)
        out_w = _pooled(_pooled(width - 4) - 4)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(50 * out_h * out_w, 500),
            nn.ReLU(inplace=True),
            nn.Linear(500, num_classes),
        )
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                # Caffe's "xavier" filler: uniform with variance 1 / fan_in (torch's xavier_uniform_ averages
                # fan_in and fan_out, which starts the 800->500 layer noticeably smaller).
                fan_in = module.weight[0].numel()
                bound = math.sqrt(3.0 / fan_in)
                nn.init.uniform_(module.weight, -bound, bound)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_model(*, num_classes: int, channels: int, height: int, width: int) -> nn.Module:
    return LeNet(num_classes=num_classes, channels=channels, height=height, width=width)
