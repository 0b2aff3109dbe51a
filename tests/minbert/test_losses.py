import math

import pytest
import torch

from minbert.losses import (
    in_batch_infonce,
    mnrl_from_encoder,
    mnrl_loss,
    simcse_from_encoder,
    simcse_loss,
)

ALIGNED = torch.tensor([[1.0, 0.0], [0.0, 1.0]])


def test_aligned_pairs_scale_one_matches_hand_value():
    # cos = identity -> each row: -log(e^1 / (e^1 + e^0))
    assert in_batch_infonce(ALIGNED, ALIGNED, 1.0).item() == pytest.approx(
        math.log(1 + math.exp(-1)), rel=1e-6
    )


def test_mnrl_aligned_pairs_is_near_its_minimum():
    loss = mnrl_loss(ALIGNED * 3.0, ALIGNED, scale=20.0)  # cosine ignores the norm
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-20)), abs=1e-7)
    assert loss.item() < 1e-8


def test_swapped_pairs_are_penalized():
    swapped = ALIGNED.flip(0)
    # each anchor's positive is orthogonal, the negative aligned -> -log(e^0/(e^0+e^1))
    assert mnrl_loss(ALIGNED, swapped, scale=1.0).item() == pytest.approx(
        math.log(1 + math.e), rel=1e-6
    )


def test_simcse_uses_inverse_temperature():
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # scores = (1/0.5) * cos: row0 [2, 0], row1 [1.2, 1.6]
    expected = 0.5 * (
        -math.log(math.exp(2) / (math.exp(2) + 1))
        - math.log(math.exp(1.6) / (math.exp(1.2) + math.exp(1.6)))
    )
    assert simcse_loss(a, b, temperature=0.5).item() == pytest.approx(expected, rel=1e-6)


def test_bad_shapes_and_temperature_raise():
    with pytest.raises(ValueError, match="must both be"):
        in_batch_infonce(torch.zeros(2, 3), torch.zeros(3, 3), 1.0)
    with pytest.raises(ValueError, match="temperature"):
        simcse_loss(ALIGNED, ALIGNED, temperature=0.0)


def test_wrappers_call_the_encoder_as_documented():
    calls = []

    def embed(inputs):
        calls.append(inputs["x"].shape[0])
        return inputs["x"]

    x = torch.cat([ALIGNED, ALIGNED])
    assert mnrl_from_encoder(embed, {"x": x}, scale=1.0).item() == pytest.approx(
        math.log(1 + math.exp(-1)), rel=1e-6
    )
    simcse_from_encoder(embed, {"x": ALIGNED}, temperature=1.0)
    assert calls == [4, 2, 2]  # one 2B batch for MNRL, two views for SimCSE


def test_gradient_pulls_positives_together():
    a = torch.tensor([[1.0, 0.2], [0.1, 1.0]], requires_grad=True)
    loss = mnrl_loss(a, ALIGNED, scale=5.0)
    loss.backward()
    moved = mnrl_loss(a.detach() - 0.1 * a.grad, ALIGNED, scale=5.0)
    assert moved < loss


def test_distinct_groups_and_unit_weights_equal_the_plain_loss():
    torch.manual_seed(0)
    a, p = torch.randn(5, 4), torch.randn(5, 4)
    plain = in_batch_infonce(a, p, 3.0)
    assert torch.equal(in_batch_infonce(a, p, 3.0, groups=torch.arange(5)), plain)
    assert in_batch_infonce(a, p, 3.0, weights=torch.ones(5)).item() == pytest.approx(
        plain.item(), rel=1e-6)


def test_rows_of_one_source_are_not_each_others_negatives():
    # rows 0 and 1 share a source: row 0's denominator keeps only p0 and p2 (not p1)
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]])
    groups = torch.tensor([7, 7, 3])
    scores = (a @ torch.nn.functional.normalize(p, dim=-1).T).tolist()
    row = [scores[0][0] - math.log(math.exp(scores[0][0]) + math.exp(scores[0][2])),
           scores[1][1] - math.log(math.exp(scores[1][1]) + math.exp(scores[1][2])),
           scores[2][2] - math.log(sum(math.exp(s) for s in scores[2]))]
    expected = -sum(row) / 3
    assert in_batch_infonce(a, p, 1.0, groups=groups).item() == pytest.approx(expected, rel=1e-6)
    assert in_batch_infonce(a, p, 1.0).item() > expected + 0.1  # the copy was a hard negative


def test_a_masked_row_gets_no_gradient_as_a_negative():
    torch.manual_seed(1)
    a = torch.randn(3, 4)
    for groups, touched in ((torch.tensor([0, 0, 1]), False), (None, True)):
        p = torch.randn(3, 4, generator=torch.Generator().manual_seed(2)).requires_grad_()
        only_row0 = torch.tensor([1.0, 0.0, 0.0])  # row 0's term alone
        in_batch_infonce(a, p, 1.0, groups=groups, weights=only_row0).backward()
        assert bool(p.grad[1].abs().sum() > 0) is touched  # p1 is row 0's negative?
        assert p.grad[2].abs().sum() > 0  # another source stays a negative


def test_row_weights_scale_each_term():
    a = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    per_row = [-math.log(math.exp(1) / (math.exp(1) + 1)),
               -math.log(math.exp(0.8) / (math.exp(0.6) + math.exp(0.8)))]
    got = mnrl_loss(a, b, scale=1.0, weights=torch.tensor([1.0, 0.5]))
    assert got.item() == pytest.approx((per_row[0] + 0.5 * per_row[1]) / 2, rel=1e-6)
    groups = torch.tensor([4, 4])  # both masked: each row only sees its positive -> loss 0
    assert simcse_loss(a, b, temperature=1.0, groups=groups).item() == pytest.approx(0, abs=1e-7)
