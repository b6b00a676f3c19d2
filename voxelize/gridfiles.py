"""Grids from files and dicts: CaloChallenge binning XML, YAML / dict definitions.

``binning/`` holds the CaloChallenge binning files shipped with voxelize and ``geometry/`` the
YAML definitions of the preset grids.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from voxelize.grids import CartesianGrid, CylindricalGrid, Grid, GridError, RectilinearGrid

BINNING_DIR = Path(__file__).with_name("binning")
GEOMETRY_DIR = Path(__file__).with_name("geometry")


def grid_from_dict(spec: dict[str, Any], source: str = "<dict>") -> Grid:
    """Build a grid from its dict form (as in voxelize/geometry/*.yaml).

    Cartesian: ``{kind: cartesian, layers: [{cells: [nx, ny], cell_size: [dx, dy],
    origin: [x0, y0]}, ...]}`` or, for identical layers, ``n_layers``, ``cells``,
    ``cell_size``, ``origin`` at the top. Cylindrical: ``{kind: cylindrical, layers:
    [{r_edges: [...], n_alpha: n}, ...]}``, or ``n_layers``, ``r_edges``, ``n_alpha`` at the top
    for identical layers, or ``xml: binning_dataset_2.xml`` (a file name shipped with
    voxelize, or a path). Rectilinear (cells on arbitrary edges): ``{kind: rectilinear, layers:
    [{x_edges: [...], y_edges: [...]}, ...]}``. Optional ``layer_depth`` / ``layer_edges`` (mm).
    """
    kind = spec.get("kind")
    name = str(spec.get("name", Path(source).stem))
    depth = spec.get("layer_depth")
    edges = spec.get("layer_edges")
    depth = None if depth is None else np.asarray(depth, np.float64)
    edges = None if edges is None else np.asarray(edges, np.float64)
    try:
        if kind == "cartesian":
            if "layers" not in spec:
                return CartesianGrid.uniform(
                    name,
                    int(spec["n_layers"]),
                    tuple(spec["cells"]),
                    tuple(spec["cell_size"]),
                    tuple(spec["origin"]),
                    depth,
                    edges,
                )
            layers = spec["layers"]
            col = lambda key, i, dt: np.array([lay[key][i] for lay in layers], dt)  # noqa: E731
            return CartesianGrid(
                name=name,
                nx=col("cells", 0, np.int64),
                ny=col("cells", 1, np.int64),
                dx=col("cell_size", 0, np.float64),
                dy=col("cell_size", 1, np.float64),
                x_min=col("origin", 0, np.float64),
                y_min=col("origin", 1, np.float64),
                layer_depth=depth,
                layer_edges=edges,
            )
        if kind == "rectilinear":
            layers = spec["layers"]
            return RectilinearGrid(
                name=name,
                x_edges=tuple(np.asarray(lay["x_edges"], np.float64) for lay in layers),
                y_edges=tuple(np.asarray(lay["y_edges"], np.float64) for lay in layers),
                layer_depth=depth,
                layer_edges=edges,
            )
        if kind == "cylindrical":
            if "xml" in spec:
                xml = Path(spec["xml"])
                path = xml if xml.is_absolute() or xml.exists() else BINNING_DIR / xml
                grid = grid_from_xml(path, name=name)
                return CylindricalGrid(
                    name=name,
                    r_edges=grid.r_edges,
                    n_alpha=grid.n_alpha,
                    layer_depth=depth,
                    layer_edges=edges,
                )
            if "layers" not in spec:  # identical layers
                n = int(spec["n_layers"])
                layers = [{"r_edges": spec["r_edges"], "n_alpha": spec["n_alpha"]}] * n
            else:
                layers = spec["layers"]
            return CylindricalGrid(
                name=name,
                r_edges=tuple(np.asarray(lay["r_edges"], np.float64) for lay in layers),
                n_alpha=np.array([int(lay["n_alpha"]) for lay in layers], np.int64),
                layer_depth=depth,
                layer_edges=edges,
            )
    except KeyError as err:
        raise GridError(f"{source}: missing key {err.args[0]!r} in grid definition") from None
    except (TypeError, IndexError) as err:
        raise GridError(f"{source}: malformed grid definition: {err}") from None
    raise GridError(
        f"{source}: kind must be 'cartesian', 'rectilinear' or 'cylindrical', got {kind!r}"
    )


def grid_from_xml(
    path: str | Path, name: str | None = None, particle: str | None = None
) -> CylindricalGrid:
    """Read a CaloChallenge binning XML file (``<Bin><Layer r_edges=... n_bin_alpha=.../>``).

    Layers with ``r_edges="0"`` have no cells but keep their place in the layer numbering.
    """
    path = Path(path)
    if not path.exists():
        raise GridError(f"{path}: no such binning file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise GridError(f"{path}: not valid XML: {err}") from None
    bins = [b for b in root.iter("Bin") if particle is None or b.get("name") == particle]
    if not bins:
        raise GridError(f"{path}: no <Bin> element" + (f" named {particle!r}" if particle else ""))
    r_edges, n_alpha = [], []
    for layer in bins[0].iter("Layer"):
        try:
            r_edges.append(np.array([float(v) for v in layer.get("r_edges", "").split(",")]))
            n_alpha.append(int(layer.get("n_bin_alpha", "1")))
        except ValueError:
            raise GridError(
                f"{path}: layer {layer.get('id')}: bad r_edges or n_bin_alpha"
            ) from None
    return CylindricalGrid(
        name=name or path.stem, r_edges=tuple(r_edges), n_alpha=np.array(n_alpha, np.int64)
    )


def grid_from_yaml(path: str | Path) -> Grid:
    """A grid from a YAML file holding its dict form (:func:`grid_from_dict`)."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise GridError(f"{path}: no such grid file")
    try:
        with path.open(encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except UnicodeDecodeError:
        raise GridError(f"{path}: not a text (YAML) file") from None
    except yaml.YAMLError as err:  # syntax errors, and tags such as !!python (safe loading)
        first = " ".join(str(err).split())[:160]
        raise GridError(f"{path}: not valid YAML: {first}") from None
    except IsADirectoryError:
        raise GridError(f"{path}: is a folder, not a grid file") from None
    if not isinstance(data, dict):
        raise GridError(f"{path}: a grid file must hold a mapping")
    return grid_from_dict(data, source=str(path))


def write_grid_yaml(grid: Grid, path: str | Path) -> Path:
    """Write ``grid`` as a YAML grid file that :func:`grid_from_yaml` reads back equal."""
    import yaml

    path = Path(path)
    path.write_text(yaml.safe_dump(_plain(grid.to_dict()), sort_keys=False))
    return path


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python numbers and lists (for YAML)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
