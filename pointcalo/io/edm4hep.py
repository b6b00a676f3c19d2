"""EDM4hep (podio ROOT) files of full simulation into local shower points, via uproot.

Key4hep's full simulation (DD4hep / ddsim) writes ``SimCalorimeterHit`` collections: global
hit positions (mm) and energies (GeV) with a DD4hep ``cellID``. For each event this reader takes
the hits of the chosen collections (default: every collection with ``Hits`` in its name, such as
ILD's ``ECalBarrelSiHitsEven``, that has ``energy`` and ``position`` branches; hit
contributions excluded), the generator particle that started the shower
(the first ``MCParticle`` with ``generatorStatus == 1``: its energy, momentum direction,
vertex) and turns the hits into local shower points with :mod:`voxelize.placement`: the axis
is the particle's direction, ``z`` the depth along it, measured from where the axis enters the
calorimeter (default: the plane of the first hit in front of the vertex; or ``origin`` mm along
the axis from the vertex), ``x``, ``y`` transverse; hits behind the vertex keep negative
depths. Energies become MeV.

The layer of a hit comes from its ``cellID`` when a DD4hep encoding string is known, given as
``encoding`` or stored in the file's metadata as ``<collection>__CellIDEncoding`` (both the
``name:width`` and the ``name:offset:width`` syntax, negative widths signed), or else from the
depth, by the layer edges of a voxelize grid (default ``ild``).
"""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np

from pointcalo.errors import PointcaloError, ShowerFormatError
from pointcalo.interrupts import check as check_interrupt

TREE = "events"
GEV = 1e3  # MeV per GeV


def parse_encoding(encoding: str) -> dict[str, tuple[int, int, bool]]:
    """DD4hep bit-field syntax -> ``{field: (offset, width, signed)}``.

    ``system:5,side:-2,module:8`` (widths; offsets accumulate) or
    ``system:0:5,module:5:3,layer:16:6`` (explicit offsets); a negative width is signed. A
    field without a name or width, or one reaching past bit 64, is a one-line error.
    """
    fields: dict[str, tuple[int, int, bool]] = {}
    offset = 0
    for item in encoding.split(","):
        parts = item.strip().split(":")
        try:
            if len(parts) == 2:
                name, width = parts[0], int(parts[1])
            elif len(parts) == 3:
                name, offset, width = parts[0], int(parts[1]), int(parts[2])
            else:
                raise ValueError
        except ValueError:
            raise PointcaloError(f"encoding: bad field {item!r} in {encoding!r}") from None
        if not name or width == 0 or offset < 0 or offset + abs(width) > 64:
            raise PointcaloError(
                f"encoding: field {item!r} in {encoding!r}: a named field needs a width "
                "other than 0 and must fit the 64 bits of a cellID"
            )
        fields[name] = (offset, abs(width), width < 0)
        offset += abs(width)
    return fields


def decode_field(cell_id: np.ndarray, encoding: str, field: str) -> np.ndarray:
    """The value of bit field ``field`` of 64-bit ``cell_id`` values under ``encoding``."""
    fields = parse_encoding(encoding)
    if field not in fields:
        raise ShowerFormatError(
            None, "encoding", f"no field {field!r} in {encoding!r} (has {', '.join(fields)})"
        )
    offset, width, signed = fields[field]
    raw = (np.asarray(cell_id, dtype=np.uint64) >> np.uint64(offset)) & np.uint64((1 << width) - 1)
    value = raw.astype(np.int64)
    if signed:
        value = np.where(value >= 1 << (width - 1), value - (1 << width), value)
    return value


def _leaf(keys: set[str], name: str, leaf: str) -> str | None:
    """The branch of ``leaf`` of collection ``name``: podio's split layout
    ``name/name.leaf`` or the flat ``name.leaf``."""
    for key in (f"{name}/{name}.{leaf}", f"{name}.{leaf}"):
        if key in keys:
            return key
    return None


HIT_LEAVES = ("energy", "position.x", "position.y", "position.z")
MC_LEAVES = (
    "generatorStatus",
    "mass",
    "momentum.x",
    "momentum.y",
    "momentum.z",
    "vertex.x",
    "vertex.y",
    "vertex.z",
)


def _collections(tree, path: Path, wanted: list[str] | None) -> list[str]:
    keys = set(tree.keys())

    def complete(name: str) -> bool:
        return all(_leaf(keys, name, b) for b in HIT_LEAVES)

    if wanted:
        for name in wanted:
            if not complete(name):
                raise ShowerFormatError(
                    path, name, "not a calorimeter-hit collection (energy, position branches)"
                )
        return list(wanted)
    found = sorted(k.split("/")[0].split(".")[0] for k in keys if k.endswith(".energy"))
    names = [
        n for n in dict.fromkeys(found) if "Hits" in n and "Contributions" not in n and complete(n)
    ]
    if not names:
        raise ShowerFormatError(path, None, "no calorimeter-hit collection (a name with Hits)")
    return names


def _stored_encodings(file) -> dict[str, str]:
    """``collection -> encoding`` from the podio metadata (empty if absent)."""
    try:
        meta = file["metadata"]
        keys = meta["PARAMETERS/_stringMap/_stringMap.first"].array(library="ak")[0]
        values = meta["PARAMETERS/_stringMap/_stringMap.second"].array(library="ak")[0]
    except Exception:  # no or other metadata: fall back to the depth
        return {}
    out = {}
    for k, v in zip(ak.to_list(keys), ak.to_list(values), strict=False):
        if str(k).endswith("__CellIDEncoding") and v:
            out[str(k)[: -len("__CellIDEncoding")]] = str(v[0])
    return out


