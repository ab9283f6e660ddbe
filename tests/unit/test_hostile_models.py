"""Hostile and malformed model files (built here): each refused in one line before Keras sees it.

The Lambda files write a canary when their code runs; it must never appear, in-process or via the CLI.
"""
from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
from conftest import INPUT_SHAPE, build_tiny_cnn

from pruning.errors import BadInput
from pruning.model.safety import MAX_ZIP_MEMBERS, inspect_model_file

pytestmark = pytest.mark.slow


def lambda_model(canary: Path, nested: bool = False):
    """A model whose Lambda writes `canary` when called (Keras calls it while loading).
    Building the model calls it too, so the canary is removed before the model is returned."""
    from pruning._keras import keras

    L = keras.layers
    evil = L.Lambda(lambda x, p=str(canary): (open(p, "w").write("ran"), x)[1], name="evil")
    inputs = L.Input(INPUT_SHAPE)
    x = keras.Sequential([L.Input(INPUT_SHAPE), evil], name="inner")(inputs) if nested else evil(inputs)
    outputs = L.Dense(4, activation="softmax", name="out")(L.Flatten(name="flatten")(x))
    assert canary.exists()  # the function really runs when called
    canary.unlink()
    return keras.Model(inputs, outputs)


def save(model, path: Path) -> Path:
    model.save(path)
    return path


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def write_zip(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return path


def edit_keras(src: Path, dst: Path, edit: Callable[[dict[str, bytes]], dict[str, bytes]]) -> Path:
    return write_zip(dst, list(edit(members(src)).items()))


def edit_config(src: Path, dst: Path, edit: Callable[[dict], None], key: str = "config.json") -> Path:
    def change(files):
        config = json.loads(files[key])
        edit(config)
        return {**files, key: json.dumps(config).encode()}

    return edit_keras(src, dst, change)


def edit_keras_weights(src: Path, dst: Path, edit: Callable[[h5py.File], None]) -> Path:
    def change(files):
        buffer = io.BytesIO(files["model.weights.h5"])
        with h5py.File(buffer, "r+") as h5:
            edit(h5)
        return {**files, "model.weights.h5": buffer.getvalue()}

    return edit_keras(src, dst, change)


def copy_h5(src: Path, dst: Path, edit: Callable[[h5py.File], None]) -> Path:
    dst.write_bytes(src.read_bytes())
    with h5py.File(dst, "r+") as h5:
        edit(h5)
    return dst


def set_h5_config(h5: h5py.File, edit: Callable[[dict], None]) -> None:
    config = json.loads(h5.attrs["model_config"])
    edit(config)
    h5.attrs["model_config"] = json.dumps(config)


def first_layer(config: dict, class_name: str) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == class_name)


