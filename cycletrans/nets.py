"""The paper's networks (section 4, appendix 7.2): the ResNet generator of Johnson et al. and the 70×70 PatchGAN.

Both are built as one `nn.Sequential` named `model`, in the same order as the reference implementation, so their
`state_dict` keys and shapes are exactly those of the published CycleGAN checkpoints (`model.1.weight`,
`model.10.conv_block.1.weight`, ...). Pure modules: no I/O here.
"""

from __future__ import annotations

import re

import torch
from torch import nn

# Generator depth by name (paper 4: 6 blocks for 128×128 training images, 9 for 256×256 and higher).
GENERATOR_BLOCKS = {"resnet6": 6, "resnet9": 9}


def _norm(channels: int) -> nn.Module:
    # paper 4: instance normalisation; no affine parameters and no running statistics, as in the reference code.
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Rk: two 3×3 convolutions with reflection padding and a skip connection (keys `conv_block.1`, `.5`)."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), _norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d2ngf, d4ngf, n_blocks × R4ngf, u2ngf, ungf, c7s1-3, tanh (appendix 7.2).

    Fully convolutional: any input whose sides are multiples of 4 comes back the same size, in [-1, 1].
    """

    def __init__(self, ngf: int = 64, n_blocks: int = 9, in_channels: int = 3, out_channels: int = 3):
        super().__init__()
        self.ngf, self.n_blocks = ngf, n_blocks
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), _norm(ngf), nn.ReLU(True),  # c7s1-ngf
        ]
        for mult in (1, 2):  # d128, d256: stride-2 downsampling
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), _norm(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
        for mult in (4, 2):  # u128, u64: fractionally strided convolutions
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
                _norm(ngf * mult // 2), nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh()]  # c7s1-3
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """70×70 PatchGAN, C64-C128-C256-C512 then a 1-channel convolution (appendix 7.2).

    No norm on the first layer, LeakyReLU 0.2, no sigmoid: the LSGAN loss works on raw scores (paper 4).
    """

    def __init__(self, ndf: int = 64, n_layers: int = 3, in_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            # The paper lists every Ck with stride 2; the reference code gives C512 stride 1, which is what makes
            # the receptive field of each output score 70×70.
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1), _norm(ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """Appendix 7.1: weights from N(0, 0.02), biases zero."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


def build_generator(netG: str = "resnet9", ngf: int = 64) -> ResnetGenerator:
    if netG not in GENERATOR_BLOCKS:
        raise ValueError(f"unknown generator {netG!r}; choose one of {', '.join(GENERATOR_BLOCKS)}")
    return init_weights(ResnetGenerator(ngf=ngf, n_blocks=GENERATOR_BLOCKS[netG]))


def build_discriminator(ndf: int = 64) -> PatchDiscriminator:
    return init_weights(PatchDiscriminator(ndf=ndf))


_BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.1\.weight$")


def clean_reference_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop what old reference checkpoints carry but the network has none of: InstanceNorm running statistics
    saved by PyTorch < 0.4 (`running_mean`, `running_var`, `num_batches_tracked`), and a `module.` prefix left by
    DataParallel."""
    cleaned = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked"):
            continue
        cleaned[key] = value
    return cleaned


def generator_from_state_dict(state: dict[str, torch.Tensor]) -> ResnetGenerator:
    """Build a generator whose ngf and block count are read off the tensors, and load `state` into it.

    Raises ValueError when the tensors are not a ResNet generator's.
    """
    state = clean_reference_state_dict(state)
    first = state.get("model.1.weight")
    if first is None or first.ndim != 4 or tuple(first.shape[1:]) != (3, 7, 7):
        raise ValueError("not a ResNet generator state_dict (no 'model.1.weight' of shape [ngf, 3, 7, 7])")
    n_blocks = sum(1 for key in state if _BLOCK_KEY.match(key))
    net = ResnetGenerator(ngf=int(first.shape[0]), n_blocks=n_blocks)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"generator tensors do not match a ResNet generator: {str(err).splitlines()[0]}") from None
    return net


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
