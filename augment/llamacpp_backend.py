"""Embedded backend: llama.cpp with many sequences decoded together (continuous batching).

One llama.cpp stream decodes one token per forward pass, which leaves most of the CPU's matrix
throughput idle for a 135M model. Here up to `n_parallel` sequences share one context with a
unified KV cache:

* each `llama_decode` call carries the next token of every running sequence plus the prompt of
  newly started ones, so a finished sequence is replaced at once (continuous batching);
* the prompt prefix shared by consecutive requests (system prompt + the class's few-shot block;
  requests arrive grouped by class) is decoded once into a spare sequence and copied into each
  new sequence with `llama_memory_seq_cp`, so only the source sentence is decoded per request;
* each sequence samples with its own seeded sampler chain (top-k, top-p, temperature, dist),
  so a completion depends on its seed, not on which other sequences ran beside it;
* with `stop_at_line_end`, a sequence stops at the first line break that follows its first
  content line: the parser keeps only that line, so the tokens after it would be wasted.

Uses the low-level llama-cpp-python bindings (`llama_batch_init`, `llama_decode`,
`llama_memory_seq_cp`, `llama_sampler_*`), imported lazily.
"""

from __future__ import annotations

import ctypes
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from augment.backends import (
    BackendError,
    Completion,
    GenerationRequest,
    Messages,
    Progress,
    embedded_gguf_path,
    flatten,
    unflatten,
)
from augment.filters import first_content_line
from augment.params import LlamaCppParams, SamplingParams


class LlamaCppBackend:
    name = "llamacpp"

    def __init__(self, params: LlamaCppParams):
        self.params = params
        self.path = Path(params.model_path) if params.model_path else embedded_gguf_path()
        if not self.path.is_file():
            raise BackendError(f"augment.llamacpp.model_path: no GGUF file at {self.path}")
        self.model = self.path.name
        self.chunk_size = 2 * params.n_parallel  # completions per cache write
        self._engine: _Engine | None = None

    def generate(self, requests: Sequence[GenerationRequest], sampling: SamplingParams,
                 progress: Progress | None = None) -> list[list[Completion]]:
        if self._engine is None:
            self._engine = _Engine(self.path, self.params)
        flat = flatten(requests)
        prompts = [self._engine.prompt_tokens(messages) for messages, _ in flat]
        completions = self._engine.run(prompts, [seed for _, seed in flat], sampling, progress)
        return unflatten(requests, completions)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass
class _Running:
    job: int
    sampler: object
    n_past: int  # tokens of this sequence already in the KV cache
    logits_at: int  # index of its logits row in the last batch
    out: list[int] = field(default_factory=list)


