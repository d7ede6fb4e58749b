"""Feature extractors for the training tools: ``build_backbone(name, input_shape, embedding_dim)``.

Every backbone is a ``keras.Model`` mapping a batch of inputs to ``(B, embedding_dim)`` features —
the last layer is a linear ``Dense(embedding_dim)`` named ``"embedding"``, with no classifier head
(add a ``Dense``, ``CosineDense``, ``PEDCCDense``, ... on top). Under a mixed-precision policy
the layers follow the global policy, so the features come out in the compute dtype (float16).

    small-cnn      two [conv3×3-BN-ReLU ×2, max-pool 2] blocks (32, 64 filters), global average
                   pooling; for 8×8 and 28×28 digits (any image of at least 4×4)
    resnet18       ResNet-18, CIFAR variant (He et al. 2016 as used by the LDAM/ICU papers):
                   3×3 stem with 64 filters and no max-pool, [2, 2, 2, 2] basic blocks of widths
                   64-128-256-512 (stride 2 at the start of stages 2-4, 1×1 projection shortcuts),
                   global average pooling, Dense(embedding_dim); 11.17 M parameters up to the
                   pooling, as the common PyTorch CIFAR ResNet-18
    vgg            VGG-11 with batch normalisation (configuration "A": 64, M, 128, M, 256, 256, M,
                   512, 512, M, 512, 512, M), pooling skipped once the feature map is 1×1, global
                   average pooling, Dense(embedding_dim); ≈ 9.2 M parameters
    mlp            Flatten, two Dense(256)-ReLU layers; any input shape
    embedding-net  Flatten, two Dense(128)-BN-ReLU layers; for the generated verification set
"""

import keras

BACKBONES = ("small-cnn", "resnet18", "vgg", "mlp", "embedding-net")
# The backbone that suits each data set of models.data; any other (CIFAR and its variants): resnet18.
DEFAULT_BACKBONES = {
    "digits": "small-cnn",
    "noisy-digits": "small-cnn",
    "mnist": "small-cnn",
    "emnist/balanced": "small-cnn",
    "longtail": "mlp",
    "verification": "embedding-net",
}
VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def batch_norm(name, **kwargs):
    # PyTorch's defaults (momentum 0.1 there = 0.9 here, eps 1e-5), which the papers train with:
    # Keras' 0.99 lets the moving statistics lag far behind on small data sets such as digits.
    # synchronized: global-batch statistics under tf.distribute, so training with R replicas
    # matches one device for the same global batch (a no-op without a strategy). Keras has the flag
    # on TensorFlow only; on JAX, keras.distribution's global arrays give global statistics anyway.
    synchronized = keras.backend.backend() == "tensorflow"
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, synchronized=synchronized, name=name,
                                           **kwargs)


def _conv_bn_relu(x, filters, name, strides=1, relu=True):
    x = keras.layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=name + "_conv")(x)
    x = batch_norm(name=name + "_bn")(x)
    return keras.layers.ReLU(name=name + "_relu")(x) if relu else x


def _embedding(x, embedding_dim):
    return keras.layers.Dense(embedding_dim, name="embedding")(x)


def _small_cnn(inputs, embedding_dim):
    x = inputs
    for block, filters in enumerate((32, 64), start=1):
        x = _conv_bn_relu(x, filters, f"block{block}_a")
        x = _conv_bn_relu(x, filters, f"block{block}_b")
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"block{block}_pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return _embedding(x, embedding_dim)


def _basic_block(x, filters, strides, name):
    shortcut = x
    y = _conv_bn_relu(x, filters, name + "_1", strides=strides)
    y = _conv_bn_relu(y, filters, name + "_2", relu=False)
    if strides != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=strides, use_bias=False, name=name + "_proj_conv")(x)
        shortcut = batch_norm(name=name + "_proj_bn")(shortcut)
    y = keras.layers.Add(name=name + "_add")([y, shortcut])
    return keras.layers.ReLU(name=name + "_out")(y)


def _resnet18(inputs, embedding_dim):
    x = _conv_bn_relu(inputs, 64, "stem")
    for stage, filters in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            strides = 2 if stage > 1 and block == 0 else 1
            x = _basic_block(x, filters, strides, f"stage{stage}_block{block + 1}")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return _embedding(x, embedding_dim)


def _vgg(inputs, embedding_dim, config=VGG11):
    x = inputs
    conv = pool = 0
    for item in config:
        if item == "M":
            if min(x.shape[1], x.shape[2]) >= 2:  # small inputs (28×28) run out of resolution first
                pool += 1
                x = keras.layers.MaxPooling2D(2, name=f"pool{pool}")(x)
        else:
            conv += 1
            x = _conv_bn_relu(x, item, f"conv{conv}")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    return _embedding(x, embedding_dim)


def _dense_stack(inputs, embedding_dim, units, normalize):
    x = keras.layers.Flatten(name="flatten")(inputs)
    for index in range(2):
        x = keras.layers.Dense(units, use_bias=not normalize, name=f"dense{index + 1}")(x)
        if normalize:
            x = batch_norm(name=f"dense{index + 1}_bn")(x)
        x = keras.layers.ReLU(name=f"dense{index + 1}_relu")(x)
    return _embedding(x, embedding_dim)


def default_backbone(dataset):
    """The backbone that suits data set ``dataset`` (a name of ``models.data.DATASETS``)."""
    return DEFAULT_BACKBONES.get(dataset, "resnet18")


def build_backbone(name, input_shape, embedding_dim=64):
    """Builds backbone ``name`` (one of ``BACKBONES``) for inputs of ``input_shape``.

    Returns an uncompiled ``keras.Model`` named ``<name>_backbone`` whose output is
    ``(B, embedding_dim)`` features.

    Raises:
        ValueError: unknown ``name`` (the message lists ``BACKBONES``), ``embedding_dim`` < 1, or an
            ``input_shape`` the backbone cannot take (convolutional backbones need (H, W, C)).
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone `name`={name!r}; valid names are: {', '.join(BACKBONES)}")
    if isinstance(embedding_dim, bool) or int(embedding_dim) != embedding_dim or embedding_dim < 1:
        raise ValueError(f"`embedding_dim` must be a positive integer, got {embedding_dim!r}")
    embedding_dim = int(embedding_dim)
    input_shape = tuple(int(d) for d in input_shape)
    if not input_shape or any(d < 1 for d in input_shape):
        raise ValueError(f"`input_shape` must be a non-empty tuple of positive sizes, got {input_shape!r}")
    if name in ("small-cnn", "resnet18", "vgg"):
        if len(input_shape) != 3:
            raise ValueError(f"`input_shape` of backbone {name!r} must be (height, width, channels), got {input_shape}")
        if name == "small-cnn" and min(input_shape[:2]) < 4:
            raise ValueError(f"`input_shape` of backbone 'small-cnn' must be at least 4×4, got {input_shape}")

    inputs = keras.Input(input_shape, name="inputs")
    if name == "small-cnn":
        outputs = _small_cnn(inputs, embedding_dim)
    elif name == "resnet18":
        outputs = _resnet18(inputs, embedding_dim)
    elif name == "vgg":
        outputs = _vgg(inputs, embedding_dim)
    elif name == "mlp":
        outputs = _dense_stack(inputs, embedding_dim, 256, normalize=False)
    else:  # embedding-net
        outputs = _dense_stack(inputs, embedding_dim, 128, normalize=True)
    return keras.Model(inputs, outputs, name=name.replace("-", "_") + "_backbone")

