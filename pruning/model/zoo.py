"""Built-in architectures, built for a dataset's input shape and class count.

Each builder is a pure factory `build_*(input_shape, num_classes) -> keras.Model`;
`ZOO` maps the names users pick to builders and their default training epochs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .._keras import keras

L = keras.layers


def build_mlp(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    return keras.Sequential(
        [
            L.Input(input_shape),
            L.Flatten(name="flatten"),
            L.Dense(256, activation="relu", name="dense_1"),
            L.Dense(128, activation="relu", name="dense_2"),
            L.Dense(num_classes, activation="softmax", name="predictions"),
        ],
        name="mlp",
    )


def build_cnn(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """LeNet-5 style: two 5x5 conv + pool stages, then 120-84-classes dense layers."""
    inputs = L.Input(input_shape)
    x = inputs
    for i, filters in enumerate((6, 16), start=1):
        x = L.Conv2D(filters, 5, padding="same", activation="relu", name=f"conv_{i}")(x)
        if min(x.shape[1], x.shape[2]) >= 2:
            x = L.MaxPooling2D(2, name=f"pool_{i}")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(120, activation="relu", name="dense_1")(x)
    x = L.Dense(84, activation="relu", name="dense_2")(x)
    outputs = L.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="cnn")


def build_resnet20(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """He et al. 2015 CIFAR ResNet-v1, depth 20: 3 stages x 3 basic blocks, 16/32/64 filters.

    Projection shortcuts (1x1 conv) where the shape changes, as in the Keras example;
    BatchNorm momentum 0.9 so the moving statistics settle within short training.
    """

    def conv_bn(x, filters, strides, name, activation=True, kernel=3):
        x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False,
                     kernel_initializer="he_normal", kernel_regularizer=keras.regularizers.l2(1e-4),
                     name=f"{name}_conv")(x)
        x = L.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
        return L.Activation("relu", name=f"{name}_relu")(x) if activation else x

    inputs = L.Input(input_shape)
    x = conv_bn(inputs, 16, 1, "stem")
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            strides = 2 if stage > 0 and block == 0 else 1
            name = f"s{stage + 1}b{block + 1}"
            y = conv_bn(x, filters, strides, f"{name}_1")
            y = conv_bn(y, filters, 1, f"{name}_2", activation=False)
            if strides != 1 or x.shape[-1] != filters:
                x = conv_bn(x, filters, strides, f"{name}_proj", activation=False, kernel=1)
            x = L.Add(name=f"{name}_add")([x, y])
            x = L.Activation("relu", name=f"{name}_out")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    outputs = L.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="resnet20")


def build_lstm(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """Image rows as a sequence: (rows, cols * channels) -> LSTM(64) -> Dense."""
    steps = input_shape[0]
    features = 1
    for d in input_shape[1:]:
        features *= d
    return keras.Sequential(
        [
            L.Input(input_shape),
            L.Reshape((steps, features), name="rows"),
            L.LSTM(64, name="lstm"),
            L.Dense(num_classes, activation="softmax", name="predictions"),
        ],
        name="lstm",
    )


IMAGENET_NOTOP = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


def imagenet_weights_path() -> Path | None:
    """ResNet50 ImageNet weights if they are already in the Keras cache (no download)."""
    path = Path.home() / ".keras" / "models" / IMAGENET_NOTOP
    return path if path.is_file() else None


def build_resnet50(input_shape: tuple[int, ...], num_classes: int) -> keras.Model:
    """keras.applications.ResNet50 as one flat graph, inputs resized to >= 32x32 RGB.

    Uses ImageNet weights when they are in the Keras cache (the head is new either way).
    """
    weights = imagenet_weights_path()
    inputs = L.Input(input_shape)
    x = inputs
    side = max(32, input_shape[0])
    if input_shape[0] != side or input_shape[1] != side:
        x = L.Resizing(side, side, name="resize")(x)
    if weights is not None and input_shape[-1] != 3:
        x = L.Concatenate(name="to_rgb")([x] * 3) if input_shape[-1] == 1 else L.Conv2D(3, 1, name="to_rgb")(x)
    backbone = keras.applications.ResNet50(
        include_top=False, weights=str(weights) if weights else None, input_tensor=x, pooling="avg"
    )
    outputs = L.Dense(num_classes, activation="softmax", name="predictions")(backbone.output)
    return keras.Model(inputs, outputs, name="resnet50")


@dataclass(frozen=True)
class ZooEntry:
    build: Callable[[tuple[int, ...], int], keras.Model]
    epochs: int  # default training epochs on a first use
    description: str


ZOO: dict[str, ZooEntry] = {
    "mlp": ZooEntry(build_mlp, 30, "MLP 256-128 (Dense only)"),
    "cnn": ZooEntry(build_cnn, 30, "LeNet-5 style CNN: 2 conv + 3 dense"),
    "resnet20": ZooEntry(build_resnet20, 30, "ResNet-20 v1 (He et al. 2015), ~0.27M params on CIFAR-10"),
    "lstm": ZooEntry(build_lstm, 40, "LSTM(64) over image rows, then Dense"),
    "resnet50": ZooEntry(build_resnet50, 5, "ResNet-50 (keras.applications)"),
}
