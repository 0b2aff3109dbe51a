"""Prediction with a (tiny, random) saved model: the predict command and the evaluate stage."""

import json

import numpy as np
import pandas as pd
import pytest

from eval import evaluate, predict
from eval.submission import read_submission
from tests.course_data import write_course_files


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return write_course_files(tmp_path_factory.mktemp("course") / "raw", rows_per_class=2)


@pytest.mark.parametrize("task, name", [
    ("sst", "ids-sst-test-student.csv"), ("sst", "ids-sst-dev.csv"),
    ("para", "quora-dev.csv"), ("sts", "sts-test-student.csv"), ("sts", "sts-dev.csv"),
])
def test_predict_writes_one_prediction_per_input_row(tiny_model_dir, course, tmp_path, task,
                                                     name):
    out = tmp_path / "out.csv"
    argv = ["--model", str(tiny_model_dir), "--task", task, "--input", str(course / name),
            "--output", str(out), "--batch-size", "3", "--device", "cpu"]
    assert predict.main(argv) == 0
    ids = [line.split("\t")[1] for line in (course / name).read_text().splitlines()[1:]]
    if name == "ids-sst-test-student.csv":
        ids = [line.split("\t")[2] for line in (course / name).read_text().splitlines()[1:]]
    got = read_submission(out)
    assert got["id"].tolist() == ids
    if task == "sst":
        assert set(got["prediction"]) <= {0, 1, 2, 3, 4}
    elif task == "para":
        assert set(got["prediction"]) <= {0.0, 1.0}
    else:
        assert got["prediction"].between(0, 5).all()


def test_predict_gives_the_same_answer_in_any_batch_size(tiny_model_dir, course, tmp_path):
    outs = []
    for batch_size in ("1", "7"):
        out = tmp_path / f"b{batch_size}.csv"
        predict.main(["--model", str(tiny_model_dir), "--task", "sts", "--input",
                      str(course / "sts-dev.csv"), "--output", str(out), "--batch-size",
                      batch_size, "--device", "cpu"])
        outs.append(read_submission(out)["prediction"].to_numpy())
    np.testing.assert_allclose(outs[0], outs[1], atol=1e-5)


def test_score_builds_headline_and_per_class_metrics():
    dev = {
        "sst": pd.DataFrame({"label": [0, 1, 2, 3, 4, 4]}),
        "para": pd.DataFrame({"label": [0, 1, 1, 0]}),
        "sts": pd.DataFrame({"label": [0.0, 1.0, 2.0, 5.0]}),
    }
    preds = {"sst": np.array([0, 1, 2, 3, 4, 0]), "para": np.array([0, 1, 0, 0]),
             "sts": np.array([0.5, 1.0, 2.5, 4.0])}
    headline, detail = evaluate.score(preds, dev)
    assert headline["sst_accuracy"] == pytest.approx(5 / 6)
    assert headline["para_accuracy"] == 0.75 and headline["para_f1"] == pytest.approx(2 / 3)
    assert headline["sts_spearman"] == pytest.approx(1.0)
    assert headline["overall"] == pytest.approx(
        (5 / 6 + 0.75 + (headline["sts_pearson"] + 1) / 2) / 3)
    assert detail["sst"]["confusion"][4] == [1, 0, 0, 0, 1]
    assert detail["para"]["classes"]["1"]["recall"] == 0.5
    assert list(headline) == ["overall", "sst_accuracy", "sst_macro_f1", "para_accuracy", "para_f1",
                              "sts_pearson", "sts_spearman", "sts_mse", "sts_mae"]


def test_evaluate_stage_writes_metrics_plots_and_predictions(tiny_model_dir, course, tmp_path,
                                                              monkeypatch):
    from pipeline.prepare import PrepareParams, run

    monkeypatch.chdir(tmp_path)
    run(PrepareParams(raw_dir=str(course), normalize_whitespace=True, unescape_treebank=True,
                      quarantine_empty=True, deduplicate=True, quarantine_label_conflicts=True,
                      remove_leakage=True, max_chars=2000, max_quarantined_share=0.1),
        tmp_path / "data/clean")
    (tmp_path / "models").mkdir()
    (tmp_path / "models/multitask").symlink_to(tiny_model_dir)
    (tmp_path / "params.yaml").write_text("evaluate:\n  batch_size: 4\n  device: cpu\n")
    evaluate.main()
    metrics = json.loads((tmp_path / "reports/eval/metrics.json").read_text())
    assert 0 <= metrics["overall"] <= 1
    confusion = pd.read_csv(tmp_path / "reports/eval/plots/sst_confusion.csv")
    assert list(confusion.columns) == ["actual", "predicted"] and len(confusion) == 10
    scatter = pd.read_csv(tmp_path / "reports/eval/plots/sts_scatter.csv")
    assert list(scatter.columns) == ["id", "gold", "predicted"]
    written = sorted(p.name for p in (tmp_path / "predictions").iterdir())
    assert written == ["para-dev-output.csv", "sst-dev-output.csv", "sst-test-output.csv",
                       "sts-dev-output.csv", "sts-test-output.csv"]


@pytest.fixture
def truncated_model_dir(tiny_model_dir, tmp_path):
    import shutil

    model = tmp_path / "truncated"
    shutil.copytree(tiny_model_dir, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a copy cut short
    return model


def test_predict_with_a_truncated_model_file_is_one_line_error(truncated_model_dir, course,
                                                               tmp_path, capsys):
    out = tmp_path / "out.csv"
    out.write_text("previous predictions\n")
    argv = ["--model", str(truncated_model_dir), "--task", "sst", "--input",
            str(course / "ids-sst-dev.csv"), "--output", str(out), "--device", "cpu"]
    assert predict.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {truncated_model_dir}/model.safetensors: "
                                               "not a readable safetensors file, truncated")
    assert out.read_text() == "previous predictions\n"  # the last good output is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "truncated"]


def test_evaluate_with_a_truncated_model_file_is_one_line_error(truncated_model_dir, tmp_path,
                                                                monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models/multitask").symlink_to(truncated_model_dir)
    (tmp_path / "params.yaml").write_text("evaluate:\n  batch_size: 4\n  device: cpu\n")
    (tmp_path / "reports/eval").mkdir(parents=True)
    (tmp_path / "reports/eval/metrics.json").write_text('{"overall": 0.5}\n')
    with pytest.raises(SystemExit) as exit_:
        evaluate.main()
    assert exit_.value.code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "model.safetensors: not a readable safetensors file" in errors[0]
    assert (tmp_path / "reports/eval/metrics.json").read_text() == '{"overall": 0.5}\n'
    assert not (tmp_path / "predictions").exists()