def patch_declared_size(path: Path, member: str, size: int) -> Path:
    """Overwrite `member`'s uncompressed size in the central directory: a zip bomb's claim."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        name_len = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + name_len].decode() == member:
            data[at + 24 : at + 28] = size.to_bytes(4, "little")
            break
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    return path


def deep_json(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


@pytest.fixture(scope="module")
def canary(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("canary") / "code-ran.txt"


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    """A tiny valid model in both formats, and its weights alone: the base for edits."""
    from pruning._keras import keras  # noqa: F401  (sets the legacy-Keras flag first)

    folder = tmp_path_factory.mktemp("good")
    model = build_tiny_cnn()
    model.save_weights(folder / "weights_only.h5")
    return {"keras": save(model, folder / "tiny.keras"), "h5": save(model, folder / "tiny.h5"),
            "weights": folder / "weights_only.h5"}


def build_hostile(folder: Path, canary: Path, good: dict[str, Path]) -> list[tuple[Path, str]]:
    """(file, fragment its one-line refusal must contain), one per hostile or malformed file."""
    from pruning._keras import keras

    K, H = good["keras"], good["h5"]
    cases: list[tuple[Path, str]] = []

    def add(path: Path, fragment: str) -> None:
        cases.append((path, fragment))

    # Lambda that writes the canary: .h5 (tf_keras runs it even in safe mode), .keras,
    # HDF5 bytes renamed .keras (tf_keras would read them as HDF5), and nested in a submodel.
    lam = lambda_model(canary)
    add(save(lam, folder / "lambda.h5"), "layer evil of lambda.h5 is a Lambda layer")
    add(save(lam, folder / "lambda.keras"), "layer evil of lambda.keras is a Lambda layer")
    renamed = folder / "lambda_hdf5.keras"
    renamed.write_bytes((folder / "lambda.h5").read_bytes())
    add(renamed, "holds HDF5 data, not a .keras archive: rename it to .h5")
    add(save(lambda_model(canary, nested=True), folder / "lambda_nested.h5"), "layer evil of lambda_nested.h5 is a Lambda")

    # archive members
    files = members(K)
    add(write_zip(folder / "zip_slip.keras", [*files.items(), ("../../evil.py", b"print('x')")]), "unsafe archive member '../../evil.py'")
    add(write_zip(folder / "zip_absolute.keras", [*files.items(), ("/tmp/evil.py", b"x")]), "unsafe archive member '/tmp/evil.py'")
    add(write_zip(folder / "zip_extra.keras", [*files.items(), ("assets/evil.so", b"\x7fELF")]), "unexpected archive member 'assets/evil.so'")
    add(write_zip(folder / "zip_npz_weights.keras", [("config.json", files["config.json"]), ("metadata.json", files["metadata.json"]),
                                                    ("model.weights.npz", b"PK")]), "unexpected archive member 'model.weights.npz'")
    add(write_zip(folder / "zip_duplicate.keras", [*files.items(), ("config.json", b"{}")]), "'config.json' twice")
    add(write_zip(folder / "zip_many.keras", [(f"m{i}", b"") for i in range(MAX_ZIP_MEMBERS * 8)]), "archive members, a .keras file has 3")
    add(write_zip(folder / "zip_missing.keras", [("config.json", files["config.json"]), ("metadata.json", files["metadata.json"])]), "lacks model.weights.h5")
    bomb = write_zip(folder / "zip_bomb.keras", list(files.items()))
    add(patch_declared_size(bomb, "model.weights.h5", 0xFFFFFFF0), "unpacks to 4.0 GiB, over the 2 GiB limit")

    # configs: a Keras 2 config claiming Keras 3, custom and subclassed classes, unknown modules, code by name
    add(edit_config(K, folder / "keras3.keras", lambda m: m.update(keras_version="3.4.1"), "metadata.json"),
        "is a tf_keras class, but the file says Keras 3.4.1 saved it")
    add(copy_h5(H, folder / "keras3.h5", lambda h5: h5.attrs.__setitem__("keras_version", "3.4.1")),
        "has Keras 2 inbound_nodes, but the file says Keras 3.4.1 saved it")

    @keras.saving.register_keras_serializable(package="Evil")
    class EvilDense(keras.layers.Dense):
        pass

    L = keras.layers
    custom = keras.Sequential([L.Input((6,)), EvilDense(4, name="mine")])
    add(save(custom, folder / "custom.keras"), "layer mine of custom.keras is a custom object (Evil>EvilDense)")
    add(save(custom, folder / "custom.h5"), "layer mine of custom.h5 uses 'Evil>EvilDense'")

    class Subclassed(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = L.Dense(4)

        def call(self, x):
            return self.dense(x)

    sub = Subclassed()
    sub(np.zeros((1, 6), np.float32))
    add(save(sub, folder / "subclassed.keras"), "subclassed.keras is a subclassed model (Subclassed)")
    add(copy_h5(H, folder / "subclassed.h5", lambda h5: h5.attrs.__setitem__(
        "model_config", json.dumps({"class_name": "Subclassed", "config": {}}))), "is a subclassed model (Subclassed)")
    add(edit_config(K, folder / "unknown_module.keras", lambda c: first_layer(c, "Dense").update(module="os")),
        "layer hidden of unknown_module.keras comes from the unknown module 'os'")
    add(copy_h5(H, folder / "tfop_write.h5", lambda h5: set_h5_config(h5, lambda c: first_layer(c, "Flatten").update(
        class_name="TFOpLambda", config={"name": "flatten", "function": "io.write_file"}))),
        "layer flatten of tfop_write.h5 calls the TensorFlow function 'io.write_file'")
    add(copy_h5(H, folder / "activation.h5", lambda h5: set_h5_config(h5, lambda c: first_layer(c, "Dense")["config"].update(
        activation="evil_fn"))), "layer hidden of activation.h5 uses activation 'evil_fn'")
    add(edit_keras(K, folder / "config_garbage.keras", lambda f: {**f, "config.json": b"{not json"}), "config.json is not valid JSON")
    add(edit_keras(K, folder / "config_list.keras", lambda f: {**f, "config.json": b"[]"}), "config_list.keras has no model config")
    add(edit_keras(K, folder / "config_deep.keras", lambda f: {**f, "config.json": deep_json(100_000)}), "config.json is not valid JSON")
    add(copy_h5(H, folder / "no_config.h5", lambda h5: h5.attrs.__delitem__("model_config")), "holds weights only")
    add(good["weights"], "weights_only.h5 holds weights only")

    # HDF5 structure: links and storage in other files
    add(copy_h5(H, folder / "external_link.h5", lambda h5: h5["model_weights"].__setitem__(
        "leak", h5py.ExternalLink("/etc/passwd", "/"))), "HDF5 external link to /etc/passwd at /model_weights/leak")
    add(copy_h5(H, folder / "soft_link.h5", lambda h5: h5.__setitem__("loop", h5py.SoftLink("/model_weights"))), "HDF5 soft link")
    outside = folder / "outside.bin"
    outside.write_bytes(b"\x00" * 64)
    add(copy_h5(H, folder / "external_data.h5", lambda h5: h5.create_dataset(
        "model_weights/hidden/hidden/extra", shape=(4,), dtype="f4", external=[(str(outside), 0, 16)])),
        "stores its data in another file")
    add(edit_keras_weights(K, folder / "weights_external.keras", lambda h5: h5.__setitem__(
        "leak", h5py.ExternalLink("/etc/passwd", "/"))), "HDF5 external link")

    # weights
    def poison(value: float, dataset: str):
        def edit(h5: h5py.File) -> None:
            data = h5[dataset][()]
            data.flat[0] = value
            h5[dataset][...] = data
        return edit

    add(copy_h5(H, folder / "nan.h5", poison(np.nan, "model_weights/hidden/hidden/kernel:0")), "layer hidden of nan.h5 has NaN or Inf weights")
    add(edit_keras_weights(K, folder / "inf.keras", poison(np.inf, "layers/dense_1/vars/0")), "layer out of inf.keras has NaN or Inf weights")
    add(edit_keras_weights(K, folder / "nan_conv.keras", poison(np.nan, "layers/conv2d/vars/1")), "layer conv of nan_conv.keras")

    # broken or not models at all
    half = folder / "truncated.keras"
    half.write_bytes(K.read_bytes()[: K.stat().st_size // 2])
    add(half, "truncated or damaged zip archive")
    half_h5 = folder / "truncated.h5"
    half_h5.write_bytes(H.read_bytes()[: H.stat().st_size // 2])
    add(half_h5, "truncated or damaged HDF5")
    for name, data, fragment in [
        ("empty.keras", b"", "empty.keras is empty"),
        ("empty.h5", b"", "empty.h5 is empty"),
        ("random.keras", np.random.default_rng(0).bytes(4096), "no zip header"),
        ("random.h5", np.random.default_rng(1).bytes(4096), "no HDF5 header"),
        ("zip_named.h5", K.read_bytes(), "is a zip archive, not HDF5: rename it to .keras"),
        ("pickle.keras", b"\x80\x04\x95" + os.urandom(64), "no zip header"),
        ("model.pkl", b"\x80\x04\x95", "model.pkl is not a .keras or .h5 file"),
        ("savedmodel.pb", b"\x08\x01", "savedmodel.pb is not a .keras or .h5 file"),
    ]:
        path = folder / name
        path.write_bytes(data)
        add(path, fragment)
    return cases + build_hostile_keras3(folder, canary)


def keras3_lambda_model(canary: Path):
    """A Keras 3 model whose Lambda writes `canary` when called (Keras 3 runs it when it loads
    the file with safe_mode=False); building calls it, so the canary is removed here."""
    k3 = keras3()
    L = k3.layers
    # the path is a constant of the code itself: Keras 3 cannot restore a lambda's default arguments
    code = eval(f"lambda x: (open({str(canary)!r}, 'w').write('ran'), x)[1]")  # noqa: S307
    evil = L.Lambda(code, name="evil")
    inputs = k3.Input((6,))
    model = k3.Model(inputs, L.Dense(4, name="out")(evil(inputs)))
    assert canary.exists()
    canary.unlink()
    return model


def keras3():
    from pruning.model.keras3 import keras3 as bridge

    return bridge()


def build_hostile_keras3(folder: Path, canary: Path) -> list[tuple[Path, str]]:
    """Files written by Keras 3 (`import keras`), refused like their Keras 2 counterparts."""
    k3 = keras3()
    L = k3.layers
    cases: list[tuple[Path, str]] = []

    def add(path: Path, fragment: str) -> None:
        cases.append((path, fragment))

    plain = k3.Sequential([k3.Input((6,)), L.Dense(5, name="hidden"), L.Dense(3, name="out")], name="plain")
    K3 = save(plain, folder / "k3_plain.keras")
    H3 = save(plain, folder / "k3_plain.h5")
    lam = keras3_lambda_model(canary)
    add(save(lam, folder / "k3_lambda.keras"), "layer evil of k3_lambda.keras is a Lambda layer")
    add(save(lam, folder / "k3_lambda.h5"), "layer evil of k3_lambda.h5 is a Lambda layer")
    add(edit_config(K3, folder / "k3_lambda_activation.keras", lambda c: first_layer(c, "Dense")["config"].update(
        activation={"class_name": "__lambda__", "config": {"code": "ZXZpbA==", "defaults": None, "closure": None}})),
        "layer hidden of k3_lambda_activation.keras holds a serialized Python function (__lambda__)")
    add(edit_config(K3, folder / "k3_function.keras", lambda c: first_layer(c, "Dense")["config"].update(
        activation={"module": "builtins", "class_name": "function", "config": "eval", "registered_name": "function"})),
        "layer hidden of k3_function.keras holds a serialized Python function (function)")

    @k3.saving.register_keras_serializable(package="Evil3")
    class EvilDense3(L.Dense):
        pass

    add(save(k3.Sequential([k3.Input((6,)), EvilDense3(4, name="mine")]), folder / "k3_custom.keras"),
        "layer mine of k3_custom.keras is a custom object (Evil3>EvilDense3)")
    add(edit_config(K3, folder / "k3_registered.keras", lambda c: first_layer(c, "Dense").update(registered_name="Evil>Dense")),
        "layer hidden of k3_registered.keras is a custom object (Evil>Dense)")
    add(edit_config(K3, folder / "k3_module.keras", lambda c: first_layer(c, "Dense").update(module="os")),
        "layer hidden of k3_module.keras comes from the module 'os'")
    add(edit_config(K3, folder / "k3_dtype_module.keras", lambda c: first_layer(c, "Dense")["config"]["dtype"].update(
        module="subprocess")), "layer hidden of k3_dtype_module.keras comes from the module 'subprocess'")
    add(edit_config(K3, folder / "k3_unknown_class.keras", lambda c: first_layer(c, "Dense").update(class_name="TextVectorization")),
        "uses 'TextVectorization', which PruneScope cannot rebuild from Keras")
    # keras.ops nodes and Keras 3's application layers pass by module + class name (test_keras3_graphs.py):
    # the same names from another module, an op the bridge does not translate, or a custom one do not
    # (op nodes are named by a session-wide counter, add_3 & co.: the fragments leave the name out)
    LayerScale = k3.src.applications.convnext.LayerScale
    inputs = k3.Input((6,))
    ops_model = k3.Model(inputs, L.Dense(3, name="out")(LayerScale(0.5, 6, name="scale")(k3.ops.relu(inputs) + 1.0)))
    K3_OPS = save(ops_model, folder / "k3_ops_plain.keras")
    add(edit_config(K3_OPS, folder / "k3_op_module.keras", lambda c: first_layer(c, "Add").update(module="os")),
        "of k3_op_module.keras comes from the module 'os'")
    add(edit_config(K3_OPS, folder / "k3_op_class.keras", lambda c: first_layer(c, "Add").update(
        class_name="Eval", registered_name="Eval")), "of k3_op_class.keras is keras.ops' Eval, which PruneScope")
    add(edit_config(K3_OPS, folder / "k3_op_registered.keras", lambda c: first_layer(c, "Relu").update(
        registered_name="Evil>Relu")), "of k3_op_registered.keras is a custom object (Evil>Relu)")
    add(edit_config(K3_OPS, folder / "k3_op_lambda.keras", lambda c: first_layer(c, "Add")["inbound_nodes"][0][
        "args"].__setitem__(1, {"class_name": "__lambda__", "config": {"code": "..."}})),
        "of k3_op_lambda.keras holds a serialized Python function (__lambda__)")
    add(edit_config(K3_OPS, folder / "k3_library_module.keras", lambda c: first_layer(c, "LayerScale").update(
        module="evil.convnext")), "layer scale of k3_library_module.keras comes from the module 'evil.convnext'")
    add(edit_config(K3_OPS, folder / "k3_library_class.keras", lambda c: first_layer(c, "LayerScale").update(
        class_name="ConvNeXtBlock", registered_name=None)),
        "layer scale of k3_library_class.keras comes from the module 'keras.src.applications.convnext'")
    add(edit_config(K3_OPS, folder / "k3_activation.keras", lambda c: first_layer(c, "Dense")["config"].update(
        activation="eval")), "layer out of k3_activation.keras uses activation 'eval'")

    class Subclassed3(k3.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = L.Dense(4)

        def call(self, x):
            return self.dense(x)

    sub = Subclassed3()
    sub(np.zeros((1, 6), np.float32))
    add(save(sub, folder / "k3_subclassed.keras"), "k3_subclassed.keras is a subclassed model (Subclassed3)")
    add(edit_keras_weights(K3, folder / "k3_external.keras", lambda h5: h5.__setitem__(
        "leak", h5py.ExternalLink("/etc/passwd", "/"))), "HDF5 external link to /etc/passwd at /leak")
    add(copy_h5(H3, folder / "k3_external.h5", lambda h5: h5["model_weights"].__setitem__(
        "leak", h5py.ExternalLink("/etc/passwd", "/"))), "HDF5 external link to /etc/passwd at /model_weights/leak")
    bomb = write_zip(folder / "k3_bomb.keras", list(members(K3).items()))
    add(patch_declared_size(bomb, "model.weights.h5", 0xFFFFFFF0), "unpacks to 4.0 GiB, over the 2 GiB limit")
    add(write_zip(folder / "k3_extra.keras", [*members(K3).items(), ("assets/x.so", b"\x7fELF")]),
        "unexpected archive member 'assets/x.so'")
    renamed = folder / "k3_renamed.h5"
    renamed.write_bytes(K3.read_bytes())
    add(renamed, "k3_renamed.h5 is a zip archive, not HDF5: rename it to .keras")
    add(edit_keras_weights(K3, folder / "k3_nan.keras", lambda h5: h5["layers/dense_1/vars/0"].__setitem__(0, np.nan)),
        "layer out of k3_nan.keras has NaN or Inf weights")
    return cases


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, canary, good) -> list[tuple[Path, str]]:
    cases = build_hostile(tmp_path_factory.mktemp("hostile"), canary, good)
    assert not canary.exists(), "saving the files must not run the Lambda"
    return cases


def test_at_least_25_hostile_files_each_refused_in_one_line(hostile, canary):
    assert len(hostile) >= 25
    assert sum(1 for path, _ in hostile if path.name.startswith("k3_")) == 23
    for path, fragment in hostile:
        with pytest.raises(BadInput) as caught:
            inspect_model_file(path)
        message = str(caught.value)
        assert fragment in message, (path.name, message)
        assert "\n" not in message and ": " in message  # one line: what was wrong, then what to do
    assert not canary.exists()


def test_the_lambda_files_really_run_code_when_keras_loads_them(tmp_path):
    """The threat is real: unchecked, tf_keras runs the Lambda from .h5 and from HDF5 bytes
    named .keras, safe mode or not. (Without this, the canary test could not fail.)"""
    from pruning._keras import keras

    ran = tmp_path / "ran.txt"
    h5 = save(lambda_model(ran), tmp_path / "lambda.h5")
    keras.models.load_model(h5, compile=False, safe_mode=True)
    assert ran.exists()
    ran.unlink()
    renamed = tmp_path / "lambda.keras"
    renamed.write_bytes(h5.read_bytes())
    keras.models.load_model(renamed, compile=False, safe_mode=True)
    assert ran.exists()
    ran.unlink()
    k3 = keras3()  # Keras 3 runs its Lambda too once safe mode is off: the check must not rely on it
    path = save(keras3_lambda_model(ran), tmp_path / "k3_lambda.keras")
    k3.saving.load_model(path, compile=False, safe_mode=False)
    assert ran.exists()


def test_load_model_file_checks_before_keras(hostile, canary, monkeypatch):
    """The backend's only door to user files refuses them before keras.models.load_model."""
    from pruning.model import baselines
    from pruning.specs import ModelRef

    called = []
    monkeypatch.setattr(baselines.keras.models, "load_model", lambda *a, **k: called.append(a))
    monkeypatch.setattr(keras3().saving, "load_model", lambda *a, **k: called.append(a))
    for path, fragment in hostile:
        if path.suffix not in (".keras", ".h5"):
            continue
        with pytest.raises(BadInput, match=re.escape(fragment)):
            baselines.load_model_file(ModelRef.parse(str(path)))
    assert called == [] and not canary.exists()


