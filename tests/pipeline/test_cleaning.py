import pandas as pd

from minbert.tasks import TASKS
from pipeline.cleaning import drop_exact_duplicates, find_label_conflicts, find_leakage

SST, STS = TASKS["sst"], TASKS["sts"]


def sst(rows):
    return pd.DataFrame(rows, columns=["id", "sentence", "label"])


def sts(rows):
    return pd.DataFrame(rows, columns=["id", "sentence1", "sentence2", "label"])


def test_exact_duplicates_keep_the_first_copy():
    kept, dups = drop_exact_duplicates(sst([("a", "Good .", 3), ("b", "good  .", 3),
                                            ("c", "Bad .", 0)]), SST)
    assert kept["id"].tolist() == ["a", "c"]
    assert dups["id"].tolist() == ["b"] and dups["kept_id"].tolist() == ["a"]


def test_same_text_with_other_label_is_a_conflict_not_a_duplicate():
    kept, conflicts = find_label_conflicts(sst([("a", "Good .", 3), ("b", "good .", 4),
                                                ("c", "Bad .", 0)]), SST)
    assert kept["id"].tolist() == ["c"]
    assert sorted(conflicts["id"]) == ["a", "b"]


def test_pair_duplicates_ignore_order():
    kept, dups = drop_exact_duplicates(sts([("a", "x", "y", 2.0), ("b", "Y", "x", 2.0)]), STS)
    assert kept["id"].tolist() == ["a"] and dups["id"].tolist() == ["b"]


def test_leakage_finds_train_rows_present_in_dev_or_test():
    train = sts([("a", "x", "y", 2.0), ("b", "p", "q", 1.0), ("c", "m", "n", 3.0)])
    dev = sts([("d", "Y", "X", 4.0)])
    test = sts([("e", "n", "m", 0.0)]).drop(columns="label")
    kept, leaked = find_leakage(train, {"dev": dev, "test": test}, STS)
    assert kept["id"].tolist() == ["b"]
    assert dict(zip(leaked["id"], leaked["leaked_into"])) == {"a": "dev", "c": "test"}


def test_rules_on_empty_tables():
    empty = sst([])
    assert drop_exact_duplicates(empty, SST)[0].empty
    assert find_leakage(empty, {"dev": empty}, SST)[1].empty
