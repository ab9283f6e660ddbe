"""Checks a model file before any Keras call: format, archive, config allowlist, weights.

Uses zipfile/json/h5py/numpy only (never TensorFlow), so it also runs in the UI process.
"""
from __future__ import annotations

import json
import re
import shutil
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import h5py
import numpy as np

from ..errors import BadInput
from .config_walk import check_keras3_config, check_model_config, layer_name

# Models are programs: tf_keras runs a Lambda from an .h5 even with safe_mode=True. Decisions:
# - The extension must match the bytes. HDF5 bytes named `.keras` are refused (rename to .h5),
#   not routed: tf_keras would silently take the legacy HDF5 path for them, and a file must be
#   checked the way Keras will read it. Likewise a zip named `.h5` is refused.
# - A `.keras` archive holds exactly config.json, metadata.json and model.weights.h5 (what
#   tf_keras writes); assets and npz weights belong to layers that are not on the allowlist.
# - Only the model config is checked, not `compile_config`/`training_config`: models are
#   loaded with compile=False, so those are never deserialized.
# - The config is walked with the rules of the Keras that says it wrote the file (metadata.json or
#   the HDF5 `keras_version`): Keras 2 files against tf_keras' format, Keras 3 files against Keras 3's
#   (config_walk.py); a file whose config does not match the version it states is refused.
# - The file is checked, then loaded by path: callers must not let it change in between
#   (uploads are content-addressed files in a per-session folder).

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
KERAS_SUFFIXES = (".keras",)
HDF5_SUFFIXES = (".h5", ".hdf5")

MAX_FILE_BYTES = 2 << 30  # ResNet-50 is ~100 MB; anything far larger is not a model we can prune here
MAX_ZIP_MEMBERS = 16  # tf_keras writes 3
MAX_UNCOMPRESSED_BYTES = 2 << 30  # declared sizes; zipfile never reads past a member's declared size
MAX_JSON_BYTES = 32 << 20  # ResNet-50's config.json is ~120 kB
MAX_HDF5_OBJECTS = 200_000
MAX_WEIGHT_BYTES = 2 << 30

KERAS_MEMBERS = frozenset({"config.json", "metadata.json", "model.weights.h5"})

@dataclass(frozen=True)
class ModelFileInfo:
    """What the checks learnt: the file's format, its Keras version and its layer count."""

    format: str  # "keras" or "h5"
    keras_version: str
    layers: int

    @property
    def keras3(self) -> bool:
        """Saved by Keras 3 (`import keras`): loaded through the bridge in pruning/model/keras3.py."""
        return keras_major(self.keras_version) >= 3


def inspect_model_file(path: str | Path, name: Optional[str] = None) -> ModelFileInfo:
    """Refuse, with a one-line BadInput, any model file Keras should not be handed.

    `name` is what the user called the file, shown in messages (an upload is stored under
    its content hash). The extension checked is the path's: Keras picks its reader by it.
    Never imports TensorFlow.
    """
    path = Path(path)
    name = name or path.name
    suffix = path.suffix.lower()
    if suffix not in KERAS_SUFFIXES + HDF5_SUFFIXES:
        raise BadInput(f"{name} is not a .keras or .h5 file: save the model with model.save('model.keras')")
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise BadInput(f"cannot read {name} ({exc.strerror}): upload the file again") from None
    if size == 0:
        raise BadInput(f"{name} is empty: save the model again with model.save('model.keras')")
    if size > MAX_FILE_BYTES:
        raise BadInput(f"{name} is {size / 2**30:.1f} GiB, over the {MAX_FILE_BYTES >> 30} GiB limit: use a smaller model")
    is_zip, is_hdf5 = head.startswith(ZIP_MAGIC), head == HDF5_MAGIC
    if suffix in KERAS_SUFFIXES:
        if is_hdf5:
            raise BadInput(f"{name} holds HDF5 data, not a .keras archive: rename it to .h5")
        if not is_zip:
            raise BadInput(f"{name} is not a .keras archive (no zip header): save it with model.save('model.keras')")
        return _inspect_keras(path, name)
    if is_zip:
        raise BadInput(f"{name} is a zip archive, not HDF5: rename it to .keras")
    if not is_hdf5:
        raise BadInput(f"{name} is not an HDF5 file (no HDF5 header): save it with model.save('model.h5')")
    return _inspect_hdf5(path, name)


