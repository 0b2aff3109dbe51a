"""The cross-fitted label probe (augment.probe) on synthetic features."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from augment.probe import LabelProbe, pair_features


def _ids(n):
    return [f"r{i}" for i in range(n)]


def test_out_of_fold_probabilities_do_not_memorise_the_rows():
    # random labels: a probe fitted on all rows memorises them, an out-of-fold one cannot
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 200)), rng.integers(0, 2, 60)
    probe = LabelProbe.fit(x, y, _ids(60), folds=5, c=100.0, seed=1)
    out_of_fold = probe.gold_probability(x, _ids(60), y)
    in_sample = LogisticRegression(C=100.0, max_iter=2000).fit(x, y).predict_proba(x)
    assert in_sample[np.arange(60), y].mean() > 0.95
    assert abs(out_of_fold.mean() - 0.5) < 0.15


def test_a_learnable_label_is_learned_out_of_fold():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], 20)
    x = rng.normal(size=(60, 8)) + 3 * np.eye(8)[y]  # class k shifted along axis k
    probe = LabelProbe.fit(x, y, _ids(60), folds=5, c=1.0, seed=1)
    assert np.nanmean(probe.gold_probability(x, _ids(60), y)) > 0.8
    wrong = (y + 1) % 3
    assert np.nanmean(probe.gold_probability(x, _ids(60), wrong)) < 0.1


def test_every_row_belongs_to_exactly_one_fold():
    rng = np.random.default_rng(2)
    probe = LabelProbe.fit(rng.normal(size=(30, 4)), np.repeat([0, 1], 15), _ids(30), folds=5,
                           c=1.0, seed=3)
    assert set(probe.fold_of) == set(_ids(30)) == probe.fitted_ids
    assert sorted(set(probe.fold_of.values())) == list(range(5)) == list(range(len(probe.models)))


def test_an_unknown_source_or_a_single_class_gives_no_probability():
    x = np.eye(4)
    assert np.isnan(LabelProbe.fit(x, [1, 1, 1, 1], _ids(4), folds=2, c=1.0, seed=0)
                    .gold_probability(x, _ids(4), [1] * 4)).all()
    probe = LabelProbe.fit(np.eye(6), [0, 0, 0, 1, 1, 1], _ids(6), folds=3, c=1.0, seed=0)
    assert np.isnan(probe.gold_probability(np.eye(6)[:1], ["not-a-real-row"], [0])).all()


def test_pair_features_are_u_v_difference_and_product():
    u, v = np.array([[1.0, 0.0]]), np.array([[0.6, 0.8]])
    assert pair_features(u, v)[0].tolist() == pytest.approx([1, 0, 0.6, 0.8, 0.4, 0.8, 0.6, 0])
