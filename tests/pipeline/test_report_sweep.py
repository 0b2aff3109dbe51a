"""The balance report shows the sweep summary of `python -m eval.sweep` when it is present."""

from pipeline.report import ReportInputs, ReportParams, build_report, sweep_section
from pipeline.report_render import Figure, Table, render_markdown

SWEEP = {
    "swept": ["augment.ratio"], "seed_params": ["train.seed"], "baseline": "augment.ratio=0",
    "metrics": ["overall"], "bootstrap": {"replicates": 1000, "seed": 0}, "level": 0.95,
    "rows": [
        {"metric": "overall", "label": "augment.ratio=0", "group": {"augment.ratio": 0},
         "runs": 3, "values": [0.6, 0.61, 0.62], "mean": 0.61, "sd": 0.01, "ci": [0.585, 0.635],
         "diff": None, "diff_ci": None, "boot_ci": None, "verdict": "baseline"},
        {"metric": "overall", "label": "augment.ratio=2", "group": {"augment.ratio": 2},
         "runs": 3, "values": [0.7, 0.71, 0.72], "mean": 0.71, "sd": 0.01, "ci": [0.685, 0.735],
         "diff": 0.1, "diff_ci": [0.077, 0.123], "boot_ci": [0.05, 0.15], "verdict": "helps"},
    ],
    "not_averaged": [{"name": "bold-oryx", "status": "failed", "note": "", "params": {}}],
}


def test_sweep_section_shows_table_plot_and_unaveraged_runs():
    section = sweep_section(SWEEP, b"\x89PNG fake")
    tables = [b for b in section.blocks if isinstance(b, Table)]
    assert len(tables) == 1
    frame = tables[0].frame
    assert frame["verdict"].tolist() == ["baseline", "helps"]
    assert frame["95% CI of Δ (dev bootstrap)"].tolist() == ["", "[+0.0500, +0.1500]"]
    assert any(isinstance(b, Figure) for b in section.blocks)
    assert "bold-oryx (failed)" in render_markdown("r", [section])


def test_report_says_how_to_get_a_sweep_when_absent():
    sections, _ = build_report(ReportInputs(), ReportParams(examples_per_class=1,
                                                            quarantine_examples=1,
                                                            audit_examples=1))
    text = render_markdown("r", sections)
    assert "python -m eval.sweep" in text and "helps" not in text
