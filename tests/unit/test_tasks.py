"""Every task head (DESIGN §5): detected from the output layer and labels, scored with its own metric.

One tiny seeded model per task goes through Engine.prune and the CLI; each headline metric is
checked against a numpy (and scikit-learn) reference computed from the model's own outputs.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import r2_score, roc_auc_score

from pruning.cli import main
from pruning.errors import BadInput
from pruning.measure.tasks import TASKS, roc_auc
from pruning.specs import DataRef, ModelRef, PruneSpec

FEATURES = 6
N_TRAIN, N_TEST = 64, 48


def features(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, FEATURES)).astype(np.float32)


def labels(task: str, x: np.ndarray) -> np.ndarray:
    if task in ("binary", "softmax2"):
        return (x[:, 0] + 0.3 * x[:, 1] > 0).astype(np.int64)
    if task == "multilabel":
        return (x[:, :5] > 0).astype(np.int64)
    if task == "regression":
        return (x @ np.linspace(-1.0, 1.0, FEATURES) + 0.5).astype(np.float32)
    return x[:, :3].argmax(axis=1).astype(np.int64)  # multiclass


# (case, output units, output activation, task detected, headline metric, higher is better)
HEADS = [
    ("binary", 1, "sigmoid", "binary", "accuracy", True),
    ("softmax2", 2, "softmax", "binary", "accuracy", True),
    ("multilabel", 5, "sigmoid", "multilabel", "accuracy", True),
    ("regression", 1, "linear", "regression", "mae", False),
    ("multiclass", 3, "softmax", "multiclass", "accuracy", True),
]


def build(units: int, activation: str, seed: int = 0):
    from pruning._keras import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.layers.Input((FEATURES,)),
        keras.layers.Dense(16, activation="relu", name="hidden"),
        keras.layers.Dense(units, activation=activation, name="out"),
    ])


def write_case(tmp_path, case: str, units: int, activation: str, y_override=None):
    x_train, x_test = features(1, N_TRAIN), features(2, N_TEST)
    y_train, y_test = labels(case, x_train), labels(case, x_test)
    if y_override is not None:
        y_train, y_test = y_override(x_train), y_override(x_test)
    data = tmp_path / f"{case}.npz"
    np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    model = tmp_path / f"{case}.keras"
    build(units, activation).save(model)
    return model, data


def reference(case: str, outputs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The task's metrics computed here from the outputs alone, independently of pruning.measure."""
    if case == "binary":
        p = outputs[:, 0]
        return {"accuracy": float(((p > 0.5).astype(int) == y).mean()), "auc": roc_auc_score(y, p)}
    if case == "softmax2":
        return {"accuracy": float((outputs.argmax(axis=1) == y).mean()), "auc": roc_auc_score(y, outputs[:, 1])}
    if case == "multilabel":
        per_label = [((outputs[:, j] > 0.5).astype(int) == y[:, j]).mean() for j in range(y.shape[1])]
        return {"accuracy": float(np.mean(per_label))}
    if case == "regression":
        pred = outputs[:, 0]
        return {"mae": float(np.abs(pred - y).mean()), "r2": r2_score(y, pred),
                "loss": float(((pred - y) ** 2).mean())}
    return {"accuracy": float((outputs.argmax(axis=1) == y).mean())}


def outputs_of(path, x: np.ndarray) -> np.ndarray:
    from pruning._keras import keras

    model = keras.models.load_model(path, compile=False)
    return model(x, training=False).numpy().astype(np.float64)


