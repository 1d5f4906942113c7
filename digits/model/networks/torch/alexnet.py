"""AlexNet (Krizhevsky et al. 2012) as in DIGITS' Caffe version: 96-256-384-384-256 convolutions with local
response normalization and two-group convolutions, then fc 4096, fc 4096 (dropout 0.5), fc classes.

Edit freely. The training loop calls build_model(...) and reads the three settings below.
"""

import torch
from torch import nn

BATCH_SIZE = 128
# Mean-subtracted 0..255 pixels are divided by 255 before the network. (Caffe's AlexNet took them unscaled,
# with weights drawn small to match; He initialization below expects inputs of about unit range instead.)
INPUT_SCALE = 1 / 255
# The training loop crops 256x256 dataset images to 227x227 (randomly while training, centered otherwise).
CROP_SIZE = 227


class AlexNet(nn.Module):
    def __init__(self, *, num_classes: int, channels: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )
        # 6x6 already at 227x227; the adaptive pool lets other image sizes through without changing fc6.
        self.pool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(4096, num_classes),
        )
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)
        # A small last layer starts every class near equal probability.
        nn.init.normal_(self.classifier[-1].weight, std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def build_model(*, num_classes: int, channels: int, height: int, width: int) -> nn.Module:
    if min(height, width) < 39:
        # Below this the last pooling has nothing left to pool.
        raise ValueError(f"AlexNet needs images of at least 39x39 (got {width}x{height}); it is meant for 227x227")
    return AlexNet(num_classes=num_classes, channels=channels)