def test_cli_exits_2_with_one_line_for_every_hostile_file(hostile, canary, tiny_npz, capsys):
    from pruning.cli import main

    for path, fragment in hostile:
        code = main(["prune", "--model", str(path), "--dataset", str(tiny_npz), "--method", "magnitude",
                     "--sparsity", "0.5"])
        err = capsys.readouterr().err.strip()
        assert code == 2, (path.name, err)
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, (path.name, err)
    assert not canary.exists()


def test_good_models_pass_and_load(tmp_path, tiny_model_file, good):
    """The zoo's architectures in both formats, the conftest model, a nested model and a
    functional model with TF-op layers (x * 2) are all accepted and load."""
    from pruning._keras import keras
    from pruning.model.baselines import load_model_file
    from pruning.model.zoo import ZOO
    from pruning.specs import ModelRef

    L = keras.layers
    inputs = L.Input((6,))
    inner = keras.Sequential([L.Input((6,)), L.Dense(5, name="inner_dense")], name="inner")
    outputs = L.Dense(3, name="head")(inner(inputs) * 2.0)
    models = {"nested_ops": keras.Model(inputs, outputs)}
    for name in ("mlp", "cnn", "resnet20", "lstm"):
        shape = (8, 8) if name == "lstm" else (8, 8, 3) if name == "resnet20" else (8, 8, 1)
        models[name] = ZOO[name].build(shape, 10)
    paths = [tiny_model_file, good["keras"], good["h5"]]
    for name, model in models.items():
        paths += [save(model, tmp_path / f"{name}.keras"), save(model, tmp_path / f"{name}.h5")]
    for path in paths:
        info = inspect_model_file(path)
        assert info.layers >= 2 and info.keras_version.startswith("2.")
        loaded = load_model_file(ModelRef.parse(str(path)))
        assert isinstance(loaded, keras.Model)
    assert len(paths) == 13


