"""Metric formulas against hand-computed values and scipy / scikit-learn references."""

import numpy as np
import pytest
from scipy import stats

from minbert import metrics


def test_overall_maps_pearson_to_unit_interval():
    assert metrics.overall_score(0.5, 0.8, 0.2) == pytest.approx((0.5 + 0.8 + 0.6) / 3)


def test_confusion_matrix_rows_are_gold_columns_are_predicted():
    matrix = metrics.confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 0, 1, 2]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_confusion_matrix_rejects_out_of_range_class():
    with pytest.raises(ValueError, match="predictions outside 0..1"):
        metrics.confusion_matrix(np.array([2]), np.array([0]), 2)


def test_per_class_scores_by_hand():
    # gold 0: predicted 0,0,1 ; gold 1: predicted 1 ; class 2 never predicted nor present
    matrix = metrics.confusion_matrix(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1]), 3)
    scores = metrics.per_class_scores(matrix)
    assert scores["0"] == {"precision": 1.0, "recall": pytest.approx(2 / 3),
                           "f1": pytest.approx(0.8), "support": 3}
    assert scores["1"]["precision"] == 0.5 and scores["1"]["recall"] == 1.0
    assert scores["2"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert scores["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 0.0) / 3)


def test_per_class_scores_match_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    gold, pred = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    scores = metrics.per_class_scores(metrics.confusion_matrix(pred, gold, 5))
    p, r, f, s = sklearn_metrics.precision_recall_fscore_support(
        gold, pred, labels=range(5), zero_division=0)
    for k in range(5):
        assert scores[str(k)]["precision"] == pytest.approx(p[k])
        assert scores[str(k)]["recall"] == pytest.approx(r[k])
        assert scores[str(k)]["f1"] == pytest.approx(f[k])
        assert scores[str(k)]["support"] == s[k]


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 6, 100).astype(float)  # many ties, like STS scores
    pred = gold + rng.normal(0, 2, 100)
    assert metrics.spearman(pred, gold) == pytest.approx(stats.spearmanr(pred, gold).statistic)


def test_pearson_matches_scipy_and_is_zero_for_constant_predictions():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert metrics.pearson(a, b) == pytest.approx(stats.pearsonr(a, b).statistic)
    assert metrics.pearson(np.ones(5), np.arange(5)) == 0.0


def test_mse_and_mae():
    assert metrics.mse(np.array([1.0, 3.0]), np.array([2.0, 1.0])) == pytest.approx(2.5)
    assert metrics.mae(np.array([1.0, 3.0]), np.array([2.0, 1.0])) == pytest.approx(1.5)
