"""Predict any course-format file with a trained model and write the submission format.

    python -m eval.predict --model models/multitask --task sst \\
        --input data/raw/ids-sst-test-student.csv --output predictions/sst-test-output.csv

The input is read like `prepare` reads the course files (tab-separated, leading index column,
the test-student layouts, columns found by name) and its text gets the same normalization.
A labeled file works too: its labels are ignored for prediction and the score is logged.

Every row that has an id and its text columns gets a prediction, including rows `prepare`
would quarantine for their content (empty text -> predicted from the empty input; very long
text -> truncated like any input; missing or invalid label -> predicted, not scored). Rows that
cannot be read at all (wrong number of fields, no id, bytes that are not UTF-8, an id seen
earlier in the file) have no prediction: each is listed on stderr with its line and reason,
and `--strict` turns any such row into an error (exit code 2) instead.

A bad invocation or input (missing file, missing column, wrong delimiter, a file that is not
tab-separated UTF-8 text, no row that can be predicted, an output that cannot be written,
a missing or corrupt model) prints one line `error: ...` on stderr and exits with code 2.
The output is checked before the model runs and written as a transaction (minbert/outputs.py):
a failed run leaves an earlier output file as it was. docs/bad-input.md lists every case.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from eval.model_io import ModelLoadError, load_model, predict_frame
from eval.submission import write_submission
from minbert import metrics
from minbert.course_io import InputError, header_names, read_course_file
from minbert.device import DeviceError, resolve_device
from minbert.outputs import StageOutputs
from minbert.tasks import TASKS

log = logging.getLogger(__name__)
NO_LIMIT = 10**9  # predict never quarantines long text: the tokenizer truncates it


class UsageError(ValueError):
    """A problem with the command line or its files, reported as one line, exit code 2."""


def has_label_column(path: Path, task: str) -> bool:
    """Whether the file's header names the task's label column (a labeled file)."""
    return TASKS[task].raw_label_column in header_names(path)


def read_input(path: Path, task: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows to predict, with `label` where the file has a valid one; rows that cannot be)."""
    rows, unreadable = read_course_file(path, task, labeled=False, quarantine_empty=False,
                                        max_chars=NO_LIMIT)
    if has_label_column(path, task):
        labeled, _ = read_course_file(path, task, labeled=True, quarantine_empty=False,
                                      max_chars=NO_LIMIT)
        rows = rows.join(labeled[["label"]], how="left")  # both indexed by file line
    return rows, unreadable


def describe_unreadable(unreadable: pd.DataFrame, limit: int = 10) -> list[str]:
    lines = [f"{r.file}:{r.line}: {r.reason} ({r.detail}): no prediction"
             for r in unreadable.head(limit).itertuples()]
    if len(unreadable) > limit:
        lines.append(f"... and {len(unreadable) - limit} more rows without prediction")
    return lines


def score_line(task: str, preds: np.ndarray, labels: pd.Series) -> str | None:
    """The metric on the rows that have a label, as one log line; None without labels."""
    known = labels.notna().to_numpy()
    if known.sum() < 2:
        return None
    p, y = preds[known], labels.to_numpy()[known]
    if task == "sts":
        return f"Pearson {metrics.pearson(p, y):.4f} on {known.sum()} labeled rows"
    return f"accuracy {metrics.accuracy(p, y):.4f} on {known.sum()} labeled rows"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m eval.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="trained model directory")
    parser.add_argument("--task", required=True, choices=list(TASKS))
    parser.add_argument("--input", required=True, type=Path, help="course-format CSV")
    parser.add_argument("--output", required=True, type=Path, help="submission CSV to write")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 2) if any row cannot be predicted")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"--batch-size must be at least 1, got {args.batch_size}")
    return args


def run(args: argparse.Namespace) -> int:
    rows, unreadable = read_input(args.input, args.task)
    for line in describe_unreadable(unreadable):
        log.warning("%s", line)
    if args.strict and len(unreadable):
        raise UsageError(f"{args.input}: {len(unreadable)} row(s) cannot be predicted "
                         "(listed above); fix them or drop --strict")
    if rows.empty:
        reasons = unreadable["reason"].value_counts()
        raise UsageError(f"{args.input}: no row can be predicted (all {len(unreadable)} rows "
                         f"unreadable: {', '.join(f'{r} {n}' for r, n in reasons.items())})")
    if args.output.is_dir():
        raise UsageError(f"{args.output}: is a directory, expected a file name")
    with StageOutputs() as outputs:  # checks the output can be written before the model runs
        staged = outputs.stage(args.output.parent) / args.output.name
        device = resolve_device(args.device)
        model, tokenizer = load_model(args.model, device)
        preds = predict_frame(model, tokenizer, args.task, rows, batch_size=args.batch_size,
                              device=device)
        write_submission(staged, args.task, rows["id"].tolist(), preds)
    log.info("wrote %d predictions to %s", len(rows), args.output)
    if "label" in rows and (line := score_line(args.task, preds, rows["label"])):
        log.info("%s: %s", args.input, line)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    args = parse_args(argv)
    try:
        return run(args)
    except (InputError, UsageError, ModelLoadError, DeviceError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
