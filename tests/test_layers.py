"""Imports point one way: the layers of the package, and no import cycle at all.

The package is built in layers, each importing only from itself and the layers below:

====  =================  ==============================================================
rank  layer              modules
====  =================  ==============================================================
0     values             ``_values``, ``_errors``, ``_secret``, ``_json_lines``,
                         ``_arg_types``, ``_version``
1     core               ``_core`` (pure machines; ``test_core_purity.py`` keeps them so)
2     network            ``_net`` (transports, connecting, handshake, frames, tokens)
3     venues             ``venues`` (the dialects and the Tradovate token source)
4     actors             ``_actors`` (Trio tasks around the core; their queues and bus)
5     feed               ``_feed`` (``open_feed``, intent, the slot table)
6     applications       ``sinks``, ``_cli``, ``_chaos``, ``__main__``
7     the public face    ``tickactors`` (``__init__``)
====  =================  ==============================================================

The simulator (``sim``) stands beside the applications and may import values only: it
is the venue, and must not share the client's understanding of the protocol. The
applications may import it (the demo and the chaos soak run it).

Every import counts: at module level, inside functions, and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tickactors

PACKAGE = Path(tickactors.__file__).parent

LAYERS: list[tuple[str, ...]] = [
    ("_values", "_errors", "_secret", "_json_lines", "_arg_types", "_version"),
    ("_core",),
    ("_net",),
    ("venues",),
    ("_actors",),
    ("_feed",),
    ("sinks", "_cli", "_chaos", "__main__"),
]
SIM = "sim"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports (a name inside a module counts as it)."""
    tree = ast.parse(path.read_text(), str(path))
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            submodules = {f"{module}.{alias.name}" for alias in node.names} & known
            if len(submodules) < len(node.names):  # a name of the module itself
                found.add(module)
            found.update(submodules)
    out = set()
    for item in found:
        while item and item not in known:
            item = item.rpartition(".")[0]
        if item and item != name:
            out.add(item)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def layer_of(module: str) -> int | str:
    if module == "tickactors":
        return len(LAYERS)
    top = module.split(".")[1]
    if top == SIM:
        return SIM
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return out


def test_every_module_has_a_layer():
    for module in modules():
        layer_of(module)


def test_no_import_points_upwards():
    upwards = []
    for module, targets in graph().items():
        rank = layer_of(module)
        for target in sorted(targets):
            other = layer_of(target)
            if rank == SIM:
                ok = other == SIM or other == 0
            elif other == SIM:  # the demo and the soak run the simulator
                ok = rank == len(LAYERS) - 1
            else:
                assert isinstance(rank, int) and isinstance(other, int)
                ok = other <= rank
            if not ok:
                upwards.append(f"{module} ({rank}) imports {target} ({other})")
    assert upwards == []


def test_no_import_cycle_type_checking_included():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
