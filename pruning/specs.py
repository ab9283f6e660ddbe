"""Frozen, hashable specs the UI and CLI hand to the backend, and the reports it returns.

Reports hold only numbers, strings, lists, dicts and DataFrames, so they cache, store and
cross a process boundary as plain data.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from .errors import BadInput

ProgressFn = Callable[[float, str], None]
PointFn = Callable[[dict[str, Any]], None]  # one finished sweep row, as it arrives
SCOPES = ("layer", "global")

REFERENCE_SPARSITIES = (0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95)  # the reference article's grid (its ResNet experiment)
FINE_SPARSITIES = tuple(round(0.05 * i, 2) for i in range(20))  # 0, 5, ..., 95 %: 20 points
SCAN_SPARSITIES = (0.2, 0.4, 0.6, 0.8, 0.9)
# The metric keys of DESIGN §5: every baseline and pruned report carries all of them.
METRIC_KEYS = (
    "accuracy",
    "loss",
    "train_accuracy",
    "robust_accuracy",
    "params",
    "nonzero_params",
    "flops",
    "effective_flops",
    "activation_bytes",
    "memory_bytes",
    "size_bytes",
    "gzip_bytes",
    "latency_ms",
    "latency_p10_ms",
    "latency_p90_ms",
)
# How `gzip_bytes` is measured on every move (metrics.memory_sizes); an export reports gzip -9
# of the real file instead. ISA-L's DEFLATE (python-isal, a zlib stream any inflater reads): on
# float32 weights 3-4x faster than zlib's fastest strategy (Z_RLE) at the same size within 2 % up
# to 50 % sparsity, 9 % larger at 90 % (BENCHMARKS.md, bench/deflate_strategies.py).
COMPRESS_LEVEL = 1
COMPRESSION = f"DEFLATE level {COMPRESS_LEVEL} (ISA-L), over the weights in memory"


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelRef:
    """A zoo architecture (`name`) or a model file (`path` + its content hash)."""

    name: str = "cnn"
    path: Optional[str] = None
    sha256: Optional[str] = None
    epochs: Optional[int] = None  # zoo training epochs; None = the zoo default

    @classmethod
    def parse(cls, text: str) -> "ModelRef":
        """`cnn` -> zoo model; `some/file.keras` or `.h5` -> that file."""
        if text.endswith((".keras", ".h5", ".hdf5")):
            path = Path(text)
            if not path.is_file():
                raise BadInput(f"model file {text} does not exist: give a zoo name or a .keras/.h5 path")
            return cls(name=path.name, path=str(path.resolve()), sha256=file_sha256(path))
        return cls(name=text)

    @property
    def is_file(self) -> bool:
        return self.path is not None

    @property
    def label(self) -> str:
        return self.name if not self.is_file else f"{self.name} (file)"


@dataclass(frozen=True)
class DataRef:
    """A named dataset (`digits`, `mnist`, ...) or an `.npz` file (`path` + content hash)."""

    name: str = "digits"
    path: Optional[str] = None
    sha256: Optional[str] = None

    @classmethod
    def parse(cls, text: str) -> "DataRef":
        if text.endswith(".npz"):
            path = Path(text)
            if not path.is_file():
                raise BadInput(f"dataset file {text} does not exist: give a dataset name or an .npz path")
            return cls(name=path.name, path=str(path.resolve()), sha256=file_sha256(path))
        return cls(name=text)

    @property
    def is_file(self) -> bool:
        return self.path is not None


class SpecCodec:
    """JSON round trip and a short content key, shared by every frozen spec."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def key(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def spec_fields(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A spec's dict with the model and data references and the layer tuple rebuilt."""
    fields = dict(raw)
    fields["model"] = ModelRef(**fields.get("model", {}))
    fields["data"] = DataRef(**fields.get("data", {}))
    if fields.get("layers") is not None:
        fields["layers"] = tuple(fields["layers"])
    return fields


