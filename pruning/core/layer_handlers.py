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
# tf_keras' own layers outside keras.layers: ConvNeXt's, and the TF-op layer of `x + 3` & co.
LayerScale = keras.src.applications.convnext.LayerScale
StochasticDepth = keras.src.applications.convnext.StochasticDepth
CustomScaleLayer = keras.src.applications.inception_resnet_v2.CustomScaleLayer  # inputs[0] + inputs[1] * scale
TFOpLambda = keras.src.layers.core.tf_op_layer.TFOpLambda

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


def _always(layer, config: dict) -> str:
    return ""


def _never(config: dict) -> bool:
    return False


def _one(layer) -> int:
    return 1


@dataclass(frozen=True)
class LayerHandler:
    """What one layer type does to the channel (last) axis.

    Attributes:
      role: how channels flow through the layer (see `Role`).
      unfit: (layer, config) -> why this layer's config mixes or moves the channels of the last
        axis ("" when it keeps them apart); a layer that does not fit is treated as opaque.
      slice_inputs: the layer's weights without the removed input channels.
      slice_outputs: the layer's weights without the removed output channels (producers).
      kind: producers only, the group kind methods choose by ("conv", "dense", "lstm", "gru", "rnn").
      width: producers only, the config field that holds the number of output channels.
      kernel: producers only, the weight whose columns rank the channels ("layer/kernel").
      channel_fields: channelwise layers only, the config fields equal to their channel count.
      relu: config -> whether the layer's output is a plain ReLU's (APoZ reads those).
      batchnorm: whether it is a BatchNorm whose scale bn-scale reads.
      block: channelwise layers only, layer -> how many neighbouring channels go together (a grouped
        convolution's group width; its `groups` field counts blocks, not channels).
      target_shape: whether the config's `target_shape` ends with the (flattened) channel count (Reshape).
    """

    role: Role
    unfit: Callable[[Any, dict], str] = _always
    slice_inputs: Slicer = _unchanged
    slice_outputs: Slicer = _unchanged
    kind: str = ""
    width: str = ""
    kernel: str = "kernel"
    channel_fields: tuple[str, ...] = ()
    relu: Callable[[dict], bool] = _never
    batchnorm: bool = False
    block: Callable[[Any], int] = _one
    target_shape: bool = False


def _take(w: np.ndarray, kept: Kept, axis: int) -> np.ndarray:
    return w if kept is None else np.take(w, kept, axis=axis)


# -- config checks: why a layer mixes or moves channels ("" = it does not), so it is opaque ---
def _channels_last(layer, config: dict) -> str:
    if config.get("data_format", "channels_last") == "channels_last":
        return ""
    return "channels_first: its channels are not on the last axis"


def _grouped_conv(layer, config: dict) -> str:
    """Output group g reads input group g only: as wide as its input, a grouped convolution passes
    whole groups through (RegNet's, ResNeXt's); otherwise its groups change width."""
    inputs, filters, groups = int(layer.input_shape[-1]), config["filters"], config["groups"]
    if filters != inputs:
        return (f"grouped convolution (groups={groups}) from {inputs} to {filters} channels: only one as wide "
                "as its input passes whole groups through")
    return _channels_last(layer, config)


def _group_width(layer) -> int:
    return int(layer.get_config()["filters"]) // int(layer.get_config()["groups"])


def _single_output_rnn(layer, config: dict) -> str:
    if config.get("return_state") or config.get("stateful"):
        return "returns its states or is stateful"
    return ""


def _plain_depthwise(layer, config: dict) -> str:
    if config.get("depth_multiplier", 1) != 1:
        return f"depth_multiplier={config['depth_multiplier']} changes the channel count"
    return _channels_last(layer, config)


def _last_axis_batchnorm(layer, config: dict) -> str:
    axis = config["axis"]
    axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
    return "" if axis in (-1, len(layer.input_shape) - 1) else f"normalizes over axis {axis}, not the channels'"


def _not_softmax(layer, config: dict) -> str:
    return "softmax mixes the channels" if config["activation"] == "softmax" else ""


def _channels_stay_last(layer, config: dict) -> str:
    """Row-major, a reshape that keeps the last axis' size keeps each element's index on it: only
    the axes before it regroup (squeeze-and-excite's (C,) <-> (1, 1, C))."""
    before, after = tuple(layer.input_shape[1:]), tuple(layer.output_shape[1:])
    if before and after and before[-1] is not None and before[-1] == after[-1]:
        return ""
    return f"it reshapes {before} to {after}: the channels do not stay whole on the last axis"


