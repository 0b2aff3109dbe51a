"""Benchmark: generation speed of every backend available here, on the same real SST sentences.

    python bench/generate_speed.py                       # 64 sentences, all available backends
    python bench/generate_speed.py --parallel 8 16 32    # also sweep llama.cpp batch widths
    python bench/generate_speed.py --backends llamacpp   # only some backends

Every backend paraphrases the same 64 real SST training sentences with the product's prompts
(few-shot, label-aware, params.yaml sampling), then the completions go through the product's
parser and filters (similarity under the backbone encoder). Reported per backend: generated
tokens/s and accepted rows/s (both over generation time only), plus the speed-up of batched
llama.cpp over a single llama.cpp stream (n_parallel=1) measured in the same run, which stays
meaningful on a busy machine where absolute numbers are not, and generated tokens per CPU-second
of this process (what the work costs, whatever else the machine runs).

Backends: llamacpp (always), transformers (CPU or CUDA; on CUDA also with static cache and with
static cache + torch.compile), vllm (when installed, with CUDA). Results also go to
bench/results/generate_speed.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augment.augmenter import judge  # noqa: E402
from augment.backends import GenerationRequest, cuda_available  # noqa: E402
from augment.params import AugmentParams, load_params  # noqa: E402
from augment.prompts import build_messages, few_shot_examples, load_templates  # noqa: E402
from augment.requests import source_order, stable_seed  # noqa: E402
from augment.stage import encoder_similarity  # noqa: E402
from pipeline.tasks import class_of  # noqa: E402

log = logging.getLogger("bench")
RESULTS = Path("bench/results/generate_speed.json")


def sst_requests(params: AugmentParams, n: int, path: Path) -> tuple[list, pd.DataFrame]:
    """n real SST sentences (seeded choice, spread over classes) and their prompts."""
    table = pd.read_parquet(path)
    table = table.assign(cls=class_of("sst", table["label"]))
    template = load_templates(params.prompts.template_file)["sst"]
    picked, requests = [], []
    for cls, rows in table.groupby("cls"):
        order = source_order(rows["id"], params.seed, "sst", cls)
        texts = rows.set_index("id")["sentence"]
        pool = [texts[i] for i in order]
        for source_id in order[n_shots_pool(params):][: -(-n // 5)]:
            shots = few_shot_examples(pool, texts[source_id], params.prompts.n_shots,
                                      params.prompts.max_example_chars)
            messages = build_messages(template, cls, shots, texts[source_id])
            requests.append(GenerationRequest(messages, (stable_seed(params.seed, source_id),)))
            picked.append((cls, source_id, texts[source_id]))
    frame = pd.DataFrame(picked[:n], columns=["cls", "source_id", "source_text"])
    return requests[:n], frame


def n_shots_pool(params: AugmentParams) -> int:
    return params.prompts.n_shots + 1  # sources come after the few-shot pool of their class


def measure(backend, requests, params: AugmentParams, frame: pd.DataFrame, similarity) -> dict:
    # load the model and warm up; a static cache (torch.compile) compiles per batch shape, so it
    # warms up on the very batches it is timed on
    compiled = getattr(getattr(backend, "params", None), "static_cache", False)
    backend.generate(requests if compiled else requests[:1], params.sampling)
    start, cpu_start = time.perf_counter(), time.process_time()
    completions = [per[0] for per in backend.generate(requests, params.sampling)]
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    tokens = sum(c.n_tokens for c in completions)
    candidates = frame.assign(raw=[c.text for c in completions],
                              finish_reason=[c.finish_reason for c in completions])
    states = {c: _Open() for c in frame["cls"].unique()}
    judged = judge(candidates, set(), set(), states, params, similarity)
    accepted = int((judged["status"] == "accepted").sum())
    return {"rows": len(completions), "tokens": tokens, "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1), "cpu_seconds": round(cpu_seconds, 2),
            "tokens_per_cpu_s": round(tokens / cpu_seconds, 1),
            "accepted": accepted, "accepted_rows_per_s": round(accepted / seconds, 2)}


@dataclasses.dataclass
class _Open:
    """A class that accepts every valid candidate (judge's bookkeeping)."""

    need: int = 10**9
    accepted: int = 0


def llamacpp_backends(params: AugmentParams, widths: list[int]):
    from augment.llamacpp_backend import LlamaCppBackend

    yield "llamacpp single stream (n_parallel=1)", LlamaCppBackend(
        dataclasses.replace(params.llamacpp, n_parallel=1))
    for width in widths:
        yield f"llamacpp batched (n_parallel={width})", LlamaCppBackend(
            dataclasses.replace(params.llamacpp, n_parallel=width))


def transformers_backends(params: AugmentParams, batch_size: int):
    from augment.transformers_backend import TransformersBackend

    base = dataclasses.replace(params.transformers, batch_size=batch_size)
    yield f"transformers (batch {batch_size})", TransformersBackend(base)
    if cuda_available():
        yield "transformers + static cache", TransformersBackend(
            dataclasses.replace(base, static_cache=True))
        yield "transformers + static cache + compile", TransformersBackend(
            dataclasses.replace(base, static_cache=True, compile=True))


def vllm_backends(params: AugmentParams):
    from augment.vllm_backend import VllmBackend

    yield f"vllm ({params.vllm.model})", VllmBackend(params.vllm, seed=params.seed)


def available(names: list[str]) -> list[str]:
    import importlib.util

    keep = [n for n in names if n != "vllm" or
            (importlib.util.find_spec("vllm") is not None and cuda_available())]
    for n in sorted(set(names) - set(keep)):
        log.info("skipping %s: not available on this machine", n)
    return keep


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=64, help="SST sentences")
    parser.add_argument("--backends", nargs="+", default=["llamacpp", "transformers", "vllm"])
    parser.add_argument("--parallel", type=int, nargs="+", default=None,
                        help="llama.cpp n_parallel values (default: params.yaml)")
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp n_threads (default: params.yaml; 0 = all cores)")
    parser.add_argument("--hf-batch", type=int, default=64, help="transformers batch size")
    parser.add_argument("--data", type=Path, default=Path("data/clean/sst/train.parquet"))
    args = parser.parse_args()
    params = load_params()
    if args.threads is not None:
        params = dataclasses.replace(
            params, llamacpp=dataclasses.replace(params.llamacpp, n_threads=args.threads))
    requests, frame = sst_requests(params, args.n, args.data)
    similarity = encoder_similarity(params.encoder)
    similarity(["warm up"], ["warm up"])  # load the encoder outside the timings
    log.info("%d SST sentences, %d CPU cores, load average %s, llama.cpp threads %s",
             len(requests), os.cpu_count(), " ".join(open("/proc/loadavg").read().split()[:3]),
             params.llamacpp.n_threads or "all")
    makers = {"llamacpp": lambda: llamacpp_backends(params, args.parallel
                                                    or [params.llamacpp.n_parallel]),
              "transformers": lambda: transformers_backends(params, args.hf_batch),
              "vllm": lambda: vllm_backends(params)}
    results = {}
    for name in available(args.backends):
        for label, backend in makers[name]():
            results[label] = measure(backend, requests, params, frame, similarity)
            log.info("%-44s %s", label, results[label])
            if hasattr(backend, "close"):
                backend.close()
    report(results)


def report(results: dict) -> None:
    single = results.get("llamacpp single stream (n_parallel=1)")
    print(f"\n{'backend':44} {'tokens/s':>9} {'accepted rows/s':>16} {'vs single stream':>17}"
          f" {'tokens/CPU-s':>13}")
    for label, r in results.items():
        ratio = f"{r['tokens_per_s'] / single['tokens_per_s']:.2f}x" if single else "-"
        print(f"{label:44} {r['tokens_per_s']:>9.1f} {r['accepted_rows_per_s']:>16.2f} "
              f"{ratio:>17} {r['tokens_per_cpu_s']:>13.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"load_average": open("/proc/loadavg").read().split()[:3],
                                   "cpu_count": os.cpu_count(), "results": results}, indent=2))
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
