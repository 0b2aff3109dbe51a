"""Picks the generation engine named by `augment.backend` (the interface is `augment.engine`).

    backend = create_backend(params)     # llamacpp | transformers | vllm | openai | auto

`auto` picks vLLM when it is importable and CUDA is present, else transformers on CUDA,
else the embedded llama.cpp model. Engines are imported only when chosen.
"""

from __future__ import annotations

import importlib.util

from augment.engine import Backend, BackendError, cuda_available
from augment.params import AugmentParams


def resolve_backend(name: str, *, vllm_importable: bool | None = None,
                    cuda: bool | None = None) -> str:
    """`auto` -> vllm (importable, with CUDA) -> transformers (CUDA) -> llamacpp."""
    if name != "auto":
        return name
    cuda = cuda_available() if cuda is None else cuda
    if vllm_importable is None:
        vllm_importable = importlib.util.find_spec("vllm") is not None
    if cuda and vllm_importable:
        return "vllm"
    return "transformers" if cuda else "llamacpp"


def create_backend(params: AugmentParams) -> Backend:
    name = resolve_backend(params.backend)
    if name == "llamacpp":
        from augment.llamacpp_backend import LlamaCppBackend

        return LlamaCppBackend(params.llamacpp)
    if name == "transformers":
        from augment.transformers_backend import TransformersBackend

        return TransformersBackend(params.transformers)
    if name == "vllm":
        from augment.vllm_backend import VllmBackend

        return VllmBackend(params.vllm, seed=params.seed)
    if name == "openai":
        from augment.openai_backend import OpenAIBackend

        return OpenAIBackend(params.openai)
    raise BackendError(f"unknown backend '{name}' (llamacpp, transformers, vllm, openai or "
                       "auto)")
