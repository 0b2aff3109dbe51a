"""The CS224N course submission format for predictions, written and read byte for byte.

The course's `multitask_classifier.py` writes one file per task and split:

    id \t Predicted_Sentiment \n        <- header: "id", space, TAB, space, column, space
    a7d575c9ed86ea9633660c67e , 4 \n    <- rows: id, " , ", value, " \n"

Values are written as the course writes them: SST as an int (`argmax`), Quora as a float
`0.0`/`1.0` (`sigmoid().round()`), STS as the full float repr of the predicted score.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

HEADERS = {
    "sst": "Predicted_Sentiment",
    "para": "Predicted_Is_Paraphrase",
    "sts": "Predicted_Similiary",  # sic: the course spells it this way
}

# File names the course uses under predictions/ (para has no test split in this project).
FILE_NAMES = {
    ("sst", "dev"): "sst-dev-output.csv",
    ("sst", "test"): "sst-test-output.csv",
    ("para", "dev"): "para-dev-output.csv",
    ("para", "test"): "para-test-output.csv",
    ("sts", "dev"): "sts-dev-output.csv",
    ("sts", "test"): "sts-test-output.csv",
}


class SubmissionError(ValueError):
    """A predictions file that is not in the course submission format."""


def format_value(task: str, value: float) -> str:
    """One prediction as the course writes it (see module docstring)."""
    if task == "sst":
        return str(int(value))
    if task == "para":
        return str(float(int(round(float(value)))))
    if task == "sts":
        return repr(float(value))
    raise ValueError(f"unknown task '{task}' (known: {', '.join(HEADERS)})")


def submission_lines(task: str, ids: Sequence[str], values: Iterable[float]) -> list[str]:
    """Header and one line per prediction, each ending in ' \\n' exactly as the course writes."""
    values = list(np.asarray(list(values)).reshape(-1))
    if len(values) != len(ids):
        raise ValueError(f"{len(ids)} ids but {len(values)} predictions for task '{task}'")
    header = f"id \t {HEADERS[task]} \n"
    return [header, *(f"{i} , {format_value(task, v)} \n" for i, v in zip(ids, values))]


def write_submission(
    path: str | Path, task: str, ids: Sequence[str], values: Iterable[float]
) -> Path:
    """Write predictions of `task` to `path` in the submission format (parents created)."""
    path = Path(path)
    lines = submission_lines(task, ids, values)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.writelines(lines)
    return path


def read_submission(path: str | Path) -> pd.DataFrame:
    """Read a submission file back: columns id (str) and prediction (float), file order kept."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0]
    if not header.startswith("id \t ") or header.split("\t")[1].strip() not in HEADERS.values():
        raise SubmissionError(f"{path}: line 1: not a submission header: {header!r}")
    ids, preds = [], []
    for n, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        parts = line.split(" , ")
        if len(parts) != 2:
            raise SubmissionError(f"{path}: line {n}: expected 'id , value', got {line!r}")
        ids.append(parts[0])
        preds.append(float(parts[1]))
    return pd.DataFrame({"id": pd.Series(ids, dtype=str), "prediction": preds})
