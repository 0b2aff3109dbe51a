import pytest
import torch

from minbert.heads import (
    ParaphraseHead,
    SentimentHead,
    SimilarityHead,
    mlp,
    pair_features,
    pool,
    predictions,
    task_loss,
)


def test_pooling_cls_and_masked_mean():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # (1, 3, 2)
    mask = torch.tensor([[1, 1, 0]])
    assert torch.equal(pool(hidden, mask, "cls"), torch.tensor([[1.0, 2.0]]))
    assert torch.equal(pool(hidden, mask, "mean"), torch.tensor([[2.0, 3.0]]))
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        pool(hidden, mask, "max")


def test_mlp_shapes_and_bad_activation():
    net = mlp(8, (16, 4), 5, "relu", 0.0)
    assert net(torch.zeros(3, 8)).shape == (3, 5)
    assert sum(isinstance(m, torch.nn.Linear) for m in net) == 3
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        mlp(8, (), 5, "swish", 0.0)


def test_pair_features():
    u, v = torch.tensor([[1.0, -2.0]]), torch.tensor([[3.0, 1.0]])
    assert pair_features(u, v, product=False).tolist() == [[1, -2, 3, 1, 2, 3]]
    assert pair_features(u, v, product=True).tolist() == [[1, -2, 3, 1, 2, 3, 3, -2]]


def test_head_output_shapes():
    u, v = torch.randn(4, 8), torch.randn(4, 8)
    assert SentimentHead(8, (16,), "gelu", 0.1)(u).shape == (4, 5)
    assert ParaphraseHead(8, "sbert", True, (16,), "gelu", 0.1)(u, v).shape == (4,)
    assert ParaphraseHead(8, "sbert", False, (), "gelu", 0.1)(u, v).shape == (4,)
    assert ParaphraseHead(8, "cross", False, (16,), "gelu", 0.1)(u).shape == (4,)
    assert SimilarityHead(8, "mlp", "relu", (16,), "gelu", 0.1)(u, v).shape == (4,)


def test_cosine_similarity_scales():
    u = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    v = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # cos 1, 0, -1
    relu = SimilarityHead(2, "cosine", "relu", (), "gelu", 0.0)
    assert torch.allclose(relu(u, v), torch.tensor([5.0, 0.0, 0.0]))
    affine = SimilarityHead(2, "cosine", "affine", (), "gelu", 0.0)
    assert torch.allclose(affine(u, v), torch.tensor([5.0, 0.0, -5.0]))  # 5 * cos at the start
    assert {n for n, _ in affine.named_parameters()} == {"a", "b"}
    assert not list(relu.parameters())


def test_unknown_head_kinds_raise():
    with pytest.raises(ValueError, match="paraphrase head kind 'siamese'"):
        ParaphraseHead(8, "siamese", True, (), "gelu", 0.0)
    with pytest.raises(ValueError, match="similarity head kind 'dot'"):
        SimilarityHead(8, "dot", "relu", (), "gelu", 0.0)
    with pytest.raises(ValueError, match="similarity scale 'sigmoid'"):
        SimilarityHead(8, "cosine", "sigmoid", (), "gelu", 0.0)


def test_task_losses_and_predictions():
    logits = torch.tensor([[0.0, 0.0, 10.0, 0.0, 0.0]])
    assert task_loss("sst", logits, torch.tensor([2])).item() < 1e-3
    assert predictions("sst", logits).tolist() == [2]
    logit = torch.tensor([-3.0, 4.0])
    assert predictions("para", logit).tolist() == [0, 1]
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logit, torch.tensor([0.0, 1]))
    assert task_loss("para", logit, torch.tensor([0, 1])).item() == pytest.approx(expected.item())
    assert task_loss("sts", torch.tensor([1.0, 5.0]), torch.tensor([2.0, 5.0])).item() == 0.5
    assert predictions("sts", torch.tensor([-1.0, 2.5, 7.0])).tolist() == [0.0, 2.5, 5.0]
    with pytest.raises(ValueError, match="unknown task 'nli'"):
        task_loss("nli", logit, logit)


@pytest.mark.parametrize("task, output, labels", [
    ("sst", torch.tensor([[2.0, 0.1, 0, 0, 0], [0, 0, 0, 1.5, 0], [0.3, 0, 0, 0, 2]]),
     torch.tensor([0, 4, 4])),
    ("para", torch.tensor([-1.0, 2.0, 0.5]), torch.tensor([0, 0, 1])),
    ("sts", torch.tensor([1.0, 4.0, 2.5]), torch.tensor([2.0, 5.0, 0.5])),
])
def test_row_weights_scale_each_rows_loss(task, output, labels):
    plain = task_loss(task, output, labels)
    assert task_loss(task, output, labels, torch.ones(3)).item() == pytest.approx(plain.item())
    per_row = [task_loss(task, output[i:i + 1], labels[i:i + 1]).item() for i in range(3)]
    weighted = task_loss(task, output, labels, torch.tensor([1.0, 0.5, 0.0]))
    assert weighted.item() == pytest.approx((per_row[0] + 0.5 * per_row[1]) / 3, rel=1e-6)
