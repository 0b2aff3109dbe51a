"""dvc.yaml against the code: every stage depends on exactly the project modules it imports.

Each stage runs `python -m <module>`; walking that module's imports (module level and the lazy
ones inside functions) through the project's packages gives the files the stage really runs.
The `.py` deps listed in dvc.yaml must be that set: a module missing from the list means DVC
would not rerun the stage when it changes; an extra one means a stale entry. The same walk
checks the floors: stage packages import only the shared kernel `minbert`, never each other,
and no module imports itself through others.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "minbert"
STAGE_PACKAGES = ("pipeline", "augment", "train", "eval")
PACKAGES = (KERNEL, *STAGE_PACKAGES)


def module_file(module: str) -> Path | None:
    """Path of a project module (`a.b` -> a/b.py or a/b/__init__.py), None if not ours."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_modules(path: Path) -> set[str]:
    """Project modules that `path` imports anywhere in its body (lazy imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from pkg import mod` imports pkg.mod when that is a module, else a name of pkg
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found.update(name for name in names if module_file(name) is not None)
    return found


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            graph[name] = imported_modules(path) - {name}
    return graph


def closure(module: str, graph: dict[str, set[str]]) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(graph.get(current, ()))
    return seen


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_module(cmd: str) -> str:
    words = cmd.split()
    assert words[:2] == ["python", "-m"], f"stage command is not `python -m ...`: {cmd}"
    return words[2]


def listed_py_deps(stage: dict) -> set[str]:
    return {dep for dep in stage.get("deps", []) if str(dep).endswith(".py")}


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_deps_are_exactly_the_modules_it_imports(name):
    stage, graph = stages()[name], import_graph()
    files = {module_file(m) for m in closure(stage_module(stage["cmd"]), graph)}
    used = {str(f.relative_to(ROOT)) for f in files if f and f.name != "__init__.py"}
    listed = listed_py_deps(stage)
    missing, stale = sorted(used - listed), sorted(listed - used)
    assert not missing, f"{name}: imported but not in dvc.yaml deps: {missing}"
    assert not stale, f"{name}: in dvc.yaml deps but never imported: {stale}"


def test_stage_packages_never_import_each_other():
    offenders = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in targets
        if module.split(".")[0] in STAGE_PACKAGES
        and target.split(".")[0] not in (KERNEL, module.split(".")[0])
    ]
    assert not offenders, offenders


def test_the_kernel_imports_no_stage_package():
    offenders = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in targets
        if module.split(".")[0] == KERNEL and target.split(".")[0] != KERNEL
    ]
    assert not offenders, offenders


def test_no_import_cycle():
    graph = import_graph()
    cycles = [m for m in graph if any(m in closure(t, graph) for t in graph[m])]
    assert not cycles, f"modules that import themselves through others: {sorted(cycles)}"


def test_the_walk_sees_lazy_imports(tmp_path):
    # a module that imports another only inside a function still depends on it
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from minbert.checkpoint import CheckpointError\n")
    assert imported_modules(src) == {"minbert.checkpoint"}


# --- paths: the folders a stage's modules import from minbert.paths are its deps and outs ---

def imported_path_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {alias.name for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "minbert.paths"
            for alias in node.names}


def stage_paths(stage: dict) -> set[str]:
    """Every non-code path in a stage's deps, outs, metrics and plots (templated ones dropped)."""
    entries = list(stage.get("deps", []))
    for key in ("outs", "metrics", "plots"):
        entries += [next(iter(e)) if isinstance(e, dict) else e for e in stage.get(key, [])]
    return {str(e) for e in entries if not str(e).endswith(".py") and "${" not in str(e)}


def related(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_folder_a_stage_uses_is_in_its_deps_or_outs(name):
    import minbert.paths

    stage, graph = stages()[name], import_graph()
    modules = closure(stage_module(stage["cmd"]), graph)
    constants = set().union(*(imported_path_constants(module_file(m)) for m in modules))
    folders = {str(getattr(minbert.paths, c)) for c in constants}
    listed = stage_paths(stage)
    unlisted = sorted(f for f in folders if not any(related(f, p) for p in listed))
    unused = sorted(p for p in listed if not any(related(f, p) for f in folders))
    assert not unlisted, f"{name}: reads or writes {unlisted}, which dvc.yaml does not list"
    assert not unused, f"{name}: dvc.yaml lists {unused}, which its code never names"


def test_prepare_reads_the_raw_dir_param():
    assert "${prepare.raw_dir}" in stages()["prepare"]["deps"]
