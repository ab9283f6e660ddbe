"""Structured surgery: remove whole filters/units and rebuild a smaller, plain tf_keras model.

Channels are traced through the graph so every consumer loses the matching inputs (Add joins groups).
"""
from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from .._keras import keras
from ..errors import BadInput
from .prunable import find_prunable

L = keras.layers

# How each layer type treats the last (channel) axis. Exact types only: subclasses such as
# Conv2DTranspose lay out their kernels differently and fall through to "opaque".
PRODUCERS = (L.Conv1D, L.Conv2D, L.Conv3D, L.Dense, L.LSTM)  # own output channels, slice inputs
CHANNELWISE = (L.BatchNormalization, L.DepthwiseConv2D)  # one weight slice per channel
PASSTHROUGH = (  # no weights, channel c out depends on channel c in only
    L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.ThresholdedReLU, L.Dropout, L.SpatialDropout1D,
    L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianNoise, L.GaussianDropout, L.AlphaDropout,
    L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.AveragePooling1D, L.AveragePooling2D,
    L.AveragePooling3D, L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D,
    L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, L.ZeroPadding1D, L.ZeroPadding2D,
    L.ZeroPadding3D, L.Cropping1D, L.Cropping2D, L.Cropping3D, L.UpSampling1D, L.UpSampling2D,
    L.UpSampling3D, L.ActivityRegularization, L.Resizing,
)
MERGES = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)  # inputs share channels
CONV_TYPES = (L.Conv1D, L.Conv2D, L.Conv3D)

Value = Union[None, str, tuple]  # a tensor's channels: fixed, one group's, or concatenated parts
Kept = Optional[np.ndarray]  # original channel indices that survive; None = all of them


@dataclass(frozen=True)
class ChannelGroup:
    """Channels that must be removed together: the outputs of `producers`, joined by Add & co."""

    producers: tuple[str, ...]  # layers whose filters/units these channels are
    size: int
    kind: str  # "conv", "dense", "lstm" or "mixed"
    batchnorms: tuple[str, ...]  # BatchNorm layers applied to these channels
    relu_outputs: tuple[str, ...]  # layers whose outputs are these channels after a ReLU

    @property
    def joined(self) -> bool:
        return len(self.producers) > 1


def _kind(layer) -> str:
    kind = type(layer)
    cfg = layer.get_config()
    channels_last = cfg.get("data_format", "channels_last") == "channels_last"
    if kind in PRODUCERS:
        if kind in CONV_TYPES and (cfg.get("groups", 1) != 1 or not channels_last):
            return "opaque"
        if kind is L.LSTM and (cfg.get("return_state") or cfg.get("stateful")):
            return "opaque"
        return "producer"
    if kind in CHANNELWISE:
        if kind is L.DepthwiseConv2D and (cfg.get("depth_multiplier", 1) != 1 or not channels_last):
            return "opaque"
        if kind is L.BatchNormalization:
            axis = cfg["axis"]
            axis = axis[0] if isinstance(axis, (list, tuple)) and len(axis) == 1 else axis
            if axis not in (-1, len(layer.input_shape) - 1):
                return "opaque"
        return "channelwise"
    if kind in PASSTHROUGH:
        # softmax mixes channels; channels_first pooling keeps channels on axis 1
        if kind is L.Activation and cfg["activation"] == "softmax":
            return "opaque"
        return "passthrough" if channels_last else "opaque"
    if kind is L.Flatten:
        return "flatten" if channels_last else "opaque"
    if kind in MERGES:
        return "merge"
    if kind is L.Concatenate and cfg["axis"] in (-1, len(layer.output_shape) - 1):
        return "concat"
    return "opaque"


def _is_relu(layer) -> bool:
    cfg = layer.get_config()
    if type(layer) in PRODUCERS or type(layer) is L.Activation:
        return cfg.get("activation") == "relu"
    if type(layer) is L.ReLU:
        return not cfg.get("negative_slope") and not cfg.get("threshold")
    return False


