"""The sweep summary on hand-made experiments: known means and intervals, verdicts at the edges,
failed / queued runs listed and not averaged, the paired bootstrap against direct scoring."""

import json

import numpy as np
import pytest

from eval import sweep
from eval import sweep_stats as stats
from eval.sweep_stats import DevTask, Interval
from minbert import metrics as formulas

T_975_2 = 4.302652729749462  # Student t quantile, 2 degrees of freedom (tables: 4.303)
METRIC_FILE = sweep.METRICS_FILE


def exp(name, ratio, seed, overall=None, state="success", error=None):
    """One experiment entry as `dvc exp show --json` writes it (DVC 3)."""
    metrics = ({METRIC_FILE: {"data": {"overall": overall, "sst_accuracy": overall}}}
               if overall is not None else
               {METRIC_FILE: {"error": {"type": "FileNotFoundError", "msg": "No such file"}}})
    return {"revs": [{"rev": f"{name:0<40}"[:40], "name": name, "error": error, "experiments": None,
                      "data": {"params": {"params.yaml": {"data": {
                          "augment": {"ratio": ratio, "seed": 7},
                          "train": {"seed": seed, "task_order": ["sst", "para", "sts"]}}}},
                               "metrics": metrics}}],
            "executor": {"state": state} if state else None, "name": name}


def exp_show(*experiments):
    return [{"rev": "workspace", "name": None, "data": {}, "error": None, "experiments": None},
            {"rev": "c" * 40, "name": "main", "data": {}, "error": None,
             "experiments": list(experiments)}]


SHOW = exp_show(
    exp("r0s11", 0, 11, 0.60), exp("r0s12", 0, 12, 0.61), exp("r0s13", 0, 13, 0.62),
    exp("r2s11", 2, 11, 0.70), exp("r2s12", 2, 12, 0.71), exp("r2s13", 2, 13, 0.72),
    exp("r4s11", 4, 11, 0.50), exp("r4s12", 4, 12, 0.52), exp("r4s13", 4, 13, 0.51),
    # failed after evaluate wrote its metrics: listed, its 0.99 must not move the ratio-2 mean
    exp("r2bad", 2, 14, 0.99, state="failed", error={"msg": "Experiment run failed"}),
    exp("r4q", 4, 14, state="queued"), exp("r4run", 4, 15, state="running"),
    exp("r8", 8, 11, None, state=None),  # finished without an evaluate stage
    exp("r6", 6, 11, 0.9, state=None),  # a workspace `dvc exp run`: no executor, one seed
)


