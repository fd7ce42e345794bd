"""Torch networks for small medical images, written here because torchvision does not import in
this environment. Every builder takes (in_channels, num_classes, size).

At 28 px the ImageNet stems (7x7 stride-2 conv + max-pool) would shrink the image to 7x7 before the
first block, so - as in MedMNIST's own experiments (kuangliu/pytorch-cifar ResNets) - 28-px models
use a 3x3 stride-1 stem and no max-pool; 64 px and up use the ImageNet stem.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

SMALL_INPUT = 32  # sizes up to this use the CIFAR-style stems


# ---------------------------------------------------------------------------------- ResNet
class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _projection(in_planes, planes * self.expansion, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _projection(in_planes, planes * self.expansion, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


def _projection(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    if stride == 1 and in_planes == out_planes:
        return nn.Sequential()
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes))


def _stem(in_channels: int, out_channels: int, size: int) -> nn.Sequential:
    if size <= SMALL_INPUT:
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False),
                             nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 7, 2, 3, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, in_channels: int, num_classes: int, size: int) -> None:
        super().__init__()
        self.in_planes = 64
        self.stem = _stem(in_channels, 64, size)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], 1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], 2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], 2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(512 * block.expansion, num_classes)
        if size > SMALL_INPUT:  # MedMNIST's large-input runs use torchvision's ResNet and its init
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block, planes: int, count: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (count - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.linear(torch.flatten(self.pool(out), 1))


def resnet18(in_channels: int, num_classes: int, size: int) -> nn.Module:
    return ResNet(BasicBlock, (2, 2, 2, 2), in_channels, num_classes, size)


def resnet50(in_channels: int, num_classes: int, size: int) -> nn.Module:
    return ResNet(Bottleneck, (3, 4, 6, 3), in_channels, num_classes, size)


# ---------------------------------------------------------------------------------- VGG-16
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG(nn.Module):
    """VGG-16 with batch norm (trainable from scratch); max-pools that would shrink the map below
    1x1 are dropped, and a global average pool feeds a single linear classifier (CIFAR-style)."""

    def __init__(self, in_channels: int, num_classes: int, size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, spatial = in_channels, size
        for item in _VGG16:
            if item == "M":
                if spatial >= 2:
                    layers.append(nn.MaxPool2d(2))
                    spatial //= 2
                continue
            layers += [nn.Conv2d(channels, item, 3, padding=1, bias=False), nn.BatchNorm2d(item), nn.ReLU(inplace=True)]
            channels = item
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def vgg16(in_channels: int, num_classes: int, size: int) -> nn.Module:
    return VGG(in_channels, num_classes, size)


# ---------------------------------------------------------------------------------- DenseNet-121
class DenseLayer(nn.Module):
    def __init__(self, in_channels: int, growth: int, bn_size: int = 4) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True), nn.Conv2d(in_channels, bn_size * growth, 1, bias=False),
            nn.BatchNorm2d(bn_size * growth), nn.ReLU(inplace=True),
            nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False))

    def forward(self, x):
        return torch.cat([x, self.block(x)], 1)


class DenseNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, size: int, growth: int = 32,
                 blocks: tuple[int, ...] = (6, 12, 24, 16)) -> None:
        super().__init__()
        channels = 2 * growth
        layers: list[nn.Module] = list(_stem(in_channels, channels, size))
        for i, count in enumerate(blocks):
            for _ in range(count):
                layers.append(DenseLayer(channels, growth))
                channels += growth
            if i != len(blocks) - 1:
                layers += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                           nn.Conv2d(channels, channels // 2, 1, bias=False), nn.AvgPool2d(2)]
                channels //= 2
        layers += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def densenet121(in_channels: int, num_classes: int, size: int) -> nn.Module:
    return DenseNet(in_channels, num_classes, size)


# ---------------------------------------------------------------------------------- MobileNetV2 / EfficientNet-B0
class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, reduced, 1), nn.SiLU(inplace=True),
                                  nn.Conv2d(reduced, channels, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.gate(x)


class InvertedResidual(nn.Module):
    """MobileNetV2's block; with `se_ratio` and SiLU it is EfficientNet's MBConv."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand: int, kernel: int = 3,
                 activation=nn.ReLU6, se_ratio: float = 0.0) -> None:
        super().__init__()
        hidden = in_ch * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(in_ch, hidden, 1, bias=False), nn.BatchNorm2d(hidden), activation(inplace=True)]
        layers += [nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
                   nn.BatchNorm2d(hidden), activation(inplace=True)]
        if se_ratio:
            layers.append(SqueezeExcite(hidden, max(1, int(in_ch * se_ratio))))
        layers += [nn.Conv2d(hidden, out_ch, 1, bias=False), nn.BatchNorm2d(out_ch)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x):
        out = self.block(x)
        return x + out if self.residual else out


