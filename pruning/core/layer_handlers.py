"""How structured surgery treats each layer type, as a plain table of small handlers.

Like Torch-Pruning's pruner table: layer class -> its role for the channel axis and how its weights lose channels.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Literal, Mapping, Optional

import numpy as np

from .._keras import keras

L = keras.layers

# producer: owns its output channels (filters/units) and reads input channels
# channelwise: one weight slice per channel, output channel c from input channel c only
# passthrough: no weights, output channel c from input channel c only
# flatten, merge (inputs share channels), concat (inputs side by side on the channel axis)
# input: a model input; opaque: anything else, whose channels are left as they are
Role = Literal["input", "producer", "channelwise", "passthrough", "flatten", "merge", "concat", "opaque"]
Kept = Optional[np.ndarray]  # original channel indices that survive; None = all of them
Weights = list[np.ndarray]  # a layer's weights, in `get_weights()` order
Slicer = Callable[[Any, Weights, Kept], Weights]  # (layer, weights, kept channels) -> sliced weights


def _unchanged(layer, weights: Weights, kept: Kept) -> Weights:
    return weights


def _always(layer, config: dict) -> bool:
    return True


def _never(config: dict) -> bool:
    return False


@dataclass(frozen=True)
class LayerHandler:
    """What one layer type does to the channel (last) axis.

    Attributes:
      role: how channels flow through the layer (see `Role`).
      fits: (layer, config) -> whether this layer's config keeps channels on the last axis
        unmixed; a layer that does not fit is treated as opaque.
      slice_inputs: the layer's weights without the removed input channels.
      slice_outputs: the layer's weights without the removed output channels (producers).
      kind: producers only, the group kind methods choose by ("conv", "dense", "lstm").
      width: producers only, the config field that holds the number of output channels.
      relu: config -> whether the layer's output is a plain ReLU's (APoZ reads those).
      batchnorm: whether it is a BatchNorm whose scale bn-scale reads.
    """

    role: Role
    fits: Callable[[Any, dict], bool] = _always
    slice_inputs: Slicer = _unchanged
    slice_outputs: Slicer = _unchanged
    kind: str = ""
    width: str = ""
    relu: Callable[[dict], bool] = _never
    batchnorm: bool = False


def _take(w: np.ndarray, kept: Kept, axis: int) -> np.ndarray:
    return w if kept is None else np.take(w, kept, axis=axis)


# -- config checks: False = this layer mixes or moves channels, so it is opaque -------------
def _channels_last(layer, config: dict) -> bool:
    return config.get("data_format", "channels_last") == "channels_last"


def _plain_conv(layer, config: dict) -> bool:
    return _channels_last(layer, config) and config.get("groups", 1) == 1


def _single_output_lstm(layer, config: dict) -> bool:
    return not (config.get("return_state") or config.get("stateful"))


def _plain_depthwise(layer, config: dict) -> bool:
    return _channels_last(layer, config) and config.get("depth_multiplier", 1) == 1


def _last_axis_batchnorm(layer, config: dict) -> bool:
    axis = config["axis"]
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    return axis in (-1, len(layer.input_shape) - 1)


def _not_softmax(layer, config: dict) -> bool:
    return config["activation"] != "softmax"  # softmax mixes channels


def _last_axis_concat(layer, config: dict) -> bool:
    return config["axis"] in (-1, len(layer.output_shape) - 1)


# -- ReLU checks ---------------------------------------------------------------------------
def _relu_activation(config: dict) -> bool:
    return config.get("activation") == "relu"


def _plain_relu(config: dict) -> bool:
    return not config.get("negative_slope") and not config.get("threshold")


# -- weight slicing ------------------------------------------------------------------------
def _kernel_inputs(layer, weights: Weights, kept: Kept) -> Weights:
    # Conv*D kernels are (..., in, out), Dense kernels (in, out)
    return [_take(weights[0], kept, weights[0].ndim - 2)] + weights[1:]


def _kernel_outputs(layer, weights: Weights, kept: Kept) -> Weights:
    return [_take(w, kept, w.ndim - 1) for w in weights]  # the kernel's last axis, and the bias


def _lstm_inputs(layer, weights: Weights, kept: Kept) -> Weights:
    return [_take(weights[0], kept, 0)] + weights[1:]


def _lstm_outputs(layer, weights: Weights, kept: Kept) -> Weights:
    """LSTM kernels hold four gates (i, f, c, o) side by side: unit u is column g * units + u."""
    if kept is None:
        return weights
    units = layer.cell.units
    columns = np.concatenate([g * units + kept for g in range(4)])
    kernel, recurrent, *biases = weights
    recurrent = np.take(recurrent, kept, axis=0)  # recurrent rows are the units themselves
    return [np.take(w, columns, axis=w.ndim - 1) for w in (kernel, recurrent, *biases)]


def _depthwise_channels(layer, weights: Weights, kept: Kept) -> Weights:
    return [_take(weights[0], kept, 2)] + [_take(b, kept, 0) for b in weights[1:]]


def _batchnorm_channels(layer, weights: Weights, kept: Kept) -> Weights:
    return [_take(w, kept, 0) for w in weights]


INPUT = LayerHandler(role="input")
OPAQUE = LayerHandler(role="opaque")
_CONV = LayerHandler(role="producer", fits=_plain_conv, slice_inputs=_kernel_inputs,
                     slice_outputs=_kernel_outputs, kind="conv", width="filters", relu=_relu_activation)
_PASSTHROUGH = LayerHandler(role="passthrough", fits=_channels_last)  # channels_first keeps them on axis 1
_MERGE = LayerHandler(role="merge")

# Exact types only: subclasses such as Conv2DTranspose lay out their kernels differently, and a
# type missing here is opaque. Adding a layer type means adding one entry.
LAYER_HANDLERS: Mapping[type, LayerHandler] = MappingProxyType({
    L.Conv1D: _CONV,
    L.Conv2D: _CONV,
    L.Conv3D: _CONV,
    L.Dense: LayerHandler(role="producer", slice_inputs=_kernel_inputs, slice_outputs=_kernel_outputs,
                          kind="dense", width="units", relu=_relu_activation),
    L.LSTM: LayerHandler(role="producer", fits=_single_output_lstm, slice_inputs=_lstm_inputs,
                         slice_outputs=_lstm_outputs, kind="lstm", width="units", relu=_relu_activation),
    L.BatchNormalization: LayerHandler(role="channelwise", fits=_last_axis_batchnorm,
                                       slice_inputs=_batchnorm_channels, batchnorm=True),
    L.DepthwiseConv2D: LayerHandler(role="channelwise", fits=_plain_depthwise, slice_inputs=_depthwise_channels),
    L.Activation: LayerHandler(role="passthrough", fits=_not_softmax, relu=_relu_activation),
    L.ReLU: LayerHandler(role="passthrough", fits=_channels_last, relu=_plain_relu),
    **{layer_type: _PASSTHROUGH for layer_type in (
        L.LeakyReLU, L.ELU, L.ThresholdedReLU, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D,
        L.SpatialDropout3D, L.GaussianNoise, L.GaussianDropout, L.AlphaDropout, L.MaxPooling1D,
        L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D,
        L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D, L.GlobalMaxPooling1D,
        L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
        L.Cropping1D, L.Cropping2D, L.Cropping3D, L.UpSampling1D, L.UpSampling2D, L.UpSampling3D,
        L.ActivityRegularization, L.Resizing,
    )},
    L.Flatten: LayerHandler(role="flatten", fits=_channels_last),
    **{layer_type: _MERGE for layer_type in (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)},
    L.Concatenate: LayerHandler(role="concat", fits=_last_axis_concat),
})


def handler_for(layer) -> LayerHandler:
    """The handler of `layer`'s exact type when its config fits it, else `OPAQUE`."""
    handler = LAYER_HANDLERS.get(type(layer), OPAQUE)
    return handler if handler.fits(layer, layer.get_config()) else OPAQUE


def slice_weights(handler: LayerHandler, layer, weights: Weights, kept_in: Kept, kept_out: Kept) -> Weights:
    """`layer`'s weights with the removed input and output channels taken out."""
    return handler.slice_outputs(layer, handler.slice_inputs(layer, weights, kept_in), kept_out)
