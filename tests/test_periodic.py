"""Convolutions that wrap around a cylindrical grid's angular bins, and the band-limited
resampling of that axis (pointcalo.nn.periodic, GridEncoder/GridDecoder(periodic=True))."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointcalo.nn.grid import GridDecoder, GridEncoder, periodic_shape
from pointcalo.nn.periodic import PeriodicConv3d, fft_resample


@pytest.mark.parametrize("m, n", [(50, 52), (50, 64), (51, 56), (16, 20)])
def test_lengthening_then_shortening_the_angles_is_exact(m, n):
    x = torch.randn(2, 3, m, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(m))
    back = fft_resample(fft_resample(x, n, dim=2), m, dim=2)
    torch.testing.assert_close(back, x, rtol=0, atol=1e-12)


def test_resampling_interpolates_a_band_limited_profile():
    """A shower's angular profile made of harmonics 0, 3 and 7, sampled on 50 bins, resampled
    to 64: the harmonics' values at the new bin centres."""
    f = lambda t: 1.0 + np.cos(2 * np.pi * 3 * t) + 0.5 * np.sin(2 * np.pi * 7 * t)  # noqa: E731
    x = torch.tensor(f(np.arange(50) / 50))
    np.testing.assert_allclose(fft_resample(x, 64, dim=0).numpy(), f(np.arange(64) / 64), atol=1e-9)
    assert float(fft_resample(x, 64, dim=0).mean()) == pytest.approx(1.0)  # the energy share


def test_a_periodic_convolution_commutes_with_rotations():
    conv = PeriodicConv3d(2, 3)
    x = torch.randn(1, 2, 5, 8, 4)
    for k in (1, 3, 7):
        torch.testing.assert_close(conv(torch.roll(x, k, -2)), torch.roll(conv(x), k, -2))
    plain = torch.nn.Conv3d(2, 3, 3, padding=1)
    plain.load_state_dict(conv.conv.state_dict())
    rolled = plain(torch.roll(x, 1, -2)) - torch.roll(plain(x), 1, -2)
    assert rolled.abs().max() > 1e-3  # zero padding does not (the wrap is what differs)


def test_the_periodic_encoder_trunk_turns_with_the_shower():
    """Rotating a shower by one coarse angular bin (2 fine bins on the 30x16x9 grid, halved
    once) rotates the encoder's feature maps by one bin: nothing depends on where the angular
    axis starts."""
    torch.manual_seed(0)
    enc = GridEncoder((30, 16, 9), 4, 8, periodic=True)
    x = torch.randn(2, 1, 30, 16, 9)
    a = enc.conv(torch.roll(x, 2, -2))
    torch.testing.assert_close(a, torch.roll(enc.conv(x), 1, -2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(30, 16, 9), (45, 50, 18)])
def test_periodic_grids_keep_their_shape(shape):
    assert periodic_shape(shape)[1] % 2 == 0
    enc, dec = GridEncoder(shape, 2, 6, periodic=True), GridDecoder(shape, 2, 6, periodic=True)
    out = dec(enc(torch.randn(3, *shape), torch.zeros(3, 1)))
    assert out.shape == (3, *shape)


def test_periodic_needs_a_cylindrical_grid(tmp_path):
    from pointcalo.clouds import from_showers
    from pointcalo.config import validate_config
    from pointcalo.errors import ConfigError
    from pointcalo.train.engine import train
    from tests.conftest import random_showers

    model = {"name": "grid_vqvae", "channels": 2, "tokens": 4, "codebook": 8, "code_dim": 2,
             "periodic": True}  # fmt: skip
    cfg = {"model": {**model, "grid": "ild"},
           "train": {"steps": 2, "batch_size": 8, "device": "cpu", "out": str(tmp_path / "a")},
           "data": {"val_fraction": 0.0}}  # fmt: skip
    data = from_showers(random_showers(20))
    with pytest.raises(ConfigError, match="not cylindrical"):
        train(validate_config(cfg), data=data, progress=False, log=lambda m: None)
    cfg["model"]["grid"] = "ild-cylindrical"
    cfg["train"]["out"] = str(tmp_path / "b")
    ck = train(validate_config(cfg), data=data, progress=False, log=lambda m: None)
    assert ck.exists()
