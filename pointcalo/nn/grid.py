"""Convolutional encoder and decoder over a layered grid ``[B, layers, rows, columns]``.

The grid is treated as a 3-d image (layers as depth), as the 3-d convolutional calorimeter
models do (CaloGAN, arXiv 1705.02355, and 3DGAN lineage; BIB-AE, Buhmann et al., arXiv
2005.05334). Encoder: a 3-d convolution, then stride-2 convolutions down to a coarse grid of at
most :data:`COARSE_VOXELS` cells (one halving for the 30x16x9 cylindrical grid, two for the
ILD 30x30x30 one), flattened, then a linear map with the condition to ``n_out`` numbers.
Decoder: a linear map of its input to ``channels`` feature maps on the coarse grid, a 3-d
convolution there, learned 2x upsamplings (transposed convolutions, each cropped to the finer
grid), one 3-d convolution to a single map, a learned per-voxel offset (the mean shower shape).
The dense maps stay small on any grid (about 1 M weights on the ILD grid instead of 14 M
without the second halving). The output is linear (a softplus saturated and
stopped learning the empty voxels); users map values <= 0 to no energy. Sizes follow the grid,
so one module serves the ILD 30x30x30 grid and the 30x16x9 cylindrical one.

``periodic=True`` (cylindrical grids, rows = angular bins): every convolution wraps around the
angular axis and upsampling is nearest-neighbour doubling then a wrapping convolution
(:mod:`pointcalo.nn.periodic`); an angular count that the halvings do not divide is resampled
to the next one that they do (band-limited, FFT) on the way in and back on the way out.
"""

from __future__ import annotations

import torch
from torch import nn

from pointcalo.nn.periodic import PeriodicConv3d, PeriodicUp, fft_resample

#: the dense maps act on a grid halved until it has at most this many cells
COARSE_VOXELS = 1024


def _half(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple((n + 1) // 2 for n in shape)  # type: ignore[return-value]


def pyramid(shape: tuple[int, int, int]) -> list[tuple[int, int, int]]:
    """The grid shapes from ``shape`` down to the coarse one (each a halving, rounded up; at
    least one halving)."""
    shapes = [tuple(shape), _half(shape)]
    while int(torch.tensor(shapes[-1]).prod()) > COARSE_VOXELS:
        shapes.append(_half(shapes[-1]))
    return shapes  # type: ignore[return-value]


def periodic_shape(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """``shape`` with its rows (angular bins) rounded up to a multiple of ``2^halvings`` of
    its own :func:`pyramid`, so every halving keeps the angular wrap."""
    d, r, c = shape
    while True:
        step = 2 ** (len(pyramid((d, r, c))) - 1)
        padded = -(-r // step) * step
        if padded == r:
            return d, r, c
        r = padded


def _conv(c_in: int, c_out: int, periodic: bool, stride: int = 1) -> nn.Module:
    if periodic:
        return PeriodicConv3d(c_in, c_out, 3, stride)
    return nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1)


class GridEncoder(nn.Module):
    """``[B, L, H, W]`` grid and ``[B, n_cond]`` condition to ``[B, n_out]``."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        channels: int,
        n_out: int,
        n_cond: int = 1,
        periodic: bool = False,
    ) -> None:
        super().__init__()
        self.rows = (shape[1], periodic_shape(shape)[1] if periodic else shape[1])
        shapes = pyramid(periodic_shape(shape) if periodic else shape)
        convs: list[nn.Module] = [_conv(1, channels, periodic), nn.LeakyReLU(0.2)]
        for level in range(1, len(shapes)):
            c_in = channels if level == 1 else 2 * channels
            convs += [_conv(c_in, 2 * channels, periodic, 2), nn.LeakyReLU(0.2)]
        self.conv = nn.Sequential(*convs)
        n_flat = 2 * channels * int(torch.tensor(shapes[-1]).prod())
        self.head = nn.Sequential(
            nn.Linear(n_flat + n_cond, 4 * channels * 8),
            nn.LeakyReLU(0.2),
            nn.Linear(4 * channels * 8, n_out),
        )

    def forward(self, grid: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = fft_resample(grid[:, None], self.rows[1], dim=-2)
        h = self.conv(x).flatten(1)
        return self.head(torch.cat([h, cond], 1))


class GridDecoder(nn.Module):
    """``[B, n_in]`` to a ``[B, L, H, W]`` grid (``[B, out_channels, L, H, W]`` with several
    output maps; the per-voxel offset goes to the first)."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        channels: int,
        n_in: int,
        out_channels: int = 1,
        periodic: bool = False,
    ) -> None:
        super().__init__()
        self.out_channels, self.periodic = out_channels, periodic
        self.rows = shape[1]
        self.shapes = pyramid(periodic_shape(shape) if periodic else shape)
        self.shape, self.channels = shape, channels
        n_coarse = channels * int(torch.tensor(self.shapes[-1]).prod())
        self.lin = nn.Sequential(
            nn.Linear(n_in, 4 * channels * 8),
            nn.LeakyReLU(0.2),
            nn.Linear(4 * channels * 8, n_coarse),
        )
        self.coarse = _conv(channels, channels, periodic)

        def up() -> nn.Module:
            if periodic:
                return PeriodicUp(channels)
            return nn.ConvTranspose3d(channels, channels, 4, stride=2, padding=1)

        # coarser upsamplings first (none on a grid halved once), the finest is ``up``
        self.ups = nn.ModuleList(up() for _ in range(len(self.shapes) - 2))
        self.up = up()
        self.fine = _conv(channels, out_channels, periodic)
        self.bias = nn.Parameter(torch.zeros(shape))  # per-voxel offset: the mean shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x).reshape(-1, self.channels, *self.shapes[-1])
        h = nn.functional.leaky_relu(h, 0.2)
        h = nn.functional.leaky_relu(self.coarse(h), 0.2)  # mixing on the coarse grid
        for up, (d, r, c) in zip([*self.ups, self.up], self.shapes[-2::-1], strict=True):
            h = nn.functional.leaky_relu(up(h), 0.2)[:, :, :d, :r, :c]  # learned 2x upsampling
        out = fft_resample(self.fine(h), self.rows, dim=-2)
        if self.out_channels == 1:
            return out[:, 0] + self.bias
        return torch.cat([(out[:, 0] + self.bias)[:, None], out[:, 1:]], 1)


class ConditionalGridDecoder(nn.Module):
    """Noise or latent ``z [B, n_z]`` and condition ``[B, n_cond]`` to a ``[B, L, H, W]`` grid
    (a VAE's decoder, a GAN's generator)."""

    def __init__(
        self, shape: tuple[int, int, int], channels: int, n_z: int, n_cond: int = 1
    ) -> None:
        super().__init__()
        self.net = GridDecoder(shape, channels, n_z + n_cond)

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z, cond], 1))


