import json

import pytest
import torch

from minbert.backbone import load_tokenizer
from minbert.lora import apply_lora
from minbert.model import MultitaskModel
from train.loop import build_optimizer, train, warmup_linear_decay
from train.stage import build_model

from .tiny import make_params, task_tables, write_backbone


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    return write_backbone(tmp_path_factory.mktemp("backbone"))


def run(backbone, n_rows=24, live=None, **overrides):
    """Train on tiny tables; returns (model, best scores, number of saves)."""
    params = make_params(backbone, **overrides)
    model = build_model(params, backbone)
    saves = []
    best = train(model, load_tokenizer(backbone, params.max_length), task_tables(n_rows),
                 task_tables(10, seed=9), params, device=torch.device("cpu"),
                 save=lambda m, s: saves.append(s), live=live)
    return model, best, saves


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["round_robin", "sequential", "proportional", "annealed"])
def test_every_schedule_trains_and_keeps_the_best_epoch(backbone, schedule):
    model, best, saves = run(backbone, schedule=schedule)
    assert saves and saves[-1] == best
    assert {"sst_accuracy", "para_accuracy", "sts_pearson", "overall", "epoch"} <= set(best)
    assert best["overall"] == max(s["overall"] for s in saves)


@pytest.mark.slow
def test_two_cpu_runs_give_identical_weights(backbone):
    first, best1, _ = run(backbone, **{"heads.dropout": 0.2})
    second, best2, _ = run(backbone, **{"heads.dropout": 0.2})
    assert same_weights(first, second)
    assert best1 == best2
    third, _, _ = run(backbone, seed=12, **{"heads.dropout": 0.2})
    assert not same_weights(first, third)


def test_training_changes_the_weights(backbone):
    params = make_params(backbone)
    untrained = build_model(params, backbone)
    trained, _, _ = run(backbone)
    assert not same_weights(untrained, trained)


@pytest.mark.slow
def test_smart_with_weight_zero_equals_training_without_smart(backbone):
    plain, _, _ = run(backbone)
    zero, _, _ = run(backbone, **{"techniques.smart.enabled": True,
                                  "techniques.smart.weight": 0.0})
    assert same_weights(plain, zero)


@pytest.mark.slow
def test_smart_only_touches_the_tasks_it_names(backbone):
    weights = {"sst": 0.0, "para": 1.0, "sts": 1.0}  # SST is not trained at all
    plain, _, _ = run(backbone, task_weights=weights)
    sst_only, _, _ = run(backbone, task_weights=weights, **{
        "techniques.smart.enabled": True, "techniques.smart.tasks": ["sst"]})
    assert same_weights(plain, sst_only)
    para_only, _, _ = run(backbone, task_weights=weights, **{
        "techniques.smart.enabled": True, "techniques.smart.tasks": ["para"]})
    assert not same_weights(plain, para_only)


@pytest.mark.slow
def test_pcgrad_on_a_single_task_equals_plain_training(backbone):
    weights = {"sst": 1.0, "para": 0.0, "sts": 0.0}
    plain, _, _ = run(backbone, task_weights=weights)
    surgery, _, _ = run(backbone, task_weights=weights, **{"techniques.pcgrad.enabled": True})
    for (name, p), q in zip(plain.state_dict().items(), surgery.state_dict().values(),
                            strict=True):
        assert torch.allclose(p, q, atol=1e-6), name


@pytest.mark.slow
def test_all_five_techniques_together(backbone):
    model, best, saves = run(backbone, finetune_backbone=False, grad_accum=2, **{
        "techniques.pcgrad.enabled": True, "techniques.smart.enabled": True,
        "techniques.lora.enabled": True, "techniques.simcse.enabled": True,
        "techniques.mnrl.enabled": True, "techniques.simcse.batch_size": 6,
        "techniques.mnrl.batch_size": 4})
    assert saves and best["epoch"] in (1, 2)
    assert any("lora_A" in n for n, _ in model.named_parameters())
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"bert", "sst_head", "para_head", "sts_head"}
    assert all("lora_" in n for n, p in model.bert.named_parameters() if p.requires_grad)


@pytest.mark.slow
def test_dvclive_logs_per_epoch_losses_and_dev_metrics(backbone, tmp_path):
    from dvclive import Live

    live = Live(dir=str(tmp_path / "live"), dvcyaml=None, save_dvc_exp=False)
    run(backbone, live=live, **{"techniques.mnrl.enabled": True,
                                "techniques.mnrl.batch_size": 4})
    live.end()
    metrics = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert metrics["step"] == 1  # two epochs: steps 0 and 1
    assert set(metrics["train"]["loss"]) == {"sst", "para", "sts", "mnrl"}
    assert {"sst_accuracy", "para_accuracy", "sts_pearson", "overall", "best_overall"} <= set(
        metrics["dev"])
    plots = tmp_path / "live" / "plots" / "metrics"
    assert (plots / "dev" / "overall.tsv").read_text().count("\n") == 3  # header + 2 epochs


def test_optimizer_groups_and_schedule(backbone):
    params = make_params(backbone, lr_backbone=1e-4, lr_heads=1e-2, weight_decay=0.5)
    model = build_model(params, backbone)
    groups = build_optimizer(model, params).param_groups
    by_setting = {(g["lr"], g["weight_decay"]): len(g["params"]) for g in groups}
    assert set(by_setting) == {(1e-4, 0.5), (1e-4, 0.0), (1e-2, 0.5), (1e-2, 0.0)}
    n_trainable = sum(p.requires_grad for p in model.parameters())
    assert sum(by_setting.values()) == n_trainable
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_linear_decay(opt, warmup_steps=2, total_steps=6)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1 / 3, 2 / 3, 1.0, 0.75, 0.5, 0.25])


def test_lora_leaves_only_adapters_and_heads_trainable(backbone):
    params = make_params(backbone, finetune_backbone=False, **{"techniques.lora.enabled": True})
    model = build_model(params, backbone)
    reference = MultitaskModel(build_model(make_params(backbone), backbone).bert, params.heads)
    apply_lora(reference.bert, 8, 16, 0.1, ("query", "value"))
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names == {n for n, p in reference.named_parameters() if p.requires_grad}


@pytest.mark.gpu
def test_cuda_training_with_bf16_autocast(backbone):
    params = make_params(backbone, device="cuda", **{"techniques.smart.enabled": True})
    model = build_model(params, backbone).cuda()
    saves = []
    best = train(model, load_tokenizer(backbone, params.max_length), task_tables(24),
                 task_tables(10, seed=9), params, device=torch.device("cuda"),
                 save=lambda m, s: saves.append(s))
    assert saves and 0.0 <= best["overall"] <= 1.0
