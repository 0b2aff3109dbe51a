"""Where the pipeline keeps its tables, model and reports: one constant per folder.

Stage modules import these and never spell a pipeline path themselves; `dvc.yaml` names the
same folders in the stages' deps and outs, and `tests/test_dvc_deps.py` checks that every
folder a stage module imports from here is a dep or out of that stage. The raw course files
are the one path that is a param (`prepare.raw_dir`, templated into dvc.yaml).
"""

from pathlib import Path

CLEAN_DIR = Path("data/clean")  # prepare: <task>/{train,dev,test}.parquet, quarantine, summary
AUDIT_DIR = Path("data/audit")  # audit: issues.parquet, quarantine.parquet, summary.json
BALANCED_DIR = Path("data/balanced")  # balance: <task>/train.parquet, plan.json
AUGMENTED_DIR = Path("data/augmented")  # augment: real + synthetic rows, funnel, examples
TRAINING_DIR = AUGMENTED_DIR  # the training tables: validate checks them, train reads them
VALIDATION_DIR = Path("reports/validation")  # validate: results.json, docs/
MODEL_DIR = Path("models/multitask")  # train: the saved model
TRAIN_LIVE_DIR = Path("dvclive/train")  # train: dvclive metrics and plots
EVAL_DIR = Path("reports/eval")  # evaluate: metrics.json, per_class.json, plots/
PREDICTIONS_DIR = Path("predictions")  # evaluate: course-format prediction files
REPORTS_DIR = Path("reports")  # report: balance.md, balance.html, class_counts.csv
