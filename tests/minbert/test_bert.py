"""Golden tests: our BertModel == transformers.BertModel with the same weights (fp32, eval)."""

import json

import pytest
import torch

from minbert.backbone import resolve_backbone
from minbert.bert import BertConfig, BertModel, CheckpointError, dynamic_shape_attention

SMALL = dict(vocab_size=120, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=128, max_position_embeddings=40)
BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, max_position_embeddings=512)


def hf_model(directory=None, **config):
    transformers = pytest.importorskip("transformers")
    if directory is not None:
        model = transformers.BertModel.from_pretrained(str(directory), attn_implementation="sdpa")
    else:
        torch.manual_seed(0)
        hf_config = transformers.BertConfig(**config, attn_implementation="sdpa")
        model = transformers.BertModel(hf_config)
    return model.eval()


def padded_batch(vocab_size, lengths=(11, 7, 3, 11), seed=1):
    """Random ids with padding (rows shorter than the longest) and two segments in row 0."""
    generator = torch.Generator().manual_seed(seed)
    seq_len = max(lengths)
    input_ids = torch.randint(5, vocab_size, (len(lengths), seq_len), generator=generator)
    attention_mask = (torch.arange(seq_len)[None, :] < torch.tensor(lengths)[:, None]).long()
    input_ids = input_ids * attention_mask  # pad id 0
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[0, seq_len // 2:] = 1
    return input_ids, attention_mask, token_type_ids


def assert_same_outputs(ours, reference, vocab_size, atol=1e-5):
    input_ids, attention_mask, token_type_ids = padded_batch(vocab_size)
    with torch.no_grad():
        got = ours.eval()(input_ids, attention_mask, token_type_ids)
        want = reference(input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=token_type_ids)
    torch.testing.assert_close(got["last_hidden_state"], want.last_hidden_state, atol=atol, rtol=0)
    torch.testing.assert_close(got["pooler_output"], want.pooler_output, atol=atol, rtol=0)


@pytest.mark.slow
def test_golden_embedded_minilm_checkpoint():
    directory = resolve_backbone("minilm")
    ours = BertModel.from_pretrained(directory)
    assert ours.load_report.missing == () and ours.load_report.unexpected == ()
    assert_same_outputs(ours, hf_model(directory), ours.config.vocab_size)


def test_golden_small_random_config(tmp_path):
    reference = hf_model(**SMALL)
    reference.save_pretrained(tmp_path)
    ours = BertModel.from_pretrained(tmp_path)
    assert ours.load_report.missing == () and ours.load_report.unexpected == ()
    assert_same_outputs(ours, reference, SMALL["vocab_size"])


@pytest.mark.slow
def test_golden_random_bert_base(tmp_path):
    reference = hf_model(**BERT_BASE)
    reference.save_pretrained(tmp_path)
    ours = BertModel.from_pretrained(tmp_path)
    assert_same_outputs(ours, reference, BERT_BASE["vocab_size"])


def test_gradients_match_transformers(tmp_path):
    """Training mode without dropout: same loss gradients, fused QKV included."""
    reference = hf_model(**SMALL, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    reference.save_pretrained(tmp_path)
    ours = BertModel.from_pretrained(tmp_path).train()
    reference.train()
    input_ids, attention_mask, token_type_ids = padded_batch(SMALL["vocab_size"])
    ours(input_ids, attention_mask, token_type_ids)["pooler_output"].square().sum().backward()
    reference(input_ids=input_ids, attention_mask=attention_mask,
              token_type_ids=token_type_ids).pooler_output.square().sum().backward()
    ref_layer = reference.encoder.layer[0].attention.self
    grad_qkv = ours.encoder.layer[0].attention.self.qkv.weight.grad
    want = torch.cat([ref_layer.query.weight.grad, ref_layer.key.weight.grad,
                      ref_layer.value.weight.grad])
    torch.testing.assert_close(grad_qkv, want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.embeddings.word_embeddings.weight.grad,
                               reference.embeddings.word_embeddings.weight.grad,
                               atol=1e-5, rtol=1e-4)


def test_state_dict_uses_hugging_face_names_and_round_trips(tmp_path):
    ours = BertModel(BertConfig(**SMALL))
    names = set(ours.state_dict())
    assert "encoder.layer.1.attention.self.query.weight" in names
    assert not any(".qkv." in name for name in names)
    assert names == set(hf_model(**SMALL).state_dict())
    ours.save_pretrained(tmp_path)
    reloaded = hf_model(tmp_path)  # transformers reads what we save
    assert_same_outputs(ours, reloaded, SMALL["vocab_size"])
    copy = BertModel(BertConfig(**SMALL))
    copy.load_state_dict(ours.state_dict())  # strict: every key fits
    assert_same_outputs(copy, reloaded, SMALL["vocab_size"])


def test_inputs_embeds_skips_embedding():
    model = BertModel(BertConfig(**SMALL)).eval()
    input_ids, attention_mask, token_type_ids = padded_batch(SMALL["vocab_size"])
    with torch.no_grad():
        direct = model(input_ids, attention_mask, token_type_ids)
        embedded = model(None, attention_mask,
                         inputs_embeds=model.embed(input_ids, token_type_ids))
    torch.testing.assert_close(direct["last_hidden_state"], embedded["last_hidden_state"])


def test_bert_prefix_and_heads_in_bin_checkpoint(tmp_path):
    source = BertModel(BertConfig(**SMALL))
    state = {f"bert.{k}": v for k, v in source.state_dict().items()}
    state["cls.predictions.bias"] = torch.zeros(SMALL["vocab_size"])
    state["bert.embeddings.position_ids"] = torch.arange(40)[None]
    torch.save(state, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text(json.dumps(BertConfig(**SMALL).to_dict()))
    loaded = BertModel.from_pretrained(tmp_path)
    report = loaded.load_report
    assert report.missing == () and report.unexpected == ()
    assert set(report.ignored) == {"cls.predictions.bias", "bert.embeddings.position_ids"}
    input_ids, attention_mask, token_type_ids = padded_batch(SMALL["vocab_size"])
    with torch.no_grad():
        got = loaded.eval()(input_ids, attention_mask, token_type_ids)["last_hidden_state"]
        want = source.eval()(input_ids, attention_mask, token_type_ids)["last_hidden_state"]
    torch.testing.assert_close(got, want, atol=0, rtol=0)


def test_missing_and_unexpected_keys_are_reported(tmp_path, caplog):
    source = BertModel(BertConfig(**SMALL))
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("pooler.")}
    state["encoder.layer.0.attention.self.rotary.weight"] = torch.zeros(3)
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(BertConfig(**SMALL).to_dict()))
    with caplog.at_level("WARNING"):
        report = BertModel.from_pretrained(tmp_path).load_report
    assert report.missing == ("pooler.dense.bias", "pooler.dense.weight")
    assert report.unexpected == ("encoder.layer.0.attention.self.rotary.weight",)
    assert "pooler.dense.weight" in caplog.text


def test_dropout_overrides():
    model = BertModel.from_pretrained(resolve_backbone("minilm"), hidden_dropout_prob=0.0,
                                      attention_probs_dropout_prob=0.2)
    assert model.config.hidden_dropout_prob == 0.0
    assert model.encoder.layer[0].attention.self.dropout_p == 0.2


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        BertModel.from_pretrained(tmp_path / "nope")


def test_missing_config_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="config.json"):
        BertModel.from_pretrained(tmp_path)


