"""Stage `evaluate`: score the trained multitask model on the clean dev sets, write predictions.

    python -m eval.evaluate

Inputs:  models/multitask/                    the trained model (stage `train`)
         data/clean/<task>/{dev,test}.parquet  clean dev (labeled) and test (unlabeled) splits
Outputs: reports/eval/metrics.json   headline dev metrics (what `dvc exp show` lists):
             overall = (sst_accuracy + para_accuracy + (sts_pearson + 1) / 2) / 3, sst_accuracy,
             sst_macro_f1, para_accuracy, para_f1, sts_pearson, sts_spearman, sts_mse, sts_mae
         reports/eval/per_class.json  per-class precision / recall / F1 / support and the
             confusion matrix of SST and Quora
         reports/eval/plots/{sst,para}_confusion.csv  (actual, predicted) rows: DVC confusion plots
         reports/eval/plots/sts_scatter.csv           (id, gold, predicted): DVC scatter plot
         predictions/<task>-<split>-output.csv        course submission format (eval/submission.py)
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from eval.model_io import ModelLoadError, load_model, predict_frame
from eval.submission import FILE_NAMES, write_submission
from minbert import metrics
from minbert.device import DeviceError, resolve_device
from minbert.outputs import OutputError, StageOutputs
from minbert.params import load_section
from minbert.paths import CLEAN_DIR, EVAL_DIR, MODEL_DIR, PREDICTIONS_DIR
from minbert.tasks import TASKS, class_names

log = logging.getLogger(__name__)

REPORT_DIR = EVAL_DIR


@dataclass(frozen=True)
class EvaluateParams:
    batch_size: int  # rows per forward pass
    device: Literal["auto", "cpu", "cuda"]  # auto = cuda when available


def classification_scores(task: str, preds: np.ndarray, labels: np.ndarray) -> tuple[dict, dict]:
    """Headline metrics and per-class detail of SST or Quora predictions."""
    n = len(class_names(task))
    matrix = metrics.confusion_matrix(preds, labels, n)
    per_class = metrics.per_class_scores(matrix)
    headline = {f"{task}_accuracy": metrics.accuracy(preds, labels)}
    if task == "sst":
        headline["sst_macro_f1"] = per_class["macro_f1"]
    else:
        headline["para_f1"] = per_class["1"]["f1"]  # F1 of the duplicate class
    detail = {
        "classes": {k: v for k, v in per_class.items() if k != "macro_f1"},
        "macro_f1": per_class["macro_f1"],
        "confusion": matrix.tolist(),  # rows: gold class, columns: predicted class
    }
    return headline, detail


def regression_scores(preds: np.ndarray, labels: np.ndarray) -> dict:
    return {
        "sts_pearson": metrics.pearson(preds, labels),
        "sts_spearman": metrics.spearman(preds, labels),
        "sts_mse": metrics.mse(preds, labels),
        "sts_mae": metrics.mae(preds, labels),
    }


def score(preds: dict[str, np.ndarray], dev: dict[str, pd.DataFrame]) -> tuple[dict, dict]:
    """(metrics.json content, per_class.json content) from dev predictions of all tasks."""
    headline: dict[str, float] = {}
    detail: dict[str, dict] = {}
    for task in ("sst", "para"):
        h, detail[task] = classification_scores(task, preds[task], dev[task]["label"].to_numpy())
        headline.update(h)
    headline.update(regression_scores(preds["sts"], dev["sts"]["label"].to_numpy()))
    overall = metrics.overall_score(headline["sst_accuracy"], headline["para_accuracy"],
                                    headline["sts_pearson"])
    return {"overall": overall, **headline}, detail


def confusion_rows(preds: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """One (actual, predicted) row per dev example, as DVC's confusion template reads it."""
    return pd.DataFrame({"actual": np.asarray(labels).astype(int),
                         "predicted": np.asarray(preds).astype(int)})


def scatter_rows(ids: pd.Series, preds: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"id": ids.to_numpy(), "gold": np.asarray(labels, dtype=float),
                         "predicted": np.round(np.asarray(preds, dtype=float), 4)})


def write_outputs(preds_dev: dict, dev: dict, headline: dict, detail: dict,
                  report_dir: Path = REPORT_DIR) -> None:
    plots = report_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    (report_dir / "metrics.json").write_text(json.dumps(headline, indent=2) + "\n")
    (report_dir / "per_class.json").write_text(json.dumps(detail, indent=2) + "\n")
    for task in ("sst", "para"):
        confusion_rows(preds_dev[task], dev[task]["label"]).to_csv(
            plots / f"{task}_confusion.csv", index=False)
    scatter_rows(dev["sts"]["id"], preds_dev["sts"], dev["sts"]["label"]).to_csv(
        plots / "sts_scatter.csv", index=False)


def evaluate(params: EvaluateParams, outputs: StageOutputs) -> dict:
    """Predict and score every dev and test split; write under the transaction's staging dirs."""
    reports, predictions = outputs.stage(REPORT_DIR), outputs.stage(PREDICTIONS_DIR)
    device = resolve_device(params.device)
    model, tokenizer = load_model(MODEL_DIR, device)
    preds_dev, dev = {}, {}
    for task, spec in TASKS.items():
        for split in ("dev", "test"):
            path = CLEAN_DIR / task / f"{split}.parquet"
            if split not in spec.files:
                continue  # Quora has no test split here
            table = pd.read_parquet(path)
            start = time.perf_counter()
            preds = predict_frame(model, tokenizer, task, table, batch_size=params.batch_size,
                                  device=device)
            log.info("%s %s: %d rows in %.1f s", task, split, len(table),
                     time.perf_counter() - start)
            write_submission(predictions / FILE_NAMES[(task, split)], task, table["id"], preds)
            if split == "dev":
                preds_dev[task], dev[task] = preds, table
    headline, detail = score(preds_dev, dev)
    write_outputs(preds_dev, dev, headline, detail, reports)
    return headline


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = load_section("evaluate", EvaluateParams)
    log.info("params: %s", asdict(params))
    try:
        with StageOutputs() as outputs:  # a failure leaves the previous outputs in place
            headline = evaluate(params, outputs)
    except (ModelLoadError, DeviceError, OutputError) as error:
        log.error("%s", error)
        sys.exit(1)
    log.info("dev metrics: %s", ", ".join(f"{k}={v:.4f}" for k, v in headline.items()))


if __name__ == "__main__":
    main()
