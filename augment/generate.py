"""Run generation jobs through the cache: cached completions are reused, the others generated
in chunks, each chunk written to the cache before the next one starts.

    stats = generate_missing(jobs, backend, cache, sampling, desc="sst")
    cache.get(job.key)["text"]   # now present for every job
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm.auto import tqdm

from augment.cache import GenerationCache
from augment.engine import Backend, GenerationRequest, Messages
from augment.params import SamplingParams

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationJob:
    """One completion to obtain: sample `seed` of the chat `messages`, stored under `key`."""

    key: str
    messages: Messages
    seed: int
    meta: dict  # stored with the record for readability (task, class, source_id, sample ...)


@dataclass
class GenerationStats:
    jobs: int = 0
    cache_hits: int = 0
    generated: int = 0
    tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.seconds if self.seconds > 0 else None

    @property
    def rows_per_s(self) -> float | None:
        return self.generated / self.seconds if self.seconds > 0 else None

    def add(self, other: GenerationStats) -> None:
        for name in ("jobs", "cache_hits", "generated", "tokens", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def group_requests(
    jobs: Sequence[GenerationJob],
) -> tuple[list[GenerationRequest], list[GenerationJob]]:
    """Jobs with the same messages become one request with several seeds (n completions).

    Returns the requests and the jobs reordered to match `flatten(requests)`; first-seen order
    is kept, so jobs of one class stay together and share their prompt prefix."""
    groups: dict[Messages, list[GenerationJob]] = {}
    for job in jobs:
        groups.setdefault(job.messages, []).append(job)
    requests = [GenerationRequest(m, tuple(j.seed for j in g)) for m, g in groups.items()]
    return requests, [j for g in groups.values() for j in g]


def _record(job: GenerationJob, backend: Backend, completion) -> dict:
    return {"key": job.key, "backend": backend.name, "model": backend.model, "seed": job.seed,
            **job.meta, "text": completion.text, "n_tokens": completion.n_tokens,
            "finish_reason": completion.finish_reason}


def generate_missing(jobs: Sequence[GenerationJob], backend: Backend, cache: GenerationCache,
                     sampling: SamplingParams, desc: str) -> GenerationStats:
    """Make sure every job has a cached completion; returns what was reused and generated."""
    unique = list({j.key: j for j in jobs}.values())
    missing = [j for j in unique if j.key not in cache]
    stats = GenerationStats(jobs=len(unique), cache_hits=len(unique) - len(missing))
    if not missing:
        if unique:
            log.info("%s: the cache served all %d generations, nothing to generate",
                     desc, len(unique))
        return stats
    log.info("%s: %d generations (%d from the cache, %d to generate)",
             desc, len(unique), stats.cache_hits, len(missing))
    with tqdm(total=len(missing), desc=f"augment {desc}", unit="row") as bar:
        def progress(rows: int, tokens: int) -> None:
            stats.tokens += tokens
            bar.update(rows)
            seconds = stats.seconds + time.perf_counter() - start
            bar.set_postfix(tok_s=f"{stats.tokens / max(seconds, 1e-9):.0f}", refresh=False)

        for i in range(0, len(missing), backend.chunk_size):
            requests, ordered = group_requests(missing[i:i + backend.chunk_size])
            start = time.perf_counter()
            completions = [c for per in backend.generate(requests, sampling, progress)
                           for c in per]
            stats.seconds += time.perf_counter() - start
            cache.append(_record(j, backend, c) for j, c in zip(ordered, completions, strict=True))
            stats.generated += len(ordered)
    log.info("%s: generated %d rows, %d tokens in %.1f s (%.0f tokens/s)", desc,
             stats.generated, stats.tokens, stats.seconds, stats.tokens_per_s or 0.0)
    return stats
