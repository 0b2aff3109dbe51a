"""Real generation with the embedded SmolLM2 model through llama.cpp (a few sentences).

The engine runs in a process of its own (`augment.llamacpp_backend`), so a native crash of
llama.cpp fails a test here with a BackendError instead of killing pytest.
"""

import dataclasses
import json
import os
import signal

import numpy as np
import pandas as pd
import pytest

from augment.engine import BackendError, GenerationRequest
from augment.filters import REASONS
from augment.engine import embedded_gguf_path
from augment.llamacpp_backend import LlamaCppBackend
from augment.llamacpp_engine import converted_weights, file_digest
from augment.params import LlamaCppParams, SamplingParams, load_params
from augment.stage import run
from tests.augment.fakes import ROOT, make_params, write_balanced

ENGINE = LlamaCppParams(model_path=None, n_threads=0, n_parallel=4, n_ctx=2048, n_batch=512,
                        stop_at_line_end=True, extra_buffers=False, weights="f16")
MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"
SAMPLING = SamplingParams(temperature=0.6, top_p=0.9, top_k=40, max_tokens=32)
MESSAGES = (("system", "You paraphrase sentences."),
            ("user", "Paraphrase the sentence. Reply with the paraphrase only.\n"
                     "Sentence: the film is a charming , witty romp ."))
OTHER = (("system", "You paraphrase sentences."),
         ("user", "Paraphrase the sentence. Reply with the paraphrase only.\n"
                  "Sentence: a dull , plodding story that never finds its feet ."))


def word_overlap(a, b) -> np.ndarray:
    """Stand-in for the encoder: Jaccard overlap of lower-cased words, shifted up."""
    out = []
    for x, y in zip(a, b, strict=True):
        wx, wy = set(x.lower().split()), set(y.lower().split())
        out.append(0.5 + len(wx & wy) / max(len(wx | wy), 1))
    return np.array(out)


@pytest.fixture(scope="module")
def backend():
    engine = LlamaCppBackend(ENGINE)
    yield engine
    engine.close()


def test_weight_repacking_is_off_by_default():
    # llama.cpp's extra buffer types (AMX repacking) crash the first decode on Intel Sapphire
    # Rapids-class CPUs: the shipped params must not turn them on
    assert load_params(str(ROOT / "params.yaml")).llamacpp.extra_buffers is False


def test_converted_weights_are_made_once_and_named_by_the_source(tmp_path):
    source = embedded_gguf_path()
    assert converted_weights(source, "file", tmp_path) == source
    copy = converted_weights(source, "f16", tmp_path)
    assert copy.parent == tmp_path and copy.name.endswith(".f16.gguf")
    assert file_digest(source)[:16] in copy.name
    # every weight matrix is now F16: 2 bytes a parameter, ~135M parameters
    assert 2.5e8 < copy.stat().st_size < 2.9e8 and copy.stat().st_size > 2 * source.stat().st_size
    made = copy.stat().st_mtime_ns
    assert converted_weights(source, "f16", tmp_path) == copy
    assert copy.stat().st_mtime_ns == made  # reused, not converted again
    assert [p.name for p in tmp_path.iterdir()] == [copy.name]  # no partial file left behind


def test_unknown_weight_type_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match="augment.llamacpp.weights: 'q2' is not one of"):
        converted_weights(embedded_gguf_path(), "q2", tmp_path)


def test_converted_weights_key_the_cache_apart_from_the_file():
    assert LlamaCppBackend(ENGINE).model == f"{MODEL}@f16"
    assert LlamaCppBackend(dataclasses.replace(ENGINE, weights="file")).model == MODEL


@pytest.mark.slow
def test_same_seed_same_completion_whatever_runs_beside_it(backend):
    requests = [GenerationRequest(MESSAGES, (5, 6, 5))]
    [[a, b, c]] = backend.generate(requests, SAMPLING)
    assert a.text == c.text and a.n_tokens == c.n_tokens > 0
    [[alone]] = backend.generate([GenerationRequest(MESSAGES, (5,))], SAMPLING)
    assert alone.text == a.text
    assert {a.finish_reason, b.finish_reason} <= {"stop", "length"}


