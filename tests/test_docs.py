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


SET_PARAM = re.compile(r"(?:-S|--set-param|--baseline)\s+'?([^\s'`]+)")
NOT_PARAMS = {"llama_model_params"}  # dotted names of other tools' settings the docs quote


def documented_param_settings(text: str) -> set[str]:
    """Param keys a page tells the reader to set: `-S key=value` (a sweep's `key=a,b` too,
    `--baseline k1=v1,k2=v2`) and inline code such as `train.backbone: mpnet` or
    `train.heads.dropout=0.3` (a full path: `filters.x: false` or `minbert.heads.x=1` is
    flagged, as a reader cannot set them)."""
    keys = set()
    for argument in SET_PARAM.findall(text):
        if argument.startswith("<"):  # a placeholder: -S <section>.<key>=<value>
            continue
        keys.update(part.split("=", 1)[0] for part in argument.split(",") if "=" in part)
    for key in re.findall(r"`([a-z_]+(?:\.[a-z_0-9]+)+)\s*[:=]", text):
        if key.split(".", 1)[0] not in NOT_PARAMS:
            keys.add(key)
    return keys


def has_param(params: dict, key: str) -> bool:
    node = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_documented_param_settings_name_real_params():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    unknown = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for key in sorted(documented_param_settings(page.read_text())):
            if not has_param(params, key):
                unknown.append(f"{page.relative_to(ROOT)}: {key}")
    assert not unknown, f"params.yaml has no such key: {unknown}"


def test_the_param_settings_scan_finds_commands_and_inline_settings():
    text = ("dvc exp run -S augment.ratio=0,2,3 -S 'train.heads.sst.hidden_sizes=[]'\n"
            "python -m eval.sweep --baseline augment.ratio=0,train.epochs=5\n"
            "set `minbert.heads.dropout=0.3` or `train.backbone: mpnet`; see `train.stage`\n"
            "-S <section>.<key>=<value>")
    found = documented_param_settings(text)
    assert found == {"augment.ratio", "train.heads.sst.hidden_sizes", "train.epochs",
                     "train.backbone", "minbert.heads.dropout"}
    params = {"train": {"heads": {"sst": {"hidden_sizes": []}}, "backbone": "minilm"}}
    assert has_param(params, "train.heads.sst.hidden_sizes")
    assert not has_param(params, "minbert.heads.dropout")
    assert not has_param(params, "train.backbone.name")
