"""Convolutions that wrap around the angular axis of a cylindrical grid, and band-limited
resampling of that axis.

On a cylindrical grid ``[B, C, layers, angles, radii]`` the angular bins close on themselves:
the bin after the last is the first. Zero padding treats the two ends as edges of the shower;
circular padding along the angular axis (zeros along depth and radius) makes every
convolution commute with rotations of the shower about its axis (Calo-VQ, arXiv 2405.06605,
and the CaloChallenge cylindrical models do this). Halving an angular axis whose length is not
a multiple of ``2^levels`` (dataset 3's 50 bins) breaks that, so the axis is resampled to one
that is, by zero-padding or truncating its Fourier series (:func:`fft_resample`), and back
after the decoder: exact for signals with no frequency above the smaller length's Nyquist.
"""

from __future__ import annotations

import torch
from torch import nn


def fft_resample(x: torch.Tensor, n: int, dim: int = -2) -> torch.Tensor:
    """``x`` resampled to ``n`` points along the periodic axis ``dim`` (Fourier series
    truncated or zero-padded; a real signal stays real; ``n`` equal: unchanged). An even
    length's Nyquist term is split evenly between +- its frequency when lengthening and
    recombined when shortening, so lengthening then shortening back is exact."""
    m = x.shape[dim]
    if n == m:
        return x
    y = x.movedim(dim, -1).double()
    spec = torch.fft.rfft(y, dim=-1, norm="forward")
    keep = min(m, n) // 2 + 1
    spec = spec[..., :keep].clone()
    if n > m:
        if m % 2 == 0:  # split the old Nyquist term between +- its frequency
            spec[..., -1] = spec[..., -1] * 0.5
        spec = torch.cat([spec, spec.new_zeros(*spec.shape[:-1], n // 2 + 1 - keep)], -1)
    elif n % 2 == 0:  # the new Nyquist term holds both +- frequencies, and is real
        spec[..., -1] = 2.0 * spec[..., -1].real
    out = torch.fft.irfft(spec, n=n, dim=-1, norm="forward")
    return out.to(x.dtype).movedim(-1, dim)


class PeriodicConv3d(nn.Module):
    """A 3-d convolution over ``[B, C, layers, angles, radii]``, circular along the angles and
    zero-padded along layers and radii (``kernel`` odd; output size as ``padding =
    kernel // 2``)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.p = kernel // 2
        self.conv = nn.Conv3d(c_in, c_out, kernel, stride=stride, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p
        x = torch.cat([x[..., -p:, :], x, x[..., :p, :]], dim=-2) if p else x
        x = nn.functional.pad(x, (p, p, 0, 0, p, p))
        return self.conv(x)


class PeriodicUp(nn.Module):
    """Learned 2x upsampling that keeps the angular wrap: nearest-neighbour doubling, then a
    :class:`PeriodicConv3d`."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = PeriodicConv3d(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"))
