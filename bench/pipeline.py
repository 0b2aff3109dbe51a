"""Benchmark of the pipeline's wall time and of DVC's incremental re-runs (not a test).

    python bench/pipeline.py [--train-param train.seed=1] [--keep] [--stages-only prepare,balance]
    python bench/pipeline.py --clean-only      # step 1 only: the default run's wall time

In a fresh copy of the project (the git working tree without any data outputs or DVC cache,
the raw data pulled from the project's DVC remote) it times:

  1. `dvc repro` from a clean state (the default pipeline, every stage);
  2. `dvc repro` again (nothing to do: every stage is up to date);
  3. `dvc repro` after a train-only param change (no augmentation work at all);
  4. `dvc repro` after `augment.ratio` + 1 (only the delta of paraphrases is generated).

and prints, for each, the wall time, the ratio to the clean run and the stages DVC ran.

The generation cache and the model cache (the converted llama.cpp weights) of the copy are new
empty folders (BALANCED_MINBERT_GENERATION_CACHE, BALANCED_MINBERT_MODEL_CACHE), so the clean run
converts the weights and generates every paraphrase, as on a fresh machine.
The copy is deleted afterwards unless --keep is given. It needs the whole pipeline to be
defined in dvc.yaml; with --stages-only it reproduces only those stages (a partial check).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from configparser import ConfigParser
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGE_RE = re.compile(r"Running stage '([^']+)'")


def run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(cwd)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr


def output_paths(root: Path) -> list[str]:
    """Every path a stage of dvc.yaml writes (outs, metrics, plots): not part of a clean state."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"].values()
    paths = []
    for stage in stages:
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []):
                paths.append(entry if isinstance(entry, str) else next(iter(entry)))
    return paths


def source_files(root: Path) -> list[str]:
    """Files a clone of the working tree has: tracked + new, minus DVC-managed data.

    Stage outputs and the DVC-tracked data/raw are left out even when they are not
    git-ignored in the working tree; dvc.lock (the state of this checkout) too.
    """
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=root, capture_output=True, text=True, check=True).stdout
    excluded = [p.rstrip("/") for p in (*output_paths(root), "data/raw", "dvc.lock")]
    return [
        p for p in out.split("\0")
        if p and (root / p).is_file()
        and not any(p == e or p.startswith(e + "/") for e in excluded)
    ]


def default_remote(root: Path) -> tuple[str, Path] | None:
    """(name, absolute path) of the project's default DVC remote if it is a local directory.

    The remote's URL is relative to `.dvc/`; the copy lives elsewhere, so it gets the
    absolute path in its `.dvc/config.local`.
    """
    config = ConfigParser()
    config.read(root / ".dvc" / "config")
    name = config.get("core", "remote", fallback=None)
    url = config.get(f"'remote \"{name}\"'", "url", fallback=None) if name else None
    if not url or "://" in url:
        return None
    return name, (root / ".dvc" / url).resolve()


def make_copy(dest: Path) -> Path:
    for rel in source_files(ROOT):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm",
         "bench copy"], dest)
    remote = default_remote(ROOT)
    if remote is not None:
        run([sys.executable, "-m", "dvc", "remote", "modify", "--local", remote[0], "url",
             str(remote[1])], dest)
    run([sys.executable, "-m", "dvc", "pull", "-q", "data/raw.dvc"], dest)
    return dest


def set_param(project: Path, dotted: str, value) -> None:
    path = project / "params.yaml"
    data = yaml.safe_load(path.read_text())
    node = data
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    if leaf not in node:
        raise SystemExit(f"params.yaml has no key '{dotted}'")
    node[leaf] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def timed_repro(project: Path, targets: list[str]) -> tuple[float, list[str], str]:
    """(seconds, stages DVC ran, what augment generated) of one `dvc repro`."""
    start = time.perf_counter()
    out = run([sys.executable, "-m", "dvc", "repro", *targets], project)
    seconds = time.perf_counter() - start
    stages = STAGE_RE.findall(out)
    return seconds, stages, generation_note(project) if "augment" in stages else ""


def generation_note(project: Path) -> str:
    """Paraphrases generated now vs taken from the generation cache, from augment's summary."""
    path = project / "data/augmented/summary.json"
    if not path.exists():
        return ""
    tasks = json.loads(path.read_text()).get("tasks", {}).values()
    now = sum(t.get("generated_now", 0) for t in tasks)
    cached = sum(t.get("cache_hits", 0) for t in tasks)
    return f"augment: {now} generated, {cached} from cache"


def parse_assignment(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    if not key or not value:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, yaml.safe_load(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-param", type=parse_assignment, default=("train.seed", None),
                        help="train-only change for step 3 (default: train.seed + 1)")
    parser.add_argument("--stages-only", default="", help="comma-separated stages to reproduce")
    parser.add_argument("--keep", action="store_true", help="keep the copy of the project")
    parser.add_argument("--clean-only", action="store_true",
                        help="time the clean `dvc repro` only (step 1)")
    args = parser.parse_args()
    targets = [s for s in args.stages_only.split(",") if s]
    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    os.environ["BALANCED_MINBERT_GENERATION_CACHE"] = str(workdir / "generations")
    os.environ["BALANCED_MINBERT_MODEL_CACHE"] = str(workdir / "models")  # converts, as new
    try:
        project = make_copy(workdir / "project")
        results = [("clean `dvc repro`", *timed_repro(project, targets))]
        if args.clean_only:
            print_table(results)
            return
        results.append(("second `dvc repro`", *timed_repro(project, targets)))
        key, value = args.train_param
        params = yaml.safe_load((project / "params.yaml").read_text())
        if key.split(".")[0] in params:
            if value is None:
                value = params["train"]["seed"] + 1
            set_param(project, key, value)
            results.append((f"train-only change {key}={value}", *timed_repro(project, targets)))
        if "augment" in params:
            ratio = params["augment"]["ratio"]
            set_param(project, "augment.ratio", ratio + 1)
            results.append((f"augment.ratio {ratio} -> {ratio + 1}",
                            *timed_repro(project, targets)))
        print_table(results)
    finally:
        if args.keep:
            print(f"project copy kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def print_table(results: list[tuple[str, float, list[str], str]]) -> None:
    base = results[0][1]
    print(f"\n{'step':40} {'seconds':>9} {'ratio':>7}  stages run")
    for name, seconds, stages, note in results:
        ratio = seconds / base if base else float("nan")
        ran = ", ".join(stages) or "(none)"
        print(f"{name:40} {seconds:9.1f} {ratio:7.3f}  {ran}" + (f"  [{note}]" if note else ""))


if __name__ == "__main__":
    main()