def test_nan_in_a_nested_layer_names_the_nested_layer(tmp_path):
    from pruning._keras import keras

    L = keras.layers
    inputs = L.Input((6,))
    inner = keras.Sequential([L.Input((6,)), L.Dense(5, name="first"), L.Dense(5, name="second")], name="inner")
    model = keras.Model(inputs, L.Dense(3, name="head")(inner(inputs)))
    weights = model.get_weights()
    weights[2][0, 0] = np.nan  # the kernel of inner/second
    model.set_weights(weights)
    with pytest.raises(BadInput, match="layer inner/second of nested.keras has NaN or Inf"):
        inspect_model_file(save(model, tmp_path / "nested.keras"))
    with pytest.raises(BadInput, match="layer inner of nested.h5 has NaN or Inf"):
        inspect_model_file(save(model, tmp_path / "nested.h5"))


def test_upload_name_is_shown_but_the_stored_suffix_is_checked(tmp_path):
    """Uploads are stored as <sha>.<ext>: messages name the user's file, Keras reads the path."""
    stored = tmp_path / "0123abcd.keras"
    stored.write_bytes(b"\x00" * 64)
    with pytest.raises(BadInput, match=r"^my model\.h5 is not a \.keras archive \(no zip header\)"):
        inspect_model_file(stored, "my model.h5")