def _last_axis_concat(layer, config: dict) -> str:
    return "" if config["axis"] in (-1, len(layer.output_shape) - 1) else "concatenates along another axis"


# TF ops that act on each element alone (tf_keras records `x + 3`, `tf.nn.relu6(x)`... as TFOpLambda
# layers): with a scalar operand they pass channels through, with a tensor one they merge
ELEMENTWISE_OPS = frozenset({
    "__operators__.add", "__operators__.sub", "__operators__.mul", "__operators__.truediv",
    "__operators__.radd", "__operators__.rsub", "__operators__.rmul", "__operators__.neg",
    "math.add", "math.subtract", "math.multiply", "math.truediv", "math.divide", "math.maximum",
    "math.minimum", "math.sigmoid", "math.tanh", "math.abs", "math.negative", "math.square",
    "nn.relu", "nn.relu6", "nn.silu", "nn.swish", "nn.gelu", "nn.sigmoid", "nn.elu", "nn.selu",
    "math.exp", "math.sqrt", "nn.tanh",
})
# reductions keep channels apart when they reduce other axes only (squeeze-and-excite's spatial mean)
REDUCE_OPS = frozenset({"math.reduce_mean", "math.reduce_sum", "math.reduce_max", "math.reduce_min"})
# ops that only add or drop axes of size 1 hold no sizes: like a Reshape, they pass channels through
# when the last axis stays whole (squeeze-and-excite's expand_dims twice)
RESIZE_FREE_OPS = frozenset({"expand_dims", "squeeze", "compat.v1.squeeze"})


def _elementwise_op(layer, config: dict) -> str:
    function = config.get("function")
    if function in REDUCE_OPS:
        return _spatial_reduction(layer, function)
    if function in RESIZE_FREE_OPS:
        return _channels_stay_last(layer, config)
    return "" if function in ELEMENTWISE_OPS else f"the TF op {function} is not known to keep channels apart"


def _op_axis(layer):
    """The `axis` a TF-op layer was called with (a keyword, or the second argument)."""
    node = layer.inbound_nodes[0]
    args, kwargs = node.call_args, node.call_kwargs
    return kwargs.get("axis", args[1] if len(args) > 1 else None)


def _last_axis_tf_concat(layer, config: dict) -> str:
    axis, rank = _op_axis(layer), len(layer.output_shape)
    return "" if axis in (-1, rank - 1) else f"tf.concat along axis {axis}, not the channels'"


def _spatial_reduction(layer, function: str) -> str:
    axis = _op_axis(layer)
    rank = len(layer.input_shape)
    axes = [axis] if isinstance(axis, int) else list(axis) if isinstance(axis, (list, tuple)) else None
    if axes is None or any(not isinstance(a, int) or a % rank in (0, rank - 1) for a in axes):
        return f"the TF op {function} reduces over the channels or the batch (axis={axis})"
    return ""


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


def _recurrent_inputs(layer, weights: Weights, kept: Kept) -> Weights:
    return [_take(weights[0], kept, 0)] + weights[1:]


def _recurrent_outputs(gates: int) -> Slicer:
    """RNN kernels hold their gates side by side: unit u is column g * units + u of gate g
    (LSTM: i, f, c, o; GRU: z, r, h; SimpleRNN: one). A GRU's bias is (3u,), or (2, 3u) with
    reset_after: the last axis either way."""

    def slice_units(layer, weights: Weights, kept: Kept) -> Weights:
        if kept is None:
            return weights
        units = layer.cell.units
        columns = np.concatenate([g * units + kept for g in range(gates)])
        kernel, recurrent, *biases = weights
        recurrent = np.take(recurrent, kept, axis=0)  # recurrent rows are the units themselves
        return [np.take(w, columns, axis=w.ndim - 1) for w in (kernel, recurrent, *biases)]

    return slice_units


def _separable_inputs(layer, weights: Weights, kept: Kept) -> Weights:
    """Depthwise kernel (..., in, m) loses input channels; pointwise (..., in * m, out) the rows
    c * m + j of each lost channel c."""
    if kept is None:
        return weights
    depthwise, pointwise, *bias = weights
    m = depthwise.shape[-1]
    rows = (kept[:, None] * m + np.arange(m)[None, :]).reshape(-1)
    return [np.take(depthwise, kept, axis=depthwise.ndim - 2), np.take(pointwise, rows, axis=pointwise.ndim - 2), *bias]