def _functional_config(model: keras.Model) -> dict:
    """The model's config as a functional graph (a Sequential becomes a chain)."""
    config = copy.deepcopy(model.get_config())
    if "input_layers" in config:
        return config
    if not isinstance(model, keras.Sequential):
        raise BadInput(f"{model.name} is a subclassed model: structured pruning needs a Sequential or functional model")
    layers = config["layers"]
    if not layers or layers[0]["class_name"] != "InputLayer":
        layers.insert(0, {"class_name": "InputLayer", "config": {
            "batch_input_shape": tuple(model.input_shape), "dtype": "float32", "name": f"{model.name}_input"}})
    previous = None
    for entry in layers:
        entry["name"] = entry["config"]["name"]
        entry["inbound_nodes"] = [[[previous, 0, 0, {}]]] if previous else []
        previous = entry["name"]
    return {"name": config["name"], "layers": layers,
            "input_layers": [[layers[0]["name"], 0, 0]], "output_layers": [[previous, 0, 0]]}


class _Graph:
    """The layer graph of a model, with each layer's channel behaviour and shapes."""

    def __init__(self, model: keras.Model):
        self.model = model
        self.config = _functional_config(model)
        entries = {e["name"]: e for e in self.config["layers"]}
        self.inputs: dict[str, tuple[str, ...]] = {}
        self.kind: dict[str, str] = {}
        self.layer: dict[str, object] = {}
        multi_output: set[str] = set()
        for name, entry in entries.items():
            nodes = entry.get("inbound_nodes") or []
            if len(nodes) > 1:
                raise BadInput(f"layer {name} is called more than once: structured pruning needs each layer used once")
            refs = nodes[0] if nodes else []
            if isinstance(refs, dict):  # newer config format: not produced by tf_keras 2.x
                raise BadInput(f"layer {name} has an unsupported config format for structured pruning")
            for ref in refs:
                if ref[1] != 0 or ref[2] != 0:
                    multi_output.add(ref[0])
            self.inputs[name] = tuple(ref[0] for ref in refs)
            if entry["class_name"] == "InputLayer":
                self.kind[name] = "input"
            else:
                self.layer[name] = model.get_layer(name)
                self.kind[name] = _kind(self.layer[name])
        for name in multi_output:  # e.g. LSTM(return_state=True): we only trace single outputs
            self.kind[name] = "opaque"
        self.order = self._topological(entries)
        self.outputs = [ref[0] for ref in self.config["output_layers"]]

    def _topological(self, entries) -> list[str]:
        done: list[str] = []
        seen: set[str] = set()
        pending = list(entries)
        while pending:
            progressed = [n for n in pending if all(i in seen for i in self.inputs[n])]
            if not progressed:
                raise BadInput("the model graph has a cycle or a missing layer: cannot prune its structure")
            for name in progressed:
                done.append(name)
                seen.add(name)
            pending = [n for n in pending if n not in seen]
        return done

    def shape(self, name: str) -> tuple:
        if self.kind[name] == "input":
            entry = next(e for e in self.config["layers"] if e["name"] == name)
            return tuple(entry["config"]["batch_input_shape"])
        return tuple(self.layer[name].output_shape)

    # -- which channels belong together ----------------------------------------------------
    def trace_groups(self):
        """Union-find over producers: (parent map, frozen roots, batchnorms, relus by producer)."""
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        frozen: set[str] = set()
        batchnorms: dict[str, list[str]] = defaultdict(list)
        relus: dict[str, list[str]] = defaultdict(list)
        value: dict[str, Value] = {}
        for name in self.order:
            kind, vals = self.kind[name], [value[i] for i in self.inputs[name]]
            if kind == "input":
                value[name] = None
            elif kind == "producer":
                parent[name] = name
                value[name] = name
                if _is_relu(self.layer[name]):
                    relus[name].append(name)
            elif kind in ("channelwise", "passthrough", "flatten"):
                value[name] = vals[0]
                if isinstance(vals[0], str):
                    if isinstance(self.layer[name], L.BatchNormalization):
                        batchnorms[vals[0]].append(name)
                    if _is_relu(self.layer[name]):
                        relus[vals[0]].append(name)
            elif kind == "merge" and all(isinstance(v, str) for v in vals):
                for v in vals[1:]:
                    parent[find(v)] = find(vals[0])
                value[name] = vals[0]
            elif kind == "concat":
                value[name] = tuple(vals)
            else:  # opaque, or a merge with fixed/concatenated inputs: these channels stay
                frozen.update(_ids(vals))
                value[name] = None
        for name in self.outputs:  # the model's outputs keep their shape
            frozen.update(_ids([value[name]]))
        return find, parent, {find(x) for x in frozen}, batchnorms, relus

    def groups(self) -> list[ChannelGroup]:
        find, parent, frozen, batchnorms, relus = self.trace_groups()
        members: dict[str, list[str]] = defaultdict(list)
        for producer in parent:
            members[find(producer)].append(producer)
        order = {name: i for i, name in enumerate(self.order)}
        groups = []
        for root, producers in members.items():
            if root in frozen:
                continue
            producers.sort(key=order.get)
            kinds = {_producer_kind(self.layer[p]) for p in producers}
            groups.append(ChannelGroup(
                producers=tuple(producers),
                size=int(self.shape(producers[0])[-1]),
                kind=kinds.pop() if len(kinds) == 1 else "mixed",
                batchnorms=tuple(sorted((b for p in producers for b in batchnorms[p]), key=order.get)),
                relu_outputs=tuple(sorted((r for p in producers for r in relus[p]), key=order.get)),
            ))
        groups.sort(key=lambda g: order[g.producers[0]])
        return groups

    # -- which channels survive --------------------------------------------------------------
    def trace_kept(self, keep: Mapping[str, Sequence[int]]) -> tuple[dict[str, Kept], dict[str, Kept]]:
        """(kept channels of each layer's input, kept channels of each layer's output)."""
        find, parent, frozen, _, _ = self.trace_groups()
        by_root: dict[str, np.ndarray] = {}
        for producer, indices in keep.items():
            if producer not in parent:
                raise ValueError(f"{producer} is not a layer whose filters/units can be removed")
            root = find(producer)
            if root in frozen:
                raise ValueError(f"{producer}'s channels reach an output or an unsupported layer: they cannot be removed")
            size = int(self.shape(producer)[-1])
            kept = np.unique(np.asarray(indices, dtype=np.int64))
            if len(kept) != len(indices) or not len(kept) or kept[0] < 0 or kept[-1] >= size:
                raise ValueError(f"keep for {producer} must be distinct indices in [0, {size}), at least one")
            if root in by_root and not np.array_equal(by_root[root], kept):
                raise ValueError(f"{producer} is joined (Add) with other layers: give its group one keep set")
            by_root[root] = kept
        kept_in: dict[str, Kept] = {}
        kept_out: dict[str, Kept] = {}
        for name in self.order:
            kind = self.kind[name]
            ins = [kept_out[i] for i in self.inputs[name]]
            kept_in[name] = ins[0] if ins else None
            if kind == "input":
                kept_out[name] = None
            elif kind == "producer":
                kept_out[name] = by_root.get(find(name))
            elif kind in ("channelwise", "passthrough", "merge"):
                kept_out[name] = ins[0]  # merges: one group, so every input has the same set
            elif kind == "flatten":
                kept_out[name] = _flat_indices(ins[0], self.layer[name].input_shape)
            elif kind == "concat":
                sizes = [int(self.shape(i)[-1]) for i in self.inputs[name]]
                kept_out[name] = _concat_indices(ins, sizes)
            else:
                assert all(k is None for k in ins), name  # frozen groups never reach here
                kept_out[name] = None
        return kept_in, kept_out


