"""Benchmark: generation speed of every backend available here, on the same real SST sentences.

    python bench/generate_speed.py                       # 64 sentences, all available backends
    python bench/generate_speed.py --parallel 8 16 32    # also sweep llama.cpp batch widths
    python bench/generate_speed.py --backends llamacpp   # only some backends
    python bench/generate_speed.py --backends llamacpp openai  # + the llama.cpp server

Every backend paraphrases the same 64 real SST training sentences with the product's prompts
(few-shot, label-aware, params.yaml sampling), then the completions go through the product's
parser and filters (similarity under the backbone encoder). Reported per backend: generated
tokens/s and accepted rows/s (both over generation time only), plus the speed-up of batched
llama.cpp over a single llama.cpp stream (n_parallel=1) measured in the same run, which stays
meaningful on a busy machine where absolute numbers are not, and generated tokens per CPU-second
of this process (what the work costs, whatever else the machine runs).

Backends: llamacpp (always), transformers (CPU or CUDA; on CUDA also with static cache and with
static cache + torch.compile), vllm (when installed, with CUDA), openai (on request: the
server backend against the embedded model's llama.cpp server, started here, or --server-url,
with 1 and params.yaml's number of requests in flight, each also as a ratio to the in-process
llama.cpp rows; its tokens per CPU-second count the client only). Results also go to
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
from augment.engine import GenerationRequest, cuda_available  # noqa: E402
from augment.params import AugmentParams, load_params  # noqa: E402
from augment.prompts import build_messages, few_shot_examples, load_templates  # noqa: E402
from augment.requests import source_order, stable_seed  # noqa: E402
from augment.stage import encoder_similarity  # noqa: E402
from minbert.tasks import class_of  # noqa: E402

log = logging.getLogger("bench")
RESULTS = Path("bench/results/generate_speed.json")
SINGLE = "llamacpp single stream (n_parallel=1, file weights)"


def sst_requests(params: AugmentParams, n: int, path: Path,
                 samples: int = 1) -> tuple[list, pd.DataFrame]:
    """n real SST sentences (seeded choice, spread over classes) and their prompts, with
    `samples` seeds each; the frame has one row per completion."""
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
            seeds = [stable_seed(params.seed, source_id)]
            seeds += [stable_seed(params.seed, source_id, k) for k in range(1, samples)]
            requests.append(GenerationRequest(messages, tuple(seeds)))
            picked.append((cls, source_id, texts[source_id]))
    frame = pd.DataFrame([p for p in picked[:n] for _ in range(samples)],
                         columns=["cls", "source_id", "source_text"])
    return requests[:n], frame


def n_shots_pool(params: AugmentParams) -> int:
    return params.prompts.n_shots + 1  # sources come after the few-shot pool of their class


def measure(backend, requests, params: AugmentParams, frame: pd.DataFrame, similarity) -> dict:
    # load the model and warm up; a static cache (torch.compile) compiles per batch shape, so it
    # warms up on the very batches it is timed on
    compiled = getattr(getattr(backend, "params", None), "static_cache", False)
    backend.generate(requests if compiled else requests[:1], params.sampling)
    start, cpu_start = time.perf_counter(), time.process_time()
    completions = [c for per in backend.generate(requests, params.sampling) for c in per]
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    tokens = sum(c.n_tokens for c in completions)
    candidates = frame.assign(raw=[c.text for c in completions],
                              finish_reason=[c.finish_reason for c in completions])
    states = {c: _Open() for c in frame["cls"].unique()}
    judged = judge(candidates, set(), set(), states, params, similarity)
    accepted = int((judged["status"] == "accepted").sum())
    result = {"rows": len(completions), "tokens": tokens, "seconds": round(seconds, 2),
              "tokens_per_s": round(tokens / seconds, 1), "texts": [c.text for c in completions]}
    result.update(engine_process_stats(backend, cpu_seconds, tokens))
    result.update({"accepted": accepted, "accepted_rows_per_s": round(accepted / seconds, 2)})
    return result


def engine_process_stats(backend, cpu_seconds: float, tokens: int) -> dict:
    """CPU cost, plus for llama.cpp (whose engine runs in a child process: its CPU time is
    added) the prompt tokens it decoded per generated token."""
    stats = getattr(backend, "stats", None)
    out = {}
    if stats is not None:
        cpu_seconds += stats.cpu_seconds
        out["prompt_tokens_decoded"] = stats.prompt_tokens
        out["prompt_per_generated"] = round(stats.prompt_tokens / max(stats.generated_tokens, 1),
                                            2)
    return {"cpu_seconds": round(cpu_seconds, 2),
            "tokens_per_cpu_s": round(tokens / cpu_seconds, 1), **out}


@dataclasses.dataclass
class _Open:
    """A class that accepts every valid candidate (judge's bookkeeping)."""

    need: int = 10**9
    accepted: int = 0


def llamacpp_backends(params: AugmentParams, widths: list[int], weights: list[str]):
    """The reference (one stream, the GGUF's own weights), then every batch width with every
    weight type (augment.llamacpp.weights)."""
    from augment.llamacpp_backend import LlamaCppBackend

    yield SINGLE, LlamaCppBackend(
        dataclasses.replace(params.llamacpp, n_parallel=1, weights="file"))
    for kind in weights:
        for width in widths:
            yield f"llamacpp batched (n_parallel={width}, {kind} weights)", LlamaCppBackend(
                dataclasses.replace(params.llamacpp, n_parallel=width, weights=kind))


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


def server_backends(params: AugmentParams, args: argparse.Namespace):
    """The server backend (augment.backend=openai) with each number of requests in flight,
    against `url`, or else against the embedded model served by our llama.cpp server launcher
    (`python -m augment.llama_server`), started here on a free port and stopped afterwards."""
    from augment.openai_backend import OpenAIBackend

    url = args.server_url
    server = None if url else _start_llama_server(params.llamacpp.n_threads)
    settings = dataclasses.replace(
        params.openai, base_url=url or server[1],
        model=args.server_model or params.openai.model,
        api_key_env=args.api_key_env or params.openai.api_key_env)
    try:
        for n in args.in_flight or sorted({1, params.openai.max_in_flight}):
            yield (f"{url or 'local llama.cpp server'}, {n} in flight",
                   OpenAIBackend(dataclasses.replace(settings, max_in_flight=n)))
    finally:
        if server:
            server[0].terminate()
            server[0].wait(timeout=30)


def _start_llama_server(threads: int):
    """(process, base URL) of the embedded model's llama.cpp server on 127.0.0.1."""
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "augment.llama_server", "--port", str(port),
                             "--n-threads", str(threads)], cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)})
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit("the llama.cpp server did not start (see its log above)")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the llama.cpp server did not answer within 2 minutes")


