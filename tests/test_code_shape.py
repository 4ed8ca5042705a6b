"""The house rules that keep genre/ readable, checked on the source: small functions and modules, imports
that follow the code map and make no cycle (imports inside functions count), no module named like a
standard-library one, and no private API of another library used outside genre/core/upstream.py.

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


def _import_nodes(tree: ast.AST) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement of ``tree`` (inside functions too: a lazy import is still a dependency),
    each with whether it sits under ``if TYPE_CHECKING:`` (which never runs)."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []

    def visit(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append((node, typing_only))
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, typing_only)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, typing_only)

    visit(tree, False)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_targets(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The dotted names an import statement may load (for ``from a import b``: ``a.b`` and ``a``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
    return [f"{base}.{alias.name}" for alias in node.names] + [base]


def _imports(name: str, path: Path, modules: set[str], *, typing_only: bool = True) -> set[str]:
    """The package's modules that ``name`` imports, at module level or inside a function (a lazy import
    runs too, only later). ``typing_only=False`` leaves out imports under ``if TYPE_CHECKING:``: they
    never execute, so they cannot make an import cycle (they still show which parts a module knows)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node, under_type_checking in _import_nodes(ast.parse(path.read_text())):
        if under_type_checking and not typing_only:
            continue
        for target in _import_targets(node, package):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_cycles() -> list[list[str]]:
    """Every cycle in the import graph of the package, lazy imports included (an ``__init__`` counts as a module)."""
    modules = _modules()
    graph = {name: _imports(name, path, set(modules), typing_only=False) for name, path in modules.items()}
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


# The code map of the README (Development): what each part of genre/ may import (anywhere in a module).
# ``genre`` is the package's own __init__ (CONFIG_DIR). A new part must be added here and to the map.
FOUNDATIONS = {"genre", "core"}
ALLOWED: dict[str, set[str]] = {
    "genre": {"core"},
    "core": set(),
    "run_files": {"core"},
    "pretrained": {"core"},
    "features": {"core", "pretrained"},
    "models": {"core"},
    "augment": {"core"},
    "tracking": {"core"},
    "demo": {"core"},
    "comparison": set(),
    "data": {"genre", "core", "demo"},
}
ALLOWED["training"] = FOUNDATIONS | {"pretrained", "features", "models", "augment", "tracking", "run_files", "data"}
ALLOWED["experiment"] = ALLOWED["training"] | {"training", "comparison"}
ALLOWED["sweeps"] = FOUNDATIONS | {"run_files", "comparison"}
ALLOWED["cli"] = ALLOWED["experiment"] | {"experiment", "sweeps"}


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def layering_violations() -> list[str]:
    """``a -> b`` for every import of part ``b`` by part ``a`` that the code map does not allow (lazy and
    typing-only imports count: they show what the part depends on)."""
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


# --- Private APIs of other libraries: only genre/core/upstream.py may use them --------------------------
# "Private" is Python's convention: a name with one leading underscore (or a name-mangled ``__x``).
# Not private: dunders (``__init__``), Hydra's reserved config keys (``_target_``, ``_partial_``: a
# leading and a trailing underscore), and the underscore names the Python docs publish as public API:
# a named tuple's methods (they have the underscore only to leave every field name free; SQLAlchemy's
# URL documents ``_replace`` too) and ``os._exit``.
UPSTREAM = PACKAGE / "core" / "upstream.py"
DOCUMENTED_PUBLIC = {"_replace", "_asdict", "_make", "_fields", "_field_defaults", "_exit"}
OWN_PACKAGES = ("genre.", "hydra_plugins.genre_")


def _checked_files() -> list[Path]:
    """Every file of genre's own code: the package, ``run.py`` and the ``hydra_plugins`` shells."""
    root = PACKAGE.parent
    return sorted([*PACKAGE.rglob("*.py"), root / "run.py", *(root / "hydra_plugins").rglob("*.py")])


def _is_private(name: str) -> bool:
    dunder = name.startswith("__") and name.endswith("__")
    reserved_key = len(name) > 2 and name[0] == name[-1] == "_" and name[1] != "_" and name[-2] != "_"
    return name.startswith("_") and not dunder and not reserved_key and name not in DOCUMENTED_PUBLIC


