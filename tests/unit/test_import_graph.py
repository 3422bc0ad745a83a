"""House rules kept by the code, read from the import graph built with ``ast`` (not a string grep).

Layers (DESIGN §1): adapters fetch and map only and never import ``backtest``; the store is the one place
that runs SQL; the engine is numbers in, numbers out (no duckdb, pandas, web3, click — not even through a
module it imports); rule kinds and liquidation models are plug-ins the engine calls, with no I/O; the CLI
only wires verbs (one per module, no SQL). There are no import circles, counting imports inside functions.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("backtest", "adapters")
EXTRA = ("mbt_errors",)
IO_LIBRARIES = ("duckdb", "pandas", "pyarrow", "web3", "eth_abi", "eth_utils", "click", "rich", "requests")
STORE_MODULES = {"backtest.store", "backtest.ingest.rpc_store"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            out[_module_name(path)] = path
    for name in EXTRA:
        out[name] = ROOT / f"{name}.py"
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import statement of a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    top = {id(n) for n in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` and try-blocks at module level still count as module level
        for sub in ast.walk(node):
            if isinstance(sub, (ast.Import, ast.ImportFrom)) and not isinstance(node, (ast.FunctionDef,
                                                                                        ast.AsyncFunctionDef,
                                                                                        ast.ClassDef)):
                top.add(id(sub))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((alias.name, node.lineno, id(node) in top))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [a.name for a in node.names]
            subs = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in MODULES]
            for target in subs or [mod]:
                out.append((target, node.lineno, id(node) in top))
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _ours(target: str) -> str | None:
    """The project module an import names (``a.b.c`` → the longest known prefix), or None."""
    parts = target.split(".")
    for n in range(len(parts), 0, -1):
        cand = ".".join(parts[:n])
        if cand in MODULES:
            return cand
    return None


def _closure(start: str) -> dict[str, list[str]]:
    """Every project module reachable from ``start`` (lazy imports included) → the path that reaches it."""
    seen = {start: [start]}
    todo = [start]
    while todo:
        cur = todo.pop()
        for target, _, _ in GRAPH[cur]:
            mod = _ours(target)
            if mod and mod not in seen:
                seen[mod] = seen[cur] + [mod]
                todo.append(mod)
    return seen


def _external(mod: str) -> set[str]:
    return {t.split(".")[0] for t, _, _ in GRAPH[mod] if _ours(t) is None}


def test_the_graph_is_real():
    assert "backtest.engine.fast" in MODULES and "adapters.csv" in MODULES
    assert any(t == "numpy" for t, _, _ in GRAPH["backtest.engine.fast"])
    assert _ours("backtest.engine.types.Params") == "backtest.engine.types"


def test_adapters_never_import_backtest():
    bad = [(m, t, line) for m in MODULES if m.startswith("adapters")
           for t, line, _ in GRAPH[m] if t.split(".")[0] == "backtest"]
    assert bad == []


@pytest.mark.parametrize("start", [m for m in MODULES if m.startswith(("backtest.engine", "backtest.models",
                                                                      "backtest.kinds"))])
def test_engine_and_plugins_reach_no_io_library(start):
    reach = _closure(start)
    bad = {lib: " → ".join(path) for mod, path in reach.items() for lib in _external(mod) if lib in IO_LIBRARIES}
    assert bad == {}


def test_engine_imports_no_layer_above_it():
    above = ("backtest.store", "backtest.runner", "backtest.cli", "backtest.ingest", "backtest.config",
             "backtest.kinds", "backtest.outputs", "backtest.jobs", "backtest.demo", "adapters")
    bad = [(m, t) for m in MODULES if m.startswith("backtest.engine")
           for t, _, _ in GRAPH[m] if _ours(t) and _ours(t).startswith(above)]
    assert bad == []


def test_plugins_import_no_store_cli_or_adapters():
    above = ("backtest.store", "backtest.runner", "backtest.cli", "backtest.ingest", "adapters", "backtest.jobs")
    bad = [(m, t) for m in MODULES if m.startswith(("backtest.models", "backtest.kinds"))
           for t, _, _ in GRAPH[m] if _ours(t) and _ours(t).startswith(above)]
    assert bad == []


def test_only_the_store_runs_sql():
    """No ``.con`` (the DuckDB connection) outside the store modules, no duckdb import outside them."""
    bad = []
    for name, path in MODULES.items():
        if name in STORE_MODULES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "con":
                bad.append(f"{name}:{node.lineno}: .con")
        for t, line, _ in GRAPH[name]:
            if t.split(".")[0] == "duckdb":
                bad.append(f"{name}:{line}: import duckdb")
    assert bad == []


SQL = re.compile(r"^\s*(SELECT|INSERT|DELETE|UPDATE|CREATE|DROP|WITH)\s", re.I)


def test_no_sql_in_the_cli():
    bad = []
    for name, path in MODULES.items():
        if not name.startswith("backtest.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.match(node.value) \
                    and re.search(r"\b(FROM|INTO|TABLE|SET)\b", node.value, re.I):
                bad.append(f"{name}:{node.lineno}")
    assert bad == []


def test_one_verb_per_cli_module():
    counts = {}
    for name, path in MODULES.items():
        if not name.startswith("backtest.cli."):
            continue
        n = 0
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for dec in node.decorator_list:
                    call = dec.func if isinstance(dec, ast.Call) else dec
                    if isinstance(call, ast.Attribute) and call.attr in ("command", "group") \
                            and isinstance(call.value, ast.Name) and call.value.id == "cli":
                        n += 1
        counts[name] = n
    assert counts and max(counts.values()) <= 1, counts


def test_no_import_circles():
    """Strongly connected components of the project graph (lazy imports included) have one module each."""
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def edges(m):
        return sorted({_ours(t) for t, _, _ in GRAPH[m] if _ours(t) and _ours(t) != m})

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    import sys

    sys.setrecursionlimit(10000)
    for m in sorted(MODULES):
        if m not in index:
            visit(m)
    circles = [sorted(c) for c in comps if len(c) > 1]
    assert circles == []


def test_every_verb_module_is_named_in_main_verbs():
    """Verb modules are imported when their verb is invoked: each one must be named in ``main.VERBS``, and
    ``mbt --help`` must list every verb without importing them first."""
    import importlib

    from click.testing import CliRunner

    from backtest.cli.main import VERBS, cli

    listed = CliRunner().invoke(cli, ["--help"])
    assert listed.exit_code == 0
    for verb in VERBS:
        assert f"  {verb} " in listed.output, verb
    registered = set()
    for name in MODULES:
        if name.startswith("backtest.cli.") and name not in ("backtest.cli.main", "backtest.cli.commands"):
            before = set(cli.commands)
            importlib.import_module(name)
            registered |= set(cli.commands) - before
    assert registered <= set(VERBS), sorted(registered - set(VERBS))
    assert set(cli.commands) == set(VERBS)


def test_reading_a_runs_inputs_loads_no_numba():
    """``backtest.inputs`` (what ``load_inputs`` needs) imports neither numba nor the compiled engine."""
    import subprocess
    import sys

    code = "import sys, backtest.inputs; print(sorted(m for m in sys.modules if m.split('.')[0] == 'numba')[:3])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
