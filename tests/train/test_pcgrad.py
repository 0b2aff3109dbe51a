import torch
from torch import nn

from train.pcgrad import pcgrad_backward, pcgrad_combine, project_conflicting


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_non_conflicting_equals_plain_sum():
    grads = [
        torch.tensor([1.0, 2.0, 0.0]),
        torch.tensor([0.5, 0.0, 3.0]),
        torch.tensor([1.0, 1, 1]),
    ]
    assert torch.equal(pcgrad_combine(grads, gen()), torch.stack(grads).sum(0))


def test_conflicting_projection_is_orthogonal_to_the_other_task():
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])
    p1, p2 = project_conflicting([g1, g2], gen())
    assert torch.dot(p1, g2).abs() < 1e-6
    assert torch.dot(p2, g1).abs() < 1e-6
    assert torch.allclose(p1, torch.tensor([0.5, 0.5]))
    assert torch.allclose(p2, torch.tensor([0.0, 1.0]))


def test_order_is_seeded():
    grads = [torch.randn(5, generator=gen(i)) for i in range(4)]
    assert torch.equal(pcgrad_combine(grads, gen(3)), pcgrad_combine(grads, gen(3)))


def test_backward_writes_projected_shared_and_plain_head_grads():
    shared = nn.Parameter(torch.tensor([1.0, 1.0]))
    head_a, head_b = nn.Parameter(torch.tensor(2.0)), nn.Parameter(torch.tensor(3.0))
    # d loss_a / d shared = [1, 0]; d loss_b / d shared = [-1, 1]
    loss_a = shared[0] * 1.0 + head_a * 2.0
    loss_b = -shared[0] + shared[1] + head_b**2
    pcgrad_backward([loss_a, loss_b], [shared], [head_a, head_b], gen())
    assert torch.allclose(shared.grad, torch.tensor([0.5, 1.5]))  # [.5,.5] + [0,1]
    assert head_a.grad.item() == 2.0 and head_b.grad.item() == 6.0


def test_backward_without_conflict_matches_autograd_sum_and_accumulates():
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    out = net(x)
    losses = [out[:, 0].pow(2).mean(), out[:, 0].pow(2).mean() * 0.5]  # same direction
    pcgrad_backward(losses, list(net.parameters()), [], gen())
    ref = nn.Linear(3, 2)
    ref.load_state_dict(net.state_dict())
    (ref(x)[:, 0].pow(2).mean() * 1.5).backward()
    for p, q in zip(net.parameters(), ref.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-6)
    before = net.weight.grad.clone()
    out = net(x)
    pcgrad_backward(
        [out[:, 0].pow(2).mean(), out[:, 0].pow(2).mean() * 0.5], list(net.parameters()), [], gen()
    )
    assert torch.allclose(net.weight.grad, 2 * before, atol=1e-6)


def test_reduce_is_applied_before_the_surgery():
    shared = nn.Parameter(torch.tensor([1.0, 1.0]))
    seen = []

    def reduce(t):
        seen.append(t.clone())
        return t * 2

    pcgrad_backward([shared.sum(), (shared * 3).sum()], [shared], [], gen(), reduce=reduce)
    assert len(seen) == 3  # two task gradients + the (empty) head gradient
    assert torch.allclose(shared.grad, torch.tensor([8.0, 8.0]))
