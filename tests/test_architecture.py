"""The house (issue #21): rooms by job, no import cycles, lazy imports only with a reason.

The import graph is read from the sources (``ast``), module level *and* inside functions:
an import inside a function still runs in a circle when the function is called, so a
cycle held open only by a function-level import is still a cycle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "lycoris_eval"
ROOMS = {"inputs", "grid", "scoring", "compare", "report", "cli", "tab", "api", "webui", "sweep"}
TOP_MODULES = {"__init__.py", "__main__.py", "errors.py", "config.py", "fileio.py"}
# what a function-level import may keep off the import path (with its reason in a comment)
HEAVY = {
    "torch",
    "torchvision",
    "open_clip",
    "timm",
    "cleanfid",
    "skimage",
    "scipy",
    "numpy",
    "PIL",
    "matplotlib",
    "pandas",
    "gradio",
    "fastapi",
    "ray",
    "modules",
    "networks",
    "launch",
    "safetensors",
    "huggingface_hub",
    "diskcache",
    "tqdm",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, ast.stmt, bool]]:
    """(imported package module, node, inside a function) for every import of the package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
        for n in ast.walk(f)
        if isinstance(n, (ast.Import, ast.ImportFrom))
    }
    # `if TYPE_CHECKING:` imports never run: they name types for annotations only
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for n in ast.walk(stmt)
    }
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            # `from pkg import sub` imports the sub-module when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        if id(node) in typing_only:
            continue
        for target in targets:
            if target.split(".")[0] == "lycoris_eval":
                found.append((target, node, id(node) in inside))
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for target, _node, _inside in _imports(path, modules):
            # importing a.b.c runs a/__init__, a/b/__init__ and a/b/c
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                dep = ".".join(parts[:i])
                if dep in modules and dep != name and not name.startswith(dep + "."):
                    graph[name].add(dep)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_rooms_by_job():
    """The top level holds the rooms and the few modules every room shares, nothing else."""
    rooms = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    files = {p.name for p in PKG.glob("*.py")}
    assert rooms == ROOMS
    assert files == TOP_MODULES


def test_function_level_imports_keep_a_heavy_library_off_the_path_and_say_so():
    """An import inside a function is allowed only for a heavy library (or a module of the
    package that imports one at its top), and carries its reason in a comment."""
    offenders = []
    for path in PKG.rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if getattr(node, "level", 0):
                    offenders.append(f"{where}: relative import")
                    continue
                own = [n for n in names if n.split(".")[0] == "lycoris_eval"]
                if not own and not any(n.split(".")[0] in HEAVY for n in names):
                    offenders.append(f"{where}: {', '.join(names)} is light: import it at the top")
                block = lines[node.lineno - 2 : node.end_lineno]
                if not any("#" in line for line in block):
                    offenders.append(f"{where}: say in a comment why this import waits")
    assert offenders == []


def test_lazy_imports_of_the_package_are_of_heavy_modules():
    """A function-level import of the package's own module is only justified when that module
    imports something heavy at its top (or would close a cycle, which test_no_import_cycles
    forbids anyway); otherwise it belongs at the top of the file."""
    modules = _modules()

    def heavy_at_top(name: str, seen: set[str]) -> bool:
        if name in seen or name not in modules:
            return False
        seen.add(name)
        tree = ast.parse(modules[name].read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for n in names:
                if n.split(".")[0] in HEAVY or heavy_at_top(n, seen):
                    return True
        return False

    light = []
    for name, path in modules.items():
        for target, node, inside in _imports(path, modules):
            if inside and not heavy_at_top(target, set()) and target != name:
                light.append(f"{path.relative_to(ROOT)}:{node.lineno} {target}")
    assert light == []


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ROOMS) else "top"


def test_the_core_never_imports_a_front_end():
    """inputs, grid, scoring, compare, report and the shared modules work without any front
    end; the front ends (cli, tab, api, webui, sweep) are built on them."""
    front = {"cli", "tab", "api", "webui", "sweep"}
    wrong = sorted(
        f"{m} -> {d}"
        for m, deps in _graph().items()
        for d in deps
        if _room(m) not in front and m != "lycoris_eval.__main__" and _room(d) in front
    )
    assert wrong == []


def test_report_layers_import_one_way():
    """format -> figures -> answer -> sections -> terminal -> outputs: never a later layer
    (a training run's figures and words sit beside the adapters')."""
    order = ["format", "figures", "epoch_figures", "epochs_answer", "answer", "sections", "terminal", "outputs"]
    graph = _graph()
    wrong = []
    for i, layer in enumerate(order):
        for dep in graph.get(f"lycoris_eval.report.{layer}", set()):
            name = dep.rpartition(".")[2]
            if dep.startswith("lycoris_eval.report.") and name in order and order.index(name) > i:
                wrong.append(f"{layer} -> {name}")
    assert wrong == []