def _ids(vals) -> set[str]:
    found: set[str] = set()
    for v in vals:
        if isinstance(v, str):
            found.add(v)
        elif isinstance(v, tuple):
            found |= _ids(v)
    return found


def _producer_kind(layer) -> str:
    if isinstance(layer, L.LSTM):
        return "lstm"
    return "dense" if isinstance(layer, L.Dense) else "conv"


def _flat_indices(kept: Kept, input_shape: tuple) -> Kept:
    """Flatten (channels last) puts channel c of position p at p * channels + c."""
    if kept is None:
        return None
    channels = int(input_shape[-1])
    positions = int(np.prod(input_shape[1:-1]))
    return (np.arange(positions)[:, None] * channels + kept[None, :]).reshape(-1)


def _concat_indices(parts: list[Kept], sizes: list[int]) -> Kept:
    if all(p is None for p in parts):
        return None
    offsets = np.cumsum([0] + sizes[:-1])
    return np.concatenate([(np.arange(n) if p is None else p) + o for p, n, o in zip(parts, sizes, offsets)])


def _take(w: np.ndarray, kept: Kept, axis: int) -> np.ndarray:
    return w if kept is None else np.take(w, kept, axis=axis)


def _gate_columns(kept: Kept, units: int) -> Kept:
    """LSTM kernels hold four gates (i, f, c, o) side by side: unit u is column g * units + u."""
    if kept is None:
        return None
    return np.concatenate([g * units + kept for g in range(4)])


