"""Fine-tuning that keeps masks: float32, or mixed float16 on GPUs that support it.

Zeros stay zeros: every (variable, mask) pair is re-masked after each optimizer step.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Optional

import numpy as np

from .._keras import keras, tf
from ..errors import BadInput
from ..model.datasets import Dataset
from ..model.op_forms import library_objects
from ..specs import ProgressFn
from .tasks import detect_head

FINETUNE_BATCH = 64
FINETUNE_LR = 1e-3
MIXED_MIN_CAPABILITY = (7, 0)  # tensor cores: Volta and newer


def mixed_precision_supported() -> bool:
    """True when a visible GPU runs float16 fast (compute capability 7.0 or newer)."""
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability and tuple(capability) >= MIXED_MIN_CAPABILITY:
            return True
    return False


def mixed_twin(model: keras.Model) -> keras.Model:
    """A copy of `model` computing in float16 (variables stay float32), outputs in float32.

    Layer configs carry their dtype, so the global policy alone would not apply on rebuild:
    the config is rewritten layer by layer. Output layers stay float32 for a stable softmax.
    """
    config = json.loads(model.to_json())
    layers = config["config"]["layers"]
    if config["class_name"] == "Sequential":
        outputs = {layers[-1]["config"]["name"]}
    else:
        outputs = {entry[0] for entry in config["config"]["output_layers"]}
    for layer in layers:
        if layer["class_name"] in ("Sequential", "Functional", "Model"):
            raise BadInput("mixed precision does not support nested models: fine-tune in float32")
        if layer["class_name"] != "InputLayer":
            layer["config"]["dtype"] = "float32" if layer["config"]["name"] in outputs else "mixed_float16"
    twin = keras.models.model_from_json(json.dumps(config), custom_objects=library_objects())
    twin.set_weights(model.get_weights())
    return twin


MaskUpdate = Callable[[int], Optional[Mapping[int, np.ndarray]]]  # step -> new masks by weight index, or None


def train_masked(model: keras.Model, masks: Mapping[int, np.ndarray], ds: Dataset, epochs: int, seed: int,
                 on_progress: Optional[ProgressFn] = None, mixed: bool = False, loss: Any = None,
                 update_masks: Optional[MaskUpdate] = None, label: str = "fine-tuning") -> None:
    """Train `model` in place for `epochs`; `masks` maps a weight index to its keep-mask.

    With `mixed`, a float16 twin trains (loss scaling against underflow) and its weights
    are copied back, so `model` keeps its float32 layers and saves as before. `loss` replaces
    the task's loss (DESIGN §5). `update_masks(step)`, called before every step (0, 1, ...
    over all epochs), may return new masks for some of the indices in `masks`: they are
    applied to the weights at once, so that step trains at them (gradual pruning's schedule).
    The step is traced once: masks are variables, and the batch dimension is left open.
    """
    if not ds.has_train:
        raise BadInput(f"{ds.name} has no x_train/y_train: fine-tuning needs training data")
    net = mixed_twin(model) if mixed else model
    variables = net.weights
    held = {index: tf.Variable(np.asarray(mask, np.float32), trainable=False) for index, mask in masks.items()}
    pairs = [(variables[index], mask) for index, mask in held.items()]
    optimizer = keras.optimizers.Adam(FINETUNE_LR)
    # its slots now, not inside the first trace (variables created there make tf.function trace twice)
    optimizer.build(net.trainable_variables)
    if mixed:
        optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
    head = detect_head(model, ds)
    loss_fn = loss if loss is not None else head.keras_loss()  # cross-entropy, binary cross-entropy or MSE
    y_train = head.training_labels(ds.y_train)
    signature = [tf.TensorSpec((None,) + ds.x_train.shape[1:], tf.as_dtype(ds.x_train.dtype)),
                 tf.TensorSpec((None,) + y_train.shape[1:], tf.as_dtype(y_train.dtype))]

    @tf.function(input_signature=signature)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, net(x, training=True)) + tf.add_n(net.losses or [0.0])
            scaled = optimizer.get_scaled_loss(loss) if mixed else loss
        grads = tape.gradient(scaled, net.trainable_variables)
        if mixed:
            grads = optimizer.get_unscaled_gradients(grads)
        optimizer.apply_gradients(zip(grads, net.trainable_variables))
        for variable, mask in pairs:
            variable.assign(variable * mask)
        return loss

    rng = np.random.default_rng(seed)
    done = 0
    for epoch in range(epochs):
        order = rng.permutation(len(ds.x_train))
        for i in range(0, len(order), FINETUNE_BATCH):
            fresh = update_masks(done) if update_masks is not None else None
            for index, mask in (fresh or {}).items():
                held[index].assign(np.asarray(mask, np.float32))
                variables[index].assign(variables[index] * held[index])
            idx = order[i : i + FINETUNE_BATCH]
            step(tf.constant(ds.x_train[idx]), tf.constant(y_train[idx]))
            done += 1
        if on_progress:
            on_progress((epoch + 1) / epochs, f"{label} epoch {epoch + 1}/{epochs}"
                        + (" (mixed float16)" if mixed else ""))
    if mixed:
        model.set_weights(net.get_weights())