def check_metrics(metrics: dict, expected: dict) -> None:
    for key, value in expected.items():
        if key == "accuracy":
            assert metrics[key] == value, key  # a count over samples: exactly
        else:
            assert metrics[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key


@pytest.mark.parametrize("case, units, activation, task, metric, higher", HEADS, ids=[h[0] for h in HEADS])
def test_each_head_is_measured_with_its_own_metric(engine, tmp_path, case, units, activation, task, metric,
                                                   higher):
    model_path, data_path = write_case(tmp_path, case, units, activation)
    x_test, y_test = features(2, N_TEST), labels(case, features(2, N_TEST))
    spec = PruneSpec(model=ModelRef.parse(str(model_path)), data=DataRef.parse(str(data_path)),
                     method="magnitude", target_sparsity=0.5)
    report = engine.prune(spec)
    assert (report.task, report.metric, report.higher_is_better) == (task, metric, higher)
    check_metrics(report.baseline, reference(case, outputs_of(model_path, x_test), y_test))
    pruned_path = engine.save(spec, tmp_path / "pruned.keras")
    check_metrics(report.pruned, reference(case, outputs_of(pruned_path, x_test), y_test))
    expected_keys = set(TASKS[task].metric_keys)
    assert expected_keys <= set(report.pruned) and expected_keys <= set(report.baseline)
    derived = report.derived()
    change = report.baseline[metric] - report.pruned[metric]
    assert derived["metric_change"] == pytest.approx(change if higher else -change)
    assert ("accuracy_loss" in derived) == (metric == "accuracy")

    code = main(["prune", "--model", str(model_path), "--dataset", str(data_path), "--method", "magnitude",
                 "--sparsity", "0.5", "--json"])
    assert code == 0


def test_cli_json_names_task_metric_and_direction(tmp_path, capsys):
    for case, units, activation, task, metric, higher in HEADS[:4]:
        model_path, data_path = write_case(tmp_path, case, units, activation)
        code = main(["prune", "--model", str(model_path), "--dataset", str(data_path), "--method", "magnitude",
                     "--sparsity", "0.5", "--json"])
        result = json.loads(capsys.readouterr().out)
        assert code == 0
        assert (result["task"], result["metric"], result["higher_is_better"]) == (task, metric, higher)
        x_test = features(2, N_TEST)
        check_metrics(result["pruned"], reference(case, outputs_of(result["model_path"], x_test),
                                                  labels(case, x_test)))
        assert f"robust_{metric}" in result["pruned"] and f"train_{metric}" in result["pruned"]


def test_regression_sweep_has_a_bootstrap_band_and_sensitivity_drops_rise(engine, tmp_path):
    from pruning.specs import SensitivitySpec, SweepSpec

    model_path, data_path = write_case(tmp_path, "regression", 1, "linear")
    model, data = ModelRef.parse(str(model_path)), DataRef.parse(str(data_path))
    sweep = engine.sweep(SweepSpec(model=model, data=data, methods=("magnitude",), sparsities=(0.0, 0.9)))
    raw = sweep.to_json_dict()
    assert (raw["task"], raw["metric"], raw["higher_is_better"]) == ("regression", "mae", False)
    for row in raw["rows"]:
        assert row["mae_low"] < row["mae"] < row["mae_high"] and "accuracy" not in row
        assert row["mae_ci95"] == pytest.approx((row["mae_high"] - row["mae_low"]) / 2)
    first = raw["rows"][0]
    assert first["metric_change"] == pytest.approx(0.0, abs=1e-12)
    assert "test MAE" in sweep.table().columns
    scan = engine.sensitivity(SensitivitySpec(model=model, data=data, sparsities=(0.9,)))
    drop = scan.drop.iloc[0, 0]
    assert drop == pytest.approx(scan.accuracy.iloc[0, 0] - scan.baseline_accuracy)  # MAE up: positive drop
    assert scan.to_json_dict()["metric"] == "mae" and "baseline_mae" in scan.to_json_dict()


# (case, units, activation, labels, fragment of the refusal)
BAD_HEADS = [
    ("relu3", 3, "relu", lambda x: x[:, :3].argmax(axis=1), "has 3 relu units and a relu output is none of"),
    ("softmax_floats", 3, "softmax", lambda x: x[:, 0] * 0.7, "are not integer class labels (float targets)"),
    ("sigmoid_classes", 1, "sigmoid", lambda x: x[:, :3].argmax(axis=1), "the labels are not all 0 or 1"),
]


@pytest.mark.parametrize("case, units, activation, y, fragment", BAD_HEADS, ids=[b[0] for b in BAD_HEADS])
def test_a_head_of_no_task_is_refused_in_one_line(tmp_path, capsys, case, units, activation, y, fragment):
    model_path, data_path = write_case(tmp_path, case, units, activation, y_override=y)
    code = main(["prune", "--model", str(model_path), "--dataset", str(data_path), "--method", "magnitude",
                 "--sparsity", "0.5", "--json"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err and fragment in err, err


def test_roc_auc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200), 1)  # many ties
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert np.isnan(roc_auc(np.ones(5), scores[:5]))


def test_zoo_classifier_refuses_float_targets(tmp_path):
    from pruning.model.baselines import load_baseline
    from pruning.model.datasets import load_dataset

    path = tmp_path / "floats.npz"
    x = features(1, 20).reshape(20, 6, 1, 1)
    np.savez(path, x_train=x, y_train=x[:, 0, 0, 0] * 0.5, x_test=x, y_test=x[:, 0, 0, 0] * 0.5)
    ref = DataRef.parse(str(path))
    with pytest.raises(BadInput, match="float targets, and the zoo's mlp is a softmax classifier"):
        load_baseline(ModelRef.parse("mlp"), ref, load_dataset(ref))


@pytest.mark.parametrize("case, units, activation", [("regression", 1, "linear"), ("multilabel", 5, "sigmoid")])
def test_taylor_and_finetuning_use_the_tasks_loss(engine, tmp_path, case, units, activation):
    model_path, data_path = write_case(tmp_path, case, units, activation)
    spec = PruneSpec(model=ModelRef.parse(str(model_path)), data=DataRef.parse(str(data_path)),
                     method="taylor", target_sparsity=0.5, finetune_epochs=1)
    report = engine.prune(spec)
    x_test = features(2, N_TEST)
    pruned_path = engine.save(spec, tmp_path / "pruned.keras")
    check_metrics(report.pruned, reference(case, outputs_of(pruned_path, x_test), labels(case, x_test)))
    assert report.sparsity == pytest.approx(0.5, abs=0.02)


def test_a_stored_regression_run_reads_as_mae_in_the_store_and_the_report(engine, tmp_path):
    from pruning.runs.report import build_report
    from pruning.runs.store import RunStore

    model_path, data_path = write_case(tmp_path, "regression", 1, "linear")
    spec = PruneSpec(model=ModelRef.parse(str(model_path)), data=DataRef.parse(str(data_path)),
                     target_sparsity=0.5)
    store = RunStore(tmp_path / "runs.db")
    run_id, report = store.record_prune(spec, lambda: engine.prune(spec), source="test")
    run = store.get(run_id)
    assert (run.task.name, run.task.metric) == ("regression", "mae")
    assert run.metrics["higher_is_better"] is False
    html = build_report(run)
    assert "test MAE (baseline -&gt; pruned)" in html
    assert f"{report.pruned['mae']:.4g}" in html
