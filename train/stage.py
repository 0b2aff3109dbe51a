"""The `train` stage: multitask fine-tuning of our BERT on SST-5, Quora and STS.

Inputs:  <data-dir>/<task>/train.parquet (the pipeline's training tables; of the provenance
         columns, origin weights synthetic rows and source_id keeps a paraphrase and its source
         apart in in-batch negatives), data/clean/<task>/dev.parquet, the `train:` section of
         params.yaml.
Outputs: models/multitask/ (model.safetensors, config.json, vocab.txt, heads.json, params.json,
         dev_scores.json: the best epoch by dev overall score), dvclive/train/ (metrics, plots).

    python -m train.stage                                  # as `dvc repro train` runs it
    python -m train.stage --data-dir data/balanced         # another training set
    torchrun --nproc_per_node=4 -m train.stage             # data parallel (gloo CPU, nccl GPU)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import types
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist

from minbert.backbone import load_tokenizer, resolve_backbone
from minbert.bert import BertConfig, BertModel
from minbert.data import TRAINING_PROVENANCE, check_table, limit_rows
from minbert.device import DeviceError, resolve_device
from minbert.model import MultitaskModel
from minbert.outputs import OutputError, StageOutputs
from minbert.params import ParamsError
from minbert.paths import CLEAN_DIR, MODEL_DIR, TRAIN_LIVE_DIR, TRAINING_DIR, VALIDATION_DIR
from minbert.tasks import TASKS
from train.loop import Workers, train
from train.params import TrainParams, load_train_params

log = logging.getLogger(__name__)


def plain(value: object) -> object:
    """Params dataclasses -> JSON-ready dicts and lists (mapping proxies, tuples included)."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (dict, types.MappingProxyType)):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def read_tables(directory: Path, split: str, max_rows: dict | None, seed: int) -> dict:
    """{task: table} of `directory/<task>/<split>.parquet`, checked, in the clean schema."""
    tables = {}
    for task, spec in TASKS.items():
        path = directory / task / f"{split}.parquet"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (run the stage that writes {directory})")
        df = pd.read_parquet(path)
        check_table(task, df, str(path))
        provenance = [c for c in TRAINING_PROVENANCE if c in df.columns]  # augmented tables
        df = df[spec.columns(labeled=True) + provenance]
        tables[task] = limit_rows(df, max_rows[task], seed) if max_rows else df
    return tables


