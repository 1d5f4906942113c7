"""GoogLeNet (Inception v1, Szegedy et al. 2014) with batch normalization after every convolution.

In training mode forward() returns (main_logits, aux1_logits, aux2_logits): the two auxiliary classifiers
(after inception 4a and 4d) help gradients reach the early layers. The training loop adds their losses
weighted by AUX_LOSS_WEIGHT (0.3, as in the paper and DIGITS' Caffe GoogLeNet); in eval mode forward()
returns the main logits only.

Edit freely. The training loop calls build_model(...) and reads BATCH_SIZE, INPUT_SCALE and CROP_SIZE.
"""

import torch
from torch import nn

BATCH_SIZE = 32
# Mean-subtracted 0..255 pixels are divided by 255 before the network.
INPUT_SCALE = 1 / 255
# The training loop crops 256x256 dataset images to 224x224 (randomly while training, centered otherwise).
CROP_SIZE = 224
AUX_LOSS_WEIGHT = 0.3


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    # The convolution needs no bias: batch normalization's shift replaces it.
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels, eps=0.001),
        nn.ReLU(inplace=True),
    )


class Inception(nn.Module):
    def __init__(self, in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int, c5: int, pool: int):
        super().__init__()
        self.branch1 = conv_bn(in_channels, c1, 1)
        self.branch3 = nn.Sequential(conv_bn(in_channels, c3_reduce, 1), conv_bn(c3_reduce, c3, 3))
        self.branch5 = nn.Sequential(conv_bn(in_channels, c5_reduce, 1), conv_bn(c5_reduce, c5, 5))
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), conv_bn(in_channels, pool, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


class AuxClassifier(nn.Module):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))  # the paper's 5x5/3 average pool, for any input size
        self.conv = conv_bn(in_channels, 128, 1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.dropout = nn.Dropout(0.7)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(torch.relu(self.fc1(x))))


class GoogLeNet(nn.Module):
    def __init__(self, *, num_classes: int, channels: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            conv_bn(channels, 64, 7, stride=2),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            conv_bn(64, 64, 1),
            conv_bn(64, 192, 3),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )
        self.inception3 = nn.Sequential(
            Inception(192, 64, 96, 128, 16, 32, 32),
            Inception(256, 128, 128, 192, 32, 96, 64),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4bcd = nn.Sequential(
            Inception(512, 160, 112, 224, 24, 64, 64),
            Inception(512, 128, 128, 256, 24, 64, 64),
            Inception(512, 112, 144, 288, 32, 64, 64),
        )
        self.inception4e = nn.Sequential(
            Inception(528, 256, 160, 320, 32, 128, 128),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )
        self.inception5 = nn.Sequential(
            Inception(832, 256, 160, 320, 32, 128, 128),
            Inception(832, 384, 192, 384, 48, 128, 128),
        )
        self.aux1 = AuxClassifier(512, num_classes)
        self.aux2 = AuxClassifier(528, num_classes)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.4), nn.Linear(1024, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.inception4a(self.inception3(self.stem(x)))
        aux1 = self.aux1(x) if self.training else None
        x = self.inception4bcd(x)
        aux2 = self.aux2(x) if self.training else None
        logits = self.head(self.inception5(self.inception4e(x)))
        if self.training:
            return logits, aux1, aux2
        return logits


def build_model(*, num_classes: int, channels: int, height: int, width: int) -> nn.Module:
    if min(height, width) < 32:
        raise ValueError(f"GoogLeNet needs images of at least 32x32 (got {width}x{height}); it is meant for 224x224")
    return GoogLeNet(num_classes=num_classes, channels=channels)
