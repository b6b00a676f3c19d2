"""``pointcalo export --format ddml``: a TorchScript module with Key4hep DDML's CaloClouds
interface, run in a Python where pointcalo cannot be imported, the way DDML's
``CaloCloudsTwoAngleModel::prepareInput`` / ``convertOutput`` and ``TorchInference`` use it,
and checked against pointcalo's own sampler (same model, same conditions) statistically."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from pointcalo.cli import main
from tests.conftest import WITHOUT_POINTCALO

#: DDML's side, with pointcalo and voxelize unimportable: inputs [1, 1] float32 (energy GeV,
#: theta, phi degrees), the first 35,000 floats of the output read as in convertOutput.
RUNNER = (
    WITHOUT_POINTCALO
    + """
import numpy as np
import torch
torch.set_num_threads(1)
torch.manual_seed(0)
model = torch.jit.load(sys.argv[1])
energy, theta, phi, n = float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rows = []
for _ in range(n):
    inputs = [torch.tensor([v], dtype=torch.float32).view(1, 1) for v in (energy, theta, phi)]
    out = model(*inputs)
    flat = out.contiguous().view(-1)[:35000].numpy()  # DDML copies m_maxNumElements floats
    n_layer = 30
    counts = flat[:n_layer]
    n_el = int(counts.sum()) * 4
    pts = flat[n_layer : n_layer + n_el].reshape(-1, 4)  # x, y, layer, E
    per_layer = [[] for _ in range(n_layer)]
    for x, y, layer, e in pts:
        per_layer[int(layer)].append((x, y, e))
    rows.append({
        "shape": list(out.shape), "n": len(pts), "counts": counts.tolist(),
        "rebuilt": [len(p) for p in per_layer], "e_sum": float(pts[:, 3].sum()),
        "e_min": float(pts[:, 3].min()), "tail": float(np.abs(flat[n_layer + n_el:]).sum()),
        "r_mean": float(np.average(np.hypot(pts[:, 0], pts[:, 1]), weights=pts[:, 3])),
        "depth": float(np.average(pts[:, 2], weights=pts[:, 3])),
    })
