"""Stage `validate`: check every table against the data contract before `train` runs.

    python -m pipeline.validate

Inputs:  data/clean/<task>/<split>.parquet        clean splits (prepare)
         data/augmented/<task>/train.parquet   the table `train` reads (augment)
Outputs: reports/validation/results.json  per suite: evaluated / passed / failed expectations,
                                          failed ones with sample offending values (DVC metrics)
         reports/validation/docs/          Great Expectations Data Docs (open index.html)

The suites are defined in `pipeline.expectations` and run with Great Expectations 1.x on the
pandas tables by `pipeline.gx_runner`. On any failed expectation the stage writes both outputs,
logs a short summary (suite, expectation, rows, examples) and exits with status 1, so `train`
does not run.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from minbert.outputs import OutputError, StageOutputs
from minbert.params import ParamsError, load_section, read_yaml
from minbert.paths import CLEAN_DIR, TRAINING_DIR, VALIDATION_DIR
from minbert.tasks import TASKS
from pipeline.expectations import (
    ContractError,
    TextBounds,
    annotate_training_table,
    clean_split_suite,
    training_suite,
)
from pipeline.gx_runner import SuiteJob, json_safe, run_suites

log = logging.getLogger(__name__)
RESULTS_PATH = VALIDATION_DIR / "results.json"
DOCS_DIR = VALIDATION_DIR / "docs"


@dataclass(frozen=True)
class ValidateParams:
    min_chars: int
    max_chars: int
    max_class_ratio: float
    synthetic_share: tuple[float, float]
    examples: int


def read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise ContractError(f"{path}: file not found (run the stage that writes it first)")
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a broken file
        raise ContractError(f"{path}: not a readable parquet table ({e})") from e


def augment_ratio(params_path: str | Path = "params.yaml") -> float:
    """`augment.ratio`, the one key of another stage that validate reads."""
    try:
        ratio = read_yaml(params_path)["augment"]["ratio"]
    except (KeyError, TypeError) as e:
        raise ParamsError(f"{params_path}: missing key 'augment.ratio'") from e
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)):
        raise ParamsError(f"'augment.ratio' must be a number, got {ratio!r}")
    return float(ratio)


def task_jobs(task: str, tables: dict[str, pd.DataFrame], training: pd.DataFrame,
              paths: dict[str, str], params: ValidateParams, ratio: float) -> list[SuiteJob]:
    """The suites of one task: each clean split, then the annotated training table."""
    bounds = TextBounds(params.min_chars, params.max_chars)
    jobs = [SuiteJob(clean_split_suite(task, s, bounds), paths[s], t) for s, t in tables.items()]
    augmented = "origin" in training.columns
    share = (params.synthetic_share[0], 0.0 if ratio == 0 else params.synthetic_share[1])
    suite = training_suite(
        task, bounds, augmented=augmented, synthetic_share=share,
        max_class_ratio=params.max_class_ratio if ratio >= 1 else None,
    )
    others = {s: t for s, t in tables.items() if s != "train"}
    try:
        annotated = annotate_training_table(training, others, task)
    except ContractError as e:
        raise ContractError(f"{paths['training']}: {e}") from e
    jobs.append(SuiteJob(suite, paths["training"], annotated))
    return jobs


def load_jobs(params: ValidateParams, ratio: float, tasks: tuple[str, ...] = tuple(TASKS), *,
              clean_dir: Path = CLEAN_DIR, training_dir: Path = TRAINING_DIR) -> list[SuiteJob]:
    jobs = []
    for task in tasks:
        spec = TASKS[task]
        paths = {s: str(Path(clean_dir) / task / f"{s}.parquet") for s in spec.files}
        paths["training"] = str(Path(training_dir) / task / "train.parquet")
        tables = {s: read_table(Path(paths[s])) for s in spec.files}
        training = read_table(Path(paths["training"]))
        jobs += task_jobs(task, tables, training, paths, params, ratio)
    return jobs


def results_document(outcomes: dict[str, dict], docs_dir: Path | None) -> dict:
    """results.json: totals first (what `dvc metrics show` lists), then every suite."""
    failed_suites = [n for n, o in outcomes.items() if not o["success"]]
    return json_safe({
        "success": not failed_suites,
        "suites_failed": len(failed_suites),
        "evaluated": sum(o["evaluated"] for o in outcomes.values()),
        "passed": sum(o["passed"] for o in outcomes.values()),
        "failed": sum(o["failed"] for o in outcomes.values()),
        "data_docs": str(docs_dir / "index.html") if docs_dir else None,
        "suites": outcomes,
    })


def failure_summary(document: dict, max_lines: int = 20) -> str:
    """A short, readable account of what failed: suite, expectation, rows, examples."""
    lines = [f"validation failed: {document['suites_failed']} of {len(document['suites'])} "
             f"suites, {document['failed']} of {document['evaluated']} expectations"]
    failures = [(name, outcome["table"], f) for name, outcome in document["suites"].items()
                for f in outcome["failures"]]
    for name, table, f in failures[:max_lines]:
        lines.append(f"  {name} ({table}): {f['description']} [{f['expectation']}]: "
                     f"{_detail(f)}")
    if len(failures) > max_lines:
        lines.append(f"  ... and {len(failures) - max_lines} more (see results.json)")
    if document.get("data_docs"):
        lines.append(f"details: {document['data_docs']}")
    return "\n".join(lines)


def _detail(f: dict) -> str:
    if f.get("error"):
        return f["error"]
    if "rows" not in f:
        return f"observed {json.dumps(f.get('observed'), ensure_ascii=False)}"
    rows = f"{f['rows']} row" + ("" if f["rows"] == 1 else "s")
    return f"{rows}, e.g. {json.dumps(f['examples'][:3], ensure_ascii=False)}"


def write_results(document: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def validate(params: ValidateParams, ratio: float, results_path: Path = RESULTS_PATH,
             docs_dir: Path | None = DOCS_DIR, tasks: tuple[str, ...] = tuple(TASKS), *,
             clean_dir: Path = CLEAN_DIR, training_dir: Path = TRAINING_DIR) -> dict:
    """Run all suites, write results.json (and Data Docs); return the results document."""
    jobs = load_jobs(params, ratio, tasks, clean_dir=clean_dir, training_dir=training_dir)
    with StageOutputs() as outputs:  # a failure leaves the previous results and docs in place
        staged_docs = outputs.stage(docs_dir.parent) / docs_dir.name if docs_dir else None
        outcomes = run_suites(jobs, staged_docs, params.examples)
        document = results_document(outcomes, docs_dir)
        write_results(document, outputs.stage(results_path.parent) / results_path.name)
    return document


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # chatty at INFO
    params = load_section("validate", ValidateParams)
    ratio = augment_ratio()
    log.info("params: %s, augment.ratio=%g", asdict(params), ratio)
    try:
        document = validate(params, ratio)
    except (ContractError, OutputError) as e:
        log.error("%s", e)
        sys.exit(1)
    if not document["success"]:
        log.error("%s", failure_summary(document))
        sys.exit(1)
    log.info("validation passed: %d suites, %d expectations; Data Docs: %s",
             len(document["suites"]), document["evaluated"], document["data_docs"])


if __name__ == "__main__":
    main()
