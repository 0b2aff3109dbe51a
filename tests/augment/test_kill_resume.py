"""kill -9 in the middle of generation, then rerun: nothing is generated twice or lost."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from augment.stage import run
from minbert.tasks import TASKS
from tests.augment.fakes import (
    ROOT,
    FakeBackend,
    fake_embed,
    fake_similarity,
    make_params,
    write_balanced,
)

CHILD = """
import sys
from pathlib import Path
from augment.stage import run
from tests.augment.fakes import FakeBackend, fake_embed, fake_similarity, make_params
tmp = Path(sys.argv[1])
run(make_params(2), balanced_dir=tmp / "balanced", out_dir=tmp / "augmented",
    cache_dir=tmp / "cache", backend=FakeBackend(chunk_size=1, delay=0.05),
    similarity=fake_similarity, embed=fake_embed)
"""


def _cached_keys(cache_dir) -> list[str]:
    keys = []
    for shard in cache_dir.glob("*.jsonl"):
        for line in shard.read_bytes().splitlines():
            try:
                keys.append(json.loads(line)["key"])
            except ValueError:
                pass  # a line torn by the kill
    return keys


def _run_here(tmp, backend):
    return run(make_params(2), balanced_dir=tmp / "balanced", out_dir=tmp / "augmented",
               cache_dir=tmp / "cache", backend=backend, similarity=fake_similarity,
               embed=fake_embed)


@pytest.mark.slow
def test_kill_during_generation_then_rerun(tmp_path):
    write_balanced(tmp_path / "balanced")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], cwd=ROOT, env=env,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(_cached_keys(tmp_path / "cache")) < 5 and child.poll() is None:
        assert time.monotonic() < deadline, "the child never wrote to the cache"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    before = _cached_keys(tmp_path / "cache")
    assert len(before) == len(set(before)) >= 5
    assert not (tmp_path / "augmented" / "summary.json").exists()  # killed before the end

    resumed = FakeBackend()
    summary = _run_here(tmp_path, resumed)
    after = _cached_keys(tmp_path / "cache")
    assert len(after) == len(set(after))  # no key stored twice
    assert len(resumed.generated) == len(after) - len(before)  # only the missing ones

    fresh = tmp_path / "fresh"
    write_balanced(fresh / "balanced")
    reference = _run_here(fresh, FakeBackend())
    assert summary["tasks"]["sts"]["accepted"] == reference["tasks"]["sts"]["accepted"]
    for task in TASKS:
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "augmented" / task / "train.parquet"),
            pd.read_parquet(fresh / "augmented" / task / "train.parquet"))


ENGINE_CHILD = """
import dataclasses, sys
from pathlib import Path
from augment.llamacpp_backend import LlamaCppBackend
from augment.stage import run
from tests.augment.fakes import fake_embed, fake_similarity, make_params
tmp = Path(sys.argv[1])
params = make_params(2)
engine = LlamaCppBackend(dataclasses.replace(params.llamacpp, n_parallel=2, n_ctx=2048))
run(params, balanced_dir=tmp / "balanced", out_dir=tmp / "augmented", cache_dir=tmp / "cache",
    backend=engine, similarity=fake_similarity, embed=fake_embed)
"""


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_kill_9_of_the_stage_also_stops_the_llamacpp_engine(tmp_path):
    # the engine runs in a child process of the stage: killed with the stage, it must not go
    # on generating for nobody (and holding the CPU)
    write_balanced(tmp_path / "balanced")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    stage = subprocess.Popen([sys.executable, "-c", ENGINE_CHILD, str(tmp_path)], cwd=ROOT,
                             env=env, stderr=subprocess.DEVNULL)
    children = f"/proc/{stage.pid}/task/{stage.pid}/children"
    deadline = time.monotonic() + 300
    while not _cached_keys(tmp_path / "cache"):  # the engine runs and has written a chunk
        assert stage.poll() is None and time.monotonic() < deadline, "no generation happened"
        time.sleep(0.1)
    [engine] = [int(pid) for pid in open(children).read().split()]
    assert _alive(engine)
    os.kill(stage.pid, signal.SIGKILL)
    stage.wait()
    deadline = time.monotonic() + 20
    while _alive(engine) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(engine), "the llama.cpp engine outlived the killed stage"
