"""Write a sweep summary (eval/sweep.py) as reports/sweep.md, sweep.json and sweep.png.

The markdown has one table per metric (a row per group of seeds) and the list of experiments
that were not averaged; the figure plots every metric against the first swept param, one point
per seed and the group mean with its 95% t-interval as error bars.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from minbert.outputs import StageOutputs

log = logging.getLogger(__name__)

TITLE = "Sweep summary"
COLUMNS = ("group", "seeds", "mean", "sd", "95% CI (seeds)", "Δ vs baseline",
           "95% CI of Δ (seeds, Welch)", "95% CI of Δ (dev bootstrap)", "verdict")


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _ci(interval: list[float] | None, signed: bool = False) -> str:
    if interval is None:
        return "–"
    return f"[{_num(interval[0], signed)}, {_num(interval[1], signed)}]"


def _seeds(seeds: list[list]) -> str:
    """[[11], [12]] -> "11, 12" (one entry per run; several seed params joined by '/')."""
    return ", ".join("/".join(str(v) for v in s) for s in seeds)


def metric_table(summary: dict, metric: str) -> list[list[str]]:
    """The rows of one metric's table, as text cells in COLUMNS order."""
    return [[row["label"], _seeds(row["seeds"]), _num(row["mean"]), _num(row["sd"]), _ci(row["ci"]),
             _num(row["diff"], True), _ci(row["diff_ci"], True), _ci(row["boot_ci"], True),
             row["verdict"]] for row in summary["rows"] if row["metric"] == metric]


def _markdown_table(header, rows) -> list[str]:
    cells = [list(header), ["---"] * len(header), *rows]
    return ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in cells]


def methods_text(summary: dict) -> str:
    boot = summary["bootstrap"]["replicates"]
    seeds = ", ".join(f"`{p}`" for p in summary["seed_params"])
    swept = ", ".join(f"`{k}`" for k in summary["swept"]) or "params"
    return (f"Groups: experiments with the same {swept}; the runs of a group differ in "
        f"{seeds} only. Baseline: "
        f"**{summary['baseline']}**. Mean and sd over a group's runs; 95% t-interval of the "
        "mean; Δ = group mean − baseline mean with its 95% Welch interval over seeds"
        + (f" and a 95% paired bootstrap interval over dev examples ({boot:,} replicates, "
           f"seed {summary['bootstrap']['seed']})" if boot else
           " (no dev predictions: no bootstrap interval)")
        + ". Verdict: *helps* / *hurts* when every interval of Δ lies above / below 0, else "
        "*no evidence* (a group of one run has no seed interval, hence no evidence).")


def render_markdown(summary: dict, figure: str | None = "sweep.png") -> str:
    lines = [f"# {TITLE}", "", methods_text(summary), ""]
    if figure:
        lines += [f"![Metrics against the swept value, 95% intervals over seeds]({figure})", ""]
    for metric in summary["metrics"]:
        lines += [f"## {metric}", "", *_markdown_table(COLUMNS, metric_table(summary, metric)),
                  ""]
    lines += ["## Not averaged", ""]
    listed = summary.get("not_averaged") or []
    if not listed:
        lines.append("Every experiment finished and is averaged above.")
    else:
        lines += _markdown_table(("experiment", "status", "params", "note"), [
            [r["name"], r["status"], ", ".join(f"{k}={v}" for k, v in r["params"].items()),
             r["note"]] for r in listed])
    return "\n".join(lines) + "\n"


def _x_values(summary: dict, rows: list[dict]) -> tuple[list, list[str] | None]:
    """Positions on the x axis: the first swept param when numeric, else the group order."""
    key = summary["swept"][0] if summary["swept"] else None
    values = [row["group"].get(key) for row in rows] if key else []
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return values, None
    return list(range(len(rows))), [row["label"] for row in rows]


def render_figure(summary: dict) -> bytes:
    """PNG: one panel per metric, seeds as dots, group mean with its 95% t-interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = summary["metrics"]
    cols = min(2, len(metrics))
    rows_n = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(5.5 * cols, 3.8 * rows_n), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        rows = [r for r in summary["rows"] if r["metric"] == metric]
        xs, ticks = _x_values(summary, rows)
        for x, row in zip(xs, rows):
            ax.scatter([x] * len(row["values"]), row["values"], s=12, color="0.6", zorder=2)
            err = None if row["ci"] is None else [[row["mean"] - row["ci"][0]],
                                                  [row["ci"][1] - row["mean"]]]
            ax.errorbar([x], [row["mean"]], yerr=err, fmt="o", capsize=4, zorder=3,
                        color="tab:green" if row["verdict"] == "helps" else
                        "tab:red" if row["verdict"] == "hurts" else "tab:blue")
        ax.set_title(metric)
        ax.set_xlabel(summary["swept"][0] if summary["swept"] and not ticks else "group")
        if ticks:
            ax.set_xticks(xs, ticks, rotation=20, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle("Dev metrics per group: seeds (grey), mean ± 95% t-interval\n"
                 "green helps, red hurts, blue no evidence / baseline", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def write(summary: dict, out_dir: Path) -> None:
    """reports/sweep.json, sweep.png and sweep.md, replaced together (minbert.outputs);
    the other files in `out_dir` are left alone."""
    with StageOutputs() as outputs:
        staging = outputs.stage(out_dir)
        (staging / "sweep.json").write_text(json.dumps(summary, indent=2) + "\n")
        (staging / "sweep.png").write_bytes(render_figure(summary))
        (staging / "sweep.md").write_text(render_markdown(summary))
    log.info("wrote %s/sweep.md, sweep.json, sweep.png (%d groups, %d not averaged)", out_dir,
             len({r["label"] for r in summary["rows"]}), len(summary.get("not_averaged") or []))