@dataclass(frozen=True)
class PruneSpec(SpecCodec):
    """One prune: which model, data, method and sparsity, and how to measure the result."""

    model: ModelRef = field(default_factory=ModelRef)
    data: DataRef = field(default_factory=DataRef)
    method: str = "magnitude"
    target_sparsity: float = 0.5  # requested; the report's `sparsity` is what was measured
    scope: str = "layer"
    layers: Optional[tuple[str, ...]] = None  # layers to prune; None = every prunable layer
    finetune_epochs: int = 0
    seed: int = 0
    noise_sigma: float = 0.1  # std of the Gaussian input noise for robust_accuracy
    latency_batch: int = 32
    # A per-layer plan: (layer name or "layer/attr", sparsity) pairs that override
    # `sparsity` for those tensors (e.g. from sensitivity.plan_sparsity). A tuple, so the
    # spec stays hashable.
    layer_sparsity: Optional[tuple[tuple[str, float], ...]] = None
    mixed_precision: bool = False  # fine-tune in float16 where the GPU supports it
    recalibrate_bn: bool = False  # re-estimate BatchNorm statistics after masking (always after surgery)
    # Masked kernels stay dense, so a mask point's latency is the dense structure's, timed once
    # per model; True times this point itself (structured results are always timed).
    retime_latency: bool = False

    def __post_init__(self) -> None:
        validate_sparsity(self.target_sparsity)
        if self.layer_sparsity is not None:
            validate_layer_sparsity(self.layer_sparsity)
        if self.scope not in SCOPES:
            raise BadInput(f"scope must be one of {', '.join(SCOPES)}, not {self.scope!r}")
        if self.layers is not None and len(self.layers) == 0:
            raise BadInput("no layer selected for pruning: select at least one prunable layer")
        if self.finetune_epochs < 0:
            raise BadInput(f"finetune epochs must be >= 0, not {self.finetune_epochs}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "PruneSpec":
        raw = spec_fields(raw)
        if "sparsity" in raw:  # runs and recipes stored before the field was named target_sparsity
            raw.setdefault("target_sparsity", raw.pop("sparsity"))
        if raw.get("layer_sparsity") is not None:
            raw["layer_sparsity"] = tuple((str(name), float(value)) for name, value in raw["layer_sparsity"])
        return cls(**raw)

@dataclass(frozen=True)
class DeploySpec(SpecCodec):
    """How a pruned model is deployed: int8 calibration, the int8 interface, optional PQAT.

    >>> DeploySpec(interface="uint8")
    Traceback (most recent call last):
    ...
    pruning.errors.BadInput: interface must be float or int8, not 'uint8'
    """

    representative_samples: int = 256  # train-split samples that calibrate int8 activation ranges
    interface: str = "float"  # the int8 model's input/output tensors: float32 (drop-in) or int8
    pqat_epochs: int = 0  # > 0: tfmot's sparsity-preserving quantization-aware training first
    latency_calls: int = 30  # timed interpreter invokes per latency figure
    seed: int = 0
    # EXPERIMENTAL_SPARSITY: sparse weights stored as values + indices (less memory); without it the
    # zeros are stored, which gzip packs tighter than the indices (a smaller download)
    sparse_encoding: bool = True

    def __post_init__(self) -> None:
        if self.interface not in ("float", "int8"):
            raise BadInput(f"interface must be float or int8, not {self.interface!r}")
        if self.representative_samples < 1:
            raise BadInput(f"representative samples must be >= 1, not {self.representative_samples}")
        if self.pqat_epochs < 0:
            raise BadInput(f"PQAT epochs must be >= 0, not {self.pqat_epochs}")
        if self.latency_calls < 1:
            raise BadInput(f"latency calls must be >= 1, not {self.latency_calls}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "DeploySpec":
        return cls(**dict(raw))


def validate_sparsity(value: float) -> float:
    """Sparsity must be a number in [0, 1): 1.0 would remove every weight."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise BadInput(f"sparsity must be a number in [0, 1), not {value!r}")
    if not 0.0 <= value < 1.0:
        raise BadInput(f"sparsity must be in [0, 1), not {value}: 1.0 would remove every weight")
    return float(value)


def parse_sparsities(text: str, percent: bool = False, flag: str = "--rates") -> tuple[float, ...]:
    """A comma-separated list of sparsities, in the order given; bad input names the entry.

    Fractions (`0,0.2,0.9`, the CLI's `--rates`) or, with `percent`, percents as the pages
    take them (`0, 20%, 90`).

    >>> parse_sparsities("0, 0.2,0.9")
    (0.0, 0.2, 0.9)
    >>> parse_sparsities("90; 20%", percent=True)
    (0.9, 0.2)
    """
    where = "" if percent else f"{flag}: "
    example = "0, 50, 90" if percent else "0,0.5,0.9"
    values = []
    for part in text.replace(";", ",").split(","):
        part = part.strip().rstrip("%").strip() if percent else part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            unit = "in percent" if percent else "in [0, 1)"
            raise BadInput(f"{where}{part!r} is not a number: list sparsities {unit}, e.g. {example}") from None
        if percent:
            if not 0 <= value < 100:
                raise BadInput(f"sparsity {value:g}% is outside [0, 100): 100% would remove every weight")
            value = round(value / 100, 6)
        values.append(validate_sparsity(value))
    if not values:
        raise BadInput("the sparsity list is empty: give e.g. 0, 50, 90" if percent else
                       f"{flag} is empty: give comma-separated sparsities in [0, 1), e.g. {example}")
    return tuple(values)


def validate_grid(sparsities: Any, what: str, example: str) -> None:
    """A grid of target sparsities: a non-empty tuple, each in [0, 1), none listed twice."""
    if not isinstance(sparsities, tuple) or not sparsities:
        raise BadInput(f"{what} needs at least one sparsity: give e.g. --rates {example}")
    for rate in sparsities:
        validate_sparsity(rate)
    if len(set(sparsities)) != len(sparsities):
        raise BadInput("the sparsity grid lists a value twice: list each sparsity once")


def validate_layer_sparsity(plan: Any) -> None:
    """A per-layer plan is a non-empty tuple of (name, sparsity) pairs, names unique, each in [0, 1)."""
    if not isinstance(plan, tuple) or not plan:
        raise BadInput("layer_sparsity must be a non-empty tuple of (layer, sparsity) pairs")
    names = []
    for pair in plan:
        if not isinstance(pair, tuple) or len(pair) != 2 or not isinstance(pair[0], str):
            raise BadInput(f"layer_sparsity entries must be (layer name, sparsity) pairs, not {pair!r}")
        try:
            validate_sparsity(pair[1])
        except BadInput as exc:
            raise BadInput(f"layer {pair[0]}: {exc}") from None
        names.append(pair[0])
    if len(set(names)) != len(names):
        raise BadInput("layer_sparsity names a layer twice: give each layer one sparsity")


@dataclass(frozen=True)
class SweepSpec(SpecCodec):
    """Which model and data, which methods at which target sparsities, and how to measure."""

    model: ModelRef = field(default_factory=ModelRef)
    data: DataRef = field(default_factory=DataRef)
    methods: tuple[str, ...] = ("magnitude",)
    sparsities: tuple[float, ...] = REFERENCE_SPARSITIES  # the target sparsities, each per method
    scope: str = "layer"
    layers: Optional[tuple[str, ...]] = None  # None = every prunable layer
    finetune_epochs: int = 0  # masked fine-tuning per point (0 = one-shot)
    seed: int = 0
    noise_sigma: float = 0.1
    latency_batch: int = 32

    def __post_init__(self) -> None:
        if not isinstance(self.methods, tuple) or not self.methods:
            raise BadInput("a sweep needs at least one method: give e.g. --methods magnitude,random")
        if len(set(self.methods)) != len(self.methods):
            raise BadInput(f"methods {', '.join(self.methods)} name a method twice: list each once")
        validate_grid(self.sparsities, "a sweep", "0,0.5,0.9")
        if self.scope not in SCOPES:
            raise BadInput(f"scope must be one of {', '.join(SCOPES)}, not {self.scope!r}")
        if self.layers is not None and len(self.layers) == 0:
            raise BadInput("no layer selected for pruning: select at least one prunable layer")
        if self.finetune_epochs < 0:
            raise BadInput(f"finetune epochs must be >= 0, not {self.finetune_epochs}")

    def point(self, method: str, rate: float) -> PruneSpec:
        """The single prune this sweep runs for (method, rate): `Engine.prune` of it gives the same row."""
        return PruneSpec(
            model=self.model, data=self.data, method=method, target_sparsity=rate, scope=self.scope,
            layers=self.layers, finetune_epochs=self.finetune_epochs, seed=self.seed,
            noise_sigma=self.noise_sigma, latency_batch=self.latency_batch,
        )

    def points(self) -> list[tuple[str, float]]:
        """(method, rate) in run order: method by method, so each curve completes in turn."""
        return [(m, float(r)) for m in self.methods for r in self.sparsities]

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "SweepSpec":
        raw = spec_fields(raw)
        raw["methods"] = tuple(raw.get("methods", ("magnitude",)))
        raw["sparsities"] = tuple(float(r) for r in raw.pop("rates", raw.get("sparsities", REFERENCE_SPARSITIES)))
        return cls(**raw)


@dataclass(frozen=True)
class SensitivitySpec(SpecCodec):
    """Which model and data, which sparsities to try on each layer alone, with which method."""

    model: ModelRef = field(default_factory=ModelRef)
    data: DataRef = field(default_factory=DataRef)
    sparsities: tuple[float, ...] = SCAN_SPARSITIES  # each tried on every layer alone
    method: str = "magnitude"
    layers: Optional[tuple[str, ...]] = None  # None = every prunable layer
    seed: int = 0

    def __post_init__(self) -> None:
        validate_grid(self.sparsities, "a sensitivity scan", "0.5,0.9")
        if self.layers is not None and len(self.layers) == 0:
            raise BadInput("no layer selected for the scan: select at least one prunable layer")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "SensitivitySpec":
        raw = spec_fields(raw)
        raw["sparsities"] = tuple(float(r) for r in raw.pop("rates", raw.get("sparsities", SCAN_SPARSITIES)))
        return cls(**raw)
