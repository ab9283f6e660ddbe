"""Export a stored run: the pruned model as .keras or TFLite, a recipe that reproduces it,
and the size waterfall from the dense model to a compressed TFLite file.
"""
from __future__ import annotations

import gzip
import json
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

from ..errors import BadInput
from ..specs import PruneSpec, file_sha256
from .store import Run, RunStore

AGREEMENT_MIN = 0.999  # TFLite must give the same class as Keras on this share of test samples
RECIPE_FORMAT = 1
TFLITE_BATCH = 512


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


def write_atomic(out: str | Path, write: Callable[[Path], None]) -> Path:
    """Write through a temp file in the target folder, then rename: never a half-written export."""
    out = Path(out)
    if out.is_dir():
        raise BadInput(f"{out} is a folder: give a file name to export to")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


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
def convert_tflite(model) -> bytes:
    """A float32 TFLite flatbuffer of a Keras model (no quantisation: the numbers stay comparable)."""
    from .._keras import _quiet_native_stderr, tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with _quiet_native_stderr():  # MLIR prints pages of progress on fd 2
        return converter.convert()


def tflite_predict(flatbuffer: bytes, x: np.ndarray, batch: int = TFLITE_BATCH) -> np.ndarray:
    from .._keras import _quiet_native_stderr, tf

    with warnings.catch_warnings():
        # tf.lite.Interpreter warns it moves to ai_edge_litert; in TF 2.21 it still works
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    outputs, size = [], None
    with _quiet_native_stderr():  # the XNNPACK delegate announces itself on fd 2
        for start in range(0, len(x), batch):
            chunk = np.ascontiguousarray(x[start : start + batch], dtype=np.float32)
            if len(chunk) != size:
                interpreter.resize_tensor_input(inp["index"], list(chunk.shape))
                interpreter.allocate_tensors()
                size = len(chunk)
            interpreter.set_tensor(inp["index"], chunk)
            interpreter.invoke()
            outputs.append(interpreter.get_tensor(out["index"]).copy())
    return np.concatenate(outputs)


def tflite_agreement(flatbuffer: bytes, model, x: np.ndarray) -> tuple[float, float]:
    """(share of samples with the same predicted class, largest output difference)."""
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
    from ..model.datasets import load_dataset

    model = keras.models.load_model(_model_file(run), compile=False)
    flatbuffer = convert_tflite(model)
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


def stored_tflite(store: RunStore, run_id: int) -> dict[str, Any]:
    """A run's TFLite file beside its model: converted and checked once, then reused.

    Returns:
        TFLiteExport.to_dict() plus `path`; `path` is None when the conversion fell below
        AGREEMENT_MIN (the figures are kept in the run's details to show, the file is not offered).
    """
    run = store.get(run_id)
    stored = run.details.get("tflite")
    out = Path(run.artifact_path or "").with_name("model.tflite")
    if stored and stored.get("ok") and out.is_file():
        return dict(stored, path=str(out))
    try:
        return dict(export_tflite(run, out, store).to_dict(), path=str(out))
    except ExportError:
        return dict(store.get(run_id).details["tflite"], path=None)


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


# -- sizes ----------------------------------------------------------------------------------
def size_waterfall(run: Run, tflite: Optional[dict[str, Any]] = None) -> pd.DataFrame:
    """Bytes at each step from the dense model to a compressed TFLite file.

    Columns: stage, bytes, change (bytes against the stage before), ratio (against dense).
    `tflite` is a TFLiteExport.to_dict(); without it (or the run's stored one) the TFLite
    stages are left out.
    """
    if run.kind != "prune" or run.status != "completed":
        raise BadInput(f"run {run.id} is a {run.status} {run.kind} run: sizes exist for completed prune runs")
    tflite = tflite or run.details.get("tflite")
    stages = [
        ("dense .keras", run.metrics["baseline"]["size_bytes"]),
        ("pruned .keras", run.metrics["pruned"]["size_bytes"]),
        ("pruned .keras gzip", run.metrics["pruned"]["gzip_bytes"]),
    ]
    if tflite:
        stages += [("TFLite", tflite["size_bytes"]), ("TFLite gzip", tflite["gzip_bytes"])]
    frame = pd.DataFrame(stages, columns=["stage", "bytes"])
    frame["bytes"] = frame["bytes"].astype(int)
    frame["change"] = frame["bytes"].diff().fillna(frame["bytes"]).astype(int)
    frame["ratio"] = frame["bytes"] / frame["bytes"].iloc[0]
    return frame


# Format name -> exporter; the CLI's --format choices come from here.
EXPORTERS: dict[str, Callable[..., Any]] = {
    "keras": export_keras,
    "keras3": export_keras3,
    "tflite": export_tflite,
    "recipe": export_recipe,
}
