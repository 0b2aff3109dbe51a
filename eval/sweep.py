"""Summarize a sweep of DVC experiments: does a setting help, beyond training-seed noise?

    dvc exp run --queue -S augment.ratio=0,2,3 -S train.seed=11,12,13 && dvc queue start -j 1
    python -m eval.sweep                          # after `dvc queue status` shows them done
    python -m eval.sweep --baseline augment.ratio=0 --seed-param train.seed

Reads the experiments of the current commit (`dvc exp show --json`; `--all-commits` for every
commit), their dev metrics (`reports/eval/metrics.json`) and, from DVC's cache, their dev
predictions (`predictions/<task>-dev-output.csv`) and dev labels (`data/clean/<task>/dev.parquet`).
Runs are grouped by the params that differ between experiments, `train.seed` excepted (the
replicates). Every metric gets per group: the mean, the spread (sd), a 95% t-interval over seeds,
the difference to the baseline group with its Welch interval over seeds and a paired bootstrap
interval over dev examples, and a verdict (eval/sweep_stats.py). Failed, queued and running
experiments are listed, not averaged.

Outputs: reports/sweep.md (tables), reports/sweep.json (the same numbers), reports/sweep.png
(metric against the swept value with 95% interval bars). Not a DVC stage: it reads many
experiments at once; `python -m pipeline.report` shows the result in the balance report.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from eval import sweep_report
from eval import sweep_stats as stats
from eval.submission import FILE_NAMES, read_submission
from eval.sweep_stats import DevTask
from minbert.paths import CLEAN_DIR, EVAL_DIR, PREDICTIONS_DIR, REPORTS_DIR
from minbert.tasks import TASKS

log = logging.getLogger(__name__)

METRICS_FILE = (EVAL_DIR / "metrics.json").as_posix()
METRICS = ("overall", "sst_accuracy", "para_accuracy", "sts_pearson")
SEED_PARAMS = ("train.seed",)
OUT_DIR = REPORTS_DIR
FINISHED = "finished"


class SweepError(ValueError):
    """The experiments cannot be summarized (a one-line reason)."""


@dataclass(frozen=True)
class Run:
    """One experiment: its params (flattened, `section.key`), dev metrics and status."""

    name: str
    rev: str
    status: str  # finished | failed | queued | running | no metrics | repeat
    params: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    note: str = ""


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"augment": {"ratio": 2}} -> {"augment.ratio": 2}; lists become tuples (hashable)."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = tuple(value) if isinstance(value, list) else value
    return flat


def _run_from_entry(entry: dict, state: str | None, metrics_file: str) -> Run:
    data = entry.get("data") or {}
    params = flatten(((data.get("params") or {}).get("params.yaml") or {}).get("data") or {})
    name, rev = entry.get("name") or entry["rev"][:7], entry["rev"]
    if state in ("queued", "running"):
        return Run(name, rev, state, params)
    if state == "failed" or entry.get("error"):
        return Run(name, rev, "failed", params, note=(entry.get("error") or {}).get("msg", ""))
    found = (data.get("metrics") or {}).get(metrics_file) or {}
    if "data" not in found:
        note = (found.get("error") or {}).get("msg", f"{metrics_file} absent")
        return Run(name, rev, "no metrics", params, note=note)
    return Run(name, rev, FINISHED, params, flatten(found["data"]))


def parse_exp_show(rows: list, metrics_file: str = METRICS_FILE) -> list[Run]:
    """Every experiment in `dvc exp show --json` output (workspace and commits left out)."""
    runs = []
    for baseline in rows:
        for experiment in baseline.get("experiments") or []:
            state = (experiment.get("executor") or {}).get("state")
            for entry in experiment.get("revs") or []:
                runs.append(_run_from_entry(entry, state, metrics_file))
    return runs


def read_experiments(repo: Path, all_commits: bool) -> list[Run]:
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json", *(["-A"] if all_commits else [])]
    done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    if done.returncode != 0:
        raise SweepError(f"`dvc exp show --json` failed in {repo}: "
                         f"{(done.stderr.strip().splitlines() or ['no message'])[-1]}")
    return parse_exp_show(json.loads(done.stdout))


def swept_params(runs: Sequence[Run], seed_params: Sequence[str]) -> list[str]:
    """Params whose value differs between experiments, replicate seeds excepted."""
    keys = sorted({k for r in runs for k in r.params} - set(seed_params))
    return [k for k in keys if len({repr(r.params.get(k)) for r in runs}) > 1]


def sort_key(values: tuple) -> tuple:
    return tuple((0, v, "") if isinstance(v, int | float) and not isinstance(v, bool)
                 else (1, 0, repr(v)) for v in values)


def group_runs(runs: Sequence[Run], keys: Sequence[str],
               seed_params: Sequence[str] = SEED_PARAMS) -> dict[tuple, list[Run]]:
    """Finished runs by their values of `keys`; groups ascending, runs by seed."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        if run.status == FINISHED:
            groups.setdefault(tuple(run.params.get(k) for k in keys), []).append(run)

    def by_seed(run: Run) -> tuple:
        return sort_key(tuple(run.params.get(p) for p in seed_params))

    return {k: sorted(g, key=by_seed) for k, g in sorted(groups.items(),
                                                         key=lambda item: sort_key(item[0]))}


