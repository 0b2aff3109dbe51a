import json
import multiprocessing
from pathlib import Path

import pytest

from augment.cache import (
    CACHE_ENV,
    CacheLocationError,
    GenerationCache,
    generation_key,
    legacy_hint,
    resolve_cache_dir,
)
from augment.params import SamplingParams

SAMPLING = SamplingParams(temperature=0.6, top_p=0.9, top_k=40, max_tokens=64)
KEY_ARGS = {"backend": "llamacpp", "model": "m.gguf", "template_hash": "abc", "messages_sha": "m1",
            "sample": 0, "sampling": SAMPLING, "seed": 7}


def test_key_changes_with_every_field():
    base = generation_key(**KEY_ARGS)
    changes = {"backend": "vllm", "model": "other", "template_hash": "abd", "messages_sha": "m2",
               "sample": 1, "sampling": SamplingParams(0.7, 0.9, 40, 64), "seed": 8}
    for field, value in changes.items():
        assert generation_key(**{**KEY_ARGS, field: value}) != base, field
    assert generation_key(**KEY_ARGS) == base


def test_records_survive_a_new_process(tmp_path):
    cache = GenerationCache(tmp_path)
    assert cache.append([{"key": "a", "text": "x"}, {"key": "b", "text": "y"}]) == 2
    assert cache.append([{"key": "a", "text": "other"}]) == 0  # first record wins
    again = GenerationCache(tmp_path)
    assert len(again) == 2 and again.get("a")["text"] == "x"


def test_each_process_writes_its_own_shard(tmp_path):
    GenerationCache(tmp_path).append([{"key": "a", "text": "x"}])
    GenerationCache(tmp_path).append([{"key": "b", "text": "y"}])
    assert len(list(tmp_path.glob("*.jsonl"))) == 2
    assert len(GenerationCache(tmp_path)) == 2


def test_torn_last_line_is_skipped(tmp_path, caplog):
    good = json.dumps({"key": "a", "text": "x"})
    (tmp_path / "shard.jsonl").write_text(good + "\n" + good[:10])
    cache = GenerationCache(tmp_path)
    assert len(cache) == 1 and cache.torn_lines == 1
    assert "torn" in caplog.text


def test_missing_directory_is_an_empty_cache(tmp_path):
    cache = GenerationCache(tmp_path / "none")
    assert len(cache) == 0
    assert "a" not in cache


@pytest.mark.parametrize("n", [1, 3])
def test_append_is_durable_line_by_line(tmp_path, n):
    cache = GenerationCache(tmp_path)
    cache.append([{"key": str(i), "text": "t"} for i in range(n)])
    shard = next(tmp_path.glob("*.jsonl"))
    assert shard.read_text().count("\n") == n


def test_location_env_var_wins(tmp_path):
    env = {CACHE_ENV: str(tmp_path / "shared"), "XDG_CACHE_HOME": "/x", "HOME": "/home/u"}
    assert resolve_cache_dir(env) == tmp_path / "shared"


def test_location_expands_the_home_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_cache_dir({CACHE_ENV: "~/gens"}) == tmp_path / "gens"


def test_relative_location_is_refused():
    with pytest.raises(CacheLocationError, match="absolute path"):
        resolve_cache_dir({CACHE_ENV: "data/cache"})


def test_location_defaults_to_the_user_cache_dir():
    assert resolve_cache_dir({"XDG_CACHE_HOME": "/var/cache/me", "HOME": "/home/u"}) == \
        Path("/var/cache/me/balanced-minbert/generations")
    assert resolve_cache_dir({"HOME": "/home/u"}) == \
        Path("/home/u/.cache/balanced-minbert/generations")
    # an empty variable counts as unset, a relative XDG_CACHE_HOME is ignored (XDG spec)
    assert resolve_cache_dir({CACHE_ENV: " ", "XDG_CACHE_HOME": "rel", "HOME": "/home/u"}) == \
        Path("/home/u/.cache/balanced-minbert/generations")


def test_legacy_workspace_cache_gets_a_move_hint(tmp_path):
    shared = tmp_path / "shared"
    assert legacy_hint(shared, tmp_path) is None
    old = tmp_path / "data/cache/generations"
    old.mkdir(parents=True)
    (old / "a.jsonl").write_text("")
    hint = legacy_hint(shared, tmp_path)
    assert hint is not None and f"mv {old}/*.jsonl {shared}/" in hint
    assert legacy_hint(old, tmp_path) is None  # the old place chosen on purpose


def _writer(directory: str, prefix: str, batches: int, start) -> None:
    cache = GenerationCache(directory)
    start.wait()  # both writers append at the same time
    for b in range(batches):
        cache.append({"key": f"{prefix}-{b}-{i}", "text": f"{prefix} {'x' * 200}"}
                     for i in range(50))


def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    writers = [ctx.Process(target=_writer, args=(str(tmp_path), p, 40, start)) for p in "ab"]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    cache = GenerationCache(tmp_path)
    assert cache.torn_lines == 0
    for prefix in "ab":
        keys = {k for k in cache.records if k.startswith(prefix + "-")}
        assert keys == {f"{prefix}-{b}-{i}" for b in range(40) for i in range(50)}
        assert all(cache.get(k)["text"].startswith(prefix + " ") for k in keys)
    assert len(list(tmp_path.glob("*.jsonl"))) == 2


def test_a_later_run_reuses_what_both_writers_wrote(tmp_path):
    GenerationCache(tmp_path).append([{"key": "a", "text": "first"}])
    GenerationCache(tmp_path).append([{"key": "a", "text": "second"}, {"key": "b", "text": "y"}])
    later = GenerationCache(tmp_path)
    assert later.shards_read == 2 and len(later) == 2
    assert later.append([{"key": "a", "text": "z"}, {"key": "b", "text": "z"}]) == 0
