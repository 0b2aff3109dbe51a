"""Stage `augment`: top up every class with filtered LLM paraphrases, cached and traceable.

    python -m augment.stage            (dvc repro augment; dvc exp run -S augment.ratio=10)

Inputs:  data/balanced/plan.json, data/balanced/<task>/train.parquet (balance stage),
         params `augment.*`, prompt templates (augment/templates.yaml)
Outputs: data/augmented/<task>/train.parquet  real + accepted synthetic rows, with provenance
         data/augmented/summary.json          acceptance funnel per task and class, speed, params
         data/augmented/examples.json         accepted and rejected paraphrases per class
         data/augmented/rejected.parquet      every rejected paraphrase with its reason
         data/augmented/metrics.json          synthetic rows and filter pass rate per task (DVC)
Cache:   data/cache/generations/*.jsonl       every completion ever generated (persistent)
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from augment.augmenter import SimilarityFn, augment_task
from augment.backends import BackendError, create_backend
from augment.cache import CACHE_DIR, GenerationCache
from augment.outputs import (
    class_examples,
    rejected_table,
    task_summary,
    training_table,
)
from augment.params import AugmentParams, EncoderParams, load_params
from augment.prompts import TemplateError, load_templates
from augment.requests import PlanError
from pipeline.params import ParamsError
from pipeline.tasks import TASKS

log = logging.getLogger(__name__)

BALANCED_DIR = Path("data/balanced")
OUT_DIR = Path("data/augmented")


def read_balanced(balanced_dir: Path) -> tuple[dict, dict[str, pd.DataFrame]]:
    plan_path = balanced_dir / "plan.json"
    if not plan_path.is_file():
        raise PlanError(f"{plan_path} not found: run the balance stage first (dvc repro balance)")
    plan = json.loads(plan_path.read_text(encoding="utf-8"))
    tables = {}
    for task in TASKS:
        if task not in plan:
            raise PlanError(f"{plan_path}: no entry for task '{task}'")
        path = balanced_dir / task / "train.parquet"
        if not path.is_file():
            raise PlanError(f"{path} not found: run the balance stage first (dvc repro balance)")
        tables[task] = pd.read_parquet(path)
    return plan, tables


def encoder_similarity(params: EncoderParams) -> SimilarityFn:
    """Cosine similarity under the backbone encoder, loaded on first use only."""
    encoder = None

    def similarity(a, b):
        nonlocal encoder
        if encoder is None:
            from train.encoder import SentenceEncoder

            encoder = SentenceEncoder(backbone=params.backbone, batch_size=params.batch_size)
        return encoder.cosine(list(a), list(b))

    return similarity


def _write_atomic(path: Path, write) -> None:
    """Write through a temporary file, so a killed run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_json(path: Path, data: dict) -> None:
    _write_atomic(path, lambda p: p.write_text(json.dumps(data, indent=2, ensure_ascii=False)
                                               + "\n", encoding="utf-8"))


def run(params: AugmentParams, *, balanced_dir: Path = BALANCED_DIR, out_dir: Path = OUT_DIR,
        cache_dir: Path = CACHE_DIR, backend=None, similarity: SimilarityFn | None = None) -> dict:
    """Augment every task; write the outputs under out_dir; return the summary."""
    plan, tables = read_balanced(balanced_dir)
    templates = load_templates(params.prompts.template_file)
    backend = backend or create_backend(params)
    generator = f"{backend.name}:{backend.model}"
    log.info("augment: ratio %g, backend %s, model %s, seed %d", params.ratio, backend.name,
             backend.model, params.seed)
    cache_dir.mkdir(parents=True, exist_ok=True)  # a DVC output even before the first row
    cache = GenerationCache(cache_dir)
    log.info("generation cache: %d completions in %s", len(cache), cache_dir)
    similarity = similarity or encoder_similarity(params.encoder)
    summary = {"ratio": params.ratio, "backend": backend.name, "model": backend.model,
               "generator": generator, "seed": params.seed, "params": asdict(params), "tasks": {}}
    examples, rejected = {}, []
    for task in TASKS:
        if task not in templates:
            raise TemplateError(f"{params.prompts.template_file}: no template for task '{task}'")
        result = augment_task(task, tables[task], plan[task], params, templates[task], backend,
                              cache, similarity)
        table = training_table(task, tables[task], result, generator)
        _write_atomic(out_dir / task / "train.parquet", lambda p, t=table: t.to_parquet(p))
        summary["tasks"][task] = task_summary(task, plan[task], result, table)
        examples[task] = {cls: class_examples(result.candidates, cls, params.examples_per_class)
                          for cls in result.needed}
        rejected.append(rejected_table(task, result.candidates))
        _log_task(task, summary["tasks"][task])
    rejected_all = pd.concat(rejected, ignore_index=True)
    _write_atomic(out_dir / "rejected.parquet", lambda p: rejected_all.to_parquet(p))
    _write_json(out_dir / "examples.json", examples)
    _write_json(out_dir / "summary.json", summary)
    _write_json(out_dir / "metrics.json", metrics(summary))
    _log_cache(summary)
    return summary


def metrics(summary: dict) -> dict:
    """Small, deterministic numbers for `dvc metrics show` / `dvc exp show`."""
    return {task: {"synthetic_rows": t["accepted"], "requested": t["requested"],
                   "generated": t["generated"], "rows": t["rows"],
                   "pass_rate": round(1 - t["rejected"] / t["generated"], 4)
                   if t["generated"] else None}
            for task, t in summary["tasks"].items()}


def _log_task(task: str, t: dict) -> None:
    if t["requested"] == 0:
        log.info("%s: every class already has its round(ratio x target) rows; nothing to "
                 "generate (%d training rows)", task, t["rows"])
        return
    short = {c: s["shortfall"] for c, s in t["classes"].items() if s["shortfall"] > 0}
    log.info("%s: %d synthetic rows accepted of %d requested (%d generations, %d from the "
             "cache); %d training rows", task, t["accepted"], t["requested"], t["generated"],
             t["cache_hits"], t["rows"])
    if short:
        log.warning("%s: classes below their goal after %s: %s (raise augment.max_rounds or "
                    "augment.max_requests_factor, or relax augment.filters)", task,
                    "all rounds", short)


def _log_cache(summary: dict) -> None:
    tasks = summary["tasks"].values()
    used, fresh = sum(t["generated"] for t in tasks), sum(t["generated_now"] for t in tasks)
    if used and not fresh:
        log.info("the generation cache served all %d completions: nothing was generated", used)
    elif fresh:
        log.info("generated %d new completions, %d served by the cache", fresh, used - fresh)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s "
                        "%(message)s", datefmt="%H:%M:%S")
    try:
        run(load_params())
    except (ParamsError, PlanError, TemplateError, BackendError) as e:
        log.error("%s", e)
        sys.exit(1)


if __name__ == "__main__":
    main()
