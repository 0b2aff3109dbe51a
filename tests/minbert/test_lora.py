"""LoRA: identity at init, merge == unmerged, only adapters train, fused-QKV blocks."""

import copy

import pytest
import torch

from minbert.bert import BertConfig, BertModel
from minbert.lora import LoRALinear, apply_lora, merge_lora

CONFIG = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=64, max_position_embeddings=32)
TARGETS = ("query", "value", "attention.output.dense", "intermediate.dense")


def base_model(seed=0):
    torch.manual_seed(seed)
    return BertModel(CONFIG).eval()


def batch(seed=1):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, 100, (3, 9), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, 5:] = 0
    return input_ids, attention_mask


def hidden(model):
    with torch.no_grad():
        return model(*batch())["last_hidden_state"]


def perturb_adapters(model, seed=2):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)


def test_outputs_equal_base_model_at_init():
    base = base_model()
    model = copy.deepcopy(base)
    adapted = apply_lora(model, rank=4, alpha=8, dropout=0.0, targets=TARGETS)
    assert len(adapted) == 2 * 3  # qkv, attention.output.dense, intermediate.dense per layer
    torch.testing.assert_close(hidden(model), hidden(base), atol=0, rtol=0)


def test_outputs_equal_base_model_at_init_with_dropout_in_eval():
    base = base_model()
    lora = copy.deepcopy(base)
    apply_lora(lora, rank=4, alpha=8, dropout=0.5, targets=TARGETS)
    torch.testing.assert_close(hidden(lora.eval()), hidden(base), atol=0, rtol=0)


def test_only_adapters_require_grad_and_only_they_change():
    model = base_model()
    apply_lora(model, rank=4, alpha=8, dropout=0.1, targets=TARGETS)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if "lora_" not in k}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()(*batch())["pooler_output"].sum().backward()
    optimizer.step()
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in frozen.items())
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if ".lora_B." in n)


def test_merge_gives_the_same_outputs_without_adapters():
    model = base_model()
    apply_lora(model, rank=4, alpha=8, dropout=0.1, targets=TARGETS)
    perturb_adapters(model)
    before = hidden(model.eval())
    assert not torch.allclose(before, hidden(base_model()), atol=1e-3)
    assert merge_lora(model) == 6
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert set(model.state_dict()) == set(base_model().state_dict())
    torch.testing.assert_close(hidden(model), before, atol=1e-5, rtol=0)


def test_key_target_adapts_only_the_key_rows_of_fused_qkv():
    model = base_model()
    apply_lora(model, rank=2, alpha=2, dropout=0.0, targets=("key",))
    perturb_adapters(model)
    qkv = model.encoder.layer[0].attention.self.qkv
    assert isinstance(qkv, LoRALinear) and list(qkv.lora_blocks) == ["key"]
    x = torch.randn(2, 5, CONFIG.hidden_size)
    with torch.no_grad():
        change = qkv(x) - torch.nn.functional.linear(x, qkv.weight, qkv.bias)
    h = CONFIG.hidden_size
    assert change[..., :h].abs().max() == 0 and change[..., 2 * h:].abs().max() == 0
    assert change[..., h:2 * h].abs().max() > 0


def test_state_dict_keeps_hugging_face_names_under_lora():
    model = base_model()
    apply_lora(model, rank=2, alpha=4, dropout=0.0, targets=("query",))
    names = set(model.state_dict())
    assert "encoder.layer.0.attention.self.query.weight" in names
    assert set(base_model().state_dict()) <= names


def test_unknown_target_is_an_error():
    with pytest.raises(ValueError, match=r"\['attention.self.rotary'\]"):
        apply_lora(base_model(), rank=4, alpha=8, dropout=0.0,
                   targets=("query", "attention.self.rotary"))


def test_bad_rank_is_an_error():
    with pytest.raises(ValueError, match="rank >= 1"):
        apply_lora(base_model(), rank=0, alpha=8, dropout=0.0, targets=("query",))