def _mobile_net(stages, stem_out: int, head_out: int, in_channels: int, num_classes: int, size: int,
                activation, se_ratio: float) -> nn.Module:
    # At 28 px the stem and the first stride-2 stage keep their resolution (total stride 8, not 32),
    # the usual CIFAR adaptation of these ImageNet designs.
    small = size <= SMALL_INPUT
    layers: list[nn.Module] = [nn.Conv2d(in_channels, stem_out, 3, 1 if small else 2, 1, bias=False),
                               nn.BatchNorm2d(stem_out), activation(inplace=True)]
    channels, first_stride_two = stem_out, True
    for expand, out_ch, repeats, stride, kernel in stages:
        if small and stride == 2 and first_stride_two:
            stride, first_stride_two = 1, False
        for i in range(repeats):
            layers.append(InvertedResidual(channels, out_ch, stride if i == 0 else 1, expand, kernel,
                                           activation, se_ratio))
            channels = out_ch
    layers += [nn.Conv2d(channels, head_out, 1, bias=False), nn.BatchNorm2d(head_out), activation(inplace=True)]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(head_out, num_classes))


def mobilenet_v2(in_channels: int, num_classes: int, size: int) -> nn.Module:
    stages = ((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 32, 3, 2, 3), (6, 64, 4, 2, 3), (6, 96, 3, 1, 3),
              (6, 160, 3, 2, 3), (6, 320, 1, 1, 3))
    return _mobile_net(stages, 32, 1280, in_channels, num_classes, size, nn.ReLU6, 0.0)


def efficientnet_b0(in_channels: int, num_classes: int, size: int) -> nn.Module:
    stages = ((1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3), (6, 112, 3, 1, 5),
              (6, 192, 4, 2, 5), (6, 320, 1, 1, 3))
    return _mobile_net(stages, 32, 1280, in_channels, num_classes, size, nn.SiLU, 0.25)


# ---------------------------------------------------------------------------------- ViT
class VisionTransformer(nn.Module):
    """A small ViT (ViT-Tiny width: 192, 3 heads) with 4-px patches at 28 px (7x7 tokens)."""

    def __init__(self, in_channels: int, num_classes: int, size: int, dim: int = 192, depth: int = 6,
                 heads: int = 3) -> None:
        super().__init__()
        patch = {28: 4, 64: 8}.get(size, 16)
        tokens = (size // patch) ** 2
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * 4, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], 1) + self.pos_embed
        return self.head(self.norm(self.encoder(tokens))[:, 0])


def vit_small(in_channels: int, num_classes: int, size: int) -> nn.Module:
    return VisionTransformer(in_channels, num_classes, size)


# ---------------------------------------------------------------------------------- SimpleCNN
def simple_cnn(in_channels: int, num_classes: int, size: int) -> nn.Module:
    """The 'custom CNN' papers most often describe: two conv-conv-pool stages and a dense head."""

    def stage(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.MaxPool2d(2)]

    return nn.Sequential(*stage(in_channels, 32), *stage(32, 64), nn.AdaptiveAvgPool2d(7), nn.Flatten(),
                         nn.Linear(64 * 49, 128), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(128, num_classes))