def _slice_kernel(layer, attr: str, w: np.ndarray, kept_in: Kept, kept_out: Kept) -> np.ndarray:
    """A producer's kernel (`attr`) without the removed input rows and output columns."""
    if isinstance(layer, L.LSTM):
        cols = _gate_columns(kept_out, layer.cell.units)
        rows = kept_in if attr == "kernel" else kept_out  # recurrent rows are the units themselves
        return _take(_take(w, rows, 0), cols, 1)
    # Conv*D kernels are (..., in, out), Dense kernels (in, out)
    return _take(_take(w, kept_in, w.ndim - 2), kept_out, w.ndim - 1)


def _slice_weights(layer, weights: list[np.ndarray], kept_in: Kept, kept_out: Kept) -> list[np.ndarray]:
    """A layer's weights with the removed input and output channels taken out."""
    if isinstance(layer, L.LSTM):
        cols = _gate_columns(kept_out, layer.cell.units)
        return [_slice_kernel(layer, "kernel", weights[0], kept_in, kept_out),
                _slice_kernel(layer, "recurrent_kernel", weights[1], kept_in, kept_out)] + [
                    _take(b, cols, 0) for b in weights[2:]]
    if type(layer) in PRODUCERS:
        return [_slice_kernel(layer, "kernel", weights[0], kept_in, kept_out)] + [
            _take(b, kept_out, 0) for b in weights[1:]]
    if isinstance(layer, L.DepthwiseConv2D):
        return [_take(weights[0], kept_in, 2)] + [_take(b, kept_in, 0) for b in weights[1:]]
    if isinstance(layer, L.BatchNormalization):
        return [_take(w, kept_in, 0) for w in weights]
    return weights


def find_groups(model: keras.Model) -> list[ChannelGroup]:
    """The channel groups of `model` that can be removed, in network order.

    Channels that reach a model output, a layer we cannot slice (Reshape, Lambda, a nested
    model, softmax over channels, ...) or an Add with the model's input are left out.
    """
    return _Graph(model).groups()


def prune_channels(model: keras.Model, keep: Mapping[str, Sequence[int]]) -> keras.Model:
    """A new, smaller functional model keeping only the channels `keep` lists.

    Args:
      model: a built Sequential or functional tf_keras model; it is not changed.
      keep: producer layer name -> indices of the filters/units to keep. A name stands for
        its whole group: the other producers joined to it by Add lose the same channels.

    Every consumer (next Conv/Dense/LSTM, BatchNorm, Dense after Flatten or pooling) loses
    the matching inputs, so the result equals `model` with the removed channels read as
    zero by their consumers.
    """
    graph = _Graph(model)
    kept_in, kept_out = graph.trace_kept(keep)
    config = copy.deepcopy(graph.config)
    for entry in config["layers"]:
        # build_config records the old input shapes; layers rebuild from the new tensors
        entry.pop("build_config", None)
        name = entry["name"]
        if graph.kind[name] == "producer" and kept_out[name] is not None:
            field = "filters" if "filters" in entry["config"] else "units"
            entry["config"][field] = int(len(kept_out[name]))
    new = keras.Model.from_config(config)
    for name in graph.order:
        if graph.kind[name] == "input":
            continue
        layer = graph.layer[name]
        weights = layer.get_weights()
        if graph.kind[name] in ("producer", "channelwise"):
            weights = _slice_weights(layer, weights, kept_in[name], kept_out[name])
        new.get_layer(name).set_weights(weights)
    return new


def kept_masks(model: keras.Model, keep: Mapping[str, Sequence[int]]) -> dict[str, np.ndarray]:
    """For every prunable tensor of `model` (`layer/attr`), which of its weights survive
    `prune_channels(model, keep)`: True = kept, in the original shape."""
    graph = _Graph(model)
    kept_in, kept_out = graph.trace_kept(keep)
    masks = {}
    for pw in find_prunable(model):
        mask = np.ones(pw.shape, dtype=bool)
        if graph.kind.get(pw.layer) == "producer":  # else inside a nested model, or untouched
            # slice an array of flat positions the way the weights are sliced: what is left survives
            index = np.arange(mask.size).reshape(mask.shape)
            survivors = _slice_kernel(graph.layer[pw.layer], pw.attr, index, kept_in[pw.layer], kept_out[pw.layer])
            mask[:] = False
            mask.reshape(-1)[survivors.reshape(-1)] = True
        masks[pw.key] = mask
    return masks
