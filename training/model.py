"""The CNN, the augmentation that imitates how people draw, and keep_digits, which joins a digits network and a
"not a digit" detector into the one model the app serves.

The network follows the best-known single-CNN recipe for MNIST (Chris Deotte's Kaggle kernel):
two blocks of conv3-conv3-conv5/stride 2, each conv followed by batch norm, then a 4x4 conv to a
128-vector, dropout and a softmax. About 327k parameters, 1.3 MB as float32 LiteRT, ~0.15 ms per
image on one CPU core.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from app.contract import INPUT_SHAPE, NUM_CLASSES, NUM_DIGITS
from training.recipe import Augmentation


class FusedBatchNormalization(layers.BatchNormalization):
    """Keras' batch norm, whose training step runs as TensorFlow's one fused kernel.

    Keras 3 computes a training step's batch norm in about ten small ops, which took 40 % of this CNN's
    training step on CPU; the fused kernel does the same sums in one. Inference is Keras' own. The moving
    averages are updated as Keras does, from the biased batch variance. Only for training: plain_copy(model)
    is what is saved, so model.keras loads without this module.
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable):
            return super().call(inputs, training=training, mask=mask)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), variance.dtype)
        variance = variance * (count - 1) / count  # the kernel returns the unbiased variance; Keras keeps the biased
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs


def build_model(dropout: float = 0.4, batch_norm=layers.BatchNormalization, classes: int = NUM_CLASSES) -> keras.Model:
    """[N, 28, 28, 1] in [0, 1] -> [N, 11] probabilities (see app/contract.py); classes=NUM_DIGITS: the digits only.

    batch_norm=FusedBatchNormalization trains faster; plain_copy(model) then gives the model to save.
    """

    def conv_bn(x, filters: int, kernel: int, strides: int = 1, padding: str = "valid"):
        """Conv (no bias: batch norm brings its own) -> batch norm -> ReLU."""
        x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
        return layers.ReLU()(batch_norm()(x))

    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = conv_bn(inputs, 32, 3)                        # 26x26x32
    x = conv_bn(x, 32, 3)                             # 24x24x32
    x = conv_bn(x, 32, 5, strides=2, padding="same")  # 12x12x32
    x = layers.Dropout(dropout)(x)
    x = conv_bn(x, 64, 3)                             # 10x10x64
    x = conv_bn(x, 64, 3)                             # 8x8x64
    x = conv_bn(x, 64, 5, strides=2, padding="same")  # 4x4x64
    x = layers.Dropout(dropout)(x)
    x = conv_bn(x, 128, 4)                            # 1x1x128
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="mnist_cnn")


def keep_digits(digits: keras.Model, detector: keras.Model) -> keras.Model:
    """One model that reads digits with `digits` (a digits-only network, [N, 10]) left exactly as it is, and
    says "not a digit" with `detector`'s last output (a network of this contract, [N, 11], fine-tuned for it):

        P(not a digit) = detector's P(not a digit) = r;  P(digit k) = (1 - r) * digits' P(k)

    so a drawing the detector lets through gets the same digit, in the same order, as before. Keras' own
    layers only (the detector's output cut to its last column by a Cropping1D), so model.keras loads anywhere.
    """
    inputs = keras.Input(INPUT_SHAPE, name="image")
    digit_probabilities = clone_as(digits, "digits")(inputs)
    detector_probabilities = clone_as(detector, "detector")(inputs)
    refused = layers.Flatten(name="not_a_digit")(layers.Cropping1D((NUM_DIGITS, 0))(
        layers.Reshape((NUM_CLASSES, 1))(detector_probabilities)))
    answered = layers.Rescaling(-1.0, offset=1.0, name="a_digit")(refused)
    outputs = layers.Concatenate(name="probabilities")([layers.Multiply()([digit_probabilities, answered]), refused])
    return keras.Model(inputs, outputs, name="mnist_cnn_keeps_digits")


def clone_as(model: keras.Model, name: str) -> keras.Model:
    """`model`'s layers (shared, not copied) as a network named `name` with one output: a keep_digits part."""
    return keras.Model(model.inputs[0], model.outputs[0], name=name)  # a saved model has lists of one


def parts(model: keras.Model) -> tuple[keras.Model | None, keras.Model]:
    """(the digits' network, the network with the "not a digit" output) of a keep_digits model; (None, model)
    for a single network."""
    names = {layer.name for layer in model.layers}
    if {"digits", "detector"} <= names:
        return model.get_layer("digits"), model.get_layer("detector")
    return None, model


def plain_copy(model: keras.Model) -> keras.Model:
    """The same network and weights, in Keras' own layers only: the model to save and serve."""

    def plain(layer):
        config = layer.get_config()
        if isinstance(layer, FusedBatchNormalization):  # named as Keras names its own: batch_normalization_3
            return layers.BatchNormalization.from_config({**config, "name": config["name"].removeprefix("fused_")})
        return type(layer).from_config(config)

    copy = keras.models.clone_model(model, clone_function=plain)
    copy.set_weights(model.get_weights())
    return copy