def drop_repeats(groups: dict[tuple, list[Run]], seed_params: Sequence[str] = SEED_PARAMS
                 ) -> tuple[dict[tuple, list[Run]], list[Run]]:
    """Runs of a group with the same seed are one replicate run twice (e.g. the workspace run
    at the highest ratio and the queued run of the same params): the first is kept, the others
    come back with status "repeat" and are listed, never averaged (a seed counted twice would
    narrow the intervals without new evidence)."""
    kept_groups, repeats = {}, []
    for key, runs in groups.items():
        kept: dict[tuple, Run] = {}
        for run in runs:
            seed = tuple(repr(run.params.get(p)) for p in seed_params)
            if seed in kept:
                first = kept[seed]
                same = "same metrics" if run.metrics == first.metrics else "different metrics"
                repeats.append(replace(run, status="repeat",
                                       note=f"same params and seed as {first.name} ({same})"))
            else:
                kept[seed] = run
        kept_groups[key] = list(kept.values())
    return kept_groups, repeats


def parse_baseline(text: str | None, keys: Sequence[str],
                   groups: dict[tuple, list[Run]]) -> tuple:
    """`augment.ratio=0[,key=value]` -> the group it names; None -> the first (lowest) group."""
    if not groups:
        raise SweepError("no finished experiment with the metrics asked for (see the list "
                         "`dvc exp show` gives, and --metrics)")
    if text is None:
        return next(iter(groups))
    wanted = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in keys:
            raise SweepError(f"--baseline {text!r}: expected key=value with key among the swept "
                             f"params ({', '.join(keys) or 'none'})")
        wanted[key.strip()] = yaml.safe_load(value)
    matches = [g for g in groups if all(g[keys.index(k)] == v for k, v in wanted.items())]
    if len(matches) != 1:
        raise SweepError(f"--baseline {text!r} matches {len(matches)} groups; name one group")
    return matches[0]


def read_dev(repo: Path, rev: str) -> dict[str, DevTask] | None:
    """Dev predictions and labels of one experiment from DVC's cache; None when missing."""
    from dvc.api import DVCFileSystem
    from dvc.exceptions import DvcException

    dev = {}
    try:
        fs = DVCFileSystem(str(repo), rev=rev)
        with tempfile.TemporaryDirectory() as tmp:
            for task in TASKS:
                preds_path, gold_path = Path(tmp) / f"{task}.csv", Path(tmp) / f"{task}.parquet"
                fs.get_file((PREDICTIONS_DIR / FILE_NAMES[(task, "dev")]).as_posix(),
                            str(preds_path))
                fs.get_file((CLEAN_DIR / task / "dev.parquet").as_posix(), str(gold_path))
                preds = read_submission(preds_path)
                gold = pd.read_parquet(gold_path, columns=["id", "label"])
                table = preds.merge(gold, on="id", how="inner", validate="one_to_one")
                dev[task] = DevTask(table["id"].to_numpy(), table["label"].to_numpy(np.float64),
                                    table["prediction"].to_numpy(np.float64))
    except (OSError, ValueError, DvcException) as e:  # e.g. outputs not in this DVC cache
        log.warning("%s: no dev predictions (%s): seed intervals only", rev[:7], e)
        return None
    return dev


def require_metrics(runs: Sequence[Run], metrics: Sequence[str]) -> list[Run]:
    """A finished run without one of the metrics is listed (status "no metrics"), not averaged."""
    checked = []
    for run in runs:
        missing = [m for m in metrics if run.status == FINISHED and m not in run.metrics]
        checked.append(Run(run.name, run.rev, "no metrics", run.params, run.metrics,
                           f"{METRICS_FILE} has no {', '.join(missing)}") if missing else run)
    return checked


def _bootstrap(groups: dict[tuple, list[Run]], devs: dict, n_boot: int, seed: int):
    """Replicate scores (metric -> (B, runs)) of the runs with dev predictions, and their index."""
    with_dev = [r for g in groups.values() for r in g if devs.get(r.rev)]
    if not with_dev or n_boot <= 0:
        return {}, {}
    aligned = stats.align_dev([devs[r.rev] for r in with_dev])
    for metric, values in stats.point_scores(aligned).items():
        for run, value in zip(with_dev, values, strict=True):
            if metric in run.metrics and abs(run.metrics[metric] - value) > 1e-4:
                log.warning("%s: its dev predictions give %s %.4f, %s says %.4f",
                            run.name, metric, value, METRICS_FILE, run.metrics[metric])
    log.info("paired bootstrap: %d replicates over %s dev examples of %d runs", n_boot,
             " / ".join(str(g.size) for g, _ in aligned.values()), len(with_dev))
    return stats.bootstrap_scores(aligned, n_boot, seed), {r.rev: i for i, r in
                                                           enumerate(with_dev)}