def _separable_outputs(layer, weights: Weights, kept: Kept) -> Weights:
    depthwise, *rest = weights
    return [depthwise] + [_take(w, kept, w.ndim - 1) for w in rest]


def _depthwise_channels(layer, weights: Weights, kept: Kept) -> Weights:
    return [_take(weights[0], kept, 2)] + [_take(b, kept, 0) for b in weights[1:]]


def _batchnorm_channels(layer, weights: Weights, kept: Kept) -> Weights:
    return [_take(w, kept, 0) for w in weights]  # also LayerScale's gamma


def _last_axis_channels(layer, weights: Weights, kept: Kept) -> Weights:
    return [_take(w, kept, w.ndim - 1) for w in weights]  # a grouped conv with one channel per group


INPUT = LayerHandler(role="input")
OPAQUE = LayerHandler(role="opaque")
_CONV = LayerHandler(role="producer", unfit=_channels_last, slice_inputs=_kernel_inputs,
                     slice_outputs=_kernel_outputs, kind="conv", width="filters", relu=_relu_activation)
# Conv2D(groups=C) on C channels with C filters is a depthwise convolution (ConvNeXt writes them so)
_GROUPED_DEPTHWISE = LayerHandler(role="channelwise", unfit=_channels_last, slice_inputs=_last_axis_channels,
                                  channel_fields=("filters", "groups"))
# Conv2D(groups=G) as wide as its input: output channel c reads input group c // width only, so whole
# groups pass through it like channels through a depthwise one (its kernel's input axis is per group)
_GROUPED = LayerHandler(role="channelwise", unfit=_grouped_conv, slice_inputs=_last_axis_channels,
                        channel_fields=("filters", "groups"), block=_group_width)
_SEPARABLE = LayerHandler(role="producer", unfit=_channels_last, slice_inputs=_separable_inputs,
                          slice_outputs=_separable_outputs, kind="conv", width="filters",
                          kernel="pointwise_kernel", relu=_relu_activation)
_RESHAPE = LayerHandler(role="passthrough", unfit=_channels_stay_last, target_shape=True)
_RESHAPE_FLAT = LayerHandler(role="flatten", target_shape=True)  # to (H * W * C,): a Flatten
_PASSTHROUGH = LayerHandler(role="passthrough", unfit=_channels_last)  # channels_first keeps them on axis 1
_MERGE = LayerHandler(role="merge")
_TF_OP = LayerHandler(role="passthrough", unfit=_elementwise_op)
# TF-op layers whose function plays another role than an elementwise op's
TF_OP_HANDLERS = MappingProxyType({"concat": LayerHandler(role="concat", unfit=_last_axis_tf_concat)})


def _rnn(kind: str, gates: int) -> LayerHandler:
    return LayerHandler(role="producer", unfit=_single_output_rnn, slice_inputs=_recurrent_inputs,
                        slice_outputs=_recurrent_outputs(gates), kind=kind, width="units")


# Exact types only: subclasses such as Conv2DTranspose lay out their kernels differently, and a
# type missing here is opaque. Adding a layer type means adding one entry.
LAYER_HANDLERS: Mapping[type, LayerHandler] = MappingProxyType({
    L.Conv1D: _CONV,
    L.Conv2D: _CONV,
    L.Conv3D: _CONV,
    L.SeparableConv1D: _SEPARABLE,
    L.SeparableConv2D: _SEPARABLE,
    L.Dense: LayerHandler(role="producer", slice_inputs=_kernel_inputs, slice_outputs=_kernel_outputs,
                          kind="dense", width="units", relu=_relu_activation),
    L.LSTM: _rnn("lstm", 4),
    L.GRU: _rnn("gru", 3),
    L.SimpleRNN: _rnn("rnn", 1),
    L.BatchNormalization: LayerHandler(role="channelwise", unfit=_last_axis_batchnorm,
                                       slice_inputs=_batchnorm_channels, batchnorm=True),
    L.DepthwiseConv2D: LayerHandler(role="channelwise", unfit=_plain_depthwise, slice_inputs=_depthwise_channels),
    LayerScale: LayerHandler(role="channelwise", slice_inputs=_batchnorm_channels, channel_fields=("projection_dim",)),
    L.Activation: LayerHandler(role="passthrough", unfit=_not_softmax, relu=_relu_activation),
    L.ReLU: LayerHandler(role="passthrough", unfit=_channels_last, relu=_plain_relu),
    # with one tensor input a passthrough; with a tensor operand too, the graph merges them
    TFOpLambda: _TF_OP,
    **{layer_type: _PASSTHROUGH for layer_type in (
        L.LeakyReLU, L.ELU, L.ThresholdedReLU, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D,
        L.SpatialDropout3D, L.GaussianNoise, L.GaussianDropout, L.AlphaDropout, L.MaxPooling1D,
        L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D,
        L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D, L.GlobalMaxPooling1D,
        L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
        L.Cropping1D, L.Cropping2D, L.Cropping3D, L.UpSampling1D, L.UpSampling2D, L.UpSampling3D,
        L.ActivityRegularization, L.Resizing, StochasticDepth,
    )},
    L.Reshape: _RESHAPE,
    L.Flatten: LayerHandler(role="flatten", unfit=_channels_last),
    **{layer_type: _MERGE for layer_type in (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum,
                                             CustomScaleLayer)},
    L.Concatenate: LayerHandler(role="concat", unfit=_last_axis_concat),
})

