"""The house rules of docs/architecture.md, checked on the source: imports run one way, the
import graph has no loops, and the model registry is the only way to a model family."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("pointcalo", "voxelize")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(p): p
        for pkg in PACKAGES
        for p in sorted((REPO / pkg).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its source (top level and inside
    functions alike: a lazy import is still a dependency)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # ``from pkg import mod`` depends on pkg.mod; ``from mod import name`` on mod
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                    for a in node.names
                ]
            for target in targets:
                # the longest prefix that is one of our modules
                parts = target.split(".")
                for i in range(len(parts), 0, -1):
                    cand = ".".join(parts[:i])
                    if cand in modules:
                        if cand != name:
                            deps.add(cand)
                        break
        graph[name] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


GRAPH = import_graph()


def test_the_graph_sees_real_imports():
    assert "pointcalo.models.registry" in GRAPH["pointcalo.train.engine"]
    assert "voxelize.grids" in GRAPH["voxelize.presets"]
    assert len(GRAPH) > 60


def test_no_import_loops():
    assert _cycle(GRAPH) is None, " -> ".join(_cycle(GRAPH) or [])


def test_cycle_detector_finds_a_loop():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def _importers(pred_source, pred_target) -> list[str]:
    return sorted(
        f"{src} -> {dst}"
        for src, deps in GRAPH.items()
        if pred_source(src)
        for dst in deps
        if pred_target(dst)
    )


def _family(mod: str) -> bool:
    return mod.startswith("pointcalo.models") and mod != "pointcalo.models.registry"


@pytest.mark.parametrize(
    ("rule", "source", "target"),
    [
        ("voxelize imports no pointcalo", "voxelize", "pointcalo"),
        ("train imports no model family", "pointcalo.train", "family"),
        ("sampling imports no model", "pointcalo.sampling", "pointcalo.models"),
        ("metrics import no model", "pointcalo.metrics", "pointcalo.models"),
        ("metrics import no demo", "pointcalo.metrics", "pointcalo.demo"),
        ("model families import no training loop", "family", "pointcalo.train"),
        ("nothing imports the CLI but python -m pointcalo", "not-main", "pointcalo.cli"),
        ("only the CLI imports its commands", "not-cli", "pointcalo.commands"),
        ("nothing imports the demo but the CLI", "not-cli", "pointcalo.demo"),
        ("generation passes through no training", "pointcalo.generation", "pointcalo.train"),
        ("generation passes through no command", "pointcalo.generation", "pointcalo.commands"),
        ("sampling commands use no training", "pointcalo.commands.sampling", "pointcalo.train"),
        ("conditions import no model", "pointcalo.conditions", "pointcalo.models"),
        ("grids do not import presets", "voxelize.grids", "voxelize.presets"),
    ],
)
def test_layering(rule, source, target):
    def match(spec: str, mod: str) -> bool:
        if spec == "family":
            return _family(mod)
        if spec == "not-main":
            return mod != "pointcalo.__main__"
        if spec == "not-cli":
            return not (mod == "pointcalo.cli" or mod.startswith("pointcalo.commands"))
        return mod == spec or mod.startswith(spec + ".") if spec else True

    bad = _importers(lambda m: match(source, m), lambda m: match(target, m))
    assert not bad, f"{rule}: {bad}"


def test_no_family_is_named_outside_its_folder():
    """Only the registry (by module path) and the family's own folder name a family."""
    from pointcalo.models.registry import FAMILIES

    for name in FAMILIES:
        prefix = f"pointcalo.models.{name}"
        users = _importers(
            lambda m, p=prefix: not (m == p or m.startswith(p + ".")),
            lambda m, p=prefix: m == p or m.startswith(p + "."),
        )
        # consistency distillation is built on the CaloClouds family, the GPT of the two-stage
        # latent models on their VQ-VAE (grid or points): by design
        stage2 = ("pointcalo.models.consistency", "pointcalo.models.grid_gpt",
                  "pointcalo.models.point_gpt")  # fmt: skip
        users = [u for u in users if not u.startswith(stage2)]
        assert not users, users
