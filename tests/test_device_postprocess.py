"""On-device (torch) post-processing of generated CaloClouds showers against the numpy
reference: the same showers, bit for bit, and the physics the calibration promises."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointcalo.generation import generate, load_model
from pointcalo.models.showerflow import calibrate as ref
from pointcalo.models.showerflow import postprocess as dev


@pytest.fixture(scope="module")
def student():
    torch.set_num_threads(1)
    return load_model("ild-photon-cm")


def _generate(loaded, energies, **kw):
    return generate(loaded.model, loaded.net, loaded.normalizer, energies, loaded.cfg, seed=5, **kw)


def test_largest_remainder_matches_numpy_with_ties():
    rng = np.random.default_rng(0)
    frac = rng.random((50, 30))
    frac[:, ::3] = 0.0  # ties: many layers with no share
    frac[10] = 1.0  # all equal
    counts = rng.integers(1, 3000, 50)
    want = ref.largest_remainder(frac, counts)
    got = dev.largest_remainder(torch.as_tensor(frac), torch.as_tensor(counts))
    np.testing.assert_array_equal(got.numpy(), want)
    np.testing.assert_array_equal(want.sum(1), counts)


def test_generated_showers_equal_the_numpy_path(student):
    energies = np.linspace(10e3, 90e3, 24)
    a = _generate(student, energies, postprocess="numpy", batch_size=8)
    b = _generate(student, energies, postprocess="torch", batch_size=8)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    for k in a.points:
        np.testing.assert_array_equal(a.points[k], b.points[k], err_msg=k)


def _inputs(loaded, n=6, seed=1):
    """Inputs of the post-processing captured from one generation batch."""
    captured = {}
    forward = dev.PostProcess.forward

    def spy(self, *args):
        captured["args"] = args
        return forward(self, *args)

    dev.PostProcess.forward = spy
    try:
        _generate(loaded, np.linspace(20e3, 80e3, n), batch_size=n)
    finally:
        dev.PostProcess.forward = forward
    return captured["args"]


def test_calibration_keeps_the_flows_energies_and_layers(student):
    x0, counts, feats, e_inc = _inputs(student)
    m = student.model
    post = dev.PostProcess(student.normalizer, m.n_layers, m.widths)
    e, x, _, layer = post(x0, counts, feats, e_inc)
    shower = torch.repeat_interleave(torch.arange(len(counts)), counts)
    L = m.n_layers
    # energy: every shower carries the flow's visible energy, each layer its share
    e_vis = torch.exp(feats[:, 1]) * e_inc
    np.testing.assert_allclose(dev.segment_sum(e.double(), shower, len(counts)), e_vis, rtol=1e-5)
    # layers: each layer holds its largest-remainder share of the points
    per = dev.largest_remainder(feats[:, 5 : 5 + L].clamp(min=0), counts)
    got = torch.bincount(shower * L + layer, minlength=len(counts) * L).reshape(-1, L)
    np.testing.assert_array_equal(got.numpy(), per.numpy())
    # on the sensor lattice: every coordinate is a sub-cell centre
    pitch = student.normalizer.spec.lattice_pitch
    r = x.double() / pitch - 0.5
    np.testing.assert_allclose(r - torch.round(r), 0.0, atol=1e-3)


def test_post_processing_scripts_for_export(student):
    x0, counts, feats, e_inc = _inputs(student, n=4)
    m = student.model
    post = dev.PostProcess(student.normalizer, m.n_layers, m.widths)
    scripted = torch.jit.script(post)
    for a, b in zip(
        post(x0, counts, feats, e_inc), scripted(x0, counts, feats, e_inc), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_unknown_postprocess_is_refused(student):
    with pytest.raises(ValueError, match="postprocess: 'gpu'"):
        _generate(student, np.array([50e3]), postprocess="gpu")


def _numpy_post(loaded, x0, counts, feats, e_inc):
    """The numpy reference path on captured inputs: decode, calibrate, snap."""
    norm, m = loaded.normalizer, loaded.model
    pts = norm.decode_points(x0.numpy())
    ref.calibrate(pts, x0[:, 3].numpy(), counts.numpy(), feats.numpy(), e_inc.numpy(),
                  m.n_layers, m.widths)  # fmt: skip
    norm.snap(pts)
    return [pts[k] for k in ("E", "x", "y", "layer")]


@pytest.mark.parametrize("post", ["numpy", "torch"])
def test_post_processing_is_per_shower(student, post):
    """A shower's calibration is the same alone as in a batch."""
    x0, counts, feats, e_inc = _inputs(student, n=6)
    m = student.model
    torch_post = dev.PostProcess(student.normalizer, m.n_layers, m.widths)

    def run(*args):
        if post == "numpy":
            return _numpy_post(student, *args)
        return [c.numpy() for c in torch_post(*args)]

    whole = run(x0, counts, feats, e_inc)
    ptr = np.concatenate([[0], np.cumsum(counts.numpy())])
    for i in range(len(counts)):
        lo, hi = ptr[i], ptr[i + 1]
        one = run(x0[lo:hi], counts[i : i + 1], feats[i : i + 1], e_inc[i : i + 1])
        for a, b in zip(whole, one, strict=True):
            np.testing.assert_array_equal(a[lo:hi], b)


def test_constants_follow_the_numpy_reference():
    from pointcalo.models.showerflow.features import N_SCALARS

    assert dev.N_SCALARS == N_SCALARS and dev.MAX_STRETCH == ref.MAX_STRETCH
