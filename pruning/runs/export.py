"""Export a stored run: the pruned model as .keras, TFLite or int8 TFLite, a recipe that reproduces
it, and the size waterfall from the dense model to a compressed int8 file.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

from ..errors import BadInput
from ..paths import write_atomic
from ..specs import DeploySpec, PruneSpec, file_sha256
from .deployment import ENCODINGS, gzip_size
from .store import Run, RunStore

AGREEMENT_MIN = 0.999  # TFLite must give the same class as Keras on this share of test samples
RECIPE_FORMAT = 1


@dataclass(frozen=True)
class TFLiteExport:
    """A converted model and how closely it follows the Keras one on the test split."""

    path: str
    size_bytes: int
    gzip_bytes: int
    agreement: float  # share of test samples where both predict the same class
    samples: int
    max_abs_diff: float  # largest difference of any output value

    @property
    def ok(self) -> bool:
        return self.agreement >= AGREEMENT_MIN

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class Recipe:
    """What reproduces a prune run: its spec, and the numbers it measured."""

    spec: PruneSpec
    expected: dict[str, float]  # sparsity, accuracy
    environment: dict[str, str]
    source_run: Optional[int]


class ExportError(RuntimeError):
    """An export that was made but failed its check (e.g. TFLite disagrees with Keras)."""


def _model_file(run: Run) -> Path:
    if run.kind != "prune":
        raise BadInput(f"run {run.id} is a {run.kind} run and has no pruned model: pick a prune run")
    if run.status != "completed" or not run.artifact_path:
        raise BadInput(f"run {run.id} is {run.status} and saved no model: re-run it")
    path = Path(run.artifact_path)
    if not path.is_file():
        raise BadInput(f"run {run.id}'s model file {path} is gone: re-run it")
    return path


# -- .keras ---------------------------------------------------------------------------------
def export_keras(run: Run, out: str | Path, store: Optional[RunStore] = None) -> Path:
    """The pruned model as saved by the engine: plain layers, no pruning wrappers.

    Every exporter takes (run, out, store) so that EXPORTERS dispatches by name alone.
    """
    source = _model_file(run)
    return write_atomic(out, lambda tmp: tmp.write_bytes(source.read_bytes()))


def export_keras3(run: Run, out: str | Path, store: Optional[RunStore] = None) -> Path:
    """The pruned model as a Keras 3 `.keras` (pruning/model/keras3.py), proven on the test split."""
    from ..model.keras3 import write_pruned

    return write_pruned(_model_file(run), out, run.prune_spec(), "keras3")


# -- TFLite ---------------------------------------------------------------------------------
def tflite_agreement(flatbuffer: bytes, model, x: np.ndarray) -> tuple[float, float]:
    """(share of samples with the same predicted class, largest output difference)."""
    from ..measure.deploy import tflite_predict
    from ..measure.metrics import make_forward, predict

    keras_out = predict(make_forward(model), x)
    lite_out = tflite_predict(flatbuffer, x)
    agreement = float((keras_out.argmax(axis=1) == lite_out.argmax(axis=1)).mean())
    return agreement, float(np.abs(keras_out - lite_out).max())


def export_tflite(run: Run, out: str | Path, store: Optional[RunStore] = None) -> TFLiteExport:
    """Convert, check against Keras on the run's test split, write; refuses below 99.9% agreement.

    With a `store`, the figures are kept in the run's details for the page and the report.
    """
    from .._keras import keras
    from ..measure.deploy import convert_tflite
    from ..model.datasets import load_dataset
    from ..model.op_forms import library_objects

    model = keras.models.load_model(_model_file(run), compile=False, custom_objects=library_objects())
    flatbuffer = convert_tflite(model, "float32", sparsity=False)  # plain: comparable with earlier exports
    dataset = load_dataset(run.prune_spec().data)
    agreement, max_diff = tflite_agreement(flatbuffer, model, dataset.x_test)
    result = TFLiteExport(
        path=str(Path(out)), size_bytes=len(flatbuffer), gzip_bytes=gzip_size(flatbuffer),
        agreement=agreement, samples=int(len(dataset.x_test)), max_abs_diff=max_diff,
    )
    if store is not None:
        store.set_detail(run.id, "tflite", result.to_dict())
    if not result.ok:
        raise ExportError(
            f"the TFLite model agrees with Keras on {agreement:.2%} of {result.samples} test predictions, "
            f"below {AGREEMENT_MIN:.1%}: not written"
        )
    write_atomic(out, lambda tmp: tmp.write_bytes(flatbuffer))
    return result


# -- recipe ---------------------------------------------------------------------------------
def make_recipe(run: Run) -> dict[str, Any]:
    spec = run.prune_spec()  # validates: only prune runs have a recipe
    if run.status != "completed":
        raise BadInput(f"run {run.id} is {run.status}: only a completed run has numbers to reproduce")
    return {
        "prunescope_recipe": RECIPE_FORMAT,
        "kind": "prune",
        "run_id": run.id,
        "spec": spec.to_dict(),
        "expected": {
            "sparsity": run.metrics["sparsity"],
            **headline(run.metrics["pruned"]),
        },
        "environment": run.environment,
        "command": "python -m pruning prune --recipe THIS_FILE --json",
    }


def recipe_text(run: Run) -> str:
    """The recipe as the file holds it: indented JSON, keys sorted, one trailing newline."""
    return json.dumps(make_recipe(run), indent=2, sort_keys=True) + "\n"


def export_recipe(run: Run, out: str | Path, store: Optional[RunStore] = None) -> Path:
    text = recipe_text(run)
    return write_atomic(out, lambda tmp: tmp.write_text(text))


def read_recipe(path: str | Path) -> Recipe:
    """A recipe file, checked: the format, the spec, and that its model/data files are unchanged."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"recipe {path} does not exist: export one with `python -m pruning export RUN --format recipe`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"recipe {path} is not readable JSON ({exc}): export it again") from None
    if not isinstance(raw, dict) or raw.get("prunescope_recipe") != RECIPE_FORMAT or raw.get("kind") != "prune":
        raise BadInput(f"{path} is not a PruneScope prune recipe (format {RECIPE_FORMAT}): export it again")
    try:
        spec = PruneSpec.from_dict(raw["spec"])
    except BadInput:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(f"recipe {path} has a broken spec ({exc}): export it again") from None
    for what, ref in (("model", spec.model), ("dataset", spec.data)):
        if ref.path is None:
            continue
        if not Path(ref.path).is_file():
            raise BadInput(f"the recipe's {what} file {ref.path} is missing: put it back at that path")
        if file_sha256(ref.path) != ref.sha256:
            raise BadInput(f"the recipe's {what} file {ref.path} has changed since the run: restore the original")
    expected = {k: float(v) for k, v in (raw.get("expected") or {}).items() if v is not None}
    return Recipe(spec=spec, expected=expected, environment=dict(raw.get("environment") or {}),
                  source_run=raw.get("run_id"))