def test_t_interval_of_known_values():
    ci = stats.t_interval([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3
    half = T_975_2 / np.sqrt(3)
    assert ci.low == pytest.approx(2 - half) and ci.high == pytest.approx(2 + half)
    assert stats.t_interval([5.0]) is None


def test_welch_interval_of_known_values():
    ci = stats.welch_interval([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])  # Δ 2; ν = 2 (baseline sd 0)
    half = T_975_2 / np.sqrt(3)
    assert ci.low == pytest.approx(2 - half) and ci.high == pytest.approx(2 + half)
    assert stats.welch_interval([1.0, 1.0], [0.5, 0.5]) == Interval(0.5, 0.5)
    assert stats.welch_interval([1.0], [0.5, 0.6]) is None


@pytest.mark.parametrize("intervals, expected", [
    ([Interval(1e-9, 0.2)], "helps"),
    ([Interval(0.0, 0.2)], "no evidence"),  # touching 0 is not excluding it
    ([Interval(-0.2, -1e-9)], "hurts"),
    ([Interval(-0.2, 0.0)], "no evidence"),
    ([Interval(0.1, 0.2), Interval(0.01, 0.3)], "helps"),
    ([Interval(0.1, 0.2), Interval(-0.01, 0.3)], "no evidence"),  # the dev sample disagrees
    ([Interval(0.1, 0.2), None], "helps"),  # no predictions: seeds alone
    ([None, Interval(0.1, 0.2)], "no evidence"),  # one seed: no evidence
])
def test_verdict_edges(intervals, expected):
    assert stats.verdict("overall", intervals) == expected


def test_verdict_for_a_lower_is_better_metric():
    assert stats.verdict("sts_mse", [Interval(-0.3, -0.1)]) == "helps"
    assert stats.verdict("sts_mse", [Interval(0.1, 0.3)]) == "hurts"


def test_parse_lists_every_experiment_with_its_status():
    runs = {r.name: r for r in sweep.parse_exp_show(SHOW)}
    assert len(runs) == 14  # workspace and the commit row are not experiments
    assert runs["r2bad"].status == "failed" and "failed" in runs["r2bad"].note
    assert runs["r4q"].status == "queued" and runs["r4run"].status == "running"
    assert runs["r8"].status == "no metrics" and runs["r6"].status == "finished"
    assert runs["r2s12"].params["augment.ratio"] == 2
    assert runs["r2s12"].params["train.task_order"] == ("sst", "para", "sts")
    assert runs["r2s12"].metrics["overall"] == 0.71


def summary_of(show, baseline="augment.ratio=0"):
    runs = sweep.require_metrics(sweep.parse_exp_show(show), ["overall"])
    keys = sweep.swept_params(runs, ["train.seed"])
    groups = sweep.group_runs(runs, keys)
    base = sweep.parse_baseline(baseline, keys, groups)
    return keys, groups, sweep.summarize(groups, keys, base, ["overall"], {}, n_boot=0, seed=0)


def test_groups_by_the_swept_param_and_not_the_seed():
    keys, groups, _ = summary_of(SHOW)
    assert keys == ["augment.ratio"]
    assert list(groups) == [(0,), (2,), (4,), (6,)]
    assert [r.name for r in groups[(2,)]] == ["r2s11", "r2s12", "r2s13"]  # r2bad left out


def test_summary_means_intervals_and_verdicts():
    _, _, summary = summary_of(SHOW)
    rows = {r["label"]: r for r in summary["rows"]}
    r0, r2, r4, r6 = (rows[f"augment.ratio={r}"] for r in (0, 2, 4, 6))
    assert r2["mean"] == pytest.approx(0.71) and r2["sd"] == pytest.approx(0.01)
    half = T_975_2 * 0.01 / np.sqrt(3)
    assert r2["ci"] == pytest.approx([0.71 - half, 0.71 + half])
    # Δ = 0.10 with equal sds: Welch's ν = 4, half width t(4) * sqrt(2 * 0.01² / 3)
    half_diff = 2.7764451051977934 * np.sqrt(2 * 0.01 ** 2 / 3)
    assert r2["diff"] == pytest.approx(0.10)
    assert r2["diff_ci"] == pytest.approx([0.10 - half_diff, 0.10 + half_diff])
    assert (r0["verdict"], r2["verdict"], r4["verdict"]) == ("baseline", "helps", "hurts")
    assert r6["runs"] == 1 and r6["sd"] is None and r6["verdict"] == "no evidence"


def test_spread_within_noise_is_no_evidence():
    show = exp_show(*(exp(f"a{s}", 0, s, v) for s, v in ((1, 0.60), (2, 0.64), (3, 0.62))),
                    *(exp(f"b{s}", 1, s, v) for s, v in ((1, 0.61), (2, 0.66), (3, 0.62))))
    _, _, summary = summary_of(show)
    assert summary["rows"][1]["diff"] == pytest.approx(0.01)
    assert summary["rows"][1]["verdict"] == "no evidence"


def test_main_writes_table_plot_and_lists_failed_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "read_experiments",
                        lambda repo, all_commits: sweep.parse_exp_show(SHOW))
    sweep.main(["--out", str(tmp_path), "--metrics", "overall", "sst_accuracy",
                "--bootstrap", "0"])
    text = (tmp_path / "sweep.md").read_text()
    # the failed run's 0.99 (seed 14) is not averaged
    assert "| augment.ratio=2 | 11, 12, 13 | 0.7100 |" in text
    not_averaged = text.split("## Not averaged")[1]
    for name, status in (("r2bad", "failed"), ("r4q", "queued"), ("r4run", "running"),
                         ("r8", "no metrics")):
        assert f"| {name} | {status} |" in not_averaged
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((tmp_path / "sweep.json").read_text())
    assert {r["name"] for r in data["not_averaged"]} == {"r2bad", "r4q", "r4run", "r8"}


def test_a_seed_run_twice_counts_once_and_is_listed(tmp_path, monkeypatch):
    # the documented sweep: a workspace `dvc exp run -S augment.ratio=4` (train.seed 11), then
    # the queued grid, which runs ratio 4 with seed 11 again: one replicate, not two
    show = exp_show(*(exp(f"r0s{s}", 0, s, 0.60 + (s - 11) / 100) for s in (11, 12, 13)),
                    exp("ws", 4, 11, 0.70, state=None),
                    *(exp(f"r4s{s}", 4, s, 0.70 + (s - 11) / 100) for s in (11, 12, 13)))
    monkeypatch.setattr(sweep, "read_experiments",
                        lambda repo, all_commits: sweep.parse_exp_show(show))
    sweep.main(["--out", str(tmp_path), "--metrics", "overall", "--bootstrap", "0"])
    data = json.loads((tmp_path / "sweep.json").read_text())
    r4 = next(r for r in data["rows"] if r["label"] == "augment.ratio=4")
    assert r4["runs"] == 3 and r4["sd"] == pytest.approx(0.01)  # not 4 runs, not a smaller sd
    [repeat] = data["not_averaged"]
    assert repeat["status"] == "repeat" and repeat["name"] == "r4s11"
    assert "same params and seed as ws (same metrics)" in repeat["note"]


def test_unknown_baseline_is_a_one_line_error(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sweep, "read_experiments",
                        lambda repo, all_commits: sweep.parse_exp_show(SHOW))
    with pytest.raises(SystemExit):
        sweep.main(["--out", str(tmp_path), "--baseline", "train.lr_heads=1", "--bootstrap", "0",
                    "--metrics", "overall"])
    assert "swept params (augment.ratio)" in caplog.text


def _dev(rng, n, correct_share, sts_noise):
    ids = np.array([f"id{i:04d}" for i in range(n)])
    sst_gold = rng.integers(0, 5, n).astype(float)
    para_gold = rng.integers(0, 2, n).astype(float)
    sts_gold = rng.uniform(0, 5, n)
    right = rng.random(n) < correct_share
    return {"sst": DevTask(ids, sst_gold, np.where(right, sst_gold, (sst_gold + 1) % 5)),
            "para": DevTask(ids, para_gold, np.where(right, para_gold, 1 - para_gold)),
            "sts": DevTask(ids, sts_gold, sts_gold + rng.normal(0, sts_noise, n))}


def test_bootstrap_scores_equal_direct_scoring_of_the_same_draw():
    rng = np.random.default_rng(1)
    gold = rng.uniform(0, 5, 50)
    preds = np.stack([gold + rng.normal(0, s, 50) for s in (0.5, 2.0)])  # (runs, N)
    w = rng.multinomial(50, np.full(50, 1 / 50), size=3).astype(float)
    got = stats._weighted_pearson(w, preds, gold)
    for b in range(3):
        take = np.repeat(np.arange(50), w[b].astype(int))
        for run in range(2):
            assert got[b, run] == pytest.approx(formulas.pearson(preds[run][take], gold[take]))


def test_paired_bootstrap_separates_a_real_gain_from_none():
    rng = np.random.default_rng(0)
    base = _dev(rng, 400, 0.6, 1.0)
    same = {t: DevTask(d.ids, d.gold, d.preds.copy()) for t, d in base.items()}
    better = {t: DevTask(d.ids, d.gold, d.gold.copy()) for t, d in base.items()}  # all right
    aligned = stats.align_dev([base, same, better])
    reps = stats.bootstrap_scores(aligned, n_boot=300, seed=0)
    assert reps["overall"].shape == (300, 3)
    assert stats.bootstrap_interval(reps["overall"], [1], [0]) == Interval(0.0, 0.0)
    gain = stats.bootstrap_interval(reps["sst_accuracy"], [2], [0])
    point = stats.point_scores(aligned)["sst_accuracy"]
    assert gain.low > 0 and gain.low < point[2] - point[0] < gain.high


def test_runs_that_disagree_on_dev_labels_are_refused():
    rng = np.random.default_rng(0)
    a, b = _dev(rng, 20, 0.5, 1.0), _dev(rng, 20, 0.5, 1.0)
    with pytest.raises(ValueError, match="disagree on dev labels"):
        stats.align_dev([a, b])


def test_bootstrap_f1_equals_direct_scoring_of_the_same_draw():
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 5, 60).astype(float)
    preds = np.stack([np.where(rng.random(60) < share, gold, rng.integers(0, 5, 60))
                      for share in (0.3, 0.8)]).astype(float)  # (runs, N)
    w = rng.multinomial(60, np.full(60, 1 / 60), size=4).astype(float)
    got = stats._weighted_f1(w, preds, gold, 5)
    for b in range(4):
        take = np.repeat(np.arange(60), w[b].astype(int))
        for run in range(2):
            direct = formulas.per_class_scores(formulas.confusion_matrix(preds[run][take],
                                                                         gold[take], 5))
            assert got[b, run].mean() == pytest.approx(direct["macro_f1"])
            assert got[b, run, 1] == pytest.approx(direct["1"]["f1"])