def saved_by_keras3(path: str | Path) -> bool:
    """Whether a model file (already checked) says Keras 3 wrote it: a cheap look at its metadata."""
    path = Path(path)
    try:
        if path.suffix.lower() in KERAS_SUFFIXES:
            with zipfile.ZipFile(path) as archive:
                metadata = _read_json(archive, "metadata.json", path.name)
            version = str(metadata.get("keras_version", "")) if isinstance(metadata, dict) else ""
        else:
            with _open_hdf5(path, path.name) as h5:
                version = _attr_text(h5, "keras_version", path.name) or ""
    except (OSError, KeyError, zipfile.BadZipFile):
        return False
    return keras_major(version) >= 3


MODEL_FORMATS = ("keras2", "keras3")  # what a pruned model can be written as (keras2: tf_keras)


def default_out_format(model: Any) -> str:
    """The format a pruned model goes out in: the one it came in (a ModelRef; zoo models: keras2).

    Here, not in the bridge: the app's server picks the download's default without TensorFlow.
    """
    return "keras3" if getattr(model, "is_file", False) and saved_by_keras3(model.path) else "keras2"


# -- .keras archives -----------------------------------------------------------------------
def _zip_entry_count(path: Path) -> int:
    """Entries declared in the end-of-central-directory record, read before zipfile parses
    (and allocates) the whole directory; -1 when the record is missing."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        end = handle.tell()
        handle.seek(max(0, end - (22 + 0xFFFF)))
        tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(tail):
        return -1
    return struct.unpack("<H", tail[at + 10 : at + 12])[0]


def _inspect_keras(path: Path, name: str) -> ModelFileInfo:
    count = _zip_entry_count(path)
    if count < 0:
        raise BadInput(f"{name} is a truncated or damaged zip archive: save the model again")
    if count > MAX_ZIP_MEMBERS:
        raise BadInput(f"{name} has {count} archive members, a .keras file has 3: save the model with model.save")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise BadInput(f"{name} is a damaged .keras archive ({exc}): save the model again") from None
    with archive:
        infos = archive.infolist()
        _check_members(infos, name)
        metadata = _read_json(archive, "metadata.json", name)
        version = str(metadata.get("keras_version", "")) if isinstance(metadata, dict) else ""
        if not keras_major(version):
            raise BadInput(f"{name} does not say which Keras saved it: save it again with model.save")
        config = _read_json(archive, "config.json", name)
        layers = _check_config(config, version, name)
        # Keras 3 names weight groups by class like tf_keras does (dense, dense_1, ...)
        layer_of = lambda parts: _keras_layer_name(config, ["layers"] + parts)  # noqa: E731
        with tempfile.TemporaryFile() as weights:
            try:
                with archive.open("model.weights.h5") as member:
                    shutil.copyfileobj(member, weights, 1 << 20)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise BadInput(f"{name}: model.weights.h5 is damaged ({exc}): save the model again") from None
            weights.seek(0)
            if weights.read(8) != HDF5_MAGIC:
                raise BadInput(f"{name}: model.weights.h5 is not HDF5 data: save the model again with model.save")
            weights.seek(0)
            with _open_hdf5(weights, name) as h5:
                _check_hdf5_tree(h5, name)
                _check_finite(h5, "layers", name, layer_of)
    return ModelFileInfo("keras", version, layers)


def _check_members(infos: list[zipfile.ZipInfo], name: str) -> None:
    seen: set[str] = set()
    total = 0
    for info in infos:
        member = info.filename
        parts = member.replace("\\", "/").split("/")
        if member.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", member) or ".." in parts or "\x00" in member:
            raise BadInput(f"{name} has an unsafe archive member {member!r} (absolute path or '..'): "
                           "save the model again with model.save")
        if member in seen:
            raise BadInput(f"{name} has {member!r} twice in the archive: save the model again with model.save")
        seen.add(member)
        if member not in KERAS_MEMBERS:
            raise BadInput(f"{name} has an unexpected archive member {member!r} (a .keras file holds "
                           f"{', '.join(sorted(KERAS_MEMBERS))}): save the model with model.save('model.keras')")
        if info.flag_bits & 0x1:
            raise BadInput(f"{name} has an encrypted member {member!r}: save the model without encryption")
        total += info.file_size
    if total > MAX_UNCOMPRESSED_BYTES:
        raise BadInput(f"{name} unpacks to {total / 2**30:.1f} GiB, over the "
                       f"{MAX_UNCOMPRESSED_BYTES >> 30} GiB limit: use a smaller model")
    missing = KERAS_MEMBERS - seen
    if missing:
        raise BadInput(f"{name} lacks {', '.join(sorted(missing))}: save the model with model.save('model.keras')")


def _read_json(archive: zipfile.ZipFile, member: str, name: str) -> Any:
    info = archive.getinfo(member)
    if info.file_size > MAX_JSON_BYTES:
        raise BadInput(f"{name}: {member} is {info.file_size:,} bytes, over the {MAX_JSON_BYTES >> 20} MiB limit")
    try:
        with archive.open(member) as handle:
            return _parse_json(handle.read(MAX_JSON_BYTES + 1), f"{name}: {member}")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BadInput(f"{name}: {member} is damaged ({exc}): save the model again") from None


def _parse_json(raw: bytes | str, where: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON
        raise BadInput(f"{where} is not valid JSON: save the model again with model.save") from None


def keras_major(version: str) -> int:
    """The major version in a Keras version string; 0 when it says none."""
    match = re.match(r"^(\d+)\.", version or "")
    return int(match.group(1)) if match else 0


def _check_config(config: Any, version: str, name: str) -> int:
    """The config walk of the Keras that wrote the file (the version it states)."""
    if keras_major(version) >= 3:
        return check_keras3_config(config, name, version)
    return check_model_config(config, name)


def _snake(class_name: str) -> str:
    """tf_keras' `to_snake_case`, which names each layer's group in model.weights.h5."""
    text = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", class_name)
    text = re.sub("([a-z])([A-Z])", r"\1_\2", text).lower()
    return text if text[0] != "_" else "private" + text


def _keras_layer_name(config: Any, parts: list[str]) -> str:
    """`layers/conv2d_1/vars/0` -> the user's layer name, following tf_keras' naming of
    weight groups by class (the user's names are not in model.weights.h5)."""
    names: list[str] = []
    node = config
    while len(parts) >= 2 and parts[0] == "layers" and isinstance(node, dict):
        layers = node.get("config", {}).get("layers", []) if isinstance(node.get("config"), dict) else []
        if node.get("class_name") == "Sequential":  # Sequential.layers omits its InputLayer
            layers = [l for l in layers if isinstance(l, dict) and l.get("class_name") != "InputLayer"]
        used: dict[str, int] = {}
        found = None
        for layer in layers:
            if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
                continue
            key = _snake(layer["class_name"])
            used[key] = used.get(key, -1) + 1
            if (key if used[key] == 0 else f"{key}_{used[key]}") == parts[1]:
                found = layer
                break
        if found is None:
            names.append(parts[1])
            break
        names.append(layer_name(found) or parts[1])
        node, parts = found, parts[2:]
    return "/".join(names) or "/".join(parts)


# -- .h5 files -----------------------------------------------------------------------------
def _open_hdf5(source: Any, name: str) -> h5py.File:
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError) as exc:
        raise BadInput(f"{name} is a truncated or damaged HDF5 file ({str(exc)[:120]}): save the model again") from None