def headline(pruned: dict[str, Any]) -> dict[str, float]:
    """The headline metric of pruned metrics, by its key: {"accuracy": ...} or {"mae": ...}."""
    return {key: pruned[key] for key in ("accuracy", "mae") if key in pruned}


def recipe_check(recipe: Recipe, sparsity: float, metric: dict[str, float]) -> dict[str, Any]:
    """Whether a re-run measured what the recipe's run did (exactly: same seed, same device);
    `metric` is the headline metric by its key, as `headline` gives it."""
    measured = {"sparsity": sparsity, **metric}
    same = all(abs(measured[k] - v) <= 1e-9 for k, v in recipe.expected.items() if k in measured)
    return {"expected": recipe.expected, "measured": measured, "reproduced": same}


# -- int8 and the deploy step ----------------------------------------------------------------
def stored_deploy(store: RunStore, run_id: int, options: DeploySpec = DeploySpec(),
                  compute: Optional[Callable[[PruneSpec, str, DeploySpec], dict[str, Any]]] = None) -> dict[str, Any]:
    """A run's deploy report (DeployReport.to_dict()), made once per options and kept in its details.

    Args:
        store: the run store; the report goes to the run's `deploy` detail, the float32
            figures also to `tflite` (what the page showed before int8 existed).
        run_id: a completed prune run.
        options: how to deploy; a stored report made with other options is made again.
        compute: (spec, model path, options) -> DeployReport.to_dict(); the app passes its
            executor's `deploy` (the worker process converts); None: inline, in this process.
    """
    run = store.get(run_id)
    source = _model_file(run)
    stored = run.details.get("deploy")
    if stored and stored.get("options") == options.to_dict() and all(
            Path(row["path"]).is_file() for row in stored["artifacts"]):
        return stored
    if compute is None:
        from .deployment import deploy_model

        report = deploy_model(run.prune_spec(), source, options).to_dict()
    else:
        report = compute(run.prune_spec(), str(source), options)
    store.set_detail(run.id, "deploy", report)
    return report


def int8_artifact(deploy: dict[str, Any]) -> dict[str, Any]:
    """The int8 file a deploy report offers: the PQAT one where it was made, else post-training."""
    rows = {row["artifact"]: row for row in deploy["artifacts"]}
    return rows.get("pruned int8 PQAT") or rows["pruned int8"]