def report_server(results: dict) -> None:
    """Each server row as a ratio to the in-process llama.cpp backend of the same run."""
    local = {label: r for label, r in results.items() if label.startswith("llamacpp")}
    served = {label: r for label, r in results.items() if " in flight" in label}
    if not local or not served:
        return
    print(f"\n{'server backend':44} " + " ".join(f"{'vs ' + k.split(' ', 1)[1]:>30}"
                                                  for k in local))
    for label, r in served.items():
        print(f"{label:44} " + " ".join(f"{r['tokens_per_s'] / x['tokens_per_s']:>29.2f}x"
                                        for x in local.values()))


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
    parser.add_argument("--samples", type=int, default=1,
                        help="paraphrases (seeds) per sentence, as at augment.ratio > 2")
    parser.add_argument("--backends", nargs="+", default=["llamacpp", "transformers", "vllm"])
    parser.add_argument("--parallel", type=int, nargs="+", default=None,
                        help="llama.cpp n_parallel values (default: params.yaml)")
    parser.add_argument("--weights", nargs="+", default=None, choices=["file", "f16", "q8_0"],
                        help="llama.cpp weights of the batched rows (default: file and "
                             "params.yaml's augment.llamacpp.weights)")
    parser.add_argument("--extra-buffers", action="store_true",
                        help="llama.cpp weight repacking on (crashes on AMX CPUs; to measure it)")
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp n_threads (default: params.yaml; 0 = all cores)")
    parser.add_argument("--hf-batch", type=int, default=64, help="transformers batch size")
    parser.add_argument("--data", type=Path, default=Path("data/clean/sst/train.parquet"))
    parser.add_argument("--server-url", default=None,
                        help="backend openai: a running OpenAI-compatible server (default: "
                             "start the embedded model's llama.cpp server on 127.0.0.1)")
    parser.add_argument("--in-flight", type=int, nargs="+", default=None,
                        help="backend openai: requests in flight (default: 1 and params.yaml)")
    parser.add_argument("--server-model", default=None,
                        help="backend openai: served model name (default: params.yaml)")
    parser.add_argument("--api-key-env", default=None,
                        help="backend openai: NAME of the variable holding the key")
    args = parser.parse_args()
    params = load_params()
    if args.threads is not None:
        params = dataclasses.replace(
            params, llamacpp=dataclasses.replace(params.llamacpp, n_threads=args.threads))
    if args.extra_buffers:
        params = dataclasses.replace(
            params, llamacpp=dataclasses.replace(params.llamacpp, extra_buffers=True))
    requests, frame = sst_requests(params, args.n, args.data, args.samples)
    similarity = encoder_similarity(params.encoder)
    similarity(["warm up"], ["warm up"])  # load the encoder outside the timings
    log.info("%d SST sentences, %d CPU cores, load average %s, llama.cpp threads %s",
             len(requests), os.cpu_count(), " ".join(open("/proc/loadavg").read().split()[:3]),
             params.llamacpp.n_threads or "all")
    weights = args.weights or list(dict.fromkeys(["file", params.llamacpp.weights]))
    makers = {"llamacpp": lambda: llamacpp_backends(params, args.parallel
                                                    or [params.llamacpp.n_parallel], weights),
              "transformers": lambda: transformers_backends(params, args.hf_batch),
              "vllm": lambda: vllm_backends(params),
              "openai": lambda: server_backends(params, args)}
    results = {}
    for name in available(args.backends):
        for label, backend in makers[name]():
            results[label] = measure(backend, requests, params, frame, similarity)
            same_as_single_stream(results, label)
            log.info("%-44s %s", label, {k: v for k, v in results[label].items() if k != "texts"})
            if hasattr(backend, "close"):
                backend.close()
    report(results)
    report_server(results)


