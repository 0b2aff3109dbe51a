"""Training throughput of our BertModel vs transformers.BertModel (a benchmark, not a test).

Both models get the same config, the same weights, the same batches and the same training step
(forward, cross-entropy of a linear head on the pooled output, backward, AdamW step); SDPA
attention for both, bf16 autocast on CUDA. The models alternate chunk by chunk of steps (ABBA)
so a busy machine slows them alike; throughput comes from the median chunk time. Prints samples/s
for each and the ours/HF ratio.

    python -m bench.train_speed --device cpu --config minilm --batch-size 16 --steps 10
    python -m bench.train_speed --device cuda --config bert-base --batch-size 256 --steps 30
    python -m bench.train_speed --device cuda --config bert-base --batch-size 256 --compile
    python -m bench.train_speed --device cuda --config mpnet --batch-size 256 --steps 30

``--config mpnet`` is all-mpnet-base-v2 (the ``mpnet`` extra); its reference is transformers'
``MPNetModel``, which has only eager attention (no SDPA), so the ratio also measures that.

On CUDA it also times our model with ``residual_dtype="float32"`` (add + LayerNorm in fp32, as
autocast runs them for transformers) next to the default bf16 residual stream.

``--real-data`` instead trains our model on the SST + Quora training CSVs (data/raw) and compares
real (non-padding) tokens/s of length-bucketed batches with batches padded to ``--seq-len``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from minbert.backbone import load_tokenizer, resolve_backbone
from minbert.batching import length_bucketed_batches, padded_tokens
from minbert.bert import BertConfig, BertModel, dynamic_shape_attention

log = logging.getLogger("bench.train_speed")
ROOT = Path(__file__).resolve().parents[1]
RAW_FILES = {"ids-sst-train.csv": ("sentence",), "quora-train.csv": ("sentence1", "sentence2")}
NUM_CLASSES = 5


# --config -> the checkpoint whose config.json (and vocab, for --real-data) it uses by default
CONFIG_BACKBONES = {"bert-base": "minilm", "minilm": "minilm", "mpnet": "mpnet"}


def bench_config(name: str, backbone: str) -> BertConfig:
    if name == "bert-base":
        return BertConfig()  # the defaults are bert-base-uncased
    return BertConfig.from_json(resolve_backbone(backbone) / "config.json")


def reference_model(config: BertConfig) -> torch.nn.Module:
    """transformers' model of the same architecture: BertModel (SDPA) or MPNetModel (eager)."""
    import transformers

    if config.is_mpnet:
        return transformers.MPNetModel(transformers.MPNetConfig(**config.to_dict()))
    hf_config = transformers.BertConfig(**config.to_dict(), attn_implementation="sdpa")
    return transformers.BertModel(hf_config)


def build_models(config: BertConfig, device: torch.device) -> dict[str, torch.nn.Module]:
    """Our model(s) and transformers', all with identical weights."""
    torch.manual_seed(0)
    models = {"ours": BertModel(config)}
    if device.type == "cuda":  # the residual dtype only matters under autocast
        models["ours_fp32_residual"] = BertModel(config, residual_dtype="float32")
        models["ours_fp32_residual"].load_state_dict(models["ours"].state_dict())
    models["hf"] = reference_model(config)
    missing, unexpected = models["hf"].load_state_dict(models["ours"].state_dict(), strict=False)
    if unexpected or set(missing) - {"embeddings.position_ids"}:  # same names and shapes
        raise RuntimeError(f"weights do not transfer: missing {missing}, unexpected {unexpected}")
    return {name: model.to(device).train() for name, model in models.items()}


def pooled_output(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    if isinstance(model, BertModel):
        return model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])[
            "pooler_output"]
    if "mpnet" in type(model).__name__.lower():  # MPNetModel takes no token types
        batch = {key: value for key, value in batch.items() if key != "token_type_ids"}
    return model(**batch)["pooler_output"]  # a ModelOutput, or a plain dict once compiled