def label(keys: Sequence[str], values: tuple) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values)) or "all runs"


def _interval(i: stats.Interval | None) -> list[float] | None:
    return None if i is None else [i.low, i.high]


def _metric_row(metric: str, runs: list[Run], base: list[Run], replicates: dict,
                index: dict, is_baseline: bool) -> dict:
    values = [r.metrics[metric] for r in runs]
    base_values = [r.metrics[metric] for r in base]
    row = {"runs": len(values), "values": values, "mean": float(np.mean(values)),
           "sd": float(np.std(values, ddof=1)) if len(values) > 1 else None,
           "ci": _interval(stats.t_interval(values))}
    if is_baseline:
        return {**row, "diff": None, "diff_ci": None, "boot_ci": None, "verdict": "baseline"}
    seeds_ci = stats.welch_interval(values, base_values)
    boot_ci = None
    if metric in replicates and all(r.rev in index for r in runs + base):
        boot_ci = stats.bootstrap_interval(replicates[metric], [index[r.rev] for r in runs],
                                           [index[r.rev] for r in base])
    return {**row, "diff": row["mean"] - float(np.mean(base_values)),
            "diff_ci": _interval(seeds_ci), "boot_ci": _interval(boot_ci),
            "verdict": stats.verdict(metric, [seeds_ci, boot_ci])}


def summarize(groups: dict[tuple, list[Run]], keys: Sequence[str], baseline: tuple,
              metrics: Sequence[str], devs: dict, *, n_boot: int, seed: int,
              seed_params: Sequence[str] = SEED_PARAMS) -> dict:
    """Rows (metric x group) of means, intervals and verdicts; see eval/sweep_stats.py."""
    replicates, index = _bootstrap(groups, devs, n_boot, seed)
    rows = []
    for metric in metrics:
        for values, runs in groups.items():
            row = _metric_row(metric, runs, groups[baseline], replicates, index,
                              values == baseline)
            rows.append({"metric": metric, "label": label(keys, values),
                         "group": dict(zip(keys, values)), **row,
                         "seeds": [[r.params.get(p) for p in seed_params] for r in runs]})
    return {"swept": list(keys), "seed_params": list(seed_params),
            "baseline": label(keys, baseline), "metrics": list(metrics),
            "bootstrap": {"replicates": n_boot if replicates else 0, "seed": seed},
            "level": stats.LEVEL, "rows": rows}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m eval.sweep", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--repo", type=Path, default=Path("."), help="the DVC project")
    parser.add_argument("--baseline", help="baseline group, e.g. augment.ratio=0 "
                        "(default: the group with the lowest swept values)")
    parser.add_argument("--seed-param", action="append", dest="seed_params",
                        help="replicate param, not a group key (default: train.seed)")
    parser.add_argument("--metrics", nargs="+", default=list(METRICS))
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates "
                        "(0 = seeds only)")
    parser.add_argument("--bootstrap-seed", type=int, default=0)
    parser.add_argument("--all-commits", action="store_true", help="experiments of every commit")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    seed_params = args.seed_params or list(SEED_PARAMS)
    try:
        runs = require_metrics(read_experiments(args.repo, args.all_commits), args.metrics)
        # groups: the params that differ between finished runs (a failed run's odd param
        # does not split them); the listing names whatever differs between all runs
        keys = swept_params([r for r in runs if r.status == FINISHED], seed_params)
        groups, repeats = drop_repeats(group_runs(runs, keys, seed_params), seed_params)
        baseline = parse_baseline(args.baseline, keys, groups)
        devs = {r.rev: read_dev(args.repo, r.rev) for g in groups.values() for r in g} \
            if args.bootstrap > 0 else {}
        summary = summarize(groups, keys, baseline, args.metrics, devs, n_boot=args.bootstrap,
                            seed=args.bootstrap_seed, seed_params=seed_params)
    except (SweepError, ValueError) as e:
        log.error("%s", e)
        sys.exit(1)
    summary["not_averaged"] = [{"name": r.name, "status": r.status, "note": r.note,
                                "params": {k: r.params.get(k) for k in
                                           swept_params(runs, seed_params) + seed_params}}
                               for r in [*repeats, *(r for r in runs if r.status != FINISHED)]]
    sweep_report.write(summary, args.out)
    for row in summary["rows"]:
        if row["metric"] == args.metrics[0]:
            log.info("%s: %s", row["label"], row["verdict"])


if __name__ == "__main__":
    main()