def same_as_single_stream(results: dict, label: str) -> None:
    """For a batched llama.cpp row: how many completions equal the single stream's (same
    prompt and seed); the generation cache assumes batching does not change them."""
    single = results.get(SINGLE)
    if single is not None and label.startswith("llamacpp") and label != SINGLE:
        same = sum(a == b for a, b in zip(single["texts"], results[label]["texts"], strict=True))
        results[label]["same_as_single_stream"] = f"{same}/{len(single['texts'])}"


def report(results: dict) -> None:
    single = results.get(SINGLE)
    print(f"\n{'backend':44} {'tokens/s':>9} {'prompt tok/gen tok':>19} {'accepted rows/s':>16}"
          f" {'vs single stream':>17} {'tokens/CPU-s':>13} {'vs single':>10}")
    for label, r in results.items():
        ratio = f"{r['tokens_per_s'] / single['tokens_per_s']:.2f}x" if single else "-"
        cpu_ratio = f"{r['tokens_per_cpu_s'] / single['tokens_per_cpu_s']:.2f}x" if single else "-"
        prompt = f"{r['prompt_per_generated']:.2f}" if "prompt_per_generated" in r else "-"
        print(f"{label:44} {r['tokens_per_s']:>9.1f} {prompt:>19} "
              f"{r['accepted_rows_per_s']:>16.2f} {ratio:>17} {r['tokens_per_cpu_s']:>13.1f} "
              f"{cpu_ratio:>10}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for label, r in results.items():
        if "same_as_single_stream" in r:
            print(f"{label}: {r['same_as_single_stream']} completions equal the single stream's")
    kept = {label: {k: v for k, v in r.items() if k != "texts"} for label, r in results.items()}
    RESULTS.write_text(json.dumps({"load_average": open("/proc/loadavg").read().split()[:3],
                                   "cpu_count": os.cpu_count(), "results": kept}, indent=2))
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