def test_missing_weights_names_the_files(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(BertConfig(**SMALL).to_dict()))
    with pytest.raises(CheckpointError, match="model.safetensors"):
        BertModel.from_pretrained(tmp_path)


def test_other_architecture_is_rejected(tmp_path):
    config = {**BertConfig(**SMALL).to_dict(), "model_type": "roberta",
              "architectures": ["RobertaModel"]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="not a BERT checkpoint"):
        BertModel.from_pretrained(tmp_path)


def test_config_missing_key_is_named(tmp_path):
    config = BertConfig(**SMALL).to_dict()
    del config["hidden_size"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="hidden_size"):
        BertModel.from_pretrained(tmp_path)


def test_weights_of_another_shape_are_rejected(tmp_path):
    BertModel(BertConfig(**SMALL)).save_pretrained(tmp_path)
    bigger = {**BertConfig(**SMALL).to_dict(), "intermediate_size": 256}
    (tmp_path / "config.json").write_text(json.dumps(bigger))
    with pytest.raises(CheckpointError, match=r"intermediate\.dense\.(weight|bias) has shape"):
        BertModel.from_pretrained(tmp_path)


def test_sequence_longer_than_positions_is_an_error():
    model = BertModel(BertConfig(**SMALL))
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(torch.ones(1, 41, dtype=torch.long), torch.ones(1, 41, dtype=torch.long))