def _own_private_names(path: Path) -> set[str]:
    """The private attributes one file of genre defines: functions, methods and classes, names bound in
    the module's or a class's own body, and attributes assigned on ``self``/``cls`` (a function's local
    variables are no attributes, so they do not count)."""
    tree = ast.parse(path.read_text())
    names = set()
    for scope in [tree, *(node for node in ast.walk(tree) if isinstance(node, ast.ClassDef))]:
        for statement in scope.body:  # type: ignore[attr-defined]
            if isinstance(statement, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
            elif isinstance(statement, ast.Import | ast.ImportFrom):
                names.update(alias.asname for alias in statement.names if alias.asname)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _is_own_instance(node.value):
            names.add(node.attr)
    return {name for name in names if _is_private(name)}


def _is_own_instance(receiver: ast.expr) -> bool:
    """``self``, ``cls`` or ``super()``: the object of the method's own class."""
    if isinstance(receiver, ast.Call):
        return isinstance(receiver.func, ast.Name) and receiver.func.id == "super"
    return isinstance(receiver, ast.Name) and receiver.id in ("self", "cls")


def _private_uses(path: Path, own_here: set[str], own_anywhere: set[str]) -> list[str]:
    """``file:line: what`` for each use of another library's private name in one file.

    The rule for ``x._name``: on ``self``/``cls``/``super()`` the name must be defined somewhere in
    genre (a method inherited from a base class of genre's own); on any other object, in this very
    file (a class reading the same class's field on another instance, a module its own helper). What
    is left is another library's private (``trial._trial_id``, a base class's ``self._rng``)."""
    where = path.relative_to(PACKAGE.parent) if path.is_relative_to(PACKAGE.parent) else path
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            if node.attr not in (own_anywhere if _is_own_instance(node.value) else own_here):
                found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _is_private(node.args[1].value)
            and node.args[1].value not in (own_anywhere if _is_own_instance(node.args[0]) else own_here)
        ):
            found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
            modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            names = [alias.name for alias in node.names] if isinstance(node, ast.ImportFrom) else []
            for module in modules:
                if module == "genre" or module.startswith(OWN_PACKAGES):
                    continue
                if any(_is_private(part) for part in module.split(".")) or any(map(_is_private, names)):
                    found.append(f"{where}:{node.lineno}: import of {module} {' '.join(names)}".rstrip())
    return found


def private_api_uses() -> list[str]:
    """Every use of another library's private API outside genre/core/upstream.py: an attribute or an import."""
    own = {path: _own_private_names(path) for path in _checked_files()}
    own_anywhere = set().union(*own.values())
    return [use for path in own if path != UPSTREAM for use in _private_uses(path, own[path], own_anywhere)]


def test_only_upstream_uses_private_apis() -> None:
    """A private name of hydra, optuna, OmegaConf or torch used anywhere else hides an upgrade risk
    from the one file (genre/core/upstream.py) that lists them, each with the version it was checked on."""
    assert not private_api_uses(), private_api_uses()


def test_the_private_api_rule_tells_genres_own_names_from_a_librarys(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text(
        "import os\n"
        "import hydra._internal.utils\n"
        "from optuna.trial import _trial\n"
        "class Sampler(TPESampler):\n"
        "    def __init__(self):\n"
        "        self._mine = 1\n"
        "    def draw(self, other, trial, job, cfg):\n"
        "        self._inherited(other._mine, self._rng, trial._trial_id, getattr(job, '_return_value'))\n"
        "        return os._exit, cfg._target_, self.__class__\n"
    )
    own = _own_private_names(source)
    found = {use.partition(": ")[2] for use in _private_uses(source, own, own | {"_inherited"})}
    assert found == {
        "import of hydra._internal.utils",
        "import of optuna.trial _trial",
        "self._rng",
        "trial._trial_id",
        "getattr(job, '_return_value')",
    }


if __name__ == "__main__":
    print("largest functions:", *function_lengths()[:5], sep="\n  ")
    print("largest modules:", *module_lengths()[:5], sep="\n  ")
    print("import cycles:", import_cycles() or "none")
    print("private API uses outside upstream.py:", *private_api_uses(), sep="\n  ")
