"""Content-addressed generation cache, shared by every run on a machine, safe under `kill -9`.

Every completion is stored under a key that hashes everything that determines it:

    key = sha256(backend, model, prompt template hash, exact chat messages (which contain the
                 source text and the few-shot examples), sample index, sampling params, seed)

Where it lives (`resolve_cache_dir`): `$BALANCED_MINBERT_GENERATION_CACHE` when set (an
absolute path), else `$XDG_CACHE_HOME/balanced-minbert/generations`, else
`~/.cache/balanced-minbert/generations`. The default is outside the workspace on purpose:
`dvc exp run --queue` / `--temp` run every experiment in a temporary copy of the project, and a
workspace directory would be a different, empty one in each copy. A per-user directory is the
same for the workspace loop, the queue workers and `--temp` runs. It is not a param: a
completion is a pure function of its key, so where the memo is kept cannot change what the
stage produces, and a path in params.yaml would rerun the stage when only the memo moved.

Storage: `<dir>/*.jsonl`, one JSON record per line. Each writer (one `GenerationCache`, i.e.
one stage process) appends to its own new shard, named with time, pid and a random suffix, so
concurrent experiments never write to the same file; every batch is flushed and fsync'ed before
the next one starts, so a killed run loses at most the batch in flight and never corrupts older
records; a torn last line (killed mid-write) is skipped when reading. Records are never
rewritten, so a finished shard never changes again (safe to sync to object storage in both
directions). When two shards hold a key, the oldest shard wins.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path

from augment.params import SamplingParams

log = logging.getLogger(__name__)

CACHE_ENV = "BALANCED_MINBERT_GENERATION_CACHE"
APP_DIR = Path("balanced-minbert") / "generations"
MODEL_CACHE_ENV = "BALANCED_MINBERT_MODEL_CACHE"
MODEL_APP_DIR = Path("balanced-minbert") / "models"
LEGACY_DIR = Path("data/cache/generations")  # the workspace location of earlier versions


class CacheLocationError(ValueError):
    """The configured cache location cannot be used."""


def resolve_cache_dir(environ: Mapping[str, str] | None = None, *, variable: str = CACHE_ENV,
                      app_dir: Path = APP_DIR) -> Path:
    """$BALANCED_MINBERT_GENERATION_CACHE, else $XDG_CACHE_HOME/..., else ~/.cache/....
    (`variable` and `app_dir` name another cache of the same kind, e.g. `resolve_model_dir`)."""
    environ = os.environ if environ is None else environ
    configured = environ.get(variable, "").strip()
    if configured:
        path = Path(configured).expanduser()
        if not path.is_absolute():  # a queued run's working directory is a temporary copy
            raise CacheLocationError(f"{variable}={configured!r} must be an absolute path "
                                     "(experiments run in temporary copies of the project)")
        return path
    xdg = environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():  # the XDG spec ignores relative values
        return Path(xdg) / app_dir
    home = environ.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / ".cache" / app_dir


def resolve_model_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where converted model weights are kept: $BALANCED_MINBERT_MODEL_CACHE, else
    $XDG_CACHE_HOME/balanced-minbert/models, else ~/.cache/balanced-minbert/models."""
    return resolve_cache_dir(environ, variable=MODEL_CACHE_ENV, app_dir=MODEL_APP_DIR)


def legacy_hint(cache_dir: Path, workspace: Path = Path(".")) -> str | None:
    """A one-line move command when completions sit in the old workspace location."""
    old = workspace / LEGACY_DIR
    if not old.is_dir() or old.resolve() == cache_dir.resolve():
        return None
    shards = list(old.glob("*.jsonl"))
    if not shards:
        return None
    return (f"{len(shards)} cache shard(s) in the old location {old}: move them to the shared "
            f"cache with `mkdir -p {cache_dir} && mv {old}/*.jsonl {cache_dir}/`")


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
    """Read all shards once; append new records to this writer's own shard."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.records: dict[str, dict] = {}
        self.torn_lines = 0
        self.shards_read = 0
        self._shard: Path | None = None
        self._load()

    def _load(self) -> None:
        if not self.directory.is_dir():
            return
        for shard in sorted(self.directory.glob("*.jsonl")):  # names start with a UTC time
            self.shards_read += 1
            with shard.open("rb") as f:
                for raw in f:
                    try:
                        record = json.loads(raw)
                    except ValueError:  # a line torn by a kill mid-write
                        self.torn_lines += 1
                        continue
                    self.records.setdefault(record["key"], record)
        if self.torn_lines:
            log.warning("generation cache: skipped %d torn line(s) (left by an interrupted run, "
                        "or being written by a concurrent one)", self.torn_lines)

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
        # O_APPEND on a file no other writer opens: whole lines, never interleaved
        fd = os.open(self._shard, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked (large batches, signals)
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        for r in fresh:
            self.records[r["key"]] = r
        return len(fresh)
