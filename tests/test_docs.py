"""The documentation against the code: every param is documented, every link resolves."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TASK_KEYS = {"sst", "para", "sts"}


def param_keys(node: dict, prefix: str = "") -> list[str]:
    """Dotted keys of params.yaml; a per-task mapping ({sst: .., para: .., sts: ..}) is one key."""
    keys = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        per_task = isinstance(value, dict) and set(value) <= TASK_KEYS and not any(
            isinstance(v, dict) for v in value.values())
        if isinstance(value, dict) and value and not per_task:
            keys += param_keys(value, path + ".")
        else:
            keys.append(path)
    return keys


def test_every_param_is_on_the_params_page():
    page = (ROOT / "docs/params.md").read_text()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    missing = [k for k in param_keys(params) if f"`{k}`" not in page]
    assert not missing, f"docs/params.md does not list {missing}"


def test_the_params_walk_sees_nested_keys():
    keys = param_keys({"train": {"seed": 1, "task_weights": {"sst": 1, "para": 1, "sts": 1},
                                 "heads": {"sst": {"hidden_sizes": []}}}})
    assert keys == ["train.seed", "train.task_weights", "train.heads.sst.hidden_sizes"]


def test_readme_and_docs_links_resolve():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move reference text to docs/"
