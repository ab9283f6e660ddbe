"""Keras 3 op nodes, hard activations and the libraries' own application layers, rebuilt in the other Keras.

The bridge's graph forms beside layer_configs.py: tables keyed by module + class name (the classes are
taken from the tables' modules, never from what a file names), and the callables the rebuild applies.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..errors import BadInput
from .allowlist import KERAS3_LIBRARY_LAYERS, LIBRARY_LAYERS

NUMPY, NN = "keras.src.ops.numpy", "keras.src.ops.nn"


@dataclass(frozen=True)
class OpForm:
    """One Keras 3 op (`keras.ops.add` is keras.src.ops.numpy.Add) and the TF function tf_keras
    records for the same math as a TFOpLambda layer (`tf.math.add`).

    Attributes:
      module, op: the Keras 3 op class.
      tf: the TF function's name as TFOpLambda writes it ("math.add").
      params: the TF function's names for the op's positional arguments, in order.
      options: (op config key, TF keyword) pairs: Keras 3 keeps them in the op, TF in the call.
      aliases: other TF names tf_keras writes for the same op (`x + 3` is "__operators__.add").
      commutative: a constant first operand (`2 * x`) may swap places with the tensor.
    """

    module: str
    op: str
    tf: str
    params: tuple[str, ...]
    options: tuple[tuple[str, str], ...] = ()
    aliases: tuple[str, ...] = ()
    commutative: bool = False


_REDUCE = (("axis", "axis"), ("keepdims", "keepdims"))
OP_FORMS = (
    OpForm(NUMPY, "Add", "math.add", ("x", "y"), aliases=("__operators__.add",), commutative=True),
    OpForm(NUMPY, "Subtract", "math.subtract", ("x", "y"), aliases=("__operators__.sub",)),
    OpForm(NUMPY, "Multiply", "math.multiply", ("x", "y"), aliases=("__operators__.mul",), commutative=True),
    OpForm(NUMPY, "TrueDivide", "math.truediv", ("x", "y"), aliases=("__operators__.truediv", "math.divide")),
    OpForm(NUMPY, "Divide", "math.divide", ("x", "y")),
    OpForm(NUMPY, "Maximum", "math.maximum", ("x", "y"), commutative=True),
    OpForm(NUMPY, "Minimum", "math.minimum", ("x", "y"), commutative=True),
    OpForm(NUMPY, "Negative", "math.negative", ("x",), aliases=("__operators__.neg",)),
    OpForm(NUMPY, "Absolute", "math.abs", ("x",)),
    OpForm(NUMPY, "Square", "math.square", ("x",)),
    OpForm(NUMPY, "Sqrt", "math.sqrt", ("x",)),
    OpForm(NUMPY, "Exp", "math.exp", ("x",)),
    OpForm(NUMPY, "Tanh", "math.tanh", ("x",), aliases=("nn.tanh",)),
    OpForm(NUMPY, "Mean", "math.reduce_mean", ("input_tensor",), _REDUCE),
    OpForm(NUMPY, "Sum", "math.reduce_sum", ("input_tensor",), _REDUCE),
    OpForm(NUMPY, "Max", "math.reduce_max", ("input_tensor",), _REDUCE),
    OpForm(NUMPY, "Min", "math.reduce_min", ("input_tensor",), _REDUCE),
    OpForm(NUMPY, "Reshape", "reshape", ("tensor",), (("newshape", "shape"),)),
    OpForm(NUMPY, "ExpandDims", "expand_dims", ("input",), (("axis", "axis"),)),
    OpForm(NUMPY, "Squeeze", "squeeze", ("input",), (("axis", "axis"),)),
    OpForm(NUMPY, "Transpose", "transpose", ("a",), (("axes", "perm"),), aliases=("compat.v1.transpose",)),
    OpForm(NUMPY, "Concatenate", "concat", ("values",), (("axis", "axis"),)),
    OpForm(NN, "Relu", "nn.relu", ("features",)),
    OpForm(NN, "Relu6", "nn.relu6", ("features",)),
    OpForm(NN, "Sigmoid", "math.sigmoid", ("x",), aliases=("nn.sigmoid",)),
    OpForm(NN, "Silu", "nn.silu", ("features",), aliases=("nn.swish",)),
    OpForm(NN, "Gelu", "nn.gelu", ("features",), (("approximate", "approximate"),)),
    OpForm(NN, "Softmax", "nn.softmax", ("logits",), (("axis", "axis"),)),
)
# (Keras 3 module, op class) -> form: the op nodes a Keras 3 file may hold
KERAS3_OPS: dict[tuple[str, str], OpForm] = {(f.module, f.op): f for f in OP_FORMS}
# TF function name -> form: the TF-op layers a tf_keras model may hold on its way out as Keras 3
TF_OPS: dict[str, OpForm] = {name: f for f in OP_FORMS for name in (f.tf, *f.aliases)}
# op config keys that may be dropped when they hold these values (the op's defaults)
_DEFAULT_OPTIONS = {"initial": None, "dtype": None}

# Keras 3 activations tf_keras lacks, as the layers tf_keras' MobileNetV3 writes for them
HARD_ACTIVATIONS = frozenset({"hard_sigmoid", "hard_silu", "hard_swish"})

TFOpLambdaPath = ("src", "layers", "core", "tf_op_layer", "TFOpLambda")
Form = Callable[..., Any]


def graph_form(layer: dict, lib: Any, name: str, target: str) -> Optional[Any]:
    """A callable (a layer, or a function of the call's args) rebuilding `layer` in `lib`, for the
    layers that are not one built-in class in both libraries; None for those that are."""
    cls, module = layer["class_name"], layer.get("module")
    config = layer.get("config") or {}
    where = layer.get("name") or config.get("name") or cls
    if target == "tf_keras":
        if (module, cls) in KERAS3_OPS:
            return _tf_op(KERAS3_OPS[module, cls], config, where, lib, name)
        if cls == "Activation" and config.get("activation") in HARD_ACTIVATIONS:
            return _hard_activation(config["activation"], where, lib)
        if (module, cls) in KERAS3_LIBRARY_LAYERS:
            return _library_class(*KERAS3_LIBRARY_LAYERS[module, cls])
        return None
    if cls == "TFOpLambda" and config.get("function") in TF_OPS:
        return _keras3_op(TF_OPS[config["function"]], where, name)
    back = {tf_side: k3_side for k3_side, tf_side in KERAS3_LIBRARY_LAYERS.items()}
    if (module, cls) in back:
        return _library_class(*back[module, cls])
    return None


def library_objects() -> dict[str, type]:
    """tf_keras' own application layers (allowlist.LIBRARY_LAYERS), handed to the loader by class
    name: tf_keras cannot resolve LayerScale from its own .keras files without it. The modules
    imported are the table's, never ones a file names."""
    return {cls: _library_class(module, cls) for module, cls in LIBRARY_LAYERS}


def _library_class(module: str, cls: str) -> type:
    """A library layer class from the table's module (tf_keras' or Keras 3's own applications)."""
    return getattr(importlib.import_module(module), cls)


def _is_tensor(lib: Any, value: Any) -> bool:
    return lib.backend.is_keras_tensor(value) if not isinstance(value, (int, float, list, tuple, str)) else False


def _tf_op_layer(lib: Any, function: str, layer_name: str) -> Any:
    tf_op_lambda = lib
    for part in TFOpLambdaPath:
        tf_op_lambda = getattr(tf_op_lambda, part)
    return tf_op_lambda.from_config({"name": layer_name, "function": function, "trainable": True, "dtype": "float32"})


def _tf_op(form: OpForm, config: dict, where: str, lib: Any, name: str) -> Form:
    """A Keras 3 op node as the TFOpLambda tf_keras writes for the same call (`x + 3`, `tf.reduce_mean`)."""
    keys = {k3_key for k3_key, _ in form.options}
    for key, value in config.items():
        if key != "name" and key not in keys and not (key in _DEFAULT_OPTIONS and value == _DEFAULT_OPTIONS[key]):
            raise BadInput(f"op {where} of {name} ({form.op}) sets {key}={str(value)[:60]}, which PruneScope does not "
                           "translate: express it with built-in Keras layers")
    options = {tf_key: config[k3_key] for k3_key, tf_key in form.options if k3_key in config}
    layer = _tf_op_layer(lib, form.tf, where)

    def call(*args: Any, **kwargs: Any) -> Any:
        args = list(args)
        if kwargs or len(args) != len(form.params):
            raise BadInput(f"op {where} of {name} ({form.op}) is called with {len(args)} arguments and keywords "
                           f"{sorted(kwargs)}, not as keras.ops writes it: save the model again")
        if form.commutative and not _is_tensor(lib, args[0]) and _is_tensor(lib, args[1]):
            args.reverse()  # `2.0 * x`: tf_keras records a TF-op layer from its first argument's tensor
        first = args[0]
        if not (_is_tensor(lib, first) or isinstance(first, list) and first and all(_is_tensor(lib, v) for v in first)):
            raise BadInput(f"op {where} of {name} ({form.op}) takes a constant as its first operand, which tf_keras "
                           "cannot record: write the tensor first (x - 2.0, not 2.0 - x) and save again")
        return layer(first, **dict(zip(form.params[1:], args[1:])), **options)

    return call


def _keras3_op(form: OpForm, where: str, name: str) -> Form:
    """A tf_keras TF-op layer as the Keras 3 op node of the same call (its options go into the op)."""
    op_class = _library_class(form.module, form.op)

    def call(*args: Any, **kwargs: Any) -> Any:
        kwargs = dict(kwargs)
        values = list(args[:1]) + [kwargs.pop(p) for p in form.params[1:] if p in kwargs]
        options = {k3_key: kwargs.pop(tf_key) for k3_key, tf_key in form.options if tf_key in kwargs}
        if kwargs or len(values) != len(form.params):
            raise BadInput(f"layer {where} of {name} calls {form.tf} with {sorted(kwargs) or 'missing operands'}, "
                           "which Keras 3 ops do not take: export it as keras2")
        return op_class(**options, name=where)(*values)

    return call


def _hard_activation(activation: str, where: str, lib: Any) -> Form:
    """Keras 3's hard_sigmoid (relu6(x + 3) / 6, not tf_keras' 0.2 x + 0.5) and hard_silu (x times it),
    as tf_keras' MobileNetV3 builds them: TF-op layers, a ReLU(6) and a Multiply."""
    add = _tf_op_layer(lib, "__operators__.add", f"{where}_plus3")
    relu6 = lib.layers.ReLU(6.0, name=f"{where}_relu6")
    gate_name = where if activation == "hard_sigmoid" else f"{where}_gate"
    scale = _tf_op_layer(lib, "math.multiply", gate_name)
    multiply = lib.layers.Multiply(name=where)

    def call(x: Any) -> Any:
        gate = scale(relu6(add(x, y=3.0)), y=1.0 / 6.0)
        return gate if activation == "hard_sigmoid" else multiply([x, gate])

    return call
