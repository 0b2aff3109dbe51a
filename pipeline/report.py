"""Stage `report`: the class-balance report of the pipeline's data and the run's dev metrics.

    python -m pipeline.report

Inputs (each optional; a section whose input is absent says so and shows no numbers):
    data/clean/summary.json, quarantine.parquet, removed.parquet       (prepare)
    data/audit/summary.json, issues.parquet                            (audit)
    data/balanced/plan.json                                            (balance)
    data/augmented/summary.json, examples.json, <task>/train.parquet   (augment)
    reports/eval/metrics.json, per_class.json                          (evaluate)
    reports/sweep.json, sweep.png      (`python -m eval.sweep`, across experiments; not a dep)
Outputs:
    reports/balance.md      the report as Markdown
    reports/balance.html    the same report in one self-contained file (figures embedded)
    reports/class_counts.csv   task, class, step, count: the DVC plot of class bars
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from minbert.outputs import OutputError, StageOutputs
from minbert.params import load_section
from minbert.paths import AUDIT_DIR, AUGMENTED_DIR, BALANCED_DIR, CLEAN_DIR, REPORTS_DIR
from minbert.tasks import TASKS, class_names
from pipeline import report_figures as figures
from pipeline import report_tables as tables
from pipeline.report_render import Figure, Section, Table, Text, render_html, render_markdown

log = logging.getLogger(__name__)

TITLE = "Class balance report"
OUT_DIR = REPORTS_DIR


@dataclass(frozen=True)
class ReportParams:
    examples_per_class: int  # paraphrase examples shown per class and status
    quarantine_examples: int  # quarantined rows shown per file and reason
    audit_examples: int  # suspect rows of the label audit shown per class


@dataclass
class ReportInputs:
    """Everything the report reads; None where the file does not exist (stage not run)."""

    clean_summary: dict | None = None
    quarantine: pd.DataFrame | None = None
    removed: pd.DataFrame | None = None
    plan: dict | None = None
    audit_summary: dict | None = None
    audit_issues: pd.DataFrame | None = None
    augment_summary: dict | None = None
    examples: dict | None = None
    augmented: dict[str, pd.DataFrame] = field(default_factory=dict)
    metrics: dict | None = None
    per_class: dict | None = None
    sweep: dict | None = None  # reports/sweep.json of `python -m eval.sweep` (not a stage)
    sweep_png: bytes | None = None


def task_section(task: str, inputs: ReportInputs, counts: pd.DataFrame,
                 params: ReportParams) -> Section:
    """Class counts, augmentation funnel, examples and dev metrics of one task."""
    spec = TASKS[task]
    blocks: list = []
    if (counts["task"] == task).any():
        wide = tables.class_count_wide(counts, task)
        blocks.append(Figure(figures.class_counts_figure(wide, f"{spec.title}: training rows "
                                                          "per class and step"),
                             f"{spec.title}: training rows per class at each step"))
        blocks.append(Table(wide, "Training rows per class at each step"))
        blocks.append(Text(_count_notes(task, inputs.plan)))
    else:
        blocks.append(Text("No class counts yet: run `dvc repro` (stages prepare, balance)."))
    children = [
        funnel_section(task, inputs.augment_summary),
        examples_section(task, inputs.examples, params.examples_per_class),
        metrics_section(task, inputs.metrics, inputs.per_class),
    ]
    return Section(f"{spec.title} (`{task}`)", tuple(blocks), children=tuple(children))


def _count_notes(task: str, plan: dict | None) -> str:
    notes = ["Raw counts only rows whose label could be read (a row with a missing label is "
             "quarantined and has no class)."]
    if plan is not None and task in plan:
        notes.insert(0, f"Target T = {plan[task]['target']:,} rows per class "
                        "(min(largest clean class, `balance.max_per_class`)).")
    if task == "sts":
        notes.append("STS classes are bins of the similarity score: [0,1), [1,2), [2,3), "
                     "[3,4), [4,5].")
    return " ".join(notes)


def funnel_section(task: str, augment_summary: dict | None) -> Section:
    title = "Augmentation funnel"
    tasks = (augment_summary or {}).get("tasks", {})
    if task not in tasks:
        return Section(title, (Text("Augmentation has not run (`data/augmented/summary.json` "
                                    "is absent; stage `augment`)."),), level=3)
    funnel, reasons = tables.funnel_table(tasks[task])
    if funnel["requested"].sum() == 0:
        return Section(title, (Text(f"No paraphrase was requested for this task (augment.ratio "
                                    f"= {augment_summary.get('ratio')})."),), level=3)
    ratio, model = augment_summary.get("ratio"), augment_summary.get("model")
    blocks: list = [
        Text(f"Paraphrases per class: requested to reach round(augment.ratio × T) rows "
             f"(ratio {ratio}), generated by `{model}` "
             f"({augment_summary.get('backend')}; from cache = generated in an earlier run), "
             "accepted into the training set, surplus (passed the filters but not needed) "
             "and rejected by the filters, by reason."),
        Table(funnel),
        Figure(figures.funnel_figure(funnel, reasons, f"{TASKS[task].title}: augmentation"),
               f"{TASKS[task].title}: paraphrases accepted and rejected per class"),
    ]
    speed = tasks[task].get("tokens_per_s")
    if speed:
        blocks.append(Text(f"Generation speed in this run: {speed:,.1f} tokens/s "
                           f"({tasks[task].get('generation_seconds', 0):,.1f} s)."))
    return Section(title, tuple(blocks), level=3)


def examples_section(task: str, examples: dict | None, per_class: int) -> Section:
    title = "Example paraphrases"
    if examples is None or not examples.get(task):
        return Section(title, (Text("No paraphrase examples (`data/augmented/examples.json` "
                                    "is absent or has none for this task)."),), level=3)
    table = tables.example_table(examples[task], per_class)
    if table.empty:
        return Section(title, (Text("No paraphrase was generated for this task."),), level=3)
    return Section(title, (Table(table, "Source sentence and paraphrase; rejected ones with "
                                        "the filter that rejected them"),), level=3)


def metrics_section(task: str, metrics: dict | None, per_class: dict | None) -> Section:
    title = "Dev metrics"
    if metrics is None:
        return Section(title, (Text("Not evaluated yet (`reports/eval/metrics.json` is "
                                     "absent; stage `evaluate`)."),), level=3)
    keys = {"sst": ("sst_",), "para": ("para_",), "sts": ("sts_",)}[task]
    mine = {k: v for k, v in metrics.items() if k.startswith(keys)}
    blocks: list = [Table(tables.metrics_table(mine))]
    detail = (per_class or {}).get(task)
    if detail and "classes" in detail:
        blocks.append(Table(tables.per_class_table(detail["classes"]),
                            "Per-class precision, recall and F1 on the clean dev set"))
    if detail and "confusion" in detail:
        labels = list(class_names(task))
        blocks.append(Figure(figures.confusion_figure(detail["confusion"], labels,
                                                      f"{TASKS[task].title}: dev confusion"),
                             f"{TASKS[task].title}: confusion matrix on the dev set"))
    return Section(title, tuple(blocks), level=3)


def cleaning_section(inputs: ReportInputs, params: ReportParams) -> Section:
    title = "What cleaning removed"
    if inputs.clean_summary is None:
        return Section(title, (Text("Stage `prepare` has not run "
                                    "(`data/clean/summary.json` is absent)."),))
    blocks: list = [
        Text("Every row of every course file is accounted for: rows in = kept + quarantined "
             "+ deduplicated + leaked. Quarantined rows are kept with their reason in "
             "`data/clean/quarantine.parquet`; duplicates and leaked rows in "
             "`data/clean/removed.parquet`."),
        Table(tables.cleaning_table(inputs.clean_summary), "Rows per course file"),
    ]
    reasons = tables.quarantine_reason_table(inputs.clean_summary)
    blocks.append(Table(reasons, "Quarantined rows by reason") if len(reasons)
                  else Text("No row was quarantined."))
    if inputs.removed is not None:
        removed = tables.removed_table(inputs.removed)
        blocks.append(Table(removed, "Training rows removed: exact duplicates (same text and "
                                     "label) and leakage (text or pair also in dev/test)")
                      if len(removed) else Text("No duplicate or leaked training row."))
    if inputs.quarantine is not None and len(inputs.quarantine):
        blocks.append(Table(tables.quarantine_examples(inputs.quarantine,
                                                       params.quarantine_examples),
                            "Examples of quarantined rows (⇥ marks a tab)"))
    return Section(title, tuple(blocks))


def audit_section(inputs: ReportInputs, params: ReportParams) -> Section:
    """Suspect labels of the real training rows (stage `audit`, cleanlab)."""
    title = "Label audit of the real training rows"
    summary = inputs.audit_summary
    if summary is None:
        return Section(title, (Text("The label audit has not run (`data/audit/summary.json` "
                                    "is absent; stage `audit`)."),))
    quarantine = summary["mode"] == "quarantine"
    blocks: list = [Text(
        "A probe on frozen sentence embeddings scores every clean training row out of fold "
        "(k-fold cross-validation); cleanlab flags the rows whose label it contradicts "
        "(confident learning; STS: lowest label quality of a ridge regression). "
        + ("Mode `quarantine`: the suspect rows are taken out of training (reason "
           "`label_issue`, `data/audit/quarantine.parquet`); rows = kept + quarantined."
           if quarantine else "Mode `report`: the suspect rows are listed and still trained "
           "on (`audit.mode: quarantine` takes them out).")),
        Table(tables.audit_count_table(summary), "Suspect rows per task and class")]
    for task, entry in summary["tasks"].items():
        score = (f"cross-validated accuracy {entry['probe_accuracy']:.3f}"
                 if "probe_accuracy" in entry else
                 f"cross-validated Pearson {entry['probe_pearson']:.3f}"
                 if "probe_pearson" in entry else f"not audited: {entry['skipped']}")
        blocks.append(Text(f"{TASKS[task].title}: {entry['suspects']:,} suspect rows of "
                           f"{entry['rows']:,}; probe {score}."))
        if inputs.audit_issues is not None and entry["suspects"]:
            blocks.append(Table(tables.audit_examples(inputs.audit_issues, task,
                                                      params.audit_examples),
                                f"{TASKS[task].title}: most suspect rows per class: the "
                                "given label, the probe's label and its confidence; label "
                                "quality = cleanlab's score of the given label (SST, Quora: "
                                "the probe's probability of it)"))
    return Section(title, tuple(blocks))


def overview_section(inputs: ReportInputs, counts: pd.DataFrame) -> Section:
    blocks: list = [Text(
        "Training rows of each task through the pipeline: raw course file → clean "
        "(quarantine, deduplication, leakage removal) → balanced (every class capped at the "
        "target T) → augmented (classes topped up with LLM paraphrases; synthetic = the "
        "paraphrases among them).")]
    if len(counts):
        totals = counts.groupby(["task", "step"], sort=False)["count"].sum().unstack("step")
        totals = totals.reindex(columns=[s for s in tables.STEPS if s in totals.columns])
        blocks.append(Table(totals.reset_index(), "Training rows per task and step"))
    if inputs.metrics is not None:
        blocks.append(Table(tables.metrics_table(inputs.metrics), "Dev metrics of this run"))
    return Section("Overview", tuple(blocks))


def sweep_section(sweep: dict | None, png: bytes | None) -> Section:
    """The seeded sweep summary of `python -m eval.sweep`, when it has been run."""
    title = "Sweep: what a setting changes, beyond seed noise"
    if sweep is None:
        return Section(title, (Text("No sweep summary (`reports/sweep.json` is absent): run a "
                                    "seeded sweep and `python -m eval.sweep` "
                                    "(docs/experiments.md)."),))
    blocks: list = [Text(f"From `reports/sweep.md`: experiments grouped by "
                         f"{', '.join(sweep['swept']) or 'their params'}, baseline "
                         f"{sweep['baseline']}; 95% intervals over seeds and, for the "
                         "difference Δ to the baseline, over dev examples (paired bootstrap).")]
    if png:
        blocks.append(Figure(png, "Dev metrics per group: seeds and mean with its 95% interval"))
    for metric in sweep["metrics"]:
        rows = [r for r in sweep["rows"] if r["metric"] == metric]
        frame = pd.DataFrame({
            "group": [r["label"] for r in rows], "runs": [r["runs"] for r in rows],
            "mean": [r["mean"] for r in rows], "sd": [r["sd"] for r in rows],
            "Δ vs baseline": [r["diff"] for r in rows],
            "95% CI of Δ (seeds)": [_pair(r["diff_ci"]) for r in rows],
            "95% CI of Δ (dev bootstrap)": [_pair(r["boot_ci"]) for r in rows],
            "verdict": [r["verdict"] for r in rows]})
        blocks.append(Table(frame, f"`{metric}` per group"))
    listed = sweep.get("not_averaged") or []
    if listed:
        blocks.append(Text("Not averaged: " + "; ".join(f"{r['name']} ({r['status']})"
                                                        for r in listed) + "."))
    return Section(title, tuple(blocks))


def _pair(interval: list[float] | None) -> str:
    return "" if interval is None else f"[{interval[0]:+.4f}, {interval[1]:+.4f}]"


def build_report(inputs: ReportInputs, params: ReportParams) -> tuple[list[Section],
                                                                       pd.DataFrame]:
    """All sections of the report and the class count table (task, class, step, count)."""
    counts = tables.class_count_table(inputs.clean_summary, inputs.plan,
                                      inputs.augmented or None)
    sections = [overview_section(inputs, counts)]
    sections += [task_section(task, inputs, counts, params) for task in TASKS]
    sections.append(cleaning_section(inputs, params))
    sections.append(audit_section(inputs, params))
    sections.append(sweep_section(inputs.sweep, inputs.sweep_png))
    return sections, counts


def read_json(path: Path) -> dict | None:
    if not path.exists():
        log.info("%s absent: its section says so", path)
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame | None:
    return pd.read_parquet(path, columns=columns) if path.exists() else None


def load_inputs(root: Path = Path(".")) -> ReportInputs:
    clean, augmented = root / CLEAN_DIR, root / AUGMENTED_DIR
    tables_aug = {}
    for task in TASKS:
        table = read_parquet(augmented / task / "train.parquet", ["label", "origin"])
        if table is not None:
            tables_aug[task] = table
    return ReportInputs(
        clean_summary=read_json(clean / "summary.json"),
        quarantine=read_parquet(clean / "quarantine.parquet"),
        removed=read_parquet(clean / "removed.parquet"),
        plan=read_json(root / BALANCED_DIR / "plan.json"),
        audit_summary=read_json(root / AUDIT_DIR / "summary.json"),
        audit_issues=read_parquet(root / AUDIT_DIR / "issues.parquet"),
        augment_summary=read_json(augmented / "summary.json"),
        examples=read_json(augmented / "examples.json"),
        augmented=tables_aug,
        metrics=read_json(root / "reports/eval/metrics.json"),
        per_class=read_json(root / "reports/eval/per_class.json"),
        sweep=read_json(root / "reports/sweep.json"),
        sweep_png=_read_bytes(root / "reports/sweep.png"),
    )


def _read_bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def write_report(sections: list[Section], counts: pd.DataFrame, out_dir: Path) -> None:
    """The three report files, swapped in together (the other files in out_dir are left alone)."""
    with StageOutputs() as outputs:
        staging = outputs.stage(out_dir)
        (staging / "balance.md").write_text(render_markdown(TITLE, sections), encoding="utf-8")
        (staging / "balance.html").write_text(render_html(TITLE, sections), encoding="utf-8")
        counts.to_csv(staging / "class_counts.csv", index=False)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = load_section("report", ReportParams)
    log.info("params: %s", asdict(params))
    sections, counts = build_report(load_inputs(), params)
    try:
        write_report(sections, counts, OUT_DIR)
    except OutputError as error:
        log.error("%s", error)
        sys.exit(1)
    log.info("wrote %s/balance.md, balance.html, class_counts.csv (%d rows)", OUT_DIR, len(counts))


if __name__ == "__main__":
    main()
