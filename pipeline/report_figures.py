"""Figures of the balance report, each a pure function: a table in, PNG bytes out.

matplotlib is used with the non-interactive Agg backend; every figure is closed after it is
saved so a long report does not accumulate open figures.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

STEP_COLORS = {
    "raw": "#b0b0b0",
    "clean": "#6f8fb8",
    "balanced": "#2f5f98",
    "augmented": "#e08a2b",
}
SYNTHETIC_HATCH = "///"
REJECT_COLORS = ["#c0392b", "#e67e22", "#8e44ad", "#7f8c8d", "#d35400", "#16a085"]


def to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def class_counts_figure(wide: pd.DataFrame, title: str) -> bytes:
    """Grouped horizontal bars: one group per class, one bar per pipeline step.

    `wide` has a `class` column and one count column per step present (raw, clean, balanced,
    augmented) plus optionally `synthetic`, drawn hatched over the augmented bar.
    """
    steps = [s for s in STEP_COLORS if s in wide.columns]
    classes = list(wide["class"])
    height = 0.8 / max(len(steps), 1)
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.35 * len(classes) * max(len(steps), 1)))
    y = np.arange(len(classes))
    for i, step in enumerate(steps):
        pos = y + i * height  # y axis is inverted: the first step is on top of its group
        ax.barh(pos, wide[step], height=height, color=STEP_COLORS[step], label=step)
        if step == "augmented" and "synthetic" in wide.columns:
            real = wide["augmented"] - wide["synthetic"]
            ax.barh(pos, wide["synthetic"], left=real, height=height, color="none",
                    edgecolor="#7a3e00", hatch=SYNTHETIC_HATCH, linewidth=0,
                    label="of which synthetic")
    return class_bars_png(fig, ax, y + height * (len(steps) - 1) / 2, classes, "training rows",
                          title)


def class_bars_png(fig, ax, ticks, classes: list, xlabel: str, title: str) -> bytes:
    """Shared finish of the horizontal per-class bar charts: class labels, legend, grid, PNG."""
    ax.set_yticks(ticks, [f"class {c}" for c in classes])
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return to_png(fig)


def funnel_figure(funnel: pd.DataFrame, reasons: list[str], title: str) -> bytes:
    """Per class: accepted, surplus and rejected (by reason) paraphrases stacked; requested marked.

    `funnel` has columns class, requested, accepted, optionally surplus, and one
    `rejected: <reason>` column per reason in `reasons`.
    """
    classes = list(funnel["class"])
    y = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.45 * len(classes)))
    left = np.zeros(len(classes))
    ax.barh(y, funnel["accepted"], color="#27ae60", label="accepted")
    left += funnel["accepted"].to_numpy(dtype=float)
    if "surplus" in funnel and funnel["surplus"].sum():
        ax.barh(y, funnel["surplus"], left=left, color="#a9dfbf", label="surplus (not needed)")
        left += funnel["surplus"].to_numpy(dtype=float)
    for i, reason in enumerate(reasons):
        values = funnel[f"rejected: {reason}"].to_numpy(dtype=float)
        ax.barh(y, values, left=left, color=REJECT_COLORS[i % len(REJECT_COLORS)],
                label=f"rejected: {reason}")
        left += values
    ax.scatter(funnel["requested"], y, marker="|", s=400, color="black", label="requested",
               zorder=3)
    return class_bars_png(fig, ax, y, classes, "paraphrases", title)


def confusion_figure(matrix: np.ndarray, labels: list[str], title: str) -> bytes:
    """Confusion matrix heat map, gold classes as rows, predictions as columns."""
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(labels), 1.0 + 0.6 * len(labels)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    top = matrix.max() if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if top and v > top / 2 else "black", fontsize="small")
    ax.set_title(title)
    return to_png(fig)