def make_train_step(model: torch.nn.Module, hidden_size: int, device: torch.device,
                    compile_model: bool,
                    dynamic_shapes: bool = False) -> Callable[[dict, torch.Tensor], None]:
    """One optimisation step on (batch, labels): CE of a linear head on the pooled output.

    ``dynamic_shapes``: batches change shape step to step, so attention runs as in the train
    stage (``dynamic_shape_attention``: no cuDNN attention, which plans every new shape)."""
    head = torch.nn.Linear(hidden_size, NUM_CLASSES).to(device)
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-5, fused=device.type == "cuda")
    forward = torch.compile(model) if compile_model else model
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())

    def kernels() -> contextlib.AbstractContextManager:
        return dynamic_shape_attention(device) if dynamic_shapes else contextlib.nullcontext()

    def step(batch: dict[str, torch.Tensor], labels: torch.Tensor) -> None:
        with autocast, kernels():
            loss = F.cross_entropy(head(pooled_output(forward, batch)), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


def timed(step: Callable, batches: list[tuple[dict, torch.Tensor]], device: torch.device,
          clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds to run ``step`` over the batches (device work included)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = clock()
    for batch, labels in batches:
        step(batch, labels)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return clock() - start


def random_batch(config: BertConfig, batch_size: int, seq_len: int,
                 device: torch.device) -> tuple[dict, torch.Tensor]:
    """Full-length token ids, as many rows as the batch size (no padding)."""
    input_ids = torch.randint(1000, config.vocab_size, (batch_size, seq_len), device=device)
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
             "token_type_ids": torch.zeros_like(input_ids)}
    return batch, torch.randint(0, NUM_CLASSES, (batch_size,), device=device)


def compare_models(args: argparse.Namespace, device: torch.device) -> dict:
    config = bench_config(args.config, args.backbone)
    steps = {name: make_train_step(model, config.hidden_size, device, args.compile)
             for name, model in build_models(config, device).items()}
    batch = random_batch(config, args.batch_size, args.seq_len, device)
    for step in steps.values():
        timed(step, [batch] * args.warmup, device)  # warmup (and compilation) not timed
    chunk = args.chunk or (5 if device.type == "cuda" else 1)
    chunk_seconds = {name: [] for name in steps}
    for round_index in range(max(1, args.steps // chunk)):
        names = list(steps) if round_index % 2 == 0 else list(steps)[::-1]  # ABC CBA ...
        for name in names:
            chunk_seconds[name].append(timed(steps[name], [batch] * chunk, device,
                                             CLOCKS[args.clock]))
    # median chunk: robust to other processes' bursts on a shared machine
    result = {name: chunk * args.batch_size / float(np.median(seconds))
              for name, seconds in chunk_seconds.items()}
    log.info("%s, %s, batch %d, seq %d, %d timed steps per model in chunks of %d%s", device,
             args.config, args.batch_size, args.seq_len, len(chunk_seconds["hf"]) * chunk, chunk,
             ", torch.compile" if args.compile else "")
    ratios = {name: speed / result["hf"] for name, speed in result.items() if name != "hf"}
    for name, ratio in ratios.items():
        log.info("%-19s %8.1f samples/s   ratio to HF %.3f", name, result[name], ratio)
    log.info("%-19s %8.1f samples/s", "transformers", result["hf"])
    return {"samples_per_s": result, "ratio": ratios["ours"], "ratios": ratios}


def real_token_ids(raw_dir: Path, seq_len: int, backbone: str) -> tuple[list[list[int]], int]:
    """Token ids of every SST sentence and Quora pair of the training CSVs, truncated, and the
    padding id of the tokenizer."""
    tokenizer = load_tokenizer(resolve_backbone(backbone), seq_len)
    pad_id = tokenizer.padding["pad_id"]
    tokenizer.no_padding()
    rows = []
    for name, columns in RAW_FILES.items():
        with open(raw_dir / name, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                rows.append(tuple(row[column] for column in columns))
    singles = tokenizer.encode_batch([row[0] for row in rows if len(row) == 1])
    pairs = tokenizer.encode_batch([row for row in rows if len(row) == 2])
    return [encoding.ids for encoding in singles + pairs], pad_id


def collate(ids: list[list[int]], pad_to: int | None, device: torch.device,
            pad_id: int = 0) -> tuple[dict, torch.Tensor]:
    width = pad_to or max(map(len, ids))
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, tokens in enumerate(ids):
        input_ids[row, :len(tokens)] = torch.tensor(tokens)
        attention_mask[row, :len(tokens)] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention_mask,
             "token_type_ids": torch.zeros_like(input_ids)}
    batch = {key: value.to(device) for key, value in batch.items()}
    return batch, torch.zeros(len(ids), dtype=torch.long, device=device)


def compare_padding(args: argparse.Namespace, device: torch.device) -> dict:
    """Real tokens/s of our model: length-bucketed dynamic padding vs padding to seq_len."""
    ids, pad_id = real_token_ids(args.raw_dir, args.seq_len, args.backbone)
    lengths = np.array([len(row) for row in ids])
    n_batches = args.warmup + args.steps
    plans = {
        "bucketed": length_bucketed_batches(lengths, args.batch_size, shuffle=True, seed=0),
        "padded_to_max": length_bucketed_batches(lengths, args.batch_size, shuffle=True, seed=0,
                                                 bucket_multiplier=1),  # = random batches
    }
    config = bench_config(args.config, args.backbone)
    step = make_train_step(build_models(config, device)["ours"], config.hidden_size, device,
                           args.compile, dynamic_shapes=not args.cudnn_attention)
    batches = {name: [collate([ids[i] for i in rows], args.seq_len if name == "padded_to_max"
                              else None, device, pad_id) for rows in plan[:n_batches]]
               for name, plan in plans.items()}
    for name in plans:
        timed(step, batches[name][:args.warmup], device)
    seconds = dict.fromkeys(plans, 0.0)
    for i in range(args.warmup, n_batches):  # alternate the two kinds step by step
        for name in plans:
            seconds[name] += timed(step, [batches[name][i]], device, CLOCKS[args.clock])
    result = {name: sum(int(b["attention_mask"].sum()) for b, _ in batches[name][args.warmup:])
              / seconds[name] for name in plans}
    # share of real tokens among the tokens computed, over a whole epoch of each plan
    real_share = {"bucketed": lengths.sum() / padded_tokens(lengths, plans["bucketed"]),
                  "padded_to_max": lengths.sum() / (len(lengths) * args.seq_len)}
    log.info("%s, %s, real data (%d rows), batch %d, %d timed steps each", device, args.config,
             len(ids), args.batch_size, n_batches - args.warmup)
    log.info("length-bucketed:    %8.0f real tokens/s (%.0f%% of computed tokens are real)",
             result["bucketed"], 100 * real_share["bucketed"])
    log.info("padded to %-4d      %8.0f real tokens/s (%.0f%% real)   speed-up %.2fx",
             args.seq_len, result["padded_to_max"], 100 * real_share["padded_to_max"],
             result["bucketed"] / result["padded_to_max"])
    return {"real_tokens_per_s": result, "real_token_share": real_share,
            "speedup": result["bucketed"] / result["padded_to_max"]}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--config", choices=sorted(CONFIG_BACKBONES), default="minilm")
    parser.add_argument("--backbone", default=None,
                        help="checkpoint (minilm, mpnet or a local BERT/MPNet directory) whose "
                             "config.json --config minilm/mpnet uses and whose vocab tokenizes "
                             "--real-data (default: minilm, or mpnet for --config mpnet)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model")
    parser.add_argument("--chunk", type=int, default=0,
                        help="steps per timing chunk; models alternate chunk by chunk "
                             "(default 1 on cpu, 5 on cuda)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per model")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="'process' = CPU seconds of this process: steadier than wall time "
                             "on a shared CPU machine (use with --threads 1)")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models")
    parser.add_argument("--real-data", action="store_true",
                        help="bucketed vs padded-to-max real tokens/s on data/raw")
    parser.add_argument("--raw-dir", type=Path, default=ROOT / "data" / "raw")
    parser.add_argument("--cudnn-attention", action="store_true",
                        help="--real-data: let SDPA pick cuDNN attention (slow on changing "
                             "shapes; the train stage does not)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    return parser.parse_args()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args()
    args.backbone = args.backbone or CONFIG_BACKBONES[args.config]
    device = torch.device(args.device)
    if device.type == "cuda" and args.clock != "wall":
        raise SystemExit("--clock process measures CPU time: use --clock wall on cuda")
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    result = compare_padding(args, device) if args.real_data else compare_models(args, device)
    result["settings"] = {key: str(value) for key, value in vars(args).items()}
    result["device_name"] = (torch.cuda.get_device_name() if device.type == "cuda"
                             else f"cpu ({torch.get_num_threads()} threads)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
