import pandas as pd
import pytest

from augment.requests import (
    PlanError,
    goal_rows,
    paraphrase_requests,
    rows_needed,
    source_order,
    stable_seed,
)

PLAN = {"classes": {"0": {"real": 1000, "target": 1000}, "1": {"real": 600, "target": 1000},
                    "2": {"real": 0, "target": 1000}}}


def test_ratio_zero_asks_for_nothing():
    assert rows_needed(PLAN, 0) == {"0": 0, "1": 0, "2": 0}


def test_ratio_one_tops_up_to_the_target():
    assert rows_needed(PLAN, 1) == {"0": 0, "1": 400, "2": 1000}


def test_ratio_ten_is_ten_times_the_target_minus_real_rows():
    assert rows_needed(PLAN, 10) == {"0": 9000, "1": 9400, "2": 10000}


def test_fractional_ratio_rounds_half_up_and_never_goes_negative():
    assert goal_rows(5, 0.5) == 3  # Python's round(2.5) would give 2
    assert rows_needed({"classes": {"a": {"real": 10, "target": 10}}}, 0.5) == {"a": 0}


def test_negative_ratio_is_an_error():
    with pytest.raises(ValueError, match="ratio"):
        goal_rows(10, -1)


def test_malformed_plan_names_the_class_and_key():
    with pytest.raises(PlanError, match="class '1' has no integer 'target'"):
        rows_needed({"classes": {"1": {"real": 3}}}, 1, where="plan")
    with pytest.raises(PlanError, match="missing 'classes'"):
        rows_needed({}, 1)


def test_source_order_is_seeded_and_independent_of_input_order():
    ids = pd.Series([f"id{i}" for i in range(20)])
    a = source_order(ids, 7, "sst", "0")
    assert a == source_order(ids[::-1], 7, "sst", "0")
    assert sorted(a) == sorted(ids)
    assert a != source_order(ids, 8, "sst", "0")
    assert a != source_order(ids, 7, "sst", "1")


def test_stable_seed_is_stable():
    assert stable_seed(7, "sst", "0") == stable_seed(7, "sst", "0") != stable_seed(7, "sst", "1")


def _pairs(n: int) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)],
                         "sentence1": [f"a{i}" for i in range(n)],
                         "sentence2": [f"b{i}" for i in range(n)], "label": [1] * n})


def test_requests_round_robin_with_sample_index():
    real = pd.DataFrame({"id": ["x", "y", "z"], "sentence": ["sx", "sy", "sz"], "label": [2] * 3})
    req = paraphrase_requests("sst", real, ["y", "z", "x"], 0, 7)
    assert list(req["source_id"]) == ["y", "z", "x", "y", "z", "x", "y"]
    assert list(req["sample"]) == [0, 0, 0, 1, 1, 1, 2]
    assert set(req["side"]) == {"sentence"}
    assert list(req["source_text"][:3]) == ["sy", "sz", "sx"]
    assert list(req["label"]) == [2] * 7


def test_pair_requests_alternate_sides_across_rows_and_samples():
    order = ["r0", "r1", "r2", "r3"]
    req = paraphrase_requests("para", _pairs(4), order, 0, 8)
    assert list(req["side"][:4]) == ["sentence1", "sentence2"] * 2
    assert list(req["side"][4:]) == ["sentence2", "sentence1"] * 2  # sample 1 flips each row
    first = req.iloc[0]
    assert first["source_text"] == "a0" and req.iloc[1]["source_text"] == "b1"


def test_raising_the_ratio_only_appends_requests():
    order = [f"r{i}" for i in range(5)]
    small = paraphrase_requests("sts", _pairs(5), order, 0, 6)
    large = paraphrase_requests("sts", _pairs(5), order, 0, 13)
    pd.testing.assert_frame_equal(small, large.iloc[:6])
    tail = paraphrase_requests("sts", _pairs(5), order, 6, 13)
    pd.testing.assert_frame_equal(tail.reset_index(drop=True),
                                  large.iloc[6:].reset_index(drop=True))


def test_no_requests_without_real_rows():
    assert paraphrase_requests("sst", _pairs(0).rename(columns={"sentence1": "sentence"}),
                               [], 0, 5).empty
