"""The multitask training loop: `train()` runs every epoch and keeps the best checkpoint.

Per step the schedule (train/schedule.py) names the tasks that contribute a batch; the losses
(plus SimCSE / MNRL auxiliary batches when switched on) are weighted, summed and back-propagated
-- through PCGrad when it is on -- and every `grad_accum` steps AdamW makes an update (linear
warmup then linear decay, gradient clipping). After each epoch rank 0 scores the dev sets and
saves the model when the overall dev score improves. Under torchrun the model is wrapped in
DistributedDataParallel and every worker trains on its own shard of every task's batches.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from tokenizers import Tokenizer
from torch import nn
from tqdm import tqdm

from minbert.data import (
    encode_sentences,
    group_codes,
    is_cross,
    row_weights,
    simcse_sentences,
    source_keys,
    task_batch,
    to_device,
    token_lengths,
)
from minbert.model import AuxSettings, MultitaskModel
from minbert.predict import evaluate_dev, forward_context
from minbert.smart import SmartSettings
from train.params import TrainParams
from train.pcgrad import pcgrad_backward
from train.schedule import BatchStream, epoch_plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workers:
    """Data-parallel layout: this process's rank among `world_size` workers."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def build_optimizer(model: nn.Module, params: TrainParams) -> torch.optim.AdamW:
    """AdamW; encoder and heads get their own learning rate, and no weight decay goes to
    biases, LayerNorm weights and scalars (every parameter with fewer than 2 dimensions)."""
    groups: dict[tuple[float, float], list[nn.Parameter]] = defaultdict(list)
    for name, p in model.named_parameters():
        if p.requires_grad:
            lr = params.lr_backbone if name.startswith("bert.") else params.lr_heads
            groups[(lr, params.weight_decay if p.ndim >= 2 else 0.0)].append(p)
    return torch.optim.AdamW(
        [{"params": ps, "lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]
    )


def warmup_linear_decay(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """lr factor 0 -> 1 over `warmup_steps` updates, then 1 -> 0 at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class BatchSource:
    """Token batches of every task and auxiliary loss, each from its own endless stream.

    Batches of an augmented table carry per-row loss `weights` when `synthetic_weight` != 1;
    SimCSE and MNRL batches carry source `groups` (rows of one source are not negatives).
    """

    def __init__(self, tokenizer: Tokenizer, tables: dict[str, pd.DataFrame],
                 params: TrainParams, workers: Workers) -> None:
        self.tokenizer, self.tables, self.cross = tokenizer, dict(tables), {}
        self.groups: dict[str, np.ndarray] = {}
        sizes = {t: params.batch_size for t in tables}
        techniques = params.techniques
        if techniques.simcse.enabled:  # SST sentences and both sides of the STS pairs
            self.tables["simcse"] = simcse_sentences(tables["sst"], tables["sts"])
            self.groups["simcse"] = group_codes(self.tables["simcse"]["group"])
            sizes["simcse"] = techniques.simcse.batch_size
        if techniques.mnrl.enabled:  # duplicate Quora pairs: in-batch negatives
            para = tables["para"]
            self.tables["mnrl"] = para[para["label"] == 1].reset_index(drop=True)
            self.groups["mnrl"] = group_codes(source_keys(self.tables["mnrl"]))
            sizes["mnrl"] = techniques.mnrl.batch_size
        self.weights = {name: row_weights(df, params.synthetic_weight)
                        for name, df in self.tables.items() if name != "simcse"}
        self.streams = {}
        for i, (name, df) in enumerate(self.tables.items()):
            task = "sst" if name == "simcse" else "para" if name == "mnrl" else name
            self.cross[name] = is_cross(task, params.heads.para.kind) and name == "para"
            lengths = token_lengths(tokenizer, task, df, self.cross[name])
            try:
                self.streams[name] = BatchStream(
                    lengths, sizes[name], seed=params.seed + 1000 * i,
                    bucket_multiplier=params.bucket_multiplier, rank=workers.rank,
                    world_size=workers.world_size)
            except ValueError as error:
                raise ValueError(f"{name} training batches: {error}") from error

    def batches(self, names: tuple[str, ...], device: torch.device) -> dict[str, dict]:
        out = {}
        for name in names:
            index = self.streams[name].next()
            rows = self.tables[name].iloc[index]
            if name == "simcse":
                out[name] = {"inputs": encode_sentences(self.tokenizer, rows["sentence"])}
            elif name == "mnrl":
                pairs = rows["sentence1"].tolist() + rows["sentence2"].tolist()  # (2B,)
                out[name] = {"inputs": encode_sentences(self.tokenizer, pairs)}
            else:
                out[name] = task_batch(self.tokenizer, name, rows, self.cross[name])
            if self.weights.get(name) is not None:
                out[name]["weights"] = torch.from_numpy(self.weights[name][index])  # (B,)
            if name in self.groups:
                out[name]["groups"] = torch.from_numpy(self.groups[name][index])  # (B,)
        return to_device(out, device)


def _all_reduce_mean(world_size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def reduce(t: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(t)
        return t / world_size

    return reduce


def aux_settings(params: TrainParams) -> AuxSettings:
    s = params.techniques.smart
    smart = SmartSettings(s.weight, s.epsilon, s.step_size, s.steps, s.noise_std)
    return AuxSettings(
        smart=smart if s.enabled else None,
        smart_tasks=tuple(s.tasks),
        simcse_temperature=params.techniques.simcse.temperature,
        mnrl_scale=params.techniques.mnrl.scale,
    )


def loss_weights(params: TrainParams) -> dict[str, float]:
    t = params.techniques
    return {**params.task_weights, "simcse": t.simcse.weight, "mnrl": t.mnrl.weight}


def train(
    model: MultitaskModel,
    tokenizer: Tokenizer,
    train_tables: dict[str, pd.DataFrame],
    dev_tables: dict[str, pd.DataFrame],
    params: TrainParams,
    *,
    device: torch.device,
    save: Callable[[MultitaskModel, dict], None],
    live=None,
    workers: Workers = Workers(),
) -> dict[str, float]:
    """Train `model` in place; `save(model, dev_scores)` is called (rank 0) at each new best.

    Returns the best epoch's dev scores (rank 0; other workers get {}).
    """
    torch.manual_seed(params.seed + workers.rank)  # dropout masks differ across workers
    source = BatchSource(tokenizer, train_tables, params, workers)
    plans = epoch_plans(params, source)
    aux_names = tuple(n for n in ("simcse", "mnrl") if n in source.streams)
    total_updates = sum(math.ceil(len(plan) / params.grad_accum) for plan in plans)
    optimizer = build_optimizer(model, params)
    warmup = int(params.warmup_ratio * total_updates)
    scheduler = warmup_linear_decay(optimizer, warmup, total_updates)
    log.info("training %d epochs: %d steps, %d updates on %d workers", params.epochs,
             sum(map(len, plans)), total_updates, workers.world_size)
    net = model
    if workers.world_size > 1:
        net = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    aux, weights = aux_settings(params), loss_weights(params)
    generator = torch.Generator().manual_seed(params.seed)  # PCGrad projection order
    best: dict[str, float] = {"overall": -math.inf}
    for epoch, plan in enumerate(plans):
        model.train()
        started, sums, counts, samples = time.perf_counter(), defaultdict(float), Counter(), 0
        steps = tqdm(plan, desc=f"epoch {epoch + 1}", disable=not workers.is_main)
        for i, tasks in enumerate(steps):
            batches = source.batches(tasks + aux_names, device)
            update = (i + 1) % params.grad_accum == 0 or i == len(plan) - 1
            losses = _forward_backward(net, model, batches, aux, weights, params, update,
                                       generator, workers)
            for name, loss in losses.items():
                sums[name] += loss  # detached tensors: no device sync per step
                counts[name] += 1
            samples += sum(len(batches[t]["labels"]) for t in tasks)
            if update:
                if params.grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
        train_loss = _mean_over_workers(sums, counts, workers, device)
        speed = samples * workers.world_size / (time.perf_counter() - started)
        if workers.is_main:
            scores = evaluate_dev(model, tokenizer, dev_tables,
                                  batch_size=params.eval_batch_size, device=device)
            if scores["overall"] > best["overall"]:
                best = {**scores, "epoch": epoch + 1}
                save(model, best)
            _log_epoch(live, epoch, train_loss, scores, best, speed)
        if workers.world_size > 1:
            dist.barrier()
    if workers.world_size > 1:
        _check_in_sync(model)
    return best if workers.is_main else {}


def epoch_plans(params: TrainParams, source: BatchSource) -> list[list[tuple[str, ...]]]:
    """The tasks of every step of every epoch; tasks with loss weight 0 are left out."""
    active = {t: stream.batches_per_pass for t, stream in source.streams.items()
              if t in params.task_weights and params.task_weights[t] > 0}
    log.info("batches per pass and worker: %s", active)
    return [epoch_plan(params.schedule, active, task_order=params.task_order, epoch=e,
                       epochs=params.epochs, seed=params.seed) for e in range(params.epochs)]


def _mean_over_workers(sums: dict, counts: Counter, workers: Workers,
                       device: torch.device) -> dict[str, float]:
    """Mean of every loss over the steps that had it, on all workers (nccl reduces on GPU)."""
    names = sorted(sums)
    totals = torch.stack([torch.as_tensor(sums[n]).double() for n in names]).to(device)
    if workers.world_size > 1:
        dist.all_reduce(totals)
    return {n: float(t) / (counts[n] * workers.world_size)
            for n, t in zip(names, totals, strict=True)}


def _check_in_sync(model: nn.Module) -> None:
    """Raise if the data-parallel workers ended with different weights (a sync bug)."""
    with torch.no_grad():
        checksum = torch.stack([p.double().sum() for p in model.parameters()]).sum()
    gathered = [torch.zeros_like(checksum) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, checksum)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError(f"data-parallel workers diverged: weight checksums {gathered}")


def _forward_backward(net: nn.Module, model: MultitaskModel, batches: dict, aux: AuxSettings,
                      weights: dict[str, float], params: TrainParams, update: bool,
                      generator: torch.Generator, workers: Workers) -> dict[str, torch.Tensor]:
    """One micro-step: forward, weighted losses / grad_accum, backward (PCGrad when on)."""
    pcgrad = params.techniques.pcgrad.enabled
    ddp = isinstance(net, nn.parallel.DistributedDataParallel)
    # DDP all-reduces in backward; skip it between accumulation steps, and always under PCGrad,
    # which reduces the per-task gradients itself.
    sync_off = net.no_sync() if ddp and (pcgrad or not update) else contextlib.nullcontext()
    with sync_off:
        with forward_context(next(model.parameters()).device):
            losses = net(batches, aux)
        scaled = [weights[name] * loss / params.grad_accum for name, loss in losses.items()]
        if pcgrad:
            shared, heads = model.shared_and_head_parameters()
            reduce = _all_reduce_mean(workers.world_size) if ddp else None
            pcgrad_backward(scaled, shared, heads, generator, reduce)
        else:
            torch.stack(scaled).sum().backward()
    return {name: loss.detach() for name, loss in losses.items()}


def _log_epoch(live, epoch: int, train_loss: dict, scores: dict, best: dict, speed: float):
    log.info("epoch %d: train loss %s; dev %s; %.1f samples/s", epoch + 1,
             {k: round(v, 4) for k, v in train_loss.items()},
             {k: round(v, 4) for k, v in scores.items()}, speed)
    if live is None:
        return
    for name, value in train_loss.items():
        live.log_metric(f"train/loss/{name}", value)
    for name, value in scores.items():
        live.log_metric(f"dev/{name}", value)
    if "epoch" in best:  # none yet when every dev score so far was NaN
        live.log_metric("dev/best_overall", best["overall"])
        live.log_metric("best_epoch", best["epoch"], plot=False)
    live.log_metric("train/samples_per_s", speed)
    live.next_step()