def test_paired_bootstrap_gives_f1_intervals_on_the_accuracy_draw():
    rng = np.random.default_rng(0)
    base = _dev(rng, 400, 0.6, 1.0)
    better = {t: DevTask(d.ids, d.gold, d.gold.copy()) for t, d in base.items()}  # all right
    aligned = stats.align_dev([base, better])
    reps = stats.bootstrap_scores(aligned, n_boot=200, seed=0)
    point = stats.point_scores(aligned)
    assert point["sst_macro_f1"][1] == 1.0 and point["para_f1"][1] == 1.0
    for metric in ("sst_macro_f1", "para_f1"):
        assert reps[metric].shape == (200, 2)
        gain = stats.bootstrap_interval(reps[metric], [1], [0])
        assert 0 < gain.low < point[metric][1] - point[metric][0] < gain.high
    # F1 is scored on SST's own draw: the accuracy replicates are those of one multinomial
    # draw per task in task order (sst first), as before F1 was added (intervals reproduce)
    n = aligned["sst"][0].size
    w = np.random.default_rng(0).multinomial(n, np.full(n, 1 / n), size=100).astype(float)
    right = (aligned["sst"][1] == aligned["sst"][0][None, :]).astype(float)
    np.testing.assert_allclose(reps["sst_accuracy"][:100], w @ right.T / n)
    f1 = stats._weighted_f1(w, aligned["sst"][1], aligned["sst"][0], 5).mean(axis=-1)
    np.testing.assert_allclose(reps["sst_macro_f1"][:100], f1)
