"""The house rules that keep genre/ readable, checked on the source: small functions and modules, no
import cycle between modules, no module named like a standard-library one.

``python tests/test_code_shape.py`` prints the largest function and module (the figures in the notes).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "genre"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def function_lengths() -> list[tuple[int, str]]:
    """(lines, "module:function") of every function and method, longest first."""
    lengths = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lengths.append((node.end_lineno - node.lineno + 1, f"{name}:{node.name}"))  # type: ignore[operator]
    return sorted(lengths, reverse=True)


def module_lengths() -> list[tuple[int, str]]:
    """(lines, module) of every module, longest first."""
    return sorted(((len(path.read_text().splitlines()), name) for name, path in _modules().items()), reverse=True)


def _imports(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``name`` imports when it is imported (not those imported inside functions)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.parse(path.read_text()).body:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_cycles() -> list[list[str]]:
    """Every cycle in the module-level import graph of the package (an ``__init__`` counts as a module)."""
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    cycles, state, stack = [], dict.fromkeys(graph, 0), []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for child in sorted(graph[node]):
            if state[child] == 1:
                cycles.append([*stack[stack.index(child) :], child])
            elif state[child] == 0:
                visit(child)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if state[node] == 0:
            visit(node)
    return cycles


# The code map of the README (Development): what each part of genre/ may import at module level.
# ``genre`` is the package's own __init__ (CONFIG_DIR). A new part must be added here and to the map.
FOUNDATIONS = {
    "genre",
    "errors",
    "cli_errors",
    "filesystem",
    "overrides",
    "upstream",
    "objective",
    "worker_processes",
    "stored_config",
    "json_records",
    "url_passwords",
}
ALLOWED: dict[str, set[str]] = {
    "genre": {"objective"},
    "errors": set(),
    "cli_errors": {"errors", "filesystem"},
    "filesystem": set(),
    "overrides": set(),
    "upstream": set(),
    "objective": set(),
    "worker_processes": set(),
    "stored_config": {"errors"},
    "json_records": {"errors"},
    "url_passwords": set(),
    "run_directory": {"errors", "filesystem", "json_records"},
    "pretrained": {"errors"},
    "features": {"errors", "pretrained"},
    "models": {"errors"},
    "augment": {"errors"},
    "tracking": {"errors", "upstream", "url_passwords"},
    "demo": {"errors", "filesystem", "worker_processes"},
    "run_files": {"errors", "filesystem", "stored_config", "json_records"},
    "comparison": set(),
    "data": {"genre", "errors", "cli_errors", "filesystem", "worker_processes", "demo"},
}
ALLOWED["training"] = FOUNDATIONS | {"pretrained", "features", "models", "augment", "tracking", "run_files", "data"}
ALLOWED["experiment"] = ALLOWED["training"] | {"training", "comparison"}
ALLOWED["sweeps"] = FOUNDATIONS | {"run_files", "comparison", "run_directory"}
ALLOWED["predict"] = ALLOWED["experiment"] | {"experiment"}
ALLOWED["report"] = FOUNDATIONS | {"sweeps"}
ALLOWED["compare"] = FOUNDATIONS | {"sweeps", "run_files", "comparison"}


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def layering_violations() -> list[str]:
    """``a -> b`` for every module-level import of part ``b`` by part ``a`` that the code map does not allow."""
    modules = _modules()
    found = []
    for name, path in modules.items():
        part = _part(name)
        allowed = ALLOWED.get(part)
        if allowed is None:
            found.append(f"{name}: part '{part}' is not in the code map")
            continue
        found += [
            f"{name} -> {target}"
            for target in sorted(_imports(name, path, set(modules)))
            if _part(target) != part and _part(target) not in allowed
        ]
    return found


def test_imports_follow_the_code_map() -> None:
    assert not layering_violations(), layering_violations()


def test_no_function_over_the_limit() -> None:
    too_long = [f"{name} ({lines} lines)" for lines, name in function_lengths() if lines > MAX_FUNCTION_LINES]
    assert not too_long, too_long


def test_no_module_over_the_limit() -> None:
    too_long = [f"{name} ({lines} lines)" for lines, name in module_lengths() if lines > MAX_MODULE_LINES]
    assert not too_long, too_long


def test_no_import_cycle() -> None:
    assert not import_cycles(), import_cycles()


def test_no_module_shadows_the_standard_library() -> None:
    shadowing = [name for name in _modules() if name.split(".")[-1] in sys.stdlib_module_names]
    assert not shadowing, shadowing


if __name__ == "__main__":
    print("largest functions:", *function_lengths()[:5], sep="\n  ")
    print("largest modules:", *module_lengths()[:5], sep="\n  ")
    print("import cycles:", import_cycles() or "none")
