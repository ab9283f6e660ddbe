"""Structured surgery: remove whole filters/units and rebuild a smaller, plain tf_keras model.

Channels are traced through the graph so every consumer loses the matching inputs (Add joins groups).
"""
from __future__ import annotations

import copy
from collections import defaultdict
from typing import Mapping, Sequence, Union

import numpy as np

from .._keras import keras
from ..errors import BadInput
from .channel_group import ChannelGroup
from .graph_config import functional_config, node_refs
from .layer_handlers import (
    INPUT,
    OPAQUE,
    Kept,
    LayerHandler,
    Role,
    group_kind,
    handler_and_reason,
    producer_kind,
    resize_config,
    slice_weights,
)
from .prunable import find_prunable

_ELEMENTWISE_MERGE = LayerHandler(role="merge")
Value = Union[None, str, tuple]  # a tensor's channels: fixed, one group's, or concatenated parts


class ChannelGraph:
    """The layer graph of a model, with each layer's handler and shapes.

    Built once per structured prune: find the groups, rebuild the smaller model and its
    masks from the same graph.
    """

    def __init__(self, model: keras.Model):
        self.model = model
        self.config = functional_config(model)
        entries = {e["name"]: e for e in self.config["layers"]}
        self.inputs: dict[str, tuple[str, ...]] = {}
        self.handler: dict[str, LayerHandler] = {}
        self.why_opaque: dict[str, str] = {}  # opaque layer -> why its channels stay
        self.layer: dict[str, object] = {}
        multi_output: set[str] = set()
        for name, entry in entries.items():
            nodes = entry.get("inbound_nodes") or []
            if len(nodes) > 1:
                raise BadInput(f"layer {name} is called more than once: structured pruning needs each layer used once")
            refs = node_refs(nodes[0] if nodes else [])
            for ref in refs:
                if ref[1] != 0 or ref[2] != 0:
                    multi_output.add(ref[0])
            self.inputs[name] = tuple(ref[0] for ref in refs)
            if entry["class_name"] == "InputLayer":
                self.handler[name] = INPUT
                continue
            self.layer[name] = model.get_layer(name)
            self.handler[name], why = handler_and_reason(self.layer[name])
            if why:
                self.why_opaque[name] = why
            elif self.handler[name].role == "passthrough" and len(self.inputs[name]) > 1:
                self.handler[name] = _ELEMENTWISE_MERGE  # `x * y` of two tensors joins their channels
        for name in multi_output:  # e.g. LSTM(return_state=True): we only trace single outputs
            self.handler[name] = OPAQUE
            self.why_opaque.setdefault(name, "it has several outputs or calls")
        self.order = self._topological(entries)
        self._traced = None
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

    def role(self, name: str) -> Role:
        return self.handler[name].role

    def shape(self, name: str) -> tuple:
        if self.role(name) == "input":
            entry = next(e for e in self.config["layers"] if e["name"] == name)
            return tuple(entry["config"]["batch_input_shape"])
        return tuple(self.layer[name].output_shape)

    def _is_relu(self, name: str) -> bool:
        return self.handler[name].relu(self.layer[name].get_config())

    # -- which channels belong together ----------------------------------------------------
    def trace_groups(self):
        """Union-find over producers: (find, parent map, frozen roots -> why, batchnorms, relus by producer).

        Traced once per graph: groups, notes, the smaller model and its masks all read it.
        """
        if self._traced is None:
            self._traced = self._trace_groups()
        return self._traced

    def _trace_groups(self):
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        frozen: dict[str, str] = {}  # producer -> why its channels stay (the first reason found)
        fixed: dict[str, str] = {}  # layer whose output channels are all fixed -> why

        def freeze(vals, why: str) -> None:
            for producer in _ids(vals):
                frozen.setdefault(producer, why)

        batchnorms: dict[str, list[str]] = defaultdict(list)
        relus: dict[str, list[str]] = defaultdict(list)
        blocks: dict[str, list[int]] = defaultdict(list)  # producer -> group widths its channels pass
        value: dict[str, Value] = {}
        for name in self.order:
            role, vals = self.role(name), [value[i] for i in self.inputs[name]]
            if role == "input":
                value[name] = None
                fixed[name] = "the model input"
            elif role == "producer":
                parent[name] = name
                value[name] = name
                if self._is_relu(name):
                    relus[name].append(name)
            elif role == "channelwise" and isinstance(vals[0], tuple) and self._block(name) > 1:
                # groups over concatenated parts would need the parts' blocks to line up: not traced
                why = "a grouped convolution over concatenated channels"
                fixed[name] = f"the output of Conv2D {name} ({why})"
                freeze(vals, f"a Conv2D ({name}): {why}")
                value[name] = None
            elif role in ("channelwise", "passthrough", "flatten"):
                value[name] = vals[0]
                if isinstance(vals[0], str) and self._block(name) > 1:
                    blocks[vals[0]].append(self._block(name))
                if vals[0] is None:
                    fixed[name] = fixed[self.inputs[name][0]]
                if isinstance(vals[0], str):
                    if self.handler[name].batchnorm:
                        batchnorms[vals[0]].append(name)
                    if self._is_relu(name):
                        relus[vals[0]].append(name)
            elif role == "merge" and all(isinstance(v, str) for v in vals) and self._same_width(name):
                for v in vals[1:]:
                    parent[find(v)] = find(vals[0])
                value[name] = vals[0]
            elif role == "concat":
                value[name] = tuple(vals)
            else:  # opaque, or a merge with fixed/concatenated/broadcast inputs: these channels stay
                kind = type(self.layer[name]).__name__
                why = self.why_opaque.get(name)
                if why is None:  # a merge: its output is fixed for the same root reason as its fixed input
                    others = [fixed[i] for i, v in zip(self.inputs[name], vals) if v is None]
                    fixed[name] = others[0] if others else "concatenated channels"
                    freeze(vals, f"a {kind} ({name}): it joins them with {fixed[name]}")
                else:
                    fixed[name] = f"the output of {kind} {name} ({why})"
                    freeze(vals, f"a {kind} ({name}): {why}")
                value[name] = None
        for name in self.outputs:  # the model's outputs keep their shape
            freeze([value[name]], "they are a model output")
        roots: dict[str, str] = {}
        for producer, why in frozen.items():
            roots.setdefault(find(producer), why)
        return find, parent, roots, batchnorms, relus, blocks

    def _block(self, name: str) -> int:
        return self.handler[name].block(self.layer[name]) if self.role(name) == "channelwise" else 1

    def _same_width(self, name: str) -> bool:
        # a merge whose inputs broadcast on the channel axis (C with 1) does not pair channels
        return len({int(self.shape(i)[-1]) for i in self.inputs[name]}) == 1

    def groups(self) -> list[ChannelGroup]:
        """The channel groups that can be removed, in network order (see `find_groups`)."""
        find, parent, frozen, batchnorms, relus, blocks = self.trace_groups()
        members: dict[str, list[str]] = defaultdict(list)
        for producer in parent:
            members[find(producer)].append(producer)
        order = {name: i for i, name in enumerate(self.order)}
        groups = []
        for root, producers in members.items():
            if root in frozen:
                continue
            producers.sort(key=order.get)
            kinds = {self.kind(p) for p in producers}
            groups.append(ChannelGroup(
                producers=tuple(producers),
                size=int(self.shape(producers[0])[-1]),
                kind=group_kind(kinds),
                kernels=tuple(f"{p}/{self.handler[p].kernel}" for p in producers),
                batchnorms=tuple(sorted((b for p in producers for b in batchnorms[p]), key=order.get)),
                relu_outputs=tuple(sorted((r for p in producers for r in relus[p]), key=order.get)),
                block=int(np.lcm.reduce([1] + [b for p in producers for b in blocks[p]])),
            ))
        groups.sort(key=lambda g: order[g.producers[0]])
        return groups

    def keep_from_masks(self, masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The keep sets a structured result's masks describe (each group whose first producer lost
        kernel columns): what `prune` was given, for `zeroed_weights` to check it against."""
        keep = {}
        for group in self.groups():  # conv and dense kernels: (..., in, out)
            mask = masks[group.kernels[0]]
            kept = np.flatnonzero(mask.reshape(-1, mask.shape[-1]).any(axis=0))
            if len(kept) < group.size:
                keep[group.producers[0]] = kept
        return keep

    def kind(self, producer: str) -> str:
        """The group kind of one producer ("conv", "dense", ...)."""
        return producer_kind(self.handler[producer], self.layer[producer])

    def left_alone(self) -> list[tuple[tuple[str, ...], str]]:
        """(producers, why) of every channel group that cannot be removed, in network order."""
        find, parent, frozen, *_ = self.trace_groups()
        members: dict[str, list[str]] = defaultdict(list)
        for producer in parent:
            members[find(producer)].append(producer)
        order = {name: i for i, name in enumerate(self.order)}
        found = [(tuple(sorted(members[root], key=order.get)), why) for root, why in frozen.items()]
        return sorted(found, key=lambda item: order[item[0][0]])

    # -- which channels survive --------------------------------------------------------------
    def trace_kept(self, keep: Mapping[str, Sequence[int]]) -> tuple[dict[str, Kept], dict[str, Kept]]:
        """(kept channels of each layer's input, kept channels of each layer's output)."""
        find, parent, frozen, _, _, blocks = self.trace_groups()
        block_of: dict[str, int] = defaultdict(lambda: 1)
        for producer, widths in blocks.items():
            block_of[find(producer)] = int(np.lcm.reduce([block_of[find(producer)], *widths]))
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
            block = block_of[root]
            rows = kept.reshape(-1, block) if len(kept) % block == 0 else None
            if block > 1 and (rows is None or np.any(rows - rows[:, :1] != np.arange(block)) or np.any(rows[:, 0] % block)):
                raise ValueError(f"keep for {producer} must keep whole groups of {block} channels: "
                                 "they pass a grouped convolution")
            if root in by_root and not np.array_equal(by_root[root], kept):
                raise ValueError(f"{producer} is joined (Add) with other layers: give its group one keep set")
            by_root[root] = kept
        kept_in: dict[str, Kept] = {}
        kept_out: dict[str, Kept] = {}
        for name in self.order:
            role = self.role(name)
            ins = [kept_out[i] for i in self.inputs[name]]
            kept_in[name] = ins[0] if ins else None
            if role == "input":
                kept_out[name] = None
            elif role == "producer":
                kept_out[name] = by_root.get(find(name))
            elif role in ("channelwise", "passthrough", "merge"):
                kept_out[name] = ins[0]  # merges: one group, so every input has the same set
            elif role == "flatten":
                kept_out[name] = _flat_indices(ins[0], self.layer[name].input_shape)
            elif role == "concat":
                sizes = [int(self.shape(i)[-1]) for i in self.inputs[name]]
                kept_out[name] = _concat_indices(ins, sizes)
            else:
                assert all(k is None for k in ins), name  # frozen groups never reach here
                kept_out[name] = None
        return kept_in, kept_out

    # -- the smaller model ---------------------------------------------------------------------
    def prune(self, keep: Mapping[str, Sequence[int]]) -> keras.Model:
        """A new, smaller functional model keeping only the channels `keep` lists (see `prune_channels`)."""
        kept_in, kept_out = self.trace_kept(keep)
        config = copy.deepcopy(self.config)
        for entry in config["layers"]:
            # build_config records the old input shapes; layers rebuild from the new tensors
            entry.pop("build_config", None)
            name = entry["name"]
            if name in self.layer:
                resize_config(self.handler[name], self.layer[name], entry["config"], kept_in[name], kept_out[name])
        from ..model.op_forms import library_objects  # ConvNeXt's LayerScale & co. by class name

        new = keras.Model.from_config(config, custom_objects=library_objects())
        for name in self.order:
            if self.role(name) == "input":
                continue
            layer = self.layer[name]
            weights = slice_weights(self.handler[name], layer, layer.get_weights(), kept_in[name], kept_out[name])
            new.get_layer(name).set_weights(weights)
        return new

    def zeroed_weights(self, keep: Mapping[str, Sequence[int]]) -> list[np.ndarray]:
        """The model's weights with every removed channel's consumers reading it as zero: what
        `prune(keep)` computes, in the original shapes (the exactness oracle of tests and benchmarks).

        RNN producers also lose their removed units' recurrent rows, so those units reach no other.
        """
        kept_in, kept_out = self.trace_kept(keep)
        weights = self.model.get_weights()
        index = {id(v): i for i, v in enumerate(self.model.weights)}
        for name, layer in self.layer.items():
            handler = self.handler[name]
            if handler.role != "producer" or (kept_in[name] is None and kept_out[name] is None):
                continue
            numbered = [np.arange(int(np.prod(v.shape))).reshape(tuple(v.shape)) for v in layer.weights]
            sliced = handler.slice_inputs(layer, numbered, kept_in[name])
            if handler.kind in ("lstm", "gru", "rnn") and kept_out[name] is not None:
                sliced[1] = np.take(sliced[1], kept_out[name], axis=0)  # the recurrent rows
            for variable, survivors in zip(layer.weights, sliced):
                value = weights[index[id(variable)]]
                kept = np.zeros(value.size, dtype=bool)
                kept[survivors.reshape(-1)] = True
                value.reshape(-1)[~kept] = 0.0
        return weights

    def kept_masks(self, keep: Mapping[str, Sequence[int]]) -> dict[str, np.ndarray]:
        """Which weights of every prunable tensor survive `prune(keep)` (see `kept_masks`)."""
        kept_in, kept_out = self.trace_kept(keep)
        variables = self.model.weights
        masks = {}
        for pw in find_prunable(self.model):
            mask = np.ones(pw.shape, dtype=bool)
            if self.handler.get(pw.layer, OPAQUE).role in ("producer", "channelwise"):  # else nested, or untouched
                layer = self.layer[pw.layer]
                # number each weight's positions and slice the numbers as the weights are sliced:
                # the numbers left are the positions that survive
                numbered = [np.arange(int(np.prod(v.shape))).reshape(tuple(v.shape)) for v in layer.weights]
                sliced = slice_weights(self.handler[pw.layer], layer, numbered, kept_in[pw.layer], kept_out[pw.layer])
                position = [id(v) for v in layer.weights].index(id(variables[pw.index]))
                mask[:] = False
                mask.reshape(-1)[sliced[position].reshape(-1)] = True
            masks[pw.key] = mask
        return masks


def _ids(vals) -> set[str]:
    found: set[str] = set()
    for v in vals:
        if isinstance(v, str):
            found.add(v)
        elif isinstance(v, tuple):
            found |= _ids(v)
    return found


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


def find_groups(model: keras.Model) -> list[ChannelGroup]:
    """The channel groups of `model` that can be removed, in network order.

    Channels that reach a model output, a layer we cannot slice (a Reshape that moves them, Lambda, a nested
    model, softmax over channels, ...) or an Add with the model's input are left out.
    """
    return ChannelGraph(model).groups()


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
    return ChannelGraph(model).prune(keep)


def kept_masks(model: keras.Model, keep: Mapping[str, Sequence[int]]) -> dict[str, np.ndarray]:
    """For every prunable tensor of `model` (`layer/attr`), which of its weights survive
    `prune_channels(model, keep)`: True = kept, in the original shape."""
    return ChannelGraph(model).kept_masks(keep)
