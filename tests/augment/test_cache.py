import json

import pytest

from augment.cache import GenerationCache, generation_key
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
