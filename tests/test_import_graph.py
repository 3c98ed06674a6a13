"""No import circle among our modules: a static check of the module-level import graph,
and each module imported first (with none of ours loaded) in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, clean_env

PACKAGES = ("qrmi_tasks", "generators")


def _modules() -> dict[str, Path]:
    """Every module of our packages by dotted name (``__main__`` left out: it runs)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__main__":
                continue
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.Module, name: str, is_package: bool, lazy: bool) -> set[str]:
    """Dotted names a module imports while it is being imported (not under ``if
    TYPE_CHECKING:``), and with ``lazy`` also inside its functions; a name may be a module
    or an attribute of one."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                found.add(module)
                found.update(f"{module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody):
                    visit(block)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, ast.With | ast.ClassDef):
                visit(node.body)  # class bodies run at import time too
            elif lazy and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(node.body)
            elif lazy and isinstance(node, ast.For | ast.While):
                visit(node.body)
                visit(node.orelse)

    visit(tree.body)
    return found


def import_graph(lazy: bool = False) -> dict[str, set[str]]:
    """module -> our modules it imports at module level (and the packages that executes);
    with ``lazy``, also the imports its functions make when called."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        tree = ast.parse(path.read_text(), str(path))
        for dotted in _imports(tree, name, path.name == "__init__.py", lazy):
            parts = dotted.split(".")
            for end in range(1, len(parts) + 1):  # a.b.c runs a, a.b and a.b.c
                prefix = ".".join(parts[:end])
                if prefix in modules and prefix != name and not name.startswith(prefix + "."):
                    targets.add(prefix)
        graph[name] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (``[a, b, ..., a]``), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_graph_sees_our_known_edges():
    graph = import_graph()
    assert "qrmi_tasks.errors" in graph["qrmi_tasks.config"]
    assert "qrmi_tasks.config" in graph["qrmi_tasks.providers.base"]
    assert "qrmi_tasks.front" in graph["generators.cli"]


def test_no_import_cycle_at_module_level():
    assert find_cycle(import_graph()) is None


def test_no_import_cycle_even_through_imports_inside_functions():
    """Lazy imports keep start-up fast; they must not hide a circle either (the provider
    registry's importlib lookup is the one dynamic edge: downwards, to a provider)."""
    graph = import_graph(lazy=True)
    assert "qrmi_tasks.runner" in graph["qrmi_tasks.cli"]  # an import inside a function
    assert find_cycle(graph) is None


def test_resource_types_are_declared_by_vendor_packages_only():
    graph = import_graph(lazy=True)
    # config reads resources; it is handed the type lookup, it imports no provider
    assert not any(m.startswith("qrmi_tasks.providers") for m in graph["qrmi_tasks.config"])
    # a vendor package's declarations import none of its provider modules (nor the SDKs
    # those import: see test_declarations_import_no_sdk)
    for package in ("ibm", "pasqal", "local"):
        name = f"qrmi_tasks.providers.{package}"
        inside = {m for m in graph[name] if m.startswith(name + ".")}
        assert inside <= {f"{name}.iam", f"{name}.options"}, (name, inside)
    # the registry finds packages on disk: it names none of them
    assert not any(
        m.startswith(("qrmi_tasks.providers.ibm", "qrmi_tasks.providers.pasqal"))
        for m in graph["qrmi_tasks.providers.registry"]
    )
    # the runner's command line module is nobody's library
    assert not any("qrmi_tasks.cli" in targets for targets in graph.values())


def test_declarations_import_no_sdk():
    """Every type's declaration is read (for a config error, --help, warnings) without
    importing an SDK or simulator."""
    code = (
        "import sys\n"
        "from qrmi_tasks.providers import compat, declarations\n"
        "assert len(declarations()) >= 4 and compat.markdown_table()\n"
        "heavy = ('qiskit', 'qiskit_ibm_runtime', 'pulser', 'pasqal_cloud', 'boto3', 'botocore',"
        " 'ibm_cloud_sdk_core', 'requests', 'numpy')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=ROOT,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# Imports each module with none of ours loaded before it (third-party modules stay cached:
# the order that matters is among ours), all in one interpreter to keep it quick.
_IMPORT_EACH_FIRST = """
import importlib, sys, traceback
ours = ("qrmi_tasks", "generators")
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] in ours]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=-3))
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def test_each_module_imports_first_in_a_fresh_interpreter():
    names = sorted(_modules())
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH_FIRST, *names],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=ROOT,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
