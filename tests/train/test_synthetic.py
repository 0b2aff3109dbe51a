"""Training on augmented tables: `train.synthetic_weight` and source-aware in-batch negatives."""

import numpy as np
import pandas as pd
import pytest
import torch

from minbert.backbone import load_tokenizer
from minbert.losses import same_source_negatives
from train.loop import BatchSource, Workers, train
from train.stage import build_model

from .test_loop import same_weights
from .tiny import make_params, task_tables, write_backbone


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    return write_backbone(tmp_path_factory.mktemp("backbone"))


def augmented(n_rows: int = 24, per_source: int = 2) -> dict[str, pd.DataFrame]:
    """Tiny tables as the augment stage writes them: real rows, then `per_source` paraphrases
    (the words of one side reversed) of every odd real row, with origin and source_id."""
    tables = {}
    for task, real in task_tables(n_rows).items():
        real = real.assign(origin="real", source_id=real["id"])
        side = "sentence" if task == "sst" else "sentence1"
        sources = real.iloc[1::2]  # odd rows: the duplicate Quora pairs
        synthetic = pd.concat([
            sources.assign(**{
                side: sources[side].str.split().map(lambda w, k=k: " ".join(w[::-1] + w[:k])),
                "id": "syn-" + sources["id"] + f"-{k}", "origin": "synthetic"})
            for k in range(per_source)
        ])
        tables[task] = pd.concat([real, synthetic], ignore_index=True)
    return tables


TRAINED = {}  # (table kind, weight) -> model: runs shared between the tests below


def run(backbone, tables, **overrides):
    params = make_params(backbone, epochs=1, **overrides)
    model = build_model(params, backbone)
    train(model, load_tokenizer(backbone, params.max_length), tables, task_tables(10, seed=9),
          params, device=torch.device("cpu"), save=lambda m, s: None)
    return model


def trained(backbone, kind: str, weight: float):
    if (kind, weight) not in TRAINED:
        tables = augmented()
        if kind == "plain":
            tables = without_provenance(tables)
        if kind == "scrambled":  # other labels on the paraphrases only
            tables = {t: df.assign(label=np.where(df["origin"] == "synthetic",
                                                  df["label"].max() - df["label"], df["label"]))
                      for t, df in tables.items()}
        TRAINED[kind, weight] = run(backbone, tables, synthetic_weight=weight)
    return TRAINED[kind, weight]


def without_provenance(tables):
    return {t: df.drop(columns=["origin", "source_id"]) for t, df in tables.items()}


@pytest.mark.slow
def test_synthetic_weight_one_equals_plain_training(backbone):
    plain = trained(backbone, "plain", 1.0)
    assert same_weights(plain, trained(backbone, "augmented", 1.0))
    assert not same_weights(plain, trained(backbone, "augmented", 0.5))


@pytest.mark.slow
def test_synthetic_weight_zero_ignores_the_paraphrases_labels(backbone):
    """Weight 0: paraphrases still fill batch slots but give no gradient, so other labels on
    them change nothing; at weight 1 the same tables train differently."""
    zero = trained(backbone, "augmented", 0.0)
    assert same_weights(zero, trained(backbone, "scrambled", 0.0))
    assert not same_weights(zero, trained(backbone, "augmented", 1.0))


@pytest.mark.slow
def test_source_groups_change_nothing_without_paraphrases(backbone):
    real = {t: df.assign(origin="real", source_id=df["id"]) for t, df in task_tables(24).items()}
    on = {"techniques.simcse.enabled": True, "techniques.mnrl.enabled": True,
          "techniques.simcse.batch_size": 8, "techniques.mnrl.batch_size": 8}
    assert same_weights(run(backbone, without_provenance(real), **on), run(backbone, real, **on))


@pytest.mark.parametrize("aux", ["mnrl", "simcse"])
def test_rows_of_one_source_are_never_each_others_negatives(backbone, aux):
    """Over whole passes of big batches (same-source rows do share batches), every pair of
    rows from one source is masked out of the other's negatives, and no other pair is."""
    params = make_params(backbone, **{f"techniques.{aux}.enabled": True,
                                      f"techniques.{aux}.batch_size": 16})
    tables = augmented(n_rows=40, per_source=3)
    source = BatchSource(load_tokenizer(backbone, params.max_length), tables, params, Workers())
    stream, served = source.streams[aux], []
    serve = stream.next
    stream.next = lambda: served.append(serve()) or served[-1]  # record each batch's rows
    origin_of = text_sources(aux, tables)
    shared = 0
    for _ in range(3 * stream.batches_per_pass):
        batch = source.batches((aux,), torch.device("cpu"))[aux]
        rows = source.tables[aux].iloc[served[-1]]
        keys = [origin_of[s] for s in rows["sentence" if aux == "simcse" else "sentence1"]]
        same = np.equal.outer(keys, keys) & ~np.eye(len(keys), dtype=bool)
        assert (same_source_negatives(batch["groups"]).numpy() == same).all()
        shared += int(same.sum())
    assert shared > 0  # the test did see same-source rows together


def text_sources(aux, tables):
    """Text of an auxiliary row -> the real row (and side) it comes from, read from the tables'
    own source_id, independently of the training code."""
    out = {}
    if aux == "mnrl":
        para = tables["para"]
        return dict(zip(para["sentence1"], para["source_id"], strict=True))
    for column in ("sentence1", "sentence2"):  # one STS side's paraphrase, the other copied
        for text, src in zip(tables["sts"][column], tables["sts"]["source_id"], strict=True):
            out.setdefault(text, f"sts:{src}:{column}")
    sst = tables["sst"]
    out.update({t: f"sst:{src}" for t, src in zip(sst["sentence"], sst["source_id"], strict=True)})
    return out