def setup_workers(device_choice: str) -> tuple[Workers, torch.device]:
    """Join the torchrun process group when WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    try:
        device = resolve_device(device_choice, local_rank)
    except DeviceError as error:
        raise ParamsError(f"train.device: {error}") from error
    if world_size == 1:
        return Workers(), device
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cpu":  # share the cores between the local workers
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return Workers(rank=dist.get_rank(), world_size=world_size), device


def build_model(params: TrainParams, backbone_dir: Path) -> MultitaskModel:
    config = BertConfig.from_json(backbone_dir / "config.json")
    if params.max_length > config.max_position_embeddings:
        raise ParamsError(
            f"'train.max_length' {params.max_length} exceeds the backbone's "
            f"max_position_embeddings {config.max_position_embeddings}"
        )
    torch.manual_seed(params.seed)  # the heads' initial weights
    model = MultitaskModel(BertModel.from_pretrained(backbone_dir), params.heads)
    lora = params.techniques.lora
    if lora.enabled:
        from minbert.lora import apply_lora

        apply_lora(model.bert, lora.rank, lora.alpha, lora.dropout, lora.targets)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info(
        "model: %s, %d trainable of %d parameters",
        backbone_dir,
        trainable,
        sum(p.numel() for p in model.parameters()),
    )
    return model


def open_live(directory: Path):
    """The dvclive logger of the stage (metrics and plots are declared in dvc.yaml).

    dvclive 3.49 raises in a git repository without any commit yet (right after `git init`);
    there its DVC integration is skipped and the same files are written.
    """
    from dvclive import Live
    from scmrepo.exceptions import SCMError

    class StageLive(Live):
        def _init_dvc(self) -> None:
            try:
                super()._init_dvc()
            except SCMError as error:
                log.warning("dvclive: no DVC experiment integration (%s)", error)

    return StageLive(dir=str(directory), dvcyaml=None, save_dvc_exp=False)


def run(
    params: TrainParams, *, data_dir: Path, clean_dir: Path, model_dir: Path, live_dir: Path
) -> dict[str, float]:
    """Train and save; returns the best dev scores (empty on non-zero ranks)."""
    workers, device = setup_workers(params.device)
    backbone_dir = resolve_backbone(params.backbone)  # bad backbone: error before any data work
    train_tables = read_tables(data_dir, "train", params.max_train_rows, params.seed)
    dev_tables = read_tables(clean_dir, "dev", params.max_dev_rows, params.seed)
    log.info("training rows %s from %s", {t: len(df) for t, df in train_tables.items()}, data_dir)
    log.info("dev rows %s from %s", {t: len(df) for t, df in dev_tables.items()}, clean_dir)
    model = build_model(params, backbone_dir).to(device)
    tokenizer = load_tokenizer(backbone_dir, params.max_length)
    resolved = plain(params)
    outputs = StageOutputs()  # the best model is saved in a staging dir beside the old one
    staged = model_dir  # set to the staging path (main rank) when the transaction opens

    def save(best_model: MultitaskModel, scores: dict) -> None:
        best_model.save(
            staged, backbone_dir=backbone_dir, params=resolved, max_length=params.max_length
        )
        (staged / "dev_scores.json").write_text(json.dumps(scores, indent=2) + "\n")
        log.info(
            "saved %s (dev overall %.4f, epoch %d)", model_dir, scores["overall"], scores["epoch"]
        )

    live = open_live(live_dir) if workers.is_main else None
    try:
        with outputs:  # the new model replaces the previous one only at the end
            if workers.is_main:
                staged = outputs.stage(model_dir.parent) / model_dir.name
            best = train(
                model,
                tokenizer,
                train_tables,
                dev_tables,
                params,
                device=device,
                save=save,
                live=live,
                workers=workers,
            )
    finally:
        if live is not None:
            live.end()
        if workers.world_size > 1:
            dist.destroy_process_group()
    if workers.is_main and best.get("epoch") is None:
        raise RuntimeError("no epoch gave a finite dev score (did the loss diverge?)")
    return best


def check_validated(results_path: Path = VALIDATION_DIR / "results.json") -> None:
    """Stop unless the `validate` stage passed on the pipeline's training tables."""
    try:
        success = json.loads(results_path.read_text()).get("success")
    except (OSError, ValueError) as error:
        raise SystemExit(f"{results_path}: no validation results ({error}); "
                         "run `dvc repro validate` first") from error
    if success is not True:
        raise SystemExit(f"{results_path}: the training tables failed validation; "
                         "fix the data (see reports/validation/docs/index.html) before training")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=TRAINING_DIR,
        help="training tables <dir>/<task>/train.parquet",
    )
    parser.add_argument(
        "--clean-dir",
        type=Path,
        default=CLEAN_DIR,
        help="dev tables <dir>/<task>/dev.parquet",
    )
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    parser.add_argument("--live-dir", type=Path, default=TRAIN_LIVE_DIR)
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.data_dir == TRAINING_DIR:  # the pipeline's tables: only once validate passed
        check_validated()
    params = load_train_params(args.params)
    log.info("train params: %s", json.dumps(plain(params)))
    try:
        best = run(
            params,
            data_dir=args.data_dir,
            clean_dir=args.clean_dir,
            model_dir=args.model_dir,
            live_dir=args.live_dir,
        )
    except OutputError as error:
        log.error("%s", error)
        sys.exit(1)
    if best:
        log.info("best dev scores: %s", {k: round(v, 4) for k, v in best.items()})


if __name__ == "__main__":
    main()
