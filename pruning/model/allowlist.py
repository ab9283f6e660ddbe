"""What a model file may name: the allowlists of layer classes, objects, modules and activations.

Plain data (like tfmot's prune registry), shared by the Keras 2 and the Keras 3 config checks.
"""
from __future__ import annotations

# Containers whose config lists their layers; anything else at the root is a subclassed model.
MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})

# Built-in tf_keras layers that hold no code and read no files (a plain data table, like
# tfmot's prune registry). Not here, on purpose: Lambda (runs Python), TextVectorization /
# StringLookup / IntegerLookup (vocabulary files), DenseFeatures (feature columns),
# Layer/RNN base classes (only meaningful when subclassed).
LAYER_CLASSES = frozenset({
    "InputLayer", "Dense", "EinsumDense", "Activation", "ActivityRegularization", "Dropout", "AlphaDropout",
    "GaussianDropout", "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "Flatten", "Reshape", "Permute", "RepeatVector", "Masking", "Identity",
    "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
    "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    "LocallyConnected1D", "LocallyConnected2D",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D",
    "BatchNormalization", "LayerNormalization", "GroupNormalization", "UnitNormalization",
    "ReLU", "LeakyReLU", "PReLU", "ELU", "ThresholdedReLU", "Softmax",
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
    "Embedding", "LSTM", "GRU", "SimpleRNN", "LSTMCell", "GRUCell", "SimpleRNNCell", "StackedRNNCells",
    "Bidirectional", "TimeDistributed", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
    "Attention", "AdditiveAttention", "MultiHeadAttention",
    "Rescaling", "Resizing", "CenterCrop", "Normalization",
})

# Functional models turn `x + y` or `x[:, 0]` into TFOpLambda/SlicingOpLambda layers that
# call a TensorFlow function *by name* (e.g. "io.write_file"): only pure tensor math passes.
TF_OP_FUNCTIONS = frozenset({
    "__operators__.add", "__operators__.getitem", "math.add", "math.subtract", "math.multiply",
    "math.truediv", "math.divide", "math.negative", "math.reduce_mean", "math.reduce_sum",
    "math.reduce_max", "math.reduce_min", "math.sqrt", "math.square", "math.exp", "math.abs",
    "nn.relu", "nn.relu6", "nn.softmax", "nn.sigmoid", "nn.tanh", "nn.gelu", "nn.silu",
    "reshape", "concat", "expand_dims", "squeeze", "transpose", "identity", "compat.v1.transpose",
    # what the Keras 3 bridge writes for keras.ops calls (pruning/model/op_forms.py)
    "math.maximum", "math.minimum", "math.tanh", "math.sigmoid", "nn.swish", "nn.tanh",
    "__operators__.sub", "__operators__.mul", "__operators__.truediv", "__operators__.neg",
})

# Non-layer objects a layer config may carry: initializers, regularizers, constraints,
# dtype policies, and the serializer's tuple marker.
OBJECT_CLASSES = frozenset({
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity", "LecunNormal",
    "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "TruncatedNormal",
    "VarianceScaling", "Zeros",
    "L1", "L1L2", "L2", "OrthogonalRegularizer",
    "MaxNorm", "MinMaxNorm", "NonNeg", "RadialConstraint", "UnitNorm",
    "Policy", "DTypePolicy", "__tuple__",
})

# `module` values tf_keras itself writes; any other module would be imported by the loader.
MODULES = frozenset({
    "keras", "keras.layers", "keras.initializers", "keras.regularizers", "keras.constraints",
    "keras.mixed_precision", "tf_keras.src.engine.functional", "tf_keras.src.engine.sequential",
    "tf_keras.src.engine.training", "tf_keras.src.layers.core.tf_op_layer",
})

# Activation names are looked up in tf_keras' activations module: only its built-ins.
ACTIVATIONS = frozenset({
    "elu", "exponential", "gelu", "hard_sigmoid", "linear", "mish", "relu", "selu", "sigmoid",
    "softmax", "softplus", "softsign", "swish", "silu", "tanh", "relu6", "leaky_relu", "log_softmax",
})
ACTIVATION_KEYS = ("activation", "recurrent_activation")

# Layers defined inside tf_keras' own applications (keras.applications families): (module, class) ->
# the registered name tf_keras writes for them. Recognized by name, never by importing what a file names.
LIBRARY_LAYERS: dict[tuple[str, str], str] = {
    ("tf_keras.src.applications.convnext", "LayerScale"): "LayerScale",
    ("tf_keras.src.applications.convnext", "StochasticDepth"): "StochasticDepth",
    ("tf_keras.src.applications.inception_resnet_v2", "CustomScaleLayer"): "Custom>CustomScaleLayer",
}

# TensorFlow's own initializer modules (EfficientNetV2 serializes tf.constant_initializer from there).
TF_INITIALIZER_MODULES = frozenset({"tensorflow.python.ops.init_ops_v2", "tensorflow.python.ops.init_ops"})
TF_INITIALIZERS = frozenset({
    "Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "Identity", "LecunNormal",
    "LecunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "TruncatedNormal",
    "VarianceScaling", "Zeros",
})

# -- Keras 3 (`import keras`) ------------------------------------------------------------------
# Keras 3 layers the bridge rebuilds in tf_keras (pruning/model/keras3.py): the Keras 2 table less
# what Keras 3 lacks and the TF-op layers Keras 3 never writes.
KERAS3_LAYER_CLASSES = LAYER_CLASSES - {"LocallyConnected1D", "LocallyConnected2D", "ThresholdedReLU"}

# `module` values Keras 3 writes for its own classes (.keras); its legacy .h5 writes none on layers.
KERAS3_MODULES = frozenset({
    "keras", "keras.layers", "keras.initializers", "keras.regularizers", "keras.constraints",
    "keras.dtype_policies", "keras.models", "keras.src.models.functional", "keras.src.models.sequential",
    "keras.src.models.model",
})

# Non-layer objects in a Keras 3 config: those of Keras 2 plus its dtype policies; `__keras_tensor__`
# is how Keras 3 writes a layer's inputs in `inbound_nodes`.
KERAS3_OBJECT_CLASSES = (OBJECT_CLASSES - {"Policy"}) | {"FloatDTypePolicy", "__keras_tensor__"}

# Layers defined inside Keras 3's own applications: (module, class) -> the tf_keras class the bridge
# rebuilds them as (the same math, the same weights). Named here, never imported from what a file says.
KERAS3_LIBRARY_LAYERS: dict[tuple[str, str], tuple[str, str]] = {
    ("keras.src.applications.convnext", "LayerScale"): ("tf_keras.src.applications.convnext", "LayerScale"),
    ("keras.src.applications.convnext", "StochasticDepth"): ("tf_keras.src.applications.convnext", "StochasticDepth"),
    ("keras.src.applications.inception_resnet_v2", "CustomScaleLayer"):
        ("tf_keras.src.applications.inception_resnet_v2", "CustomScaleLayer"),
}

# Keras 3 activation names: tf_keras' and the hard ones the bridge rebuilds as layers (MobileNetV3's)
KERAS3_ACTIVATIONS = ACTIVATIONS | {"hard_silu", "hard_swish"}

# Keras 3's markers for serialized Python code: refused wherever they appear.
KERAS3_CODE_CLASSES = frozenset({"__lambda__", "function"})
