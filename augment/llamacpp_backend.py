"""Embedded backend: the SmolLM2 GGUF through llama.cpp, in an engine process of its own.

    backend = LlamaCppBackend(params.llamacpp)
    completions = backend.generate(requests, sampling)   # starts the engine process once
    backend.stats                                         # EngineStats of the last generate()
    backend.close()

llama.cpp is native code: a fault in it (an unsupported CPU feature, a bad GGUF file) kills the
process that runs it. The engine (`augment.llamacpp_engine`) therefore runs in a child process
of its own; this process only sends it chat messages and seeds and receives
completions and progress. If the child dies, `generate` raises a `BackendError` that names the
engine, the signal and what to try, so the stage stops with a one-line error (and a test
fails) instead of the whole Python process dying with a segmentation fault.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

from augment.engine import (
    BackendError,
    Completion,
    GenerationRequest,
    Messages,
    Progress,
    embedded_gguf_path,
    flatten,
    unflatten,
)
from augment.cache import resolve_model_dir
from augment.llamacpp_engine import EngineStats, LlamaCppEngine, converted_weights
from augment.params import LlamaCppParams, SamplingParams

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]  # the child imports this very copy of `augment`

WHAT_TO_TRY = ("keep augment.llamacpp.extra_buffers false (llama.cpp's weight repacking "
               "crashes on some CPUs), lower augment.llamacpp.n_parallel, or use "
               "augment.backend=transformers")


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(self, params: LlamaCppParams):
        self.params = params
        self.path = Path(params.model_path) if params.model_path else embedded_gguf_path()
        if not self.path.is_file():
            raise BackendError(f"augment.llamacpp.model_path: no GGUF file at {self.path}")
        # names the rows' generator and keys the cache: converted weights decode differently
        self.model = self.path.name if params.weights == "file" else \
            f"{self.path.name}@{params.weights}"
        self.chunk_size = 2 * params.n_parallel  # completions per cache write
        self.stats = EngineStats()  # of the last generate() call
        self._process: _EngineProcess | None = None

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingParams,
                 progress: Progress | None = None) -> list[list[Completion]]:
        if self._process is None:
            self._process = _EngineProcess(self.path, self.params)
        flat = flatten(requests)  # the seeds of a request stay adjacent: they start together
        completions, self.stats = self._process.run(
            [messages for messages, _ in flat], [seed for _, seed in flat], sampling, progress)
        return unflatten(requests, completions)

    def close(self) -> None:
        if self._process is not None:
            self._process.close()
            self._process = None


class _EngineProcess:
    """A child Python process that holds one `LlamaCppEngine`, driven through two pipes.

    A plain `python -c` child, not `multiprocessing`: spawn would re-import the parent's main
    module (a script, `-c` code, a notebook), and fork would copy a threaded parent."""

    def __init__(self, path: Path, params: LlamaCppParams):
        child_reads, parent_writes = os.pipe()
        parent_reads, child_writes = os.pipe()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        code = f"from augment.llamacpp_backend import serve; serve({child_reads}, {child_writes})"
        self.process = subprocess.Popen([sys.executable, "-c", code], env=env,
                                        stdin=subprocess.DEVNULL,
                                        pass_fds=(child_reads, child_writes))
        os.close(child_reads)  # the child's ends: a dead child now reads as end of file here
        os.close(child_writes)
        self.conn = Connection(parent_reads, readable=True, writable=False)
        self.out = Connection(parent_writes, readable=False, writable=True)
        self.model = path.name
        self.out.send((str(path), params, str(resolve_model_dir())))
        self._receive(None, "loading the model")

    def run(self, messages: list[Messages], seeds: list[int], sampling: SamplingParams,
            progress: Progress | None) -> tuple[list[Completion], EngineStats]:
        try:
            self.out.send(("run", messages, seeds, sampling))
        except (BrokenPipeError, ConnectionResetError):
            raise self._died("before generating") from None
        return self._receive(progress, "generating")

    def _receive(self, progress: Progress | None, doing: str):
        while True:
            try:
                kind, *payload = self.conn.recv()
            except (EOFError, ConnectionResetError):
                raise self._died(f"while {doing}") from None
            if kind == "progress":
                if progress:
                    progress(*payload)
            elif kind == "error":
                raise BackendError(payload[0])
            else:
                return payload[0] if len(payload) == 1 else tuple(payload)

    def _died(self, when: str) -> BackendError:
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None and code < 0:
            how = f"signal {signal.Signals(-code).name}"
        else:
            how = f"exit code {code}"
        self._close_pipes()
        return BackendError(f"the llama.cpp engine ({self.model}) crashed {when} ({how}): "
                            f"{WHAT_TO_TRY}")

    def close(self) -> None:
        try:
            self.out.send(("close",))
        except OSError:
            pass  # already gone
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._close_pipes()

    def _close_pipes(self) -> None:
        for conn in (self.conn, self.out):
            if not conn.closed:
                conn.close()


def serve(read_fd: int, write_fd: int) -> None:
    """The engine process: load the model, then answer "run" messages until "close" (or until
    the parent goes away)."""
    threading.Thread(target=_exit_with, args=(os.getppid(),), daemon=True).start()
    conn = Connection(write_fd, readable=False, writable=True)
    inbox = Connection(read_fd, readable=True, writable=False)
    path, params, model_dir = inbox.recv()
    try:
        engine = LlamaCppEngine(converted_weights(Path(path), params.weights, Path(model_dir)),
                                params)
    except BackendError as e:
        conn.send(("error", str(e)))
        return
    conn.send(("ready", None))
    try:
        while True:
            try:
                kind, *payload = inbox.recv()
            except EOFError:
                return
            if kind == "close":
                return
            conn.send(_run(engine, conn, *payload))
    finally:
        engine.close()


def _exit_with(parent: int) -> None:
    """Stop the engine process once its parent is gone (killed, even with -9): a generation
    in flight would otherwise keep both cores busy for nothing."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _run(engine, conn, messages, seeds, sampling) -> tuple:
    engine.stats = EngineStats()
    try:
        prompts = [engine.encode(m) for m in messages]
        completions = engine.run(prompts, seeds, sampling,
                                 lambda rows, tokens: conn.send(("progress", rows, tokens)))
    except BackendError as e:
        return ("error", str(e))
    except Exception as e:  # a bug on our side of the C API: report it, keep the engine
        return ("error", f"the llama.cpp engine failed: {type(e).__name__}: {e}")
    return ("done", completions, engine.stats)