def test_autocast_float32_residual_matches_transformers_autocast():
    directory = resolve_backbone("minilm")
    ours = BertModel.from_pretrained(directory).eval()
    ours.set_residual_dtype("float32")
    reference = hf_model(directory)
    input_ids, attention_mask, token_type_ids = padded_batch(ours.config.vocab_size)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        got = ours(input_ids, attention_mask, token_type_ids)["last_hidden_state"]
        want = reference(input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=token_type_ids).last_hidden_state
    assert got.dtype == want.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_autocast_bf16_residual_stays_close_to_fp32():
    model = BertModel.from_pretrained(resolve_backbone("minilm")).eval()  # default "autocast"
    input_ids, attention_mask, token_type_ids = padded_batch(model.config.vocab_size)
    with torch.no_grad():
        exact = model(input_ids, attention_mask, token_type_ids)["last_hidden_state"]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = model(input_ids, attention_mask, token_type_ids)["last_hidden_state"]
    assert fast.dtype == torch.bfloat16
    relative = (fast.float() - exact).norm() / exact.norm()
    assert relative < 0.03  # bf16 rounding only (transformers' autocast: ~0.01 here)


def test_unknown_residual_dtype_is_rejected():
    with pytest.raises(ValueError, match="residual_dtype"):
        BertModel(BertConfig(**SMALL), residual_dtype="float16")


@pytest.mark.slow
def test_compiled_model_is_one_graph_and_matches_eager():
    model = BertModel(BertConfig(**SMALL)).eval()
    compiled = torch.compile(model, fullgraph=True)  # a graph break would raise
    input_ids, attention_mask, token_type_ids = padded_batch(SMALL["vocab_size"])
    with torch.no_grad():
        want = model(input_ids, attention_mask, token_type_ids)["last_hidden_state"]
        got = compiled(input_ids, attention_mask, token_type_ids)["last_hidden_state"]
        unpadded = compiled(input_ids, torch.ones_like(attention_mask))["last_hidden_state"]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert unpadded.shape == want.shape


def test_corrupt_weights_file_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(BertConfig(**SMALL).to_dict()))
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read model.safetensors"):
        BertModel.from_pretrained(tmp_path)


def test_dynamic_shape_attention_skips_cudnn_on_cuda_only():
    # SDPA's backend switches are process-wide flags: no GPU is needed to check them
    assert torch.backends.cuda.cudnn_sdp_enabled()
    with dynamic_shape_attention(torch.device("cpu")):
        assert torch.backends.cuda.cudnn_sdp_enabled()  # CPU runs are left exactly as they were
    with dynamic_shape_attention(torch.device("cuda")):
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled()
        assert torch.backends.cuda.mem_efficient_sdp_enabled()
    assert torch.backends.cuda.cudnn_sdp_enabled()  # restored on exit


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_dynamic_shape_attention_matches_default_kernels_on_cuda():
    torch.manual_seed(0)
    config = BertConfig(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=256)
    model = BertModel(config).cuda().eval()
    ids = torch.randint(1000, config.vocab_size, (4, 37), device="cuda")
    mask = torch.ones_like(ids)
    mask[1, 20:] = 0
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        default = model(ids, mask)["last_hidden_state"].float()
        with dynamic_shape_attention(torch.device("cuda")):
            dynamic = model(ids, mask)["last_hidden_state"].float()
    assert (default - dynamic).abs().max() < 0.05  # bf16 kernels differ in rounding only