@pytest.mark.slow
def test_batched_completions_equal_single_stream_completions(backend):
    # the generation cache keys a completion by (prompt, seed, sampling): batching with shared
    # prompt cells and several sequences per decode must not change it
    requests = [GenerationRequest(MESSAGES, (5, 6, 7)), GenerationRequest(OTHER, (5, 8))]
    batched = backend.generate(requests, SAMPLING)
    single = LlamaCppBackend(dataclasses.replace(ENGINE, n_parallel=1))
    try:
        alone = single.generate(requests, SAMPLING)
    finally:
        single.close()
    assert [[c.text for c in per] for per in batched] == [[c.text for c in per] for per in alone]
    assert len({c.text for c in batched[0]}) > 1  # the seeds do give different samples


@pytest.mark.slow
def test_the_samples_of_one_prompt_decode_it_once(backend):
    [[one]] = backend.generate([GenerationRequest(MESSAGES, (5,))], SAMPLING)
    alone = backend.stats
    three = backend.generate([GenerationRequest(MESSAGES, (5, 6, 7))], SAMPLING)[0]
    assert alone.prompt_tokens > 0 and backend.stats.prompt_tokens == alone.prompt_tokens
    assert backend.stats.completions == 3
    assert backend.stats.generated_tokens == sum(c.n_tokens for c in three)
    assert three[0] == one


@pytest.mark.slow
def test_a_crash_of_the_engine_is_a_backend_error_not_a_dead_runner():
    engine = LlamaCppBackend(ENGINE)
    try:
        engine.generate([GenerationRequest(MESSAGES, (5,))], SAMPLING)
        os.kill(engine._process.process.pid, signal.SIGSEGV)  # what a native fault does
        with pytest.raises(BackendError, match=r"llama.cpp engine .*SIGSEGV.*extra_buffers"):
            engine.generate([GenerationRequest(MESSAGES, (6,))], SAMPLING)
    finally:
        engine.close()


@pytest.mark.slow
def test_stage_with_the_embedded_model(tmp_path, backend):
    # only sst class "3" is short (1 real row, target 3): two paraphrases to generate
    write_balanced(tmp_path / "balanced", {"sst": [3, 3, 3, 1, 3], "para": [3, 3],
                                           "sts": [3, 3, 3, 3, 3]})
    params = make_params(1, max_rounds=1, sampling=SAMPLING)
    params = dataclasses.replace(params, prompts=dataclasses.replace(params.prompts, n_shots=2))
    summary = run(params, balanced_dir=tmp_path / "balanced", out_dir=tmp_path / "augmented",
                  cache_dir=tmp_path / "cache", backend=backend, similarity=word_overlap)
    assert summary["generator"] == f"llamacpp:{MODEL}@f16"
    sst = summary["tasks"]["sst"]
    assert sst["requested"] == 2 and sst["generated"] == 2
    assert sst["generated_now"] == 2 and sst["tokens_per_s"] > 0
    assert sst["accepted"] + sst["rejected"] == 2
    rejected = pd.read_parquet(tmp_path / "augmented" / "rejected.parquet")
    assert set(rejected["reason"]) <= set(REASONS)
    accepted = 0
    for task in ("sst", "para", "sts"):
        table = pd.read_parquet(tmp_path / "augmented" / task / "train.parquet")
        syn = table[table["origin"] == "synthetic"]
        accepted += len(syn)
        assert (syn["generator"] == summary["generator"]).all()
        assert syn["seed"].notna().all() and syn["similarity"].notna().all()
        assert not syn["sentence" if task == "sst" else "sentence1"].str.contains("\n").any()
    assert accepted == sum(t["accepted"] for t in summary["tasks"].values())
    records = [json.loads(line) for f in (tmp_path / "cache").glob("*.jsonl")
               for line in f.read_text().splitlines()]
    assert len(records) == sum(t["generated"] for t in summary["tasks"].values())
    assert all(r["n_tokens"] > 0 and r["model"] == f"{MODEL}@f16" for r in records)


@pytest.mark.slow
def test_prompt_longer_than_one_batch_is_decoded_in_chunks():
    small = LlamaCppBackend(dataclasses.replace(ENGINE, n_batch=32, n_parallel=2))
    long_user = "Paraphrase the sentence.\nSentence: " + "the film is long , " * 20
    try:
        [[done]] = small.generate([GenerationRequest((("user", long_user),), (3,))],
                                  dataclasses.replace(SAMPLING, max_tokens=8))
    finally:
        small.close()
    assert done.n_tokens > 0
