"""Make a throw-away copy of the project (code + dvc.yaml + params) for `dvc repro` tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("minbert", "pipeline", "augment", "train", "eval", "dvc.yaml", "params.yaml",
          "pyproject.toml")


def make_project(dest: Path, raw_dir: Path, params: dict | None = None) -> Path:
    """Copy the project into `dest` as a fresh git+DVC repo whose data/raw is `raw_dir`."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy(src, dest / name)
    shutil.copytree(raw_dir, dest / "data" / "raw")
    if params:
        update_params(dest, params)
    run(["git", "init", "-q"], dest)
    run([sys.executable, "-m", "dvc", "init", "-q"], dest)
    run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], dest)
    if (ROOT / ".dvc" / "plots").is_dir():  # the project's own plot templates
        shutil.copytree(ROOT / ".dvc" / "plots", dest / ".dvc" / "plots", dirs_exist_ok=True)
    return dest


def update_params(project: Path, overrides: dict) -> None:
    """Apply {"balance.max_per_class": 3, ...} to the copy's params.yaml."""
    path = project / "params.yaml"
    data = yaml.safe_load(path.read_text())
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def dvc(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], project, check=check)


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd), "DVC_NO_ANALYTICS": "1"}
    # the stages run `python -m ...`: make sure that python is this interpreter
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # the generation cache lives outside the project (augment/cache.py): give each throw-away
    # project its own, next to it, unless the test shares one on purpose
    env.setdefault("BALANCED_MINBERT_GENERATION_CACHE", str(Path(cwd).resolve().parent /
                                                            f"{Path(cwd).name}-generations"))
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}")
    return result
