import pytest
import torch
from torch import nn

from minbert.smart import SmartSettings, divergence, smart_regularizer, symmetric_kl, with_smart


class Counting(nn.Module):
    """(B, T, H) embeddings -> (B, C) logits, counting its calls."""

    def __init__(self, classes=3):
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(4, classes)
        self.calls = 0

    def forward(self, emb):
        self.calls += 1
        return self.proj(torch.tanh(emb).mean(1))


def setup(classes=3):
    model = Counting(classes)
    emb = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    out = model(emb)
    return model, emb, out


def test_weight_zero_is_the_base_loss_and_skips_extra_passes():
    model, emb, out = setup()
    base = nn.functional.cross_entropy(out, torch.tensor([0, 2]))
    total = with_smart(base, model, emb, out, "classification", SmartSettings(weight=0.0))
    assert total is base
    assert model.calls == 1


def test_positive_weight_adds_a_nonnegative_regularizer_with_extra_passes():
    model, emb, out = setup()
    base = nn.functional.cross_entropy(out, torch.tensor([0, 2]))
    settings = SmartSettings(weight=1.0, epsilon=0.5, step_size=0.5, steps=2, noise_std=0.1)
    total = with_smart(
        base, model, emb, out, "classification", settings, torch.Generator().manual_seed(0)
    )
    assert model.calls == 1 + settings.steps + 1
    assert total.item() > base.item()
    total.backward()
    assert emb.grad is not None and model.proj.weight.grad is not None


def test_perturbation_stays_in_the_inf_norm_ball():
    seen = []
    model = Counting()

    def forward(e):
        seen.append(e.detach().clone())
        return model(e)

    emb = torch.randn(2, 5, 4)
    settings = SmartSettings(weight=1.0, epsilon=0.01, step_size=1.0, steps=3, noise_std=0.5)
    smart_regularizer(
        forward, emb, model(emb), "classification", settings, torch.Generator().manual_seed(0)
    )
    for e in seen[1:]:  # every ascent step and the final point
        assert (e - emb).abs().max() <= 0.01 + 1e-7


def test_divergences():
    p = torch.tensor([[2.0, 0.0]])
    assert symmetric_kl(p, p).item() == pytest.approx(0.0, abs=1e-7)
    q = torch.tensor([[0.0, 0.0]])
    # KL(p||q) + KL(q||p) = sum (p_i - q_i)(log p_i - log q_i)
    pp, qq = p.softmax(-1)[0], q.softmax(-1)[0]
    expected = ((pp - qq) * (pp.log() - qq.log())).sum().item()
    assert symmetric_kl(p, q).item() == pytest.approx(expected, rel=1e-5)
    # a single binary logit is a Bernoulli
    assert symmetric_kl(torch.tensor([2.0]), torch.tensor([0.0])).item() == pytest.approx(
        expected, rel=1e-5
    )
    assert (
        divergence("regression", torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])).item() == 2.5
    )
    with pytest.raises(ValueError, match="unknown SMART output kind"):
        divergence("ranking", p, q)
