"""Every task head through the deploy step: each TFLite file scored with the head's own metric under
the interpreter (binary and multi-label accuracy, AUC, regression MAE and R²), a regression model's
int8 file keeping a float32 output, and MAE at every step of its waterfall.

The tiny seeded heads of test_tasks.py; each reference is computed here, one sample at a time
through a fresh interpreter, independently of `tflite_predict`.
"""
from __future__ import annotations

import numpy as np
import pytest

from pruning.measure.deploy import make_interpreter
from pruning.specs import DataRef, DeploySpec, ModelRef, PruneSpec
from tests.unit.test_tasks import HEADS, check_metrics, outputs_of, reference, write_case

OPTIONS = DeploySpec(representative_samples=32, latency_calls=2)


def interpreter_outputs(path: str, x: np.ndarray) -> tuple[np.ndarray, dict, dict]:
    """Outputs of the TFLite file at `path`, sample by sample, int8 tensors (de)quantized here."""
    interpreter = make_interpreter(open(path, "rb").read())
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for sample in x:
        value = sample[None].astype(np.float32)
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            value = np.clip(np.round(value / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])[0]
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        rows.append(y.astype(np.float64))
    return np.stack(rows), inp, out


@pytest.mark.slow  # three conversions per head: test_deploy.py has multiclass, the test below regression
@pytest.mark.parametrize("case, units, activation, task, metric, higher",
                         [h for h in HEADS if h[0] in ("binary", "softmax2", "multilabel")])
def test_every_tflite_file_is_scored_with_the_heads_metric(tmp_path, case, units, activation, task, metric, higher):
    from pruning.runs.deployment import deploy_model

    model_path, data_path = write_case(tmp_path, case, units, activation)
    spec = PruneSpec(model=ModelRef.parse(str(model_path)), data=DataRef.parse(str(data_path)), method="magnitude",
                     target_sparsity=0.0)
    report = deploy_model(spec, model_path, OPTIONS)  # the file itself as the "pruned" model: only scoring matters
    data = np.load(data_path)
    assert report.metric == metric and report.interface == "float"
    keras_outputs = outputs_of(model_path, data["x_test"])
    for row in report.keras:
        check_metrics(row, reference(case, keras_outputs, data["y_test"]))
    for row in report.artifacts:
        outputs, _, _ = interpreter_outputs(row["path"], data["x_test"])
        check_metrics(row, reference(case, outputs, data["y_test"]))
        assert {metric, "loss"} <= set(row) and "accuracy" in row if higher else "accuracy" not in row
    if task == "binary":
        assert all("auc" in row for row in report.artifacts)


def test_regression_int8_keeps_a_float_output_and_its_waterfall_shows_mae(tmp_path, engine):
    from pruning.runs import export
    from pruning.runs.figures import waterfall_figure
    from pruning.runs.store import RunStore

    model_path, data_path = write_case(tmp_path, "regression", 1, "linear")
    spec = PruneSpec(model=ModelRef.parse(str(model_path)), data=DataRef.parse(str(data_path)), method="magnitude",
                     target_sparsity=0.5, seed=1)
    store = RunStore(tmp_path / "runs.db")
    run_id, _ = store.record_prune(spec, lambda: engine.prune(spec), save=lambda path: engine.save(spec, path))
    report = export.stored_deploy(store, run_id, DeploySpec(representative_samples=32, latency_calls=2,
                                                            interface="int8"))
    assert (report["metric"], report["interface"]) == ("mae", "int8 input, float32 output")
    int8 = {row["artifact"]: row for row in report["artifacts"]}["pruned int8"]
    data = np.load(data_path)
    outputs, inp, out = interpreter_outputs(int8["path"], data["x_test"])
    assert (inp["dtype"], out["dtype"]) == (np.int8, np.float32)  # int8 in, the targets' float out
    check_metrics(int8, reference("regression", outputs, data["y_test"]))
    assert int8["agreement"] is None  # no decisions to agree on: max_abs_diff says how close
    assert int8["max_abs_diff"] > 0
    stages = export.size_waterfall(store.get(run_id), deploy=report)
    assert list(stages.columns) == ["stage", "bytes", "change", "ratio", "mae", "measured_by", "measure"]
    assert stages["mae"].notna().all() and len(stages) == 8  # both int8 encodings
    assert stages["mae"].iloc[4] == int8["mae"] == stages["mae"].iloc[5]
    text = waterfall_figure(stages).data[0].text
    assert text[4].endswith(f"MAE {int8['mae']:.4g}")
    summary = export.deploy_summary(store.get(run_id), report)
    assert summary["int8"]["mae"] == int8["mae"] and summary["derived"]["int8_mae_loss"] == (
        summary["baseline"]["mae"] - int8["mae"])
