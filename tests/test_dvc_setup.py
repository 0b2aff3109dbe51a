"""The repository's own DVC setup: the raw data is a DVC-tracked output that DVC can see.

A `.gitignore` rule that hides `data/raw.dvc` from DVC's index (e.g. `/data/*` with a `!`
exception, which git honours and DVC's walk does not) makes `dvc checkout` and every
`dvc exp run` delete `data/raw` as an "unused link"; these tests catch that.
"""

from pathlib import Path

import yaml
from dvc.repo import Repo

ROOT = Path(__file__).resolve().parents[1]


def test_dvc_index_holds_the_raw_data_and_every_stage():
    with Repo(str(ROOT)) as repo:
        addresses = {stage.addressing for stage in repo.index.stages}
        outs = {str(Path(out.fs_path).relative_to(ROOT)) for out in repo.index.outs}
    stages = set(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])
    assert addresses == stages | {"data/raw.dvc"}
    assert "data/raw" in outs


def test_default_remote_is_the_shared_one():
    with Repo(str(ROOT)) as repo:
        remote = repo.config["core"]["remote"]
        url = repo.config["remote"][remote]["url"]
    assert (ROOT / ".dvc" / url).resolve() == (ROOT.parent / "shared" / "dvc-remote").resolve()