_OPAQUE_WHY = {
    L.LayerNormalization: "it normalizes over the channels, so removing one changes the others",
    L.Lambda: "its function is not traced",
    L.Bidirectional: "a Bidirectional wrapper concatenates two RNNs' units (its weights can still be masked)",
}


def _depthwise_as_grouped(layer, config: dict) -> bool:
    groups = config.get("groups", 1)
    return groups > 1 and groups == config["filters"] == int(layer.input_shape[-1])


def handler_and_reason(layer) -> tuple[LayerHandler, str]:
    """(`layer`'s handler, "") or (`OPAQUE`, why its channels cannot be traced through it)."""
    handler = LAYER_HANDLERS.get(type(layer))
    config = layer.get_config()
    if handler is None:
        if isinstance(layer, keras.Model):
            return OPAQUE, "a nested model is not traced"
        return OPAQUE, _OPAQUE_WHY.get(type(layer), "its type is not in the structured surgery table")
    if handler is _CONV and _depthwise_as_grouped(layer, config):
        handler = _GROUPED_DEPTHWISE
    elif handler is _CONV and config.get("groups", 1) > 1:
        handler = _GROUPED
    elif handler is _RESHAPE and len(layer.output_shape) == 2 and len(layer.input_shape) > 2:
        handler = _RESHAPE_FLAT
    elif handler is _TF_OP:
        handler = TF_OP_HANDLERS.get(config.get("function"), _TF_OP)
    why = handler.unfit(layer, config)
    return (OPAQUE, why) if why else (handler, "")


def producer_kind(handler: LayerHandler, layer) -> str:
    """The group kind of a producer: a Dense over a feature map (ConvNeXt) is a 1x1 convolution."""
    if handler.kind == "dense" and len(layer.input_shape) > 3:
        return "conv"
    return handler.kind


def group_kind(kinds: set[str]) -> str:
    """The kind of a group whose producers are of `kinds`: Dense layers joined with convolutions are
    squeeze-and-excite gates (Dense -> Reshape -> Multiply), so their channels are the filters'."""
    if kinds == {"conv", "dense"}:
        return "conv"
    return next(iter(kinds)) if len(kinds) == 1 else "mixed"


def resize_config(handler: LayerHandler, layer, config: dict, kept_in: Kept, kept_out: Kept) -> None:
    """Writes the kept channel counts into `layer`'s config, in place: a producer's width, a
    channelwise layer's channel fields, a Reshape's last target axis."""
    if handler.role == "producer" and kept_out is not None:
        config[handler.width] = int(len(kept_out))
    if handler.role == "channelwise" and kept_in is not None:
        for field in handler.channel_fields:  # `groups` counts blocks of channels
            config[field] = len(kept_in) // (handler.block(layer) if field == "groups" else 1)
    if handler.target_shape and kept_out is not None:
        config["target_shape"] = (*config["target_shape"][:-1], int(len(kept_out)))


def slice_weights(handler: LayerHandler, layer, weights: Weights, kept_in: Kept, kept_out: Kept) -> Weights:
    """`layer`'s weights with the removed input and output channels taken out."""
    return handler.slice_outputs(layer, handler.slice_inputs(layer, weights, kept_in), kept_out)