def build_augmenter(settings: Augmentation):
    """A function ((images [B, 28, 28, 1], labels), seed [2]) -> (changed images, labels) for tf.data's map.

    Each image is warped once (rotation, shear, zoom, aspect, shift and an elastic distortion in one
    bilinear resampling), then its strokes made bolder or finer. Stateless random ops: the batch's seed
    alone decides its changes, however many threads tf.data uses.
    """

    def augment(batch, seed):
        images, labels = batch
        warp_seed, width_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        return stroke_width(warp(images, settings, warp_seed), settings, width_seed), labels

    return augment


def warp(images, settings: Augmentation, seed):
    """Each image resampled through its own random affine map plus a smooth random displacement field."""
    batch, size = tf.shape(images)[0], images.shape[1]
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3))

    def uniform(extent, index):  # [B, 1, 1] values in [-extent, extent]
        return tf.random.stateless_uniform([batch, 1, 1], seeds[0] + index, -extent, extent)

    angle = uniform(np.radians(settings.rotation_degrees), 0)
    shear = tf.tan(uniform(np.radians(settings.shear_degrees), 1))
    scale_y = 1.0 + uniform(settings.zoom, 2)
    scale_x = scale_y * (1.0 + uniform(settings.aspect, 3))
    shift_x, shift_y = uniform(settings.shift * size, 4), uniform(settings.shift * size, 5)
    centre = (size - 1) / 2
    y, x = tf.meshgrid(tf.range(size, dtype=tf.float32) - centre, tf.range(size, dtype=tf.float32) - centre,
                       indexing="ij")
    x, y = x - shift_x, y - shift_y  # output pixel -> the input point it shows: the inverse map
    x, y = x - shear * y, y
    x, y = tf.cos(angle) * x + tf.sin(angle) * y, -tf.sin(angle) * x + tf.cos(angle) * y
    x, y = x / scale_x + centre, y / scale_y + centre
    dx, dy = tf.unstack(elastic_field(batch, size, settings, seeds[1]), axis=-1)
    return bilinear(images[..., 0], y + dy, x + dx)[..., None]


def bilinear(images, y, x):
    """images [B, H, W] read at the points (y, x) [B, H, W] by bilinear interpolation, 0 outside: the same
    as keras.ops.image.map_coordinates(order=1) with the batch index as a first coordinate, which also
    interpolates along the batch and so gathers eight times instead of four (twice the input's cost)."""
    height, width = images.shape[1], images.shape[2]
    pixels = tf.reshape(images, [-1])
    first = tf.range(tf.shape(images)[0])[:, None, None] * (height * width)  # each image's first pixel
    top, left = tf.floor(y), tf.floor(x)
    result = tf.zeros_like(y)
    for row in (top, top + 1):
        for column in (left, left + 1):
            weight = (1.0 - tf.abs(y - row)) * (1.0 - tf.abs(x - column))
            inside = (row >= 0) & (row < height) & (column >= 0) & (column < width)
            index = (first + tf.cast(tf.clip_by_value(row, 0, height - 1), tf.int32) * width
                     + tf.cast(tf.clip_by_value(column, 0, width - 1), tf.int32))
            result += tf.where(inside, weight * tf.gather(pixels, index), 0.0)
    return result


def elastic_field(batch, size: int, settings: Augmentation, seed):
    """[B, size, size, 2] displacements: white noise smoothed by a Gaussian, x and y drawn independently,
    scaled so that each has a standard deviation of settings.elastic_pixels."""
    noise = tf.random.stateless_normal([batch, size, size, 2], seed)
    sigma = settings.elastic_smoothness
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= np.sqrt((kernel ** 2).sum())  # smoothed unit noise keeps a standard deviation of 1
    rows = tf.constant(np.tile(kernel[:, None, None, None], (1, 1, 2, 1)), tf.float32)
    columns = tf.reshape(rows, [1, -1, 2, 1])
    smooth = tf.nn.depthwise_conv2d(noise, rows, [1, 1, 1, 1], "SAME")
    smooth = tf.nn.depthwise_conv2d(smooth, columns, [1, 1, 1, 1], "SAME")
    return settings.elastic_pixels * smooth


def stroke_width(images, settings: Augmentation, seed):
    """Blend each image part of the way towards its dilation (bolder) or erosion (finer)."""
    amount = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed, -1.0, 1.0)
    bolder = tf.nn.max_pool2d(images, 3, 1, "SAME")
    finer = -tf.nn.max_pool2d(-images, 3, 1, "SAME")
    towards_bolder = tf.nn.relu(amount) * settings.thicken * (bolder - images)
    towards_finer = tf.nn.relu(-amount) * settings.thin * (finer - images)
    return tf.clip_by_value(images + towards_bolder + towards_finer, 0.0, 1.0)
