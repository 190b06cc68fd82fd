"""Reference architectures written out by hand (torchvision is not installable here), kept small for tests.

Each is written the way its paper's reference code writes it, so importing it exercises what real models do:
    ResNet-18 / ResNet-50 style   basic and bottleneck residual blocks, nn.Sequential stages, downsample
                                  shortcuts, `out += identity` (He et al., arXiv:1512.03385)
    MobileNetV2 style             inverted residuals, depthwise convs, hardswish, squeeze-excite
                                  (arXiv:1801.04381, arXiv:1905.02244, arXiv:1709.01507)
    Transformer encoder           pre-norm layers with nn.MultiheadAttention, LayerNorm, GELU (arXiv:1706.03762)
    UNet style                    encoder/decoder with upsampling (F.interpolate, ConvTranspose2d) and skip
                                  concatenation (arXiv:1505.04597)

Widths are narrow and inputs 32x32 so the default tests stay fast. `MODELS` maps a name to a factory that
returns ``(module, example_input)`` with the module in eval mode and a seeded input.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

# -- ResNet (arXiv:1512.03385), torchvision's layout ----------------------------------------------------------


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) with a residual connection (ResNet-50/101/152)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """ResNet with a CIFAR-sized stem; `width` is the first stage's planes (64 in the paper)."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: list[int], num_classes: int = 10,
                 width: int = 8, flatten_with_view: bool = False) -> None:
        super().__init__()
        self.inplanes = width
        self.flatten_with_view = flatten_with_view
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8 * block.expansion, num_classes)

    def _make_layer(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int,
                    stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, w, H/2, W/2)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x)  # (B, 8w*e, 1, 1)
        x = x.view(x.size(0), -1) if self.flatten_with_view else torch.flatten(x, 1)
        return self.fc(x)


def resnet18(num_classes: int = 10, width: int = 8) -> ResNet:
    """ResNet-18 layout (2, 2, 2, 2 basic blocks); flattens with ``x.view(x.size(0), -1)``."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, width, flatten_with_view=True)


def resnet50(num_classes: int = 10, width: int = 8) -> ResNet:
    """ResNet-50 layout (3, 4, 6, 3 bottleneck blocks)."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, width)


# -- MobileNetV2 (arXiv:1801.04381) with V3's hardswish and squeeze-excite (arXiv:1905.02244) --------------


class SqueezeExcite(nn.Module):
    """Channel attention: global pool, reduce, ReLU, expand, hardsigmoid gate (arXiv:1709.01507)."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)  # (B, C, 1, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class ConvBNAct(nn.Sequential):
    """conv -> batch norm -> activation, the MobileNet building brick."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.Hardswish) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
                                   nn.BatchNorm2d(cout)]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise (3x3), squeeze-excite, project (1x1, linear); residual when shapes allow."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, se: bool) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(cin, hidden, 1))
        layers.append(ConvBNAct(hidden, hidden, 3, stride, groups=hidden))
        if se:
            layers.append(SqueezeExcite(hidden))
        layers.append(ConvBNAct(hidden, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.use_residual else self.block(x)


class MobileNetV2(nn.Module):
    """A narrow MobileNetV2 with hardswish and squeeze-excite in later stages."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        # (expand, out channels, repeats, stride, squeeze-excite)
        config = [(1, 8, 1, 1, False), (4, 12, 2, 2, False), (4, 16, 2, 2, True), (6, 24, 1, 1, True)]
        self.stem = ConvBNAct(3, 8, 3, 1, act=nn.ReLU6)
        blocks: list[nn.Module] = []
        cin = 8
        for expand, cout, repeats, stride, se in config:
            for i in range(repeats):
                blocks.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand, se))
                cin = cout
        self.features = nn.Sequential(*blocks)
        self.head = ConvBNAct(cin, 64, 1)
        self.dropout = nn.Dropout(0.2)
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.features(self.stem(x)))  # (B, 64, H/4, W/4)
        x = x.mean([2, 3])  # (B, 64)
        return self.classifier(self.dropout(x))


# -- Transformer encoder (arXiv:1706.03762), pre-norm -------------------------------------------------------


class EncoderLayer(nn.Module):
    """x + MHA(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 2) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TransformerEncoder(nn.Module):
    """Token features (B, L, F) -> embed -> encoder layers -> LayerNorm -> mean over tokens -> classes."""

    def __init__(self, in_features: int = 12, dim: int = 32, heads: int = 4, depth: int = 2,
                 num_classes: int = 10) -> None:
        super().__init__()
        self.embed = nn.Linear(in_features, dim)
        self.layers = nn.Sequential(*[EncoderLayer(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.layers(self.embed(x)))  # (B, L, dim)
        return self.head(x.mean(dim=1))  # (B, classes)


# -- UNet (arXiv:1505.04597) --------------------------------------------------------------------------------


class DoubleConv(nn.Module):
    """(conv 3x3 -> BN -> ReLU) twice."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                 nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Up(nn.Module):
    """Upsample (interpolate or transposed conv), concatenate the skip, DoubleConv."""

    def __init__(self, cin: int, cskip: int, cout: int, learned: bool) -> None:
        super().__init__()
        self.learned = learned
        self.up = nn.ConvTranspose2d(cin, cin, 2, stride=2) if learned else nn.Identity()
        self.conv = DoubleConv(cin + cskip, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x) if self.learned else F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """A two-level UNet for dense prediction."""

    def __init__(self, cin: int = 3, classes: int = 2, width: int = 8) -> None:
        super().__init__()
        self.inc = DoubleConv(cin, width)
        self.pool = nn.MaxPool2d(2)
        self.down1 = DoubleConv(width, width * 2)
        self.down2 = DoubleConv(width * 2, width * 4)
        self.up1 = Up(width * 4, width * 2, width * 2, learned=True)
        self.up2 = Up(width * 2, width, width, learned=False)
        self.upsample = nn.Upsample(scale_factor=1, mode="nearest")
        self.outc = nn.Conv2d(width, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)  # (B, w, H, W)
        x2 = self.down1(self.pool(x1))  # (B, 2w, H/2, W/2)
        x3 = self.down2(self.pool(x2))  # (B, 4w, H/4, W/4)
        y = self.up2(self.up1(x3, x2), x1)  # (B, w, H, W)
        return self.outc(self.upsample(y))


# -- registry ---------------------------------------------------------------------------------------------------


def _seeded(factory: Callable[[], nn.Module], shape: tuple[int, ...]) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = factory()
    _randomise_bn(model)
    return model.eval(), torch.randn(shape)


def _randomise_bn(model: nn.Module) -> None:
    """Give batch norms non-trivial statistics so a wrong weight mapping cannot pass unnoticed."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


MODELS: dict[str, Callable[[], tuple[nn.Module, torch.Tensor]]] = {
    "resnet18": lambda: _seeded(resnet18, (2, 3, 32, 32)),
    "resnet50": lambda: _seeded(resnet50, (2, 3, 32, 32)),
    "mobilenetv2": lambda: _seeded(MobileNetV2, (2, 3, 32, 32)),
    "transformer": lambda: _seeded(TransformerEncoder, (2, 16, 12)),
    "unet": lambda: _seeded(UNet, (2, 3, 32, 32)),
}
