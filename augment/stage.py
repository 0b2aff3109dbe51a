"""Stage `augment`: top up every class with filtered LLM paraphrases, cached and traceable.

    python -m augment.stage            (dvc repro augment; dvc exp run -S augment.ratio=10)

Inputs:  data/balanced/plan.json, data/balanced/<task>/train.parquet (balance stage),
         params `augment.*`, prompt templates (augment/templates.yaml)
Outputs: data/augmented/<task>/train.parquet  real + accepted synthetic rows, with provenance
         data/augmented/summary.json          acceptance funnel per task and class, speed, params
         data/augmented/examples.json         accepted and rejected paraphrases per class
         data/augmented/rejected.parquet      every rejected paraphrase with its reason
         data/augmented/metrics.json          synthetic rows, filter pass rate and diversity
                                              (distinct-2, mean pairwise cosine) per task (DVC)
Cache:   <generation cache>/*.jsonl           every completion ever generated, shared by every
         run and experiment on the machine (augment/cache.py: $BALANCED_MINBERT_GENERATION_CACHE,
         default ~/.cache/balanced-minbert/generations); not a DVC output
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from augment.augmenter import SimilarityFn, augment_task
from augment.backends import create_backend
from augment.cache import CacheLocationError, GenerationCache, legacy_hint, resolve_cache_dir
from augment.consistency import EmbedFn
from augment.diversity import diversity
from augment.engine import BackendError
from augment.outputs import (
    class_examples,
    rejected_table,
    task_summary,
    training_table,
)
from augment.params import AugmentParams, EncoderParams, load_params
from augment.prompts import TemplateError, load_templates
from augment.requests import PlanError
from minbert.outputs import OutputError, StageOutputs
from minbert.params import ParamsError
from minbert.paths import AUGMENTED_DIR, BALANCED_DIR
from minbert.tasks import TASKS

log = logging.getLogger(__name__)

OUT_DIR = AUGMENTED_DIR
REAL_REFERENCE_TEXTS = 2000  # real texts per task in the diversity reference


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


class CachedEncoder:
    """The backbone sentence encoder, loaded on first use, remembering every text's embedding
    (the filters meet the same source texts again in every round)."""

    def __init__(self, params: EncoderParams):
        self.params = params
        self.encoder = None
        self.vectors: dict[str, np.ndarray] = {}

    def embed(self, texts) -> np.ndarray:
        """(N,) texts -> (N, H) unit vectors."""
        texts = list(texts)
        new = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if new:
            if self.encoder is None:
                from minbert.encoder import SentenceEncoder

                self.encoder = SentenceEncoder(backbone=self.params.backbone,
                                               batch_size=self.params.batch_size)
            self.vectors.update(zip(new, self.encoder.encode(new).numpy(), strict=True))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self.vectors[t] for t in texts])

    def similarity(self, a, b) -> np.ndarray:
        """(N,) cosine similarity of each pair (a[i], b[i])."""
        a, b = list(a), list(b)
        if len(a) != len(b):
            raise ValueError(f"{len(a)} first texts but {len(b)} second texts")
        return np.sum(self.embed(a) * self.embed(b), axis=1) if a else np.zeros(0)


def encoder_similarity(params: EncoderParams) -> SimilarityFn:
    """Cosine similarity under the backbone encoder, loaded on first use only."""
    return CachedEncoder(params).similarity


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def open_cache(cache_dir: Path | None) -> GenerationCache:
    """The shared generation cache (resolved from the environment when not given)."""
    cache_dir = resolve_cache_dir() if cache_dir is None else cache_dir
    hint = legacy_hint(cache_dir)
    if hint:
        log.warning("%s", hint)
    cache = GenerationCache(cache_dir)
    log.info("generation cache: %d completions in %d shard(s) in %s", len(cache),
             cache.shards_read, cache_dir)
    return cache


def run(params: AugmentParams, *, balanced_dir: Path = BALANCED_DIR, out_dir: Path = OUT_DIR,
        cache_dir: Path | None = None, backend=None,
        similarity: SimilarityFn | None = None, embed: EmbedFn | None = None) -> dict:
    """Augment every task; write the outputs under out_dir; return the summary.
    `similarity` and `embed` default to the backbone encoder (`augment.encoder`)."""
    plan, tables = read_balanced(balanced_dir)
    templates = load_templates(params.prompts.template_file)
    backend = backend or create_backend(params)
    generator = f"{backend.name}:{backend.model}"
    log.info("augment: ratio %g, backend %s, model %s, seed %d", params.ratio, backend.name,
             backend.model, params.seed)
    cache = open_cache(cache_dir)
    encoder = CachedEncoder(params.encoder)
    similarity, embed = similarity or encoder.similarity, embed or encoder.embed
    summary = {"ratio": params.ratio, "backend": backend.name, "model": backend.model,
               "generator": generator, "seed": params.seed, "params": asdict(params), "tasks": {}}
    examples, rejected, training = {}, [], {}
    for task in TASKS:
        if task not in templates:
            raise TemplateError(f"{params.prompts.template_file}: no template for task '{task}'")
        result = augment_task(task, tables[task], plan[task], params, templates[task], backend,
                              cache, similarity, embed)
        table = training_table(task, tables[task], result, generator)
        training[task] = table
        summary["tasks"][task] = task_summary(task, plan[task], result, table)
        summary["tasks"][task]["diversity"] = task_diversity(task, table, embed)
        examples[task] = {cls: class_examples(result.candidates, cls, params.examples_per_class)
                          for cls in result.needed}
        rejected.append(rejected_table(task, result.candidates))
        _log_task(task, summary["tasks"][task])
    rejected_all = pd.concat(rejected, ignore_index=True)
    with StageOutputs() as outputs:  # all outputs replace the previous ones, or none does
        staging = outputs.stage(out_dir)
        for task, table in training.items():  # the staging dir is the transaction: plain writes
            (staging / task).mkdir()
            table.to_parquet(staging / task / "train.parquet")
        rejected_all.to_parquet(staging / "rejected.parquet")
        _write_json(staging / "examples.json", examples)
        _write_json(staging / "summary.json", summary)
        _write_json(staging / "metrics.json", metrics(summary))
    _log_cache(summary)
    return summary


def task_diversity(task: str, table: pd.DataFrame, embed: EmbedFn) -> dict:
    """Diversity (augment.diversity) of the paraphrased texts of the synthetic rows and, for
    reference, of the first REAL_REFERENCE_TEXTS real texts; nothing when no row is synthetic."""
    synthetic = table[table["origin"] == "synthetic"]
    if synthetic.empty:
        return {"synthetic": None, "real": None}
    real = table[table["origin"] == "real"]
    by_id = real.set_index("id")
    columns = TASKS[task].text_columns
    # the paraphrased side is the one that differs from the source row
    texts = [next((row[c] for c in columns if row[c] != by_id.at[row["source_id"], c]),
                  row[columns[0]]) for _, row in synthetic.iterrows()]
    real_texts = [t for c in columns for t in real[c]][:REAL_REFERENCE_TEXTS]
    return {"synthetic": diversity(texts, embed), "real": diversity(real_texts, embed)}


def metrics(summary: dict) -> dict:
    """Small, deterministic numbers for `dvc metrics show` / `dvc exp show`."""
    out = {}
    for task, t in summary["tasks"].items():
        synthetic = (t.get("diversity") or {}).get("synthetic") or {}
        real = (t.get("diversity") or {}).get("real") or {}
        out[task] = {"synthetic_rows": t["accepted"], "requested": t["requested"],
                     "generated": t["generated"], "rows": t["rows"],
                     "pass_rate": round(1 - t["rejected"] / t["generated"], 4)
                     if t["generated"] else None,
                     "distinct_2": synthetic.get("distinct_2"),
                     "mean_pairwise_cosine": synthetic.get("mean_pairwise_cosine"),
                     "real_distinct_2": real.get("distinct_2"),
                     "real_mean_pairwise_cosine": real.get("mean_pairwise_cosine")}
    return out


def _log_task(task: str, t: dict) -> None:
    if t["requested"] == 0:
        log.info("%s: every class already has its round(ratio x target) rows; nothing to "
                 "generate (%d training rows)", task, t["rows"])
        return
    short = {c: s["shortfall"] - s["held_back"] for c, s in t["classes"].items()
             if s["shortfall"] > s["held_back"]}
    held = {c: s["held_back"] for c, s in t["classes"].items() if s["held_back"]}
    log.info("%s: %d synthetic rows accepted of %d requested (%d generations, %d from the "
             "cache); %d training rows", task, t["accepted"], t["requested"], t["generated"],
             t["cache_hits"], t["rows"])
    if short:
        log.warning("%s: classes below their goal after %s: %s (raise augment.max_rounds or "
                    "augment.max_requests_factor, or relax augment.filters)", task,
                    "all rounds", short)
    if held:
        log.warning("%s: paraphrases held back (surplus) to keep every class within "
                    "augment.max_class_ratio x the smallest one: %s", task, held)


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
    except (ParamsError, PlanError, TemplateError, BackendError, CacheLocationError,
            OutputError) as e:
        log.error("%s", e)
        sys.exit(1)


if __name__ == "__main__":
    main()