print(__import__("json").dumps(rows))
"""
)


@pytest.fixture(scope="module")
def angled_student(tmp_path_factory):
    """A tiny CaloClouds teacher conditioned on theta, phi and the particle, and its one-step
    student (a few steps each: the test is of the interface, not of fidelity)."""
    from pointcalo.clouds import from_showers
    from pointcalo.config import validate_config
    from pointcalo.train.engine import train
    from tests.conftest import TINY_CALOCLOUDS, random_showers

    tmp = tmp_path_factory.mktemp("ddml")
    rng = np.random.default_rng(0)
    n = 64
    named = {
        "theta": rng.uniform(0, 0.78, n),
        "phi": rng.uniform(0, 2 * np.pi, n),
        "pdg": rng.choice([11.0, 22.0], n),
    }
    showers = random_showers(n, seed=3, **named)
    data = from_showers(showers, conditions=tuple(named))
    run = {"batch_size": 8, "device": "cpu"}
    data_cfg = {"val_fraction": 0.0, "conditions": list(named)}
    teacher = train(
        validate_config({
            "model": TINY_CALOCLOUDS, "data": data_cfg,
            "train": {**run, "steps": 4, "out": str(tmp / "cc")},
        }),
        data=data, progress=False, log=lambda m: None,
    )  # fmt: skip
    student = train(
        validate_config({
            "model": {"name": "consistency", "teacher": str(teacher), "n_discretisation": 4},
            "data": data_cfg, "train": {**run, "steps": 3, "out": str(tmp / "cm")},
        }),
        data=data, progress=False, log=lambda m: None,
    )  # fmt: skip
    return tmp, student


def _run_ddml(path, energy, theta, phi, n) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(path), str(energy), str(theta), str(phi), str(n)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_ddml_export_runs_as_ddml_calls_it_and_matches_pointcalos_sampler(angled_student, capsys):
    from pointcalo.generation import generate, load_model

    tmp, student = angled_student
    out = tmp / "cc_ddml.pt"
    assert main(["export", str(student), "-o", str(out), "--format", "ddml", "--particle", "22",
                 "-q"]) == 0  # fmt: skip
    card = json.loads(out.with_name(out.name + ".json").read_text())
    assert card["export"]["fixed_conditions"] == {"pdg": 22.0}  # no impact point in this model
    assert card["export"]["angles_used"] == ["theta", "phi"]
    energy_gev, theta_deg, phi_deg, n = 50.0, 30.0, 100.0, 60
    rows = _run_ddml(out, energy_gev, theta_deg, phi_deg, n)
    for r in rows:
        assert r["shape"] == [1, 35000]
        assert r["counts"] == r["rebuilt"]  # convertOutput's layers hold what the counts say
        assert r["n"] == sum(r["counts"]) and r["tail"] == 0.0 and r["e_min"] > 0
    # pointcalo's own sampler at the same conditions (angles in radians, impact at 0)
    m = load_model(student)
    cond = {
        "theta": np.full(n, np.radians(theta_deg)), "phi": np.full(n, np.radians(phi_deg)),
        "pdg": np.full(n, 22.0), "impact_x": np.zeros(n), "impact_y": np.zeros(n),
    }  # fmt: skip
    cond = {k: v for k, v in cond.items() if k in m.normalizer.extra_names}
    clouds = generate(m.model, m.net, m.normalizer, np.full(n, energy_gev * 1e3), m.cfg, seed=7,
                      conditions=cond, limits=m.limits)  # fmt: skip
    counts = np.diff(clouds.offsets)
    owner = np.repeat(np.arange(n), counts)
    e = clouds.points["E"].astype(np.float64)
    ours = {
        "n": counts.astype(float),
        "e_sum": np.bincount(owner, e, n),
        "depth": np.bincount(owner, e * clouds.points["layer"], n) / np.bincount(owner, e, n),
    }
    for key, values in ours.items():
        theirs = np.array([r[key] for r in rows])
        se = np.sqrt(values.var() / n + theirs.var() / n) + 1e-9
        assert abs(values.mean() - theirs.mean()) < 4 * se, (key, values.mean(), theirs.mean())


def test_ddml_export_needs_the_particle_a_model_is_conditioned_on(angled_student, capsys):
    tmp, student = angled_student
    out = tmp / "no_particle.pt"
    assert main(["export", str(student), "-o", str(out), "--format", "ddml", "-q"]) == 2
    err = capsys.readouterr().err
    assert "conditioned on pdg" in err and "--particle" in err and not out.exists()
    assert main(["export", str(student), "-o", str(out), "--particle", "22"]) == 2
    assert "only --format ddml" in capsys.readouterr().err


def test_pack_ddml_counts_layers_and_truncates_keeping_the_visible_energy():
    """DDML's layout: counts per layer, then (x, y, layer, E) in layer order; a shower beyond
    the cap keeps its most energetic points with the shower's visible energy."""
    from pointcalo.models.consistency.ddml import pack_ddml

    rng = np.random.default_rng(1)
    counts = torch.tensor([7, 40])
    p = int(counts.sum())
    e = torch.as_tensor(rng.exponential(1.0, p))
    x, y = torch.as_tensor(rng.normal(0, 5, p)), torch.as_tensor(rng.normal(0, 5, p))
    layer = torch.as_tensor(rng.integers(0, 3, p))
    floats = 3 + 4 * 10  # room for 10 points per shower
    out = pack_ddml(e, x, y, layer, counts, 3, floats).numpy()
    assert out.shape == (2, floats)
    first = out[0, 3 : 3 + 28].reshape(7, 4)
    np.testing.assert_array_equal(out[0, :3], np.bincount(layer[:7].numpy(), minlength=3))
    assert np.all(np.diff(first[:, 2]) >= 0)  # layer order
    np.testing.assert_allclose(np.sort(first[:, 3]), np.sort(e[:7].numpy()), rtol=1e-6)
    second = out[1, 3:].reshape(10, 4)
    assert out[1, :3].sum() == 10
    np.testing.assert_allclose(second[:, 3].sum(), e[7:].sum().item(), rtol=1e-5)
    strongest = np.argsort(-e[7:].numpy())[:10]
    np.testing.assert_allclose(
        np.sort(second[:, 0]), np.sort(x[7:].numpy()[strongest]), rtol=1e-5, atol=1e-6
    )
