import pandas as pd
import pytest

from train.backbone import load_tokenizer
from train.data import check_table, encode_rows, limit_rows, task_batch, token_lengths

from .tiny import task_tables, write_backbone


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return load_tokenizer(write_backbone(tmp_path_factory.mktemp("bb")), max_length=8)


def test_check_table_names_file_column_and_row():
    df = task_tables(4)["sts"]
    check_table("sts", df, "x.parquet")
    with pytest.raises(ValueError, match=r"x.parquet: missing column\(s\) \['label'\]"):
        check_table("sts", df.drop(columns="label"), "x.parquet")
    bad = df.assign(label=[1.0, 7.5, 2.0, 3.0])
    with pytest.raises(ValueError, match="label 7.5 of row id '0-0001' is not in"):
        check_table("sts", bad, "x.parquet")
    empty_text = df.assign(sentence2=["a", " ", "b", "c"])
    with pytest.raises(ValueError, match="empty sentence2 in row id '0-0001'"):
        check_table("sts", empty_text, "x.parquet")
    with pytest.raises(ValueError, match="no rows"):
        check_table("sst", task_tables(4)["sst"].iloc[:0], "x.parquet")
    with pytest.raises(ValueError, match=r"label nan of row id '0-0001' is not in \[0, 1\]"):
        check_table("para", task_tables(3)["para"].astype({"label": object}).assign(
            label=[0, None, 1]), "x.parquet")


def test_limit_rows_is_a_seeded_sample():
    df = pd.DataFrame({"id": [str(i) for i in range(10)]})
    assert len(limit_rows(df, 0, 1)) == 10 and len(limit_rows(df, 20, 1)) == 10
    assert limit_rows(df, 4, 1).equals(limit_rows(df, 4, 1))
    assert len(limit_rows(df, 4, 1)) == 4


def test_pair_layouts_and_lengths(tokenizer):
    df = pd.DataFrame({"id": ["a", "b"], "sentence1": ["the dog", "what is a cat"],
                       "sentence2": ["a red car", "cat"], "label": [1, 0]})
    bi = encode_rows(tokenizer, "para", df, cross=False)
    assert bi["input_ids"].shape == (4, 6)  # 2 first + 2 second sentences, [CLS] .. [SEP]
    cross = encode_rows(tokenizer, "para", df, cross=True)
    assert cross["input_ids"].shape[0] == 2 and cross["token_type_ids"].max() == 1
    assert token_lengths(tokenizer, "para", df, cross=False).tolist() == [5, 6]
    assert token_lengths(tokenizer, "para", df, cross=True).tolist() == [8, 8]  # truncated
    batch = task_batch(tokenizer, "para", df, cross=False)
    assert batch["labels"].tolist() == [1, 0]
