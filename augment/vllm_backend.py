"""GPU production backend: vLLM's offline API (`LLM.chat` with one SamplingParams per sample).

    pip install '.[vllm]'            # on a CUDA machine
    dvc exp run -S augment.backend=vllm -S augment.vllm.model=/models/Meta-Llama-3-8B-Instruct

Every sample is its own request with its own seed (`SamplingParams(n=1, seed=...)`), so a
completion depends only on its cache key, and the few-shot prefix shared by a class is computed
once thanks to `enable_prefix_caching=True`. Generation stops at the model's end-of-turn token
(`<|eot_id|>` for Llama 3), resolved to its id by the model's tokenizer.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from augment.engine import (
    BackendError,
    Completion,
    GenerationRequest,
    Progress,
    flatten,
    unflatten,
)
from augment.params import SamplingParams, VllmParams

INSTALL_HINT = "pip install '.[vllm]' on a machine with a CUDA GPU"


def engine_kwargs(params: VllmParams, seed: int) -> dict:
    """Arguments of `vllm.LLM(...)`."""
    return {"model": params.model, "tensor_parallel_size": params.tensor_parallel_size,
            "gpu_memory_utilization": params.gpu_memory_utilization,
            "max_model_len": params.max_model_len, "enable_prefix_caching": True, "seed": seed}


def chat_requests(requests: Sequence[GenerationRequest], sampling: SamplingParams,
                  stop_token_ids: Sequence[int]) -> tuple[list[list[dict]], list[dict]]:
    """(conversations, SamplingParams kwargs), one pair per completion, as plain data."""
    conversations, kwargs = [], []
    for messages, seed in flatten(requests):
        conversations.append([{"role": role, "content": content} for role, content in messages])
        kwargs.append({"n": 1, "temperature": sampling.temperature, "top_p": sampling.top_p,
                       "top_k": sampling.top_k if sampling.top_k > 0 else -1,
                       "max_tokens": sampling.max_tokens, "seed": seed,
                       "stop_token_ids": list(stop_token_ids)})
    return conversations, kwargs


class VllmBackend:
    name = "vllm"

    def __init__(self, params: VllmParams, seed: int):
        if importlib.util.find_spec("vllm") is None:
            raise BackendError(f"augment.backend=vllm needs vLLM, which is not installed: "
                               f"{INSTALL_HINT}")
        self.params, self.seed = params, seed
        self.model = params.model
        self.chunk_size = params.chunk_size
        self._llm = None
        self._stop_ids: list[int] = []

    def _load(self):
        import vllm

        self._llm = vllm.LLM(**engine_kwargs(self.params, self.seed))
        tokenizer = self._llm.get_tokenizer()
        unk = getattr(tokenizer, "unk_token_id", None)
        for token in self.params.stop_tokens:
            token_id = tokenizer.convert_tokens_to_ids(token)
            if token_id is None or token_id == unk:
                raise BackendError(f"augment.vllm.stop_tokens: '{token}' is not a token of "
                                   f"{self.params.model}")
            self._stop_ids.append(token_id)
        return self._llm

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingParams,
                 progress: Progress | None = None) -> list[list[Completion]]:
        from vllm import SamplingParams as VllmSampling

        llm = self._llm or self._load()
        conversations, kwargs = chat_requests(requests, sampling, self._stop_ids)
        outputs = llm.chat(conversations, [VllmSampling(**k) for k in kwargs], use_tqdm=False)
        completions = []
        for out in outputs:
            best = out.outputs[0]
            finish = "length" if best.finish_reason == "length" else "stop"
            completions.append(Completion(best.text, len(best.token_ids), finish))
        if progress:
            progress(len(completions), sum(c.n_tokens for c in completions))
        return unflatten(requests, completions)
