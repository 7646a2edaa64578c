"""The package imports one way only (docs/ARCHITECTURE.md): core <- envs <- data <- train <- policies <- evaluate /
pipeline <- commands; imports sit at the top of modules, except the optional extras; no import cycles."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# source folder -> the package name it is installed as (setup.py's package_dir)
ROOTS = {"vpt_rl": "vpt_rl", "envs": "vpt_rl.envs", "policies": "vpt_rl.policies"}
# (module-name prefix, layer); the longest matching prefix wins. A layer may import its own and lower layers.
LAYERS = [
    ("vpt_rl", 0),  # the package root and the core modules: actions, model, checkpoint, atomic, cpu kernels
    ("vpt_rl.envs", 1),
    ("vpt_rl.data", 2),
    ("vpt_rl.train", 3),
    ("vpt_rl.policies", 4),
    ("vpt_rl.plots", 5),
    ("vpt_rl.evaluate", 5),
    ("vpt_rl.pipeline", 5),
    ("vpt_rl.commands", 6),
    ("vpt_rl.cli", 6),
]
LAYER_NAMES = ["core", "envs", "data", "train", "policies", "evaluate/pipeline", "commands"]
CORE_MODULES = {"vpt_rl", "vpt_rl.actions", "vpt_rl.model", "vpt_rl.checkpoint", "vpt_rl.atomic", "vpt_rl.layers",
                "vpt_rl.interrupt",
                "vpt_rl.model_config", "vpt_rl.motion_stem",
                "vpt_rl.cpu_kernels"}
# Imported inside functions on purpose: optional extras (and what only they pull in), so that the core
# installs and imports without them.
LAZY_OK = ("stable_baselines3", "sample_factory", "minerl", "gym", "torch.utils.tensorboard", "tensorboard",
           "crafter", "signal_slot", "faster_fifo",
           # our plug-ins import SB3 / Sample Factory at their top, so they count as the extras themselves
           "vpt_rl.policies.sb3", "vpt_rl.policies.sample_factory")


def _modules():
    """(module name, path, ast) for every source module of the package."""
    out = []
    for folder, pkg in ROOTS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([pkg, *parts])
            out.append((name, path, ast.parse(path.read_text(), filename=str(path))))
    return out


MODULES = _modules()
NAMES = {name for name, _, _ in MODULES}


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _type_checking_only(tree: ast.AST) -> set:
    """ids of the nodes under a module-level ``if TYPE_CHECKING:`` (annotations only, never run)."""
    out = set()
    for stmt in tree.body:
        if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.dump(stmt.test):
            out.update(id(n) for b in stmt.body for n in ast.walk(b))
    return out


def _imports(name: str, path: Path, tree: ast.AST, runtime_only: bool = False):
    """(imported module, line, at module top level?) for every import in the file, relative ones resolved;
    ``runtime_only`` leaves out the imports under ``if TYPE_CHECKING:``."""
    package = name if _is_package(path) else name.rpartition(".")[0]
    top = set(id(n) for n in tree.body)
    skip = _type_checking_only(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # "from pkg import mod" imports the submodule pkg.mod when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in NAMES else base for a in node.names]
        else:
            continue
        at_top = id(node) in top or _in_top_level_guard(tree, node)
        for t in targets:
            yield t, node.lineno, at_top


def _in_top_level_guard(tree: ast.AST, node: ast.AST) -> bool:
    """True for imports inside a module-level ``try:``/``if`` block (e.g. an optional dependency probe)."""
    for stmt in tree.body:
        if isinstance(stmt, (ast.Try, ast.If)) and any(n is node for n in ast.walk(stmt)):
            return True
    return False


def _layer(module: str) -> int:
    best, layer = -1, None
    for prefix, lay in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
            best, layer = len(prefix), lay
    return layer


def _project(module: str) -> bool:
    return module == "vpt_rl" or module.startswith("vpt_rl.")


def test_every_top_level_module_has_a_layer():
    # a new module directly under vpt_rl/ must be placed on purpose: core, or one of the named layers
    loose = sorted(n for n in NAMES if _layer(n) == 0 and n not in CORE_MODULES)
    assert not loose, f"modules with no layer (add them to CORE_MODULES or LAYERS): {loose}"


def test_no_module_imports_from_a_higher_layer():
    bad = []
    for name, path, tree in MODULES:
        for target, line, _ in _imports(name, path, tree):
            if _project(target) and _layer(target) > _layer(name):
                bad.append(f"{path.relative_to(REPO)}:{line} ({LAYER_NAMES[_layer(name)]}) imports {target} "
                           f"({LAYER_NAMES[_layer(target)]})")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_imports_are_at_the_top_except_optional_extras():
    bad = []
    for name, path, tree in MODULES:
        for target, line, at_top in _imports(name, path, tree):
            if not at_top and not any(target == m or target.startswith(m + ".") for m in LAZY_OK):
                bad.append(f"{path.relative_to(REPO)}:{line} imports {target} inside a function")
    assert not bad, "imports not at the top of the module:\n" + "\n".join(bad)


def test_no_import_cycles_between_modules():
    graph = {name: set() for name in NAMES}
    for name, path, tree in MODULES:
        for target, _, _ in _imports(name, path, tree, runtime_only=True):
            # a module imports its enclosing packages implicitly; count only real module-to-module edges
            if target in NAMES and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    state, stack, cycles = {}, [], []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == "open":
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("upward", ["vpt_rl.pipeline", "vpt_rl.policies.sb3"])
def test_the_layer_check_catches_an_upward_import(upward):
    # the checker itself: a data-layer module importing an upper layer is reported
    tree = ast.parse(f"import numpy\nfrom {upward} import something\n")
    found = [(t, _layer(t) > _layer("vpt_rl.data.recorder")) for t, _, _ in
             _imports("vpt_rl.data.recorder", REPO / "vpt_rl" / "data" / "recorder.py", tree) if _project(t)]
    assert found == [(upward, True)]
