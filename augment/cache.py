"""Content-addressed generation cache that survives `kill -9` at any point.

Every completion is stored under a key that hashes everything that determines it:

    key = sha256(backend, model, prompt template hash, exact chat messages (which contain the
                 source text and the few-shot examples), sample index, sampling params, seed)

Storage: `data/cache/generations/*.jsonl`, one JSON record per line. Each process appends to
its own new shard file, and every batch is flushed and fsync'ed before the next one starts, so
a killed run loses at most the batch in flight and never corrupts older records; a torn last
line (killed mid-write) is skipped when reading. Records are never rewritten, so a shard that
is complete never changes again. The first record of a key wins; the cache is a DVC output
with `persist: true` (kept between runs) and `cache: false`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from augment.params import SamplingParams

log = logging.getLogger(__name__)

CACHE_DIR = Path("data/cache/generations")


def generation_key(*, backend: str, model: str, template_hash: str, messages_sha: str,
                   sample: int, sampling: SamplingParams, seed: int) -> str:
    payload = json.dumps(
        {"backend": backend, "model": model, "template": template_hash,
         "messages": messages_sha, "sample": sample, "sampling": asdict(sampling),
         "seed": seed},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class GenerationCache:
    """Read all shards once; append new records to this process's own shard."""

    def __init__(self, directory: str | Path = CACHE_DIR):
        self.directory = Path(directory)
        self.records: dict[str, dict] = {}
        self.torn_lines = 0
        self._shard: Path | None = None
        self._load()

    def _load(self) -> None:
        if not self.directory.is_dir():
            return
        for shard in sorted(self.directory.glob("*.jsonl")):
            with shard.open("rb") as f:
                for raw in f:
                    try:
                        record = json.loads(raw)
                    except ValueError:  # a line torn by a kill mid-write
                        self.torn_lines += 1
                        continue
                    self.records.setdefault(record["key"], record)
        if self.torn_lines:
            log.warning("generation cache: skipped %d torn line(s) left by an interrupted run",
                        self.torn_lines)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def append(self, records: Iterable[dict]) -> int:
        """Append new records (each with a `key`) durably; returns how many were new."""
        fresh = [r for r in records if r["key"] not in self.records]
        if not fresh:
            return 0
        if self._shard is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
            self._shard = self.directory / f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in fresh).encode()
        with self._shard.open("ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        for r in fresh:
            self.records[r["key"]] = r
        return len(fresh)