def test_layers_tf_keras_itself_defines_pass_and_load(tmp_path):
    """keras.applications' own layers (ConvNeXt's LayerScale, InceptionResNetV2's CustomScaleLayer)
    and TensorFlow's initializers (EfficientNetV2's tf.constant_initializer) are not custom code."""
    from tf_keras.src.applications.convnext import LayerScale
    from tf_keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    from pruning._keras import keras, tf
    from pruning.model.baselines import load_model_file
    from pruning.specs import ModelRef

    L = keras.layers
    inputs = L.Input((4, 4, 8))
    x = L.Dense(8, name="dense", bias_initializer=tf.constant_initializer(0.1))(inputs)
    x = LayerScale(0.5, 8, name="layer_scale")(x)
    x = CustomScaleLayer(0.2, name="custom_scale")([inputs, x])
    model = keras.Model(inputs, L.Dense(3, name="head")(L.Flatten()(x)))
    sample = np.random.default_rng(0).normal(size=(5, 4, 4, 8)).astype(np.float32)
    for suffix in (".keras", ".h5"):
        path = save(model, tmp_path / f"library{suffix}")
        assert inspect_model_file(path).layers == 6
        loaded = load_model_file(ModelRef.parse(str(path)))
        np.testing.assert_allclose(loaded(sample).numpy(), model(sample).numpy(), atol=1e-6)


@pytest.mark.parametrize("family,side", [("ConvNeXtTiny", 32), ("InceptionResNetV2", 75), ("EfficientNetV2B0", 32)])
def test_keras_applications_families_pass_the_check(tmp_path, family, side):
    """The three families refused before (issue 15), built by tf_keras with random weights.
    Loading them is the test above on their layers: a full load of these takes minutes on 2 cores."""
    from pruning._keras import keras

    model = getattr(keras.applications, family)(weights=None, input_shape=(side, side, 3), classes=10)
    info = inspect_model_file(save(model, tmp_path / f"{family}.keras"))

    def configured(layers) -> int:  # a nested Sequential's config also lists its InputLayer
        return sum(configured(l.layers) + 1 if isinstance(l, keras.Model) else 1 for l in layers)

    assert info.layers == configured(model.layers)