def latent_pyramid(
    shape: tuple[int, int, int], halvings: int, periodic: bool = False
) -> list[tuple[int, int, int]]:
    """``shape`` and ``halvings`` halvings of it (each rounded up): the last is the latent.
    ``periodic``: the rows (angular bins) first rounded up to a multiple of ``2^halvings``, so
    every halving keeps the angular wrap."""
    step = 2**halvings
    rows = -(-shape[1] // step) * step if periodic else shape[1]
    shapes = [(shape[0], rows, shape[2])]
    for _ in range(halvings):
        shapes.append(_half(shapes[-1]))
    return shapes  # type: ignore[return-value]


class LatentEncoder(nn.Module):
    """A fully convolutional encoder to a *spatial* latent: ``[B, L, H, W]`` grid and
    ``[B, 1]`` condition (a constant input map) to ``[B, n_out, l, h, w]`` on the grid halved
    ``halvings`` times, one vector per coarse cell (the token map of Calo-VQ, arXiv
    2405.06605; van den Oord et al., arXiv 1711.00937). Periodic grids: angular bins resampled
    to a multiple of ``2^halvings`` first (:func:`fft_resample`)."""

    def __init__(
        self, shape: tuple[int, int, int], channels: int, n_out: int, halvings: int,
        periodic: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.rows = latent_pyramid(shape, halvings, periodic)[0][1]
        layers: list[nn.Module] = [_conv(2, channels, periodic), nn.LeakyReLU(0.2)]
        for _ in range(halvings):
            layers += [_conv(channels, channels, periodic, 2), nn.LeakyReLU(0.2)]
            layers += [_conv(channels, channels, periodic), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv3d(channels, n_out, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, grid: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = fft_resample(grid[:, None], self.rows, dim=-2)
        c = cond[:, :, None, None, None].expand(-1, 1, *x.shape[2:])
        return self.net(torch.cat([x, c], 1))


class LatentDecoder(nn.Module):
    """The mirror of :class:`LatentEncoder`: ``[B, n_in, l, h, w]`` codes and ``[B, 1]``
    condition to a ``[B, L, H, W]`` grid (learned 2x upsamplings cropped to each finer shape,
    a per-voxel offset: the mean shower shape)."""

    def __init__(
        self, shape: tuple[int, int, int], channels: int, n_in: int, halvings: int,
        periodic: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.rows = shape[1]
        self.shapes = latent_pyramid(shape, halvings, periodic)
        self.inp = _conv(n_in + 1, channels, periodic)

        def up() -> nn.Module:
            if periodic:
                return PeriodicUp(channels)
            return nn.ConvTranspose3d(channels, channels, 4, stride=2, padding=1)

        self.ups = nn.ModuleList(up() for _ in range(halvings))
        self.mix = nn.ModuleList(_conv(channels, channels, periodic) for _ in range(halvings))
        self.fine = _conv(channels, 1, periodic)
        self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self, codes: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = cond[:, :, None, None, None].expand(-1, 1, *codes.shape[2:])
        h = nn.functional.leaky_relu(self.inp(torch.cat([codes, c], 1)), 0.2)
        for up, mix, (d, r, w) in zip(self.ups, self.mix, self.shapes[-2::-1], strict=True):
            h = nn.functional.leaky_relu(up(h), 0.2)[:, :, :d, :r, :w]
            h = nn.functional.leaky_relu(mix(h), 0.2)
        out = fft_resample(self.fine(h), self.rows, dim=-2)
        return out[:, 0] + self.bias
