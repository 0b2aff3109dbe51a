import pandas as pd
import pytest

from pipeline.balance import balance_task, class_target


def sst_table(counts):
    rows = [(f"{c}-{i}", f"s {c} {i}", c) for c, n in counts.items() for i in range(n)]
    return pd.DataFrame(rows, columns=["id", "sentence", "label"])


def test_target_is_largest_class_capped():
    assert class_target({"a": 5, "b": 9}, 100) == 9
    assert class_target({"a": 5, "b": 9}, 7) == 7
    with pytest.raises(ValueError, match="max_per_class"):
        class_target({"a": 1}, 0)


def test_large_classes_are_down_sampled_small_ones_kept():
    table = sst_table({0: 3, 1: 10, 2: 6, 3: 1, 4: 8})
    balanced, plan = balance_task(table, "sst", max_per_class=6, seed=1)
    assert plan["target"] == 6
    assert {c: v["real"] for c, v in plan["classes"].items()} == \
        {"0": 3, "1": 6, "2": 6, "3": 1, "4": 6}
    assert plan["classes"]["1"]["clean"] == 10
    assert balanced["label"].value_counts().to_dict() == {1: 6, 2: 6, 4: 6, 0: 3, 3: 1}
    assert set(balanced["id"]) <= set(table["id"])


def test_down_sampling_is_seeded():
    table = sst_table({0: 20, 1: 20, 2: 20, 3: 20, 4: 20})
    a, _ = balance_task(table, "sst", 5, seed=3)
    b, _ = balance_task(table, "sst", 5, seed=3)
    c, _ = balance_task(table, "sst", 5, seed=4)
    assert a.equals(b) and not a.equals(c)


def test_sts_uses_score_bins():
    table = pd.DataFrame({"id": list("abcdef"), "sentence1": list("abcdef"),
                          "sentence2": list("uvwxyz"), "label": [0.2, 0.9, 1.0, 4.0, 5.0, 3.5]})
    _, plan = balance_task(table, "sts", 10, seed=0)
    assert {c: v["real"] for c, v in plan["classes"].items()} == \
        {"0-1": 2, "1-2": 1, "2-3": 0, "3-4": 1, "4-5": 2}
    assert plan["target"] == 2


def test_balance_failing_half_way_keeps_the_last_good_outputs(tmp_path, monkeypatch):
    import json

    from pipeline import prepare
    from pipeline.balance import BalanceParams, run
    from tests.course_data import write_course_files
    from tests.pipeline.test_accounting import params_for

    clean, out = tmp_path / "clean", tmp_path / "balanced"
    prepare.run(params_for(write_course_files(tmp_path / "raw")), clean)
    run(BalanceParams(max_per_class=4, seed=1), clean, out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real, calls = pd.DataFrame.to_parquet, []

    def to_parquet(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # sst written, para fails
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)
    with pytest.raises(OSError, match="No space left"):
        run(BalanceParams(max_per_class=2, seed=1), clean, out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert json.loads((out / "plan.json").read_text())["sst"]["target"] == 4


def test_a_per_task_cap_balances_each_task_with_its_own_cap(tmp_path):
    from pipeline import prepare
    from pipeline.balance import BalanceParams, run
    from tests.course_data import write_course_files
    from tests.pipeline.test_accounting import params_for

    clean = tmp_path / "clean"
    prepare.run(params_for(write_course_files(tmp_path / "raw")), clean)
    uncapped = run(BalanceParams(max_per_class=100000, seed=1), clean, tmp_path / "all")
    plan = run(BalanceParams(max_per_class={"sst": 100000, "para": 2, "sts": 1}, seed=1),
               clean, tmp_path / "mixed")
    assert plan["sst"] == uncapped["sst"]  # all of SST, the largest class as target
    assert plan["sst"]["target"] > 2
    assert plan["para"]["target"] == 2 and plan["sts"]["target"] == 1
    for task, cap in (("para", 2), ("sts", 1)):
        assert all(c["real"] <= cap for c in plan[task]["classes"].values())
    assert BalanceParams(max_per_class=7, seed=0).cap("sts") == 7


def test_a_per_task_cap_must_name_every_task(tmp_path):
    from minbert.params import from_dict
    from pipeline.balance import BalanceParams

    with pytest.raises(ValueError, match=r"names every task \(sst, para, sts\), got sst"):
        from_dict(BalanceParams, {"max_per_class": {"sst": 5}, "seed": 1}, "balance")
    with pytest.raises(ValueError, match=r"balance.max_per_class.para must be at least 1"):
        class_target({"a": 3}, 0, "para")
    params = from_dict(BalanceParams, {"max_per_class": {"sst": 5, "para": 6, "sts": 7},
                                       "seed": 1}, "balance")
    assert [params.cap(t) for t in ("sst", "para", "sts")] == [5, 6, 7]