def other_int8(deploy: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The offered int8 file in the other encoding (deployment.other_encoding); None in older reports."""
    return next((r for r in deploy["artifacts"] if r["artifact"].endswith(ENCODINGS)), None)


def export_tflite_int8(run: Run, out: str | Path, store: Optional[RunStore] = None,
                       options: DeploySpec = DeploySpec()) -> dict[str, Any]:
    """The full-integer int8 TFLite model (and the whole deploy report, kept in the run's details).

    Returns:
        deploy_summary(run, report): the waterfall, every artifact's figures, `baseline`,
        `pruned` and `derived` (what `export --json` prints).
    """
    _model_file(run)  # a run without a model fails here, in one line, before any conversion
    if store is None:
        from .deployment import deploy_model

        report = deploy_model(run.prune_spec(), _model_file(run), options).to_dict()
    else:
        report = stored_deploy(store, run.id, options)
        run = store.get(run.id)
    source = Path(int8_artifact(report)["path"])
    write_atomic(out, lambda tmp: tmp.write_bytes(source.read_bytes()))
    return deploy_summary(run, report)


def _per(value: Optional[float], amount: Optional[float], unit: float) -> Optional[float]:
    return None if value is None or not amount else value / (amount / unit)


def deploy_summary(run: Run, deploy: dict[str, Any]) -> dict[str, Any]:
    """What deployment buys, in the CLI's shape: `baseline`, `pruned`, `int8`, `derived`, the waterfall.

    `memory_bytes` (DESIGN §5) of the Keras models: weights as Keras stores them (float32,
    zeros included) + the peak activations of their float32 graph; of a TFLite file: its
    weights as stored + its peak activations (measure.deploy.tflite_memory). Efficiency: the
    headline metric per effective MFLOP (MACs with a nonzero weight) and per MB of inference memory.
    """
    metric = deploy.get("metric", "accuracy")
    keras_rows = {row["model"]: row for row in deploy["keras"]}
    artifacts = {row["artifact"]: row for row in deploy["artifacts"]}
    int8 = int8_artifact(deploy)
    m = run.metrics

    def side(keras_row: dict, lite: dict, flops: Optional[float]) -> dict[str, Any]:
        return {metric: keras_row[metric], "memory_bytes": keras_row["memory_bytes"],
                "keras_latency_ms": keras_row["latency_ms"], "effective_flops": flops,
                "tflite_float32_" + metric: lite[metric], "tflite_float32_latency_1t_ms": lite["latency_1t_ms"],
                "tflite_float32_latency_all_ms": lite["latency_all_ms"],
                "tflite_float32_memory_bytes": lite["memory_bytes"],
                f"{metric}_per_mflop": _per(keras_row[metric], flops, 1e6),
                f"{metric}_per_mb": _per(keras_row[metric], keras_row["memory_bytes"], 1e6)}

    baseline = side(keras_rows["dense"], artifacts["dense float32"], m["baseline"].get("effective_flops"))
    pruned = side(keras_rows["pruned"], artifacts["pruned float32"], m["pruned"].get("effective_flops"))
    int8_side = {k: int8[k] for k in (metric, "bytes", "gzip_bytes", "sparsity", "memory_bytes", "latency_1t_ms",
                                      "latency_all_ms", "agreement")}
    int8_side |= {"artifact": int8["artifact"], f"{metric}_per_mflop": _per(int8[metric], pruned["effective_flops"], 1e6),
                  f"{metric}_per_mb": _per(int8[metric], int8["memory_bytes"], 1e6)}
    dense_bytes = m["baseline"]["size_bytes"]

    def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
        return None if a is None or not b else a / b

    derived = {
        "int8_gzip_size_ratio": dense_bytes / int8["gzip_bytes"],  # how many times smaller than dense .keras
        f"int8_{metric}_loss": keras_rows["dense"][metric] - int8[metric],
        "memory_reduction": 1 - pruned["memory_bytes"] / baseline["memory_bytes"],
        "int8_memory_reduction": 1 - int8["memory_bytes"] / baseline["memory_bytes"],
        "efficiency_gain": ratio(pruned[f"{metric}_per_mflop"], baseline[f"{metric}_per_mflop"]),
        "int8_efficiency_gain_per_mb": ratio(int8_side[f"{metric}_per_mb"], baseline[f"{metric}_per_mb"]),
        "tflite_int8_speedup_1t": ratio(artifacts["dense float32"]["latency_1t_ms"], int8["latency_1t_ms"]),
        "tflite_int8_speedup_all": ratio(artifacts["dense float32"]["latency_all_ms"], int8["latency_all_ms"]),
    }
    other = other_int8(deploy)
    other_side = None if other is None else {k: other.get(k) for k in ("artifact", metric, "bytes", "gzip_bytes",
                                                                       "memory_bytes", "sparse_encoded_tensors")}
    return {"run_id": run.id, "metric": metric, "interface": deploy["interface"], "threads": deploy["threads"],
            "latency_batch": deploy["latency_batch"], "baseline": baseline, "pruned": pruned, "int8": int8_side,
            "int8_other_encoding": other_side,
            "derived": derived, "waterfall": size_waterfall(run, deploy=deploy).to_dict(orient="records"),
            "artifacts": deploy["artifacts"], "keras": deploy["keras"], "timing_s": deploy["timing_s"]}


# -- sizes ----------------------------------------------------------------------------------
OTHER_ENCODING = "tflite interpreter, the other int8 encoding"


def size_waterfall(run: Run, tflite: Optional[dict[str, Any]] = None,
                   deploy: Optional[dict[str, Any]] = None) -> pd.DataFrame:
    """Bytes and the headline metric at each step from the dense model to a compressed int8 file.

    With a deploy report (`deploy`, or the run's stored one): dense .keras -> pruned .keras ->
    pruned .keras gzip -> TFLite float32 -> TFLite int8 -> TFLite int8 gzip, every metric
    measured on the test split (Keras for the .keras files, the TFLite interpreter for the
    TFLite ones; a gzip step holds the same bytes as the step before, so the same metric).
    Without one, an older float32-only TFLite export (`tflite`, or stored) adds its sizes with
    no metric; without either, the TFLite steps are left out.

    The deploy step also converts the int8 model in the other encoding (sparse-encoded or
    zeros stored, `deployment.other_encoding`): two more stages, a second branch off TFLite
    float32 (`measure` "absolute": the bar starts from zero), so the smaller one shows.

    Returns:
        Columns: stage, bytes, change (against the stage before; the other encoding's against
        TFLite float32), ratio (against dense), the headline metric (named by its key:
        `accuracy`, `mae`), measured_by, measure (`absolute` or `relative`, for the waterfall).
    """
    if run.kind != "prune" or run.status != "completed":
        raise BadInput(f"run {run.id} is a {run.status} {run.kind} run: sizes exist for completed prune runs")
    deploy = deploy or run.details.get("deploy")
    tflite = tflite or run.details.get("tflite")
    base, pruned = run.metrics["baseline"], run.metrics["pruned"]
    metric = run.task.metric
    stages = [
        ("dense .keras", base["size_bytes"], base[metric], "keras"),
        ("pruned .keras", pruned["size_bytes"], pruned[metric], "keras"),
        ("pruned .keras gzip", pruned["gzip_bytes"], pruned[metric], "same bytes as pruned .keras"),
    ]
    if deploy:
        lite, int8 = {r["artifact"]: r for r in deploy["artifacts"]}["pruned float32"], int8_artifact(deploy)
        stages += [("TFLite float32", lite["bytes"], lite.get(metric), "tflite interpreter"),
                   (f"TFLite {int8['artifact'][7:]}", int8["bytes"], int8.get(metric), "tflite interpreter"),
                   (f"TFLite {int8['artifact'][7:]} gzip", int8["gzip_bytes"], int8.get(metric),
                    "same bytes as the int8 file")]
        other = other_int8(deploy)
        if other is not None:  # the same int8 model in the other encoding: a second branch off float32
            stages += [(f"TFLite {other['artifact'][7:]}", other["bytes"], other.get(metric), OTHER_ENCODING),
                       (f"TFLite {other['artifact'][7:]} gzip", other["gzip_bytes"], other.get(metric),
                        "same bytes as the file before")]
    elif tflite:
        stages += [("TFLite", tflite["size_bytes"], None, "not measured"),
                   ("TFLite gzip", tflite["gzip_bytes"], None, "not measured")]
    frame = pd.DataFrame(stages, columns=["stage", "bytes", metric, "measured_by"])
    frame["bytes"] = frame["bytes"].astype(int)
    change = frame["bytes"].diff().fillna(frame["bytes"])
    branch = frame["measured_by"] == OTHER_ENCODING
    if branch.any():  # the other encoding's change is against TFLite float32, where both branch off
        change[branch] = frame.loc[branch, "bytes"] - frame.loc[frame["stage"] == "TFLite float32", "bytes"].iloc[0]
    frame.insert(2, "change", change.astype(int))
    frame.insert(3, "ratio", frame["bytes"] / frame["bytes"].iloc[0])
    frame["measure"] = ["absolute" if i == 0 or b else "relative" for i, b in enumerate(branch)]
    return frame


# Format name -> exporter; the CLI's --format choices come from here.
EXPORTERS: dict[str, Callable[..., Any]] = {
    "keras": export_keras,
    "keras3": export_keras3,
    "tflite": export_tflite,
    "tflite-int8": export_tflite_int8,
    "recipe": export_recipe,
}