def _inspect_hdf5(path: Path, name: str) -> ModelFileInfo:
    with _open_hdf5(path, name) as h5:
        _check_hdf5_tree(h5, name)
        version = _attr_text(h5, "keras_version", name) or ""  # old Keras 2 files may not say
        raw = _attr_text(h5, "model_config", name)
        if raw is None:
            raise BadInput(f"{name} holds weights only, no model config: save the whole model with "
                           "model.save('model.h5'), not save_weights")
        config = _parse_json(raw, f"{name}: model_config")
        layers = _check_config(config, version, name)
        if "model_weights" not in h5:
            raise BadInput(f"{name} has a model config but no weights: save the whole model with model.save")
        _check_finite(h5, "model_weights", name, lambda parts: parts[0])
    return ModelFileInfo("h5", version, layers)


def _attr_text(h5: h5py.File, key: str, name: str) -> Optional[str]:
    if key not in h5.attrs:
        return None
    if h5.attrs.get_id(key).get_storage_size() > MAX_JSON_BYTES:
        raise BadInput(f"{name}: the {key} attribute is over {MAX_JSON_BYTES >> 20} MiB: save the model again")
    try:
        value = h5.attrs[key]
    except (OSError, ValueError, TypeError) as exc:
        raise BadInput(f"{name}: cannot read the {key} attribute ({exc}): save the model again") from None
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value
    raise BadInput(f"{name}: the {key} attribute is not text: save the model again with model.save")


