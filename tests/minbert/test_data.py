import pandas as pd
import pytest

from minbert.backbone import load_tokenizer
from minbert.data import check_table, encode_rows, limit_rows, task_batch, token_lengths
from tests.train.tiny import task_tables, write_backbone


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


def augmented_sst() -> pd.DataFrame:
    """Two real rows and two paraphrases of the first one, with provenance."""
    return pd.DataFrame({
        "id": ["r1", "r2", "syn-a", "syn-b"],
        "sentence": ["a good film", "a bad film", "a fine film", "a good movie"],
        "label": [3, 1, 3, 3],
        "origin": ["real", "real", "synthetic", "synthetic"],
        "source_id": ["r1", "r2", "r1", "r1"],
    })


def test_row_weights_weight_only_synthetic_rows():
    from minbert.data import row_weights

    table = augmented_sst()
    assert row_weights(table, 0.25).tolist() == [1.0, 1.0, 0.25, 0.25]
    assert row_weights(table, 1.0) is None  # weight 1: the plain, unweighted loss
    assert row_weights(table.drop(columns="origin"), 0.25) is None  # no provenance: all real


def test_source_groups_join_a_paraphrase_and_its_source():
    from minbert.data import group_codes, simcse_sentences, source_keys

    table = augmented_sst()
    codes = group_codes(source_keys(table))
    assert codes[0] == codes[2] == codes[3] != codes[1]
    assert len(set(group_codes(source_keys(table.drop(columns="source_id"))))) == 4  # own ids
    sts = pd.DataFrame({"id": ["s1", "syn-s"], "sentence1": ["a cat runs", "a cat is running"],
                        "sentence2": ["a dog sleeps", "a dog sleeps"], "label": [1.0, 1.0],
                        "source_id": ["s1", "s1"]})
    sentences = simcse_sentences(table, sts)
    assert sentences["sentence"].is_unique and len(sentences) == 4 + 3  # "a dog sleeps" once
    group = dict(zip(sentences["sentence"], sentences["group"], strict=True))
    assert group["a cat is running"] == group["a cat runs"] != group["a dog sleeps"]
    assert group["a fine film"] == group["a good film"] != group["a bad film"]