def read_edm4hep(
    path: str | os.PathLike[str],
    collections: list[str] | None = None,
    encoding: str | None = None,
    origin: float | None = None,
    layer_grid: str = "ild",
    start: int = 0,
    stop: int | None = None,
) -> ak.Array:
    """Showers (the data model, with per-point ``z``) of events ``start:stop`` of an EDM4hep
    file; see the module docstring."""
    import uproot

    import voxelize as vx
    from pointcalo.showers import make_showers
    from voxelize.placement import global_to_local

    path = Path(path)
    try:
        file = uproot.open(path)
        tree = file[TREE]
    except Exception as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ShowerFormatError(path, TREE, f"not a readable EDM4hep file: {msg}") from None
    names = _collections(tree, path, collections)
    stored = {} if encoding else _stored_encodings(file)
    keys = set(tree.keys())
    mc = [_leaf(keys, "MCParticles", b) for b in MC_LEAVES]
    if not all(mc):
        raise ShowerFormatError(path, "MCParticles", "missing (needed for the shower axis)")
    hit = {n: [_leaf(keys, n, b) for b in HIT_LEAVES] for n in names}
    cell = {n: _leaf(keys, n, "cellID") for n in names}
    branches = [*mc, *(b for n in names for b in hit[n]), *(c for c in cell.values() if c)]
    stop = tree.num_entries if stop is None else min(stop, tree.num_entries)
    arrays = {b: tree[b].array(entry_start=start, entry_stop=stop, library="ak") for b in branches}
    grid = vx.load_grid(layer_grid)

    inc, counts, cols = [], [], {k: [] for k in ("E", "x", "y", "z", "layer")}
    for ev in range(stop - start):
        status = np.asarray(arrays[mc[0]][ev])
        if len(status) == 0:
            raise ShowerFormatError(path, "MCParticles", f"event {start + ev} has no particle")
        gen = int(np.argmax(status == 1)) if np.any(status == 1) else 0
        p = np.array([float(arrays[b][ev][gen]) for b in mc[2:5]])
        vertex = np.array([float(arrays[b][ev][gen]) for b in mc[5:8]])
        mass = float(arrays[mc[1]][ev][gen])
        energy = float(np.sqrt(p @ p + mass**2)) * GEV
        e, pos, layer = [], [], []
        for n in names:
            energy_b, *xyz = (np.asarray(arrays[b][ev], np.float64) for b in hit[n])
            e.append(energy_b * GEV)
            pos.append(np.stack(xyz, 1))
            code = encoding or stored.get(n)
            if code is not None and cell[n] is not None:
                ids = np.asarray(arrays[cell[n]][ev], np.uint64)
                layer.append(decode_field(ids, code, "layer"))
            else:
                layer.append(None)
        e_all = np.concatenate(e)
        x, y, z = global_to_local(np.concatenate(pos), vertex, p)
        z = z - (_entry_depth(z) if origin is None else origin)
        depth_layer = np.clip(np.searchsorted(grid.layer_edges, z, side="right") - 1, 0, None)
        parts, at = [], 0
        for lay, block in zip(layer, e, strict=True):
            parts.append(lay if lay is not None else depth_layer[at : at + len(block)])
            at += len(block)
        inc.append(energy)
        counts.append(len(e_all))
        for key, col in (("E", e_all), ("x", x), ("y", y), ("z", z)):
            cols[key].append(col)
        cols["layer"].append(np.concatenate(parts) if parts else np.zeros(0, np.int64))
    points = {
        k: np.concatenate(v).astype(np.int32 if k == "layer" else np.float32)
        if v
        else np.zeros(0, np.int32 if k == "layer" else np.float32)
        for k, v in cols.items()
    }
    return make_showers(np.asarray(inc, np.float32), points, counts=counts, allow_empty=True)


def _entry_depth(z: np.ndarray) -> float:
    """Depth (mm from the vertex along the axis) where the shower enters the calorimeter: the
    plane of the first hit in front of the vertex (hits behind it, e.g. on the far side of the
    detector, do not count); 0 without such hits."""
    ahead = z[z >= 0]
    return float(ahead.min()) if len(ahead) else 0.0


def is_edm4hep(path: str | os.PathLike[str]) -> bool:
    """Whether a ROOT file looks like EDM4hep / podio output (an ``events`` tree and podio
    metadata)."""
    import uproot

    try:
        with uproot.open(path) as f:
            keys = {k.split(";")[0] for k in f.keys()}  # noqa: SIM118 (uproot directory)
    except Exception:
        return False
    return TREE in keys and "podio_metadata" in keys


class EDM4hepReader:
    """Reader interface of :mod:`pointcalo.io` (``n_showers``, ``read``, ``iter_chunks``) over
    an EDM4hep file; one event is one shower."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        collections: list[str] | None = None,
        encoding: str | None = None,
        allow_empty: bool = False,
    ) -> None:
        import uproot

        self.path = Path(path)
        self.options = {"collections": collections, "encoding": encoding}
        try:
            with uproot.open(self.path) as f:
                self.n_showers = int(f[TREE].num_entries)
        except Exception as err:
            msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ShowerFormatError(
                self.path, TREE, f"not a readable EDM4hep file: {msg}"
            ) from None
        self.attrs = {"source": str(self.path), "format": "EDM4hep", "units": "MeV, mm"}

    def read(self, start: int = 0, stop: int | None = None) -> ak.Array:
        return read_edm4hep(self.path, start=start, stop=stop, **self.options)

    def iter_chunks(self, chunk_size: int = 1024):
        for start in range(0, self.n_showers, chunk_size):
            check_interrupt()  # Ctrl-C between chunks, not after the whole file
            yield self.read(start, min(start + chunk_size, self.n_showers))

    def close(self) -> None:
        pass

    def __enter__(self) -> EDM4hepReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