def _check_hdf5_tree(h5: h5py.File, name: str) -> None:
    """Only hard links and self-contained datasets: an external link, external storage or a
    virtual dataset would make Keras read another file on this machine."""
    groups: list[h5py.Group] = [h5]
    count = 0

    def visit(path: str, obj: Any) -> Optional[bool]:
        nonlocal count
        count += 1
        if count > MAX_HDF5_OBJECTS:
            return True  # stop the walk; refused below
        if isinstance(obj, h5py.Group):
            groups.append(obj)
        elif isinstance(obj, h5py.Dataset):
            if obj.external or obj.is_virtual:
                raise BadInput(f"{name}: dataset /{path} stores its data in another file: "
                               "save the model again with model.save")
        return None

    try:
        h5.visititems(visit)  # hard links only: soft and external links are found below
        if count > MAX_HDF5_OBJECTS:
            raise BadInput(f"{name} holds over {MAX_HDF5_OBJECTS:,} HDF5 objects: save the model again with model.save")
        for group in groups:
            for key in group:
                link = group.get(key, getlink=True)
                if isinstance(link, (h5py.ExternalLink, h5py.SoftLink)):
                    kind = "external" if isinstance(link, h5py.ExternalLink) else "soft"
                    target = f" to {link.filename}" if kind == "external" else ""
                    raise BadInput(f"{name} has an HDF5 {kind} link{target} at {group.name.rstrip('/')}/{key}: "
                                   "upload a self-contained file saved with model.save")
    except (OSError, RuntimeError, KeyError) as exc:
        raise BadInput(f"{name} is a damaged HDF5 file ({str(exc)[:120]}): save the model again") from None


def _check_finite(h5: h5py.File, root: str, name: str, layer_of) -> None:
    """NaN/Inf weights would make every metric meaningless: name the layer that has them."""
    if root not in h5:
        return
    datasets: list[tuple[str, h5py.Dataset]] = []
    h5[root].visititems(lambda path, obj: datasets.append((path, obj)) if isinstance(obj, h5py.Dataset) else None)
    total = sum(int(d.size) * d.dtype.itemsize for _, d in datasets)
    if total > MAX_WEIGHT_BYTES:
        raise BadInput(f"{name} declares {total / 2**30:.1f} GiB of weights, over the "
                       f"{MAX_WEIGHT_BYTES >> 30} GiB limit: use a smaller model")
    for path, dataset in datasets:
        if not np.issubdtype(dataset.dtype, np.floating):
            continue
        try:
            values = dataset[()]
        except (OSError, ValueError, TypeError) as exc:
            raise BadInput(f"{name}: weights {path} cannot be read ({str(exc)[:120]}): save the model again") from None
        if not np.isfinite(values).all():
            layer = layer_of(path.split("/"))
            raise BadInput(f"layer {layer} of {name} has NaN or Inf weights: retrain or repair that layer, "
                           "then save the model again")
