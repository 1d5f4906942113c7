"""ResNet-50 (He et al. 2015): bottleneck residual blocks [3, 4, 6, 3] with batch normalization.

Each bottleneck is 1x1 reduce, 3x3, 1x1 expand (x4); the stride sits on the 3x3 convolution ("v1.5",
as torchvision and most PyTorch code have it), which trains slightly better than the paper's 1x1 stride.

Images smaller than 64 pixels on a side get the CIFAR stem (a 3x3 stride-1 convolution and no max pool)
instead of the ImageNet stem (7x7 stride-2 convolution and a 3x3 stride-2 max pool), which would shrink a
32x32 image to 8x8 before the first block. Global average pooling lets any size through.

Edit freely. The training loop calls build_model(...) and reads the three settings below.
"""

import torch
from torch import nn

BATCH_SIZE = 32
# Mean-subtracted 0..255 pixels are divided by 255 before the network.
INPUT_SCALE = 1 / 255
# None: the network takes the dataset's images whole.
CROP_SIZE = None
SMALL_INPUT = 64  # below this (height or width), use the CIFAR stem


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            # The shortcut must match the block's output shape; a 1x1 projection does it (option B).
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, *, layers: list[int], num_classes: int, channels: int, small_input: bool) -> None:
        super().__init__()
        if small_input:
            self.stem = nn.Sequential(conv3x3(channels, 64), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(channels, 64, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        stages = []
        in_channels = 64
        for i, blocks in enumerate(layers):
            width = 64 * 2**i
            for b in range(blocks):
                stages.append(Bottleneck(in_channels, width, stride=2 if i > 0 and b == 0 else 1))
                in_channels = width * Bottleneck.expansion
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.stages(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


def build_model(*, num_classes: int, channels: int, height: int, width: int) -> nn.Module:
    small = min(height, width) < SMALL_INPUT
    return ResNet(layers=[3, 4, 6, 3], num_classes=num_classes, channels=channels, small_input=small)