class _Engine:
    """Model, context and batch of one llama.cpp session; sequences 0..P-1 run requests,
    sequence P holds the shared prompt prefix."""

    MIN_PREFIX_GAIN = 16  # start a new shared prefix only if it saves at least this many tokens

    def __init__(self, path: Path, params: LlamaCppParams):
        # llama.cpp's OpenMP threads spin while they wait for each other by default; on a
        # machine shared with other jobs a descheduled thread then stalls all the others
        # (measured here: 3 tokens/s instead of 42 for one stream on 2 busy cores). Passive
        # waiting costs little when the machine is idle. Set OMP_WAIT_POLICY=ACTIVE to override.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import llama_cpp as lc
        from llama_cpp._logger import set_verbose

        set_verbose(False)  # llama.cpp prints model-load details to stderr otherwise
        self.lc, self.params = lc, params
        lc.llama_backend_init()
        model_params = lc.llama_model_default_params()
        self.llm = lc.llama_model_load_from_file(str(path).encode(), model_params)
        if not self.llm:
            raise BackendError(f"llama.cpp could not load {path}")
        self.vocab = lc.llama_model_get_vocab(self.llm)
        self.template = lc.llama_model_chat_template(self.llm, None)
        if not self.template:
            raise BackendError(f"{path.name} has no chat template")
        self.ctx = lc.llama_init_from_model(self.llm, self._context_params())
        if not self.ctx:
            raise BackendError("llama.cpp could not create a context "
                               "(lower augment.llamacpp.n_ctx)")
        self.mem = lc.llama_get_memory(self.ctx)
        self.batch = lc.llama_batch_init(params.n_batch, 0, 1)  # running + new sequences
        self.prefix_batch = lc.llama_batch_init(params.n_batch, 0, 1)
        self.prefix_seq = params.n_parallel
        self.prefix: list[int] = []
        self.newline_tokens = self._newline_tokens()

    def close(self) -> None:
        lc = self.lc
        lc.llama_batch_free(self.batch)
        lc.llama_batch_free(self.prefix_batch)
        lc.llama_free(self.ctx)
        lc.llama_model_free(self.llm)

    def _context_params(self):
        p, cp = self.params, self.lc.llama_context_default_params()
        threads = p.n_threads or os.cpu_count() or 1
        cp.n_ctx, cp.n_batch, cp.n_ubatch = p.n_ctx, p.n_batch, p.n_batch
        cp.n_seq_max = p.n_parallel + 1  # + the shared-prefix sequence
        cp.n_threads = cp.n_threads_batch = threads
        cp.kv_unified = True  # one KV buffer for all sequences, so prefix cells can be shared
        return cp

    # -- text <-> tokens ---------------------------------------------------------------------
    def prompt_tokens(self, messages: Messages) -> list[int]:
        """Chat template of the model applied to `messages`, tokenized."""
        lc = self.lc
        chat = (lc.llama_chat_message * len(messages))()
        keep = [(role.encode(), content.encode()) for role, content in messages]
        for i, (role, content) in enumerate(keep):
            chat[i].role, chat[i].content = role, content
        size = 4 * sum(len(c) for _, c in keep) + 256
        buf = ctypes.create_string_buffer(size)
        n = lc.llama_chat_apply_template(self.template, chat, len(keep), True, buf, size)
        if n > size:
            buf = ctypes.create_string_buffer(n)
            n = lc.llama_chat_apply_template(self.template, chat, len(keep), True, buf, n)
        return self._tokenize(buf.raw[:n])

    def _tokenize(self, text: bytes) -> list[int]:
        lc = self.lc
        out = (lc.llama_token * (len(text) + 8))()
        n = lc.llama_tokenize(self.vocab, text, len(text), out, len(out), True, True)
        if n < 0:
            out = (lc.llama_token * -n)()
            n = lc.llama_tokenize(self.vocab, text, len(text), out, len(out), True, True)
        return list(out[:n])

    def _newline_tokens(self) -> frozenset[int]:
        n_vocab = self.lc.llama_vocab_n_tokens(self.vocab)
        return frozenset(t for t in range(n_vocab) if "\n" in self.detokenize([t]))

    def detokenize(self, tokens: Sequence[int]) -> str:
        buf, pieces = ctypes.create_string_buffer(256), []
        for t in tokens:
            n = self.lc.llama_token_to_piece(self.vocab, t, buf, len(buf), 0, False)
            pieces.append(buf.raw[:max(n, 0)])
        return b"".join(pieces).decode("utf-8", errors="replace")

    # -- batching ----------------------------------------------------------------------------
    @staticmethod
    def _add(b, token: int, pos: int, seq: int, logits: bool) -> int:
        i = b.n_tokens
        b.token[i], b.pos[i], b.n_seq_id[i] = token, pos, 1
        b.seq_id[i][0], b.logits[i] = seq, logits
        b.n_tokens += 1
        return i

    def _decode(self, batch) -> None:
        rc = self.lc.llama_decode(self.ctx, batch)
        if rc != 0:
            raise BackendError(
                f"llama_decode failed (code {rc}): the KV cache is full; raise "
                "augment.llamacpp.n_ctx or lower augment.llamacpp.n_parallel"
            )

    def _set_prefix(self, tokens: list[int]) -> None:
        """Decode `tokens` into the prefix sequence (in n_batch chunks), replacing the old one."""
        self.lc.llama_memory_seq_rm(self.mem, self.prefix_seq, -1, -1)
        step = self.params.n_batch
        for start in range(0, len(tokens), step):
            self.prefix_batch.n_tokens = 0
            for pos in range(start, min(start + step, len(tokens))):
                self._add(self.prefix_batch, tokens[pos], pos, self.prefix_seq, False)
            self._decode(self.prefix_batch)
        self.prefix = list(tokens)

    def _reusable_prefix(self, tokens: list[int], following: list[int] | None) -> int:
        """Tokens of `tokens` to copy from the prefix sequence (renewing it when worthwhile)."""
        shared = _common_prefix(self.prefix, tokens)
        if following is not None:
            ahead = _common_prefix(tokens, following)
            if ahead >= shared + self.MIN_PREFIX_GAIN:
                self._set_prefix(tokens[:ahead])
                shared = ahead
        if len(tokens) - shared > self.params.n_batch:  # too long for one batch: pre-decode
            self._set_prefix(tokens[:-1])
            shared = len(tokens) - 1
        return min(shared, len(tokens) - 1)  # the last prompt token is decoded for its logits

    def _sampler(self, seed: int, s: SamplingParams):
        lc = self.lc
        chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        if s.top_k > 0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_k(s.top_k))
        if s.top_p < 1.0:
            lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_top_p(s.top_p, 1))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_temp(s.temperature))
        lc.llama_sampler_chain_add(chain, lc.llama_sampler_init_dist(seed % 0xFFFFFFFF))
        return chain

    def run(self, prompts: list[list[int]], seeds: list[int], sampling: SamplingParams,
            progress: Progress | None = None) -> list[Completion]:
        """Generate one completion per prompt, `n_parallel` sequences at a time."""
        pending, free = deque(range(len(prompts))), list(range(self.params.n_parallel))[::-1]
        running: dict[int, _Running] = {}
        results: list[Completion | None] = [None] * len(prompts)
        while pending or running:
            self.batch.n_tokens = 0
            for seq, r in running.items():  # the token each running sequence sampled last
                r.logits_at = self._add(self.batch, r.out[-1], r.n_past, seq, True)
                r.n_past += 1
            self._admit(pending, free, running, prompts, seeds, sampling)
            self._decode(self.batch)
            for seq in list(running):
                done = self._sample(running[seq], sampling.max_tokens)
                if done is not None:
                    results[running[seq].job] = done
                    self._release(seq, running.pop(seq), free)
                    if progress:
                        progress(1, done.n_tokens)
        return results  # type: ignore[return-value]

    def _admit(self, pending, free, running, prompts, seeds, sampling) -> None:
        """Start pending prompts in free sequences while the batch has room."""
        while pending and free:
            job = pending[0]
            following = prompts[pending[1]] if len(pending) > 1 else None
            tokens = prompts[job]
            shared = self._reusable_prefix(tokens, following)
            if self.batch.n_tokens + len(tokens) - shared > self.params.n_batch:
                return
            pending.popleft()
            seq = free.pop()
            if shared:
                self.lc.llama_memory_seq_cp(self.mem, self.prefix_seq, seq, 0, shared)
            for pos in range(shared, len(tokens)):
                at = self._add(self.batch, tokens[pos], pos, seq, pos == len(tokens) - 1)
            running[seq] = _Running(job, self._sampler(seeds[job], sampling), len(tokens), at)

    def _sample(self, r: _Running, max_tokens: int) -> Completion | None:
        token = self.lc.llama_sampler_sample(r.sampler, self.ctx, r.logits_at)
        if self.lc.llama_vocab_is_eog(self.vocab, token):
            return Completion(self.detokenize(r.out), len(r.out), "stop")
        r.out.append(token)
        if len(r.out) >= max_tokens:
            return Completion(self.detokenize(r.out), len(r.out), "length")
        if self.params.stop_at_line_end and token in self.newline_tokens:
            text = self.detokenize(r.out)
            line, followed = first_content_line(text)
            if line and followed:
                return Completion(text, len(r.out), "stop")
        return None

    def _release(self, seq: int, r: _Running, free: list[int]) -> None:
        self.lc.llama_memory_seq_rm(self.mem, seq, -1, -1)
        self.lc.llama_sampler_free(r.sampler)
        free.append(seq)
