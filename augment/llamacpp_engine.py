"""llama.cpp through its C API (ctypes): many sequences decoded together (continuous batching).

One llama.cpp stream decodes one token per forward pass, which leaves most of the CPU's matrix
throughput idle for a 135M model. Here up to `n_parallel` sequences share one context with a
unified KV cache:

* each `llama_decode` call carries the next token of every running sequence plus the prompt of
  newly started ones, so a finished sequence is replaced at once (continuous batching);
* each prompt is split before its last line (the source sentence); the part before it (system
  prompt, the class's few-shot block, the instruction) is the same for every prompt of a class:
  it is decoded once into a spare sequence and copied into each new sequence with
  `llama_memory_seq_cp`, so only the source sentence is decoded per request. The split is a
  function of the prompt alone (see `encode`), so a completion does not depend on its batch;
* the samples (seeds) of one prompt start together: the prompt's own tokens enter the batch
  once, tagged with every sample's sequence, so they share KV cells and the last token's
  logits, and each sample draws its first token from those logits with its own sampler;
* each sequence samples with its own seeded sampler chain (top-k, top-p, temperature, dist),
  so a completion depends on its prompt, seed and sampling only, not on what ran beside it;
* with `stop_at_line_end`, a sequence stops at the first line break that follows its first
  content line: the parser keeps only that line, so the tokens after it would be wasted.

With `augment.llamacpp.weights: f16` (the default) the engine loads a copy of the GGUF whose
weights are converted to F16, made once by llama.cpp's own converter (`llama_model_quantize`)
into the model cache (`augment.cache.resolve_model_dir`): llama.cpp's CPU backend multiplies a
batch of tokens against F16 or Q8_0 weights with its tiled matrix kernels, but against Q4_1
weights one row at a time, so batched decoding of the embedded Q4_1 file gains little over a
single stream. F16 keeps every Q4_1 weight to F16 rounding (a relative 2^-11).

The model is loaded with `use_extra_bufts` from `augment.llamacpp.extra_buffers` (default
false): llama.cpp's CPU weight repacking into "extra buffer types" (AMX tiles on Intel
Sapphire Rapids and later) crashes the first decode on such CPUs (ggml-org/llama.cpp#20824).

Runs inside the engine process of `augment.llamacpp_backend`; `llama_cpp` is imported there.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from augment.engine import BackendError, Completion, Messages
from augment.filters import first_content_line
from augment.params import LlamaCppParams, SamplingParams


CONVERSIONS = {"f16": "LLAMA_FTYPE_MOSTLY_F16", "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0"}


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def converted_weights(path: Path, weights: str, model_dir: Path) -> Path:
    """The GGUF file to load: `path` itself for weights "file", else a copy of it with its
    weights converted to `weights` (f16 | q8_0), made once in `model_dir` and named after the
    source's content hash (a changed source file gets a new copy). Written under a temporary
    name and renamed, so concurrent runs never load a half-written file."""
    if weights == "file":
        return path
    if weights not in CONVERSIONS:
        raise BackendError(f"augment.llamacpp.weights: {weights!r} is not one of file, "
                           f"{', '.join(CONVERSIONS)}")
    target = model_dir / f"{path.stem}.{file_digest(path)[:16]}.{weights}.gguf"
    if target.is_file():
        return target
    import llama_cpp as lc
    from llama_cpp._logger import set_verbose

    set_verbose(False)  # the converter logs every tensor otherwise
    model_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    qp = lc.llama_model_quantize_default_params()
    qp.ftype, qp.allow_requantize, qp.nthread = getattr(lc, CONVERSIONS[weights]), True, 0
    try:
        rc = lc.llama_model_quantize(str(path).encode(), str(partial).encode(), qp)
        if rc != 0 or not partial.is_file():
            raise BackendError(f"llama.cpp could not convert {path.name} to {weights} (code "
                               f"{rc}) in {model_dir}: set augment.llamacpp.weights: file")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


@dataclass
class EngineStats:
    """What the engine decoded; `prompt_tokens / generated_tokens` is the prompt overhead."""

    completions: int = 0
    generated_tokens: int = 0  # sampled tokens, end-of-turn excluded
    prompt_tokens: int = 0  # prompt tokens decoded (shared prefixes once, shared prompts once)
    decode_calls: int = 0
    decode_seconds: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the engine process (all its threads) in run()


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True)
class Prompt:
    """A tokenized prompt and where its shared part ends: tokens[:split] is decoded into the
    prefix sequence (once for all prompts that share it), tokens[split:] in the batch."""

    tokens: list[int]
    split: int


@dataclass
class _Running:
    job: int
    sampler: object
    n_past: int  # tokens of this sequence already in the KV cache
    logits_at: int  # index of its logits row in the last batch
    out: list[int] = field(default_factory=list)


class LlamaCppEngine:
    """Model, context and batch of one llama.cpp session; sequences 0..P-1 run requests,
    sequence P holds the shared prompt prefix."""


    def __init__(self, path: Path, params: LlamaCppParams):
        # llama.cpp's OpenMP threads spin while they wait for each other by default; on a
        # machine shared with other jobs a descheduled thread then stalls all the others
        # (measured here: 3 tokens/s instead of 42 for one stream on 2 busy cores). Passive
        # waiting costs little when the machine is idle. Set OMP_WAIT_POLICY=ACTIVE to override.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import llama_cpp as lc
        from llama_cpp._logger import set_verbose

        set_verbose(False)  # llama.cpp prints model-load details to stderr otherwise
        self.lc, self.params, self.stats = lc, params, EngineStats()
        lc.llama_backend_init()
        model_params = lc.llama_model_default_params()
        model_params.use_extra_bufts = params.extra_buffers
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
        # running + new sequences; a shared prompt token belongs to up to n_parallel sequences
        self.batch = lc.llama_batch_init(params.n_batch, 0, params.n_parallel)
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

    def encode(self, messages: Messages) -> Prompt:
        """The prompt of `messages`, split before the last line of the last message (the source
        sentence; everything before it is shared by the prompts of a class).

        The split depends on the prompt alone, never on its neighbours: llama.cpp's logits for
        a prompt change (by up to ~1 %) with the way its tokens are split over decode calls,
        so a split that followed the neighbours would make a completion depend on what ran
        beside it, and the generation cache would store one of several possible texts."""
        tokens = self.prompt_tokens(messages)
        role, content = messages[-1]
        head = content.rsplit("\n", 1)[0] if "\n" in content else ""
        split = _common_prefix(tokens, self.prompt_tokens((*messages[:-1], (role, head))))
        split = min(split, len(tokens) - 1)  # the last token is decoded for its logits
        if len(tokens) - split > self.params.n_batch:  # a last line longer than a batch
            split = len(tokens) - 1
        return Prompt(tokens, split)

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
    def _add(b, token: int, pos: int, seqs: Sequence[int], logits: bool) -> int:
        i = b.n_tokens
        b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, len(seqs), logits
        ids = b.seq_id[i]
        for k, seq in enumerate(seqs):
            ids[k] = seq
        b.n_tokens += 1
        return i

    def _decode(self, batch, prompt_tokens: int) -> None:
        start = time.perf_counter()
        rc = self.lc.llama_decode(self.ctx, batch)
        if rc != 0:
            raise BackendError(
                f"llama_decode failed (code {rc}): the KV cache is full; raise "
                "augment.llamacpp.n_ctx or lower augment.llamacpp.n_parallel"
            )
        self.stats.decode_seconds += time.perf_counter() - start
        self.stats.decode_calls += 1
        self.stats.prompt_tokens += prompt_tokens

    def _set_prefix(self, tokens: list[int]) -> None:
        """Decode `tokens` into the prefix sequence (in n_batch chunks), replacing the old one."""
        self.lc.llama_memory_seq_rm(self.mem, self.prefix_seq, -1, -1)
        step = self.params.n_batch
        for start in range(0, len(tokens), step):
            self.prefix_batch.n_tokens = 0
            for pos in range(start, min(start + step, len(tokens))):
                self._add(self.prefix_batch, tokens[pos], pos, (self.prefix_seq,), False)
            self._decode(self.prefix_batch, self.prefix_batch.n_tokens)
        self.prefix = list(tokens)

    def _shared_part(self, prompt: Prompt) -> int:
        """Put the prompt's shared part into the prefix sequence (unless it is there already);
        returns its length."""
        if prompt.split and self.prefix != prompt.tokens[:prompt.split]:
            self._set_prefix(prompt.tokens[:prompt.split])
        return prompt.split

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

    def run(self, prompts: list[Prompt], seeds: list[int], sampling: SamplingParams,
            progress: Callable[[int, int], None] | None = None) -> list[Completion]:
        """Generate one completion per prompt, `n_parallel` sequences at a time. Prompts that
        share their prefix run one after the other (each prefix is decoded once); equal
        prompts (samples of one request) start together."""
        pending, free = deque(_by_prefix(prompts)), list(range(self.params.n_parallel))[::-1]
        running: dict[int, _Running] = {}
        results: list[Completion | None] = [None] * len(prompts)
        cpu_start = time.process_time()
        while pending or running:
            self.batch.n_tokens = 0
            for seq, r in running.items():  # the token each running sequence sampled last
                r.logits_at = self._add(self.batch, r.out[-1], r.n_past, (seq,), True)
                r.n_past += 1
            n_prompt = self._admit(pending, free, running, prompts, seeds, sampling)
            self._decode(self.batch, n_prompt)
            for seq in list(running):
                done = self._sample(running[seq], sampling.max_tokens)
                if done is not None:
                    results[running[seq].job] = done
                    self._release(seq, running.pop(seq), free)
                    self.stats.completions += 1
                    self.stats.generated_tokens += done.n_tokens
                    if progress:
                        progress(1, done.n_tokens)
        self.stats.cpu_seconds += time.process_time() - cpu_start
        return results  # type: ignore[return-value]

    def _admit(self, pending, free, running, prompts, seeds, sampling) -> int:
        """Start pending prompts in free sequences while the batch has room; returns the
        prompt tokens added to the batch."""
        added = 0
        while pending and free:
            group = self._same_prompt(pending, prompts, len(free))
            tokens = prompts[group[0]].tokens
            shared = self._shared_part(prompts[group[0]])
            if self.batch.n_tokens + len(tokens) - shared > self.params.n_batch:
                break
            seqs = [free.pop() for _ in group]
            for _ in group:
                pending.popleft()
            for seq in seqs if shared else ():
                self.lc.llama_memory_seq_cp(self.mem, self.prefix_seq, seq, 0, shared)
            for pos in range(shared, len(tokens)):
                at = self._add(self.batch, tokens[pos], pos, seqs, pos == len(tokens) - 1)
            for job, seq in zip(group, seqs, strict=True):
                running[seq] = _Running(job, self._sampler(seeds[job], sampling), len(tokens), at)
            added += len(tokens) - shared
        return added

    @staticmethod
    def _same_prompt(pending: deque, prompts: list[Prompt], most: int) -> list[int]:
        """The first pending job and the adjacent pending jobs with the same prompt."""
        group = [pending[0]]
        while len(group) < min(most, len(pending)) and prompts[pending[len(group)]].tokens == \
                prompts[group[0]].tokens:
            group.append(pending[len(group)])
        return group

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


def _by_prefix(prompts: list[Prompt]) -> list[int]:
    """Job indices grouped by shared part (groups in first-seen order, jobs in order within)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for job, prompt in enumerate(prompts):
        groups.setdefault(tuple(prompt.tokens[:prompt.split]), []).append(job)
    return [job for jobs in groups.values() for job in jobs]
